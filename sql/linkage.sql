-- linkage: comparators, EM, runs, person index, explanation, lookup, bad input
CREATE EXTENSION IF NOT EXISTS caredata;
SET search_path = caredata, public;
\set SHOW_CONTEXT never

-- ---- comparators: each level on hand-picked pairs ----
-- NHS number: 3 exact, 2 one digit or adjacent transposition, 1 different, 0 missing/invalid
SELECT a, b, compare_nhs_number(a, b) AS level FROM (VALUES
  ('9434765919', '9434765919'),      -- exact
  ('943 476 5919', '9434765919'),    -- layouts do not matter
  ('9434765919', '9434765918'),      -- one digit (the check digit) changed
  ('9434765919', '9434765819'),      -- one digit changed
  ('9434765919', '9434769519'),      -- adjacent digits transposed
  ('9434765919', '4010232137'),      -- both valid, different
  ('9434765919', NULL),              -- missing
  ('9434765919', ''),                -- blank
  ('9434765918', '4010232130'),      -- invalid and far: no evidence
  ('9434765918', '9434765918'),      -- the same invalid number: no evidence
  ('9434765919', '94347659'),        -- too short
  ('9434765919', '9434756919')       -- transposition of two different digits elsewhere
  ) v(a, b);
SELECT compare_nhs_number(9434765919::bigint, 9434765918::bigint) AS digits_close,
       compare_nhs_number('9434765919'::nhs_number, '4010232137'::nhs_number) AS typed_different,
       compare_nhs_number('9434765919'::nhs_number, '9434765919'::nhs_number) AS typed_exact,
       compare_nhs_number(NULL::nhs_number, '9434765919'::nhs_number) AS typed_missing,
       compare_nhs_number(-1::bigint, 9434765919::bigint) AS out_of_range;
SELECT nhs_number_digits('943 476 5918') = 9434765918 AS digits_of_invalid, nhs_number_digits('12345') IS NULL AS short_is_null;

-- dates: 5 exact, 4 day/month transposed, 3 two of three, 2 within N days, 1 different, 0 missing
SELECT a, b, n, compare_date(a::date, b::date, n) AS level FROM (VALUES
  ('2001-03-04', '2001-03-04', 30),
  ('2001-03-04', '2001-04-03', 30),  -- transposed
  ('2001-03-04', '2002-03-04', 30),  -- year differs
  ('2001-03-04', '2001-03-07', 30),  -- day differs
  ('2001-03-04', '2001-05-20', 365), -- within a year
  ('2001-03-04', '2001-05-20', 30),
  ('2000-02-29', '2000-02-29', 30),  -- leap day
  ('2000-02-29', '2001-02-28', 365), -- leap day a year on: month only, within a year
  ('2000-02-29', '2001-02-28', 0),
  ('2000-12-31', '2001-01-01', 1),   -- one day apart across a year
  ('1950-01-01', '2010-06-15', 30),
  ('2001-03-04', NULL, 30),
  ('infinity', '2001-03-04', 30)) v(a, b, n);
SELECT compare_date('2001-03-04', '2001-03-05') AS default_days;
SELECT compare_date('2001-03-04', '2001-03-05', -1);

-- postcodes: 5 unit, 4 sector, 3 district, 2 area, 1 different, 0 missing or invalid
SELECT a, b, compare_postcode(a, b) AS level FROM (VALUES
  ('SW1A 1AA', 'sw1a1aa'),
  ('SW1A 1AA', 'SW1A 1AB'),
  ('SW1A 1AA', 'SW1A 2AA'),
  ('SW1A 1AA', 'SW2 1AA'),
  ('M1 1AA', 'ME1 1AA'),             -- M and ME are different areas
  ('LS1 4AP', 'SW1A 1AA'),
  ('LS1 4AP', 'not a postcode'),
  ('LS1 4AP', NULL)) v(a, b);

-- sex: 2 same, 1 different, 0 missing, not known or unrecognised
SELECT a, b, compare_sex(a, b) AS level FROM (VALUES
  ('M', '1'), ('Female', '2'), ('F', 'M'), ('U', 'M'), ('0', '1'), ('9', '9'), ('xyz', '1'), (NULL, '1')) v(a, b);

-- strings
SELECT round(jaro_winkler('MARTHA', 'MARHTA')::numeric, 4) AS martha,
       round(jaro_winkler('DWAYNE', 'DUANE')::numeric, 4) AS dwayne,
       round(jaro_winkler('DIXON', 'DICKSONX')::numeric, 4) AS dixon,
       jaro_winkler('', '') AS both_empty, jaro_winkler('ABC', '') AS one_empty,
       damerau_levenshtein('kitten', 'sitting') AS kitten,
       damerau_levenshtein('CA', 'AC') AS transposed,
       damerau_levenshtein('José', 'Jose') AS accented,
       damerau_levenshtein('', 'abc') AS from_empty;
SELECT compare_jaro_winkler('MARTHA', 'MARTHA') AS exact,
       compare_jaro_winkler('MARTHA', 'MARHTA') AS close,
       compare_jaro_winkler('DWAYNE', 'DUANE') AS loose,
       compare_jaro_winkler('MARTHA', 'ZZZ') AS different,
       compare_jaro_winkler(NULL, 'X') AS missing,
       compare_damerau_levenshtein('SMITH', 'SMIHT') AS dl_one,
       compare_damerau_levenshtein('SMITH', 'SMYTHE') AS dl_two,
       compare_damerau_levenshtein('SMITH', 'JONES') AS dl_far,
       compare_damerau_levenshtein('SMITH', 'SMITH', '{}') AS dl_exact_no_thresholds;
SELECT compare_jaro_winkler('a', 'b', NULL);
SELECT compare_jaro_winkler('a', 'b', '{0.9,NULL}');
SELECT damerau_levenshtein(repeat('x', 5000), 'x');
SELECT compare_exact(1, 1) AS same, compare_exact('a'::text, 'b') AS different, compare_exact(NULL::int, 1) AS missing;

-- comparators are immutable and parallel safe; not strict (NULL is a level)
SELECT p.proname, p.provolatile, p.proparallel, p.proisstrict
  FROM pg_proc p WHERE p.pronamespace = 'caredata'::regnamespace
   AND (p.proname LIKE 'compare\_%' OR p.proname IN ('jaro_winkler', 'damerau_levenshtein', 'nhs_number_digits'))
 ORDER BY p.proname, p.oid::regprocedure::text;

-- ---- EM recovers known m and u ----
-- 3 comparisons of 3 levels; level 0 (missing) has the same probability
-- among matches and non-matches, as the model assumes; 10% matches
CREATE TEMP TABLE em_truth AS
SELECT * FROM (VALUES
  (0, ARRAY[0.05, 0.05, 0.90], ARRAY[0.05, 0.90, 0.05]),
  (1, ARRAY[0.02, 0.18, 0.80], ARRAY[0.02, 0.68, 0.30]),
  (2, ARRAY[0.10, 0.05, 0.85], ARRAY[0.10, 0.80, 0.10])) v(c, m, u);
CREATE TEMP TABLE em_pairs AS
SELECT i, is_match,
       (SELECT CASE WHEN x < p[1] THEN 0 WHEN x < p[1] + p[2] THEN 1 ELSE 2 END
          FROM (SELECT (hashint8extended(i * 3 + 0, 7) & 1048575) / 1048576.0 AS x,
                       CASE WHEN is_match THEN m ELSE u END AS p FROM em_truth WHERE c = 0) z) AS l0,
       (SELECT CASE WHEN x < p[1] THEN 0 WHEN x < p[1] + p[2] THEN 1 ELSE 2 END
          FROM (SELECT (hashint8extended(i * 3 + 1, 7) & 1048575) / 1048576.0 AS x,
                       CASE WHEN is_match THEN m ELSE u END AS p FROM em_truth WHERE c = 1) z) AS l1,
       (SELECT CASE WHEN x < p[1] THEN 0 WHEN x < p[1] + p[2] THEN 1 ELSE 2 END
          FROM (SELECT (hashint8extended(i * 3 + 2, 7) & 1048575) / 1048576.0 AS x,
                       CASE WHEN is_match THEN m ELSE u END AS p FROM em_truth WHERE c = 2) z) AS l2
  FROM (SELECT i, (hashint8extended(i, 99) & 1048575) < 104858 AS is_match FROM generate_series(1, 100000) i) s;
CREATE TEMP TABLE em_fit AS
SELECT e.* FROM (SELECT array_agg(p ORDER BY p) AS pats, array_agg(n ORDER BY p) AS counts
                   FROM (SELECT l0 + 3 * l1 + 9 * l2 AS p, count(*)::float8 AS n FROM em_pairs GROUP BY 1) h) h,
       link_em(h.pats, h.counts, '{3,3,3}',
               (SELECT array_agg(x ORDER BY c, o) FROM em_truth, unnest(u) WITH ORDINALITY AS z(x, o))::float8[],
               '{0.1,0.1,0.8, 0.1,0.1,0.8, 0.1,0.1,0.8}', 100000, 1000) e;
SELECT converged,
       abs(lambda - (SELECT avg(is_match::int) FROM em_pairs)) < 0.01 AS lambda_recovered,
       (SELECT max(abs(f - t)) FROM unnest(m, (SELECT array_agg(x ORDER BY c, o) FROM em_truth, unnest(m) WITH ORDINALITY AS z(x, o)))
          WITH ORDINALITY AS q(f, t, o) WHERE o % 3 <> 1) < 0.02 AS m_recovered,
       m[1] = 0.05 AND m[4] = 0.02 AND m[7] = 0.10 AS missing_level_is_neutral
  FROM em_fit;
-- pattern weights: prior plus log2(m/u), level 0 left out
SELECT round(w::numeric, 6) AS weight FROM unnest(link_pattern_weights('{0,8,26}', '{3,3,3}',
         '{0.05,0.05,0.9, 0.02,0.18,0.8, 0.1,0.05,0.85}', '{0.05,0.9,0.05, 0.02,0.68,0.3, 0.1,0.8,0.1}', 0.1)) w;
SELECT link_em('{0}', '{1}', '{3,3}', '{0.5,0.5,0.5,0.5,0.5,0.5}', '{0.5,0.5,0.5,0.5,0.5,0.5}', 10);
SELECT link_em('{99}', '{1}', '{3,3}', '{0.5,0.5,0.5,0.5,0.5,0.5}', '{0.5,0.5,0.5,0.5,0.5,0.5}', 10);
SELECT link_em('{0}', '{1}', '{3}', '{0.5,0.5,1.5}', '{0.5,0.5,0.5}', 10);
SELECT link_pattern_weights('{0}', '{1}', '{1}', '{1}', 0.5);

-- a pair's weight: its pattern's weight from the dense table plus its
-- term-frequency adjustment; the same with the table as a constant (cached
-- per query) and as a column (read per row)
SELECT link_weight(2, 0.5, '{1,2,3}') AS constant_table,
       (SELECT array_agg(link_weight(p, 0, w) ORDER BY p) FROM (VALUES (0, '{1,2,3}'::float8[]), (1, '{5,6}'), (0, '{7}')) v(p, w)) AS per_row_tables;
SELECT link_weight(p, 0, '{1,2,3}') FROM generate_series(0, 3) p;
SELECT link_weight(0, 0, '{1,NULL}');
SELECT link_weight(0, 0, NULL) IS NULL AS strict;

-- the label-free threshold: the aggregate in C agrees with the expected-F1
-- rule written in SQL, over a serial and a parallel plan
CREATE TABLE thr_pairs AS
SELECT (random() * 60 - 30)::float8 AS w FROM (SELECT setseed(0.42)) s, generate_series(1, 200000);
ANALYZE thr_pairs;
SELECT link_threshold(w) = (
  SELECT b FROM (SELECT b, sum(n) OVER w AS cn, sum(s) OVER w AS cs, sum(s) OVER () AS ts
                   FROM (SELECT floor(w * 4) / 4 AS b, count(*) AS n, sum(link_probability(w)) AS s FROM thr_pairs GROUP BY 1) h
                 WINDOW w AS (ORDER BY b DESC)) c
   ORDER BY 2 * cs / (cn + ts) DESC, b DESC LIMIT 1) AS same_as_sql
  FROM thr_pairs;
SELECT link_threshold(w) AS serial_threshold FROM thr_pairs \gset
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT link_threshold(w) FROM thr_pairs;
SELECT link_threshold(w) = :serial_threshold AS parallel_same FROM thr_pairs;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;
-- partial states, shipped as text and combined later, give the same cut
CREATE AGGREGATE pg_temp.thr_partial(double precision) (SFUNC = caredata._link_threshold_accum, STYPE = double precision[]);
CREATE AGGREGATE pg_temp.thr_combine(double precision[]) (SFUNC = caredata._link_threshold_combine, STYPE = double precision[],
                                                          FINALFUNC = caredata._link_threshold_final);
SELECT pg_temp.thr_combine(s::text::double precision[]) = :serial_threshold AS partial_states_same
  FROM (SELECT pg_temp.thr_partial(w) AS s FROM thr_pairs WHERE w < 0
        UNION ALL SELECT pg_temp.thr_partial(w) FROM thr_pairs WHERE w >= 0) p;
SELECT (SELECT pg_temp.thr_partial(w) FROM thr_pairs)::text::double precision[] = (SELECT pg_temp.thr_partial(w) FROM thr_pairs) AS text_round_trip;
SELECT pg_temp.thr_combine(s) FROM (VALUES ('{1,2}'::double precision[])) v(s);
SELECT link_threshold(w) AS two_certain_one_not FROM (VALUES (20.0), (20.0), (-20.0), (NULL)) v(w);
SELECT link_threshold(w) IS NULL AS no_pairs FROM thr_pairs WHERE false;
SELECT link_threshold(w) AS clamped FROM (VALUES (1e9::float8), (-1e9)) v(w);
SELECT link_threshold('NaN');
DROP TABLE thr_pairs;

-- ---- union-find ----
SELECT * FROM link_components('SELECT a::bigint, b::bigint FROM (VALUES (5, 3), (3, 9), (10, 11), (11, 10)) v(a, b)') ORDER BY rid;
SELECT * FROM link_components('SELECT a::bigint, b::bigint FROM (VALUES (1, 2), (1, 3), (4, 3), (4, 5)) v(a, b)', true) ORDER BY rid;
-- NHS numbers kept apart: 1 and 2 carry one valid number, 3, 4 and 5
-- another, 7 an invalid one (a typing error of 1's), 6 none.  1-2 confirms
-- the first number, 3-4 the second; 5 alone proves nothing and joins 2; 5-3
-- would join two confirmed numbers and is refused
SELECT * FROM link_components('SELECT a::bigint, b::bigint FROM (VALUES (1, 2, 1), (3, 4, 2), (2, 5, 3), (5, 3, 4), (6, 4, 5), (7, 1, 6)) v(a, b, o) ORDER BY o', false,
                              $$SELECT r::bigint, n::bigint FROM (VALUES (1, 9434765919), (2, 9434765919), (3, 4010232137), (4, 4010232137),
                                                                        (5, 4010232137), (6, NULL), (7, 9434765910)) v(r, n)$$) ORDER BY rid;
-- the same links without the NHS numbers: one cluster
SELECT count(DISTINCT cluster) AS clusters FROM link_components('SELECT a::bigint, b::bigint FROM (VALUES (1, 2), (3, 4), (2, 5), (5, 3), (6, 4), (7, 1)) v(a, b)');
SELECT * FROM link_components('SELECT 1::bigint, 2::bigint', false, 'SELECT 1, 2');
SELECT count(*) AS no_rows FROM link_components(NULL);
-- links that carry their weight (and step) are taken in weight order, as
-- ORDER BY weight DESC NULLS LAST, step NULLS LAST, rid_l, rid_r takes them,
-- whatever order the query gives (NaN first, -0 equal to 0): one to one,
-- 6-7 (NaN) wins, then 1-3 (5), 4-5 (step 1); the others are refused
SELECT * FROM link_components($$SELECT a::bigint, b::bigint, w::float8, s::smallint
                                FROM (VALUES (1, 2, 1.0, NULL), (1, 3, 5.0, NULL), (4, 3, NULL, 2), (4, 5, NULL, 1),
                                             (8, 6, 0.0, NULL), (7, 8, -0.0, NULL), (6, 7, 'NaN', NULL)) v(a, b, w, s)$$, true) ORDER BY rid;
-- many links, some weights equal: sorted here (by a radix sort, or by
-- qsort() when its buffer does not fit beside them: 2MB), or by PostgreSQL
-- when they do not fit in maintenance_work_mem (1MB), the same clusters as
-- the ordered query
CREATE TEMP TABLE uf_links AS
SELECT (abs(hashint4(g)) % 30000)::bigint AS a, (abs(hashint4(g + 1000000)) % 30000)::bigint AS b,
       CASE WHEN g % 7 = 0 THEN NULL ELSE (abs(hashint4(g + 2000000)) % 50)::float8 END AS w,
       CASE WHEN g % 3 = 0 THEN NULL ELSE (g % 5)::smallint END AS s
  FROM generate_series(1, 60000) g;
CREATE TEMP TABLE uf_ordered AS
SELECT * FROM link_components('SELECT a, b FROM uf_links ORDER BY w DESC NULLS LAST, s NULLS LAST, a, b', true);
CREATE TEMP TABLE uf_sorted AS SELECT * FROM link_components('SELECT a, b, w, s FROM uf_links', true);
SET maintenance_work_mem = '2MB';
CREATE TEMP TABLE uf_qsorted AS SELECT * FROM link_components('SELECT a, b, w, s FROM uf_links', true);
SET maintenance_work_mem = '1MB';
CREATE TEMP TABLE uf_spilled AS SELECT * FROM link_components('SELECT a, b, w, s FROM uf_links', true);
RESET maintenance_work_mem;
SELECT (SELECT count(*) FROM uf_ordered) AS records, (SELECT count(*) FROM uf_ordered WHERE refused) > 0 AS some_refused,
       (SELECT count(*) FROM (SELECT * FROM uf_ordered EXCEPT SELECT * FROM uf_sorted) d)
     + (SELECT count(*) FROM (SELECT * FROM uf_sorted EXCEPT SELECT * FROM uf_ordered) d) AS sorted_differs,
       (SELECT count(*) FROM (SELECT * FROM uf_ordered EXCEPT SELECT * FROM uf_qsorted) d)
     + (SELECT count(*) FROM (SELECT * FROM uf_qsorted EXCEPT SELECT * FROM uf_ordered) d) AS qsorted_differs,
       (SELECT count(*) FROM (SELECT * FROM uf_ordered EXCEPT SELECT * FROM uf_spilled) d)
     + (SELECT count(*) FROM (SELECT * FROM uf_spilled EXCEPT SELECT * FROM uf_ordered) d) AS spilled_differs;
DROP TABLE uf_links, uf_ordered, uf_sorted, uf_qsorted, uf_spilled;
SELECT * FROM link_components('SELECT 1::bigint, 2::bigint, 1');
-- NHS numbers confirmed by their records' details (record id, number, date
-- of birth, sex): 2 and 3 share a number and agree (a NULL sex says
-- nothing), so do 1 and 6; 4 and 5 disagree on the date of birth, so theirs
-- is not confirmed.  1-2 joins two confirmed numbers: refused; 4-1 and 5-2
-- join unconfirmed numbers to confirmed ones
SELECT * FROM link_components('SELECT a::bigint, b::bigint FROM (VALUES (1, 2, 1), (4, 1, 2), (5, 2, 3)) v(a, b, o) ORDER BY o', false,
  $$SELECT r::bigint, n::bigint, d::date, s FROM (VALUES (1, 9434765919, '2000-01-01', '1'), (2, 9434765870, '2000-01-01', '1'),
                                                      (3, 9434765870, '2000-01-01', NULL), (4, 4010232137, '1990-05-05', '2'),
                                                      (5, 4010232137, '1990-05-06', '2'), (6, 9434765919, NULL, '1')) v(r, n, d, s)$$) ORDER BY rid;
-- 6 now has another sex than 1: their number is not confirmed, and 1-2 links
SELECT * FROM link_components('SELECT a::bigint, b::bigint FROM (VALUES (1, 2, 1), (4, 1, 2), (5, 2, 3)) v(a, b, o) ORDER BY o', false,
  $$SELECT r::bigint, n::bigint, d::date, s FROM (VALUES (1, 9434765919, '2000-01-01', '1'), (2, 9434765870, '2000-01-01', '1'),
                                                      (3, 9434765870, '2000-01-01', NULL), (4, 4010232137, '1990-05-05', '2'),
                                                      (5, 4010232137, '1990-05-06', '2'), (6, 9434765919, NULL, '2')) v(r, n, d, s)$$) ORDER BY rid;
SELECT * FROM link_components('SELECT 1::bigint, 2::bigint', false, 'SELECT 1::bigint, 9434765919::bigint, 1, 2');
-- memory is bounded by maintenance_work_mem (5 bytes per record id, 21 with NHS numbers)
SET maintenance_work_mem = '1MB';
SELECT count(*) FROM link_components('SELECT 1::bigint, 150000::bigint');
SELECT count(*) FROM link_components('SELECT 1::bigint, 150000::bigint', false, 'SELECT 1::bigint, 9434765919::bigint');
RESET maintenance_work_mem;
SELECT * FROM link_components('SELECT 1, 2');
