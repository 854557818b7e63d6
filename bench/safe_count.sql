-- bench/safe_count.sql: safe_count(person) over 10M rows in 10,000 groups,
-- against count(DISTINCT person) and count(*) in the same run (interleaved
-- rounds, medians), serial and with parallel workers, with the plan the
-- planner chooses and sorted by group (enable_hashagg off).  The goal: no
-- slower than count(DISTINCT) (a hash state needs no sort), and a parallel
-- plan that scales with workers.
--   psql -v rows=10000000 (default) -v rounds=3 -f bench/safe_count.sql
\set ON_ERROR_STOP 1
\if :{?rows}
\else
\set rows 10000000
\endif
\if :{?rounds}
\else
\set rounds 3
\endif
SET jit = off;
SET client_min_messages = notice;

-- about 1,000 rows a group, drawn from 500,000 people (seed: the hash)
SELECT to_regclass('bench.sc_rows') IS NOT NULL AS have_rows \gset
\if :have_rows
SELECT count(*) = :rows AS have_rows FROM bench.sc_rows \gset
\endif
\if :have_rows
\else
DROP TABLE IF EXISTS bench.sc_rows;
CREATE TABLE bench.sc_rows AS
SELECT (abs(hashint8extended(i, 11)) % 10000)::int AS unit, abs(hashint8extended(i, 12)) % 500000 AS person
  FROM generate_series(1, :rows) i;
VACUUM ANALYZE bench.sc_rows;
\endif

CREATE TEMP TABLE sc_times (round int, what text, workers int, ms double precision);
CREATE OR REPLACE PROCEDURE pg_temp.sc_rounds(rounds int) LANGUAGE plpgsql AS $$
DECLARE
  q record;
  w int;
BEGIN
  FOR i IN 1..rounds LOOP
    FOR q IN SELECT * FROM (VALUES
        ('count(*)', 'SELECT unit, count(*) FROM bench.sc_rows GROUP BY unit'),
        ('count(DISTINCT person)', 'SELECT unit, count(DISTINCT person) FROM bench.sc_rows GROUP BY unit'),
        ('safe_count(person)', 'SELECT unit, caredata.safe_count(person) FROM bench.sc_rows GROUP BY unit'),
        ('safe_count(person), sorted', 'SELECT unit, caredata.safe_count(person) FROM bench.sc_rows GROUP BY unit')) v(what, sql) LOOP
      FOREACH w IN ARRAY ARRAY[0, 2] LOOP
        PERFORM set_config('max_parallel_workers_per_gather', w::text, true);
        -- the planner's own choice, and sorting by group (enable_hashagg off)
        PERFORM set_config('enable_hashagg', CASE WHEN q.what LIKE '%sorted' THEN 'off' ELSE 'on' END, true);
        -- count(DISTINCT) cannot run in parallel; it is measured serially only
        CONTINUE WHEN w > 0 AND (q.what LIKE 'count(DISTINCT%' OR q.what LIKE '%sorted');
        INSERT INTO sc_times SELECT i, q.what, w, bench.time_ms(format('CREATE TEMP TABLE sc_out AS %s; DROP TABLE sc_out', q.sql), 1);
      END LOOP;
    END LOOP;
  END LOOP;
END $$;
CALL pg_temp.sc_rounds(:rounds);
SELECT what, workers, round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS median_ms,
       string_agg(round(ms::numeric)::text, ', ' ORDER BY round) AS rounds_ms
  FROM sc_times GROUP BY what, workers ORDER BY what, workers;
WITH m AS (SELECT what, workers, percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) AS ms FROM sc_times GROUP BY what, workers)
SELECT bench.record('safe_count', 'safe_count, serial', s.ms, 'count(DISTINCT), serial', d.ms),
       bench.record('safe_count', 'safe_count, serial, sorted', o.ms, 'count(DISTINCT), serial', d.ms),
       bench.record('safe_count', 'safe_count, 2 workers', p.ms, 'safe_count, serial', s.ms),
       bench.record('safe_count', 'safe_count, serial', s.ms, 'count(*), serial', c.ms)
  FROM m s, m d, m p, m c, m o
 WHERE o.what = 'safe_count(person), sorted' AND o.workers = 0
   AND s.what = 'safe_count(person)' AND s.workers = 0 AND d.what = 'count(DISTINCT person)' AND d.workers = 0
   AND p.what = 'safe_count(person)' AND p.workers = 2 AND c.what = 'count(*)' AND c.workers = 0;
-- the answers agree with count(DISTINCT) under the policy
SELECT count(*) AS groups_that_differ
  FROM (SELECT unit, caredata.safe_count(person) AS n FROM bench.sc_rows GROUP BY unit) s
  JOIN (SELECT unit, caredata.sdc_apply(count(DISTINCT person)) AS n FROM bench.sc_rows GROUP BY unit) d USING (unit)
 WHERE s.n IS DISTINCT FROM d.n;
