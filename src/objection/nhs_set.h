/*-------------------------------------------------------------------------
 *
 * nhs_set.h
 *		An immutable in-memory set of NHS numbers for per-row membership tests.
 *
 * A one-word-per-key Bloom filter (all of a key's bits in one 64-bit word:
 * one memory access, one well-predicted branch) in front of a compact
 * open-addressing table of the numbers themselves, so an answer is exact.
 * Built once from an array of keys; probing never allocates or fails.
 *
 * src/objection/nhs_set.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_NHS_SET_H
#define CAREDATA_NHS_SET_H

typedef struct NhsSet
{
	uint64		nkeys;			/* distinct keys */
	uint64	   *bloom;			/* one word per hash, power-of-two words */
	uint64		bloom_mask;		/* words - 1 */
	uint32	   *slots;			/* key / 10 + 1; 0 = empty */
	uint64		slots_mask;		/* slots - 1 */
} NhsSet;

extern NhsSet *nhs_set_build(MemoryContext cxt, const int64 *keys, uint64 n);

extern NhsSet *nhs_set_copy(MemoryContext cxt, const NhsSet *src);
extern Size nhs_set_bytes(const NhsSet *s);

extern bool nhs_set_bloom_enabled;
extern void nhs_set_without_bloom(NhsSet *dst, const NhsSet *src);
extern void nhs_set_init(void);

static inline uint64
nhs_set_hash(int64 key)
{
	uint64		x = (uint64) key;

	x ^= x >> 33;
	x *= UINT64CONST(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64CONST(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

/* the four bits of a key's Bloom word, from the hash's high 24 bits */
static inline uint64
nhs_set_bloom_bits(uint64 h)
{
	return (UINT64CONST(1) << ((h >> 40) & 63)) |
		(UINT64CONST(1) << ((h >> 46) & 63)) |
		(UINT64CONST(1) << ((h >> 52) & 63)) |
		(UINT64CONST(1) << ((h >> 58) & 63));
}

/* first slot of a key: from the hash's middle bits, independent of the Bloom word */
static inline uint64
nhs_set_slot(const NhsSet *s, uint64 h)
{
	return (h >> 20) & s->slots_mask;
}

/*
 * Is key in the set?  Keys are valid NHS numbers, whose last digit is a
 * function of the first nine, so the table keeps key / 10 (it fits 32
 * bits).  A key that is not a valid NHS number can only be reported as a
 * member, never missed.
 */
static inline const uint64 *
nhs_set_bloom_word(const NhsSet *s, uint64 h)
{
	return &s->bloom[h & s->bloom_mask];
}

/* might the key with hash h be in the set?  "no" is final */
static inline bool
nhs_set_bloom_maybe(const NhsSet *s, uint64 h)
{
	uint64		bits = nhs_set_bloom_bits(h);

	return (*nhs_set_bloom_word(s, h) & bits) == bits;
}

/* is key (hash h), which the Bloom filter lets through, in the table? */
static inline bool
nhs_set_table_contains(const NhsSet *s, int64 key, uint64 h)
{
	uint32		stored = (uint32) (key / 10) + 1;

	for (uint64 i = nhs_set_slot(s, h);; i = (i + 1) & s->slots_mask)
	{
		if (s->slots[i] == stored)
			return true;
		if (s->slots[i] == 0)
			return false;
	}
}

static inline bool
nhs_set_contains_hashed(const NhsSet *s, int64 key, uint64 h)
{
	return unlikely(nhs_set_bloom_maybe(s, h)) && nhs_set_table_contains(s, key, h);
}

static inline bool
nhs_set_contains(const NhsSet *s, int64 key)
{
	return nhs_set_contains_hashed(s, key, nhs_set_hash(key));
}

/*
 * Read-ahead for a batch of keys about to be probed: start loading a key's
 * Bloom word; later, once that word has arrived, its table slot if the
 * Bloom filter lets the key through.  These are hints: they never change an
 * answer.  A macro, not an inline function: GCC treats a prefetch as free of
 * side effects, so a helper whose result is unused is deleted whole.
 */
#if defined(__GNUC__) || defined(__clang__)
#define NHS_SET_PREFETCH(p) __builtin_prefetch(p)
#else
#define NHS_SET_PREFETCH(p) ((void) (p))
#endif

#endif							/* CAREDATA_NHS_SET_H */
