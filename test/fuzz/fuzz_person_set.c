/*
 * test/fuzz/fuzz_person_set.c: libFuzzer target for person_set's text and
 * binary input (src/sdc/person_set.c, with person_table.c and policy.c
 * compiled in).  ereport(ERROR) returns here as a rejection (fuzz.h).
 * Invariants: text that parses gives a table whose
 * count equals its entries, each key once, and whose canonical text (policy
 * and sorted hexadecimal keys, as person_set_out writes it) parses to the
 * same keys.  An input starting with B is a binary message instead
 * (person_set_recv): what it accepts holds each key once.
 */
#include "../../src/sdc/person_set.c"
#include "../../src/sdc/person_table.c"
#include "../../src/sdc/policy.c"

#include <math.h>

#include "fuzz.h"

/* binary input: what it read stays within the message */
static PersonTable *
receive(const uint8_t *data, size_t size)
{
	StringInfoData buf;
	PersonTable *pt;

	fuzz_message(&buf, data, size);
	pt = (PersonTable *) DatumGetPointer(fuzz_call1(person_set_recv, PointerGetDatum(&buf)));
	if (buf.cursor > buf.len)
		__builtin_trap();
	return pt;
}

static PersonTable *
parse(const char *str)
{
	return (PersonTable *) DatumGetPointer(fuzz_call1(person_set_in, CStringGetDatum(str)));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *str;
	jmp_buf		on_error;

	if (size > 4096)
		return 0;
	if (size > 0 && data[0] == 'B')
	{
		/* 'B' and a binary message: what it accepts is consistent */
		jmp_buf		on_recv_error;

		fuzz_on_error = &on_recv_error;
		if (setjmp(on_recv_error) == 0)
		{
			PersonTable *pt = receive(data + 1, size - 1);
			PersonEntry *e = person_table_sorted(pt);	/* errors if count and keys disagree */

			for (int64 i = 1; i < pt->count; i++)
				if (e[i].key <= e[i - 1].key || (pt->has_values && !isfinite(e[i].value)))
					__builtin_trap();
		}
		fuzz_on_error = NULL;
		fuzz_free_all();
		return 0;
	}
	str = malloc(size + 1);
	memcpy(str, data, size);
	str[size] = '\0';
	fuzz_on_error = &on_error;
	if (setjmp(on_error) == 0)
	{
		PersonTable *pt = parse(str);
		PersonEntry *e = person_table_sorted(pt);
		size_t		cap = strlen(pt->policy) + 2 + (size_t) pt->count * 17;
		char	   *canon = malloc(cap);
		size_t		len;
		PersonTable *again;
		PersonEntry *e2;

		len = (size_t) snprintf(canon, cap, "%s:", pt->policy);
		for (int64 i = 0; i < pt->count; i++)
			len += (size_t) snprintf(canon + len, cap - len, i ? ",%llx" : "%llx", (unsigned long long) e[i].key);
		for (int64 i = 1; i < pt->count; i++)
			if (e[i].key <= e[i - 1].key)
				__builtin_trap();
		again = parse(canon);
		if (again->count != pt->count)
			__builtin_trap();
		e2 = person_table_sorted(again);
		for (int64 i = 0; i < pt->count; i++)
			if (e2[i].key != e[i].key)
				__builtin_trap();
		free(canon);
	}
	fuzz_on_error = NULL;
	fuzz_free_all();
	free(str);
	return 0;
}
