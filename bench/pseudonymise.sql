-- bench/pseudonymise.sql: pseudonymise 10M NHS numbers.
-- Baselines measured in the same run: a plain count(*) scan of the same
-- table, and pgcrypto's hmac(n::text::bytea, key, 'sha256') (keyed HMAC-SHA256 with
-- the key passed in SQL, the usual hand-rolled alternative).  And what
-- PostgreSQL itself costs a row before any cryptography: reading the
-- column (count(n)), one call of a built-in returning a by-value result
-- (i8tod), and a built-in whose work is only to build a by-reference
-- result (point(float8, float8): a 16-byte palloc a row, as a pseudonym's
-- 24 bytes are, and the reset of the per-tuple memory that follows).
-- Every query runs once per round, the rounds interleaved (a busier moment
-- of a shared machine weighs on all of them); each line gives the median
-- wall time, its range, the median of the rounds' ratios to the scan (and
-- their range), and the same for the backend's own CPU time (from
-- /proc/self/schedstat: what other processes do to the wall clock does not
-- count).  Serial plans, no JIT: the ratios are per-row costs.
\set ON_ERROR_STOP 1
SET max_parallel_workers_per_gather = 0;
SET jit = off;
\if :{?rounds}
\else
\set rounds 5
\endif

-- psql -v keep=1 -f bench/pseudonymise.sql (in caredata_bench, after one
-- bench/run.sh, which makes the extension anew) keeps the 10M-row table for
-- the next run: it takes minutes to make
SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('bench.nhs')
               AND attname = 'n' AND atttypid = 'caredata.nhs_number'::regtype) AS have_table \gset
\if :have_table
\else
DROP TABLE IF EXISTS bench.nhs;
CREATE UNLOGGED TABLE bench.nhs AS
SELECT caredata.nhs_number(nhs) AS n FROM bench.nhs_numbers(10000000, 20261124);
VACUUM ANALYZE bench.nhs;
\endif
SELECT count(*) AS rows FROM bench.nhs;

-- a new domain (key version 1: aes256-cmac), and one whose version is
-- hmac-sha256, as every version made before 0.2.0 is
SELECT caredata.create_domain('bench_' || to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS'), 'benchmark') AS id \gset
SELECT name AS domain FROM caredata.domain WHERE id = :id \gset
SELECT caredata.create_domain('bench_hmac_' || to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS'), 'benchmark') AS hid \gset
SELECT name AS hmac_domain FROM caredata.domain WHERE id = :hid \gset
UPDATE caredata.domain_key SET scheme = 'hmac-sha256' WHERE domain_id = :hid;
-- a 32-byte key for the pgcrypto baseline (random; it is only a baseline)
SELECT gen_random_bytes(32) AS bench_key \gset

-- this backend's CPU time so far, in ms
CREATE FUNCTION pg_temp.cpu_ms() RETURNS double precision LANGUAGE sql AS $$
  SELECT split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::numeric / 1e6
$$;

-- rounds of every query in turn; settings[i] ('name=value' or '') holds
-- while query i runs.  Query 1 is the baseline of the ratios; the line of
-- query `vs` also gives its ratio to each query.
CREATE FUNCTION pg_temp.rounds(labels text[], queries text[], settings text[], runs int, vs int)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz;
  c0 double precision;
  n int := array_length(queries, 1);
  r record;
BEGIN
  CREATE TEMP TABLE IF NOT EXISTS timing (round int, q int, wall double precision, cpu double precision);
  TRUNCATE timing;
  -- one unmeasured pass: caches warm, keys derived
  FOR q IN 1..n LOOP
    IF settings[q] <> '' THEN
      PERFORM set_config(split_part(settings[q], '=', 1), split_part(settings[q], '=', 2), false);
    END IF;
    EXECUTE replace(queries[q], 'FROM bench.nhs', 'FROM (SELECT * FROM bench.nhs LIMIT 1000) nhs');
    IF settings[q] <> '' THEN
      EXECUTE 'RESET ' || split_part(settings[q], '=', 1);
    END IF;
  END LOOP;
  FOR i IN 1..runs LOOP
    FOR q IN 1..n LOOP
      IF settings[q] <> '' THEN
        PERFORM set_config(split_part(settings[q], '=', 1), split_part(settings[q], '=', 2), false);
      END IF;
      c0 := pg_temp.cpu_ms();
      t0 := clock_timestamp();
      EXECUTE queries[q];
      INSERT INTO timing VALUES (i, q, extract(epoch FROM clock_timestamp() - t0) * 1000, pg_temp.cpu_ms() - c0);
      IF settings[q] <> '' THEN
        EXECUTE 'RESET ' || split_part(settings[q], '=', 1);
      END IF;
    END LOOP;
  END LOOP;
  RAISE NOTICE '%', format('%-58s %9s %17s %22s %9s %14s', 'median of ' || runs || ' interleaved rounds',
    'wall ms', '(range)', 'x scan (range)', 'cpu ms', 'x scan (cpu)');
  FOR r IN
    SELECT t.q,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY t.wall) AS wall,
           min(t.wall) AS wall_min, max(t.wall) AS wall_max,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY t.wall / b.wall) AS ratio,
           min(t.wall / b.wall) AS ratio_min, max(t.wall / b.wall) AS ratio_max,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY t.cpu) AS cpu,
           percentile_disc(0.5) WITHIN GROUP (ORDER BY t.cpu / b.cpu) AS cpu_ratio,
           min(t.cpu / b.cpu) AS cpu_ratio_min, max(t.cpu / b.cpu) AS cpu_ratio_max
      FROM timing t JOIN timing b ON b.round = t.round AND b.q = 1
     GROUP BY t.q ORDER BY t.q
  LOOP
    INSERT INTO bench.result (bench, label, ms, baseline, baseline_ms)
    VALUES ('pseudonymise', labels[r.q], r.wall, CASE WHEN r.q > 1 THEN labels[1] END,
            CASE WHEN r.q > 1 THEN r.wall / r.ratio END);
    RAISE NOTICE '%', format('%-58s %9s %17s %22s %9s %14s', labels[r.q],
      to_char(r.wall, 'FM999990.0'),
      '(' || to_char(r.wall_min, 'FM999990') || '-' || to_char(r.wall_max, 'FM999990') || ')',
      to_char(r.ratio, 'FM990.00') || ' (' || to_char(r.ratio_min, 'FM990.00') || '-' || to_char(r.ratio_max, 'FM990.00') || ')',
      to_char(r.cpu, 'FM999990.0'),
      to_char(r.cpu_ratio, 'FM990.00') || ' (' || to_char(r.cpu_ratio_min, 'FM990.00') || '-' || to_char(r.cpu_ratio_max, 'FM990.00') || ')');
  END LOOP;
  FOR r IN
    SELECT t.q, percentile_disc(0.5) WITHIN GROUP (ORDER BY v.wall / t.wall) AS times_faster,
           min(v.wall / t.wall) AS lo, max(v.wall / t.wall) AS hi
      FROM timing t JOIN timing v ON v.round = t.round AND v.q = vs
     WHERE t.q NOT IN (1, vs)
     GROUP BY t.q ORDER BY t.q
  LOOP
    RAISE NOTICE '%', format('%-58s %s', labels[r.q] || ': throughput vs ' || labels[vs],
      to_char(r.times_faster, 'FM990.00') || 'x (rounds ' || to_char(r.lo, 'FM990.00') || '-' || to_char(r.hi, 'FM990.00') || ')');
  END LOOP;
END $$;

SELECT count(*) FROM bench.nhs;
SELECT pg_temp.rounds(
  ARRAY['count(*) plain scan',
        'count(n): the column read, no call',
        'n::bigint::float8: one by-value call (PostgreSQL''s i8tod)',
        'point(n::bigint::float8, 0): PostgreSQL''s 16-byte result',
        'pseudonymise(nhs_number), aes256-cmac',
        'pseudonymise(nhs_number), aes256-cmac through EVP',
        'pseudonymise(nhs_number), hmac-sha256 (before 0.2.0)',
        'pseudonymise(n::text)',
        'pseudonymise(n::bigint)',
        'pseudonymise_identifier(n::text)',
        'pgcrypto hmac(n::text, key)'],
  ARRAY['SELECT count(*) FROM bench.nhs',
        'SELECT count(n) FROM bench.nhs',
        'SELECT count(n::bigint::float8) FROM bench.nhs',
        'SELECT count(point(n::bigint::float8, 0::float8)) FROM bench.nhs',
        format('SELECT count(caredata.pseudonymise(n, %L)) FROM bench.nhs', :'domain'),
        format('SELECT count(caredata.pseudonymise(n, %L)) FROM bench.nhs', :'domain'),
        format('SELECT count(caredata.pseudonymise(n, %L)) FROM bench.nhs', :'hmac_domain'),
        format('SELECT count(caredata.pseudonymise(n::text, %L)) FROM bench.nhs', :'domain'),
        format('SELECT count(caredata.pseudonymise(n::bigint, %L)) FROM bench.nhs', :'domain'),
        format('SELECT count(caredata.pseudonymise_identifier(n::text, %L)) FROM bench.nhs', :'domain'),
        format('SELECT count(hmac(n::text::bytea, %L::bytea, ''sha256'')) FROM bench.nhs', :'bench_key')],
  ARRAY['', '', '', '', '', 'caredata.aes_instructions=off', '', '', '', '', ''],
  :rounds, 11);

\if :{?keep}
\else
DROP TABLE bench.nhs;
\endif
SELECT caredata.retire_domain(:'domain');
SELECT caredata.retire_domain(:'hmac_domain');
