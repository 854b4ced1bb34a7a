/*
 * Price series for the investment analysis: a builder that collects (ticker, date, close, volume)
 * observations from CSV files in the long, per-ticker and wide layouts or from a JSON request, and
 * aligns them on the dates every ticker has (invest.h describes the layouts and the rules). Dates
 * and tickers are interned once (core/strdict.h), so alignment is one pass of integer lookups.
 */
#include "invest/invest.h"

#include "core/strdict.h"
#include "data/data.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_OBSERVATIONS 10000000u

typedef struct series {
    size_t n, cap;
    int32_t *date; /* ids in the builder's date dictionary */
    double *close;
    double *volume; /* NaN: none */
} series_t;

struct fm_invest_builder {
    fm_strdict_t tickers;
    fm_strdict_t dates;
    series_t series[FM_INVEST_MAX_ASSETS];
    size_t total, max_total;
};

int fm_invest_builder_new(size_t max_observations, fm_invest_builder_t **out, fm_error_t *err) {
    fm_invest_builder_t *b = calloc(1, sizeof *b);
    if (!b) return fm_error_set(err, FM_ENOMEM, "out of memory");
    b->max_total = max_observations ? max_observations : DEFAULT_MAX_OBSERVATIONS;
    *out = b;
    return FM_OK;
}

void fm_invest_builder_free(fm_invest_builder_t *b) {
    if (!b) return;
    for (size_t a = 0; a < FM_INVEST_MAX_ASSETS; a++) {
        free(b->series[a].date);
        free(b->series[a].close);
        free(b->series[a].volume);
    }
    fm_strdict_free(&b->tickers);
    fm_strdict_free(&b->dates);
    free(b);
}

static int grow(series_t *s) {
    size_t cap = s->cap ? 2 * s->cap : 256;
    int32_t *d = realloc(s->date, cap * sizeof *d);
    if (!d) return FM_ENOMEM;
    s->date = d;
    double *c = realloc(s->close, cap * sizeof *c);
    if (!c) return FM_ENOMEM;
    s->close = c;
    double *v = realloc(s->volume, cap * sizeof *v);
    if (!v) return FM_ENOMEM;
    s->volume = v;
    s->cap = cap;
    return FM_OK;
}

int fm_invest_builder_add(fm_invest_builder_t *b, const char *ticker, const char *date,
                          double close, double volume, fm_error_t *err) {
    size_t tlen = strlen(ticker), dlen = strlen(date);
    if (tlen == 0 || tlen >= FM_INVEST_MAX_TICKER)
        return fm_error_set(err, FM_EINVAL, "ticker '%.40s' must be 1 to %d bytes", ticker,
                            FM_INVEST_MAX_TICKER - 1);
    if (dlen == 0 || dlen >= FM_INVEST_MAX_DATE)
        return fm_error_set(err, FM_EINVAL, "ticker '%s': date '%.40s' must be 1 to %d bytes",
                            ticker, date, FM_INVEST_MAX_DATE - 1);
    if (!isfinite(close) || close <= 0)
        return fm_error_set(err, FM_EDATA, "ticker '%s' date '%s': close %g must be positive",
                            ticker, date, close);
    if (!isnan(volume) && (!isfinite(volume) || volume < 0))
        return fm_error_set(err, FM_EDATA, "ticker '%s' date '%s': volume %g must be a number >= 0",
                            ticker, date, volume);
    if (b->total >= b->max_total)
        return fm_error_set(err, FM_ELIMIT, "more than %zu price observations", b->max_total);
    int32_t id = fm_strdict_find(&b->tickers, ticker, tlen);
    if (id < 0) {
        if (b->tickers.count >= FM_INVEST_MAX_ASSETS)
            return fm_error_set(err, FM_ELIMIT, "more than %d tickers (at '%s')",
                                FM_INVEST_MAX_ASSETS, ticker);
        id = fm_strdict_intern(&b->tickers, ticker, tlen);
        if (id < 0) return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    int32_t did = fm_strdict_intern(&b->dates, date, dlen);
    if (did < 0) return fm_error_set(err, FM_ENOMEM, "out of memory");
    series_t *s = &b->series[id];
    if (s->n == s->cap && grow(s)) return fm_error_set(err, FM_ENOMEM, "out of memory");
    s->date[s->n] = did;
    s->close[s->n] = close;
    s->volume[s->n] = volume;
    s->n++;
    b->total++;
    return FM_OK;
}

/* ---- CSV layouts --------------------------------------------------------------------------- */

static int find_column(char *const *fields, size_t n, const char *const *names) {
    for (size_t k = 0; names[k]; k++)
        for (size_t c = 0; c < n; c++)
            if (!strcasecmp(fields[c], names[k])) return (int)c;
    return -1;
}

/* The ticker of a per-ticker file: its base name up to the first '_' or '.'. */
static void ticker_from_path(const char *path, char *out, size_t size) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strcspn(base, "_.");
    if (n == 0) n = strlen(base);
    if (n >= size) n = size - 1;
    memcpy(out, base, n);
    out[n] = '\0';
}

/* Parses a cell as a number: 0 with *out (NaN when missing), or an error naming the place. */
static int cell_number(fm_csv_t *csv, const char *column, const char *text, size_t len, double *out,
                       fm_error_t *err) {
    if (fm_value_is_missing(text, len)) {
        *out = NAN;
        return FM_OK;
    }
    if (fm_value_parse_number(text, len, out) != 0)
        return fm_error_set(err, FM_EPARSE, "%s line %zu column '%s': '%.40s' is not a number",
                            fm_csv_name(csv), fm_csv_line(csv), column, text);
    return FM_OK;
}

typedef struct layout {
    int date, ticker, close, volume; /* column indices, -1 when absent */
    char file_ticker[FM_INVEST_MAX_TICKER];
    size_t ncols;
    char **names; /* header copy */
} layout_t;

static void layout_free(layout_t *l) {
    for (size_t c = 0; l->names && c < l->ncols; c++)
        free(l->names[c]);
    free(l->names);
}

static int read_header(fm_csv_t *csv, const char *path, const char *price_column, layout_t *l,
                       fm_error_t *err) {
    char *const *fields;
    const size_t *lens;
    size_t n;
    int got = fm_csv_next(csv, &fields, &lens, &n, err);
    if (got < 0) return got;
    if (got == 0) return fm_error_set(err, FM_EDATA, "%s is empty", path);
    l->ncols = n;
    l->names = calloc(n, sizeof *l->names);
    if (!l->names) return fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t c = 0; c < n; c++) {
        l->names[c] = strdup(fields[c]);
        if (!l->names[c]) return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    static const char *const date_names[] = {"date", "datetime", "timestamp", "time",
                                             "t",    "day",      NULL};
    static const char *const ticker_names[] = {"name", "ticker", "symbol", NULL};
    static const char *const close_names[] = {"close", "adj close", "price", NULL};
    static const char *const volume_names[] = {"volume", NULL};
    const char *const given[] = {price_column, NULL};
    l->date = find_column(l->names, n, date_names);
    l->ticker = find_column(l->names, n, ticker_names);
    l->close = find_column(l->names, n, price_column ? given : close_names);
    l->volume = find_column(l->names, n, volume_names);
    if (price_column && l->close < 0)
        return fm_error_set(err, FM_EDATA, "%s has no column '%.60s'", path, price_column);
    if (l->close >= 0 && l->ticker < 0)
        ticker_from_path(path, l->file_ticker, FM_INVEST_MAX_TICKER);
    if (l->close < 0 && n - (l->date >= 0) == 0)
        return fm_error_set(err, FM_EDATA, "%s has no price columns", path);
    return FM_OK;
}

int fm_invest_builder_read_csv(fm_invest_builder_t *b, const char *path, const char *price_column,
                               fm_error_t *err) {
    fm_csv_t *csv = NULL;
    layout_t l = {0};
    int rc = fm_csv_open(path, &csv, err);
    if (!rc) rc = read_header(csv, path, price_column, &l, err);
    size_t row = 0;
    while (!rc) {
        char *const *fields;
        const size_t *lens;
        size_t n;
        int got = fm_csv_next(csv, &fields, &lens, &n, err);
        if (got <= 0) {
            rc = got;
            break;
        }
        row++;
        if (n != l.ncols) {
            rc = fm_error_set(err, FM_EPARSE, "%s line %zu: %zu fields, the header has %zu", path,
                              fm_csv_line(csv), n, l.ncols);
            break;
        }
        char rowname[32];
        snprintf(rowname, sizeof rowname, "%zu", row);
        const char *date = l.date >= 0 ? fields[l.date] : rowname;
        if (l.date >= 0 && lens[l.date] == 0) {
            rc = fm_error_set(err, FM_EDATA, "%s line %zu: empty date", path, fm_csv_line(csv));
            break;
        }
        if (l.close >= 0) {
            double close, volume = NAN;
            rc = cell_number(csv, l.names[l.close], fields[l.close], lens[l.close], &close, err);
            if (!rc && l.volume >= 0)
                rc = cell_number(csv, l.names[l.volume], fields[l.volume], lens[l.volume], &volume,
                                 err);
            if (rc || isnan(close)) continue;
            const char *ticker = l.ticker >= 0 ? fields[l.ticker] : l.file_ticker;
            rc = fm_invest_builder_add(b, ticker, date, close, volume, err);
        } else {
            for (size_t c = 0; !rc && c < n; c++) {
                if ((int)c == l.date) continue;
                double close;
                rc = cell_number(csv, l.names[c], fields[c], lens[c], &close, err);
                if (!rc && !isnan(close))
                    rc = fm_invest_builder_add(b, l.names[c], date, close, NAN, err);
            }
        }
        if (rc && err && !strstr(err->msg, path))
            fm_error_prefix(err, "%s line %zu: ", path, fm_csv_line(csv));
    }
    if (!rc && row == 0) rc = fm_error_set(err, FM_EDATA, "%s has no data rows", path);
    layout_free(&l);
    fm_csv_close(csv);
    return rc;
}

/* ---- Alignment ----------------------------------------------------------------------------- */

/* The sort key of a date: ISO dates (kind 1) as YYYYMMDD + time of day, numbers (kind 2) as
 * themselves; kind 0 when the text is neither. */
static int date_key(const char *s, double *key) {
    int y, m, d, used = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &used) == 3 && used == 10 && m >= 1 && m <= 12 &&
        d >= 1 && d <= 31) {
        int hh = 0, mm = 0, ss = 0;
        if (s[10]) sscanf(s + 11, "%2d:%2d:%2d", &hh, &mm, &ss);
        *key = (double)(y * 10000 + m * 100 + d) + (hh * 3600 + mm * 60 + ss) / 86400.0;
        return 1;
    }
    if (fm_value_parse_number(s, strlen(s), key) == 0) return 2;
    return 0;
}

typedef struct keyed {
    double key;
    size_t order;
    int32_t id;
} keyed_t;

static int keyed_cmp(const void *pa, const void *pb) {
    const keyed_t *a = pa, *b = pb;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

void fm_invest_prices_free(fm_invest_prices_t *p) {
    if (!p) return;
    for (size_t a = 0; p->tickers && a < p->nassets; a++)
        free(p->tickers[a]);
    for (size_t t = 0; p->dates && t < p->ndates; t++)
        free(p->dates[t]);
    free(p->tickers);
    free(p->dates);
    free(p->close);
    free(p->volume);
    free(p->has_volume);
    free(p);
}

int fm_invest_prices_find(const fm_invest_prices_t *p, const char *ticker) {
    for (size_t a = 0; a < p->nassets; a++)
        if (!strcmp(p->tickers[a], ticker)) return (int)a;
    return -1;
}

/* Fills out's arrays for the chosen dates (ids in time order). */
static int fill_prices(const fm_invest_builder_t *b, int32_t *const *pos, const keyed_t *chosen,
                       size_t nd, fm_invest_prices_t *out, fm_error_t *err) {
    size_t na = b->tickers.count;
    out->nassets = na;
    out->ndates = nd;
    out->tickers = calloc(na, sizeof *out->tickers);
    out->dates = calloc(nd, sizeof *out->dates);
    out->close = malloc(na * nd * sizeof *out->close);
    out->has_volume = calloc(na, sizeof *out->has_volume);
    if (!out->tickers || !out->dates || !out->close || !out->has_volume)
        return fm_error_set(err, FM_ENOMEM, "out of memory for %zu x %zu prices", na, nd);
    int any_volume = 0;
    for (size_t a = 0; a < na; a++) {
        out->tickers[a] = strdup(fm_strdict_get(&b->tickers, (int32_t)a));
        if (!out->tickers[a]) return fm_error_set(err, FM_ENOMEM, "out of memory");
        const series_t *s = &b->series[a];
        for (size_t t = 0; t < nd; t++) {
            size_t i = (size_t)pos[a][chosen[t].id];
            out->close[a * nd + t] = s->close[i];
            if (!isnan(s->volume[i])) out->has_volume[a] = any_volume = 1;
        }
    }
    for (size_t t = 0; t < nd; t++) {
        out->dates[t] = strdup(fm_strdict_get(&b->dates, chosen[t].id));
        if (!out->dates[t]) return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (any_volume) {
        out->volume = malloc(na * nd * sizeof *out->volume);
        if (!out->volume) return fm_error_set(err, FM_ENOMEM, "out of memory");
        for (size_t a = 0; a < na; a++)
            for (size_t t = 0; t < nd; t++)
                out->volume[a * nd + t] = b->series[a].volume[pos[a][chosen[t].id]];
    }
    return FM_OK;
}

int fm_invest_builder_finish(fm_invest_builder_t *b, fm_invest_prices_t **out, fm_error_t *err) {
    *out = NULL;
    size_t na = b->tickers.count, ndict = b->dates.count;
    if (na == 0) return fm_error_set(err, FM_EDATA, "no prices were given");
    int32_t *pos[FM_INVEST_MAX_ASSETS] = {0};
    uint32_t *count = calloc(ndict, sizeof *count);
    keyed_t *chosen = NULL;
    fm_invest_prices_t *p = NULL;
    int rc = count ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t a = 0; !rc && a < na; a++) {
        pos[a] = malloc(ndict * sizeof *pos[a]);
        if (!pos[a]) {
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
            break;
        }
        memset(pos[a], 0xff, ndict * sizeof *pos[a]);
        const series_t *s = &b->series[a];
        for (size_t i = 0; i < s->n; i++) {
            if (pos[a][s->date[i]] >= 0) {
                rc = fm_error_set(err, FM_EDATA, "ticker '%s': date '%s' appears twice",
                                  fm_strdict_get(&b->tickers, (int32_t)a),
                                  fm_strdict_get(&b->dates, s->date[i]));
                break;
            }
            pos[a][s->date[i]] = (int32_t)i;
            count[s->date[i]]++;
        }
    }
    size_t nd = 0;
    if (!rc) {
        chosen = malloc((b->series[0].n ? b->series[0].n : 1) * sizeof *chosen);
        if (!chosen) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    int kind = -1;
    for (size_t i = 0; !rc && i < b->series[0].n; i++) {
        int32_t id = b->series[0].date[i];
        if (count[id] != na) continue;
        double key = 0;
        int k = date_key(fm_strdict_get(&b->dates, id), &key);
        kind = kind < 0 ? k : (kind == k ? kind : 0);
        chosen[nd++] = (keyed_t){key, i, id};
    }
    if (!rc && nd < 3)
        rc = fm_error_set(err, FM_EDATA,
                          "the %zu ticker(s) share only %zu date(s) with a price; 3 or more are "
                          "needed (first ticker '%s')",
                          na, nd, fm_strdict_get(&b->tickers, 0));
    if (!rc && kind > 0) qsort(chosen, nd, sizeof *chosen, keyed_cmp);
    if (!rc) {
        p = calloc(1, sizeof *p);
        if (!p) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (!rc) rc = fill_prices(b, pos, chosen, nd, p, err);
    for (size_t a = 0; a < na; a++)
        free(pos[a]);
    free(count);
    free(chosen);
    if (rc) {
        fm_invest_prices_free(p);
        return rc;
    }
    *out = p;
    return FM_OK;
}

/* ---- JSON bodies --------------------------------------------------------------------------- */

/* A date given as a string or a number, as text in buf. */
static int json_date(const cJSON *item, char *buf, size_t size, const char *where, size_t k,
                     fm_error_t *err) {
    if (cJSON_IsString(item)) {
        snprintf(buf, size, "%s", item->valuestring);
        return FM_OK;
    }
    if (cJSON_IsNumber(item) && isfinite(item->valuedouble)) {
        snprintf(buf, size, "%.17g", item->valuedouble);
        return FM_OK;
    }
    return fm_error_set(err, FM_EINVAL, "%s[%zu]: a date must be a string or a number", where, k);
}

static int json_price(const cJSON *item, double *out, int optional, const char *where, size_t k,
                      fm_error_t *err) {
    if (optional && (!item || cJSON_IsNull(item))) {
        *out = NAN;
        return FM_OK;
    }
    if (!cJSON_IsNumber(item))
        return fm_error_set(err, FM_EINVAL, "%s[%zu] must be a number", where, k);
    *out = item->valuedouble;
    return FM_OK;
}

static int series_from_json(fm_invest_builder_t *b, const cJSON *series, fm_error_t *err) {
    if (!cJSON_IsObject(series) || !series->child)
        return fm_error_set(err, FM_EINVAL, "'series' must be a non-empty object of tickers");
    const cJSON *s;
    cJSON_ArrayForEach(s, series) {
        const char *name = s->string;
        if (!cJSON_IsObject(s))
            return fm_error_set(err, FM_EINVAL, "series '%.40s' must be an object", name);
        const cJSON *close = cJSON_GetObjectItemCaseSensitive(s, "close");
        const cJSON *dates = cJSON_GetObjectItemCaseSensitive(s, "dates");
        const cJSON *volume = cJSON_GetObjectItemCaseSensitive(s, "volume");
        if (!cJSON_IsArray(close))
            return fm_error_set(err, FM_EINVAL, "series '%.40s': 'close' must be an array", name);
        int n = cJSON_GetArraySize(close);
        if ((dates && (!cJSON_IsArray(dates) || cJSON_GetArraySize(dates) != n)) ||
            (volume && (!cJSON_IsArray(volume) || cJSON_GetArraySize(volume) != n)))
            return fm_error_set(err, FM_EINVAL,
                                "series '%.40s': 'dates' and 'volume' must be arrays as long as "
                                "'close' (%d)",
                                name, n);
        const cJSON *c = close->child, *d = dates ? dates->child : NULL;
        const cJSON *v = volume ? volume->child : NULL;
        for (size_t k = 0; c; k++, c = c->next) {
            char date[FM_INVEST_MAX_DATE + 8];
            double x = NAN, vol = NAN;
            int rc = d ? json_date(d, date, sizeof date, "dates", k, err)
                       : (snprintf(date, sizeof date, "%zu", k + 1), FM_OK);
            if (!rc) rc = json_price(c, &x, 0, "close", k, err);
            if (!rc && v) rc = json_price(v, &vol, 1, "volume", k, err);
            if (!rc) rc = fm_invest_builder_add(b, name, date, x, vol, err);
            if (rc) return fm_error_prefix(err, "series '%.40s': ", name);
            if (d) d = d->next;
            if (v) v = v->next;
        }
    }
    return FM_OK;
}

static int rows_from_json(fm_invest_builder_t *b, const cJSON *prices, fm_error_t *err) {
    if (!cJSON_IsArray(prices) || !prices->child)
        return fm_error_set(err, FM_EINVAL, "'prices' must be a non-empty array of objects");
    const cJSON *row;
    size_t k = 0;
    cJSON_ArrayForEach(row, prices) {
        if (!cJSON_IsObject(row))
            return fm_error_set(err, FM_EINVAL, "prices[%zu] must be an object", k);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(row, "ticker");
        if (t && !cJSON_IsString(t))
            return fm_error_set(err, FM_EINVAL, "prices[%zu].ticker must be a string", k);
        char date[FM_INVEST_MAX_DATE + 8];
        double x = NAN, vol = NAN;
        int rc = json_date(cJSON_GetObjectItemCaseSensitive(row, "date"), date, sizeof date,
                           "prices", k, err);
        if (!rc)
            rc = json_price(cJSON_GetObjectItemCaseSensitive(row, "close"), &x, 0, "close", k, err);
        if (!rc)
            rc = json_price(cJSON_GetObjectItemCaseSensitive(row, "volume"), &vol, 1, "volume", k,
                            err);
        if (!rc) rc = fm_invest_builder_add(b, t ? t->valuestring : "asset", date, x, vol, err);
        if (rc) return fm_error_prefix(err, "prices[%zu]: ", k);
        k++;
    }
    return FM_OK;
}

int fm_invest_prices_from_json(const cJSON *body, size_t max_observations, fm_invest_prices_t **out,
                               fm_error_t *err) {
    *out = NULL;
    if (!cJSON_IsObject(body)) return fm_error_set(err, FM_EINVAL, "the body must be an object");
    const cJSON *series = cJSON_GetObjectItemCaseSensitive(body, "series");
    const cJSON *prices = cJSON_GetObjectItemCaseSensitive(body, "prices");
    if (!series == !prices)
        return fm_error_set(err, FM_EINVAL, "give exactly one of 'series' and 'prices'");
    fm_invest_builder_t *b = NULL;
    int rc = fm_invest_builder_new(max_observations, &b, err);
    if (!rc) rc = series ? series_from_json(b, series, err) : rows_from_json(b, prices, err);
    if (!rc) rc = fm_invest_builder_finish(b, out, err);
    fm_invest_builder_free(b);
    return rc;
}
