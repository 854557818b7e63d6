-- test/pgtap/publication_recipients.sql: issue 22, section 10 - publish()
-- and its recipients.  A publication spec never releases a direct
-- identifier (by name, type, linkage declaration or content, by publish()
-- or the catalog); a role that holds identifiers by any membership, a
-- superuser, a BYPASSRLS role is never a recipient, at publication, at
-- republication and when reading; publish() leaves the recipient's
-- search_path alone; a security_invoker source is refused in every
-- spelling PostgreSQL accepts; and another recipient reads nothing from a
-- published view's definition or comment about whom it is for.
BEGIN;
SELECT plan(87);
SET LOCAL client_min_messages = warning;

CREATE ROLE tap_r_admin NOLOGIN IN ROLE caredata_admin;       -- the publisher
CREATE ROLE tap_r_ok NOLOGIN;                                  -- a recipient
CREATE ROLE tap_r_other NOLOGIN;                               -- another recipient
-- roles that hold identifiers, however they hold them
CREATE ROLE tap_r_linker NOLOGIN IN ROLE caredata_linker;                 -- directly
CREATE ROLE tap_r_team NOLOGIN IN ROLE caredata_linker;
CREATE ROLE tap_r_via_team NOLOGIN IN ROLE tap_r_team;                    -- through a team
CREATE ROLE tap_r_layer1 NOLOGIN IN ROLE caredata_admin;
CREATE ROLE tap_r_layer2 NOLOGIN IN ROLE tap_r_layer1;
CREATE ROLE tap_r_deep NOLOGIN IN ROLE tap_r_layer2;                      -- two roles away
CREATE ROLE tap_r_noinherit NOLOGIN NOINHERIT IN ROLE caredata_reidentifier;  -- without INHERIT
CREATE ROLE tap_r_patient NOLOGIN IN ROLE caredata_patient;
CREATE ROLE tap_r_bypass NOLOGIN BYPASSRLS;
CREATE ROLE tap_r_readall NOLOGIN IN ROLE pg_read_all_data;
CREATE ROLE tap_r_super NOLOGIN SUPERUSER;
\i test/pgtap/include/try_as.psql

CREATE TABLE public.tap_r_src (
  record_id bigint, nhs_number text, dob date, postcode text, forename text, surname text, home_address text,
  phone text, email text, mother_nhs_no text, other_number caredata.nhs_number, area text, ref text, born date, pc text,
  provider text, postcode_district text, birth_weight integer, year_of_birth integer);
INSERT INTO public.tap_r_src
SELECT g, n::text, date '1960-01-01' + (g % 20000)::int, 'LS1 ' || (g % 9) || 'AB', 'Ann', 'Smith', '1 High St',
       '0113 496 0000', 'a@example.org', n::text, n, 'SW1A ' || (g % 9) || 'AA', n::text, date '1950-01-01' + (g % 9000)::int,
       'M1 ' || (g % 9) || 'AE', 'P' || (g % 3), 'LS1', 3000 + g % 900, 1960 + g % 40
  FROM generate_series(9434765900, 9434766400) g, caredata.try_nhs_number(g::text) n
 WHERE n IS NOT NULL;
GRANT SELECT ON public.tap_r_src TO caredata_admin;
SELECT caredata.create_domain('tap_r_secret_dom', 'pgTAP recipients domain');
SELECT caredata.refresh_pseudonyms('tap_r_secret_dom', 'public.tap_r_src');
-- columns with innocent names that linkage declares to be a date of birth and a postcode
SELECT caredata.link_add_source('tap_r_link', 'public.tap_r_src', 'record_id', 'nhs_number', 'born', NULL, 'pc');

-- (identifiers are under test here, not linkability: sql/publication_kanon.sql)
CREATE FUNCTION pg_temp.pub(name text, cols text, recipient text) RETURNS text LANGUAGE sql AS $$
  SELECT format($q$SELECT caredata.publish(%L, 'public.tap_r_src', '{"domain": "tap_r_secret_dom", "purpose": "research", "dataset": "tap_r_secret_study", "linkability_override": "test: identifiers under test", "columns": %s}', %L)$q$,
                name, cols, recipient)
$$;

-- 1. direct identifiers are refused in a spec, by publish() (17)
SELECT is(pg_temp.try_as('tap_r_admin', pg_temp.pub('tap_r_x', format('{"%s": "%s"}', c, t), 'tap_r_ok')), '42501',
          format('%s as %s is refused', c, t))
FROM (VALUES ('dob', 'keep'), ('postcode', 'keep'), ('forename', 'keep'), ('surname', 'keep'), ('surname', 'district'),
             ('home_address', 'keep'), ('phone', 'keep'), ('email', 'keep'), ('mother_nhs_no', 'keep'), ('other_number', 'keep'),
             ('born', 'keep'), ('pc', 'keep'), ('dob', 'district'), ('postcode', 'age_band'),
             ('area', 'keep'), ('ref', 'keep')) v(c, t);
SELECT is(to_regclass('published.tap_r_x'), NULL, 'and no view was made');
-- generalised, or not identifiers at all, they are published (10)
SELECT is(pg_temp.try_as('tap_r_admin', pg_temp.pub('tap_r_' || i, format('{"%s": "%s"}', c, t), 'tap_r_ok')), 'allowed',
          format('%s as %s is published', c, t))
FROM (VALUES (1, 'dob', 'age_band'), (2, 'dob', 'year_of_birth'), (3, 'dob', 'month'), (4, 'postcode', 'district'),
             (5, 'postcode', 'sector'), (6, 'born', 'year_of_birth'), (7, 'provider', 'keep'), (8, 'postcode_district', 'keep'),
             (9, 'birth_weight', 'keep'), (10, 'year_of_birth', 'keep')) v(i, c, t);
-- by the catalog route too (3)
SELECT is(pg_temp.try_as('tap_r_admin', $$INSERT INTO caredata.publication (name, recipient, source, spec) VALUES ('tap_r_cat', 'tap_r_ok', 'public.tap_r_src', '{"domain": "tap_r_secret_dom", "purpose": "research", "nhs_column": "nhs_number", "columns": {"dob": "keep"}}')$$),
  '42501', 'a catalog row keeping the date of birth is refused');
SELECT is(pg_temp.try_as('tap_r_admin', $$INSERT INTO caredata.publication (name, recipient, source, spec) VALUES ('tap_r_cat', 'tap_r_ok', 'public.tap_r_src', '{"domain": "tap_r_secret_dom", "purpose": "research", "nhs_column": "nhs_number", "columns": {"area": "keep"}}')$$),
  'allowed', 'a catalog row keeping a column of full postcodes under another name passes the row check');
SELECT is(pg_temp.try_as('tap_r_admin', $$SELECT caredata._publication_view('tap_r_cat')$$), '42501', 'but no view is made from it');

-- 2. recipients: refused by any membership of a role that holds
-- identifiers, as superusers and BYPASSRLS roles are (12 + 2)
SELECT is(pg_temp.try_as('tap_r_admin', pg_temp.pub('tap_r_x', '{"provider": "keep"}', r)), '22023', format('%s is not a recipient', r))
FROM unnest(ARRAY['tap_r_linker', 'tap_r_team', 'tap_r_via_team', 'tap_r_deep', 'tap_r_noinherit', 'tap_r_patient',
                  'tap_r_bypass', 'tap_r_readall', 'tap_r_super', 'postgres', 'caredata_reidentifier', 'caredata_linker']) r;
SELECT is(pg_temp.try_as('tap_r_admin', pg_temp.pub('tap_r_view', '{"provider": "keep", "dob": "age_band"}', 'tap_r_ok')), 'allowed', 'an ordinary role is');
SELECT is(pg_temp.try_as('tap_r_ok', 'SELECT count(*) FROM published.tap_r_view'), 'allowed', 'and reads its view');
-- a recipient that joins such a role later is refused when reading, and at republication (6)
GRANT tap_r_team TO tap_r_ok;
SELECT is(pg_temp.try_as('tap_r_ok', 'SELECT count(*) FROM published.tap_r_view'), '42501', 'a recipient that became a linker reads nothing');
SELECT is(pg_temp.try_as('tap_r_ok', 'SELECT * FROM published.tap_r_view LIMIT 1'), '42501', 'not one row');
SELECT is(pg_temp.try_as('tap_r_admin', $$SELECT caredata.republish('tap_r_view')$$), '22023', 'and the view is not republished for it');
REVOKE tap_r_team FROM tap_r_ok;
SELECT is(pg_temp.try_as('tap_r_ok', 'SELECT count(*) FROM published.tap_r_view'), 'allowed', 'once revoked, it reads again');
-- as does a login that reads through the recipient's role while holding identifiers
CREATE ROLE tap_r_bob NOLOGIN IN ROLE tap_r_ok, caredata_reidentifier;
CREATE ROLE tap_r_carol NOLOGIN IN ROLE tap_r_ok;
SELECT is(pg_temp.try_as('tap_r_bob', 'SELECT count(*) FROM published.tap_r_view'), '42501', 'a re-identifier in the recipient''s role reads nothing');
SELECT is(pg_temp.try_as('tap_r_carol', 'SELECT count(*) FROM published.tap_r_view'), 'allowed', 'an ordinary member of it reads');

-- 3. search_path: publish() leaves the recipient's settings alone (3)
ALTER ROLE tap_r_other SET search_path = tap_r_mine;
SELECT is(pg_temp.try_as('tap_r_admin', pg_temp.pub('tap_r_sp', '{"provider": "keep"}', 'tap_r_other')), 'allowed', 'publishing to a role with its own search_path');
SELECT is((SELECT array_agg(setdatabase::text || ':' || array_to_string(setconfig, ',')) FROM pg_db_role_setting WHERE setrole = 'tap_r_other'::regrole),
          ARRAY['0:search_path=tap_r_mine'], 'keeps it, and adds none');
SELECT is((SELECT count(*) FROM pg_db_role_setting WHERE setrole = 'tap_r_ok'::regrole)::int, 0, 'a recipient without one is given none');
ALTER ROLE tap_r_other RESET search_path;

-- 4. security_invoker, in every spelling PostgreSQL accepts (2 + 11 + 1 + 11 + 4)
CREATE SCHEMA tap_r_own AUTHORIZATION tap_r_admin;
SELECT is(pg_temp.try_as('tap_r_admin', $$CREATE VIEW tap_r_own.v AS SELECT nhs_number, provider FROM public.tap_r_src$$), 'allowed', 'the admin makes a plain view');
SELECT is(pg_temp.try_as('tap_r_admin', $$SELECT caredata.publish('tap_r_own_v', 'tap_r_own.v', '{"domain": "tap_r_secret_dom", "purpose": "research", "columns": {"provider": "keep"}}', 'tap_r_other')$$),
  'allowed', 'and publishes it');
SELECT is(pg_temp.try_as('tap_r_admin', format('ALTER VIEW tap_r_own.v SET (security_invoker = %s)', s)), '42809',
          format('the published view cannot become security_invoker = %s', s))
FROM unnest(ARRAY['true', 'TRUE', 'on', 'ON', '1', 'yes', '''Yes''', '''YES''', '''t''', '''y''', '''tru''']) s;
SELECT is(pg_temp.try_as('tap_r_admin', 'ALTER VIEW tap_r_own.v SET (security_invoker)'), '42809', 'nor security_invoker with no value');
SELECT is(pg_temp.try_as('tap_r_admin', format('CREATE VIEW tap_r_own.%I WITH (security_invoker = %s) AS SELECT nhs_number, provider FROM public.tap_r_src; '
                                               'SELECT caredata.publish(%L, %L, ''{"domain": "tap_r_secret_dom", "purpose": "research", "columns": {"provider": "keep"}}'', ''tap_r_other'')',
                                               'inv_' || i, s, 'tap_r_inv_' || i, 'tap_r_own.inv_' || i)),
          '42809', format('a view made security_invoker = %s is not published', s))
FROM unnest(ARRAY['true', 'TRUE', 'on', 'ON', '1', 'yes', '''Yes''', '''YES''', '''t''', '''y''', '''tru''']) WITH ORDINALITY x(s, i);
SELECT is(pg_temp.try_as('tap_r_admin', format('ALTER VIEW tap_r_own.v SET (security_invoker = %s)', s)), 'allowed',
          format('security_invoker = %s stays allowed', s))
FROM unnest(ARRAY['false', 'off', '0', '''No''']) s;

-- 5. what other roles read of a published view: the definition and the
-- comment name neither the recipient, nor its domain, nor its dataset (5;
-- a row found divides by zero)
SELECT is(pg_temp.try_as('tap_r_other', $$SELECT 1 / (0 * length(definition)) FROM pg_catalog.pg_views WHERE schemaname = 'published' AND viewname = 'tap_r_view'
                                           AND (definition ~ 'tap_r_secret|tap_r_ok' OR NOT definition ~ 'tap_r_src')$$),
  'allowed', 'another recipient reads a view''s definition: the source, but no domain, dataset or recipient');
SELECT is(pg_temp.try_as('tap_r_other', $$SELECT 1 / (0 * length(d)) FROM pg_catalog.pg_get_viewdef('published.tap_r_view'::regclass) d WHERE d ~ 'tap_r_secret|tap_r_ok'$$),
  'allowed', 'nor through pg_get_viewdef');
SELECT is(pg_temp.try_as('tap_r_other', $$SELECT 1 / (0 * coalesce(length(d), 1)) FROM pg_catalog.obj_description('published.tap_r_view'::regclass, 'pg_class') d
                                           WHERE d ~ 'tap_r_secret|tap_r_ok|tap_r_src|research' OR d IS NULL$$),
  'allowed', 'its comment says what it is, and for whom not');
SELECT is((SELECT count(*) FROM published.tap_r_view)::int,
          (SELECT count(*) FROM public.tap_r_src WHERE caredata.permitted(caredata.try_nhs_number(nhs_number), 'research', now(), 'tap_r_secret_study'))::int,
          'the view still shows every permitted row, its domain and dataset read from the catalog');
SELECT is((SELECT count(*) FROM published.tap_r_view v LEFT JOIN caredata.pseudonym_map m ON m.domain = 'tap_r_secret_dom' AND m.pseudonym::text = v.person
            WHERE m.pseudonym IS NULL)::int, 0, 'each with its domain''s pseudonym');

SELECT * FROM finish();
ROLLBACK;
