/*
 * test/fuzz/server_stubs.c: the server functions the fuzz targets' source
 * files refer to.  Those the targets never call (text and protocol helpers,
 * keys) abort if called, so a target that reached one would show it as a
 * crash.  Those they do call are small stand-ins: snprintf and memory are
 * the C library's (memory freed per input), ereport(ERROR) jumps back to
 * the target that expects it, and the Julian-day conversions are
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

/*
 * Memory: the C library's, each block also kept in a list so that a target
 * can free what an input left behind (fuzz_free_all), as a memory context
 * reset would; a parser that errors out of the middle of its work (below)
 * leaks nothing then.
 */
#include <setjmp.h>
#include <string.h>

void	   *palloc(size_t size);
void	   *palloc0(size_t size);
void	   *palloc_extended(size_t size, int flags);
void	   *repalloc(void *pointer, size_t size);
void		pfree(void *pointer);
void		fuzz_free_all(void);

static void **blocks;
static size_t nblocks,
			maxblocks;

static void *
keep(void *p)
{
	if (p == NULL)
		abort();
	if (nblocks == maxblocks)
	{
		maxblocks = maxblocks ? maxblocks * 2 : 64;
		blocks = realloc(blocks, maxblocks * sizeof(void *));
		if (blocks == NULL)
			abort();
	}
	blocks[nblocks++] = p;
	return p;
}
static void
forget(void *p)
{
	for (size_t i = nblocks; i-- > 0;)
		if (blocks[i] == p)
		{
			blocks[i] = blocks[--nblocks];
			return;
		}
	abort();					/* not ours: a double free */
}
void *
palloc(size_t size)
{
	return keep(malloc(size ? size : 1));
}
void *
palloc0(size_t size)
{
	return keep(calloc(1, size ? size : 1));
}
void *
palloc_extended(size_t size, int flags)
{
	return (flags & 0x04) ? palloc0(size) : palloc(size);	/* MCXT_ALLOC_ZERO */
}
void *
repalloc(void *pointer, size_t size)
{
	void	   *p;

	forget(pointer);
	p = realloc(pointer, size ? size : 1);
	return keep(p);
}
void
pfree(void *pointer)
{
	forget(pointer);
	free(pointer);
}
void
fuzz_free_all(void)
{
	while (nblocks > 0)
		free(blocks[--nblocks]);
}

/*
 * Errors: ereport(ERROR) returns to the target's setjmp (fuzz_on_error)
 * when it has one, as a clean rejection of the input; otherwise, and for
 * any error a target does not expect, it aborts, which libFuzzer reports.
 * 21 is ERROR in PostgreSQL 15 and 17 (utils/elog.h); the targets that use
 * this check it at compile time.
 */
jmp_buf    *fuzz_on_error = NULL;
static int	fuzz_elevel;

_Bool		errstart(int elevel, const char *domain);
_Bool		errstart_cold(int elevel, const char *domain);
void		errfinish(const char *filename, int lineno, const char *funcname);
int			errcode(int sqlerrcode);
int			errmsg(const char *fmt,...);
int			errmsg_internal(const char *fmt,...);
int			errdetail(const char *fmt,...);
int			errhint(const char *fmt,...);

_Bool
errstart(int elevel, const char *domain)
{
	fuzz_elevel = elevel;
	return 1;
}
_Bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}
void
errfinish(const char *filename, int lineno, const char *funcname)
{
	if (fuzz_elevel >= 21)
	{
		if (fuzz_on_error == NULL)
			abort();
		longjmp(*fuzz_on_error, 1);
	}
}
int
errcode(int sqlerrcode)
{
	return 0;
}
int
errmsg(const char *fmt,...)
{
	return 0;
}
int
errmsg_internal(const char *fmt,...)
{
	return 0;
}
int
errdetail(const char *fmt,...)
{
	return 0;
}
int
errhint(const char *fmt,...)
{
	return 0;
}

/* strlcpy: libpgport's (glibc has one only from 2.38) */
size_t		strlcpy(char *dst, const char *src, size_t siz);
size_t
strlcpy(char *dst, const char *src, size_t siz)
{
	size_t		len = strlen(src);

	if (siz > 0)
	{
		size_t		n = len < siz - 1 ? len : siz - 1;

		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

/*
 * Binary input: reading a message, as libpq/pqformat.c reads it (network
 * byte order; too little data left is an error, which returns to the
 * target like any ereport(ERROR)).  A StringInfo's layout: data, len,
 * maxlen, cursor.
 */
typedef struct FuzzStringInfo
{
	char	   *data;
	int			len;
	int			maxlen;
	int			cursor;
} FuzzStringInfo;

void		pq_copymsgbytes(FuzzStringInfo *msg, char *buf, int datalen);
unsigned int pq_getmsgint(FuzzStringInfo *msg, int b);
long long	pq_getmsgint64(FuzzStringInfo *msg);
double		pq_getmsgfloat8(FuzzStringInfo *msg);
const char *pq_getmsgstring(FuzzStringInfo *msg);

static void
insufficient_data(void)
{
	errstart(21, NULL);
	errfinish(__FILE__, __LINE__, __func__);
}
void
pq_copymsgbytes(FuzzStringInfo *msg, char *buf, int datalen)
{
	if (datalen < 0 || datalen > (msg->len - msg->cursor))
		insufficient_data();
	memcpy(buf, &msg->data[msg->cursor], datalen);
	msg->cursor += datalen;
}
unsigned int
pq_getmsgint(FuzzStringInfo *msg, int b)
{
	unsigned char c[4];
	unsigned int result = 0;

	if (b != 1 && b != 2 && b != 4)
		abort();
	pq_copymsgbytes(msg, (char *) c, b);
	for (int i = 0; i < b; i++)
		result = (result << 8) | c[i];
	return result;
}
long long
pq_getmsgint64(FuzzStringInfo *msg)
{
	unsigned char c[8];
	unsigned long long result = 0;

	pq_copymsgbytes(msg, (char *) c, 8);
	for (int i = 0; i < 8; i++)
		result = (result << 8) | c[i];
	return (long long) result;
}
double
pq_getmsgfloat8(FuzzStringInfo *msg)
{
	long long	bits = pq_getmsgint64(msg);
	double		d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}
const char *
pq_getmsgstring(FuzzStringInfo *msg)
{
	char	   *str = &msg->data[msg->cursor];
	int			slen = (int) strnlen(str, msg->len - msg->cursor);

	if (msg->cursor + slen >= msg->len)
		insufficient_data();
	msg->cursor += slen + 1;
	return str;				/* no encoding conversion: the server's is UTF-8 */
}

/* qsort: the C library's */
void		pg_qsort(void *base, size_t nel, size_t elsize, int (*cmp) (const void *, const void *));
void
pg_qsort(void *base, size_t nel, size_t elsize, int (*cmp) (const void *, const void *))
{
	qsort(base, nel, elsize, cmp);
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

/*
 * Sizes and interrupts, for table.c: mul_size as storage/ipc/shmem.c's
 * (overflow is an ERROR), no pending interrupt, and a stack that libFuzzer
 * and AddressSanitizer watch themselves.
 */
size_t		mul_size(size_t s1, size_t s2);
size_t
mul_size(size_t s1, size_t s2)
{
	size_t		result;

	if (s1 == 0 || s2 == 0)
		return 0;
	result = s1 * s2;
	if (result / s2 != s1)
		insufficient_data();	/* an ERROR, as out-of-range sizes are */
	return result;
}
volatile int InterruptPending = 0;
void		check_stack_depth(void);
void
check_stack_depth(void)
{
}

/* SPI's variables, which policy.c names but the targets never reach */
unsigned long SPI_processed;
void	   *SPI_tuptable;

/* weak: a target that compiles in the real definition (sex_lookup in fuzz_sex) keeps it */
#define STUB(name) void name(void) __attribute__((weak)); void name(void) { abort(); }
/* the policy in force, the record keys and the cell key method: never reached by the parsers */
STUB(GetUserId)
STUB(get_attnum)
STUB(get_namespace_oid)
STUB(get_relname_relid)
STUB(record_key_bytes)
STUB(record_key_int8)
STUB(sdc_policy_allowed)
STUB(sdc_policy_in_force)
STUB(sdc_ptable_load)
STUB(sdc_publish_keyed)
STUB(sdc_publish_people)
STUB(sdc_publish_sum)
STUB(sdc_key_sum)
STUB(AggCheckCallContext)
STUB(AggGetAggref)
STUB(appendStringInfo)
STUB(AtEOXact_GUC)
STUB(citus_nested_begin)
STUB(construct_array)
STUB(citus_nested_end)
STUB(cstring_to_text)
STUB(cstring_to_text_with_len)
STUB(deconstruct_array)
STUB(DefineCustomStringVariable)
STUB(enlargeStringInfo)
STUB(ExceptionalCondition)
STUB(format_elog_string)
STUB(get_typlenbyvalalign)
STUB(GUC_check_errdetail_string)
STUB(hash_bytes)
STUB(hash_bytes_extended)
STUB(InitMaterializedSRF)
STUB(initStringInfo)
STUB(keys_generation)
STUB(keys_lookup_domain)
STUB(keys_pseudonym_from_cstring)
STUB(keys_token)
STUB(MemoryContextAllocZero)
STUB(nhs_number_digits)
STUB(nhs_number_from_int8_or_error)
STUB(nhs_number_from_text_or_error)
STUB(nhs_number_value_is_valid)
STUB(pg_detoast_datum)
STUB(pg_detoast_datum_packed)
STUB(NewGUCNestLevel)
STUB(pg_mb2wchar_with_len)
STUB(pg_mbstrlen_with_len)
STUB(postcode_canonical)
STUB(pq_begintypsend)
STUB(pq_endtypsend)
STUB(pq_sendbytes)
STUB(pq_sendfloat8)
STUB(pq_sendstring)
STUB(pre_format_elog_string)
STUB(ProcessInterrupts)
STUB(psprintf)
STUB(sex_lookup)
STUB(set_config_option)
STUB(SPI_connect)
STUB(SPI_execute_with_args)
STUB(SPI_finish)
STUB(SPI_getbinval)
STUB(SPI_getvalue)
STUB(SPI_result_code_string)
STUB(text_to_cstring)
STUB(tuplestore_putvalues)
/* names.c: the SQL wrappers, the server encoding and the phonetic code's library */
STUB(AllocSetContextCreateInternal)
STUB(appendBinaryStringInfo)
STUB(appendStringInfoChar)
STUB(DirectFunctionCall1Coll)
STUB(load_external_function)
STUB(MemoryContextDelete)
STUB(MemoryContextReset)
STUB(pg_any_to_server)
STUB(pg_server_to_any)
void	   *CurrentMemoryContext __attribute__((weak));
char		pkglib_path[1024] __attribute__((weak));
