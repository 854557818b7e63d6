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
		jmp_buf		on_error;
		StringInfoData buf;

		fuzz_message(&buf, data + 1, size - 1);
		fuzz_on_error = &on_error;
		if (setjmp(on_error) == 0)
		{
			int64		got = DatumGetInt64(fuzz_call1(nhs_number_recv, PointerGetDatum(&buf)));

			if (nhs_check_value(got) != NHS_OK || buf.cursor != 8)
				__builtin_trap();
		}
		fuzz_on_error = NULL;
		fuzz_free_all();
	}
	return 0;
}
