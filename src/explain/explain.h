/*
 * Per-decision explanations: attributions of one prediction to the model's raw input features,
 * and adverse-action reason codes built from them.
 *
 * Score space. Attributions explain the model's score, not its probability: the log-odds of
 * P(positive) for a binary classifier, the logit (pre-softmax value) of one class for a multiclass
 * classifier, the predicted value for a regression (in the target's units). For a network that is
 * the last layer's pre-activation value (times target_std, plus target_mean, for regression); for
 * trees it is XGBoost's margin.
 *
 * Methods, by family (FM_EXPLAIN_AUTO picks the first that applies):
 * - networks of one layer ("linear", "logistic", "softmax"): exact, phi_j = w_j (x_j - b_j) on each
 *   encoded column j, b the baseline row;
 * - "gbt": exact TreeSHAP (fm_gbt_shap: Lundberg et al.'s path-dependent algorithm over the
 *   booster's trees, equal to XGBoost's own feature contributions, fm_gbt_contributions, and
 *   faster), whose baseline is the trees' expected margin over the training rows (XGBoost's bias
 *   term);
 * - multilayer networks ("mlp", imported Keras models): Integrated Gradients along the straight
 *   path from the baseline row b to x, phi_j = (x_j - b_j) * integral_0^1 df/dx_j(b + a (x - b))
 * da. For piecewise-linear networks (relu or identity hidden layers) the integral is computed
 *   exactly: the path is cut where any hidden unit changes sign (found layer by layer) and the
 *   gradient, constant on each piece, is taken at its midpoint. For smooth hidden activations
 *   (tanh, sigmoid) it is Gauss-Legendre quadrature with `steps` nodes (default 50);
 * - FM_EXPLAIN_SHAPLEY, any family, when the model has at most FM_EXPLAIN_SHAPLEY_MAX raw
 *   features: exact Shapley values of the raw features with the baseline row as the single
 *   reference (each coalition's features from x, the others from b; 2^M evaluations).
 * Encoded columns are summed back to their raw feature (a prep column's offset..offset+width), so
 * a one-hot block or a "_missing" indicator is part of its feature. Every method is complete:
 * sum_i phi_i = f(x) - f(baseline) to rounding (1e-4 is the tested bound).
 *
 * Baselines. Stored in the model by fm_explain_fit at training (the description's "explain"
 * member):
 * - FM_EXPLAIN_POPULATION: the mean encoded training row (trees: XGBoost's expected margin);
 * - FM_EXPLAIN_REFERENCE: the reference group of approved applicants near the cutoff: training rows
 *   whose P(approve) lies in [cutoff, cutoff + band) (fewer than FM_EXPLAIN_MIN_REFERENCE rows: the
 *   FM_EXPLAIN_MIN_REFERENCE rows with the smallest P(approve) >= cutoff; none approved: the whole
 *   population), or the whole population when so configured. For networks the baseline row is the
 *   group's mean encoded row; for trees the attributions are TreeSHAP's minus the group's mean
 *   TreeSHAP attribution per feature, so they sum to f(x) minus the group's mean margin.
 * A model without a stored "explain" member (trained before it existed, or imported) explains
 * against the preprocessing's own centre: numeric columns at their training mean (encoded 0),
 * categorical columns at their most frequent category, missing indicators 0; both baselines are
 * that row, and trees use XGBoost's bias.
 *
 * Reason codes (binary models only). "Approve" is one class of the two (default: the positive
 * class, unless it names an adverse outcome such as "bad" or "default": then the other). The
 * reasons for a decision are the k features (default 4) with the largest attribution toward decline
 * (negative when approve is the positive class, positive otherwise) against the reference baseline,
 * strictly toward decline only, largest first; each with a text: the configured text for the
 * feature, else "<feature>: value weighs against approval".
 *
 * Thread-safety: an fm_explainer_t is read-only after fm_explainer_new; each thread uses its own
 * fm_explain_workspace_t.
 */
#ifndef FM_EXPLAIN_H
#define FM_EXPLAIN_H

#include "core/error.h"
#include "model/model.h"

#include <cJSON.h>
#include <stddef.h>

#define FM_EXPLAIN_DEFAULT_STEPS   50
#define FM_EXPLAIN_MAX_STEPS       10000
#define FM_EXPLAIN_SHAPLEY_MAX     16
#define FM_EXPLAIN_DEFAULT_REASONS 4
#define FM_EXPLAIN_MIN_REFERENCE   20
#define FM_EXPLAIN_MAX_REASON_TEXT 200

typedef enum {
    FM_EXPLAIN_AUTO = 0,
    FM_EXPLAIN_LINEAR = 1,               /* one-layer networks only */
    FM_EXPLAIN_TREESHAP = 2,             /* gbt only */
    FM_EXPLAIN_INTEGRATED_GRADIENTS = 3, /* networks */
    FM_EXPLAIN_SHAPLEY = 4,              /* any family, <= FM_EXPLAIN_SHAPLEY_MAX raw features */
} fm_explain_method_t;

/* "auto", "linear", "treeshap", "integrated_gradients", "shapley". */
const char *fm_explain_method_name(fm_explain_method_t method);
/* Parses the names above; FM_EINVAL for anything else. */
int fm_explain_method_parse(const char *text, fm_explain_method_t *out);

typedef enum {
    FM_EXPLAIN_REFERENCE = 0, /* the reference group (default; what reason codes use) */
    FM_EXPLAIN_POPULATION = 1,
} fm_explain_baseline_t;

/* What fm_explain_fit stores. */
typedef struct fm_explain_fit_options {
    const char *approve;        /* binary: the class label meaning approval; NULL: the positive
                                   class, or the other one when the positive names an adverse
                                   outcome ("bad", "default", "delinquent", "fraud", ...) */
    double cutoff;              /* approval when P(approve) >= cutoff; default 0.5 */
    double band;                /* reference group width above the cutoff; default 0.1 */
    int reference_population;   /* 1: the reference group is the whole population */
    const cJSON *reasons;       /* object: raw feature name -> reason text; may be NULL */
    fm_explain_method_t method; /* networks: FM_EXPLAIN_AUTO or _SHAPLEY; default AUTO */
    int steps;                  /* Integrated Gradients nodes for smooth networks; default 50 */
} fm_explain_fit_options_t;

/* Fills o with the defaults above. */
void fm_explain_fit_options_defaults(fm_explain_fit_options_t *o);

/*
 * Computes the baselines from n encoded training rows x[n * nfeatures] (the rows the model was
 * fitted on) and stores them, the settings and the reason texts in model->info as "explain"
 * (replacing an earlier one). The model must be ready. Errors: FM_EINVAL naming a setting out of
 * range, an approve label that is not a class, a reason text for a feature the model does not
 * have or longer than FM_EXPLAIN_MAX_REASON_TEXT bytes; FM_EDATA when n is 0.
 */
int fm_explain_fit(fm_model_t *model, const double *x, size_t n,
                   const fm_explain_fit_options_t *options, fm_error_t *err);

/* An explainer: the model's stored explanation settings, parsed once (opaque). */
typedef struct fm_explainer fm_explainer_t;

/*
 * Builds the explainer of a ready model from its "explain" member (or the fallback described at
 * the top). The model is borrowed and must outlive the explainer. FM_EFORMAT naming the field
 * when the stored member is malformed (wrong lengths, non-finite values).
 */
int fm_explainer_new(const fm_model_t *model, fm_explainer_t **out, fm_error_t *err);
void fm_explainer_free(fm_explainer_t *e);

/* The method explain calls use when asked for FM_EXPLAIN_AUTO. */
fm_explain_method_t fm_explainer_method(const fm_explainer_t *e);
/* Integrated Gradients nodes used by default. */
int fm_explainer_steps(const fm_explainer_t *e);
/* Binary: the index (0 or 1) of the approve class in model->classes; -1 for other tasks. */
int fm_explainer_approve_class(const fm_explainer_t *e);
/* The approval cutoff on P(approve). */
double fm_explainer_cutoff(const fm_explainer_t *e);

/* Per-thread buffers (path points, gradients, coalitions) for one explainer. */
typedef struct fm_explain_workspace fm_explain_workspace_t;
int fm_explain_workspace_new(const fm_explainer_t *e, fm_explain_workspace_t **out,
                             fm_error_t *err);
void fm_explain_workspace_free(fm_explain_workspace_t *ws);

/* One request's settings. */
typedef struct fm_explain_request {
    fm_explain_method_t method;     /* FM_EXPLAIN_AUTO: the explainer's */
    int steps;                      /* 0: the explainer's */
    fm_explain_baseline_t baseline; /* default FM_EXPLAIN_REFERENCE */
    long output;                    /* multiclass: the class index explained; -1: the predicted
                                       class; ignored for binary and regression */
} fm_explain_request_t;

void fm_explain_request_defaults(fm_explain_request_t *r);

/* The explanation of one row. phi is indexed by prep column (model->prep->ncolumns entries);
 * columns of width 0 (PII, dropped) have phi 0 and are not features. */
typedef struct fm_explanation {
    double *phi;           /* caller-provided, ncolumns entries */
    double score;          /* f(x) in score space */
    double baseline_score; /* f(baseline) in score space */
    size_t output;         /* the output explained (class index; 0 for binary and regression) */
    fm_explain_method_t method; /* the method used */
    int steps;                  /* nodes or pieces evaluated (IG); 0 otherwise */
} fm_explanation_t;

/*
 * Explains one encoded row x[nfeatures]. out->phi must have room for ncolumns values. Errors:
 * FM_EINVAL for a method that does not apply to the family or a Shapley request over more than
 * FM_EXPLAIN_SHAPLEY_MAX features, a steps value outside 1..FM_EXPLAIN_MAX_STEPS, an output out of
 * range; XGBoost's failure (out of memory) for trees.
 */
int fm_explain_row(const fm_explainer_t *e, fm_explain_workspace_t *ws, const double *x,
                   const fm_explain_request_t *request, fm_explanation_t *out, fm_error_t *err);

/* One reason code. */
typedef struct fm_reason {
    size_t column;       /* prep column */
    double contribution; /* its attribution (toward decline) */
    const char *text;    /* borrowed from the explainer */
} fm_reason_t;

/*
 * The reason codes of a binary model's explanation (made against FM_EXPLAIN_REFERENCE): up to k
 * of them into reasons[], count in *n. Other tasks: *n = 0.
 */
void fm_explain_reasons(const fm_explainer_t *e, const fm_explanation_t *x, size_t k,
                        fm_reason_t *reasons, size_t *n);

/*
 * Mean absolute attribution per raw feature over n encoded rows x[n * nfeatures] (default request),
 * into mean_abs[ncolumns]. For global explanations.
 */
int fm_explain_mean_abs(const fm_explainer_t *e, const double *x, size_t n, double *mean_abs,
                        fm_error_t *err);

/* Rows explained at most by fm_explain_mean_abs_frame: enough for a stable mean, few enough for
 * a network's Integrated Gradients to stay quick. */
#define FM_EXPLAIN_MEAN_ABS_ROWS 500

/*
 * The mean absolute attribution of each feature over the first FM_EXPLAIN_MEAN_ABS_ROWS of
 * rows[0..n) of frame (the model's input columns, encoded here), as a new JSON object
 * {"feature": value, ...} in prep column order without zero-width columns (caller owns). For the
 * global explanations stored at training and drawn in the validation report.
 */
int fm_explain_mean_abs_frame(const fm_model_t *model, const fm_frame_t *frame, const size_t *rows,
                              size_t n, cJSON **out, fm_error_t *err);

/*
 * The explanation as JSON (caller owns; NULL when out of memory): {"method", "baseline",
 * "score", "baseline_score", "output" (class label for classifiers), "attributions": {feature:
 * phi, ...} in prep column order without zero-width columns, and for binary models "reasons":
 * [{"feature", "contribution", "text"}, ...] (k of them)}.
 */
cJSON *fm_explanation_to_json(const fm_explainer_t *e, const fm_explanation_t *x,
                              const fm_explain_request_t *request, size_t k);

#endif
