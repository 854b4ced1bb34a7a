/*
 * The dense (fully connected) layer out = in . W + b over row-major batches, with weights in the
 * Keras kernel layout W[I, O]. The optimised kernels hand the products to CBLAS (OpenBLAS): dgemm
 * in general, dgemv where one side is a vector (a single row, as when serving one request, or a
 * single output, as in binary and regression heads), where OpenBLAS's matrix-matrix path has
 * needless packing overhead. The naive triple loops beside them are the references the tests
 * compare against.
 *
 * dgemm is called with beta = 0 so it overwrites its output without a prior zeroing pass. dgemv
 * is called with beta = 1 on an output we fill first (with the bias or zeros): BLAS versions differ
 * on whether beta = 0 still reads y, and a NaN left in a reused buffer must never leak through.
 */
#include "nn/nn.h"

#include <cblas.h>
#include <string.h>

/* OpenBLAS's cblas.h pulls in <complex.h>, whose macro I (the imaginary unit) would replace the
 * input-width parameter I used throughout this file. */
#undef I

/* y[n] = bias[n], or zeros when bias is NULL. */
static void fill_bias(double *y, const double *bias, int n) {
    if (bias)
        memcpy(y, bias, (size_t)n * sizeof *y);
    else
        memset(y, 0, (size_t)n * sizeof *y);
}

void fm_dense_forward(double *out, const double *in, const double *weight, const double *bias,
                      int B, int I, int O) {
    /* out[B,O] = in[B,I] . weight[I,O] + bias[O] */
    if (B <= 0 || O <= 0) return;
    if (I <= 0) {
        for (int b = 0; b < B; b++)
            fill_bias(out + (size_t)b * O, bias, O);
        return;
    }
    if (B == 1) {
        /* out[O] = weight^T[O,I] . in[I] + bias */
        fill_bias(out, bias, O);
        cblas_dgemv(CblasRowMajor, CblasTrans, I, O, 1.0, weight, O, in, 1, 1.0, out, 1);
        return;
    }
    if (O == 1) {
        /* out[B] = in[B,I] . weight[I] + bias[0] */
        double b0 = bias ? bias[0] : 0.0;
        for (int b = 0; b < B; b++)
            out[b] = b0;
        cblas_dgemv(CblasRowMajor, CblasNoTrans, B, I, 1.0, in, I, weight, 1, 1.0, out, 1);
        return;
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, O, I, 1.0, in, I, weight, O, 0.0, out,
                O);
    if (bias) {
        for (int b = 0; b < B; b++) {
            double *row = out + (size_t)b * O;
            for (int o = 0; o < O; o++)
                row[o] += bias[o];
        }
    }
}

void fm_dense_forward_naive(double *out, const double *in, const double *weight, const double *bias,
                            int B, int I, int O) {
    /* out[B,O] = in[B,I] . weight[I,O] + bias[O] */
    for (int b = 0; b < B; b++) {
        for (int o = 0; o < O; o++) {
            double sum = bias ? bias[o] : 0.0;
            for (int i = 0; i < I; i++)
                sum += in[(size_t)b * I + i] * weight[(size_t)i * O + o];
            out[(size_t)b * O + o] = sum;
        }
    }
}

void fm_dense_backward(double *dinput, double *dweight, double *dbias, const double *dout,
                       const double *in, const double *weight, int B, int I, int O) {
    /*
     * dout[B,O], in[B,I], weight[I,O] ->
     * dinput[B,I] = dout . weight^T, dweight[I,O] = in^T . dout, dbias[O] = column sums of dout
     */
    if (I <= 0 || O <= 0) {
        if (dbias && O > 0) memset(dbias, 0, (size_t)O * sizeof *dbias);
        return;
    }
    if (B <= 0) {
        memset(dweight, 0, (size_t)I * O * sizeof *dweight);
        if (dbias) memset(dbias, 0, (size_t)O * sizeof *dbias);
        return;
    }

    if (dinput) {
        if (O == 1) {
            /* an outer product: dinput[b,:] = dout[b] * weight[:] */
            for (int b = 0; b < B; b++) {
                double g = dout[b];
                double *row = dinput + (size_t)b * I;
                for (int i = 0; i < I; i++)
                    row[i] = g * weight[i];
            }
        } else if (B == 1) {
            /* dinput[I] = weight[I,O] . dout[O] */
            memset(dinput, 0, (size_t)I * sizeof *dinput);
            cblas_dgemv(CblasRowMajor, CblasNoTrans, I, O, 1.0, weight, O, dout, 1, 1.0, dinput, 1);
        } else {
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, I, O, 1.0, dout, O, weight, O,
                        0.0, dinput, I);
        }
    }

    if (O == 1) {
        /* dweight[I] = in^T[I,B] . dout[B] */
        memset(dweight, 0, (size_t)I * sizeof *dweight);
        cblas_dgemv(CblasRowMajor, CblasTrans, B, I, 1.0, in, I, dout, 1, 1.0, dweight, 1);
    } else if (B == 1) {
        /* an outer product: dweight[i,:] = in[i] * dout[:] */
        for (int i = 0; i < I; i++) {
            double x = in[i];
            double *row = dweight + (size_t)i * O;
            for (int o = 0; o < O; o++)
                row[o] = x * dout[o];
        }
    } else {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, I, O, B, 1.0, in, I, dout, O, 0.0,
                    dweight, O);
    }

    if (dbias) {
        memcpy(dbias, dout, (size_t)O * sizeof *dbias);
        for (int b = 1; b < B; b++) {
            const double *row = dout + (size_t)b * O;
            for (int o = 0; o < O; o++)
                dbias[o] += row[o];
        }
    }
}

void fm_dense_backward_naive(double *dinput, double *dweight, double *dbias, const double *dout,
                             const double *in, const double *weight, int B, int I, int O) {
    /* as fm_dense_backward, one scalar product at a time */
    if (dinput) {
        for (int b = 0; b < B; b++) {
            for (int i = 0; i < I; i++) {
                double sum = 0.0;
                for (int o = 0; o < O; o++)
                    sum += dout[(size_t)b * O + o] * weight[(size_t)i * O + o];
                dinput[(size_t)b * I + i] = sum;
            }
        }
    }
    for (int i = 0; i < I; i++) {
        for (int o = 0; o < O; o++) {
            double sum = 0.0;
            for (int b = 0; b < B; b++)
                sum += in[(size_t)b * I + i] * dout[(size_t)b * O + o];
            dweight[(size_t)i * O + o] = sum;
        }
    }
    if (dbias) {
        for (int o = 0; o < O; o++) {
            double sum = 0.0;
            for (int b = 0; b < B; b++)
                sum += dout[(size_t)b * O + o];
            dbias[o] = sum;
        }
    }
}

void fm_nn_set_threads(int threads) {
    openblas_set_num_threads(threads > 0 ? threads : 1);
}
