/*
 * The registry's SQLite database: opening it (WAL journal so readers never block the writer,
 * foreign keys on, a 5 s busy timeout for other processes' locks), creating or checking its
 * schema (PRAGMA user_version holds the schema version so a later release can migrate), and every
 * query, each a statement prepared once at open with its values bound, never built from text.
 *
 * Tables: models(name, created); versions(model, version, path, sha256, size, task, family,
 * created, uploaded_by) with path relative to the home, so a home directory can be moved or
 * mounted elsewhere; labels(model, label, version, updated), each label pointing at an existing
 * version. Versions are never deleted, so max(version) + 1 inside a BEGIN IMMEDIATE transaction
 * never hands out a number twice, across threads and processes alike.
 *
 * Schema versions: 1 had no uploaded_by; opening such a database adds the column (every existing
 * version was added from the command line or by an unrecorded uploader: 'cli') in the same
 * transaction that reads the schema version, after checking that the tables are a registry's.
 *
 * The caller holds registry->lock for every call here (registry_internal.h).
 */
#include "registry/registry_internal.h"
#include "security/sqlite_status.h"

#include "core/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUSY_TIMEOUT_MS 5000

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS models (\n"
    "    name TEXT PRIMARY KEY NOT NULL,\n"
    "    created TEXT NOT NULL\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS versions (\n"
    "    model TEXT NOT NULL REFERENCES models(name),\n"
    "    version INTEGER NOT NULL CHECK (version > 0),\n"
    "    path TEXT NOT NULL,\n"
    "    sha256 TEXT NOT NULL,\n"
    "    size INTEGER NOT NULL CHECK (size >= 0),\n"
    "    task TEXT NOT NULL,\n"
    "    family TEXT NOT NULL,\n"
    "    created TEXT NOT NULL,\n"
    "    uploaded_by TEXT NOT NULL DEFAULT 'cli',\n"
    "    PRIMARY KEY (model, version)\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS labels (\n"
    "    model TEXT NOT NULL REFERENCES models(name),\n"
    "    label TEXT NOT NULL,\n"
    "    version INTEGER NOT NULL,\n"
    "    updated TEXT NOT NULL,\n"
    "    PRIMARY KEY (model, label),\n"
    "    FOREIGN KEY (model, version) REFERENCES versions(model, version)\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS labels_by_version ON labels(model, version);\n"
    "PRAGMA user_version = 2;\n";

/* A schema-1 database has exactly these columns; preparing it proves the tables are ours before
 * the migration changes anything. */
static const char schema1_probe_sql[] =
    "SELECT model, version, path, sha256, size, task, family, created FROM versions LIMIT 0";

static const char migrate_1_to_2_sql[] =
    "ALTER TABLE versions ADD COLUMN uploaded_by TEXT NOT NULL DEFAULT 'cli';\n"
    "PRAGMA user_version = 2;\n";

/* The columns every version query returns, in the order read_version expects; the label column
 * (last, LABEL_COLUMN) comes from a left join, so a version with k labels appears on k rows (one
 * with NULL when none), ordered so that the rows of one version are adjacent and its labels
 * sorted. */
#define VERSION_COLUMNS                                                                            \
    "SELECT v.model, v.version, v.path, v.sha256, v.size, v.task, v.family, v.created, "           \
    "v.uploaded_by, l.label "                                                                      \
    "FROM versions v LEFT JOIN labels l ON l.model = v.model AND l.version = v.version "
#define LABEL_COLUMN  9
#define VERSION_ORDER " ORDER BY v.model, v.version, l.label"

static const char *const statement_sql[FM_REGISTRY_SQL_COUNT] = {
    [FM_REGISTRY_SQL_BEGIN] = "BEGIN IMMEDIATE",
    [FM_REGISTRY_SQL_COMMIT] = "COMMIT",
    [FM_REGISTRY_SQL_ROLLBACK] = "ROLLBACK",
    [FM_REGISTRY_SQL_NEXT_VERSION] =
        "SELECT coalesce(max(version), 0) + 1 FROM versions WHERE model = ?1",
    [FM_REGISTRY_SQL_INSERT_MODEL] = "INSERT OR IGNORE INTO models(name, created) VALUES (?1, ?2)",
    [FM_REGISTRY_SQL_INSERT_VERSION] =
        "INSERT INTO versions(model, version, path, sha256, size, task, family, created, "
        "uploaded_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [FM_REGISTRY_SQL_LIST_ALL] = VERSION_COLUMNS VERSION_ORDER,
    [FM_REGISTRY_SQL_LIST_MODEL] = VERSION_COLUMNS "WHERE v.model = ?1" VERSION_ORDER,
    [FM_REGISTRY_SQL_GET] = VERSION_COLUMNS "WHERE v.model = ?1 AND v.version = ?2" VERSION_ORDER,
    [FM_REGISTRY_SQL_MODELS] = "SELECT name FROM models ORDER BY name",
    [FM_REGISTRY_SQL_MODEL_EXISTS] = "SELECT 1 FROM models WHERE name = ?1",
    [FM_REGISTRY_SQL_SET_LABEL] =
        "INSERT INTO labels(model, label, version, updated) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT(model, label) DO UPDATE SET version = excluded.version, "
        "updated = excluded.updated",
    [FM_REGISTRY_SQL_REMOVE_LABEL] = "DELETE FROM labels WHERE model = ?1 AND label = ?2",
    [FM_REGISTRY_SQL_LABEL_VERSION] = "SELECT version FROM labels WHERE model = ?1 AND label = ?2",
    [FM_REGISTRY_SQL_NEWEST] = "SELECT max(version) FROM versions WHERE model = ?1",
};

/* Records a failed SQLite call as "<db path>: <what>: <sqlite's message>". */
static int db_error(fm_registry_t *r, int sqlite_rc, const char *what, fm_error_t *err) {
    const char *detail = r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(sqlite_rc);
    return fm_error_set(err, fm_sqlite_status(sqlite_rc), "%s: %s: %s", r->db_path, what, detail);
}

/* The statement, reset and with its bindings cleared, ready to bind. */
static sqlite3_stmt *statement(fm_registry_t *r, fm_registry_sql_t which) {
    sqlite3_stmt *s = r->stmt[which];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static int bind_text(sqlite3_stmt *s, int index, const char *text) {
    return sqlite3_bind_text(s, index, text, -1, SQLITE_STATIC);
}

/* Runs a statement that returns no rows (or whose rows are not needed). */
static int run_done(fm_registry_t *r, sqlite3_stmt *s, const char *what, fm_error_t *err) {
    int rc = sqlite3_step(s);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(s);
    int status = rc == SQLITE_DONE ? FM_OK : db_error(r, rc, what, err);
    sqlite3_reset(s);
    return status;
}

/* Runs a one-row one-integer query; *found is 0 when it returns no row or NULL. */
static int run_integer(fm_registry_t *r, sqlite3_stmt *s, const char *what, int64_t *value,
                       int *found, fm_error_t *err) {
    *found = 0;
    int rc = sqlite3_step(s);
    int status = FM_OK;
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_type(s, 0) != SQLITE_NULL) {
            *value = sqlite3_column_int64(s, 0);
            *found = 1;
        }
    } else if (rc != SQLITE_DONE) {
        status = db_error(r, rc, what, err);
    }
    sqlite3_reset(s);
    return status;
}

/* A fixed SQL text without parameters (pragmas, the schema script). */
static int exec_fixed(fm_registry_t *r, const char *sql, const char *what, fm_error_t *err) {
    int rc = sqlite3_exec(r->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? FM_OK : db_error(r, rc, what, err);
}

/* Adds versions.uploaded_by to a schema-1 registry (inside ensure_schema's transaction). */
static int migrate_from_1(fm_registry_t *r, fm_error_t *err) {
    sqlite3_stmt *probe = NULL;
    int src = sqlite3_prepare_v2(r->db, schema1_probe_sql, -1, &probe, NULL);
    sqlite3_finalize(probe);
    if (src != SQLITE_OK)
        return fm_error_set(err, FM_EFORMAT, "%s: not a finmaas registry (%s)", r->db_path,
                            sqlite3_errmsg(r->db));
    return exec_fixed(r, migrate_1_to_2_sql, "cannot migrate the registry to schema version 2",
                      err);
}

/* Creates the schema in a fresh database, or checks that an existing one is a version this code
 * can use. Inside a write transaction so that two processes creating it at once do not race. */
static int ensure_schema(fm_registry_t *r, fm_error_t *err) {
    int rc = exec_fixed(r, "BEGIN IMMEDIATE", "cannot start a transaction", err);
    if (rc) return rc;
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(r->db, "PRAGMA user_version", -1, &s, NULL);
    int64_t version = 0;
    int found = 0;
    if (src != SQLITE_OK)
        rc = db_error(r, src, "cannot read the schema version", err);
    else
        rc = run_integer(r, s, "cannot read the schema version", &version, &found, err);
    sqlite3_finalize(s);
    if (!rc && version == 0)
        rc = exec_fixed(r, schema_sql, "cannot create the registry tables", err);
    else if (!rc && version == 1)
        rc = migrate_from_1(r, err);
    else if (!rc && version > FM_REGISTRY_SCHEMA_VERSION)
        rc = fm_error_set(err, FM_EUNSUPPORTED,
                          "%s: registry schema version %lld is newer than this finmaas supports "
                          "(%d)",
                          r->db_path, (long long)version, FM_REGISTRY_SCHEMA_VERSION);
    else if (!rc && version < 0)
        rc = fm_error_set(err, FM_EFORMAT, "%s: not a finmaas registry (schema version %lld)",
                          r->db_path, (long long)version);
    if (!rc) rc = exec_fixed(r, "COMMIT", "cannot create the registry tables", err);
    if (rc) sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Journal mode, foreign keys, schema: what every connection does before its first query. */
static int setup(fm_registry_t *r, fm_error_t *err) {
    /* The first statement reads the file: garbage in registry.db shows up here as NOTADB. */
    int src = sqlite3_exec(r->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    if ((src & 0xff) == SQLITE_NOTADB || (src & 0xff) == SQLITE_CORRUPT)
        return fm_error_set(err, FM_EFORMAT, "%s: not a finmaas registry database (%s)", r->db_path,
                            sqlite3_errmsg(r->db));
    if (src != SQLITE_OK) return db_error(r, src, "cannot switch to WAL mode", err);
    int rc = exec_fixed(r, "PRAGMA foreign_keys=ON", "cannot enable foreign keys", err);
    return rc ? rc : ensure_schema(r, err);
}

int fm_registry_db_open(fm_registry_t *r, fm_error_t *err) {
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int src = sqlite3_open_v2(r->db_path, &r->db, flags, NULL);
    int rc = src == SQLITE_OK ? FM_OK : db_error(r, src, "cannot open", err);
    if (!rc) sqlite3_busy_timeout(r->db, BUSY_TIMEOUT_MS);
    /*
     * While another process is creating the database or switching it to WAL, the journal mode
     * change can fail with SQLITE_BUSY at once, without SQLite's busy handler waiting: so the
     * setup is retried here, for as long as the busy timeout would have waited.
     */
    double deadline = fm_clock_seconds() + BUSY_TIMEOUT_MS / 1000.0;
    while (!rc && (rc = setup(r, err)) == FM_EBUSY && fm_clock_seconds() < deadline) {
        struct timespec pause = {0, 5 * 1000 * 1000};
        nanosleep(&pause, NULL);
        rc = FM_OK;
    }
    for (int i = 0; !rc && i < FM_REGISTRY_SQL_COUNT; i++) {
        src = sqlite3_prepare_v3(r->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                 &r->stmt[i], NULL);
        if (src != SQLITE_OK) {
            rc = fm_error_set(err, fm_sqlite_status(src), "%s: not a finmaas registry (%s)",
                              r->db_path, sqlite3_errmsg(r->db));
        }
    }
    if (rc) fm_registry_db_close(r);
    return rc;
}

void fm_registry_db_close(fm_registry_t *r) {
    for (int i = 0; i < FM_REGISTRY_SQL_COUNT; i++) {
        sqlite3_finalize(r->stmt[i]);
        r->stmt[i] = NULL;
    }
    sqlite3_close(r->db);
    r->db = NULL;
}

int fm_registry_db_begin(fm_registry_t *r, fm_error_t *err) {
    return run_done(r, statement(r, FM_REGISTRY_SQL_BEGIN), "cannot start a transaction", err);
}

int fm_registry_db_commit(fm_registry_t *r, fm_error_t *err) {
    return run_done(r, statement(r, FM_REGISTRY_SQL_COMMIT), "cannot commit", err);
}

void fm_registry_db_rollback(fm_registry_t *r) {
    if (!sqlite3_get_autocommit(r->db))
        run_done(r, statement(r, FM_REGISTRY_SQL_ROLLBACK), "cannot roll back", NULL);
}

int fm_registry_db_next_version(fm_registry_t *r, const char *name, int64_t *version,
                                fm_error_t *err) {
    sqlite3_stmt *s = statement(r, FM_REGISTRY_SQL_NEXT_VERSION);
    bind_text(s, 1, name);
    int found = 0;
    int rc = run_integer(r, s, "cannot read the latest version", version, &found, err);
    if (!rc && !found) *version = 1;
    return rc;
}

int fm_registry_db_insert_version(fm_registry_t *r, const fm_version_info_t *info,
                                  const char *relative_path, fm_error_t *err) {
    sqlite3_stmt *s = statement(r, FM_REGISTRY_SQL_INSERT_MODEL);
    bind_text(s, 1, info->name);
    bind_text(s, 2, info->created);
    int rc = run_done(r, s, "cannot insert the model", err);
    if (rc) return rc;
    s = statement(r, FM_REGISTRY_SQL_INSERT_VERSION);
    bind_text(s, 1, info->name);
    sqlite3_bind_int64(s, 2, info->version);
    bind_text(s, 3, relative_path);
    bind_text(s, 4, info->sha256);
    sqlite3_bind_int64(s, 5, info->size);
    bind_text(s, 6, info->task);
    bind_text(s, 7, info->family);
    bind_text(s, 8, info->created);
    bind_text(s, 9, info->uploaded_by);
    return run_done(r, s, "cannot insert the version", err);
}

/* Copies a text column into a fixed field, truncating what a hand-edited database might hold. */
static void copy_column(char *dst, size_t size, sqlite3_stmt *s, int col) {
    const unsigned char *text = sqlite3_column_text(s, col);
    snprintf(dst, size, "%s", text ? (const char *)text : "");
}

/*
 * Appends label to the comma-separated list, keeping room for a final ",..." that says labels
 * were left out when they no longer fit. "..." cannot be a label ('.' may not start a name).
 */
static void append_label(fm_version_info_t *v, const char *label, int *truncated) {
    if (*truncated) return;
    size_t used = strlen(v->labels), n = strlen(label), room = sizeof v->labels - 1;
    size_t sep = used ? 1 : 0;
    if (used + sep + n + 4 <= room) {
        snprintf(v->labels + used, sizeof v->labels - used, "%s%s", sep ? "," : "", label);
    } else {
        snprintf(v->labels + used, sizeof v->labels - used, "%s...", sep ? "," : "");
        *truncated = 1;
    }
}

/* Fills v from the current row (all columns but the label). */
static void read_version(fm_registry_t *r, sqlite3_stmt *s, fm_version_info_t *v) {
    memset(v, 0, sizeof *v);
    copy_column(v->name, sizeof v->name, s, 0);
    v->version = sqlite3_column_int64(s, 1);
    const unsigned char *rel = sqlite3_column_text(s, 2);
    snprintf(v->path, sizeof v->path, "%s/%s", r->home, rel ? (const char *)rel : "");
    copy_column(v->sha256, sizeof v->sha256, s, 3);
    v->size = sqlite3_column_int64(s, 4);
    copy_column(v->task, sizeof v->task, s, 5);
    copy_column(v->family, sizeof v->family, s, 6);
    copy_column(v->created, sizeof v->created, s, 7);
    copy_column(v->uploaded_by, sizeof v->uploaded_by, s, 8);
}

/* Runs a version query, folding each version's label rows into one entry. */
static int collect_versions(fm_registry_t *r, sqlite3_stmt *s, fm_version_info_t **out,
                            size_t *count, fm_error_t *err) {
    fm_version_info_t *items = NULL;
    size_t n = 0, cap = 0;
    int truncated = 0, rc = FM_OK, src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        const unsigned char *model = sqlite3_column_text(s, 0);
        int64_t version = sqlite3_column_int64(s, 1);
        int same = n > 0 && items[n - 1].version == version && model &&
                   !strcmp(items[n - 1].name, (const char *)model);
        if (!same) {
            if (n == cap) {
                size_t grown = cap ? cap * 2 : 8;
                fm_version_info_t *p = realloc(items, grown * sizeof *p);
                if (!p) {
                    rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory listing versions",
                                      r->db_path);
                    break;
                }
                items = p;
                cap = grown;
            }
            read_version(r, s, &items[n++]);
            truncated = 0;
        }
        const unsigned char *label = sqlite3_column_text(s, LABEL_COLUMN);
        if (label) append_label(&items[n - 1], (const char *)label, &truncated);
    }
    if (!rc && src != SQLITE_ROW && src != SQLITE_DONE)
        rc = db_error(r, src, "cannot list versions", err);
    sqlite3_reset(s);
    if (rc || n == 0) {
        free(items);
        items = NULL;
        n = 0;
    }
    *out = items;
    *count = n;
    return rc;
}

int fm_registry_db_list(fm_registry_t *r, const char *name, fm_version_info_t **out, size_t *count,
                        fm_error_t *err) {
    sqlite3_stmt *s;
    if (name) {
        s = statement(r, FM_REGISTRY_SQL_LIST_MODEL);
        bind_text(s, 1, name);
    } else {
        s = statement(r, FM_REGISTRY_SQL_LIST_ALL);
    }
    return collect_versions(r, s, out, count, err);
}

int fm_registry_db_get(fm_registry_t *r, const char *name, int64_t version, fm_version_info_t *out,
                       int *found, fm_error_t *err) {
    sqlite3_stmt *s = statement(r, FM_REGISTRY_SQL_GET);
    bind_text(s, 1, name);
    sqlite3_bind_int64(s, 2, version);
    fm_version_info_t *items = NULL;
    size_t n = 0;
    int rc = collect_versions(r, s, &items, &n, err);
    *found = !rc && n == 1;
    if (*found) *out = items[0];
    free(items);
    return rc;
}

int fm_registry_db_models(fm_registry_t *r, char ***names, size_t *count, fm_error_t *err) {
    sqlite3_stmt *s = statement(r, FM_REGISTRY_SQL_MODELS);
    char **list = NULL;
    size_t n = 0, cap = 0;
    int rc = FM_OK, src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        if (n + 1 >= cap) {
            size_t grown = cap ? cap * 2 : 16;
            char **p = realloc(list, grown * sizeof *p);
            if (!p) {
                rc = FM_ENOMEM;
                break;
            }
            list = p;
            cap = grown;
        }
        const unsigned char *text = sqlite3_column_text(s, 0);
        if (!(list[n] = strdup(text ? (const char *)text : ""))) {
            rc = FM_ENOMEM;
            break;
        }
        list[++n] = NULL;
    }
    if (rc == FM_ENOMEM)
        rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory listing models", r->db_path);
    else if (src != SQLITE_DONE)
        rc = db_error(r, src, "cannot list models", err);
    sqlite3_reset(s);
    if (!rc && !list && !(list = calloc(1, sizeof *list)))
        rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory listing models", r->db_path);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            free(list[i]);
        free(list);
        return rc;
    }
    *names = list;
    *count = n;
    return FM_OK;
}

int fm_registry_db_model_exists(fm_registry_t *r, const char *name, int *exists, fm_error_t *err) {
    sqlite3_stmt *s = statement(r, FM_REGISTRY_SQL_MODEL_EXISTS);
    bind_text(s, 1, name);
    int64_t one = 0;
    return run_integer(r, s, "cannot look up the model", &one, exists, err);
}

int fm_registry_db_set_label(fm_registry_t *r, const char *name, const char *label, int64_t version,
                             const char *updated, fm_error_t *err) {
    sqlite3_stmt *s = statement(r, FM_REGISTRY_SQL_SET_LABEL);
    bind_text(s, 1, name);
    bind_text(s, 2, label);
    sqlite3_bind_int64(s, 3, version);
    bind_text(s, 4, updated);
    return run_done(r, s, "cannot set the label", err);
}

int fm_registry_db_remove_label(fm_registry_t *r, const char *name, const char *label, int *removed,
                                fm_error_t *err) {
    sqlite3_stmt *s = statement(r, FM_REGISTRY_SQL_REMOVE_LABEL);
    bind_text(s, 1, name);
    bind_text(s, 2, label);
    int rc = run_done(r, s, "cannot remove the label", err);
    *removed = !rc && sqlite3_changes(r->db) > 0;
    return rc;
}

int fm_registry_db_label_version(fm_registry_t *r, const char *name, const char *label,
                                 int64_t *version, int *found, fm_error_t *err) {
    sqlite3_stmt *s = statement(r, FM_REGISTRY_SQL_LABEL_VERSION);
    bind_text(s, 1, name);
    bind_text(s, 2, label);
    return run_integer(r, s, "cannot read the label", version, found, err);
}

int fm_registry_db_newest(fm_registry_t *r, const char *name, int64_t *version, int *found,
                          fm_error_t *err) {
    sqlite3_stmt *s = statement(r, FM_REGISTRY_SQL_NEWEST);
    bind_text(s, 1, name);
    return run_integer(r, s, "cannot read the newest version", version, found, err);
}
