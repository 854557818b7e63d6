/*-------------------------------------------------------------------------
 *
 * set_cache.h
 *		The sets of blocked NHS numbers a backend keeps
 *		(src/objection/set_cache.c).
 *
 * src/objection/set_cache.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SET_CACHE_H
#define CAREDATA_SET_CACHE_H

#include "datatype/timestamp.h"

#include "nhs_set.h"
#include "register.h"
#include "set_segment.h"

/* a set of blocked NHS numbers valid for one key and time interval */
typedef struct BlockedSet
{
	Oid			reg;			/* register it was built from (its identity) */
	int64		version;		/* ... and version */
	char		purpose[PURPOSE_MAX];
	char	   *dataset;		/* NULL: none */
	TimestampTz lo;				/* valid for lo <= at < hi */
	TimestampTz hi;
	NhsSet	   *members;		/* the blocked NHS numbers */
	bool		shared;			/* members maps another backend's segment */
	NhsSet	   *local;			/* NULL, or members copied here (huge pages) */
	uint64		scanned;		/* bytes of tables scanned with it here */
	void	   *blocked_rows;	/* NULL, or its tables' blocked rows (blocked_rows.c) */
	uint64		last_used;
	MemoryContext cxt;			/* under TopMemoryContext: the set's own */
} BlockedSet;

/*
 * The set for (purpose, dataset) at time at, from register reg at version:
 * this backend's, a parallel leader's, another backend's, or built now.
 */
/* the key a set answers for, to hand it over (key's texts point into s) */
static inline void
blocked_set_key(const BlockedSet *s, SetKey *key)
{
	key->reg = s->reg;
	key->version = s->version;
	key->purpose = s->purpose;
	key->dataset = s->dataset;
	key->lo = s->lo;
	key->hi = s->hi;
}

extern BlockedSet *blocked_set_find(Oid reg, int64 version, const char *purpose, const char *dataset, TimestampTz at);

/*
 * The set to probe for a sequential scan: members, or, for a shared set
 * this backend has scanned enough table with, its own copy of it
 * (set_cache.c).  blocked_set_count_scan() counts a scan of rel_bytes,
 * once per scan.
 */
extern void blocked_set_count_scan(BlockedSet *s, uint64 rel_bytes);
extern const NhsSet *blocked_set_for_scan(BlockedSet *s);
extern bool blocked_set_local_enabled;
extern void blocked_set_init(void);

/* free cxt at the end of the transaction (memory a query may still hold) */
extern void blocked_set_free_at_xact_end(MemoryContext cxt);

/* offer s to every backend (set_shared.c), when it may be */
extern void blocked_set_share(const BlockedSet *s);

#endif							/* CAREDATA_SET_CACHE_H */
