#!/usr/bin/env bash
# scripts/package.sh (`make deb`): the Debian package postgresql-NN-caredata,
# built as Debian builds PostgreSQL extensions (debian/: pg_buildext, one
# binary package per PostgreSQL version in debian/pgversions that is
# installed), from a copy of the working tree.  Installs the build
# dependencies (build-essential, debhelper, postgresql-server-dev-all,
# dpkg-dev, fakeroot) if missing.  The .deb files land in dist/.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$CAREDATA_ROOT"

ensure_packages package build-essential debhelper postgresql-server-dev-all dpkg-dev fakeroot libssl-dev

version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" caredata.control)
deb_version=$(dpkg-parsechangelog -S Version -l debian/changelog)
[ "$deb_version" = "$version" ] ||
  { echo "package: debian/changelog is at $deb_version, caredata.control at $version: add a changelog entry" >&2; exit 1; }

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
src=$work/caredata-$version
copy_worktree "$src"
(cd "$src" && pg_buildext updatecontrol && dpkg-buildpackage -us -uc -b > "$work/build.log" 2>&1) ||
  { tail -30 "$work/build.log" >&2; exit 1; }
mkdir -p dist
rm -f dist/postgresql-*-caredata_*.deb
cp "$work"/postgresql-*-caredata_*.deb dist/
ls dist/postgresql-*-caredata_*.deb
echo "package: test it on a stock Debian 12 with test/release/deb_chroot.sh (--setup once, as root, makes the chroot)"
