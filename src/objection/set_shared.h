/*-------------------------------------------------------------------------
 *
 * set_shared.h
 *		One blocked NHS number set for every backend, in a registry in
 *		shared memory (src/objection/set_shared.c; needs preloading).
 *
 * src/objection/set_shared.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SET_SHARED_H
#define CAREDATA_SET_SHARED_H

#include "set_segment.h"

extern void shared_set_shmem_request(void);
extern void shared_set_shmem_startup(void);
extern bool shared_set_available(void);
extern NhsSet *shared_set_find(MemoryContext cxt, Oid reg, int64 version, const char *purpose,
							   const char *dataset, TimestampTz at,
							   TimestampTz *lo, TimestampTz *hi);
extern bool shared_set_has(const SetKey *key);
extern void shared_set_publish(const SetKey *key, const NhsSet *set);

#endif							/* CAREDATA_SET_SHARED_H */
