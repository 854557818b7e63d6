#!/usr/bin/env bash
# test/variation/dashboard_clients.sh: an aggregate-only publication for
# dashboards (caredata.publish_aggregates, issue 26) read by real clients,
# psql, Python (psycopg2) and Node.js (pg), as a BI tool's login: people,
# outcomes, rates and funnel rows by provider, protected by the policy the
# admin put in force for that login (nhs_hes), no record-level column, and
# the record-level view and the raw table refused.  Run by scripts/test.sh
# against the running throw-away cluster; prints TAP.
. "$(dirname "$0")/../lib.bash"

tap() { local out="$1" want="$2" got=0 line
        while IFS= read -r line; do
          [ -z "$line" ] && continue
          got=$((got + 1))
          case "$line" in ok\ *) ok 0 "${line#ok }" ;; *) ok 1 "${line#not ok }" ;; esac
        done <<< "$out"
        [ "$got" -eq "$want" ]; ok $? "the client ran all $want checks"; }

db=caredata_dashboard
fresh_db
admin -c 'DROP ROLE IF EXISTS dashboard_bi' -c 'DROP ROLE IF EXISTS dashboard_team' >/dev/null 2>&1
psql -qX -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION caredata;
\i test/synthetic/generate.sql
SELECT count(*) FROM synth.generate(4000, 26);
CREATE ROLE dashboard_bi LOGIN;
CREATE ROLE dashboard_team NOLOGIN;
SELECT caredata.assign_sdc_policy('dashboard_bi', 'nhs_hes');
INSERT INTO caredata.code_label (vocabulary, code, label) SELECT 'provider', p, 'Trust ' || p FROM unnest(synth.providers()) p;
SELECT caredata.create_domain('dashboard_study', 'dashboard test');
SELECT caredata.refresh_pseudonyms('dashboard_study', 'synth.hospital_episode');
SELECT caredata.publish_aggregates('dash_mortality', 'synth.hospital_episode',
  '{"domain": "dashboard_study", "purpose": "research", "by": ["provider_code"], "outcome": "died_30d",
    "labels": {"provider_code": "provider"}}', 'dashboard_bi');
-- a record-level view for another recipient, which the BI login must not read
SELECT caredata.publish('dash_rows', 'synth.hospital_episode',
  '{"domain": "dashboard_study", "purpose": "research", "linkability_override": "test: another recipient",
    "columns": {"provider_code": "keep"}}', 'dashboard_team');
SQL
ok $? "set-up: a BI login with nhs_hes in force and an aggregate-only view by provider"

as_bi() { psql -XtA -U dashboard_bi -d $db "$@"; }
[ "$(as_bi -c "SELECT caredata.sdc_policy_in_force()")" = nhs_hes ]; ok $? "psql: the policy in force for the BI login is the admin's (nhs_hes)"
units=$(as_bi -c "SELECT count(*) FROM published.dash_mortality")
[ "${units:-0}" -ge 20 ]; ok $? "psql: one row per provider ($units)"
[ "$(as_bi -c "SELECT count(*) FROM published.dash_mortality WHERE persons % 5 <> 0 OR outcome_persons BETWEEN 1 AND 7")" = 0 ]
ok $? "psql: every count shown is rounded to 5 and none is 1 to 7"
out=$(as_bi -c "SELECT count(*) FROM published.dash_rows" 2>&1)
[[ "$out" == *"permission denied"* ]]; ok $? "psql: the record-level view is refused"

tap "$(/usr/bin/python3 test/clients/dashboard.py "host=$PGHOST port=$PGPORT user=dashboard_bi dbname=$db" dash_mortality dash_rows 2>&1)" 9
tap "$(node test/clients/dashboard.js "postgresql://dashboard_bi@$PGHOST:$PGPORT/$db" dash_mortality dash_rows 2>&1)" 7

drop_db -c 'DROP ROLE IF EXISTS dashboard_bi' -c 'DROP ROLE IF EXISTS dashboard_team'
done_testing
