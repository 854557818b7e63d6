-- sql/objection_patient_share.sql: a patient shares their own records
-- (issue 29, section 1), tried as the patient, the grantee, another
-- patient, another grantee, an analyst and the admin: scope, expiry,
-- revocation, no third party ever visible, reads audited (and only once
-- the audit entry is committed), rolled-back grants and openings, free
-- arguments, a hostile search_path.
-- (a suite before may leave the extension installed: start afresh)
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS caredata CASCADE;
CREATE EXTENSION caredata;
RESET client_min_messages;
SET search_path = public, caredata;
\i sql/include/refusal.psql

CREATE ROLE regress_ps_owner NOLOGIN IN ROLE caredata_admin;
GRANT CREATE ON SCHEMA public TO regress_ps_owner;
CREATE ROLE regress_ps_patient NOLOGIN IN ROLE caredata_patient;
CREATE ROLE regress_ps_patient2 NOLOGIN IN ROLE caredata_patient;
CREATE ROLE regress_ps_carer NOLOGIN IN ROLE caredata_grantee;
CREATE ROLE regress_ps_carer2 NOLOGIN IN ROLE caredata_grantee;
CREATE ROLE regress_ps_analyst NOLOGIN IN ROLE caredata_analyst;
CREATE ROLE regress_ps_nobody NOLOGIN;

-- four patients, two episodes each; 0018 (the patient) and 0026 have opted out
CREATE TABLE ps_episode (id int, nhs_number nhs_number, provider text);
INSERT INTO ps_episode
SELECT row_number() OVER (), n::nhs_number, p
FROM unnest(ARRAY['999 000 0018', '999 000 0026', '999 000 0034', '999 000 0042']) n,
     unnest(ARRAY['RAA', 'RBB']) p;
CREATE TABLE ps_study (id int, nhs_number nhs_number);
INSERT INTO ps_study SELECT id, nhs_number FROM ps_episode;
CREATE TABLE ps_gp (id int, nhs_number nhs_number);
INSERT INTO ps_gp SELECT id, nhs_number FROM ps_episode;
ALTER TABLE ps_episode OWNER TO regress_ps_owner;
ALTER TABLE ps_study OWNER TO regress_ps_owner;
ALTER TABLE ps_gp OWNER TO regress_ps_owner;
GRANT SELECT ON ps_episode, ps_study TO caredata_patient, caredata_grantee, regress_ps_analyst;
GRANT SELECT ON ps_gp TO caredata_grantee;   -- patients may not read ps_gp
SELECT record_objection('999 000 0018', 'national_data_opt_out', 'test', now() - interval '1 day') IS NOT NULL,
       record_objection('999 000 0026', 'national_data_opt_out', 'test', now() - interval '1 day') IS NOT NULL;
INSERT INTO subject_access (role, nhs_number) VALUES ('regress_ps_patient', '999 000 0018'),
                                                    ('regress_ps_patient2', '999 000 0034');
SET ROLE regress_ps_owner;
SELECT protect('ps_episode', 'nhs_number', 'research');
SELECT protect('ps_study', 'nhs_number', 'research', 'study_x');
SELECT protect('ps_gp', 'nhs_number', 'research');
RESET ROLE;

-- before any grant: a grantee sees nothing, an analyst the rows not opted out
SET ROLE regress_ps_carer;
SELECT count(*) AS carer_rows FROM ps_episode;
SET ROLE regress_ps_analyst;
SELECT count(*) AS analyst_rows, string_agg(DISTINCT nhs_number::text, ', ') AS patients FROM ps_episode;
RESET ROLE;

-- a grant is refused unless it is a patient's, for what they may read
SET ROLE regress_ps_analyst;
SELECT state, message FROM pg_temp.refusal($$caredata.share_my_records('regress_ps_carer', 'care', now() + interval '1 day', ARRAY['ps_episode']::regclass[])$$);
SET ROLE regress_ps_carer;
SELECT state, message FROM pg_temp.refusal($$caredata.share_my_records('regress_ps_carer2', 'care', now() + interval '1 day', ARRAY['ps_episode']::regclass[])$$);
SELECT state, message FROM pg_temp.refusal($$caredata.my_shares()$$);
SET ROLE regress_ps_patient;
SELECT state, message FROM pg_temp.refusal($$caredata.share_my_records('regress_ps_carer', 'care', now() + interval '1 day', ARRAY['ps_gp']::regclass[])$$);
SELECT state, message FROM pg_temp.refusal($$caredata.share_my_records('regress_ps_carer', 'care', now() + interval '1 day', datasets => ARRAY['no_such_dataset'])$$);
SELECT state, message FROM pg_temp.refusal($$caredata.share_my_records('regress_ps_carer', 'care', now() - interval '1 day', ARRAY['ps_episode']::regclass[])$$);
SELECT state, message FROM pg_temp.refusal($$caredata.share_my_records('regress_ps_carer', 'care', now() + interval '1 day')$$);
SELECT state, message FROM pg_temp.refusal($$caredata.share_my_records('regress_ps_patient2', 'care', now() + interval '1 day', ARRAY['ps_episode']::regclass[])$$);
SELECT state, message FROM pg_temp.refusal($$caredata.share_my_records('regress_ps_patient', 'care', now() + interval '1 day', ARRAY['ps_episode']::regclass[])$$);
SELECT state, message FROM pg_temp.refusal($$caredata.share_my_records('postgres', 'care', now() + interval '1 day', ARRAY['ps_episode']::regclass[])$$);
SELECT state, message FROM pg_temp.refusal($$caredata.share_my_records('regress_ps_carer', ' ', now() + interval '1 day', ARRAY['ps_episode']::regclass[])$$);
-- no table or function of the share is open to a patient otherwise
SELECT state FROM pg_temp.refusal($$count(*) FROM caredata.patient_share$$);
SELECT state FROM pg_temp.refusal($$count(*) FROM caredata.patient_share_use$$);
SELECT state FROM pg_temp.refusal($$count(*) FROM caredata.audit_log$$);
RESET ROLE;

-- a rolled-back grant leaves nothing: no row, no audit entry, nothing seen
SET ROLE regress_ps_patient;
BEGIN;
SELECT share_my_records('regress_ps_carer', 'carer, rolled back', now() + interval '1 day', ARRAY['ps_episode']::regclass[]) IS NOT NULL AS granted;
ROLLBACK;
RESET ROLE;
SELECT count(*) AS grants, (SELECT count(*) FROM audit_log WHERE action LIKE 'share.%') AS share_entries FROM patient_share;

-- the patient shares ps_episode with the carer
SET ROLE regress_ps_patient;
SELECT share_my_records('regress_ps_carer', 'my daughter helps with my appointments',
                        now() + interval '1 day', ARRAY['ps_episode']::regclass[]) AS share_id;
SELECT id, grantee, tables, datasets, reason, in_force, sessions FROM my_shares();
-- the patient's own view is unchanged
SELECT count(*) AS own_rows, string_agg(DISTINCT nhs_number::text, ', ') AS patients FROM ps_episode;
RESET ROLE;

-- the grantee sees nothing until it opens the grant in a committed
-- transaction: an opening in the reading transaction, or rolled back, is
-- not enough (and a rolled-back opening leaves no audit entry)
SET ROLE regress_ps_carer;
SELECT count(*) AS before_opening FROM ps_episode;
BEGIN;
SELECT share_id, tables, datasets FROM open_shared_records();
SELECT count(*) AS opened_in_this_transaction FROM ps_episode;
ROLLBACK;
RESET ROLE;
SELECT count(*) AS reads_audited_after_rollback FROM audit_log WHERE action = 'share.read';
SET ROLE regress_ps_carer;
SELECT share_id, tables, datasets FROM open_shared_records();
-- now: the patient's rows, whatever their opt-out, and no one else's, on every path
SELECT count(*) AS carer_rows, string_agg(DISTINCT nhs_number::text, ', ') AS patients FROM ps_episode;
SELECT count(*) AS asked_for_another FROM ps_episode WHERE nhs_number = '999 000 0042';
COPY (SELECT nhs_number, provider FROM ps_episode ORDER BY id) TO STDOUT;
BEGIN;
DECLARE c CURSOR FOR SELECT nhs_number FROM ps_episode ORDER BY id;
FETCH ALL FROM c;
COMMIT;
-- in a parallel worker too (the grant was opened by the leader's session)
-- (force_parallel_mode; debug_parallel_query from PostgreSQL 16 on)
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 'debug_parallel_query'
                       ELSE 'force_parallel_mode' END, 'on', false) AS parallel_forced;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SELECT count(*) AS carer_rows_in_parallel, string_agg(DISTINCT nhs_number::text, ', ') AS patients FROM ps_episode;
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 'debug_parallel_query'
                       ELSE 'force_parallel_mode' END, 'off', false) AS parallel_not_forced;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
-- not the tables the grant does not name
SELECT count(*) AS study_rows FROM ps_study;
SELECT count(*) AS gp_rows FROM ps_gp;
-- opening again in the same session adds no audit entry
SELECT count(*) AS opened FROM open_shared_records();
RESET ROLE;
SELECT count(*) AS reads_audited FROM audit_log WHERE action = 'share.read';
-- another grantee, another patient, an analyst: nothing more than before
SET ROLE regress_ps_carer2;
SELECT count(*) AS open_for_carer2 FROM open_shared_records();
SELECT count(*) AS carer2_rows FROM ps_episode;
SET ROLE regress_ps_patient2;
SELECT count(*) AS patient2_rows, string_agg(DISTINCT nhs_number::text, ', ') AS patients FROM ps_episode;
SET ROLE regress_ps_analyst;
SELECT count(*) AS analyst_rows FROM ps_episode;
RESET ROLE;

-- a dataset grant from the second patient, opened: the carer sees both
SET ROLE regress_ps_patient2;
SELECT share_my_records('regress_ps_carer', 'research study I joined', now() + interval '1 day',
                        datasets => ARRAY['study_x']) AS share_id;
SET ROLE regress_ps_carer;
SELECT count(*) AS study_rows_unopened FROM ps_study;
SELECT share_id, tables, datasets FROM open_shared_records() ORDER BY share_id;
SELECT count(*) AS study_rows, string_agg(DISTINCT nhs_number::text, ', ') AS patients FROM ps_study;
SELECT count(*) AS episode_rows, string_agg(DISTINCT nhs_number::text, ', ') AS patients FROM ps_episode;
RESET ROLE;

-- a grant to an analyst: alongside what it sees, the patient's rows
SET ROLE regress_ps_patient;
SELECT share_my_records('regress_ps_analyst', 'a researcher I chose', now() + interval '1 day',
                        ARRAY['ps_episode']::regclass[]) AS share_id;
SET ROLE regress_ps_analyst;
SELECT count(*) AS opened FROM open_shared_records();
SELECT count(*) AS analyst_rows, string_agg(DISTINCT nhs_number::text, ', ') AS patients FROM ps_episode;
RESET ROLE;

-- revocation: only by its patient; the grantee sees nothing from its next statement
SET ROLE regress_ps_patient2;
SELECT state, message FROM pg_temp.refusal($$caredata.revoke_my_share(2)$$);
SET ROLE regress_ps_carer;
SELECT state, message FROM pg_temp.refusal($$caredata.revoke_my_share(2)$$);
SET ROLE regress_ps_patient;
SELECT revoke_my_share(2);
SELECT state, message FROM pg_temp.refusal($$caredata.revoke_my_share(2)$$);
SELECT id, grantee, in_force, sessions, revoked_at IS NOT NULL AS revoked FROM my_shares();
SET ROLE regress_ps_carer;
SELECT count(*) AS after_revoke, string_agg(DISTINCT nhs_number::text, ', ') AS patients FROM ps_episode;
RESET ROLE;
-- history is kept
UPDATE caredata.patient_share SET expires_at = now() + interval '9 days' WHERE id = 2;
DELETE FROM caredata.patient_share WHERE id = 2;

-- expiry is checked at each statement's start, not by a job
SET ROLE regress_ps_patient;
SELECT share_my_records('regress_ps_carer2', 'for one second', clock_timestamp() + interval '1 second',
                        ARRAY['ps_episode']::regclass[]) AS share_id;
SET ROLE regress_ps_carer2;
SELECT count(*) AS opened FROM open_shared_records();
SELECT count(*) AS before_expiry FROM ps_episode;
SELECT pg_sleep(1.2);
SELECT count(*) AS after_expiry FROM ps_episode;
RESET ROLE;

-- a patient who may no longer read the table shares nothing of it
REVOKE SELECT ON ps_study FROM caredata_patient;
SET ROLE regress_ps_carer;
SELECT count(*) AS study_rows_after_patient_lost_access FROM ps_study;
RESET ROLE;
GRANT SELECT ON ps_study TO caredata_patient;

-- the patient's audit: their grants' entries only
SET ROLE regress_ps_patient;
SELECT action, share_id, detail->>'grantee' AS grantee FROM my_share_audit();
SET ROLE regress_ps_patient2;
SELECT action, share_id, detail->>'grantee' AS grantee FROM my_share_audit();
RESET ROLE;
SELECT audit_verify() AS chain_intact;
-- the audit never holds an NHS number
SELECT count(*) AS entries_naming_a_number FROM audit_log
 WHERE detail::text ~ '999 ?000 ?00' OR coalesce(justification, '') ~ '999 ?000 ?00';

-- a hostile search_path reaches none of it: every name the functions use,
-- shadowed in a schema first on the path, would record its use
CREATE SCHEMA regress_ps_evil;
GRANT USAGE ON SCHEMA regress_ps_evil TO PUBLIC;
CREATE TABLE regress_ps_evil.trap (what text);
GRANT INSERT ON regress_ps_evil.trap TO PUBLIC;
CREATE FUNCTION regress_ps_evil.now() RETURNS timestamptz LANGUAGE sql AS
  $$ INSERT INTO regress_ps_evil.trap VALUES ('now'); SELECT pg_catalog.now() $$;
CREATE FUNCTION regress_ps_evil.btrim(text) RETURNS text LANGUAGE sql AS
  $$ INSERT INTO regress_ps_evil.trap VALUES ('btrim'); SELECT pg_catalog.btrim($1) $$;
CREATE FUNCTION regress_ps_evil.current_setting(text) RETURNS text LANGUAGE sql AS
  $$ INSERT INTO regress_ps_evil.trap VALUES ('current_setting'); SELECT 'regress_ps_patient2' $$;
CREATE FUNCTION regress_ps_evil.oideq(oid, oid) RETURNS boolean LANGUAGE sql AS
  $$ INSERT INTO regress_ps_evil.trap VALUES ('oid ='); SELECT $1 OPERATOR(pg_catalog.=) $2 $$;
CREATE OPERATOR regress_ps_evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = regress_ps_evil.oideq);
CREATE FUNCTION regress_ps_evil.texteq(text, text) RETURNS boolean LANGUAGE sql AS
  $$ INSERT INTO regress_ps_evil.trap VALUES ('text ='); SELECT $1 OPERATOR(pg_catalog.=) $2 $$;
CREATE OPERATOR regress_ps_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_ps_evil.texteq);
CREATE FUNCTION regress_ps_evil.int8eq(int8, int8) RETURNS boolean LANGUAGE sql AS
  $$ INSERT INTO regress_ps_evil.trap VALUES ('int8 ='); SELECT $1 OPERATOR(pg_catalog.=) $2 $$;
CREATE OPERATOR regress_ps_evil.= (LEFTARG = int8, RIGHTARG = int8, FUNCTION = regress_ps_evil.int8eq);
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA regress_ps_evil TO PUBLIC;
SET ROLE regress_ps_patient;
SET search_path = regress_ps_evil, pg_catalog, public, caredata;
SELECT caredata.share_my_records('regress_ps_carer', 'evil path', pg_catalog.now() + interval '1 day',
                                 ARRAY['ps_episode']::regclass[]) AS share_id;
SELECT count(*) AS shares FROM caredata.my_shares();
SELECT count(*) AS entries FROM caredata.my_share_audit();
SELECT count(*) AS own_rows FROM public.ps_episode;
SET ROLE regress_ps_carer;
SELECT count(*) AS opened FROM caredata.open_shared_records();
SELECT count(*) AS carer_rows FROM public.ps_episode;
SET ROLE regress_ps_patient;
SELECT caredata.revoke_my_share(6);
SET ROLE regress_ps_carer;
SELECT count(*) AS carer_rows_after_revoke FROM public.ps_episode;
RESET ROLE;
SET search_path = public, caredata;
SELECT count(*) AS traps_fired, string_agg(DISTINCT what, ', ') AS which FROM regress_ps_evil.trap;
DROP SCHEMA regress_ps_evil CASCADE;

-- the admin reads the grants (the register's owner reads the register)
SET ROLE regress_ps_owner;
SELECT id, grantor, grantee, tables, datasets, revoked_at IS NOT NULL AS revoked FROM caredata.patient_share ORDER BY id;
RESET ROLE;

SET ROLE regress_ps_owner;
SELECT unprotect('ps_episode'), unprotect('ps_study'), unprotect('ps_gp');
RESET ROLE;
DROP TABLE ps_episode, ps_study, ps_gp;
REVOKE CREATE ON SCHEMA public FROM regress_ps_owner;
DELETE FROM caredata.subject_access;
DROP ROLE regress_ps_owner, regress_ps_patient, regress_ps_patient2, regress_ps_carer, regress_ps_carer2,
  regress_ps_analyst, regress_ps_nobody;
DROP EXTENSION caredata;
