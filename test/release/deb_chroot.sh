#!/usr/bin/env bash
# test/release/deb_chroot.sh [--setup]: the Debian package installs on a
# stock Debian 12 (bookworm) at its point release, the way a DBA's new
# machine has it before any update: `apt install` of the .deb, in a clean
# bookworm chroot whose apt sources are the bookworm release only (no
# bookworm-updates, no bookworm-security), pulls nothing newer than the
# release's own postgresql-15, and gives a server that preloads caredata,
# reads a key written by the packaged generate-key script into
# /etc/postgresql/caredata/ (made by the package), and answers CREATE
# EXTENSION caredata and a smoke query.  The package is then purged and the
# test cluster dropped, so the chroot stays as it was made.
#
#   test/release/deb_chroot.sh --setup   once, as root: debootstrap bookworm
#                                        (minbase, from Debian's archive) and
#                                        the release's postgresql-15, into
#                                        $CAREDATA_BOOKWORM_CHROOT
#                                        (/var/tmp/caredata-bookworm); a few
#                                        minutes
#   test/release/deb_chroot.sh           the test (make test runs it); TAP.
#
# The package is dist/postgresql-15-caredata_*.deb when it is newer than
# every tracked file, else built first (scripts/package.sh, make deb);
# CAREDATA_DEB names another.  Without a chroot made by --setup, or not as
# root, the test is skipped with a message saying so.  Root only (chroot,
# mounts); the mounts are undone on exit.
. "$(dirname "$0")/../lib.bash"

root=${CAREDATA_BOOKWORM_CHROOT:-/var/tmp/caredata-bookworm}
mirror=${CAREDATA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ready=$root/.caredata-bookworm-ready
# the test cluster's port, apart from the throw-away cluster's
port=$((CAREDATA_PORT + 100))

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
              DEBIAN_FRONTEND=noninteractive "$@"; }

mounted=()
mount_chroot() {
  local dir
  for dir in /proc /dev; do
    mountpoint -q "$root$dir" && continue
    if [ $dir = /proc ]; then mount -t proc proc "$root/proc"
    else mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"; fi
    mounted=("$root$dir" "${mounted[@]}")
  done
}
umount_chroot() { local d; for d in "${mounted[@]}"; do umount -R "$d" 2>/dev/null || umount -lR "$d" 2>/dev/null || true; done; }

if [ "${1:-}" = --setup ]; then
  [ "$(id -u)" -eq 0 ] || { echo "deb_chroot: --setup must run as root (debootstrap, chroot)" >&2; exit 1; }
  set -e
  ensure_packages deb_chroot debootstrap
  rm -rf "$root"; mkdir -p "$root"
  echo "deb_chroot: debootstrap bookworm into $root (a few minutes)"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" \
    > /var/tmp/caredata-debootstrap-bookworm.log 2>&1 ||
    { tail -20 /var/tmp/caredata-debootstrap-bookworm.log >&2; exit 1; }
  # the release only: what a machine installed from the point release's
  # image has before its first update
  echo "deb $mirror bookworm main" > "$root/etc/apt/sources.list"
  rm -f "$root"/etc/apt/sources.list.d/*
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # no service starts inside the chroot (the host's port 5432 is not ours)
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"; chmod 755 "$root/usr/sbin/policy-rc.d"
  trap umount_chroot EXIT
  mount_chroot
  in_root apt-get update -qq
  in_root apt-get install -y -qq --no-install-recommends postgresql-15 > /var/tmp/caredata-bookworm-pg.log 2>&1 ||
    { tail -20 /var/tmp/caredata-bookworm-pg.log >&2; exit 1; }
  in_root pg_dropcluster 15 main 2>/dev/null || true
  in_root dpkg-query -W -f='${Version}\n' postgresql-15 > "$ready"
  echo "deb_chroot: $root ready: Debian $(cat "$root/etc/debian_version"), postgresql-15 $(cat "$ready")"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then echo "1..0 # SKIP the Debian 12 chroot test needs root (chroot, mounts)"; exit 0; fi
if [ ! -f "$ready" ]; then
  echo "1..0 # SKIP no Debian 12 chroot at $root: make one with 'test/release/deb_chroot.sh --setup' (root, a few minutes), or set CAREDATA_BOOKWORM_CHROOT"
  exit 0
fi
major=15
pkg=postgresql-$major-caredata
version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" caredata.control)

# the package: given, or dist/'s if nothing tracked is newer, or built now
deb=${CAREDATA_DEB:-}
if [ -z "$deb" ]; then
  deb=$(ls dist/${pkg}_${version}_*.deb 2>/dev/null | head -1)
  if [ -z "$deb" ] || [ -n "$(git ls-files -z | xargs -0 find 2>/dev/null -maxdepth 0 -newer "$deb" -type f | head -1)" ]; then
    scripts/package.sh > /tmp/caredata-deb-chroot.$$ 2>&1 || { sed 's/^/# /' /tmp/caredata-deb-chroot.$$ | tail -20; }
    rm -f /tmp/caredata-deb-chroot.$$
    deb=$(ls dist/${pkg}_${version}_*.deb 2>/dev/null | head -1)
  fi
fi
[ -n "$deb" ] && [ -f "$deb" ]; ok $? "the package is ${deb:-missing}"
[ -n "$deb" ] && [ -f "$deb" ] || { done_testing; exit 1; }

# one run at a time in the chroot
exec 9>"$root/.caredata-lock"; flock 9
trap 'in_root pg_dropcluster --stop $major caredata_check >/dev/null 2>&1; in_root apt-get purge -y -qq $pkg >/dev/null 2>&1; rm -f "$root/tmp/$(basename "$deb")"; umount_chroot' EXIT
mount_chroot

stock=$(cat "$ready")
! grep -rqsE 'bookworm-(updates|security)|debian-security' "$root/etc/apt/sources.list" "$root/etc/apt/sources.list.d/"
ok $? "the chroot's apt sources are the bookworm release only"
[ "$(in_root dpkg-query -W -f='${Version}' postgresql-$major)" = "$stock" ]
ok $? "it has the release's postgresql-$major $stock (Debian $(cat "$root/etc/debian_version"))"

dep=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/^ *//' | grep "^postgresql-$major\( \|$\)")
floor=$(awk -v m=$major '$1 == m { print $2 }' debian/minor_versions)
[ "$dep" = "postgresql-$major${floor:+ (>> $floor)}" ]
ok $? "it depends on $dep, debian/minor_versions' floor, not the build host's minor"

# the library loads only if the release's server exports every symbol it
# takes from the server (an inline function of a newer minor's headers may
# call a function older servers lack: heap_getattr and heap_datum_check, 15.20)
work=$(mktemp -d)
dpkg-deb -x "$deb" "$work"
libs="$root/usr/lib/postgresql/$major/bin/postgres $(ls "$root"/lib/x86_64-linux-gnu/libm.so.6 "$root"/lib/x86_64-linux-gnu/libc.so.6 2>/dev/null)"
missing=$(comm -23 <(nm -D --undefined-only "$work/usr/lib/postgresql/$major/lib/caredata.so" | awk '$1 == "U" && $2 !~ /@/ { print $2 }' | sort -u) \
                   <(for l in $libs; do nm -D --defined-only "$l" | awk '{ sub(/@.*/, "", $3); print $3 }'; done | sort -u) | tr '\n' ' ')
rm -rf "$work"
[ -z "$missing" ]; ok $? "the release's postgres (and libc, libm) exports every symbol the library takes from the server${missing:+ (missing: $missing)}"

cp "$deb" "$root/tmp/"
out=$(in_root apt-get install -y --no-install-recommends "/tmp/$(basename "$deb")" 2>&1)
ok $? "apt installs the package there"
[ $? -eq 0 ] || echo "$out" | tail -8 | sed 's/^/# /'
[ "$(in_root dpkg-query -W -f='${Status}' $pkg 2>/dev/null)" = "install ok installed" ] &&
  [ "$(in_root dpkg-query -W -f='${Version}' postgresql-$major)" = "$stock" ]
ok $? "installed, with postgresql-$major still at the release's $stock (nothing newer pulled)"

# /etc/postgresql/caredata/: made by the package, for the postgres user to enter
[ -d "$root/etc/postgresql/caredata" ] &&
  [ "$(in_root stat -c '%U:%G %a' /etc/postgresql/caredata)" = "root:postgres 750" ]
ok $? "the package made /etc/postgresql/caredata/ (root:postgres, 0750)"
gen=/usr/lib/postgresql/$major/bin/caredata-generate-key
out=$(in_root $gen /etc/postgresql/caredata/master.key postgres 2>&1)
ok $? "the packaged $gen writes the master key there, as the runbook says"
[ "$(in_root stat -c '%U %a %s' /etc/postgresql/caredata/master.key 2>/dev/null)" = "postgres 600 64" ]
ok $? "64 bytes, mode 0600, owned by postgres"

in_root pg_createcluster $major caredata_check -p $port >/dev/null 2>&1 &&
  printf '%s\n' "shared_preload_libraries = 'caredata'" "caredata.key_file = '/etc/postgresql/caredata/master.key'" \
    "listen_addresses = ''" >> "$root/etc/postgresql/$major/caredata_check/postgresql.conf" &&
  in_root pg_ctlcluster $major caredata_check start >/dev/null 2>&1
ok $? "a cluster preloading caredata starts on the release's server"
out=$(in_root runuser -u postgres -- psql -XAtq -p $port -v ON_ERROR_STOP=1 -d postgres \
  -c "SELECT current_setting('server_version_num')::int / 10000" \
  -c 'CREATE EXTENSION caredata' \
  -c "SELECT extversion FROM pg_extension WHERE extname = 'caredata'" \
  -c "SELECT caredata.key_file_status()" \
  -c "SELECT caredata.nhs_number_is_valid('943 476 5919'), caredata.nhs_number_is_valid('943 476 5918')" \
  -c "SELECT caredata.create_domain('chroot_check', 'smoke test') > 0" \
  -c "SELECT caredata.pseudonymise(9434765919::bigint, 'chroot_check')::text ~ '^[0-9]+[.]1[.][A-Za-z0-9_-]{22}$'" \
  -c 'DROP EXTENSION caredata CASCADE' 2>&1)
want=$(printf '%s\n' $major "$version" ok 't|f' t t)
[ "$out" = "$want" ]; ok $? "CREATE EXTENSION caredata, the key file read, a smoke query (Modulus 11, a pseudonym), DROP EXTENSION"
[ "$out" = "$want" ] || echo "$out" | head -8 | sed 's/^/# /'
in_root pg_dropcluster --stop $major caredata_check >/dev/null 2>&1
rm -f "$root/etc/postgresql/caredata/master.key"

in_root apt-get purge -y -qq $pkg >/dev/null 2>&1
ok $? "apt purges it"
left=$(in_root sh -c "ls -d /usr/lib/postgresql/$major/lib/caredata.so /usr/share/postgresql/$major/extension/caredata* $gen /etc/postgresql/caredata 2>/dev/null")
[ -z "$left" ]; ok $? "nothing of it is left${left:+ (left: $left)}"

done_testing
