-- linkage_engine: blocking and comparing in memory in C (src/linkage/block.c,
-- caredata.link_compare_engine, issue 28) gives the same candidate pairs,
-- levels, patterns and term-frequency adjustments as the SQL joins it
-- replaces, for every link type, declared fields, incremental runs and
-- deterministic runs; past maintenance_work_mem a run falls back to the
-- joins; bad arguments are errors, never crashes; only linkers run it.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS caredata CASCADE;
CREATE EXTENSION caredata;
SET caredata.link_progress = off;
\set ECHO none
\i test/synthetic/generate.sql
\set ECHO all
SELECT count(*) > 0 AS generated FROM synth.generate(1500, 7);
SELECT caredata.link_add_source('gp', 'synth.gp_registration', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT caredata.link_add_source('hes', 'synth.hospital_episode', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SHOW caredata.link_compare_engine;

-- both paths' rows for a model version, and the rows only one of them has
-- (EXCEPT ALL compares every column: levels, pattern and tf_adj exactly);
-- the engine's rows written straight into a table (as link_run() has them
-- written) must be its rows returned, or this raises
CREATE FUNCTION pg_temp.both_ways(m text, v integer, u double precision[], only_new boolean DEFAULT false, project text DEFAULT 'default')
  RETURNS TABLE (engine bigint, joins bigint, only_engine bigint, only_joins bigint) LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
  hp integer[];
  hn double precision[];
BEGIN
  EXECUTE 'CREATE TEMP TABLE e_pairs AS ' || caredata._link_engine_sql(m, v, u, only_new, project);
  EXECUTE 'CREATE TEMP TABLE s_pairs AS ' || caredata._link_pairs_sql(m, v, u, only_new, project);
  CREATE TEMP TABLE i_pairs (LIKE e_pairs);
  EXECUTE caredata._link_engine_sql(m, v, u, only_new, project, 'i_pairs') INTO n, hp, hn;
  IF n <> (SELECT count(*) FROM i_pairs) OR EXISTS (TABLE e_pairs EXCEPT ALL TABLE i_pairs) OR EXISTS (TABLE i_pairs EXCEPT ALL TABLE e_pairs) THEN
    RAISE EXCEPTION 'the pairs written into a table are not the pairs returned';
  END IF;
  -- and the pattern histogram counted as they were written is link_run()'s query's
  IF EXISTS (SELECT 1 FROM (SELECT coalesce(array_agg(pattern ORDER BY pattern), '{}') AS p, coalesce(array_agg(c::double precision ORDER BY pattern), '{}') AS c
                              FROM (SELECT pattern, count(*) AS c FROM e_pairs GROUP BY pattern) h) x
              WHERE x.p IS DISTINCT FROM hp OR x.c IS DISTINCT FROM hn) THEN
    RAISE EXCEPTION 'the pattern histogram of the pairs written is not theirs';
  END IF;
  DROP TABLE i_pairs;
  RETURN QUERY SELECT (SELECT count(*) FROM e_pairs), (SELECT count(*) FROM s_pairs),
                      (SELECT count(*) FROM (TABLE e_pairs EXCEPT ALL TABLE s_pairs) x),
                      (SELECT count(*) FROM (TABLE s_pairs EXCEPT ALL TABLE e_pairs) x);
  DROP TABLE e_pairs;
  DROP TABLE s_pairs;
END
$$;

-- ---- a run with each path: the same links, weights and persons ----
SELECT caredata.link_create_model('default') AS v0 \gset
SET caredata.link_compare_engine = off;
SELECT run_id AS run_sql, candidate_pairs, links FROM caredata.link_run(version => :v0, train => true) \gset
SELECT stats->>'compare_engine' AS engine FROM caredata.link_run WHERE run_id = :run_sql;
CREATE TABLE persons_sql AS SELECT source, record_id, person_id FROM caredata.person_index;
RESET caredata.link_compare_engine;
SELECT run_id AS run_c, candidate_pairs = :candidate_pairs AS same_pairs, links = :links AS same_links
  FROM caredata.link_run(version => :v0, train => true) \gset
SELECT :'same_pairs'::boolean AS same_pairs, :'same_links'::boolean AS same_links,
       (SELECT stats->>'compare_engine' FROM caredata.link_run WHERE run_id = :run_c) AS engine;
-- every link with its pattern, weight and probability, both ways (the
-- links written in C, pair_rows.c, against the INSERT)
SELECT count(*) AS links_differing FROM (
  (SELECT rid_l, rid_r, pattern, weight, probability FROM caredata.link_pair WHERE run_id = :run_sql
   EXCEPT ALL SELECT rid_l, rid_r, pattern, weight, probability FROM caredata.link_pair WHERE run_id = :run_c)
  UNION ALL
  (SELECT rid_l, rid_r, pattern, weight, probability FROM caredata.link_pair WHERE run_id = :run_c
   EXCEPT ALL SELECT rid_l, rid_r, pattern, weight, probability FROM caredata.link_pair WHERE run_id = :run_sql)) d;
-- and the same persons (ids are stable, so equal)
SELECT count(*) AS persons_differing FROM caredata.person_index p
  FULL JOIN persons_sql s USING (source, record_id) WHERE p.person_id IS DISTINCT FROM s.person_id;

-- u from the sample written out in full (every record sorted by its seeded
-- hash, seed 42 for one side and 43 for the other): the run's u, which
-- takes both sides' candidates from one pass over the records, level by
-- level (this population is large enough for that pass: over 3,000 records)
SELECT max(version) AS v_trained FROM caredata.link_model WHERE model = 'default' AND lambda IS NOT NULL \gset
WITH l AS (SELECT * FROM caredata.link_record_p_default ORDER BY hashint8extended(rid, 42), rid LIMIT 1000),
     r AS (SELECT * FROM caredata.link_record_p_default ORDER BY hashint8extended(rid, 43), rid LIMIT 1000),
     s AS (SELECT caredata.compare_nhs_number(l.nhs_digits, r.nhs_digits) AS nhs, caredata.compare_date(l.dob, r.dob, 365) AS dob
             FROM l, r WHERE l.rid <> r.rid),
     n AS (SELECT count(*) AS n FROM s)
SELECT (SELECT count(*) FROM caredata.link_record_p_default) > 3000 AS one_pass,
       (SELECT array_agg(greatest((SELECT count(*) FROM s WHERE s.nhs = g), 1)::double precision / n.n ORDER BY g)
          FROM generate_series(0, 3) g)
         = (SELECT u FROM caredata._link_comparisons('default', :v_trained, 'default') WHERE name = 'nhs') AS same_nhs_u,
       (SELECT array_agg(greatest((SELECT count(*) FROM s WHERE s.dob = g), 1)::double precision / n.n ORDER BY g)
          FROM generate_series(0, 5) g)
         = (SELECT u FROM caredata._link_comparisons('default', :v_trained, 'default') WHERE name = 'dob') AS same_dob_u
  FROM n;

-- ---- candidate pairs row for row ----
SELECT max(version) AS vt FROM caredata.link_model WHERE model = 'default' \gset
SELECT array_agg(u[nlevels] ORDER BY pos) AS u_top FROM caredata._link_comparisons('default', :vt, 'default') \gset
-- probabilistic (term frequencies) and deterministic (none)
SELECT 'link_and_dedupe' AS link_type, * FROM pg_temp.both_ways('default', :vt, :'u_top');
SELECT 'deterministic' AS method, * FROM pg_temp.both_ways('default', :vt, NULL);
-- across sources only, within a source only
SELECT caredata.link_create_model('across', caredata.link_default_spec() || '{"link_type": "link_only"}') AS va \gset
SELECT caredata.link_create_model('within', caredata.link_default_spec() || '{"link_type": "dedupe_only"}') AS vw \gset
SELECT 'link_only' AS link_type, * FROM pg_temp.both_ways('across', :va, :'u_top');
SELECT 'dedupe_only' AS link_type, * FROM pg_temp.both_ways('within', :vw, :'u_top');
-- one rule whose groups are large, with a NULL-bearing column
SELECT caredata.link_create_model('wide', caredata.link_default_spec() || '{"blocking": [["yob", "sex"], ["area", "yob"]], "max_pairs": 5000000}') AS vwide \gset
SELECT 'wide rules' AS blocking, * FROM pg_temp.both_ways('wide', :vwide, :'u_top');
-- an incremental run's pairs: at least one record new
BEGIN;
CREATE TEMP TABLE link_new AS SELECT rid FROM caredata.link_record WHERE rid % 7 = 0;
SELECT 'only new' AS pairs, * FROM pg_temp.both_ways('default', :vt, :'u_top', true);
ROLLBACK;

-- ---- declared fields: names with term frequencies, a rule on a field ----
CREATE SCHEMA fld;
CREATE TABLE fld.a (id bigint PRIMARY KEY, given text, family text, dob date, pc text);
CREATE TABLE fld.b (id bigint PRIMARY KEY, given text, family text, dob date, pc text);
INSERT INTO fld.a SELECT i, (ARRAY['Amy', 'Amie', 'Tom', 'Thomas', 'Zoe'])[1 + i % 5], (ARRAY['Lee', 'Leigh', 'Smith', 'Smyth'])[1 + i % 4],
                         date '1980-01-01' + (i % 40), (ARRAY['SW1A 1AA', 'LS1 4AP', NULL])[1 + i % 3]
  FROM generate_series(1, 300) i;
INSERT INTO fld.b SELECT i, (ARRAY['Amy', 'Tom', 'Tommy', 'Zoe', NULL])[1 + i % 5], (ARRAY['Lee', 'Smith', 'Smyth'])[1 + i % 3],
                         date '1980-01-01' + (i % 45), (ARRAY['SW1A 1AA', 'LS1 4AQ'])[1 + i % 2]
  FROM generate_series(1, 300) i;
SELECT caredata.link_create_project('fields');
SELECT caredata.link_add_source('a', 'fld.a', 'id', dob => 'dob', postcode => 'pc', project => 'fields',
         fields => '{"given_name": {"column": "given", "kind": "name"}, "family_name": {"column": "family", "kind": "name"}}');
SELECT caredata.link_add_source('b', 'fld.b', 'id', dob => 'dob', postcode => 'pc', project => 'fields',
         fields => '{"given_name": {"column": "given", "kind": "name"}, "family_name": {"column": "family", "kind": "name"}}');
SELECT caredata.link_standardise(project => 'fields') AS records;
SELECT caredata.link_create_model('names', caredata.link_default_spec() || '{
  "link_type": "link_only", "max_pairs": 5000000,
  "comparisons": [
    {"name": "dob", "expression": "caredata.compare_date(l.dob, r.dob, 365)",
     "levels": ["missing", "different", "within a year", "two of year, month, day", "day and month transposed", "exact"]},
    {"name": "given_name", "expression": "caredata.compare_name(l.given_name, r.given_name)",
     "levels": ["missing", "different", "sounds alike", "similar", "very similar", "exact"], "tf": "given_name"},
    {"name": "family_name", "expression": "caredata.compare_name(l.family_name, r.family_name)",
     "levels": ["missing", "different", "sounds alike", "similar", "very similar", "exact"], "tf": "family_name"}],
  "blocking": [["dob"], ["family_name_ph", "postcode"]], "steps": []}', project => 'fields') AS vn \gset
SELECT 'fields' AS model, * FROM pg_temp.both_ways('names', :vn, '{0.01, 0.02, 0.05}', project => 'fields');

-- ---- value frequencies counted in memory (frequency.c): the same records ----
-- each project's link_record standardised with the counts in C and with
-- SQL groupings joined back, every column compared (tf_* and the fields'
-- jsonb with their frequencies exactly)
CREATE FUNCTION pg_temp.records_both_ways(p text) RETURNS TABLE (records bigint, shared_values bigint, c_only bigint, sql_only bigint)
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('caredata.link_compare_engine', 'off', true);
  PERFORM caredata.link_standardise(project => p);
  DROP TABLE IF EXISTS rec_sql;
  CREATE TEMP TABLE rec_sql AS SELECT * FROM caredata.link_record x WHERE x.project = p;
  PERFORM set_config('caredata.link_compare_engine', 'on', true);
  PERFORM caredata.link_standardise(project => p);
  RETURN QUERY
  SELECT (SELECT count(*) FROM rec_sql),
         (SELECT count(*) FROM rec_sql x WHERE x.tf_dob > 1.0 / (SELECT count(*) FROM rec_sql)),
         (SELECT count(*) FROM (SELECT * FROM caredata.link_record x WHERE x.project = p EXCEPT ALL TABLE rec_sql) d),
         (SELECT count(*) FROM (TABLE rec_sql EXCEPT ALL SELECT * FROM caredata.link_record x WHERE x.project = p) d);
END $$;
SELECT 'default' AS project, * FROM pg_temp.records_both_ways('default');
SELECT 'fields' AS project, * FROM pg_temp.records_both_ways('fields');
-- past maintenance_work_mem for a column: an error with a hint, and
-- link_standardise() counts in SQL instead (40,000 different names)
CREATE TABLE fld.c (id bigint PRIMARY KEY, given text, dob date);
INSERT INTO fld.c SELECT i, 'name' || i, date '1950-01-01' + i % 20000 FROM generate_series(1, 40000) i;
SELECT caredata.link_create_project('many');
SELECT caredata.link_add_source('c', 'fld.c', 'id', dob => 'dob', project => 'many',
         fields => '{"given_name": {"column": "given", "kind": "name"}}');
CREATE TEMP TABLE names_stage AS SELECT given FROM fld.c;
SET maintenance_work_mem = '1MB';
SELECT caredata._link_value_count('names_stage', 'given', NULL, 'name1'::text);
SELECT 'many' AS project, records, c_only, sql_only FROM pg_temp.records_both_ways('many');
RESET maintenance_work_mem;
SELECT caredata._link_value_count('names_stage', 'given', NULL, 'name1'::text) AS once,
       caredata._link_value_count('names_stage', 'given', NULL, 'nobody'::text) AS never;
-- counted by the type's equality: numeric 1.0 = 1.00, text in a
-- nondeterministic collation (case-insensitive) as GROUP BY counts it
CREATE COLLATION pg_temp.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TEMP TABLE odd_stage (n numeric, t text COLLATE pg_temp.ci);
INSERT INTO odd_stage VALUES (1.0, 'Lee'), (1.00, 'LEE'), (2, 'lee'), (NULL, NULL), (repeat('9', 3000)::numeric, repeat('x', 3000));
SELECT left(n::text, 8) AS n, caredata._link_value_count('odd_stage', 'n', ctid, n) AS n_count, t IS NULL OR length(t) > 10 AS long_or_null,
       caredata._link_value_count('odd_stage', 't', NULL, t) AS t_count,
       (SELECT count(*) FROM odd_stage o WHERE o.t = s.t) AS t_by_sql
  FROM odd_stage s ORDER BY n NULLS FIRST;
-- a call site that outlives its statement (a PL/pgSQL expression) counts
-- again after the table changed
CREATE TEMP TABLE cnt_stage (v integer);
CREATE TEMP TABLE cnt_seen (i integer, n bigint);
INSERT INTO cnt_stage VALUES (1), (1);
DO $$
DECLARE
  n bigint;
BEGIN
  FOR i IN 1 .. 3 LOOP
    n := caredata._link_value_count('cnt_stage', 'v', NULL, 1);
    INSERT INTO cnt_seen VALUES (i, n);
    INSERT INTO cnt_stage VALUES (1);
  END LOOP;
END
$$;
SELECT i, n AS rows_holding_1 FROM cnt_seen ORDER BY i;
DROP TABLE cnt_stage, cnt_seen;
-- a row named by a TID that does not hold the value, or by no row: the
-- value's own count
SELECT caredata._link_value_count('odd_stage', 'n', '(0,3)', 1.0) AS other_row,
       caredata._link_value_count('odd_stage', 'n', '(7,1)', 1.0) AS no_row,
       caredata._link_value_count('odd_stage', 'n', '(0,1)', NULL::numeric) AS null_value;
-- bad arguments: an ordinary table, another column's type, no such
-- column, a different table at the same call (row security: below)
SELECT caredata._link_value_count('fld.c', 'given', NULL, 'name1'::text);
SELECT caredata._link_value_count('names_stage', 'given', NULL, 1);
SELECT caredata._link_value_count('names_stage', 'nope', NULL, 'x'::text);
SELECT caredata._link_value_count(NULL, 'given', NULL, 'x'::text);
SELECT caredata._link_value_count(CASE WHEN x = 1 THEN 'names_stage' ELSE 'odd_stage' END::regclass, 'given', NULL, 'a'::text)
  FROM generate_series(1, 2) x;

-- ---- person ids planned in memory (persons.c): the same rows as in SQL ----
-- clusters made from the person index with merges (pairs of persons), splits
-- (a person's records in two clusters) and new records (no old person)
BEGIN;
CREATE TEMP TABLE link_cluster AS
SELECT rid, min(rid) OVER (PARTITION BY k) AS cluster, CASE WHEN rid % 11 = 0 THEN NULL ELSE person_id END AS old_person
  FROM (SELECT rid, person_id, CASE WHEN person_id % 7 = 0 THEN person_id - (person_id % 14)
                                    WHEN person_id % 5 = 0 THEN person_id * 10 + rid % 2 ELSE person_id * 10 END AS k
          FROM caredata.person_index WHERE project = 'default') x;
SELECT max(person_id) AS max_person FROM caredata.person_index \gset
CREATE TEMP TABLE plan_c AS SELECT * FROM caredata._link_person_plan('link_cluster', :max_person);
CREATE TEMP TABLE plan_sql AS SELECT * FROM caredata._link_person_plan_sql(:max_person, false);
SELECT kind, count(*) > 0 AS some FROM plan_c GROUP BY 1 ORDER BY 1;
SELECT (SELECT count(*) FROM (TABLE plan_c EXCEPT ALL TABLE plan_sql) a) AS c_only,
       (SELECT count(*) FROM (TABLE plan_sql EXCEPT ALL TABLE plan_c) b) AS sql_only,
       (SELECT count(*) FROM plan_c WHERE kind = 'a') = (SELECT count(DISTINCT cluster) FROM link_cluster) AS every_cluster;
-- ties: an old person's records split evenly go to the smallest cluster
TRUNCATE link_cluster;
INSERT INTO link_cluster VALUES (1, 1, 10), (2, 2, 10), (3, 3, 11), (4, 3, 12), (5, 5, NULL);
SELECT * FROM caredata._link_person_plan('link_cluster', 12) ORDER BY kind, cluster;
SELECT count(*) AS differ FROM (SELECT * FROM caredata._link_person_plan('link_cluster', 12)
                                 EXCEPT ALL SELECT * FROM caredata._link_person_plan_sql(12, false)) d;
-- past maintenance_work_mem: an error with a hint (link_run() plans in SQL)
SET LOCAL maintenance_work_mem = '1MB';
INSERT INTO link_cluster SELECT i, i, i FROM generate_series(10, 100000) i;
SELECT count(*) FROM caredata._link_person_plan('link_cluster', 100000);
ROLLBACK;
-- bad arguments: NULLs, a negative id, an ordinary table, a wrong column type
SELECT count(*) FROM caredata._link_person_plan(NULL, 1);
SELECT count(*) FROM caredata._link_person_plan('fld.c', -1);
SELECT count(*) FROM caredata._link_person_plan('fld.c', 1);
CREATE TEMP TABLE bad_cluster (cluster text, old_person bigint);
SELECT count(*) FROM caredata._link_person_plan('bad_cluster', 1);
DROP TABLE bad_cluster;

-- ---- the cluster table written in C (cluster_table.c): the SQL's rows ----
-- both ways for the last run's links: the C function's rows and those of
-- the statement it replaces, and the rows only one of them has
CREATE FUNCTION pg_temp.cluster_both(links text, one_to_one boolean, nhs text, persons regclass DEFAULT 'caredata.person_index_p_default')
  RETURNS TABLE (written bigint, c_only bigint, sql_only bigint, linked bigint, with_person bigint, counted boolean) LANGUAGE plpgsql AS $$
DECLARE
  c record;
BEGIN
  CREATE TEMP TABLE cl_c (rid bigint, source text COLLATE "C", record_id bigint, record_key text COLLATE "C",
                          cluster bigint, refused boolean, old_person bigint);
  SELECT * INTO c FROM caredata._link_cluster_into('pg_temp.cl_c', 'caredata.link_record_p_default', persons, links, one_to_one, nhs);
  written := c.records;
  EXECUTE format($q$
    CREATE TEMP TABLE cl_sql AS
    SELECT r.rid, r.source, r.record_id, r.record_key, coalesce(c.cluster, r.rid) AS cluster, coalesce(c.refused, false) AS refused,
           p.person_id AS old_person
      FROM caredata.link_record_p_default r
      LEFT JOIN %s p ON p.rid = r.rid
      LEFT JOIN caredata.link_components($1, $2, $3) c ON c.rid = r.rid$q$, persons)
  USING links, one_to_one, nhs;
  c_only := (SELECT count(*) FROM (TABLE cl_c EXCEPT ALL TABLE cl_sql) a);
  sql_only := (SELECT count(*) FROM (TABLE cl_sql EXCEPT ALL TABLE cl_c) b);
  linked := (SELECT count(*) FROM cl_c WHERE cluster <> rid);
  with_person := (SELECT count(*) FROM cl_c WHERE old_person IS NOT NULL);
  -- the counts returned: rows, clusters (named by their smallest rid) and refused
  counted := c.records = (SELECT count(*) FROM cl_sql) AND c.clusters = (SELECT count(DISTINCT cluster) FROM cl_sql)
             AND c.clusters = (SELECT count(*) FROM cl_sql WHERE cluster = rid) AND c.refused = (SELECT count(*) FROM cl_sql WHERE refused);
  DROP TABLE cl_c, cl_sql;
  RETURN NEXT;
END
$$;
SELECT max(run_id) AS last_run FROM caredata.link_run \gset
SELECT format('SELECT rid_l, rid_r, weight, step FROM caredata.link_pair WHERE run_id = %s', :last_run) AS weighted,
       format('SELECT rid_l, rid_r FROM caredata.link_pair WHERE run_id = %s', :last_run) AS plain,
       'SELECT rid, nhs_digits, dob, CASE WHEN caredata.compare_sex(sex, sex) = 2 THEN sex END FROM caredata.link_record_p_default WHERE nhs_digits IS NOT NULL' AS details \gset
-- one to one with NHS numbers kept apart by their details (a run's call),
-- and plain links
SELECT written = (SELECT count(*) FROM caredata.link_record_p_default) AS every_record, c_only, sql_only,
       linked > 0 AS some_linked, with_person > 0 AS some_persons, counted
  FROM pg_temp.cluster_both(:'weighted', true, :'details');
SELECT c_only, sql_only, linked > 0 AS some_linked, counted FROM pg_temp.cluster_both(:'plain', false, NULL);
-- records without a person (new since the last run) and a person index
-- whose heap is out of rid order (rows moved by an update): read sorted
BEGIN;
DELETE FROM caredata.person_index_p_default WHERE rid % 5 = 0;
UPDATE caredata.person_index_p_default SET run_id = run_id WHERE rid % 3 = 0;
SELECT c_only, sql_only, with_person < (SELECT count(*) FROM caredata.link_record_p_default) AS some_new, counted
  FROM pg_temp.cluster_both(:'weighted', true, :'details');
ROLLBACK;
-- the person ids read three ways: a person index in rid order (searched
-- as it comes), out of order with its rids close together (an array by
-- rid, as above), and out of order with rids far apart (sorted)
CREATE TEMP TABLE persons_in_order AS SELECT rid, person_id FROM caredata.person_index_p_default ORDER BY rid;
CREATE TEMP TABLE persons_far_apart AS SELECT 1000000000000 AS rid, 1 AS person_id
  UNION ALL (SELECT rid, person_id FROM caredata.person_index_p_default ORDER BY rid DESC);
SELECT c_only, sql_only, with_person > 0 AS some_persons, counted FROM pg_temp.cluster_both(:'weighted', true, :'details', 'persons_in_order');
SELECT c_only, sql_only, with_person > 0 AS some_persons, counted FROM pg_temp.cluster_both(:'weighted', true, :'details', 'persons_far_apart');
DROP TABLE persons_in_order, persons_far_apart;
-- no person index rows, no links
CREATE TEMP TABLE no_persons (rid bigint, person_id bigint);
SELECT written > 0 AS written, c_only, sql_only, linked, with_person, counted
  FROM pg_temp.cluster_both('SELECT rid_l, rid_r FROM caredata.link_pair WHERE false', false, NULL, 'no_persons');
CREATE TEMP TABLE cl_ok (rid bigint, source text, record_id bigint, record_key text, cluster bigint, refused boolean, old_person bigint);
-- a person index holding a record twice (no key to stop it here): an error
BEGIN;
INSERT INTO no_persons VALUES (2, 1), (1, 1), (1, 2);
SELECT caredata._link_cluster_into('cl_ok', 'caredata.link_record_p_default', 'no_persons', :'plain', false, NULL);
ROLLBACK;
-- past maintenance_work_mem: an error with a hint (link_run() then runs the SQL)
BEGIN;
SET LOCAL maintenance_work_mem = '1MB';
INSERT INTO no_persons SELECT i, i FROM generate_series(10, 70000) i;
SELECT caredata._link_cluster_into('cl_ok', 'caredata.link_record_p_default', 'no_persons', :'plain', false, NULL);
ROLLBACK;
-- bad arguments: NULLs, a target of another shape, not a bare temporary
-- table, records that are not a table
SELECT caredata._link_cluster_into(NULL, 'caredata.link_record_p_default', 'no_persons', :'plain', false, NULL);
SELECT caredata._link_cluster_into('cl_ok', 'caredata.link_record_p_default', 'no_persons', NULL, false, NULL);
CREATE TEMP TABLE cl_shape (rid bigint, source text, record_id bigint, record_key text, cluster integer, refused boolean, old_person bigint);
SELECT caredata._link_cluster_into('cl_shape', 'caredata.link_record_p_default', 'no_persons', :'plain', false, NULL);
CREATE TEMP TABLE cl_short (rid bigint, source text, record_id bigint, record_key text, cluster bigint, refused boolean);
SELECT caredata._link_cluster_into('cl_short', 'caredata.link_record_p_default', 'no_persons', :'plain', false, NULL);
CREATE TEMP TABLE cl_indexed (rid bigint PRIMARY KEY, source text, record_id bigint, record_key text, cluster bigint, refused boolean, old_person bigint);
SELECT caredata._link_cluster_into('cl_indexed', 'caredata.link_record_p_default', 'no_persons', :'plain', false, NULL);
SELECT caredata._link_cluster_into('fld.c', 'caredata.link_record_p_default', 'no_persons', :'plain', false, NULL);
SELECT caredata._link_cluster_into('cl_ok', 'caredata.link_record', 'no_persons', :'plain', false, NULL);
SELECT caredata._link_cluster_into('cl_ok', 'caredata.link_record_p_default', 'cl_ok', :'plain', false, NULL);
SELECT count(*) AS nothing_written FROM cl_ok;
DROP TABLE cl_shape, cl_short, cl_indexed;

-- ---- the person index's rows written in C (person_index.c): the INSERT's rows ----
-- the last run's cluster table and plan (the C functions above), the rows
-- written both ways into the partition in a transaction rolled back
BEGIN;
CREATE TEMP TABLE link_cluster (rid bigint, source text COLLATE "C", record_id bigint, record_key text COLLATE "C",
                                cluster bigint, refused boolean, old_person bigint) ON COMMIT DROP;
SELECT records > 0 AS clustered FROM caredata._link_cluster_into('link_cluster', 'caredata.link_record_p_default', 'caredata.person_index_p_default',
                                                                  :'weighted', true, :'details');
SELECT max(person_id) AS max_person FROM caredata.person_index \gset
-- a plan with merges and splits: clusters moved off their old persons
UPDATE link_cluster SET cluster = cluster + 1 WHERE rid % 13 = 0;
CREATE TEMP TABLE link_plan ON COMMIT DROP AS SELECT * FROM caredata._link_person_plan('link_cluster', :max_person);
-- and a cluster the plan gives no person: its records are left out, as by the join
DELETE FROM link_plan WHERE kind = 'a' AND cluster = (SELECT min(cluster) FROM link_cluster);
SELECT kind, count(*) > 0 AS some FROM link_plan GROUP BY 1 ORDER BY 1;
SELECT caredata._link_maintain('truncate_persons', project => 'default');
SELECT caredata._link_maintain('drop_person_indexes', project => 'default');
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'link_cluster', 'link_plan', 99) AS written \gset
CREATE TEMP TABLE pi_c AS SELECT * FROM caredata.person_index;
TRUNCATE caredata.person_index_p_default;
INSERT INTO caredata.person_index (project, source, record_id, rid, person_id, run_id, record_key)
SELECT 'default', c.source, c.record_id, c.rid, a.person_id, 99, c.record_key
  FROM link_cluster c JOIN link_plan a ON a.kind = 'a' AND a.cluster = c.cluster;
SELECT :written = (SELECT count(*) FROM pi_c) AS counted,
       :written < (SELECT count(*) FROM link_cluster) AS one_cluster_left_out,
       (SELECT count(*) FROM (TABLE pi_c EXCEPT ALL SELECT * FROM caredata.person_index) a) AS c_only,
       (SELECT count(*) FROM (SELECT * FROM caredata.person_index EXCEPT ALL TABLE pi_c) b) AS sql_only;
-- a plan in no order, giving a cluster two person ids: an error
SAVEPOINT s;
INSERT INTO link_plan SELECT 'a', cluster, person_id + 1 FROM link_plan WHERE kind = 'a' LIMIT 1;
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'link_cluster', 'link_plan', 99);
ROLLBACK TO s;
-- past maintenance_work_mem: an error with a hint (link_run() then runs the INSERT)
SET LOCAL maintenance_work_mem = '1MB';
INSERT INTO link_plan SELECT 'a', -i, i FROM generate_series(1, 70000) i;
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'link_cluster', 'link_plan', 99);
ROLLBACK TO s;
-- another project's rows: the partition's bound holds
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'other', 'link_cluster', 'link_plan', 99);
ROLLBACK TO s;
-- with its indexes: refused (an INSERT would maintain them)
SELECT caredata._link_maintain('build_person_indexes', project => 'default');
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'link_cluster', 'link_plan', 99);
ROLLBACK TO s;
-- a trigger or a CHECK constraint on it: refused (an INSERT would run them)
CREATE FUNCTION pg_temp.no_rows() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER no_rows BEFORE INSERT ON caredata.person_index_p_default FOR EACH ROW EXECUTE FUNCTION pg_temp.no_rows();
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'link_cluster', 'link_plan', 99);
ROLLBACK TO s;
-- a statement trigger on the parent the INSERT names: refused too
CREATE FUNCTION pg_temp.no_rows() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER no_statement AFTER INSERT ON caredata.person_index FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.no_rows();
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'link_cluster', 'link_plan', 99);
ROLLBACK TO s;
ALTER TABLE caredata.person_index_p_default ADD CHECK (person_id > 0);
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'link_cluster', 'link_plan', 99);
ROLLBACK TO s;
-- NOT NULL holds: a record without a key
UPDATE link_cluster SET record_key = NULL WHERE rid = (SELECT max(rid) FROM link_cluster);
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'link_cluster', 'link_plan', 99);
ROLLBACK TO s;
-- bad arguments: NULLs, a table that is not a partition of the person
-- index, the parent, a cluster table that is not a temporary table
SELECT caredata._link_person_index_into(NULL, 'default', 'link_cluster', 'link_plan', 99);
ROLLBACK TO s;
SELECT caredata._link_person_index_into('caredata.person_index_p_default', NULL, 'link_cluster', 'link_plan', 99);
ROLLBACK TO s;
SELECT caredata._link_person_index_into('caredata.link_record_p_default', 'default', 'link_cluster', 'link_plan', 99);
ROLLBACK TO s;
SELECT caredata._link_person_index_into('caredata.person_index', 'default', 'link_cluster', 'link_plan', 99);
ROLLBACK TO s;
SELECT caredata._link_person_index_into('link_cluster', 'default', 'link_cluster', 'link_plan', 99);
ROLLBACK TO s;
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'caredata.link_record_p_default', 'link_plan', 99);
ROLLBACK TO s;
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'link_cluster', 'link_cluster', 99);
ROLLBACK TO s;
ROLLBACK;

-- in a read-only transaction: refused, as an INSERT is
BEGIN READ ONLY;
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'cl_ok', 'cl_ok', 99);
ROLLBACK;

-- ---- a run's links written in C (pair_rows.c): the INSERT's rows ----
-- weights and adjustments with NaN and infinities, clamped probabilities,
-- NULL patterns and adjustments, thresholds of a number, NaN and -Infinity
BEGIN;
CREATE TEMP TABLE cand_t (rid_l bigint, rid_r bigint, pattern integer, tf_adj double precision) ON COMMIT DROP;
INSERT INTO cand_t VALUES (1, 2, 0, 0), (1, 3, 1, 0.5), (2, 3, 2, -0.25), (3, 4, 3, 'NaN'), (4, 5, 1, 'Infinity'),
  (5, 6, 2, '-Infinity'), (6, 7, NULL, 0), (7, 8, 0, NULL), (8, 9, 1, 2000), (9, 10, 0, -2000), (10, 11, 3, 0);
CREATE FUNCTION pg_temp.pairs_both(w double precision[], threshold double precision)
  RETURNS TABLE (written bigint, c_only bigint, sql_only bigint) LANGUAGE plpgsql AS $$
BEGIN
  written := caredata._link_pairs_into('pg_temp.cand_t', 901, w, threshold);
  INSERT INTO caredata.link_pair (run_id, rid_l, rid_r, pattern, weight, probability)
  SELECT 902, s.rid_l, s.rid_r, s.pattern, s.weight, caredata.link_probability(s.weight)
    FROM (SELECT c.rid_l, c.rid_r, c.pattern, caredata.link_weight(c.pattern, c.tf_adj, w) AS weight FROM pg_temp.cand_t c) s
   WHERE s.weight >= threshold;
  c_only := (SELECT count(*) FROM (SELECT rid_l, rid_r, pattern, weight, probability, step FROM caredata.link_pair WHERE run_id = 901
                                   EXCEPT ALL SELECT rid_l, rid_r, pattern, weight, probability, step FROM caredata.link_pair WHERE run_id = 902) x);
  sql_only := (SELECT count(*) FROM (SELECT rid_l, rid_r, pattern, weight, probability, step FROM caredata.link_pair WHERE run_id = 902
                                     EXCEPT ALL SELECT rid_l, rid_r, pattern, weight, probability, step FROM caredata.link_pair WHERE run_id = 901) x);
  DELETE FROM caredata.link_pair WHERE run_id IN (901, 902);
  RETURN NEXT;
END
$$;
SELECT t AS threshold, p.* FROM unnest(ARRAY[0, 'NaN', '-Infinity', 1e6]::double precision[]) t,
       LATERAL pg_temp.pairs_both('{1.5, -2, 0.25, NaN}', t) p;
SAVEPOINT s;
-- the table's indexes are kept: a btree index finds the rows written, and
-- a unique one refuses the same links twice
CREATE UNIQUE INDEX link_pair_test_key ON caredata.link_pair (run_id, rid_l, rid_r);
SELECT caredata._link_pairs_into('pg_temp.cand_t', 903, '{1.5, -2, 0.25, 3}', 0) AS written;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM caredata.link_pair WHERE run_id = 903 AND rid_l > 0;
SELECT count(*) AS found_by_index FROM caredata.link_pair WHERE run_id = 903 AND rid_l > 0;
SELECT caredata._link_pairs_into('pg_temp.cand_t', 903, '{1.5, -2, 0.25, 3}', 0);
ROLLBACK TO s;
-- a pattern without a weight: link_weight()'s error
SELECT caredata._link_pairs_into('pg_temp.cand_t', 904, '{1.5, -2}', 0);
ROLLBACK TO s;
-- a trigger or a CHECK constraint on caredata.link_pair: refused
CREATE FUNCTION pg_temp.no_pairs() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER no_pairs BEFORE INSERT ON caredata.link_pair FOR EACH ROW EXECUTE FUNCTION pg_temp.no_pairs();
SELECT caredata._link_pairs_into('pg_temp.cand_t', 904, '{1.5, -2, 0.25, 3}', 0);
ROLLBACK TO s;
ALTER TABLE caredata.link_pair ADD CONSTRAINT pattern_known CHECK (pattern >= 0) NOT VALID;
SELECT caredata._link_pairs_into('pg_temp.cand_t', 904, '{1.5, -2, 0.25, 3}', 0);
ROLLBACK TO s;
-- bad arguments: NULLs, candidates not in a temporary table, or without their columns
SELECT caredata._link_pairs_into(NULL, 904, '{1.5, -2, 0.25, 3}', 0);
ROLLBACK TO s;
SELECT caredata._link_pairs_into('pg_temp.cand_t', 904, '{1.5, -2, 0.25, 3}', NULL) AS none_through;
ROLLBACK TO s;
-- a default for step, which an INSERT would give it: refused
ALTER TABLE caredata.link_pair ALTER COLUMN step SET DEFAULT 1;
SELECT caredata._link_pairs_into('pg_temp.cand_t', 904, '{1.5, -2, 0.25, 3}', 0);
ROLLBACK TO s;
SELECT caredata._link_pairs_into('caredata.link_pair', 904, '{1.5, -2, 0.25, 3}', 0);
ROLLBACK TO s;
SELECT caredata._link_pairs_into('pg_temp.cl_ok', 904, '{1.5, -2, 0.25, 3}', 0);
ROLLBACK TO s;
SELECT caredata._link_pairs_into('pg_temp.cand_t', 904, '{{1.5}, {-2}}', 0);
ROLLBACK;
-- in a read-only transaction: refused, as an INSERT is
BEGIN READ ONLY;
SELECT caredata._link_pairs_into('pg_temp.cl_ok', 904, '{1.5}', 0);
ROLLBACK;

-- ---- keys compared by their type's equality, and keys too long to hold ----
-- numeric 1990.0 = 1990.00 (different bytes), text keys over 18 bytes:
-- the pair counts of the same joins written by hand
CREATE VIEW pg_temp.rec AS
SELECT rid, source, dob, postcode, sex,
       CASE WHEN rid % 2 = 0 THEN yob::numeric(10, 1) ELSE yob::numeric(10, 2) END AS yob_n,
       postcode || ' and a suffix to make it long' AS long_pc
  FROM caredata.link_record_p_default;
SELECT (SELECT count(*) FROM caredata._link_block_compare('pg_temp.rec', '{yob_n,sex,long_pc,dob}', '{1,1,2,2}',
          '{"caredata.compare_date(l.dob, r.dob, 365)"}', '{NULL}', '{6}', NULL, 'link_and_dedupe', false)
          AS p(rid_l bigint, rid_r bigint, dob smallint, pattern integer, tf_adj double precision)) AS engine,
       (SELECT count(*) FROM pg_temp.rec l JOIN pg_temp.rec r ON l.yob_n = r.yob_n AND l.sex = r.sex WHERE l.rid < r.rid) +
       (SELECT count(*) FROM pg_temp.rec l JOIN pg_temp.rec r ON l.long_pc = r.long_pc AND l.dob = r.dob
         WHERE l.rid < r.rid AND NOT coalesce(l.yob_n = r.yob_n AND l.sex = r.sex, false)) AS joins;

-- ---- keys sharing the low bits of their hash: split into their keys ----
-- the engine groups records by the low 32 bits of their key's hash; among
-- 300,000 keys several runs hold two keys (8 with these: DEBUG1 says so),
-- which must still give each key its own group: one pair a key
CREATE VIEW pg_temp.many AS
SELECT i::bigint AS rid, 'a'::text AS source, (i / 2)::bigint AS k, DATE '2000-01-01' + (i % 3) AS dob
  FROM generate_series(0, 599999) i;
SELECT count(*) AS pairs, count(*) FILTER (WHERE rid_l / 2 <> rid_r / 2) AS across_keys
  FROM caredata._link_block_compare('pg_temp.many', '{k}', '{1}', '{"caredata.compare_date(l.dob, r.dob, 365)"}', '{NULL}', '{6}',
                                    NULL, 'link_and_dedupe', false)
       AS p(rid_l bigint, rid_r bigint, dob smallint, pattern integer, tf_adj double precision);

-- ---- past maintenance_work_mem: an error with a hint, and a run falls back ----
-- the column definitions of a one-comparison engine call
\set one_level 'AS p(rid_l bigint, rid_r bigint, dob smallint, pattern integer, tf_adj double precision)'
SET maintenance_work_mem = '1MB';
\set VERBOSITY default
SELECT count(*) FROM caredata._link_block_compare('caredata.link_record_p_default', '{nhs_digits}', '{1}',
  '{"caredata.compare_date(l.dob, r.dob, 365)"}', '{NULL}', '{6}', NULL, 'link_and_dedupe', false)
  :one_level;
SELECT candidate_pairs = :candidate_pairs AS same_pairs, links = :links AS same_links
  FROM caredata.link_run(version => :v0, train => true);
SELECT stats->>'compare_engine' AS engine FROM caredata.link_run ORDER BY run_id DESC LIMIT 1;
RESET maintenance_work_mem;

-- ---- the pairs written straight into a table: only a bare temporary table ----
\set into_args '''caredata.link_record_p_default'', ''{nhs_digits}'', ''{1}'', ''{"caredata.compare_date(l.dob, r.dob, 365)"}'', ''{NULL}'', ''{6}'', NULL, ''link_and_dedupe'', false'
CREATE TEMP TABLE into_ok (rid_l bigint, rid_r bigint, dob smallint, pattern integer, tf_adj double precision);
SELECT pairs, cardinality(patterns) AS patterns, (SELECT sum(c) FROM unnest(counts) c) = pairs AS counted
  FROM caredata._link_block_compare_into('into_ok', :into_args) \gset
SELECT :pairs = count(*) AS written, :pairs > 1000 AS many, :patterns AS patterns, :'counted' AS counted FROM into_ok;
-- no records: no pairs and an empty histogram
SELECT * FROM caredata._link_block_compare_into('into_ok', '(SELECT * FROM caredata.link_record_p_default WHERE false)', '{nhs_digits}', '{1}',
  '{"caredata.compare_date(l.dob, r.dob, 365)"}', '{NULL}', '{6}', NULL, 'link_and_dedupe', false);
-- a comparison giving levels its labels do not cover (beyond them, or
-- negative): the pairs written, no histogram (link_run() then counts them)
SELECT pairs > 0 AS written, patterns IS NULL AS no_histogram
  FROM caredata._link_block_compare_into('into_ok', 'caredata.link_record_p_default', '{nhs_digits}', '{1}',
         '{"caredata.compare_postcode(l.postcode, r.postcode)"}', '{NULL}', '{2}', NULL, 'link_and_dedupe', false);
SELECT pairs > 0 AS written, patterns IS NULL AS no_histogram
  FROM caredata._link_block_compare_into('into_ok', 'caredata.link_record_p_default', '{nhs_digits}', '{1}',
         '{"caredata.compare_date(l.dob, r.dob, 365) - 9"}', '{NULL}', '{6}', NULL, 'link_and_dedupe', false);
CREATE TEMP TABLE into_ruled (rid_l bigint, rid_r bigint, dob smallint, pattern integer, tf_adj double precision);
CREATE RULE into_nowhere AS ON INSERT TO into_ruled DO INSTEAD NOTHING;
SELECT caredata._link_block_compare_into('into_ruled', :into_args);
DROP TABLE into_ruled;
CREATE TEMP TABLE into_indexed (rid_l bigint PRIMARY KEY, rid_r bigint, dob smallint, pattern integer, tf_adj double precision);
SELECT caredata._link_block_compare_into('into_indexed', :into_args);
CREATE TEMP TABLE into_not_null (rid_l bigint NOT NULL, rid_r bigint, dob smallint, pattern integer, tf_adj double precision);
SELECT caredata._link_block_compare_into('into_not_null', :into_args);
CREATE TEMP TABLE into_shape (rid_l bigint, rid_r bigint, dob integer, pattern integer, tf_adj double precision);
SELECT caredata._link_block_compare_into('into_shape', :into_args);
CREATE TABLE fld.into_plain (rid_l bigint, rid_r bigint, dob smallint, pattern integer, tf_adj double precision);
SELECT caredata._link_block_compare_into('fld.into_plain', :into_args);
SELECT caredata._link_block_compare_into(NULL, :into_args);
DROP TABLE into_ok, into_indexed, into_not_null, into_shape, fld.into_plain;

-- ---- bad arguments ----
\set VERBOSITY terse
-- arrays of different lengths, NULLs, a rule on no column, rules out of order
SELECT count(*) FROM caredata._link_block_compare('caredata.link_record_p_default', '{nhs_digits}', '{1,2}',
  '{"caredata.compare_date(l.dob, r.dob, 365)"}', '{NULL}', '{6}', NULL, 'link_and_dedupe', false)
  :one_level;
SELECT count(*) FROM caredata._link_block_compare(NULL, '{nhs_digits}', '{1}',
  '{"caredata.compare_date(l.dob, r.dob, 365)"}', '{NULL}', '{6}', NULL, 'link_and_dedupe', false)
  :one_level;
SELECT count(*) FROM caredata._link_block_compare('caredata.link_record_p_default', '{NULL}', '{1}',
  '{"caredata.compare_date(l.dob, r.dob, 365)"}', '{NULL}', '{6}', NULL, 'link_and_dedupe', false)
  :one_level;
SELECT count(*) FROM caredata._link_block_compare('caredata.link_record_p_default', '{dob,nhs_digits}', '{2,1}',
  '{"caredata.compare_date(l.dob, r.dob, 365)"}', '{NULL}', '{6}', NULL, 'link_and_dedupe', false)
  :one_level;
SELECT count(*) FROM caredata._link_block_compare('caredata.link_record_p_default', '{no_such_column}', '{1}',
  '{"caredata.compare_date(l.dob, r.dob, 365)"}', '{NULL}', '{6}', NULL, 'link_and_dedupe', false)
  :one_level;
-- a result of the wrong shape
SELECT count(*) FROM caredata._link_block_compare('caredata.link_record_p_default', '{nhs_digits}', '{1}',
  '{"caredata.compare_date(l.dob, r.dob, 365)"}', '{NULL}', '{6}', NULL, 'link_and_dedupe', false)
  AS p(rid_l bigint, rid_r bigint, dob integer, pattern integer, tf_adj double precision);
-- a comparison with a subquery, or naming a record of neither side
SELECT count(*) FROM caredata._link_block_compare('caredata.link_record_p_default', '{nhs_digits}', '{1}',
  '{(SELECT 1)}', '{NULL}', '{6}', NULL, 'link_and_dedupe', false)
  :one_level;
SELECT count(*) FROM caredata._link_block_compare('caredata.link_record_p_default', '{nhs_digits}', '{1}',
  '{"caredata.compare_date(l.dob, x.dob, 365)"}', '{NULL}', '{6}', NULL, 'link_and_dedupe', false)
  :one_level;
-- a term frequency that is not double precision
SELECT count(*) FROM caredata._link_block_compare('caredata.link_record_p_default', '{nhs_digits}', '{1}',
  '{"caredata.compare_date(l.dob, r.dob, 365)"}', '{sex}', '{6}', '{0.5}', 'link_and_dedupe', false)
  :one_level;
-- no records: no pairs
SELECT count(*) FROM caredata._link_block_compare('(SELECT * FROM caredata.link_record_p_default WHERE false)', '{nhs_digits}', '{1}',
  '{"caredata.compare_date(l.dob, r.dob, 365)"}', '{NULL}', '{6}', NULL, 'link_and_dedupe', false)
  :one_level;

-- ---- only linkers: an analyst cannot run it ----
SET ROLE caredata_analyst;
SELECT count(*) FROM caredata._link_block_compare('caredata.link_record_p_default', '{nhs_digits}', '{1}',
  '{"caredata.compare_date(l.dob, r.dob, 365)"}', '{NULL}', '{6}', NULL, 'link_and_dedupe', false)
  :one_level;
SELECT caredata._link_value_count('names_stage', 'given', NULL, 'name1'::text);
SELECT count(*) FROM caredata._link_person_plan('names_stage', 1);
SELECT caredata._link_block_compare_into('names_stage', :into_args);
SELECT caredata._link_cluster_into('cl_ok', 'caredata.link_record_p_default', 'no_persons', :'plain', false, NULL);
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'cl_ok', 'cl_ok', 1);
SELECT caredata._link_pairs_into('pg_temp.cl_ok', 1, '{1}', 0);
RESET ROLE;
-- a linker counts only what it may read, and no table under row security
GRANT SELECT ON odd_stage TO caredata_linker;
ALTER TABLE odd_stage ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_twos ON odd_stage TO caredata_linker USING (n = 2);
SET ROLE caredata_linker;
SELECT caredata._link_value_count('names_stage', 'given', NULL, 'name1'::text);
SELECT count(*) AS rows_it_sees FROM odd_stage;
SELECT caredata._link_value_count('odd_stage', 'n', NULL, 1.0);
RESET ROLE;
-- the cluster table: a linker writes only its own bare temporary table,
-- reads only the columns it may, and no table under row security
CREATE TEMP TABLE persons_rls (rid bigint, person_id bigint);
INSERT INTO persons_rls VALUES (1, 1);
GRANT SELECT ON persons_rls TO caredata_linker;
ALTER TABLE persons_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY no_rows ON persons_rls TO caredata_linker USING (false);
CREATE TEMP TABLE persons_hidden (rid bigint, person_id bigint);
SET ROLE caredata_linker;
CREATE TEMP TABLE cl_linker (rid bigint, source text, record_id bigint, record_key text, cluster bigint, refused boolean, old_person bigint);
SELECT caredata._link_cluster_into('cl_linker', 'caredata.link_record_p_default', 'persons_rls', 'SELECT 1::bigint, 2::bigint WHERE false', false, NULL);
SELECT caredata._link_cluster_into('cl_linker', 'caredata.link_record_p_default', 'persons_hidden', 'SELECT 1::bigint, 2::bigint WHERE false', false, NULL);
SELECT caredata._link_cluster_into('cl_ok', 'caredata.link_record_p_default', 'no_persons', 'SELECT 1::bigint, 2::bigint WHERE false', false, NULL);
SELECT count(*) AS nothing_written FROM cl_linker;
-- the person index: a linker writes the partition only with the INSERT
-- right, never under row security
CREATE TEMP TABLE plan_linker (kind "char", cluster bigint, person_id bigint);
-- with the partition's indexes in place (no run under way): refused
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'cl_linker', 'plan_linker', 1);
RESET ROLE;
BEGIN;
SELECT caredata._link_maintain('drop_person_indexes', project => 'default');
SET LOCAL ROLE caredata_linker;
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'cl_linker', 'plan_linker', 1) AS nothing_to_write;
ROLLBACK;
BEGIN;
SELECT caredata._link_maintain('drop_person_indexes', project => 'default');
REVOKE INSERT ON caredata.person_index_p_default FROM caredata_linker;
SET LOCAL ROLE caredata_linker;
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'cl_linker', 'plan_linker', 1);
ROLLBACK;
BEGIN;
SELECT caredata._link_maintain('drop_person_indexes', project => 'default');
ALTER TABLE caredata.person_index_p_default ENABLE ROW LEVEL SECURITY;
SET LOCAL ROLE caredata_linker;
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'cl_linker', 'plan_linker', 1);
ROLLBACK;
BEGIN;
SELECT caredata._link_maintain('drop_person_indexes', project => 'default');
ALTER TABLE caredata.person_index ENABLE ROW LEVEL SECURITY;
SET LOCAL ROLE caredata_linker;
SELECT caredata._link_person_index_into('caredata.person_index_p_default', 'default', 'cl_linker', 'plan_linker', 1);
ROLLBACK;
-- the links: a linker writes caredata.link_pair only with the INSERT right,
-- never under row security
BEGIN;
SET LOCAL ROLE caredata_linker;
CREATE TEMP TABLE cand_own (rid_l bigint, rid_r bigint, pattern integer, tf_adj double precision);
INSERT INTO cand_own VALUES (1, 2, 0, 0);
SELECT caredata._link_pairs_into('pg_temp.cand_own', 905, '{1}', 0) AS written;
ROLLBACK;
BEGIN;
REVOKE INSERT ON caredata.link_pair FROM caredata_linker;
SET LOCAL ROLE caredata_linker;
CREATE TEMP TABLE cand_own (rid_l bigint, rid_r bigint, pattern integer, tf_adj double precision);
SELECT caredata._link_pairs_into('pg_temp.cand_own', 905, '{1}', 0);
ROLLBACK;
BEGIN;
ALTER TABLE caredata.link_pair ENABLE ROW LEVEL SECURITY;
SET LOCAL ROLE caredata_linker;
CREATE TEMP TABLE cand_own (rid_l bigint, rid_r bigint, pattern integer, tf_adj double precision);
SELECT caredata._link_pairs_into('pg_temp.cand_own', 905, '{1}', 0);
ROLLBACK;
