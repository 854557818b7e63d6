/*-------------------------------------------------------------------------
 *
 * limits.c
 *		Funnel plot control limits: caredata.funnel_limit().
 *
 * A limit is where a unit of a given size would sit at a given
 * probability of the distribution its indicator has if it performs as the
 * target says.  Three kinds of data (FunnelPlotR's): "PR", a proportion
 * (events / cases); "SR", an indirectly standardised ratio (observed /
 * expected); "RC", a ratio of counts.  Four methods:
 *
 *	exact	PR: Spiegelhalter's interpolated binomial quantile
 *			(r_p - alpha) / n; SR: the exact Poisson (gamma) limits
 *			qgamma(p, target E) / E below and qgamma(p, target E + 1) / E
 *			above the target, as FunnelPlotR draws them unadjusted.
 *	normal	target + z sqrt(V / size), V = target (1 - target) for PR and
 *			target for SR.
 *	phi		the same with V multiplied by the over-dispersion phi
 *			(Spiegelhalter 2005, the multiplicative model).
 *	tau2	the additive random-effects model on a variance-stabilising
 *			scale (Spiegelhalter et al. 2012; FunnelPlotR): PR
 *			sin^2(asin sqrt(target) + z sqrt(1 / (4 n) + tau2)); SR by the
 *			SHMI method target exp(z sqrt(1 / E + tau2)), by the CQC method
 *			(sqrt(target) + z sqrt(1 / (4 E) + tau2))^2; RC
 *			exp(log target + z sqrt(1 / (4 n) + tau2)).
 *
 * z is the standard normal quantile of the probability (0.001 and 0.999
 * for 99.8% limits, 0.025 and 0.975 for 95%).
 *
 * src/variation/limits.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/builtins.h"

#include "distributions.h"

PG_FUNCTION_INFO_V1(funnel_limit);

static double
binomial_cdf(double k, const double *param)
{
	return cd_binomial_cdf(k, param[0], param[1]);
}

/* the interpolated binomial limit for a proportion, size n cases */
static double
exact_proportion(double n, double target, double p)
{
	double		param[2] = {n, target};
	double		z = cd_normal_quantile(p);
	double		guess = n * target + z * sqrt(n * target * (1.0 - target));

	if (target <= 0.0 || target >= 1.0)
		return target;
	return cd_interpolated_quantile(binomial_cdf, param, p, guess) / n;
}

/* the exact Poisson limit for a ratio, expected count E */
static double
exact_ratio(double E, double target, double p)
{
	double		lambda = target * E;

	if (lambda <= 0.0)
		return 0.0;
	return cd_gamma_quantile(p, p < 0.5 ? lambda : lambda + 1.0) / E;
}

static bool
is(const char *a, const char *b)
{
	return pg_strcasecmp(a, b) == 0;
}

Datum
funnel_limit(PG_FUNCTION_ARGS)
{
	char	   *data_type = text_to_cstring(PG_GETARG_TEXT_PP(0));
	double		size = PG_GETARG_FLOAT8(1);
	double		target = PG_GETARG_FLOAT8(2);
	double		p = PG_GETARG_FLOAT8(3);
	char	   *method = text_to_cstring(PG_GETARG_TEXT_PP(4));
	double		phi = PG_GETARG_FLOAT8(5);
	double		tau2 = PG_GETARG_FLOAT8(6);
	char	   *sr_method = text_to_cstring(PG_GETARG_TEXT_PP(7));
	bool		pr = is(data_type, "PR"),
				sr = is(data_type, "SR"),
				rc = is(data_type, "RC");
	double		z,
				s,
				limit;

	if (!pr && !sr && !rc)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown data type \"%s\"", data_type),
				 errhint("Use PR (a proportion), SR (an indirectly standardised ratio) or RC (a ratio of counts).")));
	if (!(size > 0.0) || !isfinite(size))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("a unit's size must be positive and finite"),
				 errhint("The size is the denominator: cases for PR, expected events for SR.")));
	if (!(p > 0.0 && p < 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("a limit's probability must lie between 0 and 1"),
				 errhint("0.001 and 0.999 give the 99.8%% limits, 0.025 and 0.975 the 95%% limits.")));
	if (pr ? !(target >= 0.0 && target <= 1.0) : !(target > 0.0 && isfinite(target)))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("target %g is out of range for %s", target, pr ? "a proportion" : "a ratio"),
				 errhint("A proportion's target lies in [0, 1]; a ratio's is positive (1 for a standardised ratio).")));
	if (!(phi > 0.0) || !isfinite(phi) || !(tau2 >= 0.0) || !isfinite(tau2))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("over-dispersion out of range"),
				 errhint("phi is positive (1: none); tau2 is zero or more (0: none).")));
	if (!is(sr_method, "SHMI") && !is(sr_method, "CQC"))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown standardised-ratio method \"%s\"", sr_method),
				 errhint("Use SHMI (log scale, truncation) or CQC (square-root scale, Winsorisation).")));

	z = cd_normal_quantile(p);
	if (is(method, "exact"))
	{
		if (pr)
			limit = exact_proportion(fmax(1.0, rint(size)), target, p);
		else if (sr)
			limit = exact_ratio(size, target, p);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("there are no exact limits for a ratio of counts"),
					 errhint("Use the normal or the tau2 method for RC.")));
	}
	else if (is(method, "normal") || is(method, "phi"))
	{
		double		v = pr ? target * (1.0 - target) : target;

		if (rc)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the %s method is not defined for a ratio of counts", method),
					 errhint("Use the tau2 method for RC (with tau2 = 0 for unadjusted limits).")));
		if (is(method, "phi"))
			v *= phi;
		limit = target + z * sqrt(v / size);
	}
	else if (is(method, "tau2"))
	{
		if (pr)
		{
			double		angle;

			s = 1.0 / (2.0 * sqrt(size));
			angle = asin(sqrt(target)) + z * sqrt(s * s + tau2);
			angle = fmin(fmax(angle, 0.0), M_PI / 2.0);
			limit = pow(sin(angle), 2);
		}
		else if (rc)
		{
			s = 1.0 / (2.0 * sqrt(size));
			limit = exp(log(target) + z * sqrt(s * s + tau2));
		}
		else if (is(sr_method, "SHMI"))
			limit = target * exp(z * sqrt(1.0 / size + tau2));
		else
		{
			double		root;

			s = 1.0 / (2.0 * sqrt(size));
			root = sqrt(target) + z * sqrt(s * s + tau2);
			limit = root > 0.0 ? root * root : 0.0;
		}
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown limit method \"%s\"", method),
				 errhint("Use exact, normal, phi (multiplicative over-dispersion) or tau2 (additive random effects).")));

	/* a proportion's limits stay in [0, 1], a ratio's above 0 */
	limit = fmax(limit, 0.0);
	if (pr)
		limit = fmin(limit, 1.0);
	PG_RETURN_FLOAT8(limit);
}
