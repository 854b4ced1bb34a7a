/*
 * Tests of the dense layer and the activations: the CBLAS kernels against their naive references
 * on many shapes (including single rows, single inputs and single outputs, where dgemv and outer
 * products replace dgemm), every backward pass against central finite differences, and the
 * numerical edge cases (sigmoid and softmax at huge inputs, relu's derivative at 0).
 */
#include "fm_test.h"
#include "nn/nn.h"
#include "nn_check.h"

#include <string.h>

static const int shapes[][3] = {
    {1, 1, 1},     {1, 5, 3},    {7, 1, 4},   {9, 6, 1},   {1, 7, 1},
    {13, 17, 11},  {5, 3, 2},    {33, 1, 1},  {2, 2, 2},   {64, 30, 32},
    {200, 32, 16}, {200, 16, 1}, {3, 101, 7}, {127, 9, 5}, {1, 64, 64},
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static void fill_nan(double *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        x[i] = NAN;
}

static void test_dense_forward_matches_naive(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 1);
    for (size_t s = 0; s < NSHAPES; s++) {
        int B = shapes[s][0], I = shapes[s][1], O = shapes[s][2];
        double *in = nn_random_array(&rng, (size_t)B * I, -1, 1);
        double *w = nn_random_array(&rng, (size_t)I * O, -1, 1);
        double *bias = nn_random_array(&rng, (size_t)O, -1, 1);
        double *out = malloc((size_t)B * O * sizeof *out);
        double *ref = malloc((size_t)B * O * sizeof *ref);
        char label[64];
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            const double *b = with_bias ? bias : NULL;
            /* NaN in the output proves every path overwrites rather than accumulates */
            fill_nan(out, (size_t)B * O);
            fm_dense_forward(out, in, w, b, B, I, O);
            fm_dense_forward_naive(ref, in, w, b, B, I, O);
            snprintf(label, sizeof label, "forward B=%d I=%d O=%d bias=%d", B, I, O, with_bias);
            FM_CHECK(nn_max_relative_diff(label, out, ref, (size_t)B * O) <= 1e-12);
        }
        free(in);
        free(w);
        free(bias);
        free(out);
        free(ref);
    }
}

static void test_dense_backward_matches_naive(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 2);
    for (size_t s = 0; s < NSHAPES; s++) {
        int B = shapes[s][0], I = shapes[s][1], O = shapes[s][2];
        double *in = nn_random_array(&rng, (size_t)B * I, -1, 1);
        double *w = nn_random_array(&rng, (size_t)I * O, -1, 1);
        double *dout = nn_random_array(&rng, (size_t)B * O, -1, 1);
        double *din = malloc((size_t)B * I * sizeof *din),
               *din_ref = malloc((size_t)B * I * sizeof(double));
        double *dw = malloc((size_t)I * O * sizeof *dw),
               *dw_ref = malloc((size_t)I * O * sizeof(double));
        double *db = malloc((size_t)O * sizeof *db), *db_ref = malloc((size_t)O * sizeof(double));
        fill_nan(din, (size_t)B * I);
        fill_nan(dw, (size_t)I * O);
        fill_nan(db, (size_t)O);
        fm_dense_backward(din, dw, db, dout, in, w, B, I, O);
        fm_dense_backward_naive(din_ref, dw_ref, db_ref, dout, in, w, B, I, O);
        char label[64];
        snprintf(label, sizeof label, "dinput  B=%d I=%d O=%d", B, I, O);
        FM_CHECK(nn_max_relative_diff(label, din, din_ref, (size_t)B * I) <= 1e-12);
        snprintf(label, sizeof label, "dweight B=%d I=%d O=%d", B, I, O);
        FM_CHECK(nn_max_relative_diff(label, dw, dw_ref, (size_t)I * O) <= 1e-12);
        snprintf(label, sizeof label, "dbias   B=%d I=%d O=%d", B, I, O);
        FM_CHECK(nn_max_relative_diff(label, db, db_ref, (size_t)O) <= 1e-12);

        /* NULL dinput and dbias are skipped; dweight is unchanged by skipping them */
        fill_nan(dw, (size_t)I * O);
        fm_dense_backward(NULL, dw, NULL, dout, in, w, B, I, O);
        FM_CHECK(fm_test_max_diff("dweight without dinput/dbias", dw, dw_ref, (size_t)I * O) <=
                 1e-12 * (1 + B));
        free(in);
        free(w);
        free(dout);
        free(din);
        free(din_ref);
        free(dw);
        free(dw_ref);
        free(db);
        free(db_ref);
    }
}

static void test_dense_empty_batch(void) {
    /* B = 0: nothing to write forward; the gradients of an empty sum are zero */
    double w[6] = {1, 2, 3, 4, 5, 6}, dw[6], db[3];
    double sentinel = 7.0;
    fm_dense_forward(&sentinel, NULL, w, NULL, 0, 2, 3);
    FM_CHECK(sentinel == 7.0);
    fill_nan(dw, 6);
    fill_nan(db, 3);
    fm_dense_backward(NULL, dw, db, NULL, NULL, w, 0, 2, 3);
    for (int i = 0; i < 6; i++)
        FM_CHECK(dw[i] == 0.0);
    for (int i = 0; i < 3; i++)
        FM_CHECK(db[i] == 0.0);
}

/* f = sum(dense_forward(in, w, b) * r): its gradient is fm_dense_backward with dout = r. */
typedef struct {
    double *in, *w, *b, *r, *out;
    int B, I, O;
} dense_ctx_t;

static double dense_objective(void *p) {
    dense_ctx_t *c = p;
    fm_dense_forward_naive(c->out, c->in, c->w, c->b, c->B, c->I, c->O);
    double sum = 0.0;
    for (size_t i = 0; i < (size_t)c->B * c->O; i++)
        sum += c->out[i] * c->r[i];
    return sum;
}

static void test_dense_backward_finite_differences(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 3);
    static const int cases[][3] = {{1, 1, 1}, {4, 3, 2}, {6, 5, 1}, {1, 4, 3}, {9, 7, 5}};
    for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++) {
        dense_ctx_t c = {.B = cases[s][0], .I = cases[s][1], .O = cases[s][2]};
        size_t nin = (size_t)c.B * c.I, nw = (size_t)c.I * c.O, nout = (size_t)c.B * c.O;
        c.in = nn_random_array(&rng, nin, -1, 1);
        c.w = nn_random_array(&rng, nw, -1, 1);
        c.b = nn_random_array(&rng, (size_t)c.O, -1, 1);
        c.r = nn_random_array(&rng, nout, -1, 1);
        c.out = malloc(nout * sizeof *c.out);
        double *din = malloc(nin * sizeof *din), *dw = malloc(nw * sizeof *dw);
        double *db = malloc((size_t)c.O * sizeof *db);
        fm_dense_backward(din, dw, db, c.r, c.in, c.w, c.B, c.I, c.O);
        char label[64];
        snprintf(label, sizeof label, "dense dinput  B=%d I=%d O=%d", c.B, c.I, c.O);
        FM_CHECK(nn_gradient_check(label, c.in, nin, din, dense_objective, &c) <= NN_FD_TOLERANCE);
        snprintf(label, sizeof label, "dense dweight B=%d I=%d O=%d", c.B, c.I, c.O);
        FM_CHECK(nn_gradient_check(label, c.w, nw, dw, dense_objective, &c) <= NN_FD_TOLERANCE);
        snprintf(label, sizeof label, "dense dbias   B=%d I=%d O=%d", c.B, c.I, c.O);
        FM_CHECK(nn_gradient_check(label, c.b, (size_t)c.O, db, dense_objective, &c) <=
                 NN_FD_TOLERANCE);
        free(c.in);
        free(c.w);
        free(c.b);
        free(c.r);
        free(c.out);
        free(din);
        free(dw);
        free(db);
    }
}

/* f = sum(act(in) * r): its gradient is fm_activation_backward with dout = r. */
typedef struct {
    double *in, *r, *out;
    int B, O;
    fm_activation_t act;
} act_ctx_t;

static double activation_objective(void *p) {
    act_ctx_t *c = p;
    fm_activation_forward(c->out, c->in, c->B, c->O, c->act);
    double sum = 0.0;
    for (size_t i = 0; i < (size_t)c->B * c->O; i++)
        sum += c->out[i] * c->r[i];
    return sum;
}

static void test_activation_backward_finite_differences(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 4);
    for (int a = FM_ACT_IDENTITY; a <= FM_ACT_SOFTMAX; a++) {
        act_ctx_t c = {.B = 5, .O = 4, .act = (fm_activation_t)a};
        size_t n = (size_t)c.B * c.O;
        c.in = nn_random_array(&rng, n, -3, 3);
        /* keep relu's inputs clear of its kink, where a finite difference is meaningless */
        for (size_t i = 0; i < n; i++)
            if (fabs(c.in[i]) < 0.01) c.in[i] = 0.5;
        c.r = nn_random_array(&rng, n, -1, 1);
        c.out = malloc(n * sizeof *c.out);
        double *din = malloc(n * sizeof *din);
        fm_activation_forward(c.out, c.in, c.B, c.O, c.act);
        fm_activation_backward(din, c.r, c.out, c.B, c.O, c.act);
        char label[64];
        snprintf(label, sizeof label, "activation %s backward", fm_activation_name(c.act));
        FM_CHECK(nn_gradient_check(label, c.in, n, din, activation_objective, &c) <=
                 NN_FD_TOLERANCE);

        /* in place: din may equal dout, out may equal in (the check above left c.out stale) */
        fm_activation_forward(c.out, c.in, c.B, c.O, c.act);
        double *g = malloc(n * sizeof *g);
        memcpy(g, c.r, n * sizeof *g);
        fm_activation_backward(g, g, c.out, c.B, c.O, c.act);
        FM_CHECK(fm_test_max_diff("backward in place", g, din, n) == 0.0);
        memcpy(g, c.in, n * sizeof *g);
        fm_activation_forward(g, g, c.B, c.O, c.act);
        FM_CHECK(fm_test_max_diff("forward in place", g, c.out, n) == 0.0);
        free(g);
        free(c.in);
        free(c.r);
        free(c.out);
        free(din);
    }
}

static void test_activation_values(void) {
    double in[6] = {-1000.0, -30.0, 0.0, 2.0, 30.0, 1000.0}, out[6];
    fm_activation_forward(out, in, 1, 6, FM_ACT_SIGMOID);
    for (int i = 0; i < 6; i++) {
        FM_CHECK(isfinite(out[i]) && out[i] >= 0.0 && out[i] <= 1.0);
        if (fabs(in[i]) < 100) FM_CHECK_NEAR(out[i], 1.0 / (1.0 + exp(-in[i])), 1e-16);
    }
    FM_CHECK(out[0] == 0.0);
    FM_CHECK(out[5] == 1.0);
    FM_CHECK_NEAR(out[1], exp(-30.0) / (1.0 + exp(-30.0)), 1e-28);

    fm_activation_forward(out, in, 1, 6, FM_ACT_TANH);
    for (int i = 0; i < 6; i++)
        FM_CHECK_NEAR(out[i], tanh(in[i]), 0.0);

    fm_activation_forward(out, in, 2, 3, FM_ACT_RELU);
    for (int i = 0; i < 6; i++)
        FM_CHECK(out[i] == (in[i] > 0 ? in[i] : 0.0));
    /* relu's derivative is 0 at 0 */
    double dout[6] = {1, 1, 1, 1, 1, 1}, din[6];
    fm_activation_backward(din, dout, out, 2, 3, FM_ACT_RELU);
    FM_CHECK(din[2] == 0.0 && din[0] == 0.0 && din[3] == 1.0);

    /* softmax of huge logits stays finite, sums to 1 per row, and matches the formula */
    double big[6] = {1000.0, 1001.0, 999.0, -5.0, 0.0, 5.0}, p[6];
    fm_activation_forward(p, big, 2, 3, FM_ACT_SOFTMAX);
    for (int b = 0; b < 2; b++) {
        /* the formula exp(z_k) / sum_j exp(z_j), with z shifted by a constant the test picks */
        double shift = b == 0 ? 1000.0 : 0.0, sum = 0.0, denom = 0.0;
        for (int k = 0; k < 3; k++)
            denom += exp(big[3 * b + k] - shift);
        for (int k = 0; k < 3; k++) {
            FM_CHECK(isfinite(p[3 * b + k]));
            FM_CHECK_NEAR(p[3 * b + k], exp(big[3 * b + k] - shift) / denom, 1e-15);
            sum += p[3 * b + k];
        }
        FM_CHECK_NEAR(sum, 1.0, 1e-15);
    }
    /* a one-wide softmax is the constant 1 */
    double one = 123.0;
    fm_activation_forward(&one, &one, 1, 1, FM_ACT_SOFTMAX);
    FM_CHECK(one == 1.0);
}

static void test_activation_names(void) {
    for (int a = FM_ACT_IDENTITY; a <= FM_ACT_SOFTMAX; a++) {
        fm_activation_t parsed = FM_ACT_SOFTMAX;
        FM_CHECK_INT(fm_activation_parse(fm_activation_name((fm_activation_t)a), &parsed), FM_OK);
        FM_CHECK_INT(parsed, a);
    }
    fm_activation_t act = FM_ACT_RELU;
    FM_CHECK_INT(fm_activation_parse("linear", &act), FM_OK);
    FM_CHECK_INT(act, FM_ACT_IDENTITY);
    FM_CHECK_STR(fm_activation_name(FM_ACT_SIGMOID), "sigmoid");
    FM_CHECK_INT(fm_activation_parse("Relu", &act), FM_EINVAL);
    FM_CHECK_INT(fm_activation_parse("", &act), FM_EINVAL);
    FM_CHECK_INT(fm_activation_parse("relu ", &act), FM_EINVAL);
    FM_CHECK_INT(fm_activation_parse(NULL, &act), FM_EINVAL);
    FM_CHECK_INT(act, FM_ACT_IDENTITY);
    FM_CHECK_STR(fm_activation_name((fm_activation_t)99), "unknown");
}

FM_TEST_MAIN(FM_TEST_CASE(test_dense_forward_matches_naive),
             FM_TEST_CASE(test_dense_backward_matches_naive), FM_TEST_CASE(test_dense_empty_batch),
             FM_TEST_CASE(test_dense_backward_finite_differences),
             FM_TEST_CASE(test_activation_backward_finite_differences),
             FM_TEST_CASE(test_activation_values), FM_TEST_CASE(test_activation_names))
