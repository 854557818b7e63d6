-- bench/cell_key.sql: safe_count(person) under the cell key policy
-- (record keys, cell key, p-table) over 10M rows in 10,000 groups, against
-- count(DISTINCT person) and safe_count under nhs_hes in the same run
-- (interleaved rounds, medians; serial).  The goal: at most 1.2x
-- count(DISTINCT).  Uses bench.sc_rows of bench/safe_count.sql (made here
-- when missing).
--   psql -v rows=10000000 (default) -v rounds=3 -f bench/cell_key.sql
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

CREATE TEMP TABLE ck_times (round int, what text, ms double precision);
CREATE OR REPLACE PROCEDURE pg_temp.ck_rounds(rounds int) LANGUAGE plpgsql AS $$
DECLARE
  q record;
BEGIN
  PERFORM set_config('max_parallel_workers_per_gather', '0', false);
  FOR i IN 1..rounds LOOP
    FOR q IN SELECT * FROM (VALUES
        ('count(DISTINCT person)', 'SELECT unit, count(DISTINCT person) FROM bench.sc_rows GROUP BY unit'),
        ('safe_count(person), nhs_hes', 'SELECT unit, caredata.safe_count(person, ''nhs_hes'') FROM bench.sc_rows GROUP BY unit'),
        ('safe_count(person), cell_key', 'SELECT unit, caredata.safe_count(person, ''cell_key'') FROM bench.sc_rows GROUP BY unit')) v(what, sql) LOOP
      INSERT INTO ck_times SELECT i, q.what, bench.time_ms(format('CREATE TEMP TABLE ck_out AS %s; DROP TABLE ck_out', q.sql), 1);
    END LOOP;
  END LOOP;
END $$;
CALL pg_temp.ck_rounds(:rounds);
SELECT what, round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS median_ms,
       string_agg(round(ms::numeric)::text, ', ' ORDER BY round) AS rounds_ms
  FROM ck_times GROUP BY what ORDER BY what;
WITH m AS (SELECT what, percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) AS ms FROM ck_times GROUP BY what)
SELECT bench.record('cell_key', 'safe_count cell_key, serial', c.ms, 'count(DISTINCT), serial', d.ms),
       bench.record('cell_key', 'safe_count cell_key, serial', c.ms, 'safe_count nhs_hes, serial', h.ms)
  FROM m c, m d, m h
 WHERE c.what = 'safe_count(person), cell_key' AND d.what = 'count(DISTINCT person)' AND h.what = 'safe_count(person), nhs_hes';
-- the answers: every group within 2 of its count(DISTINCT) (groups of about 1,000 people)
SELECT count(*) AS groups, count(*) FILTER (WHERE abs(c.n - d.n) > 2) AS beyond_2,
       round(avg(c.n - d.n), 3) AS mean_error, round(variance(c.n - d.n), 3) AS error_variance
  FROM (SELECT unit, caredata.safe_count(person, 'cell_key') AS n FROM bench.sc_rows GROUP BY unit) c
  JOIN (SELECT unit, count(DISTINCT person) AS n FROM bench.sc_rows GROUP BY unit) d USING (unit);
