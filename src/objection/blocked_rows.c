/*-------------------------------------------------------------------------
 *
 * blocked_rows.c
 *		Where a blocked set's patients' rows are in one table: what a
 *		sequential scan of that table reads for its older rows instead of
 *		testing them against the set.
 *
 * The national opt-out register holds millions of NHS numbers (a set of
 * 3M numbers is a 4 MB Bloom filter and a 16 MB table, nhs_set.h), and a
 * scan through the filter tests every row against the set: a hash, and for
 * a set larger than the CPU's cache a load from memory a row.  That is most
 * of what the filter costs (docs/benchmarks.md).  But a table's older rows
 * do not change: a backend that scans a table again and again can note once
 * where its blocked rows are, page by page (issue 28's 10M-row table: 500k
 * of them, 1.2 MB with the pages' index), and read that in page order, with
 * no hash and no random load.
 *
 * Its rule, which is what makes an answer from it the answer the whole set
 * gives (and the one permitted() gives):
 *
 *	 The horizon H is the xmin of a snapshot taken before the build began.
 *	 The build notes the position (page and line pointer) of every tuple
 *	 physically present in the table's file (its relfilenumber) when it was
 *	 read whose raw xmin is a normal transaction id that precedes H and
 *	 committed, visible or not to any snapshot (deleted ones included), and
 *	 whose NHS number the set holds.  A row is answered from the positions
 *	 only if its tuple's raw xmin is a normal transaction id that precedes
 *	 H, and every visible row of its page's is; every other page's rows are
 *	 tested against the whole set.  (A row whose writer rolled back is
 *	 visible to no snapshot; its columns are not even read, as they may not
 *	 match today's descriptor.)
 *
 * Why that holds.  A transaction whose id precedes H had ended before that
 * snapshot, so before the build: every tuple it wrote was on a page of the
 * file when the build read the file's length and then that page (under
 * its share lock), at the position it still has (a heap tuple never moves
 * within its file: pruning compacts a page's tuple data but keeps each
 * tuple's line pointer), and is still there unless pruned, which only
 * happens to a tuple no snapshot can see; a line pointer a pruned tuple
 * freed is reused only by a tuple written later, by a transaction whose id
 * does not precede H.  A heap tuple's xmin and data never change in place
 * (an UPDATE writes a new tuple with its writer's xmin, which does not
 * precede H: any transaction still running at the snapshot, or starting
 * after it, has an id at or after its xmin; subtransactions' ids follow
 * their parent's).  Freezing keeps the raw xmin (only pg_surgery and
 * pre-9.4 clusters write FrozenTransactionId, which is not normal, so the
 * whole set).  So any tuple a scan finds at a position with such an xmin,
 * under any snapshot, older or newer than the build's, is the tuple the
 * build read there, with the same number, and the set's answer for that
 * number is the one the build noted.  TRUNCATE, VACUUM FULL, CLUSTER and
 * rewriting ALTER TABLEs give the table a new file, and positions are kept
 * per file and per version of the table's pg_class row (every new file is
 * a new version, so a file number reused after the OID counter wrapped is
 * not taken for the file the positions were noted in; the transaction that
 * wrote the version uses none).  H is kept as a full transaction id: a
 * scan uses the positions only while the next transaction id is less than
 * 2^30 past H, so the 32-bit comparison of any xmin written since (at most
 * the next id) with H cannot wrap; older tuples that compare wrongly are
 * only sent to the whole set.  A register change gives a new set
 * (set_cache.c), and positions belong to their set.
 *
 * When: a backend builds a table's positions at the start of a sequential
 * scan of that table once its earlier scans with the same set have tested
 * half as many pages as the table has (so at the second whole scan; a scan
 * a LIMIT stops early counts only the pages it read):
 * it reads the table once more, in the scan's first row, with a bulk-read
 * ring.  Only for a set of at least caredata.filter_blocked_rows_min
 * numbers, and keeps them only if they take at most as much memory as the
 * set or work_mem, whichever is more (4 bytes a page, 2 a blocked row).
 * Never in a parallel query or on a standby (a standby's xmin is the
 * primary's replayed one: the reasoning above is made for a primary), never
 * for a temporary table.  Nothing about
 * them reaches a client: whether they were kept, or their size, would tell
 * how many of the table's rows are blocked, hidden or deleted ones
 * included (explain_guard.c hides the count of removed rows for the same
 * reason).  No message says it: the server's log names the table at DEBUG1;
 * caredata.filter_blocked_rows_min is a superuser's setting; the read goes
 * through every page whatever it finds (pg_statio_* count them).  Left:
 * timing (a later scan is faster with them), and
 * pg_backend_memory_contexts (superusers and pg_read_all_stats, which
 * docs/security.md tells a DBA not to grant to filtered roles).
 *
 * src/objection/blocked_rows.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "base/pg_compat.h"
#include "blocked_rows.h"

/*
 * A table's blocked rows are noted when the sequential scans through the
 * filter with its set have tested half as many pages as the table has (a
 * scan stopped early, by a LIMIT, counts only the pages it read; a page
 * without a row the scan returns is never tested, and a table extended in
 * bulk has a few empty pages at its end: so half, not all)
 */
#define ROWS_BUILD_AFTER_PAGES(nblocks)	((uint64) (nblocks) / 2)
/* tables a set notes blocked rows for */
#define ROWS_MAX_TABLES		16
/* how far past the horizon the next transaction id may be */
#define ROWS_XID_SPAN			(UINT64CONST(1) << 30)

static bool rows_enabled = true;
static int	rows_min_keys = 100000;

/* one table's blocked rows, in the set's memory */
typedef struct TableRows
{
	Oid			relid;
	Oid			relfile;		/* the file it was built from */
	TransactionId class_xmin;	/* and the version of its pg_class row */
	ItemPointerData class_tid;
	AttrNumber	attno;			/* the NHS number column */
	uint64		pages;			/* pages sequential scans have tested with
								 * the set (scan_lookahead.c counts them) */
	bool		useless;		/* built once: not worth its memory */
	FullTransactionId horizon;
	BlockedRows *rows;			/* NULL: not built */
	MemoryContext cxt;			/* rows' */
} TableRows;

typedef struct SetTables
{
	int			n;
	TableRows tables[ROWS_MAX_TABLES];
} SetTables;

static void
rows_retire(TableRows *t)
{
	/* a query may still hold it */
	if (t->cxt != NULL)
		blocked_set_free_at_xact_end(t->cxt);
	t->cxt = NULL;
	t->rows = NULL;
	t->useless = false;
	t->pages = 0;
}

#ifdef CAREDATA_SCAN_LOOKAHEAD
/*
 * What a build made, for the server's log only, at DEBUG1: which of the
 * two a client saw would tell it how many of the table's rows are blocked
 * (deleted rows and rows row security hides included).
 */
static void
rows_log(Relation rel, const char *what)
{
	if (log_min_messages <= DEBUG1)
		ereport(LOG_SERVER_ONLY,
				(errmsg_internal("objection filter: table \"%s\" %s",
								 RelationGetRelationName(rel), what)));
}

/*
 * Has the transaction that wrote this tuple committed?  Asked only of a
 * normal xmin that precedes the horizon, so of a transaction that has
 * ended: the answer is final (heapam asks TransactionIdIsInProgress() first
 * only for transactions that may still be running).
 */
static bool
rows_xmin_committed(HeapTupleHeader tup)
{
	if (HeapTupleHeaderXminCommitted(tup))
		return true;			/* hinted, or frozen */
	if (HeapTupleHeaderXminInvalid(tup))
		return false;
	return TransactionIdDidCommit(HeapTupleHeaderGetRawXmin(tup));
}

/*
 * Read rel's file and note the position of every tuple the rule of the
 * file header answers for whose number full holds; horizon is the scan
 * snapshot's xmin as a full id.
 *
 * The tuples read are those whose xmin is normal, precedes the horizon and
 * committed, visible or not (deleted ones included): every other tuple is
 * either one no snapshot sees (its writer rolled back) or one a scan tests
 * against the whole set (its xmin does not precede the horizon).  A tuple
 * whose writer rolled back is not even read: its columns need not match
 * today's descriptor (an ALTER TABLE ADD COLUMN rolled back with it), so
 * reading them could run off the page.
 */
static void
rows_build(TableRows *t, BlockedSet *s, const NhsSet *full, Relation rel,
		   AttrNumber attno, FullTransactionId horizon)
{
	MemoryContext cxt;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	TransactionId h = XidFromFullTransactionId(horizon);
	BufferAccessStrategy strategy;
	BlockNumber nblocks;
	Size		room = Max(nhs_set_bytes(full), (Size) work_mem * 1024);
	uint64		n = 0;
	uint64		max = 4096;
	bool		worth = true;
	BlockedRows *rows;

	/* after the horizon's snapshot: every page its ended writers used */
	nblocks = RelationGetNumberOfBlocks(rel);
	/* the pages' index alone too large: known from the table's size */
	if ((uint64) nblocks + 1 > room / sizeof(uint32))
	{
		t->useless = true;
		rows_log(rel, "is too large to note its blocked rows");
		return;
	}
	room -= ((Size) nblocks + 1) * sizeof(uint32);
	/* first[] counts blocked rows in 32 bits */
	room = Min(room, (Size) PG_UINT32_MAX * sizeof(OffsetNumber));
	max = Min(max, room / sizeof(OffsetNumber));

	/* under the caller's context until it is kept: an error frees it */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "caredata table's blocked rows",
								ALLOCSET_DEFAULT_SIZES);
	rows = MemoryContextAlloc(cxt, sizeof(BlockedRows));
	rows->nblocks = nblocks;
	rows->first = MemoryContextAllocHuge(cxt, ((Size) nblocks + 1) * sizeof(uint32));
	rows->offsets = MemoryContextAlloc(cxt, max * sizeof(OffsetNumber));

	/*
	 * Every page, even once the positions are known not to be worth
	 * keeping: how much of the table was read (pg_statio_*) must not tell
	 * that.  (Whether the pages' index alone fits, above, depends only on
	 * the table's size, the set's and work_mem.)
	 */
	strategy = GetAccessStrategy(BAS_BULKREAD);
	for (BlockNumber blkno = 0; blkno < nblocks; blkno++)
	{
		Buffer		buf;
		Page		page;
		OffsetNumber maxoff;

		CHECK_FOR_INTERRUPTS();
		rows->first[blkno] = (uint32) n;
		buf = ReadBufferExtended(rel, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		maxoff = PageIsNew(page) ? InvalidOffsetNumber : PageGetMaxOffsetNumber(page);
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off = OffsetNumberNext(off))
		{
			ItemId		lp = PageGetItemId(page, off);
			HeapTupleData tuple;
			bool		isnull;
			Datum		d;

			if (!ItemIdIsNormal(lp))
				continue;
			tuple.t_data = (HeapTupleHeader) PageGetItem(page, lp);
			if (!blocked_rows_cover(HeapTupleHeaderGetRawXmin(tuple.t_data), h) ||
				!rows_xmin_committed(tuple.t_data))
				continue;
			tuple.t_len = ItemIdGetLength(lp);
			/*
			 * heap_getattr() less its check of composite datums (it calls
			 * heap_datum_check(), which minor releases before 15.20 lack:
			 * test/release/deb_chroot.sh); a tuple on a page is not one
			 */
			if (attno > (int) HeapTupleHeaderGetNatts(tuple.t_data))
				d = getmissingattr(tupdesc, attno, &isnull);
			else
				d = fastgetattr(&tuple, attno, tupdesc, &isnull);
			/*
			 * every tuple tested, even once the positions are known not to
			 * be worth keeping: the read's time must not tell that either
			 */
			if (isnull || !nhs_set_contains(full, DatumGetInt64(d)) || !worth)
				continue;
			if (n == max)
			{
				if (max >= room / sizeof(OffsetNumber))
				{
					/* so many blocked rows: the whole set is smaller */
					worth = false;
					continue;
				}
				max = Min(max * 2, room / sizeof(OffsetNumber));
				rows->offsets = repalloc_huge(rows->offsets, max * sizeof(OffsetNumber));
			}
			rows->offsets[n++] = off;
		}
		UnlockReleaseBuffer(buf);
	}
	FreeAccessStrategy(strategy);
	rows->first[nblocks] = (uint32) n;

	if (!worth)
	{
		MemoryContextDelete(cxt);
		t->useless = true;
		rows_log(rel, "has too many blocked rows to note");
		return;
	}
	/* named by the file it answers for (pg_backend_memory_contexts.ident) */
	{
		char	   *ident = MemoryContextAlloc(cxt, 16);

		snprintf(ident, 16, "%u", CAREDATA_REL_FILE(rel));
		MemoryContextSetIdentifier(cxt, ident);
	}
	MemoryContextSetParent(cxt, s->cxt);
	t->cxt = cxt;
	t->rows = rows;
	t->horizon = horizon;
	rows_log(rel, "has its blocked rows noted");
}
#endif

#ifdef CAREDATA_SCAN_LOOKAHEAD
/*
 * The version of rel's pg_class row: its raw xmin and place, as plpgsql
 * keys a compiled function to its pg_proc row.  Every change of a table's
 * file writes a new version of the row (a regular update, never in place),
 * so positions noted for one version are not used for a file that has the
 * same number after the OID counter wrapped (truncated and rewritten back
 * to it, with no scan of the table in between to see the other number).
 * In-place updates (VACUUM's and ANALYZE's statistics) keep the version.
 * False while this transaction wrote the row itself (it could write the
 * file again without a new xmin), and for no row (xmin and place invalid).
 */
static bool
rows_class_version(Relation rel, TransactionId *xmin, ItemPointerData *tid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(RelationGetRelid(rel)));
	bool		ok;

	*xmin = InvalidTransactionId;
	ItemPointerSetInvalid(tid);
	if (!HeapTupleIsValid(tup))
		return false;
	*xmin = HeapTupleHeaderGetRawXmin(tup->t_data);
	*tid = tup->t_self;
	ok = !TransactionIdIsCurrentTransactionId(*xmin);
	ReleaseSysCache(tup);
	return ok;
}
#endif

const BlockedRows *
blocked_rows_for_scan(BlockedSet *s, const NhsSet *full, Relation rel, AttrNumber attno,
					  Snapshot snap, BlockNumber nblocks, TransactionId *horizon,
					  uint64 **pages)
{
#ifdef CAREDATA_SCAN_LOOKAHEAD
	SetTables *all;
	TableRows *t = NULL;
	FullTransactionId next;
	TransactionId class_xmin;
	ItemPointerData class_tid;
	bool		class_ok;

	*pages = NULL;
	if (!rows_enabled || full->nkeys == 0 || full->nkeys < (uint64) rows_min_keys ||
		IsParallelWorker() || IsInParallelMode() || RecoveryInProgress() ||
		rel == NULL || rel->rd_tableam != GetHeapamTableAmRoutine() ||
		rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP ||
		snap == NULL || snap->snapshot_type != SNAPSHOT_MVCC ||
		!TransactionIdIsNormal(snap->xmin))
		return NULL;

	if (s->blocked_rows == NULL)
		s->blocked_rows = MemoryContextAllocZero(s->cxt, sizeof(SetTables));
	all = (SetTables *) s->blocked_rows;
	for (int i = 0; i < all->n; i++)
		if (all->tables[i].relid == RelationGetRelid(rel) && all->tables[i].attno == attno)
			t = &all->tables[i];
	if (t == NULL)
	{
		if (all->n == ROWS_MAX_TABLES)
			return NULL;
		t = &all->tables[all->n++];
		t->relid = RelationGetRelid(rel);
		t->attno = attno;
		t->relfile = CAREDATA_REL_FILE(rel);
	}
	if (t->relfile != CAREDATA_REL_FILE(rel))
	{
		/* a new file: the old one's positions say nothing about it */
		rows_retire(t);
		t->relfile = CAREDATA_REL_FILE(rel);
	}
	class_ok = rows_class_version(rel, &class_xmin, &class_tid);
	if (t->rows != NULL &&
		(!TransactionIdEquals(t->class_xmin, class_xmin) ||
		 !ItemPointerEquals(&t->class_tid, &class_tid)))
		rows_retire(t);			/* the table's row changed: maybe its file */
	if (!class_ok)
		return NULL;

	next = ReadNextFullTransactionId();
	if (t->rows != NULL &&
		U64FromFullTransactionId(next) - U64FromFullTransactionId(t->horizon) >= ROWS_XID_SPAN)
	{
		rows_retire(t);		/* built again once as many pages are read */
	}
	*pages = &t->pages;
	if (t->rows == NULL && !t->useless &&
		t->pages >= ROWS_BUILD_AFTER_PAGES(nblocks))
	{
		/* snap's xmin, which precedes next, as a full id */
		uint32		epoch = EpochFromFullTransactionId(next);
		FullTransactionId h;

		if (snap->xmin > XidFromFullTransactionId(next))
			epoch--;
		h = FullTransactionIdFromEpochAndXid(epoch, snap->xmin);
		if (U64FromFullTransactionId(next) - U64FromFullTransactionId(h) < ROWS_XID_SPAN / 2)
		{
			t->class_xmin = class_xmin;
			t->class_tid = class_tid;
			rows_build(t, s, full, rel, attno, h);
		}
	}
	if (t->rows == NULL)
		return NULL;
	*horizon = XidFromFullTransactionId(t->horizon);
	return t->rows;
#else
	return NULL;
#endif
}

void
blocked_rows_init(void)
{
	DefineCustomBoolVariable("caredata.filter_blocked_rows",
							 "Note where a table's blocked rows are, for its older rows.",
							 "Changes speed and memory only, never which rows a role sees: on, a backend whose sequential scans through the objection filter have tested half a table's pages reads the table once more and keeps the positions of its blocked rows.",
							 &rows_enabled,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("caredata.filter_blocked_rows_min",
							"The fewest blocked numbers a set must hold for a table's blocked rows to be noted.",
							"Changes speed and memory only, never which rows a role sees.",
							&rows_min_keys,
							100000,
							0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
}
