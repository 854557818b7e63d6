/*-------------------------------------------------------------------------
 *
 * objection.h
 *		The objection filter as the rest of the library sees it: what
 *		src/hooks.c calls from the executor and utility hooks, and what
 *		_PG_init sets up.
 *
 * Inside src/objection/, calls go one way, down these layers:
 *
 *	plan.c, qual_eval.c,		the hooks' work: bind a plan's filter calls,
 *	explain_guard.c,			answer a scan's filter without a call, hide
 *	protection*.c				EXPLAIN's counts, hold protect()'s promise
 *	permitted.c					the entry points: permitted(), row_permitted()
 *	bound_calls.c, scan_lookahead.c   a plan's bound calls; the read-ahead
 *	set_cache.c					this backend's blocked sets (backend memory)
 *	set_shared.c				one set for every backend, parallel workers
 *								included (pinned DSM segments)
 *	set_segment.c, nhs_set.c	a set in a segment; the set itself
 *	register.c, register_probe.c	the register: owner, identity, version;
 *								one number at a time through its index
 *
 * src/objection/objection.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_OBJECTION_H
#define CAREDATA_OBJECTION_H

#include "executor/execdesc.h"
#include "nodes/plannodes.h"

/* _PG_init: settings, caches and the segments' transaction callback (init.c) */
extern void objection_init(void);

/* shmem_request_hook and shmem_startup_hook: the shared sets' registry */
extern void shared_set_shmem_request(void);
extern void shared_set_shmem_startup(void);

/* after ExecutorStart: bind, read ahead and hand over each filter call */
extern void filter_plan_prepare(QueryDesc *queryDesc);

/*
 * After ExecutorStart, EXPLAIN included, and before COPY ... TO: refuse a
 * statement that reads a protected table whose filter is not in force
 */
extern void protection_check_plan(PlannedStmt *stmt);
extern void protection_check_utility(PlannedStmt *pstmt);

/* after ExecutorFinish: clear EXPLAIN ANALYZE's counts of hidden rows */
extern void explain_guard_hide(QueryDesc *queryDesc);

#endif							/* CAREDATA_OBJECTION_H */
