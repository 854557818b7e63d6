#!/usr/bin/env bash
# scripts/pg-chroot.sh VERSION [TARGET]: `make TARGET` (test by default)
# against a PostgreSQL major version this machine's Debian does not carry,
# inside a Debian chroot that does (17: Debian 13, trixie).  `make test PG=17`
# calls it.  Sets everything up from nothing, idempotently:
#
#   - debootstrap (from apt) makes the chroot once, in $CAREDATA_CHROOT_DIR
#     (/var/tmp/caredata-<suite> by default), and keeps it for the next run;
#   - the working tree (tracked and untracked, not ignored files) is copied to
#     /build/caredata inside it, so the host's build products are untouched;
#   - inside, the same scripts run as on the host: install-deps.sh installs
#     postgresql-VERSION and its -dev and -pgtap packages (CAREDATA_PG), the
#     throw-away cluster listens on CAREDATA_PORT (55417 by default, apart
#     from the host's 55432), and make TARGET runs with that pg_config.
#
# Root only (chroot and mounts); the mounts are undone on exit.
set -euo pipefail
. "$(dirname "$0")/env.sh"

ver=${1:?usage: scripts/pg-chroot.sh VERSION [TARGET]}
target=${2:-test}
# the packages the target needs (scripts/install-deps.sh): demo's, test's or fuzz's
case "$target" in demo|fuzz) deps=$target ;; *) deps=test ;; esac
case "$ver" in
  17) suite=trixie ;;
  *) echo "pg-chroot: PostgreSQL $ver: no Debian suite known for it (17: trixie)" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "pg-chroot: must run as root (debootstrap, chroot, mount)" >&2; exit 1; }

root=${CAREDATA_CHROOT_DIR:-/var/tmp/caredata-$suite}
mirror=${CAREDATA_DEBIAN_MIRROR:-http://deb.debian.org/debian}

ensure_packages pg-chroot debootstrap

if [ ! -f "$root/.caredata-ready" ]; then
  echo "pg-chroot: debootstrap $suite into $root (once; a few minutes)"
  rm -rf "$root"
  mkdir -p "$root"
  debootstrap --variant=minbase --include=ca-certificates,git,make,sudo "$suite" "$root" "$mirror" \
    > /var/tmp/caredata-debootstrap-$suite.log 2>&1 ||
    { tail -20 /var/tmp/caredata-debootstrap-$suite.log >&2; exit 1; }
  touch "$root/.caredata-ready"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
# the host's own certificate authorities (a proxy's, say): apt and npm inside
# trust what the host trusts
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null 2>&1 || true
fi

mounted=()
mount_once() {  # mount_once TYPE-OR--bind SRC DIR
  local dir="$root$3"
  mountpoint -q "$dir" && return 0
  mkdir -p "$dir"
  if [ "$1" = --bind ]; then mount --rbind "$2" "$dir"; mount --make-rslave "$dir"
  else mount -t "$1" "$2" "$dir"; fi
  mounted=("$dir" "${mounted[@]}")
}
cleanup() {
  for d in "${mounted[@]}"; do umount -R "$d" 2>/dev/null || umount -lR "$d" 2>/dev/null || true; done
}
trap cleanup EXIT
mount_once proc proc /proc
mount_once --bind /sys /sys
mount_once --bind /dev /dev

# the working tree, fresh each run (build products of the host excluded)
build=/build/caredata
copy_worktree "$root$build"
chmod 755 "$root/build" "$root$build"

echo "pg-chroot: make $target against PostgreSQL $ver in Debian $suite"
chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root LANG=C.UTF-8 CI="${CI:-}" CAREDATA_PG="$ver" \
  NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npm_config_cafile=/etc/ssl/certs/ca-certificates.crt \
  PG_CONFIG=/usr/lib/postgresql/$ver/bin/pg_config \
  CAREDATA_PORT="${CAREDATA_CHROOT_PORT:-55417}" \
  bash -c "cd $build && scripts/install-deps.sh $deps >/dev/null && make $target"
