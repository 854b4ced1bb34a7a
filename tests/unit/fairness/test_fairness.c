/*
 * Tests of the fairness metrics (src/fairness): a small table whose every number is worked out by
 * hand in the comments, Fisher's exact test against published values and a hypergeometric sum
 * written out here, the chi-square test against the sum of (O - E)^2 / E, reweighing weights
 * against P(g) P(y) / P(g, y), undefined rates and ratios, bad input, banding.
 */
#include "fairness/fairness.h"
#include "fm_test.h"

#define MAX_ROWS 64

typedef struct table {
    int y[MAX_ROWS], d[MAX_ROWS];
    int32_t g[MAX_ROWS];
    size_t n;
} table_t;

/* Appends count rows of group g with label y and decision d. */
static void add(table_t *t, int32_t g, int y, int d, size_t count) {
    for (size_t i = 0; i < count && t->n < MAX_ROWS; i++) {
        t->g[t->n] = g;
        t->y[t->n] = y;
        t->d[t->n] = d;
        t->n++;
    }
}

/*
 * Group A (code 0), 10 rows: 6 positives of which 4 selected (TP 4), 4 negatives of which 1
 *   selected (FP 1): SR = 5/10 = 0.5, TPR = 4/6, FPR = 1/4, precision = 4/5.
 * Group B (code 1), 6 rows: 3 positives, 1 selected; 3 negatives, none selected:
 *   SR = 1/6, TPR = 1/3, FPR = 0, precision = 1.
 * Group C (code 2), 4 rows: no positives; 4 negatives, 2 selected:
 *   SR = 0.5, TPR undefined, FPR = 0.5, precision = 0/2 = 0.
 * One row with a missing group, which is left out.
 */
static void hand_table(table_t *t) {
    memset(t, 0, sizeof *t);
    add(t, 0, 1, 1, 4);
    add(t, 0, 1, 0, 2);
    add(t, 0, 0, 1, 1);
    add(t, 0, 0, 0, 3);
    add(t, 1, 1, 1, 1);
    add(t, 1, 1, 0, 2);
    add(t, 1, 0, 0, 3);
    add(t, 2, 0, 1, 2);
    add(t, 2, 0, 0, 2);
    add(t, -1, 1, 1, 1);
}

static const char *const names[] = {"A", "B", "C", "D"};

static void test_hand_table(void) {
    table_t t;
    hand_table(&t);
    fm_fairness_t f;
    fm_error_t err;
    /* Four names, but D has no rows: it is left out. Reference: the largest group, A. */
    FM_CHECK_INT(fm_fairness_compute(t.y, t.d, t.g, t.n, names, 4, -1, &f, &err), FM_OK);
    FM_CHECK_INT(f.ngroups, 3);
    FM_CHECK_INT(f.reference, 0);
    FM_CHECK_INT(f.rows, 20);
    FM_CHECK_INT(f.rows_missing_group, 1);
    const fm_fairness_group_t *a = &f.groups[0], *b = &f.groups[1], *c = &f.groups[2];
    FM_CHECK_STR(a->name, "A");
    FM_CHECK_STR(c->name, "C");
    FM_CHECK_INT(a->count, 10);
    FM_CHECK_INT(a->positives, 6);
    FM_CHECK_INT(a->selected, 5);
    FM_CHECK_INT(a->true_positives, 4);
    FM_CHECK_INT(a->false_positives, 1);
    FM_CHECK_NEAR(a->selection_rate, 0.5, 1e-15);
    FM_CHECK_NEAR(a->tpr, 4.0 / 6.0, 1e-15);
    FM_CHECK_NEAR(a->fpr, 0.25, 1e-15);
    FM_CHECK_NEAR(a->precision, 0.8, 1e-15);
    FM_CHECK_NEAR(b->selection_rate, 1.0 / 6.0, 1e-15);
    FM_CHECK_NEAR(b->tpr, 1.0 / 3.0, 1e-15);
    FM_CHECK_NEAR(b->fpr, 0.0, 1e-15);
    FM_CHECK_NEAR(b->precision, 1.0, 1e-15);
    FM_CHECK_NEAR(c->selection_rate, 0.5, 1e-15);
    FM_CHECK(isnan(c->tpr)); /* no positives in C */
    FM_CHECK_NEAR(c->fpr, 0.5, 1e-15);
    FM_CHECK_NEAR(c->precision, 0.0, 1e-15);

    /* The reference against itself: zero differences, ratio 1, no test. */
    FM_CHECK_NEAR(a->parity_difference, 0.0, 0);
    FM_CHECK_NEAR(a->parity_ratio, 1.0, 0);
    FM_CHECK_INT(a->four_fifths, 0);
    FM_CHECK_INT(a->test, FM_FAIRNESS_TEST_NONE);
    FM_CHECK(isnan(a->p_value));

    /* B vs A: SR 1/6 - 1/2 = -1/3, ratio (1/6)/(1/2) = 1/3 < 0.8; TPR 1/3 - 2/3 = -1/3;
     * FPR 0 - 1/4 = -1/4; equalized odds max(1/3, 1/4) = 1/3; average odds (-1/4 - 1/3)/2 = -7/24.
     */
    FM_CHECK_NEAR(b->parity_difference, -1.0 / 3.0, 1e-15);
    FM_CHECK_NEAR(b->parity_ratio, 1.0 / 3.0, 1e-15);
    FM_CHECK_INT(b->four_fifths, 1);
    FM_CHECK_NEAR(b->equal_opportunity_difference, -1.0 / 3.0, 1e-15);
    FM_CHECK_NEAR(b->equalized_odds_difference, 1.0 / 3.0, 1e-15);
    FM_CHECK_NEAR(b->average_odds_difference, -7.0 / 24.0, 1e-15);
    /* Table [[1, 5], [5, 5]]: expected count 6 * 6 / 16 = 2.25 < 5, so Fisher. Margins r1 = 6,
     * r2 = 10, c1 = 6: P(x) = C(6,x) C(10,6-x) / C(16,6) with C(16,6) = 8008 and numerators
     * 210, 1512, 3150, 2400, 675, 60, 1 for x = 0..6. Observed x = 1 (1512); those no larger:
     * 210 + 1512 + 675 + 60 + 1 = 2458, p = 2458 / 8008. */
    FM_CHECK_INT(b->test, FM_FAIRNESS_TEST_FISHER);
    FM_CHECK_NEAR(b->p_value, 2458.0 / 8008.0, 1e-12);
    FM_CHECK_NEAR(b->statistic, 1512.0 / 8008.0, 1e-12);

    /* C vs A: SR equal (difference 0, ratio 1, no four-fifths flag); TPR undefined, so equal
     * opportunity, equalized odds and average odds are undefined. Table [[2, 2], [5, 5]]:
     * C(4,x) C(10,7-x) / C(14,7) = 120, 840, 1512, 840, 120 / 3432; observed x = 2 is the mode,
     * p = 1. */
    FM_CHECK_NEAR(c->parity_difference, 0.0, 1e-15);
    FM_CHECK_NEAR(c->parity_ratio, 1.0, 1e-15);
    FM_CHECK_INT(c->four_fifths, 0);
    FM_CHECK(isnan(c->equal_opportunity_difference));
    FM_CHECK(isnan(c->equalized_odds_difference));
    FM_CHECK(isnan(c->average_odds_difference));
    FM_CHECK_INT(c->test, FM_FAIRNESS_TEST_FISHER);
    FM_CHECK_NEAR(c->p_value, 1.0, 1e-12);

    /* Fairlearn summaries: SR 0.5, 1/6, 0.5: max - min = 1/3, min / max = 1/3. TPR over the
     * defined groups 2/3, 1/3: spread 1/3; FPR 1/4, 0, 1/2: spread 1/2; equalized odds 1/2. */
    FM_CHECK_NEAR(f.parity_difference, 1.0 / 3.0, 1e-15);
    FM_CHECK_NEAR(f.parity_ratio, 1.0 / 3.0, 1e-15);
    FM_CHECK_NEAR(f.equalized_odds_difference, 0.5, 1e-15);

    cJSON *json = fm_fairness_to_json(&f);
    FM_CHECK(json != NULL);
    FM_CHECK_STR(cJSON_GetObjectItem(json, "reference")->valuestring, "A");
    cJSON *groups = cJSON_GetObjectItem(json, "groups");
    FM_CHECK_INT(cJSON_GetArraySize(groups), 3);
    cJSON *jc = cJSON_GetArrayItem(groups, 2);
    FM_CHECK(cJSON_IsNull(cJSON_GetObjectItem(jc, "tpr")));
    FM_CHECK(
        cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(groups, 1), "four_fifths_violation")));
    FM_CHECK_STR(cJSON_GetObjectItem(jc, "test")->valuestring, "fisher");
    FM_CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(groups, 0), "test")));
    cJSON_Delete(json);
    fm_fairness_deinit(&f);
    fm_fairness_deinit(&f);
    fm_fairness_deinit(NULL);
}

/* A named reference that selects nobody: every ratio against it is undefined. */
static void test_zero_reference_rate(void) {
    table_t t;
    memset(&t, 0, sizeof t);
    add(&t, 0, 1, 1, 3);
    add(&t, 0, 0, 0, 3);
    add(&t, 1, 1, 0, 2);
    add(&t, 1, 0, 0, 2);
    fm_fairness_t f;
    fm_error_t err;
    FM_CHECK_INT(fm_fairness_compute(t.y, t.d, t.g, t.n, names, 2, 1, &f, &err), FM_OK);
    FM_CHECK_INT(f.reference, 1);
    FM_CHECK(isnan(f.groups[0].parity_ratio));
    FM_CHECK_INT(f.groups[0].four_fifths, -1);
    FM_CHECK(isnan(f.groups[1].parity_ratio));
    FM_CHECK(isnan(f.groups[1].precision)); /* B selects nobody */
    /* Group A: SR 1/2, reference B: 0, difference 1/2; TPR 1 - 0 = 1, FPR 0 - 0 = 0. */
    FM_CHECK_NEAR(f.groups[0].parity_difference, 0.5, 1e-15);
    FM_CHECK_NEAR(f.groups[0].equalized_odds_difference, 1.0, 1e-15);
    FM_CHECK_NEAR(f.groups[0].average_odds_difference, 0.5, 1e-15);
    /* Summaries: SR 1/2 and 0: ratio 0 / (1/2) = 0. */
    FM_CHECK_NEAR(f.parity_ratio, 0.0, 1e-15);
    cJSON *json = fm_fairness_to_json(&f);
    cJSON *g0 = cJSON_GetArrayItem(cJSON_GetObjectItem(json, "groups"), 0);
    FM_CHECK(cJSON_IsNull(cJSON_GetObjectItem(g0, "disparate_impact_ratio")));
    FM_CHECK(cJSON_IsNull(cJSON_GetObjectItem(g0, "four_fifths_violation")));
    cJSON_Delete(json);
    fm_fairness_deinit(&f);

    /* Nobody selected anywhere: the summary ratio is undefined too. */
    for (size_t i = 0; i < t.n; i++)
        t.d[i] = 0;
    FM_CHECK_INT(fm_fairness_compute(t.y, t.d, t.g, t.n, names, 2, -1, &f, &err), FM_OK);
    FM_CHECK(isnan(f.parity_ratio));
    FM_CHECK_NEAR(f.groups[1].p_value, 1.0, 0);
    fm_fairness_deinit(&f);
}

static void test_bad_input(void) {
    table_t t;
    hand_table(&t);
    fm_fairness_t f;
    fm_error_t err;
    /* Only group A has rows. */
    int32_t one[4] = {0, 0, 0, 0};
    FM_CHECK_INT(fm_fairness_compute(t.y, t.d, one, 4, names, 2, -1, &f, &err), FM_EDATA);
    FM_CHECK(strstr(err.msg, "two groups") != NULL);
    FM_CHECK(f.groups == NULL);
    /* The named reference D has no rows. */
    FM_CHECK_INT(fm_fairness_compute(t.y, t.d, t.g, t.n, names, 4, 3, &f, &err), FM_EDATA);
    FM_CHECK(strstr(err.msg, "'D'") != NULL);
    FM_CHECK_INT(fm_fairness_compute(t.y, t.d, t.g, t.n, names, 3, 3, &f, &err), FM_EINVAL);
    t.y[5] = 2;
    FM_CHECK_INT(fm_fairness_compute(t.y, t.d, t.g, t.n, names, 3, -1, &f, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "row 6") != NULL);
    t.y[5] = 1;
    t.d[2] = -1;
    FM_CHECK_INT(fm_fairness_compute(t.y, t.d, t.g, t.n, names, 3, -1, &f, &err), FM_EINVAL);
    t.d[2] = 1;
    t.g[0] = 7;
    FM_CHECK_INT(fm_fairness_compute(t.y, t.d, t.g, t.n, names, 3, -1, &f, &err), FM_EINVAL);
    FM_CHECK_INT(fm_fairness_compute(t.y, t.d, t.g, 0, names, 3, -1, &f, &err), FM_EDATA);
}

/* P(x) of the hypergeometric table with first cell x, from binomial coefficients. */
static double choose(double n, double k) {
    double r = 1.0;
    for (double i = 1; i <= k; i++)
        r = r * (n - k + i) / i;
    return r;
}

static double fisher_reference(size_t a, size_t b, size_t c, size_t d) {
    double r1 = (double)(a + b), r2 = (double)(c + d), c1 = (double)(a + c);
    double total = choose(r1 + r2, c1), obs = choose(r1, (double)a) * choose(r2, (double)c);
    double p = 0.0;
    for (double x = 0; x <= c1; x++) {
        if (x > r1 || c1 - x > r2) continue;
        double px = choose(r1, x) * choose(r2, c1 - x);
        if (px <= obs * (1 + 1e-7)) p += px;
    }
    return p / total;
}

static void test_fisher(void) {
    double prob;
    /* Fisher's tea-tasting table: p = 34/70 = 0.4857142857. */
    FM_CHECK_NEAR(fm_fairness_fisher_exact(3, 1, 1, 3, &prob), 34.0 / 70.0, 1e-12);
    FM_CHECK_NEAR(prob, 16.0 / 70.0, 1e-12);
    /* The dieting example of Wikipedia's article, [[1, 9], [11, 3]]: p = 0.0027594561 (R). */
    FM_CHECK_NEAR(fm_fairness_fisher_exact(1, 9, 11, 3, NULL), 0.0027594561852200836, 1e-12);
    FM_CHECK_NEAR(fm_fairness_fisher_exact(0, 5, 0, 7, NULL), 1.0, 0);
    size_t cases[][4] = {{2, 7, 8, 2}, {10, 0, 3, 12}, {0, 1, 1, 0},
                         {5, 5, 5, 5}, {17, 3, 9, 14}, {40, 2, 30, 9}};
    double worst = 0.0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t *k = cases[i];
        double got = fm_fairness_fisher_exact(k[0], k[1], k[2], k[3], NULL);
        double want = fisher_reference(k[0], k[1], k[2], k[3]);
        worst = fmax(worst, fabs(got - want));
        /* The test is symmetric in rows and columns. */
        FM_CHECK_NEAR(fm_fairness_fisher_exact(k[2], k[3], k[0], k[1], NULL), got, 1e-12);
        FM_CHECK_NEAR(fm_fairness_fisher_exact(k[0], k[2], k[1], k[3], NULL), got, 1e-12);
    }
    printf("  %-40s max |diff| = %.3g\n", "fisher vs binomial sums", worst);
    FM_CHECK(worst < 1e-12);
}

static void test_chi_square(void) {
    size_t cases[][4] = {{30, 70, 50, 50}, {120, 80, 95, 105}, {10, 10, 10, 10}, {7, 33, 25, 35}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t *k = cases[i];
        double o[4] = {(double)k[0], (double)k[1], (double)k[2], (double)k[3]};
        double n = o[0] + o[1] + o[2] + o[3];
        double r[2] = {o[0] + o[1], o[2] + o[3]}, c[2] = {o[0] + o[2], o[1] + o[3]};
        double x2 = 0.0;
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) {
                double e = r[a] * c[b] / n;
                x2 += (o[2 * a + b] - e) * (o[2 * a + b] - e) / e;
            }
        double stat, p = fm_fairness_chi_square(k[0], k[1], k[2], k[3], &stat);
        FM_CHECK_NEAR(stat, x2, 1e-9);
        /* p = P(|Z| > sqrt(X2)) = 2 (1 - Phi(sqrt(X2))). */
        double z = sqrt(x2);
        FM_CHECK_NEAR(p, 2.0 * (1.0 - 0.5 * (1.0 + erf(z / sqrt(2.0)))), 1e-12);
        double s2, p2;
        FM_CHECK_INT(fm_fairness_selection_test(k[0], k[1], k[2], k[3], &s2, &p2),
                     FM_FAIRNESS_TEST_CHI_SQUARE);
        FM_CHECK_NEAR(p2, p, 0);
    }
    /* [[30, 70], [50, 50]]: X2 = 200 (1500 - 3500)^2 / (100 * 100 * 80 * 120) = 25/3,
     * p = 0.0038924171227786 (R: chisq.test(correct = FALSE)). */
    double stat, p = fm_fairness_chi_square(30, 70, 50, 50, &stat);
    FM_CHECK_NEAR(stat, 25.0 / 3.0, 1e-12);
    FM_CHECK_NEAR(p, 0.0038924171227786, 1e-9);
    /* A zero margin: no evidence of a difference. */
    FM_CHECK_NEAR(fm_fairness_chi_square(0, 10, 0, 20, &stat), 1.0, 0);
    FM_CHECK_NEAR(stat, 0.0, 0);
    /* An expected count of 4.9 switches to Fisher: [[1, 48], [48, 3]], c1 = 49, r1 = 49,
     * E = 49 * 49 / 100 = 24.01; [[2, 8], [47, 43]]: E = 10 * 49 / 100 = 4.9. */
    double s, pv;
    FM_CHECK_INT(fm_fairness_selection_test(2, 8, 47, 43, &s, &pv), FM_FAIRNESS_TEST_FISHER);
    FM_CHECK_NEAR(pv, fisher_reference(2, 8, 47, 43), 1e-12);
    FM_CHECK_INT(fm_fairness_selection_test(1, 48, 48, 3, &s, &pv), FM_FAIRNESS_TEST_CHI_SQUARE);
}

static void test_reweighing(void) {
    table_t t;
    hand_table(&t);
    double w[MAX_ROWS];
    fm_error_t err;
    FM_CHECK_INT(fm_fairness_reweighing(t.y, t.g, t.n, 3, w, &err), FM_OK);
    /* n = 20 rows with a group; n(y=1) = 9, n(y=0) = 11. w = n_g n_y / (n n_gy):
     * A,1: 10*9/(20*6) = 0.75; A,0: 10*11/(20*4) = 1.375; B,1: 6*9/(20*3) = 0.9;
     * B,0: 6*11/(20*3) = 1.1; C,0: 4*11/(20*4) = 0.55; the missing group: 1. */
    double want[5] = {0.75, 1.375, 0.9, 1.1, 0.55};
    double worst = 0.0;
    for (size_t i = 0; i < t.n; i++) {
        double expect = t.g[i] < 0    ? 1.0
                        : t.g[i] == 0 ? want[t.y[i] ? 0 : 1]
                        : t.g[i] == 1 ? want[t.y[i] ? 2 : 3]
                                      : want[4];
        worst = fmax(worst, fabs(w[i] - expect));
    }
    printf("  %-40s max |diff| = %.3g\n", "reweighing vs formula", worst);
    FM_CHECK(worst < 1e-15);
    t.y[0] = 3;
    FM_CHECK_INT(fm_fairness_reweighing(t.y, t.g, t.n, 3, w, &err), FM_EINVAL);
    int32_t none[2] = {-1, -1};
    int y2[2] = {0, 1};
    FM_CHECK_INT(fm_fairness_reweighing(y2, none, 2, 3, w, &err), FM_EDATA);
}

static void test_bands(void) {
    double age[] = FM_FAIRNESS_AGE_BANDS;
    FM_CHECK_INT(fm_fairness_band(19, age, 5), 0);
    FM_CHECK_INT(fm_fairness_band(24.999, age, 5), 0);
    FM_CHECK_INT(fm_fairness_band(25, age, 5), 1);
    FM_CHECK_INT(fm_fairness_band(34.5, age, 5), 1);
    FM_CHECK_INT(fm_fairness_band(64, age, 5), 4);
    FM_CHECK_INT(fm_fairness_band(65, age, 5), 5);
    FM_CHECK_INT(fm_fairness_band(99, age, 5), 5);
    char buf[64];
    fm_fairness_band_label(age, 5, 0, buf, sizeof buf);
    FM_CHECK_STR(buf, "<25");
    fm_fairness_band_label(age, 5, 1, buf, sizeof buf);
    FM_CHECK_STR(buf, "25-34");
    fm_fairness_band_label(age, 5, 5, buf, sizeof buf);
    FM_CHECK_STR(buf, "65+");
    double frac[] = {0.5, 1.25};
    fm_fairness_band_label(frac, 2, 1, buf, sizeof buf);
    FM_CHECK_STR(buf, "[0.5,1.25)");
    fm_fairness_band_label(frac, 2, 2, buf, sizeof buf);
    FM_CHECK_STR(buf, ">=1.25");
    FM_CHECK_INT(fm_fairness_band_label(age, 5, 1, buf, 3), 2);
    FM_CHECK_STR(buf, "25");

    double *edges;
    size_t n;
    fm_error_t err;
    FM_CHECK_INT(fm_fairness_parse_bands("25,35,45", &edges, &n, &err), FM_OK);
    FM_CHECK_INT(n, 3);
    FM_CHECK_NEAR(edges[2], 45, 0);
    free(edges);
    FM_CHECK_INT(fm_fairness_parse_bands("25,x", &edges, &n, &err), FM_EPARSE);
    FM_CHECK(strstr(err.msg, "'x'") != NULL);
    FM_CHECK_INT(fm_fairness_parse_bands("35,25", &edges, &n, &err), FM_EPARSE);
    FM_CHECK_INT(fm_fairness_parse_bands("", &edges, &n, &err), FM_EPARSE);
    FM_CHECK_INT(fm_fairness_parse_bands("25,,35", &edges, &n, &err), FM_EPARSE);
    FM_CHECK_INT(fm_fairness_parse_bands("1e999", &edges, &n, &err), FM_EPARSE);
    FM_CHECK(edges == NULL);
}

FM_TEST_MAIN(FM_TEST_CASE(test_hand_table), FM_TEST_CASE(test_zero_reference_rate),
             FM_TEST_CASE(test_bad_input), FM_TEST_CASE(test_fisher), FM_TEST_CASE(test_chi_square),
             FM_TEST_CASE(test_reweighing), FM_TEST_CASE(test_bands))
