/*
 * test/fuzz/fuzz_names.c: libFuzzer target for the name and address
 * standardisers (src/linkage/fold.c, names.c and address.c, compiled in here with the postcode
 * parser and the string comparators it calls), on any bytes, valid UTF-8
 * or not.  Invariants: the folded text is never longer than the input, is
 * valid UTF-8, has single spaces between words and none first or last; a
 * standardised name standardises to itself; an address never grows by more
 * than half, and its house numbers each start with a digit; a postcode of
 * any country is never longer than its input and holds only upper-case
 * letters, digits, hyphens and single spaces.
 */
#include "../../src/identifiers/postcode.c"
#include "../../src/linkage/compare.c"
#include "../../src/linkage/fold.c"
#include "../../src/linkage/names.c"
#include "../../src/linkage/address.c"

#include "fuzz.h"

static void
check_words(const char *s, int n)
{
	const unsigned char *u = (const unsigned char *) s;

	if ((int) strlen(s) != n)
		__builtin_trap();
	if (n > 0 && (s[0] == ' ' || s[n - 1] == ' '))
		__builtin_trap();
	for (int i = 1; i < n; i++)
		if (s[i] == ' ' && s[i - 1] == ' ')
			__builtin_trap();
	for (int i = 0; i < n;)
	{
		int32		cp;

		i += utf8_next(u + i, n - i, &cp);
		if (cp < 0)
			__builtin_trap();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *) data;
	int			len = (int) size;
	char	   *out,
			   *again,
			   *addr,
			   *nums;
	int			n,
				m,
				alen;

	if (size > 4096)
		return 0;
	out = palloc(len + 1);
	n = fold_text(s, len, out);
	if (n > len)
		__builtin_trap();
	check_words(out, n);

	n = name_standardise(s, len, out);
	check_words(out, n);
	again = palloc(n + 1);
	m = name_standardise(out, n, again);
	if (m != n || memcmp(out, again, n) != 0)
		__builtin_trap();

	addr = address_standardise(s, len, &alen);
	if (alen > len + len / 2 + 1)
		__builtin_trap();
	check_words(addr, alen);
	nums = palloc(alen + 1);
	m = address_numbers(addr, alen, nums);
	check_words(nums, m);
	for (int i = 0; i < m; i++)
		if ((i == 0 || nums[i - 1] == ' ') && (nums[i] < '0' || nums[i] > '9'))
			__builtin_trap();

	out = palloc(Max(len, POSTCODE_MAX_LEN) + 1);
	n = postcode_any(s, len, out);
	if (n > Max(len, POSTCODE_MAX_LEN))
		__builtin_trap();
	for (int i = 0; i < n; i++)
		if (!((out[i] >= 'A' && out[i] <= 'Z') || (out[i] >= '0' && out[i] <= '9') ||
			  out[i] == '-' || out[i] == ' ') ||
			(out[i] == ' ' && (i == 0 || i == n - 1 || out[i - 1] == ' ')))
			__builtin_trap();
	fuzz_free_all();
	return 0;
}
