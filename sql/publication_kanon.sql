-- sql/publication_kanon.sql: publish() enforces k-anonymity and measures
-- linkability (issue 24, section 5).  The outside test replayed: two
-- recipients of the same source link their persons 1:1 on the content of
-- their published records; with the defaults at most the configured share
-- can be; classes below k never appear; the override is admin-only and
-- audited.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
\set ECHO none
\i test/synthetic/generate.sql
\set ECHO all
SELECT count(*) > 0 AS generated FROM synth.generate(3000, 24);
RESET client_min_messages;
SET search_path = caredata, public;

CREATE ROLE kanon_a NOLOGIN;
CREATE ROLE kanon_b NOLOGIN;
CREATE ROLE kanon_admin NOLOGIN IN ROLE caredata_admin;
CREATE ROLE kanon_analyst NOLOGIN IN ROLE caredata_analyst;
GRANT USAGE ON SCHEMA synth TO kanon_admin, kanon_analyst, kanon_a;
GRANT SELECT ON synth.hospital_episode TO kanon_admin, kanon_analyst, kanon_a;
SELECT create_domain('kanon_a', 'recipient a') > 0 AS a, create_domain('kanon_b', 'recipient b') > 0 AS b;
SELECT refresh_pseudonyms('kanon_a', 'synth.hospital_episode') > 0 AS a,
       refresh_pseudonyms('kanon_b', 'synth.hospital_episode') > 0 AS b;
SELECT * FROM publication_limits;

-- The attack: for each recipient's view, every person's set of published
-- records (the row without its pseudonym); persons whose set is unique in
-- both views are matched 1:1; the pseudonym maps say whether rightly.
CREATE FUNCTION pg_temp.linked(va regclass, vb regclass) RETURNS TABLE (persons bigint, matched bigint, right_person bigint, share numeric)
  LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format($q$
    WITH a AS (SELECT v.person, md5(string_agg((to_jsonb(v) - 'person')::text, '|' ORDER BY (to_jsonb(v) - 'person')::text)) AS sig
                 FROM %s v GROUP BY v.person),
         b AS (SELECT v.person, md5(string_agg((to_jsonb(v) - 'person')::text, '|' ORDER BY (to_jsonb(v) - 'person')::text)) AS sig
                 FROM %s v GROUP BY v.person),
         ua AS (SELECT sig, min(person) AS person FROM a GROUP BY sig HAVING count(*) = 1),
         ub AS (SELECT sig, min(person) AS person FROM b GROUP BY sig HAVING count(*) = 1),
         m AS (SELECT ua.person AS pa, ub.person AS pb FROM ua JOIN ub USING (sig))
    SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM m),
           (SELECT count(*) FROM m JOIN caredata.pseudonym_map x ON x.domain = 'kanon_a' AND x.pseudonym::text = m.pa
                                   JOIN caredata.pseudonym_map y ON y.domain = 'kanon_b' AND y.pseudonym::text = m.pb
             WHERE x.nhs_number = y.nhs_number),
           round((SELECT count(*) FROM m) / nullif((SELECT count(*) FROM a), 0)::numeric, 4)$q$, va, vb);
END
$$;

-- 1. The outside test's columns (month, a cost, a diagnosis, a ward): a
-- person's set of records is unique, publish() refuses
SELECT publish('rich_a', 'synth.hospital_episode',
  '{"domain": "kanon_a", "purpose": "research",
    "columns": {"admission_date": "month", "length_of_stay": "keep", "specialty": "keep", "provider_code": "keep"}}', 'kanon_a');
-- banded and grouped, still linkable: refused
SELECT publish('rich_a', 'synth.hospital_episode',
  '{"domain": "kanon_a", "purpose": "research",
    "columns": {"admission_date": "month", "length_of_stay": "band:5", "specialty": "group", "provider_code": "group"}}', 'kanon_a');
SELECT count(*) AS refused_left_nothing FROM publication;

-- 2. The override: an admin's, with its reason, audited.  Not an
-- analyst's, nor a recipient's, nor without a reason.
SET ROLE kanon_analyst;
SELECT publish('rich_a', 'synth.hospital_episode',
  '{"domain": "kanon_a", "purpose": "research", "linkability_override": "the analyst says it is fine",
    "columns": {"admission_date": "month", "length_of_stay": "band:5", "specialty": "group", "provider_code": "group"}}', 'kanon_a');
INSERT INTO publication (name, recipient, source, spec) VALUES ('rich_a', 'kanon_a', 'synth.hospital_episode',
  '{"domain": "kanon_a", "purpose": "research", "nhs_column": "nhs_number", "linkability_override": "the analyst says it is fine", "columns": {}}');
RESET ROLE;
SET ROLE kanon_a;
SELECT publish('rich_a', 'synth.hospital_episode',
  '{"domain": "kanon_a", "purpose": "research", "linkability_override": "the recipient says it is fine", "columns": {}}', 'kanon_a');
RESET ROLE;
SET ROLE kanon_admin;
SELECT publish('rich_a', 'synth.hospital_episode',
  '{"domain": "kanon_a", "purpose": "research", "linkability_override": "ok",
    "columns": {"admission_date": "month", "length_of_stay": "band:5", "specialty": "group", "provider_code": "group"}}', 'kanon_a');
-- the admin cannot write the report nor the limits
UPDATE publication SET disclosure = '{}';
UPDATE publication_limits SET max_linkable_share = 1;
SELECT publish('rich_a', 'synth.hospital_episode',
  '{"domain": "kanon_a", "purpose": "research", "linkability_override": "DARS-NIC-0001: linked cohort approved by the data access committee",
    "columns": {"admission_date": "month", "length_of_stay": "band:5", "specialty": "group", "provider_code": "group"}}', 'kanon_a');
SELECT publish('rich_b', 'synth.hospital_episode',
  '{"domain": "kanon_b", "purpose": "research", "linkability_override": "DARS-NIC-0001: linked cohort approved by the data access committee",
    "columns": {"admission_date": "month", "length_of_stay": "band:5", "specialty": "group", "provider_code": "group"}}', 'kanon_b');
RESET ROLE;
SELECT actor, action, object, detail->>'level' AS level, (detail->>'linkable_share')::numeric > 0.5 AS mostly_linkable, justification
  FROM audit_log WHERE action = 'publication.linkability_override' AND object LIKE 'rich%' ORDER BY id;
-- what an attacker holding both gets: the share publish() measured
SELECT l.matched = l.right_person AS every_match_right, l.share > 0.5 AS mostly_linked,
       l.share = d.linkable_share AS measured_as_attacked, d.overridden
  FROM pg_temp.linked('published.rich_a', 'published.rich_b') l, publication_disclosure d WHERE d.name = 'rich_a';
-- rare codes grouped: every published specialty and provider is held by
-- at least k persons, or is 'other'; lengths of stay banded
SELECT count(*) AS rare_codes_published FROM (
  SELECT specialty FROM published.rich_a WHERE specialty <> 'other' GROUP BY specialty HAVING count(DISTINCT person) < 5
  UNION ALL
  SELECT provider_code FROM published.rich_a WHERE provider_code <> 'other' GROUP BY provider_code HAVING count(DISTINCT person) < 5) x;
SELECT count(*) FILTER (WHERE length_of_stay_band !~ '^\[[0-9]+,[0-9]+\)$') AS not_banded, min(length_of_stay_band) AS first_band
  FROM published.rich_a;
-- data added later is covered as the view is read: a new code for four
-- persons is 'other', a month of its own never appears
INSERT INTO synth.hospital_episode (record_id, provider_code, admission_date, specialty, length_of_stay, died_30d, readmitted_30d, nhs_number, dob, sex, postcode)
SELECT 100000 + record_id, provider_code, admission_date, '999', length_of_stay, died_30d, readmitted_30d, nhs_number, dob, sex, postcode
  FROM synth.hospital_episode WHERE try_nhs_number(nhs_number) IS NOT NULL AND permitted(try_nhs_number(nhs_number), 'research')
 ORDER BY record_id LIMIT 4;
INSERT INTO synth.hospital_episode (record_id, provider_code, admission_date, specialty, length_of_stay, died_30d, readmitted_30d, nhs_number, dob, sex, postcode)
SELECT 200000 + record_id, provider_code, '2031-07-04', specialty, length_of_stay, died_30d, readmitted_30d, nhs_number, dob, sex, postcode
  FROM synth.hospital_episode WHERE try_nhs_number(nhs_number) IS NOT NULL AND permitted(try_nhs_number(nhs_number), 'research')
 ORDER BY record_id LIMIT 3;
SELECT count(*) FILTER (WHERE specialty = '999') AS new_code_shown, count(*) FILTER (WHERE admission_date_month = '2031-07-01') AS new_month_shown
  FROM published.rich_a;

-- 3. The defaults: age band, sex, area and dates are the quasi-identifiers,
-- k = 5; publish() climbs the ladder until at most 5% of the persons are
-- linkable, and says what it did
SELECT publish('basic_a', 'synth.hospital_episode',
  '{"domain": "kanon_a", "purpose": "research",
    "columns": {"admission_date": "month", "dob": "age_band", "sex": "keep", "postcode": "district"}}', 'kanon_a');
SELECT publish('basic_b', 'synth.hospital_episode',
  '{"domain": "kanon_b", "purpose": "research",
    "columns": {"admission_date": "month", "dob": "age_band", "sex": "keep", "postcode": "district"}}', 'kanon_b');
SELECT name, k, quasi_identifiers, level, steps, rows_published > 0 AS has_rows, smallest_class >= 5 AS classes_k,
       linkable_share <= max_linkable_share AS within_limit, overridden
  FROM publication_disclosure WHERE name LIKE 'basic%' ORDER BY name;
-- the attack on them: at most the configured share matched 1:1
SELECT l.share <= (SELECT max_linkable_share FROM publication_limits) AS at_most_the_limit,
       l.share = d.linkable_share AS measured_as_attacked
  FROM pg_temp.linked('published.basic_a', 'published.basic_b') l, publication_disclosure d WHERE d.name = 'basic_a';
-- no class below k, counted in persons (k_anonymity() counts rows)
SELECT min(n) >= 5 AS smallest_class_k FROM (
  SELECT count(DISTINCT person) AS n FROM published.basic_a GROUP BY admission_date_month, dob_age_band, postcode_district, sex) c;
SELECT classes_below_k FROM k_anonymity('published.basic_a', ARRAY['admission_date_month', 'dob_age_band', 'postcode_district', 'sex'], 5);

-- a spec naming its quasi-identifiers and k: the level is the lowest that keeps
-- suppression within the limit, and classes of fewer than k persons are left out
SELECT publish('named_a', 'synth.hospital_episode',
  '{"domain": "kanon_a", "purpose": "research", "k": 10, "quasi_identifiers": ["dob", "sex"],
    "columns": {"admission_date": "year", "dob": "age_band", "sex": "keep"}}', 'kanon_a');
-- (the level itself is not printed: ages are reckoned at CURRENT_DATE, so
-- a day's birthdays could move a class across k; what holds every day is
-- that it generalised the ages and kept within the limits)
SELECT name, k, quasi_identifiers, level > 0 AS generalised, steps->>'dob' LIKE 'age_band%' AS ages_banded,
       smallest_class >= 10 AS classes_k, linkable_share <= max_linkable_share AS within_limit
  FROM publication_disclosure WHERE name = 'named_a';
SELECT min(n) >= 10 AS smallest_class_k FROM (SELECT count(DISTINCT person) AS n FROM published.named_a GROUP BY dob_age_band, sex) c;

-- republish measures again
SELECT republish('named_a');
SELECT count(*) AS measured_twice FROM audit_log WHERE action IN ('publication.create', 'publication.republish') AND object = 'named_a';

-- bad specs
SELECT publish('bad', 'synth.hospital_episode', '{"domain": "kanon_a", "purpose": "research", "k": 1, "columns": {"sex": "keep"}}', 'kanon_a');
SELECT publish('bad', 'synth.hospital_episode', '{"domain": "kanon_a", "purpose": "research", "k": "five", "columns": {"sex": "keep"}}', 'kanon_a');
SELECT publish('bad', 'synth.hospital_episode', '{"domain": "kanon_a", "purpose": "research", "quasi_identifiers": ["dob"], "columns": {"sex": "keep"}}', 'kanon_a');
SELECT publish('bad', 'synth.hospital_episode', '{"domain": "kanon_a", "purpose": "research", "columns": {"length_of_stay": "band:0"}}', 'kanon_a');
SELECT publish('bad', 'synth.hospital_episode', '{"domain": "kanon_a", "purpose": "research", "columns": {"postcode": "area", "dob": "quarter"}}', 'kanon_a') IS NOT NULL AS area_and_quarter_ok;
SELECT band(1234, 1000), band(0, 5), band(7.5, 2.5), band(-1, 10);

-- the limits are the owner's; a change is audited
UPDATE publication_limits SET max_linkable_share = 0.01;
SELECT action, detail->'new'->>'max_linkable_share' AS new_limit FROM audit_log WHERE action = 'publication.limits';
-- an INSERT sets the one row (as a restore of changed limits does,
-- test/release/limits_dump.sh), audited; a DELETE is refused
INSERT INTO publication_limits VALUES (true, 6, 0.02, 0.05);
SELECT count(*) AS rows, min(k) AS k, min(max_linkable_share) AS max_linkable_share FROM publication_limits;
SELECT count(*) AS limit_changes_audited FROM audit_log WHERE action = 'publication.limits';
DELETE FROM publication_limits;
UPDATE publication_limits SET k = 5;
UPDATE publication_limits SET max_linkable_share = 0.05;

-- clean up
SELECT unpublish(name) FROM publication ORDER BY name;
DELETE FROM synth.hospital_episode WHERE record_id > 100000;
REVOKE ALL ON SCHEMA published FROM kanon_a, kanon_b;
REVOKE ALL ON FUNCTION permitted(nhs_number, text, timestamptz, text) FROM kanon_a, kanon_b;
REVOKE ALL ON FUNCTION caredata._published_reader(), caredata._recipient_problem(name) FROM kanon_a, kanon_b;
REVOKE ALL ON SCHEMA synth FROM kanon_admin, kanon_analyst, kanon_a;
REVOKE ALL ON synth.hospital_episode FROM kanon_admin, kanon_analyst, kanon_a;
DROP ROLE kanon_a, kanon_b, kanon_admin, kanon_analyst;
