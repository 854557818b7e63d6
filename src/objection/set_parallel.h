/*-------------------------------------------------------------------------
 *
 * set_parallel.h
 *		Handing a blocked NHS number set from a query's leader to its
 *		parallel workers (src/objection/set_parallel.c).
 *
 * src/objection/set_parallel.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SET_PARALLEL_H
#define CAREDATA_SET_PARALLEL_H

#include "set_segment.h"

extern void parallel_set_init(void);
extern void parallel_set_export(const SetKey *key, const NhsSet *set);
extern NhsSet *parallel_set_import(MemoryContext cxt, Oid reg, int64 version, const char *purpose,
								   const char *dataset, TimestampTz at,
								   TimestampTz *lo, TimestampTz *hi);
extern uint64 parallel_set_imports(void);

#endif							/* CAREDATA_SET_PARALLEL_H */
