/*-------------------------------------------------------------------------
 *
 * set_segment.c
 *		A blocked NHS number set in a dynamic shared memory segment, as
 *		set_shared.c hands it from one backend to every other (parallel
 *		workers included).
 *
 * A segment holds a header (the key the set answers for, as fixed-size
 * text, and the sizes) and then the set's Bloom words and table slots,
 * copied from an NhsSet (nhs_set.h).  A reader maps the arrays in place:
 * the NhsSet it gets is a header in its own memory pointing into the
 * segment.  Who creates a segment owns it (no resource owner does): the
 * shared registry pins it for the server's life or until it is replaced.
 *
 * src/objection/set_segment.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/dsm.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "set_segment.h"

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

/* key := the stored form of a set's key; false when a text is too long */
bool
stored_key_set(StoredSetKey *dst, const SetKey *key)
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
 * creator detaches it, or pins it for every backend: set_shared.c), or
 * NULL when the server is out of segments.
 */
dsm_segment *
set_segment_create(const SetKey *key, const NhsSet *set)
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
