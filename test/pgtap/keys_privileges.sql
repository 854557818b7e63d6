-- test/pgtap/keys_privileges.sql: who may compute pseudonyms and manage
-- domains, tried as every wrong role (docs/sql-reference.md "Roles", docs/security.md).
-- A role that can call a keyed function on values of its choosing could
-- tabulate every NHS number and reverse every pseudonym.
BEGIN;
SELECT plan(54);

CREATE ROLE tap_recipient NOLOGIN;            -- e.g. a research team or BI login
CREATE ROLE tap_analyst NOLOGIN IN ROLE caredata_analyst;
CREATE ROLE tap_linker NOLOGIN IN ROLE caredata_linker;
CREATE ROLE tap_admin NOLOGIN IN ROLE caredata_admin;
CREATE ROLE tap_reidentifier NOLOGIN IN ROLE caredata_reidentifier;
SELECT caredata.create_domain('tap_linkage', 'pgTAP linkage domain');

-- 1. keyed functions, tried directly by every role without the right
\i test/pgtap/include/try_as.psql

SELECT is(pg_temp.try_as(r, q), '42501', format('%s cannot run %s', r, q))
FROM unnest(ARRAY['tap_recipient', 'tap_analyst', 'tap_reidentifier']) r,
     unnest(ARRAY[
       $$SELECT caredata.pseudonymise('943 476 5919'::caredata.nhs_number, 'tap_linkage')$$,
       $$SELECT caredata.pseudonymise(9434765919::bigint, 'tap_linkage')$$,
       $$SELECT caredata.pseudonymise('943 476 5919'::text, 'tap_linkage')$$,
       $$SELECT caredata.pseudonymise_identifier(9434765919::bigint, 'tap_linkage')$$,
       $$SELECT caredata.pseudonymise_identifier('943 476 5919'::text, 'tap_linkage')$$,
       $$SELECT caredata.create_domain('x_by_wrong_role', 'x')$$,
       $$SELECT caredata.rotate_domain('tap_linkage')$$,
       $$SELECT caredata.retire_domain('tap_linkage')$$,
       $$SELECT * FROM caredata.domain$$,
       $$SELECT current_setting('caredata.key_file')$$]) q;

-- 2. the linker computes pseudonyms but does not manage domains
SELECT is(pg_temp.try_as('tap_linker', $$SELECT caredata.pseudonymise(9434765919::bigint, 'tap_linkage')$$),
  'allowed', 'the linker can pseudonymise');
SELECT is(pg_temp.try_as('tap_linker', $$SELECT caredata.pseudonymise_identifier('MRN-0042', 'tap_linkage')$$),
  'allowed', 'the linker can pseudonymise another identifier');
SELECT is(pg_temp.try_as('tap_linker', $$SELECT caredata.rotate_domain('tap_linkage')$$),
  '42501', 'the linker cannot rotate a domain');
SELECT is(pg_temp.try_as('tap_linker', $$SELECT caredata.key_file_status()$$),
  '42501', 'the linker cannot probe the key file');
-- 3. the admin manages domains
SELECT is(pg_temp.try_as('tap_admin', $$SELECT caredata.create_domain('tap_recipient_a', 'recipient A')$$),
  'allowed', 'the admin can create a domain');
SELECT is(pg_temp.try_as('tap_admin', $$SELECT caredata.rotate_domain('tap_recipient_a')$$),
  'allowed', 'the admin can rotate a domain');
SELECT is(pg_temp.try_as('tap_admin', $$SELECT caredata.key_file_status()$$),
  'allowed', 'the admin can check the key file status');

-- 4. nothing else in caredata is a way round: every function a role without
-- grants may execute is on this list, and none of them is keyed
SELECT is(
  (SELECT array_agg(DISTINCT p.proname::text COLLATE "C" ORDER BY p.proname::text COLLATE "C")
   FROM pg_proc p
   WHERE p.pronamespace = 'caredata'::regnamespace
     AND has_function_privilege('tap_recipient', p.oid, 'EXECUTE')
     AND p.proname NOT LIKE 'nhs\_number\_%' AND p.proname NOT LIKE 'pseudonym\_%'),
  ARRAY['_funnel', '_funnel_add', '_funnel_combine', '_funnel_final', '_funnel_svg', '_funnel_z', '_person_set_add', '_person_set_safe_count', '_person_set_safe_text', '_person_set_union',
        '_person_values_add', '_person_values_any', '_person_values_combine',
        '_person_values_safe_avg', '_person_values_safe_rate', '_person_values_safe_sum', '_query_columns', '_sdc_audit', '_sdc_protect', '_sdc_table', '_svg_lines', '_svg_text', '_svg_ticks',
        'address_house_number', 'age_band', 'age_band_from', 'age_band_label', 'band', 'compare_damerau_levenshtein', 'compare_date', 'compare_exact',
        'compare_jaro_winkler', 'compare_name', 'compare_nhs_number', 'compare_postcode', 'compare_sex',
        'compare_token_overlap',
        'damerau_levenshtein', 'default_purposes', 'dob_is_valid', 'funnel', 'funnel_fit', 'funnel_limit', 'funnel_svg',
        'indirect_standardise', 'jaro_winkler', 'label_of', 'name_phonetic', 'nhs_number', 'normalise_postcode',
        'person_set_agg', 'person_set_in', 'person_set_out', 'person_set_recv', 'person_set_send',
        'person_values_in', 'person_values_out', 'person_values_recv', 'person_values_send',
        'postcode_area', 'postcode_district', 'postcode_sector', 'preloaded', 'require_preload',
        'safe_avg', 'safe_count', 'safe_count_text', 'safe_rate', 'safe_sum', 'sdc_apply', 'sdc_audit', 'sdc_display', 'sdc_policy_in_force',
        'sdc_protect', 'sdc_table_bounds', 'sdc_table_suppress',
        'standardise_address', 'standardise_dob', 'standardise_name', 'standardise_postcode_any', 'standardise_sex',
        'try_nhs_number', 'try_normalise_postcode', 'try_postcode_area',
        'try_postcode_district', 'try_postcode_sector',
        'try_standardise_dob', 'try_standardise_sex'],
  'a recipient can execute only the unkeyed standardisers (band(), age_band_label() and age_band_from() included, which published views call as their reader), the code labels (label_of), linkage comparators, type support, the purpose table of objection kinds, the safe aggregates, the funnel plot functions and the preload check (no key)');
SELECT is(
  (SELECT coalesce(array_agg(p.oid::regprocedure::text ORDER BY 1), '{}')
   FROM pg_proc p
   WHERE p.pronamespace = 'caredata'::regnamespace AND p.prosecdef
     AND has_function_privilege('tap_recipient', p.oid, 'EXECUTE')),
  '{}'::text[],
  'no SECURITY DEFINER function is open to all');
SELECT is(
  (SELECT count(*) FROM pg_proc p
   WHERE p.pronamespace = 'caredata'::regnamespace AND p.prosecdef
     AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)),
  0::bigint, 'every SECURITY DEFINER function pins search_path');

-- 5. a view does not lend its owner's EXECUTE right: a recipient reading a
-- view that calls pseudonymise is refused; a materialized result is the way
CREATE TABLE public.tap_source (n caredata.nhs_number);
INSERT INTO public.tap_source VALUES ('943 476 5919');
GRANT SELECT ON public.tap_source TO tap_linker;
SET LOCAL ROLE tap_linker;
CREATE TEMP VIEW tap_live AS SELECT caredata.pseudonymise(n, 'tap_linkage') AS p FROM public.tap_source;
RESET ROLE;
GRANT SELECT ON tap_live TO tap_recipient;
SELECT is(pg_temp.try_as('tap_recipient', 'SELECT * FROM tap_live'), '42501',
  'a recipient cannot compute pseudonyms through a view that calls pseudonymise');
SELECT is(pg_temp.try_as('tap_recipient', $$SELECT caredata.pseudonym_domain('1.1.AAAAAAAAAAAAAAAAAAAAAA')$$),
  '42501', 'a recipient cannot list domain names with made-up pseudonyms');

-- 6. the setting is superuser-only
SELECT is(pg_temp.try_as('tap_admin', $$SHOW caredata.key_file$$), '42501',
  'even the admin cannot read caredata.key_file');
SELECT is((SELECT context FROM pg_settings WHERE name = 'caredata.key_file'), 'sighup',
  'caredata.key_file is reloadable on SIGHUP, not settable per session');


-- 7. a key version's scheme (issue 28): no role but a superuser may change
-- one (an old version made to compute AES tokens, or a new one HMAC, would
-- change every pseudonym of it), nor make AES run another way
SELECT is(pg_temp.try_as(r, $$UPDATE caredata.domain_key SET scheme = 'hmac-sha256'$$), '42501',
          format('%s cannot change a key version''s scheme', r))
FROM unnest(ARRAY['tap_recipient', 'tap_analyst', 'tap_linker', 'tap_admin', 'tap_reidentifier']) r;
SELECT is(pg_temp.try_as(r, $$SET caredata.aes_instructions = off$$), '42501',
          format('%s cannot set caredata.aes_instructions', r))
FROM unnest(ARRAY['tap_recipient', 'tap_analyst', 'tap_linker', 'tap_admin', 'tap_reidentifier']) r;

SELECT * FROM finish();
ROLLBACK;
