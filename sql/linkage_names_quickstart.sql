-- linkage_names_quickstart: the "Quick start: names and addresses" block of
-- docs/linkage.md, extracted from the doc and run as is
CREATE EXTENSION IF NOT EXISTS caredata;
SET client_min_messages = warning;
\set ECHO none
\i test/synthetic/generate.sql
\set ECHO all
SELECT count(*) > 0 AS generated FROM synth.generate(20000, 42);
\! mkdir -p results && scripts/doc-sql.sh docs/linkage.md quickstart 'Quick start: names and addresses' > results/linkage_names_quickstart_block.sql
\i results/linkage_names_quickstart_block.sql
-- the goals of the issue, over the same run
SELECT f1 >= 0.995 AS f1_goal_met FROM caredata.link_quality('synth_truth.record', project => 'names');
SELECT count(*) = 0 AS no_twins_merged
  FROM synth_truth.twin tw
 WHERE EXISTS (SELECT 1 FROM caredata.person_index a JOIN synth_truth.record ta USING (source, record_id)
                 JOIN caredata.person_index b ON b.project = a.project AND b.person_id = a.person_id
                 JOIN synth_truth.record tb ON tb.source = b.source AND tb.record_id = b.record_id
                WHERE a.project = 'names' AND ta.person_id = tw.person_a AND tb.person_id = tw.person_b);
-- one record with its names and address, its NHS number left out, finds its person
SELECT l.person_id = p.person_id AS found, l.probability > 0.99 AS confident
  FROM synth.gp_registration g JOIN caredata.person_index p ON p.project = 'names' AND p.source = 'gp' AND p.record_id = g.record_id,
       caredata.link_lookup(NULL, caredata.try_standardise_dob(g.dob), g.sex, g.postcode, 'names',
                            fields => jsonb_build_object('given_name', g.given_name, 'family_name', g.family_name,
                                                         'address', g.address_line),
                            project => 'names') l
 WHERE g.record_id = 1;
-- the project of the NHS-only Quick start is untouched (its sources declare no field)
SELECT count(*) AS default_sources_with_fields FROM caredata.link_source WHERE project = 'default' AND fields <> '{}';
SELECT caredata.link_drop_project('names');
