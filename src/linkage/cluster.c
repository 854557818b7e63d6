/*-------------------------------------------------------------------------
 *
 * cluster.c
 *		Clustering of accepted links into persons: union-find.
 *
 * Owns turning pairwise links into clusters.  link_components(query,
 * one_to_one) runs query (columns: two record ids, bigint), in the order the
 * query gives, and returns (rid, cluster) for every record that is in at
 * least one accepted link; a cluster is named by its smallest record id, so
 * the result does not depend on the order of the links.  With one_to_one, a
 * link is accepted only when neither record is in an accepted link already
 * (greedy, in the query's order: order it by weight descending), which is
 * the one-to-one linkage of two sources in which each person appears at
 * most once per side.
 *
 * Memory: 4 bytes per record id up to the largest one in a link (an array
 * indexed by record id, 10 MB for 2.5 million records), independent of the
 * number of links, which are read through a cursor in batches.  The result
 * goes to a tuplestore, which spills to disk past work_mem.
 *
 * src/linkage/cluster.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#define FETCH_BATCH		10000
#define NO_PARENT		(-1)

typedef struct UnionFind
{
	int32	   *parent;			/* NO_PARENT: not in any link */
	int64		size;			/* allocated entries */
} UnionFind;

static void
uf_grow(UnionFind *uf, int64 rid)
{
	int64		n = uf->size;

	if (rid < 0 || rid >= PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("record id out of range for clustering"),
				 errdetail("Record ids in links must lie between 0 and %d.", PG_INT32_MAX - 1)));
	if (rid < n)
		return;
	while (n <= rid)
		n = Max(n * 2, 1024);
	n = Min(n, (int64) PG_INT32_MAX);
	uf->parent = repalloc_huge(uf->parent, n * sizeof(int32));
	for (int64 i = uf->size; i < n; i++)
		uf->parent[i] = NO_PARENT;
	uf->size = n;
}

static int32
uf_find(UnionFind *uf, int32 x)
{
	if (uf->parent[x] == NO_PARENT)
		uf->parent[x] = x;
	while (uf->parent[x] != x)
	{
		uf->parent[x] = uf->parent[uf->parent[x]];	/* path halving */
		x = uf->parent[x];
	}
	return x;
}

/* union by smaller id: the root of a cluster is its smallest record id */
static void
uf_union(UnionFind *uf, int32 a, int32 b)
{
	a = uf_find(uf, a);
	b = uf_find(uf, b);
	if (a < b)
		uf->parent[b] = a;
	else if (b < a)
		uf->parent[a] = b;
}

PG_FUNCTION_INFO_V1(link_components);
Datum
link_components(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		one_to_one = PG_GETARG_BOOL(1);
	UnionFind	uf;
	SPIPlanPtr	plan;
	Portal		portal;
	MemoryContext per_query;
	MemoryContext oldcxt;
	Tuplestorestate *store;
	TupleDesc	tupdesc;

	InitMaterializedSRF(fcinfo, 0);
	store = rsinfo->setResult;
	tupdesc = rsinfo->setDesc;
	per_query = rsinfo->econtext->ecxt_per_query_memory;

	oldcxt = MemoryContextSwitchTo(per_query);
	uf.size = 1024;
	uf.parent = palloc_extended(uf.size * sizeof(int32), MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < uf.size; i++)
		uf.parent[i] = NO_PARENT;
	MemoryContextSwitchTo(oldcxt);

	SPI_connect();
	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not prepare the links query: %s", SPI_result_code_string(SPI_result))));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, FETCH_BATCH);
		if (SPI_processed == 0)
			break;
		if (SPI_tuptable->tupdesc->natts < 2 ||
			TupleDescAttr(SPI_tuptable->tupdesc, 0)->atttypid != INT8OID ||
			TupleDescAttr(SPI_tuptable->tupdesc, 1)->atttypid != INT8OID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("the links query must return two bigint record ids")));
		oldcxt = MemoryContextSwitchTo(per_query);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			bool		na,
						nb;
			int64		a = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &na));
			int64		b = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &nb));

			if (na || nb)
				continue;
			uf_grow(&uf, Max(a, b));
			if (one_to_one &&
				(uf.parent[a] != NO_PARENT || uf.parent[b] != NO_PARENT))
				continue;
			uf_union(&uf, (int32) a, (int32) b);
		}
		MemoryContextSwitchTo(oldcxt);
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_finish();

	for (int64 i = 0; i < uf.size; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		if (uf.parent[i] == NO_PARENT)
			continue;
		values[0] = Int64GetDatum(i);
		values[1] = Int64GetDatum((int64) uf_find(&uf, (int32) i));
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	pfree(uf.parent);
	return (Datum) 0;
}
