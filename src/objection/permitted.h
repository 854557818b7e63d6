/*-------------------------------------------------------------------------
 *
 * permitted.h
 *		The objection filter's entry points (src/objection/permitted.c):
 *		permitted(), row_permitted() and what the layer above (plan.c,
 *		explain_guard.c, protection.c) asks of a call site.
 *
 * One place says what a filter call is: objection_filter_oid() for a plan's
 * FuncExpr (OIDs looked up once), objection_filter_fmgr() for an executor
 * step.
 *
 * src/objection/permitted.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_PERMITTED_H
#define CAREDATA_PERMITTED_H

#include "fmgr.h"

#include "register.h"
#include "scan_lookahead.h"

extern Datum permitted(PG_FUNCTION_ARGS);
extern Datum row_permitted(PG_FUNCTION_ARGS);

/* caredata's functions a filter is made of, as a plan names them */
typedef enum FilterFunction
{
	FILTER_FN_OTHER = 0,		/* not one of them */
	FILTER_FN_PERMITTED,		/* caredata.permitted(), either form */
	FILTER_FN_ROW_PERMITTED,	/* caredata.row_permitted(), either form */
	FILTER_FN_MY_NHS_NUMBER		/* caredata.my_nhs_number() */
} FilterFunction;

extern FilterFunction objection_filter_function(Oid funcid);
extern void objection_filter_functions_init(void);

/* is this function, by OID (a plan's FuncExpr), a filter call? */
static inline bool
objection_filter_oid(Oid funcid)
{
	FilterFunction f = objection_filter_function(funcid);

	return f == FILTER_FN_PERMITTED || f == FILTER_FN_ROW_PERMITTED;
}

/* ... by its FmgrInfo (an executor step)? */
static inline bool
objection_filter_fmgr(const FmgrInfo *finfo)
{
	return finfo->fn_addr == permitted || finfo->fn_addr == row_permitted;
}

/* the call site's read-ahead state, for scan_lookahead_attach() */
extern ScanLookahead *permitted_lookahead(FmgrInfo *flinfo);
extern void permitted_prepare_parallel(FmgrInfo *flinfo);
extern bool permitted_bind_column(FmgrInfo *flinfo, Oid relid, AttrNumber attno);

#endif							/* CAREDATA_PERMITTED_H */
