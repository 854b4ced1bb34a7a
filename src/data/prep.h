/*
 * Preprocessing: turns raw columns into the numeric feature matrix a model consumes, with
 * parameters fitted on training rows only and stored inside the model.
 *
 * For each input column, in order:
 * - numeric: missing values are replaced by the training median; then standardised as
 *   (x - mean) / std with the mean and (population) standard deviation of the imputed training
 *   values (std 1 when the column is constant). With missing indicators on and missing values
 *   seen in training, a 0/1 column "<name>_missing" follows.
 * - categorical: one-hot over the training categories (sorted by byte order, at most
 *   max_categories of the most frequent, ties by byte order). Missing values are replaced by the
 *   most frequent category. A category never seen in training encodes as all zeros: the unseen
 *   path, which never fails. With missing indicators on and missing values seen in training, a
 *   0/1 column "<name>_missing" follows.
 * - numeric, binned (fm_prep_set_bins, for scorecards): instead of standardising, the value is
 *   one-hot encoded into nedges + 1 bins by strictly increasing edges, bin i holding
 *   edges[i-1] < x <= edges[i] (the first bin open below, the last open above). With a missing
 *   bin, a missing value encodes as all bins 0 and a last 0/1 column "<name>_missing" set to 1
 *   (missing_indicator doubles as the missing bin); without one, a missing value goes to the bin
 *   of the training median. The edges are stored as an optional "bins" array in the JSON, so
 *   files written before binning read the same.
 *
 * Thread-safety: a fitted fm_prep_t is read-only and may be used from many threads at once.
 */
#ifndef FM_DATA_PREP_H
#define FM_DATA_PREP_H

#include "data/data.h"

#include <cJSON.h>

typedef struct fm_prep_column {
    char *name; /* owned; the raw column name */
    fm_column_type_t type;
    int pii; /* 1 when the column holds personal data: masked in logs, audit and errors */
    /* numeric */
    double median;    /* imputation value */
    double mean, std; /* standardisation */
    int binned;       /* 1: one-hot bins by edges (fm_prep_set_bins) instead of standardisation */
    double *edges;    /* owned; binned: nedges strictly increasing finite upper edges */
    size_t nedges;    /* binned: the column encodes to nedges + 1 bins (+ the missing bin) */
    /* categorical */
    fm_strdict_t categories; /* one-hot order; id = position in the encoded block */
    int32_t most_frequent;   /* imputation category id, -1 when no category was seen */
    /* both */
    int missing_indicator; /* 1 when a "<name>_missing" column follows */
    size_t offset;         /* first encoded column */
    size_t width;          /* number of encoded columns */
} fm_prep_column_t;

typedef struct fm_prep {
    size_t ncolumns;
    fm_prep_column_t *columns; /* owned */
    size_t nfeatures;          /* width of an encoded row */
} fm_prep_t;

typedef struct fm_prep_options {
    int missing_indicators; /* add "<name>_missing" columns where training data had missing values
                             */
    size_t max_categories;  /* per column; 0 means the default of 100 */
} fm_prep_options_t;

/*
 * Fits preprocessing on frame's columns cols[0..ncols) (indices into frame) using only rows
 * rows[0..nrows) (NULL: all rows). *out is owned by the caller (fm_prep_free). Fails when nrows
 * is 0.
 */
int fm_prep_fit(const fm_frame_t *frame, const size_t *cols, size_t ncols, const size_t *rows,
                size_t nrows, const fm_prep_options_t *options, fm_prep_t **out, fm_error_t *err);

/*
 * Encodes rows rows[0..nrows) (NULL: the first nrows rows) of frame into out[nrows * nfeatures],
 * row-major. Frame columns are matched by name; a missing column is an error naming it. A numeric
 * prep column fed by a categorical frame column parses each category as a number (error naming
 * column and value when it is not one); a categorical prep column fed by a numeric frame column
 * formats each number as text (%.17g shortest) before lookup.
 */
int fm_prep_transform(const fm_prep_t *prep, const fm_frame_t *frame, const size_t *rows,
                      size_t nrows, double *out, fm_error_t *err);

/* One raw input value, as arrives in a request. */
typedef enum { FM_RAW_MISSING = 0, FM_RAW_NUMBER = 1, FM_RAW_STRING = 2 } fm_raw_kind_t;
typedef struct fm_raw_value {
    fm_raw_kind_t kind;
    double number;   /* FM_RAW_NUMBER; NaN is treated as missing */
    const char *str; /* FM_RAW_STRING; borrowed, len bytes, need not be NUL-terminated */
    size_t len;
} fm_raw_value_t;

/* The raw value of frame cell (col, r): its number (NaN: missing), its text (borrowed from the
 * column's dictionary), or missing. */
fm_raw_value_t fm_prep_raw_cell(const fm_frame_t *frame, int col, size_t r);

/*
 * Encodes one row given values[0..ncolumns) in prep column order into out[nfeatures]. A string for
 * a numeric column is parsed (missing tokens allowed); text that is not a number is FM_EDATA
 * naming the column. Never fails on an unseen category.
 */
int fm_prep_encode_row(const fm_prep_t *prep, const fm_raw_value_t *values, double *out,
                       fm_error_t *err);

/* The name of encoded feature j: "Income", "Income_missing", "Home=rent". Borrowed text is
 * written to buf (size bytes) and returned. */
const char *fm_prep_feature_name(const fm_prep_t *prep, size_t j, char *buf, size_t size);

/* The prep column index called name, or -1. */
int fm_prep_find(const fm_prep_t *prep, const char *name);

/*
 * Marks the columns names[0..n) as holding personal data (pii = 1). A categorical PII column
 * loses its categories and encodes to no feature (the layout is recomputed), so that no raw value
 * is stored in a model. Either every name is a prep column and all are marked, or nothing changes
 * and the error (FM_EINVAL) names the first unknown column, or says that no feature would be
 * left. Marking a column twice is harmless.
 */
int fm_prep_mark_pii(fm_prep_t *prep, const char *const *names, size_t n, fm_error_t *err);

/*
 * Makes numeric prep column `column` binned (see the top of this file): copies edges[0..n) (finite
 * and strictly increasing; n may be 0 for a single bin), makes a missing bin when has_missing_bin
 * is 1 (missing_indicator = has_missing_bin), and recomputes every column's offset and width.
 * FM_EINVAL naming the column for an index out of range, a categorical column, or edges that are
 * not finite and strictly increasing; nothing changes then. Binning a column again replaces its
 * edges. Not thread-safe: call before the prep is shared.
 */
int fm_prep_set_bins(fm_prep_t *prep, size_t column, const double *edges, size_t n,
                     int has_missing_bin, fm_error_t *err);

/* The bin of value x (not NaN) in a binned column: the number of edges below x, 0..nedges. */
size_t fm_prep_bin_of(const fm_prep_column_t *c, double x);

/* Serialises the fitted parameters to JSON (caller owns the result, cJSON_Delete). A column's
 * "pii": true is written only when it is set, so files from before the flag read the same. */
cJSON *fm_prep_to_json(const fm_prep_t *prep);

/* Rebuilds a prep from fm_prep_to_json output, validating every field. */
int fm_prep_from_json(const cJSON *json, fm_prep_t **out, fm_error_t *err);

/* Frees a prep. NULL-safe. */
void fm_prep_free(fm_prep_t *prep);

#endif
