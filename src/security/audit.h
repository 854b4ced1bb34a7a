/*
 * The audit log: an append-only, hash-chained record of every authenticated action.
 *
 * Each entry holds: seq (1, 2, ...), time (UTC, microseconds), key id and role, action (e.g.
 * "v2.infer", "model.upload", "label.set", "keys.create"), model and version, request id, status,
 * a digest of the inputs (BLAKE2b of the request body, never the body itself), the output (score,
 * label, decision; already masked of PII by the caller), and prev: the hash of entry seq-1. Its
 * own hash = BLAKE2b-256 keyed with the home's audit key over (prev, canonical entry text). The
 * audit key lives in <home>/audit.key (32 bytes, mode 0600), so whoever edits the log without it
 * cannot recompute the chain.
 *
 * Storage: <home>/audit.log (mode 0600, append-only) holds one JSON line per entry: its canonical
 * text (the fields in a fixed order, no spaces) with "prev" and "hash" added before the closing
 * brace, so `finmaas audit export` streams the lines as they are and every line is valid JSON
 * (strings are stored as valid UTF-8: invalid bytes become U+FFFD). <home>/audit.head holds the
 * head: two fixed-size slots written alternately, each with the last seq, the log's length after
 * it, its hash and a MAC of the three under the audit key; the valid slot with the larger seq is
 * the head, so a torn slot write never loses it. Deleting entries at the end is detected through
 * the head (unless an older head is put back as well: the MAC proves who wrote a head, not when).
 * The files are locked with flock: a server and CLI commands append to one log without forking
 * the chain, and readers see a consistent snapshot while a server appends. Query and export scan
 * the log (no index yet). A home that holds only the audit.db of earlier releases (SQLite) is
 * refused with a message saying so (FM_EUNSUPPORTED): verify and export it with the earlier
 * release, then move it away; a new audit.log is not started beside it.
 *
 * Durability: fm_audit_append queues an entry and returns; a writer thread writes queued entries
 * in groups (one write and one fdatasync of audit.log per group, then the head slot) and then
 * calls each entry's callback, so the server answers a request only after its entry is durable
 * while concurrent requests share the fsync. The head is fsync'ed when the writer goes idle, at
 * least once a second, and at close: entries after the head that chain correctly are valid (a
 * crash between the log's fsync and the head's write leaves them) and the writer advances the head
 * over them when it opens; a final line without its newline (a crash mid-write, never
 * acknowledged) is cut away then and ignored by verify and export; complete lines after the head
 * that do not chain are tampering and the writer refuses to open (FM_EDATA). With durability
 * FM_AUDIT_ASYNC the callback runs at once and the commit follows within 100 ms (documented as
 * less durable).
 *
 * Thread-safety: all calls are thread-safe.
 */
#ifndef FM_SECURITY_AUDIT_H
#define FM_SECURITY_AUDIT_H

#include "core/error.h"

#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>

typedef struct fm_audit fm_audit_t;

typedef enum {
    FM_AUDIT_DURABLE = 0, /* callback after the group's commit (default) */
    FM_AUDIT_ASYNC = 1,   /* callback at once; commit within 100 ms */
} fm_audit_durability_t;

typedef struct fm_audit_entry {
    const char *key_id; /* "" for actions from the command line: then "cli" */
    const char *role;
    const char *action;       /* required */
    const char *model;        /* may be NULL */
    int64_t version;          /* 0 when none */
    const char *request_id;   /* may be NULL */
    int status;               /* HTTP status or CLI exit code */
    const char *input_digest; /* hex BLAKE2b of the inputs, may be NULL */
    const char *output;       /* JSON text (score, label, decision), may be NULL; PII-free */
    const char *detail;       /* free text, may be NULL; PII-free */
} fm_audit_entry_t;

/* Called once the entry is committed (fdatasync'ed; or failed: rc != 0). Runs on the writer
 * thread. */
typedef void (*fm_audit_done_fn)(void *ctx, int rc);

int fm_audit_open(const char *home, fm_audit_durability_t durability, fm_audit_t **out,
                  fm_error_t *err);
/* Commits what is queued, stops the writer, closes. NULL-safe. */
void fm_audit_close(fm_audit_t *audit);

/* Queues an entry (strings are copied). done may be NULL. Returns 0 or FM_ENOMEM/FM_EIO. */
int fm_audit_append(fm_audit_t *audit, const fm_audit_entry_t *entry, fm_audit_done_fn done,
                    void *ctx);
/* Appends and waits for the commit (for the command line and rare actions). */
int fm_audit_append_sync(fm_audit_t *audit, const fm_audit_entry_t *entry, fm_error_t *err);

/*
 * Verifies the whole chain of <home>. Returns FM_OK with *entries counted, or FM_EDATA with a
 * message naming the first bad entry (seq, and its line where that helps) and what is wrong:
 * modified, missing (deleted), inserted, out of order, or a head that does not match (entries
 * deleted at the end).
 */
int fm_audit_verify(const char *home, int64_t *entries, fm_error_t *err);

/* What fm_audit_verify_summary found: the number of entries and the head as stored (seq 0 and
 * the zero hash for an empty log; after a crash between an fsync and the head's write, entries
 * may follow the head: they count in entries). Plain data. */
typedef struct fm_audit_summary {
    int64_t entries;
    int64_t head_seq;
    char head_hash[65]; /* lowercase hex */
} fm_audit_summary_t;

/* fm_audit_verify that also returns the head (for `finmaas audit verify`). Same codes. */
int fm_audit_verify_summary(const char *home, fm_audit_summary_t *out, fm_error_t *err);

/* Counters of a writer since open, for tests, benchmarks and metrics. Plain data. */
typedef struct fm_audit_stats {
    uint64_t entries;          /* entries committed */
    uint64_t commits;          /* groups committed (one write and one fdatasync each) */
    uint64_t failures;         /* groups that failed (their entries got rc != 0) */
    uint64_t lost;             /* ASYNC entries dropped after a failed commit at close */
    double commit_seconds;     /* time spent from taking the lock to the head write, all groups */
    double max_commit_seconds; /* longest single group */
    size_t queued;             /* entries waiting now */
} fm_audit_stats_t;

/* A snapshot of the writer's counters. */
void fm_audit_stats(fm_audit_t *audit, fm_audit_stats_t *out);

/*
 * Normalises an ISO 8601 time ("2026-11-29", "2026-11-29T20:53", "2026-11-29T20:53:50",
 * "...:50.25", each with an optional "Z" or "+hh:mm"/"-hh:mm" offset) to the stored form
 * "YYYY-MM-DDTHH:MM:SS.ffffffZ" in UTC. With upper set, the omitted parts count as their largest
 * value, so an inclusive --until 2026-11-29 covers the whole day. FM_EINVAL naming option when
 * text is not such a time.
 */
int fm_audit_parse_time(const char *option, const char *text, int upper, char out[28],
                        fm_error_t *err);

/* Writes entries (optionally filtered; NULLs mean no filter; times ISO 8601) as JSON lines, each
 * exactly as stored. FM_EDATA naming the line when one is not an entry. */
int fm_audit_export(const char *home, const char *model, const char *since, const char *until,
                    FILE *out, fm_error_t *err);
/* The same as a JSON array for the HTTP API (caller owns), at most limit entries. */
int fm_audit_query(const char *home, const char *model, const char *since, const char *until,
                   size_t limit, cJSON **out, fm_error_t *err);

#endif
