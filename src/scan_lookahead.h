/*-------------------------------------------------------------------------
 *
 * scan_lookahead.h
 *		Cache prefetch for the objection filter on sequential scans
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

/* one permitted() call site in the quals of one sequential scan */
typedef struct ScanLookahead
{
	ScanState  *scan;
	AttrNumber	attno;			/* the NHS number column */
	Buffer		buffer;			/* the page last read ahead */
	BlockNumber block;
	const NhsSet *set;			/* ... for this set */
} ScanLookahead;

extern void scan_lookahead_init(void);
extern void scan_lookahead_page(ScanLookahead *la, const NhsSet *set);

/* per row: read ahead when the scan has moved to a new page */
static inline void
scan_lookahead(ScanLookahead *la, const NhsSet *set)
{
	if (la != NULL && la->scan->ss_currentScanDesc != NULL)
	{
		const HeapScanDescData *hs = (const HeapScanDescData *) la->scan->ss_currentScanDesc;

		if (hs->rs_cbuf != la->buffer || hs->rs_cblock != la->block || set != la->set)
			scan_lookahead_page(la, set);
	}
}

/* provided by src/objection.c */
extern void permitted_attach_lookahead(FmgrInfo *flinfo, ScanLookahead *la);
extern Datum permitted(PG_FUNCTION_ARGS);

#endif							/* CAREDATA_SCAN_LOOKAHEAD_H */
