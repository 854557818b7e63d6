-- bench/link_quality.sql: caredata.link_quality() on the synthetic
-- population (seed 42) linked by one probabilistic run.  Baseline in the
-- same run: a plain count of the join it reads (the person index against
-- the truth table), i.e. the least a one-pass evaluation has to do.  With
-- -v reference=1 the 0.1.0 body (sql/include/link_quality_reference.psql)
-- is timed as well, once per scope (it ran over 5 minutes at 1M people).
--   psql -v people=200000 (default) [-v reference=1] -f bench/link_quality.sql
\set ON_ERROR_STOP 1
\if :{?people}
\else
\set people 200000
\endif
\if :{?rounds}
\else
\set rounds 3
\endif
SET jit = off;
SET client_min_messages = notice;

-- the population, generated unless already there at this size, and a person
-- index from one run over it (kept when it covers every record)
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
SELECT (SELECT count(*) FROM caredata.person_index) = (SELECT count(*) FROM synth_truth.record) AS have_index \gset
\if :have_index
\else
SELECT caredata.link_add_source('gp', 'synth.gp_registration', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT caredata.link_add_source('hes', 'synth.hospital_episode', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT caredata.link_create_model('bench_quality') AS v \gset
SELECT run_id, links, persons, seconds FROM caredata.link_run('bench_quality', version => :v);
\endif
VACUUM ANALYZE caredata.person_index;
VACUUM ANALYZE synth_truth.record;
SELECT count(*) AS records, count(DISTINCT person_id) AS clusters FROM caredata.person_index;

-- the baseline: one pass over the join, counted
SELECT bench.record('link_quality', 'baseline (' || :people || ' people)',
  bench.time_ms($q$SELECT count(*) FROM caredata.person_index p
                     JOIN synth_truth.record t ON t.source = p.source AND t.record_id = p.record_id$q$, :rounds),
  NULL, NULL) AS baseline_ms \gset
SELECT bench.report('link_quality', 'link_quality ' || scope || ' (' || :people || ' people)',
                    format('SELECT * FROM caredata.link_quality(%L, %L, %L)', 'synth_truth.record', 'person_id', scope),
                    'join count', :baseline_ms, :rounds)
  FROM unnest(ARRAY['all', 'cross', 'hes']) scope;

\if :{?reference}
\ir ../sql/include/link_quality_reference.psql
SELECT bench.report('link_quality', '0.1.0 body ' || scope || ' (' || :people || ' people)',
                    format('SELECT * FROM pg_temp.link_quality_reference(%L, %L, %L)', 'synth_truth.record', 'person_id', scope),
                    'join count', :baseline_ms, 1)
  FROM unnest(ARRAY['all', 'cross', 'hes']) scope;
SELECT scope, (SELECT n FROM caredata.link_quality('synth_truth.record', 'person_id', scope) n)
              IS NOT DISTINCT FROM (SELECT o FROM pg_temp.link_quality_reference('synth_truth.record', 'person_id', scope) o) AS same
  FROM unnest(ARRAY['all', 'cross', 'hes']) scope;
\endif

SELECT scope, round(q."precision"::numeric, 4) AS "precision", round(q.recall::numeric, 4) AS recall,
       round(q.f1::numeric, 4) AS f1, q.true_pairs, q.linked_pairs, q.correct_pairs, q.persons_split, q.persons_merged
  FROM unnest(ARRAY['all', 'cross', 'hes']) scope, caredata.link_quality('synth_truth.record', 'person_id', scope) q;
