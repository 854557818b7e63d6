-- sql/variation.sql: funnel plot limits, over-dispersion, indirect
-- standardisation, per-unit flags and the SVG, against values computed by
-- hand from the formulas (docs/variation.md) and independently (an exact
-- binomial sum and a bisection of the incomplete gamma series, in Python:
-- the values below)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
RESET client_min_messages;
SET search_path = caredata, public;
SET extra_float_digits = 0;

-- 1. exact limits.  Standardised ratios: qgamma(p, E) / E below and
-- qgamma(p, E + 1) / E above (FunnelPlotR's chi-square form)
SELECT e, p, abs(funnel_limit('SR', e, 1, p) / ref - 1) < 1e-9 AS matches
  FROM (VALUES (0.5, 0.001, 1.5707971492624904e-06), (0.5, 0.025, 0.0009820691171752573),
               (0.5, 0.975, 9.348403604496127), (0.5, 0.999, 16.266236196237514),
               (2.5, 0.001, 0.04204252052584384), (2.5, 0.999, 4.86437726957157),
               (10, 0.025, 0.4795388696132431), (10, 0.975, 1.839035604201745),
               (37.3, 0.001, 0.569142659815884), (37.3, 0.999, 1.6166261491886835),
               (100, 0.025, 0.813639912509232), (100, 0.975, 1.2162679379242698)) v(e, p, ref);
-- proportions: Spiegelhalter's interpolated binomial quantile (r_p - alpha) / n,
-- a limit below 0 is 0
SELECT n, target, p, round(funnel_limit('PR', n, target, p)::numeric, 12) AS limit_,
       abs(funnel_limit('PR', n, target, p) - greatest(ref, 0)) < 1e-11 AS matches
  FROM (VALUES (20, 0.1, 0.025, -0.03971842082503754), (20, 0.1, 0.975, 0.22846760702992447),
               (20, 0.1, 0.999, 0.3351718216852823), (100, 0.08, 0.001, 0.0036574536502378186),
               (100, 0.08, 0.975, 0.13216599958044667), (1000, 0.08, 0.025, 0.06309072700444825),
               (1000, 0.08, 0.999, 0.10717519668519108), (57, 0.3, 0.001, 0.11460415074524201),
               (57, 0.3, 0.975, 0.4140917694490654)) v(n, target, p, ref);

-- 2. the normal approximation, phi and tau2, against the formulas written
-- out in SQL (z = 1.959963984540054 and 3.090232306167813)
SELECT abs(funnel_limit('SR', 100, 1, 0.975, 'normal') - (1 + 1.959963984540054 * sqrt(1 / 100.0))) < 1e-12 AS sr_normal,
       abs(funnel_limit('PR', 400, 0.1, 0.001, 'normal') - (0.1 - 3.090232306167813 * sqrt(0.1 * 0.9 / 400))) < 1e-12 AS pr_normal,
       abs(funnel_limit('SR', 100, 1, 0.999, 'phi', 2.5) - (1 + 3.090232306167813 * sqrt(2.5 / 100))) < 1e-12 AS sr_phi,
       abs(funnel_limit('PR', 400, 0.1, 0.025, 'phi', 1.8) - (0.1 - 1.959963984540054 * sqrt(1.8 * 0.1 * 0.9 / 400))) < 1e-12 AS pr_phi,
       abs(funnel_limit('SR', 100, 1, 0.999, 'tau2', 1, 0.01) - exp(3.090232306167813 * sqrt(1 / 100.0 + 0.01))) < 1e-12 AS sr_shmi_tau2,
       abs(funnel_limit('SR', 100, 1, 0.001, 'tau2', 1, 0.01, 'CQC') - (1 - 3.090232306167813 * sqrt(1 / 400.0 + 0.01)) ^ 2) < 1e-12 AS sr_cqc_tau2,
       abs(funnel_limit('PR', 400, 0.1, 0.975, 'tau2', 1, 0.001) - sin(asin(sqrt(0.1)) + 1.959963984540054 * sqrt(1 / 1600.0 + 0.001)) ^ 2) < 1e-12 AS pr_tau2,
       abs(funnel_limit('RC', 400, 0.5, 0.975, 'tau2', 1, 0.001) - exp(ln(0.5) + 1.959963984540054 * sqrt(1 / 1600.0 + 0.001))) < 1e-12 AS rc_tau2;
-- over-dispersion widens the limits, and more of it widens them more
SELECT funnel_limit('SR', 100, 1, 0.999, 'tau2', 1, 0.02) > funnel_limit('SR', 100, 1, 0.999, 'tau2', 1, 0.01)
   AND funnel_limit('SR', 100, 1, 0.999, 'tau2', 1, 0.01) > funnel_limit('SR', 100, 1, 0.999, 'tau2', 1, 0)
   AND funnel_limit('SR', 100, 1, 0.001, 'tau2', 1, 0.01) < funnel_limit('SR', 100, 1, 0.001, 'tau2', 1, 0)
   AND funnel_limit('PR', 400, 0.1, 0.999, 'phi', 2) > funnel_limit('PR', 400, 0.1, 0.999, 'normal') AS wider;
-- the funnel narrows as units grow
SELECT bool_and(a > b) AS narrows
  FROM (SELECT funnel_limit('SR', e, 1, 0.999) AS a, lead(funnel_limit('SR', e, 1, 0.999)) OVER (ORDER BY e) AS b
          FROM generate_series(1, 1000, 7) e) x WHERE b IS NOT NULL;

-- 3. over-dispersion fitted over units: 20 standardised ratios (two planted
-- at twice their expected count) and 20 proportions (one at 1.8 times);
-- phi and tau2 as computed independently from FunnelPlotR's definitions
CREATE TABLE fp_sr (unit text, observed double precision, expected double precision);
INSERT INTO fp_sr VALUES
  ('U01', 113, 132.91), ('U02', 204, 216.67), ('U03', 34, 27.91), ('U04', 67, 32.59), ('U05', 42, 40.83),
  ('U06', 96, 93.18), ('U07', 358, 379.35), ('U08', 36, 23.4), ('U09', 110, 119.4), ('U10', 298, 327.37),
  ('U11', 241, 234.73), ('U12', 67, 29.8), ('U13', 23, 28.54), ('U14', 126, 129.09), ('U15', 178, 184.01),
  ('U16', 92, 101.42), ('U17', 252, 212.45), ('U18', 320, 392.17), ('U19', 203, 170.16), ('U20', 27, 20.49);
CREATE TABLE fp_pr (unit text, events double precision, cases double precision);
INSERT INTO fp_pr VALUES
  ('P01', 197, 2335), ('P02', 209, 2146), ('P03', 202, 2971), ('P04', 105, 1497), ('P05', 225, 2936),
  ('P06', 355, 2410), ('P07', 68, 816), ('P08', 50, 619), ('P09', 172, 2319), ('P10', 153, 1634),
  ('P11', 66, 648), ('P12', 122, 1707), ('P13', 229, 2504), ('P14', 217, 2880), ('P15', 221, 2795),
  ('P16', 20, 212), ('P17', 171, 2465), ('P18', 194, 2473), ('P19', 21, 322), ('P20', 112, 1319);
SELECT (f).data_type, (f).sr_method, (f).units, (f).units_used, round((f).target::numeric, 10) AS target,
       abs((f).phi - ref_phi) < 1e-12 AS phi_matches, abs((f).tau2 - ref_tau2) < 1e-15 AS tau2_matches
  FROM (SELECT funnel_fit(observed, expected) AS f, 1.6928442575608562 AS ref_phi, 0.005793965852875768 AS ref_tau2 FROM fp_sr
        UNION ALL
        SELECT funnel_fit(observed, expected, 'SR', 'CQC', 0.1), 2.540315377326146, 0.002990740029790906 FROM fp_sr
        UNION ALL
        SELECT funnel_fit(events, cases, 'PR'), 2.0011189188583334, 0.00015134331574174784 FROM fp_pr) x;
-- and FunnelPlotR 0.6.0 itself on the same units (its over-dispersed limits
-- at a unit's size; it rounds z to 1.959964 and 3.090232, hence 1e-6)
SELECT v.config, v.unit, v.outlier,
       abs(funnel_limit(f, v.size, 0.001) - v.l998) < 1e-6 AND abs(funnel_limit(f, v.size, 0.025) - v.l95) < 1e-6
       AND abs(funnel_limit(f, v.size, 0.975) - v.u95) < 1e-6 AND abs(funnel_limit(f, v.size, 0.999) - v.u998) < 1e-6 AS as_funnelplotr
  FROM (VALUES
    ('SR', 'U01', 132.91, 0.700037014518126, 0.797569946717035, 1.25380852690878, 1.42849589273269, 0),
    ('SR', 'U04', 32.59, 0.55420985656033, 0.687743806350163, 1.45402981570561, 1.80437065159115, 1),
    ('SR', 'U20', 20.49, 0.485744761906333, 0.632566140546673, 1.58086235715333, 2.05869435642588, 0),
    ('PR', 'P06', 2410, 0.0586962410465899, 0.0674682636707794, 0.102179399868487, 0.113371402286374, 1),
    ('PR', 'P16', 212, 0.0325251357020819, 0.04872417655853, 0.127784258767824, 0.156546356776931, 0),
    ('PR', 'P19', 322, 0.0394452582354807, 0.0539283535868843, 0.120012497930923, 0.143270865193375, 0)
  ) v(config, unit, size, l998, l95, u95, u998, outlier),
  LATERAL (SELECT CASE WHEN v.config = 'SR' THEN (SELECT funnel_fit(observed, expected) FROM fp_sr)
                       ELSE (SELECT funnel_fit(events, cases, 'PR') FROM fp_pr) END AS f) x;
-- no trimming, and a fit without over-dispersion: tau2 is 0
SELECT (funnel_fit(observed, expected, 'SR', 'SHMI', 0)).units_used AS kept_without_trimming FROM fp_sr;
SELECT (funnel_fit(e, e, 'SR')).tau2 AS tau2_when_all_on_target FROM generate_series(10, 200, 10) e;

-- 4. per unit, in one query: the planted outliers are flagged, the others not
SELECT unit, numerator, round(ratio::numeric, 4) AS ratio, round(z::numeric, 3) AS z,
       round(lower_998::numeric, 4) AS lower_998, round(upper_998::numeric, 4) AS upper_998, band, outlier
  FROM funnel('SELECT unit, observed, expected FROM fp_sr', policy => 'opensafely') ORDER BY unit;
SELECT unit, band FROM funnel('SELECT unit, events, cases FROM fp_pr', 'PR', policy => 'opensafely') WHERE outlier;
-- the multiplicative phi and the exact limits flag the same two, and limits
-- follow the method chosen
SELECT string_agg(unit, ',' ORDER BY unit) FILTER (WHERE outlier) AS phi_outliers
  FROM funnel('SELECT unit, observed, expected FROM fp_sr', method => 'phi', policy => 'opensafely');
SELECT bool_and(abs(upper_998 - funnel_limit('SR', denominator, 1, 0.999)) < 1e-12) AS exact_limits_as_funnel_limit
  FROM funnel('SELECT unit, observed, expected FROM fp_sr', method => 'exact', policy => 'opensafely');
-- as FunnelPlotR: with no over-dispersion (phi <= 1) the default draws the
-- unadjusted limits: exact for a ratio, tau2 = 0 for a proportion
CREATE TABLE fp_calm AS SELECT 'C' || e AS unit, round(e * (1 + 0.3 / sqrt(e) * sin(e))) AS observed, e::float8 AS expected
  FROM generate_series(20, 400, 20) e;
SELECT (fit).phi <= 1 AS no_overdispersion, limits,
       bool_and(abs(upper_998 - funnel_limit('SR', denominator, 1, 0.999, 'exact')) < 1e-12) AS exact_limits
  FROM funnel('SELECT unit, observed, expected FROM fp_calm', policy => 'opensafely') GROUP BY 1, 2;
SELECT DISTINCT limits FROM funnel('SELECT unit, observed, expected FROM fp_sr', policy => 'opensafely');
-- over-dispersion found in the data widens every unit's limits beyond the
-- same model's without it (tau2 = 0, on the same log scale)
SELECT (fit).tau2 > 0 AS overdispersed,
       bool_and(upper_998 > funnel_limit('SR', denominator, 1, 0.999, 'tau2', 1, 0)
                AND lower_998 < funnel_limit('SR', denominator, 1, 0.001, 'tau2', 1, 0)
                AND upper_95 > funnel_limit('SR', denominator, 1, 0.975, 'tau2', 1, 0)) AS every_unit_wider
  FROM funnel('SELECT unit, observed, expected FROM fp_sr', policy => 'opensafely') GROUP BY 1;
-- 95% flagging flags more
SELECT count(*) FILTER (WHERE outlier) AS outliers_at_95
  FROM funnel('SELECT unit, observed, expected FROM fp_sr', flag_limit => 95, policy => 'opensafely');

-- 5. small units follow the disclosure policy: listed, without their counts,
-- band or flag (sql/variation_disclosure.sql: why, and bands from true counts)
INSERT INTO fp_sr VALUES ('U21', 3, 2.1), ('U22', 12, 11.7);
SELECT unit, numerator, round(denominator::numeric, 2) AS expected, ratio, z, band, suppressed
  FROM funnel('SELECT unit, observed, expected FROM fp_sr', policy => 'opensafely') WHERE unit IN ('U21', 'U22', 'U01');
-- under a rounding policy the ratio is the rounded count's (no exact count behind it)
SELECT unit, numerator, round(ratio::numeric, 6) = round((numerator / denominator)::numeric, 6) AS ratio_from_shown_count
  FROM funnel('SELECT unit, observed, expected FROM fp_sr', policy => 'opensafely') WHERE unit = 'U01';
DELETE FROM fp_sr WHERE unit IN ('U21', 'U22');
-- proportions: the cases are counts too.  Shown rounded, with the limits at
-- the shown size (a limit at the exact size would give the size back); a
-- unit whose events, cases or cases without the event are suppressed shows
-- neither its counts nor its limits nor its band
INSERT INTO fp_pr VALUES ('P21', 4, 40), ('P22', 30, 33), ('P23', 21, 212);
SELECT unit, numerator, denominator, round(ratio::numeric, 4) AS ratio,
       lower_998 = funnel_limit(fit, denominator, 0.001) AS limit_at_shown_size, band, suppressed
  FROM funnel('SELECT unit, events, cases FROM fp_pr', 'PR', policy => 'opensafely') WHERE unit IN ('P01', 'P21', 'P22', 'P23') ORDER BY unit;
DELETE FROM fp_pr WHERE unit IN ('P21', 'P22', 'P23');

-- 6. indirect standardisation: expected = sum of cases x reference rate by stratum
CREATE TABLE fp_episode (provider text, died boolean, age_band text, sex text);
INSERT INTO fp_episode
SELECT 'H' || (i % 4), (i % 10 = 0) OR (i % 4 = 3 AND i % 7 = 0),
       (ARRAY['0-49', '50-74', '75+'])[1 + i % 3], (ARRAY['1', '2'])[1 + (i / 3) % 2]
  FROM generate_series(1, 4000) i;
SELECT * FROM indirect_standardise('fp_episode', 'provider', 'died', ARRAY['age_band', 'sex']);
-- the expected counts add up to the observed ones when the reference is the source
SELECT round(sum(expected)::numeric, 6) = sum(observed) AS totals_agree
  FROM indirect_standardise('fp_episode', 'provider', 'died', ARRAY['age_band', 'sex']);
-- by hand, for H0: its cases in each stratum times the stratum's rate
SELECT round(sum(c.n * r.rate)::numeric, 9) AS h0_expected_by_hand
  FROM (SELECT age_band, sex, count(*) AS n FROM fp_episode WHERE provider = 'H0' GROUP BY 1, 2) c
  JOIN (SELECT age_band, sex, avg(died::int) AS rate FROM fp_episode GROUP BY 1, 2) r USING (age_band, sex);

-- 7. the SVG: well-formed XML, four limit curves, the outliers labelled, a legend and a title
SELECT xpath_exists('/s:svg/s:title', x, ARRAY[ARRAY['s', 'http://www.w3.org/2000/svg']]) AS has_title,
       array_length(xpath('//s:polyline[@class="limit"]', x, ARRAY[ARRAY['s', 'http://www.w3.org/2000/svg']]), 1) AS limit_curves,
       array_length(xpath('//s:circle[contains(@class, "unit")]', x, ARRAY[ARRAY['s', 'http://www.w3.org/2000/svg']]), 1) AS points,
       (xpath('//s:text[@class="label"]/text()', x, ARRAY[ARRAY['s', 'http://www.w3.org/2000/svg']]))::text[] AS labels,
       xpath_exists('//s:g[@id="legend"]', x, ARRAY[ARRAY['s', 'http://www.w3.org/2000/svg']]) AS has_legend
  FROM (SELECT xmlparse(DOCUMENT funnel_svg('SELECT unit, observed, expected FROM fp_sr', 'Deaths <30 days & more', policy => 'opensafely')) AS x) s;
-- text is escaped
SELECT position('Deaths &lt;30 days &amp; more' IN funnel_svg('SELECT unit, observed, expected FROM fp_sr', 'Deaths <30 days & more', policy => 'opensafely')) > 0 AS title_escaped;

-- 8. the aggregate's state: text form round-trips, binary COPY too
SELECT s::text::funnel_state = s AS text_round_trip,
       (_funnel_final(s::text::funnel_state)).phi = (_funnel_final(s)).phi AS same_fit
  FROM (SELECT _funnel_add(_funnel_add(NULL, 3, 2.5, 'SR', 'CQC', 0.1), 7, 6.25, 'SR', 'CQC', 0.1) AS s) x;
CREATE TABLE fp_states (s funnel_state, f funnel_fit, r funnel_row);
INSERT INTO fp_states SELECT _funnel_add(NULL, 3, 10, 'PR', 'SHMI', 0.2), funnel_fit(events, cases, 'PR'),
                             (SELECT r FROM funnel('SELECT unit, events, cases FROM fp_pr', 'PR') r LIMIT 1) FROM fp_pr;
\copy fp_states TO 'results/fp_states.bin' (FORMAT binary)
CREATE TABLE fp_states2 (LIKE fp_states);
\copy fp_states2 FROM 'results/fp_states.bin' (FORMAT binary)
SELECT (SELECT s::text FROM fp_states) = (SELECT s::text FROM fp_states2) AS state_binary_round_trip,
       (SELECT f::text FROM fp_states) = (SELECT f::text FROM fp_states2) AS fit_binary_round_trip,
       (SELECT r::text FROM fp_states) = (SELECT r::text FROM fp_states2) AS row_binary_round_trip;

-- 9. the same answer through the serial and the parallel plan
CREATE TABLE fp_units AS
SELECT 'U' || i AS unit, round(e * (CASE WHEN i % 97 = 0 THEN 1.6 ELSE 0.9 + (i % 13) / 60.0 END)) AS observed, e AS expected
  FROM generate_series(1, 20000) i, LATERAL (SELECT 20 + (i * 7919) % 500 AS e) x;
ANALYZE fp_units;
CREATE TEMP TABLE fp_serial AS SELECT funnel_fit(observed, expected)::text AS f FROM fp_units;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT funnel_fit(observed, expected) FROM fp_units;
SELECT funnel_fit(observed, expected)::text = (SELECT f FROM fp_serial) AS parallel_equals_serial FROM fp_units;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;

-- 10. refusals: a clear error, the right SQLSTATE, a hint
\set VERBOSITY default
SELECT funnel_limit('XX', 10, 1, 0.975);
SELECT funnel_limit('SR', 0, 1, 0.975);
SELECT funnel_limit('SR', 10, 1, 1.5);
SELECT funnel_limit('PR', 10, 1.5, 0.975);
SELECT funnel_limit('SR', 10, 1, 0.975, 'guess');
SELECT funnel_limit('RC', 10, 1, 0.975, 'exact');
SELECT funnel_limit('SR', 10, 1, 0.975, 'tau2', 1, -1);
SELECT funnel_fit(5, 4, 'PR');
SELECT funnel_fit(-1, 4);
SELECT funnel_fit(1, 4, 'SR', 'SHMI', 0.6);
SELECT * FROM funnel('SELECT unit, observed, expected FROM fp_sr', method => 'guess');
SELECT * FROM funnel('SELECT unit, observed, expected FROM fp_sr', flag_limit => 90);
SELECT * FROM indirect_standardise('fp_episode', 'provider', 'died', ARRAY[]::name[]);
SELECT funnel_svg('SELECT unit, observed, expected FROM fp_sr WHERE false');
-- NULL units are left out; no units, no rows
SELECT (funnel_fit(observed, expected)).units FROM (VALUES (NULL::float8, 1::float8), (3, 2.5)) v(observed, expected);
SELECT count(*) FROM funnel('SELECT unit, observed, expected FROM fp_sr WHERE false');
