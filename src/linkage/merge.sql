-- src/linkage/merge.sql
-- Incremental runs (link_run(incremental => true)): where a new record goes,
-- and when two existing persons merge (docs/linkage.md, "Incremental runs").
--
-- link_run clusters every record as usual (the previous run's links and the
-- new batch's), then calls _link_incremental_merge() over its working table
-- pg_temp.link_cluster (rid, cluster, old_person, ...), which this file
-- rewrites before link_run writes the person index:
--
--   * an existing person is never split: its records stay together;
--   * two existing persons merge only on direct evidence, a pair of their
--     own records (compared now, with the run's model version) whose match
--     probability reaches the model's "merge_threshold" (and the run's own
--     threshold), and whose valid NHS numbers do not differ (with
--     "keep_nhs_apart"); a deterministic run merges on a pair that meets a
--     step.  The persons tried are those a new record's cluster joins;
--   * a new record that links to several existing persons is placed on the
--     one it links to best (link by link, from the strongest, so that new
--     records linked only to each other follow the best of them); the links
--     to the others are dropped from the run's links;
--   * other new records join the one existing person their cluster holds,
--     or become new persons.
--
-- Merges are recorded in caredata.person_event by link_run as in any run.

-- the merge threshold of a model spec: what a pair of two existing
-- persons' records must reach for them to merge in an incremental run
CREATE FUNCTION caredata._link_merge_threshold(spec jsonb) RETURNS double precision
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN coalesce((spec->>'merge_threshold')::double precision, 0.999999);
COMMENT ON FUNCTION caredata._link_merge_threshold(jsonb) IS
  'internal: the "merge_threshold" of a linkage model spec (default 0.999999): the match probability a pair of records of two existing persons must reach for an incremental run to merge them';

-- refuse a bad "merge_threshold" (called by _link_check_spec)
CREATE FUNCTION caredata._link_check_merge_spec(spec jsonb) RETURNS void
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF spec ? 'merge_threshold' AND (jsonb_typeof(spec->'merge_threshold') IS DISTINCT FROM 'number'
                                   OR NOT ((spec->>'merge_threshold')::double precision > 0
                                           AND (spec->>'merge_threshold')::double precision < 1)) THEN
    PERFORM caredata._link_bad('merge_threshold is a match probability strictly between 0 and 1',
                               'Leave it out for the default (0.999999).');
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._link_check_merge_spec(jsonb) IS
  'internal: refuse a linkage model spec whose "merge_threshold" is not a probability strictly between 0 and 1';

CREATE FUNCTION caredata._link_incremental_merge(run bigint, model text, version integer, method text,
    link_threshold double precision, project text)
  RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  spec jsonb;
  lam double precision;
  v_keep_apart boolean;
  v_merge double precision;
  cmp record;
  nlevels integer[];
  v_m double precision[];
  v_u double precision[];
  v_w double precision[];
  k integer := 1;
  steps text := '';
  step text;
  i integer := 0;
  n_cand bigint;
  n_merge bigint;
  n_bridged bigint;
  n_dropped bigint := 0;
  n_added bigint := 0;
  n bigint;
  work_table text;
  t0 timestamptz := clock_timestamp();
BEGIN
  SELECT lm.spec, lm.lambda INTO spec, lam FROM caredata.link_model lm
   WHERE lm.project = _link_incremental_merge.project AND lm.model = _link_incremental_merge.model
     AND lm.version = _link_incremental_merge.version;
  v_keep_apart := coalesce((spec->>'keep_nhs_apart')::boolean, true);
  v_merge := greatest(caredata._link_merge_threshold(spec), coalesce(link_threshold, 0));

  -- each existing person's home: its smallest record id, the name of its
  -- cluster from here on (new records have larger ids: rids grow)
  CREATE TEMP TABLE link_merge_person ON COMMIT DROP AS
  SELECT c.old_person AS person_id, min(c.rid) AS home
    FROM pg_temp.link_cluster c WHERE c.old_person IS NOT NULL GROUP BY c.old_person;
  ALTER TABLE pg_temp.link_merge_person ADD PRIMARY KEY (person_id);
  -- the existing persons of each cluster that holds a new record
  CREATE TEMP TABLE link_merge_touch ON COMMIT DROP AS
  SELECT DISTINCT c.cluster, c.old_person AS person_id
    FROM pg_temp.link_cluster c
   WHERE c.old_person IS NOT NULL
     AND c.cluster IN (SELECT x.cluster FROM pg_temp.link_cluster x WHERE x.old_person IS NULL);
  -- pairs of existing persons a new record's cluster joins
  CREATE TEMP TABLE link_merge_cand ON COMMIT DROP AS
  SELECT DISTINCT a.person_id AS person_a, b.person_id AS person_b
    FROM pg_temp.link_merge_touch a JOIN pg_temp.link_merge_touch b ON b.cluster = a.cluster AND b.person_id > a.person_id;
  GET DIAGNOSTICS n_cand = ROW_COUNT;
  -- their records
  CREATE TEMP TABLE link_merge_rec ON COMMIT DROP AS
  SELECT c.rid, c.old_person AS person_id
    FROM pg_temp.link_cluster c
   WHERE c.old_person IN (SELECT x.person_a FROM pg_temp.link_merge_cand x UNION SELECT x.person_b FROM pg_temp.link_merge_cand x);

  -- direct evidence: every pair of the two persons' records, compared and
  -- scored as the run does; the best pair of each two persons
  IF method = 'probabilistic' THEN
    SELECT array_agg(z.nlevels ORDER BY z.pos) INTO nlevels FROM caredata._link_comparisons(model, version, project) z;
    SELECT array_agg(x ORDER BY z.pos, o) INTO v_m FROM caredata._link_comparisons(model, version, project) z, unnest(z.m) WITH ORDINALITY AS q(x, o);
    SELECT array_agg(x ORDER BY z.pos, o) INTO v_u FROM caredata._link_comparisons(model, version, project) z, unnest(z.u) WITH ORDINALITY AS q(x, o);
    FOR i IN 1 .. cardinality(nlevels) LOOP
      k := k * nlevels[i];
    END LOOP;
    SELECT caredata.link_pattern_weights(array_agg(p ORDER BY p), nlevels, v_m, v_u, lam) INTO v_w
      FROM generate_series(0, k - 1) p;
    SELECT * INTO cmp FROM caredata._link_compare_sql(model, version,
      (SELECT array_agg(z.u[z.nlevels] ORDER BY z.pos) FROM caredata._link_comparisons(model, version, project) z), project);
  ELSE
    SELECT * INTO cmp FROM caredata._link_compare_sql(model, version, NULL, project);
    i := 0;
    FOR step IN SELECT * FROM jsonb_array_elements_text(spec->'steps') LOOP
      i := i + 1;
      steps := steps || format(' WHEN %s THEN %s', step, i);
    END LOOP;
  END IF;
  EXECUTE format($q$
    CREATE TEMP TABLE link_merge_pair ON COMMIT DROP AS
    SELECT s.person_a, s.person_b, s.rid_l, s.rid_r, s.nhs_level, s.pattern, %1$s AS weight, %2$s AS step
      FROM (SELECT q.*, %3$s AS pattern, %4$s AS tf_adj
              FROM (SELECT k.person_a, k.person_b, l.rid AS rid_l, r.rid AS rid_r,
                           caredata.compare_nhs_number(l.nhs_digits, r.nhs_digits) AS nhs_level%5$s
                      FROM pg_temp.link_merge_cand k
                      JOIN pg_temp.link_merge_rec ra ON ra.person_id = k.person_a
                      JOIN pg_temp.link_merge_rec rb ON rb.person_id = k.person_b
                      JOIN %7$s l ON l.rid = least(ra.rid, rb.rid)
                      JOIN %7$s r ON r.rid = greatest(ra.rid, rb.rid)
                     WHERE %6$s) q) s$q$,
    CASE WHEN method = 'probabilistic' THEN 'caredata.link_weight(s.pattern, s.tf_adj, $1)' ELSE 'NULL::double precision' END,
    CASE WHEN method = 'probabilistic' OR i = 0 THEN 'NULL::smallint' ELSE format('(CASE%s END)::smallint', steps) END,
    cmp.pattern, cmp.tf, cmp.levels, caredata._link_pair_condition(spec->>'link_type'), caredata._link_record_sql(project))
    USING v_w;
  -- the best pair of each two persons, and whether two of their valid NHS
  -- numbers differ (then they stay apart, whatever else agrees)
  CREATE TEMP TABLE link_merge_edge ON COMMIT DROP AS
  SELECT b.*, caredata.link_probability(b.weight) AS probability
    FROM (SELECT DISTINCT ON (x.person_a, x.person_b) x.*
            FROM pg_temp.link_merge_pair x
           ORDER BY x.person_a, x.person_b, x.weight DESC NULLS LAST, x.step NULLS LAST, x.rid_l, x.rid_r) b
   WHERE CASE WHEN method = 'probabilistic' THEN caredata.link_probability(b.weight) >= v_merge ELSE b.step IS NOT NULL END
     AND NOT (v_keep_apart AND EXISTS (SELECT 1 FROM pg_temp.link_merge_pair y
                                        WHERE y.person_a = b.person_a AND y.person_b = b.person_b AND y.nhs_level = 1));
  GET DIAGNOSTICS n_merge = ROW_COUNT;

  -- merged persons: each person's final cluster (the smallest home of its group)
  CREATE TEMP TABLE link_merge_group ON COMMIT DROP AS
  SELECT p.person_id, coalesce(g.cluster, p.home) AS final
    FROM pg_temp.link_merge_person p
    LEFT JOIN caredata.link_components(
           'SELECT pa.home, pb.home FROM pg_temp.link_merge_edge e
              JOIN pg_temp.link_merge_person pa ON pa.person_id = e.person_a
              JOIN pg_temp.link_merge_person pb ON pb.person_id = e.person_b', false) g ON g.rid = p.home;
  ALTER TABLE pg_temp.link_merge_group ADD PRIMARY KEY (person_id);

  -- new records: the final clusters their cluster holds; one (or none: a
  -- new person) decides; with several, the record is placed below
  CREATE TEMP TABLE link_merge_place ON COMMIT DROP AS
  SELECT c.rid, c.cluster,
         CASE WHEN t.finals IS NULL THEN c.cluster WHEN cardinality(t.finals) = 1 THEN t.finals[1] END AS final
    FROM pg_temp.link_cluster c
    LEFT JOIN (SELECT x.cluster, array_agg(DISTINCT g.final) AS finals
                 FROM pg_temp.link_merge_touch x JOIN pg_temp.link_merge_group g USING (person_id)
                GROUP BY x.cluster) t ON t.cluster = c.cluster
   WHERE c.old_person IS NULL;
  ALTER TABLE pg_temp.link_merge_place ADD PRIMARY KEY (rid);
  SELECT count(*) INTO n_bridged FROM pg_temp.link_merge_place x WHERE x.final IS NULL;
  IF n_bridged > 0 THEN
    -- the links of the records to place, both ways, and where each record of
    -- their clusters is (old ones: their person's final cluster)
    CREATE TEMP TABLE link_merge_adj ON COMMIT DROP AS
    SELECT x.rid_l AS rid, x.rid_r AS other, x.weight, x.step FROM caredata.link_pair x
     WHERE x.run_id = run AND x.rid_l IN (SELECT p.rid FROM pg_temp.link_merge_place p WHERE p.final IS NULL)
    UNION ALL
    SELECT x.rid_r, x.rid_l, x.weight, x.step FROM caredata.link_pair x
     WHERE x.run_id = run AND x.rid_r IN (SELECT p.rid FROM pg_temp.link_merge_place p WHERE p.final IS NULL);
    CREATE TEMP TABLE link_merge_at ON COMMIT DROP AS
    SELECT c.rid, c.cluster, coalesce(g.final, p.final) AS final
      FROM pg_temp.link_cluster c
      LEFT JOIN pg_temp.link_merge_group g ON g.person_id = c.old_person
      LEFT JOIN pg_temp.link_merge_place p ON p.rid = c.rid
     WHERE c.cluster IN (SELECT p.cluster FROM pg_temp.link_merge_place p WHERE p.final IS NULL);
    ALTER TABLE pg_temp.link_merge_at ADD PRIMARY KEY (rid);
    -- one record a cluster at a time, the strongest link from a placed record first
    LOOP
      UPDATE pg_temp.link_merge_at a SET final = b.final
        FROM (SELECT DISTINCT ON (u.cluster) u.rid, o.final
                FROM pg_temp.link_merge_at u
                JOIN pg_temp.link_merge_adj j ON j.rid = u.rid
                JOIN pg_temp.link_merge_at o ON o.rid = j.other AND o.final IS NOT NULL
               WHERE u.final IS NULL
               ORDER BY u.cluster, j.weight DESC NULLS LAST, j.step NULLS LAST, o.final, u.rid) b
       WHERE a.rid = b.rid;
      EXIT WHEN NOT FOUND;
    END LOOP;
    UPDATE pg_temp.link_merge_place p SET final = coalesce(a.final, p.rid)
      FROM pg_temp.link_merge_at a WHERE a.rid = p.rid AND p.final IS NULL;
  END IF;

  -- the clusters link_run writes: existing persons whole (merged or not),
  -- new records where they were placed
  UPDATE pg_temp.link_cluster c SET cluster = g.final
    FROM pg_temp.link_merge_group g WHERE g.person_id = c.old_person AND c.cluster <> g.final;
  UPDATE pg_temp.link_cluster c SET cluster = p.final
    FROM pg_temp.link_merge_place p WHERE p.rid = c.rid AND c.cluster <> p.final;

  -- the run's links agree with its clusters: links of placed records to
  -- persons they were not placed on go; the evidence of each merge comes
  IF n_bridged > 0 THEN
    DELETE FROM caredata.link_pair x USING pg_temp.link_cluster a, pg_temp.link_cluster b
     WHERE x.run_id = run AND a.rid = x.rid_l AND b.rid = x.rid_r AND a.cluster <> b.cluster
       AND (x.rid_l IN (SELECT j.rid FROM pg_temp.link_merge_adj j) OR x.rid_r IN (SELECT j.rid FROM pg_temp.link_merge_adj j));
    GET DIAGNOSTICS n_dropped = ROW_COUNT;
  END IF;
  INSERT INTO caredata.link_pair (run_id, rid_l, rid_r, pattern, weight, probability, step)
  SELECT run, e.rid_l, e.rid_r, e.pattern, e.weight, e.probability, e.step FROM pg_temp.link_merge_edge e;
  GET DIAGNOSTICS n_added = ROW_COUNT;
  -- and links of the previous run that clustering refused within an
  -- existing person (which stays whole) come back
  IF EXISTS (SELECT 1 FROM pg_temp.link_cluster c WHERE c.refused AND c.old_person IS NOT NULL) THEN
    INSERT INTO caredata.link_pair (run_id, rid_l, rid_r, pattern, weight, probability, step)
    SELECT run, x.rid_l, x.rid_r, x.pattern, x.weight, x.probability, x.step
      FROM caredata.link_pair x
      JOIN pg_temp.link_cluster a ON a.rid = x.rid_l
      JOIN pg_temp.link_cluster b ON b.rid = x.rid_r
     WHERE x.run_id = (SELECT max(p.run_id) FROM caredata.person_index p WHERE p.project = _link_incremental_merge.project)
       AND a.old_person = b.old_person AND (a.refused OR b.refused)
       AND NOT EXISTS (SELECT 1 FROM caredata.link_pair y WHERE y.run_id = run AND y.rid_l = x.rid_l AND y.rid_r = x.rid_r);
    GET DIAGNOSTICS n = ROW_COUNT;
    n_added := n_added + n;
  END IF;

  FOREACH work_table IN ARRAY ARRAY['link_merge_person', 'link_merge_touch', 'link_merge_cand', 'link_merge_rec', 'link_merge_pair',
                                    'link_merge_edge', 'link_merge_group', 'link_merge_place', 'link_merge_adj', 'link_merge_at'] LOOP
    IF to_regclass('pg_temp.' || work_table) IS NOT NULL THEN
      EXECUTE format('DROP TABLE pg_temp.%I', work_table);
    END IF;
  END LOOP;
  RETURN jsonb_build_object('merge_threshold', v_merge, 'persons_bridged', n_cand, 'merges_on_evidence', n_merge,
                            'records_placed_best', n_bridged, 'links_dropped', n_dropped, 'links_added', n_added,
                            'merge_s', round(extract(epoch FROM clock_timestamp() - t0)::numeric, 3));
END
$$;
COMMENT ON FUNCTION caredata._link_incremental_merge(bigint, text, integer, text, double precision, text) IS
  'internal: in an incremental link_run, keep existing persons whole, merge two only on a direct pair of their records at or above the model''s merge_threshold (NHS numbers not differing), place each new record on the existing person it links to best, and make the run''s links agree (over link_run''s pg_temp.link_cluster)';
