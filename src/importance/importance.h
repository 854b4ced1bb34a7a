/*
 * Global explanations of a model on labelled data: permutation importance, partial dependence and
 * ICE curves per raw feature.
 *
 * Rows: at most options->max_rows of the given rows (a seeded sample without replacement when
 * there are more), those whose target is present. Everything is computed on encoded rows: the
 * rows are encoded once, and a raw feature's change is applied to its encoded block
 * (prep column offset .. offset + width), which equals changing the raw value and encoding again
 * because encoding is per column.
 *
 * Permutation importance (as scikit-learn's permutation_importance): the metric on the rows as
 * they are, minus the metric after shuffling one raw feature's values across the rows (its whole
 * encoded block moves together), repeated options->repeats times with seeded permutations; mean
 * and standard deviation (population, ddof 0, as scikit-learn) over the repeats. Metric: ROC AUC
 * of P(positive) for binary, accuracy for multiclass, R^2 for regression (higher is better, so
 * importance > 0 means the model relies on the feature).
 *
 * Partial dependence and ICE (as scikit-learn's partial_dependence with kind "both", method
 * "brute"): for each grid value v of a raw feature, every row's feature is set to v and the model
 * predicts; the ICE curve of a row is its predictions over the grid, the partial dependence is
 * their mean. Predictions are P(positive) for binary, the value for regression, and for multiclass
 * the probability of each class. Grid: a numeric feature's distinct values when there are at most
 * options->grid of them, else options->grid points evenly spaced between its 5th and 95th
 * percentiles (scikit-learn's default percentiles) in raw units; a categorical feature's training
 * categories (the preprocessing's) in their encoded order. ICE curves are kept for the first
 * options->ice_rows rows of the sample.
 *
 * Thread-safety: pure computation on the caller's model and frame; any number of calls at once.
 */
#ifndef FM_IMPORTANCE_H
#define FM_IMPORTANCE_H

#include "core/error.h"
#include "data/data.h"
#include "model/model.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fm_importance_options {
    int repeats;     /* permutation repeats, 1..100; default 5 */
    size_t grid;     /* partial dependence points per numeric feature, 2..200; default 20 */
    size_t ice_rows; /* ICE curves kept per feature, 0..1000; default 20 */
    size_t max_rows; /* rows used at most, >= 1; default 2000 */
    uint64_t seed;   /* default 42 */
} fm_importance_options_t;

void fm_importance_options_defaults(fm_importance_options_t *o);

/*
 * Computes the global explanations of model on rows[0..nrows) of frame (NULL: all rows); the frame
 * holds the model's input columns and its target column (matched by name). *out (caller owns) is
 *   {"rows": used, "metric": "auc" | "accuracy" | "r2", "score": metric on the rows as they are,
 *    "repeats", "seed",
 *    "permutation_importance": [{"feature", "mean", "std"}, ...] in prep column order,
 *    "partial_dependence": [{"feature", "kind": "numeric" | "categorical",
 *                            "grid": [numbers or category strings],
 *                            "average": [per grid point: a number, or for multiclass an array of
 *                                        class probabilities],
 *                            "ice": [[per kept row: per grid point, as "average"], ...]}, ...]}
 * Features of width 0 (PII, dropped) are left out. Errors: FM_EINVAL for options out of range;
 * FM_EDATA when the target column is missing or no row has a target, a binary target whose rows
 * are all one class (AUC undefined); encoding errors naming column and value.
 */
int fm_importance_compute(const fm_model_t *model, const fm_frame_t *frame, const size_t *rows,
                          size_t nrows, const fm_importance_options_t *options, cJSON **out,
                          fm_error_t *err);

/* A metric of n rows' predictions pred[n * width] (predict layout), higher is better; ctx is the
 * caller's (labels, which metric). */
typedef double (*fm_importance_score_fn)(const void *ctx, const double *pred, size_t n);

/*
 * Permutation importance on n already-encoded rows x[n * nfeatures] with the caller's metric, for
 * callers that hold their own labels and metrics (the model search's leaderboard): baseline
 * receives score on the rows as they are; for each prep column k, mean[k] and std[k] (population)
 * of baseline minus the score after shuffling that column's encoded block, over repeats (1..100)
 * seeded shuffles, the same shuffles fm_importance_compute draws for the same seed and rows.
 * Columns of width 0 get NaN. Errors: FM_EINVAL for repeats out of range or n = 0, the model's
 * prediction failures.
 */
int fm_importance_permutation_encoded(const fm_model_t *model, const double *x, size_t n,
                                      fm_importance_score_fn score, const void *ctx, int repeats,
                                      uint64_t seed, double *baseline, double *mean, double *std,
                                      fm_error_t *err);

#endif
