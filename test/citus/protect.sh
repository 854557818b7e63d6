#!/usr/bin/env bash
# test/citus/protect.sh: protect() and unprotect() on a Citus cluster
# (docs/scale-out.md).  Before caredata.citus_setup() a Citus table is
# refused (a worker would find an empty register); after it, distributed
# and reference tables get the one-policy filter on every shard, a table
# with policies of its own is refused, a policy added later is refused by
# the DDL guard, local tables on the coordinator keep their filter, a table
# distributed after protect() is refused on every path, and unprotect()
# leaves no policy behind on any shard.  Prints TAP.
. "$(dirname "$0")/lib.bash"

citus_reset
on "$coord" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE ROLE citus_reader LOGIN IN ROLE caredata_analyst;
CREATE ROLE citus_analyst LOGIN IN ROLE caredata_admin;
GRANT CREATE ON SCHEMA public TO citus_analyst;
CREATE TABLE citus_dist (id bigint, nhs caredata.nhs_number);
SELECT create_distributed_table('citus_dist', 'nhs');
CREATE TABLE citus_ref (id bigint, nhs caredata.nhs_number);
SELECT create_reference_table('citus_ref');
CREATE TABLE citus_local (id bigint, nhs caredata.nhs_number);
INSERT INTO citus_dist VALUES (1, '943 476 5919'), (2, '401 023 2137');
INSERT INTO citus_ref VALUES (1, '943 476 5919'), (2, '401 023 2137');
INSERT INTO citus_local VALUES (1, '943 476 5919'), (2, '401 023 2137');
GRANT SELECT ON citus_dist, citus_ref, citus_local TO citus_reader;
SELECT caredata.record_objection('943 476 5919', 'national_data_opt_out', 'citus test', now() - interval '1 day');
SQL

# 1. before citus_setup(): refused, with the way out in the hint
for t in citus_dist citus_ref; do
  out=$(on "$coord" -v VERBOSITY=verbose -c "SELECT caredata.protect('$t', 'nhs', 'research')")
  case "$out" in *"ERROR:  55000: "*"caredata's catalogs are on this node only"*) r=0 ;; *) r=1 ;; esac
  ok $r "before citus_setup(), protect() refuses $t with SQLSTATE 55000"
  case "$out" in *"HINT:  Run SELECT caredata.citus_setup()"*) r=0 ;; *) r=1 ;; esac
  ok $r "... with a hint naming caredata.citus_setup()"
  [ "$(on "$coord" -c "SELECT count(*) FROM caredata.protected_table WHERE relid = '$t'::regclass")" = 0 ]
  ok $? "... and records nothing"
done
out=$(on "$coord" -U citus_analyst -c "SELECT caredata.citus_setup()")
case "$out" in *"permission denied"*) r=0 ;; *) r=1 ;; esac
ok $r "citus_setup() is the superuser's: a caredata_admin member is refused"
out=$(on "$coord" -c "SET client_min_messages = warning" -c "SELECT caredata.citus_setup()")
case "$out" in *ERROR*) r=1 ;; *) r=0 ;; esac
ok $r "citus_setup() on the coordinator (${out:0:80})"
out=$(on "$w1" -c "SELECT caredata.citus_setup()")
case "$out" in *"runs on the Citus coordinator"*) r=0 ;; *) r=1 ;; esac
ok $r "on a worker it refuses"
out=$(on "$coord" -c "SET client_min_messages = warning" -c "SELECT caredata.citus_setup()")
case "$out" in *ERROR*) r=1 ;; *) r=0 ;; esac
ok $r "run again it changes nothing and succeeds"

# 2. distributed, reference and local tables, each filtered on every path
for t in citus_dist citus_ref citus_local; do
  out=$(on "$coord" -c "SELECT caredata.protect('$t', 'nhs', 'research')")
  case "$out" in *ERROR*) r=1 ;; *) r=0 ;; esac
  ok $r "$t is protected (${out%%$'\n'*})"
  seen=$(on "$coord" -U citus_reader -c "SELECT count(*) FROM $t")
  [ "$seen" = 1 ]; ok $? "the reader sees 1 of its 2 rows through the coordinator (saw $seen)"
  if [ "$t" != citus_local ]; then
    seen=$(on "$w2" -U citus_reader -c "SELECT count(*) FROM $t")
    [ "$seen" = 1 ]; ok $? "... and through a worker (saw $seen)"
  fi
done
bad=$(on "$coord" -c "SELECT count(*) FROM caredata.citus_check() WHERE NOT ok")
[ "$bad" = 0 ]; ok $? "citus_check() finds every placement of both as on the coordinator ($bad failing)"

# 3. policies of the table's own: refused at protect(), and when added later
on "$coord" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE TABLE citus_later (id bigint, nhs caredata.nhs_number);
SELECT create_distributed_table('citus_later', 'nhs');
ALTER TABLE citus_later ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON citus_later AS RESTRICTIVE USING (id > 0);
SQL
out=$(on "$coord" -v VERBOSITY=verbose -c "SELECT caredata.protect('citus_later', 'nhs', 'research')")
case "$out" in *"ERROR:  0A000: public.citus_later has row security policies of its own"*) r=0 ;; *) r=1 ;; esac
ok $r "a distributed table with a policy of its own is refused (0A000)"
on "$coord" -c "DROP TABLE citus_later" >/dev/null
out=$(on "$coord" -c "CREATE POLICY added_later ON citus_dist AS RESTRICTIVE FOR SELECT USING (id > 0)")
case "$out" in *"CREATE POLICY would weaken the objection filter"*) r=0 ;; *) r=1 ;; esac
ok $r "a policy added later (Citus would make it permissive on the shards) is refused by the DDL guard (${out%%$'\n'*})"
# (one added on a shard behind the guard's back fails closed at query
# time: test/citus/objection_filter.sh)
for port in "$coord" "$w1"; do
  seen=$(on "$port" -U citus_reader -c "SELECT count(*) FROM citus_dist")
  [ "$seen" = 1 ]; ok $? "... and the reader's query through :$port is filtered as before (saw $seen)"
done
bad=$(on "$coord" -c "SELECT count(*) FROM caredata.citus_check() WHERE NOT ok AND item = 'public.citus_dist'")
[ "$bad" = 0 ]; ok $? "citus_check() finds its shards as they were ($bad failing)"

# 3b. names: workers bind the filter by name, so a filtered table is not
# renamed, a dropped one leaves no name behind, and a name Citus cannot
# quote in its per-shard commands is refused
out=$(on "$coord" -c "ALTER TABLE citus_dist RENAME TO citus_dist_renamed")
case "$out" in *"has an objection filter and cannot be renamed"*) r=0 ;; *) r=1 ;; esac
ok $r "renaming a filtered Citus table is refused (${out%%$'\n'*})"
on "$coord" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE TABLE citus_gone (id bigint, nhs caredata.nhs_number);
SELECT create_distributed_table('citus_gone', 'nhs');
SELECT caredata.protect('citus_gone', 'nhs', 'research');
DROP TABLE citus_gone;
SQL
left=$(on "$w1" -c "SELECT count(*) FROM caredata.distributed_filter WHERE relation = 'public.citus_gone'")
[ "$left" = 0 ]; ok $? "a dropped filtered table leaves no name behind, on the workers either ($left)"
out=$(on "$coord" -c "CREATE TABLE \"citus'q\" (id bigint, nhs caredata.nhs_number)" -c "SELECT create_distributed_table('\"citus''q\"', 'nhs')" \
        -c "SELECT caredata.protect('\"citus''q\"', 'nhs', 'research')")
case "$out" in *"cannot be protected on Citus: its name"*) r=0 ;; *) r=1 ;; esac
ok $r "a table whose name holds a quote is refused (Citus writes shard names into commands unquoted)"
on "$coord" -c "DROP TABLE IF EXISTS \"citus'q\"" >/dev/null
out=$(on "$coord" -U citus_analyst -c "SELECT count(*) FROM caredata.citus_check()")
case "$out" in *ERROR*) r=1 ;; *) r=0 ;; esac
ok $r "citus_check() runs as a caredata_admin member, as that role (${out%%$'\n'*} checks)"

# 4. unprotect(): no policy left on any shard, nothing left in the catalogs
on "$coord" -c "SELECT caredata.unprotect('citus_dist')" >/dev/null
left=$(on "$coord" -c "SELECT count(*) FROM run_command_on_placements('citus_dist', \$\$SELECT count(*) FROM pg_policy WHERE polrelid = '%s'::regclass\$\$) WHERE result <> '0'")
[ "$left" = 0 ]; ok $? "unprotect(): no shard keeps a policy ($left do)"
for port in "$w1" "$w2"; do
  [ "$(on "$port" -c "SELECT count(*) FROM caredata.distributed_filter WHERE relation = 'public.citus_dist'")" = 0 ]
  ok $? "... and worker :$port no longer binds it"
done
[ "$(on "$coord" -U citus_reader -c "SELECT count(*) FROM citus_dist")" = 2 ]; ok $? "the reader sees both rows again"

# 5. a protected table distributed afterwards: Citus makes the restrictive
# filter permissive on shards and shell tables, and every path refuses it
on "$coord" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SET client_min_messages = warning;
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
shard=citus_later_$(on "$coord" -c "SELECT min(shardid) FROM pg_dist_shard JOIN pg_dist_shard_placement USING (shardid) WHERE logicalrelid = 'citus_later'::regclass AND nodeport = $w1")
on "$w1" -c "GRANT SELECT ON $shard TO citus_reader" >/dev/null
out=$(on "$w1" -U citus_reader -c "SELECT count(*) FROM $shard")
case "$out" in *"has been made permissive"*) r=0 ;; *) r=1 ;; esac
ok $r "... and on a shard directly ($shard)"
[ "$(on "$coord" -c "SELECT count(*) FROM citus_later")" = 2 ]; ok $? "the superuser still reads it (to undistribute or unprotect)"

citus_done
