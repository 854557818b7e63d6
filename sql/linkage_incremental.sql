-- linkage_incremental: an incremental run places new records on existing
-- persons and merges two existing persons only on direct evidence between
-- their own records (the model's merge_threshold), never through a new
-- record that links to both; it splits none; merges are in person_event.
-- bench/link_incremental.sql at small scale, then hand-built cases.
SET client_min_messages = warning;
-- a linkage catalog of its own (suites before leave sources and models)
DROP EXTENSION IF EXISTS caredata CASCADE;
CREATE EXTENSION caredata;
SET caredata.link_progress = off;
\set ECHO none
\i test/synthetic/generate.sql
\set ECHO all
SELECT count(*) > 0 AS generated FROM synth.generate(3000, 7);

-- ---- the spec: merge_threshold, a probability ----
\set VERBOSITY terse
SELECT caredata.link_create_model('bad', '{"merge_threshold": 1}');
SELECT caredata.link_create_model('bad', '{"merge_threshold": "high"}');
\set VERBOSITY default
SELECT caredata.link_default_spec()->'merge_threshold' AS default_merge_threshold;

-- ---- replay: 150 records held out, then added ----
-- 30% every record of people never seen, 70% one more record each of
-- people with two or more records (by hashes of the true person ids)
CREATE TABLE batch AS
WITH per AS (SELECT person_id, count(*) AS n FROM synth_truth.record GROUP BY person_id),
     new_people AS (SELECT person_id FROM (SELECT person_id, sum(n) OVER (ORDER BY hashint8extended(person_id, 25), person_id) AS cum
                                             FROM per) x
                     WHERE cum <= 45),
     new_recs AS (SELECT r.source, r.record_id, r.person_id, 'new person'::text AS kind
                    FROM synth_truth.record r JOIN new_people USING (person_id)),
     more AS (SELECT DISTINCT ON (r.person_id) r.source, r.record_id, r.person_id, 'existing person'::text AS kind
                FROM synth_truth.record r JOIN per USING (person_id)
               WHERE per.n >= 2 AND r.person_id NOT IN (SELECT person_id FROM new_people)
               ORDER BY r.person_id, hashint8extended(r.record_id * 2 + (r.source = 'hes')::int, 25))
SELECT * FROM new_recs
UNION ALL
(SELECT * FROM more ORDER BY hashint8extended(person_id, 26), person_id LIMIT 150 - (SELECT count(*) FROM new_recs));
SELECT kind, count(*) AS records FROM batch GROUP BY kind ORDER BY kind;
CREATE TABLE inc_gp AS SELECT * FROM synth.gp_registration g
 WHERE NOT EXISTS (SELECT 1 FROM batch b WHERE b.source = 'gp' AND b.record_id = g.record_id);
CREATE TABLE inc_hes AS SELECT * FROM synth.hospital_episode h
 WHERE NOT EXISTS (SELECT 1 FROM batch b WHERE b.source = 'hes' AND b.record_id = h.record_id);
SELECT caredata.link_add_source('gp', 'inc_gp', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT caredata.link_add_source('hes', 'inc_hes', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT caredata.link_create_model('default') AS v0 \gset
SELECT model_version AS v FROM caredata.link_run(version => :v0) \gset
CREATE TABLE before AS
SELECT p.source, p.record_id, p.person_id, t.person_id AS true_id
  FROM caredata.person_index p JOIN synth_truth.record t USING (source, record_id);
INSERT INTO inc_gp SELECT g.* FROM synth.gp_registration g JOIN batch b ON b.source = 'gp' AND b.record_id = g.record_id;
INSERT INTO inc_hes SELECT h.* FROM synth.hospital_episode h JOIN batch b ON b.source = 'hes' AND b.record_id = h.record_id;
SELECT run_id AS incr_run, records FROM caredata.link_run(version => :v, incremental => true) \gset
SELECT :records AS records, (SELECT stats->>'new_records' FROM caredata.link_run WHERE run_id = :incr_run) AS new_records;
-- no merge of persons that share no true person; no split
SELECT count(*) FILTER (WHERE e.kind = 'merge' AND NOT EXISTS (
         SELECT 1 FROM before x JOIN before y USING (true_id) WHERE x.person_id = e.person_id AND y.person_id = e.other_person_id)) AS wrong_merges,
       count(*) FILTER (WHERE e.kind = 'split') AS splits
  FROM caredata.person_event e WHERE e.run_id = :incr_run;
-- an existing record's id changes only through a merge recorded in person_event
SELECT count(*) AS ids_changed_without_event
  FROM before b JOIN caredata.person_index p USING (source, record_id)
 WHERE p.person_id <> b.person_id
   AND NOT EXISTS (SELECT 1 FROM caredata.person_event e WHERE e.run_id = :incr_run AND e.kind = 'merge'
                      AND e.other_person_id = b.person_id AND e.person_id = p.person_id);
-- new records of existing people on the person that holds most of their
-- true person's other records: at least 99%; new people's records on no
-- existing person but through a link
WITH home AS (SELECT DISTINCT ON (b.true_id) b.true_id, p.person_id
                FROM before b JOIN caredata.person_index p USING (source, record_id)
               GROUP BY b.true_id, p.person_id ORDER BY b.true_id, count(*) DESC, p.person_id)
SELECT count(*) FILTER (WHERE n.kind = 'existing person' AND p.person_id = h.person_id) * 100.0
         / count(*) FILTER (WHERE n.kind = 'existing person') >= 99 AS placed_right_99,
       count(*) FILTER (WHERE n.kind = 'new person' AND EXISTS (SELECT 1 FROM before b WHERE b.person_id = p.person_id)) <= 2 AS new_people_apart
  FROM batch n JOIN caredata.person_index p USING (source, record_id) LEFT JOIN home h ON h.true_id = n.person_id;
-- the run's links agree with the person index: no link between two persons
SELECT count(*) AS links_across_persons
  FROM caredata.link_pair x
  JOIN caredata.person_index a ON a.rid = x.rid_l JOIN caredata.person_index b ON b.rid = x.rid_r
 WHERE x.run_id = :incr_run AND a.person_id <> b.person_id;
SELECT stats ? 'merge_threshold' AS stats_has_merge_threshold,
       (stats->>'merge_threshold')::double precision >= 0.999999 AS merge_threshold_applied
  FROM caredata.link_run WHERE run_id = :incr_run;

-- ---- hand-built: two households on a street of their own ----
-- A (two records, NHS number X) and B (three, no NHS number): two sisters
-- born eight months apart, same address.  C and D: two
-- records of one man the earlier, deterministic run left apart (his sex
-- missing on one: no step fits), which the model scores far above the
-- merge threshold.
CREATE TABLE hand (id bigint, nhs text, dob text, sex text, postcode text);
INSERT INTO hand VALUES
  (1, '9434765919', '1987-11-20', 'F', 'KT1 1AA'), (2, '9434765919', '1987-11-20', 'F', 'KT1 1AA'),   -- A
  (3, NULL, '1988-07-08', 'F', 'KT1 1AA'), (4, NULL, '1988-07-08', 'F', 'KT1 1AA'),
  (5, NULL, '1988-07-08', 'F', 'KT1 1AA'),                                                             -- B
  (6, '4010232137', '1950-01-02', 'M', 'KT2 2BB'),                                                     -- C
  (7, '4010232137', '1950-01-02', NULL, 'KT2 2BB');                                                    -- D
SELECT caredata.link_add_source('hand', 'hand', 'id', 'nhs', 'dob', 'sex', 'postcode');
SELECT run_id AS det_run FROM caredata.link_run(version => :v, method => 'deterministic') \gset
CREATE TEMP VIEW hand_person AS
SELECT h.id, p.person_id FROM hand h JOIN caredata.person_index p ON p.source = 'hand' AND p.record_id = h.id;
CREATE TABLE hand_before AS SELECT * FROM hand_person;
SELECT count(DISTINCT person_id) FILTER (WHERE id IN (1, 2)) AS a_persons,
       count(DISTINCT person_id) FILTER (WHERE id IN (3, 4, 5)) AS b_persons,
       count(DISTINCT person_id) FILTER (WHERE id IN (1, 3)) AS a_b_persons,
       count(DISTINCT person_id) FILTER (WHERE id IN (6, 7)) AS c_d_persons
  FROM hand_before;
-- new: B's details with A's NHS number (a household member's number), and
-- C again in full
INSERT INTO hand VALUES (8, '9434765919', '1988-07-08', 'F', 'KT1 1AA'), (9, '4010232137', '1950-01-02', 'M', 'KT2 2BB');
SELECT run_id AS hand_run FROM caredata.link_run(version => :v, incremental => true) \gset
-- record 8 links to both A and B (its match weight with each passes the
-- run's threshold) ...
SELECT (SELECT sum(weight) FROM caredata.link_explain('hand', 8, 'hand', 1)) > w AS record_8_links_a,
       (SELECT sum(weight) FROM caredata.link_explain('hand', 8, 'hand', 3)) > w AS record_8_links_b,
       (SELECT sum(weight) FROM caredata.link_explain('hand', 1, 'hand', 3)) < w AS a_b_direct_below
  FROM (SELECT ln(threshold / (1 - threshold)) / ln(2) AS w FROM caredata.link_run WHERE run_id = :hand_run) t;
-- ... but A and B stay apart, and record 8 goes to the one it links to
-- best (B: its date of birth weighs more than A's NHS number with a date
-- of birth within a year); C and D, whose own records
-- agree far above merge_threshold, merge into the older id
SELECT count(DISTINCT person_id) FILTER (WHERE id IN (1, 2, 3, 4, 5)) AS a_b_persons,
       (SELECT person_id FROM hand_person WHERE id = 8) = (SELECT person_id FROM hand_person WHERE id = 3) AS record_8_on_b,
       count(DISTINCT person_id) FILTER (WHERE id IN (6, 7, 9)) AS c_d_persons
  FROM hand_person;
SELECT (SELECT sum(weight) FROM caredata.link_explain('hand', 6, 'hand', 7)) > 20 AS c_d_weight_above_20;
-- every identity change of the run is in person_event: the one merge, C's
-- id surviving, D's records (one) joining it; no split
SELECT e.kind, e.person_id = c.person_id AS survivor_is_c, e.other_person_id = d.person_id AS merged_is_d, e.records
  FROM caredata.person_event e,
       (SELECT person_id FROM hand_before WHERE id = 6) c, (SELECT person_id FROM hand_before WHERE id = 7) d
 WHERE e.run_id = :hand_run;
SELECT count(*) AS ids_changed, count(*) FILTER (WHERE b.id = 7) AS of_d
  FROM hand_before b JOIN hand_person p USING (id) WHERE p.person_id <> b.person_id;
SELECT (stats->>'persons_bridged')::int AS persons_bridged, (stats->>'merges_on_evidence')::int AS merges_on_evidence,
       (stats->>'links_dropped')::int AS links_dropped, (stats->>'links_added')::int >= 1 AS links_added,
       (stats->>'merges')::int AS merges, (stats->>'splits')::int AS splits
  FROM caredata.link_run WHERE run_id = :hand_run;
-- the merge's evidence is a link of the run: C and D are joined by links
SELECT count(*) > 0 AS c_d_linked
  FROM caredata.link_pair x JOIN caredata.link_record a ON a.rid = x.rid_l JOIN caredata.link_record b ON b.rid = x.rid_r
 WHERE x.run_id = :hand_run AND a.source = 'hand' AND b.source = 'hand' AND a.record_id IN (6, 7) AND b.record_id IN (6, 7);

-- ---- a higher merge_threshold: C and D stay apart ----
-- the same again from the deterministic index, with a model version whose
-- merge threshold no pair reaches
DELETE FROM hand WHERE id IN (8, 9);
SELECT run_id > 0 AS det_again FROM caredata.link_run(version => :v, method => 'deterministic');
UPDATE caredata.link_model SET spec = spec || '{"merge_threshold": 0.9999999999999999}' WHERE model = 'default' AND version = :v;
INSERT INTO hand VALUES (9, '4010232137', '1950-01-02', 'M', 'KT2 2BB');
SELECT run_id AS strict_run FROM caredata.link_run(version => :v, incremental => true) \gset
SELECT count(DISTINCT person_id) FILTER (WHERE id IN (6, 7)) AS c_d_persons FROM hand_person;
SELECT count(*) AS events FROM caredata.person_event WHERE run_id = :strict_run;
UPDATE caredata.link_model SET spec = spec - 'merge_threshold' WHERE model = 'default' AND version = :v;

-- leave a clean catalog for the suites after
DROP TABLE batch, inc_gp, inc_hes, before, hand, hand_before CASCADE;
DROP EXTENSION caredata CASCADE;
CREATE EXTENSION caredata;
