/*
 * Unit tests of the report page (src/report): HTML escaping and JSON-in-script escaping, whole
 * pages for binary, multiclass and regression models whose every name (target, classes,
 * features, categories, protected groups) is hostile markup, checked for escaping, for the page's
 * structure (our four script elements only, one canvas per chart configuration, data that parses)
 * and for the embedded Chart.js; and refusals of inconsistent or malformed input with the buffer
 * left as it was.
 */
#include "core/fs.h"
#include "core/json.h"
#include "report/report_internal.h"

#include "fm_test.h"

#include <stdint.h>

#define EVIL_FEATURE  "<script>alert(1)</script>"
#define EVIL_CATEGORY "\"><img src=x onerror=alert(2)>"
#define EVIL_TARGET   "</script><script>alert(3)</script>"
#define EVIL_CLASS    "<b onmouseover=alert(4)>yes</b>"
#define EVIL_GROUP    "<iframe src=javascript:alert(5)>"

static void test_escape(void) {
    fm_buf_t b = FM_BUF_INIT;
    const char *text = "<script>alert('x')</script> & \"q\"";
    FM_CHECK_INT(fm_report_escape(&b, text, strlen(text)), 0);
    FM_CHECK_STR(b.data, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
    fm_buf_reset(&b);
    FM_CHECK_INT(fm_report_escape(&b, "plain text", 10), 0);
    FM_CHECK_STR(b.data, "plain text");
    fm_buf_reset(&b);
    /* Only n bytes, and bytes after a NUL are not read as text. */
    FM_CHECK_INT(fm_report_escape(&b, "a<b", 2), 0);
    FM_CHECK_STR(b.data, "a&lt;");
    fm_buf_free(&b);
}

static void test_json_for_script(void) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "a", "</script><!-- x <b>");
    char *json = cJSON_PrintUnformatted(o);
    fm_buf_t b = FM_BUF_INIT;
    FM_CHECK_INT(fm_report_json_for_script(&b, json, strlen(json)), 0);
    FM_CHECK(strchr(b.data, '<') == NULL);
    /* It reads back as the same JSON. */
    cJSON *back = cJSON_Parse(b.data);
    FM_CHECK(back && cJSON_Compare(o, back, 1));
    cJSON_Delete(back);
    cJSON_Delete(o);
    cJSON_free(json);
    fm_buf_free(&b);
}

/* Preprocessing for two columns: a numeric one and a categorical one, both with hostile names. */
static const char prep_json[] =
    "{\"nfeatures\":4,\"columns\":["
    "{\"name\":\"income\",\"type\":\"numeric\",\"median\":50,\"mean\":52.5,\"std\":10,"
    "\"missing_indicator\":false,\"offset\":0,\"width\":1},"
    "{\"name\":\"<script>alert(1)</script>\",\"type\":\"categorical\",\"categories\":"
    "[\"\\\"><img src=x onerror=alert(2)>\",\"b\",\"c\"],\"most_frequent\":1,"
    "\"missing_indicator\":false,\"offset\":1,\"width\":3}]}";

static fm_model_t *make_model(fm_task_t task, size_t nclasses) {
    fm_model_t *m = fm_model_new();
    cJSON *pj = cJSON_Parse(prep_json);
    fm_error_t err;
    FM_CHECK_INT(fm_prep_from_json(pj, &m->prep, &err), 0);
    cJSON_Delete(pj);
    m->task = task;
    m->family = strdup(task == FM_TASK_REGRESSION ? "linear" : "logistic");
    m->target = strdup(EVIL_TARGET);
    m->nclasses = nclasses;
    if (nclasses) {
        m->classes = calloc(nclasses, sizeof *m->classes);
        m->classes[0] = strdup("no");
        m->classes[1] = strdup(EVIL_CLASS);
        for (size_t k = 2; k < nclasses; k++) {
            char name[32];
            snprintf(name, sizeof name, "class%zu", k);
            m->classes[k] = strdup(name);
        }
    }
    /* What training records, with a history for the training chart. */
    cJSON *training = cJSON_AddObjectToObject(m->info, "training");
    cJSON_AddNumberToObject(training, "epochs_run", 3);
    cJSON *history = cJSON_AddArrayToObject(training, "history");
    for (int e = 1; e <= 3; e++) {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddNumberToObject(h, "epoch", e);
        cJSON_AddNumberToObject(h, "loss", 1.0 / e);
        cJSON_AddNumberToObject(h, "val_loss", 1.1 / e);
        cJSON_AddNumberToObject(h, "val_auc", 0.6 + 0.05 * e);
        cJSON_AddItemToArray(history, h);
    }
    cJSON *validation = cJSON_AddObjectToObject(m->info, "validation");
    cJSON_AddStringToObject(validation, "scheme", "stratified holdout");
    cJSON *metrics = cJSON_AddObjectToObject(validation, "metrics");
    cJSON_AddNumberToObject(metrics, "auc", 0.8);
    cJSON_AddStringToObject(m->info, "created", "2026-01-01T00:00:00Z");
    return m;
}

typedef struct rows {
    size_t n;
    double *pred;
    int *label;
    double *y;
} rows_t;

static uint64_t next_random(uint64_t *state) {
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return *state >> 11;
}

static rows_t make_rows(const fm_model_t *m, size_t n) {
    rows_t r = {n, NULL, NULL, NULL};
    size_t width = fm_model_output_width(m);
    r.pred = malloc(n * width * sizeof *r.pred);
    r.label = malloc(n * sizeof *r.label);
    r.y = malloc(n * sizeof *r.y);
    uint64_t state = 11;
    for (size_t i = 0; i < n; i++) {
        double u = (double)(next_random(&state) % 10000) / 10000.0;
        if (m->task == FM_TASK_REGRESSION) {
            r.y[i] = 100.0 * u;
            r.pred[i] = r.y[i] + (double)(next_random(&state) % 100) / 10.0 - 5.0;
        } else if (m->task == FM_TASK_BINARY) {
            r.label[i] = u < 0.4;
            r.pred[i] = r.label[i] ? 0.3 + 0.7 * u : 0.7 * u;
        } else {
            r.label[i] = (int)(next_random(&state) % m->nclasses);
            double total = 0.0;
            for (size_t k = 0; k < width; k++) {
                double p = 0.1 + (double)(next_random(&state) % 100) / 100.0 +
                           ((int)k == r.label[i] ? 0.8 : 0.0);
                r.pred[i * width + k] = p;
                total += p;
            }
            for (size_t k = 0; k < width; k++)
                r.pred[i * width + k] /= total;
        }
    }
    return r;
}

static void free_rows(rows_t *r) {
    free(r->pred);
    free(r->label);
    free(r->y);
}

static size_t count(const char *text, const char *needle) {
    size_t c = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        c++;
    return c;
}

/* The page's data element, parsed (caller deletes). */
static cJSON *page_data(const char *page) {
    const char *open = "<script type=\"application/json\" id=\"fm-data\">";
    const char *start = strstr(page, open);
    if (!start) return NULL;
    start += strlen(open);
    const char *end = strstr(start, "</script>");
    return end ? cJSON_ParseWithLength(start, (size_t)(end - start)) : NULL;
}

/* Checks shared by every page: structure, escaping, the data, and the charts' count. */
static void check_page(const char *page, size_t want_min_charts) {
    FM_CHECK(strncmp(page, "<!DOCTYPE html>", 15) == 0);
    FM_CHECK(strstr(page, "</html>\n") != NULL);
    /* Our four script elements, nothing else: no hostile name became markup. */
    FM_CHECK_INT(count(page, "<script"), 4);
    FM_CHECK_INT(count(page, "</script"), 4);
    FM_CHECK(strstr(page, "<img") == NULL);
    FM_CHECK(strstr(page, "<iframe") == NULL);
    FM_CHECK(strstr(page, "<b onmouseover") == NULL);
    FM_CHECK(strstr(page, "&lt;script&gt;alert(1)&lt;/script&gt;") != NULL);
    /* Nothing loaded from anywhere. */
    FM_CHECK(strstr(page, " src=\"") == NULL);
    FM_CHECK(strstr(page, "href=\"http") == NULL);
    cJSON *data = page_data(page);
    FM_CHECK_MSG(data != NULL, "the data element does not parse");
    size_t charts = (size_t)cJSON_GetArraySize(cJSON_GetObjectItem(data, "charts"));
    FM_CHECK_MSG(charts >= want_min_charts, "%zu charts, want at least %zu", charts,
                 want_min_charts);
    FM_CHECK_INT(count(page, "<canvas"), charts);
    char expected[64];
    snprintf(expected, sizeof expected, "data-charts-expected=\"%zu\"", charts);
    FM_CHECK(strstr(page, expected) != NULL);
    /* Every chart has a type and datasets. */
    const cJSON *chart;
    cJSON_ArrayForEach(chart, cJSON_GetObjectItem(data, "charts")) {
        FM_CHECK(cJSON_IsString(cJSON_GetObjectItem(chart, "type")));
        FM_CHECK(cJSON_GetArraySize(
                     cJSON_GetObjectItem(cJSON_GetObjectItem(chart, "data"), "datasets")) > 0);
    }
    cJSON_Delete(data);
    /* Chart.js itself is embedded, with its version in the footer. */
    FM_CHECK(strstr(page, "Chart.js v") != NULL);
    char footer[64];
    snprintf(footer, sizeof footer, "Chart.js %s", fm_report_chartjs_version());
    FM_CHECK(strstr(page, footer) != NULL);
    FM_CHECK(strstr(page, "finmaas " FM_VERSION) != NULL);
}

static cJSON *importance_object(void) {
    cJSON *imp = cJSON_Parse(
        "{\"rows\":200,\"metric\":\"auc\",\"score\":0.8,\"repeats\":5,\"seed\":42,"
        "\"permutation_importance\":[{\"feature\":\"income\",\"mean\":0.1,\"std\":0.01},"
        "{\"feature\":\"<script>alert(1)</script>\",\"mean\":0.2,\"std\":0.02}],"
        "\"partial_dependence\":[{\"feature\":\"income\",\"kind\":\"numeric\",\"grid\":[1,2,3],"
        "\"average\":[0.2,0.3,0.4],\"ice\":[[0.1,0.2,0.3],[0.3,0.4,0.5]]},"
        "{\"feature\":\"<script>alert(1)</script>\",\"kind\":\"categorical\",\"grid\":"
        "[\"\\\"><img src=x onerror=alert(2)>\",\"b\",\"c\"],\"average\":[0.5,0.4,0.6],"
        "\"ice\":[]}]}");
    FM_CHECK(imp != NULL);
    return imp;
}

static cJSON *fairness_object(void) {
    cJSON *f = cJSON_Parse(
        "{\"target\":\"t\",\"positive\":\"yes\",\"threshold\":0.5,\"rows\":200,"
        "\"attributes\":[{\"attribute\":\"group\",\"bands\":null,\"reference\":\"a\",\"rows\":200,"
        "\"rows_missing_group\":0,\"summary\":{\"demographic_parity_difference\":0.3,"
        "\"demographic_parity_ratio\":0.5,\"equalized_odds_difference\":0.2},\"groups\":["
        "{\"group\":\"a\",\"count\":120,\"selection_rate\":0.6,\"tpr\":0.8,\"fpr\":0.3,"
        "\"precision\":0.7,\"disparate_impact_ratio\":1,\"four_fifths_violation\":false,"
        "\"equal_opportunity_difference\":0,\"average_odds_difference\":0,\"test\":null,"
        "\"p_value\":null},"
        "{\"group\":\"<iframe src=javascript:alert(5)>\",\"count\":80,\"selection_rate\":0.3,"
        "\"tpr\":0.5,\"fpr\":0.1,\"precision\":0.6,\"disparate_impact_ratio\":0.5,"
        "\"four_fifths_violation\":true,\"equal_opportunity_difference\":-0.3,"
        "\"average_odds_difference\":-0.25,\"test\":\"chi-square\",\"p_value\":0.001}]}]}");
    FM_CHECK(f != NULL);
    return f;
}

static void test_binary_page(void) {
    fm_model_t *m = make_model(FM_TASK_BINARY, 2);
    rows_t r = make_rows(m, 500);
    cJSON *imp = importance_object(), *fair = fairness_object();
    cJSON *after = fairness_object();
    cJSON *attribution = cJSON_Parse("{\"income\":0.5,\"<script>alert(1)</script>\":0.25}");
    fm_report_input_t in = {m,   "credit <scorecard>", 3,    "test.csv", r.n, r.pred, r.label, NULL,
                            imp, attribution,          fair, after};
    fm_buf_t b = FM_BUF_INIT;
    fm_error_t err;
    fm_error_clear(&err);
    FM_CHECK_INT(fm_report_html(&in, &b, &err), 0);
    if (b.data) {
        /* history, ROC, KS, calibration, distribution, 2 importance bars, 2 PD, 3 fairness. */
        check_page(b.data, 12);
        FM_CHECK(strstr(b.data, "credit &lt;scorecard&gt;") != NULL);
        FM_CHECK(strstr(b.data, "&lt;iframe src=javascript:alert(5)&gt;") != NULL);
        FM_CHECK(strstr(b.data, "class=\"violation\"") != NULL);
        FM_CHECK(strstr(b.data, "After reweighing") != NULL);
        FM_CHECK(strstr(b.data, "Registry version: 3") != NULL);
        FM_CHECK(strstr(b.data, "id=\"fairness\"") != NULL);
    }
    fm_buf_free(&b);
    cJSON_Delete(imp);
    cJSON_Delete(fair);
    cJSON_Delete(after);
    cJSON_Delete(attribution);
    free_rows(&r);
    fm_model_free(m);
}

static void test_multiclass_and_regression_pages(void) {
    fm_model_t *m = make_model(FM_TASK_MULTICLASS, 3);
    rows_t r = make_rows(m, 300);
    fm_report_input_t in = {m, NULL, -1, "multi.csv", r.n, r.pred, r.label, NULL};
    fm_buf_t b = FM_BUF_INIT;
    fm_error_t err;
    FM_CHECK_INT(fm_report_html(&in, &b, &err), 0);
    if (b.data) {
        check_page(b.data, 2);
        FM_CHECK(strstr(b.data, "Confusion matrix") != NULL);
        /* The default title: family and target. */
        FM_CHECK(strstr(b.data, "logistic model of &lt;/script&gt;") != NULL);
    }
    fm_buf_free(&b);
    free_rows(&r);
    fm_model_free(m);

    m = make_model(FM_TASK_REGRESSION, 0);
    r = make_rows(m, 5000);
    cJSON *imp = importance_object();
    in = (fm_report_input_t){m, "prices", -1, "prices.csv", r.n, r.pred, NULL, r.y, imp};
    FM_CHECK_INT(fm_report_html(&in, &b, &err), 0);
    if (b.data) {
        check_page(b.data, 4);
        FM_CHECK(strstr(b.data, "Residual distribution") != NULL);
        /* 5000 rows thinned to every 3rd for the scatter plots. */
        FM_CHECK(strstr(b.data, "One row in 3 (1667 of 5000)") != NULL);
    }
    fm_buf_free(&b);
    cJSON_Delete(imp);
    free_rows(&r);
    fm_model_free(m);
}

/* Expects fm_report_html to refuse in with FM_EINVAL and want in the message, leaving the
 * buffer's earlier content as it was. */
static void expect_refused(const fm_report_input_t *in, double threshold, const char *want) {
    fm_buf_t b = FM_BUF_INIT;
    fm_buf_puts(&b, "before");
    fm_error_t err;
    fm_error_clear(&err);
    int rc = isnan(threshold) ? fm_report_html(in, &b, &err)
                              : fm_report_html_at(in, threshold, &b, &err);
    FM_CHECK_MSG(rc == FM_EINVAL, "code %d (%s), want FM_EINVAL for '%s'", rc, err.msg, want);
    FM_CHECK_MSG(strstr(err.msg, want) != NULL, "'%s' not in '%s'", want, err.msg);
    FM_CHECK_STR(b.data, "before");
    FM_CHECK_INT(b.len, 6);
    fm_buf_free(&b);
}

static void test_refusals(void) {
    fm_model_t *m = make_model(FM_TASK_BINARY, 2);
    rows_t r = make_rows(m, 50);
    fm_report_input_t in = {m, NULL, -1, "d.csv", r.n, r.pred, r.label};
    expect_refused(NULL, NAN, "no model");
    fm_report_input_t bad = in;
    bad.n = 0;
    expect_refused(&bad, NAN, "no rows");
    bad = in;
    bad.label = NULL;
    expect_refused(&bad, NAN, "needs labels");
    expect_refused(&in, 1.5, "threshold");
    r.label[7] = 2;
    expect_refused(&in, NAN, "row 8");
    r.label[7] = 1;
    r.pred[3] = NAN;
    expect_refused(&in, NAN, "row 4 is not a number");
    r.pred[3] = 0.5;

    /* Malformed objects from other code or a file. */
    cJSON *o = cJSON_CreateArray();
    bad = in;
    bad.importance = o;
    expect_refused(&bad, NAN, "importance is not a JSON object");
    cJSON_Delete(o);
    const struct {
        const char *json;
        int fairness;
        const char *want;
    } cases[] = {
        {"{\"permutation_importance\":{}}", 0, "permutation_importance is not an array"},
        {"{\"permutation_importance\":[{\"mean\":1}]}", 0, "[0] has no feature name"},
        {"{\"permutation_importance\":[{\"feature\":\"x\",\"mean\":\"big\"}]}", 0,
         "is not a number"},
        {"{\"partial_dependence\":[{\"feature\":\"x\",\"kind\":\"numeric\",\"grid\":[1,2],"
         "\"average\":[1]}]}",
         0, "average is not an array of 2 values"},
        {"{\"partial_dependence\":[{\"feature\":\"x\",\"kind\":\"numeric\",\"grid\":[\"a\"],"
         "\"average\":[1]}]}",
         0, "grid[0] is not a number"},
        {"{\"partial_dependence\":7}", 0, "partial_dependence is not an array"},
        {"{\"attributes\":{}}", 1, "attributes is not an array"},
        {"{\"attributes\":[{\"attribute\":\"a\"}]}", 1, "without a name or groups"},
        {"{\"attributes\":[{\"attribute\":\"a\",\"groups\":[{\"count\":1}]}]}", 1,
         "groups[0] has no name"},
        {"{\"attributes\":[{\"attribute\":\"a\",\"groups\":[{\"group\":\"g\",\"tpr\":\"x\"}]}]}", 1,
         "tpr is not a number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = cJSON_Parse(cases[i].json);
        FM_CHECK(j != NULL);
        bad = in;
        if (cases[i].fairness)
            bad.fairness = j;
        else
            bad.importance = j;
        expect_refused(&bad, NAN, cases[i].want);
        cJSON_Delete(j);
    }
    free_rows(&r);
    fm_model_free(m);

    m = make_model(FM_TASK_REGRESSION, 0);
    r = make_rows(m, 10);
    in = (fm_report_input_t){m, NULL, -1, "d.csv", r.n, r.pred, NULL, NULL};
    expect_refused(&in, NAN, "needs true values");
    free_rows(&r);
    fm_model_free(m);
}

static void test_threshold_from_fairness(void) {
    /* fm_report_html judges the decisions at the fairness object's threshold. */
    fm_model_t *m = make_model(FM_TASK_BINARY, 2);
    rows_t r = make_rows(m, 100);
    cJSON *fair = fairness_object();
    cJSON_ReplaceItemInObject(fair, "threshold", cJSON_CreateNumber(0.25));
    fm_report_input_t in = {m, NULL, -1, "d.csv", r.n, r.pred, r.label, NULL, NULL, NULL, fair};
    fm_buf_t b = FM_BUF_INIT;
    fm_error_t err;
    FM_CHECK_INT(fm_report_html(&in, &b, &err), 0);
    FM_CHECK(b.data && strstr(b.data, "Confusion matrix at threshold 0.25") != NULL);
    fm_buf_free(&b);
    cJSON_Delete(fair);
    free_rows(&r);
    fm_model_free(m);
}

static void test_chartjs_version(void) {
    /* The embedded version is the installed package's (the tests run from the repository root). */
    char *text = NULL;
    size_t len = 0;
    fm_error_t err;
    FM_CHECK_INT(
        fm_file_read_all("web/node_modules/chart.js/package.json", 1 << 20, &text, &len, &err), 0);
    cJSON *package = text ? cJSON_Parse(text) : NULL;
    const cJSON *version = cJSON_GetObjectItem(package, "version");
    FM_CHECK(cJSON_IsString(version) && !strcmp(version->valuestring, fm_report_chartjs_version()));
    FM_CHECK(fm_report_chartjs_source_len > 100000);
    FM_CHECK(strlen((const char *)fm_report_chartjs_source) == fm_report_chartjs_source_len);
    cJSON_Delete(package);
    free(text);
}

FM_TEST_MAIN(FM_TEST_CASE(test_escape), FM_TEST_CASE(test_json_for_script),
             FM_TEST_CASE(test_binary_page), FM_TEST_CASE(test_multiclass_and_regression_pages),
             FM_TEST_CASE(test_refusals), FM_TEST_CASE(test_threshold_from_fairness),
             FM_TEST_CASE(test_chartjs_version))
