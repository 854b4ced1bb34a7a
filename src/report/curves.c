/*
 * The numbers behind the report's charts: the ROC curve (and from it the KS statistic and curve),
 * calibration bins, histograms and the multiclass confusion matrix. Pure computation over caller
 * buffers; the ROC curve is the only one that allocates (it sorts the rows by score).
 *
 * ROC points are taken only between distinct scores, as scikit-learn's roc_curve does, so tied
 * rows move the curve diagonally at once and the area under the points is exactly
 * fm_metric_auc's (a tied positive/negative pair counts one half).
 */
#include "report/report_internal.h"

#include <math.h>
#include <stdlib.h>

/* A row reduced to what the ROC curve needs. */
typedef struct scored {
    double score;
    int positive;
} scored_t;

/* Descending by score. Scores are never NaN here (the caller checks), so this is a total order. */
static int compare_scored(const void *a, const void *b) {
    double x = ((const scored_t *)a)->score, y = ((const scored_t *)b)->score;
    return (x < y) - (x > y);
}

void fm_report_roc_deinit(fm_report_roc_t *roc) {
    if (!roc) return;
    free(roc->fpr);
    free(roc->tpr);
    free(roc->threshold);
    *roc = (fm_report_roc_t){0};
}

int fm_report_roc(const double *score, size_t stride, const int *label, int positive, size_t n,
                  size_t max_points, fm_report_roc_t *out) {
    *out = (fm_report_roc_t){0};
    scored_t *rows = malloc((n ? n : 1) * sizeof *rows);
    /* At most one point per row plus the origin. */
    out->fpr = malloc((n + 1) * sizeof *out->fpr);
    out->tpr = malloc((n + 1) * sizeof *out->tpr);
    out->threshold = malloc((n + 1) * sizeof *out->threshold);
    if (!rows || !out->fpr || !out->tpr || !out->threshold) {
        free(rows);
        fm_report_roc_deinit(out);
        return FM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        rows[i].score = score[i * stride];
        rows[i].positive = label[i] == positive;
        out->positives += (size_t)rows[i].positive;
    }
    out->negatives = n - out->positives;
    qsort(rows, n, sizeof *rows, compare_scored);

    /* Every point first, into the output arrays. */
    double p = out->positives ? (double)out->positives : 1.0;
    double q = out->negatives ? (double)out->negatives : 1.0;
    size_t m = 0, tp = 0, fp = 0;
    out->fpr[0] = 0.0;
    out->tpr[0] = 0.0;
    out->threshold[0] = INFINITY;
    m = 1;
    for (size_t i = 0; i < n;) {
        double s = rows[i].score;
        for (; i < n && rows[i].score == s; i++) {
            tp += (size_t)rows[i].positive;
            fp += (size_t)!rows[i].positive;
        }
        out->fpr[m] = (double)fp / q;
        out->tpr[m] = (double)tp / p;
        out->threshold[m] = s;
        m++;
    }
    free(rows);
    out->ks = 0.0;
    out->ks_index = 0;
    for (size_t j = 0; j < m; j++) {
        double gap = out->tpr[j] - out->fpr[j];
        if (gap > out->ks) {
            out->ks = gap;
            out->ks_index = j;
        }
    }
    out->n = m;
    if (max_points == 0 || m <= max_points) return FM_OK;

    /* Thin in place: the kept prefix never overtakes the point being read. */
    double step = 2.0 / (double)max_points;
    size_t kept = 1, ks_kept = 0;
    for (size_t j = 1; j < m; j++) {
        double moved =
            fabs(out->fpr[j] - out->fpr[kept - 1]) + fabs(out->tpr[j] - out->tpr[kept - 1]);
        if (j != m - 1 && j != out->ks_index && moved < step) continue;
        if (j == out->ks_index) ks_kept = kept;
        out->fpr[kept] = out->fpr[j];
        out->tpr[kept] = out->tpr[j];
        out->threshold[kept] = out->threshold[j];
        kept++;
    }
    out->n = kept;
    out->ks_index = ks_kept;
    return FM_OK;
}

/* The bin of v among nbins equal-width bins over [lo, hi]; out-of-range values in the end bins. */
static size_t bin_of(double v, double lo, double hi, size_t nbins) {
    if (!(hi > lo) || !(v > lo)) return 0;
    if (v >= hi) return nbins - 1;
    size_t b = (size_t)((v - lo) / (hi - lo) * (double)nbins);
    return b < nbins ? b : nbins - 1;
}

void fm_report_calibration(const double *prob, size_t stride, const int *label, int positive,
                           size_t n, size_t nbins, fm_report_bin_t *bins) {
    for (size_t b = 0; b < nbins; b++)
        bins[b] = (fm_report_bin_t){0, 0.0, 0.0};
    for (size_t i = 0; i < n; i++) {
        double p = prob[i * stride];
        fm_report_bin_t *bin = &bins[bin_of(p, 0.0, 1.0, nbins)];
        bin->count++;
        bin->mean_prediction += p;
        bin->observed_rate += label[i] == positive;
    }
    for (size_t b = 0; b < nbins; b++) {
        double c = (double)bins[b].count;
        bins[b].mean_prediction = c > 0 ? bins[b].mean_prediction / c : NAN;
        bins[b].observed_rate = c > 0 ? bins[b].observed_rate / c : NAN;
    }
}

void fm_report_histogram(const double *value, size_t stride, const int *label, int cls, size_t n,
                         double lo, double hi, size_t nbins, size_t *counts) {
    for (size_t b = 0; b < nbins; b++)
        counts[b] = 0;
    for (size_t i = 0; i < n; i++)
        if (!label || cls < 0 || label[i] == cls)
            counts[bin_of(value[i * stride], lo, hi, nbins)]++;
}

void fm_report_confusion(const double *prob, size_t k, const int *label, size_t n, size_t *counts) {
    for (size_t c = 0; c < k * k; c++)
        counts[c] = 0;
    for (size_t i = 0; i < n; i++) {
        const double *row = prob + i * k;
        size_t best = 0;
        for (size_t c = 1; c < k; c++)
            if (row[c] > row[best]) best = c;
        counts[(size_t)label[i] * k + best]++;
    }
}
