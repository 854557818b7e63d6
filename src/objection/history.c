/*-------------------------------------------------------------------------
 *
 * history.c
 *		The keep_history trigger: an objection or an exemption changes only
 *		by being ended (withdrawn_at, revoked_at set once), nothing else.
 *
 * A BEFORE UPDATE row trigger on caredata.objection and caredata.exemption
 * (and, on Citus, on their placements).  The row passes when its end column
 * goes from NULL to a value and every other column is unchanged (compared
 * as stored); an exemption's revoked_by is then set to the current user.
 * Anything else is refused with the register's own error.  In C because a
 * snapshot feed withdraws tens of thousands of objections in one statement:
 * the PL/pgSQL version, which compared the rows as jsonb, cost 17 us a row.
 * Attributes are read with SPI_getbinval, not the inline heap_getattr:
 * since 15.20 that inline calls heap_datum_check(), which older minor
 * releases lack (test/release/deb_chroot.sh checks the symbols).
 *
 * src/objection/history.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/rel.h"

/* the columns the trigger reads, by relation (fn_extra) */
typedef struct HistoryColumns
{
	Oid			relid;
	int			end_col;		/* withdrawn_at or revoked_at */
	int			by_col;			/* revoked_by, or 0 */
	bool		is_objection;
} HistoryColumns;

static void
history_refuse(bool is_objection)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("caredata.%s keeps its history", is_objection ? "objection" : "exemption"),
			 errdetail(is_objection ? "An objection can only be withdrawn, once; nothing else about it changes."
					   : "An exemption can only be revoked, once; nothing else about it changes."),
			 errhint("Use caredata.withdraw_objection() or caredata.revoke_exemption(); record a new row for anything else.")));
}

PG_FUNCTION_INFO_V1(keep_history);
Datum
keep_history(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	oldtup;
	HeapTuple	newtup;
	int			end_col;
	int			by_col;
	bool		is_objection;
	bool		isnull;
	HistoryColumns *cols;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		elog(ERROR, "keep_history: not called as a BEFORE UPDATE row trigger");
	desc = RelationGetDescr(td->tg_relation);
	oldtup = td->tg_trigtuple;
	newtup = td->tg_newtuple;

	/*
	 * which table: the one with withdrawn_at (objection) or revoked_at
	 * (exemption); looked up by name once per statement and relation, not
	 * per row
	 */
	cols = (HistoryColumns *) fcinfo->flinfo->fn_extra;
	if (cols == NULL || cols->relid != RelationGetRelid(td->tg_relation))
	{
		if (cols == NULL)
			cols = fcinfo->flinfo->fn_extra = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(HistoryColumns));
		cols->relid = RelationGetRelid(td->tg_relation);
		cols->end_col = SPI_fnumber(desc, "withdrawn_at");
		cols->is_objection = cols->end_col > 0;
		if (!cols->is_objection)
			cols->end_col = SPI_fnumber(desc, "revoked_at");
		if (cols->end_col <= 0)
			elog(ERROR, "keep_history: table \"%s\" has no end column", RelationGetRelationName(td->tg_relation));
		cols->by_col = cols->is_objection ? 0 : SPI_fnumber(desc, "revoked_by");
	}
	end_col = cols->end_col;
	by_col = cols->by_col;
	is_objection = cols->is_objection;

	(void) SPI_getbinval(oldtup, desc, end_col, &isnull);
	if (!isnull)
		history_refuse(is_objection);
	(void) SPI_getbinval(newtup, desc, end_col, &isnull);
	if (isnull)
		history_refuse(is_objection);
	for (int i = 1; i <= desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i - 1);
		bool		oldnull;
		bool		newnull;
		Datum		o;
		Datum		n;

		if (i == end_col || att->attisdropped)
			continue;
		o = SPI_getbinval(oldtup, desc, i, &oldnull);
		n = SPI_getbinval(newtup, desc, i, &newnull);
		/* as stored, whatever the header or compression (datum_image_eq) */
		if (oldnull != newnull ||
			(!oldnull && !datum_image_eq(o, n, att->attbyval, att->attlen)))
			history_refuse(is_objection);
	}
	if (by_col > 0)
	{
		Datum		by = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
		bool		nulls[1] = {false};
		int			cols[1] = {by_col};

		newtup = heap_modify_tuple_by_cols(newtup, desc, 1, cols, &by, nulls);
	}
	return PointerGetDatum(newtup);
}
