/*
 * Permutation importance (importance/internal.h), as scikit-learn's permutation_importance: how
 * much the metric falls when one raw feature's values are shuffled across the rows, breaking its
 * link with the target while keeping its distribution. The shuffle moves the feature's whole
 * encoded block (a category's one-hot columns and its missing indicator together), which equals
 * shuffling the raw values and encoding again, since encoding is per column.
 */
#include "importance/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Golden-ratio increment: seeds of neighbouring columns are far apart before splitmix64. */
#define COLUMN_SEED_STEP 0x9E3779B97F4A7C15ull

void fm_importance_permutation_rng(fm_rng_t *rng, uint64_t seed, size_t column) {
    fm_rng_seed(rng, seed + COLUMN_SEED_STEP * ((uint64_t)column + 1));
}

void fm_importance_permutation_next(fm_rng_t *rng, size_t *perm, size_t n) {
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    fm_rng_shuffle(rng, perm, n);
}

/* pred[n * width] for the sample x with c's block taken from row perm[i] in row i. */
static int predict_permuted(fm_importance_predictor_t *p, const fm_prep_column_t *c,
                            const double *x, size_t n, const size_t *perm, double *pred,
                            fm_error_t *err) {
    size_t nf = p->model->prep->nfeatures;
    for (size_t start = 0; start < n; start += p->chunk) {
        size_t b = n - start < p->chunk ? n - start : p->chunk;
        memcpy(p->rows, x + start * nf, b * nf * sizeof *p->rows);
        for (size_t i = 0; i < b; i++)
            memcpy(p->rows + i * nf + c->offset, x + perm[start + i] * nf + c->offset,
                   c->width * sizeof *p->rows);
        int rc = fm_importance_predict(p, p->rows, b, pred + start * p->width, err);
        if (rc) return rc;
    }
    return FM_OK;
}

int fm_importance_permutation_feature(fm_importance_predictor_t *p, fm_importance_score_fn score,
                                      const void *ctx, const fm_prep_column_t *c, size_t column,
                                      const double *x, size_t n, int repeats, uint64_t seed,
                                      double baseline, double *pred, size_t *perm, double *mean,
                                      double *std, fm_error_t *err) {
    double drops[100];
    if (repeats < 1 || repeats > 100)
        return fm_error_set(err, FM_EINVAL, "repeats %d outside 1..100", repeats);
    fm_rng_t rng;
    fm_importance_permutation_rng(&rng, seed, column);
    double sum = 0.0;
    for (int r = 0; r < repeats; r++) {
        fm_importance_permutation_next(&rng, perm, n);
        int rc = predict_permuted(p, c, x, n, perm, pred, err);
        if (rc) return rc;
        drops[r] = baseline - score(ctx, pred, n);
        sum += drops[r];
    }
    double m = sum / repeats, squares = 0.0;
    for (int r = 0; r < repeats; r++)
        squares += (drops[r] - m) * (drops[r] - m);
    *mean = m;
    *std = sqrt(squares / repeats);
    return FM_OK;
}

int fm_importance_permutation_encoded(const fm_model_t *model, const double *x, size_t n,
                                      fm_importance_score_fn score, const void *ctx, int repeats,
                                      uint64_t seed, double *baseline, double *mean, double *std,
                                      fm_error_t *err) {
    if (n == 0) return fm_error_set(err, FM_EINVAL, "permutation importance: no rows");
    if (repeats < 1 || repeats > 100)
        return fm_error_set(err, FM_EINVAL, "repeats %d outside 1..100", repeats);
    fm_importance_predictor_t p;
    int rc = fm_importance_predictor_init(&p, model, n, err);
    if (rc) return rc;
    double *pred = malloc(n * p.width * sizeof *pred);
    size_t *perm = malloc(n * sizeof *perm);
    if (!pred || !perm) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) rc = fm_importance_predict(&p, x, n, pred, err);
    if (!rc) *baseline = score(ctx, pred, n);
    const fm_prep_t *prep = model->prep;
    for (size_t k = 0; !rc && k < prep->ncolumns; k++) {
        const fm_prep_column_t *c = &prep->columns[k];
        mean[k] = std[k] = NAN;
        if (c->width == 0) continue;
        rc = fm_importance_permutation_feature(&p, score, ctx, c, k, x, n, repeats, seed, *baseline,
                                               pred, perm, &mean[k], &std[k], err);
    }
    free(pred);
    free(perm);
    fm_importance_predictor_deinit(&p);
    return rc;
}
