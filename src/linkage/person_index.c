/*
 * src/linkage/person_index.c
 *
 * The person index's rows of a run written in C:
 *
 *   caredata._link_person_index_into(persons regclass, project text,
 *       clusters regclass, plan regclass, run_id bigint) RETURNS bigint
 *
 * writes into persons (the project's partition of caredata.person_index,
 * its indexes dropped for the rewrite) one row per record of the run's
 * cluster table (rid, source, record_id, record_key, cluster), with the
 * person id the plan ('a' rows: cluster, person_id; persons.c) gives its
 * cluster; returns how many rows.  These are the rows of link_run()'s
 *
 *   INSERT INTO caredata.person_index (project, source, record_id, rid,
 *                                      person_id, run_id, record_key)
 *   SELECT project, c.source, c.record_id, c.rid, a.person_id, run_id,
 *          c.record_key
 *     FROM clusters c JOIN plan a ON a.kind = 'a' AND a.cluster = c.cluster
 *
 * which it replaces (sql/linkage_engine.sql compares the two): there a hash
 * join of the records to a million clusters took about half the statement
 * at a million people.  Here the plan's person ids are held by cluster in
 * an IdMap (id_map.h, at most maintenance_work_mem) and the rows written in
 * batches (table_multi_insert, WAL-logged a page at a time).
 *
 * A record whose cluster has no person id is left out, as the join leaves
 * it out.  The target is written directly, so it must be one the INSERT
 * above would have written with nothing else run: a partition of
 * caredata.person_index whose bound holds the project (the partition
 * constraint is checked), in a transaction that may write; the caller may
 * INSERT into it and into caredata.person_index, neither is under row
 * security or has triggers or rules; the partition has no indexes or CHECK
 * constraints and exactly the seven columns above, none generated or an
 * identity (NOT NULL is checked on every row).
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "partitioning/partdesc.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

#include "id_map.h"
#include "temp_table.h"

#define WHO				"caredata._link_person_index_into()"
#define INSERT_BATCH	1000
#define NCOLS			7

/* the target's columns, in the order values are built */
static const char *const col_names[NCOLS] = {"project", "source", "record_id", "rid", "person_id", "run_id", "record_key"};
static const Oid col_types[NCOLS] = {TEXTOID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID};

/* the plan's person id of each cluster (its rows of kind 'a') */
static void
read_plan(Oid relid, IdMap *map)
{
	Relation	rel = link_open_temp(relid, WHO);
	AttrNumber	att_kind = link_temp_column(rel, "kind", CHAROID);
	AttrNumber	att_cluster = link_temp_column(rel, "cluster", INT8OID);
	AttrNumber	att_person = link_temp_column(rel, "person_id", INT8OID);
	int64		scanned = 0;
	TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);

	id_map_init(map, "reading the person ids of the clusters into memory",
				"Raise maintenance_work_mem; caredata.link_run() then writes the person index with SQL.");
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		null_k,
					null_c,
					null_p;
		Datum		kind = slot_getattr(slot, att_kind, &null_k);
		Datum		c;
		Datum		p;

		if ((++scanned & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (null_k || DatumGetChar(kind) != 'a')
			continue;
		c = slot_getattr(slot, att_cluster, &null_c);
		p = slot_getattr(slot, att_person, &null_p);
		/* as the join: a NULL cluster matches no record */
		if (null_c)
			continue;
		if (null_p)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("the plan gives a cluster no person id")));
		id_map_add(map, DatumGetInt64(c), DatumGetInt64(p));
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	relation_close(rel, AccessShareLock);
	/* the join would write such a cluster's records twice */
	id_map_finish(map, "the plan gives a cluster two person ids");
}

/*
 * The target, locked for writing, with the attribute number of each column
 * of col_names: a partition of caredata.person_index that an INSERT would
 * write with nothing else run (see the head of this file)
 */
static Relation
open_target(Oid relid, AttrNumber *attnos)
{
	Oid			parent_id = get_relname_relid("person_index", get_namespace_oid("caredata", false));
	Relation	rel;
	Relation	parent;
	List	   *indexes;

	if (!OidIsValid(parent_id) || !get_rel_relispartition(relid) || get_partition_parent(relid, false) != parent_id)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s writes a partition of caredata.person_index only", WHO)));
	rel = link_open_direct_target(relid, WHO, NCOLS, NCOLS, col_names, col_types, attnos);
	/* the parent, which the INSERT it replaces names, as well */
	parent = table_open(parent_id, AccessShareLock);
	link_check_insertable(parent, WHO);
	table_close(parent, AccessShareLock);
	indexes = RelationGetIndexList(rel);
	if (indexes != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s writes a partition without indexes", WHO),
				 errhint("caredata.link_run() drops the partition's indexes before it writes the rows.")));
	list_free(indexes);
	return rel;
}

PG_FUNCTION_INFO_V1(link_person_index_into);
Datum
link_person_index_into(PG_FUNCTION_ARGS)
{
	MemoryContext work;
	MemoryContext old;
	Relation	target;
	AttrNumber	attnos[NCOLS];
	Relation	clusters;
	AttrNumber	att_rid,
				att_source,
				att_record_id,
				att_key,
				att_cluster;
	IdMap		map;
	Datum		project;
	int64		run_id;
	EState	   *estate;
	ExprState  *partcheck;
	TableScanDesc scan;
	TupleTableSlot *slot;
	LinkWriter	writer;
	int64		written = 0;
	int64		scanned = 0;
	TupleDesc	desc;

	for (int i = 0; i < 5; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s needs the partition, the project, the cluster table, the plan and the run", WHO)));
	work = AllocSetContextCreate(CurrentMemoryContext, "caredata person index rows", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	project = PointerGetDatum(PG_DETOAST_DATUM_COPY(PG_GETARG_DATUM(1)));
	run_id = PG_GETARG_INT64(4);

	target = open_target(PG_GETARG_OID(0), attnos);
	desc = RelationGetDescr(target);
	clusters = link_open_temp(PG_GETARG_OID(2), WHO);
	att_rid = link_temp_column(clusters, "rid", INT8OID);
	att_source = link_temp_column(clusters, "source", TEXTOID);
	att_record_id = link_temp_column(clusters, "record_id", INT8OID);
	att_key = link_temp_column(clusters, "record_key", TEXTOID);
	att_cluster = link_temp_column(clusters, "cluster", INT8OID);
	read_plan(PG_GETARG_OID(3), &map);

	/* the partition's bound, checked on every row as an INSERT into it checks it */
	estate = CreateExecutorState();
	partcheck = ExecPrepareCheck(RelationGetPartitionQual(target), estate);

	link_writer_begin(&writer, target, INSERT_BATCH);
	scan = table_beginscan(clusters, GetActiveSnapshot(), 0, NULL);
	slot = table_slot_create(clusters, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		TupleTableSlot *o;
		bool		null_c;
		int64		cluster = DatumGetInt64(slot_getattr(slot, att_cluster, &null_c));
		int64		person;
		Datum	   *v;
		bool	   *isnull;
		ExprContext *econtext;

		if ((++scanned & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (null_c || !id_map_get(&map, cluster, &person))
			continue;
		o = link_writer_next(&writer);
		v = o->tts_values;
		isnull = o->tts_isnull;
		for (int i = 0; i < desc->natts; i++)
			isnull[i] = true;
		v[attnos[0] - 1] = project;
		isnull[attnos[0] - 1] = false;
		v[attnos[1] - 1] = slot_getattr(slot, att_source, &isnull[attnos[1] - 1]);
		v[attnos[2] - 1] = slot_getattr(slot, att_record_id, &isnull[attnos[2] - 1]);
		v[attnos[3] - 1] = slot_getattr(slot, att_rid, &isnull[attnos[3] - 1]);
		v[attnos[4] - 1] = Int64GetDatum(person);
		isnull[attnos[4] - 1] = false;
		v[attnos[5] - 1] = Int64GetDatum(run_id);
		isnull[attnos[5] - 1] = false;
		v[attnos[6] - 1] = slot_getattr(slot, att_key, &isnull[attnos[6] - 1]);
		link_check_not_null(target, o);
		ExecStoreVirtualTuple(o);
		/* the texts copied out of the scan's page, which it will leave */
		ExecMaterializeSlot(o);
		econtext = GetPerTupleExprContext(estate);
		econtext->ecxt_scantuple = o;
		if (!ExecCheck(partcheck, econtext))
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("new row for relation \"%s\" violates partition constraint", RelationGetRelationName(target)),
					 errhint("Give the project the partition holds.")));
		ResetPerTupleExprContext(estate);
		written++;
		link_writer_done(&writer);
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	link_writer_end(&writer);
	FreeExecutorState(estate);
	relation_close(clusters, AccessShareLock);
	table_close(target, NoLock);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	PG_RETURN_INT64(written);
}
