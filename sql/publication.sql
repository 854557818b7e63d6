-- sql/publication.sql: publishing a source to a recipient: pseudonymised,
-- generalised, objection-filtered, readable by the recipient alone, audited
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
\set ECHO none
\i test/synthetic/generate.sql
\set ECHO all
SELECT count(*) > 0 AS generated FROM synth.generate(2000, 7);
RESET client_min_messages;
SET search_path = caredata, public;

-- the recipient, its domain and its stored pseudonyms (the linker's job)
CREATE ROLE pub_study NOLOGIN;
SELECT create_domain('pub_study', 'publication test') > 0 AS domain_created;
SELECT refresh_pseudonyms('pub_study', 'synth.hospital_episode') > 0 AS pseudonyms_stored;
-- one patient objects to research
SELECT record_objection(try_nhs_number(h.nhs_number), 'national_data_opt_out', 'test') > 0 AS objected
  FROM synth.hospital_episode h WHERE try_nhs_number(h.nhs_number) IS NOT NULL ORDER BY h.record_id LIMIT 1;

-- (record-level episodes: nearly every person's set of records is unique,
-- which publish() refuses without an admin's audited override;
-- sql/publication_kanon.sql tests the limit)
SELECT publish('episodes', 'synth.hospital_episode',
               '{"domain": "pub_study", "purpose": "research", "linkability_override": "test: the limit is tested by publication_kanon",
                 "columns": {"provider_code": "keep", "specialty": "keep", "admission_date": "month",
                             "length_of_stay": "keep", "dob": "age_band", "sex": "keep", "postcode": "district"}}',
               'pub_study');
-- no identifier column: a pseudonym and generalised quasi-identifiers
SELECT column_name, data_type FROM information_schema.columns
 WHERE table_schema = 'published' AND table_name = 'episodes' ORDER BY ordinal_position;
SELECT reloptions FROM pg_class WHERE oid = 'published.episodes'::regclass;
-- every published row has a stored pseudonym (rows in classes of fewer than
-- k persons are left out); the objector is absent
SELECT (SELECT count(*) FROM published.episodes)
     <= (SELECT count(*) FROM synth.hospital_episode h
         WHERE try_nhs_number(h.nhs_number) IS NOT NULL AND permitted(try_nhs_number(h.nhs_number), 'research'))
       AS every_permitted_row_published,
       (SELECT count(*) FROM synth.hospital_episode h WHERE NOT permitted(try_nhs_number(h.nhs_number), 'research')) > 0
       AS some_rows_withheld;
SELECT count(*) AS objector_rows FROM published.episodes e
  JOIN pseudonym_map m ON m.domain = 'pub_study' AND m.pseudonym::text = e.person
 WHERE NOT permitted(m.nhs_number, 'research');
SELECT count(*) AS ages_not_banded FROM published.episodes WHERE dob_age_band !~ '^[0-9]+(-[0-9]+|\+)$';

-- the recipient reads the view, and nothing else
-- publish() leaves the recipient's search_path alone: the view qualifies all it names
SELECT setconfig FROM pg_db_role_setting WHERE setrole = 'pub_study'::regrole;
SET ROLE pub_study;
SELECT count(*) > 0 AS recipient_reads FROM published.episodes;
SELECT count(*) FROM synth.hospital_episode;
SELECT count(*) FROM caredata.pseudonym_map;
SELECT count(*) FROM caredata.objection;
SELECT caredata.pseudonymise('9434765919'::caredata.nhs_number, 'pub_study');
SELECT caredata.refresh_pseudonyms('pub_study', 'pg_class');
RESET ROLE;
CREATE ROLE pub_other NOLOGIN IN ROLE caredata_analyst;
SET ROLE pub_other;
SELECT count(*) FROM published.episodes;
RESET ROLE;

-- k-anonymity over the quasi-identifiers
SELECT rows > 0 AS has_rows, classes > 0 AS has_classes, classes_below_k AS small_classes_published, share_below_k
  FROM k_anonymity('published.episodes', ARRAY['dob_age_band', 'sex', 'postcode_district'], 5);
SELECT * FROM k_anonymity('published.episodes', ARRAY['provider_code'], 1);

-- a key rotation: republish moves the stored pseudonyms to the new version
SELECT person AS before_rotation FROM published.episodes ORDER BY person LIMIT 1 \gset
SELECT rotate_domain('pub_study');
SELECT republish('episodes');
SELECT count(*) AS old_pseudonyms_left FROM published.episodes WHERE person = :'before_rotation';
SELECT count(DISTINCT version) AS versions FROM pseudonym_map WHERE domain = 'pub_study';

-- what each recipient sees, and the audit
SELECT name, recipient, source, republished_at IS NOT NULL AS republished FROM publication;
SELECT action, object FROM audit_log WHERE action LIKE 'publication.%' OR action LIKE 'pseudonyms.%' ORDER BY id;

-- bad specs
SELECT publish('bad', 'synth.hospital_episode', '{"domain": "pub_study", "columns": {}}', 'pub_study');
SELECT publish('bad', 'synth.hospital_episode', '{"domain": "pub_study", "purpose": "research", "columns": {"nhs_number": "keep"}}', 'pub_study');
SELECT publish('bad', 'synth.hospital_episode', '{"domain": "pub_study", "purpose": "research", "columns": {"no_such": "keep"}}', 'pub_study');
-- direct identifiers (test/pgtap/publication_recipients.sql tries each kind and route)
SELECT publish('bad', 'synth.hospital_episode', '{"domain": "pub_study", "purpose": "research", "columns": {"dob": "keep"}}', 'pub_study');
SELECT publish('bad', 'synth.hospital_episode', '{"domain": "pub_study", "purpose": "research", "columns": {"postcode": "keep"}}', 'pub_study');
SELECT publish('bad', 'synth.hospital_episode', '{"domain": "pub_study", "purpose": "research", "columns": {"dob": "blur"}}', 'pub_study');
SELECT publish('bad', 'synth.hospital_episode', '{"domain": "nope", "purpose": "research", "columns": {}}', 'pub_study');
SELECT publish('bad', 'synth.hospital_episode', '{"domain": "pub_study", "purpose": "research", "columns": {}}', 'no_such_role');
SELECT publish('bad', 'synth.hospital_episode', '{"domain": "pub_study", "purpose": "research", "columns": {}}', 'postgres');
SELECT publish('bad', 'synth.hospital_episode', '{"domain": "pub_study", "purpose": "research", "nhs_column": "nhs", "columns": {}}', 'pub_study');
SELECT publish('episodes', 'synth.hospital_episode', '{"domain": "pub_study", "purpose": "research", "columns": {}}', 'pub_study');
SELECT k_anonymity('published.episodes', ARRAY[]::text[]);

-- unpublish
SELECT unpublish('episodes');
SELECT to_regclass('published.episodes') IS NULL AS view_gone, count(*) AS publications FROM publication;
SELECT unpublish('episodes');
DROP ROLE pub_other;
REVOKE ALL ON SCHEMA published FROM pub_study;
REVOKE ALL ON FUNCTION permitted(nhs_number, text, timestamptz, text) FROM pub_study;
REVOKE ALL ON FUNCTION caredata._published_reader(), caredata._recipient_problem(name) FROM pub_study;
ALTER ROLE pub_study RESET search_path;
DROP ROLE pub_study;
