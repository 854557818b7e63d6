/*
 * src/linkage/cluster_table.c
 *
 * A run's cluster table written in C:
 *
 *   caredata._link_cluster_into(into regclass, records regclass,
 *       persons regclass, links_query text, one_to_one boolean,
 *       nhs_query text, OUT records bigint, OUT clusters bigint,
 *       OUT refused bigint)
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
 * the person index is read once into memory, the records once in their
 * heap order, and the rows are written in batches (table_multi_insert).
 * The person index's person ids are held by rid in an IdMap (id_map.h).
 *
 * Memory: link_components()' arrays, and the person ids, each at most
 * maintenance_work_mem (54000 past it: link_run() then runs the statement
 * above).
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/relation.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "cluster.h"
#include "id_map.h"
#include "temp_table.h"

#define WHO				"caredata._link_cluster_into()"
#define INSERT_BATCH	1000
#define OUT_NATTS		7

/* the person index's person ids by rid, read once */
static void
read_persons(Oid relid, IdMap *map)
{
	Relation	rel = link_open_table(relid, WHO);
	AttrNumber	att_rid = link_temp_column(rel, "rid", INT8OID);
	AttrNumber	att_person = link_temp_column(rel, "person_id", INT8OID);
	int64		scanned = 0;
	TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	TupleTableSlot *slot = table_slot_create(rel, NULL);

	id_map_init(map, "reading the person index into memory",
				"Raise maintenance_work_mem; caredata.link_run() then builds its cluster table with SQL.");
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		null_r,
					null_p;
		Datum		r = slot_getattr(slot, att_rid, &null_r);
		Datum		p = slot_getattr(slot, att_person, &null_p);

		if ((++scanned & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		/* as a join on rid, which a NULL never matches */
		if (null_r || null_p)
			continue;
		id_map_add(map, DatumGetInt64(r), DatumGetInt64(p));
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	relation_close(rel, AccessShareLock);
	/* a join would give such a record twice: the index's key forbids it */
	id_map_finish(map, "the person index holds a record twice");
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
	IdMap		persons;
	int64		written = 0;
	int64		nclusters = 0;
	int64		nrefused = 0;
	TupleDesc	rdesc;
	Datum		result[3];
	bool		result_null[3] = {false, false, false};
	Relation	into;
	Relation	rel;
	AttrNumber	att[4];
	TableScanDesc scan;
	TupleTableSlot *slot;
	LinkWriter	writer;

	for (int i = 0; i < 5; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s needs a target, the records, the person index, the links query and one_to_one", WHO)));
	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE || rdesc->natts != 3)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s returns (records, clusters, refused)", WHO)));
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

	read_persons(PG_GETARG_OID(2), &persons);
	clusters = link_clusters_build(text_to_cstring(PG_GETARG_TEXT_PP(3)), PG_GETARG_BOOL(4),
								   PG_ARGISNULL(5) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(5)), work);

	link_writer_begin(&writer, into, INSERT_BATCH);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	slot = table_slot_create(rel, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		TupleTableSlot *o;
		bool		null_rid;
		int64		rid = DatumGetInt64(slot_getattr(slot, att[0], &null_rid));
		int64		cluster;
		bool		refused;
		int64		person = 0;

		o = link_writer_next(&writer);
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
		nclusters += !null_rid && cluster == rid;
		nrefused += refused;
		o->tts_isnull[6] = null_rid || !id_map_get(&persons, rid, &person);
		o->tts_values[6] = o->tts_isnull[6] ? (Datum) 0 : Int64GetDatum(person);
		ExecStoreVirtualTuple(o);
		/* the texts copied out of the scan's page, which it will leave */
		ExecMaterializeSlot(o);
		written++;
		link_writer_done(&writer);
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	link_writer_end(&writer);
	relation_close(rel, AccessShareLock);
	relation_close(into, NoLock);
	link_clusters_free(clusters);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	result[0] = Int64GetDatum(written);
	result[1] = Int64GetDatum(nclusters);
	result[2] = Int64GetDatum(nrefused);
	rdesc = BlessTupleDesc(rdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(rdesc, result, result_null)));
}
