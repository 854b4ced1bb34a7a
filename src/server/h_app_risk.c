/*
 * Portfolio credit risk over HTTP (risk/risk.h):
 *   POST /api/apps/risk/portfolio
 *        {"exposures": [{"id", "segment", "pd", "lgd", "ead", "maturity", "asset_class", "rho"},
 *                       ...]}
 *     or {"csv": "id,segment,pd,...\n..."} (the exposures as CSV text), with optional
 *        "scenarios" (0: no Monte Carlo; default 100000, at most 10^7), "seed", "threads" (1-4),
 *        "levels": [0.99, 0.999], "rho", "pd_floor", "per_exposure": true, the defaults "lgd",
 *        "ead", "maturity", "asset_class", "columns": {"pd": "PD", ...} (CSV column or JSON key
 *        names) and "model": NAME (with "csv", whose rows then hold the model's features: each
 *        PD is the binary model's P(positive), of its production version, else the newest)
 *     answers the JSON object `finmaas risk` prints for the same inputs and seed.
 *
 *     or the exposures as a text/csv body, with those options in the query string
 *        (?scenarios=100000&seed=7&levels=0.99,0.999&model=NAME&per_exposure=true ...).
 * The work is bounded (at most 100,000 exposures and 2 x 10^9 exposure-scenarios,
 * about 10 s on one core) and runs on the jobs' background thread while the connection is
 * suspended, as the governance requests do. A model's CSV is scored from an unlinked temporary
 * file (the frame reader reads files), which disappears with its descriptor.
 */
#include "server/internal.h"

#include "core/json.h"
#include "risk/risk.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_EXPOSURES          100000
#define MAX_SCENARIOS          10000000
#define MAX_EXPOSURE_SCENARIOS 2e9
#define MAX_THREADS            4

typedef struct risk_work {
    fm_deferred_t deferred; /* first: the background work's request and outcome */
    cJSON *body;            /* owns every string the settings borrow */
    fm_served_t *served;
    const cJSON *exposures; /* borrowed from body */
    const char *csv;        /* borrowed from body */
    fm_risk_input_t in;
    fm_risk_settings_t settings;
    fm_risk_mc_options_t mc;
    int per_exposure;
    cJSON *result;
} risk_work_t;

static void work_free(risk_work_t *w) {
    if (!w) return;
    if (w->served) fm_served_release(w->served);
    cJSON_Delete(w->body);
    cJSON_Delete(w->result);
    free(w);
}

/* body[key] as a number in [min, max] when present (*out unchanged when absent). */
static int opt_number(const cJSON *body, const char *key, double min, double max, double *out,
                      fm_error_t *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    if (!v) return FM_OK;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= min && v->valuedouble <= max))
        return fm_error_set(err, FM_EINVAL, "'%s' must be a number in [%.17g, %.17g]", key, min,
                            max);
    *out = v->valuedouble;
    return FM_OK;
}

/* An integer option: a number in [min, max] with no fraction. */
static int opt_integer(const cJSON *body, const char *key, double min, double max, double *out,
                       fm_error_t *err) {
    int rc = opt_number(body, key, min, max, out, err);
    if (!rc && *out != floor(*out))
        rc = fm_error_set(err, FM_EINVAL, "'%s' must be a whole number", key);
    return rc;
}

/* "columns": {"pd": "PD", ...}: the names of the CSV columns (JSON keys) of each field. */
static int read_columns(risk_work_t *w, const cJSON *columns, fm_error_t *err) {
    struct {
        const char *key;
        const char **field;
    } fields[] = {{"id", &w->in.id},
                  {"segment", &w->in.segment},
                  {"pd", &w->in.pd},
                  {"lgd", &w->in.lgd},
                  {"ead", &w->in.ead},
                  {"maturity", &w->in.maturity},
                  {"asset_class", &w->in.asset_class},
                  {"rho", &w->in.rho}};
    if (!cJSON_IsObject(columns))
        return fm_error_set(err, FM_EINVAL, "'columns' must be an object {\"pd\": \"name\", ...}");
    const cJSON *item;
    cJSON_ArrayForEach(item, columns) {
        size_t k = 0;
        while (k < 8 && strcmp(fields[k].key, item->string) != 0)
            k++;
        if (k == 8)
            return fm_error_set(err, FM_EINVAL,
                                "'columns' key '%.40s' is not id, segment, pd, lgd, ead, "
                                "maturity, asset_class or rho",
                                item->string);
        if (!cJSON_IsString(item) || !item->valuestring[0])
            return fm_error_set(err, FM_EINVAL, "'columns'.'%s' must be a column name",
                                item->string);
        *fields[k].field = item->valuestring;
    }
    return FM_OK;
}

static int read_levels(risk_work_t *w, const cJSON *levels, fm_error_t *err) {
    int n = cJSON_IsArray(levels) ? cJSON_GetArraySize(levels) : 0;
    if (n < 1 || n > FM_RISK_MAX_LEVELS)
        return fm_error_set(err, FM_EINVAL,
                            "'levels' must be an array of 1 to %d numbers in (0, 1)",
                            FM_RISK_MAX_LEVELS);
    size_t j = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, levels) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble > 0.0 && v->valuedouble < 1.0))
            return fm_error_set(err, FM_EINVAL, "'levels' item %zu must be a number in (0, 1)", j);
        w->mc.levels[j++] = v->valuedouble;
    }
    w->mc.nlevels = j;
    return FM_OK;
}

/* Everything in the body but the exposures themselves, which the work reads. */
/* A text/csv body: the exposures are the body and the options come from the query string
 * (?scenarios=..&seed=..&levels=0.99,0.999&model=..), read into the JSON form's members. */
static int csv_request(fm_request_t *req, cJSON **out, fm_error_t *err) {
    static const char *const numbers[] = {"scenarios", "seed", "threads", "rho",
                                          "pd_floor",  "lgd",  "ead",     "maturity"};
    static const char *const strings[] = {"model", "asset_class"};
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToObject(o, "csv",
                                     cJSON_CreateString(req->body.data ? req->body.data : ""))) {
        cJSON_Delete(o);
        return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    *out = o;
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        const char *v =
            MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, numbers[i]);
        if (!v) continue;
        char *end;
        double x = strtod(v, &end);
        if (end == v || *end || !isfinite(x))
            return fm_error_set(err, FM_EINVAL, "query parameter '%s' must be a number",
                                numbers[i]);
        cJSON_AddNumberToObject(o, numbers[i], x);
    }
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        const char *v =
            MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, strings[i]);
        if (v) cJSON_AddStringToObject(o, strings[i], v);
    }
    const char *levels =
        MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, "levels");
    if (levels) {
        cJSON *list = cJSON_AddArrayToObject(o, "levels");
        for (const char *p = levels; list && *p;) {
            char *end;
            double x = strtod(p, &end);
            if (end == p || (*end && *end != ','))
                return fm_error_set(err, FM_EINVAL,
                                    "query parameter 'levels' must be numbers separated by "
                                    "commas");
            cJSON_AddItemToArray(list, cJSON_CreateNumber(x));
            p = *end ? end + 1 : end;
        }
    }
    const char *per =
        MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, "per_exposure");
    if (per) cJSON_AddBoolToObject(o, "per_exposure", !strcmp(per, "true") || !strcmp(per, "1"));
    return FM_OK;
}

static int is_csv(const fm_request_t *req) {
    const char *type =
        MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    return type && (!strncasecmp(type, "text/csv", 8) || !strncasecmp(type, "application/csv", 15));
}

static int read_body(risk_work_t *w, fm_request_t *req, fm_error_t *err) {
    if (is_csv(req)) {
        int rc = csv_request(req, &w->body, err);
        if (rc) return rc;
    } else if (fm_json_parse(req->body.data, req->body.len, "request body", &w->body, err)) {
        return FM_EPARSE;
    }
    const cJSON *b = w->body;
    if (!cJSON_IsObject(b))
        return fm_error_set(err, FM_EPARSE, "the request body must be a JSON object");
    fm_risk_input_defaults(&w->in);
    fm_risk_settings_defaults(&w->settings);
    fm_risk_mc_options_defaults(&w->mc);
    w->in.max_exposures = MAX_EXPOSURES;
    const cJSON *exposures = cJSON_GetObjectItemCaseSensitive(b, "exposures");
    const cJSON *csv = cJSON_GetObjectItemCaseSensitive(b, "csv");
    if (!exposures == !csv)
        return fm_error_set(err, FM_EINVAL,
                            "the request needs either \"exposures\": [objects] or \"csv\": "
                            "\"CSV text\"");
    if (csv && !cJSON_IsString(csv))
        return fm_error_set(err, FM_EINVAL, "'csv' must be a string of CSV text");
    if (exposures && !cJSON_IsArray(exposures))
        return fm_error_set(err, FM_EINVAL, "'exposures' must be an array of objects");
    if (exposures && cJSON_GetArraySize(exposures) > MAX_EXPOSURES)
        return fm_error_set(err, FM_ELIMIT, "at most %d exposures a request", MAX_EXPOSURES);
    w->exposures = exposures;
    w->csv = csv ? csv->valuestring : NULL;
    double scenarios = (double)w->mc.scenarios, seed = 1.0, threads = 1.0;
    int rc = opt_integer(b, "scenarios", 0, MAX_SCENARIOS, &scenarios, err);
    if (!rc) rc = opt_integer(b, "seed", 0, 9007199254740992.0, &seed, err);
    if (!rc) rc = opt_integer(b, "threads", 1, MAX_THREADS, &threads, err);
    if (!rc) rc = opt_number(b, "rho", 0.0, 0.999999, &w->mc.rho, err);
    if (!rc) rc = opt_number(b, "pd_floor", 1e-5, 0.1, &w->settings.pd_floor, err);
    if (!rc) rc = opt_number(b, "lgd", 0.0, 1.0, &w->in.lgd_default, err);
    if (!rc) rc = opt_number(b, "ead", 0.0, 1e300, &w->in.ead_default, err);
    if (!rc) rc = opt_number(b, "maturity", 1e-9, 100.0, &w->in.maturity_default, err);
    if (rc) return rc;
    w->mc.scenarios = (uint64_t)scenarios;
    w->mc.seed = (uint64_t)seed;
    w->mc.threads = (int)threads;
    const cJSON *levels = cJSON_GetObjectItemCaseSensitive(b, "levels");
    if (levels && (rc = read_levels(w, levels, err))) return rc;
    const cJSON *columns = cJSON_GetObjectItemCaseSensitive(b, "columns");
    if (columns && (rc = read_columns(w, columns, err))) return rc;
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(b, "asset_class");
    if (cls &&
        (!cJSON_IsString(cls) || fm_risk_class_parse(cls->valuestring, &w->in.class_default)))
        return fm_error_set(err, FM_EINVAL,
                            "'asset_class' must be corporate, retail_mortgage, retail_revolving "
                            "or retail_other");
    const cJSON *per = cJSON_GetObjectItemCaseSensitive(b, "per_exposure");
    if (per && !cJSON_IsBool(per))
        return fm_error_set(err, FM_EINVAL, "'per_exposure' must be true or false");
    w->per_exposure = cJSON_IsTrue(per);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(b, "model");
    if (model) {
        if (!cJSON_IsString(model) || !model->valuestring[0])
            return fm_error_set(err, FM_EINVAL, "'model' must be the name of a model");
        if (!w->csv)
            return fm_error_set(err, FM_EINVAL,
                                "\"model\" needs \"csv\": rows with the model's features");
        snprintf(req->model, sizeof req->model, "%s", model->valuestring);
        rc = fm_store_acquire(req->server->store, model->valuestring, 0, NULL, &w->served, err);
        if (rc) return rc;
        req->version = w->served->version;
    }
    return FM_OK;
}

/* ---- The work (background thread) ---------------------------------------------------------- */

/* The model's P(positive) of each row of the CSV text, scored from an unlinked temporary file. */
static int model_pds(risk_work_t *w, double **pd, size_t *n, fm_error_t *err) {
    FILE *f = tmpfile();
    if (!f) return fm_error_set(err, FM_EIO, "cannot create a temporary file for the rows");
    size_t len = strlen(w->csv);
    int rc = fwrite(w->csv, 1, len, f) == len && fflush(f) == 0
                 ? FM_OK
                 : fm_error_set(err, FM_EIO, "cannot write the rows to a temporary file");
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fileno(f));
    if (!rc) rc = fm_risk_model_pds(w->served->model, path, pd, n, err);
    fclose(f);
    if (rc && rc != FM_ENOMEM && rc != FM_EIO) {
        /* The reader names the file by its descriptor: name the request's field instead. */
        char msg[FM_ERROR_MESSAGE_MAX];
        const char *m = fm_error_message(err);
        const char *at = strstr(m, path);
        if (at) {
            snprintf(msg, sizeof msg, "%.*scsv%s", (int)(at - m), m, at + strlen(path));
            fm_error_set(err, rc == FM_EINVAL ? FM_EINVAL : FM_EDATA, "%s", msg);
        }
        rc = err->code;
    }
    return rc;
}

static int work(fm_deferred_t *d, fm_error_t *err) {
    risk_work_t *w = (risk_work_t *)d;
    fm_risk_portfolio_t *p = NULL;
    double *pd = NULL;
    size_t npd = 0;
    int rc = FM_OK;
    if (w->exposures) {
        rc = fm_risk_portfolio_from_json(w->exposures, &w->in, &p, err);
    } else {
        fm_csv_t *csv = NULL;
        if (w->served) rc = model_pds(w, &pd, &npd, err);
        if (!rc) rc = fm_csv_open_memory(w->csv, strlen(w->csv), "csv", &csv, err);
        if (!rc) rc = fm_risk_portfolio_read_csv(csv, &w->in, pd, npd, &p, err);
        fm_csv_close(csv);
    }
    if (!rc && (double)p->n * (double)w->mc.scenarios > MAX_EXPOSURE_SCENARIOS)
        rc = fm_error_set(err, FM_ELIMIT,
                          "%zu exposures x %llu scenarios exceeds the limit of %.0f "
                          "exposure-scenarios a request",
                          p->n, (unsigned long long)w->mc.scenarios, MAX_EXPOSURE_SCENARIOS);
    if (!rc) {
        snprintf(d->req->audit_detail, sizeof d->req->audit_detail,
                 "exposures=%zu scenarios=%llu seed=%llu", p->n,
                 (unsigned long long)w->mc.scenarios, (unsigned long long)w->mc.seed);
        rc = fm_risk_analyse(p, &w->settings, w->mc.scenarios ? &w->mc : NULL, w->per_exposure,
                             &w->result, err);
    }
    fm_risk_portfolio_free(p);
    free(pd);
    return rc;
}

/* Writes the reply once the work is done (the work is freed here, whatever happened). */
static int finish(fm_request_t *req, fm_error_t *err) {
    risk_work_t *w = req->resume_state;
    req->resume_state = NULL;
    int rc = fm_deferred_outcome(req, &w->deferred, err);
    if (!rc) rc = fm_reply_cjson(req, w->result, err);
    work_free(w);
    return rc;
}

int fm_h_app_risk_portfolio(fm_request_t *req, fm_error_t *err) {
    risk_work_t *w = calloc(1, sizeof *w);
    if (!w) return fm_error_set(err, FM_ENOMEM, "out of memory");
    int rc = read_body(w, req, err);
    if (rc) {
        work_free(w);
        return rc;
    }
    w->deferred.work = work;
    return fm_defer(req, &w->deferred, finish, err);
}
