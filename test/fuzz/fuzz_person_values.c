/*
 * test/fuzz/fuzz_person_values.c: libFuzzer target for person_values's
 * text and binary input (src/sdc/person_values.c, with person_table.c and
 * policy.c compiled in), run by fuzz_person.h with its invariants.  What is
 * particular to person_values: its canonical text, the policy, rows, sum
 * and sorted keys with values to 17 significant digits, as
 * person_values_out writes it.
 */
#include "../../src/sdc/person_values.c"
#include "../../src/sdc/person_table.c"
#include "../../src/sdc/policy.c"

#include "fuzz_person.h"

static char *
canonical(const PersonTable *pt, const PersonEntry *e)
{
	size_t		cap = strlen(pt->policy) + 64 + (size_t) pt->count * 48;
	char	   *canon = malloc(cap);
	size_t		len;

	len = (size_t) snprintf(canon, cap, "%s|%lld|%.17g|", pt->policy, (long long) pt->rows, pt->sum);
	for (int64 i = 0; i < pt->count; i++)
		len += (size_t) snprintf(canon + len, cap - len, i ? ",%llx=%.17g" : "%llx=%.17g",
								 (unsigned long long) e[i].key, e[i].value);
	return canon;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_person(data, size, person_values_in, person_values_recv, canonical);
}
