/*-------------------------------------------------------------------------
 *
 * block.c
 *		Blocking and comparing in one pass over the records held in memory:
 *		the candidate pairs of a linkage run with their comparison levels,
 *		pattern and term-frequency adjustment.
 *
 * Owns what the run's SQL otherwise does with one self-join per blocking
 * rule (run.sql, _link_pairs_sql()): every pair of records equal on all the
 * columns of a rule (none NULL), once, under the first rule it meets, and
 * only pairs the link type allows (l.rid < r.rid; across or within
 * sources; with a set of new records, pairs with at least one of them).
 * A hash join walks every ordered pair of records with the same key and
 * filters most away (the pairs an earlier rule produced, the pair in the
 * wrong order); here each rule's keys are hashed and sorted once, each group
 * of equal keys is numbered, and a pair is dropped when an earlier rule gave
 * both records the same group number, with no expression evaluated.
 *
 * The comparison expressions are the model's own, parsed and planned by
 * PostgreSQL against the record relation as "l" and "r" and evaluated by
 * the executor on the two records in memory, as the join would evaluate
 * them: any comparison a model may hold (checked before by
 * _link_compare_sql()), with the caller's rights.  The pattern and the
 * term-frequency adjustment are computed as the SQL computes them, in the
 * same order of float8 operations, so the pairs are the same rows either
 * way (caredata.link_compare_engine = off runs the SQL; the linkage_engine
 * suite compares the two).
 *
 * Memory: each record's columns the comparisons and the rules read (the
 * others are NULL), about 100 bytes for the default model, plus 24 bytes a
 * record and 4 a record for each rule: at most maintenance_work_mem, past
 * which this is an error with a hint (run.sql estimates first and uses the
 * SQL above that).  The pairs go to a tuplestore, which spills to disk past
 * work_mem.
 *
 * src/linkage/block.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "keys.h"
#include "temp_table.h"

#define ARENA_BLOCK		(8 * 1024 * 1024)
#define PENDING_PAIRS	32
#define FETCH_BATCH		10000
#define INSERT_BATCH	1000
#define PATTERN_HIST_MAX	(1 << 22)

/* which pairs a link type compares, besides l.rid < r.rid */
typedef enum PairKind
{
	PAIRS_ALL,
	PAIRS_ACROSS,				/* link_only: different sources */
	PAIRS_WITHIN				/* dedupe_only: the same source */
} PairKind;

/* one blocking rule: equality on every one of its columns */
typedef struct Rule
{
	int			ncols;
	AttrNumber *attno;
	FmgrInfo   *hash;			/* extended (64-bit) hash of the column's type */
	FmgrInfo   *eq;				/* its default equality */
	Oid		   *coll;
	int16	   *typlen;
	bool		bytewise;		/* every column's equality is byte equality */
} Rule;

/*
 * A record's key under a rule, for sorting: its hash and, when every column
 * of the rule compares bytewise (integers, dates, text in a deterministic
 * collation), the key itself when it fits here, so that equal keys are
 * told from a shared hash without going back to the records.
 */
#define KEY_INLINE	18
typedef struct HashEntry
{
	uint64		hash;
	uint32		rec;
	uint8		klen;			/* bytes in key, when inline */
	bool		inline_key;
	char		key[KEY_INLINE];
} HashEntry;

/*
 * What blocking reads of a record, packed in the order read, with its group
 * under each rule after it (uint32 gid[nrules]: 0 if a key column is NULL), so
 * that testing a pair against the earlier rules reads one cache line a
 * record.
 */
typedef struct RecHead
{
	MinimalTuple tup;
	int64		rid;
	int32		src;
	bool		isnew;
} RecHead;

#define REC(e, i)	((RecHead *) ((e)->packed + (Size) (i) * (e)->rec_stride))
#define GID(e, i)	((uint32 *) ((char *) REC(e, i) + sizeof(RecHead)))

/* how many pairs had each pattern (the into variant's by-product) */
typedef struct PatternHist
{
	int64	   *counts;			/* by pattern; NULL: too many patterns */
	int64		size;
	int64		null_count;		/* pairs whose pattern is NULL */
	bool		outside;		/* a pattern outside [0, size): a comparison
								 * gave a level its labels do not cover */
} PatternHist;

typedef struct Engine
{
	/* the records, as read */
	int			nrec;
	int			maxrec;
	bool		only_new;		/* pairs with a new record only */
	TupleDesc	desc;
	AttrNumber	rid_att;
	AttrNumber	src_att;

	/* where their tuples live */
	char	   *arena;
	Size		arena_free;
	Size		mem_used;
	Size		mem_limit;

	int			nrules;
	Rule	   *rules;
	char	   *packed;			/* RecHead and gids, in the order read */
	Size		rec_stride;
	PairKind	kind;

	/* comparisons */
	int			ncmp;
	ExprState **level;
	ExprState **tf;				/* NULL where the comparison has none */
	int		   *nlevels;
	double	   *u_top;
	int64	   *stride;
	double		log2e;
	ExprContext *econtext;
	TupleTableSlot *slot_l;
	TupleTableSlot *slot_r;

	/* the result: a tuplestore, or a temporary table written directly */
	Tuplestorestate *store;
	TupleDesc	outdesc;
	Relation	into;
	LinkWriter	writer;
	Datum	   *values;
	bool	   *nulls;
	int64		npairs;
	PatternHist *hist;

	/* a rule's sort entries, the sort's buffer and a group's members, for
	 * every rule in turn (allocated once: fresh memory each rule cost page
	 * faults on 200 MB a rule at 1M people) */
	HashEntry  *ent;
	HashEntry  *ent_tmp;
	uint32	   *members;

	/* pairs waiting to be compared, their records' tuples loading */
	int			npending;
	uint32		pending[PENDING_PAIRS][2];
} Engine;

static void
engine_charge(Engine *e, Size bytes)
{
	e->mem_used += bytes;
	if (e->mem_used > e->mem_limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("comparing in memory needs more than maintenance_work_mem (%d kB)", maintenance_work_mem),
				 errhint("Raise maintenance_work_mem for the run, or SET caredata.link_compare_engine = off to compare with SQL joins.")));
}

/* a copy of a minimal tuple in the arena */
static MinimalTuple
engine_keep(Engine *e, HeapTuple htup)
{
	Size		len = htup->t_len - MINIMAL_TUPLE_OFFSET;
	Size		need = MAXALIGN(len);
	MinimalTuple mt;

	if (need > e->arena_free)
	{
		Size		block = Max(ARENA_BLOCK, need);

		engine_charge(e, block);
		e->arena = palloc_extended(block, MCXT_ALLOC_HUGE);
		e->arena_free = block;
	}
	mt = (MinimalTuple) e->arena;
	memcpy(mt, (char *) htup->t_data + MINIMAL_TUPLE_OFFSET, len);
	mt->t_len = len;
	e->arena += need;
	e->arena_free -= need;
	return mt;
}

/* ---- parsing the model's expressions against the records ---- */

/* Vars of l (1) and r (2) to the executor's inner and outer tuples */
static bool
set_varnos_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;

		if (var->varlevelsup != 0 || (var->varno != 1 && var->varno != 2) || var->varattno <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a comparison reads something other than a column of the two records it compares"),
					 errhint("SET caredata.link_compare_engine = off to compare with SQL joins.")));
		var->varno = var->varno == 1 ? INNER_VAR : OUTER_VAR;
		return false;
	}
	return expression_tree_walker(node, set_varnos_walker, context);
}

/*
 * Parse and analyse "SELECT <targets> FROM (SELECT * FROM rec) l, (SELECT *
 * FROM rec) r" and return its target expressions, planned (constants
 * folded, SQL functions inlined); *cols gets the record relation's target
 * list, whose order the Vars' attribute numbers follow.
 */
static List *
analyse_targets(const char *targets, const char *rec, List **cols)
{
	StringInfoData sql;
	List	   *raw;
	Query	   *q;
	RangeTblEntry *rte;
	List	   *exprs = NIL;
	ListCell   *lc;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s FROM (SELECT * FROM %s _rec) l, (SELECT * FROM %s _rec) r",
					 targets, rec, rec);
	raw = raw_parser(sql.data, RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("a comparison or the record relation is not a single expression")));
	q = parse_analyze_fixedparams(linitial_node(RawStmt, raw), sql.data, NULL, 0, NULL);
	if (q->commandType != CMD_SELECT || q->hasSubLinks || q->hasAggs || q->hasWindowFuncs ||
		q->hasTargetSRFs || list_length(q->rtable) != 2)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a comparison holds a subquery, an aggregate or a set-returning function"),
				 errhint("SET caredata.link_compare_engine = off to compare with SQL joins.")));
	rte = linitial_node(RangeTblEntry, q->rtable);
	if (rte->rtekind != RTE_SUBQUERY)
		elog(ERROR, "unexpected range table entry for the records");
	*cols = rte->subquery->targetList;
	foreach(lc, q->targetList)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		Expr	   *expr = expression_planner((Expr *) copyObject(tle->expr));

		exprs = lappend(exprs, expr);
	}
	return exprs;
}

static AttrNumber
column_attno(List *cols, const char *name)
{
	ListCell   *lc;

	foreach(lc, cols)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		if (!tle->resjunk && tle->resname && strcmp(tle->resname, name) == 0)
			return tle->resno;
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("the records have no column \"%s\"", name)));
	return InvalidAttrNumber;	/* keep the compiler quiet */
}

/* ---- loading ---- */

static int
source_id(List **sources, Datum d)
{
	text	   *t = DatumGetTextPP(d);
	int			len = VARSIZE_ANY_EXHDR(t);
	int			i = 0;
	ListCell   *lc;

	foreach(lc, *sources)
	{
		text	   *s = (text *) lfirst(lc);

		if ((int) VARSIZE_ANY_EXHDR(s) == len && memcmp(VARDATA_ANY(s), VARDATA_ANY(t), len) == 0)
			return i;
		i++;
	}
	*sources = lappend(*sources, DatumGetTextPCopy(d));
	return i;
}

/*
 * Read every record through a cursor: only the needed columns, the rest
 * NULL.  rid and source are read with SPI_getbinval, not the inline
 * heap_getattr, which since 15.20 calls heap_datum_check(), missing from
 * older minor releases (test/release/deb_chroot.sh checks the symbols).
 */
static void
load_records(Engine *e, const char *rec, List *cols, Bitmapset *needed, MemoryContext cxt)
{
	StringInfoData sql;
	ListCell   *lc;
	SPIPlanPtr	plan;
	Portal		portal;
	List	   *sources = NIL;
	bool		first = true;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	foreach(lc, cols)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		Oid			type = exprType((Node *) tle->expr);
		int32		typmod = exprTypmod((Node *) tle->expr);

		if (!first)
			appendStringInfoString(&sql, ", ");
		first = false;
		if (bms_is_member(tle->resno, needed))
			appendStringInfo(&sql, "_rec.%s", quote_identifier(tle->resname));
		else
			appendStringInfo(&sql, "NULL::%s", format_type_with_typemod(type, typmod));
	}
	appendStringInfo(&sql, " FROM %s _rec", rec);

	plan = SPI_prepare(sql.data, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "could not prepare the records query: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		MemoryContext old;

		SPI_cursor_fetch(portal, true, FETCH_BATCH);
		if (SPI_processed == 0)
			break;
		old = MemoryContextSwitchTo(cxt);
		if (e->desc == NULL)
			e->desc = CreateTupleDescCopy(SPI_tuptable->tupdesc);
		if (e->nrec + SPI_processed > (uint64) e->maxrec)
		{
			int			grow = Max(Min(e->maxrec * 2, PG_INT32_MAX / 4), e->nrec + (int) SPI_processed);

			if (e->nrec + SPI_processed > PG_INT32_MAX / 4)
				ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("too many records to compare in memory")));
			engine_charge(e, (Size) (grow - e->maxrec) * e->rec_stride);
			if (e->maxrec == 0)
				e->packed = palloc_extended((Size) grow * e->rec_stride, MCXT_ALLOC_HUGE);
			else
				e->packed = repalloc_huge(e->packed, (Size) grow * e->rec_stride);
			e->maxrec = grow;
		}
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	htup = SPI_tuptable->vals[i];
			RecHead    *h = REC(e, e->nrec);
			bool		isnull;
			Datum		d;

			d = SPI_getbinval(htup, SPI_tuptable->tupdesc, e->rid_att, &isnull);
			if (isnull)
				elog(ERROR, "a record without a rid");
			h->rid = DatumGetInt64(d);
			d = SPI_getbinval(htup, SPI_tuptable->tupdesc, e->src_att, &isnull);
			h->src = isnull ? -1 : source_id(&sources, d);
			h->isnew = false;
			h->tup = engine_keep(e, htup);
			e->nrec++;
		}
		MemoryContextSwitchTo(old);
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SPI_freeplan(plan);
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* the records marked new (pg_temp.link_new), for an incremental run */
static void
load_new(Engine *e)
{
	int64	   *rids;
	int			n = 0;

	if (SPI_execute("SELECT rid FROM pg_temp.link_new", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the new records");
	rids = palloc_extended(Max(SPI_processed, 1) * sizeof(int64), MCXT_ALLOC_HUGE);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			rids[n++] = DatumGetInt64(d);
	}
	SPI_freetuptable(SPI_tuptable);
	qsort(rids, n, sizeof(int64), cmp_int64);
	for (int i = 0; i < e->nrec && n > 0; i++)
		REC(e, i)->isnew = bsearch(&REC(e, i)->rid, rids, n, sizeof(int64), cmp_int64) != NULL;
	e->only_new = true;
	pfree(rids);
}

/* ---- blocking ---- */

/*
 * LSD radix sort of entries by the low SORT_BITS bits of their hash, 16
 * bits a pass (11 measured slower), between the two buffers in turn; a pass
 * whose digit is the same for every entry is skipped.  Entries with equal
 * low bits end up together, which is all the grouping needs: a run of
 * them holding different keys (their hashes differ above, or collide) is
 * split into its keys by comparing them.  With 32 bits, two passes where 64
 * took four; two distinct keys share a run about n^2 / 2^33 times (a few
 * hundred among millions of keys, each split at the cost of its length).
 * Returns the buffer holding the result.
 */
#define RADIX_BITS	16
#define RADIX_SIZE	(1 << RADIX_BITS)
#define SORT_BITS	32
#define SORT_MASK	((((uint64) 1) << SORT_BITS) - 1)
static HashEntry *
radix_sort(HashEntry *a, HashEntry *tmp, int n)
{
	uint32	   *count = palloc(RADIX_SIZE * sizeof(uint32));

	for (int shift = 0; shift < SORT_BITS; shift += RADIX_BITS)
	{
		uint32		sum = 0;
		bool		one_bucket = false;
		HashEntry  *swap;

		memset(count, 0, RADIX_SIZE * sizeof(uint32));
		for (int i = 0; i < n; i++)
			count[(a[i].hash >> shift) & (RADIX_SIZE - 1)]++;
		for (int d = 0; d < RADIX_SIZE; d++)
		{
			uint32		c = count[d];

			if (c == (uint32) n)
				one_bucket = true;
			count[d] = sum;
			sum += c;
		}
		if (one_bucket)
			continue;
		for (int i = 0; i < n; i++)
			tmp[count[(a[i].hash >> shift) & (RADIX_SIZE - 1)]++] = a[i];
		swap = a;
		a = tmp;
		tmp = swap;
	}
	pfree(count);
	return a;
}

/*
 * Does this type's equality compare bytes?  Fixed-length values passed by
 * value whose equal values have equal bytes, and text in a deterministic
 * collation (its equality is memcmp of the detoasted bytes).
 */
bool
link_bytewise_type(Oid type, Oid coll)
{
	switch (type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case DATEOID:
		case OIDOID:
		case BOOLOID:
		case CHAROID:
			return true;
		case TEXTOID:
		case VARCHAROID:
			return OidIsValid(coll) && get_collation_isdeterministic(coll);
		default:
			return false;
	}
}

/* a bytewise key's bytes: each value's bytes (text: its length first) */
static void
serialize_key(StringInfo buf, Rule *r, const Datum *values)
{
	resetStringInfo(buf);
	for (int c = 0; c < r->ncols; c++)
	{
		if (r->typlen[c] > 0)
		{
			char		bytes[8];

			store_att_byval(bytes, values[c], r->typlen[c]);
			appendBinaryStringInfo(buf, bytes, r->typlen[c]);
		}
		else
		{
			struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(values[c]));
			uint32		len = VARSIZE_ANY_EXHDR(v);

			appendBinaryStringInfo(buf, (char *) &len, sizeof(len));
			appendBinaryStringInfo(buf, VARDATA_ANY(v), len);
			if ((Pointer) v != DatumGetPointer(values[c]))
				pfree(v);
		}
	}
}

/* does record b have the same key as record a under rule r?  (neither NULL) */
static bool
same_key(Engine *e, Rule *r, uint32 a, uint32 b)
{
	ExecStoreMinimalTuple(REC(e, a)->tup, e->slot_l, false);
	ExecStoreMinimalTuple(REC(e, b)->tup, e->slot_r, false);
	for (int c = 0; c < r->ncols; c++)
	{
		bool		na,
					nb;
		Datum		da = slot_getattr(e->slot_l, r->attno[c], &na);
		Datum		db = slot_getattr(e->slot_r, r->attno[c], &nb);

		if (!DatumGetBool(FunctionCall2Coll(&r->eq[c], r->coll[c], da, db)))
			return false;
	}
	return true;
}

/* the same key, from the entries when they hold it */
static inline bool
same_entry_key(Engine *e, Rule *r, const HashEntry *a, const HashEntry *b)
{
	/* equal keys hash alike: a run of equal low bits mixes other hashes */
	if (a->hash != b->hash)
		return false;
	if (a->inline_key && b->inline_key)
		return a->klen == b->klen && memcmp(a->key, b->key, a->klen) == 0;
	if (a->inline_key != b->inline_key && r->bytewise)
		return false;			/* lengths differ */
	return same_key(e, r, a->rec, b->rec);
}

static void emit_pair(Engine *e, uint32 i, uint32 j);

/*
 * The pairs found so far, compared: their records are random in memory, so
 * the tuples of a batch start loading together (two cache lines each)
 * before the first is read.
 */
static void
flush_pairs(Engine *e)
{
	for (int p = 0; p < e->npending; p++)
	{
		const char *l = (const char *) REC(e, e->pending[p][0])->tup;
		const char *r = (const char *) REC(e, e->pending[p][1])->tup;

		__builtin_prefetch(l);
		__builtin_prefetch(l + 64);
		__builtin_prefetch(r);
		__builtin_prefetch(r + 64);
	}
	for (int p = 0; p < e->npending; p++)
		emit_pair(e, e->pending[p][0], e->pending[p][1]);
	e->npending = 0;
}

static inline void
queue_pair(Engine *e, uint32 i, uint32 j)
{
	e->pending[e->npending][0] = i;
	e->pending[e->npending][1] = j;
	if (++e->npending == PENDING_PAIRS)
		flush_pairs(e);
}

/* the pairs of one group of records with equal keys */
static void
group_pairs(Engine *e, int rule, const uint32 *m, int g)
{
	/* the members' lines, random in memory, start loading together */
	for (int k = 0; k < g && k < 64; k++)
		__builtin_prefetch(REC(e, m[k]));
	for (int a = 0; a < g - 1; a++)
	{
		uint32		i = m[a];
		const RecHead *ri = REC(e, i);
		const uint32 *gi_row = GID(e, i);

		for (int b = a + 1; b < g; b++)
		{
			uint32		j = m[b];
			const RecHead *rj = REC(e, j);
			const uint32 *gj_row = GID(e, j);
			bool		earlier = false;

			if (b + 64 < g)
				__builtin_prefetch(REC(e, m[b + 64]));
			if (e->kind == PAIRS_ACROSS && ri->src == rj->src)
				continue;
			if (e->kind == PAIRS_WITHIN && ri->src != rj->src)
				continue;
			if (e->only_new && !ri->isnew && !rj->isnew)
				continue;
			for (int k = 0; k < rule; k++)
			{
				uint32		gi = gi_row[k];

				if (gi != 0 && gi == gj_row[k])
				{
					earlier = true;
					break;
				}
			}
			/* l is the record with the smaller rid */
			if (!earlier)
			{
				if (ri->rid < rj->rid)
					queue_pair(e, i, j);
				else
					queue_pair(e, j, i);
			}
		}
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * One rule: hash each record's key (in the order read, as the tuples lie in
 * memory), sort by hash, number the
 * groups of equal keys (a run of equal hashes is checked key by key) and
 * emit each group's pairs.
 */
static void
block_rule(Engine *e, int rule)
{
	Rule	   *r = &e->rules[rule];
	HashEntry  *ent;
	HashEntry  *tmp;
	uint32	   *members;
	int			n = 0;
	uint32		ngroups = 0;
	int			nsplit = 0;
	AttrNumber	maxatt = 0;
	Datum		keyvals[INDEX_MAX_KEYS];
	StringInfoData keybuf;

	initStringInfo(&keybuf);
	for (int c = 0; c < r->ncols; c++)
		maxatt = Max(maxatt, r->attno[c]);
	if (e->ent == NULL)
	{
		engine_charge(e, (Size) e->nrec * (2 * sizeof(HashEntry) + sizeof(uint32)));
		e->ent = palloc_extended(Max(e->nrec, 1) * sizeof(HashEntry), MCXT_ALLOC_HUGE);
		e->ent_tmp = palloc_extended(Max(e->nrec, 1) * sizeof(HashEntry), MCXT_ALLOC_HUGE);
		e->members = palloc_extended(Max(e->nrec, 1) * sizeof(uint32), MCXT_ALLOC_HUGE);
	}
	ent = e->ent;
	tmp = e->ent_tmp;
	members = e->members;

	for (int i = 0; i < e->nrec; i++)
	{
		uint32		rec = i;
		uint64		h = 0;
		bool		isnull = false;

		ExecStoreMinimalTuple(REC(e, rec)->tup, e->slot_l, false);
		slot_getsomeattrs(e->slot_l, maxatt);
		for (int c = 0; c < r->ncols && !isnull; c++)
		{
			int			att = r->attno[c] - 1;

			if (e->slot_l->tts_isnull[att])
				isnull = true;
			else
				keyvals[c] = e->slot_l->tts_values[att];
		}
		GID(e, rec)[rule] = 0;
		if (isnull)
			continue;
		ent[n].rec = rec;
		ent[n].inline_key = false;
		if (r->bytewise)
		{
			serialize_key(&keybuf, r, keyvals);
			h = hash_bytes_extended((const unsigned char *) keybuf.data, keybuf.len, 0);
			if (keybuf.len <= KEY_INLINE)
			{
				ent[n].inline_key = true;
				ent[n].klen = (uint8) keybuf.len;
				memcpy(ent[n].key, keybuf.data, keybuf.len);
			}
		}
		else
		{
			for (int c = 0; c < r->ncols; c++)
				h = hash_combine64(h, DatumGetUInt64(FunctionCall2Coll(&r->hash[c], r->coll[c],
																	   keyvals[c], Int64GetDatum(0))));
		}
		ent[n].hash = h;
		n++;
	}
	ent = radix_sort(ent, tmp, n);

	for (int s = 0, pf = 0; s < n;)
	{
		int			e_ = s + 1;
		int			g;
		bool		all_same = true;

		while (e_ < n && ((ent[e_].hash ^ ent[s].hash) & SORT_MASK) == 0)
			e_++;
		/* the records a little ahead start loading: their groups are written next */
		for (; pf < n && pf < e_ + 48; pf++)
			__builtin_prefetch(REC(e, ent[pf].rec));
		g = e_ - s;
		for (int k = 0; k < g; k++)
			members[k] = ent[s + k].rec;
		for (int k = 1; k < g && all_same; k++)
			all_same = same_entry_key(e, r, &ent[s], &ent[s + k]);
		if (all_same)
		{
			ngroups++;
			for (int k = 0; k < g; k++)
				GID(e, members[k])[rule] = ngroups;
			if (g > 1)
				group_pairs(e, rule, members, g);
		}
		else
		{
			/* low hash bits shared by different keys: split the run into its keys */
			bool	   *taken = palloc0(g * sizeof(bool));
			uint32	   *sub = palloc(g * sizeof(uint32));

			for (int k = 0; k < g; k++)
			{
				int			ns = 0;

				if (taken[k])
					continue;
				ngroups++;
				for (int q = k; q < g; q++)
				{
					if (taken[q] || (q != k && !same_entry_key(e, r, &ent[s + k], &ent[s + q])))
						continue;
					taken[q] = true;
					sub[ns++] = members[q];
					GID(e, members[q])[rule] = ngroups;
				}
				if (ns > 1)
					group_pairs(e, rule, sub, ns);
			}
			pfree(taken);
			pfree(sub);
			nsplit++;
		}
		if (ngroups == PG_UINT32_MAX)
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("too many blocking groups to compare in memory")));
		s = e_;
	}
	elog(DEBUG1, "link_block_compare: rule %d: %u groups, %d runs of keys sharing their hash's low bits split", rule + 1, ngroups, nsplit);
	pfree(keybuf.data);
}

/* ---- comparing ---- */

/* ln(x), as float8's ln() computes it and with its errors */
static inline double
float8_ln(double x)
{
	double		result;

	if (x == 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_ARGUMENT_FOR_LOG),
				 errmsg("cannot take logarithm of zero")));
	if (x < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_ARGUMENT_FOR_LOG),
				 errmsg("cannot take logarithm of a negative number")));
	result = log(x);
	if (unlikely(isinf(result)) && !isinf(x))
		float_overflow_error();
	if (unlikely(result == 0.0) && x != 1.0)
		float_underflow_error();
	return result;
}

/*
 * One candidate pair, l the record with the smaller rid: its levels, then
 * pattern = sum(level * stride) and tf_adj = 0 + sum over comparisons with
 * a term frequency of (level top and tf > 0 ? ln(u_top / tf) * log2(e) : 0),
 * as _link_compare_sql() writes them.
 */
static void
emit_pair(Engine *e, uint32 i, uint32 j)
{
	ExprContext *econtext = e->econtext;
	int64		pattern = 0;
	bool		pattern_null = false;
	double		tf_adj = 0.0;
	int			ncmp = e->ncmp;

	ExecStoreMinimalTuple(REC(e, i)->tup, e->slot_l, false);
	ExecStoreMinimalTuple(REC(e, j)->tup, e->slot_r, false);
	econtext->ecxt_innertuple = e->slot_l;
	econtext->ecxt_outertuple = e->slot_r;
	e->values[0] = Int64GetDatum(REC(e, i)->rid);
	e->nulls[0] = false;
	e->values[1] = Int64GetDatum(REC(e, j)->rid);
	e->nulls[1] = false;
	for (int c = 0; c < ncmp; c++)
	{
		bool		isnull;
		Datum		d = ExecEvalExprSwitchContext(e->level[c], econtext, &isnull);
		int16		level = isnull ? 0 : DatumGetInt16(d);

		e->values[2 + c] = Int16GetDatum(level);
		e->nulls[2 + c] = isnull;
		if (isnull)
			pattern_null = true;
		else
			pattern += (int64) level * e->stride[c];
		if (e->tf[c] != NULL)
		{
			bool		tf_null;
			double		term = 0.0;
			Datum		t = ExecEvalExprSwitchContext(e->tf[c], econtext, &tf_null);

			if (!isnull && level == e->nlevels[c] - 1 && !tf_null &&
				float8_gt(DatumGetFloat8(t), 0.0))
				term = float8_mul(float8_ln(float8_div(e->u_top[c], DatumGetFloat8(t))), e->log2e);
			tf_adj = float8_pl(tf_adj, term);
		}
	}
	if (!pattern_null && (pattern < PG_INT32_MIN || pattern > PG_INT32_MAX))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("integer out of range")));
	e->values[2 + ncmp] = Int32GetDatum((int32) pattern);
	e->nulls[2 + ncmp] = pattern_null;
	if (e->hist != NULL && e->hist->counts != NULL)
	{
		if (pattern_null)
			e->hist->null_count++;
		else if (pattern < 0 || pattern >= e->hist->size)
			e->hist->outside = true;
		else
			e->hist->counts[pattern]++;
	}
	e->values[3 + ncmp] = Float8GetDatum(tf_adj);
	e->nulls[3 + ncmp] = false;
	if (e->into != NULL)
	{
		TupleTableSlot *slot = link_writer_next(&e->writer);

		memcpy(slot->tts_values, e->values, (ncmp + 4) * sizeof(Datum));
		memcpy(slot->tts_isnull, e->nulls, (ncmp + 4) * sizeof(bool));
		ExecStoreVirtualTuple(slot);
		link_writer_done(&e->writer);
	}
	else
		tuplestore_putvalues(e->store, e->outdesc, e->values, e->nulls);
	ResetExprContext(econtext);
	e->npairs++;
}

/* ---- the function ---- */

static void
text_array_arg(FunctionCallInfo fcinfo, int argno, Datum **elems, bool **nulls, int *n)
{
	if (PG_ARGISNULL(argno))
	{
		*n = 0;
		*elems = NULL;
		*nulls = NULL;
		return;
	}
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(argno), TEXTOID, -1, false, TYPALIGN_INT, elems, nulls, n);
}

/*
 * caredata._link_block_compare(rec text, rule_cols text[], rule_of integer[],
 *		levels text[], tf_cols text[], nlevels integer[], u_top float8[],
 *		link_type text, only_new boolean)
 *	RETURNS SETOF record (rid_l bigint, rid_r bigint, <one smallint a level>,
 *		pattern integer, tf_adj double precision)
 *
 * rec: the record relation (_link_record_sql()); rule_cols, rule_of: the
 * blocking rules' columns and the rule (1, 2, ...) each belongs to, rules in
 * order; levels: the comparisons' expressions over l and r; tf_cols: the
 * column of r holding each comparison's term frequency, or NULL; u_top: u
 * of each comparison's top level (NULL: no adjustment).
 */
static int64
engine_run(FunctionCallInfo fcinfo, int a0, TupleDesc outdesc, Tuplestorestate *store, Relation into, PatternHist *hist)
{
	MemoryContext work;
	MemoryContext old;
	Engine		e;
	char	   *rec;
	Datum	   *rule_cols,
			   *levels,
			   *tf_cols;
	bool	   *rule_cols_null,
			   *levels_null,
			   *tf_null;
	int			nrule_cols,
				nlevels_txt,
				ntf;
	int32	   *rule_of;
	int			nrule_of;
	int32	   *nlevels;
	int			nnlevels;
	Datum	   *u_top = NULL;
	bool	   *u_top_null = NULL;
	int			nu_top = 0;
	char	   *link_type;
	bool		only_new;
	StringInfoData targets;
	List	   *cols;
	List	   *exprs;
	Bitmapset  *needed = NULL;
	int			ncmp;
	TimestampTz started = GetCurrentTimestamp();

	for (int a = 0; a < 6; a++)
		if (PG_ARGISNULL(a0 + a))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the records, the rules and the comparisons must not be NULL")));
	if (PG_ARGISNULL(a0 + 7) || PG_ARGISNULL(a0 + 8))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the link type must not be NULL")));
	rec = text_to_cstring(PG_GETARG_TEXT_PP(a0));
	text_array_arg(fcinfo, a0 + 1, &rule_cols, &rule_cols_null, &nrule_cols);
	text_array_arg(fcinfo, a0 + 3, &levels, &levels_null, &nlevels_txt);
	text_array_arg(fcinfo, a0 + 4, &tf_cols, &tf_null, &ntf);
	{
		Datum	   *d;
		bool	   *dn;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(a0 + 5), INT4OID, 4, true, TYPALIGN_INT, &d, &dn, &nnlevels);
		nlevels = palloc(Max(nnlevels, 1) * sizeof(int32));
		for (int i = 0; i < nnlevels; i++)
		{
			if (dn[i] || DatumGetInt32(d[i]) < 1)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("a comparison has no levels")));
			nlevels[i] = DatumGetInt32(d[i]);
		}
		/* rule_of as integers too */
		{
			Datum	   *r;
			bool	   *rn;

			deconstruct_array(PG_GETARG_ARRAYTYPE_P(a0 + 2), INT4OID, 4, true, TYPALIGN_INT, &r, &rn, &nrule_of);
			rule_of = palloc(Max(nrule_of, 1) * sizeof(int32));
			for (int i = 0; i < nrule_of; i++)
			{
				if (rn[i])
					ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("a blocking rule column has no rule")));
				rule_of[i] = DatumGetInt32(r[i]);
			}
		}
	}
	if (!PG_ARGISNULL(a0 + 6))
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(a0 + 6), FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &u_top, &u_top_null, &nu_top);
	link_type = text_to_cstring(PG_GETARG_TEXT_PP(a0 + 7));
	only_new = PG_GETARG_BOOL(a0 + 8);

	ncmp = nlevels_txt;
	if (nrule_cols != nrule_of || ntf != ncmp || nnlevels != ncmp || (nu_top != 0 && nu_top != ncmp) || ncmp == 0 || nrule_cols == 0)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("the rules' and the comparisons' arrays differ in length")));
	if (outdesc == NULL || outdesc->natts != ncmp + 4 ||
		TupleDescAttr(outdesc, 0)->atttypid != INT8OID ||
		TupleDescAttr(outdesc, 1)->atttypid != INT8OID ||
		TupleDescAttr(outdesc, ncmp + 2)->atttypid != INT4OID ||
		TupleDescAttr(outdesc, ncmp + 3)->atttypid != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the result must be (rid_l bigint, rid_r bigint, a smallint a comparison, pattern integer, tf_adj double precision)")));
	for (int c = 0; c < ncmp; c++)
		if (TupleDescAttr(outdesc, 2 + c)->atttypid != INT2OID || TupleDescAttr(outdesc, 2 + c)->attisdropped)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("the result must be (rid_l bigint, rid_r bigint, a smallint a comparison, pattern integer, tf_adj double precision)")));

	memset(&e, 0, sizeof(e));
	if (strcmp(link_type, "link_only") == 0)
		e.kind = PAIRS_ACROSS;
	else if (strcmp(link_type, "dedupe_only") == 0)
		e.kind = PAIRS_WITHIN;
	else
		e.kind = PAIRS_ALL;
	e.mem_limit = (Size) maintenance_work_mem * 1024;
	/* the constant as the SQL writes it, read as float8in reads it */
	e.log2e = strtod("1.4426950408889634", NULL);
	e.ncmp = ncmp;
	e.store = store;
	e.outdesc = outdesc;
	e.into = into;

	work = AllocSetContextCreate(CurrentMemoryContext, "caredata link_block_compare", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);

	/* the comparisons, then the terms' frequencies, as target expressions */
	initStringInfo(&targets);
	for (int c = 0; c < ncmp; c++)
	{
		if (levels_null[c])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("a comparison has no expression")));
		appendStringInfo(&targets, "%s(%s)::pg_catalog.int2", c > 0 ? ", " : "", TextDatumGetCString(levels[c]));
	}
	for (int c = 0; c < ncmp; c++)
		if (!tf_null[c] && u_top != NULL && !u_top_null[c])
			appendStringInfo(&targets, ", r.%s", quote_identifier(TextDatumGetCString(tf_cols[c])));

	SPI_connect();
	MemoryContextSwitchTo(work);
	exprs = analyse_targets(targets.data, rec, &cols);
	e.level = palloc0(ncmp * sizeof(ExprState *));
	e.tf = palloc0(ncmp * sizeof(ExprState *));
	e.nlevels = nlevels;
	e.u_top = palloc0(ncmp * sizeof(double));
	e.stride = palloc(ncmp * sizeof(int64));
	{
		ListCell   *lc = list_head(exprs);
		int64		stride = 1;

		for (int c = 0; c < ncmp; c++)
		{
			Expr	   *expr = (Expr *) lfirst(lc);

			pull_varattnos((Node *) expr, 1, &needed);
			pull_varattnos((Node *) expr, 2, &needed);
			set_varnos_walker((Node *) expr, NULL);
			e.level[c] = ExecInitExpr(expr, NULL);
			e.stride[c] = stride;
			if (nlevels[c] > 0 && stride > PG_INT64_MAX / nlevels[c])
				ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("too many comparison patterns")));
			stride *= nlevels[c];
			lc = lnext(exprs, lc);
		}
		/* every pattern lies in [0, stride) */
		e.hist = hist;
		if (hist != NULL)
		{
			hist->size = stride;
			hist->null_count = 0;
			hist->counts = stride <= PATTERN_HIST_MAX
				? MemoryContextAllocExtended(old, stride * sizeof(int64), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO)
				: NULL;
		}
		for (int c = 0; c < ncmp; c++)
		{
			Expr	   *expr;

			if (tf_null[c] || u_top == NULL || u_top_null[c])
				continue;
			expr = (Expr *) lfirst(lc);
			if (exprType((Node *) expr) != FLOAT8OID)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("a term frequency column is not double precision")));
			pull_varattnos((Node *) expr, 1, &needed);
			pull_varattnos((Node *) expr, 2, &needed);
			set_varnos_walker((Node *) expr, NULL);
			e.tf[c] = ExecInitExpr(expr, NULL);
			e.u_top[c] = DatumGetFloat8(u_top[c]);
			lc = lnext(exprs, lc);
		}
	}
	/* pull_varattnos offsets attribute numbers; back to plain ones */
	{
		Bitmapset  *plain = NULL;
		int			x = -1;

		while ((x = bms_next_member(needed, x)) >= 0)
			plain = bms_add_member(plain, x + FirstLowInvalidHeapAttributeNumber);
		needed = plain;
	}
	e.rid_att = column_attno(cols, "rid");
	e.src_att = column_attno(cols, "source");
	needed = bms_add_member(needed, e.rid_att);
	needed = bms_add_member(needed, e.src_att);

	/* the rules */
	e.nrules = 0;
	for (int i = 0; i < nrule_of; i++)
	{
		if (i == 0 ? rule_of[i] != 1 : (rule_of[i] != rule_of[i - 1] && rule_of[i] != rule_of[i - 1] + 1))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("the rules' columns are not numbered 1, 2, ... in order")));
		e.nrules = rule_of[i];
	}
	e.rules = palloc0(e.nrules * sizeof(Rule));
	for (int i = 0; i < nrule_of; i++)
	{
		Rule	   *r = &e.rules[rule_of[i] - 1];
		char	   *name;
		AttrNumber	att;
		TargetEntry *tle;
		TypeCacheEntry *tc;
		Oid			type;

		if (rule_cols_null[i])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("a blocking rule names no column")));
		name = TextDatumGetCString(rule_cols[i]);
		att = column_attno(cols, name);
		tle = list_nth_node(TargetEntry, cols, att - 1);
		type = exprType((Node *) tle->expr);
		tc = lookup_type_cache(type, TYPECACHE_HASH_EXTENDED_PROC_FINFO | TYPECACHE_EQ_OPR_FINFO);
		if (!OidIsValid(tc->hash_extended_proc) || !OidIsValid(tc->eq_opr))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("blocking rule column \"%s\" has a type without hashing", name),
					 errhint("SET caredata.link_compare_engine = off to compare with SQL joins.")));
		if (r->ncols == 0)
		{
			r->attno = palloc(nrule_of * sizeof(AttrNumber));
			r->hash = palloc(nrule_of * sizeof(FmgrInfo));
			r->eq = palloc(nrule_of * sizeof(FmgrInfo));
			r->coll = palloc(nrule_of * sizeof(Oid));
			r->typlen = palloc(nrule_of * sizeof(int16));
			r->bytewise = true;
		}
		if (r->ncols >= INDEX_MAX_KEYS)
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("a blocking rule has too many columns")));
		r->attno[r->ncols] = att;
		fmgr_info_copy(&r->hash[r->ncols], &tc->hash_extended_proc_finfo, work);
		fmgr_info_copy(&r->eq[r->ncols], &tc->eq_opr_finfo, work);
		r->coll[r->ncols] = exprCollation((Node *) tle->expr);
		r->typlen[r->ncols] = tc->typlen;
		if (!link_bytewise_type(type, r->coll[r->ncols]) || (tc->typlen > 0 && !tc->typbyval))
			r->bytewise = false;
		r->ncols++;
		needed = bms_add_member(needed, att);
	}

	/* each record's head and groups, packed in the order read */
	e.rec_stride = MAXALIGN(sizeof(RecHead) + e.nrules * sizeof(uint32));
	load_records(&e, rec, cols, needed, work);
	if (only_new)
		load_new(&e);
	elog(DEBUG1, "link_block_compare: %d records loaded in %.3f s, %zu bytes", e.nrec,
		 (double) (GetCurrentTimestamp() - started) / 1000000.0, e.mem_used);

	if (e.desc != NULL)
	{
		e.slot_l = MakeSingleTupleTableSlot(e.desc, &TTSOpsMinimalTuple);
		e.slot_r = MakeSingleTupleTableSlot(e.desc, &TTSOpsMinimalTuple);
		e.econtext = CreateStandaloneExprContext();
		e.values = palloc((ncmp + 4) * sizeof(Datum));
		e.nulls = palloc((ncmp + 4) * sizeof(bool));
		if (into != NULL)
			link_writer_begin(&e.writer, into, INSERT_BATCH);
		for (int k = 0; k < e.nrules; k++)
		{
			int64		before = e.npairs;

			MemoryContextSwitchTo(work);
			block_rule(&e, k);
			flush_pairs(&e);
			elog(DEBUG1, "link_block_compare: rule %d gave " INT64_FORMAT " pairs, at %.3f s", k + 1,
				 e.npairs - before, (double) (GetCurrentTimestamp() - started) / 1000000.0);
		}
		if (into != NULL)
			link_writer_end(&e.writer);
		ExecDropSingleTupleTableSlot(e.slot_l);
		ExecDropSingleTupleTableSlot(e.slot_r);
		FreeExprContext(e.econtext, true);
	}
	SPI_finish();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	return e.npairs;
}

PG_FUNCTION_INFO_V1(link_block_compare);
Datum
link_block_compare(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	engine_run(fcinfo, 0, rsinfo->expectedDesc != NULL ? rsinfo->setDesc : NULL, rsinfo->setResult, NULL, NULL);
	return (Datum) 0;
}

/*
 * caredata._link_block_compare_into(into regclass, <the arguments above>,
 *		OUT pairs bigint, OUT patterns integer[], OUT counts float8[])
 *
 * The same pairs written straight into a temporary table of the session
 * with the result's columns (table_multi_insert), where a set-returning
 * call held them in a tuplestore (spilling to disk past work_mem) for the
 * statement to write them again; returns how many, and how many had each
 * pattern (ascending, a NULL pattern last, as array_agg(pattern ORDER BY
 * pattern) over GROUP BY pattern gives them; NULL arrays past 2^22
 * possible patterns, or when a comparison gave a level beyond its labels),
 * which link_run() would otherwise read the table again for.
 */
PG_FUNCTION_INFO_V1(link_block_compare_into);
Datum
link_block_compare_into(PG_FUNCTION_ARGS)
{
	Relation	into;
	PatternHist hist;
	TupleDesc	rdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the table to write the pairs into must not be NULL")));
	if (get_call_result_type(fcinfo, NULL, &rdesc) != TYPEFUNC_COMPOSITE || rdesc->natts != 3)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("caredata._link_block_compare_into() returns (pairs, patterns, counts)")));
	into = link_open_temp_target(PG_GETARG_OID(0), "caredata._link_block_compare_into()");
	memset(&hist, 0, sizeof(hist));
	values[0] = Int64GetDatum(engine_run(fcinfo, 1, RelationGetDescr(into), NULL, into, &hist));
	relation_close(into, NoLock);
	/* no histogram past 2^22 patterns, or with a level out of its range */
	if (hist.counts == NULL || hist.outside)
		nulls[1] = nulls[2] = true;
	else
	{
		int			n = 0;
		Datum	   *p;
		Datum	   *c;
		bool	   *pn;

		for (int64 i = 0; i < hist.size; i++)
			n += hist.counts[i] > 0;
		n += hist.null_count > 0;
		p = palloc(Max(n, 1) * sizeof(Datum));
		c = palloc(Max(n, 1) * sizeof(Datum));
		pn = palloc0(Max(n, 1) * sizeof(bool));
		n = 0;
		for (int64 i = 0; i < hist.size; i++)
			if (hist.counts[i] > 0)
			{
				p[n] = Int32GetDatum((int32) i);
				c[n++] = Float8GetDatum((double) hist.counts[i]);
			}
		if (hist.null_count > 0)
		{
			pn[n] = true;
			p[n] = (Datum) 0;
			c[n++] = Float8GetDatum((double) hist.null_count);
		}
		if (n == 0)
		{
			values[1] = PointerGetDatum(construct_empty_array(INT4OID));
			values[2] = PointerGetDatum(construct_empty_array(FLOAT8OID));
		}
		else
		{
			int			dims[1] = {n};
			int			lbs[1] = {1};

			values[1] = PointerGetDatum(construct_md_array(p, pn, 1, dims, lbs, INT4OID, 4, true, TYPALIGN_INT));
			values[2] = PointerGetDatum(construct_md_array(c, NULL, 1, dims, lbs, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		}
	}
	rdesc = BlessTupleDesc(rdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(rdesc, values, nulls)));
}
