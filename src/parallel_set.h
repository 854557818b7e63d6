/*-------------------------------------------------------------------------
 *
 * parallel_set.h
 *		Handing a blocked NHS number set from a query's leader to its
 *		parallel workers (src/parallel_set.c).
 *
 * src/parallel_set.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_PARALLEL_SET_H
#define CAREDATA_PARALLEL_SET_H

#include "utils/timestamp.h"

#include "nhs_set.h"

/*
 * What a set answers for: a register (one installation of the extension:
 * the OID of its caredata.register_version, src/blocked_set.h) at a
 * version, a purpose, dataset and times.
 */
typedef struct ParallelSetKey
{
	Oid			reg;
	int64		version;
	const char *purpose;
	const char *dataset;		/* NULL: none */
	TimestampTz lo;				/* valid for lo <= at < hi */
	TimestampTz hi;
} ParallelSetKey;

#include "storage/dsm.h"

/*
 * The same key as stored in shared memory, in a segment's header and in
 * the shared registry (shared_set.c): fixed-size text, no pointers.
 */
#define SET_KEY_TEXT_MAX	128

typedef struct StoredSetKey
{
	Oid			reg;
	int64		version;
	char		purpose[SET_KEY_TEXT_MAX];
	bool		has_dataset;
	char		dataset[SET_KEY_TEXT_MAX];
	TimestampTz lo;
	TimestampTz hi;
} StoredSetKey;

extern bool stored_key_set(StoredSetKey *dst, const ParallelSetKey *key);
extern bool stored_key_names(const StoredSetKey *k, Oid reg, int64 version, const char *purpose, const char *dataset);

extern void parallel_set_init(void);
extern dsm_segment *set_segment_create(const ParallelSetKey *key, const NhsSet *set);
extern NhsSet *set_segment_read(dsm_segment *seg, MemoryContext cxt, Oid reg, int64 version, const char *purpose,
								const char *dataset, TimestampTz at, TimestampTz *lo, TimestampTz *hi);
extern void set_segment_size(dsm_segment *seg, uint64 *nkeys, uint64 *bytes);
extern void parallel_set_export(const ParallelSetKey *key, const NhsSet *set);
extern NhsSet *parallel_set_import(MemoryContext cxt, Oid reg, int64 version, const char *purpose,
								   const char *dataset, TimestampTz at,
								   TimestampTz *lo, TimestampTz *hi);

#endif							/* CAREDATA_PARALLEL_SET_H */
