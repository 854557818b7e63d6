#!/usr/bin/env bash
# test/security/audit_witness.sh: each committed audit append leaves the
# database (issue 22, section 3): the new head's id and hash go to the server
# log, and audit_verify(expected_id, expected_hash) checks the table against
# that witness.  Checks: a committed append writes one line that matches
# audit_head; a rolled-back append, or one in a rolled-back savepoint, writes
# none (the newest line always names a committed entry); the line holds no
# login, action, object or NHS number; PREPARE TRANSACTION after an append is
# refused; and, past the triggers (disabled by the owner), the newest
# entries cut with the head moved back, or both tables truncated, pass
# audit_verify() but fail against the witness read from the log.
# Run by scripts/test.sh against the running throw-away cluster; prints TAP.
. "$(dirname "$0")/../lib.bash"

log="$(scripts/cluster.sh dir)/server.log"
db=caredata_witness
fresh_db
su -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION caredata' >/dev/null
start=$(wc -c < "$log")
lines() { sleep 0.2; tail -c +"$((start + 1))" "$log" | grep "caredata audit head: database $db, "; }
# the newest witness line: "id hash"
witness() { lines | tail -1 | sed -E 's/.*entry ([0-9]+), hash ([0-9a-f]+).*/\1 \2/'; }
head_now() { su -c "SELECT last_id || ' ' || encode(last_hash, 'hex') FROM caredata.audit_head"; }

su -c "SELECT caredata.audit_append('witness.one', 'object-with-a-name', '{\"nhs\": \"9434765919\"}', 'justification text')" >/dev/null
[ "$(lines | wc -l)" = 1 ]; ok $? "a committed append writes one witness line"
[ "$(witness)" = "$(head_now)" ]; ok $? "the line names the new head's id and hash ($(witness | cut -c1-20)...)"
! lines | grep -q -e 9434765919 -e '943 476 5919' -e object-with-a-name -e witness.one -e justification -e postgres
ok $? "the line holds no NHS number, object, action, justification or login"

su -c 'BEGIN' -c "SELECT caredata.audit_append('witness.rolled_back')" -c 'ROLLBACK' >/dev/null
[ "$(lines | wc -l)" = 1 ]; ok $? "a rolled-back append writes no line"
su >/dev/null <<'SQL'
BEGIN;
SELECT caredata.audit_append('witness.kept');
SAVEPOINT s;
SELECT caredata.audit_append('witness.in_savepoint');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SQL
[ "$(lines | wc -l)" = 2 ] && [ "$(witness)" = "$(head_now)" ]
ok $? "a savepoint rolled back: the line names the entry that was committed"
su >/dev/null <<'SQL'
BEGIN;
SELECT caredata.audit_append('witness.two');
SELECT caredata.audit_append('witness.three');
COMMIT;
SQL
[ "$(lines | wc -l)" = 3 ] && [ "$(witness)" = "$(head_now)" ]
ok $? "two appends in one transaction: one line, naming the newer"
out=$(su -c 'BEGIN' -c "SELECT caredata.audit_append('witness.prepared')" -c "PREPARE TRANSACTION 'w'" 2>&1)
echo "$out" | grep -q "a transaction that appended to the audit log cannot be prepared"; ok $? "PREPARE TRANSACTION after an append is refused"
[ "$(su -c "SELECT count(*) FROM caredata.audit_log WHERE action = 'witness.prepared'")" = 0 ]; ok $? "and leaves no entry"

read -r wid whash <<<"$(witness)"
[ "$(su -c "SELECT caredata.audit_verify($wid, '\\x$whash')")" = t ]; ok $? "audit_verify(witness) is true on the untouched log"

# past the triggers: only the owner or a superuser, by disabling them.
# tampered SQL: runs SQL in a transaction it rolls back, and prints what
# audit_verify() and then audit_verify(witness) said there, as t or f each
tampered() { su 2>&1 <<SQL | grep -E '^[tf]$' | tr -d '\n'
BEGIN;
ALTER TABLE caredata.audit_log DISABLE TRIGGER USER;
ALTER TABLE caredata.audit_head DISABLE TRIGGER USER;
$1
SELECT caredata.audit_verify();
SELECT caredata.audit_verify($wid, '\\x$whash');
ROLLBACK;
SQL
}
[ "$(tampered "DELETE FROM caredata.audit_log WHERE id > $wid - 2;
UPDATE caredata.audit_head SET (last_id, last_hash) = (SELECT id, hash FROM caredata.audit_log WHERE id = $wid - 2);")" = tf ]
ok $? "the newest entries cut with the head moved back: the chain passes, the witness does not"
[ "$(tampered 'TRUNCATE caredata.audit_log, caredata.audit_head;')" = tf ]; ok $? "both tables truncated: the chain passes, the witness does not"
repl=$(su 2>&1 <<SQL
SET session_replication_role = replica;
TRUNCATE caredata.audit_log, caredata.audit_head;
SQL
)
echo "$repl" | grep -q 'the audit log is append-only'; ok $? "with session_replication_role = replica the truncation is refused"
[ "$(su -c "SELECT caredata.audit_verify($wid, '\\x$whash')")" = t ]; ok $? "the log is whole again"

drop_db
done_testing
