/*-------------------------------------------------------------------------
 *
 * filter_plan.c
 *		The objection filter's calls in a plan, found and prepared once the
 *		plan is initialised (called from src/executor_hooks.c).
 *
 * For every call of permitted() or row_permitted() in a plan node's quals:
 *
 *	- bind it to the column it filters, when its first argument is a column
 *	  of the scanned table (src/objection.c answers only for protected
 *	  columns, and only superusers and caredata_admin otherwise);
 *	- in a sequential scan, start the scan's read-ahead
 *	  (src/scan_lookahead.c);
 *	- in a parallel plan's leader, hand the call's blocked set to the
 *	  workers (src/parallel_set.c, through src/objection.c).
 *
 * The row-security checks of an UPDATE's or INSERT's new rows are bound
 * too.  And a plan reading a relation whose caredata filter is weakened
 * (made permissive, as Citus does on shards, or widened by another
 * policy) is refused.  Subplans the plan tree walk does not reach (a
 * CTE's, say) are bound only.
 *
 * A concurrent UPDATE, DELETE or SELECT ... FOR UPDATE/SHARE at READ
 * COMMITTED rechecks the newest version of a row it waited for
 * (EvalPlanQual): the executor initialises the plan's scans a second time,
 * in an executor state of its own, with no hook to bind them.  So the
 * plan nodes of the calls bound here (their FuncExpr) are kept while the
 * query runs (until its executor memory goes), and a call from one of them
 * is the same call site, in the same scan of the same relation, and is
 * bound when it first runs (filter_plan_bound_call(), from objection.c).
 * No other call is: a node of another plan, or one this query did not
 * bind, is not in the list.
 *
 * src/filter_plan.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "catalog/pg_class.h"
#include "executor/execExpr.h"
#include "executor/executor.h"
#include "lib/ilist.h"
#include "nodes/nodeFuncs.h"
#include "rewrite/rowsecurity.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "filter_plan.h"
#include "objection.h"
#include "scan_lookahead.h"

/*
 * The filter calls bound in one running plan, by their plan nodes, kept in
 * its executor memory and unlinked when that memory goes (the query's end,
 * or its abort).
 */
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

/* note that a call of this query's plan is bound */
static void
remember_bound_call(EState *estate, BoundPlan **bp, Node *call)
{
	MemoryContext old;

	if (*bp == NULL)
	{
		*bp = MemoryContextAllocZero(estate->es_query_cxt, sizeof(BoundPlan));
		(*bp)->cxt = estate->es_query_cxt;
		(*bp)->forget.func = forget_bound_plan;
		(*bp)->forget.arg = *bp;
		MemoryContextRegisterResetCallback(estate->es_query_cxt, &(*bp)->forget);
		dlist_push_head(&bound_plans, &(*bp)->node);
	}
	old = MemoryContextSwitchTo((*bp)->cxt);
	(*bp)->calls = list_append_unique_ptr((*bp)->calls, call);
	MemoryContextSwitchTo(old);
}

/*
 * Is call (an FmgrInfo's fn_expr) the plan node of a filter call a running
 * plan has bound?  For EvalPlanQual's second copy of a plan's scans.
 */
bool
filter_plan_bound_call(const Node *call)
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

/* is op a call of permitted() or row_permitted()? */
static bool
is_permitted_step(ExprState *state, ExprEvalStep *op)
{
	ExprEvalOp	opcode = ExecEvalStepOp(state, op);

	return (opcode == EEOP_FUNCEXPR || opcode == EEOP_FUNCEXPR_STRICT ||
			opcode == EEOP_FUNCEXPR_FUSAGE || opcode == EEOP_FUNCEXPR_STRICT_FUSAGE) &&
		objection_filter_fmgr(op->d.func.finfo);
}

/*
 * A permitted() step in a scan's quals whose first argument is a column of
 * the scanned table (a Var of the scan, or of an index-only scan's index):
 * tell objection.c which column, which answers only for protected ones.
 * True when the call is bound.
 */
static bool
bind_to_scan(PlanState *ps, ExprEvalStep *op)
{
	FuncExpr   *fexpr = (FuncExpr *) op->d.func.finfo->fn_expr;
	Relation	rel;
	Var		   *var;
	AttrNumber	attno;

	if (!IsA(ps->plan, SeqScan) && !IsA(ps->plan, IndexScan) && !IsA(ps->plan, IndexOnlyScan) &&
		!IsA(ps->plan, BitmapHeapScan) && !IsA(ps->plan, TidScan) && !IsA(ps->plan, TidRangeScan) &&
		!IsA(ps->plan, SampleScan))
		return false;
	rel = ((ScanState *) ps)->ss_currentRelation;
	if (rel == NULL || fexpr == NULL || !IsA(fexpr, FuncExpr) || fexpr->args == NIL ||
		!IsA(linitial(fexpr->args), Var))
		return false;
	var = (Var *) linitial(fexpr->args);
	if (var->varlevelsup != 0)
		return false;
	if (IsA(ps->plan, IndexOnlyScan))
	{
		/* the quals read the index tuple: map its column to the table's */
		Relation	index = ((IndexOnlyScanState *) ps)->ioss_RelationDesc;

		if (var->varno != INDEX_VAR || index == NULL || var->varattno <= 0 ||
			var->varattno > index->rd_index->indnatts)
			return false;
		attno = index->rd_index->indkey.values[var->varattno - 1];
	}
	else
	{
		if ((Index) var->varno != ((Scan *) ps->plan)->scanrelid)
			return false;
		attno = var->varattno;
	}
	return permitted_bind_column(op->d.func.finfo, RelationGetRelid(rel), attno);
}

/*
 * A permitted() step in an UPDATE's or INSERT's row-security check of its
 * new rows (WITH CHECK OPTIONs: the policies' USING applied to the row
 * written, when RETURNING must be able to see it): the first argument is a
 * column of the result table.
 */
static void
bind_to_result(ResultRelInfo *rri, ExprState *check)
{
	for (int i = 0; check != NULL && i < check->steps_len; i++)
	{
		ExprEvalStep *op = &check->steps[i];
		FuncExpr   *fexpr;
		Var		   *var;

		if (!is_permitted_step(check, op))
			continue;
		fexpr = (FuncExpr *) op->d.func.finfo->fn_expr;
		if (fexpr == NULL || !IsA(fexpr, FuncExpr) || fexpr->args == NIL || !IsA(linitial(fexpr->args), Var))
			continue;
		var = (Var *) linitial(fexpr->args);
		if (var->varlevelsup == 0 && (Index) var->varno == rri->ri_RangeTableIndex)
			permitted_bind_column(op->d.func.finfo, RelationGetRelid(rri->ri_RelationDesc), var->varattno);
	}
}

static void
bind_modify_table(ModifyTableState *mt)
{
	for (int r = 0; r < mt->mt_nrels; r++)
	{
		ResultRelInfo *rri = &mt->resultRelInfo[r];
		ListCell   *lc;

		foreach(lc, rri->ri_WithCheckOptionExprs)
			bind_to_result(rri, (ExprState *) lfirst(lc));
	}
}

typedef struct PrepareContext
{
	bool		parallel;		/* the plan runs parallel workers */
	EState	   *estate;			/* the query's */
	BoundPlan  *bound;			/* its bound calls, once there is one */
} PrepareContext;

/* bind every permitted() step of a plan's scans, and nothing else */
static bool
bind_walker(PlanState *ps, void *context)
{
	PrepareContext *pc = (PrepareContext *) context;
	ExprState  *qual;

	if (ps == NULL)
		return false;
	qual = ps->qual;
	for (int i = 0; qual != NULL && i < qual->steps_len; i++)
	{
		if (is_permitted_step(qual, &qual->steps[i]) && bind_to_scan(ps, &qual->steps[i]))
			remember_bound_call(pc->estate, &pc->bound, qual->steps[i].d.func.finfo->fn_expr);
	}
	if (IsA(ps, ModifyTableState))
		bind_modify_table((ModifyTableState *) ps);
	return planstate_tree_walker(ps, bind_walker, context);
}

/* every permitted() call in a plan node's quals */
static bool
prepare_walker(PlanState *ps, void *context)
{
	PrepareContext *pc = (PrepareContext *) context;
	ExprState  *qual;

	if (ps == NULL)
		return false;
	qual = ps->qual;
	for (int i = 0; qual != NULL && i < qual->steps_len; i++)
	{
		ExprEvalStep *op = &qual->steps[i];

		if (!is_permitted_step(qual, op))
			continue;
		if (bind_to_scan(ps, op))
			remember_bound_call(pc->estate, &pc->bound, op->d.func.finfo->fn_expr);
		if (IsA(ps, SeqScanState))
			scan_lookahead_attach((ScanState *) ps, op->d.func.finfo);
		if (pc->parallel && !IsParallelWorker())
			permitted_prepare_parallel(op->d.func.finfo);
	}
	if (IsA(ps, ModifyTableState))
		bind_modify_table((ModifyTableState *) ps);
	return planstate_tree_walker(ps, prepare_walker, context);
}

/*
 * After ExecutorStart (src/executor_hooks.c): for every filter call in the
 * plan, bind it to the column it filters, start its scan's read-ahead, and
 * hand its set to parallel workers.
 */
/*
 * Is caredata's filter on relid weakened?  From the relation cache: no
 * catalog read.  Two ways:
 *	- protect() on one node creates caredata_objection and caredata_subject
 *	  AS RESTRICTIVE; made permissive they are ORed with the table's other
 *	  policies and filter nothing.  Citus does exactly this when it copies a
 *	  table's policies to its shards and the workers' shell tables, so a
 *	  table distributed after protect() has them (docs/scale-out.md).
 *	- protect() on a Citus table creates one permissive policy,
 *	  caredata_filter, the only one it allows: any other policy beside it
 *	  is ORed with it (and Citus makes even a restrictive one permissive on
 *	  the shards).
 */
typedef enum FilterState
{
	FILTER_INTACT,
	FILTER_MADE_PERMISSIVE,
	FILTER_WIDENED
} FilterState;

static FilterState
filter_state(Oid relid)
{
	Relation	rel = RelationIdGetRelation(relid);
	FilterState state = FILTER_INTACT;
	bool		has_filter = false;
	int			npolicies = 0;
	ListCell   *lc;

	if (rel == NULL)
		return FILTER_INTACT;
	if (rel->rd_rsdesc != NULL)
		foreach(lc, rel->rd_rsdesc->policies)
		{
			RowSecurityPolicy *p = (RowSecurityPolicy *) lfirst(lc);

			npolicies++;
			if (strcmp(p->policy_name, "caredata_filter") == 0 && p->permissive)
				has_filter = true;
			if (p->permissive &&
				(strcmp(p->policy_name, "caredata_objection") == 0 ||
				 strcmp(p->policy_name, "caredata_subject") == 0))
				state = FILTER_MADE_PERMISSIVE;
		}
	RelationClose(rel);
	if (state == FILTER_INTACT && has_filter && npolicies > 1)
		state = FILTER_WIDENED;
	return state;
}

/*
 * Refuse a plan that reads, for a role row security applies to, a relation
 * whose caredata filter is weakened: refused on whichever node reads it,
 * so through the coordinator, through a worker and on a shard directly
 * alike.
 */
static void
refuse_weakened_filter(QueryDesc *queryDesc)
{
	ListCell   *lc;

	foreach(lc, queryDesc->plannedstmt->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);
		FilterState state;

		/* the relation cache first: most relations have no such policy */
		if (rte->rtekind != RTE_RELATION ||
			(rte->relkind != RELKIND_RELATION && rte->relkind != RELKIND_PARTITIONED_TABLE) ||
			(state = filter_state(rte->relid)) == FILTER_INTACT ||
			check_enable_rls(rte->relid, InvalidOid, true) != RLS_ENABLED)
			continue;
		if (state == FILTER_MADE_PERMISSIVE)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the objection filter on %s has been made permissive", get_rel_name(rte->relid)),
					 errdetail("caredata's filter policies are restrictive; Citus re-creates them as permissive on shards, where they would filter nothing."),
					 errhint("See docs/scale-out.md: unprotect the table, distribute it, then protect it again (on the coordinator).")));
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the objection filter on %s is widened by another row security policy", get_rel_name(rte->relid)),
				 errdetail("On a Citus table caredata's filter is the table's only policy: any other is ORed with it on the shards."),
				 errhint("Drop the other policies on the table, on the coordinator (docs/scale-out.md).")));
	}
}

void
filter_plan_prepare(QueryDesc *queryDesc)
{
	PrepareContext pc;
	ListCell   *lc;

	refuse_weakened_filter(queryDesc);
	pc.parallel = queryDesc->plannedstmt->parallelModeNeeded;
	pc.estate = queryDesc->estate;
	pc.bound = NULL;
	prepare_walker(queryDesc->planstate, &pc);
	/* subplans the tree walk does not reach (a CTE's, say): bind only */
	foreach(lc, queryDesc->estate->es_subplanstates)
		bind_walker((PlanState *) lfirst(lc), &pc);
}

