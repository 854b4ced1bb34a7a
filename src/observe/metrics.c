/*
 * Serving metrics: the registry of per-(model, version) statistics, lock-free histogram and
 * counter updates, and the Prometheus text exposition (format 0.0.4).
 *
 * Each fm_model_stats_t is allocated on its own (aligned to a cache line, so two models updated
 * from different threads do not share one) and never moves or is freed before fm_metrics_free,
 * which is what lets the server keep the pointer and update it with relaxed atomics and no lock.
 * The registry itself (an array of those pointers plus an fm_strdict_t index keyed by
 * "version:model") is guarded by a mutex, taken on registration, on lookup and while rendering.
 *
 * Histogram counts are kept per bucket, not cumulative, so an observation is one atomic addition
 * to its bucket plus the count and the sum; rendering accumulates them. Rendering derives _count
 * from the buckets it read, so that the +Inf bucket always equals _count even while other threads
 * are observing (the format requires it). Latency sums are kept in nanoseconds and printed as an
 * exact decimal; batch-size sums are kept in rows (see fm_histogram_observe_batch).
 */
#include "observe/metrics.h"

#include "core/strdict.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    HTTP_STATUS_MIN = 100,
    HTTP_STATUS_COUNT = 500, /* 100..599 */
    MODEL_NAME_MAX = sizeof(((fm_model_stats_t *)0)->model) - 1,
    CACHE_LINE = 64,
};

/* Upper bounds of the latency buckets, as numbers and as the text Prometheus clients print. */
static const double latency_bounds[FM_LATENCY_BUCKETS] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   10,
};
static const char *const latency_bound_text[FM_LATENCY_BUCKETS] = {
    "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
    "0.025", "0.05",   "0.1",     "0.25",   "0.5",   "1",      "2.5",   "10",
};
static const char *const batch_bound_text[FM_BATCH_BUCKETS] = {
    "1", "2", "4", "8", "16", "32", "64", "128", "256", "512", "1024",
};

/* Observations above this many seconds (11 days) add only this much to a latency sum, so that
 * absurd values (a clock jump, +Inf) cannot soon wrap the 64-bit nanosecond total. */
#define LATENCY_SUM_CAP_SECONDS 1e6

struct fm_metrics {
    pthread_mutex_t lock;      /* guards models, count, cap and index */
    fm_model_stats_t **models; /* registration order */
    size_t count, cap;
    fm_strdict_t index; /* "version:model" -> position in models */
    _Atomic uint64_t http[HTTP_STATUS_COUNT];
    int64_t start_seconds; /* wall clock at fm_metrics_new */
    int32_t start_millis;
};

int fm_metrics_new(fm_metrics_t **out, fm_error_t *err) {
    *out = NULL;
    fm_metrics_t *m = calloc(1, sizeof *m);
    if (!m) return fm_error_set(err, FM_ENOMEM, "metrics: out of memory");
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return fm_error_set(err, FM_ENOMEM, "metrics: cannot create mutex");
    }
    for (size_t i = 0; i < HTTP_STATUS_COUNT; i++)
        atomic_init(&m->http[i], 0);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    m->start_seconds = (int64_t)now.tv_sec;
    m->start_millis = (int32_t)(now.tv_nsec / 1000000);
    *out = m;
    return FM_OK;
}

void fm_metrics_free(fm_metrics_t *metrics) {
    if (!metrics) return;
    for (size_t i = 0; i < metrics->count; i++)
        free(metrics->models[i]);
    free(metrics->models);
    fm_strdict_free(&metrics->index);
    pthread_mutex_destroy(&metrics->lock);
    free(metrics);
}

/* Copies model into name, cut to MODEL_NAME_MAX bytes at a UTF-8 character boundary so that a
 * long name never leaves half a character (invalid UTF-8 in a label value). Returns its length. */
static size_t model_name_copy(char name[MODEL_NAME_MAX + 1], const char *model) {
    size_t n = strnlen(model, MODEL_NAME_MAX + 1);
    if (n > MODEL_NAME_MAX) {
        n = MODEL_NAME_MAX;
        while (n > 0 && ((unsigned char)model[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(name, model, n);
    name[n] = '\0';
    return n;
}

static fm_model_stats_t *model_stats_new(const char *name, size_t len, int64_t version) {
    size_t size = (sizeof(fm_model_stats_t) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    fm_model_stats_t *s = aligned_alloc(CACHE_LINE, size);
    if (!s) return NULL;
    /* All-zero bytes are the zero value of every (lock-free) atomic member. */
    memset(s, 0, size);
    memcpy(s->model, name, len + 1);
    s->version = version;
    return s;
}

fm_model_stats_t *fm_metrics_model(fm_metrics_t *metrics, const char *model, int64_t version) {
    char name[MODEL_NAME_MAX + 1];
    size_t len = model_name_copy(name, model ? model : "");
    /* A decimal version, then the name: the first ':' ends the version, so keys are unique. */
    char key[24 + MODEL_NAME_MAX + 1];
    int key_len = snprintf(key, sizeof key, "%" PRId64 ":%s", version, name);

    fm_model_stats_t *found = NULL;
    pthread_mutex_lock(&metrics->lock);
    int32_t id = fm_strdict_find(&metrics->index, key, (size_t)key_len);
    if (id >= 0) {
        found = metrics->models[id];
        goto done;
    }
    if (metrics->count == metrics->cap) {
        size_t cap = metrics->cap ? metrics->cap * 2 : 16;
        fm_model_stats_t **grown = realloc(metrics->models, cap * sizeof *grown);
        if (!grown) goto done;
        metrics->models = grown;
        metrics->cap = cap;
    }
    fm_model_stats_t *s = model_stats_new(name, len, version);
    if (!s) goto done;
    id = fm_strdict_intern(&metrics->index, key, (size_t)key_len);
    if (id < 0) {
        free(s);
        goto done;
    }
    metrics->models[metrics->count++] = s;
    found = s;
done:
    pthread_mutex_unlock(&metrics->lock);
    return found;
}

/*
 * The bucket of an observation is the first whose upper bound is >= it (Prometheus "le"). NaN
 * compares false with every bound and so lands in +Inf, where an impossible value is most
 * visible; negative values land in the first bucket and add nothing to the sum.
 */
void fm_histogram_observe_seconds(fm_histogram_t *h, double seconds) {
    size_t b = 0;
    while (b < FM_LATENCY_BUCKETS && !(seconds <= latency_bounds[b]))
        b++;
    uint64_t nanos = 0;
    if (seconds > 0) {
        double capped = seconds < LATENCY_SUM_CAP_SECONDS ? seconds : LATENCY_SUM_CAP_SECONDS;
        nanos = (uint64_t)llround(capped * 1e9);
    }
    atomic_fetch_add_explicit(&h->counts[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_nanos, nanos, memory_order_relaxed);
}

/*
 * Bucket b (0..10) holds rows <= 2^b; 0 rows counts in the first. The sum is kept in rows, not
 * in 1e-9 units as for latencies: at 1e9 units per row a busy server would wrap the 64-bit sum
 * after 1.8e10 rows scored, which is weeks.
 */
void fm_histogram_observe_batch(fm_histogram_t *h, uint64_t rows) {
    size_t b = 0;
    while (b < FM_BATCH_BUCKETS && rows > ((uint64_t)1 << b))
        b++;
    atomic_fetch_add_explicit(&h->counts[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_nanos, rows, memory_order_relaxed);
}

void fm_metrics_http(fm_metrics_t *metrics, int status) {
    if (status < HTTP_STATUS_MIN || status >= HTTP_STATUS_MIN + HTTP_STATUS_COUNT) return;
    atomic_fetch_add_explicit(&metrics->http[status - HTTP_STATUS_MIN], 1, memory_order_relaxed);
}

/* ---- rendering ---- */

int fm_metrics_put_family(fm_buf_t *out, const char *name, const char *type, const char *help) {
    return fm_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Appends s as the inside of a quoted label value: backslash, double quote and newline escaped. */
static int put_label_value(fm_buf_t *out, const char *s) {
    int rc = FM_OK;
    const char *run = s;
    for (const char *p = s; *p && !rc; p++) {
        const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
        if (!esc) continue;
        rc = fm_buf_append(out, run, (size_t)(p - run));
        if (!rc) rc = fm_buf_append(out, esc, 2);
        run = p + 1;
    }
    return rc ? rc : fm_buf_puts(out, run);
}

/* Appends `name{model="...",version="..."` (no closing brace: the caller may add labels). */
static int put_model_series(fm_buf_t *out, const char *name, const fm_model_stats_t *s) {
    int rc = fm_buf_printf(out, "%s{model=\"", name);
    if (!rc) rc = put_label_value(out, s->model);
    if (!rc) rc = fm_buf_printf(out, "\",version=\"%" PRId64 "\"", s->version);
    return rc;
}

/* Appends an unsigned fixed-point number exactly: value / 10^digits, without trailing zeros. */
static int put_fixed(fm_buf_t *out, uint64_t value, int digits) {
    uint64_t scale = 1;
    for (int i = 0; i < digits; i++)
        scale *= 10;
    uint64_t whole = value / scale, frac = value % scale;
    if (frac == 0) return fm_buf_printf(out, "%" PRIu64, whole);
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    return fm_buf_printf(out, "%" PRIu64 ".%0*" PRIu64, whole, digits, frac);
}

static uint64_t load(_Atomic uint64_t *a) {
    return atomic_load_explicit(a, memory_order_relaxed);
}

/* One histogram series: cumulative buckets, +Inf, _sum and _count. sum_digits is 9 for a sum
 * kept in nanoseconds, 0 for one kept in rows. */
static int put_histogram(fm_buf_t *out, const char *name, const fm_model_stats_t *s,
                         fm_histogram_t *h, const char *const *bound_text, size_t nbounds,
                         int sum_digits) {
    char series[96];
    int rc = FM_OK;
    uint64_t cumulative = 0;
    snprintf(series, sizeof series, "%s_bucket", name);
    for (size_t b = 0; b <= nbounds && !rc; b++) {
        cumulative += load(&h->counts[b]);
        rc = put_model_series(out, series, s);
        if (!rc) {
            rc = fm_buf_printf(out, ",le=\"%s\"} %" PRIu64 "\n",
                               b < nbounds ? bound_text[b] : "+Inf", cumulative);
        }
    }
    snprintf(series, sizeof series, "%s_sum", name);
    if (!rc) rc = put_model_series(out, series, s);
    if (!rc) rc = fm_buf_puts(out, "} ");
    if (!rc) rc = put_fixed(out, load(&h->sum_nanos), sum_digits);
    if (!rc) rc = fm_buf_putc(out, '\n');
    snprintf(series, sizeof series, "%s_count", name);
    if (!rc) rc = put_model_series(out, series, s);
    if (!rc) rc = fm_buf_printf(out, "} %" PRIu64 "\n", cumulative);
    return rc;
}

/* Resident set size in bytes from /proc/self/statm (second field, in pages); -1 if unreadable. */
static int64_t process_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    if (n != 2 || page <= 0) return -1;
    return (int64_t)(resident * (unsigned long long)page);
}

/* Open file descriptors: entries of /proc/self/fd, less the one reading the directory; -1 if
 * unreadable. */
static int64_t process_open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int64_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n > 0 ? n - 1 : 0;
}

static int render_models(fm_metrics_t *m, fm_buf_t *out) {
    static const struct {
        const char *name, *help;
        size_t offset; /* of the histogram within fm_model_stats_t */
        int batch;
    } histograms[] = {
        {"finmaas_model_queue_seconds", "Seconds requests waited before scoring started.",
         offsetof(fm_model_stats_t, queue), 0},
        {"finmaas_model_compute_seconds", "Seconds spent scoring a batch.",
         offsetof(fm_model_stats_t, compute), 0},
        {"finmaas_model_batch_size", "Rows scored per batch.", offsetof(fm_model_stats_t, batch),
         1},
    };
    int rc = fm_metrics_put_family(out, "finmaas_model_requests_total", "counter",
                                   "Inference requests answered, by model version and outcome.");
    for (size_t i = 0; i < m->count && !rc; i++) {
        fm_model_stats_t *s = m->models[i];
        rc = put_model_series(out, "finmaas_model_requests_total", s);
        if (!rc) rc = fm_buf_printf(out, ",outcome=\"success\"} %" PRIu64 "\n", load(&s->success));
        if (!rc) rc = put_model_series(out, "finmaas_model_requests_total", s);
        if (!rc) rc = fm_buf_printf(out, ",outcome=\"failure\"} %" PRIu64 "\n", load(&s->failure));
    }
    if (!rc) {
        rc = fm_metrics_put_family(out, "finmaas_model_inferences_total", "counter",
                                   "Rows scored, by model version.");
    }
    for (size_t i = 0; i < m->count && !rc; i++) {
        rc = put_model_series(out, "finmaas_model_inferences_total", m->models[i]);
        if (!rc) rc = fm_buf_printf(out, "} %" PRIu64 "\n", load(&m->models[i]->inferences));
    }
    for (size_t k = 0; k < sizeof histograms / sizeof histograms[0] && !rc; k++) {
        rc = fm_metrics_put_family(out, histograms[k].name, "histogram", histograms[k].help);
        for (size_t i = 0; i < m->count && !rc; i++) {
            fm_model_stats_t *s = m->models[i];
            fm_histogram_t *h = (fm_histogram_t *)((char *)s + histograms[k].offset);
            rc = histograms[k].batch ? put_histogram(out, histograms[k].name, s, h,
                                                     batch_bound_text, FM_BATCH_BUCKETS, 0)
                                     : put_histogram(out, histograms[k].name, s, h,
                                                     latency_bound_text, FM_LATENCY_BUCKETS, 9);
        }
    }
    if (!rc) {
        rc = fm_metrics_put_family(out, "finmaas_model_in_flight", "gauge",
                                   "Requests being scored now, by model version.");
    }
    for (size_t i = 0; i < m->count && !rc; i++) {
        fm_model_stats_t *s = m->models[i];
        rc = put_model_series(out, "finmaas_model_in_flight", s);
        if (!rc) {
            rc = fm_buf_printf(out, "} %" PRId64 "\n",
                               atomic_load_explicit(&s->in_flight, memory_order_relaxed));
        }
    }
    if (!rc) {
        rc = fm_metrics_put_family(out, "finmaas_model_load_seconds", "gauge",
                                   "Seconds the last load of the model version took.");
    }
    for (size_t i = 0; i < m->count && !rc; i++) {
        rc = put_model_series(out, "finmaas_model_load_seconds", m->models[i]);
        if (!rc) rc = fm_buf_puts(out, "} ");
        if (!rc) rc = put_fixed(out, load(&m->models[i]->load_micros), 6);
        if (!rc) rc = fm_buf_putc(out, '\n');
    }
    return rc;
}

static int render_process(fm_metrics_t *m, fm_buf_t *out) {
    int rc = fm_metrics_put_family(out, "finmaas_http_requests_total", "counter",
                                   "HTTP responses sent, by status code.");
    for (size_t i = 0; i < HTTP_STATUS_COUNT && !rc; i++) {
        uint64_t n = load(&m->http[i]);
        if (n) {
            rc = fm_buf_printf(out, "finmaas_http_requests_total{code=\"%zu\"} %" PRIu64 "\n",
                               i + HTTP_STATUS_MIN, n);
        }
    }
    int64_t rss = process_rss_bytes(), fds = process_open_fds();
    if (!rc && rss >= 0) {
        rc = fm_metrics_put_family(out, "process_resident_memory_bytes", "gauge",
                                   "Resident memory size in bytes.");
        if (!rc) rc = fm_buf_printf(out, "process_resident_memory_bytes %" PRId64 "\n", rss);
    }
    if (!rc && fds >= 0) {
        rc = fm_metrics_put_family(out, "process_open_fds", "gauge", "Open file descriptors.");
        if (!rc) rc = fm_buf_printf(out, "process_open_fds %" PRId64 "\n", fds);
    }
    if (!rc) {
        rc = fm_metrics_put_family(out, "process_start_time_seconds", "gauge",
                                   "Start time of the process since the Unix epoch in seconds.");
    }
    if (!rc) {
        rc = fm_buf_printf(out, "process_start_time_seconds %" PRId64 ".%03d\n", m->start_seconds,
                           (int)m->start_millis);
    }
    return rc;
}

int fm_metrics_render(fm_metrics_t *metrics, fm_buf_t *out) {
    pthread_mutex_lock(&metrics->lock);
    /* Reserve roughly what one scrape needs, so the text grows in few steps. */
    int rc = fm_buf_reserve(out, 4096 + metrics->count * 8192);
    if (!rc) rc = render_models(metrics, out);
    pthread_mutex_unlock(&metrics->lock);
    if (!rc) rc = render_process(metrics, out);
    return rc ? FM_ENOMEM : FM_OK;
}
