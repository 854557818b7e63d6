-- sql/variation_patient.sql: a patient understands their own care (issue
-- 29, section 2): where the providers in their own records stand in a
-- comparison the admin published under the disclosure-control policy for
-- patients, and their own summary in one call; tried as the patient, a
-- patient with no records, a grantee, an analyst and the admin, with a
-- hostile search_path.
-- (a suite before may leave the extension installed: start afresh)
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS caredata CASCADE;
CREATE EXTENSION caredata;
RESET client_min_messages;
SET search_path = public, caredata;
\i sql/include/refusal.psql

CREATE ROLE regress_vp_owner NOLOGIN IN ROLE caredata_admin;
GRANT CREATE ON SCHEMA public TO regress_vp_owner;
CREATE ROLE regress_vp_patient NOLOGIN IN ROLE caredata_patient;
CREATE ROLE regress_vp_patient2 NOLOGIN IN ROLE caredata_patient;
CREATE ROLE regress_vp_carer NOLOGIN IN ROLE caredata_grantee;
CREATE ROLE regress_vp_analyst NOLOGIN IN ROLE caredata_analyst;
INSERT INTO subject_access (role, nhs_number) VALUES ('regress_vp_patient', '999 000 0018'),
                                                    ('regress_vp_patient2', '999 000 0026');

-- eight providers of different sizes and death rates; the patient was
-- treated at P1 (twice) and P8 (the smallest, suppressed), patient2 nowhere
CREATE TABLE vp_episode (id int, nhs_number nhs_number, provider text, admitted date, died boolean);
INSERT INTO vp_episode
SELECT row_number() OVER (), NULL, 'P' || p, date '2026-01-01' + (i % 300), i % (10 + p) = 0
  FROM generate_series(1, 8) p, generate_series(1, 40 * (9 - p)) i;
UPDATE vp_episode SET nhs_number = '999 000 0018' WHERE id IN (1, 2, (SELECT max(id) FROM vp_episode));
UPDATE vp_episode SET nhs_number = '999 000 0042' WHERE id IN (3, 4, 5);
ALTER TABLE vp_episode OWNER TO regress_vp_owner;
GRANT SELECT ON vp_episode TO caredata_patient, regress_vp_analyst;
CREATE TABLE vp_plain (provider text);
ALTER TABLE vp_plain OWNER TO regress_vp_owner;
SET ROLE regress_vp_owner;
SELECT protect('vp_episode', 'nhs_number', 'planning');
RESET ROLE;
-- the policy for patients
SELECT assign_sdc_policy('caredata_patient', 'opensafely');

-- only the admin publishes, and only over a protected table
SET ROLE regress_vp_analyst;
SELECT state FROM pg_temp.refusal($$caredata.publish_patient_comparison('deaths', 'Deaths', 'vp_episode', 'provider', 'provider',
  'SELECT provider, count(*) FILTER (WHERE died), count(*) FROM vp_episode GROUP BY provider', 'PR')$$);
SET ROLE regress_vp_owner;
SELECT state, message FROM pg_temp.refusal($$caredata.publish_patient_comparison('deaths', 'Deaths', 'vp_plain', 'provider', 'provider',
  'SELECT provider, 1, 2 FROM vp_plain', 'PR')$$);
SELECT state, message FROM pg_temp.refusal($$caredata.publish_patient_comparison('deaths', 'Deaths', 'vp_episode', 'provider', 'no_such_column',
  'SELECT provider, 1, 2 FROM vp_episode', 'PR')$$);
SELECT publish_patient_comparison('deaths', 'Deaths within the stay, by provider', 'vp_episode', 'provider', 'provider',
  'SELECT provider, count(*) FILTER (WHERE died), count(*) FROM vp_episode GROUP BY provider', 'PR',
  date_column => 'admitted') AS units;
SELECT name, unit_kind, policy FROM patient_comparison;
SELECT unit, numerator, denominator, band, suppressed FROM patient_comparison_row ORDER BY unit;
RESET ROLE;

-- the patient: their providers' published rows, and no other provider's
SET ROLE regress_vp_patient;
SELECT comparison, unit_kind, unit, your_episodes, numerator, denominator, band, suppressed FROM my_comparison();
RESET ROLE;
-- what the patient sees is what was published for those units
SELECT count(*) AS as_published FROM caredata.patient_comparison_row r
 WHERE r.unit IN ('P1', 'P8');
-- a patient with no records: nothing
SET ROLE regress_vp_patient2;
SELECT count(*) AS rows FROM my_comparison();
-- a grantee, an analyst: refused (no argument names a patient anyway)
SET ROLE regress_vp_carer;
SELECT state FROM pg_temp.refusal($$caredata.my_comparison()$$);
SELECT state FROM pg_temp.refusal($$caredata.my_summary()$$);
SET ROLE regress_vp_analyst;
SELECT state FROM pg_temp.refusal($$caredata.my_comparison()$$);
SELECT state FROM pg_temp.refusal($$count(*) FROM caredata.patient_comparison_row$$);
RESET ROLE;

-- the summary, in one call: records, organisations, dates, shares, objections
SET ROLE regress_vp_patient;
SELECT record_my_objection('national_data_opt_out', ARRAY['research']) IS NOT NULL AS objected;
SELECT share_my_records('regress_vp_carer', 'my carer', now() + interval '7 days', ARRAY['vp_episode']::regclass[]) IS NOT NULL AS shared;
SELECT jsonb_pretty(my_summary() - 'shares') AS summary;
SELECT s->>'grantee' AS grantee, s->>'reason' AS reason, s->>'in_force' AS in_force, s->>'sessions' AS sessions
  FROM jsonb_array_elements(my_summary()->'shares') s;
SET ROLE regress_vp_patient2;
SELECT my_summary() - 'patient' AS summary;
RESET ROLE;

-- a hostile search_path reaches none of it
CREATE SCHEMA regress_vp_evil;
GRANT USAGE ON SCHEMA regress_vp_evil TO PUBLIC;
CREATE TABLE regress_vp_evil.trap (what text);
GRANT INSERT ON regress_vp_evil.trap TO PUBLIC;
CREATE FUNCTION regress_vp_evil.has_table_privilege(oid, oid, text) RETURNS boolean LANGUAGE sql AS
  $$ INSERT INTO regress_vp_evil.trap VALUES ('has_table_privilege'); SELECT true $$;
CREATE FUNCTION regress_vp_evil.texteq(text, text) RETURNS boolean LANGUAGE sql AS
  $$ INSERT INTO regress_vp_evil.trap VALUES ('text ='); SELECT true $$;
CREATE OPERATOR regress_vp_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_vp_evil.texteq);
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA regress_vp_evil TO PUBLIC;
SET ROLE regress_vp_patient;
SET search_path = regress_vp_evil, pg_catalog, public, caredata;
SELECT count(*) AS rows FROM caredata.my_comparison();
SELECT pg_catalog.jsonb_array_length(caredata.my_summary()->'organisations') AS organisations;
RESET ROLE;
SET search_path = public, caredata;
SELECT count(*) AS traps_fired FROM regress_vp_evil.trap;
DROP SCHEMA regress_vp_evil CASCADE;

SELECT action, object FROM audit_log WHERE action = 'comparison.publish';
SELECT unassign_sdc_policy('caredata_patient');
SET ROLE regress_vp_owner;
SELECT unprotect('vp_episode');
RESET ROLE;
DROP TABLE vp_episode, vp_plain;
REVOKE CREATE ON SCHEMA public FROM regress_vp_owner;
DELETE FROM caredata.subject_access;
DROP ROLE regress_vp_owner, regress_vp_patient, regress_vp_patient2, regress_vp_carer, regress_vp_analyst;
DROP EXTENSION caredata;
