-- sql/objection_patient_self.sql: patients record and withdraw their own
-- objections (issue 29, section 3): for their own number only, effective
-- now, source 'patient'; the GP practice's Type 1 and the national opt-out
-- stay authoritative; tried as the patient, another patient, a grantee,
-- an analyst and the admin, with a rolled-back call and a hostile
-- search_path.
-- (a suite before may leave the extension installed: start afresh)
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS caredata CASCADE;
CREATE EXTENSION caredata;
RESET client_min_messages;
SET search_path = public, caredata;
\i sql/include/refusal.psql

CREATE ROLE regress_pself_owner NOLOGIN IN ROLE caredata_admin;
GRANT CREATE ON SCHEMA public TO regress_pself_owner;
CREATE ROLE regress_pself_patient NOLOGIN IN ROLE caredata_patient;
CREATE ROLE regress_pself_patient2 NOLOGIN IN ROLE caredata_patient;
CREATE ROLE regress_pself_carer NOLOGIN IN ROLE caredata_grantee;
CREATE ROLE regress_pself_analyst NOLOGIN IN ROLE caredata_analyst;
INSERT INTO subject_access (role, nhs_number) VALUES ('regress_pself_patient', '999 000 0018'),
                                                    ('regress_pself_patient2', '999 000 0034');
CREATE TABLE pself_episode (id int, nhs_number nhs_number);
INSERT INTO pself_episode
SELECT row_number() OVER (), n::nhs_number
FROM unnest(ARRAY['999 000 0018', '999 000 0026', '999 000 0034', '999 000 0042']) n, generate_series(1, 2);
ALTER TABLE pself_episode OWNER TO regress_pself_owner;
GRANT SELECT ON pself_episode TO caredata_patient, regress_pself_analyst;
SET ROLE regress_pself_owner;
SELECT protect('pself_episode', 'nhs_number', 'research');
RESET ROLE;
-- the practice recorded a Type 1 for the second patient (the GP feed's source)
SELECT record_objection('999 000 0034', 'type1', 'gp_extract', now() - interval '1 day') AS gp_type1;

-- only a patient, for their own number: no function takes a number
SET ROLE regress_pself_analyst;
SELECT state, message FROM pg_temp.refusal($$caredata.record_my_objection('national_data_opt_out')$$);
SELECT count(*) AS analyst_rows FROM pself_episode;
SET ROLE regress_pself_carer;
SELECT state, message FROM pg_temp.refusal($$caredata.my_objections()$$);
SET ROLE regress_pself_patient;
-- the register itself stays closed to a patient, as do the admin's calls
SELECT state FROM pg_temp.refusal($$count(*) FROM caredata.objection$$);
SELECT state FROM pg_temp.refusal($$caredata.record_objection('999 000 0042', 'national_data_opt_out', 'patient')$$);
SELECT state FROM pg_temp.refusal($$caredata.withdraw_objection(1)$$);
-- kinds a patient may not record here, and purposes objections do not cover
SELECT state, message FROM pg_temp.refusal($$caredata.record_my_objection('consent', study => 'study_x')$$);
SELECT state, message FROM pg_temp.refusal($$caredata.record_my_objection('national_data_opt_out', ARRAY['direct_care'])$$);
SELECT state, message FROM pg_temp.refusal($$caredata.record_my_objection('dissent')$$);
SELECT state, message FROM pg_temp.refusal($$caredata.record_my_objection('national_data_opt_out', ARRAY['marketing'])$$);

-- a rolled-back objection leaves nothing
BEGIN;
SELECT record_my_objection('national_data_opt_out') IS NOT NULL AS recorded;
ROLLBACK;
SELECT count(*) AS objections FROM my_objections();

-- recorded: in force from now, the analyst no longer sees the patient's rows
SELECT record_my_objection('national_data_opt_out') AS objection_id;
SELECT state, message FROM pg_temp.refusal($$caredata.record_my_objection('national_data_opt_out')$$);
SELECT kind, purposes, study, source, in_force, you_may_withdraw FROM my_objections();
SET ROLE regress_pself_analyst;
SELECT count(*) AS analyst_rows, string_agg(DISTINCT nhs_number::text, ', ') AS patients FROM pself_episode;
-- the patient still sees their own rows
SET ROLE regress_pself_patient;
SELECT count(*) AS own_rows FROM pself_episode;
-- a dissent from one study
SELECT record_my_objection('dissent', study => 'study_x') IS NOT NULL AS dissent_recorded;
SELECT kind, purposes, study, source, in_force FROM my_objections() ORDER BY id;

-- another patient can neither see nor withdraw it (the same answer as for none)
SET ROLE regress_pself_patient2;
SELECT state, message FROM pg_temp.refusal($$caredata.withdraw_my_objection(3)$$);
SELECT state, message FROM pg_temp.refusal($$caredata.withdraw_my_objection(999)$$);
SELECT kind, source, in_force, you_may_withdraw FROM my_objections();
-- ... nor withdraw the Type 1 the practice recorded: the GP stays authoritative
SELECT state, message, hint FROM pg_temp.refusal($$caredata.withdraw_my_objection(1)$$);
-- ... nor record a second Type 1 while the practice's is in force
SELECT state, message FROM pg_temp.refusal($$caredata.record_my_objection('type1')$$);

-- the patient withdraws their own: from now, kept as history
SET ROLE regress_pself_patient;
SELECT withdraw_my_objection(3);
SELECT state, message FROM pg_temp.refusal($$caredata.withdraw_my_objection(3)$$);
SELECT id, kind, source, in_force, withdrawn_at IS NOT NULL AS withdrawn, you_may_withdraw FROM my_objections() ORDER BY id;
SET ROLE regress_pself_analyst;
SELECT count(*) AS analyst_rows, string_agg(DISTINCT nhs_number::text, ', ') AS patients FROM pself_episode;
RESET ROLE;

-- the national opt-out snapshot's records stay its own: the patient
-- cannot withdraw them
CREATE TABLE pself_ndop (nhs_number text);
INSERT INTO pself_ndop VALUES ('999 000 0018'), ('999 000 0042');
SELECT opened, withdrawn FROM apply_opt_out_snapshot('pself_ndop', 'nhs_number', 'ndop', now(), true, false);
SET ROLE regress_pself_patient;
SELECT kind, source, in_force, you_may_withdraw FROM my_objections() WHERE in_force ORDER BY id;
SELECT state, message FROM pg_temp.refusal(format('caredata.withdraw_my_objection(%s)',
  (SELECT id FROM caredata.my_objections() WHERE source = 'ndop')));
RESET ROLE;

-- the audit names the patient's login, never the number
SELECT action, detail->>'patient' AS patient, detail->>'kind' AS kind FROM audit_log
 WHERE action LIKE 'objection.patient%' ORDER BY id;
SELECT count(*) AS entries_naming_a_number FROM audit_log WHERE detail::text ~ '999 ?000 ?00';

-- a hostile search_path: a current_setting() that names another patient,
-- first on the path, is never called
CREATE SCHEMA regress_pself_evil;
GRANT USAGE ON SCHEMA regress_pself_evil TO PUBLIC;
CREATE TABLE regress_pself_evil.trap (what text);
GRANT INSERT ON regress_pself_evil.trap TO PUBLIC;
CREATE FUNCTION regress_pself_evil.current_setting(text) RETURNS text LANGUAGE sql AS
  $$ INSERT INTO regress_pself_evil.trap VALUES ('current_setting'); SELECT 'regress_pself_patient2' $$;
CREATE FUNCTION regress_pself_evil.now() RETURNS timestamptz LANGUAGE sql AS
  $$ INSERT INTO regress_pself_evil.trap VALUES ('now'); SELECT pg_catalog.now() - interval '10 years' $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA regress_pself_evil TO PUBLIC;
SET ROLE regress_pself_patient;
SET search_path = regress_pself_evil, pg_catalog, public, caredata;
SELECT caredata.record_my_objection('dissent', study => 'study_y') IS NOT NULL AS recorded;
SELECT count(*) AS mine FROM caredata.my_objections() WHERE study = 'study_y';
RESET ROLE;
SET search_path = public, caredata;
SELECT count(*) AS traps_fired FROM regress_pself_evil.trap;
SELECT count(*) AS study_y_for_patient2 FROM objection WHERE study = 'study_y' AND nhs_number = '999 000 0034';
DROP SCHEMA regress_pself_evil CASCADE;

SET ROLE regress_pself_owner;
SELECT unprotect('pself_episode');
RESET ROLE;
DROP TABLE pself_episode, pself_ndop;
REVOKE CREATE ON SCHEMA public FROM regress_pself_owner;
DELETE FROM caredata.subject_access;
DROP ROLE regress_pself_owner, regress_pself_patient, regress_pself_patient2, regress_pself_carer, regress_pself_analyst;
DROP EXTENSION caredata;
