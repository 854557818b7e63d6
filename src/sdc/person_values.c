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
 * The state is a table of people with a value each (person_table.h, which
 * also reads and writes its text and binary forms).
 *
 * src/sdc/person_values.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>


#include "cell_key.h"
#include "person_table.h"
#include "policy.h"
#include "record_key.h"

PG_FUNCTION_INFO_V1(person_values_in);
Datum
person_values_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(person_table_in(PG_GETARG_CSTRING(0), true));
}

PG_FUNCTION_INFO_V1(person_values_out);
Datum
person_values_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(person_table_out(PG_GETARG_PERSON_TABLE_P(0), true));
}

PG_FUNCTION_INFO_V1(person_values_send);
Datum
person_values_send(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(person_table_send(PG_GETARG_PERSON_TABLE_P(0), true));
}

PG_FUNCTION_INFO_V1(person_values_recv);
Datum
person_values_recv(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(person_table_recv((StringInfo) PG_GETARG_POINTER(0), true));
}

/* ---- aggregates ---- */

/* (state, value, person [, policy]): a person's values add up */
static Datum
add_value(FunctionCallInfo fcinfo, PersonArg kind)
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
	pt = person_table_add(pt, person_key_arg(fcinfo, 2, kind), v, PERSON_SUM);
	pt->rows++;
	pt->sum += v;
	PG_RETURN_POINTER(pt);
}

/* (state, condition, person [, policy]): 1 if any of a person's rows met it */
static Datum
add_condition(FunctionCallInfo fcinfo, PersonArg kind)
{
	PersonTable *pt = person_table_state(fcinfo, true, 3, NULL);
	double		v;

	if (PG_ARGISNULL(2))
		PG_RETURN_POINTER(pt);
	v = (!PG_ARGISNULL(1) && PG_GETARG_BOOL(1)) ? 1.0 : 0.0;
	pt = person_table_add(pt, person_key_arg(fcinfo, 2, kind), v, PERSON_ANY);
	pt->rows++;
	pt->sum += v;
	PG_RETURN_POINTER(pt);
}

PG_FUNCTION_INFO_V1(person_values_add_int8);
Datum
person_values_add_int8(PG_FUNCTION_ARGS)
{
	return add_value(fcinfo, PERSON_ARG_INT8);
}

PG_FUNCTION_INFO_V1(person_values_add_bytes24);
Datum
person_values_add_bytes24(PG_FUNCTION_ARGS)
{
	return add_value(fcinfo, PERSON_ARG_PSEUDONYM);
}

PG_FUNCTION_INFO_V1(person_values_add_text);
Datum
person_values_add_text(PG_FUNCTION_ARGS)
{
	return add_value(fcinfo, PERSON_ARG_TEXT);
}

PG_FUNCTION_INFO_V1(person_values_any_int8);
Datum
person_values_any_int8(PG_FUNCTION_ARGS)
{
	return add_condition(fcinfo, PERSON_ARG_INT8);
}

PG_FUNCTION_INFO_V1(person_values_any_bytes24);
Datum
person_values_any_bytes24(PG_FUNCTION_ARGS)
{
	return add_condition(fcinfo, PERSON_ARG_PSEUDONYM);
}

PG_FUNCTION_INFO_V1(person_values_any_text);
Datum
person_values_any_text(PG_FUNCTION_ARGS)
{
	return add_condition(fcinfo, PERSON_ARG_TEXT);
}

/* whether the statistic over pv may be published (people, dominance) */
static bool
publishable(const SdcPolicy *p, PersonTable *pv, uint64 key_sum)
{
	double		largest[8] = {0};
	int			nl = Max(2, Min(p->dominance_n, 8));
	double		total = 0.0;
	int64		people = pv->count;

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
	/*
	 * under the cell key method the threshold on people is the perturbed
	 * count, as safe_count publishes it, so padding does not find it
	 */
	if (p->ptable != NULL &&
		!sdc_publish_keyed(p, pv->count, (uint32) (key_sum % SDC_CELL_KEY_RANGE), &people))
		return false;
	return sdc_publish_contributions(p, people, largest, nl, total);
}

PG_FUNCTION_INFO_V1(person_values_safe_sum);
Datum
person_values_safe_sum(PG_FUNCTION_ARGS)
{
	PersonTable *pv = person_table_final_state(fcinfo, true);
	const SdcPolicy *p;
	uint64		keys;

	if (pv == NULL)
		PG_RETURN_NULL();
	p = person_table_policy(fcinfo, pv);
	keys = p->ptable != NULL ? sdc_key_sum(pv) : 0;	/* once, for the threshold and the sum */
	if (!publishable(p, pv, keys))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(sdc_publish_sum(p, keys, pv->sum));
}

PG_FUNCTION_INFO_V1(person_values_safe_avg);
Datum
person_values_safe_avg(PG_FUNCTION_ARGS)
{
	PersonTable *pv = person_table_final_state(fcinfo, true);
	const SdcPolicy *p;
	uint64		keys;

	if (pv == NULL || pv->rows == 0)
		PG_RETURN_NULL();
	p = person_table_policy(fcinfo, pv);
	keys = p->ptable != NULL ? sdc_key_sum(pv) : 0;
	if (!publishable(p, pv, keys))
		PG_RETURN_NULL();
	/*
	 * A policy that protects magnitudes publishes the mean of what it
	 * publishes: the published sum over the row count as counts are
	 * published (never suppressed here: more rows than people), so that
	 * sum and mean together do not give the exact row count back
	 */
	if (p->magnitude_digits > 0 || p->ptable != NULL)
	{
		int64		rows_shown;

		if (!sdc_publish_keyed(p, pv->rows, (uint32) (keys % SDC_CELL_KEY_RANGE), &rows_shown) || rows_shown <= 0)
			PG_RETURN_NULL();
		PG_RETURN_FLOAT8(sdc_publish_sum(p, keys, pv->sum) / (double) rows_shown);
	}
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
	PersonTable *pv = person_table_final_state(fcinfo, true);
	const SdcPolicy *p;
	int64		with = 0;
	uint64		with_keys = 0;	/* the sum of their record keys: their cell key */
	int64		with_shown;
	int64		all_shown;

	if (pv == NULL)
		PG_RETURN_NULL();
	p = person_table_policy(fcinfo, pv);
	if (pv->has_zero && pv->zero_value > 0)
		with++;
	for (int32 i = 0; i < pv->capacity; i++)
		if (PT_KEYS(pv)[i] != 0 && PT_VALUES(pv)[i] > 0)
		{
			with++;
			with_keys += PT_KEYS(pv)[i];
		}
	/*
	 * Both counts are counts of people: under the cell key method each is
	 * perturbed by its own people's cell key (all, and those with the
	 * condition), then rounded, as safe_count would publish them
	 */
	if (!sdc_publish_people(p, pv, pv->count, &all_shown) || all_shown == 0 ||
		!sdc_publish_keyed(p, with, (uint32) (with_keys % SDC_CELL_KEY_RANGE), &with_shown))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8((double) with_shown / (double) all_shown);
}
