#!/usr/bin/env bash
# bench/link_lookup.sh [people ...]: one-record lookup latency
# (caredata.link_lookup) against the person index, measured with pgbench.
#
# For each population size (default: 200000 1000000): generate the synthetic
# population (synth.generate(people, 42)) in a fresh database, link it with
# the default model as docs/linkage.md's quick start does, sample the inputs
# (nhs_number, dob, sex, postcode of existing GP and hospital records as they
# arrive, injected errors included; fixed seed), then run pgbench with one
# client picking a random input per transaction:
#   baseline  the same input row joined to caredata.person_index by its
#             primary key (source, record_id)
#   lookup    caredata.link_lookup(nhs_number, dob, sex, postcode)
# and print p50/p95/p99 of the per-transaction latencies (pgbench --log) and
# the lookup's ratio to the baseline.  Results also go to bench/results/.
#   SECONDS_EACH=20 (pgbench -T), INPUTS=100000 (inputs sampled)
set -euo pipefail
. "$(dirname "$0")/../scripts/env.sh"
cd "$CAREDATA_ROOT"
PGBENCH=${PGBENCH:-$PGBIN/pgbench}
[ -x "$PGBENCH" ] || PGBENCH=/usr/lib/postgresql/15/bin/pgbench
SECONDS_EACH=${SECONDS_EACH:-20}
INPUTS=${INPUTS:-100000}
[ $# -gt 0 ] || set -- 200000 1000000

scripts/build.sh >/dev/null
if scripts/cluster.sh status >/dev/null 2>&1; then was_running=1; else was_running=; fi
scripts/cluster.sh start
work=$(mktemp -d)
trap 'rm -rf "$work"; [ -n "$was_running" ] || scripts/cluster.sh stop' EXIT

mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=bench/results/link_lookup-$stamp.txt
export PGDATABASE=caredata_lookup

# p50 p95 p99 (ms) of the latencies (microseconds, 3rd field) in pgbench logs
percentiles() {
  cat "$@" | awk '{print $3}' | sort -n | awk '
    { v[NR] = $1 }
    END { n = NR
          i50 = int(n * 0.50 + 0.999999); i95 = int(n * 0.95 + 0.999999); i99 = int(n * 0.99 + 0.999999)
          printf "%d %.2f %.2f %.2f\n", n, v[i50] / 1000, v[i95] / 1000, v[i99] / 1000 }'
}

# run one pgbench script for SECONDS_EACH seconds; prints "n p50 p95 p99"
measure() {
  local name=$1 n=$2
  rm -f "$work/$name".log*
  "$PGBENCH" -n -M prepared -c 1 -T "$SECONDS_EACH" -D n="$n" -f "$work/$name.sql" \
    --log --log-prefix="$work/$name.log" >"$work/$name.out" 2>&1 ||
    { cat "$work/$name.out" >&2; exit 1; }
  percentiles "$work/$name".log*
}

cat >"$work/baseline.sql" <<'EOF'
\set r random(1, :n)
SELECT p.person_id FROM bench.lookup_input i
  JOIN caredata.person_index p ON p.source = i.source AND p.record_id = i.record_id
 WHERE i.i = :r;
EOF
cat >"$work/lookup.sql" <<'EOF'
\set r random(1, :n)
SELECT l.person_id, l.probability FROM bench.lookup_input i,
       caredata.link_lookup(i.nhs_number, i.dob, i.sex, i.postcode) l
 WHERE i.i = :r;
EOF

{
echo "== bench/link_lookup.sh ($(nproc) cores, PostgreSQL $(psql -XtAc 'SHOW server_version' -d postgres), pgbench -M prepared -c 1 -T $SECONDS_EACH, $INPUTS inputs)"
for people in "$@"; do
  PGOPTIONS='-c client_min_messages=warning' psql -qX -d postgres -c 'DROP DATABASE IF EXISTS caredata_lookup' -c 'CREATE DATABASE caredata_lookup'
  t0=$(date +%s)
  psql -qX -v ON_ERROR_STOP=1 -v people="$people" -v inputs="$INPUTS" 2>&1 <<'EOF' | grep -v NOTICE || true
CREATE EXTENSION caredata;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
SET client_min_messages = warning;
\i bench/lib.sql
SET jit = off;
SELECT count(*) FROM synth.generate(:people, 42) \g /dev/null
VACUUM ANALYZE synth.gp_registration;
VACUUM ANALYZE synth.hospital_episode;
-- docs/linkage.md's quick start, progress reports off
SET caredata.link_progress = off;
SELECT caredata.link_add_source('gp', 'synth.gp_registration', 'record_id',
         nhs_number => 'nhs_number', dob => 'dob', sex => 'sex', postcode => 'postcode') \g /dev/null
SELECT caredata.link_add_source('hes', 'synth.hospital_episode', 'record_id',
         nhs_number => 'nhs_number', dob => 'dob', sex => 'sex', postcode => 'postcode') \g /dev/null
SELECT caredata.link_create_model('default') \g /dev/null
SELECT * FROM caredata.link_run() \g /dev/null
-- the inputs: existing records' identifiers as they arrive (errors and all),
-- a fixed pseudo-random sample of both sources
CREATE TABLE bench.lookup_input AS
SELECT row_number() OVER (ORDER BY h)::integer AS i, source, record_id, nhs_number, dob, sex, postcode, person_id
  FROM (SELECT 'gp' AS source, g.record_id, g.nhs_number::text, caredata.try_standardise_dob(g.dob) AS dob,
               g.sex::text, g.postcode::text, hashint8extended(g.record_id, 42) AS h
          FROM synth.gp_registration g
        UNION ALL
        SELECT 'hes', e.record_id, e.nhs_number::text, caredata.try_standardise_dob(e.dob),
               e.sex::text, e.postcode::text, hashint8extended(e.record_id + 1000000000000, 42)
          FROM synth.hospital_episode e) s
  JOIN caredata.person_index p USING (source, record_id)
 ORDER BY h LIMIT :inputs;
ALTER TABLE bench.lookup_input ADD PRIMARY KEY (i);
VACUUM ANALYZE bench.lookup_input;
VACUUM ANALYZE caredata.person_index;
EOF
  n=$(psql -XtAc 'SELECT count(*) FROM bench.lookup_input')
  records=$(psql -XtAc 'SELECT count(*) FROM caredata.person_index')
  # how often the lookup finds the record's own person (first 1,000 inputs)
  own=$(psql -XtAc "SELECT count(*) FILTER (WHERE l.person_id = i.person_id) || ' of ' || count(DISTINCT i.i)
                      FROM bench.lookup_input i LEFT JOIN LATERAL (
                        SELECT * FROM caredata.link_lookup(i.nhs_number, i.dob, i.sex, i.postcode)
                        ORDER BY match_weight DESC LIMIT 1) l ON true WHERE i.i <= 1000")
  echo "-- $people people, $records records in the person index; generated and linked in $(( $(date +%s) - t0 )) s; own person found $own"
  # warm up both (buffers, plans), then measure
  SECONDS_EACH=3 measure baseline "$n" >/dev/null
  SECONDS_EACH=3 measure lookup "$n" >/dev/null
  read -r bn b50 b95 b99 < <(measure baseline "$n")
  read -r ln l50 l95 l99 < <(measure lookup "$n")
  printf '%-10s %-28s %9s %8s %8s %8s\n' people query transactions p50_ms p95_ms p99_ms
  printf '%-10s %-28s %9s %8s %8s %8s\n' "$people" 'primary key (baseline)' "$bn" "$b50" "$b95" "$b99"
  printf '%-10s %-28s %9s %8s %8s %8s\n' "$people" 'link_lookup' "$ln" "$l50" "$l95" "$l99"
  awk -v a="$l50" -v b="$b50" -v c="$l95" -v d="$b95" -v e="$l99" -v f="$b99" -v p="$people" \
    'BEGIN { printf "%-10s %-28s %9s %7.1fx %7.1fx %7.1fx\n", p, "ratio to baseline", "", a / b, c / d, e / f }'
done
} | tee "$out"
