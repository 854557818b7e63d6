#!/usr/bin/env bash
# test/release/limits_dump.sh: publication limits an owner changed survive
# pg_dump and pg_restore (src/publication/kanon_dump.sql): the one row is
# dumped only when changed, and restoring it over the row CREATE EXTENSION
# made sets that row, audited, with the audit chain intact.  Run by
# scripts/test.sh against the running throw-away cluster; prints TAP.
. "$(dirname "$0")/../lib.bash"

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
db=caredata_limits_dump
fresh_db
su -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION caredata' >/dev/null
pg_dump -Fc -d $db -f "$work/default.dump"
[ "$(pg_restore -f - "$work/default.dump" | sed -n '/^COPY caredata.publication_limits /,/^\\\.$/p' | wc -l)" -le 2 ]
ok $? "limits left at their defaults are not dumped (no row)"
su -c 'UPDATE caredata.publication_limits SET k = 7, max_linkable_share = 0.02' >/dev/null
pg_dump -Fc -d $db -f "$work/changed.dump"; ok $? "pg_dump -Fc of a database with changed limits"
drop_db
admin -c "CREATE DATABASE $db" >/dev/null
pg_restore -d $db --exit-on-error "$work/changed.dump" 2>"$work/restore.err"
ok $? "pg_restore succeeds over the row CREATE EXTENSION makes"
[ -s "$work/restore.err" ] && head -5 "$work/restore.err" | sed 's/^/# /'
[ "$(su -c 'SELECT k, max_linkable_share, max_suppressed_share, (SELECT count(*) FROM caredata.publication_limits) FROM caredata.publication_limits')" = "7|0.02|0.05|1" ]
ok $? "the restored database has the changed limits, in one row"
[ "$(su -c "SELECT count(*) FROM caredata.audit_log WHERE action = 'publication.limits'")" -ge 2 ]
ok $? "the change and its restore are both in the audit log"
[ "$(su -c 'SELECT caredata.audit_verify()')" = t ]
ok $? "the audit chain still verifies"
su -c 'DELETE FROM caredata.publication_limits' >/dev/null 2>&1
[ $? -ne 0 ]; ok $? "a DELETE of the one row is still refused"
drop_db
done_testing
