/*
 * Internals of the audit log shared by its files: audit.c (the key file, the canonical text of an
 * entry, the keyed hashes, times), audit_file.c (the log and head files: locking, head slots, the
 * line parser and readers), audit_log.c (the writer: queue, group commit, callbacks) and
 * audit_verify.c (verify, export, query). Nothing here is visible outside src/security.
 *
 * The canonical text of an entry is a JSON object with the fields in a fixed order and no spaces:
 *   {"seq":1,"time":"2026-11-29T20:53:50.123456Z","key_id":"cli","role":null,
 *    "action":"keys.create","model":null,"version":0,"request_id":null,"status":0,
 *    "input_digest":null,"output":null,"detail":null}
 * (one line). Absent strings are null; strings are valid UTF-8 (invalid bytes were replaced by
 * U+FFFD when the entry was queued) escaped as fm_audit_put_string does (", \ and control
 * characters only; other UTF-8 passes through), so the text depends on nothing but the fields.
 * An entry's hash is BLAKE2b-256 keyed with the audit key over prev (32 raw bytes, zeros for
 * seq 1) followed by the canonical text.
 *
 * A line of audit.log is the canonical text with ,"prev":"<64 hex>","hash":"<64 hex>" put before
 * its closing brace, then "\n": the last FM_AUDIT_SUFFIX_BYTES bytes before the newline are always
 * that suffix, so the canonical text is the line up to the suffix plus "}".
 *
 * audit.head holds two slots of FM_AUDIT_SLOT_BYTES bytes (A at offset 0, B after it), each:
 *   0..7    "FMAUDHD1"
 *   8..15   seq of the last entry (big-endian; 0 for an empty log)
 *   16..23  length of audit.log in bytes up to and including that entry's newline (big-endian)
 *   24..55  hash of that entry (zeros for an empty log)
 *   56..87  MAC = BLAKE2b-256 keyed with the audit key over "head" || seq || length || hash
 *   88..    zeros
 * The valid slot (magic and MAC right) with the larger seq is the head.
 */
#ifndef FM_SECURITY_AUDIT_INTERNAL_H
#define FM_SECURITY_AUDIT_INTERNAL_H

#include "core/buf.h"
#include "security/audit.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FM_AUDIT_KEY_BYTES  32
#define FM_AUDIT_HASH_BYTES 32
#define FM_AUDIT_HASH_HEX   (2 * FM_AUDIT_HASH_BYTES + 1)
/* "YYYY-MM-DDTHH:MM:SS.ffffffZ" and its NUL. */
#define FM_AUDIT_TIME_SIZE 28
/* Longest accepted home path, so that every file name under it fits a fixed buffer. */
#define FM_AUDIT_HOME_MAX 3800
#define FM_AUDIT_PATH_MAX (FM_AUDIT_HOME_MAX + 32)
/* How long a process waits for another one's lock on audit.log before giving up (FM_EBUSY). */
#define FM_AUDIT_LOCK_TIMEOUT_MS 5000
/* ,"prev":"<64 hex>","hash":"<64 hex>"} : what a line adds to the canonical text's fields. */
#define FM_AUDIT_SUFFIX_BYTES (9 + 64 + 10 + 64 + 2)
/* Longest line a reader accepts (a writer's entry is at most 8 fields of 1 MiB, escaped). */
#define FM_AUDIT_LINE_MAX (64 << 20)
/* The head file: two slots. */
#define FM_AUDIT_SLOT_BYTES 128
#define FM_AUDIT_HEAD_BYTES (2 * FM_AUDIT_SLOT_BYTES)
/* Every line starts so; a file that does not is not an audit log. */
#define FM_AUDIT_LINE_START "{\"seq\":"

/* The paths of a home's files. */
typedef struct fm_audit_paths {
    char log[FM_AUDIT_PATH_MAX];    /* <home>/audit.log */
    char head[FM_AUDIT_PATH_MAX];   /* <home>/audit.head */
    char key[FM_AUDIT_PATH_MAX];    /* <home>/audit.key */
    char legacy[FM_AUDIT_PATH_MAX]; /* <home>/audit.db: the SQLite log of earlier releases */
} fm_audit_paths_t;

/* Fills the paths; FM_EINVAL when home is empty or longer than FM_AUDIT_HOME_MAX. */
int fm_audit_paths_init(fm_audit_paths_t *paths, const char *home, fm_error_t *err);

/* FM_EUNSUPPORTED, telling what to do, when the home holds the old audit.db and no audit.log;
 * FM_OK otherwise. */
int fm_audit_check_legacy(const fm_audit_paths_t *paths, fm_error_t *err);

/*
 * Reads <home>/audit.key into key. It must be a regular file of exactly FM_AUDIT_KEY_BYTES bytes
 * that neither group nor others may read or write. When it does not exist and create is set, a new
 * key (libsodium randombytes) is written to a temporary file (mkstemp: O_CREAT|O_EXCL, mode
 * 0600), fsync'ed and linked into place, so two processes creating it at once agree on one key and
 * no reader ever sees a partial key. Without create a missing key is FM_ENOTFOUND; a missing key
 * next to an existing audit.log is FM_EDATA for the writer (a new key could not verify the log).
 */
int fm_audit_key_load(const fm_audit_paths_t *paths, int create, unsigned char *key,
                      fm_error_t *err);

/* fsyncs the directory that holds path, so that a file created there survives a crash. */
void fm_audit_fsync_directory(const char *path);

/* ---- canonical text and hashes (audit.c) ---- */

/* What an entry holds once queued: the strings of the canonical text, borrowed. */
typedef struct fm_audit_fields {
    const char *time; /* "YYYY-MM-DDTHH:MM:SS.ffffffZ" */
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
} fm_audit_fields_t;

/*
 * Writes s as a JSON string (NULL as null) into [dst, end): invalid UTF-8 bytes become U+FFFD,
 * ", \ and bytes below 0x20 are escaped, everything else is copied. Returns the end of what was
 * written, or NULL when it does not fit. ASCII runs are copied whole.
 */
char *fm_audit_put_string(char *dst, char *end, const char *s);

/*
 * Writes the canonical text of f after its seq, without the closing brace:
 *   ,"time":"...","key_id":...,"detail":...
 * into out (cap bytes). Returns the length, or 0 when it does not fit.
 */
size_t fm_audit_format_fields(char *out, size_t cap, const fm_audit_fields_t *f);
/* The most bytes fm_audit_format_fields can need for f. */
size_t fm_audit_fields_bound(const fm_audit_fields_t *f);

/* hash = BLAKE2b-256(key; prev || text[0..n)). */
void fm_audit_entry_hash(const unsigned char *key, const unsigned char *prev, const char *text,
                         size_t n, unsigned char *hash);

/* Writes n bytes as 2n lowercase hex digits plus NUL. */
void fm_audit_hex(const unsigned char *bytes, size_t n, char *out);
/* Reads exactly 2n lowercase hex digits at text into bytes; -1 when they are not that. */
int fm_audit_unhex(const char *text, unsigned char *bytes, size_t n);

/* Microseconds since 1970-01-01T00:00:00Z as "YYYY-MM-DDTHH:MM:SS.ffffffZ"; -1 (out untouched)
 * outside the years 0000 to 9999. */
int fm_audit_format_time(int64_t us, char out[FM_AUDIT_TIME_SIZE]);
/* The current UTC time as "YYYY-MM-DDTHH:MM:SS.ffffffZ". */
void fm_audit_time_now(char out[FM_AUDIT_TIME_SIZE]);

/* ---- the files (audit_file.c) ---- */

/* What a head slot records: the last entry's seq, the log's length after it, its hash. */
typedef struct fm_audit_head {
    int64_t seq;
    int64_t length;
    unsigned char hash[FM_AUDIT_HASH_BYTES];
} fm_audit_head_t;

/* Both slots of a head file as read. */
typedef struct fm_audit_slots {
    size_t bytes;    /* the file's size as far as read (0: empty or missing) */
    int readable[2]; /* the slot is complete and starts with the magic */
    int valid[2];    /* ... and its MAC matches */
    fm_audit_head_t slot[2];
    int best; /* the valid slot with the larger seq (A on a tie), -1 when none */
} fm_audit_slots_t;

/* mac = BLAKE2b-256(key; "head" || seq || length || hash), integers 8 bytes big-endian. */
void fm_audit_head_mac(const unsigned char *key, const fm_audit_head_t *head, unsigned char *mac);
/* The FM_AUDIT_SLOT_BYTES bytes of a slot holding head. */
void fm_audit_slot_encode(const unsigned char *key, const fm_audit_head_t *head,
                          unsigned char *out);
/* Decodes the n bytes read from a head file (n <= FM_AUDIT_HEAD_BYTES). */
void fm_audit_slots_decode(const unsigned char *key, const unsigned char *bytes, size_t n,
                           fm_audit_slots_t *out);

/* Reads up to FM_AUDIT_HEAD_BYTES from offset 0 of fd into bytes; the count, or -1 (errno). */
ssize_t fm_audit_read_head_bytes(int fd, unsigned char *bytes);

/*
 * flock(fd, op) (LOCK_SH or LOCK_EX) waiting at most FM_AUDIT_LOCK_TIMEOUT_MS for another
 * process's lock: FM_EBUSY naming path after that, FM_EIO on other failures.
 */
int fm_audit_lock(int fd, int op, const char *path, fm_error_t *err);
void fm_audit_unlock(int fd);

/* One parsed line of audit.log. Pointers into the line's text. */
typedef struct fm_audit_line {
    const char *text;
    size_t len; /* without the newline */
    int64_t seq;
    const char *time;  /* FM_AUDIT_TIME_SIZE - 1 bytes (not NUL-terminated) */
    const char *model; /* the escaped text between the quotes, NULL for null */
    size_t model_len;
    size_t fields_end; /* offset of the suffix: the canonical text is text[0..fields_end) "}" */
    unsigned char prev[FM_AUDIT_HASH_BYTES];
    unsigned char hash[FM_AUDIT_HASH_BYTES];
} fm_audit_line_t;

/*
 * Parses text[0..len) (no newline) as a line of the log: exactly the fields of the canonical text
 * in order, each string as fm_audit_put_string writes it (valid UTF-8, canonical escapes), each
 * integer in canonical form, then the prev and hash suffix. Returns NULL, or a short phrase saying
 * what is wrong ("the field after status is not input_digest").
 */
const char *fm_audit_line_parse(const char *text, size_t len, fm_audit_line_t *out);
/* The hash a parsed line should carry: BLAKE2b-256(key; prev || canonical text). */
void fm_audit_line_hash(const unsigned char *key, const unsigned char *prev,
                        const fm_audit_line_t *line, unsigned char *hash);

/* A sequential reader of the complete lines of a file region. */
typedef struct fm_audit_reader {
    int fd;
    const char *path;
    int64_t end;    /* no byte at or past this offset is read */
    int64_t offset; /* file offset of buf.data[0] */
    size_t pos;     /* next unread byte of buf */
    fm_buf_t buf;
    int64_t line_no; /* of the last line returned, counting from the reader's start */
} fm_audit_reader_t;

/* Starts reading fd (path for messages) at start, up to end. */
void fm_audit_reader_init(fm_audit_reader_t *r, int fd, const char *path, int64_t start,
                          int64_t end);
/*
 * The next complete line: 1 with *text and *len (without the newline; valid until the next call)
 * and *at (its file offset); 0 at the end, with *at the offset after the last complete line (a
 * final line without its newline, torn by a crash, is never returned); or a negative FM_E* code.
 */
int fm_audit_reader_next(fm_audit_reader_t *r, const char **text, size_t *len, int64_t *at,
                         fm_error_t *err);
void fm_audit_reader_free(fm_audit_reader_t *r);

/*
 * Reads the line of fd that ends (newline included) at byte end into out (without the newline);
 * *start receives its offset. FM_EDATA when the byte before end is not a newline, FM_EIO on read
 * errors.
 */
int fm_audit_read_line_before(int fd, const char *path, int64_t end, fm_buf_t *out, int64_t *start,
                              fm_error_t *err);

/* FM_EFORMAT when a non-empty fd does not start as a log line ("not a finmaas audit log"). */
int fm_audit_check_start(int fd, const char *path, int64_t size, fm_error_t *err);

#endif
