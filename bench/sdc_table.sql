-- bench/sdc_table.sql: secondary suppression of a 100 x 100 table with
-- margins (goal: under 1 s), against the simple rule (suppress the smallest
-- other cell in each row and each column that holds a primary suppression),
-- in the same run; both results audited for disclosure.
\set ON_ERROR_STOP 1
SET jit = off;
SET client_min_messages = notice;

-- counts from 8 to 60, one in fifty of them small (1 to 7; seed: the hash)
DROP TABLE IF EXISTS bench.sdc_cells;
CREATE TABLE bench.sdc_cells AS
SELECT 'r' || lpad(i::text, 3, '0') AS r, 'c' || lpad(j::text, 3, '0') AS k,
       CASE WHEN abs(hashint4(i * 1000 + j)) % 50 = 0 THEN 1 + abs(hashint4(i * 1000 + j + 7)) % 7
            ELSE 8 + abs(hashint4(i * 1000 + j + 13)) % 53 END::bigint AS n
  FROM generate_series(1, 100) i, generate_series(1, 100) j;

-- time: the median of three protections of the whole table
SELECT bench.time_ms($$SELECT count(*) FROM caredata.sdc_protect('SELECT r, k, n FROM bench.sdc_cells')$$, 3) AS protect_ms \gset
CREATE TEMP TABLE protected AS SELECT * FROM caredata.sdc_protect('SELECT r, k, n FROM bench.sdc_cells');

-- the simple rule, on the same table: primary cells, then in each of their
-- rows and columns (margins included) the smallest published other cell
CREATE TEMP TABLE simple AS
WITH t AS (SELECT * FROM caredata._sdc_table('SELECT r, k, n FROM bench.sdc_cells')),
     p AS (SELECT *, caredata.sdc_apply(n) IS NULL AS prim FROM t),
     row_pick AS (SELECT DISTINCT ON (c.row_index) c.row_index, c.col_index FROM p c
                   WHERE NOT c.prim AND c.row_index IN (SELECT row_index FROM p WHERE prim)
                   ORDER BY c.row_index, c.n, c.col_index),
     col_pick AS (SELECT DISTINCT ON (c.col_index) c.row_index, c.col_index FROM p c
                   WHERE NOT c.prim AND c.col_index IN (SELECT col_index FROM p WHERE prim)
                   ORDER BY c.col_index, c.n, c.row_index)
SELECT p.row_key, p.col_key, p.n, p.prim,
       p.prim OR (p.row_index, p.col_index) IN (SELECT * FROM row_pick UNION SELECT * FROM col_pick) AS suppressed
  FROM p;

SELECT (SELECT count(*) FROM protected WHERE suppression = 'primary') AS primary_cells,
       (SELECT count(*) FROM protected WHERE suppression = 'secondary') AS secondary_caredata,
       (SELECT count(*) FROM simple WHERE suppressed AND NOT prim) AS secondary_simple_rule,
       (SELECT count(*) FROM caredata.sdc_audit($$SELECT row_key, col_key, n, suppression <> 'published' FROM protected$$) WHERE disclosed) AS disclosed_caredata,
       (SELECT count(*) FROM caredata.sdc_audit($$SELECT row_key, col_key, n, suppressed FROM simple$$) WHERE disclosed) AS disclosed_simple_rule,
       (SELECT sum(n) FROM protected WHERE suppression = 'secondary') AS secondary_total_caredata,
       (SELECT sum(n) FROM simple WHERE suppressed AND NOT prim) AS secondary_total_simple_rule,
       round(:protect_ms::numeric, 1) AS protect_ms;
SELECT bench.record('sdc_table', 'sdc_protect 100 x 100 with margins', :protect_ms, NULL, NULL);
