/*
 * Starting and stopping the server: open the registry, load and warm every model, listen, and a
 * watcher thread that polls the registry so versions and labels added by other processes (the
 * `finmaas models` command) are served without a restart; the dataset store, the training jobs
 * and their event streams. Stopping refuses new connections, ends the event streams, interrupts
 * running jobs (recorded failed, "interrupted by shutdown"), waits for requests in flight, then
 * frees everything.
 */
#include "server/internal.h"
#include "core/clock.h"
#include "core/digest.h"
#include "core/fs.h"
#include "security/crypt.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How often keys created or revoked by another process (finmaas keys) are picked up: a revoked
 * key stops working within this time, whatever the registry poll interval. */
#define KEYS_POLL_MS 500

/* The watcher: picks up API keys every KEYS_POLL_MS (with authentication on) and registry changes
 * every watch_interval_ms (when that is not 0). */
static void *watch_loop(void *arg) {
    pthread_setname_np(pthread_self(), "fm-watcher");
    fm_server_t *s = arg;
    long registry_ms = s->config.watch_interval_ms;
    long keys_ms = s->keystore ? KEYS_POLL_MS : 0;
    long tick = keys_ms && (registry_ms <= 0 || keys_ms < registry_ms) ? keys_ms : registry_ms;
    double next_registry = fm_clock_seconds() + (double)registry_ms / 1000.0;
    pthread_mutex_lock(&s->watch_lock);
    while (!s->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += tick / 1000;
        ts.tv_nsec += (tick % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->watch_wake, &s->watch_lock, &ts);
        if (s->stopping) break;
        pthread_mutex_unlock(&s->watch_lock);
        fm_error_t err;
        fm_auth_refresh(s);
        if (registry_ms > 0 && fm_clock_seconds() >= next_registry) {
            next_registry = fm_clock_seconds() + (double)registry_ms / 1000.0;
            if (fm_store_sync(s->store, &err))
                fprintf(stderr, "finmaas serve: registry sync: %s\n", fm_error_message(&err));
        }
        pthread_mutex_lock(&s->watch_lock);
    }
    pthread_mutex_unlock(&s->watch_lock);
    return NULL;
}

static int resolve_address(const fm_server_config_t *c, struct sockaddr_storage *addr, int *ipv6,
                           fm_error_t *err) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    int rc = getaddrinfo(c->host, port, &hints, &res);
    if (rc || !res)
        return fm_error_set(err, FM_EINVAL, "cannot resolve listen address '%s': %s", c->host,
                            gai_strerror(rc));
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *ipv6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return FM_OK;
}

/*
 * The daemons share the port through SO_REUSEPORT, which would also let a second server on the
 * same port start silently and take half the connections. So first bind the address once
 * without it: a port in use is then a clear error, as users expect.
 */
static int check_port_free(const struct sockaddr_storage *addr, int ipv6,
                           const fm_server_config_t *c, fm_error_t *err) {
    if (c->port == 0) return FM_OK;
    int fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fm_error_set(err, FM_EIO, "cannot create a socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t len = ipv6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int rc = bind(fd, (const struct sockaddr *)addr, len);
    close(fd);
    if (rc != 0)
        return fm_error_set(err, FM_EIO, "cannot listen on %s:%d: address in use or not available",
                            c->host, c->port);
    return FM_OK;
}

/* Reads a PEM file into a new NUL-terminated string. */
static int read_pem(const char *path, const char *what, char **out, fm_error_t *err) {
    size_t len;
    int rc = fm_file_read_all(path, 1 << 20, out, &len, err);
    if (rc) return fm_error_prefix(err, "%s: ", what);
    if (!strstr(*out, "-----BEGIN ")) {
        free(*out);
        *out = NULL;
        return fm_error_set(err, FM_EFORMAT, "%s %s is not a PEM file", what, path);
    }
    return FM_OK;
}

static int is_loopback(const char *host) {
    return !strcmp(host, "127.0.0.1") || !strcmp(host, "::1") || !strcmp(host, "localhost") ||
           !strncmp(host, "127.", 4);
}

/*
 * Authentication on: open the key store; on a home without any key, create the first admin key
 * and leave its token in <home>/admin.key (mode 0600) for the operator.
 */
static int open_keys(fm_server_t *s, fm_error_t *err) {
    const char *home = fm_registry_home(s->registry);
    int rc = fm_keystore_open(home, &s->keystore, err);
    if (!rc) rc = fm_keyring_new(&s->keyring, err);
    fm_key_info_t *keys = NULL;
    size_t count = 0;
    if (!rc) rc = fm_keystore_list(s->keystore, &keys, &count, err);
    free(keys);
    if (!rc && count == 0) {
        char token[FM_KEY_TOKEN_MAX];
        fm_key_info_t info;
        rc = fm_keystore_create(s->keystore, FM_ROLE_ADMIN, NULL, "bootstrap-admin", "serve", token,
                                &info, err);
        if (!rc) {
            snprintf(s->bootstrap_key, sizeof s->bootstrap_key, "%s/admin.key", home);
            fm_atomic_file_t f;
            rc = fm_atomic_file_open(&f, s->bootstrap_key, 1, err);
            if (!rc) {
                fprintf(f.fp, "%s\n", token);
                rc = fm_atomic_file_commit(&f, err);
            }
            sodium_memzero(token, sizeof token);
        }
    }
    if (!rc) {
        s->keys_generation = -1;
        fm_auth_refresh(s);
    }
    return rc;
}

static int open_security(fm_server_t *s, fm_error_t *err) {
    const fm_server_config_t *c = &s->config;
    const char *home = fm_registry_home(s->registry);
    if (!c->auth && !is_loopback(c->host))
        return fm_error_set(err, FM_EINVAL,
                            "authentication may be turned off only on a loopback "
                            "address, not on %s",
                            c->host);
    if ((c->tls_cert[0] != 0) != (c->tls_key[0] != 0))
        return fm_error_set(err, FM_EINVAL, "TLS needs both --tls-cert and --tls-key");
    if (c->tls_client_ca[0] && !c->tls_cert[0])
        return fm_error_set(err, FM_EINVAL, "--tls-client-ca needs --tls-cert and --tls-key");
    int rc = fm_pii_open(home, &s->pii, err);
    if (!rc && c->auth) rc = open_keys(s, err);
    if (!rc && c->auth && c->audit != FM_SERVER_AUDIT_OFF)
        rc = fm_audit_open(home,
                           c->audit == FM_SERVER_AUDIT_ASYNC ? FM_AUDIT_ASYNC : FM_AUDIT_DURABLE,
                           &s->audit, err);
    if (!rc && c->auth && c->rate_limit > 0)
        rc = fm_ratelimit_new(c->rate_limit, c->rate_burst > 0 ? c->rate_burst : 2 * c->rate_limit,
                              &s->ratelimit, err);
    if (!rc && c->tls_cert[0]) rc = read_pem(c->tls_cert, "TLS certificate", &s->tls_cert, err);
    if (!rc && c->tls_key[0]) rc = read_pem(c->tls_key, "TLS key", &s->tls_key, err);
    if (!rc && c->tls_client_ca[0])
        rc = read_pem(c->tls_client_ca, "TLS client CA", &s->tls_ca, err);
    return rc;
}

const char *fm_server_bootstrap_key(const fm_server_t *s) {
    return s->bootstrap_key[0] ? s->bootstrap_key : NULL;
}

/* A job registered a model version: serve it at once, with its label. */
static void job_registered(const char *model, int64_t version, void *ctx) {
    fm_server_t *s = ctx;
    fm_error_t err;
    if (fm_store_load(s->store, model, &err))
        fprintf(stderr, "finmaas serve: cannot load model '%s' version %lld made by a job: %s\n",
                model, (long long)version, fm_error_message(&err));
    fm_store_set_label(s->store, model, "staging", version);
}

static void job_changed(const char *id, void *ctx) {
    fm_server_t *s = ctx;
    fm_sse_hub_notify(s->sse, id);
}

/* The event streams, then the training jobs (whose changes wake the streams). */
static int open_jobs(fm_server_t *s, fm_error_t *err) {
    int rc = fm_sse_hub_new(&s->sse, err);
    if (rc) return rc;
    fm_jobs_config_t jc = {
        .home = fm_registry_home(s->registry),
        .workers = s->config.job_workers,
        .queue_limit = s->config.job_queue,
        .registry = s->registry,
        .datasets = s->datasets,
        .on_registered = job_registered,
        .on_changed = job_changed,
        .ctx = s,
    };
    return fm_jobs_open(&jc, &s->jobs, err);
}

int fm_server_start(const fm_server_config_t *config, fm_server_t **out, fm_error_t *err) {
    *out = NULL;
    fm_server_t *s = calloc(1, sizeof *s);
    if (!s) return fm_error_set(err, FM_ENOMEM, "out of memory");
    s->config = *config;
    pthread_mutex_init(&s->watch_lock, NULL);
    pthread_cond_init(&s->watch_wake, NULL);
    unsigned char random[6];
    randombytes_buf(random, sizeof random);
    for (size_t i = 0; i < sizeof random; i++)
        snprintf(s->id_prefix + 2 * i, 3, "%02x", random[i]);
    int rc = fm_registry_open(config->home, &s->registry, err);
    if (!rc) {
        /* Model files and datasets encrypted at rest are read (and new ones written) with
         * FINMAAS_MASTER_KEY_FILE's key. */
        fm_master_key_t master;
        int have = 0;
        rc = fm_master_key_from_env(&master, &have, err);
        if (!rc && have) rc = fm_registry_set_master_key(s->registry, &master);
        if (!rc)
            rc = fm_datasets_open(fm_registry_home(s->registry), have ? &master : NULL,
                                  &s->datasets, err);
        fm_master_key_wipe(&master);
    }
    if (!rc && !s->config.access_log[0])
        snprintf(s->config.access_log, sizeof s->config.access_log, "%s/access.log",
                 fm_registry_home(s->registry));
    if (!rc) rc = open_security(s, err);
    if (!rc) rc = fm_metrics_new(&s->metrics, err);
    if (!rc && strcmp(s->config.access_log, "off") != 0)
        rc = fm_access_log_open(s->config.access_log, &s->access_log, err);
    if (!rc) rc = fm_store_new(s, &s->store, err);
    if (!rc) rc = fm_store_load_all(s->store, err);
    if (!rc) rc = open_jobs(s, err);
    struct sockaddr_storage addr;
    int ipv6 = 0;
    if (!rc) rc = resolve_address(&s->config, &addr, &ipv6, err);
    if (!rc) rc = check_port_free(&addr, ipv6, &s->config, err);
    if (!rc)
        rc = fm_conns_new(
            (size_t)s->config.max_connections,
            (size_t)(s->config.max_connections_per_ip > 0 ? s->config.max_connections_per_ip : 0),
            s->config.timeout_seconds, &s->conns, err);
    for (int i = 0; !rc && i < s->config.threads; i++) {
        struct MHD_Daemon *d = fm_http_start(s, (const struct sockaddr *)&addr, ipv6, err);
        if (!d) {
            rc = err->code ? err->code : FM_EIO;
            break;
        }
        s->daemons[s->ndaemons++] = d;
        /* The others join the port the first one bound (which matters with port 0). */
        if (ipv6)
            ((struct sockaddr_in6 *)&addr)->sin6_port = htons((uint16_t)s->port);
        else
            ((struct sockaddr_in *)&addr)->sin_port = htons((uint16_t)s->port);
    }
    if (!rc && (s->config.watch_interval_ms > 0 || s->keystore)) {
        if (pthread_create(&s->watcher, NULL, watch_loop, s) == 0)
            s->watcher_running = 1;
        else
            rc = fm_error_set(err, FM_ENOMEM, "cannot start the registry watcher");
    }
    if (rc) {
        fm_server_stop(s);
        return rc;
    }
    atomic_store(&s->ready, 1);
    *out = s;
    return FM_OK;
}

const fm_server_config_t *fm_server_config(const fm_server_t *s) {
    return &s->config;
}

int fm_server_port(const fm_server_t *s) {
    return s->port;
}

void fm_server_stop(fm_server_t *s) {
    if (!s) return;
    atomic_store(&s->ready, 0);
    atomic_store(&s->draining, 1);
    if (s->ndaemons) {
        /* Stop accepting, then let the requests in flight finish. */
        for (int i = 0; i < s->ndaemons; i++) {
            MHD_socket fd = MHD_quiesce_daemon(s->daemons[i]);
            if (fd != MHD_INVALID_SOCKET) close(fd);
        }
        /* Event streams end (no connection may stay suspended when a daemon stops); running
         * jobs are interrupted and recorded failed, "interrupted by shutdown"; uploads being
         * committed finish. */
        fm_sse_hub_close(s->sse);
        fm_jobs_stop(s->jobs);
        double deadline = fm_clock_seconds() + s->config.drain_seconds;
        while (atomic_load(&s->in_flight) > 0 && fm_clock_seconds() < deadline)
            usleep(2000);
        for (int i = 0; i < s->ndaemons; i++)
            MHD_stop_daemon(s->daemons[i]);
    }
    if (s->watcher_running) {
        pthread_mutex_lock(&s->watch_lock);
        s->stopping = 1;
        pthread_cond_signal(&s->watch_wake);
        pthread_mutex_unlock(&s->watch_lock);
        pthread_join(s->watcher, NULL);
    }
    fm_jobs_close(s->jobs);
    fm_sse_hub_free(s->sse);
    fm_datasets_close(s->datasets);
    fm_conns_free(s->conns);
    fm_store_free(s->store);
    fm_audit_close(s->audit);
    fm_keyring_free(s->keyring);
    fm_keystore_close(s->keystore);
    fm_ratelimit_free(s->ratelimit);
    fm_pii_free(s->pii);
    if (s->tls_key) sodium_memzero(s->tls_key, strlen(s->tls_key));
    free(s->tls_key);
    free(s->tls_cert);
    free(s->tls_ca);
    fm_access_log_close(s->access_log);
    fm_metrics_free(s->metrics);
    fm_registry_close(s->registry);
    pthread_mutex_destroy(&s->watch_lock);
    pthread_cond_destroy(&s->watch_wake);
    free(s);
}
