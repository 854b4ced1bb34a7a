/*
 * Evaluation for the search: frames that hold a subset of another frame's rows (a fold's
 * validation rows, the test rows), the metrics a search ranks by, and permutation importance.
 * Predictions go through fm_model_predict_frame, so every model family the model area serves is
 * measured exactly as it will predict in production, preprocessing included.
 */
#include "core/json.h"
#include "eval/metrics.h"
#include "importance/importance.h"
#include "search/search_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int search_view_make(const fm_frame_t *src, const size_t *rows, size_t n, fm_frame_t *view,
                     fm_error_t *err) {
    memset(view, 0, sizeof *view);
    view->source = src->source;
    view->nrows = n;
    memcpy(view->digest, src->digest, sizeof view->digest);
    view->columns = calloc(src->ncols ? src->ncols : 1, sizeof *view->columns);
    if (!view->columns) return fm_error_set(err, FM_ENOMEM, "out of memory");
    view->ncols = src->ncols;
    for (size_t c = 0; c < src->ncols; c++) {
        const fm_column_t *from = &src->columns[c];
        fm_column_t *to = &view->columns[c];
        to->name = from->name;
        to->type = from->type;
        to->dict = from->dict; /* borrowed: the codes index the source's dictionary */
        if (from->type == FM_COLUMN_NUMERIC) {
            to->values = malloc((n ? n : 1) * sizeof *to->values);
            if (!to->values) {
                search_view_free(view);
                return fm_error_set(err, FM_ENOMEM, "out of memory for %zu rows", n);
            }
            for (size_t i = 0; i < n; i++) {
                to->values[i] = from->values[rows[i]];
                to->missing += isnan(to->values[i]) ? 1 : 0;
            }
        } else {
            to->codes = malloc((n ? n : 1) * sizeof *to->codes);
            if (!to->codes) {
                search_view_free(view);
                return fm_error_set(err, FM_ENOMEM, "out of memory for %zu rows", n);
            }
            for (size_t i = 0; i < n; i++) {
                to->codes[i] = from->codes[rows[i]];
                to->missing += to->codes[i] < 0 ? 1 : 0;
            }
        }
    }
    return FM_OK;
}

void search_view_free(fm_frame_t *view) {
    if (!view) return;
    for (size_t c = 0; view->columns && c < view->ncols; c++) {
        free(view->columns[c].values);
        free(view->columns[c].codes);
    }
    free(view->columns);
    memset(view, 0, sizeof *view);
}

int search_labels_for_model(const fm_model_t *model, const fm_target_t *target, const size_t *rows,
                            size_t n, int *out, fm_error_t *err) {
    if (target->task == FM_TASK_REGRESSION) return FM_OK;
    int map[1000];
    for (size_t j = 0; j < target->nclasses; j++) {
        map[j] = -1;
        for (size_t m = 0; m < model->nclasses; m++)
            if (!strcmp(model->classes[m], target->classes[j])) map[j] = (int)m;
        if (map[j] < 0)
            return fm_error_set(err, FM_EDATA, "the model has no class '%s'", target->classes[j]);
    }
    for (size_t i = 0; i < n; i++)
        out[i] = map[target->label[rows[i]]];
    return FM_OK;
}

double search_metric_value(search_metric_t metric, const fm_model_t *model, const double *pred,
                           const int *label, const double *value, size_t n) {
    size_t k = fm_model_output_width(model);
    int multiclass = model->task == FM_TASK_MULTICLASS;
    switch (metric) {
    case METRIC_AUC:
        return fm_metric_auc(pred, label, NULL, n);
    case METRIC_ACCURACY: {
        if (multiclass) return fm_metric_multiclass_accuracy(pred, label, NULL, n, k);
        fm_confusion_t c = fm_metric_confusion(pred, label, NULL, n, 0.5);
        return fm_confusion_accuracy(&c);
    }
    case METRIC_LOGLOSS:
        return multiclass ? fm_metric_multiclass_logloss(pred, label, NULL, n, k)
                          : fm_metric_logloss(pred, label, NULL, n);
    case METRIC_RMSE:
        return fm_metric_rmse(pred, value, NULL, n);
    case METRIC_R2:
        return fm_metric_r2(pred, value, NULL, n);
    default:
        return NAN;
    }
}

cJSON *search_metric_report(search_metric_t metric, const fm_model_t *model, const double *pred,
                            const int *label, const double *value, size_t n) {
    cJSON *r;
    switch (model->task) {
    case FM_TASK_BINARY:
        r = fm_metrics_binary_report(pred, label, NULL, n, 0.5);
        break;
    case FM_TASK_MULTICLASS:
        r = fm_metrics_multiclass_report(pred, label, NULL, n, model->nclasses);
        break;
    default:
        r = fm_metrics_regression_report(pred, value, NULL, n);
        break;
    }
    if (!r) return NULL;
    cJSON_AddStringToObject(r, "metric", search_metric_name(metric));
    fm_json_add_number(r, "value", search_metric_value(metric, model, pred, label, value, n));
    return r;
}

typedef struct importance {
    const char *feature;
    double mean, std;
} importance_t;

static int compare_importance(const void *a, const void *b) {
    const importance_t *x = a, *y = b;
    if (x->mean != y->mean) return x->mean > y->mean ? -1 : 1;
    return strcmp(x->feature, y->feature);
}

/* The search's metric on the view's rows, turned so that higher is better (the importance area
 * measures drops): a permuted column's mean drop is then how much worse the metric got. */
typedef struct metric_ctx {
    const fm_model_t *model;
    const int *label;
    const double *value;
    search_metric_t metric;
} metric_ctx_t;

static double higher_is_better(const void *ctx, const double *pred, size_t n) {
    const metric_ctx_t *m = ctx;
    double v = search_metric_value(m->metric, m->model, pred, m->label, m->value, n);
    return search_metric_higher_is_better(m->metric) ? v : -v;
}

int search_importance(const fm_model_t *model, fm_frame_t *view, const int *label,
                      const double *value, search_metric_t metric, int repeats, uint64_t seed,
                      cJSON **out, fm_error_t *err) {
    *out = NULL;
    const fm_prep_t *prep = model->prep;
    size_t n = view->nrows, ncols = prep->ncolumns;
    double *x = malloc((n ? n : 1) * prep->nfeatures * sizeof *x);
    double *mean = malloc((ncols ? ncols : 1) * sizeof *mean);
    double *std = malloc((ncols ? ncols : 1) * sizeof *std);
    importance_t *items = calloc(ncols ? ncols : 1, sizeof *items);
    size_t nitems = 0;
    double baseline = NAN;
    metric_ctx_t ctx = {model, label, value, metric};
    int rc = x && mean && std && items
                 ? FM_OK
                 : fm_error_set(err, FM_ENOMEM, "permutation importance: out of memory");
    if (!rc) rc = fm_prep_transform(prep, view, NULL, n, x, err);
    if (!rc)
        rc = fm_importance_permutation_encoded(model, x, n, higher_is_better, &ctx, repeats, seed,
                                               &baseline, mean, std, err);
    if (!rc && !search_metric_higher_is_better(metric)) baseline = -baseline;
    /* A PII column is listed by name only when it encodes to something; its values never show. */
    for (size_t p = 0; !rc && p < ncols; p++)
        if (!prep->columns[p].pii && prep->columns[p].width > 0)
            items[nitems++] = (importance_t){prep->columns[p].name, mean[p], std[p]};
    if (!rc) {
        qsort(items, nitems, sizeof *items, compare_importance);
        cJSON *o = cJSON_CreateObject();
        cJSON *features = o ? cJSON_AddArrayToObject(o, "features") : NULL;
        if (!features) {
            cJSON_Delete(o);
            rc = fm_error_set(err, FM_ENOMEM, "out of memory");
        } else {
            cJSON_AddStringToObject(o, "metric", search_metric_name(metric));
            fm_json_add_number(o, "baseline", baseline);
            cJSON_AddNumberToObject(o, "repeats", repeats);
            cJSON_AddNumberToObject(o, "rows", (double)n);
            for (size_t i = 0; i < nitems; i++) {
                cJSON *f = cJSON_CreateObject();
                cJSON_AddStringToObject(f, "feature", items[i].feature);
                fm_json_add_number(f, "mean", items[i].mean);
                fm_json_add_number(f, "std", items[i].std);
                cJSON_AddItemToArray(features, f);
            }
            *out = o;
        }
    }
    free(x);
    free(mean);
    free(std);
    free(items);
    return rc;
}

int fm_search_permutation_importance(const fm_model_t *model, const fm_frame_t *frame,
                                     const size_t *rows, size_t nrows, const char *metric,
                                     int repeats, uint64_t seed, cJSON **out, fm_error_t *err) {
    *out = NULL;
    search_metric_t m;
    if (!metric || search_metric_parse(metric, &m))
        return fm_error_set(err, FM_EINVAL,
                            "metric: '%s' is not one of auc, accuracy, logloss, "
                            "rmse, r2",
                            metric ? metric : "(null)");
    if (!search_metric_fits(m, model->task))
        return fm_error_set(err, FM_EINVAL, "metric: '%s' does not apply to a %s model", metric,
                            fm_task_name(model->task));
    if (repeats < 1) return fm_error_set(err, FM_EINVAL, "repeats: %d is not at least 1", repeats);
    fm_target_t target;
    int rc = search_target_resolve(frame, model->target, (int)model->task,
                                   model->task == FM_TASK_BINARY ? model->classes[1] : NULL,
                                   &target, err);
    if (rc) return rc;
    /* Only rows with a target value can be scored. */
    size_t *use = malloc((frame->nrows ? frame->nrows : 1) * sizeof *use);
    size_t nuse = 0;
    if (!use) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < (rows ? nrows : frame->nrows); i++) {
        size_t r = rows ? rows[i] : i;
        if (r >= frame->nrows) {
            rc = fm_error_set(err, FM_EINVAL, "row %zu is outside %s (%zu rows)", r,
                              frame->source ? frame->source : "the data", frame->nrows);
            break;
        }
        if (target.label[r] >= 0) use[nuse++] = r;
    }
    if (!rc && nuse == 0) rc = fm_error_set(err, FM_EDATA, "no rows with a target value to score");
    int *label = NULL;
    double *value = NULL;
    fm_frame_t view;
    memset(&view, 0, sizeof view);
    if (!rc) {
        label = malloc(nuse * sizeof *label);
        value = malloc(nuse * sizeof *value);
        if (!label || !value) rc = fm_error_set(err, FM_ENOMEM, "out of memory");
    }
    if (!rc) rc = search_labels_for_model(model, &target, use, nuse, label, err);
    for (size_t i = 0; !rc && target.value && i < nuse; i++)
        value[i] = target.value[use[i]];
    if (!rc) rc = search_view_make(frame, use, nuse, &view, err);
    if (!rc) rc = search_importance(model, &view, label, value, m, repeats, seed, out, err);
    search_view_free(&view);
    free(label);
    free(value);
    free(use);
    fm_target_deinit(&target);
    return rc;
}
