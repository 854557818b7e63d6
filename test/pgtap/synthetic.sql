-- test/pgtap/synthetic.sql: the synthetic population is valid, reproducible,
-- carries the errors it promises at the promised rates, and the identifier
-- standardisers read every layout its sources use.  Names and addresses
-- (issue 25) carry labelled errors, twins and same-household pairs are what
-- the truth says, and the default call's earlier columns are exactly what
-- they were before names were added (md5s recorded below).
BEGIN;
SET LOCAL client_min_messages = warning;
\set QUIET 1
\i test/synthetic/generate.sql
\set QUIET 0
SELECT plan(56);
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

DROP VIEW rec;

-- the default call left every earlier column as it was before issue 25:
-- md5 of each table's earlier columns in key order, recorded with the
-- generator of commit e058a5d
SET LOCAL DateStyle = 'ISO, YMD';
SET LOCAL timezone = 'UTC';
SELECT is((SELECT md5(string_agg(row(person_id, nhs_number, dob, sex, postcode, prev_postcode, gp_practice)::text, ',' ORDER BY person_id))
           FROM synth_truth.person), '0170862fdeebe7d6ddcc2878777f7f4a', 'synth_truth.person: earlier columns unchanged');
SELECT is((SELECT md5(string_agg(row(source, record_id, person_id, error_kinds)::text, ',' ORDER BY source, record_id))
           FROM synth_truth.record), 'dce69746be83e5f7a053323ec04b7eb1', 'synth_truth.record: earlier columns unchanged');
SELECT is((SELECT md5(string_agg(row(record_id, practice_code, registered_on, nhs_number, dob, sex, postcode)::text, ',' ORDER BY record_id))
           FROM synth.gp_registration), '5712385867abc88f64b95d6639cff9c2', 'synth.gp_registration: earlier columns unchanged');
SELECT is((SELECT md5(string_agg(row(record_id, provider_code, admission_date, specialty, length_of_stay, died_30d, readmitted_30d,
                                     nhs_number, dob, sex, postcode)::text, ',' ORDER BY record_id))
           FROM synth.hospital_episode), '53a78e7e03a90a5011aaa83e972a3d5b', 'synth.hospital_episode: earlier columns unchanged');
SELECT is((SELECT md5(string_agg(row(nhs_number, kind, recorded_at)::text, ',' ORDER BY nhs_number, kind))
           FROM synth.objection_sample), '4dd8b00c4d69a182bd2f7aa834a24f19', 'synth.objection_sample unchanged');
SELECT is((SELECT count(*) FROM synth_truth.twin) + (SELECT count(*) FROM synth_truth.same_household), 0::bigint,
          'the default call makes no twins and no same-household pairs');

-- names and addresses: the columns
SELECT is((SELECT array_agg((table_schema || '.' || table_name || '.' || column_name)::text ORDER BY table_schema, table_name, column_name)
           FROM information_schema.columns
           WHERE (table_schema, table_name) IN (('synth_truth', 'person'), ('synth_truth', 'record'),
                                               ('synth', 'gp_registration'), ('synth', 'hospital_episode'))
             AND column_name IN ('given_name', 'family_name', 'birth_family_name', 'address_line', 'town',
                                 'prev_address_line', 'prev_town', 'name_error_kinds')),
          ARRAY['synth.gp_registration.address_line', 'synth.gp_registration.family_name',
                'synth.gp_registration.given_name', 'synth.gp_registration.town',
                'synth.hospital_episode.address_line', 'synth.hospital_episode.family_name',
                'synth.hospital_episode.given_name', 'synth.hospital_episode.town',
                'synth_truth.person.address_line', 'synth_truth.person.birth_family_name',
                'synth_truth.person.family_name', 'synth_truth.person.given_name',
                'synth_truth.person.prev_address_line', 'synth_truth.person.prev_town',
                'synth_truth.person.town', 'synth_truth.record.name_error_kinds'],
          'names and addresses in the truth and in both sources; their errors in synth_truth.record.name_error_kinds');
SELECT is((SELECT count(*) FROM synth_truth.person WHERE given_name IS NULL OR family_name IS NULL OR birth_family_name IS NULL
             OR address_line IS NULL OR town IS NULL OR prev_address_line IS NULL OR prev_town IS NULL), 0::bigint,
          'every person has names and both addresses');
SELECT ok((SELECT count(DISTINCT given_name) >= 300 AND count(DISTINCT family_name) >= 250 FROM synth_truth.person),
          'a few hundred given and family names');
SELECT ok((SELECT max(c)::numeric / 20000 BETWEEN 0.008 AND 0.025 AND min(c) < 20
           FROM (SELECT count(*) c FROM synth_truth.person GROUP BY family_name) x),
          'family names skewed: the commonest 0.8-2.5% (Smith, Jones), the rarest a handful');
SELECT ok((SELECT count(*) FILTER (WHERE family_name <> birth_family_name)::numeric / count(*) FILTER (WHERE sex = '2' AND dob <= '2006-01-01')
             BETWEEN 0.38 AND 0.52
             AND count(*) FILTER (WHERE family_name <> birth_family_name AND sex <> '2') = 0
           FROM synth_truth.person), 'about 45% of women of 20 or more changed their family name, nobody else');
SELECT is((SELECT count(*) FROM synth_truth.person p JOIN synth_truth.person q ON q.person_id = p.person_id + 1
           WHERE p.person_id % 2 = 1 AND p.address_line IS DISTINCT FROM q.address_line), 0::bigint,
          'a household of two shares its address line');

CREATE TEMP VIEW nrec AS
SELECT t.source, t.error_kinds, t.name_error_kinds, s.given_name, s.family_name, s.address_line, s.town,
       p.given_name AS true_given, p.family_name AS true_family, p.birth_family_name AS birth_family,
       p.address_line AS true_address, p.town AS true_town, p.prev_address_line, p.prev_town
FROM synth_truth.record t JOIN synth.gp_registration s ON t.source = 'gp' AND s.record_id = t.record_id
JOIN synth_truth.person p USING (person_id)
UNION ALL
SELECT t.source, t.error_kinds, t.name_error_kinds, s.given_name, s.family_name, s.address_line, s.town,
       p.given_name, p.family_name, p.birth_family_name, p.address_line, p.town, p.prev_address_line, p.prev_town
FROM synth_truth.record t JOIN synth.hospital_episode s ON t.source = 'hes' AND s.record_id = t.record_id
JOIN synth_truth.person p USING (person_id);
CREATE TEMP TABLE nrate AS
SELECT k, count(*)::numeric / (SELECT count(*) FROM synth_truth.record) AS r
FROM synth_truth.record, unnest(name_error_kinds) k GROUP BY k;
SELECT is((SELECT count(*) FROM synth_truth.record WHERE name_error_kinds IS NULL), 0::bigint, 'every record has its name error kinds');
SELECT ok((SELECT r FROM nrate WHERE k = 'given_name_mistyped') BETWEEN 0.007 AND 0.013, 'given name mistyped ~1%');
SELECT ok((SELECT r FROM nrate WHERE k = 'family_name_mistyped') BETWEEN 0.011 AND 0.019, 'family name mistyped ~1.5%');
SELECT ok((SELECT r FROM nrate WHERE k = 'names_swapped') BETWEEN 0.003 AND 0.007, 'given and family names swapped ~0.5%');
SELECT ok((SELECT r FROM nrate WHERE k = 'address_mistyped') BETWEEN 0.007 AND 0.013, 'address line mistyped ~1%');
SELECT ok((SELECT r FROM nrate WHERE k = 'given_name_nickname') BETWEEN 0.02 AND 0.06, 'a nickname for ~10% of the names that have one');
SELECT ok((SELECT r FROM nrate WHERE k = 'family_name_previous') BETWEEN 0.02 AND 0.08, 'the family name before marriage in a quarter of those women''s records');
SELECT is((SELECT count(*) FROM synth_truth.record WHERE ('postcode_moved' = ANY (error_kinds)) <> ('address_moved' = ANY (name_error_kinds))),
          0::bigint, 'address_moved labels exactly the postcode_moved records');
SELECT is((SELECT count(*) FROM nrec WHERE name_error_kinds = '{}'
             AND (upper(given_name) <> upper(true_given) OR upper(family_name) <> upper(true_family)
                  OR synth.address_key(address_line) <> synth.address_key(true_address) OR upper(town) <> upper(true_town))),
          0::bigint, 'records without name or address errors carry the true ones, in whatever case and abbreviation');
SELECT is((SELECT count(*) FROM nrec WHERE name_error_kinds = '{given_name_mistyped}'
             AND (upper(given_name) = upper(true_given) OR abs(length(given_name) - length(true_given)) > 1
                  OR upper(family_name) <> upper(true_family))), 0::bigint,
          'a mistyped given name differs from the truth by one character');
SELECT is((SELECT count(*) FROM nrec WHERE name_error_kinds = '{family_name_mistyped}'
             AND (upper(family_name) = upper(true_family) OR abs(length(family_name) - length(true_family)) > 1
                  OR upper(given_name) <> upper(true_given))), 0::bigint,
          'a mistyped family name differs from the truth by one character');
SELECT ok((SELECT count(*) > 0 AND count(*) FILTER (WHERE NOT upper(given_name) = ANY (SELECT upper(x) FROM unnest(synth.nicknames(true_given)) x)) = 0
           FROM nrec WHERE name_error_kinds = '{given_name_nickname}'),
          'a nickname is one of the given name''s short forms (William: Bill, Will, Billy)');
SELECT ok((SELECT count(*) > 0 AND count(*) FILTER (WHERE upper(family_name) <> upper(birth_family) OR birth_family = true_family) = 0
           FROM nrec WHERE name_error_kinds = '{family_name_previous}'),
          'a previous family name is the family name at birth, not the current one');
SELECT ok((SELECT count(*) > 0 AND count(*) FILTER (WHERE upper(given_name) <> upper(true_family) OR upper(family_name) <> upper(true_given)) = 0
           FROM nrec WHERE name_error_kinds = '{names_swapped}'),
          'swapped names are the family name as given name and the given name as family name');
SELECT ok((SELECT count(*) > 0 AND count(*) FILTER (WHERE synth.address_key(address_line) <> synth.address_key(prev_address_line)
                                                    OR upper(town) <> upper(prev_town)
                                                    OR synth.address_key(address_line) = synth.address_key(true_address)) = 0
           FROM nrec WHERE name_error_kinds = '{address_moved}'),
          'a moved address is the one before the move, line and town');
SELECT ok((SELECT count(*) > 0 AND count(*) FILTER (WHERE synth.address_key(address_line) = synth.address_key(true_address)
                                                    OR upper(town) <> upper(true_town)) = 0
           FROM nrec WHERE name_error_kinds = '{address_mistyped}'),
          'a mistyped address line differs from the truth');
DROP VIEW nrec;

-- reproducible
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

-- twins and same-household pairs, when asked for
SELECT * FROM synth.generate(20000, 42, twins => 0.02, households => 0.1) \g /dev/null
CREATE TEMP VIEW pair AS
SELECT 'twin' AS kind, a.*, b.person_id AS b_id, b.nhs_number AS b_nhs, b.dob AS b_dob, b.given_name AS b_given,
       b.family_name AS b_family, b.address_line AS b_address, b.postcode AS b_postcode
FROM synth_truth.twin t JOIN synth_truth.person a ON a.person_id = t.person_a JOIN synth_truth.person b ON b.person_id = t.person_b
UNION ALL
SELECT 'household', a.*, b.person_id, b.nhs_number, b.dob, b.given_name, b.family_name, b.address_line, b.postcode
FROM synth_truth.same_household t JOIN synth_truth.person a ON a.person_id = t.person_a JOIN synth_truth.person b ON b.person_id = t.person_b;
SELECT ok((SELECT count(*) BETWEEN 140 AND 260 FROM pair WHERE kind = 'twin'), 'twins => 0.02: about 200 twin pairs among 10,000 households');
SELECT ok((SELECT count(*) BETWEEN 880 AND 1120 FROM pair WHERE kind = 'household'), 'households => 0.1: about 1,000 same-household pairs');
SELECT is((SELECT count(*) FROM pair WHERE kind = 'twin'
             AND NOT (dob = b_dob AND address_line = b_address AND postcode = b_postcode AND family_name = b_family
                      AND given_name <> b_given AND nhs_number <> b_nhs AND b_id = person_id + 1
                      AND nhs_number_is_valid(nhs_number) AND nhs_number_is_valid(b_nhs))), 0::bigint,
          'twins: same date of birth, address and family name, different given names and valid NHS numbers');
SELECT is((SELECT count(*) FROM pair WHERE kind = 'household'
             AND NOT (dob <> b_dob AND address_line = b_address AND postcode = b_postcode AND family_name = b_family
                      AND nhs_number <> b_nhs AND b_id = person_id + 1)), 0::bigint,
          'same household: same address and family name, different dates of birth');
SELECT is((SELECT count(*) FROM synth_truth.twin t JOIN synth_truth.same_household s USING (person_a)), 0::bigint,
          'a pair is twins or a same-household pair, not both');
SELECT is((SELECT count(*) FROM synth_truth.person), 20000::bigint, 'still 20,000 people');
SELECT ok((SELECT count(*) FROM synth_truth.record t JOIN synth.hospital_episode h ON t.source = 'hes' AND h.record_id = t.record_id
           JOIN synth_truth.twin w ON t.person_id = w.person_b JOIN synth_truth.person a ON a.person_id = w.person_a
           WHERE t.error_kinds = '{}' AND h.dob = to_char(a.dob, 'YYYY-MM-DD')) > 0,
          'a twin''s hospital records carry the date of birth the other twin has');
SELECT throws_ok('SELECT * FROM synth.generate(100, 1, twins => 0.7, households => 0.5)', 'P0001', NULL,
                 'twins and households together at most every household');

SELECT * FROM finish();
ROLLBACK;
