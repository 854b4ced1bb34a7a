/*
 * Partial dependence and ICE curves (importance/internal.h), as scikit-learn's partial_dependence
 * with method "brute": every sampled row gets one raw feature set to a grid value and is
 * predicted; a row's predictions over the grid are its ICE curve, their mean over the rows the
 * partial dependence. The grid value's encoded block is computed once and written over the
 * feature's block of each row, so nothing is re-encoded per row.
 *
 * The numeric grid follows NumPy: percentiles by linear interpolation between order statistics
 * (numpy.percentile's default method, including its way of interpolating from the upper value
 * when the fraction is at least one half) and points as numpy.linspace makes them.
 */
#include "importance/internal.h"
#include "core/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The raw number in frame row r of column fc, NaN when missing. */
static int raw_number(const fm_column_t *fc, size_t r, double *out, fm_error_t *err) {
    if (fc->type == FM_COLUMN_NUMERIC) {
        *out = fc->values[r];
        return FM_OK;
    }
    int32_t code = fc->codes[r];
    *out = NAN;
    if (code < 0) return FM_OK;
    const char *s = fm_strdict_get(&fc->dict, code);
    if (fm_value_parse_number(s, fc->dict.lens[code], out) || !isfinite(*out))
        return fm_error_set(err, FM_EDATA, "column '%s': value '%s' is not a number", fc->name, s);
    return FM_OK;
}

int fm_importance_numeric_grid(const fm_column_t *fc, const fm_importance_sample_t *s,
                               size_t max_points, double **out, size_t *count, fm_error_t *err) {
    *out = NULL;
    *count = 0;
    double *v = malloc((s->n > max_points ? s->n : max_points) * sizeof *v);
    if (!v) return fm_error_set(err, FM_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        double x;
        int rc = raw_number(fc, s->rows[i], &x, err);
        if (rc) {
            free(v);
            return rc;
        }
        if (!isnan(x)) v[n++] = x;
    }
    qsort(v, n, sizeof *v, fm_compare_double);
    size_t distinct = 0;
    for (size_t i = 0; i < n && distinct <= max_points; i++)
        if (i == 0 || v[i] != v[i - 1]) distinct++;
    if (distinct <= max_points) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (i == 0 || v[i] != v[i - 1]) v[k++] = v[i];
        *out = v;
        *count = k;
        return FM_OK;
    }
    double start = fm_quantile_sorted(v, n, 0.05), stop = fm_quantile_sorted(v, n, 0.95);
    double step = (stop - start) / (double)(max_points - 1);
    for (size_t i = 0; i < max_points; i++)
        v[i] = (double)i * step + start;
    v[max_points - 1] = stop;
    *out = v;
    *count = max_points;
    return FM_OK;
}

int fm_importance_partial_feature(fm_importance_predictor_t *p, const fm_prep_column_t *c,
                                  const double *x, size_t n, const double *blocks, size_t ngrid,
                                  size_t nice, double *average, double *ice, fm_error_t *err) {
    size_t nf = p->model->prep->nfeatures, w = p->width;
    memset(average, 0, ngrid * w * sizeof *average);
    /* Chunk outside, grid inside: a chunk's rows are copied once and only the block changes. */
    for (size_t start = 0; start < n; start += p->chunk) {
        size_t b = n - start < p->chunk ? n - start : p->chunk;
        memcpy(p->rows, x + start * nf, b * nf * sizeof *p->rows);
        for (size_t g = 0; g < ngrid; g++) {
            const double *block = blocks + g * c->width;
            for (size_t i = 0; i < b; i++)
                memcpy(p->rows + i * nf + c->offset, block, c->width * sizeof *block);
            int rc = fm_importance_predict(p, p->rows, b, p->preds, err);
            if (rc) return rc;
            double *sum = average + g * w;
            for (size_t i = 0; i < b; i++)
                for (size_t j = 0; j < w; j++)
                    sum[j] += p->preds[i * w + j];
            for (size_t i = 0; i < b && start + i < nice; i++)
                memcpy(ice + ((start + i) * ngrid + g) * w, p->preds + i * w, w * sizeof *ice);
        }
    }
    for (size_t k = 0; k < ngrid * w; k++)
        average[k] /= (double)n;
    return FM_OK;
}
