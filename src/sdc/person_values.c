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
 * The table is open addressing with linear probing on 64-bit keys
 * (person_key.h), key 0 kept apart, grown at half load; transition and
 * combine functions change it in place in the aggregate context.
 *
 * src/sdc/person_values.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/memutils.h"

#include "person_key.h"
#include "policy.h"

typedef struct PersonValues
{
	int32		vl_len_;		/* varlena header */
	int32		capacity;		/* slots, a power of two (at least 8) */
	int64		count;			/* people, zero key included */
	int64		rows;			/* rows aggregated (non-NULL person and value) */
	double		sum;			/* sum of the values over rows */
	bool		has_zero;
	double		zero_value;
	char		policy[NAMEDATALEN];
	/* uint64 keys[capacity], then double values[capacity] */
	uint64		data[FLEXIBLE_ARRAY_MEMBER];
} PersonValues;

#define PV_HDRSZ		offsetof(PersonValues, data)
#define PV_SIZE(cap)	(PV_HDRSZ + 2 * sizeof(uint64) * (Size) (cap))
#define PV_MAX_CAPACITY	((int32) ((MaxAllocSize - PV_HDRSZ) / sizeof(uint64) / 4))
#define PV_KEYS(pv)		((pv)->data)
#define PV_VALUES(pv)	((double *) ((pv)->data + (pv)->capacity))

#define PG_GETARG_PERSON_VALUES_P(n) ((PersonValues *) PG_DETOAST_DATUM(PG_GETARG_DATUM(n)))

typedef enum
{
	PV_SUM,						/* a person's values add up */
	PV_ANY						/* a person's value is 1 if any row's was */
} PvMerge;

/* a new state in the current context (nodeAgg copies it into its own) */
static PersonValues *
pv_new(int32 capacity, const char *policy)
{
	PersonValues *pv;

	if (capacity > PV_MAX_CAPACITY)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct people in one group")));
	pv = palloc0(PV_SIZE(capacity));
	SET_VARSIZE(pv, PV_SIZE(capacity));
	pv->capacity = capacity;
	if (policy)
		strlcpy(pv->policy, policy, NAMEDATALEN);
	return pv;
}

static PersonValues *
pv_add(PersonValues *pv, uint64 key, double value, PvMerge merge)
{
	uint32		i;

	if (key == 0)
	{
		if (!pv->has_zero)
		{
			pv->has_zero = true;
			pv->count++;
			pv->zero_value = value;
		}
		else
			pv->zero_value = merge == PV_SUM ? pv->zero_value + value : Max(pv->zero_value, value);
		return pv;
	}
	if ((pv->count + 1) * 2 > pv->capacity)
	{
		PersonValues *bigger = pv_new(pv->capacity * 2, pv->policy);

		bigger->rows = pv->rows;
		bigger->sum = pv->sum;
		bigger->has_zero = pv->has_zero;
		bigger->zero_value = pv->zero_value;
		bigger->count = pv->has_zero ? 1 : 0;
		for (int32 j = 0; j < pv->capacity; j++)
			if (PV_KEYS(pv)[j] != 0)
				bigger = pv_add(bigger, PV_KEYS(pv)[j], PV_VALUES(pv)[j], merge);
		pv = bigger;
	}
	for (i = person_slot(key, pv->capacity);; i = (i + 1) & (uint32) (pv->capacity - 1))
	{
		if (PV_KEYS(pv)[i] == key)
		{
			PV_VALUES(pv)[i] = merge == PV_SUM ? PV_VALUES(pv)[i] + value : Max(PV_VALUES(pv)[i], value);
			return pv;
		}
		if (PV_KEYS(pv)[i] == 0)
		{
			PV_KEYS(pv)[i] = key;
			PV_VALUES(pv)[i] = value;
			pv->count++;
			return pv;
		}
	}
}

static void
pv_check(const PersonValues *pv)
{
	if (VARSIZE(pv) < PV_HDRSZ || pv->capacity < 8 || (pv->capacity & (pv->capacity - 1)) != 0 ||
		VARSIZE(pv) != PV_SIZE(pv->capacity) || pv->count < 0 || pv->count > pv->capacity ||
		pv->rows < 0 || memchr(pv->policy, '\0', NAMEDATALEN) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("corrupt person_values")));
}

typedef struct KeyValue
{
	uint64		key;
	double		value;
} KeyValue;

static int
kv_cmp(const void *a, const void *b)
{
	uint64		x = ((const KeyValue *) a)->key;
	uint64		y = ((const KeyValue *) b)->key;

	return x < y ? -1 : x > y ? 1 : 0;
}

static KeyValue *
pv_sorted(const PersonValues *pv, int64 *n)
{
	KeyValue   *kv = palloc_extended(sizeof(KeyValue) * Max(pv->count, 1), MCXT_ALLOC_HUGE);
	int64		k = 0;

	if (pv->has_zero)
	{
		kv[k].key = 0;
		kv[k++].value = pv->zero_value;
	}
	for (int32 i = 0; i < pv->capacity; i++)
		if (PV_KEYS(pv)[i] != 0)
		{
			kv[k].key = PV_KEYS(pv)[i];
			kv[k++].value = PV_VALUES(pv)[i];
		}
	if (k != pv->count)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("corrupt person_values")));
	qsort(kv, k, sizeof(KeyValue), kv_cmp);
	*n = k;
	return kv;
}

static int32
pv_capacity_for(int64 n)
{
	int64		cap = 8;

	while (cap < n * 2 + 2)
		cap *= 2;
	if (cap > PV_MAX_CAPACITY)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct people in one group")));
	return (int32) cap;
}

static void
bad_text(const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type person_values"),
			 errhint("%s", hint)));
}

static double
parse_double(char **p, char stop)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(*p, &end);
	if (end == *p || errno != 0 || *end != stop || isnan(v) || isinf(v))
		bad_text("Values are finite decimal numbers.");
	*p = end + 1;
	return v;
}

PG_FUNCTION_INFO_V1(person_values_in);
Datum
person_values_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	char	   *bar = strchr(str, '|');
	char		policy[NAMEDATALEN];
	PersonValues *pv;
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
	sum = parse_double(&p, '|');
	for (char *c = p; *c; c++)
		if (*c == ',')
			n++;
	pv = pv_new(pv_capacity_for(n + 1), policy);
	pv->rows = rows;
	pv->sum = sum;
	while (*p)
	{
		uint64		key;
		double		value;
		int64		before = pv->count;

		errno = 0;
		if (!isxdigit((unsigned char) *p))
			bad_text("Keys are hexadecimal numbers of at most 16 digits.");
		key = strtou64(p, &end, 16);
		if (errno != 0 || *end != '=' || end - p > 16)
			bad_text("Each entry is <hex key>=<value>.");
		p = end + 1;
		value = strtod(p, &end);
		if (end == p || (*end != ',' && *end != '\0') || isnan(value) || isinf(value))
			bad_text("Values are finite decimal numbers.");
		p = *end == ',' ? end + 1 : end;
		if (*end == ',' && *p == '\0')
			bad_text("An entry follows every comma.");
		pv = pv_add(pv, key, value, PV_SUM);
		if (pv->count == before)
			bad_text("Each key appears once.");
	}
	PG_RETURN_POINTER(pv);
}

PG_FUNCTION_INFO_V1(person_values_out);
Datum
person_values_out(PG_FUNCTION_ARGS)
{
	PersonValues *pv = PG_GETARG_PERSON_VALUES_P(0);
	StringInfoData buf;
	KeyValue   *kv;
	int64		n;
	char		num[64];

	pv_check(pv);
	kv = pv_sorted(pv, &n);
	initStringInfo(&buf);
	snprintf(num, sizeof(num), "%.17g", pv->sum);
	appendStringInfo(&buf, "%s|%lld|%s|", pv->policy, (long long) pv->rows, num);
	for (int64 i = 0; i < n; i++)
	{
		snprintf(num, sizeof(num), "%.17g", kv[i].value);
		appendStringInfo(&buf, i ? ",%llx=%s" : "%llx=%s", (unsigned long long) kv[i].key, num);
	}
	PG_RETURN_CSTRING(buf.data);
}

PG_FUNCTION_INFO_V1(person_values_send);
Datum
person_values_send(PG_FUNCTION_ARGS)
{
	PersonValues *pv = PG_GETARG_PERSON_VALUES_P(0);
	StringInfoData buf;
	KeyValue   *kv;
	int64		n;

	pv_check(pv);
	kv = pv_sorted(pv, &n);
	pq_begintypsend(&buf);
	pq_sendstring(&buf, pv->policy);
	pq_sendint64(&buf, pv->rows);
	pq_sendfloat8(&buf, pv->sum);
	pq_sendint64(&buf, n);
	for (int64 i = 0; i < n; i++)
	{
		pq_sendint64(&buf, (int64) kv[i].key);
		pq_sendfloat8(&buf, kv[i].value);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(person_values_recv);
Datum
person_values_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	const char *policy = pq_getmsgstring(buf);
	PersonValues *pv;
	int64		rows;
	double		sum;
	int64		n;

	if (strlen(policy) >= NAMEDATALEN || !person_policy_name_ok(policy))
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
	pv = pv_new(pv_capacity_for(n), policy);
	pv->rows = rows;
	pv->sum = sum;
	for (int64 i = 0; i < n; i++)
	{
		uint64		key = (uint64) pq_getmsgint64(buf);
		double		value = pq_getmsgfloat8(buf);

		if (isnan(value) || isinf(value))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid value in person_values")));
		pv = pv_add(pv, key, value, PV_SUM);
	}
	if (pv->count != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("repeated key in person_values")));
	PG_RETURN_POINTER(pv);
}

/* ---- aggregates ---- */

static PersonValues *
pv_state(FunctionCallInfo fcinfo, int policy_argno)
{
	MemoryContext aggcxt;
	char	   *policy = NULL;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("person_values transition function called outside an aggregate")));
	if (!PG_ARGISNULL(0))
		return PG_GETARG_PERSON_VALUES_P(0);
	if (policy_argno >= 0 && PG_NARGS() > policy_argno && !PG_ARGISNULL(policy_argno))
	{
		policy = text_to_cstring(PG_GETARG_TEXT_PP(policy_argno));
		if (strlen(policy) >= NAMEDATALEN || !person_policy_name_ok(policy))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid disclosure-control policy name")));
	}
	return pv_new(8, policy);
}

static uint64
person_arg(FunctionCallInfo fcinfo, int argno, bool bytes24)
{
	return bytes24 ? person_key_of_bytes24(PG_GETARG_POINTER(argno)) : (uint64) PG_GETARG_INT64(argno);
}

static Datum
add_value(FunctionCallInfo fcinfo, bool bytes24)
{
	PersonValues *pv = pv_state(fcinfo, 3);
	double		v;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(pv);
	v = PG_GETARG_FLOAT8(1);
	if (isnan(v) || isinf(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a safe aggregate's value must be finite")));
	pv = pv_add(pv, person_arg(fcinfo, 2, bytes24), v, PV_SUM);
	pv->rows++;
	pv->sum += v;
	PG_RETURN_POINTER(pv);
}

static Datum
add_condition(FunctionCallInfo fcinfo, bool bytes24)
{
	PersonValues *pv = pv_state(fcinfo, 3);
	double		v;

	if (PG_ARGISNULL(2))
		PG_RETURN_POINTER(pv);
	v = (!PG_ARGISNULL(1) && PG_GETARG_BOOL(1)) ? 1.0 : 0.0;
	pv = pv_add(pv, person_arg(fcinfo, 2, bytes24), v, PV_ANY);
	pv->rows++;
	pv->sum += v;
	PG_RETURN_POINTER(pv);
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

/*
 * combine: people's contributions add up (a person's rows on both sides of
 * a split are one person).  For rates a person counts when their value is
 * above 0, so adding a 1 from each side changes nothing.
 */
PG_FUNCTION_INFO_V1(person_values_combine);
Datum
person_values_combine(PG_FUNCTION_ARGS)
{
	PersonValues *pv;
	PersonValues *other;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	other = PG_GETARG_PERSON_VALUES_P(1);
	pv_check(other);
	pv = pv_state(fcinfo, -1);
	if (PG_ARGISNULL(0))
		strlcpy(pv->policy, other->policy, NAMEDATALEN);
	else if (strcmp(pv->policy, other->policy) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot combine states counted under different policies")));
	if (other->has_zero)
		pv = pv_add(pv, 0, other->zero_value, PV_SUM);
	for (int32 i = 0; i < other->capacity; i++)
		if (PV_KEYS(other)[i] != 0)
			pv = pv_add(pv, PV_KEYS(other)[i], PV_VALUES(other)[i], PV_SUM);
	pv->rows += other->rows;
	pv->sum += other->sum;
	PG_RETURN_POINTER(pv);
}

static const SdcPolicy *
final_policy(FunctionCallInfo fcinfo, PersonValues *pv)
{
	return sdc_policy_get(fcinfo->flinfo, pv && pv->policy[0] ? pv->policy : NULL);
}

/* whether the statistic over pv may be published (people, dominance) */
static bool
publishable(const SdcPolicy *p, PersonValues *pv)
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

		if (i < 0 ? !pv->has_zero : PV_KEYS(pv)[i] == 0)
			continue;
		v = fabs(i < 0 ? pv->zero_value : PV_VALUES(pv)[i]);
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
	PersonValues *pv;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	pv = PG_GETARG_PERSON_VALUES_P(0);
	pv_check(pv);
	if (!publishable(final_policy(fcinfo, pv), pv))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(pv->sum);
}

PG_FUNCTION_INFO_V1(person_values_safe_avg);
Datum
person_values_safe_avg(PG_FUNCTION_ARGS)
{
	PersonValues *pv;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	pv = PG_GETARG_PERSON_VALUES_P(0);
	pv_check(pv);
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
	PersonValues *pv;
	const SdcPolicy *p;
	int64		with = 0;
	int64		with_shown;
	int64		all_shown;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	pv = PG_GETARG_PERSON_VALUES_P(0);
	pv_check(pv);
	p = final_policy(fcinfo, pv);
	if (pv->has_zero && pv->zero_value > 0)
		with++;
	for (int32 i = 0; i < pv->capacity; i++)
		if (PV_KEYS(pv)[i] != 0 && PV_VALUES(pv)[i] > 0)
			with++;
	if (!sdc_publish_count(p, pv->count, &all_shown) || all_shown == 0 ||
		!sdc_publish_count(p, with, &with_shown))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8((double) with_shown / (double) all_shown);
}
