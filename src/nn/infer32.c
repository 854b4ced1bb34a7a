/*
 * Single-precision inference. Networks are trained in double precision; prediction runs a float
 * copy of the parameters, as TensorFlow Serving and Triton run float32 models, because sgemm does
 * twice the arithmetic per instruction of dgemm and moves half the memory. The hidden layers run
 * in float; the last layer's pre-activation values are widened to double before the output
 * activation (sigmoid, softmax), so probabilities near 0 and 1 keep their relative precision.
 * Scores differ from the double-precision network by about 1e-7 relative (tests/unit/nn).
 *
 * Inputs and outputs stay double at the interface: rows are converted into the workspace a chunk
 * at a time.
 */
#include "nn/nn_internal.h"
#include "nn/nn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#undef I /* <complex.h>, pulled in by OpenBLAS's cblas.h, defines I; we use it as a size */

struct fm_net32 {
    int nlayers;
    int sizes[FM_NET_MAX_LAYERS + 1];
    fm_activation_t hidden, output;
    float *params; /* same layout as fm_net_t's */
    size_t weight_offset[FM_NET_MAX_LAYERS];
    size_t bias_offset[FM_NET_MAX_LAYERS];
};

struct fm_net32_workspace {
    int max_batch;
    int sizes[FM_NET_MAX_LAYERS + 1];
    int nlayers;
    float *in;     /* [max_batch, sizes[0]] */
    float *buf[2]; /* [max_batch, widest layer] each, used in turn */
    float *memory;
};

int fm_net32_new(const fm_net_t *net, fm_net32_t **out, fm_error_t *err) {
    *out = NULL;
    fm_net32_t *n = calloc(1, sizeof *n);
    if (!n) return fm_error_set(err, FM_ENOMEM, "network: out of memory");
    n->nlayers = net->nlayers;
    memcpy(n->sizes, net->sizes, sizeof n->sizes);
    n->hidden = net->hidden;
    n->output = net->output;
    memcpy(n->weight_offset, net->weight_offset, sizeof n->weight_offset);
    memcpy(n->bias_offset, net->bias_offset, sizeof n->bias_offset);
    n->params = malloc((net->nparams ? net->nparams : 1) * sizeof *n->params);
    if (!n->params) {
        free(n);
        return fm_error_set(err, FM_ENOMEM, "network: out of memory for %zu parameters",
                            net->nparams);
    }
    for (size_t i = 0; i < net->nparams; i++)
        n->params[i] = (float)net->params[i];
    *out = n;
    return FM_OK;
}

void fm_net32_free(fm_net32_t *net) {
    if (!net) return;
    free(net->params);
    free(net);
}

int fm_net32_workspace_new(const fm_net32_t *net, int max_batch, fm_net32_workspace_t **out,
                           fm_error_t *err) {
    *out = NULL;
    if (max_batch < 1)
        return fm_error_set(err, FM_EINVAL, "network workspace: max_batch = %d must be >= 1",
                            max_batch);
    size_t widest = 0;
    for (int l = 1; l <= net->nlayers; l++)
        if ((size_t)net->sizes[l] > widest) widest = (size_t)net->sizes[l];
    size_t per_row = (size_t)net->sizes[0] + 2 * widest;
    if (per_row > ((size_t)1 << 31) / (size_t)max_batch)
        return fm_error_set(err, FM_ELIMIT, "network workspace: %d rows of %zu values are too many",
                            max_batch, per_row);
    fm_net32_workspace_t *ws = calloc(1, sizeof *ws);
    if (!ws) return fm_error_set(err, FM_ENOMEM, "network workspace: out of memory");
    ws->memory = malloc(per_row * (size_t)max_batch * sizeof *ws->memory);
    if (!ws->memory) {
        free(ws);
        return fm_error_set(err, FM_ENOMEM, "network workspace: out of memory for %d rows",
                            max_batch);
    }
    ws->max_batch = max_batch;
    ws->nlayers = net->nlayers;
    memcpy(ws->sizes, net->sizes, sizeof ws->sizes);
    ws->in = ws->memory;
    ws->buf[0] = ws->in + (size_t)max_batch * net->sizes[0];
    ws->buf[1] = ws->buf[0] + (size_t)max_batch * widest;
    *out = ws;
    return FM_OK;
}

void fm_net32_workspace_free(fm_net32_workspace_t *ws) {
    if (!ws) return;
    free(ws->memory);
    free(ws);
}

void fm_dense_forward_f32(float *out, const float *in, const float *weight, int B, int I, int O) {
    /* out[B,O] = in[B,I] . weight[I,O] (no bias) */
    if (B <= 0 || O <= 0) return;
    if (B == 1)
        cblas_sgemv(CblasRowMajor, CblasTrans, I, O, 1.0f, weight, O, in, 1, 0.0f, out, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, O, I, 1.0f, in, I, weight, O,
                    0.0f, out, O);
}

void fm_dense_forward_f32_naive(float *out, const float *in, const float *weight, int B, int I,
                                int O) {
    /* out[B,O] = in[B,I] . weight[I,O], accumulated in float in input order */
    for (int b = 0; b < B; b++)
        for (int o = 0; o < O; o++) {
            float sum = 0.0f;
            for (int i = 0; i < I; i++)
                sum += in[(size_t)b * I + i] * weight[(size_t)i * O + o];
            out[(size_t)b * O + o] = sum;
        }
}

static void softmax_row_f32(float *row, int O) {
    float max = row[0];
    for (int k = 1; k < O; k++)
        max = row[k] > max ? row[k] : max;
    float sum = 0.0f;
    for (int k = 0; k < O; k++)
        sum += row[k] = expf(row[k] - max);
    for (int k = 0; k < O; k++)
        row[k] /= sum;
}

/* x[B,O] = act(x + bias) in place, in float. */
static void bias_activation_f32(float *x, const float *bias, int B, int O, fm_activation_t act) {
    for (int b = 0; b < B; b++) {
        float *row = x + (size_t)b * O;
        switch (act) {
        case FM_ACT_IDENTITY:
            for (int k = 0; k < O; k++)
                row[k] += bias[k];
            break;
        case FM_ACT_RELU:
            for (int k = 0; k < O; k++) {
                float v = row[k] + bias[k];
                row[k] = v > 0.0f ? v : 0.0f;
            }
            break;
        case FM_ACT_SIGMOID:
            for (int k = 0; k < O; k++) {
                float z = row[k] + bias[k];
                row[k] = z >= 0.0f ? 1.0f / (1.0f + expf(-z)) : expf(z) / (1.0f + expf(z));
            }
            break;
        case FM_ACT_TANH:
            for (int k = 0; k < O; k++)
                row[k] = tanhf(row[k] + bias[k]);
            break;
        case FM_ACT_SOFTMAX:
            for (int k = 0; k < O; k++)
                row[k] += bias[k];
            softmax_row_f32(row, O);
            break;
        }
    }
}

static int workspace_fits(const fm_net32_t *net, const fm_net32_workspace_t *ws) {
    if (ws->nlayers != net->nlayers) return 0;
    for (int l = 0; l <= net->nlayers; l++)
        if (ws->sizes[l] != net->sizes[l]) return 0;
    return 1;
}

void fm_net32_forward(const fm_net32_t *net, fm_net32_workspace_t *ws, const double *in, int B,
                      double *out) {
    int L = net->nlayers, nin = net->sizes[0], nout = net->sizes[L];
    if (!workspace_fits(net, ws)) {
        for (size_t i = 0; i < (size_t)(B > 0 ? B : 0) * nout; i++)
            out[i] = NAN;
        return;
    }
    for (int start = 0; start < B; start += ws->max_batch) {
        int n = B - start < ws->max_batch ? B - start : ws->max_batch;
        const double *src = in + (size_t)start * nin;
        size_t cells = (size_t)n * nin;
        for (size_t i = 0; i < cells; i++)
            ws->in[i] = (float)src[i];
        const float *x = ws->in;
        int cur = 0;
        for (int l = 0; l < L; l++) {
            float *y = ws->buf[cur];
            int I = net->sizes[l], O = net->sizes[l + 1];
            fm_dense_forward_f32(y, x, net->params + net->weight_offset[l], n, I, O);
            fm_activation_t act = l + 1 < L ? net->hidden : FM_ACT_IDENTITY;
            bias_activation_f32(y, net->params + net->bias_offset[l], n, O, act);
            x = y;
            cur = 1 - cur;
        }
        double *dst = out + (size_t)start * nout;
        for (size_t i = 0; i < (size_t)n * nout; i++)
            dst[i] = (double)x[i];
        fm_activation_bias_forward(dst, NULL, n, nout, net->output);
    }
}
