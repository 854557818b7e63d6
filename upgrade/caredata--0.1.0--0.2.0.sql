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
