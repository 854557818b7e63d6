/*-------------------------------------------------------------------------
 *
 * shared_set.h
 *		One blocked NHS number set for every backend (with preloading).
 *
 * src/shared_set.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SHARED_SET_H
#define CAREDATA_SHARED_SET_H

#include "parallel_set.h"

extern void shared_set_init(void);
extern bool shared_set_available(void);
extern NhsSet *shared_set_find(MemoryContext cxt, Oid reg, int64 version, const char *purpose,
							   const char *dataset, TimestampTz at,
							   TimestampTz *lo, TimestampTz *hi);
extern void shared_set_publish(const ParallelSetKey *key, const NhsSet *set);

#endif							/* CAREDATA_SHARED_SET_H */
