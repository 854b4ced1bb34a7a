/*
 * API keys (keys.h): the keystore, <home>/keys.db, and the in-memory keyring that authenticates
 * every HTTP request.
 *
 * A token is "fmk_" + base64url (no padding) of 32 bytes from libsodium's randombytes, so 47
 * characters. Only its BLAKE2b-256 hash (crypto_generichash over the whole token text) is stored;
 * the key's public id is "k_" + 12 hex characters of separate random bytes, so the id reveals
 * nothing about the token. The database is created 0600 before SQLite writes anything into it,
 * and SQLite gives its -wal and -shm files the mode of the database file (they are chmod'ed as
 * well, in case the file was created looser by hand).
 *
 * Schema (PRAGMA user_version 1, PRAGMA application_id "FMKY" so that another SQLite file put in
 * its place is recognised as foreign): keys(seq, id, name, hash, role, scope, created,
 * created_by, revoked, revoked_at), with names unique among active keys; meta(name, value) with
 * the row 'generation', increased in the same transaction as every create and revoke, so that a
 * server polling it sees another process's change and reloads its keyring.
 *
 * The keyring is an open-addressing (linear probing, load factor at most 1/2) hash table keyed by
 * the 32-byte token hash, its first 8 bytes serving as the hash value; a candidate is accepted
 * only when all 32 bytes match under sodium_memcmp. A reload builds a complete new table outside
 * the lock and swaps it in under the write lock; lookups hold the read lock only for the probe and
 * the copy of the principal. The lock prefers writers, so a stream of requests cannot starve a
 * reload.
 */
#include "security/keys.h"
#include "security/sqlite_status.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_PREFIX       "fmk_"
#define TOKEN_PREFIX_LEN   4
#define TOKEN_SECRET_BYTES 32
#define TOKEN_BODY_LEN     43 /* base64url of 32 bytes without padding */
#define TOKEN_LEN          (TOKEN_PREFIX_LEN + TOKEN_BODY_LEN)
#define HASH_BYTES         32
#define ID_PREFIX          "k_"
#define ID_RANDOM_BYTES    6
#define ID_LEN             (2 + 2 * ID_RANDOM_BYTES)
#define MODEL_NAME_MAX     64
#define SCHEMA_VERSION     1
#define APPLICATION_ID     1179470681 /* "FMKY" as a big-endian 32-bit integer */
#define BUSY_TIMEOUT_MS    5000
#define ID_ATTEMPTS        8 /* fresh ids tried when one is already taken (48 random bits) */
#define DIR_MODE           0750
#define FILE_MODE          0600
#define DENIED_MESSAGE     "invalid or revoked API key"

_Static_assert(TOKEN_LEN < FM_KEY_TOKEN_MAX, "a token and its NUL fit FM_KEY_TOKEN_MAX");
_Static_assert(ID_LEN < FM_KEY_ID_MAX, "an id and its NUL fit FM_KEY_ID_MAX");
_Static_assert(HASH_BYTES == crypto_generichash_BYTES, "BLAKE2b-256");

static const char *const role_names[] = {
    [FM_ROLE_NONE] = "none",         [FM_ROLE_ADMIN] = "admin",
    [FM_ROLE_MODELER] = "modeler",   [FM_ROLE_VALIDATOR] = "validator",
    [FM_ROLE_CONSUMER] = "consumer", [FM_ROLE_AUDITOR] = "auditor",
};

const char *fm_role_name(fm_role_t role) {
    if ((unsigned)role < sizeof role_names / sizeof role_names[0]) return role_names[role];
    return "unknown";
}

int fm_role_parse(const char *text, fm_role_t *out) {
    if (!text) return FM_EINVAL;
    for (int r = FM_ROLE_ADMIN; r <= FM_ROLE_AUDITOR; r++) {
        if (!strcmp(text, role_names[r])) {
            *out = (fm_role_t)r;
            return FM_OK;
        }
    }
    return FM_EINVAL;
}

/* ---- names, scopes, tokens: shapes ---- */

/* The model-name rule of the registry (fm_registry_valid_name), over n bytes of text. Kept here
 * because the security library sits below the registry and must not link it. */
static int valid_model_name(const char *text, size_t n) {
    if (n == 0 || n > MODEL_NAME_MAX || text[0] == '.' || text[0] == '-') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok) return 0;
    }
    return 1;
}

static int is_base64url(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* "fmk_" + 43 base64url characters, nothing else: checked before any hashing. The loop has no
 * early exit, so the compiler can run it branch-free; it runs on every request. */
static int token_shape_ok(const char *token, size_t n) {
    if (n != TOKEN_LEN || memcmp(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0) return 0;
    unsigned bad = 0;
    for (size_t i = TOKEN_PREFIX_LEN; i < TOKEN_LEN; i++) {
        unsigned c = (unsigned char)token[i];
        unsigned letter = (c | 0x20u) - 'a' < 26u, digit = c - '0' < 10u;
        bad |= !(letter | digit | (c == '_') | (c == '-'));
    }
    return !bad;
}

/* "k_" + 12 lowercase hex digits: what fm_keystore_create hands out as ids. */
static int is_id_shape(const char *text) {
    if (strlen(text) != ID_LEN || memcmp(text, ID_PREFIX, 2) != 0) return 0;
    for (size_t i = 2; i < ID_LEN; i++) {
        char c = text[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    }
    return 1;
}

/*
 * Writes n bytes of text for an error message, escaping bytes that could break a log line and
 * cutting long texts. Text that contains the token prefix is withheld entirely: a token pasted in
 * the wrong place must not end up in a message.
 */
static void quote_text(char *out, size_t size, const char *text, size_t n) {
    if (memmem(text, n, TOKEN_PREFIX, TOKEN_PREFIX_LEN)) {
        snprintf(out, size, "(withheld: it contains the API token prefix '%s')", TOKEN_PREFIX);
        return;
    }
    size_t k = 0, i = 0;
    out[0] = '\0';
    for (; i < n && k + 8 < size; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[k++] = (char)c;
        else
            k += (size_t)snprintf(out + k, size - k, "\\x%02x", c);
        out[k] = '\0';
    }
    if (i < n) snprintf(out + k, size - k, "...");
}

int fm_key_check_name(const char *name, fm_error_t *err) {
    if (!name) return fm_error_set(err, FM_EINVAL, "key name is missing");
    size_t n = strlen(name);
    char shown[3 * FM_KEY_NAME_MAX + 16];
    quote_text(shown, sizeof shown, name, n);
    if (memmem(name, n, TOKEN_PREFIX, TOKEN_PREFIX_LEN))
        return fm_error_set(err, FM_EINVAL, "invalid key name %s: names may not contain '%s'",
                            shown, TOKEN_PREFIX);
    if (is_id_shape(name))
        return fm_error_set(err, FM_EINVAL,
                            "invalid key name '%s': names of the form k_ + 12 hex digits are key "
                            "ids",
                            shown);
    if (!valid_model_name(name, n))
        return fm_error_set(err, FM_EINVAL,
                            "invalid key name '%s': use 1 to %d characters from A-Z a-z 0-9 _ . -, "
                            "not starting with '.' or '-'",
                            shown, FM_KEY_NAME_MAX);
    return FM_OK;
}

int fm_key_check_scope(const char *scope, fm_error_t *err) {
    if (!scope || !*scope) return FM_OK;
    size_t len = strlen(scope);
    if (len >= FM_KEY_SCOPE_MAX)
        return fm_error_set(err, FM_EINVAL, "scope is %zu characters long, more than %d", len,
                            FM_KEY_SCOPE_MAX - 1);
    for (const char *p = scope;;) {
        size_t n = strcspn(p, ",");
        if (n == 0)
            return fm_error_set(err, FM_EINVAL,
                                "scope has an empty model name (a leading, trailing or doubled "
                                "comma)");
        if (token_shape_ok(p, n))
            return fm_error_set(err, FM_EINVAL,
                                "scope holds an API token (withheld) where a model name belongs");
        if (!valid_model_name(p, n)) {
            char shown[3 * MODEL_NAME_MAX + 16];
            quote_text(shown, sizeof shown, p, n);
            return fm_error_set(err, FM_EINVAL,
                                "invalid model name '%s' in scope: use 1 to %d characters from "
                                "A-Z a-z 0-9 _ . -, not starting with '.' or '-'",
                                shown, MODEL_NAME_MAX);
        }
        if (!p[n]) return FM_OK;
        p += n + 1;
    }
}

/* created_by: "cli" or a key id; any short text of id characters is accepted. */
static int check_creator(const char *creator, fm_error_t *err) {
    size_t n = strlen(creator);
    int ok = n > 0 && n < FM_KEY_ID_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = is_base64url(creator[i]);
    if (ok) return FM_OK;
    char shown[3 * FM_KEY_ID_MAX + 16];
    quote_text(shown, sizeof shown, creator, n);
    return fm_error_set(err, FM_EINVAL,
                        "invalid creator '%s': expected a key id or 'cli' (1 to %d characters "
                        "from A-Z a-z 0-9 _ -)",
                        shown, FM_KEY_ID_MAX - 1);
}

int fm_principal_in_scope(const fm_principal_t *who, const char *model) {
    if (!who || !model) return 0;
    if (!who->scope[0]) return 1;
    size_t m = strlen(model);
    for (const char *p = who->scope;;) {
        size_t n = strcspn(p, ",");
        if (n == m && !memcmp(p, model, m)) return 1;
        if (!p[n]) return 0;
        p += n + 1;
    }
}

/* ---- the keystore: keys.db ---- */

typedef enum {
    SQL_BEGIN_WRITE,
    SQL_BEGIN_READ,
    SQL_COMMIT,
    SQL_ROLLBACK,
    SQL_GENERATION,
    SQL_BUMP,
    SQL_ID_TAKEN,
    SQL_NAME_ACTIVE,
    SQL_INSERT,
    SQL_LIST,
    SQL_ACTIVE,
    SQL_REVOKE,
    SQL_FIND,
    SQL_COUNT
} keys_sql_t;

static const char schema_sql[] =
    "CREATE TABLE keys (\n"
    "    seq INTEGER PRIMARY KEY,\n"
    "    id TEXT NOT NULL UNIQUE,\n"
    "    name TEXT NOT NULL,\n"
    "    hash BLOB NOT NULL UNIQUE CHECK (typeof(hash) = 'blob' AND length(hash) = 32),\n"
    "    role TEXT NOT NULL\n"
    "        CHECK (role IN ('admin', 'modeler', 'validator', 'consumer', 'auditor')),\n"
    "    scope TEXT NOT NULL,\n"
    "    created TEXT NOT NULL,\n"
    "    created_by TEXT NOT NULL,\n"
    "    revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),\n"
    "    revoked_at TEXT\n"
    ");\n"
    "CREATE UNIQUE INDEX keys_active_name ON keys(name) WHERE revoked = 0;\n"
    "CREATE TABLE meta (\n"
    "    name TEXT PRIMARY KEY NOT NULL,\n"
    "    value INTEGER NOT NULL\n"
    ");\n"
    "INSERT INTO meta(name, value) VALUES ('generation', 0);\n"
    "PRAGMA application_id = 1179470681;\n"
    "PRAGMA user_version = 1;\n";

static const char *const statement_sql[SQL_COUNT] = {
    [SQL_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [SQL_BEGIN_READ] = "BEGIN",
    [SQL_COMMIT] = "COMMIT",
    [SQL_ROLLBACK] = "ROLLBACK",
    [SQL_GENERATION] = "SELECT value FROM meta WHERE name = 'generation'",
    [SQL_BUMP] = "INSERT INTO meta(name, value) VALUES ('generation', 1) "
                 "ON CONFLICT(name) DO UPDATE SET value = value + 1",
    [SQL_ID_TAKEN] = "SELECT 1 FROM keys WHERE id = ?1",
    [SQL_NAME_ACTIVE] = "SELECT 1 FROM keys WHERE name = ?1 AND revoked = 0",
    [SQL_INSERT] = "INSERT INTO keys(id, name, hash, role, scope, created, created_by) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [SQL_LIST] = "SELECT id, name, role, scope, created, created_by, revoked FROM keys "
                 "ORDER BY seq DESC",
    [SQL_ACTIVE] = "SELECT id, name, role, scope, hash FROM keys WHERE revoked = 0",
    [SQL_REVOKE] = "UPDATE keys SET revoked = 1, revoked_at = ?2 "
                   "WHERE revoked = 0 AND (id = ?1 OR name = ?1)",
    [SQL_FIND] = "SELECT 1 FROM keys WHERE id = ?1 OR name = ?1",
};

struct fm_keystore {
    pthread_mutex_t lock; /* serialises every use of db and stmt */
    char *path;           /* <home>/keys.db */
    sqlite3 *db;
    sqlite3_stmt *stmt[SQL_COUNT];
    int64_t generation; /* last value read; returned again when a read fails */
};

/* Records a failed SQLite call as "<keys.db path>: <what>: <sqlite's message>". SQLite's
 * messages never quote bound values, so no token or hash can reach the message. */
static int db_error(fm_keystore_t *ks, int sqlite_rc, const char *what, fm_error_t *err) {
    const char *detail = ks->db ? sqlite3_errmsg(ks->db) : sqlite3_errstr(sqlite_rc);
    return fm_error_set(err, fm_sqlite_status(sqlite_rc), "%s: %s: %s", ks->path, what, detail);
}

/* The statement, reset and with its bindings cleared, ready to bind. */
static sqlite3_stmt *statement(fm_keystore_t *ks, keys_sql_t which) {
    sqlite3_stmt *s = ks->stmt[which];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static void bind_text(sqlite3_stmt *s, int index, const char *text) {
    sqlite3_bind_text(s, index, text, -1, SQLITE_STATIC);
}

/* Runs a statement whose rows are not needed. */
static int run_done(fm_keystore_t *ks, sqlite3_stmt *s, const char *what, fm_error_t *err) {
    int rc = sqlite3_step(s);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(s);
    int status = rc == SQLITE_DONE ? FM_OK : db_error(ks, rc, what, err);
    sqlite3_reset(s);
    return status;
}

/* Runs a one-row one-integer query; *found is 0 when it returns no row or NULL. */
static int run_integer(fm_keystore_t *ks, sqlite3_stmt *s, const char *what, int64_t *value,
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
        status = db_error(ks, rc, what, err);
    }
    sqlite3_reset(s);
    return status;
}

/* A fixed SQL text without parameters (pragmas, the schema script). */
static int exec_fixed(fm_keystore_t *ks, const char *sql, const char *what, fm_error_t *err) {
    int rc = sqlite3_exec(ks->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? FM_OK : db_error(ks, rc, what, err);
}

/* An integer pragma or one-value query outside the prepared set (used once, at open). */
static int query_integer(fm_keystore_t *ks, const char *sql, int64_t *value, fm_error_t *err) {
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(ks->db, sql, -1, &s, NULL);
    int found = 0, rc;
    *value = 0;
    if (src != SQLITE_OK)
        rc = db_error(ks, src, "cannot read the schema", err);
    else
        rc = run_integer(ks, s, "cannot read the schema", value, &found, err);
    sqlite3_finalize(s);
    return rc;
}

/* mkdir that accepts an existing directory; errors name the path. */
static int make_dir(const char *path, fm_error_t *err) {
    if (mkdir(path, DIR_MODE) == 0) return FM_OK;
    int e = errno;
    struct stat st;
    if (e == EEXIST && stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return FM_OK;
        return fm_error_set(err, FM_EIO, "%s: exists and is not a directory", path);
    }
    return fm_error_set(err, FM_EIO, "%s: cannot create directory: %s", path, strerror(e));
}

/* mkdir -p: each parent of path, then path itself. */
static int make_dirs(const char *path, fm_error_t *err) {
    char *copy = strdup(path);
    if (!copy) return fm_error_set(err, FM_ENOMEM, "%s: out of memory", path);
    int rc = FM_OK;
    for (char *p = copy + 1; *p && !rc; p++) {
        if (*p != '/') continue;
        *p = '\0';
        rc = make_dir(copy, err);
        *p = '/';
    }
    if (!rc) rc = make_dir(copy, err);
    free(copy);
    return rc;
}

/*
 * Creates keys.db empty with mode 0600 before SQLite opens it (SQLite would create it with the
 * process umask's 0644), or narrows an existing one to 0600. A symbolic link is refused, so the
 * keys cannot be redirected into a file someone else can read.
 */
static int prepare_file(const char *path, fm_error_t *err) {
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, FILE_MODE);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            return fm_error_set(err, FM_EDENIED, "%s: is a symbolic link; refusing to use it",
                                path);
        return fm_error_set(err, e == EACCES || e == EPERM ? FM_EDENIED : FM_EIO,
                            "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    int rc = FM_OK;
    if (fstat(fd, &st) != 0)
        rc = fm_error_set(err, FM_EIO, "%s: cannot stat: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = fm_error_set(err, FM_EIO, "%s: not a regular file", path);
    else if ((st.st_mode & 07777) != FILE_MODE && fchmod(fd, FILE_MODE) != 0)
        rc = fm_error_set(err, FM_EDENIED, "%s: cannot set mode 0600: %s", path, strerror(errno));
    close(fd);
    return rc;
}

/* Narrows keys.db-wal and keys.db-shm to 0600 where they exist. Best effort: SQLite already
 * creates them with the database file's mode. */
static void protect_sidecars(const fm_keystore_t *ks) {
    static const char *const suffixes[] = {"-wal", "-shm"};
    char path[4096];
    struct stat st;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        int n = snprintf(path, sizeof path, "%s%s", ks->path, suffixes[i]);
        if (n < 0 || (size_t)n >= sizeof path) continue;
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) != FILE_MODE)
            chmod(path, FILE_MODE);
    }
}

/* Creates the schema in a fresh database, or checks that an existing one is a keys database of a
 * version this code can use. Inside a write transaction, so two processes creating it at once do
 * not race. */
static int ensure_schema(fm_keystore_t *ks, fm_error_t *err) {
    int rc = exec_fixed(ks, "BEGIN IMMEDIATE", "cannot start a transaction", err);
    if (rc) return rc;
    int64_t version = 0, app = 0, tables = 0;
    rc = query_integer(ks, "PRAGMA user_version", &version, err);
    if (!rc) rc = query_integer(ks, "PRAGMA application_id", &app, err);
    if (!rc) rc = query_integer(ks, "SELECT count(*) FROM sqlite_master", &tables, err);
    if (!rc && version == 0 && app == 0 && tables == 0)
        rc = exec_fixed(ks, schema_sql, "cannot create the keys tables", err);
    else if (!rc && (app != APPLICATION_ID || version <= 0))
        rc = fm_error_set(err, FM_EFORMAT, "%s: not a finmaas keys database", ks->path);
    else if (!rc && version > SCHEMA_VERSION)
        rc = fm_error_set(err, FM_EUNSUPPORTED,
                          "%s: keys schema version %lld is newer than this finmaas supports (%d)",
                          ks->path, (long long)version, SCHEMA_VERSION);
    if (!rc) rc = exec_fixed(ks, "COMMIT", "cannot create the keys tables", err);
    if (rc) sqlite3_exec(ks->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Journal mode, durability, schema: what every connection does before its first query. */
static int setup(fm_keystore_t *ks, fm_error_t *err) {
    /* The first statement reads the file: garbage in keys.db shows up here as NOTADB. */
    int src = sqlite3_exec(ks->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    if ((src & 0xff) == SQLITE_NOTADB || (src & 0xff) == SQLITE_CORRUPT)
        return fm_error_set(err, FM_EFORMAT, "%s: not a finmaas keys database (%s)", ks->path,
                            sqlite3_errmsg(ks->db));
    if (src != SQLITE_OK) return db_error(ks, src, "cannot switch to WAL mode", err);
    /* A revocation must survive a power cut: FULL syncs the WAL at every commit. */
    int rc = exec_fixed(ks, "PRAGMA synchronous=FULL", "cannot set synchronous mode", err);
    return rc ? rc : ensure_schema(ks, err);
}

static int db_open(fm_keystore_t *ks, fm_error_t *err) {
    int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
    int src = sqlite3_open_v2(ks->path, &ks->db, flags, NULL);
    int rc = src == SQLITE_OK ? FM_OK : db_error(ks, src, "cannot open", err);
    if (!rc) sqlite3_busy_timeout(ks->db, BUSY_TIMEOUT_MS);
    /*
     * While another process is creating the database or switching it to WAL, the journal mode
     * change can fail with SQLITE_BUSY at once, without SQLite's busy handler waiting: so the
     * setup is retried here, for as long as the busy timeout would have waited.
     */
    double deadline = fm_clock_seconds() + BUSY_TIMEOUT_MS / 1000.0;
    while (!rc && (rc = setup(ks, err)) == FM_EBUSY && fm_clock_seconds() < deadline) {
        struct timespec pause = {0, 5 * 1000 * 1000};
        nanosleep(&pause, NULL);
        rc = FM_OK;
    }
    for (int i = 0; !rc && i < SQL_COUNT; i++) {
        src = sqlite3_prepare_v3(ks->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                 &ks->stmt[i], NULL);
        if (src != SQLITE_OK)
            rc = fm_error_set(err, fm_sqlite_status(src), "%s: not a finmaas keys database (%s)",
                              ks->path, sqlite3_errmsg(ks->db));
    }
    return rc;
}

int fm_keystore_open(const char *home, fm_keystore_t **out, fm_error_t *err) {
    *out = NULL;
    if (!home || !*home) return fm_error_set(err, FM_EINVAL, "keys home directory is empty");
    if (fm_digest_library_init() != 0)
        return fm_error_set(err, FM_EUNSUPPORTED, "cannot initialise libsodium");
    fm_keystore_t *ks = calloc(1, sizeof *ks);
    if (!ks) return fm_error_set(err, FM_ENOMEM, "%s: out of memory", home);
    if (pthread_mutex_init(&ks->lock, NULL) != 0) {
        free(ks);
        return fm_error_set(err, FM_ENOMEM, "%s: cannot create the keystore lock", home);
    }
    size_t n = strlen(home) + sizeof "/keys.db";
    int rc = FM_OK;
    if (!(ks->path = malloc(n))) rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", home);
    if (!rc) {
        snprintf(ks->path, n, "%s/keys.db", home);
        rc = make_dirs(home, err);
    }
    if (!rc) rc = prepare_file(ks->path, err);
    if (!rc) rc = db_open(ks, err);
    if (!rc) {
        protect_sidecars(ks);
        int found = 0;
        rc = run_integer(ks, statement(ks, SQL_GENERATION), "cannot read the generation",
                         &ks->generation, &found, err);
    }
    if (rc) {
        fm_keystore_close(ks);
        return rc;
    }
    *out = ks;
    return FM_OK;
}

void fm_keystore_close(fm_keystore_t *ks) {
    if (!ks) return;
    for (int i = 0; i < SQL_COUNT; i++)
        sqlite3_finalize(ks->stmt[i]);
    sqlite3_close(ks->db);
    pthread_mutex_destroy(&ks->lock);
    free(ks->path);
    free(ks);
}

static void rollback(fm_keystore_t *ks) {
    if (!sqlite3_get_autocommit(ks->db))
        run_done(ks, statement(ks, SQL_ROLLBACK), "cannot roll back", NULL);
}

/* A fresh id not yet in the table (inside the write transaction). */
static int new_id(fm_keystore_t *ks, char id[FM_KEY_ID_MAX], fm_error_t *err) {
    for (int attempt = 0; attempt < ID_ATTEMPTS; attempt++) {
        unsigned char bytes[ID_RANDOM_BYTES];
        randombytes_buf(bytes, sizeof bytes);
        memcpy(id, ID_PREFIX, 2);
        sodium_bin2hex(id + 2, FM_KEY_ID_MAX - 2, bytes, sizeof bytes);
        sqlite3_stmt *s = statement(ks, SQL_ID_TAKEN);
        bind_text(s, 1, id);
        int64_t one = 0;
        int taken = 0;
        int rc = run_integer(ks, s, "cannot look up a key id", &one, &taken, err);
        if (rc || !taken) return rc;
    }
    return fm_error_set(err, FM_EEXIST, "%s: no free key id after %d attempts", ks->path,
                        ID_ATTEMPTS);
}

/* A new token and its hash. The raw secret is wiped before returning. */
static void new_token(char token[FM_KEY_TOKEN_MAX], unsigned char hash[HASH_BYTES]) {
    unsigned char secret[TOKEN_SECRET_BYTES];
    randombytes_buf(secret, sizeof secret);
    memcpy(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
    sodium_bin2base64(token + TOKEN_PREFIX_LEN, FM_KEY_TOKEN_MAX - TOKEN_PREFIX_LEN, secret,
                      sizeof secret, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(secret, sizeof secret);
    crypto_generichash(hash, HASH_BYTES, (const unsigned char *)token, TOKEN_LEN, NULL, 0);
}

/* The insert of a created key, inside the write transaction (caller holds ks->lock). */
static int insert_key(fm_keystore_t *ks, const fm_key_info_t *info,
                      const unsigned char hash[HASH_BYTES], fm_error_t *err) {
    sqlite3_stmt *s = statement(ks, SQL_INSERT);
    bind_text(s, 1, info->id);
    bind_text(s, 2, info->name);
    sqlite3_bind_blob(s, 3, hash, HASH_BYTES, SQLITE_STATIC);
    bind_text(s, 4, fm_role_name(info->role));
    bind_text(s, 5, info->scope);
    bind_text(s, 6, info->created);
    bind_text(s, 7, info->created_by);
    int rc = run_done(ks, s, "cannot insert the key", err);
    if (!rc) rc = run_done(ks, statement(ks, SQL_BUMP), "cannot update the generation", err);
    return rc;
}

int fm_keystore_create(fm_keystore_t *ks, fm_role_t role, const char *scope, const char *name,
                       const char *created_by, char token[FM_KEY_TOKEN_MAX], fm_key_info_t *info,
                       fm_error_t *err) {
    token[0] = '\0';
    if (role < FM_ROLE_ADMIN || role > FM_ROLE_AUDITOR)
        return fm_error_set(err, FM_EINVAL,
                            "invalid role %d: expected admin, modeler, validator, consumer or "
                            "auditor",
                            (int)role);
    if (!scope) scope = "";
    if (!created_by || !*created_by) created_by = "cli";
    int rc = fm_key_check_scope(scope, err);
    if (!rc && name) rc = fm_key_check_name(name, err);
    if (!rc) rc = check_creator(created_by, err);
    if (rc) return rc;

    fm_key_info_t rec;
    memset(&rec, 0, sizeof rec);
    rec.role = role;
    snprintf(rec.scope, sizeof rec.scope, "%s", scope);
    snprintf(rec.created_by, sizeof rec.created_by, "%s", created_by);
    fm_clock_utc_iso8601(rec.created, sizeof rec.created);
    unsigned char hash[HASH_BYTES];

    pthread_mutex_lock(&ks->lock);
    rc = run_done(ks, statement(ks, SQL_BEGIN_WRITE), "cannot start a transaction", err);
    if (!rc) rc = new_id(ks, rec.id, err);
    if (!rc && name) {
        sqlite3_stmt *s = statement(ks, SQL_NAME_ACTIVE);
        bind_text(s, 1, name);
        int64_t one = 0;
        int taken = 0;
        rc = run_integer(ks, s, "cannot look up the key name", &one, &taken, err);
        if (!rc && taken)
            rc = fm_error_set(err, FM_EEXIST,
                              "an active key named '%s' already exists (revoke it first or "
                              "choose another name)",
                              name);
    }
    if (!rc) {
        snprintf(rec.name, sizeof rec.name, "%s", name ? name : rec.id);
        new_token(token, hash);
        rc = insert_key(ks, &rec, hash, err);
    }
    if (!rc) rc = run_done(ks, statement(ks, SQL_COMMIT), "cannot commit the new key", err);
    if (rc) rollback(ks);
    pthread_mutex_unlock(&ks->lock);
    sodium_memzero(hash, sizeof hash);
    if (rc) {
        sodium_memzero(token, FM_KEY_TOKEN_MAX);
        return rc;
    }
    protect_sidecars(ks);
    if (info) *info = rec;
    return FM_OK;
}

/* Copies a text column into a fixed field, truncating what a hand-edited database might hold. */
static void copy_column(char *dst, size_t size, sqlite3_stmt *s, int col) {
    const unsigned char *text = sqlite3_column_text(s, col);
    snprintf(dst, size, "%s", text ? (const char *)text : "");
}

int fm_keystore_list(fm_keystore_t *ks, fm_key_info_t **out, size_t *count, fm_error_t *err) {
    *out = NULL;
    *count = 0;
    fm_key_info_t *items = NULL;
    size_t n = 0, cap = 0;
    int rc = FM_OK, src;
    pthread_mutex_lock(&ks->lock);
    sqlite3_stmt *s = statement(ks, SQL_LIST);
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            size_t grown = cap ? cap * 2 : 16;
            fm_key_info_t *p = realloc(items, grown * sizeof *p);
            if (!p) {
                rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory listing keys", ks->path);
                break;
            }
            items = p;
            cap = grown;
        }
        fm_key_info_t *k = &items[n++];
        memset(k, 0, sizeof *k);
        copy_column(k->id, sizeof k->id, s, 0);
        copy_column(k->name, sizeof k->name, s, 1);
        const unsigned char *role = sqlite3_column_text(s, 2);
        if (fm_role_parse(role ? (const char *)role : "", &k->role)) k->role = FM_ROLE_NONE;
        copy_column(k->scope, sizeof k->scope, s, 3);
        copy_column(k->created, sizeof k->created, s, 4);
        copy_column(k->created_by, sizeof k->created_by, s, 5);
        k->revoked = sqlite3_column_int(s, 6) != 0;
    }
    if (!rc && src != SQLITE_DONE) rc = db_error(ks, src, "cannot list keys", err);
    sqlite3_reset(s);
    pthread_mutex_unlock(&ks->lock);
    if (rc || n == 0) {
        free(items);
        return rc;
    }
    *out = items;
    *count = n;
    return FM_OK;
}

int fm_keystore_revoke(fm_keystore_t *ks, const char *id_or_name, fm_error_t *err) {
    if (!id_or_name || !*id_or_name)
        return fm_error_set(err, FM_EINVAL, "key id or name is missing");
    size_t len = strlen(id_or_name);
    if (memmem(id_or_name, len, TOKEN_PREFIX, TOKEN_PREFIX_LEN))
        return fm_error_set(err, FM_EINVAL,
                            "that looks like an API token: revoke a key by its id or name (see "
                            "finmaas keys list)");
    char revoked_at[32];
    fm_clock_utc_iso8601(revoked_at, sizeof revoked_at);
    pthread_mutex_lock(&ks->lock);
    int rc = run_done(ks, statement(ks, SQL_BEGIN_WRITE), "cannot start a transaction", err);
    if (!rc) {
        sqlite3_stmt *s = statement(ks, SQL_REVOKE);
        bind_text(s, 1, id_or_name);
        bind_text(s, 2, revoked_at);
        rc = run_done(ks, s, "cannot revoke the key", err);
    }
    if (!rc && sqlite3_changes(ks->db) > 0) {
        rc = run_done(ks, statement(ks, SQL_BUMP), "cannot update the generation", err);
    } else if (!rc) {
        /* Nothing active matched: an already revoked key is fine, an unknown one is not. */
        sqlite3_stmt *s = statement(ks, SQL_FIND);
        bind_text(s, 1, id_or_name);
        int64_t one = 0;
        int found = 0;
        rc = run_integer(ks, s, "cannot look up the key", &one, &found, err);
        if (!rc && !found) {
            char shown[3 * FM_KEY_NAME_MAX + 16];
            quote_text(shown, sizeof shown, id_or_name, len);
            rc =
                fm_error_set(err, FM_ENOTFOUND, "%s: no key with id or name '%s'", ks->path, shown);
        }
    }
    if (!rc) rc = run_done(ks, statement(ks, SQL_COMMIT), "cannot commit the revocation", err);
    if (rc) rollback(ks);
    pthread_mutex_unlock(&ks->lock);
    if (!rc) protect_sidecars(ks);
    return rc;
}

int64_t fm_keystore_generation(fm_keystore_t *ks) {
    pthread_mutex_lock(&ks->lock);
    int64_t value = 0;
    int found = 0;
    /* A failed read (another process holding a lock past the timeout) keeps the last value, so
     * a transient error does not look like a change and trigger a reload that would fail too. */
    if (!run_integer(ks, statement(ks, SQL_GENERATION), "cannot read the generation", &value,
                     &found, NULL) &&
        found)
        ks->generation = value;
    value = ks->generation;
    pthread_mutex_unlock(&ks->lock);
    return value;
}

/* ---- the keyring: the in-memory table ---- */

/* One active key, packed into two cache lines: the scope (up to 1 KiB, usually empty) lives in
 * the table's pool, so that a thousand keys fit a core's L2 cache. */
typedef struct ring_entry {
    unsigned char hash[HASH_BYTES];
    char id[FM_KEY_ID_MAX];
    char name[FM_KEY_NAME_MAX + 1];
    fm_role_t role;
    uint32_t scope; /* offset of the NUL-terminated scope in the pool */
} ring_entry_t;

typedef struct ring_slot {
    uint64_t tag;   /* the first 8 bytes of the hash */
    uint32_t entry; /* 1 + index into entries; 0 marks an empty slot */
} ring_slot_t;

/* One immutable generation of the ring: built whole, then swapped in. */
typedef struct ring_table {
    ring_entry_t *entries;
    size_t count;
    ring_slot_t *slots; /* NULL when count is 0 */
    size_t mask;        /* number of slots - 1 (a power of two) */
    fm_buf_t pool;      /* the scopes; offset 0 holds "" */
    int64_t generation;
} ring_table_t;

struct fm_keyring {
    pthread_rwlock_t lock; /* read: lookups; write: the swap of table */
    ring_table_t *table;   /* never NULL */
};

static void table_free(ring_table_t *t) {
    if (!t) return;
    free(t->entries);
    free(t->slots);
    fm_buf_free(&t->pool);
    free(t);
}

static uint64_t hash_tag(const unsigned char hash[HASH_BYTES]) {
    uint64_t tag;
    memcpy(&tag, hash, sizeof tag);
    return tag;
}

/* Fills the slots of a table whose entries are in place: at least twice as many slots as keys,
 * so every probe ends at an empty slot within a few steps. */
static int table_index(ring_table_t *t) {
    if (t->count == 0) return FM_OK;
    size_t cap = 16;
    while (cap < 2 * t->count)
        cap <<= 1;
    if (!(t->slots = calloc(cap, sizeof *t->slots))) return FM_ENOMEM;
    t->mask = cap - 1;
    for (size_t k = 0; k < t->count; k++) {
        uint64_t tag = hash_tag(t->entries[k].hash);
        size_t i = (size_t)tag & t->mask;
        while (t->slots[i].entry)
            i = (i + 1) & t->mask;
        t->slots[i].tag = tag;
        t->slots[i].entry = (uint32_t)(k + 1);
    }
    return FM_OK;
}

int fm_keyring_new(fm_keyring_t **out, fm_error_t *err) {
    *out = NULL;
    if (fm_digest_library_init() != 0)
        return fm_error_set(err, FM_EUNSUPPORTED, "cannot initialise libsodium");
    fm_keyring_t *ring = calloc(1, sizeof *ring);
    if (!ring || !(ring->table = calloc(1, sizeof *ring->table))) {
        free(ring);
        return fm_error_set(err, FM_ENOMEM, "out of memory creating the keyring");
    }
    ring->table->generation = -1;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Readers run on every request; without this a steady stream of them can starve a reload. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int prc = pthread_rwlock_init(&ring->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (prc != 0) {
        table_free(ring->table);
        free(ring);
        return fm_error_set(err, FM_ENOMEM, "cannot create the keyring lock");
    }
    *out = ring;
    return FM_OK;
}

void fm_keyring_free(fm_keyring_t *ring) {
    if (!ring) return;
    pthread_rwlock_destroy(&ring->lock);
    table_free(ring->table);
    free(ring);
}

/* Copies a text column into a fixed field; 0 when it is absent, empty or does not fit. */
static int take_text(char *dst, size_t size, sqlite3_stmt *s, int col) {
    const unsigned char *text = sqlite3_column_text(s, col);
    int n = sqlite3_column_bytes(s, col);
    if (!text || n <= 0 || (size_t)n >= size || memchr(text, '\0', (size_t)n)) return 0;
    memcpy(dst, text, (size_t)n + 1);
    return 1;
}

/*
 * Appends the current row of SQL_ACTIVE to t (whose entries have room for one more). A damaged
 * row fails the whole load rather than being skipped or truncated: a cut scope could name a
 * different model than the one granted.
 */
static int read_active(fm_keystore_t *ks, sqlite3_stmt *s, ring_table_t *t, fm_error_t *err) {
    ring_entry_t *e = &t->entries[t->count];
    memset(e, 0, sizeof *e);
    const char *bad = NULL;
    char role[16];
    char scope[FM_KEY_SCOPE_MAX] = "";
    if (!take_text(e->id, sizeof e->id, s, 0))
        bad = "id";
    else if (!take_text(e->name, sizeof e->name, s, 1))
        bad = "name";
    else if (!take_text(role, sizeof role, s, 2) || fm_role_parse(role, &e->role))
        bad = "role";
    else if (sqlite3_column_type(s, 3) != SQLITE_TEXT ||
             (sqlite3_column_bytes(s, 3) > 0 && !take_text(scope, sizeof scope, s, 3)) ||
             fm_key_check_scope(scope, NULL))
        bad = "scope";
    else if (sqlite3_column_type(s, 4) != SQLITE_BLOB || sqlite3_column_bytes(s, 4) != HASH_BYTES)
        bad = "hash";
    if (bad)
        return fm_error_set(err, FM_EFORMAT, "%s: key '%s' has a damaged %s", ks->path,
                            e->id[0] ? e->id : "?", bad);
    memcpy(e->hash, sqlite3_column_blob(s, 4), HASH_BYTES);
    if (scope[0]) {
        if (t->pool.len > UINT32_MAX - FM_KEY_SCOPE_MAX)
            return fm_error_set(err, FM_ELIMIT, "%s: too many scoped keys", ks->path);
        e->scope = (uint32_t)t->pool.len;
        if (fm_buf_append(&t->pool, scope, strlen(scope) + 1))
            return fm_error_set(err, FM_ENOMEM, "%s: out of memory loading keys", ks->path);
    }
    t->count++;
    return FM_OK;
}

/* Reads the active keys and the generation in one read transaction into a new table. */
static int read_table(fm_keystore_t *ks, ring_table_t *t, fm_error_t *err) {
    size_t cap = 0;
    int found = 0, src = SQLITE_DONE;
    if (fm_buf_putc(&t->pool, '\0')) /* offset 0: the empty scope */
        return fm_error_set(err, FM_ENOMEM, "%s: out of memory loading keys", ks->path);
    pthread_mutex_lock(&ks->lock);
    int rc = run_done(ks, statement(ks, SQL_BEGIN_READ), "cannot start a transaction", err);
    if (!rc)
        rc = run_integer(ks, statement(ks, SQL_GENERATION), "cannot read the generation",
                         &t->generation, &found, err);
    if (!rc && found) ks->generation = t->generation;
    sqlite3_stmt *s = statement(ks, SQL_ACTIVE);
    while (!rc && (src = sqlite3_step(s)) == SQLITE_ROW) {
        if (t->count == cap) {
            size_t grown = cap ? cap * 2 : 16;
            ring_entry_t *p = grown < UINT32_MAX ? realloc(t->entries, grown * sizeof *p) : NULL;
            if (!p) {
                rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory loading keys", ks->path);
                break;
            }
            t->entries = p;
            cap = grown;
        }
        rc = read_active(ks, s, t, err);
    }
    if (!rc && src != SQLITE_DONE) rc = db_error(ks, src, "cannot read the keys", err);
    sqlite3_reset(s);
    if (!rc) rc = run_done(ks, statement(ks, SQL_COMMIT), "cannot end the transaction", err);
    if (rc) rollback(ks);
    pthread_mutex_unlock(&ks->lock);
    return rc;
}

int fm_keyring_load(fm_keyring_t *ring, fm_keystore_t *ks, fm_error_t *err) {
    ring_table_t *t = calloc(1, sizeof *t);
    if (!t) return fm_error_set(err, FM_ENOMEM, "out of memory loading keys");
    int rc = read_table(ks, t, err);
    if (!rc && table_index(t))
        rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory indexing keys", ks->path);
    if (rc) {
        table_free(t);
        return rc;
    }
    pthread_rwlock_wrlock(&ring->lock);
    ring_table_t *old = ring->table;
    ring->table = t;
    pthread_rwlock_unlock(&ring->lock);
    table_free(old);
    return FM_OK;
}

int64_t fm_keyring_generation(fm_keyring_t *ring) {
    pthread_rwlock_rdlock(&ring->lock);
    int64_t g = ring->table->generation;
    pthread_rwlock_unlock(&ring->lock);
    return g;
}

size_t fm_keyring_count(fm_keyring_t *ring) {
    pthread_rwlock_rdlock(&ring->lock);
    size_t n = ring->table->count;
    pthread_rwlock_unlock(&ring->lock);
    return n;
}

/* The one denial for every reason, written without printf: it is on the path of every rejected
 * request. */
static int denied(fm_error_t *err) {
    if (err) {
        err->code = FM_EDENIED;
        memcpy(err->msg, DENIED_MESSAGE, sizeof DENIED_MESSAGE);
    }
    return FM_EDENIED;
}

/* Fills the principal from an entry, copying strings only up to their ends. */
static void copy_principal(fm_principal_t *dst, const ring_table_t *t, const ring_entry_t *e) {
    memcpy(dst->id, e->id, sizeof dst->id);
    memcpy(dst->name, e->name, strlen(e->name) + 1);
    dst->role = e->role;
    const char *scope = t->pool.data + e->scope;
    memcpy(dst->scope, scope, strlen(scope) + 1);
}

int fm_keyring_authenticate(fm_keyring_t *ring, const char *token, size_t n, fm_principal_t *who,
                            fm_error_t *err) {
    if (!ring || !token || !token_shape_ok(token, n)) return denied(err);
    unsigned char hash[HASH_BYTES];
    crypto_generichash(hash, HASH_BYTES, (const unsigned char *)token, n, NULL, 0);
    uint64_t tag = hash_tag(hash);
    int found = 0;
    pthread_rwlock_rdlock(&ring->lock);
    const ring_table_t *t = ring->table;
    if (t->count) {
        for (size_t i = (size_t)tag & t->mask; t->slots[i].entry; i = (i + 1) & t->mask) {
            if (t->slots[i].tag != tag) continue;
            const ring_entry_t *e = &t->entries[t->slots[i].entry - 1];
            if (sodium_memcmp(e->hash, hash, HASH_BYTES) == 0) {
                if (who) copy_principal(who, t, e);
                found = 1;
                break;
            }
        }
    }
    pthread_rwlock_unlock(&ring->lock);
    return found ? FM_OK : denied(err);
}
