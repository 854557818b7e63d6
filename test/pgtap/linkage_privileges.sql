-- test/pgtap/linkage_privileges.sql: only caredata_linker and caredata_admin
-- may run linkage or read its tables, which hold real identifiers; every
-- other role is refused on every read, write and function (docs/sql-reference.md "Roles").
BEGIN;
SELECT plan(145);
SET LOCAL client_min_messages = warning;

CREATE ROLE tap_l_recipient NOLOGIN;
CREATE ROLE tap_l_analyst NOLOGIN IN ROLE caredata_analyst;
CREATE ROLE tap_l_patient NOLOGIN IN ROLE caredata_patient;
CREATE ROLE tap_l_reidentifier NOLOGIN IN ROLE caredata_reidentifier;
CREATE ROLE tap_l_linker NOLOGIN IN ROLE caredata_linker;
CREATE ROLE tap_l_admin NOLOGIN IN ROLE caredata_admin;
\i test/pgtap/include/try_as.psql

-- a small source the linker may read
CREATE TABLE public.tap_l_gp (id bigint PRIMARY KEY, nhs text, dob text, sex text, postcode text);
INSERT INTO public.tap_l_gp VALUES (1, '943 476 5919', '1950-02-01', 'F', 'LS1 4AP'),
  (2, '9434765919', '01/02/1950', 'F', 'LS1 4AP'), (3, '401 023 2137', '1980-07-09', 'M', 'SW1A 1AA'),
  (4, '4010232137', '1980-07-09', '1', 'SW1A 1AB');
GRANT SELECT ON public.tap_l_gp TO tap_l_linker, tap_l_admin;

-- 1. reads of every linkage table, as every role without the right (12 tables x 4 roles)
SELECT is(pg_temp.try_as(r, format('SELECT * FROM caredata.%I', t)), '42501', format('%s cannot read %s', r, t))
FROM unnest(ARRAY['tap_l_recipient', 'tap_l_analyst', 'tap_l_patient', 'tap_l_reidentifier']) r,
     unnest(ARRAY['link_source', 'link_record_key', 'link_record', 'link_model', 'link_model_level',
                  'link_run', 'link_pair', 'person_index', 'person_event',
                  'link_project', 'link_record_p_default', 'person_index_p_default']) t;

-- 2. writes without column references, as every such role (3 x 4)
SELECT is(pg_temp.try_as(r, q), '42501', format('%s cannot run %s', r, q))
FROM unnest(ARRAY['tap_l_recipient', 'tap_l_analyst', 'tap_l_patient', 'tap_l_reidentifier']) r,
     unnest(ARRAY['DELETE FROM caredata.person_index', 'UPDATE caredata.person_index SET person_id = 0',
                  'TRUNCATE caredata.link_record']) q;

-- 3. every linkage function, as every such role (17 x 4)
SELECT is(pg_temp.try_as(r, q), '42501', format('%s cannot run %s', r, q))
FROM unnest(ARRAY['tap_l_recipient', 'tap_l_analyst', 'tap_l_patient', 'tap_l_reidentifier']) r,
     unnest(ARRAY[
       $$SELECT caredata.link_add_source('x', 'public.tap_l_gp', 'id')$$,
       $$SELECT caredata.link_create_model('x')$$,
       $$SELECT * FROM caredata.link_run()$$,
       $$SELECT caredata.link_standardise()$$,
       $$SELECT * FROM caredata.link_blocking_counts()$$,
       $$SELECT * FROM caredata.link_quality('pg_class')$$,
       $$SELECT * FROM caredata.link_explain('a', 1, 'b', 2)$$,
       $$SELECT * FROM caredata.link_lookup('9434765919', '1950-02-01', 'F', 'LS1 4AP')$$,
       $$SELECT * FROM caredata.link_components('SELECT 1::bigint, 2::bigint')$$,
       $$SELECT caredata._link_maintain('analyze_records')$$,
       $$SELECT caredata.link_create_project('x')$$,
       $$SELECT caredata.link_drop_project('x')$$,
       $$SELECT caredata._link_maintain('create_partitions', project => 'default')$$,
       $$SELECT caredata._link_check_project('default')$$,
       $$SELECT caredata._link_std_expr('public.tap_l_gp', 'nhs', 'nhs_number')$$,
       $$SELECT caredata.link_em('{0}', '{1}', '{2}', '{0.5,0.5}', '{0.5,0.5}', 10)$$,
       $$SELECT caredata.link_default_spec()$$]) q;

-- 4. nothing named link is open to PUBLIC; statistics and plans tell nothing
SELECT is((SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'caredata'::regnamespace
             AND (p.proname LIKE 'link\_%' OR p.proname LIKE '\_link\_%')
             AND has_function_privilege('tap_l_recipient', p.oid, 'EXECUTE')), 0::bigint,
  'no linkage function is executable by a role without grants');
SELECT is((SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'caredata'::regnamespace
             AND (c.relname LIKE 'link\_%' OR c.relname LIKE 'person\_%') AND c.relkind IN ('r', 'p')
             AND has_table_privilege('tap_l_analyst', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')), 0::bigint,
  'no linkage table grants anything to the analyst');

-- 5. the linker runs linkage and reads its results; so does the admin
SELECT is(pg_temp.try_as('tap_l_linker', $$SELECT caredata.link_add_source('gp', 'public.tap_l_gp', 'id', 'nhs', 'dob', 'sex', 'postcode')$$),
  'allowed', 'the linker registers a source');
SELECT is(pg_temp.try_as('tap_l_linker', $$SELECT caredata.link_create_model('default', '{"u_sample_pairs": 100}')$$),
  'allowed', 'the linker creates a model');
SELECT is(pg_temp.try_as('tap_l_linker', $$SELECT * FROM caredata.link_run(method => 'deterministic')$$),
  'allowed', 'the linker runs linkage');
SELECT is((SELECT count(DISTINCT person_id) FROM caredata.person_index), 2::bigint,
  'the run linked four records into two persons');
SELECT is(pg_temp.try_as('tap_l_admin', 'SELECT * FROM caredata.person_index'), 'allowed', 'the admin reads the person index');
SELECT is(pg_temp.try_as('tap_l_admin', $$SELECT * FROM caredata.link_lookup('9434765919', '1950-02-01', 'F', 'LS1 4AP')$$),
  '42704', 'a lookup needs a trained model (a clear error, not a privilege one)');
SELECT is(pg_temp.try_as('tap_l_analyst', 'SELECT count(*) FROM pg_stats WHERE tablename = ''link_record'' AND schemaname = ''caredata'''),
  'allowed', 'the analyst may query pg_stats');
SELECT is((SELECT count(*) FROM pg_stats WHERE tablename IN ('link_record', 'person_index') AND schemaname = 'caredata'
             AND has_table_privilege('tap_l_analyst', format('caredata.%I', tablename), 'SELECT')), 0::bigint,
  'pg_stats shows the analyst no column statistics of the linkage tables');

-- 6. projects: the linker creates one, links in it and drops it; its
-- partitions grant the analyst nothing; the partitions of a project that
-- exists cannot be dropped behind its back; 'default' stays
SELECT is(pg_temp.try_as('tap_l_linker', $$SELECT caredata.link_create_project('tap_second')$$),
  'allowed', 'the linker creates a project');
SELECT is(pg_temp.try_as('tap_l_linker', $$SELECT caredata.link_add_source('gp', 'public.tap_l_gp', 'id', 'nhs', 'dob', 'sex', 'postcode', project => 'tap_second')$$
                                        || $$; SELECT caredata.link_create_model('default', '{"u_sample_pairs": 100}', 'tap_second')$$
                                        || $$; SELECT * FROM caredata.link_run(method => 'deterministic', project => 'tap_second')$$),
  'allowed', 'the linker links in it');
SELECT is(pg_temp.try_as('tap_l_analyst', 'SELECT * FROM caredata.person_index_p_tap_second'), '42501',
  'the analyst cannot read the new project''s person index partition');
SELECT is(pg_temp.try_as('tap_l_analyst', 'SELECT * FROM caredata.link_record_p_tap_second'), '42501',
  'the analyst cannot read the new project''s standardised records');
SELECT is(pg_temp.try_as('tap_l_linker', $$SELECT caredata._link_maintain('drop_partitions', project => 'tap_second')$$), '55000',
  'the partitions of a project that exists cannot be dropped on their own');
SELECT is(pg_temp.try_as('tap_l_linker', $$SELECT caredata.link_drop_project('tap_second')$$),
  'allowed', 'the linker drops the project');
SELECT is(pg_temp.try_as('tap_l_admin', $$SELECT caredata.link_drop_project('default')$$), '0A000',
  'the default project cannot be dropped, not even by the admin');

SELECT * FROM finish();
ROLLBACK;
