/*-------------------------------------------------------------------------
 *
 * scan_lookahead.c
 *		Loading the objection filter's memory ahead of a sequential scan.
 *
 * Set up after ExecutorStart (src/executor_hooks.c), with the binding of
 * each filter call to its column and the hand-over of sets to parallel
 * workers (scan_lookahead_prepare).  permitted() tests each row
 * against an in-memory set of millions of blocked NHS numbers (nhs_set.h).
 * A test is a random access to a few megabytes that a table scan keeps
 * evicting from the CPU cache, so row after row the test waits for memory.
 * PostgreSQL evaluates a row at a time, but a sequential scan in page mode
 * already knows every visible tuple of the page it is on.  So when a
 * permitted() call in a scan's quals sees that the scan has moved to a new
 * page, it reads and hashes the NHS number of each of the page's visible
 * tuples, starts loading all their Bloom words, then tests each against its
 * word and starts loading the table slot of each one the Bloom filter lets
 * through.  By the time the scan reaches a row, its answer is one byte
 * (and, for a Bloom hit, a table slot already in the cache).
 *
 * This changes when memory is read, never what a call answers.  An answer
 * from the page is used only for the row the scan is on, and only when the
 * number read from that row is the number passed; any other call is a full
 * probe.  The tuples read are the ones the scan
 * itself returns (rs_vistuples, under the pin the scan holds, read as
 * heapgettup_pagemode reads them).  Only heap tables in page mode, only an
 * NHS number column of the scanned table as the first argument, and only
 * other arguments that stay the same for the whole scan; other calls probe
 * without help.
 *
 * caredata is preloaded (the runbook requires it), so every query has the
 * hook from a backend's first.
 *
 * src/scan_lookahead.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/parallel.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "executor/execExpr.h"
#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "storage/bufmgr.h"
#include "utils/guc.h"
#include "utils/rel.h"

#include "objection.h"
#include "scan_lookahead.h"

static bool scan_lookahead_enabled = true;

/*
 * The scan has moved to a new page: read and hash the NHS number of each
 * of its visible tuples, starting the load of each one's Bloom word (pass
 * one), then test each against its Bloom word, by now arriving, and start
 * loading the table slot of each one it lets through (pass two).
 *
 * The tuples read are the ones the scan itself returns: rs_vistuples, the
 * normal line pointers heapgetpage() found visible, on the page the scan
 * holds pinned, read as heapgettup_pagemode() reads them.
 */
static void
scan_lookahead_page(ScanLookahead *la, const NhsSet *set)
{
	HeapScanDesc hs = (HeapScanDesc) la->scan->ss_currentScanDesc;
	TupleDesc	tupdesc = RelationGetDescr(la->scan->ss_currentRelation);
	const uint64 *bloom = set->bloom;
	const uint64 bloom_mask = set->bloom_mask;
	int64	   *keys = la->keys;
	bool	   *maybe = la->maybe;
	uint64	   *hashes = la->hashes;
	Page		page;
	int			n;
	int			i;
	int			off;
	int			attno = la->attno;

	la->hs = hs;
	la->buffer = hs->rs_cbuf;
	la->block = hs->rs_cblock;
	la->set = set;
	la->ntuples = 0;
	if (!BufferIsValid(hs->rs_cbuf) || (hs->rs_base.rs_flags & SO_ALLOW_PAGEMODE) == 0)
		return;

	page = BufferGetPage(hs->rs_cbuf);
	n = hs->rs_ntuples;
	/* the column's offset in a tuple without NULLs, once the scan knows it */
	off = TupleDescAttr(tupdesc, attno - 1)->attcacheoff;
	/*
	 * Pass one.  The common case, the column at a known offset in a tuple
	 * without NULLs, in a loop of its own with no calls; the first tuple
	 * that is not (NULLs, older than the column, offset not known yet)
	 * sends this and every later tuple of the page to the general loop.
	 * 0 (NULL, missing) is never an NHS number, so never matches a call's
	 * argument.
	 */
	i = 0;
	if (off >= 0)
	{
		for (; i < n; i++)
		{
			HeapTupleHeader tup = (HeapTupleHeader)
				PageGetItem(page, PageGetItemId(page, hs->rs_vistuples[i]));
			int64		key;
			uint64		h;

			if (unlikely((tup->t_infomask & HEAP_HASNULL) != 0 ||
						 HeapTupleHeaderGetNatts(tup) < attno))
				break;
			key = *(const int64 *) ((const char *) tup + tup->t_hoff + off);
			h = nhs_set_hash(key);
			keys[i] = key;
			hashes[i] = h;
			NHS_SET_PREFETCH(&bloom[h & bloom_mask]);
		}
	}
	for (; i < n; i++)
	{
		ItemId		lp = PageGetItemId(page, hs->rs_vistuples[i]);
		HeapTupleHeader tup = (HeapTupleHeader) PageGetItem(page, lp);
		HeapTupleData tuple;
		bool		isnull = true;
		Datum		d = (Datum) 0;
		uint64		h;

		if (attno <= HeapTupleHeaderGetNatts(tup))
		{
			tuple.t_data = tup;
			tuple.t_len = ItemIdGetLength(lp);
			d = fastgetattr(&tuple, attno, tupdesc, &isnull);
		}
		keys[i] = isnull ? 0 : DatumGetInt64(d);
		h = nhs_set_hash(keys[i]);
		hashes[i] = h;
		NHS_SET_PREFETCH(&bloom[h & bloom_mask]);
	}
	/* pass two */
	for (i = 0; i < n; i++)
	{
		uint64		h = hashes[i];
		uint64		bits = nhs_set_bloom_bits(h);
		bool		m = (bloom[h & bloom_mask] & bits) == bits;

		maybe[i] = m;
		if (unlikely(m))
			NHS_SET_PREFETCH(&set->slots[nhs_set_slot(set, h)]);
	}
	la->ntuples = n;
}

/*
 * Is key in set?  Makes the page pass when the scan has moved to a new page
 * (or the set is another), then answers as scan_lookahead_answer() does;
 * a key that is not the number of the row the scan is on is probed in full.
 */
bool
scan_lookahead_contains(ScanLookahead *la, const NhsSet *set, int64 key)
{
	if (set->nkeys == 0)
		return false;
	if (la != NULL && la->scan != NULL && la->scan->ss_currentScanDesc != NULL)
	{
		const HeapScanDescData *hs = (const HeapScanDescData *) la->scan->ss_currentScanDesc;
		int			in_set;

		if (hs != la->hs || hs->rs_cblock != la->block || hs->rs_cbuf != la->buffer || set != la->set)
			scan_lookahead_page(la, set);
		in_set = scan_lookahead_answer(la, set, key);
		if (in_set >= 0)
			return in_set == 1;
	}
	return nhs_set_contains(set, key);
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
 * A permitted() step of a sequential scan's quals: read ahead for it if its
 * first argument is an NHS number column of the scanned heap table and the
 * others stay the same for the whole scan.
 */
static void
attach_to_scan(ScanState *ss, EState *estate, ExprEvalStep *op)
{
	Relation	rel = ss->ss_currentRelation;
	FuncExpr   *fexpr = (FuncExpr *) op->d.func.finfo->fn_expr;
	Var		   *var;
	Form_pg_attribute att;
	ScanLookahead *la;

	if (!scan_lookahead_enabled || rel == NULL || rel->rd_tableam != GetHeapamTableAmRoutine())
		return;
	if (fexpr == NULL || !IsA(fexpr, FuncExpr) || list_length(fexpr->args) < 2 ||
		!IsA(linitial(fexpr->args), Var))
		return;
	var = (Var *) linitial(fexpr->args);
	if (contain_vars_of_level((Node *) list_delete_first(list_copy(fexpr->args)), 0) ||
		contain_volatile_functions((Node *) fexpr->args))
		return;
	if (var->varlevelsup != 0 || (Index) var->varno != ((Scan *) ss->ps.plan)->scanrelid ||
		var->varattno <= 0 || var->varattno > RelationGetDescr(rel)->natts)
		return;
	att = TupleDescAttr(RelationGetDescr(rel), var->varattno - 1);
	if (att->attisdropped || !att->attbyval || att->attlen != sizeof(int64))
		return;

	la = permitted_lookahead(op->d.func.finfo);
	la->scan = ss;
	la->attno = var->varattno;
	la->hs = NULL;
	la->buffer = InvalidBuffer;
	la->block = InvalidBlockNumber;
}

/*
 * A permitted() step in a scan's quals whose first argument is a column of
 * the scanned table (a Var of the scan, or of an index-only scan's index):
 * tell objection.c which column, which answers only for protected ones.
 */
static void
bind_to_scan(PlanState *ps, ExprEvalStep *op)
{
	FuncExpr   *fexpr = (FuncExpr *) op->d.func.finfo->fn_expr;
	Relation	rel;
	Var		   *var;
	AttrNumber	attno;

	if (!IsA(ps->plan, SeqScan) && !IsA(ps->plan, IndexScan) && !IsA(ps->plan, IndexOnlyScan) &&
		!IsA(ps->plan, BitmapHeapScan) && !IsA(ps->plan, TidScan) && !IsA(ps->plan, TidRangeScan) &&
		!IsA(ps->plan, SampleScan))
		return;
	rel = ((ScanState *) ps)->ss_currentRelation;
	if (rel == NULL || fexpr == NULL || !IsA(fexpr, FuncExpr) || fexpr->args == NIL ||
		!IsA(linitial(fexpr->args), Var))
		return;
	var = (Var *) linitial(fexpr->args);
	if (var->varlevelsup != 0)
		return;
	if (IsA(ps->plan, IndexOnlyScan))
	{
		/* the quals read the index tuple: map its column to the table's */
		Relation	index = ((IndexOnlyScanState *) ps)->ioss_RelationDesc;

		if (var->varno != INDEX_VAR || index == NULL || var->varattno <= 0 ||
			var->varattno > index->rd_index->indnatts)
			return;
		attno = index->rd_index->indkey.values[var->varattno - 1];
	}
	else
	{
		if ((Index) var->varno != ((Scan *) ps->plan)->scanrelid)
			return;
		attno = var->varattno;
	}
	permitted_bind_column(op->d.func.finfo, RelationGetRelid(rel), attno);
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

/* bind every permitted() step of a plan's scans, and nothing else */
static bool
bind_walker(PlanState *ps, void *context)
{
	ExprState  *qual;

	if (ps == NULL)
		return false;
	qual = ps->qual;
	for (int i = 0; qual != NULL && i < qual->steps_len; i++)
	{
		if (is_permitted_step(qual, &qual->steps[i]))
			bind_to_scan(ps, &qual->steps[i]);
	}
	if (IsA(ps, ModifyTableState))
		bind_modify_table((ModifyTableState *) ps);
	return planstate_tree_walker(ps, bind_walker, context);
}

typedef struct PrepareContext
{
	EState	   *estate;
	bool		parallel;		/* the plan runs parallel workers */
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

		if (!is_permitted_step(qual, op))
			continue;
		bind_to_scan(ps, op);
		if (IsA(ps, SeqScanState))
			attach_to_scan((ScanState *) ps, pc->estate, op);
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
void
scan_lookahead_prepare(QueryDesc *queryDesc)
{
	PrepareContext pc;
	ListCell   *lc;

	pc.estate = queryDesc->estate;
	pc.parallel = queryDesc->plannedstmt->parallelModeNeeded;
	prepare_walker(queryDesc->planstate, &pc);
	/* subplans the tree walk does not reach (a CTE's, say): bind only */
	foreach(lc, queryDesc->estate->es_subplanstates)
		bind_walker((PlanState *) lfirst(lc), NULL);
}

void
scan_lookahead_init(void)
{
	DefineCustomBoolVariable("caredata.scan_lookahead",
							 "Load the objection filter's memory ahead of sequential scans.",
							 "Changes speed only, never which rows a role sees.",
							 &scan_lookahead_enabled,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}
