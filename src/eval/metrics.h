/*
 * Model quality metrics. Definitions follow scikit-learn so numbers can be compared one to one:
 * tests/ref/test_metrics.py checks each against sklearn.metrics on the same vectors.
 *
 * Binary metrics take score[n] (higher = more likely positive; probabilities for log loss and
 * Brier) and label[n] in {0, 1}; weight[n] may be NULL (all ones). Ties in score are handled
 * exactly (AUC counts a tied positive/negative pair as one half; ROC points are taken only between
 * distinct scores). Metrics that are undefined for the input (AUC with one class, R-squared of a
 * constant target) return NaN. All functions are pure and thread-safe.
 */
#ifndef FM_EVAL_METRICS_H
#define FM_EVAL_METRICS_H

#include <cJSON.h>
#include <stddef.h>

/* Area under the ROC curve (sklearn roc_auc_score). */
double fm_metric_auc(const double *score, const int *label, const double *weight, size_t n);
/* Kolmogorov-Smirnov statistic: max over thresholds of TPR - FPR (in [0, 1]). */
double fm_metric_ks(const double *score, const int *label, const double *weight, size_t n);
/* Gini coefficient = 2 AUC - 1. */
double fm_metric_gini(const double *score, const int *label, const double *weight, size_t n);
/* Mean negative log-likelihood, probabilities clipped to [1e-15, 1 - 1e-15] (sklearn log_loss). */
double fm_metric_logloss(const double *prob, const int *label, const double *weight, size_t n);
/* Mean squared difference between probability and label (sklearn brier_score_loss). */
double fm_metric_brier(const double *prob, const int *label, const double *weight, size_t n);

/* Weighted counts at a threshold: predicted positive when score >= threshold. */
typedef struct fm_confusion {
    double tp, fp, tn, fn;
} fm_confusion_t;

fm_confusion_t fm_metric_confusion(const double *score, const int *label, const double *weight,
                                   size_t n, double threshold);
/* From a confusion matrix; 0 where the denominator is 0 (sklearn's zero_division=0). */
double fm_confusion_accuracy(const fm_confusion_t *c);
double fm_confusion_precision(const fm_confusion_t *c);
double fm_confusion_recall(const fm_confusion_t *c);
double fm_confusion_f1(const fm_confusion_t *c);

/* Regression (sklearn mean_squared_error squared=False, mean_absolute_error, r2_score). */
double fm_metric_rmse(const double *pred, const double *y, const double *weight, size_t n);
double fm_metric_mae(const double *pred, const double *y, const double *weight, size_t n);
double fm_metric_r2(const double *pred, const double *y, const double *weight, size_t n);

/*
 * Multiclass with prob[n * k] row-major and label[n] in [0, k): accuracy of the arg-max (first
 * maximum on ties) and log loss with each row renormalised after clipping (sklearn log_loss).
 */
double fm_metric_multiclass_accuracy(const double *prob, const int *label, const double *weight,
                                     size_t n, size_t k);
double fm_metric_multiclass_logloss(const double *prob, const int *label, const double *weight,
                                    size_t n, size_t k);

/*
 * The standard reports, as new JSON objects (caller owns, cJSON_Delete):
 * binary:     {"auc","ks","gini","logloss","brier","accuracy","precision","recall","f1",
 *              "threshold","confusion":{"tp","fp","tn","fn"},"rows"}
 * multiclass: {"accuracy","logloss","rows"}
 * regression: {"rmse","mae","r2","rows"}
 * Undefined values are JSON null.
 */
cJSON *fm_metrics_binary_report(const double *prob, const int *label, const double *weight,
                                size_t n, double threshold);
cJSON *fm_metrics_multiclass_report(const double *prob, const int *label, const double *weight,
                                    size_t n, size_t k);
cJSON *fm_metrics_regression_report(const double *pred, const double *y, const double *weight,
                                    size_t n);

#endif
