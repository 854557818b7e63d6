#!/usr/bin/env bash
# scripts/demo.sh (`make demo`): from a fresh clone, install what is missing,
# build, start the throw-away cluster, generate the synthetic population and
# run the pipeline as far as it exists.  The cluster is left running so you
# can explore; `make stop` stops it.
#   CAREDATA_DEMO_PEOPLE  people to generate (default 100000)
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$CAREDATA_ROOT"
people=${CAREDATA_DEMO_PEOPLE:-100000}

scripts/build.sh
scripts/cluster.sh start

export PGDATABASE=caredata_demo
# a re-run starts clean even while a session is connected to the old one
psql -qX -d postgres -c 'SET client_min_messages = warning' -c 'DROP DATABASE IF EXISTS caredata_demo WITH (FORCE)' -c 'CREATE DATABASE caredata_demo'
psql -qX -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION caredata'
# caredata on the database's search path, so that its operators (=, IN,
# JOIN ... USING on nhs_number and pseudonym) work without OPERATOR(caredata.=)
psql -qX -v ON_ERROR_STOP=1 -c 'ALTER DATABASE caredata_demo SET search_path = "$user", public, caredata'
echo "demo: generating $people synthetic people (seed 42)..."
start=$(date +%s)
psql -qX -v ON_ERROR_STOP=1 -c 'SET client_min_messages = warning' -f test/synthetic/generate.sql >/dev/null
psql -qX -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "SELECT synth.generate($people, 42)" >/dev/null
echo "demo: generated in $(( $(date +%s) - start ))s"
mkdir -p demo-output
# link_run's progress lines (INFO) shown as the phases finish, without
# psql's file and line prefix; errors keep theirs
psql -qX -v ON_ERROR_STOP=1 -f scripts/demo.sql 2>&1 | sed -u 's/^psql:scripts\/demo\.sql:[0-9]*: INFO:  /  /'

cat <<MSG

The funnel plot: $CAREDATA_ROOT/demo-output/funnel_30day_mortality.svg
The cluster is still running: psql -h 127.0.0.1 -p $CAREDATA_PORT -U postgres caredata_demo
Stop it with: make stop
MSG
