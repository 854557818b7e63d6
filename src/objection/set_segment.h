/*-------------------------------------------------------------------------
 *
 * set_segment.h
 *		A blocked NHS number set in a dynamic shared memory segment
 *		(src/objection/set_segment.c), and the key a set answers for.
 *
 * src/objection/set_segment.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SET_SEGMENT_H
#define CAREDATA_SET_SEGMENT_H

#include "storage/dsm.h"
#include "utils/timestamp.h"

#include "nhs_set.h"

/*
 * What a set answers for: a register (one installation of the extension:
 * the OID of its caredata.register_version, register.h) at a version, a
 * purpose, dataset and times.
 */
typedef struct SetKey
{
	Oid			reg;
	int64		version;
	const char *purpose;
	const char *dataset;		/* NULL: none */
	TimestampTz lo;				/* valid for lo <= at < hi */
	TimestampTz hi;
} SetKey;

/*
 * The same key as stored in shared memory, in a segment's header and in
 * the shared registry (set_shared.c): fixed-size text, no pointers.
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

extern bool stored_key_set(StoredSetKey *dst, const SetKey *key);
extern bool stored_key_names(const StoredSetKey *k, Oid reg, int64 version, const char *purpose, const char *dataset);

extern dsm_segment *set_segment_create(const SetKey *key, const NhsSet *set);
extern NhsSet *set_segment_read(dsm_segment *seg, MemoryContext cxt, Oid reg, int64 version, const char *purpose,
								const char *dataset, TimestampTz at, TimestampTz *lo, TimestampTz *hi);
extern void set_segment_size(dsm_segment *seg, uint64 *nkeys, uint64 *bytes);

#endif							/* CAREDATA_SET_SEGMENT_H */
