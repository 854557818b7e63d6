/*-------------------------------------------------------------------------
 *
 * compare.c
 *		Linkage comparators: how far two values of one field agree.
 *
 * Owns the comparison levels of the linkage model (docs/linkage.md).  Every
 * comparator returns an integer level: 0 means the comparison carries no
 * evidence of its own kind (a value missing or unusable), 1 means the values
 * differ, and higher levels mean closer agreement, the top level being
 * exact agreement.  Comparators are not strict: a NULL is the "missing"
 * level, never a NULL result, so a comparison vector always has a value.
 *
 *		NHS number   0 missing/invalid, 1 different, 2 one digit different or
 *		             two adjacent digits transposed, 3 exact (valid)
 *		date         0 missing, 1 different, 2 within N days, 3 two of
 *		             year/month/day equal, 4 day and month transposed, 5 exact
 *		postcode     0 missing/invalid, 1 different, 2 same area, 3 same
 *		             district, 4 same sector, 5 exact unit
 *		sex          0 missing/not known, 1 different, 2 same
 *		strings      0 missing, 1 different, 2.. thresholds (loosest first),
 *		             top exact
 *
 * Jaro-Winkler and Damerau-Levenshtein (optimal string alignment: adjacent
 * transpositions, no substring edited twice) work on characters, not bytes.
 *
 * Comparators see identifiers, so nothing here prints a value.
 *
 * src/linkage/compare.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"

#include "identifiers/identifiers.h"
#include "compare.h"
#include "base/pg_compat.h"

/* longest string the string comparators accept, in characters */
#define COMPARE_MAX_CHARS	4096


/*
 * Level of two NHS numbers given as ten digits each (valid or not).
 */
int
link_nhs_level(int64 a, bool a_valid, int64 b, bool b_valid)
{
	char		da[NHS_NUMBER_DIGITS];
	char		db[NHS_NUMBER_DIGITS];
	int			ndiff = 0;
	int			first = -1;
	int			second = -1;

	if (a == b)
		return (a_valid && b_valid) ? NHS_EXACT : NHS_MISSING;

	for (int i = NHS_NUMBER_DIGITS - 1; i >= 0; i--)
	{
		da[i] = (char) (a % 10);
		db[i] = (char) (b % 10);
		a /= 10;
		b /= 10;
	}
	for (int i = 0; i < NHS_NUMBER_DIGITS; i++)
	{
		if (da[i] != db[i])
		{
			if (ndiff == 0)
				first = i;
			else if (ndiff == 1)
				second = i;
			ndiff++;
		}
	}
	if (ndiff == 1)
		return NHS_CLOSE;
	if (ndiff == 2 && second == first + 1 &&
		da[first] == db[second] && da[second] == db[first])
		return NHS_CLOSE;
	/* both valid and far apart: different people; else no evidence */
	return (a_valid && b_valid) ? NHS_DIFFERENT : NHS_MISSING;
}

/* an argument as ten digits; false when NULL or not ten digits */
static bool
nhs_arg_text(FunctionCallInfo fcinfo, int n, int64 *digits, bool *valid)
{
	text	   *t;

	if (PG_ARGISNULL(n))
		return false;
	t = PG_GETARG_TEXT_PP(n);
	return nhs_number_digits(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), digits, valid);
}

static bool
nhs_arg_int8(FunctionCallInfo fcinfo, int n, int64 *digits, bool *valid)
{
	int64		v;

	if (PG_ARGISNULL(n))
		return false;
	v = PG_GETARG_INT64(n);
	if (v < 0 || v > INT64CONST(9999999999))
		return false;
	*digits = v;
	*valid = nhs_number_value_is_valid(v);
	return true;
}

PG_FUNCTION_INFO_V1(compare_nhs_number_text);
Datum
compare_nhs_number_text(PG_FUNCTION_ARGS)
{
	int64		a,
				b;
	bool		av,
				bv;

	if (!nhs_arg_text(fcinfo, 0, &a, &av) || !nhs_arg_text(fcinfo, 1, &b, &bv))
		PG_RETURN_INT32(NHS_MISSING);
	PG_RETURN_INT32(link_nhs_level(a, av, b, bv));
}

/* ten digits held as bigint (link_record.nhs_digits), or nhs_number values */
PG_FUNCTION_INFO_V1(compare_nhs_number_int8);
Datum
compare_nhs_number_int8(PG_FUNCTION_ARGS)
{
	int64		a,
				b;
	bool		av,
				bv;

	/* the same number twice (most candidate pairs): checked once */
	if (!PG_ARGISNULL(0) && !PG_ARGISNULL(1) && PG_GETARG_INT64(0) == PG_GETARG_INT64(1))
	{
		if (!nhs_arg_int8(fcinfo, 0, &a, &av))
			PG_RETURN_INT32(NHS_MISSING);
		PG_RETURN_INT32(link_nhs_level(a, av, a, av));
	}
	if (!nhs_arg_int8(fcinfo, 0, &a, &av) || !nhs_arg_int8(fcinfo, 1, &b, &bv))
		PG_RETURN_INT32(NHS_MISSING);
	PG_RETURN_INT32(link_nhs_level(a, av, b, bv));
}

/* ---- dates ---- */

PG_FUNCTION_INFO_V1(compare_date);
Datum
compare_date(PG_FUNCTION_ARGS)
{
	DateADT		a,
				b;
	int32		within = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2);
	int			ay,
				am,
				ad,
				by,
				bm,
				bd;
	int			same;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_INT32(0);
	a = PG_GETARG_DATEADT(0);
	b = PG_GETARG_DATEADT(1);
	if (DATE_NOT_FINITE(a) || DATE_NOT_FINITE(b))
		PG_RETURN_INT32(0);
	if (within < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the number of days for compare_date cannot be negative"),
				 errhint("Pass 0 to disable the \"within N days\" level.")));
	if (a == b)
		PG_RETURN_INT32(5);

	j2date(a + POSTGRES_EPOCH_JDATE, &ay, &am, &ad);
	j2date(b + POSTGRES_EPOCH_JDATE, &by, &bm, &bd);
	if (ay == by && ad == bm && am == bd)
		PG_RETURN_INT32(4);
	same = (ay == by) + (am == bm) + (ad == bd);
	if (same >= 2)
		PG_RETURN_INT32(3);
	if (((int64) a >= (int64) b ? (int64) a - (int64) b : (int64) b - (int64) a) <= within)
		PG_RETURN_INT32(2);
	PG_RETURN_INT32(1);
}

/* ---- postcodes ---- */

/* length of the area (leading letters) of a canonical postcode */
static int
area_len(const char *canon)
{
	return (canon[1] >= 'A' && canon[1] <= 'Z') ? 2 : 1;
}

static bool
postcode_arg(FunctionCallInfo fcinfo, int n, char *canon, int *outward_len)
{
	text	   *t;

	if (PG_ARGISNULL(n))
		return false;
	t = PG_GETARG_TEXT_PP(n);
	return postcode_canonical(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), canon, outward_len);
}

/*
 * Two values neither of which is a UK postcode (postcodes of other
 * countries, "75008", "K1A 0B6"): 5 when their letters and digits agree
 * (case, spaces and punctuation aside), 1 when not, 0 when one has none.
 */
static inline bool
ascii_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int
other_postcode_level(text *a, text *b)
{
	const char *pa = VARDATA_ANY(a),
			   *pb = VARDATA_ANY(b);
	const char *ea = pa + VARSIZE_ANY_EXHDR(a),
			   *eb = pb + VARSIZE_ANY_EXHDR(b);
	bool		equal = true;
	bool		any_a = false,
				any_b = false;

	for (;;)
	{
		while (pa < ea && !ascii_alnum(*pa))
			pa++;
		while (pb < eb && !ascii_alnum(*pb))
			pb++;
		if (pa >= ea || pb >= eb)
			break;
		any_a = any_b = true;
		if ((*pa | 0x20) != (*pb | 0x20))	/* ASCII letters and digits: case aside */
		{
			equal = false;
			break;
		}
		pa++;
		pb++;
	}
	for (; pa < ea && !any_a; pa++)
		any_a = ascii_alnum(*pa);
	for (; pb < eb && !any_b; pb++)
		any_b = ascii_alnum(*pb);
	if (!any_a || !any_b)
		return 0;
	if (!equal)
		return 1;
	/* equal so far: equal if neither has a letter or digit left */
	while (pa < ea && !ascii_alnum(*pa))
		pa++;
	while (pb < eb && !ascii_alnum(*pb))
		pb++;
	return (pa >= ea && pb >= eb) ? 5 : 1;
}

PG_FUNCTION_INFO_V1(compare_postcode);
Datum
compare_postcode(PG_FUNCTION_ARGS)
{
	char		a[POSTCODE_MAX_LEN],
				b[POSTCODE_MAX_LEN];
	int			ao,
				bo;
	int			aa;

	bool		a_uk,
				b_uk;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_INT32(0);
	/* the same text twice (most candidate pairs): parsed once */
	{
		text	   *ta = PG_GETARG_TEXT_PP(0);
		text	   *tb = PG_GETARG_TEXT_PP(1);

		if (VARSIZE_ANY_EXHDR(ta) == VARSIZE_ANY_EXHDR(tb) &&
			memcmp(VARDATA_ANY(ta), VARDATA_ANY(tb), VARSIZE_ANY_EXHDR(ta)) == 0)
		{
			if (postcode_arg(fcinfo, 0, a, &ao))
				PG_RETURN_INT32(5);
			PG_RETURN_INT32(other_postcode_level(ta, tb));
		}
	}
	a_uk = postcode_arg(fcinfo, 0, a, &ao);
	b_uk = postcode_arg(fcinfo, 1, b, &bo);
	if (!a_uk && !b_uk)
		PG_RETURN_INT32(other_postcode_level(PG_GETARG_TEXT_PP(0), PG_GETARG_TEXT_PP(1)));
	if (!a_uk || !b_uk)
		PG_RETURN_INT32(0);		/* a UK postcode and something else */
	if (strcmp(a, b) == 0)
		PG_RETURN_INT32(5);
	if (ao == bo && memcmp(a, b, ao + 2) == 0)
		PG_RETURN_INT32(4);		/* outward, space, inward digit */
	if (ao == bo && memcmp(a, b, ao) == 0)
		PG_RETURN_INT32(3);
	aa = area_len(a);
	if (aa == area_len(b) && memcmp(a, b, aa) == 0)
		PG_RETURN_INT32(2);
	PG_RETURN_INT32(1);
}

/* ---- sex ---- */

PG_FUNCTION_INFO_V1(compare_sex);
Datum
compare_sex(PG_FUNCTION_ARGS)
{
	const char *a,
			   *b;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_INT32(0);
	a = sex_lookup(PG_GETARG_TEXT_PP(0));
	b = sex_lookup(PG_GETARG_TEXT_PP(1));
	/* unrecognised or "not known" carries no evidence */
	if (a == NULL || b == NULL || *a == 'X' || *b == 'X')
		PG_RETURN_INT32(0);
	PG_RETURN_INT32(*a == *b ? 2 : 1);
}

/* ---- strings ---- */

/* a text argument as characters; *len receives the count */
static pg_wchar *
text_chars(text *t, int *len)
{
	int			bytes = VARSIZE_ANY_EXHDR(t);
	pg_wchar   *w;

	if (bytes > COMPARE_MAX_CHARS * MAX_MULTIBYTE_CHAR_LEN ||
		pg_mbstrlen_with_len(VARDATA_ANY(t), bytes) > COMPARE_MAX_CHARS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("string too long to compare"),
				 errdetail("The string comparators accept at most %d characters.", COMPARE_MAX_CHARS),
				 errhint("Compare a shorter, standardised form of the field.")));
	w = palloc((bytes + 1) * sizeof(pg_wchar));
	*len = pg_mb2wchar_with_len(VARDATA_ANY(t), w, bytes);
	return w;
}

/* Jaro-Winkler similarity, prefix scale 0.1, prefix up to 4 characters */
static double
jaro_winkler(const pg_wchar *a, int la, const pg_wchar *b, int lb)
{
	int			window;
	bool	   *amatch,
			   *bmatch;
	int			m = 0;
	int			t = 0;
	int			k = 0;
	int			prefix = 0;
	double		jaro;

	if (la == 0 && lb == 0)
		return 1.0;
	if (la == 0 || lb == 0)
		return 0.0;

	window = Max(la, lb) / 2 - 1;
	if (window < 0)
		window = 0;
	amatch = palloc0(la * sizeof(bool));
	bmatch = palloc0(lb * sizeof(bool));

	for (int i = 0; i < la; i++)
	{
		int			lo = Max(0, i - window);
		int			hi = Min(lb - 1, i + window);

		for (int j = lo; j <= hi; j++)
		{
			if (!bmatch[j] && a[i] == b[j])
			{
				amatch[i] = bmatch[j] = true;
				m++;
				break;
			}
		}
	}
	if (m == 0)
	{
		pfree(amatch);
		pfree(bmatch);
		return 0.0;
	}
	for (int i = 0; i < la; i++)
	{
		if (!amatch[i])
			continue;
		while (!bmatch[k])
			k++;
		if (a[i] != b[k])
			t++;
		k++;
	}
	pfree(amatch);
	pfree(bmatch);

	jaro = ((double) m / la + (double) m / lb + (double) (m - t / 2) / m) / 3.0;
	while (prefix < 4 && prefix < la && prefix < lb && a[prefix] == b[prefix])
		prefix++;
	return jaro + prefix * 0.1 * (1.0 - jaro);
}

/* optimal string alignment distance: insert, delete, substitute, transpose */
static int
damerau_levenshtein(const pg_wchar *a, int la, const pg_wchar *b, int lb)
{
	int		   *prev2 = palloc((lb + 1) * sizeof(int));
	int		   *prev = palloc((lb + 1) * sizeof(int));
	int		   *cur = palloc((lb + 1) * sizeof(int));
	int			d;

	for (int j = 0; j <= lb; j++)
		prev[j] = j;
	for (int i = 1; i <= la; i++)
	{
		int		   *tmp;

		cur[0] = i;
		for (int j = 1; j <= lb; j++)
		{
			int			cost = (a[i - 1] == b[j - 1]) ? 0 : 1;
			int			v = Min(prev[j] + 1, cur[j - 1] + 1);

			v = Min(v, prev[j - 1] + cost);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
				v = Min(v, prev2[j - 2] + 1);
			cur[j] = v;
		}
		tmp = prev2;
		prev2 = prev;
		prev = cur;
		cur = tmp;
	}
	d = prev[lb];
	pfree(prev2);
	pfree(prev);
	pfree(cur);
	return d;
}

PG_FUNCTION_INFO_V1(jaro_winkler_similarity);
Datum
jaro_winkler_similarity(PG_FUNCTION_ARGS)
{
	int			la,
				lb;
	pg_wchar   *a = text_chars(PG_GETARG_TEXT_PP(0), &la);
	pg_wchar   *b = text_chars(PG_GETARG_TEXT_PP(1), &lb);

	PG_RETURN_FLOAT8(jaro_winkler(a, la, b, lb));
}

PG_FUNCTION_INFO_V1(damerau_levenshtein_distance);
Datum
damerau_levenshtein_distance(PG_FUNCTION_ARGS)
{
	int			la,
				lb;
	pg_wchar   *a = text_chars(PG_GETARG_TEXT_PP(0), &la);
	pg_wchar   *b = text_chars(PG_GETARG_TEXT_PP(1), &lb);

	PG_RETURN_INT32(damerau_levenshtein(a, la, b, lb));
}

/* thresholds argument as a C array; checks it is one-dimensional, no NULLs */
static void
thresholds_arg(ArrayType *arr, Oid elemtype, Datum **values, int *n)
{
	bool	   *nulls;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("comparison thresholds must be a one-dimensional array")));
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, elemtype, typlen, typbyval, typalign, values, &nulls, n);
	for (int i = 0; i < *n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("comparison thresholds cannot contain NULL")));
	if (*n > 14)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many comparison thresholds"),
				 errhint("A comparison has at most 16 levels: missing, different, up to 14 thresholds and exact.")));
}

/*
 * The common part of the string comparators: NULL strings are level 0, the
 * thresholds (elemtype) must be given, equal strings are the exact level.
 * Returns false with *level set when the level is decided already;
 * otherwise the strings and thresholds for the caller's measure.
 */
typedef struct StringArgs
{
	pg_wchar   *a,
			   *b;
	int			la,
				lb;
	Datum	   *th;
	int			n;
} StringArgs;

static bool
string_args(FunctionCallInfo fcinfo, Oid elemtype, StringArgs *sa, int32 *level)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
	{
		*level = 0;
		return false;
	}
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("comparison thresholds cannot be NULL")));
	thresholds_arg(PG_GETARG_ARRAYTYPE_P(2), elemtype, &sa->th, &sa->n);
	sa->a = text_chars(PG_GETARG_TEXT_PP(0), &sa->la);
	sa->b = text_chars(PG_GETARG_TEXT_PP(1), &sa->lb);
	if (sa->la == sa->lb && memcmp(sa->a, sa->b, sa->la * sizeof(pg_wchar)) == 0)
	{
		*level = sa->n + 2;
		return false;
	}
	return true;
}

/*
 * Level by Jaro-Winkler similarity: thresholds strictest first, e.g.
 * '{0.92,0.8}': exact 4, >= 0.92 3, >= 0.8 2, otherwise 1, NULL 0.
 */
PG_FUNCTION_INFO_V1(compare_jaro_winkler);
Datum
compare_jaro_winkler(PG_FUNCTION_ARGS)
{
	StringArgs	sa;
	int32		level;
	double		s;

	if (!string_args(fcinfo, FLOAT8OID, &sa, &level))
		PG_RETURN_INT32(level);
	s = jaro_winkler(sa.a, sa.la, sa.b, sa.lb);
	for (int i = 0; i < sa.n; i++)
		if (s >= DatumGetFloat8(sa.th[i]))
			PG_RETURN_INT32(sa.n + 1 - i);
	PG_RETURN_INT32(1);
}

/*
 * Level by Damerau-Levenshtein distance: thresholds strictest first, e.g.
 * '{1,2}': exact 4, distance <= 1 3, <= 2 2, otherwise 1, NULL 0.
 */
PG_FUNCTION_INFO_V1(compare_damerau_levenshtein);
Datum
compare_damerau_levenshtein(PG_FUNCTION_ARGS)
{
	StringArgs	sa;
	int32		level;
	int			d;

	if (!string_args(fcinfo, INT4OID, &sa, &level))
		PG_RETURN_INT32(level);
	d = damerau_levenshtein(sa.a, sa.la, sa.b, sa.lb);
	for (int i = 0; i < sa.n; i++)
		if (d <= DatumGetInt32(sa.th[i]))
			PG_RETURN_INT32(sa.n + 1 - i);
	PG_RETURN_INT32(1);
}

/*
 * The ten digits of an NHS number as it arrives (valid or not), for the
 * standardised linkage record; NULL when the text is not ten digits in an
 * accepted layout.
 */
PG_FUNCTION_INFO_V1(nhs_number_digits_text);
Datum
nhs_number_digits_text(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	int64		digits;
	bool		valid;

	if (!nhs_number_digits(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &digits, &valid))
		PG_RETURN_NULL();
	PG_RETURN_INT64(digits);
}

/* ---- the string measures for names.c (compare.h) ---- */

pg_wchar *
link_text_chars(text *t, int *len)
{
	return text_chars(t, len);
}

double
link_jaro_winkler(const pg_wchar *a, int la, const pg_wchar *b, int lb)
{
	return jaro_winkler(a, la, b, lb);
}

int
link_damerau_levenshtein(const pg_wchar *a, int la, const pg_wchar *b, int lb)
{
	return damerau_levenshtein(a, la, b, lb);
}

void
link_thresholds_arg(ArrayType *arr, Oid elemtype, Datum **values, int *n)
{
	thresholds_arg(arr, elemtype, values, n);
}

/* argument argno of a comparator (an error when NULL) as n doubles */
void
link_thresholds_float8(FunctionCallInfo fcinfo, int argno, Datum **th, int *n)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("comparison thresholds cannot be NULL")));
	link_thresholds_arg(PG_GETARG_ARRAYTYPE_P(argno), FLOAT8OID, th, n);
}
