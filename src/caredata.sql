-- src/caredata.sql
-- The schema; every concern's objects follow in their own files.
-- The script makes the schema itself, so that it is a member of the
-- extension and DROP EXTENSION removes it (a schema CREATE EXTENSION makes
-- from the control file's "schema" is not a member, and stays behind).  The
-- control file names pg_catalog, as pg_cron's does: nothing is created there,
-- because everything below is created in caredata, first on the path.
-- A leftover schema caredata (0.1.0's DROP EXTENSION kept it) must go first.

DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'caredata') THEN
    RAISE EXCEPTION 'schema "caredata" already exists'
      USING ERRCODE = 'duplicate_schema',
            DETAIL = 'caredata makes its schema itself, so that DROP EXTENSION removes it.',
            HINT = 'A schema left by DROP EXTENSION of caredata 0.1.0 is empty: DROP SCHEMA caredata, then CREATE EXTENSION caredata again.';
  END IF;
END
$$;
CREATE SCHEMA caredata;
SET LOCAL search_path = caredata, pg_catalog;

COMMENT ON SCHEMA caredata IS
  'caredata: health-data linkage and de-identification (identifiers, pseudonyms, objections, disclosure control)';

-- Every role may use the schema: its types (nhs_number, later pseudonym) appear
-- in published views, and the identifier standardisers hold no secret.
-- Keyed and privileged functions revoke EXECUTE from PUBLIC one by one
-- (see docs/sql-reference.md "Roles").
GRANT USAGE ON SCHEMA caredata TO PUBLIC;

-- Loaded at server start (shared_preload_libraries)?  Only then are the
-- objection filter's executor hooks, the shared blocked sets and the
-- superuser-only settings (caredata.key_file, caredata.reidentify_per_hour)
-- in place in every connection from its first query (src/base/preload.h).  What
-- depends on them refuses otherwise, at once, with a hint naming
-- shared_preload_libraries; CREATE EXTENSION warns.
CREATE FUNCTION caredata.preloaded() RETURNS boolean
  AS 'MODULE_PATHNAME', 'caredata_is_preloaded' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.preloaded() IS
  'true when this server loaded caredata at start (shared_preload_libraries), as the objection filter, the register and the keyed functions require';
CREATE FUNCTION caredata.require_preload() RETURNS void
  AS 'MODULE_PATHNAME', 'caredata_require_preload_sql' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.require_preload() IS
  'raises an error (55000, with a hint naming shared_preload_libraries) unless this server loaded caredata at start';
CREATE FUNCTION caredata._require_preload_trigger() RETURNS trigger
  AS 'MODULE_PATHNAME', 'caredata_require_preload_trigger' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._require_preload_trigger() IS
  'trigger: refuses writes to the objection register and protected_table unless caredata was loaded at server start';
REVOKE ALL ON FUNCTION caredata._require_preload_trigger() FROM PUBLIC;

DO $$
BEGIN
  IF NOT caredata.preloaded() THEN
    RAISE WARNING 'caredata was not loaded at server start'
      USING DETAIL = 'The objection filter, the objection register and the keyed functions refuse to run until it is.',
            HINT = 'Add caredata to shared_preload_libraries in postgresql.conf and restart the server.';
  END IF;
END
$$;
