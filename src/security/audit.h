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
 * Storage: <home>/audit.db (SQLite, WAL, synchronous=FULL): table entries and a one-row head
 * (last seq, last hash, MAC of both) updated in the same transaction, so a crash leaves either the
 * whole group of entries or none, and deleting entries at the end is detected through the head.
 *
 * Durability: fm_audit_append queues an entry and returns a ticket; a writer thread commits
 * queued entries in groups (one transaction, one fsync per group) and then calls each entry's
 * callback, so the server answers a request only after its entry is durable while concurrent
 * requests share the fsync. With durability FM_AUDIT_ASYNC the callback runs at once and the
 * commit follows within 100 ms (documented as less durable).
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

/* Called once the entry is committed (or failed: rc != 0). Runs on the writer thread. */
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
 * message naming the first bad entry (seq) and what is wrong: modified, missing (deleted),
 * inserted, out of order, or a head that does not match (entries deleted at the end).
 */
int fm_audit_verify(const char *home, int64_t *entries, fm_error_t *err);

/* What fm_audit_verify_summary found: the number of entries and the head (seq 0 and the zero
 * hash for an empty log). Plain data. */
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
    uint64_t commits;          /* transactions committed (groups) */
    uint64_t failures;         /* transactions that failed (their entries got rc != 0) */
    uint64_t lost;             /* ASYNC entries dropped after a failed commit at close */
    double commit_seconds;     /* time spent in BEGIN IMMEDIATE .. COMMIT, all groups */
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

/* Writes entries (optionally filtered; NULLs mean no filter; times ISO 8601) as JSON lines. */
int fm_audit_export(const char *home, const char *model, const char *since, const char *until,
                    FILE *out, fm_error_t *err);
/* The same as a JSON array for the HTTP API (caller owns), at most limit entries. */
int fm_audit_query(const char *home, const char *model, const char *since, const char *until,
                   size_t limit, cJSON **out, fm_error_t *err);

#endif
