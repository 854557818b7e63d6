-- test/pgtap/pseudonym_parallel.sql: pseudonymise runs in parallel workers
-- (each derives the domain key itself) and gives the serial answer.
BEGIN;
SELECT plan(4);
SET LOCAL search_path = public, caredata;
SELECT caredata.create_domain('tap_parallel', 'parallel plan test');
CREATE TABLE public.tap_nhs AS
SELECT n FROM (SELECT caredata.try_nhs_number('999' || lpad(i::text, 6, '0') || d) AS n
               FROM generate_series(0, 30000) i, generate_series(0, 9) d) x
WHERE n IS NOT NULL;
ANALYZE public.tap_nhs;

\i test/pgtap/include/plan_text.psql

SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SELECT ok(pg_temp.plan_text($$SELECT sum(hashtext(caredata.pseudonymise(n, 'tap_parallel')::text)) FROM public.tap_nhs$$)
          ~ 'Partial Aggregate.*Parallel Seq Scan',
          'pseudonymise is planned inside parallel workers');
SELECT sum(hashtext(caredata.pseudonymise(n, 'tap_parallel')::text)) AS parallel_sum,
       count(DISTINCT caredata.pseudonymise(n, 'tap_parallel')) AS parallel_distinct
FROM public.tap_nhs \gset
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT is(sum(hashtext(caredata.pseudonymise(n, 'tap_parallel')::text)), :parallel_sum::bigint,
          'parallel and serial plans give the same pseudonyms')
FROM public.tap_nhs;
SELECT is(:parallel_distinct::bigint, (SELECT count(*) FROM public.tap_nhs),
          'every number has its own pseudonym');
-- a hash join on pseudonyms in parallel
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL enable_mergejoin = off;
CREATE TABLE public.tap_p AS SELECT caredata.pseudonymise(n, 'tap_parallel') AS p FROM public.tap_nhs;
ANALYZE public.tap_p;
SELECT is((SELECT count(*) FROM public.tap_p a JOIN public.tap_p b USING (p)),
          (SELECT count(*) FROM public.tap_nhs), 'a parallel hash join on pseudonyms matches every row once');
SELECT * FROM finish();
ROLLBACK;
