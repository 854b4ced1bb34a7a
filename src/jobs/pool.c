/*
 * Training jobs (jobs.h): submission, the queue, the worker threads that run searches, cancels,
 * shutdown, and the background thread for short tasks.
 *
 * The queue and the table of running jobs live under one mutex; the job store (job_db.c) is the
 * record of everything else. A submission is inserted into the store and queued under the mutex,
 * so that a cancel sees it in one place or the other, never in neither. A worker takes the oldest
 * queued job and owns it until it has recorded its final state; only the worker writes a running
 * job's events (their sequence numbers are the worker's), and other threads reach a running job
 * only through its cancel flag.
 *
 * Workers run at nice 19 under SCHED_BATCH, the background thread at nice 10: the HTTP threads
 * keep their full priority, so that a search never slows prediction traffic. Each search runs
 * with one BLAS thread ("threads": 1 is forced into every spec).
 */
#include "jobs/jobs_internal.h"

#include "core/clock.h"
#include "core/digest.h"
#include "search/search.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define TASKS_MAX       16
#define NICE_WORKER     19
#define NICE_BACKGROUND 10
#define REASON_RESTART  "interrupted by a server restart"
#define REASON_SHUTDOWN "interrupted by shutdown"

typedef struct job {
    struct job *next;
    char id[FM_JOB_ID_MAX];
    char dataset[FM_REGISTRY_NAME_MAX + 1];
    char model[FM_REGISTRY_NAME_MAX + 1];
    char created_by[32];
    char *spec;        /* the completed spec, JSON text */
    atomic_int cancel; /* read by the search between fits */
    int user_cancel;   /* a DELETE asked for it (under the mutex) */
    int64_t seq;       /* the last event's sequence number (the worker's) */
} job_t;

typedef struct task {
    struct task *next;
    void (*fn)(void *ctx);
    void *ctx;
} task_t;

typedef struct worker {
    pthread_t thread;
    fm_jobs_t *jobs;
    job_t *running; /* under the mutex */
    int started;
} worker_t;

struct fm_jobs {
    fm_jobs_config_t config;
    char *home;
    fm_jobdb_t *db;
    pthread_mutex_t lock;
    pthread_cond_t work;  /* a job was queued, or stopping */
    pthread_cond_t tasks; /* a task was queued, or stopping */
    job_t *head, *tail;
    size_t queued;
    worker_t *workers;
    int nworkers;
    task_t *task_head, *task_tail;
    size_t ntasks;
    pthread_t background;
    int background_started;
    atomic_int stopping;
    int stopped;
};

static void job_free(job_t *job) {
    if (!job) return;
    free(job->spec);
    free(job);
}

static void changed(fm_jobs_t *J, const char *id) {
    if (J->config.on_changed) J->config.on_changed(id, J->config.ctx);
}

/* Lowers the calling thread's CPU priority (Linux: nice values are per thread). Refusals are
 * ignored: the job then simply runs at normal priority. */
static void lower_priority(int nice_value) {
    struct sched_param param;
    memset(&param, 0, sizeof param);
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
    setpriority(PRIO_PROCESS, (id_t)gettid(), nice_value);
}

/* The JSON text of an event: fields (taken; NULL for none) with type, seq and time. */
static char *event_text(const char *type, int64_t seq, cJSON *fields) {
    cJSON *e = fields ? fields : cJSON_CreateObject();
    char now[32];
    fm_clock_utc_iso8601(now, sizeof now);
    cJSON_DeleteItemFromObjectCaseSensitive(e, "type");
    cJSON_DeleteItemFromObjectCaseSensitive(e, "seq");
    cJSON_DeleteItemFromObjectCaseSensitive(e, "time");
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNumberToObject(e, "seq", (double)seq);
    cJSON_AddStringToObject(e, "time", now);
    char *text = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    return text;
}

/* Appends an event to a running job's log (worker only). */
static void record(fm_jobs_t *J, job_t *job, const char *type, cJSON *fields, double progress) {
    char *text = event_text(type, job->seq + 1, fields);
    fm_error_t err;
    if (!text || fm_jobdb_append(J->db, job->id, job->seq + 1, type, text, progress, &err))
        fprintf(stderr, "finmaas serve: job %s: cannot record event '%s': %s\n", job->id, type,
                text ? fm_error_message(&err) : "out of memory");
    else
        job->seq++;
    free(text);
    changed(J, job->id);
}

/* Records a state change with its event ({"state", "error", ...fields}). result is taken. */
static void change_state(fm_jobs_t *J, job_t *job, const char *state, const char *error,
                         cJSON *result, cJSON *fields, double progress) {
    char shorter[FM_ERROR_MESSAGE_MAX];
    /* A job's error is shown to API clients, who need not know where the server keeps its
     * files: "<home>/datasets/x: ..." becomes "datasets/x: ...". */
    error = fm_error_without_dir(error, J->home, shorter, sizeof shorter);
    /* The event of "running" is called "started"; the others are named after their state. */
    const char *type = !strcmp(state, "running") ? "started" : state;
    cJSON *e = fields ? fields : cJSON_CreateObject();
    cJSON_AddStringToObject(e, "state", state);
    if (error) cJSON_AddStringToObject(e, "error", error);
    if (!isnan(progress)) cJSON_AddNumberToObject(e, "progress", progress);
    char *text = event_text(type, job->seq + 1, e);
    char *result_text = result ? cJSON_PrintUnformatted(result) : NULL;
    cJSON_Delete(result);
    fm_jobdb_change_t c = {.state = state,
                           .error = error,
                           .result = result_text,
                           .seq = job->seq + 1,
                           .type = type,
                           .event = text,
                           .progress = progress};
    fm_error_t err;
    if (!text || fm_jobdb_change(J->db, job->id, &c, &err))
        fprintf(stderr, "finmaas serve: job %s: cannot record state '%s': %s\n", job->id, state,
                text ? fm_error_message(&err) : "out of memory");
    else
        job->seq++;
    free(text);
    free(result_text);
    changed(J, job->id);
}

/* ---- running a job ----------------------------------------------------------------------- */

typedef struct run {
    fm_jobs_t *jobs;
    job_t *job;
} run_t;

static void on_search_event(const cJSON *event, void *ctx) {
    run_t *r = ctx;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(event, "type");
    const cJSON *progress = cJSON_GetObjectItemCaseSensitive(event, "progress");
    record(r->jobs, r->job, cJSON_IsString(type) ? type->valuestring : "event",
           cJSON_Duplicate(event, 1), cJSON_IsNumber(progress) ? progress->valuedouble : NAN);
}

static cJSON *copy_or_null(const cJSON *v) {
    return v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();
}

/* What a search left, as the job's result. */
static cJSON *result_json(const fm_search_result_t *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "leaderboard",
                          r && r->leaderboard ? cJSON_Duplicate(r->leaderboard, 1)
                                              : cJSON_CreateArray());
    if (!r) return o;
    cJSON_AddNumberToObject(o, "best", (double)r->best);
    cJSON_AddItemToObject(o, "test_metrics", copy_or_null(r->test_metrics));
    cJSON_AddItemToObject(o, "validation", copy_or_null(r->validation));
    cJSON_AddItemToObject(o, "features", copy_or_null(r->features));
    cJSON_AddItemToObject(o, "importance", copy_or_null(r->importance));
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    return o;
}

/* Registers the refit model as the next version of the job's model, labelled staging. */
static int register_model(fm_jobs_t *J, job_t *job, const fm_model_t *model, int64_t *version,
                          fm_error_t *err) {
    fm_buf_t bytes = FM_BUF_INIT;
    int rc = fm_model_encode(model, &bytes, err);
    if (!rc)
        rc = fm_registry_add_as(J->config.registry, job->model, bytes.data, bytes.len,
                                job->created_by, version, err);
    fm_buf_free(&bytes);
    if (!rc) rc = fm_registry_set_label(J->config.registry, job->model, "staging", *version, err);
    if (rc) return fm_error_prefix(err, "registering model '%s': ", job->model);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "model", job->model);
    cJSON_AddNumberToObject(e, "version", (double)*version);
    cJSON_AddStringToObject(e, "label", "staging");
    record(J, job, "registered", e, NAN);
    if (J->config.on_registered) J->config.on_registered(job->model, *version, J->config.ctx);
    return FM_OK;
}

/* How a job that stopped at its cancel flag ends: cancelled when asked for, else interrupted. */
static void end_cancelled(fm_jobs_t *J, job_t *job, cJSON *result) {
    pthread_mutex_lock(&J->lock);
    int asked = job->user_cancel;
    pthread_mutex_unlock(&J->lock);
    if (asked)
        change_state(J, job, "cancelled", NULL, result, NULL, NAN);
    else
        change_state(J, job, "failed", REASON_SHUTDOWN, result, NULL, NAN);
}

static void run_job(fm_jobs_t *J, job_t *job) {
    change_state(J, job, "running", NULL, NULL, NULL, 0.0);
    if (atomic_load(&job->cancel)) {
        end_cancelled(J, job, NULL);
        return;
    }
    fm_error_t err;
    fm_error_clear(&err);
    fm_frame_t *frame = NULL;
    int rc = fm_datasets_load(J->config.datasets, job->dataset, &frame, NULL, &err);
    if (rc) {
        change_state(J, job, "failed", fm_error_message(&err), NULL, NULL, NAN);
        return;
    }
    cJSON *loaded = cJSON_CreateObject();
    cJSON_AddStringToObject(loaded, "dataset", job->dataset);
    cJSON_AddNumberToObject(loaded, "rows", (double)frame->nrows);
    cJSON_AddNumberToObject(loaded, "columns", (double)frame->ncols);
    record(J, job, "dataset_loaded", loaded, NAN);
    cJSON *json = cJSON_Parse(job->spec);
    fm_search_spec_t *spec = NULL;
    rc = json ? fm_search_spec_parse(json, &spec, &err)
              : fm_error_set(&err, FM_EFORMAT, "job %s: its stored spec is not JSON", job->id);
    cJSON_Delete(json);
    fm_search_result_t *result = NULL;
    run_t run = {J, job};
    if (!rc) rc = fm_search_run(frame, spec, on_search_event, &run, &job->cancel, &result, &err);
    fm_search_spec_free(spec);
    fm_frame_free(frame);
    cJSON *res = result_json(result);
    int64_t version = 0;
    if (!rc && result && result->model) {
        rc = register_model(J, job, result->model, &version, &err);
        if (!rc) {
            cJSON *m = cJSON_AddObjectToObject(res, "model");
            cJSON_AddStringToObject(m, "name", job->model);
            cJSON_AddNumberToObject(m, "version", (double)version);
            cJSON_AddStringToObject(m, "label", "staging");
        }
    } else if (!rc) {
        rc = fm_error_set(&err, FM_EDATA, "the search produced no model");
    }
    fm_search_result_free(result);
    if (!rc) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "model", job->model);
        cJSON_AddNumberToObject(e, "version", (double)version);
        change_state(J, job, "succeeded", NULL, res, e, 1.0);
    } else if (rc == FM_ECANCELED) {
        end_cancelled(J, job, res);
    } else {
        change_state(J, job, "failed", fm_error_message(&err), res, NULL, NAN);
    }
}

static void *worker_main(void *arg) {
    pthread_setname_np(pthread_self(), "fm-job-worker");
    worker_t *w = arg;
    fm_jobs_t *J = w->jobs;
    lower_priority(NICE_WORKER);
    pthread_mutex_lock(&J->lock);
    for (;;) {
        while (!atomic_load(&J->stopping) && !J->head)
            pthread_cond_wait(&J->work, &J->lock);
        if (atomic_load(&J->stopping)) break; /* fm_jobs_stop ends what is still queued */
        job_t *job = J->head;
        J->head = job->next;
        if (!J->head) J->tail = NULL;
        J->queued--;
        w->running = job;
        pthread_mutex_unlock(&J->lock);
        run_job(J, job);
        pthread_mutex_lock(&J->lock);
        w->running = NULL;
        job_free(job);
    }
    pthread_mutex_unlock(&J->lock);
    return NULL;
}

static void *background_main(void *arg) {
    pthread_setname_np(pthread_self(), "fm-job-sweep");
    fm_jobs_t *J = arg;
    lower_priority(NICE_BACKGROUND);
    pthread_mutex_lock(&J->lock);
    for (;;) {
        while (!J->task_head && !atomic_load(&J->stopping))
            pthread_cond_wait(&J->tasks, &J->lock);
        task_t *t = J->task_head;
        if (!t) break; /* stopping, and nothing left to do */
        J->task_head = t->next;
        if (!J->task_head) J->task_tail = NULL;
        J->ntasks--;
        pthread_mutex_unlock(&J->lock);
        t->fn(t->ctx);
        free(t);
        pthread_mutex_lock(&J->lock);
    }
    pthread_mutex_unlock(&J->lock);
    return NULL;
}

/* ---- the pool ---------------------------------------------------------------------------- */

int fm_jobs_open(const fm_jobs_config_t *config, fm_jobs_t **out, fm_error_t *err) {
    *out = NULL;
    if (config->workers < 1 || config->queue_limit < 1 || !config->registry || !config->datasets)
        return fm_error_set(err, FM_EINVAL, "jobs: workers and queue limit must be at least 1");
    if (fm_digest_library_init() != FM_OK)
        return fm_error_set(err, FM_EUNSUPPORTED, "cannot initialise libsodium");
    fm_jobs_t *J = calloc(1, sizeof *J);
    if (!J) return fm_error_set(err, FM_ENOMEM, "out of memory");
    J->config = *config;
    J->home = strdup(config->home);
    J->config.home = J->home;
    J->workers = calloc((size_t)config->workers, sizeof *J->workers);
    pthread_mutex_init(&J->lock, NULL);
    pthread_cond_init(&J->work, NULL);
    pthread_cond_init(&J->tasks, NULL);
    int rc = J->home && J->workers ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) rc = fm_jobdb_open(J->home, &J->db, err);
    if (!rc) rc = fm_jobdb_fail_unfinished(J->db, REASON_RESTART, NULL, err);
    for (int i = 0; !rc && i < config->workers; i++) {
        J->workers[i].jobs = J;
        if (pthread_create(&J->workers[i].thread, NULL, worker_main, &J->workers[i]) != 0)
            rc = fm_error_set(err, FM_ENOMEM, "cannot start job worker %d", i + 1);
        else
            J->workers[i].started = 1;
        J->nworkers = i + 1;
    }
    if (!rc) {
        if (pthread_create(&J->background, NULL, background_main, J) != 0)
            rc = fm_error_set(err, FM_ENOMEM, "cannot start the background thread");
        else
            J->background_started = 1;
    }
    if (rc) {
        fm_jobs_close(J);
        return rc;
    }
    *out = J;
    return FM_OK;
}

void fm_jobs_stop(fm_jobs_t *J) {
    if (!J) return;
    pthread_mutex_lock(&J->lock);
    if (J->stopped) {
        pthread_mutex_unlock(&J->lock);
        return;
    }
    atomic_store(&J->stopping, 1);
    job_t *queued = J->head;
    J->head = J->tail = NULL;
    J->queued = 0;
    for (int i = 0; i < J->nworkers; i++)
        if (J->workers[i].running) atomic_store(&J->workers[i].running->cancel, 1);
    pthread_cond_broadcast(&J->work);
    pthread_cond_broadcast(&J->tasks);
    pthread_mutex_unlock(&J->lock);
    for (job_t *job = queued, *next; job; job = next) {
        next = job->next;
        change_state(J, job, "failed", REASON_SHUTDOWN, NULL, NULL, NAN);
        job_free(job);
    }
    for (int i = 0; i < J->nworkers; i++)
        if (J->workers[i].started) pthread_join(J->workers[i].thread, NULL);
    if (J->background_started) pthread_join(J->background, NULL);
    pthread_mutex_lock(&J->lock);
    J->stopped = 1;
    pthread_mutex_unlock(&J->lock);
}

void fm_jobs_close(fm_jobs_t *J) {
    if (!J) return;
    fm_jobs_stop(J);
    fm_jobdb_close(J->db);
    pthread_mutex_destroy(&J->lock);
    pthread_cond_destroy(&J->work);
    pthread_cond_destroy(&J->tasks);
    free(J->workers);
    free(J->home);
    free(J);
}

int fm_jobs_background(fm_jobs_t *J, void (*fn)(void *ctx), void *ctx, fm_error_t *err) {
    task_t *t = malloc(sizeof *t);
    if (!t) return fm_error_set(err, FM_ENOMEM, "out of memory");
    t->next = NULL;
    t->fn = fn;
    t->ctx = ctx;
    pthread_mutex_lock(&J->lock);
    int rc = FM_OK;
    if (atomic_load(&J->stopping))
        rc = fm_error_set(err, FM_EBUSY, "the server is stopping");
    else if (J->ntasks >= TASKS_MAX)
        rc = fm_error_set(err, FM_EBUSY, "%d uploads are already being processed; retry later",
                          TASKS_MAX);
    if (!rc) {
        if (J->task_tail)
            J->task_tail->next = t;
        else
            J->task_head = t;
        J->task_tail = t;
        J->ntasks++;
        pthread_cond_signal(&J->tasks);
    }
    pthread_mutex_unlock(&J->lock);
    if (rc) free(t);
    return rc;
}

/* ---- submissions and queries -------------------------------------------------------------- */

static int has_string(const cJSON *array, const char *text) {
    const cJSON *v;
    cJSON_ArrayForEach(v, array) {
        if (cJSON_IsString(v) && !strcmp(v->valuestring, text)) return 1;
    }
    return 0;
}

/* The spec as the job runs it: threads 1, and the dataset's PII columns added to "pii". */
static cJSON *complete_spec(const cJSON *spec, const cJSON *profile) {
    cJSON *s = cJSON_Duplicate(spec, 1);
    if (!s) return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(s, "threads");
    cJSON_AddNumberToObject(s, "threads", 1);
    const cJSON *dataset_pii = cJSON_GetObjectItemCaseSensitive(profile, "pii"), *v;
    if (cJSON_GetArraySize(dataset_pii) > 0) {
        cJSON *pii = cJSON_GetObjectItemCaseSensitive(s, "pii");
        if (!pii) pii = cJSON_AddArrayToObject(s, "pii");
        /* A "pii" that is not an array is left for the spec parser to name. */
        if (cJSON_IsArray(pii)) {
            cJSON_ArrayForEach(v, dataset_pii) {
                if (cJSON_IsString(v) && !has_string(pii, v->valuestring))
                    cJSON_AddItemToArray(pii, cJSON_CreateString(v->valuestring));
            }
        }
    }
    return s;
}

/* FM_OK when column is in the profile's schema, else FM_EINVAL naming field. */
static int check_column(const cJSON *profile, const char *dataset, const char *field,
                        const char *column, fm_error_t *err) {
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(profile, "schema"), *c;
    cJSON_ArrayForEach(c, schema) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, column)) return FM_OK;
    }
    return fm_error_set(err, FM_EINVAL, "%s: column '%s' is not in dataset '%s'", field, column,
                        dataset);
}

int fm_jobs_submit(fm_jobs_t *J, const char *dataset, const char *model, const cJSON *spec,
                   const char *created_by, char id[FM_JOB_ID_MAX], fm_error_t *err) {
    id[0] = '\0';
    int rc = fm_registry_check_name("model", model, err);
    if (!rc) rc = fm_dataset_check_name(dataset, err);
    if (rc) return rc;
    if (!cJSON_IsObject(spec))
        return fm_error_set(err, FM_EINVAL, "a job is a JSON object of search settings");
    cJSON *profile = NULL;
    rc = fm_datasets_get(J->config.datasets, dataset, &profile, err);
    if (rc) return rc;
    cJSON *completed = complete_spec(spec, profile);
    fm_search_spec_t *parsed = NULL;
    rc = completed ? fm_search_spec_parse(completed, &parsed, err)
                   : fm_error_set(err, FM_ENOMEM, "out of memory");
    cJSON_Delete(completed);
    cJSON *normal = NULL;
    if (!rc) rc = check_column(profile, dataset, "target", fm_search_spec_target(parsed), err);
    if (!rc) {
        normal = fm_search_spec_to_json(parsed);
        const cJSON *validation = cJSON_GetObjectItemCaseSensitive(normal, "validation");
        const cJSON *time = cJSON_GetObjectItemCaseSensitive(validation, "time_column");
        if (cJSON_IsString(time))
            rc = check_column(profile, dataset, "validation.time_column", time->valuestring, err);
        const cJSON *protected = cJSON_GetObjectItemCaseSensitive(normal, "protected"), *p;
        cJSON_ArrayForEach(p, protected) {
            if (rc) break;
            if (cJSON_IsString(p))
                rc = check_column(profile, dataset, "protected", p->valuestring, err);
        }
    }
    size_t candidates = parsed ? fm_search_spec_candidates(parsed) : 0;
    fm_search_spec_free(parsed);
    cJSON_Delete(profile);
    job_t *job = NULL;
    if (!rc) {
        job = calloc(1, sizeof *job);
        if (job) job->spec = normal ? cJSON_PrintUnformatted(normal) : NULL;
        if (!job || !job->spec) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    cJSON_Delete(normal);
    if (rc) {
        job_free(job);
        return rc;
    }
    unsigned char random[6];
    randombytes_buf(random, sizeof random);
    memcpy(job->id, "j_", 2);
    for (size_t i = 0; i < sizeof random; i++)
        snprintf(job->id + 2 + 2 * i, 3, "%02x", random[i]);
    snprintf(job->dataset, sizeof job->dataset, "%s", dataset);
    snprintf(job->model, sizeof job->model, "%s", model);
    snprintf(job->created_by, sizeof job->created_by, "%s", created_by ? created_by : "anonymous");
    job->seq = 1;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "state", "queued");
    cJSON_AddStringToObject(e, "dataset", dataset);
    cJSON_AddStringToObject(e, "model", model);
    cJSON_AddNumberToObject(e, "candidates", (double)candidates);
    cJSON_AddNumberToObject(e, "progress", 0.0);
    char *event = event_text("queued", 1, e);
    fm_jobdb_new_t row = {.id = job->id,
                          .dataset = dataset,
                          .model = model,
                          .created_by = job->created_by,
                          .spec = job->spec,
                          .event = event};
    pthread_mutex_lock(&J->lock);
    if (!event)
        rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    else if (atomic_load(&J->stopping))
        rc = fm_error_set(err, FM_EBUSY, "the server is stopping");
    else if (J->queued >= (size_t)J->config.queue_limit)
        rc = fm_error_set(err, FM_EBUSY, "the job queue is full (%zu jobs waiting); retry later",
                          J->queued);
    if (!rc) rc = fm_jobdb_insert(J->db, &row, err);
    if (!rc) {
        if (J->tail)
            J->tail->next = job;
        else
            J->head = job;
        J->tail = job;
        J->queued++;
        memcpy(id, job->id, FM_JOB_ID_MAX);
        pthread_cond_signal(&J->work);
    }
    pthread_mutex_unlock(&J->lock);
    free(event);
    if (rc) {
        job_free(job);
        return rc;
    }
    changed(J, id);
    return FM_OK;
}

int fm_jobs_cancel(fm_jobs_t *J, const char *id, const char **state, fm_error_t *err) {
    if (state) *state = NULL;
    pthread_mutex_lock(&J->lock);
    job_t *found = NULL;
    for (job_t **p = &J->head, *prev = NULL; *p; prev = *p, p = &(*p)->next) {
        if (strcmp((*p)->id, id) != 0) continue;
        found = *p;
        *p = found->next;
        if (J->tail == found) J->tail = prev;
        J->queued--;
        break;
    }
    int running = 0;
    for (int i = 0; !found && i < J->nworkers; i++) {
        job_t *job = J->workers[i].running;
        if (job && !strcmp(job->id, id)) {
            job->user_cancel = 1;
            atomic_store(&job->cancel, 1);
            running = 1;
        }
    }
    pthread_mutex_unlock(&J->lock);
    if (found) {
        found->user_cancel = 1;
        change_state(J, found, "cancelled", NULL, NULL, NULL, NAN);
        job_free(found);
        if (state) *state = "cancelled";
        return FM_OK;
    }
    if (running) {
        changed(J, id);
        if (state) *state = "running";
        return FM_OK;
    }
    char now[16];
    int rc = fm_jobdb_state(J->db, id, now, err);
    if (rc) return rc;
    if (fm_job_state_final(now))
        return fm_error_set(err, FM_ESTATE, "job %s has already finished (%s)", id, now);
    /* Neither queued nor running here, yet not final: another process's job. */
    return fm_error_set(err, FM_ESTATE, "job %s is %s in another process", id, now);
}

int fm_jobs_get(fm_jobs_t *J, const char *id, int with_log, cJSON **out, fm_error_t *err) {
    int rc = fm_jobdb_get(J->db, id, with_log, out, err);
    if (rc) return rc;
    int requested = 0;
    pthread_mutex_lock(&J->lock);
    for (int i = 0; i < J->nworkers; i++) {
        job_t *job = J->workers[i].running;
        if (job && !strcmp(job->id, id)) requested = job->user_cancel;
    }
    pthread_mutex_unlock(&J->lock);
    cJSON_AddBoolToObject(*out, "cancel_requested", requested);
    return FM_OK;
}

int fm_jobs_list(fm_jobs_t *J, cJSON **out, fm_error_t *err) {
    return fm_jobdb_list(J->db, out, err);
}

int fm_jobs_events(fm_jobs_t *J, const char *id, int64_t after, size_t max, fm_job_event_t **events,
                   size_t *count, int *ended, fm_error_t *err) {
    return fm_jobdb_events(J->db, id, after, max, events, count, ended, err);
}
