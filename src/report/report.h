/*
 * The validation report: one self-contained HTML page describing a model and how it behaves on a
 * labelled data set, for validators and auditors.
 *
 * Sections: a model card (name, version when known, task, family, target and classes, features
 * with their types, preprocessing, training settings and validation scheme, validation metrics,
 * data fingerprint, protected attributes, creation time), the metrics on the report's data, ROC
 * and KS curves, a calibration plot (10 equal-width bins of P(positive): mean prediction against
 * observed positive rate, with counts), the score distribution by class (histograms of
 * P(positive), 20 bins), feature importance (permutation importance and mean absolute
 * attribution), partial dependence plots, and the fairness table with charts per protected
 * attribute (selection rate and TPR/FPR by group, disparate impact with the four-fifths line),
 * before and after mitigation when the model was trained with reweighing. Regression models get
 * predicted-against-actual and residual charts instead of the classification curves; multiclass
 * models a confusion matrix and per-class one-vs-rest ROC.
 *
 * Charts are drawn by Chart.js (npm package chart.js, installed by scripts/install-deps.sh into
 * web/node_modules), whose UMD build is compiled into the program and embedded in every page, so
 * the page opens offline with no request anywhere. All text taken from the model or data is
 * HTML-escaped, and the data handed to the page's script is JSON inside a
 * <script type="application/json"> element with "<" escaped, so nothing in a model or data file
 * can inject markup or script.
 *
 * Thread-safety: pure computation over caller data; any number of calls at once.
 */
#ifndef FM_REPORT_H
#define FM_REPORT_H

#include "core/buf.h"
#include "core/error.h"
#include "model/model.h"

#include <cJSON.h>
#include <stddef.h>

typedef struct fm_report_input {
    const fm_model_t *model;
    const char *model_name;  /* shown in the title; NULL: the model's target and family */
    long version;            /* registry version, or -1 when unknown */
    const char *data_name;   /* the labelled data's name (file name, dataset id) */
    size_t n;                /* scored rows with a target */
    const double *pred;      /* n * fm_model_output_width(model) predictions (predict layout) */
    const int *label;        /* classifiers: class index per row, in [0, nclasses) */
    const double *y;         /* regression: the true values */
    const cJSON *importance; /* fm_importance_compute's object, or NULL */
    const cJSON *mean_abs_attribution; /* {"feature": value, ...} or NULL */
    const cJSON *fairness; /* `finmaas fairness` output object ("attributes": [...]), or NULL */
    const cJSON *fairness_mitigated; /* the same after reweighing, or NULL */
} fm_report_input_t;

/* Appends the HTML page to out. Errors: FM_EINVAL for inconsistent input (no rows, missing
 * labels for the task), FM_ENOMEM. */
int fm_report_html(const fm_report_input_t *in, fm_buf_t *out, fm_error_t *err);

/* fm_report_html with the binary decision threshold given: a row is predicted positive when
 * P(positive) >= threshold, in [0, 1] (FM_EINVAL otherwise). fm_report_html uses the fairness
 * input's "threshold" when it has one, so that the confusion matrix and the fairness table judge
 * the same decisions, else 0.5. Ignored for other tasks. */
int fm_report_html_at(const fm_report_input_t *in, double threshold, fm_buf_t *out,
                      fm_error_t *err);

/*
 * The fairness a reweighed model recorded at training, before and after mitigation, both measured
 * on the same rows (the validation rows): *before and *after are new objects shaped like
 * `finmaas fairness`'s output (caller owns), to pass as fairness and fairness_mitigated. Returns
 * 1 when the model holds both, 0 (both NULL) when it was not reweighed or on allocation failure.
 */
int fm_report_stored_mitigation(const fm_model_t *model, cJSON **before, cJSON **after);

/* The embedded Chart.js (its version string, e.g. "4.4.1"). */
const char *fm_report_chartjs_version(void);

#endif
