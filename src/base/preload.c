/*-------------------------------------------------------------------------
 *
 * preload.c
 *		Whether caredata was loaded at server start, and the refusal of
 *		what needs it (base/preload.h says why).
 *
 * src/base/preload.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"

#include "preload.h"

bool		caredata_preloaded = false;

void
caredata_preload_error(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("caredata was not loaded at server start"),
			 errdetail("The objection filter, the objection register and the keyed functions need the hooks, shared memory and settings that only a library loaded at server start has in every connection."),
			 errhint("Add caredata to shared_preload_libraries in postgresql.conf and restart the server.")));
	pg_unreachable();
}

/* caredata.preloaded(): whether this server loaded caredata at start */
PG_FUNCTION_INFO_V1(caredata_is_preloaded);
Datum
caredata_is_preloaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(caredata_preloaded);
}

/* caredata.require_preload(): the refusal, for SQL entry points */
PG_FUNCTION_INFO_V1(caredata_require_preload_sql);
Datum
caredata_require_preload_sql(PG_FUNCTION_ARGS)
{
	caredata_require_preload();
	PG_RETURN_VOID();
}

/*
 * caredata._require_preload_trigger(): a statement trigger on the tables
 * whose rows mean nothing without the preloaded filter (the register,
 * protected_table), so that every way of writing them refuses at once.
 */
PG_FUNCTION_INFO_V1(caredata_require_preload_trigger);
Datum
caredata_require_preload_trigger(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("caredata._require_preload_trigger() must be called as a trigger")));
	caredata_require_preload();
	return PointerGetDatum(NULL);
}
