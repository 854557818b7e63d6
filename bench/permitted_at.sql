-- bench/permitted_at.sql: permitted(nhs_number, purpose, at, dataset) with a
-- time that changes row by row (a column), against the hand-written
-- NOT EXISTS over caredata.blocked_nhs_numbers() in the same run: 2,000 rows,
-- half of them objectors, each asking at its own time, against a register
-- of 20,000 objections.  Five interleaved rounds, medians.  The goal: at
-- most 2x the NOT EXISTS.
--   psql -v objections=20000 -v rows=2000 -v rounds=5 -f bench/permitted_at.sql
\set ON_ERROR_STOP 1
\if :{?objections}
\else
\set objections 20000
\endif
\if :{?rows}
\else
\set rows 2000
\endif
\if :{?rounds}
\else
\set rounds 5
\endif
SET jit = off;
SET client_min_messages = warning;

-- a register of its own: this benchmark replaces the bench database's
TRUNCATE caredata.objection, caredata.exemption CASCADE;
INSERT INTO caredata.objection (nhs_number, kind, purposes, effective_from, withdrawn_at, source)
SELECT nhs::caredata.nhs_number, CASE WHEN i % 3 = 0 THEN 'type1' ELSE 'national_data_opt_out' END, ARRAY['research'],
       now() - (i % 700) * interval '1 day', CASE WHEN i % 10 = 0 THEN now() - (i % 700) * interval '1 day' + interval '120 days' END, 'bench'
  FROM (SELECT DISTINCT ON (nhs) i, nhs FROM bench.nhs_numbers(:objections, 71) ORDER BY nhs, i) n;
UPDATE caredata.register_version SET version = version + 1;
ANALYZE caredata.objection;
DROP TABLE IF EXISTS bench.pa_rows;
CREATE TABLE bench.pa_rows AS
SELECT nhs::caredata.nhs_number AS n, now() - ((i * 37) % 800) * interval '1 day' AS at
  FROM bench.nhs_numbers(:rows / 2, 71) o
UNION ALL
SELECT nhs::caredata.nhs_number, now() - ((i * 37) % 800) * interval '1 day'
  FROM bench.nhs_numbers(:rows / 2, 72) s;
ANALYZE bench.pa_rows;
SET client_min_messages = notice;

CREATE TEMP TABLE pa_times (round int, what text, ms double precision);
CREATE PROCEDURE pg_temp.pa_rounds(rounds int) LANGUAGE plpgsql AS $$
BEGIN
  FOR r IN 1 .. rounds LOOP
    INSERT INTO pa_times SELECT r, 'not_exists', bench.time_ms($q$SELECT count(*) FILTER (WHERE NOT EXISTS
      (SELECT 1 FROM caredata.blocked_nhs_numbers('research', NULL, p.at) b WHERE b.nhs_number OPERATOR(caredata.=) p.n)) FROM bench.pa_rows p$q$, 1);
    INSERT INTO pa_times SELECT r, 'permitted', bench.time_ms($q$SELECT count(*) FILTER (WHERE caredata.permitted(p.n, 'research', p.at, NULL))
      FROM bench.pa_rows p$q$, 1);
  END LOOP;
END $$;
CALL pg_temp.pa_rounds(:rounds);
-- the two agree
SELECT (SELECT count(*) FILTER (WHERE caredata.permitted(p.n, 'research', p.at, NULL)) FROM bench.pa_rows p)
     = (SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM caredata.blocked_nhs_numbers('research', NULL, p.at) b
                                                   WHERE b.nhs_number OPERATOR(caredata.=) p.n)) FROM bench.pa_rows p) AS answers_agree;
SELECT bench.record('permitted_at', 'NOT EXISTS (baseline)', (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) FROM pa_times WHERE what = 'not_exists'), NULL, NULL) \gset
SELECT bench.record('permitted_at', format('permitted(n, p, at column), %s rows', :rows),
                    (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) FROM pa_times WHERE what = 'permitted'),
                    'NOT EXISTS', (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) FROM pa_times WHERE what = 'not_exists')) \gset
TRUNCATE caredata.objection, caredata.exemption CASCADE;
UPDATE caredata.register_version SET version = version + 1;
