/*-------------------------------------------------------------------------
 *
 * scan_lookahead.c
 *		Loading the objection filter's memory ahead of a sequential scan.
 *
 * Attached to a sequential scan after ExecutorStart (plan.c).
 * Reads private fields of heapam's scan descriptor, so it is compiled only
 * for the server versions base/pg_compat.h names.  permitted() tests each row
 * against an in-memory set of millions of blocked NHS numbers (nhs_set.h).
 * A test is a random access to a few megabytes that a table scan keeps
 * evicting from the CPU cache, so row after row the test waits for memory.
 * PostgreSQL evaluates a row at a time, but a sequential scan in page mode
 * already knows every visible tuple of the page it is on.  So when a
 * permitted() call in a scan's quals sees that the scan has moved to a new
 * page, it reads and hashes the NHS number of each of the page's visible
 * tuples and starts loading the first rows' Bloom words; then each row's
 * answer (scan_lookahead_answer(), scan_lookahead.h) tests the row
 * SCAN_LOOKAHEAD_TEST rows ahead against its word, starts loading the table
 * slot of each one the Bloom filter lets through, and the Bloom word of the
 * row SCAN_LOOKAHEAD_WORD rows ahead.  By the time the scan reaches a row,
 * its answer is one byte (and, for a Bloom hit, a table slot already in the
 * cache), and the loads overlap the scan's own work.  (Until issue 28 the
 * page pass loaded and tested the whole page's words at once.)  A page
 * whose visible rows are all older than the table's noted blocked rows
 * (blocked_rows.c) takes its answers from those positions instead: no
 * hash, no Bloom word, no table slot.
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
 * It knows nothing of permitted(): plan.c hands it the call site's state
 * (a ScanLookahead in the call's cache), permitted.c asks it about keys.
 *
 * src/objection/scan_lookahead.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "executor/executor.h"
#include "optimizer/optimizer.h"
#include "storage/bufmgr.h"
#include "utils/guc.h"
#include "utils/rel.h"

#include "scan_lookahead.h"
#include "blocked_rows.h"

static bool scan_lookahead_enabled = true;

/*
 * The scan has moved to a new page: read and hash the NHS number of each
 * of its visible tuples, and start loading the Bloom words of the first
 * SCAN_LOOKAHEAD_WORD; scan_lookahead_answer() tests them, row by row, a
 * little ahead of the scan (scan_lookahead.h).
 *
 * The tuples read are the ones the scan itself returns: rs_vistuples, the
 * normal line pointers heapgetpage() found visible, on the page the scan
 * holds pinned, read as heapgettup_pagemode() reads them.
 */
#ifdef CAREDATA_SCAN_LOOKAHEAD
static void
scan_lookahead_page(ScanLookahead *la, const NhsSet *set)
{
	HeapScanDesc hs = (HeapScanDesc) la->scan->ss_currentScanDesc;
	TupleDesc	tupdesc = RelationGetDescr(la->scan->ss_currentRelation);
	int64	   *keys = la->keys;
	uint64	   *hashes = la->hashes;
	Page		page;
	int			n;
	int			i;
	int			off;
	int			attno = la->attno;
	TransactionId horizon = la->horizon;
	bool		covered;

	la->hs = hs;
	la->buffer = hs->rs_cbuf;
	la->block = hs->rs_cblock;
	la->set = set;
	la->exact = false;
	la->ntuples = 0;
	la->tested = 0;
	la->loading = 0;
	if (!BufferIsValid(hs->rs_cbuf) || (hs->rs_base.rs_flags & SO_ALLOW_PAGEMODE) == 0)
		return;

	page = BufferGetPage(hs->rs_cbuf);
	n = hs->rs_ntuples;
	if (la->pages != NULL)
		(*la->pages)++;
	covered = la->rows != NULL && hs->rs_cblock < la->rows->nblocks;

	/* the column's offset in a tuple without NULLs, once the scan knows it */
	off = TupleDescAttr(tupdesc, attno - 1)->attcacheoff;
	/*
	 * The common case, the column at a known offset in a tuple
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

			if (unlikely((tup->t_infomask & HEAP_HASNULL) != 0 ||
						 HeapTupleHeaderGetNatts(tup) < attno))
				break;
			keys[i] = *(const int64 *) ((const char *) tup + tup->t_hoff + off);
			covered &= blocked_rows_cover(HeapTupleHeaderGetRawXmin(tup), horizon);
		}
	}
	for (; i < n; i++)
	{
		ItemId		lp = PageGetItemId(page, hs->rs_vistuples[i]);
		HeapTupleHeader tup = (HeapTupleHeader) PageGetItem(page, lp);
		HeapTupleData tuple;
		bool		isnull = true;
		Datum		d = (Datum) 0;

		if (attno <= HeapTupleHeaderGetNatts(tup))
		{
			tuple.t_data = tup;
			tuple.t_len = ItemIdGetLength(lp);
			d = fastgetattr(&tuple, attno, tupdesc, &isnull);
		}
		keys[i] = isnull ? 0 : DatumGetInt64(d);
		covered &= blocked_rows_cover(HeapTupleHeaderGetRawXmin(tup), horizon);
	}
	/*
	 * Every row one the table's blocked rows answer for: each row's answer
	 * is whether its line pointer is one of the page's blocked rows (no
	 * hash, no load from the set: the positions are read in page order).
	 */
	if (covered)
	{
		const BlockedRows *rows = la->rows;
		uint64		blocked[MaxHeapTuplesPerPage / 64 + 1] = {0};

		for (uint32 j = rows->first[la->block]; j < rows->first[la->block + 1]; j++)
			blocked[rows->offsets[j] / 64] |= UINT64CONST(1) << (rows->offsets[j] % 64);
		for (i = 0; i < n; i++)
		{
			OffsetNumber o = hs->rs_vistuples[i];

			la->maybe[i] = (blocked[o / 64] >> (o % 64)) & 1;
		}
		la->exact = true;
		la->tested = n;
		la->loading = n;
		la->ntuples = n;
		return;
	}
	for (i = 0; i < n; i++)
		hashes[i] = nhs_set_hash(keys[i]);
	/* the first rows' Bloom words */
	for (i = 0; i < n && i < SCAN_LOOKAHEAD_WORD; i++)
		NHS_SET_PREFETCH(nhs_set_bloom_word(set, hashes[i]));
	la->loading = i;
	la->ntuples = n;
}
#endif							/* CAREDATA_SCAN_LOOKAHEAD */

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
#ifdef CAREDATA_SCAN_LOOKAHEAD
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
#endif
	return nhs_set_contains(set, key);
}

/*
 * A permitted() call (finfo) in a sequential scan's quals: read ahead into
 * la, its call site's state, if its first argument is an NHS number column
 * of the scanned heap table and the others stay the same for the whole
 * scan.
 */
void
scan_lookahead_attach(ScanState *ss, FmgrInfo *finfo, ScanLookahead *la)
{
	Relation	rel = ss->ss_currentRelation;
	FuncExpr   *fexpr = (FuncExpr *) finfo->fn_expr;
	Var		   *var;
	Form_pg_attribute att;

#ifndef CAREDATA_SCAN_LOOKAHEAD
	return;						/* not for this server version (pg_compat.h) */
#endif
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

	la->scan = ss;
	la->attno = var->varattno;
	la->hs = NULL;
	la->rows = NULL;
	la->exact = false;
	la->pages = NULL;
	la->buffer = InvalidBuffer;
	la->block = InvalidBlockNumber;
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
