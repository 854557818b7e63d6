/*-------------------------------------------------------------------------
 *
 * nhs_set.c
 *		Building the immutable NHS number set (see nhs_set.h).
 *
 * Sizes, measured in bench/objection_filter.sql (3M keys, probes from a
 * table scan): 8 bits of Bloom filter per key, rounded up to a power of
 * two words (4 MB for 3M keys: 11 bits per key, about 1.3% false
 * positives), and a table of 32-bit entries at most 3/4 full (16 MB for 3M
 * keys).  The Bloom word is the only memory most probes touch.
 *
 * src/objection/nhs_set.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/mman.h>

#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "nhs_set.h"

#define BLOOM_BITS_PER_KEY	8

/* caredata.bloom_filter: off, a set answers from its table alone */
bool		nhs_set_bloom_enabled = true;

/* a Bloom word that lets every key through: the Bloom layer switched off */
static const uint64 bloom_all_ones = ~UINT64CONST(0);

/*
 * Zeroed memory for a probe array, in cxt (so that it shows in
 * pg_backend_memory_contexts), starting on a 2 MB boundary and, where the
 * kernel offers it, advised onto transparent huge pages: a set probed at
 * random from a table scan pays a TLB miss, on this VM a nested page walk,
 * for nearly every Bloom hit's 16 MB table slot and many Bloom words
 * (bench/objection_filter.sql, issue 28: 1.32x against 1.23x).  The padding
 * (under 2 MB) is what aligning costs.  An earlier version mapped such
 * arrays itself and measured no difference: its probing backends read the
 * shared copy in dynamic shared memory (4 kB pages), not these arrays.
 */
#define PROBE_ARRAY_ALIGN	((Size) 2 * 1024 * 1024)

static void *
alloc_probe_array(MemoryContext cxt, Size bytes, bool zero)
{
	char	   *raw;
	char	   *p;

	if (bytes < PROBE_ARRAY_ALIGN)
		return MemoryContextAllocExtended(cxt, bytes, MCXT_ALLOC_HUGE | (zero ? MCXT_ALLOC_ZERO : 0));
	raw = MemoryContextAllocExtended(cxt, add_size(bytes, PROBE_ARRAY_ALIGN), MCXT_ALLOC_HUGE);
	p = (char *) TYPEALIGN(PROBE_ARRAY_ALIGN, raw);
#ifdef MADV_HUGEPAGE
	/* advice only: where refused, the array works the same on small pages */
	(void) madvise(p, TYPEALIGN_DOWN(PROBE_ARRAY_ALIGN, bytes), MADV_HUGEPAGE);
#endif
	if (zero)
		memset(p, 0, bytes);
	return p;
}

static uint64
pow2_at_least(uint64 n)
{
	uint64		p = 64;

	while (p < n)
		p <<= 1;
	return p;
}

/*
 * Build a set of the n keys (duplicates allowed) in cxt.  Keys must be
 * valid NHS numbers (1..9999999999).
 */
NhsSet *
nhs_set_build(MemoryContext cxt, const int64 *keys, uint64 n)
{
	NhsSet	   *s = MemoryContextAllocZero(cxt, sizeof(NhsSet));
	uint64		words = pow2_at_least(n * BLOOM_BITS_PER_KEY / 64 + 1);
	uint64		nslots = pow2_at_least(n + n / 3 + 1);

	s->bloom = alloc_probe_array(cxt, words * sizeof(uint64), true);
	s->bloom_mask = words - 1;
	s->slots = alloc_probe_array(cxt, nslots * sizeof(uint32), true);
	s->slots_mask = nslots - 1;

	for (uint64 k = 0; k < n; k++)
	{
		int64		key = keys[k];
		uint64		h;
		uint32		stored;
		uint64		i;

		if (key <= 0 || key > INT64CONST(9999999999))
			elog(ERROR, "NHS number set: key out of range");
		h = nhs_set_hash(key);
		stored = (uint32) (key / 10) + 1;
		for (i = nhs_set_slot(s, h);; i = (i + 1) & s->slots_mask)
		{
			if (s->slots[i] == stored)
				break;
			if (s->slots[i] == 0)
			{
				s->slots[i] = stored;
				s->bloom[h & s->bloom_mask] |= nhs_set_bloom_bits(h);
				s->nkeys++;
				break;
			}
		}
		if ((k & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	return s;
}

/*
 * A copy of src's arrays in this backend's memory (cxt), on huge pages
 * where the kernel gives them (alloc_probe_array): for a set mapped from
 * dynamic shared memory, whose pages are small, probed by a long scan
 * (set_cache.c, blocked_set_local()).  The same keys, the same answers.
 */
NhsSet *
nhs_set_copy(MemoryContext cxt, const NhsSet *src)
{
	NhsSet	   *s = MemoryContextAllocZero(cxt, sizeof(NhsSet));
	Size		bloom_bytes = mul_size(src->bloom_mask + 1, sizeof(uint64));
	Size		slot_bytes = mul_size(src->slots_mask + 1, sizeof(uint32));

	*s = *src;
	s->bloom = alloc_probe_array(cxt, bloom_bytes, false);
	memcpy(s->bloom, src->bloom, bloom_bytes);
	s->slots = alloc_probe_array(cxt, slot_bytes, false);
	memcpy(s->slots, src->slots, slot_bytes);
	return s;
}

/* the bytes of a set's probe arrays */
Size
nhs_set_bytes(const NhsSet *s)
{
	return add_size(mul_size(s->bloom_mask + 1, sizeof(uint64)),
					mul_size(s->slots_mask + 1, sizeof(uint32)));
}

/*
 * dst := src without its Bloom layer: one word with every bit set, so every
 * key goes to the table (a cached word, then the slot).  For measuring what
 * the layer buys (caredata.bloom_filter = off); dst shares src's table.
 */
void
nhs_set_without_bloom(NhsSet *dst, const NhsSet *src)
{
	*dst = *src;
	dst->bloom = (uint64 *) &bloom_all_ones;
	dst->bloom_mask = 0;
}

void
nhs_set_init(void)
{
	DefineCustomBoolVariable("caredata.bloom_filter",
							 "Test a key against a blocked set's Bloom filter before its table.",
							 "Changes speed only, never which rows a role sees; off measures what the Bloom layer buys.",
							 &nhs_set_bloom_enabled,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}
