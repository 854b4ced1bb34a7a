/*
 * Tests of the serving metrics (src/observe/metrics.c): bucket boundaries of the latency and
 * batch histograms (an observation equal to a bound belongs to that bucket, as "le" means <=),
 * sums and counts, exact totals under 8 threads of concurrent updates, registration of many
 * (model, version) pairs, and the rendered exposition parsed back here by an independent reader
 * of the Prometheus text format: HELP and TYPE once per family and before its samples, samples of
 * a family together, cumulative buckets non-decreasing with +Inf equal to _count, label escaping,
 * and process gauges compared with /proc read another way.
 */
#include "observe/metrics.h"

#include "fm_test.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

/* The contract's bounds, written out again rather than taken from the implementation. */
static const double LATENCY_BOUNDS[FM_LATENCY_BUCKETS] = {
    50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3,
    25e-3, 50e-3,  100e-3, 250e-3, 0.5,  1.0,    2.5,  10.0,
};

static uint64_t count_of(fm_histogram_t *h, int bucket) {
    return atomic_load(&h->counts[bucket]);
}

static fm_metrics_t *new_metrics(void) {
    fm_metrics_t *m = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_metrics_new(&m, &err), FM_OK);
    return m;
}

static void test_latency_buckets(void) {
    fm_metrics_t *m = new_metrics();
    fm_model_stats_t *s = fm_metrics_model(m, "credit", 1);
    FM_CHECK(s != NULL);
    fm_histogram_t *h = &s->compute;
    for (int b = 0; b < FM_LATENCY_BUCKETS; b++) {
        /* Exactly on the bound: this bucket. Just above: the next one. */
        fm_histogram_observe_seconds(h, LATENCY_BOUNDS[b]);
        FM_CHECK_MSG(count_of(h, b) == 1, "bound %g", LATENCY_BOUNDS[b]);
        fm_histogram_observe_seconds(h, nextafter(LATENCY_BOUNDS[b], INFINITY));
        FM_CHECK_MSG(count_of(h, b + 1) == 1, "above bound %g", LATENCY_BOUNDS[b]);
        /* Just below a bound stays in the bucket. */
        fm_histogram_observe_seconds(h, nextafter(LATENCY_BOUNDS[b], 0));
        FM_CHECK_MSG(count_of(h, b) == 2, "below bound %g", LATENCY_BOUNDS[b]);
        atomic_store(&h->counts[b], 0);
        atomic_store(&h->counts[b + 1], 0);
    }
    atomic_store(&h->count, 0);
    atomic_store(&h->sum_nanos, 0);

    fm_histogram_observe_seconds(h, 0.0);
    fm_histogram_observe_seconds(h, -1.0); /* impossible: first bucket, nothing added to the sum */
    FM_CHECK_INT(count_of(h, 0), 2);
    fm_histogram_observe_seconds(h, 11.0);
    fm_histogram_observe_seconds(h, INFINITY);
    fm_histogram_observe_seconds(h, NAN);
    FM_CHECK_INT(count_of(h, FM_LATENCY_BUCKETS), 3);
    FM_CHECK_INT(atomic_load(&h->count), 5);
    atomic_store(&h->sum_nanos, 0);
    fm_histogram_observe_seconds(h, 0.001);
    fm_histogram_observe_seconds(h, 1.5);
    fm_histogram_observe_seconds(h, 123e-9);
    FM_CHECK_INT(atomic_load(&h->sum_nanos), 1000000 + 1500000000 + 123);
    FM_CHECK_INT(atomic_load(&h->count), 8);
    fm_metrics_free(m);
}

static void test_batch_buckets(void) {
    fm_metrics_t *m = new_metrics();
    fm_histogram_t *h = &fm_metrics_model(m, "credit", 1)->batch;
    /* rows -> bucket index, with bucket b holding rows <= 2^b */
    static const struct {
        uint64_t rows;
        int bucket;
    } cases[] = {{0, 0},  {1, 0},   {2, 1},    {3, 2},     {4, 2},     {5, 3},        {64, 6},
                 {65, 7}, {512, 9}, {513, 10}, {1024, 10}, {1025, 11}, {1u << 20, 11}};
    uint64_t expect[FM_BATCH_BUCKETS + 1] = {0}, sum = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fm_histogram_observe_batch(h, cases[i].rows);
        expect[cases[i].bucket]++;
        sum += cases[i].rows;
    }
    for (int b = 0; b <= FM_BATCH_BUCKETS; b++)
        FM_CHECK_MSG(count_of(h, b) == expect[b], "bucket %d", b);
    FM_CHECK_INT(atomic_load(&h->count), sizeof cases / sizeof cases[0]);
    FM_CHECK_INT(atomic_load(&h->sum_nanos), sum);
    fm_metrics_free(m);
}

/* ---- concurrency ---- */

enum { THREADS = 8, PER_THREAD = 100000 };

typedef struct {
    fm_metrics_t *metrics;
    int id;
} worker_t;

/* Thread t's i-th observation: a latency of (i % 20 + 1) * 100 us in the shared model, i % 50 + 1
 * rows, a success unless i % 7 == 0, and HTTP status 200 + t % 3. */
static void *worker_main(void *arg) {
    worker_t *w = arg;
    fm_model_stats_t *s = fm_metrics_model(w->metrics, "shared", 7);
    for (int i = 0; i < PER_THREAD; i++) {
        atomic_fetch_add_explicit(&s->in_flight, 1, memory_order_relaxed);
        fm_histogram_observe_seconds(&s->compute, (i % 20 + 1) * 100e-6);
        fm_histogram_observe_batch(&s->batch, (uint64_t)(i % 50 + 1));
        atomic_fetch_add_explicit(&s->inferences, (uint64_t)(i % 50 + 1), memory_order_relaxed);
        atomic_fetch_add_explicit(i % 7 ? &s->success : &s->failure, 1, memory_order_relaxed);
        fm_metrics_http(w->metrics, 200 + w->id % 3);
        atomic_fetch_sub_explicit(&s->in_flight, 1, memory_order_relaxed);
        /* Registration and rendering race with the updates too. */
        if (i % 10000 == 0) {
            char name[32];
            snprintf(name, sizeof name, "t%d-%d", w->id, i);
            FM_CHECK(fm_metrics_model(w->metrics, name, 1) != NULL);
            fm_buf_t out = FM_BUF_INIT;
            FM_CHECK_INT(fm_metrics_render(w->metrics, &out), FM_OK);
            fm_buf_free(&out);
        }
    }
    return NULL;
}

static void test_concurrent_updates(void) {
    fm_metrics_t *m = new_metrics();
    pthread_t threads[THREADS];
    worker_t workers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (worker_t){m, t};
        pthread_create(&threads[t], NULL, worker_main, &workers[t]);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);

    /* Expected totals, counted the slow way. */
    uint64_t lat[FM_LATENCY_BUCKETS + 1] = {0}, lat_sum = 0, rows = 0, fails = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        int k = i % 20 + 1; /* latency in units of 100 us */
        double x = k * 100e-6;
        int b = 0;
        while (b < FM_LATENCY_BUCKETS && x > LATENCY_BOUNDS[b])
            b++;
        lat[b] += THREADS;
        lat_sum += (uint64_t)k * 100000 * THREADS;
        rows += (uint64_t)(i % 50 + 1) * THREADS;
        fails += i % 7 == 0 ? THREADS : 0;
    }
    fm_model_stats_t *s = fm_metrics_model(m, "shared", 7);
    for (int b = 0; b <= FM_LATENCY_BUCKETS; b++)
        FM_CHECK_MSG(count_of(&s->compute, b) == lat[b],
                     "latency bucket %d: %" PRIu64 " vs %" PRIu64, b, count_of(&s->compute, b),
                     lat[b]);
    FM_CHECK_INT(atomic_load(&s->compute.count), (uint64_t)THREADS * PER_THREAD);
    FM_CHECK_INT(atomic_load(&s->compute.sum_nanos), lat_sum);
    FM_CHECK_INT(atomic_load(&s->batch.count), (uint64_t)THREADS * PER_THREAD);
    FM_CHECK_INT(atomic_load(&s->batch.sum_nanos), rows);
    FM_CHECK_INT(atomic_load(&s->inferences), rows);
    FM_CHECK_INT(atomic_load(&s->failure), fails);
    FM_CHECK_INT(atomic_load(&s->success), (uint64_t)THREADS * PER_THREAD - fails);
    FM_CHECK_INT(atomic_load(&s->in_flight), 0);

    fm_buf_t out = FM_BUF_INIT;
    FM_CHECK_INT(fm_metrics_render(m, &out), FM_OK);
    /* Threads 0, 3, 6 answered 200; 1, 4, 7 answered 201; 2, 5 answered 202. */
    char line[128];
    snprintf(line, sizeof line, "\nfinmaas_http_requests_total{code=\"200\"} %d\n", 3 * PER_THREAD);
    FM_CHECK(strstr(out.data, line) != NULL);
    snprintf(line, sizeof line, "\nfinmaas_http_requests_total{code=\"202\"} %d\n", 2 * PER_THREAD);
    FM_CHECK(strstr(out.data, line) != NULL);
    fm_buf_free(&out);
    fm_metrics_free(m);
}

/* ---- registration ---- */

static void test_many_models(void) {
    fm_metrics_t *m = new_metrics();
    enum { N = 3000, VERSIONS = 3 };
    static fm_model_stats_t *seen[N][VERSIONS];
    char name[32];
    for (int i = 0; i < N; i++) {
        for (int v = 0; v < VERSIONS; v++) {
            snprintf(name, sizeof name, "model-%d", i);
            seen[i][v] = fm_metrics_model(m, name, v + 1);
            FM_CHECK(seen[i][v] != NULL);
            atomic_fetch_add(&seen[i][v]->success, (uint64_t)(i * VERSIONS + v));
        }
    }
    int distinct = 1;
    for (int i = 0; i < N; i++) {
        for (int v = 0; v < VERSIONS; v++) {
            snprintf(name, sizeof name, "model-%d", i);
            fm_model_stats_t *s = fm_metrics_model(m, name, v + 1);
            if (s != seen[i][v] || strcmp(s->model, name) != 0 || s->version != v + 1 ||
                atomic_load(&s->success) != (uint64_t)(i * VERSIONS + v))
                distinct = 0;
        }
    }
    FM_CHECK(distinct);
    /* Names with ':' and digits do not collide with other pairs in the registry's index. */
    FM_CHECK(fm_metrics_model(m, "1:a", 2) != fm_metrics_model(m, "2:1:a", 0));
    FM_CHECK(fm_metrics_model(m, "1:a", 2) != fm_metrics_model(m, "a", 21));
    FM_CHECK(fm_metrics_model(m, "x", -5) != fm_metrics_model(m, "x", 5));
    FM_CHECK_INT(fm_metrics_model(m, "x", INT64_MIN)->version, INT64_MIN);
    FM_CHECK_STR(fm_metrics_model(m, NULL, 1)->model, "");

    /* Names longer than 64 bytes are cut at 64, and never inside a UTF-8 character. */
    char longname[100];
    memset(longname, 'a', 80);
    longname[80] = '\0';
    fm_model_stats_t *s = fm_metrics_model(m, longname, 1);
    FM_CHECK_INT(strlen(s->model), 64);
    memset(longname, 'b', 63);
    memcpy(longname + 63, "\xc3\xa9tail", 7); /* é straddles byte 64 */
    s = fm_metrics_model(m, longname, 1);
    FM_CHECK_INT(strlen(s->model), 63);
    fm_metrics_free(m);
    fm_metrics_free(NULL);
}

/* ---- an independent reader of the text format ---- */

enum { MAX_SAMPLES = 4096, MAX_LABELS = 4, MAX_FAMILIES = 64 };

typedef struct {
    char name[96];
    int nlabels;
    char label[MAX_LABELS][32];
    char value_text[MAX_LABELS][160]; /* unescaped */
    double value;
} sample_t;

typedef struct {
    sample_t samples[MAX_SAMPLES];
    int n;
    char families[MAX_FAMILIES][96];
    char types[MAX_FAMILIES][16];
    int nfamilies;
    int errors;
} exposition_t;

#define PARSE_FAIL(ex, lineno, ...)                                                                \
    do {                                                                                           \
        fprintf(stderr, "  exposition line %d: ", lineno);                                         \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        (ex)->errors++;                                                                            \
    } while (0)

static int is_name_char(char c, int first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* The family a sample belongs to under the family's TYPE. */
static int sample_in_family(const char *sample, const char *family, const char *type) {
    size_t n = strlen(family);
    if (strncmp(sample, family, n) != 0) return 0;
    if (sample[n] == '\0') return strcmp(type, "histogram") != 0;
    if (strcmp(type, "histogram") != 0) return 0;
    return !strcmp(sample + n, "_bucket") || !strcmp(sample + n, "_sum") ||
           !strcmp(sample + n, "_count");
}

/* Parses one sample line: name{label="value",...} value. */
static void parse_sample(exposition_t *ex, const char *p, int lineno) {
    if (ex->n == MAX_SAMPLES) {
        PARSE_FAIL(ex, lineno, "too many samples for the test");
        return;
    }
    sample_t *s = &ex->samples[ex->n];
    memset(s, 0, sizeof *s);
    size_t k = 0;
    if (!is_name_char(*p, 1)) PARSE_FAIL(ex, lineno, "bad metric name start");
    while (is_name_char(*p, 0) && k + 1 < sizeof s->name)
        s->name[k++] = *p++;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            if (s->nlabels == MAX_LABELS) {
                PARSE_FAIL(ex, lineno, "too many labels");
                return;
            }
            char *label = s->label[s->nlabels], *value = s->value_text[s->nlabels];
            k = 0;
            if (!is_name_char(*p, 1) || *p == ':') PARSE_FAIL(ex, lineno, "bad label name");
            while (is_name_char(*p, 0) && *p != ':' && k + 1 < 32)
                label[k++] = *p++;
            if (p[0] != '=' || p[1] != '"') {
                PARSE_FAIL(ex, lineno, "expected =\" after label %s", label);
                return;
            }
            p += 2;
            k = 0;
            while (*p != '"') {
                if (*p == '\0' || *p == '\n') {
                    PARSE_FAIL(ex, lineno, "unterminated label value");
                    return;
                }
                char c = *p++;
                if (c == '\\') {
                    c = *p++;
                    if (c == 'n') {
                        c = '\n';
                    } else if (c != '\\' && c != '"') {
                        PARSE_FAIL(ex, lineno, "bad escape \\%c", c);
                        return;
                    }
                }
                if (k + 1 < 160) value[k++] = c;
            }
            p++;
            s->nlabels++;
            if (*p == ',') {
                p++;
            } else if (*p != '}') {
                PARSE_FAIL(ex, lineno, "expected , or } after a label");
                return;
            }
        }
        p++;
    }
    if (*p != ' ') {
        PARSE_FAIL(ex, lineno, "expected a space before the value");
        return;
    }
    p++;
    char *end;
    if (!strcmp(p, "+Inf")) {
        s->value = INFINITY;
    } else {
        s->value = strtod(p, &end);
        if (end == p || *end != '\0' || !isfinite(s->value))
            PARSE_FAIL(ex, lineno, "bad value '%s'", p);
    }
    for (int i = 0; i < ex->n; i++) {
        const sample_t *o = &ex->samples[i];
        int same = !strcmp(o->name, s->name) && o->nlabels == s->nlabels;
        for (int l = 0; same && l < s->nlabels; l++)
            same = !strcmp(o->label[l], s->label[l]) && !strcmp(o->value_text[l], s->value_text[l]);
        if (same) PARSE_FAIL(ex, lineno, "duplicate sample %s", s->name);
    }
    ex->n++;
}

/* Parses the whole text; reports each breach of the format as a failure. */
static void parse_exposition(exposition_t *ex, char *text) {
    memset(ex, 0, sizeof *ex);
    size_t len = strlen(text);
    if (len == 0 || text[len - 1] != '\n') PARSE_FAIL(ex, 0, "text does not end with a newline");
    int lineno = 0, current = -1, help_for = -1;
    for (char *line = text, *next; *line; line = next) {
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : line + strlen(line);
        if (nl) *nl = '\0';
        lineno++;
        if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)) {
            char name[96] = "", rest[160] = "";
            sscanf(line + 7, "%95s %159[^\n]", name, rest);
            int f = -1;
            for (int i = 0; i < ex->nfamilies; i++)
                if (!strcmp(ex->families[i], name)) f = i;
            if (line[2] == 'H') {
                if (f >= 0) PARSE_FAIL(ex, lineno, "second HELP for %s", name);
                if (ex->nfamilies == MAX_FAMILIES) return;
                f = ex->nfamilies++;
                snprintf(ex->families[f], sizeof ex->families[f], "%s", name);
                help_for = f;
                if (!rest[0]) PARSE_FAIL(ex, lineno, "empty HELP for %s", name);
            } else {
                if (f < 0 || f != help_for)
                    PARSE_FAIL(ex, lineno, "TYPE of %s not after its HELP", name);
                if (f >= 0 && ex->types[f][0]) PARSE_FAIL(ex, lineno, "second TYPE for %s", name);
                if (strcmp(rest, "counter") && strcmp(rest, "gauge") && strcmp(rest, "histogram"))
                    PARSE_FAIL(ex, lineno, "unknown type '%s'", rest);
                if (f >= 0) snprintf(ex->types[f], sizeof ex->types[f], "%.15s", rest);
                current = f;
            }
            continue;
        }
        if (line[0] == '#' || line[0] == '\0') {
            PARSE_FAIL(ex, lineno, "unexpected line '%s'", line);
            continue;
        }
        int before = ex->n;
        parse_sample(ex, line, lineno);
        if (ex->n == before) continue;
        if (current < 0 ||
            !sample_in_family(ex->samples[before].name, ex->families[current], ex->types[current]))
            PARSE_FAIL(ex, lineno, "sample %s outside its family block", ex->samples[before].name);
    }
}

static const char *label_of(const sample_t *s, const char *label) {
    for (int i = 0; i < s->nlabels; i++)
        if (!strcmp(s->label[i], label)) return s->value_text[i];
    return NULL;
}

/* The value of name{model=...,version=...[,extra=extra_value]}; NAN when absent. */
static double value_of(const exposition_t *ex, const char *name, const char *model,
                       const char *version, const char *extra, const char *extra_value) {
    for (int i = 0; i < ex->n; i++) {
        const sample_t *s = &ex->samples[i];
        if (strcmp(s->name, name) != 0) continue;
        const char *mv = label_of(s, "model"), *vv = label_of(s, "version");
        if (model && (!mv || strcmp(mv, model))) continue;
        if (version && (!vv || strcmp(vv, version))) continue;
        if (extra && (!label_of(s, extra) || strcmp(label_of(s, extra), extra_value))) continue;
        return s->value;
    }
    return NAN;
}

/* Every histogram series: buckets in increasing le, cumulative, ending at +Inf equal to _count. */
static void check_histograms(const exposition_t *ex) {
    int series = 0;
    for (int f = 0; f < ex->nfamilies; f++) {
        if (strcmp(ex->types[f], "histogram")) continue;
        char bucket[128], count[128];
        snprintf(bucket, sizeof bucket, "%s_bucket", ex->families[f]);
        snprintf(count, sizeof count, "%s_count", ex->families[f]);
        for (int i = 0; i < ex->n; i++) {
            const sample_t *c = &ex->samples[i];
            if (strcmp(c->name, count)) continue;
            series++;
            double last_le = -INFINITY, last = 0;
            int nb = 0, saw_inf = 0;
            for (int j = 0; j < ex->n; j++) {
                const sample_t *b = &ex->samples[j];
                if (strcmp(b->name, bucket) || strcmp(label_of(b, "model"), label_of(c, "model")) ||
                    strcmp(label_of(b, "version"), label_of(c, "version")))
                    continue;
                const char *le_text = label_of(b, "le");
                FM_CHECK(le_text != NULL);
                if (!le_text) continue;
                double le = !strcmp(le_text, "+Inf") ? INFINITY : strtod(le_text, NULL);
                FM_CHECK_MSG(le > last_le, "%s le %s not increasing", bucket, le_text);
                FM_CHECK_MSG(b->value >= last, "%s le %s not cumulative", bucket, le_text);
                last_le = le;
                last = b->value;
                nb++;
                if (isinf(le)) {
                    saw_inf = 1;
                    FM_CHECK_MSG(b->value == c->value, "%s +Inf %g != _count %g", bucket, b->value,
                                 c->value);
                }
            }
            FM_CHECK(saw_inf);
            int want = strstr(bucket, "batch") ? FM_BATCH_BUCKETS + 1 : FM_LATENCY_BUCKETS + 1;
            FM_CHECK_INT(nb, want);
        }
    }
    FM_CHECK(series > 0);
}

/* VmRSS from /proc/self/status (kB there, read independently of statm). */
static double status_rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = NAN;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lf kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb * 1024;
}

/* Open descriptors counted by probing each number, not by listing /proc/self/fd. */
static int count_open_fds(void) {
    long max = sysconf(_SC_OPEN_MAX);
    int n = 0;
    for (long fd = 0; fd < (max > 0 && max < 1 << 20 ? max : 1 << 20); fd++)
        n += fcntl((int)fd, F_GETFD) != -1;
    return n;
}

static void test_render(void) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_REALTIME, &t0);
    fm_metrics_t *m = new_metrics();
    clock_gettime(CLOCK_REALTIME, &t1);
    static const char odd[] = "we\"ird\\model\nname";

    fm_model_stats_t *a = fm_metrics_model(m, "credit", 3);
    fm_model_stats_t *b = fm_metrics_model(m, odd, 1);
    fm_metrics_model(m, "idle", 2); /* registered, never used: all zero */
    atomic_store(&a->success, 41);
    atomic_store(&a->failure, 2);
    atomic_store(&a->inferences, 900);
    atomic_store(&a->in_flight, 3);
    atomic_store(&a->load_micros, 1250000);
    atomic_store(&b->load_micros, 7);
    atomic_store(&b->in_flight, -1); /* a gauge may go negative through a bug; still printed */
    double lat[] = {0.0001, 0.0003, 0.003, 0.003, 0.7, 12.0};
    double lat_sum = 0;
    for (size_t i = 0; i < sizeof lat / sizeof lat[0]; i++) {
        fm_histogram_observe_seconds(&a->compute, lat[i]);
        lat_sum += lat[i];
    }
    fm_histogram_observe_seconds(&b->queue, 0.25);
    fm_histogram_observe_batch(&a->batch, 3);
    fm_histogram_observe_batch(&a->batch, 3000);
    fm_metrics_http(m, 200);
    fm_metrics_http(m, 200);
    fm_metrics_http(m, 599);
    fm_metrics_http(m, 100);
    fm_metrics_http(m, 99);  /* outside 100..599: ignored */
    fm_metrics_http(m, 600); /* ignored */

    fm_buf_t out = FM_BUF_INIT;
    double rss_before = status_rss_bytes();
    FM_CHECK_INT(fm_metrics_render(m, &out), FM_OK);
    double rss_after = status_rss_bytes();
    FM_CHECK(strstr(out.data, "model=\"we\\\"ird\\\\model\\nname\"") != NULL);
    static exposition_t ex;
    parse_exposition(&ex, out.data);
    FM_CHECK_INT(ex.errors, 0);

    static const char *families[][2] = {
        {"finmaas_model_requests_total", "counter"},
        {"finmaas_model_inferences_total", "counter"},
        {"finmaas_model_queue_seconds", "histogram"},
        {"finmaas_model_compute_seconds", "histogram"},
        {"finmaas_model_batch_size", "histogram"},
        {"finmaas_model_in_flight", "gauge"},
        {"finmaas_model_load_seconds", "gauge"},
        {"finmaas_http_requests_total", "counter"},
        {"process_resident_memory_bytes", "gauge"},
        {"process_open_fds", "gauge"},
        {"process_start_time_seconds", "gauge"},
    };
    FM_CHECK_INT(ex.nfamilies, sizeof families / sizeof families[0]);
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        int found = 0;
        for (int f = 0; f < ex.nfamilies; f++)
            if (!strcmp(ex.families[f], families[i][0]) && !strcmp(ex.types[f], families[i][1]))
                found = 1;
        FM_CHECK_MSG(found, "family %s %s", families[i][0], families[i][1]);
    }
    check_histograms(&ex);

    const char *req = "finmaas_model_requests_total";
    FM_CHECK_INT(value_of(&ex, req, "credit", "3", "outcome", "success"), 41);
    FM_CHECK_INT(value_of(&ex, req, "credit", "3", "outcome", "failure"), 2);
    FM_CHECK_INT(value_of(&ex, req, odd, "1", "outcome", "success"), 0);
    FM_CHECK_INT(value_of(&ex, req, "idle", "2", "outcome", "failure"), 0);
    FM_CHECK_INT(value_of(&ex, "finmaas_model_inferences_total", "credit", "3", NULL, NULL), 900);
    FM_CHECK_INT(value_of(&ex, "finmaas_model_in_flight", "credit", "3", NULL, NULL), 3);
    FM_CHECK_INT(value_of(&ex, "finmaas_model_in_flight", odd, "1", NULL, NULL), -1);
    FM_CHECK(value_of(&ex, "finmaas_model_load_seconds", "credit", "3", NULL, NULL) == 1.25);
    FM_CHECK(value_of(&ex, "finmaas_model_load_seconds", odd, "1", NULL, NULL) == 7e-6);

    /* Cumulative buckets, from the observations counted here. */
    const char *cb = "finmaas_model_compute_seconds_bucket";
    for (int k = 0; k < FM_LATENCY_BUCKETS; k++) {
        int below = 0;
        for (size_t i = 0; i < sizeof lat / sizeof lat[0]; i++)
            below += lat[i] <= LATENCY_BOUNDS[k];
        char le[32];
        snprintf(le, sizeof le, "%.17g", LATENCY_BOUNDS[k]);
        /* Find the bucket by numeric le, whatever text it is printed with. */
        int found = 0;
        for (int i = 0; i < ex.n; i++) {
            const sample_t *s = &ex.samples[i];
            const char *lt = label_of(s, "le");
            if (strcmp(s->name, cb) || strcmp(label_of(s, "model"), "credit") || !lt ||
                !strcmp(lt, "+Inf") || strtod(lt, NULL) != LATENCY_BOUNDS[k])
                continue;
            found = 1;
            FM_CHECK_MSG(s->value == below, "le %s: %g vs %d", le, s->value, below);
        }
        FM_CHECK_MSG(found, "bucket le=%s", le);
    }
    FM_CHECK_INT(value_of(&ex, cb, "credit", "3", "le", "+Inf"), 6);
    FM_CHECK_INT(value_of(&ex, "finmaas_model_compute_seconds_count", "credit", "3", NULL, NULL),
                 6);
    FM_CHECK_NEAR(value_of(&ex, "finmaas_model_compute_seconds_sum", "credit", "3", NULL, NULL),
                  lat_sum, 1e-12);
    FM_CHECK(value_of(&ex, "finmaas_model_queue_seconds_sum", odd, "1", NULL, NULL) == 0.25);
    FM_CHECK_INT(value_of(&ex, "finmaas_model_queue_seconds_bucket", odd, "1", "le", "0.1"), 0);
    FM_CHECK_INT(value_of(&ex, "finmaas_model_queue_seconds_bucket", odd, "1", "le", "0.25"), 1);
    const char *bb = "finmaas_model_batch_size_bucket";
    FM_CHECK_INT(value_of(&ex, bb, "credit", "3", "le", "2"), 0);
    FM_CHECK_INT(value_of(&ex, bb, "credit", "3", "le", "4"), 1);
    FM_CHECK_INT(value_of(&ex, bb, "credit", "3", "le", "1024"), 1);
    FM_CHECK_INT(value_of(&ex, bb, "credit", "3", "le", "+Inf"), 2);
    FM_CHECK_INT(value_of(&ex, "finmaas_model_batch_size_sum", "credit", "3", NULL, NULL), 3003);

    const char *http = "finmaas_http_requests_total";
    FM_CHECK_INT(value_of(&ex, http, NULL, NULL, "code", "200"), 2);
    FM_CHECK_INT(value_of(&ex, http, NULL, NULL, "code", "100"), 1);
    FM_CHECK_INT(value_of(&ex, http, NULL, NULL, "code", "599"), 1);
    FM_CHECK(isnan(value_of(&ex, http, NULL, NULL, "code", "404")));
    FM_CHECK(strstr(out.data, "code=\"99\"") == NULL && strstr(out.data, "code=\"600\"") == NULL);

    double start = value_of(&ex, "process_start_time_seconds", NULL, NULL, NULL, NULL);
    FM_CHECK(start >= (double)t0.tv_sec && start <= (double)t1.tv_sec + 1);
    double rss = value_of(&ex, "process_resident_memory_bytes", NULL, NULL, NULL, NULL);
    /* Between VmRSS read just before and just after, give or take 4 MiB of drift. */
    FM_CHECK_MSG(rss >= fmin(rss_before, rss_after) - (4 << 20) &&
                     rss <= fmax(rss_before, rss_after) + (4 << 20),
                 "rss %g vs VmRSS %g .. %g", rss, rss_before, rss_after);
    double fds = value_of(&ex, "process_open_fds", NULL, NULL, NULL, NULL);
    FM_CHECK_INT(fds, count_open_fds());

    /* Ten more descriptors show as ten more. */
    int extra[10];
    for (int i = 0; i < 10; i++)
        extra[i] = open("/dev/null", O_RDONLY);
    fm_buf_reset(&out);
    FM_CHECK_INT(fm_metrics_render(m, &out), FM_OK);
    parse_exposition(&ex, out.data);
    FM_CHECK_INT(value_of(&ex, "process_open_fds", NULL, NULL, NULL, NULL), fds + 10);
    for (int i = 0; i < 10; i++)
        close(extra[i]);
    fm_buf_free(&out);
    fm_metrics_free(m);
}

/* An empty registry still renders every family's HELP and TYPE, and nothing else breaks. */
static void test_render_empty(void) {
    fm_metrics_t *m = new_metrics();
    fm_buf_t out = FM_BUF_INIT;
    FM_CHECK_INT(fm_metrics_render(m, &out), FM_OK);
    static exposition_t ex;
    parse_exposition(&ex, out.data);
    FM_CHECK_INT(ex.errors, 0);
    FM_CHECK_INT(ex.nfamilies, 11);
    FM_CHECK_INT(ex.n, 3); /* the process gauges */
    /* Appending keeps what the buffer held. */
    fm_buf_t pre = FM_BUF_INIT;
    fm_buf_puts(&pre, "# prefix\n");
    FM_CHECK_INT(fm_metrics_render(m, &pre), FM_OK);
    FM_CHECK(strncmp(pre.data, "# prefix\n# HELP ", 16) == 0);
    fm_buf_free(&pre);
    fm_buf_free(&out);
    fm_metrics_free(m);
}

FM_TEST_MAIN(FM_TEST_CASE(test_latency_buckets), FM_TEST_CASE(test_batch_buckets),
             FM_TEST_CASE(test_concurrent_updates), FM_TEST_CASE(test_many_models),
             FM_TEST_CASE(test_render), FM_TEST_CASE(test_render_empty))
