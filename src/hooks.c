/*-------------------------------------------------------------------------
 *
 * hooks.c
 *		Every hook caredata installs, in one place, each dispatching to the
 *		pillar that does the work.
 *
 *	ExecutorStart, after the plan is initialised: bind each objection
 *		filter call to the protected column it filters (without which it
 *		answers only superusers and caredata_admin), start the scan's
 *		read-ahead, and hand the call's blocked set to parallel workers
 *		(objection/plan.c); and, EXPLAIN included, refuse a plan that
 *		reads a protected table whose filter is not in force
 *		(objection/protection.c).
 *	ExecutorFinish, before EXPLAIN ANALYZE prints: clear the counts that
 *		would tell about rows the filter hid (objection/explain_guard.c).
 *	ProcessUtility, before COPY ... TO, which reads a table without the
 *		executor: the same refusal (objection/protection.c).
 *	shmem_request and shmem_startup, when preloaded: the registry of
 *		blocked sets every backend shares (objection/set_shared.c).
 *
 * src/hooks.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/executor.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "tcop/utility.h"

#include "hooks.h"
#include "objection/objection.h"

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

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

static void
caredata_ProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						ProcessUtilityContext context, ParamListInfo params,
						QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	protection_check_utility(pstmt);
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

static void
caredata_shmem_request(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	shared_set_shmem_request();
}

static void
caredata_shmem_startup(void)
{
	if (prev_shmem_startup)
		prev_shmem_startup();
	shared_set_shmem_startup();
}

void
hooks_init(void)
{
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = caredata_ExecutorStart;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = caredata_ExecutorFinish;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = caredata_ProcessUtility;
	/* shared memory exists only for a library loaded at server start */
	if (process_shared_preload_libraries_in_progress)
	{
		prev_shmem_request = shmem_request_hook;
		shmem_request_hook = caredata_shmem_request;
		prev_shmem_startup = shmem_startup_hook;
		shmem_startup_hook = caredata_shmem_startup;
	}
}
