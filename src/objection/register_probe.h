/*-------------------------------------------------------------------------
 *
 * register_probe.h
 *		permitted() for a time that changes row by row: one number at a
 *		time, through the register's index (src/objection/register_probe.c).
 *
 * src/objection/register_probe.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_REGISTER_PROBE_H
#define CAREDATA_REGISTER_PROBE_H

#include "access/skey.h"
#include "fmgr.h"
#include "utils/timestamp.h"

#include "register.h"

typedef struct Span
{
	char		kind[32];
	TimestampTz from;
	bool		open;			/* no end (expires_at and revoked_at NULL) */
	TimestampTz to;				/* the end, when not open; may be 'infinity'
								 * (DT_NOEND), which is not open */
} Span;

typedef struct Probe
{
	char		purpose[PURPOSE_MAX];
	char	   *dataset;
	Oid			owner;			/* the register's owner (set up as it) */
	Oid			heap;			/* caredata.objection */
	Oid			index;			/* ... its index on nhs_number */
	RegProcedure eq;			/* nhs_number = nhs_number */
	ScanKeyData key;			/* ... as a scan key, its function looked up
								 * once (fmgr_info per row was a fifth of a
								 * call: a C function's library found by name) */
	AttrNumber	att_kind,
				att_purposes,
				att_study,
				att_from,
				att_to;
	int			nexempt;
	Span	   *exempt;			/* kind: the objection kind exempted */
} Probe;

extern bool probe_time_varies(FmgrInfo *flinfo);
extern void probe_setup(Probe *pr, MemoryContext cxt);
extern bool probe_blocked(const Probe *pr, int64 key, TimestampTz at);

#endif							/* CAREDATA_REGISTER_PROBE_H */
