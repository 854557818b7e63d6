#!/usr/bin/env bash
# bench/run.sh [name ...]: run benchmarks (bench/NAME.sql; all by default)
# against the throw-away cluster.  Each prints its timings as ratios to a
# baseline measured in the same run; results also go to bench/results/.
set -euo pipefail
. "$(dirname "$0")/../scripts/env.sh"
cd "$CAREDATA_ROOT"

scripts/build.sh >/dev/null
# a cluster already running (make demo, make start) is left running; one
# started here is stopped at the end
if scripts/cluster.sh status >/dev/null 2>&1; then was_running=1; else was_running=; fi
scripts/cluster.sh start
[ -n "$was_running" ] || trap 'scripts/cluster.sh stop' EXIT

export PGDATABASE=caredata_bench
psql -qX -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'caredata_bench'" | grep -q 1 ||
  psql -qX -d postgres -c 'CREATE DATABASE caredata_bench'
psql -qX -v ON_ERROR_STOP=1 -c 'DROP EXTENSION IF EXISTS caredata CASCADE' -c 'DROP SCHEMA IF EXISTS caredata CASCADE' \
  -c 'CREATE EXTENSION caredata' -c 'CREATE EXTENSION IF NOT EXISTS pgcrypto' 2>&1 | grep -v NOTICE || true
psql -qX -v ON_ERROR_STOP=1 -f bench/lib.sql

if [ $# -eq 0 ]; then
  set -- $(ls bench/*.sql | xargs -n1 basename | sed 's/\.sql$//' | grep -v '^lib$')
fi
mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
for name in "$@"; do
  echo "== bench/$name.sql ($(nproc) cores, PostgreSQL $(psql -XtAc 'SHOW server_version'))"
  psql -qX -v ON_ERROR_STOP=1 -f "bench/$name.sql" 2>&1 |
    sed -e 's/^psql:[^:]*:[0-9]*: NOTICE:  //' -e 's/^NOTICE:  //' | tee "bench/results/$name-$stamp.txt"
done
