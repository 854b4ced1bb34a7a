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
