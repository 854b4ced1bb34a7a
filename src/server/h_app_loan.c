/*
 * Loan decisions over HTTP, with a scorecard model (scorecard/scorecard.h):
 *   POST /api/apps/loan/{model}[/versions/{version}]/decide
 *        {"applicant": {"Seniority": 9, "Home": "rent", ...}, "id": "A-17"}
 * answers {"model", "version", "id", "request_id", "score", "pd", "decision", "points":
 * {feature: points}, "reasons": [{"feature", "points", "max_points", "text"}], "rules_fired":
 * [{"feature", "decision", "reason"}]}: the same numbers as `finmaas decide` for the same
 * applicant. Fields the model does not know are ignored unless a rule of the policy reads them;
 * absent fields and null are missing values. The entry in the audit log is written by http.c
 * under the route's action, "loan.decide"; the reply holds no raw input value.
 *
 * Errors: 400 for a body that is not {"applicant": {...}} or an "id" that is not a short string
 * or a number, or a field whose value is an object or an array; 422 for a model without a
 * scorecard, or a value its column cannot take (text for a number).
 */
#include "scorecard/scorecard.h"
#include "server/tabular.h"

#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ID_BYTES 128

/* The raw value of applicant[name]: missing when absent or null. */
static int raw_value(const cJSON *applicant, const char *name, fm_raw_value_t *v, fm_error_t *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(applicant, name);
    *v = (fm_raw_value_t){FM_RAW_MISSING, 0, NULL, 0};
    if (!item || cJSON_IsNull(item)) return FM_OK;
    if (cJSON_IsNumber(item)) {
        *v = (fm_raw_value_t){FM_RAW_NUMBER, item->valuedouble, NULL, 0};
    } else if (cJSON_IsBool(item)) {
        *v = (fm_raw_value_t){FM_RAW_NUMBER, cJSON_IsTrue(item) ? 1.0 : 0.0, NULL, 0};
    } else if (cJSON_IsString(item)) {
        *v = (fm_raw_value_t){FM_RAW_STRING, 0, item->valuestring, strlen(item->valuestring)};
    } else {
        return fm_error_set(err, FM_EINVAL,
                            "applicant field '%.64s' must be a number, a string or null", name);
    }
    return FM_OK;
}

/* Appends the reply for one decided applicant. */
static int reply(fm_request_t *req, const fm_served_t *served, const fm_scorecard_t *sc,
                 const fm_scorecard_result_t *res, const cJSON *id) {
    fm_buf_t *b = &req->reply;
    int rc = fm_buf_puts(b, "{\"model\":");
    if (!rc) rc = fm_buf_json_string(b, served->name, strlen(served->name));
    if (!rc) rc = fm_buf_printf(b, ",\"version\":%lld,\"id\":", (long long)served->version);
    if (!rc && cJSON_IsString(id))
        rc = fm_buf_json_string(b, id->valuestring, strlen(id->valuestring));
    else if (!rc && cJSON_IsNumber(id))
        rc = fm_buf_json_number(b, id->valuedouble);
    else if (!rc)
        rc = fm_buf_puts(b, "null");
    if (!rc) rc = fm_buf_puts(b, ",\"request_id\":");
    if (!rc) rc = fm_buf_json_string(b, req->request_id, strlen(req->request_id));
    if (!rc)
        rc = fm_buf_printf(b, ",\"score\":%.17g,\"pd\":%.17g,\"decision\":\"%s\",\"points\":{",
                           res->score, res->pd, fm_decision_name(res->decision));
    for (size_t k = 0; !rc && k < sc->nfeatures; k++) {
        const char *name = sc->features[k].name;
        if (k) rc = fm_buf_putc(b, ',');
        if (!rc) rc = fm_buf_json_string(b, name, strlen(name));
        if (!rc) rc = fm_buf_printf(b, ":%.17g", res->points[k]);
    }
    if (!rc) rc = fm_buf_puts(b, "},\"reasons\":[");
    for (size_t i = 0; !rc && i < res->nreasons; i++) {
        size_t k = res->reasons[i];
        char text[FM_SCORECARD_MAX_TEXT + 512];
        fm_scorecard_reason_text(sc, k, res->bin[k], res->points[k], text, sizeof text);
        rc = fm_buf_puts(b, i ? ",{\"feature\":" : "{\"feature\":");
        if (!rc) rc = fm_buf_json_string(b, sc->features[k].name, strlen(sc->features[k].name));
        if (!rc)
            rc =
                fm_buf_printf(b, ",\"points\":%.17g,\"max_points\":%.17g,\"text\":", res->points[k],
                              sc->features[k].max_points);
        if (!rc) rc = fm_buf_json_string(b, text, strlen(text));
        if (!rc) rc = fm_buf_putc(b, '}');
    }
    if (!rc) rc = fm_buf_puts(b, "],\"rules_fired\":[");
    int first = 1;
    for (size_t i = 0; !rc && i < sc->policy.nrules; i++) {
        if (!(res->fired >> i & 1)) continue;
        const fm_decision_rule_t *r = &sc->policy.rules[i];
        rc = fm_buf_puts(b, first ? "{\"feature\":" : ",{\"feature\":");
        first = 0;
        if (!rc) rc = fm_buf_json_string(b, r->feature, strlen(r->feature));
        if (!rc)
            rc =
                fm_buf_printf(b, ",\"decision\":\"%s\",\"reason\":", fm_decision_name(r->decision));
        if (!rc) rc = fm_buf_json_string(b, r->reason, strlen(r->reason));
        if (!rc) rc = fm_buf_putc(b, '}');
    }
    if (!rc) rc = fm_buf_puts(b, "]}");
    return rc;
}

/* Reads the body, scores the applicant with served's scorecard and writes the reply. */
static int decide(fm_request_t *req, fm_served_t *served, fm_scratch_t *s, fm_error_t *err) {
    const fm_model_t *m = served->model;
    cJSON *body = NULL;
    const fm_scorecard_t *sc = served->scorecard;
    if (!sc)
        return fm_error_set(err, FM_EDATA, "model '%s' version %lld: %s", served->name,
                            (long long)served->version, served->scorecard_error);
    int rc = fm_json_parse(req->body.data, req->body.len, "request body", &body, err);
    if (rc) err->code = rc = FM_EPARSE;
    const cJSON *applicant = rc ? NULL : cJSON_GetObjectItemCaseSensitive(body, "applicant");
    const cJSON *id = rc ? NULL : cJSON_GetObjectItemCaseSensitive(body, "id");
    if (!rc && !cJSON_IsObject(body))
        rc = fm_error_set(err, FM_EINVAL, "the request body must be a JSON object");
    else if (!rc && !cJSON_IsObject(applicant))
        rc = fm_error_set(err, FM_EINVAL,
                          "'applicant' must be an object of the applicant's "
                          "fields");
    else if (!rc && id && !cJSON_IsNull(id) &&
             !(cJSON_IsString(id) && strlen(id->valuestring) <= MAX_ID_BYTES) &&
             !(cJSON_IsNumber(id) && isfinite(id->valuedouble)))
        rc = fm_error_set(err, FM_EINVAL, "'id' must be a string of at most %d bytes or a number",
                          MAX_ID_BYTES);
    size_t nrules = sc->policy.nrules;
    fm_raw_value_t rules[FM_SCORECARD_MAX_RULES];
    for (size_t k = 0; !rc && k < m->prep->ncolumns; k++)
        rc = raw_value(applicant, m->prep->columns[k].name, &s->values[k], err);
    for (size_t i = 0; !rc && i < nrules; i++)
        rc = raw_value(applicant, sc->policy.rules[i].feature, &rules[i], err);
    if (!rc) rc = fm_prep_encode_row(m->prep, s->values, s->x, err);
    double *points = rc ? NULL : malloc(sc->nfeatures * sizeof *points);
    size_t *bins = rc ? NULL : malloc(sc->nfeatures * sizeof *bins);
    if (!rc && (!points || !bins)) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_scorecard_result_t res = {.points = points, .bin = bins};
    if (!rc) rc = fm_scorecard_score(sc, s->x, rules, &res, err);
    if (!rc && reply(req, served, sc, &res, id)) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) fm_reply_json(req, 200);
    free(points);
    free(bins);
    cJSON_Delete(body);
    return rc;
}

int fm_h_loan_decide(fm_request_t *req, fm_error_t *err) {
    fm_served_t *served = NULL;
    int rc = fm_acquire_for_request(req, &served, err);
    if (rc) return rc;
    fm_scratch_t *s = fm_scratch_get(served, 1);
    rc = s ? decide(req, served, s, err) : fm_error_set(err, FM_ENOMEM, "out of memory");
    if (s) fm_scratch_put(served, s);
    fm_release_for_request(req, served, rc == FM_OK);
    return rc;
}
