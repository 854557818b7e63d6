/*
 * test/fuzz/fuzz_nhs_number.c: libFuzzer target for the NHS number's text
 * and binary input (src/nhs_number.c's parser and value check, compiled in
 * here; the server's functions it never calls are left unresolved).
 * Invariants: a parse that succeeds gives a valid value, whose formatted
 * text parses back to the same value; an input starting with B is a binary
 * message for nhs_number_recv, which accepts only valid numbers.
 */
#include "../../src/nhs_number.c"

#include "fuzz.h"

/* 'B' and a binary message for nhs_number_recv: what it accepts is valid */
static void
check_received(Datum value, StringInfo buf)
{
	if (nhs_check_value(DatumGetInt64(value)) != NHS_OK || buf->cursor != 8)
		__builtin_trap();
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
	fuzz_receive(nhs_number_recv, data, size, check_received);
	return 0;
}
