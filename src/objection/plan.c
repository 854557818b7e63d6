/*-------------------------------------------------------------------------
 *
 * plan.c
 *		The objection filter's calls in a plan, found and prepared once the
 *		plan is initialised (called from src/hooks.c).
 *
 * For every call of permitted() or row_permitted() in a plan node's quals:
 *
 *	- bind it to the column it filters, when its first argument is a column
 *	  of the scanned table (permitted.c answers only for protected
 *	  columns, and only superusers and caredata_admin otherwise), and
 *	  remember its plan node (bound_calls.c) for EvalPlanQual's rechecks;
 *	- in a sequential scan, start the scan's read-ahead (scan_lookahead.c),
 *	  and, when the call is bound and the scan's whole qual, answer it
 *	  without the interpreter or a function call (qual_eval.c);
 *	- in a parallel plan's leader, make sure the call's blocked set is in
 *	  shared memory, where the workers find it (through permitted.c).
 *
 * The row-security checks of an UPDATE's or INSERT's new rows are bound
 * too.  And a plan reading a relation whose caredata filter is weakened
 * (made permissive, as Citus does on shards, or widened by another
 * policy) is refused.  Subplans the plan tree walk does not reach (a
 * CTE's, say) are bound only.
 *
 * Calls go one way: hooks.c calls here; this file calls permitted.c (the
 * entry points), qual_eval.c, scan_lookahead.c and bound_calls.c, never
 * back.
 *
 * src/objection/plan.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "catalog/pg_class.h"
#include "executor/execExpr.h"
#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "rewrite/rowsecurity.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "bound_calls.h"
#include "permitted.h"
#include "objection.h"
#include "qual_eval.h"
#include "scan_lookahead.h"

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
 * tell permitted.c which column; it answers only for protected ones.
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
	bool		bind_only;		/* a subplan the tree walk does not reach */
	EState	   *estate;			/* the query's */
} PrepareContext;

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
		bool		bound;

		if (!is_permitted_step(qual, op))
			continue;
		bound = bind_to_scan(ps, op);
		if (bound)
			bound_calls_remember(pc->estate, op->d.func.finfo->fn_expr);
		if (pc->bind_only)
			continue;
		if (IsA(ps, SeqScanState))
		{
			ScanLookahead *la = permitted_lookahead(op->d.func.finfo);

			scan_lookahead_attach((ScanState *) ps, op->d.func.finfo, la);
			if (bound)
				qual_eval_attach((ScanState *) ps, qual, op, la);
		}
		if (pc->parallel && !IsParallelWorker())
			permitted_prepare_parallel(op->d.func.finfo);
	}
	if (IsA(ps, ModifyTableState))
		bind_modify_table((ModifyTableState *) ps);
	return planstate_tree_walker(ps, prepare_walker, context);
}

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

/*
 * After ExecutorStart (src/hooks.c): for every filter call in the plan,
 * bind it to the column it filters, start its scan's read-ahead, and hand
 * its set to parallel workers.
 */
void
filter_plan_prepare(QueryDesc *queryDesc)
{
	PrepareContext pc;
	ListCell   *lc;

	refuse_weakened_filter(queryDesc);
	pc.parallel = queryDesc->plannedstmt->parallelModeNeeded;
	pc.bind_only = false;
	pc.estate = queryDesc->estate;
	prepare_walker(queryDesc->planstate, &pc);
	/* subplans the tree walk does not reach (a CTE's, say): bind only */
	pc.bind_only = true;
	foreach(lc, queryDesc->estate->es_subplanstates)
		prepare_walker((PlanState *) lfirst(lc), &pc);
}

