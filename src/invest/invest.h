/*
 * The invest area: investment analysis of daily price series (issue 7).
 *
 * - Prices (prices.c): observations (ticker, date, close, volume) collected by a builder from CSV
 *   files or a JSON request, then aligned on the dates every ticker has. A CSV file is read in one
 *   of three layouts, chosen from its header (names compared without regard to case):
 *     long:     a close column ("close", else "adj close", else "price"; or the column named by
 *               the caller) and a ticker column ("name", "ticker" or "symbol"): any number of
 *               tickers in one file, e.g. the Kaggle S&P 500 files;
 *     one file per ticker: a close column but no ticker column; the ticker is the file's base
 *               name up to its first '_' or '.' ("AAPL_data.csv" is AAPL);
 *     wide:     no close column: every column but the date column is one series, named by its
 *               header (eustockmarkets.csv: DAX, SMI, CAC, FTSE).
 *   The date column is the first of "date", "datetime", "timestamp", "time", "t", "day"; without
 *   one, a row's date is its 1-based data row number. A "volume" column is read when present.
 *   Dates are kept as text. The aligned dates are sorted by their value when all of them are ISO
 *   dates (YYYY-MM-DD, optionally followed by a time) or all are numbers (so files stored newest
 *   first are read correctly); otherwise they keep the order of the first ticker. Closes must be
 *   finite and positive; a missing close (an empty cell or NA token) leaves the date out for that
 *   ticker. A date given twice for one ticker is an error.
 * - Statistics (stats.c), per ticker, on simple returns r_t = P_t / P_{t-1} - 1 of the aligned
 *   closes, with P periods a year (default 252) and the annual risk-free rate rf (default 0):
 *     mean and sample standard deviation s (n - 1 in the denominator) of r and of log returns;
 *     annual return P * mean(r); CAGR (P_last / P_first)^(P / n) - 1; annual volatility
 *     s * sqrt(P); Sharpe (P * mean(r) - rf) / (s * sqrt(P));
 *     downside deviation sqrt(sum_t min(r_t, 0)^2 / n) * sqrt(P) (target return 0, all n returns
 *     in the denominator) and Sortino (P * mean(r) - rf) / downside deviation;
 *     maximum drawdown max_t (1 - P_t / max_{u <= t} P_u) as a positive fraction, with the dates
 *     of its peak and trough and the first later date the price regains the peak (or null);
 *     beta against the index ticker cov(r, r_index) / var(r_index), and their correlation.
 *   Value at risk and expected shortfall of a one-day return at each confidence level a, as
 *   losses: positive numbers are losses (a VaR of 0.02 is a 2% loss), L = -r:
 *     historical: VaR = the a-quantile of L with linear interpolation between order statistics
 *       (NumPy's default "linear" method: h = (n - 1) a, L_(floor h) + (h - floor h) (L_(floor h
 *       + 1) - L_(floor h)) over the sorted losses); ES = the mean of the losses L >= VaR;
 *     parametric (normal): VaR = -(mu + s z_{1-a}) = s z_a - mu and
 *       ES = s phi(z_a) / (1 - a) - mu, with mu and s the sample mean and standard deviation of
 *       r, z_a the standard normal a-quantile and phi its density;
 *     Monte Carlo: draws of r from the normal with the sample mean and standard deviation
 *       (seeded: the same seed gives the same figures), then VaR and ES as historical.
 * - Forecasting (forecast.c): a walk-forward backtest of the next day's direction (up when the
 *   next return is > 0) and of its absolute return (a realised-volatility proxy), each day t with
 *   features computed from closes and volumes up to and including t only: the returns r_t ..
 *   r_{t-4}, the sample standard deviations of the last 5 and 20 returns, and log(V_t / V_{t-1})
 *   when the ticker has volumes. The window expands: from the first day with min_train earlier
 *   rows, the models are trained (train/train.h: "logistic" or "gbt" for the direction, "linear"
 *   or "gbt" for the volatility) on every row whose outcome is known at t, that is rows s < t,
 *   and retrained every retrain_every days; between retrains the last model predicts. Baselines
 *   use the same information: direction, the majority direction of the rows s < t and the random
 *   walk (tomorrow moves as today did: r_t > 0); volatility, the mean absolute return of the rows
 *   s < t and the random walk |r_t|. The model beats a baseline when its accuracy is higher
 *   (direction) or its RMSE lower (volatility) than every baseline's; the report says plainly
 *   when it does not. options.leak_future is a test hook that adds r_{t+1} itself as a feature:
 *   a look-ahead that the real pipeline never makes, kept so a test can show that a leak changes
 *   the result.
 * - Portfolios (portfolio.c): on the annualised mean vector and sample covariance of the simple
 *   returns, long-only weights within per-asset bounds [lo, hi] summing to 1: the minimum-variance
 *   portfolio, the maximum-Sharpe portfolio and points of the efficient frontier (target returns
 *   evenly spaced from the minimum-variance portfolio's return to the largest achievable), each
 *   solved by the quadratic programme solver below.
 *
 * Thread-safety: the functions keep no state between calls; objects may be shared between
 * threads only while nobody modifies them.
 */
#ifndef FM_INVEST_H
#define FM_INVEST_H

#include "core/error.h"

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define FM_INVEST_MAX_ASSETS 64      /* tickers in one analysis */
#define FM_INVEST_MAX_LEVELS 8       /* VaR confidence levels */
#define FM_INVEST_MAX_TICKER 64      /* bytes of a ticker name */
#define FM_INVEST_MAX_DATE   64      /* bytes of a date's text */
#define FM_INVEST_MAX_POINTS 200     /* efficient frontier points */
#define FM_INVEST_MAX_MC     2000000 /* Monte Carlo draws per ticker */

/* ---- Prices ------------------------------------------------------------------------------- */

/* Aligned prices: every ticker has a close on every date. Plain struct; owns its arrays. */
typedef struct fm_invest_prices {
    size_t nassets;
    size_t ndates;
    char **tickers;  /* nassets names */
    char **dates;    /* ndates texts, in time order */
    double *close;   /* [nassets * ndates], asset-major: close[a * ndates + t] */
    double *volume;  /* [nassets * ndates], NaN where missing; NULL when no ticker has volumes */
    int *has_volume; /* per asset: 1 when it has at least one volume */
} fm_invest_prices_t;

/* Frees p and its arrays; NULL-safe. */
void fm_invest_prices_free(fm_invest_prices_t *p);

/* The index of ticker in p, or -1. */
int fm_invest_prices_find(const fm_invest_prices_t *p, const char *ticker);

/* Collects observations before they are aligned (opaque). */
typedef struct fm_invest_builder fm_invest_builder_t;

/* A new builder that accepts at most max_observations observations (0: 10 million). *out is owned
 * by the caller (fm_invest_builder_free). */
int fm_invest_builder_new(size_t max_observations, fm_invest_builder_t **out, fm_error_t *err);
void fm_invest_builder_free(fm_invest_builder_t *b);

/* Adds one observation: close must be finite and > 0, volume >= 0 or NaN (none). Errors name the
 * ticker and date: empty or overlong names, a bad close or volume, too many tickers or
 * observations. */
int fm_invest_builder_add(fm_invest_builder_t *b, const char *ticker, const char *date,
                          double close, double volume, fm_error_t *err);

/* Reads a CSV file in any of the layouts above into b. price_column (NULL: by the rules above)
 * names the close column of a long or per-ticker file. Errors name the file, line and column. */
int fm_invest_builder_read_csv(fm_invest_builder_t *b, const char *path, const char *price_column,
                               fm_error_t *err);

/* Aligns the observations on the dates every ticker has. *out is owned by the caller
 * (fm_invest_prices_free). FM_EDATA when there is no ticker, a ticker has a date twice, or fewer
 * than 3 common dates remain (naming the tickers). The builder may be freed after. */
int fm_invest_builder_finish(fm_invest_builder_t *b, fm_invest_prices_t **out, fm_error_t *err);

/*
 * Reads a request body's prices: {"series": {"T": {"dates": [...], "close": [...], "volume":
 * [...]}, ...}} (dates optional: then 1, 2, ...; volume optional) or {"prices": [{"date": D,
 * "ticker": T, "close": X, "volume": V}, ...]} (ticker optional, default "asset"). Dates may be
 * strings or numbers. At most max_observations observations (FM_ELIMIT beyond). Errors name the
 * member and position.
 */
int fm_invest_prices_from_json(const cJSON *body, size_t max_observations, fm_invest_prices_t **out,
                               fm_error_t *err);

/* ---- Settings ----------------------------------------------------------------------------- */

typedef struct fm_invest_options {
    double periods_per_year;             /* default 252 */
    double risk_free;                    /* annual risk-free rate, default 0 */
    double levels[FM_INVEST_MAX_LEVELS]; /* VaR confidence levels in (0.5, 1); default .95, .99 */
    size_t nlevels;
    const char *index; /* ticker for beta (borrowed); NULL: none */
    size_t mc_samples; /* Monte Carlo draws per ticker, default 100000 */
    uint64_t seed;     /* Monte Carlo draws and model training; default 42 */
    int threads;       /* tickers forecast at once, default 1 */
    /* forecasting */
    int forecast;      /* 1: run the walk-forward backtest */
    int retrain_every; /* days between retrains, default 21 */
    size_t min_train;  /* rows before the first prediction, default 252 */
    const char *model; /* "logistic" (then "linear" for volatility) or "gbt"; default logistic */
    int leak_future;   /* test hook: add the next day's return as a feature (a look-ahead) */
    /* portfolio */
    int portfolio;          /* 1: minimum-variance, maximum-Sharpe and the frontier */
    double lower, upper;    /* per-asset weight bounds, default 0 and 1 */
    size_t frontier_points; /* default 20 */
} fm_invest_options_t;

/* Fills o with the defaults above (no forecast, no portfolio). */
void fm_invest_options_defaults(fm_invest_options_t *o);

/* Checks o's values (ranges, model name, bounds that admit weights summing to 1 for nassets
 * assets). Errors name the setting. */
int fm_invest_options_check(const fm_invest_options_t *o, size_t nassets, fm_error_t *err);

/*
 * Reads the settings of a request body into o (strings borrowed from body): "index",
 * "risk_free", "levels" [..], "periods_per_year", "mc_samples", "seed", "forecast" (bool),
 * "retrain_every", "min_train", "model", "portfolio" (bool), "bounds" [lo, hi], "frontier".
 * Absent members keep o's values; a member of the wrong type or range is an error naming it.
 */
int fm_invest_options_from_json(const cJSON *body, fm_invest_options_t *o, fm_error_t *err);

/* ---- Statistics --------------------------------------------------------------------------- */

/* Parametric (normal) one-period VaR and ES at level of returns with mean mu and standard
 * deviation sigma, as defined above. */
void fm_invest_var_normal(double mu, double sigma, double level, double *var, double *es);

/* Historical VaR and ES at level of returns r[0..n) (n >= 1), as defined above. sorted_losses
 * holds the n losses -r sorted ascending (fm_invest_sorted_losses). */
void fm_invest_var_historical(const double *sorted_losses, size_t n, double level, double *var,
                              double *es);

/* Writes the losses -r[0..n) into out[0..n), sorted ascending. */
void fm_invest_sorted_losses(const double *r, size_t n, double *out);

/* The maximum drawdown of price[0..n) as a positive fraction (0 when prices never fall), with
 * the indices of its peak and trough (both 0 when 0) and of the first later index whose price is
 * at least the peak's (-1 when none). */
double fm_invest_max_drawdown(const double *price, size_t n, size_t *peak, size_t *trough,
                              long *recovery);

/* The figures of one ticker. Plain data. */
typedef struct fm_invest_stats {
    size_t n; /* returns */
    double mean, stdev, log_mean, log_stdev;
    double annual_return, annual_log_return, cagr, annual_volatility, sharpe;
    double downside_deviation, sortino;
    double max_drawdown;
    size_t peak, trough;      /* date indices */
    long recovery;            /* date index or -1 */
    double beta, correlation; /* NaN without an index */
    double var_historical[FM_INVEST_MAX_LEVELS], es_historical[FM_INVEST_MAX_LEVELS];
    double var_normal[FM_INVEST_MAX_LEVELS], es_normal[FM_INVEST_MAX_LEVELS];
    double var_mc[FM_INVEST_MAX_LEVELS], es_mc[FM_INVEST_MAX_LEVELS];
} fm_invest_stats_t;

/*
 * The statistics of price[0..n) (n >= 3) with o's settings; index_price (NULL: none) is the
 * index's closes on the same dates; mc_seed seeds this ticker's Monte Carlo draws. FM_ENOMEM or
 * FM_EDATA (constant prices: no volatility) naming nothing: the caller adds the ticker.
 */
int fm_invest_stats_compute(const double *price, const double *index_price, size_t n,
                            const fm_invest_options_t *o, uint64_t mc_seed, fm_invest_stats_t *out,
                            fm_error_t *err);

/* ---- Forecasting -------------------------------------------------------------------------- */

/* The walk-forward backtest of one ticker. Plain struct; owns its arrays (n entries each). */
typedef struct fm_invest_forecast {
    size_t n;        /* predictions whose outcome is known */
    size_t *day;     /* date index of the predicted day (the features are of day - 1) */
    double *p_up;    /* model: P(up) */
    double *vol;     /* model: predicted absolute return */
    int *up;         /* outcome: 1 when the return was > 0 */
    double *abs_ret; /* outcome: absolute return */
    double *majority, *last_direction; /* direction baselines: P(up) as 0/1 */
    double *mean_abs, *last_abs;       /* volatility baselines */
    size_t retrains;
    double next_p_up, next_vol; /* the forecast for the day after the last date */
} fm_invest_forecast_t;

/* Runs the backtest of asset in p with o's settings. FM_EDATA when there are too few dates for
 * min_train rows and one prediction; training errors name the ticker and day. */
int fm_invest_forecast_run(const fm_invest_prices_t *p, size_t asset, const fm_invest_options_t *o,
                           fm_invest_forecast_t *out, fm_error_t *err);
/* Frees the arrays and zeroes f; NULL-safe. */
void fm_invest_forecast_deinit(fm_invest_forecast_t *f);

/* ---- Portfolios --------------------------------------------------------------------------- */

/*
 * Minimises 1/2 x'Qx + c'x over sum(x) = 1, lower <= x_i <= upper for n variables (Q symmetric
 * positive semi-definite, row-major n x n; c may be NULL for 0). An accelerated projected gradient
 * (the projection onto the bounded simplex by bisection on its shift) finds the active bounds,
 * then the KKT system on the free variables is solved exactly and kept when feasible and no
 * worse. x holds a starting point on entry (NULL-safe: pass a feasible one or all zeros) and the
 * solution on return. FM_EINVAL when no x satisfies the constraints.
 */
int fm_invest_qp_simplex(const double *Q, const double *c, size_t n, double lower, double upper,
                         double *x, fm_error_t *err);

/* Portfolio figures of weights w over n assets with annual means mu and covariance cov. */
typedef struct fm_invest_point {
    double ret, volatility, sharpe;
} fm_invest_point_t;

/* Minimum-variance weights w[n] within [lower, upper]. */
int fm_invest_min_variance(const double *cov, size_t n, double lower, double upper, double *w,
                           fm_error_t *err);

/* The least-variance weights whose expected return mu'w equals target (within [lower, upper]);
 * FM_ERANGE when no weights reach it. */
int fm_invest_target_return(const double *mu, const double *cov, size_t n, double lower,
                            double upper, double target, double *w, fm_error_t *err);

/* Maximum-Sharpe weights: the efficient portfolio maximising (mu'w - rf) / sqrt(w'cov w),
 * searched along the frontier (golden section on the target return). */
int fm_invest_max_sharpe(const double *mu, const double *cov, size_t n, double lower, double upper,
                         double rf, double *w, fm_error_t *err);

/* ---- The whole analysis ------------------------------------------------------------------- */

/*
 * Analyses p with o's settings and returns one JSON object (the output of `finmaas invest` and of
 * POST /api/apps/invest/analyze): "assets", "dates" {first, last, count}, "settings",
 * "statistics" {ticker: figures}, and with the options "forecast" {ticker: backtest} and
 * "portfolio". *out is owned by the caller (cJSON_Delete).
 */
int fm_invest_analyze(const fm_invest_prices_t *p, const fm_invest_options_t *o, cJSON **out,
                      fm_error_t *err);

#endif
