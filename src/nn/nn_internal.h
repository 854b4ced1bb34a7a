/*
 * Kernels shared only inside the nn area: the fused bias-plus-activation pass that the network's
 * forward pass runs after a bias-free dense product, so each layer's output is read and written
 * once instead of twice.
 */
#ifndef FM_NN_INTERNAL_H
#define FM_NN_INTERNAL_H

#include "nn/nn.h"

#include <math.h>

/* x[B,O] = act(x[B,O] + bias[O]) in place; bias may be NULL (then this is fm_activation_forward).
 */
void fm_activation_bias_forward(double *x, const double *bias, int B, int O, fm_activation_t act);

/* The stable logistic function 1 / (1 + exp(-z)), never overflowing for large |z|. */
static inline double fm_sigmoid(double z) {
    if (z >= 0.0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

#endif
