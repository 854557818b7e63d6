#!/usr/bin/env bash
# test/release/package.sh: the Debian package (scripts/package.sh) builds,
# holds the library and every install and update script where this
# machine's PostgreSQL looks for them, installs with dpkg, gives a working
# CREATE EXTENSION caredata and a smoke query on the running cluster, and
# removes cleanly.  Afterwards the working tree's build is installed again
# (the package and `make install` share paths).  Root only (dpkg); prints TAP.
. "$(dirname "$0")/../lib.bash"

if [ "$(id -u)" -ne 0 ]; then echo "1..0 # SKIP dpkg needs root"; exit 0; fi
major=$($PG_CONFIG --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
# the package is for Debian's server, not another build (make test SANITIZE=1's)
if [ "$($PG_CONFIG --pkglibdir)" != "/usr/lib/postgresql/$major/lib" ]; then
  echo "1..0 # SKIP the server is not Debian's ($PG_CONFIG)"; exit 0
fi
pkg=postgresql-$major-caredata
version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" caredata.control)
restore() { make -s install >/dev/null 2>&1; }
trap restore EXIT

scripts/package.sh > /tmp/caredata-package.$$ 2>&1
ok $? "scripts/package.sh builds the package"
deb=$(ls dist/${pkg}_*.deb 2>/dev/null | head -1)
[ -n "$deb" ]; ok $? "it is ${deb:-missing}"
[ -n "$deb" ] || { cat /tmp/caredata-package.$$ | tail -20 | sed 's/^/# /'; echo "1..$n"; exit 1; }
rm -f /tmp/caredata-package.$$

# lintian: no errors (a maintainer address on a bogus host was one)
command -v lintian >/dev/null || ensure_packages package lintian >/dev/null 2>&1
lint=$(lintian "$deb" 2>/dev/null | grep '^E: ')
[ -z "$lint" ]; ok $? "lintian finds no errors in it"
[ -z "$lint" ] || echo "$lint" | head -5 | sed 's/^/# /'

contents=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
lib=$($PG_CONFIG --pkglibdir); share=$($PG_CONFIG --sharedir)/extension
missing=
for f in "$lib/caredata.so" "$share/caredata.control" "$share/caredata--$version.sql" \
         releases/caredata--*.sql releases/caredata--*.control upgrade/caredata--*--*.sql; do
  case "$f" in releases/*|upgrade/*) f=$share/$(basename "$f") ;; esac
  echo "$contents" | grep -qx "$f" || missing="$missing $f"
done
[ -z "$missing" ]; ok $? "it holds the library, the control files and every install and update script${missing:+ (missing:$missing)}"

dpkg -i "$deb" >/dev/null 2>&1; ok $? "dpkg -i installs it"
[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ]; ok $? "dpkg lists $pkg as installed"
dpkg -S "$lib/caredata.so" 2>/dev/null | grep -q "^$pkg:"; ok $? "the library belongs to the package"

db=caredata_package_check
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
out=$(psql -XAtq -v ON_ERROR_STOP=1 -d $db -c 'CREATE EXTENSION caredata' \
  -c "SELECT extversion FROM pg_extension WHERE extname = 'caredata'" \
  -c "SELECT caredata.nhs_number_is_valid('943 476 5919'), caredata.nhs_number_is_valid('943 476 5918')" \
  -c "SELECT caredata.create_domain('package_check', 'smoke test') > 0" \
  -c "SELECT caredata.pseudonymise(9434765919::bigint, 'package_check')::text ~ '^[0-9]+[.]1[.][A-Za-z0-9_-]{22}$'" 2>&1)
[ "$out" = "$(printf '%s\n' "$version" 't|f' t t)" ]; ok $? "CREATE EXTENSION caredata from the package, and a smoke query (version, Modulus 11, a pseudonym)"
[ "$out" = "$(printf '%s\n' "$version" 't|f' t t)" ] || echo "$out" | head -5 | sed 's/^/# /'
psql -qX -d postgres -c "DROP DATABASE $db" >/dev/null

dpkg -r "$pkg" >/dev/null 2>&1; ok $? "dpkg -r removes it"
left=
for f in "$lib/caredata.so" "$share/caredata.control" "$share/caredata--$version.sql"; do [ -e "$f" ] && left="$left $f"; done
[ -z "$left" ]; ok $? "no file of it is left${left:+ (left:$left)}"

done_testing
