/*-------------------------------------------------------------------------
 *
 * keys.h
 *		What other concerns may ask of the key store (src/keys/keys.c).
 *
 * The key store never hands out key bytes.  It hands out a keyed
 * computation for a domain and key version: callers pass the bytes to
 * authenticate and get the 128-bit token back.  The computation is the key
 * version's scheme: AES-256-CMAC for versions made since 0.2.0, the first
 * 128 bits of HMAC-SHA256 for older ones.
 *
 * src/keys/keys.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_KEYS_H
#define CAREDATA_KEYS_H

/*
 * The functions below are called from inside the library only: hidden, so
 * that a call takes no trip through the PLT (they run once per row)
 */
#if defined(__GNUC__) || defined(__clang__)
#define KEYS_INTERNAL __attribute__((visibility("hidden")))
#else
#define KEYS_INTERNAL
#endif

#define CAREDATA_TOKEN_LEN	16		/* an AES-256-CMAC tag, or HMAC-SHA256
										 * truncated to 128 bits */

/* how a key version computes tokens (caredata.domain_key.scheme) */
typedef enum KeyScheme
{
	KEY_SCHEME_HMAC_SHA256 = 1,	/* 'hmac-sha256': versions before 0.2.0 */
	KEY_SCHEME_AES256_CMAC = 2	/* 'aes256-cmac': every newer version */
} KeyScheme;

/* a domain as resolved for keyed work */
typedef struct KeyDomain
{
	int32		domain_id;
	int16		version;		/* the key version to use */
	KeyScheme	scheme;			/* its scheme */
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
/* bumped whenever cached keys are dropped (keys.c); read on every row */
extern KEYS_INTERNAL uint64 keys_cache_generation;

static inline uint64
keys_generation(void)
{
	return keys_cache_generation;
}

/*
 * token = AES-256-CMAC(domain key, data) under aes256-cmac, or the first
 * 16 bytes of HMAC-SHA256(domain key, data) under hmac-sha256
 */
extern KEYS_INTERNAL void keys_token(KeyDomain *d, const unsigned char *data, size_t len,
					   unsigned char *token);

/* the same for the 9-byte message tag || value (8 bytes, big-endian) */
extern KEYS_INTERNAL void keys_token_tag64(KeyDomain *d, char tag, uint64 value,
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
