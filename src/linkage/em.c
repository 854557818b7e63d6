/*-------------------------------------------------------------------------
 *
 * em.c
 *		Fellegi-Sunter model fitting: EM over the histogram of comparison
 *		patterns, and the match weight of each pattern.
 *
 * Owns the arithmetic of the probabilistic model; the SQL driver
 * (src/linkage/model.sql) counts the patterns of the blocked pairs and keeps
 * the model in tables.  A pattern packs one level per comparison:
 *
 *		pattern = sum over i of level_i * prod over j < i of nlevels_j
 *
 * m and u are flattened the same way (comparison 0's levels first).
 *
 * u (the level frequencies among pairs of different people) comes from a
 * random sample of pairs and stays fixed.  EM estimates m (the level
 * frequencies among pairs of the same person) and lambda, the probability
 * that two records drawn at random belong to one person:
 *
 *		E: w(g) = lambda m(g) / (lambda m(g) + (1 - lambda) u(g)),
 *		   m(g) = prod m_i(g_i), u(g) = prod u_i(g_i)
 *		M: m_i(l) = sum n(g) w(g) [g_i = l] / sum n(g) w(g)
 *		   lambda = sum n(g) w(g) / total_pairs
 *
 * total_pairs is the number of pairs the run could have compared (before
 * blocking); blocking rules are assumed to keep (almost) every true match,
 * which the recall figures in docs/linkage.md check.  The weight of a
 * pattern is log2(lambda / (1 - lambda)) + sum log2(m_i / u_i), so that its
 * probability is 2^w / (1 + 2^w).  Level 0 (missing) of every comparison
 * carries no evidence: it is left out of both products and of the weight,
 * and its m is reported equal to its u.  No m or u is taken below 1e-6, so
 * one disagreement never outweighs everything else.
 *
 * src/linkage/em.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

/* no probability below this: a level never seen still has finite weight */
#define EM_FLOOR	1e-6

#define MAX_COMPARISONS	32

typedef struct Model
{
	int			ncomp;
	int			nlevels[MAX_COMPARISONS];
	int			offset[MAX_COMPARISONS];	/* into m and u */
	int			nparams;
} Model;

static void
array_check(ArrayType *a, const char *what)
{
	if (ARR_NDIM(a) > 1 || array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array without NULLs", what)));
}

static int
array_len(ArrayType *a)
{
	return ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
}

/* the elements of an int4[] or float8[] (no NULLs: checked) as a C array */
static void *
array_values(ArrayType *a, Oid elemtype)
{
	Datum	   *d;
	int			n;
	void	   *out;

	if (ARR_ELEMTYPE(a) != elemtype)
		elog(ERROR, "unexpected array element type");
	deconstruct_array(a, elemtype, elemtype == INT4OID ? 4 : 8, true,
					  elemtype == INT4OID ? TYPALIGN_INT : TYPALIGN_DOUBLE,
					  &d, NULL, &n);
	out = palloc(sizeof(double) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (elemtype == INT4OID)
			((int32 *) out)[i] = DatumGetInt32(d[i]);
		else
			((double *) out)[i] = DatumGetFloat8(d[i]);
	}
	return out;
}

static void
model_from_levels(ArrayType *nlevels, Model *model)
{
	int32	   *nl;
	int64		product = 1;

	array_check(nlevels, "nlevels");
	model->ncomp = array_len(nlevels);
	if (model->ncomp < 1 || model->ncomp > MAX_COMPARISONS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a model has between 1 and %d comparisons", MAX_COMPARISONS)));
	nl = (int32 *) array_values(nlevels, INT4OID);
	model->nparams = 0;
	for (int i = 0; i < model->ncomp; i++)
	{
		if (nl[i] < 2 || nl[i] > 16)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a comparison has between 2 and 16 levels")));
		model->nlevels[i] = nl[i];
		model->offset[i] = model->nparams;
		model->nparams += nl[i];
		product *= nl[i];
		if (product > PG_INT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many comparison patterns"),
					 errhint("The product of the comparisons' level counts must fit in an integer; use fewer levels.")));
	}
}

static double *
probabilities(ArrayType *a, const Model *model, const char *what)
{
	double	   *p;

	array_check(a, what);
	if (ARR_ELEMTYPE(a) != FLOAT8OID || array_len(a) != model->nparams)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must have one double precision value per comparison level (%d)",
						what, model->nparams)));
	p = palloc(model->nparams * sizeof(double));
	memcpy(p, array_values(a, FLOAT8OID), model->nparams * sizeof(double));
	for (int i = 0; i < model->nparams; i++)
	{
		if (isnan(p[i]) || p[i] < 0.0 || p[i] > 1.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s values are probabilities between 0 and 1", what)));
		if (p[i] < EM_FLOOR)
			p[i] = EM_FLOOR;
	}
	return p;
}

static void
decode(const Model *model, int32 pattern, int *levels)
{
	for (int i = 0; i < model->ncomp; i++)
	{
		levels[i] = pattern % model->nlevels[i];
		pattern /= model->nlevels[i];
	}
}

static int32 *
patterns_arg(ArrayType *a, const Model *model, int *n)
{
	int32	   *p;
	int64		max = 1;

	array_check(a, "patterns");
	*n = array_len(a);
	p = (int32 *) array_values(a, INT4OID);
	for (int i = 0; i < model->ncomp; i++)
		max *= model->nlevels[i];
	for (int i = 0; i < *n; i++)
		if (p[i] < 0 || p[i] >= max)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("comparison pattern %d does not fit the model's levels", p[i])));
	return p;
}

/*
 * link_em(patterns int[], counts float8[], nlevels int[], u float8[],
 *		   m float8[], total_pairs float8, max_iter int, tolerance float8)
 *	 returns (m float8[], lambda float8, iterations int, converged bool)
 */
PG_FUNCTION_INFO_V1(link_em);
Datum
link_em(PG_FUNCTION_ARGS)
{
	Model		model;
	int			npat;
	int32	   *pat;
	ArrayType  *counts_a = PG_GETARG_ARRAYTYPE_P(1);
	double	   *counts;
	double	   *u,
			   *m,
			   *acc;
	double		total_pairs = PG_GETARG_FLOAT8(5);
	int32		max_iter = PG_GETARG_INT32(6);
	double		tol = PG_GETARG_FLOAT8(7);
	double		lambda = 0.0;
	int			iter;
	bool		converged = false;
	int		   *levels;
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	Datum	   *md;

	model_from_levels(PG_GETARG_ARRAYTYPE_P(2), &model);
	pat = patterns_arg(PG_GETARG_ARRAYTYPE_P(0), &model, &npat);
	array_check(counts_a, "counts");
	if (ARR_ELEMTYPE(counts_a) != FLOAT8OID || array_len(counts_a) != npat)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("counts must have one double precision value per pattern")));
	counts = (double *) array_values(counts_a, FLOAT8OID);
	u = probabilities(PG_GETARG_ARRAYTYPE_P(3), &model, "u");
	m = probabilities(PG_GETARG_ARRAYTYPE_P(4), &model, "m");
	if (!(total_pairs >= 1.0) || max_iter < 1 || !(tol > 0.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("total_pairs must be at least 1, max_iter positive and tolerance positive")));

	/* precompute each pattern's levels once (npat from the argument: checked) */
	{
		Size		bytes = mul_size(mul_size(sizeof(int), model.ncomp), Max(npat, 1));

		if (!AllocSizeIsValid(bytes))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many comparison patterns"),
					 errhint("Give each pattern once, with its count.")));
		levels = palloc(bytes);
	}
	for (int p = 0; p < npat; p++)
		decode(&model, pat[p], levels + p * model.ncomp);

	/* start: half the blocked pairs are matches */
	{
		double		n = 0.0;

		for (int p = 0; p < npat; p++)
			n += counts[p];
		lambda = Min(0.5, Max(n * 0.5, 1.0) / total_pairs);
	}

	acc = palloc(model.nparams * sizeof(double));
	for (iter = 1; iter <= max_iter; iter++)
	{
		double		matches = 0.0;
		double		delta = 0.0;
		double		new_lambda;

		memset(acc, 0, model.nparams * sizeof(double));
		for (int p = 0; p < npat; p++)
		{
			const int  *lv = levels + p * model.ncomp;
			double		pm = lambda;
			double		pu = 1.0 - lambda;
			double		w;

			/* level 0 (missing) carries no evidence: factor 1 both ways */
			for (int i = 0; i < model.ncomp; i++)
			{
				if (lv[i] == 0)
					continue;
				pm *= m[model.offset[i] + lv[i]];
				pu *= u[model.offset[i] + lv[i]];
			}
			w = (pm + pu > 0.0) ? pm / (pm + pu) : 0.0;
			w *= counts[p];
			matches += w;
			for (int i = 0; i < model.ncomp; i++)
				acc[model.offset[i] + lv[i]] += w;
		}
		if (matches <= 0.0)
			break;				/* no matches at all: keep the start */

		/*
		 * m over the levels that carry evidence: their distribution among
		 * the matches where the comparison is not missing, scaled so that,
		 * with m(0) = u(0), the levels sum to one as u's do
		 */
		for (int i = 0; i < model.ncomp; i++)
		{
			double		present = 0.0;
			double		scale = 1.0 - u[model.offset[i]];

			for (int l = 1; l < model.nlevels[i]; l++)
				present += acc[model.offset[i] + l];
			for (int l = 1; l < model.nlevels[i]; l++)
			{
				int			k = model.offset[i] + l;
				double		v = present > 0.0 ? Max(scale * acc[k] / present, EM_FLOOR) : m[k];

				delta = Max(delta, fabs(v - m[k]));
				m[k] = v;
			}
		}
		new_lambda = Min(matches / total_pairs, 1.0 - EM_FLOOR);
		delta = Max(delta, fabs(new_lambda - lambda) / Max(lambda, EM_FLOOR));
		lambda = new_lambda;
		if (delta < tol)
		{
			converged = true;
			break;
		}
	}
	if (iter > max_iter)
		iter = max_iter;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	md = palloc(model.nparams * sizeof(Datum));
	for (int k = 0; k < model.nparams; k++)
		md[k] = Float8GetDatum(m[k]);
	/* the missing level: m = u, weight 0 */
	for (int i = 0; i < model.ncomp; i++)
		md[model.offset[i]] = Float8GetDatum(u[model.offset[i]]);
	values[0] = PointerGetDatum(construct_array(md, model.nparams, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[1] = Float8GetDatum(lambda);
	values[2] = Int32GetDatum(iter);
	values[3] = BoolGetDatum(converged);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * link_pattern_weights(patterns int[], nlevels int[], m float8[], u float8[],
 *						lambda float8) returns float8[]: each pattern's
 * match weight, log2(lambda / (1 - lambda)) + sum log2(m_i / u_i) over the
 * comparisons whose level is not 0 (missing carries no evidence).
 */
PG_FUNCTION_INFO_V1(link_pattern_weights);
Datum
link_pattern_weights(PG_FUNCTION_ARGS)
{
	Model		model;
	int			npat;
	int32	   *pat;
	double	   *m,
			   *u;
	double		lambda = PG_GETARG_FLOAT8(4);
	double		prior;
	Datum	   *w;
	int			levels[MAX_COMPARISONS];

	model_from_levels(PG_GETARG_ARRAYTYPE_P(1), &model);
	pat = patterns_arg(PG_GETARG_ARRAYTYPE_P(0), &model, &npat);
	m = probabilities(PG_GETARG_ARRAYTYPE_P(2), &model, "m");
	u = probabilities(PG_GETARG_ARRAYTYPE_P(3), &model, "u");
	if (!(lambda > 0.0 && lambda < 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lambda must lie strictly between 0 and 1")));
	prior = log2(lambda / (1.0 - lambda));
	w = palloc(sizeof(Datum) * Max(npat, 1));
	for (int p = 0; p < npat; p++)
	{
		double		s = prior;

		decode(&model, pat[p], levels);
		for (int i = 0; i < model.ncomp; i++)
		{
			/* level 0 (missing) carries no evidence */
			if (levels[i] > 0)
				s += log2(m[model.offset[i] + levels[i]] / u[model.offset[i] + levels[i]]);
		}
		w[p] = Float8GetDatum(s);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(w, npat, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
