#!/usr/bin/env bash
# scripts/side-cluster.sh start|stop NAME: a second throw-away cluster, for
# the tests that crash a server on purpose (test/faults/) and the fuzzers
# (which would crash it if they found a bug), so that the cluster make demo
# left running, and the sessions connected to it, are never cut off.
#
#   start NAME  makes and starts it in the main cluster's directory with
#               -NAME appended (.cluster-NAME), on CAREDATA_SIDE_PORT or the
#               first free port just above CAREDATA_PORT; prints "DIR PORT"
#   stop NAME   stops it and removes its directory
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$CAREDATA_ROOT"
name=${2:?usage: $0 start|stop NAME}
dir="$(scripts/cluster.sh dir)-$name"
case "$1" in
  start)
    for port in ${CAREDATA_SIDE_PORT:-$((CAREDATA_PORT + 1)) $((CAREDATA_PORT + 2)) $((CAREDATA_PORT + 3)) $((CAREDATA_PORT + 5)) $((CAREDATA_PORT + 8))}; do
      rm -rf "$dir"
      if CAREDATA_CLUSTER_DIR=$dir CAREDATA_PORT=$port scripts/cluster.sh start >/dev/null 2>&1; then
        echo "$dir $port"; exit 0
      fi
    done
    rm -rf "$dir"
    echo "side-cluster: no free port for the $name cluster (set CAREDATA_SIDE_PORT)" >&2; exit 1 ;;
  stop)
    CAREDATA_CLUSTER_DIR=$dir scripts/cluster.sh stop >/dev/null 2>&1 || true
    rm -rf "$dir" ;;
  *) echo "usage: $0 start|stop NAME" >&2; exit 2 ;;
esac
