/*
 * The walk-forward backtest of one ticker: next-day direction and absolute return forecast by the
 * platform's own models (train/train.h) on lagged features, with an expanding window and no
 * look-ahead, beside naive baselines (invest.h gives the features, targets and baselines).
 *
 * No look-ahead by construction: row i of the feature frame is day t = i + FIRST_DAY, its
 * features come from days <= t and its targets from day t + 1, so the outcome of row i is known
 * from day t + 1 on. A model that predicts row i is trained on a frame that is the frame's first
 * i rows and nothing else: the columns of that training frame point at the prefix of the full
 * columns, so rows at or after i cannot reach the trainer (and nothing is copied). Predictions use
 * another such view, of the rows up to the next retrain.
 */
#include "invest/invest.h"

#include "train/train.h"
#include "core/stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_DAY 20 /* the first day with 20 earlier returns for the 20-day volatility */
#define MAX_COLS  11

enum { COL_LAG1 = 0, COL_VOL5 = 5, COL_VOL20 = 6 };

static const char *const lag_names[5] = {"return_lag1", "return_lag2", "return_lag3", "return_lag4",
                                         "return_lag5"};

typedef struct features {
    fm_frame_t frame; /* columns own their values */
    int up_col, abs_col;
} features_t;

static void features_free(features_t *f) {
    for (size_t c = 0; c < f->frame.ncols; c++)
        free(f->frame.columns[c].values);
    free(f->frame.columns);
}

static double *add_column(features_t *f, const char *name) {
    fm_column_t *c = &f->frame.columns[f->frame.ncols];
    memset(c, 0, sizeof *c);
    c->name = (char *)name; /* static names: the frame never frees them */
    c->type = FM_COLUMN_NUMERIC;
    c->values = malloc((f->frame.nrows ? f->frame.nrows : 1) * sizeof *c->values);
    if (!c->values) return NULL;
    f->frame.ncols++;
    return c->values;
}

/* The sample standard deviation of x[0..n), n >= 2. */
static double sample_sd(const double *x, size_t n) {
    double mean, sd;
    fm_mean_sd(x, n, &mean, &sd);
    return sd;
}

/* Builds the feature frame of one ticker; r[t] (t >= 1) is the return of day t. */
static int build_features(const fm_invest_prices_t *p, size_t asset, const double *r,
                          const fm_invest_options_t *o, features_t *f, fm_error_t *err) {
    size_t nd = p->ndates, n = nd - FIRST_DAY;
    const double *vol = p->has_volume[asset] ? p->volume + asset * nd : NULL;
    memset(f, 0, sizeof *f);
    f->frame.source = p->tickers[asset];
    f->frame.nrows = n;
    f->frame.columns = calloc(MAX_COLS, sizeof *f->frame.columns);
    if (!f->frame.columns) return fm_error_set(err, FM_ENOMEM, "out of memory");
    double *lag[5], *v5, *v20, *vc = NULL, *leak = NULL, *up, *ab;
    int ok = 1;
    for (int k = 0; k < 5; k++)
        ok &= (lag[k] = add_column(f, lag_names[k])) != NULL;
    ok &= (v5 = add_column(f, "volatility_5")) != NULL;
    ok &= (v20 = add_column(f, "volatility_20")) != NULL;
    if (ok && vol) ok &= (vc = add_column(f, "volume_change")) != NULL;
    if (ok && o->leak_future) ok &= (leak = add_column(f, "leak_next_return")) != NULL;
    f->up_col = (int)f->frame.ncols;
    if (ok) ok &= (up = add_column(f, "up_next")) != NULL;
    f->abs_col = (int)f->frame.ncols;
    if (ok) ok &= (ab = add_column(f, "abs_next")) != NULL;
    if (!ok) return fm_error_set(err, FM_ENOMEM, "out of memory for %zu feature rows", n);
    for (size_t i = 0; i < n; i++) {
        size_t t = i + FIRST_DAY;
        for (int k = 0; k < 5; k++)
            lag[k][i] = r[t - (size_t)k];
        v5[i] = sample_sd(r + t - 4, 5);
        v20[i] = sample_sd(r + t - 19, 20);
        if (vc) vc[i] = vol[t] > 0 && vol[t - 1] > 0 ? log(vol[t] / vol[t - 1]) : NAN;
        double next = t + 1 < nd ? r[t + 1] : NAN;
        if (leak) leak[i] = next;
        up[i] = isnan(next) ? NAN : (next > 0 ? 1.0 : 0.0);
        ab[i] = fabs(next);
    }
    return FM_OK;
}

/* A frame over rows [from, from + n) of f's frame, borrowing its columns' values. */
static int view(const features_t *f, size_t from, size_t n, fm_column_t *cols, fm_frame_t *out) {
    *out = f->frame;
    out->columns = cols;
    out->nrows = n;
    for (size_t c = 0; c < f->frame.ncols; c++) {
        cols[c] = f->frame.columns[c];
        cols[c].values += from;
        cols[c].missing = 0;
        for (size_t i = 0; i < n; i++)
            cols[c].missing += isnan(cols[c].values[i]);
    }
    return FM_OK;
}

static int fit(const fm_frame_t *train, const fm_invest_options_t *o, int direction,
               fm_model_t **out, fm_error_t *err) {
    fm_train_options_t t;
    fm_train_options_defaults(&t);
    static const char *const drop_for_direction[] = {"abs_next"};
    static const char *const drop_for_volatility[] = {"up_next"};
    int gbt = !strcmp(o->model, "gbt");
    t.target = direction ? "up_next" : "abs_next";
    t.task = direction ? FM_TASK_BINARY : FM_TASK_REGRESSION;
    t.positive = direction ? "1" : NULL;
    t.family = gbt ? "gbt" : (direction ? "logistic" : "linear");
    t.drop = direction ? drop_for_direction : drop_for_volatility;
    t.ndrop = 1;
    t.seed = o->seed;
    t.threads = 1;
    t.progress = NULL;
    /* A tenfold Adam step: linear models of a few features converge within the epochs. */
    t.optimizer.lr = 0.01;
    t.epochs = 100;
    t.gbt.rounds = 100;
    t.gbt.max_depth = 3;
    t.gbt.early_stopping = 20;
    return fm_train(train, &t, out, err);
}

void fm_invest_forecast_deinit(fm_invest_forecast_t *f) {
    if (!f) return;
    free(f->day);
    free(f->p_up);
    free(f->vol);
    free(f->up);
    free(f->abs_ret);
    free(f->majority);
    free(f->last_direction);
    free(f->mean_abs);
    free(f->last_abs);
    memset(f, 0, sizeof *f);
}

static int alloc_outputs(fm_invest_forecast_t *f, size_t n) {
    size_t k = n ? n : 1;
    f->day = malloc(k * sizeof *f->day);
    f->up = malloc(k * sizeof *f->up);
    double **d[] = {&f->p_up,           &f->vol,      &f->abs_ret, &f->majority,
                    &f->last_direction, &f->mean_abs, &f->last_abs};
    int ok = f->day && f->up;
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        ok &= (*d[i] = malloc(k * sizeof **d[i])) != NULL;
    f->n = n;
    return ok ? FM_OK : FM_ENOMEM;
}

int fm_invest_forecast_run(const fm_invest_prices_t *p, size_t asset, const fm_invest_options_t *o,
                           fm_invest_forecast_t *out, fm_error_t *err) {
    memset(out, 0, sizeof *out);
    size_t nd = p->ndates;
    const char *ticker = p->tickers[asset];
    if (nd < FIRST_DAY + o->min_train + 2)
        return fm_error_set(err, FM_EDATA,
                            "ticker '%s': %zu dates; forecasting needs %zu (%d for the features, "
                            "min_train %zu, one prediction)",
                            ticker, nd, FIRST_DAY + o->min_train + 2, FIRST_DAY, o->min_train);
    const double *price = p->close + asset * nd;
    double *r = malloc(nd * sizeof *r);
    if (!r) return fm_error_set(err, FM_ENOMEM, "out of memory");
    r[0] = NAN;
    for (size_t t = 1; t < nd; t++)
        r[t] = price[t] / price[t - 1] - 1;
    features_t f;
    fm_column_t cols[MAX_COLS];
    int rc = build_features(p, asset, r, o, &f, err);
    size_t nrows = f.frame.nrows, i0 = o->min_train, npred = nrows - 1 - i0;
    double *pred = malloc(2 * (size_t)o->retrain_every * sizeof *pred);
    if (!rc && (!pred || alloc_outputs(out, npred)))
        rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_model_t *dir_model = NULL, *vol_model = NULL;
    const double *up = f.frame.columns ? f.frame.columns[f.up_col].values : NULL;
    const double *ab = f.frame.columns ? f.frame.columns[f.abs_col].values : NULL;
    double ups = 0, abs_sum = 0;
    for (size_t i = 0; !rc && i < i0; i++)
        ups += up[i], abs_sum += ab[i];
    for (size_t i = i0; !rc && i < nrows; i += (size_t)o->retrain_every) {
        fm_frame_t train, ahead;
        view(&f, 0, i, cols, &train);
        fm_model_free(dir_model);
        fm_model_free(vol_model);
        dir_model = vol_model = NULL;
        rc = fit(&train, o, 1, &dir_model, err);
        if (!rc) rc = fit(&train, o, 0, &vol_model, err);
        if (rc) {
            fm_error_prefix(err, "ticker '%s': training on the %zu days before %s: ", ticker, i,
                            p->dates[i + FIRST_DAY]);
            break;
        }
        out->retrains++;
        size_t m = nrows - i < (size_t)o->retrain_every ? nrows - i : (size_t)o->retrain_every;
        view(&f, i, m, cols, &ahead);
        rc = fm_model_predict_frame(dir_model, &ahead, pred, err);
        if (!rc) rc = fm_model_predict_frame(vol_model, &ahead, pred + m, err);
        for (size_t k = 0; !rc && k < m; k++) {
            size_t row = i + k, t = row + FIRST_DAY;
            if (row == nrows - 1) {
                out->next_p_up = pred[k];
                out->next_vol = pred[m + k];
                break;
            }
            size_t j = row - i0;
            out->day[j] = t + 1;
            out->p_up[j] = pred[k];
            out->vol[j] = pred[m + k];
            out->up[j] = up[row] > 0.5;
            out->abs_ret[j] = ab[row];
            /* Baselines from the outcomes known at t: rows before this one. */
            out->majority[j] = 2 * ups >= (double)row ? 1.0 : 0.0;
            out->last_direction[j] = r[t] > 0 ? 1.0 : 0.0;
            out->mean_abs[j] = abs_sum / (double)row;
            out->last_abs[j] = fabs(r[t]);
            ups += up[row];
            abs_sum += ab[row];
        }
    }
    fm_model_free(dir_model);
    fm_model_free(vol_model);
    features_free(&f);
    free(pred);
    free(r);
    if (rc) fm_invest_forecast_deinit(out);
    return rc;
}
