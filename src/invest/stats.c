/*
 * Per-ticker statistics of a price series: returns, annualised return and volatility, Sharpe and
 * Sortino ratios, maximum drawdown, beta, and value at risk and expected shortfall by history,
 * by the normal distribution and by Monte Carlo draws. invest.h gives every definition; the
 * conventions (losses positive, sample standard deviations, NumPy's linear quantile) are chosen
 * so that each figure can be recomputed with NumPy in one line.
 */
#include "invest/invest.h"

#include "core/normal.h"
#include "core/rng.h"
#include "core/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void fm_invest_var_normal(double mu, double sigma, double level, double *var, double *es) {
    double z = fm_normal_quantile(level);
    double phi = exp(-0.5 * z * z) / sqrt(2 * M_PI);
    *var = sigma * z - mu;
    *es = sigma * phi / (1 - level) - mu;
}

void fm_invest_sorted_losses(const double *r, size_t n, double *out) {
    for (size_t i = 0; i < n; i++)
        out[i] = -r[i];
    qsort(out, n, sizeof *out, fm_compare_double);
}

void fm_invest_var_historical(const double *sorted_losses, size_t n, double level, double *var,
                              double *es) {
    double v = fm_quantile_sorted(sorted_losses, n, level);
    size_t lo = (size_t)floor((double)(n - 1) * level);
    /* The tail is the losses at or beyond VaR: from the first sorted loss >= v to the end. */
    size_t first = lo;
    while (first > 0 && sorted_losses[first - 1] >= v)
        first--;
    while (first < n && sorted_losses[first] < v)
        first++;
    double sum = 0;
    for (size_t i = first; i < n; i++)
        sum += sorted_losses[i];
    *var = v;
    *es = first < n ? sum / (double)(n - first) : v;
}

double fm_invest_max_drawdown(const double *price, size_t n, size_t *peak, size_t *trough,
                              long *recovery) {
    size_t best_peak = 0, p_at = 0, t_at = 0;
    double worst = 0;
    for (size_t t = 1; t < n; t++) {
        if (price[t] > price[best_peak]) {
            best_peak = t;
            continue;
        }
        double dd = 1 - price[t] / price[best_peak];
        if (dd > worst) {
            worst = dd;
            p_at = best_peak;
            t_at = t;
        }
    }
    long rec = -1;
    if (worst > 0)
        for (size_t t = t_at + 1; t < n; t++)
            if (price[t] >= price[p_at]) {
                rec = (long)t;
                break;
            }
    *peak = p_at;
    *trough = t_at;
    *recovery = rec;
    return worst;
}

static void beta_against(const double *r, const double *ri, size_t n, double *beta, double *corr) {
    double mr, sr, mi, si;
    fm_mean_sd(r, n, &mr, &sr);
    fm_mean_sd(ri, n, &mi, &si);
    double cov = 0;
    for (size_t i = 0; i < n; i++)
        cov += (r[i] - mr) * (ri[i] - mi);
    cov /= (double)(n - 1);
    *beta = si > 0 ? cov / (si * si) : NAN;
    *corr = si > 0 && sr > 0 ? cov / (si * sr) : NAN;
}

int fm_invest_stats_compute(const double *price, const double *index_price, size_t n,
                            const fm_invest_options_t *o, uint64_t mc_seed, fm_invest_stats_t *out,
                            fm_error_t *err) {
    memset(out, 0, sizeof *out);
    if (n < 3) return fm_error_set(err, FM_EDATA, "%zu prices: 3 or more are needed", n);
    size_t m = n - 1, draws = o->mc_samples;
    size_t scratch = m > draws ? m : draws;
    double *r = malloc(m * sizeof *r), *lr = malloc(m * sizeof *lr);
    double *ri = index_price ? malloc(m * sizeof *ri) : NULL;
    double *sorted = malloc(scratch * sizeof *sorted);
    if (!r || !lr || !sorted || (index_price && !ri)) {
        free(r), free(lr), free(ri), free(sorted);
        return fm_error_set(err, FM_ENOMEM, "out of memory for %zu returns", scratch);
    }
    double down = 0;
    for (size_t t = 0; t < m; t++) {
        r[t] = price[t + 1] / price[t] - 1;
        lr[t] = log(price[t + 1] / price[t]);
        if (ri) ri[t] = index_price[t + 1] / index_price[t] - 1;
        if (r[t] < 0) down += r[t] * r[t];
    }
    double P = o->periods_per_year;
    out->n = m;
    fm_mean_sd(r, m, &out->mean, &out->stdev);
    fm_mean_sd(lr, m, &out->log_mean, &out->log_stdev);
    out->annual_return = P * out->mean;
    out->annual_log_return = P * out->log_mean;
    out->cagr = pow(price[n - 1] / price[0], P / (double)m) - 1;
    out->annual_volatility = out->stdev * sqrt(P);
    out->sharpe =
        out->stdev > 0 ? (out->annual_return - o->risk_free) / out->annual_volatility : NAN;
    out->downside_deviation = sqrt(down / (double)m) * sqrt(P);
    out->sortino = out->downside_deviation > 0
                       ? (out->annual_return - o->risk_free) / out->downside_deviation
                       : NAN;
    out->max_drawdown = fm_invest_max_drawdown(price, n, &out->peak, &out->trough, &out->recovery);
    out->beta = out->correlation = NAN;
    if (ri) beta_against(r, ri, m, &out->beta, &out->correlation);
    fm_invest_sorted_losses(r, m, sorted);
    for (size_t k = 0; k < o->nlevels; k++) {
        fm_invest_var_historical(sorted, m, o->levels[k], &out->var_historical[k],
                                 &out->es_historical[k]);
        fm_invest_var_normal(out->mean, out->stdev, o->levels[k], &out->var_normal[k],
                             &out->es_normal[k]);
    }
    if (draws > 0) {
        fm_rng_t rng;
        fm_rng_seed(&rng, mc_seed);
        for (size_t i = 0; i < draws; i++)
            sorted[i] = -(out->mean + out->stdev * fm_rng_normal(&rng));
        qsort(sorted, draws, sizeof *sorted, fm_compare_double);
        for (size_t k = 0; k < o->nlevels; k++)
            fm_invest_var_historical(sorted, draws, o->levels[k], &out->var_mc[k], &out->es_mc[k]);
    } else {
        for (size_t k = 0; k < o->nlevels; k++)
            out->var_mc[k] = out->es_mc[k] = NAN;
    }
    free(r), free(lr), free(ri), free(sorted);
    if (!(out->stdev > 0))
        return fm_error_set(err, FM_EDATA, "the price never changes: no volatility to measure");
    return FM_OK;
}
