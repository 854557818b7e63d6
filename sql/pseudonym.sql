-- sql/pseudonym.sql: domains, keyed pseudonyms, rotation, retirement
CREATE EXTENSION caredata;
SET search_path = caredata, public;
\i sql/include/refusal.psql

SELECT key_file_status();
SELECT create_domain('linkage', 'internal linkage') AS linkage_id,
       create_domain('research_a', 'study A extract') AS research_id;
SELECT name, purpose, current_version, retired_at IS NULL AS active FROM domain ORDER BY id;
SELECT domain_id, version, retired_at IS NULL AS active FROM domain_key ORDER BY 1, 2;

-- deterministic within a domain and version
SELECT pseudonymise('943 476 5919'::nhs_number, 'linkage') = pseudonymise('9434765919'::nhs_number, 'linkage') AS same,
       length(pseudonymise('943 476 5919'::nhs_number, 'linkage')::text) <= 40 AS compact,
       pseudonym_domain(pseudonymise('943 476 5919'::nhs_number, 'linkage')) AS domain,
       pseudonym_key_version(pseudonymise('943 476 5919'::nhs_number, 'linkage')) AS version;
-- unlinkable across domains
SELECT pseudonymise('943 476 5919'::nhs_number, 'linkage') <> pseudonymise('943 476 5919'::nhs_number, 'research_a') AS domains_differ;

-- one patient, one pseudonym: pseudonymise() is the NHS-number path whatever
-- the form or type the number comes in (a quoted literal resolves to the
-- text variant, an unadorned 10-digit literal to the bigint one)
SELECT pseudonymise('943 476 5919'::nhs_number, 'linkage') AS p_nhs \gset
SELECT pseudonymise('943 476 5919', 'linkage') = :'p_nhs' AS spaced_literal,
       pseudonymise('9434765919', 'linkage') = :'p_nhs' AS digits_literal,
       pseudonymise('943-476-5919', 'linkage') = :'p_nhs' AS hyphens_literal,
       pseudonymise(' 943 476 5919 '::text, 'linkage') = :'p_nhs' AS text_typed,
       pseudonymise('943 476 5919'::varchar, 'linkage') = :'p_nhs' AS varchar_typed,
       pseudonymise(9434765919, 'linkage') = :'p_nhs' AS bigint_literal,
       pseudonymise('9434765919', 'linkage', 1) = pseudonymise('943 476 5919'::nhs_number, 'linkage', 1) AS with_version,
       pseudonymise(9434765919, 'linkage', 1) = pseudonymise('943 476 5919'::nhs_number, 'linkage', 1) AS bigint_with_version;
-- an invalid NHS number is refused on every variant, and no message shows it
\x on
SELECT e AS expression, r.state, r.message, r.detail, r.echoes
FROM (VALUES ('caredata.pseudonymise(''943 476 5918'', ''linkage'')', '943 476 5918'),
             ('caredata.pseudonymise(''9434765918'', ''linkage'')', '9434765918'),
             ('caredata.pseudonymise(''9434765918'', ''linkage'', 1)', '9434765918'),
             ('caredata.pseudonymise(9434765918, ''linkage'')', '9434765918'),
             ('caredata.pseudonymise(9434765918, ''linkage'', 1)', '9434765918'),
             ('caredata.pseudonymise(''1111111111'', ''linkage'')', '1111111111'),
             ('caredata.pseudonymise(''94347659190'', ''linkage'')', '94347659190'),
             ('caredata.pseudonymise(''Jane Doe'', ''linkage'')', 'Jane Doe'),
             ('caredata.pseudonymise('''', ''linkage'')', NULL),
             ('caredata.pseudonymise(42, ''linkage'')', '42'),
             ('caredata.pseudonymise(-9434765919, ''linkage'')', '9434765919'),
             ('caredata.pseudonymise(99999999999, ''linkage'')', '99999999999')) t(e, secret),
     LATERAL pg_temp.refusal(e, secret) r;
\x off
-- other identifiers go through pseudonymise_identifier(): exact bytes for
-- text, tagged by type, never an NHS number's token
SELECT pseudonymise_identifier('x', 'linkage') <> pseudonymise_identifier('X', 'linkage') AS text_exact,
       pseudonymise_identifier('9434765919', 'linkage') <> :'p_nhs' AS text_not_nhs_token,
       pseudonymise_identifier(9434765919, 'linkage') <> :'p_nhs' AS bigint_not_nhs_token,
       pseudonymise_identifier(9434765919, 'linkage') <> pseudonymise_identifier('9434765919', 'linkage') AS types_differ,
       pseudonymise_identifier('943 476 5918', 'linkage') IS NOT NULL AS any_text,
       pseudonymise_identifier('x', 'linkage', 1) = pseudonymise_identifier('x', 'linkage') AS with_version;

-- 10,000 numbers: no collisions, tokens in two domains share nothing
CREATE TABLE people AS
SELECT n, pseudonymise(n, 'linkage') AS p_link, pseudonymise(n, 'research_a') AS p_res
FROM (SELECT try_nhs_number(s) AS n FROM (
        SELECT '999' || lpad(i::text, 6, '0') || d AS s
        FROM generate_series(0, 11000) i, generate_series(0, 9) d) x) y
WHERE n IS NOT NULL;
SELECT count(*) AS people, count(DISTINCT p_link) AS distinct_link, count(DISTINCT p_res) AS distinct_res
FROM people;
SELECT count(*) AS shared_tokens FROM people a JOIN people b
  ON substr(a.p_link::text, 5) = substr(b.p_res::text, 5);
-- the same number as text (either layout) or bigint: the same token, row by row
SELECT count(*) FILTER (WHERE pseudonymise(n::text, 'linkage') <> p_link) AS text_differs,
       count(*) FILTER (WHERE pseudonymise(n::bigint::text, 'linkage') <> p_link) AS digits_differ,
       count(*) FILTER (WHERE pseudonymise(n::bigint, 'linkage') <> p_link) AS bigint_differs
FROM people;

-- text form round-trips; binary COPY round-trips
SELECT count(*) AS text_round_trip_failures FROM people WHERE p_link::text::pseudonym <> p_link;
CREATE TABLE copy_back (n nhs_number, p_link pseudonym, p_res pseudonym);
\copy people TO 'results/caredata_regress_pseudonym.bin' WITH (FORMAT binary)
\copy copy_back FROM 'results/caredata_regress_pseudonym.bin' WITH (FORMAT binary)
SELECT count(*) AS binary_matched FROM people JOIN copy_back USING (n, p_link, p_res);
\copy people TO 'results/caredata_regress_pseudonym.txt'
TRUNCATE copy_back;
\copy copy_back FROM 'results/caredata_regress_pseudonym.txt'
SELECT count(*) AS text_matched FROM people JOIN copy_back USING (n, p_link, p_res);

-- bad text input
\x on
SELECT e AS expression, r.state, r.message, r.detail
FROM (VALUES ('''x''::caredata.pseudonym'), ('''1.1.short''::caredata.pseudonym'),
             ('''0.1.AAAAAAAAAAAAAAAAAAAAAA''::caredata.pseudonym'),
             ('''1.0.AAAAAAAAAAAAAAAAAAAAAA''::caredata.pseudonym'),
             ('''1.1.AAAAAAAAAAAAAAAAAAAAA*''::caredata.pseudonym'),
             ('''1.1.AAAAAAAAAAAAAAAAAAAAAB''::caredata.pseudonym')) t(e),
     LATERAL pg_temp.refusal(e) r;
\x off

-- join key and index key: hash join, merge join, btree and hash indexes
CREATE INDEX people_link_btree ON people (p_link);
CREATE INDEX people_res_hash ON people USING hash (p_res);
ANALYZE people;
SELECT amname, opcname, amvalidate(opc.oid)
FROM pg_opclass opc JOIN pg_am am ON am.oid = opcmethod
WHERE opcnamespace = 'caredata'::regnamespace AND opcname = 'pseudonym_ops' ORDER BY 1;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT n FROM people WHERE p_link = '1.1.AAAAAAAAAAAAAAAAAAAAAA';
EXPLAIN (COSTS OFF) SELECT n FROM people WHERE p_res = '2.1.AAAAAAAAAAAAAAAAAAAAAA';
RESET enable_seqscan;
CREATE TABLE episodes AS SELECT p_link FROM people WHERE n::bigint % 2 = 0;
ANALYZE episodes;
SET enable_mergejoin = off; SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM people JOIN episodes USING (p_link);
SELECT count(*) FROM people JOIN episodes USING (p_link);
RESET enable_mergejoin; SET enable_hashjoin = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM people JOIN episodes USING (p_link);
SELECT count(*) FROM people JOIN episodes USING (p_link);
RESET enable_hashjoin; RESET enable_nestloop;

-- rotation: new version, new tokens; the old version stays usable on request
SELECT pseudonymise('943 476 5919'::nhs_number, 'linkage') AS before_rotation \gset
SELECT rotate_domain('linkage') AS new_version;
SELECT pseudonym_key_version(pseudonymise('943 476 5919'::nhs_number, 'linkage')) AS now_version,
       pseudonymise('943 476 5919'::nhs_number, 'linkage') <> :'before_rotation' AS new_token,
       pseudonymise('943 476 5919'::nhs_number, 'linkage', 1) = :'before_rotation' AS old_version_reproducible;
-- retirement refuses the old version, and whole-domain retirement refuses all
\x on
SELECT e AS expression, r.state, r.message, r.hint
FROM (VALUES ('caredata.retire_domain(''linkage'', 2)'),
             ('caredata.retire_domain(''linkage'', 1)'),
             ('caredata.pseudonymise(''943 476 5919''::caredata.nhs_number, ''linkage'', 1)'),
             ('caredata.retire_domain(''linkage'', 1)'),
             ('caredata.retire_domain(''research_a'')'),
             ('caredata.pseudonymise(''943 476 5919''::caredata.nhs_number, ''research_a'')'),
             ('caredata.rotate_domain(''research_a'')'),
             ('caredata.pseudonymise(''943 476 5919''::caredata.nhs_number, ''no_such_domain'')'),
             ('caredata.pseudonymise(''943 476 5919''::caredata.nhs_number, ''linkage'', 7)'),
             ('caredata.create_domain(''linkage'', ''again'')'),
             ('caredata.create_domain(''Bad Name'', ''x'')')) t(e),
     LATERAL pg_temp.refusal(e) r;
\x off
SELECT pseudonym_key_version(pseudonymise('943 476 5919'::nhs_number, 'linkage')) AS current_still_works;

DROP TABLE people, copy_back, episodes;
DROP EXTENSION caredata;
