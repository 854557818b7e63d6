/*
 * test/fuzz/fuzz_person_set.c: libFuzzer target for person_set's text and
 * binary input (src/sdc/person_set.c, with person_table.c and policy.c
 * compiled in), run by fuzz_person.h with its invariants.  What is
 * particular to person_set: its canonical text, the policy and the sorted
 * hexadecimal keys, as person_set_out writes it.
 */
#include "../../src/sdc/person_set.c"
#include "../../src/sdc/person_table.c"
#include "../../src/sdc/policy.c"

#include "fuzz_person.h"

static char *
canonical(const PersonTable *pt, const PersonEntry *e)
{
	size_t		cap = strlen(pt->policy) + 2 + (size_t) pt->count * 17;
	char	   *canon = malloc(cap);
	size_t		len;

	len = (size_t) snprintf(canon, cap, "%s:", pt->policy);
	for (int64 i = 0; i < pt->count; i++)
		len += (size_t) snprintf(canon + len, cap - len, i ? ",%llx" : "%llx", (unsigned long long) e[i].key);
	return canon;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_person(data, size, person_set_in, person_set_recv, canonical);
}
