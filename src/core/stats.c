/*
 * Small descriptive statistics shared across areas (stats.h).
 */
#include "core/stats.h"

#include <math.h>

int fm_compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void fm_mean_sd(const double *x, size_t n, double *mean, double *sd) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    double m = s / (double)n, q = 0;
    for (size_t i = 0; i < n; i++)
        q += (x[i] - m) * (x[i] - m);
    *mean = m;
    *sd = n > 1 ? sqrt(q / (double)(n - 1)) : 0;
}

double fm_quantile_sorted(const double *sorted, size_t n, double q) {
    double index = q * (double)(n - 1);
    double below = floor(index);
    size_t lo = (size_t)below, hi = lo + 1 < n ? lo + 1 : n - 1;
    double t = index - below, a = sorted[lo], b = sorted[hi], diff = b - a;
    /* NumPy's _lerp: from the nearer end, so that t = 1 gives b exactly. */
    return t >= 0.5 ? b - diff * (1.0 - t) : a + diff * t;
}
