/*
 * The profile of a dataset (jobs.h): per column its type, missing share and distinct count, the
 * distribution of a numeric column (min, max, mean, sample standard deviation, quantiles by
 * linear interpolation between order statistics, as NumPy and pandas compute them by default)
 * and the most frequent categories of a categorical one. PII columns get the counts only, never a
 * value. One sorted copy of a numeric column gives its minimum, maximum, quantiles and distinct
 * count; a categorical column is counted through its codes.
 */
#include "jobs/jobs.h"

#include "core/json.h"
#include "core/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    double q;
} quantiles[] = {{"p01", 0.01}, {"p25", 0.25}, {"p50", 0.50}, {"p75", 0.75}, {"p99", 0.99}};

/* The non-missing values of a numeric column, sorted, into out; returns their count. */
static size_t sorted_values(const fm_column_t *col, size_t nrows, double *out) {
    size_t n = 0;
    for (size_t r = 0; r < nrows; r++)
        if (!isnan(col->values[r])) out[n++] = col->values[r];
    qsort(out, n, sizeof *out, fm_compare_double);
    return n;
}

static size_t count_distinct(const double *sorted, size_t n) {
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        distinct += i == 0 || sorted[i] != sorted[i - 1];
    return distinct;
}

static void profile_numeric(cJSON *c, const fm_column_t *col, size_t nrows, int pii,
                            double *scratch) {
    size_t n = sorted_values(col, nrows, scratch);
    cJSON_AddNumberToObject(c, "distinct", (double)count_distinct(scratch, n));
    if (pii) return; /* the count of distinct values reveals none of them; the rest would */
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += scratch[i];
    double mean = n ? sum / (double)n : NAN;
    double squares = 0.0;
    for (size_t i = 0; i < n; i++)
        squares += (scratch[i] - mean) * (scratch[i] - mean);
    fm_json_add_number(c, "min", n ? scratch[0] : NAN);
    fm_json_add_number(c, "max", n ? scratch[n - 1] : NAN);
    fm_json_add_number(c, "mean", mean);
    fm_json_add_number(c, "std", n > 1 ? sqrt(squares / (double)(n - 1)) : NAN);
    cJSON *q = cJSON_AddObjectToObject(c, "quantiles");
    for (size_t k = 0; k < sizeof quantiles / sizeof quantiles[0]; k++)
        fm_json_add_number(q, quantiles[k].name,
                           n ? fm_quantile_sorted(scratch, n, quantiles[k].q) : NAN);
}

typedef struct category {
    size_t count;
    int32_t code;
} category_t;

static int compare_categories(const void *a, const void *b) {
    const category_t *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return (x->code > y->code) - (x->code < y->code);
}

static int profile_categorical(cJSON *c, const fm_column_t *col, size_t nrows, int pii) {
    size_t ncats = col->dict.count;
    category_t *cats = calloc(ncats ? ncats : 1, sizeof *cats);
    if (!cats) return FM_ENOMEM;
    for (size_t k = 0; k < ncats; k++)
        cats[k].code = (int32_t)k;
    for (size_t r = 0; r < nrows; r++)
        if (col->codes[r] >= 0) cats[col->codes[r]].count++;
    size_t distinct = 0;
    for (size_t k = 0; k < ncats; k++)
        distinct += cats[k].count > 0;
    cJSON_AddNumberToObject(c, "distinct", (double)distinct);
    if (!pii) {
        qsort(cats, ncats, sizeof *cats, compare_categories);
        cJSON *top = cJSON_AddArrayToObject(c, "top");
        for (size_t k = 0; k < ncats && k < FM_DATASET_TOP && cats[k].count > 0; k++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "value", fm_strdict_get(&col->dict, cats[k].code));
            cJSON_AddNumberToObject(e, "count", (double)cats[k].count);
            cJSON_AddItemToArray(top, e);
        }
    }
    free(cats);
    return FM_OK;
}

static int is_listed(const char *name, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], name)) return 1;
    return 0;
}

int fm_dataset_profile(const fm_frame_t *frame, const char *name, const char *const *pii,
                       size_t npii, cJSON **out, fm_error_t *err) {
    *out = NULL;
    for (size_t i = 0; i < npii; i++)
        if (fm_frame_find(frame, pii[i]) < 0)
            return fm_error_set(err, FM_EINVAL, "pii: column '%s' is not in dataset '%s'", pii[i],
                                name);
    double *scratch = malloc((frame->nrows ? frame->nrows : 1) * sizeof *scratch);
    cJSON *p = cJSON_CreateObject();
    if (!scratch || !p) {
        free(scratch);
        cJSON_Delete(p);
        return fm_error_set(err, FM_ENOMEM, "dataset '%s': out of memory profiling it", name);
    }
    cJSON_AddStringToObject(p, "name", name);
    cJSON_AddNumberToObject(p, "rows", (double)frame->nrows);
    cJSON_AddNumberToObject(p, "columns", (double)frame->ncols);
    cJSON_AddStringToObject(p, "digest", frame->digest);
    cJSON *pii_list = cJSON_AddArrayToObject(p, "pii");
    for (size_t i = 0; i < npii; i++)
        if (!is_listed(pii[i], pii, i)) cJSON_AddItemToArray(pii_list, cJSON_CreateString(pii[i]));
    cJSON *schema = cJSON_AddArrayToObject(p, "schema");
    cJSON *columns = cJSON_AddArrayToObject(p, "profile");
    int rc = FM_OK;
    for (size_t j = 0; !rc && j < frame->ncols; j++) {
        const fm_column_t *col = &frame->columns[j];
        int is_pii = is_listed(col->name, pii, npii);
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "name", col->name);
        cJSON_AddStringToObject(s, "type", fm_column_type_name(col->type));
        cJSON_AddItemToArray(schema, s);
        cJSON *c = cJSON_CreateObject();
        cJSON_AddItemToArray(columns, c);
        cJSON_AddStringToObject(c, "name", col->name);
        cJSON_AddStringToObject(c, "type", fm_column_type_name(col->type));
        cJSON_AddNumberToObject(c, "missing", (double)col->missing);
        cJSON_AddNumberToObject(c, "missing_share",
                                frame->nrows ? (double)col->missing / (double)frame->nrows : 0.0);
        if (is_pii) cJSON_AddBoolToObject(c, "pii", 1);
        if (col->type == FM_COLUMN_NUMERIC)
            profile_numeric(c, col, frame->nrows, is_pii, scratch);
        else if (profile_categorical(c, col, frame->nrows, is_pii) != FM_OK) {
            rc = fm_error_set(err, FM_ENOMEM, "dataset '%s': out of memory profiling it", name);
        }
    }
    free(scratch);
    if (rc) {
        cJSON_Delete(p);
        return rc;
    }
    *out = p;
    return FM_OK;
}
