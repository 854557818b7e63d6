/*-------------------------------------------------------------------------
 *
 * protection.c
 *		What protect() promised, held: no DDL weakens a protected table's
 *		objection filter, and a table found weakened fails closed.
 *
 * A table listed in caredata.protected_table is in force when
 *
 *	- row security is enabled and forced on it;
 *	- its NHS number column still has protect()'s name and type
 *	  (caredata.nhs_number) and a statistics target of 0;
 *	- its policy caredata_objection is restrictive, for all commands and all
 *	  roles, and is exactly caredata.row_permitted(<the column>, <purpose>
 *	  [, now(), <dataset>]); its policy caredata_subject is restrictive, for
 *	  all commands, to caredata_patient, and is <the column> = my_nhs_number();
 *	- or, for a table protect() filtered as a Citus table, its one policy
 *	  caredata_filter is that row_permitted() call, for all commands and all
 *	  roles, and no other policy is ORed with it.
 *
 * Three layers hold it:
 *
 *	1. DDL guard (an event trigger on ddl_command_start, protection_ddl.c, and one on
 *	   sql_drop, in src/objection/protect.sql): the commands that would
 *	   weaken a listed table are refused, for every role, its owner and
 *	   superusers included.  caredata.unprotect() takes a table off the list
 *	   first, so its own DDL passes.
 *	2. Fail closed: event triggers do not fire under
 *	   session_replication_role = replica, so after ExecutorStart
 *	   (src/hooks.c) and before COPY ... TO (ProcessUtility), a
 *	   statement that reads a listed table that is not in force, as a role
 *	   row security would filter, is refused with a hint naming protect().
 *	   On a Citus node the same holds for a shard of a table protect()
 *	   filtered as a Citus table: a shard whose row security was turned off
 *	   (or no longer forced, or left without caredata_filter) by a
 *	   superuser on its node fails closed there, so through the
 *	   coordinator, through a worker and on the shard directly (issue 27).
 *	3. caredata.filter_weakness() and the view caredata.protection_status
 *	   report the state as it is, never "protected" when it is not.
 *
 * Query-time cost: the list of protected tables and each table's state are
 * kept per backend and read from the relation cache, never by SPI; a
 * relcache invalidation of a listed table (any DDL on it) or of
 * protected_table (a trigger sends one on every change) makes them be
 * worked out again.  A query on a table in force costs a hash probe per
 * range table entry.
 *
 * src/objection/protection.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "nodes/primnodes.h"
#include "parser/parse_relation.h"
#include "parser/parsetree.h"
#include "rewrite/rowsecurity.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "base/pg_compat.h"
#include "base/search_path.h"

#include "permitted.h"
#include "objection.h"
#include "protection.h"
#include "register.h"

typedef enum ListState
{
	LIST_UNKNOWN,				/* to be read again */
	LIST_BUILDING,				/* being read; an invalidation makes it UNKNOWN */
	LIST_ABSENT,				/* no caredata.protected_table in this database */
	LIST_VALID
} ListState;

static ListState list_state = LIST_UNKNOWN;
static Oid	list_relid = InvalidOid;	/* caredata.protected_table */
static Oid	nhs_type = InvalidOid;	/* caredata.nhs_number */
static HTAB *list_hash = NULL;
static MemoryContext list_mcxt = NULL;
static uint64 inval_count = 0;

/*
 * On a Citus node: which relations are shards, placed here, of a table
 * protect() filtered as a Citus table.  Looked up once per relation (SPI,
 * as the register's owner) and again after an invalidation of it:
 * protect() and unprotect() change the shards' row security, which
 * invalidates them.  Row security itself is read from the relation cache
 * at every query.
 */
typedef struct ShardEntry
{
	Oid			relid;			/* hash key */
	bool		filtered;
} ShardEntry;

static HTAB *shard_hash = NULL;
static bool shard_lookup_running = false;

/* the policies protect() attaches, by name */
bool
is_caredata_policy(const char *name)
{
	return name != NULL &&
		(strcmp(name, "caredata_objection") == 0 || strcmp(name, "caredata_subject") == 0 ||
		 strcmp(name, "caredata_base") == 0 || strcmp(name, "caredata_filter") == 0);
}

static void
protection_relcache_callback(Datum arg, Oid relid)
{
	inval_count++;
	if (shard_hash != NULL)
	{
		if (!OidIsValid(relid))
		{
			hash_destroy(shard_hash);
			shard_hash = NULL;
		}
		else
			(void) hash_search(shard_hash, &relid, HASH_REMOVE, NULL);
	}
	if (relid == InvalidOid || relid == list_relid || list_state == LIST_ABSENT)
	{
		/* the list itself, or (before the extension exists) anything */
		if (list_state != LIST_UNKNOWN)
			list_state = LIST_UNKNOWN;
		return;
	}
	if (list_hash != NULL && (list_state == LIST_VALID || list_state == LIST_BUILDING))
	{
		ProtectedEntry *e = hash_search(list_hash, &relid, HASH_FIND, NULL);

		if (e != NULL)
			e->state_known = false;
	}
}

/* a column of a caredata.protected_table row, by name: its value and type */
static Datum
column_value(HeapTuple tup, TupleDesc desc, const char *name, bool *isnull, Oid *type)
{
	int			attno = SPI_fnumber(desc, name);

	if (attno <= 0)
		elog(ERROR, "caredata.protected_table has no column %s", name);
	*type = TupleDescAttr(desc, attno - 1)->atttypid;

	/*
	 * SPI_getbinval, not the inline heap_getattr: since 15.20 that inline
	 * calls heap_datum_check(), which older minor releases lack, and the
	 * Debian package is to load into any server of the major version
	 * (debian/minor_versions; test/release/deb_chroot.sh checks the symbols)
	 */
	return SPI_getbinval(tup, desc, attno, isnull);
}

static char *
column_text(HeapTuple tup, TupleDesc desc, const char *name)
{
	bool		isnull;
	Oid			type;
	Datum		d = column_value(tup, desc, name, &isnull, &type);

	if (isnull)
		return NULL;
	if (type == NAMEOID)
		return MemoryContextStrdup(list_mcxt, NameStr(*DatumGetName(d)));
	if (type == TEXTOID)
		return MemoryContextStrdup(list_mcxt, TextDatumGetCString(d));
	elog(ERROR, "caredata.protected_table.%s has an unexpected type", name);
	return NULL;				/* keep compiler quiet */
}

static Oid
column_oid(HeapTuple tup, TupleDesc desc, const char *name)
{
	bool		isnull;
	Oid			type;
	Datum		d = column_value(tup, desc, name, &isnull, &type);

	return isnull ? InvalidOid : DatumGetObjectId(d);
}

/*
 * Read caredata.protected_table into the list, when it is not known: by a
 * heap scan under the latest snapshot (no executor, no SPI: this runs from
 * the executor's own hooks), so a change committed by anyone before now,
 * or made by this transaction, is seen.
 */
static void
ensure_list(void)
{
	HASHCTL		ctl;
	Oid			nsp;
	Relation	rel;
	Snapshot	snap;
	TableScanDesc scan;
	HeapTuple	tup;

	if (list_state == LIST_VALID || list_state == LIST_ABSENT)
		return;
	if (!IsTransactionState())
		return;
	if (list_mcxt == NULL)
		list_mcxt = AllocSetContextCreate(CacheMemoryContext, "caredata protected tables",
										  ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(list_mcxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(ProtectedEntry);
	ctl.hcxt = list_mcxt;
	list_hash = hash_create("caredata protected tables", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	list_state = LIST_BUILDING;
	nsp = get_namespace_oid("caredata", true);
	list_relid = OidIsValid(nsp) ? get_relname_relid("protected_table", nsp) : InvalidOid;
	nhs_type = OidIsValid(nsp) ?
		GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("nhs_number"), ObjectIdGetDatum(nsp)) :
		InvalidOid;
	if (!OidIsValid(list_relid))
	{
		if (list_state == LIST_BUILDING)
			list_state = LIST_ABSENT;
		return;
	}

	rel = table_open(list_relid, AccessShareLock);
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		Oid			relid = column_oid(tup, desc, "relid");
		char	   *column = column_text(tup, desc, "nhs_column");
		ProtectedEntry *e;
		bool		found;

		if (!OidIsValid(relid) || column == NULL)
			continue;
		e = hash_search(list_hash, &relid, HASH_ENTER, &found);
		namestrcpy(&e->nhs_column, column);
		e->purpose = column_text(tup, desc, "purpose");
		e->dataset = column_text(tup, desc, "dataset");
		e->state_known = false;
		e->weakness = NULL;
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	/* an invalidation meanwhile: use what was read now, read again next time */
	if (list_state == LIST_BUILDING)
		list_state = LIST_VALID;
}

static ProtectedEntry *
listed(Oid relid)
{
	if (list_hash == NULL || !OidIsValid(relid))
		return NULL;
	return (ProtectedEntry *) hash_search(list_hash, &relid, HASH_FIND, NULL);
}

/* is the role's array exactly { role }? */
static bool
roles_are(ArrayType *roles, Oid role)
{
	return roles != NULL && ARR_NDIM(roles) == 1 && ARR_DIMS(roles)[0] == 1 &&
		ARR_ELEMTYPE(roles) == OIDOID && !ARR_HASNULL(roles) &&
		((Oid *) ((char *) roles + ARR_OVERHEAD_NONULLS(1)))[0] == role;
}

static bool
is_column(Node *n, AttrNumber attno)
{
	return n != NULL && IsA(n, Var) && ((Var *) n)->varattno == attno && ((Var *) n)->varlevelsup == 0;
}

static bool
is_text_const(Node *n, const char *value)
{
	Const	   *c = (Const *) n;

	if (n == NULL || !IsA(n, Const) || c->consttype != TEXTOID || c->constisnull || value == NULL)
		return false;
	return strcmp(TextDatumGetCString(c->constvalue), value) == 0;
}

/* caredata.row_permitted(<column>, <purpose> [, now(), <dataset>]) */
static bool
is_filter_call(Expr *qual, AttrNumber attno, ProtectedEntry *e)
{
	FuncExpr   *f = (FuncExpr *) qual;

	if (qual == NULL || !IsA(qual, FuncExpr) || objection_filter_function(f->funcid) != FILTER_FN_ROW_PERMITTED)
		return false;
	if (!is_column(linitial(f->args), attno) || !is_text_const(lsecond(f->args), e->purpose))
		return false;
	if (e->dataset == NULL)
		return list_length(f->args) == 2;
	return list_length(f->args) == 4 &&
		IsA(lthird(f->args), FuncExpr) && ((FuncExpr *) lthird(f->args))->funcid == F_NOW &&
		is_text_const(lfourth(f->args), e->dataset);
}

/* <column> OPERATOR(caredata.=) caredata.my_nhs_number() */
static bool
is_subject_check(Expr *qual, AttrNumber attno)
{
	OpExpr	   *op = (OpExpr *) qual;
	char	   *opname;

	if (qual == NULL || !IsA(qual, OpExpr) || list_length(op->args) != 2)
		return false;
	opname = get_opname(op->opno);
	return opname != NULL && strcmp(opname, "=") == 0 &&
		is_column(linitial(op->args), attno) &&
		IsA(lsecond(op->args), FuncExpr) &&
		objection_filter_function(((FuncExpr *) lsecond(op->args))->funcid) == FILTER_FN_MY_NHS_NUMBER;
}

static int
statistics_target(Relation rel, Form_pg_attribute att)
{
#if PG_VERSION_NUM >= 170000
	HeapTuple	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(RelationGetRelid(rel)),
									  Int16GetDatum(att->attnum));
	int			target = -1;

	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = SysCacheGetAttr(ATTNUM, tup, Anum_pg_attribute_attstattarget, &isnull);

		if (!isnull)
			target = DatumGetInt16(d);
		ReleaseSysCache(tup);
	}
	return target;
#else
	(void) rel;
	return att->attstattarget;
#endif
}

/*
 * What is wrong with a listed table, as a sentence for an error's detail;
 * NULL when its filter is in force.  From the relation cache.
 */
static const char *
compute_weakness(ProtectedEntry *e)
{
	Relation	rel = RelationIdGetRelation(e->relid);
	const char *weakness = NULL;
	Form_pg_attribute nhs = NULL;
	Oid			patients = get_role_oid("caredata_patient", true);
	bool		citus = false;
	bool		objection = false;
	bool		subject = false;
	int			others = 0;
	ListCell   *lc;

	if (rel == NULL)
		return "The table no longer exists.";
	for (int i = 0; i < RelationGetDescr(rel)->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), NameStr(e->nhs_column)) == 0)
			nhs = att;
	}
	if (rel->rd_rsdesc != NULL)
		foreach(lc, rel->rd_rsdesc->policies)
		{
			RowSecurityPolicy *p = (RowSecurityPolicy *) lfirst(lc);

			if (strcmp(p->policy_name, "caredata_filter") == 0)
				citus = true;
		}

	if (!rel->rd_rel->relrowsecurity)
		weakness = "Row-level security is disabled on the table.";
	else if (!rel->rd_rel->relforcerowsecurity)
		weakness = "Row-level security is no longer forced on the table, so its owner reads it unfiltered.";
	else if (nhs == NULL)
		weakness = "Its NHS number column has been renamed or dropped.";
	else if (nhs->atttypid != nhs_type)
		weakness = "Its NHS number column is no longer of type caredata.nhs_number.";
	else if (statistics_target(rel, nhs) != 0)
		weakness = "Its NHS number column keeps planner statistics again (its statistics target is not 0).";
	if (weakness != NULL)
	{
		RelationClose(rel);
		return weakness;
	}

	if (rel->rd_rsdesc != NULL)
		foreach(lc, rel->rd_rsdesc->policies)
		{
			RowSecurityPolicy *p = (RowSecurityPolicy *) lfirst(lc);

			if (citus)
			{
				if (strcmp(p->policy_name, "caredata_filter") != 0)
					others++;
				else if (p->polcmd == '*' && roles_are(p->roles, ACL_ID_PUBLIC) && !p->hassublinks &&
						 is_filter_call(p->qual, nhs->attnum, e))
					objection = subject = true;
				else
					weakness = "Its policy caredata_filter has been altered.";
			}
			else if (strcmp(p->policy_name, "caredata_objection") == 0)
			{
				if (!p->permissive && p->polcmd == '*' && roles_are(p->roles, ACL_ID_PUBLIC) &&
					!p->hassublinks && is_filter_call(p->qual, nhs->attnum, e))
					objection = true;
				else
					weakness = "Its policy caredata_objection has been altered: it must be restrictive, for all commands and roles, and call caredata.row_permitted() on the NHS number column for its purpose.";
			}
			else if (strcmp(p->policy_name, "caredata_subject") == 0)
			{
				if (!p->permissive && p->polcmd == '*' && OidIsValid(patients) &&
					roles_are(p->roles, patients) && !p->hassublinks &&
					is_subject_check(p->qual, nhs->attnum))
					subject = true;
				else
					weakness = "Its policy caredata_subject has been altered: it must be restrictive, for all commands, to caredata_patient, and compare the NHS number column with caredata.my_nhs_number().";
			}
		}
	if (weakness == NULL && citus && others > 0)
		weakness = "Another row security policy is ORed with its policy caredata_filter.";
	else if (weakness == NULL && !objection)
		weakness = citus ? "Its policy caredata_filter is missing." : "Its policy caredata_objection is missing.";
	else if (weakness == NULL && !subject)
		weakness = "Its policy caredata_subject is missing.";
	RelationClose(rel);
	return weakness;
}

static const char *
entry_weakness(ProtectedEntry *e)
{
	if (!e->state_known)
	{
		uint64		before = inval_count;

		e->weakness = compute_weakness(e);
		/* an invalidation meanwhile: work it out again next time */
		e->state_known = (inval_count == before);
	}
	return e->weakness;
}

/* would row security filter this role, were it in force? */
bool
row_security_applies(Oid role)
{
	return !superuser_arg(role) && !has_bypassrls_privilege(role);
}

static void
refuse_weakened(Oid relid, const char *weakness)
{
	char	   *name = get_rel_name(relid);

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the objection filter on protected table \"%s\" is not in force", name ? name : "?"),
			 errdetail("%s", weakness),
			 errhint("Its owner or a superuser must restore it: caredata.unprotect() the table, then caredata.protect() it again with the arguments caredata.protected_table lists.")));
}

/* the role a range table entry's rows are read as */
static Oid
rte_user(PlannedStmt *stmt, RangeTblEntry *rte)
{
	Oid			user = InvalidOid;

#if PG_VERSION_NUM >= 160000
	if (rte->perminfoindex != 0)
		user = getRTEPermissionInfo(stmt->permInfos, rte)->checkAsUser;
#else
	(void) stmt;
	user = rte->checkAsUser;
#endif
	return OidIsValid(user) ? user : GetUserId();
}

/*
 * Is relid a shard, placed on this node, of a table protect() filtered as a
 * Citus table?  Only on a Citus node, for an ordinary table outside schema
 * caredata named as Citus names shards (table_<shard id>).
 */
static bool
is_filtered_shard(Oid relid)
{
	ShardEntry *e;
	bool		found;
	char	   *name;
	size_t		len;
	size_t		digits = 0;
	Oid			nsp;

	if (shard_lookup_running || !OidIsValid(get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE)))
		return false;
	if (get_rel_relkind(relid) != RELKIND_RELATION)
		return false;
	nsp = get_namespace_oid("caredata", true);
	if (!OidIsValid(nsp) || get_rel_namespace(relid) == nsp)
		return false;
	name = get_rel_name(relid);
	if (name == NULL)
		return false;
	len = strlen(name);
	while (digits < len && isdigit((unsigned char) name[len - 1 - digits]))
		digits++;
	if (digits == 0 || digits == len || name[len - 1 - digits] != '_')
		return false;

	if (shard_hash == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(ShardEntry);
		ctl.hcxt = CacheMemoryContext;
		shard_hash = hash_create("caredata filtered shards", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(shard_hash, &relid, HASH_FIND, NULL);
	if (e != NULL)
		return e->filtered;

	found = false;
	shard_lookup_running = true;
	PG_TRY();
	{
		Oid			argtypes[1] = {OIDOID};
		Datum		values[1];

		values[0] = ObjectIdGetDatum(relid);
		AS_REGISTER_OWNER(
			{
				if (SPI_connect() != SPI_OK_CONNECT)
					elog(ERROR, "SPI_connect failed");
				/* a shard's logical name differs from its own */
				if (SPI_execute_with_args("SELECT 1 FROM caredata.distributed_filter f "
										  "WHERE f.relation OPERATOR(pg_catalog.=) caredata._logical_relation($1::pg_catalog.regclass) "
										  "AND f.relation OPERATOR(pg_catalog.<>) "
										  "(SELECT pg_catalog.format('%I.%I', i.schema, i.name) "
										  "FROM pg_catalog.pg_identify_object('pg_catalog.pg_class'::pg_catalog.regclass, $1, 0) i)",
										  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
					elog(ERROR, "could not read caredata.distributed_filter");
				found = SPI_processed > 0;
				SPI_finish();
			});
	}
	PG_FINALLY();
	{
		shard_lookup_running = false;
	}
	PG_END_TRY();

	/* an invalidation meanwhile may have dropped the table: keep nothing */
	if (shard_hash != NULL)
	{
		e = hash_search(shard_hash, &relid, HASH_ENTER, NULL);
		e->filtered = found;
	}
	return found;
}

/* what is wrong with a filtered shard's row security, from the relation cache */
static const char *
shard_weakness(Oid relid)
{
	Relation	rel = RelationIdGetRelation(relid);
	const char *weakness = NULL;
	bool		has_filter = false;
	ListCell   *lc;

	if (rel == NULL)
		return NULL;
	if (!rel->rd_rel->relrowsecurity)
		weakness = "Row security has been turned off on this shard.";
	else if (!rel->rd_rel->relforcerowsecurity)
		weakness = "Row security is no longer forced on this shard.";
	else
	{
		if (rel->rd_rsdesc != NULL)
			foreach(lc, rel->rd_rsdesc->policies)
				if (strcmp(((RowSecurityPolicy *) lfirst(lc))->policy_name, "caredata_filter") == 0)
					has_filter = true;
		if (!has_filter)
			weakness = "Its policy caredata_filter is missing on this shard.";
	}
	RelationClose(rel);
	return weakness;
}

static void
refuse_weakened_shard(Oid relid, const char *weakness)
{
	char	   *name = get_rel_name(relid);

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the objection filter on shard \"%s\" is not in force", name ? name : "?"),
			 errdetail("%s", weakness),
			 errhint("A superuser on this node must restore it (ALTER TABLE ... ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY), or the table's owner must unprotect and protect the table again on the coordinator; caredata.citus_check() lists such shards.")));
}

/* the Citus shards a statement reads, as a role row security applies to */
static void
check_shards(PlannedStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);
		const char *weakness;

		if (rte->rtekind != RTE_RELATION || rte->relkind != RELKIND_RELATION ||
			!is_filtered_shard(rte->relid))
			continue;
		weakness = shard_weakness(rte->relid);
		if (weakness != NULL && row_security_applies(rte_user(stmt, rte)))
			refuse_weakened_shard(rte->relid, weakness);
	}
}

void
protection_check_plan(PlannedStmt *stmt)
{
	ListCell   *lc;

	if (stmt == NULL || IsParallelWorker())
		return;
	check_shards(stmt);
	ensure_list();
	if (list_hash == NULL || list_state == LIST_ABSENT || hash_get_num_entries(list_hash) == 0)
		return;
	foreach(lc, stmt->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);
		ProtectedEntry *e;
		const char *weakness;

		if (rte->rtekind != RTE_RELATION || (e = listed(rte->relid)) == NULL)
			continue;
		weakness = entry_weakness(e);
		if (weakness != NULL && row_security_applies(rte_user(stmt, rte)))
			refuse_weakened(rte->relid, weakness);
	}
}

/* COPY table TO reads the table without the executor when row security is off */
static void
check_copy(CopyStmt *stmt)
{
	Oid			relid;
	ProtectedEntry *e;
	const char *weakness;

	if (stmt->relation == NULL || stmt->is_from)
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (OidIsValid(relid) && is_filtered_shard(relid) && row_security_applies(GetUserId()))
	{
		const char *shard = shard_weakness(relid);

		if (shard != NULL)
			refuse_weakened_shard(relid, shard);
	}
	ensure_list();
	if (list_hash == NULL || list_state == LIST_ABSENT || hash_get_num_entries(list_hash) == 0)
		return;
	if ((e = listed(relid)) == NULL)
		return;
	weakness = entry_weakness(e);
	if (weakness != NULL && row_security_applies(GetUserId()))
		refuse_weakened(relid, weakness);
}

/* before ProcessUtility (src/hooks.c): COPY ... TO */
/*
 * DROP EXTENSION caredata (CASCADE): every protected table is unprotected
 * first, in the same transaction, so that the drop leaves each user table
 * as protect() found it.  Left to the cascade, the drop would remove the
 * filter's policies but leave row security enabled and forced, with the
 * policy caredata_base (USING (true)) that protect() added; a table whose
 * owner had policies of their own would then bind its owner to them.
 * Without CASCADE the drop still refuses while user columns are of
 * caredata's types, and the unprotecting is rolled back with it.
 */
static void
unprotect_before_drop(DropStmt *stmt)
{
	ListCell   *lc;
	bool		named = false;
	int			level;
	int			ret;

	if (stmt->removeType != OBJECT_EXTENSION)
		return;
	foreach(lc, stmt->objects)
	{
		if (IsA(lfirst(lc), String) && strcmp(strVal(lfirst(lc)), "caredata") == 0)
			named = true;
	}
	if (!named || !OidIsValid(get_extension_oid("caredata", true)))
		return;
	ensure_list();
	if (list_hash == NULL || list_state == LIST_ABSENT || hash_get_num_entries(list_hash) == 0)
		return;

	level = search_path_pin();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute("SELECT caredata.unprotect(t.relid) FROM caredata.protected_table t"
					  " WHERE t.relid OPERATOR(pg_catalog.=) t.root AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
					  " WHERE c.oid OPERATOR(pg_catalog.=) t.relid) ORDER BY t.relid", false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "unprotecting the protected tables failed: %d", ret);
	if (SPI_processed > 0)
		ereport(NOTICE,
				(errmsg_plural("dropping extension caredata unprotects %llu table first",
							   "dropping extension caredata unprotects %llu tables first",
							   SPI_processed, (unsigned long long) SPI_processed),
				 errdetail("Row security and the policies caredata.protect() added are off them again.")));
	SPI_finish();
	search_path_unpin(level);
}

void
protection_check_utility(PlannedStmt *pstmt)
{
	if (pstmt->utilityStmt != NULL && IsA(pstmt->utilityStmt, CopyStmt))
		check_copy((CopyStmt *) pstmt->utilityStmt);
	else if (pstmt->utilityStmt != NULL && IsA(pstmt->utilityStmt, DropStmt))
		unprotect_before_drop((DropStmt *) pstmt->utilityStmt);
}

/* _PG_init: forget a table's state when its relation cache entry goes */
void
protection_init(void)
{
	CacheRegisterRelcacheCallback(protection_relcache_callback, (Datum) 0);
}

/*
 * The listed table relid, or NULL, for the DDL guard (protection_ddl.c);
 * *none when no table is listed at all.
 */
ProtectedEntry *
protection_listed(Oid relid, bool *none)
{
	ensure_list();
	*none = list_hash == NULL || list_state == LIST_ABSENT || hash_get_num_entries(list_hash) == 0;
	return *none ? NULL : listed(relid);
}

/*
 * Trigger on caredata.protected_table: every change (by protect(),
 * unprotect(), or anyone with the rights) makes every backend read the
 * list again.
 */
PG_FUNCTION_INFO_V1(protected_table_changed);
Datum
protected_table_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("caredata._protected_table_changed() runs only as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	PG_RETURN_POINTER(NULL);
}

/*
 * filter_weakness(tab): NULL when tab is protected and its filter is in
 * force; otherwise why not, as a sentence.
 */
PG_FUNCTION_INFO_V1(filter_weakness);
Datum
filter_weakness(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	ProtectedEntry *e;
	const char *weakness;

	ensure_list();
	e = listed(relid);
	if (e == NULL)
		PG_RETURN_TEXT_P(cstring_to_text("The table is not protected: caredata.protected_table does not list it."));
	weakness = entry_weakness(e);
	if (weakness == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(weakness));
}
