-- src/variation/funnel.sql
-- Per unit, in one call: numerator, denominator, ratio, z-score, the 95%
-- and 99.8% limits at its size, where it sits and whether it is an
-- outlier; small units follow the disclosure-control policy: counts,
-- ratios and limits are shown as the policy publishes them, bands and
-- flags come from the true counts, and a suppressed unit has neither.

CREATE TYPE caredata.funnel_row AS (
  unit         text,
  numerator    double precision,
  denominator  double precision,
  ratio        double precision,
  z            double precision,
  lower_998    double precision,
  lower_95     double precision,
  upper_95     double precision,
  upper_998    double precision,
  band         text,
  outlier      boolean,
  suppressed   boolean,
  limits       text,
  fit          caredata.funnel_fit
);
COMMENT ON TYPE caredata.funnel_row IS
  'a unit in a funnel plot (caredata.funnel()): numerator, denominator, ratio, z-score, limits at its size (as the disclosure-control policy publishes them), band (above/below 95%/99.8% or within) and outlier flag (from the true counts; NULL when suppressed), suppressed, the limits'' method, and the fit';

CREATE FUNCTION caredata._funnel(unit_keys text[], unit_nums text[], unit_dens text[], data_type text, method text,
                                 sr_method text, trim_by double precision, flag_limit numeric, policy text)
  RETURNS SETOF caredata.funnel_row
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  names text[];
  nums float8[];
  dens float8[];
  f caredata.funnel_fit;
  m text := lower(method);
  lm text;
BEGIN
  IF m IS NULL OR m NOT IN ('exact', 'normal', 'phi', 'tau2', 'unadjusted') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('unknown limit method "%s"', method),
      HINT = 'Use tau2 (additive random effects, the default), phi (multiplicative), exact, normal or unadjusted.';
  END IF;
  IF flag_limit IS NULL OR flag_limit NOT IN (95, 99.8) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'flag_limit is 95 or 99.8',
      HINT = 'A unit is an outlier beyond the limits of this level.';
  END IF;
  -- the units: the query's first three columns, one row per unit
  SELECT array_agg(x.u ORDER BY x.u), array_agg(x.n::float8 ORDER BY x.u), array_agg(x.d::float8 ORDER BY x.u)
    INTO names, nums, dens FROM unnest(unit_keys, unit_nums, unit_dens) AS x(u, n, d);
  IF names IS NULL THEN
    RETURN;
  END IF;
  f := (SELECT caredata.funnel_fit(n, d, data_type, sr_method, trim_by) FROM unnest(nums, dens) v(n, d));
  -- as FunnelPlotR: no over-dispersion (phi <= 1), unadjusted limits
  lm := CASE WHEN m = 'tau2' AND f.phi <= 1 THEN 'unadjusted' ELSE m END;
  -- What is shown of a unit is what the policy publishes of its counts:
  -- the numerator, and for PR and RC the denominator (for PR the cases
  -- without the event too).  The ratio, z and the limits shown are
  -- computed from the shown counts, so that none of them gives an exact
  -- count back (a limit at size n gives n back).  The band and the flag
  -- are the true counts': the true ratio against the limits at the true
  -- size (issue 24: a rounded count must not make or unmake an outlier).
  -- What a band tells of a protected count is in docs/variation.md.  A
  -- unit the policy suppresses keeps its row, and for SR its expected
  -- count and limits (not counts), but no band and no flag: a band of a
  -- count of 1 to suppress_max can pin it to one value.
  RETURN QUERY
  WITH u AS (
    SELECT v.u, v.n, v.d,
           caredata.sdc_apply(round(v.n)::bigint, policy)::float8 AS sn,
           CASE WHEN f.data_type = 'SR' THEN v.d ELSE caredata.sdc_apply(round(v.d)::bigint, policy)::float8 END AS sd,
           f.data_type = 'PR' AND caredata.sdc_apply(round(v.d - v.n)::bigint, policy) IS NULL AS rest_hidden
      FROM unnest(names, nums, dens) v(u, n, d)
  ), h AS (
    SELECT u.*, (sn IS NULL OR sd IS NULL OR sd <= 0 OR rest_hidden) AS hidden FROM u
  ), l AS (
    SELECT h.*, CASE WHEN hidden THEN d ELSE sd END AS size, CASE WHEN hidden THEN NULL ELSE sn / sd END AS y
      FROM h
  ), p AS (
    -- the limits shown, at the shown size; the band's, at the true size
    SELECT l.*,
           caredata.funnel_limit(f, l.size, 0.001, lm) AS l998, caredata.funnel_limit(f, l.size, 0.025, lm) AS l95,
           caredata.funnel_limit(f, l.size, 0.975, lm) AS u95, caredata.funnel_limit(f, l.size, 0.999, lm) AS u998,
           caredata.funnel_limit(f, l.d, 0.001, lm) AS t_l998, caredata.funnel_limit(f, l.d, 0.025, lm) AS t_l95,
           caredata.funnel_limit(f, l.d, 0.975, lm) AS t_u95, caredata.funnel_limit(f, l.d, 0.999, lm) AS t_u998
      FROM l
  ), q AS (
    SELECT p.*,
           CASE WHEN hidden THEN NULL
                WHEN n / d > t_u998 THEN 'above 99.8%' WHEN n / d > t_u95 THEN 'above 95%'
                WHEN n / d < t_l998 THEN 'below 99.8%' WHEN n / d < t_l95 THEN 'below 95%'
                ELSE 'within' END AS pos,
           -- what may be shown when the unit is suppressed: SR's expected count and limits (not counts)
           NOT hidden OR f.data_type = 'SR' AS show_size
      FROM p
  )
  SELECT q.u,
         CASE WHEN q.hidden THEN NULL ELSE q.sn END,
         CASE WHEN q.show_size THEN q.size END,
         q.y,
         CASE WHEN q.hidden THEN NULL ELSE caredata._funnel_z(f, q.sn, q.sd, lm) END,
         CASE WHEN q.show_size THEN q.l998 END, CASE WHEN q.show_size THEN q.l95 END,
         CASE WHEN q.show_size THEN q.u95 END, CASE WHEN q.show_size THEN q.u998 END,
         q.pos,
         CASE WHEN flag_limit = 95 THEN q.pos <> 'within' ELSE q.pos IN ('above 99.8%', 'below 99.8%') END,
         q.hidden, lm, f
    FROM q ORDER BY q.u;
END
$$;
COMMENT ON FUNCTION caredata._funnel(text[], text[], text[], text, text, text, double precision, numeric, text) IS
  'internal: caredata.funnel() on the units of its query (caredata._query_columns)';
-- the caller's query runs as the caller, under the caller's search_path
-- (caredata._query_columns); the rest under caredata's own
CREATE FUNCTION caredata.funnel(units text, data_type text DEFAULT 'SR', method text DEFAULT 'tau2',
                                sr_method text DEFAULT 'SHMI', trim_by double precision DEFAULT 0.1,
                                flag_limit numeric DEFAULT 99.8, policy text DEFAULT NULL)
  RETURNS SETOF caredata.funnel_row
  LANGUAGE sql STABLE PARALLEL UNSAFE
BEGIN ATOMIC
  SELECT f.* FROM caredata._query_columns(units, 3) q,
                  caredata._funnel(q.c1, q.c2, q.c3, funnel.data_type, funnel.method, funnel.sr_method,
                                   funnel.trim_by, funnel.flag_limit, funnel.policy) f;
END;
COMMENT ON FUNCTION caredata.funnel(text, text, text, text, double precision, numeric, text) IS
  'per unit of a query (unit, numerator, denominator): ratio, z-score, 95% and 99.8% limits at its size, band, outlier flag (beyond flag_limit, from the true counts); counts, ratios and limits as a disclosure-control policy publishes them; a suppressed unit has no band or flag';

-- a unit's z-score on the scale its limits use
CREATE FUNCTION caredata._funnel_z(f caredata.funnel_fit, n double precision, d double precision, method text)
  RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
  SELECT CASE
    WHEN (method IN ('exact', 'normal', 'phi') AND f.data_type IN ('PR', 'SR')) OR (method = 'unadjusted' AND f.data_type = 'SR') THEN
      (n / d - f.target) / sqrt(CASE WHEN f.data_type = 'PR' THEN f.target * (1 - f.target) ELSE f.target END / d)
      / CASE WHEN method = 'phi' THEN sqrt(f.phi) ELSE 1 END
    WHEN f.data_type = 'PR' THEN (asin(sqrt(n / d)) - asin(sqrt(f.target))) / sqrt(1 / (4 * d) + t.tau2)
    WHEN f.data_type = 'RC' THEN (ln((n + 0.5) / (d + 0.5)) - ln(f.target)) / sqrt(1 / (4 * d) + t.tau2)
    WHEN f.sr_method = 'CQC' THEN (sqrt(n / d) - 1) / sqrt(1 / (4 * d) + t.tau2)
    WHEN n = 0 THEN '-Infinity'::float8
    ELSE ln(n / d) / sqrt(1 / d + t.tau2) END
    FROM (SELECT CASE WHEN method = 'unadjusted' THEN 0 ELSE f.tau2 END AS tau2) t;
END;
COMMENT ON FUNCTION caredata._funnel_z(caredata.funnel_fit, double precision, double precision, text) IS
  'internal: a unit''s z-score on the scale of its limits (method exact/normal/phi, and unadjusted SR: (y - target)/sqrt(V/size), over sqrt(phi) for phi; tau2, and unadjusted PR/RC: the transformed scale with tau2, or 0, added)';
