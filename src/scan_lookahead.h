/*-------------------------------------------------------------------------
 *
 * scan_lookahead.h
 *		Loading the objection filter's memory ahead of a sequential scan
 *		(src/scan_lookahead.c).
 *
 * src/scan_lookahead.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SCAN_LOOKAHEAD_H
#define CAREDATA_SCAN_LOOKAHEAD_H

#include "access/heapam.h"
#include "nodes/execnodes.h"

#include "nhs_set.h"

/*
 * How many rows ahead of the current one to start loading a row's Bloom
 * word, and (once that word is in) the table slot it leads to.  A row takes
 * some 40-60 ns to scan; a load from memory some 100-150 ns.  Measured in
 * bench/objection_filter.sql: 8/4, 16/8, 24/8 and 32/16 all within noise.
 */
#define LOOKAHEAD_BLOOM		16
#define LOOKAHEAD_SLOT		8

/* one permitted() call site in the quals of one sequential scan */
typedef struct ScanLookahead
{
	ScanState  *scan;
	AttrNumber	attno;			/* the NHS number column */
	Buffer		buffer;			/* the page the arrays are for */
	BlockNumber block;
	const NhsSet *set;			/* ... and the set hashed for */
	int			ntuples;		/* the page's visible tuples, in scan order: */
	int64		keys[MaxHeapTuplesPerPage]; /* NHS number (0: none) */
	uint64		hashes[MaxHeapTuplesPerPage];	/* nhs_set_hash(keys[i]) */
} ScanLookahead;

extern void scan_lookahead_init(void);
extern void scan_lookahead_page(ScanLookahead *la, const NhsSet *set);

/*
 * Is key in set?  Always a full probe for key itself.  When key is the NHS
 * number read from the row the scan is on, the probe reuses that row's
 * hash, and first starts the loads that rows a little further on the page
 * will need.
 */
static pg_attribute_always_inline bool
scan_lookahead_contains(ScanLookahead *la, const NhsSet *set, int64 key)
{
	if (set->nkeys == 0)
		return false;
	if (la != NULL && la->scan->ss_currentScanDesc != NULL)
	{
		const HeapScanDescData *hs = (const HeapScanDescData *) la->scan->ss_currentScanDesc;
		int			i = hs->rs_cindex;

		if (unlikely(hs->rs_cblock != la->block || hs->rs_cbuf != la->buffer || set != la->set))
			scan_lookahead_page(la, set);
		if (likely(i >= 0 && i < la->ntuples && la->keys[i] == key))
		{
			if (i + LOOKAHEAD_BLOOM < la->ntuples)
				NHS_SET_PREFETCH(nhs_set_bloom_word(set, la->hashes[i + LOOKAHEAD_BLOOM]));
			if (i + LOOKAHEAD_SLOT < la->ntuples)
			{
				const uint32 *slot = nhs_set_first_slot(set, la->hashes[i + LOOKAHEAD_SLOT]);

				if (slot != NULL)
					NHS_SET_PREFETCH(slot);
			}
			return nhs_set_contains_hashed(set, key, la->hashes[i]);
		}
	}
	return nhs_set_contains(set, key);
}

/* provided by src/objection.c */
extern void permitted_attach_lookahead(FmgrInfo *flinfo, ScanLookahead *la);
extern void permitted_prepare_parallel(FmgrInfo *flinfo);
extern Datum permitted(PG_FUNCTION_ARGS);
extern Datum row_permitted(PG_FUNCTION_ARGS);

#endif							/* CAREDATA_SCAN_LOOKAHEAD_H */
