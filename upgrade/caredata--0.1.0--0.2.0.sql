/* caredata--0.1.0--0.2.0.sql: update caredata 0.1.0 to 0.2.0 (never edited once released) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION caredata UPDATE TO '0.2.0'" to load this file. \quit

-- 0.2.0's install script makes the schema caredata itself, as a member, so
-- that DROP EXTENSION removes it; its control file names pg_catalog as the
-- extension's schema.  0.1.0's schema was made by CREATE EXTENSION and
-- recorded as the extension's own, which ALTER EXTENSION ADD refuses
-- ("the schema contains the extension"): record pg_catalog, as a fresh
-- 0.2.0 install does (pg_catalog is pinned, so no dependency on it is
-- recorded: the extension's on the schema goes), then add the schema.
UPDATE pg_catalog.pg_extension
   SET extnamespace = 'pg_catalog'::regnamespace
 WHERE extname = 'caredata';
DELETE FROM pg_catalog.pg_depend
 WHERE classid = 'pg_catalog.pg_extension'::regclass
   AND objid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'caredata')
   AND refclassid = 'pg_catalog.pg_namespace'::regclass
   AND refobjid = 'caredata'::regnamespace;
ALTER EXTENSION caredata ADD SCHEMA caredata;

-- protect() refuses Citus distributed and reference tables (docs/scale-out.md)
CREATE OR REPLACE FUNCTION caredata.protect(tab regclass, nhs_column name, purpose text, dataset text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
DECLARE
  coltype regtype;
  parent regclass;
  r regclass;
  citus boolean;
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
  -- a Citus table: Citus re-creates restrictive policies as permissive on
  -- its shards, and the register is on this node only (docs/scale-out.md)
  IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
    EXECUTE 'SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1)' INTO citus USING tab;
    IF citus THEN
      RAISE EXCEPTION '% is a Citus distributed or reference table', tab
        USING ERRCODE = 'feature_not_supported',
              DETAIL = 'The objection filter does not hold on Citus shards yet: Citus re-creates restrictive row security policies as permissive ones on shards, and the objection register is on this node only.',
              HINT = 'See docs/scale-out.md. Protect a table that is not distributed.';
    END IF;
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
