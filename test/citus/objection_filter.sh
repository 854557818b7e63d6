#!/usr/bin/env bash
# test/citus/objection_filter.sh: the objection filter, keyed functions and
# the register on a Citus cluster (a coordinator and two workers, which
# scripts/citus.sh starts; CAREDATA_CITUS_PORTS names their ports).  Each
# check replays a failure issue 15 lists, as the analyst, on the coordinator
# and on a worker's shard directly.  The goal of issue 15: it fails until
# caredata holds on every node (docs/scale-out.md).  Prints TAP.
set -uo pipefail
. "$(dirname "$0")/../../scripts/env.sh"
cd "$CAREDATA_ROOT"

read -r coord w1 w2 <<< "${CAREDATA_CITUS_PORTS:-55420 55421 55422}"
n=0; failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }
on() { local port=$1; shift; PGPORT=$port psql -XAtq -d postgres "$@" 2>&1; }

on "$coord" -v ON_ERROR_STOP=1 -f test/citus/reset.sql >/dev/null
on "$coord" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT caredata.citus_setup();
CREATE ROLE citus_analyst LOGIN IN ROLE caredata_analyst;
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
GRANT SELECT ON citus_ep TO citus_analyst;
SELECT caredata.record_objection(nhs, 'national_data_opt_out', 'citus test', now() - interval '1 day')
  FROM (SELECT DISTINCT nhs FROM citus_ep ORDER BY nhs LIMIT 2) o;
SQL
# (until the design of docs/scale-out.md is built, protect() refuses a
# distributed table, and the checks below fail: this suite is the goal)
out=$(on "$coord" -c "SELECT caredata.protect('citus_ep', 'nhs', 'research')")
case "$out" in *ERROR*) echo "# protect() refused: $(echo "$out" | head -1)" ;; esac
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

# the register on every node
for port in "$w1" "$w2"; do
  b=$(on "$port" -c "SELECT count(*) FROM caredata.objection")
  [ "$b" = 2 ]; ok $? "worker :$port holds the register's 2 objections (holds $b)"
done

# keyed functions
on "$coord" -c "SELECT caredata.create_domain('citus_dom', 'citus test')" >/dev/null
coord_p=$(on "$coord" -c "SELECT md5(string_agg(caredata.pseudonymise(nhs, 'citus_dom')::text, ',' ORDER BY id)) FROM citus_ep")
for port in "$w1" "$w2"; do
  p=$(on "$port" -c "SELECT md5(string_agg(caredata.pseudonymise(nhs, 'citus_dom')::text, ',' ORDER BY id)) FROM citus_ep")
  case "$coord_p$p" in *ERROR*|'') r=1 ;; *) [ "$p" = "$coord_p" ]; r=$? ;; esac
  ok $r "pseudonyms computed through worker :$port equal the coordinator's (${p:0:60})"
done

on "$coord" -f test/citus/reset.sql >/dev/null
echo "1..$n"
[ "$failed" -eq 0 ]
