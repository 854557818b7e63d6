-- The objection filter answered without a function call (src/objection/qual_eval.c):
-- a sequential scan whose only qual is protect()'s row_permitted() call reads
-- the NHS number from the heap tuple and tests it as permitted()'s own fast
-- path does.  It changes how a row's answer is reached, never which rows a
-- role sees: every count below must equal the answer worked out from the
-- register directly, and the same count with caredata.filter_fast_qual off,
-- on tables with NULLs, columns added later, a variable-width column before
-- the number, an empty blocked set, rescans, cursors, patients, UPDATE and
-- DELETE through the filter, a register changed between queries and
-- parallel workers.
CREATE EXTENSION caredata;
SET search_path = public, caredata;
SET max_parallel_workers_per_gather = 0;
SET jit = off;

-- the setting exists, on by default, and any role may turn it off
SHOW caredata.filter_fast_qual;

\i sql/include/test_pool.psql
SELECT count(*) FILTER (WHERE record_objection(n, 'national_data_opt_out', 'test', now() - interval '1 day') IS NOT NULL)
  AS objections
FROM pool WHERE i % 3 = 0;

-- the reference: rows whose number is not in the register's blocked set
CREATE FUNCTION expected_rows(tab regclass, col name, purpose text DEFAULT 'research') RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE r bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM %s t WHERE t.%I IS NULL OR NOT EXISTS
                  (SELECT 1 FROM caredata.blocked_nhs_numbers(%L, NULL, now()) b
                   WHERE b.nhs_number = t.%I)', tab, col, purpose, col) INTO r;
  RETURN r;
END $$;

-- the NHS number first, no NULLs: the shape the fast path answers
CREATE TABLE narrow AS SELECT n AS nhs_number, g AS los
FROM generate_series(1::bigint, 30000) g JOIN pool ON pool.i = 1 + (g * 104729) % 400;
-- NULL numbers on some rows (such tuples go through permitted() itself)
CREATE TABLE nullable (nhs_number nhs_number, los int);
INSERT INTO nullable
SELECT CASE WHEN g % 97 = 0 THEN NULL ELSE (SELECT n FROM pool WHERE i = 1 + (g * 7919) % 400) END, g::int
FROM generate_series(1, 20000) g;
-- a variable-width column before the number (its offset varies by row),
-- a column added later (older tuples lack it), dead and moved tuples
CREATE TABLE wide (note text, extra int, nhs_number nhs_number, filler text);
INSERT INTO wide
SELECT CASE WHEN g % 7 = 0 THEN NULL ELSE repeat('x', (g % 50)::int) END,
       CASE WHEN g % 5 = 0 THEN NULL ELSE g::int END,
       (SELECT n FROM pool WHERE i = 1 + (g * 7919) % 400),
       repeat('y', 20)
FROM generate_series(1, 20000) g;
DELETE FROM wide WHERE extra % 11 = 0;
UPDATE wide SET filler = 'moved' WHERE extra % 13 = 0;
ALTER TABLE wide ADD COLUMN late_nhs nhs_number;
UPDATE wide SET late_nhs = nhs_number WHERE extra % 3 = 0;
-- the table a purpose nothing blocks protects (an empty blocked set)
CREATE TABLE unblocked AS SELECT * FROM narrow;

CREATE ROLE regress_fast_reader NOLOGIN IN ROLE caredata_analyst;
CREATE ROLE regress_fast_patient NOLOGIN IN ROLE caredata_patient;
INSERT INTO subject_access (role, nhs_number) SELECT 'regress_fast_patient', n FROM pool WHERE i = 7;
GRANT SELECT, UPDATE, DELETE ON narrow, nullable, wide, unblocked TO regress_fast_reader, regress_fast_patient;
SELECT protect('narrow', 'nhs_number', 'research'), protect('nullable', 'nhs_number', 'research'),
       protect('wide', 'late_nhs', 'research'), protect('unblocked', 'nhs_number', 'direct_care');

-- the counts the filter must give, from the register directly
CREATE TABLE expected AS
SELECT expected_rows('narrow', 'nhs_number') AS narrow, expected_rows('nullable', 'nhs_number') AS nullable,
       expected_rows('wide', 'late_nhs') AS wide,
       expected_rows('unblocked', 'nhs_number', 'direct_care') AS unblocked,
       (SELECT count(*) FROM narrow) AS narrow_all;
GRANT SELECT ON expected TO PUBLIC;
SELECT narrow < narrow_all AS some_rows_hidden, unblocked = narrow_all AS nothing_hidden FROM expected;

-- the filter's plan: a sequential scan whose only qual is the call
SET ROLE regress_fast_reader;
EXPLAIN (COSTS OFF) SELECT count(*) FROM narrow;

-- every table, the fast path on and off
CREATE TEMP TABLE counts (setting text, narrow bigint, nullable bigint, wide bigint, unblocked bigint);
INSERT INTO counts SELECT 'on', (SELECT count(*) FROM narrow), (SELECT count(*) FROM nullable),
  (SELECT count(*) FROM wide), (SELECT count(*) FROM unblocked);
SET caredata.filter_fast_qual = off;
INSERT INTO counts SELECT 'off', (SELECT count(*) FROM narrow), (SELECT count(*) FROM nullable),
  (SELECT count(*) FROM wide), (SELECT count(*) FROM unblocked);
RESET caredata.filter_fast_qual;
SELECT c.setting, c.narrow = e.narrow AS narrow, c.nullable = e.nullable AS nullable,
       c.wide = e.wide AS wide, c.unblocked = e.unblocked AS unblocked
FROM counts c, expected e ORDER BY c.setting;
-- a scan that projects (its own loop stays ExecScan's), a row lock, a
-- LIMIT that stops the scan early: the
-- same rows
SELECT count(*) = (SELECT narrow FROM expected) AS projected
FROM (SELECT los + 1 AS x, nhs_number::text AS t FROM narrow OFFSET 0) s;
BEGIN;
SELECT count(*) = (SELECT narrow FROM expected) AS locked FROM (SELECT los FROM narrow FOR UPDATE) s;
ROLLBACK;
SELECT count(*) = 100 AS limited FROM (SELECT los FROM narrow LIMIT 100) s;

-- the same rows, not only as many: no blocked number passes
CREATE TEMP TABLE seen AS SELECT DISTINCT nhs_number FROM narrow;
RESET ROLE;
SELECT count(*) AS blocked_numbers_seen
FROM seen s JOIN caredata.blocked_nhs_numbers('research', NULL, now()) b ON b.nhs_number = s.nhs_number;
SELECT count(*) = (SELECT count(DISTINCT nhs_number) FROM narrow) - (SELECT count(DISTINCT t.nhs_number)
         FROM narrow t JOIN caredata.blocked_nhs_numbers('research', NULL, now()) b ON b.nhs_number = t.nhs_number)
  AS every_permitted_number_seen
FROM seen;
SET ROLE regress_fast_reader;

-- rescans: a correlated subquery rescans its scan once per outer row
SELECT sum((SELECT count(*) FROM narrow WHERE los % 3 = v.k - 1)) = (SELECT narrow FROM expected)
  AS rescans_match
FROM (VALUES (1), (2), (3)) v(k);

-- a scrollable cursor read forwards, backwards and forwards again
SELECT narrow AS expected_moves FROM expected \gset
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT nhs_number FROM narrow;
MOVE FORWARD ALL IN c;
SELECT :ROW_COUNT = :expected_moves AS forward_all;
MOVE BACKWARD ALL IN c;
SELECT :ROW_COUNT = :expected_moves AS backward_all;
MOVE FORWARD ALL IN c;
SELECT :ROW_COUNT = :expected_moves AS forward_again;
COMMIT;

-- a cursor opened by the reader and fetched on as the patient: the same
-- rows whether the fast path is on or off (the call site looks the role
-- up again whenever permitted() itself runs, as it did before)
RESET ROLE;
SELECT count(*) AS patients_own_rows FROM narrow n JOIN pool p ON p.n = n.nhs_number WHERE p.i = 7 \gset
SELECT :patients_own_rows > 0 AS patient_has_rows;
BEGIN;
SET LOCAL ROLE regress_fast_reader;
DECLARE c2 CURSOR FOR SELECT nhs_number FROM narrow;
FETCH 10 FROM c2 \g /dev/null
SET LOCAL ROLE regress_fast_patient;
MOVE FORWARD ALL IN c2;
SELECT :ROW_COUNT AS switched_on \gset
COMMIT;
SET caredata.filter_fast_qual = off;
BEGIN;
SET LOCAL ROLE regress_fast_reader;
DECLARE c2 CURSOR FOR SELECT nhs_number FROM narrow;
FETCH 10 FROM c2 \g /dev/null
SET LOCAL ROLE regress_fast_patient;
MOVE FORWARD ALL IN c2;
SELECT :ROW_COUNT AS switched_off \gset
COMMIT;
RESET caredata.filter_fast_qual;
SELECT :switched_on = :switched_off AS cursor_same_rows_on_and_off,
       :switched_on + 10 <= :expected_moves AS cursor_within_filter;
-- a patient's own query sees only the patient's rows, through a qual the
-- fast path leaves alone (two policies)
SET ROLE regress_fast_patient;
EXPLAIN (COSTS OFF) SELECT count(*) FROM narrow;
SELECT count(*) = :patients_own_rows AS own_rows_only, count(DISTINCT nhs_number) AS numbers
FROM narrow;
RESET ROLE;

-- UPDATE and DELETE through the filter touch only the rows it lets through
SET ROLE regress_fast_reader;
BEGIN;
UPDATE narrow SET los = los + 1;
SELECT :ROW_COUNT = :expected_moves AS updated_visible_only;
DELETE FROM narrow WHERE los % 2 = 0;
ROLLBACK;
BEGIN;
DELETE FROM narrow;
SELECT :ROW_COUNT = :expected_moves AS deleted_visible_only;
ROLLBACK;

-- an objection recorded between queries is seen by the next one
RESET ROLE;
SELECT record_objection(n, 'national_data_opt_out', 'test', now() - interval '1 hour') IS NOT NULL AS recorded
FROM pool WHERE i = 1;
UPDATE expected SET narrow = expected_rows('narrow', 'nhs_number');
SET ROLE regress_fast_reader;
SELECT count(*) = (SELECT narrow FROM expected) AS after_new_objection,
       count(*) < :expected_moves AS fewer_rows
FROM narrow;

-- parallel workers answer their own pages the same way
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT count(*) FROM narrow;
SELECT count(*) = (SELECT narrow FROM expected) AS parallel_matches FROM narrow;
RESET max_parallel_workers_per_gather; RESET parallel_setup_cost; RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SET max_parallel_workers_per_gather = 0;

-- EXPLAIN ANALYZE still counts no hidden row
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM narrow;
RESET ROLE;

SELECT unprotect('narrow'), unprotect('nullable'), unprotect('wide'), unprotect('unblocked');
DROP TABLE narrow, nullable, wide, unblocked, expected, pool, seen, counts;
DROP FUNCTION expected_rows(regclass, name, text);
DELETE FROM subject_access WHERE role = 'regress_fast_patient'::regrole;
DROP ROLE regress_fast_reader, regress_fast_patient;
DROP EXTENSION caredata;
