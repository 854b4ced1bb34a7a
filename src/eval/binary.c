/*
 * Binary classification metrics that need no ranking: log loss, Brier score and the confusion
 * matrix at a threshold with the rates derived from it (accuracy, precision, recall, F1).
 *
 * Each is one pass over the rows with compensated sums, so a mean over millions of rows agrees
 * with NumPy's pairwise summation to rounding. Labels other than 0 and 1 make the result NaN (the
 * only channel a double-valued metric has for "undefined"), as does a total weight of zero.
 */
#include "eval/eval_internal.h"
#include "eval/metrics.h"

#include <math.h>

/* Clips to [lo, hi] keeping NaN (fmin/fmax would replace it), as np.clip does. */
static double clip(double p, double lo, double hi) {
    return p < lo ? lo : (p > hi ? hi : p);
}

/* sum(w * v) / sum(w); NaN when the total weight is zero (NumPy raises there). */
static double weighted_mean(const fm_eval_sum_t *weighted, const fm_eval_sum_t *total) {
    double w = fm_eval_sum_value(total);
    return w == 0.0 ? NAN : fm_eval_sum_value(weighted) / w;
}

double fm_metric_logloss(const double *prob, const int *label, const double *weight, size_t n) {
    const double eps = FM_EVAL_LOGLOSS_EPS;
    fm_eval_sum_t loss = {0, 0}, total = {0, 0};
    for (size_t i = 0; i < n; i++) {
        if (label[i] != 0 && label[i] != 1) return NAN;
        /* sklearn 1.2 clips p, forms the row (1 - p, p) and renormalises it; the row sum differs
         * from 1 by rounding only, but keeping the step keeps the numbers identical. */
        double p1 = clip(prob[i], eps, 1.0 - eps), p0 = 1.0 - p1;
        double q = (label[i] ? p1 : p0) / (p0 + p1);
        double w = weight ? weight[i] : 1.0;
        fm_eval_sum_add(&loss, -w * log(q));
        fm_eval_sum_add(&total, w);
    }
    return weighted_mean(&loss, &total);
}

double fm_metric_brier(const double *prob, const int *label, const double *weight, size_t n) {
    fm_eval_sum_t err = {0, 0}, total = {0, 0};
    for (size_t i = 0; i < n; i++) {
        if (label[i] != 0 && label[i] != 1) return NAN;
        double d = prob[i] - (double)label[i], w = weight ? weight[i] : 1.0;
        fm_eval_sum_add(&err, w * d * d);
        fm_eval_sum_add(&total, w);
    }
    return weighted_mean(&err, &total);
}

fm_confusion_t fm_metric_confusion(const double *score, const int *label, const double *weight,
                                   size_t n, double threshold) {
    /* cell[2 * label + predicted]: tn, fp, fn, tp. */
    fm_eval_sum_t cell[4] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
    for (size_t i = 0; i < n; i++) {
        if (label[i] != 0 && label[i] != 1) return (fm_confusion_t){NAN, NAN, NAN, NAN};
        int predicted = score[i] >= threshold; /* a NaN score is never >= anything: negative */
        fm_eval_sum_add(&cell[2 * label[i] + predicted], weight ? weight[i] : 1.0);
    }
    return (fm_confusion_t){
        .tp = fm_eval_sum_value(&cell[3]),
        .fp = fm_eval_sum_value(&cell[1]),
        .tn = fm_eval_sum_value(&cell[0]),
        .fn = fm_eval_sum_value(&cell[2]),
    };
}

/* num / den, or 0 when den is 0: sklearn's zero_division=0. NaN inputs stay NaN. */
static double ratio_or_zero(double num, double den) {
    return den == 0.0 ? 0.0 : num / den;
}

double fm_confusion_accuracy(const fm_confusion_t *c) {
    return ratio_or_zero(c->tp + c->tn, c->tp + c->fp + c->tn + c->fn);
}

double fm_confusion_precision(const fm_confusion_t *c) {
    return ratio_or_zero(c->tp, c->tp + c->fp);
}

double fm_confusion_recall(const fm_confusion_t *c) {
    return ratio_or_zero(c->tp, c->tp + c->fn);
}

double fm_confusion_f1(const fm_confusion_t *c) {
    /* 2PR / (P + R) simplified; it is 0 whenever sklearn sets precision or recall to 0 for a zero
     * denominator, since then tp is 0 as well. */
    return ratio_or_zero(2.0 * c->tp, 2.0 * c->tp + c->fp + c->fn);
}
