/*
 * The validation report's entry point: checks the input, then writes the page section by section
 * (model card, performance, feature importance, fairness) into the caller's buffer. Every section
 * appends through the page's sticky error (report_internal.h), so a failure anywhere is reported
 * once, here, and the buffer is returned to the length it had.
 */
#include "report/report_internal.h"

#include <math.h>

const char *fm_report_chartjs_version(void) {
    return fm_report_chartjs_package_version;
}

/* FM_EINVAL naming what is inconsistent in the input, or FM_OK. */
static int check_input(const fm_report_input_t *in, double threshold, fm_error_t *err) {
    if (!in || !in->model) return fm_error_set(err, FM_EINVAL, "report: no model");
    const fm_model_t *m = in->model;
    if (!m->family || !m->target || !m->prep)
        return fm_error_set(err, FM_EINVAL,
                            "report: the model has no family, target or "
                            "preprocessing");
    if (in->n == 0) return fm_error_set(err, FM_EINVAL, "report: no rows with a target");
    if (!in->pred) return fm_error_set(err, FM_EINVAL, "report: no predictions");
    if (!(threshold >= 0.0 && threshold <= 1.0))
        return fm_error_set(err, FM_EINVAL, "report: threshold %g is outside [0, 1]", threshold);
    size_t width = fm_model_output_width(m);
    for (size_t i = 0; i < in->n * width; i++)
        if (!isfinite(in->pred[i]))
            return fm_error_set(err, FM_EINVAL, "report: the prediction of row %zu is not a number",
                                i / width + 1);
    if (m->task == FM_TASK_REGRESSION) {
        if (!in->y) return fm_error_set(err, FM_EINVAL, "report: a regression needs true values");
        for (size_t i = 0; i < in->n; i++)
            if (!isfinite(in->y[i]))
                return fm_error_set(err, FM_EINVAL,
                                    "report: the true value of row %zu is not a "
                                    "number",
                                    i + 1);
    } else {
        if (m->nclasses < 2 || !m->classes)
            return fm_error_set(err, FM_EINVAL, "report: a classifier with %zu classes",
                                m->nclasses);
        if (m->task == FM_TASK_BINARY && m->nclasses != 2)
            return fm_error_set(err, FM_EINVAL, "report: a binary model with %zu classes",
                                m->nclasses);
        if (!in->label) return fm_error_set(err, FM_EINVAL, "report: a classifier needs labels");
        for (size_t i = 0; i < in->n; i++)
            if (in->label[i] < 0 || (size_t)in->label[i] >= m->nclasses)
                return fm_error_set(err, FM_EINVAL,
                                    "report: the label of row %zu is %d, not a class index in "
                                    "[0, %zu)",
                                    i + 1, in->label[i], m->nclasses);
    }
    const struct {
        const cJSON *item;
        const char *name;
    } objects[] = {{in->importance, "importance"},
                   {in->mean_abs_attribution, "mean_abs_attribution"},
                   {in->fairness, "fairness"},
                   {in->fairness_mitigated, "fairness_mitigated"}};
    for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++)
        if (objects[i].item && !cJSON_IsObject(objects[i].item))
            return fm_error_set(err, FM_EINVAL, "report: %s is not a JSON object", objects[i].name);
    return FM_OK;
}

int fm_report_html_at(const fm_report_input_t *in, double threshold, fm_buf_t *out,
                      fm_error_t *err) {
    if (!out) return fm_error_set(err, FM_EINVAL, "report: no output buffer");
    int rc = check_input(in, threshold, err);
    if (rc) return rc;
    size_t start = out->len;
    fm_report_page_t page = {out, FM_OK, err, cJSON_CreateArray(), 0};
    cJSON *description = fm_model_describe(in->model);
    if (!page.charts || !description) fm_report_fail(&page, FM_ENOMEM, "out of memory");
    fm_report_context_t ctx = {in, description, threshold};
    if (!page.rc) {
        fm_report_page_begin(&page, &ctx);
        fm_report_section_card(&page, &ctx);
        fm_report_section_performance(&page, &ctx);
        fm_report_section_importance(&page, &ctx);
        fm_report_section_fairness(&page, &ctx);
        fm_report_page_end(&page, &ctx);
    }
    cJSON_Delete(page.charts);
    cJSON_Delete(description);
    if (page.rc && out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    return page.rc;
}

int fm_report_html(const fm_report_input_t *in, fm_buf_t *out, fm_error_t *err) {
    double threshold = 0.5;
    const cJSON *t = in ? cJSON_GetObjectItemCaseSensitive(in->fairness, "threshold") : NULL;
    if (cJSON_IsNumber(t)) threshold = t->valuedouble;
    return fm_report_html_at(in, threshold, out, err);
}

/* One stored attribute list as a fairness object, with the settings it was measured under. */
static cJSON *stored_object(const fm_model_t *m, const cJSON *stored, const cJSON *attributes) {
    cJSON *obj = cJSON_CreateObject(), *copy = cJSON_Duplicate(attributes, 1);
    if (!obj || !copy) {
        cJSON_Delete(obj);
        cJSON_Delete(copy);
        return NULL;
    }
    cJSON_AddStringToObject(obj, "target", m->target);
    cJSON_AddStringToObject(obj, "positive", m->classes[1]);
    static const char *const keys[] = {"threshold", "data", "rows"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(stored, keys[k]);
        if (v) cJSON_AddItemToObject(obj, keys[k], cJSON_Duplicate(v, 1));
    }
    cJSON_AddItemToObject(obj, "attributes", copy);
    return obj;
}

int fm_report_stored_mitigation(const fm_model_t *model, cJSON **before, cJSON **after) {
    *before = *after = NULL;
    const cJSON *stored = cJSON_GetObjectItemCaseSensitive(model->info, "fairness");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(stored, "before_mitigation");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(stored, "attributes");
    if (model->task != FM_TASK_BINARY || !cJSON_IsArray(b) || !cJSON_IsArray(a)) return 0;
    *before = stored_object(model, stored, b);
    *after = stored_object(model, stored, a);
    if (*before && *after) return 1;
    cJSON_Delete(*before);
    cJSON_Delete(*after);
    *before = *after = NULL;
    return 0;
}
