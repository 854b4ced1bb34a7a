/*
 * The fairness section, from `finmaas fairness`'s object (src/fairness: per protected attribute,
 * per group rates and comparisons against a reference group): a table per attribute with the
 * groups that break the four-fifths rule (disparate impact below 0.8) highlighted, and charts of
 * the selection rate, TPR and FPR by group and of the disparate impact with the four-fifths line.
 * When the model was also measured after reweighing (fairness_mitigated), both are shown: the
 * charts side by side in each, and a second table.
 *
 * The objects may come from a file: every member used is checked, and a malformed one fails the
 * report with FM_EINVAL naming it.
 */
#include "report/report_internal.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define FOUR_FIFTHS 0.8

/* One group's row as read from the object. */
typedef struct group_row {
    const char *name; /* borrowed */
    double count, selection_rate, tpr, fpr, precision, disparate_impact;
    double equal_opportunity, average_odds, p_value;
    int violation;    /* 1, 0, or -1 when undefined */
    const char *test; /* borrowed, NULL when none */
} group_row_t;

/* An attribute's groups, or NULL after recording the failure (FM_EINVAL naming the member). */
static group_row_t *read_groups(fm_report_page_t *page, const cJSON *attribute, const char *where,
                                size_t *n) {
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(attribute, "attribute");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(attribute, "groups");
    if (!cJSON_IsString(name) || !cJSON_IsArray(groups)) {
        fm_report_fail(page, FM_EINVAL, "report: %s has an attribute without a name or groups",
                       where);
        return NULL;
    }
    size_t m = (size_t)cJSON_GetArraySize(groups);
    group_row_t *rows = malloc((m ? m : 1) * sizeof *rows);
    if (!rows) {
        fm_report_fail(page, FM_ENOMEM, "out of memory");
        return NULL;
    }
    static const struct {
        const char *key;
        size_t offset;
    } numbers[] = {
        {"count", offsetof(group_row_t, count)},
        {"selection_rate", offsetof(group_row_t, selection_rate)},
        {"tpr", offsetof(group_row_t, tpr)},
        {"fpr", offsetof(group_row_t, fpr)},
        {"precision", offsetof(group_row_t, precision)},
        {"disparate_impact_ratio", offsetof(group_row_t, disparate_impact)},
        {"equal_opportunity_difference", offsetof(group_row_t, equal_opportunity)},
        {"average_odds_difference", offsetof(group_row_t, average_odds)},
        {"p_value", offsetof(group_row_t, p_value)},
    };
    size_t g = 0;
    const cJSON *group;
    cJSON_ArrayForEach(group, groups) {
        group_row_t *r = &rows[g];
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(group, "group");
        if (!cJSON_IsString(label)) {
            fm_report_fail(page, FM_EINVAL, "report: %s attribute '%s': groups[%zu] has no name",
                           where, name->valuestring, g);
            break;
        }
        r->name = label->valuestring;
        for (size_t k = 0; k < sizeof numbers / sizeof numbers[0]; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(group, numbers[k].key);
            double *field = (double *)((char *)r + numbers[k].offset);
            if (cJSON_IsNumber(v))
                *field = v->valuedouble;
            else if (!v || cJSON_IsNull(v))
                *field = NAN;
            else
                fm_report_fail(page, FM_EINVAL,
                               "report: %s attribute '%s' group '%s': %s is not a number", where,
                               name->valuestring, r->name, numbers[k].key);
        }
        const cJSON *flag = cJSON_GetObjectItemCaseSensitive(group, "four_fifths_violation");
        r->violation = cJSON_IsBool(flag) ? cJSON_IsTrue(flag) : -1;
        /* Derived from the ratio when the flag is absent, by the same rule. */
        if (r->violation < 0 && isfinite(r->disparate_impact))
            r->violation = r->disparate_impact < FOUR_FIFTHS;
        const cJSON *test = cJSON_GetObjectItemCaseSensitive(group, "test");
        r->test = cJSON_IsString(test) ? test->valuestring : NULL;
        g++;
    }
    if (page->rc) {
        free(rows);
        return NULL;
    }
    *n = m;
    return rows;
}

/* The attribute called name in a fairness object's attributes, or NULL. */
static const cJSON *find_attribute(const cJSON *fairness, const char *name) {
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(fairness, "attributes")) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(a, "attribute");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return a;
    }
    return NULL;
}

static void cell(fm_report_page_t *page, double v, int decimals) {
    fm_report_puts(page, "<td class=\"num\">");
    fm_report_number(page, v, decimals);
    fm_report_puts(page, "</td>");
}

static void groups_table(fm_report_page_t *page, const group_row_t *rows, size_t n,
                         const char *reference) {
    fm_report_puts(page, "<div class=\"scroll\"><table class=\"compact\"><thead><tr><th>Group</th>"
                         "<th class=\"num\">Rows</th><th class=\"num\">Selection rate</th>"
                         "<th class=\"num\">TPR</th><th class=\"num\">FPR</th><th class=\"num\">"
                         "Precision</th><th class=\"num\">Disparate impact</th><th>Four-fifths "
                         "rule</th><th class=\"num\">Equal opp. diff.</th><th class=\"num\">"
                         "Avg. odds diff.</th><th>Test</th><th class=\"num\">p-value</th></tr>"
                         "</thead><tbody>\n");
    for (size_t g = 0; g < n; g++) {
        const group_row_t *r = &rows[g];
        int is_reference = reference && !strcmp(reference, r->name);
        fm_report_printf(page, "<tr%s><td>",
                         r->violation == 1 ? " class=\"violation\""
                         : is_reference    ? " class=\"reference\""
                                           : "");
        fm_report_text(page, r->name);
        fm_report_puts(page, "</td>");
        cell(page, r->count, 0);
        cell(page, r->selection_rate, 4);
        cell(page, r->tpr, 4);
        cell(page, r->fpr, 4);
        cell(page, r->precision, 4);
        cell(page, r->disparate_impact, 4);
        fm_report_puts(page, is_reference        ? "<td><span class=\"badge info\">reference</span>"
                             : r->violation == 1 ? "<td><span class=\"badge bad\">violation</span>"
                             : r->violation == 0 ? "<td><span class=\"badge good\">passes</span>"
                                                 : "<td>\xe2\x80\x94");
        fm_report_puts(page, "</td>");
        cell(page, r->equal_opportunity, 4);
        cell(page, r->average_odds, 4);
        fm_report_puts(page, "<td style=\"white-space:nowrap\">");
        fm_report_text(page, r->test ? r->test : "\xe2\x80\x94");
        fm_report_puts(page, "</td><td class=\"num\">");
        if (isfinite(r->p_value))
            fm_report_printf(page, "%.3g", r->p_value);
        else
            fm_report_puts(page, "\xe2\x80\x94");
        fm_report_puts(page, "</td></tr>\n");
    }
    fm_report_puts(page, "</tbody></table></div>\n");
}

/* The value of field for each group of rows, in the order of labels (NaN where a group of labels
 * is missing from rows). */
static void by_label(const group_row_t *rows, size_t n, const char *const *labels, size_t nlabels,
                     size_t offset, double *out) {
    for (size_t i = 0; i < nlabels; i++) {
        out[i] = NAN;
        for (size_t g = 0; g < n; g++)
            if (!strcmp(rows[g].name, labels[i]))
                out[i] = *(const double *)((const char *)&rows[g] + offset);
    }
}

/* Bar colours: the alert colour where the ratio is below four fifths. */
static void violation_colors(fm_report_page_t *page, cJSON *set, const double *ratio, size_t n,
                             const char *ok, const char *bad) {
    if (!set) return;
    cJSON *colors = fm_report_check(page, cJSON_CreateArray());
    for (size_t i = 0; colors && i < n; i++)
        if (!cJSON_AddItemToArray(
                colors, fm_report_check(
                            page, cJSON_CreateString(
                                      isfinite(ratio[i]) && ratio[i] < FOUR_FIFTHS ? bad : ok))))
            break;
    if (colors && !cJSON_ReplaceItemInObject(set, "backgroundColor", colors)) {
        cJSON_Delete(colors);
        fm_report_fail(page, FM_ENOMEM, "out of memory");
    }
}

static void attribute_charts(fm_report_page_t *page, const group_row_t *rows, size_t n,
                             const group_row_t *after, size_t nafter) {
    const char **labels = malloc((n ? n : 1) * sizeof *labels);
    double *v = malloc((n ? n : 1) * 2 * sizeof *v);
    if (!labels || !v) {
        fm_report_fail(page, FM_ENOMEM, "out of memory");
        free(labels);
        free(v);
        return;
    }
    double *w = v + n;
    for (size_t g = 0; g < n; g++)
        labels[g] = rows[g].name;
    const char *before_label = after ? "Before mitigation" : "";

    cJSON *chart = fm_report_chart_new(page, "bar");
    fm_report_chart_labels(page, chart, labels, n);
    by_label(rows, n, labels, n, offsetof(group_row_t, selection_rate), v);
    fm_report_chart_values(page, chart, before_label, v, n,
                           after ? FM_REPORT_COLOR_NEUTRAL : FM_REPORT_COLOR_PRIMARY, 0);
    if (after) {
        by_label(after, nafter, labels, n, offsetof(group_row_t, selection_rate), w);
        fm_report_chart_values(page, chart, "After reweighing", w, n, FM_REPORT_COLOR_PRIMARY, 0);
    } else {
        fm_report_chart_no_legend(page, chart);
    }
    fm_report_chart_axis(page, chart, "x", "category", "Group", NAN, NAN);
    fm_report_chart_axis(page, chart, "y", "linear", "Selection rate", 0.0, 1.0);
    fm_report_card(page, "Selection rate by group", "The share of each group predicted positive.",
                   chart);

    chart = fm_report_chart_new(page, "bar");
    fm_report_chart_labels(page, chart, labels, n);
    by_label(rows, n, labels, n, offsetof(group_row_t, tpr), v);
    by_label(rows, n, labels, n, offsetof(group_row_t, fpr), w);
    fm_report_chart_values(page, chart, after ? "TPR before" : "TPR", v, n,
                           after ? "rgba(31,78,140,0.45)" : FM_REPORT_COLOR_PRIMARY, 0);
    fm_report_chart_values(page, chart, after ? "FPR before" : "FPR", w, n,
                           after ? "rgba(199,83,43,0.45)" : FM_REPORT_COLOR_NEGATIVE, 0);
    if (after) {
        by_label(after, nafter, labels, n, offsetof(group_row_t, tpr), v);
        by_label(after, nafter, labels, n, offsetof(group_row_t, fpr), w);
        fm_report_chart_values(page, chart, "TPR after", v, n, FM_REPORT_COLOR_PRIMARY, 0);
        fm_report_chart_values(page, chart, "FPR after", w, n, FM_REPORT_COLOR_NEGATIVE, 0);
    }
    fm_report_chart_axis(page, chart, "x", "category", "Group", NAN, NAN);
    fm_report_chart_axis(page, chart, "y", "linear", "Rate", 0.0, 1.0);
    fm_report_card(page, "True and false positive rates by group",
                   "Equal opportunity compares the TPRs; equalized odds both rates.", chart);

    chart = fm_report_chart_new(page, "bar");
    fm_report_chart_labels(page, chart, labels, n);
    by_label(rows, n, labels, n, offsetof(group_row_t, disparate_impact), v);
    cJSON *set =
        fm_report_chart_values(page, chart, after ? "Before mitigation" : "Disparate impact", v, n,
                               FM_REPORT_COLOR_PRIMARY, 0);
    if (after)
        violation_colors(page, set, v, n, "rgba(140,150,168,0.8)", "rgba(180,35,24,0.45)");
    else
        violation_colors(page, set, v, n, FM_REPORT_COLOR_PRIMARY, FM_REPORT_COLOR_ALERT);
    if (after) {
        by_label(after, nafter, labels, n, offsetof(group_row_t, disparate_impact), w);
        set = fm_report_chart_values(page, chart, "After reweighing", w, n, FM_REPORT_COLOR_PRIMARY,
                                     0);
        violation_colors(page, set, w, n, FM_REPORT_COLOR_PRIMARY, FM_REPORT_COLOR_ALERT);
    }
    for (size_t g = 0; g < n; g++)
        w[g] = FOUR_FIFTHS;
    set = fm_report_chart_values(page, chart, "Four-fifths line (0.8)", w, n, FM_REPORT_COLOR_ALERT,
                                 1);
    /* Chart.js draws lower orders last: the line over the bars. */
    if (set && !cJSON_AddNumberToObject(set, "order", -1))
        fm_report_fail(page, FM_ENOMEM, "out of memory");
    cJSON *dash = set ? fm_report_check(page, cJSON_AddArrayToObject(set, "borderDash")) : NULL;
    if (dash && (!cJSON_AddItemToArray(dash, fm_report_check(page, cJSON_CreateNumber(6))) ||
                 !cJSON_AddItemToArray(dash, fm_report_check(page, cJSON_CreateNumber(4)))))
        fm_report_fail(page, FM_ENOMEM, "out of memory");
    fm_report_chart_axis(page, chart, "x", "category", "Group", NAN, NAN);
    fm_report_chart_axis(page, chart, "y", "linear", "Selection rate / reference's", 0.0, NAN);
    fm_report_card(page, "Disparate impact by group",
                   "Each group's selection rate over the reference group's; below the dashed "
                   "four-fifths line (red bars) the EEOC rule flags adverse impact.",
                   chart);
    free(labels);
    free(v);
}

/* "demographic parity difference 0.1792, ..." from an attribute's summary. */
static void summary_line(fm_report_page_t *page, const cJSON *attribute) {
    const cJSON *summary = cJSON_GetObjectItemCaseSensitive(attribute, "summary");
    static const struct {
        const char *key, *text;
    } items[] = {{"demographic_parity_difference", "Demographic parity difference"},
                 {"demographic_parity_ratio", "demographic parity ratio"},
                 {"equalized_odds_difference", "equalized odds difference"}};
    fm_report_puts(page, "<p class=\"lead\">");
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(attribute, "rows");
    const cJSON *missing = cJSON_GetObjectItemCaseSensitive(attribute, "rows_missing_group");
    if (cJSON_IsNumber(rows)) {
        fm_report_number(page, rows->valuedouble, 0);
        fm_report_puts(page, " rows");
        if (cJSON_IsNumber(missing) && missing->valuedouble > 0) {
            fm_report_puts(page, " (");
            fm_report_number(page, missing->valuedouble, 0);
            fm_report_puts(page, " without a value left out)");
        }
        fm_report_puts(page, ". ");
    }
    if (cJSON_IsObject(summary)) {
        for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(summary, items[i].key);
            if (i) fm_report_puts(page, ", ");
            fm_report_text(page, items[i].text);
            fm_report_puts(page, " ");
            fm_report_number(page, cJSON_IsNumber(v) ? v->valuedouble : NAN, 4);
        }
        fm_report_puts(page, " (largest minus smallest over the groups, and smallest over largest "
                             "selection rate).");
    }
    fm_report_puts(page, "</p>\n");
}

static size_t count_violations(const group_row_t *rows, size_t n) {
    size_t v = 0;
    for (size_t g = 0; g < n; g++)
        v += rows[g].violation == 1;
    return v;
}

static void violations_badge(fm_report_page_t *page, size_t violations) {
    if (violations)
        fm_report_printf(page, " <span class=\"badge bad\">%zu four-fifths violation%s</span>",
                         violations, violations == 1 ? "" : "s");
    else
        fm_report_puts(page, " <span class=\"badge good\">no four-fifths violation</span>");
}

void fm_report_section_fairness(fm_report_page_t *page, const fm_report_context_t *ctx) {
    const cJSON *fairness = ctx->in->fairness, *mitigated = ctx->in->fairness_mitigated;
    if (!fairness || page->rc) return;
    const cJSON *attributes = cJSON_GetObjectItemCaseSensitive(fairness, "attributes");
    if (!cJSON_IsArray(attributes)) {
        fm_report_fail(page, FM_EINVAL, "report: fairness.attributes is not an array");
        return;
    }
    const cJSON *threshold = cJSON_GetObjectItemCaseSensitive(fairness, "threshold");
    const cJSON *positive = cJSON_GetObjectItemCaseSensitive(fairness, "positive");
    fm_report_puts(page, "<section id=\"fairness\"><h2>Fairness</h2>\n<p class=\"lead\">The "
                         "decision is P(positive) &gt;= ");
    fm_report_general(page, cJSON_IsNumber(threshold) ? threshold->valuedouble : ctx->threshold);
    fm_report_puts(page, ", positive class \xe2\x80\x9c");
    fm_report_text(page,
                   cJSON_IsString(positive) ? positive->valuestring : ctx->in->model->classes[1]);
    fm_report_puts(page, "\xe2\x80\x9d. Each group is compared with the attribute's reference "
                         "group (differences are group minus reference); a disparate impact "
                         "ratio below 0.8 breaks the four-fifths rule and is highlighted. "
                         "The test compares the selection rates (Fisher's exact test for small "
                         "counts, else chi-square).");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(fairness, "data");
    if (cJSON_IsString(data)) {
        fm_report_puts(page, " Measured at training on the model's ");
        fm_report_text(page, data->valuestring);
        fm_report_puts(page, " rows.");
    }
    if (mitigated)
        fm_report_puts(page, " The model was trained with reweighing (AIF360); the same model "
                             "trained without it is shown as \xe2\x80\x9c"
                             "before mitigation"
                             "\xe2\x80\x9d, on the same rows: charts show both.");
    fm_report_puts(page, "</p>\n");
    const cJSON *attribute;
    cJSON_ArrayForEach(attribute, attributes) {
        size_t n = 0, nafter = 0;
        group_row_t *rows = read_groups(page, attribute, "fairness", &n);
        if (!rows) break;
        const char *name = cJSON_GetObjectItemCaseSensitive(attribute, "attribute")->valuestring;
        const cJSON *after_attribute = find_attribute(mitigated, name);
        group_row_t *after = after_attribute
                                 ? read_groups(page, after_attribute, "fairness_mitigated", &nafter)
                                 : NULL;
        const cJSON *reference = cJSON_GetObjectItemCaseSensitive(attribute, "reference");
        const char *ref = cJSON_IsString(reference) ? reference->valuestring : NULL;
        fm_report_puts(page, "<h3>");
        fm_report_text(page, name);
        violations_badge(page, count_violations(rows, n));
        fm_report_puts(page, "</h3>\n");
        summary_line(page, attribute);
        fm_report_puts(page, "<p>Reference group: <strong>");
        fm_report_text(page, ref ? ref : "(not given)");
        fm_report_puts(page, "</strong></p>\n");
        groups_table(page, rows, n, ref);
        if (after) {
            const cJSON *aref = cJSON_GetObjectItemCaseSensitive(after_attribute, "reference");
            fm_report_puts(page, "<h3>");
            fm_report_text(page, name);
            fm_report_puts(page, " after reweighing");
            violations_badge(page, count_violations(after, nafter));
            fm_report_puts(page, "</h3>\n");
            groups_table(page, after, nafter, cJSON_IsString(aref) ? aref->valuestring : NULL);
        }
        fm_report_puts(page, "<div class=\"grid\">\n");
        attribute_charts(page, rows, n, after, nafter);
        fm_report_puts(page, "</div>\n");
        free(rows);
        free(after);
    }
    fm_report_puts(page, "</section>\n");
}
