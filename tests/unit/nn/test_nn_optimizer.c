/*
 * Tests of the optimisers: several steps of GD, SGD (plain, momentum, Nesterov) and Adam against
 * their update rules written out here independently (Adam in the paper's bias-corrected form with
 * Keras's epsilon, which is algebraically the same step), the defaults, names, and rejected
 * configurations.
 */
#include "fm_test.h"
#include "nn/nn.h"

#include <string.h>

#define N     4
#define STEPS 6

/* A gradient that changes from step to step, including a zero and a sign change. */
static void gradient_at(int step, double *g) {
    g[0] = 0.5 - 0.1 * step;
    g[1] = -2.0 + 0.3 * step * step;
    g[2] = 0.0;
    g[3] = 1e-3 * (step % 2 ? 1 : -1);
}

static void test_optimizer_gd(void) {
    fm_optimizer_config_t c = fm_optimizer_defaults(FM_OPT_GD);
    c.lr = 0.3;
    fm_optimizer_t opt;
    FM_CHECK_INT(fm_optimizer_init(&opt, &c, N, NULL), FM_OK);
    FM_CHECK(opt.m == NULL && opt.v == NULL);
    double p[N] = {1, -1, 2, 0}, expect[N] = {1, -1, 2, 0}, g[N];
    for (int s = 0; s < STEPS; s++) {
        gradient_at(s, g);
        for (int i = 0; i < N; i++)
            expect[i] = expect[i] - 0.3 * g[i];
        fm_optimizer_step(&opt, p, g);
    }
    FM_CHECK(fm_test_max_diff("gd", p, expect, N) <= 1e-15);
    FM_CHECK_INT(opt.t, STEPS);
    fm_optimizer_deinit(&opt);
}

static void test_optimizer_sgd(void) {
    for (int variant = 0; variant < 3; variant++) {
        /* 0: plain, 1: momentum, 2: Nesterov momentum */
        fm_optimizer_config_t c = fm_optimizer_defaults(FM_OPT_SGD);
        c.lr = 0.05;
        c.momentum = variant ? 0.9 : 0.0;
        c.nesterov = variant == 2;
        fm_optimizer_t opt;
        FM_CHECK_INT(fm_optimizer_init(&opt, &c, N, NULL), FM_OK);
        FM_CHECK((opt.m != NULL) == (variant != 0));
        double p[N] = {1, -1, 2, 0}, expect[N] = {1, -1, 2, 0}, velocity[N] = {0}, g[N];
        for (int s = 0; s < STEPS; s++) {
            gradient_at(s, g);
            for (int i = 0; i < N; i++) {
                if (variant == 0) {
                    expect[i] -= 0.05 * g[i];
                    continue;
                }
                velocity[i] = 0.9 * velocity[i] - 0.05 * g[i];
                if (variant == 2)
                    expect[i] = expect[i] + 0.9 * velocity[i] - 0.05 * g[i];
                else
                    expect[i] = expect[i] + velocity[i];
            }
            fm_optimizer_step(&opt, p, g);
        }
        static const char *labels[] = {"sgd", "sgd momentum", "sgd nesterov"};
        FM_CHECK(fm_test_max_diff(labels[variant], p, expect, N) <= 1e-15);
        fm_optimizer_deinit(&opt);
    }
}

static void test_optimizer_adam(void) {
    fm_optimizer_config_t c = fm_optimizer_defaults(FM_OPT_ADAM);
    FM_CHECK_NEAR(c.lr, 0.001, 0);
    FM_CHECK_NEAR(c.beta1, 0.9, 0);
    FM_CHECK_NEAR(c.beta2, 0.999, 0);
    FM_CHECK_NEAR(c.epsilon, 1e-7, 0);
    c.lr = 0.01;
    fm_optimizer_t opt;
    FM_CHECK_INT(fm_optimizer_init(&opt, &c, N, NULL), FM_OK);
    double p[N] = {1, -1, 2, 0}, expect[N] = {1, -1, 2, 0}, m[N] = {0}, v[N] = {0}, g[N];
    for (int s = 0; s < STEPS; s++) {
        gradient_at(s, g);
        int t = s + 1;
        double c1 = 1.0 - pow(0.9, t), c2 = 1.0 - pow(0.999, t);
        for (int i = 0; i < N; i++) {
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
            /* bias-corrected moments; Keras's eps on sqrt(v) is eps / sqrt(c2) on sqrt(v_hat) */
            double m_hat = m[i] / c1, v_hat = v[i] / c2;
            expect[i] -= 0.01 * m_hat / (sqrt(v_hat) + 1e-7 / sqrt(c2));
        }
        fm_optimizer_step(&opt, p, g);
        if (s == 0) {
            /* the first step moves each weight by about lr against its gradient's sign */
            FM_CHECK_NEAR(p[0], 1.0 - 0.01, 1e-7);
            FM_CHECK_NEAR(p[1], -1.0 + 0.01, 1e-7);
            FM_CHECK(p[2] == 2.0);
        }
    }
    FM_CHECK(fm_test_max_diff("adam", p, expect, N) <= 1e-14);
    FM_CHECK(fm_test_max_diff("adam first moment", opt.m, m, N) <= 1e-15);
    FM_CHECK(fm_test_max_diff("adam second moment", opt.v, v, N) <= 1e-15);
    FM_CHECK_INT(opt.t, STEPS);
    fm_optimizer_deinit(&opt);
    FM_CHECK(opt.m == NULL && opt.v == NULL);
    fm_optimizer_deinit(&opt);
    fm_optimizer_deinit(NULL);
}

static void test_optimizer_defaults_and_names(void) {
    fm_optimizer_config_t c = fm_optimizer_defaults(FM_OPT_SGD);
    FM_CHECK_INT(c.kind, FM_OPT_SGD);
    FM_CHECK_NEAR(c.lr, 0.01, 0);
    FM_CHECK_NEAR(c.momentum, 0.0, 0);
    FM_CHECK_INT(c.nesterov, 0);
    c = fm_optimizer_defaults(FM_OPT_GD);
    FM_CHECK_NEAR(c.lr, 0.01, 0);
    for (int k = FM_OPT_GD; k <= FM_OPT_ADAM; k++) {
        fm_optimizer_kind_t parsed = FM_OPT_GD;
        FM_CHECK_INT(fm_optimizer_parse(fm_optimizer_name((fm_optimizer_kind_t)k), &parsed), FM_OK);
        FM_CHECK_INT(parsed, k);
    }
    FM_CHECK_STR(fm_optimizer_name(FM_OPT_ADAM), "adam");
    fm_optimizer_kind_t kind = FM_OPT_SGD;
    FM_CHECK_INT(fm_optimizer_parse("Adam", &kind), FM_EINVAL);
    FM_CHECK_INT(fm_optimizer_parse("rmsprop", &kind), FM_EINVAL);
    FM_CHECK_INT(fm_optimizer_parse("", &kind), FM_EINVAL);
    FM_CHECK_INT(fm_optimizer_parse(NULL, &kind), FM_EINVAL);
    FM_CHECK_INT(kind, FM_OPT_SGD);
    FM_CHECK_STR(fm_optimizer_name((fm_optimizer_kind_t)7), "unknown");
}

static void test_optimizer_rejects_bad_config(void) {
    struct {
        fm_optimizer_kind_t kind;
        double lr, momentum, beta1, beta2, epsilon;
        const char *needle;
    } bad[] = {
        {FM_OPT_ADAM, 0.0, 0, 0.9, 0.999, 1e-7, "learning rate"},
        {FM_OPT_GD, -1.0, 0, 0.9, 0.999, 1e-7, "learning rate"},
        {FM_OPT_SGD, NAN, 0, 0.9, 0.999, 1e-7, "learning rate"},
        {FM_OPT_SGD, INFINITY, 0, 0.9, 0.999, 1e-7, "learning rate"},
        {FM_OPT_SGD, 0.1, 1.0, 0.9, 0.999, 1e-7, "momentum"},
        {FM_OPT_SGD, 0.1, -0.5, 0.9, 0.999, 1e-7, "momentum"},
        {FM_OPT_ADAM, 0.1, 0, 1.0, 0.999, 1e-7, "beta1"},
        {FM_OPT_ADAM, 0.1, 0, 0.9, -0.1, 1e-7, "beta2"},
        {FM_OPT_ADAM, 0.1, 0, 0.9, 0.999, 0.0, "epsilon"},
        {(fm_optimizer_kind_t)9, 0.1, 0, 0.9, 0.999, 1e-7, "unknown kind"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fm_optimizer_config_t c = fm_optimizer_defaults(FM_OPT_ADAM);
        c.kind = bad[i].kind;
        c.lr = bad[i].lr;
        c.momentum = bad[i].momentum;
        c.beta1 = bad[i].beta1;
        c.beta2 = bad[i].beta2;
        c.epsilon = bad[i].epsilon;
        fm_optimizer_t opt;
        fm_error_t err;
        fm_error_clear(&err);
        FM_CHECK_INT(fm_optimizer_init(&opt, &c, 3, &err), FM_EINVAL);
        FM_CHECK_MSG(strstr(err.msg, bad[i].needle) != NULL, "case %zu: %s", i, err.msg);
        FM_CHECK(opt.m == NULL && opt.v == NULL);
        fm_optimizer_deinit(&opt);
    }
    fm_error_t err;
    FM_CHECK_INT(fm_optimizer_init(NULL, NULL, 3, &err), FM_EINVAL);
    /* momentum is ignored (not validated) by the kinds that do not use it */
    fm_optimizer_config_t c = fm_optimizer_defaults(FM_OPT_ADAM);
    c.momentum = 5.0;
    fm_optimizer_t opt;
    FM_CHECK_INT(fm_optimizer_init(&opt, &c, 0, &err), FM_OK);
    fm_optimizer_step(&opt, NULL, NULL);
    fm_optimizer_deinit(&opt);
}

FM_TEST_MAIN(FM_TEST_CASE(test_optimizer_gd), FM_TEST_CASE(test_optimizer_sgd),
             FM_TEST_CASE(test_optimizer_adam), FM_TEST_CASE(test_optimizer_defaults_and_names),
             FM_TEST_CASE(test_optimizer_rejects_bad_config))
