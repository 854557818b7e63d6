-- sql/objection_hardening.sql: the attacks that got past the objection
-- filter (issue 13), each replayed as the role that made it, each now
-- refused.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS caredata CASCADE;
CREATE EXTENSION caredata;
RESET client_min_messages;
SET search_path = public, caredata;
\i sql/include/refusal.psql

CREATE ROLE regress_h_owner NOLOGIN IN ROLE caredata_admin;
GRANT CREATE ON SCHEMA public TO regress_h_owner;
CREATE ROLE regress_h_analyst NOLOGIN IN ROLE caredata_analyst;
CREATE ROLE regress_h_patient NOLOGIN IN ROLE caredata_patient;
CREATE ROLE regress_h_viewer NOLOGIN;

-- four patients with two episodes each, two rows with no NHS number; two
-- patients have opted out; the patient role is 999 000 0042
SET ROLE regress_h_owner;
CREATE TABLE h_episode (id int, nhs_number nhs_number, specialty text, cost int);
INSERT INTO h_episode
SELECT row_number() OVER (), n::nhs_number, s, 100
FROM unnest(ARRAY['999 000 0018', '999 000 0026', '999 000 0034', '999 000 0042']) n,
     unnest(ARRAY['100', '300']) s;
INSERT INTO h_episode VALUES (9, NULL, '100', 100), (10, NULL, '300', 100);
RESET ROLE;
SELECT record_objection('999 000 0026', 'national_data_opt_out', 'test', now() - interval '1 day') IS NOT NULL,
       record_objection('999 000 0034', 'type1', 'test', now() - interval '1 day') IS NOT NULL;
INSERT INTO subject_access (role, nhs_number) VALUES ('regress_h_patient', '999 000 0042');
SET ROLE regress_h_owner;
SELECT protect('h_episode', 'nhs_number', 'research');
GRANT SELECT, UPDATE, DELETE ON h_episode TO regress_h_analyst, regress_h_patient;

-- 1. rows with a NULL NHS number are nobody's own: a patient sees none of
-- them, directly or through a view owned by a role that is not a patient
CREATE VIEW h_by_viewer AS SELECT * FROM h_episode;
RESET ROLE;
ALTER VIEW h_by_viewer OWNER TO regress_h_viewer;
GRANT SELECT ON h_episode TO regress_h_viewer;
GRANT SELECT ON h_by_viewer TO regress_h_patient;
SET ROLE regress_h_patient;
SELECT count(*) AS own_rows, count(*) FILTER (WHERE nhs_number IS NULL) AS null_rows FROM h_episode;
SELECT count(*) AS via_view, count(*) FILTER (WHERE nhs_number IS NULL) AS null_rows_via_view FROM h_by_viewer;
SELECT count(*) AS asked_for_nulls FROM h_by_viewer WHERE nhs_number IS NULL;
RESET ROLE;
-- an analyst still sees rows without a number (no objection can be attached to them)
SET ROLE regress_h_analyst;
SELECT count(*) AS analyst_rows, count(*) FILTER (WHERE nhs_number IS NULL) AS null_rows FROM h_episode;
RESET ROLE;

-- 2. rows the filter hides can be neither updated nor deleted, even
-- without naming a column; RETURNING returns none of them
SET ROLE regress_h_analyst;
BEGIN;
WITH u AS (UPDATE h_episode SET cost = 0 RETURNING nhs_number) SELECT count(*) AS updated, count(DISTINCT nhs_number) AS patients FROM u;
UPDATE h_episode SET cost = 1 WHERE nhs_number = '999 000 0026' RETURNING id;
DELETE FROM h_episode WHERE nhs_number IN ('999 000 0026', '999 000 0034') RETURNING id;
WITH d AS (DELETE FROM h_episode RETURNING 1) SELECT count(*) AS deleted FROM d;
ROLLBACK;
RESET ROLE;
SET ROLE regress_h_patient;
BEGIN;
WITH u AS (UPDATE h_episode SET cost = 0 RETURNING id) SELECT count(*) AS patient_updated FROM u;
DELETE FROM h_episode RETURNING id;
ROLLBACK;
RESET ROLE;
-- the hidden rows are untouched
SELECT nhs_number, count(*), sum(cost) FROM h_episode WHERE nhs_number IN ('999 000 0026', '999 000 0034') GROUP BY 1 ORDER BY 1;
-- loading new rows is not filtered: the owner adds an objector's episode
SET ROLE regress_h_owner;
INSERT INTO h_episode VALUES (11, '999 000 0026', '100', 100);
RESET ROLE;
SELECT count(*) AS objector_rows_loaded FROM h_episode WHERE nhs_number = '999 000 0026';

-- 3. partitions and inheritance: protecting a parent protects every
-- partition and child, those attached later too; a partition alone cannot
-- be protected (its parent's path would stay open)
SET ROLE regress_h_owner;
CREATE TABLE h_part (id int, nhs_number nhs_number, year int) PARTITION BY RANGE (year);
CREATE TABLE h_part_2024 PARTITION OF h_part FOR VALUES FROM (2024) TO (2025);
CREATE TABLE h_part_2025 PARTITION OF h_part FOR VALUES FROM (2025) TO (2026) PARTITION BY LIST (id);
CREATE TABLE h_part_2025_a PARTITION OF h_part_2025 FOR VALUES IN (1, 2, 3, 4, 5, 6, 7, 8);
INSERT INTO h_part SELECT id, nhs_number, 2024 + id % 2 FROM h_episode WHERE id <= 8;
SELECT state, message, hint FROM pg_temp.refusal($$caredata.protect('h_part_2024', 'nhs_number', 'research')$$);
SELECT protect('h_part', 'nhs_number', 'research');
SELECT relid, root FROM protected_table WHERE root = 'h_part'::regclass ORDER BY relid::text;
-- a partition made or attached afterwards is protected in the same statement
CREATE TABLE h_part_2026 PARTITION OF h_part FOR VALUES FROM (2026) TO (2027);
CREATE TABLE h_part_2027 (id int, nhs_number nhs_number, year int);
INSERT INTO h_part_2027 VALUES (20, '999 000 0026', 2027), (21, '999 000 0018', 2027);
ALTER TABLE h_part ATTACH PARTITION h_part_2027 FOR VALUES FROM (2027) TO (2028);
INSERT INTO h_part VALUES (30, '999 000 0034', 2026), (31, '999 000 0042', 2026);
SELECT count(*) AS protected_tables FROM protected_table WHERE root = 'h_part'::regclass;
GRANT SELECT ON h_part, h_part_2024, h_part_2025, h_part_2025_a, h_part_2026, h_part_2027 TO regress_h_analyst;
RESET ROLE;
-- the analyst sees no objector through the parent or any partition
SET ROLE regress_h_analyst;
SELECT 'h_part' AS via, count(*) AS visible_objector_rows FROM h_part WHERE nhs_number IN ('999 000 0026', '999 000 0034')
UNION ALL SELECT 'h_part_2024', count(*) FROM h_part_2024 WHERE nhs_number IN ('999 000 0026', '999 000 0034')
UNION ALL SELECT 'h_part_2025', count(*) FROM h_part_2025 WHERE nhs_number IN ('999 000 0026', '999 000 0034')
UNION ALL SELECT 'h_part_2025_a', count(*) FROM h_part_2025_a WHERE nhs_number IN ('999 000 0026', '999 000 0034')
UNION ALL SELECT 'h_part_2026', count(*) FROM h_part_2026 WHERE nhs_number IN ('999 000 0026', '999 000 0034')
UNION ALL SELECT 'h_part_2027', count(*) FROM h_part_2027 WHERE nhs_number IN ('999 000 0026', '999 000 0034');
SELECT count(*) AS visible_rows FROM h_part;
RESET ROLE;
-- a child is unprotected only with its parent
SELECT state, message, hint FROM pg_temp.refusal($$caredata.unprotect('h_part_2024')$$);

-- classic inheritance: the same
SET ROLE regress_h_owner;
CREATE TABLE h_parent (id int, nhs_number nhs_number);
CREATE TABLE h_child () INHERITS (h_parent);
INSERT INTO h_parent SELECT id, nhs_number FROM h_episode WHERE id <= 4;
INSERT INTO h_child SELECT id, nhs_number FROM h_episode WHERE id BETWEEN 5 AND 8;
SELECT state, message FROM pg_temp.refusal($$caredata.protect('h_child', 'nhs_number', 'research')$$);
SELECT protect('h_parent', 'nhs_number', 'research');
CREATE TABLE h_child2 (id int, nhs_number nhs_number);
INSERT INTO h_child2 VALUES (40, '999 000 0026');
ALTER TABLE h_child2 INHERIT h_parent;
GRANT SELECT ON h_parent, h_child, h_child2 TO regress_h_analyst;
RESET ROLE;
SET ROLE regress_h_analyst;
SELECT 'h_parent' AS via, count(*) AS visible_objector_rows FROM h_parent WHERE nhs_number IN ('999 000 0026', '999 000 0034')
UNION ALL SELECT 'h_child', count(*) FROM h_child WHERE nhs_number IN ('999 000 0026', '999 000 0034')
UNION ALL SELECT 'h_child2', count(*) FROM h_child2 WHERE nhs_number IN ('999 000 0026', '999 000 0034');
RESET ROLE;
-- unprotecting the parent unprotects the hierarchy
SET ROLE regress_h_owner;
SELECT unprotect('h_parent');
RESET ROLE;
SELECT count(*) AS left_protected FROM protected_table WHERE root = 'h_parent'::regclass;
SELECT relname, relrowsecurity FROM pg_class WHERE relname IN ('h_parent', 'h_child', 'h_child2') ORDER BY relname;

-- 4. EXPLAIN of an index-only scan: "Heap Fetches" counts the heap visits
-- of hidden rows too, so it is cleared like the other counts (the same for
-- a hidden objector and a number nobody has)
CREATE INDEX h_episode_nhs ON h_episode (nhs_number);
GRANT SELECT ON h_episode TO regress_h_analyst;
SET ROLE regress_h_analyst;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM h_episode WHERE nhs_number = '999 000 0026';
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM h_episode WHERE nhs_number = '999 000 0050';
RESET enable_seqscan;
RESET enable_bitmapscan;
RESET ROLE;

-- 5. planner statistics: the estimates EXPLAIN prints for nhs_number = X
-- (and a bisection over nhs_number::bigint < X) would recover the stored
-- most common values, hidden objectors' among them.  A protected column
-- keeps no statistics: the objector's estimate is the same as a stranger's
SET ROLE regress_h_owner;
CREATE TABLE h_stats (nhs_number nhs_number, x int);
INSERT INTO h_stats SELECT '999 000 0026', i FROM generate_series(1, 400) i;
INSERT INTO h_stats SELECT '999 000 0018', i FROM generate_series(1, 300) i;
INSERT INTO h_stats SELECT try_nhs_number((9990000000 + i * 11)::text), i FROM generate_series(1, 3000) i
 WHERE try_nhs_number((9990000000 + i * 11)::text) IS NOT NULL;
CREATE INDEX h_stats_big ON h_stats ((nhs_number::bigint));
ANALYZE h_stats;
RESET ROLE;
SELECT count(*) > 0 AS stats_before FROM pg_stats WHERE tablename = 'h_stats' AND attname = 'nhs_number';
SET ROLE regress_h_owner;
SELECT protect('h_stats', 'nhs_number', 'research');
ANALYZE h_stats;
GRANT SELECT ON h_stats TO regress_h_analyst;
RESET ROLE;
SELECT count(*) AS column_stats_after, (SELECT count(*) FROM pg_statistic WHERE starelid = 'h_stats_big'::regclass) AS index_stats_after
  FROM pg_statistic WHERE starelid = 'h_stats'::regclass AND staattnum = 1;
SET ROLE regress_h_analyst;
CREATE FUNCTION pg_temp.estimate(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE j json;
BEGIN
  EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO j;
  RETURN (j -> 0 -> 'Plan' ->> 'Plan Rows')::bigint;
END $$;
SELECT pg_temp.estimate($$SELECT * FROM h_stats WHERE nhs_number = '999 000 0026'$$)
     = pg_temp.estimate($$SELECT * FROM h_stats WHERE nhs_number = '999 000 0050'$$) AS objector_looks_like_a_stranger,
       pg_temp.estimate($$SELECT * FROM h_stats WHERE nhs_number::bigint < 9990000027$$)
     = pg_temp.estimate($$SELECT * FROM h_stats WHERE nhs_number::bigint < 9990000019$$) AS bisection_learns_nothing;
RESET ROLE;
-- an expression index made later keeps none either
SET ROLE regress_h_owner;
CREATE INDEX h_stats_text ON h_stats ((nhs_number::text));
ANALYZE h_stats;
RESET ROLE;
SELECT count(*) AS later_index_stats FROM pg_statistic WHERE starelid = 'h_stats_text'::regclass;

-- 6. no setting names the shared memory segments workers read: the
-- caredata prefix is reserved, so a made-up one is refused
CREATE ROLE regress_h_user NOLOGIN;
SET ROLE regress_h_user;
SELECT state, message FROM pg_temp.refusal($$set_config('caredata.parallel_sets', '12345', true)$$);
RESET ROLE;
DROP ROLE regress_h_user;

-- 7. views that would read a protected table past its filter: a view owned
-- by a superuser (or a BYPASSRLS role) is not filtered, so the analyst it is
-- granted to would see every row.  Refused when made, when its owner
-- changes, and when the table under it is protected; security_invoker
-- views, views owned by filtered roles and published views are fine
SELECT state, message, hint FROM pg_temp.refusal($$caredata.protect('h_episode', 'nhs_number', 'planning')$$) WHERE false;
CREATE VIEW h_super_view AS SELECT * FROM h_episode;
CREATE VIEW h_invoker_view WITH (security_invoker) AS SELECT * FROM h_episode;
CREATE VIEW h_over_invoker AS SELECT * FROM h_invoker_view;
CREATE MATERIALIZED VIEW h_super_mv AS SELECT * FROM h_episode;
SET ROLE regress_h_owner;
CREATE VIEW h_owner_view AS SELECT * FROM h_episode;
RESET ROLE;
ALTER VIEW h_owner_view OWNER TO postgres;
ALTER VIEW h_invoker_view SET (security_invoker = false);
SELECT count(*) AS views_left FROM pg_class WHERE relname IN ('h_super_view', 'h_over_invoker', 'h_super_mv', 'h_invoker_view', 'h_owner_view');
-- a table protected under an existing superuser-owned view
CREATE TABLE h_later (nhs_number nhs_number);
CREATE VIEW h_later_view AS SELECT * FROM h_later;
SELECT state, message, hint FROM pg_temp.refusal($$caredata.protect('h_later', 'nhs_number', 'research')$$);
ALTER VIEW h_later_view SET (security_invoker = true);
SELECT protect('h_later', 'nhs_number', 'research');
SELECT unprotect('h_later');
DROP TABLE h_later CASCADE;

-- 8. enumeration: permitted() and row_permitted() answer only for the
-- protected column of the scan they filter, so no role (but superusers and
-- caredata_admin) learns whether a person of its choosing has objected.
-- Tried as the analyst and as the patient, by every route
CREATE FUNCTION pg_temp.enumerate(r text) RETURNS TABLE (route text, state text) LANGUAGE plpgsql AS $f$
DECLARE
  routes text[][] := ARRAY[
    ['constant', $$SELECT caredata.permitted('999 000 0026', 'research')$$],
    ['row_permitted constant', $$SELECT caredata.row_permitted('999 000 0026', 'research')$$],
    ['at a time, with a dataset', $$SELECT caredata.permitted('999 000 0026', 'research', now(), 'x')$$],
    ['subquery', $$SELECT caredata.permitted((SELECT '999 000 0026'::caredata.nhs_number), 'research')$$],
    ['VALUES', $$SELECT caredata.permitted(n, 'research') FROM (VALUES ('999 000 0026'::caredata.nhs_number)) v(n)$$],
    ['VALUES in WHERE', $$SELECT count(*) FROM (VALUES ('999 000 0026'::caredata.nhs_number)) v(n) WHERE caredata.permitted(n, 'research')$$],
    ['temporary table', $$SELECT count(*) FROM pg_temp.mine WHERE caredata.permitted(n, 'research')$$],
    ['set-returning function', $$SELECT caredata.permitted(n::caredata.nhs_number, 'research') FROM unnest(ARRAY['999 000 0026']) n$$],
    ['LATERAL', $$SELECT p FROM pg_temp.mine m, LATERAL (SELECT caredata.permitted(m.n, 'research') AS p) x$$],
    ['CTE', $$WITH c AS MATERIALIZED (SELECT '999 000 0026'::caredata.nhs_number AS n) SELECT count(*) FROM c WHERE caredata.permitted(n, 'research')$$],
    ['view with a computed column', $$SELECT count(*) FROM pg_temp.mine_view WHERE caredata.permitted(n2, 'research')$$],
    ['PL/pgSQL variable', $r$DO $d$ DECLARE v caredata.nhs_number := '999 000 0026'; b boolean; BEGIN b := caredata.permitted(v, 'research'); END $d$$r$],
    ['prepared statement', $$EXECUTE pg_temp_probe('999 000 0026')$$]];
BEGIN
  EXECUTE format('SET LOCAL ROLE %I', r);
  CREATE TEMP TABLE IF NOT EXISTS mine (n caredata.nhs_number);
  INSERT INTO mine VALUES ('999 000 0026');
  CREATE OR REPLACE TEMP VIEW mine_view AS SELECT n, (n::bigint + 0)::caredata.nhs_number AS n2 FROM mine;
  BEGIN
    PREPARE pg_temp_probe(caredata.nhs_number) AS SELECT caredata.permitted($1, 'research');
  EXCEPTION WHEN duplicate_prepared_statement THEN NULL;
  END;
  FOR i IN 1 .. array_length(routes, 1) LOOP
    route := routes[i][1];
    BEGIN
      EXECUTE routes[i][2];
      state := 'answered';
    EXCEPTION WHEN OTHERS THEN
      state := SQLSTATE || ' ' || split_part(SQLERRM, ' ', 1) || ' ' || split_part(SQLERRM, ' ', 2);
    END;
    RETURN NEXT;
  END LOOP;
  DEALLOCATE pg_temp_probe;
  DROP VIEW mine_view;
  DROP TABLE mine;
  RESET ROLE;
END
$f$;
GRANT EXECUTE ON FUNCTION caredata.permitted(caredata.nhs_number, text), caredata.permitted(caredata.nhs_number, text, timestamptz, text) TO regress_h_patient;
SELECT r AS role, e.route, e.state FROM unnest(ARRAY['regress_h_analyst', 'regress_h_patient']) r, pg_temp.enumerate(r) e;
REVOKE EXECUTE ON FUNCTION caredata.permitted(caredata.nhs_number, text), caredata.permitted(caredata.nhs_number, text, timestamptz, text) FROM regress_h_patient;
-- the filter itself still answers, on every plan shape, and the admin may ask
SET ROLE regress_h_analyst;
SELECT count(*) AS analyst_rows FROM h_episode;
SET enable_seqscan = off;
SELECT count(*) AS by_index FROM h_episode WHERE nhs_number = '999 000 0018';
RESET enable_seqscan;
RESET ROLE;
SET ROLE regress_h_owner;
SELECT caredata.permitted('999 000 0026', 'research') AS admin_may_ask;
RESET ROLE;

-- 9. a time that changes row by row (permitted(n, purpose, at_column,
-- dataset)) is answered by probing the register's index for the one number,
-- not by rebuilding the blocked set on every row: the answers equal
-- caredata.blocked_nhs_numbers() for every kind, withdrawal, exemption,
-- consent, dataset and purpose, at times before, between and after them
CREATE TABLE h_times (n nhs_number, at timestamptz);
DO $$
DECLARE t0 timestamptz := now() - interval '300 days';
BEGIN
  PERFORM record_objection('999 000 0018', 'national_data_opt_out', 'test', t0);
  PERFORM record_objection('999 000 0042', 'type1', 'test', t0 + interval '50 days');
  UPDATE objection SET withdrawn_at = t0 + interval '150 days' WHERE nhs_number = '999 000 0042' AND kind = 'type1';
  PERFORM record_objection('999 000 0050', 'dissent', 'test', t0 + interval '20 days', 'study_x');
  PERFORM record_objection('999 000 0069', 'national_data_opt_out', 'test', t0 + interval '10 days');
  PERFORM record_objection('999 000 0069', 'consent', 'test', t0 + interval '100 days', 'study_x', ARRAY['research']);
  INSERT INTO exemption (dataset, purpose, objection_kind, legal_basis, reference, expires_at)
  VALUES ('study_x', 'research', 'type1', 'cag_section_251', 'CAG test', now() + interval '1 day');
END $$;
INSERT INTO h_times
SELECT n::nhs_number, now() - d * interval '1 day'
  FROM unnest(ARRAY['999 000 0018', '999 000 0026', '999 000 0034', '999 000 0042', '999 000 0050', '999 000 0069', '999 000 0077']) n,
       generate_series(-2, 320, 7) d
 WHERE try_nhs_number(n) IS NOT NULL;
SELECT p, ds, count(*) AS asked,
       count(*) FILTER (WHERE permitted(n, p, at, ds)
                        IS DISTINCT FROM NOT EXISTS (SELECT 1 FROM blocked_nhs_numbers(p, ds, h_times.at) b WHERE b.nhs_number = h_times.n)) AS disagree,
       -- the register's twin for Citus (src/citus/citus.sql) gives the same answers
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM _blocked_nhs_numbers_citus(p, ds, h_times.at) b WHERE b.nhs_number = h_times.n)
                        IS DISTINCT FROM EXISTS (SELECT 1 FROM blocked_nhs_numbers(p, ds, h_times.at) b WHERE b.nhs_number = h_times.n)) AS citus_twin_disagrees,
       count(*) FILTER (WHERE NOT permitted(n, p, at, ds)) AS blocked
  FROM h_times, unnest(ARRAY['research', 'planning']) p, unnest(ARRAY[NULL, 'study_x']) ds
 GROUP BY 1, 2 ORDER BY 1, 2;
DROP TABLE h_times;

-- 10. one blocked set for every backend: the first backend to build a set
-- publishes it in shared memory; a new connection maps it instead of
-- reading the register again; a transaction that changed the register
-- (and may roll back) publishes nothing
SELECT count(*) AS shared_sets_before FROM blocked_sets() WHERE purpose = 'planning';
SELECT permitted('999 000 0026', 'planning') AS built_here;
SELECT register_version > 0 AS published, numbers, shared_uses FROM blocked_sets() WHERE purpose = 'planning';
\c -
SELECT caredata.permitted('999 000 0026', 'planning') AS mapped_by_a_new_backend;
SELECT numbers, shared_uses FROM caredata.blocked_sets() WHERE purpose = 'planning';
SET search_path = public, caredata;
SELECT numbers AS numbers_before FROM blocked_sets() WHERE purpose = 'planning' \gset
BEGIN;
SELECT record_objection('999 000 0085', 'type1', 'test', now() - interval '1 day') > 0 AS changed_in_this_transaction;
SELECT permitted('999 000 0085', 'planning') AS answered_from_its_own_set;
SELECT count(*) AS published_meanwhile FROM blocked_sets() WHERE purpose = 'planning' AND numbers <> :numbers_before;
ROLLBACK;
SELECT permitted('999 000 0085', 'planning') AS after_rollback;

-- 11. a filter made permissive (as Citus does on the shards of a table
-- distributed after protect(): docs/scale-out.md) would filter nothing, ORed
-- with the base policy; any plan reading such a table as a role row
-- security applies to is refused, on whichever node
CREATE TABLE h_shard (id int, nhs_number nhs_number);
INSERT INTO h_shard VALUES (1, '999 000 0077'), (2, '999 000 0026');
SELECT protect('h_shard', 'nhs_number', 'research');
GRANT SELECT ON h_shard TO regress_h_analyst;
SET ROLE regress_h_analyst;
SELECT count(*) AS while_restrictive FROM h_shard;
RESET ROLE;
-- (DDL cannot do this to a protected table: the guard is set aside, as
-- Citus's copy to the shards sets it aside; sql/objection_protection.sql)
ALTER EVENT TRIGGER caredata_protection_drop_guard DISABLE;
DO $$
DECLARE q text;
BEGIN
  SELECT pg_get_expr(polqual, polrelid) INTO q FROM pg_policy WHERE polrelid = 'h_shard'::regclass AND polname = 'caredata_objection';
  DROP POLICY caredata_objection ON h_shard;
  EXECUTE format('CREATE POLICY caredata_objection ON h_shard AS PERMISSIVE FOR ALL USING (%s)', q);
END $$;
ALTER EVENT TRIGGER caredata_protection_drop_guard ENABLE ALWAYS;
SET ROLE regress_h_analyst;
SELECT count(*) FROM h_shard;
SELECT * FROM h_shard WHERE id = 1;
RESET ROLE;
SELECT count(*) AS superuser_unfiltered FROM h_shard;

SET client_min_messages = warning;
DROP TABLE h_shard;
DROP TABLE h_episode, h_part, h_parent, h_child2, h_stats CASCADE;
DROP OWNED BY regress_h_owner, regress_h_analyst, regress_h_patient, regress_h_viewer;
DROP ROLE regress_h_owner, regress_h_analyst, regress_h_patient, regress_h_viewer;
DROP EXTENSION caredata CASCADE;
RESET client_min_messages;
