-- src/linkage/model.sql
-- The linkage driver (docs/linkage.md): sources, models, runs, quality,
-- explanation and one-record lookup.  Set-at-a-time work (standardising,
-- blocking joins, writes) is SQL built from the model's spec; per-pair and
-- per-model work is C (src/linkage/compare.c, em.c, cluster.c).
--
-- Every function here runs as its caller (the linker reads the sources
-- with its own rights) and is executable by caredata_linker and
-- caredata_admin only.  No message prints an identifier: notices carry
-- counts and times.

-- ---- C entry points ----

CREATE FUNCTION caredata.link_em(patterns integer[], counts double precision[], nlevels integer[],
    u double precision[], m double precision[], total_pairs double precision,
    max_iter integer DEFAULT 100, tolerance double precision DEFAULT 1e-6,
    OUT m double precision[], OUT lambda double precision, OUT iterations integer, OUT converged boolean)
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.link_em(integer[], double precision[], integer[], double precision[], double precision[], double precision, integer, double precision) IS
  'Fellegi-Sunter EM over a histogram of comparison patterns: estimates m per level and lambda with u fixed';

CREATE FUNCTION caredata.link_pattern_weights(patterns integer[], nlevels integer[],
    m double precision[], u double precision[], lambda double precision) RETURNS double precision[]
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.link_pattern_weights(integer[], integer[], double precision[], double precision[], double precision) IS
  'match weight of each comparison pattern: log2(lambda/(1-lambda)) + sum of log2(m/u) over its levels';

CREATE FUNCTION caredata.link_weight(pattern integer, tf_adj double precision, weights double precision[])
  RETURNS double precision
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.link_weight(integer, double precision, double precision[]) IS
  'match weight of a candidate pair: weights[pattern + 1] (the dense table of pattern weights) plus its term-frequency adjustment';

CREATE FUNCTION caredata._link_threshold_accum(double precision[], double precision) RETURNS double precision[]
  AS 'MODULE_PATHNAME', 'link_threshold_accum' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._link_threshold_combine(double precision[], double precision[]) RETURNS double precision[]
  AS 'MODULE_PATHNAME', 'link_threshold_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._link_threshold_final(double precision[]) RETURNS double precision
  AS 'MODULE_PATHNAME', 'link_threshold_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata._link_threshold_accum(double precision[], double precision) IS 'internal: transition function of link_threshold()';
COMMENT ON FUNCTION caredata._link_threshold_combine(double precision[], double precision[]) IS 'internal: combine function of link_threshold()';
COMMENT ON FUNCTION caredata._link_threshold_final(double precision[]) IS 'internal: final function of link_threshold()';
-- the state is double precision[] (counts, then probability sums, per
-- quarter-bit bucket), not internal: partial states travel as text
CREATE AGGREGATE caredata.link_threshold(weight double precision) (
  SFUNC = caredata._link_threshold_accum, STYPE = double precision[], SSPACE = 65560,
  COMBINEFUNC = caredata._link_threshold_combine,
  FINALFUNC = caredata._link_threshold_final, PARALLEL = SAFE);
COMMENT ON AGGREGATE caredata.link_threshold(double precision) IS
  'the label-free link threshold over candidate pairs'' match weights: the quarter-bit cut with the highest expected F1, 2 TP / (predicted + actual), where TP sums the match probabilities at or above the cut, predicted counts the pairs there and actual sums all probabilities';

CREATE FUNCTION caredata.link_components(links_query text, one_to_one boolean DEFAULT false, nhs_query text DEFAULT NULL)
  RETURNS TABLE (rid bigint, cluster bigint, refused boolean)
  AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata.link_components(text, boolean, text) IS
  'union-find over the (bigint, bigint) links a query returns, in its order: each record in a link, its cluster (the smallest record id in it) and whether a link of it was refused; one_to_one accepts a link only if neither record is linked yet; nhs_query (record id, NHS digits[, confirmed boolean]) keeps apart clusters holding confirmed valid NHS numbers that differ by more than one typing error (confirmed by a link between two records carrying the number, or from the start when the third column is true)';

-- ---- the default model ----

CREATE FUNCTION caredata.link_default_spec() RETURNS jsonb
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN $spec$
{
  "link_type": "link_and_dedupe",
  "comparisons": [
    {"name": "nhs", "expression": "caredata.compare_nhs_number(l.nhs_digits, r.nhs_digits)",
     "levels": ["missing or invalid", "different", "one digit different or transposed", "exact"],
     "tf": "nhs_digits"},
    {"name": "dob", "expression": "caredata.compare_date(l.dob, r.dob, 365)",
     "levels": ["missing", "different", "within a year", "two of year, month, day", "day and month transposed", "exact"],
     "tf": "dob"},
    {"name": "sex", "expression": "caredata.compare_sex(l.sex, r.sex)",
     "levels": ["missing or not known", "different", "same"]},
    {"name": "postcode", "expression": "caredata.compare_postcode(l.postcode, r.postcode)",
     "levels": ["missing", "different", "same area", "same district", "same sector", "exact"],
     "tf": "postcode"}
  ],
  "blocking": [["nhs_digits"], ["dob", "area"], ["postcode", "yob"], ["dob", "nhs_head"], ["dob", "nhs_tail"]],
  "steps": [
    "nhs = 3 AND dob = 5 AND sex = 2",
    "nhs = 3 AND dob IN (3, 4) AND postcode >= 3",
    "dob = 5 AND sex = 2 AND postcode = 5 AND nhs <> 1",
    "nhs = 2 AND dob = 5 AND postcode >= 3"
  ],
  "u_sample_pairs": 1000000,
  "seed": 42,
  "max_pairs": 200000000,
  "em_max_iterations": 100,
  "em_tolerance": 1e-6,
  "keep_nhs_apart": true,
  "nhs_confirm": "details",
  "merge_threshold": 0.999999
}
$spec$::jsonb;
COMMENT ON FUNCTION caredata.link_default_spec() IS
  'the default linkage model: NHS number, date of birth, sex and postcode comparisons, five blocking rules, four HESID-style deterministic steps';

-- ---- checks (internal) ----

CREATE FUNCTION caredata._link_bad(msg text, hint text, code text DEFAULT '22023') RETURNS void
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RAISE EXCEPTION USING MESSAGE = msg, HINT = hint, ERRCODE = code;
END
$$;
COMMENT ON FUNCTION caredata._link_bad(text, text, text) IS
  'internal: raise a linkage configuration error with a hint';

-- the columns of link_record a blocking rule may use
CREATE FUNCTION caredata._link_key_columns() RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN ARRAY['source', 'nhs_digits', 'nhs_head', 'nhs_tail', 'dob', 'sex', 'postcode', 'sector', 'district', 'area', 'yob'];
COMMENT ON FUNCTION caredata._link_key_columns() IS
  'internal: the standardised record columns that blocking rules may name';

-- statistics and lookup indexes on the linkage tables, which the extension
-- owns: the linker may write them but not ANALYZE or index them itself.
-- SECURITY DEFINER with a pinned search_path; it only ever names the two
-- tables below and whitelisted columns.
CREATE FUNCTION caredata._link_maintain(what text, rules jsonb DEFAULT '[]') RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  col text;
BEGIN
  IF what = 'analyze_records' THEN
    ANALYZE caredata.link_record;
  ELSIF what = 'index_rules' THEN
    -- one single-column index per distinct leading column of the rules: a
    -- lookup finds a handful of rows by it and filters on the rest
    FOR col IN SELECT DISTINCT b.value->>0 FROM jsonb_array_elements(rules) b LOOP
      IF NOT col = ANY (caredata._link_key_columns()) THEN
        RAISE EXCEPTION USING ERRCODE = '42703', MESSAGE = 'blocking rules name only standardised record columns';
      END IF;
      IF to_regclass('caredata.' || quote_ident('link_record_' || col || '_idx')) IS NULL THEN
        EXECUTE format('CREATE INDEX %I ON caredata.link_record (%I)', 'link_record_' || col || '_idx', col);
      END IF;
    END LOOP;
  ELSIF what = 'drop_indexes' THEN
    -- before link_record is rebuilt: building them afresh is cheaper than
    -- maintaining them row by row
    FOR col IN SELECT i.indexrelid::regclass::text FROM pg_catalog.pg_index i
                WHERE i.indrelid = 'caredata.link_record'::regclass AND NOT i.indisprimary LOOP
      EXECUTE format('DROP INDEX %s', col);
    END LOOP;
  ELSIF what = 'drop_person_indexes' THEN
    -- before the person index is rewritten (link_run holds the lock that
    -- lookups wait for, so nobody sees it without them)
    ALTER TABLE caredata.person_index DROP CONSTRAINT IF EXISTS person_index_pkey,
                                      DROP CONSTRAINT IF EXISTS person_index_rid_key;
    DROP INDEX IF EXISTS caredata.person_index_person_idx;
  ELSIF what = 'build_person_indexes' THEN
    ALTER TABLE caredata.person_index ADD CONSTRAINT person_index_pkey PRIMARY KEY (source, record_id),
                                      ADD CONSTRAINT person_index_rid_key UNIQUE (rid);
    CREATE INDEX person_index_person_idx ON caredata.person_index (person_id);
    ANALYZE caredata.person_index;
  ELSE
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'unknown linkage maintenance step';
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._link_maintain(text, jsonb) IS
  'internal: ANALYZE the standardised records, drop or create the blocking rules'' lookup indexes, and drop or build the person index''s indexes around its rewrite, as the extension owner';

CREATE FUNCTION caredata._link_check_spec(spec jsonb) RETURNS void
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c jsonb;
  names text[] := '{}';
  rule jsonb;
  col text;
  step text;
  probe text;
  nl integer;
BEGIN
  IF jsonb_typeof(spec) IS DISTINCT FROM 'object' THEN
    PERFORM caredata._link_bad('a linkage model spec must be a JSON object', 'Start from caredata.link_default_spec().');
  END IF;
  IF spec->>'link_type' IS NULL OR spec->>'link_type' NOT IN ('link_and_dedupe', 'link_only', 'dedupe_only') THEN
    PERFORM caredata._link_bad('link_type must be link_and_dedupe, link_only or dedupe_only', 'Set "link_type" in the spec.');
  END IF;
  IF jsonb_typeof(spec->'comparisons') IS DISTINCT FROM 'array' OR jsonb_array_length(spec->'comparisons') = 0 THEN
    PERFORM caredata._link_bad('a linkage model needs at least one comparison', 'Set "comparisons" to an array of {name, expression, levels}.');
  END IF;
  FOR c IN SELECT * FROM jsonb_array_elements(spec->'comparisons') LOOP
    IF coalesce(c->>'name', '') !~ '^[a-z][a-z0-9_]{0,30}$' OR c->>'name' IN ('rid_l', 'rid_r', 'pattern', 'tf_adj', 'weight', 'l', 'r') THEN
      PERFORM caredata._link_bad('a comparison needs a name: lower-case letters, digits and _, not rid_l, rid_r, pattern, tf_adj, weight, l or r',
                                 'Name comparisons like "nhs" or "dob".');
    END IF;
    IF c->>'name' = ANY (names) THEN
      PERFORM caredata._link_bad(format('comparison "%s" is named twice', c->>'name'), 'Give each comparison its own name.');
    END IF;
    names := names || (c->>'name');
    IF jsonb_typeof(c->'levels') IS DISTINCT FROM 'array' THEN
      PERFORM caredata._link_bad(format('comparison "%s" has no levels', c->>'name'), 'Set "levels" to the labels of levels 0 (missing), 1 (different), ... up to exact.');
    END IF;
    nl := jsonb_array_length(c->'levels');
    IF nl < 2 OR nl > 16 THEN
      PERFORM caredata._link_bad(format('comparison "%s" must have between 2 and 16 levels', c->>'name'), 'Level 0 is missing, 1 different, the last exact.');
    END IF;
    IF c ? 'tf' AND c->>'tf' NOT IN ('nhs_digits', 'dob', 'postcode') THEN
      PERFORM caredata._link_bad(format('comparison "%s": term-frequency adjustment is available for nhs_digits, dob and postcode only', c->>'name'),
                                 'Remove "tf" or set it to one of those columns.');
    END IF;
    IF c ? 'm' AND (jsonb_typeof(c->'m') IS DISTINCT FROM 'array' OR jsonb_array_length(c->'m') <> nl) THEN
      PERFORM caredata._link_bad(format('comparison "%s": starting m must have one probability per level', c->>'name'), 'Remove "m" to use the default start.');
    END IF;
    IF c->>'expression' IS NULL THEN
      PERFORM caredata._link_bad(format('comparison "%s" has no expression', c->>'name'),
                                 'Set "expression" to SQL over the record aliases l and r, e.g. caredata.compare_sex(l.sex, r.sex).');
    END IF;
    BEGIN
      EXECUTE format('SELECT (%s)::integer FROM caredata.link_record l, caredata.link_record r WHERE false', c->>'expression');
    EXCEPTION WHEN OTHERS THEN
      PERFORM caredata._link_bad(format('comparison "%s": its expression is not valid over the standardised records: %s', c->>'name', SQLERRM),
                                 'Use the columns of caredata.link_record through the aliases l and r, and a comparator returning an integer level.', '42804');
    END;
  END LOOP;

  -- a pattern packs one level per comparison; runs keep one weight per
  -- possible pattern in memory
  IF (SELECT sum(ln(jsonb_array_length(x->'levels'))) FROM jsonb_array_elements(spec->'comparisons') x) > ln(1048576) + 1e-9 THEN
    PERFORM caredata._link_bad('the comparisons have more than 1048576 combinations of levels',
                               'Use fewer comparisons or fewer levels per comparison.', '54000');
  END IF;

  IF jsonb_typeof(spec->'keep_nhs_apart') IS DISTINCT FROM 'boolean' THEN
    PERFORM caredata._link_bad('keep_nhs_apart must be true or false', 'Leave it out for the default (true).');
  END IF;
  IF spec->>'nhs_confirm' IS NULL OR jsonb_typeof(spec->'nhs_confirm') <> 'string' OR spec->>'nhs_confirm' NOT IN ('link', 'details') THEN
    PERFORM caredata._link_bad('nhs_confirm must be "link" or "details"', 'Leave it out for the default ("details").');
  END IF;
  PERFORM caredata._link_check_merge_spec(spec);
  IF jsonb_typeof(spec->'blocking') IS DISTINCT FROM 'array' OR jsonb_array_length(spec->'blocking') = 0 THEN
    PERFORM caredata._link_bad('a linkage model needs at least one blocking rule', 'Set "blocking" to an array of column lists, e.g. [["nhs_digits"], ["dob", "area"]].');
  END IF;
  FOR rule IN SELECT * FROM jsonb_array_elements(spec->'blocking') LOOP
    IF jsonb_typeof(rule) IS DISTINCT FROM 'array' OR jsonb_array_length(rule) = 0 THEN
      PERFORM caredata._link_bad('a blocking rule is a non-empty list of columns', 'For example ["dob", "area"].');
    END IF;
    FOR col IN SELECT * FROM jsonb_array_elements_text(rule) LOOP
      IF NOT col = ANY (caredata._link_key_columns()) OR col = 'source' AND jsonb_array_length(rule) = 1 THEN
        PERFORM caredata._link_bad(format('blocking rules cannot use column "%s"', col),
                                   'Blocking columns: ' || array_to_string(caredata._link_key_columns(), ', ') || ' (source only with another column).', '42703');
      END IF;
    END LOOP;
  END LOOP;

  probe := (SELECT string_agg(format('0 AS %I', n), ', ') FROM unnest(names) n);
  IF spec ? 'steps' THEN
    FOR step IN SELECT * FROM jsonb_array_elements_text(spec->'steps') LOOP
      BEGIN
        EXECUTE format('SELECT (%s)::boolean FROM (SELECT %s) p WHERE false', step, probe);
      EXCEPTION WHEN OTHERS THEN
        PERFORM caredata._link_bad(format('deterministic step is not valid: %s', SQLERRM),
                                   'A step is a boolean over the comparison levels by name, e.g. nhs = 3 AND dob = 5.', '42804');
      END;
    END LOOP;
  END IF;
  IF coalesce((spec->>'u_sample_pairs')::bigint, 0) < 100 OR coalesce((spec->>'max_pairs')::bigint, 0) < 1 THEN
    PERFORM caredata._link_bad('u_sample_pairs must be at least 100 and max_pairs at least 1', 'See caredata.link_default_spec() for the defaults.');
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._link_check_spec(jsonb) IS
  'internal: refuse a linkage model spec with a clear error and hint';

-- ---- sources ----

CREATE FUNCTION caredata.link_add_source(source text, relation regclass, record_id name,
    nhs_number name DEFAULT NULL, dob name DEFAULT NULL, sex name DEFAULT NULL, postcode name DEFAULT NULL)
  RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_source text := source;
  c record;
  typ regtype;
  allowed regtype[];
BEGIN
  IF p_source IS NULL OR p_source !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    PERFORM caredata._link_bad('a linkage source name is lower-case letters, digits and _', 'For example ''gp'' or ''hes''.');
  END IF;
  FOR c IN SELECT * FROM (VALUES
      ('record_id', record_id, ARRAY['smallint', 'integer', 'bigint']::regtype[]),
      ('nhs_number', nhs_number, ARRAY['text', 'character varying', 'character', 'bigint', 'caredata.nhs_number']::regtype[]),
      ('dob', dob, ARRAY['date', 'timestamp without time zone', 'timestamp with time zone', 'text', 'character varying', 'character']::regtype[]),
      ('sex', sex, ARRAY['text', 'character varying', 'character', 'smallint', 'integer']::regtype[]),
      ('postcode', postcode, ARRAY['text', 'character varying', 'character']::regtype[])) v(what, col, types)
  LOOP
    IF c.col IS NULL THEN
      IF c.what = 'record_id' THEN
        PERFORM caredata._link_bad('a linkage source needs its record id column', 'Name an integer column that identifies each record.');
      END IF;
      CONTINUE;
    END IF;
    SELECT a.atttypid::regtype INTO typ FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = relation AND a.attname = c.col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'undefined_column',
        MESSAGE = format('column "%s" of relation %s does not exist', c.col, relation),
        HINT = format('Name the %s column of %s as it is spelled there.', c.what, relation);
    END IF;
    IF NOT typ = ANY (c.types) THEN
      RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
        MESSAGE = format('column "%s" of relation %s has type %s, which cannot be used as %s', c.col, relation, typ, c.what),
        HINT = format('Accepted types for %s: %s.', c.what, array_to_string(c.types::text[], ', '));
    END IF;
  END LOOP;
  INSERT INTO caredata.link_source AS s (source, relation, record_id, nhs_number, dob, sex, postcode)
  VALUES (p_source, relation, record_id, nhs_number, dob, sex, postcode)
  ON CONFLICT ON CONSTRAINT link_source_pkey DO UPDATE
    SET relation = excluded.relation, record_id = excluded.record_id, nhs_number = excluded.nhs_number,
        dob = excluded.dob, sex = excluded.sex, postcode = excluded.postcode,
        added_at = now(), added_by = current_user;
END
$$;
COMMENT ON FUNCTION caredata.link_add_source(text, regclass, name, name, name, name, name) IS
  'register (or re-register) a linkage source: a relation, its integer record id column and its identifier columns (any may be NULL)';

-- the SQL expression that standardises one identifier column of a source
CREATE FUNCTION caredata._link_std_expr(relation regclass, col name, what text) RETURNS text
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  typ regtype;
BEGIN
  IF col IS NULL THEN
    -- typed, so that a run over one source without the column works
    RETURN CASE what WHEN 'dob' THEN 'NULL::date' WHEN 'record_id' THEN 'NULL::bigint'
                     WHEN 'nhs_number' THEN 'NULL::bigint' ELSE 'NULL::text' END;
  END IF;
  SELECT a.atttypid::regtype INTO typ FROM pg_catalog.pg_attribute a
   WHERE a.attrelid = relation AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'undefined_column',
      MESSAGE = format('column "%s" of relation %s no longer exists', col, relation),
      HINT = 'Register the source again with caredata.link_add_source().';
  END IF;
  RETURN CASE what
    WHEN 'record_id' THEN format('s.%I::bigint', col)
    WHEN 'nhs_number' THEN CASE WHEN typ IN ('bigint'::regtype, 'caredata.nhs_number'::regtype)
                                THEN format('s.%I::bigint', col)
                                ELSE format('caredata.nhs_number_digits(s.%I::text)', col) END
    WHEN 'dob' THEN CASE WHEN typ IN ('text'::regtype, 'character varying'::regtype, 'character'::regtype)
                         THEN format('caredata.try_standardise_dob(s.%I::text)', col)
                         ELSE format('(SELECT d FROM (SELECT s.%I::date AS d) x WHERE caredata.dob_is_valid(d))', col) END
    WHEN 'sex' THEN format('caredata.try_standardise_sex(s.%I::text)', col)
    WHEN 'postcode' THEN format('caredata.try_normalise_postcode(s.%I::text)', col)
  END;
END
$$;
COMMENT ON FUNCTION caredata._link_std_expr(regclass, name, text) IS
  'internal: the standardising expression for one identifier column of a linkage source';

-- rebuild link_record from the sources; returns the number of records
CREATE FUNCTION caredata.link_standardise(sources text[] DEFAULT NULL, run_id bigint DEFAULT 0)
  RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s record;
  n bigint;
  total bigint;
  parts text[] := '{}';
  work_table text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM caredata.link_source ls WHERE sources IS NULL OR ls.source = ANY (sources)) THEN
    PERFORM caredata._link_bad('no linkage sources to link', 'Register sources with caredata.link_add_source().', '42704');
  END IF;
  IF sources IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(sources) x WHERE x NOT IN (SELECT ls.source FROM caredata.link_source ls)) THEN
    PERFORM caredata._link_bad('a named linkage source does not exist', 'See caredata.link_source for the registered sources.', '42704');
  END IF;
  -- the standardised records, each with its stable rid if it has one
  FOR s IN SELECT * FROM caredata.link_source ls WHERE sources IS NULL OR ls.source = ANY (sources) ORDER BY ls.source LOOP
    parts := parts || format('SELECT k.rid, %L::text AS source, %s AS record_id, %s AS nhs_digits, %s AS dob, %s AS sex, %s AS postcode
                                FROM %s s LEFT JOIN caredata.link_record_key k ON k.source = %1$L AND k.record_id = %2$s',
      s.source, caredata._link_std_expr(s.relation, s.record_id, 'record_id'),
      caredata._link_std_expr(s.relation, s.nhs_number, 'nhs_number'),
      caredata._link_std_expr(s.relation, s.dob, 'dob'),
      caredata._link_std_expr(s.relation, s.sex, 'sex'),
      caredata._link_std_expr(s.relation, s.postcode, 'postcode'), s.relation);
  END LOOP;
  FOREACH work_table IN ARRAY ARRAY['link_stage', 'link_new_key'] LOOP
    IF to_regclass('pg_temp.' || work_table) IS NOT NULL THEN
      EXECUTE format('DROP TABLE pg_temp.%I', work_table);
    END IF;
  END LOOP;
  EXECUTE 'CREATE TEMP TABLE link_stage ON COMMIT DROP AS ' || array_to_string(parts, ' UNION ALL ');
  total := 0;
  FOR s IN SELECT ls.source, count(t.source) AS n, count(t.source) FILTER (WHERE t.record_id IS NULL) AS no_id
             FROM caredata.link_source ls LEFT JOIN pg_temp.link_stage t ON t.source = ls.source
            WHERE sources IS NULL OR ls.source = ANY (sources) GROUP BY ls.source ORDER BY ls.source LOOP
    IF s.n = 0 THEN
      PERFORM caredata._link_bad(format('linkage source "%s" has no records', s.source),
                                 'Load the source, or leave it out with the sources argument.', '22023');
    END IF;
    IF s.no_id > 0 THEN
      PERFORM caredata._link_bad(format('linkage source "%s" has records without a record id', s.source),
                                 'Every record needs a record id: fix the source or filter it through a view.', '23502');
    END IF;
    total := total + s.n;
  END LOOP;

  -- stable rids: new records numbered after the highest, in (source,
  -- record_id) order.  A record id twice in a source breaks a unique
  -- index, here (a new one) or on link_record below (one seen before).
  CREATE TEMP TABLE link_new_key ON COMMIT DROP AS
  SELECT coalesce((SELECT max(k.rid) FROM caredata.link_record_key k), 0) + row_number() OVER (ORDER BY t.source, t.record_id) AS rid,
         t.source, t.record_id
    FROM pg_temp.link_stage t WHERE t.rid IS NULL;
  ANALYZE pg_temp.link_new_key;
  TRUNCATE caredata.link_record;
  PERFORM caredata._link_maintain('drop_indexes');
  BEGIN
    INSERT INTO caredata.link_record_key (rid, source, record_id, first_run)
    SELECT k.rid, k.source, k.record_id, link_standardise.run_id FROM pg_temp.link_new_key k;
    -- value frequencies for the term-frequency adjustment; only a value
    -- held by two records or more can ever agree exactly with another
    INSERT INTO caredata.link_record
    SELECT coalesce(t.rid, k.rid), t.source, t.record_id, t.nhs_digits, (t.nhs_digits / 10000)::integer, (t.nhs_digits % 10000)::integer,
           t.dob, t.sex, t.postcode,
           caredata.postcode_sector(t.postcode), caredata.postcode_district(t.postcode), caredata.postcode_area(t.postcode),
           extract(year FROM t.dob)::integer,
           CASE WHEN t.nhs_digits IS NOT NULL THEN coalesce(fn.f, 1.0 / total) END,
           CASE WHEN t.dob IS NOT NULL THEN coalesce(fd.f, 1.0 / total) END,
           CASE WHEN t.postcode IS NOT NULL THEN coalesce(fp.f, 1.0 / total) END
      FROM pg_temp.link_stage t
      LEFT JOIN pg_temp.link_new_key k ON t.rid IS NULL AND k.source = t.source AND k.record_id = t.record_id
      LEFT JOIN (SELECT nhs_digits, count(*)::double precision / total AS f FROM pg_temp.link_stage GROUP BY 1 HAVING count(*) > 1) fn USING (nhs_digits)
      LEFT JOIN (SELECT dob, count(*)::double precision / total AS f FROM pg_temp.link_stage GROUP BY 1 HAVING count(*) > 1) fd USING (dob)
      LEFT JOIN (SELECT postcode, count(*)::double precision / total AS f FROM pg_temp.link_stage GROUP BY 1 HAVING count(*) > 1) fp USING (postcode);
    GET DIAGNOSTICS n = ROW_COUNT;
  EXCEPTION WHEN unique_violation THEN
    PERFORM caredata._link_bad('a linkage source has duplicate record ids', 'Record ids must be unique within a source.', '23505');
  END;
  DROP TABLE pg_temp.link_stage;
  DROP TABLE pg_temp.link_new_key;
  PERFORM caredata._link_maintain('analyze_records');
  RETURN n;
END
$$;
COMMENT ON FUNCTION caredata.link_standardise(text[], bigint) IS
  'rebuild caredata.link_record from the registered sources (all, or those named): standardised identifiers, postcode parts, value frequencies; returns the number of records';

-- ---- models ----

CREATE FUNCTION caredata.link_create_model(model text, spec jsonb DEFAULT '{}') RETURNS integer
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_model text := model;
  full_spec jsonb := caredata.link_default_spec() || coalesce(spec, '{}');
  v integer;
BEGIN
  IF p_model IS NULL OR p_model !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    PERFORM caredata._link_bad('a linkage model name is lower-case letters, digits and _', 'For example ''default''.');
  END IF;
  PERFORM caredata._link_check_spec(full_spec);
  SELECT coalesce(max(lm.version), 0) + 1 INTO v FROM caredata.link_model lm WHERE lm.model = p_model;
  INSERT INTO caredata.link_model (model, version, spec) VALUES (p_model, v, full_spec);
  INSERT INTO caredata.link_model_level (model, version, comparison, position, level, label)
  SELECT p_model, v, c.value->>'name', c.ordinality - 1, l.ordinality - 1, l.value
    FROM jsonb_array_elements(full_spec->'comparisons') WITH ORDINALITY c
   CROSS JOIN LATERAL jsonb_array_elements_text(c.value->'levels') WITH ORDINALITY l;
  RETURN v;
END
$$;
COMMENT ON FUNCTION caredata.link_create_model(text, jsonb) IS
  'create a linkage model (or its next version) from a spec; keys not given are taken from link_default_spec(); returns the version (untrained until a run trains it)';

-- comparisons of a model version, in order, with what the SQL builders need
CREATE FUNCTION caredata._link_comparisons(model text, version integer)
  RETURNS TABLE (pos integer, name text, expression text, nlevels integer, tf text, m_start double precision[],
                 m double precision[], u double precision[], labels text[])
  LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT (c.ordinality - 1)::integer, c.value->>'name', c.value->>'expression',
         jsonb_array_length(c.value->'levels'), c.value->>'tf',
         CASE WHEN c.value ? 'm' THEN ARRAY(SELECT x::double precision FROM jsonb_array_elements_text(c.value->'m') x) END,
         ARRAY(SELECT ml.m FROM caredata.link_model_level ml
                WHERE ml.model = lm.model AND ml.version = lm.version AND ml.comparison = c.value->>'name' ORDER BY ml.level),
         ARRAY(SELECT ml.u FROM caredata.link_model_level ml
                WHERE ml.model = lm.model AND ml.version = lm.version AND ml.comparison = c.value->>'name' ORDER BY ml.level),
         ARRAY(SELECT jsonb_array_elements_text(c.value->'levels'))
    FROM caredata.link_model lm
   CROSS JOIN LATERAL jsonb_array_elements(lm.spec->'comparisons') WITH ORDINALITY c
   WHERE lm.model = _link_comparisons.model AND lm.version = _link_comparisons.version
   ORDER BY c.ordinality
$$;
COMMENT ON FUNCTION caredata._link_comparisons(text, integer) IS
  'internal: the comparisons of a model version with their levels, m and u';

-- the SQL pieces every scorer of pairs shares (runs, lookups): one column
-- per comparison level over aliases l and r (plus the r side's value
-- frequency where a comparison has term-frequency adjustment and u_top, the
-- u of each comparison's top level, is given), their names, the packed
-- pattern and the adjustment
CREATE FUNCTION caredata._link_compare_sql(model text, version integer, u_top double precision[])
  RETURNS TABLE (levels text, cols text, pattern text, tf text)
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c record;
  stride bigint := 1;
BEGIN
  levels := ''; cols := ''; pattern := ''; tf := '0::double precision';
  FOR c IN SELECT * FROM caredata._link_comparisons(model, version) ORDER BY pos LOOP
    levels := levels || format(', (%s)::smallint AS %I', c.expression, c.name);
    cols := cols || format(', %I', c.name);
    pattern := pattern || CASE WHEN stride = 1 THEN '' ELSE ' + ' END || format('%I * %s', c.name, stride);
    stride := stride * c.nlevels;
    IF c.tf IS NOT NULL AND u_top[c.pos + 1] IS NOT NULL THEN
      levels := levels || format(', r.%I AS %I', 'tf_' || c.tf, 'tf_' || c.name);
      tf := tf || format(' + CASE WHEN %I = %s AND %I > 0 THEN ln(%s / %I) * 1.4426950408889634 ELSE 0 END',
                         c.name, c.nlevels - 1, 'tf_' || c.name, u_top[c.pos + 1], 'tf_' || c.name);
    END IF;
  END LOOP;
  pattern := '(' || pattern || ')::integer';
  RETURN NEXT;
END
$$;
COMMENT ON FUNCTION caredata._link_compare_sql(text, integer, double precision[]) IS
  'internal: the comparison-level columns, pattern and term-frequency adjustment SQL of a model version, shared by runs and lookups';

-- the probability of a match weight
-- not STRICT, and NULL in gives NULL out, so that the planner inlines it
CREATE FUNCTION caredata.link_probability(weight double precision) RETURNS double precision
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 1 / (1 + power(2::double precision,
                        CASE WHEN weight > 1000 THEN -1000 WHEN weight < -1000 THEN 1000 ELSE -weight END));
COMMENT ON FUNCTION caredata.link_probability(double precision) IS
  'the match probability of a match weight w (bits): 2^w / (1 + 2^w)';

-- the pair condition of a link type
CREATE FUNCTION caredata._link_pair_condition(link_type text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN CASE link_type
    WHEN 'link_only' THEN 'l.rid < r.rid AND l.source <> r.source'
    WHEN 'dedupe_only' THEN 'l.rid < r.rid AND l.source = r.source'
    ELSE 'l.rid < r.rid' END;
COMMENT ON FUNCTION caredata._link_pair_condition(text) IS
  'internal: which pairs a link type compares (l.rid < r.rid, across or within sources)';

CREATE FUNCTION caredata._link_rule_condition(rule jsonb) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN (SELECT string_agg(format('l.%1$I = r.%1$I', c), ' AND ') FROM jsonb_array_elements_text(rule) c);
COMMENT ON FUNCTION caredata._link_rule_condition(jsonb) IS
  'internal: the equality condition of one blocking rule';

-- the planner's estimate of the pairs one blocking rule generates: what a
-- run checks against max_pairs before joining (milliseconds, where the
-- exact count of link_blocking_counts() scans and groups every record)
CREATE FUNCTION caredata._link_estimate_pairs(rule jsonb, link_type text) RETURNS double precision
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  plan jsonb;
BEGIN
  EXECUTE format('EXPLAIN (FORMAT JSON) SELECT 1 FROM caredata.link_record l JOIN caredata.link_record r ON %s WHERE %s',
                 caredata._link_rule_condition(rule), caredata._link_pair_condition(link_type)) INTO plan;
  RETURN (plan->0->'Plan'->>'Plan Rows')::double precision;
END
$$;
COMMENT ON FUNCTION caredata._link_estimate_pairs(jsonb, text) IS
  'internal: the planner''s estimate of the candidate pairs a blocking rule generates';

-- pairs each blocking rule generates over the current standardised records
CREATE FUNCTION caredata.link_blocking_counts(model text DEFAULT 'default', version integer DEFAULT NULL)
  RETURNS TABLE (rule integer, columns text[], pairs bigint)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_model text := model;
  spec jsonb;
  r record;
  cols text;
  n bigint;
BEGIN
  SELECT lm.spec INTO spec FROM caredata.link_model lm
   WHERE lm.model = p_model AND (link_blocking_counts.version IS NULL OR lm.version = link_blocking_counts.version)
   ORDER BY lm.version DESC LIMIT 1;
  IF spec IS NULL THEN
    PERFORM caredata._link_bad(format('linkage model "%s" does not exist', p_model), 'Create it with caredata.link_create_model().', '42704');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM caredata.link_record) THEN
    PERFORM caredata.link_standardise();
  END IF;
  FOR r IN SELECT b.value, b.ordinality FROM jsonb_array_elements(spec->'blocking') WITH ORDINALITY b LOOP
    cols := (SELECT string_agg(quote_ident(c), ', ') FROM jsonb_array_elements_text(r.value) c);
    EXECUTE format($q$
      SELECT coalesce(sum(CASE %1$L WHEN 'link_only' THEN (nn * nn - sq) / 2
                                       WHEN 'dedupe_only' THEN (sq - nn) / 2
                                       ELSE nn * (nn - 1) / 2 END), 0)::bigint
        FROM (SELECT sum(ns) AS nn, sum(ns * ns) AS sq
                FROM (SELECT %2$s, source, count(*)::numeric AS ns FROM caredata.link_record
                       WHERE %3$s GROUP BY %2$s, source) s
               GROUP BY %2$s) b$q$,
      spec->>'link_type', cols,
      (SELECT string_agg(format('%I IS NOT NULL', c), ' AND ') FROM jsonb_array_elements_text(r.value) c))
      INTO n;
    rule := r.ordinality;
    columns := ARRAY(SELECT jsonb_array_elements_text(r.value));
    pairs := n;
    RETURN NEXT;
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata.link_blocking_counts(text, integer) IS
  'how many candidate pairs each blocking rule of a model generates over the standardised records, before de-duplication across rules (standardises the sources first if nothing is standardised)';
