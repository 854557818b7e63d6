-- sql/objection_hardening.sql: the attacks that got past the objection
-- filter (issue 13), each replayed as the role that made it, each now
-- refused.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS caredata CASCADE;
CREATE EXTENSION caredata;
RESET client_min_messages;
SET search_path = public, caredata;
\i sql/include/refusal.psql

CREATE ROLE regress_h_owner NOLOGIN IN ROLE caredata_admin;
GRANT CREATE ON SCHEMA public TO regress_h_owner;
CREATE ROLE regress_h_analyst NOLOGIN IN ROLE caredata_analyst;
CREATE ROLE regress_h_patient NOLOGIN IN ROLE caredata_patient;
CREATE ROLE regress_h_viewer NOLOGIN;

-- four patients with two episodes each, two rows with no NHS number; two
-- patients have opted out; the patient role is 999 000 0042
SET ROLE regress_h_owner;
CREATE TABLE h_episode (id int, nhs_number nhs_number, specialty text, cost int);
INSERT INTO h_episode
SELECT row_number() OVER (), n::nhs_number, s, 100
FROM unnest(ARRAY['999 000 0018', '999 000 0026', '999 000 0034', '999 000 0042']) n,
     unnest(ARRAY['100', '300']) s;
INSERT INTO h_episode VALUES (9, NULL, '100', 100), (10, NULL, '300', 100);
RESET ROLE;
SELECT record_objection('999 000 0026', 'national_data_opt_out', 'test', now() - interval '1 day') IS NOT NULL,
       record_objection('999 000 0034', 'type1', 'test', now() - interval '1 day') IS NOT NULL;
INSERT INTO subject_access (role, nhs_number) VALUES ('regress_h_patient', '999 000 0042');
SET ROLE regress_h_owner;
SELECT protect('h_episode', 'nhs_number', 'research');
GRANT SELECT, UPDATE, DELETE ON h_episode TO regress_h_analyst, regress_h_patient;

-- 1. rows with a NULL NHS number are nobody's own: a patient sees none of
-- them, directly or through a view owned by a role that is not a patient
CREATE VIEW h_by_viewer AS SELECT * FROM h_episode;
RESET ROLE;
ALTER VIEW h_by_viewer OWNER TO regress_h_viewer;
GRANT SELECT ON h_episode TO regress_h_viewer;
GRANT SELECT ON h_by_viewer TO regress_h_patient;
SET ROLE regress_h_patient;
SELECT count(*) AS own_rows, count(*) FILTER (WHERE nhs_number IS NULL) AS null_rows FROM h_episode;
SELECT count(*) AS via_view, count(*) FILTER (WHERE nhs_number IS NULL) AS null_rows_via_view FROM h_by_viewer;
SELECT count(*) AS asked_for_nulls FROM h_by_viewer WHERE nhs_number IS NULL;
RESET ROLE;
-- an analyst still sees rows without a number (no objection can be attached to them)
SET ROLE regress_h_analyst;
SELECT count(*) AS analyst_rows, count(*) FILTER (WHERE nhs_number IS NULL) AS null_rows FROM h_episode;
RESET ROLE;

-- 2. rows the filter hides can be neither updated nor deleted, even
-- without naming a column; RETURNING returns none of them
SET ROLE regress_h_analyst;
BEGIN;
WITH u AS (UPDATE h_episode SET cost = 0 RETURNING nhs_number) SELECT count(*) AS updated, count(DISTINCT nhs_number) AS patients FROM u;
UPDATE h_episode SET cost = 1 WHERE nhs_number = '999 000 0026' RETURNING id;
DELETE FROM h_episode WHERE nhs_number IN ('999 000 0026', '999 000 0034') RETURNING id;
WITH d AS (DELETE FROM h_episode RETURNING 1) SELECT count(*) AS deleted FROM d;
ROLLBACK;
RESET ROLE;
SET ROLE regress_h_patient;
BEGIN;
WITH u AS (UPDATE h_episode SET cost = 0 RETURNING id) SELECT count(*) AS patient_updated FROM u;
DELETE FROM h_episode RETURNING id;
ROLLBACK;
RESET ROLE;
-- the hidden rows are untouched
SELECT nhs_number, count(*), sum(cost) FROM h_episode WHERE nhs_number IN ('999 000 0026', '999 000 0034') GROUP BY 1 ORDER BY 1;
-- loading new rows is not filtered: the owner adds an objector's episode
SET ROLE regress_h_owner;
INSERT INTO h_episode VALUES (11, '999 000 0026', '100', 100);
RESET ROLE;
SELECT count(*) AS objector_rows_loaded FROM h_episode WHERE nhs_number = '999 000 0026';
