-- bench/nhs_number_parse.sql: parse 10M NHS numbers from text.
-- Baselines measured in the same run: a plain count(*) scan and text::bigint
-- (the cheapest conversion of the same 10 characters PostgreSQL has).
-- Serial plans, no JIT, so the ratios are per-row costs.
\set ON_ERROR_STOP 1
SET max_parallel_workers_per_gather = 0;
SET jit = off;

-- 10M valid numbers (bench.nhs_numbers, seed 20261124), digits only,
-- plus the same numbers grouped '943 476 5919' as sources often send them
DROP TABLE IF EXISTS bench.nhs_text;
CREATE UNLOGGED TABLE bench.nhs_text AS
SELECT nhs::text AS s FROM bench.nhs_numbers(10000000, 20261124);
ALTER TABLE bench.nhs_text ADD COLUMN g text;
UPDATE bench.nhs_text SET g = substr(s, 1, 3) || ' ' || substr(s, 4, 3) || ' ' || substr(s, 7, 4);
VACUUM ANALYZE bench.nhs_text;
SELECT count(*) AS rows, count(*) FILTER (WHERE NOT caredata.nhs_number_is_valid(s)) AS invalid
FROM bench.nhs_text;

-- warm the cache, then measure
SELECT count(*) FROM bench.nhs_text;
\set QUIET 1
SELECT bench.report('nhs_number_parse', 'count(*) plain scan', 'SELECT count(*) FROM bench.nhs_text', NULL, NULL) AS scan_ms \gset
SELECT bench.report('nhs_number_parse', 'text::bigint', 'SELECT count(s::bigint) FROM bench.nhs_text', 'plain scan', :scan_ms) AS bigint_ms \gset
SELECT bench.report('nhs_number_parse', 'text::nhs_number', 'SELECT count(s::caredata.nhs_number) FROM bench.nhs_text', 'text::bigint', :bigint_ms) AS _ \gset
SELECT bench.report('nhs_number_parse', 'try_nhs_number(text)', 'SELECT count(caredata.try_nhs_number(s)) FROM bench.nhs_text', 'text::bigint', :bigint_ms) AS _ \gset
SELECT bench.report('nhs_number_parse', '''943 476 5919''::nhs_number', 'SELECT count(g::caredata.nhs_number) FROM bench.nhs_text', 'text::bigint', :bigint_ms) AS _ \gset
SELECT bench.report('nhs_number_parse', 'nhs_number_is_valid(text)', 'SELECT count(*) FILTER (WHERE caredata.nhs_number_is_valid(s)) FROM bench.nhs_text', 'text::bigint', :bigint_ms) AS _ \gset
DROP TABLE bench.nhs_text;
