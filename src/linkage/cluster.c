/*-------------------------------------------------------------------------
 *
 * cluster.c
 *		Clustering of accepted links into persons: union-find.
 *
 * Owns turning pairwise links into clusters.  link_components(query,
 * one_to_one) runs query (columns: two record ids, bigint), in the order the
 * query gives, and returns (rid, cluster) for every record that is in at
 * least one accepted link; a cluster is named by its smallest record id, so
 * the result does not depend on the order of the links.  With one_to_one, a
 * link is accepted only when neither record is in an accepted link already
 * (greedy, in the query's order: order it by weight descending), which is
 * the one-to-one linkage of two sources in which each person appears at
 * most once per side.
 *
 * With nhs_query (columns: record id and its NHS number's ten digits,
 * bigint), two clusters are never joined when each holds a confirmed NHS
 * number and the two differ by more than one digit or one adjacent
 * transposition (link_nhs_level() says "different").  A number is confirmed
 * in a cluster when a link joins two records that both carry it (valid): a
 * record carrying a household member's number on its own proves nothing,
 * and joins the person whose other details it shares; but once it is linked
 * to the member's records, the two people are kept apart.  The query's order
 * matters: order the links by weight descending and break ties by record
 * ids.  A third, boolean column of nhs_query, when true, confirms the
 * record's number from the start: the caller's judgement that no other
 * record carrying the number contradicts it (run.sql: "nhs_confirm":
 * "details"), so that twins with one record each, or whose records have not
 * linked to each other yet, are kept apart as well.  With a date and a text
 * column instead (record id, NHS digits, date of birth, sex), the judgement
 * is made here: a valid number is confirmed from the start when no two of
 * the query's records carrying it differ in date of birth or in sex (NULLs
 * ignored; pass the sex only where it is known), which is what run.sql's
 * grouping of every number did in SQL, at a fifth of the cost.
 *
 * Links with a third column (weight, double precision) and an optional
 * fourth (step, smallint) are ordered here, by weight descending, step, then
 * record ids, NULLs last, as "ORDER BY 3 DESC NULLS LAST, 4 NULLS LAST, 1, 2"
 * would order them: 24 bytes a link in memory and one sort (a radix sort
 * with a buffer of as many links where that fits too, else qsort()), where
 * PostgreSQL's sort of the same rows spilled to disk.  When the links would
 * not fit in maintenance_work_mem beside the arrays below, the query is run
 * again with that ORDER BY and read as it comes.

 * The result has one row per record in a link: its cluster, and whether a
 * link of it was refused (one to one, or an NHS number conflict), so that the
 * caller can delete refused links without looking at the others.
 *
 * Memory: 5 bytes per record id up to the largest one in a link (arrays
 * indexed by record id, 12 MB for 2.5 million records), 16 more with
 * nhs_query, independent of the number of links, which are read through a
 * cursor in batches.  Confirming numbers by their details takes 16 bytes
 * per distinct valid NHS number (a hash table, rounded up to a power of two,
 * freed before the links are read), at most maintenance_work_mem on its own;
 * links that carry weights are held for sorting (24 bytes each) within what
 * maintenance_work_mem leaves beside the arrays, and sorted by PostgreSQL
 * past that.  Needing more than maintenance_work_mem is an error
 * with a hint, never a larger allocation.  The result goes to a tuplestore, which spills to disk
 * past work_mem.
 *
 * src/linkage/cluster.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/plancache.h"
#include "utils/tuplestore.h"

#include "identifiers/identifiers.h"
#include "cluster.h"
#include "compare.h"

#define FETCH_BATCH		10000
#define NO_PARENT		(-1)

struct UnionFind
{
	int32	   *parent;			/* NO_PARENT: not in any link */
	int64	   *own;			/* a record's valid NHS number, 0 none; NULL
								 * without nhs_query */
	int64	   *key;			/* at a root: the cluster's confirmed NHS
								 * number, 0 none; NULL without nhs_query */
	bool	   *refused;		/* a link of this record was refused */
	int64		size;			/* allocated entries */
};

/*
 * the details of one valid NHS number's records: the first date of birth
 * and sex seen and whether another one was seen
 */
typedef struct NhsGroup
{
	int64		digits;			/* the key */
	DateADT		dob;
	int16		sex;			/* index into NhsDetails.sexes, -1 none yet */
	uint8		flags;			/* GROUP_HAS_DOB, GROUP_DISAGREE */
	char		status;			/* simplehash's */
} NhsGroup;						/* 16 bytes */

#define GROUP_HAS_DOB	0x01
#define GROUP_DISAGREE	0x02

/* a 64-bit key to 32 bits (murmurhash32 of both halves) */
static inline uint32
nhsgroup_hash_digits(int64 key)
{
	return murmurhash32((uint32) key ^ murmurhash32((uint32) ((uint64) key >> 32)));
}

#define SH_PREFIX		nhsgroup
#define SH_ELEMENT_TYPE NhsGroup
#define SH_KEY_TYPE		int64
#define SH_KEY			digits
#define SH_HASH_KEY(tb, key) nhsgroup_hash_digits(key)
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* confirming numbers by their records' details (the four-column nhs_query) */
typedef struct NhsDetails
{
	nhsgroup_hash *groups;
	text	  **sexes;			/* the distinct sex values seen (a handful) */
	int			nsexes;
	int			maxsexes;
} NhsDetails;

/* a link held for sorting: weight descending, step, record ids; NULLs last */
typedef struct SortedLink
{
	uint64		wkey;
	uint32		skey;
	int32		l;
	int32		r;
} SortedLink;

typedef struct LinkBuffer
{
	SortedLink *links;
	int64		n;
	int64		allocated;
	bool		overflow;		/* past the memory allowed: sort in SQL */
} LinkBuffer;

/* what each batch of a query's rows is applied to */
typedef struct BatchState
{
	UnionFind  *uf;
	bool		one_to_one;
	NhsDetails *details;		/* nhs_query with date and sex, else NULL */
	LinkBuffer *buffer;			/* links with weights, else NULL */
} BatchState;

static void
uf_grow(UnionFind *uf, int64 rid)
{
	int64		n = uf->size;
	int64		per_record;
	int64		limit;

	if (rid < 0 || rid >= PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("record id out of range for clustering"),
				 errdetail("Record ids in links must lie between 0 and %d.", PG_INT32_MAX - 1)));
	if (rid < n)
		return;
	per_record = sizeof(int32) + sizeof(bool) + (uf->own ? 2 * sizeof(int64) : 0);
	limit = (int64) maintenance_work_mem * 1024 / per_record;
	if (rid >= limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("clustering record ids up to %lld needs %lld kB, more than maintenance_work_mem (%d kB)",
						(long long) rid, (long long) ((rid + 1) * per_record / 1024), maintenance_work_mem),
				 errhint("Raise maintenance_work_mem for the run, e.g. SET maintenance_work_mem = '1GB'.")));
	while (n <= rid)
		n = Max(n * 2, 1024);
	n = Min(n, Min(limit, (int64) PG_INT32_MAX));
	uf->parent = repalloc_huge(uf->parent, n * sizeof(int32));
	uf->refused = repalloc_huge(uf->refused, n * sizeof(bool));
	if (uf->own)
	{
		uf->own = repalloc_huge(uf->own, n * sizeof(int64));
		uf->key = repalloc_huge(uf->key, n * sizeof(int64));
	}
	for (int64 i = uf->size; i < n; i++)
	{
		uf->parent[i] = NO_PARENT;
		uf->refused[i] = false;
		if (uf->own)
			uf->own[i] = uf->key[i] = 0;
	}
	uf->size = n;
}

static int32
uf_find(UnionFind *uf, int32 x)
{
	if (uf->parent[x] == NO_PARENT)
		uf->parent[x] = x;
	while (uf->parent[x] != x)
	{
		uf->parent[x] = uf->parent[uf->parent[x]];	/* path halving */
		x = uf->parent[x];
	}
	return x;
}

/*
 * union by smaller id: the root of a cluster is its smallest record id.
 * false (and nothing joined) when the clusters' confirmed NHS numbers
 * conflict.
 */
static bool
uf_union(UnionFind *uf, int32 a, int32 b)
{
	int32		ra = uf_find(uf, a);
	int32		rb = uf_find(uf, b);
	int32		root;
	int32		child;

	if (uf->own && uf->key[ra] != 0 && uf->key[rb] != 0 && uf->key[ra] != uf->key[rb] &&
		link_nhs_level(uf->key[ra], true, uf->key[rb], true) == NHS_DIFFERENT)
		return false;
	root = Min(ra, rb);
	child = Max(ra, rb);
	uf->parent[child] = root;
	if (uf->own)
	{
		if (uf->key[root] == 0)
			uf->key[root] = uf->key[child];
		/* two records carrying one number confirm it */
		if (uf->key[root] == 0 && uf->own[a] != 0 && uf->own[a] == uf->own[b])
			uf->key[root] = uf->own[a];
	}
	return true;
}

/* the bytes the union-find arrays take */
static int64
uf_bytes(UnionFind *uf)
{
	return uf->size * (int64) (sizeof(int32) + sizeof(bool) + (uf->own ? 2 * sizeof(int64) : 0));
}

/*
 * run a query through a cursor; call fn on each batch of rows, until it
 * returns false
 */
typedef bool (*BatchFn) (BatchState *st, SPITupleTable *tuptable, uint64 n);

static void
each_batch(const char *query, const char *what, BatchState *st,
		   MemoryContext per_query, BatchFn fn)
{
	SPIPlanPtr	plan;
	Portal		portal;

	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not prepare the %s query: %s", what, SPI_result_code_string(SPI_result))));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		MemoryContext oldcxt;
		bool		more;

		SPI_cursor_fetch(portal, true, FETCH_BATCH);
		if (SPI_processed == 0)
			break;
		if (SPI_tuptable->tupdesc->natts < 2 ||
			TupleDescAttr(SPI_tuptable->tupdesc, 0)->atttypid != INT8OID ||
			TupleDescAttr(SPI_tuptable->tupdesc, 1)->atttypid != INT8OID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("the %s query must return two bigint columns", what)));
		oldcxt = MemoryContextSwitchTo(per_query);
		more = fn(st, SPI_tuptable, SPI_processed);
		MemoryContextSwitchTo(oldcxt);
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
		if (!more)
			break;
	}
	SPI_cursor_close(portal);
}

/* row i's two int8 columns; false when either is NULL */
static bool
int8_pair(SPITupleTable *tuptable, uint64 i, int64 *a, int64 *b)
{
	bool		na,
				nb;

	*a = DatumGetInt64(SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 1, &na));
	*b = DatumGetInt64(SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 2, &nb));
	return !na && !nb;
}

/* the index of a sex value among those seen, added if new */
static int16
details_sex(NhsDetails *d, text *sex)
{
	int			len = VARSIZE_ANY_EXHDR(sex);

	for (int i = 0; i < d->nsexes; i++)
		if ((int) VARSIZE_ANY_EXHDR(d->sexes[i]) == len &&
			memcmp(VARDATA_ANY(d->sexes[i]), VARDATA_ANY(sex), len) == 0)
			return (int16) i;
	if (d->nsexes >= PG_INT16_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the NHS numbers query gives more than %d different sex values", PG_INT16_MAX),
				 errhint("Give the sex as a standardised code, and only where it is known.")));
	if (d->nsexes == d->maxsexes)
	{
		d->maxsexes *= 2;
		d->sexes = repalloc(d->sexes, d->maxsexes * sizeof(text *));
	}
	d->sexes[d->nsexes] = (text *) PG_DETOAST_DATUM_COPY(PointerGetDatum(sex));
	return (int16) d->nsexes++;
}

/* one record's date of birth and sex, into its number's group */
static void
details_add(BatchState *st, int64 digits, SPITupleTable *tuptable, uint64 i)
{
	NhsDetails *d = st->details;
	NhsGroup   *g;
	bool		found;
	bool		isnull;
	Datum		v;

	g = nhsgroup_insert(d->groups, digits, &found);
	if (!found)
	{
		g->flags = 0;
		g->sex = -1;
		/* the table on its own (freed before the links are read) */
		if ((int64) d->groups->size * (int64) sizeof(NhsGroup) > (int64) maintenance_work_mem * 1024)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("confirming NHS numbers by their details needs more than maintenance_work_mem (%d kB)",
							maintenance_work_mem),
					 errhint("Raise maintenance_work_mem for the run, e.g. SET maintenance_work_mem = '1GB'.")));
	}
	if (g->flags & GROUP_DISAGREE)
		return;
	v = SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 3, &isnull);
	if (!isnull)
	{
		if (!(g->flags & GROUP_HAS_DOB))
		{
			g->dob = DatumGetDateADT(v);
			g->flags |= GROUP_HAS_DOB;
		}
		else if (g->dob != DatumGetDateADT(v))
			g->flags |= GROUP_DISAGREE;
	}
	v = SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 4, &isnull);
	if (!isnull)
	{
		int16		sex = details_sex(d, DatumGetTextPP(v));

		if (g->sex < 0)
			g->sex = sex;
		else if (g->sex != sex)
			g->flags |= GROUP_DISAGREE;
	}
}

/*
 * (record id, NHS digits[, confirmed | , dob, sex]): a record's valid number
 * seeds its cluster's; confirmed (a third boolean column, true) makes it the
 * record's confirmed number from the start; a date of birth and a sex
 * instead are gathered by number, to confirm the numbers whose records
 * agree (details_confirm)
 */
static bool
nhs_batch(BatchState *st, SPITupleTable *tuptable, uint64 n)
{
	UnionFind  *uf = st->uf;
	bool		has_confirmed = tuptable->tupdesc->natts >= 3 && st->details == NULL;

	if (has_confirmed && TupleDescAttr(tuptable->tupdesc, 2)->atttypid != BOOLOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the third column of the NHS numbers query must be boolean")));
	if (st->details && (TupleDescAttr(tuptable->tupdesc, 2)->atttypid != DATEOID ||
						TupleDescAttr(tuptable->tupdesc, 3)->atttypid != TEXTOID))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the NHS numbers query's third column must be date and its fourth text")));
	for (uint64 i = 0; i < n; i++)
	{
		int64		rid,
					digits;
		bool		isnull;

		if (!int8_pair(tuptable, i, &rid, &digits) || !nhs_number_value_is_valid(digits))
			continue;
		uf_grow(uf, rid);
		uf->own[rid] = digits;
		if (st->details)
			details_add(st, digits, tuptable, i);
		else if (has_confirmed &&
				 DatumGetBool(SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 3, &isnull)) && !isnull)
			uf->key[rid] = digits;	/* read before any link: rid is its own root */
	}
	return true;
}

/* after the NHS numbers query: confirm each number its records agree on */
static void
details_confirm(UnionFind *uf, NhsDetails *d)
{
	for (int64 i = 0; i < uf->size; i++)
	{
		NhsGroup   *g;

		if (uf->own[i] == 0)
			continue;
		g = nhsgroup_lookup(d->groups, uf->own[i]);
		if (g != NULL && !(g->flags & GROUP_DISAGREE))
			uf->key[i] = uf->own[i];	/* before any link: i is its own root */
	}
}

/* one link, a and b valid record ids */
static inline void
apply_link(UnionFind *uf, int64 a, int64 b, bool one_to_one)
{
	if ((one_to_one && (uf->parent[a] != NO_PARENT || uf->parent[b] != NO_PARENT)) ||
		!uf_union(uf, (int32) a, (int32) b))
		uf->refused[a] = uf->refused[b] = true;
}

/* (record id, record id): one link each, in the order they come */
static bool
links_batch(BatchState *st, SPITupleTable *tuptable, uint64 n)
{
	for (uint64 i = 0; i < n; i++)
	{
		int64		a,
					b;

		if (!int8_pair(tuptable, i, &a, &b))
			continue;
		uf_grow(st->uf, Max(a, b));
		uf_grow(st->uf, Min(a, b));
		apply_link(st->uf, a, b, st->one_to_one);
	}
	return true;
}

/*
 * a weight's place in "weight DESC NULLS LAST" as an unsigned key, as
 * float8's comparison orders weights: NaN above every number, -0 equal to 0
 */
static uint64
weight_key(double w, bool isnull)
{
	uint64		bits;

	if (isnull)
		return PG_UINT64_MAX;
	if (isnan(w))
		return 0;
	if (w == 0)
		w = 0;					/* -0 */
	memcpy(&bits, &w, sizeof(bits));
	/* ascending order of the numbers as unsigned integers */
	bits = (bits & UINT64CONST(0x8000000000000000)) ? ~bits : bits | UINT64CONST(0x8000000000000000);
	/* descending; never 0 nor PG_UINT64_MAX, which only NaN bit patterns give */
	return ~bits;
}

static int
sorted_link_cmp(const void *x, const void *y)
{
	const SortedLink *a = (const SortedLink *) x;
	const SortedLink *b = (const SortedLink *) y;

	if (a->wkey != b->wkey)
		return a->wkey < b->wkey ? -1 : 1;
	if (a->skey != b->skey)
		return a->skey < b->skey ? -1 : 1;
	if (a->l != b->l)
		return a->l < b->l ? -1 : 1;
	if (a->r != b->r)
		return a->r < b->r ? -1 : 1;
	return 0;
}

/*
 * The 16 bits of a link's sort key at position d (0: the least significant
 * of r, ... 9: the most significant of wkey); the ids as unsigned numbers
 * in their signed order
 */
static inline uint32
link_digit(const SortedLink *k, int d)
{
	switch (d)
	{
		case 0:
			return ((uint32) k->r ^ 0x80000000) & 0xFFFF;
		case 1:
			return ((uint32) k->r ^ 0x80000000) >> 16;
		case 2:
			return ((uint32) k->l ^ 0x80000000) & 0xFFFF;
		case 3:
			return ((uint32) k->l ^ 0x80000000) >> 16;
		case 4:
			return k->skey & 0xFFFF;
		case 5:
			return k->skey >> 16;
		default:
			return (uint32) (k->wkey >> (16 * (d - 6))) & 0xFFFF;
	}
}

/*
 * The links in sorted_link_cmp()'s order by a least-significant-digit radix
 * sort, 16 bits a pass, a pass skipped where every link has the same digit
 * (the step when no link has one): at a million people its 3.6M links took
 * 0.57 s through qsort().  tmp holds as many links; the result is in links.
 */
static void
radix_sort_links(SortedLink *links, SortedLink *tmp, int64 n)
{
	int64	   *count = palloc(65536 * sizeof(int64));
	SortedLink *from = links;
	SortedLink *to = tmp;

	for (int d = 0; d < 10; d++)
	{
		int64		sum = 0;
		bool		one_bucket = false;

		memset(count, 0, 65536 * sizeof(int64));
		for (int64 i = 0; i < n; i++)
			count[link_digit(&from[i], d)]++;
		for (int b = 0; b < 65536; b++)
		{
			int64		c = count[b];

			if (c == n)
				one_bucket = true;
			count[b] = sum;
			sum += c;
		}
		if (one_bucket)
			continue;
		for (int64 i = 0; i < n; i++)
			to[count[link_digit(&from[i], d)]++] = from[i];
		{
			SortedLink *swap = from;

			from = to;
			to = swap;
		}
		CHECK_FOR_INTERRUPTS();
	}
	if (from != links)
		memcpy(links, from, n * sizeof(SortedLink));
	pfree(count);
}

/* (record id, record id, weight[, step]): held for sorting */
static bool
sort_batch(BatchState *st, SPITupleTable *tuptable, uint64 n)
{
	LinkBuffer *buf = st->buffer;
	TupleDesc	desc = tuptable->tupdesc;
	bool		has_step = desc->natts >= 4;

	if (TupleDescAttr(desc, 2)->atttypid != FLOAT8OID ||
		(has_step && TupleDescAttr(desc, 3)->atttypid != INT2OID))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the links query's third column must be double precision and its fourth smallint")));
	for (uint64 i = 0; i < n; i++)
	{
		int64		a,
					b;
		bool		wnull,
					snull = true;
		double		w;
		int16		step = 0;
		SortedLink *link;

		if (!int8_pair(tuptable, i, &a, &b))
			continue;
		uf_grow(st->uf, Max(a, b));
		uf_grow(st->uf, Min(a, b));
		w = DatumGetFloat8(SPI_getbinval(tuptable->vals[i], desc, 3, &wnull));
		if (has_step)
			step = DatumGetInt16(SPI_getbinval(tuptable->vals[i], desc, 4, &snull));
		if (buf->n == buf->allocated)
		{
			int64		more = Max(buf->allocated * 2, 65536);

			/* beside the union-find arrays, within maintenance_work_mem */
			if (more * (int64) sizeof(SortedLink) + uf_bytes(st->uf) > (int64) maintenance_work_mem * 1024)
				more = ((int64) maintenance_work_mem * 1024 - uf_bytes(st->uf)) / (int64) sizeof(SortedLink);
			if (more <= buf->n)
			{
				buf->overflow = true;
				return false;
			}
			buf->links = buf->links ? repalloc_huge(buf->links, more * sizeof(SortedLink))
				: palloc_extended(more * sizeof(SortedLink), MCXT_ALLOC_HUGE);
			buf->allocated = more;
		}
		link = &buf->links[buf->n++];
		link->wkey = weight_key(w, wnull);
		link->skey = snull ? PG_UINT32_MAX : (uint32) ((int32) step - PG_INT16_MIN);
		link->l = (int32) a;
		link->r = (int32) b;
	}
	return true;
}

/* the links of query, in weight order, applied to the union-find */
static void
sorted_links(const char *query, int natts, BatchState *st, MemoryContext per_query)
{
	LinkBuffer	buf = {NULL, 0, 0, false};

	st->buffer = &buf;
	each_batch(query, "links", st, per_query, sort_batch);
	st->buffer = NULL;
	if (buf.overflow)
	{
		/* too many to hold: PostgreSQL sorts them (spilling to disk) */
		char	   *ordered;

		if (buf.links)
			pfree(buf.links);
		ordered = psprintf("SELECT * FROM (%s) q ORDER BY 3 DESC NULLS LAST%s, 1, 2",
						   query, natts >= 4 ? ", 4 NULLS LAST" : "");
		each_batch(ordered, "links", st, per_query, links_batch);
		return;
	}
	if (buf.n > 1)
	{
		/* a radix sort where its buffer fits beside them, else qsort() */
		if ((int64) (buf.allocated + buf.n) * (int64) sizeof(SortedLink) + uf_bytes(st->uf) <= (int64) maintenance_work_mem * 1024)
		{
			SortedLink *tmp = palloc_extended(buf.n * sizeof(SortedLink), MCXT_ALLOC_HUGE);

			radix_sort_links(buf.links, tmp, buf.n);
			pfree(tmp);
		}
		else
			qsort(buf.links, buf.n, sizeof(SortedLink), sorted_link_cmp);
	}
	for (int64 i = 0; i < buf.n; i++)
	{
		apply_link(st->uf, buf.links[i].l, buf.links[i].r, st->one_to_one);
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	if (buf.links)
		pfree(buf.links);
}

/* the number of columns a query returns (without running it) */
static int
query_natts(const char *query, const char *what)
{
	SPIPlanPtr	plan = SPI_prepare(query, 0, NULL);
	List	   *plans;
	int			natts = 0;

	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not prepare the %s query: %s", what, SPI_result_code_string(SPI_result))));
	plans = SPI_plan_get_plan_sources(plan);
	if (list_length(plans) == 1)
	{
		CachedPlanSource *ps = (CachedPlanSource *) linitial(plans);

		if (ps->resultDesc)
			natts = ps->resultDesc->natts;
	}
	SPI_freeplan(plan);
	return natts;
}

/*
 * The clusters of the links of query (see the head of this file), in
 * memory allocated in cxt: free them with link_clusters_free()
 */
LinkClusters *
link_clusters_build(const char *query, bool one_to_one, const char *nhs_query, MemoryContext cxt)
{
	UnionFind  *uf;
	MemoryContext oldcxt;
	BatchState	st;
	int			natts;

	oldcxt = MemoryContextSwitchTo(cxt);
	uf = palloc(sizeof(UnionFind));
	uf->size = 1024;
	uf->parent = palloc_extended(uf->size * sizeof(int32), MCXT_ALLOC_HUGE);
	uf->refused = palloc_extended(uf->size * sizeof(bool), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	uf->own = nhs_query ? palloc_extended(uf->size * sizeof(int64), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO) : NULL;
	uf->key = nhs_query ? palloc_extended(uf->size * sizeof(int64), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO) : NULL;
	for (int64 i = 0; i < uf->size; i++)
		uf->parent[i] = NO_PARENT;
	MemoryContextSwitchTo(oldcxt);

	st.uf = uf;
	st.one_to_one = one_to_one;
	st.details = NULL;
	st.buffer = NULL;
	SPI_connect();
	if (nhs_query)
	{
		NhsDetails	details;

		/* with a date of birth and a sex: numbers confirmed by their details */
		if (query_natts(nhs_query, "NHS numbers") >= 4)
		{
			oldcxt = MemoryContextSwitchTo(cxt);
			details.groups = nhsgroup_create(cxt, 1024, NULL);
			details.maxsexes = 8;
			details.nsexes = 0;
			details.sexes = palloc(details.maxsexes * sizeof(text *));
			MemoryContextSwitchTo(oldcxt);
			st.details = &details;
		}
		each_batch(nhs_query, "NHS numbers", &st, cxt, nhs_batch);
		if (st.details)
		{
			details_confirm(uf, &details);
			nhsgroup_destroy(details.groups);
			st.details = NULL;
		}
	}
	natts = query_natts(query, "links");
	if (natts >= 3)
		sorted_links(query, natts, &st, cxt);
	else
		each_batch(query, "links", &st, cxt, links_batch);
	SPI_finish();
	/* the NHS numbers are needed no more */
	if (uf->own)
	{
		pfree(uf->own);
		pfree(uf->key);
		uf->own = uf->key = NULL;
	}
	return uf;
}

/*
 * A record's cluster and whether a link of it was refused; false (and
 * nothing set) when the record is in no link, accepted or refused
 */
bool
link_cluster_of(LinkClusters *uf, int64 rid, int64 *cluster, bool *refused)
{
	if (rid < 0 || rid >= uf->size || (uf->parent[rid] == NO_PARENT && !uf->refused[rid]))
		return false;
	*cluster = uf->parent[rid] == NO_PARENT ? rid : (int64) uf_find(uf, (int32) rid);
	*refused = uf->refused[rid];
	return true;
}

void
link_clusters_free(LinkClusters *uf)
{
	pfree(uf->parent);
	pfree(uf->refused);
	pfree(uf);
}

PG_FUNCTION_INFO_V1(link_components);
Datum
link_components(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	UnionFind  *uf;
	Tuplestorestate *store;
	TupleDesc	tupdesc;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return (Datum) 0;
	store = rsinfo->setResult;
	tupdesc = rsinfo->setDesc;
	uf = link_clusters_build(text_to_cstring(PG_GETARG_TEXT_PP(0)), PG_GETARG_BOOL(1),
							 PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)),
							 rsinfo->econtext->ecxt_per_query_memory);
	for (int64 i = 0; i < uf->size; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		int64		cluster;
		bool		refused;

		/* every record in a link, accepted or refused */
		if (!link_cluster_of(uf, i, &cluster, &refused))
			continue;
		values[0] = Int64GetDatum(i);
		values[1] = Int64GetDatum(cluster);
		values[2] = BoolGetDatum(refused);
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	link_clusters_free(uf);
	return (Datum) 0;
}
