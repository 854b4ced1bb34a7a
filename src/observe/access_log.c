/*
 * The asynchronous access log: JSON lines queued by request threads, written by one background
 * thread.
 *
 * A request thread formats its entry outside any lock (into a stack buffer, or the heap for an
 * entry with huge fields), then takes the mutex only to copy the line to the end of the pending
 * buffer, so the critical section is a memcpy. The writer thread sleeps on a condition variable
 * until 200 ms have passed since its last write, the pending text passes 64 KiB, or the log is
 * closing; it then swaps the pending buffer with its own (double buffering) and calls write()
 * outside the mutex, so a slow disk never holds up a request. Both buffers are allocated at open
 * with room for the 4 MiB limit, so queuing an entry never allocates. When the pending text would
 * pass 4 MiB, the entry is dropped and counted; the writer reports the count as an entry of its own
 * ({"time":...,"event":"access_log_dropped","count":N}) right after the batch it next writes. Lines
 * lost to a failing write() are counted the same way.
 *
 * String fields are JSON-escaped with fm_buf_json_string. Bytes that are not valid UTF-8 (a raw
 * byte in a URL) are replaced by U+FFFD so that every line stays valid JSON text for log shippers,
 * and a field is cut to FIELD_MAX bytes (at a character boundary) so that one request cannot
 * produce a line that fills the buffer.
 */
#include "observe/access_log.h"

#include "core/buf.h"
#include "observe/observe_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    PENDING_MAX = 4 << 20,  /* queued bytes beyond which entries are dropped */
    FLUSH_BYTES = 64 << 10, /* queued bytes that wake the writer early */
    FLUSH_MILLIS = 200,     /* longest an entry waits in memory */
    FIELD_MAX = 8192,       /* bytes of one string field kept */
    STACK_LINE = 4096,      /* entries whose worst case fits are formatted on the stack */
    FIXED_MAX = 512,        /* keys, punctuation, time and numbers of one entry, generously */
    NOTICE_MAX = 128,       /* one dropped-count entry */
    STRING_FIELDS = 5,
};

struct fm_access_log {
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* the writer waits on it */
    fm_buf_t pending;         /* guarded by lock: entries not yet handed to the writer */
    uint64_t unreported;      /* guarded by lock: drops not yet written as an entry */
    int stopping;             /* guarded by lock: close has begun */
    fm_buf_t writing;         /* the writer thread's alone: the batch being written */
    _Atomic uint64_t dropped; /* all drops, for fm_access_log_dropped */
    int fd, owns_fd;
    pthread_t thread;
};

/* ---- formatting ---- */

/* Writes v in decimal to out (at least 20 bytes); returns the length. */
static size_t u64_text(char *out, uint64_t v) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static size_t i64_text(char *out, int64_t v) {
    if (v >= 0) return u64_text(out, (uint64_t)v);
    out[0] = '-';
    return 1 + u64_text(out + 1, 0 - (uint64_t)v);
}

/* The last width decimal digits of v, zero-padded. */
static void digits(char *out, unsigned v, int width) {
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* The civil date comes from the day count by Howard Hinnant's days-to-civil algorithm: no
 * gmtime_r call (which may take the time zone lock), no locale. */
void fm_observe_format_utc(char *out, const struct timespec *ts) {
    int64_t secs = (int64_t)ts->tv_sec;
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t sod = secs - days * 86400;
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    unsigned day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    unsigned month = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    int64_t year = yoe + era * 400 + (month <= 2);
    if (year < 0) year = 0;
    if (year > 9999) year = 9999;
    digits(out, (unsigned)year, 4);
    out[4] = '-';
    digits(out + 5, month, 2);
    out[7] = '-';
    digits(out + 8, day, 2);
    out[10] = 'T';
    digits(out + 11, (unsigned)(sod / 3600), 2);
    out[13] = ':';
    digits(out + 14, (unsigned)(sod / 60 % 60), 2);
    out[16] = ':';
    digits(out + 17, (unsigned)(sod % 60), 2);
    out[19] = '.';
    digits(out + 20, (unsigned)(ts->tv_nsec / 1000000), 3);
    out[23] = 'Z';
}

/* The length of the longest valid UTF-8 prefix of s (n bytes): RFC 3629, so no overlong forms,
 * no surrogates, nothing above U+10FFFF. */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return i;
        }
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return i;
        i += len;
    }
    return n;
}

/* The bytes of s kept in the log: at most FIELD_MAX, not ending inside a UTF-8 sequence. */
static size_t field_length(const char *s) {
    size_t n = strnlen(s, FIELD_MAX + 1);
    if (n > FIELD_MAX) {
        n = FIELD_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    return n;
}

/* Copies a string literal at p and moves p past it. */
#define PUT_LITERAL(p, literal)                                                                    \
    (memcpy((p), (literal), sizeof(literal) - 1), (p) += sizeof(literal) - 1)

/* Escapes s (n bytes) with fm_buf_json_string into the room from p to end; invalid UTF-8 bytes
 * become U+FFFD. Returns the end of what was written, NULL when out of memory. */
static char *put_string_escaped(char *p, char *end, const char *s, size_t n) {
    /* A view of the room left: fm_buf_* only reallocate when asked for more than cap, and the
     * caller's worst case leaves enough, so the bytes land in place. */
    fm_buf_t view = {p, 0, (size_t)(end - p)};
    size_t valid = utf8_valid_prefix((const unsigned char *)s, n);
    if (valid == n) return fm_buf_json_string(&view, s, n) ? NULL : p + view.len;
    /* Rare (a client sent raw bytes): build a repaired copy, at most 3 bytes per input byte. */
    char *fixed = malloc(3 * n);
    if (!fixed) return NULL;
    size_t len = 0;
    while (n > 0) {
        memcpy(fixed + len, s, valid);
        len += valid;
        s += valid;
        n -= valid;
        if (n == 0) break;
        memcpy(fixed + len, "\xEF\xBF\xBD", 3);
        len += 3;
        s++;
        n--;
        valid = utf8_valid_prefix((const unsigned char *)s, n);
    }
    int rc = fm_buf_json_string(&view, fixed, len);
    free(fixed);
    return rc ? NULL : p + view.len;
}

/* Writes s (n bytes) as a JSON string at p, or null for a required field the caller left NULL.
 * Returns the end of what was written, NULL when out of memory. */
static char *put_string(char *p, char *end, const char *s, size_t n) {
    if (!s) {
        PUT_LITERAL(p, "null");
        return p;
    }
    /* The usual field (an id, a method, a path) is printable ASCII without '"' or '\\': JSON
     * takes it as it is, so copy while checking, and escape only when that finds a byte that
     * needs it. */
    p[0] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return put_string_escaped(p, end, s, n);
        p[1 + i] = (char)c;
    }
    p[1 + n] = '"';
    return p + n + 2;
}

/*
 * Writes one entry and its newline from p, which has room for the worst case up to end. Returns
 * the end of the line, NULL when out of memory.
 */
static char *format_entry(char *p, char *end, const fm_access_entry_t *e,
                          const struct timespec *now, const size_t len[STRING_FIELDS]) {
    PUT_LITERAL(p, "{\"time\":\"");
    fm_observe_format_utc(p, now);
    p += FM_OBSERVE_UTC_LEN;
    PUT_LITERAL(p, "\",\"request_id\":");
    if (!(p = put_string(p, end, e->request_id, len[0]))) return NULL;
    PUT_LITERAL(p, ",\"method\":");
    if (!(p = put_string(p, end, e->method, len[1]))) return NULL;
    PUT_LITERAL(p, ",\"path\":");
    if (!(p = put_string(p, end, e->path, len[2]))) return NULL;
    if (e->model) {
        PUT_LITERAL(p, ",\"model\":");
        if (!(p = put_string(p, end, e->model, len[3]))) return NULL;
    }
    if (e->version != 0) {
        PUT_LITERAL(p, ",\"version\":");
        p += i64_text(p, e->version);
    }
    PUT_LITERAL(p, ",\"status\":");
    p += i64_text(p, e->status);
    /* Milliseconds with 3 decimals, from whole microseconds; JSON has no NaN, so an impossible
     * latency (negative, NaN) is written as 0. */
    double s = e->latency_seconds;
    uint64_t micros =
        s > 0 ? (s < 1e12 ? (uint64_t)llround(s * 1e6) : UINT64_C(1000000000000000000)) : 0;
    PUT_LITERAL(p, ",\"latency_ms\":");
    p += u64_text(p, micros / 1000);
    *p++ = '.';
    digits(p, (unsigned)(micros % 1000), 3);
    p += 3;
    PUT_LITERAL(p, ",\"bytes_in\":");
    p += u64_text(p, e->bytes_in);
    PUT_LITERAL(p, ",\"bytes_out\":");
    p += u64_text(p, e->bytes_out);
    if (e->remote) {
        PUT_LITERAL(p, ",\"remote\":");
        if (!(p = put_string(p, end, e->remote, len[4]))) return NULL;
    }
    PUT_LITERAL(p, "}\n");
    return p;
}

/* ---- queueing ---- */

/* Counts n entries lost; the caller holds the lock. */
static void count_drops(fm_access_log_t *log, uint64_t n) {
    atomic_fetch_add_explicit(&log->dropped, n, memory_order_relaxed);
    log->unreported += n;
}

void fm_access_log_write(fm_access_log_t *log, const fm_access_entry_t *entry) {
    if (!log || !entry) return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);

    const char *strings[STRING_FIELDS] = {entry->request_id, entry->method, entry->path,
                                          entry->model, entry->remote};
    size_t len[STRING_FIELDS], worst = FIXED_MAX;
    for (int i = 0; i < STRING_FIELDS; i++) {
        len[i] = strings[i] ? field_length(strings[i]) : 0;
        worst += 6 * len[i] + 2; /* "\u00XX" is the longest escape of one byte */
    }
    char stack[STACK_LINE], *line = stack;
    if (worst > sizeof stack) line = malloc(worst);
    char *line_end = line ? format_entry(line, line + worst, entry, &now, len) : NULL;
    size_t n = line_end ? (size_t)(line_end - line) : 0;

    pthread_mutex_lock(&log->lock);
    if (!line_end || log->pending.len + n > PENDING_MAX) {
        count_drops(log, 1);
    } else {
        size_t before = log->pending.len;
        memcpy(log->pending.data + before, line, n);
        log->pending.len += n;
        if (before < FLUSH_BYTES && log->pending.len >= FLUSH_BYTES)
            pthread_cond_signal(&log->wake);
    }
    pthread_mutex_unlock(&log->lock);
    if (line != stack) free(line);
}

uint64_t fm_access_log_dropped(const fm_access_log_t *log) {
    return log ? atomic_load_explicit(&log->dropped, memory_order_relaxed) : 0;
}

/* ---- the writer thread ---- */

/* Writes all n bytes, retrying after signals and short writes and waiting out a non-blocking
 * descriptor. Returns the bytes written (n unless write() failed). */
static size_t write_all(int fd, const char *p, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w > 0) {
            done += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            poll(&pfd, 1, 1000);
        } else {
            break;
        }
    }
    return done;
}

static size_t count_lines(const char *p, size_t n) {
    size_t lines = 0;
    for (const char *end = p + n; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
        lines++;
    return lines;
}

static void deadline_after(struct timespec *t, const struct timespec *from, long millis) {
    *t = *from;
    t->tv_nsec += millis * 1000000L;
    t->tv_sec += t->tv_nsec / 1000000000L;
    t->tv_nsec %= 1000000000L;
}

/* Writes the dropped-count entry for n drops; returns 0 when it was written whole. */
static int write_notice(int fd, uint64_t n) {
    static const char middle[] = "\",\"event\":\"access_log_dropped\",\"count\":";
    char notice[NOTICE_MAX];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    size_t len = 0;
    memcpy(notice, "{\"time\":\"", 9);
    len += 9;
    fm_observe_format_utc(notice + len, &now);
    len += FM_OBSERVE_UTC_LEN;
    memcpy(notice + len, middle, sizeof middle - 1);
    len += sizeof middle - 1;
    len += u64_text(notice + len, n);
    memcpy(notice + len, "}\n", 2);
    len += 2;
    return write_all(fd, notice, len) == len ? 0 : -1;
}

/*
 * Writes the writer's batch, then the count of earlier drops when there were any (they happened
 * after the batch's entries were queued, so the notice follows them). Returns the entries of the
 * batch lost to write() failing; *unreported keeps the drops that still need reporting.
 */
static uint64_t write_batch(fm_access_log_t *log, uint64_t *unreported) {
    const char *data = log->writing.data;
    size_t len = log->writing.len, done = write_all(log->fd, data, len);
    uint64_t lost = 0;
    if (done < len) {
        /* A line cut in the middle is lost too: count from the start of the line write() cut. */
        const char *p = data + done;
        while (p > data && p[-1] != '\n')
            p--;
        lost = count_lines(p, (size_t)(data + len - p));
    }
    if (*unreported && write_notice(log->fd, *unreported) == 0) *unreported = 0;
    return lost;
}

static void *writer_main(void *arg) {
    pthread_setname_np(pthread_self(), "fm-access-log");
    fm_access_log_t *log = arg;
    struct timespec last, deadline;
    clock_gettime(CLOCK_MONOTONIC, &last);
    pthread_mutex_lock(&log->lock);
    for (;;) {
        /* Sleep until FLUSH_MILLIS after the last write began, unless there is work sooner. */
        deadline_after(&deadline, &last, FLUSH_MILLIS);
        while (!log->stopping && log->pending.len < FLUSH_BYTES) {
            if (pthread_cond_timedwait(&log->wake, &log->lock, &deadline) == ETIMEDOUT) break;
        }
        clock_gettime(CLOCK_MONOTONIC, &last);
        if (log->pending.len == 0 && log->unreported == 0) {
            if (log->stopping) break;
            continue;
        }
        fm_buf_t swap = log->pending;
        log->pending = log->writing;
        log->writing = swap;
        uint64_t unreported = log->unreported;
        log->unreported = 0;
        pthread_mutex_unlock(&log->lock);

        uint64_t lost = write_batch(log, &unreported);
        fm_buf_reset(&log->writing);

        pthread_mutex_lock(&log->lock);
        count_drops(log, lost);
        log->unreported += unreported;
        /* Closing with a descriptor that no longer takes data: give up what cannot be written
         * rather than retrying for ever. */
        if (log->stopping && (lost || unreported) && log->pending.len == 0) break;
    }
    pthread_mutex_unlock(&log->lock);
    return NULL;
}

/* ---- open and close ---- */

static int open_error(const char *path, int e, fm_error_t *err) {
    int code = e == EACCES || e == EPERM || e == EROFS ? FM_EDENIED
               : e == ENOENT || e == ENOTDIR           ? FM_ENOTFOUND
                                                       : FM_EIO;
    if (e == ENXIO)
        return fm_error_set(err, code, "access log '%s': a FIFO that nobody reads", path);
    return fm_error_set(err, code, "access log '%s': cannot open for appending: %s", path,
                        strerror(e));
}

int fm_access_log_open(const char *path, fm_access_log_t **out, fm_error_t *err) {
    *out = NULL;
    if (!path || !*path) return fm_error_set(err, FM_EINVAL, "access log: empty path");
    int fd = STDERR_FILENO, owns_fd = 0;
    if (strcmp(path, "-") != 0) {
        /* Non-blocking only for the open itself, so that a FIFO nobody reads is an error
         * (ENXIO) instead of a hang; the writes block as usual. */
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0640);
        if (fd < 0) return open_error(path, errno, err);
        owns_fd = 1;
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
            int e = errno;
            close(fd);
            return open_error(path, e, err);
        }
    }
    fm_access_log_t *log = calloc(1, sizeof *log);
    if (!log) goto nomem;
    log->fd = fd;
    log->owns_fd = owns_fd;
    atomic_init(&log->dropped, 0);
    /* Room for the limit plus a dropped-count entry, so neither buffer grows after this. */
    if (fm_buf_reserve(&log->pending, PENDING_MAX + NOTICE_MAX) ||
        fm_buf_reserve(&log->writing, PENDING_MAX + NOTICE_MAX))
        goto nomem;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr)) goto nomem;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int cond_rc = pthread_cond_init(&log->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (cond_rc) goto nomem;
    /* The critical section is a memcpy: a waiter does better spinning briefly (glibc's adaptive
     * kind) than sleeping in the kernel and being woken. */
    pthread_mutexattr_t mutex_attr;
    pthread_mutexattr_init(&mutex_attr);
    pthread_mutexattr_settype(&mutex_attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&log->lock, &mutex_attr);
    pthread_mutexattr_destroy(&mutex_attr);
    /* The writer runs with every signal blocked: the process's signals are for its other
     * threads, and a reader closing a pipe gives write() EPIPE (counted as losses) rather than a
     * SIGPIPE that would end the process. It inherits the mask in force at its creation. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int thread_rc = pthread_create(&log->thread, NULL, writer_main, log);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (thread_rc) {
        pthread_cond_destroy(&log->wake);
        pthread_mutex_destroy(&log->lock);
        fm_buf_free(&log->pending);
        fm_buf_free(&log->writing);
        free(log);
        if (owns_fd) close(fd);
        return fm_error_set(err, FM_EIO, "access log '%s': cannot start the writer thread: %s",
                            path, strerror(thread_rc));
    }
    *out = log;
    return FM_OK;
nomem:
    if (log) {
        fm_buf_free(&log->pending);
        fm_buf_free(&log->writing);
        free(log);
    }
    if (owns_fd) close(fd);
    return fm_error_set(err, FM_ENOMEM, "access log '%s': out of memory", path);
}

void fm_access_log_close(fm_access_log_t *log) {
    if (!log) return;
    pthread_mutex_lock(&log->lock);
    log->stopping = 1;
    pthread_cond_signal(&log->wake);
    pthread_mutex_unlock(&log->lock);
    pthread_join(log->thread, NULL);
    if (log->owns_fd) close(log->fd);
    pthread_cond_destroy(&log->wake);
    pthread_mutex_destroy(&log->lock);
    fm_buf_free(&log->pending);
    fm_buf_free(&log->writing);
    free(log);
}
