/*
 * test/fuzz/fuzz_nhs_number.c: libFuzzer target for the NHS number's text
 * and binary input (src/identifiers/nhs_number.c's parser and value check, compiled in
 * here; the server's functions it never calls are left unresolved).
 * Invariants: a parse that succeeds gives a valid value, whose formatted
 * text parses back to the same value; an input starting with B is a binary
 * message for nhs_number_recv, which accepts only valid numbers.
 */
#include "../../src/identifiers/nhs_number.c"

#include "fuzz.h"

/* the check's tables, as _PG_init fills them in the server */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	nhs_number_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64		value = 0;
	int			ndigits;

	if (size > 64)
		return 0;
	if (nhs_parse((const char *) data, (int) size, &value, &ndigits) == NHS_OK)
	{
		char		buf[16];
		int64		again = -1;

		if (nhs_check_value(value) != NHS_OK)
			__builtin_trap();
		nhs_format(value, buf);
		if (nhs_parse(buf, (int) strlen(buf), &again, &ndigits) != NHS_OK || again != value)
			__builtin_trap();
	}
	if (size > 0 && data[0] == 'B')
	{
		/* 'B' and a binary message for nhs_number_recv: what it accepts is valid */
		StringInfoData buf;
		Datum		got;

		if (fuzz_recv(nhs_number_recv, &buf, data + 1, size - 1, &got) &&
			(nhs_check_value(DatumGetInt64(got)) != NHS_OK || buf.cursor != 8))
			__builtin_trap();
		fuzz_free_all();
	}
	return 0;
}
