-- src/sdc/person_values.sql
-- person_values, each person's contribution behind an aggregate
-- (src/sdc/person_values.c), and the safe sums, means and rates: shown only
-- when more people than the policy's suppress_max contribute and no one
-- dominates (the policy's (n, k) and p% rules).  The state is a real type
-- with text input and output that round-trip; its SSPACE steers the planner
-- to sorted aggregation (see src/sdc/person_set.sql).

CREATE TYPE caredata.person_values;
CREATE FUNCTION caredata.person_values_in(cstring) RETURNS caredata.person_values
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.person_values_out(caredata.person_values) RETURNS cstring
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.person_values_recv(internal) RETURNS caredata.person_values
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.person_values_send(caredata.person_values) RETURNS bytea
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE caredata.person_values (
  INPUT = caredata.person_values_in, OUTPUT = caredata.person_values_out,
  RECEIVE = caredata.person_values_recv, SEND = caredata.person_values_send,
  INTERNALLENGTH = VARIABLE, ALIGNMENT = double, STORAGE = extended);
COMMENT ON TYPE caredata.person_values IS
  'each person''s contribution to a safe sum, mean or rate, with the rows and their sum; text form "<policy>|<rows>|<sum>|<hex key>=<value>,..."';
COMMENT ON FUNCTION caredata.person_values_in(cstring) IS 'person_values text input';
COMMENT ON FUNCTION caredata.person_values_out(caredata.person_values) IS 'person_values text output (keys sorted, values to 17 significant digits)';
COMMENT ON FUNCTION caredata.person_values_recv(internal) IS 'person_values binary input (validates)';
COMMENT ON FUNCTION caredata.person_values_send(caredata.person_values) IS 'person_values binary output';

CREATE FUNCTION caredata._person_values_combine(caredata.person_values, caredata.person_values) RETURNS caredata.person_values
  AS 'MODULE_PATHNAME', 'person_table_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_values_safe_sum(caredata.person_values) RETURNS double precision
  AS 'MODULE_PATHNAME', 'person_values_safe_sum' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_values_safe_avg(caredata.person_values) RETURNS double precision
  AS 'MODULE_PATHNAME', 'person_values_safe_avg' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_values_safe_rate(caredata.person_values) RETURNS double precision
  AS 'MODULE_PATHNAME', 'person_values_safe_rate' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata._person_values_combine(caredata.person_values, caredata.person_values) IS 'internal: combine function of safe_sum, safe_avg and safe_rate';
COMMENT ON FUNCTION caredata._person_values_safe_sum(caredata.person_values) IS 'internal: final function of safe_sum';
COMMENT ON FUNCTION caredata._person_values_safe_avg(caredata.person_values) IS 'internal: final function of safe_avg';
COMMENT ON FUNCTION caredata._person_values_safe_rate(caredata.person_values) IS 'internal: final function of safe_rate';

DO $aggs$
DECLARE
  t text;
  c text;
  kind text;
BEGIN
  -- (text: a pseudonym as published views show it, keyed as the pseudonym)
  FOREACH t IN ARRAY ARRAY['bigint', 'caredata.nhs_number', 'caredata.pseudonym', 'text'] LOOP
    c := CASE t WHEN 'caredata.pseudonym' THEN 'bytes24' WHEN 'text' THEN 'text' ELSE 'int8' END;
    FOREACH kind IN ARRAY ARRAY['', ', text'] LOOP
      EXECUTE format($f$
        CREATE FUNCTION caredata._person_values_add(caredata.person_values, double precision, %1$s%2$s) RETURNS caredata.person_values
          AS 'MODULE_PATHNAME', 'person_values_add_%3$s' LANGUAGE C IMMUTABLE PARALLEL SAFE;
        CREATE FUNCTION caredata._person_values_any(caredata.person_values, boolean, %1$s%2$s) RETURNS caredata.person_values
          AS 'MODULE_PATHNAME', 'person_values_any_%3$s' LANGUAGE C IMMUTABLE PARALLEL SAFE;
        COMMENT ON FUNCTION caredata._person_values_add(caredata.person_values, double precision, %1$s%2$s) IS
          'internal: transition function of safe_sum and safe_avg';
        COMMENT ON FUNCTION caredata._person_values_any(caredata.person_values, boolean, %1$s%2$s) IS
          'internal: transition function of safe_rate';
        CREATE AGGREGATE caredata.safe_sum(value double precision, person %1$s%2$s) (
          SFUNC = caredata._person_values_add, STYPE = caredata.person_values, SSPACE = 1000000000,
          COMBINEFUNC = caredata._person_values_combine, FINALFUNC = caredata._person_values_safe_sum, PARALLEL = SAFE);
        CREATE AGGREGATE caredata.safe_avg(value double precision, person %1$s%2$s) (
          SFUNC = caredata._person_values_add, STYPE = caredata.person_values, SSPACE = 1000000000,
          COMBINEFUNC = caredata._person_values_combine, FINALFUNC = caredata._person_values_safe_avg, PARALLEL = SAFE);
        CREATE AGGREGATE caredata.safe_rate(condition boolean, person %1$s%2$s) (
          SFUNC = caredata._person_values_any, STYPE = caredata.person_values, SSPACE = 1000000000,
          COMBINEFUNC = caredata._person_values_combine, FINALFUNC = caredata._person_values_safe_rate, PARALLEL = SAFE);
        COMMENT ON AGGREGATE caredata.safe_sum(double precision, %1$s%2$s) IS
          'sum of value, NULL unless more people than the policy''s suppress_max contribute and no one dominates (its (n, k) and p%% rules)';
        COMMENT ON AGGREGATE caredata.safe_avg(double precision, %1$s%2$s) IS
          'mean of value over rows, NULL unless more people than the policy''s suppress_max contribute and no one dominates';
        COMMENT ON AGGREGATE caredata.safe_rate(boolean, %1$s%2$s) IS
          'share of distinct people with the condition on any of their rows, from the two counts as the policy publishes them (rounded); NULL when either would be suppressed';
        $f$, t, kind, c);
    END LOOP;
  END LOOP;
END
$aggs$;
