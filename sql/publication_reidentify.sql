-- sql/publication_reidentify.sql: from a published pseudonym back to the NHS number:
-- the re-identifier role only, under an approval, with a justification, audited before it
-- answers, rate-limited
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
RESET client_min_messages;
SET search_path = caredata, public;
CREATE TABLE reid_source (nhs_number text);
INSERT INTO reid_source VALUES ('943 476 5919'), ('401 023 2137');
SELECT create_domain('reid_study', 'reidentify test') > 0 AS created;
SELECT refresh_pseudonyms('reid_study', 'reid_source');
SELECT pseudonym::text AS p FROM pseudonym_map WHERE domain = 'reid_study' AND nhs_number = '9434765919' \gset
SELECT set_config('reid.p', :'p', false) IS NOT NULL AS noted;
CREATE ROLE reid_officer IN ROLE caredata_reidentifier;
CREATE ROLE reid_analyst IN ROLE caredata_analyst;
-- the approval every call here is made under (sql/publication_approval.sql
-- tests the register)
SELECT register_approval('CAG 20/0001', 'section_251', '20/CAG/0001', '{research}', '{reid_officer}',
                         now() - interval '1 day', now() + interval '30 days');

-- every other role is refused
SET ROLE reid_analyst;
SELECT caredata.reidentify(:'p', 'CAG 20/0001', 'research', 'a justification long enough to pass');
RESET ROLE;
SET ROLE caredata_linker;
SELECT caredata.reidentify(:'p', 'CAG 20/0001', 'research', 'a justification long enough to pass');
RESET ROLE;

SET ROLE reid_officer;
-- no justification, or too short
SELECT caredata.reidentify(:'p', 'CAG 20/0001', 'research', NULL);
SELECT caredata.reidentify(:'p', 'CAG 20/0001', 'research', '   because   ');
-- answered, and audited first
SELECT caredata.reidentify(:'p', 'CAG 20/0001', 'research', 'safeguarding referral, case 2026/117, CAG 20/0001') = '9434765919' AS reidentified;
-- a pseudonym nobody published: NULL, audited all the same
SELECT caredata.reidentify('1.1.AAAAAAAAAAAAAAAAAAAAAA', 'CAG 20/0001', 'research', 'checking an unknown token, case 2026/118') IS NULL AS unknown;
RESET ROLE;
SELECT action, object = :'p' AS names_the_pseudonym, detail, justification FROM audit_log WHERE action = 'reidentify' ORDER BY id;
SELECT count(*) AS entries_with_the_nhs_number FROM audit_log WHERE detail::text LIKE '%9434765919%' OR object LIKE '%9434765919%';

-- at most caredata.reidentify_per_hour an hour per login (superuser-only)
SET caredata.reidentify_per_hour = 3;
SET ROLE reid_officer;
SELECT caredata.reidentify(:'p', 'CAG 20/0001', 'research', 'third call within the hour, case 2026/119') IS NOT NULL AS third;
SELECT caredata.reidentify(:'p', 'CAG 20/0001', 'research', 'fourth call within the hour, case 2026/120');
SET caredata.reidentify_per_hour = 100;
RESET ROLE;
RESET caredata.reidentify_per_hour;
SELECT audit_verify() AS audit_intact;

-- the entry, and the count the limit reads, are committed before the answer
-- leaves: whatever the caller's transaction does next, they stay (as the
-- login reid_officer, the actor the entries and the limit count)
SET caredata.reidentify_per_hour = 4;
SET SESSION AUTHORIZATION reid_officer;
BEGIN;
SELECT caredata.reidentify(:'p', 'CAG 20/0001', 'research', 'rolled back afterwards, case 2026/121') = '9434765919' AS answered_in_rollback;
ROLLBACK;
BEGIN;
SAVEPOINT s;
SELECT caredata.reidentify(:'p', 'CAG 20/0001', 'research', 'savepoint rolled back, case 2026/122') = '9434765919' AS answered_in_savepoint;
ROLLBACK TO SAVEPOINT s;
COMMIT;
DO $$
BEGIN
  PERFORM caredata.reidentify(current_setting('reid.p')::caredata.pseudonym, 'CAG 20/0001', 'research', 'exception afterwards, case 2026/123');
  RAISE EXCEPTION 'the caller fails after the answer';
END
$$;
RESET SESSION AUTHORIZATION;
SELECT count(*) AS entries_kept FROM audit_log WHERE action = 'reidentify' AND actor = 'reid_officer';
SELECT justification FROM audit_log WHERE action = 'reidentify' AND actor = 'reid_officer' ORDER BY id;
-- the hourly limit (4 here) counts them: one more, then refused, inside a
-- transaction or not
SET SESSION AUTHORIZATION reid_officer;
SELECT caredata.reidentify(:'p', 'CAG 20/0001', 'research', 'one more after the rolled-back ones, case 2026/124') = '9434765919' AS fourth;
BEGIN;
SELECT caredata.reidentify(:'p', 'CAG 20/0001', 'research', 'over the limit inside a transaction, case 2026/125');
ROLLBACK;
SELECT caredata.reidentify(:'p', 'CAG 20/0001', 'research', 'over the limit, case 2026/126');
RESET SESSION AUTHORIZATION;
RESET caredata.reidentify_per_hour;
SELECT count(*) AS entries_still FROM audit_log WHERE action = 'reidentify' AND actor = 'reid_officer';
-- a transaction that wrote to the audit log itself cannot re-identify (its
-- entry's worker would wait for it): refused at once, no answer
SET ROLE reid_officer;
BEGIN;
SELECT caredata.audit_append('test.before_reidentify') > 0 AS appended;
SELECT caredata.reidentify(:'p', 'CAG 20/0001', 'research', 'after an append in the same transaction, case 2026/126');
ROLLBACK;
RESET ROLE;
-- the internals are the owner's alone
SET ROLE reid_officer;
SELECT caredata._reidentify_committed(:'p', 'CAG 20/0001', 'research', NULL, 'calling the internal function directly');
SELECT * FROM caredata._reidentify_commit('reid_officer', :'p', 'CAG 20/0001', 'research', NULL, 'calling the internal function directly', 100);
RESET ROLE;
SELECT audit_verify() AS audit_intact_after;

DROP ROLE reid_officer, reid_analyst;
DROP TABLE reid_source;
