/*
 * test/fuzz/server_stubs.c: the server functions the fuzz targets' source
 * files refer to but the targets never call (errors, palloc, text and
 * protocol helpers).  Each aborts if called, so a target that reached one
 * would show it as a crash; snprintf is the C library's.
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

#define STUB(name) void name(void); void name(void) { abort(); }
STUB(cstring_to_text)
STUB(cstring_to_text_with_len)
STUB(enlargeStringInfo)
STUB(errcode)
STUB(errdetail)
STUB(errfinish)
STUB(errhint)
STUB(errmsg)
STUB(errmsg_internal)
STUB(errstart_cold)
STUB(errstart)
STUB(palloc)
STUB(pg_detoast_datum_packed)
STUB(pq_begintypsend)
STUB(pq_endtypsend)
STUB(pq_getmsgint64)
