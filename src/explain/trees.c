/*
 * TreeSHAP attributions of gradient-boosted trees: exact TreeSHAP feature contributions in margin
 * space (fm_gbt_shap: XGBoost's "pred_contribs" values, computed by finmaas from a compact copy of
 * the trees, without XGBoost and without allocating), summed per raw feature. Against the
 * population baseline they are used as they are and the baseline score is XGBoost's bias (the
 * trees' expected margin); against a stored reference group, the group's mean contribution per
 * feature is subtracted and the baseline score is the group's mean margin, so completeness holds
 * against the group. The score is the sum of the contributions and the bias, which is the margin
 * XGBoost computes.
 */
#include "explain/explain_internal.h"

int fm_explain_treeshap(const fm_explainer_t *e, fm_explain_workspace_t *ws,
                        const fm_explain_call_t *call, fm_explanation_t *out, fm_error_t *err) {
    size_t nf = e->nf, nout = e->nout;
    int rc = fm_gbt_shap(e->model->gbt, call->x, ws->contrib, err);
    if (rc) return rc;
    for (size_t k = 0; k < nout; k++) {
        const double *c = ws->contrib + k * (nf + 1);
        double total = 0.0;
        for (size_t j = 0; j <= nf; j++)
            total += c[j];
        ws->scores[k] = total;
    }
    size_t k = fm_explain_pick_output(e, call->output, ws->scores);
    const double *c = ws->contrib + k * (nf + 1);
    fm_explain_sum_columns(e, c, out->phi);
    out->output = k;
    out->score = ws->scores[k];
    const double *group = e->group_phi[call->baseline];
    if (group) {
        group += k * e->ncols;
        for (size_t col = 0; col < e->ncols; col++)
            out->phi[col] -= group[col];
        out->baseline_score = e->base_score[call->baseline][k];
    } else {
        out->baseline_score = c[nf];
    }
    return FM_OK;
}
