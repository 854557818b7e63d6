/*
 * src/linkage/frequency.c
 *
 * How many rows of a table hold a value: caredata._link_value_count(stage,
 * column, row, value), the value frequencies link_standardise() stores
 * with each record (src/linkage/model.sql).
 *
 * Each call site counts its column once, on its first call, by scanning the
 * table into a hash table of value -> count (PostgreSQL's simplehash), in
 * batches whose slots start loading together, then notes each row's count
 * in the order read.  A call naming a row by its TID (the INSERT reading
 * the table it counted, in the same order) reads that row's count from
 * those arrays, when the row holds the value given; other calls probe the
 * hash table.  The SQL it replaces grouped
 * the staged records once per column and hash-joined each grouping back:
 * at 1M people (2.5M records, three columns) the joins and groupings took
 * about 6 s of an 8.5 s INSERT, serially, for the staged records are a
 * temporary table that parallel workers cannot read.
 *
 * Equal is the type's own hash equality in the column's collation, as
 * GROUP BY and the hash join used; values whose equality is their bytes
 * (integers, dates, text in a deterministic collation) are hashed and
 * compared as bytes.  Only a temporary table of the session is counted,
 * with the caller's SELECT right on the column and no row security.  The
 * counts live as long as the statement (a memory context of the call
 * site's); past maintenance_work_mem for one column the call fails with
 * 54000, and link_standardise() then groups and joins in SQL.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"

#include "keys.h"
#include "temp_table.h"

/* how a column's values are told apart */
typedef enum FreqKind
{
	FREQ_BYVAL,					/* bytes of a pass-by-value datum */
	FREQ_VARLENA,				/* bytes of a detoasted varlena */
	FREQ_TYPE					/* the type's hash function and equality */
} FreqKind;

typedef struct FreqColumn
{
	FreqKind	kind;
	int16		typlen;
	Oid			coll;
	FmgrInfo	hash;
	FmgrInfo	eq;
} FreqColumn;

typedef struct FreqEntry
{
	Datum		value;
	uint32		hash;
	uint32		count;
	char		status;
} FreqEntry;

static uint32 freq_hash_value(FreqColumn *col, Datum value);
static bool freq_equal(FreqColumn *col, Datum a, Datum b);

#define SH_PREFIX		freq
#define SH_ELEMENT_TYPE	FreqEntry
#define SH_KEY_TYPE		Datum
#define SH_KEY			value
#define SH_HASH_KEY(tb, key)	freq_hash_value((FreqColumn *) (tb)->private_data, key)
#define SH_EQUAL(tb, a, b)		freq_equal((FreqColumn *) (tb)->private_data, a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)		((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * One call site's counts: the hash table of value -> count, and each row's
 * count where the row is found by its TID (the statement reads the table
 * in the order it was counted: the lookups then walk these arrays instead
 * of probing the table at random)
 */
typedef struct FreqCache
{
	MemoryContext cxt;			/* all of it */
	CommandId	cid;			/* the command it was counted in */
	Oid			relid;
	char		colname[NAMEDATALEN];
	FreqColumn	col;
	freq_hash  *table;
	bool		by_tid;			/* rows numbered 1.. on every block */
	BlockNumber nblocks;
	uint32	   *block_start;	/* the first row of each block */
	uint32	   *block_rows;		/* rows on each block */
	Datum	   *row_value;		/* the row's value (a kept copy), or 0 */
	uint32	   *row_count;		/* its count; 0 for NULL */
} FreqCache;

#define FREQ_BATCH	16

static uint32
freq_hash_value(FreqColumn *col, Datum value)
{
	switch (col->kind)
	{
		case FREQ_BYVAL:
			return DatumGetUInt32(hash_uint32_extended((uint32) value, (uint64) value >> 32));
		case FREQ_VARLENA:
			return hash_bytes((const unsigned char *) VARDATA_ANY(DatumGetPointer(value)),
							  VARSIZE_ANY_EXHDR(DatumGetPointer(value)));
		default:
			return DatumGetUInt32(FunctionCall1Coll(&col->hash, col->coll, value));
	}
}

static bool
freq_equal(FreqColumn *col, Datum a, Datum b)
{
	switch (col->kind)
	{
		case FREQ_BYVAL:
			return a == b;
		case FREQ_VARLENA:
			{
				Size		la;

				if (a == b)
					return true;	/* the kept copy itself */
				la = VARSIZE_ANY_EXHDR(DatumGetPointer(a));

				return la == VARSIZE_ANY_EXHDR(DatumGetPointer(b)) &&
					memcmp(VARDATA_ANY(DatumGetPointer(a)), VARDATA_ANY(DatumGetPointer(b)), la) == 0;
			}
		default:
			if (a == b)
				return true;	/* the same bits, or the kept copy itself */
			return DatumGetBool(FunctionCall2Coll(&col->eq, col->coll, a, b));
	}
}

/* a varlena value as it is kept and compared: not compressed, not toasted */
static inline Datum
freq_key(FreqColumn *col, Datum value)
{
	if (col->typlen == -1)
		return PointerGetDatum(pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value)));
	return value;
}

/* how this column's values are told apart: as bytes where equality is */
static FreqKind
freq_kind(Oid type, Oid coll, int16 typlen, bool byval)
{
	if (!link_bytewise_type(type, coll))
		return FREQ_TYPE;
	if (typlen == -1)
		return FREQ_VARLENA;
	/* int8 is passed by reference on 32-bit builds */
	return byval ? FREQ_BYVAL : FREQ_TYPE;
}

/* count the column's values in the table, once per call site */
static FreqCache *
freq_build(FunctionCallInfo fcinfo, Oid relid, const char *colname)
{
	MemoryContext cxt;
	FreqCache  *cache;
	Relation	rel;
	AttrNumber	attno;
	Form_pg_attribute att;
	Oid			argtype = get_fn_expr_argtype(fcinfo->flinfo, 3);
	TableScanDesc scan;
	TupleTableSlot *slot;
	Size		limit = (Size) maintenance_work_mem * 1024;

	rel = link_open_temp(relid, "caredata._link_value_count()");
	attno = link_temp_column(rel, colname, InvalidOid);
	att = TupleDescAttr(RelationGetDescr(rel), attno - 1);
	if (argtype != att->atttypid)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the value counted is of type %s, the column of type %s",
						format_type_be(argtype), format_type_be(att->atttypid))));

	/* the call site's own memory, measured against the limit */
	cxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "caredata value counts", ALLOCSET_DEFAULT_SIZES);
	cache = MemoryContextAllocZero(cxt, sizeof(FreqCache));
	cache->cxt = cxt;
	cache->cid = GetCurrentCommandId(false);
	cache->relid = relid;
	strlcpy(cache->colname, colname, NAMEDATALEN);
	cache->col.coll = att->attcollation;
	cache->col.typlen = att->attlen;
	cache->col.kind = freq_kind(att->atttypid, att->attcollation, att->attlen, att->attbyval);
	if (cache->col.kind == FREQ_TYPE)
	{
		TypeCacheEntry *tc = lookup_type_cache(att->atttypid, TYPECACHE_HASH_PROC_FINFO | TYPECACHE_EQ_OPR_FINFO);

		if (!OidIsValid(tc->hash_proc) || !OidIsValid(tc->eq_opr))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("type %s has no hash equality to count values by", format_type_be(att->atttypid))));
		fmgr_info_copy(&cache->col.hash, &tc->hash_proc_finfo, cxt);
		fmgr_info_copy(&cache->col.eq, &tc->eq_opr_finfo, cxt);
	}
	cache->table = freq_create(cxt, 1024, &cache->col);

	/*
	 * Pass 1: the values counted, in batches whose table slots start loading
	 * together; each row's hash and the kept copy of its value noted in the
	 * order read
	 */
	cache->nblocks = RelationGetNumberOfBlocks(rel);
	cache->block_start = MemoryContextAllocZero(cxt, Max(cache->nblocks, 1) * sizeof(uint32));
	cache->block_rows = MemoryContextAllocZero(cxt, Max(cache->nblocks, 1) * sizeof(uint32));
	cache->by_tid = true;
	{
		Size		cap = 65536;
		uint32	   *row_hash = MemoryContextAllocExtended(cxt, cap * sizeof(uint32), MCXT_ALLOC_HUGE);
		MemoryContext batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "caredata value batch", ALLOCSET_DEFAULT_SIZES);
		Datum		bkey[FREQ_BATCH];
		uint32		bhash[FREQ_BATCH];
		uint32		brow[FREQ_BATCH];
		int			nb = 0;
		uint32		nrows = 0;

		cache->row_value = MemoryContextAllocExtended(cxt, cap * sizeof(Datum), MCXT_ALLOC_HUGE);
		cache->row_count = MemoryContextAllocExtended(cxt, cap * sizeof(uint32), MCXT_ALLOC_HUGE);
		scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
		slot = table_slot_create(rel, NULL);
		for (;;)
		{
			bool		more = table_scan_getnextslot(scan, ForwardScanDirection, slot);

			CHECK_FOR_INTERRUPTS();
			if (more)
			{
				bool		isnull;
				Datum		value = slot_getattr(slot, attno, &isnull);
				BlockNumber blk = ItemPointerGetBlockNumber(&slot->tts_tid);
				OffsetNumber off = ItemPointerGetOffsetNumber(&slot->tts_tid);

				/* rows numbered 1.. on each block, as a new table has them */
				if (blk >= cache->nblocks || off != cache->block_rows[blk] + 1)
					cache->by_tid = false;
				else
				{
					if (off == 1)
						cache->block_start[blk] = nrows;
					cache->block_rows[blk]++;
				}
				if (nrows == PG_UINT32_MAX)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("too many rows to count values of in memory")));
				if (nrows == cap)
				{
					cap *= 2;
					row_hash = repalloc_huge(row_hash, cap * sizeof(uint32));
					cache->row_value = repalloc_huge(cache->row_value, cap * sizeof(Datum));
					cache->row_count = repalloc_huge(cache->row_count, cap * sizeof(uint32));
				}
				/* 0 for a NULL, counted in pass 2 otherwise */
				cache->row_value[nrows] = (Datum) 0;
				cache->row_count[nrows] = isnull ? 0 : 1;
				row_hash[nrows] = 0;
				if (!isnull)
				{
					Datum		key = freq_key(&cache->col, value);

					/* a batch outlives the page its values lie on: copied */
					if (!att->attbyval)
					{
						MemoryContext old = MemoryContextSwitchTo(batch_cxt);
						Datum		copy = datumCopy(key, false, att->attlen);

						MemoryContextSwitchTo(old);
						if (key != value)
							pfree(DatumGetPointer(key));	/* detoasted */
						key = copy;
					}
					bkey[nb] = key;
					bhash[nb] = freq_hash_value(&cache->col, key);
					brow[nb] = nrows;
					__builtin_prefetch(&cache->table->data[bhash[nb] & cache->table->sizemask]);
					nb++;
				}
				nrows++;
			}
			if (nb == FREQ_BATCH || (!more && nb > 0))
			{
				for (int b = 0; b < nb; b++)
				{
					bool		found;
					FreqEntry  *entry = freq_insert_hash(cache->table, bkey[b], bhash[b], &found);

					if (found)
						entry->count++;
					else
					{
						/* a value not seen before: kept */
						entry->count = 1;
						if (!att->attbyval)
						{
							MemoryContext old = MemoryContextSwitchTo(cxt);

							entry->value = datumCopy(bkey[b], false, att->attlen);
							MemoryContextSwitchTo(old);
						}
					}
					cache->row_value[brow[b]] = entry->value;
					row_hash[brow[b]] = bhash[b];
				}
				nb = 0;
				MemoryContextReset(batch_cxt);
				if (MemoryContextMemAllocated(cxt, false) > limit)
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("counting values in memory needs more than maintenance_work_mem (%d kB)", maintenance_work_mem),
							 errhint("Raise maintenance_work_mem; caredata.link_standardise() then counts them with SQL.")));
			}
			if (!more)
				break;
		}
		ExecDropSingleTupleTableSlot(slot);
		table_endscan(scan);
		MemoryContextDelete(batch_cxt);

		/* pass 2: each row's count, its table slot loading a batch ahead */
		for (uint32 i = 0; i < nrows; i++)
		{
			FreqEntry  *entry;

			if (i + FREQ_BATCH < nrows)
				__builtin_prefetch(&cache->table->data[row_hash[i + FREQ_BATCH] & cache->table->sizemask]);
			if (cache->row_count[i] == 0)
				continue;
			entry = freq_lookup_hash(cache->table, cache->row_value[i], row_hash[i]);
			Assert(entry != NULL);
			cache->row_count[i] = entry->count;
		}
		pfree(row_hash);
	}
	relation_close(rel, AccessShareLock);
	return cache;
}

PG_FUNCTION_INFO_V1(link_value_count);
Datum
link_value_count(PG_FUNCTION_ARGS)
{
	Oid			relid;
	const char *colname;
	FreqCache  *cache = (FreqCache *) fcinfo->flinfo->fn_extra;
	Datum		key;
	FreqEntry  *entry;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("caredata._link_value_count() needs a table and a column")));
	if (PG_ARGISNULL(3))
		PG_RETURN_NULL();
	relid = PG_GETARG_OID(0);
	colname = NameStr(*PG_GETARG_NAME(1));
	/*
	 * Counted in an earlier command (a call site that outlives its
	 * statement, as a PL/pgSQL expression's does): counted again, since the
	 * table may have changed
	 */
	if (cache != NULL && cache->cid != GetCurrentCommandId(false))
	{
		MemoryContextDelete(cache->cxt);
		cache = NULL;
		fcinfo->flinfo->fn_extra = NULL;
	}
	if (cache == NULL)
	{
		cache = freq_build(fcinfo, relid, colname);
		fcinfo->flinfo->fn_extra = cache;
	}
	else if (cache->relid != relid || strcmp(cache->colname, colname) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a call of caredata._link_value_count() counts one column of one table"),
				 errhint("Name the table and the column as constants.")));
	key = freq_key(&cache->col, PG_GETARG_DATUM(3));

	/* the row named by its TID, when it holds this value: its count */
	if (cache->by_tid && !PG_ARGISNULL(2))
	{
		ItemPointer tid = (ItemPointer) PG_GETARG_POINTER(2);
		BlockNumber blk = ItemPointerGetBlockNumber(tid);
		OffsetNumber off = ItemPointerGetOffsetNumber(tid);

		if (blk < cache->nblocks && off >= 1 && off <= cache->block_rows[blk])
		{
			uint32		row = cache->block_start[blk] + off - 1;

			if (cache->row_count[row] > 0 && freq_equal(&cache->col, key, cache->row_value[row]))
				PG_RETURN_INT64((int64) cache->row_count[row]);
		}
	}
	/* else the value looked up */
	entry = freq_lookup(cache->table, key);
	PG_RETURN_INT64(entry ? (int64) entry->count : 0);
}
