/* caredata--0.1.0.sql: caredata 0.1.0, install script (released 2026-11-29; never edited) */
-- Assembled by the Makefile from the SQL_SRC files of release 0.1.0.

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION caredata" to load this file. \quit


-- ---- src/caredata.sql ----
-- src/caredata.sql
-- The schema comment; every concern's objects follow in their own files.
-- CREATE EXTENSION creates the schema named in caredata.control when it does
-- not exist; PostgreSQL does not make it a member of the extension, so an
-- empty schema caredata remains after DROP EXTENSION (docs/install.md).

COMMENT ON SCHEMA caredata IS
  'caredata: health-data linkage and de-identification (identifiers, pseudonyms, objections, disclosure control)';

-- Every role may use the schema: its types (nhs_number, later pseudonym) appear
-- in published views, and the identifier standardisers hold no secret.
-- Keyed and privileged functions revoke EXECUTE from PUBLIC one by one
-- (see DESIGN.md "Roles").
GRANT USAGE ON SCHEMA caredata TO PUBLIC;

-- ---- src/roles.sql ----
-- src/roles.sql
-- The roles of DESIGN.md "Roles", created when missing.  Roles belong to the
-- cluster, not to a database, so DROP EXTENSION leaves them (docs/security.md);
-- the extension only grants to them.  None can log in: grant them to login
-- roles.
DO $roles$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT * FROM (VALUES
      ('caredata_admin', 'manages domains, objections, publications'),
      ('caredata_linker', 'reads raw sources, runs linkage, computes pseudonyms'),
      ('caredata_analyst', 'reads published views and runs safe aggregates'),
      ('caredata_reidentifier', 'may call reidentify, every call audited'),
      ('caredata_patient', 'patient-facing logins: see only rows with their own NHS number (subject access)')) v(name, what)
  LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r.name) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r.name);
      EXECUTE format('COMMENT ON ROLE %I IS %L', r.name, 'caredata: ' || r.what);
    END IF;
  END LOOP;
END
$roles$;

-- ---- src/audit.sql ----
-- src/audit.sql
-- The audit log: every privileged step (key and domain operations, feed
-- loads, exemptions, protections, linkage runs; later publications and
-- re-identifications), who, when, what and why, in an append-only table
-- (each step's function appends its entry, in the step's transaction; not
-- triggers on the catalogs, which would fire again when a dump is restored)
-- whose rows are hash-chained.  audit_verify() recomputes the chain: an
-- entry edited, inserted or deleted by hand (even by the owner, who can get
-- past the triggers that refuse UPDATE, DELETE and TRUNCATE) breaks it.
--
-- The hash of an entry is sha256(previous hash || its canonical text), the
-- canonical text being the JSON array [id, time (UTC, microseconds), login,
-- action, object, detail, justification].  audit_head keeps the last id
-- and hash, so that deleting the newest entries is seen too.  The chain
-- has no secret: whoever can rewrite every row and recompute every hash
-- can forge it (keep a copy of audit_verify's last hash outside the
-- database to catch that).  No entry holds an NHS number or key material.

CREATE TABLE caredata.audit_log (
  id             bigint PRIMARY KEY,
  at             timestamptz NOT NULL,
  actor          name NOT NULL,
  action         text NOT NULL,
  object         text,
  detail         jsonb,
  justification  text,
  prev_hash      bytea NOT NULL,
  hash           bytea NOT NULL
);
COMMENT ON TABLE caredata.audit_log IS
  'append-only, hash-chained log of privileged steps: who (the login), when, what (action, object, detail) and why (justification); check it with caredata.audit_verify()';

CREATE TABLE caredata.audit_head (
  one        boolean PRIMARY KEY DEFAULT true CHECK (one),
  last_id    bigint NOT NULL,
  last_hash  bytea NOT NULL
);
COMMENT ON TABLE caredata.audit_head IS
  'the newest audit entry''s id and hash (one row), so that deleting the newest entries breaks the chain too';
-- no row until the first entry (so that a restored dump brings its own)

CREATE FUNCTION caredata._audit_text(id bigint, at timestamptz, actor name, action text, object text,
                                     detail jsonb, justification text) RETURNS bytea
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN convert_to(jsonb_build_array(id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), actor::text,
                                      action, object, detail, justification)::text, 'UTF8');
COMMENT ON FUNCTION caredata._audit_text(bigint, timestamptz, name, text, text, jsonb, text) IS
  'internal: the canonical text of an audit entry that its hash covers';

-- append one entry; entries are serialised by the head row's lock
CREATE FUNCTION caredata.audit_append(action text, object text DEFAULT NULL, detail jsonb DEFAULT NULL,
                                      justification text DEFAULT NULL) RETURNS bigint
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  h caredata.audit_head;
  v_id bigint;
  v_at timestamptz := clock_timestamp();
  v_hash bytea;
BEGIN
  IF action IS NULL OR action !~ '^[a-z][a-z_.]{0,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an audit action is lower-case words joined by . or _',
      HINT = 'For example domain.create or linkage.run.';
  END IF;
  INSERT INTO caredata.audit_head VALUES (true, 0, '\x'::bytea) ON CONFLICT DO NOTHING;
  SELECT * INTO h FROM caredata.audit_head WHERE one FOR UPDATE;
  v_id := h.last_id + 1;
  v_hash := sha256(h.last_hash || caredata._audit_text(v_id, v_at, session_user, action, object, detail, justification));
  INSERT INTO caredata.audit_log (id, at, actor, action, object, detail, justification, prev_hash, hash)
  VALUES (v_id, v_at, session_user, action, object, detail, justification, h.last_hash, v_hash);
  UPDATE caredata.audit_head SET last_id = v_id, last_hash = v_hash WHERE one;
  RETURN v_id;
END
$$;
COMMENT ON FUNCTION caredata.audit_append(text, text, jsonb, text) IS
  'append an entry to the audit log (the login, now, the action, its object, details and justification); returns its id';

CREATE FUNCTION caredata.audit_verify() RETURNS boolean
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e caredata.audit_log;
  prev bytea := '\x'::bytea;
  expect bigint := 1;
  h caredata.audit_head;
BEGIN
  FOR e IN SELECT * FROM caredata.audit_log ORDER BY id LOOP
    IF e.id <> expect THEN
      RAISE NOTICE 'audit entry % is missing (the next entry is %)', expect, e.id;
      RETURN false;
    END IF;
    IF e.prev_hash <> prev THEN
      RAISE NOTICE 'audit entry % does not follow entry %: an entry was changed, inserted or deleted', e.id, e.id - 1;
      RETURN false;
    END IF;
    IF e.hash <> sha256(prev || caredata._audit_text(e.id, e.at, e.actor, e.action, e.object, e.detail, e.justification)) THEN
      RAISE NOTICE 'audit entry % was changed after it was written', e.id;
      RETURN false;
    END IF;
    prev := e.hash;
    expect := e.id + 1;
  END LOOP;
  SELECT * INTO h FROM caredata.audit_head WHERE one;
  IF NOT FOUND THEN
    h.last_id := 0;
    h.last_hash := '\x'::bytea;
  END IF;
  IF h.last_id IS DISTINCT FROM expect - 1 OR h.last_hash IS DISTINCT FROM prev THEN
    RAISE NOTICE 'audit entries after % are missing (the newest written was %)', expect - 1, h.last_id;
    RETURN false;
  END IF;
  RETURN true;
END
$$;
COMMENT ON FUNCTION caredata.audit_verify() IS
  'true while the audit log''s hash chain is intact; false, with a NOTICE naming the first broken entry, once any entry was edited, inserted or deleted by hand';

-- append-only through SQL: UPDATE, DELETE and TRUNCATE are refused (an
-- owner who gets past this breaks the chain, and audit_verify() says so)
CREATE FUNCTION caredata._audit_refuse() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'the audit log is append-only',
    HINT = 'Entries are added by caredata.audit_append() and never changed.';
END
$$;
COMMENT ON FUNCTION caredata._audit_refuse() IS 'internal: refuses changes to the audit log';
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON caredata.audit_log
  FOR EACH ROW EXECUTE FUNCTION caredata._audit_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON caredata.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION caredata._audit_refuse();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE OR DELETE ON caredata.audit_head
  FOR EACH STATEMENT EXECUTE FUNCTION caredata._audit_refuse();

REVOKE ALL ON caredata.audit_log, caredata.audit_head FROM PUBLIC;
GRANT SELECT ON caredata.audit_log TO caredata_admin;
REVOKE ALL ON FUNCTION caredata.audit_append(text, text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.audit_append(text, text, jsonb, text) TO caredata_admin, caredata_linker, caredata_reidentifier;
REVOKE ALL ON FUNCTION caredata.audit_verify() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.audit_verify() TO caredata_admin;
SELECT pg_catalog.pg_extension_config_dump('caredata.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.audit_head', '');
REVOKE ALL ON FUNCTION caredata._audit_text(bigint, timestamptz, name, text, text, jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION caredata._audit_refuse() FROM PUBLIC;

-- ---- src/nhs_number.sql ----
-- src/nhs_number.sql
-- Type caredata.nhs_number (src/nhs_number.c): a Modulus 11 validated NHS
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

CREATE FUNCTION caredata.nhs_number_invalid_reason(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.nhs_number_invalid_reason(text) IS
  'why a text is not a valid NHS number (empty, non_digit, grouping, length, check_digit_10, check_digit, repeated_digit), NULL when valid; never shows the value';

CREATE FUNCTION caredata.nhs_number_is_test(caredata.nhs_number) RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.nhs_number_is_test(caredata.nhs_number) IS
  'true for the synthetic test range 999 000 0000 to 999 999 9999';

-- ---- src/postcode.sql ----
-- src/postcode.sql
-- UK postcode standardisers (src/postcode.c).  Each raises 22P02 on text no
-- UK postcode can be; the try_ variant returns NULL instead.

CREATE FUNCTION caredata.normalise_postcode(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.normalise_postcode(text) IS
  'UK postcode in canonical form (sw1a1aa -> SW1A 1AA); raises 22P02 for text no UK postcode can be';
CREATE FUNCTION caredata.try_normalise_postcode(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.try_normalise_postcode(text) IS
  'UK postcode in canonical form, or NULL when the text cannot be a UK postcode';

CREATE FUNCTION caredata.postcode_area(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.postcode_area(text) IS
  'postcode area, the leading letters (SW1A 1AA -> SW)';
CREATE FUNCTION caredata.try_postcode_area(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.try_postcode_area(text) IS
  'postcode area, or NULL when the text cannot be a UK postcode';

CREATE FUNCTION caredata.postcode_district(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.postcode_district(text) IS
  'postcode district, the outward code (SW1A 1AA -> SW1A)';
CREATE FUNCTION caredata.try_postcode_district(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.try_postcode_district(text) IS
  'postcode district, or NULL when the text cannot be a UK postcode';

CREATE FUNCTION caredata.postcode_sector(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.postcode_sector(text) IS
  'postcode sector, the outward code and the inward digit (SW1A 1AA -> SW1A 1)';
CREATE FUNCTION caredata.try_postcode_sector(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.try_postcode_sector(text) IS
  'postcode sector, or NULL when the text cannot be a UK postcode';

-- ---- src/sex.sql ----
-- src/sex.sql
-- Sex / stated gender standardiser (src/sex.c).

CREATE FUNCTION caredata.standardise_sex(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.standardise_sex(text) IS
  'NHS Data Dictionary stated gender code from common codings: 1 male, 2 female, 9 indeterminate, X not known; raises 22P02 if unrecognised';
CREATE FUNCTION caredata.try_standardise_sex(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.try_standardise_sex(text) IS
  'stated gender code (1, 2, 9, X), or NULL when the coding is not recognised';

-- ---- src/dob.sql ----
-- src/dob.sql
-- Dates of birth (src/dob.c).  The reference date defaults to today at the
-- call site; the functions themselves are immutable in their arguments.

CREATE FUNCTION caredata.standardise_dob(text, at date DEFAULT current_date) RETURNS date
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.standardise_dob(text, date) IS
  'date of birth from YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD, DD/MM/YYYY, DD-MM-YYYY or DD.MM.YYYY (independent of DateStyle), valid as HES uses it: not before 1895-01-01, not after at';
CREATE FUNCTION caredata.try_standardise_dob(text, at date DEFAULT current_date) RETURNS date
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.try_standardise_dob(text, date) IS
  'date of birth as standardise_dob, or NULL when unparsable or not valid';

CREATE FUNCTION caredata.dob_is_valid(dob date, at date DEFAULT current_date) RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.dob_is_valid(date, date) IS
  'true when a date of birth is valid as HES uses it: not before 1895-01-01 and not after at (default today)';

CREATE FUNCTION caredata.age_band(dob date, at date, width integer DEFAULT 5, top integer DEFAULT 90) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.age_band(date, date, integer, integer) IS
  'age band in completed years at date at, for publication: 40-44 for width 5, 90+ from top (default 90)';

-- ---- src/keys.sql ----
-- src/keys.sql
-- Pseudonym domains and their key versions (src/keys.c).  The catalog holds
-- names, versions and dates, never key material: keys are derived on demand
-- from the master secret in the file named by caredata.key_file.

CREATE TABLE caredata.domain (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  purpose text NOT NULL CHECK (purpose <> ''),
  current_version smallint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by name NOT NULL DEFAULT session_user,
  retired_at timestamptz
);
COMMENT ON TABLE caredata.domain IS
  'pseudonym domains: where pseudonyms are valid (internal linkage, one per recipient); no key material';

CREATE TABLE caredata.domain_key (
  domain_id integer NOT NULL REFERENCES caredata.domain (id),
  version smallint NOT NULL CHECK (version > 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz,
  PRIMARY KEY (domain_id, version)
);
COMMENT ON TABLE caredata.domain_key IS
  'key versions of each domain (keys are derived with HKDF-SHA256 from the master secret; none is stored)';

-- user rows are dumped with the database, so pseudonyms stay reproducible
SELECT pg_catalog.pg_extension_config_dump('caredata.domain', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.domain_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.domain_key', '');

REVOKE ALL ON caredata.domain, caredata.domain_key FROM PUBLIC;
GRANT SELECT ON caredata.domain, caredata.domain_key TO caredata_admin, caredata_linker;

-- every change to the key catalog drops cached keyed contexts in all backends
CREATE FUNCTION caredata.keys_invalidate() RETURNS trigger
  AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata.keys_invalidate() IS
  'trigger: after a change to the key catalog, every backend drops its cached domain keys';
REVOKE ALL ON FUNCTION caredata.keys_invalidate() FROM PUBLIC;
CREATE TRIGGER domain_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON caredata.domain
  FOR EACH STATEMENT EXECUTE FUNCTION caredata.keys_invalidate();
CREATE TRIGGER domain_key_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON caredata.domain_key
  FOR EACH STATEMENT EXECUTE FUNCTION caredata.keys_invalidate();

CREATE FUNCTION caredata.key_file_status() RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION caredata.key_file_status() IS
  'whether the master secret in caredata.key_file can be used: ok, not set, unreadable, group or world access, wrong owner, too short, too long (never its path or contents)';
REVOKE ALL ON FUNCTION caredata.key_file_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.key_file_status() TO caredata_admin;

CREATE FUNCTION caredata.create_domain(name text, purpose text) RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  new_id integer;
BEGIN
  IF name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    RAISE EXCEPTION 'invalid pseudonym domain name'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'A domain name is a lower-case letter followed by up to 62 lower-case letters, digits or underscores.';
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.domain d WHERE d.name = create_domain.name) THEN
    RAISE EXCEPTION 'pseudonym domain "%" already exists', name
      USING ERRCODE = 'duplicate_object',
            HINT = 'Domain names are never reused, even after retirement.';
  END IF;
  INSERT INTO caredata.domain (name, purpose) VALUES (name, purpose) RETURNING id INTO new_id;
  INSERT INTO caredata.domain_key (domain_id, version) VALUES (new_id, 1);
  PERFORM caredata.audit_append('domain.create', name, jsonb_build_object('id', new_id, 'purpose', purpose, 'version', 1));
  RETURN new_id;
END
$$;
COMMENT ON FUNCTION caredata.create_domain(text, text) IS
  'create a pseudonym domain (internal linkage or a recipient) at key version 1; returns its id';

CREATE FUNCTION caredata.rotate_domain(name text) RETURNS smallint
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  d caredata.domain;
BEGIN
  SELECT * INTO d FROM caredata.domain WHERE domain.name = rotate_domain.name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pseudonym domain "%" does not exist', name USING ERRCODE = 'undefined_object';
  END IF;
  IF d.retired_at IS NOT NULL THEN
    RAISE EXCEPTION 'pseudonym domain "%" is retired', name USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  INSERT INTO caredata.domain_key (domain_id, version) VALUES (d.id, d.current_version + 1);
  UPDATE caredata.domain SET current_version = d.current_version + 1 WHERE id = d.id;
  PERFORM caredata.audit_append('domain.rotate', name, jsonb_build_object('id', d.id, 'version', d.current_version + 1));
  RETURN d.current_version + 1;
END
$$;
COMMENT ON FUNCTION caredata.rotate_domain(text) IS
  'start a new key version for a domain; older versions stay usable (explicitly) until retired; returns the new version';

CREATE FUNCTION caredata.retire_domain(name text, version integer DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  d caredata.domain;
BEGIN
  SELECT * INTO d FROM caredata.domain WHERE domain.name = retire_domain.name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pseudonym domain "%" does not exist', name USING ERRCODE = 'undefined_object';
  END IF;
  IF version IS NULL THEN
    UPDATE caredata.domain_key SET retired_at = now() WHERE domain_id = d.id AND retired_at IS NULL;
    UPDATE caredata.domain SET retired_at = now() WHERE id = d.id AND retired_at IS NULL;
  ELSIF version = d.current_version THEN
    RAISE EXCEPTION 'cannot retire the current key version of pseudonym domain "%"', name
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Rotate the domain first, or retire the whole domain with retire_domain(name).';
  ELSE
    UPDATE caredata.domain_key k SET retired_at = now()
    WHERE k.domain_id = d.id AND k.version = retire_domain.version AND k.retired_at IS NULL;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'pseudonym domain "%" has no active key version %', name, version
        USING ERRCODE = 'undefined_object';
    END IF;
  END IF;
  PERFORM caredata.audit_append('domain.retire', name, jsonb_build_object('id', d.id, 'version', version));
END
$$;
COMMENT ON FUNCTION caredata.retire_domain(text, integer) IS
  'retire one old key version of a domain, or (without a version) the whole domain; retired keys are never used again';

REVOKE ALL ON FUNCTION caredata.create_domain(text, text), caredata.rotate_domain(text),
  caredata.retire_domain(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.create_domain(text, text), caredata.rotate_domain(text),
  caredata.retire_domain(text, integer) TO caredata_admin;

-- ---- src/pseudonym.sql ----
-- src/pseudonym.sql
-- Type caredata.pseudonym and caredata.pseudonymise (src/pseudonym.c).

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
  'keyed pseudonym: 128-bit HMAC-SHA256 token with its domain and key version; text form <domain id>.<version>.<token>';

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

-- keyed: the linker and admin roles only (DESIGN.md "Threat model")
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
  'keyed pseudonym of a bigint in a domain, at its current key version';
COMMENT ON FUNCTION caredata.pseudonymise(bigint, text, integer) IS
  'keyed pseudonym of a bigint in a domain at a given (not retired) key version';
COMMENT ON FUNCTION caredata.pseudonymise(text, text) IS
  'keyed pseudonym of a text in a domain, at its current key version';
COMMENT ON FUNCTION caredata.pseudonymise(text, text, integer) IS
  'keyed pseudonym of a text in a domain at a given (not retired) key version';

REVOKE ALL ON FUNCTION
  caredata.pseudonymise(caredata.nhs_number, text), caredata.pseudonymise(caredata.nhs_number, text, integer),
  caredata.pseudonymise(bigint, text), caredata.pseudonymise(bigint, text, integer),
  caredata.pseudonymise(text, text), caredata.pseudonymise(text, text, integer)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  caredata.pseudonymise(caredata.nhs_number, text), caredata.pseudonymise(caredata.nhs_number, text, integer),
  caredata.pseudonymise(bigint, text), caredata.pseudonymise(bigint, text, integer),
  caredata.pseudonymise(text, text), caredata.pseudonymise(text, text, integer)
  TO caredata_linker, caredata_admin;

-- ---- src/objection/register.sql ----
-- src/objection/register.sql
-- The objection register: purposes, objections and their history,
-- exemptions, the register version, the blocking policy in SQL a DBA can
-- read (caredata.blocked_nhs_numbers), the filter functions (the per-row
-- fast path is src/objection.c), subject access, and the admin's calls
-- that record objections and exemptions.

CREATE TABLE caredata.purpose (
  name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  description text NOT NULL
);
COMMENT ON TABLE caredata.purpose IS
  'purposes data may be used for; objections and exemptions name them';
INSERT INTO caredata.purpose VALUES
  ('direct_care', 'the individual care of the patient; no objection kind covers it'),
  ('research', 'research, including studies named as datasets'),
  ('planning', 'planning and improving services, including national statistics'),
  ('commissioning', 'commissioning and paying for services');
SELECT pg_catalog.pg_extension_config_dump('caredata.purpose',
  $$WHERE name NOT IN ('direct_care', 'research', 'planning', 'commissioning')$$);

-- The register.  History is kept: a withdrawal ends an objection, it never
-- deletes it.  kind:
--   national_data_opt_out  the National Data Opt-out (research, planning, commissioning)
--   type1                  Type 1: GP data not to leave the practice except for direct care
--   dissent                explicit dissent from a named study (study = the dataset)
--   consent                explicit consent to a named study: lifts the other kinds for it
CREATE TABLE caredata.objection (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  nhs_number caredata.nhs_number NOT NULL,
  kind text NOT NULL CHECK (kind IN ('national_data_opt_out', 'type1', 'dissent', 'consent')),
  purposes text[] NOT NULL,
  study text,
  effective_from timestamptz NOT NULL,
  withdrawn_at timestamptz,
  source text NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  recorded_by name NOT NULL DEFAULT current_user,
  CONSTRAINT objection_withdrawn_after_effective CHECK (withdrawn_at IS NULL OR withdrawn_at >= effective_from),
  CONSTRAINT objection_study_only_for_dissent_or_consent CHECK ((kind IN ('dissent', 'consent')) = (study IS NOT NULL)),
  CONSTRAINT objection_covers_a_purpose CHECK (cardinality(purposes) > 0)
);
COMMENT ON TABLE caredata.objection IS
  'objection register: National Data Opt-out, Type 1, dissent from and consent to named studies, with effective and withdrawal times; history is never deleted';
CREATE UNIQUE INDEX objection_open ON caredata.objection (nhs_number, kind, study) NULLS NOT DISTINCT
  WHERE withdrawn_at IS NULL;
CREATE INDEX objection_nhs_number ON caredata.objection (nhs_number);
SELECT pg_catalog.pg_extension_config_dump('caredata.objection', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.objection_id_seq', '');

-- the purposes each kind covers unless a row says otherwise
CREATE FUNCTION caredata.default_purposes(kind text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
  SELECT CASE kind
    WHEN 'national_data_opt_out' THEN ARRAY['research', 'planning', 'commissioning']
    WHEN 'type1' THEN ARRAY['research', 'planning', 'commissioning']
    WHEN 'dissent' THEN ARRAY['research']
    WHEN 'consent' THEN ARRAY['research']
  END
$$;
COMMENT ON FUNCTION caredata.default_purposes(text) IS
  'the purposes an objection kind covers by default (no kind covers direct_care)';

-- Exemptions: explicit, per dataset (or publication) and purpose, for one
-- objection kind, with their legal basis.  Never a default.
CREATE TABLE caredata.exemption (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  dataset text NOT NULL,
  purpose text NOT NULL REFERENCES caredata.purpose (name),
  objection_kind text NOT NULL CHECK (objection_kind IN ('national_data_opt_out', 'type1', 'dissent')),
  legal_basis text NOT NULL CHECK (legal_basis IN ('consent', 'legal_requirement', 'cag_section_251', 'anonymised_aggregate')),
  reference text NOT NULL CHECK (reference <> ''),
  granted_by name NOT NULL DEFAULT current_user,
  granted_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  revoked_by name
);
COMMENT ON TABLE caredata.exemption IS
  'explicit exemptions from an objection kind for one dataset and purpose, with legal basis and reference; kept after revocation';
SELECT pg_catalog.pg_extension_config_dump('caredata.exemption', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.exemption_id_seq', '');

-- Every change to objections or exemptions takes a new register version.
-- Versions come from a sequence, so a rolled-back change never shares its
-- number with a committed one; permitted() caches by version.
CREATE SEQUENCE caredata.register_version_seq;
CREATE TABLE caredata.register_version (
  version bigint NOT NULL,
  changed_at timestamptz NOT NULL
);
COMMENT ON TABLE caredata.register_version IS
  'one row: the version of the objection register, new with every change to objections or exemptions';
INSERT INTO caredata.register_version VALUES (nextval('caredata.register_version_seq'), now());
CREATE UNIQUE INDEX register_version_one_row ON caredata.register_version ((true));

CREATE FUNCTION caredata.register_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE caredata.register_version
  SET version = nextval('caredata.register_version_seq'), changed_at = now();
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION caredata.register_changed() IS
  'trigger: a change to objections or exemptions takes a new register version';
REVOKE ALL ON FUNCTION caredata.register_changed() FROM PUBLIC;
CREATE TRIGGER objection_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON caredata.objection
  FOR EACH STATEMENT EXECUTE FUNCTION caredata.register_changed();
CREATE TRIGGER exemption_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON caredata.exemption
  FOR EACH STATEMENT EXECUTE FUNCTION caredata.register_changed();
COMMENT ON TRIGGER objection_changed ON caredata.objection IS
  'a change to objections takes a new register version (permitted() caches by version)';
COMMENT ON TRIGGER exemption_changed ON caredata.exemption IS
  'a change to exemptions takes a new register version (permitted() caches by version)';
COMMENT ON SEQUENCE caredata.register_version_seq IS
  'register versions: a rolled-back change never shares its number with a committed one';

-- History that cannot be rewritten.  Who recorded an objection or granted
-- an exemption, and when, are column defaults the writer cannot override
-- (caredata_admin may insert only the other columns: see the grants below);
-- after that the only change is ending it (a withdrawal, a revocation), once.
CREATE FUNCTION caredata.keep_history() RETURNS trigger
LANGUAGE plpgsql PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF TG_TABLE_NAME = 'objection' THEN
    IF OLD.withdrawn_at IS NULL AND NEW.withdrawn_at IS NOT NULL AND
       (to_jsonb(NEW) - 'withdrawn_at') = (to_jsonb(OLD) - 'withdrawn_at') THEN
      RETURN NEW;
    END IF;
  ELSE
    IF OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL AND
       (to_jsonb(NEW) - 'revoked_at') = (to_jsonb(OLD) - 'revoked_at') THEN
      NEW.revoked_by := current_user;
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'caredata.% keeps its history', TG_TABLE_NAME
    USING ERRCODE = 'object_not_in_prerequisite_state',
          DETAIL = CASE TG_TABLE_NAME WHEN 'objection' THEN 'An objection can only be withdrawn, once; nothing else about it changes.'
                   ELSE 'An exemption can only be revoked, once; nothing else about it changes.' END,
          HINT = 'Use caredata.withdraw_objection() or caredata.revoke_exemption(); record a new row for anything else.';
END
$$;
COMMENT ON FUNCTION caredata.keep_history() IS
  'trigger: an objection or exemption only ever changes by being withdrawn or revoked, once (revoked_by set by the server)';
REVOKE ALL ON FUNCTION caredata.keep_history() FROM PUBLIC;
CREATE TRIGGER objection_history BEFORE UPDATE ON caredata.objection
  FOR EACH ROW EXECUTE FUNCTION caredata.keep_history();
CREATE TRIGGER exemption_history BEFORE UPDATE ON caredata.exemption
  FOR EACH ROW EXECUTE FUNCTION caredata.keep_history();
COMMENT ON TRIGGER objection_history ON caredata.objection IS
  'history is kept: an objection changes only by being withdrawn, once';
COMMENT ON TRIGGER exemption_history ON caredata.exemption IS
  'history is kept: an exemption changes only by being revoked, once';

-- What is blocked: the policy, in one place.  A patient's data is blocked for
-- a purpose and dataset at a time when an objection covering the purpose is
-- in force then (a dissent only for its own study), no exemption for that
-- dataset, purpose and kind is in force, and no consent to that study is.
CREATE FUNCTION caredata.blocked_nhs_numbers(purpose text, dataset text, at timestamptz)
RETURNS TABLE (nhs_number caredata.nhs_number)
LANGUAGE sql STABLE PARALLEL SAFE
-- a standard SQL body: parsed once, here, so no caller's search_path can
-- change what it means; and with no SET clauses the planner inlines it, so
-- permitted() streams the numbers instead of materialising millions of rows
BEGIN ATOMIC
  SELECT o.nhs_number   -- a number blocked by two objections appears twice
  FROM caredata.objection o
  WHERE o.kind <> 'consent'
    AND o.effective_from <= blocked_nhs_numbers.at
    AND (o.withdrawn_at IS NULL OR o.withdrawn_at > blocked_nhs_numbers.at)
    AND blocked_nhs_numbers.purpose = ANY (o.purposes)
    AND (o.kind <> 'dissent' OR o.study = blocked_nhs_numbers.dataset)
    AND NOT EXISTS (
      SELECT 1 FROM caredata.exemption e
      WHERE e.dataset = blocked_nhs_numbers.dataset
        AND e.purpose = blocked_nhs_numbers.purpose
        AND e.objection_kind = o.kind
        AND e.granted_at <= blocked_nhs_numbers.at
        AND (e.expires_at IS NULL OR e.expires_at > blocked_nhs_numbers.at)
        AND (e.revoked_at IS NULL OR e.revoked_at > blocked_nhs_numbers.at))
    AND NOT EXISTS (
      SELECT 1 FROM caredata.objection c
      WHERE c.nhs_number = o.nhs_number AND c.kind = 'consent'
        AND c.study = blocked_nhs_numbers.dataset
        AND blocked_nhs_numbers.purpose = ANY (c.purposes)
        AND c.effective_from <= blocked_nhs_numbers.at
        AND (c.withdrawn_at IS NULL OR c.withdrawn_at > blocked_nhs_numbers.at));
END;
COMMENT ON FUNCTION caredata.blocked_nhs_numbers(text, text, timestamptz) IS
  'the NHS numbers whose data may not be used for a purpose and dataset at a time (a number may appear more than once): the objection policy in one query';

-- the blocked sets every backend shares (src/shared_set.c; with preloading)
CREATE FUNCTION caredata.blocked_sets()
RETURNS TABLE (register_version bigint, purpose text, dataset text, valid_from timestamptz, valid_until timestamptz,
               numbers bigint, bytes bigint, built_at timestamptz, shared_uses bigint)
  AS 'MODULE_PATHNAME', 'blocked_sets' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION caredata.blocked_sets() IS
  'the blocked NHS number sets in shared memory: register version, purpose, dataset, the times each answers for, size, when built, how many backends mapped it instead of building (never a number)';
REVOKE ALL ON FUNCTION caredata.blocked_sets() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.blocked_sets() TO caredata_admin;

-- The interval around at over which that answer cannot change: from the
-- latest register time at or before at to the earliest one after it.
CREATE FUNCTION caredata.blocked_interval(purpose text, dataset text, at timestamptz,
                                          OUT lo timestamptz, OUT hi timestamptz)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM caredata.purpose p WHERE p.name = blocked_interval.purpose) THEN
    RAISE EXCEPTION 'unknown purpose "%"', purpose
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Purposes are listed in caredata.purpose.';
  END IF;
  -- one pass over the register, one over the (small) exemption table
  SELECT greatest(o.lo1, o.lo2, e.lo), least(o.hi1, o.hi2, e.hi)
  FROM (SELECT max(effective_from) FILTER (WHERE effective_from <= at) AS lo1,
               min(effective_from) FILTER (WHERE effective_from > at) AS hi1,
               max(withdrawn_at) FILTER (WHERE withdrawn_at <= at) AS lo2,
               min(withdrawn_at) FILTER (WHERE withdrawn_at > at) AS hi2
        FROM caredata.objection) o,
       (SELECT max(t) FILTER (WHERE t <= at) AS lo, min(t) FILTER (WHERE t > at) AS hi
        FROM caredata.exemption, LATERAL (VALUES (granted_at), (expires_at), (revoked_at)) v(t)) e
  INTO lo, hi;
END
$$;
COMMENT ON FUNCTION caredata.blocked_interval(text, text, timestamptz) IS
  'the times around at between which blocked_nhs_numbers gives the same answer (NULL: unbounded)';
REVOKE ALL ON FUNCTION caredata.blocked_nhs_numbers(text, text, timestamptz),
  caredata.blocked_interval(text, text, timestamptz) FROM PUBLIC;

CREATE FUNCTION caredata.permitted(nhs_number caredata.nhs_number, purpose text)
RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.permitted(caredata.nhs_number, text) IS
  'true when no objection covering the purpose is in force now (the transaction start); answered from a per-backend in-memory copy of the register';
CREATE FUNCTION caredata.permitted(nhs_number caredata.nhs_number, purpose text,
                                   at timestamptz, dataset text DEFAULT NULL)
RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.permitted(caredata.nhs_number, text, timestamptz, text) IS
  'true when no objection covering the purpose (and dataset: a named study, exemptions) is in force at the time';

-- The row filter protect() attaches: permitted(), or the querying patient's
-- own record (subject access), in one call per row.
CREATE FUNCTION caredata.row_permitted(nhs_number caredata.nhs_number, purpose text)
RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.row_permitted(caredata.nhs_number, text) IS
  'the objection row filter of protect(): for a patient (caredata_patient, caredata.subject_access), true only for their own NHS number; for anyone else, permitted(nhs_number, purpose)';
CREATE FUNCTION caredata.row_permitted(nhs_number caredata.nhs_number, purpose text,
                                       at timestamptz, dataset text DEFAULT NULL)
RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.row_permitted(caredata.nhs_number, text, timestamptz, text) IS
  'the objection row filter of protect() for a dataset: for a patient, true only for their own NHS number; for anyone else, permitted(nhs_number, purpose, at, dataset)';

-- Subject access: which NHS number a patient-facing login role is.
CREATE TABLE caredata.subject_access (
  role regrole PRIMARY KEY,      -- the role itself (its OID), not its name: a role
                                 -- created later under a dropped role's name is not it
  nhs_number caredata.nhs_number NOT NULL,
  granted_at timestamptz NOT NULL DEFAULT now(),
  granted_by name NOT NULL DEFAULT current_user
);
COMMENT ON TABLE caredata.subject_access IS
  'patient-facing login roles (by OID) and the NHS number of the patient each one is (subject access)';
SELECT pg_catalog.pg_extension_config_dump('caredata.subject_access', '');

CREATE FUNCTION caredata.my_nhs_number() RETURNS caredata.nhs_number
  AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.my_nhs_number() IS
  'the NHS number of the current role in caredata.subject_access, NULL if it has none';


CREATE FUNCTION caredata.record_objection(nhs_number caredata.nhs_number, kind text,
  source text, effective_from timestamptz DEFAULT now(), study text DEFAULT NULL,
  purposes text[] DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
DECLARE
  covers text[] := coalesce(purposes, caredata.default_purposes(kind));
  new_id bigint;
BEGIN
  -- checked here, so that no constraint's error shows the row (and with it
  -- the NHS number)
  IF nhs_number IS NULL OR source IS NULL OR effective_from IS NULL THEN
    RAISE EXCEPTION 'an objection needs an NHS number, a source and an effective time'
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF kind IS NULL OR kind NOT IN ('national_data_opt_out', 'type1', 'dissent', 'consent') THEN
    RAISE EXCEPTION 'unknown objection kind "%"', kind
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Kinds: national_data_opt_out, type1, dissent, consent.';
  END IF;
  IF (kind IN ('dissent', 'consent')) <> (study IS NOT NULL) THEN
    RAISE EXCEPTION 'a % objection % a study', kind,
      CASE WHEN study IS NULL THEN 'needs' ELSE 'cannot name' END
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Dissent and consent name the study (the dataset) they are about; the other kinds do not.';
  END IF;
  IF cardinality(covers) IS NULL OR cardinality(covers) = 0 OR
     EXISTS (SELECT 1 FROM unnest(covers) p WHERE p IS NULL OR p NOT IN (SELECT name FROM caredata.purpose)) THEN
    RAISE EXCEPTION 'an objection must cover known purposes'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Purposes are listed in caredata.purpose.';
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.objection o
             WHERE o.nhs_number = record_objection.nhs_number AND o.kind = record_objection.kind
               AND o.study IS NOT DISTINCT FROM record_objection.study AND o.withdrawn_at IS NULL) THEN
    RAISE EXCEPTION 'this patient already has a % objection in force%', kind,
      CASE WHEN study IS NULL THEN '' ELSE ' for this study' END
      USING ERRCODE = 'unique_violation',
            HINT = 'Withdraw it first (caredata.withdraw_objection) to record a new one.';
  END IF;
  INSERT INTO caredata.objection (nhs_number, kind, purposes, study, effective_from, source)
  VALUES (nhs_number, kind, covers, study, effective_from, source)
  RETURNING id INTO new_id;
  RETURN new_id;
END
$$;
COMMENT ON FUNCTION caredata.record_objection(caredata.nhs_number, text, text, timestamptz, text, text[]) IS
  'record one objection (or consent to a named study) as of a time; purposes default by kind';

CREATE FUNCTION caredata.withdraw_objection(id bigint, at timestamptz DEFAULT now()) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
BEGIN
  IF at IS NULL THEN
    RAISE EXCEPTION 'a withdrawal needs a time' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  -- checked here, so that the constraint's error never shows the row
  IF EXISTS (SELECT 1 FROM caredata.objection o
             WHERE o.id = withdraw_objection.id AND o.withdrawn_at IS NULL AND o.effective_from > at) THEN
    RAISE EXCEPTION 'objection % cannot be withdrawn before it took effect', id
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Withdraw it at or after its effective_from.';
  END IF;
  UPDATE caredata.objection o SET withdrawn_at = at
  WHERE o.id = withdraw_objection.id AND o.withdrawn_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no objection % in force to withdraw', id
      USING ERRCODE = 'no_data_found',
            HINT = 'Open objections are those in caredata.objection with withdrawn_at IS NULL.';
  END IF;
END
$$;
COMMENT ON FUNCTION caredata.withdraw_objection(bigint, timestamptz) IS
  'end an objection at a time; the row is kept as history';

CREATE FUNCTION caredata.grant_exemption(dataset text, purpose text, objection_kind text,
  legal_basis text, reference text, expires_at timestamptz DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
DECLARE
  new_id bigint;
BEGIN
  INSERT INTO caredata.exemption (dataset, purpose, objection_kind, legal_basis, reference, expires_at)
  VALUES (dataset, purpose, objection_kind, legal_basis, reference, expires_at)
  RETURNING id INTO new_id;
  RAISE NOTICE 'exemption % granted: dataset %, purpose %, % not applied (legal basis %, reference %)',
    new_id, dataset, purpose, objection_kind, legal_basis, reference;
  PERFORM caredata.audit_append('exemption.grant', new_id::text,
    jsonb_build_object('dataset', dataset, 'purpose', purpose, 'objection_kind', objection_kind,
                       'legal_basis', legal_basis, 'reference', reference, 'expires_at', expires_at));
  RETURN new_id;
END
$$;
COMMENT ON FUNCTION caredata.grant_exemption(text, text, text, text, text, timestamptz) IS
  'exempt one dataset and purpose from one objection kind, with its legal basis and reference; recorded with who and when';

CREATE FUNCTION caredata.revoke_exemption(id bigint) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
BEGIN
  UPDATE caredata.exemption e SET revoked_at = now()   -- revoked_by: the keep_history trigger
  WHERE e.id = revoke_exemption.id AND e.revoked_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no exemption % in force to revoke', id USING ERRCODE = 'no_data_found';
  END IF;
  PERFORM caredata.audit_append('exemption.revoke', id::text);
END
$$;
COMMENT ON FUNCTION caredata.revoke_exemption(bigint) IS
  'revoke an exemption from now on; the row is kept as history';


-- ---- src/objection/feeds.sql ----
-- src/objection/feeds.sql
-- Objection feeds: the National Data Opt-out snapshot and Type 1 codes from
-- GP extracts, one at a time, never blocking readers, every load recorded.

-- Feeds.  Every load is recorded, with counts and never numbers.
CREATE TABLE caredata.feed_load (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  feed text NOT NULL,
  source text NOT NULL,
  loaded_at timestamptz NOT NULL DEFAULT now(),
  loaded_by name NOT NULL DEFAULT current_user,
  rows_read bigint NOT NULL,
  invalid bigint NOT NULL,
  duplicates bigint NOT NULL,
  opened bigint NOT NULL,
  withdrawn bigint NOT NULL,
  unchanged bigint NOT NULL
);
COMMENT ON TABLE caredata.feed_load IS
  'every objection feed applied: counts read, invalid, duplicate, opened, withdrawn, unchanged (no NHS numbers)';
SELECT pg_catalog.pg_extension_config_dump('caredata.feed_load', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.feed_load_id_seq', '');

-- One feed at a time, never blocking readers: SHARE ROW EXCLUSIVE on the
-- register.  Taken as the register's owner, because caredata_admin writes
-- only some of its columns and LOCK wants table-wide write rights.
CREATE FUNCTION caredata.lock_register() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  LOCK TABLE caredata.objection IN SHARE ROW EXCLUSIVE MODE;
END
$$;
COMMENT ON FUNCTION caredata.lock_register() IS
  'take the feed lock on the objection register (SHARE ROW EXCLUSIVE: one feed at a time, readers never blocked) for the rest of the transaction';
REVOKE ALL ON FUNCTION caredata.lock_register() FROM PUBLIC;

CREATE FUNCTION caredata.apply_opt_out_snapshot(
  snapshot regclass,
  nhs_column name DEFAULT 'nhs_number',
  source text DEFAULT 'national_data_opt_out_service',
  effective_at timestamptz DEFAULT now(),
  abort_on_invalid boolean DEFAULT false,
  allow_empty boolean DEFAULT false,
  OUT rows_read bigint, OUT invalid bigint, OUT duplicates bigint,
  OUT opened bigint, OUT withdrawn bigint, OUT unchanged bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
SET work_mem = '512MB'
SET enable_nestloop = off
SET enable_hashjoin = off
SET enable_hashagg = off
AS $$
DECLARE
  distinct_valid bigint;
BEGIN
  -- one feed at a time; readers are never blocked (SHARE ROW EXCLUSIVE)
  PERFORM caredata.lock_register();
  -- parse once, in NHS number order: every step after is a merge against
  -- the register's NHS number index, in that order (this function's
  -- settings rule out nested loops and hashing millions of numbers, whose
  -- random access cost twice as much)
  EXECUTE format('CREATE TEMP TABLE caredata_snapshot ON COMMIT DROP AS
                  SELECT caredata.try_nhs_number(%I::text) AS n FROM %s ORDER BY 1',
                 nhs_column, snapshot);
  ANALYZE pg_temp.caredata_snapshot;
  SELECT count(*), count(*) FILTER (WHERE n IS NULL), count(n) - count(DISTINCT n), count(DISTINCT n)
  INTO rows_read, invalid, duplicates, distinct_valid
  FROM pg_temp.caredata_snapshot;
  IF distinct_valid = 0 AND NOT allow_empty THEN
    RAISE EXCEPTION 'opt-out snapshot holds no valid NHS numbers'
      USING ERRCODE = 'no_data_found',
            DETAIL = format('It has %s rows, %s of them invalid or missing. Applying it would withdraw every national data opt-out from this source.',
                            rows_read, invalid),
            HINT = 'Check the delivery and the column name; pass allow_empty => true if it really is empty.';
  END IF;
  IF invalid > 0 THEN
    IF abort_on_invalid THEN
      RAISE EXCEPTION 'opt-out snapshot holds % invalid or missing NHS numbers', invalid
        USING ERRCODE = 'invalid_text_representation',
              HINT = 'Nothing was applied. Pass abort_on_invalid => false to skip them and apply the rest.';
    END IF;
    RAISE NOTICE 'opt-out snapshot: % invalid or missing NHS numbers skipped', invalid;
  END IF;
  IF duplicates > 0 THEN
    RAISE NOTICE 'opt-out snapshot: % duplicate NHS numbers counted once', duplicates;
  END IF;

  UPDATE caredata.objection o SET withdrawn_at = greatest(effective_at, o.effective_from)
  WHERE o.kind = 'national_data_opt_out' AND o.source = apply_opt_out_snapshot.source
    AND o.withdrawn_at IS NULL
    AND NOT EXISTS (SELECT 1 FROM pg_temp.caredata_snapshot s WHERE s.n = o.nhs_number);
  GET DIAGNOSTICS withdrawn = ROW_COUNT;

  INSERT INTO caredata.objection (nhs_number, kind, purposes, effective_from, source)
  SELECT s.n, 'national_data_opt_out', caredata.default_purposes('national_data_opt_out'),
         effective_at, apply_opt_out_snapshot.source
  FROM (SELECT DISTINCT n FROM pg_temp.caredata_snapshot WHERE n IS NOT NULL) s
  WHERE NOT EXISTS (SELECT 1 FROM caredata.objection o
                    WHERE o.nhs_number = s.n AND o.kind = 'national_data_opt_out'
                      AND o.withdrawn_at IS NULL)
  -- in NHS number order, so the inserts walk the register's NHS number
  -- indexes once in order instead of landing at random (halves a 3M load)
  ORDER BY s.n;
  GET DIAGNOSTICS opened = ROW_COUNT;
  unchanged := distinct_valid - opened;
  DROP TABLE pg_temp.caredata_snapshot;

  INSERT INTO caredata.feed_load (feed, source, rows_read, invalid, duplicates, opened, withdrawn, unchanged)
  VALUES ('national_data_opt_out', source, rows_read, invalid, duplicates, opened, withdrawn, unchanged);
  PERFORM caredata.audit_append('feed.load', 'national_data_opt_out', jsonb_build_object('source', source, 'rows_read', rows_read, 'invalid', invalid, 'opened', opened, 'withdrawn', withdrawn, 'unchanged', unchanged));
END
$$;
COMMENT ON FUNCTION caredata.apply_opt_out_snapshot(regclass, name, text, timestamptz, boolean, boolean) IS
  'apply a full National Data Opt-out snapshot in one transaction: new numbers open objections, missing ones are withdrawn, the rest untouched; invalid numbers are counted and skipped';

-- Type 1 codes as they arrive in GP extracts, and what they mean.
CREATE TABLE caredata.type1_code (
  code text PRIMARY KEY,
  code_system text NOT NULL,
  meaning text NOT NULL CHECK (meaning IN ('dissent', 'withdrawn')),
  description text NOT NULL
);
COMMENT ON TABLE caredata.type1_code IS
  'clinical codes that record a Type 1 objection (dissent) or its withdrawal in GP extracts';
INSERT INTO caredata.type1_code VALUES
  ('827241000000103', 'snomed_ct', 'dissent', 'Dissent from secondary use of general practitioner patient identifiable data'),
  ('9Nu0.', 'read_v2', 'dissent', 'Dissent from secondary use of GP patient identifiable data'),
  ('9Nu0', 'read_v2', 'dissent', 'Dissent from secondary use of GP patient identifiable data (without the Read v2 padding dot)'),
  ('827261000000102', 'snomed_ct', 'withdrawn', 'Dissent withdrawn for secondary use of general practitioner patient identifiable data'),
  ('9Nu1.', 'read_v2', 'withdrawn', 'Dissent withdrawn re secondary use of GP patient identifiable data'),
  ('9Nu1', 'read_v2', 'withdrawn', 'Dissent withdrawn re secondary use of GP patient identifiable data (without the Read v2 padding dot)');
SELECT pg_catalog.pg_extension_config_dump('caredata.type1_code',
  $$WHERE code NOT IN ('827241000000103', '9Nu0.', '9Nu0', '827261000000102', '9Nu1.', '9Nu1')$$);

CREATE FUNCTION caredata.apply_type1_codes(
  gp_extract regclass,
  nhs_column name DEFAULT 'nhs_number',
  code_column name DEFAULT 'code',
  date_column name DEFAULT 'recorded_at',
  source text DEFAULT 'gp_extract',
  abort_on_invalid boolean DEFAULT false,
  OUT rows_read bigint, OUT invalid bigint, OUT unmapped bigint,
  OUT opened bigint, OUT withdrawn bigint, OUT unchanged bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
BEGIN
  PERFORM caredata.lock_register();
  EXECUTE format('CREATE TEMP TABLE caredata_type1 ON COMMIT DROP AS
                  SELECT caredata.try_nhs_number(x.%I::text) AS n, m.meaning, x.%I::timestamptz AS at
                  FROM %s x LEFT JOIN caredata.type1_code m ON m.code = btrim(x.%I::text)',
                 nhs_column, date_column, gp_extract, code_column);
  -- invalid: no valid NHS number, or no date (which event is latest cannot
  -- be told); unmapped: a valid, dated row whose code is not a Type 1 code
  SELECT count(*), count(*) FILTER (WHERE n IS NULL OR at IS NULL),
         count(*) FILTER (WHERE n IS NOT NULL AND at IS NOT NULL AND meaning IS NULL)
  INTO rows_read, invalid, unmapped FROM pg_temp.caredata_type1;
  IF invalid > 0 THEN
    IF abort_on_invalid THEN
      RAISE EXCEPTION 'Type 1 extract holds % rows with an invalid or missing NHS number or date', invalid
        USING ERRCODE = 'invalid_text_representation',
              HINT = 'Nothing was applied. Pass abort_on_invalid => false to skip them and apply the rest.';
    END IF;
    RAISE NOTICE 'Type 1 extract: % rows with an invalid or missing NHS number or date skipped', invalid;
  END IF;
  IF unmapped > 0 THEN
    RAISE NOTICE 'Type 1 extract: % rows with codes not in caredata.type1_code skipped', unmapped;
  END IF;

  -- each patient's coded events in time order, a repeat of the state it is
  -- already in dropped (at one instant a withdrawal sorts before a dissent,
  -- so the dissent is what stands); each dissent lasts until the next event;
  -- was_open: the register had an open Type 1 objection for the patient
  CREATE TEMP TABLE caredata_type1_events ON COMMIT DROP AS
  SELECT n, meaning, at, lead(at) OVER w AS until, row_number() OVER w AS seq,
         EXISTS (SELECT 1 FROM caredata.objection o
                 WHERE o.nhs_number = e.n AND o.kind = 'type1' AND o.withdrawn_at IS NULL) AS was_open
  FROM (SELECT n, meaning, at,
               lag(meaning) OVER (PARTITION BY n ORDER BY at, meaning = 'dissent') AS before
        FROM (SELECT DISTINCT n, meaning, at FROM pg_temp.caredata_type1
              WHERE n IS NOT NULL AND at IS NOT NULL AND meaning IS NOT NULL) d) e
  WHERE before IS DISTINCT FROM meaning
  WINDOW w AS (PARTITION BY n ORDER BY at, meaning = 'dissent');

  -- an open objection ends at the patient's first withdrawal; when the
  -- extract opens with a dissent (the one already recorded), at the
  -- withdrawal after that
  UPDATE caredata.objection o
  SET withdrawn_at = greatest(CASE WHEN e.meaning = 'withdrawn' THEN e.at ELSE e.until END, o.effective_from)
  FROM pg_temp.caredata_type1_events e
  WHERE e.seq = 1 AND e.was_open AND (e.meaning = 'withdrawn' OR e.until IS NOT NULL)
    AND o.nhs_number = e.n AND o.kind = 'type1' AND o.withdrawn_at IS NULL;
  GET DIAGNOSTICS withdrawn = ROW_COUNT;

  -- every other dissent is recorded: open, or as history when the extract
  -- also withdraws it
  INSERT INTO caredata.objection (nhs_number, kind, purposes, effective_from, withdrawn_at, source)
  SELECT e.n, 'type1', caredata.default_purposes('type1'), e.at, e.until, apply_type1_codes.source
  FROM pg_temp.caredata_type1_events e
  WHERE e.meaning = 'dissent' AND NOT (e.seq = 1 AND e.was_open)
  ORDER BY e.n, e.at;
  GET DIAGNOSTICS opened = ROW_COUNT;
  -- patients the extract changed nothing for: an open dissent repeated, or
  -- a withdrawal of nothing
  unchanged := (SELECT count(*) FROM pg_temp.caredata_type1_events e
                WHERE e.seq = 1 AND e.until IS NULL
                  AND ((e.meaning = 'dissent' AND e.was_open) OR (e.meaning = 'withdrawn' AND NOT e.was_open)));

  INSERT INTO caredata.feed_load (feed, source, rows_read, invalid, duplicates, opened, withdrawn, unchanged)
  VALUES ('type1', source, rows_read, invalid,
          rows_read - invalid - unmapped - (SELECT count(*) FROM pg_temp.caredata_type1_events),
          opened, withdrawn, unchanged);
  PERFORM caredata.audit_append('feed.load', 'type1', jsonb_build_object('source', source, 'rows_read', rows_read, 'invalid', invalid, 'opened', opened, 'withdrawn', withdrawn, 'unchanged', unchanged));
  DROP TABLE pg_temp.caredata_type1, pg_temp.caredata_type1_events;
END
$$;
COMMENT ON FUNCTION caredata.apply_type1_codes(regclass, name, name, name, text, boolean) IS
  'apply Type 1 codes from a GP extract: each patient''s dissent and withdrawal codes, in time order, open, withdraw or record (as history) their Type 1 objections';

-- ---- src/objection/protect.sql ----
-- src/objection/protect.sql
-- Row filters: protect() and unprotect(), partitions and inheritance
-- (event trigger), no planner statistics on protected columns, and views
-- that would read a protected table past its filter.

-- Row filters.
CREATE TABLE caredata.protected_table (
  relid regclass PRIMARY KEY,
  nhs_column name NOT NULL,
  purpose text NOT NULL REFERENCES caredata.purpose (name),
  dataset text,
  added_base_policy boolean NOT NULL,
  enabled_rls boolean NOT NULL,
  protected_at timestamptz NOT NULL DEFAULT now(),
  protected_by name NOT NULL DEFAULT current_user,
  root regclass NOT NULL
);
COMMENT ON TABLE caredata.protected_table IS
  'tables with an objection row filter: the NHS number column, purpose and dataset, what protect() changed, and the table protect() was called on (root: a partitioned or inheritance parent protects its whole hierarchy)';
SELECT pg_catalog.pg_extension_config_dump('caredata.protected_table', '');

-- the policies on one table of a hierarchy (or a lone table)
CREATE FUNCTION caredata._protect_one(tab regclass, nhs_column name, purpose text, dataset text, root regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
DECLARE
  has_permissive boolean;
  had_rls boolean;
BEGIN
  -- done already (the event trigger below runs inside protect()'s own DDL)
  IF EXISTS (SELECT 1 FROM caredata.protected_table t WHERE t.relid = tab) THEN
    RETURN;
  END IF;
  SELECT c.relrowsecurity INTO had_rls FROM pg_class c WHERE c.oid = tab;
  SELECT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = tab AND p.polpermissive)
  INTO has_permissive;
  -- recorded first: the DDL below fires the event trigger, which then
  -- finds this table done
  INSERT INTO caredata.protected_table (relid, nhs_column, purpose, dataset, added_base_policy, enabled_rls, root)
  VALUES (tab, nhs_column, purpose, dataset, NOT has_permissive, NOT had_rls, root);
  -- row security needs a permissive policy; never widen one the owner wrote
  IF NOT has_permissive THEN
    EXECUTE format('CREATE POLICY caredata_base ON %s AS PERMISSIVE FOR ALL USING (true) WITH CHECK (true)', tab);
    EXECUTE format('COMMENT ON POLICY caredata_base ON %s IS %L', tab,
                   'caredata: the permissive policy row security needs, added by caredata.protect because the table had none');
  END IF;
  -- FOR ALL: rows the filter hides can be neither read nor updated nor
  -- deleted; WITH CHECK (true): loading new rows is not filtered
  EXECUTE format('CREATE POLICY caredata_objection ON %s AS RESTRICTIVE FOR ALL USING '
                 '(caredata.row_permitted(%I, %L%s)) WITH CHECK (true)',
                 tab, nhs_column, purpose,
                 CASE WHEN dataset IS NULL THEN '' ELSE format(', now(), %L', dataset) END);
  EXECUTE format('CREATE POLICY caredata_subject ON %s AS RESTRICTIVE FOR ALL TO caredata_patient USING '
                 '(%I OPERATOR(caredata.=) caredata.my_nhs_number()) WITH CHECK (true)', tab, nhs_column);
  EXECUTE format('COMMENT ON POLICY caredata_objection ON %s IS %L', tab,
                 format('caredata objection filter: rows permitted for %s%s (caredata.protect)', purpose,
                        CASE WHEN dataset IS NULL THEN '' ELSE ', dataset ' || dataset END));
  EXECUTE format('COMMENT ON POLICY caredata_subject ON %s IS %L', tab,
                 'caredata subject access: a patient sees only their own rows (caredata.protect)');
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', tab);
  -- no statistics on the protected column (see _forget_statistics)
  IF EXISTS (SELECT 1 FROM pg_statistic_ext e JOIN pg_attribute a ON a.attrelid = e.stxrelid AND a.attname = nhs_column
              WHERE e.stxrelid = tab AND a.attnum = ANY (e.stxkeys)) THEN
    RAISE EXCEPTION 'extended statistics on %.% would give its values to the planner', tab, nhs_column
      USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'DROP STATISTICS on that column first.';
  END IF;
  EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS 0', tab, nhs_column);
  PERFORM caredata._forget_statistics(tab);
END
$$;
COMMENT ON FUNCTION caredata._protect_one(regclass, name, text, text, regclass) IS
  'internal: attach the objection and subject-access policies to one table of a protected hierarchy';

-- a table and every partition or inheritance child below it, the table first
CREATE FUNCTION caredata._hierarchy(tab regclass) RETURNS SETOF regclass
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  WITH RECURSIVE h(rel, depth) AS (
    SELECT tab::oid, 0
    UNION ALL
    SELECT i.inhrelid, h.depth + 1 FROM pg_inherits i JOIN h ON i.inhparent = h.rel
  )
  SELECT rel::regclass FROM h GROUP BY rel ORDER BY min(depth), rel
$$;
COMMENT ON FUNCTION caredata._hierarchy(regclass) IS
  'internal: a table and all its partitions and inheritance children, the table first';

-- The planner reads a column's statistics (most common values, histogram)
-- for everyone, filtered or not, and EXPLAIN prints its estimates: a
-- bisection over nhs_number::bigint < X would recover the stored values,
-- hidden objectors' among them.  So a protected column keeps none: its
-- statistics target is 0 (ANALYZE skips it), and what ANALYZE stored before
-- is removed, for the column and for expression indexes on the table.
-- Estimates fall back to PostgreSQL's defaults (or 1 row per value under a
-- unique index).  Removing pg_statistic rows needs the superuser, hence
-- SECURITY DEFINER; it touches only tables that are protected.
CREATE FUNCTION caredata._forget_statistics(tab regclass) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  x record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM caredata.protected_table t WHERE t.relid = tab) THEN
    RETURN;
  END IF;
  -- expression indexes keep statistics of their own: none either
  FOR x IN SELECT i.indexrelid::regclass AS idx, k.n
             FROM pg_catalog.pg_index i, LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n)
            WHERE i.indrelid = tab AND k.attnum = 0 LOOP
    EXECUTE format('ALTER INDEX %s ALTER COLUMN %s SET STATISTICS 0', x.idx, x.n);
  END LOOP;
  DELETE FROM pg_catalog.pg_statistic s
   USING caredata.protected_table t, pg_catalog.pg_attribute a
   WHERE t.relid = tab AND s.starelid = t.relid AND a.attrelid = t.relid AND a.attname = t.nhs_column
     AND s.staattnum = a.attnum;
  DELETE FROM pg_catalog.pg_statistic s
   USING pg_catalog.pg_index i
   WHERE i.indrelid = tab AND i.indexprs IS NOT NULL AND s.starelid = i.indexrelid
     AND EXISTS (SELECT 1 FROM caredata.protected_table t WHERE t.relid = tab);
END
$$;
COMMENT ON FUNCTION caredata._forget_statistics(regclass) IS
  'internal: remove the stored planner statistics of a protected table''s NHS number column and of its expression indexes';

CREATE FUNCTION caredata.protect(tab regclass, nhs_column name, purpose text, dataset text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
DECLARE
  coltype regtype;
  parent regclass;
  r regclass;
BEGIN
  SELECT a.atttypid::regtype INTO coltype FROM pg_attribute a
  WHERE a.attrelid = tab AND a.attname = nhs_column AND a.attnum > 0 AND NOT a.attisdropped;
  IF coltype IS NULL THEN
    RAISE EXCEPTION 'column "%" of % does not exist', nhs_column, tab USING ERRCODE = 'undefined_column';
  END IF;
  IF coltype <> 'caredata.nhs_number'::regtype THEN
    RAISE EXCEPTION 'column "%" of % is %, not caredata.nhs_number', nhs_column, tab, coltype
      USING ERRCODE = 'datatype_mismatch',
            HINT = 'Standardise it first: caredata.try_nhs_number(column).';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM caredata.purpose p WHERE p.name = protect.purpose) THEN
    RAISE EXCEPTION 'unknown purpose "%"', purpose
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Purposes are listed in caredata.purpose.';
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.protected_table t WHERE t.relid = tab) THEN
    RAISE EXCEPTION '% is already protected', tab
      USING ERRCODE = 'duplicate_object', HINT = 'Run caredata.unprotect() first to change its purpose.';
  END IF;
  -- a partition or child alone would leave its parent's path open
  SELECT i.inhparent::regclass INTO parent FROM pg_inherits i WHERE i.inhrelid = tab LIMIT 1;
  IF parent IS NOT NULL THEN
    RAISE EXCEPTION '% is a partition or inheritance child of %', tab, parent
      USING ERRCODE = 'wrong_object_type',
            HINT = format('Protect %s instead: protecting a table protects all its partitions and children.', parent);
  END IF;
  -- the whole hierarchy below it, now and (by the event trigger
  -- caredata_protect_hierarchy) whatever is attached later
  FOR r IN SELECT h FROM caredata._hierarchy(tab) h LOOP
    PERFORM caredata._protect_one(r, nhs_column, purpose, dataset, tab);
  END LOOP;
  -- views already reading it past the filter are refused too
  PERFORM caredata._refuse_unfiltered_views();
  PERFORM caredata.audit_append('table.protect', tab::text, jsonb_build_object('nhs_column', nhs_column, 'purpose', purpose, 'dataset', dataset,
    'hierarchy', (SELECT count(*) FROM caredata._hierarchy(tab))));
END
$$;
COMMENT ON FUNCTION caredata.protect(regclass, name, text, text) IS
  'attach an objection row filter for a purpose (and dataset) to a table and all its partitions and inheritance children (those attached later too): forced row-level security that every role but superusers and BYPASSRLS roles obeys; run as the table owner';

CREATE FUNCTION caredata.unprotect(tab regclass) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
DECLARE
  t caredata.protected_table;
BEGIN
  SELECT * INTO t FROM caredata.protected_table p WHERE p.relid = tab;
  IF NOT FOUND THEN
    RAISE EXCEPTION '% is not protected', tab USING ERRCODE = 'undefined_object';
  END IF;
  IF t.root <> tab THEN
    RAISE EXCEPTION '% is protected as part of %', tab, t.root
      USING ERRCODE = 'wrong_object_type', HINT = format('Unprotect %s, which unprotects its whole hierarchy.', t.root);
  END IF;
  FOR t IN SELECT * FROM caredata.protected_table p WHERE p.root = tab ORDER BY p.relid = tab DESC LOOP
    CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.relid);
    EXECUTE format('DROP POLICY caredata_objection ON %s', t.relid);
    EXECUTE format('DROP POLICY caredata_subject ON %s', t.relid);
    IF t.added_base_policy THEN
      EXECUTE format('DROP POLICY caredata_base ON %s', t.relid);
    END IF;
    IF t.enabled_rls THEN
      EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY', t.relid);
    END IF;
    -- statistics again at the default target, from the next ANALYZE
    IF EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attname = t.nhs_column AND NOT a.attisdropped) THEN
      EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS -1', t.relid, t.nhs_column);
    END IF;
  END LOOP;
  DELETE FROM caredata.protected_table p WHERE p.root = tab;
  PERFORM caredata.audit_append('table.unprotect', tab::text);
END
$$;
COMMENT ON FUNCTION caredata.unprotect(regclass) IS
  'remove the objection row filter protect() attached to a table and its hierarchy, and what it enabled';

-- Partitions and children attached to a protected table later (CREATE
-- TABLE ... PARTITION OF, ALTER TABLE ... ATTACH PARTITION, ... INHERIT)
-- get the same filter at once, in the same transaction: no path to their
-- rows is ever open.  As the extension owner, so that whoever may attach a
-- partition may attach it to a protected table.
CREATE FUNCTION caredata._protect_hierarchy() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  t caredata.protected_table;
  r regclass;
BEGIN
  FOR t IN SELECT * FROM caredata.protected_table p WHERE p.relid = p.root
              AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p.relid) LOOP
    FOR r IN SELECT h FROM caredata._hierarchy(t.relid) h
              WHERE NOT EXISTS (SELECT 1 FROM caredata.protected_table q WHERE q.relid = h) LOOP
      PERFORM caredata._protect_one(r, t.nhs_column, t.purpose, t.dataset, t.relid);
      PERFORM caredata.audit_append('table.protect', r::text, jsonb_build_object('nhs_column', t.nhs_column, 'purpose', t.purpose,
        'dataset', t.dataset, 'part_of', t.relid::text));
    END LOOP;
  END LOOP;
  -- an expression index just made on a protected table keeps no statistics
  IF tg_tag = 'CREATE INDEX' THEN
    PERFORM caredata._forget_statistics(p.relid)
       FROM caredata.protected_table p
      WHERE p.relid IN (SELECT i.indrelid FROM pg_catalog.pg_event_trigger_ddl_commands() d
                          JOIN pg_catalog.pg_index i ON i.indexrelid = d.objid);
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._protect_hierarchy() IS
  'internal: event trigger giving partitions and children attached to a protected table its objection filter';
CREATE EVENT TRIGGER caredata_protect_hierarchy ON ddl_command_end
  WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'CREATE INDEX')
  EXECUTE FUNCTION caredata._protect_hierarchy();

-- Views that read a protected table past its filter.  PostgreSQL checks a
-- view's row security as the view's owner, and superusers and BYPASSRLS
-- roles skip it: a view they own (not security_invoker) over a protected
-- table, directly or through other views, shows every row to whoever may
-- read it; a materialized view they own stores every row.  Published views
-- are the exception: caredata made them, with the filter inside.
CREATE FUNCTION caredata._unfiltered_views(tab regclass) RETURNS TABLE (view regclass, owner name)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  -- (plpgsql: caredata.publication is made later in the install script)
  RETURN QUERY
  WITH RECURSIVE v(oid) AS (
    SELECT r.ev_class FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
     WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
       AND d.refobjid = tab AND r.ev_class <> tab
    UNION
    SELECT r.ev_class FROM v JOIN pg_depend d ON d.refobjid = v.oid AND d.refclassid = 'pg_class'::regclass
                                               AND d.classid = 'pg_rewrite'::regclass
      JOIN pg_rewrite r ON r.oid = d.objid
     WHERE r.ev_class <> v.oid
  )
  SELECT c.oid::regclass, o.rolname
    FROM v JOIN pg_class c ON c.oid = v.oid JOIN pg_roles o ON o.oid = c.relowner
   WHERE (o.rolsuper OR o.rolbypassrls)
     AND NOT (c.relkind = 'v' AND coalesce(c.reloptions, '{}') && ARRAY['security_invoker=true', 'security_invoker=on', 'security_invoker=1'])
     AND NOT EXISTS (SELECT 1 FROM caredata.publication p
                      WHERE c.relnamespace = 'published'::regnamespace AND c.relname = p.name);
END
$$;
COMMENT ON FUNCTION caredata._unfiltered_views(regclass) IS
  'internal: views and materialized views that read a protected table as a superuser or BYPASSRLS owner, so past its filter';

-- refuse them: when a table is protected, and after any DDL that could make one
CREATE FUNCTION caredata._refuse_unfiltered_views() RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  x record;
BEGIN
  FOR x IN SELECT t.relid, u.view, u.owner FROM caredata.protected_table t, caredata._unfiltered_views(t.relid) u
            WHERE EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.relid) LIMIT 1 LOOP
    RAISE EXCEPTION 'view % reads the protected table % as %, whom row security does not filter', x.view, x.relid, x.owner
      USING ERRCODE = 'insufficient_privilege',
            HINT = format('Make it security_invoker (ALTER VIEW %s SET (security_invoker = true)), or give it to a role that is filtered (ALTER ... OWNER TO); publish de-identified data with caredata.publish().', x.view);
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata._refuse_unfiltered_views() IS
  'internal: refuse a view or materialized view that reads a protected table past its filter (see _unfiltered_views)';

CREATE FUNCTION caredata._unfiltered_views_guard() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM caredata._refuse_unfiltered_views();
END
$$;
COMMENT ON FUNCTION caredata._unfiltered_views_guard() IS
  'internal: event trigger refusing DDL that leaves a view reading a protected table past its filter';
CREATE EVENT TRIGGER caredata_unfiltered_views ON ddl_command_end
  WHEN TAG IN ('CREATE VIEW', 'ALTER VIEW', 'CREATE MATERIALIZED VIEW', 'ALTER MATERIALIZED VIEW',
               'ALTER TABLE', 'CREATE RULE', 'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
  EXECUTE FUNCTION caredata._unfiltered_views_guard();


-- ---- src/objection/grants.sql ----
-- src/objection/grants.sql
-- Privileges on the objection register, its feeds and its row filters.

-- privileges: the register is the admin's; filtering is everyone's who may
-- read protected data; nothing here is open to PUBLIC
REVOKE ALL ON caredata.purpose, caredata.objection, caredata.exemption, caredata.register_version,
  caredata.subject_access, caredata.feed_load, caredata.type1_code, caredata.protected_table FROM PUBLIC;
GRANT SELECT ON caredata.purpose, caredata.type1_code TO caredata_admin, caredata_linker, caredata_analyst;
GRANT SELECT, INSERT, UPDATE ON caredata.subject_access, caredata.type1_code, caredata.purpose
  TO caredata_admin;
-- the register's who and when are the server's (column defaults), and only
-- the end of a row may be written later (the keep_history trigger: once)
GRANT SELECT ON caredata.objection, caredata.exemption TO caredata_admin;
GRANT INSERT (nhs_number, kind, purposes, study, effective_from, withdrawn_at, source),
  UPDATE (withdrawn_at) ON caredata.objection TO caredata_admin;
GRANT INSERT (dataset, purpose, objection_kind, legal_basis, reference, expires_at),
  UPDATE (revoked_at) ON caredata.exemption TO caredata_admin;
GRANT SELECT, INSERT ON caredata.feed_load TO caredata_admin;
GRANT SELECT, INSERT, DELETE ON caredata.protected_table TO caredata_admin;
GRANT SELECT ON caredata.register_version TO caredata_admin;
GRANT USAGE ON SEQUENCE caredata.objection_id_seq, caredata.exemption_id_seq, caredata.feed_load_id_seq
  TO caredata_admin;
GRANT DELETE ON caredata.subject_access TO caredata_admin;

REVOKE ALL ON FUNCTION
  caredata.permitted(caredata.nhs_number, text), caredata.permitted(caredata.nhs_number, text, timestamptz, text),
  caredata.row_permitted(caredata.nhs_number, text), caredata.row_permitted(caredata.nhs_number, text, timestamptz, text),
  caredata.my_nhs_number(),
  caredata.apply_opt_out_snapshot(regclass, name, text, timestamptz, boolean, boolean),
  caredata.apply_type1_codes(regclass, name, name, name, text, boolean),
  caredata.record_objection(caredata.nhs_number, text, text, timestamptz, text, text[]),
  caredata.withdraw_objection(bigint, timestamptz),
  caredata.grant_exemption(text, text, text, text, text, timestamptz),
  caredata.revoke_exemption(bigint),
  caredata.protect(regclass, name, text, text), caredata.unprotect(regclass),
  caredata._protect_one(regclass, name, text, text, regclass), caredata._hierarchy(regclass),
  caredata._protect_hierarchy(), caredata._forget_statistics(regclass),
  caredata._unfiltered_views(regclass), caredata._refuse_unfiltered_views(), caredata._unfiltered_views_guard()
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  caredata.permitted(caredata.nhs_number, text), caredata.permitted(caredata.nhs_number, text, timestamptz, text),
  caredata.row_permitted(caredata.nhs_number, text), caredata.row_permitted(caredata.nhs_number, text, timestamptz, text),
  caredata.my_nhs_number()
  TO caredata_admin, caredata_linker, caredata_analyst;
-- a patient needs row_permitted() to read a protected table (the filter
-- runs as the querying role); for a patient it answers only "is this my
-- own record", so it tells nothing about anyone else's objections
GRANT EXECUTE ON FUNCTION
  caredata.row_permitted(caredata.nhs_number, text), caredata.row_permitted(caredata.nhs_number, text, timestamptz, text),
  caredata.my_nhs_number()
  TO caredata_patient;
GRANT EXECUTE ON FUNCTION
  caredata.lock_register(),
  caredata.apply_opt_out_snapshot(regclass, name, text, timestamptz, boolean, boolean),
  caredata.apply_type1_codes(regclass, name, name, name, text, boolean),
  caredata.record_objection(caredata.nhs_number, text, text, timestamptz, text, text[]),
  caredata.withdraw_objection(bigint, timestamptz),
  caredata.grant_exemption(text, text, text, text, text, timestamptz),
  caredata.revoke_exemption(bigint),
  caredata.protect(regclass, name, text, text), caredata.unprotect(regclass),
  caredata._protect_one(regclass, name, text, text, regclass), caredata._hierarchy(regclass),
  caredata._forget_statistics(regclass), caredata._refuse_unfiltered_views()
  TO caredata_admin;

-- ---- src/linkage/compare.sql ----
-- src/linkage/compare.sql
-- Linkage comparators (src/linkage/compare.c).  Each returns a comparison
-- level: 0 missing/unusable, 1 different, higher = closer, top = exact.
-- Not strict (NULL is the missing level); immutable; parallel safe.  They
-- hold no secret, so every role may call them.

CREATE FUNCTION caredata.compare_nhs_number(text, text) RETURNS integer
  AS 'MODULE_PATHNAME', 'compare_nhs_number_text' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_nhs_number(text, text) IS
  'NHS number comparison level: 3 exact (valid), 2 one digit different or two adjacent digits transposed, 1 different (both valid), 0 missing or invalid';
CREATE FUNCTION caredata.compare_nhs_number(bigint, bigint) RETURNS integer
  AS 'MODULE_PATHNAME', 'compare_nhs_number_int8' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_nhs_number(bigint, bigint) IS
  'NHS number comparison level on ten digits held as bigint (valid or not): 3 exact, 2 one digit or transposition, 1 different, 0 missing or invalid';
CREATE FUNCTION caredata.compare_nhs_number(caredata.nhs_number, caredata.nhs_number) RETURNS integer
  AS 'MODULE_PATHNAME', 'compare_nhs_number_int8' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_nhs_number(caredata.nhs_number, caredata.nhs_number) IS
  'NHS number comparison level: 3 exact, 1 different, 0 missing (two valid numbers are never one digit apart)';

CREATE FUNCTION caredata.nhs_number_digits(text) RETURNS bigint
  AS 'MODULE_PATHNAME', 'nhs_number_digits_text' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.nhs_number_digits(text) IS
  'the ten digits of an NHS number as sent, whether or not the check digit holds (for linkage); NULL unless ten digits in an accepted layout';

CREATE FUNCTION caredata.compare_date(date, date, within_days integer DEFAULT 30) RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_date(date, date, integer) IS
  'date comparison level: 5 exact, 4 day and month transposed, 3 two of year/month/day equal, 2 within within_days days, 1 different, 0 missing';

CREATE FUNCTION caredata.compare_postcode(text, text) RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_postcode(text, text) IS
  'UK postcode comparison level: 5 same unit, 4 same sector, 3 same district, 2 same area, 1 different, 0 missing or not a postcode';

CREATE FUNCTION caredata.compare_sex(text, text) RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_sex(text, text) IS
  'sex comparison level on any coding standardise_sex accepts: 2 same, 1 different, 0 missing, not known or unrecognised';

CREATE FUNCTION caredata.compare_exact(anyelement, anyelement) RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS 'SELECT CASE WHEN $1 IS NULL OR $2 IS NULL THEN 0 WHEN $1 = $2 THEN 2 ELSE 1 END';
COMMENT ON FUNCTION caredata.compare_exact(anyelement, anyelement) IS
  'exact comparison level on any column: 2 equal, 1 different, 0 missing (inlined by the planner)';

CREATE FUNCTION caredata.jaro_winkler(text, text) RETURNS double precision
  AS 'MODULE_PATHNAME', 'jaro_winkler_similarity' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.jaro_winkler(text, text) IS
  'Jaro-Winkler similarity of two strings, 0 to 1 (prefix scale 0.1, up to 4 characters), by character';
CREATE FUNCTION caredata.damerau_levenshtein(text, text) RETURNS integer
  AS 'MODULE_PATHNAME', 'damerau_levenshtein_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.damerau_levenshtein(text, text) IS
  'Damerau-Levenshtein distance (optimal string alignment: insertions, deletions, substitutions, adjacent transpositions), by character';
CREATE FUNCTION caredata.compare_jaro_winkler(text, text, thresholds double precision[] DEFAULT '{0.92,0.8}') RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_jaro_winkler(text, text, double precision[]) IS
  'string comparison level by Jaro-Winkler similarity, thresholds strictest first: exact n+2, similarity >= thresholds[i] n+2-i, else 1; 0 missing';
CREATE FUNCTION caredata.compare_damerau_levenshtein(text, text, thresholds integer[] DEFAULT '{1,2}') RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_damerau_levenshtein(text, text, integer[]) IS
  'string comparison level by Damerau-Levenshtein distance, thresholds strictest first: exact n+2, distance <= thresholds[i] n+2-i, else 1; 0 missing';

-- ---- src/linkage/tables.sql ----
-- src/linkage/tables.sql
-- The linkage catalog and results (docs/linkage.md): sources, standardised
-- records, models (versioned, editable), runs, links and the person index.
-- They hold real identifiers: only caredata_linker and caredata_admin may
-- read or write them; PUBLIC (analysts, recipients, patients) has nothing.

CREATE TABLE caredata.link_source (
  source      text PRIMARY KEY
              CHECK (source ~ '^[a-z][a-z0-9_]{0,62}$'),
  relation    regclass NOT NULL,
  record_id   name NOT NULL,
  nhs_number  name,
  dob         name,
  sex         name,
  postcode    name,
  added_at    timestamptz NOT NULL DEFAULT now(),
  added_by    name NOT NULL DEFAULT current_user
);
COMMENT ON TABLE caredata.link_source IS
  'linkage sources: a relation and which of its columns hold the record id and the identifiers (link_add_source)';

-- record ids that outlive runs: a record keeps its rid, so person ids stay put
CREATE TABLE caredata.link_record_key (
  rid        bigint PRIMARY KEY,
  source     text NOT NULL,
  record_id  bigint NOT NULL,
  first_run  bigint NOT NULL,
  UNIQUE (source, record_id)
);
COMMENT ON TABLE caredata.link_record_key IS
  'a stable internal id (rid) per (source, record_id), numbered in order of first sight; never reused';

-- rebuilt by every run from the sources (standardised identifiers, value
-- frequencies for term-frequency adjustment, blocking keys)
CREATE TABLE caredata.link_record (
  rid            bigint PRIMARY KEY,
  source         text NOT NULL,
  record_id      bigint NOT NULL,
  nhs_digits     bigint,
  nhs_head       integer,
  nhs_tail       integer,
  dob            date,
  sex            text,
  postcode       text,
  sector         text,
  district       text,
  area           text,
  yob            integer,
  tf_nhs_digits  double precision,
  tf_dob         double precision,
  tf_postcode    double precision
);
COMMENT ON TABLE caredata.link_record IS
  'standardised records of the last run: NHS number digits (valid or not) and their first six (nhs_head) and last four (nhs_tail), date of birth, sex code, canonical postcode and its parts, value frequencies (tf_*)';

CREATE TABLE caredata.link_model (
  model       text NOT NULL CHECK (model ~ '^[a-z][a-z0-9_]{0,62}$'),
  version     integer NOT NULL CHECK (version > 0),
  spec        jsonb NOT NULL,
  lambda      double precision CHECK (lambda > 0 AND lambda < 1),
  trained_at  timestamptz,
  trained_by  name,
  training    jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (model, version)
);
COMMENT ON TABLE caredata.link_model IS
  'linkage models, one row per version: the spec (comparisons, blocking rules, deterministic steps), lambda (the probability that two records drawn at random are one person) and how it was trained';

CREATE TABLE caredata.link_model_level (
  model       text NOT NULL,
  version     integer NOT NULL,
  comparison  text NOT NULL,
  position    integer NOT NULL,
  level       integer NOT NULL,
  label       text NOT NULL,
  m           double precision CHECK (m > 0 AND m <= 1),
  u           double precision CHECK (u > 0 AND u <= 1),
  PRIMARY KEY (model, version, comparison, level),
  FOREIGN KEY (model, version) REFERENCES caredata.link_model ON DELETE CASCADE
);
COMMENT ON TABLE caredata.link_model_level IS
  'm and u per comparison level of each model version (editable by hand; a run with train => false uses them as they are)';

CREATE TABLE caredata.link_run (
  run_id       bigint PRIMARY KEY,
  model        text NOT NULL,
  version      integer NOT NULL,
  method       text NOT NULL CHECK (method IN ('probabilistic', 'deterministic')),
  incremental  boolean NOT NULL,
  one_to_one   boolean NOT NULL,
  threshold    double precision,
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz,
  run_by       name NOT NULL DEFAULT current_user,
  stats        jsonb,
  FOREIGN KEY (model, version) REFERENCES caredata.link_model
);
COMMENT ON TABLE caredata.link_run IS
  'linkage runs: the model version, method and threshold used, and counts and times per phase (stats)';

-- no primary key and no foreign key: a run writes millions of links, and
-- checking each row against link_run and a unique index took four times
-- as long as writing it.  Pairs are unique by construction (each blocking
-- rule skips the pairs of the rules before it); run_id grows with every
-- run, so a BRIN index finds one run's links for next to nothing.
CREATE TABLE caredata.link_pair (
  run_id       bigint NOT NULL,
  rid_l        bigint NOT NULL,
  rid_r        bigint NOT NULL,
  pattern      integer NOT NULL,
  weight       double precision,
  probability  double precision,
  step         smallint
);
CREATE INDEX link_pair_run_idx ON caredata.link_pair USING brin (run_id);
COMMENT ON TABLE caredata.link_pair IS
  'accepted links of each run (rid_l < rid_r, one row per pair and run): comparison pattern, match weight and probability (probabilistic) or the step that made the link (deterministic); delete old runs'' rows with DELETE ... WHERE run_id < n';

CREATE TABLE caredata.person_index (
  source     text NOT NULL,
  record_id  bigint NOT NULL,
  rid        bigint NOT NULL UNIQUE,
  person_id  bigint NOT NULL,
  run_id     bigint NOT NULL,
  PRIMARY KEY (source, record_id)
);
CREATE INDEX person_index_person_idx ON caredata.person_index (person_id);
COMMENT ON TABLE caredata.person_index IS
  'the person index: (source, record_id) -> person_id, stable across runs (link_run keeps ids, records merges and splits in person_event)';

CREATE TABLE caredata.person_event (
  run_id           bigint NOT NULL REFERENCES caredata.link_run ON DELETE CASCADE,
  kind             text NOT NULL CHECK (kind IN ('merge', 'split')),
  person_id        bigint NOT NULL,
  other_person_id  bigint NOT NULL,
  records          bigint NOT NULL
);
COMMENT ON TABLE caredata.person_event IS
  'changes of identity between runs: merge (other_person_id''s records joined person_id, which survives) and split (records of person_id moved to the new other_person_id)';

DO $grants$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['link_source', 'link_record_key', 'link_record', 'link_model',
                           'link_model_level', 'link_run', 'link_pair', 'person_index', 'person_event']
  LOOP
    EXECUTE format('REVOKE ALL ON caredata.%I FROM PUBLIC', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON caredata.%I TO caredata_linker, caredata_admin', t);
    EXECUTE format('SELECT pg_catalog.pg_extension_config_dump(%L, %L)', 'caredata.' || t, '');
  END LOOP;
END
$grants$;

-- ---- src/linkage/model.sql ----
-- src/linkage/model.sql
-- The linkage driver (docs/linkage.md): sources, models, runs, quality,
-- explanation and one-record lookup.  Set-at-a-time work (standardising,
-- blocking joins, writes) is SQL built from the model's spec; per-pair and
-- per-model work is C (src/linkage/compare.c, em.c, cluster.c).
--
-- Every function here runs as its caller (the linker reads the sources
-- with its own rights) and is executable by caredata_linker and
-- caredata_admin only.  No message prints an identifier: notices carry
-- counts and times.

-- ---- C entry points ----

CREATE FUNCTION caredata.link_em(patterns integer[], counts double precision[], nlevels integer[],
    u double precision[], m double precision[], total_pairs double precision,
    max_iter integer DEFAULT 100, tolerance double precision DEFAULT 1e-6,
    OUT m double precision[], OUT lambda double precision, OUT iterations integer, OUT converged boolean)
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.link_em(integer[], double precision[], integer[], double precision[], double precision[], double precision, integer, double precision) IS
  'Fellegi-Sunter EM over a histogram of comparison patterns: estimates m per level and lambda with u fixed';

CREATE FUNCTION caredata.link_pattern_weights(patterns integer[], nlevels integer[],
    m double precision[], u double precision[], lambda double precision) RETURNS double precision[]
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.link_pattern_weights(integer[], integer[], double precision[], double precision[], double precision) IS
  'match weight of each comparison pattern: log2(lambda/(1-lambda)) + sum of log2(m/u) over its levels';

CREATE FUNCTION caredata.link_weight(pattern integer, tf_adj double precision, weights double precision[])
  RETURNS double precision
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.link_weight(integer, double precision, double precision[]) IS
  'match weight of a candidate pair: weights[pattern + 1] (the dense table of pattern weights) plus its term-frequency adjustment';

CREATE FUNCTION caredata._link_threshold_accum(double precision[], double precision) RETURNS double precision[]
  AS 'MODULE_PATHNAME', 'link_threshold_accum' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._link_threshold_combine(double precision[], double precision[]) RETURNS double precision[]
  AS 'MODULE_PATHNAME', 'link_threshold_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._link_threshold_final(double precision[]) RETURNS double precision
  AS 'MODULE_PATHNAME', 'link_threshold_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata._link_threshold_accum(double precision[], double precision) IS 'internal: transition function of link_threshold()';
COMMENT ON FUNCTION caredata._link_threshold_combine(double precision[], double precision[]) IS 'internal: combine function of link_threshold()';
COMMENT ON FUNCTION caredata._link_threshold_final(double precision[]) IS 'internal: final function of link_threshold()';
-- the state is double precision[] (counts, then probability sums, per
-- quarter-bit bucket), not internal: partial states travel as text
CREATE AGGREGATE caredata.link_threshold(weight double precision) (
  SFUNC = caredata._link_threshold_accum, STYPE = double precision[], SSPACE = 65560,
  COMBINEFUNC = caredata._link_threshold_combine,
  FINALFUNC = caredata._link_threshold_final, PARALLEL = SAFE);
COMMENT ON AGGREGATE caredata.link_threshold(double precision) IS
  'the label-free link threshold over candidate pairs'' match weights: the quarter-bit cut with the highest expected F1, 2 TP / (predicted + actual), where TP sums the match probabilities at or above the cut, predicted counts the pairs there and actual sums all probabilities';

CREATE FUNCTION caredata.link_components(links_query text, one_to_one boolean DEFAULT false, nhs_query text DEFAULT NULL)
  RETURNS TABLE (rid bigint, cluster bigint, refused boolean)
  AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata.link_components(text, boolean, text) IS
  'union-find over the (bigint, bigint) links a query returns, in its order: each record in a link, its cluster (the smallest record id in it) and whether a link of it was refused; one_to_one accepts a link only if neither record is linked yet; nhs_query (record id, NHS digits) keeps apart clusters holding valid NHS numbers that differ by more than one typing error';

-- ---- the default model ----

CREATE FUNCTION caredata.link_default_spec() RETURNS jsonb
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN $spec$
{
  "link_type": "link_and_dedupe",
  "comparisons": [
    {"name": "nhs", "expression": "caredata.compare_nhs_number(l.nhs_digits, r.nhs_digits)",
     "levels": ["missing or invalid", "different", "one digit different or transposed", "exact"],
     "tf": "nhs_digits"},
    {"name": "dob", "expression": "caredata.compare_date(l.dob, r.dob, 365)",
     "levels": ["missing", "different", "within a year", "two of year, month, day", "day and month transposed", "exact"],
     "tf": "dob"},
    {"name": "sex", "expression": "caredata.compare_sex(l.sex, r.sex)",
     "levels": ["missing or not known", "different", "same"]},
    {"name": "postcode", "expression": "caredata.compare_postcode(l.postcode, r.postcode)",
     "levels": ["missing", "different", "same area", "same district", "same sector", "exact"],
     "tf": "postcode"}
  ],
  "blocking": [["nhs_digits"], ["dob", "area"], ["postcode", "yob"], ["dob", "nhs_head"], ["dob", "nhs_tail"]],
  "steps": [
    "nhs = 3 AND dob = 5 AND sex = 2",
    "nhs = 3 AND dob IN (3, 4) AND postcode >= 3",
    "dob = 5 AND sex = 2 AND postcode = 5 AND nhs <> 1",
    "nhs = 2 AND dob = 5 AND postcode >= 3"
  ],
  "u_sample_pairs": 1000000,
  "seed": 42,
  "max_pairs": 200000000,
  "em_max_iterations": 100,
  "em_tolerance": 1e-6,
  "keep_nhs_apart": true
}
$spec$::jsonb;
COMMENT ON FUNCTION caredata.link_default_spec() IS
  'the default linkage model: NHS number, date of birth, sex and postcode comparisons, five blocking rules, four HESID-style deterministic steps';

-- ---- checks (internal) ----

CREATE FUNCTION caredata._link_bad(msg text, hint text, code text DEFAULT '22023') RETURNS void
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RAISE EXCEPTION USING MESSAGE = msg, HINT = hint, ERRCODE = code;
END
$$;
COMMENT ON FUNCTION caredata._link_bad(text, text, text) IS
  'internal: raise a linkage configuration error with a hint';

-- the columns of link_record a blocking rule may use
CREATE FUNCTION caredata._link_key_columns() RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN ARRAY['source', 'nhs_digits', 'nhs_head', 'nhs_tail', 'dob', 'sex', 'postcode', 'sector', 'district', 'area', 'yob'];
COMMENT ON FUNCTION caredata._link_key_columns() IS
  'internal: the standardised record columns that blocking rules may name';

-- statistics and lookup indexes on the linkage tables, which the extension
-- owns: the linker may write them but not ANALYZE or index them itself.
-- SECURITY DEFINER with a pinned search_path; it only ever names the two
-- tables below and whitelisted columns.
CREATE FUNCTION caredata._link_maintain(what text, rules jsonb DEFAULT '[]') RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  col text;
BEGIN
  IF what = 'analyze_records' THEN
    ANALYZE caredata.link_record;
  ELSIF what = 'index_rules' THEN
    -- one single-column index per distinct leading column of the rules: a
    -- lookup finds a handful of rows by it and filters on the rest
    FOR col IN SELECT DISTINCT b.value->>0 FROM jsonb_array_elements(rules) b LOOP
      IF NOT col = ANY (caredata._link_key_columns()) THEN
        RAISE EXCEPTION USING ERRCODE = '42703', MESSAGE = 'blocking rules name only standardised record columns';
      END IF;
      IF to_regclass('caredata.' || quote_ident('link_record_' || col || '_idx')) IS NULL THEN
        EXECUTE format('CREATE INDEX %I ON caredata.link_record (%I)', 'link_record_' || col || '_idx', col);
      END IF;
    END LOOP;
  ELSIF what = 'drop_indexes' THEN
    -- before link_record is rebuilt: building them afresh is cheaper than
    -- maintaining them row by row
    FOR col IN SELECT i.indexrelid::regclass::text FROM pg_catalog.pg_index i
                WHERE i.indrelid = 'caredata.link_record'::regclass AND NOT i.indisprimary LOOP
      EXECUTE format('DROP INDEX %s', col);
    END LOOP;
  ELSIF what = 'drop_person_indexes' THEN
    -- before the person index is rewritten (link_run holds the lock that
    -- lookups wait for, so nobody sees it without them)
    ALTER TABLE caredata.person_index DROP CONSTRAINT IF EXISTS person_index_pkey,
                                      DROP CONSTRAINT IF EXISTS person_index_rid_key;
    DROP INDEX IF EXISTS caredata.person_index_person_idx;
  ELSIF what = 'build_person_indexes' THEN
    ALTER TABLE caredata.person_index ADD CONSTRAINT person_index_pkey PRIMARY KEY (source, record_id),
                                      ADD CONSTRAINT person_index_rid_key UNIQUE (rid);
    CREATE INDEX person_index_person_idx ON caredata.person_index (person_id);
    ANALYZE caredata.person_index;
  ELSE
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'unknown linkage maintenance step';
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._link_maintain(text, jsonb) IS
  'internal: ANALYZE the standardised records, drop or create the blocking rules'' lookup indexes, and drop or build the person index''s indexes around its rewrite, as the extension owner';

CREATE FUNCTION caredata._link_check_spec(spec jsonb) RETURNS void
  LANGUAGE plpgsql STABLE AS $$
DECLARE
  c jsonb;
  names text[] := '{}';
  rule jsonb;
  col text;
  step text;
  probe text;
  nl integer;
BEGIN
  IF jsonb_typeof(spec) IS DISTINCT FROM 'object' THEN
    PERFORM caredata._link_bad('a linkage model spec must be a JSON object', 'Start from caredata.link_default_spec().');
  END IF;
  IF spec->>'link_type' IS NULL OR spec->>'link_type' NOT IN ('link_and_dedupe', 'link_only', 'dedupe_only') THEN
    PERFORM caredata._link_bad('link_type must be link_and_dedupe, link_only or dedupe_only', 'Set "link_type" in the spec.');
  END IF;
  IF jsonb_typeof(spec->'comparisons') IS DISTINCT FROM 'array' OR jsonb_array_length(spec->'comparisons') = 0 THEN
    PERFORM caredata._link_bad('a linkage model needs at least one comparison', 'Set "comparisons" to an array of {name, expression, levels}.');
  END IF;
  FOR c IN SELECT * FROM jsonb_array_elements(spec->'comparisons') LOOP
    IF coalesce(c->>'name', '') !~ '^[a-z][a-z0-9_]{0,30}$' OR c->>'name' IN ('rid_l', 'rid_r', 'pattern', 'tf_adj', 'weight', 'l', 'r') THEN
      PERFORM caredata._link_bad('a comparison needs a name: lower-case letters, digits and _, not rid_l, rid_r, pattern, tf_adj, weight, l or r',
                                 'Name comparisons like "nhs" or "dob".');
    END IF;
    IF c->>'name' = ANY (names) THEN
      PERFORM caredata._link_bad(format('comparison "%s" is named twice', c->>'name'), 'Give each comparison its own name.');
    END IF;
    names := names || (c->>'name');
    IF jsonb_typeof(c->'levels') IS DISTINCT FROM 'array' THEN
      PERFORM caredata._link_bad(format('comparison "%s" has no levels', c->>'name'), 'Set "levels" to the labels of levels 0 (missing), 1 (different), ... up to exact.');
    END IF;
    nl := jsonb_array_length(c->'levels');
    IF nl < 2 OR nl > 16 THEN
      PERFORM caredata._link_bad(format('comparison "%s" must have between 2 and 16 levels', c->>'name'), 'Level 0 is missing, 1 different, the last exact.');
    END IF;
    IF c ? 'tf' AND c->>'tf' NOT IN ('nhs_digits', 'dob', 'postcode') THEN
      PERFORM caredata._link_bad(format('comparison "%s": term-frequency adjustment is available for nhs_digits, dob and postcode only', c->>'name'),
                                 'Remove "tf" or set it to one of those columns.');
    END IF;
    IF c ? 'm' AND (jsonb_typeof(c->'m') IS DISTINCT FROM 'array' OR jsonb_array_length(c->'m') <> nl) THEN
      PERFORM caredata._link_bad(format('comparison "%s": starting m must have one probability per level', c->>'name'), 'Remove "m" to use the default start.');
    END IF;
    IF c->>'expression' IS NULL THEN
      PERFORM caredata._link_bad(format('comparison "%s" has no expression', c->>'name'),
                                 'Set "expression" to SQL over the record aliases l and r, e.g. caredata.compare_sex(l.sex, r.sex).');
    END IF;
    BEGIN
      EXECUTE format('SELECT (%s)::integer FROM caredata.link_record l, caredata.link_record r WHERE false', c->>'expression');
    EXCEPTION WHEN OTHERS THEN
      PERFORM caredata._link_bad(format('comparison "%s": its expression is not valid over the standardised records: %s', c->>'name', SQLERRM),
                                 'Use the columns of caredata.link_record through the aliases l and r, and a comparator returning an integer level.', '42804');
    END;
  END LOOP;

  -- a pattern packs one level per comparison; runs keep one weight per
  -- possible pattern in memory
  IF (SELECT sum(ln(jsonb_array_length(x->'levels'))) FROM jsonb_array_elements(spec->'comparisons') x) > ln(1048576) + 1e-9 THEN
    PERFORM caredata._link_bad('the comparisons have more than 1048576 combinations of levels',
                               'Use fewer comparisons or fewer levels per comparison.', '54000');
  END IF;

  IF jsonb_typeof(spec->'keep_nhs_apart') IS DISTINCT FROM 'boolean' THEN
    PERFORM caredata._link_bad('keep_nhs_apart must be true or false', 'Leave it out for the default (true).');
  END IF;
  IF jsonb_typeof(spec->'blocking') IS DISTINCT FROM 'array' OR jsonb_array_length(spec->'blocking') = 0 THEN
    PERFORM caredata._link_bad('a linkage model needs at least one blocking rule', 'Set "blocking" to an array of column lists, e.g. [["nhs_digits"], ["dob", "area"]].');
  END IF;
  FOR rule IN SELECT * FROM jsonb_array_elements(spec->'blocking') LOOP
    IF jsonb_typeof(rule) IS DISTINCT FROM 'array' OR jsonb_array_length(rule) = 0 THEN
      PERFORM caredata._link_bad('a blocking rule is a non-empty list of columns', 'For example ["dob", "area"].');
    END IF;
    FOR col IN SELECT * FROM jsonb_array_elements_text(rule) LOOP
      IF NOT col = ANY (caredata._link_key_columns()) OR col = 'source' AND jsonb_array_length(rule) = 1 THEN
        PERFORM caredata._link_bad(format('blocking rules cannot use column "%s"', col),
                                   'Blocking columns: ' || array_to_string(caredata._link_key_columns(), ', ') || ' (source only with another column).', '42703');
      END IF;
    END LOOP;
  END LOOP;

  probe := (SELECT string_agg(format('0 AS %I', n), ', ') FROM unnest(names) n);
  IF spec ? 'steps' THEN
    FOR step IN SELECT * FROM jsonb_array_elements_text(spec->'steps') LOOP
      BEGIN
        EXECUTE format('SELECT (%s)::boolean FROM (SELECT %s) p WHERE false', step, probe);
      EXCEPTION WHEN OTHERS THEN
        PERFORM caredata._link_bad(format('deterministic step is not valid: %s', SQLERRM),
                                   'A step is a boolean over the comparison levels by name, e.g. nhs = 3 AND dob = 5.', '42804');
      END;
    END LOOP;
  END IF;
  IF coalesce((spec->>'u_sample_pairs')::bigint, 0) < 100 OR coalesce((spec->>'max_pairs')::bigint, 0) < 1 THEN
    PERFORM caredata._link_bad('u_sample_pairs must be at least 100 and max_pairs at least 1', 'See caredata.link_default_spec() for the defaults.');
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._link_check_spec(jsonb) IS
  'internal: refuse a linkage model spec with a clear error and hint';

-- ---- sources ----

CREATE FUNCTION caredata.link_add_source(source text, relation regclass, record_id name,
    nhs_number name DEFAULT NULL, dob name DEFAULT NULL, sex name DEFAULT NULL, postcode name DEFAULT NULL)
  RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  p_source text := source;
  c record;
  typ regtype;
  allowed regtype[];
BEGIN
  IF p_source IS NULL OR p_source !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    PERFORM caredata._link_bad('a linkage source name is lower-case letters, digits and _', 'For example ''gp'' or ''hes''.');
  END IF;
  FOR c IN SELECT * FROM (VALUES
      ('record_id', record_id, ARRAY['smallint', 'integer', 'bigint']::regtype[]),
      ('nhs_number', nhs_number, ARRAY['text', 'character varying', 'character', 'bigint', 'caredata.nhs_number']::regtype[]),
      ('dob', dob, ARRAY['date', 'timestamp without time zone', 'timestamp with time zone', 'text', 'character varying', 'character']::regtype[]),
      ('sex', sex, ARRAY['text', 'character varying', 'character', 'smallint', 'integer']::regtype[]),
      ('postcode', postcode, ARRAY['text', 'character varying', 'character']::regtype[])) v(what, col, types)
  LOOP
    IF c.col IS NULL THEN
      IF c.what = 'record_id' THEN
        PERFORM caredata._link_bad('a linkage source needs its record id column', 'Name an integer column that identifies each record.');
      END IF;
      CONTINUE;
    END IF;
    SELECT a.atttypid::regtype INTO typ FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = relation AND a.attname = c.col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'undefined_column',
        MESSAGE = format('column "%s" of relation %s does not exist', c.col, relation),
        HINT = format('Name the %s column of %s as it is spelled there.', c.what, relation);
    END IF;
    IF NOT typ = ANY (c.types) THEN
      RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
        MESSAGE = format('column "%s" of relation %s has type %s, which cannot be used as %s', c.col, relation, typ, c.what),
        HINT = format('Accepted types for %s: %s.', c.what, array_to_string(c.types::text[], ', '));
    END IF;
  END LOOP;
  INSERT INTO caredata.link_source AS s (source, relation, record_id, nhs_number, dob, sex, postcode)
  VALUES (p_source, relation, record_id, nhs_number, dob, sex, postcode)
  ON CONFLICT ON CONSTRAINT link_source_pkey DO UPDATE
    SET relation = excluded.relation, record_id = excluded.record_id, nhs_number = excluded.nhs_number,
        dob = excluded.dob, sex = excluded.sex, postcode = excluded.postcode,
        added_at = now(), added_by = current_user;
END
$$;
COMMENT ON FUNCTION caredata.link_add_source(text, regclass, name, name, name, name, name) IS
  'register (or re-register) a linkage source: a relation, its integer record id column and its identifier columns (any may be NULL)';

-- the SQL expression that standardises one identifier column of a source
CREATE FUNCTION caredata._link_std_expr(relation regclass, col name, what text) RETURNS text
  LANGUAGE plpgsql STABLE AS $$
DECLARE
  typ regtype;
BEGIN
  IF col IS NULL THEN
    -- typed, so that a run over one source without the column works
    RETURN CASE what WHEN 'dob' THEN 'NULL::date' WHEN 'record_id' THEN 'NULL::bigint'
                     WHEN 'nhs_number' THEN 'NULL::bigint' ELSE 'NULL::text' END;
  END IF;
  SELECT a.atttypid::regtype INTO typ FROM pg_catalog.pg_attribute a
   WHERE a.attrelid = relation AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'undefined_column',
      MESSAGE = format('column "%s" of relation %s no longer exists', col, relation),
      HINT = 'Register the source again with caredata.link_add_source().';
  END IF;
  RETURN CASE what
    WHEN 'record_id' THEN format('s.%I::bigint', col)
    WHEN 'nhs_number' THEN CASE WHEN typ IN ('bigint'::regtype, 'caredata.nhs_number'::regtype)
                                THEN format('s.%I::bigint', col)
                                ELSE format('caredata.nhs_number_digits(s.%I::text)', col) END
    WHEN 'dob' THEN CASE WHEN typ IN ('text'::regtype, 'character varying'::regtype, 'character'::regtype)
                         THEN format('caredata.try_standardise_dob(s.%I::text)', col)
                         ELSE format('(SELECT d FROM (SELECT s.%I::date AS d) x WHERE caredata.dob_is_valid(d))', col) END
    WHEN 'sex' THEN format('caredata.try_standardise_sex(s.%I::text)', col)
    WHEN 'postcode' THEN format('caredata.try_normalise_postcode(s.%I::text)', col)
  END;
END
$$;
COMMENT ON FUNCTION caredata._link_std_expr(regclass, name, text) IS
  'internal: the standardising expression for one identifier column of a linkage source';

-- rebuild link_record from the sources; returns the number of records
CREATE FUNCTION caredata.link_standardise(sources text[] DEFAULT NULL, run_id bigint DEFAULT 0)
  RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  s record;
  n bigint;
  total bigint;
  parts text[] := '{}';
  work_table text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM caredata.link_source ls WHERE sources IS NULL OR ls.source = ANY (sources)) THEN
    PERFORM caredata._link_bad('no linkage sources to link', 'Register sources with caredata.link_add_source().', '42704');
  END IF;
  IF sources IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(sources) x WHERE x NOT IN (SELECT ls.source FROM caredata.link_source ls)) THEN
    PERFORM caredata._link_bad('a named linkage source does not exist', 'See caredata.link_source for the registered sources.', '42704');
  END IF;
  -- the standardised records, each with its stable rid if it has one
  FOR s IN SELECT * FROM caredata.link_source ls WHERE sources IS NULL OR ls.source = ANY (sources) ORDER BY ls.source LOOP
    parts := parts || format('SELECT k.rid, %L::text AS source, %s AS record_id, %s AS nhs_digits, %s AS dob, %s AS sex, %s AS postcode
                                FROM %s s LEFT JOIN caredata.link_record_key k ON k.source = %1$L AND k.record_id = %2$s',
      s.source, caredata._link_std_expr(s.relation, s.record_id, 'record_id'),
      caredata._link_std_expr(s.relation, s.nhs_number, 'nhs_number'),
      caredata._link_std_expr(s.relation, s.dob, 'dob'),
      caredata._link_std_expr(s.relation, s.sex, 'sex'),
      caredata._link_std_expr(s.relation, s.postcode, 'postcode'), s.relation);
  END LOOP;
  FOREACH work_table IN ARRAY ARRAY['link_stage', 'link_new_key'] LOOP
    IF to_regclass('pg_temp.' || work_table) IS NOT NULL THEN
      EXECUTE format('DROP TABLE pg_temp.%I', work_table);
    END IF;
  END LOOP;
  EXECUTE 'CREATE TEMP TABLE link_stage ON COMMIT DROP AS ' || array_to_string(parts, ' UNION ALL ');
  total := 0;
  FOR s IN SELECT ls.source, count(t.source) AS n, count(t.source) FILTER (WHERE t.record_id IS NULL) AS no_id
             FROM caredata.link_source ls LEFT JOIN pg_temp.link_stage t ON t.source = ls.source
            WHERE sources IS NULL OR ls.source = ANY (sources) GROUP BY ls.source ORDER BY ls.source LOOP
    IF s.n = 0 THEN
      PERFORM caredata._link_bad(format('linkage source "%s" has no records', s.source),
                                 'Load the source, or leave it out with the sources argument.', '22023');
    END IF;
    IF s.no_id > 0 THEN
      PERFORM caredata._link_bad(format('linkage source "%s" has records without a record id', s.source),
                                 'Every record needs a record id: fix the source or filter it through a view.', '23502');
    END IF;
    total := total + s.n;
  END LOOP;

  -- stable rids: new records numbered after the highest, in (source,
  -- record_id) order.  A record id twice in a source breaks a unique
  -- index, here (a new one) or on link_record below (one seen before).
  CREATE TEMP TABLE link_new_key ON COMMIT DROP AS
  SELECT coalesce((SELECT max(k.rid) FROM caredata.link_record_key k), 0) + row_number() OVER (ORDER BY t.source, t.record_id) AS rid,
         t.source, t.record_id
    FROM pg_temp.link_stage t WHERE t.rid IS NULL;
  ANALYZE pg_temp.link_new_key;
  TRUNCATE caredata.link_record;
  PERFORM caredata._link_maintain('drop_indexes');
  BEGIN
    INSERT INTO caredata.link_record_key (rid, source, record_id, first_run)
    SELECT k.rid, k.source, k.record_id, link_standardise.run_id FROM pg_temp.link_new_key k;
    -- value frequencies for the term-frequency adjustment; only a value
    -- held by two records or more can ever agree exactly with another
    INSERT INTO caredata.link_record
    SELECT coalesce(t.rid, k.rid), t.source, t.record_id, t.nhs_digits, (t.nhs_digits / 10000)::integer, (t.nhs_digits % 10000)::integer,
           t.dob, t.sex, t.postcode,
           caredata.postcode_sector(t.postcode), caredata.postcode_district(t.postcode), caredata.postcode_area(t.postcode),
           extract(year FROM t.dob)::integer,
           CASE WHEN t.nhs_digits IS NOT NULL THEN coalesce(fn.f, 1.0 / total) END,
           CASE WHEN t.dob IS NOT NULL THEN coalesce(fd.f, 1.0 / total) END,
           CASE WHEN t.postcode IS NOT NULL THEN coalesce(fp.f, 1.0 / total) END
      FROM pg_temp.link_stage t
      LEFT JOIN pg_temp.link_new_key k ON t.rid IS NULL AND k.source = t.source AND k.record_id = t.record_id
      LEFT JOIN (SELECT nhs_digits, count(*)::double precision / total AS f FROM pg_temp.link_stage GROUP BY 1 HAVING count(*) > 1) fn USING (nhs_digits)
      LEFT JOIN (SELECT dob, count(*)::double precision / total AS f FROM pg_temp.link_stage GROUP BY 1 HAVING count(*) > 1) fd USING (dob)
      LEFT JOIN (SELECT postcode, count(*)::double precision / total AS f FROM pg_temp.link_stage GROUP BY 1 HAVING count(*) > 1) fp USING (postcode);
    GET DIAGNOSTICS n = ROW_COUNT;
  EXCEPTION WHEN unique_violation THEN
    PERFORM caredata._link_bad('a linkage source has duplicate record ids', 'Record ids must be unique within a source.', '23505');
  END;
  DROP TABLE pg_temp.link_stage;
  DROP TABLE pg_temp.link_new_key;
  PERFORM caredata._link_maintain('analyze_records');
  RETURN n;
END
$$;
COMMENT ON FUNCTION caredata.link_standardise(text[], bigint) IS
  'rebuild caredata.link_record from the registered sources (all, or those named): standardised identifiers, postcode parts, value frequencies; returns the number of records';

-- ---- models ----

CREATE FUNCTION caredata.link_create_model(model text, spec jsonb DEFAULT '{}') RETURNS integer
  LANGUAGE plpgsql AS $$
DECLARE
  p_model text := model;
  full_spec jsonb := caredata.link_default_spec() || coalesce(spec, '{}');
  v integer;
BEGIN
  IF p_model IS NULL OR p_model !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    PERFORM caredata._link_bad('a linkage model name is lower-case letters, digits and _', 'For example ''default''.');
  END IF;
  PERFORM caredata._link_check_spec(full_spec);
  SELECT coalesce(max(lm.version), 0) + 1 INTO v FROM caredata.link_model lm WHERE lm.model = p_model;
  INSERT INTO caredata.link_model (model, version, spec) VALUES (p_model, v, full_spec);
  INSERT INTO caredata.link_model_level (model, version, comparison, position, level, label)
  SELECT p_model, v, c.value->>'name', c.ordinality - 1, l.ordinality - 1, l.value
    FROM jsonb_array_elements(full_spec->'comparisons') WITH ORDINALITY c
   CROSS JOIN LATERAL jsonb_array_elements_text(c.value->'levels') WITH ORDINALITY l;
  RETURN v;
END
$$;
COMMENT ON FUNCTION caredata.link_create_model(text, jsonb) IS
  'create a linkage model (or its next version) from a spec; keys not given are taken from link_default_spec(); returns the version (untrained until a run trains it)';

-- comparisons of a model version, in order, with what the SQL builders need
CREATE FUNCTION caredata._link_comparisons(model text, version integer)
  RETURNS TABLE (pos integer, name text, expression text, nlevels integer, tf text, m_start double precision[],
                 m double precision[], u double precision[], labels text[])
  LANGUAGE sql STABLE AS $$
  SELECT (c.ordinality - 1)::integer, c.value->>'name', c.value->>'expression',
         jsonb_array_length(c.value->'levels'), c.value->>'tf',
         CASE WHEN c.value ? 'm' THEN ARRAY(SELECT x::double precision FROM jsonb_array_elements_text(c.value->'m') x) END,
         ARRAY(SELECT ml.m FROM caredata.link_model_level ml
                WHERE ml.model = lm.model AND ml.version = lm.version AND ml.comparison = c.value->>'name' ORDER BY ml.level),
         ARRAY(SELECT ml.u FROM caredata.link_model_level ml
                WHERE ml.model = lm.model AND ml.version = lm.version AND ml.comparison = c.value->>'name' ORDER BY ml.level),
         ARRAY(SELECT jsonb_array_elements_text(c.value->'levels'))
    FROM caredata.link_model lm
   CROSS JOIN LATERAL jsonb_array_elements(lm.spec->'comparisons') WITH ORDINALITY c
   WHERE lm.model = _link_comparisons.model AND lm.version = _link_comparisons.version
   ORDER BY c.ordinality
$$;
COMMENT ON FUNCTION caredata._link_comparisons(text, integer) IS
  'internal: the comparisons of a model version with their levels, m and u';

-- the SQL pieces every scorer of pairs shares (runs, lookups): one column
-- per comparison level over aliases l and r (plus the r side's value
-- frequency where a comparison has term-frequency adjustment and u_top, the
-- u of each comparison's top level, is given), their names, the packed
-- pattern and the adjustment
CREATE FUNCTION caredata._link_compare_sql(model text, version integer, u_top double precision[])
  RETURNS TABLE (levels text, cols text, pattern text, tf text)
  LANGUAGE plpgsql STABLE AS $$
DECLARE
  c record;
  stride bigint := 1;
BEGIN
  levels := ''; cols := ''; pattern := ''; tf := '0::double precision';
  FOR c IN SELECT * FROM caredata._link_comparisons(model, version) ORDER BY pos LOOP
    levels := levels || format(', (%s)::smallint AS %I', c.expression, c.name);
    cols := cols || format(', %I', c.name);
    pattern := pattern || CASE WHEN stride = 1 THEN '' ELSE ' + ' END || format('%I * %s', c.name, stride);
    stride := stride * c.nlevels;
    IF c.tf IS NOT NULL AND u_top[c.pos + 1] IS NOT NULL THEN
      levels := levels || format(', r.%I AS %I', 'tf_' || c.tf, 'tf_' || c.name);
      tf := tf || format(' + CASE WHEN %I = %s AND %I > 0 THEN ln(%s / %I) * 1.4426950408889634 ELSE 0 END',
                         c.name, c.nlevels - 1, 'tf_' || c.name, u_top[c.pos + 1], 'tf_' || c.name);
    END IF;
  END LOOP;
  pattern := '(' || pattern || ')::integer';
  RETURN NEXT;
END
$$;
COMMENT ON FUNCTION caredata._link_compare_sql(text, integer, double precision[]) IS
  'internal: the comparison-level columns, pattern and term-frequency adjustment SQL of a model version, shared by runs and lookups';

-- the probability of a match weight
-- not STRICT, and NULL in gives NULL out, so that the planner inlines it
CREATE FUNCTION caredata.link_probability(weight double precision) RETURNS double precision
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 1 / (1 + power(2::double precision,
                        CASE WHEN weight > 1000 THEN -1000 WHEN weight < -1000 THEN 1000 ELSE -weight END));
COMMENT ON FUNCTION caredata.link_probability(double precision) IS
  'the match probability of a match weight w (bits): 2^w / (1 + 2^w)';

-- the pair condition of a link type
CREATE FUNCTION caredata._link_pair_condition(link_type text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN CASE link_type
    WHEN 'link_only' THEN 'l.rid < r.rid AND l.source <> r.source'
    WHEN 'dedupe_only' THEN 'l.rid < r.rid AND l.source = r.source'
    ELSE 'l.rid < r.rid' END;
COMMENT ON FUNCTION caredata._link_pair_condition(text) IS
  'internal: which pairs a link type compares (l.rid < r.rid, across or within sources)';

CREATE FUNCTION caredata._link_rule_condition(rule jsonb) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN (SELECT string_agg(format('l.%1$I = r.%1$I', c), ' AND ') FROM jsonb_array_elements_text(rule) c);
COMMENT ON FUNCTION caredata._link_rule_condition(jsonb) IS
  'internal: the equality condition of one blocking rule';

-- the planner's estimate of the pairs one blocking rule generates: what a
-- run checks against max_pairs before joining (milliseconds, where the
-- exact count of link_blocking_counts() scans and groups every record)
CREATE FUNCTION caredata._link_estimate_pairs(rule jsonb, link_type text) RETURNS double precision
  LANGUAGE plpgsql AS $$
DECLARE
  plan jsonb;
BEGIN
  EXECUTE format('EXPLAIN (FORMAT JSON) SELECT 1 FROM caredata.link_record l JOIN caredata.link_record r ON %s WHERE %s',
                 caredata._link_rule_condition(rule), caredata._link_pair_condition(link_type)) INTO plan;
  RETURN (plan->0->'Plan'->>'Plan Rows')::double precision;
END
$$;
COMMENT ON FUNCTION caredata._link_estimate_pairs(jsonb, text) IS
  'internal: the planner''s estimate of the candidate pairs a blocking rule generates';

-- pairs each blocking rule generates over the current standardised records
CREATE FUNCTION caredata.link_blocking_counts(model text DEFAULT 'default', version integer DEFAULT NULL)
  RETURNS TABLE (rule integer, columns text[], pairs bigint)
  LANGUAGE plpgsql AS $$
DECLARE
  p_model text := model;
  spec jsonb;
  r record;
  cols text;
  n bigint;
BEGIN
  SELECT lm.spec INTO spec FROM caredata.link_model lm
   WHERE lm.model = p_model AND (link_blocking_counts.version IS NULL OR lm.version = link_blocking_counts.version)
   ORDER BY lm.version DESC LIMIT 1;
  IF spec IS NULL THEN
    PERFORM caredata._link_bad(format('linkage model "%s" does not exist', p_model), 'Create it with caredata.link_create_model().', '42704');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM caredata.link_record) THEN
    PERFORM caredata.link_standardise();
  END IF;
  FOR r IN SELECT b.value, b.ordinality FROM jsonb_array_elements(spec->'blocking') WITH ORDINALITY b LOOP
    cols := (SELECT string_agg(quote_ident(c), ', ') FROM jsonb_array_elements_text(r.value) c);
    EXECUTE format($q$
      SELECT coalesce(sum(CASE %1$L WHEN 'link_only' THEN (nn * nn - sq) / 2
                                       WHEN 'dedupe_only' THEN (sq - nn) / 2
                                       ELSE nn * (nn - 1) / 2 END), 0)::bigint
        FROM (SELECT sum(ns) AS nn, sum(ns * ns) AS sq
                FROM (SELECT %2$s, source, count(*)::numeric AS ns FROM caredata.link_record
                       WHERE %3$s GROUP BY %2$s, source) s
               GROUP BY %2$s) b$q$,
      spec->>'link_type', cols,
      (SELECT string_agg(format('%I IS NOT NULL', c), ' AND ') FROM jsonb_array_elements_text(r.value) c))
      INTO n;
    rule := r.ordinality;
    columns := ARRAY(SELECT jsonb_array_elements_text(r.value));
    pairs := n;
    RETURN NEXT;
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata.link_blocking_counts(text, integer) IS
  'how many candidate pairs each blocking rule of a model generates over the standardised records, before de-duplication across rules (standardises the sources first if nothing is standardised)';

-- ---- src/linkage/run.sql ----
-- src/linkage/run.sql
-- link_run(): one linkage run, all or nothing (a failed run leaves the
-- person index as it was).  Phases, each reported by a NOTICE with counts
-- and seconds: standardise, sample u, block and compare, train (EM), score
-- and choose the threshold, write the links, cluster, write the person
-- index.

-- the SELECT that yields candidate pairs: one column per comparison level,
-- the packed pattern and the term-frequency adjustment (uses u, so it is
-- built after u is known)
CREATE FUNCTION caredata._link_pairs_sql(model text, version integer, u_top double precision[], only_new boolean)
  RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
  spec jsonb;
  cmp record;
  earlier text[] := '{}';
  rule jsonb;
  pair_cond text;
  body text := '';
BEGIN
  SELECT lm.spec INTO spec FROM caredata.link_model lm WHERE lm.model = _link_pairs_sql.model AND lm.version = _link_pairs_sql.version;
  SELECT * INTO cmp FROM caredata._link_compare_sql(model, version, u_top);
  pair_cond := caredata._link_pair_condition(spec->>'link_type');
  IF only_new THEN
    -- incremental: pairs with at least one record the person index lacks
    pair_cond := pair_cond || ' AND (l.rid IN (SELECT n.rid FROM pg_temp.link_new n) OR r.rid IN (SELECT n.rid FROM pg_temp.link_new n))';
  END IF;
  FOR rule IN SELECT * FROM jsonb_array_elements(spec->'blocking') LOOP
    body := body || CASE WHEN body = '' THEN '' ELSE ' UNION ALL ' END ||
      format('SELECT l.rid AS rid_l, r.rid AS rid_r%s FROM caredata.link_record l JOIN caredata.link_record r ON %s WHERE %s%s',
             cmp.levels, caredata._link_rule_condition(rule), pair_cond,
             (SELECT coalesce(string_agg(format(' AND NOT coalesce(%s, false)', e), ''), '') FROM unnest(earlier) e));
    earlier := earlier || caredata._link_rule_condition(rule);
  END LOOP;
  RETURN format('SELECT rid_l, rid_r%s, %s AS pattern, %s AS tf_adj FROM (%s) p',
                cmp.cols, cmp.pattern, cmp.tf, body);
END
$$;
COMMENT ON FUNCTION caredata._link_pairs_sql(text, integer, double precision[], boolean) IS
  'internal: the candidate-pair query of a model version (blocking rules unioned without duplicates, comparison levels, pattern, term-frequency adjustment)';

CREATE FUNCTION caredata.link_run(model text DEFAULT 'default', version integer DEFAULT NULL,
    method text DEFAULT 'probabilistic', threshold double precision DEFAULT NULL,
    train boolean DEFAULT NULL, incremental boolean DEFAULT false, one_to_one boolean DEFAULT false,
    sources text[] DEFAULT NULL)
  RETURNS TABLE (run_id bigint, model_version integer, records bigint, candidate_pairs bigint,
                 links bigint, persons bigint, match_threshold double precision, seconds numeric)
  LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  p_model text := model;
  p_version integer := version;
  p_method text := method;
  p_threshold double precision := threshold;
  p_train boolean := train;
  p_incremental boolean := incremental;
  p_one_to_one boolean := one_to_one;
  p_sources text[] := sources;
  t0 timestamptz := clock_timestamp();
  t timestamptz;
  lm record;
  spec jsonb;
  v_run bigint;
  v_prev_run bigint;
  v_records bigint;
  v_pairs bigint;
  v_links bigint;
  v_persons bigint;
  v_trained boolean;
  v_do_train boolean;
  nlevels integer[];
  v_u double precision[] := '{}';
  v_u_top double precision[] := '{}';
  v_m double precision[] := '{}';
  comps record;
  k integer;
  sample_n bigint;
  counts bigint[];
  total_pairs double precision;
  hist_p integer[];
  hist_n double precision[];
  em record;
  v_lambda double precision;
  w_threshold double precision;
  steps text := '';
  step text;
  work_table text;
  i integer;
  v_stats jsonb := '{}';
  max_person bigint;
  rule_pairs record;
  blocked numeric := 0;
  saved_mergejoin text;
  v_w double precision[];
  v_keep_apart boolean;
BEGIN
  IF p_method IS NULL OR p_method NOT IN ('probabilistic', 'deterministic') THEN
    PERFORM caredata._link_bad('method must be probabilistic or deterministic', 'Leave it out for probabilistic linkage.');
  END IF;
  IF p_threshold IS NOT NULL AND NOT (p_threshold > 0 AND p_threshold < 1) THEN
    PERFORM caredata._link_bad('threshold is a match probability strictly between 0 and 1', 'Leave it NULL to choose it from the model (label-free).');
  END IF;
  -- one run at a time; lookups wait for the run to finish
  LOCK TABLE caredata.link_record_key IN EXCLUSIVE MODE;

  SELECT * INTO lm FROM caredata.link_model x
   WHERE x.model = p_model AND (p_version IS NULL OR x.version = p_version)
   ORDER BY x.version DESC LIMIT 1;
  IF NOT FOUND THEN
    PERFORM caredata._link_bad(CASE WHEN p_version IS NULL THEN format('linkage model "%s" does not exist', p_model)
                                    ELSE format('linkage model "%s" version %s does not exist', p_model, p_version) END,
                               'See caredata.link_model, or create one with caredata.link_create_model().', '42704');
  END IF;
  spec := lm.spec;
  -- models made before the key existed keep NHS numbers apart too
  v_keep_apart := coalesce((spec->>'keep_nhs_apart')::boolean, true);
  v_trained := lm.lambda IS NOT NULL;
  v_do_train := p_method = 'probabilistic' AND coalesce(p_train, NOT v_trained);
  IF p_method = 'probabilistic' AND NOT v_do_train AND NOT v_trained THEN
    PERFORM caredata._link_bad(format('linkage model "%s" version %s is not trained', p_model, lm.version),
                               'Run with train => true, or name a trained version.', '55000');
  END IF;
  IF p_method = 'probabilistic' AND NOT v_do_train AND
     EXISTS (SELECT 1 FROM caredata.link_model_level x WHERE x.model = lm.model AND x.version = lm.version AND (x.m IS NULL OR x.u IS NULL)) THEN
    PERFORM caredata._link_bad(format('linkage model "%s" version %s has levels without m or u', p_model, lm.version),
                               'Set every level''s m and u in caredata.link_model_level, or train the model.', '55000');
  END IF;
  IF p_one_to_one AND spec->>'link_type' <> 'link_only' THEN
    PERFORM caredata._link_bad('one_to_one needs a model whose link_type is link_only', 'Create a model with {"link_type": "link_only"} to link two sources one to one.');
  END IF;

  SELECT coalesce(max(x.run_id), 0) + 1 INTO v_run FROM caredata.link_run x;
  SELECT max(x.run_id) INTO v_prev_run FROM caredata.person_index x;
  IF p_incremental AND v_prev_run IS NULL THEN
    RAISE NOTICE 'link: no person index yet, so this incremental run links everything';
    p_incremental := false;
  END IF;
  INSERT INTO caredata.link_run (run_id, model, version, method, incremental, one_to_one, started_at)
  VALUES (v_run, lm.model, lm.version, p_method, p_incremental, p_one_to_one, t0);

  -- 1. standardise
  t := clock_timestamp();
  v_records := caredata.link_standardise(p_sources, v_run);
  v_stats := v_stats || jsonb_build_object('records', v_records, 'standardise_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
  RAISE NOTICE 'link: standardised % records in % s', v_records, round(extract(epoch FROM clock_timestamp() - t)::numeric, 2);
  IF p_incremental THEN
    CREATE TEMP TABLE link_new ON COMMIT DROP AS
    SELECT r.rid FROM caredata.link_record r WHERE NOT EXISTS (SELECT 1 FROM caredata.person_index p WHERE p.rid = r.rid);
    ALTER TABLE pg_temp.link_new ADD PRIMARY KEY (rid);
    ANALYZE pg_temp.link_new;
    v_stats := v_stats || jsonb_build_object('new_records', (SELECT count(*) FROM pg_temp.link_new));
    RAISE NOTICE 'link: % records new since the last run', (SELECT count(*) FROM pg_temp.link_new);
  END IF;

  -- refuse a blocking rule (or all together) past max_pairs before
  -- comparing anything, by the planner's estimate (statistics are fresh)
  FOR rule_pairs IN SELECT b.ordinality AS rule, b.value AS columns,
                           caredata._link_estimate_pairs(b.value, spec->>'link_type') AS pairs
                      FROM jsonb_array_elements(spec->'blocking') WITH ORDINALITY b LOOP
    blocked := blocked + rule_pairs.pairs;
    IF rule_pairs.pairs > (spec->>'max_pairs')::numeric THEN
      PERFORM caredata._link_bad(format('blocking rule %s (%s) would generate about %s pairs, more than max_pairs (%s)',
                                        rule_pairs.rule, (SELECT string_agg(c, ', ') FROM jsonb_array_elements_text(rule_pairs.columns) c),
                                        round(rule_pairs.pairs), spec->>'max_pairs'),
                                 'Make the rule stricter (add a column), or raise "max_pairs" in a new model version; caredata.link_blocking_counts() gives exact counts.', '54000');
    END IF;
  END LOOP;
  IF blocked > (spec->>'max_pairs')::numeric * 2 THEN
    PERFORM caredata._link_bad(format('the blocking rules together would generate about %s pairs, more than twice max_pairs (%s)', round(blocked), spec->>'max_pairs'),
                               'Make the rules stricter, or raise "max_pairs" in a new model version.', '54000');
  END IF;

  SELECT array_agg(c.nlevels ORDER BY c.pos) INTO nlevels FROM caredata._link_comparisons(lm.model, lm.version) c;

  -- 2. u: level frequencies over a seeded random sample of pairs
  IF v_do_train THEN
    t := clock_timestamp();
    k := ceil(sqrt((spec->>'u_sample_pairs')::double precision))::integer;
    EXECUTE format($q$
      CREATE TEMP TABLE link_usample ON COMMIT DROP AS
      SELECT %s
        FROM (SELECT * FROM caredata.link_record ORDER BY hashint8extended(rid, %2$s), rid LIMIT %3$s) l
       CROSS JOIN (SELECT * FROM caredata.link_record ORDER BY hashint8extended(rid, %2$s + 1), rid LIMIT %3$s) r
       WHERE l.rid <> r.rid%4$s$q$,
      (SELECT string_agg(format('(%s)::smallint AS %I', c.expression, c.name), ', ' ORDER BY c.pos)
         FROM caredata._link_comparisons(lm.model, lm.version) c),
      (spec->>'seed')::bigint, k,
      CASE spec->>'link_type' WHEN 'link_only' THEN ' AND l.source <> r.source'
                              WHEN 'dedupe_only' THEN ' AND l.source = r.source' ELSE '' END);
    GET DIAGNOSTICS sample_n = ROW_COUNT;
    IF sample_n = 0 THEN
      PERFORM caredata._link_bad('no pairs to estimate u from', 'Link at least two records (two sources for link_only).', '22023');
    END IF;
    FOR comps IN SELECT * FROM caredata._link_comparisons(lm.model, lm.version) ORDER BY pos LOOP
      EXECUTE format('SELECT array_agg(coalesce(n, 0) ORDER BY lv) FROM generate_series(0, %s) lv
                        LEFT JOIN (SELECT %I AS lv, count(*) AS n FROM pg_temp.link_usample GROUP BY 1) c USING (lv)',
                     comps.nlevels - 1, comps.name) INTO counts;
      -- a level never seen in the sample gets 1/sample (not 0: weights stay finite)
      v_u := v_u || ARRAY(SELECT greatest(c, 1)::double precision / sample_n FROM unnest(counts) c);
      v_u_top := v_u_top || (greatest(counts[comps.nlevels], 1)::double precision / sample_n);
      v_m := v_m || coalesce(comps.m_start,
                         ARRAY(SELECT CASE WHEN lv = comps.nlevels - 1 THEN 0.85 WHEN lv = 0 THEN 0.05 ELSE 0.10 / (comps.nlevels - 2) END
                                 FROM generate_series(0, comps.nlevels - 1) lv));
    END LOOP;
    DROP TABLE pg_temp.link_usample;
    v_stats := v_stats || jsonb_build_object('u_sample_pairs', sample_n, 'u_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
    RAISE NOTICE 'link: estimated u from % random pairs in % s', sample_n, round(extract(epoch FROM clock_timestamp() - t)::numeric, 2);
  ELSIF p_method = 'probabilistic' THEN
    SELECT array_agg(x ORDER BY c.pos, o) INTO v_u
      FROM caredata._link_comparisons(lm.model, lm.version) c, unnest(c.u) WITH ORDINALITY AS z(x, o);
    SELECT array_agg(c.u[c.nlevels] ORDER BY c.pos) INTO v_u_top FROM caredata._link_comparisons(lm.model, lm.version) c;
  END IF;

  -- 3. block and compare.  Each rule is a self-join on equal keys: a hash
  -- join (bounded by work_mem x hash_mem_multiplier, in batches past it)
  -- builds one side once, where a merge join sorts both sides of the same
  -- table (measured at 1M people: 7.3 s against 11.3 s)
  t := clock_timestamp();
  saved_mergejoin := current_setting('enable_mergejoin');
  PERFORM set_config('enable_mergejoin', 'off', true);
  EXECUTE 'CREATE TEMP TABLE link_cand ON COMMIT DROP AS ' ||
          caredata._link_pairs_sql(lm.model, lm.version, CASE WHEN p_method = 'probabilistic' THEN v_u_top END, p_incremental);
  GET DIAGNOSTICS v_pairs = ROW_COUNT;
  PERFORM set_config('enable_mergejoin', saved_mergejoin, true);
  ANALYZE pg_temp.link_cand;
  v_stats := v_stats || jsonb_build_object('candidate_pairs', v_pairs, 'compare_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
  RAISE NOTICE 'link: compared % candidate pairs in % s', v_pairs, round(extract(epoch FROM clock_timestamp() - t)::numeric, 2);

  IF p_method = 'probabilistic' THEN
    SELECT array_agg(pattern ORDER BY pattern), array_agg(n::double precision ORDER BY pattern)
      INTO hist_p, hist_n
      FROM (SELECT pattern, count(*) AS n FROM pg_temp.link_cand GROUP BY pattern) h;
    hist_p := coalesce(hist_p, '{}'); hist_n := coalesce(hist_n, '{}');
    -- 4. train: EM on the pattern histogram, u fixed
    IF v_do_train THEN
      t := clock_timestamp();
      IF v_pairs = 0 THEN
        PERFORM caredata._link_bad('the blocking rules produced no candidate pairs to train on', 'Check the sources and the blocking rules (caredata.link_blocking_counts()).', '22023');
      END IF;
      SELECT CASE spec->>'link_type'
               WHEN 'link_only' THEN (sum(n)^2 - sum(n^2)) / 2
               WHEN 'dedupe_only' THEN (sum(n^2) - sum(n)) / 2
               ELSE sum(n) * (sum(n) - 1) / 2 END
        INTO total_pairs
        FROM (SELECT count(*)::double precision AS n FROM caredata.link_record GROUP BY source) s;
      SELECT * INTO em FROM caredata.link_em(hist_p, hist_n, nlevels, v_u, v_m, greatest(total_pairs, 1),
                                              (spec->>'em_max_iterations')::integer, (spec->>'em_tolerance')::double precision);
      v_m := em.m;
      v_lambda := em.lambda;
      -- the trained model is a new version
      INSERT INTO caredata.link_model (model, version, spec, lambda, trained_at, trained_by, training)
      SELECT lm.model, max(x.version) + 1, lm.spec, v_lambda, clock_timestamp(), current_user,
             jsonb_build_object('run_id', v_run, 'from_version', lm.version, 'iterations', em.iterations, 'converged', em.converged,
                                'candidate_pairs', v_pairs, 'patterns', cardinality(hist_p), 'u_sample_pairs', sample_n,
                                'total_pairs', total_pairs)
        FROM caredata.link_model x WHERE x.model = lm.model
      RETURNING * INTO lm;
      INSERT INTO caredata.link_model_level (model, version, comparison, position, level, label, m, u)
      SELECT lm.model, lm.version, c.name, c.pos, lv, c.labels[lv + 1], v_m[c.offs + lv + 1], v_u[c.offs + lv + 1]
        FROM (SELECT *, sum(nlevels) OVER (ORDER BY pos) - nlevels AS offs
                FROM caredata._link_comparisons(lm.model, lm.version)) c,
             generate_series(0, c.nlevels - 1) lv;
      UPDATE caredata.link_run x SET version = lm.version WHERE x.run_id = v_run;
      v_stats := v_stats || jsonb_build_object('em_iterations', em.iterations, 'em_converged', em.converged, 'lambda', v_lambda,
                                           'train_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
      RAISE NOTICE 'link: trained version % by EM over % patterns (% iterations%) in % s',
        lm.version, cardinality(hist_p), em.iterations, CASE WHEN em.converged THEN '' ELSE ', not converged' END,
        round(extract(epoch FROM clock_timestamp() - t)::numeric, 2);
    ELSE
      v_lambda := lm.lambda;
      SELECT array_agg(x ORDER BY c.pos, o) INTO v_m
        FROM caredata._link_comparisons(lm.model, lm.version) c, unnest(c.m) WITH ORDINALITY AS z(x, o);
    END IF;

    -- 5. score: each pair's weight is its pattern's weight (a dense array
    -- indexed by pattern, read by link_weight() in C) plus its
    -- term-frequency adjustment, computed where it is read, never stored.
    -- The threshold comes from the model's own expected precision and
    -- recall (link_threshold(), in C: the cut with the highest expected F1).
    t := clock_timestamp();
    k := 1;
    FOR i IN 1 .. cardinality(nlevels) LOOP
      k := k * nlevels[i];
    END LOOP;
    SELECT caredata.link_pattern_weights(array_agg(p ORDER BY p), nlevels, v_m, v_u, v_lambda) INTO v_w
      FROM generate_series(0, k - 1) p;
    IF p_threshold IS NULL THEN
      EXECUTE 'SELECT caredata.link_threshold(caredata.link_weight(pattern, tf_adj, $1)) FROM pg_temp.link_cand'
        INTO w_threshold USING v_w;
      w_threshold := coalesce(w_threshold, 0);
      p_threshold := caredata.link_probability(w_threshold);
    ELSE
      w_threshold := ln(p_threshold / (1 - p_threshold)) / ln(2);
    END IF;
    v_stats := v_stats || jsonb_build_object('threshold_weight', w_threshold, 'threshold_probability', p_threshold,
                                         'score_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
    RAISE NOTICE 'link: scored % pairs in % s: threshold match weight % (probability %)',
      v_pairs, round(extract(epoch FROM clock_timestamp() - t)::numeric, 2),
      round(w_threshold::numeric, 2), round(p_threshold::numeric, 4);
    -- 6. write the links
    t := clock_timestamp();
    EXECUTE $q$
      INSERT INTO caredata.link_pair (run_id, rid_l, rid_r, pattern, weight, probability)
      SELECT $1, s.rid_l, s.rid_r, s.pattern, s.weight, caredata.link_probability(s.weight)
        FROM (SELECT c.rid_l, c.rid_r, c.pattern, caredata.link_weight(c.pattern, c.tf_adj, $2) AS weight
                FROM pg_temp.link_cand c) s
       WHERE s.weight >= $3$q$
      USING v_run, v_w, w_threshold;
    GET DIAGNOSTICS v_links = ROW_COUNT;
    v_stats := v_stats || jsonb_build_object('write_links_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
    RAISE NOTICE 'link: wrote % links in % s', v_links, round(extract(epoch FROM clock_timestamp() - t)::numeric, 2);
  ELSE
    -- deterministic: the first step a pair meets makes the link
    t := clock_timestamp();
    i := 0;
    FOR step IN SELECT * FROM jsonb_array_elements_text(spec->'steps') LOOP
      i := i + 1;
      steps := steps || format(' WHEN %s THEN %s', step, i);
    END LOOP;
    IF i = 0 THEN
      PERFORM caredata._link_bad('the model has no deterministic steps', 'Set "steps" in the model spec.', '55000');
    END IF;
    EXECUTE format('INSERT INTO caredata.link_pair (run_id, rid_l, rid_r, pattern, step)
                    SELECT %s, rid_l, rid_r, pattern, step FROM (SELECT rid_l, rid_r, pattern, CASE%s END AS step FROM pg_temp.link_cand) c
                     WHERE step IS NOT NULL', v_run, steps);
    GET DIAGNOSTICS v_links = ROW_COUNT;
    p_threshold := NULL;
    v_stats := v_stats || jsonb_build_object('steps', (SELECT jsonb_object_agg(s, n) FROM (SELECT step AS s, count(*) AS n FROM caredata.link_pair x WHERE x.run_id = v_run GROUP BY step) z),
                                         'score_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
    RAISE NOTICE 'link: % links by % deterministic steps in % s', v_links, i, round(extract(epoch FROM clock_timestamp() - t)::numeric, 2);
  END IF;

  -- an incremental run keeps the previous run's links between records still present
  IF p_incremental THEN
    INSERT INTO caredata.link_pair (run_id, rid_l, rid_r, pattern, weight, probability, step)
    SELECT v_run, x.rid_l, x.rid_r, x.pattern, x.weight, x.probability, x.step
      FROM caredata.link_pair x
     WHERE x.run_id = v_prev_run
       AND EXISTS (SELECT 1 FROM caredata.link_record a WHERE a.rid = x.rid_l)
       AND EXISTS (SELECT 1 FROM caredata.link_record b WHERE b.rid = x.rid_r)
       AND NOT EXISTS (SELECT 1 FROM caredata.link_pair y WHERE y.run_id = v_run AND y.rid_l = x.rid_l AND y.rid_r = x.rid_r);
  END IF;

  -- 7. cluster
  t := clock_timestamp();
  -- each record with its cluster and its person id in the index so far
  CREATE TEMP TABLE link_cluster ON COMMIT DROP AS
  SELECT r.rid, r.source, r.record_id, coalesce(c.cluster, r.rid) AS cluster, coalesce(c.refused, false) AS refused,
         p.person_id AS old_person
    FROM caredata.link_record r
    LEFT JOIN caredata.person_index p ON p.rid = r.rid
    LEFT JOIN caredata.link_components(
           format('SELECT rid_l, rid_r FROM caredata.link_pair WHERE run_id = %s%s', v_run,
                  CASE WHEN p_one_to_one OR v_keep_apart THEN ' ORDER BY weight DESC NULLS LAST, step NULLS LAST, rid_l, rid_r' ELSE '' END),
           p_one_to_one,
           CASE WHEN v_keep_apart THEN 'SELECT rid, nhs_digits FROM caredata.link_record WHERE nhs_digits IS NOT NULL' END) c ON c.rid = r.rid;
  -- keep only the links clustering accepted (one to one; NHS numbers kept apart)
  IF EXISTS (SELECT 1 FROM pg_temp.link_cluster x WHERE x.refused) THEN
    DELETE FROM caredata.link_pair x USING pg_temp.link_cluster a, pg_temp.link_cluster b
     WHERE x.run_id = v_run AND a.refused AND a.rid = x.rid_l AND b.rid = x.rid_r AND a.cluster <> b.cluster;
    GET DIAGNOSTICS k = ROW_COUNT;
    v_links := v_links - k;
    v_stats := v_stats || jsonb_build_object('links_refused', k);
  END IF;
  SELECT count(DISTINCT cluster) INTO v_persons FROM pg_temp.link_cluster;
  v_stats := v_stats || jsonb_build_object('cluster_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
  RAISE NOTICE 'link: % records in % clusters in % s', v_records, v_persons, round(extract(epoch FROM clock_timestamp() - t)::numeric, 2);

  -- 8. person index with stable ids: an old person goes to the cluster with
  -- most of its records; a cluster keeps the smallest old id it won, the
  -- other ids it won merge into it; clusters with no id get new ones
  t := clock_timestamp();
  SELECT greatest(coalesce(max((x.stats->>'max_person_id')::bigint), 0),
                  coalesce((SELECT max(p.person_id) FROM caredata.person_index p), 0))
    INTO max_person FROM caredata.link_run x;
  CREATE TEMP TABLE link_overlap ON COMMIT DROP AS
  SELECT c.cluster, c.old_person AS person_id, count(*) AS n
    FROM pg_temp.link_cluster c WHERE c.old_person IS NOT NULL GROUP BY 1, 2;
  CREATE TEMP TABLE link_winner ON COMMIT DROP AS
  SELECT DISTINCT ON (person_id) person_id, cluster, n FROM pg_temp.link_overlap ORDER BY person_id, n DESC, cluster;
  CREATE TEMP TABLE link_assign ON COMMIT DROP AS
  SELECT DISTINCT ON (cluster) cluster, person_id FROM pg_temp.link_winner ORDER BY cluster, person_id;
  INSERT INTO pg_temp.link_assign
  SELECT cluster, max_person + row_number() OVER (ORDER BY cluster)
    FROM (SELECT DISTINCT cluster FROM pg_temp.link_cluster) c
   WHERE NOT EXISTS (SELECT 1 FROM pg_temp.link_assign a WHERE a.cluster = c.cluster);
  INSERT INTO caredata.person_event (run_id, kind, person_id, other_person_id, records)
  SELECT v_run, 'merge', a.person_id, w.person_id, w.n
    FROM pg_temp.link_winner w JOIN pg_temp.link_assign a USING (cluster)
   WHERE w.person_id <> a.person_id;
  INSERT INTO caredata.person_event (run_id, kind, person_id, other_person_id, records)
  SELECT v_run, 'split', o.person_id, a.person_id, o.n
    FROM pg_temp.link_overlap o
    JOIN pg_temp.link_winner w ON w.person_id = o.person_id AND w.cluster <> o.cluster
    JOIN pg_temp.link_assign a ON a.cluster = o.cluster
   WHERE a.person_id > max_person;
  -- rewritten whole, its indexes built after the rows (a third of the time
  -- of maintaining them row by row)
  TRUNCATE caredata.person_index;
  PERFORM caredata._link_maintain('drop_person_indexes');
  INSERT INTO caredata.person_index (source, record_id, rid, person_id, run_id)
  SELECT c.source, c.record_id, c.rid, a.person_id, v_run
    FROM pg_temp.link_cluster c JOIN pg_temp.link_assign a USING (cluster);
  PERFORM caredata._link_maintain('build_person_indexes');
  SELECT greatest(max_person, coalesce(max(a.person_id), 0)) INTO max_person FROM pg_temp.link_assign a;

  -- indexes for one-record lookups, one per blocking rule
  PERFORM caredata._link_maintain('index_rules', spec->'blocking');
  v_stats := v_stats || jsonb_build_object('index_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3),
                                       'links', v_links, 'persons', v_persons, 'max_person_id', max_person,
                                       'merges', (SELECT count(*) FROM caredata.person_event e WHERE e.run_id = v_run AND e.kind = 'merge'),
                                       'splits', (SELECT count(*) FROM caredata.person_event e WHERE e.run_id = v_run AND e.kind = 'split'));
  RAISE NOTICE 'link: wrote the person index in % s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 2);

  -- the working tables go now, so that a second run in the same transaction starts clean
  FOREACH work_table IN ARRAY ARRAY['link_new', 'link_cand', 'link_cluster', 'link_overlap', 'link_winner', 'link_assign'] LOOP
    IF to_regclass('pg_temp.' || work_table) IS NOT NULL THEN
      EXECUTE format('DROP TABLE pg_temp.%I', work_table);
    END IF;
  END LOOP;
  UPDATE caredata.link_run x SET finished_at = clock_timestamp(), threshold = p_threshold, stats = v_stats
   WHERE x.run_id = v_run;
  PERFORM caredata.audit_append('linkage.run', lm.model || ' version ' || lm.version,
    jsonb_build_object('run_id', v_run, 'method', p_method, 'incremental', p_incremental, 'records', v_records,
                       'links', v_links, 'persons', v_persons, 'threshold', p_threshold));
  run_id := v_run;
  model_version := lm.version;
  records := v_records;
  candidate_pairs := v_pairs;
  links := v_links;
  persons := v_persons;
  match_threshold := p_threshold;
  seconds := round(extract(epoch FROM clock_timestamp() - t0)::numeric, 2);
  RETURN NEXT;
END
$$;
COMMENT ON FUNCTION caredata.link_run(text, integer, text, double precision, boolean, boolean, boolean, text[]) IS
  'run linkage: standardise the sources, block, compare, train (EM) or apply a trained model version, choose the threshold without labels (or use the match probability given), cluster, and write the person index with stable person ids; all or nothing';

-- ---- src/linkage/inspect.sql ----
-- src/linkage/inspect.sql
-- Reading linkage results: quality against a truth table, the explanation
-- of one pair, and matching one new record against the person index.

-- pairwise precision and recall of the person index against a truth table
-- (source, record_id, <true id column>); scope 'all' (every pair of
-- records), 'cross' (pairs from different sources) or a source name
-- (pairs within that source: de-duplication)
CREATE FUNCTION caredata.link_quality(truth regclass, true_id name DEFAULT 'person_id', scope text DEFAULT 'all')
  RETURNS TABLE ("precision" double precision, recall double precision, f1 double precision,
                 true_pairs bigint, linked_pairs bigint, correct_pairs bigint,
                 persons_split bigint, persons_merged bigint)
  LANGUAGE plpgsql AS $$
DECLARE
  f text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = truth AND a.attname = true_id AND a.attnum > 0 AND NOT a.attisdropped)
     OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = truth AND a.attname = 'source' AND NOT a.attisdropped)
     OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = truth AND a.attname = 'record_id' AND NOT a.attisdropped) THEN
    PERFORM caredata._link_bad(format('the truth table needs columns source, record_id and %s', true_id),
                               'Pass the name of the true-id column as true_id.', '42703');
  END IF;
  -- pairs in a group from its per-source counts: n total, sq sum of squares, ns in the scope's source
  f := CASE scope WHEN 'all' THEN 'sum(n * (n - 1) / 2)'
                  WHEN 'cross' THEN 'sum((n * n - sq) / 2)'
                  ELSE 'sum(ns * (ns - 1) / 2)' END;
  RETURN QUERY EXECUTE format($q$
    WITH j AS (SELECT p.person_id AS c, t.%1$I AS t, p.source
                 FROM caredata.person_index p JOIN %2$s t ON t.source::text = p.source AND t.record_id = p.record_id),
         g AS (SELECT c, t, source, count(*)::numeric AS k FROM j GROUP BY 1, 2, 3),
         ct AS (SELECT sum(k) AS n, sum(k * k) AS sq, sum(k) FILTER (WHERE source = %3$L) AS ns FROM g GROUP BY c, t),
         cc AS (SELECT sum(k) AS n, sum(k * k) AS sq, sum(k) FILTER (WHERE source = %3$L) AS ns
                  FROM (SELECT c, source, sum(k) AS k FROM g GROUP BY 1, 2) x GROUP BY c),
         tt AS (SELECT sum(k) AS n, sum(k * k) AS sq, sum(k) FILTER (WHERE source = %3$L) AS ns
                  FROM (SELECT t, source, sum(k) AS k FROM g GROUP BY 1, 2) x GROUP BY t),
         s AS (SELECT (SELECT coalesce(%4$s, 0) FROM ct) AS tp,
                      (SELECT coalesce(%4$s, 0) FROM cc) AS lp,
                      (SELECT coalesce(%4$s, 0) FROM tt) AS ap)
    SELECT CASE WHEN lp > 0 THEN (tp / lp)::double precision END,
           CASE WHEN ap > 0 THEN (tp / ap)::double precision END,
           CASE WHEN lp + ap > 0 THEN (2 * tp / (lp + ap))::double precision END,
           ap::bigint, lp::bigint, tp::bigint,
           (SELECT count(*) FROM (SELECT t FROM j GROUP BY t HAVING count(DISTINCT c) > 1) x),
           (SELECT count(*) FROM (SELECT c FROM j GROUP BY c HAVING count(DISTINCT t) > 1) x)
      FROM s$q$, true_id, truth, scope, replace(f, 'ns', 'coalesce(ns, 0)'));
END
$$;
COMMENT ON FUNCTION caredata.link_quality(regclass, name, text) IS
  'pairwise precision, recall and F1 of the person index against a truth table (source, record_id, true id), over all pairs, cross-source pairs (scope cross) or pairs within one source (scope = its name); persons split (one true person in several clusters) and merged (several in one)';

-- the model version a read uses: the one named, else the latest trained
CREATE FUNCTION caredata._link_trained_version(model text, version integer) RETURNS integer
  LANGUAGE plpgsql STABLE AS $$
DECLARE
  v integer;
BEGIN
  SELECT lm.version INTO v FROM caredata.link_model lm
   WHERE lm.model = _link_trained_version.model AND lm.lambda IS NOT NULL
     AND (_link_trained_version.version IS NULL OR lm.version = _link_trained_version.version)
   ORDER BY lm.version DESC LIMIT 1;
  IF v IS NULL THEN
    PERFORM caredata._link_bad(format('linkage model "%s" has no trained version%s', model,
                                      CASE WHEN version IS NOT NULL THEN ' ' || version ELSE '' END),
                               'Train it with caredata.link_run(), or see caredata.link_model.', '42704');
  END IF;
  RETURN v;
END
$$;
COMMENT ON FUNCTION caredata._link_trained_version(text, integer) IS
  'internal: the trained model version a read uses (the one named, else the latest)';

-- each term of one pair's match weight; the terms sum to the weight
CREATE FUNCTION caredata.link_explain(source_a text, record_a bigint, source_b text, record_b bigint,
    model text DEFAULT 'default', version integer DEFAULT NULL)
  RETURNS TABLE (term text, level integer, label text, m double precision, u double precision, weight double precision)
  LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v integer := caredata._link_trained_version(model, version);
  p_model text := model;
  lam double precision;
  c record;
  lv integer;
  tf double precision;
  ra caredata.link_record;
  rb caredata.link_record;
  swap caredata.link_record;
BEGIN
  SELECT * INTO ra FROM caredata.link_record x WHERE x.source = source_a AND x.record_id = record_a;
  SELECT * INTO rb FROM caredata.link_record x WHERE x.source = source_b AND x.record_id = record_b;
  IF ra.rid IS NULL OR rb.rid IS NULL THEN
    PERFORM caredata._link_bad('a record to explain is not among the standardised records', 'Name records by source and record id as in caredata.person_index.', '42704');
  END IF;
  -- the pair in the order runs compare it
  IF ra.rid > rb.rid THEN
    swap := ra; ra := rb; rb := swap;
  END IF;
  SELECT x.lambda INTO lam FROM caredata.link_model x WHERE x.model = p_model AND x.version = v;
  term := 'prior'; level := NULL; label := 'lambda = ' || lam; m := NULL; u := NULL;
  weight := ln(lam / (1 - lam)) / ln(2);
  RETURN NEXT;
  FOR c IN SELECT * FROM caredata._link_comparisons(p_model, v) ORDER BY pos LOOP
    EXECUTE format('SELECT (%s)::integer FROM (SELECT ($1).*) l, (SELECT ($2).*) r', c.expression) INTO lv USING ra, rb;
    term := c.name; level := lv; label := c.labels[lv + 1]; m := c.m[lv + 1]; u := c.u[lv + 1];
    weight := CASE WHEN lv = 0 THEN 0 ELSE ln(m / u) / ln(2) END;
    RETURN NEXT;
    IF c.tf IS NOT NULL AND lv = c.nlevels - 1 THEN
      EXECUTE format('SELECT ($1).%I', 'tf_' || c.tf) INTO tf USING rb;
      IF tf > 0 THEN
        term := 'tf ' || c.name; label := 'value frequency ' || round(tf::numeric, 8); m := NULL; u := tf;
        weight := ln(c.u[lv + 1] / tf) * 1.4426950408889634;
        RETURN NEXT;
      END IF;
    END IF;
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata.link_explain(text, bigint, text, bigint, text, integer) IS
  'the match weight of one pair, term by term: the prior, each comparison''s level with m, u and log2(m/u), and term-frequency adjustments; the weights sum to the pair''s match weight';

-- match one new record against the person index
CREATE FUNCTION caredata.link_lookup(nhs_number text, dob date, sex text, postcode text,
    model text DEFAULT 'default', version integer DEFAULT NULL)
  RETURNS TABLE (person_id bigint, probability double precision, match_weight double precision)
  LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v integer := caredata._link_trained_version(model, version);
  p_model text := model;
  spec jsonb;
  lam double precision;
  nlevels integer[];
  mm double precision[];
  uu double precision[];
  cmp record;
  cand text := '';
  rule jsonb;
BEGIN
  SELECT x.spec, x.lambda INTO spec, lam FROM caredata.link_model x WHERE x.model = p_model AND x.version = v;
  SELECT array_agg(z.nlevels ORDER BY z.pos) INTO nlevels FROM caredata._link_comparisons(p_model, v) z;
  SELECT array_agg(x ORDER BY z.pos, o) INTO mm FROM caredata._link_comparisons(p_model, v) z, unnest(z.m) WITH ORDINALITY AS q(x, o);
  SELECT array_agg(x ORDER BY z.pos, o) INTO uu FROM caredata._link_comparisons(p_model, v) z, unnest(z.u) WITH ORDINALITY AS q(x, o);
  SELECT * INTO cmp FROM caredata._link_compare_sql(p_model, v,
    (SELECT array_agg(z.u[z.nlevels] ORDER BY z.pos) FROM caredata._link_comparisons(p_model, v) z));
  FOR rule IN SELECT * FROM jsonb_array_elements(spec->'blocking') LOOP
    cand := cand || CASE WHEN cand = '' THEN '' ELSE ' UNION ' END ||
            format('SELECT r.rid FROM caredata.link_record r, l WHERE %s', caredata._link_rule_condition(rule));
  END LOOP;
  RETURN QUERY EXECUTE format($q$
    WITH l AS MATERIALIZED (
           SELECT 0::bigint AS rid, ''::text AS source, 0::bigint AS record_id, d AS nhs_digits,
                  (d / 10000)::integer AS nhs_head, (d %% 10000)::integer AS nhs_tail, b AS dob, sx AS sex,
                  pc AS postcode, caredata.postcode_sector(pc) AS sector, caredata.postcode_district(pc) AS district,
                  caredata.postcode_area(pc) AS area, extract(year FROM b)::integer AS yob,
                  NULL::double precision AS tf_nhs_digits, NULL::double precision AS tf_dob, NULL::double precision AS tf_postcode
             FROM (SELECT caredata.nhs_number_digits($1) AS d, CASE WHEN caredata.dob_is_valid($2) THEN $2 END AS b,
                          caredata.try_standardise_sex($3) AS sx, caredata.try_normalise_postcode($4) AS pc) s),
         cand AS (%1$s),
         cmp AS (SELECT r.rid%2$s FROM cand JOIN caredata.link_record r USING (rid), l),
         scored AS (SELECT cmp.rid, (caredata.link_pattern_weights(ARRAY[%3$s], $5, $6, $7, $8))[1] + %4$s AS w FROM cmp)
    SELECT p.person_id, caredata.link_probability(max(s.w)), max(s.w)
      FROM scored s JOIN caredata.person_index p USING (rid)
     GROUP BY p.person_id
     ORDER BY max(s.w) DESC, p.person_id
     LIMIT 1$q$, cand, cmp.levels, cmp.pattern, cmp.tf)
  USING nhs_number, dob, sex, postcode, nlevels, mm, uu, lam;
END
$$;
COMMENT ON FUNCTION caredata.link_lookup(text, date, text, text, text, integer) IS
  'match one record (NHS number, date of birth, sex, postcode as they arrive) against the person index through the blocking rules'' indexes: the best person, its match probability and weight; no row when no candidate';

-- ---- src/linkage/grants.sql ----
-- src/linkage/grants.sql
-- Who may run linkage (DESIGN.md "Roles"): caredata_linker and
-- caredata_admin.  The driver functions read sources and write the person
-- index with the caller's rights; revoking EXECUTE from PUBLIC keeps
-- analysts, recipients and patients away from them as well as from the
-- tables (src/linkage/tables.sql).  The comparators hold no secret and stay
-- callable by everyone.
DO $grants$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = 'caredata'::regnamespace
       AND (p.proname LIKE 'link\_%' OR p.proname LIKE '\_link\_%')
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO caredata_linker, caredata_admin', f);
  END LOOP;
END
$grants$;

-- ---- src/sdc/policy.sql ----
-- src/sdc/policy.sql
-- Disclosure-control policies (docs/disclosure-control.md): a catalog of
-- named, versioned rule sets an admin can extend, the setting
-- caredata.sdc_policy (defined in src/sdc/policy.c) naming the one used when
-- a call names none, and the rule applied to one count.

CREATE TABLE caredata.sdc_policy (
  policy         text NOT NULL CHECK (policy ~ '^[a-z][a-z0-9_]{0,62}$'),
  version        integer NOT NULL DEFAULT 1 CHECK (version > 0),
  suppress_max   bigint NOT NULL CHECK (suppress_max >= 0),
  protect_zero   boolean NOT NULL DEFAULT false,
  rounding       text NOT NULL DEFAULT 'none' CHECK (rounding IN ('none', 'nearest', 'midpoint')),
  rounding_base  integer NOT NULL DEFAULT 1 CHECK (rounding_base BETWEEN 1 AND 1000000),
  redacted       text NOT NULL DEFAULT '*' CHECK (length(redacted) BETWEEN 1 AND 63),
  dominance_n    integer CHECK (dominance_n > 0),
  dominance_k    double precision CHECK (dominance_k > 0 AND dominance_k <= 100),
  p_percent      double precision CHECK (p_percent > 0 AND p_percent <= 100),
  source         text NOT NULL,
  builtin        boolean NOT NULL DEFAULT false,
  created_at     timestamptz NOT NULL DEFAULT now(),
  created_by     name NOT NULL DEFAULT current_user,
  PRIMARY KEY (policy, version),
  CHECK (rounding <> 'midpoint' OR rounding_base % 2 = 0),
  CHECK ((dominance_n IS NULL) = (dominance_k IS NULL))
);
COMMENT ON TABLE caredata.sdc_policy IS
  'disclosure-control policies: counts of 1..suppress_max people suppressed (and 0 when protect_zero), others rounded (nearest multiple of rounding_base, or midpoint: ceil(n/base)*base - base/2); the latest version of a name applies; redacted is how a suppressed value displays';
COMMENT ON COLUMN caredata.sdc_policy.source IS 'the published rule this policy implements';
COMMENT ON COLUMN caredata.sdc_policy.dominance_n IS '(n, k) dominance rule for sums and means: suppressed when the n largest contributors hold more than dominance_k percent of the total';
COMMENT ON COLUMN caredata.sdc_policy.p_percent IS 'p% rule for sums and means: suppressed when the total less the two largest contributions is under p percent of the largest';

INSERT INTO caredata.sdc_policy (policy, suppress_max, protect_zero, rounding, rounding_base, redacted, source, builtin) VALUES
  ('nhs_hes', 7, false, 'nearest', 5, '*',
   'NHS England, Hospital Episode Statistics (HES) and Emergency Care Data Set (ECDS) sub-national statistics: 0 stays 0, 1 to 7 suppressed, every other count rounded to the nearest 5 (HES Analysis Guide, "Suppression of small numbers"; NHS Digital disclosure control method for HES/ECDS)', true),
  ('opensafely', 7, true, 'nearest', 5, '[REDACTED]',
   'OpenSAFELY output checking: counts of 7 or fewer redacted, others rounded to the nearest 5 (docs.opensafely.org, "Statistical disclosure control" / output checking rules); zero is a count of 7 or fewer and is redacted', true),
  ('opensafely_midpoint6', 0, false, 'midpoint', 6, '[REDACTED]',
   'OpenSAFELY midpoint-6 rounding: ceil(x/6)*6 - 3 for x > 0, 0 stays 0 (docs.opensafely.org, "Rounding" in the disclosure control guidance)', true);

REVOKE ALL ON caredata.sdc_policy FROM PUBLIC;
GRANT SELECT ON caredata.sdc_policy TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON caredata.sdc_policy TO caredata_admin;
-- admins' own policies survive pg_dump; the built-in ones come with the extension
SELECT pg_catalog.pg_extension_config_dump('caredata.sdc_policy', 'WHERE NOT builtin');

CREATE FUNCTION caredata.sdc_apply(n bigint, policy text DEFAULT NULL) RETURNS bigint
  AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.sdc_apply(bigint, text) IS
  'a count of people as a disclosure-control policy publishes it (NULL policy: the caredata.sdc_policy setting): NULL when suppressed, else rounded';
CREATE FUNCTION caredata.sdc_display(n bigint, policy text DEFAULT NULL) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.sdc_display(bigint, text) IS
  'a count of people for display: the published number, or the policy''s mark (such as * or [REDACTED]) when suppressed or NULL';

-- ---- src/sdc/person_set.sql ----
-- src/sdc/person_set.sql
-- person_set, the distinct people behind an aggregate (src/sdc/person_set.c),
-- and the safe counting aggregates: count people, not rows, and publish the
-- count as the disclosure-control policy allows.  The state is a real type
-- with text input and output that round-trip, so partial aggregation can be
-- pushed to parallel workers and to the nodes of a distributed engine.

CREATE TYPE caredata.person_set;
CREATE FUNCTION caredata.person_set_in(cstring) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.person_set_out(caredata.person_set) RETURNS cstring
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.person_set_recv(internal) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.person_set_send(caredata.person_set) RETURNS bytea
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE caredata.person_set (
  INPUT = caredata.person_set_in, OUTPUT = caredata.person_set_out,
  RECEIVE = caredata.person_set_recv, SEND = caredata.person_set_send,
  INTERNALLENGTH = VARIABLE, ALIGNMENT = double, STORAGE = extended);
COMMENT ON TYPE caredata.person_set IS
  'the distinct people counted by a safe aggregate (64-bit keys; a pseudonym hashed) and the policy the call named; text form "<policy>:<hex key>,..."';
COMMENT ON FUNCTION caredata.person_set_in(cstring) IS 'person_set text input: "<policy>:<hex key>,<hex key>,..."';
COMMENT ON FUNCTION caredata.person_set_out(caredata.person_set) IS 'person_set text output (keys sorted)';
COMMENT ON FUNCTION caredata.person_set_recv(internal) IS 'person_set binary input (validates)';
COMMENT ON FUNCTION caredata.person_set_send(caredata.person_set) IS 'person_set binary output';

-- SSPACE: a group's state grows with the group's people, and PostgreSQL's
-- hash aggregation checks its memory only when it creates a group, never
-- when a state grows: every group's set stays in memory at once, past
-- work_mem (355 MB for 10,000 groups of 1,000 people, 1.5x slower than
-- sorting by group).  Declaring a large state steers the planner to sorted
-- aggregation, which holds one group's state at a time; at 16 kB it still
-- chose hashing there.  Measured in bench/safe_count.sql.

-- transition, combine and final functions (internal: call the aggregates)
CREATE FUNCTION caredata._person_set_add(caredata.person_set, bigint) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_set_add_int8' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_add(caredata.person_set, caredata.nhs_number) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_set_add_int8' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_add(caredata.person_set, caredata.pseudonym) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_set_add_bytes24' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_add(caredata.person_set, bigint, text) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_set_add_int8' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_add(caredata.person_set, caredata.nhs_number, text) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_set_add_int8' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_add(caredata.person_set, caredata.pseudonym, text) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_set_add_bytes24' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_union(caredata.person_set, caredata.person_set) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_table_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_safe_count(caredata.person_set) RETURNS bigint
  AS 'MODULE_PATHNAME', 'person_set_safe_count' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_safe_text(caredata.person_set) RETURNS text
  AS 'MODULE_PATHNAME', 'person_set_safe_text' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata._person_set_add(caredata.person_set, bigint) IS 'internal: transition function of the safe counting aggregates';
COMMENT ON FUNCTION caredata._person_set_add(caredata.person_set, caredata.nhs_number) IS 'internal: transition function of the safe counting aggregates';
COMMENT ON FUNCTION caredata._person_set_add(caredata.person_set, caredata.pseudonym) IS 'internal: transition function of the safe counting aggregates';
COMMENT ON FUNCTION caredata._person_set_add(caredata.person_set, bigint, text) IS 'internal: transition function of the safe counting aggregates (policy named)';
COMMENT ON FUNCTION caredata._person_set_add(caredata.person_set, caredata.nhs_number, text) IS 'internal: transition function of the safe counting aggregates (policy named)';
COMMENT ON FUNCTION caredata._person_set_add(caredata.person_set, caredata.pseudonym, text) IS 'internal: transition function of the safe counting aggregates (policy named)';
COMMENT ON FUNCTION caredata._person_set_union(caredata.person_set, caredata.person_set) IS 'internal: combine function of the safe counting aggregates, and the union of person sets';
COMMENT ON FUNCTION caredata._person_set_safe_count(caredata.person_set) IS 'internal: final function, the published count of distinct people (NULL when suppressed)';
COMMENT ON FUNCTION caredata._person_set_safe_text(caredata.person_set) IS 'internal: final function, the published count for display';

DO $aggs$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['bigint', 'caredata.nhs_number', 'caredata.pseudonym'] LOOP
    EXECUTE format($a$
      CREATE AGGREGATE caredata.safe_count(person %1$s) (
        SFUNC = caredata._person_set_add, STYPE = caredata.person_set, SSPACE = 1000000000,
        COMBINEFUNC = caredata._person_set_union, FINALFUNC = caredata._person_set_safe_count, PARALLEL = SAFE);
      CREATE AGGREGATE caredata.safe_count(person %1$s, policy text) (
        SFUNC = caredata._person_set_add, STYPE = caredata.person_set, SSPACE = 1000000000,
        COMBINEFUNC = caredata._person_set_union, FINALFUNC = caredata._person_set_safe_count, PARALLEL = SAFE);
      CREATE AGGREGATE caredata.safe_count_text(person %1$s) (
        SFUNC = caredata._person_set_add, STYPE = caredata.person_set, SSPACE = 1000000000,
        COMBINEFUNC = caredata._person_set_union, FINALFUNC = caredata._person_set_safe_text, PARALLEL = SAFE);
      CREATE AGGREGATE caredata.safe_count_text(person %1$s, policy text) (
        SFUNC = caredata._person_set_add, STYPE = caredata.person_set, SSPACE = 1000000000,
        COMBINEFUNC = caredata._person_set_union, FINALFUNC = caredata._person_set_safe_text, PARALLEL = SAFE);
      CREATE AGGREGATE caredata.person_set_agg(person %1$s) (
        SFUNC = caredata._person_set_add, STYPE = caredata.person_set, SSPACE = 1000000000,
        COMBINEFUNC = caredata._person_set_union, PARALLEL = SAFE);
      COMMENT ON AGGREGATE caredata.safe_count(%1$s) IS
        'distinct people, published as the caredata.sdc_policy setting allows: NULL when suppressed, else rounded';
      COMMENT ON AGGREGATE caredata.safe_count(%1$s, text) IS
        'distinct people, published as the named disclosure-control policy allows: NULL when suppressed, else rounded';
      COMMENT ON AGGREGATE caredata.safe_count_text(%1$s) IS
        'distinct people for display, as the caredata.sdc_policy setting allows: the number, or the policy''s mark (* or [REDACTED])';
      COMMENT ON AGGREGATE caredata.safe_count_text(%1$s, text) IS
        'distinct people for display, as the named policy allows: the number, or the policy''s mark (* or [REDACTED])';
      COMMENT ON AGGREGATE caredata.person_set_agg(%1$s) IS
        'the set of distinct people (a partial state of safe_count, to combine later with safe_count(person_set))';
      $a$, t);
  END LOOP;
END
$aggs$;

-- partial states combined later: the published count of their union
CREATE AGGREGATE caredata.safe_count(caredata.person_set) (
  SFUNC = caredata._person_set_union, STYPE = caredata.person_set, SSPACE = 1000000000,
  COMBINEFUNC = caredata._person_set_union, FINALFUNC = caredata._person_set_safe_count, PARALLEL = SAFE);
CREATE AGGREGATE caredata.safe_count_text(caredata.person_set) (
  SFUNC = caredata._person_set_union, STYPE = caredata.person_set, SSPACE = 1000000000,
  COMBINEFUNC = caredata._person_set_union, FINALFUNC = caredata._person_set_safe_text, PARALLEL = SAFE);
COMMENT ON AGGREGATE caredata.safe_count(caredata.person_set) IS
  'the published count of distinct people in the union of partial states (person_set_agg), under the policy they were counted with';
COMMENT ON AGGREGATE caredata.safe_count_text(caredata.person_set) IS
  'the union of partial states for display';

-- ---- src/sdc/person_values.sql ----
-- src/sdc/person_values.sql
-- person_values, each person's contribution behind an aggregate
-- (src/sdc/person_values.c), and the safe sums, means and rates: shown only
-- when more people than the policy's suppress_max contribute and no one
-- dominates (the policy's (n, k) and p% rules).  The state is a real type
-- with text input and output that round-trip; its SSPACE steers the planner
-- to sorted aggregation (see src/sdc/person_set.sql).

CREATE TYPE caredata.person_values;
CREATE FUNCTION caredata.person_values_in(cstring) RETURNS caredata.person_values
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.person_values_out(caredata.person_values) RETURNS cstring
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.person_values_recv(internal) RETURNS caredata.person_values
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.person_values_send(caredata.person_values) RETURNS bytea
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE caredata.person_values (
  INPUT = caredata.person_values_in, OUTPUT = caredata.person_values_out,
  RECEIVE = caredata.person_values_recv, SEND = caredata.person_values_send,
  INTERNALLENGTH = VARIABLE, ALIGNMENT = double, STORAGE = extended);
COMMENT ON TYPE caredata.person_values IS
  'each person''s contribution to a safe sum, mean or rate, with the rows and their sum; text form "<policy>|<rows>|<sum>|<hex key>=<value>,..."';
COMMENT ON FUNCTION caredata.person_values_in(cstring) IS 'person_values text input';
COMMENT ON FUNCTION caredata.person_values_out(caredata.person_values) IS 'person_values text output (keys sorted, values to 17 significant digits)';
COMMENT ON FUNCTION caredata.person_values_recv(internal) IS 'person_values binary input (validates)';
COMMENT ON FUNCTION caredata.person_values_send(caredata.person_values) IS 'person_values binary output';

CREATE FUNCTION caredata._person_values_combine(caredata.person_values, caredata.person_values) RETURNS caredata.person_values
  AS 'MODULE_PATHNAME', 'person_table_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_values_safe_sum(caredata.person_values) RETURNS double precision
  AS 'MODULE_PATHNAME', 'person_values_safe_sum' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_values_safe_avg(caredata.person_values) RETURNS double precision
  AS 'MODULE_PATHNAME', 'person_values_safe_avg' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_values_safe_rate(caredata.person_values) RETURNS double precision
  AS 'MODULE_PATHNAME', 'person_values_safe_rate' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata._person_values_combine(caredata.person_values, caredata.person_values) IS 'internal: combine function of safe_sum, safe_avg and safe_rate';
COMMENT ON FUNCTION caredata._person_values_safe_sum(caredata.person_values) IS 'internal: final function of safe_sum';
COMMENT ON FUNCTION caredata._person_values_safe_avg(caredata.person_values) IS 'internal: final function of safe_avg';
COMMENT ON FUNCTION caredata._person_values_safe_rate(caredata.person_values) IS 'internal: final function of safe_rate';

DO $aggs$
DECLARE
  t text;
  c text;
  kind text;
BEGIN
  FOREACH t IN ARRAY ARRAY['bigint', 'caredata.nhs_number', 'caredata.pseudonym'] LOOP
    c := CASE t WHEN 'caredata.pseudonym' THEN 'bytes24' ELSE 'int8' END;
    FOREACH kind IN ARRAY ARRAY['', ', text'] LOOP
      EXECUTE format($f$
        CREATE FUNCTION caredata._person_values_add(caredata.person_values, double precision, %1$s%2$s) RETURNS caredata.person_values
          AS 'MODULE_PATHNAME', 'person_values_add_%3$s' LANGUAGE C IMMUTABLE PARALLEL SAFE;
        CREATE FUNCTION caredata._person_values_any(caredata.person_values, boolean, %1$s%2$s) RETURNS caredata.person_values
          AS 'MODULE_PATHNAME', 'person_values_any_%3$s' LANGUAGE C IMMUTABLE PARALLEL SAFE;
        COMMENT ON FUNCTION caredata._person_values_add(caredata.person_values, double precision, %1$s%2$s) IS
          'internal: transition function of safe_sum and safe_avg';
        COMMENT ON FUNCTION caredata._person_values_any(caredata.person_values, boolean, %1$s%2$s) IS
          'internal: transition function of safe_rate';
        CREATE AGGREGATE caredata.safe_sum(value double precision, person %1$s%2$s) (
          SFUNC = caredata._person_values_add, STYPE = caredata.person_values, SSPACE = 1000000000,
          COMBINEFUNC = caredata._person_values_combine, FINALFUNC = caredata._person_values_safe_sum, PARALLEL = SAFE);
        CREATE AGGREGATE caredata.safe_avg(value double precision, person %1$s%2$s) (
          SFUNC = caredata._person_values_add, STYPE = caredata.person_values, SSPACE = 1000000000,
          COMBINEFUNC = caredata._person_values_combine, FINALFUNC = caredata._person_values_safe_avg, PARALLEL = SAFE);
        CREATE AGGREGATE caredata.safe_rate(condition boolean, person %1$s%2$s) (
          SFUNC = caredata._person_values_any, STYPE = caredata.person_values, SSPACE = 1000000000,
          COMBINEFUNC = caredata._person_values_combine, FINALFUNC = caredata._person_values_safe_rate, PARALLEL = SAFE);
        COMMENT ON AGGREGATE caredata.safe_sum(double precision, %1$s%2$s) IS
          'sum of value, NULL unless more people than the policy''s suppress_max contribute and no one dominates (its (n, k) and p%% rules)';
        COMMENT ON AGGREGATE caredata.safe_avg(double precision, %1$s%2$s) IS
          'mean of value over rows, NULL unless more people than the policy''s suppress_max contribute and no one dominates';
        COMMENT ON AGGREGATE caredata.safe_rate(boolean, %1$s%2$s) IS
          'share of distinct people with the condition on any of their rows, from the two counts as the policy publishes them (rounded); NULL when either would be suppressed';
        $f$, t, kind, c);
    END LOOP;
  END LOOP;
END
$aggs$;

-- ---- src/sdc/table.sql ----
-- src/sdc/table.sql
-- Tables with margins (src/sdc/table.c): the interval an attacker can derive
-- for each suppressed cell, and complementary (secondary) suppression so
-- that no suppressed cell can be derived by subtraction.

CREATE FUNCTION caredata.sdc_table_bounds(row_index integer[], col_index integer[], value bigint[], suppressed boolean[])
  RETURNS TABLE (cell integer, lower bigint, upper bigint)
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.sdc_table_bounds(integer[], integer[], bigint[], boolean[]) IS
  'for a whole table with margins (row 0 the column totals, column 0 the row totals), each cell''s interval derivable from the published cells: exact linear-programming bounds, computed as network flows; upper NULL when unbounded';

CREATE FUNCTION caredata.sdc_table_suppress(row_index integer[], col_index integer[], value bigint[], primary_suppressed boolean[],
                                            min_width bigint DEFAULT 1)
  RETURNS boolean[]
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.sdc_table_suppress(integer[], integer[], bigint[], boolean[], bigint) IS
  'the cells to suppress, primary and secondary, so that no suppressed cell''s derivable interval is narrower than min_width (1: none derived exactly)';

-- the cells of a query as a whole table with margins: keys sorted, row 0
-- and column 0 the totals (computed), a one-dimensional table one column
CREATE FUNCTION caredata._sdc_table(cells text)
  RETURNS TABLE (row_key text, col_key text, row_index integer, col_index integer, n bigint)
  LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN QUERY EXECUTE format($q$
    WITH c AS (SELECT x.row_key::text AS r, x.col_key::text AS k, x.n::bigint AS n FROM (%s) x(row_key, col_key, n)),
         rk AS (SELECT r, row_number() OVER (ORDER BY r)::integer AS i FROM (SELECT DISTINCT r FROM c) d),
         ck AS (SELECT k, row_number() OVER (ORDER BY k NULLS FIRST)::integer AS j FROM (SELECT DISTINCT k FROM c) d),
         grid AS (SELECT rk.r, ck.k, rk.i, ck.j, coalesce(c.n, 0) AS n
                    FROM rk CROSS JOIN ck LEFT JOIN c ON c.r = rk.r AND c.k IS NOT DISTINCT FROM ck.k)
    SELECT r, k, i, j, n FROM grid
    UNION ALL SELECT r, NULL, i, 0, sum(n)::bigint FROM grid GROUP BY r, i
    UNION ALL SELECT NULL, k, 0, j, sum(n)::bigint FROM grid GROUP BY k, j
    UNION ALL SELECT NULL, NULL, 0, 0, coalesce(sum(n), 0)::bigint FROM grid$q$, cells);
END
$$;
COMMENT ON FUNCTION caredata._sdc_table(text) IS
  'internal: the (row_key, col_key, n) cells of a query as a whole table with margins';

CREATE FUNCTION caredata.sdc_protect(cells text, policy text DEFAULT NULL, min_width bigint DEFAULT 1)
  RETURNS TABLE (row_key text, col_key text, n bigint, shown text, suppression text)
  LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  rkeys text[];
  ckeys text[];
  rows_ integer[];
  cols_ integer[];
  vals bigint[];
  prim boolean[];
  supp boolean[];
  one_dim boolean;
  mark text;
BEGIN
  SELECT array_agg(c.row_key ORDER BY c.row_index, c.col_index), array_agg(c.col_key ORDER BY c.row_index, c.col_index),
         array_agg(c.row_index ORDER BY c.row_index, c.col_index), array_agg(c.col_index ORDER BY c.row_index, c.col_index),
         array_agg(c.n ORDER BY c.row_index, c.col_index),
         array_agg(caredata.sdc_apply(c.n, policy) IS NULL ORDER BY c.row_index, c.col_index),
         max(c.col_index) = 1 AND bool_and(c.col_key IS NULL)
    INTO rkeys, ckeys, rows_, cols_, vals, prim, one_dim FROM caredata._sdc_table(cells) c;
  IF coalesce(array_length(rows_, 1), 0) <= 1 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'the table has no cells',
      HINT = 'The query returns (row_key, col_key, n) for each interior cell; col_key NULL for a one-dimensional table.';
  END IF;
  supp := caredata.sdc_table_suppress(rows_, cols_, vals, prim, min_width);
  mark := caredata.sdc_display(NULL, policy);
  RETURN QUERY
  SELECT u.rk, u.ck, u.v,
         CASE WHEN u.s THEN mark ELSE caredata.sdc_display(u.v, policy) END,
         CASE WHEN u.p THEN 'primary' WHEN u.s THEN 'secondary' ELSE 'published' END
    FROM unnest(rkeys, ckeys, rows_, cols_, vals, prim, supp) u(rk, ck, ri, ci, v, p, s)
   -- a one-dimensional table is one column: its row totals repeat its cells
   WHERE NOT (one_dim AND u.ci = 0 AND u.ri > 0) AND NOT (one_dim AND u.ri = 0 AND u.ci = 1)
   ORDER BY u.ri = 0, u.rk, u.ci = 0, u.ck;
END
$$;
COMMENT ON FUNCTION caredata.sdc_protect(text, text, bigint) IS
  'a table ready to publish: the (row_key, col_key, n) cells of a query with their margins (NULL keys), small counts suppressed by the policy (primary), and enough other cells (secondary) that no suppressed cell can be derived to within min_width; shown is what to print';

CREATE FUNCTION caredata.sdc_audit(cells text, min_width bigint DEFAULT 1)
  RETURNS TABLE (row_key text, col_key text, n bigint, lower bigint, upper bigint, disclosed boolean)
  LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  rkeys text[];
  ckeys text[];
  rows_ integer[];
  cols_ integer[];
  vals bigint[];
  supp boolean[];
  given boolean[];
BEGIN
  -- the table as published, made whole: a cell the query lacks is a
  -- published 0 (GROUP BY gives no row for an empty cell); a margin it
  -- lacks (ROLLUP gives no column totals) is the sum of its cells and
  -- unpublished; a one-dimensional table (no column keys) is one column
  -- whose row totals are its cells
  EXECUTE format($q$
    WITH c AS (SELECT x.row_key::text AS r, x.col_key::text AS k, x.n::bigint AS n, coalesce(x.suppressed::boolean, false) AS s
                 FROM (%s) x(row_key, col_key, n, suppressed)),
         d AS (SELECT NOT EXISTS (SELECT 1 FROM c WHERE k IS NOT NULL) AS one),
         cc AS (SELECT r, CASE WHEN d.one AND r IS NOT NULL THEN '' ELSE k END AS k, n, s FROM c, d),
         rk AS (SELECT r, row_number() OVER (ORDER BY r)::integer AS i FROM (SELECT DISTINCT r FROM cc WHERE r IS NOT NULL) x),
         ck AS (SELECT k, row_number() OVER (ORDER BY k)::integer AS j FROM (SELECT DISTINCT k FROM cc WHERE k IS NOT NULL) x),
         inner_ AS (SELECT rk.r, ck.k, rk.i, ck.j, coalesce(cc.n, 0) AS n, coalesce(cc.s, false) AS s, cc.n IS NOT NULL AS g
                      FROM rk CROSS JOIN ck
                      LEFT JOIN cc ON cc.r = rk.r AND cc.k = ck.k),
         rows_t AS (SELECT rk.r, NULL::text AS k, rk.i, 0 AS j,
                           coalesce(cc.n, (SELECT sum(x.n) FROM inner_ x WHERE x.i = rk.i))::bigint AS n,
                           CASE WHEN d.one THEN (SELECT bool_or(x.s) FROM inner_ x WHERE x.i = rk.i)
                                ELSE coalesce(cc.s, true) END AS s, cc.r IS NOT NULL AS g
                      FROM rk CROSS JOIN d LEFT JOIN cc ON cc.r = rk.r AND cc.k IS NULL),
         cols_t AS (SELECT NULL::text AS r, ck.k, 0 AS i, ck.j,
                           coalesce(cc.n, (SELECT sum(x.n) FROM inner_ x WHERE x.j = ck.j))::bigint AS n,
                           CASE WHEN d.one THEN (SELECT bool_or(g.s) FROM cc g WHERE g.r IS NULL AND g.k IS NULL)
                                ELSE coalesce(cc.s, true) END AS s, cc.k IS NOT NULL AS g
                      FROM ck CROSS JOIN d LEFT JOIN cc ON cc.r IS NULL AND cc.k = ck.k),
         grand AS (SELECT NULL::text AS r, NULL::text AS k, 0 AS i, 0 AS j,
                          coalesce((SELECT g.n FROM cc g WHERE g.r IS NULL AND g.k IS NULL), (SELECT sum(x.n) FROM inner_ x))::bigint AS n,
                          coalesce((SELECT g.s FROM cc g WHERE g.r IS NULL AND g.k IS NULL), true) AS s,
                          EXISTS (SELECT 1 FROM cc g WHERE g.r IS NULL AND g.k IS NULL) AS g),
         t AS (SELECT * FROM inner_ UNION ALL SELECT * FROM rows_t UNION ALL SELECT * FROM cols_t UNION ALL SELECT * FROM grand)
    SELECT array_agg(r ORDER BY i, j), array_agg(CASE WHEN k = '' THEN NULL ELSE k END ORDER BY i, j),
           array_agg(i ORDER BY i, j), array_agg(j ORDER BY i, j),
           array_agg(n ORDER BY i, j), array_agg(s ORDER BY i, j), array_agg(g ORDER BY i, j) FROM t$q$, cells)
    INTO rkeys, ckeys, rows_, cols_, vals, supp, given;
  IF rkeys IS NULL OR array_position(vals, NULL) IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'the published table has no cells',
      HINT = 'The query returns (row_key, col_key, n, suppressed) for each cell, NULL keys for the totals.';
  END IF;
  RETURN QUERY
  SELECT rkeys[b.cell], ckeys[b.cell], vals[b.cell], b.lower, b.upper, b.upper IS NOT NULL AND b.upper - b.lower < min_width
    FROM caredata.sdc_table_bounds(rows_, cols_, vals, supp) b
   -- the cells the query gave as suppressed (not the totals it left out)
   WHERE supp[b.cell] AND given[b.cell]
   ORDER BY rows_[b.cell] = 0, rkeys[b.cell], cols_[b.cell] = 0, ckeys[b.cell];
END
$$;
COMMENT ON FUNCTION caredata.sdc_audit(text, bigint) IS
  'audit a table as published: for each suppressed cell of the (row_key, col_key, n, suppressed) query (NULL keys the totals; totals left out, as ROLLUP leaves column totals out, count as unpublished; col_key NULL throughout for a one-dimensional table), the interval an attacker derives from the published cells (exact LP bounds) and whether it is narrower than min_width';

-- ---- src/variation/limits.sql ----
-- src/variation/limits.sql
-- Funnel plot control limits (src/variation/limits.c): where a unit of a
-- given size sits at a given probability if it performs as the target.

CREATE FUNCTION caredata.funnel_limit(data_type text, size double precision, target double precision,
                                      probability double precision, method text DEFAULT 'exact',
                                      phi double precision DEFAULT 1, tau2 double precision DEFAULT 0,
                                      sr_method text DEFAULT 'SHMI')
  RETURNS double precision AS 'MODULE_PATHNAME', 'funnel_limit' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.funnel_limit(text, double precision, double precision, double precision, text, double precision, double precision, text) IS
  'funnel plot limit at a unit''s size: data_type PR (proportion), SR (standardised ratio) or RC (ratio of counts); probability 0.001/0.025/0.975/0.999; method exact, normal, phi (multiplicative over-dispersion) or tau2 (additive random effects, sr_method SHMI or CQC)';

-- ---- src/variation/fit.sql ----
-- src/variation/fit.sql
-- Over-dispersion of a set of units, as FunnelPlotR and Spiegelhalter
-- (2005, 2012) estimate it: the aggregate caredata.funnel_fit() takes one
-- row per unit (numerator, denominator) and returns the target, the
-- multiplicative phi and the additive tau2.
--
-- Per unit, a z-score on a variance-stabilising scale: PR
-- (asin sqrt(y/n) - asin sqrt(target)) 2 sqrt(n); SR by the SHMI method
-- sqrt(E) log(O/E), by the CQC method (sqrt(O/E) - 1) 2 sqrt(E); RC
-- (log((y + 0.5)/(n + 0.5)) - log target) / sqrt(y/(y + 0.5)^2 + n/(n + 0.5)^2).
-- The z-scores are Winsorised at the trim_by and 1 - trim_by quantiles
-- (R's type 7, as percentile_cont), or, for SHMI, truncated (units ranked
-- into 1/trim_by groups, the first and last dropped); phi is the mean
-- squared z over the n units kept, and tau2 is DerSimonian and Laird's
-- (n phi - (n - 1)) / (sum w - sum w^2 / sum w), w = 1/s^2, or 0 when
-- n phi < n - 1.  SR's expected counts are rounded to 2 places for SHMI,
-- as FunnelPlotR does.

CREATE TYPE caredata.funnel_state AS (
  data_type     text,
  sr_method     text,
  trim_by       double precision,
  numerators    double precision[],
  denominators  double precision[]
);
COMMENT ON TYPE caredata.funnel_state IS
  'state of the caredata.funnel_fit aggregate: its settings and every unit''s numerator and denominator (text form round-trips, so partial states travel between parallel workers)';

CREATE TYPE caredata.funnel_fit AS (
  data_type   text,
  sr_method   text,
  trim_by     double precision,
  units       integer,
  units_used  integer,
  target      double precision,
  phi         double precision,
  tau2        double precision
);
COMMENT ON TYPE caredata.funnel_fit IS
  'a funnel plot''s fit: data type, method, trim, units (and units kept after truncation), target, multiplicative phi, additive tau2';

CREATE FUNCTION caredata._funnel_add(s caredata.funnel_state, numerator double precision, denominator double precision,
                                     data_type text, sr_method text, trim_by double precision)
  RETURNS caredata.funnel_state LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  dt text := upper(data_type);
  m text := CASE WHEN upper(data_type) = 'SR' THEN upper(sr_method) ELSE 'WINSORISE' END;
BEGIN
  IF numerator IS NULL OR denominator IS NULL THEN
    RETURN s;
  END IF;
  IF dt IS NULL OR dt NOT IN ('PR', 'SR', 'RC') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('unknown data type "%s"', data_type),
      HINT = 'Use PR (a proportion), SR (an indirectly standardised ratio) or RC (a ratio of counts).';
  END IF;
  IF m IS NULL OR m NOT IN ('SHMI', 'CQC', 'WINSORISE') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('unknown standardised-ratio method "%s"', sr_method),
      HINT = 'Use SHMI (log scale, truncation) or CQC (square-root scale, Winsorisation).';
  END IF;
  IF trim_by IS NULL OR NOT (trim_by >= 0 AND trim_by < 0.5) THEN
    RAISE EXCEPTION USING ERRCODE = '22003', MESSAGE = 'trim_by must lie in [0, 0.5)',
      HINT = '0.1 (10% at each end) is FunnelPlotR''s default.';
  END IF;
  IF NOT (numerator >= 0 AND numerator < 'Infinity') OR NOT (denominator > 0 AND denominator < 'Infinity') THEN
    RAISE EXCEPTION USING ERRCODE = '22003', MESSAGE = 'a unit needs a numerator of 0 or more and a positive denominator',
      HINT = 'Leave out units with no cases (or no expected events).';
  END IF;
  IF dt = 'PR' AND numerator > denominator THEN
    RAISE EXCEPTION USING ERRCODE = '22003', MESSAGE = 'a proportion''s numerator exceeds its denominator',
      HINT = 'For PR the numerator counts events among the denominator''s cases.';
  END IF;
  IF s IS NULL OR s.data_type IS NULL THEN
    RETURN ROW(dt, m, trim_by, ARRAY[numerator], ARRAY[denominator])::caredata.funnel_state;
  END IF;
  IF (s.data_type, s.sr_method, s.trim_by) IS DISTINCT FROM (dt, m, trim_by) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a funnel fit''s data type, method and trim are the same for every unit';
  END IF;
  s.numerators := s.numerators || numerator;
  s.denominators := s.denominators || denominator;
  RETURN s;
END
$$;
COMMENT ON FUNCTION caredata._funnel_add(caredata.funnel_state, double precision, double precision, text, text, double precision) IS
  'internal: transition function of caredata.funnel_fit';
CREATE FUNCTION caredata._funnel_add(s caredata.funnel_state, numerator double precision, denominator double precision, data_type text)
  RETURNS caredata.funnel_state LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT caredata._funnel_add(s, numerator, denominator, data_type, 'SHMI', 0.1) $$;
COMMENT ON FUNCTION caredata._funnel_add(caredata.funnel_state, double precision, double precision, text) IS
  'internal: transition function of caredata.funnel_fit (SHMI, trim 0.1)';
CREATE FUNCTION caredata._funnel_add(s caredata.funnel_state, numerator double precision, denominator double precision)
  RETURNS caredata.funnel_state LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT caredata._funnel_add(s, numerator, denominator, 'SR', 'SHMI', 0.1) $$;
COMMENT ON FUNCTION caredata._funnel_add(caredata.funnel_state, double precision, double precision) IS
  'internal: transition function of caredata.funnel_fit (SR, SHMI, trim 0.1)';

CREATE FUNCTION caredata._funnel_combine(a caredata.funnel_state, b caredata.funnel_state)
  RETURNS caredata.funnel_state LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  IF a IS NULL OR a.data_type IS NULL THEN RETURN b; END IF;
  IF b IS NULL OR b.data_type IS NULL THEN RETURN a; END IF;
  IF (a.data_type, a.sr_method, a.trim_by) IS DISTINCT FROM (b.data_type, b.sr_method, b.trim_by) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a funnel fit''s data type, method and trim are the same for every unit';
  END IF;
  a.numerators := a.numerators || b.numerators;
  a.denominators := a.denominators || b.denominators;
  RETURN a;
END
$$;
COMMENT ON FUNCTION caredata._funnel_combine(caredata.funnel_state, caredata.funnel_state) IS
  'internal: combine function of caredata.funnel_fit (parallel partial states)';

CREATE FUNCTION caredata._funnel_final(s caredata.funnel_state)
  RETURNS caredata.funnel_fit LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  f caredata.funnel_fit;
BEGIN
  IF s IS NULL OR s.data_type IS NULL THEN
    RETURN NULL;
  END IF;
  WITH u AS (
    SELECT o, CASE WHEN s.sr_method = 'SHMI' THEN round(e::numeric, 2)::float8 ELSE e END AS e
      FROM unnest(s.numerators, s.denominators) x(o, e)
  ), t AS (
    SELECT CASE WHEN s.data_type = 'SR' THEN 1.0::float8 ELSE sum(o ORDER BY o, e) / sum(e ORDER BY o, e) END AS target,
           count(*)::int AS units
      FROM u
  ), z AS (
    SELECT u.o, u.e, t.target,
           CASE WHEN s.data_type = 'PR' THEN 1 / (2 * sqrt(u.e))
                WHEN s.data_type = 'RC' THEN sqrt(u.o / ((u.o + 0.5) ^ 2) + u.e / ((u.e + 0.5) ^ 2))
                WHEN s.sr_method = 'SHMI' THEN 1 / sqrt(u.e)
                ELSE 1 / (2 * sqrt(u.e)) END AS sd,
           CASE WHEN s.data_type = 'PR' THEN (asin(sqrt(u.o / u.e)) - asin(sqrt(t.target))) * 2 * sqrt(u.e)
                WHEN s.data_type = 'RC' THEN (ln((u.o + 0.5) / (u.e + 0.5)) - ln(t.target))
                                             / sqrt(u.o / ((u.o + 0.5) ^ 2) + u.e / ((u.e + 0.5) ^ 2))
                WHEN s.sr_method = 'SHMI' THEN CASE WHEN u.o = 0 THEN '-Infinity'::float8 ELSE sqrt(u.e) * ln(u.o / u.e) END
                ELSE (sqrt(u.o / u.e) - 1) * 2 * sqrt(u.e) END AS z
      FROM u, t
  ), ranked AS (
    SELECT z.*, count(*) OVER () AS n_all,
           rank() OVER (ORDER BY z.z) + (count(*) OVER (PARTITION BY z.z) - 1) / 2.0 AS rk
      FROM z
  ), bounds AS (
    SELECT percentile_cont(s.trim_by) WITHIN GROUP (ORDER BY z) AS lz,
           percentile_cont(1 - s.trim_by) WITHIN GROUP (ORDER BY z) AS uz
      FROM z
  ), kept AS (
    -- SHMI truncates; the others Winsorise
    SELECT r.sd,
           CASE WHEN s.sr_method = 'SHMI' THEN r.z ELSE least(greatest(r.z, b.lz), b.uz) END AS wz
      FROM ranked r, bounds b
     WHERE s.sr_method <> 'SHMI' OR s.trim_by = 0
        OR (floor(r.rk * (1 / s.trim_by) / (r.n_all + 1)) > 0
            AND floor(r.rk * (1 / s.trim_by) / (r.n_all + 1)) < round(1 / s.trim_by) - 1)
  ), agg AS (
    SELECT count(*)::int AS n, avg(wz ^ 2 ORDER BY wz) AS phi,
           sum(1 / sd ^ 2 ORDER BY sd) AS sw, sum(1 / sd ^ 4 ORDER BY sd) AS sw2
      FROM kept
  )
  SELECT s.data_type, CASE WHEN s.data_type = 'SR' THEN s.sr_method END, s.trim_by, t.units, agg.n, t.target, agg.phi,
         CASE WHEN agg.n < 2 OR agg.n * agg.phi < agg.n - 1 THEN 0
              ELSE greatest(0, (agg.n * agg.phi - (agg.n - 1)) / (agg.sw - agg.sw2 / agg.sw)) END
    INTO f
    FROM t, agg;
  RETURN f;
END
$$;
COMMENT ON FUNCTION caredata._funnel_final(caredata.funnel_state) IS
  'internal: final function of caredata.funnel_fit: target, phi (Winsorised or truncated z-scores) and tau2 (DerSimonian-Laird)';

CREATE AGGREGATE caredata.funnel_fit(numerator double precision, denominator double precision,
                                     data_type text, sr_method text, trim_by double precision) (
  SFUNC = caredata._funnel_add, STYPE = caredata.funnel_state,
  COMBINEFUNC = caredata._funnel_combine, FINALFUNC = caredata._funnel_final,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE caredata.funnel_fit(double precision, double precision, text, text, double precision) IS
  'a funnel plot''s fit over one row per unit: target, phi and tau2 for data type PR, SR or RC, SR method SHMI or CQC, trimming trim_by at each end';
CREATE AGGREGATE caredata.funnel_fit(numerator double precision, denominator double precision, data_type text) (
  SFUNC = caredata._funnel_add, STYPE = caredata.funnel_state,
  COMBINEFUNC = caredata._funnel_combine, FINALFUNC = caredata._funnel_final,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE caredata.funnel_fit(double precision, double precision, text) IS
  'a funnel plot''s fit over one row per unit, for data type PR, SR or RC (SR by the SHMI method, trimming 10% at each end)';
CREATE AGGREGATE caredata.funnel_fit(numerator double precision, denominator double precision) (
  SFUNC = caredata._funnel_add, STYPE = caredata.funnel_state,
  COMBINEFUNC = caredata._funnel_combine, FINALFUNC = caredata._funnel_final,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE caredata.funnel_fit(double precision, double precision) IS
  'a funnel plot''s fit over one row per unit (observed, expected): a standardised ratio by the SHMI method, trimming 10% at each end';

-- a limit for a fitted funnel: its target and over-dispersion
CREATE FUNCTION caredata.funnel_limit(fit caredata.funnel_fit, size double precision, probability double precision,
                                      method text DEFAULT 'tau2')
  RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  -- unadjusted: FunnelPlotR's limits without over-dispersion (exact for SR,
  -- the transformed scale with tau2 = 0 for PR and RC)
  SELECT caredata.funnel_limit(fit.data_type, size, fit.target, probability,
                               CASE WHEN lower(method) <> 'unadjusted' THEN method WHEN fit.data_type = 'SR' THEN 'exact' ELSE 'tau2' END,
                               CASE WHEN fit.phi > 0 THEN fit.phi ELSE 1 END,
                               CASE WHEN lower(method) = 'unadjusted' THEN 0 ELSE fit.tau2 END, coalesce(fit.sr_method, 'SHMI'))
$$;
COMMENT ON FUNCTION caredata.funnel_limit(caredata.funnel_fit, double precision, double precision, text) IS
  'funnel plot limit at a unit''s size for a fit from caredata.funnel_fit(): its target, and its phi (method phi) or tau2 (method tau2); method unadjusted: exact for SR, tau2 = 0 for PR and RC';

-- ---- src/variation/standardise.sql ----
-- src/variation/standardise.sql
-- Expected counts by indirect standardisation: the reference population's
-- rate in each stratum (age band and sex, or any columns), applied to each
-- unit's case mix.  expected(unit) = sum over strata of cases(unit,
-- stratum) * events(reference, stratum) / cases(reference, stratum).
-- A NULL stratum value (an unknown age, say) is a stratum of its own; a
-- stratum the reference lacks contributes nothing expected.

CREATE FUNCTION caredata.indirect_standardise(source regclass, unit_column name, outcome_column name, strata name[],
                                              reference regclass DEFAULT NULL)
  RETURNS TABLE (unit text, cases bigint, observed bigint, expected double precision)
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s text;
  j text;
BEGIN
  IF coalesce(cardinality(strata), 0) = 0 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'name the strata columns',
      HINT = 'For example ARRAY[''age_band'', ''sex'']; the reference''s rate in each stratum gives each unit''s expected count.';
  END IF;
  SELECT string_agg(format('%I', c), ', '), string_agg(format('c.%1$I IS NOT DISTINCT FROM r.%1$I', c), ' AND ')
    INTO s, j FROM unnest(strata) c;
  RETURN QUERY EXECUTE format($q$
    WITH ref AS (
      SELECT %1$s, sum((%3$I)::int)::float8 / count(*) AS rate
        FROM %4$s GROUP BY %1$s
    ), cells AS (
      SELECT (%2$I)::text AS unit, %1$s, count(*) AS cases, sum((%3$I)::int) AS events
        FROM %5$s WHERE %2$I IS NOT NULL GROUP BY 1, %1$s
    )
    SELECT c.unit, sum(c.cases)::bigint, sum(c.events)::bigint, sum(c.cases * coalesce(r.rate, 0))
      FROM cells c LEFT JOIN ref r ON %6$s
     GROUP BY c.unit ORDER BY c.unit$q$,
    s, unit_column, outcome_column, coalesce(reference, source), source, j);
END
$$;
COMMENT ON FUNCTION caredata.indirect_standardise(regclass, name, name, name[], regclass) IS
  'observed and expected events per unit by indirect standardisation: the reference''s (default: the source''s) rate in each stratum applied to each unit''s cases; outcome is boolean or 0/1';

-- ---- src/variation/funnel.sql ----
-- src/variation/funnel.sql
-- Per unit, in one call: numerator, denominator, ratio, z-score, the 95%
-- and 99.8% limits at its size, where it sits and whether it is an
-- outlier; small units follow the disclosure-control policy.

CREATE TYPE caredata.funnel_row AS (
  unit         text,
  numerator    double precision,
  denominator  double precision,
  ratio        double precision,
  z            double precision,
  lower_998    double precision,
  lower_95     double precision,
  upper_95     double precision,
  upper_998    double precision,
  band         text,
  outlier      boolean,
  suppressed   boolean,
  limits       text,
  fit          caredata.funnel_fit
);
COMMENT ON TYPE caredata.funnel_row IS
  'a unit in a funnel plot (caredata.funnel()): numerator, denominator, ratio, z-score, limits at its size, band (above/below 95%/99.8% or within), outlier flag, suppressed, the limits'' method, and the fit';

CREATE FUNCTION caredata.funnel(units text, data_type text DEFAULT 'SR', method text DEFAULT 'tau2',
                                sr_method text DEFAULT 'SHMI', trim_by double precision DEFAULT 0.1,
                                flag_limit numeric DEFAULT 99.8, policy text DEFAULT NULL)
  RETURNS SETOF caredata.funnel_row
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE AS $$
DECLARE
  names text[];
  nums float8[];
  dens float8[];
  f caredata.funnel_fit;
  m text := lower(method);
  lm text;
BEGIN
  IF m IS NULL OR m NOT IN ('exact', 'normal', 'phi', 'tau2', 'unadjusted') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('unknown limit method "%s"', method),
      HINT = 'Use tau2 (additive random effects, the default), phi (multiplicative), exact, normal or unadjusted.';
  END IF;
  IF flag_limit IS NULL OR flag_limit NOT IN (95, 99.8) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'flag_limit is 95 or 99.8',
      HINT = 'A unit is an outlier beyond the limits of this level.';
  END IF;
  -- the units: the query's first three columns, one row per unit
  EXECUTE format('SELECT array_agg(x.u::text ORDER BY x.u::text), array_agg(x.n::float8 ORDER BY x.u::text), array_agg(x.d::float8 ORDER BY x.u::text) FROM (%s) AS x(u, n, d)', units)
    INTO names, nums, dens;
  IF names IS NULL THEN
    RETURN;
  END IF;
  f := (SELECT caredata.funnel_fit(n, d, data_type, sr_method, trim_by) FROM unnest(nums, dens) v(n, d));
  -- as FunnelPlotR: no over-dispersion (phi <= 1), unadjusted limits
  lm := CASE WHEN m = 'tau2' AND f.phi <= 1 THEN 'unadjusted' ELSE m END;
  -- What is shown of a unit is what the policy publishes of its counts:
  -- the numerator, and for PR and RC the denominator (for PR the cases
  -- without the event too).  The ratio, z and the limits are computed from
  -- the shown counts, so that none of them gives an exact count back (a
  -- limit at size n gives n back).  A unit the policy suppresses keeps its
  -- row and its band (from its exact counts), nothing else that counts.
  RETURN QUERY
  WITH u AS (
    SELECT v.u, v.n, v.d,
           caredata.sdc_apply(round(v.n)::bigint, policy)::float8 AS sn,
           CASE WHEN f.data_type = 'SR' THEN v.d ELSE caredata.sdc_apply(round(v.d)::bigint, policy)::float8 END AS sd,
           f.data_type = 'PR' AND caredata.sdc_apply(round(v.d - v.n)::bigint, policy) IS NULL AS rest_hidden
      FROM unnest(names, nums, dens) v(u, n, d)
  ), h AS (
    SELECT u.*, (sn IS NULL OR sd IS NULL OR sd <= 0 OR rest_hidden) AS hidden FROM u
  ), l AS (
    SELECT h.*,
           CASE WHEN hidden THEN d ELSE sd END AS size,
           CASE WHEN hidden THEN n / d ELSE sn / sd END AS y
      FROM h
  ), p AS (
    SELECT l.*,
           caredata.funnel_limit(f, l.size, 0.001, lm) AS l998, caredata.funnel_limit(f, l.size, 0.025, lm) AS l95,
           caredata.funnel_limit(f, l.size, 0.975, lm) AS u95, caredata.funnel_limit(f, l.size, 0.999, lm) AS u998
      FROM l
  ), q AS (
    SELECT p.*,
           CASE WHEN y > u998 THEN 'above 99.8%' WHEN y > u95 THEN 'above 95%'
                WHEN y < l998 THEN 'below 99.8%' WHEN y < l95 THEN 'below 95%'
                ELSE 'within' END AS pos,
           -- what may be shown when the unit is suppressed: SR's expected count and limits (not counts)
           NOT hidden OR f.data_type = 'SR' AS show_size
      FROM p
  )
  SELECT q.u,
         CASE WHEN q.hidden THEN NULL ELSE q.sn END,
         CASE WHEN q.show_size THEN q.size END,
         CASE WHEN q.hidden THEN NULL ELSE q.y END,
         CASE WHEN q.hidden THEN NULL ELSE caredata._funnel_z(f, q.sn, q.sd, lm) END,
         CASE WHEN q.show_size THEN q.l998 END, CASE WHEN q.show_size THEN q.l95 END,
         CASE WHEN q.show_size THEN q.u95 END, CASE WHEN q.show_size THEN q.u998 END,
         q.pos,
         CASE WHEN flag_limit = 95 THEN q.pos <> 'within' ELSE q.pos IN ('above 99.8%', 'below 99.8%') END,
         q.hidden, lm, f
    FROM q ORDER BY q.u;
END
$$;
COMMENT ON FUNCTION caredata.funnel(text, text, text, text, double precision, numeric, text) IS
  'per unit of a query (unit, numerator, denominator): ratio, z-score, 95% and 99.8% limits at its size, band, outlier flag (beyond flag_limit); counts a disclosure-control policy suppresses are not shown';

-- a unit's z-score on the scale its limits use
CREATE FUNCTION caredata._funnel_z(f caredata.funnel_fit, n double precision, d double precision, method text)
  RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN (method IN ('exact', 'normal', 'phi') AND f.data_type IN ('PR', 'SR')) OR (method = 'unadjusted' AND f.data_type = 'SR') THEN
      (n / d - f.target) / sqrt(CASE WHEN f.data_type = 'PR' THEN f.target * (1 - f.target) ELSE f.target END / d)
      / CASE WHEN method = 'phi' THEN sqrt(f.phi) ELSE 1 END
    WHEN f.data_type = 'PR' THEN (asin(sqrt(n / d)) - asin(sqrt(f.target))) / sqrt(1 / (4 * d) + t.tau2)
    WHEN f.data_type = 'RC' THEN (ln((n + 0.5) / (d + 0.5)) - ln(f.target)) / sqrt(1 / (4 * d) + t.tau2)
    WHEN f.sr_method = 'CQC' THEN (sqrt(n / d) - 1) / sqrt(1 / (4 * d) + t.tau2)
    WHEN n = 0 THEN '-Infinity'::float8
    ELSE ln(n / d) / sqrt(1 / d + t.tau2) END
    FROM (SELECT CASE WHEN method = 'unadjusted' THEN 0 ELSE f.tau2 END AS tau2) t
$$;
COMMENT ON FUNCTION caredata._funnel_z(caredata.funnel_fit, double precision, double precision, text) IS
  'internal: a unit''s z-score on the scale of its limits (method exact/normal/phi, and unadjusted SR: (y - target)/sqrt(V/size), over sqrt(phi) for phi; tau2, and unadjusted PR/RC: the transformed scale with tau2, or 0, added)';

-- ---- src/variation/svg.sql ----
-- src/variation/svg.sql
-- caredata.funnel_svg(): a funnel plot as SVG text, readable without a
-- key: the units as points (outliers labelled), the target line, the 95%
-- and 99.8% limit curves, axes with their labels, a title, a legend, and a
-- footnote naming the method and the units not shown for small numbers.
-- The plot area carries its data ranges (data-x-min ...), and each curve
-- its limit and probability, so that a reader (or a test) can map the
-- drawing back to the numbers.

CREATE FUNCTION caredata._svg_text(t text) RETURNS text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT replace(replace(replace(replace(replace(t, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;
COMMENT ON FUNCTION caredata._svg_text(text) IS 'internal: text escaped for SVG (XML)';

-- round ticks between lo and hi, about five of them
CREATE FUNCTION caredata._svg_ticks(lo double precision, hi double precision) RETURNS double precision[]
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  WITH s AS (
    SELECT CASE WHEN raw / mag < 1.5 THEN 1 WHEN raw / mag < 3.5 THEN 2 WHEN raw / mag < 7.5 THEN 5 ELSE 10 END * mag AS step
      FROM (SELECT raw, 10 ^ floor(log(raw)) AS mag
              FROM (SELECT greatest((hi - lo) / 5, 1e-12) AS raw) r) m
  )
  SELECT array_agg(round((k * step)::numeric, 10)::float8 ORDER BY k)
    FROM s, generate_series(ceil(lo / step)::bigint, floor(hi / step)::bigint) k
$$;
COMMENT ON FUNCTION caredata._svg_ticks(double precision, double precision) IS 'internal: about five round axis ticks between lo and hi';

CREATE FUNCTION caredata.funnel_svg(units text, title text DEFAULT 'Funnel plot', data_type text DEFAULT 'SR',
                                    method text DEFAULT 'tau2', sr_method text DEFAULT 'SHMI',
                                    trim_by double precision DEFAULT 0.1, flag_limit numeric DEFAULT 99.8,
                                    policy text DEFAULT NULL, x_label text DEFAULT NULL, y_label text DEFAULT NULL)
  RETURNS text LANGUAGE plpgsql STABLE PARALLEL UNSAFE AS $$
DECLARE
  -- the canvas and the plot area, in pixels
  w constant int := 900;
  h constant int := 620;
  x0 constant float8 := 80;
  x1 constant float8 := 640;
  y0 constant float8 := 70;
  y1 constant float8 := 520;
  f caredata.funnel_fit;
  rs caredata.funnel_row[];
  lm text;
  xmax float8;
  xmin float8 := 0;
  ymin float8;
  ymax float8;
  xlo float8;
  svg text;
  curves text := '';
  pts text := '';
  labels text := '';
  axes text := '';
  hidden text;
  t float8;
  c record;
  line_pts text;
  colour text;
  style text;
BEGIN
  rs := ARRAY(SELECT r FROM caredata.funnel(units, data_type, method, sr_method, trim_by, flag_limit, policy) r);
  SELECT (r.fit).* INTO f FROM unnest(rs) r LIMIT 1;
  IF f.data_type IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'no units to plot',
      HINT = 'The query gives one row per unit: unit, numerator, denominator.';
  END IF;
  SELECT r.limits INTO lm FROM unnest(rs) r LIMIT 1;

  -- ranges: x from 0 to past the largest unit, y around the target and the points (FunnelPlotR's)
  SELECT max(denominator) * 1.05, least(0.7 * f.target, 0.9 * min(ratio)), greatest(1.3 * f.target, 1.1 * max(ratio))
    INTO xmax, ymin, ymax FROM unnest(rs);
  IF ymin IS NULL THEN ymin := 0.7 * f.target; ymax := 1.3 * f.target; END IF;
  IF f.data_type = 'PR' THEN ymin := greatest(0, ymin); ymax := least(1, ymax); END IF;
  IF f.data_type = 'PR' AND ymax <= ymin THEN ymax := ymin + 0.1; END IF;
  xlo := greatest(xmax / 2000, CASE WHEN f.data_type = 'PR' THEN 1 ELSE 0.1 END);

  -- the limit curves, on 240 sizes spaced evenly in sqrt(size) (the funnel narrows as 1/sqrt)
  FOR c IN SELECT * FROM (VALUES ('lower_998', 0.001, 'solid'), ('lower_95', 0.025, 'dashed'),
                                 ('upper_95', 0.975, 'dashed'), ('upper_998', 0.999, 'solid')) v(name, p, kind) LOOP
    SELECT string_agg(format('%s,%s', round((x0 + (sz - xmin) / (xmax - xmin) * (x1 - x0))::numeric, 2),
                                      round((y1 - (caredata.funnel_limit(f, sz, c.p, lm) - ymin) / (ymax - ymin) * (y1 - y0))::numeric, 2)),
                      ' ' ORDER BY sz)
      INTO line_pts
      FROM (SELECT DISTINCT CASE WHEN f.data_type = 'PR' THEN round(s)::float8 ELSE s END AS sz
              FROM (SELECT (sqrt(xlo) + k / 239.0 * (sqrt(xmax) - sqrt(xlo))) ^ 2 AS s FROM generate_series(0, 239) k) g) q;
    colour := CASE WHEN c.kind = 'solid' THEN '#5B3A8E' ELSE '#1F77B4' END;
    style := CASE WHEN c.kind = 'dashed' THEN ' stroke-dasharray="6 4"' ELSE '' END;
    curves := curves || format('<polyline class="limit" data-limit="%s" data-probability="%s" fill="none" stroke="%s" stroke-width="1.6"%s points="%s"/>',
                               c.name, c.p, colour, style, line_pts) || E'\n';
  END LOOP;

  -- axes: ticks, grid, labels
  FOREACH t IN ARRAY caredata._svg_ticks(xmin, xmax) LOOP
    axes := axes || format('<line x1="%1$s" y1="%2$s" x2="%1$s" y2="%3$s" stroke="#E5E5E5"/><text x="%1$s" y="%4$s" text-anchor="middle">%5$s</text>',
                           round((x0 + (t - xmin) / (xmax - xmin) * (x1 - x0))::numeric, 2), y0, y1, y1 + 18, t) || E'\n';
  END LOOP;
  FOREACH t IN ARRAY caredata._svg_ticks(ymin, ymax) LOOP
    axes := axes || format('<line x1="%2$s" y1="%1$s" x2="%3$s" y2="%1$s" stroke="#E5E5E5"/><text x="%4$s" y="%5$s" text-anchor="end">%6$s</text>',
                           round((y1 - (t - ymin) / (ymax - ymin) * (y1 - y0))::numeric, 2), x0, x1, x0 - 8,
                           round((y1 - (t - ymin) / (ymax - ymin) * (y1 - y0))::numeric + 4, 2), t) || E'\n';
  END LOOP;

  -- the units: points, outliers labelled
  FOR c IN SELECT * FROM unnest(rs) r WHERE NOT r.suppressed ORDER BY r.outlier, r.unit LOOP
    pts := pts || format('<circle class="unit%s" data-unit="%s" cx="%s" cy="%s" r="4.5" fill="%s" stroke="#333" stroke-width="0.6"><title>%s: %s %s (%s / %s), %s</title></circle>',
                         CASE WHEN c.outlier THEN ' outlier' ELSE '' END, caredata._svg_text(c.unit),
                         round((x0 + (c.denominator - xmin) / (xmax - xmin) * (x1 - x0))::numeric, 2),
                         round((y1 - (least(greatest(c.ratio, ymin), ymax) - ymin) / (ymax - ymin) * (y1 - y0))::numeric, 2),
                         CASE WHEN c.outlier THEN '#FF7F0E' ELSE '#9A9A9A' END,
                         caredata._svg_text(c.unit), CASE WHEN f.data_type = 'PR' THEN 'proportion' ELSE 'ratio' END,
                         round(c.ratio::numeric, 3), c.numerator, round(c.denominator::numeric, 1), c.band) || E'\n';
    IF c.outlier THEN
      labels := labels || format('<text class="label" x="%s" y="%s" font-weight="bold">%s</text>',
                                 round((x0 + (c.denominator - xmin) / (xmax - xmin) * (x1 - x0))::numeric + 7, 2),
                                 round((y1 - (least(greatest(c.ratio, ymin), ymax) - ymin) / (ymax - ymin) * (y1 - y0))::numeric - 7, 2),
                                 caredata._svg_text(c.unit)) || E'\n';
    END IF;
  END LOOP;
  SELECT string_agg(caredata._svg_text(r.unit), ', ' ORDER BY r.unit) INTO hidden FROM unnest(rs) r WHERE r.suppressed;

  svg := format('<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %1$s %2$s" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">', w, h) || E'\n'
    || format('<title>%s</title>', caredata._svg_text(title)) || E'\n'
    || format('<rect width="%s" height="%s" fill="#FFFFFF"/>', w, h) || E'\n'
    || format('<text x="%s" y="36" font-size="18" font-weight="bold">%s</text>', x0, caredata._svg_text(title)) || E'\n'
    || format('<defs><clipPath id="plot-area"><rect x="%s" y="%s" width="%s" height="%s"/></clipPath></defs>', x0, y0, x1 - x0, y1 - y0) || E'\n'
    || format('<g id="plot" data-x-min="%s" data-x-max="%s" data-y-min="%s" data-y-max="%s" data-px-left="%s" data-px-right="%s" data-px-top="%s" data-px-bottom="%s" data-method="%s" data-target="%s" data-phi="%s" data-tau2="%s">',
              xmin, xmax, ymin, ymax, x0, x1, y0, y1, lm, f.target, f.phi, f.tau2) || E'\n'
    || axes
    || format('<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#333"/>', x0, y0, x1 - x0, y1 - y0) || E'\n'
    || '<g clip-path="url(#plot-area)">' || E'\n'
    || format('<line class="target" x1="%s" y1="%s" x2="%s" y2="%2$s" stroke="#333" stroke-width="1.2"/>', x0,
              round((y1 - (f.target - ymin) / (ymax - ymin) * (y1 - y0))::numeric, 2), x1) || E'\n'
    || curves || '</g>' || E'\n' || pts || labels || '</g>' || E'\n'
    || format('<text x="%s" y="%s" text-anchor="middle" font-size="13">%s</text>', (x0 + x1) / 2, y1 + 42,
              caredata._svg_text(coalesce(x_label, CASE WHEN f.data_type = 'SR' THEN 'Expected events' ELSE 'Cases (denominator)' END))) || E'\n'
    || format('<text x="22" y="%s" text-anchor="middle" font-size="13" transform="rotate(-90 22 %1$s)">%s</text>', (y0 + y1) / 2,
              caredata._svg_text(coalesce(y_label, CASE f.data_type WHEN 'SR' THEN 'Standardised ratio (observed / expected)'
                                                                 WHEN 'PR' THEN 'Proportion' ELSE 'Ratio' END))) || E'\n'
    -- the legend
    || format('<g id="legend" transform="translate(%s %s)">', x1 + 24, y0 + 10) || E'\n'
    || '<line x1="0" y1="0" x2="28" y2="0" stroke="#333" stroke-width="1.2"/><text x="36" y="4">target</text>' || E'\n'
    || '<line x1="0" y1="22" x2="28" y2="22" stroke="#1F77B4" stroke-width="1.6" stroke-dasharray="6 4"/><text x="36" y="26">95% limits</text>' || E'\n'
    || '<line x1="0" y1="44" x2="28" y2="44" stroke="#5B3A8E" stroke-width="1.6"/><text x="36" y="48">99.8% limits</text>' || E'\n'
    || '<circle cx="14" cy="66" r="4.5" fill="#9A9A9A" stroke="#333" stroke-width="0.6"/><text x="36" y="70">unit</text>' || E'\n'
    || format('<circle cx="14" cy="88" r="4.5" fill="#FF7F0E" stroke="#333" stroke-width="0.6"/><text x="36" y="92">outlier (beyond %s%%)</text>', flag_limit) || E'\n'
    || format('<text x="0" y="122">%s units; target %s</text>', (SELECT count(*) FROM unnest(rs)), round(f.target::numeric, 4)) || E'\n'
    || format('<text x="0" y="140">%s</text>', CASE lm WHEN 'tau2' THEN format('over-dispersed: tau2 = %s', round(f.tau2::numeric, 5))
                                                    WHEN 'phi' THEN format('over-dispersed: phi = %s', round(f.phi::numeric, 3))
                                                    WHEN 'exact' THEN 'exact limits'
                                                    WHEN 'unadjusted' THEN format('unadjusted limits (phi = %s: no over-dispersion)', round(f.phi::numeric, 3))
                                                    ELSE 'normal approximation' END) || E'\n'
    || '</g>' || E'\n'
    || format('<text x="%s" y="%s" font-size="11" fill="#444">%s</text>', x0, y1 + 70,
              caredata._svg_text(CASE WHEN hidden IS NULL THEN 'Every unit is shown.'
                                      ELSE 'Not shown (small numbers, disclosure control): ' || hidden END)) || E'\n'
    || '</svg>' || E'\n';
  RETURN svg;
END
$$;
COMMENT ON FUNCTION caredata.funnel_svg(text, text, text, text, text, double precision, numeric, text, text, text) IS
  'a funnel plot of a query''s units (unit, numerator, denominator) as SVG text: points, outliers labelled, target, 95% and 99.8% limits, axes, title, legend; units suppressed for small numbers are named, not drawn';

-- ---- src/publication.sql ----
-- src/publication.sql
-- Publication: a de-identified view of a source for one recipient.
--
-- The pseudonyms a view shows are stored values (caredata.pseudonym_map),
-- computed by the linker or an admin with caredata.refresh_pseudonyms();
-- a recipient never drives a keyed function.  publish() creates
-- published.<name>: the NHS number replaced by the recipient's pseudonym,
-- the columns the spec names kept or generalised, every other column
-- dropped, the objection filter for the declared purpose built in, as a
-- security_barrier view that only the recipient may read.  Every
-- publication is recorded (caredata.publication) and audited.

CREATE SCHEMA published;
COMMENT ON SCHEMA published IS 'caredata: de-identified views, one per publication (caredata.publish())';
REVOKE ALL ON SCHEMA published FROM PUBLIC;
-- admins see the views' names (they read none: each is granted to its recipient)
GRANT USAGE ON SCHEMA published TO caredata_admin;

CREATE TABLE caredata.pseudonym_map (
  domain       text NOT NULL,
  nhs_number   caredata.nhs_number NOT NULL,
  version      integer NOT NULL,
  pseudonym    caredata.pseudonym NOT NULL,
  PRIMARY KEY (domain, nhs_number)
);
COMMENT ON TABLE caredata.pseudonym_map IS
  'stored pseudonyms per recipient domain, computed by caredata.refresh_pseudonyms(); published views read them, recipients never compute them';
REVOKE ALL ON caredata.pseudonym_map FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON caredata.pseudonym_map TO caredata_admin, caredata_linker;
SELECT pg_catalog.pg_extension_config_dump('caredata.pseudonym_map', '');

CREATE TABLE caredata.publication (
  name            text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  recipient       name NOT NULL,
  source          regclass NOT NULL,
  spec            jsonb NOT NULL,
  published_at    timestamptz NOT NULL DEFAULT now(),
  published_by    name NOT NULL DEFAULT session_user,
  republished_at  timestamptz
);
COMMENT ON TABLE caredata.publication IS
  'what each recipient can see and since when: one row per published view (published.<name>), with its source and spec';
REVOKE ALL ON caredata.publication FROM PUBLIC;
GRANT SELECT ON caredata.publication TO caredata_admin;
SELECT pg_catalog.pg_extension_config_dump('caredata.publication', '');

-- stored pseudonyms for every valid NHS number of a source column, at the
-- domain's current key version (a rotation recomputes them all)
CREATE FUNCTION caredata.refresh_pseudonyms(domain text, source regclass, nhs_column name DEFAULT 'nhs_number')
  RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v integer;
  n bigint;
BEGIN
  SELECT d.current_version INTO v FROM caredata.domain d WHERE d.name = refresh_pseudonyms.domain AND d.retired_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('pseudonym domain "%s" does not exist or is retired', domain),
      HINT = 'Create it with caredata.create_domain(name, purpose).';
  END IF;
  DELETE FROM caredata.pseudonym_map m WHERE m.domain = refresh_pseudonyms.domain AND m.version <> v;
  EXECUTE format($q$
    INSERT INTO caredata.pseudonym_map (domain, nhs_number, version, pseudonym)
    SELECT $1, x.n, $2, caredata.pseudonymise(x.n, $1)
      FROM (SELECT DISTINCT caredata.try_nhs_number(s.%I::text) AS n FROM %s s) x
     WHERE x.n IS NOT NULL
    ON CONFLICT (domain, nhs_number) DO NOTHING$q$, nhs_column, source)
    USING domain, v;
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM caredata.audit_append('pseudonyms.refresh', domain, jsonb_build_object('source', source::text, 'version', v, 'added', n));
  RETURN n;
END
$$;
COMMENT ON FUNCTION caredata.refresh_pseudonyms(text, regclass, name) IS
  'store the domain''s pseudonym of every valid NHS number in a source column (current key version; older versions'' are replaced); returns how many were added';

-- the expression publishing one column as the spec says
CREATE FUNCTION caredata._publish_column(col name, how text) RETURNS text
  LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN CASE how
    WHEN 'keep' THEN format('s.%1$I AS %1$I', col)
    WHEN 'month' THEN format('date_trunc(''month'', s.%1$I::timestamp)::date AS %2$I', col, col || '_month')
    WHEN 'year' THEN format('extract(year FROM s.%1$I::timestamp)::integer AS %2$I', col, col || '_year')
    WHEN 'year_of_birth' THEN format('extract(year FROM caredata.try_standardise_dob(s.%1$I::text))::integer AS %2$I', col, col || '_year')
    WHEN 'age_band' THEN format('caredata.age_band(caredata.try_standardise_dob(s.%1$I::text), current_date) AS %2$I', col, col || '_age_band')
    WHEN 'district' THEN format('caredata.try_postcode_district(s.%1$I::text) AS %2$I', col, col || '_district')
    WHEN 'sector' THEN format('caredata.try_postcode_sector(s.%1$I::text) AS %2$I', col, col || '_sector')
    ELSE NULL END;
END
$$;
COMMENT ON FUNCTION caredata._publish_column(name, text) IS
  'internal: the select-list expression publishing a column: keep, month, year, year_of_birth, age_band, district or sector';

-- What a published view may read.  It is owned by the extension's owner,
-- which reads past every privilege, so its source must read with its own
-- owner's rights: a table, a partitioned table, a materialized view or a
-- plain view, not a security_invoker view (which would read as the
-- superuser) nor a foreign table (whose user mapping would be the
-- superuser's).  NULL when the source is fine, else the reason.
CREATE FUNCTION caredata._publication_source_problem(source regclass) RETURNS text
  LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE
    WHEN c.oid IS NULL THEN 'it no longer exists'
    WHEN c.relkind NOT IN ('r', 'p', 'm', 'v') THEN 'it is not a table, a materialized view or a view'
    WHEN c.relkind = 'v' AND coalesce(c.reloptions, '{}') && ARRAY['security_invoker=true', 'security_invoker=on', 'security_invoker=1']
      THEN 'it is a security_invoker view'
  END
  FROM (SELECT source::oid AS oid) x LEFT JOIN pg_catalog.pg_class c USING (oid)
$$;
COMMENT ON FUNCTION caredata._publication_source_problem(regclass) IS
  'internal: why a relation cannot be a publication''s source (NULL when it can): not a table, materialized view or plain view, or a security_invoker view';

-- and stays so: after any DDL, every published source is checked again, so
-- that no one turns a published table into a view (CREATE RULE) or a
-- published view into a security_invoker one
CREATE FUNCTION caredata._publication_guard() RETURNS event_trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p record;
BEGIN
  FOR p IN SELECT x.name, x.source, caredata._publication_source_problem(x.source) AS problem
             FROM caredata.publication x WHERE caredata._publication_source_problem(x.source) IS NOT NULL LOOP
    RAISE EXCEPTION USING ERRCODE = '42809', MESSAGE = format('publication "%s" reads %s, and %s', p.name, p.source, p.problem),
      HINT = 'A published source must read with its own owner''s rights; unpublish it first (caredata.unpublish()).';
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata._publication_guard() IS
  'internal: event trigger refusing DDL that leaves a published source unfit (see _publication_source_problem)';
CREATE EVENT TRIGGER caredata_publication_guard ON ddl_command_end
  EXECUTE FUNCTION caredata._publication_guard();

-- A catalog row is the publisher's word: the trigger below checks it as the
-- role inserting it (its rights on the source, a recipient that is not
-- privileged, the columns), so the view made from it as the extension owner
-- shows nothing the publisher could not read.  caredata_admin may insert
-- rows (who and when are defaults) and stamp republished_at, nothing else.
-- The checks need only the source's definition, so a restored dump's rows
-- pass them again.
CREATE FUNCTION caredata._publication_check() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = NEW.recipient) THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('role "%s" does not exist', NEW.recipient),
      HINT = 'Create the recipient''s role first (CREATE ROLE ... NOLOGIN, or a login).';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = NEW.recipient AND r.rolsuper)
     OR NEW.recipient IN ('caredata_admin', 'caredata_linker', 'caredata_reidentifier', 'caredata_patient') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('role "%s" cannot be a recipient', NEW.recipient),
      HINT = 'Publish to a role of its own (a team or a BI login), or to caredata_analyst; not to a superuser or a caredata role that holds identifiers.';
  END IF;
  IF jsonb_typeof(NEW.spec->'columns') IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication names the columns it publishes',
      HINT = 'Set "columns" to {"column": "keep" | "month" | "year" | "year_of_birth" | "age_band" | "district" | "sector"}; others are dropped.';
  END IF;
  IF caredata._publication_source_problem(NEW.source) IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42809', MESSAGE = format('%s cannot be published: %s', NEW.source, caredata._publication_source_problem(NEW.source)),
      HINT = 'Publish a table, a materialized view or a plain view: a published view reads its source with the source owner''s rights.';
  END IF;
  IF NOT has_table_privilege(NEW.source, 'SELECT') THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format('permission denied to publish %s', NEW.source),
      HINT = 'Publish only what you may read yourself.';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = NEW.source AND a.attname = NEW.spec->>'nhs_column'
                    AND a.attnum > 0 AND NOT a.attisdropped) THEN
    RAISE EXCEPTION USING ERRCODE = '42703', MESSAGE = format('NHS number column "%s" is not in %s', NEW.spec->>'nhs_column', NEW.source),
      HINT = 'Set "nhs_column" in the spec (default nhs_number).';
  END IF;
  FOR c IN SELECT key, value FROM jsonb_each_text(NEW.spec->'columns') LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = NEW.source AND a.attname = c.key AND a.attnum > 0 AND NOT a.attisdropped) THEN
      RAISE EXCEPTION USING ERRCODE = '42703', MESSAGE = format('column "%s" is not in %s', c.key, NEW.source),
        HINT = 'Name the source''s columns in the spec''s "columns".';
    END IF;
    IF c.key = NEW.spec->>'nhs_column' THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'the NHS number column cannot be published',
        HINT = 'It is replaced by the recipient''s pseudonym, in the column "person".';
    END IF;
    IF caredata._publish_column(c.key, c.value) IS NULL THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('column "%s": unknown treatment "%s"', c.key, c.value),
        HINT = 'Use keep, month, year, year_of_birth, age_band, district or sector.';
    END IF;
  END LOOP;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION caredata._publication_check() IS
  'internal: checks a new publication as the role publishing it (rights on the source, the recipient, the columns)';
CREATE TRIGGER publication_check BEFORE INSERT ON caredata.publication
  FOR EACH ROW EXECUTE FUNCTION caredata._publication_check();
GRANT INSERT (name, recipient, source, spec), UPDATE (republished_at) ON caredata.publication TO caredata_admin;

-- (re)create a publication's view, as its catalog row says
CREATE FUNCTION caredata._publication_view(name text) RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p caredata.publication;
  cols text := '';
  c record;
BEGIN
  SELECT * INTO p FROM caredata.publication x WHERE x.name = _publication_view.name;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('publication "%s" does not exist', name),
      HINT = 'See caredata.publication.';
  END IF;
  FOR c IN SELECT key, value FROM jsonb_each_text(p.spec->'columns') ORDER BY key LOOP
    cols := cols || ', ' || caredata._publish_column(c.key, c.value);
  END LOOP;
  EXECUTE format('DROP VIEW IF EXISTS published.%I', p.name);
  EXECUTE format($v$
    CREATE VIEW published.%1$I WITH (security_barrier) AS
    SELECT m.pseudonym::text AS person%2$s
      FROM %3$s s
      JOIN caredata.pseudonym_map m ON m.domain = %4$L AND m.nhs_number OPERATOR(caredata.=) caredata.try_nhs_number(s.%5$I::text)
     WHERE caredata.permitted(m.nhs_number, %6$L, now(), %7$L)$v$,
    p.name, cols, p.source, p.spec->>'domain', p.spec->>'nhs_column', p.spec->>'purpose', p.spec->>'dataset');
  EXECUTE format('COMMENT ON VIEW published.%I IS %L', p.name,
                 format('caredata publication %s for %s: %s pseudonymised (domain %s), objection filter for %s', p.name, p.recipient,
                        p.source, p.spec->>'domain', p.spec->>'purpose'));
  EXECUTE format('REVOKE ALL ON published.%I FROM PUBLIC', p.name);
  EXECUTE format('GRANT SELECT ON published.%I TO %I', p.name, p.recipient);
  EXECUTE format('GRANT USAGE ON SCHEMA published TO %I', p.recipient);
  -- a view's functions run with its reader's EXECUTE rights: the filter's
  -- (answered as for an analyst, who may already call it)
  EXECUTE format('GRANT EXECUTE ON FUNCTION caredata.permitted(caredata.nhs_number, text, timestamptz, text) TO %I', p.recipient);
  -- the recipient's operators on pseudonym and nhs_number without OPERATOR(caredata.=)
  EXECUTE format('ALTER ROLE %I SET search_path = "$user", public, published, caredata', p.recipient);
END
$$;
COMMENT ON FUNCTION caredata._publication_view(text) IS
  'internal: (re)create a publication''s view from its catalog row, grant it to its recipient alone, and set the recipient''s search_path';

CREATE FUNCTION caredata.publish(name text, source regclass, spec jsonb, recipient name)
  RETURNS regclass LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  full_spec jsonb := jsonb_build_object('nhs_column', 'nhs_number') || coalesce(spec, '{}');
BEGIN
  IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication name is lower-case letters, digits and _',
      HINT = 'It names the view published.<name>.';
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.publication x WHERE x.name = publish.name) THEN
    RAISE EXCEPTION USING ERRCODE = '42710', MESSAGE = format('publication "%s" already exists', name),
      HINT = 'Unpublish it first, or republish it.';
  END IF;
  IF full_spec->>'purpose' IS NULL OR NOT EXISTS (SELECT 1 FROM caredata.purpose x WHERE x.name = full_spec->>'purpose') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication needs the purpose it is for',
      HINT = 'Set "purpose" in the spec to one of caredata.purpose (research, ...): the objection filter is built for it.';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM caredata.domain d WHERE d.name = full_spec->>'domain' AND d.retired_at IS NULL) THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = 'a publication needs the recipient''s pseudonym domain',
      HINT = 'Set "domain" in the spec to a domain made with caredata.create_domain(), and run caredata.refresh_pseudonyms() for the source.';
  END IF;
  -- the rest is checked by caredata._publication_check(), as the caller
  INSERT INTO caredata.publication (name, recipient, source, spec) VALUES (name, recipient, source, full_spec);
  PERFORM caredata._publication_view(name);
  PERFORM caredata.audit_append('publication.create', name,
    jsonb_build_object('recipient', recipient, 'source', source::text, 'spec', full_spec));
  RETURN format('published.%I', name)::regclass;
END
$$;
COMMENT ON FUNCTION caredata.publish(text, regclass, jsonb, name) IS
  'publish a source to one recipient as published.<name>: spec {"domain", "purpose", "dataset"?, "nhs_column"? (default nhs_number), "columns": {column: keep|month|year|year_of_birth|age_band|district|sector}}; the NHS number becomes the recipient''s stored pseudonym, other columns are dropped, objectors for the purpose are filtered out; audited';

CREATE FUNCTION caredata.republish(name text) RETURNS regclass
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p caredata.publication;
BEGIN
  UPDATE caredata.publication x SET republished_at = now() WHERE x.name = republish.name RETURNING * INTO p;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('publication "%s" does not exist', name),
      HINT = 'See caredata.publication.';
  END IF;
  -- after a key rotation: the stored pseudonyms move to the current version
  PERFORM caredata.refresh_pseudonyms(p.spec->>'domain', p.source, (p.spec->>'nhs_column')::name);
  PERFORM caredata._publication_view(name);
  PERFORM caredata.audit_append('publication.republish', name, jsonb_build_object('recipient', p.recipient));
  RETURN format('published.%I', name)::regclass;
END
$$;
COMMENT ON FUNCTION caredata.republish(text) IS
  'refresh a publication after a key rotation or a new opt-out snapshot: its pseudonyms at the domain''s current key version, its view re-created; audited';

CREATE FUNCTION caredata.unpublish(name text) RETURNS void
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p caredata.publication;
BEGIN
  DELETE FROM caredata.publication x WHERE x.name = unpublish.name RETURNING * INTO p;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('publication "%s" does not exist', name),
      HINT = 'See caredata.publication.';
  END IF;
  EXECUTE format('DROP VIEW IF EXISTS published.%I', p.name);
  PERFORM caredata.audit_append('publication.drop', name, jsonb_build_object('recipient', p.recipient));
END
$$;
COMMENT ON FUNCTION caredata.unpublish(text) IS 'drop a publication''s view and its record; audited';

-- equivalence classes of a published view's quasi-identifiers smaller than k
CREATE FUNCTION caredata.k_anonymity(view regclass, quasi_identifiers text[], k integer DEFAULT 5)
  RETURNS TABLE (rows bigint, classes bigint, classes_below_k bigint, rows_below_k bigint, share_below_k numeric)
  LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF k IS NULL OR k < 2 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'k is at least 2', HINT = 'k = 5 is a common choice.';
  END IF;
  IF coalesce(cardinality(quasi_identifiers), 0) = 0 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'name the quasi-identifiers',
      HINT = 'For example ARRAY[''dob_age_band'', ''sex'', ''postcode_district''].';
  END IF;
  RETURN QUERY EXECUTE format($q$
    SELECT coalesce(sum(n), 0)::bigint, count(*), count(*) FILTER (WHERE n < $1),
           coalesce(sum(n) FILTER (WHERE n < $1), 0)::bigint,
           round(coalesce(sum(n) FILTER (WHERE n < $1), 0) / nullif(sum(n), 0), 4)
      FROM (SELECT count(*) AS n FROM %s GROUP BY %s) c$q$,
    view, (SELECT string_agg(quote_ident(q), ', ') FROM unnest(quasi_identifiers) q))
    USING k;
END
$$;
COMMENT ON FUNCTION caredata.k_anonymity(regclass, text[], integer) IS
  'k-anonymity of a view over its quasi-identifiers: rows, equivalence classes, classes smaller than k and the share of rows in them';

REVOKE ALL ON FUNCTION caredata.refresh_pseudonyms(text, regclass, name), caredata._publish_column(name, text), caredata._publication_check(),
  caredata._publication_source_problem(regclass), caredata._publication_guard(),
  caredata._publication_view(text), caredata.publish(text, regclass, jsonb, name),
  caredata.republish(text), caredata.unpublish(text), caredata.k_anonymity(regclass, text[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.refresh_pseudonyms(text, regclass, name) TO caredata_admin, caredata_linker;
GRANT EXECUTE ON FUNCTION caredata._publish_column(name, text), caredata._publication_source_problem(regclass), caredata._publication_view(text), caredata.publish(text, regclass, jsonb, name),
  caredata.republish(text), caredata.unpublish(text), caredata.k_anonymity(regclass, text[], integer) TO caredata_admin;

-- ---- src/reidentify.sql ----
-- src/reidentify.sql
-- Re-identification: from a recipient's pseudonym back to the NHS number,
-- for caredata_reidentifier only, with a justification, audited before it
-- answers, at most caredata.reidentify_per_hour times an hour per login.
--
-- HMAC pseudonyms are one-way by design, so the way back is the protected
-- map the publisher already keeps (caredata.pseudonym_map, readable by the
-- linker and admin roles only).  Its risk is the risk of that table: whoever
-- reads it can re-identify every published row of its domains; it holds
-- only domains that were published, at their current key version.  The
-- alternative, reversible deterministic encryption, would make every
-- pseudonym reversible by whoever gets the key, and was not chosen.
CREATE FUNCTION caredata.reidentify(pseudonym caredata.pseudonym, justification text)
  RETURNS caredata.nhs_number
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  per_hour integer;
  used bigint;
  v_nhs caredata.nhs_number;
  dom text;
BEGIN
  IF length(btrim(coalesce(justification, ''))) < 20 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a re-identification needs a justification',
      HINT = 'Say why, in at least 20 characters (the legal basis and the case reference); it is kept in the audit log.';
  END IF;
  -- the setting is defined by caredata's library: load it first
  PERFORM '9434765919'::caredata.nhs_number;
  per_hour := coalesce(current_setting('caredata.reidentify_per_hour', true), '20')::integer;
  SELECT count(*) INTO used FROM caredata.audit_log a
   WHERE a.action = 'reidentify' AND a.actor = session_user AND a.at > clock_timestamp() - interval '1 hour';
  IF used >= per_hour THEN
    RAISE EXCEPTION USING ERRCODE = '54000',
      MESSAGE = format('re-identification limit reached: %s in the last hour', used),
      HINT = 'caredata.reidentify_per_hour sets the limit per login (superuser-only).';
  END IF;
  SELECT m.nhs_number, m.domain INTO v_nhs, dom FROM caredata.pseudonym_map m
   WHERE m.pseudonym OPERATOR(caredata.=) reidentify.pseudonym;
  -- audited before it answers, found or not (the entry names the pseudonym, never the NHS number)
  PERFORM caredata.audit_append('reidentify', pseudonym::text,
    jsonb_build_object('domain', dom, 'found', v_nhs IS NOT NULL), justification);
  RETURN v_nhs;
END
$$;
COMMENT ON FUNCTION caredata.reidentify(caredata.pseudonym, text) IS
  'the NHS number behind a published pseudonym (NULL when there is none), for caredata_reidentifier only: needs a justification of 20 characters or more, is audited before it answers, at most caredata.reidentify_per_hour times an hour per login';
REVOKE ALL ON FUNCTION caredata.reidentify(caredata.pseudonym, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.reidentify(caredata.pseudonym, text) TO caredata_reidentifier;
