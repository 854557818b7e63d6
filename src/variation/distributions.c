/*-------------------------------------------------------------------------
 *
 * distributions.c
 *		Normal, binomial and gamma distributions for funnel
 *		plot limits.
 *
 * The binomial cdf is the regularised incomplete beta function,
 * P(X <= k) = I_{1-p}(n - k, k + 1), and the gamma quantile inverts the
 * regularised incomplete gamma function; both are evaluated by their power
 * series or continued fractions (modified Lentz).
 * The normal quantile starts from Abramowitz and Stegun 26.2.23 and is
 * refined by Halley steps on erfc; the gamma quantile starts from the
 * Wilson-Hilferty approximation and is refined by bracketed Newton steps.
 *
 * src/variation/distributions.c
 *
 *-------------------------------------------------------------------------
 */
#include <float.h>
#include <math.h>

#include "distributions.h"

#define CD_EPS		1e-15
#define CD_TINY		1e-300
#define CD_MAXIT	1000000

double
cd_normal_quantile(double p)
{
	double		q = p < 0.5 ? p : 1.0 - p;
	double		t,
				x;

	if (!(p > 0.0 && p < 1.0))
		return NAN;
	if (p == 0.5)
		return 0.0;

	/* Abramowitz and Stegun 26.2.23, |error| < 4.5e-4, for the lower tail */
	t = sqrt(-2.0 * log(q));
	x = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) /
		(1.0 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
	x = -x;

	/* Halley's method on Phi(x) = q, Phi(x) = erfc(-x / sqrt 2) / 2 */
	for (int i = 0; i < 4; i++)
	{
		double		e = 0.5 * erfc(-x / M_SQRT2) - q;
		double		u = e * sqrt(2.0 * M_PI) * exp(x * x / 2.0);

		x = x - u / (1.0 + x * u / 2.0);
	}
	return p < 0.5 ? x : -x;
}

/*
 * One step of the modified Lentz algorithm for a continued fraction
 * b0 + a1/(b1 + a2/(b2 + ...)): with the step's a and b, update c and d
 * and return the factor the running value is multiplied by.
 */
static inline double
lentz_step(double a, double b, double *c, double *d)
{
	*d = b + a * *d;
	if (fabs(*d) < CD_TINY)
		*d = CD_TINY;
	*c = b + a / *c;
	if (fabs(*c) < CD_TINY)
		*c = CD_TINY;
	*d = 1.0 / *d;
	return *d * *c;
}

/*
 * The regularised incomplete gamma functions P(a, x) and Q(a, x) = 1 - P,
 * each computed directly where it is small, so neither loses precision to
 * cancellation.
 */
static void
incomplete_gamma(double a, double x, double *P, double *Q)
{
	double		front;

	if (x <= 0.0)
	{
		*P = 0.0;
		*Q = 1.0;
		return;
	}
	front = exp(-x + a * log(x) - lgamma(a));
	if (x < a + 1.0)
	{
		/* series: P = front * sum x^n / (a (a+1) ... (a+n)) */
		double		term = 1.0 / a,
					sum = term;

		for (int n = 1; n < CD_MAXIT; n++)
		{
			term *= x / (a + n);
			sum += term;
			if (fabs(term) < fabs(sum) * CD_EPS)
				break;
		}
		*P = fmin(1.0, sum * front);
		*Q = 1.0 - *P;
	}
	else
	{
		/* continued fraction for Q (modified Lentz) */
		double		b = x + 1.0 - a,
					c = 1.0 / CD_TINY,
					d = 1.0 / b,
					h = d;

		for (int i = 1; i < CD_MAXIT; i++)
		{
			double		del;

			b += 2.0;
			del = lentz_step(-i * (i - a), b, &c, &d);
			h *= del;
			if (fabs(del - 1.0) < CD_EPS)
				break;
		}
		*Q = fmin(1.0, front * h);
		*P = 1.0 - *Q;
	}
}

/* the continued fraction of the incomplete beta function (modified Lentz) */
static double
beta_fraction(double a, double b, double x)
{
	double		qab = a + b,
				qap = a + 1.0,
				qam = a - 1.0,
				c = 1.0,
				d = 1.0 - qab * x / qap,
				h;

	if (fabs(d) < CD_TINY)
		d = CD_TINY;
	d = 1.0 / d;
	h = d;
	for (int m = 1; m < CD_MAXIT; m++)
	{
		int			m2 = 2 * m;
		double		del;

		/* the even and the odd term of the fraction */
		h *= lentz_step(m * (b - m) * x / ((qam + m2) * (a + m2)), 1.0, &c, &d);
		del = lentz_step(-(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)), 1.0, &c, &d);
		h *= del;
		if (fabs(del - 1.0) < CD_EPS)
			break;
	}
	return h;
}

/* the regularised incomplete beta function I_x(a, b) */
static double
incomplete_beta(double a, double b, double x)
{
	double		front;

	if (x <= 0.0)
		return 0.0;
	if (x >= 1.0)
		return 1.0;
	front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x));
	if (x < (a + 1.0) / (a + b + 2.0))
		return front * beta_fraction(a, b, x) / a;
	return 1.0 - front * beta_fraction(b, a, 1.0 - x) / b;
}

double
cd_binomial_cdf(double k, double n, double p)
{
	k = floor(k);
	if (k < 0.0)
		return 0.0;
	if (k >= n)
		return 1.0;
	if (p <= 0.0)
		return 1.0;
	if (p >= 1.0)
		return 0.0;
	return incomplete_beta(n - k, k + 1.0, 1.0 - p);
}

double
cd_gamma_quantile(double p, double a)
{
	double		lo = 0.0,
				hi = INFINITY,
				x,
				z = cd_normal_quantile(p);

	if (!(p > 0.0 && p < 1.0) || !(a > 0.0))
		return NAN;

	/* Wilson-Hilferty, or the small-x series' first term for small a */
	x = a * pow(1.0 - 1.0 / (9.0 * a) + z * sqrt(1.0 / (9.0 * a)), 3);
	if (!(x > 0.0) || a < 1.0)
		x = fmax(exp((log(p) + lgamma(a + 1.0)) / a), DBL_MIN);

	for (int i = 0; i < 200; i++)
	{
		double		P,
					Q,
					f,
					df,
					next;

		incomplete_gamma(a, x, &P, &Q);
		f = p < 0.5 ? P - p : (1.0 - p) - Q;
		if (f == 0.0)
			break;
		if (f < 0.0)
			lo = x;
		else
			hi = x;
		df = exp((a - 1.0) * log(x) - x - lgamma(a));
		next = x - f / df;
		if (!(next > lo && next < hi) || !isfinite(next))
			next = isfinite(hi) ? (lo + hi) / 2.0 : x * 2.0;
		if (fabs(next - x) <= 1e-14 * fabs(x))
		{
			x = next;
			break;
		}
		x = next;
	}
	return x;
}

double
cd_interpolated_quantile(cd_cdf cdf, const double *param, double p, double guess)
{
	double		r = fmax(0.0, floor(guess)),
				F = cdf(r, param),
				Fprev;

	/* the smallest r with F(r) >= p */
	if (F >= p)
	{
		while (r > 0.0 && (Fprev = cdf(r - 1.0, param)) >= p)
		{
			r -= 1.0;
			F = Fprev;
		}
	}
	else
	{
		for (int i = 0; F < p && i < CD_MAXIT; i++)
		{
			r += 1.0;
			F = cdf(r, param);
		}
	}
	Fprev = r > 0.0 ? cdf(r - 1.0, param) : 0.0;
	if (F - Fprev <= 0.0)
		return r;
	return r - (F - p) / (F - Fprev);
}
