#!/usr/bin/env bash
# test/release/meta.sh: META.json as PGXN reads it (the PGXN Meta Spec 1.0.0:
# required keys, semantic versions, one version everywhere, files that
# exist, prerequisites), and `make dist` gives the archive PGXN accepts: a
# zip of one directory caredata-VERSION/ holding META.json and the sources.
# (META.json was also checked against PGXN's own JSON schemas, pgxn/meta
# schema/v1, outside the project: docs/development.md.)  Prints TAP.
. "$(dirname "$0")/../lib.bash"

version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" caredata.control)

while IFS='|' read -r rc what; do ok "$rc" "$what"; done < <(python3 - "$version" <<'PY'
import json, os, re, sys
version = sys.argv[1]
semver = re.compile(r'^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$')
def ok(cond, what):
    print('%d|%s' % (0 if cond else 1, what))
m = json.load(open('META.json'))
ok(all(k in m for k in ('name', 'abstract', 'version', 'maintainer', 'license', 'provides', 'meta-spec')),
   'META.json has every required key (name, abstract, version, maintainer, license, provides, meta-spec)')
ok(m.get('meta-spec', {}).get('version') == '1.0.0', 'it follows the PGXN Meta Spec 1.0.0')
ok(m['name'] == 'caredata' and re.match(r'^[^/\\\s]{2,}$', m['name']) is not None, 'its name is caredata')
ok(bool(semver.match(m['version'])) and m['version'] == version,
   'its version %s is semantic and is the control file\'s default_version' % m['version'])
p = m['provides'].get('caredata', {})
ok(p.get('version') == version and os.path.isfile(p.get('file', '')) and os.path.isfile(p.get('docfile', '')),
   'provides caredata at that version, with a file and a docfile that exist')
ok(m['license'] == 'postgresql' and os.path.isfile('LICENSE'), 'its license is the PostgreSQL licence, as LICENSE says')
req = m.get('prereqs', {}).get('runtime', {}).get('requires', {})
ok(req.get('PostgreSQL') == '15.0.0' and 'OpenSSL' in req, 'it requires PostgreSQL 15 or later and OpenSSL at run time')
ok(all(bool(semver.match(v)) for ph in m['prereqs'].values() for rel in ph.values() for v in rel.values()),
   'every prerequisite version is semantic')
ok(all(k in ('bugtracker', 'repository', 'homepage') for k in m.get('resources', {})), 'resources names only known kinds')
# stable: `pgxn install caredata`, as the runbook says it, takes stable releases only
ok(m.get('release_status') == 'stable', 'release_status is stable, so that pgxn install caredata (stable only by default) takes it')
ok(not any('localhost' in json.dumps(v) for v in (m.get('resources', {}), m.get('maintainer'))), 'no resource or maintainer on localhost')
PY
)

# make dist: the archive of HEAD
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
make -s dist >/dev/null 2>&1; ok $? "make dist runs"
zip=dist/caredata-$version.zip
top=$(python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); print(' '.join(sorted({p.split('/')[0] for p in z.namelist()})))" "$zip" 2>/dev/null)
[ "$top" = "caredata-$version" ]; ok $? "the zip holds one directory, caredata-$version/"
python3 -c "
import zipfile, sys
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ['META.json', 'Makefile', 'caredata.control', 'LICENSE', 'README.md', 'releases/SHA256SUMS']
sys.exit(0 if all(sys.argv[2] + '/' + f in names for f in need) and not any('/.cluster/' in x or x.endswith('.so') for x in names) else 1)
" "$zip" "caredata-$version"
ok $? "with META.json, the Makefile, the control file, LICENSE, README and the released scripts, and no build products"

# the runbook's PGXN and source routes name what building needs
deps_line=$(grep -E '^sudo apt install build-essential' docs/runbook.md)
for p in build-essential postgresql-server-dev-15 libssl-dev; do
  case " $deps_line " in *" $p "*) ;; *) deps_line= ;; esac
done
[ -n "$deps_line" ]; ok $? "the runbook's PGXN and source routes install build-essential postgresql-server-dev-15 libssl-dev"
grep -q '^pgxn install caredata$' docs/runbook.md && grep -q '^make dist && pgxn install ./dist/caredata-<version>.zip$' docs/runbook.md
ok $? "the runbook gives pgxn install caredata, and the checkout's archive for before a release reaches PGXN"

# what the runbook's PGXN route does: the PGXN client itself installs the
# archive (unpack, make, make install into PG_CONFIG's directories; --sudo
# env: no sudo, we may write there); the working tree's build goes back after
if ! command -v pgxn >/dev/null; then ensure_packages meta pgxnclient >/dev/null 2>&1; fi
lib=$($PG_CONFIG --pkglibdir)/caredata.so
rm -f "$lib" "$($PG_CONFIG --bindir)/caredata-generate-key"
(cd "$work" && pgxn install --sudo env --pg_config "$PG_CONFIG" "$CAREDATA_ROOT/$zip" > "$work/build.log" 2>&1) &&
  [ -f "$lib" ] && [ -f "$($PG_CONFIG --sharedir)/extension/caredata--$version.sql" ] &&
  [ -x "$($PG_CONFIG --bindir)/caredata-generate-key" ]
ok $? "pgxn install of the archive builds and installs the library, the install script and caredata-generate-key"
[ -f "$lib" ] || tail -5 "$work/build.log" | sed 's/^/# /'
make -s install >/dev/null 2>&1

done_testing
