-- src/variation/funnel.sql
-- Per unit, in one call: numerator, denominator, ratio, z-score, the 95%
-- and 99.8% limits at its size, where it sits and whether it is an
-- outlier; small units follow the disclosure-control policy.

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
  fit          caredata.funnel_fit
);
COMMENT ON TYPE caredata.funnel_row IS
  'a unit in a funnel plot (caredata.funnel()): numerator, denominator, ratio, z-score, limits at its size, band (above/below 95%/99.8% or within), outlier flag, suppressed, and the fit';

CREATE FUNCTION caredata.funnel(units text, data_type text DEFAULT 'SR', method text DEFAULT 'tau2',
                                sr_method text DEFAULT 'SHMI', trim_by double precision DEFAULT 0.1,
                                flag_limit numeric DEFAULT 99.8, policy text DEFAULT NULL)
  RETURNS SETOF caredata.funnel_row
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE AS $$
DECLARE
  names text[];
  nums float8[];
  dens float8[];
  f caredata.funnel_fit;
  m text := lower(method);
  lm text;
BEGIN
  IF m IS NULL OR m NOT IN ('exact', 'normal', 'phi', 'tau2') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('unknown limit method "%s"', method),
      HINT = 'Use tau2 (additive random effects, the default), phi (multiplicative), exact or normal.';
  END IF;
  IF flag_limit IS NULL OR flag_limit NOT IN (95, 99.8) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'flag_limit is 95 or 99.8',
      HINT = 'A unit is an outlier beyond the limits of this level.';
  END IF;
  -- the units: the query's first three columns, one row per unit
  EXECUTE format('SELECT array_agg(x.u::text ORDER BY x.u::text), array_agg(x.n::float8 ORDER BY x.u::text), array_agg(x.d::float8 ORDER BY x.u::text) FROM (%s) AS x(u, n, d)', units)
    INTO names, nums, dens;
  IF names IS NULL THEN
    RETURN;
  END IF;
  f := (SELECT caredata.funnel_fit(n, d, data_type, sr_method, trim_by) FROM unnest(nums, dens) v(n, d));
  -- as FunnelPlotR: no over-dispersion found, unadjusted limits
  lm := CASE WHEN m = 'tau2' AND f.tau2 = 0 AND f.data_type = 'SR' THEN 'exact' ELSE m END;
  RETURN QUERY
  WITH u AS (
    SELECT v.u, v.n, v.d,
           caredata.funnel_limit(f, v.d, 0.001, lm) AS l998, caredata.funnel_limit(f, v.d, 0.025, lm) AS l95,
           caredata.funnel_limit(f, v.d, 0.975, lm) AS u95, caredata.funnel_limit(f, v.d, 0.999, lm) AS u998,
           -- what the policy lets us show of the counts
           caredata.sdc_apply(round(v.n)::bigint, policy) AS shown_n,
           (f.data_type = 'SR' OR caredata.sdc_apply(round(v.d)::bigint, policy) IS NOT NULL)
           AND (f.data_type <> 'PR' OR caredata.sdc_apply(round(v.d - v.n)::bigint, policy) IS NOT NULL) AS shown_d
      FROM unnest(names, nums, dens) v(u, n, d)
  ), p AS (
    SELECT u.*, (shown_n IS NULL OR NOT shown_d) AS hidden,
           CASE WHEN u.n / u.d > u998 THEN 'above 99.8%' WHEN u.n / u.d > u95 THEN 'above 95%'
                WHEN u.n / u.d < l998 THEN 'below 99.8%' WHEN u.n / u.d < l95 THEN 'below 95%'
                ELSE 'within' END AS pos
      FROM u
  )
  SELECT p.u,
         CASE WHEN p.hidden THEN NULL ELSE p.shown_n::float8 END,
         CASE WHEN p.hidden AND f.data_type <> 'SR' THEN NULL ELSE p.d END,
         CASE WHEN p.hidden THEN NULL ELSE p.shown_n / p.d END,
         CASE WHEN p.hidden THEN NULL ELSE caredata._funnel_z(f, p.shown_n, p.d, lm) END,
         p.l998, p.l95, p.u95, p.u998, p.pos,
         CASE WHEN flag_limit = 95 THEN p.pos <> 'within' ELSE p.pos IN ('above 99.8%', 'below 99.8%') END,
         p.hidden, f
    FROM p ORDER BY p.u;
END
$$;
COMMENT ON FUNCTION caredata.funnel(text, text, text, text, double precision, numeric, text) IS
  'per unit of a query (unit, numerator, denominator): ratio, z-score, 95% and 99.8% limits at its size, band, outlier flag (beyond flag_limit); counts a disclosure-control policy suppresses are not shown';

-- a unit's z-score on the scale its limits use
CREATE FUNCTION caredata._funnel_z(f caredata.funnel_fit, n double precision, d double precision, method text)
  RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN method IN ('exact', 'normal', 'phi') AND f.data_type IN ('PR', 'SR') THEN
      (n / d - f.target) / sqrt(CASE WHEN f.data_type = 'PR' THEN f.target * (1 - f.target) ELSE f.target END / d)
      / CASE WHEN method = 'phi' THEN sqrt(f.phi) ELSE 1 END
    WHEN f.data_type = 'PR' THEN (asin(sqrt(n / d)) - asin(sqrt(f.target))) / sqrt(1 / (4 * d) + f.tau2)
    WHEN f.data_type = 'RC' THEN (ln((n + 0.5) / (d + 0.5)) - ln(f.target)) / sqrt(1 / (4 * d) + f.tau2)
    WHEN f.sr_method = 'CQC' THEN (sqrt(n / d) - 1) / sqrt(1 / (4 * d) + f.tau2)
    WHEN n = 0 THEN '-Infinity'::float8
    ELSE ln(n / d) / sqrt(1 / d + f.tau2) END
$$;
COMMENT ON FUNCTION caredata._funnel_z(caredata.funnel_fit, double precision, double precision, text) IS
  'internal: a unit''s z-score on the scale of its limits (method exact/normal/phi: (y - target)/sqrt(V/size), over sqrt(phi) for phi; tau2: the transformed scale with tau2 added)';
