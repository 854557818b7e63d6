/*-------------------------------------------------------------------------
 *
 * policy_role.c
 *		Which disclosure-control policy is in force for a role, and who
 *		may name another.
 *
 * The policy is caredata_admin's decision, not the analyst's: asking for
 * the same cell under two policies (one suppressing 1-7, another rounding
 * 7-12 to 9) pins the count down, so a role outside caredata_admin gets the
 * policy in force for it and nothing else.  In force for the current role:
 *
 *	1. its own row of caredata.sdc_policy_role;
 *	2. else the row of a role it is a member of (with its privileges); two
 *	   such rows naming different policies are an error the admin must
 *	   resolve, never a choice;
 *	3. else the row for every role (role '-', OID 0);
 *	4. else the setting caredata.sdc_policy (superuser-only).
 *
 * A call naming a policy (safe_count(p, 'opensafely_midpoint6'), a state
 * carrying one, sdc_apply(n, policy)) is refused unless it names the policy
 * in force, or the caller is a superuser or a member of caredata_admin.
 *
 * src/sdc/policy_role.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "base/admin.h"
#include "base/search_path.h"
#include "citus/citus.h"
#include "policy_role.h"

/*
 * The name of the policy in force for the current role, into name
 * (NAMEDATALEN bytes); the setting's value (fallback) when no row applies.
 */
void
sdc_policy_in_force(char *name, const char *fallback)
{
	Oid			user = GetUserId();
	int			ret;
	int			nested;
	int			path;
	char	   *own = NULL;
	char	   *group = NULL;
	char	   *everyone = NULL;
	bool		ambiguous = false;
	Oid			nsp = get_namespace_oid("caredata", true);

	/* a 0.1.0 schema under this library, until ALTER EXTENSION ... UPDATE */
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("sdc_policy_role", nsp)))
	{
		strlcpy(name, fallback ? fallback : "", NAMEDATALEN);
		return;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* on Citus the catalog is a reference table, read in a shard task too */
	path = search_path_pin();
	nested = citus_nested_begin();
	ret = SPI_execute("SELECT role::pg_catalog.oid, policy FROM caredata.sdc_policy_role", true, 0);
	citus_nested_end(nested);
	search_path_unpin(path);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read caredata.sdc_policy_role: %s", SPI_result_code_string(ret));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			role = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		char	   *policy = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

		if (role == user)
			own = policy;
		else if (role == InvalidOid)
			everyone = policy;
		else if (has_privs_of_role(user, role))
		{
			if (group != NULL && strcmp(group, policy) != 0)
				ambiguous = true;
			group = policy;
		}
	}
	if (own == NULL && ambiguous)
		ereport(ERROR,
				(errcode(ERRCODE_AMBIGUOUS_PARAMETER),
				 errmsg("roles this role belongs to have different disclosure-control policies"),
				 errhint("caredata_admin can give the role a policy of its own with caredata.assign_sdc_policy().")));
	strlcpy(name, own ? own : group ? group : everyone ? everyone : (fallback ? fallback : ""), NAMEDATALEN);
	SPI_finish();
}

/*
 * The policy a call may use: its own (NULL: the one in force), checked
 * against the one in force unless the caller may choose.
 */
const char *
sdc_policy_allowed(const char *requested, const char *in_force)
{
	if (requested == NULL || strcmp(requested, in_force) == 0)
		return in_force;
	if (!caredata_acting_as_admin())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only caredata_admin may choose a disclosure-control policy"),
				 errdetail("The policy in force for this role is \"%s\"; the same cell under two policies can give away the exact count.", in_force),
				 errhint("Leave the policy out, or ask caredata_admin to assign another one (caredata.assign_sdc_policy()).")));
	return requested;
}
