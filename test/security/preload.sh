#!/usr/bin/env bash
# test/security/preload.sh: without shared_preload_libraries = 'caredata',
# caredata.key_file is, until the library loads, an ordinary placeholder
# setting any role can read, and the objection filter's executor hooks are
# missing from the statement that loads the library.  So everything that
# depends on preloading refuses at once, with a hint naming
# shared_preload_libraries: the keyed functions, protect(), every write to
# the objection register (record_objection, exemptions, plain DML), the
# filter functions, and a protected table's first query by an analyst;
# CREATE EXTENSION warns.  Starts a second throw-away cluster without
# preloading (its own directory and port), checks, preloads it to protect a
# table, restarts it without, checks the analyst's query, and removes it.
# Prints TAP.
. "$(dirname "$0")/../lib.bash"

export CAREDATA_CLUSTER_DIR=/var/tmp/caredata-nopreload-$$
export CAREDATA_PRELOAD=
base=$CAREDATA_PORT
cleanup() { scripts/cluster.sh stop >/dev/null 2>&1; rm -rf "$CAREDATA_CLUSTER_DIR"; }
trap cleanup EXIT
# a port near ours that is free: these ports lie in the kernel's ephemeral
# range, so a client connection may hold one for a while
started=1
for offset in 7 11 13 17 19 23; do
  export CAREDATA_PORT=$((base + offset)) PGPORT=$((base + offset))
  rm -rf "$CAREDATA_CLUSTER_DIR"
  if scripts/cluster.sh start >/dev/null 2>&1; then started=0; break; fi
done
[ "$started" -eq 0 ] || { echo "not ok 1 - a cluster without preloading starts"; echo "1..1"; exit 1; }
ok 0 "a second cluster without preloading starts (port $CAREDATA_PORT)"

[ -z "$(psql -XAtq -d postgres -c 'SHOW shared_preload_libraries')" ]; ok $? "it does not preload caredata"
out=$(psql -qX -d postgres -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION caredata' 2>&1)
ok $? "caredata installs there"
case "$out" in *"WARNING:  caredata was not loaded at server start"*"shared_preload_libraries"*) r=0 ;; *) r=1 ;; esac
ok $r "CREATE EXTENSION warns that caredata was not loaded at server start, naming shared_preload_libraries"
[ "$(psql -XAtq -d postgres -c 'SELECT caredata.preloaded()')" = "f" ]
ok $? "caredata.preloaded() says false"
# create_domain() records the key's fingerprint, so it refuses too; a
# domain written by hand lets pseudonymise() reach its own check
out=$(psql -XAtq -d postgres -c "SELECT caredata.create_domain('preload_test', 'test')" 2>&1)
case "$out" in *"caredata was not loaded at server start"*) r=0 ;; *) r=1 ;; esac
ok $r "create_domain() refuses: caredata was not loaded at server start"
psql -qX -d postgres -v ON_ERROR_STOP=1 -c "INSERT INTO caredata.domain (name, purpose) VALUES ('preload_test', 'test')" \
  -c "INSERT INTO caredata.domain_key (domain_id, version) SELECT id, 1 FROM caredata.domain WHERE name = 'preload_test'" >/dev/null 2>&1
out=$(psql -XAtq -d postgres -c "SELECT caredata.pseudonymise(9434765919::bigint, 'preload_test')" 2>&1)
case "$out" in *"caredata was not loaded at server start"*) r=0 ;; *) r=1 ;; esac
ok $r "pseudonymise() refuses: caredata was not loaded at server start"
case "$out" in *"shared_preload_libraries"*) r=0 ;; *) r=1 ;; esac
ok $r "with a hint naming shared_preload_libraries"
[ "$(psql -XAtq -d postgres -c 'SELECT caredata.key_file_status()')" = "not preloaded" ]
ok $? "key_file_status() says: not preloaded"
# what preloading prevents: here a role without privileges reads the path
psql -qX -d postgres -c 'CREATE ROLE preload_nobody LOGIN' >/dev/null
shown=$(psql -XAtq -d postgres -U preload_nobody -c 'SHOW caredata.key_file' 2>&1)
case "$shown" in */*) r=0 ;; *) r=1 ;; esac
ok $r "(why: without preloading, a fresh connection of a role without privileges reads the key file's path)"

# everything else that depends on preloading refuses at once, each with the
# hint (never the late, misleading error of the filter)
refuses() {  # $1 label, $2.. psql arguments (as $role, default postgres)
  local label=$1; shift
  out=$(psql -XAtq -d postgres -U "${role:-postgres}" "$@" 2>&1)
  case "$out" in *"caredata was not loaded at server start"*"HINT:"*"shared_preload_libraries"*) r=0 ;; *) r=1 ;; esac
  ok $r "$label refuses: caredata was not loaded at server start, with a hint naming shared_preload_libraries"
}
psql -qX -d postgres -v ON_ERROR_STOP=1 \
  -c "CREATE TABLE public.preload_ep (id int, nhs caredata.nhs_number)" \
  -c "INSERT INTO public.preload_ep VALUES (1, '943 476 5919'), (2, '401 023 2137')" \
  -c "CREATE ROLE preload_analyst LOGIN IN ROLE caredata_analyst" \
  -c "CREATE ROLE preload_admin LOGIN IN ROLE caredata_admin" \
  -c "GRANT SELECT ON public.preload_ep TO preload_analyst" >/dev/null
refuses "protect()" -c "SELECT caredata.protect('public.preload_ep', 'nhs', 'research')"
[ "$(psql -XAtq -d postgres -c "SELECT count(*) FROM caredata.protected_table")" = 0 ] &&
  [ "$(psql -XAtq -d postgres -c "SELECT count(*) FROM pg_policy WHERE polrelid = 'public.preload_ep'::regclass")" = 0 ]
ok $? "... and leaves the table as it was (no policy, not listed as protected)"
refuses "record_objection()" -c "SELECT caredata.record_objection('943 476 5919', 'type1', 'gp')"
role=preload_admin refuses "record_objection() as caredata_admin" -c "SELECT caredata.record_objection('943 476 5919', 'national_data_opt_out', 'nhs')"
refuses "grant_exemption()" -c "SELECT caredata.grant_exemption('s', 'research', 'type1', 'section 251', 'ref 1')"
refuses "an INSERT into the register" -c "INSERT INTO caredata.objection (nhs_number, kind, purposes, effective_from, source) VALUES ('943 476 5919', 'type1', '{research}', now(), 'x')"
refuses "TRUNCATE of the register" -c "TRUNCATE caredata.objection"
[ "$(psql -XAtq -d postgres -c "SELECT count(*) FROM caredata.objection")" = 0 ]
ok $? "... and the register stays empty"
role=preload_admin refuses "permitted()" -c "SELECT caredata.permitted('943 476 5919', 'research')"
refuses "row_permitted()" -c "SELECT caredata.row_permitted('943 476 5919', 'research', now(), NULL)"
refuses "my_nhs_number()" -c "SELECT caredata.my_nhs_number()"
refuses "caredata.require_preload()" -c "SELECT caredata.require_preload()"

# a table protected while preloaded, in a server restarted without: the
# analyst's first query refuses with the hint (it used to fail with
# "row_permitted() answers only for the NHS numbers of the protected table it filters")
CAREDATA_PRELOAD=caredata scripts/cluster.sh start >/dev/null 2>&1
[ "$(psql -XAtq -d postgres -c 'SELECT caredata.preloaded()')" = "t" ]
ok $? "restarted with preloading, caredata.preloaded() says true"
psql -qX -d postgres -v ON_ERROR_STOP=1 -c "SELECT caredata.protect('public.preload_ep', 'nhs', 'research')" \
  -c "SELECT caredata.record_objection('943 476 5919', 'type1', 'gp')" >/dev/null 2>&1
ok $? "there protect() and record_objection() run"
[ "$(psql -XAtq -d postgres -U preload_analyst -c 'SELECT count(*) FROM public.preload_ep')" = 1 ]
ok $? "and the analyst sees the non-objector only"
scripts/cluster.sh start >/dev/null 2>&1
[ -z "$(psql -XAtq -d postgres -c 'SHOW shared_preload_libraries')" ]
ok $? "restarted without preloading"
role=preload_analyst refuses "the analyst's first query of the protected table" -c 'SELECT count(*) FROM public.preload_ep'
role=preload_analyst refuses "the analyst's cursor over it" -c 'BEGIN' -c 'DECLARE c CURSOR FOR SELECT * FROM public.preload_ep' -c 'FETCH ALL FROM c'
role=preload_analyst refuses "the analyst's COPY of it" -c 'COPY public.preload_ep TO STDOUT'
role=preload_admin refuses "withdraw_objection()" -c "SELECT caredata.withdraw_objection(o.id) FROM caredata.objection o"

done_testing
