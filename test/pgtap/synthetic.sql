-- test/pgtap/synthetic.sql: the synthetic population is valid, reproducible,
-- carries the errors it promises at the promised rates, and the identifier
-- standardisers read every layout its sources use.
BEGIN;
SET LOCAL client_min_messages = warning;
\set QUIET 1
\i test/synthetic/generate.sql
\set QUIET 0
SELECT plan(20);
SET LOCAL search_path = public, caredata;
SELECT * FROM synth.generate(20000, 42) \g /dev/null

SELECT is((SELECT count(*) FROM synth_truth.person), 20000::bigint, '20,000 people');
SELECT is((SELECT count(*) FROM synth_truth.person WHERE NOT nhs_number_is_valid(nhs_number)), 0::bigint,
          'every true NHS number is valid (Modulus 11)');
SELECT is((SELECT count(DISTINCT nhs_number) FROM synth_truth.person), 20000::bigint, 'and unique');
SELECT is((SELECT count(*) FROM synth_truth.person WHERE NOT nhs_number_is_test(nhs_number::nhs_number)), 0::bigint,
          'and in the 999 test range');
SELECT ok((SELECT count(*) FROM synth.hospital_episode)::numeric / 20000 BETWEEN 1.3 AND 1.7,
          'about 1.5 hospital episodes a person');
SELECT is((SELECT count(*) FROM synth_truth.record), (SELECT count(*) FROM synth.gp_registration) + (SELECT count(*) FROM synth.hospital_episode),
          'every source record has its truth');

-- error rates (per record; tolerance about four standard errors)
CREATE TEMP TABLE rate AS
SELECT k, count(*)::numeric / (SELECT count(*) FROM synth_truth.record) AS r
FROM synth_truth.record, unnest(error_kinds) k GROUP BY k;
SELECT ok((SELECT r FROM rate WHERE k = 'nhs_missing') BETWEEN 0.025 AND 0.035, 'NHS number missing ~3%');
SELECT ok((SELECT r FROM rate WHERE k = 'nhs_mistyped') BETWEEN 0.007 AND 0.013, 'NHS number mistyped ~1%');
SELECT ok((SELECT r FROM rate WHERE k = 'dob_wrong') BETWEEN 0.007 AND 0.013, 'date of birth wrong ~1%');
SELECT ok((SELECT r FROM rate WHERE k = 'postcode_moved') BETWEEN 0.09 AND 0.14, 'postcode from before a move ~10% (more in old GP registrations)');
SELECT ok((SELECT r FROM rate WHERE k = 'sex_unknown') BETWEEN 0.003 AND 0.008, 'sex unknown ~0.5%');

-- the errors are what they say
CREATE TEMP VIEW rec AS
SELECT t.error_kinds, s.nhs_number, s.dob, s.sex, s.postcode, p.nhs_number AS true_nhs, p.dob AS true_dob
FROM synth_truth.record t JOIN synth.gp_registration s ON t.source = 'gp' AND s.record_id = t.record_id
JOIN synth_truth.person p USING (person_id)
UNION ALL
SELECT t.error_kinds, s.nhs_number, s.dob, s.sex, s.postcode, p.nhs_number, p.dob
FROM synth_truth.record t JOIN synth.hospital_episode s ON t.source = 'hes' AND s.record_id = t.record_id
JOIN synth_truth.person p USING (person_id);
SELECT is((SELECT count(*) FROM rec WHERE 'nhs_mistyped' = ANY (error_kinds) AND nhs_number_is_valid(nhs_number)), 0::bigint,
          'Modulus 11 catches every mistyped NHS number');
SELECT is((SELECT count(*) FROM rec WHERE 'nhs_other_person' = ANY (error_kinds)
             AND (NOT nhs_number_is_valid(nhs_number) OR try_nhs_number(nhs_number) = true_nhs::nhs_number)), 0::bigint,
          'another person''s NHS number is valid and not the true one');
SELECT is((SELECT count(*) FROM rec WHERE error_kinds = '{}'
             AND try_nhs_number(nhs_number) IS DISTINCT FROM true_nhs::nhs_number), 0::bigint,
          'records without errors carry the true NHS number in whatever layout');
SELECT is((SELECT count(*) FROM rec WHERE 'dob_wrong' = ANY (error_kinds)
             AND try_standardise_dob(dob, '2030-01-01') = true_dob), 0::bigint,
          'a wrong date of birth is a real date other than the truth');
SELECT is((SELECT count(*) FROM rec WHERE NOT ('dob_wrong' = ANY (error_kinds))
             AND try_standardise_dob(dob, '2026-01-01') IS DISTINCT FROM true_dob), 0::bigint,
          'every other date of birth reads back as the truth, in either source''s layout');
SELECT is((SELECT count(*) FROM rec WHERE try_normalise_postcode(postcode) IS NULL
             OR try_standardise_sex(sex) IS NULL), 0::bigint,
          'every postcode and sex code in the sources standardises');

-- reproducible
DROP VIEW rec;
SELECT md5(string_agg(t::text, ',' ORDER BY record_id)) AS h1 FROM synth.hospital_episode t \gset
SELECT * FROM synth.generate(20000, 42) \g /dev/null
SELECT is((SELECT md5(string_agg(t::text, ',' ORDER BY record_id)) FROM synth.hospital_episode t), :'h1',
          'the same seed gives the same tables');
SELECT * FROM synth.generate(20000, 43) \g /dev/null
SELECT isnt((SELECT md5(string_agg(t::text, ',' ORDER BY record_id)) FROM synth.hospital_episode t), :'h1',
          'another seed gives another population');
SELECT ok((SELECT count(*) FILTER (WHERE kind = 'national_data_opt_out')::numeric / 20000 BETWEEN 0.04 AND 0.06
              AND count(*) FILTER (WHERE kind = 'type1')::numeric / 20000 BETWEEN 0.02 AND 0.04
           FROM synth.objection_sample), 'objection sample: ~5% National Data Opt-out, ~3% Type 1');

SELECT * FROM finish();
ROLLBACK;
