-- src/sdc/table.sql
-- Tables with margins (src/sdc/table.c): the interval an attacker can derive
-- for each suppressed cell, and complementary (secondary) suppression so
-- that no suppressed cell can be derived by subtraction.

CREATE FUNCTION caredata.sdc_table_bounds(row_index integer[], col_index integer[], value bigint[], suppressed boolean[])
  RETURNS TABLE (cell integer, lower bigint, upper bigint)
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.sdc_table_bounds(integer[], integer[], bigint[], boolean[]) IS
  'for a whole table with margins (row 0 the column totals, column 0 the row totals), each cell''s interval derivable from the published cells: exact linear-programming bounds, computed as network flows; upper NULL when unbounded';

CREATE FUNCTION caredata.sdc_table_suppress(row_index integer[], col_index integer[], value bigint[], primary_suppressed boolean[],
                                            min_width bigint DEFAULT 1)
  RETURNS boolean[]
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.sdc_table_suppress(integer[], integer[], bigint[], boolean[], bigint) IS
  'the cells to suppress, primary and secondary, so that no suppressed cell''s derivable interval is narrower than min_width (1: none derived exactly)';

-- A query the caller gives (sdc_protect, sdc_audit, funnel, funnel_svg)
-- runs here, as the caller and under the caller's search_path, since its
-- names are the caller's; everything caredata adds to it is qualified, and
-- what caredata then does with its columns runs under caredata's own
-- search_path (issue 22).  Values travel as text: exact for integers,
-- booleans and (extra_float_digits = 3) doubles.
CREATE FUNCTION caredata._query_columns(query text, ncols integer,
                                        OUT c1 text[], OUT c2 text[], OUT c3 text[], OUT c4 text[])
  LANGUAGE plpgsql STABLE SET extra_float_digits = 3 AS $$
BEGIN
  IF ncols OPERATOR(pg_catalog.=) 3 THEN
    EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(x.a::pg_catalog.text), pg_catalog.array_agg(x.b::pg_catalog.text), '
                              'pg_catalog.array_agg(x.c::pg_catalog.text) FROM (%s) x(a, b, c)', query)
      INTO c1, c2, c3;
  ELSE
    EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(x.a::pg_catalog.text), pg_catalog.array_agg(x.b::pg_catalog.text), '
                              'pg_catalog.array_agg(x.c::pg_catalog.text), pg_catalog.array_agg(x.d::pg_catalog.text) '
                              'FROM (%s) x(a, b, c, d)', query)
      INTO c1, c2, c3, c4;
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._query_columns(text, integer) IS
  'internal: the first 3 or 4 columns of the caller''s query, as text arrays in one row order; runs as the caller, under the caller''s search_path';

-- the cells of a query as a whole table with margins: keys sorted, row 0
-- and column 0 the totals (computed), a one-dimensional table one column
CREATE FUNCTION caredata._sdc_table(cell_rows text[], cell_cols text[], cell_ns text[])
  RETURNS TABLE (row_key text, col_key text, row_index integer, col_index integer, n bigint)
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN QUERY EXECUTE $q$
    WITH c AS (SELECT x.row_key AS r, x.col_key AS k, x.n::bigint AS n FROM unnest($1, $2, $3) x(row_key, col_key, n)),
         rk AS (SELECT r, row_number() OVER (ORDER BY r)::integer AS i FROM (SELECT DISTINCT r FROM c) d),
         ck AS (SELECT k, row_number() OVER (ORDER BY k NULLS FIRST)::integer AS j FROM (SELECT DISTINCT k FROM c) d),
         grid AS (SELECT rk.r, ck.k, rk.i, ck.j, coalesce(c.n, 0) AS n
                    FROM rk CROSS JOIN ck LEFT JOIN c ON c.r = rk.r AND c.k IS NOT DISTINCT FROM ck.k)
    SELECT r, k, i, j, n FROM grid
    UNION ALL SELECT r, NULL, i, 0, sum(n)::bigint FROM grid GROUP BY r, i
    UNION ALL SELECT NULL, k, 0, j, sum(n)::bigint FROM grid GROUP BY k, j
    UNION ALL SELECT NULL, NULL, 0, 0, coalesce(sum(n), 0)::bigint FROM grid$q$ USING cell_rows, cell_cols, cell_ns;
END
$$;
COMMENT ON FUNCTION caredata._sdc_table(text[], text[], text[]) IS
  'internal: the (row_key, col_key, n) cells of a query (caredata._query_columns) as a whole table with margins';

CREATE FUNCTION caredata._sdc_protect(cell_rows text[], cell_cols text[], cell_ns text[], policy text, min_width bigint)
  RETURNS TABLE (row_key text, col_key text, n bigint, shown text, suppression text)
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  rkeys text[];
  ckeys text[];
  rows_ integer[];
  cols_ integer[];
  vals bigint[];
  prim boolean[];
  supp boolean[];
  one_dim boolean;
  mark text;
BEGIN
  SELECT array_agg(c.row_key ORDER BY c.row_index, c.col_index), array_agg(c.col_key ORDER BY c.row_index, c.col_index),
         array_agg(c.row_index ORDER BY c.row_index, c.col_index), array_agg(c.col_index ORDER BY c.row_index, c.col_index),
         array_agg(c.n ORDER BY c.row_index, c.col_index),
         array_agg(caredata.sdc_apply(c.n, policy) IS NULL ORDER BY c.row_index, c.col_index),
         max(c.col_index) = 1 AND bool_and(c.col_key IS NULL)
    INTO rkeys, ckeys, rows_, cols_, vals, prim, one_dim FROM caredata._sdc_table(cell_rows, cell_cols, cell_ns) c;
  IF coalesce(array_length(rows_, 1), 0) <= 1 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'the table has no cells',
      HINT = 'The query returns (row_key, col_key, n) for each interior cell; col_key NULL for a one-dimensional table.';
  END IF;
  supp := caredata.sdc_table_suppress(rows_, cols_, vals, prim, min_width);
  mark := caredata.sdc_display(NULL, policy);
  RETURN QUERY
  SELECT u.rk, u.ck, u.v,
         CASE WHEN u.s THEN mark ELSE caredata.sdc_display(u.v, policy) END,
         CASE WHEN u.p THEN 'primary' WHEN u.s THEN 'secondary' ELSE 'published' END
    FROM unnest(rkeys, ckeys, rows_, cols_, vals, prim, supp) u(rk, ck, ri, ci, v, p, s)
   -- a one-dimensional table is one column: its row totals repeat its cells
   WHERE NOT (one_dim AND u.ci = 0 AND u.ri > 0) AND NOT (one_dim AND u.ri = 0 AND u.ci = 1)
   ORDER BY u.ri = 0, u.rk, u.ci = 0, u.ck;
END
$$;
COMMENT ON FUNCTION caredata._sdc_protect(text[], text[], text[], text, bigint) IS
  'internal: caredata.sdc_protect() on the cells of its query (caredata._query_columns)';

-- the caller's query runs as the caller, with the caller's search_path
-- (its names are the caller's: caredata._query_columns); the rest, under
-- caredata's own (issue 22)
CREATE FUNCTION caredata.sdc_protect(cells text, policy text DEFAULT NULL, min_width bigint DEFAULT 1)
  RETURNS TABLE (row_key text, col_key text, n bigint, shown text, suppression text)
  LANGUAGE sql STABLE
BEGIN ATOMIC
  SELECT p.* FROM caredata._query_columns(cells, 3) q,
                  caredata._sdc_protect(q.c1, q.c2, q.c3, sdc_protect.policy, sdc_protect.min_width) p;
END;
COMMENT ON FUNCTION caredata.sdc_protect(text, text, bigint) IS
  'a table ready to publish: the (row_key, col_key, n) cells of a query with their margins (NULL keys), small counts suppressed by the policy (primary), and enough other cells (secondary) that no suppressed cell can be derived to within min_width; shown is what to print';

CREATE FUNCTION caredata._sdc_audit(cell_rows text[], cell_cols text[], cell_ns text[], cell_suppressed text[], min_width bigint)
  RETURNS TABLE (row_key text, col_key text, n bigint, lower bigint, upper bigint, disclosed boolean)
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  rkeys text[];
  ckeys text[];
  rows_ integer[];
  cols_ integer[];
  vals bigint[];
  supp boolean[];
  given boolean[];
BEGIN
  -- the table as published, made whole: a cell the query lacks is a
  -- published 0 (GROUP BY gives no row for an empty cell); a margin it
  -- lacks (ROLLUP gives no column totals) is the sum of its cells and
  -- unpublished; a one-dimensional table (no column keys) is one column
  -- whose row totals are its cells
  EXECUTE $q$
    WITH c AS (SELECT x.row_key AS r, x.col_key AS k, x.n::bigint AS n, coalesce(x.suppressed::boolean, false) AS s
                 FROM unnest($1, $2, $3, $4) x(row_key, col_key, n, suppressed)),
         d AS (SELECT NOT EXISTS (SELECT 1 FROM c WHERE k IS NOT NULL) AS one),
         cc AS (SELECT r, CASE WHEN d.one AND r IS NOT NULL THEN '' ELSE k END AS k, n, s FROM c, d),
         rk AS (SELECT r, row_number() OVER (ORDER BY r)::integer AS i FROM (SELECT DISTINCT r FROM cc WHERE r IS NOT NULL) x),
         ck AS (SELECT k, row_number() OVER (ORDER BY k)::integer AS j FROM (SELECT DISTINCT k FROM cc WHERE k IS NOT NULL) x),
         inner_ AS (SELECT rk.r, ck.k, rk.i, ck.j, coalesce(cc.n, 0) AS n, coalesce(cc.s, false) AS s, cc.n IS NOT NULL AS g
                      FROM rk CROSS JOIN ck
                      LEFT JOIN cc ON cc.r = rk.r AND cc.k = ck.k),
         rows_t AS (SELECT rk.r, NULL::text AS k, rk.i, 0 AS j,
                           coalesce(cc.n, (SELECT sum(x.n) FROM inner_ x WHERE x.i = rk.i))::bigint AS n,
                           CASE WHEN d.one THEN (SELECT bool_or(x.s) FROM inner_ x WHERE x.i = rk.i)
                                ELSE coalesce(cc.s, true) END AS s, cc.r IS NOT NULL AS g
                      FROM rk CROSS JOIN d LEFT JOIN cc ON cc.r = rk.r AND cc.k IS NULL),
         cols_t AS (SELECT NULL::text AS r, ck.k, 0 AS i, ck.j,
                           coalesce(cc.n, (SELECT sum(x.n) FROM inner_ x WHERE x.j = ck.j))::bigint AS n,
                           CASE WHEN d.one THEN (SELECT bool_or(g.s) FROM cc g WHERE g.r IS NULL AND g.k IS NULL)
                                ELSE coalesce(cc.s, true) END AS s, cc.k IS NOT NULL AS g
                      FROM ck CROSS JOIN d LEFT JOIN cc ON cc.r IS NULL AND cc.k = ck.k),
         grand AS (SELECT NULL::text AS r, NULL::text AS k, 0 AS i, 0 AS j,
                          coalesce((SELECT g.n FROM cc g WHERE g.r IS NULL AND g.k IS NULL), (SELECT sum(x.n) FROM inner_ x))::bigint AS n,
                          coalesce((SELECT g.s FROM cc g WHERE g.r IS NULL AND g.k IS NULL), true) AS s,
                          EXISTS (SELECT 1 FROM cc g WHERE g.r IS NULL AND g.k IS NULL) AS g),
         t AS (SELECT * FROM inner_ UNION ALL SELECT * FROM rows_t UNION ALL SELECT * FROM cols_t UNION ALL SELECT * FROM grand)
    SELECT array_agg(r ORDER BY i, j), array_agg(CASE WHEN k = '' THEN NULL ELSE k END ORDER BY i, j),
           array_agg(i ORDER BY i, j), array_agg(j ORDER BY i, j),
           array_agg(n ORDER BY i, j), array_agg(s ORDER BY i, j), array_agg(g ORDER BY i, j) FROM t$q$
    INTO rkeys, ckeys, rows_, cols_, vals, supp, given USING cell_rows, cell_cols, cell_ns, cell_suppressed;
  IF rkeys IS NULL OR array_position(vals, NULL) IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'the published table has no cells',
      HINT = 'The query returns (row_key, col_key, n, suppressed) for each cell, NULL keys for the totals.';
  END IF;
  RETURN QUERY
  SELECT rkeys[b.cell], ckeys[b.cell], vals[b.cell], b.lower, b.upper, b.upper IS NOT NULL AND b.upper - b.lower < min_width
    FROM caredata.sdc_table_bounds(rows_, cols_, vals, supp) b
   -- the cells the query gave as suppressed (not the totals it left out)
   WHERE supp[b.cell] AND given[b.cell]
   ORDER BY rows_[b.cell] = 0, rkeys[b.cell], cols_[b.cell] = 0, ckeys[b.cell];
END
$$;
COMMENT ON FUNCTION caredata._sdc_audit(text[], text[], text[], text[], bigint) IS
  'internal: caredata.sdc_audit() on the cells of its query (caredata._query_columns)';
CREATE FUNCTION caredata.sdc_audit(cells text, min_width bigint DEFAULT 1)
  RETURNS TABLE (row_key text, col_key text, n bigint, lower bigint, upper bigint, disclosed boolean)
  LANGUAGE sql STABLE
BEGIN ATOMIC
  SELECT a.* FROM caredata._query_columns(cells, 4) q,
                  caredata._sdc_audit(q.c1, q.c2, q.c3, q.c4, sdc_audit.min_width) a;
END;
COMMENT ON FUNCTION caredata.sdc_audit(text, bigint) IS
  'audit a table as published: for each suppressed cell of the (row_key, col_key, n, suppressed) query (NULL keys the totals; totals left out, as ROLLUP leaves column totals out, count as unpublished; col_key NULL throughout for a one-dimensional table), the interval an attacker derives from the published cells (exact LP bounds) and whether it is narrower than min_width';
