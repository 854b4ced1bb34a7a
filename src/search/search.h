/*
 * The search area: model selection. A search validates candidate models (a fixed specification,
 * or points of a grid / random search space) with a validation scheme on the training part of a
 * frame, ranks them on a metric in a leaderboard, refits the best on all training rows and
 * measures it once on a test share that nothing else has seen. Beside it: Weight of Evidence and
 * Information Value per feature (with an optional threshold that drops weak features before the
 * search) and permutation importance of the refit model.
 *
 * A search is described by JSON (the body of POST /api/jobs passes it through; `finmaas search`
 * builds the same JSON from its flags). Every key is optional except "target":
 *
 *   {"target": "Status",            column to predict
 *    "positive": "bad",             binary: the positive class (default: second in byte order)
 *    "task": null,                  "binary" | "multiclass" | "regression"; null: from the target
 *    "metric": "auc",               auc | accuracy | logloss (classification), rmse | r2
 *                                   (regression); default auc, accuracy, rmse by task
 *    "validation": {"scheme": "kfold",      "kfold" (stratified k-fold), "holdout" (stratified),
 *                                           "time" (out of time)
 *                   "folds": 5,             kfold: 2..50
 *                   "holdout": 0.2,         test share set aside first, [0, 0.9); 0: no test
 *                   "valid_fraction": 0.2,  holdout / time: validation share of the rest
 *                   "time_column": null,    time: ISO dates (YYYY-MM-DD[Thh:mm[:ss]]) or numbers
 *                   "seed": 42},
 *    "search": {"strategy": "random",       "random" | "grid"
 *               "budget": 20,               number of candidates, 1..10000
 *               "seed": 42,                 candidate sampling and every fm_train seed
 *               "selection": "best"},       "best": the best mean wins; "one_se": the simplest
 *                                           candidate (the task's linear model before mlp and
 *                                           gbt) whose mean is within one standard error
 *                                           (std / sqrt(folds)) of the best mean wins
 *    "space": {...},                        values to search (below); null: the default space
 *    "model": null,                         one fixed point instead of a space (same keys, each a
 *                                           single value); "space" and "model" exclude each other
 *    "drop": [], "pii": [],                 as fm_train's options
 *    "protected": [],                       protected attributes: left out of every fit's
 *                                           features; the refit stores their fairness (binary)
 *    "iv_threshold": null,                  binary: drop features whose IV is below this
 *    "importance_repeats": 3,               permutation importance repeats, 0..100 (0: none)
 *    "early_stopping": {"patience": 10, "valid_fraction": 0.2},   fm_train's, inside every fit
 *    "threads": 1}                          BLAS threads of every fit
 *
 * Space keys, each a non-empty array of values (numbers also as a range object for the random
 * strategy: {"min": 1e-4, "max": 1e-2, "log": true}; integers are drawn as integers):
 *   family ["logistic","mlp","gbt"] ("linear"/"softmax" for other tasks: "logistic" means the
 *   task's linear model), hidden [[32,16],[64]], activation ["relu","tanh","sigmoid"],
 *   optimizer ["adam","sgd","gd"], learning_rate, l2, batch, epochs (all families but gbt),
 *   max_depth, eta, rounds (gbt). A key that is absent takes the default space's list:
 *   family [logistic, mlp], hidden [[16],[32,16],[64,32]], activation [relu, tanh],
 *   optimizer [adam], learning_rate [0.0005, 0.001, 0.003], l2 [1e-4, 1e-3, 1e-2],
 *   batch [32, 128], epochs [200], max_depth [3, 4, 6], eta [0.03, 0.05, 0.1], rounds [100, 300].
 * Each family only varies the keys it uses, so the grid holds no duplicate candidates: its size
 * is the sum over families of the product of their keys' list lengths. When the grid holds no
 * more points than the budget (and no key is a range), both strategies take every point, in grid
 * order (families in their listed order, the last key varying fastest). Otherwise "grid" takes
 * budget points drawn at random (seeded) and kept in grid order, and "random" draws budget
 * distinct points: a family uniformly, then each of its keys uniformly from its list (ranges
 * uniformly, or log-uniformly with "log": true). Both are fixed at parse time.
 *
 * Rows: rows without a target value are left out. A test share ("holdout") is set aside first,
 * stratified by class (for "time": the latest rows), and never used for selection. The rest is
 * split by the scheme: stratified k-fold (each row validates in exactly one fold; each class's
 * count per fold is within one row of its ideal share), a stratified holdout of valid_fraction,
 * or out of time (rows sorted by the time column, the latest valid_fraction validates). Regression
 * targets are not stratified (a seeded shuffle). The time column is never a feature. Information
 * Value and the IV threshold use the training rows only, and leave out "drop" and "pii" columns
 * (an IV table shows category values, which a PII column must not reveal).
 *
 * Threads: a search runs on the calling thread; the spec and result are plain data that one
 * thread may hand to another. Every fit goes through fm_train, which sets the process-wide BLAS
 * thread count (fm_nn_set_threads) to "threads". Deterministic for given seeds and thread count.
 */
#ifndef FM_SEARCH_H
#define FM_SEARCH_H

#include "core/error.h"
#include "core/rng.h"
#include "data/data.h"
#include "model/model.h"

#include <cJSON.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

/* ---- The specification ------------------------------------------------------------------- */

typedef struct fm_search_spec fm_search_spec_t; /* opaque: the validated specification */

/*
 * Parses and validates a search specification. Every field is checked: an unknown key, a value of
 * the wrong type or out of range is FM_EINVAL with a message naming the field and the value
 * ("validation.folds: 1 is not in [2, 50]"; exit code 2 class). json is borrowed; *out is owned
 * by the caller (fm_search_spec_free). Checks that need the data (the target and time columns
 * exist, the metric fits the task) happen in fm_search_run.
 */
int fm_search_spec_parse(const cJSON *json, fm_search_spec_t **out, fm_error_t *err);
void fm_search_spec_free(fm_search_spec_t *spec);

/* The specification with every default filled in, as JSON (caller owns). Parsing it again gives
 * the same search. */
cJSON *fm_search_spec_to_json(const fm_search_spec_t *spec);

/* The target column's name (borrowed from spec). */
const char *fm_search_spec_target(const fm_search_spec_t *spec);

/* The number of candidates the search will try (the budget, or a smaller grid / one model). */
size_t fm_search_spec_candidates(const fm_search_spec_t *spec);

/* ---- Running a search -------------------------------------------------------------------- */

/*
 * Called synchronously on the searching thread with each progress event (borrowed; valid during
 * the call). Every event has "type" and "progress" (fraction of the work done, 0..1), plus
 * "fits_done" / "fits_total" (model fits done / planned, the refit included):
 *   {"type":"candidate_started","index":3,"params":{...}}
 *   {"type":"fold_done","index":3,"fold":1,"folds":5,"metric":0.84,"train_seconds":0.4}
 *   {"type":"candidate_done","index":3,"status":"ok","metric":"auc","mean":0.84,"std":0.01,
 *    "train_seconds":0.4,"predict_us_per_row":1.2}   (status "failed" with "error" instead)
 *   {"type":"features_done","features":20,"dropped":[...]}   (binary targets, before candidates)
 *   {"type":"refit_started","index":3,"params":{...},"rows":3563,"iterations":85}
 *   {"type":"done","best":3,"test_metrics":{...},"seconds":12.5}
 */
typedef void (*fm_search_event_fn)(const cJSON *event, void *ctx);

/* The outcome of a search. Plain data; free with fm_search_result_free. */
typedef struct fm_search_result {
    /* Every candidate, best first (failed ones last, in candidate order):
     * {"rank","index","params","status":"ok"|"failed","error" (failed),"metric","mean","std",
     *  "folds":[per-fold metric],"train_seconds" (mean per fit),"predict_us_per_row"
     *  (mean over folds, prediction on the validation rows including encoding),
     *  "best_iterations" (mean over folds of the epochs / boosting rounds early stopping kept),
     *  "selected"}.
     * std is the population standard deviation over folds (0 for one fold). */
    cJSON *leaderboard;
    long best;           /* candidate index of the winner, -1 when none succeeded */
    fm_model_t *model;   /* the winner refit on all training rows; NULL when none */
    cJSON *test_metrics; /* the refit model on the test rows (fm_metrics_*_report plus "metric"
                            and "value" for the search metric); JSON null when no test share */
    cJSON *validation;   /* the scheme as used: {"scheme","description","folds","holdout",
                            "valid_fraction","time_column","seed","metric","selection",
                            "rows":{"train","test","unused"}} */
    cJSON *features;     /* binary targets: fm_search_information_value's array, with
                            "dropped": true for features under the IV threshold; else [] */
    cJSON *importance;   /* fm_search_permutation_importance's object on the test rows (JSON
                            null when there is no test share or importance_repeats is 0) */
    double seconds;      /* wall time of the whole search */
} fm_search_result_t;

/*
 * Runs the search described by spec on frame. on_event (may be NULL) is called as described
 * above; cancel (may be NULL) is read between model fits: fm_train has no hook inside its epochs,
 * so a cancel takes effect when the fit in progress ends (one fold of one candidate, or the
 * refit), and the search then returns FM_ECANCELED.
 *
 * A candidate that fails (bad settings for the data, an unknown family such as "gbt" where
 * gradient-boosted trees are not built in, divergence) is recorded in the leaderboard with its
 * error and the search goes on. Ranking: the best metric mean first (ties: the lower candidate
 * index), failed candidates last; the winner (search.selection) has "selected": true.
 *
 * The refit: every fold's fit stops early on a share of its training rows (fm_train's early
 * stopping), so the folds have already chosen how long to train. The refit therefore learns from
 * all training rows, none held out, for the winner's mean best_iterations (epochs, or boosting
 * rounds for gbt); when the folds do not report it, or early_stopping.valid_fraction is 0, it
 * trains as the folds did. The refit model's info gets a "search" object: {"validation",
 * "metric","best","params","refit":{"rows","iterations","stopping"},"leaderboard",
 * "test_metrics","information_value","permutation_importance","spec","candidates","seconds"}.
 *
 * *out is set (caller frees with fm_search_result_free) on success, and also when the search
 * stopped after trying candidates: cancelled (FM_ECANCELED) or every candidate failed (FM_EDATA,
 * the message quoting the first failure), so that the leaderboard so far can be shown; then
 * model is NULL. On other errors (bad data for the spec: missing target or time column, a metric
 * that does not fit the task, too few rows for the folds; FM_EINVAL / FM_EDATA naming the thing)
 * *out is NULL.
 */
int fm_search_run(const fm_frame_t *frame, const fm_search_spec_t *spec,
                  fm_search_event_fn on_event, void *ctx, const atomic_int *cancel,
                  fm_search_result_t **out, fm_error_t *err);

void fm_search_result_free(fm_search_result_t *result);

/* Prints the leaderboard as a table (rank, candidate, family, key settings, metric mean and std,
 * train seconds, prediction us/row, status) and the test metrics. */
void fm_search_leaderboard_print(FILE *out, const fm_search_result_t *result);

/* Prints an Information Value table (feature, type, IV, strength, bins, dropped). */
void fm_search_iv_print(FILE *out, const cJSON *features);

/* ---- Validation splits ------------------------------------------------------------------- */

/* What fm_search_assign says about a row. Values >= 0 are the fold in which the row validates
 * (holdout and time schemes: 0). */
enum {
    FM_SEARCH_ROW_TRAIN = -1,  /* holdout / time: always a training row */
    FM_SEARCH_ROW_TEST = -2,   /* set aside as test */
    FM_SEARCH_ROW_UNUSED = -3, /* no target value */
};

/*
 * The split the search uses on frame: part[r] for each of frame->nrows rows (caller's array),
 * and the number of folds (1 for holdout and time). Errors as fm_search_run's for the data.
 */
int fm_search_assign(const fm_frame_t *frame, const fm_search_spec_t *spec, int32_t *part,
                     int *nfolds, fm_error_t *err);

/*
 * Stratified k-fold assignment: rows with labels[i] in [0, nclasses) get fold[i] in [0, k), rows
 * with a negative label get -1. Each class is shuffled on its own (rng) and dealt round-robin,
 * continuing from where the previous class ended, so every class's count per fold and every
 * fold's size are within one row of the ideal. labels NULL: one class.
 */
int fm_search_kfold(const int32_t *labels, size_t n, int nclasses, int k, fm_rng_t *rng,
                    int32_t *fold, fm_error_t *err);

/*
 * Parses a time cell: a number, or an ISO 8601 date "YYYY-MM-DD" optionally followed by
 * "Thh:mm", "Thh:mm:ss" (also with a space for 'T', fractional seconds and a trailing "Z") as
 * seconds since 1970-01-01 UTC. FM_EPARSE for anything else (a date with an impossible month or
 * day included).
 */
int fm_search_parse_time(const char *text, double *out);

/* ---- Feature selection ------------------------------------------------------------------- */

/*
 * Weight of Evidence and Information Value of every column of frame except the target and
 * skip[0..nskip), for a binary target (positive = the "bad" class: the event), over rows[0..nrows)
 * (NULL: all rows; rows without a target value are ignored). Numeric columns are binned at the
 * deciles of their non-missing values (edge k = the smallest value with at least k/10 of the
 * values at or below it, i.e. the inverted-CDF quantile; bins (e_{k-1}, e_k], the last open
 * above; repeated edges merged so no bin is empty); categorical columns by category; missing
 * values form their own bin. Per bin: WoE = ln(%good / %bad), %good = good_i / goods; a bin with
 * no good or no bad counts 0.5 in that cell. IV = sum (%good - %bad) * WoE.
 * *out: a new array (caller owns) sorted by IV, highest first, of
 *   {"feature","type","iv","strength","bins":[{"bin","count","good","bad","woe","iv"}]}
 * where bin is "(lo, hi]" / "(lo, inf)" / "(-inf, hi]" for numbers, the category, or "missing".
 * FM_EDATA when the target is not binary or a class has no rows.
 */
int fm_search_information_value(const fm_frame_t *frame, const char *target, const char *positive,
                                const size_t *rows, size_t nrows, const char *const *skip,
                                size_t nskip, cJSON **out, fm_error_t *err);

/* The usual strength band of an IV: "useless" (< 0.02), "weak" (< 0.1), "medium" (< 0.3),
 * "strong" (<= 0.5), "suspicious" (> 0.5). */
const char *fm_search_iv_strength(double iv);

/*
 * Permutation importance of model's input columns on rows[0..nrows) of frame (rows with a target
 * value in the model's target column): for each column, the drop in metric ("auc", "accuracy",
 * "logloss", "rmse", "r2"; a drop is always "worse": for logloss and rmse the increase) when that
 * column's values are shuffled among the rows, mean and population std over repeats, each repeat
 * with its own shuffle drawn from seed. *out (caller owns): {"metric","baseline","repeats","rows",
 * "features":[{"feature","mean","std"}]} with features sorted by mean drop, largest first.
 * FM_EINVAL for an unknown metric or one that does not fit the model's task, or repeats < 1.
 */
int fm_search_permutation_importance(const fm_model_t *model, const fm_frame_t *frame,
                                     const size_t *rows, size_t nrows, const char *metric,
                                     int repeats, uint64_t seed, cJSON **out, fm_error_t *err);

#endif
