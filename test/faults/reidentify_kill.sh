#!/usr/bin/env bash
# test/faults/reidentify_kill.sh: a re-identification's audit entry is
# committed, and flushed, before the answer leaves (issue 22, section 2):
# the caller's backend killed with SIGKILL right after the answer, inside
# its open transaction (the server restarts every backend and recovers),
# keeps the entry, and the hourly limit still counts it.  Run by
# scripts/test.sh against the running throw-away cluster, which it crashes
# once: it must run alone.  Prints TAP.
. "$(dirname "$0")/../lib.bash"

db=caredata_reid_kill
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

p=$(reidentify_fixture reid_k reid_kill)
su -c 'ALTER ROLE reid_kill SET caredata.reidentify_per_hour = 1' >/dev/null

answered_and_held reid_kill "$p" 'killed after the answer, case 9301' "$work/killed.out"
kill -KILL "$pid"
wait $client
grep -q '943 476 5919' "$work/killed.out"; ok $? "the killed caller had its answer"
wait_up $db; ok $? "the server recovered from the SIGKILL"
[ "$(su -c "SELECT count(*) FROM caredata.audit_log WHERE action = 'reidentify' AND actor = 'reid_kill'")" = 1 ]
ok $? "the entry survived the crash"
[ "$(su -c 'SELECT caredata.audit_verify()')" = t ]; ok $? "the chain is intact"
psql -qXAt -U reid_kill -d $db -c "SELECT caredata.reidentify('$p', 'CAG 9-001', 'research', 'after the crash, case 9302')" >"$work/after.out" 2>&1
grep -q 're-identification limit reached: 1 in the last hour' "$work/after.out"; ok $? "the hourly limit (1) counts it"

drop_db -c 'DROP ROLE IF EXISTS reid_kill'
done_testing
