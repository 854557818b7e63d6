-- src/linkage/run.sql
-- link_run(): one linkage run, all or nothing (a failed run leaves the
-- person index as it was).  Phases, each reported as it finishes with its
-- count, seconds and rate (caredata._link_progress(), at the level
-- caredata.link_progress sets): standardise, sample u, block and compare,
-- train (EM), score and choose the threshold, write the links, cluster,
-- write the person index.

-- one progress line: "link_run: <what> <n> <unit> in <s> s (<rate> <unit>/s)<tail>"
CREATE FUNCTION caredata._link_progress(what text, n bigint, unit text, started timestamptz, tail text DEFAULT NULL)
  RETURNS void
  AS 'MODULE_PATHNAME', 'link_progress_report' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION caredata._link_progress(text, bigint, text, timestamptz, text) IS
  'internal: report one phase of link_run() (counts, seconds and rate, never an identifier) as a NOTICE, an INFO or not at all, as caredata.link_progress says';

-- the SELECT that yields candidate pairs: one column per comparison level,
-- the packed pattern and the term-frequency adjustment (uses u, so it is
-- built after u is known)
CREATE FUNCTION caredata._link_pairs_sql(model text, version integer, u_top double precision[], only_new boolean, project text)
  RETURNS text LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  spec jsonb;
  cmp record;
  earlier text[] := '{}';
  rule jsonb;
  pair_cond text;
  body text := '';
  rec text;
BEGIN
  SELECT lm.spec INTO spec FROM caredata.link_model lm
   WHERE lm.project = _link_pairs_sql.project AND lm.model = _link_pairs_sql.model AND lm.version = _link_pairs_sql.version;
  SELECT * INTO cmp FROM caredata._link_compare_sql(model, version, u_top, project);
  rec := caredata._link_record_sql(project);
  pair_cond := caredata._link_pair_condition(spec->>'link_type');
  IF only_new THEN
    -- incremental: pairs with at least one record the person index lacks
    pair_cond := pair_cond || ' AND (l.rid IN (SELECT n.rid FROM pg_temp.link_new n) OR r.rid IN (SELECT n.rid FROM pg_temp.link_new n))';
  END IF;
  FOR rule IN SELECT * FROM jsonb_array_elements(spec->'blocking') LOOP
    body := body || CASE WHEN body = '' THEN '' ELSE ' UNION ALL ' END ||
      format('SELECT l.rid AS rid_l, r.rid AS rid_r%s FROM %s l JOIN %2$s r ON %s WHERE %s%s',
             cmp.levels, rec, caredata._link_rule_condition(rule), pair_cond,
             (SELECT coalesce(string_agg(format(' AND NOT coalesce(%s, false)', e), ''), '') FROM unnest(earlier) e));
    earlier := earlier || caredata._link_rule_condition(rule);
  END LOOP;
  RETURN format('SELECT rid_l, rid_r%s, %s AS pattern, %s AS tf_adj FROM (%s) p',
                cmp.cols, cmp.pattern, cmp.tf, body);
END
$$;
COMMENT ON FUNCTION caredata._link_pairs_sql(text, integer, double precision[], boolean, text) IS
  'internal: the candidate-pair query of a project''s model version (blocking rules unioned without duplicates, comparison levels, pattern, term-frequency adjustment)';

-- the same candidate pairs from the C engine (block.c): NULL when
-- caredata.link_compare_engine is off.  The comparisons are checked as
-- _link_compare_sql() checks them, before the engine runs them.
CREATE FUNCTION caredata._link_engine_sql(model text, version integer, u_top double precision[], only_new boolean, project text,
    into_table text DEFAULT NULL)
  RETURNS text LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  spec jsonb;
  cmp record;
  rules record;
  comps record;
BEGIN
  IF NOT current_setting('caredata.link_compare_engine')::boolean THEN
    RETURN NULL;
  END IF;
  SELECT lm.spec INTO spec FROM caredata.link_model lm
   WHERE lm.project = _link_engine_sql.project AND lm.model = _link_engine_sql.model AND lm.version = _link_engine_sql.version;
  SELECT * INTO cmp FROM caredata._link_compare_sql(model, version, u_top, project);
  -- the rules' columns in order, each with its rule's number
  SELECT array_agg(x.c ORDER BY b.ordinality, x.ordinality) AS cols, array_agg(b.ordinality ORDER BY b.ordinality, x.ordinality) AS rule_of
    INTO rules
    FROM jsonb_array_elements(spec->'blocking') WITH ORDINALITY b, jsonb_array_elements_text(b.value) WITH ORDINALITY x(c, ordinality);
  SELECT array_agg(c.expression ORDER BY c.pos) AS expressions,
         array_agg(CASE WHEN c.tf IS NOT NULL THEN 'tf_' || c.tf END ORDER BY c.pos) AS tf_cols,
         array_agg(c.nlevels ORDER BY c.pos) AS nlevels,
         string_agg(format(', %I smallint', c.name), '' ORDER BY c.pos) AS coldefs
    INTO comps
    FROM caredata._link_comparisons(model, version, project) c;
  IF into_table IS NOT NULL THEN
    -- written straight into the table (with the columns of the result below)
    RETURN format('SELECT * FROM caredata._link_block_compare_into(%L::regclass, %L, %L::text[], %L::integer[], %L::text[], %L::text[], %L::integer[], %L::double precision[], %L, %L)',
      into_table, caredata._link_record_sql(project), rules.cols, rules.rule_of,
      comps.expressions, comps.tf_cols, comps.nlevels, u_top, spec->>'link_type', only_new);
  END IF;
  RETURN format('SELECT rid_l, rid_r%s, pattern, tf_adj FROM caredata._link_block_compare(%L, %L::text[], %L::integer[], %L::text[], %L::text[], %L::integer[], %L::double precision[], %L, %L) AS p(rid_l bigint, rid_r bigint%s, pattern integer, tf_adj double precision)',
    cmp.cols, caredata._link_record_sql(project), rules.cols, rules.rule_of,
    comps.expressions, comps.tf_cols, comps.nlevels, u_top, spec->>'link_type', only_new, comps.coldefs);
END
$$;
COMMENT ON FUNCTION caredata._link_engine_sql(text, integer, double precision[], boolean, text, text) IS
  'internal: the candidate-pair query of a model version through the C engine (_link_block_compare), the same rows as _link_pairs_sql(), or with into_table the statement writing them straight into that temporary table (_link_block_compare_into, returning how many and the pattern histogram); NULL when caredata.link_compare_engine is off';

-- blocking and comparing in memory (src/linkage/block.c)
CREATE FUNCTION caredata._link_block_compare(rec text, rule_cols text[], rule_of integer[], levels text[], tf_cols text[],
    nlevels integer[], u_top double precision[], link_type text, only_new boolean)
  RETURNS SETOF record AS 'MODULE_PATHNAME', 'link_block_compare' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION caredata._link_block_compare(text, text[], integer[], text[], text[], integer[], double precision[], text, boolean) IS
  'internal: the candidate pairs of blocking rules over a record relation, each once under its first rule, with comparison levels, pattern and term-frequency adjustment, computed in memory (at most maintenance_work_mem)';
CREATE FUNCTION caredata._link_block_compare_into(into_table regclass, rec text, rule_cols text[], rule_of integer[], levels text[], tf_cols text[],
    nlevels integer[], u_top double precision[], link_type text, only_new boolean,
    OUT pairs bigint, OUT patterns integer[], OUT counts double precision[])
  AS 'MODULE_PATHNAME', 'link_block_compare_into' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._link_block_compare_into(regclass, text, text[], integer[], text[], text[], integer[], double precision[], text, boolean) IS
  'internal: the rows of _link_block_compare() written straight into a temporary table of this session (its columns: rid_l, rid_r, a smallint a comparison, pattern, tf_adj; no trigger, index, rule, constraint or default); returns how many, and how many had each pattern (NULL arrays past 2^22 possible patterns or when a level lies beyond its labels)';

-- a run's cluster table in memory (src/linkage/cluster_table.c): each
-- record of a project's partition of link_record with its cluster and
-- refusal (link_components) and its person id in the partition of
-- person_index, written straight into a temporary table of the session
CREATE FUNCTION caredata._link_cluster_into(into_table regclass, records regclass, persons regclass,
    links_query text, one_to_one boolean, nhs_query text, OUT records bigint, OUT clusters bigint, OUT refused bigint)
  AS 'MODULE_PATHNAME', 'link_cluster_into' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._link_cluster_into(regclass, regclass, regclass, text, boolean, text) IS
  'internal: writes into a temporary table of this session (rid, source, record_id, record_key, cluster, refused, old_person) for every record of records: its cluster and refusal as link_components(links_query, one_to_one, nhs_query) gives them (its own rid and false outside any link) and its person id in persons; returns how many rows, in how many clusters (rows whose cluster is their own rid) and how many refused; at most maintenance_work_mem';

-- a run's rows of the person index written in C (src/linkage/person_index.c):
-- each record of the run's cluster table with its cluster's person id in
-- the plan, straight into the project's partition (its indexes dropped)
CREATE FUNCTION caredata._link_person_index_into(persons regclass, project text, clusters regclass, plan regclass, run_id bigint)
  RETURNS bigint
  AS 'MODULE_PATHNAME', 'link_person_index_into' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._link_person_index_into(regclass, text, regclass, regclass, bigint) IS
  'internal: writes into a partition of caredata.person_index (with the caller''s INSERT right, no row security, trigger or rule on it or on caredata.person_index, no index or CHECK constraint, never in a read-only transaction; its bound and NOT NULL columns checked) a row (project, source, record_id, rid, person_id, run_id, record_key) for each record of a temporary cluster table whose cluster the temporary plan (kind ''a'') gives a person id; returns how many rows; at most maintenance_work_mem';

-- a probabilistic run's links written in C (src/linkage/pair_rows.c): the
-- candidate pairs at or above the threshold, with their weight and match
-- probability, straight into caredata.link_pair
CREATE FUNCTION caredata._link_pairs_into(cand regclass, run_id bigint, weights double precision[], threshold double precision)
  RETURNS bigint
  AS 'MODULE_PATHNAME', 'link_pairs_into' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._link_pairs_into(regclass, bigint, double precision[], double precision) IS
  'internal: writes into caredata.link_pair (with the caller''s INSERT right, no row security, trigger, rule or CHECK constraint, never in a read-only transaction; its indexes kept, NOT NULL checked) a row (run_id, rid_l, rid_r, pattern, weight, probability) for each candidate pair of a temporary table (rid_l, rid_r, pattern, tf_adj) whose weight link_weight(pattern, tf_adj, weights) is at least the threshold, in the table''s order; returns how many';

-- each cluster's person id, with the merges and splits, in SQL: the rules
-- persons.c (caredata._link_person_plan) follows in memory, and what
-- link_run() uses when that is switched off or does not fit.  An old person
-- goes to the cluster with most of its records (ties: the smallest
-- cluster); a cluster keeps the smallest old id it won, the other ids it
-- won merge into it; clusters with no id get new ones in cluster order.
-- Reads pg_temp.link_cluster (cluster, old_person, rid).
CREATE FUNCTION caredata._link_person_plan_sql(max_person bigint, incremental boolean)
  RETURNS TABLE (kind "char", cluster bigint, person_id bigint, other_person_id bigint, records bigint)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  CREATE TEMP TABLE link_overlap ON COMMIT DROP AS
  SELECT c.cluster, c.old_person AS person_id, count(*) AS n
    FROM pg_temp.link_cluster c WHERE c.old_person IS NOT NULL GROUP BY 1, 2;
  ANALYZE pg_temp.link_overlap;
  CREATE TEMP TABLE link_winner ON COMMIT DROP AS
  SELECT DISTINCT ON (w.person_id) w.person_id, w.cluster, w.n FROM pg_temp.link_overlap w ORDER BY w.person_id, w.n DESC, w.cluster;
  ANALYZE pg_temp.link_winner;
  CREATE TEMP TABLE link_assign ON COMMIT DROP AS
  SELECT DISTINCT ON (w.cluster) w.cluster, w.person_id FROM pg_temp.link_winner w ORDER BY w.cluster, w.person_id;
  ANALYZE pg_temp.link_assign;
  IF incremental THEN
    INSERT INTO pg_temp.link_assign
    SELECT c.cluster, max_person + row_number() OVER (ORDER BY c.cluster)
      FROM (SELECT DISTINCT x.cluster FROM pg_temp.link_cluster x) c
     WHERE NOT EXISTS (SELECT 1 FROM pg_temp.link_assign a WHERE a.cluster = c.cluster);
  ELSE
    -- each cluster once without grouping: by the record naming it
    INSERT INTO pg_temp.link_assign
    SELECT c.cluster, max_person + row_number() OVER (ORDER BY c.cluster)
      FROM pg_temp.link_cluster c
     WHERE c.cluster = c.rid AND NOT EXISTS (SELECT 1 FROM pg_temp.link_assign a WHERE a.cluster = c.cluster);
  END IF;
  ANALYZE pg_temp.link_assign;
  RETURN QUERY
  SELECT 'a'::"char", a.cluster, a.person_id, NULL::bigint, NULL::bigint FROM pg_temp.link_assign a
  UNION ALL
  SELECT 'm'::"char", w.cluster, a.person_id, w.person_id, w.n
    FROM pg_temp.link_winner w JOIN pg_temp.link_assign a USING (cluster)
   WHERE w.person_id <> a.person_id
  UNION ALL
  SELECT 's'::"char", o.cluster, o.person_id, a.person_id, o.n
    FROM pg_temp.link_overlap o
    JOIN pg_temp.link_winner w ON w.person_id = o.person_id AND w.cluster <> o.cluster
    JOIN pg_temp.link_assign a ON a.cluster = o.cluster
   WHERE a.person_id > max_person;
  DROP TABLE pg_temp.link_overlap;
  DROP TABLE pg_temp.link_winner;
  DROP TABLE pg_temp.link_assign;
END
$$;
COMMENT ON FUNCTION caredata._link_person_plan_sql(bigint, boolean) IS
  'internal: each cluster''s stable person id (a), with the merges (m) and splits (s) of person ids, from pg_temp.link_cluster, in SQL; the rules caredata._link_person_plan() follows in memory';

-- the same rows in memory (src/linkage/persons.c)
CREATE FUNCTION caredata._link_person_plan(clusters regclass, max_person bigint)
  RETURNS TABLE (kind "char", cluster bigint, person_id bigint, other_person_id bigint, records bigint)
  AS 'MODULE_PATHNAME', 'link_person_plan' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._link_person_plan(regclass, bigint) IS
  'internal: each cluster''s stable person id (a), with the merges (m) and splits (s) of person ids, from a run''s temporary cluster table (cluster, old_person), computed in memory (at most maintenance_work_mem); the same rows as caredata._link_person_plan_sql()';

CREATE FUNCTION caredata.link_run(model text DEFAULT 'default', version integer DEFAULT NULL,
    method text DEFAULT 'probabilistic', threshold double precision DEFAULT NULL,
    train boolean DEFAULT NULL, incremental boolean DEFAULT false, one_to_one boolean DEFAULT false,
    sources text[] DEFAULT NULL, project text DEFAULT 'default')
  RETURNS TABLE (run_id bigint, model_version integer, records bigint, candidate_pairs bigint,
                 links bigint, persons bigint, match_threshold double precision, seconds numeric)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  p_model text := model;
  p_version integer := version;
  p_method text := method;
  p_threshold double precision := threshold;
  p_train boolean := train;
  p_incremental boolean := incremental;
  p_one_to_one boolean := one_to_one;
  p_sources text[] := sources;
  p_project text := caredata._link_check_project(project);
  t0 timestamptz := clock_timestamp();
  t timestamptz;
  lm record;
  spec jsonb;
  v_run bigint;
  v_prev_run bigint;
  v_records bigint;
  v_pairs bigint;
  v_links bigint;
  v_persons bigint;
  v_trained boolean;
  v_do_train boolean;
  nlevels integer[];
  v_u double precision[] := '{}';
  v_u_top double precision[] := '{}';
  v_m double precision[] := '{}';
  comps record;
  k integer;
  sample_n bigint;
  counts bigint[];
  all_counts bigint[];
  total_pairs double precision;
  hist_p integer[];
  hist_n double precision[];
  em record;
  v_lambda double precision;
  w_threshold double precision;
  steps text := '';
  step text;
  work_table text;
  i integer;
  v_stats jsonb := '{}';
  max_person bigint;
  v_plan_in_memory boolean := current_setting('caredata.link_compare_engine')::boolean;
  v_cluster_in_memory boolean := current_setting('caredata.link_compare_engine')::boolean;
  v_rows_in_memory boolean := current_setting('caredata.link_compare_engine')::boolean;
  v_links_query text;
  v_sample_from text;
  v_clusters bigint;
  v_refused bigint;
  v_cluster_analyzed boolean := false;
  v_error text;
  v_cut bigint;
  v_pool_ok boolean;
  v_nhs_query text;
  rule_pairs record;
  blocked numeric := 0;
  saved_mergejoin text;
  saved_hashjoin text;
  v_w double precision[];
  v_keep_apart boolean;
  v_nhs_confirm text;
  engine_sql text;
BEGIN
  IF p_method IS NULL OR p_method NOT IN ('probabilistic', 'deterministic') THEN
    PERFORM caredata._link_bad('method must be probabilistic or deterministic', 'Leave it out for probabilistic linkage.');
  END IF;
  IF p_threshold IS NOT NULL AND NOT (p_threshold > 0 AND p_threshold < 1) THEN
    PERFORM caredata._link_bad('threshold is a match probability strictly between 0 and 1', 'Leave it NULL to choose it from the model (label-free).');
  END IF;
  -- one run at a time; lookups wait for the run to finish
  LOCK TABLE caredata.link_record_key IN EXCLUSIVE MODE;

  SELECT * INTO lm FROM caredata.link_model x
   WHERE x.project = p_project AND x.model = p_model AND (p_version IS NULL OR x.version = p_version)
   ORDER BY x.version DESC LIMIT 1;
  IF NOT FOUND THEN
    PERFORM caredata._link_bad(CASE WHEN p_version IS NULL THEN format('linkage model "%s" does not exist', p_model)
                                    ELSE format('linkage model "%s" version %s does not exist', p_model, p_version) END,
                               'See caredata.link_model, or create one with caredata.link_create_model().', '42704');
  END IF;
  spec := lm.spec;
  -- models made before the key existed keep NHS numbers apart too
  v_keep_apart := coalesce((spec->>'keep_nhs_apart')::boolean, true);
  -- and confirm a number only through a link (the rule before "nhs_confirm")
  v_nhs_confirm := coalesce(spec->>'nhs_confirm', 'link');
  v_trained := lm.lambda IS NOT NULL;
  v_do_train := p_method = 'probabilistic' AND coalesce(p_train, NOT v_trained);
  IF p_method = 'probabilistic' AND NOT v_do_train AND NOT v_trained THEN
    PERFORM caredata._link_bad(format('linkage model "%s" version %s is not trained', p_model, lm.version),
                               'Run with train => true, or name a trained version.', '55000');
  END IF;
  IF p_method = 'probabilistic' AND NOT v_do_train AND
     EXISTS (SELECT 1 FROM caredata.link_model_level x WHERE x.project = p_project AND x.model = lm.model AND x.version = lm.version AND (x.m IS NULL OR x.u IS NULL)) THEN
    PERFORM caredata._link_bad(format('linkage model "%s" version %s has levels without m or u', p_model, lm.version),
                               'Set every level''s m and u in caredata.link_model_level, or train the model.', '55000');
  END IF;
  IF p_one_to_one AND spec->>'link_type' <> 'link_only' THEN
    PERFORM caredata._link_bad('one_to_one needs a model whose link_type is link_only', 'Create a model with {"link_type": "link_only"} to link two sources one to one.');
  END IF;

  SELECT coalesce(max(x.run_id), 0) + 1 INTO v_run FROM caredata.link_run x;
  -- the run that wrote the person index, which an incremental run keeps
  -- the links of (a scan of the index: only for such a run)
  IF p_incremental THEN
    SELECT max(x.run_id) INTO v_prev_run FROM caredata.person_index x WHERE x.project = p_project;
  END IF;
  IF p_incremental AND v_prev_run IS NULL THEN
    RAISE NOTICE 'link: no person index yet, so this incremental run links everything';
    p_incremental := false;
  END IF;
  INSERT INTO caredata.link_run (run_id, model, version, method, incremental, one_to_one, started_at, project)
  VALUES (v_run, lm.model, lm.version, p_method, p_incremental, p_one_to_one, t0, p_project);

  -- 1. standardise
  t := clock_timestamp();
  v_records := caredata.link_standardise(p_sources, v_run, p_project);
  v_stats := v_stats || jsonb_build_object('records', v_records, 'standardise_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3))
                     || (SELECT jsonb_build_object('source_records', x.stats->'source_records') FROM caredata.link_run x WHERE x.run_id = v_run);
  PERFORM caredata._link_progress('standardised', v_records, 'records', t,
    format(' from %s source%s', (SELECT count(*) FROM caredata.link_source ls WHERE ls.project = p_project AND (p_sources IS NULL OR ls.source = ANY (p_sources))),
           CASE WHEN (SELECT count(*) FROM caredata.link_source ls WHERE ls.project = p_project AND (p_sources IS NULL OR ls.source = ANY (p_sources))) = 1 THEN '' ELSE 's' END));
  IF p_incremental THEN
    CREATE TEMP TABLE link_new ON COMMIT DROP AS
    SELECT r.rid FROM caredata.link_record r
     WHERE r.project = p_project AND NOT EXISTS (SELECT 1 FROM caredata.person_index p WHERE p.project = p_project AND p.rid = r.rid);
    ALTER TABLE pg_temp.link_new ADD PRIMARY KEY (rid);
    ANALYZE pg_temp.link_new;
    v_stats := v_stats || jsonb_build_object('new_records', (SELECT count(*) FROM pg_temp.link_new));
    PERFORM caredata._link_progress(NULL, (v_stats->>'new_records')::bigint, 'records new since the last run', NULL);
  END IF;

  -- refuse a blocking rule (or all together) past max_pairs before
  -- comparing anything, by the planner's estimate (statistics are fresh)
  FOR rule_pairs IN SELECT b.ordinality AS rule, b.value AS columns,
                           caredata._link_estimate_pairs(b.value, spec->>'link_type', p_project) AS pairs
                      FROM jsonb_array_elements(spec->'blocking') WITH ORDINALITY b LOOP
    blocked := blocked + rule_pairs.pairs;
    IF rule_pairs.pairs > (spec->>'max_pairs')::numeric THEN
      PERFORM caredata._link_bad(format('blocking rule %s (%s) would generate about %s pairs, more than max_pairs (%s)',
                                        rule_pairs.rule, (SELECT string_agg(c, ', ') FROM jsonb_array_elements_text(rule_pairs.columns) c),
                                        round(rule_pairs.pairs), spec->>'max_pairs'),
                                 'Make the rule stricter (add a column), or raise "max_pairs" in a new model version; caredata.link_blocking_counts() gives exact counts.', '54000');
    END IF;
  END LOOP;
  IF blocked > (spec->>'max_pairs')::numeric * 2 THEN
    PERFORM caredata._link_bad(format('the blocking rules together would generate about %s pairs, more than twice max_pairs (%s)', round(blocked), spec->>'max_pairs'),
                               'Make the rules stricter, or raise "max_pairs" in a new model version.', '54000');
  END IF;

  SELECT array_agg(c.nlevels ORDER BY c.pos) INTO nlevels FROM caredata._link_comparisons(lm.model, lm.version, p_project) c;
  -- the longest phase is announced before it starts
  PERFORM caredata._link_progress('blocking rules give about', round(blocked)::bigint, 'candidate pairs', NULL,
    format(' (the planner''s estimate over %s rule%s)', jsonb_array_length(spec->'blocking'),
           CASE WHEN jsonb_array_length(spec->'blocking') = 1 THEN '' ELSE 's' END));

  -- 2. u: level frequencies over a seeded random sample of pairs
  IF v_do_train THEN
    t := clock_timestamp();
    k := ceil(sqrt((spec->>'u_sample_pairs')::double precision))::integer;
    -- each side of the sample is the k records with the lowest seeded hash
    -- of their rid.  Both sides' candidates come from one pass: the records
    -- whose hash falls in the lowest 3k/records of its range for either
    -- seed (about 3k a side); each side's k lowest among them are the k
    -- lowest of all whenever at least k of them fall there for its seed,
    -- and otherwise (never in practice) the records are read whole.  Two
    -- sorted passes over 2.5M records took 0.56 s, this one 0.1 s
    v_sample_from := caredata._link_record_sql(p_project);
    IF 3.0 * k < v_records THEN
      v_cut := (-9223372036854775808::numeric + floor(3.0 * k / v_records * 18446744073709551616::numeric))::bigint;
      EXECUTE format($q$
        CREATE TEMP TABLE link_upool ON COMMIT DROP AS
        SELECT * FROM %1$s x WHERE hashint8extended(x.rid, %2$s) < %3$s OR hashint8extended(x.rid, %2$s + 1) < %3$s$q$,
        v_sample_from, (spec->>'seed')::bigint, v_cut);
      EXECUTE format('SELECT count(*) FILTER (WHERE hashint8extended(x.rid, %1$s) < %2$s) >= %3$s
                         AND count(*) FILTER (WHERE hashint8extended(x.rid, %1$s + 1) < %2$s) >= %3$s FROM pg_temp.link_upool x',
                     (spec->>'seed')::bigint, v_cut, k) INTO v_pool_ok;
      IF v_pool_ok THEN
        v_sample_from := 'pg_temp.link_upool';
      END IF;
    END IF;
    EXECUTE format($q$
      CREATE TEMP TABLE link_usample ON COMMIT DROP AS
      SELECT %s
        FROM (SELECT * FROM %5$s x ORDER BY hashint8extended(rid, %2$s), rid LIMIT %3$s) l
       CROSS JOIN (SELECT * FROM %5$s x ORDER BY hashint8extended(rid, %2$s + 1), rid LIMIT %3$s) r
       WHERE l.rid <> r.rid%4$s$q$,
      (SELECT string_agg(format('(%s)::smallint AS %I', c.expression, c.name), ', ' ORDER BY c.pos)
         FROM caredata._link_comparisons(lm.model, lm.version, p_project) c,
              -- checked again as built: the spec is a row the linker may have written directly
              LATERAL caredata._link_check_expression(c.name, c.expression, caredata._link_record_sql(p_project)) ok),
      (spec->>'seed')::bigint, k,
      CASE spec->>'link_type' WHEN 'link_only' THEN ' AND l.source <> r.source'
                              WHEN 'dedupe_only' THEN ' AND l.source = r.source' ELSE '' END,
      v_sample_from);
    GET DIAGNOSTICS sample_n = ROW_COUNT;
    IF to_regclass('pg_temp.link_upool') IS NOT NULL THEN
      DROP TABLE pg_temp.link_upool;
    END IF;
    IF sample_n = 0 THEN
      PERFORM caredata._link_bad('no pairs to estimate u from', 'Link at least two records (two sources for link_only).', '22023');
    END IF;
    -- every comparison's level counts in one pass over the sample (one
    -- grouping a comparison read it once each: 0.7 s at a million people)
    EXECUTE 'SELECT ARRAY[' ||
            (SELECT string_agg(format('count(*) FILTER (WHERE %I = %s)', c.name, lv), ', ' ORDER BY c.pos, lv)
               FROM caredata._link_comparisons(lm.model, lm.version, p_project) c, generate_series(0, c.nlevels - 1) lv) ||
            ']::bigint[] FROM pg_temp.link_usample'
      INTO all_counts;
    i := 0;
    FOR comps IN SELECT * FROM caredata._link_comparisons(lm.model, lm.version, p_project) ORDER BY pos LOOP
      counts := all_counts[i + 1 : i + comps.nlevels];
      i := i + comps.nlevels;
      -- a level never seen in the sample gets 1/sample (not 0: weights stay finite)
      v_u := v_u || ARRAY(SELECT greatest(c, 1)::double precision / sample_n FROM unnest(counts) c);
      v_u_top := v_u_top || (greatest(counts[comps.nlevels], 1)::double precision / sample_n);
      v_m := v_m || coalesce(comps.m_start,
                         ARRAY(SELECT CASE WHEN lv = comps.nlevels - 1 THEN 0.85 WHEN lv = 0 THEN 0.05 ELSE 0.10 / (comps.nlevels - 2) END
                                 FROM generate_series(0, comps.nlevels - 1) lv));
    END LOOP;
    DROP TABLE pg_temp.link_usample;
    v_stats := v_stats || jsonb_build_object('u_sample_pairs', sample_n, 'u_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
    PERFORM caredata._link_progress('estimated u from', sample_n, 'random pairs', t);
  ELSIF p_method = 'probabilistic' THEN
    SELECT array_agg(x ORDER BY c.pos, o) INTO v_u
      FROM caredata._link_comparisons(lm.model, lm.version, p_project) c, unnest(c.u) WITH ORDINALITY AS z(x, o);
    SELECT array_agg(c.u[c.nlevels] ORDER BY c.pos) INTO v_u_top FROM caredata._link_comparisons(lm.model, lm.version, p_project) c;
  END IF;

  -- 3. block and compare.  Each rule is a self-join on equal keys: a hash
  -- join (bounded by work_mem x hash_mem_multiplier, in batches past it)
  -- builds one side once, where a merge join sorts both sides of the same
  -- table (measured at 1M people: 7.3 s against 11.3 s)
  t := clock_timestamp();
  -- in C in memory (block.c), unless switched off or the records' compared
  -- columns do not fit maintenance_work_mem: then as SQL joins
  engine_sql := caredata._link_engine_sql(lm.model, lm.version, CASE WHEN p_method = 'probabilistic' THEN v_u_top END, p_incremental, p_project,
                                          'pg_temp.link_cand');
  -- about 210 bytes a record at the engine's peak (the default model's
  -- columns): not even tried when that is past maintenance_work_mem
  IF engine_sql IS NOT NULL AND v_records * 210 > pg_size_bytes(current_setting('maintenance_work_mem')) THEN
    engine_sql := NULL;
    v_stats := v_stats || jsonb_build_object('compare_engine', 'sql: maintenance_work_mem');
  END IF;
  IF engine_sql IS NOT NULL THEN
    BEGIN
      -- the pairs written straight into their table (no tuplestore between)
      EXECUTE format('CREATE TEMP TABLE link_cand (rid_l bigint, rid_r bigint%s, pattern integer, tf_adj double precision) ON COMMIT DROP',
                     (SELECT string_agg(format(', %I smallint', c.name), '' ORDER BY c.pos)
                        FROM caredata._link_comparisons(lm.model, lm.version, p_project) c));
      EXECUTE engine_sql INTO v_pairs, hist_p, hist_n;
      v_stats := v_stats || jsonb_build_object('compare_engine', 'c');
    EXCEPTION WHEN program_limit_exceeded THEN
      engine_sql := NULL;
      v_stats := v_stats || jsonb_build_object('compare_engine', 'sql: maintenance_work_mem');
    END;
  END IF;
  IF engine_sql IS NULL THEN
    saved_mergejoin := current_setting('enable_mergejoin');
    PERFORM set_config('enable_mergejoin', 'off', true);
    EXECUTE 'CREATE TEMP TABLE link_cand ON COMMIT DROP AS ' ||
            caredata._link_pairs_sql(lm.model, lm.version, CASE WHEN p_method = 'probabilistic' THEN v_u_top END, p_incremental, p_project);
    GET DIAGNOSTICS v_pairs = ROW_COUNT;
    PERFORM set_config('enable_mergejoin', saved_mergejoin, true);
    IF NOT v_stats ? 'compare_engine' THEN
      v_stats := v_stats || jsonb_build_object('compare_engine', 'sql');
    END IF;
  END IF;
  ANALYZE pg_temp.link_cand;
  v_stats := v_stats || jsonb_build_object('candidate_pairs', v_pairs, 'compare_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
  PERFORM caredata._link_progress('compared', v_pairs, 'candidate pairs', t);

  IF p_method = 'probabilistic' THEN
    -- the pattern histogram: counted by the engine as it wrote the pairs,
    -- else read from them
    IF hist_p IS NULL THEN
      SELECT array_agg(pattern ORDER BY pattern), array_agg(n::double precision ORDER BY pattern)
        INTO hist_p, hist_n
        FROM (SELECT pattern, count(*) AS n FROM pg_temp.link_cand GROUP BY pattern) h;
    END IF;
    hist_p := coalesce(hist_p, '{}'); hist_n := coalesce(hist_n, '{}');
    -- 4. train: EM on the pattern histogram, u fixed
    IF v_do_train THEN
      t := clock_timestamp();
      IF v_pairs = 0 THEN
        PERFORM caredata._link_bad('the blocking rules produced no candidate pairs to train on', 'Check the sources and the blocking rules (caredata.link_blocking_counts()).', '22023');
      END IF;
      SELECT CASE spec->>'link_type'
               WHEN 'link_only' THEN (sum(n)^2 - sum(n^2)) / 2
               WHEN 'dedupe_only' THEN (sum(n^2) - sum(n)) / 2
               ELSE sum(n) * (sum(n) - 1) / 2 END
        INTO total_pairs
        FROM (SELECT c.value::double precision AS n FROM jsonb_each_text(v_stats->'source_records') c) s;
      SELECT * INTO em FROM caredata.link_em(hist_p, hist_n, nlevels, v_u, v_m, greatest(total_pairs, 1),
                                              (spec->>'em_max_iterations')::integer, (spec->>'em_tolerance')::double precision);
      v_m := em.m;
      v_lambda := em.lambda;
      -- the trained model is a new version
      INSERT INTO caredata.link_model (project, model, version, spec, lambda, trained_at, trained_by, training)
      SELECT p_project, lm.model, max(x.version) + 1, lm.spec, v_lambda, clock_timestamp(), current_user,
             jsonb_build_object('run_id', v_run, 'from_version', lm.version, 'iterations', em.iterations, 'converged', em.converged,
                                'candidate_pairs', v_pairs, 'patterns', cardinality(hist_p), 'u_sample_pairs', sample_n,
                                'total_pairs', total_pairs)
        FROM caredata.link_model x WHERE x.project = p_project AND x.model = lm.model
      RETURNING * INTO lm;
      INSERT INTO caredata.link_model_level (project, model, version, comparison, position, level, label, m, u)
      SELECT p_project, lm.model, lm.version, c.name, c.pos, lv, c.labels[lv + 1], v_m[c.offs + lv + 1], v_u[c.offs + lv + 1]
        FROM (SELECT *, sum(nlevels) OVER (ORDER BY pos) - nlevels AS offs
                FROM caredata._link_comparisons(lm.model, lm.version, p_project)) c,
             generate_series(0, c.nlevels - 1) lv;
      UPDATE caredata.link_run x SET version = lm.version WHERE x.run_id = v_run;
      v_stats := v_stats || jsonb_build_object('em_iterations', em.iterations, 'em_converged', em.converged, 'lambda', v_lambda,
                                           'train_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
      PERFORM caredata._link_progress('trained by EM over', cardinality(hist_p), 'patterns', t,
        format(': version %s, %s iterations%s', lm.version, em.iterations, CASE WHEN em.converged THEN '' ELSE ', not converged' END));
    ELSE
      v_lambda := lm.lambda;
      SELECT array_agg(x ORDER BY c.pos, o) INTO v_m
        FROM caredata._link_comparisons(lm.model, lm.version, p_project) c, unnest(c.m) WITH ORDINALITY AS z(x, o);
    END IF;

    -- 5. score: each pair's weight is its pattern's weight (a dense array
    -- indexed by pattern, read by link_weight() in C) plus its
    -- term-frequency adjustment, computed where it is read, never stored.
    -- The threshold comes from the model's own expected precision and
    -- recall (link_threshold(), in C: the cut with the highest expected F1).
    t := clock_timestamp();
    k := 1;
    FOR i IN 1 .. cardinality(nlevels) LOOP
      k := k * nlevels[i];
    END LOOP;
    SELECT caredata.link_pattern_weights(array_agg(p ORDER BY p), nlevels, v_m, v_u, v_lambda) INTO v_w
      FROM generate_series(0, k - 1) p;
    IF p_threshold IS NULL THEN
      EXECUTE 'SELECT caredata.link_threshold(caredata.link_weight(pattern, tf_adj, $1)) FROM pg_temp.link_cand'
        INTO w_threshold USING v_w;
      w_threshold := coalesce(w_threshold, 0);
      p_threshold := caredata.link_probability(w_threshold);
    ELSE
      w_threshold := ln(p_threshold / (1 - p_threshold)) / ln(2);
    END IF;
    v_stats := v_stats || jsonb_build_object('threshold_weight', w_threshold, 'threshold_probability', p_threshold,
                                         'score_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
    PERFORM caredata._link_progress('scored', v_pairs, 'pairs', t,
      format(': threshold match weight %s (probability %s)', round(w_threshold::numeric, 2), round(p_threshold::numeric, 4)));
    -- 6. write the links
    t := clock_timestamp();
    IF current_setting('caredata.link_compare_engine')::boolean THEN
      -- in C (pair_rows.c: the same rows in the same order, written in
      -- batches with the BRIN index kept after each; 3.0 s in SQL at 1M
      -- people, of which the executor and a heap insert a row about a third)
      v_links := caredata._link_pairs_into('pg_temp.link_cand'::regclass, v_run, v_w, w_threshold);
    ELSE
      EXECUTE $q$
        INSERT INTO caredata.link_pair (run_id, rid_l, rid_r, pattern, weight, probability)
        SELECT $1, s.rid_l, s.rid_r, s.pattern, s.weight, caredata.link_probability(s.weight)
          FROM (SELECT c.rid_l, c.rid_r, c.pattern, caredata.link_weight(c.pattern, c.tf_adj, $2) AS weight
                  FROM pg_temp.link_cand c) s
         WHERE s.weight >= $3$q$
        USING v_run, v_w, w_threshold;
      GET DIAGNOSTICS v_links = ROW_COUNT;
    END IF;
    v_stats := v_stats || jsonb_build_object('write_links_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
    PERFORM caredata._link_progress('wrote', v_links, 'links', t);
  ELSE
    -- deterministic: the first step a pair meets makes the link
    t := clock_timestamp();
    i := 0;
    FOR step IN SELECT * FROM jsonb_array_elements_text(spec->'steps') LOOP
      i := i + 1;
      -- as checked (the spec may have been written directly): parenthesised,
      -- over the levels only
      PERFORM caredata._link_check_step(step, ARRAY(SELECT c.name FROM caredata._link_comparisons(lm.model, lm.version, p_project) c));
      steps := steps || format(' WHEN (%s) THEN %s', step, i);
    END LOOP;
    IF i = 0 THEN
      PERFORM caredata._link_bad('the model has no deterministic steps', 'Set "steps" in the model spec.', '55000');
    END IF;
    EXECUTE format('INSERT INTO caredata.link_pair (run_id, rid_l, rid_r, pattern, step)
                    SELECT %s, rid_l, rid_r, pattern, step FROM (SELECT rid_l, rid_r, pattern, CASE%s END AS step FROM pg_temp.link_cand) c
                     WHERE step IS NOT NULL', v_run, steps);
    GET DIAGNOSTICS v_links = ROW_COUNT;
    p_threshold := NULL;
    v_stats := v_stats || jsonb_build_object('steps', (SELECT jsonb_object_agg(s, n) FROM (SELECT step AS s, count(*) AS n FROM caredata.link_pair x WHERE x.run_id = v_run GROUP BY step) z),
                                         'score_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
    PERFORM caredata._link_progress('applied ' || i || ' deterministic steps to', v_pairs, 'pairs', t,
      format(': %s links', to_char(v_links, 'FM999,999,999,999,990')));
  END IF;

  -- an incremental run keeps the previous run's links between records still
  -- present (none is among this run's: each of those has a new record)
  IF p_incremental THEN
    INSERT INTO caredata.link_pair (run_id, rid_l, rid_r, pattern, weight, probability, step)
    SELECT v_run, x.rid_l, x.rid_r, x.pattern, x.weight, x.probability, x.step
      FROM caredata.link_pair x
     WHERE x.run_id = v_prev_run
       AND EXISTS (SELECT 1 FROM caredata.link_record a WHERE a.project = p_project AND a.rid = x.rid_l)
       AND EXISTS (SELECT 1 FROM caredata.link_record b WHERE b.project = p_project AND b.rid = x.rid_r);
  END IF;

  -- 7. cluster
  t := clock_timestamp();
  -- the run's links in weight order (weight descending, step, record ids:
  -- link_components sorts links that carry their weight and step in
  -- memory, where an ORDER BY here spilled 3.6 M links to disk)
  v_links_query := format('SELECT rid_l, rid_r%s FROM caredata.link_pair WHERE run_id = %s',
                          CASE WHEN p_one_to_one OR v_keep_apart THEN ', weight, step' ELSE '' END, v_run);
  v_nhs_query := CASE WHEN v_keep_apart AND v_nhs_confirm = 'details' THEN
                   -- a number is confirmed on its own unless two records carrying
                   -- it disagree on the date of birth or on a known sex (a
                   -- household member's number on someone else's record):
                   -- link_components groups the records by number itself (a
                   -- grouping here spilled to disk and was joined back)
                   format('SELECT rid, nhs_digits, dob, CASE WHEN caredata.compare_sex(sex, sex) = 2 THEN sex END
                      FROM %s WHERE nhs_digits IS NOT NULL', caredata._link_partition('caredata.link_record', p_project))
                 WHEN v_keep_apart THEN format('SELECT rid, nhs_digits FROM %s WHERE nhs_digits IS NOT NULL',
                                               caredata._link_partition('caredata.link_record', p_project)) END;
  -- each record with its cluster and its person id in the index so far
  -- (the project's partitions): written in C (cluster_table.c: the person
  -- index read into memory once, the records once in heap order, the rows
  -- written in batches; 5.3 s in SQL at 1M people, of which the joins and
  -- the components' sort 2-3 s), unless switched off or past
  -- maintenance_work_mem
  IF v_cluster_in_memory THEN
    BEGIN
      CREATE TEMP TABLE link_cluster (rid bigint, source text COLLATE "C", record_id bigint, record_key text COLLATE "C",
                                      cluster bigint, refused boolean, old_person bigint) ON COMMIT DROP;
      SELECT x.clusters, x.refused INTO v_clusters, v_refused
        FROM caredata._link_cluster_into('pg_temp.link_cluster'::regclass,
                                         caredata._link_partition('caredata.link_record', p_project)::regclass,
                                         caredata._link_partition('caredata.person_index', p_project)::regclass,
                                         v_links_query, p_one_to_one, v_nhs_query) x;
    EXCEPTION WHEN program_limit_exceeded THEN
      -- only the person index past the memory: clustering past it fails
      -- the same way in SQL (link_components), so that error stands
      GET STACKED DIAGNOSTICS v_error = MESSAGE_TEXT;
      IF v_error NOT LIKE 'reading the person index into memory %' THEN
        RAISE;
      END IF;
      v_cluster_in_memory := false;
    END;
  END IF;
  IF NOT v_cluster_in_memory THEN
    -- in SQL: the project's partitions, not the parents (a partitioned
    -- parent has no statistics, and the planner then probes the person
    -- index once per record instead of hashing it).  Merge joins in rid
    -- order, both tables by their rid index and the components sorted: the
    -- planner's other choice, hashing the person index (in two batches at
    -- 1M people), took 5.6-5.9 s against 5.1-5.3 s, and it switched between
    -- the two as the statistics of the index changed from run to run
    saved_hashjoin := current_setting('enable_hashjoin');
    PERFORM set_config('enable_hashjoin', 'off', true);
    EXECUTE format($q$
      CREATE TEMP TABLE link_cluster ON COMMIT DROP AS
      SELECT r.rid, r.source, r.record_id, r.record_key, coalesce(c.cluster, r.rid) AS cluster, coalesce(c.refused, false) AS refused,
             p.person_id AS old_person
        FROM %s r
        LEFT JOIN %s p ON p.rid = r.rid
        LEFT JOIN caredata.link_components($1, $2, $3) c ON c.rid = r.rid$q$,
      caredata._link_partition('caredata.link_record', p_project), caredata._link_partition('caredata.person_index', p_project))
    USING v_links_query, p_one_to_one, v_nhs_query;
    PERFORM set_config('enable_hashjoin', saved_hashjoin, true);
  END IF;
  -- keep only the links clustering accepted (one to one; NHS numbers kept
  -- apart): both records of a refused link are marked, a few thousand at
  -- 1M people, so the run's links are hashed against those alone (joined
  -- to the whole unanalysed cluster table, the planner sorted it: 4.4 s)
  k := 0;
  IF v_refused IS NULL OR v_refused > 0 THEN
    CREATE TEMP TABLE link_refused ON COMMIT DROP AS
    SELECT x.rid, x.cluster FROM pg_temp.link_cluster x WHERE x.refused;
    GET DIAGNOSTICS k = ROW_COUNT;
  END IF;
  IF k > 0 THEN
    ANALYZE pg_temp.link_refused;
    IF k <= 50000 THEN
      -- both ends tested against the refused records as the links are
      -- read (hashed subplans, within work_mem at this size: NOT NOT IN is
      -- never made a join), whatever the plan: sure of a handful of this
      -- run's links (the BRIN index's estimate), the planner hashed all
      -- 3.6M of them to join them (1.0 s against 0.3 s)
      DELETE FROM caredata.link_pair x USING pg_temp.link_refused a, pg_temp.link_refused b
       WHERE x.run_id = v_run
         AND NOT (x.rid_l NOT IN (SELECT r.rid FROM pg_temp.link_refused r))
         AND NOT (x.rid_r NOT IN (SELECT r.rid FROM pg_temp.link_refused r))
         AND a.rid = x.rid_l AND b.rid = x.rid_r AND a.cluster <> b.cluster;
    ELSE
      DELETE FROM caredata.link_pair x USING pg_temp.link_refused a, pg_temp.link_refused b
       WHERE x.run_id = v_run AND a.rid = x.rid_l AND b.rid = x.rid_r AND a.cluster <> b.cluster;
    END IF;
    GET DIAGNOSTICS k = ROW_COUNT;
    v_links := v_links - k;
    v_stats := v_stats || jsonb_build_object('links_refused', k);
  END IF;
  -- incremental: new records go to the existing person they link to best;
  -- two existing persons merge only on direct evidence (merge.sql)
  IF p_incremental THEN
    v_stats := v_stats || caredata._link_incremental_merge(v_run, lm.model, lm.version, p_method, p_threshold, p_project);
    v_links := v_links + (v_stats->>'links_added')::bigint - (v_stats->>'links_dropped')::bigint;
  END IF;
  -- its statistics, so that SQL's groupings and joins of it (the person
  -- plan and rows, where not in C) are planned for millions of rows (hash
  -- joins, not sorts of both sides spilled to disk); not before the
  -- deletion of refused links above, which the planner, then sure of a
  -- handful of this run's links (the BRIN index's estimate), would join to
  -- it by a nested loop
  IF p_incremental OR NOT v_cluster_in_memory OR NOT v_plan_in_memory OR NOT v_rows_in_memory THEN
    ANALYZE pg_temp.link_cluster;
    v_cluster_analyzed := true;
  END IF;
  IF p_incremental THEN
    SELECT count(DISTINCT cluster) INTO v_persons FROM pg_temp.link_cluster;
  ELSIF v_clusters IS NOT NULL THEN
    -- counted as the cluster table was written
    v_persons := v_clusters;
  ELSE
    -- a cluster is named by its smallest record id, one of its own records
    SELECT count(*) INTO v_persons FROM pg_temp.link_cluster c WHERE c.cluster = c.rid;
  END IF;
  v_stats := v_stats || jsonb_build_object('cluster_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
  PERFORM caredata._link_progress('clustered', v_records, 'records', t,
    format(' into %s persons%s', to_char(v_persons, 'FM999,999,999,999,990'),
           CASE WHEN v_stats ? 'links_refused' THEN format(' (%s links refused)', to_char((v_stats->>'links_refused')::bigint, 'FM999,999,999,999,990')) ELSE '' END));

  -- 8. person index with stable ids: an old person goes to the cluster with
  -- most of its records; a cluster keeps the smallest old id it won, the
  -- other ids it won merge into it; clusters with no id get new ones
  t := clock_timestamp();
  SELECT greatest(coalesce(max((x.stats->>'max_person_id')::bigint), 0),
                  coalesce((SELECT max(p.person_id) FROM caredata.person_index p WHERE p.project = p_project), 0))
    INTO max_person FROM caredata.link_run x WHERE x.project = p_project;
  -- each cluster's person id, and the merges and splits: in memory in C
  -- (persons.c), unless switched off or past maintenance_work_mem
  IF v_plan_in_memory THEN
    BEGIN
      CREATE TEMP TABLE link_plan ON COMMIT DROP AS
      SELECT * FROM caredata._link_person_plan('pg_temp.link_cluster'::regclass, max_person);
    EXCEPTION WHEN program_limit_exceeded THEN
      v_plan_in_memory := false;
    END;
  END IF;
  IF NOT v_plan_in_memory THEN
    IF NOT v_cluster_analyzed THEN
      ANALYZE pg_temp.link_cluster;
      v_cluster_analyzed := true;
    END IF;
    CREATE TEMP TABLE link_plan ON COMMIT DROP AS
    SELECT * FROM caredata._link_person_plan_sql(max_person, p_incremental);
  END IF;
  ANALYZE pg_temp.link_plan;
  INSERT INTO caredata.person_event (run_id, kind, person_id, other_person_id, records)
  SELECT v_run, CASE p.kind WHEN 'm' THEN 'merge' ELSE 'split' END, p.person_id, p.other_person_id, p.records
    FROM pg_temp.link_plan p WHERE p.kind <> 'a' ORDER BY p.kind, p.person_id, p.other_person_id, p.cluster;
  -- rewritten whole, its indexes built after the rows (a third of the time
  -- of maintaining them row by row)
  PERFORM caredata._link_maintain('truncate_persons', project => p_project);
  PERFORM caredata._link_maintain('drop_person_indexes', project => p_project);
  -- written in C (person_index.c: the clusters' person ids held in a
  -- sorted array, the rows written in batches; where the INSERT below spent
  -- half its 3.3 s at 1M people hashing the records to the clusters),
  -- unless switched off or past maintenance_work_mem
  IF v_rows_in_memory THEN
    BEGIN
      PERFORM caredata._link_person_index_into(caredata._link_partition('caredata.person_index', p_project)::regclass, p_project,
                                               'pg_temp.link_cluster'::regclass, 'pg_temp.link_plan'::regclass, v_run);
    EXCEPTION WHEN program_limit_exceeded THEN
      v_rows_in_memory := false;
    END;
  END IF;
  IF NOT v_rows_in_memory THEN
    IF NOT v_cluster_analyzed THEN
      ANALYZE pg_temp.link_cluster;
    END IF;
    INSERT INTO caredata.person_index (project, source, record_id, rid, person_id, run_id, record_key)
    SELECT p_project, c.source, c.record_id, c.rid, a.person_id, v_run, c.record_key
      FROM pg_temp.link_cluster c JOIN pg_temp.link_plan a ON a.kind = 'a' AND a.cluster = c.cluster;
  END IF;
  PERFORM caredata._link_maintain('build_person_indexes', project => p_project);
  SELECT greatest(max_person, coalesce(max(a.person_id), 0)) INTO max_person FROM pg_temp.link_plan a WHERE a.kind = 'a';

  -- indexes for one-record lookups, one per blocking rule
  PERFORM caredata._link_maintain('index_rules', spec->'blocking', p_project);
  v_stats := v_stats || jsonb_build_object('index_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3),
                                       'links', v_links, 'persons', v_persons, 'max_person_id', max_person,
                                       'merges', (SELECT count(*) FROM caredata.person_event e WHERE e.run_id = v_run AND e.kind = 'merge'),
                                       'splits', (SELECT count(*) FROM caredata.person_event e WHERE e.run_id = v_run AND e.kind = 'split'));
  PERFORM caredata._link_progress('wrote the person index:', v_records, 'records', t);

  -- the working tables go now, so that a second run in the same transaction starts clean
  FOREACH work_table IN ARRAY ARRAY['link_new', 'link_cand', 'link_cluster', 'link_refused', 'link_plan'] LOOP
    IF to_regclass('pg_temp.' || work_table) IS NOT NULL THEN
      EXECUTE format('DROP TABLE pg_temp.%I', work_table);
    END IF;
  END LOOP;
  UPDATE caredata.link_run x SET finished_at = clock_timestamp(), threshold = p_threshold, stats = v_stats
   WHERE x.run_id = v_run;
  PERFORM caredata.audit_append('linkage.run', lm.model || ' version ' || lm.version,
    jsonb_build_object('project', p_project, 'run_id', v_run, 'method', p_method, 'incremental', p_incremental, 'records', v_records,
                       'links', v_links, 'persons', v_persons, 'threshold', p_threshold));
  run_id := v_run;
  model_version := lm.version;
  records := v_records;
  candidate_pairs := v_pairs;
  links := v_links;
  persons := v_persons;
  match_threshold := p_threshold;
  seconds := round(extract(epoch FROM clock_timestamp() - t0)::numeric, 2);
  PERFORM caredata._link_progress(format('run %s finished:', v_run), v_records, 'records', t0,
    format(', %s links, %s persons', to_char(v_links, 'FM999,999,999,999,990'), to_char(v_persons, 'FM999,999,999,999,990')));
  RETURN NEXT;
END
$$;
COMMENT ON FUNCTION caredata.link_run(text, integer, text, double precision, boolean, boolean, boolean, text[], text) IS
  'run linkage in a project (never touching another project''s rows): standardise the sources, block, compare, train (EM) or apply a trained model version, choose the threshold without labels (or use the match probability given), cluster, and write the person index with stable person ids; all or nothing';
