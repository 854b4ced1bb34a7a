/*
 * An explanation as JSON for the API and the command line: the method, the baseline, the score
 * and the baseline's score, the explained output's label, the attribution of each raw feature in
 * prep column order and, for binary models, the reason codes.
 */
#include "explain/explain_internal.h"
#include "core/json.h"

#include <stdlib.h>

static int add_reasons(const fm_explainer_t *e, const fm_explanation_t *x, size_t k, cJSON *obj) {
    cJSON *list = cJSON_AddArrayToObject(obj, "reasons");
    if (!list) return 0;
    if (k > e->nraw) k = e->nraw;
    if (k == 0) return 1;
    fm_reason_t *reasons = malloc(k * sizeof *reasons);
    if (!reasons) return 0;
    size_t n = 0;
    fm_explain_reasons(e, x, k, reasons, &n);
    int ok = 1;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *r = cJSON_CreateObject();
        ok = r && cJSON_AddItemToArray(list, r);
        if (!ok) {
            cJSON_Delete(r);
            break;
        }
        ok = cJSON_AddStringToObject(r, "feature",
                                     e->model->prep->columns[reasons[i].column].name) &&
             fm_json_add_number(r, "contribution", reasons[i].contribution) &&
             cJSON_AddStringToObject(r, "text", reasons[i].text);
    }
    free(reasons);
    return ok;
}

cJSON *fm_explanation_to_json(const fm_explainer_t *e, const fm_explanation_t *x,
                              const fm_explain_request_t *request, size_t k) {
    const fm_model_t *m = e->model;
    int population = request && request->baseline == FM_EXPLAIN_POPULATION;
    cJSON *obj = cJSON_CreateObject();
    int ok = obj && cJSON_AddStringToObject(obj, "method", fm_explain_method_name(x->method)) &&
             cJSON_AddStringToObject(obj, "baseline", population ? "population" : "reference") &&
             fm_json_add_number(obj, "score", x->score) &&
             fm_json_add_number(obj, "baseline_score", x->baseline_score);
    if (ok && m->task != FM_TASK_REGRESSION) {
        /* A binary score is the log-odds of the positive class. */
        size_t label = m->task == FM_TASK_BINARY ? 1 : x->output;
        ok = label < m->nclasses && cJSON_AddStringToObject(obj, "output", m->classes[label]);
    }
    cJSON *attributions = ok ? cJSON_AddObjectToObject(obj, "attributions") : NULL;
    ok = attributions != NULL;
    for (size_t i = 0; ok && i < e->nraw; i++) {
        size_t c = e->raw[i];
        ok = fm_json_add_number(attributions, m->prep->columns[c].name, x->phi[c]) != NULL;
    }
    if (ok && m->task == FM_TASK_BINARY) ok = add_reasons(e, x, k, obj);
    if (!ok) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

int fm_explain_mean_abs_frame(const fm_model_t *model, const fm_frame_t *frame, const size_t *rows,
                              size_t n, cJSON **out, fm_error_t *err) {
    *out = NULL;
    if (n > FM_EXPLAIN_MEAN_ABS_ROWS) n = FM_EXPLAIN_MEAN_ABS_ROWS;
    const fm_prep_t *prep = model->prep;
    double *x = malloc((n ? n : 1) * prep->nfeatures * sizeof *x);
    double *mean = malloc(prep->ncolumns * sizeof *mean);
    fm_explainer_t *e = NULL;
    int rc = x && mean ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) rc = fm_prep_transform(prep, frame, rows, n, x, err);
    if (!rc) rc = fm_explainer_new(model, &e, err);
    if (!rc) rc = fm_explain_mean_abs(e, x, n, mean, err);
    if (!rc && !(*out = cJSON_CreateObject())) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t c = 0; c < prep->ncolumns && !rc; c++)
        if (prep->columns[c].width > 0 &&
            !cJSON_AddNumberToObject(*out, prep->columns[c].name, mean[c]))
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    fm_explainer_free(e);
    free(x);
    free(mean);
    if (rc) {
        cJSON_Delete(*out);
        *out = NULL;
        return fm_error_prefix(err, "mean absolute attribution: ");
    }
    return FM_OK;
}
