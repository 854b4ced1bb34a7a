/*
 * Reading the audit log: verification of the whole chain, export as JSON lines, and the filtered
 * query the HTTP API serves. Each reads its own descriptors (never creating anything) and takes a
 * snapshot first: under a shared lock on audit.log, so no writer is between its log write and its
 * head write, it reads the head and the log's size; then it reads the log up to that size without
 * the lock while a server keeps appending beyond it. A final line without its newline (torn by a
 * crash, never acknowledged) is not part of the log.
 *
 * Verification walks the lines in order and stops at the first bad one. Each line must parse as
 * an entry (audit_file.c's strict parser), its seq must follow on from the line before, its prev
 * must be the hash of the entry before, and its hash must match its contents under the audit key;
 * then the head (the valid slot with the larger seq) must be covered: it must point at the end of
 * the entry with its seq and hash. Entries beyond the head that chain are valid (a crash between
 * the log's fsync and the head's write leaves them). The kind of damage is named from what the
 * lines show, looking through the rest of the log when that tells more:
 *   modified      a line that is not an entry, or whose hash does not match its contents (or
 *                 whose link alone was edited: the hash matches once the right prev is put back);
 *   missing       a gap in seq (deleted lines), or the head points past the last entry (deleted
 *                 at the end);
 *   inserted      a line that is not in the chain: the entry after it links straight to the one
 *                 before it, or it is a copy of another entry, or repeats a seq, or it lies after
 *                 the head and does not chain;
 *   out of order  a genuine entry in the wrong place: the seq that belongs there is found later,
 *                 or the true successor of the previous entry is stored elsewhere.
 *
 * Export and query scan the whole log with their filters (model, time range); an index (seq and
 * time to byte offset, model to lines) is future work for logs too large to scan per request.
 * Export writes each line as it is stored: the canonical text with "prev" and "hash" added before
 * the closing brace, so whoever holds the key can recompute every hash from the export alone.
 */
#include "security/audit_internal.h"

#include "core/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- ISO 8601 times ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int64_t y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* Reads exactly n digits at *p into *v, advancing *p; -1 when they are not all digits. */
static int read_digits(const char **p, int n, int *v) {
    int x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return -1;
        x = x * 10 + (c - '0');
    }
    *p += n;
    *v = x;
    return 0;
}

int fm_audit_parse_time(const char *option, const char *text, int upper, char out[28],
                        fm_error_t *err) {
    const char *p = text;
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, micro = 0;
    int64_t unit = 86400LL * 1000000; /* the span the text names, in microseconds */
    int64_t offset = 0;               /* seconds east of UTC */
    int bad = !text || read_digits(&p, 4, &year) || *p++ != '-' || read_digits(&p, 2, &month) ||
              *p++ != '-' || read_digits(&p, 2, &day);
    if (!bad && (*p == 'T' || *p == 't' || *p == ' ')) {
        p++;
        bad = read_digits(&p, 2, &hour) || *p++ != ':' || read_digits(&p, 2, &minute);
        unit = 60LL * 1000000;
        if (!bad && *p == ':') {
            p++;
            bad = read_digits(&p, 2, &second);
            unit = 1000000;
            if (!bad && (*p == '.' || *p == ',')) {
                p++;
                int digits = 0, extra = 0;
                while (*p >= '0' && *p <= '9' && digits < 9) {
                    if (digits < 6)
                        micro = micro * 10 + (*p - '0');
                    else
                        extra |= *p != '0';
                    digits++;
                    p++;
                }
                bad = digits == 0;
                unit = 1;
                for (int i = digits; i < 6; i++) {
                    micro *= 10;
                    unit *= 10;
                }
                /* Beyond microseconds: a lower bound rounds up, an upper bound rounds down. */
                if (extra && !upper) micro++;
            }
        }
        if (!bad && (*p == 'Z' || *p == 'z')) {
            p++;
        } else if (!bad && (*p == '+' || *p == '-')) {
            int sign = *p++ == '-' ? -1 : 1, oh = 0, om = 0;
            bad = read_digits(&p, 2, &oh);
            if (!bad && *p == ':') p++;
            bad = bad || read_digits(&p, 2, &om) || oh > 23 || om > 59;
            offset = sign * (oh * 3600LL + om * 60LL);
        }
    } else if (!bad && (*p == 'Z' || *p == 'z')) {
        p++;
    }
    bad = bad || *p != '\0' || month < 1 || month > 12 || day < 1 ||
          day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 59;
    if (bad)
        return fm_error_set(err, FM_EINVAL,
                            "%s: '%.64s' is not an ISO 8601 time (e.g. 2026-11-29 or "
                            "2026-11-29T20:53:50Z)",
                            option, text ? text : "");
    int64_t seconds =
        days_from_civil(year, month, day) * 86400 + hour * 3600LL + minute * 60LL + second - offset;
    int64_t us = seconds * 1000000 + micro + (upper ? unit - 1 : 0);
    if (fm_audit_format_time(us, out))
        return fm_error_set(err, FM_EINVAL, "%s: '%.64s' is outside the years 0000 to 9999", option,
                            text);
    return FM_OK;
}

/* ---- a snapshot ---- */

typedef struct snapshot {
    fm_audit_paths_t paths;
    int log_fd;
    int64_t size; /* the log's size at the snapshot: nothing after it is read */
    int head_exists;
    unsigned char head[FM_AUDIT_HEAD_BYTES];
    size_t head_bytes;
} snapshot_t;

static int read_head_file(snapshot_t *s, fm_error_t *err) {
    int fd = open(s->paths.head, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return FM_OK;
        return fm_error_set(err, errno == ELOOP ? FM_EDENIED : FM_EIO, "%s: cannot open: %s",
                            s->paths.head, strerror(errno));
    }
    s->head_exists = 1;
    ssize_t n = fm_audit_read_head_bytes(fd, s->head);
    int e = errno;
    close(fd);
    if (n < 0) return fm_error_set(err, FM_EIO, "%s: cannot read: %s", s->paths.head, strerror(e));
    s->head_bytes = (size_t)n;
    return FM_OK;
}

static int snapshot_open(snapshot_t *s, const char *home, fm_error_t *err) {
    memset(s, 0, sizeof *s);
    s->log_fd = -1;
    int rc = fm_audit_paths_init(&s->paths, home, err);
    if (!rc) rc = fm_audit_check_legacy(&s->paths, err);
    if (rc) return rc;
    const char *path = s->paths.log;
    s->log_fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (s->log_fd < 0) {
        int e = errno;
        if (e == ENOENT) return fm_error_set(err, FM_ENOTFOUND, "%s: no audit log here", path);
        if (e == ELOOP)
            return fm_error_set(err, FM_EDENIED, "%s: is a symbolic link (refused)", path);
        return fm_error_set(err, FM_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(s->log_fd, &st) != 0 || !S_ISREG(st.st_mode))
        return fm_error_set(err, FM_EFORMAT, "%s: not a regular file", path);
    rc = fm_audit_lock(s->log_fd, LOCK_SH, path, err);
    if (rc) return rc;
    if (fstat(s->log_fd, &st) != 0)
        rc = fm_error_set(err, FM_EIO, "%s: cannot stat: %s", path, strerror(errno));
    s->size = (int64_t)st.st_size;
    if (!rc) rc = read_head_file(s, err);
    fm_audit_unlock(s->log_fd);
    if (!rc) rc = fm_audit_check_start(s->log_fd, path, s->size, err);
    return rc;
}

static void snapshot_close(snapshot_t *s) {
    if (s->log_fd >= 0) close(s->log_fd);
    s->log_fd = -1;
}

/* ---- verify ---- */

typedef struct verifier {
    snapshot_t s;
    unsigned char key[FM_AUDIT_KEY_BYTES];
    fm_audit_slots_t slots;
    int head_valid;
    fm_audit_head_t head;
    fm_buf_t bad; /* a copy of the bad line, while the log is searched for what it is */
} verifier_t;

/* FM_EDATA with "<log>: <what>". */
static int damage(verifier_t *v, fm_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int damage(verifier_t *v, fm_error_t *err, const char *fmt, ...) {
    char what[FM_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return fm_error_set(err, FM_EDATA, "%s: %s", v->s.paths.log, what);
}

/* What a second pass over the log finds out about the bad line. Line numbers count from 1;
 * 0 means none found. */
typedef struct lookup {
    int64_t bad_line;
    const fm_audit_line_t *bad;            /* its parsed fields */
    const unsigned char *expected_prev;    /* the hash the entry at its place should link to */
    int64_t want_seq;                      /* a line other than bad with this seq */
    int64_t copy_line, copy_seq;           /* a line with the bad line's prev and hash */
    int64_t successor_line, successor_seq; /* a later line linking to expected_prev */
    int64_t by_hash_line;                  /* a line whose hash is the bad line's prev */
    int64_t seq_line;                      /* the first line with want_seq */
} lookup_t;

static int lookup_scan(verifier_t *v, lookup_t *q, fm_error_t *err) {
    fm_audit_reader_t r;
    fm_audit_reader_init(&r, v->s.log_fd, v->s.paths.log, 0, v->s.size);
    const char *text;
    size_t len;
    int64_t at;
    int rc;
    while ((rc = fm_audit_reader_next(&r, &text, &len, &at, err)) == 1) {
        fm_audit_line_t line;
        if (r.line_no == q->bad_line || fm_audit_line_parse(text, len, &line)) continue;
        if (!q->copy_line && !memcmp(line.hash, q->bad->hash, FM_AUDIT_HASH_BYTES) &&
            !memcmp(line.prev, q->bad->prev, FM_AUDIT_HASH_BYTES)) {
            q->copy_line = r.line_no;
            q->copy_seq = line.seq;
        }
        if (!q->successor_line && q->expected_prev && r.line_no > q->bad_line &&
            !memcmp(line.prev, q->expected_prev, FM_AUDIT_HASH_BYTES)) {
            q->successor_line = r.line_no;
            q->successor_seq = line.seq;
        }
        if (!q->by_hash_line && !memcmp(line.hash, q->bad->prev, FM_AUDIT_HASH_BYTES))
            q->by_hash_line = r.line_no;
        if (!q->seq_line && q->want_seq && line.seq == q->want_seq) q->seq_line = r.line_no;
    }
    fm_audit_reader_free(&r);
    return rc < 0 ? rc : FM_OK;
}

/* The line's own hash (over its contents with its stored prev) matches. */
static int self_consistent(verifier_t *v, const fm_audit_line_t *line) {
    unsigned char computed[FM_AUDIT_HASH_BYTES];
    fm_audit_line_hash(v->key, line->prev, line, computed);
    return sodium_memcmp(computed, line->hash, FM_AUDIT_HASH_BYTES) == 0;
}

/* A line whose seq is below the next expected one: it repeats an entry or a seq. */
static int seq_too_low(verifier_t *v, const fm_audit_line_t *line, int64_t line_no,
                       fm_error_t *err) {
    long long seq = (long long)line->seq;
    if (line->seq < 1) return damage(v, err, "seq %lld: inserted (seq numbers start at 1)", seq);
    lookup_t q = {.bad_line = line_no, .bad = line, .want_seq = line->seq};
    int rc = lookup_scan(v, &q, err);
    if (rc) return rc;
    if (q.copy_line)
        return damage(v, err, "seq %lld (line %lld): inserted (a copy of the entry at line %lld)",
                      seq, (long long)line_no, (long long)q.copy_line);
    return damage(v, err, "seq %lld (line %lld): inserted (seq %lld is already at line %lld)", seq,
                  (long long)line_no, seq, (long long)q.seq_line);
}

/* A line whose seq is above the next expected one: entries missing, or moved. */
static int seq_too_high(verifier_t *v, const fm_audit_line_t *line, int64_t line_no,
                        int64_t expected, fm_error_t *err) {
    long long seq = (long long)line->seq, want = (long long)expected;
    lookup_t q = {.bad_line = line_no, .bad = line, .want_seq = expected};
    int rc = lookup_scan(v, &q, err);
    if (rc) return rc;
    if (q.seq_line && !self_consistent(v, line))
        return damage(v, err,
                      "seq %lld (line %lld): inserted (its hash does not match its contents; seq "
                      "%lld is at line %lld)",
                      seq, (long long)line_no, want, (long long)q.seq_line);
    if (q.seq_line)
        return damage(v, err,
                      "seq %lld: out of order (line %lld holds seq %lld; seq %lld is at "
                      "line %lld)",
                      want, (long long)line_no, seq, want, (long long)q.seq_line);
    if (line->seq == expected + 1) return damage(v, err, "seq %lld: missing (deleted)", want);
    return damage(v, err, "seq %lld to %lld: missing (deleted)", want, seq - 1);
}

/*
 * Names what is wrong with the line at the expected seq whose hash or link failed. expected_prev
 * is the hash of the entry before it (zeros for seq 1).
 */
static int classify(verifier_t *v, const fm_audit_line_t *line, int64_t line_no, int prev_ok,
                    const unsigned char *expected_prev, fm_error_t *err) {
    long long seq = (long long)line->seq;
    if (!prev_ok) {
        unsigned char computed[FM_AUDIT_HASH_BYTES];
        fm_audit_line_hash(v->key, expected_prev, line, computed);
        if (sodium_memcmp(computed, line->hash, FM_AUDIT_HASH_BYTES) == 0)
            return damage(v, err, "seq %lld: modified (its link to the entry before it was edited)",
                          seq);
    }
    lookup_t q = {.bad_line = line_no, .bad = line, .expected_prev = expected_prev};
    int rc = lookup_scan(v, &q, err);
    if (rc) return rc;
    if (q.copy_line)
        return damage(v, err, "seq %lld: inserted (a copy of the entry at seq %lld, line %lld)",
                      seq, (long long)q.copy_seq, (long long)q.copy_line);
    if (q.successor_line && !prev_ok && q.by_hash_line)
        return damage(v, err,
                      "seq %lld: out of order (the entry that follows seq %lld is at line %lld, as "
                      "seq %lld)",
                      seq, seq - 1, (long long)q.successor_line, (long long)q.successor_seq);
    if (q.successor_line)
        return damage(v, err,
                      "seq %lld: inserted (not part of the chain: the entry at line %lld follows "
                      "seq %lld)",
                      seq, (long long)q.successor_line, seq - 1);
    if (prev_ok && line->seq == 1 && !v->head_valid)
        return damage(v, err,
                      "seq 1: modified (its hash does not match its contents; with the head's MAC "
                      "also wrong, audit.key is most likely not the key this log was written "
                      "with)");
    if (prev_ok)
        return damage(v, err, "seq %lld: modified (its hash does not match its contents)", seq);
    return damage(v, err,
                  "seq %lld: modified or out of place (neither its hash nor its link to seq %lld "
                  "matches: an entry before it may have been deleted and the rest renumbered)",
                  seq, seq - 1);
}

/* The first bad line, with its own copy of the text (the reader's buffer moves on). */
static int bad_line(verifier_t *v, const fm_audit_line_t *line, fm_audit_line_t *copy,
                    fm_error_t *err) {
    fm_buf_reset(&v->bad);
    if (fm_buf_append(&v->bad, line->text, line->len))
        return fm_error_set(err, FM_ENOMEM, "%s: out of memory", v->s.paths.log);
    *copy = *line;
    copy->text = v->bad.data;
    copy->time = v->bad.data + (line->time - line->text);
    copy->model = line->model ? v->bad.data + (line->model - line->text) : NULL;
    return FM_OK;
}

/* Checks one line at the place of seq expected; FM_OK when it is that entry and chains. */
static int check_line(verifier_t *v, const fm_audit_line_t *line, int64_t line_no, int64_t expected,
                      const unsigned char *prev, fm_error_t *err) {
    if (line->seq == expected) {
        int prev_ok = sodium_memcmp(line->prev, prev, FM_AUDIT_HASH_BYTES) == 0;
        if (prev_ok && self_consistent(v, line)) return FM_OK;
    }
    fm_audit_line_t copy;
    int rc = bad_line(v, line, &copy, err);
    if (rc) return rc;
    if (copy.seq < expected) return seq_too_low(v, &copy, line_no, err);
    if (copy.seq > expected) return seq_too_high(v, &copy, line_no, expected, err);
    if (v->head_valid && copy.seq > v->head.seq)
        return damage(v, err, "seq %lld: inserted (after the head, which ends the log at seq %lld)",
                      (long long)copy.seq, (long long)v->head.seq);
    int prev_ok = sodium_memcmp(copy.prev, prev, FM_AUDIT_HASH_BYTES) == 0;
    return classify(v, &copy, line_no, prev_ok, prev, err);
}

/* After the walk: the head must be there, valid, and cover the entries (last is the count). */
static int check_head(verifier_t *v, int64_t last, int64_t head_end,
                      const unsigned char *head_line_hash, fm_error_t *err) {
    if (v->slots.bytes == 0) {
        if (last == 0) return FM_OK; /* a log created and never written */
        return damage(v, err, "head: missing (%s was deleted or emptied)", v->s.paths.head);
    }
    if (!v->head_valid) {
        int64_t seq = -1;
        for (int i = 0; i < 2; i++)
            if (v->slots.readable[i] && v->slots.slot[i].seq > seq) seq = v->slots.slot[i].seq;
        const char *why = "neither slot's MAC matches: the head was edited, or audit.key is not "
                          "the key this log was written with";
        if (seq < 0) return damage(v, err, "head: modified (%s)", why);
        return damage(v, err, "head (seq %lld): modified (%s)", (long long)seq, why);
    }
    long long head_seq = (long long)v->head.seq;
    if (v->head.seq > last) {
        if (v->head.seq == last + 1)
            return damage(v, err,
                          "seq %lld: missing (deleted at the end: the head ends the log at seq "
                          "%lld)",
                          head_seq, head_seq);
        return damage(v, err,
                      "seq %lld to %lld: missing (deleted at the end: the head ends the log at "
                      "seq %lld)",
                      (long long)last + 1, head_seq, head_seq);
    }
    unsigned char zero[FM_AUDIT_HASH_BYTES] = {0};
    const unsigned char *want = v->head.seq ? head_line_hash : zero;
    int64_t end = v->head.seq ? head_end : 0;
    if (sodium_memcmp(v->head.hash, want, FM_AUDIT_HASH_BYTES) != 0 || v->head.length != end)
        return damage(v, err,
                      "head (seq %lld): does not match the entry seq %lld in the log (its hash or "
                      "its end, byte %lld, differs: the entry was replaced)",
                      head_seq, head_seq, (long long)v->head.length);
    return FM_OK;
}

/* The walk over every line, then the head. */
static int verify_walk(verifier_t *v, fm_audit_summary_t *out, fm_error_t *err) {
    fm_audit_reader_t r;
    fm_audit_reader_init(&r, v->s.log_fd, v->s.paths.log, 0, v->s.size);
    unsigned char prev[FM_AUDIT_HASH_BYTES] = {0}, head_line_hash[FM_AUDIT_HASH_BYTES] = {0};
    int64_t expected = 1, head_end = -1, at;
    const char *text;
    size_t len;
    int rc;
    while ((rc = fm_audit_reader_next(&r, &text, &len, &at, err)) == 1) {
        fm_audit_line_t line;
        const char *why = fm_audit_line_parse(text, len, &line);
        if (why) {
            rc = damage(v, err, "seq %lld: modified (line %lld is not a well-formed entry: %s)",
                        (long long)expected, (long long)r.line_no, why);
            break;
        }
        rc = check_line(v, &line, r.line_no, expected, prev, err);
        if (rc) break;
        if (line.seq == v->head.seq) {
            head_end = at + (int64_t)len + 1;
            memcpy(head_line_hash, line.hash, sizeof head_line_hash);
        }
        memcpy(prev, line.hash, sizeof prev);
        expected++;
    }
    fm_audit_reader_free(&r);
    if (rc < 0) return rc;
    int64_t last = expected - 1;
    rc = check_head(v, last, head_end, head_line_hash, err);
    if (rc) return rc;
    out->entries = last;
    out->head_seq = v->head_valid ? v->head.seq : 0;
    fm_audit_hex(v->head_valid ? v->head.hash : prev, FM_AUDIT_HASH_BYTES, out->head_hash);
    return FM_OK;
}

int fm_audit_verify_summary(const char *home, fm_audit_summary_t *out, fm_error_t *err) {
    memset(out, 0, sizeof *out);
    fm_audit_hex((const unsigned char[FM_AUDIT_HASH_BYTES]){0}, FM_AUDIT_HASH_BYTES,
                 out->head_hash);
    if (fm_digest_library_init())
        return fm_error_set(err, FM_EUNSUPPORTED, "audit log: cannot initialise libsodium");
    verifier_t v;
    memset(&v, 0, sizeof v);
    /* The log first, so that a home without a log is named as such. */
    int rc = snapshot_open(&v.s, home, err);
    if (!rc) rc = fm_audit_key_load(&v.s.paths, 0, v.key, err);
    if (!rc) {
        fm_audit_slots_decode(v.key, v.s.head, v.s.head_bytes, &v.slots);
        v.head_valid = v.slots.best >= 0;
        if (v.head_valid) v.head = v.slots.slot[v.slots.best];
        rc = verify_walk(&v, out, err);
    }
    snapshot_close(&v.s);
    fm_buf_free(&v.bad);
    sodium_memzero(v.key, sizeof v.key);
    return rc;
}

int fm_audit_verify(const char *home, int64_t *entries, fm_error_t *err) {
    fm_audit_summary_t summary;
    int rc = fm_audit_verify_summary(home, &summary, err);
    if (entries) *entries = summary.entries;
    return rc;
}

/* ---- export and query ---- */

/* Normalised filter values: the model as the log escapes it, the times in the stored form. */
typedef struct filter {
    char since[FM_AUDIT_TIME_SIZE], until[FM_AUDIT_TIME_SIZE];
    int has_since, has_until;
    char *model; /* escaped, without the quotes; NULL: no filter */
    size_t model_len;
} filter_t;

static void filter_free(filter_t *f) {
    free(f->model);
    f->model = NULL;
}

static int filter_init(filter_t *f, const char *model, const char *since, const char *until,
                       fm_error_t *err) {
    memset(f, 0, sizeof *f);
    if (since) {
        int rc = fm_audit_parse_time("since", since, 0, f->since, err);
        if (rc) return rc;
        f->has_since = 1;
    }
    if (until) {
        int rc = fm_audit_parse_time("until", until, 1, f->until, err);
        if (rc) return rc;
        f->has_until = 1;
    }
    if (model) {
        /* Compared with the stored text as it is: escaping is deterministic, so equal escaped
         * texts mean equal models, and no line needs unescaping. */
        size_t bound = 6 * strlen(model) + 3;
        f->model = malloc(bound);
        if (!f->model) return fm_error_set(err, FM_ENOMEM, "audit log: out of memory");
        char *end = fm_audit_put_string(f->model, f->model + bound, model);
        f->model_len = (size_t)(end - f->model) - 2;
        memmove(f->model, f->model + 1, f->model_len);
    }
    return FM_OK;
}

static int filter_match(const filter_t *f, const fm_audit_line_t *line) {
    if (f->model && (!line->model || line->model_len != f->model_len ||
                     memcmp(line->model, f->model, f->model_len) != 0))
        return 0;
    if (f->has_since && memcmp(line->time, f->since, FM_AUDIT_TIME_SIZE - 1) < 0) return 0;
    if (f->has_until && memcmp(line->time, f->until, FM_AUDIT_TIME_SIZE - 1) > 0) return 0;
    return 1;
}

/* Calls each(ctx, line) for every line that passes the filter, oldest first, until it returns
 * non-zero (a negative code: that error; 1: stop). A line that is not an entry is FM_EDATA. */
static int scan(const char *home, const filter_t *f, int (*each)(void *, const fm_audit_line_t *),
                void *ctx, fm_error_t *err) {
    snapshot_t s;
    int rc = snapshot_open(&s, home, err);
    if (rc) {
        snapshot_close(&s);
        return rc;
    }
    fm_audit_reader_t r;
    fm_audit_reader_init(&r, s.log_fd, s.paths.log, 0, s.size);
    const char *text;
    size_t len;
    int64_t at;
    while ((rc = fm_audit_reader_next(&r, &text, &len, &at, err)) == 1) {
        fm_audit_line_t line;
        const char *why = fm_audit_line_parse(text, len, &line);
        if (why) {
            rc = fm_error_set(err, FM_EDATA,
                              "%s: line %lld is not an audit entry (%s): finmaas audit verify "
                              "names the damage",
                              s.paths.log, (long long)r.line_no, why);
            break;
        }
        if (!filter_match(f, &line)) continue;
        rc = each(ctx, &line);
        if (rc) break;
    }
    fm_audit_reader_free(&r);
    snapshot_close(&s);
    return rc < 0 ? rc : FM_OK;
}

typedef struct export_state {
    FILE *out;
    fm_buf_t b;
    fm_error_t *err;
} export_state_t;

static int export_line(void *ctx, const fm_audit_line_t *line) {
    export_state_t *x = ctx;
    if (fm_buf_append(&x->b, line->text, line->len) || fm_buf_putc(&x->b, '\n'))
        return fm_error_set(x->err, FM_ENOMEM, "audit export: out of memory");
    /* Written in blocks: one fwrite per line would dominate a large export. */
    if (x->b.len >= 1 << 16) {
        if (fwrite(x->b.data, 1, x->b.len, x->out) != x->b.len)
            return fm_error_set(x->err, FM_EIO, "audit export: write error");
        fm_buf_reset(&x->b);
    }
    return 0;
}

int fm_audit_export(const char *home, const char *model, const char *since, const char *until,
                    FILE *out, fm_error_t *err) {
    filter_t f;
    int rc = filter_init(&f, model, since, until, err);
    export_state_t x = {.out = out, .b = FM_BUF_INIT, .err = err};
    if (!rc) rc = scan(home, &f, export_line, &x, err);
    if (!rc && x.b.len && fwrite(x.b.data, 1, x.b.len, out) != x.b.len)
        rc = fm_error_set(err, FM_EIO, "audit export: write error");
    if (!rc && (fflush(out) != 0 || ferror(out)))
        rc = fm_error_set(err, FM_EIO, "audit export: write error");
    fm_buf_free(&x.b);
    filter_free(&f);
    return rc;
}

typedef struct query_state {
    cJSON *array;
    size_t limit, count;
    fm_error_t *err;
} query_state_t;

static int query_line(void *ctx, const fm_audit_line_t *line) {
    query_state_t *q = ctx;
    if (q->count >= q->limit) return 1;
    /* The parser accepted the line, so it is valid JSON: NULL here is out of memory. */
    cJSON *o = cJSON_ParseWithLength(line->text, line->len);
    if (!o) return fm_error_set(q->err, FM_ENOMEM, "audit query: out of memory");
    cJSON_AddItemToArray(q->array, o);
    q->count++;
    return q->count >= q->limit ? 1 : 0;
}

int fm_audit_query(const char *home, const char *model, const char *since, const char *until,
                   size_t limit, cJSON **out, fm_error_t *err) {
    *out = NULL;
    filter_t f;
    int rc = filter_init(&f, model, since, until, err);
    if (rc) {
        filter_free(&f);
        return rc;
    }
    query_state_t q = {.array = cJSON_CreateArray(), .limit = limit, .err = err};
    if (!q.array) rc = fm_error_set(err, FM_ENOMEM, "audit query: out of memory");
    if (!rc && limit == 0) {
        /* Still opened, so that a home without a log gives the same error as with a limit. */
        snapshot_t s;
        rc = snapshot_open(&s, home, err);
        snapshot_close(&s);
    } else if (!rc) {
        rc = scan(home, &f, query_line, &q, err);
    }
    filter_free(&f);
    if (rc) {
        cJSON_Delete(q.array);
        return rc;
    }
    *out = q.array;
    return FM_OK;
}
