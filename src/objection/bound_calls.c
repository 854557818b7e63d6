/*-------------------------------------------------------------------------
 *
 * bound_calls.c
 *		The filter calls running plans have bound, by their plan nodes.
 *
 * A concurrent UPDATE, DELETE or SELECT ... FOR UPDATE/SHARE at READ
 * COMMITTED rechecks the newest version of a row it waited for
 * (EvalPlanQual): the executor initialises the plan's scans a second time,
 * in an executor state of its own, with no hook to bind them.  So the
 * plan nodes of the calls plan.c binds (their FuncExpr) are kept here while
 * the query runs, in its executor memory, and unlinked when that memory
 * goes (the query's end, or its abort).  A call from one of them is the
 * same call site, in the same scan of the same relation, and permitted.c
 * binds it when it first runs.  No other call is: a node of another plan,
 * or one no query bound, is not in the list.
 *
 * src/objection/bound_calls.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/ilist.h"
#include "nodes/pg_list.h"
#include "utils/memutils.h"

#include "bound_calls.h"

/* the filter calls bound in one running plan */
typedef struct BoundPlan
{
	dlist_node	node;
	List	   *calls;			/* FuncExpr nodes of the plan, bound */
	MemoryContext cxt;			/* the query's executor memory */
	MemoryContextCallback forget;
} BoundPlan;

static dlist_head bound_plans = DLIST_STATIC_INIT(bound_plans);

static void
forget_bound_plan(void *arg)
{
	dlist_delete(&((BoundPlan *) arg)->node);
}

void
bound_calls_remember(EState *estate, Node *call)
{
	BoundPlan  *bp = NULL;
	dlist_iter	iter;
	MemoryContext old;

	dlist_foreach(iter, &bound_plans)
	{
		BoundPlan  *b = dlist_container(BoundPlan, node, iter.cur);

		if (b->cxt == estate->es_query_cxt)
		{
			bp = b;
			break;
		}
	}
	if (bp == NULL)
	{
		bp = MemoryContextAllocZero(estate->es_query_cxt, sizeof(BoundPlan));
		bp->cxt = estate->es_query_cxt;
		bp->forget.func = forget_bound_plan;
		bp->forget.arg = bp;
		MemoryContextRegisterResetCallback(estate->es_query_cxt, &bp->forget);
		dlist_push_head(&bound_plans, &bp->node);
	}
	old = MemoryContextSwitchTo(bp->cxt);
	bp->calls = list_append_unique_ptr(bp->calls, call);
	MemoryContextSwitchTo(old);
}

bool
bound_calls_contains(const Node *call)
{
	dlist_iter	iter;

	if (call == NULL)
		return false;
	dlist_foreach(iter, &bound_plans)
	{
		BoundPlan  *bp = dlist_container(BoundPlan, node, iter.cur);

		if (list_member_ptr(bp->calls, call))
			return true;
	}
	return false;
}
