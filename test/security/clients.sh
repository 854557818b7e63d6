#!/usr/bin/env bash
# test/security/clients.sh: real clients, connected as a recipient, read a
# published view: psql, Python (psycopg2) and Node.js (pg).  Each checks that
# no identifier column is present, that pseudonyms arrive as plain text, that
# an objecting patient is absent, and that the raw table, the pseudonym map
# and keyed functions are refused.  Run by scripts/test.sh against the
# running throw-away cluster; prints TAP.
. "$(dirname "$0")/../lib.bash"

# a client's "ok ..." / "not ok ..." lines as TAP; it must print all $2 checks
tap() { local out="$1" want="$2" got=0 line
        while IFS= read -r line; do
          [ -z "$line" ] && continue
          got=$((got + 1))
          case "$line" in ok\ *) ok 0 "${line#ok }" ;; *) ok 1 "${line#not ok }" ;; esac
        done <<< "$out"
        [ "$got" -eq "$want" ]; ok $? "the client ran all $want checks"; }

db=caredata_clients
fresh_db
admin -c 'DROP ROLE IF EXISTS client_recipient' >/dev/null 2>&1
psql -qX -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION caredata;
\i test/synthetic/generate.sql
SELECT count(*) FROM synth.generate(500, 3);
CREATE ROLE client_recipient LOGIN;
SELECT caredata.create_domain('client_study', 'client test');
SELECT caredata.refresh_pseudonyms('client_study', 'synth.hospital_episode');
SELECT caredata.record_objection(n, 'national_data_opt_out', 'client test')
  FROM (SELECT caredata.try_nhs_number(nhs_number) AS n FROM synth.hospital_episode
         WHERE caredata.try_nhs_number(nhs_number) IS NOT NULL ORDER BY record_id LIMIT 1) x;
SELECT caredata.publish('hes_clients', 'synth.hospital_episode',
  '{"domain": "client_study", "purpose": "research", "linkability_override": "test: clients read a record-level view",
    "columns": {"provider_code": "keep", "admission_date": "month", "dob": "age_band", "postcode": "district"}}',
  'client_recipient');
SQL
ok $? "set-up: a recipient login and a published view"
objector=$(psql -XtA -d $db -c "SELECT m.pseudonym FROM caredata.pseudonym_map m JOIN caredata.objection o ON o.nhs_number OPERATOR(caredata.=) m.nhs_number WHERE m.domain = 'client_study' LIMIT 1")
[ -n "$objector" ]; ok $? "set-up: the objecting patient has a pseudonym"

# psql
as_recipient() { psql -XtA -U client_recipient -d $db "$@"; }
cols=$(as_recipient -c "SELECT string_agg(column_name, ',') FROM information_schema.columns WHERE table_schema = 'published' AND table_name = 'hes_clients'")
[ -n "$cols" ] && ! echo ",$cols," | grep -qE ',(nhs_number|dob|postcode|record_id),'; ok $? "psql: the view has no identifier column ($cols)"
[ "$(as_recipient -c "SELECT count(*) FROM published.hes_clients WHERE person = '$objector'")" = 0 ]; ok $? "psql: the objecting patient is absent"
[ "$(as_recipient -c "SELECT count(*) > 0 FROM published.hes_clients")" = t ]; ok $? "psql: the recipient reads the view"
[ "$(as_recipient -c "SELECT count(*) FROM (SELECT person FROM published.hes_clients WHERE person = person GROUP BY person) g" 2>&1 | grep -c ERROR)" = 0 ]
ok $? "psql: the recipient's search_path lets it compare and group pseudonyms"
for q in "SELECT count(*) FROM synth.hospital_episode" "SELECT count(*) FROM caredata.pseudonym_map" \
         "SELECT caredata.pseudonymise('9434765919'::caredata.nhs_number, 'client_study')"; do
  out=$(as_recipient -c "$q" 2>&1)
  [[ "$out" == *"permission denied"* ]]; ok $? "psql: refused: $q"
done

# Python (Debian's python3-psycopg2, with Debian's python3)
tap "$(/usr/bin/python3 test/clients/recipient.py "host=$PGHOST port=$PGPORT user=client_recipient dbname=$db" hes_clients "$objector" 2>&1)" 6

# Node.js (pg from npm, installed into test/clients by scripts/install-deps.sh)
tap "$(node test/clients/recipient.js "postgresql://client_recipient@$PGHOST:$PGPORT/$db" hes_clients "$objector" 2>&1)" 6

drop_db -c 'DROP ROLE IF EXISTS client_recipient'
done_testing
