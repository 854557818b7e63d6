-- bench/opt_out_snapshot.sql: applying a 3M-number National Data Opt-out
-- snapshot (apply_opt_out_snapshot), from an empty register and with about
-- 1% changed (30k numbers gone, 30k new), against hand-written SQL in the
-- same run: parsing the snapshot alone (CREATE TABLE AS try_nhs_number),
-- and inserting the same rows into a copy of the register's table with its
-- indexes (INSERT ... SELECT in NHS number order).  Interleaved rounds,
-- medians.  Goals (issue 28): from empty <= 10 s; ~1% changed <= 3 s.
--   psql -v rounds=3 (default) -f bench/opt_out_snapshot.sql
\set ON_ERROR_STOP 1
\if :{?rounds}
\else
\set rounds 3
\endif
SET jit = off;
SET client_min_messages = warning;

-- the snapshots, from fixed seeds: 3M numbers (some repeated, as deliveries
-- have), and the same less 1% plus 30k new ones
DROP TABLE IF EXISTS bench.snap_full, bench.snap_changed, bench.register_copy;
CREATE UNLOGGED TABLE bench.snap_full AS
SELECT caredata.nhs_number(nhs)::text AS nhs_number FROM bench.nhs_numbers(3000000, 21);
CREATE UNLOGGED TABLE bench.snap_changed AS
SELECT nhs_number FROM bench.snap_full WHERE abs(hashtext(nhs_number)) % 100 <> 0
UNION ALL
SELECT caredata.nhs_number(nhs)::text FROM bench.nhs_numbers(30000, 22);
VACUUM ANALYZE bench.snap_full, bench.snap_changed;
-- the register's shape and indexes, without its triggers
CREATE TABLE bench.register_copy (LIKE caredata.objection INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
CREATE UNIQUE INDEX ON bench.register_copy (nhs_number, kind, study) NULLS NOT DISTINCT WHERE withdrawn_at IS NULL;
CREATE INDEX ON bench.register_copy (nhs_number);
CREATE UNIQUE INDEX ON bench.register_copy (id);
CREATE SEQUENCE IF NOT EXISTS bench.register_copy_id;

CREATE TEMP TABLE snap_times (round int, what text, ms double precision);
CREATE OR REPLACE PROCEDURE pg_temp.snap_rounds(rounds int) LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz;
  r record;
BEGIN
  FOR i IN 1..rounds LOOP
    -- hand-written: parse alone
    t0 := clock_timestamp();
    CREATE TEMP TABLE parsed AS SELECT caredata.try_nhs_number(nhs_number) AS n FROM bench.snap_full;
    INSERT INTO snap_times VALUES (i, 'parse the snapshot (CREATE TABLE AS)', extract(epoch FROM clock_timestamp() - t0) * 1000);
    DROP TABLE parsed;
    COMMIT;
    -- hand-written: the same load into a copy of the register
    TRUNCATE bench.register_copy;
    COMMIT;
    t0 := clock_timestamp();
    INSERT INTO bench.register_copy (id, nhs_number, kind, purposes, effective_from, source)
    SELECT nextval('bench.register_copy_id'), n, 'national_data_opt_out', ARRAY['research', 'planning', 'commissioning'], now(), 'bench'
      FROM (SELECT DISTINCT caredata.try_nhs_number(nhs_number) AS n FROM bench.snap_full) s
     WHERE n IS NOT NULL ORDER BY n;
    INSERT INTO snap_times VALUES (i, 'insert the distinct numbers into a copy of the register', extract(epoch FROM clock_timestamp() - t0) * 1000);
    COMMIT;
    -- apply_opt_out_snapshot: from empty, then 1% changed, then back
    TRUNCATE caredata.objection;
    COMMIT;
    t0 := clock_timestamp();
    SELECT * INTO r FROM caredata.apply_opt_out_snapshot('bench.snap_full', 'nhs_number', 'bench');
    INSERT INTO snap_times VALUES (i, 'apply_opt_out_snapshot: 3M from empty', extract(epoch FROM clock_timestamp() - t0) * 1000);
    COMMIT;
    t0 := clock_timestamp();
    SELECT * INTO r FROM caredata.apply_opt_out_snapshot('bench.snap_changed', 'nhs_number', 'bench');
    INSERT INTO snap_times VALUES (i, 'apply_opt_out_snapshot: ~1% changed', extract(epoch FROM clock_timestamp() - t0) * 1000);
    IF i = 1 THEN
      RAISE NOTICE 'changed snapshot: % opened, % withdrawn, % unchanged', r.opened, r.withdrawn, r.unchanged;
    END IF;
    COMMIT;
    t0 := clock_timestamp();
    SELECT * INTO r FROM caredata.apply_opt_out_snapshot('bench.snap_full', 'nhs_number', 'bench');
    INSERT INTO snap_times VALUES (i, 'apply_opt_out_snapshot: ~1% changed back', extract(epoch FROM clock_timestamp() - t0) * 1000);
    COMMIT;
  END LOOP;
END $$;
CALL pg_temp.snap_rounds(:rounds);

SELECT what, round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS median_ms,
       round(min(ms)::numeric, 1) AS min_ms, round(max(ms)::numeric, 1) AS max_ms,
       round((percentile_disc(0.5) WITHIN GROUP (ORDER BY ms)
              / (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) FROM snap_times
                  WHERE what LIKE 'insert the distinct%'))::numeric, 2) AS x_hand_written_load
  FROM snap_times GROUP BY what ORDER BY min(round), what;
TRUNCATE caredata.objection;
DROP TABLE bench.snap_full, bench.snap_changed, bench.register_copy;
DROP SEQUENCE bench.register_copy_id;
