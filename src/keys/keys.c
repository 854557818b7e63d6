/*-------------------------------------------------------------------------
 *
 * keys.c
 *		The key store: master secret outside the database, per-domain keys.
 *
 * Owns the setting caredata.key_file, reading and checking the master
 * secret, deriving per-domain keys with HKDF-SHA256 and keeping one keyed
 * context per domain and key version for the life of the backend (or until
 * the domain catalog changes, the setting is reloaded, or the backend
 * exits).
 *
 * Each key version has a scheme (caredata.domain_key.scheme):
 *	- aes256-cmac (every version made since 0.2.0): AES-256-CMAC (NIST SP
 *	  800-38B, RFC 4493's construction with AES-256) under a key derived
 *	  with HKDF info "caredata domain key v2|<domain>|<version>".  An NHS
 *	  number's message (9 bytes) is one AES block: one AES-256 encryption
 *	  a row, with the key schedule done once (src/keys/cmac.c);
 *	- hmac-sha256 (versions made before 0.2.0): the first 16 bytes of
 *	  HMAC-SHA256 under the key derived with info
 *	  "caredata domain key v1|<domain>|<version>".
 * Both give 16-byte tokens; the pseudonym's version says which applies.
 *
 * Key material handling:
 *	- the master secret is read from the file on a cache miss, used to
 *	  derive the domain key, and wiped (OPENSSL_cleanse) before returning;
 *	- the derived key is wiped as soon as it has keyed the HMAC or AES
 *	  context;
 *	- contexts are freed (OpenSSL wipes them) on invalidation, and the
 *	  CMAC subkeys kept beside them are wiped;
 *	- no function, message or log line shows key bytes or the file's path.
 *
 * Cache invalidation crosses backends through relcache invalidation of the
 * key catalog (caredata.domain_key): rotate/retire send one at commit, and
 * every backend drops its cached contexts when it processes it.
 *
 * src/keys/keys.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "citus/citus.h"
#include "cmac.h"
#include "keys.h"
#include "base/search_path.h"

#define MASTER_MIN_LEN		32
#define MASTER_MAX_LEN		4096
#define DOMAIN_KEY_LEN		32
#define DOMAIN_NAME_MAX		64

static char *key_file = NULL;
static bool aes_instructions = true;

/* cache of keyed contexts, by (domain name, requested version) */
typedef struct KeyCacheKey
{
	char		name[DOMAIN_NAME_MAX];
	int32		version;		/* 0: the current version */
} KeyCacheKey;

typedef struct KeyCacheEntry
{
	KeyCacheKey key;
	KeyDomain	domain;
} KeyCacheEntry;

static HTAB *key_cache = NULL;
uint64		keys_cache_generation = 1;
static Oid	key_catalog_relid = InvalidOid;
static EVP_MAC *hmac_algorithm = NULL;
static EVP_CIPHER *aes_algorithm = NULL;

/*
 * The keyed context of one domain key version (KeyDomain.mac): an HMAC
 * context, or an AES-256-CMAC key (the key schedule done, and the two CMAC
 * subkeys).  In TopMemoryContext; keyed_context_free() wipes it.
 */
typedef struct KeyedContext
{
	KeyScheme	scheme;
	EVP_MAC_CTX *mac;			/* KEY_SCHEME_HMAC_SHA256 */
	CmacKey		cmac;			/* KEY_SCHEME_AES256_CMAC (cmac.c) */
} KeyedContext;

static void
keyed_context_free(KeyedContext *k)
{
	if (k == NULL)
		return;
	EVP_MAC_CTX_free(k->mac);
	cmac_free(&k->cmac);
	OPENSSL_cleanse(k, sizeof(*k));
	pfree(k);
}

/* internal keys (below: keys_internal_hash64), wiped with the domain keys */
#define INTERNAL_KEYS		4

struct KeyHash64
{
	char		label[DOMAIN_NAME_MAX];
	bool		valid;
	uint64		k0;
	uint64		k1;
};

static KeyHash64 internal_keys[INTERNAL_KEYS];

typedef enum MasterResult
{
	MASTER_OK = 0,
	MASTER_UNSET,
	MASTER_MISSING,				/* no file at the path (ENOENT, ENOTDIR) */
	MASTER_DENIED,				/* there, but the server may not open it */
	MASTER_NOT_FILE,
	MASTER_PERMISSIONS,
	MASTER_OWNER,
	MASTER_SHORT,
	MASTER_LONG,
	MASTER_READ
} MasterResult;

/* drop every cached context (OpenSSL wipes them when freed) */
static void
keys_forget_all(void)
{
	if (key_cache != NULL)
	{
		HASH_SEQ_STATUS status;
		KeyCacheEntry *e;

		hash_seq_init(&status, key_cache);
		while ((e = hash_seq_search(&status)) != NULL)
		{
			keyed_context_free((KeyedContext *) e->domain.mac);
			e->domain.mac = NULL;
		}
		hash_destroy(key_cache);
		key_cache = NULL;
	}
	OPENSSL_cleanse(internal_keys, sizeof(internal_keys));
	keys_cache_generation++;
}

static void
keys_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == key_catalog_relid)
		keys_forget_all();
}

static void
key_file_assign(const char *newval, void *extra)
{
	/* a reloaded setting may name another secret: derive everything again */
	keys_forget_all();
}

static void
aes_instructions_assign(bool newval, void *extra)
{
	/* the keyed contexts were set up for the old value: set them up again */
	keys_forget_all();
}

/*
 * Was the library loaded at server start (shared_preload_libraries)?  Only
 * then is caredata.key_file defined, superuser-only, before any session
 * can read it: a library loaded later leaves the setting, until then, an
 * unprotected placeholder that SHOW and current_setting() give to anyone.
 * Keyed functions refuse to run otherwise.
 */
static bool keys_preloaded = false;

static void
require_preload(void)
{
	if (!keys_preloaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("caredata was not loaded at server start"),
				 errdetail("Until it is, caredata.key_file is an ordinary setting that any role can read."),
				 errhint("Add caredata to shared_preload_libraries in postgresql.conf and restart the server.")));
}

void
keys_init(void)
{
	keys_preloaded = process_shared_preload_libraries_in_progress;
	DefineCustomStringVariable("caredata.key_file",
							   "File holding the master secret for keyed pseudonyms.",
							   "Must be a regular file of at least 32 bytes, readable by its owner only.",
							   &key_file,
							   NULL,
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, key_file_assign, NULL);
	DefineCustomBoolVariable("caredata.aes_instructions",
							 "Computes AES-256-CMAC pseudonyms with the CPU's AES instructions.",
							 "Off: through OpenSSL's EVP interface, slower; the pseudonyms are the same.",
							 &aes_instructions,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, aes_instructions_assign, NULL);
	CacheRegisterRelcacheCallback(keys_relcache_callback, (Datum) 0);
}

/*
 * Read the master secret into buf (MASTER_MAX_LEN + 1 bytes).  Raises no
 * error: the caller wipes buf and reports, so no error path leaves key
 * bytes behind.
 */
static MasterResult
read_master(unsigned char *buf, size_t *len)
{
	int			fd;
	struct stat st;
	ssize_t		n;
	size_t		total = 0;

	*len = 0;
	if (key_file == NULL || key_file[0] == '\0')
		return MASTER_UNSET;
	fd = open(key_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		if (errno == ENOENT || errno == ENOTDIR)
			return MASTER_MISSING;
		return (errno == EACCES || errno == EPERM) ? MASTER_DENIED : MASTER_READ;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		return MASTER_NOT_FILE;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		close(fd);
		return MASTER_PERMISSIONS;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0)
	{
		close(fd);
		return MASTER_OWNER;
	}
	while (total <= MASTER_MAX_LEN)
	{
		n = read(fd, buf + total, MASTER_MAX_LEN + 1 - total);
		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			close(fd);
			return MASTER_READ;
		}
		if (n == 0)
			break;
		total += n;
	}
	close(fd);
	*len = total;
	if (total < MASTER_MIN_LEN)
		return MASTER_SHORT;
	if (total > MASTER_MAX_LEN)
		return MASTER_LONG;
	return MASTER_OK;
}

/*
 * The hints never tell anyone to generate a key while a file is there: a
 * new master secret in place of the old one loses every pseudonym made
 * under it.  Only an unset setting gets that hint; a missing file gets it
 * for a new installation only, after moving and restoring.
 */
static void
report_master(MasterResult r)
{
	const char *hint = "Generate a master secret with caredata-generate-key (scripts/generate-key.sh in the source tree), name it in caredata.key_file in postgresql.conf and reload.";
	const char *keep = "Check that caredata.key_file names the master secret (caredata-generate-key writes 64 bytes); if the file was cut short or overwritten, restore it from its backup. Do not generate a new one: pseudonyms made under the old secret would be lost.";

	switch (r)
	{
		case MASTER_OK:
			return;
		case MASTER_UNSET:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("caredata.key_file is not set"),
					 errdetail("Keyed pseudonyms need a master secret held outside the database."),
					 errhint("%s", hint)));
			break;
		case MASTER_MISSING:
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FILE),
					 errmsg("the file named by caredata.key_file does not exist"),
					 errdetail("There is no file at that path."),
					 errhint("If the master secret was moved, name its path in caredata.key_file; if it was lost, restore it from its backup. Only for a new installation, generate one with caredata-generate-key (scripts/generate-key.sh in the source tree). Then reload.")));
			break;
		case MASTER_DENIED:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("the server cannot read the file named by caredata.key_file"),
					 errdetail("The file is there, but the operating system user the server runs as may not open it: the file is not readable by that user, or a directory on its path cannot be entered."),
					 errhint("Keep the file and fix its ownership and mode: make the server's user its owner with mode 0600 (chown, chmod 0600), and let that user enter each directory on the path. Do not generate a new key: the file holds the master secret.")));
			break;
		case MASTER_READ:
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("could not read the file named by caredata.key_file"),
					 errdetail("Opening or reading it failed, for a reason other than its permissions."),
					 errhint("Check the file system the file is on. Keep the file: it holds the master secret.")));
			break;
		case MASTER_NOT_FILE:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("caredata.key_file does not name a regular file"),
					 errhint("Name the key file itself in caredata.key_file, not a directory, and reload.")));
			break;
		case MASTER_PERMISSIONS:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("the file named by caredata.key_file has group or world access"),
					 errdetail("A master secret must be readable by its owner only, like server.key."),
					 errhint("Run chmod 0600 on the key file, then retry.")));
			break;
		case MASTER_OWNER:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("the file named by caredata.key_file is not owned by the database server's user or root"),
					 errhint("Change the key file's owner to the user the server runs as (chown), keeping the file: it holds the master secret.")));
			break;
		case MASTER_SHORT:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("the file named by caredata.key_file is too short"),
					 errdetail("A master secret must hold at least %d bytes.", MASTER_MIN_LEN),
					 errhint("%s", keep)));
			break;
		case MASTER_LONG:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("the file named by caredata.key_file is too long"),
					 errdetail("A master secret holds at most %d bytes.", MASTER_MAX_LEN),
					 errhint("%s", keep)));
			break;
	}
}

/*
 * The key fingerprint: HMAC-SHA256 of a fixed label under the master
 * secret, its first KEY_FINGERPRINT_BYTES bytes in hex.  It tells two key
 * files apart without showing either (no key byte can be recovered from
 * it), so every node of a cluster can check that it holds the key the
 * domains were created under.
 */
#define KEY_FINGERPRINT_BYTES 16
#define KEY_FINGERPRINT_LABEL "caredata key fingerprint v1"

static void
fingerprint_of(const unsigned char *master, size_t master_len, char *hex)
{
	unsigned char out[EVP_MAX_MD_SIZE];
	size_t		outlen = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, master, master_len,
				  (const unsigned char *) KEY_FINGERPRINT_LABEL, strlen(KEY_FINGERPRINT_LABEL),
				  out, sizeof(out), &outlen) == NULL || outlen < KEY_FINGERPRINT_BYTES)
	{
		OPENSSL_cleanse(out, sizeof(out));
		hex[0] = '\0';
		return;
	}
	hex_encode((const char *) out, KEY_FINGERPRINT_BYTES, hex);
	hex[KEY_FINGERPRINT_BYTES * 2] = '\0';
	OPENSSL_cleanse(out, sizeof(out));
}

/*
 * Derive len bytes (at most DOMAIN_KEY_LEN) from the master secret with
 * HKDF-SHA256 under info into out; fingerprint receives the master
 * secret's fingerprint.  The master secret is wiped before return; the
 * caller wipes out.  Returns false when OpenSSL's HKDF is not available.
 */
static bool
derive_key(const char *info, unsigned char *out, size_t len, char *fingerprint)
{
	unsigned char master[MASTER_MAX_LEN + 1];
	size_t		master_len;
	MasterResult mr;
	EVP_KDF    *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM	params[5];
	bool		ok;

	require_preload();

	mr = read_master(master, &master_len);
	if (mr != MASTER_OK)
	{
		OPENSSL_cleanse(master, sizeof(master));
		report_master(mr);
	}

	fingerprint_of(master, master_len, fingerprint);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, master, master_len);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (char *) "caredata", 8);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (char *) info, strlen(info));
	params[4] = OSSL_PARAM_construct_end();

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	ok = kdf != NULL && (kctx = EVP_KDF_CTX_new(kdf)) != NULL &&
		EVP_KDF_derive(kctx, out, len, params) == 1;
	OPENSSL_cleanse(master, sizeof(master));
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return ok;
}

/*
 * Derive the key of (domain, version) under its scheme and key a fresh
 * context with it; fingerprint receives the master secret's fingerprint.
 * The master secret and the derived key are wiped before return.  The
 * HKDF info names the scheme's generation (v1 HMAC, v2 AES-CMAC), so the
 * two schemes never share a key.
 */
static KeyedContext *
keyed_context(const char *name, int version, KeyScheme scheme, char *fingerprint)
{
	unsigned char derived[DOMAIN_KEY_LEN];
	char		info[DOMAIN_NAME_MAX + 64];
	KeyedContext *k;
	bool		ok = false;

	k = MemoryContextAllocZero(TopMemoryContext, sizeof(KeyedContext));
	k->scheme = scheme;
	snprintf(info, sizeof(info), "caredata domain key %s|%s|%d",
			 scheme == KEY_SCHEME_AES256_CMAC ? "v2" : "v1", name, version);
	if (derive_key(info, derived, sizeof(derived), fingerprint))
	{
		if (scheme == KEY_SCHEME_AES256_CMAC)
			ok = cmac_init(&k->cmac, aes_algorithm, derived, aes_instructions);
		else
		{
			OSSL_PARAM	mparams[2];

			mparams[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0);
			mparams[1] = OSSL_PARAM_construct_end();
			k->mac = EVP_MAC_CTX_new(hmac_algorithm);
			ok = k->mac != NULL && EVP_MAC_init(k->mac, derived, sizeof(derived), mparams) == 1;
		}
	}
	OPENSSL_cleanse(derived, sizeof(derived));
	if (!ok)
	{
		keyed_context_free(k);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not derive the key of a pseudonym domain"),
				 errdetail("OpenSSL's HKDF, HMAC-SHA256 or AES-256 is not available.")));
	}
	return k;
}

/*
 * Internal keys: keys the library uses for its own keyed hashing (the
 * disclosure-control record keys), derived from the master secret under a
 * label with HKDF info "caredata internal key v1|<label>" -- never a
 * domain's info, so no catalog domain and no SQL function (pseudonymise
 * takes catalog domains only) shares or computes them.  Each is a
 * SipHash-2-4 key (128 bits), kept here and wiped with the domain keys.
 */
const KeyHash64 *
keys_internal_hash64(const char *label)
{
	KeyHash64  *k = NULL;
	unsigned char derived[16];
	char		info[DOMAIN_NAME_MAX + 64];
	char		fingerprint[KEY_FINGERPRINT_BYTES * 2 + 1];
	bool		ok;

	if (strlen(label) >= DOMAIN_NAME_MAX)
		elog(ERROR, "internal key label too long");
	for (int i = 0; i < INTERNAL_KEYS; i++)
	{
		if (internal_keys[i].valid && strcmp(internal_keys[i].label, label) == 0)
			return &internal_keys[i];
		if (!internal_keys[i].valid && k == NULL)
			k = &internal_keys[i];
	}
	if (k == NULL)
		elog(ERROR, "too many internal keys");
	snprintf(info, sizeof(info), "caredata internal key v1|%s", label);
	ok = derive_key(info, derived, sizeof(derived), fingerprint);
	if (ok)
	{
		memcpy(&k->k0, derived, 8);
		memcpy(&k->k1, derived + 8, 8);
		strlcpy(k->label, label, DOMAIN_NAME_MAX);
		k->valid = true;
	}
	OPENSSL_cleanse(derived, sizeof(derived));
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not derive an internal key"),
				 errdetail("OpenSSL's HKDF is not available.")));
	return k;
}

/* SipHash-2-4 (Aumasson and Bernstein, 2012), 64-bit output */
#define SIP_ROTL(x, b) (uint64) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND \
	do { \
		v0 += v1; v1 = SIP_ROTL(v1, 13); v1 ^= v0; v0 = SIP_ROTL(v0, 32); \
		v2 += v3; v3 = SIP_ROTL(v3, 16); v3 ^= v2; \
		v0 += v3; v3 = SIP_ROTL(v3, 21); v3 ^= v0; \
		v2 += v1; v1 = SIP_ROTL(v1, 17); v1 ^= v2; v2 = SIP_ROTL(v2, 32); \
	} while (0)

static inline uint64
sip_load64(const unsigned char *p)
{
	return (uint64) p[0] | ((uint64) p[1] << 8) | ((uint64) p[2] << 16) | ((uint64) p[3] << 24) |
		((uint64) p[4] << 32) | ((uint64) p[5] << 40) | ((uint64) p[6] << 48) | ((uint64) p[7] << 56);
}

uint64
keys_hash64(const KeyHash64 *k, const void *data, size_t len)
{
	const unsigned char *in = (const unsigned char *) data;
	const unsigned char *end = in + (len - len % 8);
	uint64		v0 = k->k0 ^ UINT64CONST(0x736f6d6570736575);
	uint64		v1 = k->k1 ^ UINT64CONST(0x646f72616e646f6d);
	uint64		v2 = k->k0 ^ UINT64CONST(0x6c7967656e657261);
	uint64		v3 = k->k1 ^ UINT64CONST(0x7465646279746573);
	uint64		b = ((uint64) len) << 56;
	uint64		m;

	/* a key wiped since the caller looked it up must not hash with zeros */
	if (!k->valid)
		elog(ERROR, "internal key used after it was forgotten");
	for (; in != end; in += 8)
	{
		m = sip_load64(in);
		v3 ^= m;
		SIP_ROUND;
		SIP_ROUND;
		v0 ^= m;
	}
	switch (len & 7)
	{
		case 7:
			b |= ((uint64) in[6]) << 48;
			/* FALLTHROUGH */
		case 6:
			b |= ((uint64) in[5]) << 40;
			/* FALLTHROUGH */
		case 5:
			b |= ((uint64) in[4]) << 32;
			/* FALLTHROUGH */
		case 4:
			b |= ((uint64) in[3]) << 24;
			/* FALLTHROUGH */
		case 3:
			b |= ((uint64) in[2]) << 16;
			/* FALLTHROUGH */
		case 2:
			b |= ((uint64) in[1]) << 8;
			/* FALLTHROUGH */
		case 1:
			b |= ((uint64) in[0]);
			break;
		case 0:
			break;
	}
	v3 ^= b;
	SIP_ROUND;
	SIP_ROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIP_ROUND;
	SIP_ROUND;
	SIP_ROUND;
	SIP_ROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* look the domain up in the catalog: id, version to use and its scheme */
static void
catalog_lookup(const char *name, int version, int32 *domain_id, int16 *use_version,
			   KeyScheme *scheme, char *fingerprint)
{
	Oid			argtypes[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	bool		isnull;
	int			ret;
	bool		domain_retired;
	bool		version_retired;
	bool		version_found;
	char	   *recorded;
	const char *recorded_column = "d.key_fingerprint";
	const char *scheme_column = "k.scheme";
	char	   *scheme_name;
	Oid			nsp;
	int			nested;
	int			path;

	values[0] = CStringGetTextDatum(name);
	values[1] = Int32GetDatum(version);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* a catalog not yet updated to 0.2.0 records no fingerprint */
	nsp = get_namespace_oid("caredata", false);
	if (get_attnum(get_relname_relid("domain", nsp), "key_fingerprint") == InvalidAttrNumber)
		recorded_column = "NULL::pg_catalog.text";
	/* ... nor a scheme: every version there is HMAC-SHA256 */
	if (get_attnum(get_relname_relid("domain_key", nsp), "scheme") == InvalidAttrNumber)
		scheme_column = "'hmac-sha256'::pg_catalog.text";
	/* on Citus the catalog is a reference table, read in a shard task too */
	path = search_path_pin();
	nested = citus_nested_begin();
	ret = SPI_execute_with_args(psprintf(
		"SELECT d.id, d.retired_at IS NOT NULL, k.version, k.retired_at IS NOT NULL, %s, %s "
		"FROM caredata.domain d "
		"LEFT JOIN caredata.domain_key k ON k.domain_id OPERATOR(pg_catalog.=) d.id "
		" AND k.version OPERATOR(pg_catalog.=) CASE WHEN $2 OPERATOR(pg_catalog.=) 0 "
		"     THEN d.current_version ELSE $2 END "
		"WHERE d.name OPERATOR(pg_catalog.=) $1", recorded_column, scheme_column),
		2, argtypes, values, NULL, true, 1);
	citus_nested_end(nested);
	search_path_unpin(path);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "domain lookup failed: %d", ret);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pseudonym domain \"%s\" does not exist", name),
				 errhint("Create it with caredata.create_domain(name, purpose).")));

	*domain_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	domain_retired = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	*use_version = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	version_found = !isnull;
	version_retired = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	recorded = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5);
	strlcpy(fingerprint, recorded ? recorded : "", KEY_FINGERPRINT_BYTES * 2 + 1);
	scheme_name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6);
	if (scheme_name == NULL || strcmp(scheme_name, "hmac-sha256") == 0)
		*scheme = KEY_SCHEME_HMAC_SHA256;
	else if (strcmp(scheme_name, "aes256-cmac") == 0)
		*scheme = KEY_SCHEME_AES256_CMAC;
	else
		elog(ERROR, "unknown pseudonym key scheme \"%s\"", scheme_name);

	key_catalog_relid = get_relname_relid("domain_key", get_namespace_oid("caredata", false));
	SPI_finish();

	if (domain_retired)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pseudonym domain \"%s\" is retired", name),
				 errdetail("A retired domain's keys are never used again.")));
	if (!version_found)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pseudonym domain \"%s\" has no key version %d", name, version)));
	if (version_retired)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("key version %d of pseudonym domain \"%s\" is retired", (int) *use_version, name),
				 errhint("Use the domain's current version.")));
}

KeyDomain *
keys_lookup_domain(const char *name, int version)
{
	KeyCacheKey key;
	KeyCacheEntry *entry;
	bool		found;
	int32		domain_id;
	int16		use_version;
	KeyScheme	scheme;
	char		recorded[KEY_FINGERPRINT_BYTES * 2 + 1];
	char		node[KEY_FINGERPRINT_BYTES * 2 + 1];

	if (strlen(name) >= DOMAIN_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("pseudonym domain names have at most %d characters", DOMAIN_NAME_MAX - 1)));
	if (version < 0 || version > PG_INT16_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key version must be between 1 and %d", PG_INT16_MAX)));

	if (hmac_algorithm == NULL)
	{
		hmac_algorithm = EVP_MAC_fetch(NULL, "HMAC", NULL);
		if (hmac_algorithm == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("OpenSSL's HMAC is not available")));
	}
	if (aes_algorithm == NULL)
	{
		aes_algorithm = EVP_CIPHER_fetch(NULL, "AES-256-ECB", NULL);
		if (aes_algorithm == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("OpenSSL's AES-256 is not available")));
	}

	if (key_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(KeyCacheKey);
		ctl.entrysize = sizeof(KeyCacheEntry);
		ctl.hcxt = TopMemoryContext;
		key_cache = hash_create("caredata domain keys", 16, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	memset(&key, 0, sizeof(key));
	strlcpy(key.name, name, sizeof(key.name));
	key.version = version;
	entry = hash_search(key_cache, &key, HASH_FIND, NULL);
	if (entry != NULL && entry->domain.mac != NULL)
		return &entry->domain;

	/* miss: consult the catalog, then derive (both may raise errors) */
	catalog_lookup(name, version, &domain_id, &use_version, &scheme, recorded);
	{
		KeyedContext *mac = keyed_context(name, use_version, scheme, node);

		/*
		 * A domain records the fingerprint of the key it was created under
		 * (none before 0.2.0): another key would give other pseudonyms, so
		 * a node whose key file differs refuses instead.
		 */
		if (recorded[0] != '\0' && strcmp(recorded, node) != 0)
		{
			keyed_context_free(mac);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("the master secret in caredata.key_file is not the one pseudonym domain \"%s\" was created under", name),
					 errdetail("Its key fingerprint differs from the one the domain records; pseudonyms made with it would not match."),
					 errhint("Install the same key file on every node; compare caredata.key_fingerprint() with caredata.domain.key_fingerprint, or run caredata.citus_check().")));
		}

		/* the catalog lookup may have processed an invalidation */
		if (key_cache == NULL)
		{
			keyed_context_free(mac);
			return keys_lookup_domain(name, version);
		}
		entry = hash_search(key_cache, &key, HASH_ENTER, &found);
		entry->domain.domain_id = domain_id;
		entry->domain.version = use_version;
		entry->domain.scheme = scheme;
		entry->domain.mac = mac;
		entry->domain.generation = keys_cache_generation;
	}
	return &entry->domain;
}

void
keys_token(KeyDomain *d, const unsigned char *data, size_t len, unsigned char *token)
{
	KeyedContext *k = (KeyedContext *) d->mac;
	unsigned char out[EVP_MAX_MD_SIZE];
	size_t		outlen = 0;

	if (likely(k->scheme == KEY_SCHEME_AES256_CMAC))
	{
		if (!cmac_compute(&k->cmac, data, len, token))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("AES-256-CMAC failed")));
		return;
	}
	/* re-initialise with the key already set: no key schedule per row */
	if (EVP_MAC_init(k->mac, NULL, 0, NULL) != 1 ||
		EVP_MAC_update(k->mac, data, len) != 1 ||
		EVP_MAC_final(k->mac, out, &outlen, sizeof(out)) != 1 ||
		outlen < CAREDATA_TOKEN_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("HMAC-SHA256 failed")));
	memcpy(token, out, CAREDATA_TOKEN_LEN);
	OPENSSL_cleanse(out, sizeof(out));
}

/* keys_token_tag64() under hmac-sha256: apart, so the AES path needs no stack array */
static pg_noinline void
token_tag64_hmac(KeyDomain *d, char tag, uint64 value, unsigned char *token)
{
	unsigned char msg[9];

	msg[0] = (unsigned char) tag;
	for (int i = 8; i >= 1; i--)
	{
		msg[i] = value & 0xFF;
		value >>= 8;
	}
	keys_token(d, msg, sizeof(msg), token);
}

/*
 * The token of a tag byte and a 64-bit value ('N' and an NHS number, 'B'
 * and a bigint): the 9-byte message tag || value big-endian, as
 * keys_token() would authenticate it; under AES-256-CMAC one AES call
 * (cmac_tag64).
 */
void
keys_token_tag64(KeyDomain *d, char tag, uint64 value, unsigned char *token)
{
	KeyedContext *k = (KeyedContext *) d->mac;

	if (likely(k->scheme == KEY_SCHEME_AES256_CMAC))
	{
		if (!cmac_tag64(&k->cmac, (uint8) tag, value, token))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("AES-256-CMAC failed")));
		return;
	}
	token_tag64_hmac(d, tag, value, token);
}

/*
 * keys_invalidate(): trigger on the key catalog.  Queues a relcache
 * invalidation of caredata.domain_key, sent at commit to every backend
 * (this one included), which then drops its cached keyed contexts.
 */
PG_FUNCTION_INFO_V1(keys_invalidate);
Datum
keys_invalidate(PG_FUNCTION_ARGS)
{
	Oid			relid = get_relname_relid("domain_key", get_namespace_oid("caredata", false));

	if (OidIsValid(relid))
		CacheInvalidateRelcacheByRelid(relid);
	return PointerGetDatum(NULL);
}

/*
 * key_fingerprint(): the master secret's fingerprint (see fingerprint_of),
 * recorded by create_domain() and compared across nodes by citus_check().
 */
PG_FUNCTION_INFO_V1(key_fingerprint);
Datum
key_fingerprint(PG_FUNCTION_ARGS)
{
	unsigned char master[MASTER_MAX_LEN + 1];
	char		hex[KEY_FINGERPRINT_BYTES * 2 + 1];
	size_t		len;
	MasterResult r;

	require_preload();
	r = read_master(master, &len);
	if (r != MASTER_OK)
	{
		OPENSSL_cleanse(master, sizeof(master));
		report_master(r);
	}
	fingerprint_of(master, len, hex);
	OPENSSL_cleanse(master, sizeof(master));
	if (hex[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("OpenSSL's HMAC-SHA256 is not available")));
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}

/*
 * key_file_status(): whether the master secret can be used, for DBAs and
 * monitoring.  Says what is wrong without the path or any key byte.
 */
PG_FUNCTION_INFO_V1(key_file_status);
Datum
key_file_status(PG_FUNCTION_ARGS)
{
	unsigned char master[MASTER_MAX_LEN + 1];
	size_t		len;
	MasterResult r = read_master(master, &len);
	const char *s = "ok";

	OPENSSL_cleanse(master, sizeof(master));
	if (!keys_preloaded)
		PG_RETURN_TEXT_P(cstring_to_text("not preloaded"));
	switch (r)
	{
		case MASTER_OK:
			s = "ok";
			break;
		case MASTER_UNSET:
			s = "not set";
			break;
		case MASTER_MISSING:
			s = "missing";
			break;
		case MASTER_DENIED:
		case MASTER_READ:
			s = "unreadable";
			break;
		case MASTER_NOT_FILE:
			s = "not a regular file";
			break;
		case MASTER_PERMISSIONS:
			s = "group or world access";
			break;
		case MASTER_OWNER:
			s = "wrong owner";
			break;
		case MASTER_SHORT:
			s = "too short";
			break;
		case MASTER_LONG:
			s = "too long";
			break;
	}
	PG_RETURN_TEXT_P(cstring_to_text(s));
}
