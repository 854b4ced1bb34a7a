/*
 * The audit log's files, as the writer (audit_log.c) and the readers (audit_verify.c) both see
 * them: the head file's two MACed slots, the advisory lock on audit.log that orders processes,
 * the strict parser of a log line, a sequential reader of the complete lines of the log and a
 * reader of the one line that ends at a given offset (the entry a head points to).
 *
 * The parser accepts exactly what the writer writes: the canonical text's fields in their order,
 * strings as fm_audit_put_string escapes them (so valid UTF-8 and no other escapes), integers
 * without leading zeros, then prev and hash as 64 lowercase hex digits. Whatever it accepts is
 * therefore valid JSON, and a line's canonical text is simply the line up to the suffix: a hash
 * that matches proves every byte of it.
 */
#include "security/audit_internal.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

static const char slot_magic[8] = {'F', 'M', 'A', 'U', 'D', 'H', 'D', '1'};

/* ---- the head ---- */

static void put_be64(unsigned char *out, int64_t v) {
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(u >> (56 - 8 * i));
}

static int64_t get_be64(const unsigned char *in) {
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | in[i];
    return (int64_t)u;
}

void fm_audit_head_mac(const unsigned char *key, const fm_audit_head_t *head, unsigned char *mac) {
    unsigned char msg[4 + 8 + 8 + FM_AUDIT_HASH_BYTES];
    memcpy(msg, "head", 4);
    put_be64(msg + 4, head->seq);
    put_be64(msg + 12, head->length);
    memcpy(msg + 20, head->hash, FM_AUDIT_HASH_BYTES);
    crypto_generichash(mac, FM_AUDIT_HASH_BYTES, msg, sizeof msg, key, FM_AUDIT_KEY_BYTES);
}

void fm_audit_slot_encode(const unsigned char *key, const fm_audit_head_t *head,
                          unsigned char *out) {
    memset(out, 0, FM_AUDIT_SLOT_BYTES);
    memcpy(out, slot_magic, sizeof slot_magic);
    put_be64(out + 8, head->seq);
    put_be64(out + 16, head->length);
    memcpy(out + 24, head->hash, FM_AUDIT_HASH_BYTES);
    fm_audit_head_mac(key, head, out + 56);
}

void fm_audit_slots_decode(const unsigned char *key, const unsigned char *bytes, size_t n,
                           fm_audit_slots_t *out) {
    memset(out, 0, sizeof *out);
    out->bytes = n;
    out->best = -1;
    for (int i = 0; i < 2; i++) {
        const unsigned char *s = bytes + i * FM_AUDIT_SLOT_BYTES;
        if (n < (size_t)(i + 1) * FM_AUDIT_SLOT_BYTES) continue;
        if (memcmp(s, slot_magic, sizeof slot_magic) != 0) continue;
        out->readable[i] = 1;
        out->slot[i].seq = get_be64(s + 8);
        out->slot[i].length = get_be64(s + 16);
        memcpy(out->slot[i].hash, s + 24, FM_AUDIT_HASH_BYTES);
        unsigned char want[FM_AUDIT_HASH_BYTES];
        fm_audit_head_mac(key, &out->slot[i], want);
        out->valid[i] = sodium_memcmp(want, s + 56, FM_AUDIT_HASH_BYTES) == 0 &&
                        out->slot[i].seq >= 0 && out->slot[i].length >= 0;
        if (out->valid[i] && (out->best < 0 || out->slot[i].seq > out->slot[out->best].seq))
            out->best = i;
    }
}

ssize_t fm_audit_read_head_bytes(int fd, unsigned char *bytes) {
    size_t got = 0;
    while (got < FM_AUDIT_HEAD_BYTES) {
        ssize_t r = pread(fd, bytes + got, FM_AUDIT_HEAD_BYTES - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* ---- the lock ---- */

int fm_audit_lock(int fd, int op, const char *path, fm_error_t *err) {
    /* Non-blocking attempts with growing pauses: a blocking flock could wait forever on a stuck
     * process, and the uncontended case (nearly always) costs one call. */
    long pause_us = 50, waited_us = 0;
    for (;;) {
        if (flock(fd, op | LOCK_NB) == 0) return FM_OK;
        int e = errno;
        if (e == EINTR) continue;
        if (e != EWOULDBLOCK)
            return fm_error_set(err, FM_EIO, "%s: cannot lock: %s", path, strerror(e));
        if (waited_us >= FM_AUDIT_LOCK_TIMEOUT_MS * 1000L)
            return fm_error_set(err, FM_EBUSY,
                                "%s: locked by another process for more than %d ms (a stuck "
                                "finmaas command?)",
                                path, FM_AUDIT_LOCK_TIMEOUT_MS);
        struct timespec ts = {0, pause_us * 1000};
        nanosleep(&ts, NULL);
        waited_us += pause_us;
        if (pause_us < 4000) pause_us *= 2;
    }
}

void fm_audit_unlock(int fd) {
    while (flock(fd, LOCK_UN) != 0 && errno == EINTR) {
    }
}

/* ---- parsing a line ---- */

typedef struct cursor {
    const char *p, *end;
} cursor_t;

static int take(cursor_t *c, const char *literal, size_t n) {
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, literal, n) != 0) return -1;
    c->p += n;
    return 0;
}

#define TAKE(c, lit) take((c), (lit), sizeof(lit) - 1)

/* A canonical integer: 0, or an optional '-' and digits without a leading zero, in range. */
static int parse_int(cursor_t *c, int64_t *out) {
    const char *p = c->p;
    int negative = p < c->end && *p == '-';
    if (negative) p++;
    if (p >= c->end || *p < '0' || *p > '9') return -1;
    if (*p == '0' && (negative || (p + 1 < c->end && p[1] >= '0' && p[1] <= '9'))) return -1;
    uint64_t u = 0, limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    while (p < c->end && *p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (u > (limit - d) / 10) return -1;
        u = u * 10 + d;
        p++;
    }
    *out = negative ? (int64_t)(0 - u) : (int64_t)u;
    c->p = p;
    return 0;
}

/* The length of the valid UTF-8 sequence at p (2 to 4, first byte >= 0x80) within end, or 0. */
static size_t utf8_length(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0];
    size_t k = c >= 0xc2 && c <= 0xdf   ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    if (!k || (size_t)(end - p) < k) return 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < k; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    return k;
}

/*
 * A string as fm_audit_put_string writes it, or null (allow_null). On success *s and *n give the
 * text between the quotes (NULL for null).
 */
static int parse_string(cursor_t *c, int allow_null, const char **s, size_t *n) {
    if (allow_null && take(c, "null", 4) == 0) {
        *s = NULL;
        *n = 0;
        return 0;
    }
    if (c->p >= c->end || *c->p != '"') return -1;
    const unsigned char *p = (const unsigned char *)c->p + 1;
    const unsigned char *end = (const unsigned char *)c->end;
    const unsigned char *start = p;
    for (;;) {
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p >= end || *p < 0x20) return -1;
        if (*p == '"') break;
        if (*p >= 0x80) {
            size_t k = utf8_length(p, end);
            if (!k) return -1;
            p += k;
            continue;
        }
        /* A backslash: only the escapes the writer makes. */
        if (end - p < 2) return -1;
        unsigned char e = p[1];
        if (e == '"' || e == '\\' || e == 'n' || e == 'r' || e == 't' || e == 'b' || e == 'f') {
            p += 2;
            continue;
        }
        if (e != 'u' || end - p < 6 || p[2] != '0' || p[3] != '0') return -1;
        static const char hex[] = "0123456789abcdef";
        const char *hi = memchr(hex, p[4], 2), *lo = memchr(hex, p[5], 16);
        if (!p[4] || !p[5] || !hi || !lo) return -1;
        unsigned v = (unsigned)(hi - hex) << 4 | (unsigned)(lo - hex);
        if (v == '\n' || v == '\r' || v == '\t' || v == '\b' || v == '\f') return -1;
        p += 6;
    }
    *s = (const char *)start;
    *n = (size_t)(p - start);
    c->p = (const char *)p + 1;
    return 0;
}

const char *fm_audit_line_parse(const char *text, size_t len, fm_audit_line_t *out) {
    memset(out, 0, sizeof *out);
    out->text = text;
    out->len = len;
    if (len < FM_AUDIT_SUFFIX_BYTES + 8) return "too short for an entry";
    cursor_t c = {text, text + len - FM_AUDIT_SUFFIX_BYTES};
    const char *s;
    size_t n;
    int64_t v;
    if (TAKE(&c, "{\"seq\":") || parse_int(&c, &out->seq)) return "it does not start with a seq";
    if (TAKE(&c, ",\"time\":") || parse_string(&c, 0, &s, &n) || n != FM_AUDIT_TIME_SIZE - 1)
        return "the field after seq is not a time";
    out->time = s;
    if (TAKE(&c, ",\"key_id\":") || parse_string(&c, 0, &s, &n))
        return "the field after time is not key_id";
    if (TAKE(&c, ",\"role\":") || parse_string(&c, 1, &s, &n))
        return "the field after key_id is not role";
    if (TAKE(&c, ",\"action\":") || parse_string(&c, 0, &s, &n))
        return "the field after role is not action";
    if (TAKE(&c, ",\"model\":") || parse_string(&c, 1, &out->model, &out->model_len))
        return "the field after action is not model";
    if (TAKE(&c, ",\"version\":") || parse_int(&c, &v))
        return "the field after model is not version";
    if (TAKE(&c, ",\"request_id\":") || parse_string(&c, 1, &s, &n))
        return "the field after version is not request_id";
    if (TAKE(&c, ",\"status\":") || parse_int(&c, &v))
        return "the field after request_id is not status";
    if (TAKE(&c, ",\"input_digest\":") || parse_string(&c, 1, &s, &n))
        return "the field after status is not input_digest";
    if (TAKE(&c, ",\"output\":") || parse_string(&c, 1, &s, &n))
        return "the field after input_digest is not output";
    if (TAKE(&c, ",\"detail\":") || parse_string(&c, 1, &s, &n))
        return "the field after output is not detail";
    if (c.p != c.end) return "something follows detail before prev";
    out->fields_end = (size_t)(c.p - text);
    c.end = text + len;
    if (TAKE(&c, ",\"prev\":\"") || fm_audit_unhex(c.p, out->prev, FM_AUDIT_HASH_BYTES))
        return "its prev is not 64 hex digits";
    c.p += 2 * FM_AUDIT_HASH_BYTES;
    if (TAKE(&c, "\",\"hash\":\"") || fm_audit_unhex(c.p, out->hash, FM_AUDIT_HASH_BYTES))
        return "its hash is not 64 hex digits";
    c.p += 2 * FM_AUDIT_HASH_BYTES;
    if (TAKE(&c, "\"}") || c.p != c.end) return "it does not end after its hash";
    return NULL;
}

void fm_audit_line_hash(const unsigned char *key, const unsigned char *prev,
                        const fm_audit_line_t *line, unsigned char *hash) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, FM_AUDIT_KEY_BYTES, FM_AUDIT_HASH_BYTES);
    crypto_generichash_update(&st, prev, FM_AUDIT_HASH_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)line->text, line->fields_end);
    crypto_generichash_update(&st, (const unsigned char *)"}", 1);
    crypto_generichash_final(&st, hash, FM_AUDIT_HASH_BYTES);
}

/* ---- reading lines ---- */

/* Reads are this large: many lines per call. */
#define READ_CHUNK (256 * 1024)

void fm_audit_reader_init(fm_audit_reader_t *r, int fd, const char *path, int64_t start,
                          int64_t end) {
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->path = path;
    r->offset = start;
    r->end = end;
}

void fm_audit_reader_free(fm_audit_reader_t *r) {
    fm_buf_free(&r->buf);
}

int fm_audit_reader_next(fm_audit_reader_t *r, const char **text, size_t *len, int64_t *at,
                         fm_error_t *err) {
    for (;;) {
        char *data = r->buf.data;
        char *nl = data ? memchr(data + r->pos, '\n', r->buf.len - r->pos) : NULL;
        if (nl) {
            *text = data + r->pos;
            *len = (size_t)(nl - (data + r->pos));
            *at = r->offset + (int64_t)r->pos;
            r->pos = (size_t)(nl - data) + 1;
            r->line_no++;
            return 1;
        }
        /* Keep the unfinished line, drop what was returned, read more. */
        size_t keep = r->buf.len - r->pos;
        if (r->pos) {
            memmove(r->buf.data, r->buf.data + r->pos, keep);
            r->offset += (int64_t)r->pos;
            r->buf.len = keep;
            r->pos = 0;
        }
        int64_t file_at = r->offset + (int64_t)keep;
        if (file_at >= r->end) {
            *at = r->offset;
            return 0;
        }
        if (keep >= FM_AUDIT_LINE_MAX)
            return fm_error_set(err, FM_EDATA,
                                "%s: the line at byte %lld is longer than %d bytes (not an audit "
                                "entry)",
                                r->path, (long long)r->offset, FM_AUDIT_LINE_MAX);
        size_t want = READ_CHUNK;
        if ((int64_t)want > r->end - file_at) want = (size_t)(r->end - file_at);
        if (fm_buf_reserve(&r->buf, want))
            return fm_error_set(err, FM_ENOMEM, "%s: out of memory", r->path);
        ssize_t got;
        do
            got = pread(r->fd, r->buf.data + keep, want, (off_t)file_at);
        while (got < 0 && errno == EINTR);
        if (got < 0)
            return fm_error_set(err, FM_EIO, "%s: cannot read: %s", r->path, strerror(errno));
        if (got == 0) r->end = file_at; /* the file shrank: what is left is its end */
        r->buf.len = keep + (size_t)got;
        r->buf.data[r->buf.len] = '\0';
    }
}

int fm_audit_read_line_before(int fd, const char *path, int64_t end, fm_buf_t *out, int64_t *start,
                              fm_error_t *err) {
    fm_buf_reset(out);
    size_t span = 4096;
    for (;;) {
        int64_t from = end > (int64_t)span ? end - (int64_t)span : 0;
        size_t n = (size_t)(end - from);
        if (fm_buf_reserve(out, n)) return fm_error_set(err, FM_ENOMEM, "%s: out of memory", path);
        size_t got = 0;
        while (got < n) {
            ssize_t r = pread(fd, out->data + got, n - got, (off_t)from + (off_t)got);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0)
                return fm_error_set(err, FM_EIO, "%s: cannot read: %s", path, strerror(errno));
            if (r == 0) break;
            got += (size_t)r;
        }
        if (got < n || n == 0 || out->data[n - 1] != '\n')
            return fm_error_set(err, FM_EDATA, "%s: no line ends at byte %lld", path,
                                (long long)end);
        char *nl = n > 1 ? memrchr(out->data, '\n', n - 1) : NULL;
        if (nl || from == 0) {
            size_t skip = nl ? (size_t)(nl - out->data) + 1 : 0;
            memmove(out->data, out->data + skip, n - 1 - skip);
            out->len = n - 1 - skip;
            out->data[out->len] = '\0';
            *start = from + (int64_t)skip;
            return FM_OK;
        }
        if (span >= FM_AUDIT_LINE_MAX)
            return fm_error_set(err, FM_EDATA,
                                "%s: the line ending at byte %lld is longer than %d bytes", path,
                                (long long)end, FM_AUDIT_LINE_MAX);
        span *= 4;
    }
}

int fm_audit_check_start(int fd, const char *path, int64_t size, fm_error_t *err) {
    if (size <= 0) return FM_OK;
    char start[sizeof FM_AUDIT_LINE_START - 1];
    size_t n = sizeof start;
    if ((int64_t)n > size) n = (size_t)size;
    ssize_t r;
    do
        r = pread(fd, start, n, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0) return fm_error_set(err, FM_EIO, "%s: cannot read: %s", path, strerror(errno));
    if ((size_t)r != n || memcmp(start, FM_AUDIT_LINE_START, n) != 0)
        return fm_error_set(err, FM_EFORMAT,
                            "%s: not a finmaas audit log (it does not start with an entry)", path);
    return FM_OK;
}
