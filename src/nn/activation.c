/*
 * Activation functions: element-wise identity, sigmoid, tanh and relu, and softmax over each row,
 * as forward/backward pairs over caller buffers. The backward pass takes the forward output (not
 * the input), which is all each derivative needs and is what the network keeps anyway:
 * sigmoid' = out (1 - out), tanh' = 1 - out^2, relu' = [out > 0] (0 at 0), and softmax's full
 * per-row Jacobian product din = out * (dout - sum(dout * out)).
 *
 * Sigmoid is evaluated without overflow for any input (exp of a non-positive number only) and
 * softmax subtracts the row maximum before exponentiating.
 */
#include "nn/nn_internal.h"
#include "nn/nn.h"

#include <math.h>
#include <string.h>

const char *fm_activation_name(fm_activation_t act) {
    switch (act) {
    case FM_ACT_IDENTITY:
        return "identity";
    case FM_ACT_SIGMOID:
        return "sigmoid";
    case FM_ACT_TANH:
        return "tanh";
    case FM_ACT_RELU:
        return "relu";
    case FM_ACT_SOFTMAX:
        return "softmax";
    }
    return "unknown";
}

int fm_activation_parse(const char *text, fm_activation_t *out) {
    static const struct {
        const char *name;
        fm_activation_t act;
    } table[] = {
        {"identity", FM_ACT_IDENTITY}, {"linear", FM_ACT_IDENTITY}, {"sigmoid", FM_ACT_SIGMOID},
        {"tanh", FM_ACT_TANH},         {"relu", FM_ACT_RELU},       {"softmax", FM_ACT_SOFTMAX},
    };
    if (!text) return FM_EINVAL;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(text, table[i].name) == 0) {
            if (out) *out = table[i].act;
            return FM_OK;
        }
    }
    return FM_EINVAL;
}

/* row[O] = softmax(row[O]) in place. */
static void softmax_row(double *row, int O) {
    double max = row[0];
    for (int k = 1; k < O; k++)
        max = row[k] > max ? row[k] : max;
    double sum = 0.0;
    for (int k = 0; k < O; k++) {
        row[k] = exp(row[k] - max);
        sum += row[k];
    }
    double inv = 1.0 / sum;
    for (int k = 0; k < O; k++)
        row[k] *= inv;
}

void fm_activation_bias_forward(double *x, const double *bias, int B, int O, fm_activation_t act) {
    /* x[B,O], bias[O] or NULL. One pass per row: bias add and activation fused. The element-wise
     * loops are branch-free so the compiler vectorises them. */
    for (int b = 0; b < B; b++) {
        double *row = x + (size_t)b * O;
        if (bias) {
            if (act == FM_ACT_RELU) {
                for (int k = 0; k < O; k++) {
                    double v = row[k] + bias[k];
                    row[k] = v > 0.0 ? v : 0.0;
                }
                continue;
            }
            for (int k = 0; k < O; k++)
                row[k] += bias[k];
        }
        switch (act) {
        case FM_ACT_IDENTITY:
            break;
        case FM_ACT_SIGMOID:
            for (int k = 0; k < O; k++)
                row[k] = fm_sigmoid(row[k]);
            break;
        case FM_ACT_TANH:
            for (int k = 0; k < O; k++)
                row[k] = tanh(row[k]);
            break;
        case FM_ACT_RELU:
            for (int k = 0; k < O; k++)
                row[k] = row[k] > 0.0 ? row[k] : 0.0;
            break;
        case FM_ACT_SOFTMAX:
            softmax_row(row, O);
            break;
        }
    }
}

void fm_activation_forward(double *out, const double *in, int B, int O, fm_activation_t act) {
    /* out[B,O] = act(in[B,O]); out may equal in. */
    size_t n = (size_t)(B > 0 ? B : 0) * (size_t)(O > 0 ? O : 0);
    if (out != in && n) memcpy(out, in, n * sizeof *out);
    fm_activation_bias_forward(out, NULL, B, O, act);
}

void fm_activation_backward(double *din, const double *dout, const double *out, int B, int O,
                            fm_activation_t act) {
    /* din[B,O], dout[B,O], out[B,O] = act(in); din may equal dout. */
    size_t n = (size_t)(B > 0 ? B : 0) * (size_t)(O > 0 ? O : 0);
    switch (act) {
    case FM_ACT_IDENTITY:
        if (din != dout && n) memmove(din, dout, n * sizeof *din);
        break;
    case FM_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            din[i] = dout[i] * out[i] * (1.0 - out[i]);
        break;
    case FM_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            din[i] = dout[i] * (1.0 - out[i] * out[i]);
        break;
    case FM_ACT_RELU:
        /* both loads unconditional, so the select is branch-free and vectorises; a branch here
         * mispredicts on about half the units */
        for (size_t i = 0; i < n; i++) {
            double g = dout[i], o = out[i];
            din[i] = o > 0.0 ? g : 0.0;
        }
        break;
    case FM_ACT_SOFTMAX:
        for (int b = 0; b < B; b++) {
            const double *g = dout + (size_t)b * O, *p = out + (size_t)b * O;
            double *d = din + (size_t)b * O;
            double dot = 0.0;
            for (int k = 0; k < O; k++)
                dot += g[k] * p[k];
            for (int k = 0; k < O; k++)
                d[k] = p[k] * (g[k] - dot);
        }
        break;
    }
}
