-- sql/objection_protection.sql: a protected table's filter cannot be weakened (issue
-- 22, section 5).  Every DDL that would weaken it is refused, as the owner,
-- as a superuser and as every other role; a table weakened anyway (the
-- guards set aside, as only a superuser can) fails closed on every read
-- path for every role row security filters; protection_status reports the
-- real state; unprotect() and protect() repair it.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS caredata CASCADE;
CREATE EXTENSION caredata;
RESET client_min_messages;
SET search_path = public, caredata;

CREATE ROLE regress_p_owner NOLOGIN IN ROLE caredata_admin;
GRANT CREATE ON SCHEMA public TO regress_p_owner;
CREATE ROLE regress_p_admin NOLOGIN IN ROLE caredata_admin;
CREATE ROLE regress_p_analyst NOLOGIN IN ROLE caredata_analyst;
CREATE ROLE regress_p_linker NOLOGIN IN ROLE caredata_linker;
CREATE ROLE regress_p_reidentifier NOLOGIN IN ROLE caredata_reidentifier;
CREATE ROLE regress_p_patient NOLOGIN IN ROLE caredata_patient;
CREATE ROLE regress_p_recipient NOLOGIN;
CREATE ROLE regress_p_plain NOLOGIN;
CREATE ROLE regress_p_bypass NOLOGIN BYPASSRLS;
CREATE ROLE regress_p_super NOLOGIN SUPERUSER;
GRANT regress_p_plain TO regress_p_owner;
GRANT CREATE ON SCHEMA public TO regress_p_plain;

-- four patients; 999 000 0026 has opted out; the patient is 999 000 0042
SET ROLE regress_p_owner;
CREATE TABLE p_episode (id int, nhs_number nhs_number, cost int);
INSERT INTO p_episode SELECT row_number() OVER (), n::nhs_number, 100
  FROM unnest(ARRAY['999 000 0018', '999 000 0026', '999 000 0034', '999 000 0042']) n;
CREATE INDEX p_episode_big ON p_episode ((nhs_number::bigint));
RESET ROLE;
SELECT record_objection('999 000 0026', 'national_data_opt_out', 'test', now() - interval '1 day') IS NOT NULL AS objected;
INSERT INTO subject_access (role, nhs_number) VALUES ('regress_p_patient', '999 000 0042');
SET ROLE regress_p_owner;
SELECT protect('p_episode', 'nhs_number', 'research');
GRANT SELECT, UPDATE ON p_episode TO regress_p_analyst, regress_p_patient, regress_p_recipient, regress_p_bypass,
  regress_p_linker, regress_p_reidentifier, regress_p_admin, regress_p_plain;
-- a view the owner owns: read as the owner, whom FORCE makes filtered
CREATE VIEW p_by_owner AS SELECT * FROM p_episode;
GRANT SELECT ON p_by_owner TO regress_p_analyst;
RESET ROLE;
SELECT relid, in_force, weakness FROM protection_status;

-- what a role gets: the rows it reads, or the SQLSTATE it is refused with
CREATE FUNCTION pg_temp.try(r text, stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
  st text;
BEGIN
  IF r IS NOT NULL THEN
    EXECUTE format('SET LOCAL ROLE %I', r);
  END IF;
  EXECUTE stmt;
  GET DIAGNOSTICS n = ROW_COUNT;
  RESET ROLE;
  RETURN 'rows ' || n;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
  RETURN 'refused ' || st;
END $$;
-- a DDL statement as a role (NULL: this superuser), always undone: its
-- error message, or 'accepted'
CREATE FUNCTION pg_temp.attempt(r text, stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  msg text;
BEGIN
  BEGIN
    IF r IS NOT NULL THEN
      EXECUTE format('SET LOCAL ROLE %I', r);
    END IF;
    EXECUTE stmt;
    RAISE EXCEPTION 'accepted';
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
  END;
  RETURN msg;
END $$;

-- 1. every DDL that would weaken the filter is refused: the owner and a
-- superuser get the guard's refusal; every other role is refused too
-- (PostgreSQL's ownership checks, or the guard).  (A member of
-- caredata_patient may run DROP OWNED BY caredata_patient, which cannot
-- touch another role's table: left out of their row, checked below.)
CREATE TEMP TABLE weakening (n int, stmt text);
INSERT INTO weakening VALUES
  (1, 'DROP POLICY caredata_objection ON p_episode'),
  (2, 'DROP POLICY caredata_subject ON p_episode'),
  (3, 'DROP POLICY caredata_base ON p_episode'),
  (4, 'ALTER POLICY caredata_objection ON p_episode USING (true)'),
  (5, 'ALTER POLICY caredata_objection ON p_episode TO caredata_patient'),
  (6, 'ALTER POLICY caredata_subject ON p_episode TO regress_p_plain'),
  (7, 'ALTER POLICY caredata_objection ON p_episode RENAME TO old_filter'),
  (8, 'ALTER TABLE p_episode NO FORCE ROW LEVEL SECURITY'),
  (9, 'ALTER TABLE p_episode DISABLE ROW LEVEL SECURITY'),
  (10, 'ALTER TABLE p_episode ALTER COLUMN nhs_number SET STATISTICS 100'),
  (11, 'ALTER TABLE p_episode ALTER COLUMN nhs_number SET STATISTICS -1'),
  (12, 'ALTER INDEX p_episode_big ALTER COLUMN 1 SET STATISTICS 100'),
  (13, 'ALTER TABLE p_episode RENAME COLUMN nhs_number TO nhs'),
  (14, 'ALTER TABLE p_episode ALTER COLUMN nhs_number TYPE text'),
  (15, 'ALTER TABLE p_episode DROP COLUMN nhs_number CASCADE'),
  (16, 'ALTER TABLE p_episode OWNER TO regress_p_bypass'),
  (17, 'ALTER TABLE p_episode OWNER TO regress_p_super'),
  (18, 'CREATE STATISTICS p_stats ON nhs_number, id FROM p_episode'),
  (19, 'CREATE STATISTICS p_stats ON (nhs_number::bigint), id FROM p_episode'),
  (20, 'DROP OWNED BY caredata_patient'),
  (21, 'SET LOCAL session_replication_role = replica; ALTER TABLE p_episode DISABLE ROW LEVEL SECURITY');
SELECT w.n, pg_temp.attempt('regress_p_owner', w.stmt) AS as_owner FROM weakening w ORDER BY w.n;
SELECT w.n, pg_temp.attempt(NULL, w.stmt) AS as_superuser FROM weakening w ORDER BY w.n;
SELECT r AS role, count(*) FILTER (WHERE pg_temp.attempt(r, w.stmt) = 'accepted') AS accepted, count(*) AS tried
  FROM weakening w,
       unnest(ARRAY['regress_p_admin', 'regress_p_analyst', 'regress_p_linker', 'regress_p_reidentifier',
                    'regress_p_patient', 'regress_p_recipient', 'regress_p_bypass', 'regress_p_super']) r
 WHERE w.n <> 20
 GROUP BY r ORDER BY r;
-- still in force, all of it
SELECT relid, in_force, weakness FROM protection_status;
SELECT polname, polpermissive, polroles::regrole[] FROM pg_policy WHERE polrelid = 'p_episode'::regclass ORDER BY 1;

-- what does not weaken it is still the owner's to do
SELECT w AS allowed, pg_temp.attempt('regress_p_owner', w) AS as_owner FROM unnest(ARRAY[
  'ALTER TABLE p_episode ADD COLUMN note text',
  'ALTER TABLE p_episode ALTER COLUMN nhs_number SET STATISTICS 0',
  'ALTER TABLE p_episode ALTER COLUMN cost SET STATISTICS 200',
  'ALTER TABLE p_episode RENAME COLUMN cost TO price',
  'CREATE POLICY own_limit ON p_episode AS RESTRICTIVE FOR SELECT USING (id < 100)',
  'CREATE POLICY own_rows ON p_episode AS PERMISSIVE FOR SELECT USING (id > 0)',
  'CREATE STATISTICS p_cost ON id, cost FROM p_episode',
  'ALTER TABLE p_episode OWNER TO regress_p_plain',
  'ALTER TABLE p_episode FORCE ROW LEVEL SECURITY']) w;
-- a restrictive or permissive policy of the owner's own cannot widen the
-- filter: restrictive policies are ANDed with everything
BEGIN;
SET LOCAL ROLE regress_p_owner;
CREATE POLICY own_rows ON p_episode AS PERMISSIVE FOR ALL USING (true);
SET LOCAL ROLE regress_p_analyst;
SELECT count(*) AS analyst_rows_with_a_wide_policy FROM p_episode;
ROLLBACK;

-- 2. weakened anyway (the guards set aside, as a superuser can): every read
-- by a role row security filters is refused, directly, through the owner's
-- view, EXPLAIN and UPDATE; superusers and BYPASSRLS roles read as before
CREATE FUNCTION pg_temp.when_weakened(ddl text)
RETURNS TABLE (weakness text, in_force boolean, analyst text, via_view text, explain text, updates text,
               patient text, recipient text, owner text, superuser text, bypassrls text)
LANGUAGE plpgsql AS $$
DECLARE
  res text[];
  w text;
  f boolean;
BEGIN
  BEGIN
    ALTER EVENT TRIGGER caredata_protection_guard DISABLE;
    ALTER EVENT TRIGGER caredata_protection_drop_guard DISABLE;
    EXECUTE ddl;
    SELECT s.weakness, s.in_force INTO w, f FROM caredata.protection_status s WHERE s.relid = 'p_episode'::regclass;
    res := ARRAY[pg_temp.try('regress_p_analyst', 'SELECT * FROM p_episode'),
                 pg_temp.try('regress_p_analyst', 'SELECT * FROM p_by_owner'),
                 pg_temp.try('regress_p_analyst', 'EXPLAIN SELECT * FROM p_episode WHERE nhs_number = ''999 000 0026'''),
                 pg_temp.try('regress_p_analyst', 'UPDATE p_episode SET id = id'),
                 pg_temp.try('regress_p_patient', 'SELECT * FROM p_episode'),
                 pg_temp.try('regress_p_recipient', 'SELECT * FROM p_episode'),
                 pg_temp.try('regress_p_owner', 'SELECT * FROM p_episode'),
                 pg_temp.try('regress_p_super', 'SELECT * FROM p_episode'),
                 pg_temp.try('regress_p_bypass', 'SELECT * FROM p_episode')];
    RAISE EXCEPTION 'undo';
  EXCEPTION WHEN raise_exception THEN
    NULL;
  END;
  RETURN QUERY SELECT w, f, res[1], res[2], res[3], res[4], res[5], res[6], res[7], res[8], res[9];
END $$;
\x on
SELECT 'intact' AS weakened_by, * FROM pg_temp.when_weakened('SELECT 1');
SELECT 'drop objection' AS weakened_by, * FROM pg_temp.when_weakened('DROP POLICY caredata_objection ON p_episode');
SELECT 'objection using true' AS weakened_by, * FROM pg_temp.when_weakened('ALTER POLICY caredata_objection ON p_episode USING (true)');
SELECT 'objection to patients' AS weakened_by, * FROM pg_temp.when_weakened('ALTER POLICY caredata_objection ON p_episode TO caredata_patient');
SELECT 'objection, other purpose' AS weakened_by, * FROM pg_temp.when_weakened($$DROP POLICY caredata_objection ON p_episode;
  CREATE POLICY caredata_objection ON p_episode AS RESTRICTIVE USING (caredata.row_permitted(nhs_number, 'planning'))$$);
SELECT 'drop subject' AS weakened_by, * FROM pg_temp.when_weakened('DROP POLICY caredata_subject ON p_episode');
SELECT 'no force' AS weakened_by, * FROM pg_temp.when_weakened('ALTER TABLE p_episode NO FORCE ROW LEVEL SECURITY');
SELECT 'disable' AS weakened_by, * FROM pg_temp.when_weakened('ALTER TABLE p_episode DISABLE ROW LEVEL SECURITY');
SELECT 'statistics' AS weakened_by, * FROM pg_temp.when_weakened('ALTER TABLE p_episode ALTER COLUMN nhs_number SET STATISTICS 100');
SELECT 'rename column' AS weakened_by, * FROM pg_temp.when_weakened('ALTER TABLE p_episode RENAME COLUMN nhs_number TO nhs');
\x off

-- COPY ... TO reads the table without the executor when row security is
-- off: refused too; a cursor is refused when opened
BEGIN;
ALTER EVENT TRIGGER caredata_protection_guard DISABLE;
ALTER TABLE p_episode DISABLE ROW LEVEL SECURITY;
SET LOCAL ROLE regress_p_analyst;
COPY p_episode (id) TO STDOUT;
ROLLBACK;
BEGIN;
ALTER EVENT TRIGGER caredata_protection_guard DISABLE;
ALTER TABLE p_episode NO FORCE ROW LEVEL SECURITY;
SET LOCAL ROLE regress_p_analyst;
DECLARE c CURSOR FOR SELECT id FROM p_episode;
ROLLBACK;
BEGIN;
ALTER EVENT TRIGGER caredata_protection_guard DISABLE;
ALTER TABLE p_episode NO FORCE ROW LEVEL SECURITY;
SET LOCAL ROLE regress_p_analyst;
COPY (SELECT id FROM p_episode) TO STDOUT;
ROLLBACK;
-- a prepared statement planned while in force is refused once weakened
SET ROLE regress_p_analyst;
PREPARE p_all AS SELECT id FROM p_episode ORDER BY id;
EXECUTE p_all;
RESET ROLE;
ALTER EVENT TRIGGER caredata_protection_guard DISABLE;
ALTER TABLE p_episode NO FORCE ROW LEVEL SECURITY;
ALTER EVENT TRIGGER caredata_protection_guard ENABLE ALWAYS;
SET ROLE regress_p_analyst;
EXECUTE p_all;
COPY p_episode (id) TO STDOUT;
RESET ROLE;
SELECT relid, in_force, weakness FROM protection_status;
SELECT filter_weakness('p_episode') IS NOT NULL AS reported, filter_weakness('pg_class') AS unprotected_table;

-- 3. repaired by unprotect() and protect() (unprotect copes with a filter
-- already weakened), and the analyst reads filtered rows again
SET ROLE regress_p_owner;
SELECT unprotect('p_episode');
SELECT protect('p_episode', 'nhs_number', 'research');
RESET ROLE;
SELECT relid, in_force, weakness FROM protection_status;
SET ROLE regress_p_analyst;
EXECUTE p_all;
RESET ROLE;
-- a table found with a policy missing is repaired the same way
ALTER EVENT TRIGGER caredata_protection_drop_guard DISABLE;
DROP POLICY caredata_objection ON p_episode;
ALTER EVENT TRIGGER caredata_protection_drop_guard ENABLE ALWAYS;
SELECT unprotect('p_episode');
SELECT count(*) AS policies_left FROM pg_policy WHERE polrelid = 'p_episode'::regclass;
-- unprotected, the table is the owner's again: its DDL is not refused
SET ROLE regress_p_owner;
ALTER TABLE p_episode ALTER COLUMN nhs_number SET STATISTICS 10;
RESET ROLE;

-- 4. partitions: each is listed, and guarded, as its parent is
SET ROLE regress_p_owner;
CREATE TABLE p_part (id int, nhs_number nhs_number) PARTITION BY RANGE (id);
CREATE TABLE p_part_1 PARTITION OF p_part FOR VALUES FROM (0) TO (100);
SELECT protect('p_part', 'nhs_number', 'research');
CREATE TABLE p_part_2 PARTITION OF p_part FOR VALUES FROM (100) TO (200);
SELECT pg_temp.attempt('regress_p_owner', 'ALTER TABLE p_part_2 NO FORCE ROW LEVEL SECURITY') AS new_partition;
SELECT pg_temp.attempt('regress_p_owner', 'DROP POLICY caredata_objection ON p_part_1') AS old_partition;
RESET ROLE;
SELECT relid, in_force FROM protection_status WHERE root = 'p_part'::regclass ORDER BY relid::text;

SET client_min_messages = warning;
DEALLOCATE p_all;
DROP TABLE p_episode, p_part CASCADE;
DROP OWNED BY regress_p_owner, regress_p_admin, regress_p_analyst, regress_p_linker, regress_p_reidentifier,
  regress_p_patient, regress_p_recipient, regress_p_plain, regress_p_bypass, regress_p_super;
DROP ROLE regress_p_owner, regress_p_admin, regress_p_analyst, regress_p_linker, regress_p_reidentifier,
  regress_p_patient, regress_p_recipient, regress_p_plain, regress_p_bypass, regress_p_super;
DROP EXTENSION caredata CASCADE;
RESET client_min_messages;
