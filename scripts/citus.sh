#!/usr/bin/env bash
# scripts/citus.sh SRC_DIR [start|test|bench|stop]: caredata on a Citus
# cluster on this machine (docs/scale-out.md).  Not part of `make test`.
#
#   SRC_DIR  a Citus source tree (a git checkout of citusdata/citus at
#            v13.2.2, say); the project never vendors Citus.
#
# By default (test): installs Citus's build dependencies from apt, builds
# and installs Citus from a copy of SRC_DIR (with one fix for Debian's
# PostgreSQL 15.20, below), builds and installs caredata, starts a
# coordinator and two workers (ports 55420, 55421, 55422, each preloading
# citus and caredata, each with the same key file), runs the suites in
# test/citus/ (TAP), and stops the clusters.  `start` leaves them running;
# `bench` runs bench/citus/*.sql on the coordinator (ratios, as bench/run.sh
# prints them) and stops them; `stop` stops them.
#
# The fix: Citus 13.2.2 defines its own have_createdb_privilege() in
# src/include/pg_version_compat.h for PostgreSQL 15, which Debian's 15.20
# now exports; the copy is replaced by an #include of commands/dbcommands.h.
#
# `stop` stops the three nodes and the single-node cluster ($CAREDATA_PORT,
# 55432 by default) if this script started it to make the key file (it
# stops it as soon as the key is copied, too).  Every apt-get waits up to
# 10 minutes for a package lock another apt or dpkg holds (apt_get in
# scripts/env.sh: -o DPkg::Lock::Timeout=600).
#
# Root only (apt-get, make install); the servers run as $CAREDATA_OS_USER.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$CAREDATA_ROOT"

src=${1:?usage: scripts/citus.sh CITUS_SOURCE_DIR [start|test|bench|stop]}
action=${2:-test}
dir=${CAREDATA_CITUS_DIR:-/var/tmp/caredata-citus}
ports=(55420 55421 55422)   # coordinator, worker 1, worker 2
names=(coordinator worker1 worker2)

# a single-node cluster (scripts/cluster.sh, $CAREDATA_PORT) this script
# started to make the key file: noted here, stopped by stop_all
single=$dir/single-node-started
stop_single() {
  if [ -f "$single" ]; then
    CAREDATA_PORT=$(cat "$single") scripts/cluster.sh stop >/dev/null 2>&1 || true
    rm -f "$single"
  fi
}
stop_all() {
  for i in 0 1 2; do
    CAREDATA_CLUSTER_DIR=$dir/${names[$i]} CAREDATA_PORT=${ports[$i]} scripts/cluster.sh stop >/dev/null 2>&1 || true
  done
  stop_single
}
if [ "$action" = stop ]; then stop_all; exit 0; fi
[ "$(id -u)" -eq 0 ] || { echo "citus: must run as root (apt-get, make install)" >&2; exit 1; }

# 1. build dependencies
ensure_packages citus build-essential autoconf flex libcurl4-openssl-dev liblz4-dev libzstd-dev libssl-dev libkrb5-dev
scripts/build.sh >/dev/null

# 2. Citus, built once per source tree
mkdir -p "$dir"
stamp=$(cd "$src" && (git rev-parse HEAD 2>/dev/null || find . -name '*.c' -newer configure | wc -l))
if [ "$(cat "$dir/built" 2>/dev/null)" != "$stamp" ] || [ ! -f "$($PG_CONFIG --pkglibdir)/citus.so" ]; then
  echo "citus: building Citus from $src ($stamp)"
  rm -rf "$dir/src"; mkdir -p "$dir/src"
  if [ -d "$src/.git" ] || git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$src" archive HEAD | tar -x -C "$dir/src"
  else
    cp -a "$src/." "$dir/src/"
  fi
  # the fix described above, only where the copy is there
  python3 - "$dir/src/src/include/pg_version_compat.h" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
fn = re.search(r'static inline bool\nhave_createdb_privilege\(void\)\n\{.*?\n\}\n', s, re.S)
if fn:
    s = s[:fn.start()] + '#include "commands/dbcommands.h"\n' + s[fn.end():]
    open(p, 'w').write(s)
PY
  (cd "$dir/src" && ./configure PG_CONFIG="$PG_CONFIG" --without-libcurl > "$dir/configure.log" 2>&1 &&
     make -j"$(nproc)" -s > "$dir/build.log" 2>&1 && make -s install >> "$dir/build.log" 2>&1) ||
    { tail -n 30 "$dir/configure.log" "$dir/build.log" >&2; exit 1; }
  echo "$stamp" > "$dir/built"
fi

# 3. three clusters: the same key file, citus and caredata preloaded
stop_all
export CAREDATA_PRELOAD=citus,caredata
keys=$(scripts/cluster.sh dir)/keys
if [ ! -f "$keys/master.key" ]; then
  # the single-node cluster makes the key file; it is not needed after
  mkdir -p "$dir"; echo "$CAREDATA_PORT" > "$single"
  scripts/cluster.sh start >/dev/null
fi
for i in 0 1 2; do
  d=$dir/${names[$i]}
  if [ ! -f "$d/keys/master.key" ]; then
    mkdir -p "$d/keys"; cp "$keys/master.key" "$d/keys/"
    chown -R "$CAREDATA_OS_USER" "$d"; chmod 700 "$d" "$d/keys"
  fi
  CAREDATA_CLUSTER_DIR=$d CAREDATA_PORT=${ports[$i]} scripts/cluster.sh start >/dev/null
done
stop_single
trap '[ "$action" = start ] || stop_all' EXIT
for i in 0 1 2; do
  PGPORT=${ports[$i]} psql -qX -v ON_ERROR_STOP=1 -d postgres \
    -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS citus" >/dev/null
done
PGPORT=${ports[0]} psql -qX -v ON_ERROR_STOP=1 -d postgres \
  -c "SET client_min_messages = warning" \
  -c "SELECT citus_set_coordinator_host('127.0.0.1', ${ports[0]})" \
  -c "SELECT citus_add_node('127.0.0.1', ${ports[1]}) WHERE NOT EXISTS (SELECT FROM pg_dist_node WHERE nodeport = ${ports[1]})" \
  -c "SELECT citus_add_node('127.0.0.1', ${ports[2]}) WHERE NOT EXISTS (SELECT FROM pg_dist_node WHERE nodeport = ${ports[2]})" >/dev/null
echo "citus: $(PGPORT=${ports[0]} psql -XAtq -d postgres -c "SELECT 'Citus ' || citus_version()" | cut -d, -f1) on 127.0.0.1:${ports[0]} (coordinator), :${ports[1]}, :${ports[2]}"
[ "$action" = start ] && exit 0

if [ "$action" = bench ]; then
  # the benchmarks' tables go before the extension they use (test/citus/reset.sql)
  PGPORT=${ports[0]} psql -qX -d postgres -c "SET client_min_messages = warning" -c "DROP SCHEMA IF EXISTS bench CASCADE" >/dev/null
  PGPORT=${ports[0]} psql -qX -v ON_ERROR_STOP=1 -d postgres -f test/citus/reset.sql >/dev/null
  PGPORT=${ports[0]} psql -qX -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" -f bench/lib.sql >/dev/null
  mkdir -p bench/results
  for f in bench/citus/*.sql; do
    name=citus_$(basename "$f" .sql)
    echo "== $f (Citus, coordinator and 2 workers, $(nproc) cores)"
    PGPORT=${ports[0]} psql -qX -v ON_ERROR_STOP=1 -d postgres -f "$f" 2>&1 |
      sed -e 's/^psql:[^:]*:[0-9]*: NOTICE:  //' -e 's/^NOTICE:  //' | tee "bench/results/$name-$(date -u +%Y%m%dT%H%M%SZ).txt"
  done
  PGPORT=${ports[0]} psql -qX -d postgres -c "SET client_min_messages = warning" -c "DROP SCHEMA IF EXISTS bench, synth CASCADE" \
    -f test/citus/reset.sql >/dev/null 2>&1
  exit 0
fi

# 4. the suites
failed=0
for f in test/citus/*.sh; do
  [ -f "$f" ] || continue
  if CAREDATA_CITUS_PORTS="${ports[*]}" bash "$f"; then :; else failed=$((failed + 1)); echo "FAILED: $f"; fi
done
[ "$failed" -eq 0 ]
