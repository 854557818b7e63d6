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

/*
 * How far ahead of the row the scan is on the read-ahead works: the Bloom
 * word of the row SCAN_LOOKAHEAD_WORD rows ahead starts loading, the row
 * SCAN_LOOKAHEAD_TEST rows ahead is tested against its word (by then
 * arrived) and, if the Bloom filter lets it through, its table slot starts
 * loading.  Measured on a 10M-row scan (docs/benchmarks.md, issue 28).
 */
#define SCAN_LOOKAHEAD_WORD	32
#define SCAN_LOOKAHEAD_TEST	16

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
	const struct BlockedRows *rows;	/* NULL, or where the table's
										 * blocked rows are ... */
	TransactionId horizon;		/* ... for tuples whose xmin precedes this
								 * (blocked_rows.h) */
	bool		exact;			/* maybe[] are the answers themselves, from
								 * rows */
	uint64	   *pages;			/* NULL, or the count of pages tested with
								 * set in this table (blocked_rows.c) */
	int			ntuples;		/* the page's visible tuples, in scan order: */
	int			tested;			/* maybe[0 .. tested - 1] are known */
	int			loading;		/* Bloom words of rows < loading requested */
	int64		keys[MaxHeapTuplesPerPage]; /* NHS number (0: none) */
	uint64		hashes[MaxHeapTuplesPerPage];	/* nhs_set_hash(keys[i]) */
	bool		maybe[MaxHeapTuplesPerPage];	/* Bloom lets keys[i] through (exact:
												 * keys[i] is blocked) */
} ScanLookahead;

extern void scan_lookahead_init(void);
extern void scan_lookahead_attach(ScanState *ss, FmgrInfo *finfo, ScanLookahead *la);
extern bool scan_lookahead_contains(ScanLookahead *la, const NhsSet *set, int64 key);

/*
 * The per-row answer from the page pass: 1 if key is in the set, 0 if not,
 * -1 if not known here (key is not the NHS number read from the row the
 * scan is on, or the page has not been read): then ask
 * scan_lookahead_contains(), which makes the page pass when the scan has
 * moved to a new page.  Comparing the number is what makes the answer
 * right: arrays from an earlier page can only fail it or, holding the same
 * number, give that number's answer.  la->set must be set (the caller
 * clears la when the set it asks about changes, or its blocked rows).
 * When every visible row of the page is one the table's blocked rows
 * answer for (blocked_rows.c), the page pass took each row's answer from
 * them (la->exact), which gives the answers set does; otherwise it tested
 * the page's rows against set.
 *
 * Each answer also moves the read-ahead on: the rows up to
 * SCAN_LOOKAHEAD_TEST ahead are tested against their Bloom words, whose
 * loads started SCAN_LOOKAHEAD_WORD rows ahead, and the table slot of each
 * one the Bloom filter lets through starts loading; so the loads of a page
 * overlap the work of the scan's rows instead of queueing at once in the
 * page pass (a page's ~185 Bloom words at once wait on the CPU's few
 * outstanding misses: issue 28 measured about 0.02x of the unfiltered
 * scan, and 3 ns a row in a stand-alone model).  maybe[j] is read
 * only for j < tested, and the loop makes tested > i whatever order the
 * scan takes (a backward scan's first row tests the whole page): a row's
 * Bloom answer is always its own word's, and a hit always goes to the
 * table.
 *
 * Inline and free of calls, so that the function it is part of needs no
 * stack frame.  It reads the scan's descriptor through the pointer the
 * last page pass kept: a sequential scan keeps one descriptor from its
 * first row to its end, rescans included, and a call site's quals run only
 * while its scan does.
 */
static pg_attribute_always_inline int
scan_lookahead_answer(ScanLookahead *la, const NhsSet *set, int64 key)
{
#ifdef CAREDATA_SCAN_LOOKAHEAD
	const HeapScanDescData *hs = la->hs;
	unsigned	i;
	int			n;
	int			t;

	if (unlikely(hs == NULL))
		return -1;
	i = (unsigned) hs->rs_cindex;
	n = la->ntuples;
	if (unlikely(i >= (unsigned) n || la->keys[i] != key))
		return -1;
	for (t = la->tested; t <= (int) i + SCAN_LOOKAHEAD_TEST && t < n; t++)
	{
		uint64		h = la->hashes[t];
		uint64		bits = nhs_set_bloom_bits(h);
		bool		m = (*nhs_set_bloom_word(set, h) & bits) == bits;
		int			w = la->loading;

		la->maybe[t] = m;
		if (unlikely(m))
			NHS_SET_PREFETCH(&set->slots[nhs_set_slot(set, h)]);
		if (w < n)
		{
			NHS_SET_PREFETCH(nhs_set_bloom_word(set, la->hashes[w]));
			la->loading = w + 1;
		}
	}
	la->tested = t;
	if (likely(!la->maybe[i]))
		return 0;
	if (la->exact)
		return 1;
	return nhs_set_table_contains(set, key, la->hashes[i]) ? 1 : 0;
#else
	return -1;
#endif
}

#endif							/* CAREDATA_SCAN_LOOKAHEAD_H */
