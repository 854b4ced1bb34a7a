/*
 * Group fairness of a binary decision: per-group rates, comparisons against a reference group with
 * a significance test, Fairlearn's max-min summaries, banding of numeric protected attributes and
 * AIF360's reweighing weights.
 *
 * Inputs are per row: the true label y (0/1, 1 = the positive class), the decision d (0/1, 1 =
 * predicted positive, i.e. P(positive) >= threshold) and the row's group (a code 0..ngroups-1, or
 * negative: the protected value is missing and the row is left out).
 *
 * Per group g (n_g rows, of which P_g have y=1, N_g have y=0, S_g have d=1; TP_g have y=1 and d=1,
 * FP_g have y=0 and d=1):
 *   selection rate  SR_g   = S_g / n_g                      P(d=1 | g)
 *   TPR_g                  = TP_g / P_g                     P(d=1 | y=1, g); NaN when P_g = 0
 *   FPR_g                  = FP_g / N_g                     P(d=1 | y=0, g); NaN when N_g = 0
 *   precision_g            = TP_g / S_g                     P(y=1 | d=1, g); NaN when S_g = 0
 * Against the reference group r ("privileged" in AIF360's words), every difference is group minus
 * reference:
 *   demographic parity difference   SR_g - SR_r        (AIF360 statistical_parity_difference)
 *   demographic parity ratio        SR_g / SR_r        (AIF360 disparate_impact; NaN when SR_r = 0)
 *   disparate impact ratio          the same ratio; four_fifths = 1 when it is < 0.8 (the EEOC
 *                                   four-fifths rule), 0 when >= 0.8, -1 when the ratio is NaN
 *   equal opportunity difference    TPR_g - TPR_r      (AIF360 equal_opportunity_difference)
 *   equalized odds difference       max(|TPR_g - TPR_r|, |FPR_g - FPR_r|)
 *   average odds difference         ((FPR_g - FPR_r) + (TPR_g - TPR_r)) / 2
 *                                   (AIF360 average_odds_difference)
 * A comparison involving an undefined rate is NaN (JSON null). The reference group compares with
 * itself: differences 0, ratio 1 (when defined), and no test.
 *
 * Each other group's selection rate is tested against the reference's on the 2x2 table
 *   [[S_g, n_g - S_g], [S_r, n_r - S_r]]:
 * when any expected count (row total * column total / N) is below 5, Fisher's exact test
 * (two-sided: the sum of the hypergeometric probabilities of every table with the same margins
 * that is no more likely than the observed one, with a relative tolerance of 1e-7 as in R and
 * SciPy, computed from log-factorials); otherwise Pearson's chi-square test with one degree of
 * freedom and no continuity correction, X2 = N (ad - bc)^2 / (r1 r2 c1 c2), p = erfc(sqrt(X2/2)).
 *
 * Summaries over the groups whose value is defined, as Fairlearn defines them:
 *   demographic_parity_difference = max_g SR_g - min_g SR_g
 *   demographic_parity_ratio      = min_g SR_g / max_g SR_g (NaN when every SR_g is 0)
 *   equalized_odds_difference     = max(max TPR - min TPR, max FPR - min FPR)
 *
 * Everything here is pure computation over caller buffers; thread-safe.
 */
#ifndef FM_FAIRNESS_H
#define FM_FAIRNESS_H

#include "core/error.h"

#include "data/data.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* The default band edges of a numeric protected attribute (age): <25, 25-34, ..., 55-64, 65+. */
#define FM_FAIRNESS_AGE_BANDS                                                                      \
    { 25.0, 35.0, 45.0, 55.0, 65.0 }
#define FM_FAIRNESS_AGE_NBANDS 5

/* Below this expected cell count the selection-rate test is Fisher's exact test. */
#define FM_FAIRNESS_MIN_EXPECTED 5.0

typedef enum {
    FM_FAIRNESS_TEST_NONE = 0, /* the reference group itself */
    FM_FAIRNESS_TEST_FISHER = 1,
    FM_FAIRNESS_TEST_CHI_SQUARE = 2,
} fm_fairness_test_t;

/* "fisher", "chi-square", or NULL for FM_FAIRNESS_TEST_NONE. */
const char *fm_fairness_test_name(fm_fairness_test_t test);

/* One group's counts, rates and comparison with the reference. Plain data. */
typedef struct fm_fairness_group {
    const char *name; /* borrowed from the names given to fm_fairness_compute */
    size_t count, positives, selected, true_positives, false_positives;
    double selection_rate, tpr, fpr, precision;
    double parity_difference, parity_ratio; /* the ratio is also the disparate impact ratio */
    int four_fifths;                        /* 1: ratio < 0.8, 0: >= 0.8, -1: ratio undefined */
    double equal_opportunity_difference, equalized_odds_difference, average_odds_difference;
    fm_fairness_test_t test;
    double statistic; /* chi-square: X2; Fisher: the observed table's probability; NaN: none */
    double p_value;   /* NaN for the reference group */
} fm_fairness_group_t;

/* The metrics of one protected attribute. groups is owned (fm_fairness_deinit). */
typedef struct fm_fairness {
    size_t ngroups;              /* groups with at least one row, in code order */
    fm_fairness_group_t *groups; /* owned */
    size_t reference;            /* index into groups */
    size_t rows;                 /* rows counted (group >= 0) */
    size_t rows_missing_group;   /* rows left out (group < 0) */
    double parity_difference, parity_ratio, equalized_odds_difference; /* Fairlearn summaries */
} fm_fairness_t;

/*
 * Computes the metrics of n rows. y and d hold 0/1; group[i] is in [0, ngroups) or negative
 * (missing: the row is left out). names[ngroups] name the groups (borrowed: they must outlive
 * *out). reference is the code of the reference group, or -1 for the group with the most rows
 * (the lowest code among equals). Groups with no rows are left out of out->groups. Errors:
 * FM_EINVAL for a y or d not 0/1 or a group code >= ngroups (naming the row), FM_EDATA when fewer
 * than two groups have rows or the named reference has none, FM_ENOMEM. On success *out is owned
 * by the caller (fm_fairness_deinit); on failure it is left empty.
 */
int fm_fairness_compute(const int *y, const int *d, const int32_t *group, size_t n,
                        const char *const *names, size_t ngroups, long reference,
                        fm_fairness_t *out, fm_error_t *err);

/* Frees out->groups and zeroes *out. NULL-safe. */
void fm_fairness_deinit(fm_fairness_t *f);

/*
 * The metrics as a new JSON object (caller owns; NULL when out of memory): "reference", "rows",
 * "rows_missing_group", "groups" (an array of objects, one per group, undefined values null) and
 * "summary" (the Fairlearn max-min summaries).
 */
cJSON *fm_fairness_to_json(const fm_fairness_t *f);

/*
 * The two-sided p-value of Fisher's exact test on the 2x2 table [[a, b], [c, d]] (see the top of
 * this file); *table_probability (may be NULL) receives the observed table's hypergeometric
 * probability. 1 when a margin is zero.
 */
double fm_fairness_fisher_exact(size_t a, size_t b, size_t c, size_t d, double *table_probability);

/*
 * Pearson's chi-square test without continuity correction on [[a, b], [c, d]]: returns the p-value
 * and leaves X2 in *statistic (may be NULL). A zero margin gives X2 = 0 and p = 1.
 */
double fm_fairness_chi_square(size_t a, size_t b, size_t c, size_t d, double *statistic);

/*
 * The selection-rate test of [[a, b], [c, d]]: Fisher's exact test when any expected count is below
 * FM_FAIRNESS_MIN_EXPECTED, else the chi-square test. Returns the test used and fills *statistic
 * and *p_value.
 */
fm_fairness_test_t fm_fairness_selection_test(size_t a, size_t b, size_t c, size_t d,
                                              double *statistic, double *p_value);

/*
 * AIF360's reweighing: weights[i] = P(g) P(y) / P(g, y) = n_g n_y / (n n_gy) for the row's group
 * g and label y, with n the rows whose group is not missing. A row with a missing group (negative)
 * gets weight 1. Errors: FM_EINVAL for a y not 0/1 or a group >= ngroups, FM_EDATA when no row
 * has a group.
 */
int fm_fairness_reweighing(const int *y, const int32_t *group, size_t n, size_t ngroups,
                           double *weights, fm_error_t *err);

/*
 * The band of value among nedges strictly increasing edges: 0 when value < edges[0], i when
 * edges[i-1] <= value < edges[i], nedges when value >= edges[nedges-1]. value must not be NaN.
 */
size_t fm_fairness_band(double value, const double *edges, size_t nedges);

/*
 * The label of band b (0..nedges) in buf: "<25", "25-34", "65+" when every edge is a whole number,
 * else "<2.5", "[2.5,3.5)", ">=3.5". Returns the length written (cut to size - 1).
 */
int fm_fairness_band_label(const double *edges, size_t nedges, size_t band, char *buf, size_t size);

/*
 * Parses "25,35,45" into a new array of strictly increasing finite edges (*edges owned by the
 * caller, free()). FM_EPARSE naming the text for an empty list, a bad number or edges that do not
 * increase.
 */
int fm_fairness_parse_bands(const char *text, double **edges, size_t *nedges, fm_error_t *err);

/* ---- Protected attributes read from data ------------------------------------------------- */

/* A numeric protected column with more distinct values than this is banded by default. */
#define FM_FAIRNESS_MAX_UNBANDED_NUMBERS 10
/* The most protected attributes one evaluation takes. */
#define FM_FAIRNESS_MAX_ATTRIBUTES 64

/* How one protected attribute groups its rows. */
typedef struct fm_fairness_attribute {
    const char *name;      /* the column (borrowed) */
    const char *reference; /* the reference group's name (a value, or a band label such as
                              "25-34"), or NULL: the group with the most rows */
    const double *edges;   /* band edges (strictly increasing), or NULL: band at the age edges
                              when every value is a number and there are more than
                              FM_FAIRNESS_MAX_UNBANDED_NUMBERS distinct ones, else group by value */
    size_t nedges;
    int by_value; /* 1: never band, group by value even when numeric (ignored with edges) */
} fm_fairness_attribute_t;

/*
 * Rows gathered for fairness evaluation: per row the label, the decision and the value of each
 * protected attribute. Fed chunk by chunk (fm_fairness_rows_add), so a file of any size can be
 * evaluated; then grouped and measured (fm_fairness_rows_report). Single-owner.
 */
typedef struct fm_fairness_rows fm_fairness_rows_t;

/* attrs[nattrs] (1..FM_FAIRNESS_MAX_ATTRIBUTES, distinct names) are copied, with their strings. */
int fm_fairness_rows_new(const fm_fairness_attribute_t *attrs, size_t nattrs,
                         fm_fairness_rows_t **out, fm_error_t *err);
void fm_fairness_rows_free(fm_fairness_rows_t *c);

/*
 * Adds rows[0..n) of frame (rows NULL: the first n rows) with their labels y[n] (0/1, or negative:
 * no label, the row is skipped and counted as missing its target) and decisions d[n] (0/1; NULL:
 * all 0, for uses that need only labels and groups). The frame must hold every protected column
 * (FM_EDATA naming the column otherwise); numeric values are grouped by their shortest text.
 */
int fm_fairness_rows_add(fm_fairness_rows_t *c, const fm_frame_t *frame, const size_t *rows,
                         size_t n, const int *y, const int *d, fm_error_t *err);

/* Rows added with a label, and rows skipped for a missing one. */
size_t fm_fairness_rows_count(const fm_fairness_rows_t *c);
size_t fm_fairness_rows_missing_target(const fm_fairness_rows_t *c);

/*
 * The metrics of every attribute as the JSON array `finmaas fairness` prints under "attributes":
 * [{"attribute", "bands": [edges] or null, "reference", "rows", ..., "groups": [...],
 * "summary": {...}}, ...]. *out is owned by the caller. Errors: a value that cannot be banded,
 * an unknown reference group, fewer than two groups (fm_fairness_compute's), each naming the
 * column. Does not change the gathered rows: may be called again.
 */
int fm_fairness_rows_report(const fm_fairness_rows_t *c, cJSON **out, fm_error_t *err);

/*
 * The joint group of each gathered row over all attributes (the intersection of its groups,
 * numbered from 0 in first-seen order; -1 when any of its protected values is missing) and the
 * rows' labels, for reweighing over every protected attribute at once: codes[count] and
 * labels[count] are new arrays (caller frees), *ngroups the number of joint groups.
 */
int fm_fairness_rows_joint(const fm_fairness_rows_t *c, int32_t **codes, int **labels,
                           size_t *ngroups, fm_error_t *err);

/*
 * The attributes as JSON: [{"attribute", "bands": edges or null, "reference": name or null}],
 * with the bands each attribute actually uses (automatic banding resolved), as stored in a model
 * for later evaluations. Caller owns; NULL when out of memory or when grouping fails (err says).
 */
cJSON *fm_fairness_rows_settings(const fm_fairness_rows_t *c, fm_error_t *err);

/*
 * Reads attributes back from fm_fairness_rows_settings' JSON: attrs[*nattrs] borrow strings from
 * json; *edges_store (caller frees) holds every attribute's edges. FM_EFORMAT naming the field.
 */
int fm_fairness_attributes_from_json(const cJSON *json, fm_fairness_attribute_t *attrs, size_t max,
                                     size_t *nattrs, double **edges_store, fm_error_t *err);

#endif
