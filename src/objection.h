/*-------------------------------------------------------------------------
 *
 * objection.h
 *		The objection filter's functions, for the executor hooks.
 *
 * src/objection.c answers permitted() and row_permitted(); the hooks
 * (filter_plan.c, after ExecutorStart, explain_guard.c's ExecutorFinish) find
 * its calls in plans, bind them to the columns they filter and prepare
 * their sets.  One place says what a filter call is, for both.
 *
 * src/objection.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_OBJECTION_H
#define CAREDATA_OBJECTION_H

#include "fmgr.h"

#include "scan_lookahead.h"

/* the longest purpose name, and one more */
#define PURPOSE_MAX			64

extern Datum permitted(PG_FUNCTION_ARGS);
extern Datum row_permitted(PG_FUNCTION_ARGS);

/* is this function, by OID (a plan's FuncExpr), a filter call? */
extern bool objection_filter_oid(Oid funcid);

/* ... by its FmgrInfo (an executor step)? */
static inline bool
objection_filter_fmgr(const FmgrInfo *finfo)
{
	return finfo->fn_addr == permitted || finfo->fn_addr == row_permitted;
}

extern ScanLookahead *permitted_lookahead(FmgrInfo *flinfo);
extern void permitted_prepare_parallel(FmgrInfo *flinfo);
extern bool permitted_bind_column(FmgrInfo *flinfo, Oid relid, AttrNumber attno);

#endif							/* CAREDATA_OBJECTION_H */
