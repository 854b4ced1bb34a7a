/*
 * Internal to the validation report (src/report): the curve computations behind its charts, the
 * page under construction with its sticky error, HTML escaping, Chart.js configurations built as
 * JSON, and the sections that write the page. Nothing here is used outside src/report except by
 * the area's unit tests.
 */
#ifndef FM_REPORT_INTERNAL_H
#define FM_REPORT_INTERNAL_H

#include "report/report.h"

#include <stddef.h>

/* ---- Curves (curves.c): pure computation over caller buffers --------------------------------- */

/* Scores are read as score[i * stride] so that one column of a row-major [n, k] matrix of class
 * probabilities can be used in place. A row is positive when label[i] == positive. Scores must not
 * be NaN (fm_report_html checks its input first). */

/* The ROC curve: one point per distinct score, taken in descending order, from (0, 0) to (1, 1);
 * threshold[i] is the score at or above which a row is predicted positive (threshold[0] = +inf:
 * nothing predicted positive). ks is max(tpr - fpr) over every point, before any thinning, and
 * ks_index the first point where it is reached. */
typedef struct fm_report_roc {
    size_t n;                      /* points kept */
    double *fpr, *tpr, *threshold; /* owned, n entries each */
    size_t positives, negatives;
    double ks;
    size_t ks_index; /* into the kept points (the KS point is always kept) */
} fm_report_roc_t;

/*
 * Computes the ROC curve of n rows into *out (owned by the caller: fm_report_roc_deinit). With
 * max_points > 0 the curve is thinned for drawing: interior points closer than 2 / max_points in
 * |d fpr| + |d tpr| to the last kept point are dropped (the curve's length in that measure is 2,
 * so about max_points points remain), the first, the last and the KS point are always kept. With
 * no positive (or no negative) row the rates on that axis are 0. FM_ENOMEM on allocation failure.
 */
int fm_report_roc(const double *score, size_t stride, const int *label, int positive, size_t n,
                  size_t max_points, fm_report_roc_t *out);
void fm_report_roc_deinit(fm_report_roc_t *roc);

/* One bin of a calibration plot: rows in it, their mean P(positive) and share of positives (both
 * NaN when the bin is empty). */
typedef struct fm_report_bin {
    size_t count;
    double mean_prediction;
    double observed_rate;
} fm_report_bin_t;

/* nbins equal-width bins of P(positive) over [0, 1] (a value of exactly 1 falls in the last bin;
 * values outside [0, 1] in the nearest end bin) into bins[nbins]. */
void fm_report_calibration(const double *prob, size_t stride, const int *label, int positive,
                           size_t n, size_t nbins, fm_report_bin_t *bins);

/* Counts into counts[nbins] of the rows whose label is cls (label NULL or cls < 0: every row) in
 * nbins equal-width bins over [lo, hi] (hi itself in the last bin; values outside the range in
 * the nearest end bin; hi <= lo puts everything in the first bin). */
void fm_report_histogram(const double *value, size_t stride, const int *label, int cls, size_t n,
                         double lo, double hi, size_t nbins, size_t *counts);

/* The k x k confusion matrix of the arg-max class (the first maximum on ties, as
 * fm_metric_multiclass_accuracy) of prob[n * k] against label[n]: counts[true * k + predicted]. */
void fm_report_confusion(const double *prob, size_t k, const int *label, size_t n, size_t *counts);

/* ---- The page (html.c) ----------------------------------------------------------------------- */

/* The page being written: out grows as sections append to it; the chart configurations gathered
 * on the way go into the page's data element at the end. rc is sticky, as SQLite's sqlite3_str:
 * after the first failure every append is a no-op, and fm_report_html reports it once. */
typedef struct fm_report_page {
    fm_buf_t *out;
    int rc;          /* FM_OK or the first failure's code */
    fm_error_t *err; /* its message */
    cJSON *charts;   /* array of Chart.js configurations, canvas i draws charts[i] */
    size_t ncharts;
} fm_report_page_t;

/* Appends s (n bytes) with &, <, >, " and ' replaced by character references, so that it can
 * stand in element content and in quoted attribute values. Returns 0 or FM_ENOMEM. */
int fm_report_escape(fm_buf_t *out, const char *s, size_t n);

/* Appends JSON text with every '<' written as \u003c, so that it can stand inside a
 * <script type="application/json"> element: no "</script" or "<!--" can end or change it.
 * Returns 0 or FM_ENOMEM. */
int fm_report_json_for_script(fm_buf_t *out, const char *json, size_t n);

/* Appending to the page; each is a no-op once page->rc is set, and sets it on failure. */
void fm_report_puts(fm_report_page_t *page, const char *s);
void fm_report_printf(fm_report_page_t *page, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* s escaped (NULL writes nothing). */
void fm_report_text(fm_report_page_t *page, const char *s);
/* A number for a table cell or tile: "%.*f" with decimals, an em dash for NaN or infinity. */
void fm_report_number(fm_report_page_t *page, double v, int decimals);
/* A number with up to 6 significant digits ("%.6g"), an em dash when not finite. */
void fm_report_general(fm_report_page_t *page, double v);
/* Records a failure (code and message) unless one is already recorded. Returns page->rc. */
int fm_report_fail(fm_report_page_t *page, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Returns item; when item is NULL records FM_ENOMEM. For checking cJSON constructors. */
cJSON *fm_report_check(fm_report_page_t *page, cJSON *item);

/* ---- Chart.js configurations (charts.c) -------------------------------------------------------
 */

/* The page's colours, by role and for series (classes, groups) in turn. */
#define FM_REPORT_COLOR_PRIMARY  "#1f4e8c"
#define FM_REPORT_COLOR_NEGATIVE "#c7532b"
#define FM_REPORT_COLOR_NEUTRAL  "#8c96a8"
#define FM_REPORT_COLOR_ALERT    "#b42318"
#define FM_REPORT_COLOR_GOOD     "#2e7d5b"
const char *fm_report_series_color(size_t i);

/* A new configuration {"type", "data": {"datasets": []}, "options": {...}} of a Chart.js chart type
 * ("scatter" for curves over a numeric x, "bar"); NULL after recording FM_ENOMEM. */
cJSON *fm_report_chart_new(fm_report_page_t *page, const char *type);
/* Sets the category labels of a bar chart (data.labels). */
void fm_report_chart_labels(fm_report_page_t *page, cJSON *chart, const char *const *labels,
                            size_t n);
/* Sets options.scales[axis] to a scale of type ("linear", "category") titled title, with min and
 * max when finite. Returns the scale object (NULL on failure). */
cJSON *fm_report_chart_axis(fm_report_page_t *page, cJSON *chart, const char *axis,
                            const char *type, const char *title, double min, double max);
/* Adds a dataset of n points {x, y} drawn as a line (points are hidden when line is 1, else drawn
 * as dots). Returns the dataset (NULL on failure) for further settings. */
cJSON *fm_report_chart_xy(fm_report_page_t *page, cJSON *chart, const char *label, const double *x,
                          const double *y, size_t n, const char *color, int line);
/* Adds a dataset of n values over the chart's labels (bars, or type "line" when line is 1). */
cJSON *fm_report_chart_values(fm_report_page_t *page, cJSON *chart, const char *label,
                              const double *v, size_t n, const char *color, int line);
/* Adds the dashed line y = x from (lo, lo) to (hi, hi), labelled label. */
void fm_report_chart_diagonal(fm_report_page_t *page, cJSON *chart, const char *label, double lo,
                              double hi);
/* Hides the legend (single-series charts). */
void fm_report_chart_no_legend(fm_report_page_t *page, cJSON *chart);

/* Writes a chart card (title, canvas, note; the note is HTML written by the caller with
 * fm_report_* functions after this call, closed by fm_report_card_end) and files config, which
 * the page then owns, as the card's chart. config NULL (a failure already recorded) writes
 * nothing. */
void fm_report_card_begin(fm_report_page_t *page, const char *title, cJSON *config);
void fm_report_card_end(fm_report_page_t *page);
/* A card with a one-sentence note. */
void fm_report_card(fm_report_page_t *page, const char *title, const char *note, cJSON *config);

/* ---- Sections ---------------------------------------------------------------------------------
 */

/* What the sections share: the input, the model's description and the decision threshold. */
typedef struct fm_report_context {
    const fm_report_input_t *in;
    const cJSON *description; /* fm_model_describe's object */
    double threshold;         /* binary: predicted positive when P(positive) >= threshold */
} fm_report_context_t;

/* The page before the sections (doctype, head with style and Chart.js, header, contents) and after
 * them (data element, drawing script, footer). */
void fm_report_page_begin(fm_report_page_t *page, const fm_report_context_t *ctx);
void fm_report_page_end(fm_report_page_t *page, const fm_report_context_t *ctx);

void fm_report_section_card(fm_report_page_t *page, const fm_report_context_t *ctx);
void fm_report_section_performance(fm_report_page_t *page, const fm_report_context_t *ctx);
void fm_report_section_importance(fm_report_page_t *page, const fm_report_context_t *ctx);
void fm_report_section_fairness(fm_report_page_t *page, const fm_report_context_t *ctx);

/* ---- The embedded Chart.js (generated at build time by cmake/embed.cmake) ---------------------
 */

extern const unsigned char fm_report_chartjs_source[];
extern const size_t fm_report_chartjs_source_len;
extern const char fm_report_chartjs_package_version[];

#endif
