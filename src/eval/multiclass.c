/*
 * Multiclass metrics over a row-major probability matrix prob[n * k]: accuracy of the arg-max
 * prediction and log loss, as sklearn's accuracy_score(argmax) and log_loss compute them.
 *
 * A label outside [0, k), k == 0 or a zero total weight make the result NaN.
 */
#include "eval/eval_internal.h"
#include "eval/metrics.h"

#include <math.h>
#include <stdint.h>

/* Index of the largest entry, the first one on ties; a NaN counts as the largest, as np.argmax
 * has it, so a broken row is never silently scored as its first class. */
static size_t row_argmax(const double *row, size_t k) {
    size_t best = 0;
    if (isnan(row[0])) return 0;
    for (size_t j = 1; j < k; j++) {
        if (isnan(row[j])) return j;
        if (row[j] > row[best]) best = j;
    }
    return best;
}

/* True when n rows of k entries fit in memory addressing and labels are in range. */
static int shape_ok(const int *label, size_t n, size_t k) {
    if (k == 0 || n > SIZE_MAX / k) return 0;
    for (size_t i = 0; i < n; i++)
        if (label[i] < 0 || (size_t)label[i] >= k) return 0;
    return 1;
}

double fm_metric_multiclass_accuracy(const double *prob, const int *label, const double *weight,
                                     size_t n, size_t k) {
    if (!shape_ok(label, n, k)) return NAN;
    fm_eval_sum_t right = {0, 0}, total = {0, 0};
    for (size_t i = 0; i < n; i++) {
        double w = weight ? weight[i] : 1.0;
        if (row_argmax(prob + i * k, k) == (size_t)label[i]) fm_eval_sum_add(&right, w);
        fm_eval_sum_add(&total, w);
    }
    double w = fm_eval_sum_value(&total);
    return w == 0.0 ? NAN : fm_eval_sum_value(&right) / w;
}

double fm_metric_multiclass_logloss(const double *prob, const int *label, const double *weight,
                                    size_t n, size_t k) {
    if (!shape_ok(label, n, k)) return NAN;
    const double eps = FM_EVAL_LOGLOSS_EPS, hi = 1.0 - eps;
    fm_eval_sum_t loss = {0, 0}, total = {0, 0};
    for (size_t i = 0; i < n; i++) {
        const double *row = prob + i * k;
        /* Clip every entry to [eps, 1 - eps] (NaN stays NaN), then renormalise the row: only the
         * true class's share enters the loss. */
        double sum = 0.0;
        for (size_t j = 0; j < k; j++)
            sum += row[j] < eps ? eps : (row[j] > hi ? hi : row[j]);
        double p = row[label[i]];
        p = p < eps ? eps : (p > hi ? hi : p);
        double w = weight ? weight[i] : 1.0;
        fm_eval_sum_add(&loss, -w * log(p / sum));
        fm_eval_sum_add(&total, w);
    }
    double w = fm_eval_sum_value(&total);
    return w == 0.0 ? NAN : fm_eval_sum_value(&loss) / w;
}
