/*
 * fm_csv_t: a streaming RFC 4180 reader.
 *
 * Input arrives in blocks of CSV_BLOCK_BYTES (read from a file descriptor, or sliced from a
 * caller's buffer) and every block is hashed (BLAKE2b) as it arrives, so the digest of a file
 * costs no second read. The parser is a small state machine that survives block boundaries; it
 * copies the unescaped bytes of the current record into one growing buffer, each field followed
 * by a NUL, and hands out pointers into it. Only the current record and one block are held, so a
 * file of any size reads in constant memory (bounded by FM_CSV_MAX_RECORD_BYTES).
 *
 * Accepted syntax: fields separated by ','; records ended by LF, CRLF or a lone CR; a field that
 * starts with '"' is quoted and may contain ',', CR, LF and doubled quotes; a '"' inside an
 * unquoted field is kept literally (as most spreadsheet exports expect); a UTF-8 byte-order mark
 * at the very start is skipped; empty lines are skipped. Rejected: a character other than ',',
 * end of line or end of input after a closing quote, an unterminated quoted field, a NUL byte
 * (binary data), and records over the size and field-count limits. Line numbers count LF, CRLF
 * and lone CR alike, also inside quoted fields; columns are 1-based byte offsets in the line.
 */
#include "data/data.h"
#include "data/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CSV_BLOCK_BYTES (64u << 10)

enum { ST_FIELD_START, ST_UNQUOTED, ST_QUOTED, ST_QUOTE_SEEN };

struct fm_csv {
    char *name;
    int fd; /* -1 for memory input */
    const char *mem;
    size_t mem_len, mem_pos;
    char *block_buf;            /* file input only */
    const unsigned char *block; /* current block */
    size_t block_len, pos;
    size_t block_offset; /* input offset of block[0] */
    int started;         /* the first block was read (BOM handled) */
    int at_eof;
    int skip_lf;       /* the last record ended with CR: a following LF belongs to it */
    int failed;        /* code of an earlier error; the reader stays failed */
    int hashing;       /* blocks are added to digest */
    size_t line;       /* line of the next byte */
    size_t line_start; /* input offset of the first byte of that line */
    size_t record_line;
    char *rec; /* unescaped fields, each NUL-terminated */
    size_t rec_len, rec_cap;
    size_t *starts; /* offset of each field in rec */
    char **fields;
    size_t *lens;
    size_t nfields, field_cap;
    fm_digest_t digest;
};

/* Bytes that end a run of ordinary bytes in an unquoted field and in a quoted one. */
static const unsigned char unquoted_special[256] = {[','] = 1, ['\n'] = 1, ['\r'] = 1, [0] = 1};
static const unsigned char quoted_special[256] = {['"'] = 1, ['\n'] = 1, ['\r'] = 1, [0] = 1};
static const unsigned char no_input[1];

#define ONES  UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* High bit set in each byte of x that is zero (exact for the lowest such byte; bytes above it
 * may be flagged falsely, which does not matter because only the lowest is used). */
static inline uint64_t zero_bytes(uint64_t x) {
    return (x - ONES) & ~x & HIGHS;
}

/*
 * The first byte in [p, end) that table marks, or end. table marks NUL, CR, LF and one more byte
 * `other` (',' outside quotes, '"' inside); on little-endian machines eight bytes are tested at
 * a time, since most of a file is ordinary bytes.
 */
static inline const unsigned char *scan_special(const unsigned char *p, const unsigned char *end,
                                                const unsigned char table[256],
                                                unsigned char other) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t others = ONES * other, crs = ONES * '\r', lfs = ONES * '\n';
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t found =
            zero_bytes(x) | zero_bytes(x ^ others) | zero_bytes(x ^ crs) | zero_bytes(x ^ lfs);
        if (found) return p + (__builtin_ctzll(found) >> 3);
        p += 8;
    }
#else
    (void)other;
#endif
    while (p < end && !table[*p])
        p++;
    return p;
}

static int csv_new(const char *name, fm_csv_t **out, fm_error_t *err) {
    *out = NULL;
    if (fm_digest_library_init() != FM_OK)
        return fm_error_set(err, FM_EUNSUPPORTED, "%s: cannot initialise libsodium", name);
    fm_csv_t *c = calloc(1, sizeof *c);
    if (!c) return fm_error_set(err, FM_ENOMEM, "%s: out of memory", name);
    c->name = strdup(name);
    if (!c->name) {
        free(c);
        return fm_error_set(err, FM_ENOMEM, "%s: out of memory", name);
    }
    c->fd = -1;
    c->line = 1;
    c->hashing = 1;
    c->block = no_input; /* never NULL, so that block + 0 is defined */
    fm_digest_init(&c->digest);
    *out = c;
    return FM_OK;
}

int fm_csv_open(const char *path, fm_csv_t **out, fm_error_t *err) {
    int rc = csv_new(path, out, err);
    if (rc) return rc;
    fm_csv_t *c = *out;
    c->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (c->fd < 0 || fstat(c->fd, &st) != 0) {
        rc = fm_error_set(err, FM_EIO, "%s: cannot open: %s", path, strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        rc = fm_error_set(err, FM_EIO, "%s: is a directory", path);
    } else if (!(c->block_buf = malloc(CSV_BLOCK_BYTES))) {
        rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", path);
    }
    if (rc) {
        fm_csv_close(c);
        *out = NULL;
    }
    return rc;
}

int fm_csv_open_memory(const char *data, size_t len, const char *name, fm_csv_t **out,
                       fm_error_t *err) {
    int rc = csv_new(name ? name : "(memory)", out, err);
    if (rc) return rc;
    (*out)->mem = data;
    (*out)->mem_len = len;
    return FM_OK;
}

/* Makes the next block current and hashes it. Returns 1, 0 at end of input, or an error. */
static int csv_refill(fm_csv_t *c, fm_error_t *err) {
    if (c->at_eof) return 0;
    c->block_offset += c->block_len;
    c->pos = c->block_len = 0;
    if (c->fd < 0) {
        size_t n = c->mem_len - c->mem_pos;
        if (n > CSV_BLOCK_BYTES) n = CSV_BLOCK_BYTES;
        if (n == 0) {
            c->at_eof = 1;
            return 0;
        }
        c->block = (const unsigned char *)c->mem + c->mem_pos;
        c->mem_pos += n;
        c->block_len = n;
    } else {
        /* Fill the whole block so that the first one holds any byte-order mark entirely. */
        while (c->block_len < CSV_BLOCK_BYTES) {
            ssize_t n = read(c->fd, c->block_buf + c->block_len, CSV_BLOCK_BYTES - c->block_len);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0)
                return fm_error_set(err, FM_EIO, "%s: read error: %s", c->name, strerror(errno));
            if (n == 0) break;
            c->block_len += (size_t)n;
        }
        c->block = (const unsigned char *)c->block_buf;
    }
    if (c->block_len == 0) {
        c->at_eof = 1;
        return 0;
    }
    if (c->hashing) fm_digest_update(&c->digest, c->block, c->block_len);
    if (!c->started) {
        c->started = 1;
        if (c->block_len >= 3 && memcmp(c->block, "\xEF\xBB\xBF", 3) == 0) {
            c->pos = 3;
            c->line_start = 3;
        }
    }
    return 1;
}

static size_t csv_column(const fm_csv_t *c, const unsigned char *p) {
    return c->block_offset + (size_t)(p - c->block) - c->line_start + 1;
}

static int csv_fail(fm_csv_t *c, fm_error_t *err, int code, size_t line, size_t column,
                    const char *what) {
    c->failed = code;
    return fm_error_set(err, code, "%s:%zu:%zu: %s", c->name, line, column, what);
}

/* Grows the record buffer to hold need bytes; a record over the limit is an error. */
static int rec_grow(fm_csv_t *c, size_t need, size_t column, fm_error_t *err) {
    if (need > FM_CSV_MAX_RECORD_BYTES) {
        char what[96];
        snprintf(what, sizeof what, "record longer than the limit of %u bytes",
                 FM_CSV_MAX_RECORD_BYTES);
        return csv_fail(c, err, FM_ELIMIT, c->line, column, what);
    }
    size_t cap = c->rec_cap ? c->rec_cap : 1024;
    while (cap < need)
        cap *= 2;
    if (cap > FM_CSV_MAX_RECORD_BYTES) cap = FM_CSV_MAX_RECORD_BYTES;
    char *rec = realloc(c->rec, cap);
    if (!rec) return csv_fail(c, err, FM_ENOMEM, c->line, column, "out of memory");
    c->rec = rec;
    c->rec_cap = cap;
    return FM_OK;
}

/* Appends n bytes and keeps room for one more (a field's NUL), so field_end cannot fail. */
static inline int rec_append(fm_csv_t *c, const unsigned char *p, size_t n, size_t column,
                             fm_error_t *err) {
    size_t need = c->rec_len + n + 1;
    if (need > c->rec_cap) {
        int rc = rec_grow(c, need, column, err);
        if (rc) return rc;
    }
    memcpy(c->rec + c->rec_len, p, n);
    c->rec_len += n;
    return FM_OK;
}

static int fields_grow(fm_csv_t *c, size_t column, fm_error_t *err) {
    if (c->nfields >= FM_CSV_MAX_FIELDS) {
        char what[96];
        snprintf(what, sizeof what, "record has more than the limit of %u fields",
                 FM_CSV_MAX_FIELDS);
        return csv_fail(c, err, FM_ELIMIT, c->line, column, what);
    }
    size_t cap = c->field_cap ? c->field_cap * 2 : 64;
    if (cap > FM_CSV_MAX_FIELDS) cap = FM_CSV_MAX_FIELDS;
    size_t *starts = realloc(c->starts, cap * sizeof *starts);
    if (starts) c->starts = starts;
    char **fields = starts ? realloc(c->fields, cap * sizeof *fields) : NULL;
    if (fields) c->fields = fields;
    size_t *lens = fields ? realloc(c->lens, cap * sizeof *lens) : NULL;
    if (!lens) return csv_fail(c, err, FM_ENOMEM, c->line, column, "out of memory");
    c->lens = lens;
    c->field_cap = cap;
    return FM_OK;
}

/* Starts a new field at the current end of the record buffer, with room for its NUL. */
static inline int field_begin(fm_csv_t *c, size_t column, fm_error_t *err) {
    int rc;
    if (c->nfields == c->field_cap && (rc = fields_grow(c, column, err))) return rc;
    if (c->rec_len + 1 > c->rec_cap && (rc = rec_grow(c, c->rec_len + 1, column, err))) return rc;
    c->starts[c->nfields++] = c->rec_len;
    return FM_OK;
}

/* Ends the current field; rec_append and field_begin left room for the NUL. */
static inline void field_end(fm_csv_t *c) {
    c->rec[c->rec_len++] = '\0';
}

/* Consumes the end of line at *p (CR or LF) and moves the line counter past it. */
static const unsigned char *newline(fm_csv_t *c, const unsigned char *p) {
    if (*p == '\r') c->skip_lf = 1;
    c->line++;
    c->line_start = c->block_offset + (size_t)(p - c->block) + 1;
    return p + 1;
}

static void record_finish(fm_csv_t *c) {
    for (size_t i = 0; i < c->nfields; i++) {
        size_t end = i + 1 < c->nfields ? c->starts[i + 1] : c->rec_len;
        c->fields[i] = c->rec + c->starts[i];
        c->lens[i] = end - c->starts[i] - 1;
    }
}

int fm_csv_next(fm_csv_t *c, char *const **fields, const size_t **lens, size_t *nfields,
                fm_error_t *err) {
    *nfields = 0;
    if (c->failed)
        return fm_error_set(err, c->failed, "%s: reader stopped at an earlier error", c->name);
    c->rec_len = 0;
    c->nfields = 0;
    c->record_line = c->line;
    int state = ST_FIELD_START;
    int after_cr = 0; /* inside a quoted field: the previous byte was a CR */
    size_t quote_line = 0, quote_column = 0;
    const unsigned char *p = c->block + c->pos, *end = c->block + c->block_len;
    int rc;
    for (;;) {
        if (p == end) {
            c->pos = c->block_len;
            rc = csv_refill(c, err);
            if (rc < 0) {
                c->failed = rc;
                return rc;
            }
            if (rc == 0) break;
            p = c->block + c->pos;
            end = c->block + c->block_len;
            continue; /* a block may be all byte-order mark */
        }
        if (c->skip_lf) {
            c->skip_lf = 0;
            if (*p == '\n') {
                p++;
                c->line_start = c->block_offset + (size_t)(p - c->block);
                continue;
            }
        }
        switch (state) {
        case ST_FIELD_START:
            if (c->nfields == 0 && (*p == '\n' || *p == '\r')) {
                p = newline(c, p);
                c->record_line = c->line;
                continue;
            }
            if ((rc = field_begin(c, csv_column(c, p), err))) return rc;
            if (*p == '"') {
                quote_line = c->line;
                quote_column = csv_column(c, p);
                after_cr = 0;
                state = ST_QUOTED;
                p++;
                continue;
            }
            state = ST_UNQUOTED;
            /* fall through */
        case ST_UNQUOTED: {
            const unsigned char *q = scan_special(p, end, unquoted_special, ',');
            if (q > p && (rc = rec_append(c, p, (size_t)(q - p), csv_column(c, p), err))) return rc;
            p = q;
            if (q == end) continue;
            if (*q == '\0')
                return csv_fail(c, err, FM_EPARSE, c->line, csv_column(c, q),
                                "NUL byte (binary data?)");
            field_end(c);
            if (*q == ',') {
                state = ST_FIELD_START;
                p++;
                continue;
            }
            c->pos = (size_t)(newline(c, q) - c->block);
            record_finish(c);
            goto done;
        }
        case ST_QUOTED: {
            const unsigned char *q = scan_special(p, end, quoted_special, '"');
            if (q > p) {
                if ((rc = rec_append(c, p, (size_t)(q - p), csv_column(c, p), err))) return rc;
                after_cr = 0;
            }
            p = q;
            if (q == end) continue;
            if (*q == '"') {
                state = ST_QUOTE_SEEN;
                p++;
                continue;
            }
            if (*q == '\0')
                return csv_fail(c, err, FM_EPARSE, c->line, csv_column(c, q),
                                "NUL byte (binary data?)");
            if ((rc = rec_append(c, q, 1, csv_column(c, q), err))) return rc;
            /* A line break inside the field: CRLF counts once, a lone CR or LF once each. */
            if (*q == '\r' || !after_cr) c->line++;
            after_cr = *q == '\r';
            c->line_start = c->block_offset + (size_t)(q - c->block) + 1;
            p++;
            continue;
        }
        case ST_QUOTE_SEEN:
            if (*p == '"') {
                if ((rc = rec_append(c, p, 1, csv_column(c, p), err))) return rc;
                after_cr = 0;
                state = ST_QUOTED;
                p++;
                continue;
            }
            if (*p == ',' || *p == '\n' || *p == '\r') {
                field_end(c);
                if (*p == ',') {
                    state = ST_FIELD_START;
                    p++;
                    continue;
                }
                c->pos = (size_t)(newline(c, p) - c->block);
                record_finish(c);
                goto done;
            }
            {
                char what[80];
                if (*p >= 0x20 && *p < 0x7f)
                    snprintf(what, sizeof what, "unexpected character '%c' after closing quote",
                             *p);
                else
                    snprintf(what, sizeof what, "unexpected byte 0x%02x after closing quote", *p);
                return csv_fail(c, err, FM_EPARSE, c->line, csv_column(c, p), what);
            }
        }
    }
    /* End of input. */
    if (state == ST_QUOTED)
        return csv_fail(c, err, FM_EPARSE, quote_line, quote_column, "unterminated quoted field");
    if (state == ST_FIELD_START && c->nfields == 0) return 0;
    if (state == ST_FIELD_START && (rc = field_begin(c, 1, err))) return rc;
    field_end(c);
    record_finish(c);
done:
    *fields = c->fields;
    *lens = c->lens;
    *nfields = c->nfields;
    return 1;
}

void fm_csv_skip_digest(fm_csv_t *csv) {
    csv->hashing = 0;
}

size_t fm_csv_line(const fm_csv_t *csv) {
    return csv->record_line;
}

const char *fm_csv_name(const fm_csv_t *csv) {
    return csv->name;
}

void fm_csv_digest(fm_csv_t *csv, char hex[FM_DIGEST_HEX]) {
    /* Finalise a copy so that reading (and hashing) can go on. */
    fm_digest_t copy = csv->digest;
    fm_digest_final_hex(&copy, hex);
}

void fm_csv_close(fm_csv_t *csv) {
    if (!csv) return;
    if (csv->fd >= 0) close(csv->fd);
    free(csv->name);
    free(csv->block_buf);
    free(csv->rec);
    free(csv->starts);
    free(csv->fields);
    free(csv->lens);
    free(csv);
}
