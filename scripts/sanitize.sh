#!/usr/bin/env bash
# scripts/sanitize.sh (`make test SANITIZE=1`): the whole `make test` against
# a PostgreSQL server and a caredata built with AddressSanitizer and
# UndefinedBehaviorSanitizer, then a count of sanitizer reports (the goal:
# zero).
#
# Debian's postgres binary cannot load the sanitizer runtimes (it hangs, even
# `postgres --version`), so this builds PostgreSQL itself, once, from
# Debian's own source package (apt-get source postgresql-15), configured
# with -fsanitize=address,undefined and assertions, into $CAREDATA_ASAN_PREFIX
# (/opt/caredata-asan/pg15); about 15 minutes on 2 cores.  caredata is then
# built with that server's pg_config, whose CFLAGS carry the same sanitizers,
# in a copy of the working tree ($CAREDATA_ASAN_DIR/build), and its
# throw-away cluster runs from there on port $CAREDATA_ASAN_PORT (55415).
#
# Reports go to $CAREDATA_ASAN_DIR/reports/ (one file per process that found
# something); leak checking is off (the postmaster's memory lives until
# exit by design).  Root only (apt-get, the build's install).
set -euo pipefail
. "$(dirname "$0")/env.sh"
[ "$(id -u)" -eq 0 ] || { echo "sanitize: must run as root (apt-get, install)" >&2; exit 1; }

dir=${CAREDATA_ASAN_DIR:-/var/tmp/caredata-asan}
prefix=${CAREDATA_ASAN_PREFIX:-/opt/caredata-asan/pg15}
port=${CAREDATA_ASAN_PORT:-55415}
flags='-fsanitize=address,undefined -fno-omit-frame-pointer'
mkdir -p "$dir"

# what building PostgreSQL needs (the release tarball carries bison's and flex's output)
ensure_packages sanitize dpkg-dev bzip2 gcc make libssl-dev zlib1g-dev libreadline-dev libxml2-dev pkg-config

if [ ! -x "$prefix/bin/postgres" ] || [ ! -x "$prefix/lib/postgresql/pgxs/src/test/isolation/pg_isolation_regress" ] ||
   ! ASAN_OPTIONS=detect_leaks=0 "$prefix/bin/pg_config" --configure 2>/dev/null | grep -q -- --with-libxml; then
  src=$(ls -d "$dir"/src/postgresql-15.*/ 2>/dev/null | head -1 || true)
  if [ -z "$src" ]; then
    echo "sanitize: fetching Debian's postgresql-15 source package"
    # Debian's deb-src lines, if the machine has none
    if ! grep -rqs '^Types: deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      cat > /etc/apt/sources.list.d/caredata-deb-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
      apt_get update -qq
    fi
    mkdir -p "$dir/src"
    (cd "$dir/src" && apt_get source --download-only postgresql-15 >/dev/null 2>&1 &&
       tar xjf postgresql-15_*.orig.tar.bz2)
    src=$(ls -d "$dir"/src/postgresql-15.*/ | head -1)
  fi
  echo "sanitize: building PostgreSQL $(basename "$src") with ASan and UBSan into $prefix (once; ~15 min)"
  (cd "$src" &&
    ./configure --prefix="$prefix" --enable-debug --enable-cassert --with-openssl --with-libxml --without-icu \
      CFLAGS="-O1 -g $flags" LDFLAGS="$flags" > "$dir/configure.log" 2>&1 &&
    make -s -C src/backend generated-headers > "$dir/build.log" 2>&1 &&
    make -j"$(nproc)" -s world-bin >> "$dir/build.log" 2>&1 &&
    make -s install-world-bin >> "$dir/build.log" 2>&1 &&
    make -s -C src/test/isolation install >> "$dir/build.log" 2>&1) ||
    { tail -n 20 "$dir/configure.log" "$dir/build.log" >&2; exit 1; }
fi
export ASAN_OPTIONS="detect_leaks=0:log_path=$dir/reports/asan:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$dir/reports/ubsan"

# Debian's pgTAP (install-deps.sh installs it) is SQL only: the same files serve
scripts/install-deps.sh test >/dev/null
cp /usr/share/postgresql/15/extension/pgtap* "$prefix/share/postgresql/extension/"

# a copy of the working tree, so the host's build products stay untouched
build=$dir/build
rm -rf "$dir/reports"; mkdir -p "$dir/reports"
copy_worktree "$build"
chmod 755 "$dir" "$build"; chmod 1777 "$dir/reports"

echo "sanitize: make test against $("$prefix/bin/postgres" --version), port $port"
rc=0
(cd "$build" && env -u MAKEFLAGS -u MAKELEVEL -u SANITIZE PG_CONFIG="$prefix/bin/pg_config" PGBIN="$prefix/bin" CAREDATA_PORT=$port scripts/test.sh) || rc=$?

reports=$(ls "$dir/reports" | wc -l)
if [ "$reports" -gt 0 ]; then
  echo "sanitize: $reports sanitizer report(s) in $dir/reports:"
  grep -h -m1 -E 'ERROR: AddressSanitizer|runtime error' "$dir"/reports/* | sort | uniq -c | head -20
  rc=1
else
  echo "sanitize: no sanitizer report (AddressSanitizer, UndefinedBehaviorSanitizer)"
fi
exit $rc
