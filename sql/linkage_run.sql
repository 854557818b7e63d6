-- linkage runs on the synthetic population: quality, determinism (also
-- with parallel workers), stable ids across incremental runs, explanation,
-- lookup, one-to-one, deterministic steps, bad configuration
CREATE EXTENSION IF NOT EXISTS caredata;
SET search_path = caredata, public;
\set SHOW_CONTEXT never
SET client_min_messages = warning;
\set ECHO none
\i test/synthetic/generate.sql
\set ECHO all
SELECT count(*) > 0 AS generated FROM synth.generate(3000, 7);

-- ---- bad configuration: clear errors, nothing written ----

SELECT link_run();                                  -- no model yet
SELECT link_add_source('gp', 'synth.gp_registration', 'record_id', 'no_such_column');
SELECT link_add_source('gp', 'synth.gp_registration', 'registered_on');       -- wrong type for a record id
SELECT link_add_source('gp', 'synth.gp_registration', 'record_id', 'registered_on');  -- a date is no NHS number
SELECT link_add_source('GP!', 'synth.gp_registration', 'record_id');
SELECT link_create_model('default', '{"comparisons": []}');
SELECT link_create_model('default', '{"comparisons": [{"name": "x", "expression": "caredata.compare_sex(l.no_such, r.sex)", "levels": ["a", "b", "c"]}]}');
SELECT link_create_model('default', jsonb_build_object('comparisons',
         (SELECT jsonb_agg(jsonb_build_object('name', 'c' || i, 'expression', 'caredata.compare_sex(l.sex, r.sex)',
                                              'levels', '["missing", "different", "same", "x", "y", "z", "w", "v"]'::jsonb))
            FROM generate_series(1, 7) i)));   -- 8^7 patterns
SELECT link_create_model('default', '{"keep_nhs_apart": "yes"}');
SELECT link_create_model('default', '{"blocking": [["surname"]]}');
SELECT link_create_model('default', '{"steps": ["nhs = 3 AND no_such = 1"]}');
SELECT link_create_model('default', '{"link_type": "everything"}');
SELECT count(*) AS models_after_errors FROM link_model;

SELECT link_add_source('gp', 'synth.gp_registration', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT link_add_source('hes', 'synth.hospital_episode', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT link_create_model('default');
SELECT link_run(version => 7);                      -- no such version
SELECT link_run(method => 'guess');
SELECT link_run(threshold => 1.5);
SELECT link_run(train => false);                    -- version 1 is not trained
SELECT link_run(one_to_one => true);                -- needs link_only

-- a blocking rule past max_pairs is refused before anything is compared
SELECT link_create_model('tight', '{"max_pairs": 10}');
SELECT link_run('tight');
SELECT * FROM link_blocking_counts() ORDER BY rule;

-- an empty source
CREATE TABLE public.empty_source (id bigint, nhs text);
SELECT link_add_source('empty', 'empty_source', 'id', 'nhs');
SELECT link_run();
-- record ids missing, or twice in a source (new ones, and ones seen before)
INSERT INTO empty_source VALUES (1, '9434765919'), (NULL, '9434765919');
SELECT link_run();
UPDATE empty_source SET id = 1;
SELECT link_run();
DELETE FROM empty_source;
INSERT INTO empty_source VALUES (1, '9434765919'), (2, NULL);
SELECT link_standardise(ARRAY['empty']) AS standardised;
INSERT INTO empty_source VALUES (1, NULL);
SELECT link_standardise(ARRAY['empty']);
SELECT count(*) AS keys_kept FROM link_record_key WHERE source = 'empty';
DELETE FROM link_source WHERE source = 'empty';
DELETE FROM link_record_key WHERE source = 'empty';
SELECT count(*) AS runs_after_errors FROM link_run;

-- ---- a probabilistic run with the default model ----
SELECT run_id, model_version, records, candidate_pairs > records AS compared, links > 0 AS linked,
       persons BETWEEN 2900 AND 3100 AS persons_near_truth, match_threshold BETWEEN 0.01 AND 0.99 AS label_free_threshold
  FROM link_run();
SELECT version, lambda BETWEEN 1e-6 AND 1e-2 AS lambda_plausible, training->>'converged' AS converged FROM link_model WHERE model = 'default' ORDER BY version;
-- m and u per level, editable; exact agreement is strong evidence, disagreement against
SELECT comparison, level, label, m > u AS for_a_match
  FROM link_model_level WHERE model = 'default' AND version = 2 AND level > 0 ORDER BY position, level;
SELECT f1 > 0.98 AS f1_all, precision > 0.98 AS precision_all, recall > 0.98 AS recall_all FROM link_quality('synth_truth.record');
SELECT f1 > 0.98 AS f1_cross FROM link_quality('synth_truth.record', 'person_id', 'cross');
SELECT f1 > 0.98 AS f1_hes_dedupe FROM link_quality('synth_truth.record', 'person_id', 'hes');
SELECT link_quality('synth_truth.record', 'no_such_column');
-- every record has a person; links are ordered pairs with weight and probability
SELECT (SELECT count(*) FROM person_index) = (SELECT count(*) FROM link_record) AS all_indexed,
       bool_and(rid_l < rid_r) AS ordered, bool_and(weight IS NOT NULL AND probability BETWEEN 0 AND 1) AS scored
  FROM link_pair WHERE run_id = 1;

-- ---- explanation: the terms sum to the pair's weight ----
SELECT count(*) AS pairs_checked,
       bool_and(abs(x.total - p.weight) < 1e-9) AS explanation_sums_to_weight
  FROM (SELECT * FROM link_pair WHERE run_id = 1 ORDER BY rid_l, rid_r LIMIT 200) p
  JOIN link_record a ON a.rid = p.rid_l JOIN link_record b ON b.rid = p.rid_r
  CROSS JOIN LATERAL (SELECT sum(weight) AS total FROM link_explain(a.source, a.record_id, b.source, b.record_id)) x;
-- the terms of one pair (no identifier is shown, only levels)
SELECT term, level, label, weight IS NOT NULL AS has_weight
  FROM link_explain('gp', (SELECT min(record_id) FROM synth.gp_registration),
                    'hes', (SELECT min(record_id) FROM synth.hospital_episode));
SELECT * FROM link_explain('gp', -1, 'hes', 1);

-- ---- determinism: a second run with the trained version keeps every id ----
CREATE TEMP TABLE index_1 AS SELECT source, record_id, person_id FROM person_index;
SELECT run_id, model_version FROM link_run(version => 2);
SELECT count(*) AS ids_changed FROM index_1 i JOIN person_index p USING (source, record_id) WHERE i.person_id <> p.person_id;
SELECT (SELECT count(*) FROM link_pair WHERE run_id = 1) = (SELECT count(*) FROM link_pair WHERE run_id = 2) AS same_links;
-- two runs in one transaction: the second starts clean and keeps every id
BEGIN;
SELECT run_id FROM link_run(version => 2);
SELECT run_id FROM link_run(version => 2);
COMMIT;
SELECT count(*) AS ids_changed_same_transaction FROM index_1 i JOIN person_index p USING (source, record_id) WHERE i.person_id <> p.person_id;
-- and the same with parallel workers planned everywhere
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT run_id FROM link_run(version => 2);
SELECT count(*) AS ids_changed_parallel FROM index_1 i JOIN person_index p USING (source, record_id) WHERE i.person_id <> p.person_id;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
-- the same input and seed in a fresh catalog: the same person index
CREATE TEMP TABLE index_md5 AS SELECT md5(string_agg(source || ':' || record_id || ':' || person_id, ',' ORDER BY source, record_id)) AS h FROM person_index;
DROP EXTENSION caredata CASCADE;
CREATE EXTENSION caredata;
SELECT link_add_source('gp', 'synth.gp_registration', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT link_add_source('hes', 'synth.hospital_episode', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT link_create_model('default');
SELECT run_id, model_version FROM link_run();
SELECT (SELECT h FROM index_md5) = md5(string_agg(source || ':' || record_id || ':' || person_id, ',' ORDER BY source, record_id)) AS same_index_fresh
  FROM person_index;

-- ---- a failed run leaves the person index as it was ----
CREATE TEMP TABLE index_before AS SELECT * FROM person_index;
ALTER TABLE synth.hospital_episode RENAME COLUMN postcode TO postcode_gone;
SELECT link_run(version => 2);
ALTER TABLE synth.hospital_episode RENAME COLUMN postcode_gone TO postcode;
SELECT (SELECT count(*) FROM index_before) = (SELECT count(*) FROM person_index) AND
       NOT EXISTS (SELECT * FROM index_before EXCEPT SELECT * FROM person_index) AS index_unchanged;

-- ---- incremental: new records attach to existing persons, old ids stay ----
CREATE TABLE hes_late AS SELECT * FROM synth.hospital_episode WHERE record_id % 5 = 0;
DELETE FROM synth.hospital_episode WHERE record_id % 5 = 0;
SELECT run_id FROM link_run(version => 2);
CREATE TEMP TABLE index_early AS SELECT source, record_id, person_id FROM person_index;
INSERT INTO synth.hospital_episode SELECT * FROM hes_late;
SELECT run_id, records FROM link_run(version => 2, incremental => true);
SELECT count(*) AS old_records,
       count(*) FILTER (WHERE e.person_id = p.person_id) AS kept_id,
       count(*) FILTER (WHERE e.person_id <> p.person_id
                          AND NOT EXISTS (SELECT 1 FROM person_event v WHERE v.run_id = (SELECT max(run_id) FROM link_run)
                                             AND (v.other_person_id = e.person_id OR v.other_person_id = p.person_id))) AS changed_without_event
  FROM index_early e JOIN person_index p USING (source, record_id);
SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM index_early e WHERE e.person_id = p.person_id)) * 1.0 / count(*) < 0.05
         AS late_records_mostly_attached
  FROM person_index p JOIN hes_late h ON p.source = 'hes' AND p.record_id = h.record_id;
SELECT f1 > 0.98 AS f1_after_incremental FROM link_quality('synth_truth.record');

-- ---- one record against the index ----
SELECT l.person_id = p.person_id AS found_own_person, l.probability > 0.9 AS confident
  FROM synth.gp_registration g
  JOIN person_index p ON p.source = 'gp' AND p.record_id = g.record_id
  CROSS JOIN LATERAL link_lookup(g.nhs_number, try_standardise_dob(g.dob), g.sex, g.postcode) l
 WHERE g.record_id = (SELECT min(record_id) FROM synth_truth.record WHERE source = 'gp' AND error_kinds = '{}');
-- a mistyped NHS number still finds the person
SELECT l.person_id = p.person_id AS found_despite_typo
  FROM synth.gp_registration g
  JOIN person_index p ON p.source = 'gp' AND p.record_id = g.record_id
  CROSS JOIN LATERAL link_lookup(overlay(regexp_replace(g.nhs_number, '\s', '', 'g') placing
                                   ((substr(regexp_replace(g.nhs_number, '\s', '', 'g'), 5, 1)::int + 1) % 10)::text from 5 for 1),
                                 try_standardise_dob(g.dob), g.sex, g.postcode) l
 WHERE g.record_id = (SELECT min(record_id) FROM synth_truth.record WHERE source = 'gp' AND error_kinds = '{}');
SELECT count(*) AS no_candidate FROM link_lookup('4010232137', '1890-01-01', 'M', 'ZE1 0AA');

-- ---- deterministic steps: each link records the step that made it ----
SELECT run_id FROM link_run(method => 'deterministic');
SELECT step, count(*) > 0 AS used FROM link_pair WHERE run_id = (SELECT max(run_id) FROM link_run) GROUP BY step ORDER BY step;
SELECT f1 > 0.95 AS f1_steps, precision > 0.99 AS precise_steps FROM link_quality('synth_truth.record');

-- ---- one-to-one linkage of two sources ----
SELECT link_create_model('pairs', '{"link_type": "link_only"}');
SELECT run_id, model_version FROM link_run('pairs', one_to_one => true);
SELECT max(n) AS most_links_of_one_record
  FROM (SELECT rid, count(*) AS n FROM (SELECT rid_l AS rid FROM link_pair WHERE run_id = (SELECT max(run_id) FROM link_run)
                                        UNION ALL SELECT rid_r FROM link_pair WHERE run_id = (SELECT max(run_id) FROM link_run)) x GROUP BY rid) y;
SELECT max(n) AS largest_cluster FROM (SELECT person_id, count(*) AS n FROM person_index GROUP BY person_id) c;
SELECT bool_and(a.source <> b.source) AS only_across_sources
  FROM link_pair p JOIN link_record a ON a.rid = p.rid_l JOIN link_record b ON b.rid = p.rid_r WHERE p.run_id = (SELECT max(run_id) FROM link_run);

-- ---- NHS numbers kept apart (the default) ----
-- a record with a household member's number links to one person, not both:
-- never more merging than without the rule, and no accepted link between
-- two persons
SELECT link_create_model('together', '{"keep_nhs_apart": false}');
SELECT persons AS persons_together FROM link_run('together') \gset
SELECT persons >= :persons_together AS apart_merges_no_more FROM link_run('default');
SELECT count(*) AS links_across_persons
  FROM link_pair x JOIN person_index a ON a.rid = x.rid_l JOIN person_index b ON b.rid = x.rid_r
 WHERE x.run_id = (SELECT max(run_id) FROM link_run) AND a.person_id <> b.person_id;

-- ---- the catalog: comments on every linkage object ----
SELECT c.relname FROM pg_class c
 WHERE c.relnamespace = 'caredata'::regnamespace AND c.relkind = 'r'
   AND (c.relname LIKE 'link\_%' OR c.relname LIKE 'person\_%') AND obj_description(c.oid, 'pg_class') IS NULL;
SELECT p.oid::regprocedure FROM pg_proc p
 WHERE p.pronamespace = 'caredata'::regnamespace
   AND (p.proname LIKE '%link%' OR p.proname LIKE 'compare\_%') AND obj_description(p.oid, 'pg_proc') IS NULL;
DROP TABLE hes_late, empty_source;
