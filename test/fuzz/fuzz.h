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

/* fn(arg), as DirectFunctionCall1 calls it */
static inline Datum
fuzz_call1(PGFunction fn, Datum arg)
{
	LOCAL_FCINFO(fcinfo, 1);

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = arg;
	fcinfo->args[0].isnull = false;
	return fn(fcinfo);
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
