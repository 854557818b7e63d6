/*-------------------------------------------------------------------------
 *
 * feed_load.c
 *		A feed's new objections written in bulk: caredata._open_objections(),
 *		the insert step of apply_opt_out_snapshot().
 *
 * The rows a snapshot opens differ only in their NHS number, and arrive in
 * NHS number order.  They are written as COPY writes: heap_multi_insert in
 * batches (one WAL record a page instead of one a row), defaults and
 * constraints evaluated as the executor would, the table's statement
 * triggers fired (the register version, the preload check); the caller's
 * INSERT privilege on the columns it supplies is checked as for an INSERT.
 * The function writes nothing and returns NULL when the register is not a
 * plain table the same INSERT would write row by row the same way (row
 * triggers, row security, an exclusion or deferrable constraint): the
 * caller then runs its INSERT.
 *
 * Each index is then maintained one of two ways.  An index that has never
 * held a tuple (its metapage has no root: a new or truncated register) and
 * whose order is the rows' order (led by the NHS number or the identity
 * column, ascending, no expressions) is built bottom up as CREATE INDEX
 * builds it (nbtsort.c's page layout: leaves at the fill factor, suffix
 * truncated high keys, the levels above), each page logged whole; the new
 * root is then set in the metapage, the one change a reader can see, made
 * under the metapage's buffer lock.  Until then a reader finds the index
 * empty, which is the truth for it: the rows are not committed.  This needs
 * the EXCLUSIVE table lock for the rest of the transaction (plain readers,
 * ACCESS SHARE, are never blocked by it; VACUUM and writers wait), taken
 * only when it is free at once; otherwise, and for every other index, the
 * index tuples are inserted one by one, in the rows' order.  A failure
 * before the metapage is set leaves unlinked pages behind (as a failed
 * index build leaves an unused file), never a reachable one; so a cancel
 * waits from the first such page to the metapage.
 *
 * caredata._opt_out_changes() works out what a snapshot changes, the step
 * before: the snapshot read once (as the caller, through SPI) and parsed
 * into an array of numbers, sorted; the register's open objections of the
 * kind read once in NHS number order through its objection_open index
 * (index only where the visibility map says a page is all visible, the
 * heap otherwise); the two merged.  What differs, the objections of the
 * source the snapshot no longer holds and the numbers no open objection
 * holds yet, is returned with the counts, as the SQL merge join it replaces
 * (still the path when this returns NULL) computed them.
 *
 * src/objection/feed_load.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/visibilitymap.h"
#include "access/nbtree.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xloginsert.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_relation.h"
#include "rewrite/rewriteHandler.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/typcache.h"

#include "identifiers/identifiers.h"

/* rows a heap_multi_insert call writes (COPY's MAX_BUFFERED_TUPLES) */
#define FEED_BATCH 1000

/* one level of a btree being built: its current page, in local memory */
typedef struct BulkLevel
{
	Page		page;
	BlockNumber blkno;
	OffsetNumber lastoff;
	uint32		level;
	Size		full;			/* "full" below this much free space */
	IndexTuple	lowkey;			/* the current page's low key */
	struct BulkLevel *next;		/* the level above, or NULL */
} BulkLevel;

/* one index of the register, and how it is being maintained */
typedef struct FeedIndex
{
	Relation	index;
	IndexInfo  *info;
	ExprState  *predicate;		/* partial index, or NULL */
	bool		bulk;			/* built bottom up */
	BTScanInsert inskey;		/* bulk: comparison and truncation */
	BulkLevel  *leaf;			/* bulk: NULL until the first tuple */
	MemoryContext cxt;			/* bulk: pages and pivot tuples */
} FeedIndex;

/* a new page for a level, not yet written, at a block of its own */
static BlockNumber
bulk_alloc_block(Relation index)
{
	Buffer		buf;
	BlockNumber blkno;

	/* the relation extended by one zero page, as _bt_getbuf extends it */
	LockRelationForExtension(index, ExclusiveLock);
	buf = ReadBufferExtended(index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
	UnlockRelationForExtension(index, ExclusiveLock);
	blkno = BufferGetBlockNumber(buf);
	ReleaseBuffer(buf);
	return blkno;
}

static Page
bulk_new_page(uint32 level)
{
	Page		page = (Page) palloc(BLCKSZ);
	BTPageOpaque opaque;

	_bt_pageinit(page, BLCKSZ);
	opaque = BTPageGetOpaque(page);
	opaque->btpo_prev = opaque->btpo_next = P_NONE;
	opaque->btpo_level = level;
	opaque->btpo_flags = (level > 0) ? 0 : BTP_LEAF;
	opaque->btpo_cycleid = 0;
	/* the high key's line pointer, reserved (nbtsort.c's _bt_blnewpage) */
	((PageHeader) page)->pd_lower += sizeof(ItemIdData);
	return page;
}

/* write a finished page through shared buffers, logged whole */
static void
bulk_write_page(Relation index, Page page, BlockNumber blkno)
{
	Buffer		buf;

	buf = ReadBufferExtended(index, MAIN_FORKNUM, blkno, RBM_ZERO_AND_LOCK, NULL);
	START_CRIT_SECTION();
	memcpy(BufferGetPage(buf), page, BLCKSZ);
	MarkBufferDirty(buf);
	if (RelationNeedsWAL(index))
		log_newpage_buffer(buf, true);
	END_CRIT_SECTION();
	UnlockReleaseBuffer(buf);
	pfree(page);
}

static BulkLevel *
bulk_level(Relation index, uint32 level)
{
	BulkLevel  *s = palloc0(sizeof(BulkLevel));

	s->page = bulk_new_page(level);
	s->blkno = bulk_alloc_block(index);
	s->lastoff = P_HIKEY;
	s->level = level;
	if (level > 0)
		s->full = BLCKSZ * (100 - BTREE_NONLEAF_FILLFACTOR) / 100;
	else
		s->full = BTGetTargetPageFreeSpace(index);
	return s;
}

/* nbtsort.c's _bt_sortaddtup */
static void
bulk_page_add(Page page, Size itemsize, IndexTuple itup, OffsetNumber off, bool minus_infinity)
{
	IndexTupleData trunc;

	if (minus_infinity)
	{
		trunc = *itup;
		trunc.t_info = sizeof(IndexTupleData);
		BTreeTupleSetNAtts(&trunc, 0, false);
		itup = &trunc;
		itemsize = sizeof(IndexTupleData);
	}
	if (PageAddItem(page, (Item) itup, itemsize, off, false, false) == InvalidOffsetNumber)
		elog(ERROR, "failed to add item to the index page");
}

/* nbtsort.c's _bt_slideleft: a rightmost page has no high key */
static void
bulk_slide_left(Page page)
{
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	ItemId		previi = PageGetItemId(page, P_HIKEY);

	for (OffsetNumber off = P_FIRSTKEY; off <= maxoff; off = OffsetNumberNext(off))
	{
		ItemId		thisii = PageGetItemId(page, off);

		*previi = *thisii;
		previi = thisii;
	}
	((PageHeader) page)->pd_lower -= sizeof(ItemIdData);
}

/* nbtsort.c's _bt_buildadd, without posting lists */
static void
bulk_add(FeedIndex *fi, Relation heap, BulkLevel *s, IndexTuple itup)
{
	Relation	index = fi->index;
	Page		npage = s->page;
	BlockNumber nblkno = s->blkno;
	OffsetNumber last_off = s->lastoff;
	Size		pgspc = PageGetFreeSpace(npage);
	Size		itupsz = MAXALIGN(IndexTupleSize(itup));
	bool		isleaf = (s->level == 0);

	if (unlikely(itupsz > BTMaxItemSize(npage)))
		_bt_check_third_page(index, heap, isleaf, npage, itup);

	if (pgspc < itupsz + (isleaf ? MAXALIGN(sizeof(ItemPointerData)) : 0) ||
		(pgspc < s->full && last_off > P_FIRSTKEY))
	{
		Page		opage = npage;
		BlockNumber oblkno = nblkno;
		ItemId		ii;
		ItemId		hii;
		IndexTuple	oitup;

		npage = bulk_new_page(s->level);
		nblkno = bulk_alloc_block(index);

		/* the old page's last item moves to the new page ... */
		ii = PageGetItemId(opage, last_off);
		oitup = (IndexTuple) PageGetItem(opage, ii);
		bulk_page_add(npage, ItemIdGetLength(ii), oitup, P_FIRSTKEY, !isleaf);

		/* ... and becomes the old page's high key (truncated on a leaf) */
		hii = PageGetItemId(opage, P_HIKEY);
		*hii = *ii;
		ItemIdSetUnused(ii);
		((PageHeader) opage)->pd_lower -= sizeof(ItemIdData);
		if (isleaf)
		{
			IndexTuple	lastleft;
			IndexTuple	truncated;

			ii = PageGetItemId(opage, OffsetNumberPrev(last_off));
			lastleft = (IndexTuple) PageGetItem(opage, ii);
			truncated = _bt_truncate(index, lastleft, oitup, fi->inskey);
			if (!PageIndexTupleOverwrite(opage, P_HIKEY, (Item) truncated, IndexTupleSize(truncated)))
				elog(ERROR, "failed to add high key to the index page");
			pfree(truncated);
			hii = PageGetItemId(opage, P_HIKEY);
			oitup = (IndexTuple) PageGetItem(opage, hii);
		}

		/* the old page's downlink, with its low key, one level up */
		if (s->next == NULL)
			s->next = bulk_level(index, s->level + 1);
		BTreeTupleSetDownLink(s->lowkey, oblkno);
		bulk_add(fi, heap, s->next, s->lowkey);
		pfree(s->lowkey);
		s->lowkey = CopyIndexTuple(oitup);

		BTPageGetOpaque(opage)->btpo_next = nblkno;
		BTPageGetOpaque(npage)->btpo_prev = oblkno;
		BTPageGetOpaque(npage)->btpo_next = P_NONE;
		bulk_write_page(index, opage, oblkno);
		last_off = P_FIRSTKEY;
	}

	/* the level's first item: a minus infinity low key */
	if (last_off == P_HIKEY)
	{
		s->lowkey = palloc0(sizeof(IndexTupleData));
		s->lowkey->t_info = sizeof(IndexTupleData);
		BTreeTupleSetNAtts(s->lowkey, 0, false);
	}
	last_off = OffsetNumberNext(last_off);
	bulk_page_add(npage, itupsz, itup, last_off, !isleaf && last_off == P_FIRSTKEY);
	s->page = npage;
	s->blkno = nblkno;
	s->lastoff = last_off;
}

/*
 * The rows come in key order: each leaf tuple must sort after the one
 * before it (and, in a unique index, differ from it).  Checked, not
 * assumed: a btree built from tuples out of order would answer wrongly.
 */
static void
bulk_check_order(FeedIndex *fi, IndexTuple itup)
{
	BulkLevel  *leaf = fi->leaf;
	TupleDesc	desc = RelationGetDescr(fi->index);
	int			nkeys = IndexRelationGetNumberOfKeyAttributes(fi->index);
	IndexTuple	prev;
	int			cmp = 0;
	bool		anynull = false;

	if (leaf == NULL || leaf->lastoff < P_FIRSTKEY)
		return;
	prev = (IndexTuple) PageGetItem(leaf->page, PageGetItemId(leaf->page, leaf->lastoff));
	for (int i = 1; i <= nkeys && cmp == 0; i++)
	{
		ScanKey		sk = &fi->inskey->scankeys[i - 1];
		bool		pnull;
		bool		inull;
		Datum		p = index_getattr(prev, i, desc, &pnull);
		Datum		v = index_getattr(itup, i, desc, &inull);

		anynull |= pnull || inull;
		if (pnull && inull)
			cmp = 0;
		else if (pnull)
			cmp = (sk->sk_flags & SK_BT_NULLS_FIRST) ? -1 : 1;
		else if (inull)
			cmp = (sk->sk_flags & SK_BT_NULLS_FIRST) ? 1 : -1;
		else
		{
			cmp = DatumGetInt32(FunctionCall2Coll(&sk->sk_func, sk->sk_collation, p, v));
			if (sk->sk_flags & SK_BT_DESC)
				INVERT_COMPARE_RESULT(cmp);
		}
	}
	if (cmp == 0)
		cmp = ItemPointerCompare(&prev->t_tid, &itup->t_tid);
	if (cmp >= 0)
		elog(ERROR, "index \"%s\": feed rows out of index order", RelationGetRelationName(fi->index));
	if (fi->info->ii_Unique && !(anynull && !fi->info->ii_NullsNotDistinct))
	{
		bool		equal = true;

		for (int i = 1; i <= nkeys && equal; i++)
		{
			bool		pnull;
			bool		inull;
			Datum		p = index_getattr(prev, i, desc, &pnull);
			Datum		v = index_getattr(itup, i, desc, &inull);

			if (pnull != inull)
				equal = false;
			else if (!pnull)
				equal = DatumGetInt32(FunctionCall2Coll(&fi->inskey->scankeys[i - 1].sk_func,
														fi->inskey->scankeys[i - 1].sk_collation, p, v)) == 0;
		}
		if (equal)
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("duplicate key value violates unique constraint \"%s\"",
							RelationGetRelationName(fi->index)),
					 errdetail("A feed opened two objections with the same key.")));
	}
}

/* the last page of each level, the metapage pointed at the root */
static void
bulk_finish(FeedIndex *fi)
{
	Relation	index = fi->index;
	BlockNumber rootblk = P_NONE;
	uint32		rootlevel = 0;
	Buffer		metabuf;
	BTMetaPageData *metad;

	if (fi->leaf == NULL)
		return;					/* no rows: the index stays empty */
	for (BulkLevel *s = fi->leaf; s != NULL; s = s->next)
	{
		if (s->next == NULL)
		{
			BTPageGetOpaque(s->page)->btpo_flags |= BTP_ROOT;
			rootblk = s->blkno;
			rootlevel = s->level;
		}
		else
		{
			BTreeTupleSetDownLink(s->lowkey, s->blkno);
			bulk_add(fi, NULL, s->next, s->lowkey);
		}
		bulk_slide_left(s->page);
		bulk_write_page(index, s->page, s->blkno);
		s->page = NULL;
	}

	/* every page is written and logged: now readers may find them */
	metabuf = ReadBuffer(index, BTREE_METAPAGE);
	LockBuffer(metabuf, BUFFER_LOCK_EXCLUSIVE);
	metad = BTPageGetMeta(BufferGetPage(metabuf));
	if (metad->btm_root != P_NONE)
		elog(ERROR, "index \"%s\" gained a root during a feed", RelationGetRelationName(index));
	START_CRIT_SECTION();
	metad->btm_root = rootblk;
	metad->btm_level = rootlevel;
	metad->btm_fastroot = rootblk;
	metad->btm_fastlevel = rootlevel;
	MarkBufferDirty(metabuf);
	if (RelationNeedsWAL(index))
		log_newpage_buffer(metabuf, true);
	END_CRIT_SECTION();
	UnlockReleaseBuffer(metabuf);
	/* this backend's cached metapage, if any, is stale */
	if (index->rd_amcache != NULL)
	{
		pfree(index->rd_amcache);
		index->rd_amcache = NULL;
	}
}

/* the index has never held a tuple: a metapage with no root, nothing else */
static bool
btree_never_used(Relation index)
{
	Buffer		metabuf;
	BTMetaPageData *metad;
	bool		empty;

	if (index->rd_rel->relam != BTREE_AM_OID ||
		RelationGetNumberOfBlocks(index) != 1)
		return false;
	metabuf = ReadBuffer(index, BTREE_METAPAGE);
	LockBuffer(metabuf, BUFFER_LOCK_SHARE);
	metad = BTPageGetMeta(BufferGetPage(metabuf));
	empty = metad->btm_magic == BTREE_MAGIC && metad->btm_version >= BTREE_VERSION &&
		metad->btm_root == P_NONE;
	UnlockReleaseBuffer(metabuf);
	return empty;
}

/*
 * Whether the rows' order is the index's: its first key column, ascending,
 * is the NHS number (distinct and ascending in the rows) or the identity
 * column (ascending as the sequence hands it out); no expressions
 */
static bool
index_in_row_order(Relation index, IndexInfo *info, AttrNumber nhs_att, AttrNumber id_att)
{
	AttrNumber	first = info->ii_IndexAttrNumbers[0];

	if (info->ii_Expressions != NIL || (index->rd_indoption[0] & INDOPTION_DESC) != 0)
		return false;
	return first == nhs_att || (id_att != InvalidAttrNumber && first == id_att);
}

PG_FUNCTION_INFO_V1(open_objections);

/*
 * caredata._open_objections(numbers, kind, purposes, effective_from, source):
 * one row a number, in the array's order (which must be strictly ascending);
 * the number of rows written, or NULL when the caller must INSERT instead
 */
Datum
open_objections(PG_FUNCTION_ARGS)
{
	ArrayType  *numbers_arr;
	Oid			nsp;
	Oid			relid;
	Relation	rel;
	TupleDesc	desc;
	TriggerDesc *trig;
	const char *supplied[] = {"nhs_number", "kind", "purposes", "effective_from", "source"};
	AttrNumber	atts[5];
	Datum		vals[5];
	AttrNumber	id_att = InvalidAttrNumber;
	Datum	   *numbers;
	bool	   *numbers_null;
	int			nnumbers;
	TypeCacheEntry *tce;
	RangeTblEntry *rte;
#if PG_VERSION_NUM >= 160000
	RTEPermissionInfo *perm;
#endif
	EState	   *estate;
	ResultRelInfo *rri;
	ExprContext *econtext;
	int			ndefaults = 0;
	AttrNumber *default_atts;
	ExprState **default_exprs;
	FeedIndex  *fidx;
	int			nidx;
	bool		any_bulk = false;
	TupleTableSlot **slots;
	BulkInsertState bistate;
	CommandId	cid;
	int64		written = 0;
	MemoryContext batch_cxt;
	MemoryContext oldcxt;

	for (int i = 1; i < 5; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("caredata._open_objections() needs a kind, purposes, a time and a source")));

	nsp = get_namespace_oid("caredata", false);
	relid = get_relname_relid("objection", nsp);
	if (!OidIsValid(relid))
		elog(ERROR, "caredata.objection is missing");
	rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	trig = rel->trigdesc;

	/* anything an INSERT would do row by row: the caller INSERTs */
	if (rel->rd_rel->relkind != RELKIND_RELATION ||
		(trig != NULL && (trig->trig_insert_before_row || trig->trig_insert_after_row ||
						  trig->trig_insert_instead_row || trig->trig_insert_new_table)) ||
		check_enable_rls(relid, InvalidOid, true) != RLS_NONE ||
		(desc->constr != NULL && desc->constr->has_generated_stored))
	{
		table_close(rel, RowExclusiveLock);
		PG_RETURN_NULL();
	}

	for (int i = 0; i < 5; i++)
	{
		atts[i] = attnameAttNum(rel, supplied[i], false);
		if (atts[i] == InvalidAttrNumber)
			elog(ERROR, "caredata.objection has no column \"%s\"", supplied[i]);
	}
	for (int i = 0; i < desc->natts; i++)
		if (TupleDescAttr(desc, i)->attidentity != '\0')
			id_att = i + 1;

	/* the caller's INSERT privilege on the columns it supplies */
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
#if PG_VERSION_NUM >= 160000
	perm = makeNode(RTEPermissionInfo);
	perm->relid = relid;
	perm->requiredPerms = ACL_INSERT;
	for (int i = 0; i < 5; i++)
		perm->insertedCols = bms_add_member(perm->insertedCols,
											atts[i] - FirstLowInvalidHeapAttributeNumber);
	rte->perminfoindex = 1;
	ExecCheckPermissions(list_make1(rte), list_make1(perm), true);
#else
	rte->requiredPerms = ACL_INSERT;
	for (int i = 0; i < 5; i++)
		rte->insertedCols = bms_add_member(rte->insertedCols,
										   atts[i] - FirstLowInvalidHeapAttributeNumber);
	ExecCheckRTPerms(list_make1(rte), true);
#endif

	/* the numbers, checked strictly ascending (the indexes rely on it) */
	numbers_arr = PG_ARGISNULL(0) ? NULL : PG_GETARG_ARRAYTYPE_P(0);
	tce = lookup_type_cache(TupleDescAttr(desc, atts[0] - 1)->atttypid, TYPECACHE_CMP_PROC_FINFO);
	if (!OidIsValid(tce->cmp_proc))
		elog(ERROR, "the NHS number type has no comparison function");
	if (numbers_arr == NULL)
		nnumbers = 0;
	else
	{
		if (ARR_ELEMTYPE(numbers_arr) != tce->type_id)
			elog(ERROR, "caredata._open_objections(): numbers of the wrong type");
		deconstruct_array(numbers_arr, tce->type_id, tce->typlen, tce->typbyval, tce->typalign,
						  &numbers, &numbers_null, &nnumbers);
	}
	for (int i = 0; i < nnumbers; i++)
		if (numbers_null[i] ||
			(i > 0 && DatumGetInt32(FunctionCall2Coll(&tce->cmp_proc_finfo, InvalidOid,
													  numbers[i - 1], numbers[i])) >= 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the NHS numbers to open must be distinct, not null and in ascending order")));
	vals[1] = PG_GETARG_DATUM(1);
	vals[2] = PG_GETARG_DATUM(2);
	vals[3] = PG_GETARG_DATUM(3);
	vals[4] = PG_GETARG_DATUM(4);

	/* the executor's state for one INSERT, as COPY FROM sets it up */
	estate = CreateExecutorState();
#if PG_VERSION_NUM >= 160000
	ExecInitRangeTable(estate, list_make1(rte), list_make1(perm));
#else
	ExecInitRangeTable(estate, list_make1(rte));
#endif
	rri = makeNode(ResultRelInfo);
	ExecInitResultRelation(estate, rri, 1);
	ExecOpenIndices(rri, false);
	estate->es_output_cid = cid = GetCurrentCommandId(true);
	econtext = GetPerTupleExprContext(estate);

	nidx = rri->ri_NumIndices;
	fidx = palloc0(sizeof(FeedIndex) * Max(nidx, 1));
	for (int i = 0; i < nidx; i++)
	{
		FeedIndex  *fi = &fidx[i];

		fi->index = rri->ri_IndexRelationDescs[i];
		fi->info = rri->ri_IndexRelationInfo[i];
		if (fi->info->ii_ExclusionOps != NULL ||
			(fi->info->ii_Unique && !fi->index->rd_index->indimmediate))
		{
			ExecCloseResultRelations(estate);
			ExecCloseRangeTableRelations(estate);
			FreeExecutorState(estate);
			table_close(rel, RowExclusiveLock);
			PG_RETURN_NULL();
		}
		if (fi->info->ii_Predicate != NIL)
			fi->predicate = ExecPrepareQual(fi->info->ii_Predicate, estate);
		fi->bulk = fi->info->ii_ReadyForInserts && nnumbers > 0 &&
			index_in_row_order(fi->index, fi->info, atts[0], id_att) &&
			btree_never_used(fi->index);
		any_bulk |= fi->bulk;
	}

	/*
	 * Building an index in place needs no writer and no VACUUM beside it
	 * until the transaction ends: EXCLUSIVE, which readers do not wait for,
	 * taken only if free now
	 */
	if (any_bulk)
	{
		if (ConditionalLockRelationOid(relid, ExclusiveLock))
		{
			for (int i = 0; i < nidx; i++)
				if (fidx[i].bulk && !btree_never_used(fidx[i].index))
					fidx[i].bulk = false;
		}
		else
			for (int i = 0; i < nidx; i++)
				fidx[i].bulk = false;
	}
	for (int i = 0; i < nidx; i++)
		if (fidx[i].bulk)
		{
			fidx[i].cxt = AllocSetContextCreate(CurrentMemoryContext, "caredata feed index build",
												ALLOCSET_DEFAULT_SIZES);
			oldcxt = MemoryContextSwitchTo(fidx[i].cxt);
			fidx[i].inskey = _bt_mkscankey(fidx[i].index, NULL);
			MemoryContextSwitchTo(oldcxt);
		}

	/* the other columns' defaults (the identity, recorded_at, recorded_by) */
	default_atts = palloc(sizeof(AttrNumber) * desc->natts);
	default_exprs = palloc(sizeof(ExprState *) * desc->natts);
	for (AttrNumber a = 1; a <= desc->natts; a++)
	{
		Node	   *def;
		bool		given = false;

		if (TupleDescAttr(desc, a - 1)->attisdropped)
			continue;
		for (int i = 0; i < 5; i++)
			given |= (atts[i] == a);
		if (given || (def = build_column_default(rel, a)) == NULL)
			continue;
		default_atts[ndefaults] = a;
		default_exprs[ndefaults] = ExecPrepareExpr((Expr *) expression_planner((Expr *) def), estate);
		ndefaults++;
	}

	/* before statement triggers (the preload check) */
	AfterTriggerBeginQuery();
	ExecBSInsertTriggers(estate, rri);

	slots = palloc(sizeof(TupleTableSlot *) * FEED_BATCH);
	for (int i = 0; i < FEED_BATCH; i++)
		slots[i] = table_slot_create(rel, &estate->es_tupleTable);
	bistate = GetBulkInsertState();
	batch_cxt = GetPerTupleMemoryContext(estate);

	/*
	 * From the first page of an index built in place to its metapage, a
	 * cancel waits (as in a critical section's neighbourhood): an error in
	 * between would leave the pages written so far unlinked, and VACUUM
	 * would then report them
	 */
	for (int i = 0; i < nidx; i++)
		if (fidx[i].bulk)
		{
			HOLD_INTERRUPTS();
			break;
		}
	for (int start = 0; start < nnumbers; start += FEED_BATCH)
	{
		int			n = Min(FEED_BATCH, nnumbers - start);

		CHECK_FOR_INTERRUPTS();
		oldcxt = MemoryContextSwitchTo(batch_cxt);
		for (int j = 0; j < n; j++)
		{
			TupleTableSlot *slot = slots[j];

			ExecClearTuple(slot);
			memset(slot->tts_isnull, true, sizeof(bool) * desc->natts);
			vals[0] = numbers[start + j];
			for (int i = 0; i < 5; i++)
			{
				slot->tts_values[atts[i] - 1] = vals[i];
				slot->tts_isnull[atts[i] - 1] = false;
			}
			for (int d = 0; d < ndefaults; d++)
				slot->tts_values[default_atts[d] - 1] =
					ExecEvalExpr(default_exprs[d], econtext, &slot->tts_isnull[default_atts[d] - 1]);
			ExecStoreVirtualTuple(slot);
			if (rel->rd_att->constr)
				ExecConstraints(rri, slot, estate);
		}
		table_multi_insert(rel, slots, n, cid, 0, bistate);

		/* the index tuples, in the rows' order */
		for (int j = 0; j < n; j++)
		{
			TupleTableSlot *slot = slots[j];

			econtext->ecxt_scantuple = slot;
			for (int i = 0; i < nidx; i++)
			{
				FeedIndex  *fi = &fidx[i];
				Datum		ivals[INDEX_MAX_KEYS];
				bool		inulls[INDEX_MAX_KEYS];

				if (!fi->info->ii_ReadyForInserts)
					continue;
				if (fi->predicate != NULL && !ExecQual(fi->predicate, econtext))
					continue;
				FormIndexDatum(fi->info, slot, estate, ivals, inulls);
				if (fi->bulk)
				{
					IndexTuple	itup;
					MemoryContext c = MemoryContextSwitchTo(fi->cxt);

					itup = index_form_tuple(RelationGetDescr(fi->index), ivals, inulls);
					itup->t_tid = slot->tts_tid;
					bulk_check_order(fi, itup);
					if (fi->leaf == NULL)
						fi->leaf = bulk_level(fi->index, 0);
					bulk_add(fi, rel, fi->leaf, itup);
					pfree(itup);
					MemoryContextSwitchTo(c);
				}
				else
					index_insert(fi->index, ivals, inulls, &slot->tts_tid, rel,
								 fi->info->ii_Unique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
								 false, fi->info);
			}
		}
		written += n;
		MemoryContextSwitchTo(oldcxt);
		ResetPerTupleExprContext(estate);
	}

	any_bulk = false;
	for (int i = 0; i < nidx; i++)
		if (fidx[i].bulk)
		{
			oldcxt = MemoryContextSwitchTo(fidx[i].cxt);
			bulk_finish(&fidx[i]);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextDelete(fidx[i].cxt);
			any_bulk = true;
		}
	if (any_bulk)
	{
		RESUME_INTERRUPTS();
		CHECK_FOR_INTERRUPTS();
	}
	FreeBulkInsertState(bistate);
	table_finish_bulk_insert(rel, 0);

	/* after statement triggers (a new register version) */
	ExecASInsertTriggers(estate, rri, NULL);
	AfterTriggerEndQuery(estate);

	ExecResetTupleTable(estate->es_tupleTable, false);
	ExecCloseResultRelations(estate);
	ExecCloseRangeTableRelations(estate);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	PG_RETURN_INT64(written);
}

/* an int64 array sorted in place (sort_template.h, as tuplesort's) */
#define ST_SORT sort_int64
#define ST_ELEMENT_TYPE int64
#define ST_COMPARE(a, b) ((*(a) > *(b)) - (*(a) < *(b)))
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* a growing int64 array (huge allocations allowed) */
typedef struct Int64Buf
{
	int64	   *v;
	int64		n;
	int64		cap;
	MemoryContext cxt;			/* where it lives (not SPI's context) */
} Int64Buf;

static void
int64buf_push(Int64Buf *b, int64 x)
{
	if (b->n == b->cap)
	{
		int64		cap = Max(b->cap * 2, 1024);

		if (b->v == NULL)
			b->v = MemoryContextAllocExtended(b->cxt ? b->cxt : CurrentMemoryContext,
											  cap * sizeof(int64), MCXT_ALLOC_HUGE);
		else
			b->v = repalloc_huge(b->v, cap * sizeof(int64));
		b->cap = cap;
	}
	b->v[b->n++] = x;
}

/* the text of a source column equals the feed's source */
static bool
source_matches(Datum d, text *source)
{
	text	   *t = DatumGetTextPP(d);

	return VARSIZE_ANY_EXHDR(t) == VARSIZE_ANY_EXHDR(source) &&
		memcmp(VARDATA_ANY(t), VARDATA_ANY(source), VARSIZE_ANY_EXHDR(t)) == 0;
}

/* the snapshot's rows, parsed as the executor hands them over */
typedef struct SnapshotReceiver
{
	DestReceiver pub;
	Int64Buf   *numbers;
	int64		rows_read;
	int64		invalid;
} SnapshotReceiver;

static bool
snapshot_receive(TupleTableSlot *slot, DestReceiver *self)
{
	SnapshotReceiver *r = (SnapshotReceiver *) self;
	bool		isnull;
	Datum		d = slot_getattr(slot, 1, &isnull);
	int64		v;

	r->rows_read++;
	if (isnull || !nhs_number_parse_text(DatumGetTextPP(d), &v))
		r->invalid++;
	else
		int64buf_push(r->numbers, v);
	if ((r->rows_read & 0xFFFF) == 0)
		CHECK_FOR_INTERRUPTS();
	return true;
}

static void
snapshot_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
snapshot_shutdown(DestReceiver *self)
{
}

static void
snapshot_destroy(DestReceiver *self)
{
}

PG_FUNCTION_INFO_V1(opt_out_changes);

/*
 * caredata._opt_out_changes(snapshot, nhs_column, kind, source, OUT rows_read,
 * OUT invalid, OUT duplicates, OUT distinct_valid, OUT ids, OUT numbers)
 */
Datum
opt_out_changes(PG_FUNCTION_ARGS)
{
	Oid			snapshot_rel = PG_GETARG_OID(0);
	Name		column = PG_GETARG_NAME(1);
	text	   *kind = PG_GETARG_TEXT_PP(2);
	text	   *source = PG_GETARG_TEXT_PP(3);
	TupleDesc	result_desc;
	Oid			nsp;
	Oid			relid;
	Oid			indexid;
	Relation	rel;
	Relation	index;
	TupleDesc	desc;
	AttrNumber	att_nhs,
				att_id,
				att_source,
				att_withdrawn;
	Oid			nhs_type;
	int16		nhs_len;
	bool		nhs_byval;
	char		nhs_align;
	Int64Buf	snap = {0};
	Int64Buf	open_ids = {0};
	Int64Buf	to_open = {0};
	ItemPointerData *later = NULL;
	int64		nlater = 0;
	int64		later_cap = 0;
	int64		rows_read = 0;
	int64		invalid = 0;
	int64		distinct = 0;
	int64		si = 0;
	char	   *query;
	Snapshot	mvcc;
	IndexScanDesc scan;
	ScanKeyData key;
	TupleTableSlot *slot;
	Buffer		vmbuf = InvalidBuffer;
	Datum		out[6];
	bool		out_null[6] = {false, false, false, false, false, false};
	Datum	   *elems;

	if (get_call_result_type(fcinfo, NULL, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	nsp = get_namespace_oid("caredata", false);
	relid = get_relname_relid("objection", nsp);
	indexid = get_relname_relid("objection_open", nsp);
	if (!OidIsValid(relid) || !OidIsValid(indexid))
		elog(ERROR, "caredata.objection or its objection_open index is missing");
	rel = table_open(relid, AccessShareLock);
	desc = RelationGetDescr(rel);

	/* read as the caller reads it (the SQL did): privilege, no row security */
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK ||
		check_enable_rls(relid, InvalidOid, true) != RLS_NONE)
	{
		table_close(rel, AccessShareLock);
		PG_RETURN_NULL();
	}
	att_nhs = attnameAttNum(rel, "nhs_number", false);
	att_id = attnameAttNum(rel, "id", false);
	att_source = attnameAttNum(rel, "source", false);
	att_withdrawn = attnameAttNum(rel, "withdrawn_at", false);
	index = index_open(indexid, AccessShareLock);
	/* the index the merge needs: (nhs_number, kind, ...) WHERE withdrawn_at IS NULL */
	if (att_nhs == InvalidAttrNumber || att_id == InvalidAttrNumber ||
		att_source == InvalidAttrNumber || att_withdrawn == InvalidAttrNumber ||
		index->rd_rel->relam != BTREE_AM_OID ||
		IndexRelationGetNumberOfKeyAttributes(index) < 2 ||
		index->rd_index->indkey.values[0] != att_nhs ||
		index->rd_index->indkey.values[1] != attnameAttNum(rel, "kind", false) ||
		(index->rd_indoption[0] & INDOPTION_DESC) != 0 ||
		RelationGetIndexPredicate(index) == NIL)
	{
		index_close(index, AccessShareLock);
		table_close(rel, AccessShareLock);
		PG_RETURN_NULL();
	}
	nhs_type = TupleDescAttr(desc, att_nhs - 1)->atttypid;
	get_typlenbyvalalign(nhs_type, &nhs_len, &nhs_byval, &nhs_align);

	/* 1. the snapshot, read once as the caller, parsed */
	query = psprintf("SELECT x.%s::pg_catalog.text FROM %s x",
					 quote_identifier(NameStr(*column)),
					 DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(snapshot_rel))));
	snap.cxt = CurrentMemoryContext;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	{
		SnapshotReceiver recv;
		SPIExecuteOptions options;

		memset(&recv, 0, sizeof(recv));
		recv.pub.receiveSlot = snapshot_receive;
		recv.pub.rStartup = snapshot_startup;
		recv.pub.rShutdown = snapshot_shutdown;
		recv.pub.rDestroy = snapshot_destroy;
		recv.pub.mydest = DestNone;
		recv.numbers = &snap;
		memset(&options, 0, sizeof(options));
		options.read_only = true;
		options.dest = (DestReceiver *) &recv;
		if (SPI_execute_extended(query, &options) < 0)
			elog(ERROR, "reading the snapshot failed");
		rows_read = recv.rows_read;
		invalid = recv.invalid;
	}
	SPI_finish();
	if (snap.n > 0)
		sort_int64(snap.v, snap.n);
	for (int64 i = 0; i < snap.n; i++)
		if (i == 0 || snap.v[i] != snap.v[distinct - 1])
			snap.v[distinct++] = snap.v[i];

	/*
	 * 2. the register's open objections of the kind, in NHS number order,
	 * merged with the snapshot as they come
	 */
	mvcc = GetActiveSnapshot();
	ScanKeyInit(&key, 2, BTEqualStrategyNumber, F_TEXTEQ, PointerGetDatum(kind));
	key.sk_collation = index->rd_indcollation[1];
	scan = index_beginscan(rel, index, mvcc, 1, 0);
	scan->xs_want_itup = true;
	index_rescan(scan, &key, 1, NULL, 0);
	slot = table_slot_create(rel, NULL);
	for (;;)
	{
		ItemPointer tid = index_getnext_tid(scan, ForwardScanDirection);
		int64		n;
		bool		isnull;
		bool		from_heap = false;
		Datum		id = (Datum) 0;
		Datum		src = (Datum) 0;

		if (tid == NULL)
			break;
		CHECK_FOR_INTERRUPTS();
		if (VM_ALL_VISIBLE(rel, ItemPointerGetBlockNumber(tid), &vmbuf))
			n = DatumGetInt64(index_getattr(scan->xs_itup, 1, scan->xs_itupdesc, &isnull));
		else
		{
			if (!index_fetch_heap(scan, slot))
				continue;		/* not visible to this snapshot */
			if (!slot_attisnull(slot, att_withdrawn))
				continue;
			n = DatumGetInt64(slot_getattr(slot, att_nhs, &isnull));
			id = slot_getattr(slot, att_id, &isnull);
			src = slot_getattr(slot, att_source, &isnull);
			from_heap = true;
		}
		while (si < distinct && snap.v[si] < n)
			int64buf_push(&to_open, snap.v[si++]);
		if (si < distinct && snap.v[si] == n)
		{
			si++;				/* held by both: unchanged */
			continue;
		}
		/* an open objection the snapshot no longer holds */
		if (from_heap)
		{
			if (source_matches(src, source))
				int64buf_push(&open_ids, DatumGetInt64(id));
		}
		else
		{
			if (nlater == later_cap)
			{
				later_cap = Max(later_cap * 2, 1024);
				later = later ? repalloc_huge(later, later_cap * sizeof(ItemPointerData))
					: palloc_extended(later_cap * sizeof(ItemPointerData), MCXT_ALLOC_HUGE);
			}
			later[nlater++] = *tid;
		}
	}
	while (si < distinct)
		int64buf_push(&to_open, snap.v[si++]);
	index_endscan(scan);
	if (BufferIsValid(vmbuf))
		ReleaseBuffer(vmbuf);

	/* the all-visible ones the snapshot dropped: their id and source */
	if (nlater > 0)
	{
		IndexFetchTableData *fetch = table_index_fetch_begin(rel);

		for (int64 i = 0; i < nlater; i++)
		{
			bool		call_again = false;
			bool		all_dead = false;
			bool		isnull;

			if (!table_index_fetch_tuple(fetch, &later[i], mvcc, slot, &call_again, &all_dead) ||
				!slot_attisnull(slot, att_withdrawn))
				continue;
			if (source_matches(slot_getattr(slot, att_source, &isnull), source))
				int64buf_push(&open_ids, DatumGetInt64(slot_getattr(slot, att_id, &isnull)));
		}
		table_index_fetch_end(fetch);
	}
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);

	/* ids in order, as the UPDATE reads them */
	if (open_ids.n > 0)
		sort_int64(open_ids.v, open_ids.n);

	out[0] = Int64GetDatum(rows_read);
	out[1] = Int64GetDatum(invalid);
	out[2] = Int64GetDatum(snap.n - distinct);
	out[3] = Int64GetDatum(distinct);
	if (open_ids.n == 0)
		out_null[4] = true;
	else
	{
		elems = palloc_extended(open_ids.n * sizeof(Datum), MCXT_ALLOC_HUGE);
		for (int64 i = 0; i < open_ids.n; i++)
			elems[i] = Int64GetDatum(open_ids.v[i]);
		out[4] = PointerGetDatum(construct_array(elems, open_ids.n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	}
	if (to_open.n == 0)
		out_null[5] = true;
	else
	{
		elems = palloc_extended(to_open.n * sizeof(Datum), MCXT_ALLOC_HUGE);
		for (int64 i = 0; i < to_open.n; i++)
			elems[i] = Int64GetDatum(to_open.v[i]);
		out[5] = PointerGetDatum(construct_array(elems, to_open.n, nhs_type, nhs_len, nhs_byval, nhs_align));
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(result_desc), out, out_null)));
}
