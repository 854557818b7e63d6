-- sdc_quickstart: the "Quick start" block of docs/disclosure-control.md,
-- extracted from the doc and run as is, so the doc never goes stale
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
\set ECHO none
\i test/synthetic/generate.sql
\set ECHO all
SELECT count(*) > 0 AS generated FROM synth.generate(20000, 42);
\! mkdir -p results && scripts/doc-sql.sh docs/disclosure-control.md quickstart > results/sdc_quickstart_block.sql
\i results/sdc_quickstart_block.sql
-- what the block published agrees with the exact counts to within the
-- default policy's perturbation (-2..+2) and rounding (to 5)
SELECT count(*) AS providers_beyond_the_protection, count(*) FILTER (WHERE n % 5 <> 0) AS not_rounded
  FROM (SELECT provider_code, caredata.safe_count(caredata.try_nhs_number(nhs_number)) AS n,
               count(DISTINCT caredata.try_nhs_number(nhs_number)) AS m
          FROM synth.hospital_episode GROUP BY provider_code) x
 WHERE n IS NULL OR abs(n - m) > 4;
SELECT count(*) FILTER (WHERE n IS NULL) > 0 AS small_cells_suppressed,
       bool_and(n IS NULL OR (n % 5 = 0 AND m > 7)) AS the_rest_rounded
  FROM (SELECT caredata.safe_count(caredata.try_nhs_number(nhs_number), 'opensafely') AS n,
               count(DISTINCT caredata.try_nhs_number(nhs_number)) AS m
          FROM synth.hospital_episode WHERE died_30d GROUP BY provider_code, specialty) x;
