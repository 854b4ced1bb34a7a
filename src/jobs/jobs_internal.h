/*
 * Internal to the jobs area: temporary files for plaintext being parsed, and the SQLite job store
 * under the worker pool. Stored files are streamed with security/crypt.h (fm_crypt_writer_t,
 * fm_crypt_copy_out).
 */
#ifndef FM_JOBS_INTERNAL_H
#define FM_JOBS_INTERNAL_H

#include "jobs/jobs.h"

#include <sodium.h>
#include <stdio.h>

/* ---- tempfile.c: the unlinked temporary files that hold plaintext while it is parsed ------ */

/* Opens an unlinked temporary file (mode 0600) in dir for reading and writing: -1 on failure
 * with err set. */
int fm_jobs_temp_fd(const char *dir, fm_error_t *err);
/* "/proc/self/fd/<fd>": a path by which the data layer can open what fd holds. */
void fm_jobs_fd_path(int fd, char *out, size_t size);

/* ---- job_db.c: <home>/jobs.db ------------------------------------------------------------ */

typedef struct fm_jobdb fm_jobdb_t;

/* A new job's row. */
typedef struct fm_jobdb_new {
    const char *id, *dataset, *model, *created_by;
    const char *spec;  /* JSON text */
    const char *event; /* the first event ("queued"), JSON text with seq 1 */
} fm_jobdb_new_t;

/* A state change, with the event that reports it (seq, type, JSON text). */
typedef struct fm_jobdb_change {
    const char *state;  /* "running", "succeeded", "failed", "cancelled" */
    const char *error;  /* may be NULL */
    const char *result; /* JSON text, may be NULL */
    int64_t seq;
    const char *type;
    const char *event;
    double progress; /* NaN: unchanged */
} fm_jobdb_change_t;

/* Opens (creating, mode 0600) <home>/jobs.db with its schema. */
int fm_jobdb_open(const char *home, fm_jobdb_t **out, fm_error_t *err);
void fm_jobdb_close(fm_jobdb_t *db);
/* Marks jobs queued or running as failed with reason, appending a "failed" event to each.
 * *count (may be NULL) receives how many. */
int fm_jobdb_fail_unfinished(fm_jobdb_t *db, const char *reason, size_t *count, fm_error_t *err);
int fm_jobdb_insert(fm_jobdb_t *db, const fm_jobdb_new_t *job, fm_error_t *err);
/* Applies a state change and appends its event in one transaction; "running" sets started, a
 * final state sets finished. */
int fm_jobdb_change(fm_jobdb_t *db, const char *id, const fm_jobdb_change_t *change,
                    fm_error_t *err);
/* Appends an event and (unless NaN) sets the progress. */
int fm_jobdb_append(fm_jobdb_t *db, const char *id, int64_t seq, const char *type,
                    const char *event, double progress, fm_error_t *err);
/* The state of job id into state (16 bytes). FM_ENOTFOUND when unknown. */
int fm_jobdb_state(fm_jobdb_t *db, const char *id, char state[16], fm_error_t *err);
/* As fm_jobs_get, fm_jobs_list and fm_jobs_events (cancel_requested left out). */
int fm_jobdb_get(fm_jobdb_t *db, const char *id, int with_log, cJSON **out, fm_error_t *err);
int fm_jobdb_list(fm_jobdb_t *db, cJSON **out, fm_error_t *err);
int fm_jobdb_events(fm_jobdb_t *db, const char *id, int64_t after, size_t max,
                    fm_job_event_t **events, size_t *count, int *ended, fm_error_t *err);

/* 1 for "succeeded", "failed", "cancelled". */
int fm_job_state_final(const char *state);

#endif
