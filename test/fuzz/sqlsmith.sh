#!/usr/bin/env bash
# test/fuzz/sqlsmith.sh [queries]: random SQL from sqlsmith (Debian's
# package) against a database with caredata, the synthetic population, a
# protected table and a published view, with a statement timeout.  Passes
# when the server never crashed: no backend ended by a signal, and the
# server still answers.  `make fuzz` runs it (50,000 queries; 5,000 by
# default, fixed seed), not `make test`.  Prints TAP.
. "$(dirname "$0")/../lib.bash"

queries=${1:-${CAREDATA_SQLSMITH_QUERIES:-5000}}

command -v sqlsmith >/dev/null || { echo "not ok 1 - sqlsmith is installed (scripts/install-deps.sh fuzz)"; echo "1..1"; exit 1; }
log="$(scripts/cluster.sh dir)/server.log"
db=caredata_smith
fresh_db
psql -qX -v ON_ERROR_STOP=1 -d $db >/dev/null 2>&1 <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION caredata;
\i test/synthetic/generate.sql
SELECT count(*) FROM synth.generate(1000, 5);
CREATE TABLE episode AS SELECT record_id, caredata.try_nhs_number(nhs_number) AS nhs_number, provider_code, died_30d
  FROM synth.hospital_episode;
SELECT caredata.protect('episode', 'nhs_number', 'research');
SELECT caredata.record_objection(nhs_number, 'national_data_opt_out', 'fuzz') FROM episode WHERE nhs_number IS NOT NULL LIMIT 20;
SELECT caredata.create_domain('fuzz', 'sqlsmith');
SELECT caredata.refresh_pseudonyms('fuzz', 'synth.hospital_episode');
CREATE ROLE smith_recipient NOLOGIN;
SELECT caredata.publish('smith', 'synth.hospital_episode', '{"domain": "fuzz", "purpose": "research", "columns": {"provider_code": "keep", "dob": "age_band"}}', 'smith_recipient');
SQL
psql -qX -d postgres -c "ALTER DATABASE $db SET statement_timeout = '2s'" >/dev/null
mkdir -p results
before=$(wc -c < "$log")
start=$(date +%s)
timeout 600 sqlsmith --target="host=127.0.0.1 port=$CAREDATA_PORT dbname=$db user=postgres" \
  --max-queries="$queries" --seed=42 --verbose > "results/sqlsmith.out" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))
crashes=$(tail -c +"$((before + 1))" "$log" | grep -c -e 'terminated by signal' -e 'was terminated' || true)
grep -q '^error rate' results/sqlsmith.out; ok $? "sqlsmith ran its $queries queries in ${secs}s ($(grep -m1 '^error rate' results/sqlsmith.out))"
[ "$crashes" -eq 0 ]; ok $? "no backend ended by a signal"
psql -XAtq -d $db -c 'SELECT 1' >/dev/null 2>&1; ok $? "the server still answers (sqlsmith exit $rc)"
drop_db -c 'DROP ROLE IF EXISTS smith_recipient' 2>/dev/null
done_testing
