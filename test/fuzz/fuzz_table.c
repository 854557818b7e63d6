/*
 * test/fuzz/fuzz_table.c: libFuzzer target for the tables with margins
 * (src/sdc/table.c): the checks of a table given as four arrays
 * (table_check), the bounds an attacker derives (bounds) and secondary
 * suppression (table_suppress), as sdc_table_bounds and sdc_table_suppress
 * run them after reading their arrays.  ereport(ERROR) returns here as a
 * rejection (server_stubs.c).
 *
 * An input starting with 'T' is a whole table: R and C (1 to 6), each
 * interior count (0 to 15), the primary suppressions, min_width; margins
 * computed, cells in a shuffled order, and then, now and then, one index or
 * count overwritten from the input.  Any other input is raw arrays: each
 * index and count one byte (small) or, after a byte 0xff, a full int32 or
 * int64 (2^30, 2^31 - 1, negative: what issue 22's crash used).
 *
 * Invariants: what table_check accepts has every (row, col) once with
 * rows 0..R and columns 0..C; every published cell's bounds are its value
 * and every suppressed cell's contain it, with lower >= 0; after
 * table_suppress, every primary cell is still suppressed and, unless
 * everything is, no suppressed cell's interval is narrower than min_width.
 */
#include "../../src/sdc/table.c"

#include "fuzz.h"

static int64
next_raw(Reader *r, int bytes)
{
	uint64		v = 0;

	for (int i = 0; i < bytes; i++)
		v = (v << 8) | next_byte(r);
	return bytes == 4 ? (int64) (int32) (uint32) v : (int64) v;
}

/* one byte (0..254), or 0xff and then a full value */
static int64
next_value(Reader *r, int bytes)
{
	unsigned	b = next_byte(r);

	return b == 0xff ? next_raw(r, bytes) : (int64) (b % 16);
}

static void
whole_table(Reader *r, Table *t, int64 *min_width)
{
	int			R = 1 + next_byte(r) % 6;
	int			C = 1 + next_byte(r) % 6;
	int			n = (R + 1) * (C + 1);
	int		   *order;

	t->ncells = n;
	t->row = palloc(sizeof(int32) * n);
	t->col = palloc(sizeof(int32) * n);
	t->value = palloc0(sizeof(int64) * n);
	t->supp = palloc(sizeof(bool) * n);
	order = palloc(sizeof(int) * n);
	for (int k = 0; k < n; k++)
		order[k] = k;
	/* a shuffle: the cells need not come row by row */
	for (int k = n - 1; k > 0; k--)
	{
		int			j = next_byte(r) % (k + 1);
		int			tmp = order[k];

		order[k] = order[j];
		order[j] = tmp;
	}
	for (int k = 0; k < n; k++)
	{
		t->row[order[k]] = k / (C + 1);
		t->col[order[k]] = k % (C + 1);
	}
	/* interior counts, then the margins as their sums */
	for (int k = 0; k < n; k++)
		if (t->row[k] > 0 && t->col[k] > 0)
			t->value[k] = next_byte(r) % 16;
	for (int k = 0; k < n; k++)
		if (t->row[k] == 0 || t->col[k] == 0)
			for (int j = 0; j < n; j++)
				if (t->row[j] > 0 && t->col[j] > 0 &&
					(t->row[k] == 0 || t->row[j] == t->row[k]) &&
					(t->col[k] == 0 || t->col[j] == t->col[k]))
					t->value[k] += t->value[j];
	for (int k = 0; k < n; k++)
		t->supp[k] = next_byte(r) < 64;
	*min_width = 1 + next_byte(r) % 8;
	/* now and then one index or count from the input */
	switch (next_byte(r) % 8)
	{
		case 0:
			t->row[next_byte(r) % n] = (int32) next_value(r, 4);
			break;
		case 1:
			t->col[next_byte(r) % n] = (int32) next_value(r, 4);
			break;
		case 2:
			t->value[next_byte(r) % n] = next_value(r, 8);
			break;
		default:
			break;
	}
}

static void
raw_arrays(Reader *r, Table *t, int64 *min_width)
{
	int			n = next_byte(r) % 40;

	t->ncells = n;
	t->row = palloc(sizeof(int32) * Max(n, 1));
	t->col = palloc(sizeof(int32) * Max(n, 1));
	t->value = palloc(sizeof(int64) * Max(n, 1));
	t->supp = palloc(sizeof(bool) * Max(n, 1));
	for (int k = 0; k < n; k++)
	{
		t->row[k] = (int32) next_value(r, 4);
		t->col[k] = (int32) next_value(r, 4);
		t->value[k] = next_value(r, 8);
		t->supp[k] = next_byte(r) & 1;
	}
	*min_width = 1 + next_byte(r) % 8;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Reader		r = {data, size, 0};
	Table		t;
	int64		min_width;
	jmp_buf		on_error;

	if (size > 4096)
		return 0;
	fuzz_on_error = &on_error;
	if (setjmp(on_error) == 0)
	{
		bool	   *primary;
		int64	   *lo,
				   *hi;
		bool	   *seen;
		bool		all = true;

		if (size > 0 && data[0] == 'T')
		{
			r.pos = 1;
			whole_table(&r, &t, &min_width);
		}
		else
			raw_arrays(&r, &t, &min_width);
		table_check(&t);

		/* accepted: a whole table, each cell once */
		if (t.nrows < 1 || t.ncols < 1 || t.ncells != (t.nrows + 1) * (t.ncols + 1))
			__builtin_trap();
		seen = calloc(t.ncells, 1);
		for (int k = 0; k < t.ncells; k++)
		{
			int			idx;

			if (t.row[k] < 0 || t.row[k] > t.nrows || t.col[k] < 0 || t.col[k] > t.ncols || t.value[k] < 0)
				__builtin_trap();
			idx = t.row[k] * (t.ncols + 1) + t.col[k];
			if (seen[idx])
				__builtin_trap();
			seen[idx] = 1;
		}
		free(seen);

		/* bounds contain the truth */
		lo = palloc(sizeof(int64) * t.ncells);
		hi = palloc(sizeof(int64) * t.ncells);
		bounds(&t, lo, hi);
		for (int k = 0; k < t.ncells; k++)
		{
			if (lo[k] < 0 || lo[k] > t.value[k] || (hi[k] >= 0 && hi[k] < t.value[k]) || (hi[k] < 0 && hi[k] != -1))
				__builtin_trap();
			if (!t.supp[k] && (lo[k] != t.value[k] || hi[k] != t.value[k]))
				__builtin_trap();
		}

		/* suppression keeps the primaries and leaves nothing narrow */
		primary = palloc(sizeof(bool) * t.ncells);
		memcpy(primary, t.supp, sizeof(bool) * t.ncells);
		table_suppress(&t, min_width);
		bounds(&t, lo, hi);
		for (int k = 0; k < t.ncells; k++)
		{
			if (primary[k] && !t.supp[k])
				__builtin_trap();
			all = all && t.supp[k];
		}
		if (!all)
			for (int k = 0; k < t.ncells; k++)
				if (t.supp[k] && hi[k] >= 0 && hi[k] - lo[k] < min_width)
					__builtin_trap();
	}
	fuzz_on_error = NULL;
	fuzz_free_all();
	return 0;
}
