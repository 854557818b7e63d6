#!/usr/bin/env bash
# test/security/objection_dump.sh: pg_dump run as a role subject to an
# objection filter either refuses (row_security off, the default) or dumps
# only the permitted rows (--enable-row-security), with --inserts too.
# Run by scripts/test.sh against the running throw-away cluster; prints TAP.
. "$(dirname "$0")/../lib.bash"

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
db=caredata_dump_check
fresh_db -c "DROP ROLE IF EXISTS caredata_dump_reader" -c "CREATE ROLE caredata_dump_reader LOGIN"
psql -qX -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
CREATE EXTENSION caredata;
GRANT caredata_analyst TO caredata_dump_reader;
CREATE TABLE episode (id int, nhs_number caredata.nhs_number, specialty text);
INSERT INTO episode VALUES (1, '999 000 0018', '100'), (2, '999 000 0026', '300'),
                           (3, '999 000 0034', '100'), (4, '999 000 0042', '300');
GRANT SELECT ON episode TO caredata_dump_reader;
SELECT caredata.record_objection('999 000 0026', 'national_data_opt_out', 'test', now() - interval '1 day');
SELECT caredata.record_objection('999 000 0034', 'type1', 'test', now() - interval '1 day');
SELECT caredata.protect('episode', 'nhs_number', 'research');
SQL

pg_dump -U caredata_dump_reader -d $db -t episode --data-only --inserts > "$work/plain.sql" 2> "$work/plain.err"
rc=$?
[ $rc -ne 0 ] && grep -q "row-level security" "$work/plain.err"; ok $? "pg_dump as a filtered role refuses rather than bypass the filter"
pg_dump -U caredata_dump_reader -d $db -t episode --data-only --inserts --enable-row-security > "$work/rls.sql" 2> "$work/rls.err"
ok $? "pg_dump --enable-row-security runs as the filtered role"
[ "$(grep -c '^INSERT INTO' "$work/rls.sql")" = 2 ]; ok $? "it dumps the 2 permitted rows of 4"
! grep -qE '999 000 00(26|34)' "$work/rls.sql"; ok $? "no objector's NHS number is in the dump"
pg_dump -U caredata_dump_reader -d $db -t episode --data-only --enable-row-security > "$work/copy.sql" 2>/dev/null
! grep -qE '999 000 00(26|34)' "$work/copy.sql"; ok $? "nor in a COPY-format dump"

drop_db -c "DROP ROLE caredata_dump_reader"
done_testing
