/*
 * The train area: from a frame of raw data to a fitted, described model.
 *
 * fm_train() picks the task (binary, multiclass, regression) and the class labels from the target
 * column, splits off a stratified validation set, fits preprocessing on the training rows only,
 * builds the network for the model family, and runs the optimiser for the requested epochs with
 * early stopping on validation loss (restoring the best weights). It records the settings, the
 * per-epoch history, validation metrics and a fingerprint of the data in the model's description.
 * Results are deterministic for a given seed and BLAS thread count.
 */
#ifndef FM_TRAIN_H
#define FM_TRAIN_H

#include "data/data.h"
#include "data/prep.h"
#include "explain/explain.h"
#include "fairness/fairness.h"
#include "importance/importance.h"
#include "model/model.h"
#include "nn/nn.h"

#include <stdint.h>
#include <stdio.h>

typedef enum {
    FM_CLASS_WEIGHT_NONE = 0,
    FM_CLASS_WEIGHT_BALANCED = 1, /* w_k = n / (K n_k), as scikit-learn's "balanced" */
} fm_class_weight_t;

typedef struct fm_train_options {
    const char *target;   /* required: the target column */
    const char *positive; /* binary: the positive class; NULL: the second in byte order */
    int task;             /* an fm_task_t, or -1 to infer from the target column */
    const char *family;   /* "logistic", "linear", "softmax", "mlp"; NULL: by task */
    int hidden[FM_NET_MAX_LAYERS - 1]; /* mlp hidden layer widths */
    int nhidden;
    fm_activation_t activation; /* mlp hidden activation */
    fm_optimizer_config_t optimizer;
    int epochs;            /* maximum number of passes over the training rows */
    int batch;             /* mini-batch rows (ignored by gd: full batch) */
    int patience;          /* epochs without validation improvement before stopping */
    double l2;             /* L2 penalty coefficient: loss + (l2/2) sum W^2 */
    double valid_fraction; /* share of rows held out for early stopping, in [0, 0.9] */
    uint64_t seed;
    int threads; /* BLAS threads */
    fm_class_weight_t class_weight;
    const char *weight_column; /* optional numeric column of sample weights */
    const char *const *drop;   /* columns to leave out */
    size_t ndrop;
    const char *const *pii; /* feature columns holding personal data (marked in the model) */
    size_t npii;
    fm_prep_options_t prep;
    FILE *progress; /* progress bar / lines; NULL for silence */
    /* The rows to learn from: rows[0..nrows) of the frame (a cross-validation fold), NULL for
     * all. Class labels still come from the whole target column, so every fold's model knows
     * every class. Rows outside are never seen (preprocessing is fitted on the training rows). */
    const size_t *rows;
    size_t nrows;
    /* Gradient-boosted trees (family "gbt", libxgboost). */
    struct {
        int rounds;              /* boosting rounds (trees per class); default 300 */
        int max_depth;           /* default 4 */
        double eta;              /* learning rate; default 0.05 */
        double subsample;        /* row share per tree, (0, 1]; default 0.8 */
        double colsample;        /* feature share per tree, (0, 1]; default 0.8 */
        double min_child_weight; /* default 1 */
        double lambda;           /* L2 on leaf weights; default 1 */
        double alpha;            /* L1 on leaf weights; default 0 */
        int early_stopping;      /* rounds without validation improvement; 0: off (default 30) */
    } gbt;
    /* Protected attributes: columns left out of the features (like drop) but kept for fairness.
     * Names, references and bands are borrowed. */
    const fm_fairness_attribute_t *protected;
    size_t nprotected;
    /* Binary targets with protected attributes: weight the training rows with AIF360's
     * reweighing over the joint protected groups (multiplied into any other weight). With
     * governance on, a model without reweighing is fitted first and its fairness kept as
     * "before_mitigation". */
    int reweigh;
    /* 1: after fitting, store what governance needs in the model's description (train/govern.c):
     * the explanation baselines ("explain"), global explanations on the validation rows (the
     * training rows without validation) ("global_explanations", unless no_global), and for binary
     * models with protected attributes their fairness on the same rows ("fairness"). 0 (the
     * default) for fits that are only measured, such as a search's folds. */
    int governance;
    int no_global;
    fm_explain_fit_options_t explain;
    fm_importance_options_t importance;
} fm_train_options_t;

/* Fills options with the defaults (Adam as Keras, batch 32, 200 epochs, patience 10, l2 1e-4,
 * validation fraction 0.2, seed 42, one thread, hidden 32,16 with relu, all rows; gbt as
 * documented above; no protected attributes, governance off, explanation and importance
 * settings at their own defaults). */
void fm_train_options_defaults(fm_train_options_t *options);

/* The family fm_train fits when options.family is NULL, the linear model of the task:
 * "logistic" (binary), "softmax" (multiclass) or "linear" (regression); "mlp" for a value outside
 * fm_task_t. A static string. */
const char *fm_train_default_family(fm_task_t task);

/*
 * Trains a model on frame. *out is owned by the caller (fm_model_free). Errors (FM_EINVAL /
 * FM_EDATA) name the column or setting: missing target or weight column, unknown dropped column,
 * a PII column that is the target or not a feature column, a target with one class, an unknown
 * positive class, a family that does not fit the task, no feature columns, too few rows to split,
 * training that diverges (non-finite loss).
 */
int fm_train(const fm_frame_t *frame, const fm_train_options_t *options, fm_model_t **out,
             fm_error_t *err);

/*
 * Splits row indices 0..n-1 into a first and a second part with the second holding about
 * `fraction` of the rows, stratified by labels[i] in [0, nclasses) (labels NULL: not stratified;
 * rows with label < 0 are left out). Each class keeps at least one row in each part when it has
 * two or more rows. Index lists are new arrays (caller frees) in increasing order.
 */
int fm_split_stratified(const int32_t *labels, size_t n, int nclasses, double fraction,
                        fm_rng_t *rng, size_t **first, size_t *nfirst, size_t **second,
                        size_t *nsecond, fm_error_t *err);

#endif
