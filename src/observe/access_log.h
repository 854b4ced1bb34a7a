/*
 * The structured access log: one JSON object per line per HTTP request, e.g.
 *   {"time":"2026-11-29T21:03:04.123Z","request_id":"a1b2-17","method":"POST",
 *    "path":"/v2/models/credit/infer","model":"credit","version":3,"status":200,
 *    "latency_ms":0.412,"bytes_in":951,"bytes_out":212,"remote":"127.0.0.1"}
 * ("model" and "version" only when the request concerned one.)
 *
 * Writing an entry formats it into an in-memory buffer under a mutex and returns; a background
 * thread writes the buffer out at least every 200 ms and whenever it passes 64 KiB, so a request
 * never waits for the disk. When the buffer is full (the disk cannot keep up, 4 MiB pending)
 * entries are dropped and counted, and the count is written as an entry of its own once space
 * returns, so losses are visible. Closing flushes everything. Thread-safe.
 */
#ifndef FM_OBSERVE_ACCESS_LOG_H
#define FM_OBSERVE_ACCESS_LOG_H

#include "core/error.h"

#include <stddef.h>
#include <stdint.h>

typedef struct fm_access_log fm_access_log_t;

typedef struct fm_access_entry {
    const char *request_id; /* required */
    const char *method;     /* required */
    const char *path;       /* required; the URL path without the query */
    const char *model;      /* NULL when none */
    int64_t version;        /* 0 when none */
    int status;
    double latency_seconds;
    uint64_t bytes_in, bytes_out;
    const char *remote;     /* client address text, NULL when unknown */
} fm_access_entry_t;

/*
 * Opens the log: path "-" means standard error, anything else a file opened for appending
 * (created 0640). *out is owned by the caller (fm_access_log_close).
 */
int fm_access_log_open(const char *path, fm_access_log_t **out, fm_error_t *err);
/* Queues one entry (strings are copied; time is taken now). log may be NULL: nothing happens. */
void fm_access_log_write(fm_access_log_t *log, const fm_access_entry_t *entry);
/* Entries dropped so far because the buffer was full. */
uint64_t fm_access_log_dropped(const fm_access_log_t *log);
/* Writes out what is pending, stops the thread, closes the file. NULL-safe. */
void fm_access_log_close(fm_access_log_t *log);

#endif
