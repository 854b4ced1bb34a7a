/*
 * fm_loadgen: an open-loop, constant-rate HTTP/1.1 load generator for the serving benchmark
 * (bench/serve_bench.py), in the manner of wrk2. A benchmark tool, not part of the product; it
 * depends on nothing but libc and Linux (epoll, timerfd).
 *
 *   fm_loadgen --url http://HOST:PORT/PATH [--body FILE] [--header 'K: V']... --rate R
 *              --connections C --duration S [--warmup S] [--poisson] [--timeout S] [--seed N]
 *
 * Why open loop: a closed-loop generator (wrk, ab) sends a connection's next request only after
 * the previous response, so when the server stalls the generator stops sending, and the requests
 * that would have arrived during the stall are never sent and never measured ("coordinated
 * omission"; wrk 4 only back-fills an estimate of them after the run). Here every request has a
 * scheduled send time fixed in advance (uniform spacing 1/R, or exponential inter-arrival times
 * with --poisson), independent of the responses. A request goes out on the first idle keep-alive
 * connection at or after its scheduled time, and its latency runs from the SCHEDULED time to the
 * last byte of the response, so time spent waiting for an idle connection, in the network or in the
 * server all counts.
 *
 * The schedule is implicit (the next due time and a counter), so a backlog costs no memory. The
 * one thread sleeps in epoll_wait; a timerfd armed at an absolute CLOCK_MONOTONIC time (exact,
 * unlike epoll_wait's millisecond timeout and its timer slack) wakes it for the next due
 * request when a connection is idle, and a connection freed by a response takes the next due
 * request at once. The request bytes are built once; a send is one send() call. Responses are
 * parsed minimally but strictly: status line, headers (Content-Length is required; "Connection:
 * close" and HTTP/1.0 make the generator reconnect after the response; Transfer-Encoding is
 * refused), then exactly Content-Length body bytes, which are counted and discarded. Any other byte
 * is a protocol error.
 *
 * Latencies go into log-linear histograms (128 buckets per power of two over nanoseconds, so a
 * bucket is at most 1/128 of its value wide and the reported midpoint is within 0.4%) from 1 ns
 * to 137 s. Four are kept: latency (scheduled -> response end, the figure that matters),
 * service time (first byte sent -> response end: what wrk measures), send delay (scheduled ->
 * first byte sent: the client-side queue) and the generator's own lateness (the part of the send
 * delay when a connection was free: timer wake-ups and scheduling, which must stay small for the
 * figures to describe the server).
 *
 * Phases: the connections are opened first; then the schedule starts. Requests scheduled in the
 * first --warmup seconds are sent but not measured; those scheduled in the following --duration
 * seconds are. After that nothing new is scheduled; the requests already due are still sent and
 * awaited for up to --timeout seconds, and what is left is reported as unsent / unanswered.
 * achieved_rps counts the responses that ARRIVED during the measured window (the server's
 * throughput); latency counts the responses to requests SCHEDULED in it.
 *
 * Output: one JSON object on stdout; usage errors on stderr with exit status 2.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S     1000000000LL
#define NEVER        INT64_MAX
#define MAX_HEADERS  64
#define MAX_CONNS    20000
#define MAX_BODY     (64u << 20)
#define HEAD_MAX     16384 /* a response's status line and headers, at most */
#define READ_CHUNK   65536
#define MAX_EVENTS   256
#define RETRY_NS     (10 * 1000 * 1000LL) /* wait before reconnecting after a failed connect */
#define HOUSEKEEP_NS (20 * 1000 * 1000LL) /* timeouts and reconnections are checked this often */
#define CONNECT_WAIT (2 * NS_PER_S)       /* for all connections to open before the start */

/* ---- histogram ---------------------------------------------------------------------------- */

#define HIST_SUB_BITS 7
#define HIST_SUB      (1 << HIST_SUB_BITS)
#define HIST_TOP_BITS 37 /* values are clamped below 2^37 ns, about 137 s */
#define HIST_BUCKETS  ((HIST_TOP_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

typedef struct {
    uint64_t counts[HIST_BUCKETS];
    uint64_t n;
    int64_t min_ns, max_ns;
    double sum_ns;
} hist_t;

/* Values below 2 * HIST_SUB have a bucket each; above, each power of two [2^k, 2^(k+1)) is cut
 * into HIST_SUB equal buckets, keeping the value's top HIST_SUB_BITS + 1 bits. */
static int hist_index(uint64_t v) {
    if (v >= (1ULL << HIST_TOP_BITS)) v = (1ULL << HIST_TOP_BITS) - 1;
    if (v < HIST_SUB) return (int)v;
    int shift = 63 - __builtin_clzll(v) - HIST_SUB_BITS;
    return (shift + 1) * HIST_SUB + (int)((v >> shift) - HIST_SUB);
}

/* The midpoint of bucket i's range of values. */
static double hist_value(int i) {
    int block = i / HIST_SUB;
    if (block == 0) return i;
    int shift = block - 1;
    double low = (double)((uint64_t)(HIST_SUB + i % HIST_SUB) << shift);
    return low + ((double)(1ULL << shift) - 1) / 2;
}

static void hist_record(hist_t *h, int64_t ns) {
    if (ns < 0) ns = 0;
    h->counts[hist_index((uint64_t)ns)]++;
    if (h->n == 0 || ns < h->min_ns) h->min_ns = ns;
    if (ns > h->max_ns) h->max_ns = ns;
    h->n++;
    h->sum_ns += (double)ns;
}

/* The value at percentile p (0 < p <= 100): the smallest recorded value with at least p% of
 * the samples at or below it, as its bucket's midpoint, kept within [min, max]. */
static double hist_percentile_ns(const hist_t *h, double p) {
    if (h->n == 0) return 0;
    uint64_t rank = (uint64_t)ceil(p / 100 * (double)h->n);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            double v = hist_value(i);
            if (v > (double)h->max_ns) v = (double)h->max_ns;
            if (v < (double)h->min_ns) v = (double)h->min_ns;
            return v;
        }
    }
    return (double)h->max_ns;
}

static void hist_print_json(const char *name, const hist_t *h) {
    static const struct {
        const char *key;
        double p;
    } points[] = {{"p50", 50}, {"p75", 75},    {"p90", 90},
                  {"p99", 99}, {"p999", 99.9}, {"p9999", 99.99}};
    printf("  \"%s\": {", name);
    for (size_t i = 0; i < sizeof points / sizeof points[0]; i++)
        printf("\"%s\": %.4f, ", points[i].key, hist_percentile_ns(h, points[i].p) / 1e6);
    printf("\"min\": %.4f, \"max\": %.4f, \"mean\": %.4f, \"count\": %" PRIu64 "}",
           h->n ? (double)h->min_ns / 1e6 : 0.0, (double)h->max_ns / 1e6,
           h->n ? h->sum_ns / (double)h->n / 1e6 : 0.0, h->n);
}

/* ---- options ------------------------------------------------------------------------------ */

typedef struct {
    const char *url;
    const char *body_path;
    const char *headers[MAX_HEADERS];
    int nheaders;
    double rate;
    int connections;
    double duration_s, warmup_s, timeout_s;
    int poisson;
    uint64_t seed;
} options_t;

static void usage(void) {
    fprintf(stderr,
            "usage: fm_loadgen --url http://HOST:PORT/PATH [--body FILE] [--header 'K: V']...\n"
            "                  --rate R --connections C --duration S [--warmup S] [--poisson]\n"
            "                  [--timeout S] [--seed N]\n"
            "Sends POST (with --body) or GET requests at a constant aggregate rate R, open loop,\n"
            "on C keep-alive connections; latency runs from each request's scheduled time.\n"
            "Prints one JSON object on stdout.\n");
}

static int fail(const char *fmt, const char *arg) {
    fprintf(stderr, "fm_loadgen: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return -1;
}

static int parse_double(const char *name, const char *text, double min, double *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < min) {
        fprintf(stderr, "fm_loadgen: %s %s: a number >= %g expected\n", name, text, min);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, options_t *o) {
    memset(o, 0, sizeof *o);
    o->rate = -1;
    o->connections = -1;
    o->duration_s = -1;
    o->timeout_s = 10;
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--poisson")) {
            o->poisson = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            exit(0);
        }
        static const char *const valued[] = {"--url",    "--body",        "--header",
                                             "--rate",   "--connections", "--duration",
                                             "--warmup", "--timeout",     "--seed"};
        size_t k = 0;
        while (k < sizeof valued / sizeof valued[0] && strcmp(a, valued[k]))
            k++;
        if (k == sizeof valued / sizeof valued[0]) return fail("unknown option %s (see --help)", a);
        if (i + 1 >= argc) return fail("%s: a value expected (see --help)", a);
        const char *v = argv[++i];
        double d;
        if (!strcmp(a, "--url")) {
            o->url = v;
        } else if (!strcmp(a, "--body")) {
            o->body_path = v;
        } else if (!strcmp(a, "--header")) {
            if (o->nheaders == MAX_HEADERS) return fail("more than %s --header options", "64");
            o->headers[o->nheaders++] = v;
        } else if (!strcmp(a, "--rate")) {
            if (parse_double(a, v, 1e-9, &o->rate)) return -1;
        } else if (!strcmp(a, "--connections")) {
            if (parse_double(a, v, 1, &d)) return -1;
            if (d > MAX_CONNS || d != floor(d))
                return fail("--connections %s: an integer from 1 to 20000 expected", v);
            o->connections = (int)d;
        } else if (!strcmp(a, "--duration")) {
            if (parse_double(a, v, 1e-3, &o->duration_s)) return -1;
        } else if (!strcmp(a, "--warmup")) {
            if (parse_double(a, v, 0, &o->warmup_s)) return -1;
        } else if (!strcmp(a, "--timeout")) {
            if (parse_double(a, v, 1e-3, &o->timeout_s)) return -1;
        } else { /* --seed */
            if (parse_double(a, v, 0, &d)) return -1;
            if (d != floor(d) || d > 1e18)
                return fail("--seed %s: a non-negative integer expected", v);
            o->seed = (uint64_t)d;
        }
    }
    if (!o->url) return fail("%s is required (see --help)", "--url");
    if (o->rate < 0) return fail("%s is required (see --help)", "--rate");
    if (o->connections < 0) return fail("%s is required (see --help)", "--connections");
    if (o->duration_s < 0) return fail("%s is required (see --help)", "--duration");
    if (o->duration_s + o->warmup_s > 86400) return fail("%s", "--warmup + --duration > 1 day");
    return 0;
}

/* ---- the request -------------------------------------------------------------------------- */

typedef struct {
    char host[256]; /* for getaddrinfo, without IPv6 brackets */
    char port[8];
    char authority[300]; /* for the Host header, as written in the URL */
    const char *path;
} url_t;

static int parse_url(const char *url, url_t *u) {
    const char *p = url;
    if (strncasecmp(p, "http://", 7)) return fail("--url %s: only http:// URLs are supported", url);
    p += 7;
    const char *slash = strchr(p, '/');
    size_t alen = slash ? (size_t)(slash - p) : strlen(p);
    if (alen == 0 || alen >= sizeof u->authority) return fail("--url %s: no host or too long", url);
    memcpy(u->authority, p, alen);
    u->authority[alen] = 0;
    u->path = slash ? slash : "/";
    const char *host = u->authority, *colon;
    size_t hlen;
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        if (!close) return fail("--url %s: unclosed [ in the host", url);
        host++;
        hlen = (size_t)(close - host);
        colon = close[1] == ':' ? close + 1 : NULL;
        if (!colon && close[1]) return fail("--url %s: junk after the host", url);
    } else {
        colon = strchr(host, ':');
        hlen = colon ? (size_t)(colon - host) : alen;
    }
    if (hlen == 0 || hlen >= sizeof u->host) return fail("--url %s: bad host", url);
    memcpy(u->host, host, hlen);
    u->host[hlen] = 0;
    const char *port = colon ? colon + 1 : "80";
    size_t plen = strlen(port);
    if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen || atoi(port) < 1 ||
        atoi(port) > 65535)
        return fail("--url %s: bad port", url);
    memcpy(u->port, port, plen + 1);
    for (const char *c = u->path; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f) return fail("--url %s: bad path", url);
    return 0;
}

static int read_file(const char *path, char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fm_loadgen: --body %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_BODY) {
        fclose(f);
        return fail("--body %s: not a regular file of at most 64 MiB", path);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    int bad = !buf || n != (size_t)st.st_size || ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return fail("--body %s: could not read it", path);
    }
    *out = buf;
    *len = n;
    return 0;
}

/* The request bytes, built once: request line, Host (unless given), the --header lines,
 * Content-Length when there is a body, a blank line, the body. */
static int build_request(const options_t *o, const url_t *u, char **out, size_t *len) {
    char *body = NULL;
    size_t body_len = 0;
    if (o->body_path && read_file(o->body_path, &body, &body_len)) return -1;
    int has_host = 0;
    size_t head = strlen(u->path) + strlen(u->authority) + 128;
    for (int i = 0; i < o->nheaders; i++) {
        const char *h = o->headers[i];
        const char *colon = strchr(h, ':');
        if (!colon || colon == h || strpbrk(h, "\r\n") || strcspn(h, " \t") < (size_t)(colon - h)) {
            free(body);
            return fail("--header '%s': 'Name: value' expected", h);
        }
        size_t nlen = (size_t)(colon - h);
        if (nlen == 14 && !strncasecmp(h, "content-length", 14)) {
            free(body);
            return fail("--header '%s': Content-Length comes from --body", h);
        }
        if (nlen == 4 && !strncasecmp(h, "host", 4)) has_host = 1;
        head += strlen(h) + 2;
    }
    char *buf = malloc(head + body_len);
    if (!buf) {
        free(body);
        return fail("%s", "out of memory");
    }
    size_t n = (size_t)sprintf(buf, "%s %s HTTP/1.1\r\n", body ? "POST" : "GET", u->path);
    if (!has_host) n += (size_t)sprintf(buf + n, "Host: %s\r\n", u->authority);
    for (int i = 0; i < o->nheaders; i++)
        n += (size_t)sprintf(buf + n, "%s\r\n", o->headers[i]);
    if (body) n += (size_t)sprintf(buf + n, "Content-Length: %zu\r\n", body_len);
    n += (size_t)sprintf(buf + n, "\r\n");
    if (body_len) memcpy(buf + n, body, body_len);
    free(body);
    *out = buf;
    *len = n + body_len;
    return 0;
}

/* ---- connections and the response parser ------------------------------------------------- */

enum { CONN_CLOSED, CONN_CONNECTING, CONN_IDLE, CONN_WRITING, CONN_READING };
enum { ERR_CONNECT, ERR_READ, ERR_WRITE, ERR_TIMEOUT, ERR_PROTOCOL, ERR_KINDS };
static const char *const error_names[ERR_KINDS] = {"connect", "read", "write", "timeout",
                                                   "protocol"};

typedef struct {
    int fd;
    int state;
    int64_t scheduled_ns; /* the request in flight: when it was due */
    int64_t sent_ns;      /* and when its first byte went out */
    size_t written;
    int64_t retry_ns;      /* CONN_CLOSED: when to reconnect */
    int64_t idle_since_ns; /* CONN_IDLE: since when */
    /* the response being parsed */
    size_t have;      /* bytes of the header block in head */
    int headers_done; /* then body_left bytes of body follow */
    uint64_t body_left;
    int status;
    int close_after;
    char head[HEAD_MAX + 1];
} conn_t;

/* Counts for one phase (warm-up or measured) of requests, by their scheduled time. */
typedef struct {
    uint64_t sent, responses, non2xx;
    uint64_t errors[ERR_KINDS];
} counts_t;

typedef struct {
    options_t opt;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char *request;
    size_t request_len;
    conn_t *conns;
    int *idle; /* FIFO ring of idle connections: the longest idle goes first */
    int idle_head, idle_count;
    int open_count; /* connections idle or busy */
    int busy_count; /* connections with a request in flight */
    int ep, timer_fd;
    int64_t timer_armed_ns;
    /* the schedule */
    int64_t start_ns, measure_ns, end_ns;
    int64_t next_due_ns;
    uint64_t scheduled; /* requests scheduled so far (due times handed out) */
    double interval_ns;
    uint64_t rng;
    /* results */
    hist_t latency, service, send_delay, lateness;
    counts_t warm, measured;
    uint64_t window_responses; /* responses that arrived in [measure_ns, end_ns) */
    uint64_t reconnects;
    uint64_t unsent, unanswered;
    char scratch[READ_CHUNK];
} loadgen_t;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void idle_push(loadgen_t *g, int i, int64_t now) {
    g->conns[i].idle_since_ns = now;
    g->idle[(g->idle_head + g->idle_count) % g->opt.connections] = i;
    g->idle_count++;
}

static conn_t *idle_pop(loadgen_t *g) {
    int i = g->idle[g->idle_head];
    g->idle_head = (g->idle_head + 1) % g->opt.connections;
    g->idle_count--;
    return &g->conns[i];
}

static void idle_remove(loadgen_t *g, int i) {
    int n = g->opt.connections, kept = 0;
    for (int k = 0; k < g->idle_count; k++) {
        int j = g->idle[(g->idle_head + k) % n];
        if (j != i) g->idle[(g->idle_head + kept++) % n] = j;
    }
    g->idle_count = kept;
}

static counts_t *phase_of(loadgen_t *g, int64_t scheduled_ns) {
    return scheduled_ns >= g->measure_ns ? &g->measured : &g->warm;
}

static void conn_open(loadgen_t *g, conn_t *c, int64_t now);
static void parser_reset(conn_t *c);

/* Closes c after an error of kind err (-1: none, e.g. the server closed an idle connection).
 * The request in flight, if any, is lost and its error counts in its phase; an error with no
 * request (a failed connect) counts in the phase of the moment. Reconnects at once, or after
 * RETRY_NS when the connection never opened. */
static void conn_close(loadgen_t *g, conn_t *c, int err, int64_t now) {
    int busy = c->state == CONN_WRITING || c->state == CONN_READING;
    if (err >= 0) phase_of(g, busy ? c->scheduled_ns : now)->errors[err]++;
    if (busy) g->busy_count--;
    if (c->state == CONN_IDLE) idle_remove(g, (int)(c - g->conns));
    if (c->state != CONN_CLOSED && c->state != CONN_CONNECTING) g->open_count--;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    parser_reset(c);
    int was_connecting = c->state == CONN_CONNECTING;
    c->state = CONN_CLOSED;
    if (was_connecting) {
        c->retry_ns = now + RETRY_NS;
    } else {
        g->reconnects++;
        conn_open(g, c, now);
    }
}

static void conn_ready(loadgen_t *g, conn_t *c) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->state = CONN_IDLE;
    g->open_count++;
    idle_push(g, (int)(c - g->conns), now_ns());
}

static void conn_open(loadgen_t *g, conn_t *c, int64_t now) {
    c->state = CONN_CONNECTING;
    c->fd = socket(g->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (c->fd < 0) {
        conn_close(g, c, ERR_CONNECT, now);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(g->ep, EPOLL_CTL_ADD, c->fd, &ev) ||
        (connect(c->fd, (struct sockaddr *)&g->addr, g->addr_len) && errno != EINPROGRESS)) {
        conn_close(g, c, ERR_CONNECT, now);
        return;
    }
    /* Completion (even an immediate one) is reported by EPOLLOUT. */
}

static void parser_reset(conn_t *c) {
    c->have = 0;
    c->headers_done = 0;
    c->body_left = 0;
    c->status = 0;
    c->close_after = 0;
}

static int token_in_list(const char *v, size_t len, const char *token) {
    size_t tlen = strlen(token), i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end - start == tlen && !strncasecmp(v + start, token, tlen)) return 1;
    }
    return 0;
}

/* Parses the header block head[0, have) (ending in CRLF CRLF): status, Content-Length,
 * Connection. Returns 0, or -1 when it is malformed or has no usable length. */
static int parse_head(conn_t *c) {
    char *p = c->head, *end = c->head + c->have;
    char *eol = memchr(p, '\r', (size_t)(end - p));
    if (eol - p < 12 || memcmp(p, "HTTP/1.", 7) || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
        strspn(p + 9, "0123456789") < 3 || (eol - p > 12 && p[12] != ' '))
        return -1;
    int http10 = p[7] == '0';
    c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    int have_length = 0, keep_alive = 0, close = 0;
    uint64_t length = 0;
    for (p = eol + 2; p < end - 2; p = eol + 2) {
        eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol || eol[1] != '\n') return -1;
        char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p) return -1;
        size_t nlen = (size_t)(colon - p);
        char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        size_t vlen = (size_t)(eol - v);
        while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        if (nlen == 14 && !strncasecmp(p, "content-length", 14)) {
            uint64_t n = 0;
            if (vlen == 0 || vlen > 15) return -1;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9') return -1;
                n = n * 10 + (uint64_t)(v[i] - '0');
            }
            if (have_length && n != length) return -1;
            have_length = 1;
            length = n;
        } else if (nlen == 10 && !strncasecmp(p, "connection", 10)) {
            close |= token_in_list(v, vlen, "close");
            keep_alive |= token_in_list(v, vlen, "keep-alive");
        } else if (nlen == 17 && !strncasecmp(p, "transfer-encoding", 17)) {
            return -1; /* chunked bodies are not supported; servers under test send a length */
        }
    }
    c->close_after = close || (http10 && !keep_alive);
    if (c->status / 100 == 1 || c->status == 204 || c->status == 304) {
        c->body_left = 0;
        return 0;
    }
    if (!have_length) return -1;
    c->body_left = length;
    return 0;
}

/* A complete response on c at time now. */
static void response_done(loadgen_t *g, conn_t *c, int64_t now) {
    counts_t *phase = phase_of(g, c->scheduled_ns);
    phase->responses++;
    if (c->status / 100 != 2) phase->non2xx++;
    if (now >= g->measure_ns && now < g->end_ns) g->window_responses++;
    if (phase == &g->measured) {
        hist_record(&g->latency, now - c->scheduled_ns);
        hist_record(&g->service, now - c->sent_ns);
        hist_record(&g->send_delay, c->sent_ns - c->scheduled_ns);
    }
    int close_after = c->close_after;
    parser_reset(c);
    g->busy_count--;
    c->state = CONN_IDLE;
    if (close_after) {
        conn_close(g, c, -1, now); /* the server asked for it: nothing is lost */
        return;
    }
    idle_push(g, (int)(c - g->conns), now);
}

/* Feeds n received bytes to c's parser. Returns 0, or an error kind after which c must close. */
static int conn_feed(loadgen_t *g, conn_t *c, const char *p, size_t n, int64_t now) {
    while (n > 0) {
        if (c->state != CONN_READING && c->state != CONN_WRITING) return ERR_PROTOCOL;
        if (!c->headers_done) {
            size_t room = HEAD_MAX - c->have;
            size_t take = n < room ? n : room;
            size_t from = c->have > 3 ? c->have - 3 : 0;
            memcpy(c->head + c->have, p, take);
            char *blank = memmem(c->head + from, c->have + take - from, "\r\n\r\n", 4);
            if (!blank) {
                c->have += take;
                if (c->have == HEAD_MAX) return ERR_PROTOCOL;
                return 0;
            }
            size_t head_len = (size_t)(blank - c->head) + 4;
            size_t used = head_len - c->have;
            c->have = head_len;
            c->head[head_len] = 0;
            p += used;
            n -= used;
            if (parse_head(c)) return ERR_PROTOCOL;
            if (c->status / 100 == 1) { /* an interim response: the real one follows */
                parser_reset(c);
                continue;
            }
            c->headers_done = 1;
        }
        size_t take = n < c->body_left ? n : (size_t)c->body_left;
        c->body_left -= take;
        p += take;
        n -= take;
        if (c->body_left == 0) {
            if (c->state == CONN_WRITING) return ERR_PROTOCOL; /* answered before asked */
            if (n > 0) return ERR_PROTOCOL;                    /* bytes nobody asked for */
            response_done(g, c, now);
        }
    }
    return 0;
}

static void conn_readable(loadgen_t *g, conn_t *c) {
    ssize_t n = recv(c->fd, g->scratch, sizeof g->scratch, 0);
    int64_t now = now_ns();
    if (n > 0) {
        int err = conn_feed(g, c, g->scratch, (size_t)n, now);
        if (err) conn_close(g, c, err, now);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    /* The end of the stream: harmless on an idle connection (the server's keep-alive timeout);
     * otherwise the request in flight is lost. */
    int busy = c->state == CONN_READING || c->state == CONN_WRITING;
    conn_close(g, c, busy ? ERR_READ : -1, now);
}

static void conn_write_rest(loadgen_t *g, conn_t *c, int64_t now) {
    while (c->written < g->request_len) {
        ssize_t n = send(c->fd, g->request + c->written, g->request_len - c->written, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            conn_close(g, c, ERR_WRITE, now);
            return;
        }
        c->written += (size_t)n;
    }
    int done = c->written == g->request_len;
    int want = done ? EPOLLIN : EPOLLIN | EPOLLOUT;
    int had = c->state == CONN_WRITING ? EPOLLIN | EPOLLOUT : EPOLLIN;
    if (want != had) {
        struct epoll_event ev = {.events = (uint32_t)want, .data.ptr = c};
        epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    c->state = done ? CONN_READING : CONN_WRITING;
}

static void conn_send(loadgen_t *g, conn_t *c, int64_t scheduled_ns) {
    int64_t now = now_ns();
    c->scheduled_ns = scheduled_ns;
    c->sent_ns = now;
    c->written = 0;
    counts_t *phase = phase_of(g, scheduled_ns);
    phase->sent++;
    /* The generator's own lateness: from when the request could first have gone out (it was
     * due and a connection was free) to when it did. The rest of the send delay is waiting for
     * a connection, i.e. for the server. */
    if (phase == &g->measured)
        hist_record(&g->lateness,
                    now - (scheduled_ns > c->idle_since_ns ? scheduled_ns : c->idle_since_ns));
    g->busy_count++;
    c->state = CONN_READING; /* so that a write failure counts against this request */
    conn_write_rest(g, c, now);
}

static void conn_event(loadgen_t *g, conn_t *c, uint32_t events) {
    if (c->state == CONN_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err ||
            (events & (EPOLLERR | EPOLLHUP))) {
            conn_close(g, c, ERR_CONNECT, now_ns());
            return;
        }
        conn_ready(g, c);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        conn_readable(g, c);
        if (c->state != CONN_WRITING) return;
    }
    if ((events & EPOLLOUT) && c->state == CONN_WRITING) conn_write_rest(g, c, now_ns());
}

/* ---- the schedule ------------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Hands out the current due time and moves to the next one: start + i / rate for the i-th
 * request (computed from i, so no rounding accumulates), or the previous one plus an
 * exponential gap of mean 1 / rate. */
static void schedule_advance(loadgen_t *g) {
    g->scheduled++;
    if (g->opt.poisson) {
        double u = (double)(rng_next(&g->rng) >> 11) * 0x1.0p-53; /* in [0, 1) */
        g->next_due_ns += (int64_t)llround(-log1p(-u) * g->interval_ns);
    } else {
        g->next_due_ns = g->start_ns + (int64_t)llround((double)g->scheduled * g->interval_ns);
    }
}

static void dispatch(loadgen_t *g) {
    while (g->idle_count > 0 && g->next_due_ns < g->end_ns && g->next_due_ns <= now_ns()) {
        conn_t *c = idle_pop(g);
        conn_send(g, c, g->next_due_ns);
        schedule_advance(g);
    }
}

static void housekeep(loadgen_t *g, int64_t now) {
    int64_t timeout_ns = (int64_t)(g->opt.timeout_s * NS_PER_S);
    for (int i = 0; i < g->opt.connections; i++) {
        conn_t *c = &g->conns[i];
        if ((c->state == CONN_READING || c->state == CONN_WRITING) && now - c->sent_ns > timeout_ns)
            conn_close(g, c, ERR_TIMEOUT, now);
        else if (c->state == CONN_CLOSED && c->retry_ns <= now)
            conn_open(g, c, now);
    }
}

static void arm_timer(loadgen_t *g, int64_t at_ns) {
    if (at_ns == g->timer_armed_ns) return;
    struct itimerspec its = {.it_value = {.tv_sec = at_ns / NS_PER_S, .tv_nsec = at_ns % NS_PER_S}};
    timerfd_settime(g->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
    g->timer_armed_ns = at_ns;
}

/* Arms the timer for wake_ns (the past: at once), then waits for and handles one batch of
 * events. */
static void poll_once(loadgen_t *g, int64_t wake_ns) {
    struct epoll_event events[MAX_EVENTS];
    arm_timer(g, wake_ns);
    int n = epoll_wait(g->ep, events, MAX_EVENTS, -1);
    for (int i = 0; i < n; i++) {
        if (events[i].data.ptr == NULL) {
            /* Clears the expiry; EAGAIN when it was re-armed after firing, which is fine. */
            uint64_t expirations;
            ssize_t r = read(g->timer_fd, &expirations, sizeof expirations);
            (void)r;
            g->timer_armed_ns = 0;
            continue;
        }
        conn_event(g, events[i].data.ptr, events[i].events);
        /* A connection freed by a response takes the next due request at once, not after the
         * whole batch: under a backlog that is what keeps the server's queue fed. */
        dispatch(g);
    }
}

static int64_t min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

static void run(loadgen_t *g) {
    int64_t now = now_ns();
    for (int i = 0; i < g->opt.connections; i++)
        conn_open(g, &g->conns[i], now);
    /* Open every connection before the clock starts: connecting is not what is measured. */
    int64_t give_up = now + CONNECT_WAIT;
    while (g->open_count < g->opt.connections && (now = now_ns()) < give_up) {
        housekeep(g, now);
        poll_once(g, min64(give_up, now + RETRY_NS));
    }
    now = now_ns();
    g->start_ns = now;
    g->next_due_ns = now;
    g->measure_ns = now + (int64_t)llround(g->opt.warmup_s * NS_PER_S);
    g->end_ns = g->measure_ns + (int64_t)llround(g->opt.duration_s * NS_PER_S);
    int64_t drain_end = g->end_ns + (int64_t)llround(g->opt.timeout_s * NS_PER_S);
    int64_t next_housekeep = now + HOUSEKEEP_NS;
    for (;;) {
        now = now_ns();
        if (now >= next_housekeep) {
            housekeep(g, now);
            next_housekeep = now + HOUSEKEEP_NS;
        }
        dispatch(g);
        now = now_ns();
        if (now >= g->end_ns && g->next_due_ns >= g->end_ns && g->busy_count == 0) break;
        if (now >= drain_end) break;
        int64_t wake = min64(next_housekeep, drain_end);
        if (now < g->end_ns) wake = min64(wake, g->end_ns);
        if (g->idle_count > 0 && g->next_due_ns < g->end_ns) wake = min64(wake, g->next_due_ns);
        poll_once(g, wake);
    }
    /* What the drain did not finish: requests never sent, and requests never answered. */
    for (; g->next_due_ns < g->end_ns; schedule_advance(g))
        if (g->next_due_ns >= g->measure_ns) g->unsent++;
    for (int i = 0; i < g->opt.connections; i++) {
        conn_t *c = &g->conns[i];
        if ((c->state == CONN_READING || c->state == CONN_WRITING) &&
            c->scheduled_ns >= g->measure_ns)
            g->unanswered++;
    }
}

static void print_results(const loadgen_t *g) {
    const counts_t *m = &g->measured, *w = &g->warm;
    uint64_t errors = 0, warm_errors = 0;
    for (int k = 0; k < ERR_KINDS; k++) {
        errors += m->errors[k];
        warm_errors += w->errors[k];
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("{\n  \"target_rps\": %.3f,\n  \"achieved_rps\": %.3f,\n", g->opt.rate,
           (double)g->window_responses / g->opt.duration_s);
    printf("  \"requests\": %" PRIu64 ",\n  \"errors\": %" PRIu64 ",\n  \"non2xx\": %" PRIu64 ",\n",
           g->latency.n, errors, m->non2xx);
    hist_print_json("latency_ms", &g->latency);
    printf(",\n");
    hist_print_json("service_ms", &g->service);
    printf(",\n");
    hist_print_json("send_delay_ms", &g->send_delay);
    printf(",\n");
    hist_print_json("generator_lateness_ms", &g->lateness);
    printf(",\n  \"connections\": %d,\n  \"duration_s\": %.3f,\n  \"warmup_s\": %.3f,\n",
           g->opt.connections, g->opt.duration_s, g->opt.warmup_s);
    printf("  \"arrivals\": \"%s\",\n  \"sent\": %" PRIu64 ",\n  \"responses_in_window\": %" PRIu64
           ",\n",
           g->opt.poisson ? "poisson" : "uniform", m->sent, g->window_responses);
    printf("  \"unsent\": %" PRIu64 ",\n  \"unanswered\": %" PRIu64 ",\n", g->unsent,
           g->unanswered);
    printf("  \"socket_errors\": {");
    for (int k = 0; k < ERR_KINDS; k++)
        printf("%s\"%s\": %" PRIu64, k ? ", " : "", error_names[k], m->errors[k]);
    printf("},\n  \"reconnects\": %" PRIu64 ",\n", g->reconnects);
    printf("  \"warmup\": {\"sent\": %" PRIu64 ", \"responses\": %" PRIu64 ", \"errors\": %" PRIu64
           ", \"non2xx\": %" PRIu64 "},\n",
           w->sent, w->responses, warm_errors, w->non2xx);
    printf("  \"generator_cpu_s\": %.3f\n}\n", cpu);
}

int main(int argc, char **argv) {
    static loadgen_t g; /* big (histograms, buffers): not on the stack */
    if (parse_options(argc, argv, &g.opt)) return 2;
    url_t url;
    if (parse_url(g.opt.url, &url) || build_request(&g.opt, &url, &g.request, &g.request_len))
        return 2;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(url.host, url.port, &hints, &ai);
    if (rc) {
        fprintf(stderr, "fm_loadgen: --url %s: %s\n", g.opt.url, gai_strerror(rc));
        return 2;
    }
    memcpy(&g.addr, ai->ai_addr, ai->ai_addrlen);
    g.addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);

    struct rlimit rl;
    rlim_t need = (rlim_t)g.opt.connections + 16;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < need) {
            fprintf(stderr, "fm_loadgen: --connections %d: the open-file limit is %llu\n",
                    g.opt.connections, (unsigned long long)rl.rlim_cur);
            return 2;
        }
    }
    /* Timers (the epoll wake-ups) as exact as the kernel allows: the default 50 us slack would
     * land in the measured latency. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    g.conns = calloc((size_t)g.opt.connections, sizeof *g.conns);
    g.idle = calloc((size_t)g.opt.connections, sizeof *g.idle);
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    g.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (!g.conns || !g.idle || g.ep < 0 || g.timer_fd < 0) {
        fprintf(stderr, "fm_loadgen: out of memory or file descriptors\n");
        return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(g.ep, EPOLL_CTL_ADD, g.timer_fd, &ev);
    for (int i = 0; i < g.opt.connections; i++)
        g.conns[i].fd = -1;
    g.interval_ns = 1e9 / g.opt.rate;
    /* Until the start nothing is due, and connect errors count as warm-up. */
    g.next_due_ns = g.measure_ns = g.end_ns = NEVER;
    g.rng = g.opt.seed;
    run(&g);
    print_results(&g);
    for (int i = 0; i < g.opt.connections; i++)
        if (g.conns[i].fd >= 0) close(g.conns[i].fd);
    close(g.timer_fd);
    close(g.ep);
    free(g.conns);
    free(g.idle);
    free(g.request);
    return 0;
}
