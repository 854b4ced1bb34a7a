/*
 * Tests of the fused losses: values against their formulas written out here (including logits
 * large enough to overflow a naive exp), the weighted-mean semantics, and every gradient against
 * central finite differences with and without sample weights.
 */
#include "fm_test.h"
#include "nn/nn.h"
#include "nn_check.h"

#include <string.h>

static void test_loss_names(void) {
    FM_CHECK_STR(fm_loss_name(FM_LOSS_MSE), "mse");
    FM_CHECK_STR(fm_loss_name(FM_LOSS_BINARY), "binary_crossentropy");
    FM_CHECK_STR(fm_loss_name(FM_LOSS_CATEGORICAL), "categorical_crossentropy");
    FM_CHECK_STR(fm_loss_name((fm_loss_t)42), "unknown");
    FM_CHECK_INT(fm_loss_activation(FM_LOSS_MSE), FM_ACT_IDENTITY);
    FM_CHECK_INT(fm_loss_activation(FM_LOSS_BINARY), FM_ACT_SIGMOID);
    FM_CHECK_INT(fm_loss_activation(FM_LOSS_CATEGORICAL), FM_ACT_SOFTMAX);
}

static void test_loss_values(void) {
    /* MSE: rows (1,2) vs (0,0) and (3,-1) vs (1,1): l = (1+4)/2 = 2.5 and (4+4)/2 = 4 */
    double z[4] = {1, 2, 3, -1}, y[4] = {0, 0, 1, 1};
    FM_CHECK_NEAR(fm_loss_forward(z, y, NULL, 2, 2, FM_LOSS_MSE), (2.5 + 4.0) / 2, 1e-15);
    double w[2] = {3.0, 1.0};
    FM_CHECK_NEAR(fm_loss_forward(z, y, w, 2, 2, FM_LOSS_MSE), (3 * 2.5 + 4.0) / 4, 1e-15);

    /* binary: -y log p - (1-y) log(1-p) with p = sigmoid(z) */
    double zb[4] = {0.0, 1.5, -2.0, 0.3}, yb[4] = {1, 0, 1, 0.25};
    double expect = 0.0;
    for (int i = 0; i < 4; i++) {
        double p = 1.0 / (1.0 + exp(-zb[i]));
        expect += -yb[i] * log(p) - (1 - yb[i]) * log(1 - p);
    }
    FM_CHECK_NEAR(fm_loss_forward(zb, yb, NULL, 4, 1, FM_LOSS_BINARY), expect / 4, 1e-15);
    FM_CHECK_NEAR(fm_loss_forward(zb, yb, NULL, 2, 2, FM_LOSS_BINARY), expect / 4, 1e-15);
    FM_CHECK_NEAR(fm_loss_forward(zb, yb, NULL, 1, 1, FM_LOSS_BINARY), log(2.0), 1e-16);

    /* binary at huge logits: the loss is |z| when wrong and 0 when right, never inf or NaN */
    double huge[4] = {1000.0, -1000.0, 800.0, -800.0}, yh[4] = {0, 1, 1, 0};
    FM_CHECK_NEAR(fm_loss_forward(huge, yh, NULL, 1, 1, FM_LOSS_BINARY), 1000.0, 1e-12);
    FM_CHECK_NEAR(fm_loss_forward(huge + 1, yh + 1, NULL, 1, 1, FM_LOSS_BINARY), 1000.0, 1e-12);
    FM_CHECK_NEAR(fm_loss_forward(huge + 2, yh + 2, NULL, 2, 1, FM_LOSS_BINARY), 0.0, 1e-300);
    double g[4];
    fm_loss_backward(g, huge, yh, NULL, 4, 1, FM_LOSS_BINARY);
    FM_CHECK_NEAR(g[0], 0.25, 1e-16);
    FM_CHECK_NEAR(g[1], -0.25, 1e-16);
    FM_CHECK_NEAR(g[2], 0.0, 1e-16);

    /* categorical: -sum y log softmax(z), against the formula in a shifted-safe range */
    double zc[6] = {0.5, -1.0, 2.0, 3.0, 3.0, 3.0}, yc[6] = {0, 0, 1, 0.2, 0.3, 0.5};
    double l0 = -log(exp(2.0) / (exp(0.5) + exp(-1.0) + exp(2.0)));
    double l1 = log(3.0);
    FM_CHECK_NEAR(fm_loss_forward(zc, yc, NULL, 2, 3, FM_LOSS_CATEGORICAL), (l0 + l1) / 2, 1e-15);
    double wc[2] = {0.25, 0.75};
    FM_CHECK_NEAR(fm_loss_forward(zc, yc, wc, 2, 3, FM_LOSS_CATEGORICAL), 0.25 * l0 + 0.75 * l1,
                  1e-15);
    double zbig[3] = {1000.0, 0.0, -1000.0}, yone[3] = {0, 1, 0};
    FM_CHECK_NEAR(fm_loss_forward(zbig, yone, NULL, 1, 3, FM_LOSS_CATEGORICAL), 1000.0, 1e-12);
    fm_loss_backward(g, zbig, yone, NULL, 1, 3, FM_LOSS_CATEGORICAL);
    FM_CHECK_NEAR(g[0], 1.0, 1e-15);
    FM_CHECK_NEAR(g[1], -1.0, 1e-15);
    FM_CHECK_NEAR(g[2], 0.0, 1e-15);
}

static void test_loss_zero_weights(void) {
    /* rows with weight 0 do not count; all-zero weights give L = 0 and a zero gradient */
    double z[3] = {0.3, -2.0, 5.0}, y[3] = {1, 0, 1}, w[3] = {1, 0, 1}, g[3];
    double z2[2] = {0.3, 5.0}, y2[2] = {1, 1}, g2[2];
    FM_CHECK_NEAR(fm_loss_forward(z, y, w, 3, 1, FM_LOSS_BINARY),
                  fm_loss_forward(z2, y2, NULL, 2, 1, FM_LOSS_BINARY), 1e-16);
    fm_loss_backward(g, z, y, w, 3, 1, FM_LOSS_BINARY);
    fm_loss_backward(g2, z2, y2, NULL, 2, 1, FM_LOSS_BINARY);
    FM_CHECK(g[1] == 0.0);
    FM_CHECK_NEAR(g[0], g2[0], 1e-17);
    FM_CHECK_NEAR(g[2], g2[1], 1e-17);
    double zero[3] = {0, 0, 0};
    for (int loss = FM_LOSS_MSE; loss <= FM_LOSS_CATEGORICAL; loss++) {
        FM_CHECK(fm_loss_forward(z, y, zero, 3, 1, (fm_loss_t)loss) == 0.0);
        for (int i = 0; i < 3; i++)
            g[i] = NAN;
        fm_loss_backward(g, z, y, zero, 3, 1, (fm_loss_t)loss);
        for (int i = 0; i < 3; i++)
            FM_CHECK(g[i] == 0.0);
    }
}

typedef struct {
    double *z, *y, *w;
    int B, O;
    fm_loss_t loss;
} loss_ctx_t;

static double loss_objective(void *p) {
    loss_ctx_t *c = p;
    return fm_loss_forward(c->z, c->y, c->w, c->B, c->O, c->loss);
}

static void test_loss_finite_differences(void) {
    fm_rng_t rng;
    fm_rng_seed(&rng, 11);
    static const int shapes[][2] = {{1, 1}, {7, 1}, {6, 3}, {4, 2}};
    for (int loss = FM_LOSS_MSE; loss <= FM_LOSS_CATEGORICAL; loss++) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            for (int weighted = 0; weighted < 2; weighted++) {
                loss_ctx_t c = {.B = shapes[s][0], .O = shapes[s][1], .loss = (fm_loss_t)loss};
                size_t n = (size_t)c.B * c.O;
                c.z = nn_random_array(&rng, n, -4, 4);
                c.y = nn_random_array(&rng, n, 0, 1);
                if (c.loss == FM_LOSS_CATEGORICAL) {
                    /* a distribution per row for the usual case; the formula holds for any y */
                    for (int b = 0; b < c.B && s % 2 == 0; b++) {
                        double sum = 0.0;
                        for (int k = 0; k < c.O; k++)
                            sum += c.y[b * c.O + k];
                        for (int k = 0; k < c.O; k++)
                            c.y[b * c.O + k] /= sum;
                    }
                }
                c.w = weighted ? nn_random_array(&rng, (size_t)c.B, 0.1, 3.0) : NULL;
                double *g = malloc(n * sizeof *g);
                fm_loss_backward(g, c.z, c.y, c.w, c.B, c.O, c.loss);
                char label[80];
                snprintf(label, sizeof label, "%s B=%d O=%d weighted=%d", fm_loss_name(c.loss), c.B,
                         c.O, weighted);
                FM_CHECK(nn_gradient_check(label, c.z, n, g, loss_objective, &c) <=
                         NN_FD_TOLERANCE);
                free(c.z);
                free(c.y);
                free(c.w);
                free(g);
            }
        }
    }
}

FM_TEST_MAIN(FM_TEST_CASE(test_loss_names), FM_TEST_CASE(test_loss_values),
             FM_TEST_CASE(test_loss_zero_weights), FM_TEST_CASE(test_loss_finite_differences))
