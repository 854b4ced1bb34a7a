/*
 * Helpers shared by the nn unit tests: random fills and a central finite-difference gradient check
 * that prints the largest relative error, as llm.c's tests print their largest difference.
 */
#ifndef FM_NN_CHECK_H
#define FM_NN_CHECK_H

#include "core/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Step of the central differences: its truncation error h^2 f'''/6 and its rounding error
 * 1e-16 |f| / h both stay near 1e-10 for the O(1) functions checked here. */
#define NN_FD_STEP 1e-6
/* Largest relative error accepted between an analytic gradient and its finite difference. */
#define NN_FD_TOLERANCE 1e-6

static inline void nn_fill_uniform(fm_rng_t *rng, double *x, size_t n, double lo, double hi) {
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * fm_rng_uniform(rng);
}

/* A new array of n uniform values in [lo, hi); aborts the test program when memory runs out. */
static inline double *nn_random_array(fm_rng_t *rng, size_t n, double lo, double hi) {
    double *x = malloc((n ? n : 1) * sizeof *x);
    if (!x) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    nn_fill_uniform(rng, x, n, lo, hi);
    return x;
}

/*
 * Relative error of an analytic derivative against a numerical one. The denominator's floor keeps
 * gradients that are zero, or nearly so, from turning rounding noise (~1e-10) into a large
 * relative error; a wrong gradient still shows up as an error many orders above the tolerance.
 */
static inline double nn_relative_error(double analytic, double numeric) {
    double scale = fmax(fmax(fabs(analytic), fabs(numeric)), 1e-3);
    return fabs(analytic - numeric) / scale;
}

/*
 * Compares analytic[n] with central differences of f(ctx) with respect to x[n] (x is perturbed in
 * place and restored). Prints and returns the largest relative error.
 */
static inline double nn_gradient_check(const char *label, double *x, size_t n,
                                       const double *analytic, double (*f)(void *ctx), void *ctx) {
    double worst = 0.0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        double saved = x[i];
        x[i] = saved + NN_FD_STEP;
        double up = f(ctx);
        x[i] = saved - NN_FD_STEP;
        double down = f(ctx);
        x[i] = saved;
        double numeric = (up - down) / (2.0 * NN_FD_STEP);
        double e = nn_relative_error(analytic[i], numeric);
        if (e > worst || e != e) {
            worst = e;
            worst_i = i;
        }
    }
    printf("  %-48s max rel err = %.3g (at %zu of %zu)\n", label, worst, worst_i, n);
    return worst;
}

/* Largest |a - b| / max(1, max |b|): the relative difference of a kernel against its reference. */
static inline double nn_max_relative_diff(const char *label, const double *a, const double *b,
                                          size_t n) {
    double worst = 0.0, scale = 1.0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (d > worst || d != d) worst = d;
    }
    worst /= scale;
    printf("  %-48s max rel diff = %.3g\n", label, worst);
    return worst;
}

#endif
