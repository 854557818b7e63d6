-- bench/citus/filter.sql: the objection filter on a Citus distributed table
-- (run by `scripts/citus.sh SRC bench` on the coordinator; not by
-- bench/run.sh, whose cluster has no Citus).  2M episodes of 400k patients, distributed by NHS number
-- over the workers; a register of 600k national opt-outs, 5% of them these
-- patients.  Each timing is the median of 5 interleaved pairs, the same
-- query unfiltered (superuser) and filtered (a caredata_analyst login: Citus
-- reaches the workers as the querying role); for comparison, the same rows
-- in an ordinary table on the coordinator.  Serial plans on each node.
\set ON_ERROR_STOP 1
SET max_parallel_workers_per_gather = 0;
SET jit = off;
SET client_min_messages = warning;

DROP TABLE IF EXISTS bench.citus_episode, bench.local_episode, bench.citus_patient, bench.citus_snapshot;
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_citus_reader') THEN
    EXECUTE 'DROP OWNED BY bench_citus_reader'; EXECUTE 'DROP ROLE bench_citus_reader';
  END IF;
END $$;
CREATE ROLE bench_citus_reader LOGIN IN ROLE caredata_analyst;
GRANT USAGE ON SCHEMA bench TO bench_citus_reader;
GRANT INSERT ON bench.result TO bench_citus_reader;
SELECT caredata.citus_setup();

-- patients: 1M valid numbers from a fixed seed; the first 400k are patients
CREATE UNLOGGED TABLE bench.citus_patient AS
SELECT row_number() OVER (ORDER BY i) AS id, n
FROM (SELECT DISTINCT ON (nhs) i, caredata.nhs_number(nhs) AS n
      FROM bench.nhs_numbers(1000000, 11) ORDER BY nhs, i) x;
CREATE UNLOGGED TABLE bench.local_episode AS
SELECT p.n AS nhs_number, (abs(hashint8extended(i, 12)) % 30)::int AS los
FROM generate_series(1, 2000000) i
JOIN bench.citus_patient p ON p.id = 1 + abs(hashint8extended(i, 13)) % 400000;
CREATE TABLE bench.citus_episode (LIKE bench.local_episode);
SELECT create_distributed_table('bench.citus_episode', 'nhs_number');
INSERT INTO bench.citus_episode SELECT * FROM bench.local_episode;
-- the register: 5% of the patients and 580k people beyond them
CREATE TABLE bench.citus_snapshot AS
SELECT n::text AS nhs_number FROM bench.citus_patient
WHERE (id <= 400000 AND abs(hashint8extended(id, 14)) % 100 < 5) OR id > 420000;
SELECT rows_read, opened FROM caredata.apply_opt_out_snapshot('bench.citus_snapshot', 'nhs_number');
SELECT caredata.protect('bench.citus_episode', 'nhs_number', 'research');
SELECT caredata.protect('bench.local_episode', 'nhs_number', 'research');
GRANT SELECT ON bench.citus_episode, bench.local_episode TO bench_citus_reader;
ANALYZE bench.citus_episode, bench.local_episode;

SELECT count(*) AS episodes, count(*) FILTER (WHERE NOT caredata.permitted(nhs_number, 'research')) AS objectors_episodes
  FROM bench.local_episode;
-- warm: each node builds its blocked set once
SET ROLE bench_citus_reader;
SELECT count(*) AS visible FROM bench.citus_episode;
SELECT count(*) AS visible FROM bench.local_episode;
RESET ROLE;

SET client_min_messages = notice;
SELECT bench.interleaved('citus_filter', 'distributed, 2 workers',
  'SELECT count(*), sum(los) FROM bench.citus_episode', 'bench_citus_reader');
SELECT bench.interleaved('citus_filter', 'ordinary table, coordinator',
  'SELECT count(*), sum(los) FROM bench.local_episode', 'bench_citus_reader');

SET client_min_messages = warning;
DROP TABLE bench.citus_episode, bench.local_episode, bench.citus_patient, bench.citus_snapshot;
DROP OWNED BY bench_citus_reader;
DROP ROLE bench_citus_reader;
