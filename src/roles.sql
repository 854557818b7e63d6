-- src/roles.sql
-- The roles of docs/sql-reference.md "Roles", created when missing.  Roles belong to the
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
      ('caredata_patient', 'patient-facing logins: see only rows with their own NHS number (subject access)'),
      ('caredata_grantee', 'logins patients share their records with (carers, clinicians, researchers): see only the rows a patient shares with them')) v(name, what)
  LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r.name) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r.name);
      EXECUTE format('COMMENT ON ROLE %I IS %L', r.name, 'caredata: ' || r.what);
    END IF;
  END LOOP;
END
$roles$;
