/*
 * src/linkage/persons.c
 *
 * Stable person ids for a run's clusters, in memory:
 * caredata._link_person_plan(clusters regclass, max_person bigint) reads the
 * run's working table pg_temp.link_cluster (cluster, old_person: each
 * record's cluster and its person id in the index so far) and returns
 *
 *   ('a', cluster, person_id, NULL, NULL)       each cluster's person id
 *   ('m', cluster, person_id, other, records)    merges
 *   ('s', cluster, person, new person, records)  splits
 *
 * by the rules of caredata._link_person_plan_sql(), which it replaces (the
 * same rows; sql/linkage_engine.sql compares them): an old person goes to
 * the cluster holding most of its records (ties: the smallest cluster); a
 * cluster keeps the smallest old id it won, and the other ids it won merge
 * into it; clusters that won none get new ids after max_person, in cluster
 * order; the records of an old person in a cluster it did not go to split
 * off when that cluster got a new id.
 *
 * In SQL this took four groupings, sorts and joins over the records and the
 * clusters (3.6 s at a million people); here the records' (old person,
 * cluster) pairs and the clusters are sorted once each.  Memory: 8 bytes a
 * record for its cluster, 16 a record with an old person, 24 a distinct
 * (old person, cluster) pair, at most maintenance_work_mem; past it, 54000,
 * and link_run() plans in SQL.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "temp_table.h"

typedef struct OldPair
{
	int64		person;
	int64		cluster;
} OldPair;

typedef struct Overlap
{
	int64		person;
	int64		cluster;
	int64		n;
} Overlap;

/* a growing array within the memory limit */
typedef struct Grow
{
	char	   *data;
	Size		n;
	Size		cap;
	Size		width;
} Grow;

static Size mem_used;
static Size mem_limit;

static void
plan_charge(Size bytes)
{
	mem_used += bytes;
	if (mem_used > mem_limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("planning person ids in memory needs more than maintenance_work_mem (%d kB)", maintenance_work_mem),
				 errhint("Raise maintenance_work_mem; caredata.link_run() then plans them with SQL.")));
}

static inline void *
grow_push(Grow *g)
{
	if (g->n == g->cap)
	{
		Size		cap = g->cap ? g->cap * 2 : 65536;

		plan_charge((cap - g->cap) * g->width);
		g->data = g->data ? repalloc_huge(g->data, cap * g->width)
			: palloc_extended(cap * g->width, MCXT_ALLOC_HUGE);
		g->cap = cap;
	}
	return g->data + g->width * g->n++;
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

static int
cmp_old_pair(const void *a, const void *b)
{
	const OldPair *x = a;
	const OldPair *y = b;

	if (x->person != y->person)
		return (x->person > y->person) - (x->person < y->person);
	return (x->cluster > y->cluster) - (x->cluster < y->cluster);
}

/* winners by (cluster, person) */
static int
cmp_by_cluster(const void *a, const void *b)
{
	const Overlap *x = a;
	const Overlap *y = b;

	if (x->cluster != y->cluster)
		return (x->cluster > y->cluster) - (x->cluster < y->cluster);
	return (x->person > y->person) - (x->person < y->person);
}

/* the position of a cluster among the sorted distinct clusters */
static Size
cluster_index(const int64 *clusters, Size k, int64 c)
{
	Size		lo = 0,
				hi = k;

	while (lo < hi)
	{
		Size		mid = lo + (hi - lo) / 2;

		if (clusters[mid] < c)
			lo = mid + 1;
		else
			hi = mid;
	}
	Assert(lo < k && clusters[lo] == c);
	return lo;
}

static void
put_row(ReturnSetInfo *rsinfo, char kind, int64 cluster, int64 person, int64 other, int64 records, bool event)
{
	Datum		values[5];
	bool		nulls[5] = {false, false, false, !event, !event};

	values[0] = CharGetDatum(kind);
	values[1] = Int64GetDatum(cluster);
	values[2] = Int64GetDatum(person);
	values[3] = Int64GetDatum(other);
	values[4] = Int64GetDatum(records);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

PG_FUNCTION_INFO_V1(link_person_plan);
Datum
link_person_plan(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid;
	int64		max_person;
	int64		next_person;
	Relation	rel;
	AttrNumber	att_cluster,
				att_old;
	TableScanDesc scan;
	TupleTableSlot *slot;
	Grow		clusters = {NULL, 0, 0, sizeof(int64)};
	Grow		pairs = {NULL, 0, 0, sizeof(OldPair)};
	Overlap    *overlap;
	Overlap    *winners;
	Size		noverlap = 0,
				nwinners = 0,
				k = 0;
	int64	   *person_of;
	bool	   *assigned;
	int64	   *cl;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("caredata._link_person_plan() needs a table and the highest person id so far")));
	relid = PG_GETARG_OID(0);
	max_person = PG_GETARG_INT64(1);
	if (max_person < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the highest person id so far cannot be negative")));
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	mem_used = 0;
	mem_limit = (Size) maintenance_work_mem * 1024;

	/* each record's cluster, and (old person, cluster) where it has one */
	rel = link_open_temp(relid, "caredata._link_person_plan()");
	att_cluster = link_temp_column(rel, "cluster", INT8OID);
	att_old = link_temp_column(rel, "old_person", INT8OID);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		null_c,
					null_p;
		Datum		c = slot_getattr(slot, att_cluster, &null_c);
		Datum		p = slot_getattr(slot, att_old, &null_p);

		CHECK_FOR_INTERRUPTS();
		if (null_c)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("a record without a cluster")));
		*(int64 *) grow_push(&clusters) = DatumGetInt64(c);
		if (!null_p)
		{
			OldPair    *op = grow_push(&pairs);

			op->person = DatumGetInt64(p);
			op->cluster = DatumGetInt64(c);
		}
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	relation_close(rel, AccessShareLock);

	/* the distinct clusters, in order */
	cl = (int64 *) clusters.data;
	if (clusters.n > 0)
	{
		qsort(cl, clusters.n, sizeof(int64), cmp_int64);
		k = 1;
		for (Size i = 1; i < clusters.n; i++)
			if (cl[i] != cl[k - 1])
				cl[k++] = cl[i];
	}

	/* the overlap: records of each old person in each cluster */
	if (pairs.n > 0)
		qsort(pairs.data, pairs.n, sizeof(OldPair), cmp_old_pair);
	plan_charge(pairs.n * sizeof(Overlap) * 2);
	overlap = palloc_extended(Max(pairs.n, 1) * sizeof(Overlap), MCXT_ALLOC_HUGE);
	winners = palloc_extended(Max(pairs.n, 1) * sizeof(Overlap), MCXT_ALLOC_HUGE);
	for (Size i = 0; i < pairs.n; i++)
	{
		OldPair    *op = &((OldPair *) pairs.data)[i];

		if (noverlap > 0 && overlap[noverlap - 1].person == op->person && overlap[noverlap - 1].cluster == op->cluster)
			overlap[noverlap - 1].n++;
		else
		{
			overlap[noverlap].person = op->person;
			overlap[noverlap].cluster = op->cluster;
			overlap[noverlap].n = 1;
			noverlap++;
		}
	}
	if (pairs.data)
		pfree(pairs.data);

	/* each old person's winner: most records, then the smallest cluster */
	for (Size i = 0; i < noverlap; i++)
	{
		if (nwinners > 0 && winners[nwinners - 1].person == overlap[i].person)
		{
			if (overlap[i].n > winners[nwinners - 1].n)
				winners[nwinners - 1] = overlap[i];
		}
		else
			winners[nwinners++] = overlap[i];
	}

	/* each cluster: the smallest person it won, else a new id in cluster order */
	plan_charge(k * (sizeof(int64) + sizeof(bool)));
	person_of = palloc_extended(Max(k, 1) * sizeof(int64), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	assigned = palloc_extended(Max(k, 1) * sizeof(bool), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	{
		Overlap    *by_cluster = palloc_extended(Max(nwinners, 1) * sizeof(Overlap), MCXT_ALLOC_HUGE);
		Size		j = 0;

		memcpy(by_cluster, winners, nwinners * sizeof(Overlap));
		if (nwinners > 0)
			qsort(by_cluster, nwinners, sizeof(Overlap), cmp_by_cluster);
		for (Size i = 0; i < nwinners; i++)
		{
			while (cl[j] < by_cluster[i].cluster)
				j++;
			if (!assigned[j])
			{
				person_of[j] = by_cluster[i].person;
				assigned[j] = true;
			}
		}
		pfree(by_cluster);
	}
	next_person = max_person;
	for (Size i = 0; i < k; i++)
	{
		if (!assigned[i])
		{
			if (next_person == PG_INT64_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("person ids are exhausted")));
			person_of[i] = ++next_person;
		}
		put_row(rsinfo, 'a', cl[i], person_of[i], 0, 0, false);
	}

	/* merges: a winner whose cluster kept another id */
	for (Size i = 0; i < nwinners; i++)
	{
		int64		a = person_of[cluster_index(cl, k, winners[i].cluster)];

		if (a != winners[i].person)
			put_row(rsinfo, 'm', winners[i].cluster, a, winners[i].person, winners[i].n, true);
	}
	/* splits: records of an old person in a cluster it did not go to, which got a new id */
	for (Size i = 0, w = 0; i < noverlap; i++)
	{
		int64		a;

		while (winners[w].person < overlap[i].person)
			w++;
		if (winners[w].cluster == overlap[i].cluster)
			continue;
		a = person_of[cluster_index(cl, k, overlap[i].cluster)];
		if (a > max_person)
			put_row(rsinfo, 's', overlap[i].cluster, overlap[i].person, a, overlap[i].n, true);
	}
	return (Datum) 0;
}
