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
 * The set is a table of people without values (person_table.h, which also
 * reads and writes its text and binary forms).  Both list the keys sorted,
 * so equal sets print alike.
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
#include "nodes/pg_list.h"
#include "nodes/primnodes.h"
#include "utils/builtins.h"

#include "cell_key.h"
#include "person_table.h"
#include "policy.h"
#include "record_key.h"

PG_FUNCTION_INFO_V1(person_set_in);
Datum
person_set_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(person_table_in(PG_GETARG_CSTRING(0), false));
}

PG_FUNCTION_INFO_V1(person_set_out);
Datum
person_set_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(person_table_out(PG_GETARG_PERSON_TABLE_P(0), false));
}

PG_FUNCTION_INFO_V1(person_set_send);
Datum
person_set_send(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(person_table_send(PG_GETARG_PERSON_TABLE_P(0), false));
}

PG_FUNCTION_INFO_V1(person_set_recv);
Datum
person_set_recv(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(person_table_recv((StringInfo) PG_GETARG_POINTER(0), false));
}

/* ---- aggregates ---- */

/* (state, person [, policy]) */
static Datum
add_person(FunctionCallInfo fcinfo, PersonArg kind)
{
	PersonTable *pt = person_table_state(fcinfo, false, 2, NULL);

	if (!PG_ARGISNULL(1))
		pt = person_table_add(pt, person_key_arg(fcinfo, 1, kind), 0.0, PERSON_SUM);
	PG_RETURN_POINTER(pt);
}

/* person_set_add(state, bigint or nhs_number [, policy]) */
PG_FUNCTION_INFO_V1(person_set_add_int8);
Datum
person_set_add_int8(PG_FUNCTION_ARGS)
{
	return add_person(fcinfo, PERSON_ARG_INT8);
}

/* person_set_add(state, pseudonym [, policy]) */
PG_FUNCTION_INFO_V1(person_set_add_bytes24);
Datum
person_set_add_bytes24(PG_FUNCTION_ARGS)
{
	return add_person(fcinfo, PERSON_ARG_PSEUDONYM);
}

/* person_set_add(state, text [, policy]): a pseudonym as a published view shows it */
PG_FUNCTION_INFO_V1(person_set_add_text);
Datum
person_set_add_text(PG_FUNCTION_ARGS)
{
	return add_person(fcinfo, PERSON_ARG_TEXT);
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

/*
 * The final functions' question: whether the state's policy publishes its
 * count of people, then *shown; *policy is that policy.
 */
static bool
published_count(FunctionCallInfo fcinfo, int64 *shown, const SdcPolicy **policy)
{
	PersonTable *ps = person_table_final_state(fcinfo, false);
	bool		unknown;

	if (ps == NULL)
	{
		*policy = empty_policy(fcinfo, &unknown);
		return !unknown && sdc_publish_people(*policy, NULL, 0, shown);
	}
	*policy = person_table_policy(fcinfo, ps);
	return sdc_publish_people(*policy, ps, ps->count, shown);
}

/* final: the published count of distinct people, NULL when suppressed */
PG_FUNCTION_INFO_V1(person_set_safe_count);
Datum
person_set_safe_count(PG_FUNCTION_ARGS)
{
	const SdcPolicy *p;
	int64		shown;

	if (!published_count(fcinfo, &shown, &p))
		PG_RETURN_NULL();
	PG_RETURN_INT64(shown);
}

/* final: the same for display, the policy's mark when suppressed */
PG_FUNCTION_INFO_V1(person_set_safe_text);
Datum
person_set_safe_text(PG_FUNCTION_ARGS)
{
	const SdcPolicy *p;
	int64		shown;

	if (!published_count(fcinfo, &shown, &p))
		PG_RETURN_TEXT_P(cstring_to_text(p->redacted));
	PG_RETURN_TEXT_P(cstring_to_text(psprintf(INT64_FORMAT, shown)));
}
