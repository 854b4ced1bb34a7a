/*
 * Optimisers that update a parameter array in place from its gradient, with the update rules of
 * Keras 2 / tf.keras so that a model trained here matches one trained there step for step:
 *   GD:    p -= lr g
 *   SGD:   u = momentum u - lr g; p += u                      (Nesterov: p += momentum u - lr g)
 *   Adam:  m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 *          lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); p -= lr_t m / (sqrt(v) + eps)
 * (Adam's bias correction is folded into the step size, with eps added to the uncorrected sqrt(v),
 * as Keras does; this differs slightly from the paper's eps placement.)
 */
#include "nn/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *fm_optimizer_name(fm_optimizer_kind_t kind) {
    switch (kind) {
    case FM_OPT_GD:
        return "gd";
    case FM_OPT_SGD:
        return "sgd";
    case FM_OPT_ADAM:
        return "adam";
    }
    return "unknown";
}

int fm_optimizer_parse(const char *text, fm_optimizer_kind_t *out) {
    fm_optimizer_kind_t kind;
    if (!text) return FM_EINVAL;
    if (strcmp(text, "gd") == 0)
        kind = FM_OPT_GD;
    else if (strcmp(text, "sgd") == 0)
        kind = FM_OPT_SGD;
    else if (strcmp(text, "adam") == 0)
        kind = FM_OPT_ADAM;
    else
        return FM_EINVAL;
    if (out) *out = kind;
    return FM_OK;
}

fm_optimizer_config_t fm_optimizer_defaults(fm_optimizer_kind_t kind) {
    /* Adam's moment settings are filled for every kind so that switching kind later keeps them. */
    fm_optimizer_config_t c = {
        .kind = kind,
        .lr = kind == FM_OPT_ADAM ? 0.001 : 0.01,
        .momentum = 0.0,
        .nesterov = 0,
        .beta1 = 0.9,
        .beta2 = 0.999,
        .epsilon = 1e-7,
    };
    return c;
}

int fm_optimizer_init(fm_optimizer_t *opt, const fm_optimizer_config_t *config, size_t nparams,
                      fm_error_t *err) {
    if (!opt || !config) return fm_error_set(err, FM_EINVAL, "optimizer: no optimizer or config");
    memset(opt, 0, sizeof *opt);
    const fm_optimizer_config_t *c = config;
    if (c->kind != FM_OPT_GD && c->kind != FM_OPT_SGD && c->kind != FM_OPT_ADAM)
        return fm_error_set(err, FM_EINVAL, "optimizer: unknown kind %d", (int)c->kind);
    const char *name = fm_optimizer_name(c->kind);
    if (!(c->lr > 0.0) || !isfinite(c->lr))
        return fm_error_set(err, FM_EINVAL, "optimizer %s: learning rate %g must be > 0", name,
                            c->lr);
    if (c->kind == FM_OPT_SGD && !(c->momentum >= 0.0 && c->momentum < 1.0))
        return fm_error_set(err, FM_EINVAL, "optimizer sgd: momentum %g must be in [0, 1)",
                            c->momentum);
    if (c->kind == FM_OPT_ADAM) {
        if (!(c->beta1 >= 0.0 && c->beta1 < 1.0))
            return fm_error_set(err, FM_EINVAL, "optimizer adam: beta1 %g must be in [0, 1)",
                                c->beta1);
        if (!(c->beta2 >= 0.0 && c->beta2 < 1.0))
            return fm_error_set(err, FM_EINVAL, "optimizer adam: beta2 %g must be in [0, 1)",
                                c->beta2);
        if (!(c->epsilon > 0.0) || !isfinite(c->epsilon))
            return fm_error_set(err, FM_EINVAL, "optimizer adam: epsilon %g must be > 0",
                                c->epsilon);
    }

    opt->config = *c;
    opt->n = nparams;
    size_t nalloc = nparams ? nparams : 1;
    if (c->kind == FM_OPT_ADAM || (c->kind == FM_OPT_SGD && c->momentum > 0.0)) {
        opt->m = calloc(nalloc, sizeof *opt->m);
        if (!opt->m) goto nomem;
    }
    if (c->kind == FM_OPT_ADAM) {
        opt->v = calloc(nalloc, sizeof *opt->v);
        if (!opt->v) goto nomem;
    }
    return FM_OK;

nomem:
    fm_optimizer_deinit(opt);
    return fm_error_set(err, FM_ENOMEM, "optimizer %s: out of memory for %zu parameters", name,
                        nparams);
}

void fm_optimizer_step(fm_optimizer_t *opt, double *params, const double *grads) {
    /* params[n] updated in place from grads[n] */
    const fm_optimizer_config_t *c = &opt->config;
    size_t n = opt->n;
    double lr = c->lr;
    opt->t++;
    switch (c->kind) {
    case FM_OPT_GD:
        for (size_t i = 0; i < n; i++)
            params[i] -= lr * grads[i];
        return;
    case FM_OPT_SGD: {
        double mu = c->momentum;
        double *u = opt->m;
        if (!u) {
            for (size_t i = 0; i < n; i++)
                params[i] -= lr * grads[i];
        } else if (c->nesterov) {
            for (size_t i = 0; i < n; i++) {
                u[i] = mu * u[i] - lr * grads[i];
                params[i] += mu * u[i] - lr * grads[i];
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                u[i] = mu * u[i] - lr * grads[i];
                params[i] += u[i];
            }
        }
        return;
    }
    case FM_OPT_ADAM: {
        double b1 = c->beta1, b2 = c->beta2, eps = c->epsilon;
        double t = (double)opt->t;
        double lr_t = lr * sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t));
        double *m = opt->m, *v = opt->v;
        for (size_t i = 0; i < n; i++) {
            double g = grads[i];
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            params[i] -= lr_t * m[i] / (sqrt(v[i]) + eps);
        }
        return;
    }
    }
}

void fm_optimizer_deinit(fm_optimizer_t *opt) {
    if (!opt) return;
    free(opt->m);
    free(opt->v);
    memset(opt, 0, sizeof *opt);
}
