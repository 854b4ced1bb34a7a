/*
 * Regression metrics: root mean squared error, mean absolute error and the coefficient of
 * determination, weighted as sklearn's mean_squared_error(squared=False), mean_absolute_error and
 * r2_score are. One or two passes with compensated sums; no allocation.
 *
 * R-squared is NaN for a constant target (every y equal, or a zero weighted spread) where sklearn
 * returns 1.0 or 0.0 by convention: a score that says nothing about the model should not look
 * like a perfect or a useless one in a report.
 */
#include "eval/eval_internal.h"
#include "eval/metrics.h"

#include <math.h>

double fm_metric_rmse(const double *pred, const double *y, const double *weight, size_t n) {
    fm_eval_sum_t err = {0, 0}, total = {0, 0};
    for (size_t i = 0; i < n; i++) {
        double d = y[i] - pred[i], w = weight ? weight[i] : 1.0;
        fm_eval_sum_add(&err, w * d * d);
        fm_eval_sum_add(&total, w);
    }
    double w = fm_eval_sum_value(&total);
    return w == 0.0 ? NAN : sqrt(fm_eval_sum_value(&err) / w);
}

double fm_metric_mae(const double *pred, const double *y, const double *weight, size_t n) {
    fm_eval_sum_t err = {0, 0}, total = {0, 0};
    for (size_t i = 0; i < n; i++) {
        double w = weight ? weight[i] : 1.0;
        fm_eval_sum_add(&err, w * fabs(y[i] - pred[i]));
        fm_eval_sum_add(&total, w);
    }
    double w = fm_eval_sum_value(&total);
    return w == 0.0 ? NAN : fm_eval_sum_value(&err) / w;
}

double fm_metric_r2(const double *pred, const double *y, const double *weight, size_t n) {
    /* First pass: the weighted mean of y and whether y is constant, so a constant target is NaN
     * even when rounding in the mean would leave a residual spread of 1e-30. */
    fm_eval_sum_t wy = {0, 0}, total = {0, 0};
    int constant = 1;
    for (size_t i = 0; i < n; i++) {
        double w = weight ? weight[i] : 1.0;
        fm_eval_sum_add(&wy, w * y[i]);
        fm_eval_sum_add(&total, w);
        constant &= y[i] == y[0];
    }
    double w_total = fm_eval_sum_value(&total);
    if (n == 0 || constant || w_total == 0.0) return NAN;
    double mean = fm_eval_sum_value(&wy) / w_total;

    fm_eval_sum_t ss_res = {0, 0}, ss_tot = {0, 0};
    for (size_t i = 0; i < n; i++) {
        double w = weight ? weight[i] : 1.0, r = y[i] - pred[i], t = y[i] - mean;
        fm_eval_sum_add(&ss_res, w * r * r);
        fm_eval_sum_add(&ss_tot, w * t * t);
    }
    double den = fm_eval_sum_value(&ss_tot);
    return den == 0.0 ? NAN : 1.0 - fm_eval_sum_value(&ss_res) / den;
}
