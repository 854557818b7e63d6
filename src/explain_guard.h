/*-------------------------------------------------------------------------
 *
 * explain_guard.h
 *		Installs the executor hook of src/explain_guard.c.
 *
 * src/explain_guard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_EXPLAIN_GUARD_H
#define CAREDATA_EXPLAIN_GUARD_H

extern void explain_guard_init(void);

#endif							/* CAREDATA_EXPLAIN_GUARD_H */
