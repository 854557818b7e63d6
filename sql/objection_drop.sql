-- sql/objection_drop.sql: DROP EXTENSION caredata CASCADE leaves a
-- protected table as protect() found it (issue 26): row security off again
-- where protect() turned it on, no caredata_base policy, the owner's own
-- policies kept; its other columns and rows kept.  Without CASCADE the drop
-- refuses (columns of caredata's types) and the table stays protected.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS caredata CASCADE;
CREATE EXTENSION caredata;
CREATE TABLE drop_plain (id int, nhs_number caredata.nhs_number);
CREATE TABLE drop_owned (id int, nhs_number caredata.nhs_number, x int);
CREATE POLICY mine ON drop_owned USING (x > 0);
CREATE TABLE drop_parted (id int, nhs_number caredata.nhs_number) PARTITION BY RANGE (id);
CREATE TABLE drop_parted_1 PARTITION OF drop_parted FOR VALUES FROM (0) TO (10);
INSERT INTO drop_plain VALUES (1, '943 476 5919'), (2, '999 000 0018');
INSERT INTO drop_owned VALUES (1, '943 476 5919', 1), (2, '999 000 0018', 0);
SELECT caredata.protect('drop_plain', 'nhs_number', 'research');
SELECT caredata.protect('drop_owned', 'nhs_number', 'research');
SELECT caredata.protect('drop_parted', 'nhs_number', 'research');
CREATE VIEW drop_state AS
  SELECT c.relname, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
         (SELECT string_agg(p.polname, ', ' ORDER BY p.polname) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
  FROM pg_class c WHERE c.relname LIKE 'drop\_%' AND c.relkind IN ('r', 'p') ORDER BY c.relname;
SELECT * FROM drop_state;
-- without CASCADE: refused (the NHS number columns), nothing changed
\set VERBOSITY terse
DROP EXTENSION caredata;
\set VERBOSITY default
SELECT * FROM drop_state;
SELECT count(*) AS still_protected FROM caredata.protected_table;
-- CASCADE: the NHS number columns go; the tables as before protect()
DROP EXTENSION caredata CASCADE;
RESET client_min_messages;
SELECT * FROM drop_state;
SELECT attname, coalesce(attstattarget, -1) AS attstattarget FROM pg_attribute  -- (17: NULL for the default)
 WHERE attrelid = 'drop_owned'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
SELECT id, x FROM drop_owned ORDER BY id;
SELECT count(*) AS schema_left FROM pg_namespace WHERE nspname = 'caredata';
DROP VIEW drop_state;
DROP TABLE drop_plain, drop_owned, drop_parted;
