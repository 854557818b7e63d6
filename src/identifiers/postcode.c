/*-------------------------------------------------------------------------
 *
 * postcode.c
 *		UK postcode standardisation: canonical form, area, district, sector.
 *
 * Owns the rules for what a UK postcode can be.  Input is upper-cased and
 * stripped of all white space; the last three characters are the inward
 * code (digit, letter, letter) and the rest the outward code, which must be
 * one of A9, A99, AA9, AA99, A9A or AA9A, with the letters each position
 * allows (Royal Mail / ONS postcode format rules).  GIR 0AA is accepted.
 * The canonical form is outward, one space, inward: "SW1A 1AA".
 *
 * A postcode is a quasi-identifier, so messages never echo it.
 *
 * src/identifiers/postcode.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "identifiers.h"
#include "base/pg_compat.h"


typedef enum PostcodeResult
{
	PC_OK = 0,
	PC_EMPTY,
	PC_BAD_CHAR,
	PC_BAD_LENGTH,
	PC_BAD_INWARD,
	PC_BAD_OUTWARD
} PostcodeResult;

typedef enum PostcodePart
{
	PC_PART_FULL,
	PC_PART_AREA,
	PC_PART_DISTRICT,
	PC_PART_SECTOR
} PostcodePart;

#define IS_UPPER(c)		((c) >= 'A' && (c) <= 'Z')
#define IS_DIGIT(c)		((c) >= '0' && (c) <= '9')

/* letters each position may hold */
static bool
letter_ok(char c, const char *forbidden, const char *allowed)
{
	if (!IS_UPPER(c))
		return false;
	if (forbidden && strchr(forbidden, c))
		return false;
	if (allowed && !strchr(allowed, c))
		return false;
	return true;
}

static bool
outward_ok(const char *o, int n)
{
	/* first position: any letter but Q, V, X */
	if (n < 2 || n > 4 || !letter_ok(o[0], "QVX", NULL))
		return false;

	if (IS_DIGIT(o[1]))
	{
		/* A9, A99, A9A */
		if (n == 2)
			return true;
		if (n == 3)
			return IS_DIGIT(o[2]) || letter_ok(o[2], NULL, "ABCDEFGHJKPSTUW");
		return false;
	}

	/* second position letter: not I, J, Z; then AA9, AA99, AA9A */
	if (!letter_ok(o[1], "IJZ", NULL) || n < 3 || !IS_DIGIT(o[2]))
		return false;
	if (n == 3)
		return true;
	return IS_DIGIT(o[3]) || letter_ok(o[3], NULL, "ABEHMNPRVWXY");
}

/*
 * Parse str into the canonical form in out (POSTCODE_MAX_LEN bytes);
 * *outward_len receives the length of the outward code.
 */
static PostcodeResult
postcode_parse(const char *str, int len, char *out, int *outward_len)
{
	char		buf[8];
	int			n = 0;

	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) str[i];

		if (isspace(c))
			continue;
		if (c >= 'a' && c <= 'z')
			c = c - 'a' + 'A';
		if (!IS_UPPER(c) && !IS_DIGIT(c))
			return PC_BAD_CHAR;
		if (n >= 7)
			return PC_BAD_LENGTH;
		buf[n++] = (char) c;
	}
	if (n == 0)
		return PC_EMPTY;
	if (n < 5)
		return PC_BAD_LENGTH;

	/* inward code: digit then two letters, none of C I K M O V */
	if (!IS_DIGIT(buf[n - 3]) ||
		!letter_ok(buf[n - 2], "CIKMOV", NULL) ||
		!letter_ok(buf[n - 1], "CIKMOV", NULL))
		return PC_BAD_INWARD;

	/* GIR 0AA (Girobank) is the one outward code outside the rules */
	if (!outward_ok(buf, n - 3) &&
		!(n == 6 && memcmp(buf, "GIR0AA", 6) == 0))
		return PC_BAD_OUTWARD;

	memcpy(out, buf, n - 3);
	out[n - 3] = ' ';
	memcpy(out + n - 2, buf + n - 3, 3);
	out[n + 1] = '\0';
	*outward_len = n - 3;
	return PC_OK;
}

/* exported for linkage (postcode.h) */
bool
postcode_canonical(const char *str, int len, char *out, int *outward_len)
{
	return postcode_parse(str, len, out, outward_len) == PC_OK;
}

static void
postcode_report(PostcodeResult r)
{
	const char *detail = NULL;

	switch (r)
	{
		case PC_OK:
			return;
		case PC_EMPTY:
			detail = "The value is empty.";
			break;
		case PC_BAD_CHAR:
			detail = "A postcode holds only letters, digits and spaces.";
			break;
		case PC_BAD_LENGTH:
			detail = "A postcode has 5 to 7 letters and digits, not counting spaces.";
			break;
		case PC_BAD_INWARD:
			detail = "The inward code (last three characters) must be a digit and two letters other than C, I, K, M, O and V.";
			break;
		case PC_BAD_OUTWARD:
			detail = "The outward code (before the space) is not one of the UK formats A9, A99, AA9, AA99, A9A or AA9A with the letters each position allows.";
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid UK postcode"),
			 errdetail("%s", detail),
			 errhint("A UK postcode looks like SW1A 1AA. Use the try_ variant to turn unusable values into NULL.")));
}

/* cut the canonical form down to the requested part */
static text *
postcode_part(const char *canon, int outward_len, PostcodePart part)
{
	switch (part)
	{
		case PC_PART_FULL:
			return cstring_to_text(canon);
		case PC_PART_AREA:
			{
				int			n = IS_UPPER(canon[1]) ? 2 : 1;

				return cstring_to_text_with_len(canon, n);
			}
		case PC_PART_DISTRICT:
			return cstring_to_text_with_len(canon, outward_len);
		case PC_PART_SECTOR:
			return cstring_to_text_with_len(canon, outward_len + 2);
	}
	elog(ERROR, "unrecognized postcode part %d", (int) part);
	return NULL;				/* keep compiler quiet */
}

static Datum
postcode_common(FunctionCallInfo fcinfo, PostcodePart part, bool try)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	char		canon[POSTCODE_MAX_LEN];
	int			outward_len;
	PostcodeResult r;

	r = postcode_parse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), canon, &outward_len);
	if (r != PC_OK)
	{
		if (try)
			PG_RETURN_NULL();
		postcode_report(r);
	}
	PG_RETURN_TEXT_P(postcode_part(canon, outward_len, part));
}

PG_FUNCTION_INFO_V1(normalise_postcode);
Datum
normalise_postcode(PG_FUNCTION_ARGS)
{
	return postcode_common(fcinfo, PC_PART_FULL, false);
}

PG_FUNCTION_INFO_V1(try_normalise_postcode);
Datum
try_normalise_postcode(PG_FUNCTION_ARGS)
{
	return postcode_common(fcinfo, PC_PART_FULL, true);
}

PG_FUNCTION_INFO_V1(postcode_area);
Datum
postcode_area(PG_FUNCTION_ARGS)
{
	return postcode_common(fcinfo, PC_PART_AREA, false);
}

PG_FUNCTION_INFO_V1(try_postcode_area);
Datum
try_postcode_area(PG_FUNCTION_ARGS)
{
	return postcode_common(fcinfo, PC_PART_AREA, true);
}

PG_FUNCTION_INFO_V1(postcode_district);
Datum
postcode_district(PG_FUNCTION_ARGS)
{
	return postcode_common(fcinfo, PC_PART_DISTRICT, false);
}

PG_FUNCTION_INFO_V1(try_postcode_district);
Datum
try_postcode_district(PG_FUNCTION_ARGS)
{
	return postcode_common(fcinfo, PC_PART_DISTRICT, true);
}

PG_FUNCTION_INFO_V1(postcode_sector);
Datum
postcode_sector(PG_FUNCTION_ARGS)
{
	return postcode_common(fcinfo, PC_PART_SECTOR, false);
}

PG_FUNCTION_INFO_V1(try_postcode_sector);
Datum
try_postcode_sector(PG_FUNCTION_ARGS)
{
	return postcode_common(fcinfo, PC_PART_SECTOR, true);
}
