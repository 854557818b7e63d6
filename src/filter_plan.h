/*-------------------------------------------------------------------------
 *
 * filter_plan.h
 *		The objection filter's calls in a plan (src/filter_plan.c).
 *
 * src/filter_plan.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_FILTER_PLAN_H
#define CAREDATA_FILTER_PLAN_H

#include "executor/execdesc.h"

/* after ExecutorStart: bind, read ahead and hand over each filter call */
extern void filter_plan_prepare(QueryDesc *queryDesc);

/* a filter call's plan node that a running plan has bound (EvalPlanQual) */
extern bool filter_plan_bound_call(const Node *call);

#endif							/* CAREDATA_FILTER_PLAN_H */
