-- sql/sdc_magnitudes.sql: every built-in policy protects magnitudes by
-- default (issue 24, section 3).  The attacks found, replayed under each:
--   - differencing: safe_sum(group) - safe_sum(group without one patient)
--     gave that patient's exact total (269772 - 250547 = 19225);
--   - dominance: 8 people, one holding 96.6% of the sum, was published;
--   - sum / mean: safe_sum / safe_avg gave the exact row count.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
RESET client_min_messages;
SET search_path = caredata, public;

-- 50 patients with costs; patient 50's total is 19225
CREATE TABLE cost AS
SELECT p AS person, CASE WHEN p = 50 THEN 19225 ELSE 4000 + (p * 7919) % 2000 END::float8 AS amount
  FROM generate_series(1, 50) p;
SELECT sum(amount) AS true_all, sum(amount) FILTER (WHERE person < 50) AS true_without_one FROM cost;
-- the differencing attack, under each built-in policy in force
-- (the keyed policies' sums vary with the master key; what holds is shown)
SELECT policy,
       abs(safe_sum(amount, person, policy) - sum(amount)) < 1000 AS shown_all_within_a_step,
       safe_sum(amount, person, policy) - (SELECT safe_sum(amount, person, p.policy) FROM cost WHERE person < 50)
         = 19225 AS exact_value_recovered
  FROM cost, (SELECT DISTINCT policy FROM sdc_policy WHERE builtin AND policy <> 'cell_key') p
 GROUP BY policy ORDER BY policy;

-- dominance: 8 people, one of them 96.6% of the total
CREATE TABLE dominated AS
SELECT p AS person, CASE WHEN p = 1 THEN 96600 ELSE 3400.0 / 7 END::float8 AS amount
  FROM generate_series(1, 8) p;
SELECT round((100 * max(amount) / sum(amount))::numeric, 1) AS top_share FROM dominated;
SELECT policy, safe_sum(amount, person, policy) AS shown_sum, safe_avg(amount, person, policy) AS shown_mean
  FROM dominated, (SELECT DISTINCT policy FROM sdc_policy WHERE builtin AND policy <> 'cell_key') p
 GROUP BY policy ORDER BY policy;

-- sum / mean: the row count (each person on several rows) is not given back
CREATE TABLE stays AS
SELECT p AS person, r AS row_no, (p % 5 + r)::float8 AS days
  FROM generate_series(1, 41) p, generate_series(1, 1 + p % 3) r;
SELECT count(*) AS true_rows FROM stays;
SELECT policy, safe_sum(days, person, policy) / safe_avg(days, person, policy) = count(*) AS exact_rows_recovered
  FROM stays, (SELECT DISTINCT policy FROM sdc_policy WHERE builtin AND policy <> 'cell_key') p
 GROUP BY policy ORDER BY policy;

-- the cell key policy (version 2) publishes a sum rounded at random to 3
-- significant figures by its people's record keys; a cell key policy that
-- does not round sums refuses them, never shows them exactly
SELECT abs(safe_sum(amount, person, 'cell_key') - sum(amount)) < 1000 AS within_a_step,
       safe_sum(amount, person, 'cell_key') % 1000 = 0 AS to_3_significant_figures FROM cost;
INSERT INTO sdc_policy (policy, suppress_max, source, cell_key_ptable) VALUES ('ck_counts_only', 0, 'test', 'default');
\set VERBOSITY terse
SELECT safe_sum(amount, person, 'ck_counts_only') FROM cost;
SELECT safe_avg(amount, person, 'ck_counts_only') FROM cost;
\set VERBOSITY default
DELETE FROM sdc_policy WHERE policy = 'ck_counts_only';

-- version 1 of each built-in policy is the published count rule alone
-- (sums exact); version 2 adds the magnitude rules; version 3 of nhs_hes
-- and opensafely, the latest, keys them (counts perturbed by the cell key,
-- sums rounded at random by the people's record keys)
SELECT policy, version, dominance_n, dominance_k, p_percent, magnitude_digits
  FROM sdc_policy WHERE builtin AND policy <> 'cell_key' ORDER BY policy, version;
-- the rounding rule: 3 significant figures, never finer than the count
-- base (5 for nhs_hes): 10 people of 1234.5 each, then of 1.3 each; under
-- version 3 up or down at random (12,300 or 12,400; 10 or 15), by the
-- people's record keys, the same for the same people
SELECT round(sum(x)::numeric, 2) AS true_sum, safe_sum(x, p, 'nhs_hes') IN (12300, 12400) AS shown_12300_or_12400,
       safe_sum(x, p, 'nhs_hes') = safe_sum(x, p, 'nhs_hes') AS the_same_twice
  FROM generate_series(1, 10) p, (VALUES (1234.5::float8)) v(x);
SELECT round(sum(x)::numeric, 2) AS true_sum, safe_sum(x, p, 'nhs_hes') IN (10, 15) AS shown_10_or_15 FROM generate_series(1, 10) p, (VALUES (1.3::float8)) v(x);

DROP TABLE cost, dominated, stays;
