/*-------------------------------------------------------------------------
 *
 * policy.c
 *		Disclosure-control policies: which counts may be published, and how.
 *
 * A policy is a row of caredata.sdc_policy (the latest version of a name);
 * the one in force for a role is caredata_admin's choice (policy_role.c),
 * and only an admin may name another.  This file decides what may be seen; the aggregates that count
 * (src/sdc/person_set.c) only ask it (policy.h).  Rules, for a count n of
 * distinct people:
 *
 *		n = 0:					0, or suppressed when the policy protects zeros
 *		1 <= n <= suppress_max:	suppressed
 *		otherwise:				rounded (nearest multiple of base, halves up;
 *								or midpoint: ceil(n / base) * base - base / 2)
 *
 * A statistic of people's contributions (safe_sum, safe_avg) is shown only
 * when more than suppress_max people contribute and, when the policy has
 * them, the dominance rules hold: (n, k), the n largest contributions are
 * at most k % of the total; p %, the total less the two largest is at least
 * p % of the largest (else the second contributor could estimate the first
 * within p %).  Contributions are taken in absolute value.
 *
 * Nothing here draws random numbers: the same count gives the same answer
 * every time, so repeating a query learns nothing new.
 *
 * src/sdc/policy.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "catalog/namespace.h"
#include "utils/lsyscache.h"

#include "citus/citus.h"
#include "base/search_path.h"
#include "ptable.h"
#include "policy.h"
#include "policy_role.h"

static char *sdc_policy_setting = NULL;

#define POLICY_CACHE_SIZE	4

typedef struct PolicyCache
{
	int			n;
	SdcPolicy	policies[POLICY_CACHE_SIZE];
	Oid			role;			/* in_force is for this role */
	char		in_force[NAMEDATALEN];	/* (empty: not looked up yet) */
} PolicyCache;



bool
sdc_policy_name_ok(const char *name)
{
	size_t		len = strlen(name);

	if (len == 0 || len >= NAMEDATALEN || !(name[0] >= 'a' && name[0] <= 'z'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return false;
	return true;
}

static bool
check_sdc_policy(char **newval, void **extra, GucSource source)
{
	if (*newval && !sdc_policy_name_ok(*newval))
	{
		GUC_check_errdetail("A policy name is lower-case letters, digits and _, starting with a letter.");
		return false;
	}
	return true;
}

void
sdc_policy_init(void)
{
	DefineCustomStringVariable("caredata.sdc_policy",
							   "Disclosure-control policy of the safe aggregates for roles caredata.sdc_policy_role gives none.",
							   "A policy of caredata.sdc_policy (the latest version of that name); superuser-only: caredata_admin assigns policies to roles with caredata.assign_sdc_policy().",
							   &sdc_policy_setting,
							   "nhs_hes",
							   PGC_SUSET,
							   0,
							   check_sdc_policy, NULL, NULL);
}

static void
policy_load(const char *name, SdcPolicy *p)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	char	   *rounding;
	char	   *redacted;
	int			ret;
	int			nested;
	int			path;
	char	   *ptable;
	const char *ptable_column = "coalesce(cell_key_ptable, '')";

	args[0] = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* a 0.1.0 catalog, until ALTER EXTENSION ... UPDATE, has no cell key column */
	if (get_attnum(get_relname_relid("sdc_policy", get_namespace_oid("caredata", false)), "cell_key_ptable") == InvalidAttrNumber)
		ptable_column = "''::pg_catalog.text";
	/* on Citus the catalog is a reference table, read in a shard task too */
	path = search_path_pin();
	nested = citus_nested_begin();
	ret = SPI_execute_with_args(psprintf("SELECT version, suppress_max, protect_zero, rounding, rounding_base, redacted, "
										 "coalesce(dominance_n, 0), coalesce(dominance_k, 0), coalesce(p_percent, 0), "
	/* nor a magnitude column: read through to_jsonb, NULL when it is missing */
										 "coalesce(((pg_catalog.to_jsonb(p) OPERATOR(pg_catalog.->>) 'magnitude_digits'))::pg_catalog.int4, 0), %s "
										 "FROM caredata.sdc_policy p WHERE policy OPERATOR(pg_catalog.=) $1 ORDER BY version DESC LIMIT 1",
										 ptable_column),
								1, argtypes, args, NULL, true, 1);
	citus_nested_end(nested);
	search_path_unpin(path);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read caredata.sdc_policy: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("disclosure-control policy \"%s\" does not exist", name),
				 errhint("See caredata.sdc_policy for the policies, or set caredata.sdc_policy to one of them.")));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	memset(p, 0, sizeof(SdcPolicy));
	strlcpy(p->name, name, NAMEDATALEN);
	p->version = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	p->suppress_max = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
	p->protect_zero = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
	rounding = SPI_getvalue(tup, desc, 4);
	p->rounding = strcmp(rounding, "nearest") == 0 ? SDC_ROUND_NEAREST :
		strcmp(rounding, "midpoint") == 0 ? SDC_ROUND_MIDPOINT : SDC_ROUND_NONE;
	p->base = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
	redacted = SPI_getvalue(tup, desc, 6);
	strlcpy(p->redacted, redacted ? redacted : "", NAMEDATALEN);
	p->dominance_n = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
	p->dominance_k = DatumGetFloat8(SPI_getbinval(tup, desc, 8, &isnull));
	p->p_percent = DatumGetFloat8(SPI_getbinval(tup, desc, 9, &isnull));
	p->magnitude_digits = DatumGetInt32(SPI_getbinval(tup, desc, 10, &isnull));
	ptable = SPI_getvalue(tup, desc, 11);
	strlcpy(p->cell_key_ptable, ptable ? ptable : "", NAMEDATALEN);
	SPI_finish();
}

const SdcPolicy *
sdc_policy_get(FmgrInfo *flinfo, const char *name)
{
	PolicyCache *cache = (PolicyCache *) flinfo->fn_extra;
	SdcPolicy  *p;

	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(PolicyCache));
		flinfo->fn_extra = cache;
	}
	/* the policy in force for the role running the query, looked up once */
	if (cache->in_force[0] == '\0' || cache->role != GetUserId())
	{
		sdc_policy_in_force(cache->in_force, sdc_policy_setting);
		cache->role = GetUserId();
	}
	name = sdc_policy_allowed(name, cache->in_force);
	if (name == NULL || !sdc_policy_name_ok(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid disclosure-control policy name"),
				 errhint("A policy name is lower-case letters, digits and _, starting with a letter.")));
	for (int i = 0; i < cache->n; i++)
		if (strcmp(cache->policies[i].name, name) == 0)
			return &cache->policies[i];
	/* a query naming more policies than the cache holds reuses the last slot */
	p = &cache->policies[Min(cache->n, POLICY_CACHE_SIZE - 1)];
	policy_load(name, p);
	if (p->cell_key_ptable[0] != '\0')
		p->ptable = sdc_ptable_load(p->cell_key_ptable, flinfo->fn_mcxt);
	if (cache->n < POLICY_CACHE_SIZE)
		cache->n++;
	return p;
}

/*
 * A policy of the cell key method perturbs counts of people by their record
 * keys (cell_key.c).  A number given without its people (sdc_apply,
 * sdc_display, sdc_protect, funnel) gets the policy's suppression and
 * rounding without the key: the caller already holds that number, and
 * padding needs people.  A policy that neither suppresses nor rounds would
 * show such a number exactly, so it is refused instead.
 */
static void
sdc_require_unkeyed_protection(const SdcPolicy *policy)
{
	if (policy->cell_key_ptable[0] != '\0' && policy->suppress_max == 0 &&
		(policy->rounding == SDC_ROUND_NONE || policy->base <= 1))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("disclosure-control policy \"%s\" protects counts only by the cell key method", policy->name),
				 errdetail("A number given without its people would be shown exactly; only the safe aggregates, which see the people they count, publish under it."),
				 errhint("Count the people with caredata.safe_count(person), or ask caredata_admin for another policy.")));
}

bool
sdc_publish_count(const SdcPolicy *policy, int64 n, int64 *shown)
{
	sdc_require_unkeyed_protection(policy);
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a count of people cannot be negative")));
	if (n == 0)
	{
		*shown = 0;
		return !policy->protect_zero;
	}
	if (n <= policy->suppress_max)
		return false;
	*shown = sdc_round_count(policy, n);
	return true;
}

int64
sdc_round_count(const SdcPolicy *policy, int64 n)
{
	int64		b = policy->base;

	if (n == 0)
		return 0;
	switch (policy->rounding)
	{
		case SDC_ROUND_NEAREST:
			return ((n + b / 2) / b) * b;
		case SDC_ROUND_MIDPOINT:
			return ((n + b - 1) / b) * b - b / 2;
		default:
			return n;
	}
}

bool
sdc_publish_contributions(const SdcPolicy *policy, int64 people,
						  const double *largest, int nlargest, double total)
{
	if (people <= policy->suppress_max || people == 0)
		return false;
	if (policy->dominance_n > 0 && policy->dominance_k > 0)
	{
		double		top = 0.0;

		for (int i = 0; i < Min(policy->dominance_n, nlargest); i++)
			top += largest[i];
		if (top > total * policy->dominance_k / 100.0)
			return false;
	}
	if (policy->p_percent > 0 && nlargest >= 2 &&
		total - largest[0] - largest[1] < largest[0] * policy->p_percent / 100.0)
		return false;
	return true;
}

double
sdc_magnitude_step(const SdcPolicy *policy, double sum)
{
	double		step;

	if (policy->magnitude_digits <= 0 || sum == 0.0 || !isfinite(sum))
		return 0.0;
	/* the unit of the last significant figure kept, at least the count base */
	step = pow(10.0, floor(log10(fabs(sum))) - (policy->magnitude_digits - 1));
	if (step < policy->base)
		step = policy->base;
	return step;
}

double
sdc_publish_magnitude(const SdcPolicy *policy, double sum)
{
	double		step = sdc_magnitude_step(policy, sum);

	return step > 0.0 ? round(sum / step) * step : sum;
}

/* sdc_apply(n bigint, policy text DEFAULT NULL) returns bigint: NULL when suppressed */
PG_FUNCTION_INFO_V1(sdc_apply);
Datum
sdc_apply(PG_FUNCTION_ARGS)
{
	const SdcPolicy *p;
	int64		shown;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	p = sdc_policy_get(fcinfo->flinfo, PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)));
	if (!sdc_publish_count(p, PG_GETARG_INT64(0), &shown))
		PG_RETURN_NULL();
	PG_RETURN_INT64(shown);
}

/* sdc_display(n bigint, policy text DEFAULT NULL) returns text: the policy's mark when suppressed */
PG_FUNCTION_INFO_V1(sdc_display);
Datum
sdc_display(PG_FUNCTION_ARGS)
{
	const SdcPolicy *p;
	int64		shown;

	p = sdc_policy_get(fcinfo->flinfo, PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)));
	if (PG_ARGISNULL(0) || !sdc_publish_count(p, PG_GETARG_INT64(0), &shown))
		PG_RETURN_TEXT_P(cstring_to_text(p->redacted));
	PG_RETURN_TEXT_P(cstring_to_text(psprintf(INT64_FORMAT, shown)));
}

/* caredata.sdc_policy_in_force(): the policy the current role's aggregates apply */
PG_FUNCTION_INFO_V1(sdc_policy_in_force_sql);
Datum
sdc_policy_in_force_sql(PG_FUNCTION_ARGS)
{
	char		name[NAMEDATALEN];

	sdc_policy_in_force(name, sdc_policy_setting);
	PG_RETURN_TEXT_P(cstring_to_text(name));
}
