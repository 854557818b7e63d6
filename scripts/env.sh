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

# apt_get ARG...: apt-get as root (or through sudo), non-interactive, waiting
# up to 10 minutes for the package lock another apt or dpkg holds instead of
# failing at once.  DPkg::Lock::Timeout makes install wait for dpkg's lock;
# update takes the package lists' lock, which apt does not wait for, so an
# update refused for a lock is tried again every 5 seconds, up to the same
# 10 minutes.  (test/harness/deps.sh checks every apt-get in scripts/ goes
# through here or carries the timeout.)
CAREDATA_APT_LOCK_TIMEOUT=${CAREDATA_APT_LOCK_TIMEOUT:-600}
apt_get() {
  local waited=0 err rc
  err=$(mktemp)
  while :; do
    rc=0
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$CAREDATA_APT_LOCK_TIMEOUT" "$@" 2>"$err" || rc=$?
    if [ "$rc" -ne 0 ] && grep -q 'Could not get lock' "$err" && [ "$waited" -lt "$CAREDATA_APT_LOCK_TIMEOUT" ]; then
      [ "$waited" -eq 0 ] && echo "apt-get $1: waiting for the package lock ($(grep -m1 -o 'held by process.*' "$err" || echo 'held by another apt'))" >&2
      sleep 5; waited=$((waited + 5)); continue
    fi
    cat "$err" >&2; rm -f "$err"
    return "$rc"
  done
}

# ensure_packages WHO PACKAGE...: install the Debian packages that are
# missing (apt-get update first, only then), as root or through sudo
ensure_packages() {
  local who=$1; shift
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "$who: need root or sudo to install: ${missing[*]}" >&2; return 1
  fi
  echo "$who: installing ${missing[*]}"
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# copy_worktree DEST: the working tree as it is (tracked and untracked, not
# ignored files; no build products) copied to DEST, made a git repository of
# its own so that what reads the tree through git (make dist, make deb) sees it
copy_worktree() {
  local dest=$1
  rm -rf "$dest"; mkdir -p "$dest"
  (cd "$CAREDATA_ROOT" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$dest"
  git -C "$dest" init -q && git -C "$dest" add -A &&
    git -C "$dest" -c user.name=caredata -c user.email=caredata@localhost commit -qm "working tree" >/dev/null
}
