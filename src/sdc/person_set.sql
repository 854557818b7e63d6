-- src/sdc/person_set.sql
-- person_set, the distinct people behind an aggregate (src/sdc/person_set.c),
-- and the safe counting aggregates: count people, not rows, and publish the
-- count as the disclosure-control policy allows.  The state is a real type
-- with text input and output that round-trip, so partial aggregation can be
-- pushed to parallel workers and to the nodes of a distributed engine.

CREATE TYPE caredata.person_set;
CREATE FUNCTION caredata.person_set_in(cstring) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.person_set_out(caredata.person_set) RETURNS cstring
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.person_set_recv(internal) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.person_set_send(caredata.person_set) RETURNS bytea
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE caredata.person_set (
  INPUT = caredata.person_set_in, OUTPUT = caredata.person_set_out,
  RECEIVE = caredata.person_set_recv, SEND = caredata.person_set_send,
  INTERNALLENGTH = VARIABLE, ALIGNMENT = double, STORAGE = extended);
COMMENT ON TYPE caredata.person_set IS
  'the distinct people counted by a safe aggregate (64-bit keys; a pseudonym hashed) and the policy the call named; text form "<policy>:<hex key>,..."';
COMMENT ON FUNCTION caredata.person_set_in(cstring) IS 'person_set text input: "<policy>:<hex key>,<hex key>,..."';
COMMENT ON FUNCTION caredata.person_set_out(caredata.person_set) IS 'person_set text output (keys sorted)';
COMMENT ON FUNCTION caredata.person_set_recv(internal) IS 'person_set binary input (validates)';
COMMENT ON FUNCTION caredata.person_set_send(caredata.person_set) IS 'person_set binary output';

-- SSPACE: a group's state grows with the group's people, and PostgreSQL's
-- hash aggregation checks its memory only when it creates a group, never
-- when a state grows: every group's set stays in memory at once, past
-- work_mem (355 MB for 10,000 groups of 1,000 people, 1.5x slower than
-- sorting by group).  Declaring a large state steers the planner to sorted
-- aggregation, which holds one group's state at a time; at 16 kB it still
-- chose hashing there.  Measured in bench/safe_count.sql.

-- transition, combine and final functions (internal: call the aggregates)
CREATE FUNCTION caredata._person_set_add(caredata.person_set, bigint) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_set_add_int8' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_add(caredata.person_set, caredata.nhs_number) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_set_add_int8' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_add(caredata.person_set, caredata.pseudonym) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_set_add_bytes24' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_add(caredata.person_set, bigint, text) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_set_add_int8' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_add(caredata.person_set, caredata.nhs_number, text) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_set_add_int8' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_add(caredata.person_set, caredata.pseudonym, text) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_set_add_bytes24' LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- (a pseudonym as published views show it, text: keyed as the pseudonym
-- itself, so that the states of both combine; any other text is refused, 22P02)
CREATE FUNCTION caredata._person_set_add(caredata.person_set, text) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_set_add_text' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_add(caredata.person_set, text, text) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_set_add_text' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_union(caredata.person_set, caredata.person_set) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_table_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_safe_count(caredata.person_set) RETURNS bigint
  AS 'MODULE_PATHNAME', 'person_set_safe_count' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_safe_text(caredata.person_set) RETURNS text
  AS 'MODULE_PATHNAME', 'person_set_safe_text' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata._person_set_add(caredata.person_set, bigint) IS 'internal: transition function of the safe counting aggregates';
COMMENT ON FUNCTION caredata._person_set_add(caredata.person_set, caredata.nhs_number) IS 'internal: transition function of the safe counting aggregates';
COMMENT ON FUNCTION caredata._person_set_add(caredata.person_set, caredata.pseudonym) IS 'internal: transition function of the safe counting aggregates';
COMMENT ON FUNCTION caredata._person_set_add(caredata.person_set, bigint, text) IS 'internal: transition function of the safe counting aggregates (policy named)';
COMMENT ON FUNCTION caredata._person_set_add(caredata.person_set, caredata.nhs_number, text) IS 'internal: transition function of the safe counting aggregates (policy named)';
COMMENT ON FUNCTION caredata._person_set_add(caredata.person_set, caredata.pseudonym, text) IS 'internal: transition function of the safe counting aggregates (policy named)';
COMMENT ON FUNCTION caredata._person_set_add(caredata.person_set, text) IS 'internal: transition function of the safe counting aggregates (a pseudonym''s text form)';
COMMENT ON FUNCTION caredata._person_set_add(caredata.person_set, text, text) IS 'internal: transition function of the safe counting aggregates (a pseudonym''s text form, policy named)';
COMMENT ON FUNCTION caredata._person_set_union(caredata.person_set, caredata.person_set) IS 'internal: combine function of the safe counting aggregates, and the union of person sets';
COMMENT ON FUNCTION caredata._person_set_safe_count(caredata.person_set) IS 'internal: final function, the published count of distinct people (NULL when suppressed)';
COMMENT ON FUNCTION caredata._person_set_safe_text(caredata.person_set) IS 'internal: final function, the published count for display';

DO $aggs$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['bigint', 'caredata.nhs_number', 'caredata.pseudonym', 'text'] LOOP
    EXECUTE format($a$
      CREATE AGGREGATE caredata.safe_count(person %1$s) (
        SFUNC = caredata._person_set_add, STYPE = caredata.person_set, SSPACE = 1000000000,
        COMBINEFUNC = caredata._person_set_union, FINALFUNC = caredata._person_set_safe_count, PARALLEL = SAFE);
      CREATE AGGREGATE caredata.safe_count(person %1$s, policy text) (
        SFUNC = caredata._person_set_add, STYPE = caredata.person_set, SSPACE = 1000000000,
        COMBINEFUNC = caredata._person_set_union, FINALFUNC = caredata._person_set_safe_count, PARALLEL = SAFE);
      CREATE AGGREGATE caredata.safe_count_text(person %1$s) (
        SFUNC = caredata._person_set_add, STYPE = caredata.person_set, SSPACE = 1000000000,
        COMBINEFUNC = caredata._person_set_union, FINALFUNC = caredata._person_set_safe_text, PARALLEL = SAFE);
      CREATE AGGREGATE caredata.safe_count_text(person %1$s, policy text) (
        SFUNC = caredata._person_set_add, STYPE = caredata.person_set, SSPACE = 1000000000,
        COMBINEFUNC = caredata._person_set_union, FINALFUNC = caredata._person_set_safe_text, PARALLEL = SAFE);
      CREATE AGGREGATE caredata.person_set_agg(person %1$s) (
        SFUNC = caredata._person_set_add, STYPE = caredata.person_set, SSPACE = 1000000000,
        COMBINEFUNC = caredata._person_set_union, PARALLEL = SAFE);
      COMMENT ON AGGREGATE caredata.safe_count(%1$s) IS
        'distinct people, published as the caredata.sdc_policy setting allows: NULL when suppressed, else rounded';
      COMMENT ON AGGREGATE caredata.safe_count(%1$s, text) IS
        'distinct people, published as the named disclosure-control policy allows: NULL when suppressed, else rounded';
      COMMENT ON AGGREGATE caredata.safe_count_text(%1$s) IS
        'distinct people for display, as the caredata.sdc_policy setting allows: the number, or the policy''s mark (* or [REDACTED]); over a Citus distributed table write safe_count_text(...) COLLATE "C" to sort or store it (Citus''s combine drops the collation: docs/scale-out.md)';
      COMMENT ON AGGREGATE caredata.safe_count_text(%1$s, text) IS
        'distinct people for display, as the named policy allows: the number, or the policy''s mark (* or [REDACTED]); over a Citus distributed table write safe_count_text(...) COLLATE "C" to sort or store it (Citus''s combine drops the collation: docs/scale-out.md)';
      COMMENT ON AGGREGATE caredata.person_set_agg(%1$s) IS
        'the set of distinct people (a partial state of safe_count, to combine later with safe_count(person_set))';
      $a$, t);
  END LOOP;
END
$aggs$;

-- partial states combined later: the published count of their union
CREATE AGGREGATE caredata.safe_count(caredata.person_set) (
  SFUNC = caredata._person_set_union, STYPE = caredata.person_set, SSPACE = 1000000000,
  COMBINEFUNC = caredata._person_set_union, FINALFUNC = caredata._person_set_safe_count, PARALLEL = SAFE);
CREATE AGGREGATE caredata.safe_count_text(caredata.person_set) (
  SFUNC = caredata._person_set_union, STYPE = caredata.person_set, SSPACE = 1000000000,
  COMBINEFUNC = caredata._person_set_union, FINALFUNC = caredata._person_set_safe_text, PARALLEL = SAFE);
COMMENT ON AGGREGATE caredata.safe_count(caredata.person_set) IS
  'the published count of distinct people in the union of partial states (person_set_agg), under the policy they were counted with';
COMMENT ON AGGREGATE caredata.safe_count_text(caredata.person_set) IS
  'the union of partial states for display; over a Citus distributed table write safe_count_text(...) COLLATE "C" to sort or store it (Citus''s combine drops the collation: docs/scale-out.md)';
