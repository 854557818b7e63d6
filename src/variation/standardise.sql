-- src/variation/standardise.sql
-- Expected counts by indirect standardisation: the reference population's
-- rate in each stratum (age band and sex, or any columns), applied to each
-- unit's case mix.  expected(unit) = sum over strata of cases(unit,
-- stratum) * events(reference, stratum) / cases(reference, stratum).
-- A NULL stratum value (an unknown age, say) is a stratum of its own; a
-- stratum the reference lacks contributes nothing expected.

CREATE FUNCTION caredata.indirect_standardise(source regclass, unit_column name, outcome_column name, strata name[],
                                              reference regclass DEFAULT NULL)
  RETURNS TABLE (unit text, cases bigint, observed bigint, expected double precision)
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s text;
  j text;
BEGIN
  IF coalesce(cardinality(strata), 0) = 0 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'name the strata columns',
      HINT = 'For example ARRAY[''age_band'', ''sex'']; the reference''s rate in each stratum gives each unit''s expected count.';
  END IF;
  SELECT string_agg(format('%I', c), ', '), string_agg(format('c.%1$I IS NOT DISTINCT FROM r.%1$I', c), ' AND ')
    INTO s, j FROM unnest(strata) c;
  RETURN QUERY EXECUTE format($q$
    WITH ref AS (
      SELECT %1$s, sum((%3$I)::int)::float8 / count(*) AS rate
        FROM %4$s GROUP BY %1$s
    ), cells AS (
      SELECT (%2$I)::text AS unit, %1$s, count(*) AS cases, sum((%3$I)::int) AS events
        FROM %5$s WHERE %2$I IS NOT NULL GROUP BY 1, %1$s
    )
    SELECT c.unit, sum(c.cases)::bigint, sum(c.events)::bigint, sum(c.cases * coalesce(r.rate, 0))
      FROM cells c LEFT JOIN ref r ON %6$s
     GROUP BY c.unit ORDER BY c.unit$q$,
    s, unit_column, outcome_column, coalesce(reference, source), source, j);
END
$$;
COMMENT ON FUNCTION caredata.indirect_standardise(regclass, name, name, name[], regclass) IS
  'observed and expected events per unit by indirect standardisation: the reference''s (default: the source''s) rate in each stratum applied to each unit''s cases; outcome is boolean or 0/1';
