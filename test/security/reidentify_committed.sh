#!/usr/bin/env bash
# test/security/reidentify_committed.sh: a re-identification's audit entry,
# and the count its hourly limit reads, are committed before the answer
# leaves (issue 22, section 2), on the paths a single pg_regress session
# cannot replay (sql/publication_reidentify.sql has ROLLBACK, ROLLBACK TO SAVEPOINT and
# an exception after the call):
#   - the caller's backend terminated right after the answer, inside its
#     open transaction: the entry stays;
#   - the worker cannot commit (the database refuses new connections): an
#     error, no answer, no entry;
#   - many sessions at once, each rolling back: exactly the limit answered.
# (test/faults/reidentify_kill.sh kills the backend with SIGKILL.)
# Run by scripts/test.sh against the running throw-away cluster; prints TAP.
. "$(dirname "$0")/../lib.bash"

db=caredata_reid_committed
work=$(mktemp -d)
cleanup() { drop_db -c 'DROP ROLE IF EXISTS reid_login' 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
p=$(reidentify_fixture reid_c reid_login)
entries() { su -c "SELECT count(*) FROM caredata.audit_log WHERE action = 'reidentify' AND actor = 'reid_login'"; }
as_reid() { psql -qXAt -U reid_login -d $db "$@"; }

# 1. the caller is terminated right after the answer, its transaction open
before=$(entries)
answered_and_held reid_login "$p" 'terminated after the answer, case 9001' "$work/killed.out"
su -c "SELECT pg_terminate_backend($pid)" >/dev/null
wait $client
grep -q '943 476 5919' "$work/killed.out"; ok $? "the terminated caller had its answer"
[ "$(entries)" = $((before + 1)) ]; ok $? "its audit entry stayed after the backend was terminated"
[ "$(su -c 'SELECT caredata.audit_verify()')" = t ]; ok $? "the chain is intact"

# 2. the worker cannot commit: no answer, no entry
before=$(entries)
{ printf '%s\n' "SELECT 'connected';" \
    "SELECT pg_sleep(0.5);" \
    "SELECT caredata.reidentify('$p', 'CAG 9-001', 'research', 'worker cannot connect, case 9002');"; } | as_reid >"$work/refused.out" 2>&1 &
client=$!
sleep 0.2
psql -qX -d postgres -c "ALTER DATABASE $db ALLOW_CONNECTIONS false" >/dev/null
wait $client
psql -qX -d postgres -c "ALTER DATABASE $db ALLOW_CONNECTIONS true" >/dev/null
grep -q "audit entry could not be committed, so there is no answer" "$work/refused.out"
ok $? "a worker that cannot commit: the call fails ($(grep -m1 ERROR "$work/refused.out"))"
! grep -q -e '943 476 5919' -e 9434765919 "$work/refused.out"; ok $? "and gives no answer"
[ "$(entries)" = "$before" ]; ok $? "and leaves no entry"

# 3. the limit across sessions that each roll back: 6 at once, limit 3
su -c "ALTER ROLE reid_login SET caredata.reidentify_per_hour = $(( $(entries) + 3 ))" >/dev/null
before=$(entries)
for i in $(seq 1 6); do
  { printf '%s\n' "BEGIN;" "SELECT caredata.reidentify('$p', 'CAG 9-001', 'research', 'concurrent and rolled back, case 91$i');" "ROLLBACK;"; } |
    as_reid >"$work/c$i.out" 2>&1 &
done
wait
answered=$(cat "$work"/c*.out | grep -c '943 476 5919')
refused=$(cat "$work"/c*.out | grep -c 're-identification limit reached')
[ "$answered" = 3 ] && [ "$refused" = 3 ]; ok $? "6 concurrent rolled-back calls under a limit of 3: $answered answered, $refused refused"
[ "$(entries)" = $((before + 3)) ]; ok $? "exactly 3 entries were committed for them"
as_reid -c "SELECT caredata.reidentify('$p', 'CAG 9-001', 'research', 'after the concurrent ones, case 9200')" >"$work/after.out" 2>&1
grep -q 're-identification limit reached' "$work/after.out"; ok $? "the next call in a new session is refused"
[ "$(su -c 'SELECT caredata.audit_verify()')" = t ]; ok $? "the chain is intact"

done_testing
