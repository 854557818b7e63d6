#!/usr/bin/env bash
# test/citus/quickstart.sh: the "Quick start" block of docs/scale-out.md,
# extracted from the doc and run as written on the coordinator, so the doc
# never goes stale.  Prints TAP.
. "$(dirname "$0")/lib.bash"

citus_reset
block=$(scripts/doc-sql.sh docs/scale-out.md quickstart)
out=$(echo "$block" | on "$coord" -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -f -)
rc=$?
[ "$rc" = 0 ] && [ -n "$block" ]; ok $? "the block runs without error (${out//$'\n'/ })"
# its results, in order: citus_setup, create_distributed_table, recorded,
# protect, episodes_seen, problems
seen=$(echo "$out" | tail -2 | head -1); problems=$(echo "$out" | tail -1)
[ "$seen" = 2 ] && [ "$problems" = 0 ]; ok $? "the analyst sees 2 of 3 episodes and citus_check() finds no problem (saw $seen, $problems problems)"

on "$coord" -c "DROP TABLE episodes" -c "DROP OWNED BY quick_analyst" -c "DROP ROLE quick_analyst" >/dev/null
citus_done
