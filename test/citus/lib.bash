# test/citus/lib.bash: what the test/citus/ suites share (sourced, not a
# suite): the nodes' ports (CAREDATA_CITUS_PORTS, from scripts/citus.sh),
# TAP's ok, psql on a node, and a clean caredata on the coordinator before
# and after each suite (test/citus/reset.sql).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/env.sh"
cd "$CAREDATA_ROOT"

read -r coord w1 w2 <<< "${CAREDATA_CITUS_PORTS:-55420 55421 55422}"
n=0; failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }
on() { local port=$1; shift; PGPORT=$port psql -XAtq -d postgres "$@" 2>&1; }

citus_reset() { on "$coord" -v ON_ERROR_STOP=1 -f test/citus/reset.sql >/dev/null; }
# the last call of a suite: clean up, the TAP plan, and the suite's status
citus_done() { on "$coord" -f test/citus/reset.sql >/dev/null; echo "1..$n"; [ "$failed" -eq 0 ]; }
