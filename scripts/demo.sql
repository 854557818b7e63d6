-- scripts/demo.sql: the pipeline as far as it exists, on the synthetic
-- population (test/synthetic/generate.sql, already loaded by scripts/demo.sh).
-- Prints what a DBA wants to see at each step.  Grows with every issue.
\set ON_ERROR_STOP 1
\pset footer off
SET search_path = caredata, public;
SET client_min_messages = warning;

\echo
\echo '== 1. Sources as they arrive'
SELECT clock_timestamp() AS step_t0 \gset
SELECT source, records FROM (
  SELECT 1 AS o, 'GP registrations' AS source, count(*) AS records FROM synth.gp_registration
  UNION ALL
  SELECT 2, 'hospital episodes', count(*) FROM synth.hospital_episode
  UNION ALL
  SELECT 3, 'people (ground truth, kept apart)', count(*) FROM synth_truth.person) x
ORDER BY o;

SELECT format('-- done in %s s', round(extract(epoch FROM clock_timestamp() - :'step_t0'::timestamptz)::numeric, 1)) AS step_done \gset
\echo :step_done
\echo
\echo '== 2. Standardise identifiers (nhs_number, DOB, postcode, sex)'
SELECT clock_timestamp() AS step_t0 \gset
DROP TABLE IF EXISTS public.identifiers_clean;
CREATE TABLE public.identifiers_clean AS
SELECT 'gp'::text AS source, record_id,
       try_nhs_number(nhs_number) AS nhs_number,
       nhs_number_invalid_reason(nhs_number) AS nhs_reason,
       nhs_number IS NULL AS nhs_missing,
       try_standardise_dob(dob, '2026-01-01') AS dob, dob IS NULL AS dob_missing,
       try_normalise_postcode(postcode) AS postcode, postcode IS NULL AS postcode_missing,
       try_standardise_sex(sex) AS sex
FROM synth.gp_registration
UNION ALL
SELECT 'hes', record_id,
       try_nhs_number(nhs_number), nhs_number_invalid_reason(nhs_number), nhs_number IS NULL,
       try_standardise_dob(dob, '2026-01-01'), dob IS NULL,
       try_normalise_postcode(postcode), postcode IS NULL,
       try_standardise_sex(sex)
FROM synth.hospital_episode;
ANALYZE public.identifiers_clean;

\echo
\echo '-- NHS numbers: valid, missing, and why the rest were refused (counts only, never the numbers)'
\echo '-- (bad_check_digit: the Modulus 11 check digit is wrong; check_digit_10: Modulus 11 gives 10, which no valid number has)'
SELECT source,
       count(*) AS records,
       count(nhs_number) AS valid,
       round(100.0 * count(nhs_number) / count(*), 2) AS valid_pct,
       count(*) FILTER (WHERE nhs_missing OR nhs_reason = 'missing') AS missing,
       count(*) FILTER (WHERE nhs_reason = 'check_digit') AS bad_check_digit,
       count(*) FILTER (WHERE nhs_reason = 'check_digit_10') AS check_digit_10,
       count(*) FILTER (WHERE nhs_reason IN ('length', 'non_digit', 'grouping')) AS malformed,
       count(*) FILTER (WHERE nhs_reason = 'repeated_digit') AS repeated_digit
FROM public.identifiers_clean GROUP BY source ORDER BY source;

\echo '-- dates of birth, postcodes, sex'
SELECT source,
       count(dob) AS dob_valid,
       count(*) FILTER (WHERE dob IS NULL AND NOT dob_missing) AS dob_refused,
       count(postcode) AS postcode_valid,
       count(*) FILTER (WHERE postcode IS NULL AND NOT postcode_missing) AS postcode_refused,
       count(*) FILTER (WHERE sex = '1') AS male,
       count(*) FILTER (WHERE sex = '2') AS female,
       count(*) FILTER (WHERE sex = '9') AS indeterminate,
       count(*) FILTER (WHERE sex = 'X') AS sex_not_known,
       count(*) FILTER (WHERE sex IS NULL) AS sex_unrecognised
FROM public.identifiers_clean GROUP BY source ORDER BY source;

SELECT format('-- done in %s s', round(extract(epoch FROM clock_timestamp() - :'step_t0'::timestamptz)::numeric, 1)) AS step_done \gset
\echo :step_done
\echo
\echo '== 3. Against the ground truth (what the standardisers can and cannot catch)'
SELECT clock_timestamp() AS step_t0 \gset
\echo '-- (valid_but_wrong_person: a household member''s valid number, which no check can catch; linkage (section 7) does)'
SELECT c.source,
       count(*) FILTER (WHERE 'nhs_mistyped' = ANY (t.error_kinds)) AS mistyped_injected,
       count(*) FILTER (WHERE 'nhs_mistyped' = ANY (t.error_kinds) AND c.nhs_number IS NULL) AS mistyped_caught_by_mod11,
       count(*) FILTER (WHERE c.nhs_number IS NOT NULL AND c.nhs_number <> p.nhs_number::nhs_number) AS valid_but_wrong_person,
       count(*) FILTER (WHERE c.dob IS NOT NULL AND c.dob <> p.dob) AS dob_valid_but_wrong,
       count(*) FILTER (WHERE c.postcode IS NOT NULL AND c.postcode <> p.postcode) AS postcode_differs_from_current
FROM public.identifiers_clean c
JOIN synth_truth.record t ON t.source = c.source AND t.record_id = c.record_id
JOIN synth_truth.person p ON p.person_id = t.person_id
GROUP BY c.source ORDER BY c.source;

SELECT format('-- done in %s s', round(extract(epoch FROM clock_timestamp() - :'step_t0'::timestamptz)::numeric, 1)) AS step_done \gset
\echo :step_done
\echo
\echo '== 4. Ready for publication: age bands and postcode districts (no identifiers)'
SELECT clock_timestamp() AS step_t0 \gset
SELECT age_band(c.dob, e.admission_date, 10) AS age_band, count(*) AS episodes,
       count(DISTINCT postcode_district(c.postcode)) AS districts
FROM public.identifiers_clean c
JOIN synth.hospital_episode e ON c.source = 'hes' AND e.record_id = c.record_id
WHERE dob_is_valid(c.dob, e.admission_date)
GROUP BY 1 ORDER BY min(e.admission_date - c.dob);

SELECT format('-- done in %s s', round(extract(epoch FROM clock_timestamp() - :'step_t0'::timestamptz)::numeric, 1)) AS step_done \gset
\echo :step_done
\echo
\echo '== 5. Pseudonymise: a key per recipient, the master secret outside the database'
SELECT clock_timestamp() AS step_t0 \gset
SELECT key_file_status() AS key_file;
SELECT create_domain('linkage', 'internal linkage') AS linkage_domain,
       create_domain('study_a', 'Study A research extract') AS study_a_domain,
       create_domain('bi_tool', 'BI dashboard') AS bi_domain;
DROP TABLE IF EXISTS public.hes_clean;
CREATE TABLE public.hes_clean AS
SELECT c.record_id, c.nhs_number, c.dob, c.postcode, e.provider_code, e.admission_date, e.specialty,
       e.length_of_stay, e.died_30d, e.readmitted_30d
FROM public.identifiers_clean c JOIN synth.hospital_episode e ON c.source = 'hes' AND e.record_id = c.record_id
WHERE c.nhs_number IS NOT NULL;
\echo '-- one patient, three domains: unrelated tokens (no NHS number printed)'
SELECT pseudonymise(nhs_number, 'linkage') AS linkage, pseudonymise(nhs_number, 'study_a') AS study_a,
       pseudonymise(nhs_number, 'bi_tool') AS bi_tool
FROM public.hes_clean ORDER BY record_id LIMIT 1;
\echo '-- study A extract: pseudonyms, age bands, postcode districts'
DROP TABLE IF EXISTS public.study_a_extract;
CREATE TABLE public.study_a_extract AS
SELECT pseudonymise(nhs_number, 'study_a') AS patient, age_band(dob, admission_date, 10) AS age_band,
       postcode_district(postcode) AS district, provider_code, specialty, length_of_stay, died_30d
FROM public.hes_clean WHERE dob_is_valid(dob, admission_date);
\echo '-- (the extract keeps episodes with a valid NHS number and a date of birth valid at admission:'
\echo '--  hence slightly fewer episodes than the valid NHS numbers counted in section 2)'
SELECT count(*) AS episodes, count(DISTINCT patient) AS patients,
       count(DISTINCT patient) FILTER (WHERE pseudonym_domain(patient) = 'study_a') AS in_domain_study_a
FROM public.study_a_extract;

SELECT format('-- done in %s s', round(extract(epoch FROM clock_timestamp() - :'step_t0'::timestamptz)::numeric, 1)) AS step_done \gset
\echo :step_done
\echo
\echo '== 6. Honour objections: National Data Opt-out and Type 1, filtered for research'
SELECT clock_timestamp() AS step_t0 \gset
DROP TABLE IF EXISTS public.ndop_snapshot, public.gp_type1_codes;
CREATE TABLE public.ndop_snapshot AS
SELECT nhs_number FROM synth.objection_sample WHERE kind = 'national_data_opt_out';
INSERT INTO public.ndop_snapshot VALUES ('943 476 5918'), ('not known');   -- a feed is never clean
CREATE TABLE public.gp_type1_codes AS
SELECT nhs_number, '827241000000103'::text AS code, recorded_at FROM synth.objection_sample WHERE kind = 'type1';
\echo '-- the NDOP snapshot (invalid = 2: the two bad lines added above are skipped, not loaded), then Type 1 codes'
SELECT * FROM apply_opt_out_snapshot('public.ndop_snapshot', 'nhs_number', 'ndop');
SELECT * FROM apply_type1_codes('public.gp_type1_codes');
SELECT 'public.hes_clean' AS protected_for_research FROM (SELECT protect('public.hes_clean', 'nhs_number', 'research')) p;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'demo_analyst') THEN
    CREATE ROLE demo_analyst NOLOGIN IN ROLE caredata_analyst;
  END IF;
END $$;
GRANT SELECT ON public.hes_clean TO demo_analyst;
SELECT count(*) AS episodes_in_table FROM public.hes_clean;   -- a superuser is not filtered
SET ROLE demo_analyst;
SELECT count(*) AS episodes_an_analyst_sees,
       count(DISTINCT nhs_number) AS patients_an_analyst_sees FROM public.hes_clean;
RESET ROLE;
SELECT kind, count(*) FILTER (WHERE withdrawn_at IS NULL) AS open_objections FROM objection GROUP BY kind ORDER BY kind;

SELECT format('-- done in %s s', round(extract(epoch FROM clock_timestamp() - :'step_t0'::timestamptz)::numeric, 1)) AS step_done \gset
\echo :step_done
\echo
\echo '== 7. Link GP and hospital records: deterministic steps, then Fellegi-Sunter trained by EM'
SELECT clock_timestamp() AS step_t0 \gset
SELECT link_add_source('gp', 'synth.gp_registration', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT link_add_source('hes', 'synth.hospital_episode', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT link_create_model('default');
SELECT * FROM link_blocking_counts('default');
\echo '-- each phase of a run is printed as it finishes (INFO: shown although this script hides notices)'
SET caredata.link_progress = info;
SELECT run_id, records, links, persons, seconds FROM link_run(method => 'deterministic');
\echo '-- against the ground truth (precision, recall and F1 of all pairs, GP-hospital pairs and hospital de-duplication)...'
SELECT 'deterministic steps' AS linkage, scope, round(q."precision"::numeric, 4) AS "precision",
       round(q.recall::numeric, 4) AS recall, round(q.f1::numeric, 4) AS f1, persons_split, persons_merged
  FROM unnest(ARRAY['all', 'cross', 'hes']) scope, link_quality('synth_truth.record', 'person_id', scope) q;
SELECT run_id, model_version, records, candidate_pairs, links, persons,
       round(match_threshold::numeric, 3) AS label_free_threshold, seconds FROM link_run();
RESET caredata.link_progress;
\echo '-- against the ground truth...'
SELECT 'probabilistic (EM)' AS linkage, scope, round(q."precision"::numeric, 4) AS "precision",
       round(q.recall::numeric, 4) AS recall, round(q.f1::numeric, 4) AS f1, persons_split, persons_merged
  FROM unnest(ARRAY['all', 'cross', 'hes']) scope, link_quality('synth_truth.record', 'person_id', scope) q;
\echo '-- recall of records with each injected error (share of their true co-records linked to them), computing...'
WITH j AS (SELECT p.person_id c, t.person_id t, t.error_kinds FROM person_index p JOIN synth_truth.record t USING (source, record_id)),
     ct AS (SELECT c, t, count(*) n FROM j GROUP BY 1, 2), tt AS (SELECT t, count(*) n FROM j GROUP BY 1)
SELECT coalesce(e, '(none)') AS error_kind, count(*) AS records, round(avg((ct.n - 1)::numeric / (tt.n - 1)), 4) AS recall
  FROM j JOIN ct USING (c, t) JOIN tt USING (t) LEFT JOIN LATERAL unnest(j.error_kinds) e ON true
 WHERE tt.n > 1 GROUP BY 1 ORDER BY 1;
\echo '-- why two records were linked: the match weight, term by term'
WITH last AS (SELECT max(run_id) AS run_id FROM link_run),
     pick AS (SELECT a.source AS sa, a.record_id AS ra, b.source AS sb, b.record_id AS rb
                FROM last, link_pair p JOIN link_record a ON a.rid = p.rid_l JOIN link_record b ON b.rid = p.rid_r
               WHERE p.run_id = last.run_id AND a.source <> b.source
                 AND p.pattern <> (SELECT max(x.pattern) FROM link_pair x, last l WHERE x.run_id = l.run_id)
               ORDER BY p.rid_l, p.rid_r LIMIT 1)
SELECT e.term, e.level, e.label, round(e.weight::numeric, 2) AS weight
  FROM pick, link_explain(pick.sa, pick.ra, pick.sb, pick.rb) e;

SELECT format('-- done in %s s', round(extract(epoch FROM clock_timestamp() - :'step_t0'::timestamptz)::numeric, 1)) AS step_done \gset
\echo :step_done
\echo
\echo '== 8. Publish safe statistics: people not rows, small numbers suppressed (NHS HES rule), tables with totals protected'
SELECT clock_timestamp() AS step_t0 \gset
SELECT provider_code, count(*) AS episodes_not_published,
       safe_count_text(try_nhs_number(nhs_number)) AS patients,
       round(safe_avg(length_of_stay, try_nhs_number(nhs_number))::numeric, 1) AS mean_stay,
       round(safe_rate(died_30d, try_nhs_number(nhs_number))::numeric, 4) AS died_within_30_days
  FROM synth.hospital_episode GROUP BY provider_code ORDER BY provider_code LIMIT 6;
\echo '-- deaths within 30 days by provider and specialty, with totals: primary and secondary suppression'
SELECT suppression, count(*) AS cells FROM sdc_protect($$
  SELECT provider_code, specialty, count(*) FROM synth.hospital_episode WHERE died_30d GROUP BY 1, 2$$)
 GROUP BY suppression ORDER BY suppression;
\echo '-- what an attacker could derive: with primary suppression only, and after sdc_protect'
SELECT 'primary only' AS published, count(*) FILTER (WHERE disclosed) AS cells_disclosed, count(*) AS cells_suppressed
  FROM sdc_audit($$SELECT provider_code, specialty, count(*), sdc_apply(count(*)) IS NULL
                     FROM synth.hospital_episode WHERE died_30d GROUP BY CUBE (provider_code, specialty)$$)
UNION ALL
SELECT 'sdc_protect', count(*) FILTER (WHERE disclosed), count(*)
  FROM sdc_audit($$SELECT row_key, col_key, n, suppression <> 'published' FROM sdc_protect($q$
                     SELECT provider_code, specialty, count(*) FROM synth.hospital_episode WHERE died_30d GROUP BY 1, 2$q$)$$);

SELECT format('-- done in %s s', round(extract(epoch FROM clock_timestamp() - :'step_t0'::timestamptz)::numeric, 1)) AS step_done \gset
\echo :step_done
\echo
\echo '== 9. Publish to a recipient: pseudonymised, generalised, objection-filtered, for the recipient alone'
SELECT clock_timestamp() AS step_t0 \gset
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'demo_study') THEN CREATE ROLE demo_study NOLOGIN; END IF;
END $$;
SELECT create_domain('demo_study', 'demo recipient study') AS domain_id;
SELECT refresh_pseudonyms('demo_study', 'synth.hospital_episode') AS pseudonyms_stored;
\echo '-- (record-level episodes leave nearly every person''s set of records unique, so that a second recipient'
\echo '--  could link them 1:1: publish() refuses that, unless an admin overrides it with a reason, which is audited)'
SELECT publish('hes_demo_study', 'synth.hospital_episode',
  '{"domain": "demo_study", "purpose": "research",
    "linkability_override": "demo: the study''s approval covers record-level episodes (DARS-NIC-DEMO)",
    "columns": {"provider_code": "keep", "specialty": "keep", "admission_date": "month", "length_of_stay": "keep",
                "died_30d": "keep", "dob": "age_band", "sex": "keep", "postcode": "district"}}', 'demo_study') AS view;
\echo '-- the recipient''s view: a pseudonym, generalised columns, no identifier'
SET ROLE demo_study;
SELECT * FROM published.hes_demo_study ORDER BY person LIMIT 3;
SELECT count(*) AS rows_the_recipient_sees FROM published.hes_demo_study;
\echo '-- what the recipient may publish from it: patients per provider, small numbers suppressed'
SELECT provider_code, caredata.safe_count_text(person::caredata.pseudonym) AS patients
  FROM published.hes_demo_study GROUP BY provider_code ORDER BY provider_code LIMIT 4;
RESET ROLE;
SELECT count(*) AS episodes_in_the_source,
       count(*) FILTER (WHERE try_nhs_number(nhs_number) IS NULL) AS without_a_valid_nhs_number,
       count(*) FILTER (WHERE NOT permitted(try_nhs_number(nhs_number), 'research')) AS withheld_for_objections
  FROM synth.hospital_episode;
\echo '-- k-anonymity of the view over age band, sex and postcode district (k = 5): no class below k is published'
SELECT * FROM k_anonymity('published.hes_demo_study', ARRAY['dob_age_band', 'sex', 'postcode_district'], 5);
SELECT pg_catalog.to_regclass('caredata.publication_disclosure') IS NOT NULL AS has_disclosure \gset
\if :has_disclosure
\echo '-- what publish() did: the ladder level and each column''s step, rows suppressed, the smallest class,'
\echo '-- the share of persons linkable across recipients, the limit, the override'
SELECT name, k, level, steps, rows_published, rows_suppressed, smallest_class, linkable_share, max_linkable_share, overridden
  FROM publication_disclosure;
\endif
\echo '-- the audit log: every privileged step of this demo, hash-chained'
SELECT action, count(*) AS entries FROM audit_log GROUP BY action ORDER BY min(id);
SELECT audit_verify() AS audit_chain_intact;
SELECT format('-- done in %s s', round(extract(epoch FROM clock_timestamp() - :'step_t0'::timestamptz)::numeric, 1)) AS step_done \gset
\echo :step_done
\echo
\echo '== 10. Compare providers: 30-day mortality standardised for age and sex, funnel plot limits, outliers'
SELECT clock_timestamp() AS step_t0 \gset
\echo '-- as the recipient, over its published view: observed and expected deaths (indirect standardisation),'
\echo '-- the ratio, the 99.8% limits at each provider''s size (widened for over-dispersion when phi > 1), and the band'
SET ROLE demo_study;
SELECT unit AS provider, numerator AS deaths, round(denominator::numeric, 1) AS expected, round(ratio::numeric, 2) AS ratio,
       round(lower_998::numeric, 2) AS lower_998, round(upper_998::numeric, 2) AS upper_998, band
  FROM caredata.funnel($$SELECT unit, observed, expected FROM caredata.indirect_standardise('published.hes_demo_study',
                          'provider_code', 'died_30d', ARRAY['dob_age_band', 'sex'])$$)
 WHERE band <> 'within' OR unit IN ('RA7', 'RR8') ORDER BY ratio DESC;
SELECT (fit).units AS providers, round((fit).phi::numeric, 3) AS phi, round((fit).tau2::numeric, 5) AS tau2,
       limits, count(*) FILTER (WHERE outlier) AS outliers_beyond_99_8
  FROM caredata.funnel($$SELECT unit, observed, expected FROM caredata.indirect_standardise('published.hes_demo_study',
                          'provider_code', 'died_30d', ARRAY['dob_age_band', 'sex'])$$)
 GROUP BY fit, limits;
\pset format unaligned
\pset tuples_only on
\o demo-output/funnel_30day_mortality.svg
SELECT caredata.funnel_svg($$SELECT unit, observed, expected FROM caredata.indirect_standardise('published.hes_demo_study',
                             'provider_code', 'died_30d', ARRAY['dob_age_band', 'sex'])$$,
                           '30-day mortality by provider, standardised for age and sex');
\o
\pset format aligned
\pset tuples_only off
RESET ROLE;
\echo '-- the funnel plot (open it in a browser): demo-output/funnel_30day_mortality.svg'
SELECT format('-- done in %s s', round(extract(epoch FROM clock_timestamp() - :'step_t0'::timestamptz)::numeric, 1)) AS step_done \gset
\echo :step_done
\echo
\echo 'Tables: synth.* (sources), caredata.person_index (linkage), published.hes_demo_study (the recipient''s view).'
\echo 'Roles: caredata_admin, caredata_linker, caredata_analyst, caredata_reidentifier, caredata_patient, demo_study (a recipient).'
\echo 'Try, as the recipient: SET ROLE demo_study; SELECT specialty, caredata.safe_count_text(person::caredata.pseudonym) FROM published.hes_demo_study GROUP BY 1;'
