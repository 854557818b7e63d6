-- test/fuzz/sql_calls.sql: the SQL-level fuzzer's set-up and generator,
-- run by test/fuzz/sql_calls.sh in a database of its own (psql variables
-- prefix, the role name prefix).
--
-- Set-up: caredata with a key domain, a small protected table, objections
-- and a publication, so that the calls reach past their first checks; one
-- login-less role per kind of caller.  Generator: fuzzcall.statements(rounds,
-- seed, timeout, prefix, huge) gives one line per call: every function, aggregate and
-- procedure of schema caredata, called as every role that may execute it,
-- rounds times with boundary arguments of each argument's type (NULL, empty,
-- mismatched and wrong-dimension arrays, 0, -1, 2^30, 2^31 - 1, NaN and
-- infinities, huge text, values of the extension's own types), each call in
-- a transaction that is rolled back, under its own statement_timeout.

SET client_min_messages = warning;
CREATE EXTENSION caredata;
SELECT caredata.create_domain('fuzz', 'the SQL-level fuzzer');
CREATE TABLE public.fz_episode AS
SELECT n AS nhs_number, 'P' || (x % 7) AS provider_code, x % 5 = 0 AS died_30d, (x % 90)::integer AS age
  FROM (SELECT x, caredata.try_nhs_number((9434765000 + x)::text) AS n FROM generate_series(0, 999) x) s
 WHERE n IS NOT NULL;
SELECT caredata.protect('public.fz_episode', 'nhs_number', 'research');
SELECT caredata.record_objection(nhs_number, 'national_data_opt_out', 'fuzz') FROM public.fz_episode LIMIT 5;

-- the callers: no grant at all, each caredata role, a recipient, a table owner
SELECT set_config('fuzzcall.prefix', :'prefix', false);
CREATE TABLE public.fz_owned (nhs_number caredata.nhs_number, n integer);
DO $$
DECLARE
  p text := current_setting('fuzzcall.prefix');
BEGIN
  EXECUTE format('CREATE ROLE %I NOLOGIN', p || 'nobody');
  EXECUTE format('CREATE ROLE %I NOLOGIN IN ROLE caredata_analyst', p || 'analyst');
  EXECUTE format('CREATE ROLE %I NOLOGIN IN ROLE caredata_patient', p || 'patient');
  EXECUTE format('CREATE ROLE %I NOLOGIN IN ROLE caredata_linker', p || 'linker');
  EXECUTE format('CREATE ROLE %I NOLOGIN IN ROLE caredata_reidentifier', p || 'reidentifier');
  EXECUTE format('CREATE ROLE %I NOLOGIN IN ROLE caredata_admin', p || 'admin');
  EXECUTE format('CREATE ROLE %I NOLOGIN', p || 'recipient');
  EXECUTE format('CREATE ROLE %I NOLOGIN', p || 'owner');
  EXECUTE format('GRANT SELECT ON public.fz_episode TO %I, %I, %I', p || 'analyst', p || 'linker', p || 'admin');
  EXECUTE format('ALTER TABLE public.fz_owned OWNER TO %I', p || 'owner');
  -- a publication for the recipient (its absence only makes the calls shallower)
  BEGIN
    PERFORM caredata.publish('fz', 'public.fz_episode',
                             '{"domain": "fuzz", "purpose": "research", "linkability_override": "fuzz: calls, not linkability", "columns": {"provider_code": "keep"}}', p || 'recipient');
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'sql_calls: no publication (%)', SQLERRM;
  END;
END
$$;

CREATE SCHEMA fuzzcall;
REVOKE ALL ON SCHEMA fuzzcall FROM PUBLIC;

-- boundary values, as SQL expressions, per type.  The arrays' lists are
-- seeds in the order that makes round 3 replay issue 22's crash
-- (sdc_table_bounds('{3,0,0,1}', '{0,1073741824,0,0}', '{0,0,0,0}',
-- '{f,f,f,f}')); the random rounds also build arrays element by element
-- (fuzzcall.small below)
CREATE TABLE fuzzcall.val (typ regtype, expr text);
CREATE FUNCTION fuzzcall.vals(t regtype, VARIADIC e text[]) RETURNS void LANGUAGE sql AS
  $$INSERT INTO fuzzcall.val SELECT t, x FROM unnest(e) x$$;

SELECT fuzzcall.vals('integer', 'NULL::integer', '0', '-1', '1', '3', '1073741824', '2147483647', '-2147483648', '65536');
SELECT fuzzcall.vals('smallint', 'NULL::smallint', '0::smallint', '-1::smallint', '32767::smallint', '-32768::smallint');
SELECT fuzzcall.vals('bigint', 'NULL::bigint', '0::bigint', '-1::bigint', '1::bigint', '1073741824::bigint', '2147483647::bigint',
                     '9223372036854775807', '-9223372036854775808', '4294967296', '9434765919');
SELECT fuzzcall.vals('double precision', 'NULL::float8', '0::float8', '-1::float8', '1::float8', '0.5::float8', '''NaN''::float8',
                     '''Infinity''::float8', '''-Infinity''::float8', '1e308::float8', '5e-324::float8', '-0.0::float8', '2147483648::float8');
SELECT fuzzcall.vals('real', 'NULL::real', '0::real', '''NaN''::real', '''Infinity''::real', '-1::real', '3.4e38::real');
SELECT fuzzcall.vals('numeric', 'NULL::numeric', '0::numeric', '-1::numeric', '''NaN''::numeric', '''Infinity''::numeric',
                     '''-Infinity''::numeric', '1e300::numeric', '0.95::numeric', '2147483648::numeric', '1e-300::numeric');
SELECT fuzzcall.vals('boolean', 'NULL::boolean', 'true', 'false');
SELECT fuzzcall.vals('text', 'NULL::text', '''''', '''x''', 'repeat(''x'', :huge)', '''9434765919''', '''research''', '''fuzz''', '''fz''',
                     '''SELECT 1, 2, 3''', '''SELECT ''''a'''', NULL, 1''', '''%s%n%x''', '''public.fz_episode''', '''{"a": 1}''',
                     '''-1''', '''NaN''', 'E''\\x01\\xff''', '''caredata_analyst''', '''opensafely''', '''nhs_number''',
                     'repeat(''9'', 100000)', '''SR1 1AA''', '''1.1.JgTRIXSlnTkpw_-Kf86g4A''');
SELECT fuzzcall.vals('character varying', 'NULL::varchar', '''''::varchar', 'repeat(''x'', :huge)::varchar', '''x''::varchar');
SELECT fuzzcall.vals('name', 'NULL::name', '''''::name', 'repeat(''x'', 100)::name', '''fuzz''::name', '''fz_episode''::name',
                     '''nhs_number''::name', '''public''::name', '''caredata_admin''::name', 'current_user');
SELECT fuzzcall.vals('cstring', 'NULL::cstring', '''''::cstring', 'repeat(''x'', :huge)::cstring', '''9434765919''::cstring',
                     '''x''::cstring', '''-1''::cstring', '''NaN''::cstring', '''{}''::cstring', ''':1,2,3''::cstring',
                     '''opensafely|3|0.3|1=0.1,2=0.2''::cstring', '''1.1.JgTRIXSlnTkpw_-Kf86g4A''::cstring');
SELECT fuzzcall.vals('date', 'NULL::date', '''infinity''::date', '''-infinity''::date', '''4713-01-01 BC''::date',
                     '''5874897-12-31''::date', '''2000-02-29''::date', 'current_date');
SELECT fuzzcall.vals('timestamp with time zone', 'NULL::timestamptz', '''infinity''::timestamptz', '''-infinity''::timestamptz',
                     '''4713-01-01 BC''::timestamptz', '''294276-12-31''::timestamptz', 'now()');
SELECT fuzzcall.vals('interval', 'NULL::interval', '''0''::interval', '''-178000000 years''::interval', '''1 hour''::interval');
SELECT fuzzcall.vals('jsonb', 'NULL::jsonb', '''{}''::jsonb', '''[]''::jsonb', '''null''::jsonb', '''"x"''::jsonb', '''1e1000''::jsonb',
                     '''{"domain": "fuzz", "purpose": "research", "columns": {"provider_code": "keep", "nhs_number": "pseudonym"}}''::jsonb',
                     '''{"columns": {"x": null}, "k": -1}''::jsonb', 'repeat(''['', 1000)::text || repeat('']'', 1000)',
                     'jsonb_build_object(''columns'', jsonb_build_object(repeat(''x'', 10000), ''keep''))');
SELECT fuzzcall.vals('regclass', 'NULL::regclass', '0::oid::regclass', '4294967295::oid::regclass', '''pg_class''::regclass',
                     '''public.fz_episode''::regclass', '''public.fz_owned''::regclass', '''caredata.audit_log''::regclass');
SELECT fuzzcall.vals('oid', 'NULL::oid', '0::oid', '4294967295::oid', '''public.fz_episode''::regclass::oid');
SELECT fuzzcall.vals('regrole', 'NULL::regrole', '0::oid::regrole', '''caredata_analyst''::regrole', 'current_user::regrole');
SELECT fuzzcall.vals('regrole[]', 'NULL::regrole[]', '''{}''::regrole[]', '''{NULL}''::regrole[]', '''{-}''::regrole[]',
                     '''{caredata_analyst}''::regrole[]', 'ARRAY[current_user::regrole]', 'ARRAY[4294967295::oid::regrole]');
SELECT fuzzcall.vals('integer[]', 'NULL::integer[]', '''{}''::integer[]', '''{NULL}''::integer[]', '''{3,0,0,1}''::integer[]',
                     '''{0,1073741824,0,0}''::integer[]', '''{0,0,1,1}''::integer[]', '''{0,1,0,1}''::integer[]',
                     '''{{1,2},{3,4}}''::integer[]', '''[0:3]={0,0,1,1}''::integer[]', '''{-1,2147483647,0,1}''::integer[]',
                     '''{2,2}''::integer[]', 'array_fill(2, ARRAY[33])', 'array_fill(16, ARRAY[8])', 'array_fill(1, ARRAY[:huge / 8])');
SELECT fuzzcall.vals('smallint[]', 'NULL::smallint[]', '''{}''::smallint[]', '''{NULL}''::smallint[]', '''{-1,32767}''::smallint[]');
SELECT fuzzcall.vals('bigint[]', 'NULL::bigint[]', '''{}''::bigint[]', '''{NULL}''::bigint[]', '''{2,1,1,0}''::bigint[]',
                     '''{9223372036854775807,-1,0,0}''::bigint[]', '''{0,0,0,0}''::bigint[]', '''{{1,2},{3,4}}''::bigint[]',
                     '''{576460752303423486,576460752303423486,0,0}''::bigint[]', 'array_fill(9434765919::bigint, ARRAY[:huge / 8])');
SELECT fuzzcall.vals('double precision[]', 'NULL::float8[]', '''{}''::float8[]', '''{NULL}''::float8[]',
                     '''{NaN,Infinity,-Infinity,0}''::float8[]', '''{0.5,0.5,0.5,0.5}''::float8[]', '''{{1,2},{3,4}}''::float8[]',
                     '''{1,0,1,0}''::float8[]', '''[2:3]={0.5,0.5}''::float8[]', 'array_fill(0.5::float8, ARRAY[8192])',
                     'array_fill(''NaN''::float8, ARRAY[8192])', 'array_fill(1e308::float8, ARRAY[:huge / 8])');
SELECT fuzzcall.vals('boolean[]', 'NULL::boolean[]', '''{}''::boolean[]', '''{NULL}''::boolean[]', '''{t,f,f,f}''::boolean[]',
                     '''{{t,f},{f,t}}''::boolean[]', 'array_fill(true, ARRAY[:huge / 8])', '''{f,f,f,f}''::boolean[]');
SELECT fuzzcall.vals('text[]', 'NULL::text[]', '''{}''::text[]', '''{NULL}''::text[]', '''{"",x}''::text[]',
                     'ARRAY[repeat(''x'', :huge)]', '''{{a,b},{c,d}}''::text[]', '''{provider_code,died_30d}''::text[]',
                     '''{nhs_number,nhs_number}''::text[]', 'array_fill(''x''::text, ARRAY[:huge / 8])');
SELECT fuzzcall.vals('name[]', 'NULL::name[]', '''{}''::name[]', '''{NULL}''::name[]', '''{provider_code,nhs_number}''::name[]',
                     '''{{a,b},{c,d}}''::name[]');
SELECT fuzzcall.vals('anyelement', 'NULL::integer', '1', '''x''::text', '''NaN''::float8', '''9434765919''::caredata.nhs_number');
SELECT fuzzcall.vals('anyarray', 'NULL::integer[]', '''{}''::integer[]', '''{1,NULL}''::integer[]', '''{{1,2},{3,4}}''::text[]');
-- the extension's own types: valid values, made here, and text that is not
SELECT fuzzcall.vals('caredata.nhs_number', 'NULL::caredata.nhs_number', '''9434765919''::caredata.nhs_number',
                     format('%L::caredata.nhs_number', (SELECT nhs_number::text FROM public.fz_episode LIMIT 1)));
SELECT fuzzcall.vals('caredata.pseudonym', 'NULL::caredata.pseudonym',
                     format('%L::caredata.pseudonym', caredata.pseudonymise('9434765919'::caredata.nhs_number, 'fuzz')));
SELECT fuzzcall.vals('caredata.person_set', 'NULL::caredata.person_set', ''':''::caredata.person_set',
                     format('%L::caredata.person_set', (SELECT caredata.person_set_agg(x::bigint) FROM generate_series(1, 3) x)),
                     format('%L::caredata.person_set', (SELECT caredata.person_set_agg(x::bigint) FROM generate_series(1, 5000) x)));
SELECT fuzzcall.vals('caredata.person_values', 'NULL::caredata.person_values',
                     '''opensafely|3|0.30000000000000004|1=0.1,2=0.2''::caredata.person_values',
                     '''|0|0|''::caredata.person_values', '''opensafely|9223372036854775807|1e308|1=1e308,2=1e308''::caredata.person_values');
SELECT fuzzcall.vals('caredata.funnel_state', 'NULL::caredata.funnel_state', '''(SR,SHMI,0.1,"{1,2}","{10,20}")''::caredata.funnel_state',
                     '''(SR,SHMI,NaN,"{1,2,3}","{10}")''::caredata.funnel_state', '''(,,,,)''::caredata.funnel_state',
                     '''(SR,SHMI,0.1,"{{1,2},{3,4}}","{{1,2},{3,4}}")''::caredata.funnel_state',
                     '''(SR,SHMI,-1,"{-1,Infinity}","{0,NaN}")''::caredata.funnel_state');
SELECT fuzzcall.vals('caredata.funnel_fit', 'NULL::caredata.funnel_fit', '''(SR,SHMI,0.1,2,2,1,79.5,11.8)''::caredata.funnel_fit',
                     '''(SR,SHMI,NaN,-1,2147483647,Infinity,NaN,-Infinity)''::caredata.funnel_fit', '''(,,,,,,,)''::caredata.funnel_fit');

-- any other type: NULL; the extension's own types (and arrays of them):
-- text their input functions must refuse cleanly, huge text too
INSERT INTO fuzzcall.val
SELECT t.oid, format('NULL::%s', t.oid::regtype) FROM pg_type t
 WHERE t.oid IN (SELECT unnest(proargtypes) FROM pg_proc WHERE pronamespace = 'caredata'::regnamespace)
   AND t.oid NOT IN (SELECT typ FROM fuzzcall.val)
   AND t.typtype <> 'p';
INSERT INTO fuzzcall.val
SELECT t.oid, format('%L::%s', s, t.oid::regtype) FROM pg_type t,
       unnest(ARRAY['', 'x', '-1', 'NaN', '{}', '()', '{{1},{2}}', '|||', ':', 'opensafely|-1|NaN|1=Infinity']) s
 WHERE t.oid IN (SELECT unnest(proargtypes) FROM pg_proc WHERE pronamespace = 'caredata'::regnamespace)
   AND t.typnamespace = 'caredata'::regnamespace;
INSERT INTO fuzzcall.val
SELECT t.oid, format('repeat(''9'', :huge)::%s', t.oid::regtype) FROM pg_type t
 WHERE t.oid IN (SELECT unnest(proargtypes) FROM pg_proc WHERE pronamespace = 'caredata'::regnamespace)
   AND t.typnamespace = 'caredata'::regnamespace;

-- the elements of generated arrays: mostly small, valid-looking values, so
-- that a structure (a whole table, a model) is often nearly right and one
-- boundary element (from the element type's list) then reaches the code
-- behind the first checks
CREATE TABLE fuzzcall.small (typ regtype, exprs text[]);
INSERT INTO fuzzcall.small VALUES
  ('integer', '{0,1,2,3}'), ('smallint', '{0,1,2,3}'), ('bigint', '{0,1,2,3}'),
  ('double precision', '{0,0.5,1,2}'), ('boolean', '{true,false}'),
  ('text', ARRAY['''x''', '''provider_code''', '''nhs_number''']), ('name', ARRAY['''provider_code''', '''nhs_number''']);

CREATE TABLE fuzzcall.vals_of AS
SELECT typ, array_agg(expr ORDER BY ord) AS exprs FROM (SELECT typ, expr, row_number() OVER () AS ord FROM fuzzcall.val) v GROUP BY typ;

-- the calls: one line each, "ROLLBACK; BEGIN; SET LOCAL ...; call; ROLLBACK"
-- sent as one message (psql's \;); the leading ROLLBACK ends the previous
-- call's transaction when that call failed
CREATE FUNCTION fuzzcall.statements(rounds integer, seed float8, timeout text, role_prefix text, huge integer)
  RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  f record;
  r text;
  roles text[] := ARRAY['nobody', 'analyst', 'patient', 'linker', 'reidentifier', 'admin', 'recipient', 'owner'];
  q integer;
  g integer;
  args text[];
  call text;
  n integer := 0;
  ex text[];
  small text[];
  elem text[];
  arr text[];
  arg text;
  len integer;
BEGIN
  PERFORM setseed(seed);
  FOR f IN
    SELECT p.oid, p.oid::regprocedure::text AS sig, p.prokind, p.proretset, p.provariadic, p.prorettype,
           ARRAY(SELECT unnest(p.proargtypes::oid[])) AS argtypes, p.pronargs,
           quote_ident(n.nspname) || '.' || quote_ident(p.proname) AS fname,
           p.prorettype = 'record'::regtype AND p.proallargtypes IS NULL AS anon_record
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'caredata' AND p.prokind IN ('f', 'a', 'p')
       -- internal arguments: not callable from SQL (recv: the libFuzzer targets)
       AND NOT ('internal'::regtype = ANY (p.proargtypes::oid[]))
     ORDER BY p.oid::regprocedure::text
  LOOP
    FOR q IN 1 .. array_length(roles, 1) LOOP
      r := role_prefix || roles[q];
      CONTINUE WHEN NOT has_function_privilege(r, f.oid, 'EXECUTE')
                 OR NOT has_schema_privilege(r, 'caredata', 'USAGE');
      FOR k IN 0 .. rounds - 1 LOOP
        -- rounds walk each type's values in step (arguments of a type
        -- offset by their position: mismatched arrays), then at random;
        -- each role starts at another round
        g := k + (q - 1) * rounds;
        args := ARRAY[]::text[];
        -- the length of this call's generated arrays (now and then one longer)
        len := (ARRAY[0, 1, 2, 4, 4, 6, 9, 9, 16, 33])[1 + floor(random() * 10)::integer];
        FOR i IN 1 .. f.pronargs LOOP
          SELECT exprs INTO ex FROM fuzzcall.vals_of WHERE typ = f.argtypes[i];
          IF ex IS NULL THEN
            ex := ARRAY[format('NULL::%s', f.argtypes[i]::regtype)];
          END IF;
          SELECT s.exprs, e.exprs INTO small, elem FROM pg_type t
            JOIN fuzzcall.small s ON s.typ = t.typelem JOIN fuzzcall.vals_of e ON e.typ = t.typelem
           WHERE t.oid = f.argtypes[i];
          IF g >= 24 AND small IS NOT NULL AND random() < 0.6 THEN
            -- ARRAY[...] of len elements, each small (3 in 4) or a boundary
            arr := ARRAY[]::text[];
            FOR j IN 1 .. len + CASE WHEN random() < 0.1 THEN 1 ELSE 0 END LOOP
              arr := arr || CASE WHEN random() < 0.75 THEN small[1 + floor(random() * array_length(small, 1))::integer]
                                 ELSE elem[1 + floor(random() * array_length(elem, 1))::integer] END;
            END LOOP;
            arg := format('ARRAY[%s]::%s', array_to_string(arr, ', '), f.argtypes[i]::regtype);
          ELSE
            arg := ex[1 + CASE WHEN g < 24 THEN (g + i - 1) % array_length(ex, 1)
                               ELSE floor(random() * array_length(ex, 1))::integer END];
          END IF;
          args := args || (CASE WHEN i = f.pronargs AND f.provariadic <> 0 AND f.provariadic <> '"any"'::regtype THEN 'VARIADIC ' ELSE '' END || arg);
        END LOOP;
        call := replace(format('%s(%s)', f.fname, array_to_string(args, ', ')), ':huge', huge::text);
        call := CASE
          WHEN f.prokind = 'p' THEN format('CALL %s', call)
          WHEN f.prokind = 'a' THEN format('SELECT md5(%s::text) FROM generate_series(1, 3)', call)
          WHEN f.proretset AND NOT f.anon_record THEN format('SELECT count(*), md5(string_agg(r::text, '','')) FROM %s r', call)
          WHEN f.proretset THEN format('SELECT count(*) FROM (SELECT %s AS r) s', call)
          WHEN f.prorettype = 'void'::regtype THEN format('SELECT %s', call)
          ELSE format('SELECT md5((%s)::text)', call) END;
        n := n + 1;
        RETURN NEXT format('/* call %s: %s as %s */ ROLLBACK\; BEGIN\; SET LOCAL ROLE %I\; SET LOCAL statement_timeout = %L\; %s\; ROLLBACK;',
                           n, f.sig, roles[q], r, timeout, call);
      END LOOP;
    END LOOP;
  END LOOP;
END
$$;
