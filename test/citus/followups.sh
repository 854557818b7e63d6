#!/usr/bin/env bash
# test/citus/followups.sh: the Citus follow-ups of issue 27 on the cluster
# scripts/citus.sh starts (CAREDATA_CITUS_PORTS).  Prints TAP.
#   1. protected tables in parallel plans inside transactions: through the
#      coordinator, through a worker, on a worker's shards directly, and an
#      ordinary protected table on the coordinator;
#   2. every function that writes caredata's catalogs refuses on a worker
#      (55000, hint: run it on the coordinator; linkage, the coordinator's
#      alone, 0A000), and the coordinator's ids stay its own;
#   3. a shard whose row security a worker superuser turned off fails
#      closed at query time, on every path;
#   4. text aggregates combined by Citus: the documented COLLATE workaround
#      sorts and stores them, with one node's answer.
. "$(dirname "$0")/lib.bash"

citus_reset
out=$(on "$coord" -v ON_ERROR_STOP=1 <<'SQL'
SET client_min_messages = warning;
SELECT caredata.citus_setup();
CREATE ROLE citus_analyst LOGIN IN ROLE caredata_analyst;
CREATE TABLE citus_ep (id bigint, nhs caredata.nhs_number, los int, unit int);
SELECT create_distributed_table('citus_ep', 'nhs');
-- 4,000 episodes of 20 patients in 8 units; two of the patients object
INSERT INTO citus_ep
SELECT i, caredata.nhs_number((base * 10 + d)::text), i % 30, i % 8
  FROM generate_series(1, 4200) i,
       LATERAL (SELECT 999000001::bigint + (i % 21) AS base) b,
       LATERAL (SELECT (11 - (sum(substr(base::text, k, 1)::int * (11 - k)) % 11)) % 11 AS d
                  FROM generate_series(1, 9) k) c
 WHERE d < 10;
GRANT SELECT ON citus_ep TO citus_analyst;
SELECT caredata.record_objection(nhs, 'national_data_opt_out', 'citus test', now() - interval '1 day')
  FROM (SELECT DISTINCT nhs FROM citus_ep ORDER BY nhs LIMIT 2) o;
SELECT caredata.protect('citus_ep', 'nhs', 'research');
-- the same rows in an ordinary protected table on the coordinator
CREATE TABLE citus_local AS SELECT * FROM citus_ep;
SELECT caredata.protect('citus_local', 'nhs', 'research');
GRANT SELECT ON citus_local TO citus_analyst;
-- parallel plans forced for the analyst on every node (Citus propagates
-- ALTER ROLE ... SET, and reaches the workers as the analyst)
ALTER ROLE citus_analyst SET parallel_setup_cost = 0;
ALTER ROLE citus_analyst SET parallel_tuple_cost = 0;
ALTER ROLE citus_analyst SET min_parallel_table_scan_size = 0;
ALTER ROLE citus_analyst SET max_parallel_workers_per_gather = 2;
SQL
)
case "$out" in *ERROR*) echo "# set-up: $out" ;; esac
total=$(on "$coord" -c "SELECT count(*) FROM citus_ep")
blocked=$(on "$coord" -c "SELECT count(*) FROM citus_ep WHERE nhs::text IN (SELECT nhs_number::text FROM caredata.objection)")
want=$((total - blocked))
echo "# $total episodes, $blocked of them the objectors'"

# --- 1. parallel plans inside transactions
for port in "$coord" "$w1"; do
  out=$(on "$port" -U citus_analyst -c "BEGIN" -c "SELECT count(*) FROM citus_ep" -c "COMMIT")
  [ "$out" = "$want" ]; ok $? "parallel plans, BEGIN ... COMMIT: the analyst counts $want through :$port (${out//$'\n'/ })"
done
shard_rows=0; shard_seen=0; shards=0; plans=0; errors=""
for port in "$w1" "$w2"; do
  for shard in $(on "$port" -c "SET citus.show_shards_for_app_name_prefixes = '*'" \
                 -c "SELECT c.relname FROM pg_class c WHERE c.relname ~ '^citus_ep_[0-9]+$'"); do
    on "$port" -c "GRANT SELECT ON $shard TO citus_analyst" >/dev/null
    r=$(on "$port" -c "SELECT count(*) FROM $shard")
    v=$(on "$port" -U citus_analyst -c "BEGIN" -c "SELECT count(*) FROM $shard" -c "COMMIT")
    case "$v" in *[!0-9]*|'') errors="$v"; v=0 ;; esac
    p=$(on "$port" -U citus_analyst -c "EXPLAIN (COSTS OFF) SELECT count(*) FROM $shard")
    case "$p" in *"Parallel Seq Scan"*) plans=$((plans + 1)) ;; esac
    shard_rows=$((shard_rows + r)); shard_seen=$((shard_seen + v)); shards=$((shards + 1))
  done
done
[ "$shard_rows" = "$total" ] && [ "$shard_seen" = "$want" ] && [ -z "$errors" ]
ok $? "parallel plans, BEGIN ... COMMIT on the workers' $shards shards directly: the analyst sees $want of $total (saw $shard_seen of $shard_rows${errors:+; ${errors%%$'\n'*}})"
[ "$plans" = "$shards" ]; ok $? "every shard's plan is a parallel scan ($plans of $shards)"
out=$(on "$coord" -U citus_analyst -c "BEGIN" -c "SELECT count(*) FROM citus_local" -c "COMMIT")
plan=$(on "$coord" -U citus_analyst -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM citus_local")
case "$plan" in *"Workers Launched"*) r=0 ;; *) r=1 ;; esac
[ "$out" = "$want" ] && [ "$r" = 0 ]
ok $? "parallel workers launched, BEGIN ... COMMIT: the analyst counts $want in an ordinary protected table on the coordinator (${out//$'\n'/ })"
# an objector's rows stay hidden in the parallel workers
objector=$(on "$coord" -c "SELECT nhs_number FROM caredata.objection ORDER BY nhs_number LIMIT 1")
out=$(on "$w1" -U citus_analyst -c "BEGIN" -c "SELECT count(*) FROM citus_ep WHERE nhs OPERATOR(caredata.=) '$objector'::caredata.nhs_number" -c "COMMIT")
[ "$out" = 0 ]; ok $? "parallel plans through a worker still hide an objector's episodes (saw ${out//$'\n'/ })"

# --- 2. catalog writes refuse on a worker
# every public function that writes a catalog, called on a worker with
# arguments of the right types: each must stop at the guard
cat > /tmp/caredata-writers.sql <<'SQL'
SET client_min_messages = warning;
CREATE TEMP TABLE writer_result (fn text, state text, msg text, hint text);
DO $$
DECLARE
  f record;
  args text;
  st text; m text; h text;
BEGIN
  FOR f IN SELECT p.oid, p.proname, p.proargtypes::oid[] AS types FROM pg_proc p
            WHERE p.pronamespace = 'caredata'::regnamespace
              AND p.proname IN ('record_objection', 'withdraw_objection', 'grant_exemption', 'revoke_exemption',
                                'apply_opt_out_snapshot', 'apply_type1_codes', 'protect', 'unprotect',
                                'create_domain', 'rotate_domain', 'retire_domain',
                                'assign_sdc_policy', 'unassign_sdc_policy',
                                'publish', 'publish_aggregates', 'republish', 'unpublish', 'refresh_pseudonyms',
                                'register_approval', 'revoke_approval',
                                'link_create_project', 'link_drop_project', 'link_add_source', 'link_standardise',
                                'link_create_model', 'link_run',
                                'record_my_objection', 'withdraw_my_objection', 'share_my_records', 'revoke_my_share',
                                'open_shared_records', '_publish_patient_comparison')
            ORDER BY 2, 1 LOOP
    SELECT string_agg(CASE t
             WHEN 'caredata.nhs_number'::regtype THEN '''9434765919''::caredata.nhs_number'
             WHEN 'regclass'::regtype THEN '''caredata.purpose''::regclass'
             WHEN 'regrole'::regtype THEN '''caredata_admin''::regrole'
             WHEN 'timestamptz'::regtype THEN 'now()'
             WHEN 'jsonb'::regtype THEN '''{}''::jsonb'
             WHEN 'boolean'::regtype THEN 'false'
             WHEN 'text[]'::regtype THEN '''{x}''::text[]'
             WHEN 'name[]'::regtype THEN '''{x}''::name[]'
             WHEN 'integer'::regtype THEN '1'
             WHEN 'bigint'::regtype THEN '1::bigint'
             WHEN 'smallint'::regtype THEN '1::smallint'
             WHEN 'date'::regtype THEN 'current_date'
             WHEN 'double precision'::regtype THEN '0.5'
             WHEN 'numeric'::regtype THEN '0.5'
             -- text: the linkage project every node has, so the project
             -- check in a DECLARE passes and the guard is what refuses
             WHEN 'text'::regtype THEN '''default'''
             ELSE CASE WHEN (SELECT typcategory FROM pg_type WHERE oid = t) = 'A' THEN format('''{}''::%s', t::regtype)
                       ELSE format('''x''::%s', t::regtype) END END, ', ' ORDER BY o)
      INTO args FROM unnest(f.types) WITH ORDINALITY u(t, o);
    BEGIN
      EXECUTE format('SELECT caredata.%I(%s)', f.proname, args);
      st := 'ran'; m := NULL; h := NULL;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, h = PG_EXCEPTION_HINT;
    END;
    INSERT INTO writer_result VALUES (f.proname || '(' || coalesce(args, '') || ')', st, m, h);
  END LOOP;
END $$;
-- (linkage, the coordinator's alone, refuses as a whole: 0A000)
SELECT count(*) FILTER (WHERE (state = '55000' AND msg LIKE '% writes caredata''s catalogs and runs on the Citus coordinator only'
                               AND hint LIKE 'Run it on the coordinator%')
                           OR (fn LIKE 'link%' AND state = '0A000' AND msg LIKE '% runs on the Citus coordinator only')),
       count(*),
       coalesce(string_agg(fn || ': ' || state || ' ' || coalesce(msg, ''), '; ')
                  FILTER (WHERE state NOT IN ('55000', '0A000')), '')
  FROM writer_result;
SQL
before=$(on "$w1" -c "SELECT count(*) FROM caredata.objection")
read -r refused called others <<< "$(on "$w1" -F ' ' -f /tmp/caredata-writers.sql | tail -1)"
[ -n "$called" ] && [ "$called" -ge 32 ] && [ "$refused" = "$called" ]
ok $? "on a worker every catalog writer refuses (55000 with the hint to run it on the coordinator; linkage 0A000) ($refused of $called${others:+; $others})"
after=$(on "$w1" -c "SELECT count(*) FROM caredata.objection")
[ "$before" = "$after" ]; ok $? "and the register is unchanged ($before before, $after after)"
out=$(on "$w2" -c "SELECT caredata.create_domain('citus_worker_dom', 'worker')")
case "$out" in *"create_domain() writes caredata's catalogs and runs on the Citus coordinator only"*) r=0 ;; *) r=1 ;; esac
ok $r "create_domain() on worker :$w2 says what to do (${out%%$'\n'*})"
# the coordinator's writes go on with its own ids, seen on every node
ids=""; i=0
for nhs in $(on "$coord" -c "SELECT replace(nhs::text, ' ', '') FROM (SELECT DISTINCT nhs FROM citus_ep WHERE nhs::text NOT IN (SELECT nhs_number::text FROM caredata.objection) ORDER BY nhs LIMIT 3) x"); do
  i=$((i + 1))
  id=$(on "$coord" -c "SELECT caredata.record_objection('$nhs', 'type1', 'citus test $i', now() - interval '1 hour')")
  ids="$ids $id"
done
seen=$(on "$w2" -c "SELECT count(DISTINCT id) FROM caredata.objection WHERE source LIKE 'citus test _'")
case "$ids" in *ERROR*) r=1 ;; *) [ "$seen" = 3 ]; r=$? ;; esac
ok $r "the coordinator's record_objection() goes on (ids$ids), all 3 on the workers"
on "$coord" -c "SELECT caredata.withdraw_objection(id, now()) FROM caredata.objection WHERE source LIKE 'citus test _'" >/dev/null
out=$(on "$coord" -c "SELECT caredata.create_domain('citus_coord_dom', 'coordinator')" -c "SELECT caredata.rotate_domain('citus_coord_dom')")
case "$out" in *ERROR*) r=1 ;; *) r=0 ;; esac
ok $r "create_domain() and rotate_domain() on the coordinator still work (${out//$'\n'/ })"

# --- 3. a shard with row security turned off fails closed
# a shard holding an objector's rows
victim=citus_ep_$(on "$coord" -c "SELECT get_shard_id_for_distribution_column('citus_ep', '$objector'::caredata.nhs_number)")
vport=$(on "$coord" -c "SELECT p.nodeport FROM pg_dist_shard_placement p WHERE p.shardid = ${victim##*_}")
hidden=$(on "$vport" -c "SELECT count(*) FROM $victim WHERE nhs OPERATOR(caredata.=) '$objector'::caredata.nhs_number")
on "$vport" -c "SET citus.enable_ddl_propagation = off" -c "ALTER TABLE $victim DISABLE ROW LEVEL SECURITY" >/dev/null
bad=$(on "$coord" -c "SELECT node FROM caredata.citus_check() WHERE NOT ok")
[ "$bad" = "shard ${victim##*_}" ]; ok $? "citus_check() names the one shard whose row security is off ($bad)"
for port in "$coord" "$w1" "$w2"; do
  out=$(on "$port" -U citus_analyst -c "SELECT count(*) FROM citus_ep")
  case "$out" in *"the objection filter on shard \"$victim\" is not in force"*) r=0 ;; *) r=1 ;; esac
  ok $r "the analyst's query through :$port, which reads that shard, is refused (${out%%$'\n'*})"
done
out=$(on "$vport" -U citus_analyst -c "SELECT count(*) FROM $victim WHERE nhs OPERATOR(caredata.=) '$objector'::caredata.nhs_number")
case "$out" in *"is not in force"*) r=0 ;; *) r=1 ;; esac
ok $r "reading the shard directly on :$vport is refused, not $hidden of the objector's rows (${out%%$'\n'*})"
out=$(on "$vport" -U citus_analyst -c "COPY $victim TO STDOUT" | head -1)
case "$out" in *"is not in force"*) r=0 ;; *) r=1 ;; esac
ok $r "and so is COPY of the shard (${out%%$'\n'*})"
out=$(on "$vport" -U citus_analyst -c "BEGIN" -c "SELECT count(*) FROM $victim" -c "COMMIT")
case "$out" in *"is not in force"*) r=0 ;; *) r=1 ;; esac
ok $r "and so is a parallel plan on it in a transaction (${out%%$'\n'*})"
seen=$(on "$coord" -c "SELECT count(*) FROM citus_ep")
[ "$seen" = "$total" ]; ok $? "a superuser, whom row security never filters, still reads all $total (read $seen)"
on "$vport" -c "SET citus.enable_ddl_propagation = off" -c "ALTER TABLE $victim ENABLE ROW LEVEL SECURITY" >/dev/null
seen=$(on "$coord" -U citus_analyst -c "SELECT count(*) FROM citus_ep")
[ "$seen" = "$want" ]; ok $? "row security turned on again: the analyst sees $want again (saw $seen)"
on "$vport" -c "SET citus.enable_ddl_propagation = off" -c "ALTER TABLE $victim NO FORCE ROW LEVEL SECURITY" >/dev/null
out=$(on "$vport" -U citus_analyst -c "SELECT count(*) FROM $victim")
case "$out" in *"no longer forced"*) r=0 ;; *) r=1 ;; esac
ok $r "a shard whose row security is no longer forced is refused too (${out%%$'\n'*})"
on "$vport" -c "SET citus.enable_ddl_propagation = off" -c "ALTER TABLE $victim FORCE ROW LEVEL SECURITY" >/dev/null

# --- 4. text aggregates over a distributed table: COLLATE in the query
one=$(on "$coord" -c "SELECT string_agg(unit || '=' || t, ',' ORDER BY t COLLATE \"C\", unit) FROM (SELECT unit, caredata.safe_count_text(nhs) AS t FROM citus_local GROUP BY unit) x")
out=$(on "$coord" -c "SELECT unit, caredata.safe_count_text(nhs) AS t FROM citus_ep GROUP BY unit ORDER BY t" | head -1)
echo "# without COLLATE: ${out%%$'\n'*}"
dist=$(on "$coord" -F = -c "SELECT unit, caredata.safe_count_text(nhs) COLLATE \"C\" AS t FROM citus_ep GROUP BY unit ORDER BY t, unit" | paste -sd,)
[ -n "$one" ] && [ "$dist" = "$one" ]; ok $? "safe_count_text(...) COLLATE \"C\" over a distributed table sorts, as over one table ($dist)"
out=$(on "$coord" -c "CREATE TABLE citus_agg AS SELECT unit, caredata.safe_count_text(nhs) COLLATE \"C\" AS t FROM citus_ep GROUP BY unit" \
            -c "SELECT string_agg(unit || '=' || t, ',' ORDER BY t, unit) FROM citus_agg" -c "SELECT collation_name FROM information_schema.columns WHERE table_name = 'citus_agg' AND column_name = 't'")
[ "$out" = "$one"$'\n'C ]; ok $? "and CREATE TABLE AS stores it, collation C (${out//$'\n'/ })"
hint=$(on "$coord" -c "SELECT obj_description('caredata.safe_count_text(caredata.nhs_number)'::regprocedure)")
case "$hint" in *'COLLATE'*) r=0 ;; *) r=1 ;; esac
ok $r "the aggregate's comment gives the workaround"
on "$coord" -c "DROP TABLE citus_agg" >/dev/null

citus_done
