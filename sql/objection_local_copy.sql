-- A backend that has scanned tables of at least 8 times a shared blocked
-- set's size with it keeps its own copy of that set
-- (src/objection/set_cache.c, blocked_set_for_scan();
-- caredata.filter_local_copy): the copy changes where the set's memory is,
-- never which rows pass.  Every count below must equal the answer worked
-- out from the register directly, with the copy and without, through
-- permitted() and through protect()'s row filter; the copy is made after
-- long scans of a set from the shared registry, not after a short one.
CREATE EXTENSION caredata;
SET search_path = public, caredata;
SET max_parallel_workers_per_gather = 0;

-- 909 blocked numbers (of the 2,727 valid ones in the range): a set of
-- 9 kB of arrays, larger than one page of table
CREATE TABLE crowd AS
SELECT row_number() OVER (ORDER BY c) AS i, try_nhs_number(c::text) AS n
FROM generate_series(9990100000, 9990129999) c
WHERE try_nhs_number(c::text) IS NOT NULL;
SELECT count(*) FILTER (WHERE record_objection(n, 'national_data_opt_out', 'test', now() - interval '1 day') IS NOT NULL) > 900
  AS many_objections
FROM crowd WHERE i % 3 = 0;

-- a table of many pages (larger than the set) and one of a single page
CREATE TABLE big AS SELECT n AS nhs_number, g AS los
FROM generate_series(1, 30000) g JOIN crowd ON crowd.i = 1 + (g * 7919) % 2700;
CREATE TABLE small AS SELECT n AS nhs_number, i AS los FROM crowd WHERE i <= 30;
SELECT pg_relation_size('big') > 200000 AS big_is_big, pg_relation_size('small') = 8192 AS small_is_one_page;
ANALYZE big, small;

-- the reference: rows whose number is not in the register's blocked set
CREATE FUNCTION expected_rows(tab regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE r bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM %s t WHERE NOT EXISTS
                  (SELECT 1 FROM caredata.blocked_nhs_numbers(''research'', NULL, now()) b
                   WHERE b.nhs_number = t.nhs_number)', tab) INTO r;
  RETURN r;
END $$;
-- the bytes this backend holds for its blocked sets
CREATE FUNCTION set_bytes() RETURNS bigint LANGUAGE sql AS $$
  SELECT coalesce(sum(total_bytes), 0)::bigint FROM pg_backend_memory_contexts
  WHERE name = 'caredata objection set'
$$;

-- this backend builds the set and offers it to the others (its own arrays:
-- no copy); a new backend then maps the shared one
SELECT count(*) = expected_rows('small') AS built_here FROM small WHERE permitted(nhs_number, 'research');
\c
SET search_path = public, caredata;
SET max_parallel_workers_per_gather = 0;
SELECT set_bytes() = 0 AS no_set_yet;
-- a short scan: the shared set in place
SELECT count(*) = expected_rows('small') AS small_matches FROM small WHERE permitted(nhs_number, 'research');
SELECT set_bytes() AS mapped_bytes \gset
SELECT :mapped_bytes <= 8192 AS small_scan_no_copy;
-- the copy switched off: the shared set in place
SET caredata.filter_local_copy = off;
SELECT count(*) = expected_rows('big') AS big_matches_without_copy FROM big WHERE permitted(nhs_number, 'research');
SELECT set_bytes() = :mapped_bytes AS off_no_copy;
-- on (the default): after these long scans, the backend's own copy
RESET caredata.filter_local_copy;
SELECT count(*) = expected_rows('big') AS big_matches_with_copy FROM big WHERE permitted(nhs_number, 'research');
SELECT set_bytes() - :mapped_bytes > 8192 AS long_scan_copied;
SELECT count(*) = expected_rows('big') AS copy_reused FROM big WHERE permitted(nhs_number, 'research');

-- through protect()'s row filter, as a role that must obey it (the scan's
-- own loop, qual_eval.c), with the copy and without
CREATE ROLE regress_local_copy_reader NOLOGIN IN ROLE caredata_analyst;
GRANT SELECT ON big TO regress_local_copy_reader;
SELECT protect('big', 'nhs_number', 'research') IS NOT NULL AS protected;
SELECT expected_rows('big') AS expected_big \gset
SET ROLE regress_local_copy_reader;
SELECT count(*) = :expected_big AS filtered_with_copy FROM big;
SET caredata.filter_local_copy = off;
SELECT count(*) = :expected_big AS filtered_without_copy FROM big;
RESET caredata.filter_local_copy;
RESET ROLE;

-- a new objection is a new register version: a new set (built here, its
-- own arrays), the same answers
SELECT record_objection(n, 'national_data_opt_out', 'test', now() - interval '1 hour') IS NOT NULL AS one_more
FROM crowd WHERE i = 1;
SELECT expected_rows('big') < :expected_big AS fewer_expected;
SELECT expected_rows('big') AS expected_big \gset
SET ROLE regress_local_copy_reader;
SELECT count(*) = :expected_big AS filtered_after_new_objection FROM big;
RESET ROLE;

SELECT unprotect('big') IS NOT NULL AS unprotected;
DROP TABLE big, small, crowd;
DROP FUNCTION expected_rows(regclass), set_bytes();
DROP ROLE regress_local_copy_reader;
DROP EXTENSION caredata;
