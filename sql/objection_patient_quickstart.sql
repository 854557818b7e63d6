-- objection_patient_quickstart: the "Quick start: a patient shares their
-- records" block of docs/user-guide.md, extracted from the doc and run as
-- is (its roles renamed regress_*), so the doc never goes stale
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
\set ECHO none
\i test/synthetic/generate.sql
\set ECHO all
SELECT count(*) > 0 AS generated FROM synth.generate(20000, 42);
\! mkdir -p results && scripts/doc-sql.sh docs/user-guide.md quickstart 'Quick start: a patient shares their records' | sed 's/\bguide_patient\b/regress_guide_patient/g; s/\bguide_carer\b/regress_guide_carer/g' > results/objection_patient_quickstart_block.sql
\i results/objection_patient_quickstart_block.sql
-- the row the block ends with is the patient's own row count, 0 and 0
SET ROLE regress_guide_patient;
SELECT count(*) AS patient_sees_own_rows FROM patient_hes;
RESET ROLE;
SELECT (SELECT count(*) FROM carer_saw WHERE step = 'shared') =
       (SELECT count(*) FROM patient_hes p, caredata.subject_access a
         WHERE a.role = 'regress_guide_patient'::regrole AND p.nhs_number::text = a.nhs_number::text) AS carer_saw_all_of_them;
-- each step audited once
SELECT action, count(*) FROM caredata.audit_log
 WHERE action LIKE 'share.%'
   AND object IN (SELECT id::text FROM caredata.patient_share WHERE grantee = 'regress_guide_carer'::regrole)
 GROUP BY action ORDER BY action;
-- the doc's closing block removes what the quick start made
DROP TABLE carer_saw;
DELETE FROM caredata.subject_access WHERE role = 'regress_guide_patient'::regrole;
SELECT caredata.unprotect('patient_hes');
DROP TABLE patient_hes;
DROP ROLE regress_guide_patient, regress_guide_carer;
