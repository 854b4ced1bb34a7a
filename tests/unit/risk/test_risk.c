/*
 * Unit tests of the risk area: the normal CDF and its inverse against published values, IRB
 * capital against values computed by hand (Python's statistics.NormalDist with the Basel
 * formulas, printed to 17 digits), the ziggurat's normals against the normal CDF, the Monte
 * Carlo sample's independence from the number of threads, the summary's estimators on a known
 * sample, and the readers' errors on bad input.
 */
#include "fm_test.h"
#include "risk/risk.h"

#include "core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_norm_cdf(void) {
    /* Values of 0.5 erfc(-x / sqrt 2) to 16 digits. */
    static const double x[] = {0.0, 1.0, 1.96, -1.96, -3.0, 3.0};
    static const double want[] = {0.5,
                                  0.8413447460685429,
                                  0.9750021048517795,
                                  0.024997895148220435,
                                  0.0013498980316300945,
                                  0.9986501019683699};
    double got[6];
    for (int i = 0; i < 6; i++)
        got[i] = fm_normal_cdf(x[i]);
    FM_CHECK(fm_test_max_diff("N(x) vs published values", got, want, 6) < 1e-12);
    /* The lower tail keeps its relative accuracy. */
    FM_CHECK_NEAR(fm_normal_cdf(-5.0) / 2.866515718791946e-07, 1.0, 1e-13);
    FM_CHECK_NEAR(fm_normal_cdf(-10.0) / 7.619853024160593e-24, 1.0, 1e-13);
}

static void test_norm_inv(void) {
    static const double p[] = {0.5, 0.975, 0.999, 0.01, 0.0003, 0.9, 1e-10};
    static const double want[] = {0.0,
                                  1.9599639845400536,
                                  3.090232306167813,
                                  -2.3263478740408408,
                                  -3.4316144036232696,
                                  1.2815515655446008,
                                  -6.361340902404056};
    double got[7];
    for (int i = 0; i < 7; i++)
        got[i] = fm_normal_quantile(p[i]);
    FM_CHECK(fm_test_max_diff("G(p) vs published values", got, want, 7) < 1e-12);
    /* Round trip over the whole range, including the far tail (r > 5 branch). */
    double worst = 0.0;
    for (double lp = -300.0; lp < -0.31; lp += 0.37) {
        double q = pow(10.0, lp), back = fm_normal_cdf(fm_normal_quantile(q));
        double rel = fabs(back / q - 1.0);
        if (rel > worst) worst = rel;
    }
    printf("  %-40s max rel diff = %.3g\n", "N(G(p)) vs p, p in [1e-300, 0.5)", worst);
    FM_CHECK(worst < 1e-12);
    FM_CHECK(isinf(fm_normal_quantile(0.0)) && fm_normal_quantile(0.0) < 0);
    FM_CHECK(isinf(fm_normal_quantile(1.0)) && fm_normal_quantile(1.0) > 0);
    FM_CHECK(isnan(fm_normal_quantile(-0.1)) && isnan(fm_normal_quantile(1.5)) &&
             isnan(fm_normal_quantile(NAN)));
}

static void test_irb(void) {
    /* K by hand: R, b and K of the Basel formulas with NormalDist (see the file comment). */
    struct {
        fm_risk_class_t c;
        double pd, lgd, m, k;
    } cases[] = {
        {FM_RISK_CORPORATE, 0.01, 0.45, 2.5, 0.07385344111364119},
        {FM_RISK_CORPORATE, 0.001, 0.45, 1.0, 0.01493601856074914},
        {FM_RISK_CORPORATE, 0.05, 0.4, 5.0, 0.1278431477970253},
        {FM_RISK_RETAIL_MORTGAGE, 0.02, 0.25, 0.0, 0.039082234786549534},
        {FM_RISK_RETAIL_REVOLVING, 0.03, 0.8, 0.0, 0.0549890103033371},
        {FM_RISK_RETAIL_OTHER, 0.015, 0.5, 0.0, 0.04744085383687211},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fm_risk_irb_t x;
        double m = cases[i].m > 0.0 ? cases[i].m : 2.5;
        fm_risk_irb(cases[i].c, cases[i].pd, cases[i].lgd, 1000.0, m, 0.0003, &x);
        FM_CHECK_NEAR(x.k, cases[i].k, 1e-12);
        FM_CHECK_NEAR(x.rwa, 12.5 * cases[i].k * 1000.0, 1e-8);
        FM_CHECK_NEAR(x.el, cases[i].pd * cases[i].lgd * 1000.0, 1e-12);
    }
    /* Retail has no maturity adjustment; corporate clamps M to [1, 5]. */
    fm_risk_irb_t a, b;
    fm_risk_irb(FM_RISK_RETAIL_OTHER, 0.015, 0.5, 1.0, 0.3, 0.0003, &a);
    fm_risk_irb(FM_RISK_RETAIL_OTHER, 0.015, 0.5, 1.0, 7.0, 0.0003, &b);
    FM_CHECK(a.k == b.k && a.b == 0.0);
    fm_risk_irb(FM_RISK_CORPORATE, 0.001, 0.45, 1.0, 0.25, 0.0003, &a);
    FM_CHECK_NEAR(a.k, 0.01493601856074914, 1e-12);
    /* The floor: PD 0.0001 is computed at 0.0003 (and at 0.0005 with the Basel III floor). */
    fm_risk_irb(FM_RISK_CORPORATE, 0.0001, 0.45, 1.0, 2.5, 0.0003, &a);
    fm_risk_irb(FM_RISK_CORPORATE, 0.0003, 0.45, 1.0, 2.5, 0.0003, &b);
    FM_CHECK(a.k == b.k && a.pd == 0.0003);
    fm_risk_irb(FM_RISK_CORPORATE, 0.0001, 0.45, 1.0, 2.5, 0.0005, &a);
    FM_CHECK(a.pd == 0.0005 && a.k > b.k);
    /* Correlation bounds and a defaulted exposure. */
    FM_CHECK_NEAR(fm_risk_irb_correlation(FM_RISK_CORPORATE, 1e-9), 0.24, 1e-6);
    FM_CHECK_NEAR(fm_risk_irb_correlation(FM_RISK_CORPORATE, 1.0), 0.12, 1e-12);
    FM_CHECK_NEAR(fm_risk_irb_correlation(FM_RISK_RETAIL_OTHER, 1.0), 0.03, 1e-12);
    fm_risk_irb(FM_RISK_CORPORATE, 1.0, 0.45, 100.0, 2.5, 0.0003, &a);
    FM_CHECK(a.k == 0.0 && a.el == 45.0);
}

/* The ziggurat is exercised through a portfolio whose one exposure has rho 0 and PD N(c): its
 * default frequency estimates N(c) for a range of c, tails included. */
static fm_risk_portfolio_t *homogeneous(size_t n, double pd, double lgd) {
    fm_risk_input_t in;
    fm_risk_input_defaults(&in);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "pd", pd);
        cJSON_AddNumberToObject(o, "lgd", lgd);
        cJSON_AddNumberToObject(o, "ead", 1.0);
        cJSON_AddStringToObject(o, "segment", i % 2 ? "odd" : "even");
        cJSON_AddItemToArray(arr, o);
    }
    fm_risk_portfolio_t *p = NULL;
    fm_error_t err;
    int rc = fm_risk_portfolio_from_json(arr, &in, &p, &err);
    FM_CHECK_MSG(rc == 0, "%s", err.msg);
    cJSON_Delete(arr);
    return p;
}

static void test_normals(void) {
    static const double c[] = {-4.0, -3.5, -2.5, -1.0, 0.0, 0.7, 2.0, 3.3};
    fm_risk_settings_t s;
    fm_risk_settings_defaults(&s);
    s.pd_floor = 1e-5;
    fm_risk_mc_options_t o;
    fm_risk_mc_options_defaults(&o);
    o.scenarios = 4000000;
    o.threads = 2;
    o.rho = 0.0;
    double *l = malloc(o.scenarios * sizeof *l);
    for (size_t j = 0; j < sizeof c / sizeof c[0]; j++) {
        double pd = fm_normal_cdf(c[j]);
        fm_risk_portfolio_t *p = homogeneous(1, pd, 1.0);
        o.seed = 7 + j;
        fm_error_t err;
        FM_CHECK(fm_risk_mc_losses(p, &s, &o, l, &err) == 0);
        double hits = 0.0;
        for (uint64_t k = 0; k < o.scenarios; k++)
            hits += l[k];
        double freq = hits / (double)o.scenarios;
        double se = sqrt(pd * (1.0 - pd) / (double)o.scenarios);
        printf("  P(eps < %5.2f): %.6g vs %.6g (%.2f se)\n", c[j], freq, pd, (freq - pd) / se);
        FM_CHECK(fabs(freq - pd) < 4.5 * se);
        fm_risk_portfolio_free(p);
    }
    free(l);
}

static void test_threads_deterministic(void) {
    fm_risk_portfolio_t *p = homogeneous(300, 0.02, 0.45);
    fm_risk_settings_t s;
    fm_risk_settings_defaults(&s);
    fm_risk_mc_options_t o;
    fm_risk_mc_options_defaults(&o);
    o.scenarios = 10 * FM_RISK_MC_BLOCK + 17; /* a partial last block */
    o.seed = 42;
    double *l1 = malloc(o.scenarios * sizeof *l1), *l3 = malloc(o.scenarios * sizeof *l3);
    double *l8 = malloc(o.scenarios * sizeof *l8);
    fm_error_t err;
    o.threads = 1;
    FM_CHECK(fm_risk_mc_losses(p, &s, &o, l1, &err) == 0);
    o.threads = 3;
    FM_CHECK(fm_risk_mc_losses(p, &s, &o, l3, &err) == 0);
    o.threads = 8;
    FM_CHECK(fm_risk_mc_losses(p, &s, &o, l8, &err) == 0);
    FM_CHECK(!memcmp(l1, l3, o.scenarios * sizeof *l1));
    FM_CHECK(!memcmp(l1, l8, o.scenarios * sizeof *l1));
    o.seed = 43;
    FM_CHECK(fm_risk_mc_losses(p, &s, &o, l3, &err) == 0);
    FM_CHECK(memcmp(l1, l3, o.scenarios * sizeof *l1) != 0);
    /* Bad options are refused with a message naming them. */
    o.threads = 0;
    FM_CHECK(fm_risk_mc_losses(p, &s, &o, l3, &err) == FM_EINVAL && strstr(err.msg, "threads"));
    o.threads = 1;
    o.rho = 1.0;
    FM_CHECK(fm_risk_mc_losses(p, &s, &o, l3, &err) == FM_EINVAL && strstr(err.msg, "rho"));
    o.rho = NAN;
    o.levels[0] = 1.0;
    FM_CHECK(fm_risk_mc_losses(p, &s, &o, l3, &err) == FM_EINVAL && strstr(err.msg, "level"));
    free(l1);
    free(l3);
    free(l8);
    fm_risk_portfolio_free(p);
}

static void test_summary(void) {
    /* Losses 1..1000: VaR_0.99 = L_(990) = 990; ES = mean of 991..1000 = 995.5. */
    size_t n = 1000;
    double *l = malloc(n * sizeof *l);
    for (size_t i = 0; i < n; i++)
        l[i] = (double)(n - i);
    double levels[] = {0.99, 0.9995};
    fm_risk_mc_result_t r;
    fm_error_t err;
    FM_CHECK(fm_risk_mc_summarise(l, n, levels, 2, &r, &err) == 0);
    FM_CHECK_NEAR(r.mean, 500.5, 1e-12);
    FM_CHECK_NEAR(r.levels[0].var, 990.0, 0.0);
    FM_CHECK_NEAR(r.levels[0].es, 995.5, 1e-9);
    /* q S = 999.5: k = 1000, ES = (0 + 0.5 x 1000) / 0.5 = 1000. */
    FM_CHECK_NEAR(r.levels[1].var, 1000.0, 0.0);
    FM_CHECK_NEAR(r.levels[1].es, 1000.0, 1e-9);
    /* The 95% interval: 990 -+ 1.96 sqrt(9.9) = [983.8, 996.2]: L_(983), L_(998). */
    FM_CHECK_NEAR(r.levels[0].var_lo, 983.0, 0.0);
    FM_CHECK_NEAR(r.levels[0].var_hi, 998.0, 0.0);
    FM_CHECK(r.levels[0].es_std_error > 0.0);
    free(l);
}

static void test_csv_errors(void) {
    fm_risk_input_t in;
    fm_risk_input_defaults(&in);
    struct {
        const char *text, *want;
    } cases[] = {
        {"", "empty"},
        {"id,pd,ead\n", "no exposures"},
        {"id,pd,ead\na,0.5\n", "2 fields"},
        {"id,pd,ead\na,1.5,10\n", "'pd' = 1.5"},
        {"id,pd,ead\na,abc,10\n", "'pd' = 'abc'"},
        {"id,pd\na,0.1\n", "no value for 'ead'"},
        {"id,pd,ead,asset_class\na,0.1,1,sovereign\n", "sovereign"},
        {"id,pd,ead,lgd\na,0.1,1,-0.2\n", "'lgd'"},
        {"id,pd,ead,maturity\na,0.1,1,0\n", "'maturity'"},
        {"id,pd,ead\n\"a,0.1,1\n", "quote"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fm_csv_t *csv = NULL;
        fm_error_t err;
        fm_risk_portfolio_t *p = NULL;
        FM_CHECK(fm_csv_open_memory(cases[i].text, strlen(cases[i].text), "body", &csv, &err) == 0);
        int rc = fm_risk_portfolio_read_csv(csv, &in, NULL, 0, &p, &err);
        FM_CHECK_MSG(rc < 0 && strstr(err.msg, cases[i].want), "case %zu: rc %d '%s'", i, rc,
                     err.msg);
        FM_CHECK(p == NULL);
        fm_csv_close(csv);
    }
    /* Defaults, the PDs given apart, segments and the limit. */
    const char *text = "id,segment,ead,asset_class\nx,sme,100,corporate\ny,cards,50,revolving\n"
                       "z,sme,10,\n";
    double pd[] = {0.01, 0.02, 0.03};
    fm_csv_t *csv = NULL;
    fm_error_t err;
    fm_risk_portfolio_t *p = NULL;
    FM_CHECK(fm_csv_open_memory(text, strlen(text), "body", &csv, &err) == 0);
    FM_CHECK(fm_risk_portfolio_read_csv(csv, &in, pd, 3, &p, &err) == 0);
    fm_csv_close(csv);
    if (p) {
        FM_CHECK_INT(p->n, 3);
        FM_CHECK_INT(p->segments.count, 2);
        FM_CHECK(p->exposures[1].asset_class == FM_RISK_RETAIL_REVOLVING);
        FM_CHECK(p->exposures[2].asset_class == FM_RISK_CORPORATE);
        FM_CHECK(p->exposures[2].pd == 0.03 && p->exposures[2].lgd == 0.45);
        FM_CHECK_STR(p->exposures[2].id, "z");
    }
    fm_risk_portfolio_free(p);
    in.max_exposures = 2;
    FM_CHECK(fm_csv_open_memory(text, strlen(text), "body", &csv, &err) == 0);
    FM_CHECK(fm_risk_portfolio_read_csv(csv, &in, pd, 3, &p, &err) == FM_ELIMIT);
    fm_csv_close(csv);
    in.max_exposures = 0;
    FM_CHECK(fm_csv_open_memory(text, strlen(text), "body", &csv, &err) == 0);
    FM_CHECK(fm_risk_portfolio_read_csv(csv, &in, pd, 2, &p, &err) == FM_EINVAL);
    fm_csv_close(csv);
}

static void test_json_errors(void) {
    fm_risk_input_t in;
    fm_risk_input_defaults(&in);
    const char *bad[] = {"{}",
                         "[]",
                         "[1]",
                         "[{\"pd\": \"x\", \"ead\": 1}]",
                         "[{\"pd\": 0.1, \"ead\": -1}]",
                         "[{\"pd\": 0.1}]",
                         "[{\"pd\": 0.1, \"ead\": 1, \"segment\": 3}]",
                         "[{\"pd\": 0.1, \"ead\": 1, \"rho\": 1}]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = cJSON_Parse(bad[i]);
        fm_risk_portfolio_t *p = NULL;
        fm_error_t err;
        int rc = fm_risk_portfolio_from_json(j, &in, &p, &err);
        FM_CHECK_MSG(rc == FM_EDATA && p == NULL, "case %zu: rc %d", i, rc);
        cJSON_Delete(j);
    }
}

static void test_analyse(void) {
    fm_risk_portfolio_t *p = homogeneous(10, 0.01, 0.45);
    fm_risk_settings_t s;
    fm_risk_settings_defaults(&s);
    fm_risk_mc_options_t o;
    fm_risk_mc_options_defaults(&o);
    o.scenarios = 5000;
    cJSON *out = NULL;
    fm_error_t err;
    FM_CHECK(fm_risk_analyse(p, &s, &o, 1, &out, &err) == 0);
    const cJSON *t = cJSON_GetObjectItem(out, "totals");
    FM_CHECK_NEAR(cJSON_GetObjectItem(t, "el")->valuedouble, 10 * 0.01 * 0.45, 1e-12);
    FM_CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(out, "segments")), 2);
    FM_CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(out, "per_exposure")), 10);
    FM_CHECK(cJSON_GetObjectItem(out, "monte_carlo") != NULL);
    cJSON_Delete(out);
    s.pd_floor = 0.0;
    FM_CHECK(fm_risk_analyse(p, &s, &o, 0, &out, &err) == FM_EINVAL && out == NULL);
    fm_risk_portfolio_free(p);
}

FM_TEST_MAIN(FM_TEST_CASE(test_norm_cdf), FM_TEST_CASE(test_norm_inv), FM_TEST_CASE(test_irb),
             FM_TEST_CASE(test_normals), FM_TEST_CASE(test_threads_deterministic),
             FM_TEST_CASE(test_summary), FM_TEST_CASE(test_csv_errors),
             FM_TEST_CASE(test_json_errors), FM_TEST_CASE(test_analyse))
