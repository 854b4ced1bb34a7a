/*
 * The standard normal distribution in double precision, shared by the risk measures of
 * src/risk and src/invest: the CDF through erfc and the quantile function by Wichura's AS241.
 */
#ifndef FM_CORE_NORMAL_H
#define FM_CORE_NORMAL_H

/* N(x), the standard normal CDF. */
double fm_normal_cdf(double x);
/* N^-1(p), its inverse (AS241, about 1e-16 relative); -inf at 0, +inf at 1, NaN outside [0, 1].
 */
double fm_normal_quantile(double p);

#endif
