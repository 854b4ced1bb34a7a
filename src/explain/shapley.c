/*
 * Exact Shapley values of the raw features with the baseline row as the single reference: the
 * value of a coalition S is the score of the row whose features in S come from x and the others
 * from the baseline (whole encoded blocks, so a one-hot block moves together), and
 * phi_i = sum over S not holding i of |S|! (M - |S| - 1)! / M! (v(S + i) - v(S)). All 2^M
 * coalition rows are scored in batches (the network's double forward pass, or the booster's
 * margins), then combined in O(2^M M).
 */
#include "explain/explain_internal.h"

#include <string.h>

/* Scores of rows[count * nf] into scores[count * nout]. */
static int score_rows(const fm_explainer_t *e, fm_explain_workspace_t *ws, const double *rows,
                      size_t count, double *scores, fm_error_t *err) {
    if (e->net) {
        fm_explain_net_scores(e, ws, rows, (int)count, scores);
        return FM_OK;
    }
    return fm_gbt_predict_margin(e->model->gbt, rows, count, scores, err);
}

int fm_explain_shapley(const fm_explainer_t *e, fm_explain_workspace_t *ws,
                       const fm_explain_call_t *call, fm_explanation_t *out, fm_error_t *err) {
    const fm_prep_t *prep = e->model->prep;
    const double *x = call->x, *base = e->row[call->baseline];
    size_t M = e->nraw, N = (size_t)1 << M, nf = e->nf, nout = e->nout;
    int rc = score_rows(e, ws, x, 1, ws->scores, err);
    if (rc) return rc;
    size_t k = fm_explain_pick_output(e, call->output, ws->scores);
    for (size_t start = 0; start < N; start += FM_EXPLAIN_CHUNK) {
        size_t count = N - start < FM_EXPLAIN_CHUNK ? N - start : FM_EXPLAIN_CHUNK;
        for (size_t i = 0; i < count; i++) {
            size_t mask = start + i;
            double *row = ws->coalitions + i * nf;
            for (size_t f = 0; f < M; f++) {
                const fm_prep_column_t *col = &prep->columns[e->raw[f]];
                const double *src = (mask >> f) & 1 ? x : base;
                memcpy(row + col->offset, src + col->offset, col->width * sizeof *row);
            }
        }
        if ((rc = score_rows(e, ws, ws->coalitions, count, ws->coalition_scores, err))) return rc;
        for (size_t i = 0; i < count; i++)
            ws->values[start + i] = ws->coalition_scores[i * nout + k];
    }
    memset(out->phi, 0, e->ncols * sizeof *out->phi);
    for (size_t f = 0; f < M; f++) {
        size_t bit = (size_t)1 << f;
        double s = 0.0;
        for (size_t mask = 0; mask < N; mask++)
            if (!(mask & bit))
                s += e->shapley_weight[__builtin_popcountll(mask)] *
                     (ws->values[mask | bit] - ws->values[mask]);
        out->phi[e->raw[f]] = s;
    }
    out->output = k;
    out->score = ws->values[N - 1];
    out->baseline_score = ws->values[0];
    return FM_OK;
}
