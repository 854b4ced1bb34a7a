/*
 * Tests of whole networks: construction and its errors, the parameter layout, weight
 * initialisation limits, prediction against a layer-by-layer naive computation (also in chunks and
 * row by row), fm_net_gradients and fm_net_add_l2 against central finite differences for several
 * architectures, small training runs that must converge (separable logistic regression, XOR), and
 * bit-identical results from the same seed.
 */
#include "fm_test.h"
#include "nn/nn.h"
#include "nn_check.h"

#include <limits.h>
#include <string.h>

static fm_net_t *make_net(const int *sizes, int nsizes, fm_activation_t hidden,
                          fm_activation_t output) {
    fm_net_t *net = NULL;
    fm_error_t err;
    int rc = fm_net_new(sizes, nsizes, hidden, output, &net, &err);
    FM_CHECK_MSG(rc == FM_OK, "%s", err.msg);
    return net;
}

static fm_net_workspace_t *make_workspace(const fm_net_t *net, int max_batch) {
    fm_net_workspace_t *ws = NULL;
    fm_error_t err;
    int rc = fm_net_workspace_new(net, max_batch, &ws, &err);
    FM_CHECK_MSG(rc == FM_OK, "%s", err.msg);
    return ws;
}

/* Glorot weights and small random biases, so that bias gradients are exercised off zero. */
static void randomise(fm_net_t *net, uint64_t seed) {
    fm_rng_t rng;
    fm_rng_seed(&rng, seed);
    fm_net_init_weights(net, &rng);
    for (int l = 0; l < net->nlayers; l++)
        nn_fill_uniform(&rng, net->params + net->bias_offset[l], (size_t)net->sizes[l + 1], -0.5,
                        0.5);
}

static void test_net_new_errors(void) {
    static const struct {
        int sizes[4];
        int nsizes;
        int code;
        const char *needle;
    } bad[] = {
        {{3}, 1, FM_EINVAL, "layer widths"},
        {{3, 2}, 0, FM_EINVAL, "layer widths"},
        {{3, 2}, -4, FM_EINVAL, "layer widths"},
        {{3, 0}, 2, FM_EINVAL, "sizes[1] = 0"},
        {{-2, 4, 1}, 3, FM_EINVAL, "sizes[0] = -2"},
        {{46341, 46341}, 2, FM_ELIMIT, "limit"},
        {{INT_MAX, INT_MAX, INT_MAX}, 3, FM_ELIMIT, "layer 0"},
        {{1, 65536, 65536, 1}, 4, FM_ELIMIT, "layer 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fm_net_t *net = (fm_net_t *)&bad; /* must be reset to NULL on failure */
        fm_error_t err;
        fm_error_clear(&err);
        int rc = fm_net_new(bad[i].sizes, bad[i].nsizes, FM_ACT_RELU, FM_ACT_SIGMOID, &net, &err);
        FM_CHECK_MSG(rc == bad[i].code, "case %zu: rc %d (%s)", i, rc, err.msg);
        FM_CHECK(net == NULL);
        FM_CHECK_MSG(strstr(err.msg, bad[i].needle) != NULL, "case %zu: %s", i, err.msg);
    }
    int many[FM_NET_MAX_LAYERS + 2];
    for (int i = 0; i < FM_NET_MAX_LAYERS + 2; i++)
        many[i] = 2;
    fm_net_t *net = NULL;
    fm_error_t err;
    FM_CHECK_INT(fm_net_new(many, FM_NET_MAX_LAYERS + 2, FM_ACT_RELU, FM_ACT_SIGMOID, &net, &err),
                 FM_EINVAL);
    FM_CHECK_INT(fm_net_new(many, FM_NET_MAX_LAYERS + 1, FM_ACT_RELU, FM_ACT_SIGMOID, &net, &err),
                 FM_OK);
    FM_CHECK_INT(net->nlayers, FM_NET_MAX_LAYERS);
    fm_net_free(net);
    FM_CHECK_INT(fm_net_new(NULL, 2, FM_ACT_RELU, FM_ACT_SIGMOID, &net, &err), FM_EINVAL);
    FM_CHECK_INT(fm_net_new(many, 2, FM_ACT_RELU, FM_ACT_SIGMOID, NULL, &err), FM_EINVAL);
    FM_CHECK_INT(fm_net_new(many, 2, (fm_activation_t)17, FM_ACT_SIGMOID, &net, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "hidden activation") != NULL);
    FM_CHECK_INT(fm_net_new(many, 2, FM_ACT_RELU, (fm_activation_t)-1, &net, &err), FM_EINVAL);
    FM_CHECK(strstr(err.msg, "output activation") != NULL);
    fm_net_free(NULL);

    /* workspaces: a positive batch, and a size limit */
    int sizes[3] = {1, 100000, 1};
    net = make_net(sizes, 3, FM_ACT_RELU, FM_ACT_SIGMOID);
    fm_net_workspace_t *ws = (fm_net_workspace_t *)&err;
    FM_CHECK_INT(fm_net_workspace_new(net, 0, &ws, &err), FM_EINVAL);
    FM_CHECK(ws == NULL && strstr(err.msg, "max_batch = 0") != NULL);
    FM_CHECK_INT(fm_net_workspace_new(net, -3, &ws, &err), FM_EINVAL);
    FM_CHECK_INT(fm_net_workspace_new(net, INT_MAX, &ws, &err), FM_ELIMIT);
    FM_CHECK(ws == NULL);
    FM_CHECK_INT(fm_net_workspace_new(NULL, 4, &ws, &err), FM_EINVAL);
    FM_CHECK_INT(fm_net_workspace_new(net, 4, NULL, &err), FM_EINVAL);
    fm_net_workspace_free(NULL);
    fm_net_free(net);
}

static void test_net_layout_and_clone(void) {
    int sizes[4] = {3, 4, 2, 5};
    fm_net_t *net = make_net(sizes, 4, FM_ACT_TANH, FM_ACT_SOFTMAX);
    FM_CHECK_INT(net->nlayers, 3);
    FM_CHECK_INT(net->nparams, 3 * 4 + 4 + 4 * 2 + 2 + 2 * 5 + 5);
    FM_CHECK_INT(net->weight_offset[0], 0);
    FM_CHECK_INT(net->bias_offset[0], 12);
    FM_CHECK_INT(net->weight_offset[1], 16);
    FM_CHECK_INT(net->bias_offset[1], 24);
    FM_CHECK_INT(net->weight_offset[2], 26);
    FM_CHECK_INT(net->bias_offset[2], 36);
    FM_CHECK_INT(net->hidden, FM_ACT_TANH);
    FM_CHECK_INT(net->output, FM_ACT_SOFTMAX);
    for (size_t i = 0; i < net->nparams; i++)
        FM_CHECK(net->params[i] == 0.0);

    randomise(net, 5);
    fm_net_t *copy = fm_net_clone(net);
    FM_CHECK(copy != NULL && copy->params != net->params);
    FM_CHECK(memcmp(copy->params, net->params, net->nparams * sizeof(double)) == 0);
    FM_CHECK(memcmp(copy->sizes, net->sizes, sizeof net->sizes) == 0);
    copy->params[0] += 1.0;
    FM_CHECK(copy->params[0] != net->params[0]);
    fm_net_free(copy);
    fm_net_free(net);
}

static void check_init_limits(fm_activation_t hidden, const double *expect_limits) {
    int sizes[4] = {10, 20, 5, 1};
    fm_net_t *net = make_net(sizes, 4, hidden, FM_ACT_SIGMOID);
    fm_rng_t rng;
    fm_rng_seed(&rng, 77);
    for (size_t i = 0; i < net->nparams; i++)
        net->params[i] = 9.0;
    fm_net_init_weights(net, &rng);
    for (int l = 0; l < 3; l++) {
        size_t n = (size_t)sizes[l] * sizes[l + 1];
        const double *w = net->params + net->weight_offset[l];
        double largest = 0.0, sum = 0.0;
        for (size_t i = 0; i < n; i++) {
            largest = fmax(largest, fabs(w[i]));
            sum += w[i];
        }
        FM_CHECK_MSG(largest <= expect_limits[l], "layer %d: %g > %g", l, largest,
                     expect_limits[l]);
        /* uniform over the whole range: the extreme of n draws is near the limit */
        FM_CHECK_MSG(largest >= expect_limits[l] * (1.0 - 4.0 / (double)n), "layer %d: %g", l,
                     largest);
        FM_CHECK(fabs(sum / n) < expect_limits[l] * 0.5);
        for (int k = 0; k < sizes[l + 1]; k++)
            FM_CHECK(net->params[net->bias_offset[l] + k] == 0.0);
    }
    fm_net_free(net);
}

static void test_net_init_weights(void) {
    /* He uniform before relu layers, Glorot uniform elsewhere (the sigmoid output layer) */
    double relu[3] = {sqrt(6.0 / 10), sqrt(6.0 / 20), sqrt(6.0 / 6)};
    check_init_limits(FM_ACT_RELU, relu);
    double tanh_limits[3] = {sqrt(6.0 / 30), sqrt(6.0 / 25), sqrt(6.0 / 6)};
    check_init_limits(FM_ACT_TANH, tanh_limits);

    /* the same seed gives the same weights; another seed does not */
    int sizes[3] = {4, 3, 2};
    fm_net_t *a = make_net(sizes, 3, FM_ACT_RELU, FM_ACT_SOFTMAX);
    fm_net_t *b = make_net(sizes, 3, FM_ACT_RELU, FM_ACT_SOFTMAX);
    fm_rng_t r1, r2;
    fm_rng_seed(&r1, 9);
    fm_rng_seed(&r2, 9);
    fm_net_init_weights(a, &r1);
    fm_net_init_weights(b, &r2);
    FM_CHECK(memcmp(a->params, b->params, a->nparams * sizeof(double)) == 0);
    fm_rng_seed(&r2, 10);
    fm_net_init_weights(b, &r2);
    FM_CHECK(memcmp(a->params, b->params, a->nparams * sizeof(double)) != 0);
    fm_net_free(a);
    fm_net_free(b);
}

/* The network's output computed layer by layer with the naive kernels. */
static void naive_forward(const fm_net_t *net, const double *in, int B, double *out, int logits) {
    int widest = 0;
    for (int l = 0; l <= net->nlayers; l++)
        widest = net->sizes[l] > widest ? net->sizes[l] : widest;
    double *a = malloc((size_t)B * widest * sizeof *a), *b = malloc((size_t)B * widest * sizeof *b);
    memcpy(a, in, (size_t)B * net->sizes[0] * sizeof *a);
    for (int l = 0; l < net->nlayers; l++) {
        int last = l + 1 == net->nlayers;
        fm_dense_forward_naive(b, a, net->params + net->weight_offset[l],
                               net->params + net->bias_offset[l], B, net->sizes[l],
                               net->sizes[l + 1]);
        fm_activation_t act = last ? (logits ? FM_ACT_IDENTITY : net->output) : net->hidden;
        fm_activation_forward(a, b, B, net->sizes[l + 1], act);
    }
    memcpy(out, a, (size_t)B * net->sizes[net->nlayers] * sizeof *out);
    free(a);
    free(b);
}

static void test_net_forward(void) {
    static const struct {
        int sizes[5];
        int nsizes;
        fm_activation_t hidden, output;
    } nets[] = {
        {{6, 1}, 2, FM_ACT_RELU, FM_ACT_SIGMOID},
        {{6, 9, 5, 3}, 4, FM_ACT_RELU, FM_ACT_SOFTMAX},
        {{6, 7, 1}, 3, FM_ACT_TANH, FM_ACT_IDENTITY},
        {{6, 4, 4, 4, 2}, 5, FM_ACT_SIGMOID, FM_ACT_SIGMOID},
    };
    fm_rng_t rng;
    fm_rng_seed(&rng, 21);
    for (size_t k = 0; k < sizeof nets / sizeof nets[0]; k++) {
        fm_net_t *net = make_net(nets[k].sizes, nets[k].nsizes, nets[k].hidden, nets[k].output);
        randomise(net, 100 + k);
        int B = 50, nout = net->sizes[net->nlayers];
        double *in = nn_random_array(&rng, (size_t)B * 6, -2, 2);
        double *out = malloc((size_t)B * nout * sizeof *out);
        double *ref = malloc((size_t)B * nout * sizeof *ref);
        double *rows = malloc((size_t)B * nout * sizeof *rows);

        /* max_batch 7: seven full chunks and a partial one */
        fm_net_workspace_t *ws = make_workspace(net, 7);
        fm_net_forward(net, ws, in, B, out);
        naive_forward(net, in, B, ref, 0);
        FM_CHECK(nn_max_relative_diff("forward in chunks vs naive", out, ref, (size_t)B * nout) <=
                 1e-12);
        for (int b = 0; b < B; b++)
            fm_net_forward(net, ws, in + (size_t)b * 6, 1, rows + (size_t)b * nout);
        FM_CHECK(nn_max_relative_diff("forward in chunks vs row by row", out, rows,
                                      (size_t)B * nout) <= 1e-12);
        fm_net_forward_logits(net, ws, in, B, out);
        naive_forward(net, in, B, ref, 1);
        FM_CHECK(nn_max_relative_diff("logits vs naive", out, ref, (size_t)B * nout) <= 1e-12);
        fm_net_workspace_free(ws);

        /* one chunk holding everything gives the same result as chunks */
        ws = make_workspace(net, B);
        fm_net_forward(net, ws, in, B, rows);
        fm_net_forward(net, ws, in, B, rows);
        naive_forward(net, in, B, ref, 0);
        FM_CHECK(nn_max_relative_diff("forward in one chunk vs naive", rows, ref,
                                      (size_t)B * nout) <= 1e-12);
        fm_net_forward(net, ws, in, 0, rows);
        fm_net_workspace_free(ws);
        free(in);
        free(out);
        free(ref);
        free(rows);
        fm_net_free(net);
    }
}

/* The loss (plus the L2 penalty written out here) as a function of the parameters. */
typedef struct {
    fm_net_t *net;
    fm_net_workspace_t *ws;
    const double *in, *target, *weight;
    double *logits;
    int B;
    fm_loss_t loss;
    double l2;
} net_ctx_t;

static double l2_penalty(const fm_net_t *net, double l2) {
    double sum = 0.0;
    for (int l = 0; l < net->nlayers; l++) {
        for (int i = 0; i < net->sizes[l] * net->sizes[l + 1]; i++) {
            double w = net->params[net->weight_offset[l] + (size_t)i];
            sum += w * w;
        }
    }
    return 0.5 * l2 * sum;
}

static double net_objective(void *p) {
    net_ctx_t *c = p;
    fm_net_forward_logits(c->net, c->ws, c->in, c->B, c->logits);
    double L = fm_loss_forward(c->logits, c->target, c->weight, c->B,
                               c->net->sizes[c->net->nlayers], c->loss);
    return L + l2_penalty(c->net, c->l2);
}

static void check_net_gradients(const int *sizes, int nsizes, fm_activation_t hidden,
                                fm_loss_t loss, int weighted, double l2, uint64_t seed) {
    fm_net_t *net = make_net(sizes, nsizes, hidden, fm_loss_activation(loss));
    randomise(net, seed);
    fm_rng_t rng;
    fm_rng_seed(&rng, seed + 1000);
    int B = 7, nin = sizes[0], nout = sizes[nsizes - 1];
    double *in = nn_random_array(&rng, (size_t)B * nin, -1.5, 1.5);
    double *target = nn_random_array(&rng, (size_t)B * nout, 0, 1);
    if (loss == FM_LOSS_CATEGORICAL) {
        /* one-hot targets */
        for (int b = 0; b < B; b++)
            for (int k = 0; k < nout; k++)
                target[b * nout + k] = (k == b % nout);
    } else if (loss == FM_LOSS_BINARY) {
        for (int i = 0; i < B * nout; i++)
            target[i] = target[i] > 0.5;
    }
    double *weight = weighted ? nn_random_array(&rng, (size_t)B, 0.2, 2.0) : NULL;
    fm_net_workspace_t *ws = make_workspace(net, 8);
    net_ctx_t c = {net, ws, in, target, weight, NULL, B, loss, l2};
    c.logits = malloc((size_t)B * nout * sizeof *c.logits);

    double *grads = malloc(net->nparams * sizeof *grads);
    for (size_t i = 0; i < net->nparams; i++)
        grads[i] = NAN;
    double L = fm_net_gradients(net, ws, in, target, weight, B, loss, grads);
    double penalty = l2 > 0 ? fm_net_add_l2(net, l2, grads) : 0.0;
    FM_CHECK_NEAR(penalty, l2_penalty(net, l2), 1e-15);
    FM_CHECK_NEAR(L + penalty, net_objective(&c), 1e-13);

    char label[96];
    snprintf(label, sizeof label, "net %d layers %s/%s weighted=%d l2=%g", nsizes - 1,
             fm_activation_name(hidden), fm_loss_name(loss), weighted, l2);
    FM_CHECK(nn_gradient_check(label, net->params, net->nparams, grads, net_objective, &c) <=
             NN_FD_TOLERANCE);
    fm_net_workspace_free(ws);
    free(c.logits);
    free(grads);
    free(in);
    free(target);
    free(weight);
    fm_net_free(net);
}

static void test_net_gradients_single_layer(void) {
    int linear[2] = {4, 1}, wide[2] = {4, 3};
    for (int weighted = 0; weighted < 2; weighted++) {
        check_net_gradients(linear, 2, FM_ACT_RELU, FM_LOSS_MSE, weighted, 0, 1);
        check_net_gradients(linear, 2, FM_ACT_RELU, FM_LOSS_BINARY, weighted, 0, 2);
        check_net_gradients(wide, 2, FM_ACT_RELU, FM_LOSS_CATEGORICAL, weighted, 0, 3);
        check_net_gradients(wide, 2, FM_ACT_RELU, FM_LOSS_MSE, weighted, 0, 4);
    }
}

static void test_net_gradients_mlp(void) {
    int binary[4] = {5, 6, 4, 1}, multi[4] = {5, 6, 4, 3}, regression[3] = {3, 5, 2};
    for (int act = FM_ACT_IDENTITY; act <= FM_ACT_SOFTMAX; act++) {
        fm_activation_t h = (fm_activation_t)act;
        for (int weighted = 0; weighted < 2; weighted++) {
            check_net_gradients(binary, 4, h, FM_LOSS_BINARY, weighted, 0, 10 + act);
            check_net_gradients(multi, 4, h, FM_LOSS_CATEGORICAL, weighted, 0, 20 + act);
            check_net_gradients(regression, 3, h, FM_LOSS_MSE, weighted, 0, 30 + act);
        }
    }
}

static void test_net_gradients_l2(void) {
    int binary[4] = {5, 6, 4, 1}, wide[2] = {4, 3};
    check_net_gradients(binary, 4, FM_ACT_TANH, FM_LOSS_BINARY, 1, 0.1, 40);
    check_net_gradients(binary, 4, FM_ACT_RELU, FM_LOSS_BINARY, 0, 0.01, 41);
    check_net_gradients(wide, 2, FM_ACT_RELU, FM_LOSS_CATEGORICAL, 0, 0.5, 42);

    /* biases are not penalised */
    int sizes[2] = {2, 1};
    fm_net_t *net = make_net(sizes, 2, FM_ACT_RELU, FM_ACT_SIGMOID);
    net->params[0] = 3.0;
    net->params[1] = -4.0;
    net->params[2] = 10.0;
    double grads[3] = {1, 1, 1};
    FM_CHECK_NEAR(fm_net_add_l2(net, 0.2, grads), 0.1 * 25.0, 1e-15);
    FM_CHECK_NEAR(grads[0], 1.6, 1e-15);
    FM_CHECK_NEAR(grads[1], 0.2, 1e-15);
    FM_CHECK(grads[2] == 1.0);
    fm_net_free(net);
}

/* Trains net with Adam on mini-batches drawn in a shuffled order from rng; returns the last
 * full-data loss. */
static double train(fm_net_t *net, const double *x, const double *y, int n, int batch, int epochs,
                    double lr, double l2, fm_loss_t loss, fm_rng_t *rng) {
    int nin = net->sizes[0], nout = net->sizes[net->nlayers];
    fm_net_workspace_t *ws = make_workspace(net, batch > n ? n : batch);
    fm_optimizer_config_t config = fm_optimizer_defaults(FM_OPT_ADAM);
    config.lr = lr;
    fm_optimizer_t opt;
    FM_CHECK_INT(fm_optimizer_init(&opt, &config, net->nparams, NULL), FM_OK);
    double *grads = malloc(net->nparams * sizeof *grads);
    size_t *order = malloc((size_t)n * sizeof *order);
    double *bx = malloc((size_t)batch * nin * sizeof *bx);
    double *by = malloc((size_t)batch * nout * sizeof *by);
    for (int i = 0; i < n; i++)
        order[i] = (size_t)i;
    for (int e = 0; e < epochs; e++) {
        fm_rng_shuffle(rng, order, (size_t)n);
        for (int start = 0; start < n; start += batch) {
            int m = n - start < batch ? n - start : batch;
            for (int r = 0; r < m; r++) {
                memcpy(bx + (size_t)r * nin, x + order[start + r] * nin, nin * sizeof *bx);
                memcpy(by + (size_t)r * nout, y + order[start + r] * nout, nout * sizeof *by);
            }
            fm_net_gradients(net, ws, bx, by, NULL, m, loss, grads);
            if (l2 > 0) fm_net_add_l2(net, l2, grads);
            fm_optimizer_step(&opt, net->params, grads);
        }
    }
    double *logits = malloc((size_t)n * nout * sizeof *logits);
    fm_net_forward_logits(net, ws, x, n, logits);
    double L = fm_loss_forward(logits, y, NULL, n, nout, loss);
    free(logits);
    free(grads);
    free(order);
    free(bx);
    free(by);
    fm_optimizer_deinit(&opt);
    fm_net_workspace_free(ws);
    return L;
}

static void test_net_learns_logistic_regression(void) {
    /* separable: y = [x0 + 2 x1 > 0], with a margin around the boundary */
    enum { N = 200 };
    double x[2 * N], y[N], p[N];
    fm_rng_t rng;
    fm_rng_seed(&rng, 31);
    for (int i = 0; i < N;) {
        double a = 2 * fm_rng_uniform(&rng) - 1, b = 2 * fm_rng_uniform(&rng) - 1;
        if (fabs(a + 2 * b) < 0.5) continue;
        x[2 * i] = a;
        x[2 * i + 1] = b;
        y[i] = a + 2 * b > 0;
        i++;
    }
    int sizes[2] = {2, 1};
    fm_net_t *net = make_net(sizes, 2, FM_ACT_RELU, FM_ACT_SIGMOID);
    fm_net_init_weights(net, &rng);
    double L = train(net, x, y, N, N, 2000, 0.1, 0.0, FM_LOSS_BINARY, &rng);
    printf("  logistic regression final loss %.3g\n", L);
    FM_CHECK(L < 5e-3);
    fm_net_workspace_t *ws = make_workspace(net, 64);
    fm_net_forward(net, ws, x, N, p);
    for (int i = 0; i < N; i++)
        FM_CHECK((p[i] > 0.5) == (y[i] > 0.5));
    fm_net_workspace_free(ws);
    fm_net_free(net);
}

static void test_net_learns_xor(void) {
    double x[8] = {0, 0, 0, 1, 1, 0, 1, 1}, y[4] = {0, 1, 1, 0}, p[4];
    int sizes[3] = {2, 8, 1};
    fm_net_t *net = make_net(sizes, 3, FM_ACT_TANH, FM_ACT_SIGMOID);
    fm_rng_t rng;
    fm_rng_seed(&rng, 5);
    fm_net_init_weights(net, &rng);
    double L = train(net, x, y, 4, 4, 2000, 0.05, 0.0, FM_LOSS_BINARY, &rng);
    printf("  xor final loss %.3g\n", L);
    FM_CHECK(L < 0.01);
    fm_net_workspace_t *ws = make_workspace(net, 4);
    fm_net_forward(net, ws, x, 4, p);
    for (int i = 0; i < 4; i++)
        FM_CHECK_MSG((p[i] > 0.5) == (y[i] > 0.5), "row %d: %g", i, p[i]);
    fm_net_workspace_free(ws);
    fm_net_free(net);
}

static void test_net_training_is_deterministic(void) {
    enum { N = 500, D = 5 };
    double *x = malloc(N * D * sizeof *x), *y = malloc(N * sizeof *y);
    fm_rng_t data;
    fm_rng_seed(&data, 8);
    nn_fill_uniform(&data, x, N * D, -1, 1);
    for (int i = 0; i < N; i++)
        y[i] = x[i * D] * x[i * D + 1] + 0.3 * x[i * D + 2] > 0;
    int sizes[4] = {D, 16, 8, 1};
    double *first = NULL;
    double losses[2];
    for (int run = 0; run < 2; run++) {
        fm_net_t *net = make_net(sizes, 4, FM_ACT_RELU, FM_ACT_SIGMOID);
        fm_rng_t rng;
        fm_rng_seed(&rng, 1234);
        fm_net_init_weights(net, &rng);
        losses[run] = train(net, x, y, N, 32, 5, 0.01, 1e-4, FM_LOSS_BINARY, &rng);
        if (run == 0) {
            first = malloc(net->nparams * sizeof *first);
            memcpy(first, net->params, net->nparams * sizeof *first);
        } else {
            FM_CHECK(memcmp(first, net->params, net->nparams * sizeof(double)) == 0);
        }
        fm_net_free(net);
    }
    printf("  loss after 5 epochs: %.17g and %.17g\n", losses[0], losses[1]);
    FM_CHECK(losses[0] == losses[1]);
    FM_CHECK(losses[0] < log(2.0));
    free(first);
    free(x);
    free(y);
}

#ifdef NDEBUG
static void test_net_gradients_oversized_batch(void) {
    /* a batch larger than the workspace is a caller bug: a NaN loss and zero gradients, no
     * overrun (in debug builds an assert stops the program instead, so this runs in release) */
    int sizes[2] = {2, 1};
    fm_net_t *net = make_net(sizes, 2, FM_ACT_RELU, FM_ACT_SIGMOID);
    fm_net_workspace_t *ws = make_workspace(net, 2);
    double x[6] = {0}, y[3] = {0}, g[3] = {1, 1, 1};
    FM_CHECK(isnan(fm_net_gradients(net, ws, x, y, NULL, 3, FM_LOSS_BINARY, g)));
    FM_CHECK(g[0] == 0.0 && g[1] == 0.0 && g[2] == 0.0);

    /* a workspace made for another shape: NaN outputs and loss rather than an overrun */
    int other_sizes[3] = {2, 3, 1};
    fm_net_t *other = make_net(other_sizes, 3, FM_ACT_RELU, FM_ACT_SIGMOID);
    double out[2] = {0, 0};
    fm_net_forward(other, ws, x, 2, out);
    FM_CHECK(isnan(out[0]) && isnan(out[1]));
    double og[13];
    FM_CHECK(isnan(fm_net_gradients(other, ws, x, y, NULL, 2, FM_LOSS_BINARY, og)));
    fm_net_free(other);
    fm_net_workspace_free(ws);
    fm_net_free(net);
}
#define OVERSIZED_CASE FM_TEST_CASE(test_net_gradients_oversized_batch),
#else
#define OVERSIZED_CASE
#endif

FM_TEST_MAIN(FM_TEST_CASE(test_net_new_errors), FM_TEST_CASE(test_net_layout_and_clone),
             FM_TEST_CASE(test_net_init_weights), FM_TEST_CASE(test_net_forward),
             FM_TEST_CASE(test_net_gradients_single_layer), FM_TEST_CASE(test_net_gradients_mlp),
             FM_TEST_CASE(test_net_gradients_l2),
             OVERSIZED_CASE FM_TEST_CASE(test_net_learns_logistic_regression),
             FM_TEST_CASE(test_net_learns_xor), FM_TEST_CASE(test_net_training_is_deterministic))
