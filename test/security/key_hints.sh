#!/usr/bin/env bash
# test/security/key_hints.sh: a key file that is there but that the server
# may not open (mode 0000) is reported as such: SQLSTATE 42501, a hint that
# says what is wrong (its ownership and mode) and never to generate a key,
# which would replace the master secret; key_file_status() says
# 'unreadable'.  A path with no file is 'missing', with a hint to restore
# or re-point first.  Neither shows the path.  sql/key_file.sql covers the
# other bad files; a file the server cannot open needs chmod, outside SQL.
# Runs against the throw-away cluster; restores its key file.  Prints TAP.
. "$(dirname "$0")/../lib.bash"

db=caredata_key_hints
fresh_db
cleanup() {
  admin -c "ALTER SYSTEM RESET caredata.key_file" -c "SELECT pg_reload_conf()" >/dev/null 2>&1
  rm -f "${denied:-}"
  drop_db
}
trap cleanup EXIT
su -c 'CREATE EXTENSION caredata' -c "SELECT caredata.create_domain('hints', 'key hints')" >/dev/null
master=$(su -c 'SHOW caredata.key_file')
denied=$(dirname "$master")/denied.key

# use KEYFILE: point the server at it and wait (10 s at most) for a new session to see it
use() {
  admin -c "ALTER SYSTEM SET caredata.key_file = '$1'" -c "SELECT pg_reload_conf()" >/dev/null
  for _ in $(seq 1 100); do [ "$(su -c 'SHOW caredata.key_file')" = "$1" ] && return 0; sleep 0.1; done
  return 1
}
# the refusal of a keyed call: SQLSTATE|message|detail|hint, then the status
refusal() {
  su -c "\\i sql/include/refusal.psql" \
     -c "SELECT concat_ws('|', r.state, r.message, r.detail, r.hint) FROM pg_temp.refusal('caredata.pseudonymise(9434765919::bigint, ''hints'')', '') r" \
     -c 'SELECT caredata.key_file_status()' 2>&1 | grep -v '^$'
}

cp "$master" "$denied"
chmod 0000 "$denied"
use "$denied"; ok $? "the server reads caredata.key_file from a file that is there but mode 0000"
out=$(refusal)
echo "$out" | sed 's/^/# /'
case "$out" in 42501\|"the server cannot read the file named by caredata.key_file"*) r=0 ;; *) r=1 ;; esac
ok $r "a keyed call refuses with 42501: the server cannot read the file"
hint=$(echo "$out" | head -1 | cut -d'|' -f4)
case "$hint" in *owner*0600*) r=0 ;; *) r=1 ;; esac
ok $r "the hint says what to fix: the file's owner and mode 0600"
case "${hint//Do not generate a new key/}" in *[Gg]enerat*) r=1 ;; *) r=0 ;; esac
[ "$r" = 0 ] && case "$hint" in *"Do not generate a new key"*) ;; *) r=1 ;; esac
ok $r "the hint never says to generate a key: it says not to"
[ "$(echo "$out" | tail -1)" = unreadable ]; ok $? "key_file_status() says unreadable"
case "$out" in *"$(dirname "$master")"*) r=1 ;; *) r=0 ;; esac
ok $r "nothing shows the key file's path"

use "$(dirname "$master")/no-such.key"; ok $? "the server reads caredata.key_file naming a path with no file"
out=$(refusal)
case "$out" in 58P01\|"the file named by caredata.key_file does not exist"*) r=0 ;; *) r=1 ;; esac
ok $r "a keyed call refuses with 58P01: the file does not exist"
case "$(echo "$out" | head -1 | cut -d'|' -f4)" in "If the master secret was moved"*"restore it from its backup"*"Only for a new installation"*) r=0 ;; *) r=1 ;; esac
ok $r "the hint says to re-point or restore first, and to generate only for a new installation"
[ "$(echo "$out" | tail -1)" = missing ]; ok $? "key_file_status() says missing"

use "$master"; ok $? "the master key again"
[ "$(su -c 'SELECT caredata.key_file_status()')" = ok ]; ok $? "key_file_status() says ok"

done_testing
