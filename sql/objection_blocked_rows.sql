-- A table's blocked rows (src/objection/blocked_rows.c,
-- caredata.filter_blocked_rows): at a backend's second whole filtered
-- sequential scan of a table with the same blocked set, the backend reads
-- the table and notes where the rows with blocked numbers are (page and
-- line pointer); later scans take the answer for a page whose visible rows'
-- xmins all precede the horizon of that build from those positions, and
-- test every other page's rows against the whole set.  It changes where a
-- row's answer comes from, never the answer: every count below must equal
-- the answer worked out from the register directly, after each way a table
-- can gain a blocked patient's row the build has not seen (a new row, a new
-- row in an old page or an old line pointer, an UPDATE, a frozen row, a new
-- file, a new objection) and for a snapshot older than the build's (a
-- cursor that still sees rows the build's snapshot did not).
CREATE EXTENSION caredata;
SET search_path = public, caredata;
SET max_parallel_workers_per_gather = 0;
-- the test's sets are small: note blocked rows for any set's tables
SET caredata.filter_blocked_rows_min = 0;

-- 909 blocked numbers of 2,727
CREATE TABLE crowd AS
SELECT row_number() OVER (ORDER BY c) AS i, try_nhs_number(c::text) AS n
FROM generate_series(9990100000, 9990129999) c
WHERE try_nhs_number(c::text) IS NOT NULL;
SELECT count(*) FILTER (WHERE record_objection(n, 'national_data_opt_out', 'test', now() - interval '1 day') IS NOT NULL) > 900
  AS many_objections
FROM crowd WHERE i % 3 = 0;

-- the ward's patients are the first 900 of the crowd: 300 of its blocked
-- numbers occur in it, a third of the set
CREATE TABLE ward AS SELECT n AS nhs_number, g AS los
FROM generate_series(1, 30000) g JOIN crowd ON crowd.i = 1 + (g * 7919) % 900;
ANALYZE ward;

-- the reference: rows whose number is not in the register's blocked set
CREATE FUNCTION expected_rows(tab regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE r bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM %s t WHERE NOT EXISTS
                  (SELECT 1 FROM caredata.blocked_nhs_numbers(''research'', NULL, now()) b
                   WHERE b.nhs_number = t.nhs_number)', tab) INTO r;
  RETURN r;
END $$;
CREATE FUNCTION rows_bytes() RETURNS bigint LANGUAGE sql AS $$
  SELECT coalesce(sum(total_bytes), 0)::bigint FROM pg_backend_memory_contexts
  WHERE name = 'caredata table''s blocked rows'
$$;
-- the blocked rows this backend keeps for a table's current file (each is
-- named by the file it answers for)
CREATE FUNCTION notes(tab regclass) RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM pg_backend_memory_contexts
  WHERE name = 'caredata table''s blocked rows' AND ident = pg_relation_filenode(tab)::text
$$;
CREATE FUNCTION set_bytes() RETURNS bigint LANGUAGE sql AS $$
  SELECT coalesce(sum(total_bytes), 0)::bigint FROM pg_backend_memory_contexts
  WHERE name = 'caredata objection set'
$$;

CREATE ROLE regress_rows_reader NOLOGIN IN ROLE caredata_analyst;
GRANT SELECT ON ward, crowd TO regress_rows_reader;
SELECT protect('ward', 'nhs_number', 'research') IS NOT NULL AS protected;
SELECT expected_rows('ward') AS expected \gset
SELECT :expected < 30000 AS some_rows_blocked;

-- the first scan with the set: nothing noted; the second builds it (the
-- server's log says so at DEBUG1, the client hears nothing even at LOG:
-- whether it was kept would say something of the table's objectors); the
-- third uses it
SET log_min_messages = debug1;
SET client_min_messages = log;
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS first_scan FROM ward;
RESET ROLE;
SELECT notes('ward') = 0 AS none_after_one_scan;
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS second_scan_builds FROM ward;
SELECT count(*) = :expected AS third_scan_uses FROM ward;
RESET ROLE;
RESET client_min_messages;
RESET log_min_messages;
SELECT notes('ward') = 1 AS built_at_the_second;
SELECT rows_bytes() > 0 AS rows_kept;

-- the same sums with it and without, as permitted() in a query's own WHERE
SET ROLE regress_rows_reader;
SELECT count(*) AS n_on, sum(los) AS los_on FROM ward \gset
SET caredata.filter_blocked_rows = off;
SELECT count(*) = :n_on AND sum(los) = :los_on AS off_agrees FROM ward;
RESET caredata.filter_blocked_rows;
RESET ROLE;
SELECT count(*) = :n_on AS permitted_agrees FROM ward WHERE permitted(nhs_number, 'research');
SELECT count(*) = :n_on AS permitted_agrees_again FROM ward WHERE permitted(nhs_number, 'research');

-- new rows of blocked patients the ward never had (crowd 901-1200): their
-- xmin follows the horizon, so the whole set answers for their pages
INSERT INTO ward SELECT n, -7 FROM crowd WHERE i BETWEEN 901 AND 1200;
SELECT expected_rows('ward') AS expected \gset
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS new_blocked_rows_hidden FROM ward;
SELECT count(*) = 0 AS none_of_the_new_blocked FROM ward
WHERE los = -7 AND nhs_number IN (SELECT n FROM crowd WHERE i BETWEEN 901 AND 1200 AND i % 3 = 0);
SELECT count(*) = 200 AS new_permitted_rows_seen FROM ward WHERE los = -7;
RESET ROLE;

-- new rows of blocked patients in the free space of old pages: a page of
-- old rows and new ones is tested against the whole set
CREATE TEMP TABLE freed AS SELECT ctid AS old_ctid FROM ward WHERE los % 10 = 0 AND los > 100;
DELETE FROM ward WHERE los % 10 = 0 AND los > 100;
VACUUM ward;
SELECT max((ctid::text::point)[0]) AS last_old_block FROM ward \gset
INSERT INTO ward SELECT n, -8 FROM crowd WHERE i BETWEEN 1201 AND 1350;
SELECT count(*) > 0 AS new_rows_in_old_pages FROM ward
WHERE los = -8 AND (ctid::text::point)[0] < :last_old_block;
-- ... at the very positions deleted rows had (line pointers VACUUM freed)
SELECT count(*) > 0 AS new_rows_at_old_positions FROM ward
WHERE los = -8 AND ctid IN (SELECT old_ctid FROM freed);
DROP TABLE freed;
SELECT expected_rows('ward') AS expected \gset
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS mixed_pages_right FROM ward;
SELECT count(*) = 100 AS only_permitted_new_rows FROM ward WHERE los = -8;
RESET ROLE;

-- the build in a transaction that has written (its own id is in the
-- snapshot's xmin), then rows of a blocked patient the table never had,
-- written by that same transaction after the build: tested against the
-- whole set (a new objection first: a new set, nothing noted yet)
SELECT record_objection(n, 'national_data_opt_out', 'test', now() - interval '1 hour') IS NOT NULL AS one_more
FROM crowd WHERE i = 2;
BEGIN;
INSERT INTO ward SELECT n, -9 FROM crowd WHERE i = 1;
SET LOCAL ROLE regress_rows_reader;
SELECT count(*) > 0 AS scan_in_writing_transaction FROM ward;
RESET ROLE;
SELECT notes('ward') AS before \gset
SET LOCAL ROLE regress_rows_reader;
SELECT count(*) > 0 AS scan_in_writing_transaction_builds FROM ward;
RESET ROLE;
SELECT notes('ward') = :before + 1 AS built_in_writing_transaction;
INSERT INTO ward SELECT n, -9 FROM crowd WHERE i BETWEEN 1351 AND 1380;
SELECT expected_rows('ward') AS expected_in_tx \gset
SET LOCAL ROLE regress_rows_reader;
SELECT count(*) = :expected_in_tx AS own_new_rows_right FROM ward;
SELECT count(*) = 21 AS own_new_rows_only_permitted FROM ward WHERE los = -9;
RESET ROLE;
ROLLBACK;

-- an UPDATE that gives an old row a blocked number the build never saw
UPDATE ward SET nhs_number = (SELECT n FROM crowd WHERE i = 1500)
WHERE ctid = (SELECT ctid FROM ward WHERE los = 1);
SELECT (SELECT i % 3 = 0 FROM crowd WHERE i = 1500) AS crowd_1500_blocked;
SELECT expected_rows('ward') AS expected \gset
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS updated_row_hidden FROM ward;
SELECT count(*) = 0 AS los_1_gone FROM ward WHERE los = 1;
RESET ROLE;

-- frozen: VACUUM FREEZE keeps each tuple's own xmin
VACUUM (FREEZE) ward;
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS frozen_rows_right FROM ward;
SELECT count(*) = :expected AS frozen_rows_right_again FROM ward;
RESET ROLE;

-- a snapshot older than a build's: a cursor declared before a blocked
-- patient's rows go (deleted by this transaction, so still in the cursor's
-- snapshot, no longer in later ones), fetched after later scans have built
-- the positions under a snapshot that no longer sees those rows (a new
-- objection first, so a new set with nothing noted yet): they must still be
-- hidden from the cursor
SELECT record_objection(n, 'national_data_opt_out', 'test', now() - interval '1 hour') IS NOT NULL AS one_more
FROM crowd WHERE i = 4;
SELECT n AS gone FROM crowd WHERE i = 3 \gset
SELECT count(*) > 0 AS gone_has_rows FROM ward WHERE nhs_number = :'gone';
BEGIN;
SET LOCAL ROLE regress_rows_reader;
DECLARE older CURSOR FOR SELECT count(*) AS n, sum(los) AS los FROM ward;
RESET ROLE;
DELETE FROM ward WHERE nhs_number = :'gone';
SET LOCAL ROLE regress_rows_reader;
SELECT count(*) > 0 AS later_scan FROM ward;
RESET ROLE;
SELECT notes('ward') AS before \gset
SET LOCAL ROLE regress_rows_reader;
SELECT count(*) > 0 AS later_scan_builds FROM ward;
RESET ROLE;
SELECT notes('ward') = :before + 1 AS built_after_the_delete;
SET LOCAL ROLE regress_rows_reader;
FETCH older;
RESET ROLE;
ROLLBACK;
-- what the cursor must have given: the rows as before the DELETE, less
-- every blocked one
SELECT count(*), sum(los) FROM ward t
WHERE NOT EXISTS (SELECT 1 FROM caredata.blocked_nhs_numbers('research', NULL, now()) b
                  WHERE b.nhs_number = t.nhs_number);

-- a new objection: a new set, and rows of its patient hidden at once
SELECT record_objection(n, 'national_data_opt_out', 'test', now() - interval '1 hour') IS NOT NULL AS one_more
FROM crowd WHERE i = 5;
SELECT expected_rows('ward') AS expected \gset
-- scans a LIMIT stops early count the pages they read, not a whole table:
-- many of them note nothing
SELECT pg_relation_size('ward') / 8192 > 50 AS ward_has_many_pages;
SET ROLE regress_rows_reader;
SELECT count(*) = 1 AS limited_scan FROM (SELECT los FROM ward LIMIT 1) x;
SELECT count(*) = 1 AS limited_scan FROM (SELECT los FROM ward LIMIT 1) x;
SELECT count(*) = 1 AS limited_scan FROM (SELECT los FROM ward LIMIT 1) x;
SELECT count(*) = 1 AS limited_scan FROM (SELECT los FROM ward LIMIT 1) x;
RESET ROLE;
SELECT notes('ward') AS before \gset
SET ROLE regress_rows_reader;
SELECT count(*) = 1 AS limited_scan FROM (SELECT los FROM ward LIMIT 1) x;
SELECT count(*) = :expected AS new_objection_hidden FROM ward;
RESET ROLE;
SELECT notes('ward') = :before AS none_after_limited_scans;
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS new_objection_hidden_again FROM ward;
SELECT count(*) = :expected AS new_objection_hidden_third FROM ward;
SELECT count(*) = 0 AS crowd_5_gone FROM ward WHERE nhs_number = (SELECT n FROM crowd WHERE i = 5);
RESET ROLE;
SELECT notes('ward') = :before + 1 AS built_after_a_whole_scan;

-- a new file: TRUNCATE and the blocked patients the old file never had
TRUNCATE ward;
INSERT INTO ward SELECT n, i FROM crowd WHERE i BETWEEN 1801 AND 2400;
SELECT expected_rows('ward') AS expected \gset
SELECT :expected = 400 AS a_third_blocked;
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS new_file_right FROM ward;
RESET ROLE;
SELECT notes('ward') = 0 AS none_for_the_new_file_yet;
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS new_file_right_again FROM ward;
SELECT count(*) = :expected AS new_file_right_third FROM ward;
RESET ROLE;
SELECT notes('ward') = 1 AS new_file_has_its_own;
-- ... and a rewrite (VACUUM FULL keeps each tuple's xmin, in a new file)
VACUUM FULL ward;
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS rewritten_right FROM ward;
SELECT count(*) = :expected AS rewritten_right_again FROM ward;
SELECT count(*) = :expected AS rewritten_right_third FROM ward;
RESET ROLE;
SELECT notes('ward') = 1 AS rewritten_has_its_own;
-- positions belong to a version of the table's pg_class row too (a file
-- number the OID counter reuses is a new version): VACUUM and ANALYZE
-- update the row in place and keep them ...
VACUUM ANALYZE ward;
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS after_vacuum_right FROM ward;
RESET ROLE;
SELECT notes('ward') = 1 AS vacuum_keeps_them;
-- ... a new version drops them at the next scan, and a later one notes
-- them again
ALTER TABLE ward SET (fillfactor = 90);
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS new_version_right FROM ward;
RESET ROLE;
SELECT notes('ward') = 0 AS new_version_drops_them;
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS new_version_right_again FROM ward;
SELECT count(*) = :expected AS new_version_right_third FROM ward;
RESET ROLE;
SELECT notes('ward') = 1 AS new_version_has_its_own;
-- ... and the transaction that wrote the row notes none (it could write
-- the file again under the same xmin)
BEGIN;
ALTER TABLE ward SET (fillfactor = 80);
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS writer_right FROM ward;
SELECT count(*) = :expected AS writer_right_again FROM ward;
SELECT count(*) = :expected AS writer_right_third FROM ward;
RESET ROLE;
COMMIT;
SELECT notes('ward') = 0 AS none_in_the_writing_transaction;
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS after_writer_right FROM ward;
SELECT count(*) = :expected AS after_writer_right_again FROM ward;
RESET ROLE;
SELECT notes('ward') = 1 AS noted_after_the_writer;

-- a parallel plan builds none (its workers are new backends each query)
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
CREATE TABLE ward3 AS SELECT * FROM ward;
GRANT SELECT ON ward3 TO regress_rows_reader;
SELECT protect('ward3', 'nhs_number', 'research') IS NOT NULL AS protected;
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS parallel_first FROM ward3;
SELECT count(*) = :expected AS parallel_second FROM ward3;
SELECT count(*) = :expected AS parallel_third FROM ward3;
RESET ROLE;
SELECT notes('ward3') = 0 AS none_in_parallel;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SET max_parallel_workers_per_gather = 0;

-- a table with more blocked rows than work_mem holds (64 kB: 32k rows)
-- keeps none
CREATE TABLE everyone AS SELECT n AS nhs_number, i AS los FROM crowd, generate_series(1, 40) g;
SET work_mem = '64kB';
SET log_min_messages = debug1;
GRANT SELECT ON everyone TO regress_rows_reader;
SELECT protect('everyone', 'nhs_number', 'research') IS NOT NULL AS protected;
SELECT expected_rows('everyone') AS expected_all \gset
SET ROLE regress_rows_reader;
SELECT count(*) = :expected_all AS everyone_first FROM everyone;
SELECT count(*) = :expected_all AS everyone_second FROM everyone;
SELECT count(*) = :expected_all AS everyone_third FROM everyone;
RESET ROLE;
SELECT notes('everyone') = 0 AS none_for_everyone;
RESET work_mem;
RESET log_min_messages;

-- rows a rolled-back transaction wrote with columns the table no longer
-- has: a rolled-back ADD COLUMN gives its column numbers back, the next
-- ones reuse them with other types; the build never reads such rows (its
-- descriptor would walk a bigint's bytes as a text's length, off the page)
SET caredata.filter_blocked_rows_min = 0;
CREATE TABLE visits (id int, d date) WITH (autovacuum_enabled = off);
INSERT INTO visits SELECT g, date '2020-01-01' FROM generate_series(1, 20) g;
BEGIN;
ALTER TABLE visits ADD COLUMN a bigint, ADD COLUMN b bigint;
UPDATE visits SET a = 1073741824, b = 1;
ROLLBACK;
ALTER TABLE visits ADD COLUMN note text;
ALTER TABLE visits ADD COLUMN nhs_number nhs_number;
UPDATE visits SET nhs_number = (SELECT n FROM crowd WHERE crowd.i = visits.id);
SELECT (SELECT attnum FROM pg_attribute WHERE attrelid = 'visits'::regclass AND attname = 'nhs_number') = 4
  AS nhs_number_is_column_4;
GRANT SELECT ON visits TO regress_rows_reader;
SELECT protect('visits', 'nhs_number', 'research') IS NOT NULL AS protected;
SELECT expected_rows('visits') AS expected_visits \gset
SET ROLE regress_rows_reader;
SELECT count(*) = :expected_visits AS visits_first FROM visits;
SELECT count(*) = :expected_visits AS visits_second FROM visits;
SELECT count(*) = :expected_visits AS visits_third FROM visits;
RESET ROLE;
SELECT notes('visits') = 1 AS visits_has_its_own;
SELECT unprotect('visits') IS NOT NULL AS unprotected;
DROP TABLE visits;

-- HOT chains: rows updated in place of their page (no index), pruned by
-- VACUUM so that their first line pointers redirect to the new versions,
-- before the build; then a HOT update that gives a permitted row a
-- blocked number after it (the new version's xmin follows the horizon)
CREATE TABLE hot (nhs_number nhs_number, los int) WITH (fillfactor = 50, autovacuum_enabled = off);
INSERT INTO hot SELECT n, i FROM crowd WHERE i <= 600;
UPDATE hot SET los = los + 1000 WHERE los % 2 = 0;
VACUUM hot;
GRANT SELECT ON hot TO regress_rows_reader;
SELECT protect('hot', 'nhs_number', 'research') IS NOT NULL AS protected;
SELECT expected_rows('hot') AS expected_hot \gset
SET ROLE regress_rows_reader;
SELECT count(*) = :expected_hot AS hot_first FROM hot;
SELECT count(*) = :expected_hot AS hot_second FROM hot;
SELECT count(*) = :expected_hot AS hot_third FROM hot;
RESET ROLE;
SELECT notes('hot') = 1 AS hot_has_its_own;
UPDATE hot SET nhs_number = (SELECT n FROM crowd WHERE i = 603) WHERE los = 1001;
SELECT (SELECT i % 3 = 0 FROM crowd WHERE i = 603) AS crowd_603_blocked;
SELECT expected_rows('hot') AS expected_hot \gset
SET ROLE regress_rows_reader;
SELECT count(*) = :expected_hot AS hot_updated_row_hidden FROM hot;
SELECT count(*) = 0 AS hot_los_1001_gone FROM hot WHERE los = 1001;
RESET ROLE;
SELECT unprotect('hot') IS NOT NULL AS unprotected;
DROP TABLE hot;

-- a column added with a default: the rows older than it hold no value, the
-- default stands for it (pg_attribute.attmissingval); a blocked default
-- hides every one of them, before and after the build
CREATE TABLE late (id int);
INSERT INTO late SELECT g FROM generate_series(1, 2000) g;
ALTER TABLE late ADD COLUMN nhs_number nhs_number
  DEFAULT '9990100020';	-- the crowd's third: blocked
SELECT (SELECT atthasmissing FROM pg_attribute WHERE attrelid = 'late'::regclass AND attname = 'nhs_number')
  AS default_stands_for_old_rows;
INSERT INTO late SELECT 0, n FROM crowd WHERE i BETWEEN 10 AND 19;
GRANT SELECT ON late TO regress_rows_reader;
SELECT protect('late', 'nhs_number', 'research') IS NOT NULL AS protected;
SELECT expected_rows('late') AS expected_late \gset
SELECT :expected_late < 10 AS old_rows_all_blocked;
SET ROLE regress_rows_reader;
SELECT count(*) = :expected_late AS late_first FROM late;
SELECT count(*) = :expected_late AS late_second FROM late;
SELECT count(*) = :expected_late AS late_third FROM late;
RESET ROLE;
SELECT unprotect('late') IS NOT NULL AS unprotected;
DROP TABLE late;

-- COPY FREEZE: rows written frozen by the loading transaction keep its id
-- as their raw xmin (a new file, as FREEZE needs the table made or
-- truncated in the same transaction)
CREATE TABLE loaded (nhs_number nhs_number, los int);
GRANT SELECT ON loaded TO regress_rows_reader;
SELECT protect('loaded', 'nhs_number', 'research') IS NOT NULL AS protected;
BEGIN;
TRUNCATE loaded;
COPY loaded FROM stdin WITH (FREEZE);
9990100004	1
9990100012	2
9990100020	3
9990100039	4
9990100047	5
9990100055	6
9990100063	7
9990100071	8
9990100098	9
9990100101	10
9990100128	11
9990100136	12
9990100144	13
9990100152	14
9990100160	15
9990100179	16
9990100187	17
9990100195	18
9990100209	19
9990100217	20
9990100225	21
9990100233	22
9990100241	23
9990100268	24
9990100276	25
9990100284	26
9990100292	27
9990100306	28
9990100314	29
9990100322	30
\.
COMMIT;
SELECT count(*) = 30 AS loaded, bool_and(xmin::text::bigint > 2) AS raw_xmin_normal FROM loaded;
SELECT expected_rows('loaded') AS expected_loaded \gset
SELECT :expected_loaded < 30 AS some_loaded_rows_blocked;
SET ROLE regress_rows_reader;
SELECT count(*) = :expected_loaded AS loaded_first FROM loaded;
SELECT count(*) = :expected_loaded AS loaded_second FROM loaded;
SELECT count(*) = :expected_loaded AS loaded_third FROM loaded;
RESET ROLE;
SELECT notes('loaded') = 1 AS loaded_has_its_own;
SELECT unprotect('loaded') IS NOT NULL AS unprotected;
DROP TABLE loaded;

-- below caredata.filter_blocked_rows_min numbers (its default, 100,000):
-- none, as in a parallel query
RESET caredata.filter_blocked_rows_min;
CREATE TABLE ward2 AS SELECT * FROM ward;
GRANT SELECT ON ward2 TO regress_rows_reader;
SELECT protect('ward2', 'nhs_number', 'research') IS NOT NULL AS protected;
SET ROLE regress_rows_reader;
SELECT count(*) = :expected AS small_set_first FROM ward2;
SELECT count(*) = :expected AS small_set_second FROM ward2;
SELECT count(*) = :expected AS small_set_third FROM ward2;
-- an analyst cannot lower the limit (it is a superuser's setting)
SET caredata.filter_blocked_rows_min = 0;
RESET ROLE;
SELECT notes('ward2') = 0 AS none_for_a_small_set;

SELECT unprotect('ward') IS NOT NULL, unprotect('ward2') IS NOT NULL, unprotect('ward3') IS NOT NULL,
  unprotect('everyone') IS NOT NULL;
DROP TABLE ward, ward2, ward3, everyone, crowd;
DROP FUNCTION expected_rows(regclass), rows_bytes(), notes(regclass), set_bytes();
DROP ROLE regress_rows_reader;
DROP EXTENSION caredata;
