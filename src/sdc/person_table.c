/*-------------------------------------------------------------------------
 *
 * person_table.c
 *		The hash table of people behind the safe aggregates' states
 *		(person_table.h): creation, insertion, merging, checking and the
 *		sorted listing their text and binary forms print.
 *
 * src/sdc/person_table.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "person_table.h"
#include "policy.h"
#include "record_key.h"
#include "base/pg_compat.h"

#define PT_HDRSZ		offsetof(PersonTable, data)
#define PT_SIZE(cap, v)	(PT_HDRSZ + ((v) ? 2 : 1) * sizeof(uint64) * (Size) (cap))
#define PT_MAX_CAPACITY	((int64) ((MaxAllocSize - PT_HDRSZ) / sizeof(uint64) / 4))
#define PSEUDONYM_BYTES	24

uint64
person_key_of_pseudonym(const void *pseudonym)
{
	return record_key_bytes(pseudonym, PSEUDONYM_BYTES);
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
person_table_check(const PersonTable *pt, bool has_values, const char *type_name)
{
	if (VARSIZE(pt) < PT_HDRSZ || pt->has_values != has_values || pt->capacity < 8 ||
		(pt->capacity & (pt->capacity - 1)) != 0 || VARSIZE(pt) != PT_SIZE(pt->capacity, has_values) ||
		pt->count < 0 || pt->count > pt->capacity || pt->rows < 0 ||
		memchr(pt->policy, '\0', NAMEDATALEN) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("corrupt %s", type_name)));
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
	person_table_check(other, other->has_values, other->has_values ? "person_values" : "person_set");
	pt = person_table_state(fcinfo, other->has_values, -1, other->policy);
	if (pt->has_values != other->has_values)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("cannot combine a person_set with a person_values")));
	PG_RETURN_POINTER(person_table_merge(pt, other));
}
