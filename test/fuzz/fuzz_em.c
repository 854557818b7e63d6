/*
 * test/fuzz/fuzz_em.c: libFuzzer target for the Fellegi-Sunter model's
 * array functions (src/linkage/em.c): link_em and link_pattern_weights,
 * called as the server calls them, with arrays built from the input (one-
 * or two-dimensional, lengths that match the model or not, patterns and
 * level counts past their ranges, probabilities and counts that are NaN,
 * infinite or negative).  ereport(ERROR) returns here as a rejection
 * (server_stubs.c).  The few array and tuple routines em.c calls are small
 * stand-ins below, for one-dimensional arrays without NULLs and for
 * two-dimensional ones (which em.c must refuse).
 *
 * Invariants: for counts that are finite and not negative and a finite
 * total, link_em's m lies in [0, 1] and its lambda in [0, 1], and
 * link_pattern_weights gives a finite weight for every pattern.
 */
#include "../../src/linkage/em.c"

#include <math.h>

#include "access/htup_details.h"
#include "fuzz.h"

/* ---- stand-ins for the array and tuple routines em.c calls ---- */

struct varlena *
pg_detoast_datum(struct varlena *datum)
{
	return datum;
}

bool
array_contains_nulls(ArrayType *array)
{
	return ARR_HASNULL(array);
}

void
deconstruct_array(ArrayType *array, Oid elmtype, int elmlen, bool elmbyval, char elmalign,
				  Datum **elemsp, bool **nullsp, int *nelemsp)
{
	int			n = ARR_NDIM(array) == 0 ? 0 : ARR_DIMS(array)[0] * (ARR_NDIM(array) == 2 ? ARR_DIMS(array)[1] : 1);
	char	   *p = ARR_DATA_PTR(array);

	if (elmlen != 4 && elmlen != 8)
		abort();
	*elemsp = palloc(sizeof(Datum) * Max(n, 1));
	if (nullsp)
		*nullsp = palloc0(Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (elmlen == 4)
		{
			int32		v;

			memcpy(&v, p + 4 * i, 4);
			(*elemsp)[i] = Int32GetDatum(v);
		}
		else
		{
			double		v;

			memcpy(&v, p + 8 * i, 8);
			(*elemsp)[i] = Float8GetDatum(v);
		}
	}
	*nelemsp = n;
}

static double *result_m;
static int	result_nm;

ArrayType *
construct_array(Datum *elems, int nelems, Oid elmtype, int elmlen, bool elmbyval, char elmalign)
{
	result_m = palloc(sizeof(double) * Max(nelems, 1));
	for (int i = 0; i < nelems; i++)
		result_m[i] = DatumGetFloat8(elems[i]);
	result_nm = nelems;
	return (ArrayType *) result_m;
}

TypeFuncClass
get_call_result_type(FunctionCallInfo fcinfo, Oid *resultTypeId, TupleDesc *resultTupleDesc)
{
	*resultTupleDesc = NULL;
	return TYPEFUNC_COMPOSITE;
}

TupleDesc
BlessTupleDesc(TupleDesc tupdesc)
{
	return tupdesc;
}

static double result_lambda;

HeapTuple
heap_form_tuple(TupleDesc tupleDescriptor, Datum *values, bool *isnull)
{
	result_lambda = DatumGetFloat8(values[1]);
	return palloc0(sizeof(HeapTupleData));
}

Datum
HeapTupleHeaderGetDatum(HeapTupleHeader tuple)
{
	return (Datum) 0;
}

/* ---- arrays from the input ---- */

/* a one-dimensional (sometimes two-dimensional) int4[] or float8[] of n elements */
static ArrayType *
make_array(Reader *r, Oid elemtype, int n, double (*elem) (Reader *, int))
{
	int			ndim = (next_byte(r) == 0xfe) ? 2 : (n == 0 ? 0 : 1);
	int			elmlen = elemtype == INT4OID ? 4 : 8;
	Size		overhead = ARR_OVERHEAD_NONULLS(Max(ndim, 1));
	ArrayType  *a = palloc0(overhead + (Size) elmlen * Max(n, 1));
	char	   *p = (char *) a + overhead;

	SET_VARSIZE(a, overhead + elmlen * n);
	a->ndim = ndim;
	a->dataoffset = 0;
	a->elemtype = elemtype;
	if (ndim >= 1)
	{
		ARR_DIMS(a)[0] = ndim == 2 ? 1 : n;
		ARR_LBOUND(a)[0] = 1;
	}
	if (ndim == 2)
	{
		ARR_DIMS(a)[1] = n;
		ARR_LBOUND(a)[1] = 1;
	}
	for (int i = 0; i < n; i++)
	{
		double		v = elem(r, i);

		if (elemtype == INT4OID)
		{
			/* NaN and the infinities: the largest int4, as a boundary too */
			int32		iv = (isfinite(v) && v >= PG_INT32_MIN && v <= PG_INT32_MAX) ? (int32) v : PG_INT32_MAX;

			memcpy(p + 4 * i, &iv, 4);
		}
		else
			memcpy(p + 8 * i, &v, 8);
	}
	return a;
}

/* small values mostly; now and then a boundary */
static double
boundary(Reader *r)
{
	static const double b[] = {-1, 0, 1, 2, 16, 17, 1073741824.0, 2147483647.0, -2147483648.0, NAN, INFINITY, -INFINITY, 1e-300, 0.5};

	return b[next_byte(r) % lengthof(b)];
}

static double
level_count(Reader *r, int i)
{
	unsigned	c = next_byte(r);

	return c >= 0xf0 ? boundary(r) : 2 + c % 3;
}

static int	pattern_max = 1;

static double
pattern(Reader *r, int i)
{
	unsigned	c = next_byte(r);

	return c >= 0xf8 ? boundary(r) : c % Max(pattern_max, 1);
}

static double
probability(Reader *r, int i)
{
	unsigned	c = next_byte(r);

	return c >= 0xf8 ? boundary(r) : (c % 101) / 100.0;
}

static bool sane_counts;

static double
count(Reader *r, int i)
{
	unsigned	c = next_byte(r);

	if (c >= 0xf8)
	{
		double		v = boundary(r);

		if (!(isfinite(v) && v >= 0))
			sane_counts = false;
		return v;
	}
	return c;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Reader		r = {data, size, 0};
	jmp_buf		on_error;

	if (size > 4096)
		return 0;
	fuzz_on_error = &on_error;
	if (setjmp(on_error) == 0)
	{
		int			ncomp = next_byte(&r) % 6;
		int			npat = next_byte(&r) % 24;
		int			nparams;
		ArrayType  *nlevels,
				   *patterns,
				   *m,
				   *u,
				   *counts;
		double		total = next_byte(&r) >= 0xf0 ? boundary(&r) : 100.0 + next_byte(&r) * 1000.0;
		double		lambda = next_byte(&r) >= 0xf0 ? boundary(&r) : (1 + next_byte(&r) % 98) / 100.0;
		bool		em = next_byte(&r) & 1;
		int32	   *nl;

		nlevels = make_array(&r, INT4OID, ncomp, level_count);
		/* what the model expects, as far as the levels are sane */
		nparams = 0;
		pattern_max = 1;
		nl = (int32 *) ARR_DATA_PTR(nlevels);
		for (int i = 0; i < ncomp; i++)
		{
			int32		v;

			memcpy(&v, nl + i, 4);
			if (v >= 2 && v <= 16)
			{
				nparams += v;
				pattern_max *= v;
			}
		}
		patterns = make_array(&r, INT4OID, npat, pattern);
		m = make_array(&r, FLOAT8OID, nparams + (next_byte(&r) == 0xff ? 1 : 0), probability);
		u = make_array(&r, FLOAT8OID, nparams, probability);
		sane_counts = isfinite(total);
		counts = make_array(&r, FLOAT8OID, npat + (next_byte(&r) == 0xff ? 1 : 0), count);
		result_nm = -1;
		if (em)
		{
			Datum		args[8] = {
				PointerGetDatum(patterns), PointerGetDatum(counts), PointerGetDatum(nlevels),
				PointerGetDatum(u), PointerGetDatum(m), Float8GetDatum(total),
				Int32GetDatum(1 + next_byte(&r) % 50), Float8GetDatum(1e-6)
			};

			fuzz_call(link_em, 8, args);
			if (sane_counts)
			{
				if (!(result_lambda >= 0.0 && result_lambda <= 1.0))
					__builtin_trap();
				for (int k = 0; k < result_nm; k++)
					if (!(result_m[k] >= 0.0 && result_m[k] <= 1.0))
						__builtin_trap();
			}
		}
		else
		{
			Datum		args[5] = {
				PointerGetDatum(patterns), PointerGetDatum(nlevels), PointerGetDatum(m),
				PointerGetDatum(u), Float8GetDatum(lambda)
			};

			fuzz_call(link_pattern_weights, 5, args);
			if (result_nm != npat)
				__builtin_trap();
			for (int k = 0; k < result_nm; k++)
				if (!isfinite(result_m[k]))
					__builtin_trap();
		}
	}
	fuzz_on_error = NULL;
	fuzz_free_all();
	return 0;
}
