/*-------------------------------------------------------------------------
 *
 * scan_lookahead.h
 *		Loading the objection filter's memory ahead of a sequential scan
 *		(src/objection/scan_lookahead.c).
 *
 * src/objection/scan_lookahead.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SCAN_LOOKAHEAD_H
#define CAREDATA_SCAN_LOOKAHEAD_H

#include "access/heapam.h"
#include "nodes/execnodes.h"

#include "executor/execdesc.h"

#include "nhs_set.h"
#include "base/pg_compat.h"

/* one permitted() call site in the quals of one sequential scan */
typedef struct ScanLookahead
{
	ScanState  *scan;			/* NULL: not attached to a scan */
	AttrNumber	attno;			/* the NHS number column */
	/* the scan's descriptor, as of the last page pass (NULL: none yet) */
	const HeapScanDescData *hs;
	Buffer		buffer;			/* the page the arrays are for */
	BlockNumber block;
	const NhsSet *set;			/* ... and the set tested against */
	int			ntuples;		/* the page's visible tuples, in scan order: */
	int64		keys[MaxHeapTuplesPerPage]; /* NHS number (0: none) */
	uint64		hashes[MaxHeapTuplesPerPage];	/* nhs_set_hash(keys[i]) */
	bool		maybe[MaxHeapTuplesPerPage];	/* Bloom lets keys[i] through */
} ScanLookahead;

extern void scan_lookahead_init(void);
extern void scan_lookahead_attach(ScanState *ss, FmgrInfo *finfo, ScanLookahead *la);
extern bool scan_lookahead_contains(ScanLookahead *la, const NhsSet *set, int64 key);

/*
 * The per-row answer from the page pass: 1 if key is in the set, 0 if not,
 * -1 if not known here (key is not the NHS number read from the row the
 * scan is on, or the page has not been read): then ask
 * scan_lookahead_contains(), which makes the page pass when the scan has
 * moved to a new page.  A Bloom hit is looked up in the table, whose slot
 * the page pass started loading.  Comparing the number is what makes the
 * answer right: arrays from an earlier page can only fail it or, holding
 * the same number, give that number's answer.  la->set must be set (the
 * caller clears la when the set it asks about changes).
 *
 * Inline and free of calls, so that the function it is part of needs no
 * stack frame.  It reads the scan's descriptor through the pointer the
 * last page pass kept: a sequential scan keeps one descriptor from its
 * first row to its end, rescans included, and a call site's quals run only
 * while its scan does.
 */
static pg_attribute_always_inline int
scan_lookahead_answer(const ScanLookahead *la, const NhsSet *set, int64 key)
{
#ifdef CAREDATA_SCAN_LOOKAHEAD
	const HeapScanDescData *hs = la->hs;
	unsigned	i;

	if (unlikely(hs == NULL))
		return -1;
	i = (unsigned) hs->rs_cindex;
	if (unlikely(i >= (unsigned) la->ntuples || la->keys[i] != key))
		return -1;
	if (likely(!la->maybe[i]))
		return 0;
	return nhs_set_table_contains(set, key, la->hashes[i]) ? 1 : 0;
#else
	return -1;
#endif
}

#endif							/* CAREDATA_SCAN_LOOKAHEAD_H */
