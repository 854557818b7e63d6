/*-------------------------------------------------------------------------
 *
 * explain_guard.c
 *		Keep EXPLAIN ANALYZE from counting the rows an objection filter hid.
 *
 * Called from the ExecutorFinish hook (src/hooks.c).  Row-level
 * security removes objectors' rows before
 * any user code sees them, but EXPLAIN ANALYZE would still print "Rows
 * Removed by Filter" for the scan that carries the filter: with a WHERE on
 * one NHS number, that count says whether that patient has a record and an
 * objection.  So would the rows an index scan below the filter found, the
 * heap pages a bitmap scan visited, and the buffers any node read.  After
 * the executor finishes, and before EXPLAIN prints, this clears, in a
 * plan where some node's quals call caredata.permitted() or
 * caredata.row_permitted(): that node's filtered-row counts, every count of
 * the nodes below it, bitmap heap pages, and every node's buffer and WAL
 * use.  Timings stay, as do the rows each node above the filter returned.
 * Nothing about the plan or its results changes.
 *
 * src/objection/explain_guard.c
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

#include "permitted.h"
#include "objection.h"


static bool
calls_permitted_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncExpr) && objection_filter_oid(((FuncExpr *) node)->funcid))
		return true;
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

/* does any node of the plan filter objections? */
static bool
plan_filters_objections(PlanState *ps, void *context)
{
	if (ps == NULL)
		return false;
	if (node_filters_objections(ps->plan))
		return true;
	return planstate_tree_walker(ps, plan_filters_objections, context);
}

/*
 * Clear what one node's instrumentation would tell about rows the filter
 * hid: buffer and WAL use always (they count pages read for hidden rows,
 * and a parent's figures include its children's); rows filtered out and
 * heap fetches (an index-only scan's "Heap Fetches", kept in ntuples2) on
 * a filtering node; and every row count below one.
 */
static void
clear_instrument(Instrumentation *instr, bool filtering, bool below)
{
	memset(&instr->bufusage, 0, sizeof(instr->bufusage));
	memset(&instr->walusage, 0, sizeof(instr->walusage));
	if (filtering || below)
	{
		instr->nfiltered1 = 0;
		instr->nfiltered2 = 0;
		/* an index-only scan's heap fetches: hidden rows' too */
		instr->ntuples2 = 0;
	}
	if (below)
	{
		instr->tuplecount = 0;
		instr->ntuples = 0;
		instr->ntuples2 = 0;
	}
}

static bool
hide_counts(PlanState *ps, void *context)
{
	bool		below = *(bool *) context;
	bool		filtering;

	if (ps == NULL)
		return false;
	filtering = node_filters_objections(ps->plan);
	if (ps->instrument != NULL)
		clear_instrument(ps->instrument, filtering, below);
	if (ps->worker_instrument != NULL)
	{
		for (int i = 0; i < ps->worker_instrument->num_workers; i++)
			clear_instrument(&ps->worker_instrument->instrument[i], filtering, below);
	}
	/* the heap pages a bitmap scan visited: pages of hidden rows too */
	if (IsA(ps, BitmapHeapScanState))
	{
		((BitmapHeapScanState *) ps)->exact_pages = 0;
		((BitmapHeapScanState *) ps)->lossy_pages = 0;
	}
	below = below || filtering;
	return planstate_tree_walker(ps, hide_counts, &below);
}

/*
 * After ExecutorFinish (src/hooks.c), before EXPLAIN prints: clear
 * what the instrumentation would tell about rows the filter hid.
 */
void
explain_guard_hide(QueryDesc *queryDesc)
{
	if (queryDesc->instrument_options != 0 && queryDesc->planstate != NULL &&
		plan_filters_objections(queryDesc->planstate, NULL))
	{
		bool		below = false;

		hide_counts(queryDesc->planstate, &below);
	}
}
