/*
 * Tests of the eval area (eval/metrics.h). Expected values are written as the fractions a reader
 * can check by hand; random cases compare with naive reference implementations kept here (O(n^2)
 * pair counting for AUC, threshold-by-threshold TPR - FPR for KS, the Mann-Whitney midrank formula
 * at a million rows). tests/ref/test_metrics.py compares with scikit-learn itself.
 */
#include "core/rng.h"
#include "eval/metrics.h"
#include "fm_test.h"

#include <float.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* AUC by counting every (positive, negative) pair, a tie as one half, weighted by w_i w_j. */
static double naive_auc(const double *s, const int *y, const double *w, size_t n) {
    double num = 0.0, P = 0.0, N = 0.0;
    for (size_t i = 0; i < n; i++) {
        double wi = w ? w[i] : 1.0;
        if (y[i])
            P += wi;
        else
            N += wi;
        if (!y[i]) continue;
        for (size_t j = 0; j < n; j++) {
            if (y[j]) continue;
            double wj = w ? w[j] : 1.0;
            num += wi * wj * (s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0);
        }
    }
    return num / (P * N);
}

/* KS as the largest TPR - FPR over thresholds t in {scores}, positive when score >= t. */
static double naive_ks(const double *s, const int *y, const double *w, size_t n) {
    double P = 0.0, N = 0.0, best = 0.0;
    for (size_t i = 0; i < n; i++)
        *(y[i] ? &P : &N) += w ? w[i] : 1.0;
    for (size_t t = 0; t < n; t++) {
        double tp = 0.0, fp = 0.0;
        for (size_t i = 0; i < n; i++)
            if (s[i] >= s[t]) *(y[i] ? &tp : &fp) += w ? w[i] : 1.0;
        if (tp / P - fp / N > best) best = tp / P - fp / N;
    }
    return best;
}

static void test_auc_perfect_inverted_tied(void) {
    const double s[] = {0.1, 0.2, 0.8, 0.9};
    const int up[] = {0, 0, 1, 1}, down[] = {1, 1, 0, 0};
    FM_CHECK_NEAR(fm_metric_auc(s, up, NULL, 4), 1.0, 0.0);
    FM_CHECK_NEAR(fm_metric_ks(s, up, NULL, 4), 1.0, 0.0);
    FM_CHECK_NEAR(fm_metric_gini(s, up, NULL, 4), 1.0, 0.0);
    FM_CHECK_NEAR(fm_metric_auc(s, down, NULL, 4), 0.0, 0.0);
    /* The curve starts at (0, 0), so KS is never below 0. */
    FM_CHECK_NEAR(fm_metric_ks(s, down, NULL, 4), 0.0, 0.0);
    FM_CHECK_NEAR(fm_metric_gini(s, down, NULL, 4), -1.0, 0.0);

    const double tied[] = {0.3, 0.3, 0.3, 0.3};
    FM_CHECK_NEAR(fm_metric_auc(tied, up, NULL, 4), 0.5, 0.0);
    FM_CHECK_NEAR(fm_metric_ks(tied, up, NULL, 4), 0.0, 0.0);
    FM_CHECK_NEAR(fm_metric_gini(tied, up, NULL, 4), 0.0, 0.0);
}

static void test_auc_known_values(void) {
    /* sklearn's roc_auc_score docstring example: 3 of 4 pairs ordered. KS: at t = 0.8 TPR 1/2,
     * FPR 0; at t = 0.35 TPR 1, FPR 1/2; so 1/2. */
    const double s[] = {0.1, 0.4, 0.35, 0.8};
    const int y[] = {0, 0, 1, 1};
    FM_CHECK_NEAR(fm_metric_auc(s, y, NULL, 4), 3.0 / 4.0, 1e-15);
    FM_CHECK_NEAR(fm_metric_ks(s, y, NULL, 4), 1.0 / 2.0, 1e-15);
    FM_CHECK_NEAR(fm_metric_gini(s, y, NULL, 4), 2.0 * 3.0 / 4.0 - 1.0, 1e-15);

    /* Positives 0.5, 0.9; negatives 0.5, 0.2: pairs 1/2 (tie) + 1 + 1 + 1 = 7/2 of 4. */
    const double s2[] = {0.5, 0.5, 0.2, 0.9};
    const int y2[] = {1, 0, 0, 1};
    FM_CHECK_NEAR(fm_metric_auc(s2, y2, NULL, 4), 7.0 / 8.0, 1e-15);
    /* t = 0.9: 1/2 - 0; t = 0.5: 1 - 1/2; t = 0.2: 1 - 1. */
    FM_CHECK_NEAR(fm_metric_ks(s2, y2, NULL, 4), 1.0 / 2.0, 1e-15);

    /* Weighted: positive 0.9 (w 3), 0.5 (w 1); negatives 0.5 (w 2), 0.2 (w 4). Pairs:
     * 3*2 + 3*4 + 1*2/2 + 1*4 = 23 of P*N = 4*6. */
    const double w2[] = {1, 2, 4, 3};
    FM_CHECK_NEAR(fm_metric_auc(s2, y2, w2, 4), 23.0 / 24.0, 1e-15);
    /* t = 0.9: 3/4 - 0; t = 0.5: 1 - 2/6 = 2/3; t = 0.2: 0. */
    FM_CHECK_NEAR(fm_metric_ks(s2, y2, w2, 4), 3.0 / 4.0, 1e-15);
}

static void test_auc_extreme_scores_and_zeros(void) {
    /* The integer key must order the whole double line, infinities and denormals included. */
    const double s[] = {-INFINITY,    -1e300, -1.0,  -DBL_TRUE_MIN, 0.0,
                        DBL_TRUE_MIN, 1.0,    1e300, INFINITY};
    const int y[] = {0, 0, 0, 0, 0, 1, 1, 1, 1};
    FM_CHECK_NEAR(fm_metric_auc(s, y, NULL, 9), 1.0, 0.0);
    const int y_mixed[] = {1, 0, 1, 0, 1, 0, 1, 0, 0};
    FM_CHECK_NEAR(fm_metric_auc(s, y_mixed, NULL, 9), naive_auc(s, y_mixed, NULL, 9), 1e-15);
    FM_CHECK_NEAR(fm_metric_ks(s, y_mixed, NULL, 9), naive_ks(s, y_mixed, NULL, 9), 1e-15);
    /* -0.0 == 0.0: one tie group, AUC 1/2. */
    const double zeros[] = {-0.0, 0.0};
    const int y2[] = {1, 0};
    FM_CHECK_NEAR(fm_metric_auc(zeros, y2, NULL, 2), 0.5, 0.0);
}

static void test_auc_undefined(void) {
    const double s[] = {0.1, 0.7, 0.4};
    const int ones[] = {1, 1, 1}, zeros[] = {0, 0, 0}, bad[] = {0, 2, 1}, y[] = {0, 1, 1};
    FM_CHECK(isnan(fm_metric_auc(s, ones, NULL, 3)));
    FM_CHECK(isnan(fm_metric_auc(s, zeros, NULL, 3)));
    FM_CHECK(isnan(fm_metric_ks(s, ones, NULL, 3)));
    FM_CHECK(isnan(fm_metric_gini(s, zeros, NULL, 3)));
    FM_CHECK(isnan(fm_metric_auc(s, bad, NULL, 3)));
    FM_CHECK(isnan(fm_metric_auc(s, y, NULL, 0)));
    /* Both classes present but the negatives weigh nothing. */
    const double w[] = {0.0, 1.0, 2.0};
    FM_CHECK(isnan(fm_metric_auc(s, y, w, 3)));
    const double with_nan[] = {0.1, NAN, 0.4};
    FM_CHECK(isnan(fm_metric_auc(with_nan, y, NULL, 3)));
    FM_CHECK(isnan(fm_metric_ks(with_nan, y, NULL, 3)));
}

/* Integer weights must give exactly the metrics of the data set with rows repeated. */
static void test_weights_equal_repetition(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 7);
    enum { N = 200 };
    double s[N], w[N], rep_s[N * 4];
    int y[N], rep_y[N * 4];
    size_t m = 0;
    for (size_t i = 0; i < N; i++) {
        s[i] = (double)fm_rng_below(&rng, 20) / 20.0; /* many ties */
        y[i] = fm_rng_uniform(&rng) < 0.3 + 0.5 * s[i];
        w[i] = (double)fm_rng_below(&rng, 4); /* 0..3, zero weights included */
        for (int r = 0; r < (int)w[i]; r++) {
            rep_s[m] = s[i];
            rep_y[m++] = y[i];
        }
    }
    FM_CHECK_NEAR(fm_metric_auc(s, y, w, N), fm_metric_auc(rep_s, rep_y, NULL, m), 1e-14);
    FM_CHECK_NEAR(fm_metric_ks(s, y, w, N), fm_metric_ks(rep_s, rep_y, NULL, m), 1e-14);
    FM_CHECK_NEAR(fm_metric_logloss(s, y, w, N), fm_metric_logloss(rep_s, rep_y, NULL, m), 1e-14);
    FM_CHECK_NEAR(fm_metric_brier(s, y, w, N), fm_metric_brier(rep_s, rep_y, NULL, m), 1e-14);
    fm_confusion_t a = fm_metric_confusion(s, y, w, N, 0.5);
    fm_confusion_t b = fm_metric_confusion(rep_s, rep_y, NULL, m, 0.5);
    FM_CHECK(a.tp == b.tp && a.fp == b.fp && a.tn == b.tn && a.fn == b.fn);
    /* Regression on the same vectors: y as target, s as prediction. */
    double yd[N], rep_yd[N * 4];
    for (size_t i = 0; i < N; i++)
        yd[i] = y[i];
    for (size_t i = 0; i < m; i++)
        rep_yd[i] = rep_y[i];
    FM_CHECK_NEAR(fm_metric_rmse(s, yd, w, N), fm_metric_rmse(rep_s, rep_yd, NULL, m), 1e-14);
    FM_CHECK_NEAR(fm_metric_mae(s, yd, w, N), fm_metric_mae(rep_s, rep_yd, NULL, m), 1e-14);
    FM_CHECK_NEAR(fm_metric_r2(s, yd, w, N), fm_metric_r2(rep_s, rep_yd, NULL, m), 1e-13);
}

/* Random vectors, with and without ties and weights, against the O(n^2) references. */
static void test_auc_ks_against_naive(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 2024);
    enum { N = 700 };
    static double s[N], w[N];
    static int y[N];
    double worst_auc = 0.0, worst_ks = 0.0;
    for (int trial = 0; trial < 24; trial++) {
        size_t n = 2 + fm_rng_below(&rng, N - 2);
        int ties = trial % 2, weighted = (trial / 2) % 2;
        for (size_t i = 0; i < n; i++) {
            double u = fm_rng_normal(&rng);
            s[i] = ties ? round(u * 3.0) / 3.0 : u;
            y[i] = fm_rng_uniform(&rng) < 1.0 / (1.0 + exp(-u));
            w[i] = weighted ? fm_rng_uniform(&rng) * 3.0 : 1.0;
        }
        y[0] = 0;
        y[1] = 1;
        const double *wp = weighted ? w : NULL;
        double d = fabs(fm_metric_auc(s, y, wp, n) - naive_auc(s, y, wp, n));
        if (d > worst_auc || d != d) worst_auc = d;
        d = fabs(fm_metric_ks(s, y, wp, n) - naive_ks(s, y, wp, n));
        if (d > worst_ks || d != d) worst_ks = d;
    }
    printf("  auc vs pair counting max |diff| = %.3g, ks vs thresholds max |diff| = %.3g\n",
           worst_auc, worst_ks);
    FM_CHECK(worst_auc <= 1e-12);
    FM_CHECK(worst_ks <= 1e-12);
}

typedef struct {
    double score;
    int label;
} ranked_t;

static int ranked_compare(const void *a, const void *b) {
    double x = ((const ranked_t *)a)->score, y = ((const ranked_t *)b)->score;
    return (x > y) - (x < y);
}

/* A million rows with heavy ties: the Mann-Whitney U from midranks, an independent O(n log n)
 * formula, gives AUC = (sum of positive ranks - P (P + 1) / 2) / (P N). */
static void test_auc_million_rows(void) {
    enum { N = 1000000 };
    double *s = malloc(N * sizeof *s);
    int *y = malloc(N * sizeof *y);
    ranked_t *r = malloc(N * sizeof *r);
    FM_CHECK(s && y && r);
    if (!s || !y || !r) goto done;
    fm_rng_t rng;
    fm_rng_seed(&rng, 99);
    for (size_t i = 0; i < N; i++) {
        double u = fm_rng_normal(&rng);
        s[i] = round(u * 50.0) / 50.0;
        y[i] = fm_rng_uniform(&rng) < 1.0 / (1.0 + exp(-2.0 * u));
        r[i] = (ranked_t){s[i], y[i]};
    }
    qsort(r, N, sizeof *r, ranked_compare);
    double rank_sum = 0.0, P = 0.0;
    for (size_t i = 0; i < N;) {
        size_t j = i;
        double pos = 0.0;
        while (j < N && r[j].score == r[i].score)
            pos += r[j++].label;
        rank_sum += pos * (double)(i + 1 + j) / 2.0; /* midrank of ranks i+1..j */
        P += pos;
        i = j;
    }
    double expected = (rank_sum - P * (P + 1.0) / 2.0) / (P * ((double)N - P));
    FM_CHECK_NEAR(fm_metric_auc(s, y, NULL, N), expected, 1e-12);
done:
    free(s);
    free(y);
    free(r);
}

static void test_confusion_known(void) {
    /* At 0.5 (>=): predicted positive 0.5, 0.7, 0.9. tp = rows 2, 3; fp = row 5; tn = rows 1, 4;
     * fn = row 6. */
    const double s[] = {0.2, 0.5, 0.7, 0.4, 0.9, 0.1};
    const int y[] = {0, 1, 1, 0, 0, 1};
    fm_confusion_t c = fm_metric_confusion(s, y, NULL, 6, 0.5);
    FM_CHECK(c.tp == 2 && c.fp == 1 && c.tn == 2 && c.fn == 1);
    FM_CHECK_NEAR(fm_confusion_accuracy(&c), 4.0 / 6.0, 1e-15);
    FM_CHECK_NEAR(fm_confusion_precision(&c), 2.0 / 3.0, 1e-15);
    FM_CHECK_NEAR(fm_confusion_recall(&c), 2.0 / 3.0, 1e-15);
    FM_CHECK_NEAR(fm_confusion_f1(&c), 2.0 / 3.0, 1e-15);

    /* Weights 1..6: tp = 2 + 3, fp = 5, tn = 1 + 4, fn = 6. */
    const double w[] = {1, 2, 3, 4, 5, 6};
    c = fm_metric_confusion(s, y, w, 6, 0.5);
    FM_CHECK(c.tp == 5 && c.fp == 5 && c.tn == 5 && c.fn == 6);
    FM_CHECK_NEAR(fm_confusion_accuracy(&c), 10.0 / 21.0, 1e-15);
    FM_CHECK_NEAR(fm_confusion_precision(&c), 5.0 / 10.0, 1e-15);
    FM_CHECK_NEAR(fm_confusion_recall(&c), 5.0 / 11.0, 1e-15);
    /* 2PR / (P + R) = 2 (1/2)(5/11) / (1/2 + 5/11) = 10/21. */
    FM_CHECK_NEAR(fm_confusion_f1(&c), 10.0 / 21.0, 1e-15);

    /* Nothing predicted positive: precision and F1 are 0 (zero_division=0), not NaN. */
    c = fm_metric_confusion(s, y, NULL, 6, 0.95);
    FM_CHECK(c.tp == 0 && c.fp == 0 && c.tn == 3 && c.fn == 3);
    FM_CHECK_NEAR(fm_confusion_precision(&c), 0.0, 0.0);
    FM_CHECK_NEAR(fm_confusion_recall(&c), 0.0, 0.0);
    FM_CHECK_NEAR(fm_confusion_f1(&c), 0.0, 0.0);
    FM_CHECK_NEAR(fm_confusion_accuracy(&c), 3.0 / 6.0, 1e-15);
    /* No positives at all: recall 0. An empty matrix: all 0. */
    const int negatives[] = {0, 0, 0, 0, 0, 0};
    c = fm_metric_confusion(s, negatives, NULL, 6, 0.5);
    FM_CHECK_NEAR(fm_confusion_recall(&c), 0.0, 0.0);
    c = fm_metric_confusion(s, y, NULL, 0, 0.5);
    FM_CHECK_NEAR(fm_confusion_accuracy(&c), 0.0, 0.0);
    FM_CHECK_NEAR(fm_confusion_f1(&c), 0.0, 0.0);
    /* A label outside {0, 1} leaves the matrix undefined. */
    const int bad[] = {0, 1, 1, 0, -1, 1};
    c = fm_metric_confusion(s, bad, NULL, 6, 0.5);
    FM_CHECK(isnan(c.tp) && isnan(fm_confusion_precision(&c)));
}

static void test_logloss_brier(void) {
    const double p[] = {0.9, 0.2};
    const int y[] = {1, 0};
    FM_CHECK_NEAR(fm_metric_logloss(p, y, NULL, 2), (-log(0.9) - log(0.8)) / 2.0, 1e-15);
    const double w[] = {3.0, 1.0};
    FM_CHECK_NEAR(fm_metric_logloss(p, y, w, 2), (-3.0 * log(0.9) - log(0.8)) / 4.0, 1e-15);

    /* Clipping: p = 0 for a positive costs -log(1e-15), not infinity; p = 1 for a negative costs
     * -log of the complement of the clipped value, 1 - (1 - 1e-15), as sklearn forms it. */
    const double hard[] = {0.0, 1.0, 1.0, 0.0};
    const int yh[] = {1, 0, 1, 0};
    double expected =
        (-log(1e-15) - log(1.0 - (1.0 - 1e-15)) - log(1.0 - 1e-15) - log(1.0 - (1e-15))) / 4.0;
    FM_CHECK_NEAR(fm_metric_logloss(hard, yh, NULL, 4), expected, 1e-13);
    FM_CHECK(isfinite(fm_metric_logloss(hard, yh, NULL, 4)));

    const double pb[] = {0.9, 0.2, 0.6};
    const int yb[] = {1, 0, 0};
    FM_CHECK_NEAR(fm_metric_brier(pb, yb, NULL, 3), (0.01 + 0.04 + 0.36) / 3.0, 1e-15);
    const double wb[] = {1.0, 0.0, 2.0};
    FM_CHECK_NEAR(fm_metric_brier(pb, yb, wb, 3), (0.01 + 2.0 * 0.36) / 3.0, 1e-15);

    const int bad[] = {1, 3};
    FM_CHECK(isnan(fm_metric_logloss(p, bad, NULL, 2)));
    FM_CHECK(isnan(fm_metric_brier(p, bad, NULL, 2)));
    FM_CHECK(isnan(fm_metric_logloss(p, y, NULL, 0)));
    const double zero_w[] = {0.0, 0.0};
    FM_CHECK(isnan(fm_metric_brier(p, y, zero_w, 2)));
}

static void test_regression(void) {
    const double y[] = {1.0, 2.0, 3.0, 4.0};
    FM_CHECK_NEAR(fm_metric_r2(y, y, NULL, 4), 1.0, 0.0);
    FM_CHECK_NEAR(fm_metric_rmse(y, y, NULL, 4), 0.0, 0.0);
    FM_CHECK_NEAR(fm_metric_mae(y, y, NULL, 4), 0.0, 0.0);

    /* One error of 1: MSE 1/4, MAE 1/4, SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5, R^2 = 1 - 1/5. */
    const double pred[] = {1.0, 2.0, 3.0, 5.0};
    FM_CHECK_NEAR(fm_metric_rmse(pred, y, NULL, 4), sqrt(1.0 / 4.0), 1e-15);
    FM_CHECK_NEAR(fm_metric_mae(pred, y, NULL, 4), 1.0 / 4.0, 1e-15);
    FM_CHECK_NEAR(fm_metric_r2(pred, y, NULL, 4), 1.0 - 1.0 / 5.0, 1e-15);

    /* Weighted: mean (1 + 2*2 + 3) / 4 = 2, SS_tot = 1 + 0 + 1, SS_res = 1 + 0 + 1: R^2 = 0. */
    const double y3[] = {1.0, 2.0, 3.0}, p3[] = {2.0, 2.0, 2.0}, w3[] = {1.0, 2.0, 1.0};
    FM_CHECK_NEAR(fm_metric_r2(p3, y3, w3, 3), 0.0, 1e-15);
    FM_CHECK_NEAR(fm_metric_rmse(p3, y3, w3, 3), sqrt(2.0 / 4.0), 1e-15);
    FM_CHECK_NEAR(fm_metric_mae(p3, y3, w3, 3), 2.0 / 4.0, 1e-15);
    /* Predicting worse than the mean gives a negative R^2: SS_res = 4 + 0 + 4 => 1 - 8/2. */
    const double p_bad[] = {3.0, 2.0, 1.0};
    FM_CHECK_NEAR(fm_metric_r2(p_bad, y3, w3, 3), 1.0 - 8.0 / 2.0, 1e-15);

    /* Undefined: constant target (sklearn says 1.0 or 0.0; we say NaN), one row, no weight. */
    const double flat[] = {0.1, 0.1, 0.1};
    FM_CHECK(isnan(fm_metric_r2(p3, flat, NULL, 3)));
    FM_CHECK(isnan(fm_metric_r2(flat, flat, NULL, 3)));
    FM_CHECK(isnan(fm_metric_r2(p3, y3, NULL, 1)));
    const double w_flat[] = {0.0, 1.0, 0.0};
    FM_CHECK(isnan(fm_metric_r2(p3, y3, w_flat, 3)));
    FM_CHECK(isnan(fm_metric_rmse(p3, y3, NULL, 0)));
    FM_CHECK(isnan(fm_metric_mae(p3, y3, NULL, 0)));
}

static void test_multiclass(void) {
    /* Row 1 ties classes 0 and 1: the first maximum, 0, is the prediction. */
    const double p[] = {0.4, 0.4,  0.2, /* label 0: right */
                        0.4, 0.4,  0.2, /* label 1: wrong */
                        0.1, 0.3,  0.6, /* label 2: right */
                        0.5, 0.25, 0.25 /* label 1: wrong */};
    const int y[] = {0, 1, 2, 1};
    FM_CHECK_NEAR(fm_metric_multiclass_accuracy(p, y, NULL, 4, 3), 2.0 / 4.0, 1e-15);
    const double w[] = {1.0, 2.0, 3.0, 4.0};
    FM_CHECK_NEAR(fm_metric_multiclass_accuracy(p, y, w, 4, 3), 4.0 / 10.0, 1e-15);
    FM_CHECK_NEAR(fm_metric_multiclass_logloss(p, y, NULL, 4, 3),
                  -(log(0.4) + log(0.4) + log(0.6) + log(0.25)) / 4.0, 1e-15);
    FM_CHECK_NEAR(fm_metric_multiclass_logloss(p, y, w, 4, 3),
                  -(log(0.4) + 2.0 * log(0.4) + 3.0 * log(0.6) + 4.0 * log(0.25)) / 10.0, 1e-15);

    /* Rows that do not sum to 1 are renormalised: (0.2, 0.2, 0.2) gives each class 1/3. A hard
     * 0 is clipped to 1e-15 and the row (1 - 1e-15, 1e-15, 1e-15) renormalised. */
    const double q[] = {0.2, 0.2, 0.2, 1.0, 0.0, 0.0};
    const int yq[] = {2, 1};
    double hard = -log(1e-15 / ((1.0 - 1e-15) + 1e-15 + 1e-15));
    FM_CHECK_NEAR(fm_metric_multiclass_logloss(q, yq, NULL, 2, 3), (log(3.0) + hard) / 2.0, 1e-13);

    /* A NaN counts as the largest entry (np.argmax), so its row is not silently right. */
    const double with_nan[] = {0.5, NAN, 0.1};
    const int y0[] = {0};
    FM_CHECK_NEAR(fm_metric_multiclass_accuracy(with_nan, y0, NULL, 1, 3), 0.0, 0.0);
    FM_CHECK(isnan(fm_metric_multiclass_logloss(with_nan, y0, NULL, 1, 3)));

    const int out_of_range[] = {0, 3, 2, 1}, negative[] = {0, -1, 2, 1};
    FM_CHECK(isnan(fm_metric_multiclass_accuracy(p, out_of_range, NULL, 4, 3)));
    FM_CHECK(isnan(fm_metric_multiclass_logloss(p, negative, NULL, 4, 3)));
    FM_CHECK(isnan(fm_metric_multiclass_accuracy(p, y, NULL, 4, 0)));
    FM_CHECK(isnan(fm_metric_multiclass_logloss(p, y, NULL, 0, 3)));
    /* n * k overflowing size_t is refused before any row is read. */
    FM_CHECK(isnan(fm_metric_multiclass_accuracy(p, y, NULL, 4, SIZE_MAX / 2)));
}

/* The keys of obj in order, joined with commas, into out. */
static void key_list(const cJSON *obj, char *out, size_t cap) {
    out[0] = '\0';
    for (const cJSON *it = obj ? obj->child : NULL; it; it = it->next) {
        strncat(out, it->string, cap - strlen(out) - 1);
        if (it->next) strncat(out, ",", cap - strlen(out) - 1);
    }
}

static double number_at(const cJSON *obj, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(item) ? item->valuedouble : NAN;
}

static void test_reports(void) {
    char keys[256];
    const double s[] = {0.1, 0.4, 0.35, 0.8};
    const int y[] = {0, 0, 1, 1};
    cJSON *r = fm_metrics_binary_report(s, y, NULL, 4, 0.4);
    key_list(r, keys, sizeof keys);
    FM_CHECK_STR(keys, "auc,ks,gini,logloss,brier,accuracy,precision,recall,f1,threshold,"
                       "confusion,rows");
    FM_CHECK_NEAR(number_at(r, "auc"), 3.0 / 4.0, 1e-15);
    FM_CHECK_NEAR(number_at(r, "ks"), 1.0 / 2.0, 1e-15);
    FM_CHECK_NEAR(number_at(r, "gini"), 1.0 / 2.0, 1e-15);
    FM_CHECK_NEAR(number_at(r, "logloss"), fm_metric_logloss(s, y, NULL, 4), 0.0);
    /* (0.01 + 0.16 + 0.4225 + 0.04) / 4 */
    FM_CHECK_NEAR(number_at(r, "brier"), 0.6325 / 4.0, 1e-15);
    FM_CHECK_NEAR(number_at(r, "threshold"), 0.4, 0.0);
    FM_CHECK_NEAR(number_at(r, "rows"), 4.0, 0.0);
    /* At 0.4: predicted positive 0.4 (neg), 0.8 (pos): tp 1, fp 1, tn 1, fn 1. */
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(r, "confusion");
    key_list(c, keys, sizeof keys);
    FM_CHECK_STR(keys, "tp,fp,tn,fn");
    FM_CHECK(number_at(c, "tp") == 1 && number_at(c, "fp") == 1 && number_at(c, "tn") == 1 &&
             number_at(c, "fn") == 1);
    FM_CHECK_NEAR(number_at(r, "accuracy"), 2.0 / 4.0, 1e-15);
    FM_CHECK_NEAR(number_at(r, "precision"), 1.0 / 2.0, 1e-15);
    FM_CHECK_NEAR(number_at(r, "recall"), 1.0 / 2.0, 1e-15);
    FM_CHECK_NEAR(number_at(r, "f1"), 1.0 / 2.0, 1e-15);
    cJSON_Delete(r);

    /* One class: the ranking metrics are null, the rest defined. */
    const int ones[] = {1, 1, 1, 1};
    r = fm_metrics_binary_report(s, ones, NULL, 4, 0.5);
    FM_CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "auc")));
    FM_CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "ks")));
    FM_CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "gini")));
    FM_CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(r, "logloss")));
    FM_CHECK_NEAR(number_at(r, "recall"), 1.0 / 4.0, 1e-15);
    cJSON_Delete(r);

    /* No rows at all: still a well-formed report. */
    r = fm_metrics_binary_report(NULL, NULL, NULL, 0, 0.5);
    FM_CHECK(r && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "auc")));
    FM_CHECK_NEAR(number_at(r, "rows"), 0.0, 0.0);
    cJSON_Delete(r);

    const double p[] = {0.7, 0.2, 0.1, 0.3, 0.3, 0.4};
    const int yk[] = {0, 1};
    r = fm_metrics_multiclass_report(p, yk, NULL, 2, 3);
    key_list(r, keys, sizeof keys);
    FM_CHECK_STR(keys, "accuracy,logloss,rows");
    FM_CHECK_NEAR(number_at(r, "accuracy"), 1.0 / 2.0, 1e-15);
    FM_CHECK_NEAR(number_at(r, "logloss"), -(log(0.7) + log(0.3)) / 2.0, 1e-15);
    FM_CHECK_NEAR(number_at(r, "rows"), 2.0, 0.0);
    cJSON_Delete(r);

    const double yr[] = {1.0, 2.0, 3.0, 4.0}, pr[] = {1.0, 2.0, 3.0, 5.0};
    r = fm_metrics_regression_report(pr, yr, NULL, 4);
    key_list(r, keys, sizeof keys);
    FM_CHECK_STR(keys, "rmse,mae,r2,rows");
    FM_CHECK_NEAR(number_at(r, "rmse"), 0.5, 1e-15);
    FM_CHECK_NEAR(number_at(r, "mae"), 0.25, 1e-15);
    FM_CHECK_NEAR(number_at(r, "r2"), 0.8, 1e-15);
    cJSON_Delete(r);
    const double flat[] = {2.0, 2.0, 2.0, 2.0};
    r = fm_metrics_regression_report(pr, flat, NULL, 4);
    FM_CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "r2")));
    FM_CHECK_NEAR(number_at(r, "mae"), (1.0 + 0.0 + 1.0 + 3.0) / 4.0, 1e-15);
    cJSON_Delete(r);
}

FM_TEST_MAIN(FM_TEST_CASE(test_auc_perfect_inverted_tied), FM_TEST_CASE(test_auc_known_values),
             FM_TEST_CASE(test_auc_extreme_scores_and_zeros), FM_TEST_CASE(test_auc_undefined),
             FM_TEST_CASE(test_weights_equal_repetition), FM_TEST_CASE(test_auc_ks_against_naive),
             FM_TEST_CASE(test_auc_million_rows), FM_TEST_CASE(test_confusion_known),
             FM_TEST_CASE(test_logloss_brier), FM_TEST_CASE(test_regression),
             FM_TEST_CASE(test_multiclass), FM_TEST_CASE(test_reports))
