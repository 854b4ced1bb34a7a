/*
 * The search specification: every field validated with a message naming field and value,
 * defaults, the candidates of grid and random search (counts, distinctness, determinism, the
 * family-aware grid), and the round trip through fm_search_spec_to_json.
 */
#include "fm_test.h"
#include "core/buf.h"
#include "search/search_internal.h"

#include <string.h>

static int parse_text(const char *text, fm_search_spec_t **spec, fm_error_t *err) {
    cJSON *json = cJSON_Parse(text);
    if (!json) return fm_error_set(err, FM_EPARSE, "test JSON does not parse: %s", text);
    int rc = fm_search_spec_parse(json, spec, err);
    cJSON_Delete(json);
    return rc;
}

/* Expects text to be refused with FM_EINVAL and a message containing each of the needles. */
static void expect_error(const char *text, const char *needle, const char *needle2) {
    fm_search_spec_t *spec = NULL;
    fm_error_t err;
    fm_error_clear(&err);
    int rc = parse_text(text, &spec, &err);
    FM_CHECK_MSG(rc == FM_EINVAL, "%s: rc %d (%s)", text, rc, err.msg);
    FM_CHECK(spec == NULL);
    FM_CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", text, err.msg,
                 needle);
    if (needle2)
        FM_CHECK_MSG(strstr(err.msg, needle2) != NULL, "%s: message '%s' lacks '%s'", text, err.msg,
                     needle2);
    fm_search_spec_free(spec);
}

static void test_errors_name_field_and_value(void) {
    expect_error("[1,2]", "search specification", "[1,2]");
    expect_error("{}", "target", "required");
    expect_error("{\"target\": 3}", "target", "3");
    expect_error("{\"target\": \"\"}", "target", "\"\"");
    expect_error("{\"target\": \"y\", \"colour\": 1}", "'colour'", "not a known field");
    expect_error("{\"target\": \"y\", \"task\": \"ranking\"}", "task", "ranking");
    expect_error("{\"target\": \"y\", \"metric\": \"f2\"}", "metric", "f2");
    expect_error("{\"target\": \"y\", \"task\": \"binary\", \"metric\": \"rmse\"}", "metric",
                 "binary");
    expect_error("{\"target\": \"y\", \"validation\": {\"folds\": 1}}", "validation.folds", "1");
    expect_error("{\"target\": \"y\", \"validation\": {\"folds\": 51}}", "validation.folds", "51");
    expect_error("{\"target\": \"y\", \"validation\": {\"folds\": 2.5}}", "validation.folds",
                 "2.5");
    expect_error("{\"target\": \"y\", \"validation\": {\"folds\": \"5\"}}", "validation.folds",
                 "\"5\"");
    expect_error("{\"target\": \"y\", \"validation\": {\"holdout\": 0.9}}", "validation.holdout",
                 "0.9");
    expect_error("{\"target\": \"y\", \"validation\": {\"holdout\": -0.1}}", "validation.holdout",
                 "-0.1");
    expect_error("{\"target\": \"y\", \"validation\": {\"scheme\": \"loo\"}}", "validation.scheme",
                 "loo");
    expect_error("{\"target\": \"y\", \"validation\": {\"scheme\": \"time\"}}",
                 "validation.time_column", "needs a time column");
    expect_error("{\"target\": \"y\", \"validation\": {\"time_column\": \"d\"}}",
                 "validation.time_column", "not \"time\"");
    expect_error("{\"target\": \"y\", \"validation\": {\"k\": 3}}", "validation", "'k'");
    expect_error("{\"target\": \"y\", \"validation\": 5}", "validation", "5");
    expect_error("{\"target\": \"y\", \"search\": {\"budget\": 0}}", "search.budget", "0");
    expect_error("{\"target\": \"y\", \"search\": {\"budget\": 10001}}", "search.budget", "10001");
    expect_error("{\"target\": \"y\", \"search\": {\"strategy\": \"bayes\"}}", "search.strategy",
                 "bayes");
    expect_error("{\"target\": \"y\", \"search\": {\"seed\": -1}}", "search.seed", "-1");
    expect_error("{\"target\": \"y\", \"space\": {\"family\": [\"svm\"]}}", "space.family[0]",
                 "svm");
    expect_error("{\"target\": \"y\", \"space\": {\"family\": []}}", "space.family", "[]");
    expect_error("{\"target\": \"y\", \"space\": {\"family\": \"mlp\"}}", "space.family",
                 "\"mlp\"");
    expect_error("{\"target\": \"y\", \"space\": {\"family\": [\"mlp\", \"mlp\"]}}",
                 "space.family[1]", "listed once");
    expect_error("{\"target\": \"y\", \"space\": {\"hidden\": [[32, 0]]}}", "space.hidden[0]",
                 "[32,0]");
    expect_error("{\"target\": \"y\", \"space\": {\"hidden\": [[]]}}", "space.hidden[0]", "[]");
    expect_error("{\"target\": \"y\", \"space\": {\"activation\": [\"softmax\"]}}",
                 "space.activation[0]", "softmax");
    expect_error("{\"target\": \"y\", \"space\": {\"optimizer\": [\"rmsprop\"]}}",
                 "space.optimizer[0]", "rmsprop");
    expect_error("{\"target\": \"y\", \"space\": {\"learning_rate\": [0]}}",
                 "space.learning_rate[0]", "0");
    expect_error("{\"target\": \"y\", \"space\": {\"batch\": [0.5]}}", "space.batch[0]", "0.5");
    expect_error("{\"target\": \"y\", \"space\": {\"max_depth\": [33]}}", "space.max_depth[0]",
                 "33");
    expect_error("{\"target\": \"y\", \"space\": {\"colour\": [1]}}", "space", "'colour'");
    expect_error("{\"target\": \"y\", \"search\": {\"strategy\": \"grid\"}, \"space\": "
                 "{\"learning_rate\": {\"min\": 0.001, \"max\": 0.1}}}",
                 "space.learning_rate", "strategy \"random\"");
    expect_error("{\"target\": \"y\", \"space\": {\"learning_rate\": {\"min\": 0.1, \"max\": "
                 "0.01}}}",
                 "space.learning_rate", "below min");
    expect_error("{\"target\": \"y\", \"space\": {\"l2\": {\"min\": 0, \"max\": 1, \"log\": "
                 "true}}}",
                 "space.l2", "log range needs min > 0");
    expect_error("{\"target\": \"y\", \"space\": {\"family\": {\"min\": 1, \"max\": 2}}}",
                 "space.family", "non-empty array");
    expect_error("{\"target\": \"y\", \"space\": {\"eta\": {\"min\": 0.1, \"max\": 0.2, "
                 "\"step\": 1}}}",
                 "space.eta", "'step'");
    expect_error("{\"target\": \"y\", \"space\": {}, \"model\": {}}", "model", "not both");
    expect_error("{\"target\": \"y\", \"model\": {\"family\": [\"mlp\"]}}", "model.family",
                 "[\"mlp\"]");
    expect_error("{\"target\": \"y\", \"model\": {\"epochs\": 0}}", "model.epochs", "0");
    expect_error("{\"target\": \"y\", \"drop\": \"a\"}", "drop", "\"a\"");
    expect_error("{\"target\": \"y\", \"drop\": [\"y\"]}", "drop", "target");
    expect_error("{\"target\": \"y\", \"pii\": [\"y\"]}", "pii", "target");
    expect_error("{\"target\": \"y\", \"pii\": [1]}", "pii[0]", "1");
    expect_error("{\"target\": \"y\", \"iv_threshold\": -1}", "iv_threshold", "-1");
    expect_error("{\"target\": \"y\", \"task\": \"regression\", \"iv_threshold\": 0.1}",
                 "iv_threshold", "binary");
    expect_error("{\"target\": \"y\", \"importance_repeats\": 101}", "importance_repeats", "101");
    expect_error("{\"target\": \"y\", \"threads\": 0}", "threads", "0");
    expect_error("{\"target\": \"y\", \"early_stopping\": {\"patience\": 0}}",
                 "early_stopping.patience", "0");
    /* Long values are shortened in the message. */
    char text[600];
    char longname[400];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    snprintf(text, sizeof text, "{\"target\": \"y\", \"metric\": \"%s\"}", longname);
    expect_error(text, "metric", "...");
}

static void test_defaults(void) {
    fm_search_spec_t *spec = NULL;
    fm_error_t err;
    FM_CHECK_INT(parse_text("{\"target\": \"Status\"}", &spec, &err), FM_OK);
    if (!spec) return;
    FM_CHECK_STR(fm_search_spec_target(spec), "Status");
    FM_CHECK_INT(spec->scheme, SCHEME_KFOLD);
    FM_CHECK_INT(spec->folds, 5);
    FM_CHECK_NEAR(spec->holdout, 0.2, 0);
    FM_CHECK_INT(spec->strategy, STRATEGY_RANDOM);
    FM_CHECK_INT(spec->budget, 20);
    FM_CHECK_INT(fm_search_spec_candidates(spec), 20);
    FM_CHECK_INT(spec->importance_repeats, 3);
    FM_CHECK_INT(spec->threads, 1);
    FM_CHECK_INT(spec->metric, METRIC_DEFAULT);
    /* The default space has logistic and mlp only. */
    for (size_t i = 0; i < spec->ncandidates; i++)
        FM_CHECK(!strcmp(spec->candidates[i].family, "logistic") ||
                 !strcmp(spec->candidates[i].family, "mlp"));
    fm_search_spec_free(spec);
    fm_search_spec_free(NULL);
}

/* The grid size of the example space in the issue: per family, the product of its keys. */
static void test_grid_is_family_aware(void) {
    const char *text =
        "{\"target\": \"y\", \"search\": {\"strategy\": \"grid\", \"budget\": 10000},"
        " \"space\": {\"family\": [\"logistic\", \"mlp\", \"gbt\"], \"hidden\": [[32, 16], [64]],"
        " \"activation\": [\"relu\", \"tanh\"], \"optimizer\": [\"adam\", \"sgd\"],"
        " \"learning_rate\": [0.001, 0.01], \"l2\": [1e-4, 1e-3], \"batch\": [32, 128],"
        " \"epochs\": [50, 200], \"max_depth\": [3, 4, 6], \"eta\": [0.05, 0.1],"
        " \"rounds\": [100, 300]}}";
    fm_search_spec_t *spec = NULL;
    fm_error_t err;
    FM_CHECK_INT(parse_text(text, &spec, &err), FM_OK);
    if (!spec) return;
    /* logistic: optimizer, lr, l2, batch, epochs = 2^5; mlp: also hidden, activation = 2^7;
     * gbt: depth, eta, rounds = 3 * 2 * 2. */
    size_t logistic = 32, mlp = 128, gbt = 12;
    FM_CHECK_INT(spec->ncandidates, logistic + mlp + gbt);
    /* Grid order: families in order, the last key fastest. */
    FM_CHECK_STR(spec->candidates[0].family, "logistic");
    FM_CHECK_INT(spec->candidates[0].epochs, 50);
    FM_CHECK_INT(spec->candidates[1].epochs, 200);
    FM_CHECK_INT(spec->candidates[2].batch, 128);
    FM_CHECK_STR(spec->candidates[logistic].family, "mlp");
    FM_CHECK_INT(spec->candidates[logistic].hidden[0], 32);
    FM_CHECK_INT(spec->candidates[logistic + 64].hidden[0], 64);
    FM_CHECK_STR(spec->candidates[logistic + mlp].family, "gbt");
    FM_CHECK_INT(spec->candidates[logistic + mlp].max_depth, 3);
    FM_CHECK_INT(spec->candidates[logistic + mlp].rounds, 100);
    FM_CHECK_INT(spec->candidates[logistic + mlp + 1].rounds, 300);
    /* No two candidates are the same. */
    int repeats = 0;
    for (size_t i = 0; i < spec->ncandidates; i++)
        for (size_t j = 0; j < i; j++) {
            cJSON *a = search_point_to_json(&spec->candidates[i], NULL);
            cJSON *b = search_point_to_json(&spec->candidates[j], NULL);
            repeats += cJSON_Compare(a, b, 1);
            cJSON_Delete(a);
            cJSON_Delete(b);
        }
    FM_CHECK_INT(repeats, 0);
    /* A gbt point shows only gbt keys. */
    cJSON *p = search_point_to_json(&spec->candidates[logistic + mlp], NULL);
    FM_CHECK(cJSON_GetObjectItem(p, "max_depth") && !cJSON_GetObjectItem(p, "hidden") &&
             !cJSON_GetObjectItem(p, "learning_rate"));
    cJSON_Delete(p);
    fm_search_spec_free(spec);
}

static void test_budget_limits_grid_and_random(void) {
    const char *grid = "{\"target\": \"y\", \"search\": {\"strategy\": \"grid\", \"budget\": 7, "
                       "\"seed\": 3}, \"space\": {\"family\": [\"mlp\"], \"learning_rate\": "
                       "[0.001, 0.01, 0.1], \"l2\": [0, 0.1, 1]}}";
    fm_search_spec_t *a = NULL, *b = NULL, *c = NULL;
    fm_error_t err;
    FM_CHECK_INT(parse_text(grid, &a, &err), FM_OK);
    FM_CHECK_INT(parse_text(grid, &b, &err), FM_OK);
    if (!a || !b) return;
    /* mlp grid: 3 hidden x 2 activation x 1 optimizer x 3 lr x 3 l2 x 2 batch x 1 epochs. */
    FM_CHECK_INT(a->ncandidates, 7);
    FM_CHECK(!memcmp(a->candidates, b->candidates, 7 * sizeof *a->candidates));
    fm_search_spec_free(b);
    b = NULL;
    /* Another seed draws other points. */
    const char *grid2 = "{\"target\": \"y\", \"search\": {\"strategy\": \"grid\", \"budget\": 7, "
                        "\"seed\": 4}, \"space\": {\"family\": [\"mlp\"], \"learning_rate\": "
                        "[0.001, 0.01, 0.1], \"l2\": [0, 0.1, 1]}}";
    FM_CHECK_INT(parse_text(grid2, &b, &err), FM_OK);
    if (b) FM_CHECK(memcmp(a->candidates, b->candidates, 7 * sizeof *a->candidates) != 0);
    /* Random search with ranges: within bounds, distinct, integers whole. */
    const char *random = "{\"target\": \"y\", \"search\": {\"budget\": 50}, \"space\": "
                         "{\"family\": [\"logistic\", \"gbt\"], \"learning_rate\": {\"min\": "
                         "1e-4, \"max\": 1e-1, \"log\": true}, \"rounds\": {\"min\": 10, "
                         "\"max\": 500}, \"eta\": {\"min\": 0.01, \"max\": 0.3}}}";
    FM_CHECK_INT(parse_text(random, &c, &err), FM_OK);
    if (c) {
        FM_CHECK_INT(c->ncandidates, 50);
        int families[2] = {0, 0};
        for (size_t i = 0; i < c->ncandidates; i++) {
            const search_point_t *p = &c->candidates[i];
            if (!strcmp(p->family, "gbt")) {
                families[1]++;
                FM_CHECK(p->rounds >= 10 && p->rounds <= 500);
                FM_CHECK(p->eta >= 0.01 && p->eta <= 0.3);
            } else {
                families[0]++;
                FM_CHECK(p->learning_rate >= 1e-4 && p->learning_rate <= 1e-1);
            }
        }
        /* A family is drawn uniformly first. */
        FM_CHECK(families[0] > 10 && families[1] > 10);
    }
    fm_search_spec_free(a);
    fm_search_spec_free(b);
    fm_search_spec_free(c);
}

static void test_small_grid_takes_every_point(void) {
    /* Random strategy over a grid smaller than the budget: every point once, in grid order. */
    const char *text = "{\"target\": \"y\", \"search\": {\"budget\": 50}, \"space\": {\"family\": "
                       "[\"logistic\"], \"learning_rate\": [0.01, 0.1], \"l2\": [0.1],"
                       " \"batch\": [16], \"epochs\": [10, 20]}}";
    fm_search_spec_t *spec = NULL;
    fm_error_t err;
    FM_CHECK_INT(parse_text(text, &spec, &err), FM_OK);
    if (!spec) return;
    FM_CHECK_INT(spec->ncandidates, 4);
    FM_CHECK_NEAR(spec->candidates[0].learning_rate, 0.01, 0);
    FM_CHECK_INT(spec->candidates[0].epochs, 10);
    FM_CHECK_INT(spec->candidates[1].epochs, 20);
    FM_CHECK_NEAR(spec->candidates[3].learning_rate, 0.1, 0);
    fm_search_spec_free(spec);
}

static void test_fixed_model(void) {
    const char *text = "{\"target\": \"y\", \"model\": {\"family\": \"mlp\", \"hidden\": [8, 4],"
                       " \"activation\": \"tanh\", \"learning_rate\": 0.01, \"epochs\": 30}}";
    fm_search_spec_t *spec = NULL;
    fm_error_t err;
    FM_CHECK_INT(parse_text(text, &spec, &err), FM_OK);
    if (!spec) return;
    FM_CHECK_INT(spec->ncandidates, 1);
    const search_point_t *p = &spec->candidates[0];
    FM_CHECK_STR(p->family, "mlp");
    FM_CHECK_INT(p->nhidden, 2);
    FM_CHECK_INT(p->hidden[1], 4);
    FM_CHECK_INT(p->activation, FM_ACT_TANH);
    FM_CHECK_INT(p->epochs, 30);
    FM_CHECK_INT(p->batch, 32); /* fm_train's default */
    fm_train_options_t o;
    fm_train_options_defaults(&o);
    search_point_to_options(p, FM_TASK_BINARY, &o);
    FM_CHECK_STR(o.family, "mlp");
    FM_CHECK_NEAR(o.optimizer.lr, 0.01, 0);
    FM_CHECK_INT(o.optimizer.kind, FM_OPT_ADAM);
    fm_search_spec_free(spec);
    /* "logistic" trains as the task's linear model. */
    search_point_t q;
    memset(&q, 0, sizeof q);
    strcpy(q.family, "logistic");
    FM_CHECK_STR(search_point_family(&q, FM_TASK_REGRESSION), "linear");
    FM_CHECK_STR(search_point_family(&q, FM_TASK_MULTICLASS), "softmax");
}

static void test_round_trip(void) {
    const char *texts[] = {
        "{\"target\": \"y\", \"positive\": \"bad\", \"metric\": \"logloss\", \"validation\": "
        "{\"scheme\": \"time\", \"time_column\": \"date\", \"holdout\": 0.1, "
        "\"valid_fraction\": 0.3, \"seed\": 9}, \"search\": {\"budget\": 12, \"seed\": 5}, "
        "\"space\": {\"family\": [\"mlp\", \"gbt\"], \"eta\": {\"min\": 0.01, \"max\": 0.2}}, "
        "\"drop\": [\"id\"], \"pii\": [\"name\"], \"iv_threshold\": 0.02, \"threads\": 2}",
        "{\"target\": \"y\", \"positive\": 1, \"model\": {\"family\": \"gbt\", \"rounds\": 50}}",
    };
    for (size_t t = 0; t < 2; t++) {
        fm_search_spec_t *a = NULL, *b = NULL;
        fm_error_t err;
        FM_CHECK_INT(parse_text(texts[t], &a, &err), FM_OK);
        if (!a) continue;
        cJSON *json = fm_search_spec_to_json(a);
        FM_CHECK_INT(fm_search_spec_parse(json, &b, &err), FM_OK);
        if (b) {
            FM_CHECK_INT(a->ncandidates, b->ncandidates);
            FM_CHECK(!memcmp(a->candidates, b->candidates, a->ncandidates * sizeof *a->candidates));
            cJSON *again = fm_search_spec_to_json(b);
            FM_CHECK(cJSON_Compare(json, again, 1));
            cJSON_Delete(again);
        }
        if (t == 1) FM_CHECK_STR(a->positive, "1");
        cJSON_Delete(json);
        fm_search_spec_free(a);
        fm_search_spec_free(b);
    }
}

static void test_metric_names(void) {
    search_metric_t m;
    FM_CHECK_INT(search_metric_parse("auc", &m), FM_OK);
    FM_CHECK_INT(m, METRIC_AUC);
    FM_CHECK(search_metric_parse("AUC", &m) != FM_OK);
    FM_CHECK(search_metric_higher_is_better(METRIC_AUC));
    FM_CHECK(!search_metric_higher_is_better(METRIC_LOGLOSS));
    FM_CHECK(!search_metric_higher_is_better(METRIC_RMSE));
    FM_CHECK(search_metric_fits(METRIC_ACCURACY, FM_TASK_MULTICLASS));
    FM_CHECK(!search_metric_fits(METRIC_AUC, FM_TASK_MULTICLASS));
    FM_CHECK(!search_metric_fits(METRIC_R2, FM_TASK_BINARY));
    FM_CHECK_INT(search_metric_default(FM_TASK_REGRESSION), METRIC_RMSE);
}

/* Truncated, mutated and oversized specifications are refused or parsed, never a crash (the
 * suite runs under AddressSanitizer). */
static void test_malformed_input(void) {
    const char *valid =
        "{\"target\": \"y\", \"positive\": \"bad\", \"metric\": \"auc\", \"validation\": "
        "{\"scheme\": \"kfold\", \"folds\": 5, \"holdout\": 0.2, \"seed\": 42}, \"search\": "
        "{\"strategy\": \"random\", \"budget\": 20, \"seed\": 42}, \"space\": {\"family\": "
        "[\"logistic\", \"mlp\", \"gbt\"], \"hidden\": [[32, 16], [64]], \"learning_rate\": "
        "{\"min\": 0.0001, \"max\": 0.1, \"log\": true}, \"rounds\": [100, 300]}, "
        "\"drop\": [\"id\"], \"pii\": [], \"iv_threshold\": null}";
    size_t n = strlen(valid);
    char *text = malloc(n + 1);
    fm_rng_t rng;
    fm_rng_seed(&rng, 99);
    int parsed = 0;
    for (size_t len = 0; len <= n; len++) {
        memcpy(text, valid, len);
        text[len] = '\0';
        fm_search_spec_t *spec = NULL;
        fm_error_t err;
        if (parse_text(text, &spec, &err) == FM_OK) parsed++;
        fm_search_spec_free(spec);
    }
    FM_CHECK_INT(parsed, 1); /* only the whole text */
    static const char junk[] = "{}[]\":,0-9.eEtrufalsn \\x";
    for (int round = 0; round < 3000; round++) {
        memcpy(text, valid, n + 1);
        for (int k = 0; k < 3; k++)
            text[fm_rng_below(&rng, n)] = junk[fm_rng_below(&rng, sizeof junk - 1)];
        fm_search_spec_t *spec = NULL;
        fm_error_t err;
        int rc = parse_text(text, &spec, &err);
        FM_CHECK(rc == FM_OK || (spec == NULL && err.msg[0] != '\0'));
        fm_search_spec_free(spec);
    }
    free(text);
    /* Oversized: more values than a key may list, an enormous budget, a hidden layer too many. */
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_puts(&b, "{\"target\": \"y\", \"space\": {\"l2\": [");
    for (int i = 0; i <= SEARCH_MAX_VALUES; i++)
        fm_buf_printf(&b, "%s%d", i ? "," : "", i);
    fm_buf_puts(&b, "]}}");
    expect_error(b.data, "space.l2", "at most 64 values");
    fm_buf_free(&b);
    expect_error("{\"target\": \"y\", \"search\": {\"budget\": 1e300}}", "search.budget", "1e+300");
    fm_buf_puts(&b, "{\"target\": \"y\", \"space\": {\"hidden\": [[");
    for (int i = 0; i < FM_NET_MAX_LAYERS; i++)
        fm_buf_printf(&b, "%s8", i ? "," : "");
    fm_buf_puts(&b, "]]}}");
    expect_error(b.data, "space.hidden[0]", "1 to 15 integers");
    fm_buf_free(&b);
}

FM_TEST_MAIN(FM_TEST_CASE(test_errors_name_field_and_value), FM_TEST_CASE(test_defaults),
             FM_TEST_CASE(test_grid_is_family_aware),
             FM_TEST_CASE(test_budget_limits_grid_and_random),
             FM_TEST_CASE(test_small_grid_takes_every_point), FM_TEST_CASE(test_fixed_model),
             FM_TEST_CASE(test_round_trip), FM_TEST_CASE(test_metric_names),
             FM_TEST_CASE(test_malformed_input))
