#!/usr/bin/env bash
# scripts/package.sh (`make deb`): the Debian package postgresql-NN-caredata,
# built as Debian builds PostgreSQL extensions (debian/: pg_buildext, one
# binary package per PostgreSQL version in debian/pgversions that is
# installed), from a copy of the working tree.  Installs the build
# dependencies (build-essential, debhelper, postgresql-server-dev-all,
# dpkg-dev, fakeroot) if
# missing.  The .deb files land in dist/.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$CAREDATA_ROOT"

need=(build-essential debhelper postgresql-server-dev-all dpkg-dev fakeroot libssl-dev)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "package: installing ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" caredata.control)
deb_version=$(dpkg-parsechangelog -S Version -l debian/changelog)
[ "$deb_version" = "$version" ] ||
  { echo "package: debian/changelog is at $deb_version, caredata.control at $version: add a changelog entry" >&2; exit 1; }

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
src=$work/caredata-$version
mkdir -p "$src"
git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$src"
(cd "$src" && pg_buildext updatecontrol && dpkg-buildpackage -us -uc -b > "$work/build.log" 2>&1) ||
  { tail -30 "$work/build.log" >&2; exit 1; }
mkdir -p dist
rm -f dist/postgresql-*-caredata_*.deb
cp "$work"/postgresql-*-caredata_*.deb dist/
ls dist/postgresql-*-caredata_*.deb
