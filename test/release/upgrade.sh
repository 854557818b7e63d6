#!/usr/bin/env bash
# test/release/upgrade.sh: releases and upgrades (docs/development.md).
#
#   1. Released install scripts, their control files and released update
#      scripts are never edited: releases/SHA256SUMS still matches them.
#   2. Every release step has its update script (upgrade/A--B.sql), from the
#      oldest release still supported to the control file's default_version.
#   3. Object for object: each released version, updated with ALTER EXTENSION
#      caredata UPDATE, equals a fresh install of the newest version
#      (pg_dump --binary-upgrade --schema-only, which lists every member of
#      the extension with its definition, owner, privileges and comment;
#      OIDs and transaction ids masked).
#   4. Data and behaviour: the oldest release, filled by the demo pipeline
#      (a small synthetic population) and test/release/populate.sql, gives
#      the same test/release/fingerprint.sql (every catalog row by row,
#      policies, pseudonyms in every domain, what the analyst and the
#      recipient see, safe counts, the audit chain) before and after the
#      update.
#   5. pg_dump and pg_restore of that database, with a second linkage
#      project run beside the demo's, into a fresh cluster (its own
#      directory and port, the same key file) give the same fingerprint.
#   6. DROP EXTENSION caredata leaves no schema and no object behind, and
#      the runbook's command removes the cluster-wide roles.
#
# Run by scripts/test.sh against the running throw-away cluster; prints TAP.
. "$(dirname "$0")/../lib.bash"

work=$(mktemp -d); chmod 755 "$work"
second=/var/tmp/caredata-restore-$$
cleanup() {
  CAREDATA_CLUSTER_DIR=$second scripts/cluster.sh stop >/dev/null 2>&1
  rm -rf "$work" "$second"
}
trap cleanup EXIT
q() { psql -qX -v ON_ERROR_STOP=1 "$@"; }
newdb() { q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null; }
# the extension's objects as pg_dump would recreate them in a binary upgrade
objects() {
  pg_dump --binary-upgrade --schema-only -d "$1" |
    grep -v -e 'binary_upgrade_set_next' -e '^-- For binary upgrade' -e '^\\restrict' -e '^\\unrestrict' \
      -e 'relfrozenxid' -e "^WHERE oid = '[0-9]*';\$" |
    sed 's/[0-9]\{5,\}/N/g'
}

newest=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" caredata.control)
released=$(ls releases/caredata--*.sql 2>/dev/null | sed 's/.*caredata--\(.*\)\.sql/\1/' | sort -V)
oldest=$(echo "$released" | head -1)

# 1
(cd releases && sha256sum --quiet --strict -c SHA256SUMS) >"$work/sums" 2>&1
ok $? "released scripts are unchanged (releases/SHA256SUMS: $(wc -l < releases/SHA256SUMS) files)"
unlisted=
for f in releases/caredata--*.sql releases/caredata--*.control upgrade/caredata--*--*.sql; do
  [ -f "$f" ] || continue
  case "$f" in upgrade/*--"$newest".sql) continue ;; esac   # the step to the unreleased version may still change
  grep -q -e " ${f#releases/}\$" -e " ../$f\$" releases/SHA256SUMS || unlisted="$unlisted $f"
done
[ -z "$unlisted" ]; ok $? "every released file is in releases/SHA256SUMS${unlisted:+ (not:$unlisted)}"

# 2
steps=0; missing=
prev=
for v in $released $newest; do
  if [ -n "$prev" ]; then
    steps=$((steps + 1))
    [ -f "upgrade/caredata--$prev--$v.sql" ] || missing="$missing $prev--$v"
  fi
  prev=$v
done
[ -z "$missing" ]; ok $? "every release step from $oldest to $newest has an update script ($steps steps${missing:+; missing:$missing})"

# 3
newdb rel_fresh
q -d rel_fresh -c 'CREATE EXTENSION caredata' >/dev/null
objects rel_fresh > "$work/fresh.objects"
for v in $released; do
  newdb rel_updated
  q -d rel_updated -c "CREATE EXTENSION caredata VERSION '$v'" -c 'ALTER EXTENSION caredata UPDATE' >/dev/null 2>"$work/update.err"
  ok $? "ALTER EXTENSION caredata UPDATE from $v to $newest runs"
  objects rel_updated > "$work/updated.objects"
  diff "$work/updated.objects" "$work/fresh.objects" > "$work/objects.diff"
  ok $? "$v updated equals a fresh $newest object for object ($(grep -c '^ALTER EXTENSION caredata ADD' "$work/fresh.objects") members compared)"
  [ -s "$work/objects.diff" ] && head -40 "$work/objects.diff" | sed 's/^/# /'
done
q -d postgres -c 'DROP DATABASE rel_updated' -c 'DROP DATABASE rel_fresh' >/dev/null

# 4
db=rel_data
newdb $db
q -d $db -c "CREATE EXTENSION caredata VERSION '$oldest'" \
  -c "ALTER DATABASE $db SET search_path = \"\$user\", public, caredata" >/dev/null
mkdir -p "$work/demo-output"
( cd "$work" &&
  q -d $db -c 'SET client_min_messages = warning' -f "$CAREDATA_ROOT/test/synthetic/generate.sql" >/dev/null &&
  q -d $db -c 'SET client_min_messages = warning' -c 'SELECT synth.generate(3000, 42)' >/dev/null &&
  q -d $db -c 'SET client_min_messages = warning' -f "$CAREDATA_ROOT/scripts/demo.sql" >/dev/null 2>"$work/demo.err" &&
  q -d $db -f "$CAREDATA_ROOT/test/release/populate.sql" >/dev/null )
ok $? "$oldest holds data in every catalog (demo pipeline on 3,000 people, then populate.sql)"
empty=$(psql -XAtq -d $db -c "SELECT string_agg(c.relname, ', ' ORDER BY c.relname) FROM pg_class c
   WHERE c.relnamespace = 'caredata'::regnamespace AND c.relkind = 'r'
     AND NOT EXISTS (SELECT 1 FROM pg_stat_user_tables s WHERE s.relid = c.oid AND s.n_tup_ins > 0)
     AND pg_relation_size(c.oid) = 0")
[ -z "$empty" ]; ok $? "no catalog is empty${empty:+ (empty: $empty)}"
psql -X -d $db -f test/release/fingerprint.sql > "$work/before" 2>&1
psql -X -d $db -f test/release/fingerprint.sql > "$work/again" 2>&1
! grep -q 'ERROR' "$work/before" && grep -q '^analyst sees [1-9]' "$work/before" &&
  grep -q '^recipient sees [1-9]' "$work/before" && [ "$(grep -c '^pseudonyms ' "$work/before")" -ge 5 ]
ok $? "the fingerprint runs without error and covers the filter, the publication and 5 or more domains"
grep -m3 'ERROR' "$work/before" | sed 's/^/# /'
cmp -s "$work/before" "$work/again"; ok $? "the fingerprint is read-only ($(wc -l < "$work/before") lines)"
q -d $db -c 'ALTER EXTENSION caredata UPDATE' >/dev/null
[ "$(psql -XAtq -d $db -c "SELECT extversion FROM pg_extension WHERE extname = 'caredata'")" = "$newest" ]
ok $? "the database is at $newest after ALTER EXTENSION caredata UPDATE"
psql -X -d $db -f test/release/fingerprint.sql > "$work/after" 2>&1
diff "$work/before" "$work/after" > "$work/fingerprint.diff"
ok $? "data and behaviour are intact across the update (catalogs, policies, pseudonyms, filter, publication, audit chain)"
[ -s "$work/fingerprint.diff" ] && head -20 "$work/fingerprint.diff" | sed 's/^/# /'
grep -q '^audit chain intact: true$' "$work/after"; ok $? "the audit chain verifies after the update"

# 5
# a second linkage project beside the demo's (which runs in 'default'): the
# dump must keep both, each with its own partitions
q -d $db -c 'SET client_min_messages = warning' \
  -c "SELECT caredata.link_create_project('second', 'the release test''s second project')" \
  -c "SELECT caredata.link_add_source('gp', 'synth.gp_registration', 'record_id', 'nhs_number', 'dob', 'sex', 'postcode', project => 'second')" \
  -c "SELECT caredata.link_create_model('default', '{}', 'second')" \
  -c "SELECT count(*) FROM caredata.link_run(project => 'second')" >/dev/null
ok $? "a second linkage project links beside the demo's"
psql -X -d $db -f test/release/fingerprint.sql > "$work/after" 2>&1
grep -q '^link_project: 1 rows' "$work/after" && ! grep -q 'ERROR' "$work/after"
ok $? "the fingerprint covers the second project"
pg_dump -Fc -d $db -f "$work/data.dump"; ok $? "pg_dump -Fc of the updated database"
pg_dumpall --roles-only > "$work/roles.sql" 2>/dev/null
mkdir -p "$second/keys"
cp "$(scripts/cluster.sh dir)/keys/master.key" "$second/keys/"
[ "$(id -u)" -eq 0 ] && chown -R "$CAREDATA_OS_USER" "$second" && chmod 700 "$second" "$second/keys"
started=1; base=$CAREDATA_PORT
for offset in 29 31 37 41 43; do
  port=$((base + offset))
  if CAREDATA_CLUSTER_DIR=$second CAREDATA_PORT=$port scripts/cluster.sh start >/dev/null 2>&1; then started=0; break; fi
done
ok $started "a fresh cluster with the same key file starts (port $port)"
psql -qX -p "$port" -d postgres -f "$work/roles.sql" >/dev/null 2>&1
q -p "$port" -d postgres -c "CREATE DATABASE $db" -c "ALTER DATABASE $db SET search_path = \"\$user\", public, caredata" >/dev/null
pg_restore -p "$port" -d $db --exit-on-error "$work/data.dump" 2>"$work/restore.err"
ok $? "pg_restore into it succeeds"
[ -s "$work/restore.err" ] && head -5 "$work/restore.err" | sed 's/^/# /'
PGPORT=$port psql -X -d $db -f test/release/fingerprint.sql > "$work/restored" 2>&1
diff "$work/after" "$work/restored" > "$work/restore.diff"
ok $? "the restored database gives the same fingerprint (same pseudonyms, filters, publication, audit chain, both linkage projects)"
[ -s "$work/restore.diff" ] && head -20 "$work/restore.diff" | sed 's/^/# /'

# 6
q -d $db -c 'DROP EXTENSION caredata CASCADE' >/dev/null 2>&1
left=$(psql -XAtq -d $db -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'caredata'")
[ "$left" = 0 ]; ok $? "DROP EXTENSION caredata leaves no schema caredata"
left=$(psql -XAtq -d $db -c "SELECT (SELECT count(*) FROM pg_event_trigger WHERE evtfoid::regproc::text LIKE 'caredata.%')
  + (SELECT count(*) FROM pg_type WHERE typname IN ('nhs_number', 'pseudonym'))")
[ "$left" = 0 ]; ok $? "... nor its types or event triggers"
q -d postgres -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
# the roles are cluster-wide: the runbook's command removes them once no
# database has caredata (here, in the second cluster)
PGPORT=$port q -d postgres -c "DROP DATABASE $db WITH (FORCE)" \
  -c 'DROP OWNED BY caredata_admin, caredata_linker, caredata_analyst, caredata_reidentifier, caredata_patient, caredata_grantee' \
  -c 'DROP ROLE caredata_admin, caredata_linker, caredata_analyst, caredata_reidentifier, caredata_patient, caredata_grantee' >/dev/null 2>"$work/roles.err"
[ "$(PGPORT=$port psql -XAtq -d postgres -c "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'caredata\_%'")" = 0 ]
ok $? "the runbook's DROP ROLE removes the cluster-wide roles once no database has caredata"

done_testing
