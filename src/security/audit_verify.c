/*
 * Reading the audit log: verification of the whole chain, export as JSON lines, and the filtered
 * query the HTTP API serves. Each opens its own connection (never creating anything) and reads in
 * one transaction, so it sees one consistent snapshot while a server keeps appending (WAL lets
 * readers and the writer proceed together).
 *
 * Verification walks the entries in seq order and stops at the first bad one. Each entry's hash is
 * recomputed from its stored fields and its stored prev (needs the audit key), prev must be the
 * hash of the entry before, and seq must follow on without a gap; then the head (seq, hash, MAC)
 * must describe the last entry. The kind of damage is named from what the stored links show:
 *   modified      prev links fine, but the hash does not match the contents (or the link itself
 *                 was edited: the hash matches once the right prev is put back);
 *   missing       a gap in seq (deleted entries), or the head points past the last entry
 *                 (deleted at the end);
 *   inserted      a row that is not in the chain: the entry after it links straight to the one
 *                 before it, or it is a copy of another entry, or it lies after the head;
 *   out of order  a genuine entry in the wrong place: it links to another stored entry, and the
 *                 true successor of the previous entry is stored elsewhere.
 *
 * Export lines are the canonical text of each entry with "prev" and "hash" added before the
 * closing brace, so whoever holds the key can recompute every hash from the export alone.
 */
#include "security/audit_internal.h"

#include "core/digest.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

/* ---- a read connection ---- */

typedef struct reader {
    fm_audit_paths_t paths;
    sqlite3 *db;
    int in_transaction;
} reader_t;

static int reader_open(reader_t *r, const char *home, fm_error_t *err) {
    memset(r, 0, sizeof *r);
    int rc = fm_audit_paths_init(&r->paths, home, err);
    if (!rc) rc = fm_audit_db_open(&r->paths, 0, NULL, &r->db, err);
    if (rc) return rc;
    int src = sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL);
    if (src != SQLITE_OK) return fm_audit_db_error(r->db, r->paths.db, src, "cannot read", err);
    r->in_transaction = 1;
    return FM_OK;
}

static void reader_close(reader_t *r) {
    if (r->in_transaction) sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(r->db);
    r->db = NULL;
}

static int prepare(reader_t *r, const char *sql, sqlite3_stmt **s, fm_error_t *err) {
    int src = sqlite3_prepare_v2(r->db, sql, -1, s, NULL);
    if (src == SQLITE_OK) return FM_OK;
    return fm_error_set(err, fm_audit_status_of(src), "%s: not a finmaas audit log (%s)",
                        r->paths.db, sqlite3_errmsg(r->db));
}

/* ---- verify ---- */

typedef struct verifier {
    reader_t r;
    unsigned char key[FM_AUDIT_KEY_BYTES];
    fm_buf_t text;
    int head_found; /* a head row exists */
    int head_valid; /* ... well-formed with a MAC that matches */
    int64_t head_seq;
    unsigned char head_hash[FM_AUDIT_HASH_BYTES];
    sqlite3_stmt *successor; /* later entry whose prev is ?1 */
    sqlite3_stmt *by_hash;   /* an entry (other than ?2) whose hash is ?1 */
    sqlite3_stmt *copy_of;   /* an entry (other than ?2) with hash ?1 and prev ?3 */
} verifier_t;

/* FM_EDATA with "<db>: <what>" and the rest of the sentence. */
static int damage(verifier_t *v, fm_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int damage(verifier_t *v, fm_error_t *err, const char *fmt, ...) {
    char what[FM_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return fm_error_set(err, FM_EDATA, "%s: %s", v->r.paths.db, what);
}

static int read_head(verifier_t *v, fm_error_t *err) {
    sqlite3_stmt *s = NULL;
    int rc = prepare(&v->r, "SELECT seq, hash, mac FROM head WHERE id = 1", &s, err);
    if (rc) return rc;
    int src = sqlite3_step(s);
    if (src == SQLITE_ROW) {
        unsigned char mac[FM_AUDIT_HASH_BYTES], want[FM_AUDIT_HASH_BYTES];
        v->head_found = 1;
        v->head_seq = sqlite3_column_int64(s, 0);
        int well_formed = sqlite3_column_type(s, 0) == SQLITE_INTEGER &&
                          !fm_audit_unhex((const char *)sqlite3_column_text(s, 1), v->head_hash,
                                          sizeof v->head_hash) &&
                          !fm_audit_unhex((const char *)sqlite3_column_text(s, 2), mac, sizeof mac);
        if (well_formed) {
            fm_audit_head_mac(v->key, v->head_seq, v->head_hash, want);
            v->head_valid = sodium_memcmp(mac, want, sizeof mac) == 0;
        }
    } else if (src != SQLITE_DONE) {
        rc = fm_audit_db_error(v->r.db, v->r.paths.db, src, "cannot read the head", err);
    }
    sqlite3_finalize(s);
    return rc;
}

/* The first seq > after whose prev is hex, or 0 when none. */
static int64_t find_successor(verifier_t *v, const char *hex, int64_t after) {
    sqlite3_reset(v->successor);
    sqlite3_bind_text(v->successor, 1, hex, -1, SQLITE_STATIC);
    sqlite3_bind_int64(v->successor, 2, after);
    int64_t seq =
        sqlite3_step(v->successor) == SQLITE_ROW ? sqlite3_column_int64(v->successor, 0) : 0;
    sqlite3_reset(v->successor);
    return seq;
}

/* An entry other than seq whose stored hash is hex: 1 and its seq in *found, else 0. */
static int find_by_hash(verifier_t *v, const char *hex, int64_t seq, int64_t *found) {
    sqlite3_reset(v->by_hash);
    sqlite3_bind_text(v->by_hash, 1, hex, -1, SQLITE_STATIC);
    sqlite3_bind_int64(v->by_hash, 2, seq);
    int hit = sqlite3_step(v->by_hash) == SQLITE_ROW;
    if (hit) *found = sqlite3_column_int64(v->by_hash, 0);
    sqlite3_reset(v->by_hash);
    return hit;
}

/* An entry other than seq with the same hash and prev (a copy): 1 and its seq in *found. */
static int find_copy(verifier_t *v, const char *hash_hex, const char *prev_hex, int64_t seq,
                     int64_t *found) {
    sqlite3_reset(v->copy_of);
    sqlite3_bind_text(v->copy_of, 1, hash_hex, -1, SQLITE_STATIC);
    sqlite3_bind_int64(v->copy_of, 2, seq);
    sqlite3_bind_text(v->copy_of, 3, prev_hex, -1, SQLITE_STATIC);
    int hit = sqlite3_step(v->copy_of) == SQLITE_ROW;
    if (hit) *found = sqlite3_column_int64(v->copy_of, 0);
    sqlite3_reset(v->copy_of);
    return hit;
}

/* Which column of the current row has a type the schema does not allow, or NULL. */
static const char *bad_column(sqlite3_stmt *s) {
    static const struct {
        int col;
        const char *name;
        int nullable;
        int integer;
    } columns[] = {
        {FM_AUDIT_COL_TIME, "time", 0, 0},
        {FM_AUDIT_COL_KEY_ID, "key_id", 0, 0},
        {FM_AUDIT_COL_ROLE, "role", 1, 0},
        {FM_AUDIT_COL_ACTION, "action", 0, 0},
        {FM_AUDIT_COL_MODEL, "model", 1, 0},
        {FM_AUDIT_COL_VERSION, "version", 0, 1},
        {FM_AUDIT_COL_REQUEST_ID, "request_id", 1, 0},
        {FM_AUDIT_COL_STATUS, "status", 0, 1},
        {FM_AUDIT_COL_INPUT_DIGEST, "input_digest", 1, 0},
        {FM_AUDIT_COL_OUTPUT, "output", 1, 0},
        {FM_AUDIT_COL_DETAIL, "detail", 1, 0},
        {FM_AUDIT_COL_PREV, "prev", 0, 0},
        {FM_AUDIT_COL_HASH, "hash", 0, 0},
    };
    for (size_t i = 0; i < sizeof columns / sizeof columns[0]; i++) {
        int type = sqlite3_column_type(s, columns[i].col);
        if (type == SQLITE_NULL && columns[i].nullable) continue;
        if (type != (columns[i].integer ? SQLITE_INTEGER : SQLITE_TEXT)) return columns[i].name;
    }
    return NULL;
}

/*
 * Names what is wrong with entry seq, the first whose hash or link failed. expected_prev is the
 * hash of the entry before it (zeros for seq 1).
 */
static int classify(verifier_t *v, const fm_audit_row_t *row, const char *prev_hex,
                    const char *hash_hex, int prev_ok, const unsigned char *expected_prev,
                    fm_error_t *err) {
    long long seq = (long long)row->seq;
    unsigned char computed[FM_AUDIT_HASH_BYTES], stored[FM_AUDIT_HASH_BYTES];
    char expected_hex[FM_AUDIT_HASH_HEX];
    fm_audit_hex(expected_prev, FM_AUDIT_HASH_BYTES, expected_hex);
    fm_audit_unhex(hash_hex, stored, sizeof stored);
    if (!prev_ok) {
        fm_audit_entry_hash(v->key, expected_prev, v->text.data, v->text.len, computed);
        if (sodium_memcmp(computed, stored, sizeof stored) == 0)
            return damage(v, err, "seq %lld: modified (its link to the entry before it was edited)",
                          seq);
    }
    int64_t other = 0;
    if (find_copy(v, hash_hex, prev_hex, row->seq, &other))
        return damage(v, err, "seq %lld: inserted (a copy of the entry at seq %lld)", seq,
                      (long long)other);
    int64_t successor = find_successor(v, expected_hex, row->seq);
    if (successor > 0 && !prev_ok && find_by_hash(v, prev_hex, row->seq, &other))
        return damage(v, err,
                      "seq %lld: out of order (the entry that follows seq %lld is stored as seq "
                      "%lld)",
                      seq, seq - 1, (long long)successor);
    if (successor > 0)
        return damage(v, err,
                      "seq %lld: inserted (not part of the chain: the entry stored as seq %lld "
                      "follows seq %lld)",
                      seq, (long long)successor, seq - 1);
    if (prev_ok && row->seq == 1 && !v->head_valid)
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

/* The walk over every entry, then the head. */
static int verify_walk(verifier_t *v, fm_audit_summary_t *out, fm_error_t *err) {
    sqlite3_stmt *s = NULL;
    int rc = prepare(&v->r, "SELECT " FM_AUDIT_COLUMNS " FROM entries ORDER BY seq", &s, err);
    if (rc) return rc;
    unsigned char prev[FM_AUDIT_HASH_BYTES] = {0}, stored_prev[FM_AUDIT_HASH_BYTES];
    unsigned char stored[FM_AUDIT_HASH_BYTES], computed[FM_AUDIT_HASH_BYTES];
    int64_t expected = 1;
    int src;
    while (!rc && (src = sqlite3_step(s)) == SQLITE_ROW) {
        fm_audit_row_t row;
        const char *prev_hex, *hash_hex;
        const char *column = bad_column(s);
        row.seq = sqlite3_column_int64(s, FM_AUDIT_COL_SEQ);
        long long seq = (long long)row.seq;
        if (column) {
            rc = damage(v, err, "seq %lld: modified (its %s has a type the log never writes)", seq,
                        column);
            break;
        }
        fm_audit_row_read(s, &row, &prev_hex, &hash_hex);
        if (v->head_valid && row.seq > v->head_seq) {
            rc = damage(v, err,
                        "seq %lld: inserted (after the head, which ends the log at seq %lld)", seq,
                        (long long)v->head_seq);
            break;
        }
        if (row.seq < expected) {
            rc = damage(v, err, "seq %lld: inserted (seq numbers start at 1)", seq);
            break;
        }
        if (row.seq > expected) {
            if (row.seq == expected + 1)
                rc = damage(v, err, "seq %lld: missing (deleted)", (long long)expected);
            else
                rc = damage(v, err, "seq %lld to %lld: missing (deleted)", (long long)expected,
                            seq - 1);
            break;
        }
        if (fm_audit_unhex(prev_hex, stored_prev, sizeof stored_prev) ||
            fm_audit_unhex(hash_hex, stored, sizeof stored)) {
            rc = damage(v, err, "seq %lld: modified (its prev or hash is not 64 hex digits)", seq);
            break;
        }
        fm_buf_reset(&v->text);
        if (fm_audit_canonical(&v->text, &row)) {
            rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", v->r.paths.db);
            break;
        }
        fm_audit_entry_hash(v->key, stored_prev, v->text.data, v->text.len, computed);
        int hash_ok = sodium_memcmp(computed, stored, sizeof stored) == 0;
        int prev_ok = sodium_memcmp(stored_prev, prev, sizeof prev) == 0;
        if (!hash_ok || !prev_ok) {
            rc = classify(v, &row, prev_hex, hash_hex, prev_ok, prev, err);
            break;
        }
        memcpy(prev, stored, sizeof prev);
        expected++;
    }
    if (!rc && src != SQLITE_DONE)
        rc = fm_audit_db_error(v->r.db, v->r.paths.db, src, "cannot read the entries", err);
    sqlite3_finalize(s);
    if (rc) return rc;

    int64_t last = expected - 1;
    char hex[FM_AUDIT_HASH_HEX];
    if (!v->head_found) return damage(v, err, "head: missing (the head row was deleted)");
    if (!v->head_valid)
        return damage(v, err,
                      "head (seq %lld): modified (its MAC does not match: the head was edited, or "
                      "audit.key is not the key this log was written with)",
                      (long long)v->head_seq);
    if (v->head_seq > last) {
        if (v->head_seq == last + 1)
            return damage(v, err,
                          "seq %lld: missing (deleted at the end: the head ends the log "
                          "at seq %lld)",
                          (long long)v->head_seq, (long long)v->head_seq);
        return damage(v, err,
                      "seq %lld to %lld: missing (deleted at the end: the head ends the log at "
                      "seq %lld)",
                      (long long)last + 1, (long long)v->head_seq, (long long)v->head_seq);
    }
    if (sodium_memcmp(v->head_hash, prev, sizeof prev) != 0)
        return damage(v, err,
                      "head (seq %lld): does not match the hash of seq %lld (the last entry was "
                      "replaced)",
                      (long long)v->head_seq, (long long)last);
    fm_audit_hex(v->head_hash, sizeof v->head_hash, hex);
    out->entries = last;
    out->head_seq = v->head_seq;
    memcpy(out->head_hash, hex, sizeof hex);
    return FM_OK;
}

int fm_audit_verify_summary(const char *home, fm_audit_summary_t *out, fm_error_t *err) {
    memset(out, 0, sizeof *out);
    if (fm_digest_library_init())
        return fm_error_set(err, FM_EUNSUPPORTED, "audit log: cannot initialise libsodium");
    verifier_t v;
    memset(&v, 0, sizeof v);
    /* The database first, so that a home without a log is named as such. */
    int rc = reader_open(&v.r, home, err);
    if (!rc) rc = fm_audit_key_load(&v.r.paths, 0, v.key, err);
    if (!rc)
        rc = prepare(&v.r,
                     "SELECT seq FROM entries WHERE prev = ?1 AND seq > ?2 ORDER BY seq "
                     "LIMIT 1",
                     &v.successor, err);
    if (!rc)
        rc = prepare(&v.r,
                     "SELECT seq FROM entries WHERE hash = ?1 AND seq <> ?2 ORDER BY seq "
                     "LIMIT 1",
                     &v.by_hash, err);
    if (!rc)
        rc = prepare(&v.r,
                     "SELECT seq FROM entries WHERE hash = ?1 AND seq <> ?2 AND prev = ?3 "
                     "ORDER BY seq LIMIT 1",
                     &v.copy_of, err);
    if (!rc) rc = read_head(&v, err);
    if (!rc) rc = verify_walk(&v, out, err);
    sqlite3_finalize(v.successor);
    sqlite3_finalize(v.by_hash);
    sqlite3_finalize(v.copy_of);
    reader_close(&v.r);
    fm_buf_free(&v.text);
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

/* Normalised filter values, NULL where there is no filter. */
typedef struct filter {
    char since[28], until[28];
    const char *model, *since_p, *until_p;
} filter_t;

static int filter_init(filter_t *f, const char *model, const char *since, const char *until,
                       fm_error_t *err) {
    memset(f, 0, sizeof *f);
    f->model = model;
    if (since) {
        int rc = fm_audit_parse_time("since", since, 0, f->since, err);
        if (rc) return rc;
        f->since_p = f->since;
    }
    if (until) {
        int rc = fm_audit_parse_time("until", until, 1, f->until, err);
        if (rc) return rc;
        f->until_p = f->until;
    }
    return FM_OK;
}

/* Opens the reader and prepares the filtered SELECT (oldest first, at most limit; -1: all). */
static int select_filtered(reader_t *r, const char *home, const filter_t *f, int64_t limit,
                           sqlite3_stmt **s, fm_error_t *err) {
    int rc = reader_open(r, home, err);
    if (!rc)
        rc = prepare(r,
                     "SELECT " FM_AUDIT_COLUMNS " FROM entries WHERE (?1 IS NULL OR model = ?1) "
                     "AND (?2 IS NULL OR time >= ?2) AND (?3 IS NULL OR time <= ?3) "
                     "ORDER BY seq LIMIT ?4",
                     s, err);
    if (rc) return rc;
    if (f->model) sqlite3_bind_text(*s, 1, f->model, -1, SQLITE_STATIC);
    if (f->since_p) sqlite3_bind_text(*s, 2, f->since_p, -1, SQLITE_STATIC);
    if (f->until_p) sqlite3_bind_text(*s, 3, f->until_p, -1, SQLITE_STATIC);
    sqlite3_bind_int64(*s, 4, limit);
    return FM_OK;
}

/* The export line of a row (without the newline). */
static int export_line(fm_buf_t *b, const fm_audit_row_t *row, const char *prev, const char *hash) {
    int rc = fm_audit_canonical(b, row);
    if (rc) return rc;
    b->len--; /* the closing brace, put back after prev and hash */
    rc = fm_buf_puts(b, ",\"prev\":");
    if (!rc) rc = fm_audit_json_string(b, prev);
    if (!rc) rc = fm_buf_puts(b, ",\"hash\":");
    if (!rc) rc = fm_audit_json_string(b, hash);
    if (!rc) rc = fm_buf_putc(b, '}');
    return rc;
}

int fm_audit_export(const char *home, const char *model, const char *since, const char *until,
                    FILE *out, fm_error_t *err) {
    filter_t f;
    int rc = filter_init(&f, model, since, until, err);
    if (rc) return rc;
    reader_t r;
    sqlite3_stmt *s = NULL;
    rc = select_filtered(&r, home, &f, -1, &s, err);
    fm_buf_t b = FM_BUF_INIT;
    int src = SQLITE_DONE;
    while (!rc && (src = sqlite3_step(s)) == SQLITE_ROW) {
        fm_audit_row_t row;
        const char *prev, *hash;
        fm_audit_row_read(s, &row, &prev, &hash);
        if (export_line(&b, &row, prev, hash) || fm_buf_putc(&b, '\n')) {
            rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", r.paths.db);
            break;
        }
        /* Written in blocks: one fwrite per line would dominate a large export. */
        if (b.len >= 1 << 16) {
            if (fwrite(b.data, 1, b.len, out) != b.len)
                rc = fm_error_set(err, FM_EIO, "audit export: write error");
            fm_buf_reset(&b);
        }
    }
    if (!rc && src != SQLITE_DONE)
        rc = fm_audit_db_error(r.db, r.paths.db, src, "cannot read the entries", err);
    if (!rc && b.len && fwrite(b.data, 1, b.len, out) != b.len)
        rc = fm_error_set(err, FM_EIO, "audit export: write error");
    if (!rc && (fflush(out) != 0 || ferror(out)))
        rc = fm_error_set(err, FM_EIO, "audit export: write error");
    fm_buf_free(&b);
    sqlite3_finalize(s);
    reader_close(&r);
    return rc;
}

/* Adds a string or null. Returns 0 or -1 when cJSON could not allocate. */
static int add_string(cJSON *obj, const char *key, const char *value) {
    return (value ? cJSON_AddStringToObject(obj, key, value) : cJSON_AddNullToObject(obj, key))
               ? 0
               : -1;
}

static cJSON *row_object(const fm_audit_row_t *row, const char *prev, const char *hash) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int bad = !cJSON_AddNumberToObject(o, "seq", (double)row->seq);
    bad |= add_string(o, "time", row->time);
    bad |= add_string(o, "key_id", row->key_id);
    bad |= add_string(o, "role", row->role);
    bad |= add_string(o, "action", row->action);
    bad |= add_string(o, "model", row->model);
    bad |= !cJSON_AddNumberToObject(o, "version", (double)row->version);
    bad |= add_string(o, "request_id", row->request_id);
    bad |= !cJSON_AddNumberToObject(o, "status", (double)row->status);
    bad |= add_string(o, "input_digest", row->input_digest);
    bad |= add_string(o, "output", row->output);
    bad |= add_string(o, "detail", row->detail);
    bad |= add_string(o, "prev", prev);
    bad |= add_string(o, "hash", hash);
    if (bad) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int fm_audit_query(const char *home, const char *model, const char *since, const char *until,
                   size_t limit, cJSON **out, fm_error_t *err) {
    *out = NULL;
    filter_t f;
    int rc = filter_init(&f, model, since, until, err);
    if (rc) return rc;
    cJSON *array = cJSON_CreateArray();
    if (!array) return fm_error_set(err, FM_ENOMEM, "audit query: out of memory");
    reader_t r;
    sqlite3_stmt *s = NULL;
    int64_t capped = limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)limit;
    rc = select_filtered(&r, home, &f, capped, &s, err);
    int src = SQLITE_DONE;
    while (!rc && (src = sqlite3_step(s)) == SQLITE_ROW) {
        fm_audit_row_t row;
        const char *prev, *hash;
        fm_audit_row_read(s, &row, &prev, &hash);
        cJSON *o = row_object(&row, prev, hash);
        if (!o) {
            rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", r.paths.db);
            break;
        }
        cJSON_AddItemToArray(array, o);
    }
    if (!rc && src != SQLITE_DONE)
        rc = fm_audit_db_error(r.db, r.paths.db, src, "cannot read the entries", err);
    sqlite3_finalize(s);
    reader_close(&r);
    if (rc) {
        cJSON_Delete(array);
        return rc;
    }
    *out = array;
    return FM_OK;
}
