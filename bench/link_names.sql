-- bench/link_names.sql: linkage with names and addresses (the fields
-- given_name, family_name, address and caredata.link_names_spec()) against
-- the NHS-only default model on the same records, interleaved: time of the
-- whole run, quality against the truth and twin pairs merged, for both.
--   psql -v people=1000000 (default) -v rounds=3 -f bench/link_names.sql
\set ON_ERROR_STOP 1
\if :{?people}
\else
\set people 1000000
\endif
\if :{?rounds}
\else
\set rounds 3
\endif
SET jit = off;
SET client_min_messages = notice;

-- the population (seed 42), generated unless already there at this size
SELECT to_regclass('synth_truth.person') IS NOT NULL AS have_population \gset
\if :have_population
SELECT (SELECT count(*) FROM synth_truth.person) = :people AS have_population \gset
\endif
\if :have_population
\else
SET client_min_messages = warning;
SELECT count(*) FROM synth.generate(:people, 42);
SET client_min_messages = notice;
\endif
VACUUM ANALYZE synth.gp_registration;
VACUUM ANALYZE synth.hospital_episode;

SELECT caredata.link_add_source(s, r, 'record_id', 'nhs_number', 'dob', 'sex', 'postcode',
         fields => '{"given_name":  {"column": "given_name",   "kind": "name"},
                     "family_name": {"column": "family_name",  "kind": "name"},
                     "address":     {"column": "address_line", "kind": "address"}}')
  FROM (VALUES ('gp', 'synth.gp_registration'::regclass), ('hes', 'synth.hospital_episode'::regclass)) v(s, r);
SELECT caredata.link_create_model('bench_nhs') AS v_nhs \gset
SELECT caredata.link_create_model('bench_names', caredata.link_names_spec()) AS v_names \gset

CREATE TEMP TABLE bench_rounds (round int, what text, ms double precision, stats jsonb,
                                f1 numeric, "precision" numeric, recall numeric, twins_merged bigint);
-- twin pairs whose records share a person
CREATE OR REPLACE FUNCTION pg_temp.twins_merged() RETURNS bigint LANGUAGE sql AS $$
  WITH placed AS (SELECT DISTINCT t.person_id AS true_person, p.person_id
                    FROM caredata.person_index p JOIN synth_truth.record t USING (source, record_id))
  SELECT count(DISTINCT tw.person_a) FROM synth_truth.twin tw
    JOIN placed a ON a.true_person = tw.person_a
    JOIN placed b ON b.true_person = tw.person_b AND b.person_id = a.person_id
$$;
CREATE OR REPLACE PROCEDURE pg_temp.name_rounds(rounds int, v_nhs int, v_names int) LANGUAGE plpgsql AS $$
DECLARE
  m text;
BEGIN
  FOR i IN 1..rounds LOOP
    FOREACH m IN ARRAY ARRAY['bench_nhs', 'bench_names'] LOOP
      PERFORM * FROM caredata.link_run(m, version => CASE m WHEN 'bench_nhs' THEN v_nhs ELSE v_names END);
      INSERT INTO bench_rounds
      SELECT i, m, extract(epoch FROM r.finished_at - r.started_at) * 1000, r.stats,
             round(q.f1::numeric, 4), round(q."precision"::numeric, 4), round(q.recall::numeric, 4), pg_temp.twins_merged()
        FROM (SELECT * FROM caredata.link_run ORDER BY run_id DESC LIMIT 1) r, caredata.link_quality('synth_truth.record') q;
      COMMIT;
    END LOOP;
  END LOOP;
END $$;
CALL pg_temp.name_rounds(:rounds, :v_nhs, :v_names);
SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) AS baseline_ms FROM bench_rounds WHERE what = 'bench_nhs' \gset
SELECT bench.record('link_names', 'link_run with names and address (' || :people || ' people, median of ' || :rounds || ')',
                    percentile_disc(0.5) WITHIN GROUP (ORDER BY ms), 'link_run NHS-only default', :baseline_ms)
  FROM bench_rounds WHERE what = 'bench_names';
SELECT round, what, round(ms) AS ms, f1, "precision", recall, twins_merged, stats->>'candidate_pairs' AS pairs
  FROM bench_rounds ORDER BY round, what;
-- each phase, median over the rounds
SELECT what, key AS phase, percentile_disc(0.5) WITHIN GROUP (ORDER BY value::numeric) AS median_s
  FROM bench_rounds, jsonb_each_text(stats)
 WHERE key LIKE '%\_s' GROUP BY what, key ORDER BY key, what;
