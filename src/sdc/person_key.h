/*-------------------------------------------------------------------------
 *
 * person_key.h
 *		What the safe aggregates' states share: a person as a 64-bit key, and
 *		where a key goes in an open-addressing table.
 *
 * A bigint or an nhs_number is its own key; a pseudonym's 24 bytes are
 * hashed to 64 bits (hash_bytes_extended, seed 0).  Key 0 is kept apart
 * by each state (0 marks an empty slot).
 *
 * src/sdc/person_key.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SDC_PERSON_KEY_H
#define CAREDATA_SDC_PERSON_KEY_H

#include "common/hashfn.h"

#define PSEUDONYM_BYTES		24

static inline uint64
person_key_of_bytes24(const void *p)
{
	return DatumGetUInt64(hash_bytes_extended((const unsigned char *) p, PSEUDONYM_BYTES, 0));
}

/* murmur3's 64-bit finaliser: keys that are numbers are not random */
static inline uint32
person_slot(uint64 key, int32 capacity)
{
	key ^= key >> 33;
	key *= UINT64CONST(0xff51afd7ed558ccd);
	key ^= key >> 33;
	key *= UINT64CONST(0xc4ceb9fe1a85ec53);
	key ^= key >> 33;
	return (uint32) (key & (uint64) (capacity - 1));
}

/* a policy name stored in a state: lower-case letters, digits and _ */
static inline bool
person_policy_name_ok(const char *policy)
{
	for (const char *c = policy; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
			return false;
	return true;
}

#endif							/* CAREDATA_SDC_PERSON_KEY_H */
