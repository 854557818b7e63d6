-- bench/pseudonymise.sql: pseudonymise 10M NHS numbers.
-- Baselines measured in the same run: a plain count(*) scan of the same
-- table, and pgcrypto's hmac(n::text::bytea, key, 'sha256') (keyed HMAC-SHA256 with
-- the key passed in SQL, the usual hand-rolled alternative).
-- Serial plans, no JIT: the ratios are per-row costs.
\set ON_ERROR_STOP 1
SET max_parallel_workers_per_gather = 0;
SET jit = off;

DROP TABLE IF EXISTS bench.nhs;
CREATE UNLOGGED TABLE bench.nhs AS
SELECT caredata.nhs_number(nhs) AS n FROM bench.nhs_numbers(10000000, 20261124);
VACUUM ANALYZE bench.nhs;
SELECT count(*) AS rows FROM bench.nhs;

SELECT caredata.create_domain('bench_' || to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS'), 'benchmark') AS id \gset
SELECT name AS domain FROM caredata.domain WHERE id = :id \gset
-- a 32-byte key for the pgcrypto baseline (random; it is only a baseline)
SELECT gen_random_bytes(32) AS bench_key \gset

SELECT count(*) FROM bench.nhs;
\set QUIET 1
SELECT bench.report('pseudonymise', 'count(*) plain scan', 'SELECT count(*) FROM bench.nhs', NULL, NULL) AS scan_ms \gset
SELECT bench.report('pseudonymise', 'pgcrypto hmac(n::text, key)',
  format('SELECT count(hmac(n::text::bytea, %L::bytea, ''sha256'')) FROM bench.nhs', :'bench_key'),
  'plain scan', :scan_ms) AS hmac_ms \gset
SELECT bench.report('pseudonymise', 'pseudonymise(nhs_number)',
  format('SELECT count(caredata.pseudonymise(n, %L)) FROM bench.nhs', :'domain'),
  'pgcrypto hmac', :hmac_ms) AS ps_ms \gset
SELECT bench.report('pseudonymise', 'pseudonymise(nhs_number) vs scan',
  format('SELECT count(caredata.pseudonymise(n, %L)) FROM bench.nhs', :'domain'),
  'plain scan', :scan_ms) AS _ \gset
-- the text path parses the text as an NHS number (as nhs_number_in does)
SELECT bench.report('pseudonymise', 'pseudonymise(n::text)',
  format('SELECT count(caredata.pseudonymise(n::text, %L)) FROM bench.nhs', :'domain'),
  'pgcrypto hmac', :hmac_ms) AS _ \gset
SELECT bench.report('pseudonymise', 'pseudonymise(n::bigint)',
  format('SELECT count(caredata.pseudonymise(n::bigint, %L)) FROM bench.nhs', :'domain'),
  'pgcrypto hmac', :hmac_ms) AS _ \gset
-- the text's bytes, unparsed
SELECT bench.report('pseudonymise', 'pseudonymise_identifier(n::text)',
  format('SELECT count(caredata.pseudonymise_identifier(n::text, %L)) FROM bench.nhs', :'domain'),
  'pgcrypto hmac', :hmac_ms) AS _ \gset
\set QUIET 0
SELECT round((:hmac_ms / :ps_ms)::numeric, 2) AS throughput_vs_pgcrypto;
DROP TABLE bench.nhs;
SELECT caredata.retire_domain(:'domain');
