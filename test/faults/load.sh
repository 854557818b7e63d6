#!/usr/bin/env bash
# test/faults/load.sh: 8 analysts read a protected table continuously
# (pgbench) while an opt-out snapshot and a Type 1 feed are applied and a
# pseudonym domain is rotated.  Passes when no reader had an error, every
# reader's answer is the register's before the feeds, between them or after
# them (never a half-applied feed), and the register ends as the feeds say.
# Prints the readers' throughput.  Run by scripts/test.sh; prints TAP.
. "$(dirname "$0")/../lib.bash"

db=caredata_load
mkdir -p results
fresh_db -c 'DROP ROLE IF EXISTS load_analyst' -c "CREATE ROLE load_analyst LOGIN IN ROLE caredata_analyst"
psql -qX -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION caredata;
-- about 45,000 patients with 3 episodes each
CREATE TABLE patient AS SELECT caredata.try_nhs_number((4000000000 + i * 7)::text) AS n FROM generate_series(1, 500000) i;
DELETE FROM patient WHERE n IS NULL;
CREATE TABLE episode AS SELECT p.n AS nhs_number, e AS seq FROM patient p, generate_series(1, 3) e;
SELECT caredata.protect('episode', 'nhs_number', 'research');
GRANT SELECT ON episode TO load_analyst;
-- the feeds: 4,000 opt-outs today (yesterday: none), then Type 1 codes for 2,000 others
CREATE TABLE ndop AS SELECT n::text AS nhs_number FROM patient ORDER BY n LIMIT 4000;
CREATE TABLE gp_extract AS SELECT n::text AS nhs_number, '9Nu0'::text AS code, now() - interval '1 day' AS recorded_at
  FROM patient ORDER BY n DESC LIMIT 2000;
SELECT caredata.create_domain('load', 'load test');
-- what each reader saw
CREATE TABLE seen (at timestamptz DEFAULT clock_timestamp(), visible bigint);
GRANT INSERT ON seen TO load_analyst;
CREATE FUNCTION public.read_once() RETURNS void LANGUAGE sql AS
  $$ INSERT INTO public.seen (visible) SELECT count(*) FROM public.episode $$;
SQL
count_as_analyst() { psql -XAtq -d $db -U load_analyst -c 'SELECT count(*) FROM episode'; }
s0=$(count_as_analyst)
echo "SELECT public.read_once();" > results/load_reader.sql

pgbench -n -U load_analyst -c 8 -j 2 -T 12 -f results/load_reader.sql $db > results/load_pgbench.txt 2>&1 &
bench=$!
sleep 3
psql -qX -d $db -c "SELECT * FROM caredata.apply_opt_out_snapshot('ndop', 'nhs_number', 'ndop', now() - interval '1 minute')" >/dev/null; r1=$?
s1=$(count_as_analyst)
sleep 2
psql -qX -d $db -c "SELECT caredata.rotate_domain('load')" >/dev/null; r2=$?
sleep 1
psql -qX -d $db -c "SELECT * FROM caredata.apply_type1_codes('gp_extract')" >/dev/null; r3=$?
s2=$(count_as_analyst)
wait $bench; rb=$?

[ $r1 -eq 0 ] && [ $r2 -eq 0 ] && [ $r3 -eq 0 ]; ok $? "the opt-out snapshot, the domain rotation and the Type 1 feed ran under load"
tps=$(grep -m1 '^tps' results/load_pgbench.txt | sed 's/ (.*//')
done_tx=$(grep -m1 'number of transactions actually processed' results/load_pgbench.txt | sed 's/.*: //')
failed_tx=$(grep -m1 'number of failed transactions' results/load_pgbench.txt | sed 's/.*: \([0-9]*\).*/\1/')
[ $rb -eq 0 ] && [ "${failed_tx:-0}" = 0 ] && ! grep -q 'aborted' results/load_pgbench.txt
ok $? "8 readers, no error: ${done_tx:-?} reads, $tps"
bad=$(psql -XAtq -d $db -c "SELECT count(*) FROM seen WHERE visible NOT IN ($s0, $s1, $s2)")
kinds=$(psql -XAtq -d $db -c "SELECT string_agg(visible || ' x' || c, ', ' ORDER BY visible DESC) FROM (SELECT visible, count(*) AS c FROM seen GROUP BY 1) x")
[ "$bad" = 0 ]; ok $? "every read saw the register before the feeds ($s0 rows), between them ($s1) or after them ($s2), never a half-applied feed: $kinds"
[ "$(psql -XAtq -d $db -c "SELECT count(DISTINCT visible) FROM seen")" -ge 2 ]; ok $? "the readers saw the feeds arrive"
counts=$(psql -XAtq -d $db -c "SELECT count(*) FILTER (WHERE kind = 'national_data_opt_out' AND withdrawn_at IS NULL), count(*) FILTER (WHERE kind = 'type1' AND withdrawn_at IS NULL) FROM caredata.objection")
[ "$counts" = "4000|2000" ]; ok $? "the register holds what the feeds said: 4,000 opt-outs, 2,000 Type 1 ($counts)"
drop_db -c 'DROP ROLE IF EXISTS load_analyst'
done_testing
