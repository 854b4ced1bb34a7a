/*
 * Internals of the importance area, shared by its files and by the test tool that exposes them to
 * the reference script (tests/tools/importance_compute.c): the labelled row sample, the metric,
 * the seeded permutations, the grids, and the two computations over encoded rows.
 *
 * Randomness: the row sample draws from a generator seeded with the options' seed; the
 * permutations of prep column k draw from their own generator (fm_importance_permutation_rng), so
 * a feature's importance does not depend on which other features the model has.
 */
#ifndef FM_IMPORTANCE_INTERNAL_H
#define FM_IMPORTANCE_INTERNAL_H

#include "importance/importance.h"

#include "core/rng.h"

/* Rows predicted per call of fm_model_predict_encoded. */
#define FM_IMPORTANCE_CHUNK_ROWS 4096

/* The rows used and their truths. Plain struct; owns its arrays (fm_importance_sample_deinit). */
typedef struct fm_importance_sample {
    size_t n;       /* rows used */
    size_t *rows;   /* frame row indices, in the order they were given */
    int *label;     /* classification: class index into model->classes; NULL for regression */
    double *value;  /* regression: target value; NULL for classification */
    size_t missing; /* given rows left out because their target is missing */
} fm_importance_sample_t;

/*
 * Reads the target of rows[0..nrows) (NULL: all frame rows) and keeps those that have one; when
 * more than max_rows remain, keeps a sample of max_rows of them drawn without replacement with a
 * generator seeded with seed (a partial Fisher-Yates shuffle of their positions, then sorted, so
 * the rows keep the order in which they were given). FM_EDATA naming the column when the target
 * column is missing, no row has a target, a value is not one of the model's classes or not a
 * number (regression), or a binary target has one class only; FM_EINVAL for a row index outside
 * the frame.
 */
int fm_importance_sample_rows(const fm_model_t *model, const fm_frame_t *frame, const size_t *rows,
                              size_t nrows, size_t max_rows, uint64_t seed,
                              fm_importance_sample_t *out, fm_error_t *err);
void fm_importance_sample_deinit(fm_importance_sample_t *s);

/* "auc", "accuracy" or "r2" for the model's task. */
const char *fm_importance_metric_name(const fm_model_t *model);

/* The metric of predictions pred[s->n * width] against the sample's truths (NaN when undefined). */
double fm_importance_score(const fm_model_t *model, const fm_importance_sample_t *s,
                           const double *pred);

/* The generator whose successive draws give prep column `column`'s permutations for seed. */
void fm_importance_permutation_rng(fm_rng_t *rng, uint64_t seed, size_t column);
/* The next permutation of 0..n-1 from rng: the identity, shuffled (Fisher-Yates). */
void fm_importance_permutation_next(fm_rng_t *rng, size_t *perm, size_t n);

/*
 * The grid of numeric prep column c over the sample's rows of frame column fc, in raw units:
 * the sorted distinct non-missing values when there are at most max_points of them, else
 * max_points values evenly spaced between the 5th and 95th percentiles (linear interpolation,
 * NumPy's default; endpoints exact as numpy.linspace). *out (caller frees) holds *count values; 0
 * when every value is missing. A text frame column is read as numbers (FM_EDATA naming column and
 * value when one is not).
 */
int fm_importance_numeric_grid(const fm_column_t *fc, const fm_importance_sample_t *s,
                               size_t max_points, double **out, size_t *count, fm_error_t *err);

/* Prediction state shared by the computations: one workspace, one row buffer. */
typedef struct fm_importance_predictor {
    const fm_model_t *model;
    fm_model_workspace_t *ws;
    size_t chunk;  /* rows per prediction call */
    size_t width;  /* outputs per row */
    double *rows;  /* chunk * nfeatures: encoded rows being changed */
    double *preds; /* chunk * width */
} fm_importance_predictor_t;

/* Sizes p for predicting up to n rows at a time (at most FM_IMPORTANCE_CHUNK_ROWS per chunk):
 * the model's workspace (FM_ESTATE when the model is not ready) and the buffers. Free with
 * fm_importance_predictor_deinit, which is a no-op on a zeroed p. */
int fm_importance_predictor_init(fm_importance_predictor_t *p, const fm_model_t *model, size_t n,
                                 fm_error_t *err);
void fm_importance_predictor_deinit(fm_importance_predictor_t *p);
/* Predicts n rows at x into out[n * width] (chunk rows at most per call of the model). */
int fm_importance_predict(fm_importance_predictor_t *p, const double *x, size_t n, double *out,
                          fm_error_t *err);

/*
 * Permutation importance of prep column c (index column) on the encoded sample x[s->n *
 * nfeatures] whose metric is baseline: for each of repeats permutations drawn from
 * fm_importance_permutation_rng(seed, column), baseline minus the metric with c's encoded block
 * shuffled across the rows. *mean and *std (population, ddof 0) over the repeats. Buffers from
 * the caller: pred[s->n * width], perm[s->n].
 */
int fm_importance_permutation_feature(fm_importance_predictor_t *p, fm_importance_score_fn score,
                                      const void *ctx, const fm_prep_column_t *c, size_t column,
                                      const double *x, size_t n, int repeats, uint64_t seed,
                                      double baseline, double *pred, size_t *perm, double *mean,
                                      double *std, fm_error_t *err);

/*
 * Partial dependence and ICE of prep column c on the encoded sample x[n * nfeatures]:
 * blocks[g * c->width ..] is c's encoded block for grid point g (ngrid points); average[g * width
 * + j] gets the mean prediction j over the rows at grid point g, ice[(i * ngrid + g) * width + j]
 * row i's prediction for the first nice rows.
 */
int fm_importance_partial_feature(fm_importance_predictor_t *p, const fm_prep_column_t *c,
                                  const double *x, size_t n, const double *blocks, size_t ngrid,
                                  size_t nice, double *average, double *ice, fm_error_t *err);

#endif
