/*-------------------------------------------------------------------------
 *
 * record_key.c
 *		Record keys (record_key.h): a person's keyed hash, the only form in
 *		which a person enters a disclosure-control state.
 *
 * The keyed hash is looked up once per key generation (the key store wipes
 * its keys when the key file is reloaded or the key catalog changes) and
 * then costs one SipHash-2-4 per row (about 25 ns for 8 bytes; HMAC-SHA256
 * through OpenSSL's EVP_MAC was 260 ns and OpenSSL's SipHash 95 ns on the
 * same machine: docs/disclosure-control.md).
 *
 * src/sdc/record_key.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "keys/keys.h"
#include "record_key.h"

static const KeyHash64 *record_hash = NULL;
static uint64 record_hash_generation = 0;

static inline const KeyHash64 *
record_key_hash(void)
{
	if (record_hash == NULL || record_hash_generation != keys_generation())
	{
		record_hash = NULL;
		record_hash_generation = keys_generation();
		record_hash = keys_internal_hash64(SDC_RECORD_KEY_LABEL);
	}
	return record_hash;
}

uint64
record_key_int8(int64 person)
{
	unsigned char b[8];
	uint64		v = (uint64) person;

	/* little-endian on every node, so keys agree across a cluster */
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char) (v >> (8 * i));
	return keys_hash64(record_key_hash(), b, sizeof(b));
}

uint64
record_key_bytes(const void *person, size_t len)
{
	return keys_hash64(record_key_hash(), person, len);
}
