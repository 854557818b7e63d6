/*-------------------------------------------------------------------------
 *
 * set_cache.c
 *		The sets of blocked NHS numbers a backend keeps for permitted().
 *
 * For one (register, version, purpose, dataset) the blocked NHS numbers at
 * a time t are the same for every t in an interval [lo, hi) bounded by the
 * nearest effective/withdrawal/exemption times around t.  A backend keeps a
 * few such sets (nhs_set.h) and reuses them for every query while the
 * register and version its snapshot sees are unchanged and t stays in the
 * interval (the register's identity: register.h).  A set comes from
 * another backend through shared memory (set_shared.c), or is built here
 * by running caredata.blocked_nhs_numbers() as the register's owner, then
 * offered to the others.  A parallel query's workers find their leader's
 * set the same way: before the plan runs, the leader makes sure the
 * registry holds it (blocked_set_share()).  An earlier hand-over of its
 * own, a segment per query named in a setting, was measured slower than
 * the registry (bench/objection_filter.sql, docs/benchmarks.md) and went.  Sets evicted while a query may still hold them
 * are freed at the end of the transaction.
 *
 * Its memory: each set has a memory context of its own under
 * TopMemoryContext (a set from a segment: only the NhsSet header, pointing
 * into the mapped segment, and, once a long scan has asked for it, the
 * backend's own copy of the arrays: blocked_set_for_scan()).
 *
 * src/objection/set_cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/params.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "set_cache.h"
#include "set_shared.h"

#define MAX_CACHED_SETS		4

/* caredata.filter_local_copy: see blocked_set_for_scan() */
bool		blocked_set_local_enabled = true;


static BlockedSet *sets[MAX_CACHED_SETS];
static bool said_not_shared = false;
static uint64 use_clock = 0;

/*
 * Memory a query may still hold when it is let go (a set evicted while
 * another call site of the same query uses it, a table's blocked rows
 * noted for a set when its file changed: blocked_rows.c) is freed at the
 * end of the transaction, not when it is let go.
 */
static List *graveyard = NIL;
static bool xact_callback_registered = false;

static void
objection_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
		return;
	foreach(lc, graveyard)
		MemoryContextDelete((MemoryContext) lfirst(lc));
	list_free(graveyard);
	graveyard = NIL;
}

/* free cxt (and its children) at the end of the transaction */
void
blocked_set_free_at_xact_end(MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	if (!xact_callback_registered)
	{
		RegisterXactCallback(objection_xact_callback, NULL);
		xact_callback_registered = true;
	}
	MemoryContextSetParent(cxt, TopMemoryContext);
	graveyard = lappend(graveyard, cxt);
	MemoryContextSwitchTo(old);
}

/* a DestReceiver that appends the first column, int8, to a growing array */
typedef struct KeyCollector
{
	DestReceiver pub;
	int64	   *keys;			/* in the context that was current at start */
	uint64		n;
	uint64		max;
} KeyCollector;

static bool
collect_key(TupleTableSlot *slot, DestReceiver *self)
{
	KeyCollector *kc = (KeyCollector *) self;
	bool		isnull;
	Datum		d = slot_getattr(slot, 1, &isnull);

	if (isnull)
		return true;
	if (kc->n == kc->max)
	{
		kc->max *= 2;
		kc->keys = repalloc_huge(kc->keys, kc->max * sizeof(int64));
	}
	kc->keys[kc->n++] = DatumGetInt64(d);
	return true;
}

static void
collect_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
collect_noop(DestReceiver *self)
{
}

/*
 * Build the blocked set for (purpose, dataset) at time at, under the
 * active snapshot, by running caredata.blocked_nhs_numbers().
 */
static BlockedSet *
build_set(Oid reg, int64 version, const char *purpose, const char *dataset, TimestampTz at)
{
	/* under the caller's context until it is complete: an error frees it */
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "caredata objection set",
											  ALLOCSET_DEFAULT_SIZES);
	BlockedSet *s = MemoryContextAllocZero(cxt, sizeof(BlockedSet));
	char	   *args;
	const char *source;
	bool		isnull;
	uint64		nkeys;
	int64	   *keys;
	SPIExecuteOptions options;
	KeyCollector collector;

	s->cxt = cxt;
	s->reg = reg;
	s->version = version;
	strlcpy(s->purpose, purpose, sizeof(s->purpose));
	s->dataset = dataset ? MemoryContextStrdup(cxt, dataset) : NULL;

	/* any backend, parallel workers included: one another backend published */
	s->members = shared_set_find(cxt, reg, version, purpose, dataset, at, &s->lo, &s->hi);
	if (s->members != NULL)
	{
		s->shared = true;
		MemoryContextSetParent(cxt, TopMemoryContext);
		return s;
	}
	if (!shared_set_available() && !said_not_shared)
	{
		ereport(NOTICE,
				(errmsg("caredata is not preloaded: this connection builds its own blocked NHS number set"),
				 errhint("Add caredata to shared_preload_libraries so that every connection shares one.")));
		said_not_shared = true;
	}
	collector.keys = palloc(65536 * sizeof(int64));
	collector.n = 0;
	collector.max = 65536;

	/*
	 * The arguments are written into the statements as literals, so that
	 * the planner inlines the SQL function as for constants.  Where the
	 * register is a Citus reference table, Citus refuses the SQL function
	 * (it reaches the register through parameters): its twin with literals
	 * is run instead (src/citus/citus.sql, docs/scale-out.md).  The time is
	 * written in ISO form, which reads back the same whatever DateStyle
	 * says.
	 */
	source = catalog_is_citus("objection") ? "caredata._blocked_nhs_numbers_citus" : "caredata.blocked_nhs_numbers";
	args = psprintf("%s, %s, %s::pg_catalog.timestamptz",
					quote_literal_cstr(purpose),
					dataset ? quote_literal_cstr(dataset) : "NULL",
					quote_literal_cstr(timestamptz_to_str(at)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* the interval over which the answer is constant, and its size */
	if (SPI_execute(psprintf("SELECT lo, hi FROM caredata.blocked_interval(%s)", args), true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "caredata.blocked_interval failed");
	s->lo = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull)
		s->lo = DT_NOBEGIN;
	s->hi = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (isnull)
		s->hi = DT_NOEND;

	/*
	 * One-shot; each row goes straight into the key array, not through an
	 * SPI tuple table.
	 */
	memset(&options, 0, sizeof(options));
	options.read_only = true;
	collector.pub.receiveSlot = collect_key;
	collector.pub.rStartup = collect_startup;
	collector.pub.rShutdown = collect_noop;
	collector.pub.rDestroy = collect_noop;
	collector.pub.mydest = DestNone;
	options.dest = &collector.pub;
	/* rows sent to a DestNone receiver report SPI_OK_UTILITY */
	if (SPI_execute_extended(psprintf("SELECT nhs_number::pg_catalog.int8 FROM %s(%s)", source, args),
							 &options) < 0)
		elog(ERROR, "caredata.blocked_nhs_numbers failed");
	keys = collector.keys;
	nkeys = collector.n;
	SPI_finish();
	s->members = nhs_set_build(cxt, keys, nkeys);
	pfree(keys);
	blocked_set_share(s);
	MemoryContextSetParent(cxt, TopMemoryContext);
	return s;
}

/*
 * Offer s to every backend, parallel workers included, unless the shared
 * registry holds it already or this transaction has written: then it may
 * hold register changes no one else can see yet (or ever, if it rolls
 * back), and would only take a registry entry (a parallel worker of such a
 * transaction builds its own, under the leader's snapshot).
 */
void
blocked_set_share(const BlockedSet *s)
{
	SetKey		key;

	if (IsParallelWorker() || TransactionIdIsValid(GetTopTransactionIdIfAny()))
		return;
	blocked_set_key(s, &key);
	if (!shared_set_has(&key))
		shared_set_publish(&key, s->members);
}

BlockedSet *
blocked_set_find(Oid reg, int64 version, const char *purpose, const char *dataset, TimestampTz at)
{
	int			victim = 0;

	for (int i = 0; i < MAX_CACHED_SETS; i++)
	{
		BlockedSet *s = sets[i];

		if (s == NULL)
		{
			victim = i;
			continue;
		}
		if (s->reg == reg && s->version == version && strcmp(s->purpose, purpose) == 0 &&
			((s->dataset == NULL && dataset == NULL) ||
			 (s->dataset && dataset && strcmp(s->dataset, dataset) == 0)) &&
			at >= s->lo && at < s->hi)
		{
			s->last_used = ++use_clock;
			return s;
		}
		if (sets[victim] != NULL && s->last_used < sets[victim]->last_used)
			victim = i;
	}

	{
		BlockedSet *s = NULL;

		AS_REGISTER_OWNER(s = build_set(reg, version, purpose, dataset, at));
		if (sets[victim] != NULL)
			blocked_set_free_at_xact_end(sets[victim]->cxt);
		sets[victim] = s;
		s->last_used = ++use_clock;
		return s;
	}
}

/*
 * The copy pays for itself once this backend has scanned this many times
 * the set's bytes of table with it (the copy costs 10-50 ms for 3M
 * numbers on issue 28's VM, a scan of 422 MB saves about 60 ms).
 */
#define LOCAL_COPY_SCAN_FACTOR	8

/* a sequential scan of a table of rel_bytes is about to probe s */
void
blocked_set_count_scan(BlockedSet *s, uint64 rel_bytes)
{
	s->scanned += rel_bytes;
}

/*
 * The set a sequential scan should probe.  A set from the shared registry
 * lives in dynamic shared memory, on small pages: probed at random row
 * after row, its 16 MB table (3M numbers) and 4 MB Bloom filter cost a TLB
 * miss, and on a VM a nested page walk, for most probes that leave the
 * cache.  Once this backend has scanned LOCAL_COPY_SCAN_FACTOR times the
 * set's bytes of table with it (the scan now starting included), it makes
 * its own copy, once, and keeps it with the set, on transparent huge pages
 * where the kernel gives them (nhs_set_copy()): issue 28 measured the
 * 10M-row scan's filter 1.32x -> 1.23x the unfiltered scan.  Before that,
 * for a set built here (its arrays are the backend's already), in a
 * parallel worker (it lives for one query, so each would copy the set
 * again for every query: with 2 workers that measured no faster than the
 * leader's copy alone, 1.38x against 1.36x the unfiltered parallel scan,
 * 1.47x without any copy), or with caredata.filter_local_copy = off:
 * members.  The copy holds the same numbers, so the answers are the same.
 */
const NhsSet *
blocked_set_for_scan(BlockedSet *s)
{
	if (s->local != NULL && blocked_set_local_enabled)
		return s->local;
	if (!s->shared || !blocked_set_local_enabled || s->members->nkeys == 0 ||
		IsParallelWorker() ||
		s->scanned / LOCAL_COPY_SCAN_FACTOR < nhs_set_bytes(s->members))
		return s->members;
	s->local = nhs_set_copy(s->cxt, s->members);
	return s->local;
}

void
blocked_set_init(void)
{
	DefineCustomBoolVariable("caredata.filter_local_copy",
							 "Give long sequential scans through the objection filter this backend's own copy of a shared blocked set.",
							 "Changes speed and memory only, never which rows a role sees: on, a backend whose filtered sequential scans have read 8 times a shared set's bytes of table keeps a copy of it (20 MB for 3M numbers) on huge pages.",
							 &blocked_set_local_enabled,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}
