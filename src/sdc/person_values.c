/*-------------------------------------------------------------------------
 *
 * person_values.c
 *		person_values: each person's contribution behind an aggregate, and
 *		the safe sums, means and rates built on it.
 *
 * safe_sum(value, person), safe_avg(value, person) and
 * safe_rate(condition, person) publish a statistic only when enough people
 * contribute and no one dominates it (policy.h).  For that the state keeps
 * each person's own contribution: the sum of their values (sum, mean) or
 * whether any of their rows met the condition (rate), with the number of
 * rows and the sum over rows.  Like person_set it is a real type whose text
 * and binary forms round-trip exactly (doubles printed with 17 significant
 * digits), so partial states travel between workers and nodes.
 *
 * Text form: "<policy>|<rows>|<sum>|<hex key>=<value>,..." (keys sorted).
 *
 * The state is a table of people with a value each (person_table.h).
 *
 * src/sdc/person_values.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "libpq/pqformat.h"
#include "utils/builtins.h"

#include "person_table.h"
#include "policy.h"
#include "record_key.h"

static void
bad_text(const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type person_values"),
			 errhint("%s", hint)));
}

/* a finite double at *p, ended by stop ('\0' or a delimiter) */
static double
parse_value(char **p, const char *stops)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(*p, &end);
	if (end == *p || errno != 0 || strchr(stops, *end) == NULL || isnan(v) || isinf(v))
		bad_text("Values are finite decimal numbers.");
	*p = end;
	return v;
}

PG_FUNCTION_INFO_V1(person_values_in);
Datum
person_values_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	char	   *bar = strchr(str, '|');
	char		policy[NAMEDATALEN];
	PersonTable *pt;
	int64		n = 0;
	int64		rows;
	double		sum;
	char	   *p;
	char	   *end;

	if (bar == NULL || bar - str >= NAMEDATALEN)
		bad_text("A person_values reads \"<policy>|<rows>|<sum>|<hex key>=<value>,...\".");
	memcpy(policy, str, bar - str);
	policy[bar - str] = '\0';
	if (!person_policy_name_ok(policy))
		bad_text("A policy name is lower-case letters, digits and _.");
	p = bar + 1;
	errno = 0;
	rows = strtoll(p, &end, 10);
	if (end == p || *end != '|' || errno != 0 || rows < 0)
		bad_text("The row count is a non-negative integer.");
	p = end + 1;
	sum = parse_value(&p, "|");
	if (*p != '|')
		bad_text("A person_values reads \"<policy>|<rows>|<sum>|<hex key>=<value>,...\".");
	p++;
	for (char *c = p; *c; c++)
		if (*c == ',')
			n++;
	pt = person_table_new(n + 1, true, policy);
	pt->rows = rows;
	pt->sum = sum;
	while (*p)
	{
		uint64		key;
		double		value;
		int64		before = pt->count;

		errno = 0;
		if (!isxdigit((unsigned char) *p))
			bad_text("Keys are hexadecimal numbers of at most 16 digits.");
		key = strtou64(p, &end, 16);
		if (errno != 0 || *end != '=' || end - p > 16)
			bad_text("Each entry is <hex key>=<value>.");
		p = end + 1;
		value = parse_value(&p, ",");
		if (*p == ',' && *++p == '\0')
			bad_text("An entry follows every comma.");
		pt = person_table_add(pt, key, value, PERSON_SUM);
		if (pt->count == before)
			bad_text("Each key appears once.");
	}
	PG_RETURN_POINTER(pt);
}

PG_FUNCTION_INFO_V1(person_values_out);
Datum
person_values_out(PG_FUNCTION_ARGS)
{
	PersonTable *pt = PG_GETARG_PERSON_TABLE_P(0);
	StringInfoData buf;
	PersonEntry *e;
	char		num[64];

	person_table_check(pt, true, "person_values");
	e = person_table_sorted(pt);
	initStringInfo(&buf);
	snprintf(num, sizeof(num), "%.17g", pt->sum);
	appendStringInfo(&buf, "%s|%lld|%s|", pt->policy, (long long) pt->rows, num);
	for (int64 i = 0; i < pt->count; i++)
	{
		snprintf(num, sizeof(num), "%.17g", e[i].value);
		appendStringInfo(&buf, i ? ",%llx=%s" : "%llx=%s", (unsigned long long) e[i].key, num);
	}
	PG_RETURN_CSTRING(buf.data);
}

PG_FUNCTION_INFO_V1(person_values_send);
Datum
person_values_send(PG_FUNCTION_ARGS)
{
	PersonTable *pt = PG_GETARG_PERSON_TABLE_P(0);
	StringInfoData buf;
	PersonEntry *e;

	person_table_check(pt, true, "person_values");
	e = person_table_sorted(pt);
	pq_begintypsend(&buf);
	pq_sendstring(&buf, pt->policy);
	pq_sendint64(&buf, pt->rows);
	pq_sendfloat8(&buf, pt->sum);
	pq_sendint64(&buf, pt->count);
	for (int64 i = 0; i < pt->count; i++)
	{
		pq_sendint64(&buf, (int64) e[i].key);
		pq_sendfloat8(&buf, e[i].value);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(person_values_recv);
Datum
person_values_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	const char *policy = pq_getmsgstring(buf);
	PersonTable *pt;
	int64		rows;
	double		sum;
	int64		n;

	if (!person_policy_name_ok(policy))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid policy name in person_values")));
	rows = pq_getmsgint64(buf);
	sum = pq_getmsgfloat8(buf);
	n = pq_getmsgint64(buf);
	if (rows < 0 || isnan(sum) || isinf(sum) || n < 0 || n > (buf->len - buf->cursor) / 16)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid person_values header")));
	pt = person_table_new(n, true, policy);
	pt->rows = rows;
	pt->sum = sum;
	for (int64 i = 0; i < n; i++)
	{
		uint64		key = (uint64) pq_getmsgint64(buf);
		double		value = pq_getmsgfloat8(buf);

		if (isnan(value) || isinf(value))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid value in person_values")));
		pt = person_table_add(pt, key, value, PERSON_SUM);
	}
	if (pt->count != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("repeated key in person_values")));
	PG_RETURN_POINTER(pt);
}

/* ---- aggregates ---- */

static uint64
person_arg(FunctionCallInfo fcinfo, int argno, bool pseudonym)
{
	return pseudonym ? person_key_of_pseudonym(PG_GETARG_POINTER(argno)) : record_key_int8(PG_GETARG_INT64(argno));
}

/* (state, value, person [, policy]): a person's values add up */
static Datum
add_value(FunctionCallInfo fcinfo, bool pseudonym)
{
	PersonTable *pt = person_table_state(fcinfo, true, 3, NULL);
	double		v;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(pt);
	v = PG_GETARG_FLOAT8(1);
	if (isnan(v) || isinf(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a safe aggregate's value must be finite")));
	pt = person_table_add(pt, person_arg(fcinfo, 2, pseudonym), v, PERSON_SUM);
	pt->rows++;
	pt->sum += v;
	PG_RETURN_POINTER(pt);
}

/* (state, condition, person [, policy]): 1 if any of a person's rows met it */
static Datum
add_condition(FunctionCallInfo fcinfo, bool pseudonym)
{
	PersonTable *pt = person_table_state(fcinfo, true, 3, NULL);
	double		v;

	if (PG_ARGISNULL(2))
		PG_RETURN_POINTER(pt);
	v = (!PG_ARGISNULL(1) && PG_GETARG_BOOL(1)) ? 1.0 : 0.0;
	pt = person_table_add(pt, person_arg(fcinfo, 2, pseudonym), v, PERSON_ANY);
	pt->rows++;
	pt->sum += v;
	PG_RETURN_POINTER(pt);
}

PG_FUNCTION_INFO_V1(person_values_add_int8);
Datum
person_values_add_int8(PG_FUNCTION_ARGS)
{
	return add_value(fcinfo, false);
}

PG_FUNCTION_INFO_V1(person_values_add_bytes24);
Datum
person_values_add_bytes24(PG_FUNCTION_ARGS)
{
	return add_value(fcinfo, true);
}

PG_FUNCTION_INFO_V1(person_values_any_int8);
Datum
person_values_any_int8(PG_FUNCTION_ARGS)
{
	return add_condition(fcinfo, false);
}

PG_FUNCTION_INFO_V1(person_values_any_bytes24);
Datum
person_values_any_bytes24(PG_FUNCTION_ARGS)
{
	return add_condition(fcinfo, true);
}

static const SdcPolicy *
final_policy(FunctionCallInfo fcinfo, PersonTable *pv)
{
	return sdc_policy_get(fcinfo->flinfo, pv && pv->policy[0] ? pv->policy : NULL);
}

/* whether the statistic over pv may be published (people, dominance) */
static bool
publishable(const SdcPolicy *p, PersonTable *pv)
{
	double		largest[8] = {0};
	int			nl = Max(2, Min(p->dominance_n, 8));
	double		total = 0.0;

	if (p->dominance_n > 8)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("dominance rules over more than 8 contributors are not supported")));
	for (int32 i = -1; i < pv->capacity; i++)
	{
		double		v;

		if (i < 0 ? !pv->has_zero : PT_KEYS(pv)[i] == 0)
			continue;
		v = fabs(i < 0 ? pv->zero_value : PT_VALUES(pv)[i]);
		total += v;
		for (int j = 0; j < nl; j++)
			if (v > largest[j])
			{
				memmove(&largest[j + 1], &largest[j], sizeof(double) * (nl - j - 1));
				largest[j] = v;
				break;
			}
	}
	return sdc_publish_contributions(p, pv->count, largest, nl, total);
}

PG_FUNCTION_INFO_V1(person_values_safe_sum);
Datum
person_values_safe_sum(PG_FUNCTION_ARGS)
{
	PersonTable *pv;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	pv = PG_GETARG_PERSON_TABLE_P(0);
	person_table_check(pv, true, "person_values");
	if (!publishable(final_policy(fcinfo, pv), pv))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(pv->sum);
}

PG_FUNCTION_INFO_V1(person_values_safe_avg);
Datum
person_values_safe_avg(PG_FUNCTION_ARGS)
{
	PersonTable *pv;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	pv = PG_GETARG_PERSON_TABLE_P(0);
	person_table_check(pv, true, "person_values");
	if (pv->rows == 0 || !publishable(final_policy(fcinfo, pv), pv))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(pv->sum / (double) pv->rows);
}

/*
 * the share of people with the condition, computed from the two counts as
 * the policy publishes them (rounded), as output checkers ask: NULL when
 * either would be suppressed, since the rate and one of them give the other
 */
PG_FUNCTION_INFO_V1(person_values_safe_rate);
Datum
person_values_safe_rate(PG_FUNCTION_ARGS)
{
	PersonTable *pv;
	const SdcPolicy *p;
	int64		with = 0;
	int64		with_shown;
	int64		all_shown;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	pv = PG_GETARG_PERSON_TABLE_P(0);
	person_table_check(pv, true, "person_values");
	p = final_policy(fcinfo, pv);
	if (pv->has_zero && pv->zero_value > 0)
		with++;
	for (int32 i = 0; i < pv->capacity; i++)
		if (PT_KEYS(pv)[i] != 0 && PT_VALUES(pv)[i] > 0)
			with++;
	if (!sdc_publish_count(p, pv->count, &all_shown) || all_shown == 0 ||
		!sdc_publish_count(p, with, &with_shown))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8((double) with_shown / (double) all_shown);
}
