/*-------------------------------------------------------------------------
 *
 * bound_calls.h
 *		The filter calls running plans have bound, by plan node
 *		(src/objection/bound_calls.c).
 *
 * src/objection/bound_calls.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_BOUND_CALLS_H
#define CAREDATA_BOUND_CALLS_H

#include "nodes/execnodes.h"

/* plan.c, after ExecutorStart: a call of this query's plan is bound */
extern void bound_calls_remember(EState *estate, Node *call);

/* permitted.c: is call the plan node of a call a running plan has bound? */
extern bool bound_calls_contains(const Node *call);

#endif							/* CAREDATA_BOUND_CALLS_H */
