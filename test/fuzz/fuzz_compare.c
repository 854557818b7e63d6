/*
 * test/fuzz/fuzz_compare.c: libFuzzer target for the linkage string
 * comparators (src/linkage/compare.c, compiled in here), on two strings cut
 * from the input at its first zero byte, one character per byte.
 * Invariants: Jaro-Winkler lies in [0, 1], is 1 exactly for equal strings
 * and is symmetric; the optimal-string-alignment distance is 0 exactly for
 * equal strings, symmetric, at least the difference in length and at most
 * the longer length.
 */
#include <math.h>

#include "../../src/linkage/compare.c"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pg_wchar	a[COMPARE_MAX_CHARS],
				b[COMPARE_MAX_CHARS];
	int			la = 0,
				lb = 0;
	size_t		i = 0;
	bool		equal;
	double		jw,
				jw_back;
	int			dl;

	if (size > 512)
		return 0;
	for (; i < size && data[i] != 0 && la < COMPARE_MAX_CHARS; i++)
		a[la++] = data[i];
	for (i++; i < size && lb < COMPARE_MAX_CHARS; i++)
		b[lb++] = data[i];
	equal = la == lb && memcmp(a, b, la * sizeof(pg_wchar)) == 0;

	jw = jaro_winkler(a, la, b, lb);
	jw_back = jaro_winkler(b, lb, a, la);
	if (!(jw >= 0.0 && jw <= 1.0) || (jw == 1.0) != equal || fabs(jw - jw_back) > 1e-12)
		__builtin_trap();

	dl = damerau_levenshtein(a, la, b, lb);
	if ((dl == 0) != equal || dl != damerau_levenshtein(b, lb, a, la) ||
		dl < abs(la - lb) || dl > Max(la, lb))
		__builtin_trap();
	return 0;
}
