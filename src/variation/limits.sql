-- src/variation/limits.sql
-- Funnel plot control limits (src/variation/limits.c): where a unit of a
-- given size sits at a given probability if it performs as the target.

CREATE FUNCTION caredata.funnel_limit(data_type text, size double precision, target double precision,
                                      probability double precision, method text DEFAULT 'exact',
                                      phi double precision DEFAULT 1, tau2 double precision DEFAULT 0,
                                      sr_method text DEFAULT 'SHMI')
  RETURNS double precision AS 'MODULE_PATHNAME', 'funnel_limit' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.funnel_limit(text, double precision, double precision, double precision, text, double precision, double precision, text) IS
  'funnel plot limit at a unit''s size: data_type PR (proportion), SR (standardised ratio) or RC (ratio of counts); probability 0.001/0.025/0.975/0.999; method exact, normal, phi (multiplicative over-dispersion) or tau2 (additive random effects, sr_method SHMI or CQC)';
