-- sql/sdc_table.sql: tables with margins: what subtraction gives away,
-- complementary (secondary) suppression, and the audit
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
RESET client_min_messages;
SET search_path = caredata, public;

-- a 3 x 3 table with one small cell
CREATE TABLE cells AS SELECT * FROM (VALUES ('A', 'x', 20), ('A', 'y', 3), ('A', 'z', 15), ('B', 'x', 12), ('B', 'y', 25),
  ('B', 'z', 30), ('C', 'x', 9), ('C', 'y', 14), ('C', 'z', 40)) v(r, k, n);
-- with its margins (NULL keys), as GROUP BY CUBE gives it
SELECT t.* FROM _query_columns('SELECT r, k, n FROM cells', 3) q, _sdc_table(q.c1, q.c2, q.c3) t ORDER BY row_index, col_index;
-- primary suppression alone: the small cell is its row total less the rest
SELECT * FROM sdc_audit($$SELECT r, k, sum(n), sdc_apply(sum(n)::bigint) IS NULL FROM cells GROUP BY CUBE (r, k)$$);
-- the same as GROUP BY ROLLUP gives it (no column totals: unpublished), and
-- as a one-dimensional table (one column)
SELECT * FROM sdc_audit($$SELECT r, k, sum(n), sdc_apply(sum(n)::bigint) IS NULL FROM cells GROUP BY ROLLUP (r, k)$$);
SELECT * FROM sdc_audit($$SELECT r, NULL, sum(n), sdc_apply(sum(n)::bigint) IS NULL FROM cells WHERE k = 'y' GROUP BY ROLLUP (r)$$);
SELECT * FROM sdc_audit($$SELECT row_key, col_key, n, suppression <> 'published' FROM sdc_protect('SELECT r, NULL, n FROM cells WHERE k = ''y''')$$);
-- a cell GROUP BY leaves out is an empty one, published as 0
SELECT * FROM sdc_audit($$SELECT r, k, n, n < 10 FROM cells WHERE NOT (r = 'B' AND k = 'y')$$);
SELECT * FROM sdc_audit($$SELECT 'a', 'b', 1, true WHERE false$$);
-- protected: the fewest, smallest other cells, and nothing can be derived
SELECT * FROM sdc_protect('SELECT r, k, n FROM cells');
SELECT * FROM sdc_audit($$SELECT row_key, col_key, n, suppression <> 'published' FROM sdc_protect('SELECT r, k, n FROM cells')$$);
-- a protection interval: no suppressed cell may be known to within 20
SELECT count(*) FILTER (WHERE suppression <> 'published') AS suppressed_for_20 FROM sdc_protect('SELECT r, k, n FROM cells', min_width => 20);
SELECT count(*) AS narrower_than_20
  FROM sdc_audit($$SELECT row_key, col_key, n, suppression <> 'published' FROM sdc_protect('SELECT r, k, n FROM cells', min_width => 20)$$, 20)
 WHERE disclosed;
-- under another policy: OpenSAFELY also redacts the zeros
INSERT INTO cells VALUES ('D', 'x', 0), ('D', 'y', 11), ('D', 'z', 12);
SELECT row_key, col_key, shown, suppression FROM sdc_protect('SELECT r, k, n FROM cells', 'opensafely') WHERE row_key = 'D' OR row_key IS NULL;
-- a one-dimensional table: one count a row and the total
SELECT * FROM sdc_protect('SELECT r, NULL, n FROM cells WHERE k = ''y''');
-- a published table whose suppressed cells bound one another only loosely
SELECT * FROM sdc_audit($$SELECT * FROM (VALUES ('A', 'x', 1, true), ('A', 'y', 1, true), ('A', NULL, 2, false),
                                                 ('B', 'x', 1, true), ('B', 'y', 1, true), ('B', NULL, 2, false),
                                                 (NULL, 'x', 2, false), (NULL, 'y', 2, false), (NULL, NULL, 4, false)) v$$);
-- everything suppressed: nothing bounds a cell from above
SELECT count(*) FILTER (WHERE upper IS NULL) AS unbounded
  FROM sdc_audit($$SELECT row_key, col_key, n, true FROM _query_columns('SELECT r, k, n FROM cells', 3) q, _sdc_table(q.c1, q.c2, q.c3) t$$);

-- random tables: after protection, no suppressed cell is derivable
CREATE TABLE rand_cells AS
SELECT 'r' || lpad(i::text, 2, '0') AS r, 'c' || lpad(j::text, 2, '0') AS k,
       (abs(hashint4(i * 100 + j)) % 40)::bigint AS n
  FROM generate_series(1, 12) i, generate_series(1, 9) j;
SELECT count(*) FILTER (WHERE suppression = 'primary') AS primary_cells, count(*) FILTER (WHERE suppression = 'secondary') > 0 AS some_secondary
  FROM sdc_protect('SELECT r, k, n FROM rand_cells');
SELECT count(*) AS disclosed_after_protection
  FROM sdc_audit($$SELECT row_key, col_key, n, suppression <> 'published' FROM sdc_protect('SELECT r, k, n FROM rand_cells')$$)
 WHERE disclosed;

-- bad tables
SELECT * FROM sdc_table_bounds('{1,1,0,0}', '{1,0,1,0}', '{5,5,5,6}', '{t,f,f,f}');
SELECT * FROM sdc_table_bounds('{1,1,0}', '{1,0,1}', '{5,5,5}', '{t,f,f}');
SELECT * FROM sdc_table_bounds('{1,1,0,0}', '{1,0,1,0}', '{-5,-5,-5,-5}', '{t,f,f,f}');
SELECT sdc_table_suppress('{1,1,0,0}', '{1,0,1,0}', '{5,5,5,5}', '{t,f,f,f}', 0);
SELECT * FROM sdc_protect('SELECT ''a'', ''b'', 1 WHERE false');

-- sizes from arguments (issue 22): indexes whose (R + 1) * (C + 1)
-- overflows to the number of cells, indexes at 2^31 - 1, counts whose line
-- sums overflow, negative indexes: each a clean error, as a role with no
-- grants, never a crash
CREATE ROLE sdc_table_nobody;
SET ROLE sdc_table_nobody;
SELECT * FROM caredata.sdc_table_bounds(ARRAY[3,0,0,1], ARRAY[0,1073741824,0,0], ARRAY[0,0,0,0]::bigint[], ARRAY[false,false,false,false]);
SELECT caredata.sdc_table_suppress(ARRAY[3,0,0,1], ARRAY[0,1073741824,0,0], ARRAY[0,0,0,0]::bigint[], ARRAY[false,false,false,false], 1);
SELECT * FROM caredata.sdc_table_bounds(ARRAY[1,0,0,1], ARRAY[0,2147483647,0,0], ARRAY[0,0,0,0]::bigint[], ARRAY[true,false,false,false]);
SELECT * FROM caredata.sdc_table_bounds(ARRAY[65535,0,0,1], ARRAY[0,65537,0,0], ARRAY[0,0,0,0]::bigint[], ARRAY[true,false,false,false]);
SELECT * FROM caredata.sdc_table_bounds(ARRAY[-1,0,0,1], ARRAY[0,1,0,1], ARRAY[0,0,0,0]::bigint[], ARRAY[true,false,false,false]);
SELECT b.* FROM (SELECT array_agg(i ORDER BY i, j) AS r, array_agg(j ORDER BY i, j) AS c,
                        array_agg(576460752303423486 ORDER BY i, j) AS v, array_agg(i = 1 ORDER BY i, j) AS s
                   FROM generate_series(0, 1) i, generate_series(0, 17) j) a,
              caredata.sdc_table_bounds(a.r, a.c, a.v, a.s) b;
SELECT * FROM caredata.sdc_table_bounds('{}', '{}', '{}', '{}');
SELECT * FROM caredata.sdc_table_bounds('{{1,1},{0,0}}', '{{1,0},{1,0}}', '{{5,5},{5,5}}', '{{t,f},{f,f}}');
-- a two-dimensional array is read as its cells in order, as before
SELECT caredata.sdc_table_suppress('{{1,1},{0,0}}', '{{1,0},{1,0}}', '{{5,5},{5,5}}', '{{t,f},{f,f}}', 9223372036854775807);
RESET ROLE;
DROP ROLE sdc_table_nobody;
DROP TABLE cells, rand_cells;
