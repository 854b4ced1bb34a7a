/*
 * The data area: reading CSV files into typed, column-oriented frames.
 *
 * - fm_csv_t streams RFC 4180 records (quoted fields with embedded delimiters, quotes and
 *   newlines; CRLF or LF; a UTF-8 byte-order mark is skipped) from a file or a memory buffer,
 *   holding one record at a time, and hashes the bytes it reads (BLAKE2b) as a fingerprint.
 * - fm_frame_t holds a table by column: numeric columns as doubles (NaN = missing), categorical
 *   columns as int32 codes into a per-column dictionary (-1 = missing). No cell text is kept.
 * - fm_frame_reader_t reads a CSV file chunk by chunk into frames of at most N rows with known
 *   column types, so that prediction over a file of any size needs memory for one chunk only.
 *
 * Missing values: an empty field and the tokens NA, N/A, n/a, NaN, nan, NULL, null, None, <NA>,
 * #N/A (after trimming spaces). Numeric cells must parse completely as finite decimal numbers;
 * inf/infinity is rejected with an error naming file, line and column.
 *
 * Thread-safety: none of these objects may be shared between threads while being modified; a
 * frame that nobody modifies may be read from several threads.
 */
#ifndef FM_DATA_H
#define FM_DATA_H

#include "core/digest.h"
#include "core/error.h"
#include "core/strdict.h"

#include <stddef.h>
#include <stdint.h>

/* ---- CSV records ------------------------------------------------------------------------- */

typedef struct fm_csv fm_csv_t; /* opaque streaming reader */

#define FM_CSV_MAX_RECORD_BYTES (16u << 20) /* a record longer than this is an error */
#define FM_CSV_MAX_FIELDS       100000u     /* a record with more fields is an error */

/* Opens path for reading. *out is owned by the caller (fm_csv_close). Errors name the path. */
int fm_csv_open(const char *path, fm_csv_t **out, fm_error_t *err);

/* Reads from len bytes at data (borrowed; must outlive the reader). name is used in messages. */
int fm_csv_open_memory(const char *data, size_t len, const char *name, fm_csv_t **out,
                       fm_error_t *err);

/*
 * Reads the next record. Returns 1 with *fields / *lens / *nfields set (fields are unescaped and
 * NUL-terminated, owned by the reader and valid until the next call), 0 at end of input, or a
 * negative code with a message naming the source, line and column (unterminated quote,
 * character after a closing quote, NUL byte, record over FM_CSV_MAX_RECORD_BYTES). Blank lines
 * are skipped.
 */
int fm_csv_next(fm_csv_t *csv, char *const **fields, const size_t **lens, size_t *nfields,
                fm_error_t *err);

/* The 1-based line on which the last record returned started. */
size_t fm_csv_line(const fm_csv_t *csv);
/* The name given at open (the path for files). */
const char *fm_csv_name(const fm_csv_t *csv);
/* The BLAKE2b-256 of every byte consumed so far, as hex; after the last record, of the input. */
void fm_csv_digest(fm_csv_t *csv, char hex[FM_DIGEST_HEX]);
/* Closes the reader. NULL-safe. */
void fm_csv_close(fm_csv_t *csv);

/* ---- Cell values ------------------------------------------------------------------------- */

/* 1 when the n bytes at s (surrounding spaces ignored) are a missing-value token, else 0. */
int fm_value_is_missing(const char *s, size_t n);

/*
 * Parses n bytes at s as a number. Returns 0 with *out set, FM_EPARSE when the text is not a
 * number, FM_ERANGE when it is infinite or overflows. Surrounding spaces are allowed. Does not
 * treat missing tokens specially: check fm_value_is_missing first.
 */
int fm_value_parse_number(const char *s, size_t n, double *out);

/* ---- Column types and schema overrides --------------------------------------------------- */

typedef enum {
    FM_COLUMN_NUMERIC = 0,
    FM_COLUMN_CATEGORICAL = 1,
} fm_column_type_t;

/* "numeric" / "categorical". */
const char *fm_column_type_name(fm_column_type_t type);
/* Parses "numeric" or "categorical" (also "number", "float", "int", "string", "category"). */
int fm_column_type_parse(const char *text, fm_column_type_t *out);

/* A list of (column name, type) pairs that replace inferred types. Plain struct. */
typedef struct fm_type_overrides {
    size_t count;
    char **names;            /* owned */
    fm_column_type_t *types; /* owned */
} fm_type_overrides_t;

/*
 * Loads overrides from a schema file: a JSON object mapping column names to type names, e.g.
 * {"Seniority": "numeric", "Home": "categorical"}. Errors name the file and the entry.
 */
int fm_type_overrides_load(const char *path, fm_type_overrides_t *out, fm_error_t *err);
/* Appends one override (copies name). */
int fm_type_overrides_add(fm_type_overrides_t *o, const char *name, fm_column_type_t type);
/* The override type for name, or -1 when none. */
int fm_type_overrides_find(const fm_type_overrides_t *o, const char *name);
/* Frees the lists; NULL-safe; leaves o empty. */
void fm_type_overrides_free(fm_type_overrides_t *o);

/* ---- Frames ------------------------------------------------------------------------------ */

typedef struct fm_column {
    char *name; /* owned */
    fm_column_type_t type;
    double *values;    /* numeric: nrows values, NaN = missing; NULL for categorical */
    int32_t *codes;    /* categorical: nrows codes into dict, -1 = missing; NULL for numeric */
    fm_strdict_t dict; /* categorical: distinct values in order of first appearance */
    size_t missing;    /* number of missing cells */
} fm_column_t;

typedef struct fm_frame {
    char *source; /* owned; file name or other description */
    size_t nrows;
    size_t ncols;
    fm_column_t *columns;       /* owned; ncols entries */
    char digest[FM_DIGEST_HEX]; /* BLAKE2b-256 of the source bytes read ("" if unknown) */
} fm_frame_t;

/*
 * Reads a whole CSV file (first record = header) into a new frame. Column types are inferred in a
 * first pass (numeric when every non-missing cell parses as a finite number, otherwise
 * categorical), then overrides (may be NULL) replace them, and a second pass loads the values. A
 * cell that does not fit its column's type is an error naming file, line, column name and value.
 * Errors also for: empty file, header only (no rows), duplicate or empty column names, a row
 * with a different number of fields than the header (ragged), and any fm_csv_next error. An
 * override naming an absent column is an error. *out is owned by the caller (fm_frame_free).
 */
int fm_frame_read_csv(const char *path, const fm_type_overrides_t *overrides, fm_frame_t **out,
                      fm_error_t *err);

/* Frees a frame and its columns. NULL-safe. */
void fm_frame_free(fm_frame_t *frame);

/* The index of the column called name, or -1. */
int fm_frame_find(const fm_frame_t *frame, const char *name);

/* ---- Chunked reading with known columns --------------------------------------------------- */

/* A column the chunked reader must or may find in the file's header. */
typedef struct fm_column_spec {
    const char *name; /* borrowed */
    fm_column_type_t type;
    int required; /* 1: a header without it is an error naming it */
    int pii;      /* 1: personal data, whose values error messages never quote */
} fm_column_spec_t;

typedef struct fm_frame_reader fm_frame_reader_t; /* opaque */

/*
 * Opens path for reading in chunks. The header is read at once and matched by name: columns in
 * specs become frame columns in the order of specs (an optional column absent from the file is
 * left out of the frames), other columns of the file are skipped. specs and the strings in it are
 * copied. *out is owned by the caller (fm_frame_reader_close).
 */
int fm_frame_reader_open(const char *path, const fm_column_spec_t *specs, size_t nspecs,
                         fm_frame_reader_t **out, fm_error_t *err);

/*
 * Reads up to max_rows more rows into a new frame *chunk (caller frees with fm_frame_free).
 * Returns 1 when rows were read, 0 at end of input (*chunk NULL), negative on error (bad cells
 * and ragged rows as in fm_frame_read_csv). Categorical dictionaries are per chunk.
 */
int fm_frame_reader_next(fm_frame_reader_t *r, size_t max_rows, fm_frame_t **chunk,
                         fm_error_t *err);

/* The number of data rows returned so far. */
size_t fm_frame_reader_rows(const fm_frame_reader_t *r);

/* Closes the reader. NULL-safe. */
void fm_frame_reader_close(fm_frame_reader_t *r);

#endif
