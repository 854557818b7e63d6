-- linkage_fields: any column in a source (issue 25 section 1): further
-- fields with a standardiser by kind, compared and blocked on like the NHS
-- identifiers; text record ids; postcodes of any country; comparison
-- expressions that read only the two records they compare
CREATE EXTENSION IF NOT EXISTS caredata;
SET client_min_messages = warning;
CREATE SCHEMA fld;
-- a clinic with text ids and names; a registry with integer ids
CREATE TABLE fld.clinic (id text PRIMARY KEY, forename text, surname text, addr text, born text, pc text, mrn text);
INSERT INTO fld.clinic VALUES
  ('C-001', 'Siobhán', 'O''Brien', '12 High Street', '1980-03-04', 'SW1A 1AA', 'mrn 001'),
  ('C-002', 'Dr. John', 'SMITH Jr', 'Flat 3, 7 Mill Rd', '1975-11-30', '75008', 'MRN-002'),
  ('C-003', 'Amy', 'Lee', '1 Rue de Rivoli', '1990-01-01', 'K1A 0B6', NULL),
  ('C-004', 'Tom', 'Lee', '1 Rue de Rivoli', '1990-01-01', 'K1A 0B6', NULL);
CREATE TABLE fld.registry (rid bigint PRIMARY KEY, given text, family text, line1 text, dob date, postcode text);
INSERT INTO fld.registry VALUES
  (10, 'Siobhan', 'OBrien', '12 High St', '1980-03-04', 'sw1a1aa'),
  (11, 'Jon', 'Smith', '7 Mill Road', '1975-11-30', '75008'),
  (12, 'Amy', 'Lee', '1 rue de Rivoli', '1990-01-01', 'K1A 0B6'),
  (13, 'Zoe', 'Ng', '99 Other Way', '2001-02-03', 'LS1 4AP');

-- fields must be named well, have a known kind, name a real column of a usable type
SELECT caredata.link_add_source('clinic', 'fld.clinic', 'id', fields => '{"Bad Name": "forename"}');
SELECT caredata.link_add_source('clinic', 'fld.clinic', 'id', fields => '{"tf_x": "forename"}');
SELECT caredata.link_add_source('clinic', 'fld.clinic', 'id', fields => '{"nhs_digits": "forename"}');
SELECT caredata.link_add_source('clinic', 'fld.clinic', 'id', fields => '{"given_name": {"column": "forename", "kind": "soundex"}}');
SELECT caredata.link_add_source('clinic', 'fld.clinic', 'id', fields => '{"given_name": {"column": "nope", "kind": "name"}}');
SELECT caredata.link_add_source('clinic', 'fld.clinic', 'id', fields => '["forename"]');
-- text record ids and further fields
SELECT caredata.link_add_source('clinic', 'fld.clinic', 'id', dob => 'born', postcode => 'pc',
         fields => '{"given_name": {"column": "forename", "kind": "name"}, "family_name": {"column": "surname", "kind": "name"},
                     "address": {"column": "addr", "kind": "address"}, "mrn": {"column": "mrn", "kind": "identifier"}}');
-- a field keeps one kind across sources
SELECT caredata.link_add_source('registry', 'fld.registry', 'rid', fields => '{"given_name": {"column": "given", "kind": "text"}}');
SELECT caredata.link_add_source('registry', 'fld.registry', 'rid', dob => 'dob', postcode => 'postcode',
         fields => '{"given_name": {"column": "given", "kind": "name"}, "family_name": {"column": "family", "kind": "name"},
                     "address": {"column": "line1", "kind": "address"}}');
SELECT source, fields FROM caredata.link_source WHERE source IN ('clinic', 'registry') ORDER BY 1;
SELECT caredata.link_standardise(ARRAY['clinic', 'registry']);
-- standardised: integer ids in record_id, every id in record_key; UK
-- postcodes canonical with their parts, others kept as text
SELECT source, record_id, record_key, postcode, area, fields->>'given_name' AS given, fields->>'given_name_ph' AS given_ph,
       fields->>'family_name' AS family, fields->>'address' AS address, fields->>'address_num' AS num, fields->>'mrn' AS mrn,
       round((fields->>'tf_family_name')::numeric, 3) AS tf_family
  FROM caredata.link_record ORDER BY source, record_key;

-- a model over the fields: comparisons and a blocking rule name them
SELECT caredata.link_create_model('fld', caredata.link_default_spec() || '{
  "link_type": "link_only",
  "comparisons": [
    {"name": "dob", "expression": "caredata.compare_date(l.dob, r.dob, 365)",
     "levels": ["missing", "different", "within a year", "two of year, month, day", "day and month transposed", "exact"]},
    {"name": "postcode", "expression": "caredata.compare_postcode(l.postcode, r.postcode)",
     "levels": ["missing", "different", "same area", "same district", "same sector", "exact"]},
    {"name": "given_name", "expression": "caredata.compare_name(l.given_name, r.given_name)",
     "levels": ["missing", "different", "sounds alike", "similar", "very similar", "exact"], "tf": "given_name",
     "m": [0.01, 0.02, 0.02, 0.05, 0.1, 0.8]},
    {"name": "family_name", "expression": "caredata.compare_name(l.family_name, r.family_name)",
     "levels": ["missing", "different", "sounds alike", "similar", "very similar", "exact"], "tf": "family_name"},
    {"name": "address", "expression": "caredata.compare_token_overlap(l.address, r.address)",
     "levels": ["missing", "different", "half the words", "most words", "exact"]}
  ],
  "blocking": [["dob"], ["family_name_ph", "address_num"]], "u_sample_pairs": 100, "steps": []}') AS version;
-- two records of the same address compare on the tokens
SELECT caredata.compare_token_overlap(a.fields->>'address', b.fields->>'address') AS same_address,
       caredata.compare_postcode(a.postcode, b.postcode) AS same_foreign_postcode
  FROM caredata.link_record a, caredata.link_record b WHERE a.record_key = 'C-003' AND b.record_key = '12';
-- blocking counts over a field rule
SELECT rule, columns, pairs FROM caredata.link_blocking_counts('fld') ORDER BY rule;
-- deterministic linkage on the fields (no training on four records)
SELECT caredata.link_create_model('fld', (SELECT spec FROM caredata.link_model WHERE model = 'fld' AND version = 1)
         || '{"steps": ["dob = 5 AND family_name >= 4 AND given_name >= 2"]}') AS version;
SELECT records, links, persons FROM caredata.link_run('fld', method => 'deterministic', sources => ARRAY['clinic', 'registry']);
-- the twins (same birth date and address, different names) stay apart
SELECT source, record_id, record_key, dense_rank() OVER (ORDER BY person_id) AS person
  FROM caredata.person_index WHERE source IN ('clinic', 'registry') ORDER BY source, record_key;

-- explain names records by their text ids (integer ids as text or integers)
UPDATE caredata.link_model SET lambda = 0.25 WHERE model = 'fld' AND version = 2;
UPDATE caredata.link_model_level SET m = 0.5, u = 0.25 WHERE model = 'fld' AND version = 2;
SELECT term, level, label FROM caredata.link_explain('clinic', 'C-001', 'registry', '10', 'fld');
SELECT count(*) AS terms FROM caredata.link_explain('registry', 10, 'registry', 11, 'fld');
SELECT caredata.link_explain('clinic', 'C-999', 'registry', '10', 'fld');

-- a comparison reads only the two records: no subquery, no other table,
-- no function outside caredata and pg_catalog
SELECT caredata.link_create_model('peek', caredata.link_default_spec() || '{"comparisons": [
  {"name": "peek", "expression": "(SELECT count(*) FROM fld.clinic c WHERE c.id = l.record_key)::integer", "levels": ["a", "b"]}]}');
SELECT caredata.link_create_model('peek', caredata.link_default_spec() || '{"comparisons": [
  {"name": "peek", "expression": "CASE WHEN EXISTS (SELECT 1 FROM caredata.link_record x) THEN 1 ELSE 0 END", "levels": ["a", "b"]}]}');
CREATE FUNCTION public.peek(text) RETURNS integer LANGUAGE sql STABLE AS $$ SELECT count(*)::integer FROM fld.clinic WHERE id = $1 $$;
SELECT caredata.link_create_model('peek', caredata.link_default_spec() || '{"comparisons": [
  {"name": "peek", "expression": "public.peek(l.record_key)", "levels": ["a", "b"]}]}');
CREATE FUNCTION public.peek_plain(text) RETURNS integer LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN 1; END $$;
SELECT caredata.link_create_model('peek', caredata.link_default_spec() || '{"comparisons": [
  {"name": "peek", "expression": "public.peek_plain(l.record_key)", "levels": ["a", "b"]}]}');
SELECT caredata.link_create_model('peek', caredata.link_default_spec() || '{"comparisons": [
  {"name": "peek", "expression": "caredata.compare_exact(l.record_key, r.record_key)", "levels": ["a", "b", "c"]}], "steps": []}') AS allowed;
-- an undeclared field is not a column
SELECT caredata.link_create_model('peek', caredata.link_default_spec() || '{"comparisons": [
  {"name": "x", "expression": "caredata.compare_exact(l.middle_name, r.middle_name)", "levels": ["a", "b", "c"]}]}');
SELECT caredata.link_create_model('peek', caredata.link_default_spec() || '{"blocking": [["middle_name"]]}');
-- nor through a call nested in an allowed one, a pg_catalog function that
-- runs a query or reads a setting, a domain whose CHECK runs another
-- schema's function, or a deterministic step with a subquery or such a call
SELECT caredata.link_create_model('peek', caredata.link_default_spec() || '{"comparisons": [
  {"name": "peek", "expression": "caredata.compare_exact(public.peek(l.record_key)::text, r.record_key)", "levels": ["a", "b", "c"]}], "steps": []}');
SELECT caredata.link_create_model('peek', caredata.link_default_spec() || '{"comparisons": [
  {"name": "peek", "expression": "length(query_to_xml(''SELECT * FROM fld.clinic'', true, true, '''')::text) % 2", "levels": ["a", "b"]}], "steps": []}');
SELECT caredata.link_create_model('peek', caredata.link_default_spec() || '{"comparisons": [
  {"name": "peek", "expression": "length(table_to_xml(''fld.clinic''::regclass, true, true, '''')::text) % 2", "levels": ["a", "b"]}], "steps": []}');
SELECT caredata.link_create_model('peek', caredata.link_default_spec() || '{"comparisons": [
  {"name": "peek", "expression": "length(current_setting(''data_directory'')) % 2", "levels": ["a", "b"]}], "steps": []}');
CREATE FUNCTION public.peek_check(text) RETURNS boolean LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN true; END $$;
CREATE DOMAIN public.peek_dom AS text CHECK (public.peek_check(VALUE));
SELECT caredata.link_create_model('peek', caredata.link_default_spec() || '{"comparisons": [
  {"name": "peek", "expression": "length(l.record_key::public.peek_dom) % 2", "levels": ["a", "b"]}], "steps": []}');
SELECT caredata.link_create_model('peek', caredata.link_default_spec() || '{"steps": ["nhs = 3 AND EXISTS (SELECT 1 FROM fld.clinic)"]}');
SELECT caredata.link_create_model('peek', caredata.link_default_spec() || '{"steps": ["nhs = 3 AND public.peek_plain(''x'') = 1"]}');
SELECT caredata.link_create_model('peek', caredata.link_default_spec() || '{"steps": ["nhs = 3 AND length(current_setting(''data_directory'')) > 0"]}');
-- a spec written directly into caredata.link_model is checked again where
-- a run, an explanation or a lookup builds SQL from it
BEGIN;
UPDATE caredata.link_model SET spec = jsonb_set(spec, '{comparisons,0,expression}',
  '"caredata.compare_nhs_number(l.nhs_digits, r.nhs_digits) + (SELECT count(*) FROM fld.clinic)::integer * 0"')
 WHERE model = 'fld' AND version = 2;
SAVEPOINT s;
SELECT caredata.link_explain('clinic', 'C-001', 'registry', '10', 'fld');
ROLLBACK TO s;
SELECT * FROM caredata.link_lookup('9434765919', '1950-02-01', 'F', 'LS1 4AP', 'fld');
ROLLBACK TO s;
SELECT run_id FROM caredata.link_run('fld', 2, train => false);
ROLLBACK TO s;
UPDATE caredata.link_model SET spec = spec || '{"steps": ["dob = 5 AND EXISTS (SELECT 1 FROM fld.clinic)"]}'
 WHERE model = 'fld' AND version = 1;
SELECT run_id FROM caredata.link_run('fld', 1, method => 'deterministic');
ROLLBACK;
DROP DOMAIN public.peek_dom;
DROP FUNCTION public.peek_check(text);
DROP FUNCTION public.peek(text);
DROP FUNCTION public.peek_plain(text);
-- the linker registers fields (their statistics are made as the extension
-- owner); an analyst can neither register nor read them
GRANT USAGE ON SCHEMA fld TO caredata_linker, caredata_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA fld TO caredata_linker, caredata_analyst;
SET ROLE caredata_linker;
SELECT caredata.link_add_source('registry', 'fld.registry', 'rid', dob => 'dob', postcode => 'postcode',
         fields => '{"given_name": {"column": "given", "kind": "name"}, "family_name": {"column": "family", "kind": "name"},
                     "address": {"column": "line1", "kind": "address"}, "nickname": {"column": "given", "kind": "text"}}') IS NOT NULL AS registered;
SELECT caredata.link_standardise(ARRAY['clinic', 'registry']) AS records;
RESET ROLE;
SELECT count(*) AS nickname_statistics FROM pg_statistic_ext WHERE stxrelid = 'caredata.link_record_p_default'::regclass AND pg_get_statisticsobjdef_expressions(oid)::text LIKE '%nickname%';
SET ROLE caredata_analyst;
SELECT caredata.link_add_source('registry', 'fld.registry', 'rid', fields => '{"x": "given"}');
SELECT fields FROM caredata.link_record LIMIT 1;
SELECT * FROM caredata._link_fields('default');
RESET ROLE;

-- leave the database's linkage as the other suites expect it
DELETE FROM caredata.link_source WHERE source IN ('clinic', 'registry');
DROP SCHEMA fld CASCADE;
