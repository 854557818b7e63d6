-- sql/install.sql: CREATE EXTENSION / DROP EXTENSION leave a clean database
CREATE EXTENSION caredata;
SELECT extname, extversion, extnamespace::regnamespace, extrelocatable
FROM pg_extension WHERE extname = 'caredata';
-- every function has its volatility, strictness and parallel safety on purpose:
-- the only ones not PARALLEL SAFE write the catalog or read the key file
SELECT p.oid::regprocedure AS not_parallel_safe, p.proparallel, p.provolatile
FROM pg_proc p WHERE p.pronamespace = 'caredata'::regnamespace AND p.proparallel <> 's'
ORDER BY p.oid::regprocedure::text COLLATE "C";
SELECT p.oid::regprocedure AS without_comment
FROM pg_proc p WHERE p.pronamespace = 'caredata'::regnamespace
  AND obj_description(p.oid, 'pg_proc') IS NULL
ORDER BY p.oid::regprocedure::text COLLATE "C";
SELECT t.typname AS type_without_comment
FROM pg_type t WHERE t.typnamespace = 'caredata'::regnamespace AND t.typtype <> 'p'
  AND t.typelem = 0 AND t.typrelid = 0 AND obj_description(t.oid, 'pg_type') IS NULL;
SELECT c.relname AS table_without_comment
FROM pg_class c WHERE c.relnamespace = 'caredata'::regnamespace AND c.relkind IN ('r', 'v', 'm')
  AND obj_description(c.oid, 'pg_class') IS NULL;
-- everything in the schema belongs to the extension
SELECT count(*) AS stray_objects
FROM (SELECT oid, 'pg_proc'::regclass AS c FROM pg_proc WHERE pronamespace = 'caredata'::regnamespace
      UNION ALL SELECT oid, 'pg_type' FROM pg_type WHERE typnamespace = 'caredata'::regnamespace AND typelem = 0 AND typrelid = 0
      UNION ALL SELECT oid, 'pg_operator' FROM pg_operator WHERE oprnamespace = 'caredata'::regnamespace
      UNION ALL SELECT oid, 'pg_class' FROM pg_class WHERE relnamespace = 'caredata'::regnamespace
                                                     AND relkind IN ('r', 'v', 'm', 'f', 'p')) o
WHERE NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = o.c AND d.objid = o.oid
                  AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e');
SELECT count(*) > 0 AS has_members FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'caredata');

DROP EXTENSION caredata;
-- nothing remains, the schema included (the install script makes it)
SELECT count(*) AS leftover_members FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
  AND refobjid NOT IN (SELECT oid FROM pg_extension);
SELECT count(*) AS schemas_left FROM pg_namespace WHERE nspname = 'caredata';
SELECT count(*) AS types_left FROM pg_type WHERE typname IN ('nhs_number', 'pseudonym', 'person_set', 'person_values');
SELECT count(*) AS casts_left FROM pg_cast
WHERE castsource NOT IN (SELECT oid FROM pg_type) OR casttarget NOT IN (SELECT oid FROM pg_type);
-- and it installs again
CREATE EXTENSION caredata;
-- a user's table in the schema caredata keeps DROP EXTENSION from removing
-- the schema; CASCADE would drop the table with it
CREATE TABLE caredata.users_table (id int);
DROP EXTENSION caredata;
DROP TABLE caredata.users_table;
DROP EXTENSION caredata;
-- a schema caredata left by 0.1.0 (which did not remove it) must go first
CREATE SCHEMA caredata;
CREATE EXTENSION caredata;
DROP SCHEMA caredata;
