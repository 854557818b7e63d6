#!/usr/bin/env bash
# test/security/preload.sh: without shared_preload_libraries = 'caredata',
# caredata.key_file is, until the library loads, an ordinary placeholder
# setting any role can read.  So keyed functions refuse to run in such a
# server, with a hint naming shared_preload_libraries, and key_file_status()
# says why.  Starts a second throw-away cluster without preloading (its own
# directory and port), checks, and removes it.  Prints TAP.
set -uo pipefail
. "$(dirname "$0")/../../scripts/env.sh"
cd "$CAREDATA_ROOT"

n=0; failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }

export CAREDATA_CLUSTER_DIR=/var/tmp/caredata-nopreload-$$
export CAREDATA_PRELOAD=
base=$CAREDATA_PORT
cleanup() { scripts/cluster.sh stop >/dev/null 2>&1; rm -rf "$CAREDATA_CLUSTER_DIR"; }
trap cleanup EXIT
# a port near ours that is free: these ports lie in the kernel's ephemeral
# range, so a client connection may hold one for a while
started=1
for offset in 7 11 13 17 19 23; do
  export CAREDATA_PORT=$((base + offset)) PGPORT=$((base + offset))
  rm -rf "$CAREDATA_CLUSTER_DIR"
  if scripts/cluster.sh start >/dev/null 2>&1; then started=0; break; fi
done
[ "$started" -eq 0 ] || { echo "not ok 1 - a cluster without preloading starts"; echo "1..1"; exit 1; }
ok 0 "a second cluster without preloading starts (port $CAREDATA_PORT)"

[ -z "$(psql -XAtq -d postgres -c 'SHOW shared_preload_libraries')" ]; ok $? "it does not preload caredata"
psql -qX -d postgres -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION caredata' >/dev/null 2>&1
ok $? "caredata installs there"
# create_domain() records the key's fingerprint, so it refuses too; a
# domain written by hand lets pseudonymise() reach its own check
out=$(psql -XAtq -d postgres -c "SELECT caredata.create_domain('preload_test', 'test')" 2>&1)
case "$out" in *"caredata was not loaded at server start"*) r=0 ;; *) r=1 ;; esac
ok $r "create_domain() refuses: caredata was not loaded at server start"
psql -qX -d postgres -v ON_ERROR_STOP=1 -c "INSERT INTO caredata.domain (name, purpose) VALUES ('preload_test', 'test')" \
  -c "INSERT INTO caredata.domain_key (domain_id, version) SELECT id, 1 FROM caredata.domain WHERE name = 'preload_test'" >/dev/null 2>&1
out=$(psql -XAtq -d postgres -c "SELECT caredata.pseudonymise(9434765919::bigint, 'preload_test')" 2>&1)
case "$out" in *"caredata was not loaded at server start"*) r=0 ;; *) r=1 ;; esac
ok $r "pseudonymise() refuses: caredata was not loaded at server start"
case "$out" in *"shared_preload_libraries"*) r=0 ;; *) r=1 ;; esac
ok $r "with a hint naming shared_preload_libraries"
[ "$(psql -XAtq -d postgres -c 'SELECT caredata.key_file_status()')" = "not preloaded" ]
ok $? "key_file_status() says: not preloaded"
# what preloading prevents: here a role without privileges reads the path
psql -qX -d postgres -c 'CREATE ROLE preload_nobody LOGIN' >/dev/null
shown=$(psql -XAtq -d postgres -U preload_nobody -c 'SHOW caredata.key_file' 2>&1)
case "$shown" in */*) r=0 ;; *) r=1 ;; esac
ok $r "(why: without preloading, a fresh connection of a role without privileges reads the key file's path)"

echo "1..$n"
[ "$failed" -eq 0 ]
