/*-------------------------------------------------------------------------
 *
 * keys.h
 *		What other concerns may ask of the key store (src/keys/keys.c).
 *
 * The key store never hands out key bytes.  It hands out a keyed HMAC
 * computation for a domain and key version: callers pass the bytes to
 * authenticate and get the 128-bit token back.
 *
 * src/keys/keys.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_KEYS_H
#define CAREDATA_KEYS_H

#define CAREDATA_TOKEN_LEN	16		/* HMAC-SHA256 truncated to 128 bits */

/* a domain as resolved for keyed work */
typedef struct KeyDomain
{
	int32		domain_id;
	int16		version;		/* the key version to use */
	void	   *mac;			/* opaque keyed context, owned by keys.c */
	uint64		generation;		/* cache generation it belongs to */
} KeyDomain;

/*
 * Resolve a domain by name, at its current key version (version 0) or a
 * given one, raising an error if the domain does not exist, is retired, or
 * the version is retired.  The result stays valid while
 * keys_generation() returns the same value.
 */
extern KeyDomain *keys_lookup_domain(const char *name, int version);
extern uint64 keys_generation(void);

/* token = first 16 bytes of HMAC-SHA256(domain key, data) */
extern void keys_token(KeyDomain *d, const unsigned char *data, size_t len,
					   unsigned char *token);

/*
 * A 64-bit keyed hash (SipHash-2-4) under an internal key: one derived
 * from the master secret for label, outside the domain catalog, so that no
 * SQL function can compute it.  The key stays in keys.c; the handle is
 * valid while keys_generation() returns the same value (keys_hash64()
 * refuses a forgotten one).  Used for disclosure-control record keys.
 */
typedef struct KeyHash64 KeyHash64;
extern const KeyHash64 *keys_internal_hash64(const char *label);
extern uint64 keys_hash64(const KeyHash64 *k, const void *data, size_t len);

/*
 * A pseudonym's text form (<domain id>.<key version>.<token>, as the type
 * caredata.pseudonym reads it) into its 24 bytes at out; raises 22P02, as
 * the type's input does, when str is not one.  For the safe aggregates,
 * which count people by a pseudonym published as text (src/sdc).
 */
#define CAREDATA_PSEUDONYM_BYTES	24
extern void keys_pseudonym_from_cstring(const char *str, void *out);

extern void keys_init(void);

#endif							/* CAREDATA_KEYS_H */
