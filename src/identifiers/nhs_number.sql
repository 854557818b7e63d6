-- src/identifiers/nhs_number.sql
-- Type caredata.nhs_number (src/identifiers/nhs_number.c): a Modulus 11 validated NHS
-- number, stored by value like int8.  Comparison and hashing reuse the
-- server's own int8 functions (LANGUAGE internal), as contrib/isn does.

CREATE TYPE caredata.nhs_number;

CREATE FUNCTION caredata.nhs_number_in(cstring) RETURNS caredata.nhs_number
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.nhs_number_out(caredata.nhs_number) RETURNS cstring
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.nhs_number_recv(internal) RETURNS caredata.nhs_number
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.nhs_number_send(caredata.nhs_number) RETURNS bytea
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE caredata.nhs_number (
  INPUT = caredata.nhs_number_in,
  OUTPUT = caredata.nhs_number_out,
  RECEIVE = caredata.nhs_number_recv,
  SEND = caredata.nhs_number_send,
  INTERNALLENGTH = 8,
  PASSEDBYVALUE,
  ALIGNMENT = double,
  STORAGE = plain,
  CATEGORY = 'U'
);
COMMENT ON FUNCTION caredata.nhs_number_in(cstring) IS 'nhs_number text input (validates)';
COMMENT ON FUNCTION caredata.nhs_number_out(caredata.nhs_number) IS 'nhs_number text output, 943 476 5919';
COMMENT ON FUNCTION caredata.nhs_number_recv(internal) IS 'nhs_number binary input (validates)';
COMMENT ON FUNCTION caredata.nhs_number_send(caredata.nhs_number) IS 'nhs_number binary output (an int8)';
COMMENT ON TYPE caredata.nhs_number IS
  'NHS number: 10 digits with a Modulus 11 check digit; accepts 9434765919, 943 476 5919 or 943-476-5919, displays 943 476 5919';

-- comparison: the server's int8 functions, on the same representation
CREATE FUNCTION caredata.nhs_number_eq(caredata.nhs_number, caredata.nhs_number) RETURNS boolean
  AS 'int8eq' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION caredata.nhs_number_ne(caredata.nhs_number, caredata.nhs_number) RETURNS boolean
  AS 'int8ne' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION caredata.nhs_number_lt(caredata.nhs_number, caredata.nhs_number) RETURNS boolean
  AS 'int8lt' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION caredata.nhs_number_le(caredata.nhs_number, caredata.nhs_number) RETURNS boolean
  AS 'int8le' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION caredata.nhs_number_gt(caredata.nhs_number, caredata.nhs_number) RETURNS boolean
  AS 'int8gt' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION caredata.nhs_number_ge(caredata.nhs_number, caredata.nhs_number) RETURNS boolean
  AS 'int8ge' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION caredata.nhs_number_cmp(caredata.nhs_number, caredata.nhs_number) RETURNS integer
  AS 'btint8cmp' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION caredata.nhs_number_sortsupport(internal) RETURNS void
  AS 'btint8sortsupport' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.nhs_number_hash(caredata.nhs_number) RETURNS integer
  AS 'hashint8' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION caredata.nhs_number_hash_extended(caredata.nhs_number, bigint) RETURNS bigint
  AS 'hashint8extended' LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION caredata.nhs_number_eq(caredata.nhs_number, caredata.nhs_number) IS 'implementation of = (int8eq)';
COMMENT ON FUNCTION caredata.nhs_number_ne(caredata.nhs_number, caredata.nhs_number) IS 'implementation of <> (int8ne)';
COMMENT ON FUNCTION caredata.nhs_number_lt(caredata.nhs_number, caredata.nhs_number) IS 'implementation of < (int8lt)';
COMMENT ON FUNCTION caredata.nhs_number_le(caredata.nhs_number, caredata.nhs_number) IS 'implementation of <= (int8le)';
COMMENT ON FUNCTION caredata.nhs_number_gt(caredata.nhs_number, caredata.nhs_number) IS 'implementation of > (int8gt)';
COMMENT ON FUNCTION caredata.nhs_number_ge(caredata.nhs_number, caredata.nhs_number) IS 'implementation of >= (int8ge)';
COMMENT ON FUNCTION caredata.nhs_number_cmp(caredata.nhs_number, caredata.nhs_number) IS 'btree comparison (btint8cmp)';
COMMENT ON FUNCTION caredata.nhs_number_sortsupport(internal) IS 'btree sort support (btint8sortsupport)';
COMMENT ON FUNCTION caredata.nhs_number_hash(caredata.nhs_number) IS 'hash, equal to hashint8 of the same digits';
COMMENT ON FUNCTION caredata.nhs_number_hash_extended(caredata.nhs_number, bigint) IS 'seeded 64-bit hash, equal to hashint8extended';

CREATE OPERATOR caredata.= (
  LEFTARG = caredata.nhs_number, RIGHTARG = caredata.nhs_number,
  PROCEDURE = caredata.nhs_number_eq,
  COMMUTATOR = OPERATOR(caredata.=), NEGATOR = OPERATOR(caredata.<>),
  RESTRICT = eqsel, JOIN = eqjoinsel, MERGES, HASHES
);
CREATE OPERATOR caredata.<> (
  LEFTARG = caredata.nhs_number, RIGHTARG = caredata.nhs_number,
  PROCEDURE = caredata.nhs_number_ne,
  COMMUTATOR = OPERATOR(caredata.<>), NEGATOR = OPERATOR(caredata.=),
  RESTRICT = neqsel, JOIN = neqjoinsel
);
CREATE OPERATOR caredata.< (
  LEFTARG = caredata.nhs_number, RIGHTARG = caredata.nhs_number,
  PROCEDURE = caredata.nhs_number_lt,
  COMMUTATOR = OPERATOR(caredata.>), NEGATOR = OPERATOR(caredata.>=),
  RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);
CREATE OPERATOR caredata.<= (
  LEFTARG = caredata.nhs_number, RIGHTARG = caredata.nhs_number,
  PROCEDURE = caredata.nhs_number_le,
  COMMUTATOR = OPERATOR(caredata.>=), NEGATOR = OPERATOR(caredata.>),
  RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);
CREATE OPERATOR caredata.> (
  LEFTARG = caredata.nhs_number, RIGHTARG = caredata.nhs_number,
  PROCEDURE = caredata.nhs_number_gt,
  COMMUTATOR = OPERATOR(caredata.<), NEGATOR = OPERATOR(caredata.<=),
  RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);
CREATE OPERATOR caredata.>= (
  LEFTARG = caredata.nhs_number, RIGHTARG = caredata.nhs_number,
  PROCEDURE = caredata.nhs_number_ge,
  COMMUTATOR = OPERATOR(caredata.<=), NEGATOR = OPERATOR(caredata.<),
  RESTRICT = scalargesel, JOIN = scalargejoinsel
);

CREATE OPERATOR FAMILY caredata.nhs_number_ops USING btree;
CREATE OPERATOR FAMILY caredata.nhs_number_ops USING hash;

CREATE OPERATOR CLASS caredata.nhs_number_ops
  DEFAULT FOR TYPE caredata.nhs_number USING btree FAMILY caredata.nhs_number_ops AS
    OPERATOR 1 caredata.<,
    OPERATOR 2 caredata.<=,
    OPERATOR 3 caredata.=,
    OPERATOR 4 caredata.>=,
    OPERATOR 5 caredata.>,
    FUNCTION 1 caredata.nhs_number_cmp(caredata.nhs_number, caredata.nhs_number),
    FUNCTION 2 caredata.nhs_number_sortsupport(internal),
    -- equal values are equal bytes: B-tree deduplication (a table holds many rows per patient)
    FUNCTION 4 btequalimage(oid);

CREATE OPERATOR CLASS caredata.nhs_number_ops
  DEFAULT FOR TYPE caredata.nhs_number USING hash FAMILY caredata.nhs_number_ops AS
    OPERATOR 1 caredata.=,
    FUNCTION 1 caredata.nhs_number_hash(caredata.nhs_number),
    FUNCTION 2 caredata.nhs_number_hash_extended(caredata.nhs_number, bigint);

-- conversions
CREATE FUNCTION caredata.nhs_number(bigint) RETURNS caredata.nhs_number
  AS 'MODULE_PATHNAME', 'nhs_number_from_int8' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.nhs_number(bigint) IS
  'bigint to nhs_number, validated (Modulus 11); raises 22P02 if invalid';

CREATE FUNCTION caredata.nhs_number(text) RETURNS caredata.nhs_number
  AS 'MODULE_PATHNAME', 'nhs_number_from_text' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.nhs_number(text) IS
  'text to nhs_number, validated (Modulus 11); raises 22P02 if invalid';

CREATE CAST (caredata.nhs_number AS bigint) WITHOUT FUNCTION AS ASSIGNMENT;
CREATE CAST (bigint AS caredata.nhs_number) WITH FUNCTION caredata.nhs_number(bigint);
CREATE CAST (caredata.nhs_number AS text) WITH INOUT AS ASSIGNMENT;
CREATE CAST (text AS caredata.nhs_number) WITH FUNCTION caredata.nhs_number(text);

-- cleaning and classification
CREATE FUNCTION caredata.try_nhs_number(text) RETURNS caredata.nhs_number
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.try_nhs_number(text) IS
  'text to nhs_number, or NULL when the text is not a valid NHS number (for bulk cleaning)';

CREATE FUNCTION caredata.nhs_number_is_valid(text) RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.nhs_number_is_valid(text) IS
  'true when the text is a valid NHS number (10 digits, Modulus 11, not all digits the same)';

-- not STRICT: NULL is 'missing', as blank text is
CREATE FUNCTION caredata.nhs_number_invalid_reason(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.nhs_number_invalid_reason(text) IS
  'why a text is not a valid NHS number (missing: NULL or only white space; non_digit, grouping, length, check_digit_10, check_digit, repeated_digit), NULL when valid; never shows the value';

CREATE FUNCTION caredata.nhs_number_is_test(caredata.nhs_number) RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.nhs_number_is_test(caredata.nhs_number) IS
  'true for the synthetic test range 999 000 0000 to 999 999 9999';
