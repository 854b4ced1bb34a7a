/*
 * Internals shared by the files of the eval area and nobody else: a compensated sum, so that
 * means over millions of rows keep the accuracy NumPy gets from pairwise summation, and the ROC
 * pass that yields AUC and KS from one sort (the binary report needs both and sorts once).
 */
#ifndef FM_EVAL_INTERNAL_H
#define FM_EVAL_INTERNAL_H

#include <math.h>
#include <stddef.h>

/* The probability clip of sklearn's log_loss, as our contract fixes it (sklearn 1.2's default
 * "auto" would be DBL_EPSILON; the reference test passes eps=1e-15 explicitly). */
#define FM_EVAL_LOGLOSS_EPS 1e-15

/*
 * Neumaier's compensated sum: the error stays O(eps) instead of O(n eps), at three extra flops a
 * term. Plain data; start with {0, 0}.
 */
typedef struct fm_eval_sum {
    double sum, carry;
} fm_eval_sum_t;

static inline void fm_eval_sum_add(fm_eval_sum_t *s, double v) {
    double t = s->sum + v;
    if (fabs(s->sum) >= fabs(v))
        s->carry += (s->sum - t) + v;
    else
        s->carry += (v - t) + s->sum;
    s->sum = t;
}

static inline double fm_eval_sum_value(const fm_eval_sum_t *s) {
    return s->sum + s->carry;
}

/*
 * AUC and KS of score[n] against label[n] in {0, 1} with optional weight[n] (NULL: all ones),
 * from one O(n log n) sort. Either output pointer may be NULL. Both are NaN when a label is not
 * 0 or 1, a score is NaN, either class has no positive total weight, or memory runs out.
 */
void fm_eval_roc_summary(const double *score, const int *label, const double *weight, size_t n,
                         double *auc, double *ks);

#endif
