#!/usr/bin/env bash
# test/citus/objection_filter.sh: the objection filter, keyed functions and
# the register on a Citus cluster (a coordinator and two workers, which
# scripts/citus.sh starts; CAREDATA_CITUS_PORTS names their ports).  Each
# check replays a failure issue 15 lists, as the analyst, on the coordinator
# and on a worker's shard directly.  The goal of issue 15: it fails until
# caredata holds on every node (docs/scale-out.md).  Prints TAP.
. "$(dirname "$0")/lib.bash"

citus_reset
on "$coord" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT caredata.citus_setup();
CREATE ROLE citus_analyst LOGIN IN ROLE caredata_analyst;
CREATE ROLE citus_patient LOGIN IN ROLE caredata_patient;
CREATE TABLE citus_ep (id bigint, nhs caredata.nhs_number, los int);
SELECT create_distributed_table('citus_ep', 'nhs');
-- 228 episodes of 20 patients; two of them object
INSERT INTO citus_ep
SELECT i, caredata.nhs_number((base * 10 + d)::text), i % 30
  FROM generate_series(1, 228) i,
       LATERAL (SELECT 999000001::bigint + (i % 20) AS base) b,
       LATERAL (SELECT (11 - (sum(substr(base::text, k, 1)::int * (11 - k)) % 11)) % 11 AS d
                  FROM generate_series(1, 9) k) c
 WHERE d < 10;
GRANT SELECT ON citus_ep TO citus_analyst, citus_patient;
SELECT caredata.record_objection(nhs, 'national_data_opt_out', 'citus test', now() - interval '1 day')
  FROM (SELECT DISTINCT nhs FROM citus_ep ORDER BY nhs LIMIT 2) o;
SQL
out=$(on "$coord" -c "SELECT caredata.protect('citus_ep', 'nhs', 'research')")
case "$out" in *ERROR*) echo "# protect() refused: $(echo "$out" | head -1)" ;; esac
# the patient is one who did not object
patient=$(on "$coord" -c "SELECT nhs FROM citus_ep WHERE nhs::text NOT IN (SELECT nhs_number::text FROM caredata.objection) ORDER BY nhs LIMIT 1")
on "$coord" -c "INSERT INTO caredata.subject_access (role, nhs_number) VALUES ('citus_patient', '$patient')" >/dev/null
own=$(on "$coord" -c "SELECT count(*) FROM citus_ep WHERE nhs::text = '$patient'")
total=$(on "$coord" -c "SELECT count(*) FROM citus_ep")
# the objectors' episodes, counted from the coordinator's register
objector=$(on "$coord" -c "SELECT nhs_number FROM caredata.objection ORDER BY nhs_number LIMIT 1")
blocked=$(on "$coord" -c "SELECT count(*) FROM citus_ep WHERE nhs::text IN (SELECT nhs_number::text FROM caredata.objection)")
echo "# $total episodes, $blocked of them the objectors'"
[ "${blocked:-0}" -gt 0 ] 2>/dev/null; ok $? "the objectors have episodes in the distributed table ($blocked)"
seen=$(on "$coord" -c "SELECT count(*) FROM citus_ep WHERE NOT caredata.permitted(nhs, 'research')")
[ "$seen" = "$blocked" ]; ok $? "permitted() evaluated for the distributed table (on the workers) blocks them ($seen of $blocked)"

seen=$(on "$coord" -U citus_analyst -c "SELECT count(*) FROM citus_ep")
[ "$seen" = "$((total - blocked))" ]; ok $? "the analyst sees $((total - blocked)) episodes through the coordinator (saw $seen)"
seen=$(on "$coord" -U citus_analyst -c "SELECT count(*) FROM citus_ep WHERE nhs OPERATOR(caredata.=) '$objector'::caredata.nhs_number")
[ "$seen" = 0 ]; ok $? "the analyst does not see an objector's episodes by number (saw $seen)"

# on a worker: the shards themselves, and the distributed table through the worker
shard_rows=0; shard_visible=0
for port in "$w1" "$w2"; do
  for shard in $(on "$port" -c "SET citus.show_shards_for_app_name_prefixes = '*'" \
                 -c "SELECT c.relname FROM pg_class c WHERE c.relname ~ '^citus_ep_[0-9]+$'"); do
    r=$(on "$port" -c "SELECT count(*) FROM $shard")
    v=$(on "$port" -c "GRANT SELECT ON $shard TO citus_analyst" -c "SET ROLE citus_analyst" -c "SELECT count(*) FROM $shard" | tail -1)
    shard_rows=$((shard_rows + r)); shard_visible=$((shard_visible + v))
  done
done
[ "${total:-0}" -gt 0 ] && [ "$shard_rows" = "$total" ] && [ "$shard_visible" = "$((total - blocked))" ]
ok $? "on the workers' shards directly the analyst sees $((total - blocked)) of $total (saw $shard_visible of $shard_rows)"
seen=$(on "$w1" -U citus_analyst -c "SELECT count(*) FROM citus_ep")
[ "$seen" = "$((total - blocked))" ]; ok $? "through a worker the analyst sees $((total - blocked)) (saw $seen)"

# EXPLAIN ANALYZE of a query for an objector's number: the workers' plans
# (Citus prints them) count no row the filter removed
for port in "$coord" "$w1"; do
  plan=$(on "$port" -U citus_analyst -c "SET citus.explain_all_tasks = on" \
         -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS) SELECT count(*) FROM citus_ep WHERE nhs OPERATOR(caredata.=) '$objector'::caredata.nhs_number")
  # (the coordinator's own buffers, at the top, are its catalog reads)
  case "$plan" in *"row_permitted"*) echo "$plan" | grep -Eq "Rows Removed by Filter|^ {6,}.*Buffers:" && r=1 || r=0 ;; *) r=1 ;; esac
  ok $r "EXPLAIN ANALYZE through :$port shows the workers' filtered scans without their removed rows or buffers"
done

# writes without a column reference reach the permitted rows only
on "$coord" -c "GRANT UPDATE, DELETE ON citus_ep TO citus_analyst" >/dev/null
updated=$(on "$coord" -U citus_analyst -c "WITH u AS (UPDATE citus_ep SET los = los RETURNING 1) SELECT count(*) FROM u")
[ "$updated" = "$((total - blocked))" ]; ok $? "the analyst's UPDATE of every row reaches the $((total - blocked)) permitted rows only (updated $updated)"
deleted=$(on "$w1" -U citus_analyst -c "WITH d AS (DELETE FROM citus_ep WHERE nhs OPERATOR(caredata.=) '$objector'::caredata.nhs_number RETURNING 1) SELECT count(*) FROM d")
[ "$deleted" = 0 ] && [ "$(on "$coord" -c "SELECT count(*) FROM citus_ep")" = "$total" ]
ok $? "a DELETE of an objector's rows through a worker deletes none (deleted $deleted)"
on "$coord" -c "REVOKE UPDATE, DELETE ON citus_ep FROM citus_analyst" >/dev/null

# the patient: their own rows only, on every path
for port in "$coord" "$w1"; do
  seen=$(on "$port" -U citus_patient -c "SELECT count(*) FROM citus_ep")
  [ "$seen" = "$own" ] && [ "$own" -gt 0 ]; ok $? "the patient sees their own $own episodes through :$port (saw $seen)"
done

# the register on every node
for port in "$w1" "$w2"; do
  b=$(on "$port" -c "SELECT count(*) FROM caredata.objection")
  [ "$b" = 2 ]; ok $? "worker :$port holds the register's 2 objections (holds $b)"
done

# a change to the register is seen by the next query on every node
third=$(on "$coord" -c "SELECT nhs FROM citus_ep WHERE nhs::text NOT IN (SELECT nhs_number::text FROM caredata.objection) AND nhs::text <> '$patient' ORDER BY nhs DESC LIMIT 1")
more=$(on "$coord" -c "SELECT count(*) FROM citus_ep WHERE nhs::text = '$third'")
on "$coord" -c "SELECT caredata.record_objection('$third', 'type1', 'citus test', now() - interval '1 hour')" >/dev/null
for port in "$coord" "$w1" "$w2"; do
  seen=$(on "$port" -U citus_analyst -c "SELECT count(*) FROM citus_ep")
  [ "$seen" = "$((total - blocked - more))" ]; ok $? "after a new objection the analyst's next query through :$port hides $more more (saw $seen)"
done
out=$(on "$coord" -c "SELECT caredata.withdraw_objection(id, now()) FROM caredata.objection WHERE nhs_number::text = '$third'")
case "$out" in *ERROR*) echo "# withdraw_objection: $out" ;; esac
seen=$(on "$w2" -U citus_analyst -c "SELECT count(*) FROM citus_ep")
[ "$seen" = "$((total - blocked))" ]; ok $? "after its withdrawal the next query through :$w2 shows them again (saw $seen)"

# every node and shard as the filter needs them
bad=$(on "$coord" -c "SELECT count(*) FROM caredata.citus_check() WHERE NOT ok")
checked=$(on "$coord" -c "SELECT count(*) FROM caredata.citus_check()")
[ "$bad" = 0 ] && [ "$checked" -gt 32 ]; ok $? "caredata.citus_check(): $checked checks (catalog placements, key files, every shard's policy), none failing ($bad)"

# a shard moved to the other worker keeps the filter (Citus copies the one
# permissive policy as it is)
read -r shard from <<< "$(on "$coord" -F ' ' -c "SELECT s.shardid, p.nodeport FROM pg_dist_shard s JOIN pg_dist_shard_placement p USING (shardid) WHERE s.logicalrelid = 'citus_ep'::regclass ORDER BY (SELECT count(*) FROM citus_ep) LIMIT 1")"
to=$([ "$from" = "$w1" ] && echo "$w2" || echo "$w1")
out=$(on "$coord" -c "SELECT citus_move_shard_placement($shard, '127.0.0.1', $from, '127.0.0.1', $to, shard_transfer_mode => 'block_writes')")
case "$out" in *ERROR*) r=1 ;; *) r=0 ;; esac
ok $r "shard $shard moves from :$from to :$to (${out:0:80})"
seen=$(on "$coord" -U citus_analyst -c "SELECT count(*) FROM citus_ep")
[ "$seen" = "$((total - blocked))" ]; ok $? "after the move the analyst still sees $((total - blocked)) (saw $seen)"
bad=$(on "$coord" -c "SELECT count(*) FROM caredata.citus_check() WHERE NOT ok")
[ "$bad" = 0 ]; ok $? "and citus_check() finds every shard's policy as on the coordinator ($bad failing)"

# a shard whose policies were changed by hand: reported, and refused
victim=citus_ep_$(on "$coord" -c "SELECT min(shardid) FROM pg_dist_shard JOIN pg_dist_shard_placement USING (shardid) WHERE logicalrelid = 'citus_ep'::regclass AND nodeport = $w1")
on "$w1" -c "SET citus.enable_ddl_propagation = off" -c "CREATE POLICY hand_made ON $victim USING (true)" >/dev/null
bad=$(on "$coord" -c "SELECT node FROM caredata.citus_check() WHERE NOT ok")
case "$bad" in "shard ${victim##*_}") r=0 ;; *) r=1 ;; esac
ok $r "citus_check() reports the one shard whose policies differ ($bad)"
out=$(on "$coord" -U citus_analyst -c "SELECT count(*) FROM citus_ep")
case "$out" in *"widened by another row security policy"*) r=0 ;; *) r=1 ;; esac
ok $r "and the analyst's query, which reads that shard, is refused (${out%%$'\n'*})"
on "$w1" -c "SET citus.enable_ddl_propagation = off" -c "DROP POLICY hand_made ON $victim" >/dev/null

# a table of the analyst's own, made under a shard's name where that shard
# is not placed (the coordinator), is not bound to the filtered table: the
# analyst cannot ask permitted() about numbers of their choosing
fake=citus_ep_$(on "$coord" -c "SELECT min(shardid) FROM pg_dist_shard WHERE logicalrelid = 'citus_ep'::regclass")
on "$coord" -c "GRANT CREATE ON SCHEMA public TO citus_analyst" >/dev/null
on "$coord" -U citus_analyst -c "CREATE TABLE $fake (nhs caredata.nhs_number)" -c "INSERT INTO $fake VALUES ('$objector')" >/dev/null
out=$(on "$coord" -U citus_analyst -c "SELECT count(*) FROM $fake WHERE caredata.permitted(nhs, 'research')")
case "$out" in *"answers only for the NHS numbers of the protected table it filters"*) r=0 ;; *) r=1 ;; esac
ok $r "permitted() over the analyst's own table named like a shard ($fake) is refused (${out%%$'\n'*})"
on "$coord" -c "DROP TABLE $fake" -c "REVOKE CREATE ON SCHEMA public FROM citus_analyst" >/dev/null

# keyed functions
on "$coord" -c "SELECT caredata.create_domain('citus_dom', 'citus test')" >/dev/null
coord_p=$(on "$coord" -c "SELECT md5(string_agg(caredata.pseudonymise(nhs, 'citus_dom')::text, ',' ORDER BY id)) FROM citus_ep")
for port in "$w1" "$w2"; do
  p=$(on "$port" -c "SELECT md5(string_agg(caredata.pseudonymise(nhs, 'citus_dom')::text, ',' ORDER BY id)) FROM citus_ep")
  case "$coord_p$p" in *ERROR*|'') r=1 ;; *) [ "$p" = "$coord_p" ]; r=$? ;; esac
  ok $r "pseudonyms computed through worker :$port equal the coordinator's (${p:0:60})"
done

citus_done
