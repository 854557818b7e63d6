-- user_guide: every sql example of docs/user-guide.md, extracted from the
-- doc and run as written, in order, on the synthetic population (as the
-- demo's database has it), so the guide never goes stale
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
\set ECHO none
\i test/synthetic/generate.sql
\set ECHO all
SELECT count(*) > 0 AS generated FROM synth.generate(20000, 42);
-- (notices off: linkage reports its phases' seconds, which vary)
\! mkdir -p results && scripts/doc-sql.sh docs/user-guide.md | sed 's/\bguide_patient\b/regress_guide_patient/g; s/\bguide_carer\b/regress_guide_carer/g' > results/user_guide_blocks.sql
\i results/user_guide_blocks.sql
-- what section 6 published (its figures vary with the master key): within
-- the default policy's perturbation (-2..+2) and rounding (to 5)
SELECT count(*) FILTER (WHERE n IS NOT NULL AND (n % 5 <> 0 OR abs(n - m) > 4)) AS published_beyond_the_rule,
       count(*) FILTER (WHERE n IS NOT NULL) AS providers_published
  FROM (SELECT provider_code, caredata.safe_count(nhs_number) AS n, count(DISTINCT nhs_number) AS m
          FROM guide_hes_clean GROUP BY provider_code) x;
-- the guide's tables and domains sit beside anything else
SELECT count(*) AS guide_tables FROM pg_tables WHERE tablename LIKE 'guide\_%';
SELECT caredata.unprotect('guide_hes_clean');
DROP TABLE guide_hes_clean, guide_gp_clean, guide_study_extract, guide_ndop, guide_gp_codes;
DROP VIEW guide_long_stays;
