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
 * With nhs_query (columns: record id and its NHS number's ten digits,
 * bigint), two clusters are never joined when each holds a confirmed NHS
 * number and the two differ by more than one digit or one adjacent
 * transposition (link_nhs_level() says "different").  A number is confirmed
 * in a cluster when a link joins two records that both carry it (valid): a
 * record carrying a household member's number on its own proves nothing,
 * and joins the person whose other details it shares; but once it is linked
 * to the member's records, the two people are kept apart.  The query's order
 * matters: order the links by weight descending and break ties by record
 * ids.  A third, boolean column of nhs_query, when true, confirms the
 * record's number from the start: the caller's judgement that no other
 * record carrying the number contradicts it (run.sql: "nhs_confirm":
 * "details"), so that twins with one record each, or whose records have not
 * linked to each other yet, are kept apart as well.

 * The result has one row per record in a link: its cluster, and whether a
 * link of it was refused (one to one, or an NHS number conflict), so that the
 * caller can delete refused links without looking at the others.
 *
 * Memory: 5 bytes per record id up to the largest one in a link (arrays
 * indexed by record id, 12 MB for 2.5 million records), 16 more with
 * nhs_query, independent of the number of links, which are read through a
 * cursor in batches.  Needing more than maintenance_work_mem is an error
 * with a hint, never a larger allocation.  The result goes to a tuplestore, which spills to disk
 * past work_mem.
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

#include "identifiers/identifiers.h"
#include "compare.h"

#define FETCH_BATCH		10000
#define NO_PARENT		(-1)

typedef struct UnionFind
{
	int32	   *parent;			/* NO_PARENT: not in any link */
	int64	   *own;			/* a record's valid NHS number, 0 none; NULL
								 * without nhs_query */
	int64	   *key;			/* at a root: the cluster's confirmed NHS
								 * number, 0 none; NULL without nhs_query */
	bool	   *refused;		/* a link of this record was refused */
	int64		size;			/* allocated entries */
} UnionFind;

static void
uf_grow(UnionFind *uf, int64 rid)
{
	int64		n = uf->size;
	int64		per_record;
	int64		limit;

	if (rid < 0 || rid >= PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("record id out of range for clustering"),
				 errdetail("Record ids in links must lie between 0 and %d.", PG_INT32_MAX - 1)));
	if (rid < n)
		return;
	per_record = sizeof(int32) + sizeof(bool) + (uf->own ? 2 * sizeof(int64) : 0);
	limit = (int64) maintenance_work_mem * 1024 / per_record;
	if (rid >= limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("clustering record ids up to %lld needs %lld kB, more than maintenance_work_mem (%d kB)",
						(long long) rid, (long long) ((rid + 1) * per_record / 1024), maintenance_work_mem),
				 errhint("Raise maintenance_work_mem for the run, e.g. SET maintenance_work_mem = '1GB'.")));
	while (n <= rid)
		n = Max(n * 2, 1024);
	n = Min(n, Min(limit, (int64) PG_INT32_MAX));
	uf->parent = repalloc_huge(uf->parent, n * sizeof(int32));
	uf->refused = repalloc_huge(uf->refused, n * sizeof(bool));
	if (uf->own)
	{
		uf->own = repalloc_huge(uf->own, n * sizeof(int64));
		uf->key = repalloc_huge(uf->key, n * sizeof(int64));
	}
	for (int64 i = uf->size; i < n; i++)
	{
		uf->parent[i] = NO_PARENT;
		uf->refused[i] = false;
		if (uf->own)
			uf->own[i] = uf->key[i] = 0;
	}
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

/*
 * union by smaller id: the root of a cluster is its smallest record id.
 * false (and nothing joined) when the clusters' confirmed NHS numbers
 * conflict.
 */
static bool
uf_union(UnionFind *uf, int32 a, int32 b)
{
	int32		ra = uf_find(uf, a);
	int32		rb = uf_find(uf, b);
	int32		root;
	int32		child;

	if (uf->own && uf->key[ra] != 0 && uf->key[rb] != 0 && uf->key[ra] != uf->key[rb] &&
		link_nhs_level(uf->key[ra], true, uf->key[rb], true) == NHS_DIFFERENT)
		return false;
	root = Min(ra, rb);
	child = Max(ra, rb);
	uf->parent[child] = root;
	if (uf->own)
	{
		if (uf->key[root] == 0)
			uf->key[root] = uf->key[child];
		/* two records carrying one number confirm it */
		if (uf->key[root] == 0 && uf->own[a] != 0 && uf->own[a] == uf->own[b])
			uf->key[root] = uf->own[a];
	}
	return true;
}

/* run a query through a cursor; call fn on each batch of rows */
typedef void (*BatchFn) (UnionFind *uf, SPITupleTable *tuptable, uint64 n, bool one_to_one);

static void
each_batch(const char *query, const char *what, UnionFind *uf, bool one_to_one,
		   MemoryContext per_query, BatchFn fn)
{
	SPIPlanPtr	plan;
	Portal		portal;

	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not prepare the %s query: %s", what, SPI_result_code_string(SPI_result))));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		MemoryContext oldcxt;

		SPI_cursor_fetch(portal, true, FETCH_BATCH);
		if (SPI_processed == 0)
			break;
		if (SPI_tuptable->tupdesc->natts < 2 ||
			TupleDescAttr(SPI_tuptable->tupdesc, 0)->atttypid != INT8OID ||
			TupleDescAttr(SPI_tuptable->tupdesc, 1)->atttypid != INT8OID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("the %s query must return two bigint columns", what)));
		oldcxt = MemoryContextSwitchTo(per_query);
		fn(uf, SPI_tuptable, SPI_processed, one_to_one);
		MemoryContextSwitchTo(oldcxt);
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
}

/* row i's two int8 columns; false when either is NULL */
static bool
int8_pair(SPITupleTable *tuptable, uint64 i, int64 *a, int64 *b)
{
	bool		na,
				nb;

	*a = DatumGetInt64(SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 1, &na));
	*b = DatumGetInt64(SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 2, &nb));
	return !na && !nb;
}

/*
 * (record id, NHS digits[, confirmed]): a record's valid number seeds its
 * cluster's; confirmed (a third boolean column, true) makes it the record's
 * confirmed number from the start
 */
static void
nhs_batch(UnionFind *uf, SPITupleTable *tuptable, uint64 n, bool one_to_one)
{
	bool		has_confirmed = tuptable->tupdesc->natts >= 3;

	if (has_confirmed && TupleDescAttr(tuptable->tupdesc, 2)->atttypid != BOOLOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the third column of the NHS numbers query must be boolean")));
	for (uint64 i = 0; i < n; i++)
	{
		int64		rid,
					digits;
		bool		isnull;

		if (!int8_pair(tuptable, i, &rid, &digits) || !nhs_number_value_is_valid(digits))
			continue;
		uf_grow(uf, rid);
		uf->own[rid] = digits;
		if (has_confirmed &&
			DatumGetBool(SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 3, &isnull)) && !isnull)
			uf->key[rid] = digits;	/* read before any link: rid is its own root */
	}
}

/* (record id, record id): one link each */
static void
links_batch(UnionFind *uf, SPITupleTable *tuptable, uint64 n, bool one_to_one)
{
	for (uint64 i = 0; i < n; i++)
	{
		int64		a,
					b;

		if (!int8_pair(tuptable, i, &a, &b))
			continue;
		uf_grow(uf, Max(a, b));
		uf_grow(uf, Min(a, b));
		if ((one_to_one && (uf->parent[a] != NO_PARENT || uf->parent[b] != NO_PARENT)) ||
			!uf_union(uf, (int32) a, (int32) b))
			uf->refused[a] = uf->refused[b] = true;
	}
}

PG_FUNCTION_INFO_V1(link_components);
Datum
link_components(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *query;
	bool		one_to_one;
	char	   *nhs_query;
	UnionFind	uf;
	MemoryContext per_query;
	MemoryContext oldcxt;
	Tuplestorestate *store;
	TupleDesc	tupdesc;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return (Datum) 0;
	query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	one_to_one = PG_GETARG_BOOL(1);
	nhs_query = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	store = rsinfo->setResult;
	tupdesc = rsinfo->setDesc;
	per_query = rsinfo->econtext->ecxt_per_query_memory;

	oldcxt = MemoryContextSwitchTo(per_query);
	uf.size = 1024;
	uf.parent = palloc_extended(uf.size * sizeof(int32), MCXT_ALLOC_HUGE);
	uf.refused = palloc_extended(uf.size * sizeof(bool), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	uf.own = nhs_query ? palloc_extended(uf.size * sizeof(int64), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO) : NULL;
	uf.key = nhs_query ? palloc_extended(uf.size * sizeof(int64), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO) : NULL;
	for (int64 i = 0; i < uf.size; i++)
		uf.parent[i] = NO_PARENT;
	MemoryContextSwitchTo(oldcxt);

	SPI_connect();
	if (nhs_query)
		each_batch(nhs_query, "NHS numbers", &uf, one_to_one, per_query, nhs_batch);
	each_batch(query, "links", &uf, one_to_one, per_query, links_batch);
	SPI_finish();

	for (int64 i = 0; i < uf.size; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		/* every record in a link, accepted or refused */
		if (uf.parent[i] == NO_PARENT && !uf.refused[i])
			continue;
		values[0] = Int64GetDatum(i);
		values[1] = Int64GetDatum(uf.parent[i] == NO_PARENT ? i : (int64) uf_find(&uf, (int32) i));
		values[2] = BoolGetDatum(uf.refused[i]);
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	pfree(uf.parent);
	pfree(uf.refused);
	if (uf.own)
	{
		pfree(uf.own);
		pfree(uf.key);
	}
	return (Datum) 0;
}
