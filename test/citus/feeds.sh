#!/usr/bin/env bash
# test/citus/feeds.sh: the register's feeds on Citus (docs/scale-out.md).
# Once the register is a reference table, apply_opt_out_snapshot() and
# apply_type1_codes() write it from changes worked out on the coordinator
# (Citus does not write a reference table from a join with a session's
# temporary table): the same counts and rows as on one node, on every node,
# and the next query through a worker filters by them.  Prints TAP.
. "$(dirname "$0")/lib.bash"
register() { on "$1" -c "SELECT count(*) || ' ' || md5(string_agg(nhs_number::text || kind || coalesce(withdrawn_at::text, '-'), ',' ORDER BY nhs_number, kind, effective_from)) FROM caredata.objection"; }

citus_reset
on "$coord" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT caredata.citus_setup();
CREATE ROLE citus_analyst LOGIN IN ROLE caredata_analyst;
-- 300 patients with valid NHS numbers, 5 episodes each, distributed
CREATE TABLE citus_feed_patient AS
SELECT row_number() OVER (ORDER BY g) AS i, nhs
  FROM (SELECT g, caredata.nhs_number(base * 10 + d) AS nhs
          FROM generate_series(1, 400) g,
               LATERAL (SELECT 700000000::bigint + g * 17 AS base) b,
               LATERAL (SELECT (11 - (sum(substr(base::text, k, 1)::int * (11 - k)) % 11)) % 11 AS d
                          FROM generate_series(1, 9) k) c
         WHERE d < 10 ORDER BY g LIMIT 300) x;
CREATE TABLE citus_ep (id bigint, nhs caredata.nhs_number);
SELECT create_distributed_table('citus_ep', 'nhs');
INSERT INTO citus_ep SELECT p.i * 10 + k, p.nhs FROM citus_feed_patient p, generate_series(1, 5) k;
SELECT caredata.protect('citus_ep', 'nhs', 'research');
GRANT SELECT ON citus_ep TO citus_analyst;
-- yesterday's snapshot: patients 1..60 (and a bad row); today's: 31..90
CREATE TABLE citus_snap1 AS SELECT nhs::text AS nhs_number FROM citus_feed_patient WHERE i <= 60 UNION ALL SELECT '123';
CREATE TABLE citus_snap2 AS SELECT nhs::text AS nhs_number FROM citus_feed_patient WHERE i BETWEEN 31 AND 90;
SQL
total=$(on "$coord" -c "SELECT count(*) FROM citus_ep")

r1=$(on "$coord" -c "SET client_min_messages = warning" -c "SELECT rows_read || ' ' || invalid || ' ' || opened || ' ' || withdrawn || ' ' || unchanged FROM caredata.apply_opt_out_snapshot('citus_snap1', effective_at => now() - interval '2 days')")
[ "$r1" = "$(( $(on "$coord" -c "SELECT count(*) FROM citus_snap1") )) 1 $(( $(on "$coord" -c "SELECT count(*) FROM citus_snap1") - 1 )) 0 0" ]
ok $? "the first opt-out snapshot opens one objection per valid number ($r1)"
r2=$(on "$coord" -c "SET client_min_messages = warning" -c "SELECT rows_read || ' ' || invalid || ' ' || opened || ' ' || withdrawn || ' ' || unchanged FROM caredata.apply_opt_out_snapshot('citus_snap2', effective_at => now() - interval '1 day')")
[ "$r2" = "60 0 30 30 30" ]; ok $? "the next one opens 30, withdraws 30, leaves 30 ($r2)"
for port in "$w1" "$w2"; do
  [ "$(register "$port")" = "$(register "$coord")" ]; ok $? "worker :$port holds the same register ($(register "$port" | cut -c1-12))"
done
seen=$(on "$w1" -U citus_analyst -c "SELECT count(*) FROM citus_ep")
[ "$seen" = "$((total - 60 * 5))" ]; ok $? "the analyst through a worker sees $((total - 300)) of $total: the 60 open objectors hidden (saw $seen)"

# Type 1: a dissent, a dissent then its withdrawal, a withdrawal of an open one
on "$coord" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT caredata.record_objection(nhs, 'type1', 'gp_extract', now() - interval '10 days')
  FROM citus_feed_patient WHERE i = 200;
CREATE TABLE citus_gp_extract AS
SELECT nhs::text AS nhs_number, code, now() - make_interval(days => d) AS recorded_at
  FROM citus_feed_patient p
  JOIN (VALUES (150, '9Nu0.', 5), (151, '827241000000103', 6), (151, '827261000000102', 3),
               (200, '9Nu1.', 2), (152, 'XaXaX', 1)) v(i, code, d) USING (i);
SQL
t1=$(on "$coord" -c "SET client_min_messages = warning" -c "SELECT rows_read || ' ' || invalid || ' ' || unmapped || ' ' || opened || ' ' || withdrawn FROM caredata.apply_type1_codes('citus_gp_extract')")
[ "$t1" = "5 0 1 2 1" ]; ok $? "a Type 1 extract opens 2 (one as history), withdraws 1, skips 1 unmapped ($t1)"
state=$(on "$coord" -c "SELECT string_agg(p.i || ':' || (o.withdrawn_at IS NULL), ',' ORDER BY p.i, o.effective_from) FROM caredata.objection o JOIN citus_feed_patient p ON p.nhs::text = o.nhs_number::text WHERE o.kind = 'type1'")
[ "$state" = "150:true,151:false,200:false" ]; ok $? "the register holds it as one node would: 150 open, 151 history, 200 withdrawn ($state)"
for port in "$w1" "$w2"; do
  [ "$(register "$port")" = "$(register "$coord")" ]; ok $? "worker :$port holds the same register after it"
done

on "$coord" -c "DROP TABLE citus_ep, citus_feed_patient, citus_snap1, citus_snap2, citus_gp_extract" >/dev/null
citus_done
