/*
 * src/linkage/temp_table.c
 *
 * Opening one of the session's own temporary tables for C code that scans
 * it or writes it directly, bypassing the executor (frequency.c, persons.c
 * and cluster_table.c read, block.c and cluster_table.c write; the last
 * also reads a project's partitions of the linkage tables): an ordinary
 * table (of this session only, but for those partitions),
 * read with the caller's SELECT right on each column read, written with
 * the INSERT right, never one under row security (a direct scan or write
 * would not apply it), and written only when nothing else would have run on
 * an INSERT: no trigger, index, rule, constraint or default.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/tableam.h"
#include "catalog/pg_class.h"
#include "access/table.h"
#include "executor/executor.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rls.h"

#include "temp_table.h"

/*
 * The table, opened with lock: an ordinary table (a temporary table of this
 * session when temp_only), not under row security for the caller (verb:
 * "read" or "write")
 */
static Relation
open_checked(Oid relid, LOCKMODE lock, const char *who, const char *verb, bool temp_only)
{
	Relation	rel = relation_open(relid, lock);

	if (rel->rd_rel->relkind != RELKIND_RELATION || (temp_only && !rel->rd_islocaltemp))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg(temp_only ? "%s %ss a temporary table of this session only" : "%s %ss an ordinary table only", who, verb),
				 errhint("It serves the working tables of caredata.link_run() and caredata.link_standardise().")));
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s does not %s a table with row security", who, verb)));
	return rel;
}

/* the table, locked for reading; close it with relation_close() */
Relation
link_open_temp(Oid relid, const char *reader)
{
	return open_checked(relid, AccessShareLock, reader, "read", true);
}

/*
 * Any ordinary table (a partition of the linkage tables), locked for
 * reading, not under row security; close it with relation_close()
 */
Relation
link_open_table(Oid relid, const char *reader)
{
	return open_checked(relid, AccessShareLock, reader, "read", false);
}

/*
 * The attribute number of a column the caller may read; of the type given
 * unless that is InvalidOid
 */
AttrNumber
link_temp_column(Relation rel, const char *colname, Oid type)
{
	Oid			relid = RelationGetRelid(rel);
	AttrNumber	attno = get_attnum(relid, colname);
	Form_pg_attribute att;

	if (attno == InvalidAttrNumber || attno < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of the table read does not exist", colname)));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck(relid, attno, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read column \"%s\"", colname)));
	att = TupleDescAttr(RelationGetDescr(rel), attno - 1);
	if (OidIsValid(type) && att->atttypid != type)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" is of type %s, not %s", colname,
						format_type_be(att->atttypid), format_type_be(type))));
	return attno;
}

/* the table, locked for writing; close it with relation_close(rel, NoLock) */
Relation
link_open_temp_target(Oid relid, const char *writer)
{
	Relation	rel = open_checked(relid, RowExclusiveLock, writer, "write", true);

	if (pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to insert into table %s", RelationGetRelationName(rel))));
	if (rel->rd_rel->relhastriggers || rel->rd_rel->relhasindex || rel->rd_rel->relhasrules ||
		rel->rd_att->constr != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s writes a table without triggers, indexes, rules, constraints or defaults", writer)));
	return rel;
}

/*
 * A table an INSERT could write with nothing else run, for the caller
 * (who): the INSERT right, no row security, no trigger or rule
 */
void
link_check_insertable(Relation rel, const char *who)
{
	if (pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_INSERT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to insert into table %s", RelationGetRelationName(rel))));
	if (check_enable_rls(RelationGetRelid(rel), InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s does not write a table with row security", who)));
	if (rel->trigdesc != NULL || rel->rd_rel->relhasrules)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s writes a table without triggers or rules", who)));
}

/*
 * A permanent table of linkage written directly (person_index.c,
 * pair_rows.c), locked for writing: in a transaction that may write, an
 * ordinary table the caller may insert into (link_check_insertable),
 * without CHECK constraints, whose columns are exactly the ncols named,
 * of the types given, none generated or an identity; the first nsupplied
 * are always given a value, the others are left NULL, so must have no
 * default an INSERT would give them.  attnos receives their numbers.
 * NOT NULL is checked on each row (link_check_not_null).
 */
Relation
link_open_direct_target(Oid relid, const char *who, int ncols, int nsupplied,
						const char *const *names, const Oid *types, AttrNumber *attnos)
{
	Relation	rel;
	TupleDesc	desc;
	int			live = 0;
	StringInfoData cols;

	PreventCommandIfReadOnly(who);
	rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	if (rel->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s writes an ordinary table only", who)));
	link_check_insertable(rel, who);
	if (desc->constr != NULL && desc->constr->num_check > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s writes a table without CHECK constraints", who)));
	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			live++;
	for (int c = 0; c < ncols; c++)
	{
		Form_pg_attribute att;

		attnos[c] = get_attnum(relid, names[c]);
		if (attnos[c] <= 0)
			break;
		att = TupleDescAttr(desc, attnos[c] - 1);
		if (att->atttypid != types[c] || att->attgenerated || att->attidentity ||
			(c >= nsupplied && att->atthasdef))
			break;
		if (c == ncols - 1 && live == ncols)
			return rel;
	}
	initStringInfo(&cols);
	for (int c = 0; c < ncols; c++)
		appendStringInfo(&cols, "%s%s %s", c > 0 ? ", " : "", names[c], format_type_be(types[c]));
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("%s writes a table of columns (%s), none generated or an identity%s", who, cols.data,
					nsupplied < ncols ? ", those it leaves NULL without a default" : "")));
	return NULL;				/* keep the compiler quiet */
}

/* a row for a table opened by link_open_direct_target: its NOT NULLs hold */
void
link_check_not_null(Relation rel, TupleTableSlot *slot)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
		if (slot->tts_isnull[i] && TupleDescAttr(desc, i)->attnotnull)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("null value in column \"%s\" of relation \"%s\" violates not-null constraint",
							NameStr(TupleDescAttr(desc, i)->attname), RelationGetRelationName(rel))));
}

/* a writer of batches of rows into rel (opened and checked by the caller) */
void
link_writer_begin(LinkWriter *w, Relation rel, int batch)
{
	w->rel = rel;
	w->cap = batch;
	w->n = 0;
	w->slots = palloc(batch * sizeof(TupleTableSlot *));
	for (int k = 0; k < batch; k++)
		w->slots[k] = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsVirtual);
	w->cid = GetCurrentCommandId(true);
	w->bistate = GetBulkInsertState();
	w->batch = AllocSetContextCreate(CurrentMemoryContext, "caredata rows written", ALLOCSET_DEFAULT_SIZES);
	w->estate = NULL;
	w->rri = NULL;
}

/*
 * The same for a table whose indexes are kept: each batch's index entries
 * are made as COPY makes them, after its rows (ExecInsertIndexTuples: a
 * unique index or an exclusion constraint is checked there)
 */
void
link_writer_begin_indexed(LinkWriter *w, Relation rel, int batch)
{
	link_writer_begin(w, rel, batch);
	w->estate = CreateExecutorState();
	w->estate->es_output_cid = w->cid;
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, rel, 1, NULL, 0);
	ExecOpenIndices(w->rri, false);
	if (w->rri->ri_NumIndices == 0)
	{
		ExecCloseIndices(w->rri);
		FreeExecutorState(w->estate);
		w->estate = NULL;
		w->rri = NULL;
	}
}

/* the next slot to fill, cleared */
TupleTableSlot *
link_writer_next(LinkWriter *w)
{
	TupleTableSlot *slot = w->slots[w->n];

	ExecClearTuple(slot);
	return slot;
}

static void
writer_flush(LinkWriter *w)
{
	MemoryContext old;

	if (w->n == 0)
		return;
	old = MemoryContextSwitchTo(w->batch);
	table_multi_insert(w->rel, w->slots, w->n, w->cid, 0, w->bistate);
	if (w->rri != NULL)
		for (int k = 0; k < w->n; k++)
		{
			List	   *recheck;

#if PG_VERSION_NUM >= 160000
			recheck = ExecInsertIndexTuples(w->rri, w->slots[k], w->estate, false, false, NULL, NIL, false);
#else
			recheck = ExecInsertIndexTuples(w->rri, w->slots[k], w->estate, false, false, NULL, NIL);
#endif
			/* no deferred unique or exclusion constraint is rechecked here */
			if (recheck != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("rows written directly cannot be checked against a deferred constraint")));
			ResetPerTupleExprContext(w->estate);
		}
	MemoryContextSwitchTo(old);
	MemoryContextReset(w->batch);
	w->n = 0;
	CHECK_FOR_INTERRUPTS();
}

/* the slot from link_writer_next() filled and stored: written with its batch */
void
link_writer_done(LinkWriter *w)
{
	if (++w->n == w->cap)
		writer_flush(w);
}

/* the last rows written, and the writer freed */
void
link_writer_end(LinkWriter *w)
{
	writer_flush(w);
	FreeBulkInsertState(w->bistate);
	table_finish_bulk_insert(w->rel, 0);
	for (int k = 0; k < w->cap; k++)
		ExecDropSingleTupleTableSlot(w->slots[k]);
	pfree(w->slots);
	MemoryContextDelete(w->batch);
	if (w->rri != NULL)
	{
		ExecCloseIndices(w->rri);
		FreeExecutorState(w->estate);
	}
}
