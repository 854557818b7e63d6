-- sql/variation_disclosure.sql: funnel plots under disclosure control
-- (issue 24, section 7).  Bands and outlier flags come from the true
-- counts, what is shown stays as the policy publishes it, a suppressed
-- unit has no band or flag, and what a band tells of a protected count is
-- measured (the figures quoted in docs/variation.md, "Small numbers").
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
RESET client_min_messages;
SET search_path = caredata, public;
SET extra_float_digits = 0;
-- the default policy: 1 to 7 suppressed, the rest rounded to the nearest 5
SELECT current_setting('caredata.sdc_policy') AS default_policy, sdc_apply(132) AS shown_132, sdc_apply(128) AS shown_128;

-- the 20 standardised ratios of sql/variation.sql
CREATE TABLE fd_sr (unit text, observed double precision, expected double precision);
INSERT INTO fd_sr VALUES
  ('U01', 113, 132.91), ('U02', 204, 216.67), ('U03', 34, 27.91), ('U04', 67, 32.59), ('U05', 42, 40.83),
  ('U06', 96, 93.18), ('U07', 358, 379.35), ('U08', 36, 23.4), ('U09', 110, 119.4), ('U10', 298, 327.37),
  ('U11', 241, 234.73), ('U12', 67, 29.8), ('U13', 23, 28.54), ('U14', 126, 129.09), ('U15', 178, 184.01),
  ('U16', 92, 101.42), ('U17', 252, 212.45), ('U18', 320, 392.17), ('U19', 203, 170.16), ('U20', 27, 20.49);

-- where a ratio sits against a fit's limits at a size (funnel()'s bands)
CREATE FUNCTION fd_band(f funnel_fit, y double precision, size double precision, method text) RETURNS text
  LANGUAGE sql IMMUTABLE
  RETURN CASE WHEN y > funnel_limit(f, size, 0.999, method) THEN 'above 99.8%' WHEN y > funnel_limit(f, size, 0.975, method) THEN 'above 95%'
              WHEN y < funnel_limit(f, size, 0.001, method) THEN 'below 99.8%' WHEN y < funnel_limit(f, size, 0.025, method) THEN 'below 95%'
              ELSE 'within' END;

-- 1. 132 deaths where 184.0 were expected, published as 130.  At this size
-- the lower 99.8% limit is 131.17 deaths: 130 would be an outlier, 132 is
-- not.  The flag is the true count's; the count, the ratio and the z shown
-- are the published 130's.
INSERT INTO fd_sr VALUES ('U21', 132, 184.0);
SELECT unit, numerator, denominator, round(ratio::numeric, 6) AS ratio, round(z::numeric, 4) AS z,
       round((lower_998 * denominator)::numeric, 2) AS lower_998_deaths, band, outlier,
       ratio < lower_998 AS shown_point_below_lower_998,
       ratio * denominator = 130 AS ratio_from_published_count,
       z = _funnel_z(fit, 130, 184.0, limits) AS z_from_published_count
  FROM funnel('SELECT unit, observed, expected FROM fd_sr') WHERE unit = 'U21';
-- its band from the true count, and the band the rounded count would have had
SELECT fd_band(f, 132 / 184.0, 184.0, 'tau2') AS band_of_132, fd_band(f, 130 / 184.0, 184.0, 'tau2') AS band_of_130
  FROM (SELECT funnel_fit(observed, expected) AS f FROM fd_sr) x;
-- the other way: 128 deaths where 181.0 were expected (limit 128.87) is an
-- outlier, although the published 130 would not be
UPDATE fd_sr SET observed = 128, expected = 181.0 WHERE unit = 'U21';
SELECT unit, numerator, round(ratio::numeric, 6) AS ratio, round((lower_998 * denominator)::numeric, 2) AS lower_998_deaths,
       band, outlier, ratio > lower_998 AS shown_point_inside_lower_998
  FROM funnel('SELECT unit, observed, expected FROM fd_sr') WHERE unit = 'U21';
-- the plot draws the point at the published count, flags it on the true
-- one, and says so
SELECT (xpath('//s:text[@class="label"]/text()', x, ARRAY[ARRAY['s', 'http://www.w3.org/2000/svg']]))::text[] AS labelled,
       (xpath('//s:circle[@data-unit="U21"]/@class', x, ARRAY[ARRAY['s', 'http://www.w3.org/2000/svg']]))[1]::text AS u21_class,
       (xpath('//s:circle[@data-unit="U21"]/s:title/text()', x, ARRAY[ARRAY['s', 'http://www.w3.org/2000/svg']]))[1]::text AS u21_tooltip,
       (xpath('//s:text[@class="flag-note"]/text()', x, ARRAY[ARRAY['s', 'http://www.w3.org/2000/svg']]))[1]::text AS note
  FROM (SELECT xmlparse(DOCUMENT funnel_svg('SELECT unit, observed, expected FROM fd_sr')) AS x) s;

-- 2. what the flag discloses: a reader who knows the published 130 and the
-- limits shown (for SR, at the expected count, which is published) knows
-- the true count is one of 128..132; the band keeps those on its side of
-- the limit.  For U21 at 184.0 expected that is 132 alone.
UPDATE fd_sr SET observed = 132, expected = 184.0 WHERE unit = 'U21';
SELECT r.numerator AS published, array_agg(c ORDER BY c) FILTER (WHERE sdc_apply(c) = r.numerator) AS published_could_be,
       array_agg(c ORDER BY c) FILTER (WHERE sdc_apply(c) = r.numerator
                                         AND fd_band(r.fit, c / r.denominator, r.denominator, r.limits) = r.band) AS with_its_band
  FROM funnel('SELECT unit, observed, expected FROM fd_sr') r, generate_series(0, 300) c
 WHERE r.unit = 'U21' GROUP BY r.numerator;

-- 3. a suppressed count has no band and no flag.  7 deaths where 1.8 were
-- expected: with the exact limits (above 95% from 6.89 deaths) its band
-- would say "above 95%", which of 1..7 only 7 is
INSERT INTO fd_sr VALUES ('S01', 7, 1.8);
SELECT unit, numerator, denominator, ratio, z, round(upper_95::numeric * 1.8, 2) AS upper_95_deaths, band, outlier, suppressed
  FROM funnel('SELECT unit, observed, expected FROM fd_sr', method => 'exact') WHERE unit = 'S01';
SELECT array_agg(c ORDER BY c) AS suppressed_could_be,
       array_agg(c ORDER BY c) FILTER (WHERE fd_band(ROW('SR', 'SHMI', 0.1, 1, 1, 1, 1, 0)::funnel_fit, c / 1.8, 1.8, 'exact') = 'above 95%')
         AS with_the_band_it_would_have_had
  FROM generate_series(1, 7) c;
-- so it is named, not drawn, and not labelled
SELECT position('Not shown (small numbers, disclosure control): S01' IN svg) > 0 AS named_in_footnote,
       position('data-unit="S01"' IN svg) = 0 AS not_drawn
  FROM funnel_svg('SELECT unit, observed, expected FROM fd_sr', method => 'exact') svg;
-- proportions and ratios of counts: the band is the true ratio against the
-- limits at the true size; the limits shown are at the published size
CREATE TABLE fd_pr (unit text, events double precision, cases double precision);
INSERT INTO fd_pr VALUES
  ('P01', 197, 2335), ('P02', 209, 2146), ('P03', 202, 2971), ('P04', 105, 1497), ('P05', 225, 2936),
  ('P06', 355, 2410), ('P07', 68, 816), ('P08', 50, 619), ('P09', 172, 2319), ('P10', 153, 1634),
  ('P11', 66, 648), ('P12', 122, 1707), ('P13', 229, 2504), ('P14', 217, 2880), ('P15', 221, 2795),
  ('P16', 20, 212), ('P17', 171, 2465), ('P18', 194, 2473), ('P19', 21, 322), ('P20', 112, 1319),
  ('P21', 68, 502);
-- P21: 68 of 502, published as 70 of 500, is within the upper 99.8% limit
-- at 502, while 70 of 500 is beyond the one at 500: not an outlier
SELECT r.unit, r.numerator, r.denominator, r.lower_998 = funnel_limit(r.fit, r.denominator, 0.001, r.limits) AS limits_at_published_size,
       r.band = fd_band(r.fit, t.events / t.cases, t.cases, r.limits) AS band_from_true_counts, r.band
  FROM funnel('SELECT unit, events, cases FROM fd_pr', 'PR') r JOIN fd_pr t USING (unit)
 WHERE r.unit IN ('P06', 'P16', 'P19', 'P21') ORDER BY r.unit;
SELECT unit, numerator, denominator, ratio > upper_998 AS shown_point_beyond_upper_998, band, outlier
  FROM funnel('SELECT unit, events, cases FROM fd_pr', 'PR') WHERE unit = 'P21';
SELECT count(*) AS units, count(*) FILTER (WHERE r.band = fd_band(r.fit, t.events / t.cases, t.cases, r.limits)) AS band_from_true_counts
  FROM funnel('SELECT unit, events, cases FROM fd_pr', 'PR') r JOIN fd_pr t USING (unit);

-- 4. the figures of docs/variation.md.  Standardised ratios, the default
-- policy, expected counts 5.0 to 500.0 in steps of 0.5, every true count
-- up to past the upper 99.8% limit; the limits of U01..U21's fit (tau2)
-- and the exact ones.  A published count stands for the true counts that
-- publish as it (5 of them, 8 to 12 for 10); the band keeps those on the
-- true count's side of each limit.
CREATE TABLE fd_grid AS
SELECT m.method, e, c, sdc_apply(c) AS published, fd_band(m.f, c / e, e, m.method) AS band
  FROM (SELECT 'tau2' AS method, funnel_fit(observed, expected) AS f FROM fd_sr WHERE unit <> 'S01'
        UNION ALL SELECT 'exact', ROW('SR', 'SHMI', 0.1, 1, 1, 1, 1, 0)::funnel_fit) m,
       generate_series(5.0, 500.0, 0.5) e,
       generate_series(0, ceil(funnel_limit(m.f, e, 0.999, m.method) * e)::int + 5) c;
CREATE TABLE fd_left AS
SELECT g.method, g.e, g.c, g.published,
       count(*) OVER (PARTITION BY g.method, g.e, g.published) AS could_be,
       count(*) OVER (PARTITION BY g.method, g.e, g.published, g.band) AS with_band
  FROM fd_grid g WHERE g.published IS NOT NULL;
-- per method: sizes; true counts published (not suppressed); of those, how
-- many the band narrows, to how many values on average, and how many it
-- pins to one; per size, the counts narrowed and pinned
SELECT method, count(DISTINCT e) AS sizes, count(*) AS true_counts,
       count(*) FILTER (WHERE with_band < could_be) AS narrowed,
       round(avg(with_band) FILTER (WHERE with_band < could_be), 2) AS narrowed_to_mean,
       count(*) FILTER (WHERE with_band = 1 AND could_be > 1) AS pinned,
       round(count(*) FILTER (WHERE with_band < could_be)::numeric / count(DISTINCT e), 2) AS narrowed_per_size,
       round(count(*) FILTER (WHERE with_band = 1 AND could_be > 1)::numeric / count(DISTINCT e), 2) AS pinned_per_size
  FROM fd_left GROUP BY method ORDER BY method;
-- the published groups a limit falls in: how often, and what is left
SELECT method, with_band, count(*) AS true_counts
  FROM fd_left WHERE with_band < could_be GROUP BY 1, 2 ORDER BY 1, 2;
-- suppressed counts (1..7), expected counts 0.1 to 20.0: what a band would
-- tell if it were shown (it is not)
CREATE TABLE fd_small AS
SELECT m.method, e, c, count(*) OVER (PARTITION BY m.method, e, fd_band(m.f, c / e, e, m.method)) AS with_band
  FROM (SELECT 'tau2' AS method, funnel_fit(observed, expected) AS f FROM fd_sr WHERE unit <> 'S01'
        UNION ALL SELECT 'exact', ROW('SR', 'SHMI', 0.1, 1, 1, 1, 1, 0)::funnel_fit) m,
       generate_series(0.1, 20.0, 0.1) e, generate_series(1, 7) c;
SELECT method, count(*) AS suppressed_counts, count(*) FILTER (WHERE with_band < 7) AS narrowed,
       count(*) FILTER (WHERE with_band = 1) AS pinned,
       count(DISTINCT e) FILTER (WHERE with_band = 1) AS sizes_with_a_pinned_count
  FROM fd_small GROUP BY method ORDER BY method;

DROP TABLE fd_sr, fd_pr, fd_grid, fd_left, fd_small;
DROP FUNCTION fd_band;
