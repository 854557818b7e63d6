-- sql/publication_bi.sql: values a BI tool can use (issue 26): published
-- age bands sort by age and say why they are unknown; codes come with
-- labels; the safe aggregates take the published person column as it is;
-- an aggregate-only publication shows protected numbers by unit under the
-- reader's policy in force, and no record.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
RESET client_min_messages;
SET search_path = caredata, public;

-- 2 providers x 40 people, 3 of every 10 with the outcome at P2, 1 in 10
-- at P1; ages every 2 years 0..98 as of today; 4 dates of birth unknown
CREATE TABLE bi_episode (nhs_number text, provider text, sex text, specialty text, dob text, died boolean);
INSERT INTO bi_episode
SELECT n, CASE WHEN i % 2 = 0 THEN 'P1' ELSE 'P2' END, (ARRAY['1', '2', '9', '0'])[1 + i % 4],
       (ARRAY['100', '300', '420', '999'])[1 + (i / 4) % 4],
       CASE WHEN i % 20 = 7 THEN NULL ELSE to_char(current_date - make_interval(years => ((i * 2) % 100)::int, days => 10), 'YYYY-MM-DD') END,
       CASE WHEN i % 2 = 0 THEN i % 20 = 0 ELSE i % 10 IN (1, 3, 5) END
  FROM (SELECT row_number() OVER () - 1 AS i, n
          FROM (SELECT caredata.try_nhs_number('943' || lpad(k::text, 6, '0') || d) AS n
                  FROM generate_series(0, 200) k, generate_series(0, 9) d) x
         WHERE n IS NOT NULL LIMIT 80) y, generate_series(1, 2) r;
SELECT count(*) AS rows, count(DISTINCT nhs_number) AS people FROM bi_episode;
CREATE ROLE bi_viewer NOLOGIN;
CREATE ROLE bi_dashboard NOLOGIN;
SELECT create_domain('bi_study', 'issue 26') > 0 AS domain;
SELECT refresh_pseudonyms('bi_study', 'bi_episode') AS stored;

-- 1. age bands: zero-padded, so ORDER BY sorts them by age; the lower
-- bound as a number; 'unknown' (after every age) for an unknown date of birth
SELECT age_band_label('2000-06-01', '2026-01-01') AS b25, age_band_label('2020-06-01', '2026-01-01') AS b5,
       age_band_label('1920-06-01', '2026-01-01') AS top, age_band_label(NULL, '2026-01-01') AS unknown,
       age_band_label('2020-06-01', '2026-01-01', 20, 80) AS w20, age_band_from('1990-06-01', '2026-01-01') AS from35;
SELECT publish('bi_rows', 'bi_episode',
  '{"domain": "bi_study", "purpose": "research", "k": 2,
    "columns": {"dob": "age_band", "provider": "keep"}}', 'bi_viewer');
SELECT level, steps FROM publication_disclosure WHERE name = 'bi_rows';
SELECT publish('bi_codes', 'bi_episode',
  '{"domain": "bi_study", "purpose": "research", "k": 2, "linkability_override": "test: labels of a record-level view",
    "columns": {"sex": "keep", "specialty": "keep", "provider": "keep"},
    "labels": {"sex": "sex", "specialty": "specialty"}}', 'bi_viewer');
SELECT table_name, column_name, data_type FROM information_schema.columns
 WHERE table_schema = 'published' AND table_name IN ('bi_rows', 'bi_codes') ORDER BY table_name, ordinal_position;
SET ROLE bi_viewer;
-- (as a BI tool writes it: no cast, no helper)
SELECT dob_age_band, dob_age_from, count(*) AS rows FROM published.bi_rows GROUP BY 1, 2 ORDER BY dob_age_band;
SELECT array_agg(dob_age_band ORDER BY dob_age_band) = array_agg(dob_age_band ORDER BY dob_age_from NULLS LAST)
       AS text_order_is_age_order
  FROM (SELECT DISTINCT dob_age_band, dob_age_from FROM published.bi_rows) b;
-- 2. labels beside the codes; a code without one shows as itself
SELECT sex, sex_label, specialty, specialty_label, count(*) AS rows
  FROM published.bi_codes GROUP BY 1, 2, 3, 4 ORDER BY 1, 3 LIMIT 6;
SELECT DISTINCT specialty, specialty_label FROM published.bi_codes WHERE specialty = '999';
SELECT label_of('sex', '2') AS female, label_of('specialty', '420') AS paeds, label_of('sex', 'Q') AS none;
SELECT count(*) > 0 AS recipients_read_labels FROM caredata.code_label;
-- 3. safe aggregates on the published person column, as published (text);
-- the default policy's figures vary with the master key, so what holds is shown
SELECT provider, count(DISTINCT person) AS people,
       safe_count(person) % 5 = 0 AND abs(safe_count(person) - count(DISTINCT person)) <= 4 AS published_as_the_rule_says,
       safe_count_text(person) = safe_count(person)::text AS shown_as_counted,
       CASE WHEN safe_rate(sex = '2', person) = 0 THEN 'none' WHEN safe_rate(sex = '2', person) BETWEEN 0.3 AND 0.7 THEN 'about half' END AS female_share
  FROM published.bi_codes GROUP BY provider ORDER BY provider;
RESET ROLE;
-- labels: only published code columns, only vocabularies with labels
SELECT publish('bi_bad', 'bi_episode', '{"domain": "bi_study", "purpose": "research", "columns": {"sex": "keep"}, "labels": {"provider": "sex"}}', 'bi_viewer');
SELECT publish('bi_bad', 'bi_episode', '{"domain": "bi_study", "purpose": "research", "columns": {"sex": "keep"}, "labels": {"sex": "no_such"}}', 'bi_viewer');

-- 4. aggregate-only: numbers by provider under the reader's policy in force
-- (the HES rule without the key, version 2's, so that the figures below do
-- not vary with the master key)
INSERT INTO sdc_policy (policy, suppress_max, protect_zero, rounding, rounding_base, redacted, dominance_n, dominance_k, p_percent, magnitude_digits, source)
SELECT 'regress_hes_unkeyed', suppress_max, protect_zero, rounding, rounding_base, redacted, dominance_n, dominance_k, p_percent, magnitude_digits, 'nhs_hes version 2'
  FROM sdc_policy WHERE policy = 'nhs_hes' AND version = 2;
SELECT assign_sdc_policy('bi_dashboard', 'regress_hes_unkeyed');
SELECT publish_aggregates('bi_dash', 'bi_episode',
  '{"domain": "bi_study", "purpose": "research", "by": ["provider"], "outcome": "died", "labels": {"provider": "provider"}}', 'bi_dashboard');
INSERT INTO code_label (vocabulary, code, label) VALUES ('provider', 'P1', 'First Trust'), ('provider', 'P2', 'Second Trust');
SELECT publish_aggregates('bi_dash', 'bi_episode',
  '{"domain": "bi_study", "purpose": "research", "by": ["provider"], "outcome": "died", "labels": {"provider": "provider"}}', 'bi_dashboard');
SELECT column_name FROM information_schema.columns
 WHERE table_schema = 'published' AND table_name = 'bi_dash' ORDER BY ordinal_position;
SET ROLE bi_dashboard;
SELECT sdc_policy_in_force();
-- P1: 40 people, 4 died (suppressed by the HES rule: 1 to 7); P2: 40 people, 24 died (rounded to 25)
SELECT provider, provider_label, unit, persons, outcome_persons, round(outcome_rate::numeric, 3) AS rate,
       funnel_denominator, round(funnel_ratio::numeric, 3) AS ratio, funnel_band, funnel_outlier, suppressed
  FROM published.bi_dash ORDER BY unit;
-- no record-level view, no pseudonym, no identifier
SELECT count(*) AS record_columns FROM information_schema.columns
 WHERE table_schema = 'published' AND table_name = 'bi_dash' AND column_name IN ('person', 'nhs_number', 'dob', 'sex');
SELECT count(*) FROM bi_episode;
RESET ROLE;
-- an objector for the purpose is not counted
SELECT record_objection(caredata.nhs_number(nhs_number), 'national_data_opt_out', 'bi test') IS NOT NULL AS objected
  FROM (SELECT DISTINCT nhs_number FROM bi_episode WHERE provider = 'P2' ORDER BY nhs_number LIMIT 3) x;
SET ROLE bi_dashboard;
SELECT unit, persons FROM published.bi_dash ORDER BY unit;
RESET ROLE;
-- the same view under another policy for the reader: what it shows follows the admin's choice
SELECT assign_sdc_policy('bi_dashboard', 'opensafely_midpoint6');
SET ROLE bi_dashboard;
SELECT unit, persons, outcome_persons FROM published.bi_dash ORDER BY unit;
-- and the reader cannot name a laxer one
SELECT safe_count(person, 'regress_hes_unkeyed') FROM (VALUES ('1.1.AAAAAAAAAAAAAAAAAAAAAA')) v(person);
RESET ROLE;
-- bad specs
SELECT publish_aggregates('bi_bad', 'bi_episode', '{"domain": "bi_study", "purpose": "research", "by": []}', 'bi_dashboard');
SELECT publish_aggregates('bi_bad', 'bi_episode', '{"domain": "bi_study", "purpose": "research", "by": ["dob"]}', 'bi_dashboard');
SELECT publish_aggregates('bi_bad', 'bi_episode', '{"domain": "bi_study", "purpose": "research", "by": ["provider"], "outcome": "sex"}', 'bi_dashboard');
SELECT publish_aggregates('bi_bad', 'bi_episode', '{"domain": "bi_study", "purpose": "research", "by": ["provider"]}', 'caredata_admin');
-- republish and unpublish as for publish()
SELECT republish('bi_dash');
SELECT unpublish('bi_dash'), unpublish('bi_rows'), unpublish('bi_codes');
SELECT count(*) AS views_left FROM pg_views WHERE schemaname = 'published' AND viewname LIKE 'bi\_%';
DELETE FROM code_label WHERE vocabulary = 'provider';
SELECT unassign_sdc_policy('bi_dashboard');
DELETE FROM sdc_policy WHERE policy = 'regress_hes_unkeyed';
DROP TABLE bi_episode;
DROP OWNED BY bi_viewer, bi_dashboard;
DROP ROLE bi_viewer, bi_dashboard;
