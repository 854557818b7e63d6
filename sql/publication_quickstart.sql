-- publication_quickstart: the "Quick start" block of docs/publication.md,
-- extracted from the doc and run as is, so the doc never goes stale
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
\set ECHO none
\i test/synthetic/generate.sql
\set ECHO all
SELECT count(*) > 0 AS generated FROM synth.generate(20000, 42);
\! mkdir -p results && scripts/doc-sql.sh docs/publication.md quickstart > results/publication_quickstart_block.sql
\i results/publication_quickstart_block.sql
-- still the recipient: nothing but the view
SELECT count(*) FROM synth.hospital_episode;
SELECT count(*) FROM caredata.pseudonym_map;
RESET ROLE;
SELECT caredata.unpublish('hes_study_a');
REVOKE ALL ON SCHEMA published FROM study_a;
REVOKE ALL ON FUNCTION caredata.permitted(caredata.nhs_number, text, timestamptz, text) FROM study_a;
REVOKE ALL ON FUNCTION caredata._published_reader(), caredata._recipient_problem(name) FROM study_a;
ALTER ROLE study_a RESET search_path;
DROP ROLE study_a;
