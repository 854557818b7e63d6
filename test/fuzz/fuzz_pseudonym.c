/*
 * test/fuzz/fuzz_pseudonym.c: libFuzzer target for the pseudonym's text
 * input and its token codec (src/pseudonym.c's parser, compiled in here).
 * Invariants: text that parses gives a positive domain and version, its
 * token has one spelling (the input's token is exactly the re-encoding),
 * and the value's text form parses back to the same bytes; any 22 bytes
 * read as a binary value with positive domain and version round-trip
 * through the text form.  An input starting with B is a binary message for
 * pseudonym_recv instead: what it accepts has a positive domain and
 * version, took 22 bytes, and round-trips through the text form.
 */
#include "../../src/pseudonym.c"

#include "fuzz.h"

/* text form of *p, as pseudonym_out() writes it */
static void
format(const Pseudonym *p, char *out)
{
	char		tok[TOKEN_B64_LEN + 1];

	token_encode(p->token, tok);
	snprintf(out, PSEUDONYM_TEXT_MAX + 1, "%d.%d.%s", p->domain_id, (int) p->version, tok);
}

static void
round_trip(const Pseudonym *p)
{
	char		text[PSEUDONYM_TEXT_MAX + 1];
	Pseudonym	again;

	format(p, text);
	memset(&again, 0xAA, sizeof(again));
	if (pseudonym_parse(text, &again) != NULL || memcmp(p, &again, sizeof(again)) != 0)
		__builtin_trap();
}

/* 'B' and a binary message for pseudonym_recv */
static void
check_received(Datum value, StringInfo buf)
{
	Pseudonym  *r = (Pseudonym *) DatumGetPointer(value);

	if (r->domain_id < 1 || r->version < 1 || r->reserved != 0 || buf->cursor != 6 + CAREDATA_TOKEN_LEN)
		__builtin_trap();
	round_trip(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		str[65];
	Pseudonym	p;

	if (size > 64)
		return 0;
	if (fuzz_receive(pseudonym_recv, data, size, check_received))
		return 0;
	memcpy(str, data, size);
	str[size] = '\0';
	memset(&p, 0, sizeof(p));
	if (pseudonym_parse(str, &p) == NULL)
	{
		char		tok[TOKEN_B64_LEN + 1];

		if (p.domain_id < 1 || p.version < 1)
			__builtin_trap();
		token_encode(p.token, tok);
		if (strcmp(str + strlen(str) - TOKEN_B64_LEN, tok) != 0)
			__builtin_trap();
		round_trip(&p);
	}
	if (size == 6 + CAREDATA_TOKEN_LEN)
	{
		memset(&p, 0, sizeof(p));
		memcpy(&p.domain_id, data, 4);
		memcpy(&p.version, data + 4, 2);
		memcpy(p.token, data + 6, CAREDATA_TOKEN_LEN);
		if (p.domain_id >= 1 && p.version >= 1)
			round_trip(&p);
	}
	return 0;
}
