-- Parallel workers take the leader's blocked set (src/objection/set_parallel.c) when
-- it answers for the same register version, purpose, dataset and time, and
-- build their own otherwise: the rows a role sees are the same either way.
CREATE EXTENSION caredata;
SET search_path = public, caredata;

\i sql/include/test_pool.psql
SELECT count(*) FILTER (WHERE record_objection(n, 'national_data_opt_out', 'test', now() - interval '1 day') IS NOT NULL)
  AS objections
FROM pool WHERE i % 4 = 0;
SELECT grant_exemption('study_x', 'research', 'national_data_opt_out', 'cag_section_251', 'CAG 1-23') IS NOT NULL
  AS exemption;

CREATE TABLE episode AS SELECT n AS nhs_number, g AS los
FROM generate_series(1::bigint, 40000) g JOIN pool ON pool.i = 1 + (g * 104729) % 400;
ANALYZE episode;
CREATE ROLE regress_parallel_reader NOLOGIN IN ROLE caredata_analyst;
GRANT SELECT ON episode TO regress_parallel_reader;

CREATE FUNCTION expected_rows(dataset text) RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM episode t WHERE NOT EXISTS
    (SELECT 1 FROM caredata.blocked_nhs_numbers('research', dataset, now()) b WHERE b.nhs_number = t.nhs_number)
$$;
SELECT expected_rows(NULL) AS expected, expected_rows('study_x') AS expected_exempt \gset
SELECT :expected AS expected, :expected_exempt AS expected_exempt;

SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;

-- the plan is parallel, and the leader names its set for the workers
EXPLAIN (COSTS OFF) SELECT count(*) FROM episode WHERE permitted(nhs_number, 'research');
BEGIN;
SELECT count(*) = :expected AS parallel_matches FROM episode WHERE permitted(nhs_number, 'research');
SELECT current_setting('caredata.parallel_sets') ~ '^[0-9]+$' AS one_set_shared;
-- a dataset with an exemption is another set, shared beside the first
SELECT count(*) = :expected_exempt AS exempt_matches
FROM episode WHERE permitted(nhs_number, 'research', now(), 'study_x');
SELECT current_setting('caredata.parallel_sets') ~ '^[0-9]+ [0-9]+$' AS two_sets_shared;
-- a new objection in the same transaction is a new register version: the
-- shared sets no longer match it, and the next query shares a new one
SELECT record_objection(n, 'national_data_opt_out', 'test', now() - interval '1 hour') IS NOT NULL
FROM pool WHERE i = 1;
SELECT expected_rows(NULL) AS expected_after \gset
SELECT :expected_after < :expected AS fewer_rows_now;
SELECT count(*) = :expected_after AS after_new_objection FROM episode WHERE permitted(nhs_number, 'research');
SELECT current_setting('caredata.parallel_sets') ~ '^[0-9]+ [0-9]+ [0-9]+$' AS three_sets_shared;
COMMIT;
SELECT current_setting('caredata.parallel_sets') AS after_commit;

-- the workers used the leader's set, not sets of their own: a count the
-- leader reads back (with the leader out of the scan, workers read every row)
SET parallel_leader_participation = off;
BEGIN;
SELECT count(*) = :expected_after AS workers_only_match FROM episode WHERE permitted(nhs_number, 'research');
SELECT _parallel_set_imports() >= 1 AS workers_imported_leaders_set;
COMMIT;
-- with the hand-over off, no worker imports, and the answer is the same
SET caredata.parallel_handover = off;
BEGIN;
SELECT count(*) = :expected_after AS no_handover_matches FROM episode WHERE permitted(nhs_number, 'research');
SELECT _parallel_set_imports() AS imports_without_handover;
COMMIT;
RESET caredata.parallel_handover;
RESET parallel_leader_participation;

-- through the row filter, as a role that must obey it
SELECT protect('episode', 'nhs_number', 'research');
SET ROLE regress_parallel_reader;
EXPLAIN (COSTS OFF) SELECT count(*) FROM episode;
SELECT count(*) AS filtered_parallel FROM episode;
-- ... whose workers, too, use the leader's set
SET parallel_leader_participation = off;
BEGIN;
SELECT count(*) AS filtered_workers_only FROM episode;
RESET ROLE;
SELECT _parallel_set_imports() >= 1 AS filter_workers_imported;
COMMIT;
RESET parallel_leader_participation;
SET ROLE regress_parallel_reader;
SET max_parallel_workers_per_gather = 0;
SELECT count(*) AS filtered_serial FROM episode;
SET max_parallel_workers_per_gather = 2;
-- naming segments by hand is refused (only caredata sets it, with a
-- superuser's context); the filter answers as before
SET caredata.parallel_sets = '4294967295 12345';
SELECT count(*) AS filtered_with_bogus_setting FROM episode;
RESET ROLE;
SELECT expected_rows(NULL) AS expected_now;

SELECT unprotect('episode');
DROP TABLE episode, pool;
DROP FUNCTION expected_rows(text);
DROP ROLE regress_parallel_reader;
DROP EXTENSION caredata;
