/*-------------------------------------------------------------------------
 *
 * explain_guard.h
 *		Clears EXPLAIN ANALYZE's counts of rows the objection filter hid.
 *
 * src/explain_guard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_EXPLAIN_GUARD_H
#define CAREDATA_EXPLAIN_GUARD_H

#include "executor/execdesc.h"

extern void explain_guard_hide(QueryDesc *queryDesc);

#endif							/* CAREDATA_EXPLAIN_GUARD_H */
