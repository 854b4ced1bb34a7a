/*
 * Frames: CSV files loaded into typed columns, either whole (fm_frame_read_csv) or chunk by chunk
 * with known column types (fm_frame_reader_t).
 *
 * There is one loading path. fm_frame_read_csv first streams the file once to infer each
 * column's type (and to reject ragged rows, bad headers and empty files early, with the row
 * count known), then opens an fm_frame_reader_t over all columns with those types and loads every
 * row in one chunk whose size it already knows. The chunked reader streams the same way with the
 * caller's types. Only the first pass hashes the bytes (for the frame's digest); the second
 * checks that the file is unchanged by its row count and its inode, size and modification time.
 * Neither pass keeps cell text: numbers are parsed into doubles as they stream by and categories
 * are interned into each column's dictionary, so memory is the frame itself plus one CSV record.
 */
#include "data/data.h"
#include "data/internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Rows allocated up front by a chunk whose final size is unknown. */
#define CHUNK_INITIAL_ROWS 4096

/* The longest cell text quoted in an error message. */
#define MESSAGE_VALUE_MAX 64

struct fm_frame_reader {
    fm_csv_t *csv;
    char *path;
    size_t nfields;          /* fields per record, from the header */
    size_t ncols;            /* frame columns */
    char **names;            /* owned */
    fm_column_type_t *types; /* per frame column */
    unsigned char *pii;      /* per frame column: 1 for personal data (values never quoted) */
    size_t *source;          /* field index of each frame column */
    size_t rows;             /* data rows returned so far */
    int done;
};

void fm_frame_free(fm_frame_t *frame) {
    if (!frame) return;
    for (size_t i = 0; i < frame->ncols && frame->columns; i++) {
        fm_column_t *c = &frame->columns[i];
        free(c->name);
        free(c->values);
        free(c->codes);
        fm_strdict_free(&c->dict);
    }
    free(frame->columns);
    free(frame->source);
    free(frame);
}

int fm_frame_find(const fm_frame_t *frame, const char *name) {
    for (size_t i = 0; i < frame->ncols; i++)
        if (strcmp(frame->columns[i].name, name) == 0) return (int)i;
    return -1;
}

/* Quotes at most MESSAGE_VALUE_MAX bytes of a cell for an error message. */
static const char *message_value(const char *s, size_t n, char buf[MESSAGE_VALUE_MAX + 4]) {
    if (n > MESSAGE_VALUE_MAX) {
        memcpy(buf, s, MESSAGE_VALUE_MAX);
        memcpy(buf + MESSAGE_VALUE_MAX, "...", 4);
    } else {
        memcpy(buf, s, n);
        buf[n] = '\0';
    }
    return buf;
}

/* ---- The header -------------------------------------------------------------------------- */

/* Reads the header record; an input without one is an empty file. */
static int read_header(fm_csv_t *csv, char *const **fields, const size_t **lens, size_t *n,
                       fm_error_t *err) {
    int rc = fm_csv_next(csv, fields, lens, n, err);
    if (rc < 0) return rc;
    if (rc == 0) return fm_error_set(err, FM_EDATA, "%s: empty file", fm_csv_name(csv));
    return FM_OK;
}

/* ---- Loading rows into a frame ----------------------------------------------------------- */

static fm_frame_t *frame_new(const fm_frame_reader_t *r) {
    fm_frame_t *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->ncols = r->ncols;
    f->source = strdup(r->path);
    f->columns = calloc(r->ncols ? r->ncols : 1, sizeof *f->columns);
    if (!f->source || !f->columns) {
        fm_frame_free(f);
        return NULL;
    }
    for (size_t i = 0; i < r->ncols; i++) {
        f->columns[i].type = r->types[i];
        if (!(f->columns[i].name = strdup(r->names[i]))) {
            fm_frame_free(f);
            return NULL;
        }
    }
    return f;
}

/* Resizes every column of f to hold cap rows. */
static int frame_reserve(fm_frame_t *f, size_t cap) {
    for (size_t i = 0; i < f->ncols; i++) {
        fm_column_t *c = &f->columns[i];
        if (c->type == FM_COLUMN_NUMERIC) {
            double *v = realloc(c->values, (cap ? cap : 1) * sizeof *v);
            if (!v) return FM_ENOMEM;
            c->values = v;
        } else {
            int32_t *codes = realloc(c->codes, (cap ? cap : 1) * sizeof *codes);
            if (!codes) return FM_ENOMEM;
            c->codes = codes;
        }
    }
    return FM_OK;
}

/* Stores one cell of column c at row; errors name the file, line, column and value. */
static int store_cell(const fm_frame_reader_t *r, fm_column_t *c, int pii, size_t row,
                      const char *s, size_t n, fm_error_t *err) {
    char quoted[MESSAGE_VALUE_MAX + 4];
    if (c->type == FM_COLUMN_NUMERIC) {
        double v;
        /* Numbers first: in a numeric column they are the common case, and no missing token
         * parses as a number. */
        int rc = n ? fm_value_parse_number(s, n, &v) : FM_EPARSE;
        if (rc == FM_OK) {
            c->values[row] = v;
            return FM_OK;
        }
        if (fm_value_is_missing(s, n)) {
            c->values[row] = NAN;
            c->missing++;
            return FM_OK;
        }
        if (rc == FM_ENOMEM) return fm_error_set(err, FM_ENOMEM, "%s: out of memory", r->path);
        if (pii)
            return fm_error_set(err, FM_EDATA,
                                "%s:%zu: column '%s': a value is not a %s (not shown: the column "
                                "holds personal data)",
                                r->path, fm_csv_line(r->csv), c->name,
                                rc == FM_ERANGE ? "finite number" : "number");
        return fm_error_set(err, FM_EDATA, "%s:%zu: column '%s': '%s' is not a %s", r->path,
                            fm_csv_line(r->csv), c->name, message_value(s, n, quoted),
                            rc == FM_ERANGE ? "finite number" : "number");
    }
    if (fm_value_is_missing(s, n)) {
        c->codes[row] = -1;
        c->missing++;
        return FM_OK;
    }
    int32_t id = fm_strdict_intern(&c->dict, s, n);
    if (id < 0) return fm_error_set(err, FM_ENOMEM, "%s: out of memory", r->path);
    c->codes[row] = id;
    return FM_OK;
}

static int ragged(const char *path, size_t line, size_t want, size_t found, fm_error_t *err) {
    return fm_error_set(err, FM_EPARSE, "%s:%zu: expected %zu fields, found %zu", path, line, want,
                        found);
}

/*
 * Reads up to max_rows rows into a new frame, allocating room for cap_hint rows first (0: grow
 * as needed). Returns 1 with *chunk set, 0 at end of input, or an error.
 */
static int reader_load(fm_frame_reader_t *r, size_t max_rows, size_t cap_hint, fm_frame_t **chunk,
                       fm_error_t *err) {
    *chunk = NULL;
    if (r->done) return 0;
    fm_frame_t *f = frame_new(r);
    if (!f) return fm_error_set(err, FM_ENOMEM, "%s: out of memory", r->path);
    size_t cap = cap_hint ? cap_hint : CHUNK_INITIAL_ROWS;
    if (cap > max_rows) cap = max_rows;
    int rc = frame_reserve(f, cap);
    if (rc) rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", r->path);
    while (rc == FM_OK && f->nrows < max_rows) {
        char *const *fields;
        const size_t *lens;
        size_t n;
        rc = fm_csv_next(r->csv, &fields, &lens, &n, err);
        if (rc <= 0) {
            if (rc == 0) r->done = 1;
            break;
        }
        rc = FM_OK;
        if (n != r->nfields) {
            rc = ragged(r->path, fm_csv_line(r->csv), r->nfields, n, err);
            break;
        }
        if (f->nrows == cap) {
            cap = cap > max_rows / 2 ? max_rows : cap * 2;
            if (frame_reserve(f, cap)) {
                rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", r->path);
                break;
            }
        }
        for (size_t i = 0; i < f->ncols && rc == FM_OK; i++) {
            size_t k = r->source[i];
            rc = store_cell(r, &f->columns[i], r->pii ? r->pii[i] : 0, f->nrows, fields[k], lens[k],
                            err);
        }
        if (rc == FM_OK) f->nrows++;
    }
    /* Give back what a growing chunk over-allocated (shrinking cannot fail in practice, but a
     * failure would only keep the larger block). */
    if (rc == FM_OK && f->nrows < cap && f->nrows > 0) frame_reserve(f, f->nrows);
    if (rc < 0 || f->nrows == 0) {
        fm_frame_free(f);
        return rc < 0 ? rc : 0;
    }
    r->rows += f->nrows;
    *chunk = f;
    return 1;
}

/* ---- The chunked reader ------------------------------------------------------------------ */

void fm_frame_reader_close(fm_frame_reader_t *r) {
    if (!r) return;
    fm_csv_close(r->csv);
    for (size_t i = 0; i < r->ncols && r->names; i++)
        free(r->names[i]);
    free(r->names);
    free(r->types);
    free(r->pii);
    free(r->source);
    free(r->path);
    free(r);
}

/* Matches specs against the header fields; fills r->names, types and source. */
static int match_header(fm_frame_reader_t *r, const fm_column_spec_t *specs, size_t nspecs,
                        char *const *fields, const size_t *lens, size_t nfields, fm_error_t *err) {
    fm_strdict_t header = FM_STRDICT_INIT;
    /* For each distinct header name, its field index, or SIZE_MAX when it appears twice. */
    size_t *where = malloc((nfields ? nfields : 1) * sizeof *where);
    int rc = where ? FM_OK : FM_ENOMEM;
    for (size_t k = 0; rc == FM_OK && k < nfields; k++) {
        size_t before = header.count;
        int32_t id = fm_strdict_intern(&header, fields[k], lens[k]);
        if (id < 0)
            rc = FM_ENOMEM;
        else if (header.count > before)
            where[id] = k;
        else
            where[id] = SIZE_MAX;
    }
    for (size_t i = 0; rc == FM_OK && i < nspecs; i++) {
        const fm_column_spec_t *s = &specs[i];
        if (!s->name || !*s->name) {
            rc = fm_error_set(err, FM_EINVAL, "%s: column %zu of the request has no name", r->path,
                              i + 1);
            break;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(specs[j].name, s->name) == 0) {
                rc = fm_error_set(err, FM_EINVAL, "%s: column '%s' requested twice", r->path,
                                  s->name);
                break;
            }
        }
        if (rc) break;
        int32_t id = fm_strdict_find(&header, s->name, strlen(s->name));
        if (id < 0) {
            if (s->required)
                rc = fm_error_set(err, FM_ENOTFOUND, "%s: required column '%s' not found", r->path,
                                  s->name);
            continue;
        }
        if (where[id] == SIZE_MAX) {
            rc = fm_error_set(err, FM_EDATA, "%s:%zu: column name '%s' appears more than once",
                              r->path, fm_csv_line(r->csv), s->name);
            break;
        }
        if (!(r->names[r->ncols] = strdup(s->name))) {
            rc = FM_ENOMEM;
            break;
        }
        r->types[r->ncols] = s->type;
        r->pii[r->ncols] = s->pii != 0;
        r->source[r->ncols] = where[id];
        r->ncols++;
    }
    if (rc == FM_ENOMEM) fm_error_set(err, FM_ENOMEM, "%s: out of memory", r->path);
    free(where);
    fm_strdict_free(&header);
    return rc;
}

int fm_frame_reader_open(const char *path, const fm_column_spec_t *specs, size_t nspecs,
                         fm_frame_reader_t **out, fm_error_t *err) {
    *out = NULL;
    fm_frame_reader_t *r = calloc(1, sizeof *r);
    if (!r) return fm_error_set(err, FM_ENOMEM, "%s: out of memory", path);
    size_t n = nspecs ? nspecs : 1;
    r->path = strdup(path);
    r->names = calloc(n, sizeof *r->names);
    r->types = calloc(n, sizeof *r->types);
    r->pii = calloc(n, sizeof *r->pii);
    r->source = calloc(n, sizeof *r->source);
    int rc = (r->path && r->names && r->types && r->pii && r->source)
                 ? FM_OK
                 : fm_error_set(err, FM_ENOMEM, "%s: out of memory", path);
    if (rc == FM_OK) rc = fm_csv_open(path, &r->csv, err);
    /* Nobody can ask a chunked reader for a digest (fm_frame_read_csv takes its own). */
    if (rc == FM_OK) fm_csv_skip_digest(r->csv);
    char *const *fields;
    const size_t *lens;
    if (rc == FM_OK) rc = read_header(r->csv, &fields, &lens, &r->nfields, err);
    if (rc == FM_OK) rc = match_header(r, specs, nspecs, fields, lens, r->nfields, err);
    if (rc) {
        fm_frame_reader_close(r);
        return rc;
    }
    *out = r;
    return FM_OK;
}

int fm_frame_reader_next(fm_frame_reader_t *r, size_t max_rows, fm_frame_t **chunk,
                         fm_error_t *err) {
    *chunk = NULL;
    if (max_rows == 0)
        return fm_error_set(err, FM_EINVAL, "%s: a chunk must hold at least one row", r->path);
    return reader_load(r, max_rows, 0, chunk, err);
}

size_t fm_frame_reader_rows(const fm_frame_reader_t *r) {
    return r->rows;
}

/* ---- Whole files ------------------------------------------------------------------------- */

/* What the first pass learns about a file. */
typedef struct inferred {
    size_t ncols;
    char **names;
    fm_column_type_t *types;
    size_t nrows;
    char digest[FM_DIGEST_HEX];
} inferred_t;

static void inferred_free(inferred_t *t) {
    for (size_t i = 0; i < t->ncols && t->names; i++)
        free(t->names[i]);
    free(t->names);
    free(t->types);
}

/* Copies the header names, rejecting empty and duplicate ones. */
static int infer_header(const char *path, char *const *fields, const size_t *lens, size_t n,
                        inferred_t *t, fm_error_t *err) {
    t->names = calloc(n, sizeof *t->names);
    t->types = calloc(n, sizeof *t->types);
    if (!t->names || !t->types) return fm_error_set(err, FM_ENOMEM, "%s: out of memory", path);
    t->ncols = n;
    fm_strdict_t seen = FM_STRDICT_INIT;
    int rc = FM_OK;
    for (size_t k = 0; k < n && rc == FM_OK; k++) {
        if (lens[k] == 0) {
            rc = fm_error_set(err, FM_EDATA, "%s:1: column %zu has an empty name", path, k + 1);
            break;
        }
        size_t before = seen.count;
        int32_t id = fm_strdict_intern(&seen, fields[k], lens[k]);
        if (id < 0) {
            rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", path);
        } else if (seen.count == before) {
            size_t first = 0;
            while (strcmp(t->names[first], fields[k]) != 0)
                first++;
            rc = fm_error_set(err, FM_EDATA,
                              "%s:1: duplicate column name '%s' (columns %zu and %zu)", path,
                              fields[k], first + 1, k + 1);
        } else if (!(t->names[k] = strdup(fields[k]))) {
            rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", path);
        }
    }
    fm_strdict_free(&seen);
    return rc;
}

/*
 * Pass one: the header, the row count and each column's type. A column stays numeric while every
 * non-missing cell parses as a number; an infinite or overflowing number keeps it numeric so that
 * loading reports the cell instead of silently making the column categorical.
 */
static int infer(const char *path, const fm_type_overrides_t *overrides, inferred_t *t,
                 fm_error_t *err) {
    fm_csv_t *csv = NULL;
    int rc = fm_csv_open(path, &csv, err);
    if (rc) return rc;
    char *const *fields;
    const size_t *lens;
    size_t n;
    size_t *candidates = NULL; /* numeric candidates still to check, compacted as they fail */
    size_t ncandidates = 0;
    rc = read_header(csv, &fields, &lens, &n, err);
    if (rc == FM_OK) rc = infer_header(path, fields, lens, n, t, err);
    for (size_t i = 0; rc == FM_OK && overrides && i < overrides->count; i++) {
        const char *name = overrides->names[i];
        int found = 0;
        for (size_t k = 0; k < t->ncols && !found; k++)
            found = !strcmp(t->names[k], name);
        if (!found)
            rc = fm_error_set(err, FM_ENOTFOUND,
                              "%s: type override for column '%s': no such column", path, name);
    }
    if (rc == FM_OK && !(candidates = malloc((t->ncols ? t->ncols : 1) * sizeof *candidates)))
        rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", path);
    for (size_t k = 0; rc == FM_OK && k < t->ncols; k++) {
        int type = fm_type_overrides_find(overrides, t->names[k]);
        t->types[k] = type < 0 ? FM_COLUMN_NUMERIC : (fm_column_type_t)type;
        if (type < 0) candidates[ncandidates++] = k;
    }
    while (rc == FM_OK) {
        rc = fm_csv_next(csv, &fields, &lens, &n, err);
        if (rc <= 0) break;
        rc = FM_OK;
        if (n != t->ncols) {
            rc = ragged(path, fm_csv_line(csv), t->ncols, n, err);
            break;
        }
        t->nrows++;
        for (size_t j = 0; j < ncandidates;) {
            size_t k = candidates[j];
            int ok = lens[k] == 0 || fm_value_check_number(fields[k], lens[k]) != FM_EPARSE ||
                     fm_value_is_missing(fields[k], lens[k]);
            if (ok) {
                j++;
            } else {
                t->types[k] = FM_COLUMN_CATEGORICAL;
                candidates[j] = candidates[--ncandidates];
            }
        }
    }
    if (rc == FM_OK && t->nrows == 0) rc = fm_error_set(err, FM_EDATA, "%s: no data rows", path);
    if (rc == FM_OK) fm_csv_digest(csv, t->digest);
    free(candidates);
    fm_csv_close(csv);
    return rc;
}

/* 1 when the file at path is no longer the one st described (or cannot be examined). */
static int file_changed(const char *path, const struct stat *st) {
    struct stat now;
    if (stat(path, &now) != 0) return 1;
    return now.st_ino != st->st_ino || now.st_size != st->st_size ||
           now.st_mtim.tv_sec != st->st_mtim.tv_sec || now.st_mtim.tv_nsec != st->st_mtim.tv_nsec;
}

int fm_frame_read_csv(const char *path, const fm_type_overrides_t *overrides, fm_frame_t **out,
                      fm_error_t *err) {
    *out = NULL;
    inferred_t t = {0};
    fm_frame_reader_t *r = NULL;
    fm_column_spec_t *specs = NULL;
    /* The digest comes from the first pass, so the second one must read the same file. */
    struct stat before;
    int have_stat = stat(path, &before) == 0;
    int rc = infer(path, overrides, &t, err);
    if (rc == FM_OK && !(specs = calloc(t.ncols, sizeof *specs)))
        rc = fm_error_set(err, FM_ENOMEM, "%s: out of memory", path);
    for (size_t k = 0; rc == FM_OK && k < t.ncols; k++)
        specs[k] = (fm_column_spec_t){t.names[k], t.types[k], 1};
    if (rc == FM_OK) rc = fm_frame_reader_open(path, specs, t.ncols, &r, err);
    fm_frame_t *frame = NULL;
    if (rc == FM_OK) {
        rc = reader_load(r, SIZE_MAX, t.nrows, &frame, err);
        if (rc > 0)
            rc = FM_OK;
        else if (rc == 0)
            rc = fm_error_set(err, FM_EIO, "%s: file changed while being read", path);
    }
    if (rc == FM_OK && (frame->nrows != t.nrows || !have_stat || file_changed(path, &before)))
        rc = fm_error_set(err, FM_EIO, "%s: file changed while being read", path);
    if (rc == FM_OK) memcpy(frame->digest, t.digest, sizeof frame->digest);
    if (rc) {
        fm_frame_free(frame);
        frame = NULL;
    }
    fm_frame_reader_close(r);
    free(specs);
    inferred_free(&t);
    *out = frame;
    return rc;
}
