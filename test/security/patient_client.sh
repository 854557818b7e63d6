#!/usr/bin/env bash
# test/security/patient_client.sh: a real client (Python, psycopg2) as a
# patient portal would use caredata (issue 29, section 4): a patient login
# reads its summary and shares its records, a carer's login opens and reads
# them, the patient revokes (test/clients/patient.py).  Run by
# scripts/test.sh against the running throw-away cluster; prints TAP.
. "$(dirname "$0")/../lib.bash"

tap() { local out="$1" want="$2" got=0 line
        while IFS= read -r line; do
          [ -z "$line" ] && continue
          got=$((got + 1))
          case "$line" in ok\ *) ok 0 "${line#ok }" ;; *) ok 1 "${line#not ok }" ;; esac
        done <<< "$out"
        [ "$got" -eq "$want" ]; ok $? "the client ran all $want checks"; }

db=caredata_patient_client
fresh_db
admin -c 'DROP ROLE IF EXISTS client_patient' -c 'DROP ROLE IF EXISTS client_carer' >/dev/null 2>&1
psql -qX -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION caredata;
\i test/synthetic/generate.sql
SELECT count(*) FROM synth.generate(500, 3);
CREATE TABLE client_hes AS
SELECT record_id, caredata.try_nhs_number(nhs_number) AS nhs_number, provider_code FROM synth.hospital_episode;
SELECT caredata.protect('client_hes', 'nhs_number', 'research');
CREATE ROLE client_patient LOGIN IN ROLE caredata_patient;
CREATE ROLE client_carer LOGIN IN ROLE caredata_grantee;
GRANT SELECT ON client_hes TO caredata_patient, caredata_grantee;
INSERT INTO caredata.subject_access (role, nhs_number)
SELECT 'client_patient', nhs_number FROM client_hes WHERE nhs_number IS NOT NULL
 GROUP BY nhs_number ORDER BY count(*) DESC, nhs_number LIMIT 1;
SQL
ok $? "set-up: a protected table, a patient login and a carer login"

tap "$(/usr/bin/python3 test/clients/patient.py "host=$PGHOST port=$PGPORT user=client_patient dbname=$db" \
         "host=$PGHOST port=$PGPORT user=client_carer dbname=$db" client_hes 2>&1)" 7

drop_db -c 'DROP ROLE IF EXISTS client_patient' -c 'DROP ROLE IF EXISTS client_carer'
done_testing
