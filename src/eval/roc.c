/*
 * Ranking metrics of a binary scorer: AUC, Gini and the Kolmogorov-Smirnov statistic.
 *
 * All three come from the weighted ROC curve, computed as sklearn's roc_curve does: rows sorted by
 * score, one curve point per distinct score (so tied rows move the curve diagonally, which is what
 * counts a tied positive/negative pair as one half), and the area by the trapezoid rule.
 *
 * The sort is an LSD radix sort of compact (score key, positive weight, negative weight) records:
 * O(n), and at a million rows about three times faster than qsort with a comparison callback
 * (which already beats sklearn's argsort path by a factor of two). The walk after it needs no
 * branch on the label. The unit tests keep an O(n^2) pair-counting AUC as the naive reference.
 */
#include "eval/eval_internal.h"
#include "eval/metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct roc_row {
    uint64_t key; /* the score mapped to an integer of the same order (roc_key) */
    double pos;   /* the row's weight when its label is 1, else 0 */
    double neg;   /* the row's weight when its label is 0, else 0 */
} roc_row_t;

enum { ROC_DIGIT_BITS = 11, ROC_BUCKETS = 1 << ROC_DIGIT_BITS, ROC_PASSES = 6 };

/* Maps a non-NaN double to an unsigned integer with the same order: flip all bits of negatives
 * (larger magnitude is smaller), set the sign bit of positives. -0.0 becomes +0.0 first, so the
 * two zeros, which compare equal, get one key and form one tie group. */
static uint64_t roc_key(double score) {
    double normalised = score + 0.0;
    uint64_t u;
    memcpy(&u, &normalised, sizeof u);
    return (u & UINT64_C(0x8000000000000000)) ? ~u : u | UINT64_C(0x8000000000000000);
}

/*
 * Sorts rows[0..n) ascending by key with an LSD radix sort, 6 passes of 11 bits, into rows or
 * spare (both n long); returns the one that holds the result. Passes whose digit is the same for
 * every row are skipped, so a column of scores with few distinct bit patterns costs fewer passes.
 */
static roc_row_t *roc_sort(roc_row_t *rows, roc_row_t *spare, size_t n, size_t *count) {
    memset(count, 0, sizeof(size_t) * ROC_PASSES * ROC_BUCKETS);
    for (size_t i = 0; i < n; i++) {
        uint64_t k = rows[i].key;
        for (int p = 0; p < ROC_PASSES; p++)
            count[p * ROC_BUCKETS + ((k >> (p * ROC_DIGIT_BITS)) & (ROC_BUCKETS - 1))]++;
    }
    roc_row_t *from = rows, *to = spare;
    for (int p = 0; p < ROC_PASSES; p++) {
        size_t *c = count + (size_t)p * ROC_BUCKETS;
        int shift = p * ROC_DIGIT_BITS;
        if (c[(from[0].key >> shift) & (ROC_BUCKETS - 1)] == n) continue;
        size_t offset = 0;
        for (size_t b = 0; b < ROC_BUCKETS; b++) {
            size_t here = c[b];
            c[b] = offset;
            offset += here;
        }
        for (size_t i = 0; i < n; i++)
            to[c[(from[i].key >> shift) & (ROC_BUCKETS - 1)]++] = from[i];
        roc_row_t *t = from;
        from = to;
        to = t;
    }
    return from;
}

void fm_eval_roc_summary(const double *score, const int *label, const double *weight, size_t n,
                         double *auc, double *ks) {
    if (auc) *auc = NAN;
    if (ks) *ks = NAN;
    /* One block: the rows, the radix sort's second buffer, its digit counts. */
    size_t count_bytes = sizeof(size_t) * ROC_PASSES * ROC_BUCKETS;
    if (n == 0 || n > (SIZE_MAX - count_bytes) / (2 * sizeof(roc_row_t))) return;
    roc_row_t *rows = malloc(2 * n * sizeof(roc_row_t) + count_bytes);
    if (!rows) return;

    fm_eval_sum_t total_pos = {0, 0}, total_neg = {0, 0};
    for (size_t i = 0; i < n; i++) {
        /* NaN has no place in a ranking: no threshold separates it from anything. */
        if ((label[i] != 0 && label[i] != 1) || isnan(score[i])) {
            free(rows);
            return;
        }
        double w = weight ? weight[i] : 1.0;
        rows[i].key = roc_key(score[i]);
        rows[i].pos = label[i] ? w : 0.0;
        rows[i].neg = label[i] ? 0.0 : w;
        fm_eval_sum_add(label[i] ? &total_pos : &total_neg, w);
    }
    double P = fm_eval_sum_value(&total_pos), N = fm_eval_sum_value(&total_neg);
    if (!(P > 0.0 && N > 0.0)) {
        free(rows);
        return;
    }
    const roc_row_t *sorted = roc_sort(rows, rows + n, n, (size_t *)(rows + 2 * n));

    /* Walk from the highest score down: lowering the threshold past one distinct score adds that
     * group's weights to the cumulative true and false positives, one ROC point per group. Sums
     * are sequential, like sklearn's stable_cumsum, so the curves agree to rounding. */
    double tp = 0.0, fp = 0.0, best = 0.0;
    fm_eval_sum_t area = {0, 0};
    size_t i = n;
    while (i > 0) {
        uint64_t key = sorted[i - 1].key;
        double tp_before = tp, fp_before = fp;
        while (i > 0 && sorted[i - 1].key == key) {
            tp += sorted[i - 1].pos;
            fp += sorted[i - 1].neg;
            i--;
        }
        fm_eval_sum_add(&area, (fp - fp_before) * (tp + tp_before));
        double gap = tp / P - fp / N;
        if (gap > best) best = gap;
    }
    free(rows);
    /* The curve ends at the cumulative totals; normalising by them (as sklearn divides by
     * tps[-1], fps[-1]) makes the last point exactly (1, 1). */
    if (auc) *auc = fm_eval_sum_value(&area) / (2.0 * tp * fp);
    if (ks) *ks = best;
}

double fm_metric_auc(const double *score, const int *label, const double *weight, size_t n) {
    double auc;
    fm_eval_roc_summary(score, label, weight, n, &auc, NULL);
    return auc;
}

double fm_metric_ks(const double *score, const int *label, const double *weight, size_t n) {
    double ks;
    fm_eval_roc_summary(score, label, weight, n, NULL, &ks);
    return ks;
}

double fm_metric_gini(const double *score, const int *label, const double *weight, size_t n) {
    return 2.0 * fm_metric_auc(score, label, weight, n) - 1.0;
}
