-- bench/first_query.sql: the first filtered query in a new connection.
-- A register of 1M national opt-outs (psql -v objections=...).  Measured in
-- the same run, five interleaved rounds, medians:
--   connect:        a new connection running SELECT 1 (the baseline);
--   shared:         a new connection whose first query asks permitted(),
--                   with the blocked set already in shared memory
--                   (src/objection/set_shared.c: another backend built it);
--   build:          what that query costs a backend that builds the set
--                   itself (a new register version, first call), as every
--                   connection did before the sets were shared.
-- The goal: shared - connect within 50 ms.
\set ON_ERROR_STOP 1
\if :{?objections}
\else
\set objections 1000000
\endif
SET jit = off;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
TRUNCATE caredata.objection, caredata.exemption CASCADE;
INSERT INTO caredata.objection (nhs_number, kind, purposes, effective_from, source)
SELECT nhs::caredata.nhs_number, 'national_data_opt_out', ARRAY['research'], now() - interval '1 day', 'bench'
  FROM (SELECT DISTINCT ON (nhs) i, nhs FROM bench.nhs_numbers(:objections, 81) ORDER BY nhs, i) n;
UPDATE caredata.register_version SET version = version + 1;
ANALYZE caredata.objection;
SET client_min_messages = notice;

CREATE TEMP TABLE fq_times (round int, what text, ms double precision);
CREATE PROCEDURE pg_temp.fq_rounds(rounds int) LANGUAGE plpgsql AS $$
DECLARE
  conn text := format('host=127.0.0.1 port=%s dbname=%s user=%s', current_setting('port'), current_database(), current_user);
  t0 timestamptz;
BEGIN
  FOR r IN 1 .. rounds LOOP
    t0 := clock_timestamp();
    PERFORM * FROM dblink(conn, 'SELECT 1') AS t(x int);
    INSERT INTO fq_times VALUES (r, 'connect', extract(epoch FROM clock_timestamp() - t0) * 1000);
    -- a new register version: this backend builds (and publishes) the set
    UPDATE caredata.register_version SET version = version + 1;
    COMMIT;
    t0 := clock_timestamp();
    PERFORM caredata.permitted('999 000 0018', 'research');
    INSERT INTO fq_times VALUES (r, 'build', extract(epoch FROM clock_timestamp() - t0) * 1000);
    COMMIT;
    t0 := clock_timestamp();
    PERFORM * FROM dblink(conn, $q$SELECT caredata.permitted('999 000 0018', 'research')$q$) AS t(p boolean);
    INSERT INTO fq_times VALUES (r, 'shared', extract(epoch FROM clock_timestamp() - t0) * 1000);
    COMMIT;
  END LOOP;
END $$;
CALL pg_temp.fq_rounds(5);
SELECT what, round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS median_ms
  FROM fq_times GROUP BY what ORDER BY what;
SELECT bench.record('first_query', 'new connection, SELECT 1 (baseline)', (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) FROM fq_times WHERE what = 'connect'), NULL, NULL) \gset
SELECT bench.record('first_query', 'new connection, permitted() (shared)', (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) FROM fq_times WHERE what = 'shared'),
                    'connect', (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) FROM fq_times WHERE what = 'connect')) \gset
SELECT bench.record('first_query', 'building the set (unshared)', (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) FROM fq_times WHERE what = 'build'),
                    'connect', (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) FROM fq_times WHERE what = 'connect')) \gset
SELECT round((percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE what = 'shared')
            - percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE what = 'connect'))::numeric, 1) AS first_query_over_connect_ms
  FROM fq_times;
TRUNCATE caredata.objection, caredata.exemption CASCADE;
UPDATE caredata.register_version SET version = version + 1;
