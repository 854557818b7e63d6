# test/lib.bash: what the TAP scripts under test/ share (sourced, not a
# suite): the project's settings (scripts/env.sh) with the tree's root as
# the working directory, TAP's ok and plan, and psql as the cluster's
# superuser on postgres and on the script's database, $db.  Each script
# sets db before it calls fresh_db, drop_db or su.  (test/citus/lib.bash
# does the same for the Citus suites.)
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
cd "$CAREDATA_ROOT"

n=0; failed=0
# ok STATUS DESCRIPTION: the next TAP line, "not ok" unless STATUS is 0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }
# the last call of a script: the TAP plan, and the script's status
done_testing() { echo "1..$n"; [ "$failed" -eq 0 ]; }

# psql on postgres without notices, for set-up and clean-up (-c ... as psql)
admin() { psql -qX -d postgres -c 'SET client_min_messages = warning' "$@"; }
# $db dropped (its sessions ended) and created again, then any -c ... given
fresh_db() { admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" "$@" >/dev/null; }
# $db dropped (its sessions ended), then any -c ... given
drop_db() { admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" "$@" >/dev/null; }
# psql on $db, unaligned values only, stopping at the first error
su() { psql -qXAt -v ON_ERROR_STOP=1 -d "$db" "$@"; }
# wait_up [DATABASE]: after a crash, until the server takes connections to
# DATABASE (postgres) again; fails after a minute
wait_up() { for _ in $(seq 1 120); do psql -XAtq -d "${1:-postgres}" -c 'SELECT 1' >/dev/null 2>&1 && return 0; sleep 0.5; done; return 1; }

# Re-identification (test/security/reidentify_committed.sh,
# test/faults/reidentify_kill.sh).
# reidentify_fixture DOMAIN ROLE: $db made again with caredata and a source
# of one patient (943 476 5919) pseudonymised in DOMAIN, and ROLE made again
# as a re-identifier that logs in, under the approval 'CAG 9-001' (section
# 251, research); prints the patient's pseudonym
reidentify_fixture() {
  fresh_db -c "DROP ROLE IF EXISTS $2" -c "CREATE ROLE $2 LOGIN IN ROLE caredata_reidentifier"
  su >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION caredata;
CREATE TABLE src (nhs_number text);
INSERT INTO src VALUES ('943 476 5919');
SELECT caredata.create_domain('$1', 're-identification test');
SELECT caredata.refresh_pseudonyms('$1', 'src');
SELECT caredata.register_approval('CAG 9-001', 'section_251', '26/CAG/9001', '{research}', '{$2}',
                                  now() - interval '1 day', now() + interval '1 day');
SQL
  su -c "SELECT pseudonym FROM caredata.pseudonym_map WHERE domain = '$1'"
}
# answered_and_held ROLE PSEUDONYM JUSTIFICATION OUT: in the background, ROLE
# re-identifies PSEUDONYM inside a transaction it then holds open for 30
# seconds, writing to file OUT; returns once the answer is in OUT (10
# seconds at most), with client set to the psql's process id and pid to its
# backend's
answered_and_held() {
  { printf '%s\n' "SELECT pg_backend_pid();" "BEGIN;" \
      "SELECT caredata.reidentify('$2', 'CAG 9-001', 'research', '$3');" \
      "SELECT pg_sleep(30);"; } | psql -qXAt -U "$1" -d "$db" >"$4" 2>&1 &
  client=$!
  for _ in $(seq 1 100); do grep -q '943 476 5919' "$4" && break; sleep 0.1; done
  pid=$(head -1 "$4")
}
