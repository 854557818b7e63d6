/*-------------------------------------------------------------------------
 *
 * person_set.c
 *		person_set: the distinct people behind an aggregate, and the safe
 *		counting aggregates built on it.
 *
 * safe_count(person) counts distinct people, not rows, then publishes the
 * count as the disclosure-control policy allows (policy.h).  Its transition
 * state is the type person_set, a real type (not internal) whose text form
 * round-trips exactly, so that partial states can travel between parallel
 * workers or the nodes of a distributed engine as text (docs/disclosure-control.md "Scale").
 *
 * The set is a table of people without values (person_table.h).  The
 * text and binary forms list the keys sorted, so equal sets print alike.
 *
 * Text form: "<policy>:<hex key>,<hex key>,..." where <policy> is empty
 * unless the call named one, e.g. "nhs_hes:1f0c5e9a3b2d4c71,9434765919aa02e3"
 * (hex).  The keys are the people's record keys (record_key.h), never
 * their values.
 *
 * src/sdc/person_set.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "libpq/pqformat.h"
#include "nodes/pg_list.h"
#include "nodes/primnodes.h"
#include "utils/builtins.h"

#include "cell_key.h"
#include "person_table.h"
#include "policy.h"
#include "record_key.h"

static void
bad_text(const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type person_set"),
			 errhint("%s", hint)));
}

PG_FUNCTION_INFO_V1(person_set_in);
Datum
person_set_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	char	   *colon = strchr(str, ':');
	char		policy[NAMEDATALEN];
	PersonTable *pt;
	int64		n = 0;
	char	   *p;

	if (colon == NULL || colon - str >= NAMEDATALEN)
		bad_text("A person_set reads \"<policy>:<hex key>,<hex key>,...\"; the policy may be empty.");
	memcpy(policy, str, colon - str);
	policy[colon - str] = '\0';
	if (!person_policy_name_ok(policy))
		bad_text("A policy name is lower-case letters, digits and _.");
	for (p = colon + 1; *p; p++)
		if (*p == ',')
			n++;
	pt = person_table_new(n + 1, false, policy);
	p = colon + 1;
	while (*p)
	{
		char	   *end;
		uint64		key;
		int64		before = pt->count;

		errno = 0;
		if (!isxdigit((unsigned char) *p))
			bad_text("Keys are hexadecimal, separated by commas.");
		key = strtou64(p, &end, 16);
		if (errno != 0 || (*end != ',' && *end != '\0') || end - p > 16)
			bad_text("Keys are hexadecimal numbers of at most 16 digits, separated by commas.");
		p = *end == ',' ? end + 1 : end;
		if (*end == ',' && *p == '\0')
			bad_text("A key follows every comma.");
		pt = person_table_add(pt, key, 0.0, PERSON_SUM);
		if (pt->count == before)
			bad_text("Each key appears once.");
	}
	PG_RETURN_POINTER(pt);
}

PG_FUNCTION_INFO_V1(person_set_out);
Datum
person_set_out(PG_FUNCTION_ARGS)
{
	PersonTable *pt = PG_GETARG_PERSON_TABLE_P(0);
	StringInfoData buf;
	PersonEntry *e;

	person_table_check(pt, false, "person_set");
	e = person_table_sorted(pt);
	initStringInfo(&buf);
	appendStringInfo(&buf, "%s:", pt->policy);
	for (int64 i = 0; i < pt->count; i++)
		appendStringInfo(&buf, i ? ",%llx" : "%llx", (unsigned long long) e[i].key);
	PG_RETURN_CSTRING(buf.data);
}

PG_FUNCTION_INFO_V1(person_set_send);
Datum
person_set_send(PG_FUNCTION_ARGS)
{
	PersonTable *pt = PG_GETARG_PERSON_TABLE_P(0);
	StringInfoData buf;
	PersonEntry *e;

	person_table_check(pt, false, "person_set");
	e = person_table_sorted(pt);
	pq_begintypsend(&buf);
	pq_sendstring(&buf, pt->policy);
	pq_sendint64(&buf, pt->count);
	for (int64 i = 0; i < pt->count; i++)
		pq_sendint64(&buf, (int64) e[i].key);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(person_set_recv);
Datum
person_set_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	const char *policy = pq_getmsgstring(buf);
	int64		n;
	PersonTable *pt;

	if (!person_policy_name_ok(policy))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid policy name in person_set")));
	n = pq_getmsgint64(buf);
	if (n < 0 || n > (buf->len - buf->cursor) / 8)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid key count in person_set")));
	pt = person_table_new(n, false, policy);
	for (int64 i = 0; i < n; i++)
		pt = person_table_add(pt, (uint64) pq_getmsgint64(buf), 0.0, PERSON_SUM);
	if (pt->count != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("repeated key in person_set")));
	PG_RETURN_POINTER(pt);
}

/* ---- aggregates ---- */

/* person_set_add(state, bigint or nhs_number [, policy]) */
PG_FUNCTION_INFO_V1(person_set_add_int8);
Datum
person_set_add_int8(PG_FUNCTION_ARGS)
{
	PersonTable *pt = person_table_state(fcinfo, false, 2, NULL);

	if (!PG_ARGISNULL(1))
		pt = person_table_add(pt, record_key_int8(PG_GETARG_INT64(1)), 0.0, PERSON_SUM);
	PG_RETURN_POINTER(pt);
}

/* person_set_add(state, pseudonym [, policy]) */
PG_FUNCTION_INFO_V1(person_set_add_bytes24);
Datum
person_set_add_bytes24(PG_FUNCTION_ARGS)
{
	PersonTable *pt = person_table_state(fcinfo, false, 2, NULL);

	if (!PG_ARGISNULL(1))
		pt = person_table_add(pt, person_key_of_pseudonym(PG_GETARG_POINTER(1)), 0.0, PERSON_SUM);
	PG_RETURN_POINTER(pt);
}

/*
 * The policy of an aggregate that saw no rows: its state never learnt the
 * policy the call named, so read it from the call (a constant), else fall
 * back to the setting.  A policy given by a non-constant expression over no
 * rows publishes nothing.
 */
static const SdcPolicy *
empty_policy(FunctionCallInfo fcinfo, bool *unknown)
{
	Aggref	   *aggref = AggGetAggref(fcinfo);
	TargetEntry *te;
	Const	   *c;

	*unknown = false;
	if (aggref == NULL || list_length(aggref->args) < 2)
		return sdc_policy_get(fcinfo->flinfo, NULL);
	te = lsecond_node(TargetEntry, aggref->args);
	if (!IsA(te->expr, Const) || ((Const *) te->expr)->consttype != TEXTOID)
	{
		*unknown = true;
		return sdc_policy_get(fcinfo->flinfo, NULL);
	}
	c = (Const *) te->expr;
	return sdc_policy_get(fcinfo->flinfo, c->constisnull ? NULL : TextDatumGetCString(c->constvalue));
}

static const SdcPolicy *
state_policy(FunctionCallInfo fcinfo, PersonTable *ps, int64 *n, bool *unknown)
{
	*unknown = false;
	if (ps == NULL)
	{
		*n = 0;
		return empty_policy(fcinfo, unknown);
	}
	person_table_check(ps, false, "person_set");
	*n = ps->count;
	return sdc_policy_get(fcinfo->flinfo, ps->policy[0] ? ps->policy : NULL);
}

/* final: the published count of distinct people, NULL when suppressed */
PG_FUNCTION_INFO_V1(person_set_safe_count);
Datum
person_set_safe_count(PG_FUNCTION_ARGS)
{
	int64		n;
	int64		shown;
	bool		unknown;
	PersonTable *ps = PG_ARGISNULL(0) ? NULL : PG_GETARG_PERSON_TABLE_P(0);
	const SdcPolicy *p = state_policy(fcinfo, ps, &n, &unknown);

	if (unknown || !sdc_publish_people(p, ps, n, &shown))
		PG_RETURN_NULL();
	PG_RETURN_INT64(shown);
}

/* final: the same for display, the policy's mark when suppressed */
PG_FUNCTION_INFO_V1(person_set_safe_text);
Datum
person_set_safe_text(PG_FUNCTION_ARGS)
{
	int64		n;
	int64		shown;
	bool		unknown;
	PersonTable *ps = PG_ARGISNULL(0) ? NULL : PG_GETARG_PERSON_TABLE_P(0);
	const SdcPolicy *p = state_policy(fcinfo, ps, &n, &unknown);

	if (unknown || !sdc_publish_people(p, ps, n, &shown))
		PG_RETURN_TEXT_P(cstring_to_text(p->redacted));
	PG_RETURN_TEXT_P(cstring_to_text(psprintf(INT64_FORMAT, shown)));
}
