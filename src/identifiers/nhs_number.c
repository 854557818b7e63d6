/*-------------------------------------------------------------------------
 *
 * nhs_number.c
 *		The nhs_number type: a 10-digit NHS number, Modulus 11 validated.
 *
 * Owns parsing, validation and display of NHS numbers.  The value is stored
 * by value as an int8 holding the ten digits, so comparison, hashing and
 * sorting reuse PostgreSQL's own int8 support functions (declared in
 * nhs_number.sql as LANGUAGE internal, as contrib/isn does).
 *
 * Validation (NHS Data Dictionary, "NHS Number"): digits 1-9 are weighted
 * 10..2; check digit = 11 - (sum mod 11); a result of 11 becomes 0 and a
 * result of 10 is never issued.  Numbers whose ten digits are all the same
 * pass the checksum but are not valid either.
 *
 * No message produced here ever contains the digits: a rejected value may
 * be a real patient's number with a typo in it.
 *
 * src/identifiers/nhs_number.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"

#include "identifiers.h"
#include "base/pg_compat.h"

#define NHS_NUMBER_MAX	INT64CONST(9999999999)
#define NHS_TEST_LOW	INT64CONST(9990000000)
#define NHS_TEST_HIGH	INT64CONST(9999999999)

/* why a value was refused; NHS_OK when it was not */
typedef enum NhsParseResult
{
	NHS_OK = 0,
	NHS_EMPTY,
	NHS_BAD_CHAR,
	NHS_BAD_GROUPING,
	NHS_BAD_LENGTH,
	NHS_CHECK_TEN,
	NHS_BAD_CHECK,
	NHS_REPEATED,
	NHS_OUT_OF_RANGE
} NhsParseResult;

/*
 * The Modulus 11 weights (10 for the first digit down to 2 for the ninth)
 * summed over groups of digits: the ten digits are read as two five-digit
 * halves, each as a two-digit and a three-digit group, and each group's
 * weighted sum is looked up.  Every group comes from its half at once, so
 * the check is a few independent multiplications rather than a chain of
 * ten divisions (what reading one digit after another costs; a bigint or
 * binary value is checked on every row it comes in by).
 */
static uint8 nhs_w01[100];		/* digits 1-2: 10, 9 */
static uint8 nhs_w234[1000];	/* digits 3-5: 8, 7, 6 */
static uint8 nhs_w56[100];		/* digits 6-7: 5, 4 */
static uint8 nhs_w789[1000];	/* digits 8-10: 3, 2 (the check digit: 0) */

/* fills the tables; _PG_init calls it, before any check can run */
void
nhs_number_init(void)
{
	for (int x = 0; x < 100; x++)
	{
		nhs_w01[x] = (uint8) (x / 10 * 10 + x % 10 * 9);
		nhs_w56[x] = (uint8) (x / 10 * 5 + x % 10 * 4);
	}
	for (int x = 0; x < 1000; x++)
	{
		nhs_w234[x] = (uint8) (x / 100 * 8 + x / 10 % 10 * 7 + x % 10 * 6);
		nhs_w789[x] = (uint8) (x / 100 * 3 + x / 10 % 10 * 2);
	}
}

/*
 * Validate ten digits given as an integer.  Returns NHS_OK or the reason.
 */
static NhsParseResult
nhs_check_value(int64 value)
{
	uint32		high;
	uint32		low;
	int			sum;
	int			check;
	int			last;

	if (value < 0 || value > NHS_NUMBER_MAX)
		return NHS_OUT_OF_RANGE;

	high = (uint32) ((uint64) value / 100000);	/* digits 1-5 */
	low = (uint32) ((uint64) value % 100000);	/* digits 6-10 */
	sum = nhs_w01[high / 1000] + nhs_w234[high % 1000] +
		nhs_w56[low / 1000] + nhs_w789[low % 1000];
	last = (int) (low % 10);

	check = 11 - (sum % 11);
	if (check == 11)
		check = 0;
	if (check == 10)
		return NHS_CHECK_TEN;
	if (check != last)
		return NHS_BAD_CHECK;
	/* all ten digits the same (such as 4444444444): passes the check, never issued */
	if (value == (int64) last * INT64CONST(1111111111))
		return NHS_REPEATED;
	return NHS_OK;
}

/*
 * Parse text into an NHS number.  Accepted: ten digits, optionally grouped
 * 3-3-4 by single spaces or single hyphens (the same separator both times),
 * with leading and trailing white space.  On success *result holds the value.
 * *ndigits receives the number of digits seen, for the error detail.
 */
static NhsParseResult
nhs_parse(const char *str, int len, int64 *result, int *ndigits)
{
	const char *p = str;
	const char *end = str + len;
	int64		value = 0;
	int			n = 0;
	char		sep = '\0';
	int			nsep = 0;
	bool		bad_char = false;
	bool		bad_grouping = false;

	*ndigits = 0;

	while (p < end && isspace((unsigned char) *p))
		p++;
	while (end > p && isspace((unsigned char) end[-1]))
		end--;
	if (p == end)
		return NHS_EMPTY;

	for (; p < end; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c >= '0' && c <= '9')
		{
			if (n < NHS_NUMBER_DIGITS)
				value = value * 10 + (c - '0');
			n++;
		}
		else if (c == ' ' || c == '-')
		{
			/* separators only after the 3rd and the 6th digit, one kind */
			if ((n != 3 && n != 6) || (sep != '\0' && c != sep) ||
				(nsep == 1 && n == 3) || p + 1 == end ||
				!(p[1] >= '0' && p[1] <= '9'))
				bad_grouping = true;
			sep = (char) c;
			nsep++;
		}
		else
			bad_char = true;
	}

	*ndigits = n;
	if (bad_char)
		return NHS_BAD_CHAR;
	if (n != NHS_NUMBER_DIGITS)
		return NHS_BAD_LENGTH;
	if (bad_grouping || nsep == 1)
		return NHS_BAD_GROUPING;

	*result = value;
	return nhs_check_value(value);
}

/*
 * Report a refused value, with the SQLSTATE of the path it came by (text
 * or binary input).  Never includes the value itself.
 */
static void
nhs_report(NhsParseResult r, int ndigits, int sqlstate)
{
	switch (r)
	{
		case NHS_OK:
			break;
		case NHS_EMPTY:
			ereport(ERROR,
					(errcode(sqlstate),
					 errmsg("invalid input syntax for type nhs_number"),
					 errdetail("The value is empty."),
					 errhint("An NHS number has 10 digits, such as 943 476 5919. Use try_nhs_number() to turn unusable values into NULL.")));
			break;
		case NHS_BAD_CHAR:
			ereport(ERROR,
					(errcode(sqlstate),
					 errmsg("invalid input syntax for type nhs_number"),
					 errdetail("The value contains a character that is not a digit, a space or a hyphen."),
					 errhint("An NHS number has 10 digits, such as 943 476 5919. Use try_nhs_number() to turn unusable values into NULL.")));
			break;
		case NHS_BAD_LENGTH:
			ereport(ERROR,
					(errcode(sqlstate),
					 errmsg("invalid input syntax for type nhs_number"),
					 errdetail("The value has %d digits; an NHS number has exactly 10.", ndigits),
					 errhint("Check for a missing or extra digit. Use try_nhs_number() to turn unusable values into NULL.")));
			break;
		case NHS_BAD_GROUPING:
			ereport(ERROR,
					(errcode(sqlstate),
					 errmsg("invalid input syntax for type nhs_number"),
					 errdetail("Spaces or hyphens may only group the digits 3-3-4."),
					 errhint("Write the number as 10 digits, or grouped as 943 476 5919 or 943-476-5919.")));
			break;
		case NHS_CHECK_TEN:
			ereport(ERROR,
					(errcode(sqlstate),
					 errmsg("invalid NHS number"),
					 errdetail("The first nine digits give a Modulus 11 check digit of 10; such numbers are never issued."),
					 errhint("The value is probably mistyped; check it against the source record.")));
			break;
		case NHS_BAD_CHECK:
			ereport(ERROR,
					(errcode(sqlstate),
					 errmsg("invalid NHS number"),
					 errdetail("The check digit does not match the Modulus 11 check of the first nine digits."),
					 errhint("The value is probably mistyped (a changed digit or two swapped digits); check it against the source record.")));
			break;
		case NHS_REPEATED:
			ereport(ERROR,
					(errcode(sqlstate),
					 errmsg("invalid NHS number"),
					 errdetail("All ten digits are the same; such numbers pass the check but are never issued."),
					 errhint("Placeholder values such as these usually mean the number was not known; store NULL instead.")));
			break;
		case NHS_OUT_OF_RANGE:
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("value out of range for type nhs_number"),
					 errdetail("An NHS number is between 0 and 9999999999 as an integer."),
					 errhint("Check the column holds NHS numbers.")));
			break;
	}
}

/*
 * Format ten digits as "943 476 5919" into buf (at least NHS_NUMBER_TEXT_LEN).
 */
static void
nhs_format(int64 value, char *buf)
{
	char		digits[NHS_NUMBER_DIGITS + 1];

	snprintf(digits, sizeof(digits), "%010lld", (long long) value);
	memcpy(buf, digits, 3);
	buf[3] = ' ';
	memcpy(buf + 4, digits + 3, 3);
	buf[7] = ' ';
	memcpy(buf + 8, digits + 6, 4);
	buf[12] = '\0';
}

/*
 * Parse a text datum; returns true and sets *result on success.  Exported
 * for other concerns (objection feeds, linkage) that clean text in bulk.
 */
bool
nhs_number_parse_text(text *t, int64 *result)
{
	int			ndigits;

	return nhs_parse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), result, &ndigits) == NHS_OK;
}

/*
 * The ten digits of text in an accepted layout, whether or not the check
 * digit holds (linkage compares mistyped numbers digit by digit).  Returns
 * false when the text is not ten digits in an accepted layout; *valid tells
 * whether the value is a valid NHS number.
 */
bool
nhs_number_digits(const char *str, int len, int64 *digits, bool *valid)
{
	int64		value = 0;
	int			ndigits;
	NhsParseResult r = nhs_parse(str, len, &value, &ndigits);

	if (r != NHS_OK && r != NHS_CHECK_TEN && r != NHS_BAD_CHECK &&
		r != NHS_REPEATED && r != NHS_OUT_OF_RANGE)
		return false;
	*digits = value;
	*valid = (r == NHS_OK);
	return true;
}

/* true when ten digits held as an integer are a valid NHS number */
bool
nhs_number_value_is_valid(int64 value)
{
	return nhs_check_value(value) == NHS_OK;
}

/* parse or raise the error that says why not */
static int64
nhs_parse_or_report(const char *str, int len)
{
	int64		result = 0;
	int			ndigits;
	NhsParseResult r = nhs_parse(str, len, &result, &ndigits);

	if (r != NHS_OK)
		nhs_report(r, ndigits, ERRCODE_INVALID_TEXT_REPRESENTATION);
	return result;
}

PG_FUNCTION_INFO_V1(nhs_number_in);
Datum
nhs_number_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);

	PG_RETURN_NHS_NUMBER(nhs_parse_or_report(str, strlen(str)));
}

PG_FUNCTION_INFO_V1(nhs_number_out);
Datum
nhs_number_out(PG_FUNCTION_ARGS)
{
	int64		value = PG_GETARG_NHS_NUMBER(0);
	char	   *buf = palloc(NHS_NUMBER_TEXT_LEN);

	nhs_format(value, buf);
	PG_RETURN_CSTRING(buf);
}

/*
 * Binary input: an int8, validated exactly as text input is, so a crafted
 * COPY BINARY file cannot store an invalid number.
 */
PG_FUNCTION_INFO_V1(nhs_number_recv);
Datum
nhs_number_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int64		value = pq_getmsgint64(buf);

	nhs_report(nhs_check_value(value), NHS_NUMBER_DIGITS, ERRCODE_INVALID_BINARY_REPRESENTATION);
	PG_RETURN_NHS_NUMBER(value);
}

PG_FUNCTION_INFO_V1(nhs_number_send);
Datum
nhs_number_send(PG_FUNCTION_ARGS)
{
	int64		value = PG_GETARG_NHS_NUMBER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, value);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* text as nhs_number_in reads it, or its error (for other concerns) */
int64
nhs_number_from_text_or_error(text *t)
{
	return nhs_parse_or_report(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

/* a bigint as the cast checks it, or its error (for other concerns) */
int64
nhs_number_from_int8_or_error(int64 value)
{
	nhs_report(nhs_check_value(value), NHS_NUMBER_DIGITS, ERRCODE_INVALID_TEXT_REPRESENTATION);
	return value;
}

/* bigint -> nhs_number, validated */
PG_FUNCTION_INFO_V1(nhs_number_from_int8);
Datum
nhs_number_from_int8(PG_FUNCTION_ARGS)
{
	PG_RETURN_NHS_NUMBER(nhs_number_from_int8_or_error(PG_GETARG_INT64(0)));
}

/*
 * text -> nhs_number, the cast: parses the text datum directly rather than
 * through a cstring round trip (WITH INOUT), which costs a copy per row.
 */
PG_FUNCTION_INFO_V1(nhs_number_from_text);
Datum
nhs_number_from_text(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);

	PG_RETURN_NHS_NUMBER(nhs_parse_or_report(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
}

/* try_nhs_number(text): NULL instead of an error */
PG_FUNCTION_INFO_V1(try_nhs_number);
Datum
try_nhs_number(PG_FUNCTION_ARGS)
{
	int64		result;

	if (!nhs_number_parse_text(PG_GETARG_TEXT_PP(0), &result))
		PG_RETURN_NULL();
	PG_RETURN_NHS_NUMBER(result);
}

/* nhs_number_is_valid(text) */
PG_FUNCTION_INFO_V1(nhs_number_is_valid);
Datum
nhs_number_is_valid(PG_FUNCTION_ARGS)
{
	int64		result;

	PG_RETURN_BOOL(nhs_number_parse_text(PG_GETARG_TEXT_PP(0), &result));
}

/*
 * nhs_number_invalid_reason(text): why a value is refused, as a short stable
 * code ('missing', 'non_digit', 'grouping', 'length', 'check_digit_10',
 * 'check_digit', 'repeated_digit'), NULL when it is valid.  For data-quality
 * reports: it classifies without showing the value.  'missing' is nothing
 * recorded, NULL or only white space alike (not STRICT), so the codes and
 * NULL for valid are disjoint and cover every value: a report needs no
 * category of its own for NULLs.
 */
PG_FUNCTION_INFO_V1(nhs_number_invalid_reason);
Datum
nhs_number_invalid_reason(PG_FUNCTION_ARGS)
{
	text	   *t;
	int64		result;
	int			ndigits;
	const char *reason = NULL;

	if (PG_ARGISNULL(0))
		PG_RETURN_TEXT_P(cstring_to_text("missing"));
	t = PG_GETARG_TEXT_PP(0);
	switch (nhs_parse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &result, &ndigits))
	{
		case NHS_OK:
			PG_RETURN_NULL();
		case NHS_EMPTY:
			reason = "missing";
			break;
		case NHS_BAD_CHAR:
			reason = "non_digit";
			break;
		case NHS_BAD_GROUPING:
			reason = "grouping";
			break;
		case NHS_BAD_LENGTH:
			reason = "length";
			break;
		case NHS_CHECK_TEN:
			reason = "check_digit_10";
			break;
		case NHS_BAD_CHECK:
			reason = "check_digit";
			break;
		case NHS_REPEATED:
			reason = "repeated_digit";
			break;
		case NHS_OUT_OF_RANGE:
			reason = "out_of_range";
			break;
	}
	PG_RETURN_TEXT_P(cstring_to_text(reason));
}

/* nhs_number_is_test(nhs_number): the 999 000 0000 - 999 999 9999 range */
PG_FUNCTION_INFO_V1(nhs_number_is_test);
Datum
nhs_number_is_test(PG_FUNCTION_ARGS)
{
	int64		value = PG_GETARG_NHS_NUMBER(0);

	PG_RETURN_BOOL(value >= NHS_TEST_LOW && value <= NHS_TEST_HIGH);
}
