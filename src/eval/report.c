/*
 * The standard metric reports as JSON objects, the shape the trainer stores with a model version
 * and the server returns from its evaluation endpoints. Keys are fixed by eval/metrics.h;
 * undefined values (NaN) become null through fm_json_add_number. The binary report sorts the
 * scores once for both AUC and KS.
 */
#include "core/json.h"
#include "eval/eval_internal.h"
#include "eval/metrics.h"

/* Adds each (key, value) pair in order; 0 when cJSON ran out of memory. */
static int add_numbers(cJSON *obj, const char *const *keys, const double *values, size_t count) {
    for (size_t i = 0; i < count; i++)
        if (!fm_json_add_number(obj, keys[i], values[i])) return 0;
    return 1;
}

/* obj, or NULL after freeing it when building it failed. */
static cJSON *finish(cJSON *obj, int ok) {
    if (ok) return obj;
    cJSON_Delete(obj);
    return NULL;
}

cJSON *fm_metrics_binary_report(const double *prob, const int *label, const double *weight,
                                size_t n, double threshold) {
    double auc, ks;
    fm_eval_roc_summary(prob, label, weight, n, &auc, &ks);
    fm_confusion_t c = fm_metric_confusion(prob, label, weight, n, threshold);

    static const char *const keys[] = {"auc",      "ks",        "gini",   "logloss", "brier",
                                       "accuracy", "precision", "recall", "f1",      "threshold"};
    const double values[] = {auc,
                             ks,
                             2.0 * auc - 1.0,
                             fm_metric_logloss(prob, label, weight, n),
                             fm_metric_brier(prob, label, weight, n),
                             fm_confusion_accuracy(&c),
                             fm_confusion_precision(&c),
                             fm_confusion_recall(&c),
                             fm_confusion_f1(&c),
                             threshold};
    static const char *const cell_keys[] = {"tp", "fp", "tn", "fn"};
    const double cells[] = {c.tp, c.fp, c.tn, c.fn};

    cJSON *report = cJSON_CreateObject();
    if (!report) return NULL;
    int ok = add_numbers(report, keys, values, sizeof values / sizeof values[0]);
    cJSON *confusion = ok ? cJSON_AddObjectToObject(report, "confusion") : NULL;
    ok = confusion && add_numbers(confusion, cell_keys, cells, 4) &&
         fm_json_add_number(report, "rows", (double)n);
    return finish(report, ok);
}

cJSON *fm_metrics_multiclass_report(const double *prob, const int *label, const double *weight,
                                    size_t n, size_t k) {
    static const char *const keys[] = {"accuracy", "logloss", "rows"};
    const double values[] = {fm_metric_multiclass_accuracy(prob, label, weight, n, k),
                             fm_metric_multiclass_logloss(prob, label, weight, n, k), (double)n};
    cJSON *report = cJSON_CreateObject();
    if (!report) return NULL;
    return finish(report, add_numbers(report, keys, values, 3));
}

cJSON *fm_metrics_regression_report(const double *pred, const double *y, const double *weight,
                                    size_t n) {
    static const char *const keys[] = {"rmse", "mae", "r2", "rows"};
    const double values[] = {fm_metric_rmse(pred, y, weight, n), fm_metric_mae(pred, y, weight, n),
                             fm_metric_r2(pred, y, weight, n), (double)n};
    cJSON *report = cJSON_CreateObject();
    if (!report) return NULL;
    return finish(report, add_numbers(report, keys, values, 4));
}
