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
 *
 * src/linkage/score.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"

typedef struct WeightTable
{
	int			n;
	double		w[FLEXIBLE_ARRAY_MEMBER];
} WeightTable;

static WeightTable *
weight_table(ArrayType *a, MemoryContext mcxt)
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
			t = weight_table(PG_GETARG_ARRAYTYPE_P(2), fcinfo->flinfo->fn_mcxt);
			fcinfo->flinfo->fn_extra = t;
		}
		else
			t = weight_table(PG_GETARG_ARRAYTYPE_P(2), CurrentMemoryContext);
	}
	if (pattern < 0 || pattern >= t->n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pattern %d has no weight in an array of %d", pattern, t->n),
				 errhint("Compute the weights of every pattern with caredata.link_pattern_weights().")));
	PG_RETURN_FLOAT8(t->w[pattern] + tf_adj);
}
