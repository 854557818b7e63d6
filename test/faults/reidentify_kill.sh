#!/usr/bin/env bash
# test/faults/reidentify_kill.sh: a re-identification's audit entry is
# committed, and flushed, before the answer leaves (issue 22, section 2):
# the caller's backend killed with SIGKILL right after the answer, inside
# its open transaction (the server restarts every backend and recovers),
# keeps the entry, and the hourly limit still counts it.  Run by
# scripts/test.sh against the running throw-away cluster, which it crashes
# once: it must run alone.  Prints TAP.
set -uo pipefail
. "$(dirname "$0")/../../scripts/env.sh"
cd "$CAREDATA_ROOT"

n=0; failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }
db=caredata_reid_kill
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
wait_up() { for _ in $(seq 1 120); do psql -XAtq -d $db -c 'SELECT 1' >/dev/null 2>&1 && return 0; sleep 0.5; done; return 1; }
su() { psql -qXAt -v ON_ERROR_STOP=1 -d $db "$@"; }

psql -qX -d postgres -c 'SET client_min_messages = warning' -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
  -c 'DROP ROLE IF EXISTS reid_kill' -c "CREATE DATABASE $db" \
  -c "CREATE ROLE reid_kill LOGIN IN ROLE caredata_reidentifier" >/dev/null
su >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION caredata;
CREATE TABLE src (nhs_number text);
INSERT INTO src VALUES ('943 476 5919');
SELECT caredata.create_domain('reid_k', 'reidentify kill test');
SELECT caredata.refresh_pseudonyms('reid_k', 'src');
SELECT caredata.register_approval('CAG 9-001', 'section_251', '26/CAG/9001', '{research}', '{reid_kill}',
                                  now() - interval '1 day', now() + interval '1 day');
ALTER ROLE reid_kill SET caredata.reidentify_per_hour = 1;
SQL
p=$(su -c "SELECT pseudonym FROM caredata.pseudonym_map WHERE domain = 'reid_k'")

{ printf '%s\n' "SELECT pg_backend_pid();" "BEGIN;" \
    "SELECT caredata.reidentify('$p', 'CAG 9-001', 'research', 'killed after the answer, case 9301');" \
    "SELECT pg_sleep(30);"; } | psql -qXAt -U reid_kill -d $db >"$work/killed.out" 2>&1 &
client=$!
for _ in $(seq 1 100); do grep -q '943 476 5919' "$work/killed.out" && break; sleep 0.1; done
pid=$(head -1 "$work/killed.out")
kill -KILL "$pid"
wait $client
grep -q '943 476 5919' "$work/killed.out"; ok $? "the killed caller had its answer"
wait_up; ok $? "the server recovered from the SIGKILL"
[ "$(su -c "SELECT count(*) FROM caredata.audit_log WHERE action = 'reidentify' AND actor = 'reid_kill'")" = 1 ]
ok $? "the entry survived the crash"
[ "$(su -c 'SELECT caredata.audit_verify()')" = t ]; ok $? "the chain is intact"
psql -qXAt -U reid_kill -d $db -c "SELECT caredata.reidentify('$p', 'CAG 9-001', 'research', 'after the crash, case 9302')" >"$work/after.out" 2>&1
grep -q 're-identification limit reached: 1 in the last hour' "$work/after.out"; ok $? "the hourly limit (1) counts it"

psql -qX -d postgres -c 'SET client_min_messages = warning' -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
  -c 'DROP ROLE IF EXISTS reid_kill' >/dev/null
echo "1..$n"
[ "$failed" -eq 0 ]
