/*-------------------------------------------------------------------------
 *
 * executor_hooks.c
 *		caredata's executor hooks, in one place.
 *
 * Two, both for the objection filter, both about plans whose quals call
 * caredata.permitted() or caredata.row_permitted():
 *
 *	ExecutorStart, after the plan is initialised: bind each filter call to
 *		the protected column it filters (without which it answers only
 *		superusers and caredata_admin), start the scan's read-ahead, and
 *		hand the call's blocked set to parallel workers
 *		(src/filter_plan.c).
 *	... and, EXPLAIN included, refuse a plan that reads a protected table
 *		whose filter is not in force (src/protection.c).
 *	ExecutorFinish, before EXPLAIN ANALYZE prints: clear the counts that
 *		would tell about rows the filter hid (src/explain_guard.c).
 *
 * src/executor_hooks.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/executor.h"

#include "executor_hooks.h"
#include "explain_guard.h"
#include "filter_plan.h"
#include "protection.h"

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;

static void
caredata_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 && queryDesc->planstate != NULL)
		filter_plan_prepare(queryDesc);
	/* EXPLAIN too: its estimates come from the statistics it guards */
	protection_check_plan(queryDesc->plannedstmt);
}

static void
caredata_ExecutorFinish(QueryDesc *queryDesc)
{
	if (prev_ExecutorFinish)
		prev_ExecutorFinish(queryDesc);
	else
		standard_ExecutorFinish(queryDesc);

	explain_guard_hide(queryDesc);
}

void
executor_hooks_init(void)
{
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = caredata_ExecutorStart;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = caredata_ExecutorFinish;
}
