#!/usr/bin/env bash
# scripts/cluster.sh start|stop|status|dir: the throw-away PostgreSQL cluster
# used by `make demo`, `make test` and bench/.
#
# The cluster lives in .cluster/ under the repository (gitignored), or under
# /var/tmp when the server's OS user cannot reach the repository (a clone in
# /root).  It listens on 127.0.0.1 only, on $CAREDATA_PORT (55432), with trust
# authentication: it is for tests and demos, never for real data.  As root it
# runs as the unprivileged user $CAREDATA_OS_USER (created if missing),
# because initdb refuses to run as root.
#
# Extra server settings for tests go in test/cluster.conf, which is included
# by postgresql.conf with the key file and shared_preload_libraries = 'caredata'.
set -euo pipefail
. "$(dirname "$0")/env.sh"

ensure_os_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  id "$CAREDATA_OS_USER" >/dev/null 2>&1 ||
    useradd --system --no-create-home --shell /usr/sbin/nologin "$CAREDATA_OS_USER"
}

cluster_dir() {
  if [ -n "${CAREDATA_CLUSTER_DIR:-}" ]; then
    echo "$CAREDATA_CLUSTER_DIR"
  elif [ "$(id -u)" -ne 0 ] || runuser -u "$CAREDATA_OS_USER" -- test -x "$CAREDATA_ROOT" 2>/dev/null; then
    echo "$CAREDATA_ROOT/.cluster"
  else
    echo "/var/tmp/caredata-cluster-$(echo "$CAREDATA_ROOT" | md5sum | cut -c1-8)"
  fi
}

start() {
  ensure_os_user
  local dir; dir=$(cluster_dir)
  local data="$dir/data"
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown "$CAREDATA_OS_USER" "$dir"
    chmod 700 "$dir"
    as_owner "$PGBIN/initdb" -D "$data" -U postgres --auth=trust \
      --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    cat >>"$data/postgresql.conf" <<CONF

# caredata throw-away cluster (scripts/cluster.sh)
listen_addresses = '127.0.0.1'
port = $CAREDATA_PORT
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 512MB
work_mem = 64MB
maintenance_work_mem = 512MB
max_wal_size = 4GB
log_min_messages = warning
include_if_exists = 'caredata_test.conf'
CONF
  fi
  # key files: a master secret for the tests and demo, and bad ones the tests
  # must see refused (keys/ sits beside the data directory, outside it)
  local keys="$dir/keys"
  if [ ! -f "$keys/master.key" ]; then
    mkdir -p "$keys"
    local own=; [ "$(id -u)" -eq 0 ] && own=$CAREDATA_OS_USER
    scripts/generate-key.sh "$keys/master.key" $own >/dev/null
    scripts/generate-key.sh "$keys/other.key" $own >/dev/null
    head -c 16 "$keys/master.key" > "$keys/short.key"
    cp "$keys/master.key" "$keys/group.key"; chmod 0640 "$keys/group.key"
    cp "$keys/master.key" "$keys/world.key"; chmod 0604 "$keys/world.key"
    chmod 0600 "$keys/short.key"
    [ -n "$own" ] && chown -R "$own" "$keys"
  fi
  # test settings are written fresh every start (the repo may have changed)
  {
    [ -f "$CAREDATA_ROOT/test/cluster.conf" ] && cat "$CAREDATA_ROOT/test/cluster.conf"
    echo "caredata.key_file = '$keys/master.key'"
    # loaded at server start, as docs/runbook.md asks: the key setting is
    # then superuser-only from the first connection (CAREDATA_PRELOAD= for a
    # cluster without, which test/security/preload.sh starts)
    [ -n "${CAREDATA_PRELOAD-caredata}" ] && echo "shared_preload_libraries = '${CAREDATA_PRELOAD-caredata}'"
  } > "$data/caredata_test.conf"
  [ "$(id -u)" -eq 0 ] && chown "$CAREDATA_OS_USER" "$data/caredata_test.conf"
  if as_owner "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    # a cluster started before its settings changed (preloading, say), or
    # before the library it preloads was rebuilt, restarts: a preloaded
    # library is the postmaster's copy, which new backends inherit
    local lib; lib="$($PG_CONFIG --pkglibdir 2>/dev/null)/caredata.so"
    if [ "$(psql -XAtq -d postgres -c 'SHOW shared_preload_libraries' 2>/dev/null)" != "${CAREDATA_PRELOAD-caredata}" ] ||
       { [ -n "${CAREDATA_PRELOAD-caredata}" ] && [ -f "$lib" ] && [ "$lib" -nt "$data/postmaster.pid" ]; }; then
      as_owner "$PGBIN/pg_ctl" -D "$data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null ||
        { tail -20 "$dir/server.log" >&2; exit 1; }
      echo "cluster: restarted on 127.0.0.1:$CAREDATA_PORT ($data) for its new settings"
      return 0
    fi
    # settings that a reload applies (test/cluster.conf's logging, say)
    as_owner "$PGBIN/pg_ctl" -D "$data" reload >/dev/null 2>&1 || true
    echo "cluster: already running on 127.0.0.1:$CAREDATA_PORT ($data)"
    return 0
  fi
  # another server (another checkout's cluster, say) on our port: say so
  if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$CAREDATA_PORT" -t 2; then
    echo "cluster: port $CAREDATA_PORT is taken by another server; stop it (make stop in its checkout) or set CAREDATA_PORT" >&2
    exit 1
  fi
  as_owner "$PGBIN/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
    { tail -20 "$dir/server.log" >&2; exit 1; }
  echo "cluster: started on 127.0.0.1:$CAREDATA_PORT ($data)"
}

stop() {
  local data; data="$(cluster_dir)/data"
  if [ -f "$data/postmaster.pid" ]; then
    as_owner "$PGBIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null && echo "cluster: stopped"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) as_owner "$PGBIN/pg_ctl" -D "$(cluster_dir)/data" status ;;
  dir) cluster_dir ;;
  *) echo "usage: $0 start|stop|status|dir" >&2; exit 2 ;;
esac
