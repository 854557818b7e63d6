-- linkage_quickstart: the "Quick start" block of docs/linkage.md, extracted
-- from the doc and run as is, so the doc never goes stale
CREATE EXTENSION IF NOT EXISTS caredata;
SET client_min_messages = warning;
\set ECHO none
\i test/synthetic/generate.sql
\set ECHO all
SELECT count(*) > 0 AS generated FROM synth.generate(20000, 42);
-- the first fenced sql block after the "Quick start" heading
\! mkdir -p results && scripts/doc-sql.sh docs/linkage.md quickstart > results/linkage_quickstart_block.sql
\i results/linkage_quickstart_block.sql
-- the quality goal of the issue: F1 >= 0.995 at the label-free threshold
SELECT f1 >= 0.995 AS f1_goal_met FROM caredata.link_quality('synth_truth.record');
SELECT f1 >= 0.995 AS f1_goal_gp_hospital FROM caredata.link_quality('synth_truth.record', scope => 'cross');
SELECT f1 >= 0.995 AS f1_goal_hospital_dedupe FROM caredata.link_quality('synth_truth.record', scope => 'hes');
