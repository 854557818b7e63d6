-- variation_quickstart: the "Quick start" block of docs/variation.md,
-- extracted from the doc and run as is, so the doc never goes stale
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
\set ECHO none
\i test/synthetic/generate.sql
\set ECHO all
SELECT count(*) > 0 AS generated FROM synth.generate(100000, 42);
RESET client_min_messages;
\! mkdir -p results && scripts/doc-sql.sh docs/variation.md quickstart > results/variation_quickstart_block.sql
\o results/variation_quickstart_output.txt
\i results/variation_quickstart_block.sql
\o
-- the block ran to its end, and its last query returned one row, one column: the SVG
\! tail -n 2 results/variation_quickstart_output.txt | head -n 1
\! grep -c '^ *svg *$' results/variation_quickstart_output.txt
\! grep -c '^ *<svg xmlns="http://www.w3.org/2000/svg"' results/variation_quickstart_output.txt
\! grep -c '^ *</svg> *+\?$' results/variation_quickstart_output.txt
-- the planted outliers, and only they, are flagged
SELECT unit, band FROM caredata.funnel($$SELECT unit, observed, expected
  FROM caredata.indirect_standardise('mortality', 'provider_code', 'died_30d', ARRAY['age_band', 'sex'])$$) WHERE outlier;
-- the expected deaths add up to the observed ones
SELECT round(sum(expected)::numeric, 6) = sum(observed) AS totals_agree
  FROM caredata.indirect_standardise('mortality', 'provider_code', 'died_30d', ARRAY['age_band', 'sex']);
-- the SVG is well-formed and labels the two
SELECT (xpath('//s:text[@class="label"]/text()', x, ARRAY[ARRAY['s', 'http://www.w3.org/2000/svg']]))::text[] AS labelled
  FROM (SELECT xmlparse(DOCUMENT caredata.funnel_svg($$SELECT unit, observed, expected
          FROM caredata.indirect_standardise('mortality', 'provider_code', 'died_30d', ARRAY['age_band', 'sex'])$$)) AS x) s;
-- (the view goes: the suites after this one regenerate the population)
DROP VIEW mortality;
