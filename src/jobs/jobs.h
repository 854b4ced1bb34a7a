/*
 * The jobs area: datasets kept in a registry home, and training jobs that run model searches
 * (search/search.h) on them in the background and register the winner.
 *
 * Datasets live in <home>/datasets:
 *
 *   <name>.csv.enc      the CSV exactly as uploaded
 *   <name>.profile.enc  its profile (JSON, below): the commit record, a dataset exists when its
 *                       profile does
 *
 * Both are stored encrypted in the format of security/crypt.h when a master key is set, and as
 * plain bytes otherwise (the suffix stays .enc, so the registry's key rotation, which re-encrypts
 * every *.enc file under <home>/datasets, covers both kinds; a reader looks at the file's magic).
 * An upload streams into an unlinked temporary file (it never has a name, so an aborted upload or
 * a crash leaves nothing behind), is parsed and profiled from there, then written beside its final
 * name and renamed into place: the CSV first, the profile last. The profile records the CSV's
 * BLAKE2b digest, which loading checks, so a CSV replaced without its profile is refused rather
 * than trained on.
 *
 * A profile: {"name", "rows", "columns" (count), "size" (bytes of CSV), "digest", "created",
 * "uploaded_by", "encrypted", "pii": [...], "schema": [{"name","type"}], "profile": [per column:
 * {"name", "type", "missing" (count), "missing_share", "distinct" (distinct non-missing values),
 * "pii" (true for PII columns, which carry nothing more), numeric: "min", "max", "mean", "std"
 * (sample standard deviation, n - 1), "quantiles": {"p01","p25","p50","p75","p99"} (linear
 * interpolation between order statistics, as NumPy's default); categorical: "top": [{"value",
 * "count"}] (the 10 most frequent, most frequent first, ties in order of first appearance)}]}.
 * Statistics are over the non-missing values; a column with none has null for them.
 *
 * Jobs live in <home>/jobs.db (SQLite, WAL, synchronous FULL, mode 0600): one row per job with
 * its state, timestamps, progress, error and result, and its events in order. Every state change
 * is committed before it is reported. A job is queued, then running, then succeeded, failed or
 * cancelled. Opening the store marks jobs left queued or running by a process that stopped
 * without finishing them as failed, "interrupted by a server restart"; fm_jobs_stop marks the
 * ones it interrupts failed, "interrupted by shutdown". Nothing is silently lost.
 *
 * Jobs run on a pool of worker threads at the lowest CPU priority (nice 19, SCHED_BATCH), each
 * search with one BLAS thread, so that requests served by other threads are not slowed. A job
 * loads its dataset (decrypting it into an unlinked temporary file), runs fm_search_run with
 * its events appended to the job's log, and registers the refit model as the next version of the
 * job's model name, uploaded by the job's creator (so maker-checker applies to its promotion), and
 * labelled "staging". A cancel is seen at the next check of the search (between model fits).
 *
 * Besides the job workers, one background thread (nice 10) runs short tasks for callers that must
 * not block their own thread, such as committing an upload.
 *
 * Thread-safety: fm_datasets_t and fm_jobs_t may be used from any number of threads at once. An
 * fm_dataset_upload_t belongs to one thread at a time.
 */
#ifndef FM_JOBS_H
#define FM_JOBS_H

#include "core/error.h"
#include "data/data.h"
#include "registry/registry.h"
#include "security/crypt.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Datasets ---------------------------------------------------------------------------- */

typedef struct fm_datasets fm_datasets_t;
typedef struct fm_dataset_upload fm_dataset_upload_t;

#define FM_DATASET_TOP 10 /* categories listed per categorical column */

/*
 * Opens the dataset store of home (creating <home>/datasets, mode 0700, when absent). key (may be
 * NULL: store plaintext) is copied: new datasets are encrypted with it, and stored ones encrypted
 * with it can be read. Leftover temporary files of interrupted writes are removed. *out is owned
 * by the caller (fm_datasets_close).
 */
int fm_datasets_open(const char *home, const fm_master_key_t *key, fm_datasets_t **out,
                     fm_error_t *err);
void fm_datasets_close(fm_datasets_t *ds);

/* FM_OK when name is a valid dataset name (the rules of model names), else FM_EINVAL naming it. */
int fm_dataset_check_name(const char *name, fm_error_t *err);

/* 1 when dataset name exists (its profile is there). */
int fm_datasets_exists(fm_datasets_t *ds, const char *name);

/* What an upload is told besides its bytes. Everything is copied by fm_dataset_upload_begin. */
typedef struct fm_dataset_options {
    const fm_type_overrides_t *types; /* may be NULL: every type inferred */
    const char *const *pii;           /* columns holding personal data: no values in the profile */
    size_t npii;
    int replace;             /* 1: replace a dataset of the same name; 0: FM_EEXIST */
    const char *uploaded_by; /* recorded in the profile (an API key id); NULL: "anonymous" */
} fm_dataset_options_t;

/*
 * Starts an upload of dataset name: checks the name (FM_EINVAL) and, unless replacing, that it
 * is free (FM_EEXIST; checked again at commit), and opens the unlinked temporary file the bytes
 * go to. *out is owned by the caller (fm_dataset_upload_free).
 */
int fm_dataset_upload_begin(fm_datasets_t *ds, const char *name, const fm_dataset_options_t *opts,
                            fm_dataset_upload_t **out, fm_error_t *err);
/* Appends n bytes of CSV. FM_EIO naming the dataset when the disk refuses them. */
int fm_dataset_upload_write(fm_dataset_upload_t *u, const void *data, size_t n, fm_error_t *err);
/* Bytes written so far. */
uint64_t fm_dataset_upload_size(const fm_dataset_upload_t *u);
/*
 * Parses the bytes as a CSV (header first; types inferred, then the overrides), profiles them and
 * stores the dataset atomically. Bad CSV is FM_EPARSE with the reader's message naming the
 * dataset, line and column; a PII or override column absent from the header FM_EINVAL; the name
 * taken meanwhile (not replacing) FM_EEXIST. On any error nothing is stored. *profile (caller
 * owns) is the stored profile. Call at most once.
 */
int fm_dataset_upload_commit(fm_dataset_upload_t *u, cJSON **profile, fm_error_t *err);
/* Releases an upload; one not committed leaves nothing behind. NULL-safe. */
void fm_dataset_upload_free(fm_dataset_upload_t *u);

/* Every dataset, by name: [{"name","rows","columns","size","created","uploaded_by","encrypted"}]
 * (caller owns). A dataset whose profile cannot be read is listed with "error". */
int fm_datasets_list(fm_datasets_t *ds, cJSON **out, fm_error_t *err);
/* The profile of name (caller owns). FM_ENOTFOUND when absent; FM_EDENIED when it is encrypted
 * and the store has no key or another one. */
int fm_datasets_get(fm_datasets_t *ds, const char *name, cJSON **profile, fm_error_t *err);
/* Removes a dataset (profile first, so it is gone at once). FM_ENOTFOUND when absent. */
int fm_datasets_delete(fm_datasets_t *ds, const char *name, fm_error_t *err);
/*
 * Reads dataset name into a new frame (caller frees) with the column types of its profile, and
 * (when profile is not NULL) its profile. The CSV's digest must match the profile's, else
 * FM_EFORMAT. FM_ENOTFOUND when absent.
 */
int fm_datasets_load(fm_datasets_t *ds, const char *name, fm_frame_t **frame, cJSON **profile,
                     fm_error_t *err);

/*
 * The profile of a frame as described above, for dataset name (borrowed strings; pii lists the PII
 * columns, which must exist: FM_EINVAL otherwise). The caller adds the fields that are not about
 * the values ("size", "created", ...). *out is owned by the caller.
 */
int fm_dataset_profile(const fm_frame_t *frame, const char *name, const char *const *pii,
                       size_t npii, cJSON **out, fm_error_t *err);

/* ---- Jobs -------------------------------------------------------------------------------- */

typedef struct fm_jobs fm_jobs_t;

#define FM_JOB_ID_MAX 16 /* "j_" + 12 hex + NUL, with room */

/* Called on a job worker once a job has registered its model (name, version), labelled
 * "staging": the server makes it servable. */
typedef void (*fm_jobs_registered_fn)(const char *model, int64_t version, void *ctx);
/* Called after anything of job id changed (an event, its state), without any lock held. */
typedef void (*fm_jobs_changed_fn)(const char *id, void *ctx);

typedef struct fm_jobs_config {
    const char *home;
    int workers;     /* job worker threads, >= 1 */
    int queue_limit; /* queued jobs at most; more is FM_EBUSY */
    fm_registry_t *registry;
    fm_datasets_t *datasets;
    fm_jobs_registered_fn on_registered; /* may be NULL */
    fm_jobs_changed_fn on_changed;       /* may be NULL */
    void *ctx;                           /* passed to both */
} fm_jobs_config_t;

/*
 * Opens (creating when absent) <home>/jobs.db, marks the jobs an earlier process left queued or
 * running as failed ("interrupted by a server restart"), and starts the workers and the
 * background thread. The registry and datasets are borrowed and must outlive the jobs. *out is
 * owned by the caller: fm_jobs_stop, then fm_jobs_close.
 */
int fm_jobs_open(const fm_jobs_config_t *config, fm_jobs_t **out, fm_error_t *err);

/*
 * Stops taking work: queued jobs become failed ("interrupted by shutdown"), running ones are
 * cancelled and, once their search returns, recorded the same way; background tasks already
 * queued still run. Returns when every thread has ended. NULL-safe; idempotent.
 */
void fm_jobs_stop(fm_jobs_t *jobs);
/* Stops (if not yet) and frees. NULL-safe. */
void fm_jobs_close(fm_jobs_t *jobs);

/*
 * Queues a job: search spec (borrowed; every key of search/search.h) on dataset, registering the
 * winner as a version of model, created by created_by (an API key id or "anonymous"). The spec
 * is completed before it is validated: the dataset's PII columns are added to "pii" and "threads"
 * is set to 1 (the server runs every fit with one BLAS thread). Errors: a bad model or dataset
 * name FM_EINVAL; an unknown dataset FM_ENOTFOUND; a bad spec FM_EINVAL naming the field (from
 * fm_search_spec_parse); the queue full or the pool stopping FM_EBUSY. id receives the new job's
 * id ("j_" + 12 hex).
 */
int fm_jobs_submit(fm_jobs_t *jobs, const char *dataset, const char *model, const cJSON *spec,
                   const char *created_by, char id[FM_JOB_ID_MAX], fm_error_t *err);

/*
 * Cancels a job: a queued one at once (state cancelled), a running one at the search's next
 * check (its state stays running until then). *state (may be NULL) receives the state after the
 * call ("cancelled" or "running"). FM_ENOTFOUND for an unknown id; FM_ESTATE when it has already
 * finished (the message names its state).
 */
int fm_jobs_cancel(fm_jobs_t *jobs, const char *id, const char **state, fm_error_t *err);

/*
 * A job as JSON (caller owns): {"id","state","dataset","model","created_by","created","started",
 * "finished","progress","error","spec","result","cancel_requested"} and, with with_log, "log": its
 * events ({"seq","time","type",...the event's fields}). FM_ENOTFOUND for an unknown id.
 */
int fm_jobs_get(fm_jobs_t *jobs, const char *id, int with_log, cJSON **out, fm_error_t *err);
/* Every job, newest first, without spec, result and log (caller owns). */
int fm_jobs_list(fm_jobs_t *jobs, cJSON **out, fm_error_t *err);

/* One event of a job's log. */
typedef struct fm_job_event {
    int64_t seq; /* 1, 2, 3, ... per job */
    char type[32];
    char *data; /* owned: the event as JSON text, with "seq" and "time" */
} fm_job_event_t;

/*
 * The events of job id after seq `after`, at most max of them (new array in *events, *count
 * entries; free with fm_job_events_free), and *ended = 1 when the job had finished before they
 * were read (so no event will follow the last one returned). FM_ENOTFOUND for an unknown id.
 */
int fm_jobs_events(fm_jobs_t *jobs, const char *id, int64_t after, size_t max,
                   fm_job_event_t **events, size_t *count, int *ended, fm_error_t *err);
void fm_job_events_free(fm_job_event_t *events, size_t count);

/*
 * Runs fn(ctx) on the background thread, in order of submission. FM_EBUSY when 16 tasks are
 * already waiting or the jobs are stopping (fn is then not called). A task queued before
 * fm_jobs_stop still runs.
 */
int fm_jobs_background(fm_jobs_t *jobs, void (*fn)(void *ctx), void *ctx, fm_error_t *err);

#endif
