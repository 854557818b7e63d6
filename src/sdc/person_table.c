/*-------------------------------------------------------------------------
 *
 * person_table.c
 *		The hash table of people behind the safe aggregates' states
 *		(person_table.h): creation, insertion, merging, checking, the
 *		sorted listing, and the text and binary forms of person_set and
 *		person_values.
 *
 * src/sdc/person_table.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "person_table.h"
#include "policy.h"
#include "record_key.h"
#include "base/pg_compat.h"
#include "keys/keys.h"

#define PT_HDRSZ		offsetof(PersonTable, data)
#define PT_SIZE(cap, v)	(PT_HDRSZ + ((v) ? 2 : 1) * sizeof(uint64) * (Size) (cap))
#define PT_MAX_CAPACITY	((int64) ((MaxAllocSize - PT_HDRSZ) / sizeof(uint64) / 4))
#define PSEUDONYM_BYTES	CAREDATA_PSEUDONYM_BYTES
#define PT_TYPE_NAME(v)	((v) ? "person_values" : "person_set")

uint64
person_key_of_pseudonym(const void *pseudonym)
{
	return record_key_bytes(pseudonym, PSEUDONYM_BYTES);
}

uint64
person_key_arg(FunctionCallInfo fcinfo, int argno, PersonArg kind)
{
	switch (kind)
	{
		case PERSON_ARG_INT8:
			return record_key_int8(PG_GETARG_INT64(argno));
		case PERSON_ARG_PSEUDONYM:
			return person_key_of_pseudonym(PG_GETARG_POINTER(argno));
		case PERSON_ARG_TEXT:
			{
				/* the same key as the pseudonym itself: states combine */
				unsigned char bytes[CAREDATA_PSEUDONYM_BYTES];
				char	   *s = text_to_cstring(PG_GETARG_TEXT_PP(argno));

				keys_pseudonym_from_cstring(s, bytes);
				pfree(s);
				return person_key_of_pseudonym(bytes);
			}
	}
	elog(ERROR, "unknown person argument kind %d", (int) kind);
	return 0;					/* keep the compiler quiet */
}

/* the policy a state names: none ("", the setting) or a policy name */
bool
person_policy_name_ok(const char *policy)
{
	return policy[0] == '\0' || sdc_policy_name_ok(policy);
}

/* murmur3's 64-bit finaliser: keys that are numbers are not random */
static inline uint32
slot_of(uint64 key, int32 capacity)
{
	key ^= key >> 33;
	key *= UINT64CONST(0xff51afd7ed558ccd);
	key ^= key >> 33;
	key *= UINT64CONST(0xc4ceb9fe1a85ec53);
	key ^= key >> 33;
	return (uint32) (key & (uint64) (capacity - 1));
}

/* a table for this many people, in the current memory context */
PersonTable *
person_table_new(int64 people, bool has_values, const char *policy)
{
	int64		cap = 8;
	PersonTable *pt;

	while (cap < people * 2 + 2)
		cap *= 2;
	if (cap > PT_MAX_CAPACITY)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct people in one group")));
	pt = palloc0(PT_SIZE(cap, has_values));
	SET_VARSIZE(pt, PT_SIZE(cap, has_values));
	pt->capacity = (int32) cap;
	pt->has_values = has_values;
	if (policy)
		strlcpy(pt->policy, policy, NAMEDATALEN);
	return pt;
}

static double
merged(double old, double value, PersonMerge merge)
{
	return merge == PERSON_SUM ? old + value : Max(old, value);
}

/* add a person (and their value); the table, a new one when it had to grow */
PersonTable *
person_table_add(PersonTable *pt, uint64 key, double value, PersonMerge merge)
{
	uint32		i;

	if (key == 0)
	{
		pt->zero_value = pt->has_zero ? merged(pt->zero_value, value, merge) : value;
		if (!pt->has_zero)
			pt->count++;
		pt->has_zero = true;
		return pt;
	}
	if ((pt->count + 1) * 2 > pt->capacity)
	{
		PersonTable *bigger = person_table_new(pt->count + 1, pt->has_values, pt->policy);

		bigger->rows = pt->rows;
		bigger->sum = pt->sum;
		bigger->has_zero = pt->has_zero;
		bigger->zero_value = pt->zero_value;
		bigger->count = pt->has_zero ? 1 : 0;
		for (int32 j = 0; j < pt->capacity; j++)
			if (PT_KEYS(pt)[j] != 0)
				bigger = person_table_add(bigger, PT_KEYS(pt)[j],
										  pt->has_values ? PT_VALUES(pt)[j] : 0.0, merge);
		pt = bigger;
	}
	for (i = slot_of(key, pt->capacity);; i = (i + 1) & (uint32) (pt->capacity - 1))
	{
		if (PT_KEYS(pt)[i] == key)
		{
			if (pt->has_values)
				PT_VALUES(pt)[i] = merged(PT_VALUES(pt)[i], value, merge);
			return pt;
		}
		if (PT_KEYS(pt)[i] == 0)
		{
			PT_KEYS(pt)[i] = key;
			if (pt->has_values)
				PT_VALUES(pt)[i] = value;
			pt->count++;
			return pt;
		}
	}
}

/* every person of other into pt (values add up), with its rows and sum */
PersonTable *
person_table_merge(PersonTable *pt, const PersonTable *other)
{
	if (strcmp(pt->policy, other->policy) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot combine people counted under different policies")));
	if (other->has_zero)
		pt = person_table_add(pt, 0, other->zero_value, PERSON_SUM);
	for (int32 i = 0; i < other->capacity; i++)
		if (PT_KEYS(other)[i] != 0)
			pt = person_table_add(pt, PT_KEYS(other)[i],
								  other->has_values ? PT_VALUES(other)[i] : 0.0, PERSON_SUM);
	pt->rows += other->rows;
	pt->sum += other->sum;
	return pt;
}

void
person_table_check(const PersonTable *pt, bool has_values)
{
	if (VARSIZE(pt) < PT_HDRSZ || pt->has_values != has_values || pt->capacity < 8 ||
		(pt->capacity & (pt->capacity - 1)) != 0 || VARSIZE(pt) != PT_SIZE(pt->capacity, has_values) ||
		pt->count < 0 || pt->count > pt->capacity || pt->rows < 0 ||
		memchr(pt->policy, '\0', NAMEDATALEN) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("corrupt %s", PT_TYPE_NAME(has_values))));
}

static int
entry_cmp(const void *a, const void *b)
{
	uint64		x = ((const PersonEntry *) a)->key;
	uint64		y = ((const PersonEntry *) b)->key;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* the people sorted by key (pt->count of them), so equal tables print alike */
PersonEntry *
person_table_sorted(const PersonTable *pt)
{
	PersonEntry *e = palloc_extended(sizeof(PersonEntry) * Max(pt->count, 1), MCXT_ALLOC_HUGE);
	int64		k = 0;

	if (pt->has_zero)
	{
		e[k].key = 0;
		e[k++].value = pt->zero_value;
	}
	for (int32 i = 0; i < pt->capacity; i++)
		if (PT_KEYS(pt)[i] != 0)
		{
			e[k].key = PT_KEYS(pt)[i];
			e[k++].value = pt->has_values ? PT_VALUES(pt)[i] : 0.0;
		}
	if (k != pt->count)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("corrupt table of people: %lld keys for a count of %lld", (long long) k, (long long) pt->count)));
	qsort(e, k, sizeof(PersonEntry), entry_cmp);
	return e;
}

PersonTable *
person_table_state(FunctionCallInfo fcinfo, bool has_values, int policy_argno, const char *policy)
{
	MemoryContext aggcxt;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a safe aggregate's transition function was called outside an aggregate")));
	if (!PG_ARGISNULL(0))
	{
		PersonTable *pt = PG_GETARG_PERSON_TABLE_P(0);

		/* one policy per call: every row must name the state's */
		if (policy_argno >= 0 && PG_NARGS() > policy_argno)
		{
			text	   *named = PG_ARGISNULL(policy_argno) ? NULL : PG_GETARG_TEXT_PP(policy_argno);
			size_t		len = named ? VARSIZE_ANY_EXHDR(named) : 0;

			if (len != strlen(pt->policy) || (len > 0 && memcmp(VARDATA_ANY(named), pt->policy, len) != 0))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("a safe aggregate's policy must be the same on every row"),
						 errhint("Name the policy with a constant, or leave it out: the policy in force applies.")));
		}
		return pt;
	}
	if (policy_argno >= 0 && PG_NARGS() > policy_argno && !PG_ARGISNULL(policy_argno))
	{
		char	   *named = text_to_cstring(PG_GETARG_TEXT_PP(policy_argno));

		if (!person_policy_name_ok(named))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid disclosure-control policy name"),
					 errhint("A policy name is lower-case letters, digits and _, starting with a letter.")));
		policy = named;
	}
	return person_table_new(0, has_values, policy);
}

PersonTable *
person_table_final_state(FunctionCallInfo fcinfo, bool has_values)
{
	PersonTable *pt;

	if (PG_ARGISNULL(0))
		return NULL;
	pt = PG_GETARG_PERSON_TABLE_P(0);
	person_table_check(pt, has_values);
	return pt;
}

const SdcPolicy *
person_table_policy(FunctionCallInfo fcinfo, const PersonTable *pt)
{
	return sdc_policy_get(fcinfo->flinfo, pt && pt->policy[0] ? pt->policy : NULL);
}

/* ---- text and binary forms ---- */

/* what a type's text form says when it is misspelt */
typedef struct PersonTextForm
{
	char		after_policy;	/* the delimiter that ends the policy */
	const char *syntax;			/* the whole form */
	const char *not_hex;		/* an entry that does not start with a key */
	const char *bad_key;		/* a key too long or not ended as it should be */
	const char *dangling;		/* a comma that ends the text */
} PersonTextForm;

static const PersonTextForm set_form = {
	':',
	"A person_set reads \"<policy>:<hex key>,<hex key>,...\"; the policy may be empty.",
	"Keys are hexadecimal, separated by commas.",
	"Keys are hexadecimal numbers of at most 16 digits, separated by commas.",
	"A key follows every comma."
};

static const PersonTextForm values_form = {
	'|',
	"A person_values reads \"<policy>|<rows>|<sum>|<hex key>=<value>,...\".",
	"Keys are hexadecimal numbers of at most 16 digits.",
	"Each entry is <hex key>=<value>.",
	"An entry follows every comma."
};

static void
bad_text(bool has_values, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type %s", PT_TYPE_NAME(has_values)),
			 errhint("%s", hint)));
}

/* a finite double at *p, ended by a character of stops or the end */
static double
parse_value(char **p, const char *stops)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(*p, &end);
	if (end == *p || errno != 0 || strchr(stops, *end) == NULL || isnan(v) || isinf(v))
		bad_text(true, "Values are finite decimal numbers.");
	*p = end;
	return v;
}

PersonTable *
person_table_in(char *str, bool has_values)
{
	const PersonTextForm *f = has_values ? &values_form : &set_form;
	char	   *delim = strchr(str, f->after_policy);
	char		policy[NAMEDATALEN];
	PersonTable *pt;
	int64		n = 0;
	int64		rows = 0;
	double		sum = 0.0;
	char	   *p;
	char	   *end;

	if (delim == NULL || delim - str >= NAMEDATALEN)
		bad_text(has_values, f->syntax);
	memcpy(policy, str, delim - str);
	policy[delim - str] = '\0';
	if (!person_policy_name_ok(policy))
		bad_text(has_values, "A policy name is lower-case letters, digits and _.");
	p = delim + 1;
	if (has_values)
	{
		/* <rows>|<sum>| */
		errno = 0;
		rows = strtoll(p, &end, 10);
		if (end == p || *end != '|' || errno != 0 || rows < 0)
			bad_text(true, "The row count is a non-negative integer.");
		p = end + 1;
		sum = parse_value(&p, "|");
		if (*p != '|')
			bad_text(true, f->syntax);
		p++;
	}
	for (char *c = p; *c; c++)
		if (*c == ',')
			n++;
	pt = person_table_new(n + 1, has_values, policy);
	pt->rows = rows;
	pt->sum = sum;
	while (*p)
	{
		uint64		key;
		double		value = 0.0;
		int64		before = pt->count;

		errno = 0;
		if (!isxdigit((unsigned char) *p))
			bad_text(has_values, f->not_hex);
		key = strtou64(p, &end, 16);
		if (errno != 0 || end - p > 16 ||
			(has_values ? *end != '=' : (*end != ',' && *end != '\0')))
			bad_text(has_values, f->bad_key);
		p = end;
		if (has_values)
		{
			p++;
			value = parse_value(&p, ",");
		}
		if (*p == ',' && *++p == '\0')
			bad_text(has_values, f->dangling);
		pt = person_table_add(pt, key, value, PERSON_SUM);
		if (pt->count == before)
			bad_text(has_values, "Each key appears once.");
	}
	return pt;
}

char *
person_table_out(const PersonTable *pt, bool has_values)
{
	StringInfoData buf;
	PersonEntry *e;
	char		num[64];

	person_table_check(pt, has_values);
	e = person_table_sorted(pt);
	initStringInfo(&buf);
	if (has_values)
	{
		snprintf(num, sizeof(num), "%.17g", pt->sum);
		appendStringInfo(&buf, "%s|%lld|%s|", pt->policy, (long long) pt->rows, num);
	}
	else
		appendStringInfo(&buf, "%s:", pt->policy);
	for (int64 i = 0; i < pt->count; i++)
	{
		appendStringInfo(&buf, i ? ",%llx" : "%llx", (unsigned long long) e[i].key);
		if (has_values)
		{
			snprintf(num, sizeof(num), "%.17g", e[i].value);
			appendStringInfo(&buf, "=%s", num);
		}
	}
	return buf.data;
}

bytea *
person_table_send(const PersonTable *pt, bool has_values)
{
	StringInfoData buf;
	PersonEntry *e;

	person_table_check(pt, has_values);
	e = person_table_sorted(pt);
	pq_begintypsend(&buf);
	pq_sendstring(&buf, pt->policy);
	if (has_values)
	{
		pq_sendint64(&buf, pt->rows);
		pq_sendfloat8(&buf, pt->sum);
	}
	pq_sendint64(&buf, pt->count);
	for (int64 i = 0; i < pt->count; i++)
	{
		pq_sendint64(&buf, (int64) e[i].key);
		if (has_values)
			pq_sendfloat8(&buf, e[i].value);
	}
	return pq_endtypsend(&buf);
}

PersonTable *
person_table_recv(StringInfo buf, bool has_values)
{
	const char *policy = pq_getmsgstring(buf);
	PersonTable *pt;
	int64		rows = 0;
	double		sum = 0.0;
	int64		n;

	if (!person_policy_name_ok(policy))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid policy name in %s", PT_TYPE_NAME(has_values))));
	if (has_values)
	{
		rows = pq_getmsgint64(buf);
		sum = pq_getmsgfloat8(buf);
	}
	n = pq_getmsgint64(buf);
	if (rows < 0 || isnan(sum) || isinf(sum) || n < 0 || n > (buf->len - buf->cursor) / (has_values ? 16 : 8))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 has_values ? errmsg("invalid person_values header") :
				 errmsg("invalid key count in person_set")));
	pt = person_table_new(n, has_values, policy);
	pt->rows = rows;
	pt->sum = sum;
	for (int64 i = 0; i < n; i++)
	{
		uint64		key = (uint64) pq_getmsgint64(buf);
		double		value = has_values ? pq_getmsgfloat8(buf) : 0.0;

		if (isnan(value) || isinf(value))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid value in person_values")));
		pt = person_table_add(pt, key, value, PERSON_SUM);
	}
	if (pt->count != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("repeated key in %s", PT_TYPE_NAME(has_values))));
	return pt;
}

/*
 * The combine function of every safe aggregate, and the union of
 * person_sets: the people of both (values add up: a person's rows on both
 * sides of a split are one person; for rates a person counts when their
 * value is above 0, so a 1 from each side changes nothing).  NULLs are
 * empty tables.
 */
PG_FUNCTION_INFO_V1(person_table_combine);
Datum
person_table_combine(PG_FUNCTION_ARGS)
{
	PersonTable *pt;
	PersonTable *other;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	other = PG_GETARG_PERSON_TABLE_P(1);
	person_table_check(other, other->has_values);
	pt = person_table_state(fcinfo, other->has_values, -1, other->policy);
	if (pt->has_values != other->has_values)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("cannot combine a person_set with a person_values")));
	PG_RETURN_POINTER(person_table_merge(pt, other));
}
