#!/usr/bin/env bash
# test/citus/aggregates.sh: every caredata aggregate over a distributed
# table pushes partial aggregation to the workers (EXPLAIN VERBOSE shows
# worker_partial_agg on the shards, coord_combine_agg on the coordinator)
# and gives the answer it gives over the same rows in one ordinary table.
# Needs the cluster scripts/citus.sh starts (CAREDATA_CITUS_PORTS); prints TAP.
. "$(dirname "$0")/lib.bash"

citus_reset
# 6,000 rows of 1,500 people in 40 units, the same rows distributed and local
on "$coord" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT caredata.citus_setup();
SELECT caredata.create_domain('citus_agg', 'aggregate test');
CREATE TABLE citus_agg_local AS
SELECT i AS id, p::bigint AS person, caredata.nhs_number(base * 10 + d) AS nhs,
       caredata.pseudonymise(caredata.nhs_number(base * 10 + d), 'citus_agg') AS pseud,
       (i * 37 % 1000) / 10.0 AS value, i % 7 = 0 AS flag, i % 40 AS unit,
       (i * 13 % 97) / 9.7 - 5 AS weight
  FROM generate_series(1, 6000) i,
       LATERAL (SELECT (i * 7919) % 1500 AS p) q,
       LATERAL (SELECT 400000000::bigint + q.p * 11 AS base) b,
       LATERAL (SELECT (11 - (sum(substr(b.base::text, k, 1)::int * (11 - k)) % 11)) % 11 AS d
                  FROM generate_series(1, 9) k) c
 WHERE d < 10;
CREATE TABLE citus_agg (LIKE citus_agg_local);
SELECT create_distributed_table('citus_agg', 'id');
INSERT INTO citus_agg SELECT * FROM citus_agg_local;
-- per-unit rows for the funnel fit: observed, expected (or denominator)
CREATE TABLE citus_units_local AS
SELECT unit, count(*) FILTER (WHERE flag)::float8 AS num, count(*)::float8 AS den,
       (count(*) / 7.0)::float8 AS expected
  FROM citus_agg_local GROUP BY unit;
CREATE TABLE citus_units (LIKE citus_units_local);
SELECT create_distributed_table('citus_units', 'unit');
INSERT INTO citus_units SELECT * FROM citus_units_local;
SQL
rows=$(on "$coord" -c "SELECT count(*) FROM citus_agg")
echo "# $rows rows in $(on "$coord" -c "SELECT count(DISTINCT person) FROM citus_agg") people"

check() {   # check NAME EXPR TABLE: the same answer, and partial aggregation on the workers
  local name=$1 expr=$2 table=${3:-citus_agg}
  local dist one plan
  dist=$(on "$coord" -c "SELECT ($expr)::text FROM $table")
  one=$(on "$coord" -c "SELECT ($expr)::text FROM ${table}_local")
  case "$dist$one" in *ERROR*) r=1 ;; *) [ "$dist" = "$one" ]; r=$? ;; esac
  ok $r "$name: the distributed answer equals one table's (${dist:0:50})"
  plan=$(on "$coord" -c "EXPLAIN (VERBOSE, COSTS OFF) SELECT $expr FROM $table")
  case "$plan" in *worker_partial_agg*coord_combine_agg*|*coord_combine_agg*worker_partial_agg*) r=0 ;; *) r=1 ;; esac
  ok $r "$name: partial aggregation runs on the workers (worker_partial_agg, coord_combine_agg)"
  [ "$r" = 0 ] || echo "$plan" | head -20 | sed 's/^/#   /'
}

for person in nhs person pseud; do
  check "safe_count($person)" "caredata.safe_count($person)"
  check "safe_count($person, policy)" "caredata.safe_count($person, 'opensafely')"
  check "safe_count_text($person)" "caredata.safe_count_text($person)"
  check "safe_count_text($person, policy)" "caredata.safe_count_text($person, 'nhs_hes')"
  check "person_set_agg($person)" "md5(caredata.person_set_agg($person)::text)"
  # sums of doubles: equal to rounding (addition in another order)
  check "safe_sum(value, $person)" "round(caredata.safe_sum(value, $person)::numeric, 6)"
  check "safe_sum(value, $person, policy)" "round(caredata.safe_sum(value, $person, 'opensafely')::numeric, 6)"
  check "safe_avg(value, $person)" "round(caredata.safe_avg(value, $person)::numeric, 9)"
  check "safe_avg(value, $person, policy)" "round(caredata.safe_avg(value, $person, 'nhs_hes')::numeric, 9)"
  check "safe_rate(flag, $person)" "round(caredata.safe_rate(flag, $person)::numeric, 9)"
  check "safe_rate(flag, $person, policy)" "round(caredata.safe_rate(flag, $person, 'opensafely')::numeric, 9)"
  # the cell key method (issue 24): the same perturbation from combined states
  check "safe_count($person, cell_key)" "caredata.safe_count($person, 'cell_key')"
  check "safe_sum(value, $person, cell_key)" "round(caredata.safe_sum(value, $person, 'cell_key')::numeric, 6)"
done
# safe_count and safe_count_text over partial states
dist=$(on "$coord" -c "SELECT caredata.safe_count(s) || ' ' || caredata.safe_count_text(s) FROM (SELECT caredata.person_set_agg(nhs) s FROM citus_agg GROUP BY unit) x")
one=$(on "$coord" -c "SELECT caredata.safe_count(s) || ' ' || caredata.safe_count_text(s) FROM (SELECT caredata.person_set_agg(nhs) s FROM citus_agg_local GROUP BY unit) x")
[ "$dist" = "$one" ] && [ -n "$dist" ]; ok $? "safe_count(person_set), safe_count_text(person_set) over per-unit states: equal ($dist)"
check "link_threshold(weight)" "caredata.link_threshold(weight)"
check "funnel_fit(observed, expected)" "caredata.funnel_fit(num, expected)" citus_units
check "funnel_fit(numerator, denominator, 'PR')" "caredata.funnel_fit(num, den, 'PR')" citus_units
check "funnel_fit(numerator, denominator, 'SR', 'CQC', 0.05)" "caredata.funnel_fit(num, expected, 'SR', 'CQC', 0.05)" citus_units

on "$coord" -c "DROP TABLE citus_agg, citus_agg_local, citus_units, citus_units_local" >/dev/null
citus_done
