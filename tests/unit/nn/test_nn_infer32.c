/*
 * Tests of single-precision inference: the float dense kernel against its naive reference, and
 * fm_net32_forward against the double-precision network it was copied from, for every output
 * activation and hidden activation, in and across chunks.
 */
#include "fm_test.h"
#include "nn/nn.h"
#include "nn_check.h"

static void test_dense_f32_matches_naive(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 1);
    int shapes[][3] = {{1, 1, 1}, {1, 30, 32}, {7, 5, 3}, {64, 30, 32}, {200, 32, 16}, {3, 16, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int B = shapes[s][0], I = shapes[s][1], O = shapes[s][2];
        float *in = malloc(sizeof(float) * B * I), *w = malloc(sizeof(float) * I * O);
        float *a = malloc(sizeof(float) * B * O), *b = malloc(sizeof(float) * B * O);
        for (int i = 0; i < B * I; i++)
            in[i] = (float)(2 * fm_rng_uniform(&rng) - 1);
        for (int i = 0; i < I * O; i++)
            w[i] = (float)(2 * fm_rng_uniform(&rng) - 1);
        for (int i = 0; i < B * O; i++)
            a[i] = NAN;
        fm_dense_forward_f32(a, in, w, B, I, O);
        fm_dense_forward_f32_naive(b, in, w, B, I, O);
        double worst = 0;
        for (int i = 0; i < B * O; i++)
            worst = fmax(worst, fabs((double)a[i] - b[i]));
        printf("  sgemm vs naive %dx%dx%d max |diff| = %.3g\n", B, I, O, worst);
        FM_CHECK(worst < 1e-5 * I);
        free(in);
        free(w);
        free(a);
        free(b);
    }
}

static void check_net(const char *label, const int *sizes, int nsizes, fm_activation_t hidden,
                      fm_activation_t output, int B, int max_batch) {
    fm_error_t err;
    fm_net_t *net = NULL;
    FM_CHECK_INT(fm_net_new(sizes, nsizes, hidden, output, &net, &err), 0);
    fm_rng_t rng;
    fm_rng_seed(&rng, 7);
    fm_net_init_weights(net, &rng);
    for (int l = 0; l < net->nlayers; l++)
        for (int o = 0; o < sizes[l + 1]; o++)
            net->params[net->bias_offset[l] + o] = fm_rng_uniform(&rng) - 0.5;
    int nout = sizes[nsizes - 1];
    double *in = nn_random_array(&rng, (size_t)B * sizes[0], -2, 2);
    double *ref = malloc(sizeof(double) * B * nout), *got = malloc(sizeof(double) * B * nout);
    fm_net_workspace_t *ws = NULL;
    FM_CHECK_INT(fm_net_workspace_new(net, 64, &ws, &err), 0);
    fm_net_forward(net, ws, in, B, ref);
    fm_net32_t *net32 = NULL;
    fm_net32_workspace_t *ws32 = NULL;
    FM_CHECK_INT(fm_net32_new(net, &net32, &err), 0);
    FM_CHECK_INT(fm_net32_workspace_new(net32, max_batch, &ws32, &err), 0);
    fm_net32_forward(net32, ws32, in, B, got);
    double worst = fm_test_max_diff(label, got, ref, (size_t)B * nout);
    FM_CHECK(worst < 2e-5);
    if (output == FM_ACT_SOFTMAX)
        for (int b = 0; b < B; b++) {
            double sum = 0;
            for (int k = 0; k < nout; k++)
                sum += got[b * nout + k];
            FM_CHECK_NEAR(sum, 1.0, 1e-12);
        }
    fm_net32_workspace_free(ws32);
    fm_net32_free(net32);
    fm_net_workspace_free(ws);
    fm_net_free(net);
    free(in);
    free(ref);
    free(got);
}

static void test_net32_matches_double(void) {
    int mlp[] = {30, 32, 16, 1};
    check_net("relu MLP, sigmoid output", mlp, 4, FM_ACT_RELU, FM_ACT_SIGMOID, 500, 128);
    check_net("tanh MLP, sigmoid output, one row", mlp, 4, FM_ACT_TANH, FM_ACT_SIGMOID, 1, 1);
    check_net("sigmoid MLP, identity output", mlp, 4, FM_ACT_SIGMOID, FM_ACT_IDENTITY, 333, 100);
    int soft[] = {12, 8, 5};
    check_net("relu MLP, softmax output", soft, 3, FM_ACT_RELU, FM_ACT_SOFTMAX, 257, 64);
    int logistic[] = {20, 1};
    check_net("logistic regression", logistic, 2, FM_ACT_RELU, FM_ACT_SIGMOID, 1000, 1000);
    int deep[] = {6, 9, 9, 9, 9, 2};
    check_net("deep identity-hidden MLP, softmax", deep, 6, FM_ACT_IDENTITY, FM_ACT_SOFTMAX, 50, 7);
}

static void test_net32_workspace_mismatch(void) {
    int a[] = {3, 4, 1}, b[] = {3, 5, 1};
    fm_net_t *na = NULL, *nb = NULL;
    fm_net32_t *fa = NULL, *fb = NULL;
    fm_net32_workspace_t *ws = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_net_new(a, 3, FM_ACT_RELU, FM_ACT_SIGMOID, &na, &err), 0);
    FM_CHECK_INT(fm_net_new(b, 3, FM_ACT_RELU, FM_ACT_SIGMOID, &nb, &err), 0);
    FM_CHECK_INT(fm_net32_new(na, &fa, &err), 0);
    FM_CHECK_INT(fm_net32_new(nb, &fb, &err), 0);
    FM_CHECK_INT(fm_net32_workspace_new(fa, 4, &ws, &err), 0);
    double in[6] = {1, 2, 3, 4, 5, 6}, out[2] = {0, 0};
    fm_net32_forward(fb, ws, in, 2, out); /* a caller bug: NaN, never an overrun */
    FM_CHECK(isnan(out[0]) && isnan(out[1]));
    fm_net32_workspace_t *none = NULL;
    FM_CHECK_INT(fm_net32_workspace_new(fa, 0, &none, &err), FM_EINVAL);
    FM_CHECK(none == NULL);
    fm_net32_workspace_free(ws);
    fm_net32_free(fa);
    fm_net32_free(fb);
    fm_net_free(na);
    fm_net_free(nb);
}

FM_TEST_MAIN(FM_TEST_CASE(test_dense_f32_matches_naive), FM_TEST_CASE(test_net32_matches_double),
             FM_TEST_CASE(test_net32_workspace_mismatch))
