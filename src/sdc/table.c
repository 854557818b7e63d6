/*-------------------------------------------------------------------------
 *
 * table.c
 *		Tables with margins: what an attacker can derive about suppressed
 *		cells from what is published, and complementary (secondary)
 *		suppression so that no suppressed cell can be derived.
 *
 * A table is R rows by C columns of non-negative counts with a total per
 * row, a total per column and a grand total; a one-dimensional table is
 * R rows by one column.  Cells are given as (row, col, value, suppressed)
 * with row 0 the column totals and col 0 the row totals.
 *
 * Method.  The table's equations (each row sums to its total, each column
 * to its total, the totals to the grand total) are the flow conservation
 * equations of a network: a node per row, a node per column, and two total
 * nodes R* and C*; an interior cell (i, j) is an arc column j -> row i, a row
 * total an arc row i -> R*, a column total an arc C* -> column j, the grand
 * total the arc R* -> C*.  Published cells are fixed flows; suppressed
 * cells are the unknowns, each at least 0.  The linear-programming bounds
 * of an unknown are therefore network bounds: from the true table (a
 * feasible flow f), the most an unknown e = (u -> v) can be is f(e) plus
 * the largest flow from v to u in the residual network without e, and the
 * least is f(e) less the largest flow from u to v (at most f(e)); both are
 * maximum flows (Dinic's algorithm), exact for this LP.  An attacker who
 * knows only that counts are non-negative integers learns exactly these
 * intervals (network LPs have integral optima).  Published values are
 * taken as exact; rounding them only widens what an attacker can know.
 *
 * Secondary suppression: while some suppressed cell's interval is narrower
 * than the protection width, suppress one more published cell in that
 * cell's row or column (or the table's total line): the one that also
 * fixes the most other lines with a single suppression, then the smallest.
 * Before auditing, every line (row or column, margins included) holding
 * exactly one suppressed cell gets a second, chosen the same way, since a
 * lone suppressed cell in a line is its total less the rest.
 *
 * src/sdc/table.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#define INF_FLOW	(PG_INT64_MAX / 4)

typedef struct Arc
{
	int			to;
	int64		cap;
	int			rev;			/* index of the reverse arc in to's list */
	int			cell;			/* the cell this arc (or its reverse) stands for */
} Arc;

typedef struct Graph
{
	int			n;
	int		   *deg;
	int		   *cap_arcs;
	Arc		  **adj;
	int		   *level;
	int		   *iter;
	int		   *queue;
} Graph;

typedef struct Table
{
	int			ncells;
	int			nrows;			/* R (rows 1..R) */
	int			ncols;			/* C (cols 1..C) */
	int32	   *row;
	int32	   *col;
	int64	   *value;
	bool	   *supp;
} Table;

/*
 * Sizes.  Every count that sizes an allocation comes from the arguments: the
 * number of cells (the arrays' length, at most MaxAllocSize / sizeof(int64)
 * since the arrays themselves fit in memory), and R and C (the largest row
 * and column index given).  table_check() accepts R and C only when
 * (R + 1) * (C + 1), computed with overflow checks, is the number of
 * cells, so every allocation below is at most a few times the arrays' own
 * size and every index row * (C + 1) + col is below the number of cells.
 */
static void *
palloc_array_checked(Size elem, Size n)
{
	Size		bytes = mul_size(elem, Max(n, 1));

	if (!AllocSizeIsValid(bytes))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the table is too large"),
				 errhint("A table has at most %zu cells.", (Size) MaxAllocSize / sizeof(int64))));
	return palloc(bytes);
}

static void *
palloc0_array_checked(Size elem, Size n)
{
	void	   *p = palloc_array_checked(elem, n);

	memset(p, 0, mul_size(elem, Max(n, 1)));
	return p;
}

static Graph *
graph_new(int n)
{
	Graph	   *g = palloc0(sizeof(Graph));

	g->n = n;
	g->deg = palloc0_array_checked(sizeof(int), n);
	g->cap_arcs = palloc0_array_checked(sizeof(int), n);
	g->adj = palloc0_array_checked(sizeof(Arc *), n);
	g->level = palloc_array_checked(sizeof(int), n);
	g->iter = palloc_array_checked(sizeof(int), n);
	g->queue = palloc_array_checked(sizeof(int), n);
	return g;
}

static void
push_arc(Graph *g, int u, Arc a)
{
	if (g->deg[u] == g->cap_arcs[u])
	{
		/* a node has at most two arcs per cell: no overflow below 2^30 cells */
		g->cap_arcs[u] = Max(4, g->cap_arcs[u] * 2);
		g->adj[u] = g->adj[u] ? repalloc(g->adj[u], mul_size(sizeof(Arc), g->cap_arcs[u]))
			: palloc_array_checked(sizeof(Arc), g->cap_arcs[u]);
	}
	g->adj[u][g->deg[u]++] = a;
}

static void
add_arc(Graph *g, int u, int v, int64 cap, int64 back, int cell)
{
	Arc			a = {v, cap, g->deg[v] + (u == v ? 1 : 0), cell};
	Arc			b = {u, back, g->deg[u], cell};

	push_arc(g, u, a);
	push_arc(g, v, b);
}

static bool
bfs(Graph *g, int s, int t, int skip)
{
	int			head = 0,
				tail = 0;

	for (int i = 0; i < g->n; i++)
		g->level[i] = -1;
	g->level[s] = 0;
	g->queue[tail++] = s;
	while (head < tail)
	{
		int			u = g->queue[head++];

		for (int k = 0; k < g->deg[u]; k++)
		{
			Arc		   *a = &g->adj[u][k];

			if (a->cap > 0 && a->cell != skip && g->level[a->to] < 0)
			{
				g->level[a->to] = g->level[u] + 1;
				g->queue[tail++] = a->to;
			}
		}
	}
	return g->level[t] >= 0;
}

static int64
dfs(Graph *g, int u, int t, int64 f, int skip)
{
	/* a path alternates rows and columns: as deep as 2 min(R, C) + 4 */
	check_stack_depth();
	if (u == t)
		return f;
	for (; g->iter[u] < g->deg[u]; g->iter[u]++)
	{
		Arc		   *a = &g->adj[u][g->iter[u]];

		if (a->cap > 0 && a->cell != skip && g->level[a->to] == g->level[u] + 1)
		{
			int64		d = dfs(g, a->to, t, Min(f, a->cap), skip);

			if (d > 0)
			{
				a->cap -= d;
				g->adj[a->to][a->rev].cap += d;
				return d;
			}
		}
	}
	return 0;
}

/* the largest flow from s to t, up to limit, not using the arcs of cell skip */
static int64
max_flow(Graph *g, int s, int t, int64 limit, int skip)
{
	int64		total = 0;

	if (s == t)
		return limit;
	while (total < limit && bfs(g, s, t, skip))
	{
		int64		f;

		for (int i = 0; i < g->n; i++)
			g->iter[i] = 0;
		while (total < limit && (f = dfs(g, s, t, limit - total, skip)) > 0)
			total += f;
		CHECK_FOR_INTERRUPTS();
	}
	return total;
}

/* node numbers: rows 0..R-1, columns R..R+C-1, R* = R+C, C* = R+C+1 */
static void
cell_arc(const Table *t, int k, int *u, int *v)
{
	int			r = t->row[k],
				c = t->col[k];
	int			rstar = t->nrows + t->ncols,
				cstar = rstar + 1;

	if (r > 0 && c > 0)
	{
		*u = t->nrows + c - 1;
		*v = r - 1;
	}
	else if (r > 0)
	{
		*u = r - 1;
		*v = rstar;
	}
	else if (c > 0)
	{
		*u = cstar;
		*v = t->nrows + c - 1;
	}
	else
	{
		*u = rstar;
		*v = cstar;
	}
}

/* the residual network of the true table over the suppressed cells */
static Graph *
residual(const Table *t)
{
	Graph	   *g = graph_new(t->nrows + t->ncols + 2);

	for (int k = 0; k < t->ncells; k++)
	{
		int			u,
					v;

		if (!t->supp[k])
			continue;
		cell_arc(t, k, &u, &v);
		add_arc(g, u, v, INF_FLOW, t->value[k], k);
	}
	return g;
}

static void
save_caps(const Graph *g, int64 **saved)
{
	for (int u = 0; u < g->n; u++)
	{
		saved[u] = palloc_array_checked(sizeof(int64), g->deg[u]);
		for (int k = 0; k < g->deg[u]; k++)
			saved[u][k] = g->adj[u][k].cap;
	}
}

static void
restore_caps(Graph *g, int64 **saved)
{
	for (int u = 0; u < g->n; u++)
		for (int k = 0; k < g->deg[u]; k++)
			g->adj[u][k].cap = saved[u][k];
}

/* bounds of every suppressed cell (published cells: their value) */
static void
bounds(const Table *t, int64 *lo, int64 *hi)
{
	Graph	   *g = residual(t);
	int64	  **saved = palloc_array_checked(sizeof(int64 *), g->n);

	save_caps(g, saved);
	for (int k = 0; k < t->ncells; k++)
	{
		int			u,
					v;
		int64		up,
					down;

		lo[k] = hi[k] = t->value[k];
		if (!t->supp[k])
			continue;
		cell_arc(t, k, &u, &v);
		restore_caps(g, saved);
		up = max_flow(g, v, u, INF_FLOW, k);
		restore_caps(g, saved);
		down = max_flow(g, u, v, t->value[k], k);
		hi[k] = up >= INF_FLOW ? -1 : t->value[k] + up;	/* -1: unbounded */
		lo[k] = t->value[k] - down;
	}
	for (int u = 0; u < g->n; u++)
	{
		pfree(saved[u]);
		if (g->adj[u])
			pfree(g->adj[u]);
	}
	pfree(saved);
	/* table_suppress() calls this once per cell it adds: free it all */
	pfree(g->deg);
	pfree(g->cap_arcs);
	pfree(g->adj);
	pfree(g->level);
	pfree(g->iter);
	pfree(g->queue);
	pfree(g);
}

static void not_a_table(void) pg_attribute_noreturn();

static void
not_a_table(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("not a whole table with margins"),
			 errhint("Give each cell (row 0..R, column 0..C, row 0 and column 0 the totals) once, with a non-negative count.")));
}

/*
 * table_check: is t (ncells, row, col, value, supp filled in) a whole
 * table with margins?  Sets nrows and ncols.  Each index is checked before
 * it is used and every size with overflow checks, so that no argument can
 * make it (or bounds() and table_suppress() after it) read or write out of
 * bounds.
 */
static void
table_check(Table *t)
{
	bool	   *seen;
	int32		cells;
	int64	   *rs,
			   *cs,
			   *rt,
			   *ct;

	t->nrows = t->ncols = 0;
	for (int k = 0; k < t->ncells; k++)
	{
		if (t->row[k] < 0 || t->col[k] < 0 || t->value[k] < 0 || t->value[k] >= INF_FLOW / 4)
			not_a_table();
		t->nrows = Max(t->nrows, t->row[k]);
		t->ncols = Max(t->ncols, t->col[k]);
	}
	/* a whole table: each (row, col) once, rows 0..R, cols 0..C */
	if (t->nrows < 1 || t->ncols < 1 ||
		t->nrows == PG_INT32_MAX || t->ncols == PG_INT32_MAX ||
		pg_mul_s32_overflow(t->nrows + 1, t->ncols + 1, &cells) ||
		cells != t->ncells)
		not_a_table();
	seen = palloc0_array_checked(sizeof(bool), t->ncells);
	for (int k = 0; k < t->ncells; k++)
	{
		/* row <= R and col <= C: idx < (R + 1) * (C + 1), no overflow */
		int			idx = t->row[k] * (t->ncols + 1) + t->col[k];

		if (seen[idx])
			not_a_table();
		seen[idx] = true;
	}
	pfree(seen);
	/* and additive: every line sums to its total */
	rs = palloc0_array_checked(sizeof(int64), (Size) t->nrows + 1);
	cs = palloc0_array_checked(sizeof(int64), (Size) t->ncols + 1);
	rt = palloc0_array_checked(sizeof(int64), (Size) t->nrows + 1);
	ct = palloc0_array_checked(sizeof(int64), (Size) t->ncols + 1);
	for (int k = 0; k < t->ncells; k++)
	{
		/* a sum past the largest count cannot equal its total */
		if (t->col[k] > 0)
		{
			if (pg_add_s64_overflow(rs[t->row[k]], t->value[k], &rs[t->row[k]]))
				rs[t->row[k]] = PG_INT64_MAX;
		}
		else
			rt[t->row[k]] = t->value[k];
		if (t->row[k] > 0)
		{
			if (pg_add_s64_overflow(cs[t->col[k]], t->value[k], &cs[t->col[k]]))
				cs[t->col[k]] = PG_INT64_MAX;
		}
		else
			ct[t->col[k]] = t->value[k];
	}
	for (int i = 0; i <= t->nrows; i++)
		if (rs[i] != rt[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("row %d of the table does not add up to its total", i),
					 errhint("Margins must be the sums of their cells (counts of rows, or of people each in one cell).")));
	for (int j = 0; j <= t->ncols; j++)
		if (cs[j] != ct[j])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("column %d of the table does not add up to its total", j),
					 errhint("Margins must be the sums of their cells (counts of rows, or of people each in one cell).")));
	pfree(rs);
	pfree(cs);
	pfree(rt);
	pfree(ct);
}

/* the table of the four arrays (arguments 0 to 3), checked */
static void
table_from_args(FunctionCallInfo fcinfo, Table *t)
{
	ArrayType  *ar = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *ac = PG_GETARG_ARRAYTYPE_P(1);
	ArrayType  *av = PG_GETARG_ARRAYTYPE_P(2);
	ArrayType  *as = PG_GETARG_ARRAYTYPE_P(3);
	Datum	   *d;
	bool	   *nulls;
	int			n;

	deconstruct_array(ar, INT4OID, 4, true, TYPALIGN_INT, &d, &nulls, &n);
	t->ncells = n;
	t->row = palloc_array_checked(sizeof(int32), n);
	t->col = palloc_array_checked(sizeof(int32), n);
	t->value = palloc_array_checked(sizeof(int64), n);
	t->supp = palloc_array_checked(sizeof(bool), n);
	for (int k = 0; k < n; k++)
	{
		if (nulls[k])
			not_a_table();
		t->row[k] = DatumGetInt32(d[k]);
	}
	deconstruct_array(ac, INT4OID, 4, true, TYPALIGN_INT, &d, &nulls, &n);
	if (n != t->ncells)
		not_a_table();
	for (int k = 0; k < n; k++)
	{
		if (nulls[k])
			not_a_table();
		t->col[k] = DatumGetInt32(d[k]);
	}
	deconstruct_array(av, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &d, &nulls, &n);
	if (n != t->ncells)
		not_a_table();
	for (int k = 0; k < n; k++)
	{
		if (nulls[k])
			not_a_table();
		t->value[k] = DatumGetInt64(d[k]);
	}
	deconstruct_array(as, BOOLOID, 1, true, TYPALIGN_CHAR, &d, &nulls, &n);
	if (n != t->ncells)
		not_a_table();
	for (int k = 0; k < n; k++)
		t->supp[k] = !nulls[k] && DatumGetBool(d[k]);
	table_check(t);
}

/*
 * sdc_table_bounds(row int[], col int[], value bigint[], suppressed bool[])
 *		returns table (cell int, lower bigint, upper bigint)
 * cell is the 1-based position in the arrays; upper NULL when unbounded.
 */
PG_FUNCTION_INFO_V1(sdc_table_bounds);
Datum
sdc_table_bounds(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Table		t;
	int64	   *lo,
			   *hi;

	InitMaterializedSRF(fcinfo, 0);
	table_from_args(fcinfo, &t);
	lo = palloc_array_checked(sizeof(int64), t.ncells);
	hi = palloc_array_checked(sizeof(int64), t.ncells);
	bounds(&t, lo, hi);
	for (int k = 0; k < t.ncells; k++)
	{
		Datum		values[3] = {Int32GetDatum(k + 1), Int64GetDatum(lo[k]), Int64GetDatum(hi[k])};
		bool		nulls[3] = {false, false, hi[k] < 0};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* how many lines (row k's, column k's) hold exactly one suppressed cell */
static int
lone_lines(const Table *t, const int *rowsupp, const int *colsupp, int k)
{
	return (rowsupp[t->row[k]] == 1 ? 1 : 0) + (colsupp[t->col[k]] == 1 ? 1 : 0);
}

/* the published cell of a line (row r, or column c) to suppress next */
static int
pick(const Table *t, const int *rowsupp, const int *colsupp, int r, int c)
{
	int			best = -1;

	for (int k = 0; k < t->ncells; k++)
	{
		if (t->supp[k] || (r >= 0 && t->row[k] != r) || (c >= 0 && t->col[k] != c))
			continue;
		if (best < 0 ||
			lone_lines(t, rowsupp, colsupp, k) > lone_lines(t, rowsupp, colsupp, best) ||
			(lone_lines(t, rowsupp, colsupp, k) == lone_lines(t, rowsupp, colsupp, best) &&
			 ((t->value[k] > 0) > (t->value[best] > 0) ||
			  ((t->value[k] > 0) == (t->value[best] > 0) && t->value[k] < t->value[best]))))
			best = k;
	}
	return best;
}

static void
count_lines(const Table *t, int *rowsupp, int *colsupp)
{
	memset(rowsupp, 0, sizeof(int) * (t->nrows + 1));
	memset(colsupp, 0, sizeof(int) * (t->ncols + 1));
	for (int k = 0; k < t->ncells; k++)
		if (t->supp[k])
		{
			rowsupp[t->row[k]]++;
			colsupp[t->col[k]]++;
		}
}

/*
 * table_suppress: suppress more cells of the checked table t (supp: the
 * primary suppressions, on return all of them) until no suppressed cell's
 * interval is narrower than min_width (at least 1).
 */
static void
table_suppress(Table *t, int64 min_width)
{
	int		   *rowsupp = palloc_array_checked(sizeof(int), (Size) t->nrows + 1);
	int		   *colsupp = palloc_array_checked(sizeof(int), (Size) t->ncols + 1);
	int64	   *lo = palloc_array_checked(sizeof(int64), t->ncells);
	int64	   *hi = palloc_array_checked(sizeof(int64), t->ncells);

	Assert(min_width >= 1);
	for (;;)
	{
		bool		changed = false;
		int			narrow = -1;

		/* each turn suppresses one more cell or ends: at most ncells turns */
		CHECK_FOR_INTERRUPTS();
		/* lone suppressed cells in a line first: cheap and always needed */
		count_lines(t, rowsupp, colsupp);
		for (int k = 0; k < t->ncells && !changed; k++)
		{
			int			add = -1;

			if (!t->supp[k])
				continue;
			if (rowsupp[t->row[k]] == 1)
				add = pick(t, rowsupp, colsupp, t->row[k], -1);
			else if (colsupp[t->col[k]] == 1)
				add = pick(t, rowsupp, colsupp, -1, t->col[k]);
			if (add >= 0)
			{
				t->supp[add] = true;
				changed = true;
			}
		}
		if (changed)
			continue;
		/* then whatever the bounds still give away */
		bounds(t, lo, hi);
		for (int k = 0; k < t->ncells && narrow < 0; k++)
			if (t->supp[k] && hi[k] >= 0 && hi[k] - lo[k] < min_width)
				narrow = k;
		if (narrow < 0)
			break;
		{
			int			add = pick(t, rowsupp, colsupp, t->row[narrow], -1);

			if (add < 0)
				add = pick(t, rowsupp, colsupp, -1, t->col[narrow]);
			if (add < 0)
				add = pick(t, rowsupp, colsupp, -1, -1);
			if (add < 0)
				break;			/* everything suppressed */
			t->supp[add] = true;
		}
	}
	pfree(rowsupp);
	pfree(colsupp);
	pfree(lo);
	pfree(hi);
}

/*
 * sdc_table_suppress(row int[], col int[], value bigint[], primary bool[],
 *					  min_width bigint) returns bool[]
 * the cells to suppress (primary and secondary) so that no suppressed
 * cell's interval is narrower than min_width (1: not derived exactly).
 */
PG_FUNCTION_INFO_V1(sdc_table_suppress);
Datum
sdc_table_suppress(PG_FUNCTION_ARGS)
{
	Table		t;
	int64		min_width = PG_GETARG_INT64(4);
	Datum	   *out;

	table_from_args(fcinfo, &t);
	if (min_width < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the protection width must be at least 1")));
	table_suppress(&t, min_width);
	out = palloc_array_checked(sizeof(Datum), t.ncells);
	for (int k = 0; k < t.ncells; k++)
		out[k] = BoolGetDatum(t.supp[k]);
	PG_RETURN_ARRAYTYPE_P(construct_array(out, t.ncells, BOOLOID, 1, true, TYPALIGN_CHAR));
}
