#!/usr/bin/env bash
# test/citus/linkage_publication.sh: linkage over distributed source tables
# and published views over a distributed table (docs/scale-out.md).
# Linkage pulls each source's identifiers to the coordinator (one row per
# record into caredata.link_record) and links there: the same people as
# over ordinary tables, timed both ways.  A published view over a
# distributed protected table hides what it hides over an ordinary one.
# Prints TAP.
. "$(dirname "$0")/lib.bash"

citus_reset
on "$coord" -c "DROP SCHEMA IF EXISTS synth, synth_truth CASCADE" >/dev/null 2>&1
out=$(on "$coord" -v ON_ERROR_STOP=1 <<'SQL'
SET client_min_messages = warning;
SELECT caredata.citus_setup();
\i test/synthetic/generate.sql
SELECT synth.generate(4000, 42);
-- the same sources, distributed by record id
CREATE TABLE citus_gp AS SELECT * FROM synth.gp_registration;
CREATE TABLE citus_hes AS SELECT * FROM synth.hospital_episode;
SELECT create_distributed_table('citus_gp', 'record_id');
SELECT create_distributed_table('citus_hes', 'record_id');
SELECT truncate_local_data_after_distributing_table('citus_gp'),
       truncate_local_data_after_distributing_table('citus_hes');
SQL
)
case "$out" in *ERROR*) echo "# set-up: $out" ;; esac
echo "# $(on "$coord" -c "SELECT count(*) FROM citus_gp") GP and $(on "$coord" -c "SELECT count(*) FROM citus_hes") hospital records"

# link the same records twice, distributed and not; each partition of
# records into people is written as (source, record, first record of its person)
link() {   # link MODEL GP_RELATION HES_RELATION -> seconds
  on "$coord" -v ON_ERROR_STOP=1 >/dev/null <<SQL
SET client_min_messages = warning;
SELECT caredata.link_add_source('gp', '$2', 'record_id', nhs_number => 'nhs_number', dob => 'dob', sex => 'sex', postcode => 'postcode');
SELECT caredata.link_add_source('hes', '$3', 'record_id', nhs_number => 'nhs_number', dob => 'dob', sex => 'sex', postcode => 'postcode');
SELECT caredata.link_create_model('$1');
SQL
  on "$coord" -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "SELECT seconds FROM caredata.link_run('$1')"
}
partition() {
  on "$coord" -c "SELECT md5(string_agg(source || ':' || record_id || '>' || first, ',' ORDER BY source, record_id))
                    FROM (SELECT source, record_id,
                                 min(source || ':' || record_id) OVER (PARTITION BY person_id) AS first
                            FROM caredata.person_index) p"
}
dist_s=$(link citus_model citus_gp citus_hes)
case "$dist_s" in *ERROR*) r=1 ;; *) r=0 ;; esac
ok $r "link_run() over distributed sources (${dist_s%%$'\n'*} s)"
dist=$(partition)
local_s=$(link local_model synth.gp_registration synth.hospital_episode)
local=$(partition)
[ -n "$dist" ] && [ "$dist" = "$local" ]; ok $? "it finds the same people as over ordinary tables (partition $dist)"
echo "# link_run(): distributed sources ${dist_s} s, ordinary tables ${local_s} s"
quality=$(on "$coord" -c "SELECT round(precision::numeric, 3) || ' ' || round(recall::numeric, 3) FROM caredata.link_quality('synth_truth.record')" 2>/dev/null | head -1)
[ -n "$quality" ]; ok $? "its quality against the truth: precision and recall $quality"

# what only the coordinator holds: a call pushed down to the workers refuses
out=$(on "$coord" -c "SELECT (caredata.link_lookup(nhs_number, caredata.try_standardise_dob(dob), sex, postcode, 'citus_model')).person_id FROM citus_hes WHERE record_id < 100")
case "$out" in *"linkage runs on the Citus coordinator only"*) r=0 ;; *) r=1 ;; esac
ok $r "link_lookup() pushed down to the workers refuses (${out%%$'\n'*})"
out=$(on "$coord" -c "WITH r AS MATERIALIZED (SELECT * FROM citus_hes WHERE record_id < 100 ORDER BY record_id LIMIT 1)
                      SELECT count(l.person_id) FROM r, caredata.link_lookup(r.nhs_number, caredata.try_standardise_dob(r.dob), r.sex, r.postcode, 'citus_model') l")
[ "$out" -ge 1 ] 2>/dev/null; ok $? "gathered to the coordinator first, as the hint says, it answers ($out)"
before=$(on "$coord" -c "SELECT count(*) FROM caredata.audit_log")
out=$(on "$coord" -c "SELECT caredata.audit_append('citus.test', record_id::text) FROM citus_hes WHERE record_id < 100")
case "$out" in *"audit_append() runs on the Citus coordinator only"*) r=0 ;; *) r=1 ;; esac
ok $r "audit_append() pushed down to the workers refuses: no entry lands in a worker's own log"
w=$(on "$w1" -c "SELECT count(*) FROM caredata.audit_log")
[ "$w" = 0 ] && [ "$(on "$coord" -c "SELECT count(*) FROM caredata.audit_log")" = "$before" ] && [ "$(on "$coord" -c "SELECT caredata.audit_verify()")" = t ]
ok $? "the coordinator's audit chain is unchanged and verifies; the worker's log is empty ($w)"

# a published view over a distributed protected table
out=$(on "$coord" -v ON_ERROR_STOP=1 <<'SQL'
SET client_min_messages = warning;
CREATE ROLE citus_recipient LOGIN;   -- Citus reaches the workers as the querying role
GRANT citus_recipient TO postgres;
-- the episodes with a valid NHS number, as an ordinary and a distributed table
CREATE TABLE citus_pub_local AS
SELECT record_id, caredata.try_nhs_number(nhs_number) AS nhs_number, provider_code, admission_date, dob, sex, postcode
  FROM synth.hospital_episode WHERE caredata.try_nhs_number(nhs_number) IS NOT NULL;
CREATE TABLE citus_pub (LIKE citus_pub_local);
SELECT create_distributed_table('citus_pub', 'nhs_number');
INSERT INTO citus_pub SELECT * FROM citus_pub_local;
SELECT caredata.record_objection(nhs_number, 'national_data_opt_out', 'citus test', now() - interval '1 day')
  FROM (SELECT DISTINCT nhs_number FROM citus_pub_local ORDER BY 1 LIMIT 40) o;
SELECT caredata.protect('citus_pub', 'nhs_number', 'research');
SELECT caredata.protect('citus_pub_local', 'nhs_number', 'research');
SELECT caredata.create_domain('citus_pub', 'publication test');
SELECT caredata.refresh_pseudonyms('citus_pub', 'citus_pub');
SELECT caredata.publish('citus_pub_dist', 'citus_pub',
  '{"domain": "citus_pub", "purpose": "research", "linkability_override": "test: Citus plumbing, not linkability",
    "columns": {"provider_code": "keep", "admission_date": "month", "dob": "age_band", "sex": "keep", "postcode": "district"}}',
  'citus_recipient');
SELECT caredata.publish('citus_pub_local', 'citus_pub_local',
  '{"domain": "citus_pub", "purpose": "research", "linkability_override": "test: Citus plumbing, not linkability",
    "columns": {"provider_code": "keep", "admission_date": "month", "dob": "age_band", "sex": "keep", "postcode": "district"}}',
  'citus_recipient');
SQL
)
case "$out" in *ERROR*) echo "# publication set-up: $out" ;; esac
view() { on "$coord" -c "SET ROLE citus_recipient" -c "SELECT count(*) || ' ' || md5(string_agg(v::text, ',' ORDER BY v::text)) FROM published.$1 v"; }
d=$(view citus_pub_dist); l=$(view citus_pub_local)
case "$d" in *ERROR*|'') r=1 ;; *) [ "$d" = "$l" ]; r=$? ;; esac
ok $r "the recipient's view of the distributed table equals the one of the ordinary table (${d:0:60})"
hidden=$(on "$coord" -c "SELECT count(*) FROM citus_pub_local WHERE nhs_number::text IN (SELECT nhs_number::text FROM caredata.objection)")
all=$(on "$coord" -c "SELECT count(*) FROM citus_pub")
[ "${d%% *}" = "$((all - hidden))" ]; ok $? "it leaves out the objectors' $hidden episodes of $all (shows ${d%% *})"
out=$(on "$coord" -c "SET ROLE citus_recipient" -c "SELECT count(*) FROM citus_pub")
case "$out" in *"permission denied"*) r=0 ;; *) r=1 ;; esac
ok $r "the recipient reads the view, not the table"
# k-anonymity (issue 24) through Citus: classes counted as the view is read
qi=$(on "$coord" -c "SELECT array_to_string(quasi_identifiers, ', ') FROM caredata.publication_disclosure WHERE name = 'citus_pub_dist'")
kmin=$(on "$coord" -c "SET ROLE citus_recipient" -c "SELECT coalesce(min(n), 0) FROM (SELECT count(DISTINCT person) AS n FROM published.citus_pub_dist GROUP BY $qi) c")
[ "$kmin" -ge 5 ] 2>/dev/null; ok $? "k-anonymity holds over the distributed table: every class of ($qi) holds at least 5 persons (smallest $kmin)"
rep=$(on "$coord" -c "SELECT count(DISTINCT (k, quasi_identifiers, level, steps::text, rows_published, rows_suppressed, smallest_class, persons, linkable_share))
                      FROM caredata.publication_disclosure WHERE name IN ('citus_pub_dist', 'citus_pub_local')")
[ "$rep" = 1 ]; ok $? "publish() measured the distributed and the ordinary table alike (level, suppressed rows, smallest class, linkable share)"

on "$coord" -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<'SQL'
SET client_min_messages = warning;
SELECT caredata.unpublish('citus_pub_dist');
SELECT caredata.unpublish('citus_pub_local');
DROP TABLE citus_gp, citus_hes, citus_pub, citus_pub_local;
DROP SCHEMA synth, synth_truth CASCADE;
DROP OWNED BY citus_recipient;
DROP ROLE citus_recipient;
SQL
citus_done
