/*
 * Exact attributions of one-layer networks (linear, logistic and softmax regression): the score
 * is linear in the encoded row, so phi_j = w_j (x_j - b_j) with w the explained output's weight
 * column in score space (times target_std for a regression), summed per raw feature.
 */
#include "explain/explain_internal.h"

int fm_explain_linear(const fm_explainer_t *e, fm_explain_workspace_t *ws,
                      const fm_explain_call_t *call, fm_explanation_t *out) {
    const fm_net_t *net = e->net;
    const double *w = net->params + net->weight_offset[0];
    const double *x = call->x, *base = e->row[call->baseline];
    size_t nf = e->nf, nout = e->nout;
    fm_explain_net_scores(e, ws, x, 1, ws->scores);
    size_t k = fm_explain_pick_output(e, call->output, ws->scores);
    for (size_t j = 0; j < nf; j++)
        ws->phi_enc[j] = e->score_scale * w[j * nout + k] * (x[j] - base[j]);
    fm_explain_sum_columns(e, ws->phi_enc, out->phi);
    out->output = k;
    out->score = ws->scores[k];
    out->baseline_score = e->base_score[call->baseline][k];
    return FM_OK;
}
