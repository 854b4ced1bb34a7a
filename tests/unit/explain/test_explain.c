/*
 * Unit tests of the explain area's pure logic and of small hand-built networks: Gauss-Legendre
 * nodes against their closed forms, sign-change detection and breakpoint merging, the order of
 * reason codes, and Integrated Gradients on tiny relu and tanh networks against an analytic
 * answer and a naive midpoint sum with 200,000 steps written here, plus argument checking.
 */
#include "explain/explain_internal.h"
#include "fm_test.h"
#include "fm_test_frame.h"

#include <unistd.h>

static void test_gauss_legendre(void) {
    double node[64], weight[64];
    fm_explain_gauss_legendre(1, node, weight);
    FM_CHECK_NEAR(node[0], 0.5, 1e-15);
    FM_CHECK_NEAR(weight[0], 1.0, 1e-15);
    fm_explain_gauss_legendre(2, node, weight);
    FM_CHECK_NEAR(node[0], 0.5 - 0.5 / sqrt(3.0), 1e-15);
    FM_CHECK_NEAR(node[1], 0.5 + 0.5 / sqrt(3.0), 1e-15);
    FM_CHECK_NEAR(weight[0], 0.5, 1e-15);
    fm_explain_gauss_legendre(3, node, weight);
    FM_CHECK_NEAR(node[0], 0.5 - 0.5 * sqrt(0.6), 1e-15);
    FM_CHECK_NEAR(node[1], 0.5, 1e-15);
    FM_CHECK_NEAR(weight[0], 5.0 / 18.0, 1e-15);
    FM_CHECK_NEAR(weight[1], 4.0 / 9.0, 1e-15);
    /* 50 nodes integrate x^99 exactly and sum to 1; nodes ascend inside (0, 1). */
    fm_explain_gauss_legendre(50, node, weight);
    double sum = 0.0, poly = 0.0;
    int ascending = 1;
    for (int i = 0; i < 50; i++) {
        sum += weight[i];
        poly += weight[i] * pow(node[i], 99);
        if (i && node[i] <= node[i - 1]) ascending = 0;
    }
    FM_CHECK(ascending && node[0] > 0.0 && node[49] < 1.0);
    FM_CHECK_NEAR(sum, 1.0, 1e-14);
    FM_CHECK_NEAR(poly, 0.01, 1e-14);
    FM_CHECK_NEAR(node[0], 0.5 * (1.0 - 0.99886640442007105), 1e-14);
}

static void test_crossings_and_merge(void) {
    /* Two units at three positions: unit 0 goes -1 -> 1 -> 3 (zero at 0.25), unit 1 goes
     * 2 -> 1 -> -1 (zero at 0.5 + 0.5 * 1/2 = 0.75); an exact zero is not a strict change. */
    double alpha[3] = {0.0, 0.5, 1.0};
    double values[6] = {-1.0, 2.0, 1.0, 1.0, 3.0, -1.0};
    double found[8];
    size_t n = 0;
    FM_CHECK_INT(fm_explain_crossings(alpha, values, 3, 2, found, &n, 8), 0);
    FM_CHECK_INT(n, 2);
    FM_CHECK_NEAR(found[0], 0.25, 1e-15);
    FM_CHECK_NEAR(found[1], 0.75, 1e-15);
    double zero[4] = {0.0, 1.0, 2.0, -1.0};
    n = 0;
    FM_CHECK_INT(fm_explain_crossings(alpha, zero, 2, 2, found, &n, 8), 0);
    FM_CHECK_INT(n, 1);
    n = 0;
    FM_CHECK_INT(fm_explain_crossings(alpha, values, 3, 2, found, &n, 1), -1);

    double breaks[8] = {0.0, 0.5, 1.0};
    size_t nb = 3;
    double add[4] = {0.75, 0.25, 0.5 + 1e-14, 0.25};
    FM_CHECK_INT(fm_explain_merge_breakpoints(breaks, &nb, 8, add, 4), 0);
    FM_CHECK_INT(nb, 5);
    double want[5] = {0.0, 0.25, 0.5, 0.75, 1.0};
    for (size_t i = 0; i < 5; i++)
        FM_CHECK_NEAR(breaks[i], want[i], 1e-13);
    FM_CHECK(breaks[nb - 1] == 1.0);
    double more[2] = {0.1, 0.2};
    FM_CHECK_INT(fm_explain_merge_breakpoints(breaks, &nb, 6, more, 2), -1);
}

static void test_rank_reasons(void) {
    double phi[7] = {-0.5, 0.3, -2.0, 0.0, -0.5, -1.0, 4.0};
    size_t columns[6] = {0, 1, 2, 3, 4, 5}; /* column 6 is not a feature */
    fm_reason_t r[6];
    size_t n = fm_explain_rank_reasons(phi, columns, 6, -1, 3, r);
    FM_CHECK_INT(n, 3);
    FM_CHECK_INT(r[0].column, 2);
    FM_CHECK_INT(r[1].column, 5);
    FM_CHECK_INT(r[2].column, 0); /* ties keep column order: 0 before 4 */
    FM_CHECK_NEAR(r[0].contribution, -2.0, 0.0);
    n = fm_explain_rank_reasons(phi, columns, 6, -1, 6, r);
    FM_CHECK_INT(n, 4); /* strictly negative only: 0.0 and positives never */
    FM_CHECK_INT(r[3].column, 4);
    n = fm_explain_rank_reasons(phi, columns, 6, 1, 6, r);
    FM_CHECK_INT(n, 1);
    FM_CHECK_INT(r[0].column, 1);
    FM_CHECK_INT(fm_explain_rank_reasons(phi, columns, 6, -1, 0, r), 0);
}

static void test_method_names(void) {
    for (int m = FM_EXPLAIN_AUTO; m <= FM_EXPLAIN_SHAPLEY; m++) {
        fm_explain_method_t back;
        FM_CHECK_INT(fm_explain_method_parse(fm_explain_method_name(m), &back), FM_OK);
        FM_CHECK_INT(back, m);
    }
    fm_explain_method_t out;
    FM_CHECK_INT(fm_explain_method_parse("ig", &out), FM_EINVAL);
    FM_CHECK_INT(fm_explain_method_parse(NULL, &out), FM_EINVAL);
    FM_CHECK_STR(fm_explain_method_name((fm_explain_method_t)99), "unknown");
    fm_explain_request_t r;
    fm_explain_request_defaults(&r);
    FM_CHECK(r.method == FM_EXPLAIN_AUTO && r.steps == 0 && r.baseline == FM_EXPLAIN_REFERENCE &&
             r.output == -1);
}

/* A binary network over two numeric columns a, b (encoded as standardised values) with the given
 * layer sizes and activation; weights set by the caller. */
static fm_model_t *tiny_model(const int *sizes, int nsizes, fm_activation_t hidden) {
    fm_error_t err;
    fm_frame_t *frame = fm_test_frame_from_text("a,b,y\n1,2,yes\n3,1,no\n2,5,yes\n0,0,no\n", NULL);
    fm_model_t *m = fm_model_new();
    int rc = frame ? FM_OK : FM_EIO;
    size_t cols[2] = {0, 1};
    fm_prep_options_t options = {0, 0};
    if (!rc) rc = fm_prep_fit(frame, cols, 2, NULL, 0, &options, &m->prep, &err);
    fm_frame_free(frame);
    if (!rc) rc = fm_net_new(sizes, nsizes, hidden, FM_ACT_SIGMOID, &m->net, &err);
    FM_CHECK_MSG(rc == FM_OK, "%s", err.msg);
    m->task = FM_TASK_BINARY;
    m->family = strdup("mlp");
    m->target = strdup("y");
    m->nclasses = 2;
    m->classes = calloc(2, sizeof *m->classes);
    m->classes[0] = strdup("no");
    m->classes[1] = strdup("yes");
    m->loss = FM_LOSS_BINARY;
    return m;
}

/* The naive reference: score and input gradient of a dense network by plain loops. */
static double naive_forward(const fm_net_t *net, const double *x, double *grad) {
    double act[FM_NET_MAX_LAYERS + 1][64], pre[FM_NET_MAX_LAYERS + 1][64];
    for (int i = 0; i < net->sizes[0]; i++)
        act[0][i] = x[i];
    int L = net->nlayers;
    for (int l = 0; l < L; l++) {
        const double *w = net->params + net->weight_offset[l],
                     *b = net->params + net->bias_offset[l];
        for (int o = 0; o < net->sizes[l + 1]; o++) {
            double s = b[o];
            for (int i = 0; i < net->sizes[l]; i++)
                s += act[l][i] * w[i * net->sizes[l + 1] + o];
            pre[l + 1][o] = s;
            act[l + 1][o] = l == L - 1 ? s : net->hidden == FM_ACT_RELU ? (s > 0 ? s : 0) : tanh(s);
        }
    }
    double d[64] = {1.0}, dn[64];
    for (int l = L - 1; l >= 0; l--) {
        const double *w = net->params + net->weight_offset[l];
        for (int o = 0; o < net->sizes[l + 1]; o++) {
            if (l == L - 1) continue;
            double s = pre[l + 1][o];
            d[o] *= net->hidden == FM_ACT_RELU ? (s > 0) : 1.0 - tanh(s) * tanh(s);
        }
        for (int i = 0; i < net->sizes[l]; i++) {
            dn[i] = 0.0;
            for (int o = 0; o < net->sizes[l + 1]; o++)
                dn[i] += w[i * net->sizes[l + 1] + o] * d[o];
        }
        memcpy(d, dn, sizeof d);
    }
    for (int i = 0; i < net->sizes[0]; i++)
        grad[i] = d[i];
    return pre[L][0];
}

static void test_ig_analytic_relu(void) {
    int sizes[3] = {2, 2, 1};
    fm_model_t *m = tiny_model(sizes, 3, FM_ACT_RELU);
    double *p = m->net->params;
    double w0[4] = {1, -1, 1, 1}, b0[2] = {-0.5, 0.25}, w1[2] = {2, 3}, b1 = 0.1;
    memcpy(p + m->net->weight_offset[0], w0, sizeof w0);
    memcpy(p + m->net->bias_offset[0], b0, sizeof b0);
    memcpy(p + m->net->weight_offset[1], w1, sizeof w1);
    p[m->net->bias_offset[1]] = b1;
    fm_error_t err;
    FM_CHECK_INT(fm_model_ready(m, &err), FM_OK);
    fm_explainer_t *e = NULL;
    fm_explain_workspace_t *ws = NULL;
    FM_CHECK_INT(fm_explainer_new(m, &e, &err), FM_OK);
    FM_CHECK_INT(fm_explain_workspace_new(e, &ws, &err), FM_OK);
    FM_CHECK_INT(fm_explainer_method(e), FM_EXPLAIN_INTEGRATED_GRADIENTS);
    FM_CHECK_INT(fm_explainer_approve_class(e), 1);
    /* No stored member: the baseline is the encoded centre, 0. Along alpha (1, 1) unit 0 turns
     * on at alpha = 0.25, unit 1 stays on: phi = (0.75 * 2 - 3, 0.75 * 2 + 3). */
    double x[2] = {1.0, 1.0}, phi[2];
    fm_explanation_t ex = {.phi = phi};
    FM_CHECK_INT(fm_explain_row(e, ws, x, NULL, &ex, &err), FM_OK);
    FM_CHECK_INT(ex.steps, 2);
    FM_CHECK_NEAR(phi[0], -1.5, 1e-12);
    FM_CHECK_NEAR(phi[1], 4.5, 1e-12);
    FM_CHECK_NEAR(ex.score, 2 * 1.5 + 0.75 + 0.1, 1e-12);
    FM_CHECK_NEAR(ex.baseline_score, 0.85, 1e-12);
    fm_reason_t reasons[4];
    size_t n;
    fm_explain_reasons(e, &ex, 4, reasons, &n);
    FM_CHECK_INT(n, 1);
    FM_CHECK_INT(reasons[0].column, 0);
    FM_CHECK_STR(reasons[0].text, "a: value weighs against approval");

    /* Requests that do not apply. */
    fm_explain_request_t r;
    fm_explain_request_defaults(&r);
    r.method = FM_EXPLAIN_TREESHAP;
    FM_CHECK_INT(fm_explain_row(e, ws, x, &r, &ex, &err), FM_EINVAL);
    r.method = FM_EXPLAIN_LINEAR;
    FM_CHECK_INT(fm_explain_row(e, ws, x, &r, &ex, &err), FM_EINVAL);
    r.method = FM_EXPLAIN_AUTO;
    r.steps = FM_EXPLAIN_MAX_STEPS + 1;
    FM_CHECK_INT(fm_explain_row(e, ws, x, &r, &ex, &err), FM_EINVAL);
    r.steps = -1;
    FM_CHECK_INT(fm_explain_row(e, ws, x, &r, &ex, &err), FM_EINVAL);
    r.steps = 0;
    r.baseline = (fm_explain_baseline_t)5;
    FM_CHECK_INT(fm_explain_row(e, ws, x, &r, &ex, &err), FM_EINVAL);
    /* Shapley applies to two features: exact values of a 2-player game. */
    r.baseline = FM_EXPLAIN_REFERENCE;
    r.method = FM_EXPLAIN_SHAPLEY;
    FM_CHECK_INT(fm_explain_row(e, ws, x, &r, &ex, &err), FM_OK);
    double g[2], f11 = naive_forward(m->net, x, g),
                 f00 = naive_forward(m->net, (double[]){0, 0}, g),
                 f10 = naive_forward(m->net, (double[]){1, 0}, g),
                 f01 = naive_forward(m->net, (double[]){0, 1}, g);
    FM_CHECK_NEAR(phi[0], 0.5 * (f10 - f00) + 0.5 * (f11 - f01), 1e-12);
    FM_CHECK_NEAR(phi[1], 0.5 * (f01 - f00) + 0.5 * (f11 - f10), 1e-12);

    /* Fitting: no rows, and settings out of range. */
    fm_explain_fit_options_t o;
    fm_explain_fit_options_defaults(&o);
    FM_CHECK_INT(fm_explain_fit(m, x, 0, &o, &err), FM_EDATA);
    o.cutoff = 1.0;
    FM_CHECK_INT(fm_explain_fit(m, x, 1, &o, &err), FM_EINVAL);
    o.cutoff = 0.5;
    o.approve = "maybe";
    FM_CHECK_INT(fm_explain_fit(m, x, 1, &o, &err), FM_EINVAL);
    fm_explain_workspace_free(ws);
    fm_explainer_free(e);
    fm_model_free(m);
}

/* IG of random 2-5-4-1 networks against a naive midpoint sum: exact pieces for relu, Gauss-Legendre
 * for tanh. */
static void check_random_net(fm_activation_t hidden, double tolerance) {
    int sizes[4] = {2, 5, 4, 1};
    fm_model_t *m = tiny_model(sizes, 4, hidden);
    fm_rng_t rng;
    fm_rng_seed(&rng, 7);
    fm_net_init_weights(m->net, &rng);
    for (size_t i = 0; i < m->net->nparams; i++)
        m->net->params[i] += 0.3 * (fm_rng_uniform(&rng) - 0.5);
    fm_error_t err;
    FM_CHECK_INT(fm_model_ready(m, &err), FM_OK);
    fm_explainer_t *e = NULL;
    fm_explain_workspace_t *ws = NULL;
    FM_CHECK_INT(fm_explainer_new(m, &e, &err), FM_OK);
    FM_CHECK_INT(fm_explain_workspace_new(e, &ws, &err), FM_OK);
    double worst = 0.0;
    for (int trial = 0; trial < 5; trial++) {
        double x[2] = {4 * fm_rng_uniform(&rng) - 2, 4 * fm_rng_uniform(&rng) - 2}, phi[2];
        fm_explanation_t ex = {.phi = phi};
        FM_CHECK_INT(fm_explain_row(e, ws, x, NULL, &ex, &err), FM_OK);
        const int N = 200000;
        double sum[2] = {0, 0}, g[2], pt[2];
        for (int s = 0; s < N; s++) {
            double a = (s + 0.5) / N;
            pt[0] = a * x[0];
            pt[1] = a * x[1];
            naive_forward(m->net, pt, g);
            sum[0] += g[0] / N;
            sum[1] += g[1] / N;
        }
        double want[2] = {x[0] * sum[0], x[1] * sum[1]};
        double d = fm_test_max_diff("IG vs naive midpoint sum", phi, want, 2);
        if (d > worst) worst = d;
        FM_CHECK_NEAR(phi[0] + phi[1], ex.score - ex.baseline_score, 1e-10);
        FM_CHECK_NEAR(ex.score, naive_forward(m->net, x, g), 1e-12);
    }
    FM_CHECK(worst <= tolerance);
    fm_explain_workspace_free(ws);
    fm_explainer_free(e);
    fm_model_free(m);
}

/* The midpoint sum itself errs by about (gradient jump) / N at each kink. */
static void test_ig_random_relu(void) {
    check_random_net(FM_ACT_RELU, 2e-5);
}

static void test_ig_random_tanh(void) {
    check_random_net(FM_ACT_TANH, 1e-6);
}

FM_TEST_MAIN(FM_TEST_CASE(test_gauss_legendre), FM_TEST_CASE(test_crossings_and_merge),
             FM_TEST_CASE(test_rank_reasons), FM_TEST_CASE(test_method_names),
             FM_TEST_CASE(test_ig_analytic_relu), FM_TEST_CASE(test_ig_random_relu),
             FM_TEST_CASE(test_ig_random_tanh))
