/*
 * The audit log's writer: fm_audit_open/close/append. Appenders copy their entry into one
 * allocation and link it onto a queue; one writer thread takes everything queued at once and
 * commits it as one group: BEGIN IMMEDIATE, read the head (the last seq and hash, whichever
 * process wrote them), give each entry the next seq and its chained hash, INSERT them, UPDATE the
 * head and its MAC, COMMIT with synchronous=FULL (one fsync of the WAL for the whole group). Only
 * then are the callbacks called, with the group's result, so that concurrent requests share one
 * fsync and none is answered before its entry is durable.
 *
 * Because the head is read inside the write transaction, another process appending to the same
 * log between two groups (a CLI command while the server runs) cannot fork the chain, and a group
 * that fails leaves nothing behind: the next one starts again from what the database holds.
 *
 * ASYNC mode calls the callback at append time and lets entries gather for up to
 * ASYNC_GATHER_MS before committing them, so the commit follows within 100 ms while busy servers
 * pay for few fsyncs. The entries of a failed ASYNC group, already acknowledged, go back to the
 * head of the queue and are retried after a pause; only at close are they given up (counted in
 * fm_audit_stats' lost).
 *
 * Strings are stored as valid UTF-8 (invalid bytes become U+FFFD) so that every export is valid
 * JSON; an entry is immutable once queued.
 */
#include "security/audit_internal.h"

#include "core/digest.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* An ASYNC group gathers this long after its first entry before it commits. */
#define ASYNC_GATHER_MS 40
/* An ASYNC group commits at once when this many entries are waiting. */
#define ASYNC_GATHER_MAX 4096
/* Appenders wait (back-pressure) while this many entries are queued. */
#define QUEUE_MAX 65536
/* Longest accepted string field, in bytes. */
#define FIELD_MAX (1 << 20)
/* Pause after a failed group before retrying ASYNC entries. */
#define RETRY_PAUSE_MS 100

enum {
    SQL_BEGIN,
    SQL_COMMIT,
    SQL_ROLLBACK,
    SQL_HEAD,
    SQL_INSERT,
    SQL_UPDATE_HEAD,
    SQL_LAST,
    SQL_COUNT
};

static const char *const statement_sql[SQL_COUNT] = {
    [SQL_BEGIN] = "BEGIN IMMEDIATE",
    [SQL_COMMIT] = "COMMIT",
    [SQL_ROLLBACK] = "ROLLBACK",
    [SQL_HEAD] = "SELECT seq, hash, mac FROM head WHERE id = 1",
    [SQL_INSERT] = "INSERT INTO entries(" FM_AUDIT_COLUMNS ") "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [SQL_UPDATE_HEAD] = "UPDATE head SET seq = ?1, hash = ?2, mac = ?3 WHERE id = 1",
    [SQL_LAST] = "SELECT " FM_AUDIT_COLUMNS " FROM entries ORDER BY seq DESC LIMIT 1",
};

/* A queued entry: the strings of row point into data. */
typedef struct pending {
    struct pending *next;
    fm_audit_done_fn done;
    void *ctx;
    fm_error_t *err_out;    /* fm_audit_append_sync's error, filled before done runs */
    int after_commit;       /* done runs after the commit (else it ran at append) */
    struct timespec queued; /* CLOCK_MONOTONIC */
    fm_audit_row_t row;
    char time[FM_AUDIT_TIME_SIZE];
    char data[];
} pending_t;

struct fm_audit {
    fm_audit_paths_t paths;
    unsigned char key[FM_AUDIT_KEY_BYTES];
    fm_audit_durability_t durability;
    sqlite3 *db; /* used by fm_audit_open, then by the writer thread alone */
    sqlite3_stmt *stmt[SQL_COUNT];

    pthread_mutex_t lock; /* guards everything below down to stats */
    pthread_cond_t work;  /* the writer waits for entries or stopping */
    pthread_cond_t room;  /* appenders wait for the queue to shrink */
    pending_t *first, *last;
    size_t queued;
    size_t waiting; /* queued entries whose callback waits for the commit */
    int stopping;
    fm_audit_stats_t stats;

    pthread_t writer;
    int writer_started;

    /* The writer thread's own state. It caches no last seq or hash: the head, read inside each
     * write transaction, is the chain state, so neither another process's appends nor a failed
     * group can leave a stale copy behind. */
    fm_buf_t text; /* canonical text of the entry being hashed */
};

/* ---- time helpers ---- */

static void timespec_add_ms(struct timespec *t, long ms) {
    t->tv_sec += ms / 1000;
    t->tv_nsec += (ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static double seconds_between(const struct timespec *a, const struct timespec *b) {
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) * 1e-9;
}

/* ---- UTF-8 ---- */

/* The length of the valid UTF-8 sequence at p (1 to 4), or 0 when the byte there starts none. */
static size_t utf8_sequence(const unsigned char *p) {
    unsigned char c = p[0];
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* Bytes needed for s once each invalid byte is replaced by U+FFFD (3 bytes), without the NUL.
 * The NUL ends every check early, so no read goes past the string. */
static size_t utf8_clean_length(const char *s) {
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t k = utf8_sequence(p);
        n += k ? k : 3;
        p += k ? k : 1;
    }
    return n;
}

/* Copies s with invalid bytes replaced; returns the end (after the NUL written there). */
static char *utf8_clean_copy(char *dst, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t k = utf8_sequence(p);
        if (k) {
            memcpy(dst, p, k);
            dst += k;
            p += k;
        } else {
            memcpy(dst, "\xef\xbf\xbd", 3);
            dst += 3;
            p++;
        }
    }
    *dst++ = '\0';
    return dst;
}

/* ---- statements ---- */

static sqlite3_stmt *statement(fm_audit_t *a, int which) {
    sqlite3_stmt *s = a->stmt[which];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static int run_done(fm_audit_t *a, sqlite3_stmt *s, const char *what, fm_error_t *err) {
    int src = sqlite3_step(s);
    while (src == SQLITE_ROW)
        src = sqlite3_step(s);
    int rc = src == SQLITE_DONE ? FM_OK : fm_audit_db_error(a->db, a->paths.db, src, what, err);
    sqlite3_reset(s);
    return rc;
}

static void bind_text(sqlite3_stmt *s, int index, const char *text) {
    if (text)
        sqlite3_bind_text(s, index, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, index);
}

/*
 * Reads the head row (the statement is left reset) and checks its MAC, giving the last seq and
 * hash. FM_EDATA when the head is missing, malformed or its MAC does not match.
 */
static int read_head(fm_audit_t *a, int64_t *seq, unsigned char *hash, fm_error_t *err) {
    sqlite3_stmt *s = statement(a, SQL_HEAD);
    int src = sqlite3_step(s);
    int rc = FM_OK;
    if (src == SQLITE_ROW) {
        unsigned char mac[FM_AUDIT_HASH_BYTES], want[FM_AUDIT_HASH_BYTES];
        *seq = sqlite3_column_int64(s, 0);
        if (sqlite3_column_type(s, 0) != SQLITE_INTEGER ||
            fm_audit_unhex((const char *)sqlite3_column_text(s, 1), hash, FM_AUDIT_HASH_BYTES) ||
            fm_audit_unhex((const char *)sqlite3_column_text(s, 2), mac, sizeof mac)) {
            rc = fm_error_set(err, FM_EDATA,
                              "%s: the log has been tampered with or damaged: the head row is "
                              "malformed (finmaas audit verify names the first bad entry)",
                              a->paths.db);
        } else {
            fm_audit_head_mac(a->key, *seq, hash, want);
            if (sodium_memcmp(mac, want, sizeof mac) != 0)
                rc = fm_error_set(err, FM_EDATA,
                                  "%s: the log has been tampered with or damaged: the head (seq "
                                  "%lld) does not carry a valid MAC (edited head, or audit.key is "
                                  "not this log's key)",
                                  a->paths.db, (long long)*seq);
        }
    } else if (src == SQLITE_DONE) {
        rc = fm_error_set(err, FM_EDATA,
                          "%s: the log has been tampered with or damaged: the head row is missing",
                          a->paths.db);
    } else {
        rc = fm_audit_db_error(a->db, a->paths.db, src, "cannot read the head", err);
    }
    sqlite3_reset(s);
    return rc;
}

/*
 * At open: the head must be valid and agree with the last entry, whose own hash must match its
 * contents. Read in one snapshot, so a concurrent writer in another process cannot make them
 * disagree.
 */
static int check_head(fm_audit_t *a, fm_error_t *err) {
    int src = sqlite3_exec(a->db, "BEGIN", NULL, NULL, NULL);
    if (src != SQLITE_OK)
        return fm_audit_db_error(a->db, a->paths.db, src, "cannot start a transaction", err);
    int64_t seq = 0;
    unsigned char hash[FM_AUDIT_HASH_BYTES];
    int rc = read_head(a, &seq, hash, err);
    char problem[160] = "";
    if (!rc) {
        sqlite3_stmt *s = statement(a, SQL_LAST);
        src = sqlite3_step(s);
        if (src == SQLITE_ROW) {
            fm_audit_row_t row;
            const char *prev_hex, *hash_hex;
            unsigned char prev[FM_AUDIT_HASH_BYTES], stored[FM_AUDIT_HASH_BYTES];
            unsigned char computed[FM_AUDIT_HASH_BYTES];
            fm_audit_row_read(s, &row, &prev_hex, &hash_hex);
            fm_buf_reset(&a->text);
            if (row.seq != seq)
                snprintf(problem, sizeof problem, "the head says seq %lld, the last entry is %lld",
                         (long long)seq, (long long)row.seq);
            else if (fm_audit_unhex(prev_hex, prev, sizeof prev) ||
                     fm_audit_unhex(hash_hex, stored, sizeof stored) ||
                     sodium_memcmp(stored, hash, sizeof hash) != 0)
                snprintf(problem, sizeof problem, "the hash of seq %lld differs from the head's",
                         (long long)seq);
            else if (fm_audit_canonical(&a->text, &row))
                rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", a->paths.db);
            else {
                fm_audit_entry_hash(a->key, prev, a->text.data, a->text.len, computed);
                if (sodium_memcmp(computed, stored, sizeof stored) != 0)
                    snprintf(problem, sizeof problem,
                             "the hash of seq %lld does not match its contents", (long long)seq);
            }
        } else if (src == SQLITE_DONE) {
            unsigned char zero[FM_AUDIT_HASH_BYTES] = {0};
            if (seq != 0 || sodium_memcmp(hash, zero, sizeof zero) != 0)
                snprintf(problem, sizeof problem, "the head says seq %lld but there are no entries",
                         (long long)seq);
        } else {
            rc = fm_audit_db_error(a->db, a->paths.db, src, "cannot read the last entry", err);
        }
        sqlite3_reset(s);
    }
    sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL);
    if (!rc && problem[0])
        rc = fm_error_set(err, FM_EDATA,
                          "%s: the log has been tampered with or damaged: %s (finmaas audit "
                          "verify names the first bad entry)",
                          a->paths.db, problem);
    return rc;
}

/* ---- the group commit ---- */

static int insert_entry(fm_audit_t *a, const fm_audit_row_t *row, const char *prev_hex,
                        const char *hash_hex, fm_error_t *err) {
    sqlite3_stmt *s = statement(a, SQL_INSERT);
    sqlite3_bind_int64(s, 1 + FM_AUDIT_COL_SEQ, row->seq);
    bind_text(s, 1 + FM_AUDIT_COL_TIME, row->time);
    bind_text(s, 1 + FM_AUDIT_COL_KEY_ID, row->key_id);
    bind_text(s, 1 + FM_AUDIT_COL_ROLE, row->role);
    bind_text(s, 1 + FM_AUDIT_COL_ACTION, row->action);
    bind_text(s, 1 + FM_AUDIT_COL_MODEL, row->model);
    sqlite3_bind_int64(s, 1 + FM_AUDIT_COL_VERSION, row->version);
    bind_text(s, 1 + FM_AUDIT_COL_REQUEST_ID, row->request_id);
    sqlite3_bind_int64(s, 1 + FM_AUDIT_COL_STATUS, row->status);
    bind_text(s, 1 + FM_AUDIT_COL_INPUT_DIGEST, row->input_digest);
    bind_text(s, 1 + FM_AUDIT_COL_OUTPUT, row->output);
    bind_text(s, 1 + FM_AUDIT_COL_DETAIL, row->detail);
    bind_text(s, 1 + FM_AUDIT_COL_PREV, prev_hex);
    bind_text(s, 1 + FM_AUDIT_COL_HASH, hash_hex);
    int src = sqlite3_step(s);
    int rc = FM_OK;
    if ((src & 0xff) == SQLITE_CONSTRAINT)
        rc = fm_error_set(err, FM_EDATA,
                          "%s: the log has been tampered with or damaged: entry seq %lld already "
                          "exists beyond the head",
                          a->paths.db, (long long)row->seq);
    else if (src != SQLITE_DONE)
        rc = fm_audit_db_error(a->db, a->paths.db, src, "cannot insert an entry", err);
    sqlite3_reset(s);
    return rc;
}

/*
 * Commits the group as one transaction, numbering and chaining its entries after the head read
 * inside that transaction. On failure everything is rolled back: the next group starts again from
 * the head as the database holds it.
 */
static int commit_group(fm_audit_t *a, pending_t *group, fm_error_t *err) {
    int rc = run_done(a, statement(a, SQL_BEGIN), "cannot start a transaction", err);
    if (rc) return rc;
    int64_t seq = 0;
    unsigned char hash[FM_AUDIT_HASH_BYTES];
    rc = read_head(a, &seq, hash, err);
    char prev_hex[FM_AUDIT_HASH_HEX], hash_hex[FM_AUDIT_HASH_HEX];
    for (pending_t *p = group; p && !rc; p = p->next) {
        p->row.seq = ++seq;
        fm_buf_reset(&a->text);
        if (fm_audit_canonical(&a->text, &p->row)) {
            rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", a->paths.db);
            break;
        }
        unsigned char prev[FM_AUDIT_HASH_BYTES];
        memcpy(prev, hash, sizeof prev);
        fm_audit_entry_hash(a->key, prev, a->text.data, a->text.len, hash);
        fm_audit_hex(prev, sizeof prev, prev_hex);
        fm_audit_hex(hash, sizeof hash, hash_hex);
        rc = insert_entry(a, &p->row, prev_hex, hash_hex, err);
    }
    if (!rc) {
        unsigned char mac[FM_AUDIT_HASH_BYTES];
        char mac_hex[FM_AUDIT_HASH_HEX];
        fm_audit_head_mac(a->key, seq, hash, mac);
        fm_audit_hex(mac, sizeof mac, mac_hex);
        sqlite3_stmt *s = statement(a, SQL_UPDATE_HEAD);
        sqlite3_bind_int64(s, 1, seq);
        bind_text(s, 2, hash_hex);
        bind_text(s, 3, mac_hex);
        rc = run_done(a, s, "cannot update the head", err);
        if (!rc && sqlite3_changes(a->db) != 1)
            rc = fm_error_set(err, FM_EDATA,
                              "%s: the log has been tampered with or damaged: the head row is "
                              "missing",
                              a->paths.db);
    }
    if (!rc) rc = run_done(a, statement(a, SQL_COMMIT), "cannot commit", err);
    if (rc) {
        if (!sqlite3_get_autocommit(a->db))
            run_done(a, statement(a, SQL_ROLLBACK), "cannot roll back", NULL);
        return rc;
    }
    return FM_OK;
}

/*
 * Runs the callbacks of a committed (or failed) group and frees its entries. Failed entries that
 * were already acknowledged (ASYNC) are returned, in order, to be queued again unless giving up.
 */
static pending_t *finish_group(pending_t *group, int rc, const fm_error_t *err, int give_up,
                               size_t *lost) {
    pending_t *retry = NULL, **tail = &retry;
    *lost = 0;
    while (group) {
        pending_t *p = group;
        group = p->next;
        if (p->after_commit) {
            if (p->err_out && rc) *p->err_out = *err;
            if (p->done) p->done(p->ctx, rc);
            free(p);
        } else if (rc && !give_up) {
            p->next = NULL;
            *tail = p;
            tail = &p->next;
        } else {
            *lost += rc != 0;
            free(p);
        }
    }
    return retry;
}

/* In ASYNC mode, waits (lock held) until the group's gathering time is over. */
static void gather(fm_audit_t *a) {
    struct timespec deadline = a->first->queued;
    timespec_add_ms(&deadline, ASYNC_GATHER_MS);
    while (!a->stopping && a->waiting == 0 && a->queued < ASYNC_GATHER_MAX) {
        if (pthread_cond_timedwait(&a->work, &a->lock, &deadline) == ETIMEDOUT) break;
    }
}

static void *writer_main(void *arg) {
    fm_audit_t *a = arg;
    fm_error_t err;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (!a->first && !a->stopping)
            pthread_cond_wait(&a->work, &a->lock);
        if (!a->first) break;
        if (a->durability == FM_AUDIT_ASYNC) gather(a);
        pending_t *group = a->first;
        size_t n = a->queued;
        int give_up = a->stopping;
        a->first = a->last = NULL;
        a->queued = a->waiting = 0;
        pthread_cond_broadcast(&a->room);
        pthread_mutex_unlock(&a->lock);

        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        fm_error_clear(&err);
        int rc = commit_group(a, group, &err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        /* The counters first, so that whoever a callback wakes sees them up to date. */
        double took = seconds_between(&t0, &t1);
        pthread_mutex_lock(&a->lock);
        if (rc) {
            a->stats.failures++;
        } else {
            a->stats.commits++;
            a->stats.entries += n;
            a->stats.commit_seconds += took;
            if (took > a->stats.max_commit_seconds) a->stats.max_commit_seconds = took;
        }
        pthread_mutex_unlock(&a->lock);
        size_t lost = 0;
        pending_t *retry = finish_group(group, rc, &err, give_up, &lost);

        pthread_mutex_lock(&a->lock);
        a->stats.lost += lost;
        if (retry) {
            /* Back at the head of the queue, ahead of what came meanwhile, keeping the order. */
            size_t k = 0;
            pending_t *end = retry;
            for (k = 1; end->next; k++)
                end = end->next;
            end->next = a->first;
            if (!a->first) a->last = end;
            a->first = retry;
            a->queued += k;
            struct timespec pause;
            clock_gettime(CLOCK_MONOTONIC, &pause);
            timespec_add_ms(&pause, RETRY_PAUSE_MS);
            while (!a->stopping &&
                   pthread_cond_timedwait(&a->work, &a->lock, &pause) != ETIMEDOUT) {
            }
        }
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* ---- open, close, append ---- */

/* mkdir -p with mode 0750 (the audit log's directory is the home; others have no business). */
static int make_home(const char *home, fm_error_t *err) {
    char path[FM_AUDIT_PATH_MAX];
    snprintf(path, sizeof path, "%s", home);
    size_t n = strlen(path);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char saved = path[i];
        path[i] = '\0';
        struct stat st;
        if (mkdir(path, 0750) != 0 && errno != EEXIST)
            return fm_error_set(err, FM_EIO, "%s: cannot create directory: %s", path,
                                strerror(errno));
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            return fm_error_set(err, FM_EIO, "%s: not a directory", path);
        path[i] = saved;
    }
    return FM_OK;
}

static void release(fm_audit_t *a) {
    for (int i = 0; i < SQL_COUNT; i++)
        sqlite3_finalize(a->stmt[i]);
    sqlite3_close(a->db);
    fm_buf_free(&a->text);
    sodium_memzero(a->key, sizeof a->key);
    free(a);
}

int fm_audit_open(const char *home, fm_audit_durability_t durability, fm_audit_t **out,
                  fm_error_t *err) {
    *out = NULL;
    if (durability != FM_AUDIT_DURABLE && durability != FM_AUDIT_ASYNC)
        return fm_error_set(err, FM_EINVAL, "audit log: unknown durability %d", (int)durability);
    if (fm_digest_library_init())
        return fm_error_set(err, FM_EUNSUPPORTED, "audit log: cannot initialise libsodium");
    fm_audit_t *a = calloc(1, sizeof *a);
    if (!a) return fm_error_set(err, FM_ENOMEM, "audit log: out of memory");
    a->durability = durability;
    int rc = fm_audit_paths_init(&a->paths, home, err);
    if (!rc) rc = make_home(home, err);
    if (!rc) rc = fm_audit_key_load(&a->paths, 1, a->key, err);
    if (!rc) rc = fm_audit_db_open(&a->paths, 1, a->key, &a->db, err);
    for (int i = 0; !rc && i < SQL_COUNT; i++) {
        int src = sqlite3_prepare_v3(a->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                     &a->stmt[i], NULL);
        if (src != SQLITE_OK)
            rc = fm_error_set(err, fm_audit_status_of(src), "%s: not a finmaas audit log (%s)",
                              a->paths.db, sqlite3_errmsg(a->db));
    }
    if (!rc) rc = check_head(a, err);
    if (rc) {
        release(a);
        return rc;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->work, &attr);
    pthread_cond_init(&a->room, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&a->writer, NULL, writer_main, a) != 0) {
        pthread_cond_destroy(&a->work);
        pthread_cond_destroy(&a->room);
        pthread_mutex_destroy(&a->lock);
        release(a);
        return fm_error_set(err, FM_EIO, "audit log: cannot start the writer thread");
    }
    a->writer_started = 1;
    *out = a;
    return FM_OK;
}

void fm_audit_close(fm_audit_t *a) {
    if (!a) return;
    pthread_mutex_lock(&a->lock);
    a->stopping = 1;
    pthread_cond_broadcast(&a->work);
    pthread_cond_broadcast(&a->room);
    pthread_mutex_unlock(&a->lock);
    if (a->writer_started) pthread_join(a->writer, NULL);
    pthread_cond_destroy(&a->work);
    pthread_cond_destroy(&a->room);
    pthread_mutex_destroy(&a->lock);
    release(a);
}

/* Copies s (cleaned of invalid UTF-8) to *cursor and returns the copy, or NULL for NULL. */
static const char *copy_field(char **cursor, const char *s) {
    if (!s) return NULL;
    char *start = *cursor;
    *cursor = utf8_clean_copy(start, s);
    return start;
}

/* Queues an entry. after_commit: the callback waits for the commit (else it runs here). */
static int enqueue(fm_audit_t *a, const fm_audit_entry_t *e, fm_audit_done_fn done, void *ctx,
                   fm_error_t *err_out, int after_commit) {
    if (!a || !e || !e->action || !e->action[0]) return FM_EINVAL;
    const char *key_id = e->key_id && e->key_id[0] ? e->key_id : "cli";
    const char *fields[] = {key_id,        e->role,         e->action, e->model,
                            e->request_id, e->input_digest, e->output, e->detail};
    size_t bytes = 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (!fields[i]) continue;
        if (strnlen(fields[i], FIELD_MAX + 1) > FIELD_MAX) return FM_ELIMIT;
        bytes += utf8_clean_length(fields[i]) + 1;
    }
    pending_t *p = malloc(sizeof *p + bytes);
    if (!p) return FM_ENOMEM;
    p->next = NULL;
    p->done = done;
    p->ctx = ctx;
    p->err_out = err_out;
    p->after_commit = after_commit;
    clock_gettime(CLOCK_MONOTONIC, &p->queued);
    fm_audit_time_now(p->time);
    char *cursor = p->data;
    p->row.seq = 0;
    p->row.time = p->time;
    p->row.key_id = copy_field(&cursor, key_id);
    p->row.role = copy_field(&cursor, e->role);
    p->row.action = copy_field(&cursor, e->action);
    p->row.model = copy_field(&cursor, e->model);
    p->row.version = e->version;
    p->row.request_id = copy_field(&cursor, e->request_id);
    p->row.status = e->status;
    p->row.input_digest = copy_field(&cursor, e->input_digest);
    p->row.output = copy_field(&cursor, e->output);
    p->row.detail = copy_field(&cursor, e->detail);

    pthread_mutex_lock(&a->lock);
    /* Back-pressure, except on the writer thread itself (a callback that appends): it would wait
     * for itself. */
    while (a->queued >= QUEUE_MAX && !a->stopping && !pthread_equal(pthread_self(), a->writer))
        pthread_cond_wait(&a->room, &a->lock);
    if (a->stopping) {
        pthread_mutex_unlock(&a->lock);
        free(p);
        return FM_EIO;
    }
    if (a->last)
        a->last->next = p;
    else
        a->first = p;
    a->last = p;
    a->queued++;
    a->waiting += after_commit != 0;
    pthread_cond_signal(&a->work);
    pthread_mutex_unlock(&a->lock);
    if (!after_commit && done) done(ctx, 0);
    return FM_OK;
}

int fm_audit_append(fm_audit_t *a, const fm_audit_entry_t *entry, fm_audit_done_fn done,
                    void *ctx) {
    return enqueue(a, entry, done, ctx, NULL, a && a->durability == FM_AUDIT_DURABLE);
}

/* What fm_audit_append_sync waits on. */
typedef struct sync_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int finished;
    int rc;
} sync_wait_t;

static void sync_done(void *ctx, int rc) {
    sync_wait_t *w = ctx;
    pthread_mutex_lock(&w->lock);
    w->finished = 1;
    w->rc = rc;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int fm_audit_append_sync(fm_audit_t *a, const fm_audit_entry_t *entry, fm_error_t *err) {
    if (!a) return fm_error_set(err, FM_EINVAL, "audit log: not open");
    if (pthread_equal(pthread_self(), a->writer))
        return fm_error_set(err, FM_ESTATE,
                            "%s: fm_audit_append_sync called from an audit callback (it would "
                            "wait for itself)",
                            a->paths.db);
    sync_wait_t w = {.finished = 0, .rc = 0};
    fm_error_t writer_err;
    fm_error_clear(&writer_err);
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    int rc = enqueue(a, entry, sync_done, &w, &writer_err, 1);
    if (!rc) {
        pthread_mutex_lock(&w.lock);
        while (!w.finished)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        rc = w.rc;
    }
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    if (!rc) return FM_OK;
    if (writer_err.code) {
        if (err) *err = writer_err;
        return rc;
    }
    switch (rc) {
    case FM_EINVAL:
        return fm_error_set(err, rc, "%s: an audit entry needs an action", a->paths.db);
    case FM_ELIMIT:
        return fm_error_set(err, rc, "%s: an audit entry field is longer than %d bytes",
                            a->paths.db, FIELD_MAX);
    case FM_EIO:
        return fm_error_set(err, rc, "%s: the audit log is closing", a->paths.db);
    default:
        return fm_error_set(err, rc, "%s: cannot append: %s", a->paths.db, fm_strerror(rc));
    }
}

void fm_audit_stats(fm_audit_t *a, fm_audit_stats_t *out) {
    memset(out, 0, sizeof *out);
    if (!a) return;
    pthread_mutex_lock(&a->lock);
    *out = a->stats;
    out->queued = a->queued;
    pthread_mutex_unlock(&a->lock);
}
