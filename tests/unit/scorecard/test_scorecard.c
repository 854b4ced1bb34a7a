/*
 * Tests of the scorecard area: scaling and points on a worked example (PDO 20, 600 points at
 * 50:1: factor 20 / ln 2 = 28.8539, offset 487.1229, values computed by hand / Python and written
 * here), the WoE and IV formulas with the 0.5 smoothing, binning of a synthetic feature (WoE
 * monotonic in the direction of the correlation, every value bin holding min_share of the rows,
 * WoE of each bin recomputed from its counts, categories grouped), logistic regression against
 * the closed form of a one-feature problem, a fitted card (points add up to offset - factor *
 * logit(PD), the float model agrees, reasons and rules), decision policy parsing with bad input,
 * and a damaged stored card refused.
 */
#include "core/buf.h"
#include "core/rng.h"
#include "fm_test.h"
#include "fm_test_frame.h"
#include "scorecard/scorecard.h"

static void test_scaling_worked_example(void) {
    fm_scorecard_scaling_t s;
    fm_error_t err;
    FM_CHECK_INT(fm_scorecard_scaling(20, 600, 50, &s, &err), 0);
    FM_CHECK_NEAR(s.factor, 28.85390081777927, 1e-12);
    FM_CHECK_NEAR(s.offset, 487.1228762045055, 1e-10);
    FM_CHECK_NEAR(s.factor, 28.8539, 1e-4);
    FM_CHECK_NEAR(s.offset, 487.1229, 1e-4);
    /* One bin of a three-feature card: beta_j = -0.8, WoE 0.5, beta_0 = -1.2:
     * -(beta_j WoE + beta_0 / 3) * factor + offset / 3 = 185.45741272239192. */
    FM_CHECK_NEAR(fm_scorecard_bin_points(-0.8, 0.5, -1.2, 3, &s), 185.45741272239192, 1e-9);
    /* The defaults: 600 at 19:1, PDO 50. */
    FM_CHECK_INT(fm_scorecard_scaling(50, 600, 19, &s, &err), 0);
    FM_CHECK_NEAR(s.factor, 50 / log(2.0), 1e-12);
    FM_CHECK_NEAR(s.offset, 600 - 50 / log(2.0) * log(19.0), 1e-10);
    FM_CHECK_INT(fm_scorecard_scaling(0, 600, 19, &s, &err), FM_EINVAL);
    FM_CHECK_INT(fm_scorecard_scaling(50, 600, -1, &s, &err), FM_EINVAL);
    FM_CHECK_INT(fm_scorecard_scaling(50, NAN, 19, &s, &err), FM_EINVAL);
}

static void test_woe_formula(void) {
    FM_CHECK_NEAR(fm_scorecard_woe(30, 10, 100, 50), 0.4054651081081642, 1e-14);
    FM_CHECK_NEAR(fm_scorecard_iv_term(30, 10, 100, 50), 0.040546510810816415, 1e-14);
    /* An empty good cell counts 0.5. */
    FM_CHECK_NEAR(fm_scorecard_woe(0, 7, 100, 50), -3.332204510175204, 1e-13);
}

/* A synthetic credit file: x numeric with bad more likely for large x and some missing values,
 * c categorical with rare categories, k constant. */
static void sample_text(fm_buf_t *b) {
    fm_buf_puts(b, "x,c,k,y\n");
    fm_rng_t rng;
    fm_rng_seed(&rng, 7);
    static const char *cats[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 2000; i++) {
        double x = fm_rng_uniform(&rng) * 100;
        int ci = i % 50 == 0 ? 3 + (i / 50) % 2 : i % 3; /* d and e rare (1% each) */
        double z = -2 + 0.04 * x + (ci == 1 ? 0.8 : 0) + (fm_rng_uniform(&rng) - 0.5) * 3;
        if (i % 40 == 7)
            fm_buf_printf(b, "NA,%s,1,%s\n", cats[ci], z > 0.5 ? "bad" : "good");
        else
            fm_buf_printf(b, "%.3f,%s,1,%s\n", x, cats[ci], z > 0 ? "bad" : "good");
    }
}

typedef struct sample {
    fm_frame_t *frame;
    int32_t *label;
} sample_t;

static int sample_open(sample_t *s) {
    fm_buf_t text = FM_BUF_INIT;
    sample_text(&text);
    s->frame = fm_test_frame_from_text(text.data, NULL);
    fm_buf_free(&text);
    if (!s->frame) return -1;
    const fm_column_t *y = &s->frame->columns[3];
    s->label = malloc(s->frame->nrows * sizeof *s->label);
    for (size_t r = 0; r < s->frame->nrows; r++)
        s->label[r] = !strcmp(fm_strdict_get(&y->dict, y->codes[r]), "bad");
    return 0;
}

static void sample_close(sample_t *s) {
    fm_frame_free(s->frame);
    free(s->label);
}

static void test_binning(void) {
    sample_t s;
    if (sample_open(&s)) return;
    fm_scorecard_binning_t o;
    fm_scorecard_binning_defaults(&o);
    o.min_share = 0.08;
    fm_scorecard_feature_t f;
    fm_error_t err;
    FM_CHECK_INT(fm_scorecard_bin_feature(s.frame, 0, s.label, NULL, 0, &o, &f, &err), 0);
    double goods = 0, bads = 0;
    for (size_t r = 0; r < s.frame->nrows; r++) {
        bads += s.label[r];
        goods += !s.label[r];
    }
    FM_CHECK(f.direction == -1); /* bad rises with x: WoE falls */
    FM_CHECK(f.nbins >= 3 && f.bins[f.nbins - 1].missing);
    double iv = 0, rows = 0;
    for (size_t b = 0; b < f.nbins; b++) {
        const fm_scorecard_bin_t *bin = &f.bins[b];
        double g = bin->good ? bin->good : 0.5, d = bin->bad ? bin->bad : 0.5;
        FM_CHECK_NEAR(bin->woe, log((g / goods) / (d / bads)), 1e-12);
        iv += (g / goods - d / bads) * log((g / goods) / (d / bads));
        rows += bin->good + bin->bad;
        if (bin->missing) continue;
        FM_CHECK_MSG(bin->good + bin->bad >= o.min_share * s.frame->nrows, "bin %zu has %g rows", b,
                     bin->good + bin->bad);
        /* Recount the bin from the rows, (lower, upper]. */
        double g2 = 0, b2 = 0;
        for (size_t r = 0; r < s.frame->nrows; r++) {
            double x = s.frame->columns[0].values[r];
            if (!isnan(x) && x > bin->lower && x <= bin->upper) {
                b2 += s.label[r];
                g2 += !s.label[r];
            }
        }
        FM_CHECK(g2 == bin->good && b2 == bin->bad);
        if (b + 1 < f.nbins && !f.bins[b + 1].missing)
            FM_CHECK_MSG(f.bins[b + 1].woe < bin->woe, "WoE not decreasing at bin %zu", b);
    }
    FM_CHECK_NEAR(f.iv, iv, 1e-12);
    FM_CHECK(rows == (double)s.frame->nrows);
    FM_CHECK(isinf(f.bins[0].lower) && isinf(f.bins[f.nbins - 2].upper));
    fm_scorecard_feature_deinit(&f);
    /* Categories: d and e (1% each) form the "other" group, which is below 8% and joins the
     * group of closest bad rate. Every category is in exactly one bin. */
    FM_CHECK_INT(fm_scorecard_bin_feature(s.frame, 1, s.label, NULL, 0, &o, &f, &err), 0);
    size_t seen = 0;
    for (size_t b = 0; b < f.nbins; b++)
        seen += f.bins[b].ncategories;
    FM_CHECK_INT(seen, 5);
    FM_CHECK_INT(f.nbins, 3);
    fm_scorecard_feature_deinit(&f);
    /* A constant column: a single bin. */
    FM_CHECK_INT(fm_scorecard_bin_feature(s.frame, 2, s.label, NULL, 0, &o, &f, &err), 0);
    FM_CHECK_INT(f.nbins, 1);
    fm_scorecard_feature_deinit(&f);
    /* Bad options. */
    o.min_share = 0.7;
    FM_CHECK_INT(fm_scorecard_bin_feature(s.frame, 0, s.label, NULL, 0, &o, &f, &err), FM_EINVAL);
    o.min_share = 0.05;
    o.initial_bins = 1;
    FM_CHECK_INT(fm_scorecard_bin_feature(s.frame, 0, s.label, NULL, 0, &o, &f, &err), FM_EINVAL);
    sample_close(&s);
}

static void test_logistic_closed_form(void) {
    /* One binary feature: the MLE is the log odds of each group: beta_0 = ln(3/7) (x = 0: 3 of
     * 10 are 1), beta_0 + beta_1 = ln(6/4). */
    double x[20], y[20], beta[2];
    for (int i = 0; i < 20; i++) {
        x[i] = i >= 10;
        y[i] = i < 10 ? i < 3 : i < 16;
    }
    fm_error_t err;
    int it = 0;
    FM_CHECK_INT(fm_scorecard_logistic(beta, x, y, 20, 1, 0.0, &it, &err), 0);
    FM_CHECK_NEAR(beta[0], log(3.0 / 7.0), 1e-9);
    FM_CHECK_NEAR(beta[1], log(6.0 / 4.0) - log(3.0 / 7.0), 1e-9);
    FM_CHECK(it > 0 && it < 100);
    double one[3] = {1, 1, 1};
    FM_CHECK_INT(fm_scorecard_logistic(beta, x, one, 3, 1, 0.0, NULL, &err), FM_EDATA);
}

static void test_fit_and_score(void) {
    sample_t s;
    if (sample_open(&s)) return;
    fm_error_t err;
    fm_decision_policy_t policy;
    cJSON *pj = cJSON_Parse("{\"approve_at\": 620, \"decline_below\": 560, \"rules\": ["
                            "{\"feature\": \"x\", \"op\": \">\", \"value\": 99, \"decision\": "
                            "\"decline\", \"reason\": \"x too large\"},"
                            "{\"feature\": \"c\", \"op\": \"==\", \"value\": \"e\", \"decision\": "
                            "\"refer\"}]}");
    FM_CHECK_INT(fm_decision_policy_from_json(pj, NULL, &policy, &err), 0);
    cJSON_Delete(pj);
    fm_scorecard_options_t o;
    fm_scorecard_options_defaults(&o);
    o.policy = &policy;
    size_t cols[3] = {0, 1, 2};
    const char *classes[2] = {"good", "bad"};
    fm_model_t *m = NULL;
    FM_CHECK_INT(fm_scorecard_fit(s.frame, cols, 3, s.label, classes, "y", &o, &m, &err), 0);
    fm_scorecard_t *sc = NULL;
    if (m) FM_CHECK_INT(fm_scorecard_from_model(m, &sc, &err), 0);
    if (!sc) {
        fm_model_free(m);
        fm_decision_policy_deinit(&policy);
        sample_close(&s);
        return;
    }
    FM_CHECK_INT(sc->nfeatures, 2); /* k, constant, is dropped */
    FM_CHECK_INT(sc->policy.nrules, 2);
    size_t nf = m->prep->nfeatures, n = s.frame->nrows;
    double *x = malloc(n * nf * sizeof *x), *pred = malloc(n * sizeof *pred);
    FM_CHECK_INT(fm_prep_transform(m->prep, s.frame, NULL, n, x, &err), 0);
    FM_CHECK_INT(fm_model_predict_frame(m, s.frame, pred, &err), 0);
    double points[2], worst_relation = 0, worst_model = 0;
    size_t bins[2];
    size_t declined_by_rule = 0;
    for (size_t r = 0; r < n; r++) {
        fm_raw_value_t rv[2] = {
            {FM_RAW_NUMBER, s.frame->columns[0].values[r], NULL, 0},
            {FM_RAW_STRING, 0,
             fm_strdict_get(&s.frame->columns[1].dict, s.frame->columns[1].codes[r]), 1}};
        fm_scorecard_result_t res = {.points = points, .bin = bins};
        FM_CHECK_INT(fm_scorecard_score(sc, x + r * nf, rv, &res, &err), 0);
        double relation = sc->scaling.offset - sc->scaling.factor * log(res.pd / (1 - res.pd));
        if (fabs(relation - res.score) > worst_relation)
            worst_relation = fabs(relation - res.score);
        if (fabs(res.pd - pred[r]) > worst_model) worst_model = fabs(res.pd - pred[r]);
        FM_CHECK_NEAR(points[0] + points[1], res.score, 1e-9);
        int x_large = s.frame->columns[0].values[r] > 99;
        int is_e = !strcmp(rv[1].str, "e");
        fm_decision_t want = x_large || res.score < 560 ? FM_DECISION_DECLINE
                             : is_e || res.score < 620  ? FM_DECISION_REFER
                                                        : FM_DECISION_APPROVE;
        FM_CHECK(res.decision == want);
        declined_by_rule += x_large;
        /* Reasons: shortfalls in non-increasing order, positive. */
        for (size_t i = 0; i < res.nreasons; i++) {
            size_t k = res.reasons[i];
            double gap = sc->features[k].max_points - points[k];
            FM_CHECK(gap > 0);
            if (i) {
                size_t j = res.reasons[i - 1];
                FM_CHECK(sc->features[j].max_points - points[j] >= gap);
            }
        }
    }
    printf("  total points vs offset - factor logit(PD): max |diff| = %.3g\n", worst_relation);
    printf("  scorecard PD vs the model's float prediction: max |diff| = %.3g\n", worst_model);
    FM_CHECK(worst_relation < 1e-9);
    FM_CHECK(worst_model < 1e-5);
    FM_CHECK(declined_by_rule > 0);
    /* A rule on text that is not a number is an error naming the field. */
    fm_raw_value_t bad[2] = {{FM_RAW_STRING, 0, "lots", 4}, {FM_RAW_MISSING, 0, NULL, 0}};
    fm_scorecard_result_t res = {.points = points, .bin = bins};
    FM_CHECK_INT(fm_scorecard_score(sc, x, bad, &res, &err), FM_EDATA);
    FM_CHECK(strstr(err.msg, "'x'") != NULL);
    /* Tables. */
    fm_buf_t csv = FM_BUF_INIT;
    FM_CHECK_INT(fm_scorecard_table_csv(sc, &csv), 0);
    FM_CHECK(csv.data && !strncmp(csv.data, "feature,type,iv,coefficient,bin,", 32));
    fm_buf_free(&csv);
    /* A damaged card: one bin's points changed. */
    cJSON *card = cJSON_GetObjectItem(m->info, "scorecard");
    cJSON *bin0 = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(card, "features"), 0), "bins"),
        0);
    double was = cJSON_GetObjectItem(bin0, "points")->valuedouble;
    cJSON_SetNumberValue(cJSON_GetObjectItem(bin0, "points"), was + 1);
    fm_scorecard_t *broken = NULL;
    FM_CHECK_INT(fm_scorecard_from_model(m, &broken, &err), FM_EFORMAT);
    FM_CHECK(broken == NULL && strstr(err.msg, "points") != NULL);
    cJSON_DeleteItemFromObject(m->info, "scorecard");
    FM_CHECK_INT(fm_scorecard_from_model(m, &broken, &err), FM_EDATA);
    free(x);
    free(pred);
    fm_scorecard_free(sc);
    fm_model_free(m);
    fm_decision_policy_deinit(&policy);
    sample_close(&s);
}

static void test_policy_json(void) {
    fm_error_t err;
    fm_decision_policy_t p, d = {600, 500, 0, NULL};
    const char *bad[] = {
        "[]",
        "{\"approve_at\": 500, \"decline_below\": 600}",
        "{\"approve_at\": \"x\"}",
        "{\"extra\": 1}",
        "{\"rules\": {}}",
        "{\"rules\": [{\"feature\": \"age\", \"op\": \"<<\", \"value\": 18, \"decision\": "
        "\"decline\"}]}",
        "{\"rules\": [{\"feature\": \"age\", \"op\": \"<\", \"value\": \"18\", \"decision\": "
        "\"decline\"}]}",
        "{\"rules\": [{\"feature\": \"age\", \"op\": \"<\", \"value\": 18, \"decision\": "
        "\"approve\"}]}",
        "{\"rules\": [{\"feature\": \"\", \"op\": \"<\", \"value\": 18, \"decision\": "
        "\"decline\"}]}",
        "{\"rules\": [{\"feature\": \"age\", \"op\": \"missing\", \"value\": 1, \"decision\": "
        "\"refer\"}]}",
        "{\"rules\": [{\"feature\": \"age\", \"op\": \"<\", \"decision\": \"refer\", \"x\": 1}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = cJSON_Parse(bad[i]);
        int rc = fm_decision_policy_from_json(j, &d, &p, &err);
        FM_CHECK_MSG(rc == FM_EINVAL, "policy %s: %d", bad[i], rc);
        FM_CHECK(p.rules == NULL);
        cJSON_Delete(j);
    }
    cJSON *j = cJSON_Parse("{\"rules\": [{\"feature\": \"age\", \"op\": \"<\", \"value\": 18, "
                           "\"decision\": \"decline\"}, {\"feature\": \"job\", \"op\": "
                           "\"missing\", \"decision\": \"refer\"}]}");
    FM_CHECK_INT(fm_decision_policy_from_json(j, &d, &p, &err), 0);
    cJSON_Delete(j);
    FM_CHECK(p.approve_at == 600 && p.decline_below == 500 && p.nrules == 2);
    FM_CHECK_STR(p.rules[0].reason, "age < 18");
    int fires;
    fm_raw_value_t v = {FM_RAW_NUMBER, 17, NULL, 0};
    FM_CHECK_INT(fm_decision_rule_fires(&p.rules[0], &v, &fires, &err), 0);
    FM_CHECK(fires);
    v.number = 18;
    FM_CHECK_INT(fm_decision_rule_fires(&p.rules[0], &v, &fires, &err), 0);
    FM_CHECK(!fires);
    v = (fm_raw_value_t){FM_RAW_STRING, 0, " 16 ", 4};
    FM_CHECK_INT(fm_decision_rule_fires(&p.rules[0], &v, &fires, &err), 0);
    FM_CHECK(fires);
    v = (fm_raw_value_t){FM_RAW_STRING, 0, "NA", 2};
    FM_CHECK_INT(fm_decision_rule_fires(&p.rules[0], &v, &fires, &err), 0);
    FM_CHECK(!fires);
    FM_CHECK_INT(fm_decision_rule_fires(&p.rules[1], &v, &fires, &err), 0);
    FM_CHECK(fires);
    /* Round trip. */
    cJSON *back = fm_decision_policy_to_json(&p);
    fm_decision_policy_t q;
    FM_CHECK_INT(fm_decision_policy_from_json(back, NULL, &q, &err), 0);
    FM_CHECK(q.nrules == 2 && q.rules[1].op == FM_RULE_MISSING);
    cJSON_Delete(back);
    fm_decision_policy_deinit(&q);
    fm_decision_policy_deinit(&p);
    fm_decision_policy_deinit(NULL);
}

FM_TEST_MAIN(FM_TEST_CASE(test_scaling_worked_example), FM_TEST_CASE(test_woe_formula),
             FM_TEST_CASE(test_binning), FM_TEST_CASE(test_logistic_closed_form),
             FM_TEST_CASE(test_fit_and_score), FM_TEST_CASE(test_policy_json))
