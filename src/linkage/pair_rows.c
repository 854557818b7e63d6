/*
 * src/linkage/pair_rows.c
 *
 * A probabilistic run's links written in C:
 *
 *   caredata._link_pairs_into(cand regclass, run_id bigint,
 *       weights double precision[], threshold double precision)
 *       RETURNS bigint
 *
 * reads the run's candidate pairs (the session's own temporary table:
 * rid_l, rid_r, pattern, tf_adj) and writes into caredata.link_pair each
 * whose match weight is at least the threshold; returns how many.  These
 * are the rows, in the same order, of link_run()'s
 *
 *   INSERT INTO caredata.link_pair (run_id, rid_l, rid_r, pattern, weight,
 *                                   probability)
 *   SELECT run_id, s.rid_l, s.rid_r, s.pattern, s.weight,
 *          caredata.link_probability(s.weight)
 *     FROM (SELECT c.rid_l, c.rid_r, c.pattern,
 *                  caredata.link_weight(c.pattern, c.tf_adj, weights) AS weight
 *             FROM cand c) s
 *    WHERE s.weight >= threshold
 *
 * which it replaces (sql/linkage_engine.sql compares the two, NaN and
 * infinite weights too: compared and clamped as PostgreSQL's float8
 * operators compare them, a NaN above every number): there each of 3.6M
 * links at a million people went through the executor's projection and a
 * heap insert of its own.  Here they are written in batches
 * (table_multi_insert), the table's indexes (its BRIN index on run_id) kept
 * after each batch as COPY keeps them.
 *
 * The table is written directly, so only as the INSERT would have written
 * it with nothing else run: in a transaction that may write, with the
 * caller's INSERT right, not under row security, without triggers, rules
 * or CHECK constraints, not a partition, with exactly the seven columns of
 * caredata.link_pair (none generated or an identity, no default for step,
 * which is left NULL; NOT NULL checked on every row).
 */
#include "postgres.h"

#include <math.h>

#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "score.h"
#include "temp_table.h"

#define WHO				"caredata._link_pairs_into()"
#define INSERT_BATCH	1000
#define NCOLS			7

/* caredata.link_pair's columns, in the order values are built */
static const char *const col_names[NCOLS] = {"run_id", "rid_l", "rid_r", "pattern", "weight", "probability", "step"};
static const Oid col_types[NCOLS] = {INT8OID, INT8OID, INT8OID, INT4OID, FLOAT8OID, FLOAT8OID, INT2OID};

/*
 * caredata.link_probability(w): 1 / (1 + power(2, CASE WHEN w > 1000 THEN
 * -1000 WHEN w < -1000 THEN 1000 ELSE -w END)), with float8's comparisons
 * (a NaN is greater than every number) and arithmetic
 */
static double
probability(double w)
{
	double		e = float8_gt(w, 1000.0) ? -1000.0 : float8_lt(w, -1000.0) ? 1000.0 : -w;

	return float8_div(1.0, float8_pl(1.0, pow(2.0, e)));
}

/* caredata.link_pair, locked for writing, as an INSERT would find it */
static Relation
open_pairs(AttrNumber *attnos)
{
	Oid			relid = get_relname_relid("link_pair", get_namespace_oid("caredata", false));
	Relation	rel;

	if (!OidIsValid(relid))
		elog(ERROR, "caredata.link_pair does not exist");
	/* every column given but step, left NULL */
	rel = link_open_direct_target(relid, WHO, NCOLS, NCOLS - 1, col_names, col_types, attnos);
	if (rel->rd_rel->relispartition)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s writes caredata.link_pair as an ordinary table only", WHO)));
	return rel;
}

PG_FUNCTION_INFO_V1(link_pairs_into);
Datum
link_pairs_into(PG_FUNCTION_ARGS)
{
	MemoryContext work;
	MemoryContext old;
	Relation	target;
	AttrNumber	attnos[NCOLS];
	Relation	cand;
	AttrNumber	att_l,
				att_r,
				att_pattern,
				att_tf;
	WeightTable *weights;
	int64		run_id;
	double		threshold;
	TableScanDesc scan;
	TupleTableSlot *slot;
	LinkWriter	writer;
	int64		written = 0;
	int64		scanned = 0;
	TupleDesc	desc;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s needs the candidate pairs and the run", WHO)));
	/* as the INSERT: a NULL weight or threshold lets no pair through */
	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
		PG_RETURN_INT64(0);
	work = AllocSetContextCreate(CurrentMemoryContext, "caredata links written", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	run_id = PG_GETARG_INT64(1);
	weights = link_weight_table(PG_GETARG_ARRAYTYPE_P(2), work);
	threshold = PG_GETARG_FLOAT8(3);

	target = open_pairs(attnos);
	desc = RelationGetDescr(target);
	cand = link_open_temp(PG_GETARG_OID(0), WHO);
	att_l = link_temp_column(cand, "rid_l", INT8OID);
	att_r = link_temp_column(cand, "rid_r", INT8OID);
	att_pattern = link_temp_column(cand, "pattern", INT4OID);
	att_tf = link_temp_column(cand, "tf_adj", FLOAT8OID);

	link_writer_begin_indexed(&writer, target, INSERT_BATCH);
	scan = table_beginscan(cand, GetActiveSnapshot(), 0, NULL);
	slot = table_slot_create(cand, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		null_p,
					null_tf;
		Datum		p = slot_getattr(slot, att_pattern, &null_p);
		Datum		tf = slot_getattr(slot, att_tf, &null_tf);
		double		w;
		TupleTableSlot *o;
		Datum	   *v;
		bool	   *isnull;

		if ((++scanned & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		/* link_weight() is strict: a NULL weight, which >= never passes */
		if (null_p || null_tf)
			continue;
		w = link_pattern_weight(weights, DatumGetInt32(p), DatumGetFloat8(tf));
		if (!float8_ge(w, threshold))
			continue;
		o = link_writer_next(&writer);
		v = o->tts_values;
		isnull = o->tts_isnull;
		for (int i = 0; i < desc->natts; i++)
			isnull[i] = true;
		v[attnos[0] - 1] = Int64GetDatum(run_id);
		isnull[attnos[0] - 1] = false;
		v[attnos[1] - 1] = slot_getattr(slot, att_l, &isnull[attnos[1] - 1]);
		v[attnos[2] - 1] = slot_getattr(slot, att_r, &isnull[attnos[2] - 1]);
		v[attnos[3] - 1] = p;
		isnull[attnos[3] - 1] = false;
		v[attnos[4] - 1] = Float8GetDatum(w);
		isnull[attnos[4] - 1] = false;
		v[attnos[5] - 1] = Float8GetDatum(probability(w));
		isnull[attnos[5] - 1] = false;
		link_check_not_null(target, o);
		ExecStoreVirtualTuple(o);
		/* values read from the scan's page, which it will leave (32-bit builds) */
		ExecMaterializeSlot(o);
		written++;
		link_writer_done(&writer);
	}
	ExecDropSingleTupleTableSlot(slot);
	table_endscan(scan);
	link_writer_end(&writer);
	relation_close(cand, AccessShareLock);
	table_close(target, NoLock);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	PG_RETURN_INT64(written);
}
