-- The read-ahead of src/objection/scan_lookahead.c changes when memory is read, never
-- which rows pass: every count below must equal the answer worked out
-- without it (the register read directly, and caredata.scan_lookahead off),
-- on multi-page tables with NULLs, dead tuples, columns added later, a
-- variable-width column before the NHS number, rescans, backward cursors
-- and parallel workers.
CREATE EXTENSION caredata;
SET search_path = public, caredata;

-- 400 valid NHS numbers (from the 999 test range), every third one objecting
\i sql/include/test_pool.psql
SELECT count(*) AS pool FROM pool;
SELECT count(*) FILTER (WHERE record_objection(n, CASE WHEN i % 2 = 0 THEN 'national_data_opt_out' ELSE 'type1' END,
                                               'test', now() - interval '1 day') IS NOT NULL) AS objections
FROM pool WHERE i % 3 = 0;

-- the reference: rows whose number is not in the register's blocked set
CREATE FUNCTION expected_rows(tab regclass, col name) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE r bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM %s t WHERE t.%I IS NULL OR NOT EXISTS
                  (SELECT 1 FROM caredata.blocked_nhs_numbers(''research'', NULL, now()) b
                   WHERE b.nhs_number = t.%I)', tab, col, col) INTO r;
  RETURN r;
END $$;

-- several pages of rows; a NULL in a nullable column before the NHS number
-- on some rows; NULL NHS numbers; then dead tuples and moved rows
CREATE TABLE wide (note text, extra int, nhs_number nhs_number, filler text);
INSERT INTO wide
SELECT CASE WHEN g % 7 = 0 THEN NULL ELSE repeat('x', (g % 50)::int) END,
       CASE WHEN g % 5 = 0 THEN NULL ELSE g::int END,
       CASE WHEN g % 97 = 0 THEN NULL ELSE (SELECT n FROM pool WHERE i = 1 + (g * 7919) % 400) END,
       repeat('y', 20)
FROM generate_series(1, 20000) g;
DELETE FROM wide WHERE extra % 11 = 0;
UPDATE wide SET filler = 'moved' WHERE extra % 13 = 0;
ALTER TABLE wide ADD COLUMN late_nhs nhs_number;
UPDATE wide SET late_nhs = nhs_number WHERE extra % 3 = 0;
SELECT pg_relation_size('wide') / current_setting('block_size')::int > 10 AS several_pages;

SET max_parallel_workers_per_gather = 0;
EXPLAIN (COSTS OFF) SELECT count(*) FROM wide WHERE permitted(nhs_number, 'research');
SELECT expected_rows('wide', 'nhs_number') AS expected,
       (SELECT count(*) FROM wide WHERE permitted(nhs_number, 'research')) AS with_lookahead;
SELECT expected_rows('wide', 'late_nhs') AS expected_late,
       (SELECT count(*) FROM wide WHERE permitted(late_nhs, 'research')) AS late_column;
-- the four-argument form with constants is read ahead too; a per-row time is not
SELECT (SELECT count(*) FROM wide WHERE permitted(nhs_number, 'research', now(), NULL)) =
       expected_rows('wide', 'nhs_number') AS four_args,
       (SELECT count(*) FROM wide WHERE permitted(nhs_number, 'research', now() - (coalesce(extra, 0) % 2) * interval '1 second', NULL)) =
       expected_rows('wide', 'nhs_number') AS per_row_time;
SET caredata.scan_lookahead = off;
SELECT count(*) AS without_lookahead FROM wide WHERE permitted(nhs_number, 'research');
RESET caredata.scan_lookahead;
-- nor does the Bloom layer (caredata.bloom_filter off: the table alone),
-- with and without the read-ahead
SET caredata.bloom_filter = off;
SELECT count(*) AS without_bloom FROM wide WHERE permitted(nhs_number, 'research');
SET caredata.scan_lookahead = off;
SELECT count(*) AS without_either FROM wide WHERE permitted(nhs_number, 'research');
RESET caredata.scan_lookahead;
RESET caredata.bloom_filter;
SELECT count(*) AS bloom_back_on FROM wide WHERE permitted(nhs_number, 'research');

-- the NHS number first, no NULLs: the direct-offset read
CREATE TABLE narrow AS SELECT n AS nhs_number, g AS los
FROM generate_series(1::bigint, 30000) g JOIN pool ON pool.i = 1 + (g * 104729) % 400;
SELECT expected_rows('narrow', 'nhs_number') = (SELECT count(*) FROM narrow WHERE permitted(nhs_number, 'research'))
  AS narrow_matches;

-- rescans: a correlated subquery rescans its scan once per outer row
EXPLAIN (COSTS OFF)
SELECT sum((SELECT count(*) FROM narrow WHERE permitted(nhs_number, 'research') AND los % 3 = v.k - 1))
FROM (VALUES (1), (2), (3)) v(k);
SELECT sum((SELECT count(*) FROM narrow WHERE permitted(nhs_number, 'research') AND los % 3 = v.k - 1))
       = expected_rows('narrow', 'nhs_number') AS rescans_match
FROM (VALUES (1), (2), (3)) v(k);

-- a scrollable cursor read forwards, backwards and forwards again: each
-- MOVE reports the rows it passed, all equal to the expected count
SELECT expected_rows('wide', 'nhs_number') AS expected_moves \gset
SELECT :expected_moves > 0 AS some_rows_expected;
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT nhs_number FROM wide WHERE permitted(nhs_number, 'research');
MOVE FORWARD ALL IN c;
SELECT :ROW_COUNT = :expected_moves AS forward_all;
MOVE BACKWARD ALL IN c;
SELECT :ROW_COUNT = :expected_moves AS backward_all;
MOVE FORWARD ALL IN c;
SELECT :ROW_COUNT = :expected_moves AS forward_again;
COMMIT;

-- parallel workers each read ahead of their own pages
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT count(*) FROM narrow WHERE permitted(nhs_number, 'research');
SELECT count(*) = expected_rows('narrow', 'nhs_number') AS parallel_matches
FROM narrow WHERE permitted(nhs_number, 'research');
RESET max_parallel_workers_per_gather; RESET parallel_setup_cost; RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

-- through the row filter, as a role that must obey it
CREATE ROLE regress_lookahead_reader NOLOGIN IN ROLE caredata_analyst;
GRANT SELECT ON wide, narrow TO regress_lookahead_reader;
SELECT protect('wide', 'nhs_number', 'research'), protect('narrow', 'nhs_number', 'research');
SET ROLE regress_lookahead_reader;
SET max_parallel_workers_per_gather = 0;
SELECT count(*) AS filtered_wide FROM wide;
SELECT count(*) AS filtered_narrow FROM narrow;
RESET ROLE;
SELECT expected_rows('wide', 'nhs_number') AS expected_wide, expected_rows('narrow', 'nhs_number') AS expected_narrow;

-- an objection recorded now is seen by the next query (new register version)
SELECT record_objection(n, 'national_data_opt_out', 'test', now() - interval '1 hour') IS NOT NULL
FROM pool WHERE i = 1;
SET ROLE regress_lookahead_reader;
SELECT count(*) AS after_new_objection FROM narrow;
RESET ROLE;
SELECT expected_rows('narrow', 'nhs_number') AS expected_after;

-- a crowded Bloom filter: thousands of blocked numbers, so that many numbers
-- that are not blocked pass the Bloom test and must be turned away by the
-- table behind it
CREATE TABLE crowd AS
SELECT row_number() OVER (ORDER BY c) AS i, try_nhs_number(c::text) AS n
FROM generate_series(9990100000, 9990199999) c
WHERE try_nhs_number(c::text) IS NOT NULL;
SELECT count(*) FILTER (WHERE record_objection(n, 'national_data_opt_out', 'test', now() - interval '1 day') IS NOT NULL)
  AS crowd_objections
FROM crowd WHERE i % 3 = 0;
SELECT count(*) AS crowd_rows,
       count(*) FILTER (WHERE permitted(n, 'research')) AS crowd_permitted,
       count(*) FILTER (WHERE i % 3 <> 0) AS crowd_expected
FROM crowd;
SELECT (SELECT count(*) FROM crowd WHERE permitted(n, 'research')) = count(*) FILTER (WHERE i % 3 <> 0)
  AS crowd_scan_matches
FROM crowd;
DROP TABLE crowd;

SELECT unprotect('wide'), unprotect('narrow');
DROP TABLE wide, narrow, pool;
DROP FUNCTION expected_rows(regclass, name);
DROP ROLE regress_lookahead_reader;
DROP EXTENSION caredata;
