/*
 * Tests of the job store and the worker pool (jobs/job_db.c, jobs/pool.c) in scratch homes: the
 * store's records and their order, what a reader sees as "ended", the restart rule (queued and
 * running jobs of a process that died become failed, "interrupted by a server restart", with an
 * event), and the pool end to end on a synthetic dataset: a small search that registers its model
 * (uploaded by the job's creator, labelled staging, announced through the callback) with a log of
 * consecutive events; submissions refused with the field named (bad spec, unknown target,
 * unknown dataset, bad names) and nothing recorded; a full queue; cancels of queued and running
 * jobs; a stop that interrupts the running job and fails the queued ones; background tasks in
 * order.
 */
#include "core/buf.h"
#include "core/clock.h"
#include "core/rng.h"
#include "jobs/jobs_internal.h"
#include "registry/registry.h"
#include "fm_test.h"
#include "fm_test_fs.h"

#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *text(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double number(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the store --------------------------------------------------------------------------- */

static void test_store_records(void) {
    char home[PATH_MAX];
    fm_test_home(home, sizeof home, "store");
    fm_jobdb_t *db = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_jobdb_open(home, &db, &err), FM_OK);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/jobs.db", home);
    struct stat st;
    FM_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    fm_jobdb_new_t a = {
        "j_000000000001", "d", "m", "k_1", "{\"target\":\"y\"}", "{\"type\":\"queued\",\"seq\":1}"};
    fm_jobdb_new_t b = {
        "j_000000000002", "d", "m2", "k_2", "{}", "{\"type\":\"queued\",\"seq\":1}"};
    FM_CHECK_INT(fm_jobdb_insert(db, &a, &err), FM_OK);
    FM_CHECK_INT(fm_jobdb_insert(db, &b, &err), FM_OK);
    FM_CHECK(fm_jobdb_insert(db, &a, &err) != FM_OK); /* ids are unique */
    fm_jobdb_change_t running = {"running", NULL, NULL, 2, "started", "{\"seq\":2}", 0.0};
    FM_CHECK_INT(fm_jobdb_change(db, a.id, &running, &err), FM_OK);
    FM_CHECK_INT(fm_jobdb_append(db, a.id, 3, "fold_done", "{\"seq\":3}", 0.5, &err), FM_OK);
    fm_job_event_t *ev = NULL;
    size_t n = 0;
    int ended = -1;
    FM_CHECK_INT(fm_jobdb_events(db, a.id, 1, 10, &ev, &n, &ended, &err), FM_OK);
    FM_CHECK_INT(n, 2);
    FM_CHECK_INT(ended, 0);
    if (n == 2) {
        FM_CHECK_INT(ev[0].seq, 2);
        FM_CHECK_STR(ev[0].type, "started");
        FM_CHECK_STR(ev[1].data, "{\"seq\":3}");
    }
    fm_job_events_free(ev, n);
    fm_jobdb_change_t done = {"succeeded",   NULL, "{\"best\":0}", 4, "succeeded",
                              "{\"seq\":4}", 1.0};
    FM_CHECK_INT(fm_jobdb_change(db, a.id, &done, &err), FM_OK);
    FM_CHECK_INT(fm_jobdb_events(db, a.id, 3, 1, &ev, &n, &ended, &err), FM_OK);
    FM_CHECK(n == 1 && ended == 1);
    fm_job_events_free(ev, n);
    FM_CHECK_INT(fm_jobdb_events(db, "j_nope", 0, 10, &ev, &n, &ended, &err), FM_ENOTFOUND);
    cJSON *job = NULL;
    FM_CHECK_INT(fm_jobdb_get(db, a.id, 1, &job, &err), FM_OK);
    FM_CHECK_STR(text(job, "state"), "succeeded");
    FM_CHECK_NEAR(number(job, "progress"), 1.0, 0);
    FM_CHECK(text(job, "started") && text(job, "finished") && text(job, "created"));
    FM_CHECK_NEAR(number(cJSON_GetObjectItemCaseSensitive(job, "result"), "best"), 0, 0);
    FM_CHECK_STR(text(cJSON_GetObjectItemCaseSensitive(job, "spec"), "target"), "y");
    FM_CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(job, "log")), 4);
    cJSON_Delete(job);
    cJSON *list = NULL;
    FM_CHECK_INT(fm_jobdb_list(db, &list, &err), FM_OK);
    FM_CHECK_INT(cJSON_GetArraySize(list), 2);
    FM_CHECK_STR(text(cJSON_GetArrayItem(list, 0), "id"), b.id); /* newest first */
    cJSON_Delete(list);
    fm_jobdb_change_t missing = {"running", NULL, NULL, 2, "started", "{}", NAN};
    FM_CHECK_INT(fm_jobdb_change(db, "j_nope", &missing, &err), FM_ENOTFOUND);
    fm_jobdb_close(db);
    /* A process that died: b (queued) becomes failed; a (finished) stays. */
    FM_CHECK_INT(fm_jobdb_open(home, &db, &err), FM_OK);
    size_t count = 0;
    FM_CHECK_INT(fm_jobdb_fail_unfinished(db, "interrupted by a server restart", &count, &err),
                 FM_OK);
    FM_CHECK_INT(count, 1);
    char state[16];
    FM_CHECK_INT(fm_jobdb_state(db, b.id, state, &err), FM_OK);
    FM_CHECK_STR(state, "failed");
    FM_CHECK_INT(fm_jobdb_state(db, a.id, state, &err), FM_OK);
    FM_CHECK_STR(state, "succeeded");
    FM_CHECK_INT(fm_jobdb_get(db, b.id, 1, &job, &err), FM_OK);
    FM_CHECK_STR(text(job, "error"), "interrupted by a server restart");
    const cJSON *log = cJSON_GetObjectItemCaseSensitive(job, "log");
    FM_CHECK_INT(cJSON_GetArraySize(log), 2);
    FM_CHECK_STR(text(cJSON_GetArrayItem(log, 1), "type"), "failed");
    FM_CHECK_NEAR(number(cJSON_GetArrayItem(log, 1), "seq"), 2, 0);
    cJSON_Delete(job);
    fm_jobdb_close(db);
    /* Not a job store. */
    char other[PATH_MAX];
    fm_test_home(other, sizeof other, "notastore");
    snprintf(path, sizeof path, "%s/jobs.db", other);
    FILE *fp = fopen(path, "w");
    if (fp) {
        fputs("this is not a database, it is a text file of some length......", fp);
        fclose(fp);
    }
    FM_CHECK_INT(fm_jobdb_open(other, &db, &err), FM_EFORMAT);
}

/* ---- the pool ---------------------------------------------------------------------------- */

typedef struct fixture {
    char home[PATH_MAX];
    fm_registry_t *registry;
    fm_datasets_t *datasets;
    fm_jobs_t *jobs;
    atomic_int changes;
    atomic_int registered;
    int64_t last_version;
    char last_model[FM_REGISTRY_NAME_MAX + 1];
} fixture_t;

static void on_registered(const char *model, int64_t version, void *ctx) {
    fixture_t *f = ctx;
    snprintf(f->last_model, sizeof f->last_model, "%s", model);
    f->last_version = version;
    atomic_fetch_add(&f->registered, 1);
}

static void on_changed(const char *id, void *ctx) {
    (void)id;
    fixture_t *f = ctx;
    atomic_fetch_add(&f->changes, 1);
}

/* A binary problem: y = yes when 1.5 x1 - x2 + (g == "a") + noise > 0. */
static void upload_synthetic(fixture_t *f, const char *name, int rows) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 11);
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_puts(&b, "x1,x2,g,y\n");
    for (int i = 0; i < rows; i++) {
        double x1 = fm_rng_normal(&rng), x2 = fm_rng_normal(&rng);
        int g = (int)fm_rng_below(&rng, 3);
        double z = 1.5 * x1 - x2 + (g == 0) + 0.5 * fm_rng_normal(&rng);
        fm_buf_printf(&b, "%.4f,%.4f,%c,%s\n", x1, x2, "abc"[g], z > 0 ? "yes" : "no");
    }
    fm_dataset_options_t none = {0};
    fm_dataset_upload_t *u = NULL;
    fm_error_t err;
    cJSON *p = NULL;
    FM_CHECK_INT(fm_dataset_upload_begin(f->datasets, name, &none, &u, &err), FM_OK);
    FM_CHECK_INT(fm_dataset_upload_write(u, b.data, b.len, &err), FM_OK);
    FM_CHECK_INT(fm_dataset_upload_commit(u, &p, &err), FM_OK);
    cJSON_Delete(p);
    fm_dataset_upload_free(u);
    fm_buf_free(&b);
}

static void open_pool(fixture_t *f, int workers, int queue) {
    fm_error_t err;
    fm_jobs_config_t c = {.home = f->home,
                          .workers = workers,
                          .queue_limit = queue,
                          .registry = f->registry,
                          .datasets = f->datasets,
                          .on_registered = on_registered,
                          .on_changed = on_changed,
                          .ctx = f};
    FM_CHECK_MSG(fm_jobs_open(&c, &f->jobs, &err) == FM_OK, "%s", err.msg);
}

static void fixture_open(fixture_t *f, const char *name, int workers, int queue) {
    memset(f, 0, sizeof *f);
    fm_test_home(f->home, sizeof f->home, name);
    fm_error_t err;
    FM_CHECK_INT(fm_registry_open(f->home, &f->registry, &err), FM_OK);
    FM_CHECK_INT(fm_datasets_open(f->home, NULL, &f->datasets, &err), FM_OK);
    open_pool(f, workers, queue);
}

static void fixture_close(fixture_t *f) {
    fm_jobs_close(f->jobs);
    fm_datasets_close(f->datasets);
    fm_registry_close(f->registry);
}

static int submit(fixture_t *f, const char *dataset, const char *model, const char *spec,
                  char id[FM_JOB_ID_MAX], fm_error_t *err) {
    cJSON *j = cJSON_Parse(spec);
    int rc = fm_jobs_submit(f->jobs, dataset, model, j, "k_0123456789ab", id, err);
    cJSON_Delete(j);
    return rc;
}

/* The job's state once it satisfies want (a state, or "final"), polling up to seconds. */
static void wait_state(fixture_t *f, const char *id, const char *want, double seconds, char *state,
                       size_t size) {
    double deadline = fm_clock_seconds() + seconds;
    state[0] = '\0';
    while (fm_clock_seconds() < deadline) {
        cJSON *job = NULL;
        fm_error_t err;
        if (fm_jobs_get(f->jobs, id, 0, &job, &err) == FM_OK) {
            snprintf(state, size, "%s", text(job, "state"));
            cJSON_Delete(job);
        }
        if (!strcmp(state, want) || (!strcmp(want, "final") && fm_job_state_final(state))) return;
        sleep_ms(20);
    }
}

static const char small_spec[] =
    "{\"target\":\"y\",\"positive\":\"yes\",\"validation\":{\"folds\":2,\"holdout\":0.2},"
    "\"search\":{\"budget\":2},\"space\":{\"family\":[\"logistic\"],\"epochs\":[5],"
    "\"learning_rate\":[0.01,0.03]},\"importance_repeats\":0,\"threads\":4}";

/* Many short fits: cancels and stops are seen within one of them. */
static const char long_spec[] =
    "{\"target\":\"y\",\"validation\":{\"folds\":5},\"search\":{\"budget\":500},"
    "\"space\":{\"family\":[\"mlp\"],\"hidden\":[[8]],\"epochs\":[20],"
    "\"learning_rate\":{\"min\":0.001,\"max\":0.1}},\"importance_repeats\":0}";

static void test_pool_runs_a_search(void) {
    fixture_t f;
    fixture_open(&f, "pool", 1, 4);
    upload_synthetic(&f, "synth", 400);
    char id[FM_JOB_ID_MAX], state[16];
    fm_error_t err;
    FM_CHECK_MSG(submit(&f, "synth", "synth-model", small_spec, id, &err) == FM_OK, "%s", err.msg);
    FM_CHECK(strncmp(id, "j_", 2) == 0 && strlen(id) == 14);
    wait_state(&f, id, "final", 120, state, sizeof state);
    FM_CHECK_STR(state, "succeeded");
    cJSON *job = NULL;
    FM_CHECK_INT(fm_jobs_get(f.jobs, id, 1, &job, &err), FM_OK);
    FM_CHECK_NEAR(number(job, "progress"), 1.0, 0);
    FM_CHECK_STR(text(job, "created_by"), "k_0123456789ab");
    /* The spec as run: one BLAS thread whatever was asked. */
    FM_CHECK_NEAR(number(cJSON_GetObjectItemCaseSensitive(job, "spec"), "threads"), 1, 0);
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(job, "result");
    FM_CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(result, "leaderboard")), 2);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(result, "model");
    FM_CHECK_STR(text(model, "name"), "synth-model");
    FM_CHECK_NEAR(number(model, "version"), 1, 0);
    FM_CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(result, "test_metrics")));
    /* The log: consecutive sequence numbers, from queued to succeeded. */
    const cJSON *log = cJSON_GetObjectItemCaseSensitive(job, "log"), *e;
    int seq = 0, saw_done = 0, saw_registered = 0;
    cJSON_ArrayForEach(e, log) {
        FM_CHECK_NEAR(number(e, "seq"), ++seq, 0);
        saw_done += !strcmp(text(e, "type"), "candidate_done");
        saw_registered += !strcmp(text(e, "type"), "registered");
    }
    FM_CHECK_STR(text(cJSON_GetArrayItem(log, 0), "type"), "queued");
    FM_CHECK_STR(text(cJSON_GetArrayItem(log, 1), "type"), "started");
    FM_CHECK_STR(text(cJSON_GetArrayItem(log, cJSON_GetArraySize(log) - 1), "type"), "succeeded");
    FM_CHECK_INT(saw_done, 2);
    FM_CHECK_INT(saw_registered, 1);
    FM_CHECK(atomic_load(&f.changes) >= seq);
    cJSON_Delete(job);
    /* Registered: version 1, by the job's creator, labelled staging, announced. */
    fm_version_info_t info;
    FM_CHECK_INT(fm_registry_get(f.registry, "synth-model", 1, &info, &err), FM_OK);
    FM_CHECK_STR(info.uploaded_by, "k_0123456789ab");
    FM_CHECK_STR(info.labels, "staging");
    FM_CHECK_INT(atomic_load(&f.registered), 1);
    FM_CHECK_STR(f.last_model, "synth-model");
    FM_CHECK_INT(f.last_version, 1);
    /* SSE-style reads: in pages, ended after the last. */
    fm_job_event_t *ev = NULL;
    size_t n = 0;
    int ended = 0;
    int64_t after = 0;
    int pages = 0, total = 0;
    do {
        FM_CHECK_INT(fm_jobs_events(f.jobs, id, after, 5, &ev, &n, &ended, &err), FM_OK);
        if (n) after = ev[n - 1].seq;
        total += (int)n;
        pages++;
        fm_job_events_free(ev, n);
    } while (n == 5 && pages < 1000);
    FM_CHECK_INT(total, seq);
    FM_CHECK_INT(ended, 1);
    cJSON *list = NULL;
    FM_CHECK_INT(fm_jobs_list(f.jobs, &list, &err), FM_OK);
    FM_CHECK_INT(cJSON_GetArraySize(list), 1);
    cJSON_Delete(list);
    fixture_close(&f);
}

static void test_pool_refuses_bad_submissions(void) {
    fixture_t f;
    fixture_open(&f, "refusals", 1, 4);
    upload_synthetic(&f, "synth", 100);
    char id[FM_JOB_ID_MAX];
    fm_error_t err;
    static const struct {
        const char *dataset, *model, *spec;
        int code;
        const char *says;
    } cases[] = {
        {"synth", "m", "{\"target\":\"y\",\"validation\":{\"folds\":1}}", FM_EINVAL,
         "validation.folds"},
        {"synth", "m", "{\"target\":\"y\",\"bogus\":1}", FM_EINVAL, "bogus"},
        {"synth", "m", "{\"target\":\"nope\"}", FM_EINVAL, "target: column 'nope'"},
        {"synth", "m", "{}", FM_EINVAL, "target"},
        {"synth", "m", "[1]", FM_EINVAL, "JSON object"},
        {"nosuch", "m", "{\"target\":\"y\"}", FM_ENOTFOUND, "dataset 'nosuch'"},
        {"synth", "../m", "{\"target\":\"y\"}", FM_EINVAL, "invalid model name"},
        {"a/b", "m", "{\"target\":\"y\"}", FM_EINVAL, "invalid dataset name"},
        {"synth", "m",
         "{\"target\":\"y\",\"validation\":{\"scheme\":\"time\",\"time_column\":\"when\"}}",
         FM_EINVAL, "validation.time_column: column 'when'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = submit(&f, cases[i].dataset, cases[i].model, cases[i].spec, id, &err);
        FM_CHECK_MSG(rc == cases[i].code, "case %zu: %d %s", i, rc, err.msg);
        FM_CHECK_MSG(strstr(err.msg, cases[i].says) != NULL, "case %zu: %s", i, err.msg);
        FM_CHECK_STR(id, "");
    }
    cJSON *list = NULL;
    FM_CHECK_INT(fm_jobs_list(f.jobs, &list, &err), FM_OK);
    FM_CHECK_INT(cJSON_GetArraySize(list), 0);
    cJSON_Delete(list);
    const char *state = NULL;
    FM_CHECK_INT(fm_jobs_cancel(f.jobs, "j_000000000000", &state, &err), FM_ENOTFOUND);
    fixture_close(&f);
}

static void test_pool_cancel_queue_and_stop(void) {
    fixture_t f;
    fixture_open(&f, "cancel", 1, 2);
    upload_synthetic(&f, "synth", 1000);
    char a[FM_JOB_ID_MAX], b[FM_JOB_ID_MAX], c[FM_JOB_ID_MAX], d[FM_JOB_ID_MAX], state[16];
    fm_error_t err;
    FM_CHECK_INT(submit(&f, "synth", "ma", long_spec, a, &err), FM_OK);
    wait_state(&f, a, "running", 30, state, sizeof state);
    FM_CHECK_STR(state, "running");
    FM_CHECK_INT(submit(&f, "synth", "mb", long_spec, b, &err), FM_OK);
    FM_CHECK_INT(submit(&f, "synth", "mc", long_spec, c, &err), FM_OK);
    /* The queue holds two: a third waiting job is refused. */
    FM_CHECK_INT(submit(&f, "synth", "md", long_spec, d, &err), FM_EBUSY);
    FM_CHECK(strstr(err.msg, "queue is full") != NULL);
    /* A queued job is cancelled at once. */
    const char *now = NULL;
    FM_CHECK_INT(fm_jobs_cancel(f.jobs, c, &now, &err), FM_OK);
    FM_CHECK_STR(now, "cancelled");
    wait_state(&f, c, "cancelled", 1, state, sizeof state);
    FM_CHECK_STR(state, "cancelled");
    /* A running one at the search's next check. */
    double t0 = fm_clock_seconds();
    FM_CHECK_INT(fm_jobs_cancel(f.jobs, a, &now, &err), FM_OK);
    FM_CHECK_STR(now, "running");
    cJSON *job = NULL;
    FM_CHECK_INT(fm_jobs_get(f.jobs, a, 0, &job, &err), FM_OK);
    FM_CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(job, "cancel_requested")) ||
             fm_job_state_final(text(job, "state")));
    cJSON_Delete(job);
    wait_state(&f, a, "final", 60, state, sizeof state);
    FM_CHECK_STR(state, "cancelled");
    printf("  running job cancelled in %.2f s\n", fm_clock_seconds() - t0);
    FM_CHECK_INT(fm_jobs_cancel(f.jobs, a, &now, &err), FM_ESTATE);
    FM_CHECK(strstr(err.msg, "already finished (cancelled)") != NULL);
    /* b runs next; a new one waits; stop interrupts b and fails the waiting one. */
    wait_state(&f, b, "running", 30, state, sizeof state);
    FM_CHECK_STR(state, "running");
    FM_CHECK_INT(submit(&f, "synth", "me", long_spec, d, &err), FM_OK);
    t0 = fm_clock_seconds();
    fm_jobs_stop(f.jobs);
    printf("  stopped in %.2f s\n", fm_clock_seconds() - t0);
    fm_jobs_stop(f.jobs); /* idempotent */
    FM_CHECK_INT(submit(&f, "synth", "mf", small_spec, c, &err), FM_EBUSY);
    FM_CHECK_INT(fm_jobs_background(f.jobs, (void (*)(void *))free, NULL, &err), FM_EBUSY);
    const char *ids[] = {b, d};
    for (int i = 0; i < 2; i++) {
        FM_CHECK_INT(fm_jobs_get(f.jobs, ids[i], 1, &job, &err), FM_OK);
        FM_CHECK_STR(text(job, "state"), "failed");
        FM_CHECK_STR(text(job, "error"), "interrupted by shutdown");
        cJSON_Delete(job);
    }
    fm_jobs_close(f.jobs);
    /* Nothing was left unfinished for the next start; no model was registered. */
    f.jobs = NULL;
    open_pool(&f, 1, 2);
    FM_CHECK_INT(fm_jobs_get(f.jobs, b, 0, &job, &err), FM_OK);
    FM_CHECK_STR(text(job, "error"), "interrupted by shutdown");
    cJSON_Delete(job);
    FM_CHECK_INT(atomic_load(&f.registered), 0);
    fixture_close(&f);
}

/* A job store left with a running job by a process that died: the next open fails it. */
static void test_restart_fails_interrupted_jobs(void) {
    char home[PATH_MAX];
    fm_test_home(home, sizeof home, "restart");
    fm_jobdb_t *db = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_jobdb_open(home, &db, &err), FM_OK);
    fm_jobdb_new_t row = {"j_0000000000aa", "synth", "m", "k_1", "{}", "{\"seq\":1}"};
    FM_CHECK_INT(fm_jobdb_insert(db, &row, &err), FM_OK);
    fm_jobdb_change_t running = {"running", NULL, NULL, 2, "started", "{\"seq\":2}", 0.25};
    FM_CHECK_INT(fm_jobdb_change(db, row.id, &running, &err), FM_OK);
    fm_jobdb_close(db);
    fixture_t f;
    memset(&f, 0, sizeof f);
    snprintf(f.home, sizeof f.home, "%s", home);
    FM_CHECK_INT(fm_registry_open(home, &f.registry, &err), FM_OK);
    FM_CHECK_INT(fm_datasets_open(home, NULL, &f.datasets, &err), FM_OK);
    open_pool(&f, 1, 1);
    cJSON *job = NULL;
    FM_CHECK_INT(fm_jobs_get(f.jobs, row.id, 1, &job, &err), FM_OK);
    FM_CHECK_STR(text(job, "state"), "failed");
    FM_CHECK_STR(text(job, "error"), "interrupted by a server restart");
    FM_CHECK_NEAR(number(job, "progress"), 0.25, 0);
    const cJSON *log = cJSON_GetObjectItemCaseSensitive(job, "log");
    FM_CHECK_STR(text(cJSON_GetArrayItem(log, 2), "error"), "interrupted by a server restart");
    cJSON_Delete(job);
    fixture_close(&f);
}

typedef struct order {
    int seen[8];
    atomic_int n;
} order_t;

typedef struct task_arg {
    order_t *order;
    int value;
} task_arg_t;

static void record_task(void *ctx) {
    task_arg_t *t = ctx;
    int i = atomic_fetch_add(&t->order->n, 1);
    if (i < 8) t->order->seen[i] = t->value;
    sleep_ms(5);
}

static void test_background_tasks_in_order(void) {
    fixture_t f;
    fixture_open(&f, "background", 1, 1);
    order_t order;
    memset(&order, 0, sizeof order);
    task_arg_t args[8];
    fm_error_t err;
    for (int i = 0; i < 8; i++) {
        args[i] = (task_arg_t){&order, i};
        FM_CHECK_INT(fm_jobs_background(f.jobs, record_task, &args[i], &err), FM_OK);
    }
    /* Stopping still runs what was queued. */
    fm_jobs_stop(f.jobs);
    FM_CHECK_INT(atomic_load(&order.n), 8);
    for (int i = 0; i < 8; i++)
        FM_CHECK_INT(order.seen[i], i);
    fixture_close(&f);
}

FM_TEST_MAIN(FM_TEST_CASE(test_store_records), FM_TEST_CASE(test_pool_runs_a_search),
             FM_TEST_CASE(test_pool_refuses_bad_submissions),
             FM_TEST_CASE(test_pool_cancel_queue_and_stop),
             FM_TEST_CASE(test_restart_fails_interrupted_jobs),
             FM_TEST_CASE(test_background_tasks_in_order))
