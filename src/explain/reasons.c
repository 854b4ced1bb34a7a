/*
 * Adverse-action reason codes: the features that pushed a binary decision toward decline the
 * most, largest first, each with the reason text configured at fit (or the default one). Only
 * attributions strictly toward decline qualify, so an applicant with fewer than k such features
 * gets fewer reasons. Works in place in the caller's array: no allocation.
 */
#include "explain/explain_internal.h"

size_t fm_explain_rank_reasons(const double *phi, const size_t *columns, size_t ncolumns, int sign,
                               size_t k, fm_reason_t *out) {
    size_t n = 0;
    for (size_t i = 0; i < ncolumns && k > 0; i++) {
        size_t c = columns[i];
        double v = sign * phi[c];
        if (!(v > 0.0)) continue;
        /* Insertion into the k best so far; equal values keep column order (columns ascend). */
        size_t at = n;
        while (at > 0 && sign * out[at - 1].contribution < v)
            at--;
        if (at >= k) continue;
        size_t last = n < k ? n : k - 1;
        for (size_t j = last; j > at; j--)
            out[j] = out[j - 1];
        out[at] = (fm_reason_t){c, phi[c], NULL};
        if (n < k) n++;
    }
    return n;
}

void fm_explain_reasons(const fm_explainer_t *e, const fm_explanation_t *x, size_t k,
                        fm_reason_t *reasons, size_t *n) {
    *n = 0;
    if (e->approve < 0) return;
    /* Approve is the positive class: low scores decline; approve negative: high scores do. */
    int sign = e->approve == 1 ? -1 : 1;
    *n = fm_explain_rank_reasons(x->phi, e->raw, e->nraw, sign, k, reasons);
    for (size_t i = 0; i < *n; i++)
        reasons[i].text = e->text[reasons[i].column];
}
