-- sql/citus_single_node.sql: caredata's Citus support on a server without
-- Citus (test/citus/ runs it on a Citus cluster: docs/scale-out.md).  The
-- set-up and the check refuse clearly; the filter shape protect() gives a
-- Citus table (one permissive policy, caredata_filter) filters as the
-- restrictive pair does, and a plan reading it beside any other policy,
-- which would be ORed with it on the shards, is refused.
CREATE EXTENSION caredata;
SET search_path = caredata, public;
\i sql/include/refusal.psql
CREATE ROLE regress_cs_admin NOLOGIN IN ROLE caredata_admin;
CREATE ROLE regress_cs_analyst NOLOGIN IN ROLE caredata_analyst;
CREATE ROLE regress_cs_patient NOLOGIN IN ROLE caredata_patient;

-- 1. no Citus: set-up and check refuse, with a hint; set-up is the superuser's
SELECT r.state, r.message, r.hint FROM pg_temp.refusal('caredata.citus_setup()') r;
SELECT r.state, r.message FROM pg_temp.refusal('caredata.citus_check()') r;
SET ROLE regress_cs_admin;
SELECT r.state, r.message FROM pg_temp.refusal('caredata.citus_setup()') r;
RESET ROLE;
SELECT c::text AS replicated_catalog FROM citus_catalogs() c;
SELECT count(*) AS distributed_filters FROM distributed_filter;
SELECT _citus_table('caredata.objection') AS objection_is_citus_table,
       _logical_relation('caredata.objection') AS logical_name;

-- 1b. the register's time goes into SQL as text (literals, for Citus):
-- read back the same whatever the caller's DateStyle and TimeZone, even a
-- zone whose abbreviation reads back as another offset (25 hours off)
SELECT record_objection('401 023 2137', 'national_data_opt_out', 'regress', now() - interval '2 hours') > 0 AS recent;
SELECT extract(epoch FROM lo) AS lo, coalesce(extract(epoch FROM hi)::text, 'none') AS hi
  FROM blocked_interval('research', NULL, now()) \gset utc_
SET TimeZone = 'NZDT+12';
SET DateStyle = 'SQL, DMY';
SELECT extract(epoch FROM lo) = :utc_lo AS same_lo, coalesce(extract(epoch FROM hi)::text, 'none') = :'utc_hi' AS same_hi
  FROM blocked_interval('research', NULL, now());
SELECT count(*) AS twin_blocks FROM _blocked_nhs_numbers_citus('research', NULL, now());
SELECT count(*) AS sql_blocks FROM blocked_nhs_numbers('research', NULL, now());
RESET TimeZone;
RESET DateStyle;
SELECT withdraw_objection(id, now()) FROM objection WHERE nhs_number = '401 023 2137';

-- 2. the Citus filter shape, by hand: one permissive policy holding the
-- whole filter, as _protect_citus() writes it
CREATE TABLE cs_ep (id int, nhs_number nhs_number);
INSERT INTO cs_ep VALUES (1, '999 000 0077'), (2, '999 000 0026'), (3, '943 476 5919');
SELECT record_objection('999 000 0026', 'national_data_opt_out', 'regress', now() - interval '1 day') > 0 AS recorded;
INSERT INTO subject_access (role, nhs_number) VALUES ('regress_cs_patient', '943 476 5919');
INSERT INTO protected_table (relid, nhs_column, purpose, added_base_policy, enabled_rls, root)
VALUES ('cs_ep', 'nhs_number', 'research', false, true, 'cs_ep');
CREATE POLICY caredata_filter ON cs_ep AS PERMISSIVE FOR ALL
  USING (caredata.row_permitted(nhs_number, 'research')) WITH CHECK (true);
ALTER TABLE cs_ep ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE cs_ep ALTER COLUMN nhs_number SET STATISTICS 0;
GRANT SELECT, UPDATE, DELETE ON cs_ep TO regress_cs_analyst, regress_cs_patient;
SET ROLE regress_cs_analyst;
SELECT id FROM cs_ep ORDER BY id;
-- writes without a column reference reach the same rows only
UPDATE cs_ep SET id = id WHERE true;
DELETE FROM cs_ep WHERE id = 2;
SET ROLE regress_cs_patient;
SELECT id FROM cs_ep ORDER BY id;
RESET ROLE;
SELECT count(*) AS all_rows_kept FROM cs_ep;

-- 3. another policy beside it, permissive or restrictive, is refused for
-- every role row security applies to; the superuser still reads the table
-- (refused as DDL, sql/objection_protection.sql; made with the guard set aside, as a
-- superuser can)
CREATE POLICY owner_rows ON cs_ep AS PERMISSIVE FOR SELECT USING (id > 0);
ALTER EVENT TRIGGER caredata_protection_guard DISABLE;
CREATE POLICY owner_rows ON cs_ep AS PERMISSIVE FOR SELECT USING (id > 0);
SET ROLE regress_cs_analyst;
SELECT r.state, r.message, r.hint FROM pg_temp.refusal('(SELECT count(*) FROM cs_ep)') r;
SELECT r.state FROM pg_temp.refusal('(SELECT count(*) FROM cs_ep WHERE id = 2)') r;
SET ROLE regress_cs_patient;
SELECT r.state FROM pg_temp.refusal('(SELECT count(*) FROM cs_ep)') r;
RESET ROLE;
DROP POLICY owner_rows ON cs_ep;
CREATE POLICY owner_limit ON cs_ep AS RESTRICTIVE FOR SELECT USING (id < 10);
SET ROLE regress_cs_analyst;
SELECT r.state FROM pg_temp.refusal('(SELECT count(*) FROM cs_ep)') r;
RESET ROLE;
SELECT count(*) AS superuser_reads FROM cs_ep;
DROP POLICY owner_limit ON cs_ep;
ALTER EVENT TRIGGER caredata_protection_guard ENABLE ALWAYS;
SET ROLE regress_cs_analyst;
SELECT count(*) AS filtered_again FROM cs_ep;
RESET ROLE;

-- 4. unprotect() removes the Citus shape as it removes the pair
SELECT unprotect('cs_ep');
SELECT count(*) AS policies_left FROM pg_policy WHERE polrelid = 'cs_ep'::regclass;
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'cs_ep'::regclass;

SET client_min_messages = warning;
DROP TABLE cs_ep;
DROP OWNED BY regress_cs_admin, regress_cs_analyst, regress_cs_patient;
DROP ROLE regress_cs_admin, regress_cs_analyst, regress_cs_patient;
DROP EXTENSION caredata CASCADE;
