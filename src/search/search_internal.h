/*
 * Internal to the search area: the parsed specification, candidate points, the target, row-subset
 * views of a frame and the search metrics. Nothing here is used outside src/search.
 */
#ifndef FM_SEARCH_INTERNAL_H
#define FM_SEARCH_INTERNAL_H

#include "nn/nn.h"
#include "search/search.h"
#include "fairness/fairness.h"
#include "train/target.h"
#include "train/train.h"

#include <stddef.h>
#include <stdint.h>

#define SEARCH_MAX_VALUES  64 /* values per space key */
#define SEARCH_MAX_BUDGET  10000
#define SEARCH_MAX_FOLDS   50
#define SEARCH_FAMILY_SIZE 16

/* The space keys, in the order a grid varies them (the last fastest). */
typedef enum {
    KEY_FAMILY = 0,
    KEY_HIDDEN,
    KEY_ACTIVATION,
    KEY_OPTIMIZER,
    KEY_LEARNING_RATE,
    KEY_L2,
    KEY_BATCH,
    KEY_EPOCHS,
    KEY_MAX_DEPTH,
    KEY_ETA,
    KEY_ROUNDS,
    KEY_COUNT
} search_key_t;

typedef enum { SCHEME_KFOLD = 0, SCHEME_HOLDOUT, SCHEME_TIME } search_scheme_t;
typedef enum { STRATEGY_RANDOM = 0, STRATEGY_GRID } search_strategy_t;
typedef enum { SELECTION_BEST = 0, SELECTION_ONE_SE } search_selection_t;
typedef enum {
    METRIC_DEFAULT = -1,
    METRIC_AUC = 0,
    METRIC_ACCURACY,
    METRIC_LOGLOSS,
    METRIC_RMSE,
    METRIC_R2
} search_metric_t;

/* One candidate: a full set of settings. Only the keys of its family matter. */
typedef struct search_point {
    char family[SEARCH_FAMILY_SIZE];
    int hidden[FM_NET_MAX_LAYERS - 1];
    int nhidden;
    fm_activation_t activation;
    fm_optimizer_kind_t optimizer;
    double learning_rate, l2;
    int batch, epochs;
    int max_depth, rounds;
    double eta;
} search_point_t;

/* The values one space key takes: a list, or (numbers, random strategy) a range. */
typedef struct search_dim {
    size_t count;
    int is_range;
    double min, max;
    int log;
    double number[SEARCH_MAX_VALUES];                     /* numeric keys */
    int code[SEARCH_MAX_VALUES];                          /* activation, optimizer */
    char family[SEARCH_MAX_VALUES][SEARCH_FAMILY_SIZE];   /* family */
    int hidden[SEARCH_MAX_VALUES][FM_NET_MAX_LAYERS - 1]; /* hidden */
    int nhidden[SEARCH_MAX_VALUES];
} search_dim_t;

struct fm_search_spec {
    char *target;
    char *positive; /* NULL: default */
    int task;       /* fm_task_t or -1 */
    search_metric_t metric;
    search_scheme_t scheme;
    int folds;
    double holdout;
    double valid_fraction;
    char *time_column; /* NULL unless scheme time */
    uint64_t validation_seed;
    search_strategy_t strategy;
    size_t budget;
    uint64_t search_seed;
    search_selection_t selection;
    int fixed_model;    /* 1: "model" was given */
    search_dim_t *dims; /* KEY_COUNT entries (the space, or the fixed model's values) */
    search_point_t *candidates;
    size_t ncandidates;
    char **drop, **pii;
    size_t ndrop, npii;
    char **protected; /* protected attributes: out of every fit's features; the refit measures
                         their fairness (binary targets) */
    size_t nprotected;
    fm_fairness_attribute_t *protected_attrs; /* one per name, default banding */
    int has_iv_threshold;
    double iv_threshold;
    int importance_repeats;
    int patience;
    double early_valid_fraction;
    int threads;
};

/* The keys a family varies: 1 when key matters to family. */
int search_key_used(const char *family, search_key_t key);
/* The name of a key as in the JSON ("learning_rate"). */
const char *search_key_name(search_key_t key);
/* A point's settings as JSON (only its family's keys); caller owns. family_name replaces the
 * point's family in the output when not NULL (the task's linear model). */
cJSON *search_point_to_json(const search_point_t *p, const char *family_name);
/* Fills fm_train options from a point (family resolved for the task; other options untouched). */
void search_point_to_options(const search_point_t *p, fm_task_t task, fm_train_options_t *o);
/* The family a point trains as for task: "logistic"/"linear"/"softmax" become the task's. */
const char *search_point_family(const search_point_t *p, fm_task_t task);

/* The metric's name ("auc"), its parse, whether higher is better, and whether it fits a task. */
const char *search_metric_name(search_metric_t metric);
int search_metric_parse(const char *text, search_metric_t *out);
int search_metric_higher_is_better(search_metric_t metric);
int search_metric_fits(search_metric_t metric, fm_task_t task);
search_metric_t search_metric_default(fm_task_t task);

/* ---- The target, read as fm_train reads it (train/target.h) ------------------------------ */

/* Resolves the target column the specification names (task -1: infer) with fm_target_resolve.
 * Errors name the column; a positive class for a regression target is refused. Free with
 * fm_target_deinit. */
int search_target_resolve(const fm_frame_t *frame, const char *name, int task, const char *positive,
                          fm_target_t *out, fm_error_t *err);

/* ---- Splits ------------------------------------------------------------------------------ */

/* How the search uses the rows of a frame. */
typedef struct search_split {
    int32_t *part; /* per frame row: a fold >= 0 or FM_SEARCH_ROW_* (search.h) */
    int nfolds;
    size_t *test_rows; /* increasing */
    size_t ntest;
    size_t *train_rows; /* every row with a target that is not a test row: the refit's rows */
    size_t ntrain;
    size_t unused; /* rows without a target */
} search_split_t;

/* Splits frame's rows as spec says, given the resolved target. Errors name the column, or say
 * how many rows the split lacked. */
int search_split_make(const fm_frame_t *frame, const fm_search_spec_t *spec,
                      const fm_target_t *target, search_split_t *out, fm_error_t *err);
void search_split_deinit(search_split_t *split);

/* ---- Row views and evaluation ------------------------------------------------------------ */

/*
 * A frame holding rows[0..n) of src: every column's values or codes are copied, names, source
 * and categorical dictionaries are borrowed from src (which must outlive the view). Free with
 * search_view_free, never fm_frame_free.
 */
int search_view_make(const fm_frame_t *src, const size_t *rows, size_t n, fm_frame_t *view,
                     fm_error_t *err);
void search_view_free(fm_frame_t *view);

/*
 * Labels of the view's rows in model's class order: out[i] for rows[0..n) of the frame's target
 * (classification), mapped by class name. FM_EDATA when the model lacks one of the classes.
 */
int search_labels_for_model(const fm_model_t *model, const fm_target_t *target, const size_t *rows,
                            size_t n, int *out, fm_error_t *err);

/* The metric of predictions pred[n * width] (fm_model_predict_frame's layout) against labels
 * (classification) or values (regression). NaN when undefined. */
double search_metric_value(search_metric_t metric, const fm_model_t *model, const double *pred,
                           const int *label, const double *value, size_t n);

/* The full quality report of a model on predictions (fm_metrics_*_report) plus "metric" and
 * "value". Caller owns. */
cJSON *search_metric_report(search_metric_t metric, const fm_model_t *model, const double *pred,
                            const int *label, const double *value, size_t n);

/* Permutation importance on a prepared view (see fm_search_permutation_importance). */
int search_importance(const fm_model_t *model, fm_frame_t *view, const int *label,
                      const double *value, search_metric_t metric, int repeats, uint64_t seed,
                      cJSON **out, fm_error_t *err);

#endif
