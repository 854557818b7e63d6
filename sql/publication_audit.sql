-- sql/publication_audit.sql: the audit log: privileged steps write to it, it is
-- append-only, and audit_verify() catches any entry edited, inserted or
-- deleted by hand (even by a superuser who gets past the triggers)
-- a fresh extension, so that entry ids below count from 1
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS caredata CASCADE;
CREATE EXTENSION caredata;
RESET client_min_messages;
SET search_path = caredata, public;
SELECT coalesce(max(id), 0) AS before FROM audit_log \gset

-- existing steps write entries: domains, key versions, exemptions, protection
SELECT create_domain('audit_test', 'audit test') > 0 AS created;
SELECT rotate_domain('audit_test');
SELECT grant_exemption('audit_ds', 'research', 'type1', 'consent', 'audit ref') > 0 AS granted \gset
CREATE TABLE audit_ep (nhs caredata.nhs_number);
SELECT protect('audit_ep', 'nhs', 'research');
SELECT unprotect('audit_ep');
SELECT audit_append('test.manual', 'a test', '{"rows": 3}', 'because the test says so') > 0 AS appended;
SELECT action, object, actor = session_user AS by_login, justification
  FROM audit_log WHERE id > :before ORDER BY id;
SELECT audit_verify() AS intact;
-- no entry holds an NHS number
SELECT count(*) AS entries_with_nhs_numbers FROM audit_log WHERE detail::text ~ '[0-9]{10}';

-- append-only through SQL, for everyone
UPDATE audit_log SET justification = 'changed' WHERE id = :before + 1;
DELETE FROM audit_log WHERE id = :before + 1;
TRUNCATE audit_log;
DELETE FROM audit_head;
SELECT audit_append('Bad Action');

-- session_replication_role = replica no longer gets past the triggers
-- (they fire ALWAYS): editing, deleting (the newest too), moving the head
-- back and truncating are refused, for a superuser too
SELECT last_id AS head_id, last_hash AS head_hash FROM audit_head \gset
SET session_replication_role = replica;
UPDATE audit_log SET justification = 'nothing to see' WHERE id = :before + 5;
DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log);
UPDATE audit_head SET last_id = last_id - 1;
UPDATE audit_head SET last_id = last_id;
DELETE FROM audit_head;
TRUNCATE audit_log, audit_head;
TRUNCATE audit_head;
RESET session_replication_role;
-- nor does it without the setting: the head's own guard
UPDATE audit_head SET last_id = last_id - 1, last_hash = '\x00';
SELECT audit_verify() AS intact_after_refusals;

-- the witness: audit_verify(expected_id, expected_hash) checks the log
-- against an id and hash kept outside the database (the server log)
SELECT audit_verify(:head_id, :'head_hash') AS witness_matches;
SELECT audit_verify(:head_id - 2, (SELECT hash FROM audit_log WHERE id = :head_id - 2)) AS older_witness_matches;
SELECT audit_verify(:head_id, '\x00') AS wrong_hash;
SELECT audit_verify(:head_id + 1, :'head_hash') AS entry_never_written;
SELECT audit_verify(0, :'head_hash');
SELECT audit_verify(NULL, NULL);

-- past the triggers (only an owner or superuser, by disabling them): every
-- kind of tampering breaks the chain, and the NOTICE names the first broken
-- entry; cutting the newest entries together with the head, or truncating
-- both tables, leaves the chain whole, and only the witness catches it
BEGIN;
ALTER TABLE audit_log DISABLE TRIGGER USER;
UPDATE audit_log SET justification = 'nothing to see' WHERE id = :before + 5;
SELECT audit_verify() AS after_edit;
ROLLBACK;
BEGIN;
ALTER TABLE audit_log DISABLE TRIGGER USER;
DELETE FROM audit_log WHERE id = :before + 3;
SELECT audit_verify() AS after_delete;
ROLLBACK;
BEGIN;
ALTER TABLE audit_log DISABLE TRIGGER USER;
DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log);
SELECT audit_verify() AS after_deleting_the_newest;
ROLLBACK;
BEGIN;
ALTER TABLE audit_log DISABLE TRIGGER USER;
INSERT INTO audit_log SELECT id + 1000000, at, actor, action, object, detail, justification, prev_hash, hash
  FROM audit_log WHERE id = :before + 1;
SELECT audit_verify() AS after_insert;
ROLLBACK;
BEGIN;
ALTER TABLE audit_log DISABLE TRIGGER USER;
ALTER TABLE audit_head DISABLE TRIGGER USER;
DELETE FROM audit_log WHERE id > :head_id - 2;
UPDATE audit_head SET (last_id, last_hash) = (SELECT id, hash FROM audit_log WHERE id = :head_id - 2);
SELECT audit_verify() AS chain_after_cutting_with_the_head;
SELECT audit_verify(:head_id, :'head_hash') AS witness_after_cutting_with_the_head;
ROLLBACK;
BEGIN;
ALTER TABLE audit_log DISABLE TRIGGER USER;
ALTER TABLE audit_head DISABLE TRIGGER USER;
TRUNCATE audit_log, audit_head;
SELECT audit_verify() AS chain_after_truncating_both;
SELECT audit_verify(:head_id, :'head_hash') AS witness_after_truncating_both;
ROLLBACK;
SELECT audit_verify() AS intact_again;

-- a failed step leaves no entry
SELECT count(*) AS entries FROM audit_log \gset
SELECT create_domain('audit_test', 'again');
SELECT count(*) = :entries AS no_entry_for_a_failure FROM audit_log;

-- roles: only the admin reads the log; nobody else appends or verifies
CREATE ROLE audit_analyst IN ROLE caredata_analyst;
SET ROLE audit_analyst;
SELECT count(*) FROM caredata.audit_log;
SELECT caredata.audit_append('forged.entry');
SELECT caredata.audit_verify();
SELECT caredata.audit_verify(1, '\x00');
SELECT caredata._audit_append_as('postgres', 'forged.entry', NULL, NULL, NULL);
SELECT caredata._audit_witness(1, '\x00');
RESET ROLE;
DROP ROLE audit_analyst;
DROP TABLE audit_ep;
