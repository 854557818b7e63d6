-- Parallel workers map their leader's blocked set from the shared registry
-- (src/objection/set_shared.c) when it answers for the same register
-- version, purpose, dataset and time, and build their own otherwise: the
-- rows a role sees are the same either way.
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

-- the plan is parallel; the leader makes sure the shared registry holds its
-- set, and the workers map it from there (with the leader out of the scan,
-- the workers read every row): the registry counts each backend that
-- mapped a set instead of building it
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM episode WHERE permitted(nhs_number, 'research');
SELECT coalesce(sum(shared_uses), 0) AS uses_before FROM blocked_sets() \gset
SELECT count(*) = :expected AS parallel_matches FROM episode WHERE permitted(nhs_number, 'research');
SELECT sum(shared_uses) > :uses_before AS workers_mapped_the_shared_set FROM blocked_sets();
-- a dataset with an exemption is another set, shared beside the first
SELECT count(*) = :expected_exempt AS exempt_matches
FROM episode WHERE permitted(nhs_number, 'research', now(), 'study_x');
SELECT count(*) AS sets_shared, count(dataset) AS for_a_dataset FROM blocked_sets() WHERE purpose = 'research';
-- in a transaction that has written (a new objection: a new register
-- version), nothing is shared, for it may roll back: the workers build
-- their own sets, under the leader's snapshot, and answer alike
BEGIN;
SELECT record_objection(n, 'national_data_opt_out', 'test', now() - interval '1 hour') IS NOT NULL
FROM pool WHERE i = 1;
SELECT expected_rows(NULL) AS expected_after \gset
SELECT :expected_after < :expected AS fewer_rows_now;
SELECT count(*) = :expected_after AS after_new_objection FROM episode WHERE permitted(nhs_number, 'research');
SELECT count(*) AS shared_for_uncommitted_version FROM blocked_sets()
WHERE register_version = (SELECT version FROM register_version);
COMMIT;
-- committed, the next query shares the new version's set
SELECT count(*) = :expected_after AS after_commit_matches FROM episode WHERE permitted(nhs_number, 'research');
SELECT count(*) AS shared_for_new_version FROM blocked_sets()
WHERE register_version = (SELECT version FROM register_version) AND dataset IS NULL;
RESET parallel_leader_participation;

-- through the row filter, as a role that must obey it
SELECT protect('episode', 'nhs_number', 'research');
SET ROLE regress_parallel_reader;
EXPLAIN (COSTS OFF) SELECT count(*) FROM episode;
SELECT count(*) AS filtered_parallel FROM episode;
-- ... whose workers, too, map the shared set
RESET ROLE;
SELECT sum(shared_uses) AS uses_before FROM blocked_sets() \gset
SET ROLE regress_parallel_reader;
SET parallel_leader_participation = off;
SELECT count(*) AS filtered_workers_only FROM episode;
RESET parallel_leader_participation;
RESET ROLE;
SELECT sum(shared_uses) > :uses_before AS filter_workers_mapped_it FROM blocked_sets();
SET ROLE regress_parallel_reader;
SET max_parallel_workers_per_gather = 0;
SELECT count(*) AS filtered_serial FROM episode;
SET max_parallel_workers_per_gather = 2;
RESET ROLE;
SELECT expected_rows(NULL) AS expected_now;

SELECT unprotect('episode');
DROP TABLE episode, pool;
DROP FUNCTION expected_rows(text);
DROP ROLE regress_parallel_reader;
DROP EXTENSION caredata;
