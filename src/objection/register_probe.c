/*-------------------------------------------------------------------------
 *
 * register_probe.c
 *		permitted() for a time that changes row by row.
 *
 * A set answers for one interval of time, so a call whose time argument
 * holds a column (a row's own time) would rebuild the whole blocked set on
 * every row whose time falls outside the last one.  Instead each row asks
 * the register about its one number, through the index on
 * caredata.objection (nhs_number), and applies, at its own time, the rule
 * caredata.blocked_nhs_numbers() states in SQL; the call site reads the
 * exemptions for its dataset and purpose once per query (probe_setup).
 * The caller (src/objection/permitted.c) runs both as the register's owner.
 *
 * src/objection/register_probe.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "citus/citus.h"
#include "register_probe.h"
#include "base/pg_compat.h"

/* does the call's time argument hold a column (a time that changes row by row)? */
bool
probe_time_varies(FmgrInfo *flinfo)
{
	FuncExpr   *f = (FuncExpr *) flinfo->fn_expr;

	return f != NULL && IsA(f, FuncExpr) && list_length(f->args) >= 3 &&
		contain_vars_of_level((Node *) lthird(f->args), 0);
}

/*
 * Is a span in force at a time?  A span with no end (NULL: open) holds from
 * its start on; one that ends at 'infinity' ends like any other, so holds
 * at no time at or after it: not at 'infinity' itself, as the SQL has it
 * (withdrawn_at > at).  The two cannot share one value: 'infinity' is
 * stored as DT_NOEND.
 */
static bool
span_holds(TimestampTz from, bool open, TimestampTz to, TimestampTz at)
{
	return from <= at && (open || to > at);
}

/* set up a probe: the register's relations, and the exemptions (as the register's owner) */
void
probe_setup(Probe *pr, MemoryContext cxt)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	char		nulls[2] = {' ', pr->dataset ? ' ' : 'n'};
	Relation	idx;

	pr->owner = GetUserId();	/* probe_setup runs as the register's owner */
	/* on Citus, this node's placement of the register (src/citus/citus.c) */
	pr->heap = catalog_local_relid("objection", "objection");
	pr->index = catalog_local_relid("objection", "objection_nhs_number");
	if (!OidIsValid(pr->heap) || !OidIsValid(pr->index))
		elog(ERROR, "the objection register or its index is missing");
	idx = index_open(pr->index, AccessShareLock);
	pr->eq = get_opcode(get_opfamily_member(idx->rd_opfamily[0], idx->rd_opcintype[0], idx->rd_opcintype[0],
											BTEqualStrategyNumber));
	index_close(idx, AccessShareLock);
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		ScanKeyInit(&pr->key, 1, BTEqualStrategyNumber, pr->eq, (Datum) 0);
		MemoryContextSwitchTo(old);
	}
	pr->att_kind = get_attnum(pr->heap, "kind");
	pr->att_purposes = get_attnum(pr->heap, "purposes");
	pr->att_study = get_attnum(pr->heap, "study");
	pr->att_from = get_attnum(pr->heap, "effective_from");
	pr->att_to = get_attnum(pr->heap, "withdrawn_at");

	values[0] = CStringGetTextDatum(pr->purpose);
	values[1] = pr->dataset ? CStringGetTextDatum(pr->dataset) : (Datum) 0;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT e.objection_kind, e.granted_at, "
							  "CASE WHEN e.expires_at IS NULL THEN e.revoked_at WHEN e.revoked_at IS NULL THEN e.expires_at "
							  "ELSE LEAST(e.expires_at, e.revoked_at) END "
							  "FROM caredata.exemption e WHERE e.dataset OPERATOR(pg_catalog.=) $2 AND e.purpose OPERATOR(pg_catalog.=) $1",
							  2, argtypes, values, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the exemptions");
	pr->nexempt = (int) SPI_processed;
	pr->exempt = MemoryContextAllocZero(cxt, Max(1, pr->nexempt) * sizeof(Span));
	for (int i = 0; i < pr->nexempt; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		to;

		strlcpy(pr->exempt[i].kind, SPI_getvalue(tup, desc, 1), sizeof(pr->exempt[i].kind));
		pr->exempt[i].from = DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull));
		to = SPI_getbinval(tup, desc, 3, &isnull);
		pr->exempt[i].open = isnull;
		pr->exempt[i].to = isnull ? DT_NOEND : DatumGetTimestampTz(to);
	}
	SPI_finish();
}

static bool
text_is(Datum d, const char *s)
{
	text	   *t = DatumGetTextPP(d);
	size_t		len = VARSIZE_ANY_EXHDR(t);

	return len == strlen(s) && memcmp(VARDATA_ANY(t), s, len) == 0;
}

/* does the purposes array hold purpose? */
static bool
purposes_hold(Datum arr, const char *purpose)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		if (!nulls[i] && text_is(elems[i], purpose))
			return true;
	return false;
}

/* blocked at that time?  caredata.blocked_nhs_numbers(), for one number (as the register's owner) */
bool
probe_blocked(const Probe *pr, int64 key, TimestampTz at)
{
	Relation	heap = table_open(pr->heap, AccessShareLock);
	Relation	idx = index_open(pr->index, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	IndexScanDesc scan = index_beginscan(heap, idx, GetActiveSnapshot(), 1, 0);
	ScanKeyData sk = pr->key;
	bool		blocked = false;
	bool		consented = false;

	sk.sk_argument = Int64GetDatum(key);
	index_rescan(scan, &sk, 1, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		kind = slot_getattr(slot, pr->att_kind, &isnull);
		Datum		study = slot_getattr(slot, pr->att_study, &isnull);
		bool		study_null = isnull;
		TimestampTz from = DatumGetTimestampTz(slot_getattr(slot, pr->att_from, &isnull));
		Datum		to = slot_getattr(slot, pr->att_to, &isnull);
		bool		is_consent = text_is(kind, "consent");
		bool		is_dissent = text_is(kind, "dissent");

		if (!span_holds(from, isnull, isnull ? DT_NOEND : DatumGetTimestampTz(to), at) ||
			!purposes_hold(slot_getattr(slot, pr->att_purposes, &isnull), pr->purpose))
			continue;
		/* dissent and consent are about one study: the dataset asked about */
		if ((is_consent || is_dissent) && (pr->dataset == NULL || study_null || !text_is(study, pr->dataset)))
			continue;
		if (is_consent)
			consented = true;
		else if (!blocked)
		{
			char	   *k = TextDatumGetCString(kind);
			bool		exempt = false;

			for (int j = 0; j < pr->nexempt && !exempt; j++)
				exempt = strcmp(pr->exempt[j].kind, k) == 0 &&
					span_holds(pr->exempt[j].from, pr->exempt[j].open, pr->exempt[j].to, at);
			blocked = !exempt;
			pfree(k);
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(heap, AccessShareLock);
	/* a consent to this dataset and purpose lifts every objection */
	return blocked && !consented;
}

