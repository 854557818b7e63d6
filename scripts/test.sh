#!/usr/bin/env bash
# scripts/test.sh (`make test`): set up from nothing, run every pg_regress
# suite (sql/, expected/) and every pgTAP suite (test/pgtap/, by pg_prove)
# against the throw-away cluster, stop the cluster if it started it (one
# already running, from make demo or make start, is left running), and exit
# non-zero on any failure.  The last line is "N passed, N failed".
set -uo pipefail
. "$(dirname "$0")/env.sh"
cd "$CAREDATA_ROOT"

scripts/build.sh test || exit 1
# a cluster already running (make demo, make start) is left running; one
# started here is stopped at the end
if scripts/cluster.sh status >/dev/null 2>&1; then was_running=1; else was_running=; fi
scripts/cluster.sh start || exit 1
[ -n "$was_running" ] || trap 'scripts/cluster.sh stop' EXIT

passed=0
failed=0
mkdir -p results; rm -f results/times.txt
stage() { echo "stage $1 $(( $(date +%s) - stage_t0 ))s" >> results/times.txt; stage_t0=$(date +%s); }
stage_t0=$(date +%s)

echo "== pg_regress: sql/ against expected/, and the isolation specs (specs/)"
rm -rf regression.diffs regression.out output_iso
make -s installcheck 2>&1 | tee /tmp/caredata-regress.$$
# pg_regress 15 prints "test x ... ok"; 16 and later print TAP, "ok 7 - x"
r_ok=$(grep -cE '\.\.\. ok|^ok [0-9]+ ' /tmp/caredata-regress.$$ || true)
r_bad=$(grep -cE '\.\.\. FAILED|^not ok [0-9]+ ' /tmp/caredata-regress.$$ || true)
for d in regression.diffs output_iso/regression.diffs; do
  if [ -s "$d" ]; then
    echo "-- $d --"
    cat "$d"
    [ "$r_bad" -eq 0 ] && r_bad=1
  fi
done
rm -f /tmp/caredata-regress.$$
passed=$((passed + r_ok)); failed=$((failed + r_bad))
stage pg_regress

echo "== pgTAP: test/pgtap/*.sql"
psql -qX -v ON_ERROR_STOP=1 -d postgres \
  -c 'DROP DATABASE IF EXISTS caredata_tap' -c 'CREATE DATABASE caredata_tap' >/dev/null &&
psql -qX -v ON_ERROR_STOP=1 -d caredata_tap \
  -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION caredata' >/dev/null || { echo "pgTAP database set-up failed"; exit 1; }
tap_files=(test/pgtap/*.sql)
pg_prove -d caredata_tap --ext .sql "${tap_files[@]}" 2>&1 | tee /tmp/caredata-tap.$$
tap_rc=${PIPESTATUS[0]}
t_total=${#tap_files[@]}
t_bad=$(grep -Ec '^test/pgtap/.* (Failed|Dubious|not ok)' /tmp/caredata-tap.$$ || true)
[ "$tap_rc" -ne 0 ] && [ "$t_bad" -eq 0 ] && t_bad=1
rm -f /tmp/caredata-tap.$$
passed=$((passed + t_total - t_bad)); failed=$((failed + t_bad))
stage pgTAP

# scripts [ENV=VALUE...] -- FILE...: the TAP scripts, each a test; their
# times go to results/times.txt
s_ok=0; s_bad=0
scripts() {
  local envs=() f t0
  while [ "$1" != -- ]; do envs+=("$1"); shift; done; shift
  for f in "$@"; do
    t0=$(date +%s)
    if env "${envs[@]}" bash "$f"; then s_ok=$((s_ok + 1)); else s_bad=$((s_bad + 1)); echo "FAILED: $f"; fi
    echo "$f $(( $(date +%s) - t0 ))s" >> results/times.txt
  done
}
echo "== scripts: test/harness/*.sh, test/security/*.sh, test/variation/*.sh, test/release/*.sh (TAP)"
scripts -- test/harness/*.sh test/security/*.sh test/variation/*.sh test/release/*.sh

# test/faults/ crashes a server on purpose, and the SQL-level fuzzer would
# if it found a bug: they run on a cluster of their own (its own directory
# and port, removed afterwards: scripts/side-cluster.sh), so that the
# cluster make demo left running, and the sessions connected to it, are
# never cut off.  (The libFuzzer targets and sqlsmith run in make fuzz.)
if side=$(scripts/side-cluster.sh start faults); then
  set -- $side
  echo "== on a cluster of their own (127.0.0.1:$2, $1): test/fuzz/sql_calls.sh, test/faults/*.sh (TAP)"
  scripts CAREDATA_CLUSTER_DIR="$1" CAREDATA_PORT="$2" -- test/fuzz/sql_calls.sh test/faults/*.sh
  scripts/side-cluster.sh stop faults
else
  s_bad=$((s_bad + 1)); echo "FAILED: the faults cluster did not start"
fi
passed=$((passed + s_ok)); failed=$((failed + s_bad))

stage scripts
echo "== times (results/times.txt): the stages, then the five longest scripts"
grep '^stage' results/times.txt
grep -v '^stage' results/times.txt | sort -k2 -n -r | head -5
echo "== summary: pg_regress $r_ok passed, $r_bad failed; pgTAP files $((t_total - t_bad)) passed, $t_bad failed; scripts $s_ok passed, $s_bad failed"
trap - EXIT
[ -n "$was_running" ] || scripts/cluster.sh stop
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
