-- sql/objection_feed_bulk.sql: the snapshot feed's bulk path
-- (src/objection/feed_load.c) gives exactly what the row-by-row path gives:
-- the same register rows (ids included), history and feed_load counts, for
-- the same feeds; indexes built bottom up on an empty register are valid
-- btrees holding every row (amcheck); the register version moves and the
-- filter sees the change; the helpers keep an INSERT's privilege checks.
CREATE EXTENSION caredata;
CREATE EXTENSION IF NOT EXISTS amcheck;
SET search_path = public, caredata;
\i sql/include/refusal.psql

-- day 1: 6,000 valid numbers, some twice, plus junk; day 2: 600 of them
-- gone and 700 new; one objection from another source and a Type 1
-- objection sit beside them
CREATE TABLE numbers AS
SELECT row_number() OVER (ORDER BY v) AS i, v AS nhs_number
  FROM (SELECT lpad((4000000000 + g * 7919)::text, 10, '0') AS v FROM generate_series(1, 80000) g) s
 WHERE try_nhs_number(v) IS NOT NULL;
SELECT count(*) >= 6800 AS enough FROM numbers;
CREATE TABLE day1 AS
SELECT nhs_number FROM numbers WHERE i <= 6000
UNION ALL SELECT nhs_number FROM numbers WHERE i <= 6000 AND i % 50 = 0
UNION ALL VALUES ('junk'), (NULL);
CREATE TABLE day2 AS
SELECT nhs_number FROM numbers WHERE i <= 6700 AND NOT (i <= 6000 AND i % 10 = 3);

CREATE TABLE result (run text, what text, line text);
CREATE FUNCTION pg_temp.feeds(run text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM caredata.apply_opt_out_snapshot('day1', 'nhs_number', 'ndop', '2025-01-01');
  PERFORM caredata.record_objection((SELECT nhs_number::caredata.nhs_number FROM numbers WHERE i = 6800),
                                    'national_data_opt_out', 'gp', '2025-01-15');
  PERFORM caredata.record_objection((SELECT nhs_number::caredata.nhs_number FROM numbers WHERE i = 13),
                                    'type1', 'gp', '2025-01-15');
  PERFORM caredata.apply_opt_out_snapshot('day2', 'nhs_number', 'ndop', '2025-02-01');
END $$;
-- (then VACUUM: the last feed reads the register's all-visible pages
-- through the index alone)
CREATE FUNCTION pg_temp.feeds_after_vacuum(run text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM caredata.apply_opt_out_snapshot('day1', 'nhs_number', 'ndop', '2025-03-01');
  INSERT INTO result
  SELECT run, 'register', concat_ws('|', id, nhs_number, kind, purposes, study, effective_from, withdrawn_at, source, recorded_by)
    FROM caredata.objection
  UNION ALL
  SELECT run, 'feed_load', concat_ws('|', feed, source, rows_read, invalid, duplicates, opened, withdrawn, unchanged)
    FROM caredata.feed_load;
END $$;

-- the bulk path: on the empty register the indexes are built bottom up,
-- under the EXCLUSIVE lock (readers' ACCESS SHARE does not wait for it)
SELECT version AS v0 FROM register_version \gset
BEGIN;
SELECT * FROM apply_opt_out_snapshot('day1', 'nhs_number', 'ndop', '2025-01-01');
SELECT mode FROM pg_locks
 WHERE relation = 'caredata.objection'::regclass AND pid = pg_backend_pid() AND mode = 'ExclusiveLock';
COMMIT;
SELECT version > :v0 AS new_register_version FROM register_version;
SELECT i.indexrelid::regclass AS index, bt_index_parent_check(i.indexrelid, true, true) IS NOT NULL AS valid
  FROM pg_index i WHERE i.indrelid = 'caredata.objection'::regclass ORDER BY 1::text;
SELECT count(*) AS rows, count(DISTINCT nhs_number) AS numbers,
       (SELECT count(*) FROM objection WHERE nhs_number IN (SELECT try_nhs_number(nhs_number) FROM day1)
                                        AND withdrawn_at IS NULL) AS found_through_the_index
  FROM objection;
SELECT permitted((SELECT nhs_number::nhs_number FROM numbers WHERE i = 1), 'research', '2025-06-01') AS opted_out_permitted,
       permitted((SELECT nhs_number::nhs_number FROM numbers WHERE i = 6700), 'research', '2025-06-01') AS other_permitted;
TRUNCATE objection, feed_load RESTART IDENTITY;

-- the whole sequence, bulk path
SELECT pg_temp.feeds('bulk');
VACUUM objection;
SELECT pg_temp.feeds_after_vacuum('bulk');
SELECT i.indexrelid::regclass AS index, bt_index_parent_check(i.indexrelid, true, true) IS NOT NULL AS valid
  FROM pg_index i WHERE i.indrelid = 'caredata.objection'::regclass ORDER BY 1::text;
SELECT line FROM result WHERE what = 'feed_load' ORDER BY line;
-- a withdrawn number is permitted again after its withdrawal
SELECT permitted((SELECT nhs_number::nhs_number FROM numbers WHERE i = 3), 'research', '2025-01-20') AS before_withdrawal,
       permitted((SELECT nhs_number::nhs_number FROM numbers WHERE i = 3), 'research', '2025-02-20') AS after_withdrawal;

-- the same sequence row by row: row security on the register (a superuser
-- bypasses it) makes both helpers hand back to the SQL statements
TRUNCATE objection, feed_load RESTART IDENTITY;
ALTER TABLE objection ENABLE ROW LEVEL SECURITY;
SELECT rows_read IS NULL AS merge_in_sql FROM _opt_out_changes('day1', 'nhs_number', 'national_data_opt_out', 'ndop');
BEGIN;
SELECT _open_objections(ARRAY['943 476 5919']::nhs_number[], 'national_data_opt_out', default_purposes('national_data_opt_out'),
                        '2025-01-01', 'ndop') IS NULL AS insert_in_sql;
ROLLBACK;
SELECT pg_temp.feeds('row by row');
VACUUM objection;
SELECT pg_temp.feeds_after_vacuum('row by row');
ALTER TABLE objection DISABLE ROW LEVEL SECURITY;
SELECT run, count(*) AS lines FROM result GROUP BY run ORDER BY run;
-- identical, line for line
SELECT count(*) AS differences FROM (
  (SELECT what, line FROM result WHERE run = 'bulk' EXCEPT ALL SELECT what, line FROM result WHERE run = 'row by row')
  UNION ALL
  (SELECT what, line FROM result WHERE run = 'row by row' EXCEPT ALL SELECT what, line FROM result WHERE run = 'bulk')) d;

SELECT count(*) AS before_refused_calls FROM objection \gset
-- _open_objections refuses numbers out of order, and keeps the INSERT's
-- privilege checks: not callable by an analyst; a role allowed to call it
-- but not to insert is refused
SELECT state, message FROM pg_temp.refusal($$caredata._open_objections(ARRAY['999 000 0026', '943 476 5919']::caredata.nhs_number[],
  'national_data_opt_out', ARRAY['research'], '2025-01-01', 'x')$$);
CREATE ROLE regress_feed_analyst IN ROLE caredata_analyst;
CREATE ROLE regress_feed_caller;
GRANT USAGE ON SCHEMA caredata TO regress_feed_caller;
GRANT EXECUTE ON FUNCTION _open_objections(nhs_number[], text, text[], timestamptz, text),
                          _opt_out_changes(regclass, name, text, text) TO regress_feed_caller;
GRANT SELECT ON day1 TO regress_feed_analyst, regress_feed_caller;
SET ROLE regress_feed_analyst;
SELECT state, message FROM pg_temp.refusal($$caredata._open_objections(ARRAY['943 476 5919']::caredata.nhs_number[],
  'national_data_opt_out', ARRAY['research'], '2025-01-01', 'x')$$);
SELECT state, message FROM pg_temp.refusal($$caredata._opt_out_changes('day1', 'nhs_number', 'national_data_opt_out', 'ndop')$$);
SET ROLE regress_feed_caller;
SELECT state, message FROM pg_temp.refusal($$caredata._open_objections(ARRAY['943 476 5919']::caredata.nhs_number[],
  'national_data_opt_out', ARRAY['research'], '2025-01-01', 'x')$$);
-- no SELECT on the register: nothing read, handed back to the SQL merge
-- (which refuses as before)
SELECT rows_read IS NULL AS handed_back FROM caredata._opt_out_changes('day1', 'nhs_number', 'national_data_opt_out', 'ndop');
RESET ROLE;
SELECT count(*) - :before_refused_calls AS rows_written_by_refused_calls FROM objection;

DROP TABLE numbers, day1, day2, result;
DROP EXTENSION caredata;
DROP EXTENSION amcheck;
DROP ROLE regress_feed_analyst, regress_feed_caller;
