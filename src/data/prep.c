/*
 * Preprocessing (fm_prep_t): fitting imputation, standardisation and one-hot parameters on
 * training rows, applying them to frames and to single request rows, naming the encoded features,
 * and storing the parameters as JSON inside a model.
 *
 * The conventions match scikit-learn's SimpleImputer (median / most_frequent), StandardScaler
 * (population variance), OneHotEncoder(handle_unknown="ignore") and MissingIndicator, so that
 * tests/ref/test_prep.py can check every encoded value against them. The median is exact
 * (quickselect, mean of the two middle values for an even count, as numpy.median); categories
 * are in byte order, as numpy.unique sorts them.
 *
 * fm_prep_transform maps a frame's dictionary codes to category ids once per call, so the per-row
 * work is a table lookup. fm_prep_encode_row is the serving path: it allocates nothing and only
 * reads the prep, so many threads may share one.
 *
 * A numeric column may be binned after fitting (fm_prep_set_bins): scorecards one-hot encode
 * their Weight-of-Evidence bins so that a one-layer logistic model over the indicators carries
 * each bin's points, and every path that encodes rows (training, batch scoring, serving,
 * explanations) bins the same way.
 *
 * A column may be marked as personal data (fm_prep_mark_pii). The mark travels with the
 * parameters so that the layers that log, audit and report errors know which raw values to mask.
 * A numeric PII column keeps its encoding (its parameters are aggregates); a categorical one loses
 * its categories and encodes to no feature, since they would be raw values in clear.
 */
#include "data/prep.h"
#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_CATEGORIES 100

/* Limits on parameters read from JSON, far above anything a fit produces in practice. */
#define JSON_MAX_COLUMNS 1000000
#define JSON_MAX_WIDTH   (1 << 24)

/* The longest value quoted in an error message. */
#define MESSAGE_VALUE_MAX 64

void fm_prep_free(fm_prep_t *prep) {
    if (!prep) return;
    for (size_t i = 0; i < prep->ncolumns && prep->columns; i++) {
        free(prep->columns[i].name);
        free(prep->columns[i].edges);
        fm_strdict_free(&prep->columns[i].categories);
    }
    free(prep->columns);
    free(prep);
}

static fm_prep_t *prep_new(size_t ncolumns) {
    fm_prep_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->columns = calloc(ncolumns ? ncolumns : 1, sizeof *p->columns);
    if (!p->columns) {
        free(p);
        return NULL;
    }
    p->ncolumns = ncolumns;
    for (size_t i = 0; i < ncolumns; i++)
        p->columns[i].most_frequent = -1;
    return p;
}

int fm_prep_find(const fm_prep_t *prep, const char *name) {
    for (size_t i = 0; i < prep->ncolumns; i++)
        if (strcmp(prep->columns[i].name, name) == 0) return (int)i;
    return -1;
}

static void layout(fm_prep_t *p);

/* 1 when column i of prep is named in names[0..n). */
static int named(const fm_prep_t *prep, size_t i, const char *const *names, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (strcmp(prep->columns[i].name, names[k]) == 0) return 1;
    return 0;
}

int fm_prep_mark_pii(fm_prep_t *prep, const char *const *names, size_t n, fm_error_t *err) {
    for (size_t i = 0; i < n; i++)
        if (!names[i] || fm_prep_find(prep, names[i]) < 0)
            return fm_error_set(err, FM_EINVAL, "PII column '%s' is not a feature column",
                                names[i] ? names[i] : "(null)");
    size_t left = 0;
    for (size_t i = 0; i < prep->ncolumns; i++)
        if (prep->columns[i].type != FM_COLUMN_CATEGORICAL || !named(prep, i, names, n))
            left += prep->columns[i].width;
    if (left == 0)
        return fm_error_set(err, FM_EINVAL,
                            "no features left: every feature column is a categorical PII column");
    for (size_t i = 0; i < prep->ncolumns; i++) {
        fm_prep_column_t *c = &prep->columns[i];
        if (!named(prep, i, names, n)) continue;
        c->pii = 1;
        if (c->type != FM_COLUMN_CATEGORICAL) continue;
        /* One-hot categories are raw values, which a model file must not carry in clear: a
         * categorical PII column (an e-mail, a card number: an identifier that predicts nothing)
         * stays in the schema, so requests may send it and it is masked, but encodes to nothing. */
        fm_strdict_free(&c->categories);
        c->most_frequent = -1;
        c->missing_indicator = 0;
    }
    layout(prep);
    return FM_OK;
}

/* The width of a column's encoded block. */
static size_t column_width(const fm_prep_column_t *c) {
    size_t base = c->type != FM_COLUMN_NUMERIC ? c->categories.count
                  : c->binned                  ? c->nedges + 1
                                               : 1;
    return base + (c->missing_indicator ? 1 : 0);
}

static void layout(fm_prep_t *p) {
    size_t offset = 0;
    for (size_t i = 0; i < p->ncolumns; i++) {
        p->columns[i].offset = offset;
        p->columns[i].width = column_width(&p->columns[i]);
        offset += p->columns[i].width;
    }
    p->nfeatures = offset;
}

size_t fm_prep_bin_of(const fm_prep_column_t *c, double x) {
    size_t lo = 0, hi = c->nedges; /* the first edge >= x, nedges when none */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->edges[mid] >= x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* FM_OK when edges[0..n) are finite and strictly increasing, else FM_EINVAL naming the column
 * (what names the caller's context) and the first bad edge. */
static int check_edges(const char *column, const double *edges, size_t n, fm_error_t *err) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(edges[i]))
            return fm_error_set(err, FM_EINVAL, "column '%s': bin edge %zu is not finite", column,
                                i);
        if (i > 0 && !(edges[i] > edges[i - 1]))
            return fm_error_set(err, FM_EINVAL,
                                "column '%s': bin edges must increase strictly, edge %zu (%.17g) "
                                "follows %.17g",
                                column, i, edges[i], edges[i - 1]);
    }
    return FM_OK;
}

int fm_prep_set_bins(fm_prep_t *prep, size_t column, const double *edges, size_t n,
                     int has_missing_bin, fm_error_t *err) {
    if (column >= prep->ncolumns)
        return fm_error_set(err, FM_EINVAL, "prep column %zu outside the %zu columns", column,
                            prep->ncolumns);
    fm_prep_column_t *c = &prep->columns[column];
    if (c->type != FM_COLUMN_NUMERIC)
        return fm_error_set(err, FM_EINVAL, "column '%s' is categorical: only numbers are binned",
                            c->name);
    if (n > JSON_MAX_WIDTH)
        return fm_error_set(err, FM_EINVAL, "column '%s': %zu bin edges, at most %d", c->name, n,
                            JSON_MAX_WIDTH);
    int rc = check_edges(c->name, edges, n, err);
    if (rc) return rc;
    double *copy = malloc((n ? n : 1) * sizeof *copy);
    if (!copy) return fm_error_set(err, FM_ENOMEM, "out of memory");
    if (n) memcpy(copy, edges, n * sizeof *copy);
    free(c->edges);
    c->edges = copy;
    c->nedges = n;
    c->binned = 1;
    c->missing_indicator = has_missing_bin ? 1 : 0;
    layout(prep);
    return FM_OK;
}

static const char *message_value(const char *s, size_t n, char buf[MESSAGE_VALUE_MAX + 4]) {
    size_t k = n > MESSAGE_VALUE_MAX ? MESSAGE_VALUE_MAX : n;
    memcpy(buf, s, k);
    memcpy(buf + k, n > k ? "..." : "", n > k ? 4 : 1);
    return buf;
}

/* Byte order, as strcmp and numpy.unique sort, for texts that may differ in length. */
static int compare_bytes(const char *a, size_t na, const char *b, size_t nb) {
    int c = memcmp(a, b, na < nb ? na : nb);
    if (c) return c;
    return (na > nb) - (na < nb);
}

/* ---- Fitting ----------------------------------------------------------------------------- */

static void swap_doubles(double *a, double *b) {
    double t = *a;
    *a = *b;
    *b = t;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/*
 * The k-th smallest of a[0..n), leaving the k smallest in a[0..k) (any order). Quickselect with
 * a median-of-three pivot and a three-way partition (so runs of equal values cost nothing);
 * after too many rounds the rest is sorted, which bounds the worst case at O(n log n).
 */
static double select_kth(double *a, size_t n, size_t k) {
    size_t lo = 0, hi = n;
    for (int round = 0; hi - lo > 1; round++) {
        if (round > 64) {
            qsort(a + lo, hi - lo, sizeof *a, compare_doubles);
            return a[k];
        }
        double x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi - 1];
        double pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        size_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            if (a[i] < pivot)
                swap_doubles(&a[lt++], &a[i++]);
            else if (a[i] > pivot)
                swap_doubles(&a[i], &a[--gt]);
            else
                i++;
        }
        if (k < lt)
            hi = lt;
        else if (k >= gt)
            lo = gt;
        else
            return pivot;
    }
    return a[k];
}

/* The median of a[0..n), n > 0; reorders a. */
static double median(double *a, size_t n) {
    size_t k = n / 2;
    double upper = select_kth(a, n, k);
    if (n % 2) return upper;
    double lower = a[0];
    for (size_t i = 1; i < k; i++)
        if (a[i] > lower) lower = a[i];
    return (lower + upper) / 2;
}

/* Neumaier's compensated sum: the mean of many rows keeps full precision. */
typedef struct {
    double sum, compensation;
} kahan_t;

static void kahan_add(kahan_t *k, double x) {
    double t = k->sum + x;
    if (fabs(k->sum) >= fabs(x))
        k->compensation += (k->sum - t) + x;
    else
        k->compensation += (x - t) + k->sum;
    k->sum = t;
}

static int fit_numeric(fm_prep_column_t *pc, const fm_column_t *fc, const size_t *rows,
                       size_t nrows, int indicators, double *scratch, fm_error_t *err) {
    size_t valid = 0;
    for (size_t i = 0; i < nrows; i++) {
        double v = fc->values[rows ? rows[i] : i];
        if (isnan(v)) continue;
        if (isinf(v))
            return fm_error_set(err, FM_EDATA, "column '%s': row %zu is not a finite number",
                                fc->name, rows ? rows[i] : i);
        scratch[valid++] = v;
    }
    size_t missing = nrows - valid;
    kahan_t sum = {0, 0};
    double lowest = INFINITY, highest = -INFINITY;
    for (size_t i = 0; i < valid; i++) {
        kahan_add(&sum, scratch[i]);
        if (scratch[i] < lowest) lowest = scratch[i];
        if (scratch[i] > highest) highest = scratch[i];
    }
    double med = valid ? median(scratch, valid) : 0.0;
    if (missing) {
        kahan_add(&sum, med * (double)missing);
        if (med < lowest) lowest = med;
        if (med > highest) highest = med;
    }
    pc->median = med;
    if (lowest == highest) {
        /* Constant after imputation: centre exactly, keep the scale. */
        pc->mean = lowest;
        pc->std = 1.0;
    } else {
        double mean = (sum.sum + sum.compensation) / (double)nrows;
        kahan_t squares = {0, 0};
        for (size_t i = 0; i < valid; i++)
            kahan_add(&squares, (scratch[i] - mean) * (scratch[i] - mean));
        kahan_add(&squares, (double)missing * (med - mean) * (med - mean));
        double std = sqrt((squares.sum + squares.compensation) / (double)nrows);
        pc->mean = mean;
        pc->std = std > 0 && isfinite(std) ? std : 1.0;
    }
    pc->missing_indicator = indicators && missing > 0;
    return FM_OK;
}

typedef struct {
    const char *text;
    uint32_t len;
    size_t count;
} category_count_t;

static int by_bytes(const void *a, const void *b) {
    const category_count_t *x = a, *y = b;
    return compare_bytes(x->text, x->len, y->text, y->len);
}

static int by_count_then_bytes(const void *a, const void *b) {
    const category_count_t *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return by_bytes(a, b);
}

static int fit_categorical(fm_prep_column_t *pc, const fm_column_t *fc, const size_t *rows,
                           size_t nrows, int indicators, size_t max_categories, fm_error_t *err) {
    size_t ndict = fc->dict.count;
    size_t *counts = calloc(ndict ? ndict : 1, sizeof *counts);
    category_count_t *seen = calloc(ndict ? ndict : 1, sizeof *seen);
    int rc = counts && seen ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t missing = 0, nseen = 0;
    for (size_t i = 0; rc == FM_OK && i < nrows; i++) {
        int32_t code = fc->codes[rows ? rows[i] : i];
        if (code < 0)
            missing++;
        else if ((size_t)code < ndict)
            counts[code]++;
        else
            rc = fm_error_set(err, FM_EDATA, "column '%s': code %d outside its dictionary",
                              fc->name, (int)code);
    }
    for (size_t id = 0; rc == FM_OK && id < ndict; id++)
        if (counts[id])
            seen[nseen++] = (category_count_t){fc->dict.strings[id], fc->dict.lens[id], counts[id]};
    if (rc == FM_OK && nseen > max_categories) {
        qsort(seen, nseen, sizeof *seen, by_count_then_bytes);
        nseen = max_categories;
    }
    if (rc == FM_OK) qsort(seen, nseen, sizeof *seen, by_bytes);
    for (size_t i = 0; rc == FM_OK && i < nseen; i++) {
        if (fm_strdict_intern(&pc->categories, seen[i].text, seen[i].len) < 0)
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        /* In byte order, so the first of equally frequent categories wins. */
        else if (pc->most_frequent < 0 || seen[i].count > seen[pc->most_frequent].count)
            pc->most_frequent = (int32_t)i;
    }
    pc->missing_indicator = indicators && missing > 0;
    free(counts);
    free(seen);
    return rc;
}

int fm_prep_fit(const fm_frame_t *frame, const size_t *cols, size_t ncols, const size_t *rows,
                size_t nrows, const fm_prep_options_t *options, fm_prep_t **out, fm_error_t *err) {
    *out = NULL;
    if (!rows) nrows = frame->nrows;
    if (nrows == 0) return fm_error_set(err, FM_EINVAL, "no training rows to fit on");
    if (ncols == 0) return fm_error_set(err, FM_EINVAL, "no columns to fit");
    for (size_t k = 0; k < ncols; k++) {
        if (cols[k] >= frame->ncols)
            return fm_error_set(err, FM_EINVAL, "column index %zu outside the frame (%zu columns)",
                                cols[k], frame->ncols);
        for (size_t j = 0; j < k; j++)
            if (cols[j] == cols[k])
                return fm_error_set(err, FM_EINVAL, "column '%s' selected twice",
                                    frame->columns[cols[k]].name);
    }
    for (size_t i = 0; rows && i < nrows; i++)
        if (rows[i] >= frame->nrows)
            return fm_error_set(err, FM_EINVAL, "row index %zu outside the frame (%zu rows)",
                                rows[i], frame->nrows);
    int indicators = options ? options->missing_indicators : 0;
    size_t max_categories =
        options && options->max_categories ? options->max_categories : DEFAULT_MAX_CATEGORIES;
    fm_prep_t *p = prep_new(ncols);
    double *scratch = malloc(nrows * sizeof *scratch);
    if (!p || !scratch) {
        free(scratch);
        fm_prep_free(p);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    int rc = FM_OK;
    for (size_t k = 0; k < ncols && rc == FM_OK; k++) {
        const fm_column_t *fc = &frame->columns[cols[k]];
        fm_prep_column_t *pc = &p->columns[k];
        pc->type = fc->type;
        if (!(pc->name = strdup(fc->name)))
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        else if (fc->type == FM_COLUMN_NUMERIC)
            rc = fit_numeric(pc, fc, rows, nrows, indicators, scratch, err);
        else
            rc = fit_categorical(pc, fc, rows, nrows, indicators, max_categories, err);
    }
    free(scratch);
    if (rc == FM_OK) {
        layout(p);
        if (p->nfeatures == 0)
            rc = fm_error_set(err, FM_EDATA,
                              "no features: every selected column is empty in the training rows");
    }
    if (rc) {
        fm_prep_free(p);
        return rc;
    }
    *out = p;
    return FM_OK;
}

/* ---- Encoding ---------------------------------------------------------------------------- */

/* Writes a numeric column's block; v is NaN when missing. */
static void put_numeric(const fm_prep_column_t *c, double v, double *o) {
    int missing = isnan(v);
    if (c->binned) {
        memset(o, 0, c->width * sizeof *o);
        if (missing && c->missing_indicator)
            o[c->nedges + 1] = 1.0;
        else
            o[fm_prep_bin_of(c, missing ? c->median : v)] = 1.0;
        return;
    }
    o[0] = ((missing ? c->median : v) - c->mean) / c->std;
    if (c->missing_indicator) o[1] = missing;
}

/* Writes a categorical column's block: id -1 is an unseen category (all zeros). */
static void put_category(const fm_prep_column_t *c, int32_t id, int missing, double *o) {
    memset(o, 0, c->width * sizeof *o);
    if (missing) id = c->most_frequent;
    if (id >= 0) o[id] = 1.0;
    if (c->missing_indicator) o[c->categories.count] = missing;
}

/* The text a number stands for as a category: the shortest %.15g..%.17g that reads back. */
static size_t format_number(double v, char buf[32]) {
    if (v == 0) v = 0; /* no "-0" category */
    int n = 0;
    for (int precision = 15; precision <= 17; precision++) {
        n = snprintf(buf, 32, "%.*g", precision, v);
        if (strtod(buf, NULL) == v) break;
    }
    return (size_t)n;
}

/* The category id of a number, or -1 when it is not a training category. */
static int32_t category_of_number(const fm_prep_column_t *c, double v) {
    char text[32];
    size_t n = format_number(v, text);
    return fm_strdict_find(&c->categories, text, n);
}

static int not_a_number(const fm_prep_column_t *c, const char *s, size_t n, int rc,
                        fm_error_t *err) {
    const char *kind = rc == FM_ERANGE ? "finite number" : "number";
    /* The value of a personal-data column never goes into a message. */
    if (c->pii)
        return fm_error_set(err, FM_EDATA, "column '%s' (personal data): the value is not a %s",
                            c->name, kind);
    char quoted[MESSAGE_VALUE_MAX + 4];
    return fm_error_set(err, FM_EDATA, "column '%s': '%s' is not a %s", c->name,
                        message_value(s, n, quoted), kind);
}

/* Parses text for a numeric column into *v (NaN for a missing token). */
static int parse_cell(const fm_prep_column_t *c, const char *s, size_t n, double *v,
                      fm_error_t *err) {
    int rc = n ? fm_value_parse_number(s, n, v) : FM_EPARSE;
    if (rc == FM_OK) return FM_OK;
    if (fm_value_is_missing(s, n)) {
        *v = NAN;
        return FM_OK;
    }
    if (rc == FM_ENOMEM) return fm_error_set(err, FM_ENOMEM, "out of memory");
    return not_a_number(c, s, n, rc, err);
}

fm_raw_value_t fm_prep_raw_cell(const fm_frame_t *frame, int col, size_t r) {
    fm_raw_value_t v = {FM_RAW_MISSING, 0, NULL, 0};
    const fm_column_t *c = &frame->columns[col];
    if (c->type == FM_COLUMN_NUMERIC) {
        if (!isnan(c->values[r])) v = (fm_raw_value_t){FM_RAW_NUMBER, c->values[r], NULL, 0};
    } else if (c->codes[r] >= 0) {
        v = (fm_raw_value_t){FM_RAW_STRING, 0, fm_strdict_get(&c->dict, c->codes[r]),
                             c->dict.lens[c->codes[r]]};
    }
    return v;
}

int fm_prep_encode_row(const fm_prep_t *prep, const fm_raw_value_t *values, double *out,
                       fm_error_t *err) {
    for (size_t k = 0; k < prep->ncolumns; k++) {
        const fm_prep_column_t *c = &prep->columns[k];
        const fm_raw_value_t *v = &values[k];
        double *o = out + c->offset;
        if (c->type == FM_COLUMN_NUMERIC) {
            double x = NAN;
            if (v->kind == FM_RAW_NUMBER) {
                x = v->number;
            } else if (v->kind == FM_RAW_STRING) {
                int rc = parse_cell(c, v->str, v->len, &x, err);
                if (rc) return rc;
            }
            if (isinf(x))
                return fm_error_set(err, FM_EDATA, "column '%s': value is not a finite number",
                                    c->name);
            put_numeric(c, x, o);
        } else if (v->kind == FM_RAW_NUMBER && !isnan(v->number)) {
            put_category(c, category_of_number(c, v->number), 0, o);
        } else if (v->kind == FM_RAW_STRING && !fm_value_is_missing(v->str, v->len)) {
            put_category(c, fm_strdict_find(&c->categories, v->str, v->len), 0, o);
        } else {
            put_category(c, -1, 1, o);
        }
    }
    return FM_OK;
}

/*
 * How one prep column reads its frame column during fm_prep_transform. A categorical frame column
 * has its dictionary translated once (to category ids, or to numbers for a numeric prep column),
 * so encoding a cell is a table lookup.
 */
typedef struct plan {
    const fm_prep_column_t *c;
    const fm_column_t *fc;
    int32_t *ids;    /* categorical from categorical: code -> category id, -2 for missing */
    double *numbers; /* numeric from categorical: code -> number, NaN for missing */
    int *bad;        /* numeric from categorical: code -> parse error, 0 when fine */
    int32_t ndict;
    int plain; /* numeric from numeric without indicator: the hot path, inlined below */
    size_t offset;
    double median, mean, std;
} plan_t;

static void plan_free(plan_t *p) {
    free(p->ids);
    free(p->numbers);
    free(p->bad);
}

static int plan_column(plan_t *p, const fm_prep_column_t *c, const fm_column_t *fc,
                       fm_error_t *err) {
    memset(p, 0, sizeof *p);
    p->c = c;
    p->fc = fc;
    p->offset = c->offset;
    p->median = c->median;
    p->mean = c->mean;
    p->std = c->std;
    p->plain = c->type == FM_COLUMN_NUMERIC && fc->type == FM_COLUMN_NUMERIC &&
               !c->missing_indicator && !c->binned;
    if (fc->type != FM_COLUMN_CATEGORICAL) return FM_OK;
    size_t ndict = fc->dict.count;
    p->ndict = (int32_t)ndict;
    if (c->type == FM_COLUMN_NUMERIC) {
        p->numbers = malloc((ndict ? ndict : 1) * sizeof *p->numbers);
        p->bad = calloc(ndict ? ndict : 1, sizeof *p->bad);
    } else {
        p->ids = malloc((ndict ? ndict : 1) * sizeof *p->ids);
    }
    if (c->type == FM_COLUMN_NUMERIC ? (!p->numbers || !p->bad) : !p->ids) {
        plan_free(p);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    for (size_t id = 0; id < ndict; id++) {
        const char *s = fc->dict.strings[id];
        size_t n = fc->dict.lens[id];
        if (p->ids) {
            p->ids[id] = fm_value_is_missing(s, n) ? -2 : fm_strdict_find(&c->categories, s, n);
        } else {
            int rc = n ? fm_value_parse_number(s, n, &p->numbers[id]) : FM_EPARSE;
            if (rc && fm_value_is_missing(s, n))
                p->numbers[id] = NAN;
            else if (rc)
                p->bad[id] = rc;
        }
    }
    return FM_OK;
}

/* Encodes the cell of frame row r into the column's block o. */
static int encode_cell(const plan_t *p, size_t r, double *o, fm_error_t *err) {
    const fm_prep_column_t *c = p->c;
    const fm_column_t *fc = p->fc;
    if (fc->type == FM_COLUMN_NUMERIC) {
        double v = fc->values[r];
        if (c->type == FM_COLUMN_NUMERIC) {
            if (isinf(v))
                return fm_error_set(err, FM_EDATA, "column '%s': row %zu is not a finite number",
                                    c->name, r);
            put_numeric(c, v, o);
        } else if (isnan(v)) {
            put_category(c, -1, 1, o);
        } else {
            put_category(c, category_of_number(c, v), 0, o);
        }
        return FM_OK;
    }
    int32_t code = fc->codes[r];
    if (code >= p->ndict)
        return fm_error_set(err, FM_EDATA,
                            "column '%s': row %zu has code %d outside its dictionary", c->name, r,
                            (int)code);
    if (p->ids) {
        int32_t id = code < 0 ? -2 : p->ids[code];
        put_category(c, id < -1 ? -1 : id, id < -1, o);
    } else if (code < 0) {
        put_numeric(c, NAN, o);
    } else if (p->bad[code]) {
        return not_a_number(c, fc->dict.strings[code], fc->dict.lens[code], p->bad[code], err);
    } else {
        put_numeric(c, p->numbers[code], o);
    }
    return FM_OK;
}

int fm_prep_transform(const fm_prep_t *prep, const fm_frame_t *frame, const size_t *rows,
                      size_t nrows, double *out, fm_error_t *err) {
    if (!rows && nrows > frame->nrows)
        return fm_error_set(err, FM_EINVAL, "%s: %zu rows requested, the frame has %zu",
                            frame->source ? frame->source : "frame", nrows, frame->nrows);
    for (size_t i = 0; rows && i < nrows; i++)
        if (rows[i] >= frame->nrows)
            return fm_error_set(err, FM_EINVAL, "row index %zu outside the frame (%zu rows)",
                                rows[i], frame->nrows);
    plan_t *plans = calloc(prep->ncolumns ? prep->ncolumns : 1, sizeof *plans);
    if (!plans) return fm_error_set(err, FM_ENOMEM, "out of memory");
    int rc = FM_OK;
    size_t planned = 0;
    for (; planned < prep->ncolumns && !rc; planned++) {
        const fm_prep_column_t *c = &prep->columns[planned];
        int idx = fm_frame_find(frame, c->name);
        if (idx < 0) {
            rc = fm_error_set(err, FM_ENOTFOUND, "%s: column '%s' not found",
                              frame->source ? frame->source : "input", c->name);
            break;
        }
        rc = plan_column(&plans[planned], c, &frame->columns[idx], err);
    }
    /* Row by row, so the output is written in order and stays in cache. */
    for (size_t i = 0; i < nrows && !rc; i++) {
        size_t r = rows ? rows[i] : i;
        double *o = out + i * prep->nfeatures;
        for (size_t k = 0; k < prep->ncolumns && !rc; k++) {
            const plan_t *p = &plans[k];
            double v;
            if (p->plain && !isinf(v = p->fc->values[r]))
                o[p->offset] = ((isnan(v) ? p->median : v) - p->mean) / p->std;
            else
                rc = encode_cell(p, r, o + p->offset, err);
        }
    }
    for (size_t k = 0; k < planned; k++)
        plan_free(&plans[k]);
    free(plans);
    return rc;
}

/* "Income=(-inf, 1000]", "Income=(1000, 2000]", "Income=(2000, inf)": bin i of a binned column. */
static void bin_name(const fm_prep_column_t *c, size_t i, char *buf, size_t size) {
    char lower[32] = "-inf", upper[32] = "inf";
    if (i > 0) format_number(c->edges[i - 1], lower);
    if (i < c->nedges) format_number(c->edges[i], upper);
    snprintf(buf, size, "%s=(%s, %s%s", c->name, lower, upper, i < c->nedges ? "]" : ")");
}

const char *fm_prep_feature_name(const fm_prep_t *prep, size_t j, char *buf, size_t size) {
    if (size == 0) return buf;
    buf[0] = '\0';
    for (size_t k = 0; k < prep->ncolumns; k++) {
        const fm_prep_column_t *c = &prep->columns[k];
        if (j < c->offset || j >= c->offset + c->width) continue;
        size_t i = j - c->offset;
        size_t values = c->width - (c->missing_indicator ? 1 : 0);
        if (i >= values)
            snprintf(buf, size, "%s_missing", c->name);
        else if (c->type == FM_COLUMN_NUMERIC && c->binned)
            bin_name(c, i, buf, size);
        else if (c->type == FM_COLUMN_NUMERIC)
            snprintf(buf, size, "%s", c->name);
        else
            snprintf(buf, size, "%s=%s", c->name, fm_strdict_get(&c->categories, (int32_t)i));
        break;
    }
    return buf;
}

/* ---- JSON -------------------------------------------------------------------------------- */

static cJSON *column_to_json(const fm_prep_column_t *c) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int ok = cJSON_AddStringToObject(o, "name", c->name) &&
             cJSON_AddStringToObject(o, "type", fm_column_type_name(c->type)) != NULL;
    if (c->pii) ok = ok && cJSON_AddTrueToObject(o, "pii") != NULL;
    if (c->type == FM_COLUMN_NUMERIC) {
        ok = ok && fm_json_add_number(o, "median", c->median) &&
             fm_json_add_number(o, "mean", c->mean) && fm_json_add_number(o, "std", c->std);
        /* Only on binned columns, so other files read and write as before. */
        if (ok && c->binned) {
            cJSON *bins = fm_json_double_array(c->edges, c->nedges);
            ok = bins && cJSON_AddItemToObject(o, "bins", bins);
            if (!ok) cJSON_Delete(bins);
        }
    } else {
        cJSON *categories = cJSON_AddArrayToObject(o, "categories");
        ok = ok && categories;
        for (size_t i = 0; ok && i < c->categories.count; i++) {
            cJSON *s = cJSON_CreateString(c->categories.strings[i]);
            ok = s && cJSON_AddItemToArray(categories, s);
            if (!ok) cJSON_Delete(s);
        }
        ok = ok && cJSON_AddNumberToObject(o, "most_frequent", c->most_frequent);
    }
    ok = ok && cJSON_AddBoolToObject(o, "missing_indicator", c->missing_indicator) &&
         cJSON_AddNumberToObject(o, "offset", (double)c->offset) &&
         cJSON_AddNumberToObject(o, "width", (double)c->width);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *fm_prep_to_json(const fm_prep_t *prep) {
    cJSON *root = cJSON_CreateObject();
    cJSON *columns = root ? cJSON_AddArrayToObject(root, "columns") : NULL;
    int ok = columns && cJSON_AddNumberToObject(root, "nfeatures", (double)prep->nfeatures);
    for (size_t i = 0; ok && i < prep->ncolumns; i++) {
        cJSON *c = column_to_json(&prep->columns[i]);
        ok = c && cJSON_AddItemToArray(columns, c);
        if (!ok) cJSON_Delete(c);
    }
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* The optional "bins" edges of a numeric column: absent, the column is standardised. */
static int bins_from_json(const cJSON *o, fm_prep_column_t *c, fm_error_t *err) {
    const cJSON *bins = cJSON_GetObjectItemCaseSensitive(o, "bins");
    if (!bins) return FM_OK;
    if (!cJSON_IsArray(bins)) return fm_error_set(err, FM_EFORMAT, "field 'bins' is not an array");
    int n = cJSON_GetArraySize(bins);
    if (n > JSON_MAX_WIDTH) return fm_error_set(err, FM_EFORMAT, "field 'bins' has too many edges");
    c->edges = malloc((n ? (size_t)n : 1) * sizeof *c->edges);
    if (!c->edges) return fm_error_set(err, FM_ENOMEM, "out of memory");
    int rc = fm_json_doubles(bins, "bins", c->edges, (size_t)n, err);
    if (!rc) rc = check_edges(c->name, c->edges, (size_t)n, err);
    if (rc) {
        fm_error_prefix(err, "field 'bins': ");
        if (err) err->code = FM_EFORMAT;
        return FM_EFORMAT;
    }
    c->nedges = (size_t)n;
    c->binned = 1;
    return FM_OK;
}

static int column_from_json(const cJSON *o, fm_prep_column_t *c, size_t offset, fm_error_t *err) {
    const char *name, *type;
    int64_t value;
    int rc = fm_json_string(o, "name", &name, err);
    if (rc) return rc;
    if (!*name) return fm_error_set(err, FM_EFORMAT, "field 'name' is empty");
    if (!(c->name = strdup(name))) return fm_error_set(err, FM_ENOMEM, "out of memory");
    if ((rc = fm_json_string(o, "type", &type, err))) return rc;
    if (strcmp(type, "numeric") == 0)
        c->type = FM_COLUMN_NUMERIC;
    else if (strcmp(type, "categorical") == 0)
        c->type = FM_COLUMN_CATEGORICAL;
    else
        return fm_error_set(err, FM_EFORMAT, "field 'type': unknown type '%.64s'", type);
    /* Absent in files written before columns could be marked: not personal data. */
    const cJSON *pii = cJSON_GetObjectItemCaseSensitive(o, "pii");
    if (pii && !cJSON_IsBool(pii))
        return fm_error_set(err, FM_EFORMAT, "field 'pii' is not a boolean");
    c->pii = cJSON_IsTrue(pii);
    const cJSON *indicator = cJSON_GetObjectItemCaseSensitive(o, "missing_indicator");
    if (!cJSON_IsBool(indicator))
        return fm_error_set(err, FM_EFORMAT,
                            "field 'missing_indicator' is missing or not a boolean");
    c->missing_indicator = cJSON_IsTrue(indicator);
    if (c->type == FM_COLUMN_NUMERIC) {
        if ((rc = fm_json_number(o, "median", &c->median, err)) ||
            (rc = fm_json_number(o, "mean", &c->mean, err)) ||
            (rc = fm_json_number(o, "std", &c->std, err)))
            return rc;
        if (!(c->std > 0)) return fm_error_set(err, FM_EFORMAT, "field 'std' must be positive");
        if ((rc = bins_from_json(o, c, err))) return rc;
    } else {
        const cJSON *categories, *item;
        if (cJSON_GetObjectItemCaseSensitive(o, "bins"))
            return fm_error_set(err, FM_EFORMAT, "field 'bins' applies to numeric columns only");
        if ((rc = fm_json_array(o, "categories", -1, &categories, err))) return rc;
        if (cJSON_GetArraySize(categories) > JSON_MAX_WIDTH)
            return fm_error_set(err, FM_EFORMAT, "field 'categories' has too many items");
        size_t i = 0;
        cJSON_ArrayForEach(item, categories) {
            if (!cJSON_IsString(item))
                return fm_error_set(err, FM_EFORMAT, "categories[%zu] is not a string", i);
            size_t n = strlen(item->valuestring);
            if (i > 0) {
                const char *prev = c->categories.strings[i - 1];
                if (compare_bytes(prev, c->categories.lens[i - 1], item->valuestring, n) >= 0)
                    return fm_error_set(err, FM_EFORMAT,
                                        "categories[%zu] '%.64s' is duplicated or out of order", i,
                                        item->valuestring);
            }
            if (fm_strdict_intern(&c->categories, item->valuestring, n) < 0)
                return fm_error_set(err, FM_ENOMEM, "out of memory");
            i++;
        }
        int64_t lowest = c->categories.count ? 0 : -1;
        if ((rc = fm_json_int(o, "most_frequent", lowest, (int64_t)c->categories.count - 1, &value,
                              err)))
            return rc;
        c->most_frequent = (int32_t)value;
    }
    if ((rc = fm_json_int(o, "offset", 0, INT64_MAX / 2, &value, err))) return rc;
    if ((size_t)value != offset)
        return fm_error_set(err, FM_EFORMAT,
                            "field 'offset' is %lld, the columns before end at %zu",
                            (long long)value, offset);
    c->offset = offset;
    if ((rc = fm_json_int(o, "width", 0, JSON_MAX_WIDTH, &value, err))) return rc;
    c->width = column_width(c);
    if ((size_t)value != c->width)
        return fm_error_set(err, FM_EFORMAT, "field 'width' is %lld, the column encodes to %zu",
                            (long long)value, c->width);
    return FM_OK;
}

int fm_prep_from_json(const cJSON *json, fm_prep_t **out, fm_error_t *err) {
    *out = NULL;
    const cJSON *columns, *item;
    int64_t nfeatures;
    if (!cJSON_IsObject(json))
        return fm_error_set(err, FM_EFORMAT, "preprocessing: expected a JSON object");
    int rc = fm_json_array(json, "columns", -1, &columns, err);
    if (!rc) rc = fm_json_int(json, "nfeatures", 1, INT64_MAX / 2, &nfeatures, err);
    if (rc) return fm_error_prefix(err, "preprocessing: ");
    int ncolumns = cJSON_GetArraySize(columns);
    if (ncolumns < 1 || ncolumns > JSON_MAX_COLUMNS)
        return fm_error_set(err, FM_EFORMAT, "preprocessing: 'columns' must have 1 to %d items",
                            JSON_MAX_COLUMNS);
    fm_prep_t *p = prep_new((size_t)ncolumns);
    if (!p) return fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t k = 0, offset = 0;
    cJSON_ArrayForEach(item, columns) {
        if (!cJSON_IsObject(item)) {
            rc = fm_error_set(err, FM_EFORMAT, "preprocessing: column %zu is not an object", k);
            break;
        }
        rc = column_from_json(item, &p->columns[k], offset, err);
        for (size_t j = 0; rc == FM_OK && j < k; j++)
            if (strcmp(p->columns[j].name, p->columns[k].name) == 0)
                rc = fm_error_set(err, FM_EFORMAT, "the name is used by column %zu too", j);
        if (rc) {
            const char *name = p->columns[k].name;
            fm_error_prefix(err, "preprocessing: column %zu%s%.64s%s: ", k, name ? " ('" : "",
                            name ? name : "", name ? "')" : "");
            break;
        }
        offset += p->columns[k].width;
        k++;
    }
    if (rc == FM_OK && (size_t)nfeatures != offset)
        rc = fm_error_set(err, FM_EFORMAT,
                          "preprocessing: 'nfeatures' is %lld, the columns encode to %zu",
                          (long long)nfeatures, offset);
    if (rc) {
        fm_prep_free(p);
        return rc;
    }
    p->nfeatures = offset;
    *out = p;
    return FM_OK;
}
