-- src/linkage/inspect.sql
-- Reading linkage results: quality against a truth table, the explanation
-- of one pair, and matching one new record against the person index.

-- pairwise precision and recall of the person index against a truth table
-- (source, record_id, <true id column>); scope 'all' (every pair of
-- records), 'cross' (pairs from different sources) or a source name
-- (pairs within that source: de-duplication)
CREATE FUNCTION caredata.link_quality(truth regclass, true_id name DEFAULT 'person_id', scope text DEFAULT 'all',
    project text DEFAULT 'default')
  RETURNS TABLE ("precision" double precision, recall double precision, f1 double precision,
                 true_pairs bigint, linked_pairs bigint, correct_pairs bigint,
                 persons_split bigint, persons_merged bigint)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_project text := caredata._link_check_project(project);
  f text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = truth AND a.attname = true_id AND a.attnum > 0 AND NOT a.attisdropped)
     OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = truth AND a.attname = 'source' AND NOT a.attisdropped)
     OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = truth AND a.attname = 'record_id' AND NOT a.attisdropped) THEN
    PERFORM caredata._link_bad(format('the truth table needs columns source, record_id and %s', true_id),
                               'Pass the name of the true-id column as true_id.', '42703');
  END IF;
  -- One pass over the records, each step aggregating the one before it (no
  -- step reads the records again).  A group of n records holds n(n-1)/2
  -- pairs; pairs across sources are all pairs less those within a source;
  -- pairs within the scope's source are those of its records alone.  Linked
  -- pairs share a cluster c, true pairs a true person t, correct pairs both:
  --   g    per (c, t, source): k records
  --   gs   per (c, t): n records, pairs within a source, within the scope's
  --        source; per (c, source) and (t, source): n records
  --   per  per c and per t: n records and the pairs within a source (from
  --        the (c, source) or (t, source) rows); correct pairs (from the
  --        (c, t) rows, summed under c only); how many true persons the
  --        cluster holds and how many clusters the true person is in
  -- Persons split and merged count every record, whatever the scope.
  f := CASE scope WHEN 'all' THEN 'X_all' WHEN 'cross' THEN 'X_all - X_within' ELSE 'X_source' END;
  RETURN QUERY EXECUTE format($q$
    WITH g AS (SELECT p.person_id AS c, t.%1$I AS t, p.source, count(*) AS k
                 FROM %7$s p JOIN %2$s t ON t.source::text = p.source AND %8$s
                GROUP BY 1, 2, 3),
         gs AS (SELECT GROUPING(c, t, source) AS set, c, t, source, sum(k)::bigint AS n,
                       sum(k * (k - 1) / 2)::bigint AS within, sum(k * (k - 1) / 2) FILTER (WHERE source = %3$L)::bigint AS in_source
                  FROM g GROUP BY GROUPING SETS ((c, t), (c, source), (t, source))),
         per AS (SELECT GROUPING(has_c, c) = 0 AS by_c, has_c, has_t,
                        sum(n) FILTER (WHERE set = 1)::bigint AS n,
                        sum(n * (n - 1) / 2) FILTER (WHERE set <> 1) AS within,
                        sum(n * (n - 1) / 2) FILTER (WHERE set <> 1 AND source = %3$L) AS in_source,
                        sum(n * (n - 1) / 2) FILTER (WHERE set = 1) AS tp_all,
                        sum(within) FILTER (WHERE set = 1) AS tp_within,
                        sum(in_source) FILTER (WHERE set = 1) AS tp_source,
                        count(t) FILTER (WHERE set = 1) AS persons,
                        count(c) FILTER (WHERE set = 1) AS clusters
                   FROM (SELECT *, set IN (1, 2) AS has_c, set IN (1, 4) AS has_t FROM gs) x
                  GROUP BY GROUPING SETS ((has_c, c), (has_t, t))),
         a AS (SELECT coalesce(sum(n * (n - 1) / 2) FILTER (WHERE by_c), 0) AS lp_all,
                      coalesce(sum(within) FILTER (WHERE by_c), 0) AS lp_within,
                      coalesce(sum(in_source) FILTER (WHERE by_c), 0) AS lp_source,
                      coalesce(sum(n * (n - 1) / 2) FILTER (WHERE NOT by_c), 0) AS ap_all,
                      coalesce(sum(within) FILTER (WHERE NOT by_c), 0) AS ap_within,
                      coalesce(sum(in_source) FILTER (WHERE NOT by_c), 0) AS ap_source,
                      coalesce(sum(tp_all) FILTER (WHERE by_c), 0) AS tp_all,
                      coalesce(sum(tp_within) FILTER (WHERE by_c), 0) AS tp_within,
                      coalesce(sum(tp_source) FILTER (WHERE by_c), 0) AS tp_source,
                      count(*) FILTER (WHERE NOT by_c AND clusters > 1) AS split,
                      count(*) FILTER (WHERE by_c AND persons > 1) AS merged
                 FROM per WHERE CASE WHEN by_c THEN has_c ELSE has_t END),
         s AS MATERIALIZED (SELECT %4$s AS tp, %5$s AS lp, %6$s AS ap, split, merged FROM a)
    SELECT CASE WHEN lp > 0 THEN (tp / lp)::double precision END,
           CASE WHEN ap > 0 THEN (tp / ap)::double precision END,
           CASE WHEN lp + ap > 0 THEN (2 * tp / (lp + ap))::double precision END,
           ap::bigint, lp::bigint, tp::bigint, split, merged
      FROM s$q$, true_id, truth, scope, replace(f, 'X', 'tp'), replace(f, 'X', 'lp'), replace(f, 'X', 'ap'),
      caredata._link_partition('caredata.person_index', p_project),
      -- integer record ids join as integers, others as text
      CASE WHEN (SELECT a.atttypid FROM pg_catalog.pg_attribute a WHERE a.attrelid = truth AND a.attname = 'record_id' AND NOT a.attisdropped)
                IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype)
           THEN 't.record_id = p.record_id' ELSE 't.record_id::text = p.record_key' END);
END
$$;
COMMENT ON FUNCTION caredata.link_quality(regclass, name, text, text) IS
  'pairwise precision, recall and F1 of a project''s person index against a truth table (source, record_id, true id), over all pairs, cross-source pairs (scope cross) or pairs within one source (scope = its name); persons split (one true person in several clusters) and merged (several in one)';

-- the model version a read uses: the one named, else the latest trained
CREATE FUNCTION caredata._link_trained_version(model text, version integer, project text) RETURNS integer
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v integer;
BEGIN
  PERFORM caredata._coordinator_only('linkage');
  PERFORM caredata._link_check_project(project);
  SELECT lm.version INTO v FROM caredata.link_model lm
   WHERE lm.project = _link_trained_version.project AND lm.model = _link_trained_version.model AND lm.lambda IS NOT NULL
     AND (_link_trained_version.version IS NULL OR lm.version = _link_trained_version.version)
   ORDER BY lm.version DESC LIMIT 1;
  IF v IS NULL THEN
    PERFORM caredata._link_bad(format('linkage model "%s" has no trained version%s', model,
                                      CASE WHEN version IS NOT NULL THEN ' ' || version ELSE '' END),
                               'Train it with caredata.link_run(), or see caredata.link_model.', '42704');
  END IF;
  RETURN v;
END
$$;
COMMENT ON FUNCTION caredata._link_trained_version(text, integer, text) IS
  'internal: the trained model version of a project a read uses (the one named, else the latest)';

-- each term of one pair's match weight; the terms sum to the weight
CREATE FUNCTION caredata.link_explain(source_a text, record_a text, source_b text, record_b text,
    model text DEFAULT 'default', version integer DEFAULT NULL, project text DEFAULT 'default')
  RETURNS TABLE (term text, level integer, label text, m double precision, u double precision, weight double precision)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  v integer := caredata._link_trained_version(model, version, project);
  p_project text := project;
  p_model text := model;
  lam double precision;
  c record;
  lv integer;
  tf double precision;
  rid_a bigint;
  rid_b bigint;
  swap bigint;
  rec text := caredata._link_record_sql(project);
BEGIN
  SELECT x.rid INTO rid_a FROM caredata.link_record x WHERE x.project = p_project AND x.source = source_a AND x.record_key = record_a;
  SELECT x.rid INTO rid_b FROM caredata.link_record x WHERE x.project = p_project AND x.source = source_b AND x.record_key = record_b;
  IF rid_a IS NULL OR rid_b IS NULL THEN
    PERFORM caredata._link_bad('a record to explain is not among the standardised records', 'Name records by source and record id as in caredata.person_index.', '42704');
  END IF;
  -- the pair in the order runs compare it
  IF rid_a > rid_b THEN
    swap := rid_a; rid_a := rid_b; rid_b := swap;
  END IF;
  SELECT x.lambda INTO lam FROM caredata.link_model x WHERE x.project = p_project AND x.model = p_model AND x.version = v;
  term := 'prior'; level := NULL; label := 'lambda = ' || lam; m := NULL; u := NULL;
  weight := ln(lam / (1 - lam)) / ln(2);
  RETURN NEXT;
  FOR c IN SELECT * FROM caredata._link_comparisons(p_model, v, p_project) ORDER BY pos LOOP
    -- checked again as built: the spec is a row the linker may have written directly
    PERFORM caredata._link_check_expression(c.name, c.expression, rec);
    EXECUTE format('SELECT (%s)::integer FROM (SELECT * FROM %s x WHERE x.rid = $1) l, (SELECT * FROM %2$s x WHERE x.rid = $2) r',
                   c.expression, rec) INTO lv USING rid_a, rid_b;
    term := c.name; level := lv; label := c.labels[lv + 1]; m := c.m[lv + 1]; u := c.u[lv + 1];
    weight := CASE WHEN lv = 0 THEN 0 ELSE ln(m / u) / ln(2) END;
    RETURN NEXT;
    IF c.tf IS NOT NULL AND lv = c.nlevels - 1 THEN
      EXECUTE format('SELECT x.%I FROM %s x WHERE x.rid = $1', 'tf_' || c.tf, rec) INTO tf USING rid_b;
      IF tf > 0 THEN
        term := 'tf ' || c.name; label := 'value frequency ' || round(tf::numeric, 8); m := NULL; u := tf;
        weight := ln(c.u[lv + 1] / tf) * 1.4426950408889634;
        RETURN NEXT;
      END IF;
    END IF;
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata.link_explain(text, text, text, text, text, integer, text) IS
  'the match weight of one pair of a project''s records (records named by source and record id, as text), term by term: the prior, each comparison''s level with m, u and log2(m/u), and term-frequency adjustments; the weights sum to the pair''s match weight';

CREATE FUNCTION caredata.link_explain(source_a text, record_a bigint, source_b text, record_b bigint,
    model text DEFAULT 'default', version integer DEFAULT NULL, project text DEFAULT 'default')
  RETURNS TABLE (term text, level integer, label text, m double precision, u double precision, weight double precision)
  LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  SELECT * FROM caredata.link_explain(source_a, record_a::text, source_b, record_b::text, model, version, project)
$$;
COMMENT ON FUNCTION caredata.link_explain(text, bigint, text, bigint, text, integer, text) IS
  'the match weight of one pair of a project''s records (records named by source and integer record id), term by term: the prior, each comparison''s level with m, u and log2(m/u), and term-frequency adjustments; the weights sum to the pair''s match weight';

-- match one new record against the person index
CREATE FUNCTION caredata.link_lookup(nhs_number text, dob date, sex text, postcode text,
    model text DEFAULT 'default', version integer DEFAULT NULL, fields jsonb DEFAULT NULL, project text DEFAULT 'default')
  RETURNS TABLE (person_id bigint, probability double precision, match_weight double precision)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  v integer := caredata._link_trained_version(model, version, project);
  p_project text := project;
  p_model text := model;
  persons regclass := caredata._link_partition('caredata.person_index', project);
  spec jsonb;
  lam double precision;
  nlevels integer[];
  mm double precision[];
  uu double precision[];
  u_top double precision[];
  cmp record;
  cand text := '';
  rule jsonb;
  rec text := caredata._link_record_sql(project);
  f_cols text := '';
  f record;
BEGIN
  IF fields IS NOT NULL AND jsonb_typeof(fields) <> 'object' THEN
    PERFORM caredata._link_bad('fields must be a JSON object of field values', 'For example {"given_name": "Ann", "family_name": "Smith"}.');
  END IF;
  SELECT x.spec, x.lambda INTO spec, lam FROM caredata.link_model x WHERE x.project = p_project AND x.model = p_model AND x.version = v;
  -- the model's levels, m and u read once (a lookup's fixed cost)
  WITH z AS MATERIALIZED (SELECT * FROM caredata._link_comparisons(p_model, v, p_project))
  SELECT (SELECT array_agg(z.nlevels ORDER BY z.pos) FROM z),
         (SELECT array_agg(x ORDER BY z.pos, o) FROM z, unnest(z.m) WITH ORDINALITY AS q(x, o)),
         (SELECT array_agg(x ORDER BY z.pos, o) FROM z, unnest(z.u) WITH ORDINALITY AS q(x, o)),
         (SELECT array_agg(z.u[z.nlevels] ORDER BY z.pos) FROM z)
    INTO nlevels, mm, uu, u_top;
  SELECT * INTO cmp FROM caredata._link_compare_sql(p_model, v, u_top, p_project);
  -- the declared fields of the record, standardised as the sources' are
  FOR f IN SELECT * FROM caredata._link_fields(p_project) LOOP
    f_cols := f_cols || format(', %s AS %I', caredata._link_std_kind(f.kind, format('($9 OPERATOR(pg_catalog.->>) %L)', f.field)), f.field);
    IF f.kind = 'name' THEN
      f_cols := f_cols || format(', %s AS %I', caredata._link_std_kind('name_ph', format('($9 OPERATOR(pg_catalog.->>) %L)', f.field)), f.field || '_ph');
    ELSIF f.kind = 'address' THEN
      f_cols := f_cols || format(', %s AS %I', caredata._link_std_kind('address_num', format('($9 OPERATOR(pg_catalog.->>) %L)', f.field)), f.field || '_num');
    END IF;
    f_cols := f_cols || format(', NULL::double precision AS %I', 'tf_' || f.field);
  END LOOP;
  FOR rule IN SELECT * FROM jsonb_array_elements(spec->'blocking') LOOP
    cand := cand || CASE WHEN cand = '' THEN '' ELSE ' UNION ' END ||
            format('SELECT r.rid FROM %s r, l WHERE %s', rec, caredata._link_rule_condition(rule));
  END LOOP;
  RETURN QUERY EXECUTE format($q$
    WITH l AS MATERIALIZED (
           SELECT 0::bigint AS rid, ''::text AS source, 0::bigint AS record_id, d AS nhs_digits,
                  (d / 10000)::integer AS nhs_head, (d %% 10000)::integer AS nhs_tail, b AS dob, sx AS sex,
                  pc AS postcode, caredata.try_postcode_sector(pc) AS sector, caredata.try_postcode_district(pc) AS district,
                  caredata.try_postcode_area(pc) AS area, extract(year FROM b)::integer AS yob,
                  NULL::double precision AS tf_nhs_digits, NULL::double precision AS tf_dob, NULL::double precision AS tf_postcode,
                  ''::text AS record_key, NULL::jsonb AS fields%5$s
             FROM (SELECT caredata.nhs_number_digits($1) AS d, CASE WHEN caredata.dob_is_valid($2) THEN $2 END AS b,
                          caredata.try_standardise_sex($3) AS sx, caredata.standardise_postcode_any($4) AS pc) s),
         cand AS (%1$s),
         cmp AS (SELECT r.rid%2$s FROM cand JOIN %6$s r USING (rid), l),
         scored AS (SELECT cmp.rid, (caredata.link_pattern_weights(ARRAY[%3$s], $5, $6, $7, $8))[1] + %4$s AS w FROM cmp)
    SELECT p.person_id, caredata.link_probability(max(s.w)), max(s.w)
      FROM scored s JOIN %7$s p USING (rid)
     GROUP BY p.person_id
     ORDER BY max(s.w) DESC, p.person_id
     LIMIT 1$q$, cand, cmp.levels, cmp.pattern, cmp.tf, f_cols, rec, persons)
  USING nhs_number, dob, sex, postcode, nlevels, mm, uu, lam, fields;
END
$$;
COMMENT ON FUNCTION caredata.link_lookup(text, date, text, text, text, integer, jsonb, text) IS
  'match one record (NHS number, date of birth, sex, postcode as they arrive, and the declared fields as {"field": value}) against a project''s person index through the blocking rules'' indexes: the best person, its match probability and weight; no row when no candidate';
