/*-------------------------------------------------------------------------
 *
 * qual_eval.c
 *		A sequential scan whose only qual is the objection filter's call,
 *		evaluated without the expression interpreter or a function call.
 *
 * After ExecutorStart, plan.c hands over each sequential scan whose qual
 * is exactly the filter protect() attaches for a role that is neither a
 * patient nor a grantee:
 *
 *		permitted(col, 'purpose')  or  row_permitted(col, 'purpose')
 *
 * its first argument a bound NHS number column of the scanned heap table,
 * its purpose a constant, nothing else in the qual (the interpreter's
 * steps: fetch the scan tuple's attributes, the column into the call's
 * first argument, the call, the qual's test, done).  Such a qual is given
 * an evaluation function of its own (ExprState.evalfunc) that reads the
 * NHS number straight from the scan slot's heap tuple and asks
 * permitted_fast_answer() (permitted_cache.h), the very test the function's
 * own fast path makes, with the answer the scan's page pass prepared
 * (scan_lookahead.c): no interpreter dispatch, no FunctionCallInfo, no
 * call through fmgr, no deforming of the tuple.  When the scan projects
 * nothing, its loop is replaced too (qual_eval_seqscan: ExecSeqScan with
 * that test inline), so such a row costs no call of the qual and no reset
 * of the per-tuple memory either.
 *
 * It changes how a row's answer is reached, never what it is.  Whenever
 * the fast test cannot answer (the call site's first row, a new page, a
 * set or role that needs permitted_slow(), a tuple with NULLs or without
 * the column, the column's offset not yet known, a slot that is not the
 * scan's heap tuple), the qual runs through the interpreter exactly as
 * PostgreSQL built it, and so through permitted() itself.  A qual of any
 * other shape, a compiled (JIT) one, function-usage tracking
 * (track_functions), or caredata.filter_fast_qual = off: never attached.
 * EvalPlanQual's rechecks run a copy of the plan this hook never sees, so
 * always through permitted() (bound_calls.c).
 *
 * The layer of the hooks' work: plan.c calls here; this file reads the call
 * site's state (permitted_cache.h) and never writes it; asking
 * permitted_fast_answer() moves the read-ahead (scan_lookahead.h) on, as
 * permitted()'s own fast path does.
 *
 * src/objection/qual_eval.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/tableam.h"
#include "miscadmin.h"
#include "executor/execExpr.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "utils/guc.h"

#include "permitted.h"
#include "permitted_cache.h"
#include "qual_eval.h"

static bool qual_eval_enabled = true;

/* one sequential scan's qual, answered here (in the query's memory) */
typedef struct FastQual
{
	ExprStateEvalFunc interp;	/* what the qual ran before: the interpreter */
	FmgrInfo   *flinfo;			/* the call's; fn_extra is its PermittedCache */
	Datum		purpose;		/* its second argument, a constant */
	AttrNumber	attno;			/* the NHS number column of the scan */
	int			off;			/* its offset in a tuple without NULLs; -1
								 * until a deform has worked it out */
	bool		own_rows;		/* row_permitted() */
	bool		checked;		/* CheckExprStillValid() done */
	ExecProcNodeMtd scan_exec;	/* the scan node's own function (ExecSeqScan) */
} FastQual;

/*
 * The row in slot answered as permitted()'s fast path would: 1 permitted,
 * 0 not, -1 only the interpreter (and permitted() itself) can say.
 */
static pg_attribute_always_inline int
qual_eval_answer(FastQual *fq, TupleTableSlot *slot)
{
	if (likely(fq->off >= 0 && slot != NULL && slot->tts_ops == &TTSOpsBufferHeapTuple &&
			   !TTS_EMPTY(slot)))
	{
		HeapTuple	tuple = ((BufferHeapTupleTableSlot *) slot)->base.tuple;
		HeapTupleHeader tup = tuple != NULL ? tuple->t_data : NULL;

		/* as the page pass reads it: no NULLs, the column present */
		if (likely(tup != NULL && (tup->t_infomask & HEAP_HASNULL) == 0 &&
				   HeapTupleHeaderGetNatts(tup) >= fq->attno))
		{
			int64		key = *(const int64 *) ((const char *) tup + tup->t_hoff + fq->off);

			return permitted_fast_answer((PermittedCache *) fq->flinfo->fn_extra,
										 fq->purpose, key, fq->own_rows);
		}
	}
	return -1;
}

static pg_attribute_hot Datum
qual_eval_fast(ExprState *state, ExprContext *econtext, bool *isnull)
{
	FastQual   *fq = (FastQual *) state->evalfunc_private;
	TupleTableSlot *slot = econtext->ecxt_scantuple;
	int			answer = qual_eval_answer(fq, slot);

	if (likely(answer >= 0))
	{
		*isnull = false;
		return BoolGetDatum(answer == 1);
	}

	/*
	 * Everything else through the interpreter, as PostgreSQL built the qual:
	 * the first time, with the check ExecInterpExprStillValid() would have
	 * made.
	 */
	if (unlikely(!fq->checked))
	{
		CheckExprStillValid(state, econtext);
		fq->checked = true;
	}
	if (fq->off < 0 && slot != NULL)
	{
		/* known once the interpreter's deform has passed the column */
		int			off = TupleDescAttr(slot->tts_tupleDescriptor, fq->attno - 1)->attcacheoff;

		if (off >= 0)
			fq->off = off;
	}
	return fq->interp(state, econtext, isnull);
}

/*
 * The sequential scan itself, for a scan whose qual qual_eval_fast()
 * answers and which projects nothing: ExecSeqScan() (SeqNext() and
 * ExecScan()) with the row's answer tested inline, so a row the fast test
 * answers costs no call of the qual and no reset of the per-tuple memory
 * (it allocates none).  Any other row goes through ExecQual() exactly as
 * ExecScan() would, its per-tuple memory reset first; EvalPlanQual
 * (es_epq_active) goes to the node's own function.  Rows removed are
 * counted as ExecScan() counts them (explain_guard.c hides the count).
 */
static TupleTableSlot *
qual_eval_seqscan(PlanState *pstate)
{
	SeqScanState *node = (SeqScanState *) pstate;
	ExprState  *qual = pstate->qual;
	FastQual   *fq = (FastQual *) qual->evalfunc_private;
	EState	   *estate = pstate->state;
	ExprContext *econtext = pstate->ps_ExprContext;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	TableScanDesc scandesc;

	if (unlikely(estate->es_epq_active != NULL || pstate->ps_ProjInfo != NULL ||
				 qual->evalfunc != qual_eval_fast))
		return fq->scan_exec(pstate);

	/* SeqNext(): a parallel scan's descriptor is made when the plan starts */
	scandesc = node->ss.ss_currentScanDesc;
	if (scandesc == NULL)
	{
		scandesc = table_beginscan(node->ss.ss_currentRelation, estate->es_snapshot, 0, NULL);
		node->ss.ss_currentScanDesc = scandesc;
	}
	for (;;)
	{
		int			answer;

		CHECK_FOR_INTERRUPTS();
		if (!table_scan_getnextslot(scandesc, estate->es_direction, slot))
			return NULL;		/* as SeqNext() and ExecScan() end */
		answer = qual_eval_answer(fq, slot);
		if (likely(answer == 1))
			return slot;
		if (answer < 0)
		{
			/* ExecScan()'s own steps */
			ResetExprContext(econtext);
			econtext->ecxt_scantuple = slot;
			if (ExecQual(qual, econtext))
				return slot;
		}
		InstrCountFiltered1(node, 1);
	}
}

/*
 * The qual of a sequential scan (ss), with op the filter's call in it, and
 * la the read-ahead plan.c attached for the call: answer it here when the
 * qual is exactly that call (see the file header).  The call must be bound
 * already (plan.c).
 */
void
qual_eval_attach(ScanState *ss, ExprState *qual, ExprEvalStep *op, const ScanLookahead *la)
{
	ExprEvalStep *s = qual->steps;
	FuncExpr   *fexpr = (FuncExpr *) op->d.func.finfo->fn_expr;
	FunctionCallInfo fcinfo = op->d.func.fcinfo_data;
	Const	   *purpose;
	Var		   *var;
	TupleTableSlot *slot = ss->ss_ScanTupleSlot;
	FastQual   *fq;

	if (!qual_eval_enabled || qual->evalfunc != ExecInterpExprStillValid ||
		(qual->flags & EEO_FLAG_IS_QUAL) == 0 || qual->steps_len != 5)
		return;
	/* the steps: fetch, the column into argument 0, the call, qual, done */
	if (ExecEvalStepOp(qual, &s[0]) != EEOP_SCAN_FETCHSOME ||
		ExecEvalStepOp(qual, &s[1]) != EEOP_SCAN_VAR ||
		&s[2] != op || ExecEvalStepOp(qual, &s[2]) != EEOP_FUNCEXPR ||
		ExecEvalStepOp(qual, &s[3]) != EEOP_QUAL ||
		ExecEvalStepOp(qual, &s[4]) != EEOP_DONE)
		return;
	if (op->resvalue != &qual->resvalue || op->resnull != &qual->resnull ||
		fcinfo == NULL || fcinfo->nargs != 2 || op->d.func.nargs != 2 ||
		s[1].resvalue != &fcinfo->args[0].value || s[1].resnull != &fcinfo->args[0].isnull)
		return;
	/* permitted(col, 'purpose'): the column a Var of the scan, the purpose a constant */
	if (fexpr == NULL || !IsA(fexpr, FuncExpr) || list_length(fexpr->args) != 2 ||
		!IsA(linitial(fexpr->args), Var) || !IsA(lsecond(fexpr->args), Const))
		return;
	var = (Var *) linitial(fexpr->args);
	purpose = (Const *) lsecond(fexpr->args);
	if (purpose->constisnull || fcinfo->args[1].isnull ||
		fcinfo->args[1].value != purpose->constvalue)
		return;
	/* ... the column the read-ahead reads, as step 1 reads it */
	if (la == NULL || la->scan != ss || la->attno != var->varattno ||
		s[1].d.var.attnum != var->varattno - 1)
		return;
	if (slot == NULL || slot->tts_ops != &TTSOpsBufferHeapTuple)
		return;

	fq = MemoryContextAllocZero(ss->ps.state->es_query_cxt, sizeof(FastQual));
	fq->interp = (ExprStateEvalFunc) qual->evalfunc_private;
	fq->flinfo = op->d.func.finfo;
	fq->purpose = purpose->constvalue;
	fq->attno = var->varattno;
	fq->off = -1;
	fq->own_rows = op->d.func.finfo->fn_addr == row_permitted;
	if (fq->interp == NULL)
		return;
	qual->evalfunc_private = fq;
	qual->evalfunc = qual_eval_fast;

	/*
	 * The scan's own loop too, when it projects nothing (a plan not yet
	 * run: the node still starts through ExecProcNodeFirst).
	 */
	if (ss->ps.ps_ProjInfo == NULL && ss->ps.ExecProcNodeReal != NULL &&
		ss->ps.ps_ExprContext != NULL)
	{
		fq->scan_exec = ss->ps.ExecProcNodeReal;
		ExecSetExecProcNode(&ss->ps, qual_eval_seqscan);
	}
}

void
qual_eval_init(void)
{
	DefineCustomBoolVariable("caredata.filter_fast_qual",
							 "Answer a sequential scan's objection filter without a function call.",
							 "Changes speed only, never which rows a role sees.",
							 &qual_eval_enabled,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}
