/*-------------------------------------------------------------------------
 *
 * blocked_rows.h
 *		Where a blocked set's patients' rows are in one table, for the
 *		sequential scans of that table (src/objection/blocked_rows.c).
 *
 * src/objection/blocked_rows.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_BLOCKED_ROWS_H
#define CAREDATA_BLOCKED_ROWS_H

#include "storage/off.h"
#include "utils/rel.h"
#include "utils/snapshot.h"

#include "nhs_set.h"
#include "set_cache.h"

/*
 * A table's blocked rows: the line pointers, page by page, of the tuples
 * whose NHS number (column attno) set s holds, among the tuples the rule of
 * blocked_rows.c answers for.  Page b's are offsets[first[b] ..
 * first[b + 1] - 1], for b < nblocks; a page at or past nblocks has none
 * the rule answers for.
 */
typedef struct BlockedRows
{
	BlockNumber nblocks;		/* the pages read */
	uint32	   *first;			/* nblocks + 1 entries */
	OffsetNumber *offsets;
} BlockedRows;

/*
 * The blocked rows of rel (its NHS number column attno, nblocks pages) as
 * set s (whose probe arrays are full) answers, for the rows whose raw xmin
 * is a normal transaction id preceding *horizon, for a sequential scan
 * under snapshot snap now starting; NULL when there are none (yet): then
 * every row is tested against full.  *pages is set to the counter the scan
 * adds each page it tests to (NULL: none).
 */
extern const BlockedRows *blocked_rows_for_scan(BlockedSet *s, const NhsSet *full,
												Relation rel, AttrNumber attno,
												Snapshot snap, BlockNumber nblocks,
												TransactionId *horizon, uint64 **pages);

/* is a tuple with this raw xmin one the blocked rows answer for? */
static inline bool
blocked_rows_cover(TransactionId xmin, TransactionId horizon)
{
	/* TransactionIdIsNormal(xmin) && TransactionIdPrecedes(xmin, horizon) */
	return xmin >= FirstNormalTransactionId && (int32) (xmin - horizon) < 0;
}

extern void blocked_rows_init(void);

#endif							/* CAREDATA_BLOCKED_ROWS_H */
