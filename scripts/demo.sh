#!/usr/bin/env bash
# scripts/demo.sh (`make demo`): from a fresh clone, install what is missing
# (the demo's packages only: scripts/install-deps.sh demo), build, start the
# throw-away cluster, generate the synthetic population and run the pipeline
# as far as it exists.  The cluster is left running so you can explore;
# `make stop` stops it.
#   CAREDATA_DEMO_PEOPLE  people to generate (default 50000: README.md says why)
#
# A re-run keeps the running server, and every session connected to it,
# unless the library or the settings really changed (scripts/cluster.sh).
# It builds the new demo database beside the old one (caredata_demo_next),
# while the old one stays readable, then puts it in the old one's place in
# one step: only the sessions connected to caredata_demo are ended then.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$CAREDATA_ROOT"
people=${CAREDATA_DEMO_PEOPLE:-50000}
t_all=$(date +%s)
since() { echo "$(( $(date +%s) - $1 ))s"; }

echo "demo: dependencies and build..."
t=$(date +%s)
scripts/build.sh demo
echo "demo: built in $(since "$t")"
scripts/cluster.sh start

demo=caredata_demo
next=caredata_demo_next
export PGDATABASE=$next
psql -qX -d postgres -c 'SET client_min_messages = warning' -c "DROP DATABASE IF EXISTS $next WITH (FORCE)" -c "CREATE DATABASE $next"
psql -qX -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION caredata'
# caredata on the database's search path, so that its operators (=, IN,
# JOIN ... USING on nhs_number and pseudonym) work without OPERATOR(caredata.=)
psql -qX -v ON_ERROR_STOP=1 -c "ALTER DATABASE $next SET search_path = \"\$user\", public, caredata"
echo "demo: generating $people synthetic people (seed 42)..."
t=$(date +%s)
psql -qX -v ON_ERROR_STOP=1 -c 'SET client_min_messages = warning' -f test/synthetic/generate.sql >/dev/null
psql -qXAt -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" \
  -c "SELECT string_agg(to_char(value, 'FM999,999,999') || ' ' || item, ', ') FROM synth.generate($people, 42)
       WHERE item IN ('people', 'gp_registration records', 'hospital_episode records')" | sed 's/^/demo: generated /'
echo "demo: generated in $(since "$t")"
mkdir -p demo-output
# each step's heading as it starts and its time as it ends; link_run's
# progress lines (INFO) as the phases finish, without psql's file and line
# prefix; errors keep theirs
t=$(date +%s)
psql -qX -v ON_ERROR_STOP=1 -f scripts/demo.sql 2>&1 | sed -u 's/^psql:scripts\/demo\.sql:[0-9]*: INFO:  /  /'
echo "demo: pipeline in $(since "$t")"

# the new database in the old one's place: sessions connected to the old
# one are ended (WITH (FORCE)); the server and other databases are untouched
psql -qX -d postgres -c 'SET client_min_messages = warning' \
  -c "DROP DATABASE IF EXISTS $demo WITH (FORCE)" -c "ALTER DATABASE $next RENAME TO $demo"

cat <<MSG

demo: done in $(since "$t_all") ($people people).
The funnel plot: $CAREDATA_ROOT/demo-output/funnel_30day_mortality.svg
The cluster is still running: psql -h 127.0.0.1 -p $CAREDATA_PORT -U postgres $demo
Stop it with: make stop
MSG
