/*
 * The governance step of training (train_internal.h): what a validator, a fairness officer and
 * the explanation service need later is computed once, when the model is made, and stored in its
 * description:
 * - "explain": the baselines and settings of per-decision explanations (explain/explain.h);
 * - "global_explanations": permutation importance, partial dependence and ICE curves
 *   (importance/importance.h) and the mean absolute attribution per feature, on the validation
 *   rows (the training rows when nothing was held out);
 * - "fairness": the protected attributes (with the bands they resolved to) and, for binary models,
 *   their group metrics on the same rows; with reweighing, the metrics of the same model fitted
 *   without it under "before_mitigation".
 * Reweighing itself (AIF360's weights over the joint protected groups) is computed here too.
 */
#include "train/train_internal.h"
#include "core/json.h"

#include <stdlib.h>
#include <string.h>

/* The rows governance measures on: the validation rows, or the training rows without them. */
static const size_t *measured_rows(const fm_train_governed_t *g, size_t *n, const char **which) {
    if (g->nvalid > 0) {
        *n = g->nvalid;
        *which = "validation";
        return g->valid_rows;
    }
    *n = g->ntrain;
    *which = "training";
    return g->train_rows;
}

static int global_explanations(fm_model_t *m, const fm_train_governed_t *g, fm_error_t *err) {
    size_t n;
    const char *which;
    const size_t *rows = measured_rows(g, &n, &which);
    cJSON *global = NULL, *mean = NULL;
    int rc = fm_importance_compute(m, g->frame, rows, n, &g->options->importance, &global, err);
    if (!rc) rc = fm_explain_mean_abs_frame(m, g->frame, rows, n, &mean, err);
    if (rc) {
        cJSON_Delete(global);
        return fm_error_prefix(err, "global explanations: ");
    }
    cJSON_AddStringToObject(global, "data", which);
    cJSON_AddItemToObject(global, "mean_abs_attribution", mean);
    cJSON_DeleteItemFromObjectCaseSensitive(m->info, "global_explanations");
    cJSON_AddItemToObject(m->info, "global_explanations", global);
    return FM_OK;
}

/* The decision threshold on P(positive) that matches the approval cutoff on P(approve). */
static double decision_threshold(const fm_model_t *m, fm_error_t *err, int *rc) {
    fm_explainer_t *e = NULL;
    *rc = fm_explainer_new(m, &e, err);
    if (*rc) return 0.5;
    double cutoff = fm_explainer_cutoff(e);
    double t = fm_explainer_approve_class(e) == 0 ? 1.0 - cutoff : cutoff;
    fm_explainer_free(e);
    return t;
}

/* Gathers the measured rows' labels, decisions and protected values. d may be NULL. */
static int gather(const fm_train_governed_t *g, const size_t *rows, size_t n, const double *prob,
                  double threshold, fm_fairness_rows_t **out, fm_error_t *err) {
    const fm_train_options_t *o = g->options;
    int *y = malloc((n ? n : 1) * sizeof *y), *d = malloc((n ? n : 1) * sizeof *d);
    int rc = y && d ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        y[i] = g->label ? (g->label[rows[i]] < 0 ? -1 : g->label[rows[i]] == 1) : 0;
        d[i] = prob ? prob[i] >= threshold : 0;
    }
    if (!rc) rc = fm_fairness_rows_new(o->protected, o->nprotected, out, err);
    if (!rc) rc = fm_fairness_rows_add(*out, g->frame, rows, n, y, prob ? d : NULL, err);
    free(y);
    free(d);
    return rc;
}

static int fairness(fm_model_t *m, const fm_train_governed_t *g, fm_error_t *err) {
    size_t n;
    const char *which;
    const size_t *rows = measured_rows(g, &n, &which);
    int binary = m->task == FM_TASK_BINARY;
    double *x = NULL, *prob = NULL;
    fm_model_workspace_t *ws = NULL;
    fm_fairness_rows_t *gathered = NULL;
    cJSON *f = cJSON_CreateObject(), *settings = NULL, *metrics = NULL;
    int rc = f ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    double threshold = 0.5;
    if (!rc && binary) threshold = decision_threshold(m, err, &rc);
    if (!rc && binary) {
        x = malloc((n ? n : 1) * m->prep->nfeatures * sizeof *x);
        prob = malloc((n ? n : 1) * sizeof *prob);
        if (!x || !prob) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        if (!rc) rc = fm_prep_transform(m->prep, g->frame, rows, n, x, err);
        if (!rc) rc = fm_model_workspace_new(m, 1024, &ws, err);
        if (!rc && (rc = fm_model_predict_encoded(m, ws, x, n, prob)))
            fm_error_set(err, rc, "prediction: %s", fm_model_workspace_error(ws));
    }
    if (!rc) rc = gather(g, rows, n, prob, threshold, &gathered, err);
    if (!rc && !(settings = fm_fairness_rows_settings(gathered, err))) rc = err->code;
    if (!rc && binary) rc = fm_fairness_rows_report(gathered, &metrics, err);
    if (!rc) {
        cJSON_AddItemToObject(f, "protected", settings);
        settings = NULL;
        cJSON_AddBoolToObject(f, "excluded_from_features", 1);
        if (binary) {
            cJSON_AddStringToObject(f, "data", which);
            cJSON_AddStringToObject(f, "positive", m->classes[1]);
            cJSON_AddNumberToObject(f, "threshold", threshold);
            cJSON_AddNumberToObject(f, "rows", (double)fm_fairness_rows_count(gathered));
            cJSON_AddItemToObject(f, "attributes", metrics);
            metrics = NULL;
        }
        cJSON_AddItemToObject(f, "mitigation",
                              g->options->reweigh ? cJSON_CreateString("reweighing")
                                                  : cJSON_CreateNull());
        cJSON_DeleteItemFromObjectCaseSensitive(m->info, "fairness");
        cJSON_AddItemToObject(m->info, "fairness", f);
        f = NULL;
    }
    cJSON_Delete(f);
    cJSON_Delete(settings);
    cJSON_Delete(metrics);
    fm_fairness_rows_free(gathered);
    fm_model_workspace_free(ws);
    free(x);
    free(prob);
    return rc ? fm_error_prefix(err, "fairness: ") : FM_OK;
}

int fm_train_govern(fm_model_t *model, const fm_train_governed_t *g, fm_error_t *err) {
    const fm_train_options_t *o = g->options;
    int rc = fm_explain_fit(model, g->xtrain, g->ntrain, &o->explain, err);
    if (rc) return fm_error_prefix(err, "explanations: ");
    if (!o->no_global && (rc = global_explanations(model, g, err))) return rc;
    if (o->nprotected > 0 && (rc = fairness(model, g, err))) return rc;
    return FM_OK;
}

int fm_train_reweigh(const fm_frame_t *frame, const fm_train_options_t *o,
                     const fm_target_t *target, const size_t *train_rows, size_t ntrain,
                     double **row_weight, fm_error_t *err) {
    *row_weight = NULL;
    if (target->task != FM_TASK_BINARY)
        return fm_error_set(err, FM_EINVAL, "reweighing needs a binary target");
    if (o->nprotected == 0)
        return fm_error_set(err, FM_EINVAL, "reweighing needs protected attributes");
    fm_train_governed_t g = {.frame = frame, .options = o, .label = target->label};
    fm_fairness_rows_t *gathered = NULL;
    int32_t *codes = NULL;
    int *labels = NULL;
    size_t ngroups = 0;
    double *w = malloc((ntrain ? ntrain : 1) * sizeof *w);
    double *rw = malloc((frame->nrows ? frame->nrows : 1) * sizeof *rw);
    int rc = w && rw ? FM_OK : fm_error_set(err, FM_ENOMEM, "out of memory");
    if (!rc) rc = gather(&g, train_rows, ntrain, NULL, 0.5, &gathered, err);
    if (!rc) rc = fm_fairness_rows_joint(gathered, &codes, &labels, &ngroups, err);
    if (!rc && fm_fairness_rows_count(gathered) != ntrain)
        rc = fm_error_set(err, FM_EDATA, "reweighing: %zu training rows lack a target",
                          ntrain - fm_fairness_rows_count(gathered));
    if (!rc) rc = fm_fairness_reweighing(labels, codes, ntrain, ngroups, w, err);
    if (!rc) {
        for (size_t i = 0; i < frame->nrows; i++)
            rw[i] = 1.0;
        for (size_t i = 0; i < ntrain; i++)
            rw[train_rows[i]] = w[i];
        *row_weight = rw;
        rw = NULL;
    }
    fm_fairness_rows_free(gathered);
    free(codes);
    free(labels);
    free(w);
    free(rw);
    return rc ? fm_error_prefix(err, "reweighing: ") : FM_OK;
}

int fm_train_mitigation_info(fm_model_t *after, const fm_model_t *before, fm_error_t *err) {
    cJSON *f = cJSON_GetObjectItemCaseSensitive(after->info, "fairness");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(before->info, "fairness");
    const cJSON *attrs = b ? cJSON_GetObjectItemCaseSensitive(b, "attributes") : NULL;
    if (!f || !attrs) return FM_OK; /* not binary: nothing was measured */
    cJSON *copy = cJSON_Duplicate(attrs, 1);
    if (!copy) return fm_error_set(err, FM_ENOMEM, "out of memory");
    cJSON_DeleteItemFromObjectCaseSensitive(f, "before_mitigation");
    cJSON_AddItemToObject(f, "before_mitigation", copy);
    return FM_OK;
}
