/*
 * Credit scorecards and loan decisions: Weight-of-Evidence binning, logistic regression on the
 * WoE values, scaling to points, and a decision policy stored with the model.
 *
 * Conventions. The event the model predicts (its positive class, classes[1]) is "bad" (default);
 * the other class is "good". PD = P(bad). For a bin with g goods and b bads out of G goods and B
 * bads in all, WoE = ln((g / G) / (b / B)), with 0.5 in place of an empty g or b (as the search's
 * Information Value, src/search/woe.c), and its IV term is (g / G - b / B) * WoE; a feature's IV
 * is the sum over its bins. A positive WoE means more goods than average.
 *
 * Binning (fm_scorecard_bin_feature), over the rows with a target:
 * - numeric: start from `initial_bins` quantile bins (edges at the inverted-CDF quantiles of the
 *   values, repeated edges merged), bins being (lower, upper]; then merge while a bin holds fewer
 *   than min_share of the rows (the smallest first, into the neighbour with the closer bad rate),
 *   then merge the first adjacent pair that breaks monotonic WoE until none does. The direction is
 *   the sign of the Spearman correlation of the value with the target (bad = 1): WoE decreases
 *   with the value when the correlation is positive, else increases.
 * - categorical: each category with at least min_share of the rows is a group; the others form
 *   one "other" group, merged into the group of closest bad rate when it is itself below
 *   min_share (or the only group when nothing else is). With category_gap > 0, groups whose WoE
 *   differ by less than it are merged (closest pair first).
 * - missing values seen in training form their own bin, whatever its size.
 * A feature left with a single bin carries no evidence and is dropped, as is one whose IV is
 * below min_iv.
 *
 * Model. The scorecard is an ordinary finmaas model of family "logistic" (so that serving,
 * explanations and reports work unchanged): its preprocessing one-hot encodes each numeric
 * feature's bins (fm_prep_set_bins, with the missing bin when missing values were seen) and each
 * category; the weight of a bin's column is beta_j * WoE_bin and the bias is beta_0, so the
 * logit of P(bad) is beta_0 + sum_j beta_j * WoE_j(x). A categorical column with missing values
 * in training has a "<name>_missing" column whose weight is beta_j * (WoE_missing - WoE of the
 * most frequent category's group), because the encoding sets the most frequent category too. A
 * category never seen in training encodes as all zeros: WoE 0, the neutral evidence. A missing
 * value of a column without a missing bin counts as the median's bin (numeric) or the most
 * frequent category (categorical). The betas are fitted by Newton-Raphson (IRLS) in double
 * precision with a tiny L2 penalty (FM_SCORECARD_L2) on the slopes only: deterministic.
 *
 * Points. With odds = good:bad = (1 - PD) / PD, score = offset + factor * ln(odds), where
 * factor = PDO / ln 2 and offset = base_points - factor * ln(base_odds) (e.g. 600 points at
 * odds 19:1 and 50 points to double the odds). Since ln(odds) = -logit(PD), the points of bin b
 * of feature j, out of n features, are
 *     points = -(beta_j * WoE_b + beta_0 / n) * factor + offset / n,
 * and a row's points add up to its score: total = offset - factor * logit(PD). Points increase
 * with creditworthiness. They are kept unrounded, so the relation is exact to rounding.
 *
 * Decisions. A policy (stored as the model's "decision_policy") approves at score >= approve_at,
 * declines below decline_below, refers in between, and has optional hard rules on raw fields
 * (op "<", "<=", ">", ">=" against a number; "==", "!=" against a number or a text; "missing"),
 * each with the decision it forces ("decline" or "refer") and a reason. The final decision is
 * decline when a decline rule fires or the score is below decline_below, else refer when a refer
 * rule fires or the score is below approve_at, else approve. A comparison with a missing value
 * never fires (only "missing" does); a number rule on text that is not a number is an error.
 * Defaults: approve_at = base_points, decline_below = base_points - 2 * PDO.
 *
 * Adverse-action reasons: the features whose points fall furthest below the most points the
 * feature can give (max over its bins), largest shortfall first, ties in feature order, at most
 * FM_SCORECARD_REASONS and only those with a shortfall > 0.
 *
 * Thread-safety: a fitted fm_scorecard_t is read-only; many threads may score with one.
 */
#ifndef FM_SCORECARD_H
#define FM_SCORECARD_H

#include "core/buf.h"
#include "core/error.h"
#include "data/data.h"
#include "data/prep.h"
#include "model/model.h"

#include <cJSON.h>
#include <stdint.h>

#define FM_SCORECARD_DEFAULT_PDO         50.0
#define FM_SCORECARD_DEFAULT_BASE_POINTS 600.0
#define FM_SCORECARD_DEFAULT_BASE_ODDS   19.0
#define FM_SCORECARD_DEFAULT_MIN_SHARE   0.05
#define FM_SCORECARD_DEFAULT_BINS        20
#define FM_SCORECARD_MAX_BINS            1000
#define FM_SCORECARD_L2                  1e-6
#define FM_SCORECARD_REASONS             4
#define FM_SCORECARD_MAX_RULES           64
#define FM_SCORECARD_MAX_TEXT            200 /* a rule's text value or reason, in bytes */

/* ---- Scaling ------------------------------------------------------------------------------- */

typedef struct fm_scorecard_scaling {
    double pdo, base_points, base_odds; /* base_odds: good:bad at base_points */
    double factor, offset;              /* PDO / ln 2; base_points - factor * ln(base_odds) */
} fm_scorecard_scaling_t;

/* Fills out from PDO (> 0), base points (finite) and base odds (> 0). FM_EINVAL naming the bad
 * value. */
int fm_scorecard_scaling(double pdo, double base_points, double base_odds,
                         fm_scorecard_scaling_t *out, fm_error_t *err);

/* The points of a bin of WoE woe of a feature with coefficient beta, on a card with intercept
 * beta_0 and nfeatures features: -(beta * woe + beta_0 / nfeatures) * factor + offset /
 * nfeatures. */
double fm_scorecard_bin_points(double beta, double woe, double intercept, size_t nfeatures,
                               const fm_scorecard_scaling_t *s);

/* WoE of a bin with good and bad rows out of goods and bads (all > 0), 0.5 in an empty cell. */
double fm_scorecard_woe(double good, double bad, double goods, double bads);
/* Its IV term (g / G - b / B) * WoE with the same smoothing. */
double fm_scorecard_iv_term(double good, double bad, double goods, double bads);

/* ---- Binning ------------------------------------------------------------------------------- */

typedef struct fm_scorecard_bin {
    char *label;         /* owned: "(-inf, 25]", "(25, 40]", "(40, inf)", "rent", "other: a, b" */
    int missing;         /* 1: the missing bin */
    double lower, upper; /* numeric: (lower, upper], -inf / inf at the ends; NaN otherwise */
    char **categories;   /* categorical: owned, the group's categories in byte order */
    size_t ncategories;
    int other;        /* categorical: holds categories below min_share */
    double good, bad; /* training rows in the bin */
    double woe, iv;   /* iv: the bin's IV term */
    double points;    /* after fitting */
} fm_scorecard_bin_t;

typedef struct fm_scorecard_feature {
    char *name; /* owned */
    fm_column_type_t type;
    int direction; /* numeric: +1 WoE increases with the value, -1 decreases; 0 categorical */
    size_t nbins;
    fm_scorecard_bin_t *bins; /* owned; numeric bins in value order, categorical groups, then the
                                 missing bin when there is one */
    double iv;
    double beta;                   /* coefficient of the feature's WoE */
    double min_points, max_points; /* over its bins */
    double neutral_points;         /* an unseen category's points (WoE 0) */
    size_t column;                 /* the model's prep column */
    int32_t *bin_of;               /* categorical: prep category id -> bin; owned */
} fm_scorecard_feature_t;

typedef struct fm_scorecard_binning {
    double min_share;    /* 0 < min_share < 0.5; default FM_SCORECARD_DEFAULT_MIN_SHARE */
    size_t initial_bins; /* 2..FM_SCORECARD_MAX_BINS; default FM_SCORECARD_DEFAULT_BINS */
    double category_gap; /* >= 0: merge category groups whose WoE differ by less; 0 = off */
} fm_scorecard_binning_t;

void fm_scorecard_binning_defaults(fm_scorecard_binning_t *o);

/*
 * Bins frame column `column` against label (per frame row: 1 bad, 0 good, -1 no target, such rows
 * are skipped) over rows rows[0..nrows) (NULL: all rows). Fills *out (free with
 * fm_scorecard_feature_deinit): bins with counts, WoE and IV, the feature's IV and direction;
 * beta and points are 0. FM_EDATA when no row has a target or the rows hold only one class;
 * FM_EINVAL for options out of range.
 */
int fm_scorecard_bin_feature(const fm_frame_t *frame, size_t column, const int32_t *label,
                             const size_t *rows, size_t nrows, const fm_scorecard_binning_t *o,
                             fm_scorecard_feature_t *out, fm_error_t *err);
void fm_scorecard_feature_deinit(fm_scorecard_feature_t *f);

/* ---- Logistic regression ------------------------------------------------------------------- */

/*
 * Fits P(y = 1) = sigmoid(beta[0] + x . beta[1..p]) to x[n * p] (row-major) and y[n] (0/1) by
 * Newton-Raphson, maximising the log-likelihood minus (l2 / 2) * |beta[1..p]|^2, until the largest
 * step is below 1e-10 (at most 100 iterations, step halving when the objective would fall).
 * beta[p + 1] is written; *iterations (may be NULL) gets the count. FM_EDATA when n is 0, y has
 * a single class or the Hessian is singular.
 */
int fm_scorecard_logistic(double *beta, const double *x, const double *y, size_t n, size_t p,
                          double l2, int *iterations, fm_error_t *err);

/* ---- Decision policy ----------------------------------------------------------------------- */

typedef enum {
    FM_DECISION_APPROVE = 0,
    FM_DECISION_REFER = 1,
    FM_DECISION_DECLINE = 2,
} fm_decision_t;

/* "approve", "refer", "decline". */
const char *fm_decision_name(fm_decision_t d);

typedef enum {
    FM_RULE_LT = 0,
    FM_RULE_LE,
    FM_RULE_GT,
    FM_RULE_GE,
    FM_RULE_EQ,
    FM_RULE_NE,
    FM_RULE_MISSING,
} fm_rule_op_t;

typedef struct fm_decision_rule {
    char *feature; /* owned: a raw field of the applicant */
    fm_rule_op_t op;
    int is_text;            /* "==" / "!=" against text */
    double number;          /* the value when not text */
    char *text;             /* owned: the value when text */
    fm_decision_t decision; /* FM_DECISION_DECLINE or FM_DECISION_REFER */
    char *reason;           /* owned */
} fm_decision_rule_t;

typedef struct fm_decision_policy {
    double approve_at;    /* score >= approve_at: approve (unless a rule says otherwise) */
    double decline_below; /* score < decline_below: decline; <= approve_at */
    size_t nrules;
    fm_decision_rule_t *rules; /* owned */
} fm_decision_policy_t;

/*
 * Reads a policy: {"approve_at": P, "decline_below": P, "rules": [{"feature": F, "op": OP,
 * "value": V, "decision": "decline" | "refer", "reason": TEXT}, ...]}. approve_at and
 * decline_below default to defaults->approve_at / decline_below when absent (defaults may be NULL:
 * then both are required); "rules" may be absent; "value" is absent for "missing", a number for
 * the order ops, a number or a string for "==" and "!="; "reason" defaults to "<feature> <op>
 * <value>". Errors (FM_EINVAL) name the field and the rule: unknown members, a wrong type, an
 * unknown op or decision, approve_at < decline_below, more than FM_SCORECARD_MAX_RULES rules,
 * texts longer than FM_SCORECARD_MAX_TEXT. On failure *out holds nothing.
 */
int fm_decision_policy_from_json(const cJSON *json, const fm_decision_policy_t *defaults,
                                 fm_decision_policy_t *out, fm_error_t *err);
/* The policy as JSON (caller owns), readable by fm_decision_policy_from_json. NULL on ENOMEM. */
cJSON *fm_decision_policy_to_json(const fm_decision_policy_t *p);
/* Frees what p owns and zeroes it. NULL-safe. */
void fm_decision_policy_deinit(fm_decision_policy_t *p);
/* "<", "<=", ">", ">=", "==", "!=", "missing". */
const char *fm_rule_op_name(fm_rule_op_t op);

/*
 * Whether rule r fires on raw value v (missing values, missing tokens and NaN count as missing).
 * *fires is set; FM_EDATA naming the field when a number rule meets text that is not a number.
 */
int fm_decision_rule_fires(const fm_decision_rule_t *r, const fm_raw_value_t *v, int *fires,
                           fm_error_t *err);

/* ---- Fitting ------------------------------------------------------------------------------- */

typedef struct fm_scorecard_options {
    double pdo, base_points, base_odds; /* defaults FM_SCORECARD_DEFAULT_* */
    fm_scorecard_binning_t binning;
    double min_iv;                      /* drop features with IV below; default 0 (keep all) */
    const fm_decision_policy_t *policy; /* NULL: the default cutoffs, no rules */
    const char *const *protected;       /* recorded in the model as left out; may be NULL */
    size_t nprotected;
} fm_scorecard_options_t;

void fm_scorecard_options_defaults(fm_scorecard_options_t *o);

/*
 * Fits a scorecard on frame: features cols[0..ncols) (frame column indices, the target and
 * left-out columns excluded by the caller), label per frame row (1 bad, 0 good, -1 missing:
 * skipped), classes {good, bad} (the model's [negative, positive]) and the target's name. *out is
 * a ready model (caller frees, fm_model_free) of family "logistic" whose info holds "scorecard"
 * (scaling, intercept, features with their bins, WoE, IV, points; the dropped features with why),
 * "decision_policy", "created", "training", "data" and explanation baselines (fm_explain_fit,
 * approval meaning "good" at the PD of approve_at). Errors: FM_EDATA when no feature is left or
 * the target has one class; FM_EINVAL for options out of range.
 */
int fm_scorecard_fit(const fm_frame_t *frame, const size_t *cols, size_t ncols,
                     const int32_t *label, const char *const classes[2], const char *target,
                     const fm_scorecard_options_t *options, fm_model_t **out, fm_error_t *err);

/* ---- Scoring ------------------------------------------------------------------------------- */

/* A scorecard read back from a model (opaque parts are the features' scoring maps). */
typedef struct fm_scorecard {
    fm_scorecard_scaling_t scaling;
    double intercept; /* beta_0 */
    size_t nfeatures;
    fm_scorecard_feature_t *features; /* owned; features[k] is prep column features[k].column */
    fm_decision_policy_t policy;
    const fm_model_t *model; /* borrowed */
} fm_scorecard_t;

/*
 * Reads model->info "scorecard" and "decision_policy" and checks them against the model: family
 * "logistic", binary, every feature a prep column whose encoded width matches its bins, every
 * category of the prep in one bin, the layer's weights and bias equal to beta * WoE and beta_0,
 * and stored points equal to the formula (1e-6). The model must outlive *out (fm_scorecard_free).
 * FM_EDATA when the model has no scorecard; FM_EFORMAT naming the field otherwise.
 */
int fm_scorecard_from_model(const fm_model_t *model, fm_scorecard_t **out, fm_error_t *err);
void fm_scorecard_free(fm_scorecard_t *sc);

/* One applicant's outcome. points and bin are caller arrays of sc->nfeatures entries. */
typedef struct fm_scorecard_result {
    double score;    /* sum of points */
    double log_odds; /* logit(PD) = beta_0 + sum beta_j * WoE_j */
    double pd;       /* P(bad) */
    fm_decision_t decision;
    double *points; /* per feature */
    size_t *bin;    /* per feature: the bin, or SIZE_MAX for an unseen category (WoE 0) */
    size_t reasons[FM_SCORECARD_REASONS]; /* feature indices, largest shortfall first */
    size_t nreasons;
    uint64_t fired; /* bit i: rule i fired */
} fm_scorecard_result_t;

/*
 * Scores one encoded row x (the model's prep->nfeatures values, as fm_prep_encode_row or
 * fm_prep_transform make them) with rule_values[i] the raw value of rule i's field (may be NULL
 * when the policy has no rules). Fills *out. Errors: FM_EDATA from a rule (see
 * fm_decision_rule_fires) or for an encoded block that is no valid one-hot (naming the feature).
 */
int fm_scorecard_score(const fm_scorecard_t *sc, const double *x, const fm_raw_value_t *rule_values,
                       fm_scorecard_result_t *out, fm_error_t *err);

/* The label of feature f's bin `bin` as fm_scorecard_score reports it ("unseen category" for
 * SIZE_MAX). Borrowed. */
const char *fm_scorecard_bin_label(const fm_scorecard_t *sc, size_t f, size_t bin);

/* The reason text of feature f in bin `bin`: "<feature>: <bin label> (P of a possible M
 * points)", written to buf (size bytes) and returned. */
const char *fm_scorecard_reason_text(const fm_scorecard_t *sc, size_t f, size_t bin, double points,
                                     char *buf, size_t size);

/* ---- Export -------------------------------------------------------------------------------- */

/*
 * The scorecard table as CSV, appended to out: header
 * feature,type,iv,coefficient,bin,lower,upper,categories,missing,count,good,bad,woe,iv_bin,points
 * then one record per bin (lower/upper empty when not numeric; categories joined by "|"; missing
 * 0/1), %.17g numbers. FM_ENOMEM.
 */
int fm_scorecard_table_csv(const fm_scorecard_t *sc, fm_buf_t *out);
/* The table as JSON (caller owns): {"pdo","base_points","base_odds","factor","offset",
 * "intercept","features":[{"feature","type","iv","coefficient","bins":[{"bin","lower","upper" |
 * "categories","missing","count","good","bad","woe","iv","points"}]}]}. NULL on ENOMEM. */
cJSON *fm_scorecard_table_json(const fm_scorecard_t *sc);

#endif
