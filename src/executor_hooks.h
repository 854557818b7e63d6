/*-------------------------------------------------------------------------
 *
 * executor_hooks.h
 *		caredata's executor hooks, in one place.
 *
 * src/executor_hooks.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_EXECUTOR_HOOKS_H
#define CAREDATA_EXECUTOR_HOOKS_H

extern void executor_hooks_init(void);

#endif							/* CAREDATA_EXECUTOR_HOOKS_H */
