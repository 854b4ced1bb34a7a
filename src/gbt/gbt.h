/*
 * The gbt area: gradient-boosted trees through libxgboost's C API (Debian's libxgboost-dev). This
 * area is the only code of finmaas that talks to XGBoost; everything else sees an opaque fm_gbt_t.
 *
 * Training (fm_gbt_train) boosts trees with the "hist" method on encoded feature rows (doubles,
 * row-major, as fm_prep produces them) with labels and optional sample weights, one objective per
 * task: binary:logistic (P(positive)), multi:softprob (class probabilities) or reg:squarederror.
 * With validation rows it evaluates the task's loss after every round (logloss, mlogloss, rmse,
 * sample-weighted as XGBoost computes them) and, with early stopping, keeps the trees of the best
 * round only. The same parameters, seed and thread count give the same booster, byte for byte.
 *
 * Storage: a booster is its own serialized bytes in XGBoost's JSON model format (portable across
 * XGBoost versions and readable by the xgboost Python package's Booster.load_model). Loading
 * (fm_gbt_load) trusts nothing: before XGBoost sees the bytes, the JSON is checked against the
 * structure XGBoost 1.x writes (objective, class and feature counts, every tree's arrays, child
 * links forming one tree, split features in range, finite values, no duplicate keys), because
 * XGBoost itself does not validate a model and could read out of bounds on a forged one.
 *
 * Prediction (fm_gbt_predict) runs on one thread per call, whatever the thread count of the
 * machine, so that N serving threads use N cores.
 *
 * Explanations: fm_gbt_contributions asks XGBoost for its TreeSHAP contributions; fm_gbt_shap
 * computes the same values for one row more than ten times faster, without allocating, from a
 * compact copy of the trees that loading and training build after the check.
 *
 * Thread-safety: a loaded fm_gbt_t is read-only; any number of threads may call fm_gbt_predict on
 * it at once (XGBoost keeps each thread's prediction buffers apart). Training is single-owner.
 */
#ifndef FM_GBT_H
#define FM_GBT_H

#include "core/error.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* Serialized boosters larger than this are refused (a depth-10, 1,000-round model of 10 classes
 * stays well below). */
#define FM_GBT_MAX_BYTES ((size_t)512 << 20)
/* Upper bounds accepted for training settings and stored trees. */
#define FM_GBT_MAX_ROUNDS    100000
#define FM_GBT_MAX_DEPTH     30
#define FM_GBT_MAX_CLASSES   1024
#define FM_GBT_MAX_TREE_SIZE (1 << 24)

typedef enum {
    FM_GBT_BINARY = 0,     /* binary:logistic; one output: P(label 1) */
    FM_GBT_MULTICLASS = 1, /* multi:softprob; nclasses outputs summing to 1 */
    FM_GBT_REGRESSION = 2, /* reg:squarederror; one output in the label's units */
} fm_gbt_objective_t;

/* "binary:logistic", "multi:softprob", "reg:squarederror". */
const char *fm_gbt_objective_name(fm_gbt_objective_t objective);

/* What a booster must be to stand in a given model: checked by fm_gbt_load. */
typedef struct fm_gbt_shape {
    fm_gbt_objective_t objective;
    size_t nclasses;  /* multiclass: 2..FM_GBT_MAX_CLASSES; otherwise ignored */
    size_t nfeatures; /* width of an encoded row, >= 1 */
} fm_gbt_shape_t;

typedef struct fm_gbt_params {
    fm_gbt_shape_t shape;
    int rounds;              /* boosting rounds, 1..FM_GBT_MAX_ROUNDS */
    int max_depth;           /* 1..FM_GBT_MAX_DEPTH */
    double eta;              /* learning rate, (0, 1] */
    double subsample;        /* row share per tree, (0, 1] */
    double colsample;        /* feature share per tree, (0, 1] */
    double min_child_weight; /* >= 0 */
    double lambda;           /* L2 on leaf weights, >= 0 */
    double alpha;            /* L1 on leaf weights, >= 0 */
    int early_stopping;      /* rounds without validation improvement before stopping; 0: off */
    double base_score;       /* the starting prediction; NaN: XGBoost's default (0.5) */
    uint64_t seed;           /* used modulo 2^31 */
    int threads;             /* training threads, >= 1 */
} fm_gbt_params_t;

/* Rows to learn from or validate on: x[n * nfeatures] row-major; label[n] holds 0/1 (binary),
 * the class index (multiclass) or the value (regression); weight[n] is NULL or finite >= 0. */
typedef struct fm_gbt_rows {
    const double *x;
    const double *label;
    const double *weight;
    size_t n;
} fm_gbt_rows_t;

/* Called after each round (1-based) with the validation loss (NaN without validation rows) and
 * the name of the loss ("logloss", "mlogloss", "rmse"). */
typedef void (*fm_gbt_round_fn)(void *context, int round, double valid_loss, const char *metric);

/* What training did. */
typedef struct fm_gbt_fit {
    int rounds_run;          /* rounds boosted before stopping */
    int best_round;          /* rounds kept in the booster (the best validation round with early
                                stopping, else rounds_run) */
    int stopped_early;       /* 1 when early stopping ended training before params->rounds */
    double best_loss;        /* validation loss at best_round; NaN without validation rows */
    const char *metric;      /* static: "logloss", "mlogloss" or "rmse" */
    double boosting_seconds; /* building XGBoost's matrices and boosting (what the xgboost
                                package's DMatrix + train do), without serializing the result */
} fm_gbt_fit_t;

/* What a booster holds, read from its own bytes (plain data). */
typedef struct fm_gbt_info {
    fm_gbt_shape_t shape;
    int rounds;        /* boosting rounds stored */
    size_t trees;      /* rounds x (classes for multiclass, else 1) */
    size_t leaves;     /* over all trees */
    int max_depth;     /* of the deepest tree (a single leaf has depth 0) */
    double base_score; /* XGBoost's global bias, before the link function */
    int version[3];    /* the XGBoost version that wrote the bytes */
    size_t nbytes;     /* serialized size */
} fm_gbt_info_t;

typedef struct fm_gbt fm_gbt_t;

/*
 * Trains a booster: train must hold at least one row; valid may be NULL or empty (no evaluation,
 * no early stopping). on_round may be NULL. *out (caller frees with fm_gbt_free) holds the trained
 * booster, set to predict on one thread, and its serialized bytes, which passed the same check as
 * fm_gbt_load applies (so finmaas never stores a booster it would refuse to load). fit may be
 * NULL. Errors: FM_EINVAL naming a setting out of range or a label that does not fit the
 * objective; XGBoost's own failures with its message.
 */
int fm_gbt_train(const fm_gbt_params_t *params, const fm_gbt_rows_t *train,
                 const fm_gbt_rows_t *valid, fm_gbt_round_fn on_round, void *context,
                 fm_gbt_t **out, fm_gbt_fit_t *fit, fm_error_t *err);

/*
 * Rebuilds a booster from len serialized bytes (XGBoost JSON), copying them, and checks that it
 * is what shape says (objective, classes, features). FM_EFORMAT naming the part (tree, node,
 * field) for anything malformed, inconsistent or outside the structure XGBoost writes; never a
 * crash. *out is owned by the caller (fm_gbt_free).
 */
int fm_gbt_load(const void *bytes, size_t len, const fm_gbt_shape_t *shape, fm_gbt_t **out,
                fm_error_t *err);

void fm_gbt_free(fm_gbt_t *gbt);

/* The serialized booster (borrowed; valid as long as gbt) and its length. */
const unsigned char *fm_gbt_bytes(const fm_gbt_t *gbt, size_t *len);

/* What the booster holds (see fm_gbt_info_t). */
const fm_gbt_info_t *fm_gbt_info(const fm_gbt_t *gbt);

/* Outputs per row: nclasses for multiclass, else 1. */
size_t fm_gbt_output_width(const fm_gbt_t *gbt);

/*
 * Predictions for n rows x[n * nfeatures] into out[n * width]: P(label 1) for binary, class
 * probabilities for multiclass, the value for regression, computed in XGBoost's single precision
 * on the calling thread alone. Fails only when XGBoost does (out of memory); then out holds NaN
 * and err XGBoost's message.
 */
int fm_gbt_predict(const fm_gbt_t *gbt, const double *x, size_t n, double *out, fm_error_t *err);

/*
 * TreeSHAP feature contributions (XGBoost's "pred_contribs") of n rows x[n * nfeatures], in
 * margin space, into out[n * width * (nfeatures + 1)]: per row, per output, nfeatures
 * contributions then the bias (the trees' expected margin over the training rows), which together
 * sum to that output's margin. Computed in XGBoost's single precision on the calling thread alone
 * (a DMatrix is built and freed per call). Fails only when XGBoost does (out of memory); then out
 * holds NaN and err XGBoost's message.
 */
int fm_gbt_contributions(const fm_gbt_t *gbt, const double *x, size_t n, double *out,
                         fm_error_t *err);

/*
 * Exact TreeSHAP feature contributions of one row x[nfeatures] into phi[width * (nfeatures + 1)],
 * in the layout, space and value function of fm_gbt_contributions (per output: nfeatures
 * contributions, then the bias, the base margin plus the trees' expected margin; each output's
 * values sum to its margin), but computed without XGBoost, in double precision, from a compact
 * copy of the trees made at load: thresholds in single precision compared against float(x) as
 * XGBoost compares, NaN following each split's default direction, infinite values compared as
 * values. No allocation; any number of threads may call it on one booster. It differs from
 * fm_gbt_contributions only by XGBoost's single-precision rounding (a few 1e-7 relative). A
 * booster holding a tree deeper than FM_GBT_MAX_DEPTH (never trained by finmaas) is explained
 * through fm_gbt_contributions, with its errors; otherwise it cannot fail.
 */
int fm_gbt_shap(const fm_gbt_t *gbt, const double *x, double *phi, fm_error_t *err);

/*
 * The margins of n rows x[n * nfeatures] into out[n * width]: the value before the link function
 * (log-odds of label 1 for binary, each class's score before the softmax for multiclass, the value
 * for regression), on the calling thread alone. Errors as fm_gbt_predict.
 */
int fm_gbt_predict_margin(const fm_gbt_t *gbt, const double *x, size_t n, double *out,
                          fm_error_t *err);

/* A JSON object describing the booster (library, format, objective, rounds, trees, leaves, depth,
 * features, classes, base score, bytes); caller owns. NULL on allocation failure. */
cJSON *fm_gbt_describe(const fm_gbt_t *gbt);

#endif
