/*-------------------------------------------------------------------------
 *
 * caredata.c
 *		Module entry point: the magic block and _PG_init.
 *
 * Owns what is common to the whole library and nothing else: the magic
 * block, _PG_init, and whether the library was loaded at server start
 * (src/preload.h).  Each concern (identifiers, keys, pseudonyms,
 * objections, ...) lives in its own file under src/, with the SQL that
 * declares it beside it.
 *
 * src/caredata.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "audit.h"
#include "executor_hooks.h"
#include "keys.h"
#include "parallel_set.h"
#include "preload.h"
#include "protection.h"
#include "scan_lookahead.h"
#include "shared_set.h"
#include "reidentify.h"
#include "sdc/policy.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

bool		caredata_preloaded = false;

void
_PG_init(void)
{
	/* a backend forked by the postmaster inherits the postmaster's answer */
	caredata_preloaded = process_shared_preload_libraries_in_progress;
	/* settings are defined by the files that own them; reserve the prefix */
	keys_init();
	executor_hooks_init();
	protection_init();
	scan_lookahead_init();
	parallel_set_init();
	shared_set_init();
	sdc_policy_init();
	reidentify_init();
	audit_init();
	MarkGUCPrefixReserved("caredata");
}

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
