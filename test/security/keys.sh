#!/usr/bin/env bash
# test/security/keys.sh: checks on key material that need more than SQL.
#  1. Known answer: a pseudonym of a new key version (aes256-cmac) equals
#     AES-256-CMAC under HKDF-SHA256(master, salt "caredata", info "caredata
#     domain key v2|<domain>|<version>"); one of a version made before 0.2.0
#     (hmac-sha256) equals HMAC-SHA256 truncated to 128 bits under info
#     "caredata domain key v1|<domain>|<version>"; both computed
#     independently with the openssl CLI.
#  2. pg_dump of a database using caredata contains no key material (master
#     secret or derived key, raw, hex or base64) but does contain the domains.
#  3. The server log contains no key material either.
# Run by scripts/test.sh against the running throw-away cluster; prints TAP.
. "$(dirname "$0")/../lib.bash"

hex() { od -An -v -tx1 | tr -d ' \n'; }

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
db=caredata_keys_check
fresh_db
psql -qX -d $db -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION caredata' \
  -c "SELECT caredata.create_domain('kat', 'known answer test')" \
  -c "SELECT caredata.create_domain('kat_hmac', 'known answer test, a version made before 0.2.0')" \
  -c "UPDATE caredata.domain_key SET scheme = 'hmac-sha256' WHERE domain_id = (SELECT id FROM caredata.domain WHERE name = 'kat_hmac')" >/dev/null
keyfile=$(psql -XtA -d $db -c "SHOW caredata.key_file")
[ -s "$keyfile" ] || { echo "not ok - no readable key file named by caredata.key_file"; exit 1; }
master_hex=$(hex < "$keyfile")
derive() {  # $1 HKDF info
  openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt "hexkey:$master_hex" \
    -kdfopt salt:caredata -kdfopt "info:$1" HKDF | tr -d ':\n' | tr 'A-F' 'a-f'
}
derived_hex=$(derive 'caredata domain key v2|kat|1')
hmac_derived_hex=$(derive 'caredata domain key v1|kat_hmac|1')

# 1. known answers: an NHS number in any form or type is authenticated as
#    'N' + its 8 big-endian bytes; other identifiers (pseudonymise_identifier)
#    as 'B' + 8 bytes for a bigint, 'T' + the bytes for a text
check_kat() {  # $1 sql value, $2 hex of the authenticated message, $3 label, $4 function
  local p tok expect f=${4:-pseudonymise}
  p=$(psql -XtA -d $db -c "SELECT caredata.$f($1, 'kat')")
  tok=$(printf '%s==' "${p##*.}" | tr -- '-_' '+/' | base64 -d 2>/dev/null | hex)
  expect=$(printf '%s' "$2" | xxd_r | openssl mac -cipher AES-256-CBC -macopt "hexkey:$derived_hex" -binary CMAC | hex)
  [ -n "$tok" ] && [ "$tok" = "$expect" ]; ok $? "known answer: $f($3) is AES-256-CMAC under the HKDF domain key"
  p=$(psql -XtA -d $db -c "SELECT caredata.$f($1, 'kat_hmac')")
  tok=$(printf '%s==' "${p##*.}" | tr -- '-_' '+/' | base64 -d 2>/dev/null | hex)
  expect=$(printf '%s' "$2" | xxd_r | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hmac_derived_hex" -binary | head -c 16 | hex)
  [ -n "$tok" ] && [ "$tok" = "$expect" ]; ok $? "known answer: $f($3) of an hmac-sha256 version is HMAC-SHA256/128 under its HKDF key"
}
xxd_r() { local h; h=$(cat); printf '%b' "$(printf '%s' "$h" | sed 's/../\\x&/g')"; }
check_kat "'943 476 5919'::caredata.nhs_number" "4e$(printf '%016x' 9434765919)" "nhs_number"
check_kat "9434765919::bigint" "4e$(printf '%016x' 9434765919)" "bigint NHS number"
check_kat "'943-476-5919'::text" "4e$(printf '%016x' 9434765919)" "text NHS number"
check_kat "9434765919::bigint" "42$(printf '%016x' 9434765919)" "bigint" pseudonymise_identifier
check_kat "'Jane Doe'::text" "54$(printf 'Jane Doe' | hex)" "text" pseudonymise_identifier
check_kat "'Jane Doe, 1 High Street, Leeds LS1 1AA'::text" "54$(printf 'Jane Doe, 1 High Street, Leeds LS1 1AA' | hex)" "text of three blocks" pseudonymise_identifier

# 2. pg_dump
pg_dump -d $db > "$work/dump.sql"
pg_dump -d $db -Fc > "$work/dump.custom"
grep -q "known answer test" "$work/dump.sql"; ok $? "pg_dump keeps the domain catalog (user rows are dumped)"
for f in dump.sql dump.custom; do
  h=$(hex < "$work/$f")
  t=$(cat "$work/$f" | tr -d '\0')
  found=0
  case "$h" in *"$master_hex"*|*"$derived_hex"*|*"$hmac_derived_hex"*) found=1 ;; esac
  for needle in "$master_hex" "$derived_hex" "$hmac_derived_hex" "$(base64 -w0 < "$keyfile")" \
                "$(printf '%s' "$derived_hex" | xxd_r | base64 -w0)"; do
    case "$t" in *"$needle"*) found=1 ;; esac
  done
  [ $found = 0 ]; ok $? "$f holds no key material (raw, hex or base64; master or derived)"
done

# restoring the dump into a new database reproduces the same pseudonyms
before=$(psql -XtA -d $db -c "SELECT caredata.pseudonymise(9434765919::bigint, 'kat')::text || ' ' || caredata.pseudonymise(9434765919::bigint, 'kat_hmac')::text")
psql -qX -d postgres -c "DROP DATABASE IF EXISTS ${db}_restored" -c "CREATE DATABASE ${db}_restored" >/dev/null
psql -qX -v ON_ERROR_STOP=1 -d ${db}_restored -f "$work/dump.sql" >/dev/null 2>"$work/restore.err"
after=$(psql -XtA -d ${db}_restored -c "SELECT caredata.pseudonymise(9434765919::bigint, 'kat')::text || ' ' || caredata.pseudonymise(9434765919::bigint, 'kat_hmac')::text" 2>>"$work/restore.err")
[ -n "$before" ] && [ "$before" = "$after" ]; ok $? "a restored dump derives the same pseudonyms from the same secret, under each version's scheme"
[ -s "$work/restore.err" ] && cat "$work/restore.err" >&2
psql -qX -d postgres -c "DROP DATABASE ${db}_restored" >/dev/null

# 3. server log
log="$(scripts/cluster.sh dir)/server.log"
lh=$(hex < "$log"); lt=$(cat "$log")
found=0
case "$lh" in *"$master_hex"*|*"$derived_hex"*|*"$hmac_derived_hex"*) found=1 ;; esac
case "$lt" in *"$master_hex"*|*"$derived_hex"*|*"$hmac_derived_hex"*|*"$(base64 -w0 < "$keyfile")"*) found=1 ;; esac
[ $found = 0 ]; ok $? "the server log holds no key material"

psql -qX -d postgres -c "DROP DATABASE $db" >/dev/null
done_testing
