/*-------------------------------------------------------------------------
 *
 * set_parallel.c
 *		Handing a blocked NHS number set from a query's leader to its
 *		parallel workers.
 *
 * Owns one setting and the dynamic shared memory segments it names.
 * permitted() keeps its sets per backend (set_cache.c), and a parallel
 * worker is a new backend for every query: left alone, each worker of a
 * parallel scan of a protected table would read millions of blocked
 * numbers from the register before its first row, and the parallel plan
 * would be several times slower than the serial one.  So before a parallel
 * plan runs, the leader builds (or finds) the sets its permitted() calls
 * will use, copies each into a segment, and names the segments in the
 * setting caredata.parallel_sets, which PostgreSQL passes to every worker
 * with the rest of the leader's settings.  A worker that needs a set first
 * looks there, and uses a segment only if it was built from the same
 * register (installation and version), purpose and dataset for an interval
 * holding the time asked about; otherwise it builds its own, as any
 * backend does.
 *
 * The segments live until the leader's transaction ends (a transaction
 * callback detaches them), and the setting is transaction-local.  Only
 * superusers may set it (caredata sets it with a superuser's context,
 * whoever runs the query), so no user can point workers at a segment of
 * their choosing.
 *
 * The segment's layout is set_segment.c's.
 *
 * src/objection/set_parallel.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "fmgr.h"
#include "storage/dsm.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "set_parallel.h"
#include "set_segment.h"

static char *parallel_sets = NULL;
static bool parallel_handover = true;

/* in the leader: what this transaction has exported, "handle handle ..." */
static StringInfoData exported;
static List *exported_keys = NIL;	/* StoredSetKey copies */
static List *exported_segments = NIL;	/* dsm_segment *, detached at end */

static void
detach_exported_segments(void)
{
	ListCell   *lc;

	foreach(lc, exported_segments)
		dsm_detach((dsm_segment *) lfirst(lc));
	list_free(exported_segments);
	exported_segments = NIL;
}

static void
parallel_set_xact_callback(XactEvent event, void *arg)
{
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	/* the setting reverts by itself (GUC_ACTION_LOCAL); the segments go here */
	detach_exported_segments();
	list_free_deep(exported_keys);
	exported_keys = NIL;
	if (exported.data != NULL)
		resetStringInfo(&exported);
}

void
parallel_set_init(void)
{
	DefineCustomStringVariable("caredata.parallel_sets",
							   "Shared memory segments holding this query's blocked NHS number sets, for its parallel workers.",
							   "Set by caredata for the length of a transaction; not for users.",
							   &parallel_sets,
							   "",
							   PGC_SUSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   NULL, NULL, NULL);
	DefineCustomBoolVariable("caredata.parallel_handover",
							 "Hand a query's blocked NHS number sets from its leader to its parallel workers.",
							 "Changes speed only, never which rows a role sees; off, each worker builds or finds its own.",
							 &parallel_handover,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	RegisterXactCallback(parallel_set_xact_callback, NULL);
}

/* caredata.parallel_sets := the segments this transaction exported */
static void
name_exported_segments(void)
{
	/* with the superuser's context: users cannot set it, caredata can */
	(void) set_config_option("caredata.parallel_sets", exported.data, PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
}

/*
 * In the leader, before a parallel plan runs: put set in a segment and
 * name it in caredata.parallel_sets, unless this transaction already has.
 */
void
parallel_set_export(const SetKey *key, const NhsSet *set)
{
	ListCell   *lc;
	dsm_segment *seg;
	MemoryContext old;

	/* settings cannot change while a parallel operation runs */
	if (IsParallelWorker() || IsInParallelMode() || !parallel_handover)
		return;
	foreach(lc, exported_keys)
	{
		StoredSetKey *e = lfirst(lc);

		if (stored_key_names(e, key->reg, key->version, key->purpose, key->dataset) &&
			e->lo == key->lo && e->hi == key->hi)
		{
			/* name it again: a function's SET clause may have reset the setting */
			name_exported_segments();
			return;
		}
	}

	seg = set_segment_create(key, set);
	if (seg == NULL)
		return;					/* out of segments: workers build their own */

	old = MemoryContextSwitchTo(TopMemoryContext);
	if (exported.data == NULL)
		initStringInfo(&exported);
	appendStringInfo(&exported, "%s%u", exported.len > 0 ? " " : "", dsm_segment_handle(seg));
	exported_keys = lappend(exported_keys, memcpy(palloc(sizeof(StoredSetKey)), set_segment_key(seg), sizeof(StoredSetKey)));
	exported_segments = lappend(exported_segments, seg);
	MemoryContextSwitchTo(old);

	name_exported_segments();
}

/*
 * In a parallel worker: the leader's set for this register and version,
 * purpose, dataset and time, mapped read-only in place (allocated in cxt: only the
 * NhsSet header), or NULL.
 */
NhsSet *
parallel_set_import(MemoryContext cxt, Oid reg, int64 version, const char *purpose,
					const char *dataset, TimestampTz at, TimestampTz *lo, TimestampTz *hi)
{
	const char *p = parallel_sets;

	if (!IsParallelWorker() || p == NULL)
		return NULL;
	while (*p != '\0')
	{
		char	   *end;
		unsigned long handle = strtoul(p, &end, 10);
		dsm_segment *seg;

		if (end == p)
			break;
		p = end;
		while (*p == ' ')
			p++;
		seg = dsm_find_mapping((dsm_handle) handle);
		if (seg == NULL)
		{
			seg = dsm_attach((dsm_handle) handle);
			if (seg == NULL)
				continue;
			if (set_segment_key(seg) == NULL)
			{
				dsm_detach(seg);	/* not one of ours */
				continue;
			}
			dsm_pin_mapping(seg);	/* for the rest of this short-lived worker */
		}
		{
			NhsSet	   *s = set_segment_read(seg, cxt, reg, version, purpose, dataset, at, lo, hi);

			if (s != NULL)
			{
				set_segment_count_import(seg);
				return s;
			}
		}
	}
	return NULL;
}

/*
 * In the leader: how many parallel workers have used the sets this
 * transaction exported (caredata._parallel_set_imports(), for tests and
 * monitoring: it shows the hand-over works, not only that workers ran).
 */
uint64
parallel_set_imports(void)
{
	ListCell   *lc;
	uint64		n = 0;

	foreach(lc, exported_segments)
		n += set_segment_imports((dsm_segment *) lfirst(lc));
	return n;
}

PG_FUNCTION_INFO_V1(parallel_set_imports_sql);
Datum
parallel_set_imports_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64((int64) parallel_set_imports());
}
