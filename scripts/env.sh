# scripts/env.sh: sourced by the other scripts.  Where the throw-away cluster
# lives and how to reach it.  Override with the CAREDATA_* variables.

CAREDATA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
PGBIN=${PGBIN:-$($PG_CONFIG --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
# a port well away from a system cluster's 5432
CAREDATA_PORT=${CAREDATA_PORT:-55432}
# the OS user the server runs as when we are root (initdb refuses root)
CAREDATA_OS_USER=${CAREDATA_OS_USER:-caredata}

export PGHOST=127.0.0.1
export PGPORT=$CAREDATA_PORT
export PGUSER=postgres
export PGDATABASE=${PGDATABASE:-postgres}
unset PGPASSWORD PGSERVICE

SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo

# run a command as the cluster's owner
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    # from /, which the server's user can always enter (a clone may sit in /root)
    (cd / && runuser -u "$CAREDATA_OS_USER" -- "$@")
  else
    "$@"
  fi
}
