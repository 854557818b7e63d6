-- src/keys/pseudonym.sql
-- Type caredata.pseudonym and caredata.pseudonymise (src/keys/pseudonym.c).

CREATE TYPE caredata.pseudonym;

CREATE FUNCTION caredata.pseudonym_in(cstring) RETURNS caredata.pseudonym
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.pseudonym_out(caredata.pseudonym) RETURNS cstring
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.pseudonym_recv(internal) RETURNS caredata.pseudonym
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.pseudonym_send(caredata.pseudonym) RETURNS bytea
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.pseudonym_in(cstring) IS 'pseudonym text input: <domain id>.<version>.<22 base64url>';
COMMENT ON FUNCTION caredata.pseudonym_out(caredata.pseudonym) IS 'pseudonym text output';
COMMENT ON FUNCTION caredata.pseudonym_recv(internal) IS 'pseudonym binary input (validates)';
COMMENT ON FUNCTION caredata.pseudonym_send(caredata.pseudonym) IS 'pseudonym binary output';

CREATE TYPE caredata.pseudonym (
  INPUT = caredata.pseudonym_in,
  OUTPUT = caredata.pseudonym_out,
  RECEIVE = caredata.pseudonym_recv,
  SEND = caredata.pseudonym_send,
  INTERNALLENGTH = 24,
  ALIGNMENT = int4,
  STORAGE = plain,
  CATEGORY = 'U'
);
COMMENT ON TYPE caredata.pseudonym IS
  'keyed pseudonym: 128-bit keyed token (AES-256-CMAC; HMAC-SHA256 for key versions made before 0.2.0) with its domain and key version; text form <domain id>.<version>.<token>';

CREATE FUNCTION caredata.pseudonym_eq(caredata.pseudonym, caredata.pseudonym) RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION caredata.pseudonym_ne(caredata.pseudonym, caredata.pseudonym) RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION caredata.pseudonym_lt(caredata.pseudonym, caredata.pseudonym) RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION caredata.pseudonym_le(caredata.pseudonym, caredata.pseudonym) RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION caredata.pseudonym_gt(caredata.pseudonym, caredata.pseudonym) RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION caredata.pseudonym_ge(caredata.pseudonym, caredata.pseudonym) RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION caredata.pseudonym_cmp(caredata.pseudonym, caredata.pseudonym) RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION caredata.pseudonym_hash(caredata.pseudonym) RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION caredata.pseudonym_hash_extended(caredata.pseudonym, bigint) RETURNS bigint
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION caredata.pseudonym_eq(caredata.pseudonym, caredata.pseudonym) IS 'implementation of =';
COMMENT ON FUNCTION caredata.pseudonym_ne(caredata.pseudonym, caredata.pseudonym) IS 'implementation of <>';
COMMENT ON FUNCTION caredata.pseudonym_lt(caredata.pseudonym, caredata.pseudonym) IS 'implementation of <';
COMMENT ON FUNCTION caredata.pseudonym_le(caredata.pseudonym, caredata.pseudonym) IS 'implementation of <=';
COMMENT ON FUNCTION caredata.pseudonym_gt(caredata.pseudonym, caredata.pseudonym) IS 'implementation of >';
COMMENT ON FUNCTION caredata.pseudonym_ge(caredata.pseudonym, caredata.pseudonym) IS 'implementation of >=';
COMMENT ON FUNCTION caredata.pseudonym_cmp(caredata.pseudonym, caredata.pseudonym) IS 'btree comparison: domain, version, token';
COMMENT ON FUNCTION caredata.pseudonym_hash(caredata.pseudonym) IS 'hash for hash joins, hash indexes and distribution';
COMMENT ON FUNCTION caredata.pseudonym_hash_extended(caredata.pseudonym, bigint) IS 'seeded 64-bit hash';

CREATE OPERATOR caredata.= (
  LEFTARG = caredata.pseudonym, RIGHTARG = caredata.pseudonym, PROCEDURE = caredata.pseudonym_eq,
  COMMUTATOR = OPERATOR(caredata.=), NEGATOR = OPERATOR(caredata.<>),
  RESTRICT = eqsel, JOIN = eqjoinsel, MERGES, HASHES
);
CREATE OPERATOR caredata.<> (
  LEFTARG = caredata.pseudonym, RIGHTARG = caredata.pseudonym, PROCEDURE = caredata.pseudonym_ne,
  COMMUTATOR = OPERATOR(caredata.<>), NEGATOR = OPERATOR(caredata.=),
  RESTRICT = neqsel, JOIN = neqjoinsel
);
CREATE OPERATOR caredata.< (
  LEFTARG = caredata.pseudonym, RIGHTARG = caredata.pseudonym, PROCEDURE = caredata.pseudonym_lt,
  COMMUTATOR = OPERATOR(caredata.>), NEGATOR = OPERATOR(caredata.>=),
  RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);
CREATE OPERATOR caredata.<= (
  LEFTARG = caredata.pseudonym, RIGHTARG = caredata.pseudonym, PROCEDURE = caredata.pseudonym_le,
  COMMUTATOR = OPERATOR(caredata.>=), NEGATOR = OPERATOR(caredata.>),
  RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);
CREATE OPERATOR caredata.> (
  LEFTARG = caredata.pseudonym, RIGHTARG = caredata.pseudonym, PROCEDURE = caredata.pseudonym_gt,
  COMMUTATOR = OPERATOR(caredata.<), NEGATOR = OPERATOR(caredata.<=),
  RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);
CREATE OPERATOR caredata.>= (
  LEFTARG = caredata.pseudonym, RIGHTARG = caredata.pseudonym, PROCEDURE = caredata.pseudonym_ge,
  COMMUTATOR = OPERATOR(caredata.<=), NEGATOR = OPERATOR(caredata.<),
  RESTRICT = scalargesel, JOIN = scalargejoinsel
);

CREATE OPERATOR FAMILY caredata.pseudonym_ops USING btree;
CREATE OPERATOR FAMILY caredata.pseudonym_ops USING hash;
CREATE OPERATOR CLASS caredata.pseudonym_ops
  DEFAULT FOR TYPE caredata.pseudonym USING btree FAMILY caredata.pseudonym_ops AS
    OPERATOR 1 caredata.<, OPERATOR 2 caredata.<=, OPERATOR 3 caredata.=,
    OPERATOR 4 caredata.>=, OPERATOR 5 caredata.>,
    FUNCTION 1 caredata.pseudonym_cmp(caredata.pseudonym, caredata.pseudonym),
    -- equal values are equal bytes: B-tree deduplication (a table holds many rows per patient)
    FUNCTION 4 btequalimage(oid);
CREATE OPERATOR CLASS caredata.pseudonym_ops
  DEFAULT FOR TYPE caredata.pseudonym USING hash FAMILY caredata.pseudonym_ops AS
    OPERATOR 1 caredata.=,
    FUNCTION 1 caredata.pseudonym_hash(caredata.pseudonym),
    FUNCTION 2 caredata.pseudonym_hash_extended(caredata.pseudonym, bigint);

CREATE FUNCTION caredata.pseudonym_domain_id(caredata.pseudonym) RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.pseudonym_domain_id(caredata.pseudonym) IS 'the id of the domain a pseudonym belongs to';
CREATE FUNCTION caredata.pseudonym_key_version(caredata.pseudonym) RETURNS smallint
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.pseudonym_key_version(caredata.pseudonym) IS 'the key version a pseudonym was made with';

CREATE FUNCTION caredata.pseudonym_domain(p caredata.pseudonym) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT d.name FROM caredata.domain d WHERE d.id = caredata.pseudonym_domain_id(p) $$;
COMMENT ON FUNCTION caredata.pseudonym_domain(caredata.pseudonym) IS
  'the name of the domain a pseudonym belongs to (NULL if unknown here); admin, linker and re-identifier only';
-- domain names name recipients and studies: not for everyone (a made-up
-- pseudonym per domain id would list them all)
REVOKE ALL ON FUNCTION caredata.pseudonym_domain(caredata.pseudonym) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.pseudonym_domain(caredata.pseudonym) TO caredata_admin, caredata_linker, caredata_reidentifier;

-- keyed: the linker and admin roles only (docs/security.md "Keyed functions").
-- pseudonymise() is the NHS-number path whatever the argument's type: one
-- number, one token ('N' + the number), whether it comes as nhs_number, as
-- text in any layout nhs_number_in accepts (a quoted literal resolves to the
-- text variant) or as bigint (an unadorned 10-digit literal is a bigint);
-- an invalid NHS number is refused, with the nhs_number type's errors, which
-- never show the value.  Other identifiers take pseudonymise_identifier(),
-- whose tokens are tagged by type ('B' bigint, 'T' text): never an NHS
-- number's token by accident.
CREATE FUNCTION caredata.pseudonymise(value caredata.nhs_number, domain text) RETURNS caredata.pseudonym
  AS 'MODULE_PATHNAME', 'pseudonymise_nhs_number' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.pseudonymise(value caredata.nhs_number, domain text, version integer) RETURNS caredata.pseudonym
  AS 'MODULE_PATHNAME', 'pseudonymise_nhs_number' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.pseudonymise(value bigint, domain text) RETURNS caredata.pseudonym
  AS 'MODULE_PATHNAME', 'pseudonymise_int8' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.pseudonymise(value bigint, domain text, version integer) RETURNS caredata.pseudonym
  AS 'MODULE_PATHNAME', 'pseudonymise_int8' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.pseudonymise(value text, domain text) RETURNS caredata.pseudonym
  AS 'MODULE_PATHNAME', 'pseudonymise_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.pseudonymise(value text, domain text, version integer) RETURNS caredata.pseudonym
  AS 'MODULE_PATHNAME', 'pseudonymise_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.pseudonymise(caredata.nhs_number, text) IS
  'keyed pseudonym of an NHS number in a domain, at its current key version';
COMMENT ON FUNCTION caredata.pseudonymise(caredata.nhs_number, text, integer) IS
  'keyed pseudonym of an NHS number in a domain at a given (not retired) key version';
COMMENT ON FUNCTION caredata.pseudonymise(bigint, text) IS
  'keyed pseudonym of an NHS number given as bigint (refused if invalid; the same token as the nhs_number), at the current key version';
COMMENT ON FUNCTION caredata.pseudonymise(bigint, text, integer) IS
  'keyed pseudonym of an NHS number given as bigint (refused if invalid; the same token as the nhs_number), at a given key version';
COMMENT ON FUNCTION caredata.pseudonymise(text, text) IS
  'keyed pseudonym of an NHS number given as text in any accepted layout (refused if invalid; the same token as the nhs_number), at the current key version';
COMMENT ON FUNCTION caredata.pseudonymise(text, text, integer) IS
  'keyed pseudonym of an NHS number given as text in any accepted layout (refused if invalid; the same token as the nhs_number), at a given key version';

CREATE FUNCTION caredata.pseudonymise_identifier(value bigint, domain text) RETURNS caredata.pseudonym
  AS 'MODULE_PATHNAME', 'pseudonymise_identifier_int8' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.pseudonymise_identifier(value bigint, domain text, version integer) RETURNS caredata.pseudonym
  AS 'MODULE_PATHNAME', 'pseudonymise_identifier_int8' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.pseudonymise_identifier(value text, domain text) RETURNS caredata.pseudonym
  AS 'MODULE_PATHNAME', 'pseudonymise_identifier_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.pseudonymise_identifier(value text, domain text, version integer) RETURNS caredata.pseudonym
  AS 'MODULE_PATHNAME', 'pseudonymise_identifier_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.pseudonymise_identifier(bigint, text) IS
  'keyed pseudonym of a bigint identifier (not an NHS number: never its token) in a domain, at its current key version';
COMMENT ON FUNCTION caredata.pseudonymise_identifier(bigint, text, integer) IS
  'keyed pseudonym of a bigint identifier (not an NHS number: never its token) in a domain at a given (not retired) key version';
COMMENT ON FUNCTION caredata.pseudonymise_identifier(text, text) IS
  'keyed pseudonym of a text identifier, its bytes exactly (not an NHS number: never its token), in a domain at its current key version';
COMMENT ON FUNCTION caredata.pseudonymise_identifier(text, text, integer) IS
  'keyed pseudonym of a text identifier, its bytes exactly (not an NHS number: never its token), in a domain at a given (not retired) key version';

REVOKE ALL ON FUNCTION
  caredata.pseudonymise(caredata.nhs_number, text), caredata.pseudonymise(caredata.nhs_number, text, integer),
  caredata.pseudonymise(bigint, text), caredata.pseudonymise(bigint, text, integer),
  caredata.pseudonymise(text, text), caredata.pseudonymise(text, text, integer),
  caredata.pseudonymise_identifier(bigint, text), caredata.pseudonymise_identifier(bigint, text, integer),
  caredata.pseudonymise_identifier(text, text), caredata.pseudonymise_identifier(text, text, integer)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  caredata.pseudonymise(caredata.nhs_number, text), caredata.pseudonymise(caredata.nhs_number, text, integer),
  caredata.pseudonymise(bigint, text), caredata.pseudonymise(bigint, text, integer),
  caredata.pseudonymise(text, text), caredata.pseudonymise(text, text, integer),
  caredata.pseudonymise_identifier(bigint, text), caredata.pseudonymise_identifier(bigint, text, integer),
  caredata.pseudonymise_identifier(text, text), caredata.pseudonymise_identifier(text, text, integer)
  TO caredata_linker, caredata_admin;
