/*
 * The numerical engine: dense layers, activations, losses, whole networks and optimisers, in
 * double precision, following llm.c's conventions:
 * - each operation is an X_forward / X_backward pair of functions over caller-owned buffers,
 *   arguments ordered outputs, inputs, weights, sizes;
 * - every kernel opens with its shapes in a comment;
 * - a naive reference kernel (X_naive) stays beside each optimised one and the tests compare them;
 * - every gradient is checked against finite differences in tests/unit/nn/test_nn_*.c.
 * Matrices are row-major. A batch of B rows of width I is in[B * I]. Dense weights are [I, O] (the
 * Keras kernel layout), so out = in . W + b.
 *
 * Optimised kernels use CBLAS (OpenBLAS). Results depend only on inputs and the BLAS thread
 * count, so training is deterministic for a given seed and thread count.
 *
 * Thread-safety: an fm_net_t is read-only during prediction and may be shared by threads that
 * each use their own fm_net_workspace_t. Training mutates parameters and is single-owner.
 */
#ifndef FM_NN_H
#define FM_NN_H

#include "core/error.h"
#include "core/rng.h"

#include <stddef.h>

/* Sets the number of threads the BLAS kernels use (process-wide; call before work starts). */
void fm_nn_set_threads(int threads);

/* ---- Activations ------------------------------------------------------------------------- */

typedef enum {
    FM_ACT_IDENTITY = 0,
    FM_ACT_SIGMOID = 1,
    FM_ACT_TANH = 2,
    FM_ACT_RELU = 3,
    FM_ACT_SOFTMAX = 4, /* over each row */
} fm_activation_t;

const char *fm_activation_name(fm_activation_t act);
/* Parses "identity"/"linear", "sigmoid", "tanh", "relu", "softmax". */
int fm_activation_parse(const char *text, fm_activation_t *out);

/* out[B,O] = act(in[B,O]). out may equal in. */
void fm_activation_forward(double *out, const double *in, int B, int O, fm_activation_t act);
/*
 * din[B,O] = dL/din given dout[B,O] = dL/dout and out[B,O] = act(in) (the forward output).
 * din may equal dout. Softmax uses the full per-row Jacobian: din = out * (dout - sum(dout*out)).
 */
void fm_activation_backward(double *din, const double *dout, const double *out, int B, int O,
                            fm_activation_t act);

/* ---- Dense layer ------------------------------------------------------------------------- */

/* out[B,O] = in[B,I] . weight[I,O] + bias[O] (bias may be NULL). CBLAS dgemm. */
void fm_dense_forward(double *out, const double *in, const double *weight, const double *bias,
                      int B, int I, int O);
void fm_dense_forward_naive(double *out, const double *in, const double *weight, const double *bias,
                            int B, int I, int O);

/*
 * Given dout[B,O] = dL/dout:
 *   dinput[B,I]  = dout . weight^T       (overwritten; skipped when dinput is NULL)
 *   dweight[I,O] = in^T . dout           (overwritten)
 *   dbias[O]     = sum over rows of dout (overwritten; skipped when NULL)
 */
void fm_dense_backward(double *dinput, double *dweight, double *dbias, const double *dout,
                       const double *in, const double *weight, int B, int I, int O);
void fm_dense_backward_naive(double *dinput, double *dweight, double *dbias, const double *dout,
                             const double *in, const double *weight, int B, int I, int O);

/* ---- Losses ------------------------------------------------------------------------------ */

/*
 * Each loss is fused with its output activation and takes the pre-activation logits z[B,O], which
 * keeps it finite for any z:
 *   FM_LOSS_MSE:      p = z;          l_b = mean_k (z_bk - y_bk)^2
 *   FM_LOSS_BINARY:   p = sigmoid(z); l_b = mean_k softplus(z_bk) - y_bk z_bk   (y in [0,1])
 *   FM_LOSS_CATEGORICAL: p = softmax(z) over each row; l_b = -sum_k y_bk log p_bk (y a
 *                     distribution, usually one-hot)
 * The batch loss is the weighted mean L = sum_b w_b l_b / sum_b w_b (w NULL: all ones).
 */
typedef enum {
    FM_LOSS_MSE = 0,
    FM_LOSS_BINARY = 1,
    FM_LOSS_CATEGORICAL = 2,
} fm_loss_t;

const char *fm_loss_name(fm_loss_t loss);
/* The output activation each loss is fused with (identity, sigmoid, softmax). */
fm_activation_t fm_loss_activation(fm_loss_t loss);

/* Returns L for logits[B,O] against target[B,O] with optional weight[B]. */
double fm_loss_forward(const double *logits, const double *target, const double *weight, int B,
                       int O, fm_loss_t loss);
/* dlogits[B,O] = dL/dlogits for the same L. */
void fm_loss_backward(double *dlogits, const double *logits, const double *target,
                      const double *weight, int B, int O, fm_loss_t loss);

/* ---- Networks ---------------------------------------------------------------------------- */

/*
 * A stack of dense layers. Layer l maps sizes[l] -> sizes[l+1] then applies its activation:
 * `hidden` for all but the last layer, `output` for the last. One layer with identity, sigmoid or
 * softmax output is linear, logistic or softmax regression. Parameters live in one array:
 * [W0 (sizes[0]*sizes[1]), b0 (sizes[1]), W1, b1, ...].
 */
#define FM_NET_MAX_LAYERS 16

typedef struct fm_net {
    int nlayers;                      /* number of dense layers, 1..FM_NET_MAX_LAYERS */
    int sizes[FM_NET_MAX_LAYERS + 1]; /* input width, hidden widths, output width */
    fm_activation_t hidden;           /* activation after every layer but the last */
    fm_activation_t output;           /* activation after the last layer */
    size_t nparams;
    double *params;                          /* owned */
    size_t weight_offset[FM_NET_MAX_LAYERS]; /* index of W_l in params */
    size_t bias_offset[FM_NET_MAX_LAYERS];   /* index of b_l in params */
} fm_net_t;

/*
 * Creates a network with nsizes = nlayers + 1 widths (each >= 1) and zeroed parameters. *out is
 * owned by the caller (fm_net_free).
 */
int fm_net_new(const int *sizes, int nsizes, fm_activation_t hidden, fm_activation_t output,
               fm_net_t **out, fm_error_t *err);
/* Glorot-uniform weights (He-uniform before relu), zero biases, drawn from rng. */
void fm_net_init_weights(fm_net_t *net, fm_rng_t *rng);
/* A deep copy (for best-weights snapshots and version swaps). NULL on allocation failure. */
fm_net_t *fm_net_clone(const fm_net_t *net);
void fm_net_free(fm_net_t *net);

/* Buffers for forward and backward passes on up to max_batch rows. One per thread. */
typedef struct fm_net_workspace fm_net_workspace_t;
int fm_net_workspace_new(const fm_net_t *net, int max_batch, fm_net_workspace_t **out,
                         fm_error_t *err);
void fm_net_workspace_free(fm_net_workspace_t *ws);

/*
 * out[B, sizes[nlayers]] = the network's output (after the output activation) for in[B, sizes[0]].
 * B may exceed the workspace's max_batch: rows are processed in chunks.
 */
void fm_net_forward(const fm_net_t *net, fm_net_workspace_t *ws, const double *in, int B,
                    double *out);
/* As fm_net_forward but out holds the last layer's pre-activation values (logits, scores). */
void fm_net_forward_logits(const fm_net_t *net, fm_net_workspace_t *ws, const double *in, int B,
                           double *out);

/*
 * One forward and backward pass on a batch (B <= max_batch): grads[nparams] is overwritten with
 * dL/dparams of the loss (fused with the output activation, see fm_loss_forward) against
 * target[B, out] with optional weight[B]. Returns L. The network's output activation must be the
 * loss's (fm_loss_activation).
 */
double fm_net_gradients(const fm_net_t *net, fm_net_workspace_t *ws, const double *in,
                        const double *target, const double *weight, int B, fm_loss_t loss,
                        double *grads);

/* Adds l2 * W to the weight entries of grads (biases untouched); returns (l2 / 2) * sum W^2. */
double fm_net_add_l2(const fm_net_t *net, double l2, double *grads);

/* ---- Single-precision inference ------------------------------------------------------- */

/*
 * A float copy of a trained network for prediction (see src/nn/infer32.c): hidden layers in
 * float, the output activation in double. Read-only after creation: threads share one, each with
 * its own fm_net32_workspace_t.
 */
typedef struct fm_net32 fm_net32_t;
typedef struct fm_net32_workspace fm_net32_workspace_t;

/* Copies net's parameters to float. *out is owned by the caller (fm_net32_free). */
int fm_net32_new(const fm_net_t *net, fm_net32_t **out, fm_error_t *err);
void fm_net32_free(fm_net32_t *net);
/* Buffers for up to max_batch rows. One per thread. */
int fm_net32_workspace_new(const fm_net32_t *net, int max_batch, fm_net32_workspace_t **out,
                           fm_error_t *err);
void fm_net32_workspace_free(fm_net32_workspace_t *ws);
/* out[B, sizes[nlayers]] = the network's output for in[B, sizes[0]], in chunks of max_batch. */
void fm_net32_forward(const fm_net32_t *net, fm_net32_workspace_t *ws, const double *in, int B,
                      double *out);
/* out[B,O] = in[B,I] . weight[I,O] in float (sgemm / sgemv), and its naive reference. */
void fm_dense_forward_f32(float *out, const float *in, const float *weight, int B, int I, int O);
void fm_dense_forward_f32_naive(float *out, const float *in, const float *weight, int B, int I,
                                int O);

/* ---- Optimisers -------------------------------------------------------------------------- */

typedef enum {
    FM_OPT_GD = 0,   /* full-batch gradient descent: p -= lr * g */
    FM_OPT_SGD = 1,  /* mini-batch SGD with optional (Nesterov) momentum, as Keras SGD */
    FM_OPT_ADAM = 2, /* Adam as Keras: lr_t = lr sqrt(1-b2^t)/(1-b1^t); p -= lr_t m/(sqrt(v)+eps) */
} fm_optimizer_kind_t;

typedef struct fm_optimizer_config {
    fm_optimizer_kind_t kind;
    double lr;       /* learning rate */
    double momentum; /* SGD only; 0 = plain SGD */
    int nesterov;    /* SGD only */
    double beta1;    /* Adam; default 0.9 */
    double beta2;    /* Adam; default 0.999 */
    double epsilon;  /* Adam; default 1e-7 */
} fm_optimizer_config_t;

const char *fm_optimizer_name(fm_optimizer_kind_t kind);
/* Parses "gd", "sgd", "adam". */
int fm_optimizer_parse(const char *text, fm_optimizer_kind_t *out);
/* The defaults for kind: lr 0.001 for Adam (Keras), 0.01 for SGD and GD, momentum 0. */
fm_optimizer_config_t fm_optimizer_defaults(fm_optimizer_kind_t kind);

typedef struct fm_optimizer {
    fm_optimizer_config_t config;
    size_t n;
    double *m; /* owned: SGD velocity or Adam first moment; NULL when unused */
    double *v; /* owned: Adam second moment; NULL when unused */
    long t;    /* steps taken */
} fm_optimizer_t;

int fm_optimizer_init(fm_optimizer_t *opt, const fm_optimizer_config_t *config, size_t nparams,
                      fm_error_t *err);
/* Updates params[n] in place from grads[n]. */
void fm_optimizer_step(fm_optimizer_t *opt, double *params, const double *grads);
void fm_optimizer_deinit(fm_optimizer_t *opt);

#endif
