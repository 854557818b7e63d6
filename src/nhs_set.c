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
 * src/nhs_set.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/mman.h>

#include "miscadmin.h"
#include "utils/memutils.h"

#include "nhs_set.h"

#define BLOOM_BITS_PER_KEY	8

/*
 * Zeroed memory for a large array probed at random.  Arrays of 2 MB and
 * more get a fresh anonymous mapping, aligned to 2 MB and offered to the
 * kernel for transparent huge pages before it is touched (Debian's default
 * THP mode is "madvise"), so that a probe does not also miss the TLB.  It
 * must be fresh: memory malloc() recycles is already backed by small pages.
 * The mapping is released when cxt is reset or deleted.
 */
typedef struct ProbeMapping
{
	MemoryContextCallback cb;
	void	   *addr;
	Size		len;
} ProbeMapping;

static void
release_probe_mapping(void *arg)
{
	ProbeMapping *m = (ProbeMapping *) arg;

	(void) munmap(m->addr, m->len);
}

static void *
alloc_probe_array(MemoryContext cxt, Size bytes)
{
	const Size	huge = 2 * 1024 * 1024;
	ProbeMapping *m;
	void	   *addr;

	if (bytes < huge)
		return MemoryContextAllocZero(cxt, bytes);
	addr = mmap(NULL, bytes + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (addr == MAP_FAILED)
		return MemoryContextAllocZero(cxt, bytes);	/* palloc reports the shortage */
	m = MemoryContextAlloc(cxt, sizeof(ProbeMapping));
	m->addr = addr;
	m->len = bytes + huge;
	m->cb.func = release_probe_mapping;
	m->cb.arg = m;
	MemoryContextRegisterResetCallback(cxt, &m->cb);
	addr = (void *) TYPEALIGN(huge, addr);
#ifdef MADV_HUGEPAGE
	(void) madvise(addr, bytes, MADV_HUGEPAGE);
#endif
	return addr;				/* anonymous mappings start zeroed */
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

	s->bloom = alloc_probe_array(cxt, words * sizeof(uint64));
	s->bloom_mask = words - 1;
	s->slots = alloc_probe_array(cxt, nslots * sizeof(uint32));
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
