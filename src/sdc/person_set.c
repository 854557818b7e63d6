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
 * workers or the nodes of a distributed engine as text (DESIGN.md "Scale").
 *
 * A person is a 64-bit key: a bigint or an nhs_number is its own key; a
 * pseudonym's 24 bytes are hashed to 64 bits (hash_bytes_extended, seed 0;
 * two people collide with probability about n^2 / 2^65, one in 3e7 for a
 * million people).  The set is an open-addressing hash table with linear
 * probing, key 0 kept in a flag, grown at half load; transition and combine
 * functions change it in place in the aggregate context, as nodeAgg allows.
 * The text and binary forms list the keys sorted, so equal sets print
 * alike.
 *
 * Text form: "<policy>:<hex key>,<hex key>,..." where <policy> is empty
 * unless the call named one, e.g. "nhs_hes:1f,9434765919" (hex).
 *
 * src/sdc/person_set.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "libpq/pqformat.h"
#include "nodes/primnodes.h"
#include "nodes/pg_list.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "person_key.h"
#include "policy.h"

typedef struct PersonSet
{
	int32		vl_len_;		/* varlena header */
	int32		capacity;		/* slots, a power of two (at least 8) */
	int64		count;			/* distinct keys, zero included */
	bool		has_zero;		/* key 0 is in the set (0 marks an empty slot) */
	char		policy[NAMEDATALEN];	/* the call's policy, "" for the setting */
	uint64		slots[FLEXIBLE_ARRAY_MEMBER];
} PersonSet;

#define PS_HDRSZ		offsetof(PersonSet, slots)
#define PS_SIZE(cap)	(PS_HDRSZ + sizeof(uint64) * (Size) (cap))
#define PS_MAX_CAPACITY	((int32) ((MaxAllocSize - PS_HDRSZ) / sizeof(uint64) / 2))

#define DatumGetPersonSetP(X)	((PersonSet *) PG_DETOAST_DATUM(X))
#define PG_GETARG_PERSON_SET_P(n) DatumGetPersonSetP(PG_GETARG_DATUM(n))

/*
 * A new set in the current memory context: in an aggregate, nodeAgg copies
 * a state it did not have into the aggregate context (and frees the one it
 * replaces), so growth is the only copy and nothing leaks.
 */
static PersonSet *
ps_new(int32 capacity, const char *policy)
{
	PersonSet  *ps;

	if (capacity > PS_MAX_CAPACITY)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct people in one group")));
	ps = palloc0(PS_SIZE(capacity));
	SET_VARSIZE(ps, PS_SIZE(capacity));
	ps->capacity = capacity;
	if (policy)
		strlcpy(ps->policy, policy, NAMEDATALEN);
	return ps;
}

/* add a key, in place; returns the set, a new one when it had to grow */
static PersonSet *
ps_add(PersonSet *ps, uint64 key)
{
	uint32		i;

	if (key == 0)
	{
		if (!ps->has_zero)
		{
			ps->has_zero = true;
			ps->count++;
		}
		return ps;
	}
	if ((ps->count + 1) * 2 > ps->capacity)
	{
		PersonSet  *bigger = ps_new(ps->capacity * 2, ps->policy);

		bigger->has_zero = ps->has_zero;
		bigger->count = ps->has_zero ? 1 : 0;
		for (int32 j = 0; j < ps->capacity; j++)
			if (ps->slots[j] != 0)
				bigger = ps_add(bigger, ps->slots[j]);
		ps = bigger;
	}
	for (i = person_slot(key, ps->capacity);; i = (i + 1) & (uint32) (ps->capacity - 1))
	{
		if (ps->slots[i] == key)
			return ps;
		if (ps->slots[i] == 0)
		{
			ps->slots[i] = key;
			ps->count++;
			return ps;
		}
	}
}

static int
key_cmp(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* the keys, sorted; *n of them */
static uint64 *
ps_sorted_keys(const PersonSet *ps, int64 *n)
{
	uint64	   *keys = palloc_extended(sizeof(uint64) * Max(ps->count, 1), MCXT_ALLOC_HUGE);
	int64		k = 0;

	if (ps->has_zero)
		keys[k++] = 0;
	for (int32 i = 0; i < ps->capacity; i++)
		if (ps->slots[i] != 0)
			keys[k++] = ps->slots[i];
	if (k != ps->count)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("corrupt person_set: %lld keys for a count of %lld", (long long) k, (long long) ps->count)));
	qsort(keys, k, sizeof(uint64), key_cmp);
	*n = k;
	return keys;
}

static void
ps_check(const PersonSet *ps)
{
	if (VARSIZE(ps) < PS_HDRSZ || ps->capacity < 8 || (ps->capacity & (ps->capacity - 1)) != 0 ||
		VARSIZE(ps) != PS_SIZE(ps->capacity) || ps->count < 0 || ps->count > ps->capacity ||
		memchr(ps->policy, '\0', NAMEDATALEN) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("corrupt person_set")));
}

static int32
capacity_for(int64 n)
{
	int64		cap = 8;

	while (cap < n * 2 + 2)
		cap *= 2;
	if (cap > PS_MAX_CAPACITY)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct people in one group")));
	return (int32) cap;
}

static void
policy_check(const char *policy)
{
	if (!person_policy_name_ok(policy))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid policy name in person_set")));
}

PG_FUNCTION_INFO_V1(person_set_in);
Datum
person_set_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	char	   *colon = strchr(str, ':');
	char		policy[NAMEDATALEN];
	PersonSet  *ps;
	int64		n = 0;
	char	   *p;

	if (colon == NULL || colon - str >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type person_set"),
				 errhint("A person_set reads \"<policy>:<hex key>,<hex key>,...\"; the policy may be empty.")));
	memcpy(policy, str, colon - str);
	policy[colon - str] = '\0';
	policy_check(policy);
	for (p = colon + 1; *p; p++)
		if (*p == ',')
			n++;
	ps = ps_new(capacity_for(n + 1), policy);
	p = colon + 1;
	while (*p)
	{
		char	   *end;
		uint64		key;

		errno = 0;
		if (!isxdigit((unsigned char) *p))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type person_set"),
					 errhint("Keys are hexadecimal, separated by commas.")));
		key = strtou64(p, &end, 16);
		if (errno != 0 || (*end != ',' && *end != '\0') || end - p > 16)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type person_set"),
					 errhint("Keys are hexadecimal numbers of at most 16 digits, separated by commas.")));
		ps = ps_add(ps, key);
		p = *end == ',' ? end + 1 : end;
		if (*end == ',' && *p == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type person_set"),
					 errhint("A key follows every comma.")));
	}
	PG_RETURN_POINTER(ps);
}

PG_FUNCTION_INFO_V1(person_set_out);
Datum
person_set_out(PG_FUNCTION_ARGS)
{
	PersonSet  *ps = PG_GETARG_PERSON_SET_P(0);
	StringInfoData buf;
	uint64	   *keys;
	int64		n;

	ps_check(ps);
	keys = ps_sorted_keys(ps, &n);
	initStringInfo(&buf);
	appendStringInfo(&buf, "%s:", ps->policy);
	for (int64 i = 0; i < n; i++)
		appendStringInfo(&buf, i ? ",%llx" : "%llx", (unsigned long long) keys[i]);
	PG_RETURN_CSTRING(buf.data);
}

PG_FUNCTION_INFO_V1(person_set_send);
Datum
person_set_send(PG_FUNCTION_ARGS)
{
	PersonSet  *ps = PG_GETARG_PERSON_SET_P(0);
	StringInfoData buf;
	uint64	   *keys;
	int64		n;

	ps_check(ps);
	keys = ps_sorted_keys(ps, &n);
	pq_begintypsend(&buf);
	pq_sendstring(&buf, ps->policy);
	pq_sendint64(&buf, n);
	for (int64 i = 0; i < n; i++)
		pq_sendint64(&buf, (int64) keys[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(person_set_recv);
Datum
person_set_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	const char *policy = pq_getmsgstring(buf);
	int64		n;
	PersonSet  *ps;

	if (strlen(policy) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid policy name in person_set")));
	policy_check(policy);
	n = pq_getmsgint64(buf);
	if (n < 0 || n > (buf->len - buf->cursor) / 8)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid key count in person_set")));
	ps = ps_new(capacity_for(n), policy);
	for (int64 i = 0; i < n; i++)
		ps = ps_add(ps, (uint64) pq_getmsgint64(buf));
	if (ps->count != n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("repeated key in person_set")));
	PG_RETURN_POINTER(ps);
}

/* ---- aggregates ---- */

static const char *policy_arg(FunctionCallInfo fcinfo, int argno);

/* the state, or a new one (named by the policy argument at policy_argno, if any) */
static PersonSet *
state_arg(FunctionCallInfo fcinfo, int policy_argno, const char *policy)
{
	MemoryContext aggcxt;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("person_set transition function called outside an aggregate")));
	if (PG_ARGISNULL(0))
		return ps_new(8, policy_argno >= 0 ? policy_arg(fcinfo, policy_argno) : policy);
	return PG_GETARG_PERSON_SET_P(0);
}

static const char *
policy_arg(FunctionCallInfo fcinfo, int argno)
{
	char	   *policy;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return NULL;
	policy = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (strlen(policy) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid disclosure-control policy name")));
	policy_check(policy);
	return policy;
}

/* person_set_add(state, bigint or nhs_number [, policy]) */
PG_FUNCTION_INFO_V1(person_set_add_int8);
Datum
person_set_add_int8(PG_FUNCTION_ARGS)
{
	PersonSet  *ps = state_arg(fcinfo, 2, NULL);

	if (!PG_ARGISNULL(1))
		ps = ps_add(ps, (uint64) PG_GETARG_INT64(1));
	PG_RETURN_POINTER(ps);
}

/* person_set_add(state, pseudonym [, policy]) */
PG_FUNCTION_INFO_V1(person_set_add_bytes24);
Datum
person_set_add_bytes24(PG_FUNCTION_ARGS)
{
	PersonSet  *ps = state_arg(fcinfo, 2, NULL);

	if (!PG_ARGISNULL(1))
		ps = ps_add(ps, person_key_of_bytes24(PG_GETARG_POINTER(1)));
	PG_RETURN_POINTER(ps);
}

/* combine, and the aggregate union of person_sets: NULLs are empty sets */
PG_FUNCTION_INFO_V1(person_set_union);
Datum
person_set_union(PG_FUNCTION_ARGS)
{
	PersonSet  *ps;
	PersonSet  *other;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	other = PG_GETARG_PERSON_SET_P(1);
	ps_check(other);
	ps = state_arg(fcinfo, -1, other->policy);
	if (strcmp(ps->policy, other->policy) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot combine person sets counted under different policies")));
	if (other->has_zero)
		ps = ps_add(ps, 0);
	for (int32 i = 0; i < other->capacity; i++)
		if (other->slots[i] != 0)
			ps = ps_add(ps, other->slots[i]);
	PG_RETURN_POINTER(ps);
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
state_policy(FunctionCallInfo fcinfo, PersonSet *ps, int64 *n, bool *unknown)
{
	*unknown = false;
	if (ps == NULL)
	{
		*n = 0;
		return empty_policy(fcinfo, unknown);
	}
	ps_check(ps);
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
	const SdcPolicy *p = state_policy(fcinfo, PG_ARGISNULL(0) ? NULL : PG_GETARG_PERSON_SET_P(0), &n, &unknown);

	if (unknown || !sdc_publish_count(p, n, &shown))
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
	const SdcPolicy *p = state_policy(fcinfo, PG_ARGISNULL(0) ? NULL : PG_GETARG_PERSON_SET_P(0), &n, &unknown);

	if (unknown || !sdc_publish_count(p, n, &shown))
		PG_RETURN_TEXT_P(cstring_to_text(p->redacted));
	PG_RETURN_TEXT_P(cstring_to_text(psprintf(INT64_FORMAT, shown)));
}
