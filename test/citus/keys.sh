#!/usr/bin/env bash
# test/citus/keys.sh: keyed pseudonyms on a Citus cluster (docs/scale-out.md).
# Domains created, rotated and retired on the coordinator hold on every
# node at once; pseudonyms are the same whichever node computes them; a
# node whose key file differs, or is missing, refuses instead of diverging;
# and a node added later gets the catalogs (replicate_reference_tables()),
# the same pseudonyms and the same filter.  Prints TAP.
. "$(dirname "$0")/lib.bash"
dir=${CAREDATA_CITUS_DIR:-/var/tmp/caredata-citus}
# pseudonyms of every row, as computed on the workers' shards
tokens() { on "$1" -c "SELECT md5(string_agg(caredata.pseudonymise(nhs, '$2')::text, ',' ORDER BY id)) FROM citus_ep"; }
reload() { on "$1" -c "ALTER SYSTEM SET caredata.key_file = '$2'" -c "SELECT pg_reload_conf()" >/dev/null; sleep 1; }

citus_reset
on "$coord" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT caredata.citus_setup();
CREATE ROLE citus_analyst LOGIN IN ROLE caredata_analyst;
CREATE TABLE citus_ep (id bigint, nhs caredata.nhs_number);
SELECT create_distributed_table('citus_ep', 'nhs');
INSERT INTO citus_ep
SELECT i, caredata.nhs_number(base * 10 + d)
  FROM generate_series(1, 300) i,
       LATERAL (SELECT 600000000::bigint + (i % 60) * 13 AS base) b,
       LATERAL (SELECT (11 - (sum(substr(base::text, k, 1)::int * (11 - k)) % 11)) % 11 AS d
                  FROM generate_series(1, 9) k) c
 WHERE d < 10;
GRANT SELECT ON citus_ep TO citus_analyst;
SELECT caredata.record_objection(nhs, 'national_data_opt_out', 'citus test', now() - interval '1 day')
  FROM (SELECT DISTINCT nhs FROM citus_ep ORDER BY nhs LIMIT 3) o;
SELECT caredata.protect('citus_ep', 'nhs', 'research');
SELECT caredata.create_domain('citus_keys', 'key test');
SQL

# 1. the domain on every node, and the same pseudonyms wherever computed
for port in "$w1" "$w2"; do
  d=$(on "$port" -c "SELECT name || ' v' || current_version || ' ' || (key_fingerprint = caredata.key_fingerprint()) FROM caredata.domain WHERE name = 'citus_keys'")
  [ "$d" = "citus_keys v1 true" ]; ok $? "worker :$port holds the domain, at version 1, under its own key's fingerprint ($d)"
done
local_v1=$(on "$coord" -c "SELECT md5(string_agg(caredata.pseudonymise(nhs, 'citus_keys')::text, ',' ORDER BY id)) FROM (SELECT * FROM citus_ep) e")
v1=$(tokens "$coord" citus_keys)
[ "$v1" = "$(on "$coord" -c "CREATE TEMP TABLE ep AS SELECT * FROM citus_ep" -c "SELECT md5(string_agg(caredata.pseudonymise(nhs, 'citus_keys')::text, ',' ORDER BY id)) FROM ep")" ]
ok $? "pseudonyms computed on the shards equal the coordinator's own ($v1)"
for port in "$w1" "$w2"; do
  [ "$(tokens "$port" citus_keys)" = "$v1" ]; ok $? "... and those computed through worker :$port"
done

# 2. rotation and retirement: the next query on every node follows
on "$coord" -c "SELECT caredata.rotate_domain('citus_keys')" >/dev/null
v2=$(tokens "$coord" citus_keys)
[ "$v2" != "$v1" ]; ok $? "after rotate_domain() the coordinator's pseudonyms change"
for port in "$w1" "$w2"; do
  [ "$(tokens "$port" citus_keys)" = "$v2" ]; ok $? "... and worker :$port uses version 2 too"
done
on "$coord" -c "SELECT caredata.retire_domain('citus_keys')" >/dev/null
for port in "$coord" "$w1" "$w2"; do
  out=$(tokens "$port" citus_keys)
  case "$out" in *"is retired"*) r=0 ;; *) r=1 ;; esac
  ok $r "after retire_domain() :$port refuses the domain (${out%%$'\n'*})"
done
on "$coord" -c "SELECT caredata.create_domain('citus_keys2', 'key test')" >/dev/null

# 3. a worker with another key file refuses, and citus_check() says which
keys2=$dir/worker2/keys
[ -f "$keys2/other.key" ] || scripts/generate-key.sh "$keys2/other.key" "$CAREDATA_OS_USER" >/dev/null
reload "$w2" "$keys2/other.key"
out=$(tokens "$coord" citus_keys2)
case "$out" in *"is not the one pseudonym domain \"citus_keys2\" was created under"*) r=0 ;; *) r=1 ;; esac
ok $r "with another key file on :$w2, a query whose shards it holds refuses (${out%%$'\n'*})"
case "$out" in *"$(on "$coord" -c "SELECT caredata.key_fingerprint()")"*) r=1 ;; *) r=0 ;; esac
ok $r "... and the message shows no fingerprint"
bad=$(on "$coord" -c "SELECT node FROM caredata.citus_check() WHERE item = 'key file' AND NOT ok")
[ "$bad" = "127.0.0.1:$w2" ]; ok $? "citus_check() names the node with the other key ($bad)"
reload "$w2" "$keys2/missing.key"
out=$(tokens "$coord" citus_keys2)
case "$out" in *"the file named by caredata.key_file does not exist"*) r=0 ;; *) r=1 ;; esac
ok $r "with its key file missing it refuses too (${out%%$'\n'*})"
reload "$w2" "$keys2/master.key"
[ "$(tokens "$w2" citus_keys2)" = "$(tokens "$coord" citus_keys2)" ]; ok $? "with the same key again it answers, as the coordinator does"

# 4. a node added later: the catalogs, the key, the filter
w3=$((coord + 3)); d3=$dir/worker3
rm -rf "$d3"; mkdir -p "$d3/keys"; cp "$dir/coordinator/keys/master.key" "$d3/keys/"
chown -R "$CAREDATA_OS_USER" "$d3"; chmod 700 "$d3" "$d3/keys"
CAREDATA_PRELOAD=citus,caredata CAREDATA_CLUSTER_DIR=$d3 CAREDATA_PORT=$w3 scripts/cluster.sh start >/dev/null
on "$w3" -c "SET client_min_messages = warning" -c "CREATE EXTENSION citus" >/dev/null
out=$(on "$coord" -c "SET client_min_messages = warning" -c "SELECT citus_add_node('127.0.0.1', $w3)")
case "$out" in *ERROR*) r=1 ;; *) r=0 ;; esac
ok $r "a third worker (:$w3) joins the cluster"
missing=$(on "$coord" -c "SELECT count(*) FROM caredata.citus_check() WHERE node = '127.0.0.1:$w3' AND NOT ok")
[ "$missing" -gt 0 ]; ok $? "before its catalogs are copied, citus_check() reports them missing there ($missing)"
on "$coord" -c "SET client_min_messages = warning" -c "SELECT replicate_reference_tables('block_writes')" >/dev/null
bad=$(on "$coord" -c "SELECT count(*) FROM caredata.citus_check() WHERE NOT ok")
[ "$bad" = 0 ]; ok $? "after replicate_reference_tables() every check passes, the new node's included ($bad failing)"
[ "$(on "$w3" -c "SELECT count(*) FROM caredata.objection")" = 3 ]; ok $? "the new node holds the register"
[ "$(tokens "$w3" citus_keys2)" = "$(tokens "$coord" citus_keys2)" ]; ok $? "pseudonyms through it equal the coordinator's"
out=$(on "$coord" -c "SET client_min_messages = warning" -c "SELECT citus_rebalance_wait()" -c "SELECT rebalance_table_shards('citus_ep', shard_transfer_mode => 'block_writes')")
moved=$(on "$coord" -c "SELECT count(*) FROM pg_dist_shard_placement JOIN pg_dist_shard USING (shardid) WHERE logicalrelid = 'citus_ep'::regclass AND nodeport = $w3")
[ "$moved" -gt 0 ]; ok $? "rebalancing moves $moved shards onto it"
blocked=$(on "$coord" -c "SELECT count(*) FROM citus_ep WHERE nhs::text IN (SELECT nhs_number::text FROM caredata.objection)")
total=$(on "$coord" -c "SELECT count(*) FROM citus_ep")
seen=$(on "$w3" -U citus_analyst -c "SELECT count(*) FROM citus_ep")
[ "$seen" = "$((total - blocked))" ]; ok $? "the analyst through the new node sees $((total - blocked)) of $total (saw $seen)"
bad=$(on "$coord" -c "SELECT count(*) FROM caredata.citus_check() WHERE NOT ok")
[ "$bad" = 0 ]; ok $? "and every shard, the moved ones too, keeps the filter ($bad failing)"

# the new node leaves again
on "$coord" -c "SET client_min_messages = warning" -c "SELECT citus_drain_node('127.0.0.1', $w3, shard_transfer_mode => 'block_writes')" \
  -c "SELECT citus_remove_node('127.0.0.1', $w3)" >/dev/null
CAREDATA_CLUSTER_DIR=$d3 CAREDATA_PORT=$w3 scripts/cluster.sh stop >/dev/null 2>&1
rm -rf "$d3"
citus_done
