/*-------------------------------------------------------------------------
 *
 * explain_guard.c
 *		Keep EXPLAIN ANALYZE from counting the rows an objection filter hid.
 *
 * Owns one executor hook.  Row-level security removes objectors' rows before
 * any user code sees them, but EXPLAIN ANALYZE would still print "Rows
 * Removed by Filter" for the scan that carries the filter: with a WHERE on
 * one NHS number, that count says whether that patient has a record and an
 * objection.  After the executor finishes, and before EXPLAIN prints, this
 * hook zeroes the filtered-row counters of every plan node whose quals call
 * caredata.permitted() or caredata.row_permitted().  Nothing else about the
 * plan or its results changes.
 *
 * src/explain_guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "fmgr.h"
#include "nodes/execnodes.h"
#include "nodes/nodeFuncs.h"
#include "utils/lsyscache.h"

#include "explain_guard.h"

static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;

static bool
calls_permitted_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncExpr))
	{
		FuncExpr   *f = (FuncExpr *) node;
		char	   *name = get_func_name(f->funcid);

		if (name != NULL && (strcmp(name, "permitted") == 0 || strcmp(name, "row_permitted") == 0))
		{
			char	   *nsp = get_namespace_name(get_func_namespace(f->funcid));

			if (nsp != NULL && strcmp(nsp, "caredata") == 0)
				return true;
		}
	}
	return expression_tree_walker(node, calls_permitted_walker, context);
}

/* does this node filter rows with caredata.permitted() or row_permitted()? */
static bool
node_filters_objections(Plan *plan)
{
	if (calls_permitted_walker((Node *) plan->qual, NULL))
		return true;
	switch (nodeTag(plan))
	{
		case T_NestLoop:
		case T_MergeJoin:
		case T_HashJoin:
			return calls_permitted_walker((Node *) ((Join *) plan)->joinqual, NULL);
		default:
			return false;
	}
}

static bool
hide_filtered_counts(PlanState *ps, void *context)
{
	if (ps == NULL)
		return false;
	if (ps->instrument != NULL && node_filters_objections(ps->plan))
	{
		ps->instrument->nfiltered1 = 0;
		ps->instrument->nfiltered2 = 0;
		if (ps->worker_instrument != NULL)
		{
			for (int i = 0; i < ps->worker_instrument->num_workers; i++)
			{
				ps->worker_instrument->instrument[i].nfiltered1 = 0;
				ps->worker_instrument->instrument[i].nfiltered2 = 0;
			}
		}
	}
	return planstate_tree_walker(ps, hide_filtered_counts, context);
}

static void
explain_guard_ExecutorFinish(QueryDesc *queryDesc)
{
	if (prev_ExecutorFinish)
		prev_ExecutorFinish(queryDesc);
	else
		standard_ExecutorFinish(queryDesc);

	if (queryDesc->instrument_options != 0 && queryDesc->planstate != NULL)
		hide_filtered_counts(queryDesc->planstate, NULL);
}

void
explain_guard_init(void)
{
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = explain_guard_ExecutorFinish;
}
