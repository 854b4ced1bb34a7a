/*
 * The performance section: the metrics on the report's data as tiles (each beside the value
 * recorded on the validation rows at training, so a drift shows at a glance), then the charts of
 * the task:
 * - binary: the confusion matrix at the threshold, the ROC curve, the KS curve (the cumulative
 *   share of each class below each score), the calibration plot (10 equal-width bins of
 *   P(positive): mean prediction against observed positive rate, with counts) and the score
 *   distribution by class (20 bins of P(positive), as shares of each class);
 * - multiclass: the confusion matrix of the arg-max class with per-class precision and recall, and
 *   one-vs-rest ROC curves with their AUCs;
 * - regression: predicted against actual, residuals against predicted, and the residual
 *   distribution.
 * The metrics come from src/eval (the same definitions as `finmaas eval`); the curves from
 * curves.c.
 */
#include "report/report_internal.h"

#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ROC_POINTS           400
#define ROC_POINTS_PER_CLASS 200
#define CALIBRATION_BINS     10
#define SCORE_BINS           20
#define RESIDUAL_BINS        30
#define SCATTER_POINTS       2000

/* The number in report[key], NaN when absent or null. */
static double number_of(const cJSON *report, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(report, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* A metric tile: its value, and below it the validation value recorded at training (if any).
 * decimals < 0: six significant digits, for values in the target's units. */
static void tile(fm_report_page_t *page, const char *label, double value, int decimals,
                 const cJSON *recorded, const char *key) {
    fm_report_puts(page, "<div class=\"tile\"><div class=\"label\">");
    fm_report_text(page, label);
    fm_report_puts(page, "</div><div class=\"value\">");
    if (decimals < 0)
        fm_report_general(page, value);
    else
        fm_report_number(page, value, decimals);
    fm_report_puts(page, "</div>");
    double ref = key ? number_of(recorded, key) : NAN;
    if (isfinite(ref)) {
        fm_report_puts(page, "<div class=\"ref\">validation ");
        if (decimals < 0)
            fm_report_general(page, ref);
        else
            fm_report_number(page, ref, decimals);
        fm_report_puts(page, "</div>");
    }
    fm_report_puts(page, "</div>\n");
}

static void tile_count(fm_report_page_t *page, const char *label, size_t count) {
    fm_report_printf(page,
                     "<div class=\"tile\"><div class=\"label\">%s</div><div class=\"value\">%zu"
                     "</div></div>\n",
                     label, count);
}

/* Labels "0.00-0.05", ... of nbins equal-width bins over [lo, hi], written into one block. */
static char **bin_labels(double lo, double hi, size_t nbins, int decimals) {
    enum { LABEL = 48 };
    char **labels = malloc(nbins * (sizeof *labels + LABEL));
    if (!labels) return NULL;
    char *text = (char *)(labels + nbins);
    double width = (hi - lo) / (double)nbins;
    for (size_t b = 0; b < nbins; b++) {
        labels[b] = text + b * LABEL;
        snprintf(labels[b], LABEL, "%.*f\xe2\x80\x93%.*f", decimals, lo + (double)b * width,
                 decimals, lo + (double)(b + 1) * width);
    }
    return labels;
}

/* Sets a bar chart's bars to touch, as a histogram's do. */
static void histogram_bars(fm_report_page_t *page, cJSON *set) {
    if (set && (!cJSON_AddNumberToObject(set, "barPercentage", 1.0) ||
                !cJSON_AddNumberToObject(set, "categoryPercentage", 0.9)))
        fm_report_fail(page, FM_ENOMEM, "out of memory");
}

/* ---- Binary --------------------------------------------------------------------------------- */

static void binary_confusion(fm_report_page_t *page, const cJSON *report, const fm_model_t *m,
                             double threshold) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(report, "confusion");
    fm_report_printf(page, "<h3>Confusion matrix at threshold %g</h3>", threshold);
    fm_report_puts(page, "<table class=\"compact\" style=\"width:auto\"><thead><tr><th></th>"
                         "<th class=\"num\">Predicted ");
    fm_report_text(page, m->classes[1]);
    fm_report_puts(page, "</th><th class=\"num\">Predicted ");
    fm_report_text(page, m->classes[0]);
    fm_report_puts(page, "</th></tr></thead><tbody><tr><th>Actual ");
    fm_report_text(page, m->classes[1]);
    fm_report_puts(page, "</th><td class=\"num\">");
    fm_report_number(page, number_of(c, "tp"), 0);
    fm_report_puts(page, " (TP)</td><td class=\"num\">");
    fm_report_number(page, number_of(c, "fn"), 0);
    fm_report_puts(page, " (FN)</td></tr><tr><th>Actual ");
    fm_report_text(page, m->classes[0]);
    fm_report_puts(page, "</th><td class=\"num\">");
    fm_report_number(page, number_of(c, "fp"), 0);
    fm_report_puts(page, " (FP)</td><td class=\"num\">");
    fm_report_number(page, number_of(c, "tn"), 0);
    fm_report_puts(page, " (TN)</td></tr></tbody></table>\n");
}

static void roc_card(fm_report_page_t *page, const fm_report_roc_t *roc, double auc) {
    cJSON *chart = fm_report_chart_new(page, "scatter");
    char label[64];
    snprintf(label, sizeof label, "ROC (AUC %.4f)", auc);
    fm_report_chart_xy(page, chart, label, roc->fpr, roc->tpr, roc->n, FM_REPORT_COLOR_PRIMARY, 1);
    fm_report_chart_diagonal(page, chart, "Chance", 0.0, 1.0);
    fm_report_chart_axis(page, chart, "x", "linear", "False positive rate", 0.0, 1.0);
    fm_report_chart_axis(page, chart, "y", "linear", "True positive rate", 0.0, 1.0);
    fm_report_card(page, "ROC curve",
                   "True against false positive rate as the threshold moves from 1 down to 0; "
                   "the area under it is the AUC.",
                   chart);
}

static void ks_card(fm_report_page_t *page, const fm_report_roc_t *roc, const fm_model_t *m) {
    /* Point 0 is the threshold +inf: nothing there to draw on a score axis. */
    size_t n = roc->n > 1 ? roc->n - 1 : 0;
    double *t = malloc((n ? n : 1) * 3 * sizeof *t);
    if (!t) {
        fm_report_fail(page, FM_ENOMEM, "out of memory");
        return;
    }
    double *pos = t + n, *neg = t + 2 * n;
    for (size_t i = 0; i < n; i++) {
        t[i] = roc->threshold[i + 1];
        pos[i] = 1.0 - roc->tpr[i + 1];
        neg[i] = 1.0 - roc->fpr[i + 1];
    }
    cJSON *chart = fm_report_chart_new(page, "scatter");
    char label[160];
    snprintf(label, sizeof label, "%s (positive)", m->classes[1]);
    fm_report_chart_xy(page, chart, label, t, pos, n, FM_REPORT_COLOR_PRIMARY, 1);
    snprintf(label, sizeof label, "%s (negative)", m->classes[0]);
    fm_report_chart_xy(page, chart, label, t, neg, n, FM_REPORT_COLOR_NEGATIVE, 1);
    free(t);
    size_t k = roc->ks_index;
    if (k > 0) {
        double x[2] = {roc->threshold[k], roc->threshold[k]};
        double y[2] = {1.0 - roc->tpr[k], 1.0 - roc->fpr[k]};
        snprintf(label, sizeof label, "KS %.4f at %.4f", roc->ks, roc->threshold[k]);
        fm_report_chart_xy(page, chart, label, x, y, 2, FM_REPORT_COLOR_ALERT, 1);
    }
    fm_report_chart_axis(page, chart, "x", "linear", "Score threshold P(positive)", 0.0, 1.0);
    fm_report_chart_axis(page, chart, "y", "linear", "Cumulative share of the class below", 0.0,
                         1.0);
    fm_report_card(page, "Kolmogorov-Smirnov curve",
                   "For each score, the share of each class scored below it; KS is the largest "
                   "vertical gap between the two curves.",
                   chart);
}

static void calibration_card(fm_report_page_t *page, const fm_report_input_t *in) {
    fm_report_bin_t bins[CALIBRATION_BINS];
    fm_report_calibration(in->pred, 1, in->label, 1, in->n, CALIBRATION_BINS, bins);
    double x[CALIBRATION_BINS], y[CALIBRATION_BINS], centre[CALIBRATION_BINS],
        count[CALIBRATION_BINS];
    for (size_t b = 0; b < CALIBRATION_BINS; b++) {
        x[b] = bins[b].mean_prediction;
        y[b] = bins[b].observed_rate;
        centre[b] = ((double)b + 0.5) / CALIBRATION_BINS;
        count[b] = (double)bins[b].count;
    }
    cJSON *chart = fm_report_chart_new(page, "scatter");
    cJSON *observed = fm_report_chart_xy(page, chart, "Observed rate", x, y, CALIBRATION_BINS,
                                         FM_REPORT_COLOR_PRIMARY, 1);
    if (observed && !cJSON_ReplaceItemInObject(observed, "pointRadius", cJSON_CreateNumber(3.5)))
        fm_report_fail(page, FM_ENOMEM, "out of memory");
    fm_report_chart_diagonal(page, chart, "Perfect calibration", 0.0, 1.0);
    cJSON *rows = fm_report_chart_xy(page, chart, "Rows in bin", centre, count, CALIBRATION_BINS,
                                     "rgba(140,150,168,0.35)", 0);
    if (rows && (!cJSON_AddStringToObject(rows, "type", "bar") ||
                 !cJSON_AddStringToObject(rows, "yAxisID", "y2") ||
                 !cJSON_AddNumberToObject(rows, "order", 10) ||
                 !cJSON_AddNumberToObject(rows, "barPercentage", 1.0) ||
                 !cJSON_AddNumberToObject(rows, "categoryPercentage", 0.9)))
        fm_report_fail(page, FM_ENOMEM, "out of memory");
    fm_report_chart_axis(page, chart, "x", "linear", "Mean predicted P(positive)", 0.0, 1.0);
    fm_report_chart_axis(page, chart, "y", "linear", "Observed positive rate", 0.0, 1.0);
    cJSON *y2 = fm_report_chart_axis(page, chart, "y2", "linear", "Rows", 0.0, NAN);
    cJSON *grid = y2 ? cJSON_AddObjectToObject(y2, "grid") : NULL;
    if (y2 && (!cJSON_AddStringToObject(y2, "position", "right") || !grid ||
               !cJSON_AddBoolToObject(grid, "drawOnChartArea", 0)))
        fm_report_fail(page, FM_ENOMEM, "out of memory");
    fm_report_card_begin(page, "Calibration", chart);
    fm_report_puts(page, "Ten equal-width bins of P(positive): the mean prediction against the "
                         "observed share of positives; bars count the rows in each bin."
                         "<details><summary>Bin table</summary><table class=\"compact\"><thead>"
                         "<tr><th>Bin</th><th class=\"num\">Rows</th><th class=\"num\">Mean "
                         "predicted</th><th class=\"num\">Observed rate</th></tr></thead><tbody>");
    for (size_t b = 0; b < CALIBRATION_BINS; b++) {
        fm_report_printf(page, "<tr><td>%.1f\xe2\x80\x93%.1f</td><td class=\"num\">%zu</td>",
                         (double)b / CALIBRATION_BINS, (double)(b + 1) / CALIBRATION_BINS,
                         bins[b].count);
        fm_report_puts(page, "<td class=\"num\">");
        fm_report_number(page, bins[b].mean_prediction, 4);
        fm_report_puts(page, "</td><td class=\"num\">");
        fm_report_number(page, bins[b].observed_rate, 4);
        fm_report_puts(page, "</td></tr>");
    }
    fm_report_puts(page, "</tbody></table></details>");
    fm_report_card_end(page);
}

static void distribution_card(fm_report_page_t *page, const fm_report_input_t *in) {
    const fm_model_t *m = in->model;
    size_t counts[SCORE_BINS];
    double share[SCORE_BINS];
    char **labels = bin_labels(0.0, 1.0, SCORE_BINS, 2);
    if (!labels) {
        fm_report_fail(page, FM_ENOMEM, "out of memory");
        return;
    }
    cJSON *chart = fm_report_chart_new(page, "bar");
    fm_report_chart_labels(page, chart, (const char *const *)labels, SCORE_BINS);
    free(labels);
    for (int cls = 1; cls >= 0; cls--) {
        fm_report_histogram(in->pred, 1, in->label, cls, in->n, 0.0, 1.0, SCORE_BINS, counts);
        size_t total = 0;
        for (size_t b = 0; b < SCORE_BINS; b++)
            total += counts[b];
        for (size_t b = 0; b < SCORE_BINS; b++)
            share[b] = total ? (double)counts[b] / (double)total : 0.0;
        char label[160];
        snprintf(label, sizeof label, "%s (%zu rows)", m->classes[cls], total);
        cJSON *set =
            fm_report_chart_values(page, chart, label, share, SCORE_BINS,
                                   cls ? "rgba(31,78,140,0.75)" : "rgba(199,83,43,0.75)", 0);
        histogram_bars(page, set);
    }
    fm_report_chart_axis(page, chart, "x", "category", "P(positive)", NAN, NAN);
    fm_report_chart_axis(page, chart, "y", "linear", "Share of the class", 0.0, NAN);
    fm_report_card(page, "Score distribution by class",
                   "Histogram of P(positive) in 20 bins for each actual class, as shares of that "
                   "class's rows, so that classes of different sizes compare.",
                   chart);
}

static void binary_section(fm_report_page_t *page, const fm_report_context_t *ctx,
                           const cJSON *recorded) {
    const fm_report_input_t *in = ctx->in;
    cJSON *report = fm_report_check(
        page, fm_metrics_binary_report(in->pred, in->label, NULL, in->n, ctx->threshold));
    if (!report) return;
    size_t positives = 0;
    for (size_t i = 0; i < in->n; i++)
        positives += in->label[i] == 1;
    fm_report_puts(page, "<div class=\"tiles\">\n");
    tile(page, "AUC", number_of(report, "auc"), 4, recorded, "auc");
    tile(page, "Gini", number_of(report, "gini"), 4, recorded, "gini");
    tile(page, "KS", number_of(report, "ks"), 4, recorded, "ks");
    tile(page, "Log loss", number_of(report, "logloss"), 4, recorded, "logloss");
    tile(page, "Brier score", number_of(report, "brier"), 4, recorded, "brier");
    tile(page, "Accuracy", number_of(report, "accuracy"), 4, recorded, "accuracy");
    tile(page, "Precision", number_of(report, "precision"), 4, recorded, "precision");
    tile(page, "Recall", number_of(report, "recall"), 4, recorded, "recall");
    tile(page, "F1", number_of(report, "f1"), 4, recorded, "f1");
    tile_count(page, "Rows", in->n);
    tile(page, "Positive rate", (double)positives / (double)in->n, 4, NULL, NULL);
    fm_report_puts(page, "</div>\n");
    fm_report_printf(page,
                     "<p class=\"lead\">Accuracy, precision, recall, F1 and the confusion matrix "
                     "take a row as predicted positive when P(positive) &gt;= %g.</p>\n",
                     ctx->threshold);
    binary_confusion(page, report, in->model, ctx->threshold);
    fm_report_roc_t roc;
    if (fm_report_roc(in->pred, 1, in->label, 1, in->n, ROC_POINTS, &roc)) {
        fm_report_fail(page, FM_ENOMEM, "out of memory");
        cJSON_Delete(report);
        return;
    }
    fm_report_puts(page, "<div class=\"grid\">\n");
    roc_card(page, &roc, number_of(report, "auc"));
    ks_card(page, &roc, in->model);
    calibration_card(page, in);
    distribution_card(page, in);
    fm_report_puts(page, "</div>\n");
    fm_report_roc_deinit(&roc);
    cJSON_Delete(report);
}

/* ---- Multiclass ----------------------------------------------------------------------------- */

static void multiclass_confusion(fm_report_page_t *page, const fm_model_t *m, const size_t *counts,
                                 const double *auc) {
    size_t k = m->nclasses;
    fm_report_puts(page, "<h3>Confusion matrix (arg-max class)</h3><div class=\"scroll\"><table "
                         "class=\"compact\" style=\"width:auto\"><thead><tr><th>Actual \\ "
                         "predicted</th>");
    for (size_t c = 0; c < k; c++) {
        fm_report_puts(page, "<th class=\"num\">");
        fm_report_text(page, m->classes[c]);
        fm_report_puts(page, "</th>");
    }
    fm_report_puts(page, "<th class=\"num\">Rows</th><th class=\"num\">Recall</th><th "
                         "class=\"num\">AUC (one vs rest)</th></tr></thead><tbody>\n");
    for (size_t t = 0; t < k; t++) {
        size_t row = 0;
        for (size_t c = 0; c < k; c++)
            row += counts[t * k + c];
        fm_report_puts(page, "<tr><th>");
        fm_report_text(page, m->classes[t]);
        fm_report_puts(page, "</th>");
        for (size_t c = 0; c < k; c++) {
            double share = row ? (double)counts[t * k + c] / (double)row : 0.0;
            /* Shade by the share of the actual class, so the diagonal reads as recall. */
            fm_report_printf(page,
                             "<td class=\"heat\" style=\"background:rgba(31,78,140,%.2f);"
                             "color:%s\">%zu</td>",
                             0.85 * share, share > 0.5 ? "#fff" : "inherit", counts[t * k + c]);
        }
        fm_report_printf(page, "<td class=\"num\">%zu</td><td class=\"num\">", row);
        fm_report_number(page, row ? (double)counts[t * k + t] / (double)row : NAN, 4);
        fm_report_puts(page, "</td><td class=\"num\">");
        fm_report_number(page, auc[t], 4);
        fm_report_puts(page, "</td></tr>\n");
    }
    fm_report_puts(page, "<tr><th>Precision</th>");
    for (size_t c = 0; c < k; c++) {
        size_t column = 0;
        for (size_t t = 0; t < k; t++)
            column += counts[t * k + c];
        fm_report_puts(page, "<td class=\"num\">");
        fm_report_number(page, column ? (double)counts[c * k + c] / (double)column : NAN, 4);
        fm_report_puts(page, "</td>");
    }
    fm_report_puts(page, "<td></td><td></td><td></td></tr>\n</tbody></table></div>\n");
}

static void multiclass_section(fm_report_page_t *page, const fm_report_context_t *ctx,
                               const cJSON *recorded) {
    const fm_report_input_t *in = ctx->in;
    const fm_model_t *m = in->model;
    size_t k = m->nclasses, n = in->n;
    size_t *counts = malloc(k * k * sizeof *counts);
    double *auc = malloc(k * sizeof *auc), *score = malloc(n * sizeof *score);
    int *onevsrest = malloc(n * sizeof *onevsrest);
    cJSON *report =
        fm_report_check(page, fm_metrics_multiclass_report(in->pred, in->label, NULL, n, k));
    if (!counts || !auc || !score || !onevsrest) fm_report_fail(page, FM_ENOMEM, "out of memory");
    if (page->rc) goto done;

    double macro = 0.0;
    size_t defined = 0;
    for (size_t c = 0; c < k; c++) {
        for (size_t i = 0; i < n; i++) {
            score[i] = in->pred[i * k + c];
            onevsrest[i] = in->label[i] == (int)c;
        }
        auc[c] = fm_metric_auc(score, onevsrest, NULL, n);
        if (isfinite(auc[c])) {
            macro += auc[c];
            defined++;
        }
    }
    fm_report_confusion(in->pred, k, in->label, n, counts);
    fm_report_puts(page, "<div class=\"tiles\">\n");
    tile(page, "Accuracy", number_of(report, "accuracy"), 4, recorded, "accuracy");
    tile(page, "Log loss", number_of(report, "logloss"), 4, recorded, "logloss");
    tile(page, "Macro AUC (one vs rest)", defined ? macro / (double)defined : NAN, 4, NULL, NULL);
    tile_count(page, "Rows", n);
    tile_count(page, "Classes", k);
    fm_report_puts(page, "</div>\n");
    multiclass_confusion(page, m, counts, auc);

    cJSON *chart = fm_report_chart_new(page, "scatter");
    for (size_t c = 0; c < k && !page->rc; c++) {
        fm_report_roc_t roc;
        if (fm_report_roc(in->pred + c, k, in->label, (int)c, n, ROC_POINTS_PER_CLASS, &roc)) {
            fm_report_fail(page, FM_ENOMEM, "out of memory");
            break;
        }
        char label[160];
        snprintf(label, sizeof label, "%s (AUC %.3f)", m->classes[c], auc[c]);
        fm_report_chart_xy(page, chart, label, roc.fpr, roc.tpr, roc.n, fm_report_series_color(c),
                           1);
        fm_report_roc_deinit(&roc);
    }
    fm_report_chart_diagonal(page, chart, "Chance", 0.0, 1.0);
    fm_report_chart_axis(page, chart, "x", "linear", "False positive rate", 0.0, 1.0);
    fm_report_chart_axis(page, chart, "y", "linear", "True positive rate", 0.0, 1.0);
    fm_report_puts(page, "<div class=\"grid\">\n");
    fm_report_card(page, "ROC curves, one class against the rest",
                   "For each class, its probability ranks its rows against all others.", chart);
    fm_report_puts(page, "</div>\n");
done:
    cJSON_Delete(report);
    free(counts);
    free(auc);
    free(score);
    free(onevsrest);
}

/* ---- Regression ----------------------------------------------------------------------------- */

static void regression_section(fm_report_page_t *page, const fm_report_context_t *ctx,
                               const cJSON *recorded) {
    const fm_report_input_t *in = ctx->in;
    size_t n = in->n;
    cJSON *report = fm_report_check(page, fm_metrics_regression_report(in->pred, in->y, NULL, n));
    /* Every step-th row for the scatter plots, so a large file stays a light page. */
    size_t step = (n + SCATTER_POINTS - 1) / SCATTER_POINTS, m = (n + step - 1) / step;
    double *residual = malloc(n * sizeof *residual);
    double *px = malloc(m * 3 * sizeof *px);
    size_t counts[RESIDUAL_BINS];
    if (!residual || !px) fm_report_fail(page, FM_ENOMEM, "out of memory");
    if (page->rc) goto done;

    double lo = INFINITY, hi = -INFINITY, rlo = INFINITY, rhi = -INFINITY, bias = 0.0;
    double plo = INFINITY, phi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        residual[i] = in->y[i] - in->pred[i];
        bias += residual[i];
        plo = fmin(plo, in->pred[i]);
        phi = fmax(phi, in->pred[i]);
        lo = fmin(lo, fmin(in->y[i], in->pred[i]));
        hi = fmax(hi, fmax(in->y[i], in->pred[i]));
        rlo = fmin(rlo, residual[i]);
        rhi = fmax(rhi, residual[i]);
    }
    if (!(rhi > rlo)) rhi = rlo + 1.0;
    double *py = px + m, *pr = px + 2 * m;
    for (size_t j = 0; j < m; j++) {
        px[j] = in->pred[j * step];
        py[j] = in->y[j * step];
        pr[j] = residual[j * step];
    }
    fm_report_puts(page, "<div class=\"tiles\">\n");
    tile(page, "RMSE", number_of(report, "rmse"), -1, recorded, "rmse");
    tile(page, "MAE", number_of(report, "mae"), -1, recorded, "mae");
    tile(page, "R\xc2\xb2", number_of(report, "r2"), 4, recorded, "r2");
    tile(page, "Mean residual", bias / (double)n, -1, NULL, NULL);
    tile_count(page, "Rows", n);
    fm_report_puts(page, "</div>\n<div class=\"grid\">\n");

    char note[160];
    if (step > 1)
        snprintf(note, sizeof note, "One row in %zu (%zu of %zu) is plotted.", step, m, n);
    else
        snprintf(note, sizeof note, "All %zu rows are plotted.", n);

    cJSON *chart = fm_report_chart_new(page, "scatter");
    fm_report_chart_xy(page, chart, "Rows", py, px, m, "rgba(31,78,140,0.45)", 0);
    fm_report_chart_diagonal(page, chart, "Predicted = actual", lo, hi);
    fm_report_chart_axis(page, chart, "x", "linear", "Actual", NAN, NAN);
    fm_report_chart_axis(page, chart, "y", "linear", "Predicted", NAN, NAN);
    fm_report_card_begin(page, "Predicted against actual", chart);
    fm_report_text(page, note);
    fm_report_card_end(page);

    chart = fm_report_chart_new(page, "scatter");
    fm_report_chart_xy(page, chart, "Rows", px, pr, m, "rgba(31,78,140,0.45)", 0);
    double zx[2] = {plo, phi}, zy[2] = {0.0, 0.0};
    fm_report_chart_xy(page, chart, "Zero", zx, zy, 2, FM_REPORT_COLOR_NEUTRAL, 1);
    fm_report_chart_axis(page, chart, "x", "linear", "Predicted", NAN, NAN);
    fm_report_chart_axis(page, chart, "y", "linear", "Residual (actual \xe2\x88\x92 predicted)",
                         NAN, NAN);
    fm_report_card_begin(page, "Residuals against predicted", chart);
    fm_report_text(page, note);
    fm_report_card_end(page);

    fm_report_histogram(residual, 1, NULL, -1, n, rlo, rhi, RESIDUAL_BINS, counts);
    double dcounts[RESIDUAL_BINS];
    for (size_t b = 0; b < RESIDUAL_BINS; b++)
        dcounts[b] = (double)counts[b];
    int decimals = rhi - rlo >= 100 ? 0 : rhi - rlo >= 1 ? 2 : 4;
    char **labels = bin_labels(rlo, rhi, RESIDUAL_BINS, decimals);
    if (!labels) fm_report_fail(page, FM_ENOMEM, "out of memory");
    chart = fm_report_chart_new(page, "bar");
    if (labels) fm_report_chart_labels(page, chart, (const char *const *)labels, RESIDUAL_BINS);
    free(labels);
    histogram_bars(page, fm_report_chart_values(page, chart, "Rows", dcounts, RESIDUAL_BINS,
                                                FM_REPORT_COLOR_PRIMARY, 0));
    fm_report_chart_no_legend(page, chart);
    fm_report_chart_axis(page, chart, "x", "category", "Residual", NAN, NAN);
    fm_report_chart_axis(page, chart, "y", "linear", "Rows", 0.0, NAN);
    fm_report_card(page, "Residual distribution",
                   "Histogram of actual minus predicted over every row, in 30 equal-width bins.",
                   chart);
    fm_report_puts(page, "</div>\n");
done:
    cJSON_Delete(report);
    free(residual);
    free(px);
}

void fm_report_section_performance(fm_report_page_t *page, const fm_report_context_t *ctx) {
    const cJSON *validation = cJSON_GetObjectItemCaseSensitive(ctx->description, "validation");
    const cJSON *recorded = cJSON_GetObjectItemCaseSensitive(validation, "metrics");
    fm_report_puts(page, "<section id=\"performance\"><h2>Performance on ");
    fm_report_text(page, ctx->in->data_name ? ctx->in->data_name : "the report's data");
    fm_report_puts(page, "</h2>\n<p class=\"lead\">Metrics as <code>finmaas eval</code> computes "
                         "them (scikit-learn's definitions); below each, the value on the "
                         "validation rows at training.</p>\n");
    switch (ctx->in->model->task) {
    case FM_TASK_BINARY:
        binary_section(page, ctx, recorded);
        break;
    case FM_TASK_MULTICLASS:
        multiclass_section(page, ctx, recorded);
        break;
    case FM_TASK_REGRESSION:
        regression_section(page, ctx, recorded);
        break;
    }
    fm_report_puts(page, "</section>\n");
}
