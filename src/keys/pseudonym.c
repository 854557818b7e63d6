/*-------------------------------------------------------------------------
 *
 * pseudonym.c
 *		The pseudonym type and pseudonymise().
 *
 * Owns the keyed token type: a 128-bit keyed token under a domain's key
 * (AES-256-CMAC, or HMAC-SHA256 truncated for key versions made before
 * 0.2.0: the key version's scheme, src/keys/keys.c), plus the domain and
 * key version it belongs to.  Deterministic within a domain and version;
 * tokens of different domains are unrelated because their keys are
 * independent HKDF outputs (src/keys/keys.c).
 *
 * Text form: "<domain id>.<key version>.<token>", the token in unpadded
 * base64url (22 characters), at most 39 characters in all, e.g.
 * "3.1.q2Xw0JzH7b8m9ZKxq3vTfA".
 *
 * What is authenticated is a type tag and the value's canonical bytes:
 * 'N' + 8 big-endian bytes for an NHS number, 'B' + 8 for a bigint
 * identifier, 'T' + the text's bytes for a text identifier.
 *
 * pseudonymise() is the NHS-number path whatever the argument's type: an
 * nhs_number, a text in any layout nhs_number_in accepts, or a bigint all
 * give the 'N' token of the same number, and an invalid NHS number is
 * refused (with the nhs_number type's errors, which never show the value).
 * A quoted literal resolves to the text variant, so that variant must not
 * mean anything else.  Arbitrary identifiers take the separately named
 * pseudonymise_identifier(), whose tokens are tagged by type ('B', 'T': the
 * same digits as bigint and as text give different tokens, and neither is
 * an NHS number's token).
 *
 * src/keys/pseudonym.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"

#include "keys.h"
#include "identifiers/identifiers.h"
#include "base/pg_compat.h"

typedef struct Pseudonym
{
	int32		domain_id;
	int16		version;
	int16		reserved;		/* always 0 */
	uint8		token[CAREDATA_TOKEN_LEN];
} Pseudonym;

#define PSEUDONYM_TEXT_MAX	40
#define TOKEN_B64_LEN		22

#define DatumGetPseudonymP(X)	((Pseudonym *) DatumGetPointer(X))
#define PG_GETARG_PSEUDONYM_P(n) DatumGetPseudonymP(PG_GETARG_DATUM(n))

static const char b64url[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void
token_encode(const uint8 *in, char *out)
{
	uint32		acc = 0;
	int			bits = 0;
	int			n = 0;

	for (int i = 0; i < CAREDATA_TOKEN_LEN; i++)
	{
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6)
		{
			bits -= 6;
			out[n++] = b64url[(acc >> bits) & 0x3F];
		}
	}
	if (bits > 0)
		out[n++] = b64url[(acc << (6 - bits)) & 0x3F];
	out[n] = '\0';
}

static int
b64url_value(char c)
{
	const char *p = strchr(b64url, c);

	return (c != '\0' && p) ? (int) (p - b64url) : -1;
}

static bool
token_decode(const char *in, uint8 *out)
{
	uint32		acc = 0;
	int			bits = 0;
	int			n = 0;

	for (int i = 0; i < TOKEN_B64_LEN; i++)
	{
		int			v = b64url_value(in[i]);

		if (v < 0)
			return false;
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			out[n++] = (acc >> bits) & 0xFF;
		}
	}
	/* the 4 padding bits of the last character must be zero: one spelling */
	return n == CAREDATA_TOKEN_LEN && (acc & ((1u << bits) - 1)) == 0;
}

static void
bad_pseudonym(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type pseudonym"),
			 errdetail("%s", detail),
			 errhint("A pseudonym is written <domain id>.<key version>.<22 base64url characters>, as pseudonymise() returns it.")));
}

/*
 * Parse the text form into *p; NULL on success, else what is wrong (a
 * message detail that never echoes the input).
 */
static const char *
pseudonym_parse(const char *str, Pseudonym *p)
{
	char	   *end;
	long		d,
				v;

	errno = 0;
	if (!isdigit((unsigned char) *str))
		return "It does not start with a domain id.";
	d = strtol(str, &end, 10);
	if (errno != 0 || *end != '.' || d < 1 || d > PG_INT32_MAX)
		return "The domain id is not a positive integer followed by a dot.";
	str = end + 1;
	if (!isdigit((unsigned char) *str))
		return "The key version is missing.";
	v = strtol(str, &end, 10);
	if (errno != 0 || *end != '.' || v < 1 || v > PG_INT16_MAX)
		return "The key version is not a positive integer followed by a dot.";
	str = end + 1;
	if (strlen(str) != TOKEN_B64_LEN || !token_decode(str, p->token))
		return "The token is not the 22-character base64url form of 128 bits.";
	p->domain_id = (int32) d;
	p->version = (int16) v;
	p->reserved = 0;
	return NULL;
}

/* a pseudonym's text form into its 24 bytes, or 22P02 (keys.h) */
void
keys_pseudonym_from_cstring(const char *str, void *out)
{
	Pseudonym	p;
	const char *detail;

	StaticAssertStmt(sizeof(Pseudonym) == CAREDATA_PSEUDONYM_BYTES, "a pseudonym is 24 bytes");
	memset(&p, 0, sizeof(p));
	detail = pseudonym_parse(str, &p);
	if (detail)
		bad_pseudonym(detail);
	memcpy(out, &p, sizeof(p));
}

PG_FUNCTION_INFO_V1(pseudonym_in);
Datum
pseudonym_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	Pseudonym  *p = palloc0(sizeof(Pseudonym));
	const char *detail = pseudonym_parse(str, p);

	if (detail)
		bad_pseudonym(detail);
	PG_RETURN_POINTER(p);
}

PG_FUNCTION_INFO_V1(pseudonym_out);
Datum
pseudonym_out(PG_FUNCTION_ARGS)
{
	Pseudonym  *p = PG_GETARG_PSEUDONYM_P(0);
	char		tok[TOKEN_B64_LEN + 1];

	token_encode(p->token, tok);
	PG_RETURN_CSTRING(psprintf("%d.%d.%s", p->domain_id, (int) p->version, tok));
}

PG_FUNCTION_INFO_V1(pseudonym_recv);
Datum
pseudonym_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	Pseudonym  *p = palloc0(sizeof(Pseudonym));

	p->domain_id = pq_getmsgint(buf, 4);
	p->version = pq_getmsgint(buf, 2);
	pq_copymsgbytes(buf, (char *) p->token, CAREDATA_TOKEN_LEN);
	if (p->domain_id < 1 || p->version < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary pseudonym"),
				 errdetail("The domain id and key version must be positive.")));
	PG_RETURN_POINTER(p);
}

PG_FUNCTION_INFO_V1(pseudonym_send);
Datum
pseudonym_send(PG_FUNCTION_ARGS)
{
	Pseudonym  *p = PG_GETARG_PSEUDONYM_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, p->domain_id);
	pq_sendint16(&buf, p->version);
	pq_sendbytes(&buf, (char *) p->token, CAREDATA_TOKEN_LEN);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

static int
pseudonym_cmp_internal(const Pseudonym *a, const Pseudonym *b)
{
	if (a->domain_id != b->domain_id)
		return a->domain_id < b->domain_id ? -1 : 1;
	if (a->version != b->version)
		return a->version < b->version ? -1 : 1;
	return memcmp(a->token, b->token, CAREDATA_TOKEN_LEN);
}

#define PSEUDONYM_CMP_FN(name, expr) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	int			c = pseudonym_cmp_internal(PG_GETARG_PSEUDONYM_P(0), PG_GETARG_PSEUDONYM_P(1)); \
	PG_RETURN_BOOL(expr); \
}

PSEUDONYM_CMP_FN(pseudonym_eq, c == 0)
PSEUDONYM_CMP_FN(pseudonym_ne, c != 0)
PSEUDONYM_CMP_FN(pseudonym_lt, c < 0)
PSEUDONYM_CMP_FN(pseudonym_le, c <= 0)
PSEUDONYM_CMP_FN(pseudonym_gt, c > 0)
PSEUDONYM_CMP_FN(pseudonym_ge, c >= 0)

PG_FUNCTION_INFO_V1(pseudonym_cmp);
Datum
pseudonym_cmp(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(pseudonym_cmp_internal(PG_GETARG_PSEUDONYM_P(0), PG_GETARG_PSEUDONYM_P(1)));
}

PG_FUNCTION_INFO_V1(pseudonym_hash);
Datum
pseudonym_hash(PG_FUNCTION_ARGS)
{
	Pseudonym  *p = PG_GETARG_PSEUDONYM_P(0);

	return hash_any((const unsigned char *) p, sizeof(Pseudonym));
}

PG_FUNCTION_INFO_V1(pseudonym_hash_extended);
Datum
pseudonym_hash_extended(PG_FUNCTION_ARGS)
{
	Pseudonym  *p = PG_GETARG_PSEUDONYM_P(0);

	return hash_any_extended((const unsigned char *) p, sizeof(Pseudonym),
							 PG_GETARG_INT64(1));
}

PG_FUNCTION_INFO_V1(pseudonym_domain_id);
Datum
pseudonym_domain_id(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(PG_GETARG_PSEUDONYM_P(0)->domain_id);
}

PG_FUNCTION_INFO_V1(pseudonym_key_version);
Datum
pseudonym_key_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT16(PG_GETARG_PSEUDONYM_P(0)->version);
}

/*
 * Per call site cache: the resolved domain for the last domain name seen,
 * valid while the key store's generation is unchanged.  When the domain
 * argument is a constant (or a query parameter) at this call site, the
 * name is compared once, not on every row.
 */
typedef struct PseudonymiseCache
{
	uint64		generation;
	int32		version;
	bool		name_stable;	/* the domain argument cannot change here */
	KeyDomain  *domain;
	char		name[64];
} PseudonymiseCache;

static pg_noinline KeyDomain *
resolve_domain_slow(FunctionCallInfo fcinfo, int32 version)
{
	PseudonymiseCache *c = (PseudonymiseCache *) fcinfo->flinfo->fn_extra;
	text	   *name_t;
	int			len;

	if (c == NULL)
	{
		c = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(PseudonymiseCache));
		c->name_stable = get_fn_expr_arg_stable(fcinfo->flinfo, 1);
		fcinfo->flinfo->fn_extra = c;
	}
	/* the domain argument, read only when it must be compared */
	name_t = PG_GETARG_TEXT_PP(1);
	len = VARSIZE_ANY_EXHDR(name_t);
	if (c->domain != NULL && c->generation == keys_generation() &&
		c->version == version && len < (int) sizeof(c->name) &&
		strncmp(c->name, VARDATA_ANY(name_t), len) == 0 && c->name[len] == '\0')
		return c->domain;

	{
		char	   *name = text_to_cstring(name_t);

		c->domain = NULL;
		c->domain = keys_lookup_domain(name, version);
		c->generation = keys_generation();
		c->version = version;
		strlcpy(c->name, name, sizeof(c->name));
	}
	return c->domain;
}

/* the domain of this call: from the call site's cache when nothing changed */
static inline KeyDomain *
resolve_domain(FunctionCallInfo fcinfo, int32 version)
{
	PseudonymiseCache *c = (PseudonymiseCache *) fcinfo->flinfo->fn_extra;

	if (likely(c != NULL && c->name_stable && c->domain != NULL &&
			   c->generation == keys_generation() && c->version == version))
		return c->domain;
	return resolve_domain_slow(fcinfo, version);
}

static Datum
make_pseudonym(FunctionCallInfo fcinfo, char tag, const unsigned char *data,
			   size_t len, int32 version)
{
	KeyDomain  *d = resolve_domain(fcinfo, version);
	Pseudonym  *p = palloc(sizeof(Pseudonym));
	unsigned char small[1 + 8];
	unsigned char *msg = small;

	if (len > 8)
		msg = palloc(len + 1);
	msg[0] = (unsigned char) tag;
	memcpy(msg + 1, data, len);
	keys_token(d, msg, len + 1, p->token);
	if (msg != small)
		pfree(msg);
	p->domain_id = d->domain_id;
	p->version = d->version;
	p->reserved = 0;
	PG_RETURN_POINTER(p);
}

/* a tag and an 8-byte value: keys_token_tag64's message, the same token */
static Datum
make_pseudonym64(FunctionCallInfo fcinfo, char tag, int64 value, int32 version)
{
	KeyDomain  *d = resolve_domain(fcinfo, version);
	Pseudonym  *p = palloc(sizeof(Pseudonym));

	keys_token_tag64(d, tag, (uint64) value, p->token);
	p->domain_id = d->domain_id;
	p->version = d->version;
	p->reserved = 0;
	PG_RETURN_POINTER(p);
}

static int32
version_arg(FunctionCallInfo fcinfo)
{
	if (PG_NARGS() < 3)
		return 0;
	if (PG_GETARG_INT32(2) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key version must be positive")));
	return PG_GETARG_INT32(2);
}

/* the NHS-number path: one token per number, whatever the type it came as */
static Datum
nhs_pseudonym(FunctionCallInfo fcinfo, int64 nhs)
{
	return make_pseudonym64(fcinfo, 'N', nhs, version_arg(fcinfo));
}

PG_FUNCTION_INFO_V1(pseudonymise_nhs_number);
Datum
pseudonymise_nhs_number(PG_FUNCTION_ARGS)
{
	return nhs_pseudonym(fcinfo, PG_GETARG_NHS_NUMBER(0));
}

/* pseudonymise(bigint, ...): the bigint is an NHS number, checked */
PG_FUNCTION_INFO_V1(pseudonymise_int8);
Datum
pseudonymise_int8(PG_FUNCTION_ARGS)
{
	return nhs_pseudonym(fcinfo, nhs_number_from_int8_or_error(PG_GETARG_INT64(0)));
}

/* pseudonymise(text, ...): the text is an NHS number, read as nhs_number_in does */
PG_FUNCTION_INFO_V1(pseudonymise_text);
Datum
pseudonymise_text(PG_FUNCTION_ARGS)
{
	return nhs_pseudonym(fcinfo, nhs_number_from_text_or_error(PG_GETARG_TEXT_PP(0)));
}

/* pseudonymise_identifier(bigint, ...): any bigint, tagged 'B' */
PG_FUNCTION_INFO_V1(pseudonymise_identifier_int8);
Datum
pseudonymise_identifier_int8(PG_FUNCTION_ARGS)
{
	return make_pseudonym64(fcinfo, 'B', PG_GETARG_INT64(0), version_arg(fcinfo));
}

/* pseudonymise_identifier(text, ...): the text's bytes exactly, tagged 'T' */
PG_FUNCTION_INFO_V1(pseudonymise_identifier_text);
Datum
pseudonymise_identifier_text(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);

	return make_pseudonym(fcinfo, 'T', (const unsigned char *) VARDATA_ANY(t),
						  VARSIZE_ANY_EXHDR(t), version_arg(fcinfo));
}
