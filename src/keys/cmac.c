/*-------------------------------------------------------------------------
 *
 * cmac.c
 *		AES-256-CMAC with the key schedule done once per key.
 *
 * Owns the computation of the aes256-cmac pseudonym scheme: CMAC (NIST SP
 * 800-38B; RFC 4493's construction, with AES-256) over a message, and the
 * one-block case that every NHS number takes: a 9-byte message is one
 * partial block, so its tag is AES(key, pad(message) xor K2) -- a single
 * AES-256 encryption.
 *
 * Two ways to run AES-256, giving the same bytes:
 *	- OpenSSL's EVP interface: an AES-256-ECB context keyed once (EVP_Cipher
 *	  per block).  Always set up; used where the next one is not;
 *	- the CPU's AES instructions called directly (x86-64 AES-NI), with the
 *	  round keys expanded once here.  OpenSSL runs the same instructions,
 *	  but reaching them through EVP costs as much again as the 14 rounds
 *	  for one block.  Used only when the CPU has them, the caller asks for
 *	  them (the setting caredata.aes_instructions), and the expanded
 *	  schedule encrypts a block exactly as OpenSSL does (checked when the
 *	  key is set up).
 *
 * Key material: the round keys and the subkeys live in the CmacKey, which
 * keys.c keeps in TopMemoryContext and wipes with cmac_free(); blocks on
 * the stack that hold a message masked with a subkey are overwritten.
 *
 * src/keys/cmac.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "port/atomics.h"
#include "port/pg_bswap.h"

#include "cmac.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CMAC_AESNI 1
#include <immintrin.h>
#define AESNI_TARGET __attribute__((target("aes,sse2")))
#endif

static inline bool
evp_block(const CmacKey *k, const uint8 *in, uint8 *out)
{
	return EVP_Cipher((EVP_CIPHER_CTX *) k->evp, out, in, CMAC_BLOCK) > 0;
}

#ifdef CMAC_AESNI

static bool
cpu_has_aes(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("aes");
}

/* AES-256 encryption of one block with the expanded round keys */
AESNI_TARGET static inline __m128i
aesni_encrypt(const uint8 *rk, __m128i x)
{
	x = _mm_xor_si128(x, _mm_loadu_si128((const __m128i *) rk));
	for (int i = 1; i < CMAC_ROUNDS; i++)
		x = _mm_aesenc_si128(x, _mm_loadu_si128((const __m128i *) (rk + i * CMAC_BLOCK)));
	return _mm_aesenclast_si128(x, _mm_loadu_si128((const __m128i *) (rk + CMAC_ROUNDS * CMAC_BLOCK)));
}

AESNI_TARGET static void
aesni_block(const CmacKey *k, const uint8 *in, uint8 *out)
{
	__m128i		x = aesni_encrypt(k->round_keys, _mm_loadu_si128((const __m128i *) in));

	_mm_storeu_si128((__m128i *) out, x);
}

/*
 * The AES-256 key schedule (FIPS 197, 5.2) with AESKEYGENASSIST: each step
 * makes the next round key from the previous two.
 */
AESNI_TARGET static inline __m128i
expand_step(__m128i prev2, __m128i assist)
{
	__m128i		t = _mm_slli_si128(prev2, 4);

	prev2 = _mm_xor_si128(prev2, t);
	t = _mm_slli_si128(t, 4);
	prev2 = _mm_xor_si128(prev2, t);
	t = _mm_slli_si128(t, 4);
	prev2 = _mm_xor_si128(prev2, t);
	return _mm_xor_si128(prev2, assist);
}

#define EXPAND_PAIR(i, rcon) \
	do { \
		a = expand_step(a, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(b, rcon), 0xff)); \
		_mm_storeu_si128((__m128i *) (rk + (i) * CMAC_BLOCK), a); \
		if ((i) + 1 <= CMAC_ROUNDS) \
		{ \
			b = expand_step(b, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(a, 0), 0xaa)); \
			_mm_storeu_si128((__m128i *) (rk + ((i) + 1) * CMAC_BLOCK), b); \
		} \
	} while (0)

AESNI_TARGET static void
aesni_expand(const unsigned char *key, uint8 *rk)
{
	__m128i		a = _mm_loadu_si128((const __m128i *) key);
	__m128i		b = _mm_loadu_si128((const __m128i *) (key + 16));

	_mm_storeu_si128((__m128i *) rk, a);
	_mm_storeu_si128((__m128i *) (rk + CMAC_BLOCK), b);
	EXPAND_PAIR(2, 0x01);
	EXPAND_PAIR(4, 0x02);
	EXPAND_PAIR(6, 0x04);
	EXPAND_PAIR(8, 0x08);
	EXPAND_PAIR(10, 0x10);
	EXPAND_PAIR(12, 0x20);
	EXPAND_PAIR(14, 0x40);
	a = b = _mm_setzero_si128();
}

/* the one-block message b || value, as in cmac_tag64 */
AESNI_TARGET static void
aesni_tag64(const CmacKey *k, uint8 b, uint64 value, unsigned char *tag)
{
	/* bytes 0-7: b and the value's first 7 bytes; 8-15: its last, 0x80, zeros */
	__m128i		x = _mm_set_epi64x((int64) ((value & 0xFF) | 0x8000),
								   (int64) ((uint64) b | (pg_bswap64(value) << 8)));

	x = _mm_xor_si128(x, _mm_loadu_si128((const __m128i *) k->k2));
	_mm_storeu_si128((__m128i *) tag, aesni_encrypt(k->round_keys, x));
}
#endif							/* CMAC_AESNI */

static inline bool
cmac_block(const CmacKey *k, const uint8 *in, uint8 *out)
{
#ifdef CMAC_AESNI
	if (k->aesni)
	{
		aesni_block(k, in, out);
		return true;
	}
#endif
	return evp_block(k, in, out);
}

/* CMAC's doubling in GF(2^128): out = in << 1, xor 0x87 if the top bit was set */
static void
cmac_double(const uint8 *in, uint8 *out)
{
	uint8		carry = in[0] >> 7;

	for (int i = 0; i < CMAC_BLOCK - 1; i++)
		out[i] = (uint8) ((in[i] << 1) | (in[i + 1] >> 7));
	out[CMAC_BLOCK - 1] = (uint8) ((in[CMAC_BLOCK - 1] << 1) ^ (carry ? 0x87 : 0));
}

bool
cmac_init(CmacKey *k, const void *cipher, const unsigned char *key,
		  bool aes_instructions)
{
	EVP_CIPHER_CTX *ctx;
	uint8		l[CMAC_BLOCK];
	bool		ok;

	memset(k, 0, sizeof(*k));
	memset(l, 0, sizeof(l));
	ctx = EVP_CIPHER_CTX_new();
	k->evp = ctx;
	ok = ctx != NULL &&
		EVP_EncryptInit_ex2(ctx, (const EVP_CIPHER *) cipher, key, NULL, NULL) == 1 &&
		EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
		evp_block(k, l, l);
	if (!ok)
	{
		OPENSSL_cleanse(l, sizeof(l));
		cmac_free(k);
		return false;
	}
	cmac_double(l, k->k1);
	cmac_double(k->k1, k->k2);

#ifdef CMAC_AESNI
	if (aes_instructions && cpu_has_aes())
	{
		uint8		zero[CMAC_BLOCK];
		uint8		l2[CMAC_BLOCK];

		/* the schedule must encrypt exactly as OpenSSL does, else unused */
		memset(zero, 0, sizeof(zero));
		aesni_expand(key, k->round_keys);
		aesni_block(k, zero, l2);
		k->aesni = memcmp(l, l2, CMAC_BLOCK) == 0;
		if (!k->aesni)
			OPENSSL_cleanse(k->round_keys, sizeof(k->round_keys));
		OPENSSL_cleanse(l2, sizeof(l2));
	}
#endif
	OPENSSL_cleanse(l, sizeof(l));
	return true;
}

void
cmac_free(CmacKey *k)
{
	EVP_CIPHER_CTX_free((EVP_CIPHER_CTX *) k->evp);
	OPENSSL_cleanse(k, sizeof(*k));
}

/* x ^= y, 16 bytes, as two words */
static inline void
xor_block(uint8 *x, const uint8 *y)
{
	uint64		a[2],
				b[2];

	memcpy(a, x, CMAC_BLOCK);
	memcpy(b, y, CMAC_BLOCK);
	a[0] ^= b[0];
	a[1] ^= b[1];
	memcpy(x, a, CMAC_BLOCK);
}

/*
 * CMAC (SP 800-38B): CBC-MAC over the blocks, the last one xored with K1
 * when complete, else padded (0x80 0x00...) and xored with K2.
 */
bool
cmac_compute(const CmacKey *k, const unsigned char *m, size_t len, unsigned char *tag)
{
	uint8		x[CMAC_BLOCK];
	uint8		last[CMAC_BLOCK];
	size_t		full = len == 0 ? 0 : (len - 1) / CMAC_BLOCK * CMAC_BLOCK;
	size_t		rest = len - full;
	bool		ok = true;

	memset(x, 0, sizeof(x));
	for (size_t off = 0; off < full && ok; off += CMAC_BLOCK)
	{
		xor_block(x, m + off);
		ok = cmac_block(k, x, x);
	}
	memset(last, 0, sizeof(last));
	memcpy(last, m + full, rest);
	if (rest == CMAC_BLOCK)
		xor_block(last, k->k1);
	else
	{
		last[rest] = 0x80;
		xor_block(last, k->k2);
	}
	xor_block(x, last);
	ok = ok && cmac_block(k, x, tag);
	/* x and last held the message masked with a subkey */
	OPENSSL_cleanse(x, sizeof(x));
	OPENSSL_cleanse(last, sizeof(last));
	return ok;
}

/*
 * The 9-byte message b || value big-endian: one partial block.  Its padded
 * block is built in two words and stored at once (through EVP) or kept in
 * a register (AES-NI): building it byte by byte and reading it back as
 * one 16-byte load stalls the CPU's store forwarding, which cost as much
 * as the AES itself.
 */
bool
cmac_tag64(const CmacKey *k, uint8 b, uint64 value, unsigned char *tag)
{
#ifdef CMAC_AESNI
	if (likely(k->aesni))
	{
		aesni_tag64(k, b, value, tag);
		return true;
	}
#endif
#if !defined(WORDS_BIGENDIAN) && (defined(__GNUC__) || defined(__clang__))
	{
		typedef uint64 block64 __attribute__((vector_size(CMAC_BLOCK)));
		block64		x = {(uint64) b | (pg_bswap64(value) << 8), (value & 0xFF) | 0x8000};
		block64		k2;
		bool		ok;

		memcpy(&k2, k->k2, CMAC_BLOCK);
		x ^= k2;
		ok = evp_block(k, (const uint8 *) &x, tag);
		/* the block is the message masked with K2: overwrite it */
		x = k2 ^ k2;
		k2 = x;
		pg_compiler_barrier();
		return ok;
	}
#else
	{
		unsigned char msg[9];

		msg[0] = b;
		for (int i = 8; i >= 1; i--)
		{
			msg[i] = value & 0xFF;
			value >>= 8;
		}
		return cmac_compute(k, msg, sizeof(msg), tag);
	}
#endif
}
