-- sql/objection.sql: the objection register, feeds and exemptions
CREATE EXTENSION caredata;
SET search_path = public, caredata;
\i sql/include/refusal.psql

SELECT name FROM purpose ORDER BY name;
SELECT k, default_purposes(k) FROM unnest(ARRAY['national_data_opt_out', 'type1', 'dissent', 'consent']) k;

-- recording by hand; history is kept
SELECT record_objection('943 476 5919', 'national_data_opt_out', 'test', '2025-01-01') AS id \gset
SELECT permitted('943 476 5919', 'research', '2025-06-01') AS during,
       permitted('943 476 5919', 'research', '2024-06-01') AS before,
       permitted('943 476 5919', 'direct_care', '2025-06-01') AS direct_care;
SELECT withdraw_objection(:id, '2025-09-01');
SELECT permitted('943 476 5919', 'research', '2025-06-01') AS during,
       permitted('943 476 5919', 'research', '2025-09-01') AS at_withdrawal,
       permitted('943 476 5919', 'research', '2025-10-01') AS after;
SELECT nhs_number, kind, effective_from, withdrawn_at FROM objection ORDER BY id;
-- one open objection per patient and kind
SELECT record_objection('999 000 0018', 'type1', 'test', '2025-01-01') IS NOT NULL AS recorded;
-- refusals never show the NHS number (a constraint's error would show the row)
SELECT state, message, hint, echoes FROM pg_temp.refusal($$caredata.record_objection('999 000 0018', 'type1', 'test')$$, '999 000 0018');
SELECT state, message, hint, echoes FROM pg_temp.refusal($$caredata.record_objection('999 000 0018', 'dissent', 'test')$$, '999 000 0018');
SELECT state, message, echoes FROM pg_temp.refusal($$caredata.record_objection('999 000 0018', 'research_ban', 'test')$$, '999 000 0018');
SELECT state, message, echoes FROM pg_temp.refusal($$caredata.record_objection('999 000 0018', 'type1', 'test', now(), NULL, ARRAY['marketing'])$$, '999 000 0018');
SELECT state, message, echoes FROM pg_temp.refusal($$caredata.record_objection('999 000 0018', 'type1', NULL)$$, '999 000 0018');
SELECT id AS open_id FROM objection WHERE nhs_number = '999 000 0018' AND withdrawn_at IS NULL \gset
SELECT state, message, hint, echoes FROM pg_temp.refusal(format('caredata.withdraw_objection(%s, %L)', :open_id, '2024-01-01'), '999 000 0018');
SELECT state, message, hint FROM pg_temp.refusal($$caredata.withdraw_objection(999999)$$);
SELECT state, message, hint FROM pg_temp.refusal($$caredata.permitted('999 000 0018', 'marketing')$$);
SELECT permitted(NULL, 'research') AS unknown_patient;
SELECT state, message FROM pg_temp.refusal($$caredata.permitted('999 000 0018', NULL)$$);

-- a National Data Opt-out snapshot feed: raw text as delivered
CREATE TABLE feed (nhs_number text);
INSERT INTO feed VALUES ('9990000018'), ('999 000 0026'), ('999-000-0034'), ('9990000042'),
  ('9990000042'),            -- duplicate
  ('9990000043'),            -- bad check digit
  ('not a number'), (NULL);  -- invalid and missing
SELECT * FROM apply_opt_out_snapshot('feed', 'nhs_number', 'ndop', '2025-02-01');
SELECT count(*) FILTER (WHERE withdrawn_at IS NULL) AS open_ndoo FROM objection WHERE kind = 'national_data_opt_out';
-- the next snapshot: one gone, one new, the rest unchanged
DELETE FROM feed WHERE nhs_number = '999 000 0026';
INSERT INTO feed VALUES ('9990000050');
SELECT * FROM apply_opt_out_snapshot('feed', 'nhs_number', 'ndop', '2025-03-01');
SELECT nhs_number, effective_from, withdrawn_at FROM objection
WHERE kind = 'national_data_opt_out' AND source = 'ndop' ORDER BY nhs_number, effective_from;
-- applying the same snapshot again changes nothing
SELECT * FROM apply_opt_out_snapshot('feed', 'nhs_number', 'ndop', '2025-04-01');
-- bad feeds: invalid rows abort only when asked; an empty feed is refused
SELECT state, message, hint FROM pg_temp.refusal($$caredata.apply_opt_out_snapshot('feed', 'nhs_number', 'ndop', '2025-05-01', abort_on_invalid => true)$$);
CREATE TABLE empty_feed (nhs_number text);
-- a delivery of nothing but invalid numbers (a header row, the wrong column)
-- is refused like an empty one: applying it would withdraw every opt-out
CREATE TABLE junk_feed AS SELECT unnest(ARRAY['NHS_NUMBER', '1234567890', '']) AS nhs_number;
SELECT state, message, detail, hint FROM pg_temp.refusal($$caredata.apply_opt_out_snapshot('junk_feed', source => 'ndop')$$);
DROP TABLE junk_feed;
SELECT state, message, detail FROM pg_temp.refusal($$caredata.apply_opt_out_snapshot('empty_feed')$$);
SELECT count(*) FILTER (WHERE withdrawn_at IS NULL) AS still_open FROM objection WHERE source = 'ndop';
SELECT feed, source, rows_read, invalid, duplicates, opened, withdrawn, unchanged FROM feed_load ORDER BY id;

-- Type 1 codes in a GP extract: the latest code per patient decides
CREATE TABLE gp_codes (nhs_number text, code text, recorded_at date);
INSERT INTO type1_code VALUES ('LOCALWD', 'local', 'withdrawn', 'local withdrawal code');
INSERT INTO gp_codes VALUES
  ('9990000069', '827241000000103', '2024-01-10'),
  ('9990000077', '9Nu0.', '2024-02-01'),
  ('9990000077', 'LOCALWD', '2024-05-01'),
  ('9990000085', 'LOCALWD', '2023-01-01'),
  ('9990000085', '9Nu0', '2024-03-01'),
  ('9990000093', 'XYZ', '2024-03-01'),
  ('bad', '9Nu0.', '2024-03-01');
SELECT * FROM apply_type1_codes('gp_codes');
SELECT nhs_number, effective_from::date, withdrawn_at::date FROM objection WHERE kind = 'type1' AND source = 'gp_extract'
ORDER BY nhs_number;
SELECT n, permitted(n::nhs_number, 'research', '2024-06-01') AS research, permitted(n::nhs_number, 'direct_care', '2024-06-01') AS direct_care
FROM unnest(ARRAY['9990000069', '9990000077', '9990000085']) n;

-- exemptions: explicit, with a legal basis, announced and kept
SELECT record_objection('999 000 0107', 'national_data_opt_out', 'test', '2025-01-01') IS NOT NULL AS recorded;
SELECT permitted('999 000 0107', 'research', '2025-06-01', 'covid_study') AS before_exemption;
SELECT grant_exemption('covid_study', 'research', 'national_data_opt_out', 'legal_requirement', 'COPI notice 2020') AS ex \gset
SELECT permitted('999 000 0107', 'research', now(), 'covid_study') AS exempted,
       permitted('999 000 0107', 'research', now(), 'other_study') AS other_dataset,
       permitted('999 000 0107', 'planning', now(), 'covid_study') AS other_purpose;
SELECT revoke_exemption(:ex);
SELECT permitted('999 000 0107', 'research', now(), 'covid_study') AS after_revocation;
SELECT dataset, purpose, objection_kind, legal_basis, reference, revoked_at IS NOT NULL AS revoked FROM exemption;
SELECT state, message FROM pg_temp.refusal($$caredata.grant_exemption('x', 'research', 'national_data_opt_out', 'because', 'ref')$$);

-- dissent from and consent to a named study
SELECT record_objection('999 000 0115', 'dissent', 'test', '2025-01-01', 'study_a') IS NOT NULL AS recorded;
SELECT permitted('999 000 0115', 'research', '2025-06-01', 'study_a') AS study_a,
       permitted('999 000 0115', 'research', '2025-06-01', 'study_b') AS study_b;
SELECT record_objection('999 000 0123', 'national_data_opt_out', 'test', '2025-01-01') IS NOT NULL AS recorded;
SELECT record_objection('999 000 0123', 'consent', 'test', '2025-02-01', 'study_a') IS NOT NULL AS recorded;
SELECT permitted('999 000 0123', 'research', '2025-06-01', 'study_a') AS consented_study,
       permitted('999 000 0123', 'research', '2025-06-01', 'study_b') AS other_study,
       permitted('999 000 0123', 'research', '2025-01-15', 'study_a') AS before_consent;

-- the purpose is compared by value unless it is a constant of the plan: a
-- computed purpose (rebuilt at the same address row after row) or a
-- PL/pgSQL variable never gets the answer for another purpose
SELECT record_objection('999 000 0131', 'national_data_opt_out', 'test', now() - interval '1 day') IS NOT NULL AS recorded;
SELECT p, permitted('999 000 0131', lower(p)) AS permitted, row_permitted('999 000 0131', lower(p)) AS row_permitted
FROM unnest(ARRAY['DIRECT_CARE', 'RESEARCH', 'DIRECT_CARE', 'PLANNING', 'DIRECT_CARE']) WITH ORDINALITY u(p, i) ORDER BY i;
DO $$
DECLARE
  p text;
  got text := '';
BEGIN
  FOREACH p IN ARRAY ARRAY['direct_care', 'research', 'direct_care', 'commissioning'] LOOP
    got := got || p || '=' || caredata.permitted('999 000 0131', p) || ' ';
  END LOOP;
  RAISE NOTICE '%', got;
END $$;

-- Type 1 extracts, badly formed: the same event twice, an undated row, a
-- withdrawal by the national code, an empty extract, abort on request
CREATE TABLE gp_codes2 (nhs_number text, code text, recorded_at date);
INSERT INTO gp_codes2 VALUES
  ('9990000069', '827241000000103', '2024-01-10'),   -- already open: unchanged
  ('9990000069', '827241000000103', '2024-01-10'),   -- the same event again
  ('9990000107', '9Nu0.', NULL),                     -- no date: reported, skipped
  ('9990000085', '9Nu1.', '2024-08-01'),             -- withdrawal, Read v2
  ('9990000115', '827241000000103', '2024-04-01'),
  ('9990000115', '827261000000102', '2024-06-01');   -- dissent, then withdrawn: SNOMED
SELECT * FROM apply_type1_codes('gp_codes2');
SELECT invalid, duplicates, opened, withdrawn, unchanged FROM feed_load ORDER BY id DESC LIMIT 1;
SELECT nhs_number, withdrawn_at FROM objection
WHERE kind = 'type1' AND nhs_number IN ('999 000 0085', '999 000 0115') ORDER BY nhs_number, id;
SELECT permitted('999 000 0085', 'research', '2024-09-01') AS withdrawn_by_9Nu1,
       permitted('999 000 0115', 'research', '2024-05-01') AS during_recorded_dissent,
       permitted('999 000 0115', 'research', '2024-09-01') AS withdrawn_by_snomed;
SELECT state, message, hint FROM pg_temp.refusal($$caredata.apply_type1_codes('gp_codes2', abort_on_invalid => true)$$);
TRUNCATE gp_codes2;
SELECT * FROM apply_type1_codes('gp_codes2');
DROP TABLE gp_codes2;

-- history cannot be rewritten, not even by caredata_admin: who and when
-- are the server's, and the only change is ending a row, once
CREATE ROLE regress_admin NOLOGIN IN ROLE caredata_admin;
SET ROLE regress_admin;
SELECT state FROM pg_temp.refusal($$1; INSERT INTO caredata.objection (nhs_number, kind, purposes, effective_from, source, recorded_at, recorded_by)
  VALUES ('999 000 0166', 'national_data_opt_out', '{research}', '2025-01-01', 'by hand', '2000-01-01', 'someone_else')$$);
SELECT state FROM pg_temp.refusal($$1; INSERT INTO caredata.exemption (dataset, purpose, objection_kind, legal_basis, reference, granted_at)
  VALUES ('x', 'research', 'type1', 'consent', 'x', '2000-01-01')$$);
INSERT INTO objection (nhs_number, kind, purposes, effective_from, source)
VALUES ('999 000 0166', 'national_data_opt_out', '{research}', '2025-01-01', 'by hand')
RETURNING recorded_at > now() - interval '1 hour' AS recorded_now, recorded_by;
SELECT id AS hand_id FROM objection WHERE nhs_number = '999 000 0166' \gset
SELECT state FROM pg_temp.refusal(format($$1; UPDATE caredata.objection SET effective_from = '2026-01-01' WHERE id = %s$$, :hand_id));
SELECT state FROM pg_temp.refusal(format($$1; UPDATE caredata.objection SET purposes = '{planning}' WHERE id = %s$$, :hand_id));
SELECT withdraw_objection(:hand_id, '2025-03-01');
SELECT state, message, detail, hint FROM pg_temp.refusal(format($$1; UPDATE caredata.objection SET withdrawn_at = NULL WHERE id = %s$$, :hand_id));
-- (the trigger, in C, holds for the table's owner too: a withdrawal that
-- changes anything else, a second withdrawal, a value written back the same
-- (every column compared as stored), an exemption's revoker chosen by hand)
RESET ROLE;
\set VERBOSITY terse
SELECT id AS open_id FROM caredata.objection WHERE withdrawn_at IS NULL ORDER BY id LIMIT 1 \gset
UPDATE caredata.objection SET withdrawn_at = now(), source = 'other' WHERE id = :open_id;
UPDATE caredata.objection SET withdrawn_at = now(), purposes = ARRAY['research'] WHERE id = :open_id;
UPDATE caredata.objection SET purposes = purposes WHERE id = :open_id;
UPDATE caredata.objection SET withdrawn_at = withdrawn_at WHERE id = :hand_id;
SELECT grant_exemption('history_ds', 'research', 'national_data_opt_out', 'consent', 'REC 25/LO/0002') AS hex \gset
UPDATE caredata.exemption SET revoked_at = now(), revoked_by = 'someone_else' WHERE id = :hex;
UPDATE caredata.exemption SET revoked_at = now() WHERE id = :hex;
SELECT revoked_by = current_user AS revoked_by_the_server FROM caredata.exemption WHERE id = :hex;
\set VERBOSITY default
SELECT count(*) AS still_open FROM caredata.objection WHERE id = :open_id AND withdrawn_at IS NULL;
SET ROLE regress_admin;
SELECT state FROM pg_temp.refusal(format($$1; UPDATE caredata.objection SET withdrawn_at = '2025-04-01' WHERE id = %s$$, :hand_id));
SELECT state FROM pg_temp.refusal(format($$1; DELETE FROM caredata.objection WHERE id = %s$$, :hand_id));
-- exemptions: granted_by/at are the server's; revoking records who; no revival
SELECT grant_exemption('audit_ds', 'research', 'national_data_opt_out', 'consent', 'REC 25/LO/0001') AS aex \gset
SELECT granted_by, granted_at > now() - interval '1 hour' AS granted_now FROM exemption WHERE id = :aex;
SELECT state FROM pg_temp.refusal(format($$1; UPDATE caredata.exemption SET granted_at = '2020-01-01' WHERE id = %s$$, :aex));
SELECT state FROM pg_temp.refusal(format($$1; UPDATE caredata.exemption SET legal_basis = 'legal_requirement' WHERE id = %s$$, :aex));
SELECT revoke_exemption(:aex);
SELECT revoked_by, revoked_at IS NOT NULL AS revoked FROM exemption WHERE id = :aex;
SELECT state FROM pg_temp.refusal(format($$1; UPDATE caredata.exemption SET revoked_at = NULL WHERE id = %s$$, :aex));
RESET ROLE;
-- an exemption that expires applies until then, and not after
SELECT record_objection('999 000 0174', 'national_data_opt_out', 'test', '2025-01-01') IS NOT NULL AS recorded;
SELECT grant_exemption('exp_ds', 'research', 'national_data_opt_out', 'cag_section_251', 'CAG 25/CAG/0002', now() + interval '1 day') AS eex \gset
SELECT permitted('999 000 0174', 'research', now(), 'exp_ds') AS before_expiry,
       permitted('999 000 0174', 'research', now() + interval '2 days', 'exp_ds') AS after_expiry,
       permitted('999 000 0174', 'research', now() - interval '1 day', 'exp_ds') AS before_grant;

-- an exemption lifts only the objection kind it names: a Type 1 objector
-- stays blocked in a dataset exempted from the National Data Opt-out
SELECT record_objection('999 000 0190', 'type1', 'test', '2025-01-01') IS NOT NULL AS recorded;
SELECT grant_exemption('kind_ds', 'research', 'national_data_opt_out', 'legal_requirement', 'ref') IS NOT NULL AS granted;
SELECT permitted('999 000 0174', 'research', now(), 'kind_ds') AS ndoo_exempted,
       permitted('999 000 0190', 'research', now(), 'kind_ds') AS type1_not_exempted,
       permitted('999 000 0174', 'planning', now(), 'kind_ds') AS other_purpose;
-- consent lifts the other kinds for its study only while it is in force
SELECT id AS consent_id FROM objection WHERE nhs_number = '999 000 0123' AND kind = 'consent' \gset
SELECT withdraw_objection(:consent_id, '2025-03-01');
SELECT permitted('999 000 0123', 'research', '2025-02-15', 'study_a') AS consent_in_force,
       permitted('999 000 0123', 'research', '2025-06-01', 'study_a') AS consent_withdrawn;

-- subject access is by role, not by name: a role created under a dropped
-- patient's name does not inherit their records
CREATE ROLE regress_pat NOLOGIN IN ROLE caredata_patient;
INSERT INTO subject_access (role, nhs_number) VALUES ('regress_pat', '999 000 0182');
SET ROLE regress_pat;
SELECT my_nhs_number() AS own_number;
RESET ROLE;
DROP ROLE regress_pat;
CREATE ROLE regress_pat NOLOGIN IN ROLE caredata_patient;
SET ROLE regress_pat;
SELECT my_nhs_number() AS new_role_number;
RESET ROLE;
DELETE FROM subject_access WHERE role::oid NOT IN (SELECT oid FROM pg_roles);
DROP ROLE regress_pat, regress_admin;

DROP TABLE feed, empty_feed, gp_codes;
DROP EXTENSION caredata;
