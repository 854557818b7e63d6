#!/usr/bin/env bash
# test/harness/rerun.sh: re-running the set-up of make demo and make test
# (scripts/build.sh, then scripts/cluster.sh start) on a running cluster
# keeps it running, and the sessions connected to it, when nothing changed:
# the library is installed again (a new file, the same bytes) and the
# settings are written again.  It restarts only for a library that is
# really different or a setting a reload cannot apply.  On a throw-away
# cluster of its own (its own directory, a port near ours).  Prints TAP.
. "$(dirname "$0")/../lib.bash"

export CAREDATA_CLUSTER_DIR=/var/tmp/caredata-rerun-$$
base=$CAREDATA_PORT
held=
cleanup() { [ -n "$held" ] && kill "$held" 2>/dev/null; scripts/cluster.sh stop >/dev/null 2>&1; rm -rf "$CAREDATA_CLUSTER_DIR"; }
trap cleanup EXIT
started=1
for offset in 2 3 47 53 59; do
  export CAREDATA_PORT=$((base + offset)) PGPORT=$((base + offset))
  rm -rf "$CAREDATA_CLUSTER_DIR"
  if scripts/cluster.sh start >/dev/null 2>&1; then started=0; break; fi
done
[ "$started" -eq 0 ] || { echo "not ok 1 - a throw-away cluster starts"; echo "1..1"; exit 1; }
ok 0 "a throw-away cluster starts (port $CAREDATA_PORT)"

server() { psql -XAtq -d postgres -c "SELECT pg_backend_pid() IS NOT NULL, (SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'), pg_postmaster_start_time()"; }
alive() { [ "$(psql -XAtq -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rerun_held'")" = 1 ]; }
# a client connected through the re-run: a session that sleeps
PGAPPNAME=rerun_held psql -XAtq -d postgres -c 'SELECT pg_sleep(300)' >/dev/null 2>&1 &
held=$!
for _ in $(seq 1 50); do alive && break; sleep 0.1; done
alive; ok $? "a client is connected"
before=$(server)

# the set-up step again, unchanged: build and install (the same library,
# a new file), then start
scripts/build.sh demo >/dev/null 2>&1; ok $? "scripts/build.sh runs again (make install rewrites caredata.so)"
out=$(scripts/cluster.sh start 2>&1)
echo "$out" | grep -q 'already running.*unchanged'; ok $? "scripts/cluster.sh start says the cluster runs on, unchanged ($out)"
[ "$(server)" = "$before" ]; ok $? "the server was not restarted (same postmaster start time)"
alive && kill -0 "$held" 2>/dev/null; ok $? "the connected client's session is still there"
scripts/cluster.sh start >/dev/null 2>&1 && [ "$(server)" = "$before" ] && alive
ok $? "and again: a second re-run keeps it too"

# a different library (its checksum is not the one the server loaded): restart
loaded="$CAREDATA_CLUSTER_DIR/loaded"
sed -i 's/ [^ ]*$/ 0000000000000000/' "$loaded"
out=$(scripts/cluster.sh start 2>&1)
echo "$out" | grep -q 'restarted.*rebuilt library'; ok $? "a rebuilt library restarts it, saying why ($out)"
after=$(server)
[ -n "$after" ] && [ "$after" != "$before" ]; ok $? "... the server was restarted"
# a setting only a restart applies: preloading
out=$(CAREDATA_PRELOAD= scripts/cluster.sh start 2>&1)
echo "$out" | grep -q 'restarted.*shared_preload_libraries'; ok $? "a setting a reload cannot apply restarts it, naming it ($out)"
out=$(scripts/cluster.sh start 2>&1)
echo "$out" | grep -q 'restarted'; ok $? "... and back"
out=$(scripts/cluster.sh start 2>&1)
echo "$out" | grep -q 'unchanged'; ok $? "then it runs on unchanged"
# another port (CAREDATA_PORT, README.md): the server moves there
for offset in 61 67 71; do
  port=$((base + offset))
  "$PGBIN/pg_isready" -q -h 127.0.0.1 -p $port -t 1 || break
done
out=$(CAREDATA_PORT=$port PGPORT=$port scripts/cluster.sh start 2>&1)
PGPORT=$port psql -XAtq -d postgres -c 'SELECT 1' >/dev/null 2>&1; ok $? "another CAREDATA_PORT moves the cluster there ($out)"

done_testing
