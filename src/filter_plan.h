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

#endif							/* CAREDATA_FILTER_PLAN_H */
