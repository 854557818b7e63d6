-- sql/pseudonym_scheme.sql: a key version's scheme (issue 28).  Versions made
-- by create_domain() and rotate_domain() are aes256-cmac (AES-256-CMAC, one
-- AES call per NHS number); versions made before 0.2.0 are hmac-sha256 and
-- keep giving the tokens they gave.  Known answers under a fixed master
-- secret, computed outside caredata (see below), so the test is not circular.
CREATE EXTENSION caredata;
SET search_path = caredata, public;
\i sql/include/refusal.psql
-- a statement's refusal (refusal() takes expressions)
CREATE FUNCTION pg_temp.statement_refusal(stmt text, OUT state text, OUT message text)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  state := 'accepted';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
END $$;

-- new domains and new versions are aes256-cmac
SELECT create_domain('linkage', 'internal linkage') IS NOT NULL AS created;
SELECT rotate_domain('linkage') AS rotated_to;
SELECT k.version, k.scheme FROM domain_key k JOIN domain d ON d.id = k.domain_id
WHERE d.name = 'linkage' ORDER BY 1;
SELECT column_default FROM information_schema.columns
WHERE table_schema = 'caredata' AND table_name = 'domain_key' AND column_name = 'scheme';

-- Known answers.  The master secret is the 68 bytes
--   'caredata known-answer test: a fixed master secret, never a real one\n'
-- (written below by COPY, which adds the newline).  Each expected token
-- was computed with the openssl command line, independently of caredata:
--   M=$(printf 'caredata known-answer test: a fixed master secret, never a real one\n' | xxd -p -c 1000)
--   K=$(openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:$M \
--        -kdfopt salt:caredata -kdfopt 'info:caredata domain key v2|kat|1' HKDF | tr -d :)
--   printf 'N\x00\x00\x00\x02\x32\x5b\x1a\x5f' |   # 'N' + 9434765919 big-endian
--     openssl mac -cipher AES-256-CBC -macopt hexkey:$K CMAC | xxd -r -p | base64 | tr '+/' '-_' | tr -d =
-- (AES-256-CMAC; for hmac-sha256 versions: info 'caredata domain key v1|kat|1',
-- openssl mac -digest SHA256 -macopt hexkey:$K HMAC, first 16 bytes), and
-- again with Python's cryptography package (HKDF, CMAC, HMAC): the same.
SELECT regexp_replace(setting, 'master\.key$', '') AS keydir
FROM pg_settings WHERE name = 'caredata.key_file' \gset
\set keyfile :keydir'kat.key'
COPY (SELECT 'caredata known-answer test: a fixed master secret, never a real one') TO :'keyfile';
-- COPY makes it 0644, which the key store refuses
\setenv CAREDATA_KAT_KEY :keyfile
\! chmod 0600 "$CAREDATA_KAT_KEY"
ALTER SYSTEM SET caredata.key_file = :'keyfile';
\i sql/include/reload.psql
SELECT key_file_status();
SELECT create_domain('kat', 'known answers') AS kat_id \gset
SELECT rotate_domain('kat') AS rotated_to;

-- version 1 is aes256-cmac here; the tokens of every message length: one
-- partial block (an NHS number, a bigint: 9 bytes; text of 0 and 14
-- bytes), one full block (15 bytes of text + the tag), several blocks
CREATE TABLE kat (what text, got text, expected text);
INSERT INTO kat VALUES
  ('nhs_number', pseudonymise('943 476 5919'::nhs_number, 'kat', 1)::text, 'wRfH00ceIOPslY8fjQeOrQ'),
  ('nhs as bigint', pseudonymise(9434765919, 'kat', 1)::text, 'wRfH00ceIOPslY8fjQeOrQ'),
  ('nhs as text', pseudonymise('9434765919', 'kat', 1)::text, 'wRfH00ceIOPslY8fjQeOrQ'),
  ('bigint identifier', pseudonymise_identifier(9434765919, 'kat', 1)::text, '9p9r4D7zsX-OreIMkEWwfA'),
  ('bigint -1', pseudonymise_identifier(-1, 'kat', 1)::text, '2wkVXVNeR9nVfCUAGiqMhg'),
  ('empty text', pseudonymise_identifier('', 'kat', 1)::text, 'XvNWvfomHEKlOeqQ_qOWuA'),
  ('text, 15 bytes', pseudonymise_identifier('abcdefghijklmno', 'kat', 1)::text, '0MHCoZwjKDhqzwTMR7ShFA'),
  ('text, 16 bytes', pseudonymise_identifier('abcdefghijklmnop', 'kat', 1)::text, 'bHFw3MYbus7l2Y52ny6N6Q'),
  ('text, 38 bytes', pseudonymise_identifier('Jane Doe, 1 High Street, Leeds LS1 1AA', 'kat', 1)::text, 'ZGPPkW35mV5kgFbJ3EEzwA'),
  ('version 2, nhs', pseudonymise(9434765919, 'kat')::text, 'yaJ6l1t2l1m1Dyo5Lkn5pw'),
  ('version 2, text', pseudonymise_identifier('abcdefghijklmnop', 'kat', 2)::text, 'GauqKPQV3oc6Pn4J-IfKuA');
-- the same through OpenSSL's EVP interface instead of the AES instructions
SET caredata.aes_instructions = off;
INSERT INTO kat VALUES
  ('evp: nhs_number', pseudonymise('943 476 5919'::nhs_number, 'kat', 1)::text, 'wRfH00ceIOPslY8fjQeOrQ'),
  ('evp: bigint -1', pseudonymise_identifier(-1, 'kat', 1)::text, '2wkVXVNeR9nVfCUAGiqMhg'),
  ('evp: empty text', pseudonymise_identifier('', 'kat', 1)::text, 'XvNWvfomHEKlOeqQ_qOWuA'),
  ('evp: text, 16 bytes', pseudonymise_identifier('abcdefghijklmnop', 'kat', 1)::text, 'bHFw3MYbus7l2Y52ny6N6Q'),
  ('evp: text, 38 bytes', pseudonymise_identifier('Jane Doe, 1 High Street, Leeds LS1 1AA', 'kat', 1)::text, 'ZGPPkW35mV5kgFbJ3EEzwA'),
  ('evp: version 2, nhs', pseudonymise(9434765919, 'kat')::text, 'yaJ6l1t2l1m1Dyo5Lkn5pw');
RESET caredata.aes_instructions;
SELECT what, got = format('%s.%s.%s', :kat_id, CASE WHEN what LIKE '%version 2%' THEN 2 ELSE 1 END, expected) AS known_answer
FROM kat;

-- A version made before 0.2.0 (the update sets every existing version to
-- hmac-sha256; here one is set so by hand): HMAC-SHA256 under the v1 key,
-- the token 0.1.0 gave, while the domain's current version is AES
UPDATE domain_key SET scheme = 'hmac-sha256' WHERE domain_id = :kat_id AND version = 1;
SELECT pseudonymise(9434765919, 'kat', 1)::text = :'kat_id' || '.1.oDWGdSdoHjQc0Fmyp1nEBA' AS hmac_known_answer,
       pseudonymise_identifier('x', 'kat', 1)::text = :'kat_id' || '.1.eqFssbFp74aOjax7Ia5mSA' AS hmac_text_known_answer,
       pseudonymise(9434765919, 'kat')::text = :'kat_id' || '.2.yaJ6l1t2l1m1Dyo5Lkn5pw' AS current_is_aes;
-- rotating such a domain: the new version is AES, the old one still
-- reproduces its tokens until it is retired
SELECT rotate_domain('kat') AS rotated_to;
SELECT k.version, k.scheme FROM domain_key k WHERE k.domain_id = :kat_id ORDER BY 1;
SELECT pseudonym_key_version(pseudonymise(9434765919, 'kat')) AS current_version,
       pseudonymise(9434765919, 'kat', 1)::text = :'kat_id' || '.1.oDWGdSdoHjQc0Fmyp1nEBA' AS hmac_version_reproducible,
       pseudonymise(9434765919, 'kat', 2)::text = :'kat_id' || '.2.yaJ6l1t2l1m1Dyo5Lkn5pw' AS aes_version_reproducible,
       pseudonymise(9434765919, 'kat') <> pseudonymise(9434765919, 'kat', 2) AS new_version_new_token;
SELECT retire_domain('kat', 1);
SELECT r.state, r.message FROM pg_temp.refusal('caredata.pseudonymise(9434765919, ''kat'', 1)') r;

-- back to the cluster's secret
ALTER SYSTEM RESET caredata.key_file;
\set keyfile :keydir'master.key'
\i sql/include/reload.psql
SELECT key_file_status();
\! rm -f "$CAREDATA_KAT_KEY"

-- 10,000 numbers: AES instructions and EVP agree row by row, no collision,
-- domains and versions unrelated, and the text form is the same 22
-- base64url characters as before
CREATE TABLE people AS
SELECT n, pseudonymise(n, 'linkage') AS p2, pseudonymise(n, 'linkage', 1) AS p1
FROM (SELECT try_nhs_number(s) AS n FROM (
        SELECT '999' || lpad(i::text, 6, '0') || d AS s
        FROM generate_series(0, 11000) i, generate_series(0, 9) d) x) y
WHERE n IS NOT NULL;
SET caredata.aes_instructions = off;
SELECT count(*) AS people,
       count(*) FILTER (WHERE pseudonymise(n, 'linkage') <> p2) AS evp_differs,
       count(*) FILTER (WHERE pseudonymise(n::bigint, 'linkage', 1) <> p1) AS evp_v1_differs
FROM people;
RESET caredata.aes_instructions;
SELECT count(DISTINCT p2) AS distinct_v2, count(DISTINCT p1) AS distinct_v1,
       count(*) FILTER (WHERE substr(p1::text, 5) = substr(p2::text, 5)) AS versions_share,
       bool_and(p2::text ~ '^[0-9]+\.2\.[A-Za-z0-9_-]{22}$') AS text_form,
       bool_and(p2::text::pseudonym = p2) AS round_trip
FROM people;

-- the domain named by a column, changing row by row at one call site: the
-- call site's cache compares the name on every row then (a constant's is
-- compared once), and follows it
SELECT create_domain('research_a', 'study A extract') IS NOT NULL AS created;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE pseudonymise(n, d.name) <> CASE d.name WHEN 'linkage' THEN p2 ELSE pseudonymise(n, 'research_a') END) AS differs,
       count(DISTINCT pseudonym_domain_id(pseudonymise(n, d.name))) AS domains
FROM (SELECT n, p2, row_number() OVER (ORDER BY n) AS i FROM people) x
JOIN (VALUES (0, 'linkage'), (1, 'research_a')) d(parity, name) ON x.i % 2 = d.parity;

-- who may change a scheme or the AES setting: no one but a superuser
GRANT caredata_admin TO CURRENT_USER;
SET ROLE caredata_admin;
SELECT * FROM pg_temp.statement_refusal('UPDATE caredata.domain_key SET scheme = ''hmac-sha256''');
SELECT r.state, r.message FROM pg_temp.refusal('set_config(''caredata.aes_instructions'', ''off'', false)') r;
RESET ROLE;
REVOKE caredata_admin FROM CURRENT_USER;
-- and a scheme is one of the two
SELECT * FROM pg_temp.statement_refusal('UPDATE caredata.domain_key SET scheme = ''aes128-ecb''');

DROP TABLE kat, people;
DROP EXTENSION caredata;
