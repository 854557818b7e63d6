/*
 * test/fuzz/fuzz.h: what the fuzz targets share with test/fuzz/server_stubs.c,
 * included after the server source file a target compiles in.
 *
 * server_stubs.c turns ereport(ERROR) into a longjmp to *fuzz_on_error (a
 * clean rejection of the input), and frees each input's palloc'd memory in
 * fuzz_free_all().  Its errfinish() takes 21 for ERROR.
 */
#ifndef CAREDATA_FUZZ_H
#define CAREDATA_FUZZ_H

#include <setjmp.h>

#include "fmgr.h"
#include "lib/stringinfo.h"

StaticAssertDecl(ERROR == 21, "server_stubs.c's errfinish takes 21 for ERROR");

extern jmp_buf *fuzz_on_error;
extern void fuzz_free_all(void);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fn(args[0], ..., args[nargs - 1]), none NULL, as DirectFunctionCallN calls it */
static inline Datum
fuzz_call(PGFunction fn, int nargs, const Datum *args)
{
	LOCAL_FCINFO(fcinfo, FUNC_MAX_ARGS);

	InitFunctionCallInfoData(*fcinfo, NULL, nargs, InvalidOid, NULL, NULL);
	for (int i = 0; i < nargs; i++)
	{
		fcinfo->args[i].value = args[i];
		fcinfo->args[i].isnull = false;
	}
	return fn(fcinfo);
}

/* fn(arg), as DirectFunctionCall1 calls it */
static inline Datum
fuzz_call1(PGFunction fn, Datum arg)
{
	return fuzz_call(fn, 1, &arg);
}

/*
 * A binary message for a receive function, as the server passes one: a
 * StringInfo in palloc'd memory, NUL-terminated at len.
 */
static inline void
fuzz_message(StringInfo buf, const uint8_t *data, size_t size)
{
	buf->data = palloc(size + 1);
	memcpy(buf->data, data, size);
	buf->data[size] = '\0';
	buf->len = (int) size;
	buf->maxlen = (int) size + 1;
	buf->cursor = 0;
}

/*
 * recv (a type's receive function) on a binary message holding data: true,
 * with *result, when it accepts the message; false when it rejects it with
 * ereport(ERROR).  buf is left as recv left it (its cursor says how much it
 * read).  The caller checks the result, then calls fuzz_free_all().
 */
static inline bool
fuzz_recv(PGFunction recv, StringInfo buf, const uint8_t *data, size_t size, Datum *result)
{
	jmp_buf		on_error;
	volatile bool accepted = false;

	fuzz_message(buf, data, size);
	fuzz_on_error = &on_error;
	if (setjmp(on_error) == 0)
	{
		*result = fuzz_call1(recv, PointerGetDatum(buf));
		accepted = true;
	}
	fuzz_on_error = NULL;
	return accepted;
}

/*
 * The targets' convention: an input starting with B is a binary message
 * for a receive function.  For such an input, recv(the rest), then
 * check(what it returned, the message read) when it accepts it: an
 * ereport(ERROR) in either is a clean rejection.  Frees what the input
 * palloc'd.  Returns whether the input was such a message.
 */
static inline bool
fuzz_receive(PGFunction recv, const uint8_t *data, size_t size,
			 void (*check) (Datum value, StringInfo buf))
{
	jmp_buf		on_error;
	StringInfoData buf;
	Datum		value;

	if (size == 0 || data[0] != 'B')
		return false;
	if (fuzz_recv(recv, &buf, data + 1, size - 1, &value))
	{
		fuzz_on_error = &on_error;
		if (setjmp(on_error) == 0)
			check(value, &buf);
		fuzz_on_error = NULL;
	}
	fuzz_free_all();
	return true;
}

/* the fuzzer's input read a byte at a time; 0 once it runs out */
typedef struct Reader
{
	const uint8_t *data;
	size_t		size;
	size_t		pos;
} Reader;

static inline unsigned
next_byte(Reader *r)
{
	return r->pos < r->size ? r->data[r->pos++] : 0;
}

#endif							/* CAREDATA_FUZZ_H */
