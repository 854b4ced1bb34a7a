/*
 * Internals of the audit log shared by its three files: audit.c (the key file, the database and
 * its schema, the canonical text of an entry and the keyed hashes), audit_log.c (the writer:
 * queue, group commit, callbacks) and audit_verify.c (verify, export, query). Nothing here is
 * visible outside src/security.
 *
 * The canonical text of an entry is a JSON object with the fields in a fixed order and no spaces:
 *   {"seq":1,"time":"2026-11-29T20:53:50.123456Z","key_id":"cli","role":null,
 *    "action":"keys.create","model":null,"version":0,"request_id":null,"status":0,
 *    "input_digest":null,"output":null,"detail":null}
 * (one line). Absent strings are null; strings are escaped as audit.c's formatter does (", \ and
 * control characters only; UTF-8 passes through), so the text depends on nothing but the fields.
 * An entry's hash is BLAKE2b-256 keyed with the audit key over prev (32 raw bytes, zeros for
 * seq 1) followed by the canonical text; the head's MAC is BLAKE2b-256 keyed with the same key
 * over "head" || seq (8 bytes, big-endian) || hash (32 raw bytes).
 */
#ifndef FM_SECURITY_AUDIT_INTERNAL_H
#define FM_SECURITY_AUDIT_INTERNAL_H

#include "core/buf.h"
#include "security/audit.h"

#include <sqlite3.h>
#include <stdint.h>

#define FM_AUDIT_KEY_BYTES  32
#define FM_AUDIT_HASH_BYTES 32
#define FM_AUDIT_HASH_HEX   (2 * FM_AUDIT_HASH_BYTES + 1)
/* "YYYY-MM-DDTHH:MM:SS.ffffffZ" and its NUL. */
#define FM_AUDIT_TIME_SIZE 28
/* The schema version in PRAGMA user_version; a newer one is refused. */
#define FM_AUDIT_SCHEMA_VERSION 1
/* Longest accepted home path, so that every file name under it fits a fixed buffer. */
#define FM_AUDIT_HOME_MAX 3800
#define FM_AUDIT_PATH_MAX (FM_AUDIT_HOME_MAX + 32)
/* How long a connection waits for another process's lock before giving up (SQLITE_BUSY). */
#define FM_AUDIT_BUSY_TIMEOUT_MS 5000

/* The entry columns in the order every SELECT returns them (fm_audit_row_read reads them). */
#define FM_AUDIT_COLUMNS                                                                           \
    "seq, time, key_id, role, action, model, version, request_id, status, input_digest, output, "  \
    "detail, prev, hash"
enum {
    FM_AUDIT_COL_SEQ,
    FM_AUDIT_COL_TIME,
    FM_AUDIT_COL_KEY_ID,
    FM_AUDIT_COL_ROLE,
    FM_AUDIT_COL_ACTION,
    FM_AUDIT_COL_MODEL,
    FM_AUDIT_COL_VERSION,
    FM_AUDIT_COL_REQUEST_ID,
    FM_AUDIT_COL_STATUS,
    FM_AUDIT_COL_INPUT_DIGEST,
    FM_AUDIT_COL_OUTPUT,
    FM_AUDIT_COL_DETAIL,
    FM_AUDIT_COL_PREV,
    FM_AUDIT_COL_HASH,
    FM_AUDIT_COL_COUNT
};

/* One entry as stored: the strings are borrowed (from a queued entry or an SQLite row). */
typedef struct fm_audit_row {
    int64_t seq;
    const char *time;
    const char *key_id;
    const char *role;
    const char *action;
    const char *model;
    int64_t version;
    const char *request_id;
    int64_t status;
    const char *input_digest;
    const char *output;
    const char *detail;
} fm_audit_row_t;

/* The paths of a home's files. */
typedef struct fm_audit_paths {
    char db[FM_AUDIT_PATH_MAX];  /* <home>/audit.db */
    char key[FM_AUDIT_PATH_MAX]; /* <home>/audit.key */
} fm_audit_paths_t;

/* Fills the paths; FM_EINVAL when home is empty or longer than FM_AUDIT_HOME_MAX. */
int fm_audit_paths_init(fm_audit_paths_t *paths, const char *home, fm_error_t *err);

/*
 * Reads <home>/audit.key into key. It must be a regular file of exactly FM_AUDIT_KEY_BYTES bytes
 * that neither group nor others may read or write. When it does not exist and create is set, a new
 * key (libsodium randombytes) is written to a temporary file (mkstemp: O_CREAT|O_EXCL, mode
 * 0600), fsync'ed and linked into place, so two processes creating it at once agree on one key and
 * no reader ever sees a partial key. Without create a missing key is FM_ENOTFOUND.
 */
int fm_audit_key_load(const fm_audit_paths_t *paths, int create, unsigned char *key,
                      fm_error_t *err);

/*
 * Opens <home>/audit.db. With create (the writer), creates the file (mode 0600) when absent,
 * switches it to WAL, sets synchronous=FULL and creates the schema with its head row (seq 0, zero
 * hash, MAC under key); the setup is retried while another process holds the database during its
 * own creation. Without create (readers) a missing file is FM_ENOTFOUND and nothing is created.
 * Both check the schema version. *db is NULL on failure.
 */
int fm_audit_db_open(const fm_audit_paths_t *paths, int create, const unsigned char *key,
                     sqlite3 **db, fm_error_t *err);

/* The fm_status_t for an SQLite result code. */
int fm_audit_status_of(int sqlite_rc);
/* Records "<path>: <what>: <SQLite's message>" with the code's status and returns it. */
int fm_audit_db_error(sqlite3 *db, const char *path, int sqlite_rc, const char *what,
                      fm_error_t *err);

/* Appends the canonical text of row (see the top of this file). Returns 0 or FM_ENOMEM. */
int fm_audit_canonical(fm_buf_t *b, const fm_audit_row_t *row);
/* Appends s as a JSON string (NULL as null), escaping only ", \ and bytes below 0x20. */
int fm_audit_json_string(fm_buf_t *b, const char *s);

/* hash = BLAKE2b-256(key; prev || text[0..n)). */
void fm_audit_entry_hash(const unsigned char *key, const unsigned char *prev, const char *text,
                         size_t n, unsigned char *hash);
/* mac = BLAKE2b-256(key; "head" || seq as 8 bytes big-endian || hash). */
void fm_audit_head_mac(const unsigned char *key, int64_t seq, const unsigned char *hash,
                       unsigned char *mac);

/* Writes n bytes as 2n lowercase hex digits plus NUL. */
void fm_audit_hex(const unsigned char *bytes, size_t n, char *out);
/* Reads exactly 2n lowercase hex digits (nothing more) into bytes; -1 when text is not that. */
int fm_audit_unhex(const char *text, unsigned char *bytes, size_t n);

/* Microseconds since 1970-01-01T00:00:00Z as "YYYY-MM-DDTHH:MM:SS.ffffffZ"; -1 (out untouched)
 * outside the years 0000 to 9999. */
int fm_audit_format_time(int64_t us, char out[FM_AUDIT_TIME_SIZE]);
/* The current UTC time as "YYYY-MM-DDTHH:MM:SS.ffffffZ". */
void fm_audit_time_now(char out[FM_AUDIT_TIME_SIZE]);

/* Reads the current row of a statement that selects FM_AUDIT_COLUMNS; prev and hash as text. */
void fm_audit_row_read(sqlite3_stmt *s, fm_audit_row_t *row, const char **prev, const char **hash);

#endif
