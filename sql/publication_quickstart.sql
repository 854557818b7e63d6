-- publication_quickstart: the "Quick start" block of docs/publication.md,
-- extracted from the doc and run as is, so the doc never goes stale, but
-- for its recipient role: roles are cluster-wide, and a reader who ran the
-- Quick start on the demo cluster has a role study_a there, so the test's
-- is regress_study_a (test/harness/roles.sh: no test creates a role a doc
-- creates), dropped first if a run was cut short
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_study_a;
CREATE EXTENSION IF NOT EXISTS caredata;
\set ECHO none
\i test/synthetic/generate.sql
\set ECHO all
SELECT count(*) > 0 AS generated FROM synth.generate(20000, 42);
\! mkdir -p results && scripts/doc-sql.sh docs/publication.md quickstart | sed 's/\bstudy_a\b/regress_study_a/g' > results/publication_quickstart_block.sql
\i results/publication_quickstart_block.sql
-- still the recipient: nothing but the view
SELECT count(*) FROM synth.hospital_episode;
SELECT count(*) FROM caredata.pseudonym_map;
RESET ROLE;
SELECT caredata.unpublish('hes_study_a');
REVOKE ALL ON SCHEMA published FROM regress_study_a;
REVOKE ALL ON FUNCTION caredata.permitted(caredata.nhs_number, text, timestamptz, text) FROM regress_study_a;
REVOKE ALL ON FUNCTION caredata._published_reader(), caredata._recipient_problem(name) FROM regress_study_a;
ALTER ROLE regress_study_a RESET search_path;
DROP ROLE regress_study_a;
