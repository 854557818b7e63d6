#!/usr/bin/env bash
# test/faults/feed_crash.sh: a feed interrupted by a crash leaves the
# register exactly as it was, and applying it again gives what an
# uninterrupted apply gives.  Two faults, each during a 300,000-number
# opt-out snapshot: the feed's backend killed with SIGKILL (the server
# restarts every backend and recovers), and an immediate shutdown (then a
# start: crash recovery).  Run by scripts/test.sh against the running
# throw-away cluster, which it crashes twice: it must run alone.  Prints TAP.
. "$(dirname "$0")/../lib.bash"

db=caredata_faults
dir=$(scripts/cluster.sh dir)
# the feed's backend once it has written 50,000 rows and sits at the brake
braked() { for _ in $(seq 1 600); do
             psql -XAtq -d postgres -c "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = '$db'" | grep . && return 0
             sleep 0.1
           done; return 1; }
register() { psql -XAtq -d $db -c "SELECT count(*), md5(string_agg(nhs_number::text || kind || coalesce(withdrawn_at::text, '-'), ',' ORDER BY id)) FROM caredata.objection"; }

fresh_db
psql -qX -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION caredata;
-- yesterday's snapshot: 200,000 opt-outs; today's: 300,000 (100,000 new, 50,000 withdrawn)
CREATE TABLE day1 AS SELECT lpad((4000000000 + i * 7)::text, 10, '0') AS nhs_number FROM generate_series(1, 2400000) i
  WHERE caredata.try_nhs_number((4000000000 + i * 7)::text) IS NOT NULL LIMIT 200000;
CREATE TABLE day2 AS (SELECT nhs_number FROM day1 OFFSET 50000)
  UNION ALL (SELECT (6000000000 + i * 7)::text FROM generate_series(1, 1200000) i
              WHERE caredata.try_nhs_number((6000000000 + i * 7)::text) IS NOT NULL LIMIT 150000);
SELECT * FROM caredata.apply_opt_out_snapshot('day1', 'nhs_number', 'ndop', now() - interval '1 day');
-- (the test's own brake: the feed pauses after writing 50,000 rows, so the
-- faults below land in the middle of its writes, on any machine)
CREATE SEQUENCE public.rows_written;
CREATE FUNCTION public.brake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF nextval('public.rows_written') = 50000 THEN PERFORM pg_sleep(30); END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER brake BEFORE INSERT ON caredata.objection FOR EACH ROW EXECUTE FUNCTION public.brake();
SQL
before=$(register)
ok $? "yesterday's snapshot applied ($(echo "$before" | cut -d'|' -f1) objections)"

# 1. the feed's backend killed with SIGKILL mid-apply
psql -qX -d $db -c "SELECT setval('public.rows_written', 1, false)" >/dev/null
psql -qX -d $db -c "SELECT * FROM caredata.apply_opt_out_snapshot('day2', 'nhs_number', 'ndop', now())" >/dev/null 2>&1 &
pid=$(braked)
[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
ok $? "the feed's backend was killed mid-apply, after writing 50,000 rows"
wait
wait_up; ok $? "the server recovered"
[ "$(register)" = "$before" ]; ok $? "the register is exactly as before the feed"
[ "$(psql -XAtq -d $db -c 'SELECT count(*) FROM caredata.feed_load')" = 1 ]; ok $? "no feed load was recorded for it"

# 2. an immediate shutdown mid-apply, then a start (crash recovery)
psql -qX -d $db -c "SELECT setval('public.rows_written', 1, false)" >/dev/null
psql -qX -d $db -c "SELECT * FROM caredata.apply_opt_out_snapshot('day2', 'nhs_number', 'ndop', now())" >/dev/null 2>&1 &
pid=$(braked)
[ -n "$pid" ] && as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
ok $? "an immediate shutdown during the feed"
wait
scripts/cluster.sh start >/dev/null && wait_up; ok $? "the server started again (crash recovery)"
[ "$(register)" = "$before" ]; ok $? "the register is exactly as before the feed"

# 3. applying it again gives what an uninterrupted apply gives
psql -qX -d $db -c 'DROP TRIGGER brake ON caredata.objection' -c "SELECT * FROM caredata.apply_opt_out_snapshot('day2', 'nhs_number', 'ndop', now())" >/dev/null
after=$(register)
counts=$(psql -XAtq -d $db -c "SELECT count(*) FILTER (WHERE withdrawn_at IS NULL), count(*) FILTER (WHERE withdrawn_at IS NOT NULL) FROM caredata.objection")
want=$(psql -XAtq -d $db -c "SELECT (SELECT count(DISTINCT caredata.try_nhs_number(nhs_number)) FROM day2),
  (SELECT count(*) FROM day1 WHERE caredata.try_nhs_number(nhs_number)::text NOT IN (SELECT caredata.try_nhs_number(nhs_number)::text FROM day2 WHERE caredata.try_nhs_number(nhs_number) IS NOT NULL))")
[ "$counts" = "$want" ]; ok $? "applied again: open and withdrawn as the two snapshots say ($counts, want $want)"
[ "$(psql -XAtq -d $db -c "SELECT count(*) FROM caredata.feed_load")" = 2 ]; ok $? "two feed loads recorded: yesterday's and today's, once"
drop_db
done_testing
