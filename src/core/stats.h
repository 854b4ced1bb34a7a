/*
 * Small descriptive statistics shared across areas (data profiles, WoE binning, partial
 * dependence, invest, risk): a qsort comparator for doubles, the mean with the sample standard
 * deviation, and NumPy's default ("linear") quantile of sorted values.
 */
#ifndef FM_CORE_STATS_H
#define FM_CORE_STATS_H

#include <stddef.h>

/* qsort comparator: ascending doubles (NaNs compare equal to everything; leave them out). */
int fm_compare_double(const void *a, const void *b);

/* The mean of x[0..n) and its sample standard deviation (n - 1 in the denominator; 0 when
 * n < 2). n > 0. */
void fm_mean_sd(const double *x, size_t n, double *mean, double *sd);

/* The q-quantile (q in [0, 1]) of sorted[0..n), n > 0, as numpy.quantile's default "linear"
 * method computes it (interpolated between the order statistics around (n - 1) q, in NumPy's
 * arithmetic so that the results agree to the last bit). */
double fm_quantile_sorted(const double *sorted, size_t n, double q);

#endif
