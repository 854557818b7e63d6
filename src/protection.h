/*-------------------------------------------------------------------------
 *
 * protection.h
 *		A protected table's filter held in force (src/protection.c): the
 *		DDL guard, the fail-closed check of plans and COPY, the state report.
 *
 * src/protection.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_PROTECTION_H
#define CAREDATA_PROTECTION_H

#include "nodes/plannodes.h"

/* _PG_init: the relcache callback and the COPY check */
extern void protection_init(void);

/* after ExecutorStart: refuse a plan reading a protected table not in force */
extern void protection_check_plan(PlannedStmt *stmt);

#endif							/* CAREDATA_PROTECTION_H */
