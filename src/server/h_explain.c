/*
 * Per-decision explanations over HTTP:
 *   POST /v2/models/{name}[/versions/{version}]/explain
 * takes the body of the V2 inference request (h_infer.c parses and scores it), with optional
 * V2 "parameters": {"reasons": K, "baseline": "reference" | "population", "method": "auto" |
 * "linear" | "treeshap" | "integrated_gradients" | "shapley", "steps": N, "class": label}, and
 * answers the inference reply plus "explanations": one object per row, in order (see
 * explain/explain.h for the attributions, scores and reason codes). The raw input values are not
 * echoed back: an explanation names features and their attributions only.
 *
 * This file also holds what the V2 and TensorFlow Serving handlers share to explain: reading a
 * request's settings and writing one row's explanation. Explanations are computed on the HTTP
 * thread after scoring, with the explainer built once when the version was loaded (store.c) and
 * a workspace kept in the request's scratch, so that a busy server allocates nothing per row but
 * the JSON text.
 */
#include "server/tabular.h"

#include <stdlib.h>
#include <string.h>

int fm_h_v2_explain(fm_request_t *req, fm_error_t *err) {
    return fm_v2_serve(req, 1, err);
}

void fm_explain_ask_defaults(fm_explain_ask_t *ask) {
    fm_explain_request_defaults(&ask->request);
    ask->reasons = FM_EXPLAIN_DEFAULT_REASONS;
}

int fm_explain_available(const fm_served_t *served, fm_error_t *err) {
    if (served->explainer) return FM_OK;
    return fm_error_set(err, FM_EDATA, "model '%s' version %lld cannot explain: %s", served->name,
                        (long long)served->version,
                        served->explain_error[0] ? served->explain_error : "no explainer");
}

/* The text of string token i into buf (NUL-terminated, cut to size - 1). FM_EPARSE when the token
 * is not a string. */
static int string_value(fm_jdoc_t *doc, int i, const char *setting, char *buf, size_t size,
                        fm_error_t *err) {
    const char *text;
    size_t len;
    if (doc->t[i].type != JSMN_STRING)
        return fm_error_set(err, FM_EPARSE, "explanation setting '%s' must be a string", setting);
    int rc = fm_jdoc_string(doc, i, &text, &len, err);
    if (rc) return rc;
    if (len >= size) len = size - 1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    return FM_OK;
}

/* Token i as an integer in [min, max]: FM_EPARSE when it is not a number, FM_EINVAL out of range
 * (or not whole). */
static int int_value(const fm_jdoc_t *doc, int i, const char *setting, long min, long max,
                     long *out, fm_error_t *err) {
    double v;
    if (doc->t[i].type == JSMN_STRING || fm_jdoc_primitive(doc, i, &v) != FM_JPRIM_NUMBER)
        return fm_error_set(err, FM_EPARSE, "explanation setting '%s' must be a number", setting);
    if (fm_jdoc_int(doc, i, min, max, out))
        return fm_error_set(err, FM_EINVAL,
                            "explanation setting '%s' must be a whole number in %ld..%ld, got %g",
                            setting, min, max, v);
    return FM_OK;
}

int fm_explain_ask_read(const fm_served_t *served, fm_jdoc_t *doc, int key, fm_explain_ask_t *ask,
                        int *known, fm_error_t *err) {
    const fm_model_t *m = served->model;
    int value = key + 1;
    long n;
    char text[96];
    int rc = FM_OK;
    *known = 1;
    if (fm_jdoc_is(doc, key, "reasons")) {
        rc = int_value(doc, value, "reasons", 0, FM_EXPLAIN_ASK_MAX_REASONS, &n, err);
        if (!rc) ask->reasons = (size_t)n;
    } else if (fm_jdoc_is(doc, key, "steps")) {
        rc = int_value(doc, value, "steps", 1, FM_EXPLAIN_MAX_STEPS, &n, err);
        if (!rc) ask->request.steps = (int)n;
    } else if (fm_jdoc_is(doc, key, "baseline")) {
        rc = string_value(doc, value, "baseline", text, sizeof text, err);
        if (!rc && !strcmp(text, "reference"))
            ask->request.baseline = FM_EXPLAIN_REFERENCE;
        else if (!rc && !strcmp(text, "population"))
            ask->request.baseline = FM_EXPLAIN_POPULATION;
        else if (!rc)
            rc = fm_error_set(err, FM_EINVAL,
                              "explanation setting 'baseline' must be \"reference\" or "
                              "\"population\", got '%s'",
                              text);
    } else if (fm_jdoc_is(doc, key, "method")) {
        rc = string_value(doc, value, "method", text, sizeof text, err);
        if (!rc && fm_explain_method_parse(text, &ask->request.method) != FM_OK)
            rc = fm_error_set(err, FM_EINVAL,
                              "explanation setting 'method' must be one of auto, linear, "
                              "treeshap, integrated_gradients, shapley; got '%s'",
                              text);
    } else if (fm_jdoc_is(doc, key, "class")) {
        if (m->task != FM_TASK_MULTICLASS)
            return fm_error_set(err, FM_EDATA,
                                "explanation setting 'class' applies to multiclass models; model "
                                "'%s' is %s",
                                served->name, fm_task_name(m->task));
        const char *label;
        size_t len;
        if (doc->t[value].type != JSMN_STRING)
            return fm_error_set(err, FM_EPARSE, "explanation setting 'class' must be a string");
        rc = fm_jdoc_string(doc, value, &label, &len, err);
        long found = -1;
        for (size_t k = 0; !rc && k < m->nclasses && found < 0; k++)
            if (strlen(m->classes[k]) == len && !memcmp(m->classes[k], label, len)) found = (long)k;
        if (!rc && found < 0)
            rc = fm_error_set(err, FM_EDATA,
                              "explanation setting 'class': '%.*s' is not a class of "
                              "model '%s'",
                              (int)(len > 64 ? 64 : len), label, served->name);
        if (!rc) ask->request.output = found;
    } else {
        *known = 0;
    }
    return rc;
}

/* The workspace and attribution buffers of a scratch, made on first use. */
static int scratch_ready(const fm_served_t *served, fm_scratch_t *s, fm_error_t *err) {
    if (!s->explain_ws) {
        int rc = fm_explain_workspace_new(served->explainer, &s->explain_ws, err);
        if (rc) return rc;
    }
    if (!s->phi) {
        size_t ncols = served->model->prep->ncolumns;
        s->phi = malloc(2 * (ncols ? ncols : 1) * sizeof *s->phi);
        if (!s->phi) return fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    return FM_OK;
}

/* A settings error of fm_explain_row (a method or class that does not apply to this model) is
 * the request's fault, not the server's: 422. */
static int request_error(const fm_served_t *served, int rc, fm_error_t *err) {
    err->code = rc == FM_EINVAL ? FM_EDATA : rc;
    return fm_error_prefix(err, "model '%s' version %lld: ", served->name,
                           (long long)served->version);
}

int fm_explain_put(const fm_served_t *served, fm_scratch_t *s, const double *x,
                   const fm_explain_ask_t *ask, fm_buf_t *b, fm_error_t *err) {
    const fm_explainer_t *e = served->explainer;
    int rc = fm_explain_available(served, err);
    if (!rc) rc = scratch_ready(served, s, err);
    if (rc) return rc;
    size_t ncols = served->model->prep->ncolumns;
    fm_explanation_t row = {.phi = s->phi};
    rc = fm_explain_row(e, s->explain_ws, x, &ask->request, &row, err);
    if (rc) return request_error(served, rc, err);
    cJSON *obj = fm_explanation_to_json(e, &row, &ask->request, ask->reasons);
    if (!obj) return fm_error_set(err, FM_ENOMEM, "out of memory");
    if (ask->request.baseline != FM_EXPLAIN_REFERENCE && ask->reasons > 0 &&
        served->model->task == FM_TASK_BINARY) {
        fm_explain_request_t reference = ask->request;
        reference.baseline = FM_EXPLAIN_REFERENCE;
        fm_explanation_t against = {.phi = s->phi + ncols};
        rc = fm_explain_row(e, s->explain_ws, x, &reference, &against, err);
        cJSON *ref = rc ? NULL : fm_explanation_to_json(e, &against, &reference, ask->reasons);
        cJSON *reasons = ref ? cJSON_DetachItemFromObjectCaseSensitive(ref, "reasons") : NULL;
        if (!rc && !(reasons && cJSON_ReplaceItemInObjectCaseSensitive(obj, "reasons", reasons))) {
            cJSON_Delete(reasons);
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        }
        cJSON_Delete(ref);
        if (rc) {
            cJSON_Delete(obj);
            return rc == FM_ENOMEM ? rc : request_error(served, rc, err);
        }
    }
    char *text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!text) return fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_buf_puts(b, text);
    free(text);
    return FM_OK;
}

int fm_explain_put_rows(const fm_served_t *served, fm_scratch_t *s, int n,
                        const fm_explain_ask_t *ask, fm_buf_t *b, fm_error_t *err) {
    size_t nf = served->model->prep->nfeatures;
    fm_buf_puts(b, ",\"explanations\":[");
    for (int r = 0; r < n; r++) {
        if (r) fm_buf_putc(b, ',');
        int rc = fm_explain_put(served, s, s->x + (size_t)r * nf, ask, b, err);
        if (rc) return rc;
    }
    fm_buf_putc(b, ']');
    return FM_OK;
}
