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
 *	1. DDL guard (an event trigger on ddl_command_start, here, and one on
 *	   sql_drop, in src/objection/protect.sql): the commands that would
 *	   weaken a listed table are refused, for every role, its owner and
 *	   superusers included.  caredata.unprotect() takes a table off the list
 *	   first, so its own DDL passes.
 *	2. Fail closed: event triggers do not fire under
 *	   session_replication_role = replica, so after ExecutorStart
 *	   (src/executor_hooks.c) and before COPY ... TO (ProcessUtility), a
 *	   statement that reads a listed table that is not in force, as a role
 *	   row security would filter, is refused with a hint naming protect().
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
 * src/protection.c
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
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "nodes/primnodes.h"
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

#include "pg_compat.h"
#include "protection.h"

/* one table of caredata.protected_table, and its state once worked out */
typedef struct ProtectedEntry
{
	Oid			relid;			/* hash key */
	NameData	nhs_column;
	char	   *purpose;
	char	   *dataset;		/* NULL: no dataset */
	bool		state_known;
	const char *weakness;		/* NULL: in force (when state_known) */
} ProtectedEntry;

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

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* the policies protect() attaches, by name */
static bool
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
	return heap_getattr(tup, attno, desc, isnull);
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

static bool
is_caredata_func(Oid funcid, const char *name)
{
	char	   *fname = get_func_name(funcid);
	char	   *nsp;

	if (fname == NULL || strcmp(fname, name) != 0)
		return false;
	nsp = get_namespace_name(get_func_namespace(funcid));
	return nsp != NULL && strcmp(nsp, "caredata") == 0;
}

/* caredata.row_permitted(<column>, <purpose> [, now(), <dataset>]) */
static bool
is_filter_call(Expr *qual, AttrNumber attno, ProtectedEntry *e)
{
	FuncExpr   *f = (FuncExpr *) qual;

	if (qual == NULL || !IsA(qual, FuncExpr) || !is_caredata_func(f->funcid, "row_permitted"))
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
		is_caredata_func(((FuncExpr *) lsecond(op->args))->funcid, "my_nhs_number");
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
static bool
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

void
protection_check_plan(PlannedStmt *stmt)
{
	ListCell   *lc;

	if (stmt == NULL || IsParallelWorker())
		return;
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
	ensure_list();
	if (list_hash == NULL || list_state == LIST_ABSENT || hash_get_num_entries(list_hash) == 0)
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if ((e = listed(relid)) == NULL)
		return;
	weakness = entry_weakness(e);
	if (weakness != NULL && row_security_applies(GetUserId()))
		refuse_weakened(relid, weakness);
}

static void
protection_ProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						  ProcessUtilityContext context, ParamListInfo params,
						  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (pstmt->utilityStmt != NULL && IsA(pstmt->utilityStmt, CopyStmt))
		check_copy((CopyStmt *) pstmt->utilityStmt);
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

void
protection_init(void)
{
	CacheRegisterRelcacheCallback(protection_relcache_callback, (Datum) 0);
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = protection_ProcessUtility;
}

/*
 * The DDL guard.
 */
static void
refuse_ddl(Oid relid, const char *what, const char *why)
{
	char	   *name = get_rel_name(relid);

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s would weaken the objection filter on protected table \"%s\"", what, name ? name : "?"),
			 errdetail("%s", why),
			 errhint("To change how the table is filtered, caredata.unprotect() it (an audited step), then caredata.protect() it again.")));
}

/* the listed table a statement names (an index: its table), or NULL */
static ProtectedEntry *
named_table(RangeVar *rv, bool *is_index)
{
	Oid			relid;
	char		relkind;

	*is_index = false;
	if (rv == NULL)
		return NULL;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (!OidIsValid(relid))
		return NULL;
	relkind = get_rel_relkind(relid);
	if (relkind == RELKIND_INDEX || relkind == RELKIND_PARTITIONED_INDEX)
	{
		*is_index = true;
		relid = IndexGetRelation(relid, true);
	}
	return listed(relid);
}

static void
guard_alter_table(AlterTableStmt *stmt)
{
	bool		is_index;
	ProtectedEntry *e = named_table(stmt->relation, &is_index);
	ListCell   *lc;

	if (e == NULL)
		return;
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
		bool		on_nhs = !is_index && cmd->name != NULL && strcmp(cmd->name, NameStr(e->nhs_column)) == 0;

		switch (cmd->subtype)
		{
			case AT_DisableRowSecurity:
				refuse_ddl(e->relid, "DISABLE ROW LEVEL SECURITY",
						   "The objection filter is a row security policy.");
				break;
			case AT_NoForceRowSecurity:
				refuse_ddl(e->relid, "NO FORCE ROW LEVEL SECURITY",
						   "Without it the table's owner, and views and functions the owner owns, read every row.");
				break;
			case AT_SetStatistics:
				if ((is_index || on_nhs) && (cmd->def == NULL || !IsA(cmd->def, Integer) || intVal(cmd->def) != 0))
					refuse_ddl(e->relid, "SET STATISTICS",
							   "Planner statistics on the NHS number column (or an expression index) would give its values, hidden objectors' among them, to anyone who runs EXPLAIN.");
				break;
			case AT_AlterColumnType:
				if (on_nhs)
					refuse_ddl(e->relid, "changing the type of the NHS number column",
							   "The filter works on caredata.nhs_number.");
				break;
			case AT_DropColumn:
				if (on_nhs)
					refuse_ddl(e->relid, "dropping the NHS number column",
							   "The filter works on that column.");
				break;
			case AT_ChangeOwner:
				{
					Oid			owner = get_rolespec_oid(cmd->newowner, true);

					if (OidIsValid(owner) && !row_security_applies(owner))
						refuse_ddl(e->relid, "OWNER TO a superuser or BYPASSRLS role",
								   "Row security does not filter such a role: it, and views and functions it owns, would read every row.");
				}
				break;
			default:
				break;
		}
	}
}

static void
guard_rename(RenameStmt *stmt)
{
	bool		is_index;
	ProtectedEntry *e;

	if (stmt->renameType != OBJECT_COLUMN && stmt->renameType != OBJECT_POLICY)
		return;
	e = named_table(stmt->relation, &is_index);
	if (e == NULL || is_index)
		return;
	if (stmt->renameType == OBJECT_COLUMN && stmt->subname != NULL &&
		strcmp(stmt->subname, NameStr(e->nhs_column)) == 0)
		refuse_ddl(e->relid, "renaming the NHS number column",
				   "caredata.protected_table names the column the filter works on.");
	if (stmt->renameType == OBJECT_POLICY &&
		(is_caredata_policy(stmt->subname) || is_caredata_policy(stmt->newname)))
		refuse_ddl(e->relid, "renaming a caredata policy",
				   "The policies caredata.protect() attaches are the filter.");
}

static void
guard_alter_policy(AlterPolicyStmt *stmt)
{
	bool		is_index;
	ProtectedEntry *e = named_table(stmt->table, &is_index);

	if (e != NULL && is_caredata_policy(stmt->policy_name))
		refuse_ddl(e->relid, "ALTER POLICY",
				   "The policies caredata.protect() attaches are the filter: changing their roles or expressions would let rows of objectors through.");
}

/* on a Citus table the filter is the only policy: any other is ORed with it */
static void
guard_create_policy(CreatePolicyStmt *stmt)
{
	bool		is_index;
	ProtectedEntry *e = named_table(stmt->table, &is_index);
	Relation	rel;
	bool		citus = false;
	ListCell   *lc;

	if (e == NULL)
		return;
	rel = RelationIdGetRelation(e->relid);
	if (rel == NULL)
		return;
	if (rel->rd_rsdesc != NULL)
		foreach(lc, rel->rd_rsdesc->policies)
			if (strcmp(((RowSecurityPolicy *) lfirst(lc))->policy_name, "caredata_filter") == 0)
				citus = true;
	RelationClose(rel);
	if (citus)
		refuse_ddl(e->relid, "CREATE POLICY",
				   "On a Citus table caredata's filter is the table's only policy: Citus makes every policy permissive on the shards, where any other is ORed with the filter.");
}

static void
guard_create_statistics(CreateStatsStmt *stmt)
{
	bool		is_index;
	ProtectedEntry *e;
	ListCell   *lc;

	if (list_length(stmt->relations) != 1 || !IsA(linitial(stmt->relations), RangeVar))
		return;
	e = named_table((RangeVar *) linitial(stmt->relations), &is_index);
	if (e == NULL)
		return;
	foreach(lc, stmt->exprs)
	{
		StatsElem  *el = (StatsElem *) lfirst(lc);

		if (el->expr != NULL || (el->name != NULL && strcmp(el->name, NameStr(e->nhs_column)) == 0))
			refuse_ddl(e->relid, "CREATE STATISTICS on the NHS number column or an expression",
					   "Extended statistics on the NHS number column would give its values to the planner, and to anyone who runs EXPLAIN.");
	}
}

PG_FUNCTION_INFO_V1(protection_guard);
Datum
protection_guard(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	Node	   *stmt;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("caredata._protection_guard() runs only as an event trigger")));
	trigdata = (EventTriggerData *) fcinfo->context;
	stmt = trigdata->parsetree;
	ensure_list();
	if (stmt == NULL || list_hash == NULL || list_state == LIST_ABSENT || hash_get_num_entries(list_hash) == 0)
		PG_RETURN_NULL();
	switch (nodeTag(stmt))
	{
		case T_AlterTableStmt:
			guard_alter_table((AlterTableStmt *) stmt);
			break;
		case T_RenameStmt:
			guard_rename((RenameStmt *) stmt);
			break;
		case T_AlterPolicyStmt:
			guard_alter_policy((AlterPolicyStmt *) stmt);
			break;
		case T_CreatePolicyStmt:
			guard_create_policy((CreatePolicyStmt *) stmt);
			break;
		case T_CreateStatsStmt:
			guard_create_statistics((CreateStatsStmt *) stmt);
			break;
		default:
			break;
	}
	PG_RETURN_NULL();
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
