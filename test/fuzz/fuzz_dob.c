/*
 * test/fuzz/fuzz_dob.c: libFuzzer target for date-of-birth parsing
 * (src/identifiers/dob.c's parser, compiled in here).  Invariants: a date that parses
 * lies between 1895-01-01 and the reference date; it is the calendar date
 * the C library's gmtime() gives for that day (an independent calendar);
 * and its YYYY-MM-DD and DD/MM/YYYY spellings parse back to it.
 */
#include <time.h>

#include "../../src/identifiers/dob.c"

#include "fuzz.h"

static void
reparse(const char *text, DateADT at, DateADT expected)
{
	DateADT		again = 0;

	if (dob_parse(text, (int) strlen(text), at, &again) != DOB_OK || again != expected)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	DateADT		at = date2j(2100, 12, 31) - POSTGRES_EPOCH_JDATE;
	DateADT		dob = 0;
	int			y,
				m,
				d;
	time_t		secs;
	struct tm	tm;
	char		text[32];

	if (size > 64)
		return 0;
	if (dob_parse((const char *) data, (int) size, at, &dob) != DOB_OK)
		return 0;
	if (dob < dob_earliest() || dob > at)
		__builtin_trap();
	j2date(dob + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	secs = (time_t) dob * 86400 + 946684800;	/* 2000-01-01 in Unix time */
	if (gmtime_r(&secs, &tm) == NULL ||
		tm.tm_year + 1900 != y || tm.tm_mon + 1 != m || tm.tm_mday != d)
		__builtin_trap();
	snprintf(text, sizeof(text), "%04d-%02d-%02d", y, m, d);
	reparse(text, at, dob);
	snprintf(text, sizeof(text), "%02d/%02d/%04d", d, m, y);
	reparse(text, at, dob);
	return 0;
}
