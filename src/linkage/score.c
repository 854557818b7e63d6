/*-------------------------------------------------------------------------
 *
 * score.c
 *		The match weight of each candidate pair: its pattern's weight from
 *		a dense table, plus its term-frequency adjustment.
 *
 * link_run() scores millions of pairs; joining them to a table of pattern
 * weights costs a hash probe per pair.  link_weight() reads the weight from
 * an array indexed by pattern instead, deconstructed once per query when the
 * array is a constant or a parameter (get_fn_expr_arg_stable), else per call.
 * link_threshold() then chooses the label-free threshold over those weights
 * in one pass.
 *
 * src/linkage/score.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"

#include "score.h"

WeightTable *
link_weight_table(ArrayType *a, MemoryContext mcxt)
{
	Datum	   *d;
	int			n;
	WeightTable *t;

	if (ARR_NDIM(a) > 1 || ARR_ELEMTYPE(a) != FLOAT8OID || array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pattern weights must be a one-dimensional double precision array without NULLs"),
				 errhint("Element i + 1 is the match weight of pattern i.")));
	deconstruct_array(a, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &d, NULL, &n);
	t = MemoryContextAlloc(mcxt, offsetof(WeightTable, w) + sizeof(double) * Max(n, 1));
	t->n = n;
	for (int i = 0; i < n; i++)
		t->w[i] = DatumGetFloat8(d[i]);
	pfree(d);
	return t;
}

/*
 * link_weight(pattern int4, tf_adj float8, weights float8[]) returns float8:
 * weights[pattern + 1] + tf_adj.
 */
PG_FUNCTION_INFO_V1(link_weight);
Datum
link_weight(PG_FUNCTION_ARGS)
{
	int32		pattern = PG_GETARG_INT32(0);
	double		tf_adj = PG_GETARG_FLOAT8(1);
	WeightTable *t = (WeightTable *) fcinfo->flinfo->fn_extra;

	if (t == NULL)
	{
		if (get_fn_expr_arg_stable(fcinfo->flinfo, 2))
		{
			t = link_weight_table(PG_GETARG_ARRAYTYPE_P(2), fcinfo->flinfo->fn_mcxt);
			fcinfo->flinfo->fn_extra = t;
		}
		else
			t = link_weight_table(PG_GETARG_ARRAYTYPE_P(2), CurrentMemoryContext);
	}
	PG_RETURN_FLOAT8(link_pattern_weight(t, pattern, tf_adj));
}

double
link_pattern_weight(const WeightTable *t, int32 pattern, double tf_adj)
{
	if (pattern < 0 || pattern >= t->n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pattern %d has no weight in an array of %d", pattern, t->n),
				 errhint("Compute the weights of every pattern with caredata.link_pattern_weights().")));
	return t->w[pattern] + tf_adj;
}

/*
 * link_threshold(weight float8): the label-free threshold, as an aggregate
 * over the candidate pairs' match weights.  Weights are counted in quarter
 * bits, each bucket with the sum of its pairs' match probabilities
 * 2^w / (1 + 2^w).  Taking every pair at or above a cut c as a link, the
 * model expects TP(c) = the sum of probabilities at or above c, predicted
 * links P(c) = the pairs at or above c, and actual matches A = the sum of
 * all probabilities; the result is the cut with the highest expected
 * F1 = 2 TP / (P + A), the higher cut on a tie.  NULL over no pairs.
 */
#define THRESHOLD_MIN_BITS	(-512)
#define THRESHOLD_BUCKETS	(4 * 1024)	/* quarter bits from -512 to 512 */
#define THRESHOLD_STATE_LEN	(2 * THRESHOLD_BUCKETS)

/*
 * The state is a real type, double precision[], so that a distributed
 * engine can ship partial states as text (STYLE.md 7): element i is the
 * number of pairs in bucket i (exact as a double up to 2^53), element
 * THRESHOLD_BUCKETS + i the sum of their match probabilities.  Transition
 * and combine change it in place in the aggregate context.
 */
static double *
threshold_values(ArrayType *a)
{
	if (ARR_NDIM(a) != 1 || ARR_DIMS(a)[0] != THRESHOLD_STATE_LEN || ARR_HASNULL(a) ||
		ARR_ELEMTYPE(a) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid link_threshold state"),
				 errdetail("The state is a double precision array of %d elements without NULLs.", THRESHOLD_STATE_LEN)));
	/* no NULLs (checked), so the data follows the fixed overhead */
	return (double *) ((char *) a + ARR_OVERHEAD_NONULLS(1));
}

static ArrayType *
threshold_state(FunctionCallInfo fcinfo)
{
	MemoryContext aggcxt;
	MemoryContext oldcxt;
	ArrayType  *a;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "link_threshold called outside an aggregate");
	if (!PG_ARGISNULL(0))
		return PG_GETARG_ARRAYTYPE_P(0);
	oldcxt = MemoryContextSwitchTo(aggcxt);
	{
		Datum	   *zeros = palloc0(sizeof(Datum) * THRESHOLD_STATE_LEN);
		int			dims[1] = {THRESHOLD_STATE_LEN};
		int			lbs[1] = {1};

		for (int i = 0; i < THRESHOLD_STATE_LEN; i++)
			zeros[i] = Float8GetDatum(0.0);
		a = construct_md_array(zeros, NULL, 1, dims, lbs, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
		pfree(zeros);
	}
	MemoryContextSwitchTo(oldcxt);
	return a;
}

PG_FUNCTION_INFO_V1(link_threshold_accum);
Datum
link_threshold_accum(PG_FUNCTION_ARGS)
{
	ArrayType  *st = threshold_state(fcinfo);
	double	   *v = threshold_values(st);
	double		w;
	double		b;
	int			i;

	if (PG_ARGISNULL(1))
		PG_RETURN_ARRAYTYPE_P(st);
	w = PG_GETARG_FLOAT8(1);
	if (isnan(w))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a match weight is NaN"),
				 errhint("Check the model's m and u: each must lie strictly between 0 and 1.")));
	b = floor(w * 4.0) - 4.0 * THRESHOLD_MIN_BITS;
	i = b < 0 ? 0 : b >= THRESHOLD_BUCKETS ? THRESHOLD_BUCKETS - 1 : (int) b;
	v[i] += 1.0;
	/* 1 / (1 + 2^-w), written so that no 2^x overflows */
	v[THRESHOLD_BUCKETS + i] += w >= 0 ? 1.0 / (1.0 + exp2(-w)) : exp2(w) / (1.0 + exp2(w));
	PG_RETURN_ARRAYTYPE_P(st);
}

PG_FUNCTION_INFO_V1(link_threshold_combine);
Datum
link_threshold_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *st;
	double	   *v;
	double	   *o;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	st = threshold_state(fcinfo);
	v = threshold_values(st);
	o = threshold_values(PG_GETARG_ARRAYTYPE_P(1));
	for (int i = 0; i < THRESHOLD_STATE_LEN; i++)
		v[i] += o[i];
	PG_RETURN_ARRAYTYPE_P(st);
}

PG_FUNCTION_INFO_V1(link_threshold_final);
Datum
link_threshold_final(PG_FUNCTION_ARGS)
{
	double	   *v;
	double		actual = 0.0;
	double		tp = 0.0;
	double		predicted = 0.0;
	double		best_f1 = -1.0;
	int			best = -1;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	v = threshold_values(PG_GETARG_ARRAYTYPE_P(0));
	for (int i = 0; i < THRESHOLD_BUCKETS; i++)
		actual += v[THRESHOLD_BUCKETS + i];
	for (int i = THRESHOLD_BUCKETS - 1; i >= 0; i--)
	{
		double		f1;

		if (v[i] == 0.0)
			continue;
		predicted += v[i];
		tp += v[THRESHOLD_BUCKETS + i];
		f1 = 2.0 * tp / (predicted + actual);
		if (f1 > best_f1)
		{
			best_f1 = f1;
			best = i;
		}
	}
	if (best < 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8((best + 4.0 * THRESHOLD_MIN_BITS) / 4.0);
}
