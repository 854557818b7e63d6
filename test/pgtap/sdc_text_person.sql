-- test/pgtap/sdc_text_person.sql: the safe aggregates take a person as a
-- published view shows it, a pseudonym's text (issue 26): each text
-- overload gives what the caredata.pseudonym one gives (the same record
-- keys: the states combine), is planned with partial aggregates in
-- parallel workers, and refuses text that is not a pseudonym.
BEGIN;
SELECT plan(23);
SET LOCAL search_path = public, caredata;
SELECT caredata.create_domain('tap_text_person', 'text person test');
-- a real table (temp tables are never scanned in parallel): 3 rows a person
CREATE TABLE public.tap_tp AS
SELECT caredata.pseudonymise(n, 'tap_text_person') AS p, caredata.pseudonymise(n, 'tap_text_person')::text AS t,
       (r % 7)::float8 AS v, r % 3 = 0 AS c, i % 4 AS g
  FROM (SELECT i, caredata.try_nhs_number('999' || lpad(i::text, 6, '0') || d) AS n
          FROM generate_series(0, 3000) i, generate_series(0, 9) d) x, generate_series(1, 3) r
 WHERE n IS NOT NULL;
ANALYZE public.tap_tp;

\i test/pgtap/include/plan_text.psql

SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SELECT ok(pg_temp.plan_text(format('SELECT g, %s FROM public.tap_tp GROUP BY g', a)) ~ 'Partial (Group|Hash)?Aggregate.*Parallel Seq Scan',
          format('%s is planned with partial aggregates in parallel workers', a))
  FROM unnest(ARRAY['caredata.safe_count(t)', $$caredata.safe_count(t, 'opensafely')$$, 'caredata.safe_count_text(t)',
                    $$caredata.safe_count_text(t, 'opensafely')$$, 'caredata.person_set_agg(t)', 'caredata.safe_sum(v, t)',
                    $$caredata.safe_sum(v, t, 'opensafely')$$, 'caredata.safe_avg(v, t)', $$caredata.safe_avg(v, t, 'opensafely')$$,
                    'caredata.safe_rate(c, t)', $$caredata.safe_rate(c, t, 'opensafely')$$]) a;
-- (in parallel) each text overload gives what the pseudonym one gives
SELECT is(x.by_text, x.by_pseudonym, x.what)
  FROM (SELECT 'safe_count(text) = safe_count(pseudonym), per group' AS what,
               (SELECT array_agg(n ORDER BY g) FROM (SELECT g, caredata.safe_count(t) AS n FROM public.tap_tp GROUP BY g) q)::text AS by_text,
               (SELECT array_agg(n ORDER BY g) FROM (SELECT g, caredata.safe_count(p) AS n FROM public.tap_tp GROUP BY g) q)::text AS by_pseudonym
        UNION ALL
        SELECT 'safe_count(text, policy) = safe_count(pseudonym, policy)',
               (SELECT caredata.safe_count(t, 'opensafely') FROM public.tap_tp)::text, (SELECT caredata.safe_count(p, 'opensafely') FROM public.tap_tp)::text
        UNION ALL
        SELECT 'safe_count_text(text) = safe_count_text(pseudonym)',
               (SELECT caredata.safe_count_text(t) FROM public.tap_tp), (SELECT caredata.safe_count_text(p) FROM public.tap_tp)
        UNION ALL
        SELECT 'safe_count_text(text, policy) = safe_count_text(pseudonym, policy)',
               (SELECT caredata.safe_count_text(t, 'nhs_hes') FROM public.tap_tp), (SELECT caredata.safe_count_text(p, 'nhs_hes') FROM public.tap_tp)
        UNION ALL
        SELECT 'person_set_agg(text) holds the same record keys as person_set_agg(pseudonym)',
               (SELECT caredata.person_set_agg(t) FROM public.tap_tp)::text, (SELECT caredata.person_set_agg(p) FROM public.tap_tp)::text
        UNION ALL
        SELECT 'safe_sum(value, text) = safe_sum(value, pseudonym)',
               (SELECT caredata.safe_sum(v, t) FROM public.tap_tp)::text, (SELECT caredata.safe_sum(v, p) FROM public.tap_tp)::text
        UNION ALL
        SELECT 'safe_sum(value, text, policy) = safe_sum(value, pseudonym, policy)',
               (SELECT caredata.safe_sum(v, t, 'opensafely') FROM public.tap_tp)::text, (SELECT caredata.safe_sum(v, p, 'opensafely') FROM public.tap_tp)::text
        UNION ALL
        SELECT 'safe_avg(value, text) = safe_avg(value, pseudonym)',
               (SELECT caredata.safe_avg(v, t) FROM public.tap_tp)::text, (SELECT caredata.safe_avg(v, p) FROM public.tap_tp)::text
        UNION ALL
        SELECT 'safe_rate(condition, text) = safe_rate(condition, pseudonym)',
               (SELECT caredata.safe_rate(c, t) FROM public.tap_tp)::text, (SELECT caredata.safe_rate(c, p) FROM public.tap_tp)::text) x;
-- (the default policy perturbs a count of people by their cell key, -2..+2,
-- then rounds to 5: within 4 of the people, far from the rows)
SELECT ok((SELECT abs(caredata.safe_count(t) - count(DISTINCT p)) <= 4 AND count(*) - count(DISTINCT p) > 10
                  AND caredata.safe_count(t) = caredata.safe_count(p) FROM public.tap_tp),
          'safe_count(text) counts distinct people, not rows');
-- text and pseudonym states combine: the union of both halves counts each person once
SELECT is((SELECT caredata.safe_count(s) FROM (SELECT caredata.person_set_agg(t) s FROM public.tap_tp WHERE g < 2
                                                UNION ALL SELECT caredata.person_set_agg(p) FROM public.tap_tp) u),
          (SELECT caredata.safe_count(p) FROM public.tap_tp), 'a text state and a pseudonym state combine');
SELECT throws_ok($$SELECT caredata.safe_count(x) FROM (VALUES ('9434765919')) v(x)$$, '22P02', NULL,
                 'safe_count(text) refuses text that is not a pseudonym (an NHS number, say)');
SELECT * FROM finish();
ROLLBACK;
