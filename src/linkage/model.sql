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
  'union-find over the (bigint, bigint) links a query returns, in its order, or, when it adds a weight (double precision) and optionally a step (smallint), in weight order (weight descending, step, record ids, NULLs last; sorted in memory): each record in a link, its cluster (the smallest record id in it) and whether a link of it was refused; one_to_one accepts a link only if neither record is linked yet; nhs_query (record id, NHS digits[, confirmed boolean | , date of birth date, sex text]) keeps apart clusters holding confirmed valid NHS numbers that differ by more than one typing error (confirmed by a link between two records carrying the number, or from the start when the third column is true, or when no two of the query''s records carrying it differ in date of birth or sex, NULLs ignored)';

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

-- the default model and three comparisons over names and an address, for
-- sources that declare the fields given_name and family_name (kind name)
-- and address (kind address)
CREATE FUNCTION caredata.link_names_spec() RETURNS jsonb
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN caredata.link_default_spec() || $spec$
{
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
     "tf": "postcode"},
    {"name": "given_name", "expression": "caredata.compare_name(l.given_name, r.given_name, l.given_name_ph, r.given_name_ph)",
     "levels": ["missing", "different", "sounds alike", "similar", "very similar", "exact"],
     "tf": "given_name"},
    {"name": "family_name", "expression": "caredata.compare_name(l.family_name, r.family_name, l.family_name_ph, r.family_name_ph)",
     "levels": ["missing", "different", "sounds alike", "similar", "very similar", "exact"],
     "tf": "family_name"},
    {"name": "address", "expression": "caredata.compare_token_overlap(l.address, r.address)",
     "levels": ["missing", "different", "half the words", "most words", "exact"]}
  ],
  "blocking": [["nhs_digits"], ["dob", "area"], ["postcode", "yob"], ["dob", "nhs_head"], ["dob", "nhs_tail"],
               ["family_name", "dob"], ["given_name", "family_name", "district"]]
}
$spec$::jsonb;
COMMENT ON FUNCTION caredata.link_names_spec() IS
  'the default linkage model with names and an address: adds given_name and family_name (compare_name, term-frequency adjusted) and address (compare_token_overlap) comparisons and two blocking rules over names; needs sources declaring the fields given_name, family_name (kind name) and address (kind address)';

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

-- a linkage project named by a caller: its name checked, and existing
CREATE FUNCTION caredata._link_check_project(project text) RETURNS text
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  -- the projects, models and person index are the coordinator's (issue 27)
  PERFORM caredata._coordinator_only('caredata linkage');
  IF project IS NULL OR project !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    PERFORM caredata._link_bad('a linkage project name is lower-case letters, digits and _', 'For example ''default'' or ''gp_hes''.');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM caredata.link_project p WHERE p.project = _link_check_project.project) THEN
    PERFORM caredata._link_bad(format('linkage project "%s" does not exist', project),
                               'Create it with caredata.link_create_project(), or see caredata.link_project.', '42704');
  END IF;
  RETURN project;
END
$$;
COMMENT ON FUNCTION caredata._link_check_project(text) IS
  'internal: the linkage project a caller names, refused with a hint when its name is malformed (22023) or it does not exist (42704)';

-- the partition of link_record or person_index that holds one project's
-- rows, found by its bound (names may be shortened), or NULL
CREATE FUNCTION caredata._link_partition(parent regclass, project text) RETURNS regclass
  LANGUAGE sql STABLE PARALLEL SAFE
  BEGIN ATOMIC
    SELECT c.oid::pg_catalog.regclass
      FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
     WHERE i.inhparent OPERATOR(pg_catalog.=) parent
       AND pg_catalog.pg_get_expr(c.relpartbound, c.oid) OPERATOR(pg_catalog.=)
           ('FOR VALUES IN (' OPERATOR(pg_catalog.||) pg_catalog.quote_literal(project) OPERATOR(pg_catalog.||) ')');
  END;
COMMENT ON FUNCTION caredata._link_partition(regclass, text) IS
  'internal: the partition of caredata.link_record or caredata.person_index holding one linkage project''s rows (NULL if none)';

-- every column of caredata.link_record (no field may take one of these names)
CREATE FUNCTION caredata._link_record_columns() RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN ARRAY['rid', 'source', 'record_id', 'nhs_digits', 'nhs_head', 'nhs_tail', 'dob', 'sex', 'postcode', 'sector',
               'district', 'area', 'yob', 'tf_nhs_digits', 'tf_dob', 'tf_postcode', 'record_key', 'fields',
               'pattern', 'weight', 'l', 'r', 'rid_l', 'rid_r', 'tf_adj'];
COMMENT ON FUNCTION caredata._link_record_columns() IS
  'internal: the names a linkage field may not take (the columns of caredata.link_record and of the pair queries)';

-- the fields the sources declare, and the columns each gives a record
-- (the field; its phonetic code for a name, its house number for an
-- address; its value frequency tf_<field>)
CREATE FUNCTION caredata._link_fields(project text)
  RETURNS TABLE (field text, kind text, columns text[])
  -- PL/pgSQL, not SQL: its plan is kept for the session (a SQL function
  -- with SET is planned again at every call, and a lookup calls this and
  -- the functions below several times)
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT f.key, min(f.value->>'kind'),
         ARRAY[f.key] || CASE min(f.value->>'kind') WHEN 'name' THEN ARRAY[f.key || '_ph']
                                                    WHEN 'address' THEN ARRAY[f.key || '_num'] ELSE '{}'::text[] END
    FROM caredata.link_source ls, jsonb_each(ls.fields) f
   WHERE ls.project = _link_fields.project
   GROUP BY f.key ORDER BY f.key;
END
$$;
COMMENT ON FUNCTION caredata._link_fields(text) IS
  'internal: the further fields a linkage project''s sources declare, their kind and the record columns each gives';

-- every record column the declared fields give
CREATE FUNCTION caredata._link_field_columns(project text) RETURNS text[]
  LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(array_agg(c ORDER BY c), '{}') FROM caredata._link_fields(project) f, unnest(f.columns) c
$$;
COMMENT ON FUNCTION caredata._link_field_columns(text) IS
  'internal: the record columns the declared linkage fields give (each field, name_ph, address_num), which comparisons and blocking rules may name';

-- a project's standardised records as a relation with one column per
-- field (a subquery over its partition of caredata.link_record), or the
-- partition itself when no source of the project declares a field (the
-- partition, not the parent: the parent has no statistics)
CREATE FUNCTION caredata._link_record_sql(project text) RETURNS text
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result text;
BEGIN
  SELECT CASE WHEN count(*) = 0 THEN caredata._link_partition('caredata.link_record', _link_record_sql.project)::text
              ELSE '(SELECT x.*' ||
                   (SELECT string_agg(format(', (x.fields OPERATOR(pg_catalog.->>) %1$L) AS %1$I', c), '' ORDER BY c)
                      FROM caredata._link_fields(_link_record_sql.project) g, unnest(g.columns) c) ||
                   string_agg(format(', (x.fields OPERATOR(pg_catalog.->>) %1$L)::double precision AS %1$I', 'tf_' || f.field), '' ORDER BY f.field) ||
                   ' FROM ' || caredata._link_partition('caredata.link_record', _link_record_sql.project)::text || ' x)' END
    INTO result
    FROM caredata._link_fields(_link_record_sql.project) f;
  RETURN result;
END
$$;
COMMENT ON FUNCTION caredata._link_record_sql(text) IS
  'internal: a project''s standardised records with one column per declared field (and tf_<field>), for comparisons and blocking rules to name';

-- statistics, lookup indexes and partitions of the linkage tables, which
-- the extension owns: the linker may write them but not ANALYZE, index,
-- truncate one project's partition or create partitions itself.  SECURITY
-- DEFINER with a pinned search_path; it only ever names the two tables
-- below, their partitions of one validated project and whitelisted columns.
CREATE FUNCTION caredata._link_maintain(what text, rules jsonb DEFAULT '[]', project text DEFAULT 'default') RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  col text;
  parent text;
  part regclass;
  records regclass;
  persons regclass;
  pname text;
BEGIN
  IF project IS NULL OR project OPERATOR(pg_catalog.!~) '^[a-z][a-z0-9_]{0,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a linkage project name is lower-case letters, digits and _';
  END IF;
  IF what OPERATOR(pg_catalog.=) 'create_partitions' THEN
    -- link_create_project() has inserted the project's row
    IF NOT EXISTS (SELECT 1 FROM caredata.link_project p WHERE p.project OPERATOR(pg_catalog.=) _link_maintain.project) THEN
      RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = pg_catalog.format('linkage project "%s" does not exist', project),
        HINT = 'Create projects with caredata.link_create_project().';
    END IF;
    FOREACH parent IN ARRAY ARRAY['link_record', 'person_index'] LOOP
      IF caredata._link_partition(('caredata.' OPERATOR(pg_catalog.||) parent)::pg_catalog.regclass, project) IS NOT NULL THEN
        CONTINUE;
      END IF;
      -- <table>_p_<project>, or a digest where that is too long or taken
      pname := parent OPERATOR(pg_catalog.||) '_p_' OPERATOR(pg_catalog.||) project;
      IF pg_catalog.length(pname) OPERATOR(pg_catalog.>) 63
         OR pg_catalog.to_regclass('caredata.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(pname)) IS NOT NULL THEN
        pname := parent OPERATOR(pg_catalog.||) '_p_' OPERATOR(pg_catalog.||) pg_catalog.md5(project);
      END IF;
      IF parent OPERATOR(pg_catalog.=) 'link_record' THEN
        EXECUTE pg_catalog.format('CREATE TABLE caredata.%I PARTITION OF caredata.link_record (PRIMARY KEY (rid)) FOR VALUES IN (%L)',
                                  pname, project);
      ELSE
        EXECUTE pg_catalog.format('CREATE TABLE caredata.%I PARTITION OF caredata.person_index (PRIMARY KEY (record_key, source), UNIQUE (rid)) FOR VALUES IN (%L)',
                                  pname, project);
        EXECUTE pg_catalog.format('CREATE INDEX ON caredata.%I (person_id)', pname);
        -- integer record ids, as sources join them (record_key is the key)
        EXECUTE pg_catalog.format('CREATE INDEX ON caredata.%I (record_id, source)', pname);
      END IF;
      EXECUTE pg_catalog.format('REVOKE ALL ON caredata.%I FROM PUBLIC', pname);
      EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON caredata.%I TO caredata_linker, caredata_admin', pname);
      EXECUTE pg_catalog.format('COMMENT ON TABLE caredata.%I IS %L', pname,
                                pg_catalog.format('partition of caredata.%s holding linkage project %s', parent, project));
    END LOOP;
    RETURN;
  ELSIF what OPERATOR(pg_catalog.=) 'drop_partitions' THEN
    -- link_drop_project() has deleted the project's row
    IF EXISTS (SELECT 1 FROM caredata.link_project p WHERE p.project OPERATOR(pg_catalog.=) _link_maintain.project) THEN
      RAISE EXCEPTION USING ERRCODE = '55000', MESSAGE = 'a linkage project''s partitions go only with the project',
        HINT = 'Drop the project with caredata.link_drop_project().';
    END IF;
    FOREACH parent IN ARRAY ARRAY['link_record', 'person_index'] LOOP
      part := caredata._link_partition(('caredata.' OPERATOR(pg_catalog.||) parent)::pg_catalog.regclass, project);
      IF part IS NOT NULL THEN
        EXECUTE pg_catalog.format('DROP TABLE %s', part);
      END IF;
    END LOOP;
    RETURN;
  END IF;

  records := caredata._link_partition('caredata.link_record'::pg_catalog.regclass, project);
  persons := caredata._link_partition('caredata.person_index'::pg_catalog.regclass, project);
  IF records IS NULL OR persons IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = pg_catalog.format('linkage project "%s" does not exist', project),
      HINT = 'Create it with caredata.link_create_project(), or see caredata.link_project.';
  END IF;
  IF what OPERATOR(pg_catalog.=) 'analyze_records' THEN
    EXECUTE pg_catalog.format('ANALYZE %s', records);
  ELSIF what OPERATOR(pg_catalog.=) 'truncate_records' THEN
    EXECUTE pg_catalog.format('TRUNCATE %s', records);
  ELSIF what OPERATOR(pg_catalog.=) 'index_rules' THEN
    -- one single-column index per distinct leading column of the rules: a
    -- lookup finds a handful of rows by it and filters on the rest
    FOR col IN SELECT DISTINCT b.value OPERATOR(pg_catalog.->>) 0 FROM pg_catalog.jsonb_array_elements(rules) b LOOP
      IF col OPERATOR(pg_catalog.=) ANY (caredata._link_field_columns(project)) THEN
        -- a field: an index on the expression the record relation names it by
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                        WHERE i.indrelid OPERATOR(pg_catalog.=) records
                          AND pg_catalog.pg_get_indexdef(i.indexrelid) OPERATOR(pg_catalog.~~)
                              ('%((fields ->> ' OPERATOR(pg_catalog.||) pg_catalog.quote_literal(col) OPERATOR(pg_catalog.||) '))%')) THEN
          EXECUTE pg_catalog.format('CREATE INDEX ON %s ((fields OPERATOR(pg_catalog.->>) %L))', records, col);
        END IF;
        CONTINUE;
      END IF;
      IF NOT col OPERATOR(pg_catalog.=) ANY (caredata._link_key_columns()) THEN
        RAISE EXCEPTION USING ERRCODE = '42703', MESSAGE = 'blocking rules name only standardised record columns and declared fields';
      END IF;
      IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a
                                 ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0]
                      WHERE i.indrelid OPERATOR(pg_catalog.=) records AND i.indnatts OPERATOR(pg_catalog.=) 1
                        AND a.attname OPERATOR(pg_catalog.=) col) THEN
        EXECUTE pg_catalog.format('CREATE INDEX ON %s (%I)', records, col);
      END IF;
    END LOOP;
  ELSIF what OPERATOR(pg_catalog.=) 'field_statistics' THEN
    -- statistics on each field's expression in the project's partition,
    -- which ANALYZE fills and the planner reads to estimate a blocking
    -- rule on the field (named by a digest of partition and field)
    FOR col IN SELECT c FROM pg_catalog.unnest(caredata._link_field_columns(project)) c LOOP
      pname := 'link_record_f_' OPERATOR(pg_catalog.||) pg_catalog.left(pg_catalog.md5(records::text OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) col), 16);
      IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_statistic_ext e
                      WHERE e.stxnamespace OPERATOR(pg_catalog.=) 'caredata'::pg_catalog.regnamespace
                        AND e.stxname OPERATOR(pg_catalog.=) pname) THEN
        EXECUTE pg_catalog.format('CREATE STATISTICS caredata.%I ON ((fields OPERATOR(pg_catalog.->>) %L)) FROM %s', pname, col, records);
      END IF;
    END LOOP;
  ELSIF what OPERATOR(pg_catalog.=) 'drop_indexes' THEN
    -- before link_record is rebuilt: building them afresh is cheaper than
    -- maintaining them row by row (the primary key too, whose rids arrive
    -- in no order: 5.0 s to insert 2.5M records with it, 2.0 s without,
    -- and 0.5 s to build it after; 'add_record_key' puts it back)
    FOR col IN SELECT c.conname FROM pg_catalog.pg_constraint c
                WHERE c.conrelid OPERATOR(pg_catalog.=) records AND c.contype OPERATOR(pg_catalog.=) 'p' LOOP
      EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', records, col);
    END LOOP;
    FOR col IN SELECT i.indexrelid::pg_catalog.regclass::text FROM pg_catalog.pg_index i
                WHERE i.indrelid OPERATOR(pg_catalog.=) records AND NOT i.indisprimary LOOP
      EXECUTE pg_catalog.format('DROP INDEX %s', col);
    END LOOP;
  ELSIF what OPERATOR(pg_catalog.=) 'add_record_key' THEN
    -- after link_record is rebuilt: a record id twice in a source fails here
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
                    WHERE c.conrelid OPERATOR(pg_catalog.=) records AND c.contype OPERATOR(pg_catalog.=) 'p') THEN
      EXECUTE pg_catalog.format('ALTER TABLE %s ADD PRIMARY KEY (rid)', records);
    END IF;
  ELSIF what OPERATOR(pg_catalog.=) 'truncate_persons' THEN
    EXECUTE pg_catalog.format('TRUNCATE %s', persons);
  ELSIF what OPERATOR(pg_catalog.=) 'drop_person_indexes' THEN
    -- before the person index is rewritten (link_run holds the lock that
    -- lookups wait for, so nobody sees it without them)
    FOR col IN SELECT c.conname FROM pg_catalog.pg_constraint c
                WHERE c.conrelid OPERATOR(pg_catalog.=) persons AND c.contype OPERATOR(pg_catalog.=) ANY ('{p,u}'::"char"[]) LOOP
      EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', persons, col);
    END LOOP;
    FOR col IN SELECT i.indexrelid::pg_catalog.regclass::text FROM pg_catalog.pg_index i
                WHERE i.indrelid OPERATOR(pg_catalog.=) persons LOOP
      EXECUTE pg_catalog.format('DROP INDEX %s', col);
    END LOOP;
  ELSIF what OPERATOR(pg_catalog.=) 'build_person_indexes' THEN
    EXECUTE pg_catalog.format('ALTER TABLE %s ADD PRIMARY KEY (record_key, source), ADD UNIQUE (rid)', persons);
    EXECUTE pg_catalog.format('CREATE INDEX ON %s (person_id)', persons);
    EXECUTE pg_catalog.format('CREATE INDEX ON %s (record_id, source)', persons);
    EXECUTE pg_catalog.format('ANALYZE %s', persons);
  ELSE
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'unknown linkage maintenance step';
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._link_maintain(text, jsonb, text) IS
  'internal: as the extension owner, for one linkage project: create or drop its partitions of link_record and person_index, truncate them, ANALYZE the standardised records, create statistics on its fields, drop or create the blocking rules'' lookup indexes and the records'' primary key, and drop or build the person index''s indexes around its rewrite';

-- what a comparison or a deterministic step may do, read off the verbose
-- plan of it (after the planner has inlined what it inlines): no subquery;
-- no table but the standardised records (records true) or none (false); no
-- function, operator or type outside caredata and pg_catalog (a domain's
-- CHECK or a cast of another schema runs its owner's code); and no function
-- without an immutable form, nor ts_rewrite (query_to_xml, table_to_xml,
-- ts_stat, ts_rewrite's text form run queries; current_setting,
-- pg_read_file, lo_get, nextval read or change other state).  The plan of
-- code run by another role (an admin running a model a linker wrote) must
-- not read what its author cannot.
CREATE FUNCTION caredata._link_check_plan(plan jsonb, what text, records boolean) RETURNS void
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  txt text := plan::text;
  bad text;
BEGIN
  IF txt ~ '"(Subplan Name|Parent Relationship)": "(InitPlan|SubPlan|Subquery)' OR txt LIKE '%"Subplan Name"%'
     OR EXISTS (SELECT 1 FROM jsonb_path_query(plan, 'strict $.**."Relation Name"') n
                 WHERE NOT records
                    OR n #>> '{}' <> 'link_record'
                   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
                                    WHERE i.inhparent = 'caredata.link_record'::regclass AND c.relname = n #>> '{}')) THEN
    PERFORM caredata._link_bad(format('%s reads something other than %s', what,
                                      CASE WHEN records THEN 'the two records it compares' ELSE 'the comparison levels' END),
                               CASE WHEN records THEN 'A comparison expression is a function of the columns of l and r only: no subquery and no other table.'
                                    ELSE 'A step is a boolean over the comparison levels by name: no subquery and no table.' END, '42501');
  END IF;
  -- schema.function(, OPERATOR(schema., ::schema.type (the lookbehind and
  -- lookahead consume nothing, so that a call nested in another is seen)
  SELECT m[1] INTO bad
    FROM jsonb_path_query(plan, 'strict $.**."Output"[*]') o,
         regexp_matches(o #>> '{}', '(?:(?<![a-z0-9_."$])("?[a-z_][a-z0-9_$]*"?)\.(?:"?[a-z_][a-z0-9_$]*"?)(?=\()|OPERATOR\(("?[a-z_][a-z0-9_$]*"?)\.|::("?[a-z_][a-z0-9_$]*"?)\.)', 'gi') x,
         LATERAL (SELECT ARRAY[coalesce(x[1], x[2], x[3])]) AS y(m)
   WHERE m[1] NOT IN ('caredata', 'pg_catalog')
   LIMIT 1;
  IF bad IS NOT NULL THEN
    PERFORM caredata._link_bad(format('%s calls a function outside caredata and pg_catalog', what),
                               'Use caredata''s comparators and built-in functions; a function, operator or type of another schema could read other tables.', '42501');
  END IF;
  -- every function called: one with an immutable form (an unqualified name
  -- that no function has is SQL syntax, such as COALESCE or TRIM)
  SELECT x[1] || '.' || x[2] INTO bad
    FROM jsonb_path_query(plan, 'strict $.**."Output"[*]') o,
         regexp_matches(o #>> '{}', '(?<![a-z0-9_."$])(?:("?[a-z_][a-z0-9_$]*"?)\.)?("?[a-z_][a-z0-9_$]*"?)(?=\()', 'gi') m,
         LATERAL (SELECT ARRAY[coalesce(btrim(m[1], '"'), 'pg_catalog'),
                               CASE WHEN m[2] LIKE '"%' THEN btrim(m[2], '"') ELSE lower(m[2]) END]) AS y(x)
   WHERE x[1] IN ('caredata', 'pg_catalog')
     AND (x[2] = 'ts_rewrite'
          OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.pronamespace = x[1]::regnamespace AND p.proname = x[2])
             AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.pronamespace = x[1]::regnamespace AND p.proname = x[2]
                                AND p.provolatile = 'i' AND p.prokind = 'f')
          OR x[1] = 'caredata' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.pronamespace = x[1]::regnamespace AND p.proname = x[2]))
   LIMIT 1;
  IF bad IS NOT NULL THEN
    PERFORM caredata._link_bad(format('%s calls a function that is not immutable', what),
                               'A comparison or step is a pure function of what it is given: functions that read settings, files, sequences or other tables are refused.', '42501');
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._link_check_plan(jsonb, text, boolean) IS
  'internal: refuse the verbose plan of a comparison expression or deterministic step that reads anything but its input (subqueries, other tables, functions, operators or types outside caredata and pg_catalog, functions with no immutable form, ts_rewrite)';

-- a comparison reads only the two standardised records it is given
-- (_link_check_plan()); checked when a model is created and again where a
-- run, explanation or lookup builds its SQL from the model (the spec is a
-- table row the linker may write directly)
CREATE FUNCTION caredata._link_check_expression(name text, expression text, rec text) RETURNS void
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  plan jsonb;
BEGIN
  EXECUTE format('EXPLAIN (VERBOSE, FORMAT JSON) SELECT (%s)::integer FROM %s l, %2$s r', expression, rec) INTO plan;
  PERFORM caredata._link_check_plan(plan, format('comparison "%s"', name), true);
END
$$;
COMMENT ON FUNCTION caredata._link_check_expression(text, text, text) IS
  'internal: refuse a comparison expression that reads anything but the two standardised records (subqueries, other tables, functions, operators or types outside caredata and pg_catalog, functions that are not immutable)';

-- a deterministic step reads only the comparison levels (names: the
-- comparisons' names), as the parenthesised boolean a run evaluates
CREATE FUNCTION caredata._link_check_step(step text, names text[]) RETURNS void
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  plan jsonb;
BEGIN
  -- over two rows of values, which the planner cannot fold away
  EXECUTE format('EXPLAIN (VERBOSE, FORMAT JSON) SELECT CASE WHEN (%s) THEN 1 END FROM (VALUES (%s), (%2$s)) p(%s)', step,
                 (SELECT string_agg('0::smallint', ', ') FROM unnest(names) n),
                 (SELECT string_agg(quote_ident(n), ', ') FROM unnest(names) n)) INTO plan;
  PERFORM caredata._link_check_plan(plan, 'a deterministic step', false);
END
$$;
COMMENT ON FUNCTION caredata._link_check_step(text, text[]) IS
  'internal: refuse a deterministic step that reads anything but the comparison levels (subqueries, tables, functions that are not immutable or outside caredata and pg_catalog)';

CREATE FUNCTION caredata._link_check_spec(spec jsonb, project text DEFAULT 'default') RETURNS void
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c jsonb;
  names text[] := '{}';
  rule jsonb;
  col text;
  step text;
  probe text;
  nl integer;
  rec text := caredata._link_record_sql(project);
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
    IF c ? 'tf' AND c->>'tf' NOT IN ('nhs_digits', 'dob', 'postcode') AND NOT c->>'tf' IN (SELECT f.field FROM caredata._link_fields(project) f) THEN
      PERFORM caredata._link_bad(format('comparison "%s": term-frequency adjustment is available for nhs_digits, dob, postcode and the declared fields only', c->>'name'),
                                 'Remove "tf" or set it to one of those columns (fields are declared by caredata.link_add_source(fields => ...)).');
    END IF;
    IF c ? 'm' AND (jsonb_typeof(c->'m') IS DISTINCT FROM 'array' OR jsonb_array_length(c->'m') <> nl) THEN
      PERFORM caredata._link_bad(format('comparison "%s": starting m must have one probability per level', c->>'name'), 'Remove "m" to use the default start.');
    END IF;
    IF c->>'expression' IS NULL THEN
      PERFORM caredata._link_bad(format('comparison "%s" has no expression', c->>'name'),
                                 'Set "expression" to SQL over the record aliases l and r, e.g. caredata.compare_sex(l.sex, r.sex).');
    END IF;
    BEGIN
      EXECUTE format('SELECT (%s)::integer FROM %s l, %2$s r WHERE false', c->>'expression', rec);
    EXCEPTION WHEN OTHERS THEN
      PERFORM caredata._link_bad(format('comparison "%s": its expression is not valid over the standardised records: %s', c->>'name', SQLERRM),
                                 'Use the columns of caredata.link_record and the declared fields through the aliases l and r, and a comparator returning an integer level.', '42804');
    END;
    PERFORM caredata._link_check_expression(c->>'name', c->>'expression', rec);
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
      IF NOT (col = ANY (caredata._link_key_columns()) OR col = ANY (caredata._link_field_columns(project))) OR col = 'source' AND jsonb_array_length(rule) = 1 THEN
        PERFORM caredata._link_bad(format('blocking rules cannot use column "%s"', col),
                                   'Blocking columns: ' || array_to_string(caredata._link_key_columns() || caredata._link_field_columns(project), ', ') || ' (source only with another column).', '42703');
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
      PERFORM caredata._link_check_step(step, names);
    END LOOP;
  END IF;
  IF coalesce((spec->>'u_sample_pairs')::bigint, 0) < 100 OR coalesce((spec->>'max_pairs')::bigint, 0) < 1 THEN
    PERFORM caredata._link_bad('u_sample_pairs must be at least 100 and max_pairs at least 1', 'See caredata.link_default_spec() for the defaults.');
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._link_check_spec(jsonb, text) IS
  'internal: refuse a linkage model spec with a clear error and hint (its expressions and blocking rules checked against the project''s records and fields)';

-- ---- projects ----

-- A project holds its own sources, models, runs, links, standardised
-- records and person index; runs of one never read or write another's.
-- Creating one makes its partitions of link_record and person_index
-- (as the extension owner, through _link_maintain()).
CREATE FUNCTION caredata.link_create_project(project text, description text DEFAULT NULL) RETURNS void
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_project text := project;
BEGIN
  PERFORM caredata._coordinator_only('caredata linkage');
  IF p_project IS NULL OR p_project !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    PERFORM caredata._link_bad('a linkage project name is lower-case letters, digits and _', 'For example ''gp_hes'' or ''birth_cohort''.');
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.link_project x WHERE x.project = p_project) THEN
    PERFORM caredata._link_bad(format('linkage project "%s" already exists', p_project),
                               'Choose another name, or drop it first with caredata.link_drop_project().', '42710');
  END IF;
  INSERT INTO caredata.link_project (project, description) VALUES (p_project, link_create_project.description);
  PERFORM caredata._link_maintain('create_partitions', project => p_project);
  PERFORM caredata.audit_append('linkage.create_project', p_project, jsonb_build_object('description', link_create_project.description));
END
$$;
COMMENT ON FUNCTION caredata.link_create_project(text, text) IS
  'create a linkage project: a name under which sources, models, runs, links, standardised records and a person index live apart from every other project''s';

-- Dropping a project removes all of it; 'default' cannot be dropped (the
-- calls that name no project use it).
CREATE FUNCTION caredata.link_drop_project(project text) RETURNS void
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_project text := caredata._link_check_project(project);
  counts jsonb;
BEGIN
  IF p_project = 'default' THEN
    PERFORM caredata._link_bad('the default linkage project cannot be dropped',
                               'Calls that name no project use it; empty it instead (delete its sources, models and runs).', '0A000');
  END IF;
  -- one run at a time (as link_run() takes it)
  LOCK TABLE caredata.link_record_key IN EXCLUSIVE MODE;
  counts := jsonb_build_object(
    'sources', (SELECT count(*) FROM caredata.link_source x WHERE x.project = p_project),
    'models', (SELECT count(*) FROM caredata.link_model x WHERE x.project = p_project),
    'runs', (SELECT count(*) FROM caredata.link_run x WHERE x.project = p_project),
    'records', (SELECT count(*) FROM caredata.link_record_key x WHERE x.project = p_project));
  DELETE FROM caredata.link_pair x WHERE x.run_id IN (SELECT r.run_id FROM caredata.link_run r WHERE r.project = p_project);
  DELETE FROM caredata.link_run x WHERE x.project = p_project;   -- and person_event, by its foreign key
  DELETE FROM caredata.link_model x WHERE x.project = p_project; -- and link_model_level
  DELETE FROM caredata.link_record_key x WHERE x.project = p_project;
  DELETE FROM caredata.link_source x WHERE x.project = p_project;
  DELETE FROM caredata.link_project x WHERE x.project = p_project;
  PERFORM caredata._link_maintain('drop_partitions', project => p_project);
  PERFORM caredata.audit_append('linkage.drop_project', p_project, counts);
END
$$;
COMMENT ON FUNCTION caredata.link_drop_project(text) IS
  'drop a linkage project and everything of it (sources, models, runs, links, person events, standardised records, person index); audited; the default project cannot be dropped';

-- ---- sources ----

CREATE FUNCTION caredata.link_add_source(source text, relation regclass, record_id name,
    nhs_number name DEFAULT NULL, dob name DEFAULT NULL, sex name DEFAULT NULL, postcode name DEFAULT NULL,
    fields jsonb DEFAULT NULL, project text DEFAULT 'default')
  RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_project text := caredata._link_check_project(project);
  p_source text := source;
  c record;
  typ regtype;
  allowed regtype[];
  v_fields jsonb := '{}';
  f record;
  f_col text;
  f_kind text;
BEGIN
  IF p_source IS NULL OR p_source !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    PERFORM caredata._link_bad('a linkage source name is lower-case letters, digits and _', 'For example ''gp'' or ''hes''.');
  END IF;
  -- further fields: {"field": "column"} (kind text) or {"field": {"column": ..., "kind": ...}}
  IF fields IS NOT NULL AND jsonb_typeof(fields) <> 'object' THEN
    PERFORM caredata._link_bad('fields must be a JSON object of field names',
                               'For example {"given_name": {"column": "forename", "kind": "name"}, "address": {"column": "address_line_1", "kind": "address"}}.');
  END IF;
  FOR f IN SELECT * FROM jsonb_each(coalesce(fields, '{}')) ORDER BY 1 LOOP
    IF f.key !~ '^[a-z][a-z0-9_]{0,30}$' OR f.key LIKE 'tf\_%' OR f.key ~ '_(ph|num)$'
       OR f.key = ANY (caredata._link_record_columns()) THEN
      PERFORM caredata._link_bad(format('"%s" cannot be a field name', left(f.key, 40)),
                                 'A field name is lower-case letters, digits and _ (up to 31), does not start with tf_ or end in _ph or _num, and is not a column of caredata.link_record.');
    END IF;
    IF jsonb_typeof(f.value) = 'string' THEN
      f_col := f.value #>> '{}'; f_kind := 'text';
    ELSIF jsonb_typeof(f.value) = 'object' AND jsonb_typeof(f.value->'column') = 'string'
          AND (NOT f.value ? 'kind' OR jsonb_typeof(f.value->'kind') = 'string') THEN
      f_col := f.value->>'column'; f_kind := coalesce(f.value->>'kind', 'text');
    ELSE
      PERFORM caredata._link_bad(format('field "%s" must name its column', f.key), 'Give {"column": "...", "kind": "name"} or just the column name.');
    END IF;
    IF f_kind NOT IN ('name', 'address', 'postcode', 'identifier', 'text') THEN
      PERFORM caredata._link_bad(format('field "%s": kind must be name, address, postcode, identifier or text', f.key),
                                 'name: case, accents, punctuation, titles, plus a phonetic code (field_ph); address: tokens, plus the house number (field_num); postcode: UK canonical or any country''s as text; identifier: letters and digits only; text: case and spaces.');
    END IF;
    IF EXISTS (SELECT 1 FROM caredata.link_source ls WHERE ls.project = p_project AND ls.source <> p_source AND ls.fields ? f.key AND ls.fields->f.key->>'kind' <> f_kind) THEN
      PERFORM caredata._link_bad(format('field "%s" has another kind in another source', f.key),
                                 'A field is compared across sources: give it the same kind everywhere.');
    END IF;
    v_fields := v_fields || jsonb_build_object(f.key, jsonb_build_object('column', f_col, 'kind', f_kind));
  END LOOP;
  FOR c IN SELECT * FROM (VALUES
      ('record_id', record_id, ARRAY['smallint', 'integer', 'bigint', 'text', 'character varying', 'character', 'uuid']::regtype[]),
      ('nhs_number', nhs_number, ARRAY['text', 'character varying', 'character', 'bigint', 'caredata.nhs_number']::regtype[]),
      ('dob', dob, ARRAY['date', 'timestamp without time zone', 'timestamp with time zone', 'text', 'character varying', 'character']::regtype[]),
      ('sex', sex, ARRAY['text', 'character varying', 'character', 'smallint', 'integer']::regtype[]),
      ('postcode', postcode, ARRAY['text', 'character varying', 'character']::regtype[])) v(what, col, types)
    UNION ALL
    SELECT 'field ' || e.key, (e.value->>'column')::name,
           CASE WHEN e.value->>'kind' IN ('identifier', 'text')
                THEN ARRAY['text', 'character varying', 'character', 'smallint', 'integer', 'bigint', 'numeric', 'uuid']::regtype[]
                ELSE ARRAY['text', 'character varying', 'character']::regtype[] END
      FROM jsonb_each(v_fields) e
  LOOP
    IF c.col IS NULL THEN
      IF c.what = 'record_id' THEN
        PERFORM caredata._link_bad('a linkage source needs its record id column', 'Name an integer or text column that identifies each record.');
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
  INSERT INTO caredata.link_source AS s (project, source, relation, record_id, nhs_number, dob, sex, postcode, fields)
  VALUES (p_project, p_source, relation, record_id, nhs_number, dob, sex, postcode, v_fields)
  ON CONFLICT ON CONSTRAINT link_source_pkey DO UPDATE
    SET relation = excluded.relation, record_id = excluded.record_id, nhs_number = excluded.nhs_number,
        dob = excluded.dob, sex = excluded.sex, postcode = excluded.postcode, fields = excluded.fields,
        added_at = now(), added_by = current_user;
  -- statistics on each field, so that the planner estimates blocking on it
  PERFORM caredata._link_maintain('field_statistics', project => p_project);
  -- what was registered, in words (column names only, never a value)
  RETURN format('source %s of project %s: %s, record id %s; %s%s', p_source, p_project, relation, record_id,
                coalesce(nullif(concat_ws(', ', 'NHS number ' || nhs_number, 'date of birth ' || dob, 'sex ' || sex, 'postcode ' || postcode), ''),
                         'no NHS identifiers'),
                coalesce('; fields ' || (SELECT string_agg(format('%s (%s of %s)', e.key, e.value->>'kind', e.value->>'column'), ', ' ORDER BY e.key)
                                           FROM jsonb_each(v_fields) e), ''));
END
$$;
COMMENT ON FUNCTION caredata.link_add_source(text, regclass, name, name, name, name, name, jsonb, text) IS
  'register (or re-register) a linkage source of a project: a relation, its record id column (integer or text), its NHS identifier columns (any may be NULL) and further fields to standardise and compare ({"field": {"column": ..., "kind": name|address|postcode|identifier|text}}); returns what was registered, in words';

-- the SQL expression that standardises a text value of one kind (a field,
-- or the postcode): shared by the runs and the one-record lookup
CREATE FUNCTION caredata._link_std_kind(kind text, arg text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN CASE kind
    WHEN 'name' THEN format('caredata.standardise_name(%s)', arg)
    WHEN 'name_ph' THEN format('caredata.name_phonetic(caredata.standardise_name(%s))', arg)
    WHEN 'address' THEN format('caredata.standardise_address(%s)', arg)
    WHEN 'address_num' THEN format('caredata.address_house_number(%s)', arg)
    WHEN 'postcode' THEN format('caredata.standardise_postcode_any(%s)', arg)
    WHEN 'identifier' THEN format('nullif(upper(regexp_replace(%s, ''[^[:alnum:]]'', '''', ''g'')), '''')', arg)
    WHEN 'text' THEN format('nullif(lower(btrim(regexp_replace(%s, ''\s+'', '' '', ''g''))), '''')', arg) END;
COMMENT ON FUNCTION caredata._link_std_kind(text, text) IS
  'internal: the standardising SQL expression for a value of one field kind (name, its phonetic code, address, its house number, postcode of any country, identifier, text)';

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
  -- further fields by kind, and the postcode (of any country)
  IF what IN ('name', 'address', 'address_num', 'identifier', 'text', 'postcode') THEN
    RETURN caredata._link_std_kind(what, format('s.%I::text', col));
  END IF;
  RETURN CASE what
    -- the record id as an integer when it is one, and always as text
    WHEN 'record_id' THEN CASE WHEN typ IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype)
                               THEN format('s.%I::bigint', col) ELSE 'NULL::bigint' END
    WHEN 'record_key' THEN format('s.%I::text', col)
    WHEN 'nhs_number' THEN CASE WHEN typ IN ('bigint'::regtype, 'caredata.nhs_number'::regtype)
                                THEN format('s.%I::bigint', col)
                                ELSE format('caredata.nhs_number_digits(s.%I::text)', col) END
    WHEN 'dob' THEN CASE WHEN typ IN ('text'::regtype, 'character varying'::regtype, 'character'::regtype)
                         THEN format('caredata.try_standardise_dob(s.%I::text)', col)
                         ELSE format('(SELECT d FROM (SELECT s.%I::date AS d) x WHERE caredata.dob_is_valid(d))', col) END
    WHEN 'sex' THEN format('caredata.try_standardise_sex(s.%I::text)', col)
  END;
END
$$;
COMMENT ON FUNCTION caredata._link_std_expr(regclass, name, text) IS
  'internal: the standardising expression for one identifier column of a linkage source';

-- how many rows of a temporary table hold a value (src/linkage/frequency.c):
-- each call site counts its column once, in memory
CREATE FUNCTION caredata._link_value_count(stage regclass, col name, row_tid tid, value anyelement)
  RETURNS bigint AS 'MODULE_PATHNAME', 'link_value_count' LANGUAGE C STABLE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._link_value_count(regclass, name, tid, anyelement) IS
  'internal: the number of rows of a temporary table of this session whose column holds the value (the type''s hash equality; NULL for NULL), counted in memory once per call site (at most maintenance_work_mem), read by the row''s TID when given and the row holds the value; serves link_standardise()';

-- rebuild link_record from the sources; returns the number of records
CREATE FUNCTION caredata.link_standardise(sources text[] DEFAULT NULL, run_id bigint DEFAULT 0, project text DEFAULT 'default')
  RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_project text := caredata._link_check_project(project);
  s record;
  f record;
  n bigint;
  total bigint;
  parts text[] := '{}';
  work_table text;
  f_cols text;
  f_json text := '';
  f_join text := '';
  i integer := 0;
  saved_tuple_cost text;
  saved_work_mem text;
  in_memory boolean := current_setting('caredata.link_compare_engine')::boolean;
  freq_nhs text;
  freq_dob text;
  freq_postcode text;
  -- a staged column's frequency counted in C (frequency.c): NULL for a
  -- value held once, which coalesce() makes 1 / records as the SQL does
  freq_c constant text := 'nullif(caredata._link_value_count(''pg_temp.link_stage''::regclass, %1$L, t.ctid, t.%1$I), 1)::double precision / %2$s';
  src_counts jsonb := '{}';
BEGIN
  IF NOT EXISTS (SELECT 1 FROM caredata.link_source ls WHERE ls.project = p_project AND (sources IS NULL OR ls.source = ANY (sources))) THEN
    PERFORM caredata._link_bad('no linkage sources to link', 'Register sources with caredata.link_add_source().', '42704');
  END IF;
  IF sources IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(sources) x WHERE x NOT IN (SELECT ls.source FROM caredata.link_source ls WHERE ls.project = p_project)) THEN
    PERFORM caredata._link_bad('a named linkage source does not exist', 'See caredata.link_source for the registered sources.', '42704');
  END IF;
  -- the standardised records, each with its stable rid if it has one; the
  -- declared fields as columns f_<field> (NULL where a source lacks one)
  FOR s IN SELECT * FROM caredata.link_source ls WHERE ls.project = p_project AND (sources IS NULL OR ls.source = ANY (sources)) ORDER BY ls.source LOOP
    f_cols := '';
    FOR f IN SELECT * FROM caredata._link_fields(p_project) LOOP
      f_cols := f_cols || format(', %s AS %I', caredata._link_std_expr(s.relation, (s.fields->f.field->>'column')::name, f.kind), 'f_' || f.field);
      IF f.kind = 'address' THEN
        f_cols := f_cols || format(', %s AS %I', caredata._link_std_expr(s.relation, (s.fields->f.field->>'column')::name, 'address_num'), 'f_' || f.field || '_num');
      END IF;
    END LOOP;
    parts := parts || format('SELECT k.rid, %L::text AS source, %s AS record_id, %s AS record_key, %s AS nhs_digits, %s AS dob, %s AS sex, %s AS postcode%s
                                FROM %s s LEFT JOIN caredata.link_record_key k ON k.project = %L AND k.source = %1$L AND k.record_key = %3$s',
      s.source, caredata._link_std_expr(s.relation, s.record_id, 'record_id'),
      caredata._link_std_expr(s.relation, s.record_id, 'record_key'),
      caredata._link_std_expr(s.relation, s.nhs_number, 'nhs_number'),
      caredata._link_std_expr(s.relation, s.dob, 'dob'),
      caredata._link_std_expr(s.relation, s.sex, 'sex'),
      caredata._link_std_expr(s.relation, s.postcode, 'postcode'), f_cols, s.relation, p_project);
  END LOOP;
  FOREACH work_table IN ARRAY ARRAY['link_stage', 'link_new_key'] LOOP
    IF to_regclass('pg_temp.' || work_table) IS NOT NULL THEN
      EXECUTE format('DROP TABLE pg_temp.%I', work_table);
    END IF;
  END LOOP;
  -- read and standardised by parallel workers where the server allows them
  -- (the sources and the keys are ordinary tables; the leader writes the
  -- temporary table): a planner that counts the functions at cost 1 would
  -- otherwise keep it serial, for the cost of sending each row to the
  -- leader (measured at 1M people: 4.9 s serial, 2.4 s with 2 workers)
  saved_tuple_cost := current_setting('parallel_tuple_cost');
  PERFORM set_config('parallel_tuple_cost', '0.001', true);
  EXECUTE 'CREATE TEMP TABLE link_stage ON COMMIT DROP AS ' || array_to_string(parts, ' UNION ALL ');
  PERFORM set_config('parallel_tuple_cost', saved_tuple_cost, true);
  -- the value frequencies below hash millions of values: in memory, not
  -- in batches on disk, unless the server allows more already
  saved_work_mem := current_setting('work_mem');
  IF pg_size_bytes(saved_work_mem) < pg_size_bytes('256MB') THEN
    PERFORM set_config('work_mem', '256MB', true);
  END IF;
  total := 0;
  -- counted per source first (a hash aggregate of a few groups; joined
  -- before grouping, the records were sorted by source, spilling to disk)
  FOR s IN SELECT ls.source, coalesce(t.n, 0) AS n, coalesce(t.no_id, 0) AS no_id
             FROM caredata.link_source ls
             LEFT JOIN (SELECT x.source, count(*) AS n, count(*) FILTER (WHERE x.record_key IS NULL) AS no_id
                          FROM pg_temp.link_stage x GROUP BY x.source) t ON t.source = ls.source
            WHERE ls.project = p_project AND (sources IS NULL OR ls.source = ANY (sources)) ORDER BY ls.source LOOP
    IF s.n = 0 THEN
      PERFORM caredata._link_bad(format('linkage source "%s" has no records', s.source),
                                 'Load the source, or leave it out with the sources argument.', '22023');
    END IF;
    IF s.no_id > 0 THEN
      PERFORM caredata._link_bad(format('linkage source "%s" has records without a record id', s.source),
                                 'Every record needs a record id: fix the source or filter it through a view.', '23502');
    END IF;
    total := total + s.n;
    src_counts := src_counts || jsonb_build_object(s.source, s.n);
  END LOOP;
  -- a run's records per source, in its statistics (link_run() reads them
  -- for EM's count of all pairs, instead of counting link_record again)
  IF link_standardise.run_id > 0 THEN
    UPDATE caredata.link_run x SET stats = coalesce(x.stats, '{}') || jsonb_build_object('source_records', src_counts)
     WHERE x.run_id = link_standardise.run_id;
  END IF;

  -- stable rids: new records numbered after the highest of any project, in (source,
  -- record id) order (integer ids by value).  A record id twice in a
  -- source breaks a unique index, here (a new one) or on link_record
  -- below (one seen before).
  CREATE TEMP TABLE link_new_key ON COMMIT DROP AS
  SELECT coalesce((SELECT max(k.rid) FROM caredata.link_record_key k), 0)
           + row_number() OVER (ORDER BY t.source, t.record_id, t.record_key) AS rid,
         t.source, t.record_id, t.record_key
    FROM pg_temp.link_stage t WHERE t.rid IS NULL;
  ANALYZE pg_temp.link_new_key;

  PERFORM caredata._link_maintain('truncate_records', project => p_project);
  PERFORM caredata._link_maintain('drop_indexes', project => p_project);
  -- value frequencies (only a value held by two records or more can ever
  -- agree exactly with another): counted in memory in C, each column's
  -- values once (frequency.c), unless switched off or past
  -- maintenance_work_mem; then grouped and joined back in SQL
  <<attempt>>
  LOOP
    i := 0;
    f_json := '';
    f_join := '';
    IF in_memory THEN
      freq_nhs := format(freq_c, 'nhs_digits', total);
      freq_dob := format(freq_c, 'dob', total);
      freq_postcode := format(freq_c, 'postcode', total);
    ELSE
      freq_nhs := 'fn.f';
      freq_dob := 'fd.f';
      freq_postcode := 'fp.f';
      f_join := format($q$
      LEFT JOIN (SELECT nhs_digits, count(*)::double precision / %1$s AS f FROM pg_temp.link_stage GROUP BY 1 HAVING count(*) > 1) fn USING (nhs_digits)
      LEFT JOIN (SELECT dob, count(*)::double precision / %1$s AS f FROM pg_temp.link_stage GROUP BY 1 HAVING count(*) > 1) fd USING (dob)
      LEFT JOIN (SELECT postcode, count(*)::double precision / %1$s AS f FROM pg_temp.link_stage GROUP BY 1 HAVING count(*) > 1) fp USING (postcode)$q$, total);
    END IF;
    -- each field in the record's jsonb: its value, its derived code and its
    -- value frequency
    FOR f IN SELECT * FROM caredata._link_fields(p_project) LOOP
      i := i + 1;
      f_json := f_json || format(' || jsonb_build_object(%1$L, t.%2$I%3$s, %4$L, CASE WHEN t.%2$I IS NOT NULL THEN coalesce(%5$s, 1.0 / %6$s) END)',
        f.field, 'f_' || f.field,
        CASE f.kind WHEN 'name' THEN format(', %L, caredata.name_phonetic(t.%I)', f.field || '_ph', 'f_' || f.field)
                    WHEN 'address' THEN format(', %L, t.%I', f.field || '_num', 'f_' || f.field || '_num') ELSE '' END,
        'tf_' || f.field,
        CASE WHEN in_memory
             THEN format(freq_c, 'f_' || f.field, total)
             ELSE format('q%s.f', i) END,
        total);
      IF NOT in_memory THEN
        f_join := f_join || format(' LEFT JOIN (SELECT %1$I AS v, count(*)::double precision / %2$s AS f FROM pg_temp.link_stage WHERE %1$I IS NOT NULL GROUP BY 1 HAVING count(*) > 1) q%3$s ON q%3$s.v = t.%1$I',
          'f_' || f.field, total, i);
      END IF;
    END LOOP;
    BEGIN
      INSERT INTO caredata.link_record_key (rid, source, record_id, first_run, record_key, project)
      SELECT k.rid, k.source, k.record_id, link_standardise.run_id, k.record_key, p_project FROM pg_temp.link_new_key k;
      EXECUTE format($q$
      INSERT INTO caredata.link_record
      SELECT %4$L, coalesce(t.rid, k.rid), t.source, t.record_id, t.nhs_digits, (t.nhs_digits / 10000)::integer, (t.nhs_digits %% 10000)::integer,
             t.dob, t.sex, t.postcode,
             caredata.try_postcode_sector(t.postcode), caredata.try_postcode_district(t.postcode), caredata.try_postcode_area(t.postcode),
             extract(year FROM t.dob)::integer,
             CASE WHEN t.nhs_digits IS NOT NULL THEN coalesce(%5$s, 1.0 / %1$s) END,
             CASE WHEN t.dob IS NOT NULL THEN coalesce(%6$s, 1.0 / %1$s) END,
             CASE WHEN t.postcode IS NOT NULL THEN coalesce(%7$s, 1.0 / %1$s) END,
             t.record_key, %2$s
        FROM pg_temp.link_stage t
        LEFT JOIN pg_temp.link_new_key k ON t.rid IS NULL AND k.source = t.source AND k.record_key = t.record_key%3$s$q$,
        total, CASE WHEN f_json = '' THEN 'NULL::jsonb' ELSE 'jsonb_strip_nulls(''{}''::jsonb' || f_json || ')' END, f_join, p_project,
        freq_nhs, freq_dob, freq_postcode);
      GET DIAGNOSTICS n = ROW_COUNT;
      PERFORM caredata._link_maintain('add_record_key', project => p_project);
      EXIT attempt;
    EXCEPTION
      WHEN unique_violation THEN
        PERFORM caredata._link_bad('a linkage source has duplicate record ids', 'Record ids must be unique within a source.', '23505');
      WHEN program_limit_exceeded THEN
        -- the counts did not fit maintenance_work_mem: again, in SQL
        IF NOT in_memory THEN
          RAISE;
        END IF;
        in_memory := false;
    END;
  END LOOP;
  PERFORM set_config('work_mem', saved_work_mem, true);
  DROP TABLE pg_temp.link_stage;
  DROP TABLE pg_temp.link_new_key;
  PERFORM caredata._link_maintain('analyze_records', project => p_project);
  RETURN n;
END
$$;
COMMENT ON FUNCTION caredata.link_standardise(text[], bigint, text) IS
  'rebuild a project''s caredata.link_record from its registered sources (all, or those named): standardised identifiers, postcode parts, the declared fields with their phonetic codes and house numbers, value frequencies; returns the number of records';

-- ---- models ----

CREATE FUNCTION caredata.link_create_model(model text, spec jsonb DEFAULT '{}', project text DEFAULT 'default') RETURNS integer
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_project text := caredata._link_check_project(project);
  p_model text := model;
  full_spec jsonb := caredata.link_default_spec() || coalesce(spec, '{}');
  v integer;
BEGIN
  IF p_model IS NULL OR p_model !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    PERFORM caredata._link_bad('a linkage model name is lower-case letters, digits and _', 'For example ''default''.');
  END IF;
  PERFORM caredata._link_check_spec(full_spec, p_project);
  SELECT coalesce(max(lm.version), 0) + 1 INTO v FROM caredata.link_model lm WHERE lm.project = p_project AND lm.model = p_model;
  INSERT INTO caredata.link_model (project, model, version, spec) VALUES (p_project, p_model, v, full_spec);
  INSERT INTO caredata.link_model_level (project, model, version, comparison, position, level, label)
  SELECT p_project, p_model, v, c.value->>'name', c.ordinality - 1, l.ordinality - 1, l.value
    FROM jsonb_array_elements(full_spec->'comparisons') WITH ORDINALITY c
   CROSS JOIN LATERAL jsonb_array_elements_text(c.value->'levels') WITH ORDINALITY l;
  RETURN v;
END
$$;
COMMENT ON FUNCTION caredata.link_create_model(text, jsonb, text) IS
  'create a linkage model of a project (or its next version) from a spec; keys not given are taken from link_default_spec(); returns the version (untrained until a run trains it)';

-- comparisons of a model version, in order, with what the SQL builders need
CREATE FUNCTION caredata._link_comparisons(model text, version integer, project text)
  RETURNS TABLE (pos integer, name text, expression text, nlevels integer, tf text, m_start double precision[],
                 m double precision[], u double precision[], labels text[])
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT (c.ordinality - 1)::integer, c.value->>'name', c.value->>'expression',
         jsonb_array_length(c.value->'levels'), c.value->>'tf',
         CASE WHEN c.value ? 'm' THEN ARRAY(SELECT x::double precision FROM jsonb_array_elements_text(c.value->'m') x) END,
         ARRAY(SELECT ml.m FROM caredata.link_model_level ml
                WHERE ml.project = lm.project AND ml.model = lm.model AND ml.version = lm.version AND ml.comparison = c.value->>'name' ORDER BY ml.level),
         ARRAY(SELECT ml.u FROM caredata.link_model_level ml
                WHERE ml.project = lm.project AND ml.model = lm.model AND ml.version = lm.version AND ml.comparison = c.value->>'name' ORDER BY ml.level),
         ARRAY(SELECT jsonb_array_elements_text(c.value->'levels'))
    FROM caredata.link_model lm
   CROSS JOIN LATERAL jsonb_array_elements(lm.spec->'comparisons') WITH ORDINALITY c
   WHERE lm.project = _link_comparisons.project AND lm.model = _link_comparisons.model AND lm.version = _link_comparisons.version
   ORDER BY c.ordinality;
END
$$;
COMMENT ON FUNCTION caredata._link_comparisons(text, integer, text) IS
  'internal: the comparisons of a model version with their levels, m and u';

-- the SQL pieces every scorer of pairs shares (runs, lookups): one column
-- per comparison level over aliases l and r (plus the r side's value
-- frequency where a comparison has term-frequency adjustment and u_top, the
-- u of each comparison's top level, is given), their names, the packed
-- pattern and the adjustment
CREATE FUNCTION caredata._link_compare_sql(model text, version integer, u_top double precision[], project text)
  RETURNS TABLE (levels text, cols text, pattern text, tf text)
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c record;
  stride bigint := 1;
  rec text := caredata._link_record_sql(project);
  checks text[] := '{}';
  digest text;
BEGIN
  levels := ''; cols := ''; pattern := ''; tf := '0::double precision';
  FOR c IN SELECT * FROM caredata._link_comparisons(model, version, project) ORDER BY pos LOOP
    levels := levels || format(', (%s)::smallint AS %I', c.expression, c.name);
    checks := checks || ARRAY[c.name, c.expression];
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
  -- the expressions are checked again as built (the spec is a row the
  -- linker may have written directly), once a session for the same SQL:
  -- a lookup pays the check (about 1 ms a comparison) only when its model
  -- or the records' columns change
  digest := md5(concat_ws(chr(1), current_user, rec, levels));
  IF current_setting('caredata_link.checked_sql', true) IS DISTINCT FROM digest THEN
    FOR i IN 1 .. cardinality(checks) / 2 LOOP
      PERFORM caredata._link_check_expression(checks[2 * i - 1], checks[2 * i], rec);
    END LOOP;
    PERFORM set_config('caredata_link.checked_sql', digest, false);
  END IF;
  RETURN NEXT;
END
$$;
COMMENT ON FUNCTION caredata._link_compare_sql(text, integer, double precision[], text) IS
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
CREATE FUNCTION caredata._link_estimate_pairs(rule jsonb, link_type text, project text) RETURNS double precision
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  plan jsonb;
BEGIN
  -- the project's partition itself: the parent has no statistics
  EXECUTE format('EXPLAIN (FORMAT JSON) SELECT 1 FROM %s l JOIN %1$s r ON %s WHERE %s',
                 caredata._link_record_sql(project),
                 caredata._link_rule_condition(rule), caredata._link_pair_condition(link_type)) INTO plan;
  RETURN (plan->0->'Plan'->>'Plan Rows')::double precision;
END
$$;
COMMENT ON FUNCTION caredata._link_estimate_pairs(jsonb, text, text) IS
  'internal: the planner''s estimate of the candidate pairs a blocking rule generates over a project''s records';

-- pairs each blocking rule generates over the current standardised records
CREATE FUNCTION caredata.link_blocking_counts(model text DEFAULT 'default', version integer DEFAULT NULL, project text DEFAULT 'default')
  RETURNS TABLE (rule integer, columns text[], pairs bigint)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_project text := caredata._link_check_project(project);
  p_model text := model;
  spec jsonb;
  r record;
  cols text;
  n bigint;
BEGIN
  SELECT lm.spec INTO spec FROM caredata.link_model lm
   WHERE lm.project = p_project AND lm.model = p_model AND (link_blocking_counts.version IS NULL OR lm.version = link_blocking_counts.version)
   ORDER BY lm.version DESC LIMIT 1;
  IF spec IS NULL THEN
    PERFORM caredata._link_bad(format('linkage model "%s" does not exist', p_model), 'Create it with caredata.link_create_model().', '42704');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM caredata.link_record x WHERE x.project = p_project) THEN
    PERFORM caredata.link_standardise(project => p_project);
  END IF;
  FOR r IN SELECT b.value, b.ordinality FROM jsonb_array_elements(spec->'blocking') WITH ORDINALITY b LOOP
    cols := (SELECT string_agg(quote_ident(c), ', ') FROM jsonb_array_elements_text(r.value) c);
    EXECUTE format($q$
      SELECT coalesce(sum(CASE %1$L WHEN 'link_only' THEN (nn * nn - sq) / 2
                                       WHEN 'dedupe_only' THEN (sq - nn) / 2
                                       ELSE nn * (nn - 1) / 2 END), 0)::bigint
        FROM (SELECT sum(ns) AS nn, sum(ns * ns) AS sq
                FROM (SELECT %2$s, source, count(*)::numeric AS ns FROM %4$s x
                       WHERE %3$s GROUP BY %2$s, source) s
               GROUP BY %2$s) b$q$,
      spec->>'link_type', cols,
      (SELECT string_agg(format('%I IS NOT NULL', c), ' AND ') FROM jsonb_array_elements_text(r.value) c),
      caredata._link_record_sql(p_project))
      INTO n;
    rule := r.ordinality;
    columns := ARRAY(SELECT jsonb_array_elements_text(r.value));
    pairs := n;
    RETURN NEXT;
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata.link_blocking_counts(text, integer, text) IS
  'how many candidate pairs each blocking rule of a project''s model generates over its standardised records, before de-duplication across rules (standardises the sources first if nothing is standardised)';
