/*
 * Unit tests of the report's curve computations (src/report/curves.c): ROC points and the KS
 * statistic against hand-computed examples (ties included), the area under the points against
 * fm_metric_auc and the KS against fm_metric_ks on random data, thinning, calibration bins and
 * histogram counts against hand-counted examples, and the multiclass confusion matrix.
 */
#include "eval/metrics.h"
#include "report/report_internal.h"

#include "fm_test.h"

#include <math.h>
#include <stdint.h>

/* Area under the points by the trapezoid rule. */
static double trapezoid(const fm_report_roc_t *roc) {
    double area = 0.0;
    for (size_t i = 1; i < roc->n; i++)
        area += (roc->fpr[i] - roc->fpr[i - 1]) * (roc->tpr[i] + roc->tpr[i - 1]) / 2.0;
    return area;
}

static void test_roc_hand_example(void) {
    /* Sorted descending already; P = N = 4. Each row moves the curve by a quarter. */
    const double score[] = {0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.4, 0.3};
    const int label[] = {1, 1, 0, 1, 0, 1, 0, 0};
    const double fpr[] = {0, 0, 0, 0.25, 0.25, 0.5, 0.5, 0.75, 1};
    const double tpr[] = {0, 0.25, 0.5, 0.5, 0.75, 0.75, 1, 1, 1};
    fm_report_roc_t roc;
    FM_CHECK_INT(fm_report_roc(score, 1, label, 1, 8, 0, &roc), 0);
    FM_CHECK_INT(roc.n, 9);
    FM_CHECK_INT(roc.positives, 4);
    FM_CHECK_INT(roc.negatives, 4);
    for (size_t i = 0; i < roc.n && i < 9; i++) {
        FM_CHECK_NEAR(roc.fpr[i], fpr[i], 1e-15);
        FM_CHECK_NEAR(roc.tpr[i], tpr[i], 1e-15);
        if (i > 0) FM_CHECK_NEAR(roc.threshold[i], score[i - 1], 0.0);
    }
    FM_CHECK(isinf(roc.threshold[0]));
    /* 13 of the 16 positive/negative pairs are ordered right. */
    FM_CHECK_NEAR(trapezoid(&roc), 13.0 / 16.0, 1e-15);
    /* max(tpr - fpr) = 0.5, first reached at (0, 0.5), threshold 0.8. */
    FM_CHECK_NEAR(roc.ks, 0.5, 1e-15);
    FM_CHECK_INT(roc.ks_index, 2);
    FM_CHECK_NEAR(roc.threshold[roc.ks_index], 0.8, 0.0);
    fm_report_roc_deinit(&roc);
}

static void test_roc_ties(void) {
    /* Tied scores move the curve diagonally in one step: a tied pair counts one half. */
    const double score[] = {0.5, 0.2, 0.5, 0.5};
    const int label[] = {1, 0, 0, 1};
    fm_report_roc_t roc;
    FM_CHECK_INT(fm_report_roc(score, 1, label, 1, 4, 0, &roc), 0);
    FM_CHECK_INT(roc.n, 3);
    FM_CHECK_NEAR(roc.fpr[1], 0.5, 1e-15);
    FM_CHECK_NEAR(roc.tpr[1], 1.0, 1e-15);
    FM_CHECK_NEAR(roc.threshold[1], 0.5, 0.0);
    FM_CHECK_NEAR(roc.fpr[2], 1.0, 1e-15);
    FM_CHECK_NEAR(roc.threshold[2], 0.2, 0.0);
    FM_CHECK_NEAR(trapezoid(&roc), 0.75, 1e-15);
    fm_report_roc_deinit(&roc);
}

static void test_roc_one_class(void) {
    /* No negative: the false positive rate stays 0 rather than dividing by zero. */
    const double score[] = {0.3, 0.7};
    const int label[] = {1, 1};
    fm_report_roc_t roc;
    FM_CHECK_INT(fm_report_roc(score, 1, label, 1, 2, 0, &roc), 0);
    FM_CHECK_INT(roc.n, 3);
    for (size_t i = 0; i < roc.n; i++)
        FM_CHECK(roc.fpr[i] == 0.0 && isfinite(roc.tpr[i]));
    fm_report_roc_deinit(&roc);
    FM_CHECK_INT(fm_report_roc(score, 1, label, 1, 0, 0, &roc), 0);
    FM_CHECK_INT(roc.n, 1);
    fm_report_roc_deinit(&roc);
    fm_report_roc_deinit(NULL);
}

static uint64_t next_random(uint64_t *state) {
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return *state >> 11;
}

static void test_roc_random_against_metrics(void) {
    enum { N = 20000 };
    static double score[N];
    static int label[N];
    uint64_t state = 7;
    for (size_t i = 0; i < N; i++) {
        label[i] = next_random(&state) % 3 == 0;
        /* Rounded to 3 decimals: many ties, as real scores have. */
        double noise = (double)(next_random(&state) % 1000) / 1000.0;
        score[i] = round((0.6 * noise + 0.4 * label[i] * noise) * 1000.0) / 1000.0;
    }
    fm_report_roc_t full, thin;
    FM_CHECK_INT(fm_report_roc(score, 1, label, 1, N, 0, &full), 0);
    FM_CHECK_INT(fm_report_roc(score, 1, label, 1, N, 100, &thin), 0);
    double auc = fm_metric_auc(score, label, NULL, N), ks = fm_metric_ks(score, label, NULL, N);
    printf("  %-40s %.17g vs %.17g\n", "AUC: trapezoid vs fm_metric_auc", trapezoid(&full), auc);
    FM_CHECK_NEAR(trapezoid(&full), auc, 1e-12);
    FM_CHECK_NEAR(full.ks, ks, 1e-12);
    FM_CHECK_NEAR(thin.ks, ks, 1e-12);
    /* Thinned: about max_points points, same ends, the KS point kept, still monotone. */
    FM_CHECK_MSG(thin.n <= 103 && thin.n >= 50, "%zu points", thin.n);
    FM_CHECK(thin.fpr[0] == 0.0 && thin.tpr[0] == 0.0);
    FM_CHECK(thin.fpr[thin.n - 1] == 1.0 && thin.tpr[thin.n - 1] == 1.0);
    FM_CHECK_NEAR(thin.tpr[thin.ks_index] - thin.fpr[thin.ks_index], ks, 1e-12);
    for (size_t i = 1; i < thin.n; i++)
        FM_CHECK(thin.fpr[i] >= thin.fpr[i - 1] && thin.tpr[i] >= thin.tpr[i - 1]);
    /* The thinned curve's area stays close to the AUC. */
    FM_CHECK_NEAR(trapezoid(&thin), auc, 5e-3);
    fm_report_roc_deinit(&full);
    fm_report_roc_deinit(&thin);
}

static void test_roc_stride(void) {
    /* Class 2 of a [4, 3] probability matrix, one against the rest. */
    const double prob[] = {0.1, 0.1, 0.8, 0.6, 0.3, 0.1, 0.2, 0.2, 0.6, 0.3, 0.3, 0.4};
    const int label[] = {2, 0, 1, 2};
    fm_report_roc_t roc;
    FM_CHECK_INT(fm_report_roc(prob + 2, 3, label, 2, 4, 0, &roc), 0);
    /* Scores 0.8 (pos), 0.6 (neg), 0.4 (pos), 0.1 (neg). */
    FM_CHECK_INT(roc.n, 5);
    FM_CHECK_INT(roc.positives, 2);
    FM_CHECK_NEAR(roc.tpr[1], 0.5, 1e-15);
    FM_CHECK_NEAR(roc.fpr[2], 0.5, 1e-15);
    FM_CHECK_NEAR(roc.tpr[3], 1.0, 1e-15);
    FM_CHECK_NEAR(trapezoid(&roc), 0.75, 1e-15);
    fm_report_roc_deinit(&roc);
}

static void test_calibration_bins(void) {
    const double prob[] = {0.05, 0.15, 0.12, 0.95, 1.0, 0.999, 0.5, -0.2, 0.1};
    const int label[] = {0, 1, 0, 1, 1, 0, 1, 1, 0};
    fm_report_bin_t bins[10];
    fm_report_calibration(prob, 1, label, 1, 9, 10, bins);
    /* Bin 0: 0.05 and -0.2 (below the range: the first bin). */
    FM_CHECK_INT(bins[0].count, 2);
    FM_CHECK_NEAR(bins[0].mean_prediction, (0.05 - 0.2) / 2, 1e-15);
    FM_CHECK_NEAR(bins[0].observed_rate, 0.5, 1e-15);
    /* Bin 1: 0.15, 0.12 and 0.1 (a lower edge belongs to its bin). */
    FM_CHECK_INT(bins[1].count, 3);
    FM_CHECK_NEAR(bins[1].mean_prediction, (0.15 + 0.12 + 0.1) / 3, 1e-15);
    FM_CHECK_NEAR(bins[1].observed_rate, 1.0 / 3, 1e-15);
    FM_CHECK_INT(bins[5].count, 1);
    FM_CHECK_NEAR(bins[5].observed_rate, 1.0, 1e-15);
    /* Bin 9: 0.95, 0.999 and exactly 1. */
    FM_CHECK_INT(bins[9].count, 3);
    FM_CHECK_NEAR(bins[9].mean_prediction, (0.95 + 1.0 + 0.999) / 3, 1e-15);
    FM_CHECK_NEAR(bins[9].observed_rate, 2.0 / 3, 1e-15);
    for (size_t b = 2; b < 9; b++) {
        if (b == 5) continue;
        FM_CHECK_INT(bins[b].count, 0);
        FM_CHECK(isnan(bins[b].mean_prediction) && isnan(bins[b].observed_rate));
    }
}

static void test_histogram_counts(void) {
    const double v[] = {0.0, 0.049, 0.05, 0.5, 0.999, 1.0, 1.5};
    const int label[] = {0, 1, 1, 0, 1, 0, 1};
    size_t counts[20];
    fm_report_histogram(v, 1, NULL, -1, 7, 0.0, 1.0, 20, counts);
    size_t want[20] = {0};
    want[0] = 2;  /* 0 and 0.049 */
    want[1] = 1;  /* 0.05: the lower edge of bin 1 */
    want[10] = 1; /* 0.5 */
    want[19] = 3; /* 0.999, 1 (the upper end) and 1.5 (above: the last bin) */
    for (size_t b = 0; b < 20; b++)
        FM_CHECK_MSG(counts[b] == want[b], "bin %zu: %zu, want %zu", b, counts[b], want[b]);
    /* Only class 1: 0.049, 0.05, 0.999, 1.5. */
    fm_report_histogram(v, 1, label, 1, 7, 0.0, 1.0, 20, counts);
    FM_CHECK_INT(counts[0], 1);
    FM_CHECK_INT(counts[1], 1);
    FM_CHECK_INT(counts[10], 0);
    FM_CHECK_INT(counts[19], 2);
    /* An empty range puts everything in the first bin. */
    fm_report_histogram(v, 1, NULL, -1, 7, 3.0, 3.0, 4, counts);
    FM_CHECK_INT(counts[0], 7);
    FM_CHECK_INT(counts[3], 0);
    /* Negative range and stride 2 (every other value): -4 -> 0, 0 -> 2 of 4 bins over [-4, 4]. */
    const double w[] = {-4.0, 99.0, 0.0, 99.0, 3.99, 99.0};
    fm_report_histogram(w, 2, NULL, -1, 3, -4.0, 4.0, 4, counts);
    FM_CHECK_INT(counts[0], 1);
    FM_CHECK_INT(counts[2], 1);
    FM_CHECK_INT(counts[3], 1);
}

static void test_confusion(void) {
    /* Rows: predicted 0, 2, 1 (tie between 1 and 2: the first), 2. */
    const double prob[] = {0.7, 0.2, 0.1, 0.1, 0.2, 0.7, 0.2, 0.4, 0.4, 0.3, 0.3, 0.4};
    const int label[] = {0, 2, 2, 1};
    size_t counts[9];
    fm_report_confusion(prob, 3, label, 4, counts);
    const size_t want[9] = {1, 0, 0, 0, 0, 1, 0, 1, 1};
    for (size_t c = 0; c < 9; c++)
        FM_CHECK_MSG(counts[c] == want[c], "cell %zu: %zu, want %zu", c, counts[c], want[c]);
    /* The diagonal's share is the arg-max accuracy of src/eval. */
    FM_CHECK_NEAR(2.0 / 4.0, fm_metric_multiclass_accuracy(prob, label, NULL, 4, 3), 1e-15);
}

FM_TEST_MAIN(FM_TEST_CASE(test_roc_hand_example), FM_TEST_CASE(test_roc_ties),
             FM_TEST_CASE(test_roc_one_class), FM_TEST_CASE(test_roc_random_against_metrics),
             FM_TEST_CASE(test_roc_stride), FM_TEST_CASE(test_calibration_bins),
             FM_TEST_CASE(test_histogram_counts), FM_TEST_CASE(test_confusion))
