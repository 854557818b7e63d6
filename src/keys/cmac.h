/*-------------------------------------------------------------------------
 *
 * cmac.h
 *		AES-256-CMAC with the key schedule done once (src/keys/cmac.c).
 *
 * Inside the keys pillar only: keys.c keys one CmacKey per domain key
 * version of the aes256-cmac scheme and computes tokens with it.
 *
 * src/keys/cmac.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_KEYS_CMAC_H
#define CAREDATA_KEYS_CMAC_H

#include "keys.h"				/* KEYS_INTERNAL */

#define CMAC_BLOCK		16
#define CMAC_KEY_LEN	32		/* AES-256 */
#define CMAC_ROUNDS		14

typedef struct CmacKey
{
	void	   *evp;			/* EVP_CIPHER_CTX, AES-256-ECB, no padding */
	bool		aesni;			/* round keys below are used (checked) */
	uint8		k1[CMAC_BLOCK]; /* the CMAC subkeys */
	uint8		k2[CMAC_BLOCK];
	uint8		round_keys[(CMAC_ROUNDS + 1) * CMAC_BLOCK];
} CmacKey;

/*
 * Key k with key (32 bytes): the AES-256 key schedule and the subkeys.
 * False if OpenSSL fails; k is then wiped (cmac_free is still safe).
 * cipher is the fetched EVP_CIPHER for AES-256-ECB; aes_instructions:
 * call the CPU's AES instructions directly where it has them.
 */
extern KEYS_INTERNAL bool cmac_init(CmacKey *k, const void *cipher, const unsigned char *key,
					  bool aes_instructions);

/* free the OpenSSL context and wipe every key byte in k */
extern KEYS_INTERNAL void cmac_free(CmacKey *k);

/* tag = AES-256-CMAC(key, m[0..len)); false if OpenSSL fails */
extern KEYS_INTERNAL bool cmac_compute(const CmacKey *k, const unsigned char *m, size_t len,
						 unsigned char *tag);

/* the same for the 9-byte message b || value (8 bytes big-endian) */
extern KEYS_INTERNAL bool cmac_tag64(const CmacKey *k, uint8 b, uint64 value,
					   unsigned char *tag);

#endif							/* CAREDATA_KEYS_CMAC_H */
