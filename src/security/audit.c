/*
 * The audit log's foundations, shared by the writer (audit_log.c) and the readers
 * (audit_verify.c): the audit key file, the SQLite database with its schema, the canonical text
 * of an entry, and the keyed BLAKE2b hashes that chain the entries and seal the head.
 *
 * Tables (STRICT, so a value of the wrong type cannot be stored even by hand):
 *   entries(seq INTEGER PRIMARY KEY, time, key_id, role, action, model, version, request_id,
 *           status, input_digest, output, detail, prev, hash)  -- prev and hash as lowercase hex
 *   head(id = 1, seq, hash, mac)  -- exactly one row: the last seq and hash, and their MAC
 * PRAGMA user_version holds the schema version. A new database starts with the head at seq 0,
 * the zero hash, so that deleting every entry is as visible as deleting the last few.
 *
 * Every statement binds its values; no SQL is ever built from text.
 */
#include "security/audit_internal.h"

#include "core/clock.h"
#include "core/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char schema_sql[] = "CREATE TABLE IF NOT EXISTS entries (\n"
                                 "    seq INTEGER PRIMARY KEY,\n"
                                 "    time TEXT NOT NULL,\n"
                                 "    key_id TEXT NOT NULL,\n"
                                 "    role TEXT,\n"
                                 "    action TEXT NOT NULL,\n"
                                 "    model TEXT,\n"
                                 "    version INTEGER NOT NULL,\n"
                                 "    request_id TEXT,\n"
                                 "    status INTEGER NOT NULL,\n"
                                 "    input_digest TEXT,\n"
                                 "    output TEXT,\n"
                                 "    detail TEXT,\n"
                                 "    prev TEXT NOT NULL,\n"
                                 "    hash TEXT NOT NULL\n"
                                 ") STRICT;\n"
                                 "CREATE TABLE IF NOT EXISTS head (\n"
                                 "    id INTEGER PRIMARY KEY CHECK (id = 1),\n"
                                 "    seq INTEGER NOT NULL,\n"
                                 "    hash TEXT NOT NULL,\n"
                                 "    mac TEXT NOT NULL\n"
                                 ") STRICT;\n"
                                 "PRAGMA user_version = 1;\n";

int fm_audit_paths_init(fm_audit_paths_t *paths, const char *home, fm_error_t *err) {
    if (!home || !*home) return fm_error_set(err, FM_EINVAL, "audit log: empty home directory");
    size_t n = strlen(home);
    if (n > FM_AUDIT_HOME_MAX)
        return fm_error_set(err, FM_EINVAL, "%.64s...: home path longer than %d bytes", home,
                            FM_AUDIT_HOME_MAX);
    /* One trailing slash is dropped so that messages show "home/audit.db", not "home//audit.db". */
    int len = (int)n;
    while (len > 1 && home[len - 1] == '/')
        len--;
    snprintf(paths->db, sizeof paths->db, "%.*s/audit.db", len, home);
    snprintf(paths->key, sizeof paths->key, "%.*s/audit.key", len, home);
    return FM_OK;
}

/* ---- the key file ---- */

/* Reads the key from an open descriptor after checking type, mode and size. */
static int read_key_fd(int fd, const char *path, unsigned char *key, fm_error_t *err) {
    struct stat st;
    if (fstat(fd, &st) != 0)
        return fm_error_set(err, FM_EIO, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return fm_error_set(err, FM_EFORMAT, "%s: not a regular file", path);
    if (st.st_mode & 077)
        return fm_error_set(err, FM_EDENIED,
                            "%s: mode %04o lets group or others at the audit key (it must be "
                            "private to its owner: chmod 600)",
                            path, (unsigned)(st.st_mode & 07777));
    if (st.st_size != FM_AUDIT_KEY_BYTES)
        return fm_error_set(err, FM_EFORMAT,
                            "%s: %lld bytes where an audit key has %d (not an audit key, or "
                            "damaged)",
                            path, (long long)st.st_size, FM_AUDIT_KEY_BYTES);
    size_t got = 0;
    while (got < FM_AUDIT_KEY_BYTES) {
        ssize_t r = pread(fd, key + got, FM_AUDIT_KEY_BYTES - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return fm_error_set(err, FM_EIO, "%s: cannot read: %s", path,
                                r < 0 ? strerror(errno) : "file shrank while reading");
        got += (size_t)r;
    }
    return FM_OK;
}

static void fsync_directory(const char *path) {
    char dir[FM_AUDIT_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/*
 * Writes a new key to a private temporary file and links it to the key's path. *lost is set when
 * another process linked its key first (then that key is the one to read).
 */
static int create_key(const char *path, int *lost, fm_error_t *err) {
    *lost = 0;
    char temp[FM_AUDIT_PATH_MAX + 16];
    snprintf(temp, sizeof temp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(temp); /* O_CREAT | O_EXCL, mode 0600 */
    if (fd < 0) return fm_error_set(err, FM_EIO, "%s: cannot create: %s", path, strerror(errno));
    unsigned char key[FM_AUDIT_KEY_BYTES];
    randombytes_buf(key, sizeof key);
    int ok = fchmod(fd, 0600) == 0;
    size_t put = 0;
    while (ok && put < sizeof key) {
        ssize_t w = write(fd, key + put, sizeof key - put);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) ok = 0;
        put += w > 0 ? (size_t)w : 0;
    }
    sodium_memzero(key, sizeof key);
    ok = ok && fsync(fd) == 0;
    int e = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (ok && link(temp, path) != 0) {
        e = errno;
        if (e == EEXIST)
            *lost = 1;
        else
            ok = 0;
    }
    unlink(temp);
    if (!ok) return fm_error_set(err, FM_EIO, "%s: cannot write: %s", path, strerror(e));
    fsync_directory(path);
    return FM_OK;
}

int fm_audit_key_load(const fm_audit_paths_t *paths, int create, unsigned char *key,
                      fm_error_t *err) {
    const char *path = paths->key;
    for (int attempt = 0; attempt < 3; attempt++) {
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            int rc = read_key_fd(fd, path, key, err);
            close(fd);
            return rc;
        }
        int e = errno;
        if (e == ELOOP)
            return fm_error_set(err, FM_EDENIED, "%s: is a symbolic link (refused)", path);
        if (e != ENOENT) return fm_error_set(err, FM_EIO, "%s: cannot open: %s", path, strerror(e));
        /* The key is always created before the database, so a database without a key means the
         * key was deleted or the log copied without it. */
        struct stat st;
        if (stat(paths->db, &st) == 0 && attempt == 0) continue; /* created meanwhile? look again */
        if (stat(paths->db, &st) == 0)
            return fm_error_set(err, create ? FM_EDATA : FM_ENOTFOUND,
                                "%s: missing while %s exists (restore the key: a new one could "
                                "not verify the existing log)",
                                path, paths->db);
        if (!create)
            return fm_error_set(err, FM_ENOTFOUND, "%s: no audit key (no audit log here)", path);
        int lost = 0;
        int rc = create_key(path, &lost, err);
        if (rc) return rc;
        /* Whether this process's key or a faster process's one is in place, read what is there. */
    }
    return fm_error_set(err, FM_EIO, "%s: cannot create or read the audit key", path);
}

/* ---- the database ---- */

int fm_audit_status_of(int sqlite_rc) {
    switch (sqlite_rc & 0xff) {
    case SQLITE_NOMEM:
        return FM_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return FM_EBUSY;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_SCHEMA:
    case SQLITE_ERROR: /* on a database we did not write: a missing table or column */
        return FM_EFORMAT;
    case SQLITE_CONSTRAINT:
        return FM_EDATA;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return FM_EDENIED;
    default:
        return FM_EIO;
    }
}

int fm_audit_db_error(sqlite3 *db, const char *path, int sqlite_rc, const char *what,
                      fm_error_t *err) {
    const char *detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(sqlite_rc);
    return fm_error_set(err, fm_audit_status_of(sqlite_rc), "%s: %s: %s", path, what, detail);
}

static int exec_fixed(sqlite3 *db, const char *path, const char *sql, const char *what,
                      fm_error_t *err) {
    int src = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return src == SQLITE_OK ? FM_OK : fm_audit_db_error(db, path, src, what, err);
}

static int read_user_version(sqlite3 *db, const char *path, int64_t *version, fm_error_t *err) {
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
    if (src == SQLITE_OK) src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        *version = sqlite3_column_int64(s, 0);
        src = SQLITE_OK;
    }
    int rc = FM_OK;
    if (src != SQLITE_OK) {
        int code = src & 0xff;
        rc = code == SQLITE_NOTADB || code == SQLITE_CORRUPT
                 ? fm_error_set(err, FM_EFORMAT, "%s: not a finmaas audit log (%s)", path,
                                sqlite3_errmsg(db))
                 : fm_audit_db_error(db, path, src, "cannot read the schema version", err);
    }
    sqlite3_finalize(s);
    return rc;
}

static int check_version(int64_t version, const char *path, fm_error_t *err) {
    if (version > FM_AUDIT_SCHEMA_VERSION)
        return fm_error_set(err, FM_EUNSUPPORTED,
                            "%s: audit log schema version %lld is newer than this finmaas "
                            "supports (%d)",
                            path, (long long)version, FM_AUDIT_SCHEMA_VERSION);
    if (version != FM_AUDIT_SCHEMA_VERSION)
        return fm_error_set(err, FM_EFORMAT, "%s: not a finmaas audit log (schema version %lld)",
                            path, (long long)version);
    return FM_OK;
}

/* Creates the tables and the head row in a fresh database, inside the caller's transaction. */
static int create_schema(sqlite3 *db, const char *path, const unsigned char *key, fm_error_t *err) {
    int rc = exec_fixed(db, path, schema_sql, "cannot create the audit tables", err);
    if (rc) return rc;
    unsigned char zero[FM_AUDIT_HASH_BYTES] = {0}, mac[FM_AUDIT_HASH_BYTES];
    char zero_hex[FM_AUDIT_HASH_HEX], mac_hex[FM_AUDIT_HASH_HEX];
    fm_audit_head_mac(key, 0, zero, mac);
    fm_audit_hex(zero, sizeof zero, zero_hex);
    fm_audit_hex(mac, sizeof mac, mac_hex);
    sqlite3_stmt *s = NULL;
    int src = sqlite3_prepare_v2(db, "INSERT INTO head(id, seq, hash, mac) VALUES (1, 0, ?1, ?2)",
                                 -1, &s, NULL);
    if (src == SQLITE_OK) {
        sqlite3_bind_text(s, 1, zero_hex, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, mac_hex, -1, SQLITE_STATIC);
        src = sqlite3_step(s);
    }
    rc = src == SQLITE_DONE || src == SQLITE_OK
             ? FM_OK
             : fm_audit_db_error(db, path, src, "cannot create the audit head", err);
    sqlite3_finalize(s);
    return rc;
}

/* The writer's setup: WAL, synchronous=FULL, and the schema created or checked in one write
 * transaction so that two processes creating the log at once do not race. */
static int setup_writer(sqlite3 *db, const char *path, const unsigned char *key, fm_error_t *err) {
    /* The first statement reads the file: garbage in audit.db shows up here as NOTADB. */
    int src = sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    if ((src & 0xff) == SQLITE_NOTADB || (src & 0xff) == SQLITE_CORRUPT)
        return fm_error_set(err, FM_EFORMAT, "%s: not a finmaas audit log (%s)", path,
                            sqlite3_errmsg(db));
    if (src != SQLITE_OK) return fm_audit_db_error(db, path, src, "cannot switch to WAL mode", err);
    int rc = exec_fixed(db, path, "PRAGMA synchronous=FULL", "cannot set synchronous=FULL", err);
    if (!rc) rc = exec_fixed(db, path, "BEGIN IMMEDIATE", "cannot start a transaction", err);
    if (rc) return rc;
    int64_t version = 0;
    rc = read_user_version(db, path, &version, err);
    if (!rc && version == 0)
        rc = create_schema(db, path, key, err);
    else if (!rc)
        rc = check_version(version, path, err);
    if (!rc) rc = exec_fixed(db, path, "COMMIT", "cannot create the audit tables", err);
    if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int setup_reader(sqlite3 *db, const char *path, fm_error_t *err) {
    int64_t version = 0;
    int rc = read_user_version(db, path, &version, err);
    return rc ? rc : check_version(version, path, err);
}

int fm_audit_db_open(const fm_audit_paths_t *paths, int create, const unsigned char *key,
                     sqlite3 **out, fm_error_t *err) {
    *out = NULL;
    const char *path = paths->db;
    if (create) {
        /* Created here, not by SQLite, so that the log (and the WAL files SQLite gives the same
         * mode) is private from the first byte. */
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            return fm_error_set(err, FM_EIO, "%s: cannot create: %s", path, strerror(errno));
        close(fd);
    } else {
        struct stat st;
        if (stat(path, &st) != 0) {
            int e = errno;
            if (e == ENOENT) return fm_error_set(err, FM_ENOTFOUND, "%s: no audit log here", path);
            return fm_error_set(err, FM_EIO, "%s: cannot open: %s", path, strerror(e));
        }
        if (!S_ISREG(st.st_mode))
            return fm_error_set(err, FM_EFORMAT, "%s: not a regular file", path);
    }
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    int src = sqlite3_open_v2(path, &db, flags, NULL);
    int rc = src == SQLITE_OK ? FM_OK : fm_audit_db_error(db, path, src, "cannot open", err);
    if (!rc) sqlite3_busy_timeout(db, FM_AUDIT_BUSY_TIMEOUT_MS);
    /*
     * While another process is creating the database or switching it to WAL, the journal mode
     * change can fail with SQLITE_BUSY at once, without SQLite's busy handler waiting: so the
     * setup is retried here, for as long as the busy timeout would have waited.
     */
    double deadline = fm_clock_seconds() + FM_AUDIT_BUSY_TIMEOUT_MS / 1000.0;
    while (!rc) {
        rc = create ? setup_writer(db, path, key, err) : setup_reader(db, path, err);
        if (rc != FM_EBUSY || fm_clock_seconds() >= deadline) break;
        struct timespec pause = {0, 5 * 1000 * 1000};
        nanosleep(&pause, NULL);
        rc = FM_OK;
    }
    if (rc) {
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return FM_OK;
}

/* ---- canonical text and hashes ---- */

int fm_audit_json_string(fm_buf_t *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    if (!s) return fm_buf_append(b, "null", 4);
    int rc = fm_buf_putc(b, '"');
    while (*s && !rc) {
        const char *run = s;
        while (*run && (unsigned char)*run >= 0x20 && *run != '"' && *run != '\\')
            run++;
        if (run > s) {
            rc = fm_buf_append(b, s, (size_t)(run - s));
            s = run;
            continue;
        }
        unsigned char c = (unsigned char)*s++;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        rc = fm_buf_append(b, esc, n);
    }
    return rc ? rc : fm_buf_putc(b, '"');
}

static int put_field(fm_buf_t *b, const char *name, const char *value) {
    int rc = fm_buf_puts(b, name);
    return rc ? rc : fm_audit_json_string(b, value);
}

static int put_number(fm_buf_t *b, const char *name, int64_t value) {
    int rc = fm_buf_puts(b, name);
    return rc ? rc : fm_buf_put_int(b, (long long)value);
}

int fm_audit_canonical(fm_buf_t *b, const fm_audit_row_t *row) {
    int rc = put_number(b, "{\"seq\":", row->seq);
    if (!rc) rc = put_field(b, ",\"time\":", row->time);
    if (!rc) rc = put_field(b, ",\"key_id\":", row->key_id);
    if (!rc) rc = put_field(b, ",\"role\":", row->role);
    if (!rc) rc = put_field(b, ",\"action\":", row->action);
    if (!rc) rc = put_field(b, ",\"model\":", row->model);
    if (!rc) rc = put_number(b, ",\"version\":", row->version);
    if (!rc) rc = put_field(b, ",\"request_id\":", row->request_id);
    if (!rc) rc = put_number(b, ",\"status\":", row->status);
    if (!rc) rc = put_field(b, ",\"input_digest\":", row->input_digest);
    if (!rc) rc = put_field(b, ",\"output\":", row->output);
    if (!rc) rc = put_field(b, ",\"detail\":", row->detail);
    if (!rc) rc = fm_buf_putc(b, '}');
    return rc;
}

void fm_audit_entry_hash(const unsigned char *key, const unsigned char *prev, const char *text,
                         size_t n, unsigned char *hash) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, FM_AUDIT_KEY_BYTES, FM_AUDIT_HASH_BYTES);
    crypto_generichash_update(&st, prev, FM_AUDIT_HASH_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)text, n);
    crypto_generichash_final(&st, hash, FM_AUDIT_HASH_BYTES);
}

void fm_audit_head_mac(const unsigned char *key, int64_t seq, const unsigned char *hash,
                       unsigned char *mac) {
    unsigned char msg[4 + 8 + FM_AUDIT_HASH_BYTES];
    memcpy(msg, "head", 4);
    uint64_t u = (uint64_t)seq;
    for (int i = 0; i < 8; i++)
        msg[4 + i] = (unsigned char)(u >> (56 - 8 * i));
    memcpy(msg + 12, hash, FM_AUDIT_HASH_BYTES);
    crypto_generichash(mac, FM_AUDIT_HASH_BYTES, msg, sizeof msg, key, FM_AUDIT_KEY_BYTES);
}

void fm_audit_hex(const unsigned char *bytes, size_t n, char *out) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int fm_audit_unhex(const char *text, unsigned char *bytes, size_t n) {
    if (!text) return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(text[2 * i]);
        if (hi < 0) return -1;
        int lo = hex_digit(text[2 * i + 1]);
        if (lo < 0) return -1;
        bytes[i] = (unsigned char)(hi << 4 | lo);
    }
    return text[2 * n] == '\0' ? 0 : -1;
}

/* Writes v as exactly width decimal digits (v >= 0). */
static void put_digits(char *out, long v, int width) {
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* The date of a day count since 1970-01-01, proleptic Gregorian (Howard Hinnant's
 * civil_from_days). */
static void civil_from_days(int64_t z, int64_t *y, long *m, long *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (long)(doy - (153 * mp + 2) / 5 + 1);
    *m = (long)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int fm_audit_format_time(int64_t us, char out[FM_AUDIT_TIME_SIZE]) {
    int64_t days = us >= 0 ? us / 86400000000LL : -((-us + 86399999999LL) / 86400000000LL);
    int64_t rest = us - days * 86400000000LL, year;
    long month, day;
    civil_from_days(days, &year, &month, &day);
    if (year < 0 || year > 9999) return -1;
    long seconds = (long)(rest / 1000000);
    /* By hand rather than strftime: no locale, and the layout is part of the hashed text. */
    put_digits(out, (long)year, 4);
    out[4] = '-';
    put_digits(out + 5, month, 2);
    out[7] = '-';
    put_digits(out + 8, day, 2);
    out[10] = 'T';
    put_digits(out + 11, seconds / 3600, 2);
    out[13] = ':';
    put_digits(out + 14, seconds / 60 % 60, 2);
    out[16] = ':';
    put_digits(out + 17, seconds % 60, 2);
    out[19] = '.';
    put_digits(out + 20, (long)(rest % 1000000), 6);
    out[26] = 'Z';
    out[27] = '\0';
    return 0;
}

void fm_audit_time_now(char out[FM_AUDIT_TIME_SIZE]) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fm_audit_format_time((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, out);
}

static const char *column_text(sqlite3_stmt *s, int col) {
    return (const char *)sqlite3_column_text(s, col);
}

void fm_audit_row_read(sqlite3_stmt *s, fm_audit_row_t *row, const char **prev, const char **hash) {
    row->seq = sqlite3_column_int64(s, FM_AUDIT_COL_SEQ);
    row->time = column_text(s, FM_AUDIT_COL_TIME);
    row->key_id = column_text(s, FM_AUDIT_COL_KEY_ID);
    row->role = column_text(s, FM_AUDIT_COL_ROLE);
    row->action = column_text(s, FM_AUDIT_COL_ACTION);
    row->model = column_text(s, FM_AUDIT_COL_MODEL);
    row->version = sqlite3_column_int64(s, FM_AUDIT_COL_VERSION);
    row->request_id = column_text(s, FM_AUDIT_COL_REQUEST_ID);
    row->status = sqlite3_column_int64(s, FM_AUDIT_COL_STATUS);
    row->input_digest = column_text(s, FM_AUDIT_COL_INPUT_DIGEST);
    row->output = column_text(s, FM_AUDIT_COL_OUTPUT);
    row->detail = column_text(s, FM_AUDIT_COL_DETAIL);
    *prev = column_text(s, FM_AUDIT_COL_PREV);
    *hash = column_text(s, FM_AUDIT_COL_HASH);
}
