/*
 * test/fuzz/fuzz_person.h: the body of the fuzz targets for the text and
 * binary input of the disclosure-control states (fuzz_person_set.c,
 * fuzz_person_values.c), included after src/sdc/person_table.c.  A target
 * gives its type's input and receive functions and its own writer of the
 * canonical text; ereport(ERROR) returns here as a rejection (fuzz.h).
 *
 * Invariants: text that parses gives a table whose count equals its
 * entries, each key once, a finite sum and finite values, and whose
 * canonical text parses to the same rows, sum, keys and values, bit for bit
 * (a person_set's rows, sum and values are all 0).  An input starting with B
 * is a binary message instead: what it accepts holds each key once, with
 * finite values, and reads nothing beyond the message.
 */
#ifndef CAREDATA_FUZZ_PERSON_H
#define CAREDATA_FUZZ_PERSON_H

#include <math.h>

#include "fuzz.h"

/* the canonical text of pt (its entries e sorted), in malloc'd memory */
typedef char *(*PersonCanonical) (const PersonTable *pt, const PersonEntry *e);

static PersonTable *
fuzz_person_parse(PGFunction in, const char *str)
{
	return (PersonTable *) DatumGetPointer(fuzz_call1(in, CStringGetDatum(str)));
}

/* the entries of pt sorted, each key once and each value finite */
static PersonEntry *
fuzz_person_entries(const PersonTable *pt)
{
	PersonEntry *e = person_table_sorted(pt);	/* errors if count and keys disagree */

	for (int64 i = 0; i < pt->count; i++)
		if (!isfinite(e[i].value) || (i > 0 && e[i].key <= e[i - 1].key))
			__builtin_trap();
	return e;
}

/* 'B' and a binary message: what it accepts is consistent */
static void
fuzz_person_received(Datum value, StringInfo buf)
{
	if (buf->cursor > buf->len)
		__builtin_trap();
	fuzz_person_entries((PersonTable *) DatumGetPointer(value));
}

static int
fuzz_person(const uint8_t *data, size_t size, PGFunction in, PGFunction recv,
			PersonCanonical canonical)
{
	char	   *str;
	jmp_buf		on_error;

	if (size > 4096)
		return 0;
	if (fuzz_receive(recv, data, size, fuzz_person_received))
		return 0;
	str = malloc(size + 1);
	memcpy(str, data, size);
	str[size] = '\0';
	fuzz_on_error = &on_error;
	if (setjmp(on_error) == 0)
	{
		PersonTable *pt = fuzz_person_parse(in, str);
		PersonEntry *e = fuzz_person_entries(pt);
		char	   *canon;
		PersonTable *again;
		PersonEntry *e2;

		if (!isfinite(pt->sum))
			__builtin_trap();
		canon = canonical(pt, e);
		again = fuzz_person_parse(in, canon);
		if (again->count != pt->count || again->rows != pt->rows ||
			memcmp(&again->sum, &pt->sum, sizeof(double)) != 0)
			__builtin_trap();
		e2 = person_table_sorted(again);
		for (int64 i = 0; i < pt->count; i++)
			if (e2[i].key != e[i].key || memcmp(&e2[i].value, &e[i].value, sizeof(double)) != 0)
				__builtin_trap();
		free(canon);
	}
	fuzz_on_error = NULL;
	fuzz_free_all();
	free(str);
	return 0;
}

#endif							/* CAREDATA_FUZZ_PERSON_H */
