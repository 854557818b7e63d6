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
-- (see DESIGN.md "Roles").
GRANT USAGE ON SCHEMA caredata TO PUBLIC;
