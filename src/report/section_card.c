/*
 * The model card: what the model is and how it was made, as recorded in its description
 * (fm_model_describe): identity, task and classes, architecture or booster, features with their
 * types and encoding, preprocessing, training settings, validation scheme and metrics, the
 * training data's fingerprint, protected attributes and creation time; and the training history
 * as a chart. Members of the description that vary by family (training settings, booster) are
 * shown generically, member by member, so a new setting appears without a change here.
 */
#include "report/report_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Longest list written out in full; longer ones show this many items and the count. */
#define MAX_LIST_ITEMS 24

static void write_value(fm_report_page_t *page, const cJSON *v, int depth);

/* "key: value; key: value" for an object's members. */
static void write_members(fm_report_page_t *page, const cJSON *object, int depth) {
    const cJSON *member;
    int first = 1;
    cJSON_ArrayForEach(member, object) {
        if (!first) fm_report_puts(page, "; ");
        first = 0;
        fm_report_text(page, member->string);
        fm_report_puts(page, ": ");
        write_value(page, member, depth + 1);
    }
}

/* A JSON value as readable text: scalars as they are, lists joined, objects as their members. */
static void write_value(fm_report_page_t *page, const cJSON *v, int depth) {
    if (cJSON_IsString(v)) {
        fm_report_text(page, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        fm_report_general(page, v->valuedouble);
    } else if (cJSON_IsBool(v)) {
        fm_report_puts(page, cJSON_IsTrue(v) ? "yes" : "no");
    } else if (cJSON_IsArray(v)) {
        int n = cJSON_GetArraySize(v);
        if (n == 0) {
            fm_report_puts(page, "none");
            return;
        }
        if (depth > 2) {
            fm_report_printf(page, "%d items", n);
            return;
        }
        int i = 0;
        const cJSON *item;
        cJSON_ArrayForEach(item, v) {
            if (i == MAX_LIST_ITEMS) {
                fm_report_printf(page, ", \xe2\x80\xa6 (%d in all)", n);
                break;
            }
            if (i++) fm_report_puts(page, ", ");
            write_value(page, item, depth + 1);
        }
    } else if (cJSON_IsObject(v)) {
        if (depth > 2)
            fm_report_puts(page, "\xe2\x80\xa6");
        else
            write_members(page, v, depth);
    } else {
        fm_report_puts(page, "\xe2\x80\x94");
    }
}

/* One row of the card: a heading cell and the value of description[key] (nothing when absent). */
static void row_member(fm_report_page_t *page, const char *heading, const cJSON *object,
                       const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(object, key);
    if (!v) return;
    fm_report_puts(page, "<tr><th>");
    fm_report_text(page, heading);
    fm_report_puts(page, "</th><td>");
    write_value(page, v, 0);
    fm_report_puts(page, "</td></tr>\n");
}

static void row_text(fm_report_page_t *page, const char *heading, const char *text) {
    fm_report_puts(page, "<tr><th>");
    fm_report_text(page, heading);
    fm_report_puts(page, "</th><td>");
    fm_report_text(page, text);
    fm_report_puts(page, "</td></tr>\n");
}

/* Every member of object except the lists of records (history) as its own row. */
static void rows_settings(fm_report_page_t *page, const cJSON *object) {
    const cJSON *member;
    cJSON_ArrayForEach(member, object) {
        if (cJSON_IsArray(member) && cJSON_IsObject(cJSON_GetArrayItem(member, 0))) continue;
        if (!strcmp(member->string, "metrics") || !strcmp(member->string, "train_metrics"))
            continue;
        fm_report_puts(page, "<tr><th>");
        fm_report_text(page, member->string);
        fm_report_puts(page, "</th><td>");
        write_value(page, member, 0);
        fm_report_puts(page, "</td></tr>\n");
    }
}

static void write_classes(fm_report_page_t *page, const fm_model_t *m) {
    if (m->task == FM_TASK_REGRESSION) {
        fm_report_puts(page, "regression: a number in the target's units");
        return;
    }
    for (size_t k = 0; k < m->nclasses; k++) {
        if (k) fm_report_puts(page, ", ");
        fm_report_text(page, m->classes[k]);
        if (m->task == FM_TASK_BINARY) fm_report_puts(page, k ? " (positive)" : " (negative)");
    }
}

/* The protected attributes: those recorded in the description, and those of the fairness input. */
static void row_protected(fm_report_page_t *page, const fm_report_context_t *ctx) {
    const cJSON *recorded = cJSON_GetObjectItemCaseSensitive(ctx->description, "fairness");
    const cJSON *attributes = cJSON_GetObjectItemCaseSensitive(ctx->in->fairness, "attributes");
    fm_report_puts(page, "<tr><th>Protected attributes</th><td>");
    int any = 0;
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(recorded, "protected");
    if (cJSON_GetArraySize(names) > 0) {
        /* The settings train/govern.c stores: [{"attribute", "bands", "reference"}, ...]. */
        fm_report_puts(page, "recorded at training: ");
        const cJSON *a;
        int i = 0;
        cJSON_ArrayForEach(a, names) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(a, "attribute");
            if (i++) fm_report_puts(page, ", ");
            if (cJSON_IsString(name))
                fm_report_text(page, name->valuestring);
            else
                write_value(page, a, 1);
        }
        const cJSON *excluded =
            cJSON_GetObjectItemCaseSensitive(recorded, "excluded_from_features");
        if (cJSON_IsTrue(excluded)) fm_report_puts(page, " (not model features)");
        const cJSON *mitigation = cJSON_GetObjectItemCaseSensitive(recorded, "mitigation");
        fm_report_puts(page, "; mitigation: ");
        fm_report_text(page, cJSON_IsString(mitigation) ? mitigation->valuestring : "none");
        any = 1;
    }
    if (cJSON_GetArraySize(attributes) > 0) {
        fm_report_puts(page, any ? "; examined in this report: " : "examined in this report: ");
        const cJSON *a;
        int i = 0;
        cJSON_ArrayForEach(a, attributes) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(a, "attribute");
            if (!cJSON_IsString(name)) continue;
            if (i++) fm_report_puts(page, ", ");
            fm_report_text(page, name->valuestring);
        }
        any = 1;
    }
    if (!any) fm_report_puts(page, "none given");
    fm_report_puts(page, "</td></tr>\n");
}

/* The features as the preprocessing encodes them. */
static void features_table(fm_report_page_t *page, const fm_prep_t *prep) {
    fm_report_printf(
        page,
        "<h3>Features</h3><p class=\"lead\">%zu input columns, %zu encoded model "
        "inputs. Numeric columns: missing values replaced by the training median, then "
        "standardised. Categorical columns: one-hot over the training categories "
        "(missing: the most frequent; unseen: all zeros).</p>\n"
        "<div class=\"scroll\"><table class=\"compact\"><thead><tr><th class=\"num\">"
        "#</th><th>Feature</th><th>Type</th><th>Encoding</th><th>Training "
        "statistics</th></tr></thead><tbody>\n",
        prep->ncolumns, prep->nfeatures);
    for (size_t i = 0; i < prep->ncolumns; i++) {
        const fm_prep_column_t *c = &prep->columns[i];
        fm_report_printf(page, "<tr><td class=\"num\">%zu</td><td>", i + 1);
        fm_report_text(page, c->name);
        fm_report_puts(page, "</td><td>");
        fm_report_text(page, fm_column_type_name(c->type));
        if (c->pii) fm_report_puts(page, " <span class=\"badge info\">personal data</span>");
        fm_report_puts(page, "</td><td>");
        if (c->width == 0)
            fm_report_puts(page, "not used (no encoded input)");
        else if (c->type == FM_COLUMN_NUMERIC && c->binned)
            fm_report_printf(page, "one-hot, %zu bins", c->nedges + 1);
        else if (c->type == FM_COLUMN_NUMERIC)
            fm_report_puts(page, "standardised");
        else
            fm_report_printf(page, "one-hot, %zu categories", c->categories.count);
        if (c->missing_indicator) fm_report_puts(page, "; missing indicator");
        fm_report_puts(page, "</td><td>");
        if (c->type == FM_COLUMN_NUMERIC && c->binned) {
            /* A scorecard's bins: (-inf, e1], (e1, e2], ..., (ek, inf). */
            fm_report_puts(page, "<details><summary>bins</summary>(-inf, ");
            for (size_t k = 0; k < c->nedges; k++) {
                fm_report_general(page, c->edges[k]);
                fm_report_puts(page, "], (");
                fm_report_general(page, c->edges[k]);
                fm_report_puts(page, ", ");
            }
            fm_report_puts(page, "inf)</details>");
        } else if (c->type == FM_COLUMN_NUMERIC) {
            fm_report_puts(page, "median ");
            fm_report_general(page, c->median);
            fm_report_puts(page, ", mean ");
            fm_report_general(page, c->mean);
            fm_report_puts(page, ", std ");
            fm_report_general(page, c->std);
        } else if (c->categories.count > 0) {
            fm_report_puts(page, "<details><summary>categories</summary>");
            for (size_t k = 0; k < c->categories.count; k++) {
                if (k) fm_report_puts(page, ", ");
                fm_report_text(page, c->categories.strings[k]);
            }
            fm_report_puts(page, "</details>");
        } else {
            fm_report_puts(page, "\xe2\x80\x94");
        }
        fm_report_puts(page, "</td></tr>\n");
    }
    fm_report_puts(page, "</tbody></table></div>\n");
}

/* The validation and training metrics recorded at training, side by side. */
static void recorded_metrics(fm_report_page_t *page, const cJSON *validation) {
    const cJSON *valid = cJSON_GetObjectItemCaseSensitive(validation, "metrics");
    const cJSON *train = cJSON_GetObjectItemCaseSensitive(validation, "train_metrics");
    if (!cJSON_IsObject(valid)) return;
    fm_report_puts(page, "<h3>Metrics recorded at training</h3><table class=\"compact\" "
                         "style=\"width:auto\"><thead><tr><th>Metric</th><th class=\"num\">"
                         "Validation</th>");
    if (train) fm_report_puts(page, "<th class=\"num\">Training</th>");
    fm_report_puts(page, "</tr></thead><tbody>\n");
    const cJSON *metric;
    cJSON_ArrayForEach(metric, valid) {
        if (!cJSON_IsNumber(metric) && !cJSON_IsNull(metric)) continue;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(train, metric->string);
        fm_report_puts(page, "<tr><td>");
        fm_report_text(page, metric->string);
        fm_report_puts(page, "</td><td class=\"num\">");
        fm_report_general(page, cJSON_IsNumber(metric) ? metric->valuedouble : NAN);
        fm_report_puts(page, "</td>");
        if (train) {
            fm_report_puts(page, "<td class=\"num\">");
            fm_report_general(page, cJSON_IsNumber(t) ? t->valuedouble : NAN);
            fm_report_puts(page, "</td>");
        }
        fm_report_puts(page, "</tr>\n");
    }
    fm_report_puts(page, "</tbody></table>\n");
}

/* The loss (or any recorded measure) by epoch or boosting round, from training.history. */
static void history_chart(fm_report_page_t *page, const cJSON *training) {
    const cJSON *history = cJSON_GetObjectItemCaseSensitive(training, "history");
    int n = cJSON_GetArraySize(history);
    const cJSON *first = cJSON_GetArrayItem(history, 0);
    if (n < 2 || !cJSON_IsObject(first)) return;
    const char *step = cJSON_GetObjectItemCaseSensitive(first, "epoch") ? "epoch" : "round";
    double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    cJSON *chart = x && y ? fm_report_chart_new(page, "scatter") : NULL;
    if (!x || !y) fm_report_fail(page, FM_ENOMEM, "out of memory");
    const cJSON *series;
    size_t nseries = 0;
    /* One line per numeric member of the first record other than the step (loss, val_loss, ...);
     * the AUC (a different scale) goes on a second axis. */
    cJSON_ArrayForEach(series, first) {
        if (!chart || !cJSON_IsNumber(series) || !strcmp(series->string, step)) continue;
        const cJSON *record;
        size_t m = 0;
        cJSON_ArrayForEach(record, history) {
            const cJSON *sx = cJSON_GetObjectItemCaseSensitive(record, step);
            const cJSON *sy = cJSON_GetObjectItemCaseSensitive(record, series->string);
            if (!cJSON_IsNumber(sx) || !cJSON_IsNumber(sy)) continue;
            x[m] = sx->valuedouble;
            y[m] = sy->valuedouble;
            m++;
        }
        cJSON *set = fm_report_chart_xy(page, chart, series->string, x, y, m,
                                        fm_report_series_color(nseries++), 1);
        if (set && strstr(series->string, "auc") && !cJSON_AddStringToObject(set, "yAxisID", "y2"))
            fm_report_fail(page, FM_ENOMEM, "out of memory");
    }
    free(x);
    free(y);
    fm_report_chart_axis(page, chart, "x", "linear", step, NAN, NAN);
    fm_report_chart_axis(page, chart, "y", "linear", "loss", NAN, NAN);
    cJSON *y2 = fm_report_chart_axis(page, chart, "y2", "linear", "AUC", NAN, NAN);
    if (y2 && (!cJSON_AddStringToObject(y2, "position", "right") ||
               !cJSON_AddStringToObject(y2, "display", "auto")))
        fm_report_fail(page, FM_ENOMEM, "out of memory");
    fm_report_puts(page, "<div class=\"grid\">");
    fm_report_card(page, "Training history",
                   "Measures recorded after each epoch or boosting round of training; the model "
                   "kept is the best on the validation rows.",
                   chart);
    fm_report_puts(page, "</div>\n");
}

void fm_report_section_card(fm_report_page_t *page, const fm_report_context_t *ctx) {
    const fm_report_input_t *in = ctx->in;
    const fm_model_t *m = in->model;
    const cJSON *d = ctx->description;
    fm_report_puts(page, "<section id=\"model-card\"><h2>Model card</h2>\n"
                         "<table class=\"card-table\"><tbody>\n");
    row_text(page, "Model", in->model_name && in->model_name[0] ? in->model_name : "(unnamed)");
    if (in->version >= 0)
        fm_report_printf(page, "<tr><th>Registry version</th><td>%ld</td></tr>\n", in->version);
    else
        row_text(page, "Registry version", "not registered");
    row_text(page, "Task", fm_task_name(m->task));
    row_text(page, "Family", m->family);
    row_text(page, "Target column", m->target);
    fm_report_puts(page, "<tr><th>Classes</th><td>");
    write_classes(page, m);
    fm_report_puts(page, "</td></tr>\n");
    row_member(page, "Architecture", d, "architecture");
    row_member(page, "Booster", d, "booster");
    fm_report_printf(page,
                     "<tr><th>Features</th><td>%zu input columns, %zu encoded inputs (listed "
                     "below)</td></tr>\n",
                     m->prep->ncolumns, m->prep->nfeatures);
    row_protected(page, ctx);
    row_member(page, "Created", d, "created");
    row_member(page, "Trained by finmaas", d, "finmaas_version");
    row_member(page, "Model file format", d, "format_version");
    fm_report_puts(page, "</tbody></table>\n");

    const cJSON *training = cJSON_GetObjectItemCaseSensitive(d, "training");
    if (cJSON_IsObject(training)) {
        fm_report_puts(page, "<h3>Training settings</h3><table class=\"card-table compact\">"
                             "<tbody>\n");
        rows_settings(page, training);
        fm_report_puts(page, "</tbody></table>\n");
    }
    const cJSON *validation = cJSON_GetObjectItemCaseSensitive(d, "validation");
    if (cJSON_IsObject(validation)) {
        fm_report_puts(page, "<h3>Validation scheme</h3><table class=\"card-table compact\">"
                             "<tbody>\n");
        rows_settings(page, validation);
        fm_report_puts(page, "</tbody></table>\n");
        recorded_metrics(page, validation);
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(d, "data");
    if (cJSON_IsObject(data)) {
        fm_report_puts(page, "<h3>Training data fingerprint</h3><table class=\"card-table "
                             "compact\"><tbody>\n");
        rows_settings(page, data);
        fm_report_puts(page, "</tbody></table>\n");
    }
    features_table(page, m->prep);
    history_chart(page, training);
    fm_report_puts(page, "</section>\n");
}
