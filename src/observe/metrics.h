/*
 * Serving metrics in the Prometheus text exposition format (version 0.0.4).
 *
 * fm_metrics_t keeps one fm_model_stats_t per (model, version) that has served or been loaded,
 * and server-wide HTTP counters. Updating a statistic is a few relaxed atomic additions: no lock,
 * no allocation, safe from any thread. Registering a new (model, version) takes a mutex once;
 * the returned pointer stays valid until fm_metrics_free, so hot paths keep it.
 *
 * Exposed families (finmaas_ prefixed, but for the process_* ones, which use the standard names
 * Prometheus client libraries export, so existing dashboards work):
 *   model_requests_total{model,version,outcome="success"|"failure"}   counter
 *   model_inferences_total{model,version}                           counter (rows scored)
 *   model_queue_seconds{model,version}                              histogram
 *   model_compute_seconds{model,version}                            histogram
 *   model_batch_size{model,version}                                 histogram (rows per batch)
 *   model_in_flight{model,version}                                  gauge
 *   model_load_seconds{model,version}                               gauge
 *   http_requests_total{code}                                       counter
 *   process_resident_memory_bytes, process_open_fds                 gauges (from /proc/self)
 *   process_start_time_seconds                                      gauge
 * Label values are escaped as the format requires (backslash, double quote, newline).
 */
#ifndef FM_OBSERVE_METRICS_H
#define FM_OBSERVE_METRICS_H

#include "core/buf.h"
#include "core/error.h"

#include <stdatomic.h>
#include <stdint.h>

/* Latency buckets (seconds, upper bounds): 50us .. 10s, then +Inf. */
#define FM_LATENCY_BUCKETS 16
/* Batch size buckets: 1, 2, 4, ..., 1024, then +Inf. */
#define FM_BATCH_BUCKETS 11

typedef struct fm_histogram {
    _Atomic uint64_t counts[FM_LATENCY_BUCKETS + 1]; /* per bucket (not cumulative); last: +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_nanos; /* sum: latency in 1e-9 s units; batch in rows */
} fm_histogram_t;

typedef struct fm_model_stats {
    char model[65];
    int64_t version;
    _Atomic uint64_t success, failure, inferences;
    _Atomic int64_t in_flight;
    _Atomic uint64_t load_micros; /* last load time */
    fm_histogram_t queue, compute, batch;
} fm_model_stats_t;

typedef struct fm_metrics fm_metrics_t;

int fm_metrics_new(fm_metrics_t **out, fm_error_t *err);
void fm_metrics_free(fm_metrics_t *metrics);

/* The stats of (model, version), registered on first use. NULL only when out of memory. */
fm_model_stats_t *fm_metrics_model(fm_metrics_t *metrics, const char *model, int64_t version);

/* Records one observation of seconds in a latency histogram. */
void fm_histogram_observe_seconds(fm_histogram_t *h, double seconds);
/* Records a batch of rows in a batch-size histogram. */
void fm_histogram_observe_batch(fm_histogram_t *h, uint64_t rows);

/* Counts one HTTP response with status code (100..599). */
void fm_metrics_http(fm_metrics_t *metrics, int status);

/* Appends the whole exposition to out. Returns 0 or FM_ENOMEM. */
int fm_metrics_render(fm_metrics_t *metrics, fm_buf_t *out);
/* Appends the "# HELP" and "# TYPE" lines of a family (for families rendered elsewhere). */
int fm_metrics_put_family(fm_buf_t *out, const char *name, const char *type, const char *help);

#endif
