/*
 * Portfolios of exposures: reading them from CSV records (a file or a request body) or from a
 * JSON array of objects, with the column names and defaults of an fm_risk_input_t, and checking
 * every value's range (PD and LGD in [0, 1], EAD >= 0, maturity > 0, rho in [0, 1)). Errors name
 * the source, line (or item) and column, and quote at most the first 40 bytes of a bad value.
 */
#include "risk/risk.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { F_ID, F_SEGMENT, F_PD, F_LGD, F_EAD, F_MATURITY, F_CLASS, F_RHO, NFIELDS };

void fm_risk_input_defaults(fm_risk_input_t *in) {
    memset(in, 0, sizeof *in);
    in->id = "id";
    in->segment = "segment";
    in->pd = "pd";
    in->lgd = "lgd";
    in->ead = "ead";
    in->maturity = "maturity";
    in->asset_class = "asset_class";
    in->rho = "rho";
    in->pd_default = NAN;
    in->lgd_default = 0.45;
    in->ead_default = NAN;
    in->maturity_default = 2.5;
    in->class_default = FM_RISK_CORPORATE;
}

static const char *field_name(const fm_risk_input_t *in, int f) {
    const char *names[NFIELDS] = {in->id,  in->segment,  in->pd,          in->lgd,
                                  in->ead, in->maturity, in->asset_class, in->rho};
    return names[f];
}

static int portfolio_new(fm_risk_portfolio_t **out, fm_error_t *err) {
    fm_risk_portfolio_t *p = calloc(1, sizeof *p);
    if (!p) return fm_error_set(err, FM_ENOMEM, "out of memory");
    p->segments = (fm_strdict_t)FM_STRDICT_INIT;
    *out = p;
    return FM_OK;
}

void fm_risk_portfolio_free(fm_risk_portfolio_t *p) {
    if (!p) return;
    free(p->exposures);
    fm_strdict_free(&p->segments);
    free(p);
}

/* A new exposure at the end of p (zeroed) in *out; FM_ELIMIT past in->max_exposures. */
static int append(fm_risk_portfolio_t *p, const fm_risk_input_t *in, fm_risk_exposure_t **out,
                  fm_error_t *err) {
    if (in->max_exposures && p->n >= in->max_exposures)
        return fm_error_set(err, FM_ELIMIT, "the portfolio has more than %zu exposures",
                            in->max_exposures);
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 256;
        fm_risk_exposure_t *e = realloc(p->exposures, cap * sizeof *e);
        if (!e) return fm_error_set(err, FM_ENOMEM, "out of memory");
        p->exposures = e;
        p->cap = cap;
    }
    *out = &p->exposures[p->n++];
    memset(*out, 0, sizeof **out);
    return FM_OK;
}

/* Starts an exposure with the defaults (NaN where a value is required). */
static void set_defaults(fm_risk_exposure_t *e, const fm_risk_input_t *in, size_t number) {
    snprintf(e->id, sizeof e->id, "%zu", number);
    e->segment = -1;
    e->asset_class = in->class_default;
    e->pd = in->pd_default;
    e->lgd = in->lgd_default;
    e->ead = in->ead_default;
    e->maturity = in->maturity_default;
    e->rho = NAN;
}

static int set_segment(fm_risk_portfolio_t *p, fm_risk_exposure_t *e, const char *s, size_t n,
                       fm_error_t *err) {
    int32_t id = fm_strdict_intern(&p->segments, s, n);
    if (id < 0) return fm_error_set(err, FM_ENOMEM, "out of memory");
    e->segment = id;
    return FM_OK;
}

/* Checks one value's range; a NaN is a required value that was not given. */
static int check_value(int f, double v, const char *where, const char *name, fm_error_t *err) {
    if (isnan(v))
        return fm_error_set(err, FM_EDATA,
                            "%s: no value for '%s' (required: give the column or "
                            "a default)",
                            where, name);
    int ok = 1;
    const char *range = "";
    switch (f) {
    case F_PD:
    case F_LGD:
        ok = v >= 0.0 && v <= 1.0, range = "in [0, 1]";
        break;
    case F_EAD:
        ok = v >= 0.0 && isfinite(v), range = ">= 0";
        break;
    case F_MATURITY:
        ok = v > 0.0 && v <= 100.0, range = "in (0, 100] years";
        break;
    case F_RHO:
        ok = v >= 0.0 && v < 1.0, range = "in [0, 1)";
        break;
    }
    if (!ok)
        return fm_error_set(err, FM_EDATA, "%s: '%s' = %.17g must be %s", where, name, v, range);
    return FM_OK;
}

/* Completes an exposure: the segment "all" when none was given, every value in range. */
static int finish_exposure(fm_risk_portfolio_t *p, fm_risk_exposure_t *e, const fm_risk_input_t *in,
                           const char *where, fm_error_t *err) {
    int rc = e->segment < 0 ? set_segment(p, e, "all", 3, err) : FM_OK;
    const double values[] = {e->pd, e->lgd, e->ead, e->maturity};
    const int fields[] = {F_PD, F_LGD, F_EAD, F_MATURITY};
    for (int k = 0; k < 4 && !rc; k++)
        rc = check_value(fields[k], values[k], where, field_name(in, fields[k]), err);
    if (!rc && !isnan(e->rho)) rc = check_value(F_RHO, e->rho, where, in->rho, err);
    return rc;
}

/* ---- CSV ----------------------------------------------------------------------------------- */

/* Sets field f of e from the cell text s (n bytes); empty and missing tokens keep the default. */
static int set_cell(fm_risk_portfolio_t *p, fm_risk_exposure_t *e, const fm_risk_input_t *in, int f,
                    const char *s, size_t n, const char *where, fm_error_t *err) {
    if (fm_value_is_missing(s, n)) return FM_OK;
    const char *name = field_name(in, f);
    if (f == F_ID || f == F_SEGMENT) {
        if (n >= FM_RISK_NAME_MAX)
            return fm_error_set(err, FM_EDATA, "%s: '%s' is longer than %d bytes", where, name,
                                FM_RISK_NAME_MAX - 1);
        if (f == F_SEGMENT) return set_segment(p, e, s, n, err);
        memcpy(e->id, s, n);
        e->id[n] = '\0';
        return FM_OK;
    }
    if (f == F_CLASS) {
        if (fm_risk_class_parse(s, &e->asset_class))
            return fm_error_set(err, FM_EDATA,
                                "%s: '%s' = '%.40s' is not corporate, retail_mortgage, "
                                "retail_revolving or retail_other",
                                where, name, s);
        return FM_OK;
    }
    double v;
    if (fm_value_parse_number(s, n, &v))
        return fm_error_set(err, FM_EDATA, "%s: '%s' = '%.40s' is not a finite number", where, name,
                            s);
    double *dst[NFIELDS] = {NULL, NULL, &e->pd, &e->lgd, &e->ead, &e->maturity, NULL, &e->rho};
    *dst[f] = v;
    return FM_OK;
}

int fm_risk_portfolio_read_csv(fm_csv_t *csv, const fm_risk_input_t *in, const double *pd,
                               size_t npd, fm_risk_portfolio_t **out, fm_error_t *err) {
    char *const *fields;
    const size_t *lens;
    size_t nfields, ncols = 0;
    int col[NFIELDS];
    *out = NULL;
    int rc = fm_csv_next(csv, &fields, &lens, &nfields, err);
    if (rc < 0) return rc;
    if (rc == 0) return fm_error_set(err, FM_EDATA, "%s is empty (no header)", fm_csv_name(csv));
    ncols = nfields;
    for (int f = 0; f < NFIELDS; f++) {
        col[f] = -1;
        for (size_t j = 0; j < nfields && col[f] < 0; j++)
            if (!strcmp(fields[j], field_name(in, f))) col[f] = (int)j;
    }
    if (pd) col[F_PD] = -1;
    fm_risk_portfolio_t *p = NULL;
    if ((rc = portfolio_new(&p, err))) return rc;
    char where[320];
    while ((rc = fm_csv_next(csv, &fields, &lens, &nfields, err)) == 1) {
        snprintf(where, sizeof where, "%.200s line %zu", fm_csv_name(csv), fm_csv_line(csv));
        if (nfields != ncols) {
            rc = fm_error_set(err, FM_EDATA, "%s: %zu fields where the header has %zu", where,
                              nfields, ncols);
            break;
        }
        fm_risk_exposure_t *e = NULL;
        if ((rc = append(p, in, &e, err))) break;
        set_defaults(e, in, p->n);
        if (pd) {
            if (p->n > npd) {
                rc = fm_error_set(err, FM_EINVAL, "%s: more rows than the %zu PDs given", where,
                                  npd);
                break;
            }
            e->pd = pd[p->n - 1];
        }
        for (int f = 0; f < NFIELDS && !rc; f++)
            if (col[f] >= 0) rc = set_cell(p, e, in, f, fields[col[f]], lens[col[f]], where, err);
        if (!rc) rc = finish_exposure(p, e, in, where, err);
        if (rc) break;
    }
    if (rc == 0 && p->n == 0)
        rc = fm_error_set(err, FM_EDATA, "%s has a header but no exposures", fm_csv_name(csv));
    if (rc == 0 && pd && p->n != npd)
        rc = fm_error_set(err, FM_EINVAL, "%s has %zu rows but %zu PDs were given",
                          fm_csv_name(csv), p->n, npd);
    if (rc < 0) {
        fm_risk_portfolio_free(p);
        return rc;
    }
    *out = p;
    return FM_OK;
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static int set_json(fm_risk_portfolio_t *p, fm_risk_exposure_t *e, const fm_risk_input_t *in, int f,
                    const cJSON *v, const char *where, fm_error_t *err) {
    const char *name = field_name(in, f);
    if (cJSON_IsNull(v)) return FM_OK;
    if (f == F_ID && cJSON_IsNumber(v)) {
        snprintf(e->id, sizeof e->id, "%.17g", v->valuedouble);
        return FM_OK;
    }
    if (f == F_ID || f == F_SEGMENT || f == F_CLASS) {
        if (!cJSON_IsString(v))
            return fm_error_set(err, FM_EDATA, "%s: '%s' must be a string", where, name);
        return set_cell(p, e, in, f, v->valuestring, strlen(v->valuestring), where, err);
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return fm_error_set(err, FM_EDATA, "%s: '%s' must be a finite number", where, name);
    double *dst[NFIELDS] = {NULL, NULL, &e->pd, &e->lgd, &e->ead, &e->maturity, NULL, &e->rho};
    *dst[f] = v->valuedouble;
    return FM_OK;
}

int fm_risk_portfolio_from_json(const cJSON *array, const fm_risk_input_t *in,
                                fm_risk_portfolio_t **out, fm_error_t *err) {
    *out = NULL;
    if (!cJSON_IsArray(array))
        return fm_error_set(err, FM_EDATA, "'exposures' must be an array of objects");
    fm_risk_portfolio_t *p = NULL;
    int rc = portfolio_new(&p, err);
    if (rc) return rc;
    char where[64];
    const cJSON *item;
    cJSON_ArrayForEach(item, array) {
        snprintf(where, sizeof where, "exposure %zu", p->n);
        if (!cJSON_IsObject(item)) {
            rc = fm_error_set(err, FM_EDATA, "%s must be an object", where);
            break;
        }
        fm_risk_exposure_t *e = NULL;
        if ((rc = append(p, in, &e, err))) break;
        set_defaults(e, in, p->n);
        for (int f = 0; f < NFIELDS && !rc; f++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, field_name(in, f));
            if (v) rc = set_json(p, e, in, f, v, where, err);
        }
        if (!rc) rc = finish_exposure(p, e, in, where, err);
        if (rc) break;
    }
    if (!rc && p->n == 0) rc = fm_error_set(err, FM_EDATA, "'exposures' is empty");
    if (rc) {
        fm_risk_portfolio_free(p);
        return rc;
    }
    *out = p;
    return FM_OK;
}
