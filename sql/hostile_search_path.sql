-- sql/hostile_search_path.sql: no caller's search_path reaches code that
-- runs with other rights (issue 22, section 1).
--
-- mallory, an analyst, owns schema evil.  It holds operators for every type
-- pair caredata's code compares, functions shadowing the built-ins it
-- calls, and domains shadowing the types it casts to; each one records who
-- ran it (evil.trap) and tries to make mallory superuser.  With evil first
-- and pg_catalog after it on search_path, every role calls caredata's
-- entry points: protected scans, UPDATE/DELETE, COPY, the aggregates,
-- linkage, lookup, publication, re-identification, feeds, variation, the
-- audit.  A trap that ran as a role other than the caller is an escalation;
-- one that ran inside caredata's code as the caller means caredata's SQL
-- resolved a name through the caller's path.  Neither may happen.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
\set ECHO none
\i test/synthetic/generate.sql
\set ECHO all
SELECT count(*) > 0 AS generated FROM synth.generate(300, 11);
RESET client_min_messages;
SET search_path = public, caredata;

CREATE ROLE hostile_mallory LOGIN IN ROLE caredata_analyst;
CREATE ROLE hostile_admin NOLOGIN IN ROLE caredata_admin;
CREATE ROLE hostile_linker NOLOGIN IN ROLE caredata_linker;
CREATE ROLE hostile_reid NOLOGIN IN ROLE caredata_reidentifier;
CREATE ROLE hostile_patient NOLOGIN IN ROLE caredata_patient;
CREATE ROLE hostile_owner NOLOGIN IN ROLE caredata_admin;
CREATE ROLE hostile_recipient NOLOGIN;
CREATE ROLE hostile_nobody NOLOGIN;
CREATE SCHEMA evil AUTHORIZATION hostile_mallory;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
GRANT CREATE ON SCHEMA public TO hostile_owner, hostile_admin, hostile_linker;

-- the trap: who ran it, as whom, where
SET ROLE hostile_mallory;
CREATE TABLE evil.trap (acting text, actual text, what text, inside boolean, ctx text);
GRANT INSERT, SELECT ON evil.trap TO PUBLIC;
-- inside: called from within some function or SQL statement other than
-- evil's own (the callers' own statements give no such context line)
CREATE FUNCTION evil.fire(what text) RETURNS boolean LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $f$
DECLARE ctx text; inside boolean;
BEGIN
  GET DIAGNOSTICS ctx = PG_CONTEXT;
  SELECT coalesce(bool_or(NOT (l ~ '^PL/pgSQL function evil\.'
                               OR (l ~ '^SQL function "' AND EXISTS (
                                     SELECT 1 FROM pg_proc p WHERE p.pronamespace = 'evil'::regnamespace
                                        AND p.proname = substring(l FROM '^SQL function "([^"]+)"'))))), false)
    INTO inside FROM regexp_split_to_table(ctx, E'\n') l WHERE l <> '';
  INSERT INTO evil.trap VALUES (current_setting('hostile.acting', true), current_user, what, inside, ctx);
  BEGIN
    EXECUTE 'ALTER ROLE hostile_mallory SUPERUSER';
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  RETURN true;
END $f$;
GRANT EXECUTE ON FUNCTION evil.fire(text) TO PUBLIC;

-- operators: each gives the right answer (an attacker stays quiet), after
-- the trap; for every type pair whose pg_catalog (or caredata) operator
-- exists, the exact-match operator in evil wins over it
DO $do$
DECLARE
  types text[] := ARRAY['oid', 'regclass', 'regproc', 'regrole', 'regnamespace', 'name', 'text', 'int2', 'int4', 'int8',
                        'bool', '"char"', 'timestamptz', 'timestamp', 'date', 'jsonb', 'bytea', 'float8', 'numeric',
                        'interval', 'text[]', 'int8[]', 'oid[]', 'name[]', 'caredata.nhs_number', 'caredata.pseudonym'];
  -- comparisons for every pair; the others for the pairs they take
  tries text[] := ARRAY[]::text[];
  t text[]; l text; r text; op text; n integer := 0; made integer := 0;
BEGIN
  FOREACH l IN ARRAY types LOOP
    FOREACH r IN ARRAY types LOOP
      FOREACH op IN ARRAY ARRAY['=', '<>', '<', '>', '<=', '>='] LOOP
        tries := tries || ARRAY[ARRAY[op, l, r, 'boolean']];
      END LOOP;
    END LOOP;
  END LOOP;
  tries := tries || ARRAY[ARRAY['||', 'text', 'text', 'text'], ARRAY['||', 'text[]', 'text[]', 'text[]'],
                          ARRAY['||', 'text[]', 'text', 'text[]'], ARRAY['||', 'jsonb', 'jsonb', 'jsonb'],
                          ARRAY['->>', 'jsonb', 'text', 'text'], ARRAY['->>', 'jsonb', 'int4', 'text'],
                          ARRAY['->', 'jsonb', 'text', 'jsonb'], ARRAY['->', 'jsonb', 'int4', 'jsonb'],
                          ARRAY['#>>', 'jsonb', 'text[]', 'text'], ARRAY['?', 'jsonb', 'text', 'boolean'],
                          ARRAY['@>', 'jsonb', 'jsonb', 'boolean'], ARRAY['<@', 'jsonb', 'jsonb', 'boolean'],
                          ARRAY['@>', 'text[]', 'text[]', 'boolean'], ARRAY['<@', 'text[]', 'text[]', 'boolean'],
                          ARRAY['&&', 'text[]', 'text[]', 'boolean'], ARRAY['~~', 'text', 'text', 'boolean'],
                          ARRAY['~', 'text', 'text', 'boolean'], ARRAY['!~', 'text', 'text', 'boolean'],
                          ARRAY['-', 'timestamptz', 'interval', 'timestamptz'], ARRAY['+', 'timestamptz', 'interval', 'timestamptz'],
                          ARRAY['-', 'timestamptz', 'timestamptz', 'interval'], ARRAY['+', 'int4', 'int4', 'int4'],
                          ARRAY['-', 'int4', 'int4', 'int4'], ARRAY['+', 'int8', 'int8', 'int8'], ARRAY['*', 'float8', 'float8', 'float8'],
                          ARRAY['/', 'float8', 'float8', 'float8']];
  FOREACH t SLICE 1 IN ARRAY tries LOOP
    n := n + 1;
    BEGIN
      EXECUTE format('CREATE FUNCTION evil.op_%s(%s, %s) RETURNS %s LANGUAGE sql VOLATILE AS %L', n, t[2], t[3], t[4],
        format('SELECT CASE WHEN evil.fire(%L) THEN $1 OPERATOR(%s.%s) $2 END', format('%s(%s,%s)', t[1], t[2], t[3]),
               CASE WHEN t[2] LIKE 'caredata.%' OR t[3] LIKE 'caredata.%' THEN 'caredata' ELSE 'pg_catalog' END, t[1]));
      EXECUTE format('CREATE OPERATOR evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = evil.op_%s)', t[1], t[2], t[3], n);
      made := made + 1;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
  END LOOP;
  RAISE NOTICE 'hostile operators: %', CASE WHEN made > 300 THEN 'more than 300' ELSE made::text END;
END $do$;
-- the cross-type one of the report: oid = regclass
SELECT count(*) AS oid_regclass FROM pg_operator WHERE oprnamespace = 'evil'::regnamespace
   AND oprname = '=' AND oprleft = 'oid'::regtype AND oprright = 'regclass'::regtype;

-- functions shadowing the built-ins caredata calls (same argument types)
DO $do$
DECLARE
  f record; made integer := 0;
BEGIN
  FOR f IN
    SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args, p.pronargs,
           format_type(p.prorettype, NULL) AS ret, p.oid
      FROM pg_proc p
     WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f' AND NOT p.proretset
       AND p.provariadic = 0 AND NOT EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[]) t
                                             WHERE t IN ('internal'::regtype, 'anyelement'::regtype, 'anyarray'::regtype,
                                                         'anynonarray'::regtype, 'anycompatible'::regtype, '"any"'::regtype,
                                                         'anycompatiblearray'::regtype, 'cstring'::regtype))
       AND p.prorettype NOT IN ('internal'::regtype, 'anyelement'::regtype, 'anyarray'::regtype, 'void'::regtype,
                                'trigger'::regtype, 'event_trigger'::regtype, 'cstring'::regtype)
       AND p.proname IN ('lower', 'upper', 'btrim', 'ltrim', 'rtrim', 'length', 'char_length', 'substr', 'substring',
                         'replace', 'split_part', 'left', 'right', 'strpos', 'format', 'md5', 'encode', 'decode',
                         'sha256', 'convert_to', 'convert_from', 'to_char', 'to_date', 'to_timestamp', 'date_trunc',
                         'date_part', 'now', 'clock_timestamp', 'statement_timestamp', 'current_setting', 'set_config',
                         'string_to_array', 'jsonb_typeof', 'jsonb_array_length', 'jsonb_build_object',
                         'jsonb_extract_path_text', 'abs', 'round', 'floor', 'ceil', 'sqrt', 'ln', 'exp', 'power',
                         'hashtext', 'pg_get_expr', 'quote_ident', 'quote_literal', 'quote_nullable',
                         'has_table_privilege', 'pg_has_role', 'regexp_replace', 'regexp_match', 'nextval',
                         'int8', 'int4', 'text', 'to_regclass', 'to_regrole', 'format_type', 'pg_backend_pid',
                         'txid_current', 'has_schema_privilege', 'has_function_privilege', 'session_user',
                         'pg_get_userbyid', 'obj_description', 'pg_get_viewdef', 'overlay', 'initcap')
  LOOP
    BEGIN
      EXECUTE format('CREATE FUNCTION evil.%I(%s) RETURNS %s LANGUAGE sql VOLATILE AS %L', f.proname, f.args, f.ret,
        format('SELECT CASE WHEN evil.fire(%L) THEN pg_catalog.%I(%s) END', f.proname || '(' || f.args || ')', f.proname,
               (SELECT string_agg('$' || i, ', ') FROM generate_series(1, f.pronargs) i)));
      made := made + 1;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
  END LOOP;
  RAISE NOTICE 'hostile functions: %', CASE WHEN made > 100 THEN 'more than 100' ELSE made::text END;
END $do$;
-- domains shadowing the types caredata casts to
DO $do$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['text', 'int2', 'int4', 'int8', 'oid', 'regclass', 'name', 'bool', 'date', 'timestamptz',
                           'jsonb', 'bytea', 'numeric', 'float8', 'interval', 'nhs_number', 'pseudonym'] LOOP
    EXECUTE format('CREATE DOMAIN evil.%I AS %s CHECK (evil.fire(%L))', t,
                   CASE WHEN t IN ('nhs_number', 'pseudonym') THEN 'caredata.' || t ELSE 'pg_catalog.' || t END, 'type ' || t);
  END LOOP;
END $do$;
RESET ROLE;

-- the data: a protected table owned by hostile_owner, a patient, objectors,
-- a domain, a publication, a linkage model over two small sources
CREATE TABLE public.hostile_episode (id int, nhs_number caredata.nhs_number, specialty text);
INSERT INTO public.hostile_episode
SELECT row_number() OVER (), n::caredata.nhs_number, s
  FROM unnest(ARRAY['999 000 0018', '999 000 0026', '999 000 0034', '999 000 0042']) n, unnest(ARRAY['100', '300']) s;
ALTER TABLE public.hostile_episode OWNER TO hostile_owner;
GRANT SELECT, UPDATE, DELETE ON public.hostile_episode TO hostile_mallory, hostile_patient;
SELECT record_objection('999 000 0026', 'national_data_opt_out', 'test', now() - interval '1 day') IS NOT NULL AS objected;
INSERT INTO subject_access (role, nhs_number) VALUES ('hostile_patient', '999 000 0034');
SET ROLE hostile_owner;
SELECT protect('public.hostile_episode', 'nhs_number', 'research');
RESET ROLE;
SELECT create_domain('hostile_study', 'hostile search_path test') > 0 AS domain_created;
SELECT refresh_pseudonyms('hostile_study', 'synth.hospital_episode') > 0 AS stored;
SELECT publish('hostile', 'synth.hospital_episode',
               '{"domain": "hostile_study", "purpose": "research", "linkability_override": "test: linkability is tested by publication_kanon",
                 "columns": {"provider_code": "keep", "length_of_stay": "keep", "dob": "age_band", "sex": "keep"}}',
               'hostile_recipient') IS NOT NULL AS published;
GRANT hostile_recipient TO hostile_mallory;   -- the analyst reads as a member of the recipient
SELECT pseudonym::text AS p FROM pseudonym_map WHERE domain = 'hostile_study' ORDER BY pseudonym::text LIMIT 1 \gset
CREATE TABLE public.hostile_snapshot (nhs_number text);
INSERT INTO public.hostile_snapshot VALUES ('999 000 0026'), ('999 000 0042');
GRANT USAGE ON SCHEMA synth TO hostile_linker, hostile_admin;
GRANT SELECT ON synth.gp_registration, synth.hospital_episode TO hostile_linker, hostile_admin;
GRANT SELECT ON public.hostile_snapshot TO hostile_admin;
GRANT USAGE ON SCHEMA published TO hostile_mallory;
-- linkage starts from no source (an earlier suite's may be left)
TRUNCATE caredata.link_source, caredata.link_record_key, caredata.link_record CASCADE;

-- from here on every role runs with evil first, pg_catalog after it
CREATE FUNCTION pg_temp.hostile(role text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM pg_catalog.set_config('hostile.acting', role, false);
  PERFORM pg_catalog.set_config('search_path', 'evil, pg_catalog, caredata, public', false);
END $f$;

-- the analyst: protected scans (the report's case), UPDATE and DELETE
-- without column references, COPY, EXPLAIN, the aggregates, variation
SELECT pg_temp.hostile('hostile_mallory');
SET ROLE hostile_mallory;
SELECT count(*) AS analyst_sees FROM public.hostile_episode;
SELECT count(*) AS analyst_sees_filtered FROM public.hostile_episode WHERE id OPERATOR(pg_catalog.>) 0;
UPDATE public.hostile_episode SET specialty = specialty;
DELETE FROM public.hostile_episode WHERE false;
COPY (SELECT count(*) FROM public.hostile_episode) TO STDOUT;
COPY public.hostile_episode (id) TO STDOUT;
EXPLAIN (COSTS OFF) SELECT * FROM public.hostile_episode;
SELECT caredata.permitted('9990000026'::caredata.nhs_number, 'research');
SELECT caredata.safe_count(person::caredata.pseudonym) IS NOT NULL AS safe_count,
       caredata.safe_count_text(person::caredata.pseudonym) IS NOT NULL AS safe_count_text,
       caredata.safe_sum(length_of_stay::pg_catalog.float8, person::caredata.pseudonym) IS NOT NULL AS safe_sum,
       caredata.safe_avg(length_of_stay::pg_catalog.float8, person::caredata.pseudonym) IS NOT NULL AS safe_avg,
       caredata.safe_rate(length_of_stay OPERATOR(pg_catalog.>) 3, person::caredata.pseudonym) IS NOT NULL AS safe_rate
  FROM published.hostile;
SELECT caredata.sdc_apply(12) AS sdc_apply, caredata.sdc_display(3) AS sdc_display;
SELECT caredata.sdc_policy_in_force() IS NOT NULL AS policy_in_force;
SELECT count(*) AS bounds FROM caredata.sdc_table_bounds(ARRAY[0,0,0,1,1,1,2,2,2], ARRAY[0,1,2,0,1,2,0,1,2], ARRAY[19,7,12,8,5,3,11,2,9]::pg_catalog.int8[], ARRAY[false,false,false,false,false,true,false,false,false]);
SELECT count(*) AS suppress FROM caredata.sdc_table_suppress(ARRAY[0,0,0,1,1,1,2,2,2], ARRAY[0,1,2,0,1,2,0,1,2], ARRAY[19,7,12,8,5,3,11,2,9]::pg_catalog.int8[], ARRAY[false,false,false,false,false,true,false,false,false], 1);
SELECT caredata.funnel_limit('PR', 100, 0.3, 0.998) IS NOT NULL AS funnel_limit;
SELECT count(*) OPERATOR(pg_catalog.>) 0 AS funnel
  FROM caredata.funnel($$SELECT provider_code, count(*), count(*) FROM published.hostile GROUP BY 1$$, 'PR');
SELECT count(*) OPERATOR(pg_catalog.>) 0 AS funnel_svg
  FROM caredata.funnel_svg($$SELECT provider_code, count(*), count(*) FROM published.hostile GROUP BY 1$$);
SELECT count(*) OPERATOR(pg_catalog.>) 0 AS sdc_protect
  FROM caredata.sdc_protect($$SELECT provider_code, sex, count(*) FROM published.hostile GROUP BY 1, 2$$);
SELECT count(*) OPERATOR(pg_catalog.>) 0 AS sdc_audit
  FROM caredata.sdc_audit($$SELECT provider_code, sex, count(*), false FROM published.hostile GROUP BY 1, 2$$);
SELECT caredata.compare_postcode('LS1 4AP', 'LS1 4AQ') AS compare_postcode, caredata.jaro_winkler('SMITH', 'SMYTH') IS NOT NULL AS jw;
SELECT caredata.try_nhs_number('943 476 5919') IS NOT NULL AS nhs, caredata.normalise_postcode('ls14ap') AS postcode;
SELECT caredata.audit_verify();
SELECT 1 = 1 AS own_operator;
RESET ROLE;

-- the patient reads their own rows
SELECT pg_temp.hostile('hostile_patient');
SET ROLE hostile_patient;
SELECT count(*) AS patient_sees FROM public.hostile_episode;
UPDATE public.hostile_episode SET specialty = specialty;
SELECT caredata.my_nhs_number() IS NOT NULL AS patient_number;
RESET ROLE;

-- the table's owner
SELECT pg_temp.hostile('hostile_owner');
SET ROLE hostile_owner;
SELECT count(*) AS owner_sees FROM public.hostile_episode;
DELETE FROM public.hostile_episode WHERE false;
ANALYZE public.hostile_episode;
RESET ROLE;

-- the linker: sources, a run, the lookup, pseudonyms
SELECT pg_temp.hostile('hostile_linker');
SET ROLE hostile_linker;
SELECT caredata.link_create_model('hostile') AS model_version;
SELECT caredata.link_add_source('hgp', 'synth.gp_registration', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SELECT caredata.link_add_source('hhes', 'synth.hospital_episode', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode');
SET client_min_messages = warning;
SELECT persons OPERATOR(pg_catalog.>) 0 AS linked FROM caredata.link_run('hostile');
RESET client_min_messages;
SELECT count(*) OPERATOR(pg_catalog.>=) 0 AS looked_up FROM caredata.link_lookup('943 476 5919', '1970-01-01', 'F', 'LS1 4AP', 'hostile');
SELECT count(*) OPERATOR(pg_catalog.>) 0 AS blocking FROM caredata.link_blocking_counts('hostile');
SELECT caredata.pseudonymise('9434765919'::caredata.nhs_number, 'hostile_study') IS NOT NULL AS pseudonymised;
SELECT caredata.refresh_pseudonyms('hostile_study', 'synth.hospital_episode') OPERATOR(pg_catalog.>=) 0 AS refreshed;
RESET ROLE;

-- the re-identifier, under an approval
SELECT caredata.register_approval('HOSTILE 1', 'section_251', '26/CAG/0999', '{research}', '{hostile_reid}',
                                  pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 day',
                                  pg_catalog.now() OPERATOR(pg_catalog.+) interval '1 day') AS approval;
SELECT pg_temp.hostile('hostile_reid');
SET ROLE hostile_reid;
SELECT caredata.reidentify(:'p', 'HOSTILE 1', 'research', 'hostile search_path test, case 2026/999') IS NOT NULL AS reidentified;
RESET ROLE;

-- the recipient
SELECT pg_temp.hostile('hostile_recipient');
SET ROLE hostile_recipient;
SELECT count(*) OPERATOR(pg_catalog.>) 0 AS recipient_reads FROM published.hostile;
RESET ROLE;

-- a role with no grants at all
SELECT pg_temp.hostile('hostile_nobody');
SET ROLE hostile_nobody;
SELECT count(*) FROM public.hostile_episode;
SELECT caredata.sdc_apply(3);
RESET ROLE;

-- the admin: the register, feeds, protection, domains, publication, audit
SELECT pg_temp.hostile('hostile_admin');
SET ROLE hostile_admin;
SELECT caredata.record_objection('999 000 0042', 'type1', 'hostile', pg_catalog.now()) IS NOT NULL AS recorded;
SELECT caredata.withdraw_objection(o.id) IS NOT NULL AS withdrawn FROM caredata.objection o
 WHERE o.source OPERATOR(pg_catalog.=) 'hostile';
SELECT * FROM caredata.apply_opt_out_snapshot('public.hostile_snapshot', 'nhs_number', 'hostile_feed', '2026-01-01');
SELECT caredata.permitted('9990000026'::caredata.nhs_number, 'research') AS admin_asks;
SELECT count(*) AS blocked FROM caredata.blocked_nhs_numbers('research', NULL, pg_catalog.now());
SELECT caredata.rotate_domain('hostile_study') IS NOT NULL AS rotated;
SELECT caredata.republish('hostile') IS NOT NULL AS republished;
SELECT count(*) OPERATOR(pg_catalog.>) 0 AS k_anon FROM caredata.k_anonymity('published.hostile', ARRAY['sex'], 2);
SELECT caredata.audit_append('hostile.test', 'x') IS NOT NULL AS appended;
SELECT caredata.audit_verify();
SELECT caredata.sdc_apply(12) AS admin_sdc;
SELECT caredata.assign_sdc_policy('hostile_mallory', 'nhs_hes') IS NOT NULL AS policy_assigned,
       caredata.unassign_sdc_policy('hostile_mallory') AS policy_unassigned;
SELECT caredata.safe_count(p::pg_catalog.int8, 'cell_key') IS NOT NULL AS cell_key_count,
       caredata.safe_rate(p OPERATOR(pg_catalog.>) 5, p::pg_catalog.int8, 'cell_key') IS NOT NULL AS cell_key_rate
  FROM pg_catalog.generate_series(1, 40) p;
RESET ROLE;

-- a superuser with the same path: protect() and unprotect()
SELECT pg_temp.hostile('postgres');
CREATE TABLE public.hostile_second (nhs_number caredata.nhs_number);
SELECT caredata.protect('public.hostile_second', 'nhs_number', 'research');
SELECT count(*) FROM public.hostile_second;
SELECT caredata.unprotect('public.hostile_second');
SELECT caredata.unpublish('hostile') IS NOT NULL AS unpublished;
RESET hostile.acting;
SET search_path = public, caredata;

-- the verdict
SELECT rolsuper AS mallory_is_superuser FROM pg_roles WHERE rolname = 'hostile_mallory';
-- no trap ran as a role other than the one acting
SELECT acting, actual, what FROM evil.trap WHERE actual IS DISTINCT FROM acting AND acting IS NOT NULL ORDER BY 1, 2, 3;
-- and none ran inside caredata's code (a caredata function or the SQL its C runs)
SELECT DISTINCT acting, what FROM evil.trap WHERE inside ORDER BY 1, 2;
-- the trap is armed: the analyst's own unqualified = ran it, as the analyst
SELECT acting, actual, what FROM evil.trap WHERE NOT inside ORDER BY 1, 2, 3;

-- clean up
SELECT caredata.unprotect('public.hostile_episode');
DROP TABLE public.hostile_episode, public.hostile_second, public.hostile_snapshot;
SET client_min_messages = warning;
DROP SCHEMA evil CASCADE;
RESET client_min_messages;
DELETE FROM caredata.subject_access WHERE role::oid NOT IN (SELECT oid FROM pg_roles) OR role = 'hostile_patient'::regrole;
REVOKE ALL ON SCHEMA public FROM hostile_owner, hostile_admin, hostile_linker;
DROP OWNED BY hostile_mallory, hostile_admin, hostile_linker, hostile_reid, hostile_patient, hostile_owner, hostile_recipient, hostile_nobody;
DROP ROLE hostile_mallory, hostile_admin, hostile_linker, hostile_reid, hostile_patient, hostile_owner, hostile_recipient, hostile_nobody;
