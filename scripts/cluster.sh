#!/usr/bin/env bash
# scripts/cluster.sh start|stop|status|dir: the throw-away PostgreSQL cluster
# used by `make demo`, `make test` and bench/.
#
# The cluster lives in .cluster/ under the repository (gitignored), or under
# /var/tmp when the server's OS user cannot reach the repository (a clone in
# /root).  It listens on 127.0.0.1 only, on $CAREDATA_PORT (55432; another
# value moves it there at the next start), with trust
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

# the installed library, and a checksum of it ("none" when absent)
library() { echo "$($PG_CONFIG --pkglibdir 2>/dev/null)/caredata.so"; }
library_sum() { if [ -f "$(library)" ]; then sha256sum < "$(library)" | cut -c1-16; else echo none; fi; }
# the running postmaster: its pid and start time (postmaster.pid's lines 1
# and 3), which a restart changes
postmaster_id() { sed -n '1p;3p' "$1/postmaster.pid" 2>/dev/null | paste -sd: -; }
# record_loaded DIR DATA SETTINGS LIBRARY: what the running postmaster was
# started with (DIR/loaded: "postmaster-id settings-sum library-sum")
record_loaded() { echo "$(postmaster_id "$2") $3 $4" > "$1/loaded"; }

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
  # test settings are written fresh every start (the repo may have changed),
  # with the port: CAREDATA_PORT may differ from the last start's
  local conf; conf=$(
    echo "port = $CAREDATA_PORT"
    [ -f "$CAREDATA_ROOT/test/cluster.conf" ] && cat "$CAREDATA_ROOT/test/cluster.conf"
    echo "caredata.key_file = '$keys/master.key'"
    # loaded at server start, as docs/runbook.md asks: the key setting is
    # then superuser-only from the first connection (CAREDATA_PRELOAD= for a
    # cluster without, which test/security/preload.sh starts)
    [ -n "${CAREDATA_PRELOAD-caredata}" ] && echo "shared_preload_libraries = '${CAREDATA_PRELOAD-caredata}'"
    true)
  local settings; settings=$(printf '%s\n' "$conf" | sha256sum | cut -c1-16)
  if [ "$(cat "$data/caredata_test.conf" 2>/dev/null)" != "$conf" ]; then
    printf '%s\n' "$conf" > "$data/caredata_test.conf"
    [ "$(id -u)" -eq 0 ] && chown "$CAREDATA_OS_USER" "$data/caredata_test.conf"
  fi
  if as_owner "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    # A running server restarts only when it must, since a restart ends
    # every session: when its settings changed in a way a reload cannot
    # apply (preloading, the key file), or when the library it preloads
    # was rebuilt to something else (a preloaded library is the
    # postmaster's copy, which new backends inherit).  $dir/loaded says
    # what the running postmaster (its pid and start time) was started
    # with: the checksums of these settings and of caredata.so.
    local why=
    local loaded; loaded=$(cat "$dir/loaded" 2>/dev/null || true)
    if [ "${loaded%% *}" = "$(postmaster_id "$data")" ]; then
      if [ "$(echo "$loaded" | cut -d' ' -f2)" != "$settings" ]; then
        as_owner "$PGBIN/pg_ctl" -D "$data" reload >/dev/null 2>&1 || true
        sleep 0.5
        local pending; pending=$(psql -XAtq -d postgres -c "SELECT string_agg(name, ', ') FROM pg_settings WHERE pending_restart" 2>/dev/null) ||
          pending="port $CAREDATA_PORT"   # not reachable there: the port changed
        if [ -n "$pending" ]; then why="its new settings ($pending)"
        else record_loaded "$dir" "$data" "$settings" "$(echo "$loaded" | cut -d' ' -f3)"; fi
      fi
      if [ -n "${CAREDATA_PRELOAD-caredata}" ] && [ "$(echo "$loaded" | cut -d' ' -f3)" != "$(library_sum)" ]; then
        why="${why:+$why and }the rebuilt library ($(library))"
      fi
    else
      # started by other means (pg_ctl, an older scripts/cluster.sh): what
      # it loaded is known only from the server and the files' dates
      as_owner "$PGBIN/pg_ctl" -D "$data" reload >/dev/null 2>&1 || true
      if [ "$(psql -XAtq -d postgres -c 'SHOW shared_preload_libraries' 2>/dev/null)" != "${CAREDATA_PRELOAD-caredata}" ]; then
        why="its new settings (shared_preload_libraries)"
      elif [ -n "${CAREDATA_PRELOAD-caredata}" ] && [ -f "$(library)" ] && [ "$(library)" -nt "$data/postmaster.pid" ]; then
        why="the rebuilt library ($(library))"
      else
        record_loaded "$dir" "$data" "$settings" "$(library_sum)"
      fi
    fi
    if [ -n "$why" ]; then
      as_owner "$PGBIN/pg_ctl" -D "$data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null ||
        { tail -20 "$dir/server.log" >&2; exit 1; }
      record_loaded "$dir" "$data" "$settings" "$(library_sum)"
      echo "cluster: restarted on 127.0.0.1:$CAREDATA_PORT ($data) for $why: sessions were ended"
      return 0
    fi
    echo "cluster: already running on 127.0.0.1:$CAREDATA_PORT ($data), unchanged (sessions kept)"
    return 0
  fi
  # another server (another checkout's cluster, say) on our port: say so
  if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$CAREDATA_PORT" -t 2; then
    echo "cluster: port $CAREDATA_PORT is taken by another server; stop it (make stop in its checkout) or set CAREDATA_PORT" >&2
    exit 1
  fi
  as_owner "$PGBIN/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
    { tail -20 "$dir/server.log" >&2; exit 1; }
  record_loaded "$dir" "$data" "$settings" "$(library_sum)"
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
