/*
 * test/fuzz/fuzz_sex.c: libFuzzer target for sex standardisation
 * (src/identifiers/sex.c's lookup, compiled in here), given each input as a text datum
 * with a 4-byte header.  Invariant: a recognised spelling maps to one of
 * the codes 1, 2, 9, X, and the code itself is recognised as itself.
 */
#include "../../src/identifiers/sex.c"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	text	   *t;
	const char *code;

	if (size > 256)
		return 0;
	t = malloc(VARHDRSZ + size);
	SET_VARSIZE(t, VARHDRSZ + size);
	memcpy(VARDATA(t), data, size);
	code = sex_lookup(t);
	free(t);
	if (code != NULL)
	{
		text	   *c;
		const char *again;

		if (strcmp(code, "1") != 0 && strcmp(code, "2") != 0 && strcmp(code, "9") != 0 && strcmp(code, "X") != 0)
			__builtin_trap();
		c = malloc(VARHDRSZ + strlen(code));
		SET_VARSIZE(c, VARHDRSZ + strlen(code));
		memcpy(VARDATA(c), code, strlen(code));
		again = sex_lookup(c);
		free(c);
		if (again == NULL || strcmp(again, code) != 0)
			__builtin_trap();
	}
	return 0;
}
