-- sql/reidentify.sql: from a published pseudonym back to the NHS number:
-- the re-identifier role only, with a justification, audited before it
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
CREATE ROLE reid_officer IN ROLE caredata_reidentifier;
CREATE ROLE reid_analyst IN ROLE caredata_analyst;

-- every other role is refused
SET ROLE reid_analyst;
SELECT caredata.reidentify(:'p', 'a justification long enough to pass');
RESET ROLE;
SET ROLE caredata_linker;
SELECT caredata.reidentify(:'p', 'a justification long enough to pass');
RESET ROLE;

SET ROLE reid_officer;
-- no justification, or too short
SELECT caredata.reidentify(:'p', NULL);
SELECT caredata.reidentify(:'p', '   because   ');
-- answered, and audited first
SELECT caredata.reidentify(:'p', 'safeguarding referral, case 2026/117, CAG 20/0001') = '9434765919' AS reidentified;
-- a pseudonym nobody published: NULL, audited all the same
SELECT caredata.reidentify('1.1.AAAAAAAAAAAAAAAAAAAAAA', 'checking an unknown token, case 2026/118') IS NULL AS unknown;
RESET ROLE;
SELECT action, object = :'p' AS names_the_pseudonym, detail, justification FROM audit_log WHERE action = 'reidentify' ORDER BY id;
SELECT count(*) AS entries_with_the_nhs_number FROM audit_log WHERE detail::text LIKE '%9434765919%' OR object LIKE '%9434765919%';

-- at most caredata.reidentify_per_hour an hour per login (superuser-only)
SET caredata.reidentify_per_hour = 3;
SET ROLE reid_officer;
SELECT caredata.reidentify(:'p', 'third call within the hour, case 2026/119') IS NOT NULL AS third;
SELECT caredata.reidentify(:'p', 'fourth call within the hour, case 2026/120');
SET caredata.reidentify_per_hour = 100;
RESET ROLE;
RESET caredata.reidentify_per_hour;
SELECT audit_verify() AS audit_intact;

DROP ROLE reid_officer, reid_analyst;
DROP TABLE reid_source;
