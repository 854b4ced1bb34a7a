/*
 * The job store, <home>/jobs.db: SQLite in WAL mode with synchronous FULL, so that every state
 * change and event is on disk once its commit returns (a job is never reported in a state that a
 * crash could take back). Two connections: one for writes (workers, submissions, cancels) and one
 * for reads (the HTTP threads), so that a reader never waits for a writer's fsync; each is used
 * under its own mutex. Reading a job's state and its events happens in one read transaction, so
 * "the job had ended" and "these are its events" come from the same snapshot.
 *
 * Schema (PRAGMA application_id "FMJB", user_version 1):
 *   jobs(n INTEGER PRIMARY KEY, id UNIQUE, state, dataset, model, created_by, spec, created,
 *        started, finished, progress, error, result)
 *   events(job, seq, type, data, PRIMARY KEY (job, seq)) WITHOUT ROWID
 * spec, result and data are JSON text. The file is created with mode 0600 before SQLite opens it.
 */
#include "jobs/jobs_internal.h"

#include "core/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define APPLICATION_ID  1179470402 /* "FMJB" */
#define SCHEMA_VERSION  1
#define BUSY_TIMEOUT_MS 5000
#define LIST_MAX        1000

static const char schema_sql[] =
    "CREATE TABLE jobs (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, state TEXT NOT NULL,"
    " dataset TEXT NOT NULL, model TEXT NOT NULL, created_by TEXT NOT NULL, spec TEXT NOT NULL,"
    " created TEXT NOT NULL, started TEXT, finished TEXT, progress REAL NOT NULL DEFAULT 0,"
    " error TEXT, result TEXT);\n"
    "CREATE TABLE events (job TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,"
    " data TEXT NOT NULL, PRIMARY KEY (job, seq)) WITHOUT ROWID;\n"
    "PRAGMA application_id = 1179470402;\n"
    "PRAGMA user_version = 1;\n";

typedef struct connection {
    sqlite3 *db;
    pthread_mutex_t lock;
} connection_t;

struct fm_jobdb {
    char path[4200];
    connection_t write, read;
};

int fm_job_state_final(const char *state) {
    return !strcmp(state, "succeeded") || !strcmp(state, "failed") || !strcmp(state, "cancelled");
}

static int db_error(fm_jobdb_t *j, sqlite3 *db, int src, const char *what, fm_error_t *err) {
    int code = (src & 0xff) == SQLITE_BUSY || (src & 0xff) == SQLITE_LOCKED      ? FM_EBUSY
               : (src & 0xff) == SQLITE_NOMEM                                    ? FM_ENOMEM
               : (src & 0xff) == SQLITE_CORRUPT || (src & 0xff) == SQLITE_NOTADB ? FM_EFORMAT
                                                                                 : FM_EIO;
    return fm_error_set(err, code, "%s: %s: %s", j->path, what, db ? sqlite3_errmsg(db) : "");
}

static int exec(fm_jobdb_t *j, sqlite3 *db, const char *sql, fm_error_t *err) {
    int src = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return src == SQLITE_OK ? FM_OK : db_error(j, db, src, sql, err);
}

static int prepare(fm_jobdb_t *j, sqlite3 *db, const char *sql, sqlite3_stmt **stmt,
                   fm_error_t *err) {
    int src = sqlite3_prepare_v2(db, sql, -1, stmt, NULL);
    return src == SQLITE_OK ? FM_OK : db_error(j, db, src, "cannot prepare a query", err);
}

static int64_t query_int(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Creates the schema in an empty database, or checks an existing one is a job store. */
static int ensure_schema(fm_jobdb_t *j, sqlite3 *db, fm_error_t *err) {
    int rc = exec(j, db, "BEGIN IMMEDIATE", err);
    if (rc) return rc;
    int64_t app = query_int(db, "PRAGMA application_id");
    int64_t version = query_int(db, "PRAGMA user_version");
    int64_t tables = query_int(db, "SELECT count(*) FROM sqlite_master");
    if (app == 0 && version == 0 && tables == 0)
        rc = exec(j, db, schema_sql, err);
    else if (app != APPLICATION_ID || version < 1)
        rc = fm_error_set(err, FM_EFORMAT, "%s: not a finmaas job store", j->path);
    else if (version > SCHEMA_VERSION)
        rc = fm_error_set(err, FM_EUNSUPPORTED,
                          "%s: job store schema version %lld is newer than this finmaas supports",
                          j->path, (long long)version);
    if (!rc) rc = exec(j, db, "COMMIT", err);
    if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int open_connection(fm_jobdb_t *j, connection_t *c, int writer, fm_error_t *err) {
    pthread_mutex_init(&c->lock, NULL);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
    int src = sqlite3_open_v2(j->path, &c->db, flags, NULL);
    if (src != SQLITE_OK) return db_error(j, c->db, src, "cannot open", err);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    src = sqlite3_exec(c->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    if ((src & 0xff) == SQLITE_NOTADB || (src & 0xff) == SQLITE_CORRUPT)
        return fm_error_set(err, FM_EFORMAT, "%s: not a finmaas job store (%s)", j->path,
                            sqlite3_errmsg(c->db));
    if (src != SQLITE_OK) return db_error(j, c->db, src, "cannot switch to WAL mode", err);
    int rc = exec(j, c->db, "PRAGMA synchronous=FULL", err);
    if (!rc && writer) rc = ensure_schema(j, c->db, err);
    return rc;
}

int fm_jobdb_open(const char *home, fm_jobdb_t **out, fm_error_t *err) {
    *out = NULL;
    fm_jobdb_t *j = calloc(1, sizeof *j);
    if (!j) return fm_error_set(err, FM_ENOMEM, "out of memory");
    int n = snprintf(j->path, sizeof j->path, "%s/jobs.db", home);
    if (n < 0 || (size_t)n >= sizeof j->path) {
        free(j);
        return fm_error_set(err, FM_EINVAL, "%s: path too long", home);
    }
    /* Created 0600 before SQLite sees it: specs and results name the bank's columns. */
    int fd = open(j->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    int rc = FM_OK;
    if (fd < 0) {
        rc = fm_error_set(err, errno == ELOOP ? FM_EDENIED : FM_EIO, "%s: cannot open: %s", j->path,
                          strerror(errno));
        free(j);
        return rc;
    }
    close(fd);
    rc = open_connection(j, &j->write, 1, err);
    if (!rc) rc = open_connection(j, &j->read, 0, err);
    if (rc) {
        fm_jobdb_close(j);
        return rc;
    }
    *out = j;
    return FM_OK;
}

void fm_jobdb_close(fm_jobdb_t *j) {
    if (!j) return;
    connection_t *cs[] = {&j->read, &j->write};
    for (size_t i = 0; i < 2; i++) {
        if (cs[i]->db) sqlite3_close(cs[i]->db);
        pthread_mutex_destroy(&cs[i]->lock);
    }
    free(j);
}

static void bind_text(sqlite3_stmt *st, int i, const char *text) {
    if (text)
        sqlite3_bind_text(st, i, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* Runs a prepared statement that returns no rows, and finalizes it. */
static int step_done(fm_jobdb_t *j, sqlite3 *db, sqlite3_stmt *st, const char *what,
                     fm_error_t *err) {
    int src = sqlite3_step(st);
    sqlite3_finalize(st);
    return src == SQLITE_DONE ? FM_OK : db_error(j, db, src, what, err);
}

static int insert_event(fm_jobdb_t *j, sqlite3 *db, const char *id, int64_t seq, const char *type,
                        const char *data, fm_error_t *err) {
    sqlite3_stmt *st = NULL;
    int rc =
        prepare(j, db, "INSERT INTO events (job, seq, type, data) VALUES (?, ?, ?, ?)", &st, err);
    if (rc) return rc;
    bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, seq);
    bind_text(st, 3, type);
    bind_text(st, 4, data);
    return step_done(j, db, st, "cannot record a job event", err);
}

int fm_jobdb_insert(fm_jobdb_t *j, const fm_jobdb_new_t *job, fm_error_t *err) {
    sqlite3 *db = j->write.db;
    char now[32];
    fm_clock_utc_iso8601(now, sizeof now);
    pthread_mutex_lock(&j->write.lock);
    int rc = exec(j, db, "BEGIN IMMEDIATE", err);
    sqlite3_stmt *st = NULL;
    if (!rc)
        rc = prepare(j, db,
                     "INSERT INTO jobs (id, state, dataset, model, created_by, spec, created) "
                     "VALUES (?, 'queued', ?, ?, ?, ?, ?)",
                     &st, err);
    if (!rc) {
        bind_text(st, 1, job->id);
        bind_text(st, 2, job->dataset);
        bind_text(st, 3, job->model);
        bind_text(st, 4, job->created_by);
        bind_text(st, 5, job->spec);
        bind_text(st, 6, now);
        rc = step_done(j, db, st, "cannot record a job", err);
    }
    if (!rc) rc = insert_event(j, db, job->id, 1, "queued", job->event, err);
    if (!rc) rc = exec(j, db, "COMMIT", err);
    if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&j->write.lock);
    return rc;
}

/* The update of one state change (caller holds the write lock, inside a transaction). */
static int update_state(fm_jobdb_t *j, sqlite3 *db, const char *id, const fm_jobdb_change_t *c,
                        fm_error_t *err) {
    char now[32];
    fm_clock_utc_iso8601(now, sizeof now);
    int running = !strcmp(c->state, "running");
    sqlite3_stmt *st = NULL;
    int rc = prepare(j, db,
                     "UPDATE jobs SET state = ?1, error = coalesce(?2, error),"
                     " result = coalesce(?3, result), progress = coalesce(?4, progress),"
                     " started = CASE WHEN ?5 THEN ?6 ELSE started END,"
                     " finished = CASE WHEN ?5 THEN finished ELSE ?6 END WHERE id = ?7",
                     &st, err);
    if (rc) return rc;
    bind_text(st, 1, c->state);
    bind_text(st, 2, c->error);
    bind_text(st, 3, c->result);
    if (isnan(c->progress))
        sqlite3_bind_null(st, 4);
    else
        sqlite3_bind_double(st, 4, c->progress);
    sqlite3_bind_int(st, 5, running);
    bind_text(st, 6, now);
    bind_text(st, 7, id);
    rc = step_done(j, db, st, "cannot record a job's state", err);
    if (!rc && sqlite3_changes(db) == 0)
        rc = fm_error_set(err, FM_ENOTFOUND, "job %s not found", id);
    return rc;
}

int fm_jobdb_change(fm_jobdb_t *j, const char *id, const fm_jobdb_change_t *change,
                    fm_error_t *err) {
    sqlite3 *db = j->write.db;
    pthread_mutex_lock(&j->write.lock);
    int rc = exec(j, db, "BEGIN IMMEDIATE", err);
    if (!rc) rc = update_state(j, db, id, change, err);
    if (!rc && change->event)
        rc = insert_event(j, db, id, change->seq, change->type, change->event, err);
    if (!rc) rc = exec(j, db, "COMMIT", err);
    if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&j->write.lock);
    return rc;
}

int fm_jobdb_append(fm_jobdb_t *j, const char *id, int64_t seq, const char *type, const char *event,
                    double progress, fm_error_t *err) {
    sqlite3 *db = j->write.db;
    pthread_mutex_lock(&j->write.lock);
    int rc = exec(j, db, "BEGIN IMMEDIATE", err);
    if (!rc) rc = insert_event(j, db, id, seq, type, event, err);
    if (!rc && !isnan(progress)) {
        sqlite3_stmt *st = NULL;
        rc = prepare(j, db, "UPDATE jobs SET progress = ? WHERE id = ?", &st, err);
        if (!rc) {
            sqlite3_bind_double(st, 1, progress);
            bind_text(st, 2, id);
            rc = step_done(j, db, st, "cannot record a job's progress", err);
        }
    }
    if (!rc) rc = exec(j, db, "COMMIT", err);
    if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&j->write.lock);
    return rc;
}

int fm_jobdb_fail_unfinished(fm_jobdb_t *j, const char *reason, size_t *count, fm_error_t *err) {
    if (count) *count = 0;
    sqlite3 *db = j->write.db;
    pthread_mutex_lock(&j->write.lock);
    int rc = exec(j, db, "BEGIN IMMEDIATE", err);
    sqlite3_stmt *st = NULL;
    if (!rc)
        rc = prepare(j, db,
                     "SELECT id, progress, (SELECT coalesce(max(seq), 0) FROM events "
                     "WHERE job = jobs.id) FROM jobs WHERE state IN ('queued', 'running')",
                     &st, err);
    /* Collected first: the updates below must not run while this query is stepping. */
    typedef struct {
        char id[FM_JOB_ID_MAX];
        double progress;
        int64_t seq;
    } pending_t;
    pending_t *pending = NULL;
    size_t n = 0, cap = 0;
    while (!rc) {
        int src = sqlite3_step(st);
        if (src == SQLITE_DONE) break;
        if (src != SQLITE_ROW) {
            rc = db_error(j, db, src, "cannot read the jobs", err);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            pending_t *grown = realloc(pending, cap * sizeof *pending);
            if (!grown) {
                rc = fm_error_set(err, FM_ENOMEM, "out of memory");
                break;
            }
            pending = grown;
        }
        const unsigned char *id = sqlite3_column_text(st, 0);
        snprintf(pending[n].id, sizeof pending[n].id, "%s", id ? (const char *)id : "");
        pending[n].progress = sqlite3_column_double(st, 1);
        pending[n].seq = sqlite3_column_int64(st, 2) + 1;
        n++;
    }
    sqlite3_finalize(st);
    for (size_t i = 0; !rc && i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        char now[32];
        fm_clock_utc_iso8601(now, sizeof now);
        cJSON_AddStringToObject(e, "type", "failed");
        cJSON_AddNumberToObject(e, "seq", (double)pending[i].seq);
        cJSON_AddStringToObject(e, "time", now);
        cJSON_AddStringToObject(e, "state", "failed");
        cJSON_AddStringToObject(e, "error", reason);
        cJSON_AddNumberToObject(e, "progress", pending[i].progress);
        char *text = cJSON_PrintUnformatted(e);
        cJSON_Delete(e);
        fm_jobdb_change_t c = {.state = "failed",
                               .error = reason,
                               .seq = pending[i].seq,
                               .type = "failed",
                               .event = text,
                               .progress = NAN};
        rc = text ? update_state(j, db, pending[i].id, &c, err)
                  : fm_error_set(err, FM_ENOMEM, "out of memory");
        if (!rc) rc = insert_event(j, db, pending[i].id, c.seq, c.type, text, err);
        free(text);
    }
    free(pending);
    if (!rc) rc = exec(j, db, "COMMIT", err);
    if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&j->write.lock);
    if (!rc && count) *count = n;
    return rc;
}

int fm_jobdb_state(fm_jobdb_t *j, const char *id, char state[16], fm_error_t *err) {
    sqlite3 *db = j->read.db;
    pthread_mutex_lock(&j->read.lock);
    sqlite3_stmt *st = NULL;
    int rc = prepare(j, db, "SELECT state FROM jobs WHERE id = ?", &st, err);
    if (!rc) {
        bind_text(st, 1, id);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            snprintf(state, 16, "%s", (const char *)sqlite3_column_text(st, 0));
        else if (src == SQLITE_DONE)
            rc = fm_error_set(err, FM_ENOTFOUND, "job %s not found", id);
        else
            rc = db_error(j, db, src, "cannot read a job", err);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&j->read.lock);
    return rc;
}

/* Adds column i of st to obj under key: text, number or null. json: parse text as JSON. */
static void add_column(cJSON *obj, const char *key, sqlite3_stmt *st, int i, int json) {
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        cJSON_AddNullToObject(obj, key);
        break;
    case SQLITE_INTEGER:
    case SQLITE_FLOAT:
        cJSON_AddNumberToObject(obj, key, sqlite3_column_double(st, i));
        break;
    default: {
        const char *text = (const char *)sqlite3_column_text(st, i);
        cJSON *v = json ? cJSON_Parse(text) : NULL;
        if (v)
            cJSON_AddItemToObject(obj, key, v);
        else
            cJSON_AddStringToObject(obj, key, text ? text : "");
    }
    }
}

static const char job_columns[] =
    "id, state, dataset, model, created_by, created, started, finished, progress, error";
static const char *const job_keys[] = {"id",      "state",   "dataset",  "model",    "created_by",
                                       "created", "started", "finished", "progress", "error"};
#define JOB_KEYS (sizeof job_keys / sizeof job_keys[0])

int fm_jobdb_get(fm_jobdb_t *j, const char *id, int with_log, cJSON **out, fm_error_t *err) {
    *out = NULL;
    sqlite3 *db = j->read.db;
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s, spec, result FROM jobs WHERE id = ?", job_columns);
    pthread_mutex_lock(&j->read.lock);
    int rc = exec(j, db, "BEGIN", err);
    sqlite3_stmt *st = NULL;
    cJSON *job = NULL;
    if (!rc) rc = prepare(j, db, sql, &st, err);
    if (!rc) {
        bind_text(st, 1, id);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            job = cJSON_CreateObject();
            for (size_t k = 0; k < JOB_KEYS; k++)
                add_column(job, job_keys[k], st, (int)k, 0);
            add_column(job, "spec", st, (int)JOB_KEYS, 1);
            add_column(job, "result", st, (int)JOB_KEYS + 1, 1);
        } else if (src == SQLITE_DONE) {
            rc = fm_error_set(err, FM_ENOTFOUND, "job %s not found", id);
        } else {
            rc = db_error(j, db, src, "cannot read a job", err);
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (!rc && with_log) {
        cJSON *log = cJSON_AddArrayToObject(job, "log");
        rc = prepare(j, db, "SELECT data FROM events WHERE job = ? ORDER BY seq", &st, err);
        if (!rc) bind_text(st, 1, id);
        int src;
        while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
            cJSON *e = cJSON_Parse((const char *)sqlite3_column_text(st, 0));
            if (e) cJSON_AddItemToArray(log, e);
        }
        if (!rc && src != SQLITE_DONE) rc = db_error(j, db, src, "cannot read a job's log", err);
        sqlite3_finalize(st);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    pthread_mutex_unlock(&j->read.lock);
    if (rc) {
        cJSON_Delete(job);
        return rc;
    }
    *out = job;
    return FM_OK;
}

int fm_jobdb_list(fm_jobdb_t *j, cJSON **out, fm_error_t *err) {
    *out = NULL;
    sqlite3 *db = j->read.db;
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM jobs ORDER BY n DESC LIMIT %d", job_columns,
             LIST_MAX);
    pthread_mutex_lock(&j->read.lock);
    sqlite3_stmt *st = NULL;
    int rc = prepare(j, db, sql, &st, err);
    cJSON *list = cJSON_CreateArray();
    int src;
    while (!rc && (src = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *job = cJSON_CreateObject();
        for (size_t k = 0; k < JOB_KEYS; k++)
            add_column(job, job_keys[k], st, (int)k, 0);
        cJSON_AddItemToArray(list, job);
    }
    if (!rc && src != SQLITE_DONE) rc = db_error(j, db, src, "cannot list the jobs", err);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&j->read.lock);
    if (rc) {
        cJSON_Delete(list);
        return rc;
    }
    *out = list;
    return FM_OK;
}

void fm_job_events_free(fm_job_event_t *events, size_t count) {
    for (size_t i = 0; events && i < count; i++)
        free(events[i].data);
    free(events);
}

int fm_jobdb_events(fm_jobdb_t *j, const char *id, int64_t after, size_t max,
                    fm_job_event_t **events, size_t *count, int *ended, fm_error_t *err) {
    *events = NULL;
    *count = 0;
    *ended = 0;
    sqlite3 *db = j->read.db;
    pthread_mutex_lock(&j->read.lock);
    int rc = exec(j, db, "BEGIN", err);
    sqlite3_stmt *st = NULL;
    if (!rc) rc = prepare(j, db, "SELECT state FROM jobs WHERE id = ?", &st, err);
    if (!rc) {
        bind_text(st, 1, id);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW)
            *ended = fm_job_state_final((const char *)sqlite3_column_text(st, 0));
        else if (src == SQLITE_DONE)
            rc = fm_error_set(err, FM_ENOTFOUND, "job %s not found", id);
        else
            rc = db_error(j, db, src, "cannot read a job", err);
        sqlite3_finalize(st);
        st = NULL;
    }
    fm_job_event_t *list = NULL;
    size_t n = 0;
    if (!rc) {
        list = calloc(max ? max : 1, sizeof *list);
        if (!list) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (!rc)
        rc = prepare(j, db,
                     "SELECT seq, type, data FROM events WHERE job = ? AND seq > ? ORDER BY seq "
                     "LIMIT ?",
                     &st, err);
    if (!rc) {
        bind_text(st, 1, id);
        sqlite3_bind_int64(st, 2, after);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
        int src;
        while ((src = sqlite3_step(st)) == SQLITE_ROW) {
            list[n].seq = sqlite3_column_int64(st, 0);
            snprintf(list[n].type, sizeof list[n].type, "%s",
                     (const char *)sqlite3_column_text(st, 1));
            const char *data = (const char *)sqlite3_column_text(st, 2);
            list[n].data = strdup(data ? data : "{}");
            if (!list[n++].data) {
                rc = fm_error_set(err, FM_ENOMEM, "out of memory");
                break;
            }
        }
        if (!rc && src != SQLITE_DONE) rc = db_error(j, db, src, "cannot read a job's log", err);
        sqlite3_finalize(st);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    pthread_mutex_unlock(&j->read.lock);
    if (rc) {
        fm_job_events_free(list, n);
        *ended = 0;
        return rc;
    }
    *events = list;
    *count = n;
    return FM_OK;
}
