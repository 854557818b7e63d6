-- test/pgtap/objection_privileges.sql: who may change the objection
-- register, exemptions and row filters, tried as every wrong role; and the
-- ways a filtered role might try to switch its filter off.
BEGIN;
SELECT plan(89);

CREATE ROLE tap_o_recipient NOLOGIN;          -- a research team or BI login
CREATE ROLE tap_o_analyst NOLOGIN IN ROLE caredata_analyst;
CREATE ROLE tap_o_linker NOLOGIN IN ROLE caredata_linker;
CREATE ROLE tap_o_patient NOLOGIN IN ROLE caredata_patient;
CREATE ROLE tap_o_admin NOLOGIN IN ROLE caredata_admin;

\i test/pgtap/include/try_as.psql

-- a protected table the analyst and the patient may read
CREATE TABLE public.tap_episode (nhs_number caredata.nhs_number, los int);
INSERT INTO public.tap_episode VALUES ('943 476 5919', 1), ('999 000 0018', 2);
CREATE TABLE public.tap_feed (nhs_number text);
INSERT INTO public.tap_feed VALUES ('9990000034');   -- not a patient in tap_episode
GRANT SELECT ON public.tap_episode, public.tap_feed
  TO tap_o_recipient, tap_o_analyst, tap_o_linker, tap_o_patient, tap_o_admin;
SELECT caredata.protect('public.tap_episode', 'nhs_number', 'research');
SELECT caredata.record_objection('999 000 0018', 'national_data_opt_out', 'tap', now() - interval '1 day') AS oid \gset
SELECT caredata.grant_exemption('tap_ds', 'research', 'type1', 'consent', 'tap ref') AS eid \gset

-- 1. managing objections, exemptions and filters: caredata_admin only
SELECT is(pg_temp.try_as(r, q), '42501', format('%s cannot run %s', r, q))
FROM unnest(ARRAY['tap_o_recipient', 'tap_o_analyst', 'tap_o_linker', 'tap_o_patient']) r,
     unnest(ARRAY[
       $$SELECT caredata.apply_opt_out_snapshot('public.tap_feed')$$,
       $$SELECT caredata.apply_type1_codes('public.tap_feed')$$,
       $$SELECT caredata.record_objection('943 476 5919', 'type1', 'x')$$,
       format('SELECT caredata.withdraw_objection(%s)', :oid),
       $$SELECT caredata.grant_exemption('x', 'research', 'type1', 'consent', 'x')$$,
       format('SELECT caredata.revoke_exemption(%s)', :eid),
       $$SELECT caredata.protect('public.tap_episode', 'nhs_number', 'planning')$$,
       $$SELECT caredata.unprotect('public.tap_episode')$$,
       $$SELECT * FROM caredata.blocked_nhs_numbers('research', NULL, now())$$,
       $$SELECT * FROM caredata.blocked_interval('research', NULL, now())$$,
       $$SELECT caredata.lock_register()$$]) q;

-- 2. the register's tables: not readable, not writable, by anyone but the admin
SELECT is(pg_temp.try_as(r, q), '42501', format('%s cannot run %s', r, q))
FROM unnest(ARRAY['tap_o_recipient', 'tap_o_analyst', 'tap_o_linker', 'tap_o_patient']) r,
     unnest(ARRAY[
       $$SELECT count(*) FROM caredata.objection$$,
       $$INSERT INTO caredata.objection (nhs_number, kind, purposes, effective_from, source) VALUES ('943 476 5919', 'type1', '{research}', now(), 'x')$$,
       $$UPDATE caredata.objection SET withdrawn_at = now()$$,
       $$INSERT INTO caredata.exemption (dataset, purpose, objection_kind, legal_basis, reference) VALUES ('x', 'research', 'type1', 'consent', 'x')$$,
       $$INSERT INTO caredata.subject_access (role, nhs_number) VALUES (current_user::regrole, '943 476 5919')$$,
       $$SELECT count(*) FROM caredata.subject_access$$]) q;

-- 3. the admin may (as the table's owner for protect; here the superuser owns it)
SELECT is(pg_temp.try_as('tap_o_admin', $$SELECT caredata.record_objection('999 000 0026', 'type1', 'x')$$),
  'allowed', 'the admin can record an objection');
SELECT is(pg_temp.try_as('tap_o_admin', $$SELECT caredata.grant_exemption('x', 'research', 'type1', 'consent', 'x')$$),
  'allowed', 'the admin can grant an exemption');
SELECT is(pg_temp.try_as('tap_o_admin', $$SELECT caredata.apply_opt_out_snapshot('public.tap_feed', source => 'tap_feed')$$),
  'allowed', 'the admin can apply a snapshot');
SELECT is(pg_temp.try_as('tap_o_admin', $$SELECT caredata.unprotect('public.tap_episode')$$),
  '42501', 'the admin cannot unprotect a table it does not own');

-- 4. a filtered role cannot switch its filter off
SELECT is(pg_temp.try_as(r, q), '42501', format('%s cannot run %s', r, q))
FROM unnest(ARRAY['tap_o_analyst', 'tap_o_patient']) r,
     unnest(ARRAY[
       $$ALTER TABLE public.tap_episode DISABLE ROW LEVEL SECURITY$$,
       $$ALTER TABLE public.tap_episode NO FORCE ROW LEVEL SECURITY$$,
       $$DROP POLICY caredata_objection ON public.tap_episode$$,
       $$ALTER POLICY caredata_objection ON public.tap_episode USING (true)$$,
       $$CREATE POLICY tap_open ON public.tap_episode AS PERMISSIVE USING (true)$$,
       $$SET LOCAL row_security = off; SELECT count(*) FROM public.tap_episode$$]) q;
SELECT is(pg_temp.try_as('tap_o_analyst', $$SET LOCAL caredata.scan_lookahead = off; SELECT count(*) FROM public.tap_episode$$),
  'allowed', 'turning the read-ahead off is allowed (it changes speed only)');
CREATE TEMP TABLE seen (who text, n bigint);
GRANT INSERT ON seen TO tap_o_analyst, tap_o_patient;
SELECT pg_temp.try_as('tap_o_analyst', $$SET LOCAL caredata.scan_lookahead = off; INSERT INTO seen SELECT 'analyst', count(*) FROM public.tap_episode$$);
SELECT pg_temp.try_as('tap_o_patient', $$INSERT INTO seen SELECT 'patient', count(*) FROM public.tap_episode$$);
SELECT is((SELECT n FROM seen WHERE who = 'analyst'), 1::bigint, 'the analyst sees the one permitted row, read-ahead or not');
SELECT is((SELECT n FROM seen WHERE who = 'patient'), 0::bigint, 'a patient with no subject access row sees nothing');

-- 5. functions open to roles without grants: none of the objection ones
SELECT is(
  (SELECT count(*) FROM pg_proc p
   WHERE p.pronamespace = 'caredata'::regnamespace
     AND p.proname IN ('permitted', 'row_permitted', 'my_nhs_number', 'apply_opt_out_snapshot',
                       'apply_type1_codes', 'record_objection', 'withdraw_objection', 'grant_exemption',
                       'revoke_exemption', 'protect', 'unprotect', 'blocked_nhs_numbers', 'blocked_interval',
                       'keep_history', 'register_changed', 'lock_register')
     AND has_function_privilege('tap_o_recipient', p.oid, 'EXECUTE')),
  0::bigint, 'a role without grants can execute no objection function');
SELECT is(has_function_privilege('tap_o_patient', 'caredata.permitted(caredata.nhs_number, text)', 'EXECUTE'),
  false, 'a patient cannot ask permitted() about any NHS number');

SELECT * FROM finish();
ROLLBACK;
