/*
 * Internals of the registry shared by its four files: registry.c (the public calls, name checks,
 * the order of an add), db.c (the SQLite database: schema, prepared statements, queries),
 * store.c (the home directory and the model files in it) and encrypted.c (reading a version's
 * plaintext, rotating the master key). Nothing here is visible outside src/registry.
 *
 * Every db.c function expects the caller to hold registry->lock: one SQLite connection is shared
 * by every thread using the handle, and it is opened in multi-thread mode (SQLITE_OPEN_NOMUTEX),
 * so the registry's own mutex is what keeps two threads off it at once.
 */
#ifndef FM_REGISTRY_INTERNAL_H
#define FM_REGISTRY_INTERNAL_H

#include "registry/registry.h"

#include "model/safetensors.h"

#include <pthread.h>
#include <sqlite3.h>

/* The prepared statements a registry keeps for its lifetime (db.c lists their SQL). */
typedef enum {
    FM_REGISTRY_SQL_BEGIN,
    FM_REGISTRY_SQL_COMMIT,
    FM_REGISTRY_SQL_ROLLBACK,
    FM_REGISTRY_SQL_NEXT_VERSION,
    FM_REGISTRY_SQL_INSERT_MODEL,
    FM_REGISTRY_SQL_INSERT_VERSION,
    FM_REGISTRY_SQL_LIST_ALL,
    FM_REGISTRY_SQL_LIST_MODEL,
    FM_REGISTRY_SQL_GET,
    FM_REGISTRY_SQL_MODELS,
    FM_REGISTRY_SQL_MODEL_EXISTS,
    FM_REGISTRY_SQL_SET_LABEL,
    FM_REGISTRY_SQL_REMOVE_LABEL,
    FM_REGISTRY_SQL_LABEL_VERSION,
    FM_REGISTRY_SQL_NEWEST,
    FM_REGISTRY_SQL_COUNT
} fm_registry_sql_t;

struct fm_registry {
    pthread_mutex_t lock; /* serialises every use of db and stmt, and of master */
    char *home;           /* absolute path, no trailing slash */
    char *db_path;        /* <home>/registry.db */
    sqlite3 *db;
    sqlite3_stmt *stmt[FM_REGISTRY_SQL_COUNT];
    fm_master_key_t master; /* valid when has_master; wiped when cleared and at close */
    int has_master;
};

/* The schema version this code writes; a database with a newer one is refused, an older one is
 * migrated (1 -> 2: versions.uploaded_by). */
#define FM_REGISTRY_SCHEMA_VERSION 2

/* The largest model file read back: the largest model, plus the encryption's overhead. */
#define FM_REGISTRY_MAX_FILE (FM_SAFETENSORS_MAX_FILE + FM_SAFETENSORS_MAX_FILE / 65536 * 21 + 64)

/* ---- registry.c ---- */

/* Copies the master key under the lock into *out (wipe it after use); 1 when one is set. */
int fm_registry_master_copy(fm_registry_t *r, fm_master_key_t *out);

/* Longest absolute home accepted, so that every model path fits fm_version_info_t.path with room
 * for the atomic writer's temporary suffix. */
#define FM_REGISTRY_HOME_MAX 3800

/* ---- store.c: the home directory and the model files ---- */

/*
 * Creates home (and its parents) and home/models with mode 0750 where absent, and returns the
 * absolute, symlink-free path of home in *abs (caller frees). Errors name the path.
 */
int fm_registry_store_prepare_home(const char *home, char **abs, fm_error_t *err);

/* Writes "models/<name>/<version>.fmm" (the path relative to home, as stored) into out. */
void fm_registry_store_relative_path(char *out, size_t size, const char *name, int64_t version);

/*
 * Writes data[0..len) atomically to <home>/<relative>, creating the model's directory (0750)
 * first. *created_dir is set to 1 when this call created that directory, so a failed add can
 * remove it again. Errors name the path.
 */
int fm_registry_store_write(const char *home, const char *relative, const void *data, size_t len,
                            int *created_dir, fm_error_t *err);

/* Removes the file <home>/<relative> and, when remove_dir, its (then empty) directory. Best
 * effort: used only to undo a write whose database row was not committed. */
void fm_registry_store_discard(const char *home, const char *relative, int remove_dir);

/* The lowercase hex SHA-256 of data (libsodium crypto_hash_sha256). */
void fm_registry_store_sha256_hex(const void *data, size_t len, char hex[65]);

/* ---- db.c: the SQLite database (caller holds registry->lock) ---- */

/* Opens registry->db_path, sets WAL mode, foreign keys and the busy timeout, creates or checks
 * the schema and prepares the statements. On failure everything it opened is closed again. */
int fm_registry_db_open(fm_registry_t *r, fm_error_t *err);
/* Finalises the statements and closes the connection. Safe on a partly opened registry. */
void fm_registry_db_close(fm_registry_t *r);

/* BEGIN IMMEDIATE (waits up to the busy timeout for other writers), COMMIT, ROLLBACK. Rollback
 * never fails: it is the path out of an error. */
int fm_registry_db_begin(fm_registry_t *r, fm_error_t *err);
int fm_registry_db_commit(fm_registry_t *r, fm_error_t *err);
void fm_registry_db_rollback(fm_registry_t *r);

/* max(version) + 1 over the model's rows (1 for a new model). Inside a write transaction. */
int fm_registry_db_next_version(fm_registry_t *r, const char *name, int64_t *version,
                                fm_error_t *err);
/* Inserts the model row when absent and the version row (its path relative to home). */
int fm_registry_db_insert_version(fm_registry_t *r, const fm_version_info_t *info,
                                  const char *relative_path, fm_error_t *err);

/* Versions of name (NULL: every model), with their labels, ordered by name, version. The info's
 * path is made absolute with registry->home. *out is NULL when there are none. */
int fm_registry_db_list(fm_registry_t *r, const char *name, fm_version_info_t **out, size_t *count,
                        fm_error_t *err);
/* One version; *found is 0 when there is no such row (not an error here). */
int fm_registry_db_get(fm_registry_t *r, const char *name, int64_t version, fm_version_info_t *out,
                       int *found, fm_error_t *err);
/* The sorted model names, as fm_registry_models returns them. */
int fm_registry_db_models(fm_registry_t *r, char ***names, size_t *count, fm_error_t *err);
/* *exists is 1 when the model has a row. */
int fm_registry_db_model_exists(fm_registry_t *r, const char *name, int *exists, fm_error_t *err);

/* Points label at version (inserting or moving it). The version must exist. */
int fm_registry_db_set_label(fm_registry_t *r, const char *name, const char *label, int64_t version,
                             const char *updated, fm_error_t *err);
/* Deletes a label; *removed is 0 when there was none. */
int fm_registry_db_remove_label(fm_registry_t *r, const char *name, const char *label, int *removed,
                                fm_error_t *err);
/* The version a label points at; *found 0 when the label does not exist. */
int fm_registry_db_label_version(fm_registry_t *r, const char *name, const char *label,
                                 int64_t *version, int *found, fm_error_t *err);
/* The newest version of name; *found 0 when the model has none. */
int fm_registry_db_newest(fm_registry_t *r, const char *name, int64_t *version, int *found,
                          fm_error_t *err);

#endif
