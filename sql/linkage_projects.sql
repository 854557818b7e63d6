-- linkage projects: several in one database, each with its own sources,
-- models, runs, links, standardised records and person index; a run of one
-- never touches another's; lookups and explanations answer per project;
-- bad names and the wrong role are refused
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
SET search_path = caredata, public;
\set SHOW_CONTEXT never
-- from a clean slate, whatever the suites before left
TRUNCATE caredata.link_source, caredata.link_record_key, caredata.link_record, caredata.link_model,
         caredata.link_model_level, caredata.link_run, caredata.link_pair, caredata.person_index, caredata.person_event;
\set ECHO none
\i test/synthetic/generate.sql
\set ECHO all
SELECT count(*) > 0 AS generated FROM synth.generate(2000, 11);

-- the project of calls that name none exists from the install
SELECT project, description FROM link_project ORDER BY project;

-- ---- the demo's linkage (scripts/demo.sql), in the default project ----
SELECT link_add_source('gp', 'synth.gp_registration', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT link_add_source('hes', 'synth.hospital_episode', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT link_create_model('default');
SELECT run_id, links > 0 AS linked FROM link_run(method => 'deterministic');
SELECT run_id, model_version, links > 0 AS linked FROM link_run();
-- a second run keeps ids (and writes person events, if any, and links)
SELECT run_id FROM link_run(version => 2);

-- everything of a project, as checksums of its rows
CREATE FUNCTION pg_temp.project_state(p text) RETURNS TABLE (what text, n bigint, digest text) LANGUAGE sql AS $$
  SELECT 'link_source', count(*), md5(string_agg((to_jsonb(t) - 'added_at')::text, ',' ORDER BY t.source)) FROM caredata.link_source t WHERE t.project = p
  UNION ALL SELECT 'link_record_key', count(*), md5(string_agg(t::text, ',' ORDER BY t.rid)) FROM caredata.link_record_key t WHERE t.project = p
  UNION ALL SELECT 'link_record', count(*), md5(string_agg(t::text, ',' ORDER BY t.rid)) FROM caredata.link_record t WHERE t.project = p
  UNION ALL SELECT 'link_model', count(*), md5(string_agg(t::text, ',' ORDER BY t.model, t.version)) FROM caredata.link_model t WHERE t.project = p
  UNION ALL SELECT 'link_model_level', count(*), md5(string_agg(t::text, ',' ORDER BY t.model, t.version, t.comparison, t.level)) FROM caredata.link_model_level t WHERE t.project = p
  UNION ALL SELECT 'link_run', count(*), md5(string_agg(t::text, ',' ORDER BY t.run_id)) FROM caredata.link_run t WHERE t.project = p
  UNION ALL SELECT 'link_pair', count(*), md5(string_agg(t::text, ',' ORDER BY t.run_id, t.rid_l, t.rid_r))
              FROM caredata.link_pair t JOIN caredata.link_run r USING (run_id) WHERE r.project = p
  UNION ALL SELECT 'person_event', count(*), md5(string_agg(t::text, ',' ORDER BY t::text))
              FROM caredata.person_event t JOIN caredata.link_run r USING (run_id) WHERE r.project = p
  UNION ALL SELECT 'person_index', count(*), md5(string_agg(t::text, ',' ORDER BY t.source, t.record_id)) FROM caredata.person_index t WHERE t.project = p
  UNION ALL SELECT 'partition files', count(c), md5(string_agg(pg_relation_filenode(c)::text, ','))
              FROM unnest(ARRAY[caredata._link_partition('caredata.link_record', p), caredata._link_partition('caredata.person_index', p)]) c
$$;
CREATE TEMP TABLE default_before AS SELECT * FROM pg_temp.project_state('default');
SELECT what, n > 0 AS has_rows FROM default_before ORDER BY what;

-- ---- a second project: its own sources (the same names), model and runs ----
SELECT link_create_project('cohort', 'even GP records against hospital episodes');
SELECT project, description FROM link_project ORDER BY project;
SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c
 WHERE c.oid IN (caredata._link_partition('caredata.link_record', 'cohort'), caredata._link_partition('caredata.person_index', 'cohort'))
 ORDER BY 1;
CREATE VIEW public.gp_even AS SELECT * FROM synth.gp_registration WHERE record_id % 2 = 0;
SELECT link_add_source('gp', 'public.gp_even', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode', project => 'cohort');
SELECT link_add_source('hes', 'synth.hospital_episode', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode', project => 'cohort');
SELECT link_create_model('default', '{}', 'cohort');
SELECT project, source, relation FROM link_source ORDER BY project, source;
SELECT (SELECT sum(pairs) FROM link_blocking_counts(project => 'cohort')) < (SELECT sum(pairs) FROM link_blocking_counts()) AS cohort_fewer_pairs;
SELECT model_version, records = (SELECT count(*) FROM public.gp_even) + (SELECT count(*) FROM synth.hospital_episode) AS all_records,
       links > 0 AS linked FROM link_run(project => 'cohort');

-- the default project is untouched: rows, links, events, models, even its partitions' files
SELECT b.what, b.n = a.n AND b.digest IS NOT DISTINCT FROM a.digest AS unchanged
  FROM default_before b JOIN pg_temp.project_state('default') a USING (what) ORDER BY b.what;
SELECT project, count(*) AS records FROM person_index GROUP BY project ORDER BY project;
SELECT project, count(*) AS versions FROM link_model GROUP BY project ORDER BY project;

-- and the other way round: a run of the default project leaves the cohort alone
CREATE TEMP TABLE cohort_before AS SELECT * FROM pg_temp.project_state('cohort');
SELECT run_id FROM link_run(version => 2);
SELECT b.what, b.n = a.n AND b.digest IS NOT DISTINCT FROM a.digest AS unchanged
  FROM cohort_before b JOIN pg_temp.project_state('cohort') a USING (what) ORDER BY b.what;
-- an incremental run of the cohort links only what is new to it
SELECT model_version FROM link_run(incremental => true, project => 'cohort');
SELECT (SELECT stats->>'new_records' FROM link_run WHERE project = 'cohort' ORDER BY run_id DESC LIMIT 1) AS cohort_new_records;

-- ---- lookups and explanations answer per project ----
CREATE TEMP TABLE probe AS
SELECT g.record_id, g.nhs_number, caredata.try_standardise_dob(g.dob) AS dob, g.sex, g.postcode
  FROM synth.gp_registration g WHERE g.record_id % 2 = 0 AND g.nhs_number IS NOT NULL ORDER BY g.record_id LIMIT 20;
SELECT count(*) AS lookups,
       count(*) FILTER (WHERE d.person_id = pd.person_id) AS default_finds_its_person,
       count(*) FILTER (WHERE c.person_id = pc.person_id) AS cohort_finds_its_person
  FROM probe x
  JOIN person_index pd ON pd.project = 'default' AND pd.source = 'gp' AND pd.record_id = x.record_id
  JOIN person_index pc ON pc.project = 'cohort' AND pc.source = 'gp' AND pc.record_id = x.record_id
  LEFT JOIN LATERAL link_lookup(x.nhs_number, x.dob, x.sex, x.postcode) d ON true
  LEFT JOIN LATERAL link_lookup(x.nhs_number, x.dob, x.sex, x.postcode, project => 'cohort') c ON true;
-- an odd GP record is the default project's only
SELECT round(sum(weight)::numeric, 6) = round((SELECT sum(weight) FROM link_explain('gp', 1, 'gp', 3))::numeric, 6) AS explained
  FROM link_explain('gp', 1, 'gp', 3, 'default', NULL, 'default');
SELECT * FROM link_explain('gp', 1, 'gp', 3, project => 'cohort');
SELECT count(*) > 0 AS explained_in_cohort FROM link_explain('gp', 2, 'gp', 4, project => 'cohort');
SELECT "precision" > 0.9 AS default_precise, (SELECT "precision" > 0.9 FROM link_quality('synth_truth.record', project => 'cohort')) AS cohort_precise
  FROM link_quality('synth_truth.record');

-- ---- bad and unknown names: clear errors ----
SELECT * FROM link_run(project => 'nope');
SELECT * FROM link_run(project => 'Cohort!');
SELECT * FROM link_run(project => NULL);
SELECT * FROM link_lookup('9434765919', '1950-02-01', 'F', 'LS1 4AP', project => 'nope');
SELECT * FROM link_explain('gp', 2, 'gp', 4, project => 'nope');
SELECT * FROM link_quality('synth_truth.record', project => 'nope');
SELECT * FROM link_blocking_counts(project => 'nope');
SELECT link_standardise(project => 'nope');
SELECT link_add_source('gp', 'public.gp_even', 'record_id', project => 'nope');
SELECT link_create_model('default', '{}', 'nope');
SELECT link_create_project('cohort');
SELECT link_create_project('no way');
SELECT link_drop_project('default');
SELECT link_drop_project('nope');
-- the partitions go only with their project
SELECT caredata._link_maintain('drop_partitions', project => 'cohort');
SELECT caredata._link_maintain('create_partitions', project => 'nope');
-- their SQLSTATEs: an unknown project is an undefined object, a malformed
-- name an invalid parameter value
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE q;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
SELECT q, pg_temp.sqlstate_of(q) AS sqlstate FROM unnest(ARRAY[
  $q$SELECT * FROM caredata.link_run(project => 'nope')$q$,
  $q$SELECT * FROM caredata.link_run(project => 'Cohort!')$q$,
  $q$SELECT * FROM caredata.link_lookup('9434765919', '1950-02-01', 'F', 'LS1 4AP', project => 'nope')$q$,
  $q$SELECT * FROM caredata.link_explain('gp', 2, 'gp', 4, project => 'no way')$q$,
  $q$SELECT caredata.link_create_project('cohort')$q$,
  $q$SELECT caredata.link_drop_project('default')$q$,
  $q$SELECT caredata._link_maintain('drop_partitions', project => 'cohort')$q$]) q;

-- ---- the analyst cannot create, drop or read a project ----
CREATE ROLE regress_proj_analyst NOLOGIN IN ROLE caredata_analyst;
SET ROLE regress_proj_analyst;
SELECT link_create_project('mine');
SELECT link_drop_project('cohort');
SELECT * FROM caredata.link_project;
SELECT count(*) FROM caredata.person_index WHERE project = 'cohort';
SELECT count(*) FROM caredata.person_index_p_cohort;
SELECT count(*) FROM caredata.link_record_p_cohort;
SELECT * FROM link_lookup('9434765919', '1950-02-01', 'F', 'LS1 4AP', project => 'cohort');
RESET ROLE;
DROP ROLE regress_proj_analyst;

-- ---- a name too long for a readable partition name still gets its partitions ----
SELECT link_create_project(repeat('x', 63));
SELECT count(*) AS partitions, bool_and(length(c.relname) <= 63) AS names_fit
  FROM pg_class c WHERE c.oid IN (caredata._link_partition('caredata.link_record', repeat('x', 63)),
                                   caredata._link_partition('caredata.person_index', repeat('x', 63)));
SELECT link_drop_project(repeat('x', 63));

-- ---- dropping a project removes all of it, audited, and nothing else ----
CREATE TEMP TABLE default_before_drop AS SELECT * FROM pg_temp.project_state('default');
SELECT link_drop_project('cohort');
SELECT what, n FROM pg_temp.project_state('cohort') ORDER BY what;
SELECT b.what, b.n = a.n AND b.digest IS NOT DISTINCT FROM a.digest AS unchanged
  FROM default_before_drop b JOIN pg_temp.project_state('default') a USING (what) ORDER BY b.what;
SELECT count(*) AS cohort_partitions FROM pg_class WHERE relname LIKE '%\_p\_cohort';
SELECT action, object, detail FROM audit_log WHERE action LIKE 'linkage.%project' AND object <> 'names' ORDER BY id;  -- (names: the Quick start's)
SELECT project FROM link_project ORDER BY project;
DROP VIEW public.gp_even;
