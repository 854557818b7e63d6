-- sql/publication_approval.sql: identifiable data only "where the law allows
-- it": the approval register (caredata_admin's, audited), re-identification
-- under a registered approval in force covering the login's role, the
-- purpose and the dataset, the national data opt-out applied or set aside,
-- and publications that keep a direct identifier only under an approval
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
RESET client_min_messages;
SET search_path = caredata, public;
\set VERBOSITY terse
\i sql/include/refusal.psql

CREATE TABLE appr_source (nhs_number text, surname text, dob date, val integer);
INSERT INTO appr_source VALUES ('943 476 5919', 'Smith', '1950-01-02', 1), ('401 023 2137', 'Jones', '1960-03-04', 2);
GRANT SELECT ON appr_source TO caredata_admin;
SELECT create_domain('appr_study', 'approval test') > 0 AS created;
SELECT refresh_pseudonyms('appr_study', 'appr_source');
SELECT pseudonym::text AS p1 FROM pseudonym_map WHERE domain = 'appr_study' AND nhs_number = '9434765919' \gset
SELECT pseudonym::text AS p2 FROM pseudonym_map WHERE domain = 'appr_study' AND nhs_number = '4010232137' \gset
-- the second patient has opted out (national data opt-out: research, planning, commissioning)
SELECT record_objection('4010232137', 'national_data_opt_out', 'test') > 0 AS objected;
CREATE ROLE appr_admin IN ROLE caredata_admin;
CREATE ROLE appr_officer IN ROLE caredata_reidentifier;
CREATE ROLE appr_other IN ROLE caredata_reidentifier;
CREATE ROLE appr_team;
CREATE ROLE appr_member IN ROLE caredata_reidentifier, appr_team;
CREATE ROLE appr_analyst IN ROLE caredata_analyst;
CREATE ROLE appr_recipient;
CREATE ROLE appr_recipient2;

-- ---- the register: caredata_admin's, through its functions only, audited
SET SESSION AUTHORIZATION appr_admin;
SELECT register_approval('CAG 1-23', 'section_251', '20/CAG/0123', '{research}', '{appr_team,appr_officer}',
                         now() - interval '1 day', now() + interval '30 days');
SELECT register_approval('COPI 2020-03', 'civil_emergency', 'COPI notice, regulation 3(4), 2020', '{research,planning}',
                         '{appr_officer}', now() - interval '1 day', now() + interval '30 days', opt_out_applies => false);
SELECT register_approval('CAG 2-22', 'section_251', '21/CAG/0222', '{research}', '{appr_officer}',
                         now() - interval '1 day', now() + interval '30 days',
                         opt_out_applies => false, opt_out_exemption => 'CAG opt-out exemption 21/CAG/0222/E');
SELECT register_approval('CAG 3-33', 'section_251', '22/CAG/0333', '{research}', '{appr_officer}',
                         now() - interval '1 day', now() + interval '30 days', datasets => '{study_a}');
SELECT register_approval('CAG 9-99', 'section_251', '19/CAG/0999', '{research}', '{appr_officer}',
                         now() - interval '2 years', now() - interval '1 year');
SELECT register_approval('CAG 7-77', 'section_251', '27/CAG/0777', '{research}', '{appr_officer}',
                         now() + interval '1 day', now() + interval '1 year');
SELECT register_approval('ORDER 5-55', 'court_order', 'High Court order 2026/55', '{research}', '{appr_officer}',
                         now() - interval '1 day', now() + interval '30 days');
SELECT register_approval('CAG 4-44', 'section_251', '24/CAG/0444', '{research}', '{appr_recipient}',
                         now() - interval '1 day', now() + interval '30 days');
-- what is refused: section 251 setting the opt-out aside without a recorded
-- exemption, an exemption with the opt-out applying, unknown bases and
-- purposes, no roles, PUBLIC, dates the wrong way round or unending, a
-- reference used twice
SELECT * FROM pg_temp.refusal($$caredata.register_approval('CAG 6-66', 'section_251', '26/CAG/0666', '{research}', '{appr_officer}', now(), now() + interval '1 day', opt_out_applies => false)$$);
SELECT * FROM pg_temp.refusal($$caredata.register_approval('CAG 6-66', 'section_251', '26/CAG/0666', '{research}', '{appr_officer}', now(), now() + interval '1 day', opt_out_exemption => 'E-1')$$);
SELECT * FROM pg_temp.refusal($$caredata.register_approval('CAG 6-66', 'goodwill', '26/CAG/0666', '{research}', '{appr_officer}', now(), now() + interval '1 day')$$);
SELECT * FROM pg_temp.refusal($$caredata.register_approval('CAG 6-66', 'section_251', ' ', '{research}', '{appr_officer}', now(), now() + interval '1 day')$$);
SELECT * FROM pg_temp.refusal($$caredata.register_approval('CAG 6-66', 'section_251', '26/CAG/0666', '{marketing}', '{appr_officer}', now(), now() + interval '1 day')$$);
SELECT * FROM pg_temp.refusal($$caredata.register_approval('CAG 6-66', 'section_251', '26/CAG/0666', '{research}', '{}', now(), now() + interval '1 day')$$);
SELECT * FROM pg_temp.refusal($$caredata.register_approval('CAG 6-66', 'section_251', '26/CAG/0666', '{research}', '{-}', now(), now() + interval '1 day')$$);
SELECT * FROM pg_temp.refusal($$caredata.register_approval('CAG 6-66', 'section_251', '26/CAG/0666', '{research}', '{appr_officer}', now(), now() - interval '1 day')$$);
SELECT * FROM pg_temp.refusal($$caredata.register_approval('CAG 6-66', 'section_251', '26/CAG/0666', '{research}', '{appr_officer}', now(), 'infinity')$$);
SELECT * FROM pg_temp.refusal($$caredata.register_approval('CAG 1-23', 'section_251', '20/CAG/0123', '{research}', '{appr_officer}', now(), now() + interval '1 day')$$);
SELECT * FROM pg_temp.refusal($$caredata.register_approval('x; DROP TABLE caredata.approval', 'section_251', '20/CAG/0123', '{research}', '{appr_officer}', now(), now() + interval '1 day')$$);
-- not by hand, not even by an admin: only through the functions
INSERT INTO caredata.approval (reference, legal_basis, basis_reference, purposes, roles, valid_from, valid_until)
  VALUES ('X', 'consent', 'x', '{research}', '{appr_officer}', now(), now() + interval '1 day');
UPDATE caredata.approval SET valid_until = 'infinity';
-- revocation: with a reason, once
SELECT * FROM pg_temp.refusal($$caredata.revoke_approval('ORDER 5-55', 'because')$$);
SELECT revoke_approval('ORDER 5-55', 'order set aside on appeal, case 2026/55');
SELECT * FROM pg_temp.refusal($$caredata.revoke_approval('ORDER 5-55', 'order set aside on appeal, again')$$);
SELECT * FROM pg_temp.refusal($$caredata.revoke_approval('NO SUCH 1', 'never registered at all')$$);
RESET SESSION AUTHORIZATION;
-- nobody else maintains it
SET SESSION AUTHORIZATION appr_officer;
SELECT * FROM pg_temp.refusal($$caredata.register_approval('CAG 6-66', 'consent', 'consent form', '{research}', '{appr_officer}', now(), now() + interval '1 day')$$);
SELECT * FROM pg_temp.refusal($$caredata.revoke_approval('CAG 1-23', 'an officer revoking an approval')$$);
SELECT * FROM pg_temp.refusal($$count(*) FROM caredata.approval$$);
RESET SESSION AUTHORIZATION;
-- even the owner edits nothing but the revocation, and deletes nothing
UPDATE caredata.approval SET valid_until = 'infinity' WHERE reference = 'CAG 9-99';
UPDATE caredata.approval SET revoked_at = NULL, revoked_by = NULL, revoke_reason = NULL WHERE reference = 'ORDER 5-55';
DELETE FROM caredata.approval WHERE reference = 'ORDER 5-55';
TRUNCATE caredata.approval;
SELECT reference, legal_basis, purposes, datasets, roles::text[], opt_out_applies, opt_out_exemption,
       registered_by, revoked_by, revoke_reason
  FROM approval WHERE registered_by = 'appr_admin' ORDER BY reference;
-- every change audited, in the admin's name
SELECT actor, action, object, detail->>'legal_basis' AS basis, detail->'roles' AS roles, detail->>'opt_out_applies' AS opt_out,
       justification
  FROM audit_log WHERE action LIKE 'approval.%' AND actor = 'appr_admin' ORDER BY id;

-- a re-identifier sees the approvals naming a role its login is in, no others
SET SESSION AUTHORIZATION appr_officer;
SELECT reference, in_force FROM my_approval ORDER BY reference;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION appr_member;
SELECT reference, in_force FROM my_approval ORDER BY reference;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION appr_analyst;
SELECT * FROM pg_temp.refusal($$count(*) FROM caredata.my_approval$$);
RESET SESSION AUTHORIZATION;

-- ---- re-identification under an approval
SELECT format('caredata.reidentify(%L, %%L, %%L, %%L, %%L)', :'p1') AS call1,
       format('caredata.reidentify(%L, %%L, %%L, %%L, %%L)', :'p2') AS call2 \gset
SET SESSION AUTHORIZATION appr_officer;
-- the old call, with a justification alone, is gone
SELECT * FROM pg_temp.refusal(format('caredata.reidentify(%L::caredata.pseudonym, %L)', :'p1', 'a justification long enough to pass'));
-- refused: no approval, an unknown one, expired, not valid yet, revoked,
-- another purpose, an unknown purpose, a dataset it does not cover
SELECT * FROM pg_temp.refusal(format(:'call1', NULL, 'research', 'safeguarding referral, case 2026/201', NULL), '9434765919');
SELECT * FROM pg_temp.refusal(format(:'call1', 'CAG 0-00', 'research', 'safeguarding referral, case 2026/202', NULL), '9434765919');
SELECT * FROM pg_temp.refusal(format(:'call1', 'CAG 9-99', 'research', 'expired approval, case 2026/203', NULL), '9434765919');
SELECT * FROM pg_temp.refusal(format(:'call1', 'CAG 7-77', 'research', 'approval not valid yet, case 2026/204', NULL), '9434765919');
SELECT * FROM pg_temp.refusal(format(:'call1', 'ORDER 5-55', 'research', 'revoked approval, case 2026/205', NULL), '9434765919');
SELECT * FROM pg_temp.refusal(format(:'call1', 'CAG 1-23', 'planning', 'planning under a research approval, 2026/206', NULL), '9434765919');
SELECT * FROM pg_temp.refusal(format(:'call1', 'CAG 1-23', 'marketing', 'not a purpose at all, case 2026/207', NULL), '9434765919');
SELECT * FROM pg_temp.refusal(format(:'call1', 'CAG 3-33', 'research', 'no dataset named, case 2026/208', NULL), '9434765919');
SELECT * FROM pg_temp.refusal(format(:'call1', 'CAG 3-33', 'research', 'another dataset, case 2026/209', 'study_b'), '9434765919');
SELECT * FROM pg_temp.refusal(format(:'call1', 'CAG 1-23', 'research', 'short', NULL), '9434765919');
-- answered under an approval that covers it
SELECT caredata.reidentify(:'p1', 'CAG 1-23', 'research', 'cohort follow-up under CAG 1-23, case 2026/210') = '9434765919' AS answered;
SELECT caredata.reidentify(:'p1', 'CAG 3-33', 'research', 'study A follow-up, case 2026/211', 'study_a') = '9434765919' AS answered_for_the_dataset;
-- the opt-out applies to CAG 1-23 (section 251 support): the objector is refused, audited
SELECT * FROM pg_temp.refusal(format(:'call2', 'CAG 1-23', 'research', 'objector under section 251, case 2026/212', NULL), '4010232137');
-- set aside: by a COPI notice, or by section 251 support recording an exemption
SELECT caredata.reidentify(:'p2', 'COPI 2020-03', 'research', 'emergency contact tracing, case 2026/213') = '4010232137' AS answered_under_copi;
SELECT caredata.reidentify(:'p2', 'CAG 2-22', 'research', 'exempted cohort follow-up, case 2026/214') = '4010232137' AS answered_under_exemption;
RESET SESSION AUTHORIZATION;
-- the wrong role: a re-identifier the approval does not name
SET SESSION AUTHORIZATION appr_other;
SELECT * FROM pg_temp.refusal(format(:'call1', 'CAG 1-23', 'research', 'not my approval, case 2026/215', NULL), '9434765919');
RESET SESSION AUTHORIZATION;
-- membership counts: appr_member is in appr_team, which CAG 1-23 names
SET SESSION AUTHORIZATION appr_member;
SELECT caredata.reidentify(:'p1', 'CAG 1-23', 'research', 'team member follow-up, case 2026/216') = '9434765919' AS answered_through_membership;
SELECT * FROM pg_temp.refusal(format(:'call1', 'COPI 2020-03', 'research', 'not named by the notice, case 2026/217', NULL), '9434765919');
RESET SESSION AUTHORIZATION;
-- roles that are no re-identifier never get that far
SET SESSION AUTHORIZATION appr_analyst;
SELECT * FROM pg_temp.refusal(format(:'call1', 'CAG 1-23', 'research', 'an analyst trying it, case 2026/218', NULL), '9434765919');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION appr_admin;
SELECT * FROM pg_temp.refusal(format(:'call1', 'CAG 1-23', 'research', 'an admin trying it, case 2026/219', NULL), '9434765919');
RESET SESSION AUTHORIZATION;
-- the worker checks the approval again, in the entry's own transaction
-- (a revocation between reidentify()'s check and the worker's)
SELECT * FROM pg_temp.refusal(format('* FROM caredata._reidentify_commit(%L, %L, %L, %L, NULL, %L, 100)',
                                     'appr_officer', :'p1', 'ORDER 5-55', 'research', 'revoked in between, case 2026/220'), '9434765919');
-- each answer and the refusal is audited with its approval; refused
-- approvals are not (nothing was looked up); no entry holds an NHS number
SELECT actor, detail->>'approval' AS approval, detail->>'purpose' AS purpose, detail->>'dataset' AS dataset,
       detail->>'found' AS found, detail->>'opt_out_applies' AS opt_out, detail->>'refused' AS refused,
       object IN (:'p1', :'p2') AS names_the_pseudonym, justification
  FROM audit_log WHERE action = 'reidentify' AND actor LIKE 'appr\_%' ORDER BY id;
SELECT count(*) AS entries_with_an_nhs_number FROM audit_log
 WHERE concat(object, detail::text, justification) ~ '(9434765919|4010232137|943 476 5919|401 023 2137)';

-- ---- publications: a direct identifier only under an approval
-- without one, refused as before
SELECT * FROM pg_temp.refusal($$caredata.publish('appr_pub', 'appr_source', '{"domain": "appr_study", "purpose": "research", "columns": {"surname": "keep"}}', 'appr_recipient')$$);
SELECT * FROM pg_temp.refusal($$caredata.publish('appr_pub', 'appr_source', '{"domain": "appr_study", "purpose": "research", "columns": {"nhs_number": "keep"}}', 'appr_recipient')$$);
-- an approval that is not registered, does not name the recipient, is for
-- another purpose, is expired, or is not a reference
SELECT * FROM pg_temp.refusal($$caredata.publish('appr_pub', 'appr_source', '{"domain": "appr_study", "purpose": "research", "approval": "CAG 0-00", "columns": {"nhs_number": "keep"}}', 'appr_recipient')$$);
SELECT * FROM pg_temp.refusal($$caredata.publish('appr_pub', 'appr_source', '{"domain": "appr_study", "purpose": "research", "approval": "CAG 4-44", "columns": {"nhs_number": "keep"}}', 'appr_recipient2')$$);
SELECT * FROM pg_temp.refusal($$caredata.publish('appr_pub', 'appr_source', '{"domain": "appr_study", "purpose": "planning", "approval": "CAG 4-44", "columns": {"nhs_number": "keep"}}', 'appr_recipient')$$);
SELECT * FROM pg_temp.refusal($$caredata.publish('appr_pub', 'appr_source', '{"domain": "appr_study", "purpose": "research", "approval": "CAG 9-99", "columns": {"nhs_number": "keep"}}', 'appr_recipient')$$);
SELECT * FROM pg_temp.refusal($$caredata.publish('appr_pub', 'appr_source', '{"domain": "appr_study", "purpose": "research", "approval": 42, "columns": {"nhs_number": "keep"}}', 'appr_recipient')$$);
-- an approval does not make a privileged role a recipient
SELECT * FROM pg_temp.refusal($$caredata.publish('appr_pub', 'appr_source', '{"domain": "appr_study", "purpose": "research", "approval": "CAG 1-23", "columns": {"nhs_number": "keep"}}', 'appr_officer')$$);
SELECT count(*) AS publications_after_refusals FROM publication WHERE name LIKE 'appr%';
-- under CAG 4-44: the NHS number, surname and date of birth are released
-- to appr_recipient, the objector still filtered out (the approval is
-- subject to the opt-out; publish() always keeps the objection filter)
SET SESSION AUTHORIZATION appr_admin;
SELECT publish('appr_pub', 'appr_source',
               '{"domain": "appr_study", "purpose": "research", "approval": "CAG 4-44",
                 "columns": {"nhs_number": "keep", "surname": "keep", "dob": "keep", "val": "keep"}}', 'appr_recipient');
RESET SESSION AUTHORIZATION;
SELECT detail->'spec'->>'approval' AS audited_approval FROM audit_log WHERE action = 'publication.create' AND object = 'appr_pub';
SET SESSION AUTHORIZATION appr_recipient;
SELECT nhs_number, surname, dob, val FROM published.appr_pub ORDER BY val;
RESET SESSION AUTHORIZATION;
-- revoked: the view refuses its recipient, and cannot be made again
SET SESSION AUTHORIZATION appr_admin;
SELECT revoke_approval('CAG 4-44', 'study closed, data to be destroyed');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION appr_recipient;
SELECT * FROM pg_temp.refusal($$count(*) FROM published.appr_pub$$, '9434765919');
RESET SESSION AUTHORIZATION;
SELECT * FROM pg_temp.refusal($$caredata.republish('appr_pub')$$);
SELECT unpublish('appr_pub');
-- a publication with no identifier needs no approval (and its view no check)
SELECT publish('appr_plain', 'appr_source', '{"domain": "appr_study", "purpose": "research", "columns": {"val": "keep"}}', 'appr_recipient');
SELECT pg_get_viewdef('published.appr_plain'::regclass) LIKE '%_published_approval%' AS plain_view_checks_approval;
SELECT unpublish('appr_plain');
SELECT audit_verify() AS audit_intact;

DROP TABLE appr_source;
DROP OWNED BY appr_recipient, appr_recipient2;
DROP ROLE appr_admin, appr_officer, appr_other, appr_member, appr_team, appr_analyst, appr_recipient, appr_recipient2;
