/*
 * `finmaas serve`: runs the model server until SIGTERM or SIGINT, then drains requests in flight
 * and exits 0. Configuration: defaults, then --config FILE (or FINMAAS_CONFIG), then FINMAAS_*
 * environment variables, then flags; the result is printed as JSON on stderr at start.
 */
#include "cli/cli.h"
#include "core/json.h"
#include "nn/nn.h"
#include "server/server.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: finmaas serve [--home DIR] [--listen HOST:PORT] [--threads N] [options]\n"
    "\n"
    "Serves every model of the registry in DIR over HTTP: the Open Inference Protocol (V2),\n"
    "TensorFlow Serving REST, the model repository API, /metrics. Stops cleanly on SIGTERM or\n"
    "SIGINT. See docs/api.md.\n"
    "\n"
    "  --home DIR              registry home (default ./finmaas-home, or FINMAAS_HOME)\n"
    "  --listen HOST:PORT      address to listen on (default 127.0.0.1:8080; port 0: any)\n"
    "  --threads N             HTTP worker threads (default: number of CPUs)\n"
    "  --config FILE           JSON config file (also FINMAAS_CONFIG); flags override it\n"
    "  --access-log PATH       JSON-lines access log: a file, '-' for stderr, 'off'\n"
    "                          (default DIR/access.log)\n"
    "  --max-body-bytes N      request body limit (default 8388608)\n"
    "  --batch-max-size N      dynamic batching: rows per batch (default 0: off)\n"
    "  --batch-max-delay-us N  dynamic batching: longest wait to fill a batch (default 500)\n"
    "  --batch-queue N         dynamic batching: queued requests per model before 503 (1024)\n"
    "security (on by default):\n"
    "  --tls-cert F --tls-key F  serve HTTPS (TLS 1.2 and 1.3 only, AEAD ciphers)\n"
    "  --tls-client-ca F       require client certificates signed by this CA (mutual TLS)\n"
    "  --audit MODE            durable (default: an answer leaves only after its audit entry\n"
    "                          is committed), async (committed within 100 ms), off\n"
    "  --rate-limit N          requests per second per API key (default 100000; 0: none)\n"
    "  --rate-burst N          token bucket size per key (default 2 x rate)\n"
    "  --max-connections N     open connections at most (default 1024)\n"
    "  --max-connections-per-ip N  per client address (default: no per-address cap)\n"
    "  --timeout S             close idle or slow connections after S seconds (default 30)\n"
    "  --auth off              no API keys (allowed only on a loopback address; for development)\n"
    "training (datasets and jobs, see docs/api.md):\n"
    "  --job-workers N         training jobs run at once, at low CPU priority (default 1)\n"
    "  --job-queue N           jobs waiting at most; more are refused with 503 (default 16)\n"
    "  --max-dataset-bytes N   dataset upload limit (default 1073741824)\n"
    "\n"
    "Every endpoint but /v2/health/* needs Authorization: Bearer <API key> (finmaas keys create).\n"
    "On a home without keys, the first start writes an admin key to DIR/admin.key (mode 0600).\n";

enum {
    OPT_HOME = 1000,
    OPT_LISTEN,
    OPT_THREADS,
    OPT_CONFIG,
    OPT_ACCESS_LOG,
    OPT_MAX_BODY,
    OPT_BATCH_SIZE,
    OPT_BATCH_DELAY,
    OPT_BATCH_QUEUE,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_CA,
    OPT_AUDIT,
    OPT_RATE,
    OPT_BURST,
    OPT_MAX_CONN,
    OPT_MAX_CONN_IP,
    OPT_TIMEOUT,
    OPT_AUTH,
    OPT_JOB_WORKERS,
    OPT_JOB_QUEUE,
    OPT_MAX_DATASET
};

static const struct option options[] = {
    {"home", required_argument, NULL, OPT_HOME},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
    {"max-body-bytes", required_argument, NULL, OPT_MAX_BODY},
    {"batch-max-size", required_argument, NULL, OPT_BATCH_SIZE},
    {"batch-max-delay-us", required_argument, NULL, OPT_BATCH_DELAY},
    {"batch-queue", required_argument, NULL, OPT_BATCH_QUEUE},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-client-ca", required_argument, NULL, OPT_TLS_CA},
    {"audit", required_argument, NULL, OPT_AUDIT},
    {"rate-limit", required_argument, NULL, OPT_RATE},
    {"rate-burst", required_argument, NULL, OPT_BURST},
    {"max-connections", required_argument, NULL, OPT_MAX_CONN},
    {"max-connections-per-ip", required_argument, NULL, OPT_MAX_CONN_IP},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"auth", required_argument, NULL, OPT_AUTH},
    {"job-workers", required_argument, NULL, OPT_JOB_WORKERS},
    {"job-queue", required_argument, NULL, OPT_JOB_QUEUE},
    {"max-dataset-bytes", required_argument, NULL, OPT_MAX_DATASET},
    {NULL, 0, NULL, 0},
};

/* Finds --config in argv before the other flags are applied (it comes under them). */
static const char *config_path(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) return argv[i + 1];
        if (!strncmp(argv[i], "--config=", 9)) return argv[i] + 9;
    }
    const char *env = getenv("FINMAAS_CONFIG");
    return env && *env ? env : NULL;
}

static int apply_flags(int argc, char **argv, fm_server_config_t *c) {
    int opt;
    long v;
    fm_error_t err;
    while ((opt = fm_cli_next_option("serve", argc, argv, options)) != -1) {
        switch (opt) {
        case OPT_HOME:
            if (strlen(optarg) >= sizeof c->home)
                return fm_cli_usage_error("serve", "--home is too long");
            strcpy(c->home, optarg);
            break;
        case OPT_LISTEN:
            if (fm_server_config_listen(c, optarg, &err)) return fm_cli_fail("serve", &err);
            break;
        case OPT_THREADS:
            if (fm_cli_parse_long("serve", "threads", optarg, 1, 64, &v)) return FM_EXIT_USAGE;
            c->threads = (int)v;
            break;
        case OPT_CONFIG:
            break; /* applied first */
        case OPT_ACCESS_LOG:
            if (strlen(optarg) >= sizeof c->access_log)
                return fm_cli_usage_error("serve", "--access-log is too long");
            strcpy(c->access_log, optarg);
            break;
        case OPT_MAX_BODY:
            if (fm_cli_parse_long("serve", "max-body-bytes", optarg, 1024, 1L << 32, &v))
                return FM_EXIT_USAGE;
            c->max_body_bytes = (size_t)v;
            break;
        case OPT_BATCH_SIZE:
            if (fm_cli_parse_long("serve", "batch-max-size", optarg, 0, 65536, &v))
                return FM_EXIT_USAGE;
            c->batch_max_size = (int)v;
            break;
        case OPT_BATCH_DELAY:
            if (fm_cli_parse_long("serve", "batch-max-delay-us", optarg, 0, 10000000, &v))
                return FM_EXIT_USAGE;
            c->batch_max_delay_us = (int)v;
            break;
        case OPT_BATCH_QUEUE:
            if (fm_cli_parse_long("serve", "batch-queue", optarg, 1, 1 << 20, &v))
                return FM_EXIT_USAGE;
            c->queue_limit = (int)v;
            break;
        case OPT_TLS_CERT:
        case OPT_TLS_KEY:
        case OPT_TLS_CA: {
            char *dst = opt == OPT_TLS_CERT  ? c->tls_cert
                        : opt == OPT_TLS_KEY ? c->tls_key
                                             : c->tls_client_ca;
            if (strlen(optarg) >= sizeof c->tls_cert)
                return fm_cli_usage_error("serve", "TLS file path is too long");
            strcpy(dst, optarg);
            break;
        }
        case OPT_AUDIT:
            if (fm_server_audit_parse(optarg, &c->audit))
                return fm_cli_usage_error(
                    "serve", "--audit must be durable, async or off, got '%s'", optarg);
            break;
        case OPT_RATE:
            if (fm_cli_parse_long("serve", "rate-limit", optarg, 0, 100000000, &v))
                return FM_EXIT_USAGE;
            c->rate_limit = (double)v;
            break;
        case OPT_BURST:
            if (fm_cli_parse_long("serve", "rate-burst", optarg, 1, 100000000, &v))
                return FM_EXIT_USAGE;
            c->rate_burst = (double)v;
            break;
        case OPT_MAX_CONN:
            if (fm_cli_parse_long("serve", "max-connections", optarg, 1, 1000000, &v))
                return FM_EXIT_USAGE;
            c->max_connections = (int)v;
            break;
        case OPT_MAX_CONN_IP:
            if (fm_cli_parse_long("serve", "max-connections-per-ip", optarg, 0, 1000000, &v))
                return FM_EXIT_USAGE;
            c->max_connections_per_ip = (int)v;
            break;
        case OPT_TIMEOUT:
            if (fm_cli_parse_long("serve", "timeout", optarg, 1, 86400, &v)) return FM_EXIT_USAGE;
            c->timeout_seconds = (int)v;
            break;
        case OPT_AUTH:
            if (strcmp(optarg, "on") && strcmp(optarg, "off"))
                return fm_cli_usage_error("serve", "--auth must be on or off, got '%s'", optarg);
            c->auth = !strcmp(optarg, "on");
            break;
        case OPT_JOB_WORKERS:
            if (fm_cli_parse_long("serve", "job-workers", optarg, 1, 64, &v)) return FM_EXIT_USAGE;
            c->job_workers = (int)v;
            break;
        case OPT_JOB_QUEUE:
            if (fm_cli_parse_long("serve", "job-queue", optarg, 1, 100000, &v))
                return FM_EXIT_USAGE;
            c->job_queue = (int)v;
            break;
        case OPT_MAX_DATASET:
            if (fm_cli_parse_long("serve", "max-dataset-bytes", optarg, 1024, 1L << 40, &v))
                return FM_EXIT_USAGE;
            c->max_dataset_bytes = (size_t)v;
            break;
        default:
            return FM_EXIT_USAGE;
        }
    }
    if (fm_cli_no_positional("serve", argc, argv)) return FM_EXIT_USAGE;
    return 0;
}

/* The pipe the stop signals are written to, and whether one has come (signal handlers only see
 * these). */
static int stop_pipe[2] = {-1, -1};
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig) {
    int saved = errno;
    if (stop_requested) {
        static const char again[] = "finmaas serve: already stopping (draining requests)\n";
        ssize_t ignored = write(2, again, sizeof again - 1);
        (void)ignored;
    } else {
        stop_requested = 1;
        unsigned char b = (unsigned char)sig;
        ssize_t ignored = write(stop_pipe[1], &b, 1);
        (void)ignored;
    }
    errno = saved;
}

int fm_cmd_serve(int argc, char **argv) {
    if (fm_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return FM_EXIT_OK;
    }
    fm_server_config_t config;
    fm_server_config_defaults(&config);
    fm_error_t err;
    fm_error_clear(&err);
    const char *file = config_path(argc, argv);
    if (file && fm_server_config_load(&config, file, &err)) return fm_cli_fail("serve", &err);
    if (fm_server_config_from_env(&config, &err)) return fm_cli_fail("serve", &err);
    int code = apply_flags(argc, argv, &config);
    if (code) return code;
    fm_nn_set_threads(1); /* one request, one core: parallelism comes from the HTTP threads */

    /* SIGTERM and SIGINT may reach any thread (OpenBLAS starts its threads before main runs,
     * with no signal blocked), so they get a handler, which only writes to a pipe that this
     * thread waits on; a second one while draining is reported and otherwise ignored. */
    if (pipe(stop_pipe) != 0) {
        fm_error_set(&err, FM_EIO, "cannot create a pipe: %s", strerror(errno));
        return fm_cli_fail("serve", &err);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    fm_server_t *server = NULL;
    if (fm_server_start(&config, &server, &err)) return fm_cli_fail("serve", &err);
    cJSON *described = fm_server_config_describe(fm_server_config(server));
    char listen[300];
    snprintf(listen, sizeof listen, strchr(config.host, ':') ? "[%s]:%d" : "%s:%d", config.host,
             fm_server_port(server));
    cJSON_ReplaceItemInObject(described, "listen", cJSON_CreateString(listen));
    char *text = cJSON_PrintUnformatted(described);
    fprintf(stderr, "finmaas serve: config %s\n", text ? text : "{}");
    if (fm_server_bootstrap_key(server))
        fprintf(stderr,
                "finmaas serve: this home had no API key: an admin key was written to %s "
                "(mode 0600); use it to create keys (finmaas keys create, or POST /api/keys)\n",
                fm_server_bootstrap_key(server));
    fprintf(stderr, "finmaas serve: ready on %s://%s\n", config.tls_cert[0] ? "https" : "http",
            listen);
    free(text);
    cJSON_Delete(described);

    unsigned char sig = 0;
    while (read(stop_pipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    fprintf(stderr, "finmaas serve: %s received, draining requests in flight\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    fm_server_stop(server);
    fprintf(stderr, "finmaas serve: stopped\n");
    return FM_EXIT_OK;
}
