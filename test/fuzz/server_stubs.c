/*
 * test/fuzz/server_stubs.c: the server functions the fuzz targets' source
 * files refer to.  Those the targets never call (errors, text and protocol
 * helpers, keys) abort if called, so a target that reached one would show
 * it as a crash.  Those they do call are small stand-ins: snprintf and
 * memory are the C library's, and the Julian-day conversions are
 * PostgreSQL's algorithm (fuzz_dob.c checks them against the C library's
 * calendar).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* used by nhs_format(): PostgreSQL's snprintf, here the C library's */
int			pg_snprintf(char *str, size_t count, const char *fmt,...);
int
pg_snprintf(char *str, size_t count, const char *fmt,...)
{
	va_list		args;
	int			n;

	va_start(args, fmt);
	n = vsnprintf(str, count, fmt, args);
	va_end(args);
	return n;
}

/* used by sex_lookup(): ASCII letters to lower case, as libpgport's */
unsigned char pg_ascii_tolower(unsigned char ch);
unsigned char
pg_ascii_tolower(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') ? ch + ('a' - 'A') : ch;
}

/* memory: the C library's (the comparators allocate and free) */
void	   *palloc(size_t size);
void	   *palloc0(size_t size);
void		pfree(void *pointer);
void *
palloc(size_t size)
{
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
		abort();
	return p;
}
void *
palloc0(size_t size)
{
	void	   *p = calloc(1, size ? size : 1);

	if (p == NULL)
		abort();
	return p;
}
void
pfree(void *pointer)
{
	free(pointer);
}

/* Julian day numbers, as src/backend/utils/adt/datetime.c computes them */
int			date2j(int year, int month, int day);
void		j2date(int jd, int *year, int *month, int *day);
int
date2j(int year, int month, int day)
{
	int			julian;
	int			century;

	if (month > 2)
	{
		month += 1;
		year += 4800;
	}
	else
	{
		month += 13;
		year += 4799;
	}
	century = year / 100;
	julian = year * 365 - 32167;
	julian += year / 4 - century + century / 4;
	julian += 7834 * month / 256 + day;
	return julian;
}
void
j2date(int jd, int *year, int *month, int *day)
{
	unsigned int julian;
	unsigned int quad;
	unsigned int extra;
	int			y;

	julian = jd;
	julian += 32044;
	quad = julian / 146097;
	extra = (julian - quad * 146097) * 4 + 3;
	julian += 60 + quad * 3 + extra / 146097;
	quad = julian / 1461;
	julian -= quad * 1461;
	y = julian * 4 / 1461;
	julian = ((y != 0) ? ((julian + 305) % 365) : ((julian + 306) % 366)) + 123;
	y += quad * 4;
	*year = y - 4800;
	quad = julian * 2141 / 65536;
	*day = julian - 7834 * quad / 256;
	*month = (quad + 10) % 12 + 1;
}

/* weak: a target that compiles in the real definition (sex_lookup in fuzz_sex) keeps it */
#define STUB(name) void name(void) __attribute__((weak)); void name(void) { abort(); }
STUB(cstring_to_text)
STUB(cstring_to_text_with_len)
STUB(deconstruct_array)
STUB(enlargeStringInfo)
STUB(errcode)
STUB(ExceptionalCondition)
STUB(errdetail)
STUB(errfinish)
STUB(errhint)
STUB(errmsg)
STUB(errmsg_internal)
STUB(errstart)
STUB(errstart_cold)
STUB(get_typlenbyvalalign)
STUB(hash_bytes)
STUB(hash_bytes_extended)
STUB(keys_generation)
STUB(keys_lookup_domain)
STUB(keys_token)
STUB(MemoryContextAllocZero)
STUB(nhs_number_digits)
STUB(nhs_number_value_is_valid)
STUB(pg_detoast_datum)
STUB(pg_detoast_datum_packed)
STUB(pg_mb2wchar_with_len)
STUB(pg_mbstrlen_with_len)
STUB(postcode_canonical)
STUB(pq_begintypsend)
STUB(pq_copymsgbytes)
STUB(pq_endtypsend)
STUB(pq_getmsgint)
STUB(pq_getmsgint64)
STUB(pq_sendbytes)
STUB(psprintf)
STUB(sex_lookup)
STUB(strlcpy)
STUB(text_to_cstring)
