/*-------------------------------------------------------------------------
 *
 * dob.c
 *		Dates of birth: parsing, validity as HES uses it, age bands.
 *
 * Owns what counts as a usable date of birth (not before 1895-01-01, the
 * earliest HES accepts, and not after the reference date) and the age band
 * labels used in publications.  Parsing accepts the layouts sources send
 * and does not depend on the DateStyle setting, so it can be IMMUTABLE:
 *
 *		YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD, DD/MM/YYYY, DD-MM-YYYY, DD.MM.YYYY
 *
 * A date of birth is a quasi-identifier: messages never echo it.
 *
 * src/identifiers/dob.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "base/pg_compat.h"

#define DOB_EARLIEST_YEAR	1895

typedef enum DobResult
{
	DOB_OK = 0,
	DOB_BAD_FORMAT,
	DOB_NO_SUCH_DATE,
	DOB_TOO_EARLY,
	DOB_FUTURE
} DobResult;

static DateADT
dob_earliest(void)
{
	return date2j(DOB_EARLIEST_YEAR, 1, 1) - POSTGRES_EPOCH_JDATE;
}

static DobResult
dob_check(DateADT dob, DateADT at)
{
	if (DATE_NOT_FINITE(dob) || dob < dob_earliest())
		return DOB_TOO_EARLY;
	if (dob > at)
		return DOB_FUTURE;
	return DOB_OK;
}

/* read exactly n digits from *p into *value */
static bool
read_digits(const char **p, const char *end, int min, int max, int *value)
{
	int			n = 0;
	int			v = 0;

	while (*p < end && **p >= '0' && **p <= '9' && n < max)
	{
		v = v * 10 + (**p - '0');
		(*p)++;
		n++;
	}
	*value = v;
	return n >= min;
}

static DobResult
dob_parse(const char *str, int len, DateADT at, DateADT *result)
{
	const char *p = str;
	const char *end = str + len;
	int			y,
				m,
				d;
	int			first;
	int			first_len;
	const char *start;
	char		sep;

	while (p < end && isspace((unsigned char) *p))
		p++;
	while (end > p && isspace((unsigned char) end[-1]))
		end--;

	start = p;
	if (!read_digits(&p, end, 1, 8, &first))
		return DOB_BAD_FORMAT;
	first_len = p - start;

	if (p == end)
	{
		/* YYYYMMDD */
		if (first_len != 8)
			return DOB_BAD_FORMAT;
		y = first / 10000;
		m = (first / 100) % 100;
		d = first % 100;
	}
	else
	{
		sep = *p++;
		if (sep != '-' && sep != '/' && sep != '.')
			return DOB_BAD_FORMAT;
		if (first_len == 4)
		{
			/* YYYY-MM-DD or YYYY/MM/DD */
			if (sep == '.')
				return DOB_BAD_FORMAT;
			y = first;
			if (!read_digits(&p, end, 1, 2, &m) || p == end || *p++ != sep ||
				!read_digits(&p, end, 1, 2, &d))
				return DOB_BAD_FORMAT;
		}
		else if (first_len <= 2)
		{
			/* DD/MM/YYYY, DD-MM-YYYY, DD.MM.YYYY */
			d = first;
			if (!read_digits(&p, end, 1, 2, &m) || p == end || *p++ != sep ||
				!read_digits(&p, end, 4, 4, &y))
				return DOB_BAD_FORMAT;
		}
		else
			return DOB_BAD_FORMAT;
		if (p != end)
			return DOB_BAD_FORMAT;
	}

	/* a real calendar date?  (round trip through the Julian day) */
	{
		int			jy,
					jm,
					jd;

		if (y < 1 || m < 1 || m > 12 || d < 1 || d > 31)
			return DOB_NO_SUCH_DATE;
		j2date(date2j(y, m, d), &jy, &jm, &jd);
		if (jy != y || jm != m || jd != d)
			return DOB_NO_SUCH_DATE;
	}

	*result = date2j(y, m, d) - POSTGRES_EPOCH_JDATE;
	return dob_check(*result, at);
}

static void
dob_report(DobResult r)
{
	switch (r)
	{
		case DOB_OK:
			break;
		case DOB_BAD_FORMAT:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
					 errmsg("invalid date of birth"),
					 errdetail("The value is not in a recognised layout."),
					 errhint("Accepted layouts: YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD, DD/MM/YYYY, DD-MM-YYYY, DD.MM.YYYY. Use try_standardise_dob() to turn unusable values into NULL.")));
			break;
		case DOB_NO_SUCH_DATE:
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_FIELD_OVERFLOW),
					 errmsg("invalid date of birth"),
					 errdetail("The day, month and year do not make a calendar date."),
					 errhint("Check for a day and month written the wrong way round.")));
			break;
		case DOB_TOO_EARLY:
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("date of birth out of range"),
					 errdetail("Dates of birth before 1895-01-01 are not valid (the HES rule)."),
					 errhint("Placeholder dates such as 1800-01-01 usually mean the date was not known; store NULL instead.")));
			break;
		case DOB_FUTURE:
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("date of birth out of range"),
					 errdetail("The date of birth is after the reference date."),
					 errhint("Check the source record; the reference date defaults to today.")));
			break;
	}
}

static Datum
dob_standardise_common(FunctionCallInfo fcinfo, bool try)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	DateADT		at = PG_GETARG_DATEADT(1);
	DateADT		result = 0;
	DobResult	r;

	r = dob_parse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), at, &result);
	if (r != DOB_OK)
	{
		if (try)
			PG_RETURN_NULL();
		dob_report(r);
	}
	PG_RETURN_DATEADT(result);
}

PG_FUNCTION_INFO_V1(standardise_dob);
Datum
standardise_dob(PG_FUNCTION_ARGS)
{
	return dob_standardise_common(fcinfo, false);
}

PG_FUNCTION_INFO_V1(try_standardise_dob);
Datum
try_standardise_dob(PG_FUNCTION_ARGS)
{
	return dob_standardise_common(fcinfo, true);
}

PG_FUNCTION_INFO_V1(dob_is_valid);
Datum
dob_is_valid(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(dob_check(PG_GETARG_DATEADT(0), PG_GETARG_DATEADT(1)) == DOB_OK);
}

/* completed years between dob and at (at >= dob, both finite) */
static int
age_years(DateADT dob, DateADT at)
{
	int			by,
				bm,
				bd,
				ay,
				am,
				ad;
	int			years;

	j2date(dob + POSTGRES_EPOCH_JDATE, &by, &bm, &bd);
	j2date(at + POSTGRES_EPOCH_JDATE, &ay, &am, &ad);
	years = ay - by;
	if (am < bm || (am == bm && ad < bd))
		years--;
	return years;
}

/*
 * age_band(dob, at, width, top): the band of completed years at date at,
 * labelled 'lo-hi' ('40-44' for width 5), a single age for width 1, and
 * 'top+' for everyone aged top or more.
 */
PG_FUNCTION_INFO_V1(age_band);
Datum
age_band(PG_FUNCTION_ARGS)
{
	DateADT		dob = PG_GETARG_DATEADT(0);
	DateADT		at = PG_GETARG_DATEADT(1);
	int32		width = PG_GETARG_INT32(2);
	int32		top = PG_GETARG_INT32(3);
	int			age;
	int			lo,
				hi;

	if (width < 1 || width > 150)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("age band width must be between 1 and 150 years")));
	if (top < 1 || top > 150)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("top age band must start between 1 and 150 years")));
	if (DATE_NOT_FINITE(dob) || DATE_NOT_FINITE(at))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("age band needs finite dates")));
	if (dob > at)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("date of birth is after the reference date"),
				 errhint("Filter with dob_is_valid(dob, at) first.")));

	age = age_years(dob, at);
	if (age >= top)
		PG_RETURN_TEXT_P(cstring_to_text(psprintf("%d+", top)));
	lo = (age / width) * width;
	hi = Min(lo + width - 1, top - 1);
	if (lo == hi)
		PG_RETURN_TEXT_P(cstring_to_text(psprintf("%d", lo)));
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("%d-%d", lo, hi)));
}
