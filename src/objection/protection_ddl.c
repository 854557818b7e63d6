/*-------------------------------------------------------------------------
 *
 * protection_ddl.c
 *		The DDL guard: commands that would weaken a protected table's
 *		objection filter are refused, for every role.
 *
 * caredata._protection_guard(), an event trigger on ddl_command_start
 * (src/objection/protect.sql installs it, beside one on sql_drop): ALTER
 * TABLE's row security, statistics, NHS column type and owner changes,
 * renames of the NHS column and of caredata's policies, ALTER POLICY on
 * them, CREATE POLICY beside a Citus table's filter and extended statistics
 * on the NHS column, for a table protection.c lists.  caredata.unprotect()
 * takes a table off the list first, so its own DDL passes.  Event triggers
 * do not fire under session_replication_role = replica: protection.c then
 * fails closed at query time.
 *
 * src/objection/protection_ddl.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/event_trigger.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "rewrite/rowsecurity.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "protection.h"

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
	bool		none;

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
	return protection_listed(relid, &none);
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
	bool		none;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("caredata._protection_guard() runs only as an event trigger")));
	trigdata = (EventTriggerData *) fcinfo->context;
	stmt = trigdata->parsetree;
	(void) protection_listed(InvalidOid, &none);
	if (stmt == NULL || none)
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
