-- test/pgtap/sdc_privileges.sql: every role may read the disclosure-control
-- policies and run the safe aggregates; only caredata_admin may change a
-- policy, so nobody else can make a lax one to count through (docs/sql-reference.md
-- "Roles").
BEGIN;
SELECT plan(36);
SET LOCAL client_min_messages = warning;

CREATE ROLE tap_s_recipient NOLOGIN;
CREATE ROLE tap_s_analyst NOLOGIN IN ROLE caredata_analyst;
CREATE ROLE tap_s_patient NOLOGIN IN ROLE caredata_patient;
CREATE ROLE tap_s_linker NOLOGIN IN ROLE caredata_linker;
CREATE ROLE tap_s_admin NOLOGIN IN ROLE caredata_admin;
\i test/pgtap/include/try_as.psql

CREATE TABLE public.tap_s_rows (unit int, person bigint);
INSERT INTO public.tap_s_rows SELECT i % 3, i FROM generate_series(1, 30) i;
GRANT SELECT ON public.tap_s_rows TO PUBLIC;

-- 1. writes of the policy catalog, as every role but the admin (4 writes x 4 roles)
SELECT is(pg_temp.try_as(r, q), '42501', format('%s cannot run %s', r, q))
FROM unnest(ARRAY['tap_s_recipient', 'tap_s_analyst', 'tap_s_patient', 'tap_s_linker']) r,
     unnest(ARRAY[$$INSERT INTO caredata.sdc_policy (policy, suppress_max, source) VALUES ('lax', 0, 'x')$$,
                  $$UPDATE caredata.sdc_policy SET suppress_max = 0$$,
                  $$DELETE FROM caredata.sdc_policy$$,
                  $$TRUNCATE caredata.sdc_policy$$]) q;

-- 2. reads and safe aggregates, as every role (2 x 4)
SELECT is(pg_temp.try_as(r, q), 'allowed', format('%s may run %s', r, q))
FROM unnest(ARRAY['tap_s_recipient', 'tap_s_analyst', 'tap_s_patient', 'tap_s_linker']) r,
     unnest(ARRAY['SELECT * FROM caredata.sdc_policy',
                  'SELECT unit, caredata.safe_count(person), caredata.safe_count_text(person, caredata.sdc_policy_in_force()) FROM public.tap_s_rows GROUP BY unit']) q;

-- 3. the admin adds a policy and puts it in force; only the admin chooses
-- (issue 24): an analyst naming another policy, or a made-up one, or a
-- hand-made state naming one, is refused
SELECT is(pg_temp.try_as('tap_s_admin', $$INSERT INTO caredata.sdc_policy (policy, suppress_max, source) VALUES ('tap_local', 10, 'test')$$),
  'allowed', 'the admin adds a policy');
SELECT is(pg_temp.try_as('tap_s_analyst', $$SELECT caredata.sdc_apply(10, 'tap_local')$$), '42501', 'the analyst cannot choose the admin''s new policy');
SELECT is(pg_temp.try_as('tap_s_admin', $$SELECT caredata.assign_sdc_policy('tap_s_analyst', 'tap_local')$$), 'allowed', 'the admin puts it in force for the analyst');
SELECT is(pg_temp.try_as('tap_s_analyst', $$SELECT caredata.sdc_apply(10)$$), 'allowed', 'the analyst uses the admin''s policy');
SELECT is(caredata.sdc_apply(10, 'tap_local'), NULL::bigint, 'which suppresses 10');
SELECT is(pg_temp.try_as('tap_s_analyst', $$SELECT caredata.sdc_apply(10, 'made_up')$$), '42501', 'a policy nobody approved is refused');
SELECT is(pg_temp.try_as('tap_s_analyst', $$SELECT caredata.safe_count(s) FROM (VALUES ('made_up:1,2,3,4,5,6,7,8,9'::caredata.person_set)) v(s)$$),
  '42501', 'a hand-made state naming another policy is refused');
SELECT is(pg_temp.try_as('tap_s_admin', $$SELECT caredata.sdc_apply(10, 'made_up')$$), '42704', 'to the admin, a policy nobody approved does not exist');

-- 4. table protection runs its query with the caller's rights: an analyst
-- protects a table they may read, and cannot reach one they may not
CREATE TABLE public.tap_s_hidden (r text, k text, n bigint);
INSERT INTO public.tap_s_hidden VALUES ('a', 'x', 3), ('a', 'y', 30), ('b', 'x', 40), ('b', 'y', 50);
SELECT is(pg_temp.try_as('tap_s_analyst', $$SELECT * FROM caredata.sdc_protect('SELECT unit::text, (person % 2)::text, count(*) FROM public.tap_s_rows GROUP BY 1, 2')$$),
  'allowed', 'the analyst protects a table they may read');
SELECT is(pg_temp.try_as('tap_s_analyst', $$SELECT * FROM caredata.sdc_protect('SELECT r, k, n FROM public.tap_s_hidden')$$),
  '42501', 'sdc_protect reads nothing the analyst may not');
SELECT is(pg_temp.try_as('tap_s_analyst', $$SELECT * FROM caredata.sdc_audit('SELECT r, k, n, false FROM public.tap_s_hidden')$$),
  '42501', 'nor does sdc_audit');
SELECT is(pg_temp.try_as('tap_s_recipient', $$SELECT * FROM caredata.sdc_audit('SELECT ''a'', ''x'', 3, true UNION ALL SELECT ''a'', NULL, 3, false')$$),
  'allowed', 'anyone may audit a table of their own');

SELECT * FROM finish();
ROLLBACK;
