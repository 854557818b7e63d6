-- test/pgtap/variation_privileges.sql: the funnel plot functions hold no
-- rights of their own.  Every role may call them; each reads only what its
-- caller may read (they run as the caller, with the caller's query), so
-- none is a way round a grant.
BEGIN;
SELECT plan(20);
SET LOCAL client_min_messages = warning;

CREATE ROLE tap_v_recipient NOLOGIN;
CREATE ROLE tap_v_analyst NOLOGIN IN ROLE caredata_analyst;
CREATE ROLE tap_v_patient NOLOGIN IN ROLE caredata_patient;
CREATE ROLE tap_v_linker NOLOGIN IN ROLE caredata_linker;
\i test/pgtap/include/try_as.psql

CREATE TABLE public.tap_v_open (provider text, died boolean, age_band text);
INSERT INTO public.tap_v_open SELECT 'P' || (i % 5), i % 9 = 0, (ARRAY['a', 'b'])[1 + i % 2] FROM generate_series(1, 2000) i;
CREATE TABLE public.tap_v_closed (LIKE public.tap_v_open);
INSERT INTO public.tap_v_closed SELECT * FROM public.tap_v_open;
GRANT SELECT ON public.tap_v_open TO PUBLIC;

-- 1. over what the caller may read: allowed, for every role (4 roles x 3)
SELECT is(pg_temp.try_as(r, q), 'allowed', format('%s may run %s', r, q))
FROM unnest(ARRAY['tap_v_recipient', 'tap_v_analyst', 'tap_v_patient', 'tap_v_linker']) r,
     unnest(ARRAY[$$SELECT * FROM caredata.indirect_standardise('public.tap_v_open', 'provider', 'died', ARRAY['age_band'])$$,
                  $$SELECT * FROM caredata.funnel('SELECT unit, observed, expected FROM caredata.indirect_standardise(''public.tap_v_open'', ''provider'', ''died'', ARRAY[''age_band''])')$$,
                  $$SELECT caredata.funnel_svg('SELECT unit, observed, expected FROM caredata.indirect_standardise(''public.tap_v_open'', ''provider'', ''died'', ARRAY[''age_band''])')$$]) q;

-- 2. over what it may not: refused, by each entry point (4 roles x 2), and
-- a reference population it may not read is refused too
SELECT is(pg_temp.try_as(r, q), '42501', format('%s cannot run %s', r, q))
FROM unnest(ARRAY['tap_v_recipient', 'tap_v_analyst', 'tap_v_patient', 'tap_v_linker']) r,
     unnest(ARRAY[$$SELECT * FROM caredata.indirect_standardise('public.tap_v_closed', 'provider', 'died', ARRAY['age_band'])$$,
                  $$SELECT * FROM caredata.funnel('SELECT provider, count(*) FILTER (WHERE died), count(*) FROM public.tap_v_closed GROUP BY 1', 'PR')$$]) q;

SELECT * FROM finish();
ROLLBACK;
