-- sql/sdc_cell_key.sql: record keys in the disclosure-control states
-- (issue 24, section 4) and the cell key method, policy cell_key (section 2).
-- Record keys depend on the cluster's master secret, so every check here is
-- a property that holds whatever the key (the failures it looks for happen
-- with probability below 1e-9), never a perturbed value itself.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
RESET client_min_messages;
SET search_path = caredata, public;

-- ---- record keys: a state's text and binary forms hold no identifier ----
-- 300 valid NHS numbers (mod 11 check digit)
CREATE TABLE ck_nhs AS
SELECT b::bigint * 10 + c AS v
  FROM (SELECT b, (11 - (SELECT sum(substr(b::text, i, 1)::int * (11 - i)) FROM generate_series(1, 9) i) % 11) % 11 AS c
          FROM generate_series(943476590, 943477100) b) x
 WHERE c < 10 LIMIT 300;
SELECT count(*) AS numbers, bool_and(v::text::nhs_number IS NOT NULL) AS valid FROM ck_nhs;
CREATE TABLE ck_states AS
SELECT (SELECT person_set_agg(v::text::nhs_number)::text FROM ck_nhs) AS set_text,
       (SELECT encode(person_set_send(person_set_agg(v::text::nhs_number)), 'hex') FROM ck_nhs) AS set_binary,
       (SELECT person_set_agg(v)::text FROM ck_nhs) AS bigint_set_text,
       (SELECT safe_sum(1.0, v)::text FROM ck_nhs) AS sum_shown,
       (SELECT person_set_agg(v) FROM ck_nhs WHERE v = (SELECT min(v) FROM ck_nhs))::text AS one_person;
CREATE AGGREGATE pg_temp.values_partial(float8, bigint) (SFUNC = caredata._person_values_add, STYPE = person_values);
-- no number, in decimal or hexadecimal (as the old states printed it), in any form
SELECT count(*) FILTER (WHERE s.set_text LIKE '%' || to_hex(n.v) || '%' OR s.set_text LIKE '%' || n.v || '%') AS in_text,
       count(*) FILTER (WHERE s.bigint_set_text LIKE '%' || to_hex(n.v) || '%') AS in_bigint_text,
       count(*) FILTER (WHERE s.set_binary LIKE '%' || lpad(to_hex(n.v), 16, '0') || '%') AS in_binary,
       count(*) FILTER (WHERE s.one_person LIKE '%' || to_hex(n.v) || '%') AS in_one_person
  FROM ck_nhs n, ck_states s;
SELECT count(*) AS in_values_text
  FROM ck_nhs n, (SELECT pg_temp.values_partial(1.0, v)::text AS t FROM ck_nhs) s
 WHERE s.t LIKE '%' || to_hex(n.v) || '%';
-- the same people, counted: distinct counting and round trips still hold
SELECT array_length(string_to_array(split_part(set_text, ':', 2), ','), 1) AS keys,
       set_text::person_set::text = set_text AS text_round_trip,
       set_text = bigint_set_text AS nhs_number_is_its_bigint
  FROM ck_states;
SELECT safe_count(s) AS union_of_halves
  FROM (SELECT person_set_agg(v) AS s FROM ck_nhs WHERE v % 2 = 0
        UNION ALL SELECT person_set_agg(v) FROM ck_nhs WHERE v % 3 = 0
        UNION ALL SELECT person_set_agg(v) FROM ck_nhs) x;

-- ---- the p-table: the default is zero-mean, variance 1 from 5 people on ----
SELECT count_value, sum((key_max - key_min + 1) * perturbation)::numeric / 256 AS mean,
       round(sum((key_max - key_min + 1) * perturbation ^ 2)::numeric / 256, 4) AS variance,
       sum(key_max - key_min + 1) AS keys,
       string_agg(DISTINCT (count_value + perturbation)::text, ',') AS shown
  FROM sdc_ptable WHERE ptable = 'default' GROUP BY count_value ORDER BY count_value;
SELECT policy, version, suppress_max, rounding, cell_key_ptable, magnitude_digits, builtin FROM sdc_policy WHERE policy = 'cell_key' ORDER BY version;

-- ---- cells: 3,000 groups of 0 to 59 people ----
CREATE TABLE ck_rows AS
SELECT g, (g * 1000 + p)::bigint AS person
  FROM generate_series(1, 3000) g, generate_series(1, g % 60) p, generate_series(1, 2) twice;
CREATE TABLE ck_cells AS
SELECT g, count(DISTINCT person) AS n, safe_count(person, 'cell_key') AS shown,
       safe_count_text(person, 'cell_key') AS shown_text
  FROM ck_rows GROUP BY g;
GRANT SELECT ON ck_rows TO PUBLIC;
-- every group publishes; small counts never show 1 or 2; larger ones move by -2..+2
SELECT count(*) AS cells, count(*) FILTER (WHERE shown IS NULL) AS suppressed,
       count(*) FILTER (WHERE shown IN (1, 2)) AS shown_1_or_2,
       count(*) FILTER (WHERE n >= 5 AND abs(shown - n) > 2) AS beyond_2,
       count(*) FILTER (WHERE n = 0 AND shown <> 0) AS zero_moved,
       count(*) FILTER (WHERE shown_text <> shown::text) AS text_differs,
       count(*) FILTER (WHERE shown <> n) > 1000 AS perturbed
  FROM ck_cells;
-- totals of perturbed cells: mean error 0 and variance 1 (documented), within
-- 6 standard errors over the cells of 5 people or more
SELECT abs(avg(shown - n)) < 6 / sqrt(count(*)) AS mean_error_ok,
       abs(variance(shown - n) - 1) < 6 * sqrt(1.5 / count(*)) AS variance_ok,
       abs(sum(shown - n)) < 6 * sqrt(count(*)) AS total_within_6_sd
  FROM ck_cells WHERE n >= 5;
-- determinism: the same cells again, and by another plan
SELECT count(*) AS differ FROM ck_cells c
  JOIN (SELECT g, safe_count(person, 'cell_key') AS shown FROM ck_rows GROUP BY g) d USING (g)
 WHERE c.shown IS DISTINCT FROM d.shown;
SET enable_hashagg = off;
SELECT count(*) AS sorted_differs FROM ck_cells c
  JOIN (SELECT g, safe_count(person, 'cell_key') AS shown FROM ck_rows GROUP BY g) d USING (g)
 WHERE c.shown IS DISTINCT FROM d.shown;
-- parallel aggregation (partial states combined) gives the same answers
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT g, safe_count(person, 'cell_key') FROM ck_rows GROUP BY g;
SELECT count(*) AS parallel_differs FROM ck_cells c
  JOIN (SELECT g, safe_count(person, 'cell_key') AS shown FROM ck_rows GROUP BY g) d USING (g)
 WHERE c.shown IS DISTINCT FROM d.shown;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather; RESET enable_hashagg;
-- partial states shipped as text and combined later, as Citus does
SET caredata.sdc_policy = 'cell_key';
SELECT count(*) AS shipped_differs FROM ck_cells c
  JOIN (SELECT g, safe_count(s::text::person_set) AS shown
          FROM (SELECT g, person_set_agg(person) AS s FROM ck_rows WHERE person % 2 = 0 GROUP BY g
                UNION ALL
                SELECT g, person_set_agg(person) FROM ck_rows WHERE person % 2 = 1 GROUP BY g) h
         GROUP BY g) d USING (g)
 WHERE c.shown IS DISTINCT FROM d.shown;
RESET caredata.sdc_policy;

-- ---- attacks ----
-- differencing: a cell of 30 people, less each one in turn.  Exact counts
-- differ by 1 every time, giving each person away; perturbed ones do not.
CREATE TABLE ck_cell30 AS SELECT p::bigint AS person FROM generate_series(1, 30) p;
SELECT count(*) FILTER (WHERE d = 1) < 30 AS not_always_1, count(DISTINCT d) > 1 AS differences_vary
  FROM (SELECT (SELECT safe_count(person, 'cell_key') FROM ck_cell30)
               - (SELECT safe_count(person, 'cell_key') FROM ck_cell30 WHERE person <> out.p) AS d
          FROM generate_series(1, 30) out(p)) x;
-- padding: 40 small cells of 3 people, each padded with 10 made-up people to
-- get past suppression.  Under nhs_hes, padding 3 to 13 shows 15 = 3 + 10
-- rounded; here the padded count less 10 is 3 only by chance, and not for all.
CREATE TABLE ck_small AS SELECT c, (c * 100 + p)::bigint AS person FROM generate_series(1, 40) c, generate_series(1, 3) p;
SELECT count(*) FILTER (WHERE shown - 10 = 3) < 40 AS padding_not_exact,
       count(DISTINCT shown - 10) > 1 AS estimates_vary
  FROM (SELECT c, safe_count(person, 'cell_key') AS shown
          FROM (SELECT c, person FROM ck_small
                UNION ALL SELECT c, 900000000 + c * 100 + m FROM generate_series(1, 40) c, generate_series(1, 10) m) u
         GROUP BY c) x;
-- 50 overlapping queries: the cell of 50 people, each query leaving one out;
-- with exact counts every person's presence is the difference from the
-- whole; solving the 50 perturbed equations for it gets many wrong
SELECT count(*) FILTER (WHERE whole - q = 1) < 45 AS membership_not_recovered
  FROM (SELECT (SELECT safe_count(p::bigint, 'cell_key') FROM generate_series(1, 50) p) AS whole,
               (SELECT safe_count(p::bigint, 'cell_key') FROM generate_series(1, 50) p WHERE p <> o) AS q
          FROM generate_series(1, 50) o) x;

-- ---- the policy's reach: a count without its people is refused; a rate is
-- published from its two perturbed counts ----
SELECT sdc_apply(5, 'cell_key');
-- a rate of people is two counts of people: each perturbed by its own
-- people's cell key, as safe_count publishes them
SELECT safe_rate(p % 3 = 0, p::bigint, 'cell_key')
       = (SELECT safe_count(q::bigint, 'cell_key') FROM generate_series(1, 60) q WHERE q % 3 = 0)::float8
         / safe_count(p::bigint, 'cell_key') AS rate_of_published_counts
  FROM generate_series(1, 60) p;

-- ---- the p-table is the admin's: writes refused to others, audited ----
CREATE ROLE regress_ck_admin NOLOGIN IN ROLE caredata_admin;
CREATE ROLE regress_ck_analyst NOLOGIN IN ROLE caredata_analyst;
SET ROLE regress_ck_analyst;
SELECT count(*) > 0 AS analyst_reads FROM sdc_ptable;
INSERT INTO sdc_ptable (ptable, count_value, key_min, key_max, perturbation) VALUES ('mine', 0, 0, 255, 0);
UPDATE sdc_ptable SET perturbation = 0;
DELETE FROM sdc_ptable;
RESET ROLE;
SET ROLE regress_ck_admin;
-- an incomplete p-table is refused when used, never half applied
INSERT INTO sdc_ptable (ptable, count_value, key_min, key_max, perturbation) VALUES ('broken', 0, 0, 100, 0);
INSERT INTO sdc_policy (policy, suppress_max, source, cell_key_ptable) VALUES ('ck_broken', 0, 'test', 'broken');
SELECT safe_count(p::bigint, 'ck_broken') FROM generate_series(1, 10) p;
-- a replacement: no perturbation from 0 to 9, then -1..+1
INSERT INTO sdc_ptable (ptable, count_value, key_min, key_max, perturbation)
VALUES ('flat', 0, 0, 255, 0), ('flat', 10, 0, 84, -1), ('flat', 10, 85, 170, 0), ('flat', 10, 171, 255, 1);
INSERT INTO sdc_policy (policy, suppress_max, source, cell_key_ptable) VALUES ('ck_flat', 0, 'test', 'flat');
SELECT count(*) FILTER (WHERE n < 10 AND shown <> n) AS small_moved, count(*) FILTER (WHERE abs(shown - n) > 1) AS beyond_1
  FROM (SELECT g, count(DISTINCT person) AS n, safe_count(person, 'ck_flat') AS shown FROM ck_rows GROUP BY g) x;
DELETE FROM sdc_ptable WHERE ptable = 'broken';
RESET ROLE;
SELECT action, object, detail FROM audit_log WHERE action LIKE 'sdc_ptable.%' ORDER BY id;
DELETE FROM sdc_policy WHERE policy LIKE 'ck\_%';
DELETE FROM sdc_ptable WHERE NOT builtin;
DROP ROLE regress_ck_admin, regress_ck_analyst;
