/*-------------------------------------------------------------------------
 *
 * person_table.h
 *		The people behind a safe aggregate: one hash table of 64-bit person
 *		keys, with or without a value per person, shared by the state types
 *		person_set (keys) and person_values (keys and values).
 *
 * A person's key is their record key (record_key.h), a keyed hash: never
 * the person's value (two people collide with probability about
 * n^2 / 2^65).  The table is open addressing with linear
 * probing, key 0 kept in a flag (0 marks an empty slot), grown at half
 * load.  Transition and combine functions change it in place in the
 * aggregate context; a table that must grow is made anew in the current
 * context, and nodeAgg copies it into its own (freeing the old one), so
 * nothing leaks.
 *
 * The text and binary forms of both types are read and written here too,
 * by one set of functions that the has_values flag steers: person_set's
 * "<policy>:<hex key>,...", person_values's
 * "<policy>|<rows>|<sum>|<hex key>=<value>,..." (keys sorted, values with
 * 17 significant digits, so both round-trip exactly).
 *
 * src/sdc/person_table.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SDC_PERSON_TABLE_H
#define CAREDATA_SDC_PERSON_TABLE_H

#include "fmgr.h"
#include "lib/stringinfo.h"

typedef struct PersonTable
{
	int32		vl_len_;		/* varlena header */
	int32		capacity;		/* slots, a power of two (at least 8) */
	int64		count;			/* people, key 0 included */
	int64		rows;			/* rows aggregated (person_values) */
	double		sum;			/* sum of the values over rows (person_values) */
	bool		has_zero;		/* key 0 is in the table */
	bool		has_values;		/* a value per person follows the keys */
	double		zero_value;
	char		policy[NAMEDATALEN];	/* the call's policy, "" for the setting */
	uint64		data[FLEXIBLE_ARRAY_MEMBER];	/* keys, then values */
} PersonTable;

typedef enum PersonMerge
{
	PERSON_SUM,					/* a person's values add up */
	PERSON_ANY					/* a person's value is the largest seen */
} PersonMerge;

typedef struct PersonEntry
{
	uint64		key;
	double		value;
} PersonEntry;

#define PT_KEYS(pt)		((pt)->data)
#define PT_VALUES(pt)	((double *) ((pt)->data + (pt)->capacity))
#define PG_GETARG_PERSON_TABLE_P(n) ((PersonTable *) PG_DETOAST_DATUM(PG_GETARG_DATUM(n)))

extern PersonTable *person_table_new(int64 people, bool has_values, const char *policy);
extern PersonTable *person_table_add(PersonTable *pt, uint64 key, double value, PersonMerge merge);
extern PersonTable *person_table_merge(PersonTable *pt, const PersonTable *other);
extern void person_table_check(const PersonTable *pt, bool has_values);
extern PersonEntry *person_table_sorted(const PersonTable *pt);
extern uint64 person_key_of_pseudonym(const void *pseudonym);
/* how a transition function's person argument is given */
typedef enum PersonArg
{
	PERSON_ARG_INT8,			/* a bigint or nhs_number: its 8 bytes */
	PERSON_ARG_PSEUDONYM,		/* a caredata.pseudonym: its 24 bytes */
	PERSON_ARG_TEXT				/* a pseudonym's text form, as published
								 * views show it: keyed as the pseudonym */
} PersonArg;

/* argument argno, a person, as its record key (record_key.h) */
extern uint64 person_key_arg(FunctionCallInfo fcinfo, int argno, PersonArg kind);
extern bool person_policy_name_ok(const char *policy);

/* the state argument of a transition or combine function, or a new one */
extern PersonTable *person_table_state(FunctionCallInfo fcinfo, bool has_values,
									   int policy_argno, const char *policy);

/* a final function's state (argument 0), checked; NULL for a NULL state */
extern PersonTable *person_table_final_state(FunctionCallInfo fcinfo, bool has_values);

/* the policy a state counts under: the one its call named, else the setting */
extern const struct SdcPolicy *person_table_policy(FunctionCallInfo fcinfo, const PersonTable *pt);

/* the text and binary forms; the input functions validate all they read */
extern PersonTable *person_table_in(char *str, bool has_values);
extern char *person_table_out(const PersonTable *pt, bool has_values);
extern bytea *person_table_send(const PersonTable *pt, bool has_values);
extern PersonTable *person_table_recv(StringInfo buf, bool has_values);

#endif							/* CAREDATA_SDC_PERSON_TABLE_H */
