-- bench/lib.sql: timing helpers shared by every benchmark.
-- bench.time_ms(query, runs) runs the query `runs` times inside the server
-- (no client transfer) and returns the median wall time in milliseconds.
-- bench.report(...) prints one result line as a ratio to a baseline.
CREATE SCHEMA IF NOT EXISTS bench;

-- the synthetic-data generator's helpers (synth.check_digit, synth.u)
\i test/synthetic/generate.sql

-- how_many valid NHS numbers from a seed, as bigint, in the unallocated
-- 900 000 0000 - 999 999 9999 block (never a real patient's; repeats possible)
CREATE OR REPLACE FUNCTION bench.nhs_numbers(how_many bigint, seed bigint)
RETURNS TABLE (i bigint, nhs bigint) LANGUAGE sql STABLE AS $$
  SELECT row_number() OVER (ORDER BY g), base * 10 + synth.check_digit(base)
  FROM (SELECT g, 900000000 + abs(hashint8extended(g, seed)) % 100000000 AS base
        FROM generate_series(1, (how_many * 1.12)::bigint + 1000) g) b
  WHERE synth.check_digit(base) >= 0 AND base <> 999999999   -- 9999999999: ten equal digits
  ORDER BY g
  LIMIT how_many
$$;

CREATE OR REPLACE FUNCTION bench.time_ms(query text, runs int DEFAULT 3)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz;
  times double precision[] := '{}';
BEGIN
  FOR i IN 1..runs LOOP
    t0 := clock_timestamp();
    EXECUTE query;
    times := times || extract(epoch FROM clock_timestamp() - t0) * 1000;
  END LOOP;
  RETURN (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(times) x);
END $$;

CREATE TABLE IF NOT EXISTS bench.result (
  run_at timestamptz DEFAULT now(),
  bench text, label text, ms double precision, baseline text, baseline_ms double precision
);

-- keep a measurement and print it as a ratio to an already measured baseline
CREATE OR REPLACE FUNCTION bench.record(bench_name text, label text, ms double precision,
                                         baseline text, baseline_ms double precision)
RETURNS double precision LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO bench.result (bench, label, ms, baseline, baseline_ms)
  VALUES (bench_name, label, ms, baseline, baseline_ms);
  RAISE NOTICE '%', format('%-18s %-34s %9s ms   %6sx %s', bench_name, label,
    to_char(ms, 'FM999990.0'),
    CASE WHEN baseline_ms IS NULL THEN '-' ELSE to_char(ms / baseline_ms, 'FM990.00') END,
    coalesce(baseline, '(baseline)'));
  RETURN ms;
END $$;

-- time `query` (median of `runs`), compare with a baseline, print and keep it
CREATE OR REPLACE FUNCTION bench.report(bench_name text, label text, query text,
                                         baseline text, baseline_ms double precision,
                                         runs int DEFAULT 3)
RETURNS double precision LANGUAGE sql AS $$
  SELECT bench.record(bench_name, label, bench.time_ms(query, runs), baseline, baseline_ms)
$$;

-- the same, but each run in a transaction of its own (CALL it outside a
-- transaction block): for costs paid once per transaction
CREATE OR REPLACE PROCEDURE bench.report_tx(bench_name text, label text, query text,
                                            baseline text, baseline_ms double precision,
                                            runs int DEFAULT 3, INOUT ms double precision DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
  times double precision[] := '{}';
BEGIN
  FOR i IN 1..runs LOOP
    times := times || bench.time_ms(query, 1);
    COMMIT;
  END LOOP;
  ms := bench.record(bench_name, label,
                     (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(times) x),
                     baseline, baseline_ms);
END $$;

-- the filter's cost as the issue states its goal: `runs` pairs, each the
-- query as the caller (a superuser: unfiltered) then as `filtered_role`,
-- back to back, so that a slower or busier moment weighs on both; prints
-- the median of the pairs' ratios (and of each side's times)
CREATE OR REPLACE FUNCTION bench.interleaved(bench_name text, label text, query text,
                                              filtered_role text, runs int DEFAULT 5)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
  base double precision[] := '{}';
  filt double precision[] := '{}';
  ratio double precision[] := '{}';
  b double precision;
  f double precision;
  med_b double precision;
  med_f double precision;
  med_r double precision;
BEGIN
  FOR i IN 1..runs LOOP
    b := bench.time_ms(query, 1);
    EXECUTE format('SET LOCAL ROLE %I', filtered_role);
    f := bench.time_ms(query, 1);
    RESET ROLE;
    base := base || b; filt := filt || f; ratio := ratio || f / b;
  END LOOP;
  SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) INTO med_b FROM unnest(base) x;
  SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) INTO med_f FROM unnest(filt) x;
  SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) INTO med_r FROM unnest(ratio) x;
  INSERT INTO bench.result (bench, label, ms, baseline, baseline_ms)
  VALUES (bench_name, label, med_f, 'interleaved no filter', med_b);
  RAISE NOTICE '%', format('%-18s %-34s %9s ms   %6sx median of %s interleaved pairs (no filter %s ms; ratios %s)',
    bench_name, label, to_char(med_f, 'FM999990.0'), to_char(med_r, 'FM990.00'), runs,
    to_char(med_b, 'FM999990.0'),
    (SELECT string_agg(to_char(x, 'FM990.00'), ' ') FROM unnest(ratio) x));
  RETURN med_r;
END $$;

-- what one mechanism of the filter buys: `runs` pairs, each the query as
-- `filtered_role` with `setting` on (its default) then off, each run a
-- transaction of its own (the parallel hand-over is per transaction), back
-- to back; prints the median of the pairs' off/on ratios (above 1: the
-- mechanism earns its keep)
CREATE OR REPLACE PROCEDURE bench.interleaved_off(bench_name text, label text, query text,
                                                  filtered_role text, setting text, runs int DEFAULT 5)
LANGUAGE plpgsql AS $$
DECLARE
  t_on double precision[] := '{}';
  t_off double precision[] := '{}';
  ratio double precision[] := '{}';
  a double precision;
  b double precision;
  med_on double precision;
  med_off double precision;
  med_r double precision;
BEGIN
  FOR i IN 1..runs LOOP
    EXECUTE format('SET ROLE %I', filtered_role);
    a := bench.time_ms(query, 1);
    RESET ROLE;
    COMMIT;
    PERFORM set_config(setting, 'off', false);
    EXECUTE format('SET ROLE %I', filtered_role);
    b := bench.time_ms(query, 1);
    RESET ROLE;
    PERFORM set_config(setting, 'on', false);
    COMMIT;
    t_on := t_on || a; t_off := t_off || b; ratio := ratio || b / a;
  END LOOP;
  SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) INTO med_on FROM unnest(t_on) x;
  SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) INTO med_off FROM unnest(t_off) x;
  SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) INTO med_r FROM unnest(ratio) x;
  INSERT INTO bench.result (bench, label, ms, baseline, baseline_ms)
  VALUES (bench_name, label, med_off, setting || ' on', med_on);
  RAISE NOTICE '%', format('%-18s %-34s %9s ms   %6sx median of %s interleaved pairs (%s on: %s ms; ratios off/on %s)',
    bench_name, label, to_char(med_off, 'FM999990.0'), to_char(med_r, 'FM990.00'), runs, setting,
    to_char(med_on, 'FM999990.0'),
    (SELECT string_agg(to_char(x, 'FM990.00'), ' ') FROM unnest(ratio) x));
  COMMIT;
END $$;
