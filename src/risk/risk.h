/*
 * Portfolio credit risk (issue 7): expected loss, Basel IRB capital and a Monte Carlo loss
 * distribution of a portfolio of exposures.
 *
 * - Expected loss per exposure EL = PD x LGD x EAD, totals overall and by segment.
 * - Basel II/III IRB capital (the asymptotic single risk factor model, BCBS "International
 *   Convergence of Capital Measurement", paras 272-273 and 328-330):
 *     corporate:        R = 0.12 w + 0.24 (1 - w), w = (1 - e^{-50 PD}) / (1 - e^{-50})
 *     retail mortgage:  R = 0.15
 *     retail revolving: R = 0.04
 *     other retail:     R = 0.03 w + 0.16 (1 - w), w = (1 - e^{-35 PD}) / (1 - e^{-35})
 *     b = (0.11852 - 0.05478 ln PD)^2
 *     K = [LGD N((G(PD) + sqrt(R) G(0.999)) / sqrt(1 - R)) - PD LGD] x MA,
 *     MA = (1 + (M - 2.5) b) / (1 - 1.5 b) for corporate exposures, 1 for retail,
 *     RWA = 12.5 K EAD, capital = K EAD.
 *   PD is floored at a setting (default 0.0003, Basel II; Basel III's corporate floor is 0.0005);
 *   the floored PD is used for EL, capital and the Monte Carlo thresholds alike. M is clamped to
 *   [1, 5] years (para 320). A defaulted exposure (PD = 1) has K = 0: its loss is expected, and
 *   the best estimate of expected loss is taken to be LGD. The SME firm-size adjustment of the
 *   corporate correlation (sales turnover under EUR 50 million) is not applied.
 * - Monte Carlo: a one-factor Gaussian copula. In each scenario a systematic factor Z and, per
 *   exposure, an idiosyncratic eps_i are standard normal; exposure i defaults when
 *   sqrt(rho_i) Z + sqrt(1 - rho_i) eps_i < G(PD_i), and the scenario's loss is the sum of
 *   LGD_i EAD_i over the defaults. rho_i is one given correlation for all, else the exposure's
 *   own "rho", else its IRB R. VaR and Expected Shortfall at chosen levels come from the sorted
 *   sample, each with its sampling error (see fm_risk_mc_level_t).
 *
 * Reproducibility: scenarios are generated in blocks of FM_RISK_MC_BLOCK; block k draws Z and
 * then eps_1..eps_n of each of its scenarios, in order, from its own xoshiro256** stream, seeded
 * by fm_rng_seed with splitmix64's finaliser of (seed + (k + 1) x an odd constant). The loss of
 * scenario s is stored at index s and summed over the exposures in input order. Threads take
 * whole blocks, so the sample is bit-identical for a seed whatever the number of threads.
 *
 * N is the standard normal CDF (via erfc, double precision) and G its inverse (Wichura's
 * algorithm AS241, PPND16, relative accuracy about 1e-16).
 *
 * Ownership: a portfolio is owned by its creator (fm_risk_portfolio_free). Everything here is
 * reentrant; a portfolio nobody modifies may be read from several threads.
 */
#ifndef FM_RISK_H
#define FM_RISK_H

#include "core/error.h"
#include "core/normal.h"
#include "core/strdict.h"
#include "data/data.h"
#include "model/model.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define FM_RISK_NAME_MAX         64     /* bytes of an id or segment name, NUL included */
#define FM_RISK_MAX_LEVELS       16     /* VaR/ES levels of one run */
#define FM_RISK_MC_BLOCK         1024   /* scenarios per random stream */
#define FM_RISK_DEFAULT_PD_FLOOR 0.0003 /* Basel II; Basel III corporate: 0.0005 */
#define FM_RISK_MAX_SCENARIOS    (1ull << 30)

/* ---- Exposures ------------------------------------------------------------------------------ */

typedef enum {
    FM_RISK_CORPORATE = 0,
    FM_RISK_RETAIL_MORTGAGE = 1,
    FM_RISK_RETAIL_REVOLVING = 2,
    FM_RISK_RETAIL_OTHER = 3,
} fm_risk_class_t;

/* "corporate", "retail_mortgage", "retail_revolving", "retail_other". */
const char *fm_risk_class_name(fm_risk_class_t c);
/* Parses those names (case-insensitive; also "mortgage", "revolving", "retail", "other"). */
int fm_risk_class_parse(const char *text, fm_risk_class_t *out);

typedef struct fm_risk_exposure {
    char id[FM_RISK_NAME_MAX];
    int32_t segment; /* index into the portfolio's segments */
    fm_risk_class_t asset_class;
    double pd;       /* probability of default in [0, 1] as given (before the floor) */
    double lgd;      /* loss given default in [0, 1] */
    double ead;      /* exposure at default, >= 0 */
    double maturity; /* effective maturity M in years, > 0 (clamped to [1, 5] for capital) */
    double rho;      /* asset correlation for the Monte Carlo in [0, 1); NaN: the IRB R */
} fm_risk_exposure_t;

typedef struct fm_risk_portfolio {
    fm_risk_exposure_t *exposures; /* owned; n entries */
    size_t n, cap;
    fm_strdict_t segments; /* segment names, in order of first appearance */
} fm_risk_portfolio_t;

/*
 * How exposures are read from a CSV file or JSON objects: the column (key) names, and the value
 * used when a column is absent or a cell empty (NaN: the value is required). Defaults
 * (fm_risk_input_defaults): columns id, segment, pd, lgd, ead, maturity, asset_class, rho;
 * LGD 0.45 (the Foundation IRB value for senior unsecured claims), maturity 2.5, asset class
 * corporate, segment "all", id the row number; PD and EAD required.
 */
typedef struct fm_risk_input {
    const char *id, *segment, *pd, *lgd, *ead, *maturity, *asset_class, *rho; /* borrowed */
    double pd_default, lgd_default, ead_default, maturity_default;
    fm_risk_class_t class_default;
    size_t max_exposures; /* more is FM_ELIMIT; 0: no limit */
} fm_risk_input_t;

void fm_risk_input_defaults(fm_risk_input_t *in);

/*
 * Reads a portfolio from CSV records (first record the header; file or memory, data/data.h).
 * pd (may be NULL) gives each row's PD instead of the pd column (PD from a model); it must hold
 * exactly npd = number of data rows, else FM_EINVAL. Bad values are FM_EDATA naming the source,
 * line and column. *out is the caller's (fm_risk_portfolio_free).
 */
int fm_risk_portfolio_read_csv(fm_csv_t *csv, const fm_risk_input_t *in, const double *pd,
                               size_t npd, fm_risk_portfolio_t **out, fm_error_t *err);
/* Reads a portfolio from a JSON array of objects with the keys of in (numbers; strings for id,
 * segment and asset_class). Errors name the item and key. */
int fm_risk_portfolio_from_json(const cJSON *array, const fm_risk_input_t *in,
                                fm_risk_portfolio_t **out, fm_error_t *err);
/* NULL-safe. */
void fm_risk_portfolio_free(fm_risk_portfolio_t *p);

/*
 * PDs from a model: P(positive) of a binary model for every data row of the CSV file at path,
 * which holds the model's input columns (read in chunks, with the model's column types). *pd is
 * a new array of *n values (caller frees). FM_EINVAL when the model is not a binary classifier.
 */
int fm_risk_model_pds(const fm_model_t *model, const char *path, double **pd, size_t *n,
                      fm_error_t *err);

/* ---- Expected loss and IRB capital ---------------------------------------------------------- */

typedef struct fm_risk_settings {
    double pd_floor; /* in [0, 1); default FM_RISK_DEFAULT_PD_FLOOR */
} fm_risk_settings_t;

void fm_risk_settings_defaults(fm_risk_settings_t *s);

/* The IRB figures of one exposure. */
typedef struct fm_risk_irb {
    double pd;      /* floored PD */
    double r;       /* asset correlation R */
    double b;       /* maturity adjustment b (0 for retail) */
    double k;       /* capital requirement per unit EAD */
    double el;      /* expected loss PD x LGD x EAD */
    double capital; /* K x EAD */
    double rwa;     /* 12.5 K EAD */
} fm_risk_irb_t;

/* R of an asset class at pd (already floored). */
double fm_risk_irb_correlation(fm_risk_class_t c, double pd);
/* b = (0.11852 - 0.05478 ln pd)^2. */
double fm_risk_irb_maturity_b(double pd);
/* K for pd (floored here at pd_floor), lgd and maturity m of class c; the other figures with
 * ead. */
void fm_risk_irb(fm_risk_class_t c, double pd, double lgd, double ead, double m, double pd_floor,
                 fm_risk_irb_t *out);

/* Totals over a set of exposures. */
typedef struct fm_risk_totals {
    size_t count;
    double ead, el, capital, rwa;
} fm_risk_totals_t;

/*
 * IRB figures of every exposure (per[n], may be NULL), the portfolio's totals, and totals by
 * segment (by_segment[p->segments.count], may be NULL).
 */
void fm_risk_assess(const fm_risk_portfolio_t *p, const fm_risk_settings_t *s, fm_risk_irb_t *per,
                    fm_risk_totals_t *total, fm_risk_totals_t *by_segment);

/* ---- Monte Carlo ---------------------------------------------------------------------------- */

typedef struct fm_risk_mc_options {
    uint64_t scenarios; /* 1 .. FM_RISK_MAX_SCENARIOS */
    uint64_t seed;
    int threads;                       /* 1 .. 256 */
    double levels[FM_RISK_MAX_LEVELS]; /* in (0, 1), e.g. 0.99, 0.999 */
    size_t nlevels;
    double rho; /* one asset correlation in [0, 1) for all; NaN: per exposure */
} fm_risk_mc_options_t;

/* 1e5 scenarios, seed 1, 1 thread, levels 0.99 and 0.999, rho NaN. */
void fm_risk_mc_options_defaults(fm_risk_mc_options_t *o);

/*
 * One level q of the loss distribution from S scenarios (L_(1) <= ... <= L_(S) sorted, k =
 * ceil(q S)):
 *   var = L_(k);
 *   var_lo, var_hi: a distribution-free 95% confidence interval for the q-quantile from the
 *     binomial distribution of the number of losses below it: the order statistics
 *     L_(floor(qS - 1.96 sqrt(S q (1-q)))) and L_(ceil(qS + 1.96 sqrt(S q (1-q))) + 1), clamped;
 *   var_std_error = (var_hi - var_lo) / (2 x 1.96);
 *   es = [sum_{j > k} L_(j) + (k - qS) L_(k)] / (S (1 - q)) (Acerbi and Tasche's estimator, exact
 *     for a sample with ties);
 *   es_std_error = sqrt{[Var(L | L >= var) + q (es - var)^2] / (S (1 - q))}, the asymptotic
 *     standard error of the tail mean.
 */
typedef struct fm_risk_mc_level {
    double level, var, var_lo, var_hi, var_std_error, es, es_std_error;
} fm_risk_mc_level_t;

typedef struct fm_risk_mc_result {
    uint64_t scenarios;
    int threads;
    double mean, mean_std_error, sd, min, max;
    double el; /* the analytic expected loss the mean estimates */
    fm_risk_mc_level_t levels[FM_RISK_MAX_LEVELS];
    size_t nlevels;
    double seconds; /* of the sampling and the summary */
} fm_risk_mc_result_t;

/*
 * Fills losses[o->scenarios] (the caller's) with the loss of each scenario, in scenario order.
 * Threads are pthreads; the result does not depend on their number. FM_EINVAL for bad options
 * (named), FM_ENOMEM, FM_EIO when a thread cannot start.
 */
int fm_risk_mc_losses(const fm_risk_portfolio_t *p, const fm_risk_settings_t *s,
                      const fm_risk_mc_options_t *o, double *losses, fm_error_t *err);

/* Summarises n losses (sorted in place) at levels[nlevels] into out (scenarios, mean, levels). */
int fm_risk_mc_summarise(double *losses, size_t n, const double *levels, size_t nlevels,
                         fm_risk_mc_result_t *out, fm_error_t *err);

/* fm_risk_mc_losses then fm_risk_mc_summarise, with the analytic EL and the time taken. */
int fm_risk_mc_run(const fm_risk_portfolio_t *p, const fm_risk_settings_t *s,
                   const fm_risk_mc_options_t *o, fm_risk_mc_result_t *out, fm_error_t *err);

/* ---- The report ----------------------------------------------------------------------------- */

/*
 * The whole assessment as one JSON object, what `finmaas risk` prints and
 * POST /api/apps/risk/portfolio answers: {"exposures": n, "pd_floor", "totals": {count, ead,
 * el, capital, rwa}, "segments": [{segment, ...totals}], "per_exposure": [{id, segment,
 * asset_class, pd, pd_floored, lgd, ead, maturity, r, b, k, el, capital, rwa}] (only when
 * per_exposure), "monte_carlo": {...} (only when mc is not NULL: scenarios, seed, threads, rho,
 * mean, mean_std_error, sd, max, el, levels: [{level, var, var_ci95: [lo, hi], var_std_error,
 * es, es_std_error}], seconds)}. *out is the caller's (cJSON_Delete).
 */
int fm_risk_analyse(const fm_risk_portfolio_t *p, const fm_risk_settings_t *s,
                    const fm_risk_mc_options_t *mc, int per_exposure, cJSON **out, fm_error_t *err);

#endif
