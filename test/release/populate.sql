-- test/release/populate.sql: the catalogs scripts/demo.sql leaves empty or
-- untouched, filled through the public API (test/release/upgrade.sh runs it
-- after the demo): a custom purpose, an exemption, a withdrawn objection, a
-- patient's subject access, a rotated and a retired domain, a custom
-- disclosure-control policy.
\set ON_ERROR_STOP 1
SET search_path = "$user", public, caredata;
SET client_min_messages = warning;
INSERT INTO caredata.purpose VALUES ('audit_study', 'a clinical audit named in a test');
SELECT caredata.grant_exemption('study_a', 'research', 'type1', 'cag_section_251', 'CAG 1-01(a)/2026');
SELECT caredata.withdraw_objection(
  caredata.record_objection('999 000 0018', 'national_data_opt_out', 'release test', now() - interval '2 days'),
  now() - interval '1 day');
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'release_patient') THEN
    CREATE ROLE release_patient NOLOGIN IN ROLE caredata_patient;
  END IF;
END $$;
INSERT INTO caredata.subject_access (role, nhs_number) VALUES ('release_patient', '999 000 0026');
SELECT caredata.create_domain('rotated', 'a domain whose key was rotated');
SELECT caredata.rotate_domain('rotated');
SELECT caredata.create_domain('retired', 'a domain retired after use');
SELECT caredata.retire_domain('retired');
INSERT INTO caredata.sdc_policy (policy, suppress_max, rounding, rounding_base, source)
VALUES ('release_test', 9, 'nearest', 5, 'a local rule for the release test');
