-- sql/sdc.sql: disclosure-control policies and the safe counting aggregates
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
RESET client_min_messages;
SET search_path = caredata, public;

-- ---- policies ----
SELECT policy, version, suppress_max, protect_zero, rounding, rounding_base, redacted FROM sdc_policy ORDER BY policy;
-- the setting exists once caredata's library is loaded (any of its C functions)
SELECT sdc_apply(0) AS loaded;
SHOW caredata.sdc_policy;
-- every policy at every boundary, by hand: HES suppresses 1-7 and rounds to
-- 5; OpenSAFELY redacts 0-7 and rounds to 5; midpoint 6 shows ceil(x/6)*6-3
SELECT n, sdc_apply(n, 'nhs_hes') AS nhs_hes, sdc_apply(n, 'opensafely') AS opensafely,
       sdc_apply(n, 'opensafely_midpoint6') AS midpoint6,
       sdc_display(n, 'nhs_hes') AS hes_shown, sdc_display(n, 'opensafely') AS opensafely_shown
  FROM unnest('{0,1,5,6,7,8,12,13,17,18,1000002}'::bigint[]) n;
-- the setting picks the policy when a call names none
SET caredata.sdc_policy = 'opensafely_midpoint6';
SELECT sdc_apply(7) AS midpoint_of_7, sdc_display(NULL) AS shown_null;
RESET caredata.sdc_policy;
SELECT sdc_apply(7) AS hes_default;
-- a custom policy (an admin's), versioned: the latest version applies
INSERT INTO sdc_policy (policy, suppress_max, protect_zero, rounding, rounding_base, redacted, source)
VALUES ('local_10', 9, true, 'nearest', 10, 'c', 'local rule, version 1');
INSERT INTO sdc_policy (policy, version, suppress_max, protect_zero, rounding, rounding_base, redacted, source)
VALUES ('local_10', 2, 10, true, 'nearest', 10, 'c', 'local rule, version 2');
SELECT n, sdc_apply(n, 'local_10'), sdc_display(n, 'local_10') FROM unnest('{0,10,11,14,15}'::bigint[]) n;
-- bad policies and counts
SELECT sdc_apply(5, 'no_such_policy');
SET caredata.sdc_policy = 'Not A Name';
SELECT sdc_apply(-1);
\set VERBOSITY terse
INSERT INTO sdc_policy (policy, suppress_max, rounding, rounding_base, source) VALUES ('odd_midpoint', 0, 'midpoint', 5, 'x');
INSERT INTO sdc_policy (policy, suppress_max, rounding, source) VALUES ('halves', 0, 'halves', 'x');
\set VERBOSITY default

-- ---- counting people, not rows ----
-- group g holds g distinct people, each on g rows, plus a NULL person.
-- nhs_hes and opensafely (version 3) perturb a count of people by its cell
-- key before their rule (sql/sdc_attacks.sql says why): 8 to 9 people may
-- be suppressed, 12 shown as 15, 13 as 10; 1 to 7 are never shown.
-- opensafely_midpoint6 is its rule alone.
CREATE TABLE episodes (g int, person bigint, nhs nhs_number, grp text);
INSERT INTO episodes
SELECT g, g * 100 + p, NULL, 'g' || g FROM generate_series(0, 13) g, generate_series(1, g) p, generate_series(1, g) r;
INSERT INTO episodes SELECT g, NULL, NULL, 'g' || g FROM generate_series(0, 13) g;
-- (the keyed policies' figures vary with the master key: the rule is shown
-- holding instead)
SELECT g, rows, people,
       CASE WHEN people = 0 THEN hes = 0 WHEN people <= 7 THEN hes IS NULL
            ELSE hes IS NULL OR (hes % 5 = 0 AND abs(hes - people) <= 4) END AS hes_rule,
       CASE WHEN people <= 7 THEN opensafely IS NULL
            ELSE opensafely IS NULL OR (opensafely % 5 = 0 AND abs(opensafely - people) <= 4) END AS opensafely_rule,
       midpoint6,
       hes_shown = coalesce(hes::text, '*') AND opensafely_shown = coalesce(opensafely::text, '[REDACTED]') AS shown_as_counted
  FROM (SELECT g, count(*) AS rows, count(DISTINCT person) AS people, safe_count(person) AS hes, safe_count(person, 'opensafely') AS opensafely,
               safe_count(person, 'opensafely_midpoint6') AS midpoint6, safe_count_text(person) AS hes_shown,
               safe_count_text(person, 'opensafely') AS opensafely_shown
          FROM episodes GROUP BY g) x
 ORDER BY g;
-- a call names one policy, not one per row
SELECT safe_count(person, CASE WHEN g < 5 THEN 'nhs_hes' ELSE 'opensafely' END) FROM episodes;
-- one person on many rows is one person; an empty input is zero people
SELECT safe_count(7::bigint, 'opensafely_midpoint6') AS one_person FROM generate_series(1, 1000);
SELECT safe_count(person) AS no_rows_hes, safe_count(person, 'opensafely') AS no_rows_opensafely,
       safe_count_text(person, 'opensafely') AS no_rows_shown FROM episodes WHERE false;
-- NHS numbers and pseudonyms are people too
SELECT safe_count(n::nhs_number, 'opensafely_midpoint6') AS nhs_people
  FROM (VALUES ('9434765919'), ('943 476 5919'), ('4010232137')) v(n);
SELECT safe_count(p::pseudonym, 'opensafely_midpoint6') AS pseudonymous_people
  FROM (VALUES ('1.1.AAAAAAAAAAAAAAAAAAAAAA'), ('1.1.AAAAAAAAAAAAAAAAAAAAAA'), ('1.1.AAAAAAAAAAAAAAAAAAAAAQ')) v(p);

-- ---- the state: a real type whose text and binary forms round-trip ----
-- three people, as record keys (their values never show: sql/sdc_cell_key.sql)
SELECT split_part(s::text, ':', 1) AS policy, array_length(string_to_array(split_part(s::text, ':', 2), ','), 1) AS keys
  FROM (SELECT person_set_agg(person) AS s FROM episodes WHERE g = 3) x;
-- (91 people: shown within the rule, its cell-key noise set by the master key)
SELECT s::text::person_set::text = s::text AS text_round_trip, safe_count(s) % 5 = 0 AND abs(safe_count(s) - 91) <= 4 AS hes_rule
  FROM (SELECT person_set_agg(person) AS s FROM episodes) x GROUP BY s::text;
SELECT ':'::person_set AS empty, 'opensafely:ff,0,10'::person_set AS with_policy;
SELECT 'no colon'::person_set;
SELECT 'x:zz'::person_set;
SELECT 'x:1,'::person_set;
SELECT 'Bad Policy:1'::person_set;
SELECT ':12345678901234567'::person_set;
CREATE TABLE sets (s person_set);
INSERT INTO sets SELECT person_set_agg(person) FROM episodes GROUP BY g;
INSERT INTO sets SELECT 'opensafely:1,2,3';
\copy sets TO 'results/caredata_regress_person_set.bin' WITH (FORMAT binary)
CREATE TABLE sets_back (s person_set);
\copy sets_back FROM 'results/caredata_regress_person_set.bin' WITH (FORMAT binary)
SELECT (SELECT array_agg(s::text ORDER BY s::text) FROM sets) = (SELECT array_agg(s::text ORDER BY s::text) FROM sets_back) AS binary_round_trip;
-- a state counted under one policy does not mix with another's
SELECT safe_count(s) FROM (VALUES ('opensafely:1'::person_set), ('nhs_hes:2')) v(s);

-- ---- serial, parallel and partial states agree ----
CREATE TABLE visits AS
SELECT (i % 97) AS unit, (hashint8(i) % 5000)::bigint AS person FROM generate_series(1, 200000) i;
ANALYZE visits;
-- serially first (the totals' cell-key noise depends on the master key,
-- random per installation: the parallel total is compared with the serial
-- one, and both with the rule, never with a fixed figure)
SET max_parallel_workers_per_gather = 0;
CREATE TABLE serial_counts AS SELECT unit, safe_count(person) AS n, safe_count_text(person, 'opensafely') AS t FROM visits GROUP BY unit;
CREATE TABLE serial_total AS SELECT safe_count(person) AS n, count(DISTINCT person) AS people FROM visits;
SELECT n % 5 = 0 AND abs(n - people) <= 4 AS serial_total_rule FROM serial_total;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET enable_hashagg = off;
EXPLAIN (COSTS OFF) SELECT unit, safe_count(person) FROM visits GROUP BY unit;
SELECT count(*) AS parallel_differs FROM serial_counts s
  JOIN (SELECT unit, safe_count(person) AS n, safe_count_text(person, 'opensafely') AS t FROM visits GROUP BY unit) p USING (unit)
 WHERE s.n IS DISTINCT FROM p.n OR s.t <> p.t;
EXPLAIN (COSTS OFF) SELECT safe_count(person) FROM visits;
SELECT safe_count(person) = (SELECT n FROM serial_total) AS parallel_total_same FROM visits;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather; RESET enable_hashagg;
-- split by hand: partial states per half, shipped as text, combined later
SELECT count(*) AS partial_differs FROM serial_counts s
  JOIN (SELECT unit, safe_count(st::text::person_set) AS n
          FROM (SELECT unit, person_set_agg(person) AS st FROM visits WHERE person % 2 = 0 GROUP BY unit
                UNION ALL
                SELECT unit, person_set_agg(person) FROM visits WHERE person % 2 <> 0 GROUP BY unit) h
         GROUP BY unit) c USING (unit)
 WHERE s.n IS DISTINCT FROM c.n;
-- the same answer every time: no noise to average away
SELECT count(DISTINCT n) AS answers FROM (SELECT safe_count(person) AS n FROM visits, generate_series(1, 3) r GROUP BY r) x;

-- ---- sums, means and rates of people's contributions ----
-- unit 'a': 8 people, 10 each; 'b': 7 people; 'c': one person dominates;
-- 'd': two people hold nearly everything (p% rule)
CREATE TABLE stays (unit text, person bigint, days double precision, readmitted boolean);
INSERT INTO stays SELECT 'a', p, 10, p <= 4 FROM generate_series(1, 8) p;
INSERT INTO stays SELECT 'b', p, 10, true FROM generate_series(1, 7) p;
INSERT INTO stays SELECT 'c', p, CASE WHEN p = 1 THEN 1000 ELSE 1 END, false FROM generate_series(1, 10) p;
INSERT INTO stays SELECT 'd', p, CASE p WHEN 1 THEN 100 WHEN 2 THEN 95 ELSE 0.2 END, p = 1 FROM generate_series(1, 10) p;
INSERT INTO stays VALUES ('a', 1, 10, NULL), ('a', NULL, 500, true), ('a', 2, NULL, false);
INSERT INTO sdc_policy (policy, suppress_max, dominance_n, dominance_k, p_percent, source)
VALUES ('dominance', 2, 1, 80, 10, 'test: (1, 80%) and p = 10%');
-- (the HES rule without its key, version 2's, in force for the sums below,
-- so that their figures do not vary with the master key: sql/sdc_attacks.sql
-- and sql/sdc_magnitudes.sql test the keyed version)
INSERT INTO sdc_policy (policy, suppress_max, protect_zero, rounding, rounding_base, redacted, dominance_n, dominance_k, p_percent, magnitude_digits, source)
SELECT 'regress_hes_unkeyed', suppress_max, protect_zero, rounding, rounding_base, redacted, dominance_n, dominance_k, p_percent, magnitude_digits, 'nhs_hes version 2'
  FROM sdc_policy WHERE policy = 'nhs_hes' AND version = 2;
SET caredata.sdc_policy = 'regress_hes_unkeyed';
-- (sums rounded to 9 places: the order rows reach an aggregate, and so the
-- last bit of a float sum, differs between PostgreSQL versions)
SELECT unit, count(DISTINCT person) AS people, round(sum(days)::numeric, 9)::float8 AS raw_sum,
       round(safe_sum(days, person)::numeric, 9)::float8 AS hes_sum, round(safe_avg(days, person)::numeric, 3) AS hes_avg,
       round(safe_sum(days, person, 'dominance')::numeric, 9)::float8 AS dominance_sum, round(safe_avg(days, person, 'dominance')::numeric, 3) AS dominance_avg,
       safe_rate(readmitted, person) AS hes_rate, safe_rate(readmitted, person, 'opensafely_midpoint6') AS midpoint_rate
  FROM stays GROUP BY unit ORDER BY unit;
SELECT safe_sum(days, person) AS no_rows FROM stays WHERE false;
\set VERBOSITY terse
INSERT INTO sdc_policy (policy, suppress_max, dominance_n, source) VALUES ('half_rule', 0, 2, 'x');
\set VERBOSITY default
SELECT safe_sum('Infinity', 1::bigint);
-- the state round-trips as text and in binary, and partial states combine
CREATE AGGREGATE pg_temp.values_partial(double precision, bigint) (SFUNC = caredata._person_values_add, STYPE = person_values);
CREATE AGGREGATE pg_temp.values_sum(person_values) (SFUNC = caredata._person_values_combine, STYPE = person_values,
                                                    FINALFUNC = caredata._person_values_safe_sum);
SELECT regexp_replace(pg_temp.values_partial(days, person)::text, '[0-9a-f]{1,16}=', 'key=', 'g') AS values_partial
  FROM stays WHERE unit = 'b';
-- (sums of floating-point values agree to within rounding, as sum(float8) does)
SELECT unit, (c.n IS NULL AND w.n IS NULL) OR abs(c.n - w.n) < 1e-9 AS partial_same, round(w.n::numeric, 6) AS n
  FROM (SELECT unit, pg_temp.values_sum(s::text::person_values) AS n
          FROM (SELECT unit, pg_temp.values_partial(days, person) AS s FROM stays WHERE person % 2 = 0 GROUP BY unit
                UNION ALL SELECT unit, pg_temp.values_partial(days, person) FROM stays WHERE person % 2 <> 0 GROUP BY unit) h
         GROUP BY unit) c
  JOIN (SELECT unit, safe_sum(days, person) AS n FROM stays GROUP BY unit) w USING (unit) ORDER BY unit;
RESET caredata.sdc_policy;
SELECT '|0|0|'::person_values AS empty, 'opensafely|3|0.30000000000000004|1=0.1,2=0.2'::person_values AS exact;
SELECT 'x|1|1|1=1,1=2'::person_values;
SELECT 'x|-1|1|'::person_values;
SELECT 'x|1|NaN|'::person_values;
SELECT 'x|1|1|1=1,'::person_values;
CREATE TABLE pv (s person_values);
INSERT INTO pv SELECT pg_temp.values_partial(days, person) FROM stays GROUP BY unit;
\copy pv TO 'results/caredata_regress_person_values.bin' WITH (FORMAT binary)
CREATE TABLE pv_back (s person_values);
\copy pv_back FROM 'results/caredata_regress_person_values.bin' WITH (FORMAT binary)
SELECT (SELECT array_agg(s::text ORDER BY s::text) FROM pv) = (SELECT array_agg(s::text ORDER BY s::text) FROM pv_back) AS binary_round_trip;
-- serial and parallel plans agree
CREATE TABLE stay_visits AS
SELECT (i % 53) AS unit, (hashint8(i) % 3000)::bigint AS person, (i % 17)::double precision AS days, i % 3 = 0 AS readmitted
  FROM generate_series(1, 100000) i;
ANALYZE stay_visits;
CREATE TABLE stay_serial AS
SELECT unit, safe_sum(days, person) AS s, safe_avg(days, person) AS a, safe_rate(readmitted, person) AS r FROM stay_visits GROUP BY unit;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET enable_hashagg = off;
EXPLAIN (COSTS OFF) SELECT unit, safe_sum(days, person), safe_avg(days, person), safe_rate(readmitted, person) FROM stay_visits GROUP BY unit;
SELECT count(*) AS parallel_differs FROM stay_serial s
  JOIN (SELECT unit, safe_sum(days, person) AS s, safe_avg(days, person) AS a, safe_rate(readmitted, person) AS r
          FROM stay_visits GROUP BY unit) p USING (unit)
 WHERE s.s IS DISTINCT FROM p.s OR abs(s.a - p.a) > 1e-9 OR s.r IS DISTINCT FROM p.r;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather; RESET enable_hashagg;
DROP TABLE stays, pv, pv_back, stay_visits, stay_serial;

-- ---- outside an aggregate, and catalog comments ----
SELECT _person_set_add(NULL::person_set, 1::bigint);
SELECT p.oid::regprocedure FROM pg_proc p
 WHERE p.pronamespace = 'caredata'::regnamespace
   AND (p.proname LIKE '%person\_set%' OR p.proname LIKE 'safe\_%' OR p.proname LIKE 'sdc\_%') AND obj_description(p.oid, 'pg_proc') IS NULL;
SELECT p.proname FROM pg_proc p JOIN pg_aggregate a ON a.aggfnoid = p.oid
 WHERE p.pronamespace = 'caredata'::regnamespace AND a.aggcombinefn = 0;
DROP TABLE episodes, sets, sets_back, visits, serial_counts, serial_total;
DELETE FROM sdc_policy WHERE NOT builtin;
