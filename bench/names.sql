-- bench/names.sql: the name and address standardisers and comparators
-- (src/linkage/names.c), 1M calls each.  Baseline measured in the same run:
-- lower() on the same raw names (the cheapest standardisation PostgreSQL
-- has).  Serial plans, no JIT, so the ratios are per-row costs; medians of 3.
\set ON_ERROR_STOP 1
SET max_parallel_workers_per_gather = 0;
SET jit = off;

-- 1M raw names ("Dr. Zoë O'Brien-Smith"), each with a second spelling:
-- a typo, a swapped pair of letters or a different name, as records carry them
DROP TABLE IF EXISTS bench.names;
CREATE UNLOGGED TABLE bench.names AS
WITH g AS (SELECT ARRAY['Mr','Mrs','Dr','Ms','','','',''] AS t,
                  ARRAY['John','Mary','Zoë','Catherine','Kathryn','Seán','Łukasz','Steven','Stephen','Ann','Mohammed','Olivia'] AS f,
                  ARRAY['Smith','O''Brien','Jones','Smith-Jones','Ødegård','Müller','Nguyễn','Taylor','Williams','Brown','Patel','Kowalczyk'] AS s)
SELECT i, concat_ws(' ', t[1 + i % 8], f[1 + (i / 8) % 12], s[1 + (i / 96) % 12]) AS raw,
       concat_ws(' ', f[1 + (i / 8 + i % 3) % 12], s[1 + (i / 96 + (i % 5) / 4) % 12]) AS raw2,
       concat_ws(', ', 'Flat ' || (i % 9 + 1), (i % 200 + 1) || ' ' || s[1 + i % 12] || ' Road', 'SW1A ' || (i % 9) || 'AA') AS addr
FROM g, generate_series(1, 1000000) i;
ALTER TABLE bench.names ADD COLUMN a text, ADD COLUMN b text;
UPDATE bench.names SET a = caredata.standardise_name(raw), b = caredata.standardise_name(raw2);
VACUUM ANALYZE bench.names;
SELECT count(*) AS rows, count(DISTINCT a) AS names, count(*) FILTER (WHERE a = b) AS equal_pairs FROM bench.names;

-- warm the cache, load fuzzystrmatch, then measure
SELECT count(*), count(caredata.name_phonetic('x')) FROM bench.names;
\set QUIET 1
SELECT bench.report('names', 'lower(raw)', 'SELECT count(lower(raw)) FROM bench.names', NULL, NULL) AS lower_ms \gset
SELECT bench.report('names', 'standardise_name(raw)', 'SELECT count(caredata.standardise_name(raw)) FROM bench.names', 'lower', :lower_ms) AS _ \gset
SELECT bench.report('names', 'name_phonetic(raw)', 'SELECT count(caredata.name_phonetic(raw)) FROM bench.names', 'lower', :lower_ms) AS _ \gset
SELECT bench.report('names', 'compare_jaro_winkler(a, b)', 'SELECT sum(caredata.compare_jaro_winkler(a, b)) FROM bench.names', 'lower', :lower_ms) AS _ \gset
SELECT bench.report('names', 'compare_name(a, b)', 'SELECT sum(caredata.compare_name(a, b)) FROM bench.names', 'lower', :lower_ms) AS _ \gset
SELECT bench.report('names', 'compare_token_overlap(a, b)', 'SELECT sum(caredata.compare_token_overlap(a, b)) FROM bench.names', 'lower', :lower_ms) AS _ \gset
SELECT bench.report('names', 'standardise_address(addr)', 'SELECT count(caredata.standardise_address(addr)) FROM bench.names', 'lower', :lower_ms) AS _ \gset
SELECT bench.report('names', 'address_house_number(addr)', 'SELECT count(caredata.address_house_number(addr)) FROM bench.names', 'lower', :lower_ms) AS _ \gset
\set QUIET 0
-- how often compare_name needed the phonetic code (levels 1 and 2)
SELECT caredata.compare_name(a, b) AS level, count(*) FROM bench.names GROUP BY 1 ORDER BY 1;
DROP TABLE bench.names;
