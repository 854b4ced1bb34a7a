/*
 * Weight of Evidence and Information Value, the credit-scoring measure of how well one feature
 * separates goods from bads on its own. Numeric features are binned at the deciles of their
 * values (inverted-CDF quantiles, repeated edges merged so no bin is empty), categorical ones by
 * category, and missing values get their own bin. search.h gives the formulas.
 */
#include "core/json.h"
#include "core/stats.h"
#include "search/search_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IV_BINS         10
#define MAX_LISTED_BINS 100 /* bins written per feature; the IV always uses all of them */

const char *fm_search_iv_strength(double iv) {
    if (iv < 0.02) return "useless";
    if (iv < 0.1) return "weak";
    if (iv < 0.3) return "medium";
    if (iv <= 0.5) return "strong";
    return "suspicious";
}

typedef struct bin {
    double good, bad;
    double lower, upper;  /* numeric bins: (lower, upper], infinite at the ends */
    const char *category; /* categorical bins; NULL for numeric and missing */
    int missing;
} bin_t;

static int compare_category(const void *a, const void *b) {
    const bin_t *x = a, *y = b;
    if (x->missing != y->missing) return x->missing - y->missing;
    return strcmp(x->category ? x->category : "", y->category ? y->category : "");
}

/* WoE and IV of each bin and the total, with 0.5 in an empty good or bad cell. */
static double weigh(const bin_t *bins, size_t n, double goods, double bads, double *woe,
                    double *iv) {
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        double g = bins[i].good > 0 ? bins[i].good : 0.5;
        double b = bins[i].bad > 0 ? bins[i].bad : 0.5;
        double pg = g / goods, pb = b / bads;
        woe[i] = log(pg / pb);
        iv[i] = (pg - pb) * woe[i];
        total += iv[i];
    }
    return total;
}

/* Decile bins of a numeric column over the used rows: fills bins, returns their number. */
static size_t numeric_bins(const fm_column_t *c, const size_t *use, size_t nuse,
                           const int32_t *label, double *sorted, bin_t *bins) {
    size_t m = 0;
    for (size_t i = 0; i < nuse; i++)
        if (!isnan(c->values[use[i]])) sorted[m++] = c->values[use[i]];
    qsort(sorted, m, sizeof *sorted, fm_compare_double);
    double edges[IV_BINS];
    size_t nedges = 0;
    for (size_t k = 1; m > 0 && k < IV_BINS; k++) {
        double e = sorted[(k * m + IV_BINS - 1) / IV_BINS - 1];
        if (nedges == 0 || e > edges[nedges - 1]) edges[nedges++] = e;
    }
    size_t nbins = 0;
    for (size_t j = 0; m > 0 && j <= nedges; j++) {
        if (j == nedges && !(sorted[m - 1] > edges[nedges - 1])) break;
        bins[nbins++] = (bin_t){
            0, 0, j == 0 ? -INFINITY : edges[j - 1], j == nedges ? INFINITY : edges[j], NULL, 0};
    }
    size_t missing = nbins;
    int any_missing = 0;
    bins[missing] = (bin_t){0, 0, NAN, NAN, NULL, 1};
    for (size_t i = 0; i < nuse; i++) {
        double x = c->values[use[i]];
        size_t b;
        if (isnan(x)) {
            b = missing;
            any_missing = 1;
        } else {
            size_t lo = 0, hi = nedges; /* first edge >= x, nedges when none */
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (edges[mid] >= x)
                    hi = mid;
                else
                    lo = mid + 1;
            }
            b = lo;
        }
        if (label[use[i]] == 1)
            bins[b].bad += 1;
        else
            bins[b].good += 1;
    }
    return nbins + (size_t)any_missing;
}

/* One bin per category present in the used rows (in byte order), then missing. */
static size_t category_bins(const fm_column_t *c, const size_t *use, size_t nuse,
                            const int32_t *label, bin_t *bins) {
    size_t k = c->dict.count;
    for (size_t j = 0; j < k; j++)
        bins[j] = (bin_t){0, 0, NAN, NAN, fm_strdict_get(&c->dict, (int32_t)j), 0};
    bins[k] = (bin_t){0, 0, NAN, NAN, NULL, 1};
    for (size_t i = 0; i < nuse; i++) {
        int32_t code = c->codes[use[i]];
        bin_t *b = &bins[code < 0 ? k : (size_t)code];
        if (label[use[i]] == 1)
            b->bad += 1;
        else
            b->good += 1;
    }
    size_t n = 0;
    for (size_t j = 0; j <= k; j++)
        if (bins[j].good + bins[j].bad > 0) bins[n++] = bins[j];
    qsort(bins, n, sizeof *bins, compare_category);
    return n;
}

static cJSON *bound_json(double v) {
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static cJSON *feature_json(const fm_column_t *c, const bin_t *bins, size_t nbins, const double *woe,
                           const double *iv, double total) {
    cJSON *f = cJSON_CreateObject();
    if (!f) return NULL;
    cJSON_AddStringToObject(f, "feature", c->name);
    cJSON_AddStringToObject(f, "type", fm_column_type_name(c->type));
    fm_json_add_number(f, "iv", total);
    cJSON_AddStringToObject(f, "strength", fm_search_iv_strength(total));
    cJSON *list = cJSON_AddArrayToObject(f, "bins");
    for (size_t i = 0; list && i < nbins && i < MAX_LISTED_BINS; i++) {
        const bin_t *b = &bins[i];
        cJSON *o = cJSON_CreateObject();
        char label[96];
        if (b->missing)
            snprintf(label, sizeof label, "missing");
        else if (b->category)
            snprintf(label, sizeof label, "%.90s", b->category);
        else if (isinf(b->lower))
            snprintf(label, sizeof label, "(-inf, %.6g]", b->upper);
        else if (isinf(b->upper))
            snprintf(label, sizeof label, "(%.6g, inf)", b->lower);
        else
            snprintf(label, sizeof label, "(%.6g, %.6g]", b->lower, b->upper);
        cJSON_AddStringToObject(o, "bin", label);
        if (!b->missing && !b->category) {
            cJSON_AddItemToObject(o, "lower", bound_json(b->lower));
            cJSON_AddItemToObject(o, "upper", bound_json(b->upper));
        }
        cJSON_AddNumberToObject(o, "count", b->good + b->bad);
        cJSON_AddNumberToObject(o, "good", b->good);
        cJSON_AddNumberToObject(o, "bad", b->bad);
        fm_json_add_number(o, "woe", woe[i]);
        fm_json_add_number(o, "iv", iv[i]);
        cJSON_AddItemToArray(list, o);
    }
    if (nbins > MAX_LISTED_BINS)
        cJSON_AddNumberToObject(f, "bins_omitted", (double)(nbins - MAX_LISTED_BINS));
    return f;
}

static int compare_iv(const void *a, const void *b) {
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    double u = cJSON_GetObjectItem(x, "iv")->valuedouble;
    double v = cJSON_GetObjectItem(y, "iv")->valuedouble;
    if (u != v) return u > v ? -1 : 1;
    return strcmp(cJSON_GetObjectItem(x, "feature")->valuestring,
                  cJSON_GetObjectItem(y, "feature")->valuestring);
}

static int skipped(const char *name, const char *const *skip, size_t nskip) {
    for (size_t i = 0; i < nskip; i++)
        if (skip[i] && !strcmp(skip[i], name)) return 1;
    return 0;
}

/* The features' objects, each computed over the used rows, in frame order. */
static int compute(const fm_frame_t *frame, const fm_target_t *t, const size_t *use, size_t nuse,
                   double goods, double bads, const char *const *skip, size_t nskip, cJSON **items,
                   size_t *nitems, fm_error_t *err) {
    size_t most = IV_BINS + 1;
    for (size_t c = 0; c < frame->ncols; c++)
        if (frame->columns[c].type == FM_COLUMN_CATEGORICAL &&
            frame->columns[c].dict.count + 1 > most)
            most = frame->columns[c].dict.count + 1;
    bin_t *bins = malloc(most * sizeof *bins);
    double *woe = malloc(most * sizeof *woe), *iv = malloc(most * sizeof *iv);
    double *sorted = malloc((nuse ? nuse : 1) * sizeof *sorted);
    int rc = bins && woe && iv && sorted ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t c = 0; !rc && c < frame->ncols; c++) {
        const fm_column_t *col = &frame->columns[c];
        if (c == t->column || skipped(col->name, skip, nskip)) continue;
        size_t n = col->type == FM_COLUMN_NUMERIC
                       ? numeric_bins(col, use, nuse, t->label, sorted, bins)
                       : category_bins(col, use, nuse, t->label, bins);
        double total = weigh(bins, n, goods, bads, woe, iv);
        cJSON *f = feature_json(col, bins, n, woe, iv, total);
        if (!f)
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        else
            items[(*nitems)++] = f;
    }
    free(bins);
    free(woe);
    free(iv);
    free(sorted);
    return rc;
}

int fm_search_information_value(const fm_frame_t *frame, const char *target, const char *positive,
                                const size_t *rows, size_t nrows, const char *const *skip,
                                size_t nskip, cJSON **out, fm_error_t *err) {
    *out = NULL;
    fm_target_t t;
    int rc = search_target_resolve(frame, target, FM_TASK_BINARY, positive, &t, err);
    if (rc) return fm_error_prefix(err, "Information Value needs a binary target: ");
    size_t count = rows ? nrows : frame->nrows;
    size_t *use = malloc((count ? count : 1) * sizeof *use);
    cJSON **items = calloc(frame->ncols ? frame->ncols : 1, sizeof *items);
    size_t nuse = 0, nitems = 0;
    double goods = 0, bads = 0;
    if (!use || !items) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < count; i++) {
        size_t r = rows ? rows[i] : i;
        if (r >= frame->nrows) {
            rc = fm_error_set(err, FM_EINVAL, "row %zu is outside %s (%zu rows)", r,
                              frame->source ? frame->source : "the data", frame->nrows);
            break;
        }
        if (t.label[r] < 0) continue;
        use[nuse++] = r;
        if (t.label[r] == 1)
            bads += 1;
        else
            goods += 1;
    }
    if (!rc && (goods == 0 || bads == 0))
        rc = fm_error_set(err, FM_EDATA,
                          "Information Value needs both classes of '%s'; the rows hold %.0f '%s' "
                          "and %.0f '%s'",
                          target, goods, t.classes[0], bads, t.classes[1]);
    if (!rc) rc = compute(frame, &t, use, nuse, goods, bads, skip, nskip, items, &nitems, err);
    cJSON *array = rc ? NULL : cJSON_CreateArray();
    if (!rc && !array) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) {
        qsort(items, nitems, sizeof *items, compare_iv);
        for (size_t i = 0; i < nitems; i++)
            cJSON_AddItemToArray(array, items[i]);
        nitems = 0;
        *out = array;
    }
    for (size_t i = 0; i < nitems; i++)
        cJSON_Delete(items[i]);
    free(items);
    free(use);
    fm_target_deinit(&t);
    return rc;
}
