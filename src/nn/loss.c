/*
 * Losses fused with their output activation, taking logits so they stay finite for any input:
 * mean squared error (identity output), binary cross-entropy on logits (sigmoid output) written as
 * softplus(z) - y z with softplus(z) = max(z, 0) + log1p(exp(-|z|)), and categorical cross-entropy
 * through a max-shifted log-softmax. The batch loss is the weighted mean of the row losses,
 * L = sum_b w_b l_b / sum_b w_b, and the gradients are those of that L:
 *   MSE:          dL/dz_bk = (w_b / W) * 2 (z_bk - y_bk) / O
 *   binary:       dL/dz_bk = (w_b / W) * (sigmoid(z_bk) - y_bk) / O
 *   categorical:  dL/dz_bk = (w_b / W) * (p_bk sum_j y_bj - y_bk)   (= p - y for a distribution y)
 * When the weights sum to zero the batch carries no information: L is 0 and so is the gradient,
 * rather than a NaN that would poison a whole training run.
 */
#include "nn/nn_internal.h"
#include "nn/nn.h"

#include <math.h>
#include <string.h>

const char *fm_loss_name(fm_loss_t loss) {
    switch (loss) {
    case FM_LOSS_MSE:
        return "mse";
    case FM_LOSS_BINARY:
        return "binary_crossentropy";
    case FM_LOSS_CATEGORICAL:
        return "categorical_crossentropy";
    }
    return "unknown";
}

fm_activation_t fm_loss_activation(fm_loss_t loss) {
    switch (loss) {
    case FM_LOSS_MSE:
        return FM_ACT_IDENTITY;
    case FM_LOSS_BINARY:
        return FM_ACT_SIGMOID;
    case FM_LOSS_CATEGORICAL:
        return FM_ACT_SOFTMAX;
    }
    return FM_ACT_IDENTITY;
}

/* log(sum_k exp(z_k)) over one row, shifted by the row maximum. */
static double log_sum_exp(const double *z, int O) {
    double max = z[0];
    for (int k = 1; k < O; k++)
        max = z[k] > max ? z[k] : max;
    double sum = 0.0;
    for (int k = 0; k < O; k++)
        sum += exp(z[k] - max);
    return max + log(sum);
}

/* The unweighted loss l_b of one row z[O] against y[O]. */
static double row_loss(const double *z, const double *y, int O, fm_loss_t loss) {
    double sum = 0.0;
    switch (loss) {
    case FM_LOSS_MSE:
        for (int k = 0; k < O; k++)
            sum += (z[k] - y[k]) * (z[k] - y[k]);
        return sum / O;
    case FM_LOSS_BINARY:
        for (int k = 0; k < O; k++) {
            double zk = z[k];
            sum += (zk > 0.0 ? zk : 0.0) - y[k] * zk + log1p(exp(-fabs(zk)));
        }
        return sum / O;
    case FM_LOSS_CATEGORICAL: {
        /* -sum_k y_k (z_k - lse) = lse sum_k y_k - sum_k y_k z_k */
        double lse = log_sum_exp(z, O), ysum = 0.0;
        for (int k = 0; k < O; k++) {
            ysum += y[k];
            sum += y[k] * z[k];
        }
        return lse * ysum - sum;
    }
    }
    return 0.0;
}

/* The sum of the weights (B when weight is NULL). */
static double weight_sum(const double *weight, int B) {
    if (!weight) return (double)B;
    double sum = 0.0;
    for (int b = 0; b < B; b++)
        sum += weight[b];
    return sum;
}

double fm_loss_forward(const double *logits, const double *target, const double *weight, int B,
                       int O, fm_loss_t loss) {
    /* logits[B,O], target[B,O], weight[B] or NULL -> L */
    if (B <= 0 || O <= 0) return 0.0;
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        double l = row_loss(logits + (size_t)b * O, target + (size_t)b * O, O, loss);
        total += weight ? weight[b] * l : l;
    }
    double wsum = weight_sum(weight, B);
    return wsum != 0.0 ? total / wsum : 0.0;
}

void fm_loss_backward(double *dlogits, const double *logits, const double *target,
                      const double *weight, int B, int O, fm_loss_t loss) {
    /* dlogits[B,O] = dL/dlogits; logits[B,O], target[B,O], weight[B] or NULL */
    if (B <= 0 || O <= 0) return;
    double wsum = weight_sum(weight, B);
    if (wsum == 0.0) {
        memset(dlogits, 0, (size_t)B * O * sizeof *dlogits);
        return;
    }
    double inv = 1.0 / wsum;
    size_t n = (size_t)B * O;
    switch (loss) {
    case FM_LOSS_MSE:
        if (!weight) {
            double s = 2.0 * inv / O;
            for (size_t i = 0; i < n; i++)
                dlogits[i] = s * (logits[i] - target[i]);
            return;
        }
        for (int b = 0; b < B; b++) {
            double s = 2.0 * weight[b] * inv / O;
            size_t row = (size_t)b * O;
            for (int k = 0; k < O; k++)
                dlogits[row + k] = s * (logits[row + k] - target[row + k]);
        }
        return;
    case FM_LOSS_BINARY:
        if (!weight) {
            double s = inv / O;
            for (size_t i = 0; i < n; i++)
                dlogits[i] = s * (fm_sigmoid(logits[i]) - target[i]);
            return;
        }
        for (int b = 0; b < B; b++) {
            double s = weight[b] * inv / O;
            size_t row = (size_t)b * O;
            for (int k = 0; k < O; k++)
                dlogits[row + k] = s * (fm_sigmoid(logits[row + k]) - target[row + k]);
        }
        return;
    case FM_LOSS_CATEGORICAL:
        for (int b = 0; b < B; b++) {
            double s = (weight ? weight[b] : 1.0) * inv;
            const double *z = logits + (size_t)b * O, *y = target + (size_t)b * O;
            double *d = dlogits + (size_t)b * O;
            double lse = log_sum_exp(z, O), ysum = 0.0;
            for (int k = 0; k < O; k++)
                ysum += y[k];
            for (int k = 0; k < O; k++)
                d[k] = s * (exp(z[k] - lse) * ysum - y[k]);
        }
        return;
    }
}
