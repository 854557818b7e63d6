/*-------------------------------------------------------------------------
 *
 * distributions.h
 *		The normal, binomial and gamma distributions that funnel
 *		plot limits need (src/variation/limits.c).
 *
 * Plain C on doubles, no PostgreSQL calls, so that each can be checked on
 * its own.  Accuracy: about 1e-12 relative over the ranges funnel plots
 * use (sizes up to 1e8).
 *
 * src/variation/distributions.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_VARIATION_DISTRIBUTIONS_H
#define CAREDATA_VARIATION_DISTRIBUTIONS_H

/* the standard normal's quantile: x with P(Z <= x) = p, 0 < p < 1 */
extern double cd_normal_quantile(double p);

/* P(X <= k) for X ~ Binomial(n, p), n >= 1, 0 <= p <= 1 */
extern double cd_binomial_cdf(double k, double n, double p);

/* x with P(a, x) = p, the regularised lower incomplete gamma; a > 0 */
extern double cd_gamma_quantile(double p, double a);

/*
 * Spiegelhalter's (2005, appendix A.1.1) interpolated quantile of a
 * discrete distribution with cdf F: the smallest r with F(r) >= p, less
 * alpha = (F(r) - p) / (F(r) - F(r - 1)).  guess starts the search.
 */
typedef double (*cd_cdf) (double k, const double *param);
extern double cd_interpolated_quantile(cd_cdf cdf, const double *param, double p, double guess);

#endif							/* CAREDATA_VARIATION_DISTRIBUTIONS_H */
