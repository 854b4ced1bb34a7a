/*
 * Networks: a stack of dense layers with one activation between layers and one after the last,
 * their parameter array, weight initialisation, per-thread workspaces, batched prediction and the
 * forward/backward pass that yields the gradient of a fused loss.
 *
 * A workspace holds, for up to max_batch rows, every layer's output (the backward pass needs them
 * all) and two gradient buffers used in turn as dL/d(layer output) moves down the stack. It is
 * allocated once, so prediction and training allocate nothing per call. Prediction runs larger
 * batches in chunks of max_batch rows and writes the last layer straight into the caller's output.
 *
 * Each layer's forward pass is a bias-free dense product (dgemm overwriting its output) followed by
 * one fused pass that adds the bias and applies the activation.
 */
#include "nn/nn_internal.h"
#include "nn/nn.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * The most parameters a network may have (16 GiB of doubles) and the most doubles a workspace may
 * hold. Far above any tabular model, and low enough that sizes read from an untrusted model file
 * fail with FM_ELIMIT instead of attempting a huge allocation.
 */
#define NET_MAX_PARAMS        ((size_t)1 << 31)
#define WORKSPACE_MAX_DOUBLES ((size_t)1 << 31)

struct fm_net_workspace {
    int max_batch;
    int nlayers;
    int sizes[FM_NET_MAX_LAYERS + 1]; /* of the network it was made for */
    double *act[FM_NET_MAX_LAYERS];   /* act[l][max_batch, sizes[l+1]]: layer l's output */
    double *grad[2];                  /* [max_batch, widest of sizes[1..nlayers]] each */
    double *memory;                   /* the one allocation all the buffers above point into */
};

static int activation_valid(fm_activation_t act) {
    return (unsigned)act <= (unsigned)FM_ACT_SOFTMAX;
}

int fm_net_new(const int *sizes, int nsizes, fm_activation_t hidden, fm_activation_t output,
               fm_net_t **out, fm_error_t *err) {
    if (!out) return fm_error_set(err, FM_EINVAL, "network: no output handle");
    *out = NULL;
    if (!sizes) return fm_error_set(err, FM_EINVAL, "network: no layer widths");
    if (nsizes < 2 || nsizes > FM_NET_MAX_LAYERS + 1)
        return fm_error_set(err, FM_EINVAL,
                            "network: needs 2 to %d layer widths (1 to %d layers), got %d",
                            FM_NET_MAX_LAYERS + 1, FM_NET_MAX_LAYERS, nsizes);
    for (int l = 0; l < nsizes; l++) {
        if (sizes[l] < 1)
            return fm_error_set(err, FM_EINVAL, "network: layer width sizes[%d] = %d must be >= 1",
                                l, sizes[l]);
    }
    if (!activation_valid(hidden))
        return fm_error_set(err, FM_EINVAL, "network: unknown hidden activation %d", (int)hidden);
    if (!activation_valid(output))
        return fm_error_set(err, FM_EINVAL, "network: unknown output activation %d", (int)output);

    fm_net_t *net = calloc(1, sizeof *net);
    if (!net) return fm_error_set(err, FM_ENOMEM, "network: out of memory");
    net->nlayers = nsizes - 1;
    net->hidden = hidden;
    net->output = output;
    size_t total = 0;
    for (int l = 0; l < nsizes; l++)
        net->sizes[l] = sizes[l];
    for (int l = 0; l < net->nlayers; l++) {
        size_t fan_in = (size_t)sizes[l], fan_out = (size_t)sizes[l + 1];
        if (fan_in > NET_MAX_PARAMS / fan_out ||
            fan_in * fan_out + fan_out > NET_MAX_PARAMS - total) {
            free(net);
            return fm_error_set(err, FM_ELIMIT,
                                "network: layer %d (%d -> %d) takes the parameter count past the "
                                "limit of %zu",
                                l, sizes[l], sizes[l + 1], NET_MAX_PARAMS);
        }
        net->weight_offset[l] = total;
        net->bias_offset[l] = total + fan_in * fan_out;
        total += fan_in * fan_out + fan_out;
    }
    net->nparams = total;
    net->params = calloc(total, sizeof *net->params);
    if (!net->params) {
        free(net);
        return fm_error_set(err, FM_ENOMEM, "network: out of memory for %zu parameters", total);
    }
    *out = net;
    return FM_OK;
}

void fm_net_init_weights(fm_net_t *net, fm_rng_t *rng) {
    for (int l = 0; l < net->nlayers; l++) {
        int fan_in = net->sizes[l], fan_out = net->sizes[l + 1];
        fm_activation_t next = l + 1 < net->nlayers ? net->hidden : net->output;
        /* Glorot keeps the variance of activations and gradients level; He doubles it for relu,
         * which zeroes half its inputs. */
        double limit = next == FM_ACT_RELU ? sqrt(6.0 / fan_in) : sqrt(6.0 / (fan_in + fan_out));
        double *w = net->params + net->weight_offset[l];
        size_t nw = (size_t)fan_in * fan_out;
        for (size_t i = 0; i < nw; i++)
            w[i] = limit * (2.0 * fm_rng_uniform(rng) - 1.0);
        memset(net->params + net->bias_offset[l], 0, (size_t)fan_out * sizeof *net->params);
    }
}

fm_net_t *fm_net_clone(const fm_net_t *net) {
    fm_net_t *copy = malloc(sizeof *copy);
    if (!copy) return NULL;
    *copy = *net;
    copy->params = malloc((net->nparams ? net->nparams : 1) * sizeof *copy->params);
    if (!copy->params) {
        free(copy);
        return NULL;
    }
    memcpy(copy->params, net->params, net->nparams * sizeof *copy->params);
    return copy;
}

void fm_net_free(fm_net_t *net) {
    if (!net) return;
    free(net->params);
    free(net);
}

int fm_net_workspace_new(const fm_net_t *net, int max_batch, fm_net_workspace_t **out,
                         fm_error_t *err) {
    if (!out) return fm_error_set(err, FM_EINVAL, "network workspace: no output handle");
    *out = NULL;
    if (!net) return fm_error_set(err, FM_EINVAL, "network workspace: no network");
    if (max_batch < 1)
        return fm_error_set(err, FM_EINVAL, "network workspace: max_batch = %d must be >= 1",
                            max_batch);
    size_t widths = 0, widest = 0;
    for (int l = 1; l <= net->nlayers; l++) {
        widths += (size_t)net->sizes[l];
        if ((size_t)net->sizes[l] > widest) widest = (size_t)net->sizes[l];
    }
    size_t per_row = widths + 2 * widest;
    if (per_row > WORKSPACE_MAX_DOUBLES / (size_t)max_batch)
        return fm_error_set(err, FM_ELIMIT,
                            "network workspace: %d rows of %zu values exceed the limit of %zu",
                            max_batch, per_row, WORKSPACE_MAX_DOUBLES);

    fm_net_workspace_t *ws = calloc(1, sizeof *ws);
    if (!ws) return fm_error_set(err, FM_ENOMEM, "network workspace: out of memory");
    ws->memory = calloc(per_row * (size_t)max_batch, sizeof *ws->memory);
    if (!ws->memory) {
        free(ws);
        return fm_error_set(err, FM_ENOMEM, "network workspace: out of memory for %d rows",
                            max_batch);
    }
    ws->max_batch = max_batch;
    ws->nlayers = net->nlayers;
    memcpy(ws->sizes, net->sizes, sizeof ws->sizes);
    double *p = ws->memory;
    for (int l = 0; l < net->nlayers; l++) {
        ws->act[l] = p;
        p += (size_t)max_batch * net->sizes[l + 1];
    }
    ws->grad[0] = p;
    ws->grad[1] = p + (size_t)max_batch * widest;
    *out = ws;
    return FM_OK;
}

void fm_net_workspace_free(fm_net_workspace_t *ws) {
    if (!ws) return;
    free(ws->memory);
    free(ws);
}

/* Whether ws was made for a network of net's shape (a check for bugs, used in asserts). */
static int workspace_fits(const fm_net_t *net, const fm_net_workspace_t *ws) {
    if (ws->nlayers != net->nlayers) return 0;
    for (int l = 0; l <= net->nlayers; l++)
        if (ws->sizes[l] != net->sizes[l]) return 0;
    return 1;
}

/* out[B, sizes[l+1]] = act(in[B, sizes[l]] . W_l + b_l) */
static void layer_forward(const fm_net_t *net, int l, double *out, const double *in, int B,
                          fm_activation_t act) {
    int I = net->sizes[l], O = net->sizes[l + 1];
    fm_dense_forward(out, in, net->params + net->weight_offset[l], NULL, B, I, O);
    fm_activation_bias_forward(out, net->params + net->bias_offset[l], B, O, act);
}

/* The network on in[B, sizes[0]] in chunks of max_batch rows; the last layer's activation is
 * `last` (the output activation, or identity for logits). */
static void forward_chunks(const fm_net_t *net, fm_net_workspace_t *ws, const double *in, int B,
                           double *out, fm_activation_t last) {
    assert(workspace_fits(net, ws));
    int L = net->nlayers, nin = net->sizes[0], nout = net->sizes[L];
    if (!workspace_fits(net, ws)) {
        /* A caller bug that would overrun the workspace: NaN outputs, which no caller mistakes
         * for a prediction. */
        for (size_t i = 0; i < (size_t)(B > 0 ? B : 0) * nout; i++)
            out[i] = NAN;
        return;
    }
    for (int start = 0; start < B; start += ws->max_batch) {
        int n = B - start < ws->max_batch ? B - start : ws->max_batch;
        const double *x = in + (size_t)start * nin;
        for (int l = 0; l < L; l++) {
            double *y = l + 1 < L ? ws->act[l] : out + (size_t)start * nout;
            layer_forward(net, l, y, x, n, l + 1 < L ? net->hidden : last);
            x = y;
        }
    }
}

void fm_net_forward(const fm_net_t *net, fm_net_workspace_t *ws, const double *in, int B,
                    double *out) {
    forward_chunks(net, ws, in, B, out, net->output);
}

void fm_net_forward_logits(const fm_net_t *net, fm_net_workspace_t *ws, const double *in, int B,
                           double *out) {
    forward_chunks(net, ws, in, B, out, FM_ACT_IDENTITY);
}

double fm_net_gradients(const fm_net_t *net, fm_net_workspace_t *ws, const double *in,
                        const double *target, const double *weight, int B, fm_loss_t loss,
                        double *grads) {
    assert(workspace_fits(net, ws));
    assert(B <= ws->max_batch);
    assert(fm_loss_activation(loss) == net->output);
    int L = net->nlayers;
    if (B > ws->max_batch || !workspace_fits(net, ws)) {
        /* A caller bug that would overrun the workspace: report a non-finite loss, which every
         * training loop treats as divergence, and leave no stale gradient behind. */
        memset(grads, 0, net->nparams * sizeof *grads);
        return NAN;
    }

    /* forward, keeping every layer's output; the last layer keeps its logits */
    const double *x = in;
    for (int l = 0; l < L; l++) {
        layer_forward(net, l, ws->act[l], x, B, l + 1 < L ? net->hidden : FM_ACT_IDENTITY);
        x = ws->act[l];
    }
    int nout = net->sizes[L];
    double value = fm_loss_forward(ws->act[L - 1], target, weight, B, nout, loss);
    fm_loss_backward(ws->grad[0], ws->act[L - 1], target, weight, B, nout, loss);

    /* backward: grad[cur] holds dL/d(pre-activation of layer l) */
    int cur = 0;
    for (int l = L - 1; l >= 0; l--) {
        double *dinput = l > 0 ? ws->grad[1 - cur] : NULL;
        const double *input = l > 0 ? ws->act[l - 1] : in;
        fm_dense_backward(dinput, grads + net->weight_offset[l], grads + net->bias_offset[l],
                          ws->grad[cur], input, net->params + net->weight_offset[l], B,
                          net->sizes[l], net->sizes[l + 1]);
        if (l > 0) {
            fm_activation_backward(dinput, dinput, ws->act[l - 1], B, net->sizes[l], net->hidden);
            cur = 1 - cur;
        }
    }
    return value;
}

double fm_net_add_l2(const fm_net_t *net, double l2, double *grads) {
    double sum = 0.0;
    for (int l = 0; l < net->nlayers; l++) {
        size_t start = net->weight_offset[l];
        size_t n = (size_t)net->sizes[l] * net->sizes[l + 1];
        const double *w = net->params + start;
        double *g = grads + start;
        for (size_t i = 0; i < n; i++) {
            sum += w[i] * w[i];
            g[i] += l2 * w[i];
        }
    }
    return 0.5 * l2 * sum;
}
