/*-------------------------------------------------------------------------
 *
 * permitted.c
 *		permitted(): is a patient's data usable for a purpose at a time?
 *
 * Owns the fast path of the objection filter.  What counts as "blocked" is
 * decided in SQL (caredata.blocked_nhs_numbers in objection/register.sql,
 * readable by a DBA); the sets of blocked numbers a backend keeps are
 * set_cache.c's.  This file answers a call: it checks the arguments,
 * binds the call site to its set (the register version is read once per
 * query and call site under the query's snapshot, so objections registered
 * after a query starts never change its answer), answers patients for
 * their own rows only, refuses calls not bound to a protected column
 * (plan.c binds them, bound_calls.c remembers them), and per row costs a
 * probe of the set, not an index probe (with the read-ahead of
 * scan_lookahead.c, or the register probe of register_probe.c for a time
 * that varies by row).  The call site's state and the per-row fast test
 * are in permitted_cache.h, where qual_eval.c reads them to answer a
 * sequential scan's filter without calling this function; only this file
 * writes them.
 *
 * The layer of the entry points: hooks.c and plan.c call down into it; it
 * calls down into the read-ahead, the blocked sets and the register, never
 * back up.
 *
 * src/objection/permitted.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/parallel.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "nodes/params.h"
#include "storage/proc.h"
#include "optimizer/optimizer.h"
#include "rewrite/rowsecurity.h"
#include "storage/bufmgr.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/catcache.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "base/admin.h"
#include "base/pg_compat.h"
#include "base/preload.h"
#include "identifiers/identifiers.h"

#include "bound_calls.h"
#include "permitted.h"
#include "permitted_cache.h"
#include "register_probe.h"
#include "scan_lookahead.h"
#include "blocked_rows.h"
#include "set_cache.h"


static PermittedCache *
permitted_cache(FmgrInfo *flinfo)
{
	if (flinfo->fn_extra == NULL)
	{
		PermittedCache *c = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(PermittedCache));

		c->own.mcxt = flinfo->fn_mcxt;
		flinfo->fn_extra = c;
	}
	return (PermittedCache *) flinfo->fn_extra;
}

/*
 * caredata's filter functions by OID, looked up once and again only after
 * pg_proc changes (a syscache invalidation: CREATE/DROP EXTENSION, say),
 * not by name and schema for every FuncExpr a plan walk meets.
 */
#define FILTER_OIDS_MAX		8

static bool filter_oids_valid = false;
static int	filter_noids = 0;
static Oid	filter_oids[FILTER_OIDS_MAX];
static FilterFunction filter_kinds[FILTER_OIDS_MAX];

static void
filter_oids_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	filter_oids_valid = false;
}

static void
filter_oids_load(void)
{
	static const struct
	{
		const char *name;
		FilterFunction kind;
	}			names[] = {
		{"permitted", FILTER_FN_PERMITTED},
		{"row_permitted", FILTER_FN_ROW_PERMITTED},
		{"my_nhs_number", FILTER_FN_MY_NHS_NUMBER}
	};
	Oid			nsp = get_namespace_oid("caredata", true);

	filter_noids = 0;
	for (int n = 0; OidIsValid(nsp) && n < (int) lengthof(names); n++)
	{
		CatCList   *list = SearchSysCacheList1(PROCNAMEARGSNSP, CStringGetDatum(names[n].name));

		for (int i = 0; i < list->n_members; i++)
		{
			Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(&list->members[i]->tuple);

			if (proc->pronamespace == nsp && filter_noids < FILTER_OIDS_MAX)
			{
				filter_oids[filter_noids] = proc->oid;
				filter_kinds[filter_noids++] = names[n].kind;
			}
		}
		ReleaseSysCacheList(list);
	}
	filter_oids_valid = true;
}

/* which of caredata's filter functions funcid is, if any */
FilterFunction
objection_filter_function(Oid funcid)
{
	if (!filter_oids_valid)
		filter_oids_load();
	for (int i = 0; i < filter_noids; i++)
		if (filter_oids[i] == funcid)
			return filter_kinds[i];
	return FILTER_FN_OTHER;
}

/* at _PG_init: forget the OIDs whenever pg_proc changes */
void
objection_filter_functions_init(void)
{
	CacheRegisterSyscacheCallback(PROCOID, filter_oids_invalidate, (Datum) 0);
}

/* the read-ahead state for this call site's scan (scan_lookahead.c) */
ScanLookahead *
permitted_lookahead(FmgrInfo *flinfo)
{
	return &permitted_cache(flinfo)->lookahead;
}

/*
 * On Citus: is relid a table protect() filtered on the coordinator as a
 * distributed table (its shell table on this node, or one of its shards),
 * or a placement of caredata.pseudonym_map, and attno its NHS number
 * column?  caredata.distributed_filter names the
 * tables (OIDs differ from node to node); _logical_relation() maps a shard
 * to its table through Citus's metadata.
 */
static bool
is_distributed_filter_column(Oid relid, AttrNumber attno)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	char	   *logical;
	char	   *column = NULL;
	char	   *attname;
	bool		found = false;
	bool		is_stored_pseudonyms;

	if (!OidIsValid(get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE)))
		return false;
	values[0] = ObjectIdGetDatum(relid);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT caredata._logical_relation($1::pg_catalog.regclass)",
							  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not map a relation to its distributed table");
	logical = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	is_stored_pseudonyms = logical != NULL && strcmp(logical, "caredata.pseudonym_map") == 0;
	if (is_stored_pseudonyms)
		column = "nhs_number";	/* a placement of the stored pseudonyms */
	else if (logical != NULL)
	{
		Oid			targtypes[1] = {TEXTOID};
		Datum		tvalues[1];

		tvalues[0] = CStringGetTextDatum(logical);
		if (SPI_execute_with_args("SELECT nhs_column::pg_catalog.text FROM caredata.distributed_filter "
								  "WHERE relation OPERATOR(pg_catalog.=) $1",
								  1, targtypes, tvalues, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read caredata.distributed_filter");
		if (SPI_processed == 1)
			column = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	}
	attname = get_attname(relid, attno, true);
	found = column != NULL && attname != NULL && strcmp(column, attname) == 0;
	SPI_finish();
	/* and a filtered table carries protect()'s policy */
	if (found && !is_stored_pseudonyms)
	{
		Relation	rel = RelationIdGetRelation(relid);
		ListCell   *lc;

		found = false;
		if (rel != NULL && rel->rd_rsdesc != NULL)
			foreach(lc, rel->rd_rsdesc->policies)
				if (strcmp(((RowSecurityPolicy *) lfirst(lc))->policy_name, "caredata_filter") == 0)
					found = true;
		if (rel != NULL)
			RelationClose(rel);
	}
	return found;
}

static bool
is_protected_column(Oid relid, AttrNumber attno)
{
	Oid			argtypes[2] = {OIDOID, INT2OID};
	Datum		values[2];
	bool		found = false;
	Oid			nsp = get_namespace_oid("caredata", true);

	if (!OidIsValid(relid) || attno <= 0)
		return false;
	if (OidIsValid(nsp) && relid == get_relname_relid("pseudonym_map", nsp))
		return attno == get_attnum(relid, "nhs_number");
	values[0] = ObjectIdGetDatum(relid);
	values[1] = Int16GetDatum(attno);
	AS_REGISTER_OWNER(
		{
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			if (SPI_execute_with_args("SELECT 1 FROM caredata.protected_table t "
									  "JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) t.relid AND a.attname OPERATOR(pg_catalog.=) t.nhs_column "
									  "WHERE t.relid OPERATOR(pg_catalog.=) $1 AND a.attnum OPERATOR(pg_catalog.=) $2",
									  2, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
				elog(ERROR, "could not read caredata.protected_table");
			found = SPI_processed > 0;
			SPI_finish();
			if (!found)
				found = is_distributed_filter_column(relid, attno);
		});
	return found;
}

/*
 * Which NHS numbers permitted() answers for.  Objection status is personal
 * data: a role free to pass numbers of its choosing would learn who has
 * objected, people in no table it may read included.  So, but for
 * superusers and caredata_admin (who read the register anyway), a call
 * answers only when its first argument is, in the running plan, the NHS
 * number column of a table the filter protects (or of caredata.pseudonym_map,
 * under a published view) in the very scan it filters: the row filters
 * protect() attaches and the views publish() makes.  plan.c binds such
 * calls after ExecutorStart; a constant, a parameter, a PL/pgSQL
 * variable, a temporary table, VALUES, a function's result, a CTE or a
 * computed column is never bound, and is refused.
 */
bool
permitted_bind_column(FmgrInfo *flinfo, Oid relid, AttrNumber attno)
{
	PermittedCache *c = permitted_cache(flinfo);

	/* a subplan the plan walk and the subplan list both reach: once */
	if (!c->bound && is_protected_column(relid, attno))
	{
		c->bound = true;
		c->own.relid = relid;	/* the table whose shared rows it answers for */
		c->own.known = false;
	}
	return c->bound;
}

static void
refuse_unbound(bool own_rows)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s() answers only for the NHS numbers of the protected table it filters", own_rows ? "row_permitted" : "permitted"),
			 errdetail("Whether a person has objected is personal data."),
			 errhint("It runs inside the row filters caredata.protect() attaches and the views caredata.publish() makes; members of caredata_admin may ask about any number.")));
}

static bool
cache_matches(PermittedCache *c, text *purpose, text *dataset, TimestampTz at)
{
	int			plen = VARSIZE_ANY_EXHDR(purpose);

	/*
	 * Constant arguments keep their pointers row after row; any other
	 * argument may be rebuilt at the same address with another value, so
	 * is compared by content.
	 */
	if (c->set != NULL && c->const_args && c->at == at &&
		c->last_purpose == (Pointer) purpose && c->last_dataset == (Pointer) dataset)
		return true;
	if (c->set == NULL || c->at != at || plen >= PURPOSE_MAX ||
		strncmp(c->purpose, VARDATA_ANY(purpose), plen) != 0 || c->purpose[plen] != '\0')
		return false;
	if (dataset == NULL)
		return !c->has_dataset;
	return c->has_dataset &&
		strlen(c->dataset) == (size_t) VARSIZE_ANY_EXHDR(dataset) &&
		strncmp(c->dataset, VARDATA_ANY(dataset), VARSIZE_ANY_EXHDR(dataset)) == 0;
}

/* the role's NHS number from caredata.subject_access (keyed by OID), read as owner */
static bool
lookup_subject(Oid role, int64 *value)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	bool		isnull = true;

	values[0] = ObjectIdGetDatum(role);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT nhs_number::pg_catalog.int8 FROM caredata.subject_access WHERE role::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "subject access lookup failed");
	if (SPI_processed == 1)
		*value = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return !isnull;
}

static int
compare_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * The NHS numbers of the patients sharing their rows of relid with role at
 * the statement's start (read as the register's owner): a grant from a
 * login that is still that patient (subject_access), may still read the
 * table itself, not revoked, not expired, covering the table or its
 * dataset, and opened in this session (the leader's, in a parallel
 * worker) by a transaction that committed: its audit entry is in the
 * log before the filter honours the grant.
 */
static void
load_granted(SubjectCache *sc, Oid role)
{
	Oid			argtypes[4] = {OIDOID, OIDOID, INT4OID, TIMESTAMPTZOID};
	Datum		values[4];
	PGPROC	   *leader = MyProc != NULL ? MyProc->lockGroupLeader : NULL;

	sc->ngranted = 0;
	/* (a database still at a version without grants: none) */
	if (!OidIsValid(sc->relid) || sc->mcxt == NULL ||
		!OidIsValid(get_relname_relid("patient_share_use", get_namespace_oid("caredata", false))))
		return;
	values[0] = ObjectIdGetDatum(role);
	values[1] = ObjectIdGetDatum(sc->relid);
	values[2] = Int32GetDatum(leader != NULL ? leader->pid : MyProcPid);
	values[3] = TimestampTzGetDatum(GetCurrentStatementStartTimestamp());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT s.nhs_number::pg_catalog.int8, u.xmin::pg_catalog.text "
							  "FROM caredata.patient_share g "
							  "JOIN caredata.subject_access s ON s.role::pg_catalog.oid OPERATOR(pg_catalog.=) g.grantor::pg_catalog.oid "
							  " AND s.nhs_number::pg_catalog.int8 OPERATOR(pg_catalog.=) g.nhs_number::pg_catalog.int8 "
							  "JOIN caredata.protected_table t ON t.relid::pg_catalog.oid OPERATOR(pg_catalog.=) $2 "
							  "JOIN caredata.patient_share_use u ON u.share_id OPERATOR(pg_catalog.=) g.id "
							  " AND u.backend_pid OPERATOR(pg_catalog.=) $3 "
							  "JOIN pg_catalog.pg_stat_get_activity($3) a ON a.backend_start OPERATOR(pg_catalog.=) u.backend_start "
							  "WHERE g.grantee::pg_catalog.oid OPERATOR(pg_catalog.=) $1 AND g.revoked_at IS NULL "
							  " AND g.granted_at OPERATOR(pg_catalog.<=) $4 AND g.expires_at OPERATOR(pg_catalog.>) $4 "
							  " AND (t.root::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (g.tables::pg_catalog.oid[]) "
							  "      OR t.dataset OPERATOR(pg_catalog.=) ANY (g.datasets)) "
							  " AND pg_catalog.has_table_privilege(g.grantor::pg_catalog.oid, t.root::pg_catalog.oid, 'SELECT')",
							  4, argtypes, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read caredata.patient_share");
	if (SPI_processed > 0)
	{
		int64	   *g = MemoryContextAlloc(sc->mcxt, sizeof(int64) * SPI_processed);
		int			n = 0;

		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			int64		v = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
			char	   *xmin = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

			/* opened by this very transaction: not committed, not yet audited */
			if (isnull || xmin == NULL ||
				TransactionIdIsCurrentTransactionId((TransactionId) strtoul(xmin, NULL, 10)))
				continue;
			g[n++] = v;
		}
		qsort(g, n, sizeof(int64), compare_int64);
		sc->granted = g;
		sc->ngranted = n;
	}
	SPI_finish();
}

/* is key shared with the role (load_granted) */
static bool
granted(SubjectCache *sc, int64 key)
{
	return sc->ngranted > 0 &&
		bsearch(&key, sc->granted, sc->ngranted, sizeof(int64), compare_int64) != NULL;
}

/*
 * The NHS number of the patient the current role is, looked up once per
 * cache and role; false when the role is not a patient.  With it, whether
 * the role is a patient or a grantee, and what is shared with it.
 */
static bool
subject_number(SubjectCache *sc, int64 *value)
{
	Oid			role = GetUserId();

	if (!sc->known || sc->role != role)
	{
		bool		found = false;
		int64		v = 0;
		Oid			patients = get_role_oid("caredata_patient", true);
		Oid			grantees = get_role_oid("caredata_grantee", true);

		AS_REGISTER_OWNER(
			{
				found = lookup_subject(role, &v);
				load_granted(sc, role);
			});
		sc->role = role;
		sc->found = found;
		sc->value = v;
		sc->patient = found ||
			(OidIsValid(patients) && is_member_of_role_nosuper(role, patients));
		sc->restricted = sc->patient ||
			(OidIsValid(grantees) && is_member_of_role_nosuper(role, grantees));
		sc->known = true;
	}
	*value = sc->value;
	return sc->found;
}

/*
 * row_permitted() for a patient or a grantee: the patient's own rows and
 * the rows shared with the role, nothing else.
 */
static bool
own_or_shared(SubjectCache *sc, int64 key)
{
	int64		own;
	bool		found = subject_number(sc, &own);

	return (found && own == key) || granted(sc, key);
}

/*
 * The answer for key.  row_permitted() as a patient: the patient's own
 * record, and nothing else, whatever the objections (a view or function
 * that reads the table as its owner cannot widen that, nor can a patient
 * learn anyone else's objection status); as a grantee, the records shared
 * with it.  Otherwise: shared with the role, or not in the blocked set (a
 * patient who shares lets the grantee see what they see themselves).
 */
static bool
answer(PermittedCache *c, int64 key, bool own_rows)
{
	if (own_rows)
	{
		int64		own;

		(void) subject_number(&c->own, &own);
		if (c->own.restricted)
			return own_or_shared(&c->own, key);
		if (granted(&c->own, key))
			return true;
	}
	return !scan_lookahead_contains(&c->lookahead, c->members, key);
}

/*
 * Is argument argno of this call a constant of the plan (a Const node)?
 * Not get_fn_expr_arg_stable(): it also accepts an external Param, whose
 * value a PL/pgSQL simple expression changes while its FmgrInfo lives on.
 */
static bool
const_arg(FmgrInfo *flinfo, int argno)
{
	Node	   *expr = flinfo->fn_expr;
	List	   *args;

	if (expr == NULL || !IsA(expr, FuncExpr))
		return false;
	args = ((FuncExpr *) expr)->args;
	return argno < list_length(args) && IsA(list_nth(args, argno), Const);
}

/*
 * Everything but the per-row fast path: check the arguments, find (or
 * build) the call site's set, and note the constant arguments the fast
 * path compares against.  Out of line, so the fast path stays short.
 */
static pg_noinline Datum
permitted_slow(FunctionCallInfo fcinfo, bool own_rows)
{
	PermittedCache *c = (PermittedCache *) fcinfo->flinfo->fn_extra;
	text	   *purpose;
	text	   *dataset = NULL;
	TimestampTz at;

	/*
	 * Every call site's first call comes here (the fast path needs the
	 * cache only this function fills), so the fast path needs no check of
	 * its own: whether the library was preloaded never changes within a
	 * backend.
	 */
	caredata_require_preload();

	/* the fast path's arguments, but an answer it could not give */
	if (c != NULL && c->fast_purpose != (Datum) 0 && c->fast_purpose == PG_GETARG_DATUM(1) &&
		!PG_ARGISNULL(1) && !PG_ARGISNULL(0))
		PG_RETURN_BOOL(answer(c, PG_GETARG_NHS_NUMBER(0), own_rows));

	/*
	 * Numbers of the caller's choosing: for the register's own admins only.
	 * A call site plan.c could not bind when the plan started may be
	 * EvalPlanQual's second copy of a bound one (a concurrent UPDATE,
	 * DELETE or SELECT ... FOR UPDATE rechecking a row): the same plan node.
	 */
	if ((c == NULL || !c->bound) && !caredata_acting_as_admin())
	{
		if (!bound_calls_contains(fcinfo->flinfo->fn_expr))
			refuse_unbound(own_rows);
		c = permitted_cache(fcinfo->flinfo);
		c->bound = true;
	}

	if (PG_ARGISNULL(1) || (PG_NARGS() > 2 && PG_ARGISNULL(2)))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s() needs a purpose and a time", own_rows ? "row_permitted" : "permitted")));
	if (PG_ARGISNULL(0))
	{
		/*
		 * No objection can be attached to an unknown patient, but a row
		 * without a number is nobody's own row: a patient sees none.
		 */
		if (own_rows)
		{
			int64		own;

			c = permitted_cache(fcinfo->flinfo);
			(void) subject_number(&c->own, &own);
			if (c->own.restricted)
				PG_RETURN_BOOL(false);
		}
		PG_RETURN_BOOL(true);
	}

	purpose = PG_GETARG_TEXT_PP(1);
	if (PG_NARGS() > 2)
	{
		at = PG_GETARG_TIMESTAMPTZ(2);
		dataset = PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3);
	}
	else
		at = GetCurrentTransactionStartTimestamp();

	/* a time that changes row by row: ask about this number (see time_varies) */
	c = permitted_cache(fcinfo->flinfo);
	if (!c->time_checked)
	{
		c->time_varies = PG_NARGS() > 2 && probe_time_varies(fcinfo->flinfo);
		c->time_checked = true;
	}
	if (c->time_varies)
	{
		int64		key = PG_GETARG_NHS_NUMBER(0);
		Probe	   *pr = c->probe;
		bool		blocked = false;

		if (own_rows)
		{
			int64		own;

			(void) subject_number(&c->own, &own);
			if (c->own.restricted)
				PG_RETURN_BOOL(own_or_shared(&c->own, key));
			if (granted(&c->own, key))
				PG_RETURN_BOOL(true);
		}
		/* set up once per call site and query, for its purpose and dataset */
		if (pr == NULL ||
			strncmp(pr->purpose, VARDATA_ANY(purpose), VARSIZE_ANY_EXHDR(purpose)) != 0 ||
			pr->purpose[VARSIZE_ANY_EXHDR(purpose)] != '\0' ||
			(dataset == NULL) != (pr->dataset == NULL) ||
			(dataset != NULL && (strlen(pr->dataset) != VARSIZE_ANY_EXHDR(dataset) ||
								 strncmp(pr->dataset, VARDATA_ANY(dataset), VARSIZE_ANY_EXHDR(dataset)) != 0)))
		{
			char	   *p = text_to_cstring(purpose);

			if (strlen(p) >= PURPOSE_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown purpose"),
						 errhint("Purposes are listed in caredata.purpose.")));
			pr = c->probe = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(Probe));
			strlcpy(pr->purpose, p, sizeof(pr->purpose));
			pr->dataset = dataset ? MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, text_to_cstring(dataset)) : NULL;
			AS_REGISTER_OWNER(probe_setup(pr, fcinfo->flinfo->fn_mcxt));
		}
		AS_REGISTER_OWNER_SCAN(pr->owner, blocked = probe_blocked(pr, key, at));
		PG_RETURN_BOOL(!blocked);
	}

	if (c->set == NULL || !cache_matches(c, purpose, dataset, at))
	{
		MemoryContext old;
		char	   *p = text_to_cstring(purpose);
		char	   *d = dataset ? text_to_cstring(dataset) : NULL;

		if (strlen(p) >= PURPOSE_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown purpose"),
					 errhint("Purposes are listed in caredata.purpose.")));
		c = permitted_cache(fcinfo->flinfo);
		if (!c->version_read)
		{
			c->version = register_version(&c->reg);
			c->version_read = true;
			c->const_args = const_arg(fcinfo->flinfo, 1) &&
				(PG_NARGS() == 2 || const_arg(fcinfo->flinfo, 3));
		}
		c->set = blocked_set_find(c->reg, c->version, p, d, at);
		c->at = at;
		strlcpy(c->purpose, p, sizeof(c->purpose));
		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		c->dataset = d ? pstrdup(d) : NULL;
		c->has_dataset = d != NULL;
		MemoryContextSwitchTo(old);
	}
	c->last_purpose = (Pointer) purpose;
	c->last_dataset = (Pointer) dataset;
	{
		const NhsSet *members = c->set->members;

		/*
		 * A sequential scan's call site: maybe this backend's own copy
		 * (set_cache.c), by the tables scanned with the set, this one
		 * counted once, at its size when the call site first asked.
		 */
		if (c->lookahead.scan != NULL && c->lookahead.scan->ss_currentRelation != NULL)
		{
			if (!c->scan_sized)
			{
				c->scan_bytes = (uint64) RelationGetNumberOfBlocks(c->lookahead.scan->ss_currentRelation) * BLCKSZ;
				c->scan_sized = true;
				blocked_set_count_scan(c->set, c->scan_bytes);
			}
			members = blocked_set_for_scan(c->set);

			/*
			 * ... and where the table's blocked rows are, for its older
			 * rows (blocked_rows.c), once per set the call site uses; not
			 * with the Bloom layer off (a measurement of it).
			 */
			if (c->rows_of != c->set)
			{
				c->rows_of = c->set;
				c->lookahead.rows = NULL;
				c->lookahead.pages = NULL;
				if (nhs_set_bloom_enabled)
					c->lookahead.rows =
						blocked_rows_for_scan(c->set, members, c->lookahead.scan->ss_currentRelation,
											c->lookahead.attno, c->lookahead.scan->ps.state->es_snapshot,
											(BlockNumber) (c->scan_bytes / BLCKSZ),
											&c->lookahead.horizon, &c->lookahead.pages);
				c->lookahead.ntuples = 0;
			}
		}

		/* caredata.bloom_filter off: the table alone, for measurement */
		if (!nhs_set_bloom_enabled)
		{
			if (c->no_bloom.slots != members->slots)
				nhs_set_without_bloom(&c->no_bloom, members);
			members = &c->no_bloom;
		}
		if (c->members != members)
			c->lookahead.ntuples = 0;	/* the page pass tested another set */
		c->members = members;
	}
	c->empty = c->members->nkeys == 0;
	/* the purpose argument, as passed (not detoasted), for the fast path */
	c->fast_purpose = (c->const_args && PG_NARGS() == 2 &&
					   purpose == (text *) DatumGetPointer(PG_GETARG_DATUM(1))) ?
		PG_GETARG_DATUM(1) : (Datum) 0;

	PG_RETURN_BOOL(answer(c, PG_GETARG_NHS_NUMBER(0), own_rows));
}

/*
 * permitted(nhs_number, purpose text [, at timestamptz, dataset text]), and
 * row_permitted() with the same arguments, which also lets through the
 * querying patient's own rows: the objection row filter protect() attaches.
 *
 * Not STRICT: NULL dataset means "no dataset".  NULL nhs_number is
 * permitted (no objection can be attached to an unknown patient), except
 * to a patient by row_permitted() (it is not the patient's own row); NULL
 * purpose or time is an error.  The two-argument form uses the
 * transaction's start time (now()) without evaluating now() per row.
 *
 * The per-row fast path: the purpose is the same constant as on the last
 * row, so the set is the one already found (the two-argument form's time,
 * the transaction start, cannot change within the query that owns this
 * cache), and the set is empty or the scan's page pass has found the row's
 * number absent; for row_permitted(), the querying role is known not to be
 * a patient.  That is decided at the call site's first row, for the role
 * running the query, as PostgreSQL decides which row security policies
 * apply when a query starts (a cursor fetched by another role keeps the
 * opener's filter, as it keeps the opener's policies).  Everything else,
 * permitted_slow().
 */
static pg_attribute_always_inline Datum
permitted_common(FunctionCallInfo fcinfo, bool own_rows)
{
	PermittedCache *c = (PermittedCache *) fcinfo->flinfo->fn_extra;

	if (likely(!PG_ARGISNULL(1) && !PG_ARGISNULL(0)))
	{
		int			answer = permitted_fast_answer(c, PG_GETARG_DATUM(1),
												   PG_GETARG_NHS_NUMBER(0), own_rows);

		if (likely(answer >= 0))
			PG_RETURN_BOOL(answer == 1);
	}
	return permitted_slow(fcinfo, own_rows);
}

PG_FUNCTION_INFO_V1(permitted);
Datum
permitted(PG_FUNCTION_ARGS)
{
	return permitted_common(fcinfo, false);
}

PG_FUNCTION_INFO_V1(row_permitted);
Datum
row_permitted(PG_FUNCTION_ARGS)
{
	return permitted_common(fcinfo, true);
}

/*
 * Before a parallel plan runs, in the leader: build (or find) the set a
 * permitted() call site will use and make sure the shared registry holds
 * it, where the plan's workers find it (set_cache.c, set_shared.c), when
 * its purpose, time and dataset are known already:
 * constants, or now() for the time.  Called after ExecutorStart
 * (src/hooks.c, filter_plan_prepare), under the query's
 * snapshot, so the register version
 * is the one the call site's first row will read.
 */
void
permitted_prepare_parallel(FmgrInfo *flinfo)
{
	FuncExpr   *f = (FuncExpr *) flinfo->fn_expr;
	Node	   *purpose_arg;
	char	   *purpose;
	char	   *dataset = NULL;
	TimestampTz at = GetCurrentTransactionStartTimestamp();
	BlockedSet *s;
	Oid			reg;
	int64		version;

	if (f == NULL || !IsA(f, FuncExpr) || !ActiveSnapshotSet())
		return;
	purpose_arg = lsecond(f->args);
	if (!IsA(purpose_arg, Const) || ((Const *) purpose_arg)->constisnull)
		return;
	if (list_length(f->args) == 4)
	{
		Node	   *at_arg = lthird(f->args);
		Node	   *dataset_arg = lfourth(f->args);

		if (IsA(at_arg, Const) && !((Const *) at_arg)->constisnull)
			at = DatumGetTimestampTz(((Const *) at_arg)->constvalue);
		else if (!(IsA(at_arg, FuncExpr) && ((FuncExpr *) at_arg)->funcid == F_NOW))
			return;
		if (!IsA(dataset_arg, Const))
			return;
		if (!((Const *) dataset_arg)->constisnull)
			dataset = TextDatumGetCString(((Const *) dataset_arg)->constvalue);
	}
	purpose = TextDatumGetCString(((Const *) purpose_arg)->constvalue);
	if (strlen(purpose) >= PURPOSE_MAX)
		return;

	version = register_version(&reg);
	s = blocked_set_find(reg, version, purpose, dataset, at);
	blocked_set_share(s);
}

/*
 * my_nhs_number(): the NHS number of the patient the current role is, for
 * subject-access row filters.  Cached per call site for the query.
 */
PG_FUNCTION_INFO_V1(my_nhs_number);
Datum
my_nhs_number(PG_FUNCTION_ARGS)
{
	int64		value;

	caredata_require_preload();
	if (fcinfo->flinfo->fn_extra == NULL)
		fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(SubjectCache));
	if (!subject_number((SubjectCache *) fcinfo->flinfo->fn_extra, &value))
		PG_RETURN_NULL();
	PG_RETURN_NHS_NUMBER(value);
}
