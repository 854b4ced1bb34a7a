/*
 * The whole investment analysis as one JSON object, shared by `finmaas invest` and
 * POST /api/apps/invest/analyze so that both answer the same: the settings and their checks, the
 * statistics of every ticker, the walk-forward backtests (one thread per ticker up to
 * options.threads) with their verdict against the baselines, and the portfolios.
 */
#include "invest/invest.h"

#include "core/json.h"
#include "eval/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fm_invest_options_defaults(fm_invest_options_t *o) {
    memset(o, 0, sizeof *o);
    o->periods_per_year = 252;
    o->risk_free = 0;
    o->levels[0] = 0.95;
    o->levels[1] = 0.99;
    o->nlevels = 2;
    o->mc_samples = 100000;
    o->seed = 42;
    o->threads = 1;
    o->retrain_every = 21;
    o->min_train = 252;
    o->model = "logistic";
    o->lower = 0;
    o->upper = 1;
    o->frontier_points = 20;
}

int fm_invest_options_check(const fm_invest_options_t *o, size_t nassets, fm_error_t *err) {
    if (!(o->periods_per_year > 0 && o->periods_per_year <= 100000))
        return fm_error_set(err, FM_EINVAL, "periods per year %g must be in (0, 100000]",
                            o->periods_per_year);
    if (!(o->risk_free >= -1 && o->risk_free <= 1))
        return fm_error_set(err, FM_EINVAL, "risk-free rate %g must be in [-1, 1]", o->risk_free);
    if (o->nlevels < 1 || o->nlevels > FM_INVEST_MAX_LEVELS)
        return fm_error_set(err, FM_EINVAL, "give 1 to %d VaR levels", FM_INVEST_MAX_LEVELS);
    for (size_t k = 0; k < o->nlevels; k++)
        if (!(o->levels[k] > 0.5 && o->levels[k] < 1))
            return fm_error_set(err, FM_EINVAL, "VaR level %g must be in (0.5, 1)", o->levels[k]);
    if (o->mc_samples > FM_INVEST_MAX_MC)
        return fm_error_set(err, FM_EINVAL, "Monte Carlo draws %zu: at most %d", o->mc_samples,
                            FM_INVEST_MAX_MC);
    if (o->threads < 1 || o->threads > 64)
        return fm_error_set(err, FM_EINVAL, "threads %d must be in [1, 64]", o->threads);
    if (o->retrain_every < 1 || o->retrain_every > 100000)
        return fm_error_set(err, FM_EINVAL, "retrain every %d days: must be in [1, 100000]",
                            o->retrain_every);
    if (o->min_train < 50 || o->min_train > 10000000)
        return fm_error_set(err, FM_EINVAL, "min_train %zu must be at least 50", o->min_train);
    if (!o->model || (strcmp(o->model, "logistic") && strcmp(o->model, "gbt")))
        return fm_error_set(err, FM_EINVAL, "model '%.40s': expected logistic or gbt",
                            o->model ? o->model : "");
    if (!(o->lower >= 0 && o->upper <= 1 && o->lower <= o->upper))
        return fm_error_set(err, FM_EINVAL,
                            "weight bounds [%g, %g] must satisfy 0 <= lo <= hi <= 1", o->lower,
                            o->upper);
    if (o->portfolio && nassets &&
        (o->lower * (double)nassets > 1 + 1e-12 || o->upper * (double)nassets < 1 - 1e-12))
        return fm_error_set(err, FM_EINVAL,
                            "weight bounds [%g, %g] cannot sum to 1 over %zu assets", o->lower,
                            o->upper, nassets);
    if (o->frontier_points > FM_INVEST_MAX_POINTS)
        return fm_error_set(err, FM_EINVAL, "frontier points %zu: at most %d", o->frontier_points,
                            FM_INVEST_MAX_POINTS);
    return FM_OK;
}

/* ---- Settings from a request body ---------------------------------------------------------- */

static int member_number(const cJSON *body, const char *key, double lo, double hi, double *out,
                         fm_error_t *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    if (!v) return FM_OK;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return fm_error_set(err, FM_EINVAL, "'%s' must be a number in [%g, %g]", key, lo, hi);
    *out = v->valuedouble;
    return FM_OK;
}

static int member_bool(const cJSON *body, const char *key, int *out, fm_error_t *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    if (!v) return FM_OK;
    if (!cJSON_IsBool(v)) return fm_error_set(err, FM_EINVAL, "'%s' must be true or false", key);
    *out = cJSON_IsTrue(v);
    return FM_OK;
}

static int member_string(const cJSON *body, const char *key, const char **out, fm_error_t *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    if (!v) return FM_OK;
    if (!cJSON_IsString(v)) return fm_error_set(err, FM_EINVAL, "'%s' must be a string", key);
    *out = v->valuestring;
    return FM_OK;
}

static int member_pair(const cJSON *body, const char *key, double *a, double *b, size_t max,
                       size_t *count, fm_error_t *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    if (!v) return FM_OK;
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 1 || (size_t)n > max || (count == NULL && n != 2))
        return fm_error_set(err, FM_EINVAL, "'%s' must be an array of %s numbers", key,
                            count ? "1 to 8" : "2");
    double vals[FM_INVEST_MAX_LEVELS];
    int rc = fm_json_doubles(v, key, vals, (size_t)n, err);
    if (rc) return rc;
    if (count) {
        memcpy(a, vals, (size_t)n * sizeof *a);
        *count = (size_t)n;
    } else {
        *a = vals[0];
        *b = vals[1];
    }
    return FM_OK;
}

int fm_invest_options_from_json(const cJSON *body, fm_invest_options_t *o, fm_error_t *err) {
    double ppy = o->periods_per_year, rf = o->risk_free, mc = (double)o->mc_samples;
    double seed = (double)o->seed, every = o->retrain_every, min_train = (double)o->min_train;
    double frontier = (double)o->frontier_points;
    int rc = member_number(body, "periods_per_year", 1e-9, 100000, &ppy, err);
    if (!rc) rc = member_number(body, "risk_free", -1, 1, &rf, err);
    if (!rc) rc = member_number(body, "mc_samples", 0, FM_INVEST_MAX_MC, &mc, err);
    if (!rc) rc = member_number(body, "seed", 0, 9007199254740991.0, &seed, err);
    if (!rc) rc = member_number(body, "retrain_every", 1, 100000, &every, err);
    if (!rc) rc = member_number(body, "min_train", 50, 10000000, &min_train, err);
    if (!rc) rc = member_number(body, "frontier", 0, FM_INVEST_MAX_POINTS, &frontier, err);
    if (!rc) rc = member_string(body, "index", &o->index, err);
    if (!rc) rc = member_string(body, "model", &o->model, err);
    if (!rc) rc = member_bool(body, "forecast", &o->forecast, err);
    if (!rc) rc = member_bool(body, "portfolio", &o->portfolio, err);
    if (!rc)
        rc = member_pair(body, "levels", o->levels, NULL, FM_INVEST_MAX_LEVELS, &o->nlevels, err);
    if (!rc) rc = member_pair(body, "bounds", &o->lower, &o->upper, 2, NULL, err);
    if (rc) return rc;
    if (mc != floor(mc) || seed != floor(seed) || every != floor(every) ||
        min_train != floor(min_train) || frontier != floor(frontier))
        return fm_error_set(err, FM_EINVAL,
                            "'mc_samples', 'seed', 'retrain_every', 'min_train' and 'frontier' "
                            "must be whole numbers");
    o->periods_per_year = ppy;
    o->risk_free = rf;
    o->mc_samples = (size_t)mc;
    o->seed = (uint64_t)seed;
    o->retrain_every = (int)every;
    o->min_train = (size_t)min_train;
    o->frontier_points = (size_t)frontier;
    return FM_OK;
}

/* ---- Statistics ---------------------------------------------------------------------------- */

static cJSON *date_or_null(const fm_invest_prices_t *p, long t) {
    return t >= 0 ? cJSON_CreateString(p->dates[t]) : cJSON_CreateNull();
}

static cJSON *stats_json(const fm_invest_prices_t *p, const fm_invest_stats_t *s,
                         const fm_invest_options_t *o) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "returns", (double)s->n);
    fm_json_add_number(j, "mean_return", s->mean);
    fm_json_add_number(j, "stdev_return", s->stdev);
    fm_json_add_number(j, "mean_log_return", s->log_mean);
    fm_json_add_number(j, "stdev_log_return", s->log_stdev);
    fm_json_add_number(j, "annual_return", s->annual_return);
    fm_json_add_number(j, "annual_log_return", s->annual_log_return);
    fm_json_add_number(j, "cagr", s->cagr);
    fm_json_add_number(j, "annual_volatility", s->annual_volatility);
    fm_json_add_number(j, "sharpe", s->sharpe);
    fm_json_add_number(j, "downside_deviation", s->downside_deviation);
    fm_json_add_number(j, "sortino", s->sortino);
    cJSON *dd = cJSON_AddObjectToObject(j, "max_drawdown");
    fm_json_add_number(dd, "value", s->max_drawdown);
    cJSON_AddItemToObject(dd, "peak", date_or_null(p, (long)s->peak));
    cJSON_AddItemToObject(dd, "trough", date_or_null(p, (long)s->trough));
    cJSON_AddItemToObject(dd, "recovery", date_or_null(p, s->recovery));
    if (o->index) {
        fm_json_add_number(j, "beta", s->beta);
        fm_json_add_number(j, "correlation", s->correlation);
    }
    cJSON *var = cJSON_AddArrayToObject(j, "var");
    for (size_t k = 0; k < o->nlevels; k++) {
        cJSON *v = cJSON_CreateObject();
        cJSON_AddNumberToObject(v, "level", o->levels[k]);
        const char *names[3] = {"historical", "parametric", "monte_carlo"};
        const double vv[3] = {s->var_historical[k], s->var_normal[k], s->var_mc[k]};
        const double ee[3] = {s->es_historical[k], s->es_normal[k], s->es_mc[k]};
        for (int m = 0; m < 3; m++) {
            if (m == 2 && o->mc_samples == 0) continue;
            cJSON *e = cJSON_AddObjectToObject(v, names[m]);
            fm_json_add_number(e, "var", vv[m]);
            fm_json_add_number(e, "es", ee[m]);
        }
        cJSON_AddItemToArray(var, v);
    }
    return j;
}

/* ---- Forecasts ------------------------------------------------------------------------------ */

typedef struct forecast_jobs {
    const fm_invest_prices_t *p;
    const fm_invest_options_t *o;
    fm_invest_forecast_t *out;
    int *rc;
    fm_error_t *err;
    size_t next;
    pthread_mutex_t lock;
} forecast_jobs_t;

static void *forecast_worker(void *arg) {
    forecast_jobs_t *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->lock);
        size_t a = j->next++;
        pthread_mutex_unlock(&j->lock);
        if (a >= j->p->nassets) break;
        j->rc[a] = fm_invest_forecast_run(j->p, a, j->o, &j->out[a], &j->err[a]);
    }
    return NULL;
}

/* Runs every ticker's backtest; on failure err holds the first failing ticker's error. */
static int run_forecasts(const fm_invest_prices_t *p, const fm_invest_options_t *o,
                         fm_invest_forecast_t *out, fm_error_t *err) {
    size_t na = p->nassets;
    int *rc = calloc(na, sizeof *rc);
    fm_error_t *errs = calloc(na, sizeof *errs);
    if (!rc || !errs) {
        free(rc), free(errs);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    forecast_jobs_t j = {p, o, out, rc, errs, 0, PTHREAD_MUTEX_INITIALIZER};
    size_t nthreads = (size_t)o->threads < na ? (size_t)o->threads : na;
    pthread_t threads[64];
    size_t started = 0;
    for (; nthreads > 1 && started < nthreads; started++)
        if (pthread_create(&threads[started], NULL, forecast_worker, &j) != 0) break;
    forecast_worker(&j); /* the calling thread works too, and alone when none started */
    for (size_t k = 0; k < started; k++)
        pthread_join(threads[k], NULL);
    int result = FM_OK;
    for (size_t a = 0; a < na && !result; a++)
        if (rc[a]) {
            result = rc[a];
            if (err) *err = errs[a];
        }
    free(rc);
    free(errs);
    return result;
}

static cJSON *direction_json(const fm_invest_forecast_t *f) {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "target", "up: the next day's return is > 0");
    const char *names[3] = {"model", "majority", "random_walk"};
    const double *preds[3] = {f->p_up, f->majority, f->last_direction};
    double acc[3];
    cJSON *base = NULL;
    for (int m = 0; m < 3; m++) {
        fm_confusion_t c = fm_metric_confusion(preds[m], f->up, NULL, f->n, 0.5);
        acc[m] = fm_confusion_accuracy(&c);
        cJSON *e = cJSON_CreateObject();
        fm_json_add_number(e, "accuracy", acc[m]);
        fm_json_add_number(e, "auc", fm_metric_auc(preds[m], f->up, NULL, f->n));
        if (m == 0) {
            cJSON_AddItemToObject(d, "model", e);
            base = cJSON_AddObjectToObject(d, "baselines");
        } else {
            cJSON_AddItemToObject(base, names[m], e);
        }
    }
    size_t up = 0;
    for (size_t i = 0; i < f->n; i++)
        up += f->up[i] != 0;
    fm_json_add_number(d, "share_up", (double)up / (double)f->n);
    int best = acc[1] >= acc[2] ? 1 : 2, beats = acc[0] > acc[best];
    cJSON_AddBoolToObject(d, "beats_baseline", beats);
    char text[200];
    snprintf(text, sizeof text, "%s: accuracy %.4f against %.4f (%s baseline)",
             beats ? "the model beats the baselines" : "the model does not beat the baseline",
             acc[0], acc[best], names[best]);
    cJSON_AddStringToObject(d, "verdict", text);
    return d;
}

static cJSON *volatility_json(const fm_invest_forecast_t *f) {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "target", "the next day's absolute return");
    const char *names[3] = {"model", "historical_mean", "random_walk"};
    const double *preds[3] = {f->vol, f->mean_abs, f->last_abs};
    double rmse[3];
    cJSON *base = NULL;
    for (int m = 0; m < 3; m++) {
        rmse[m] = fm_metric_rmse(preds[m], f->abs_ret, NULL, f->n);
        cJSON *e = cJSON_CreateObject();
        fm_json_add_number(e, "rmse", rmse[m]);
        fm_json_add_number(e, "mae", fm_metric_mae(preds[m], f->abs_ret, NULL, f->n));
        if (m == 0) {
            cJSON_AddItemToObject(d, "model", e);
            base = cJSON_AddObjectToObject(d, "baselines");
        } else {
            cJSON_AddItemToObject(base, names[m], e);
        }
    }
    int best = rmse[1] <= rmse[2] ? 1 : 2, beats = rmse[0] < rmse[best];
    cJSON_AddBoolToObject(d, "beats_baseline", beats);
    char text[200];
    snprintf(text, sizeof text, "%s: RMSE %.6f against %.6f (%s baseline)",
             beats ? "the model beats the baselines" : "the model does not beat the baseline",
             rmse[0], rmse[best], names[best]);
    cJSON_AddStringToObject(d, "verdict", text);
    return d;
}

static cJSON *forecast_json(const fm_invest_prices_t *p, const fm_invest_forecast_t *f) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "predictions", (double)f->n);
    cJSON_AddStringToObject(j, "first_date", p->dates[f->day[0]]);
    cJSON_AddStringToObject(j, "last_date", p->dates[f->day[f->n - 1]]);
    cJSON_AddNumberToObject(j, "retrains", (double)f->retrains);
    cJSON_AddItemToObject(j, "direction", direction_json(f));
    cJSON_AddItemToObject(j, "volatility", volatility_json(f));
    cJSON *next = cJSON_AddObjectToObject(j, "next_day");
    cJSON_AddStringToObject(next, "after", p->dates[p->ndates - 1]);
    fm_json_add_number(next, "p_up", f->next_p_up);
    fm_json_add_number(next, "volatility", f->next_vol);
    cJSON *series = cJSON_AddObjectToObject(j, "series");
    cJSON *dates = cJSON_AddArrayToObject(series, "dates");
    for (size_t i = 0; i < f->n; i++)
        cJSON_AddItemToArray(dates, cJSON_CreateString(p->dates[f->day[i]]));
    cJSON_AddItemToObject(series, "p_up", fm_json_double_array(f->p_up, f->n));
    cJSON_AddItemToObject(series, "volatility", fm_json_double_array(f->vol, f->n));
    return j;
}

/* ---- Portfolios ---------------------------------------------------------------------------- */

static cJSON *point_json(const fm_invest_prices_t *p, const double *mu, const double *cov,
                         const double *w, double rf, int named) {
    size_t n = p->nassets;
    double ret = 0, var = 0;
    for (size_t i = 0; i < n; i++) {
        ret += mu[i] * w[i];
        for (size_t k = 0; k < n; k++)
            var += w[i] * cov[i * n + k] * w[k];
    }
    double vol = sqrt(fmax(var, 0));
    cJSON *j = cJSON_CreateObject();
    fm_json_add_number(j, "return", ret);
    fm_json_add_number(j, "volatility", vol);
    fm_json_add_number(j, "sharpe", vol > 0 ? (ret - rf) / vol : NAN);
    if (named) {
        cJSON *ws = cJSON_AddObjectToObject(j, "weights");
        for (size_t i = 0; i < n; i++)
            fm_json_add_number(ws, p->tickers[i], w[i]);
    } else {
        cJSON_AddItemToObject(j, "weights", fm_json_double_array(w, n));
    }
    return j;
}

static int portfolio_json(const fm_invest_prices_t *p, const fm_invest_options_t *o, cJSON **out,
                          fm_error_t *err) {
    size_t n = p->nassets, nd = p->ndates, m = nd - 1;
    double P = o->periods_per_year;
    double *mu = calloc(n, sizeof *mu), *cov = calloc(n * n, sizeof *cov);
    double *r = malloc(n * m * sizeof *r), *w = malloc(n * sizeof *w);
    if (!mu || !cov || !r || !w) {
        free(mu), free(cov), free(r), free(w);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    for (size_t a = 0; a < n; a++) {
        const double *pr = p->close + a * nd;
        for (size_t t = 0; t < m; t++) {
            r[a * m + t] = pr[t + 1] / pr[t] - 1;
            mu[a] += r[a * m + t];
        }
        mu[a] /= (double)m;
    }
    for (size_t a = 0; a < n; a++)
        for (size_t b = a; b < n; b++) {
            double s = 0;
            for (size_t t = 0; t < m; t++)
                s += (r[a * m + t] - mu[a]) * (r[b * m + t] - mu[b]);
            cov[a * n + b] = cov[b * n + a] = s / (double)(m - 1) * P;
        }
    for (size_t a = 0; a < n; a++)
        mu[a] *= P;
    cJSON *j = cJSON_CreateObject();
    cJSON *bounds = cJSON_AddArrayToObject(j, "bounds");
    cJSON_AddItemToArray(bounds, cJSON_CreateNumber(o->lower));
    cJSON_AddItemToArray(bounds, cJSON_CreateNumber(o->upper));
    cJSON_AddItemToObject(j, "expected_returns", fm_json_double_array(mu, n));
    cJSON *c = cJSON_AddArrayToObject(j, "covariance");
    for (size_t a = 0; a < n; a++)
        cJSON_AddItemToArray(c, fm_json_double_array(cov + a * n, n));
    int rc = fm_invest_min_variance(cov, n, o->lower, o->upper, w, err);
    double rmin = 0;
    if (!rc) {
        cJSON_AddItemToObject(j, "min_variance", point_json(p, mu, cov, w, o->risk_free, 1));
        for (size_t i = 0; i < n; i++)
            rmin += mu[i] * w[i];
    }
    if (!rc) rc = fm_invest_max_sharpe(mu, cov, n, o->lower, o->upper, o->risk_free, w, err);
    if (!rc) {
        cJSON_AddItemToObject(j, "max_sharpe", point_json(p, mu, cov, w, o->risk_free, 1));
        int any_above = 0;
        for (size_t i = 0; i < n; i++)
            any_above |= mu[i] > o->risk_free;
        if (!any_above)
            cJSON_AddStringToObject(j, "note",
                                    "no asset's expected return exceeds the risk-free rate: the "
                                    "maximum-Sharpe portfolio has a negative Sharpe ratio");
    }
    /* The largest achievable return: every weight at lower, the best assets filled to upper. */
    double rmax = 0;
    if (!rc) {
        double left = 1 - o->lower * (double)n;
        int *used = calloc(n, sizeof *used);
        if (!used) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        for (size_t i = 0; !rc && i < n; i++)
            rmax += o->lower * mu[i];
        while (!rc && left > 1e-15) {
            size_t best = n;
            for (size_t i = 0; i < n; i++)
                if (!used[i] && (best == n || mu[i] > mu[best])) best = i;
            if (best == n) break;
            used[best] = 1;
            double add = fmin(left, o->upper - o->lower);
            rmax += add * mu[best];
            left -= add;
        }
        free(used);
    }
    cJSON *front = cJSON_AddArrayToObject(j, "frontier");
    size_t np = o->frontier_points;
    for (size_t k = 0; !rc && k < np; k++) {
        double target = np == 1 ? rmin : rmin + (rmax - rmin) * (double)k / (double)(np - 1);
        rc = fm_invest_target_return(mu, cov, n, o->lower, o->upper, target, w, err);
        if (!rc) cJSON_AddItemToArray(front, point_json(p, mu, cov, w, o->risk_free, 0));
    }
    free(mu), free(cov), free(r), free(w);
    if (rc) {
        cJSON_Delete(j);
        return fm_error_prefix(err, "portfolio: ");
    }
    *out = j;
    return FM_OK;
}

/* ---- The analysis ------------------------------------------------------------------------- */

static cJSON *settings_json(const fm_invest_options_t *o) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddNumberToObject(s, "periods_per_year", o->periods_per_year);
    cJSON_AddNumberToObject(s, "risk_free", o->risk_free);
    cJSON_AddItemToObject(s, "levels", fm_json_double_array(o->levels, o->nlevels));
    cJSON_AddItemToObject(s, "index", o->index ? cJSON_CreateString(o->index) : cJSON_CreateNull());
    cJSON_AddNumberToObject(s, "mc_samples", (double)o->mc_samples);
    cJSON_AddStringToObject(s, "mc_method", "normal with the sample mean and standard deviation");
    cJSON_AddNumberToObject(s, "seed", (double)o->seed);
    if (o->forecast) {
        cJSON_AddStringToObject(s, "model", o->model);
        cJSON_AddNumberToObject(s, "retrain_every", o->retrain_every);
        cJSON_AddNumberToObject(s, "min_train", (double)o->min_train);
        if (o->leak_future) cJSON_AddBoolToObject(s, "leak_future", 1);
    }
    if (o->portfolio) cJSON_AddNumberToObject(s, "frontier", (double)o->frontier_points);
    return s;
}

int fm_invest_analyze(const fm_invest_prices_t *p, const fm_invest_options_t *o, cJSON **out,
                      fm_error_t *err) {
    *out = NULL;
    int rc = fm_invest_options_check(o, p->nassets, err);
    if (rc) return rc;
    int index = -1;
    if (o->index && (index = fm_invest_prices_find(p, o->index)) < 0)
        return fm_error_set(err, FM_EINVAL, "index '%.60s' is not one of the tickers", o->index);
    size_t na = p->nassets, nd = p->ndates;
    cJSON *j = cJSON_CreateObject();
    cJSON *assets = cJSON_AddArrayToObject(j, "assets");
    for (size_t a = 0; a < na; a++)
        cJSON_AddItemToArray(assets, cJSON_CreateString(p->tickers[a]));
    cJSON *dates = cJSON_AddObjectToObject(j, "dates");
    cJSON_AddStringToObject(dates, "first", p->dates[0]);
    cJSON_AddStringToObject(dates, "last", p->dates[nd - 1]);
    cJSON_AddNumberToObject(dates, "count", (double)nd);
    cJSON_AddItemToObject(j, "settings", settings_json(o));
    cJSON *stats = cJSON_AddObjectToObject(j, "statistics");
    for (size_t a = 0; !rc && a < na; a++) {
        fm_invest_stats_t s;
        const double *ix = index >= 0 ? p->close + (size_t)index * nd : NULL;
        rc = fm_invest_stats_compute(p->close + a * nd, ix, nd, o, o->seed + a, &s, err);
        if (rc)
            fm_error_prefix(err, "ticker '%s': ", p->tickers[a]);
        else
            cJSON_AddItemToObject(stats, p->tickers[a], stats_json(p, &s, o));
    }
    if (!rc && o->forecast) {
        fm_invest_forecast_t *f = calloc(na, sizeof *f);
        rc = f ? run_forecasts(p, o, f, err) : fm_error_set(err, FM_ENOMEM, "out of memory");
        cJSON *fj = rc ? NULL : cJSON_AddObjectToObject(j, "forecast");
        for (size_t a = 0; !rc && a < na; a++)
            cJSON_AddItemToObject(fj, p->tickers[a], forecast_json(p, &f[a]));
        for (size_t a = 0; f && a < na; a++)
            fm_invest_forecast_deinit(&f[a]);
        free(f);
    }
    if (!rc && o->portfolio) {
        cJSON *pj = NULL;
        rc = portfolio_json(p, o, &pj, err);
        if (!rc) cJSON_AddItemToObject(j, "portfolio", pj);
    }
    if (rc) {
        cJSON_Delete(j);
        return rc;
    }
    *out = j;
    return FM_OK;
}
