/*
 * The audit log's writer: fm_audit_open/close/append. Appenders format their entry's canonical
 * text (all but its seq) into a recycled buffer and link it onto a queue; one writer thread takes
 * everything queued at once and writes it as one group:
 *
 *   flock(audit.log, LOCK_EX); if the log's size is not what this writer left, another process
 *   appended: re-read the head and check the log from there (resync); number and chain the
 *   entries; ONE write of all their lines (O_APPEND); ONE fdatasync; pwrite the next head slot;
 *   unlock; then the callbacks, with the group's result.
 *
 * So concurrent requests share one fsync, none is answered before its entry is durable, and a CLI
 * command appending while a server runs cannot fork the chain. A group that fails is cut off the
 * log again (ftruncate to where it began); should even that fail, the next group resyncs.
 *
 * The head slots alternate, so a torn slot write leaves the other, one group older, intact. They
 * are not fsync'ed per group: an entry beyond the head that chains is as valid as one before it
 * (a crash between the log's fsync and the head's write leaves exactly that), and the writer
 * advances the head over such entries when it opens. Once the writer has been idle for
 * HEAD_SYNC_IDLE_MS, at least every HEAD_SYNC_EVERY_MS while busy, and at close, both slots get
 * the current head and the head file is fsync'ed: then neither slot lags, so garbling one cannot
 * uncover entries to delete. A final line without its newline (a crash mid-write; never
 * acknowledged, since its fsync had not returned) is cut away by resync.
 *
 * DURABLE mode paces its groups while requests are concurrent: one starts at most every
 * DURABLE_COMMIT_INTERVAL_US (200 us), so under load more requests share each fdatasync, while a
 * lone client's entries are committed at once.
 *
 * ASYNC mode calls the callback at append time and lets entries gather for up to
 * ASYNC_GATHER_MS before committing them, so the commit follows within 100 ms while busy servers
 * pay for few fsyncs. The entries of a failed ASYNC group, already acknowledged, go back to the
 * head of the queue and are retried after a pause; only at close are they given up (counted in
 * fm_audit_stats' lost).
 *
 * The appenders are the server's request threads, so an append costs little: the text is
 * formatted once (ASCII copied in runs, the UTF-8 cleaning only where a byte >= 0x80 appears),
 * buffers come from a free list the writer refills, and the writer's condition variable is
 * signalled only when it waits for work.
 */
#include "security/audit_internal.h"

#include "core/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* An ASYNC group gathers this long after its first entry before it commits. */
#define ASYNC_GATHER_MS 40
/* An ASYNC group commits at once when this many entries are waiting. */
#define ASYNC_GATHER_MAX 4096
/* Appenders wait (back-pressure) while this many entries are queued. */
#define QUEUE_MAX 65536
/* Longest accepted string field, in bytes. */
#define FIELD_MAX (1 << 20)
/* DURABLE, while concurrent (the last group held at least DURABLE_PACE_MIN_GROUP entries): a
 * group commit starts at most every DURABLE_COMMIT_INTERVAL_US. While the last one started less
 * than this long ago, the writer lets the queue grow until then (or until DURABLE_GATHER_MAX
 * entries wait), so that concurrent requests share fewer fdatasyncs: measured on a 2-core VM at
 * 18,000 requests/s, the writer's CPU fell from 0.34 to 0.22 CPU, for about 0.1 ms more latency,
 * and peak throughput did not drop. A lone client (groups of one) is never held back: its
 * requests come one after the other, so waiting would only add to each one's latency. */
#define DURABLE_COMMIT_INTERVAL_US 200
#define DURABLE_PACE_MIN_GROUP     2
#define DURABLE_GATHER_MAX         4096
/* Pause after a failed group before retrying ASYNC entries. */
#define RETRY_PAUSE_MS 100
/* Both head slots are written and fsync'ed once the writer has been idle this long... */
#define HEAD_SYNC_IDLE_MS 50
/* ... and at least this often while it is busy. */
#define HEAD_SYNC_EVERY_MS 1000
/* Entries whose text fits this many bytes (nearly all) live in recycled buffers. */
#define SLOT_TEXT 1024
/* Recycled buffers kept at most (about 4 MiB). */
#define FREE_SLOTS_MAX 4096
/* An entry is formatted on the appender's stack first when it fits. */
#define STACK_TEXT 8192

/* A queued entry. */
typedef struct pending {
    struct pending *next;
    fm_audit_done_fn done;
    void *ctx;
    fm_error_t *err_out;    /* fm_audit_append_sync's error, filled before done runs */
    int after_commit;       /* done runs after the commit (else it ran at append) */
    int recycle;            /* a SLOT_TEXT buffer, returned to the free list when done */
    struct timespec queued; /* CLOCK_MONOTONIC; ASYNC mode only */
    size_t len;
    char text[]; /* the canonical text after seq, without the brace (fm_audit_format_fields) */
} pending_t;

/* What the writer thread is doing, so that appenders signal it only when it waits for them. */
enum { WRITER_BUSY, WRITER_IDLE, WRITER_GATHERING };

struct fm_audit {
    fm_audit_paths_t paths;
    unsigned char key[FM_AUDIT_KEY_BYTES];
    fm_audit_durability_t durability;
    int log_fd;  /* audit.log, O_RDWR | O_APPEND */
    int head_fd; /* audit.head */

    pthread_mutex_t lock; /* guards everything below down to free_count */
    pthread_cond_t work;  /* the writer waits for entries or stopping */
    pthread_cond_t room;  /* appenders wait for the queue to shrink */
    pending_t *first, *last;
    size_t queued;
    size_t waiting; /* queued entries whose callback waits for the commit */
    int writer_state;
    int stopping;
    fm_audit_stats_t stats;
    pending_t *free_slots; /* recycled SLOT_TEXT buffers */
    size_t free_count;

    pthread_t writer;
    int writer_started;

    /* The writer thread's own state (fm_audit_open's before the thread starts). All of it is
     * checked against the files under the lock before each group: log_size against the log's
     * size, and on any difference everything is read again from the files (resync). */
    int64_t log_size;    /* the log's size after this writer's last group; -1: unknown */
    fm_audit_head_t tip; /* the last entry: seq, the log's length after it, its hash */
    int next_slot;       /* the head slot the next group writes */
    int head_behind;     /* a slot or the disk lags behind tip */
    struct timespec head_synced;
    fm_buf_t group;   /* the lines of the group being written */
    fm_buf_t scratch; /* a line read back from the log */
};

/* ---- time helpers ---- */

static void timespec_add_us(struct timespec *t, long us) {
    t->tv_sec += us / 1000000;
    t->tv_nsec += (us % 1000000) * 1000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static double seconds_between(const struct timespec *a, const struct timespec *b) {
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) * 1e-9;
}

/* ---- the files ---- */

/* FM_EDATA for a log the writer must not append to until someone has looked at it. */
static int tampered(fm_audit_t *a, fm_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int tampered(fm_audit_t *a, fm_error_t *err, const char *fmt, ...) {
    char what[FM_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return fm_error_set(err, FM_EDATA,
                        "%s: the log has been tampered with or damaged: %s (finmaas audit verify "
                        "names the first bad entry)",
                        a->paths.log, what);
}

static int write_all(int fd, const char *data, size_t n, const char *path, fm_error_t *err) {
    while (n) {
        ssize_t w = write(fd, data, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return fm_error_set(err, FM_EIO, "%s: cannot write: %s", path, strerror(errno));
        data += w;
        n -= (size_t)w;
    }
    return FM_OK;
}

/* Writes tip into a head slot. */
static int write_slot(fm_audit_t *a, int slot, fm_error_t *err) {
    unsigned char bytes[FM_AUDIT_SLOT_BYTES];
    fm_audit_slot_encode(a->key, &a->tip, bytes);
    size_t put = 0;
    while (put < sizeof bytes) {
        ssize_t w = pwrite(a->head_fd, bytes + put, sizeof bytes - put,
                           (off_t)slot * FM_AUDIT_SLOT_BYTES + (off_t)put);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return fm_error_set(err, FM_EIO, "%s: cannot write: %s", a->paths.head,
                                w < 0 ? strerror(errno) : "nothing written");
        put += (size_t)w;
    }
    return FM_OK;
}

/* Both slots get tip, then the head file is fsync'ed. The slot written first is the one the
 * next group would have written, so at every moment one slot holds a complete head. */
static int sync_head(fm_audit_t *a, fm_error_t *err) {
    int rc = write_slot(a, a->next_slot, err);
    if (!rc) rc = write_slot(a, a->next_slot ^ 1, err);
    if (!rc && fdatasync(a->head_fd) != 0)
        rc = fm_error_set(err, FM_EIO, "%s: cannot sync: %s", a->paths.head, strerror(errno));
    if (!rc) {
        a->head_behind = 0;
        clock_gettime(CLOCK_MONOTONIC, &a->head_synced);
    }
    return rc;
}

/*
 * Reads the chain's state from the files, under the exclusive lock, when this writer does not
 * know it (at open) or another process has appended since its last group: the head (the valid
 * slot with the larger seq) must point at the end of an entry whose seq and hash it records and
 * whose hash matches its contents; complete lines beyond it must chain on (a process died between
 * its fsync and its head write: the head is advanced over them); a final line without its newline
 * is cut away. Anything else there is tampering: FM_EDATA, and the log stays as it is.
 */
static int resync(fm_audit_t *a, int64_t size, fm_error_t *err) {
    a->log_size = -1;
    unsigned char bytes[FM_AUDIT_HEAD_BYTES];
    ssize_t n = fm_audit_read_head_bytes(a->head_fd, bytes);
    if (n < 0)
        return fm_error_set(err, FM_EIO, "%s: cannot read: %s", a->paths.head, strerror(errno));
    fm_audit_slots_t slots;
    fm_audit_slots_decode(a->key, bytes, (size_t)n, &slots);
    if (slots.best < 0) {
        if (n == 0 && size == 0) {
            /* A new log: the head is written before the first entry. */
            memset(&a->tip, 0, sizeof a->tip);
            a->next_slot = 0;
            int rc = sync_head(a, err);
            if (rc) return rc;
            fm_audit_fsync_directory(a->paths.log);
            a->log_size = 0;
            return FM_OK;
        }
        if (n == 0)
            return tampered(a, err, "%s is empty or missing while the log holds %lld bytes",
                            a->paths.head, (long long)size);
        return tampered(a, err,
                        "neither head slot carries a valid MAC (edited head, or audit.key is not "
                        "this log's key)");
    }
    fm_audit_head_t head = slots.slot[slots.best];
    if (head.length > size)
        return tampered(a, err,
                        "the head ends the log at seq %lld, byte %lld, but it has %lld bytes "
                        "(entries deleted at the end)",
                        (long long)head.seq, (long long)head.length, (long long)size);
    if (head.seq == 0 && head.length != 0)
        return tampered(a, err, "the head says seq 0 but ends at byte %lld",
                        (long long)head.length);
    if (head.seq > 0) {
        int64_t start = 0;
        int rc = fm_audit_read_line_before(a->log_fd, a->paths.log, head.length, &a->scratch,
                                           &start, err);
        if (rc == FM_EDATA)
            return tampered(a, err, "no entry ends where the head says seq %lld ends (byte %lld)",
                            (long long)head.seq, (long long)head.length);
        if (rc) return rc;
        fm_audit_line_t line;
        unsigned char computed[FM_AUDIT_HASH_BYTES];
        const char *why = fm_audit_line_parse(a->scratch.data, a->scratch.len, &line);
        if (why)
            return tampered(a, err, "the entry the head points to (seq %lld) is malformed: %s",
                            (long long)head.seq, why);
        if (line.seq != head.seq)
            return tampered(a, err, "the head says seq %lld, the entry it points to is seq %lld",
                            (long long)head.seq, (long long)line.seq);
        if (sodium_memcmp(line.hash, head.hash, FM_AUDIT_HASH_BYTES) != 0)
            return tampered(a, err, "the hash of seq %lld differs from the head's",
                            (long long)head.seq);
        fm_audit_line_hash(a->key, line.prev, &line, computed);
        if (sodium_memcmp(computed, line.hash, FM_AUDIT_HASH_BYTES) != 0)
            return tampered(a, err, "the hash of seq %lld does not match its contents",
                            (long long)head.seq);
    }
    a->tip = head;
    fm_audit_reader_t r;
    fm_audit_reader_init(&r, a->log_fd, a->paths.log, head.length, size);
    const char *text;
    size_t len;
    int64_t at = head.length;
    int rc, beyond = 0;
    while ((rc = fm_audit_reader_next(&r, &text, &len, &at, err)) == 1) {
        fm_audit_line_t line;
        unsigned char computed[FM_AUDIT_HASH_BYTES];
        const char *why = fm_audit_line_parse(text, len, &line);
        if (why) {
            rc = tampered(a, err,
                          "the line after seq %lld (byte %lld), beyond the head, is not an "
                          "entry: %s",
                          (long long)a->tip.seq, (long long)at, why);
            break;
        }
        fm_audit_line_hash(a->key, a->tip.hash, &line, computed);
        if (line.seq != a->tip.seq + 1 ||
            sodium_memcmp(line.prev, a->tip.hash, FM_AUDIT_HASH_BYTES) != 0 ||
            sodium_memcmp(computed, line.hash, FM_AUDIT_HASH_BYTES) != 0) {
            rc = tampered(a, err,
                          "seq %lld (byte %lld), beyond the head, does not chain on seq "
                          "%lld (an inserted entry)",
                          (long long)line.seq, (long long)at, (long long)a->tip.seq);
            break;
        }
        a->tip.seq = line.seq;
        a->tip.length = at + (int64_t)len + 1;
        memcpy(a->tip.hash, line.hash, FM_AUDIT_HASH_BYTES);
        beyond = 1;
    }
    fm_audit_reader_free(&r);
    if (rc < 0) return rc;
    if (at < size && ftruncate(a->log_fd, (off_t)at) != 0)
        return fm_error_set(err, FM_EIO, "%s: cannot cut the line torn at byte %lld: %s",
                            a->paths.log, (long long)at, strerror(errno));
    a->next_slot = slots.best ^ 1;
    a->head_behind = 0;
    if (beyond) {
        rc = sync_head(a, err);
        if (rc) return rc;
    }
    a->log_size = at;
    return FM_OK;
}

/* Takes the lock and resyncs when the log is not as this writer left it. */
static int lock_and_check(fm_audit_t *a, fm_error_t *err) {
    int rc = fm_audit_lock(a->log_fd, LOCK_EX, a->paths.log, err);
    if (rc) return rc;
    struct stat st;
    if (fstat(a->log_fd, &st) != 0)
        rc = fm_error_set(err, FM_EIO, "%s: cannot stat: %s", a->paths.log, strerror(errno));
    else if ((int64_t)st.st_size != a->log_size)
        rc = resync(a, (int64_t)st.st_size, err);
    if (rc) fm_audit_unlock(a->log_fd);
    return rc;
}

/* ---- the group commit ---- */

/* Writes "{\"seq\":" and seq; returns the length. */
static size_t seq_prefix(char *out, int64_t seq) {
    memcpy(out, FM_AUDIT_LINE_START, sizeof FM_AUDIT_LINE_START - 1);
    char *d = out + sizeof FM_AUDIT_LINE_START - 1;
    char digits[24];
    int n = 0;
    uint64_t u = (uint64_t)seq;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n)
        *d++ = digits[--n];
    return (size_t)(d - out);
}

/* Numbers and chains the group's entries into a->group, one line each. */
static int build_group(fm_audit_t *a, pending_t *group, fm_audit_head_t *next, fm_error_t *err) {
    fm_buf_reset(&a->group);
    *next = a->tip;
    for (pending_t *p = group; p; p = p->next) {
        char prefix[32];
        size_t n = seq_prefix(prefix, ++next->seq);
        size_t line_len = n + p->len + FM_AUDIT_SUFFIX_BYTES + 1;
        if (fm_buf_reserve(&a->group, line_len))
            return fm_error_set(err, FM_ENOMEM, "%s: out of memory", a->paths.log);
        char *line = a->group.data + a->group.len;
        memcpy(line, prefix, n);
        memcpy(line + n, p->text, p->len);
        unsigned char hash[FM_AUDIT_HASH_BYTES];
        crypto_generichash_state st;
        crypto_generichash_init(&st, a->key, FM_AUDIT_KEY_BYTES, FM_AUDIT_HASH_BYTES);
        crypto_generichash_update(&st, next->hash, FM_AUDIT_HASH_BYTES);
        crypto_generichash_update(&st, (const unsigned char *)line, n + p->len);
        crypto_generichash_update(&st, (const unsigned char *)"}", 1);
        crypto_generichash_final(&st, hash, FM_AUDIT_HASH_BYTES);
        char *s = line + n + p->len;
        memcpy(s, ",\"prev\":\"", 9);
        fm_audit_hex(next->hash, FM_AUDIT_HASH_BYTES, s + 9);
        memcpy(s + 73, "\",\"hash\":\"", 10);
        fm_audit_hex(hash, FM_AUDIT_HASH_BYTES, s + 83);
        memcpy(s + 147, "\"}\n", 3);
        a->group.len += line_len;
        memcpy(next->hash, hash, FM_AUDIT_HASH_BYTES);
    }
    next->length = a->log_size + (int64_t)a->group.len;
    return FM_OK;
}

/*
 * Commits the group: under the lock, numbered after the log's last entry, one write, one
 * fdatasync, one head slot. On failure nothing of the group stays in the log.
 */
static int commit_group(fm_audit_t *a, pending_t *group, fm_error_t *err) {
    int rc = lock_and_check(a, err);
    if (rc) return rc;
    fm_audit_head_t next;
    rc = build_group(a, group, &next, err);
    if (!rc) rc = write_all(a->log_fd, a->group.data, a->group.len, a->paths.log, err);
    if (!rc && fdatasync(a->log_fd) != 0)
        rc = fm_error_set(err, FM_EIO, "%s: cannot sync: %s", a->paths.log, strerror(errno));
    if (rc) {
        /* Cut the log back; should that fail too, the next group resyncs, keeping whole entries
         * that chain (their callbacks said failure: the log over-reports, never under-reports)
         * and cutting a torn line. */
        if (ftruncate(a->log_fd, (off_t)a->log_size) != 0) a->log_size = -1;
        fm_audit_unlock(a->log_fd);
        return rc;
    }
    a->tip = next;
    a->log_size = next.length;
    /* The head is not needed for durability: a failed slot write only leaves it behind. */
    if (write_slot(a, a->next_slot, NULL) == 0) a->next_slot ^= 1;
    a->head_behind = 1;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (seconds_between(&a->head_synced, &now) * 1000 >= HEAD_SYNC_EVERY_MS) sync_head(a, NULL);
    fm_audit_unlock(a->log_fd);
    return FM_OK;
}

/* Brings both head slots up to date and fsyncs them, unless another process appended since. */
static void settle_head(fm_audit_t *a) {
    if (!a->head_behind || a->log_size < 0) return;
    if (fm_audit_lock(a->log_fd, LOCK_EX, a->paths.log, NULL)) return;
    struct stat st;
    if (fstat(a->log_fd, &st) == 0 && (int64_t)st.st_size == a->log_size) sync_head(a, NULL);
    fm_audit_unlock(a->log_fd);
}

/* Returns SLOT_TEXT buffers to the free list (lock held); the rest are freed by the caller. */
static pending_t *recycle(fm_audit_t *a, pending_t *list) {
    pending_t *rest = NULL;
    while (list) {
        pending_t *p = list;
        list = p->next;
        if (p->recycle && a->free_count < FREE_SLOTS_MAX) {
            p->next = a->free_slots;
            a->free_slots = p;
            a->free_count++;
        } else {
            p->next = rest;
            rest = p;
        }
    }
    return rest;
}

static void free_list(pending_t *p) {
    while (p) {
        pending_t *next = p->next;
        free(p);
        p = next;
    }
}

/*
 * Runs the callbacks of a committed (or failed) group. Failed entries that were already
 * acknowledged (ASYNC) are returned in *retry, in order, to be queued again unless giving up;
 * the others are returned as the function's result, to be recycled.
 */
static pending_t *finish_group(pending_t *group, int rc, const fm_error_t *err, int give_up,
                               size_t *lost, pending_t **retry) {
    pending_t *done_list = NULL, **tail = retry;
    *retry = NULL;
    *lost = 0;
    while (group) {
        pending_t *p = group;
        group = p->next;
        p->next = NULL;
        if (p->after_commit) {
            if (p->err_out && rc) *p->err_out = *err;
            if (p->done) p->done(p->ctx, rc);
        } else if (rc && !give_up) {
            *tail = p;
            tail = &p->next;
            continue;
        } else {
            *lost += rc != 0;
        }
        p->next = done_list;
        done_list = p;
    }
    return done_list;
}

/* Whether the queued entries make a group to commit now, without waiting out the gathering
 * time: enough of them, or (ASYNC) one whose caller waits (fm_audit_append_sync). */
static int group_full(const fm_audit_t *a) {
    if (a->durability == FM_AUDIT_DURABLE) return a->queued >= DURABLE_GATHER_MAX;
    return a->waiting > 0 || a->queued >= ASYNC_GATHER_MAX;
}

/* Lets the group grow (lock held) until deadline, unless it is full first or the log stops. */
static void gather_until(fm_audit_t *a, const struct timespec *deadline) {
    a->writer_state = WRITER_GATHERING;
    while (!a->stopping && !group_full(a)) {
        if (pthread_cond_timedwait(&a->work, &a->lock, deadline) == ETIMEDOUT) break;
    }
    a->writer_state = WRITER_BUSY;
}

/* Waits (lock held) for entries or stopping; settles the head once idle long enough. */
static void wait_for_work(fm_audit_t *a) {
    while (!a->first && !a->stopping) {
        a->writer_state = WRITER_IDLE;
        if (a->head_behind) {
            struct timespec deadline;
            clock_gettime(CLOCK_MONOTONIC, &deadline);
            timespec_add_us(&deadline, HEAD_SYNC_IDLE_MS * 1000L);
            int timed_out = pthread_cond_timedwait(&a->work, &a->lock, &deadline) == ETIMEDOUT;
            a->writer_state = WRITER_BUSY;
            if (timed_out && !a->first && !a->stopping) {
                pthread_mutex_unlock(&a->lock);
                settle_head(a);
                a->head_behind = 0; /* tried; the next group sets it again */
                pthread_mutex_lock(&a->lock);
            }
        } else {
            pthread_cond_wait(&a->work, &a->lock);
        }
    }
    a->writer_state = WRITER_BUSY;
}

static void *writer_main(void *arg) {
    pthread_setname_np(pthread_self(), "fm-audit");
    fm_audit_t *a = arg;
    fm_error_t err;
    struct timespec last_start = {0, 0}; /* when the last group's commit started */
    size_t last_group = 0;               /* and how many entries it held */
    pthread_mutex_lock(&a->lock);
    for (;;) {
        wait_for_work(a);
        if (!a->first) break;
        /* ASYNC: the first entry's gathering time; DURABLE while concurrent: the pace. */
        if (a->durability == FM_AUDIT_ASYNC || last_group >= DURABLE_PACE_MIN_GROUP) {
            int async = a->durability == FM_AUDIT_ASYNC;
            struct timespec deadline = async ? a->first->queued : last_start;
            timespec_add_us(&deadline,
                            async ? ASYNC_GATHER_MS * 1000L : DURABLE_COMMIT_INTERVAL_US);
            gather_until(a, &deadline);
        }
        pending_t *group = a->first;
        size_t n = a->queued;
        int give_up = a->stopping;
        last_group = n;
        a->first = a->last = NULL;
        a->queued = a->waiting = 0;
        pthread_cond_broadcast(&a->room);
        pthread_mutex_unlock(&a->lock);

        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        last_start = t0;
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
        pending_t *retry = NULL;
        pending_t *finished = finish_group(group, rc, &err, give_up, &lost, &retry);

        pthread_mutex_lock(&a->lock);
        pending_t *unwanted = recycle(a, finished);
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
            timespec_add_us(&pause, RETRY_PAUSE_MS * 1000L);
            while (!a->stopping &&
                   pthread_cond_timedwait(&a->work, &a->lock, &pause) != ETIMEDOUT) {
            }
        }
        if (unwanted) {
            pthread_mutex_unlock(&a->lock);
            free_list(unwanted);
            pthread_mutex_lock(&a->lock);
        }
    }
    pthread_mutex_unlock(&a->lock);
    settle_head(a);
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

/* Opens (creating, mode 0600) one of the log's files for reading and writing. */
static int open_file(const char *path, int flags, int *fd, fm_error_t *err) {
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | flags, 0600);
    if (*fd < 0) {
        int e = errno;
        if (e == ELOOP)
            return fm_error_set(err, FM_EDENIED, "%s: is a symbolic link (refused)", path);
        return fm_error_set(err, FM_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode))
        return fm_error_set(err, FM_EFORMAT, "%s: not a regular file", path);
    return FM_OK;
}

/* Opens both files and checks them (resync) under the lock. */
static int open_files(fm_audit_t *a, fm_error_t *err) {
    int rc = open_file(a->paths.log, O_APPEND, &a->log_fd, err);
    if (!rc) rc = open_file(a->paths.head, 0, &a->head_fd, err);
    if (!rc) rc = fm_audit_lock(a->log_fd, LOCK_EX, a->paths.log, err);
    if (rc) return rc;
    struct stat st;
    if (fstat(a->log_fd, &st) != 0)
        rc = fm_error_set(err, FM_EIO, "%s: cannot stat: %s", a->paths.log, strerror(errno));
    if (!rc) rc = fm_audit_check_start(a->log_fd, a->paths.log, (int64_t)st.st_size, err);
    if (!rc) rc = resync(a, (int64_t)st.st_size, err);
    fm_audit_unlock(a->log_fd);
    return rc;
}

static void release(fm_audit_t *a) {
    if (a->log_fd >= 0) close(a->log_fd);
    if (a->head_fd >= 0) close(a->head_fd);
    free_list(a->free_slots);
    fm_buf_free(&a->group);
    fm_buf_free(&a->scratch);
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
    a->log_fd = a->head_fd = -1;
    a->log_size = -1;
    int rc = fm_audit_paths_init(&a->paths, home, err);
    if (!rc) rc = make_home(home, err);
    if (!rc) rc = fm_audit_check_legacy(&a->paths, err);
    if (!rc) rc = fm_audit_key_load(&a->paths, 1, a->key, err);
    if (!rc) rc = open_files(a, err);
    if (rc) {
        release(a);
        return rc;
    }
    clock_gettime(CLOCK_MONOTONIC, &a->head_synced);
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

/* Queues an entry. after_commit: the callback waits for the commit (else it runs here). */
static int enqueue(fm_audit_t *a, const fm_audit_entry_t *e, fm_audit_done_fn done, void *ctx,
                   fm_error_t *err_out, int after_commit) {
    if (!a || !e || !e->action || !e->action[0]) return FM_EINVAL;
    char time[FM_AUDIT_TIME_SIZE];
    fm_audit_time_now(time);
    fm_audit_fields_t f = {.time = time,
                           .key_id = e->key_id && e->key_id[0] ? e->key_id : "cli",
                           .role = e->role,
                           .action = e->action,
                           .model = e->model,
                           .version = e->version,
                           .request_id = e->request_id,
                           .status = e->status,
                           .input_digest = e->input_digest,
                           .output = e->output,
                           .detail = e->detail};
    const char *strings[] = {f.key_id,     f.role,         f.action, f.model,
                             f.request_id, f.input_digest, f.output, f.detail};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        if (strings[i] && strnlen(strings[i], FIELD_MAX + 1) > FIELD_MAX) return FM_ELIMIT;
    char stack[STACK_TEXT];
    size_t len = fm_audit_format_fields(stack, sizeof stack, &f);
    pending_t *p = NULL;
    if (!len) {
        /* Larger than the stack buffer (rare): formatted straight into a buffer of the
         * worst-case size. */
        size_t bound = fm_audit_fields_bound(&f);
        p = malloc(sizeof *p + bound);
        if (!p) return FM_ENOMEM;
        p->len = fm_audit_format_fields(p->text, bound, &f);
        p->recycle = 0;
        if (!p->len) { /* cannot happen: bound is the worst case */
            free(p);
            return FM_ELIMIT;
        }
    }

    pthread_mutex_lock(&a->lock);
    if (!p && len <= SLOT_TEXT && a->free_slots) {
        p = a->free_slots;
        a->free_slots = p->next;
        a->free_count--;
    }
    if (!p) {
        pthread_mutex_unlock(&a->lock);
        int slot = len <= SLOT_TEXT;
        p = malloc(sizeof *p + (slot ? SLOT_TEXT : len));
        if (!p) return FM_ENOMEM;
        p->recycle = slot;
        pthread_mutex_lock(&a->lock);
    }
    if (len) {
        memcpy(p->text, stack, len);
        p->len = len;
    }
    p->next = NULL;
    p->done = done;
    p->ctx = ctx;
    p->err_out = err_out;
    p->after_commit = after_commit;
    if (a->durability == FM_AUDIT_ASYNC) clock_gettime(CLOCK_MONOTONIC, &p->queued);
    /* Back-pressure, except on the writer thread itself (a callback that appends): it would wait
     * for itself. */
    while (a->queued >= QUEUE_MAX && !a->stopping && !pthread_equal(pthread_self(), a->writer))
        pthread_cond_wait(&a->room, &a->lock);
    if (a->stopping) {
        pending_t *unwanted = recycle(a, p);
        pthread_mutex_unlock(&a->lock);
        free_list(unwanted);
        return FM_EIO;
    }
    if (a->last)
        a->last->next = p;
    else
        a->first = p;
    a->last = p;
    a->queued++;
    a->waiting += after_commit != 0;
    if (a->writer_state == WRITER_IDLE || (a->writer_state == WRITER_GATHERING && group_full(a)))
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
                            a->paths.log);
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
        return fm_error_set(err, rc, "%s: an audit entry needs an action", a->paths.log);
    case FM_ELIMIT:
        return fm_error_set(err, rc, "%s: an audit entry field is longer than %d bytes",
                            a->paths.log, FIELD_MAX);
    case FM_EIO:
        return fm_error_set(err, rc, "%s: the audit log is closing", a->paths.log);
    default:
        return fm_error_set(err, rc, "%s: cannot append: %s", a->paths.log, fm_strerror(rc));
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
