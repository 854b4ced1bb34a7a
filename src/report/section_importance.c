/*
 * The feature importance section, from fm_importance_compute's object (src/importance) and the
 * mean absolute attribution per feature (src/explain): bar charts of permutation importance and of
 * mean |attribution| (the largest first), a table of both for every feature, and the partial
 * dependence plot of each feature (with its ICE curves), the most important first.
 *
 * The objects come from other code, possibly from a file: every member used is checked, and a
 * malformed one fails the report with FM_EINVAL naming it rather than drawing something wrong.
 */
#include "report/report_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Bars shown in an importance chart, and partial dependence plots drawn. */
#define MAX_BARS     20
#define MAX_PD_PLOTS 24

typedef struct feature_row {
    const char *feature; /* borrowed from the input objects */
    double mean, std;    /* permutation importance; NaN when not computed */
    double attribution;  /* mean |attribution|; NaN when not given */
} feature_row_t;

/* Descending by the permutation importance, then by the attribution; NaN last. */
static int compare_rows(const void *a, const void *b) {
    const feature_row_t *x = a, *y = b;
    double kx = isfinite(x->mean) ? x->mean : -INFINITY,
           ky = isfinite(y->mean) ? y->mean : -INFINITY;
    if (kx != ky) return (kx < ky) - (kx > ky);
    double ax = isfinite(x->attribution) ? x->attribution : -INFINITY;
    double ay = isfinite(y->attribution) ? y->attribution : -INFINITY;
    return (ax < ay) - (ax > ay);
}

/* A number or null (NaN); FM_EINVAL naming what for anything else. */
static int number_or_null(fm_report_page_t *page, const cJSON *v, double *out, const char *what,
                          int index) {
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return FM_OK;
    }
    if (cJSON_IsNull(v) || !v) {
        *out = NAN;
        return FM_OK;
    }
    return fm_report_fail(page, FM_EINVAL, "report: %s[%d] is not a number", what, index);
}

static feature_row_t *find_row(feature_row_t *rows, size_t n, const char *feature) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].feature, feature)) return &rows[i];
    return NULL;
}

/* The rows of the table: every feature of either input, sorted. NULL after a recorded failure. */
static feature_row_t *collect_rows(fm_report_page_t *page, const fm_report_input_t *in, size_t *n) {
    const cJSON *perm = cJSON_GetObjectItemCaseSensitive(in->importance, "permutation_importance");
    if (in->importance && perm && !cJSON_IsArray(perm)) {
        fm_report_fail(page, FM_EINVAL,
                       "report: importance.permutation_importance is not an "
                       "array");
        return NULL;
    }
    size_t cap =
        (size_t)cJSON_GetArraySize(perm) + (size_t)cJSON_GetArraySize(in->mean_abs_attribution);
    feature_row_t *rows = malloc((cap ? cap : 1) * sizeof *rows);
    if (!rows) {
        fm_report_fail(page, FM_ENOMEM, "out of memory");
        return NULL;
    }
    size_t m = 0;
    const cJSON *item;
    int i = 0;
    cJSON_ArrayForEach(item, perm) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "feature");
        if (!cJSON_IsString(name)) {
            fm_report_fail(page, FM_EINVAL,
                           "report: importance.permutation_importance[%d] has no feature name", i);
            break;
        }
        feature_row_t *r = &rows[m++];
        *r = (feature_row_t){name->valuestring, NAN, NAN, NAN};
        number_or_null(page, cJSON_GetObjectItemCaseSensitive(item, "mean"), &r->mean,
                       "importance.permutation_importance.mean", i);
        number_or_null(page, cJSON_GetObjectItemCaseSensitive(item, "std"), &r->std,
                       "importance.permutation_importance.std", i);
        i++;
    }
    i = 0;
    cJSON_ArrayForEach(item, in->mean_abs_attribution) {
        feature_row_t *r = find_row(rows, m, item->string);
        if (!r) {
            r = &rows[m++];
            *r = (feature_row_t){item->string, NAN, NAN, NAN};
        }
        number_or_null(page, item, &r->attribution, "mean_abs_attribution", i++);
    }
    if (page->rc) {
        free(rows);
        return NULL;
    }
    qsort(rows, m, sizeof *rows, compare_rows);
    *n = m;
    return rows;
}

/* A horizontal bar chart of the first MAX_BARS finite values of field, largest first. */
static void bars_card(fm_report_page_t *page, feature_row_t *rows, size_t n, int attribution,
                      const char *title, const char *axis, const char *note) {
    const char *labels[MAX_BARS];
    double values[MAX_BARS];
    size_t m = 0;
    /* rows are sorted by permutation importance; the attribution chart sorts its own copy. */
    feature_row_t *order = malloc((n ? n : 1) * sizeof *order);
    if (!order) {
        fm_report_fail(page, FM_ENOMEM, "out of memory");
        return;
    }
    memcpy(order, rows, n * sizeof *order);
    if (attribution)
        for (size_t i = 0; i < n; i++)
            order[i].mean = order[i].attribution;
    qsort(order, n, sizeof *order, compare_rows);
    for (size_t i = 0; i < n && m < MAX_BARS; i++) {
        if (!isfinite(order[i].mean)) continue;
        labels[m] = order[i].feature;
        values[m++] = order[i].mean;
    }
    free(order);
    if (m == 0) return;
    cJSON *chart = fm_report_chart_new(page, "bar");
    fm_report_chart_labels(page, chart, labels, m);
    fm_report_chart_values(page, chart, axis, values, m, FM_REPORT_COLOR_PRIMARY, 0);
    fm_report_chart_no_legend(page, chart);
    if (chart && !cJSON_AddStringToObject(cJSON_GetObjectItem(chart, "options"), "indexAxis", "y"))
        fm_report_fail(page, FM_ENOMEM, "out of memory");
    fm_report_chart_axis(page, chart, "x", "linear", axis, NAN, NAN);
    fm_report_chart_axis(page, chart, "y", "category", "Feature", NAN, NAN);
    fm_report_card(page, title, note, chart);
}

static void importance_table(fm_report_page_t *page, const feature_row_t *rows, size_t n) {
    fm_report_puts(page, "<details><summary>Every feature</summary><table class=\"compact\">"
                         "<thead><tr><th>Feature</th><th class=\"num\">Permutation importance"
                         "</th><th class=\"num\">Std over repeats</th><th class=\"num\">Mean "
                         "|attribution|</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < n; i++) {
        fm_report_puts(page, "<tr><td>");
        fm_report_text(page, rows[i].feature);
        fm_report_puts(page, "</td><td class=\"num\">");
        fm_report_general(page, rows[i].mean);
        fm_report_puts(page, "</td><td class=\"num\">");
        fm_report_general(page, rows[i].std);
        fm_report_puts(page, "</td><td class=\"num\">");
        fm_report_general(page, rows[i].attribution);
        fm_report_puts(page, "</td></tr>\n");
    }
    fm_report_puts(page, "</tbody></table></details>\n");
}

/* Reads an array of n numbers (null: NaN) into out. */
static int read_numbers(fm_report_page_t *page, const cJSON *array, double *out, size_t n,
                        const char *feature, const char *what) {
    if (!cJSON_IsArray(array) || (size_t)cJSON_GetArraySize(array) != n)
        return fm_report_fail(page, FM_EINVAL,
                              "report: partial dependence of '%s': %s is not an array of %zu "
                              "values",
                              feature, what, n);
    size_t i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, array) {
        if (cJSON_IsNumber(v))
            out[i] = v->valuedouble;
        else if (cJSON_IsNull(v))
            out[i] = NAN;
        else
            return fm_report_fail(page, FM_EINVAL,
                                  "report: partial dependence of '%s': %s[%zu] is not a number",
                                  feature, what, i);
        i++;
    }
    return FM_OK;
}

/* Class c of a multiclass average: average[g][c] for every grid point g. */
static int read_class(fm_report_page_t *page, const cJSON *average, size_t c, double *out, size_t n,
                      const char *feature) {
    size_t g = 0;
    const cJSON *point;
    cJSON_ArrayForEach(point, average) {
        const cJSON *v = cJSON_GetArrayItem(point, (int)c);
        if (!cJSON_IsArray(point) || !cJSON_IsNumber(v))
            return fm_report_fail(page, FM_EINVAL,
                                  "report: partial dependence of '%s': average[%zu] has no "
                                  "probability for class %zu",
                                  feature, g, c);
        out[g++] = v->valuedouble;
    }
    return g == n ? FM_OK
                  : fm_report_fail(page, FM_EINVAL,
                                   "report: partial dependence of '%s': %zu averages for %zu grid "
                                   "points",
                                   feature, g, n);
}

/* The partial dependence plot of one feature (entry of "partial_dependence"). */
static void pd_card(fm_report_page_t *page, const fm_model_t *m, const cJSON *entry) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(entry, "feature");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(entry, "kind");
    const cJSON *grid = cJSON_GetObjectItemCaseSensitive(entry, "grid");
    const cJSON *average = cJSON_GetObjectItemCaseSensitive(entry, "average");
    const cJSON *ice = cJSON_GetObjectItemCaseSensitive(entry, "ice");
    if (!cJSON_IsString(name) || !cJSON_IsString(kind) || !cJSON_IsArray(grid) ||
        !cJSON_IsArray(average)) {
        fm_report_fail(page, FM_EINVAL,
                       "report: importance.partial_dependence has an entry "
                       "without feature, kind, grid or average");
        return;
    }
    const char *feature = name->valuestring;
    int numeric = !strcmp(kind->valuestring, "numeric");
    size_t n = (size_t)cJSON_GetArraySize(grid);
    if (n == 0) return;
    double *x = malloc(n * 2 * sizeof *x);
    const char **labels = malloc(n * sizeof *labels);
    if (!x || !labels) {
        fm_report_fail(page, FM_ENOMEM, "out of memory");
        free(x);
        free(labels);
        return;
    }
    double *y = x + n;
    char number[32];
    size_t g = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, grid) {
        if (numeric && cJSON_IsNumber(v)) {
            x[g] = v->valuedouble;
        } else if (!numeric && cJSON_IsString(v)) {
            labels[g] = v->valuestring;
        } else {
            fm_report_fail(page, FM_EINVAL,
                           "report: partial dependence of '%s': grid[%zu] is not a %s", feature, g,
                           numeric ? "number" : "category");
            break;
        }
        g++;
    }
    const char *yaxis = m->task == FM_TASK_REGRESSION ? "Mean prediction"
                        : m->task == FM_TASK_BINARY   ? "Mean P(positive)"
                                                      : "Mean P(class)";
    cJSON *chart = page->rc ? NULL : fm_report_chart_new(page, numeric ? "scatter" : "bar");
    if (!numeric) fm_report_chart_labels(page, chart, labels, n);
    if (m->task == FM_TASK_MULTICLASS) {
        for (size_t c = 0; c < m->nclasses && !page->rc; c++)
            if (!read_class(page, average, c, y, n, feature)) {
                if (numeric)
                    fm_report_chart_xy(page, chart, m->classes[c], x, y, n,
                                       fm_report_series_color(c), 1);
                else
                    fm_report_chart_values(page, chart, m->classes[c], y, n,
                                           fm_report_series_color(c), 0);
            }
    } else {
        /* ICE curves first, faint, so the average is drawn over them. */
        size_t r = 0;
        const cJSON *curve;
        if (numeric) cJSON_ArrayForEach(curve, ice) {
                if (page->rc || read_numbers(page, curve, y, n, feature, "an ICE curve")) break;
                snprintf(number, sizeof number, "ICE (%d rows)", cJSON_GetArraySize(ice));
                cJSON *set = fm_report_chart_xy(page, chart, r == 0 ? number : "", x, y, n,
                                                "rgba(140,150,168,0.35)", 1);
                if (set && !cJSON_ReplaceItemInObject(set, "borderWidth", cJSON_CreateNumber(1)))
                    fm_report_fail(page, FM_ENOMEM, "out of memory");
                r++;
            }
        if (!page->rc && !read_numbers(page, average, y, n, feature, "average")) {
            cJSON *set = numeric ? fm_report_chart_xy(page, chart, "Partial dependence", x, y, n,
                                                      FM_REPORT_COLOR_PRIMARY, 1)
                                 : fm_report_chart_values(page, chart, "Partial dependence", y, n,
                                                          FM_REPORT_COLOR_PRIMARY, 0);
            if (set && numeric &&
                !cJSON_ReplaceItemInObject(set, "borderWidth", cJSON_CreateNumber(3)))
                fm_report_fail(page, FM_ENOMEM, "out of memory");
        }
        if (r == 0) fm_report_chart_no_legend(page, chart);
    }
    fm_report_chart_axis(page, chart, "x", numeric ? "linear" : "category", feature, NAN, NAN);
    fm_report_chart_axis(page, chart, "y", "linear", yaxis, NAN, NAN);
    if (page->rc) cJSON_Delete(chart);
    fm_report_card(page, feature,
                   numeric ? "The mean prediction with the feature set to each value for every "
                             "row (grey: individual rows)."
                           : "The mean prediction with the feature set to each category for "
                             "every row.",
                   page->rc ? NULL : chart);
    free(x);
    free(labels);
}

static void pd_section(fm_report_page_t *page, const fm_report_input_t *in,
                       const feature_row_t *rows, size_t nrows) {
    const cJSON *pd = cJSON_GetObjectItemCaseSensitive(in->importance, "partial_dependence");
    if (!pd) return;
    if (!cJSON_IsArray(pd)) {
        fm_report_fail(page, FM_EINVAL, "report: importance.partial_dependence is not an array");
        return;
    }
    int total = cJSON_GetArraySize(pd);
    if (total == 0) return;
    fm_report_puts(page, "<h3>Partial dependence</h3><p class=\"lead\">");
    if (total > MAX_PD_PLOTS)
        fm_report_printf(page, "The %d most important of %d features, ", MAX_PD_PLOTS, total);
    else
        fm_report_puts(page, "Every feature, ");
    fm_report_puts(page, "the most important first.</p>\n<div class=\"grid small\">\n");
    /* In the order of the importance table; features it lacks after, in their own order. */
    int drawn = 0;
    unsigned char *done = calloc((size_t)total, 1);
    if (!done) {
        fm_report_fail(page, FM_ENOMEM, "out of memory");
        return;
    }
    for (size_t pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < (pass ? (size_t)total : nrows) && drawn < MAX_PD_PLOTS; i++) {
            int j = 0;
            const cJSON *entry;
            cJSON_ArrayForEach(entry, pd) {
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(entry, "feature");
                int match =
                    pass ? (size_t)j == i
                         : cJSON_IsString(name) && !strcmp(name->valuestring, rows[i].feature);
                if (match && !done[j]) {
                    done[j] = 1;
                    pd_card(page, in->model, entry);
                    drawn++;
                    break;
                }
                j++;
            }
        }
    free(done);
    fm_report_puts(page, "</div>\n");
}

void fm_report_section_importance(fm_report_page_t *page, const fm_report_context_t *ctx) {
    const fm_report_input_t *in = ctx->in;
    if (!in->importance && !in->mean_abs_attribution) return;
    size_t n = 0;
    feature_row_t *rows = collect_rows(page, in, &n);
    if (!rows) return;
    fm_report_puts(page, "<section id=\"importance\"><h2>Feature importance</h2>\n");
    const cJSON *imp = in->importance;
    if (imp) {
        const cJSON *metric = cJSON_GetObjectItemCaseSensitive(imp, "metric");
        const cJSON *score = cJSON_GetObjectItemCaseSensitive(imp, "score");
        const cJSON *used = cJSON_GetObjectItemCaseSensitive(imp, "rows");
        const cJSON *repeats = cJSON_GetObjectItemCaseSensitive(imp, "repeats");
        fm_report_puts(page, "<p class=\"lead\">Permutation importance: how much the ");
        fm_report_text(page, cJSON_IsString(metric) ? metric->valuestring : "score");
        fm_report_puts(page, " (");
        fm_report_number(page, cJSON_IsNumber(score) ? score->valuedouble : NAN, 4);
        fm_report_puts(page, " as the rows are) falls when one feature's values are shuffled "
                             "across ");
        fm_report_number(page, cJSON_IsNumber(used) ? used->valuedouble : NAN, 0);
        fm_report_puts(page, " rows, mean over ");
        fm_report_number(page, cJSON_IsNumber(repeats) ? repeats->valuedouble : NAN, 0);
        fm_report_puts(page, " shuffles.");
        if (in->mean_abs_attribution)
            fm_report_puts(page, " Mean |attribution|: the average size of each feature's "
                                 "contribution to single predictions.");
        fm_report_puts(page, "</p>\n");
    } else {
        fm_report_puts(page, "<p class=\"lead\">Mean |attribution|: the average size of each "
                             "feature's contribution to single predictions.</p>\n");
    }
    fm_report_puts(page, "<div class=\"grid\">\n");
    if (imp)
        bars_card(page, rows, n, 0, "Permutation importance", "Drop in score when shuffled",
                  "The largest first; a value near zero means the model does not rely on the "
                  "feature.");
    if (in->mean_abs_attribution)
        bars_card(page, rows, n, 1, "Mean absolute attribution", "Mean |attribution|",
                  "The largest first, in the model's score units (log-odds for classifiers).");
    fm_report_puts(page, "</div>\n");
    importance_table(page, rows, n);
    if (imp) pd_section(page, in, rows, n);
    fm_report_puts(page, "</section>\n");
    free(rows);
}
