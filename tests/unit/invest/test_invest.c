/*
 * Unit tests of the invest area against values worked out by hand or by closed form: maximum
 * drawdown, Sharpe and Sortino of short hand-checked series, the normal quantile and parametric
 * VaR/ES against tabulated constants, historical VaR/ES against NumPy's linear quantile worked by
 * hand, the QP solver's KKT conditions, the maximum-Sharpe optimality conditions, price reading
 * (layouts, alignment, malformed and truncated files, bad JSON), and the walk-forward backtest's
 * lack of look-ahead (changing prices after a day leaves every earlier prediction unchanged,
 * while the leak hook changes them).
 */
#include "fm_test.h"
#include "fm_test_fs.h"

#include "core/rng.h"
#include "core/normal.h"
#include "invest/invest.h"

#include <math.h>

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    FM_CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static fm_invest_options_t defaults(void) {
    fm_invest_options_t o;
    fm_invest_options_defaults(&o);
    return o;
}

/* ---- Hand-checked series ------------------------------------------------------------------- */

static void test_max_drawdown(void) {
    const double a[] = {100, 120, 90, 110, 130, 65, 70};
    size_t peak, trough;
    long rec;
    /* 120 -> 90 is 25%; 130 -> 65 is 50% and never recovers. */
    FM_CHECK_NEAR(fm_invest_max_drawdown(a, 7, &peak, &trough, &rec), 0.5, 1e-15);
    FM_CHECK_INT(peak, 4);
    FM_CHECK_INT(trough, 5);
    FM_CHECK_INT(rec, -1);
    const double b[] = {100, 80, 90, 100, 120};
    FM_CHECK_NEAR(fm_invest_max_drawdown(b, 5, &peak, &trough, &rec), 0.2, 1e-15);
    FM_CHECK_INT(peak, 0);
    FM_CHECK_INT(trough, 1);
    FM_CHECK_INT(rec, 3);
    const double c[] = {1, 2, 3, 4};
    FM_CHECK_NEAR(fm_invest_max_drawdown(c, 4, &peak, &trough, &rec), 0.0, 0);
    FM_CHECK_INT(rec, -1);
}

static void test_sharpe_sortino(void) {
    /* Returns 0.01, -0.02, 0.03, 0.00: mean 0.005; squared deviations 2.5e-5, 6.25e-4, 6.25e-4,
     * 2.5e-5 sum to 1.3e-3, sample variance 1.3e-3 / 3; the only downside return is -0.02, so
     * the downside deviation is sqrt(4e-4 / 4) = 0.01 a day. */
    double p[5] = {100};
    const double r[4] = {0.01, -0.02, 0.03, 0.0};
    for (int t = 0; t < 4; t++)
        p[t + 1] = p[t] * (1 + r[t]);
    fm_invest_options_t o = defaults();
    o.risk_free = 0.02;
    o.mc_samples = 0;
    fm_invest_stats_t s;
    fm_error_t err;
    FM_CHECK_INT(fm_invest_stats_compute(p, NULL, 5, &o, 1, &s, &err), FM_OK);
    double sd = sqrt(1.3e-3 / 3);
    FM_CHECK_NEAR(s.mean, 0.005, 1e-15);
    FM_CHECK_NEAR(s.stdev, sd, 1e-15);
    FM_CHECK_NEAR(s.annual_return, 1.26, 1e-13);
    FM_CHECK_NEAR(s.annual_volatility, sd * sqrt(252), 1e-14);
    FM_CHECK_NEAR(s.sharpe, (1.26 - 0.02) / (sd * sqrt(252)), 1e-12);
    FM_CHECK_NEAR(s.sharpe, 3.752411, 1e-6);
    FM_CHECK_NEAR(s.downside_deviation, 0.01 * sqrt(252), 1e-14);
    FM_CHECK_NEAR(s.sortino, 1.24 / (0.01 * sqrt(252)), 1e-12);
    FM_CHECK_NEAR(s.cagr, pow(p[4] / 100, 252.0 / 4) - 1, 1e-9);
    FM_CHECK_NEAR(s.max_drawdown, 0.02, 1e-15);
    FM_CHECK(isnan(s.beta));
    /* Against itself as the index: beta and correlation 1. */
    FM_CHECK_INT(fm_invest_stats_compute(p, p, 5, &o, 1, &s, &err), FM_OK);
    FM_CHECK_NEAR(s.beta, 1.0, 1e-14);
    FM_CHECK_NEAR(s.correlation, 1.0, 1e-14);
    /* Constant prices: no volatility to measure. */
    const double flat[4] = {5, 5, 5, 5};
    FM_CHECK_INT(fm_invest_stats_compute(flat, NULL, 4, &o, 1, &s, &err), FM_EDATA);
}

/* ---- Value at risk ------------------------------------------------------------------------- */

static void test_normal_quantile(void) {
    /* Python's statistics.NormalDist().inv_cdf (Wichura's AS241, an independent algorithm). */
    const double p[] = {0.5, 0.95, 0.975, 0.99, 0.999999, 0.01, 1e-10, 0.02425, 0.97575};
    const double z[] = {0.0,
                        1.6448536269514715,
                        1.9599639845400536,
                        2.3263478740408408,
                        4.753424308817089,
                        -2.3263478740408408,
                        -6.361340902404056,
                        -1.9729610513118845,
                        1.9729610513118847};
    double got[9];
    for (int i = 0; i < 9; i++)
        got[i] = fm_normal_quantile(p[i]);
    FM_CHECK(fm_test_max_diff("normal quantile", got, z, 9) < 1e-13);
    FM_CHECK(isinf(fm_normal_quantile(0)) && fm_normal_quantile(0) < 0);
    FM_CHECK(isinf(fm_normal_quantile(1)) && fm_normal_quantile(1) > 0);
}

static void test_var_normal_closed_form(void) {
    const double mu = 0.0005, sigma = 0.02;
    const double levels[2] = {0.95, 0.99};
    const double z[2] = {1.6448536269514722, 2.3263478740408408};
    for (int k = 0; k < 2; k++) {
        double var, es;
        fm_invest_var_normal(mu, sigma, levels[k], &var, &es);
        double phi = exp(-z[k] * z[k] / 2) / sqrt(2 * M_PI);
        FM_CHECK_NEAR(var, -(mu - sigma * z[k]), 1e-15);
        FM_CHECK_NEAR(es, -(mu - sigma * phi / (1 - levels[k])), 1e-14);
    }
    /* The Monte Carlo figures of a normal series converge to the closed form: 400k draws from
     * N(mu, sigma) as prices, then the statistics' normal and Monte Carlo VaR agree. */
    size_t n = 200001;
    double *p = malloc(n * sizeof *p);
    fm_rng_t rng;
    fm_rng_seed(&rng, 7);
    p[0] = 100;
    for (size_t t = 1; t < n; t++)
        p[t] = p[t - 1] * (1 + mu + sigma * fm_rng_normal(&rng));
    fm_invest_options_t o = defaults();
    o.mc_samples = 400000;
    fm_invest_stats_t s;
    fm_error_t err;
    FM_CHECK_INT(fm_invest_stats_compute(p, NULL, n, &o, 3, &s, &err), FM_OK);
    for (int k = 0; k < 2; k++) {
        double var, es;
        fm_invest_var_normal(s.mean, s.stdev, levels[k], &var, &es);
        FM_CHECK_NEAR(s.var_normal[k], var, 1e-15);
        FM_CHECK_NEAR(s.var_mc[k], var, 0.01 * var);
        FM_CHECK_NEAR(s.es_mc[k], es, 0.01 * es);
        /* the sample itself is normal: its history agrees within sampling error too */
        FM_CHECK_NEAR(s.var_historical[k], var, 0.02 * var);
        FM_CHECK_NEAR(s.es_historical[k], es, 0.02 * es);
    }
    free(p);
}

static void test_var_historical(void) {
    /* Losses sorted: -0.03, -0.02, 0, 0.01, 0.05. At 0.95, h = 4 * 0.95 = 3.8: 0.01 + 0.8 *
     * 0.04 = 0.042 (NumPy's linear quantile); the tail at or beyond it is {0.05}. */
    const double r[5] = {0.02, -0.05, 0.0, 0.03, -0.01};
    double sorted[5], var, es;
    fm_invest_sorted_losses(r, 5, sorted);
    fm_invest_var_historical(sorted, 5, 0.95, &var, &es);
    FM_CHECK_NEAR(var, 0.042, 1e-15);
    FM_CHECK_NEAR(es, 0.05, 1e-15);
    /* At 0.75, h = 3: exactly the 4th loss 0.01; the tail {0.01, 0.05} averages 0.03. */
    fm_invest_var_historical(sorted, 5, 0.75, &var, &es);
    FM_CHECK_NEAR(var, 0.01, 1e-15);
    FM_CHECK_NEAR(es, 0.03, 1e-15);
}

/* ---- Quadratic programmes ------------------------------------------------------------------ */

/* Checks x against the KKT conditions of min 1/2 x'Qx + c'x on the bounded simplex. */
static void check_kkt(const double *Q, const double *c, size_t n, double lo, double hi,
                      const double *x, double tol) {
    double sum = 0, g[16], nu = NAN;
    for (size_t i = 0; i < n; i++) {
        sum += x[i];
        FM_CHECK(x[i] >= lo - 1e-12 && x[i] <= hi + 1e-12);
        g[i] = c ? c[i] : 0;
        for (size_t j = 0; j < n; j++)
            g[i] += Q[i * n + j] * x[j];
    }
    FM_CHECK_NEAR(sum, 1.0, 1e-12);
    for (size_t i = 0; i < n; i++)
        if (x[i] > lo + 1e-9 && x[i] < hi - 1e-9) nu = g[i];
    if (isnan(nu)) {
        /* A vertex: some multiplier must lie between every upper-bound gradient and every
         * lower-bound gradient. */
        double top = -INFINITY, bottom = INFINITY;
        for (size_t i = 0; i < n; i++) {
            if (x[i] >= hi - 1e-9) top = fmax(top, g[i]);
            if (x[i] <= lo + 1e-9) bottom = fmin(bottom, g[i]);
        }
        FM_CHECK_MSG(top <= bottom + tol, "vertex: upper gradient %g above lower %g", top, bottom);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        double d = g[i] - nu;
        if (x[i] <= lo + 1e-9)
            FM_CHECK_MSG(d >= -tol, "x[%zu] at lower with gradient gap %g", i, d);
        else if (x[i] >= hi - 1e-9)
            FM_CHECK_MSG(d <= tol, "x[%zu] at upper with gradient gap %g", i, d);
        else
            FM_CHECK_MSG(fabs(d) <= tol, "free x[%zu] with gradient gap %g", i, d);
    }
}

static void random_psd(fm_rng_t *rng, size_t n, double *Q) {
    double A[16 * 16];
    for (size_t i = 0; i < n * n; i++)
        A[i] = fm_rng_normal(rng);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double s = i == j ? 0.05 : 0;
            for (size_t k = 0; k < n; k++)
                s += A[i * n + k] * A[j * n + k];
            Q[i * n + j] = s / (double)n;
        }
}

static void test_qp_kkt(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 11);
    fm_error_t err;
    for (int trial = 0; trial < 40; trial++) {
        size_t n = 2 + (size_t)trial % 9;
        double Q[16 * 16], c[16], x[16] = {0};
        random_psd(&rng, n, Q);
        for (size_t i = 0; i < n; i++)
            c[i] = fm_rng_normal(&rng);
        double hi = trial % 2 ? 1.0 : 2.0 / (double)n, lo = trial % 3 ? 0.0 : 0.2 / (double)n;
        FM_CHECK_INT(fm_invest_qp_simplex(Q, c, n, lo, hi, x, &err), FM_OK);
        check_kkt(Q, c, n, lo, hi, x, 1e-9);
    }
    /* Bounds that cannot sum to one */
    double Q[4] = {1, 0, 0, 1}, x[2] = {0};
    FM_CHECK_INT(fm_invest_qp_simplex(Q, NULL, 2, 0, 0.4, x, &err), FM_EINVAL);
    FM_CHECK_INT(fm_invest_qp_simplex(Q, NULL, 2, 0.6, 1, x, &err), FM_EINVAL);
    /* Two uncorrelated assets: minimum variance weights are inversely proportional to
     * variance, 1/a / (1/a + 1/b). */
    double D[4] = {0.04, 0, 0, 0.01}, w[2];
    FM_CHECK_INT(fm_invest_min_variance(D, 2, 0, 1, w, &err), FM_OK);
    FM_CHECK_NEAR(w[0], 0.2, 1e-12);
    FM_CHECK_NEAR(w[1], 0.8, 1e-12);
    FM_CHECK_INT(fm_invest_min_variance(D, 2, 0, 0.6, w, &err), FM_OK);
    FM_CHECK_NEAR(w[1], 0.6, 1e-12);
}

/* Max Sharpe: with S(w) = (mu'w - rf) / sigma(w), the gradient mu / sigma - (mu'w - rf) C w /
 * sigma^3 must be equal on the free weights, no larger at the lower bound, no smaller at the
 * upper. Targets: the target-return portfolio earns its target and is KKT for the Lagrangian. */
static void test_max_sharpe_kkt(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 5);
    fm_error_t err;
    for (int trial = 0; trial < 10; trial++) {
        size_t n = 3 + (size_t)trial % 4;
        double C[64], mu[8], w[8], g[8];
        random_psd(&rng, n, C);
        for (size_t i = 0; i < n * n; i++)
            C[i] *= 0.04;
        for (size_t i = 0; i < n; i++)
            mu[i] = 0.02 + 0.1 * fm_rng_uniform(&rng);
        double hi = trial % 2 ? 1.0 : 0.5;
        FM_CHECK_INT(fm_invest_max_sharpe(mu, C, n, 0, hi, 0.01, w, &err), FM_OK);
        double ret = 0, var = 0;
        for (size_t i = 0; i < n; i++) {
            ret += mu[i] * w[i];
            for (size_t j = 0; j < n; j++)
                var += w[i] * C[i * n + j] * w[j];
        }
        double sd = sqrt(var), nu = NAN;
        for (size_t i = 0; i < n; i++) {
            double cw = 0;
            for (size_t j = 0; j < n; j++)
                cw += C[i * n + j] * w[j];
            g[i] = mu[i] / sd - (ret - 0.01) * cw / (sd * sd * sd);
            if (w[i] > 1e-7 && w[i] < hi - 1e-7) nu = g[i];
        }
        for (size_t i = 0; i < n && !isnan(nu); i++) {
            double d = g[i] - nu;
            if (w[i] <= 1e-7)
                FM_CHECK_MSG(d <= 1e-5, "trial %d: w[%zu] = 0 with gain %g", trial, i, d);
            else if (w[i] >= hi - 1e-7)
                FM_CHECK_MSG(d >= -1e-5, "trial %d: w[%zu] at upper with loss %g", trial, i, d);
            else
                FM_CHECK_MSG(fabs(d) <= 1e-5, "trial %d: free w[%zu] gap %g", trial, i, d);
        }
        /* A target between the extremes is met exactly. */
        double mv[8];
        FM_CHECK_INT(fm_invest_min_variance(C, n, 0, hi, mv, &err), FM_OK);
        double rmv = 0;
        for (size_t i = 0; i < n; i++)
            rmv += mu[i] * mv[i];
        double target = 0.5 * (rmv + ret);
        FM_CHECK_INT(fm_invest_target_return(mu, C, n, 0, hi, target, w, &err), FM_OK);
        double got = 0;
        for (size_t i = 0; i < n; i++)
            got += mu[i] * w[i];
        FM_CHECK_NEAR(got, target, 1e-9);
        FM_CHECK_INT(fm_invest_target_return(mu, C, n, 0, hi, 10.0, w, &err), FM_ERANGE);
    }
}

/* ---- Prices -------------------------------------------------------------------------------- */

static fm_invest_prices_t *read_files(const char *const *paths, size_t n, int *rc,
                                      fm_error_t *err) {
    fm_invest_builder_t *b = NULL;
    fm_invest_prices_t *p = NULL;
    *rc = fm_invest_builder_new(0, &b, err);
    for (size_t i = 0; !*rc && i < n; i++)
        *rc = fm_invest_builder_read_csv(b, paths[i], NULL, err);
    if (!*rc) *rc = fm_invest_builder_finish(b, &p, err);
    fm_invest_builder_free(b);
    return p;
}

static void test_read_layouts(void) {
    char a[PATH_MAX], x[PATH_MAX], w[PATH_MAX], l[PATH_MAX];
    fm_test_scratch_path(a, sizeof a, "AAA_data.csv");
    fm_test_scratch_path(x, sizeof x, "XYZ.csv");
    fm_test_scratch_path(w, sizeof w, "wide.csv");
    fm_test_scratch_path(l, sizeof l, "long.csv");
    /* newest first, and a date XYZ lacks */
    write_file(a, "Date,Close,Volume\n2020-01-06,13,100\n2020-01-03,12,NA\n2020-01-02,11,90\n"
                  "2020-01-01,10,80\n");
    write_file(x, "date,close\n2020-01-01,20\n2020-01-02,21\n2020-01-03,22\n2020-01-04,23\n"
                  "2020-01-06,24\n");
    fm_error_t err;
    int rc;
    const char *two[2] = {a, x};
    fm_invest_prices_t *p = read_files(two, 2, &rc, &err);
    FM_CHECK_INT(rc, FM_OK);
    if (p) {
        FM_CHECK_INT(p->nassets, 2);
        FM_CHECK_INT(p->ndates, 4);
        FM_CHECK_STR(p->tickers[0], "AAA");
        FM_CHECK_STR(p->tickers[1], "XYZ");
        FM_CHECK_STR(p->dates[0], "2020-01-01");
        FM_CHECK_STR(p->dates[3], "2020-01-06");
        FM_CHECK_NEAR(p->close[0], 10, 0);
        FM_CHECK_NEAR(p->close[3], 13, 0);
        FM_CHECK_NEAR(p->close[4 + 3], 24, 0);
        FM_CHECK(p->has_volume[0] && !p->has_volume[1]);
        FM_CHECK(isnan(p->volume[2]));
        FM_CHECK_INT(fm_invest_prices_find(p, "XYZ"), 1);
    }
    fm_invest_prices_free(p);
    /* wide, without a date column: the row number is the date */
    write_file(w, "\"DAX\",\"SMI\"\n1,2\n1.5,2.5\n2,NA\n2.5,3\n");
    const char *one[1] = {w};
    p = read_files(one, 1, &rc, &err);
    FM_CHECK_INT(rc, FM_OK);
    if (p) {
        FM_CHECK_INT(p->nassets, 2);
        FM_CHECK_INT(p->ndates, 3);
        FM_CHECK_STR(p->dates[2], "4");
        FM_CHECK_NEAR(p->close[1 * 3 + 2], 3, 0);
    }
    fm_invest_prices_free(p);
    /* long: several tickers in one file */
    write_file(l, "date,ticker,close\n1,A,1\n1,B,2\n2,A,1.1\n2,B,2.1\n3,A,1.2\n3,B,2.3\n");
    const char *lone[1] = {l};
    p = read_files(lone, 1, &rc, &err);
    FM_CHECK_INT(rc, FM_OK);
    if (p) {
        FM_CHECK_INT(p->nassets, 2);
        FM_CHECK_INT(p->ndates, 3);
        FM_CHECK_NEAR(p->close[3 + 2], 2.3, 0);
    }
    fm_invest_prices_free(p);
}

static void expect_bad(const char *name, const char *text, int code, const char *needle) {
    char path[PATH_MAX];
    fm_test_scratch_path(path, sizeof path, name);
    write_file(path, text);
    fm_error_t err;
    fm_error_clear(&err);
    int rc;
    const char *one[1] = {path};
    fm_invest_prices_t *p = read_files(one, 1, &rc, &err);
    FM_CHECK_MSG(rc == code, "%s: rc %d, expected %d (%s)", name, rc, code, err.msg);
    FM_CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: '%s' lacks '%s'", name, err.msg, needle);
    FM_CHECK(p == NULL);
    fm_invest_prices_free(p);
}

static void test_read_bad(void) {
    expect_bad("empty.csv", "", FM_EDATA, "is empty");
    expect_bad("header.csv", "date,close\n", FM_EDATA, "no data rows");
    expect_bad("text.csv", "date,close\n1,10\n2,abc\n3,12\n", FM_EPARSE, "line 3");
    expect_bad("negative.csv", "date,close\n1,10\n2,-1\n3,12\n", FM_EDATA, "must be positive");
    expect_bad("zero.csv", "date,close\n1,10\n2,0\n3,12\n", FM_EDATA, "must be positive");
    expect_bad("inf.csv", "date,close\n1,10\n2,inf\n3,12\n", FM_EPARSE, "not a number");
    expect_bad("ragged.csv", "date,close\n1,10\n2,11,5\n3,12\n", FM_EPARSE, "fields");
    expect_bad("quote.csv", "date,close\n1,10\n2,\"11\n", FM_EPARSE, "quote");
    expect_bad("dup.csv", "date,close\n1,10\n1,11\n3,12\n", FM_EDATA, "appears twice");
    expect_bad("short.csv", "date,close\n1,10\n2,11\n", FM_EDATA, "share only 2");
    expect_bad("volume.csv", "date,close,volume\n1,10,5\n2,11,-3\n3,12,1\n", FM_EDATA, "volume");
    fm_error_t err;
    fm_invest_builder_t *b = NULL;
    FM_CHECK_INT(fm_invest_builder_new(2, &b, &err), FM_OK);
    FM_CHECK_INT(fm_invest_builder_add(b, "A", "1", 1, NAN, &err), FM_OK);
    FM_CHECK_INT(fm_invest_builder_add(b, "A", "2", 1, NAN, &err), FM_OK);
    FM_CHECK_INT(fm_invest_builder_add(b, "A", "3", 1, NAN, &err), FM_ELIMIT);
    FM_CHECK_INT(fm_invest_builder_add(b, "", "3", 1, NAN, &err), FM_EINVAL);
    FM_CHECK(fm_invest_builder_read_csv(b, "/nonexistent/x.csv", NULL, &err) < 0);
    FM_CHECK(strstr(err.msg, "/nonexistent/x.csv") != NULL);
    fm_invest_builder_free(b);
}

static void test_json_bodies(void) {
    const char *bad[] = {
        "[]",
        "{}",
        "{\"series\": {}}",
        "{\"series\": {\"A\": {\"close\": [1, 2]}}}",
        "{\"series\": {\"A\": {\"close\": [1, \"x\", 3]}}}",
        "{\"series\": {\"A\": {\"close\": [1, 2, 3], \"dates\": [1, 2]}}}",
        "{\"series\": {\"A\": [1, 2, 3]}}",
        "{\"prices\": [{\"date\": \"d1\", \"close\": 1}, 5]}",
        "{\"prices\": [{\"date\": {}, \"close\": 1}]}",
        "{\"prices\": [], \"series\": {}}",
        "{\"series\": {\"A\": {\"close\": [1, 2, -3]}}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *body = cJSON_Parse(bad[i]);
        fm_invest_prices_t *p = NULL;
        fm_error_t err;
        fm_error_clear(&err);
        int rc = fm_invest_prices_from_json(body, 1000, &p, &err);
        FM_CHECK_MSG(rc < 0 && p == NULL && err.msg[0], "body %zu accepted", i);
        cJSON_Delete(body);
    }
    cJSON *body = cJSON_Parse("{\"series\": {\"A\": {\"dates\": [\"a\", \"b\", \"c\", \"d\"], "
                              "\"close\": [1, 2, 3, 4], \"volume\": [1, null, 2, 3]}, \"B\": "
                              "{\"dates\": [\"b\", \"c\", \"d\"], \"close\": [5, 6, 7]}}, "
                              "\"risk_free\": 0.01, \"levels\": [0.9], \"bounds\": [0.1, 0.9]}");
    fm_invest_prices_t *p = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_invest_prices_from_json(body, 1000, &p, &err), FM_OK);
    if (p) {
        FM_CHECK_INT(p->ndates, 3);
        FM_CHECK_STR(p->dates[0], "b");
        FM_CHECK(isnan(p->volume[0]));
    }
    fm_invest_prices_free(p);
    fm_invest_options_t o = defaults();
    FM_CHECK_INT(fm_invest_options_from_json(body, &o, &err), FM_OK);
    FM_CHECK_NEAR(o.risk_free, 0.01, 0);
    FM_CHECK_INT(o.nlevels, 1);
    FM_CHECK_NEAR(o.lower, 0.1, 0);
    cJSON_Delete(body);
    const char *bad_options[] = {"{\"risk_free\": \"x\"}", "{\"levels\": [0.3]}",
                                 "{\"levels\": []}",       "{\"bounds\": [0.5]}",
                                 "{\"model\": \"mlp\"}",   "{\"forecast\": 1}",
                                 "{\"min_train\": 10}",    "{\"seed\": 1.5}"};
    for (size_t i = 0; i < sizeof bad_options / sizeof bad_options[0]; i++) {
        body = cJSON_Parse(bad_options[i]);
        o = defaults();
        int rc = fm_invest_options_from_json(body, &o, &err);
        if (!rc) rc = fm_invest_options_check(&o, 4, &err);
        FM_CHECK_MSG(rc == FM_EINVAL, "options %zu accepted", i);
        cJSON_Delete(body);
    }
}

/* ---- Walk-forward -------------------------------------------------------------------------- */

static fm_invest_prices_t *synthetic(size_t n, uint64_t seed) {
    cJSON *body = cJSON_CreateObject();
    cJSON *s = cJSON_AddObjectToObject(body, "series");
    cJSON *a = cJSON_AddObjectToObject(s, "A");
    double *close = malloc(n * sizeof *close), *vol = malloc(n * sizeof *vol);
    fm_rng_t rng;
    fm_rng_seed(&rng, seed);
    close[0] = 100;
    for (size_t t = 0; t < n; t++) {
        if (t) close[t] = close[t - 1] * (1 + 0.01 * fm_rng_normal(&rng));
        vol[t] = 1000 + 100 * fm_rng_uniform(&rng);
    }
    cJSON_AddItemToObject(a, "close", cJSON_CreateDoubleArray(close, (int)n));
    cJSON_AddItemToObject(a, "volume", cJSON_CreateDoubleArray(vol, (int)n));
    fm_invest_prices_t *p = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_invest_prices_from_json(body, 0, &p, &err), FM_OK);
    cJSON_Delete(body);
    free(close);
    free(vol);
    return p;
}

static void test_no_look_ahead(void) {
    fm_invest_prices_t *p = synthetic(400, 9);
    if (!p) return;
    fm_invest_options_t o = defaults();
    o.min_train = 100;
    o.retrain_every = 30;
    fm_invest_forecast_t full, changed, leaked;
    fm_error_t err;
    FM_CHECK_INT(fm_invest_forecast_run(p, 0, &o, &full, &err), FM_OK);
    FM_CHECK_INT(full.n, 400 - 20 - 100 - 1);
    FM_CHECK_INT(full.day[0], 20 + 100 + 1);
    /* Change every price after day 250: no prediction of a day <= 250 may move. */
    const size_t cut = 250;
    for (size_t t = cut + 1; t < p->ndates; t++)
        p->close[t] *= 1.0 + 0.05 * (double)(t % 7) - 0.1;
    FM_CHECK_INT(fm_invest_forecast_run(p, 0, &o, &changed, &err), FM_OK);
    size_t same = 0, moved = 0;
    for (size_t i = 0; i < full.n && i < changed.n; i++) {
        if (full.day[i] <= cut) {
            same += full.p_up[i] == changed.p_up[i] && full.vol[i] == changed.vol[i] &&
                    full.majority[i] == changed.majority[i] &&
                    full.mean_abs[i] == changed.mean_abs[i];
            FM_CHECK_MSG(full.p_up[i] == changed.p_up[i], "day %zu moved", full.day[i]);
        } else {
            moved += full.p_up[i] != changed.p_up[i];
        }
    }
    FM_CHECK_INT(same, cut - full.day[0] + 1);
    FM_CHECK(moved > 0);
    /* The leak hook: the next return as a feature makes the direction all but certain. */
    o.leak_future = 1;
    FM_CHECK_INT(fm_invest_forecast_run(p, 0, &o, &leaked, &err), FM_OK);
    size_t hit_full = 0, hit_leak = 0;
    for (size_t i = 0; i < leaked.n; i++) {
        hit_full += (changed.p_up[i] >= 0.5) == (changed.up[i] != 0);
        hit_leak += (leaked.p_up[i] >= 0.5) == (leaked.up[i] != 0);
    }
    printf("  direction accuracy: %.3f honest, %.3f leaked\n", (double)hit_full / changed.n,
           (double)hit_leak / leaked.n);
    FM_CHECK((double)hit_leak / leaked.n > 0.8);
    FM_CHECK(hit_leak > hit_full + leaked.n / 5);
    fm_invest_forecast_deinit(&full);
    fm_invest_forecast_deinit(&changed);
    fm_invest_forecast_deinit(&leaked);
    /* Too short a history is refused, naming the ticker. */
    o.min_train = 1000;
    FM_CHECK_INT(fm_invest_forecast_run(p, 0, &o, &full, &err), FM_EDATA);
    FM_CHECK(strstr(err.msg, "'A'") != NULL);
    fm_invest_prices_free(p);
}

static void test_analyze_json(void) {
    fm_invest_prices_t *p = synthetic(300, 4);
    if (!p) return;
    fm_invest_options_t o = defaults();
    o.index = "B";
    cJSON *out = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_invest_analyze(p, &o, &out, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "index 'B'") != NULL);
    o.index = "A";
    o.portfolio = 1;
    o.frontier_points = 3;
    FM_CHECK_INT(fm_invest_analyze(p, &o, &out, &err), FM_OK);
    const cJSON *s = cJSON_GetObjectItem(cJSON_GetObjectItem(out, "statistics"), "A");
    FM_CHECK(cJSON_IsNumber(cJSON_GetObjectItem(s, "sharpe")));
    FM_CHECK_NEAR(cJSON_GetObjectItem(s, "beta")->valuedouble, 1.0, 1e-12);
    const cJSON *f = cJSON_GetObjectItem(cJSON_GetObjectItem(out, "portfolio"), "frontier");
    FM_CHECK_INT(cJSON_GetArraySize(f), 3);
    cJSON_Delete(out);
    fm_invest_prices_free(p);
}

FM_TEST_MAIN(FM_TEST_CASE(test_max_drawdown), FM_TEST_CASE(test_sharpe_sortino),
             FM_TEST_CASE(test_normal_quantile), FM_TEST_CASE(test_var_normal_closed_form),
             FM_TEST_CASE(test_var_historical), FM_TEST_CASE(test_qp_kkt),
             FM_TEST_CASE(test_max_sharpe_kkt), FM_TEST_CASE(test_read_layouts),
             FM_TEST_CASE(test_read_bad), FM_TEST_CASE(test_json_bodies),
             FM_TEST_CASE(test_no_look_ahead), FM_TEST_CASE(test_analyze_json))
