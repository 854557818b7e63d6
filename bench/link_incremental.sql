-- bench/link_incremental.sql: an incremental run on top of a person index.
-- The synthetic population (seed 42) less a held-out batch of records is
-- linked by a full run; the batch is then added and linked by
-- link_run(incremental => true).  The batch (fixed, by hashes of the true
-- person ids) is new_records records (default: people / 100, so 2,000 at
-- 200,000 people): 30% are every record of people the index has never
-- seen, 70% one more record each of people it holds.  Measured against the
-- truth (synth_truth.record):
--   wrong merges      merges of two existing persons that share no true person
--   ids changed       existing records whose person id the run changed
--   placed right      new records of existing people placed on the person
--                     that holds most of their true person's other records
--   new people attached  records of people never seen placed on an
--                     existing person
-- Baseline in the same round: a full run (the trained model version, no
-- training) over the records before the batch.  Rounds are interleaved
-- (full, incremental); medians are reported.  It uses its own copies of the
-- sources (schema bench_incr) and leaves the linkage catalog empty.
--   psql -v people=200000 (default) [-v rounds=3] [-v keep=1] -f bench/link_incremental.sql
\set ON_ERROR_STOP 1
\if :{?people}
\else
\set people 200000
\endif
\if :{?rounds}
\else
\set rounds 3
\endif
\if :{?new_records}
\else
SELECT :people / 100 AS new_records \gset
\endif
SET jit = off;
SET client_min_messages = warning;
SET caredata.link_progress = off;

SELECT to_regclass('synth_truth.person') IS NOT NULL AS have_population \gset
\if :have_population
SELECT (SELECT count(*) FROM synth_truth.person) = :people AS have_population \gset
\endif
\if :have_population
\else
SELECT count(*) FROM synth.generate(:people, 42);
\endif

-- a clean linkage catalog, and the sources' copies
TRUNCATE caredata.link_source, caredata.link_record_key, caredata.link_record, caredata.link_pair,
         caredata.person_index, caredata.person_event, caredata.link_run, caredata.link_model_level,
         caredata.link_model CASCADE;
DROP SCHEMA IF EXISTS bench_incr CASCADE;
CREATE SCHEMA bench_incr;
-- the batch: whole people (hash order) up to 30% of it, then one record
-- each of people with two or more records, up to new_records
CREATE TABLE bench_incr.batch AS
WITH per AS (SELECT person_id, count(*) AS n FROM synth_truth.record GROUP BY person_id),
     new_people AS (SELECT person_id FROM (SELECT person_id, sum(n) OVER (ORDER BY hashint8extended(person_id, 25), person_id) AS cum
                                             FROM per) x
                     WHERE cum <= :new_records * 3 / 10),
     new_recs AS (SELECT r.source, r.record_id, r.person_id, 'new person'::text AS kind
                    FROM synth_truth.record r JOIN new_people USING (person_id)),
     more AS (SELECT DISTINCT ON (r.person_id) r.source, r.record_id, r.person_id, 'existing person'::text AS kind
                FROM synth_truth.record r JOIN per USING (person_id)
               WHERE per.n >= 2 AND r.person_id NOT IN (SELECT person_id FROM new_people)
               ORDER BY r.person_id, hashint8extended(r.record_id * 2 + (r.source = 'hes')::int, 25))
SELECT * FROM new_recs
UNION ALL
(SELECT * FROM more ORDER BY hashint8extended(person_id, 26), person_id
  LIMIT :new_records - (SELECT count(*) FROM new_recs));
ALTER TABLE bench_incr.batch ADD PRIMARY KEY (source, record_id);
CREATE TABLE bench_incr.gp AS SELECT * FROM synth.gp_registration g
 WHERE NOT EXISTS (SELECT 1 FROM bench_incr.batch b WHERE b.source = 'gp' AND b.record_id = g.record_id);
CREATE TABLE bench_incr.hes AS SELECT * FROM synth.hospital_episode h
 WHERE NOT EXISTS (SELECT 1 FROM bench_incr.batch b WHERE b.source = 'hes' AND b.record_id = h.record_id);
VACUUM ANALYZE bench_incr.gp;
VACUUM ANALYZE bench_incr.hes;
SELECT kind, count(*) AS records, count(DISTINCT person_id) AS people FROM bench_incr.batch GROUP BY kind ORDER BY kind;

SELECT caredata.link_add_source('gp', 'bench_incr.gp', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT caredata.link_add_source('hes', 'bench_incr.hes', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT caredata.link_create_model('bench_incr') AS v0 \gset
-- train once, on the records before the batch
SELECT model_version AS v FROM caredata.link_run('bench_incr', version => :v0) \gset

CREATE TABLE bench_incr.rounds (round int, full_ms double precision, incr_ms double precision,
                                wrong_merges bigint, merges bigint, splits bigint, ids_changed bigint,
                                existing_records bigint, placed_right bigint, new_people_records bigint,
                                new_people_attached bigint);
CREATE OR REPLACE PROCEDURE pg_temp.incr_rounds(rounds int, v int) LANGUAGE plpgsql AS $$
DECLARE
  full_ms double precision;
  incr_ms double precision;
  run bigint;
BEGIN
  FOR i IN 1..rounds LOOP
    -- the records before the batch
    DELETE FROM bench_incr.gp g USING bench_incr.batch b WHERE b.source = 'gp' AND b.record_id = g.record_id;
    DELETE FROM bench_incr.hes h USING bench_incr.batch b WHERE b.source = 'hes' AND b.record_id = h.record_id;
    COMMIT;
    PERFORM * FROM caredata.link_run('bench_incr', version => v);
    SELECT extract(epoch FROM finished_at - started_at) * 1000 INTO full_ms FROM caredata.link_run ORDER BY run_id DESC LIMIT 1;
    DROP TABLE IF EXISTS bench_incr.before;
    CREATE TABLE bench_incr.before AS
    SELECT p.source, p.record_id, p.person_id, t.person_id AS true_id
      FROM caredata.person_index p JOIN synth_truth.record t USING (source, record_id);
    COMMIT;
    -- the batch arrives
    INSERT INTO bench_incr.gp SELECT g.* FROM synth.gp_registration g JOIN bench_incr.batch b ON b.source = 'gp' AND b.record_id = g.record_id;
    INSERT INTO bench_incr.hes SELECT h.* FROM synth.hospital_episode h JOIN bench_incr.batch b ON b.source = 'hes' AND b.record_id = h.record_id;
    COMMIT;
    SELECT x.run_id INTO run FROM caredata.link_run('bench_incr', version => v, incremental => true) x;
    SELECT extract(epoch FROM finished_at - started_at) * 1000 INTO incr_ms FROM caredata.link_run WHERE run_id = run;
    INSERT INTO bench_incr.rounds
    WITH after AS (SELECT source, record_id, person_id FROM caredata.person_index),
         -- the person (its id now) that holds most of a true person's old records
         home AS (SELECT DISTINCT ON (b.true_id) b.true_id, a.person_id
                    FROM bench_incr.before b JOIN after a USING (source, record_id)
                   GROUP BY b.true_id, a.person_id ORDER BY b.true_id, count(*) DESC, a.person_id)
    SELECT i, full_ms, incr_ms,
           (SELECT count(*) FROM caredata.person_event e
             WHERE e.run_id = run AND e.kind = 'merge'
               AND NOT EXISTS (SELECT 1 FROM bench_incr.before x JOIN bench_incr.before y USING (true_id)
                                WHERE x.person_id = e.person_id AND y.person_id = e.other_person_id)),
           (SELECT count(*) FROM caredata.person_event e WHERE e.run_id = run AND e.kind = 'merge'),
           (SELECT count(*) FROM caredata.person_event e WHERE e.run_id = run AND e.kind = 'split'),
           (SELECT count(*) FROM bench_incr.before b JOIN after a USING (source, record_id) WHERE a.person_id <> b.person_id),
           count(*) FILTER (WHERE n.kind = 'existing person'),
           count(*) FILTER (WHERE n.kind = 'existing person' AND a.person_id = h.person_id),
           count(*) FILTER (WHERE n.kind = 'new person'),
           count(*) FILTER (WHERE n.kind = 'new person' AND EXISTS (SELECT 1 FROM bench_incr.before b WHERE b.person_id = a.person_id))
      FROM bench_incr.batch n JOIN after a USING (source, record_id)
      LEFT JOIN home h ON h.true_id = n.person_id;
    COMMIT;
  END LOOP;
END $$;
CALL pg_temp.incr_rounds(:rounds, :v);

SET client_min_messages = notice;
SELECT bench.record('link_incremental', 'full run (' || :people || ' people)',
                    (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY full_ms) FROM bench_incr.rounds), NULL, NULL) AS full_ms \gset
SELECT bench.record('link_incremental', 'incremental run (+' || :new_records || ' records)',
                    (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY incr_ms) FROM bench_incr.rounds), 'full run', :full_ms);
-- the same every round (the runs are deterministic)
SELECT count(DISTINCT (wrong_merges, merges, splits, ids_changed, placed_right, new_people_attached)) = 1 AS same_every_round,
       max(wrong_merges) AS wrong_merges, max(merges) AS merges, max(splits) AS splits, max(ids_changed) AS ids_changed,
       max(existing_records) AS existing_records, max(placed_right) AS placed_right,
       round(100.0 * max(placed_right) / nullif(max(existing_records), 0), 2) AS placed_right_pct,
       max(new_people_records) AS new_people_records, max(new_people_attached) AS new_people_attached
  FROM bench_incr.rounds;

-- leave nothing behind for the next benchmark (unless -v keep=1)
\if :{?keep}
\quit
\endif
SET client_min_messages = warning;
TRUNCATE caredata.link_source, caredata.link_record_key, caredata.link_record, caredata.link_pair,
         caredata.person_index, caredata.person_event, caredata.link_run, caredata.link_model_level,
         caredata.link_model CASCADE;
DROP SCHEMA bench_incr CASCADE;
