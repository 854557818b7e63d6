-- linkage_quality: link_quality() evaluated in one pass (issue 25, section 6)
-- returns what the 0.1.0 body returned, row for row and bit for bit, on the
-- synthetic population and on person indexes bent to split, merge, lump
-- everything together or hold nothing; and its plan has no subplan.
CREATE EXTENSION IF NOT EXISTS caredata;
SET search_path = caredata, public;
\set SHOW_CONTEXT never
SET client_min_messages = warning;
\set ECHO none
\i test/synthetic/generate.sql
\i sql/include/link_quality_reference.psql
\set ECHO all
SELECT count(*) > 0 AS generated FROM synth.generate(3000, 7);
SELECT link_add_source('gp', 'synth.gp_registration', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT link_add_source('hes', 'synth.hospital_episode', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT link_create_model('default') AS v \gset
SELECT persons > 0 AS linked FROM link_run('default', version => :v);

-- new and reference, for every scope (a source absent from the index too):
-- the whole row, NULLs and doubles included, is the same
CREATE FUNCTION pg_temp.agrees(truth regclass, true_id name DEFAULT 'person_id')
  RETURNS TABLE (scope text, same boolean, split bigint, merged bigint) LANGUAGE sql AS $$
  SELECT s, (SELECT n FROM caredata.link_quality(truth, true_id, s) n)
            IS NOT DISTINCT FROM (SELECT o FROM pg_temp.link_quality_reference(truth, true_id, s) o),
         (SELECT n.persons_split FROM caredata.link_quality(truth, true_id, s) n),
         (SELECT n.persons_merged FROM caredata.link_quality(truth, true_id, s) n)
    FROM unnest(ARRAY['all', 'cross', 'gp', 'hes', 'no_such_source']) s
$$;
SELECT scope, same FROM pg_temp.agrees('synth_truth.record');
SELECT f1 > 0.98 AS f1_all FROM link_quality('synth_truth.record');

-- a true id of another type, with NULLs (records whose person is unknown),
-- and a varchar source column
CREATE TABLE truth_text AS
SELECT source::varchar(10) AS source, record_id,
       CASE WHEN record_id % 17 = 0 THEN NULL ELSE 'p' || person_id END AS who
  FROM synth_truth.record;
SELECT scope, same FROM pg_temp.agrees('truth_text', 'who');

-- an index that splits and merges: every 13th record alone, every 7th
-- cluster joined to the next one
BEGIN;
UPDATE person_index SET person_id = -rid WHERE record_id % 13 = 0;
UPDATE person_index SET person_id = person_id + 1 WHERE person_id > 0 AND person_id % 7 = 0;
SELECT scope, same, split > 0 AS splits, merged > 0 AS merges FROM pg_temp.agrees('synth_truth.record');
SELECT scope, same FROM pg_temp.agrees('truth_text', 'who');
-- everything in one cluster (the pair counts of a large group)
UPDATE person_index SET person_id = 1;
SELECT scope, same, merged FROM pg_temp.agrees('synth_truth.record');
-- an empty index: no pairs, precision and recall unknown
DELETE FROM person_index;
SELECT scope, same FROM pg_temp.agrees('synth_truth.record');
SELECT * FROM link_quality('synth_truth.record');
ROLLBACK;

-- errors as before
SELECT link_quality('synth_truth.record', 'no_such_column');
SELECT link_quality('synth_truth.person');

-- one pass: the plan of the query that reads the records (auto_explain's,
-- at NOTICE) has no InitPlan or SubPlan, and reads the person index and
-- the truth table once each (0.1.0's: 16 InitPlans)
\setenv LQ_DB :DBNAME
\! psql -qX -d "$LQ_DB" -c "LOAD 'auto_explain'" -c "SET auto_explain.log_min_duration = 0" -c "SET auto_explain.log_nested_statements = on" -c "SET auto_explain.log_level = notice" -c "SET client_min_messages = notice" -c "SELECT * FROM caredata.link_quality('synth_truth.record', 'person_id', 'cross')" 2>&1 >/dev/null | awk '/^NOTICE:/ {b++} /InitPlan|SubPlan/ {s[b]++} / on person_index/ {q[b] = 1; p++} / on record / {r++} END {for (i in q) n += s[i]; printf "subplans %d, person_index scans %d, truth scans %d\n", n, p, r}'
