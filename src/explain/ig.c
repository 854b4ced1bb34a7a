/*
 * Integrated Gradients for multilayer networks, phi_j = (x_j - b_j) * integral_0^1 df/dx_j(b +
 * a (x - b)) da, and the double-precision network forward pass the other network methods share.
 *
 * The first layer is linear in the path position a: its pre-activation is h0 + a g with
 * h0 = b W0 + bias0 and g = (x - b) W0, so path points enter at the first hidden layer without a
 * product by W0 each, and because the input gradient at any point is W0 times the gradient at the
 * first pre-activation, the integral needs W0 once: phi = (x - b) * W0 (sum_p w_p delta0_p). The
 * deeper layers run as batches of path points (FM_EXPLAIN_CHUNK at a time) through the nn area's
 * dense and activation kernels (forward, then backward from the score).
 *
 * Piecewise-linear networks (relu or identity hidden layers) are integrated exactly. The path is
 * cut where a hidden unit changes sign: the first layer's cuts are -h0/g; a deeper layer is linear
 * between consecutive cuts of the layers before it, so its units' sign changes are found by
 * evaluating it at those cuts and interpolating (fm_explain_crossings). On each piece the gradient
 * is constant and is taken at the piece's midpoint. A path with more than the explainer's
 * capacity of cuts (only possible for very wide deep networks) falls back to Gauss-Legendre.
 * Smooth networks use Gauss-Legendre quadrature with `steps` nodes, exact for polynomials of
 * degree 2 steps - 1 and converging geometrically for analytic functions such as tanh networks.
 */
#include "explain/explain_internal.h"
#include "core/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Layer l's weights [sizes[l], sizes[l+1]] and bias. */
static const double *weight_of(const fm_net_t *net, int l) {
    return net->params + net->weight_offset[l];
}

static const double *bias_of(const fm_net_t *net, int l) {
    return net->params + net->bias_offset[l];
}

/*
 * With ws->pre[0][B, sizes[1]] filled: the hidden layers 0..upto (outputs in ws->act, deeper
 * pre-activations in ws->pre) and, when scores is not NULL, scores[B, nout] in score space.
 */
static void forward_hidden(const fm_explainer_t *e, fm_explain_workspace_t *ws, int B, int upto,
                           double *scores) {
    const fm_net_t *net = e->net;
    fm_activation_forward(ws->act[0], ws->pre[0], B, net->sizes[1], net->hidden);
    for (int h = 1; h <= upto; h++) {
        fm_dense_forward(ws->pre[h], ws->act[h - 1], weight_of(net, h), bias_of(net, h), B,
                         net->sizes[h], net->sizes[h + 1]);
        fm_activation_forward(ws->act[h], ws->pre[h], B, net->sizes[h + 1], net->hidden);
    }
    if (!scores) return;
    int last = net->nlayers - 1;
    fm_dense_forward(scores, ws->act[last - 1], weight_of(net, last), bias_of(net, last), B,
                     net->sizes[last], net->sizes[last + 1]);
    for (size_t i = 0; i < (size_t)B * e->nout; i++)
        scores[i] = e->score_offset + e->score_scale * scores[i];
}

void fm_explain_net_scores(const fm_explainer_t *e, fm_explain_workspace_t *ws, const double *x,
                           int B, double *scores) {
    const fm_net_t *net = e->net;
    if (net->nlayers == 1) {
        fm_dense_forward(scores, x, weight_of(net, 0), bias_of(net, 0), B, net->sizes[0],
                         net->sizes[1]);
        for (size_t i = 0; i < (size_t)B * e->nout; i++)
            scores[i] = e->score_offset + e->score_scale * scores[i];
        return;
    }
    for (int start = 0; start < B; start += FM_EXPLAIN_CHUNK) {
        int b = B - start < FM_EXPLAIN_CHUNK ? B - start : FM_EXPLAIN_CHUNK;
        fm_dense_forward(ws->pre[0], x + (size_t)start * e->nf, weight_of(net, 0), bias_of(net, 0),
                         b, net->sizes[0], net->sizes[1]);
        forward_hidden(e, ws, b, net->nlayers - 2, scores + (size_t)start * e->nout);
    }
}

/* The first layer's pre-activations at path positions alpha[P]: h0 + alpha g. */
static void path_first_layer(const fm_explainer_t *e, fm_explain_workspace_t *ws,
                             const double *alpha, int P) {
    size_t H = (size_t)e->net->sizes[1];
    for (int p = 0; p < P; p++) {
        double *row = ws->pre[0] + (size_t)p * H;
        for (size_t u = 0; u < H; u++)
            row[u] = ws->h0[u] + alpha[p] * ws->g[u];
    }
}

/*
 * Adds sum_p weight[p] * d score_k / d pre0 at the path positions alpha[P] to ws->delta_sum.
 */
static void accumulate(const fm_explainer_t *e, fm_explain_workspace_t *ws, const double *alpha,
                       const double *weight, int P, size_t k) {
    const fm_net_t *net = e->net;
    int last = net->nlayers - 1;
    path_first_layer(e, ws, alpha, P);
    forward_hidden(e, ws, P, last - 1, NULL);
    /* The score is linear in the last hidden layer's output: its gradient is column k of the
     * last weights, the same at every point. */
    size_t H = (size_t)net->sizes[last], nout = e->nout;
    const double *wl = weight_of(net, last);
    for (int p = 0; p < P; p++)
        for (size_t u = 0; u < H; u++)
            ws->grad_a[(size_t)p * H + u] = e->score_scale * wl[u * nout + k];
    double *cur = ws->grad_b, *next = ws->grad_a;
    fm_activation_backward(cur, ws->grad_a, ws->act[last - 1], P, (int)H, net->hidden);
    for (int h = last - 1; h >= 1; h--) {
        fm_dense_backward(next, ws->dweight, NULL, cur, ws->act[h - 1], weight_of(net, h), P,
                          net->sizes[h], net->sizes[h + 1]);
        fm_activation_backward(next, next, ws->act[h - 1], P, net->sizes[h], net->hidden);
        double *t = cur;
        cur = next;
        next = t;
    }
    size_t H0 = (size_t)net->sizes[1];
    for (int p = 0; p < P; p++) {
        const double *d = cur + (size_t)p * H0;
        for (size_t u = 0; u < H0; u++)
            ws->delta_sum[u] += weight[p] * d[u];
    }
}

void fm_explain_gauss_legendre(int n, double *node, double *weight) {
    /* Roots of P_n on [-1, 1] by Newton's method from cos(pi (i + 0.75) / (n + 0.5)), symmetric
     * pairs, then mapped to [0, 1] (weights halved). */
    int half = (n + 1) / 2;
    for (int i = 0; i < half; i++) {
        double z = cos(M_PI * (i + 0.75) / (n + 0.5)), dp = 1.0;
        for (int iter = 0; iter < 100; iter++) {
            double p0 = 1.0, p1 = z;
            for (int j = 2; j <= n; j++) {
                double p2 = ((2.0 * j - 1.0) * z * p1 - (j - 1.0) * p0) / j;
                p0 = p1;
                p1 = p2;
            }
            /* P_n'(z) = n (z P_n - P_{n-1}) / (z^2 - 1) */
            dp = n * (z * p1 - p0) / (z * z - 1.0);
            double dz = p1 / dp;
            z -= dz;
            if (fabs(dz) < 1e-16) break;
        }
        double w = 2.0 / ((1.0 - z * z) * dp * dp);
        /* z > 0 for i < half: node i from the right end, its mirror from the left. */
        node[n - 1 - i] = 0.5 * (1.0 + z);
        node[i] = 0.5 * (1.0 - z);
        weight[n - 1 - i] = 0.5 * w;
        weight[i] = 0.5 * w;
    }
    if (n % 2 == 1) node[n / 2] = 0.5;
}

int fm_explain_crossings(const double *alpha, const double *values, size_t npoints, size_t width,
                         double *found, size_t *nfound, size_t cap) {
    for (size_t p = 0; p + 1 < npoints; p++) {
        const double *a = values + p * width, *b = a + width;
        for (size_t u = 0; u < width; u++) {
            if (!((a[u] < 0.0 && b[u] > 0.0) || (a[u] > 0.0 && b[u] < 0.0))) continue;
            if (*nfound >= cap) return -1;
            double t = a[u] / (a[u] - b[u]);
            found[(*nfound)++] = alpha[p] + t * (alpha[p + 1] - alpha[p]);
        }
    }
    return 0;
}

int fm_explain_merge_breakpoints(double *breaks, size_t *nbreaks, size_t cap, double *found,
                                 size_t nfound) {
    if (nfound == 0) return 0;
    qsort(found, nfound, sizeof *found, fm_compare_double);
    size_t n = *nbreaks;
    if (n + nfound > cap) return -1;
    /* Merge from the back so that breaks can hold the result in place. */
    size_t i = n, j = nfound, k = n + nfound;
    while (j > 0) {
        if (i > 0 && breaks[i - 1] > found[j - 1])
            breaks[--k] = breaks[--i];
        else
            breaks[--k] = found[--j];
    }
    /* Drop near duplicates (a piece of width 1e-12 carries nothing). */
    size_t m = 1;
    for (size_t t = 1; t < n + nfound; t++) {
        if (breaks[t] - breaks[m - 1] > 1e-12)
            breaks[m++] = breaks[t];
        else if (t == n + nfound - 1)
            breaks[m - 1] = breaks[t]; /* keep the path's end, 1, exactly */
    }
    *nbreaks = m;
    return 0;
}

/* The cuts of a piecewise-linear path into ws->breaks; returns their number, or 0 when they do
 * not fit (the caller then integrates by quadrature). */
static size_t find_breakpoints(const fm_explainer_t *e, fm_explain_workspace_t *ws) {
    const fm_net_t *net = e->net;
    size_t cap = e->max_breakpoints, nb = 2, nfound = 0;
    ws->breaks[0] = 0.0;
    ws->breaks[1] = 1.0;
    if (net->hidden != FM_ACT_RELU) return nb;
    size_t H = (size_t)net->sizes[1];
    for (size_t u = 0; u < H; u++) {
        double a = ws->h0[u], b = a + ws->g[u];
        if (!((a < 0.0 && b > 0.0) || (a > 0.0 && b < 0.0))) continue;
        if (nfound + nb >= cap) return 0;
        ws->found[nfound++] = a / (a - b);
    }
    if (fm_explain_merge_breakpoints(ws->breaks, &nb, cap, ws->found, nfound)) return 0;
    for (int h = 1; h < net->nlayers - 1; h++) {
        nfound = 0;
        /* Consecutive chunks share their boundary position so every pair is compared once. */
        for (size_t start = 0; start + 1 < nb;) {
            size_t count = nb - start < FM_EXPLAIN_CHUNK ? nb - start : FM_EXPLAIN_CHUNK;
            path_first_layer(e, ws, ws->breaks + start, (int)count);
            forward_hidden(e, ws, (int)count, h, NULL);
            if (fm_explain_crossings(ws->breaks + start, ws->pre[h], count,
                                     (size_t)net->sizes[h + 1], ws->found, &nfound, cap - nb))
                return 0;
            start += count - 1;
        }
        if (fm_explain_merge_breakpoints(ws->breaks, &nb, cap, ws->found, nfound)) return 0;
    }
    return nb;
}

/* Gauss-Legendre nodes for n: the explainer's default, else cached in the workspace. */
static void nodes_for(const fm_explainer_t *e, fm_explain_workspace_t *ws, int n,
                      const double **node, const double **weight) {
    if (n == e->gl_n) {
        *node = e->gl_node;
        *weight = e->gl_weight;
        return;
    }
    if (ws->gl_n != n) {
        fm_explain_gauss_legendre(n, ws->gl_node, ws->gl_weight);
        ws->gl_n = n;
    }
    *node = ws->gl_node;
    *weight = ws->gl_weight;
}

int fm_explain_ig(const fm_explainer_t *e, fm_explain_workspace_t *ws,
                  const fm_explain_call_t *call, fm_explanation_t *out) {
    const fm_net_t *net = e->net;
    if (net->nlayers == 1) {
        /* A linear score: the gradient is constant and IG is the exact linear attribution. */
        int rc = fm_explain_linear(e, ws, call, out);
        out->method = FM_EXPLAIN_INTEGRATED_GRADIENTS;
        out->steps = 1;
        return rc;
    }
    const double *x = call->x, *base = e->row[call->baseline];
    size_t nf = e->nf, H = (size_t)net->sizes[1];
    for (size_t j = 0; j < nf; j++)
        ws->direction[j] = x[j] - base[j];
    fm_dense_forward(ws->h0, base, weight_of(net, 0), bias_of(net, 0), 1, (int)nf, (int)H);
    fm_dense_forward(ws->g, ws->direction, weight_of(net, 0), NULL, 1, (int)nf, (int)H);

    /* Both ends through the same arithmetic as the path, so completeness holds to rounding. */
    static const double ends[2] = {0.0, 1.0};
    double *end_scores = ws->coalition_scores;
    path_first_layer(e, ws, ends, 2);
    forward_hidden(e, ws, 2, net->nlayers - 2, end_scores);
    size_t k = fm_explain_pick_output(e, call->output, end_scores + e->nout);
    out->output = k;
    out->baseline_score = end_scores[k];
    out->score = end_scores[e->nout + k];

    memset(ws->delta_sum, 0, H * sizeof *ws->delta_sum);
    size_t nb = e->max_breakpoints ? find_breakpoints(e, ws) : 0;
    if (nb >= 2) {
        size_t pieces = nb - 1;
        for (size_t start = 0; start < pieces; start += FM_EXPLAIN_CHUNK) {
            size_t count = pieces - start < FM_EXPLAIN_CHUNK ? pieces - start : FM_EXPLAIN_CHUNK;
            for (size_t i = 0; i < count; i++) {
                double lo = ws->breaks[start + i], hi = ws->breaks[start + i + 1];
                ws->alpha[i] = 0.5 * (lo + hi);
                ws->weight[i] = hi - lo;
            }
            accumulate(e, ws, ws->alpha, ws->weight, (int)count, k);
        }
        out->steps = (int)pieces;
    } else {
        const double *node, *weight;
        nodes_for(e, ws, call->steps, &node, &weight);
        for (int start = 0; start < call->steps; start += FM_EXPLAIN_CHUNK) {
            int count =
                call->steps - start < FM_EXPLAIN_CHUNK ? call->steps - start : FM_EXPLAIN_CHUNK;
            accumulate(e, ws, node + start, weight + start, count, k);
        }
        out->steps = call->steps;
    }
    /* phi_j = d_j * (W0 . delta_sum)_j */
    const double *w0 = weight_of(net, 0);
    for (size_t j = 0; j < nf; j++) {
        const double *row = w0 + j * H;
        double s = 0.0;
        for (size_t u = 0; u < H; u++)
            s += row[u] * ws->delta_sum[u];
        ws->phi_enc[j] = ws->direction[j] * s;
    }
    fm_explain_sum_columns(e, ws->phi_enc, out->phi);
    return FM_OK;
}
