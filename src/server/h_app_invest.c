/*
 * Investment analysis over HTTP (invest/invest.h):
 *   POST /api/apps/invest/analyze
 *        {"series": {"AAPL": {"dates": [...], "close": [...], "volume": [...]}, ...}
 *         | "prices": [{"date": D, "ticker": T, "close": X, "volume": V}, ...],
 *         "index", "risk_free", "levels", "periods_per_year", "mc_samples", "seed",
 *         "forecast", "retrain_every", "min_train", "model", "portfolio", "bounds", "frontier"}
 *     answers the JSON object `finmaas invest` prints for the same prices and settings.
 *
 * Limits, because the work runs on the HTTP thread that received the request: at most
 * MAX_OBSERVATIONS prices (besides the server's body limit), at most MAX_MC Monte Carlo draws
 * per ticker, and forecasting (which trains two models per retrain per ticker) only for at most
 * FORECAST_MAX_ASSETS tickers over at most FORECAST_MAX_DATES dates, with one thread; larger
 * backtests belong to the command line. A request beyond a limit is refused with 400 naming it.
 * A portfolio of many tickers costs seconds too (64, the most, about 4 s with a 20-point frontier).
 * The audit entry's detail records the number of tickers and dates and which parts ran; the
 * reply, when large, is recorded by its digest as every large reply is.
 */
#include "server/internal.h"

#include "core/json.h"
#include "invest/invest.h"

#include <stdio.h>
#include <stdlib.h>

#define MAX_OBSERVATIONS    250000
#define MAX_MC              200000
#define FORECAST_MAX_ASSETS 8
#define FORECAST_MAX_DATES  5000

int fm_h_app_invest_analyze(fm_request_t *req, fm_error_t *err) {
    cJSON *body = NULL;
    fm_invest_prices_t *p = NULL;
    cJSON *result = NULL;
    fm_invest_options_t o;
    fm_invest_options_defaults(&o);
    int rc = fm_json_parse(req->body.data, req->body.len, "request body", &body, err);
    if (!rc) rc = fm_invest_options_from_json(body, &o, err);
    if (!rc && o.mc_samples > MAX_MC)
        rc = fm_error_set(err, FM_EINVAL, "'mc_samples' %zu: at most %d over HTTP", o.mc_samples,
                          MAX_MC);
    if (!rc) rc = fm_invest_prices_from_json(body, MAX_OBSERVATIONS, &p, err);
    if (!rc && o.forecast && (p->nassets > FORECAST_MAX_ASSETS || p->ndates > FORECAST_MAX_DATES))
        rc = fm_error_set(err, FM_EINVAL,
                          "forecasting over HTTP is limited to %d tickers and %d dates (got %zu "
                          "and %zu); run finmaas invest --forecast for more",
                          FORECAST_MAX_ASSETS, FORECAST_MAX_DATES, p->nassets, p->ndates);
    if (!rc) rc = fm_invest_analyze(p, &o, &result, err);
    if (!rc)
        snprintf(req->audit_detail, sizeof req->audit_detail,
                 "assets=%zu dates=%zu forecast=%d portfolio=%d", p->nassets, p->ndates, o.forecast,
                 o.portfolio);
    fm_invest_prices_free(p);
    cJSON_Delete(body);
    if (rc) return rc;
    char *text = cJSON_PrintUnformatted(result);
    cJSON_Delete(result);
    if (!text) return fm_error_set(err, FM_ENOMEM, "out of memory");
    rc = fm_buf_puts(&req->reply, text);
    free(text);
    if (rc) return fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_reply_json(req, 200);
    return FM_OK;
}
