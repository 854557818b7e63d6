/*
 * test/fuzz/fuzz_postcode.c: libFuzzer target for postcode parsing
 * (src/identifiers/postcode.c's parser, compiled in here).  Invariant: a postcode that
 * parses is canonical ("OUTWARD INWARD") and parses back to itself.
 */
#include "../../src/identifiers/postcode.c"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		out[16];
	int			outward;

	if (size > 64)
		return 0;
	if (postcode_parse((const char *) data, (int) size, out, &outward) == PC_OK)
	{
		char		again[16];
		int			outward2;

		if (postcode_parse(out, (int) strlen(out), again, &outward2) != PC_OK ||
			strcmp(out, again) != 0 || outward != outward2 || out[outward] != ' ')
			__builtin_trap();
	}
	return 0;
}
