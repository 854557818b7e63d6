#!/usr/bin/env bash
# test/fuzz/sql_calls.sh [rounds] [huge]: the SQL-level fuzzer (issue 22).
# Every function, aggregate and procedure of schema caredata is called as
# every role that may execute it (no grant at all, analyst, patient,
# linker, reidentifier, admin, a recipient, a table owner) with boundary
# arguments of each argument's type: NULLs, empty, mismatched and
# wrong-dimension arrays, 0, -1, 2^30, 2^31 - 1, NaN and +-Infinity, huge
# text (huge bytes), values of the extension's own types (set-up and
# generator: test/fuzz/sql_calls.sql).  Each call runs in a transaction that
# is rolled back, under its own statement_timeout.  Errors are fine;
# crashes are not: passes when no backend ended by a signal, no call hung
# past its timeout, and the server still answers.  A crash is replayed
# after the server's restart and the run goes on from the next call; the
# calls that crashed are in results/sql_calls.crashes.  `make test` runs
# 16 rounds of each (function, role), about 21,000 calls, with 1 MB text
# (about 20 s), on a cluster of its own (scripts/side-cluster.sh);
# `make fuzz` 400 rounds (FUZZ_ROUNDS) with 4 MB text and a
# random seed (CAREDATA_FUZZ_SEED replays one).  Prints TAP.
. "$(dirname "$0")/../lib.bash"

rounds=${1:-${CAREDATA_FUZZ_ROUNDS:-16}}
huge=${2:-${CAREDATA_FUZZ_HUGE:-1048576}}
timeout_each=${CAREDATA_FUZZ_TIMEOUT:-2s}
seed=${CAREDATA_FUZZ_SEED:-0.42}

db=caredata_fuzzcalls
prefix=fuzzcall_
roles="nobody analyst patient linker reidentifier admin recipient owner"
log="$(scripts/cluster.sh dir)/server.log"
out=results/sql_calls
mkdir -p results
rm -f "$out".*

cleanup() {
  drop_db 2>/dev/null
  for r in $roles; do psql -qX -d postgres -c "DROP ROLE IF EXISTS $prefix$r" >/dev/null 2>&1; done
}
cleanup
psql -qX -d postgres -c "CREATE DATABASE $db" >/dev/null || { echo "not ok 1 - the fuzz database is created"; echo "1..1"; exit 1; }
if ! psql -qX -v ON_ERROR_STOP=1 -v prefix="$prefix" -d $db -f test/fuzz/sql_calls.sql > "$out.setup" 2>&1; then
  ok 1 "the set-up runs (see $out.setup)"; echo "1..$n"; cleanup; exit 1
fi
psql -XAtq -v ON_ERROR_STOP=1 -d $db \
  -c "SELECT fuzzcall.statements($rounds, $seed, '$timeout_each', '$prefix', $huge)" > "$out.calls" 2>> "$out.setup"
if [ $? -ne 0 ] || [ ! -s "$out.calls" ]; then
  ok 1 "the calls are generated (see $out.setup)"; echo "1..$n"; cleanup; exit 1
fi
total=$(wc -l < "$out.calls")
funcs=$(psql -XAtq -d $db -c "SELECT count(*) FROM pg_proc WHERE pronamespace = 'caredata'::regnamespace AND prokind IN ('f', 'a', 'p') AND NOT ('internal'::regtype = ANY (proargtypes::oid[]))")

# a session that logs nothing below FATAL (huge values in error messages
# would fill the server log) and prints errors as their SQLSTATE only
header() {
  printf '%s\n' '\set VERBOSITY sqlstate' 'SET log_min_messages = fatal;' 'SET log_min_error_statement = panic;' \
    'SET client_min_messages = error;'
}
wait_ready() {
  for _ in $(seq 1 60); do
    psql -XAtq -d $db -c 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 1
  done
  return 1
}

# the watchdog: a call still running 20 s after it started ignored its
# statement_timeout (a loop that never checks for interrupts): recorded,
# and its backend terminated
watchdog() {
  while sleep 2; do
    psql -XAtq -d postgres -c "SELECT pid, substring(query from '/[*] call [0-9]+: [^*]*[*]/')
        FROM pg_stat_activity WHERE datname = '$db' AND state = 'active' AND pid <> pg_backend_pid()
         AND now() - query_start > interval '20 s'" 2>/dev/null |
    while IFS='|' read -r pid q; do
      echo "hung: $q" >> "$out.hangs"
      psql -XAtq -d postgres -c "SELECT pg_terminate_backend($pid)" >/dev/null 2>&1
    done
  done
}
watchdog &
watchdog_pid=$!

: > "$out.err"
before=$(wc -c < "$log")
start=1
crashes=0
t0=$(date +%s)
# each call's budget: its statement_timeout and some; the whole run's: that
# for every call, which no healthy run comes near
while [ "$start" -le "$total" ]; do
  { header; tail -n +"$start" "$out.calls"; echo 'ROLLBACK;'; } |
    psql -X -a -d $db -o /dev/null > "$out.echo" 2>> "$out.err"
  rc=$?
  [ "$rc" -eq 0 ] && break
  last=$(grep -o '^/\* call [0-9]*' "$out.echo" | tail -1 | awk '{print $3}')
  [ -n "$last" ] || last=$start
  line=$(sed -n "${last}p" "$out.calls")
  if grep -q "hung: /\* call $last:" "$out.hangs" 2>/dev/null; then
    :	# the watchdog ended it
  else
    crashes=$((crashes + 1))
    echo "crashed (psql rc $rc): $(echo "$line" | grep -o '^/\* call [^*]*\*/')" >> "$out.crashes"
    echo "$line" | cut -c1-2000 >> "$out.crashes"
  fi
  [ "$crashes" -ge 20 ] && { echo "# giving up after 20 crashes" >&2; break; }
  wait_ready || break
  start=$((last + 1))
done
secs=$(( $(date +%s) - t0 ))
kill "$watchdog_pid" 2>/dev/null; wait "$watchdog_pid" 2>/dev/null
hangs=0; [ -f "$out.hangs" ] && hangs=$(wc -l < "$out.hangs")
signals=$(tail -c +"$((before + 1))" "$log" | grep -c -e 'terminated by signal' -e 'was terminated' || true)
errors=$(grep -c '^ERROR:' "$out.err" || true)
timeouts=$(grep -c '^ERROR:  57014' "$out.err" || true)

ok 0 "$total calls ($funcs functions, aggregates and procedures, $rounds rounds a role, seed $seed) in ${secs}s: $errors errors (fine), $timeouts statement timeouts"
[ "$signals" -eq 0 ] && [ "$crashes" -eq 0 ]
ok $? "no backend ended by a signal ($signals in the server log, $crashes calls lost the connection$([ "$crashes" -gt 0 ] && echo ", see $out.crashes"))"
[ "$hangs" -eq 0 ]; ok $? "no call outlived its statement_timeout ($hangs)"
if [ -s "$out.hangs" ]; then sed 's/^/# /' "$out.hangs" | cut -c1-400; fi
psql -XAtq -d $db -c 'SELECT 1' >/dev/null 2>&1; ok $? "the server still answers"
if [ -s "$out.crashes" ]; then sed 's/^/# /' "$out.crashes" | cut -c1-400; fi
cleanup
done_testing
