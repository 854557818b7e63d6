-- sql/key_file.sql: the master secret's file is checked before any use, and
-- a reload (SIGHUP) takes a new file (sql/include/reload.psql waits for it).  The throw-away cluster
-- (scripts/cluster.sh) keeps good and bad key files in keys/ beside its data
-- directory: master.key, other.key, short.key (16 bytes), group.key (0640),
-- world.key (0604).
CREATE EXTENSION caredata;
SET search_path = caredata, public;
\i sql/include/refusal.psql
SELECT create_domain('linkage', 'internal linkage') IS NOT NULL AS created;
SELECT pseudonymise(9434765919, 'linkage') AS with_master \gset
-- the domain records the fingerprint of the secret it was created under
SELECT key_fingerprint() ~ '^[0-9a-f]{32}$' AS fingerprint_is_hex,
       key_fingerprint() = (SELECT key_fingerprint FROM domain WHERE name = 'linkage') AS domain_records_it;
SELECT key_fingerprint() AS master_fingerprint \gset
SELECT regexp_replace(setting, 'master\.key$', '') AS keydir
FROM pg_settings WHERE name = 'caredata.key_file' \gset
SELECT context, (SELECT setting IS NOT NULL) AS shown_to_superuser
FROM pg_settings WHERE name = 'caredata.key_file';

-- each bad file in turn: a clear error, never the path or a key byte
\set probe 'caredata.pseudonymise(9434765919::bigint, ''linkage'')'
\set keyfile :keydir'short.key'
ALTER SYSTEM SET caredata.key_file = :'keyfile';
\i sql/include/reload.psql
SELECT key_file_status(), r.state, r.message, r.detail, r.hint, position(:'keydir' IN concat(r.message, r.detail, r.hint)) > 0 AS shows_path
FROM pg_temp.refusal(:'probe') r;
\set keyfile :keydir'group.key'
ALTER SYSTEM SET caredata.key_file = :'keyfile';
\i sql/include/reload.psql
SELECT key_file_status(), r.state, r.message, r.detail, r.hint FROM pg_temp.refusal(:'probe') r;
\set keyfile :keydir'world.key'
ALTER SYSTEM SET caredata.key_file = :'keyfile';
\i sql/include/reload.psql
SELECT key_file_status(), r.state, r.message, r.detail, r.hint FROM pg_temp.refusal(:'probe') r;
\set keyfile :keydir'missing.key'
ALTER SYSTEM SET caredata.key_file = :'keyfile';
\i sql/include/reload.psql
SELECT key_file_status(), r.state, r.message, r.detail, r.hint FROM pg_temp.refusal(:'probe') r;
\set keyfile :keydir
ALTER SYSTEM SET caredata.key_file = :'keyfile';
\i sql/include/reload.psql
SELECT key_file_status(), r.state, r.message, r.detail FROM pg_temp.refusal(:'probe') r;
ALTER SYSTEM SET caredata.key_file = '';
\set keyfile ''
\i sql/include/reload.psql
SELECT key_file_status(), r.state, r.message, r.detail, r.hint FROM pg_temp.refusal(:'probe') r;

-- A domain's recorded key fingerprint (an HMAC of a fixed label under the
-- secret: no key byte).  Under another secret the domain
-- refuses instead of giving other tokens (on a cluster: a node with the
-- wrong key file); a domain created under that secret gives other tokens.
\set keyfile :keydir'other.key'
ALTER SYSTEM SET caredata.key_file = :'keyfile';
\i sql/include/reload.psql
SELECT key_file_status(), key_fingerprint() <> :'master_fingerprint' AS fingerprint_differs;
SELECT r.state, r.message, r.detail, r.hint, position(:'master_fingerprint' IN concat(r.message, r.detail, r.hint)) > 0 AS shows_fingerprint
FROM pg_temp.refusal(:'probe') r;
SELECT create_domain('linkage_other', 'created under the other secret') IS NOT NULL AS created;
SELECT pseudonymise(9434765919, 'linkage_other') <> :'with_master' AS other_secret_other_tokens;
ALTER SYSTEM RESET caredata.key_file;
\set keyfile :keydir'master.key'
\i sql/include/reload.psql
SELECT key_file_status(), pseudonymise(9434765919, 'linkage') = :'with_master' AS same_secret_same_tokens;
SELECT r.state, r.message FROM pg_temp.refusal('caredata.pseudonymise(9434765919::bigint, ''linkage_other'')') r;
-- no role but caredata_admin's members reads the fingerprint
SELECT has_function_privilege('public', 'caredata.key_fingerprint()', 'EXECUTE') AS public_may_read_fingerprint;

-- caredata is loaded at server start (shared_preload_libraries), so the key
-- setting is superuser-only from a role's very first connection
SELECT setting ~ 'caredata' AS preloaded FROM pg_settings WHERE name = 'shared_preload_libraries';
CREATE ROLE regress_key_nobody LOGIN;
\c - regress_key_nobody
SHOW caredata.key_file;
SELECT current_setting('caredata.key_file');
SELECT count(*) AS visible_in_pg_settings FROM pg_settings WHERE name = 'caredata.key_file';
\c - postgres
DROP ROLE regress_key_nobody;

DROP EXTENSION caredata;
