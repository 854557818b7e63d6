/*-------------------------------------------------------------------------
 *
 * set_shared.c
 *		One blocked NHS number set for every backend.
 *
 * Building a blocked set reads the whole register (6 s for 3M objections),
 * and each backend used to build its own: every new connection a BI tool
 * or a pooler opened paid it again on its first filtered query.  With
 * caredata in shared_preload_libraries, the first backend to build a set
 * for a register (one installation of the extension, at one version),
 * purpose, dataset and time interval copies it into
 * a dynamic shared memory segment (set_segment.c's layout), pins the
 * segment so it outlives the backend, and records it in a small registry in
 * shared memory; every other backend, and later connections, map that
 * segment read-only instead of building.  A newer register version replaces
 * the entry for the same purpose and dataset (the old segment goes when the
 * last backend using it lets go), and an entry of an earlier installation
 * of the extension in the same database (dropped and created again) goes
 * before any other; a full registry replaces its least recently used
 * entry.  Without preloading there is no registry, and each
 * backend builds its own, as before (set_cache.c says so once).
 *
 * Segments are readable by the server's processes only; the registry holds
 * handles no user can set or read (caredata.blocked_sets() shows admins
 * what each entry answers for, never a number).
 *
 * The shared memory hooks that reserve and find the registry are installed
 * by src/hooks.c.
 *
 * src/objection/set_shared.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "register.h"
#include "set_shared.h"

#define SHARED_SETS			8

typedef struct SharedSetEntry
{
	bool		used;
	dsm_handle	handle;
	Oid			database;		/* a register is one database's, and */
	StoredSetKey key;			/* one installation's (key.reg): version,
								 * purpose, dataset, interval */
	uint64		nkeys;
	uint64		bytes;
	TimestampTz built_at;
	uint64		uses;			/* backends that mapped it instead of building */
	uint64		last_used;
} SharedSetEntry;

typedef struct SharedSetRegistry
{
	LWLock	   *lock;
	uint64		clock;
	SharedSetEntry entries[SHARED_SETS];
} SharedSetRegistry;

static SharedSetRegistry *registry = NULL;

/* shmem_request_hook (src/hooks.c): the registry's space and lock */
void
shared_set_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(SharedSetRegistry)));
	RequestNamedLWLockTranche("caredata blocked sets", 1);
}

/* shmem_startup_hook (src/hooks.c): find or create the registry */
void
shared_set_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	registry = ShmemInitStruct("caredata blocked sets", sizeof(SharedSetRegistry), &found);
	if (!found)
	{
		memset(registry, 0, sizeof(SharedSetRegistry));
		registry->lock = &(GetNamedLWLockTranche("caredata blocked sets"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

bool
shared_set_available(void)
{
	return registry != NULL;
}

/*
 * Register versions count from 1 in every database and every installation
 * of the extension: a set answers for one database's one installation
 * (reg, register.h).
 */
static bool
entry_names(const SharedSetEntry *e, Oid reg, int64 version, const char *purpose, const char *dataset)
{
	return e->used && e->database == MyDatabaseId &&
		stored_key_names(&e->key, reg, version, purpose, dataset);
}

/*
 * The set another backend published for this register and version,
 * purpose, dataset and time, mapped for the rest of this backend's life, or
 * NULL.
 */
NhsSet *
shared_set_find(MemoryContext cxt, Oid reg, int64 version, const char *purpose, const char *dataset,
				TimestampTz at, TimestampTz *lo, TimestampTz *hi)
{
	dsm_handle	handle = DSM_HANDLE_INVALID;
	dsm_segment *seg;
	NhsSet	   *s;

	if (registry == NULL)
		return NULL;
	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	for (int i = 0; i < SHARED_SETS; i++)
	{
		SharedSetEntry *e = &registry->entries[i];

		if (entry_names(e, reg, version, purpose, dataset) && at >= e->key.lo && at < e->key.hi)
		{
			handle = e->handle;
			e->uses++;
			e->last_used = ++registry->clock;
			break;
		}
	}
	LWLockRelease(registry->lock);
	if (handle == DSM_HANDLE_INVALID)
		return NULL;

	seg = dsm_find_mapping(handle);
	if (seg == NULL)
	{
		ResourceOwner save_owner = CurrentResourceOwner;

		CurrentResourceOwner = NULL;
		seg = dsm_attach(handle);	/* NULL: replaced and gone meanwhile */
		CurrentResourceOwner = save_owner;
		if (seg == NULL)
			return NULL;
		dsm_pin_mapping(seg);
	}
	s = set_segment_read(seg, cxt, reg, version, purpose, dataset, at, lo, hi);
	return s;
}

/* does the registry hold a set for key (true without a registry: nothing to do) */
bool
shared_set_has(const SetKey *key)
{
	bool		found = false;

	if (registry == NULL)
		return true;
	LWLockAcquire(registry->lock, LW_SHARED);
	for (int i = 0; i < SHARED_SETS && !found; i++)
	{
		SharedSetEntry *e = &registry->entries[i];

		found = entry_names(e, key->reg, key->version, key->purpose, key->dataset) &&
			e->key.lo == key->lo && e->key.hi == key->hi;
	}
	LWLockRelease(registry->lock);
	return found;
}

/* offer a set this backend built to every other backend */
void
shared_set_publish(const SetKey *key, const NhsSet *set)
{
	dsm_segment *seg;
	int			victim = -1;
	dsm_handle	old = DSM_HANDLE_INVALID;
	uint64		nkeys,
				bytes;
	Oid			reg = key->reg;
	StoredSetKey stored;

	if (registry == NULL || !stored_key_set(&stored, key))
		return;
	seg = set_segment_create(key, set);
	if (seg == NULL)
		return;
	set_segment_size(seg, &nkeys, &bytes);
	dsm_pin_segment(seg);		/* it outlives this backend */

	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	for (int i = 0; i < SHARED_SETS; i++)
	{
		SharedSetEntry *e = &registry->entries[i];

		/* published meanwhile by another backend: keep theirs */
		if (entry_names(e, reg, key->version, key->purpose, key->dataset) && e->key.lo == key->lo && e->key.hi == key->hi)
		{
			LWLockRelease(registry->lock);
			dsm_unpin_segment(dsm_segment_handle(seg));
			dsm_detach(seg);
			return;
		}
	}
	/*
	 * The same purpose and dataset from an older version, an entry of an
	 * earlier installation (which nothing can use again), a free entry, or
	 * the least recently used
	 */
	{
		int			same = -1,
					stale = -1,
					free_entry = -1,
					lru = -1;

		for (int i = 0; i < SHARED_SETS; i++)
		{
			SharedSetEntry *e = &registry->entries[i];

			if (e->used && e->key.version < key->version &&
				entry_names(e, reg, e->key.version, key->purpose, key->dataset))
				same = i;
			else if (e->used && e->database == MyDatabaseId && e->key.reg != reg && stale < 0)
				stale = i;
			else if (!e->used && free_entry < 0)
				free_entry = i;
			else if (e->used && (lru < 0 || e->last_used < registry->entries[lru].last_used))
				lru = i;
		}
		victim = same >= 0 ? same : stale >= 0 ? stale : (free_entry >= 0 ? free_entry : lru);
	}
	{
		SharedSetEntry *e = &registry->entries[victim];

		if (e->used)
			old = e->handle;
		memset(e, 0, sizeof(SharedSetEntry));
		e->used = true;
		e->handle = dsm_segment_handle(seg);
		e->database = MyDatabaseId;
		e->key = stored;
		e->nkeys = nkeys;
		e->bytes = bytes;
		e->built_at = GetCurrentTimestamp();
		e->last_used = ++registry->clock;
	}
	LWLockRelease(registry->lock);
	/* the entry replaced: gone once the last backend mapping it lets go */
	if (old != DSM_HANDLE_INVALID)
		dsm_unpin_segment(old);
	/* this backend keeps its own copy */
	dsm_detach(seg);
}

/*
 * caredata.blocked_sets(): what the shared registry holds, for DBAs: each
 * set's register version, purpose, dataset, time interval, size, when it
 * was built and how many backends mapped it instead of building.
 */
PG_FUNCTION_INFO_V1(blocked_sets);
Datum
blocked_sets(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SharedSetEntry copy[SHARED_SETS];
	Oid			reg = objection_register_identity();

	InitMaterializedSRF(fcinfo, 0);
	if (registry == NULL)
		PG_RETURN_VOID();
	LWLockAcquire(registry->lock, LW_SHARED);
	memcpy(copy, registry->entries, sizeof(copy));
	LWLockRelease(registry->lock);
	for (int i = 0; i < SHARED_SETS; i++)
	{
		SharedSetEntry *e = &copy[i];
		Datum		values[9];
		bool		nulls[9] = {false};

		if (!e->used || e->database != MyDatabaseId || e->key.reg != reg)
			continue;
		values[0] = Int64GetDatum(e->key.version);
		values[1] = CStringGetTextDatum(e->key.purpose);
		values[2] = e->key.has_dataset ? CStringGetTextDatum(e->key.dataset) : (Datum) 0;
		nulls[2] = !e->key.has_dataset;
		values[3] = TimestampTzGetDatum(e->key.lo);
		values[4] = TimestampTzGetDatum(e->key.hi);
		values[5] = Int64GetDatum((int64) e->nkeys);
		values[6] = Int64GetDatum((int64) e->bytes);
		values[7] = TimestampTzGetDatum(e->built_at);
		values[8] = Int64GetDatum((int64) e->uses);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
