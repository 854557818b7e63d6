#!/usr/bin/env bash
# test/faults/feed_bulk_crash.sh: a snapshot applied to an empty register
# builds the register's indexes bottom up (src/objection/feed_load.c).  A
# crash after the build, before the commit, leaves the register empty and
# its indexes valid btrees (WAL replay of the pages logged whole and of the
# metapage); applying the snapshot again then gives every number, through
# indexes that hold every row (amcheck, heapallindexed).  The fault: an
# immediate shutdown while the feed waits in an AFTER INSERT statement
# trigger (the test's brake), then a start (crash recovery).  Run by
# scripts/test.sh against the running throw-away cluster, which it
# crashes: it must run alone.  Prints TAP.
. "$(dirname "$0")/../lib.bash"

db=caredata_faults_bulk
dir=$(scripts/cluster.sh dir)
braked() { for _ in $(seq 1 600); do
             psql -XAtq -d postgres -c "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = '$db'" | grep . && return 0
             sleep 0.1
           done; return 1; }
indexes_valid() { psql -XAtq -d $db -c "SELECT count(*) FROM (SELECT bt_index_parent_check(i.indexrelid, true, true)
                    FROM pg_index i WHERE i.indrelid = 'caredata.objection'::regclass) c" 2>&1; }

fresh_db
psql -qX -v ON_ERROR_STOP=1 -d $db >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION caredata;
CREATE EXTENSION amcheck;
CREATE TABLE day1 AS SELECT lpad((4000000000 + i * 7)::text, 10, '0') AS nhs_number FROM generate_series(1, 3000000) i
  WHERE caredata.try_nhs_number((4000000000 + i * 7)::text) IS NOT NULL;
-- the test's brake: after the rows and their indexes are written, before the commit
CREATE FUNCTION public.brake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('test.brake', true) = 'on' THEN PERFORM pg_sleep(30); END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER brake AFTER INSERT ON caredata.objection FOR EACH STATEMENT EXECUTE FUNCTION public.brake();
SQL
ok $? "an empty register, a snapshot of 270,000 numbers"

PGOPTIONS='-c test.brake=on' psql -qX -d $db -c "BEGIN" \
  -c "SELECT * FROM caredata.apply_opt_out_snapshot('day1', 'nhs_number', 'ndop', now())" \
  -c "SELECT mode FROM pg_locks WHERE relation = 'caredata.objection'::regclass AND pid = pg_backend_pid() AND mode = 'ExclusiveLock'" \
  -c "COMMIT" >/dev/null 2>&1 &
pid=$(braked)
[ -n "$pid" ] && [ "$(psql -XAtq -d postgres -c "SELECT count(*) FROM pg_locks WHERE pid = $pid AND mode = 'ExclusiveLock' AND relation = (SELECT oid FROM pg_class WHERE relname = 'objection' AND relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'caredata'))" -d $db)" = 1 ]
ok $? "the feed built the indexes in place (it holds the EXCLUSIVE lock) and waits before its commit"
[ -n "$pid" ] && as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
ok $? "an immediate shutdown before the feed's commit"
wait
scripts/cluster.sh start >/dev/null && wait_up; ok $? "the server started again (crash recovery)"
[ "$(psql -XAtq -d $db -c 'SELECT count(*) FROM caredata.objection')" = 0 ]; ok $? "the register is empty, as before the feed"
[ "$(indexes_valid)" = 3 ]; ok $? "its three indexes are valid btrees after recovery ($(indexes_valid))"

psql -qX -d $db -c "SELECT * FROM caredata.apply_opt_out_snapshot('day1', 'nhs_number', 'ndop', now())" >/dev/null
counts=$(psql -XAtq -d $db -c "SELECT count(*), count(*) FILTER (WHERE nhs_number::text IN (SELECT caredata.try_nhs_number(nhs_number)::text FROM day1)) FROM caredata.objection WHERE withdrawn_at IS NULL")
want=$(psql -XAtq -d $db -c "SELECT count(*), count(*) FROM day1")
[ "$counts" = "$want" ]; ok $? "applied again: every number open ($counts, want $want)"
[ "$(indexes_valid)" = 3 ]; ok $? "the indexes hold every row (amcheck, heapallindexed)"
[ "$(psql -XAtq -d $db -c "SELECT count(*) FROM caredata.feed_load")" = 1 ]; ok $? "one feed load recorded"
drop_db
done_testing
