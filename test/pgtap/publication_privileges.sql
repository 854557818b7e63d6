-- test/pgtap/publication_privileges.sql: every role against every object of
-- publication, audit and re-identification (docs/sql-reference.md "Roles"): a recipient
-- reads its own published view and nothing else; analysts and patients read
-- no identifiers; only the admin publishes; only the linker and the admin
-- store pseudonyms; nobody changes the audit log; only the re-identifier
-- re-identifies.
BEGIN;
SELECT plan(164);
SET LOCAL client_min_messages = warning;

CREATE ROLE tap_p_recipient NOLOGIN;          -- the publication's recipient
CREATE ROLE tap_p_other NOLOGIN;              -- another recipient's login
CREATE ROLE tap_p_analyst NOLOGIN IN ROLE caredata_analyst;
CREATE ROLE tap_p_patient NOLOGIN IN ROLE caredata_patient;
CREATE ROLE tap_p_linker NOLOGIN IN ROLE caredata_linker;
CREATE ROLE tap_p_admin NOLOGIN IN ROLE caredata_admin;
CREATE ROLE tap_p_reid NOLOGIN IN ROLE caredata_reidentifier;
\i test/pgtap/include/try_as.psql

-- a source every caredata role but the recipients may read, and one only
-- the superuser may read
CREATE TABLE public.tap_p_src (nhs_number text, provider text, dob date);
INSERT INTO public.tap_p_src
SELECT n::text, 'P' || (g % 3), date '1960-01-01' + (g % 20000)::int
  FROM generate_series(9434765900, 9434766400) g, caredata.try_nhs_number(g::text) n
 WHERE n IS NOT NULL;
GRANT SELECT ON public.tap_p_src TO caredata_admin, caredata_linker, caredata_analyst;
CREATE TABLE public.tap_p_secret (nhs_number text, note text);
INSERT INTO public.tap_p_secret SELECT nhs_number, 'secret' FROM public.tap_p_src;
SELECT caredata.create_domain('tap_p_dom', 'pgTAP publication domain');
SELECT caredata.refresh_pseudonyms('tap_p_dom', 'public.tap_p_src');
SELECT caredata.refresh_pseudonyms('tap_p_dom', 'public.tap_p_secret');
SELECT caredata.publish('tap_p_view', 'public.tap_p_src',
  '{"domain": "tap_p_dom", "purpose": "research", "columns": {"provider": "keep", "dob": "year_of_birth"}}', 'tap_p_recipient');
SELECT caredata.record_objection(caredata.try_nhs_number(nhs_number), 'national_data_opt_out', 'pgTAP')
  FROM public.tap_p_src ORDER BY nhs_number LIMIT 1;

-- 1. the published view: its recipient reads it; nobody else does, and the
-- recipient only reads (7 roles x 1 read + 6 writes/changes)
SELECT is(pg_temp.try_as('tap_p_recipient', 'SELECT count(*) FROM published.tap_p_view'), 'allowed', 'the recipient reads its view');
SELECT is(pg_temp.try_as(r, 'SELECT count(*) FROM published.tap_p_view'), '42501', format('%s cannot read another''s view', r))
FROM unnest(ARRAY['tap_p_other', 'tap_p_analyst', 'tap_p_patient', 'tap_p_linker', 'tap_p_admin', 'tap_p_reid']) r;
-- (writes: no grant, and the view is not updatable, which PostgreSQL says first)
SELECT is(pg_temp.try_as('tap_p_recipient', q), '55000', format('the recipient cannot run %s', q))
FROM unnest(ARRAY[$$UPDATE published.tap_p_view SET provider = 'x'$$,
                  $$DELETE FROM published.tap_p_view$$,
                  $$INSERT INTO published.tap_p_view (provider) VALUES ('x')$$]) q;
SELECT is(pg_temp.try_as('tap_p_recipient', q), '42501', format('the recipient cannot run %s', q))
FROM unnest(ARRAY[$$ALTER VIEW published.tap_p_view SET (security_barrier = false)$$,
                  $$DROP VIEW published.tap_p_view$$,
                  $$CREATE VIEW published.tap_p_mine AS SELECT 1 AS one$$]) q;

-- 2. identifiers, keys and registers stay closed to recipients, analysts and
-- patients (3 roles x 9)
SELECT is(pg_temp.try_as(r, q), '42501', format('%s cannot run %s', r, q))
FROM unnest(ARRAY['tap_p_recipient', 'tap_p_analyst', 'tap_p_patient']) r,
     unnest(ARRAY['SELECT * FROM caredata.pseudonym_map',
                  'SELECT * FROM caredata.publication',
                  'SELECT * FROM caredata.audit_log',
                  'SELECT * FROM caredata.audit_head',
                  'SELECT * FROM caredata.objection',
                  'SELECT * FROM public.tap_p_secret',
                  $$SELECT caredata.pseudonymise('943 476 5919'::caredata.nhs_number, 'tap_p_dom')$$,
                  $$SELECT caredata.refresh_pseudonyms('tap_p_dom', 'public.tap_p_src')$$,
                  $$SELECT caredata.audit_append('forged', 'x')$$]) q;
SELECT is(pg_temp.try_as('tap_p_recipient', 'SELECT * FROM public.tap_p_src'), '42501', 'the recipient cannot read the raw source');

-- 3. publishing: the admin only (6 roles x 5)
SELECT is(pg_temp.try_as(r, q), '42501', format('%s cannot run %s', r, q))
FROM unnest(ARRAY['tap_p_recipient', 'tap_p_other', 'tap_p_analyst', 'tap_p_patient', 'tap_p_linker', 'tap_p_reid']) r,
     unnest(ARRAY[$$SELECT caredata.publish('tap_p_x', 'public.tap_p_src', '{"domain": "tap_p_dom", "purpose": "research", "columns": {}}', 'tap_p_other')$$,
                  $$SELECT caredata.republish('tap_p_view')$$,
                  $$SELECT caredata.unpublish('tap_p_view')$$,
                  $$SELECT * FROM caredata.k_anonymity('published.tap_p_view', ARRAY['provider'])$$,
                  $$SELECT caredata._publication_view('tap_p_view')$$]) q;
SELECT is(pg_temp.try_as('tap_p_admin', $$SELECT caredata.publish('tap_p_adm', 'public.tap_p_src', '{"domain": "tap_p_dom", "purpose": "research", "columns": {"provider": "keep"}}', 'tap_p_other')$$),
  'allowed', 'the admin publishes what it may read');
SELECT is(pg_temp.try_as('tap_p_other', 'SELECT count(*) FROM published.tap_p_adm'), 'allowed', 'and its recipient reads it');
SELECT is(pg_temp.try_as('tap_p_admin', $$SELECT caredata.republish('tap_p_adm')$$), 'allowed', 'the admin republishes');
SELECT is(pg_temp.try_as('tap_p_admin', $$SELECT * FROM caredata.k_anonymity('published.tap_p_view', ARRAY['provider'])$$),
  '42501', 'k_anonymity reads a view with its caller''s rights');
SELECT is(pg_temp.try_as('tap_p_admin', $$SELECT caredata.unpublish('tap_p_adm')$$), 'allowed', 'the admin unpublishes');
SELECT is(pg_temp.try_as('tap_p_other', 'SELECT count(*) FROM published.tap_p_adm'), '42P01', 'and the view is gone');

-- 4. the admin cannot publish what it may not read, by any route: the
-- function, the catalog, or the internal view-maker (which reads the catalog)
SELECT is(pg_temp.try_as('tap_p_admin', $$SELECT caredata.publish('tap_p_s', 'public.tap_p_secret', '{"domain": "tap_p_dom", "purpose": "research", "columns": {"note": "keep"}}', 'tap_p_other')$$),
  '42501', 'the admin cannot publish a table it may not read');
SELECT is(pg_temp.try_as('tap_p_admin', $$INSERT INTO caredata.publication (name, recipient, source, spec) VALUES ('tap_p_s', 'tap_p_other', 'public.tap_p_secret', '{"domain": "tap_p_dom", "purpose": "research", "nhs_column": "nhs_number", "columns": {"note": "keep"}}')$$),
  '42501', 'nor insert it into the catalog');
SELECT is(pg_temp.try_as('tap_p_admin', $$UPDATE caredata.publication SET source = 'public.tap_p_secret' WHERE name = 'tap_p_view'$$),
  '42501', 'nor point a publication at it');
SELECT is(pg_temp.try_as('tap_p_admin', $$UPDATE caredata.publication SET spec = spec || '{"columns": {"nhs_number": "keep"}}' WHERE name = 'tap_p_view'$$),
  '42501', 'nor change what a publication shows');
SELECT is(pg_temp.try_as('tap_p_admin', $$UPDATE caredata.publication SET recipient = 'tap_p_other' WHERE name = 'tap_p_view'$$),
  '42501', 'nor whom it is for');
SELECT is(pg_temp.try_as('tap_p_admin', $$DELETE FROM caredata.publication WHERE name = 'tap_p_view'$$),
  '42501', 'nor delete its record behind unpublish()');
SELECT is(pg_temp.try_as('tap_p_admin', $$SELECT caredata._publication_view('tap_p_s')$$),
  '42704', 'the internal view-maker only remakes what the catalog holds');
SELECT is(pg_temp.try_as('tap_p_admin', $$SELECT caredata.publish('tap_p_su', 'public.tap_p_src', '{"domain": "tap_p_dom", "purpose": "research", "columns": {}}', 'postgres')$$),
  '22023', 'a superuser is not a recipient');
SELECT is(pg_temp.try_as('tap_p_admin', $$SELECT caredata.publish('tap_p_su', 'public.tap_p_src', '{"domain": "tap_p_dom", "purpose": "research", "columns": {}}', 'caredata_linker')$$),
  '22023', 'nor a caredata role that holds identifiers');

-- 4b. nor through a source it owns: a published view reads as the
-- extension's owner, so its source must read with its own owner's rights,
-- at publication and after any later DDL
CREATE SCHEMA tap_p_own AUTHORIZATION tap_p_admin;
SELECT is(pg_temp.try_as('tap_p_admin', $$CREATE VIEW tap_p_own.inv WITH (security_invoker) AS SELECT nhs_number, note FROM public.tap_p_secret$$),
  'allowed', 'the admin makes a security_invoker view over a table it may not read');
SELECT is(pg_temp.try_as('tap_p_admin', $$SELECT caredata.publish('tap_p_inv', 'tap_p_own.inv', '{"domain": "tap_p_dom", "purpose": "research", "columns": {"note": "keep"}}', 'tap_p_other')$$),
  '42809', 'which cannot be published');
SELECT is(pg_temp.try_as('tap_p_admin', $$CREATE TABLE tap_p_own.t AS SELECT nhs_number, provider AS note FROM public.tap_p_src$$), 'allowed', 'the admin makes a table');
SELECT is(pg_temp.try_as('tap_p_admin', $$SELECT caredata.publish('tap_p_own_t', 'tap_p_own.t', '{"domain": "tap_p_dom", "purpose": "research", "columns": {"note": "keep"}}', 'tap_p_other')$$),
  'allowed', 'and publishes it');
SELECT is(pg_temp.try_as('tap_p_admin', $$TRUNCATE tap_p_own.t; CREATE RULE "_RETURN" AS ON SELECT TO tap_p_own.t DO INSTEAD SELECT nhs_number, note FROM public.tap_p_secret$$),
  CASE WHEN current_setting('server_version_num')::int >= 160000 THEN '42809' ELSE 'allowed' END,
  'turning the published table into a view (PostgreSQL 15 allows it for an empty table; 16 and later refuse)');
SELECT is(pg_temp.try_as('tap_p_other', 'SELECT count(*) FROM published.tap_p_own_t'),
  CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 'allowed' ELSE '42501' END,
  'on 15 that makes a plain view, reading with its owner''s rights, which is refused (16 and later: still the table)');
SELECT is(pg_temp.try_as('tap_p_admin', $$ALTER VIEW tap_p_own.t SET (security_invoker = true)$$),
  '42809', 'which cannot become security_invoker');
SELECT is(pg_temp.try_as('tap_p_admin', $$CREATE VIEW tap_p_own.v AS SELECT nhs_number, provider AS note FROM public.tap_p_src$$), 'allowed', 'the admin makes a plain view');
SELECT is(pg_temp.try_as('tap_p_admin', $$SELECT caredata.publish('tap_p_own_v', 'tap_p_own.v', '{"domain": "tap_p_dom", "purpose": "research", "columns": {"note": "keep"}}', 'tap_p_other')$$),
  'allowed', 'and publishes it');
SELECT is(pg_temp.try_as('tap_p_admin', $$ALTER VIEW tap_p_own.v SET (security_invoker = true)$$),
  '42809', 'but cannot make the published view security_invoker');
SELECT is(pg_temp.try_as('tap_p_admin', $$CREATE OR REPLACE VIEW tap_p_own.v WITH (security_invoker) AS SELECT nhs_number, note FROM public.tap_p_secret$$),
  '42809', 'nor replace it by one');
SELECT is(pg_temp.try_as('tap_p_admin', $$CREATE OR REPLACE VIEW tap_p_own.v AS SELECT nhs_number, note FROM public.tap_p_secret$$),
  'allowed', 'a plain view may change: it reads with its owner''s rights');
SELECT is(pg_temp.try_as('tap_p_other', 'SELECT count(*) FROM published.tap_p_own_v'), '42501', 'so what it may not read stays refused');

-- 5. pseudonyms are stored by the linker and the admin only (2 roles x 2),
-- and read by no recipient (covered in 2)
SELECT is(pg_temp.try_as(r, q), 'allowed', format('%s may run %s', r, q))
FROM unnest(ARRAY['tap_p_linker', 'tap_p_admin']) r,
     unnest(ARRAY[$$SELECT caredata.refresh_pseudonyms('tap_p_dom', 'public.tap_p_src')$$,
                  'SELECT count(*) FROM caredata.pseudonym_map']) q;
SELECT is(pg_temp.try_as('tap_p_linker', $$SELECT caredata.refresh_pseudonyms('tap_p_dom', 'public.tap_p_secret')$$),
  '42501', 'refresh_pseudonyms reads its source with the caller''s rights');

-- 6. the audit log: read by the admin only; appended to by the privileged
-- roles; changed by nobody, the owner included (6 roles x 4 writes)
SELECT is(pg_temp.try_as('tap_p_admin', 'SELECT count(*) FROM caredata.audit_log'), 'allowed', 'the admin reads the audit log');
SELECT is(pg_temp.try_as(r, 'SELECT count(*) FROM caredata.audit_log'), '42501', format('%s cannot read the audit log', r))
FROM unnest(ARRAY['tap_p_linker', 'tap_p_reid']) r;
SELECT is(pg_temp.try_as(r, $$SELECT caredata.audit_append('tap.note', 'pgTAP')$$), 'allowed', format('%s may append to the audit log', r))
FROM unnest(ARRAY['tap_p_admin', 'tap_p_linker', 'tap_p_reid']) r;
SELECT is(pg_temp.try_as(r, q), '42501', format('%s cannot run %s', r, q))
FROM unnest(ARRAY['tap_p_recipient', 'tap_p_analyst', 'tap_p_patient', 'tap_p_linker', 'tap_p_admin', 'tap_p_reid']) r,
     unnest(ARRAY[$$UPDATE caredata.audit_log SET justification = 'x'$$,
                  'DELETE FROM caredata.audit_log',
                  $$INSERT INTO caredata.audit_log SELECT * FROM caredata.audit_log LIMIT 1$$,
                  'UPDATE caredata.audit_head SET last_id = 0']) q;
SELECT is(pg_temp.try_as(r, 'SELECT caredata.audit_verify()'), '42501', format('%s cannot run audit_verify', r))
FROM unnest(ARRAY['tap_p_recipient', 'tap_p_analyst', 'tap_p_linker', 'tap_p_reid']) r;
SELECT is(pg_temp.try_as(r, 'SET session_replication_role = replica'), '42501', format('%s cannot switch off the log''s triggers', r))
FROM unnest(ARRAY['tap_p_admin', 'tap_p_linker']) r;
SELECT throws_ok($$UPDATE caredata.audit_log SET justification = 'edited'$$, NULL, 'the owner cannot edit the log through SQL either');
SELECT throws_ok('DELETE FROM caredata.audit_log', NULL, 'nor delete from it');
SELECT throws_ok('TRUNCATE caredata.audit_log', NULL, 'nor truncate it');
SELECT ok(caredata.audit_verify(), 'the chain is intact after every refused attempt');
SELECT is((SELECT count(*) FROM caredata.audit_log WHERE action = 'tap.note')::int, 3, 'each append left one entry');

-- 7. re-identification: the re-identifier only, under an approval, with a justification
SELECT is(caredata.register_approval('TAP 1', 'section_251', '26/CAG/TAP1', '{research}', '{tap_p_reid}',
                                     now() - interval '1 day', now() + interval '1 day'), 'TAP 1', 'an approval for the re-identifier');
SELECT is(pg_temp.try_as(r, $$SELECT caredata.reidentify(pseudonym, 'TAP 1', 'research', 'pgTAP: checking who may re-identify') FROM caredata.pseudonym_map LIMIT 1$$),
  '42501', format('%s cannot re-identify', r))
FROM unnest(ARRAY['tap_p_recipient', 'tap_p_analyst', 'tap_p_patient', 'tap_p_linker', 'tap_p_admin']) r;
CREATE TEMP TABLE tap_p_one ON COMMIT DROP AS SELECT pseudonym FROM caredata.pseudonym_map WHERE domain = 'tap_p_dom' LIMIT 1;
GRANT SELECT ON tap_p_one TO tap_p_reid, tap_p_recipient;
SELECT is(pg_temp.try_as('tap_p_recipient', $$SELECT caredata.reidentify(pseudonym, 'TAP 1', 'research', 'pgTAP: checking who may re-identify') FROM tap_p_one$$),
  '42501', 'a recipient holding a pseudonym cannot re-identify it');
-- (this suite runs in one transaction that has written to the audit log: its
-- entry would be committed by a worker waiting for this transaction, so the
-- call is refused; answered calls are in sql/publication_reidentify.sql and
-- test/security/reidentify_committed.sh)
SELECT is(pg_temp.try_as('tap_p_reid', $$SELECT caredata.reidentify(pseudonym, 'TAP 1', 'research', 'pgTAP: checking who may re-identify') FROM tap_p_one$$),
  '55000', 'the re-identifier passes the grant, the approval and the justification, and is refused in a transaction that wrote to the audit log');
SELECT is(pg_temp.try_as('tap_p_reid', $$SELECT caredata.reidentify(pseudonym, 'TAP 0', 'research', 'pgTAP: under an approval not registered') FROM tap_p_one$$),
  '42501', 'but not under an approval that is not registered');
SELECT is(pg_temp.try_as('tap_p_reid', $$SELECT caredata.reidentify(pseudonym, 'TAP 1', 'research', '') FROM tap_p_one$$),
  '22023', 'but not without one');
SELECT is(pg_temp.try_as('tap_p_reid', $$SELECT caredata.reidentify(pseudonym, 'TAP 1', 'research', 'because') FROM tap_p_one$$),
  '22023', 'nor with a short one');
SELECT is(pg_temp.try_as('tap_p_reid', q), '42501', format('the re-identifier cannot run %s', q))
FROM unnest(ARRAY['SELECT * FROM caredata.pseudonym_map', 'SELECT count(*) FROM published.tap_p_view',
                  $$SELECT caredata.pseudonymise('943 476 5919'::caredata.nhs_number, 'tap_p_dom')$$,
                  'SELECT * FROM caredata.audit_log']) q;
SELECT is((SELECT count(*) FROM caredata.audit_log WHERE action = 'reidentify')::int, 0, 'no refused call was audited');

-- 8. what the recipient sees: no objector, the pseudonym as text
SELECT is((SELECT count(*) FROM published.tap_p_view)::int,
          (SELECT count(*) FROM public.tap_p_src WHERE caredata.permitted(caredata.try_nhs_number(nhs_number), 'research'))::int,
          'the view shows every permitted row');
SELECT ok((SELECT count(*) FROM public.tap_p_src)::int > (SELECT count(*) FROM published.tap_p_view)::int, 'and not the objector''s');
SELECT is((SELECT data_type FROM information_schema.columns WHERE table_schema = 'published' AND table_name = 'tap_p_view' AND column_name = 'person')::text,
          'text', 'the person column is plain text');

SELECT * FROM finish();
ROLLBACK;
