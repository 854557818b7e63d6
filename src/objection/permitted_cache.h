/*-------------------------------------------------------------------------
 *
 * permitted_cache.h
 *		A permitted() call site's state (fn_extra, in the query's memory)
 *		and the per-row fast path that reads it: shared by permitted.c,
 *		which owns and fills the state, and qual_eval.c, which answers a
 *		sequential scan's filter from it without a function call.
 *
 * Only permitted.c writes these structures, except the read-ahead's own
 * state (lookahead), which every answer moves on (scan_lookahead.h);
 * qual_eval.c reaches them through permitted_fast_answer() alone, so the
 * one test of whether a row can be answered without permitted_slow() is
 * written once, here.
 *
 * src/objection/permitted_cache.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_PERMITTED_CACHE_H
#define CAREDATA_PERMITTED_CACHE_H

#include "datatype/timestamp.h"

#include "nhs_set.h"
#include "register.h"
#include "scan_lookahead.h"
#include "set_cache.h"

/*
 * What the querying role is, once looked up: a patient (a member of
 * caredata_patient, or a role with a caredata.subject_access row), and if
 * so their NHS number; a grantee (a member of caredata_grantee); and, for
 * the protected table a row_permitted() call site filters, the NHS
 * numbers of the patients who share their rows of it with the role now
 * (src/objection/patient_share.sql: a grant in force at the statement's
 * start, opened in this session by a committed, audited
 * caredata.open_shared_records()).
 */
typedef struct SubjectCache
{
	bool		known;
	Oid			role;
	bool		patient;
	bool		restricted;		/* a patient or a grantee: sees no row
								 * permitted() alone would let through */
	bool		found;			/* value is the patient's NHS number */
	int64		value;
	Oid			relid;			/* the table filtered (bound call sites) */
	MemoryContext mcxt;			/* the call site's, for granted */
	int			ngranted;		/* granted[]: sorted NHS numbers shared */
	int64	   *granted;
} SubjectCache;

/*
 * Per call site state: the set this query uses.  Valid for the whole query
 * (fn_extra lives in the query's memory), which is what makes the answer
 * snapshot-consistent even if the cache is rebuilt meanwhile.
 */
typedef struct PermittedCache
{
	/* the per-row fast path reads these, and lookahead */
	Datum		fast_purpose;	/* two-argument form: the purpose datum */
	bool		empty;			/* members is empty */
	const NhsSet *members;		/* set->members */

	BlockedSet *set;
	NhsSet		no_bloom;		/* set->members without its Bloom layer */
	Oid			reg;			/* the register's identity (register.h) */
	int64		version;
	TimestampTz at;
	bool		const_args;		/* purpose and dataset are constants of the plan */
	Pointer		last_purpose;	/* ... whose datums keep their pointers: the */
	Pointer		last_dataset;	/* ones last seen, when const_args */
	char		purpose[PURPOSE_MAX];
	char	   *dataset;
	bool		has_dataset;
	bool		version_read;
	SubjectCache own;			/* row_permitted(): the role's own number */
	ScanLookahead lookahead;	/* set up by scan_lookahead.c, if at all */
	BlockedSet *rows_of;		/* the set lookahead.rows was asked for */
	bool		scan_sized;		/* scan_bytes is known: */
	uint64		scan_bytes;		/* the size of the table lookahead scans */
	bool		bound;			/* the first argument is a protected column of
								 * the scan it filters (permitted_bind_column) */
	bool		time_checked;	/* time_varies is known */
	bool		time_varies;	/* the time argument is a column (row by row) */
	struct Probe *probe;		/* ... and its register probe, then */
} PermittedCache;

/*
 * The per-row fast path of permitted() and row_permitted(): 1 if the row
 * with NHS number key (not NULL) is permitted, 0 if not, -1 if only
 * permitted_slow() can say.  purpose is the call's second argument as
 * passed (not NULL).
 *
 * The purpose is the same constant as on the last row, so the set is the
 * one already found (the two-argument form's time, the transaction start,
 * cannot change within the query that owns this cache), and the set is
 * empty or the scan's page pass has found the row's number absent; for
 * row_permitted(), the querying role is known not to be a patient or a
 * grantee and nothing is shared with it.
 */
static pg_attribute_always_inline int
permitted_fast_answer(PermittedCache *c, Datum purpose, int64 key, bool own_rows)
{
	int			in_set;

	if (unlikely(c == NULL || c->fast_purpose != purpose))
		return -1;
	if (own_rows && !(c->own.known && !c->own.restricted && c->own.ngranted == 0))
		return -1;
	if (c->empty)
		return 1;
	in_set = scan_lookahead_answer(&c->lookahead, c->members, key);
	if (likely(in_set >= 0))
		return in_set == 0 ? 1 : 0;
	return -1;
}

#endif							/* CAREDATA_PERMITTED_CACHE_H */
