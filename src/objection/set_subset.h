/*-------------------------------------------------------------------------
 *
 * set_subset.h
 *		A blocked set's members that occur in one table, for the
 *		sequential scans of that table (src/objection/set_subset.c).
 *
 * src/objection/set_subset.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SET_SUBSET_H
#define CAREDATA_SET_SUBSET_H

#include "utils/rel.h"
#include "utils/snapshot.h"

#include "nhs_set.h"
#include "set_cache.h"

/*
 * The subset of set s (whose probe arrays are full) to test the rows of rel
 * (its NHS number column attno, nblocks pages) whose raw xmin is a normal
 * transaction id preceding *horizon, for a sequential scan under snapshot
 * snap now starting; NULL when there is none (yet): then every row is
 * tested against full.  *pages is set to the counter the scan adds each
 * page it tests to (NULL: none).
 */
extern const NhsSet *set_subset_for_scan(BlockedSet *s, const NhsSet *full, Relation rel,
										 AttrNumber attno, Snapshot snap,
										 BlockNumber nblocks, TransactionId *horizon,
										 uint64 **pages);

/* is a tuple with this raw xmin one the subset answers for? */
static inline bool
set_subset_covers(TransactionId xmin, TransactionId horizon)
{
	/* TransactionIdIsNormal(xmin) && TransactionIdPrecedes(xmin, horizon) */
	return xmin >= FirstNormalTransactionId && (int32) (xmin - horizon) < 0;
}

extern void set_subset_init(void);

#endif							/* CAREDATA_SET_SUBSET_H */
