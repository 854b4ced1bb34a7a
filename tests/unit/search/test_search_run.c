/*
 * Running searches on a small synthetic set: the leaderboard (every candidate, means and standard
 * deviations recomputed from the folds, ranking, failures recorded), the events, the refit (the
 * same model fm_train fits on the training rows), the test metrics (recomputed), cancellation,
 * determinism, the IV threshold, other tasks, run-time errors, permutation importance, and the
 * `rows` option of fm_train that every fold relies on.
 */
#include "fm_test.h"
#include "core/buf.h"
#include "eval/metrics.h"
#include "search/search_internal.h"
#include "search_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 400 rows: x1 and grade carry the signal, noise does not; value is a regression target and
 * kind a three-class one; when is a date. */
static fm_frame_t *synthetic(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 2024);
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_puts(&b, "y,x1,grade,noise,value,kind,when\n");
    for (int i = 0; i < 400; i++) {
        double x1 = fm_rng_normal(&rng), noise = fm_rng_normal(&rng);
        int g = (int)fm_rng_below(&rng, 3);
        double z = 1.8 * x1 + (g == 0 ? 1.0 : g == 1 ? 0.0 : -1.0) + 0.8 * fm_rng_normal(&rng);
        const char *grade = g == 0 ? "A" : g == 1 ? "B" : "C";
        const char *kind = z > 0.8 ? "high" : z < -0.8 ? "low" : "mid";
        fm_buf_printf(&b, "%s,%.6f,%s,%.6f,%.6f,%s,2020-%02d-%02d\n", z > 0.6 ? "bad" : "good", x1,
                      grade, noise, 3.0 * z + 0.5 * fm_rng_normal(&rng), kind, 1 + i % 12,
                      1 + i % 28);
    }
    char *text = fm_buf_take(&b);
    fm_frame_t *frame = search_test_frame(text);
    free(text);
    return frame;
}

/* Records the events of a search. */
typedef struct events {
    int started, folds, done_ok, done_failed, refits, finished, features;
    double last_progress;
    int progress_backwards;
    int cancel_after_folds; /* > 0: set cancel when that many folds are done */
    atomic_int *cancel;
} events_t;

static void on_event(const cJSON *e, void *ctx) {
    events_t *ev = ctx;
    const char *type = cJSON_GetObjectItem(e, "type")->valuestring;
    double progress = cJSON_GetObjectItem(e, "progress")->valuedouble;
    if (progress < ev->last_progress || progress < 0 || progress > 1) ev->progress_backwards++;
    ev->last_progress = progress;
    if (!strcmp(type, "candidate_started")) ev->started++;
    if (!strcmp(type, "fold_done")) ev->folds++;
    if (!strcmp(type, "refit_started")) ev->refits++;
    if (!strcmp(type, "done")) ev->finished++;
    if (!strcmp(type, "features_done")) ev->features++;
    if (!strcmp(type, "candidate_done")) {
        if (!strcmp(cJSON_GetObjectItem(e, "status")->valuestring, "ok"))
            ev->done_ok++;
        else
            ev->done_failed++;
    }
    if (ev->cancel && ev->cancel_after_folds > 0 && ev->folds >= ev->cancel_after_folds)
        atomic_store(ev->cancel, 1);
}

static double num(const cJSON *o, const char *key) {
    const cJSON *it = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(it) ? it->valuedouble : NAN;
}

static const char *SPEC =
    "{\"target\": \"y\", \"positive\": \"bad\", \"drop\": [\"value\", \"kind\", \"when\"],"
    " \"validation\": {\"folds\": 3, \"holdout\": 0.25, \"seed\": 5},"
    " \"search\": {\"strategy\": \"grid\", \"budget\": 5, \"seed\": 1},"
    " \"space\": {\"family\": [\"logistic\", \"mlp\", \"gbt\"], \"hidden\": [[8]],"
    " \"activation\": [\"tanh\"], \"learning_rate\": [0.01], \"l2\": [1e-4, 1e-2],"
    " \"batch\": [32], \"epochs\": [30], \"max_depth\": [2], \"eta\": [0.3], \"rounds\": [20]}}";

static void test_leaderboard(void) {
    fm_frame_t *frame = synthetic();
    fm_search_spec_t *spec = search_test_spec(SPEC);
    if (!frame || !spec) return;
    FM_CHECK_INT(fm_search_spec_candidates(spec), 5); /* 2 logistic, 2 mlp, 1 gbt */
    events_t ev;
    memset(&ev, 0, sizeof ev);
    fm_search_result_t *r = NULL;
    fm_error_t err;
    int rc = fm_search_run(frame, spec, on_event, &ev, NULL, &r, &err);
    FM_CHECK_MSG(rc == FM_OK, "%s", err.msg);
    if (!r) goto done;
    FM_CHECK_INT(cJSON_GetArraySize(r->leaderboard), 5);
    FM_CHECK_INT(ev.started, 5);
    FM_CHECK_INT(ev.done_ok + ev.done_failed, 5);
    FM_CHECK_INT(ev.folds, 3 * ev.done_ok);
    FM_CHECK_INT(ev.refits, 1);
    FM_CHECK_INT(ev.finished, 1);
    FM_CHECK_INT(ev.features, 1);
    FM_CHECK_INT(ev.progress_backwards, 0);
    FM_CHECK_NEAR(ev.last_progress, 1.0, 1e-12);
    double previous = INFINITY;
    int seen_failed = 0, rank = 0;
    for (const cJSON *e = r->leaderboard->child; e; e = e->next) {
        const char *status = cJSON_GetObjectItem(e, "status")->valuestring;
        const char *family =
            cJSON_GetObjectItem(cJSON_GetObjectItem(e, "params"), "family")->valuestring;
        if (!strcmp(status, "failed")) {
            seen_failed = 1;
            /* Until gradient-boosted trees are built in, a gbt candidate fails on its own. */
            FM_CHECK_STR(family, "gbt");
            FM_CHECK(cJSON_IsString(cJSON_GetObjectItem(e, "error")));
            FM_CHECK(cJSON_IsNull(cJSON_GetObjectItem(e, "rank")));
            continue;
        }
        FM_CHECK_STR(status, "ok");
        FM_CHECK(!seen_failed); /* failures come last */
        FM_CHECK_INT((int)num(e, "rank"), ++rank);
        const cJSON *folds = cJSON_GetObjectItem(e, "folds");
        FM_CHECK_INT(cJSON_GetArraySize(folds), 3);
        double mean = 0, var = 0;
        for (const cJSON *f = folds->child; f; f = f->next)
            mean += f->valuedouble / 3;
        for (const cJSON *f = folds->child; f; f = f->next)
            var += (f->valuedouble - mean) * (f->valuedouble - mean) / 3;
        FM_CHECK_NEAR(num(e, "mean"), mean, 1e-12);
        FM_CHECK_NEAR(num(e, "std"), sqrt(var), 1e-12);
        FM_CHECK(num(e, "mean") <= previous);
        previous = num(e, "mean");
        FM_CHECK(num(e, "mean") > 0.8); /* the signal is strong */
        FM_CHECK(num(e, "train_seconds") >= 0 && num(e, "predict_us_per_row") > 0);
        FM_CHECK_STR(cJSON_GetObjectItem(e, "metric")->valuestring, "auc");
    }
    FM_CHECK(r->best >= 0 && r->model != NULL);
    FM_CHECK_INT((long)num(r->leaderboard->child, "index"), r->best);

    /* The refit: the winner's settings on every non-test row, none held out, for the mean of
     * the epochs (rounds) its folds kept. */
    int32_t part[400];
    int nfolds;
    FM_CHECK_INT(fm_search_assign(frame, spec, part, &nfolds, &err), FM_OK);
    size_t train[400], test[400], ntrain = 0, ntest = 0;
    for (size_t i = 0; i < 400; i++) {
        if (part[i] == FM_SEARCH_ROW_TEST)
            test[ntest++] = i;
        else if (part[i] != FM_SEARCH_ROW_UNUSED)
            train[ntrain++] = i;
    }
    FM_CHECK_INT(ntest, 100);
    const char *drop[] = {"value", "kind", "when"};
    fm_train_options_t o;
    fm_train_options_defaults(&o);
    search_point_to_options(&spec->candidates[r->best], FM_TASK_BINARY, &o);
    o.target = "y";
    o.positive = "bad";
    o.seed = 1;
    o.drop = drop;
    o.ndrop = 3;
    o.rows = train;
    o.nrows = ntrain;
    long iterations = lround(num(r->leaderboard->child, "best_iterations"));
    FM_CHECK(iterations >= 1);
    o.valid_fraction = 0;
    o.epochs = o.gbt.rounds = (int)iterations;
    o.gbt.early_stopping = 0;
    const cJSON *refit =
        cJSON_GetObjectItem(cJSON_GetObjectItem(r->model->info, "search"), "refit");
    FM_CHECK_INT((long)num(refit, "iterations"), iterations);
    FM_CHECK_INT((long)num(refit, "rows"), 300);
    fm_model_t *again = NULL;
    FM_CHECK_INT(fm_train(frame, &o, &again, &err), FM_OK);
    double *p1 = malloc(400 * sizeof *p1), *p2 = malloc(400 * sizeof *p2);
    FM_CHECK_INT(fm_model_predict_frame(r->model, frame, p1, &err), FM_OK);
    if (again) FM_CHECK_INT(fm_model_predict_frame(again, frame, p2, &err), FM_OK);
    FM_CHECK(again && !memcmp(p1, p2, 400 * sizeof *p1));
    fm_model_free(again);

    /* The test metrics, recomputed from predictions on the test rows. */
    double score[400];
    int label[400];
    const fm_column_t *y = &frame->columns[0];
    int bad = fm_strdict_find(&y->dict, "bad", 3);
    for (size_t i = 0; i < ntest; i++) {
        score[i] = p1[test[i]];
        label[i] = y->codes[test[i]] == bad;
    }
    FM_CHECK_NEAR(num(r->test_metrics, "auc"), fm_metric_auc(score, label, NULL, ntest), 1e-12);
    FM_CHECK_NEAR(num(r->test_metrics, "value"), num(r->test_metrics, "auc"), 0);
    FM_CHECK_INT((int)num(r->test_metrics, "rows"), 100);
    free(p1);
    free(p2);

    /* The result in the model's description. */
    const cJSON *s = cJSON_GetObjectItem(r->model->info, "search");
    FM_CHECK(s != NULL);
    FM_CHECK(cJSON_Compare(cJSON_GetObjectItem(s, "leaderboard"), r->leaderboard, 1));
    FM_CHECK(cJSON_Compare(cJSON_GetObjectItem(s, "test_metrics"), r->test_metrics, 1));
    FM_CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "validation"), "scheme")->valuestring,
                 "kfold");
    FM_CHECK_STR(cJSON_GetObjectItem(s, "metric")->valuestring, "auc");
    FM_CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(s, "information_value")) == 3);
    const cJSON *imp = cJSON_GetObjectItem(s, "permutation_importance");
    FM_CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(imp, "features")), 3);
    /* It survives saving and loading. */
    fm_buf_t bytes = FM_BUF_INIT;
    fm_model_t *loaded = NULL;
    FM_CHECK_INT(fm_model_encode(r->model, &bytes, &err), FM_OK);
    FM_CHECK_INT(fm_model_decode(bytes.data, bytes.len, "search", &loaded, &err), FM_OK);
    if (loaded)
        FM_CHECK(cJSON_Compare(
            cJSON_GetObjectItem(cJSON_GetObjectItem(loaded->info, "search"), "leaderboard"),
            r->leaderboard, 1));
    fm_model_free(loaded);
    fm_buf_free(&bytes);
    /* The tables print. */
    FILE *sink = fopen("/dev/null", "w");
    if (sink) {
        fm_search_leaderboard_print(sink, r);
        fm_search_iv_print(sink, r->features);
        fclose(sink);
    }
done:
    fm_search_result_free(r);
    fm_search_spec_free(spec);
    fm_frame_free(frame);
}

/* search.selection "one_se": the simplest family within one standard error of the best mean. */
static void test_one_standard_error_rule(void) {
    fm_frame_t *frame = synthetic();
    fm_buf_t text = FM_BUF_INIT;
    fm_buf_puts(&text, SPEC);
    /* The same search, with the rule: {"search": {..., "selection": "one_se"}}. */
    char *at = strstr(text.data, "\"seed\": 1}");
    fm_search_spec_t *spec = NULL;
    if (at) {
        fm_buf_t edited = FM_BUF_INIT;
        fm_buf_append(&edited, text.data, (size_t)(at - text.data));
        fm_buf_puts(&edited, "\"seed\": 1, \"selection\": \"one_se\"}");
        fm_buf_puts(&edited, at + strlen("\"seed\": 1}"));
        spec = search_test_spec(edited.data);
        fm_buf_free(&edited);
    }
    fm_buf_free(&text);
    if (!frame || !spec) return;
    fm_search_result_t *r = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_search_run(frame, spec, NULL, NULL, NULL, &r, &err), FM_OK);
    if (r) {
        const cJSON *top = r->leaderboard->child;
        double limit = num(top, "mean") - num(top, "std") / sqrt(3.0);
        long expected = (long)num(top, "index");
        for (const cJSON *e = top; e; e = e->next) {
            const char *family =
                cJSON_GetObjectItem(cJSON_GetObjectItem(e, "params"), "family")->valuestring;
            if (!strcmp(family, "logistic") && num(e, "mean") >= limit &&
                strcmp(
                    cJSON_GetObjectItem(cJSON_GetObjectItem(top, "params"), "family")->valuestring,
                    "logistic") != 0) {
                expected = (long)num(e, "index");
                break;
            }
        }
        FM_CHECK_INT(r->best, expected);
        int selected = 0;
        for (const cJSON *e = top; e; e = e->next)
            if (cJSON_IsTrue(cJSON_GetObjectItem(e, "selected"))) {
                selected++;
                FM_CHECK_INT((long)num(e, "index"), r->best);
            }
        FM_CHECK_INT(selected, 1);
        FM_CHECK_STR(cJSON_GetObjectItem(r->validation, "selection")->valuestring, "one_se");
        printf("  one_se: best mean candidate %ld, selected %ld\n", (long)num(top, "index"),
               r->best);
    }
    fm_search_result_free(r);
    fm_search_spec_free(spec);
    fm_frame_free(frame);
}

/* The leaderboard without its timings, for comparing runs. */
static cJSON *without_timings(const cJSON *board) {
    cJSON *copy = cJSON_Duplicate(board, 1);
    for (cJSON *e = copy ? copy->child : NULL; e; e = e->next) {
        cJSON_DeleteItemFromObject(e, "train_seconds");
        cJSON_DeleteItemFromObject(e, "predict_us_per_row");
    }
    return copy;
}

static void test_determinism(void) {
    fm_frame_t *frame = synthetic();
    fm_search_spec_t *spec = search_test_spec(
        "{\"target\": \"y\", \"positive\": \"bad\", \"drop\": [\"value\", \"kind\", \"when\"],"
        " \"validation\": {\"folds\": 3}, \"search\": {\"budget\": 3, \"seed\": 9},"
        " \"space\": {\"family\": [\"logistic\", \"mlp\"], \"epochs\": [20], \"hidden\": [[6]]}}");
    if (!frame || !spec) return;
    fm_search_result_t *a = NULL, *b = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_search_run(frame, spec, NULL, NULL, NULL, &a, &err), FM_OK);
    FM_CHECK_INT(fm_search_run(frame, spec, NULL, NULL, NULL, &b, &err), FM_OK);
    if (a && b) {
        cJSON *x = without_timings(a->leaderboard), *y = without_timings(b->leaderboard);
        FM_CHECK(cJSON_Compare(x, y, 1));
        cJSON_Delete(x);
        cJSON_Delete(y);
        FM_CHECK(cJSON_Compare(a->test_metrics, b->test_metrics, 1));
        FM_CHECK(cJSON_Compare(a->importance, b->importance, 1));
        FM_CHECK(cJSON_Compare(a->features, b->features, 1));
        double pa[400], pb[400];
        FM_CHECK_INT(fm_model_predict_frame(a->model, frame, pa, &err), FM_OK);
        FM_CHECK_INT(fm_model_predict_frame(b->model, frame, pb, &err), FM_OK);
        FM_CHECK(!memcmp(pa, pb, sizeof pa));
    }
    fm_search_result_free(a);
    fm_search_result_free(b);
    fm_search_spec_free(spec);
    fm_frame_free(frame);
}

static void test_cancel(void) {
    fm_frame_t *frame = synthetic();
    fm_search_spec_t *spec = search_test_spec(
        "{\"target\": \"y\", \"drop\": [\"value\", \"kind\", \"when\"], \"validation\": "
        "{\"folds\": 3}, \"search\": {\"budget\": 4}, \"space\": {\"family\": [\"logistic\"], "
        "\"epochs\": [10]}}");
    if (!frame || !spec) return;
    atomic_int cancel;
    atomic_init(&cancel, 0);
    events_t ev;
    memset(&ev, 0, sizeof ev);
    ev.cancel = &cancel;
    ev.cancel_after_folds = 4; /* during the second candidate */
    fm_search_result_t *r = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_search_run(frame, spec, on_event, &ev, &cancel, &r, &err), FM_ECANCELED);
    FM_CHECK_INT(ev.folds, 4);
    FM_CHECK_INT(ev.started, 2);
    FM_CHECK_INT(ev.refits, 0);
    FM_CHECK(r != NULL);
    if (r) {
        FM_CHECK_INT(cJSON_GetArraySize(r->leaderboard), 1); /* the candidate that finished */
        FM_CHECK(r->model == NULL);
        FM_CHECK(cJSON_IsNull(r->test_metrics));
    }
    fm_search_result_free(r);
    /* Cancelled before it starts: nothing is fitted. */
    r = NULL;
    memset(&ev, 0, sizeof ev);
    FM_CHECK_INT(fm_search_run(frame, spec, on_event, &ev, &cancel, &r, &err), FM_ECANCELED);
    FM_CHECK_INT(ev.folds, 0);
    if (r) FM_CHECK_INT(cJSON_GetArraySize(r->leaderboard), 0);
    fm_search_result_free(r);
    fm_search_spec_free(spec);
    fm_frame_free(frame);
}

static void test_every_candidate_failing(void) {
    fm_frame_t *frame = synthetic();
    /* Marking the only feature as personal data leaves no feature to learn from. */
    fm_search_spec_t *spec = search_test_spec(
        "{\"target\": \"y\", \"drop\": [\"value\", \"kind\", \"when\", \"x1\", \"noise\"], "
        "\"pii\": [\"grade\"], \"validation\": {\"folds\": 2}, \"search\": {\"budget\": 2}, "
        "\"space\": {\"family\": [\"logistic\"], \"epochs\": [5]}}");
    if (!frame || !spec) return;
    fm_search_result_t *r = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_search_run(frame, spec, NULL, NULL, NULL, &r, &err), FM_EDATA);
    FM_CHECK_MSG(strstr(err.msg, "every candidate failed") != NULL, "%s", err.msg);
    if (r) {
        FM_CHECK_INT(cJSON_GetArraySize(r->leaderboard), 2);
        FM_CHECK_STR(cJSON_GetObjectItem(r->leaderboard->child, "status")->valuestring, "failed");
        FM_CHECK(r->model == NULL && r->best == -1);
    }
    FM_CHECK(r != NULL);
    fm_search_result_free(r);
    fm_search_spec_free(spec);
    fm_frame_free(frame);
}

static void test_run_errors(void) {
    fm_frame_t *frame = synthetic();
    if (!frame) return;
    const char *specs[][2] = {
        {"{\"target\": \"y\", \"metric\": \"rmse\"}", "does not apply"},
        {"{\"target\": \"value\", \"metric\": \"auc\"}", "does not apply"},
        {"{\"target\": \"nope\"}", "'nope'"},
        {"{\"target\": \"y\", \"drop\": [\"ghost\"]}", "'ghost'"},
        {"{\"target\": \"y\", \"pii\": [\"ghost\"]}", "'ghost'"},
        {"{\"target\": \"y\", \"positive\": \"ugly\"}", "'ugly'"},
        {"{\"target\": \"kind\", \"iv_threshold\": 0.1}", "binary"},
        {"{\"target\": \"y\", \"iv_threshold\": 50, \"drop\": [\"value\", \"kind\", \"when\"]}",
         "drops every feature"},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        fm_search_spec_t *spec = search_test_spec(specs[i][0]);
        if (!spec) continue;
        fm_search_result_t *r = NULL;
        fm_error_t err;
        int rc = fm_search_run(frame, spec, NULL, NULL, NULL, &r, &err);
        FM_CHECK_MSG(rc == FM_EINVAL || rc == FM_EDATA, "%s: rc %d", specs[i][0], rc);
        FM_CHECK_MSG(strstr(err.msg, specs[i][1]) != NULL, "%s: '%s'", specs[i][0], err.msg);
        FM_CHECK(r == NULL);
        fm_search_result_free(r);
        fm_search_spec_free(spec);
    }
    fm_frame_free(frame);
}

static void test_iv_threshold_drops_features(void) {
    fm_frame_t *frame = synthetic();
    fm_search_spec_t *spec = search_test_spec(
        "{\"target\": \"y\", \"positive\": \"bad\", \"drop\": [\"value\", \"kind\"],"
        " \"iv_threshold\": 0.3, \"importance_repeats\": 0,"
        " \"validation\": {\"scheme\": \"time\", \"time_column\": \"when\"},"
        " \"search\": {\"budget\": 1}, \"space\": {\"family\": [\"logistic\"], \"epochs\": [10]}}");
    if (!frame || !spec) return;
    fm_search_result_t *r = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_search_run(frame, spec, NULL, NULL, NULL, &r, &err), FM_OK);
    if (r && r->model) {
        /* noise has no information; x1 and grade much. The time column is no feature. */
        int noise_dropped = 0, x1_dropped = 1;
        for (const cJSON *f = r->features->child; f; f = f->next) {
            const char *name = cJSON_GetObjectItem(f, "feature")->valuestring;
            int dropped = cJSON_IsTrue(cJSON_GetObjectItem(f, "dropped"));
            printf("  IV %-8s %.4f%s\n", name, num(f, "iv"), dropped ? " dropped" : "");
            if (!strcmp(name, "noise")) noise_dropped = dropped;
            if (!strcmp(name, "x1")) x1_dropped = dropped;
            FM_CHECK(strcmp(name, "when") != 0);
        }
        FM_CHECK(noise_dropped && !x1_dropped);
        FM_CHECK(fm_prep_find(r->model->prep, "noise") < 0);
        FM_CHECK(fm_prep_find(r->model->prep, "when") < 0);
        FM_CHECK(fm_prep_find(r->model->prep, "x1") >= 0);
        FM_CHECK(cJSON_IsNull(r->importance));
        FM_CHECK_STR(cJSON_GetObjectItem(r->validation, "scheme")->valuestring, "time");
    }
    fm_search_result_free(r);
    fm_search_spec_free(spec);
    fm_frame_free(frame);
}

static void test_other_tasks(void) {
    fm_frame_t *frame = synthetic();
    if (!frame) return;
    const char *texts[] = {
        "{\"target\": \"value\", \"drop\": [\"y\", \"kind\", \"when\"], \"validation\": "
        "{\"folds\": 3}, \"search\": {\"budget\": 3}, \"space\": {\"family\": [\"logistic\", "
        "\"mlp\"], \"epochs\": [15], \"hidden\": [[4]]}}",
        "{\"target\": \"value\", \"metric\": \"r2\", \"drop\": [\"y\", \"kind\", \"when\"], "
        "\"validation\": {\"scheme\": \"holdout\"}, \"search\": {\"budget\": 2}, \"space\": "
        "{\"family\": [\"linear\"], \"epochs\": [15]}}",
        "{\"target\": \"kind\", \"drop\": [\"y\", \"value\", \"when\"], \"validation\": "
        "{\"folds\": 3}, \"search\": {\"budget\": 2}, \"space\": {\"family\": [\"softmax\"], "
        "\"epochs\": [15]}}",
        "{\"target\": \"kind\", \"metric\": \"logloss\", \"drop\": [\"y\", \"value\", "
        "\"when\"], \"validation\": {\"folds\": 3}, \"search\": {\"budget\": 2}, \"space\": "
        "{\"family\": [\"logistic\"], \"epochs\": [15]}}",
    };
    const char *metric[] = {"rmse", "r2", "accuracy", "logloss"};
    const int higher[] = {0, 1, 1, 0};
    for (size_t t = 0; t < 4; t++) {
        fm_search_spec_t *spec = search_test_spec(texts[t]);
        if (!spec) continue;
        fm_search_result_t *r = NULL;
        fm_error_t err;
        int rc = fm_search_run(frame, spec, NULL, NULL, NULL, &r, &err);
        FM_CHECK_MSG(rc == FM_OK, "%s: %s", texts[t], err.msg);
        if (r) {
            double previous = higher[t] ? INFINITY : -INFINITY;
            for (const cJSON *e = r->leaderboard->child; e; e = e->next) {
                FM_CHECK_STR(cJSON_GetObjectItem(e, "metric")->valuestring, metric[t]);
                double m = num(e, "mean");
                FM_CHECK(higher[t] ? m <= previous : m >= previous);
                previous = m;
            }
            FM_CHECK_STR(cJSON_GetObjectItem(r->test_metrics, "metric")->valuestring, metric[t]);
            FM_CHECK_INT(cJSON_GetArraySize(r->features), 0);
        }
        fm_search_result_free(r);
        fm_search_spec_free(spec);
    }
    fm_frame_free(frame);
}

static void test_permutation_importance(void) {
    fm_frame_t *frame = synthetic();
    if (!frame) return;
    const char *drop[] = {"value", "kind", "when"};
    fm_train_options_t o;
    fm_train_options_defaults(&o);
    o.target = "y";
    o.positive = "bad";
    o.epochs = 30;
    o.drop = drop;
    o.ndrop = 3;
    fm_model_t *model = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_train(frame, &o, &model, &err), FM_OK);
    if (!model) goto done;
    size_t rows[200];
    for (size_t i = 0; i < 200; i++)
        rows[i] = 200 + i;
    cJSON *a = NULL, *b = NULL;
    FM_CHECK_INT(fm_search_permutation_importance(model, frame, rows, 200, "auc", 4, 11, &a, &err),
                 FM_OK);
    FM_CHECK_INT(fm_search_permutation_importance(model, frame, rows, 200, "auc", 4, 11, &b, &err),
                 FM_OK);
    FM_CHECK(a && b && cJSON_Compare(a, b, 1));
    if (a) {
        /* The baseline is the model's AUC on those rows. */
        double pred[400], score[200];
        int label[200];
        FM_CHECK_INT(fm_model_predict_frame(model, frame, pred, &err), FM_OK);
        const fm_column_t *y = &frame->columns[0];
        int bad = fm_strdict_find(&y->dict, "bad", 3);
        for (size_t i = 0; i < 200; i++) {
            score[i] = pred[rows[i]];
            label[i] = y->codes[rows[i]] == bad;
        }
        FM_CHECK_NEAR(num(a, "baseline"), fm_metric_auc(score, label, NULL, 200), 1e-12);
        const cJSON *features = cJSON_GetObjectItem(a, "features");
        FM_CHECK_INT(cJSON_GetArraySize(features), 3);
        FM_CHECK_STR(cJSON_GetObjectItem(features->child, "feature")->valuestring, "x1");
        /* The noise column matters little next to x1 (on 200 rows a shuffle still moves the AUC
         * by a few hundredths). */
        for (const cJSON *f = features->child; f; f = f->next)
            if (!strcmp(cJSON_GetObjectItem(f, "feature")->valuestring, "noise"))
                FM_CHECK(fabs(num(f, "mean")) < 0.25 * num(features->child, "mean"));
        FM_CHECK(num(features->child, "mean") > 0.1);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON *c = NULL;
    FM_CHECK_INT(fm_search_permutation_importance(model, frame, rows, 200, "rmse", 2, 1, &c, &err),
                 FM_EINVAL);
    FM_CHECK_INT(fm_search_permutation_importance(model, frame, rows, 200, "auc", 0, 1, &c, &err),
                 FM_EINVAL);
    FM_CHECK_INT(fm_search_permutation_importance(model, frame, rows, 200, "gain", 2, 1, &c, &err),
                 FM_EINVAL);
    /* logloss gets worse (higher) when x1 is shuffled: a positive drop. */
    FM_CHECK_INT(
        fm_search_permutation_importance(model, frame, rows, 200, "logloss", 2, 1, &c, &err),
        FM_OK);
    if (c) FM_CHECK(num(cJSON_GetObjectItem(c, "features")->child, "mean") > 0);
    cJSON_Delete(c);
done:
    fm_model_free(model);
    fm_frame_free(frame);
}

/* fm_train's rows option: a model trained on rows R of a frame equals one trained on a frame of
 * just those rows, and rows outside R never influence it. */
static void test_train_rows_option(void) {
    fm_frame_t *frame = synthetic();
    fm_frame_t *other = synthetic();
    if (!frame || !other) return;
    size_t rows[400], n = 0;
    for (size_t i = 0; i < 400; i++)
        if (i % 3 != 0) rows[n++] = i;
    /* Rows outside R get other values everywhere, the target included. */
    const fm_column_t *y = &other->columns[0];
    for (size_t i = 0; i < 400; i += 3) {
        other->columns[1].values[i] = 1e6 + (double)i;
        other->columns[2].codes[i] = (other->columns[2].codes[i] + 1) % 3;
        other->columns[3].values[i] = NAN;
        other->columns[0].codes[i] = y->codes[i] == 0 ? 1 : 0;
    }
    const char *drop[] = {"value", "kind", "when"};
    const char *families[] = {"logistic", "mlp"};
    for (int f = 0; f < 2; f++) {
        fm_train_options_t o;
        fm_train_options_defaults(&o);
        o.target = "y";
        o.positive = "bad";
        o.family = families[f];
        o.hidden[0] = 5;
        o.nhidden = 1;
        o.epochs = 15;
        o.drop = drop;
        o.ndrop = 3;
        o.rows = rows;
        o.nrows = n;
        fm_model_t *a = NULL, *b = NULL, *c = NULL;
        fm_error_t err;
        FM_CHECK_INT(fm_train(frame, &o, &a, &err), FM_OK);
        FM_CHECK_INT(fm_train(other, &o, &b, &err), FM_OK);
        /* A frame of just the rows of R. */
        fm_frame_t view;
        FM_CHECK_INT(search_view_make(frame, rows, n, &view, &err), FM_OK);
        o.rows = NULL;
        o.nrows = 0;
        FM_CHECK_INT(fm_train(&view, &o, &c, &err), FM_OK);
        if (a && b && c) {
            FM_CHECK(a->net->nparams == b->net->nparams && a->net->nparams == c->net->nparams);
            FM_CHECK(!memcmp(a->net->params, b->net->params, a->net->nparams * sizeof(double)));
            double diff =
                fm_test_max_diff(families[f], a->net->params, c->net->params, a->net->nparams);
            FM_CHECK(diff == 0.0);
            double pa[400], pc[400];
            FM_CHECK_INT(fm_model_predict_frame(a, frame, pa, &err), FM_OK);
            FM_CHECK_INT(fm_model_predict_frame(c, frame, pc, &err), FM_OK);
            FM_CHECK(!memcmp(pa, pc, sizeof pa));
        }
        search_view_free(&view);
        fm_model_free(a);
        fm_model_free(b);
        fm_model_free(c);
    }
    fm_frame_free(frame);
    fm_frame_free(other);
}

FM_TEST_MAIN(FM_TEST_CASE(test_leaderboard), FM_TEST_CASE(test_one_standard_error_rule),
             FM_TEST_CASE(test_determinism), FM_TEST_CASE(test_cancel),
             FM_TEST_CASE(test_every_candidate_failing), FM_TEST_CASE(test_run_errors),
             FM_TEST_CASE(test_iv_threshold_drops_features), FM_TEST_CASE(test_other_tasks),
             FM_TEST_CASE(test_permutation_importance), FM_TEST_CASE(test_train_rows_option))
