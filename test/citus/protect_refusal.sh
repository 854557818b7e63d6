#!/usr/bin/env bash
# test/citus/protect_refusal.sh: until the objection filter holds on Citus
# shards (docs/scale-out.md), protect() refuses a distributed or reference
# table with a clear error instead of failing silently, a table distributed
# after protect() is refused on every path, and local tables on a Citus
# coordinator keep their filter.  Prints TAP.
set -uo pipefail
. "$(dirname "$0")/../../scripts/env.sh"
cd "$CAREDATA_ROOT"

read -r coord w1 w2 <<< "${CAREDATA_CITUS_PORTS:-55420 55421 55422}"
n=0; failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }
on() { local port=$1; shift; PGPORT=$port psql -XAtq -d postgres "$@" 2>&1; }

on "$coord" -v ON_ERROR_STOP=1 -f test/citus/reset.sql >/dev/null
on "$coord" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE ROLE citus_reader LOGIN IN ROLE caredata_analyst;
CREATE TABLE citus_dist (id bigint, nhs caredata.nhs_number);
SELECT create_distributed_table('citus_dist', 'nhs');
CREATE TABLE citus_ref (id bigint, nhs caredata.nhs_number);
SELECT create_reference_table('citus_ref');
CREATE TABLE citus_local (id bigint, nhs caredata.nhs_number);
INSERT INTO citus_local VALUES (1, '943 476 5919'), (2, '401 023 2137');
GRANT SELECT ON citus_local TO citus_reader;
SELECT caredata.record_objection('943 476 5919', 'national_data_opt_out', 'citus test', now() - interval '1 day');
SQL

for t in citus_dist citus_ref; do
  out=$(on "$coord" -v VERBOSITY=verbose -c "SELECT caredata.protect('$t', 'nhs', 'research')")
  case "$out" in *"ERROR:  0A000: "*"$t is a Citus distributed or reference table"*) r=0 ;; *) r=1 ;; esac
  ok $r "protect() refuses $t with SQLSTATE 0A000"
  case "$out" in *"HINT:  See docs/scale-out.md"*) r=0 ;; *) r=1 ;; esac
  ok $r "... with a hint naming docs/scale-out.md"
  [ "$(on "$coord" -c "SELECT count(*) FROM caredata.protected_table WHERE relid = '$t'::regclass")" = 0 ]
  ok $? "... and records nothing"
done

on "$coord" -c "SELECT caredata.protect('citus_local', 'nhs', 'research')" >/dev/null
ok $? "a local table on the coordinator is protected"
[ "$(on "$coord" -U citus_reader -c "SELECT count(*) FROM citus_local")" = 1 ]
ok $? "and the reader sees 1 of its 2 rows (the objector's hidden)"

# a protected table distributed afterwards: Citus makes the filter
# permissive on shards and shell tables, and every path refuses it
on "$coord" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
DROP TABLE IF EXISTS citus_later;
CREATE TABLE citus_later (id bigint, nhs caredata.nhs_number);
INSERT INTO citus_later VALUES (1, '943 476 5919'), (2, '401 023 2137');
GRANT SELECT ON citus_later TO citus_reader;
SELECT caredata.protect('citus_later', 'nhs', 'research');
SELECT create_distributed_table('citus_later', 'nhs');
SQL
out=$(on "$coord" -U citus_reader -c "SELECT count(*) FROM citus_later")
case "$out" in *"has been made permissive"*) r=0 ;; *) r=1 ;; esac
ok $r "distributed after protect(): the reader's query through the coordinator is refused (not answered: ${out%%$'\n'*})"
out=$(on "$w1" -U citus_reader -c "SELECT count(*) FROM citus_later")
case "$out" in *"has been made permissive"*) r=0 ;; *) r=1 ;; esac
ok $r "... through a worker too"
shard=$(on "$w1" -c "SET citus.show_shards_for_app_name_prefixes = '*'" -c "SELECT relname FROM pg_class WHERE relname ~ '^citus_later_[0-9]+$' LIMIT 1" | tail -1)
on "$w1" -c "GRANT SELECT ON $shard TO citus_reader" >/dev/null
out=$(on "$w1" -U citus_reader -c "SELECT count(*) FROM $shard")
case "$out" in *"has been made permissive"*) r=0 ;; *) r=1 ;; esac
ok $r "... and on a shard directly ($shard)"
[ "$(on "$coord" -c "SELECT count(*) FROM citus_later")" = 2 ]; ok $? "the superuser still reads it (to undistribute or unprotect)"

on "$coord" -f test/citus/reset.sql >/dev/null
echo "1..$n"
[ "$failed" -eq 0 ]
