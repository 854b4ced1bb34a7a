/*
 * Chart.js configurations as JSON. A chart of the report is a configuration object
 * {"type", "data": {"labels"?, "datasets": [...]}, "options": {...}} built here and handed to the
 * page's script, which only calls `new Chart(canvas, config)` on each: no chart logic lives in
 * JavaScript, so what a chart shows is decided, and tested, in C. Settings shared by every chart
 * (no animation, fonts, sizing) are Chart.defaults set once by the page's script.
 */
#include "report/report_internal.h"

#include "core/json.h"

#include <math.h>

/* A qualitative palette that stays distinguishable in greyscale print. */
static const char *const palette[] = {
    FM_REPORT_COLOR_PRIMARY,
    FM_REPORT_COLOR_NEGATIVE,
    FM_REPORT_COLOR_GOOD,
    "#7b5ea7",
    "#c9a227",
    "#2a9bb5",
    "#d16ba5",
    "#5b6b7f",
};

const char *fm_report_series_color(size_t i) {
    return palette[i % (sizeof palette / sizeof palette[0])];
}

cJSON *fm_report_chart_new(fm_report_page_t *page, const char *type) {
    if (page->rc) return NULL;
    cJSON *chart = fm_report_check(page, cJSON_CreateObject());
    if (!chart) return NULL;
    cJSON *data = cJSON_AddObjectToObject(chart, "data");
    cJSON *options = cJSON_AddObjectToObject(chart, "options");
    if (!cJSON_AddStringToObject(chart, "type", type) || !data ||
        !cJSON_AddArrayToObject(data, "datasets") || !options ||
        !cJSON_AddObjectToObject(options, "scales")) {
        cJSON_Delete(chart);
        fm_report_fail(page, FM_ENOMEM, "out of memory");
        return NULL;
    }
    return chart;
}

void fm_report_chart_labels(fm_report_page_t *page, cJSON *chart, const char *const *labels,
                            size_t n) {
    if (!chart || page->rc) return;
    cJSON *array = fm_report_check(page, cJSON_CreateArray());
    if (!array) return;
    for (size_t i = 0; i < n; i++)
        if (!cJSON_AddItemToArray(array, fm_report_check(page, cJSON_CreateString(labels[i]))))
            break;
    if (!cJSON_AddItemToObject(cJSON_GetObjectItem(chart, "data"), "labels", array)) {
        cJSON_Delete(array);
        fm_report_fail(page, FM_ENOMEM, "out of memory");
    }
}

cJSON *fm_report_chart_axis(fm_report_page_t *page, cJSON *chart, const char *axis,
                            const char *type, const char *title, double min, double max) {
    if (!chart || page->rc) return NULL;
    cJSON *scales = cJSON_GetObjectItem(cJSON_GetObjectItem(chart, "options"), "scales");
    cJSON *scale = fm_report_check(page, cJSON_AddObjectToObject(scales, axis));
    if (!scale) return NULL;
    cJSON *text = cJSON_AddObjectToObject(scale, "title");
    int ok = cJSON_AddStringToObject(scale, "type", type) && text &&
             cJSON_AddBoolToObject(text, "display", 1) &&
             cJSON_AddStringToObject(text, "text", title);
    if (ok && isfinite(min)) ok = cJSON_AddNumberToObject(scale, "min", min) != NULL;
    if (ok && isfinite(max)) ok = cJSON_AddNumberToObject(scale, "max", max) != NULL;
    if (!ok) fm_report_fail(page, FM_ENOMEM, "out of memory");
    return ok ? scale : NULL;
}

/* A new dataset object in chart's datasets with its label and colour. */
static cJSON *add_dataset(fm_report_page_t *page, cJSON *chart, const char *label,
                          const char *color) {
    if (!chart || page->rc) return NULL;
    cJSON *datasets = cJSON_GetObjectItem(cJSON_GetObjectItem(chart, "data"), "datasets");
    cJSON *set = fm_report_check(page, cJSON_CreateObject());
    if (!set) return NULL;
    if (!cJSON_AddItemToArray(datasets, set)) {
        cJSON_Delete(set);
        fm_report_fail(page, FM_ENOMEM, "out of memory");
        return NULL;
    }
    if (!cJSON_AddStringToObject(set, "label", label) ||
        !cJSON_AddStringToObject(set, "borderColor", color) ||
        !cJSON_AddStringToObject(set, "backgroundColor", color)) {
        fm_report_fail(page, FM_ENOMEM, "out of memory");
        return NULL;
    }
    return set;
}

/* Line or dot styling of a dataset. */
static void style_line(fm_report_page_t *page, cJSON *set, int line) {
    if (!set) return;
    int ok = cJSON_AddBoolToObject(set, "showLine", line) &&
             cJSON_AddNumberToObject(set, "pointRadius", line ? 0 : 2.5) &&
             cJSON_AddNumberToObject(set, "borderWidth", line ? 2 : 1);
    if (!ok) fm_report_fail(page, FM_ENOMEM, "out of memory");
}

cJSON *fm_report_chart_xy(fm_report_page_t *page, cJSON *chart, const char *label, const double *x,
                          const double *y, size_t n, const char *color, int line) {
    cJSON *set = add_dataset(page, chart, label, color);
    if (!set) return NULL;
    cJSON *points = fm_report_check(page, cJSON_AddArrayToObject(set, "data"));
    for (size_t i = 0; points && i < n; i++) {
        /* A point with an undefined coordinate is left out rather than drawn at 0. */
        if (!isfinite(x[i]) || !isfinite(y[i])) continue;
        cJSON *point = fm_report_check(page, cJSON_CreateObject());
        if (!point) return NULL;
        if (!cJSON_AddItemToArray(points, point) || !cJSON_AddNumberToObject(point, "x", x[i]) ||
            !cJSON_AddNumberToObject(point, "y", y[i])) {
            fm_report_fail(page, FM_ENOMEM, "out of memory");
            return NULL;
        }
    }
    style_line(page, set, line);
    return page->rc ? NULL : set;
}

cJSON *fm_report_chart_values(fm_report_page_t *page, cJSON *chart, const char *label,
                              const double *v, size_t n, const char *color, int line) {
    cJSON *set = add_dataset(page, chart, label, color);
    if (!set) return NULL;
    /* fm_json_double_array writes null for NaN: Chart.js leaves a gap there. */
    cJSON *values = fm_report_check(page, fm_json_double_array(v, n));
    if (!values) return NULL;
    if (!cJSON_AddItemToObject(set, "data", values)) {
        cJSON_Delete(values);
        fm_report_fail(page, FM_ENOMEM, "out of memory");
        return NULL;
    }
    if (line) {
        if (!cJSON_AddStringToObject(set, "type", "line")) {
            fm_report_fail(page, FM_ENOMEM, "out of memory");
            return NULL;
        }
        style_line(page, set, 1);
    }
    return page->rc ? NULL : set;
}

void fm_report_chart_diagonal(fm_report_page_t *page, cJSON *chart, const char *label, double lo,
                              double hi) {
    double ends[2] = {lo, hi};
    cJSON *set = fm_report_chart_xy(page, chart, label, ends, ends, 2, FM_REPORT_COLOR_NEUTRAL, 1);
    if (!set) return;
    cJSON *dash = fm_report_check(page, cJSON_AddArrayToObject(set, "borderDash"));
    if (!dash) return;
    if (!cJSON_AddItemToArray(dash, fm_report_check(page, cJSON_CreateNumber(5))) ||
        !cJSON_AddItemToArray(dash, fm_report_check(page, cJSON_CreateNumber(4))) ||
        !cJSON_ReplaceItemInObject(set, "borderWidth", cJSON_CreateNumber(1)))
        fm_report_fail(page, FM_ENOMEM, "out of memory");
}

void fm_report_chart_no_legend(fm_report_page_t *page, cJSON *chart) {
    if (!chart || page->rc) return;
    cJSON *plugins = cJSON_AddObjectToObject(cJSON_GetObjectItem(chart, "options"), "plugins");
    cJSON *legend = plugins ? cJSON_AddObjectToObject(plugins, "legend") : NULL;
    if (!legend || !cJSON_AddBoolToObject(legend, "display", 0))
        fm_report_fail(page, FM_ENOMEM, "out of memory");
}
