/*-------------------------------------------------------------------------
 *
 * parallel_set.c
 *		Handing a blocked NHS number set from a query's leader to its
 *		parallel workers.
 *
 * Owns one setting and the dynamic shared memory segments it names.
 * permitted() keeps its sets per backend (objection.c), and a parallel
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
 * src/parallel_set.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "storage/dsm.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "parallel_set.h"

#define SHARED_SET_MAGIC	0x43445331	/* "CDS1" */

typedef struct SharedSetHeader
{
	uint32		magic;
	StoredSetKey key;
	uint64		nkeys;
	uint64		bloom_words;
	uint64		nslots;
	/* then the Bloom words, then the slots */
} SharedSetHeader;

#define SHARED_BLOOM(h) ((uint64 *) ((char *) (h) + MAXALIGN(sizeof(SharedSetHeader))))
#define SHARED_SLOTS(h) ((uint32 *) (SHARED_BLOOM(h) + (h)->bloom_words))

static char *parallel_sets = NULL;

/* in the leader: what this transaction has exported, "handle handle ..." */
static StringInfoData exported;
static List *exported_keys = NIL;	/* SharedSetHeader copies, no arrays */
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

/* key := the stored form of a set's key; false when a text is too long */
bool
stored_key_set(StoredSetKey *dst, const ParallelSetKey *key)
{
	if (strlen(key->purpose) >= SET_KEY_TEXT_MAX ||
		(key->dataset != NULL && strlen(key->dataset) >= SET_KEY_TEXT_MAX))
		return false;
	memset(dst, 0, sizeof(StoredSetKey));
	dst->reg = key->reg;
	dst->version = key->version;
	strlcpy(dst->purpose, key->purpose, SET_KEY_TEXT_MAX);
	dst->has_dataset = key->dataset != NULL;
	if (key->dataset != NULL)
		strlcpy(dst->dataset, key->dataset, SET_KEY_TEXT_MAX);
	dst->lo = key->lo;
	dst->hi = key->hi;
	return true;
}

/*
 * Does a stored key answer for this register (installation and version),
 * purpose and dataset?
 */
bool
stored_key_names(const StoredSetKey *k, Oid reg, int64 version, const char *purpose, const char *dataset)
{
	return k->reg == reg && k->version == version && strcmp(k->purpose, purpose) == 0 &&
		(dataset == NULL ? !k->has_dataset : (k->has_dataset && strcmp(k->dataset, dataset) == 0));
}

/* the header of one of our segments, whole, or NULL */
static SharedSetHeader *
segment_header(dsm_segment *seg)
{
	SharedSetHeader *h = dsm_segment_address(seg);
	Size		len = dsm_segment_map_length(seg);

	if (len < MAXALIGN(sizeof(SharedSetHeader)) || h->magic != SHARED_SET_MAGIC ||
		len < MAXALIGN(sizeof(SharedSetHeader)) +
		h->bloom_words * sizeof(uint64) + h->nslots * sizeof(uint32))
		return NULL;
	return h;
}

/*
 * A new segment holding set, for key: owned by no resource owner (its
 * creator detaches it, or pins it for every backend: shared_set.c), or
 * NULL when the server is out of segments.
 */
dsm_segment *
set_segment_create(const ParallelSetKey *key, const NhsSet *set)
{
	ResourceOwner save_owner;
	SharedSetHeader *h;
	dsm_segment *seg;
	Size		size;
	StoredSetKey stored;

	if (!stored_key_set(&stored, key))
		return NULL;
	size = MAXALIGN(sizeof(SharedSetHeader)) +
		(set->bloom_mask + 1) * sizeof(uint64) + (set->slots_mask + 1) * sizeof(uint32);
	save_owner = CurrentResourceOwner;
	CurrentResourceOwner = NULL;
	seg = dsm_create(size, DSM_CREATE_NULL_IF_MAXSEGMENTS);
	CurrentResourceOwner = save_owner;
	if (seg == NULL)
		return NULL;
	h = dsm_segment_address(seg);
	memset(h, 0, sizeof(SharedSetHeader));
	h->magic = SHARED_SET_MAGIC;
	h->key = stored;
	h->nkeys = set->nkeys;
	h->bloom_words = set->bloom_mask + 1;
	h->nslots = set->slots_mask + 1;
	memcpy(SHARED_BLOOM(h), set->bloom, h->bloom_words * sizeof(uint64));
	memcpy(SHARED_SLOTS(h), set->slots, h->nslots * sizeof(uint32));
	return seg;
}

/*
 * The set a segment holds, mapped read-only in place (allocated in cxt:
 * only the NhsSet header), if it answers for this register and version,
 * purpose, dataset and time; else NULL.
 */
NhsSet *
set_segment_read(dsm_segment *seg, MemoryContext cxt, Oid reg, int64 version, const char *purpose,
				 const char *dataset, TimestampTz at, TimestampTz *lo, TimestampTz *hi)
{
	SharedSetHeader *h = segment_header(seg);
	NhsSet	   *s;

	if (h == NULL || !stored_key_names(&h->key, reg, version, purpose, dataset) || at < h->key.lo || at >= h->key.hi)
		return NULL;
	s = MemoryContextAllocZero(cxt, sizeof(NhsSet));
	s->nkeys = h->nkeys;
	s->bloom = SHARED_BLOOM(h);
	s->bloom_mask = h->bloom_words - 1;
	s->slots = SHARED_SLOTS(h);
	s->slots_mask = h->nslots - 1;
	*lo = h->key.lo;
	*hi = h->key.hi;
	return s;
}

/* the number of keys and the bytes of a segment's set, for monitoring */
void
set_segment_size(dsm_segment *seg, uint64 *nkeys, uint64 *bytes)
{
	SharedSetHeader *h = segment_header(seg);

	*nkeys = h ? h->nkeys : 0;
	*bytes = dsm_segment_map_length(seg);
}

/*
 * In the leader, before a parallel plan runs: put set in a segment and
 * name it in caredata.parallel_sets, unless this transaction already has.
 */
void
parallel_set_export(const ParallelSetKey *key, const NhsSet *set)
{
	ListCell   *lc;
	SharedSetHeader *h;
	dsm_segment *seg;
	MemoryContext old;

	/* settings cannot change while a parallel operation runs */
	if (IsParallelWorker() || IsInParallelMode())
		return;
	foreach(lc, exported_keys)
	{
		SharedSetHeader *e = lfirst(lc);

		if (stored_key_names(&e->key, key->reg, key->version, key->purpose, key->dataset) &&
			e->key.lo == key->lo && e->key.hi == key->hi)
		{
			/* name it again: a function's SET clause may have reset the setting */
			name_exported_segments();
			return;
		}
	}

	seg = set_segment_create(key, set);
	if (seg == NULL)
		return;					/* out of segments: workers build their own */
	h = dsm_segment_address(seg);

	old = MemoryContextSwitchTo(TopMemoryContext);
	if (exported.data == NULL)
		initStringInfo(&exported);
	appendStringInfo(&exported, "%s%u", exported.len > 0 ? " " : "", dsm_segment_handle(seg));
	exported_keys = lappend(exported_keys, memcpy(palloc(sizeof(SharedSetHeader)), h, sizeof(SharedSetHeader)));
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
			if (segment_header(seg) == NULL)
			{
				dsm_detach(seg);	/* not one of ours */
				continue;
			}
			dsm_pin_mapping(seg);	/* for the rest of this short-lived worker */
		}
		{
			NhsSet	   *s = set_segment_read(seg, cxt, reg, version, purpose, dataset, at, lo, hi);

			if (s != NULL)
				return s;
		}
	}
	return NULL;
}
