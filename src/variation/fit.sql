-- src/variation/fit.sql
-- Over-dispersion of a set of units, as FunnelPlotR and Spiegelhalter
-- (2005, 2012) estimate it: the aggregate caredata.funnel_fit() takes one
-- row per unit (numerator, denominator) and returns the target, the
-- multiplicative phi and the additive tau2.
--
-- Per unit, a z-score on a variance-stabilising scale: PR
-- (asin sqrt(y/n) - asin sqrt(target)) 2 sqrt(n); SR by the SHMI method
-- sqrt(E) log(O/E), by the CQC method (sqrt(O/E) - 1) 2 sqrt(E); RC
-- (log((y + 0.5)/(n + 0.5)) - log target) / sqrt(y/(y + 0.5)^2 + n/(n + 0.5)^2).
-- The z-scores are Winsorised at the trim_by and 1 - trim_by quantiles
-- (R's type 7, as percentile_cont), or, for SHMI, truncated (units ranked
-- into 1/trim_by groups, the first and last dropped); phi is the mean
-- squared z over the n units kept, and tau2 is DerSimonian and Laird's
-- (n phi - (n - 1)) / (sum w - sum w^2 / sum w), w = 1/s^2, or 0 when
-- n phi < n - 1.  SR's expected counts are rounded to 2 places for SHMI,
-- as FunnelPlotR does.

CREATE TYPE caredata.funnel_state AS (
  data_type     text,
  sr_method     text,
  trim_by       double precision,
  numerators    double precision[],
  denominators  double precision[]
);
COMMENT ON TYPE caredata.funnel_state IS
  'state of the caredata.funnel_fit aggregate: its settings and every unit''s numerator and denominator (text form round-trips, so partial states travel between parallel workers)';

CREATE TYPE caredata.funnel_fit AS (
  data_type   text,
  sr_method   text,
  trim_by     double precision,
  units       integer,
  units_used  integer,
  target      double precision,
  phi         double precision,
  tau2        double precision
);
COMMENT ON TYPE caredata.funnel_fit IS
  'a funnel plot''s fit: data type, method, trim, units (and units kept after truncation), target, multiplicative phi, additive tau2';

CREATE FUNCTION caredata._funnel_add(s caredata.funnel_state, numerator double precision, denominator double precision,
                                     data_type text, sr_method text, trim_by double precision)
  RETURNS caredata.funnel_state LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  dt text := upper(data_type);
  m text := CASE WHEN upper(data_type) = 'SR' THEN upper(sr_method) ELSE 'WINSORISE' END;
BEGIN
  IF numerator IS NULL OR denominator IS NULL THEN
    RETURN s;
  END IF;
  IF dt IS NULL OR dt NOT IN ('PR', 'SR', 'RC') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('unknown data type "%s"', data_type),
      HINT = 'Use PR (a proportion), SR (an indirectly standardised ratio) or RC (a ratio of counts).';
  END IF;
  IF m IS NULL OR m NOT IN ('SHMI', 'CQC', 'WINSORISE') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('unknown standardised-ratio method "%s"', sr_method),
      HINT = 'Use SHMI (log scale, truncation) or CQC (square-root scale, Winsorisation).';
  END IF;
  IF trim_by IS NULL OR NOT (trim_by >= 0 AND trim_by < 0.5) THEN
    RAISE EXCEPTION USING ERRCODE = '22003', MESSAGE = 'trim_by must lie in [0, 0.5)',
      HINT = '0.1 (10% at each end) is FunnelPlotR''s default.';
  END IF;
  IF NOT (numerator >= 0 AND numerator < 'Infinity') OR NOT (denominator > 0 AND denominator < 'Infinity') THEN
    RAISE EXCEPTION USING ERRCODE = '22003', MESSAGE = 'a unit needs a numerator of 0 or more and a positive denominator',
      HINT = 'Leave out units with no cases (or no expected events).';
  END IF;
  IF dt = 'PR' AND numerator > denominator THEN
    RAISE EXCEPTION USING ERRCODE = '22003', MESSAGE = 'a proportion''s numerator exceeds its denominator',
      HINT = 'For PR the numerator counts events among the denominator''s cases.';
  END IF;
  IF s IS NULL OR s.data_type IS NULL THEN
    RETURN ROW(dt, m, trim_by, ARRAY[numerator], ARRAY[denominator])::caredata.funnel_state;
  END IF;
  IF (s.data_type, s.sr_method, s.trim_by) IS DISTINCT FROM (dt, m, trim_by) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a funnel fit''s data type, method and trim are the same for every unit';
  END IF;
  s.numerators := s.numerators || numerator;
  s.denominators := s.denominators || denominator;
  RETURN s;
END
$$;
COMMENT ON FUNCTION caredata._funnel_add(caredata.funnel_state, double precision, double precision, text, text, double precision) IS
  'internal: transition function of caredata.funnel_fit';
CREATE FUNCTION caredata._funnel_add(s caredata.funnel_state, numerator double precision, denominator double precision, data_type text)
  RETURNS caredata.funnel_state LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN caredata._funnel_add(s, numerator, denominator, data_type, 'SHMI', 0.1);
COMMENT ON FUNCTION caredata._funnel_add(caredata.funnel_state, double precision, double precision, text) IS
  'internal: transition function of caredata.funnel_fit (SHMI, trim 0.1)';
CREATE FUNCTION caredata._funnel_add(s caredata.funnel_state, numerator double precision, denominator double precision)
  RETURNS caredata.funnel_state LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN caredata._funnel_add(s, numerator, denominator, 'SR', 'SHMI', 0.1);
COMMENT ON FUNCTION caredata._funnel_add(caredata.funnel_state, double precision, double precision) IS
  'internal: transition function of caredata.funnel_fit (SR, SHMI, trim 0.1)';

CREATE FUNCTION caredata._funnel_combine(a caredata.funnel_state, b caredata.funnel_state)
  RETURNS caredata.funnel_state LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF a IS NULL OR a.data_type IS NULL THEN RETURN b; END IF;
  IF b IS NULL OR b.data_type IS NULL THEN RETURN a; END IF;
  IF (a.data_type, a.sr_method, a.trim_by) IS DISTINCT FROM (b.data_type, b.sr_method, b.trim_by) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a funnel fit''s data type, method and trim are the same for every unit';
  END IF;
  a.numerators := a.numerators || b.numerators;
  a.denominators := a.denominators || b.denominators;
  RETURN a;
END
$$;
COMMENT ON FUNCTION caredata._funnel_combine(caredata.funnel_state, caredata.funnel_state) IS
  'internal: combine function of caredata.funnel_fit (parallel partial states)';

CREATE FUNCTION caredata._funnel_final(s caredata.funnel_state)
  RETURNS caredata.funnel_fit LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  f caredata.funnel_fit;
BEGIN
  IF s IS NULL OR s.data_type IS NULL THEN
    RETURN NULL;
  END IF;
  WITH u AS (
    SELECT o, CASE WHEN s.sr_method = 'SHMI' THEN round(e::numeric, 2)::float8 ELSE e END AS e
      FROM unnest(s.numerators, s.denominators) x(o, e)
  ), t AS (
    SELECT CASE WHEN s.data_type = 'SR' THEN 1.0::float8 ELSE sum(o ORDER BY o, e) / sum(e ORDER BY o, e) END AS target,
           count(*)::int AS units
      FROM u
  ), z AS (
    SELECT u.o, u.e, t.target,
           CASE WHEN s.data_type = 'PR' THEN 1 / (2 * sqrt(u.e))
                WHEN s.data_type = 'RC' THEN sqrt(u.o / ((u.o + 0.5) ^ 2) + u.e / ((u.e + 0.5) ^ 2))
                WHEN s.sr_method = 'SHMI' THEN 1 / sqrt(u.e)
                ELSE 1 / (2 * sqrt(u.e)) END AS sd,
           CASE WHEN s.data_type = 'PR' THEN (asin(sqrt(u.o / u.e)) - asin(sqrt(t.target))) * 2 * sqrt(u.e)
                WHEN s.data_type = 'RC' THEN (ln((u.o + 0.5) / (u.e + 0.5)) - ln(t.target))
                                             / sqrt(u.o / ((u.o + 0.5) ^ 2) + u.e / ((u.e + 0.5) ^ 2))
                WHEN s.sr_method = 'SHMI' THEN CASE WHEN u.o = 0 THEN '-Infinity'::float8 ELSE sqrt(u.e) * ln(u.o / u.e) END
                ELSE (sqrt(u.o / u.e) - 1) * 2 * sqrt(u.e) END AS z
      FROM u, t
  ), ranked AS (
    SELECT z.*, count(*) OVER () AS n_all,
           rank() OVER (ORDER BY z.z) + (count(*) OVER (PARTITION BY z.z) - 1) / 2.0 AS rk
      FROM z
  ), bounds AS (
    SELECT percentile_cont(s.trim_by) WITHIN GROUP (ORDER BY z) AS lz,
           percentile_cont(1 - s.trim_by) WITHIN GROUP (ORDER BY z) AS uz
      FROM z
  ), kept AS (
    -- SHMI truncates; the others Winsorise
    SELECT r.sd,
           CASE WHEN s.sr_method = 'SHMI' THEN r.z ELSE least(greatest(r.z, b.lz), b.uz) END AS wz
      FROM ranked r, bounds b
     WHERE s.sr_method <> 'SHMI' OR s.trim_by = 0
        OR (floor(r.rk * (1 / s.trim_by) / (r.n_all + 1)) > 0
            AND floor(r.rk * (1 / s.trim_by) / (r.n_all + 1)) < round(1 / s.trim_by) - 1)
  ), agg AS (
    SELECT count(*)::int AS n, avg(wz ^ 2 ORDER BY wz) AS phi,
           sum(1 / sd ^ 2 ORDER BY sd) AS sw, sum(1 / sd ^ 4 ORDER BY sd) AS sw2
      FROM kept
  )
  SELECT s.data_type, CASE WHEN s.data_type = 'SR' THEN s.sr_method END, s.trim_by, t.units, agg.n, t.target, agg.phi,
         CASE WHEN agg.n < 2 OR agg.n * agg.phi < agg.n - 1 THEN 0
              ELSE greatest(0, (agg.n * agg.phi - (agg.n - 1)) / (agg.sw - agg.sw2 / agg.sw)) END
    INTO f
    FROM t, agg;
  RETURN f;
END
$$;
COMMENT ON FUNCTION caredata._funnel_final(caredata.funnel_state) IS
  'internal: final function of caredata.funnel_fit: target, phi (Winsorised or truncated z-scores) and tau2 (DerSimonian-Laird)';

CREATE AGGREGATE caredata.funnel_fit(numerator double precision, denominator double precision,
                                     data_type text, sr_method text, trim_by double precision) (
  SFUNC = caredata._funnel_add, STYPE = caredata.funnel_state,
  COMBINEFUNC = caredata._funnel_combine, FINALFUNC = caredata._funnel_final,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE caredata.funnel_fit(double precision, double precision, text, text, double precision) IS
  'a funnel plot''s fit over one row per unit: target, phi and tau2 for data type PR, SR or RC, SR method SHMI or CQC, trimming trim_by at each end';
CREATE AGGREGATE caredata.funnel_fit(numerator double precision, denominator double precision, data_type text) (
  SFUNC = caredata._funnel_add, STYPE = caredata.funnel_state,
  COMBINEFUNC = caredata._funnel_combine, FINALFUNC = caredata._funnel_final,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE caredata.funnel_fit(double precision, double precision, text) IS
  'a funnel plot''s fit over one row per unit, for data type PR, SR or RC (SR by the SHMI method, trimming 10% at each end)';
CREATE AGGREGATE caredata.funnel_fit(numerator double precision, denominator double precision) (
  SFUNC = caredata._funnel_add, STYPE = caredata.funnel_state,
  COMBINEFUNC = caredata._funnel_combine, FINALFUNC = caredata._funnel_final,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE caredata.funnel_fit(double precision, double precision) IS
  'a funnel plot''s fit over one row per unit (observed, expected): a standardised ratio by the SHMI method, trimming 10% at each end';

-- a limit for a fitted funnel: its target and over-dispersion
CREATE FUNCTION caredata.funnel_limit(fit caredata.funnel_fit, size double precision, probability double precision,
                                      method text DEFAULT 'tau2')
  RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  -- unadjusted: FunnelPlotR's limits without over-dispersion (exact for SR,
  -- the transformed scale with tau2 = 0 for PR and RC)
  RETURN caredata.funnel_limit(fit.data_type, size, fit.target, probability,
                               CASE WHEN lower(method) <> 'unadjusted' THEN method WHEN fit.data_type = 'SR' THEN 'exact' ELSE 'tau2' END,
                               CASE WHEN fit.phi > 0 THEN fit.phi ELSE 1 END,
                               CASE WHEN lower(method) = 'unadjusted' THEN 0 ELSE fit.tau2 END, coalesce(fit.sr_method, 'SHMI'));
COMMENT ON FUNCTION caredata.funnel_limit(caredata.funnel_fit, double precision, double precision, text) IS
  'funnel plot limit at a unit''s size for a fit from caredata.funnel_fit(): its target, and its phi (method phi) or tau2 (method tau2); method unadjusted: exact for SR, tau2 = 0 for PR and RC';
