/*
 * nn_train_steps: runs a few optimiser steps of a network on given data, for the NumPy reference
 * test (tests/ref/test_nn_reference.py). Reads whitespace-separated tokens from stdin:
 *
 *   nsizes size_0 ... size_{nsizes-1}
 *   hidden_activation loss optimizer        (names: relu, binary_crossentropy, adam, ...)
 *   lr momentum nesterov beta1 beta2 epsilon l2
 *   steps batch nrows has_weight            (nrows a multiple of batch)
 *   params[nparams]  x[nrows * size_0]  y[nrows * size_last]  [w[nrows] when has_weight]
 *
 * Step k trains on rows [j * batch, (j + 1) * batch) with j = k mod (nrows / batch): gradients of
 * the loss plus the L2 penalty (fm_net_add_l2), then one optimiser step. Prints, one per line, the
 * objective (loss + penalty) before each step, then the final parameters on one line, all with 17
 * significant digits. Malformed input: a message on stderr and exit status 2.
 */
#include "nn/nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_double(double *x, const char *what) {
    if (scanf("%lf", x) == 1) return 0;
    fprintf(stderr, "nn_train_steps: expected a number for %s\n", what);
    return -1;
}

static int read_int(int *x, const char *what) {
    if (scanf("%d", x) == 1) return 0;
    fprintf(stderr, "nn_train_steps: expected an integer for %s\n", what);
    return -1;
}

static int read_doubles(double *x, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (read_double(&x[i], what)) return -1;
    return 0;
}

static int parse_loss(const char *text, fm_loss_t *loss) {
    for (int l = FM_LOSS_MSE; l <= FM_LOSS_CATEGORICAL; l++) {
        if (strcmp(text, fm_loss_name((fm_loss_t)l)) == 0) {
            *loss = (fm_loss_t)l;
            return 0;
        }
    }
    fprintf(stderr, "nn_train_steps: unknown loss '%s'\n", text);
    return -1;
}

int main(void) {
    int sizes[FM_NET_MAX_LAYERS + 1], nsizes, steps, batch, nrows, has_weight;
    char hidden_name[32], loss_name[64], opt_name[32];
    fm_activation_t hidden;
    fm_loss_t loss;
    fm_optimizer_config_t config;
    double l2;
    fm_error_t err;

    if (read_int(&nsizes, "nsizes")) return 2;
    if (nsizes < 2 || nsizes > FM_NET_MAX_LAYERS + 1) {
        fprintf(stderr, "nn_train_steps: nsizes %d out of range\n", nsizes);
        return 2;
    }
    for (int i = 0; i < nsizes; i++)
        if (read_int(&sizes[i], "a layer width")) return 2;
    if (scanf("%31s %63s %31s", hidden_name, loss_name, opt_name) != 3) {
        fprintf(stderr, "nn_train_steps: expected activation, loss and optimizer names\n");
        return 2;
    }
    if (fm_activation_parse(hidden_name, &hidden)) {
        fprintf(stderr, "nn_train_steps: unknown activation '%s'\n", hidden_name);
        return 2;
    }
    if (parse_loss(loss_name, &loss)) return 2;
    fm_optimizer_kind_t kind;
    if (fm_optimizer_parse(opt_name, &kind)) {
        fprintf(stderr, "nn_train_steps: unknown optimizer '%s'\n", opt_name);
        return 2;
    }
    config = fm_optimizer_defaults(kind);
    if (read_double(&config.lr, "lr") || read_double(&config.momentum, "momentum") ||
        read_int(&config.nesterov, "nesterov") || read_double(&config.beta1, "beta1") ||
        read_double(&config.beta2, "beta2") || read_double(&config.epsilon, "epsilon") ||
        read_double(&l2, "l2") || read_int(&steps, "steps") || read_int(&batch, "batch") ||
        read_int(&nrows, "nrows") || read_int(&has_weight, "has_weight"))
        return 2;
    if (steps < 0 || batch < 1 || nrows < batch || nrows % batch != 0) {
        fprintf(stderr, "nn_train_steps: need steps >= 0 and nrows a positive multiple of batch\n");
        return 2;
    }

    fm_net_t *net = NULL;
    if (fm_net_new(sizes, nsizes, hidden, fm_loss_activation(loss), &net, &err)) {
        fprintf(stderr, "nn_train_steps: %s\n", err.msg);
        return 2;
    }
    int nin = sizes[0], nout = sizes[nsizes - 1];
    double *x = malloc((size_t)nrows * nin * sizeof *x);
    double *y = malloc((size_t)nrows * nout * sizeof *y);
    double *w = has_weight ? malloc((size_t)nrows * sizeof *w) : NULL;
    double *grads = malloc(net->nparams * sizeof *grads);
    fm_net_workspace_t *ws = NULL;
    fm_optimizer_t opt = {0};
    int status = 2;
    if (!x || !y || (has_weight && !w) || !grads) {
        fprintf(stderr, "nn_train_steps: out of memory\n");
        goto done;
    }
    if (read_doubles(net->params, net->nparams, "a parameter") ||
        read_doubles(x, (size_t)nrows * nin, "an input value") ||
        read_doubles(y, (size_t)nrows * nout, "a target value") ||
        (w && read_doubles(w, (size_t)nrows, "a sample weight")))
        goto done;
    if (fm_net_workspace_new(net, batch, &ws, &err) ||
        fm_optimizer_init(&opt, &config, net->nparams, &err)) {
        fprintf(stderr, "nn_train_steps: %s\n", err.msg);
        goto done;
    }

    int nbatches = nrows / batch;
    for (int k = 0; k < steps; k++) {
        size_t first = (size_t)(k % nbatches) * batch;
        double L = fm_net_gradients(net, ws, x + first * nin, y + first * nout,
                                    w ? w + first : NULL, batch, loss, grads);
        L += fm_net_add_l2(net, l2, grads);
        printf("%.17g\n", L);
        fm_optimizer_step(&opt, net->params, grads);
    }
    for (size_t i = 0; i < net->nparams; i++)
        printf("%.17g%c", net->params[i], i + 1 < net->nparams ? ' ' : '\n');
    status = 0;

done:
    fm_optimizer_deinit(&opt);
    fm_net_workspace_free(ws);
    fm_net_free(net);
    free(x);
    free(y);
    free(w);
    free(grads);
    return status;
}
