/*
 * src/linkage/cluster_table.c
 *
 * A run's cluster table written in C:
 *
 *   caredata._link_cluster_into(into regclass, records regclass,
 *       persons regclass, links_query text, one_to_one boolean,
 *       nhs_query text) RETURNS bigint
 *
 * writes into the session's own temporary table into one row per record of
 * records (a project's partition of caredata.link_record):
 *
 *   (rid, source, record_id, record_key, cluster, refused, old_person)
 *
 * with the record's cluster and refusal as link_components(links_query,
 * one_to_one, nhs_query) gives them (the record's own rid and false when it
 * is in no link) and its person id in persons (the project's partition of
 * caredata.person_index; NULL when it has none); returns how many rows.
 * These are the rows of link_run()'s statement
 *
 *   SELECT r.rid, r.source, r.record_id, r.record_key,
 *          coalesce(c.cluster, r.rid), coalesce(c.refused, false),
 *          p.person_id
 *     FROM records r LEFT JOIN persons p ON p.rid = r.rid
 *     LEFT JOIN caredata.link_components(...) c ON c.rid = r.rid
 *
 * which it replaces (sql/linkage_engine.sql compares the two): there the
 * components went through a tuplestore and a sort (spilling to disk past
 * work_mem) and both tables were joined through their rid indexes.  Here
 * the person index is read once into an array of (rid, person) pairs, in
 * rid order, the records once in their heap order, and the rows are
 * written in batches (table_multi_insert).
 *
 * Memory: link_components()' arrays, and 16 bytes a record in the person
 * index, at most maintenance_work_mem (54000 past it: link_run() then runs
 * the statement above).
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/relation.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "cluster.h"
#include "temp_table.h"

#define WHO				"caredata._link_cluster_into()"
#define INSERT_BATCH	1000
#define OUT_NATTS		7

typedef struct OldPerson
{
	int64		rid;
	int64		person;
} OldPerson;

static int
cmp_old_person(const void *a, const void *b)
{
	int64		x = ((const OldPerson *) a)->rid;
	int64		y = ((const OldPerson *) b)->rid;

	return (x > y) - (x < y);
}

/*
 * The person index's (rid, person) pairs, sorted by rid (its heap order,
 * as link_run() writes it, so usually sorted already); *n set to how many
 */
static OldPerson *
read_persons(Oid relid, int64 *n)
{
	Relation	rel = link_open_table(relid, WHO);
	AttrNumber	att_rid = link_temp_column(rel, "rid", INT8OID);
	AttrNumber	att_person = link_temp_column(rel, "person_id", INT8OID);
	int64		limit = (int64) maintenance_work_mem * 1024 / sizeof(OldPerson);
	int64		cap = 65536;
	int64		k = 0;
	bool		sorted = true;
	OldPerson  *pairs = palloc_extended(cap * sizeof(OldPerson), MCXT_ALLOC_HUGE);
	TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);

	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		null_r,
					null_p;
		Datum		r = slot_getattr(slot, att_rid, &null_r);
		Datum		p = slot_getattr(slot, att_person, &null_p);

		if ((k & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		/* as a join on rid, which a NULL never matches */
		if (null_r || null_p)
			continue;
		if (k == cap)
		{
			if (cap >= limit)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("reading the person index into memory needs more than maintenance_work_mem (%d kB)", maintenance_work_mem),
						 errhint("Raise maintenance_work_mem; caredata.link_run() then builds its cluster table with SQL.")));
			cap = Min(cap * 2, limit);
			pairs = repalloc_huge(pairs, cap * sizeof(OldPerson));
		}
		pairs[k].rid = DatumGetInt64(r);
		pairs[k].person = DatumGetInt64(p);
		if (k > 0 && pairs[k].rid <= pairs[k - 1].rid)
			sorted = false;
		k++;
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	relation_close(rel, AccessShareLock);
	if (!sorted)
	{
		qsort(pairs, k, sizeof(OldPerson), cmp_old_person);
		/* a join would give such a record twice: the index's key forbids it */
		for (int64 i = 1; i < k; i++)
			if (pairs[i].rid == pairs[i - 1].rid)
				ereport(ERROR,
						(errcode(ERRCODE_UNIQUE_VIOLATION),
						 errmsg("the person index holds a record twice")));
	}
	*n = k;
	return pairs;
}

/*
 * The person of record rid, from the pairs; *cursor is where the last
 * record was found (the records come in about rid order, so the next one is
 * usually just after it)
 */
static bool
person_of(const OldPerson *pairs, int64 n, int64 rid, int64 *cursor, int64 *person)
{
	int64		lo = 0,
				hi = n;

	if (*cursor < n && pairs[*cursor].rid == rid)
	{
		*person = pairs[(*cursor)++].person;
		return true;
	}
	while (lo < hi)
	{
		int64		mid = lo + (hi - lo) / 2;

		if (pairs[mid].rid < rid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && pairs[lo].rid == rid)
	{
		*person = pairs[lo].person;
		*cursor = lo + 1;
		return true;
	}
	return false;
}

/* the target's columns: rid, source, record_id, record_key, cluster, refused, old_person */
static void
check_target(Relation into)
{
	static const Oid types[OUT_NATTS] = {INT8OID, TEXTOID, INT8OID, TEXTOID, INT8OID, BOOLOID, INT8OID};
	TupleDesc	desc = RelationGetDescr(into);
	int			k = 0;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		if (k >= OUT_NATTS || att->atttypid != types[k])
			break;
		k++;
	}
	if (k != OUT_NATTS || desc->natts != OUT_NATTS)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s writes a table of columns (rid bigint, source text, record_id bigint, record_key text, cluster bigint, refused boolean, old_person bigint)", WHO)));
}

PG_FUNCTION_INFO_V1(link_cluster_into);
Datum
link_cluster_into(PG_FUNCTION_ARGS)
{
	MemoryContext work;
	MemoryContext old;
	LinkClusters *clusters;
	OldPerson  *persons;
	int64		npersons;
	int64		cursor = 0;
	int64		written = 0;
	Relation	into;
	Relation	rel;
	AttrNumber	att[4];
	TableScanDesc scan;
	TupleTableSlot *slot;
	TupleTableSlot *out[INSERT_BATCH];
	int			nout = 0;
	BulkInsertState bistate;
	CommandId	cid;

	for (int i = 0; i < 5; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s needs a target, the records, the person index, the links query and one_to_one", WHO)));
	work = AllocSetContextCreate(CurrentMemoryContext, "caredata cluster table", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);

	/* checked before the long part: the target and the tables read */
	into = link_open_temp_target(PG_GETARG_OID(0), WHO);
	check_target(into);
	rel = link_open_table(PG_GETARG_OID(1), WHO);
	att[0] = link_temp_column(rel, "rid", INT8OID);
	att[1] = link_temp_column(rel, "source", TEXTOID);
	att[2] = link_temp_column(rel, "record_id", INT8OID);
	att[3] = link_temp_column(rel, "record_key", TEXTOID);

	persons = read_persons(PG_GETARG_OID(2), &npersons);
	clusters = link_clusters_build(text_to_cstring(PG_GETARG_TEXT_PP(3)), PG_GETARG_BOOL(4),
								   PG_ARGISNULL(5) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(5)), work);

	for (int k = 0; k < INSERT_BATCH; k++)
		out[k] = MakeSingleTupleTableSlot(RelationGetDescr(into), &TTSOpsVirtual);
	bistate = GetBulkInsertState();
	cid = GetCurrentCommandId(true);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		TupleTableSlot *o = out[nout];
		bool		null_rid;
		int64		rid = DatumGetInt64(slot_getattr(slot, att[0], &null_rid));
		int64		cluster;
		bool		refused;
		int64		person = 0;

		if ((written & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		ExecClearTuple(o);
		for (int i = 0; i < 4; i++)
			o->tts_values[i] = slot_getattr(slot, att[i], &o->tts_isnull[i]);
		/* in no link (or without a rid, which no link names) */
		if (null_rid || !link_cluster_of(clusters, rid, &cluster, &refused))
		{
			cluster = rid;
			refused = false;
		}
		o->tts_values[4] = Int64GetDatum(cluster);
		o->tts_isnull[4] = null_rid;
		o->tts_values[5] = BoolGetDatum(refused);
		o->tts_isnull[5] = false;
		o->tts_isnull[6] = null_rid || !person_of(persons, npersons, rid, &cursor, &person);
		o->tts_values[6] = o->tts_isnull[6] ? (Datum) 0 : Int64GetDatum(person);
		ExecStoreVirtualTuple(o);
		/* the texts copied out of the scan's page, which it will leave */
		ExecMaterializeSlot(o);
		written++;
		if (++nout == INSERT_BATCH)
		{
			table_multi_insert(into, out, nout, cid, 0, bistate);
			nout = 0;
		}
	}
	if (nout > 0)
		table_multi_insert(into, out, nout, cid, 0, bistate);
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	FreeBulkInsertState(bistate);
	table_finish_bulk_insert(into, 0);
	for (int k = 0; k < INSERT_BATCH; k++)
		ExecDropSingleTupleTableSlot(out[k]);
	relation_close(rel, AccessShareLock);
	relation_close(into, NoLock);
	link_clusters_free(clusters);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	PG_RETURN_INT64(written);
}
