-- test/release/fingerprint.sql: what a database using caredata holds and
-- answers, as lines of text to compare before and after an update, or a dump
-- and restore (test/release/upgrade.sh).  Read-only: running it twice gives
-- the same lines.  Runs in a database the demo pipeline (scripts/demo.sql)
-- has filled, plus test/release/populate.sql.
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only on
SET search_path = "$user", public, caredata;

-- every catalog, row by row (count and a digest of the sorted rows), but
-- what CREATE EXTENSION writes afresh: the register's version counter (a
-- cache key, bumped by every load, restores included) and when the built-in
-- disclosure policies were installed; and what 0.1.0 did not have (the
-- domains' key fingerprints, recorded from 0.2.0 on; the Citus catalog
-- distributed_filter, empty off Citus; sdc_policy_role, the approval
-- register and the cell key method's p-tables, new in 0.2.0; the built-in
-- policies' later versions and the cell_key policy, and the magnitude and
-- cell key columns, which 0.2.0 adds; a publication's disclosure report
-- and the publication limits, from 0.2.0 on; the linkage tables' project
-- column where it is 'default', what 0.1.0's rows became: a partitioned
-- table is read whole, not partition by partition; a linkage source's
-- fields and a record's id as text, from 0.2.0 on; the patients' grants and
-- comparisons, new in 0.2.0 (issue 29)); a key version's scheme is read as
-- hmac-sha256 where the catalog has none (0.1.0: every version is), so an
-- update that changed a version's scheme shows
SELECT format('SELECT %L || '': '' || count(*) || '' rows, '' || md5(coalesce(string_agg(%s, E''\n'' ORDER BY %s), '''')) FROM caredata.%I t %s',
              c.relname, r.expr, r.expr, c.relname,
              CASE c.relname WHEN 'sdc_policy' THEN 'WHERE NOT (t.builtin AND (t.version > 1 OR t.policy = ''cell_key''))' ELSE '' END)
  FROM pg_class c,
       LATERAL (SELECT CASE c.relname
                  WHEN 'register_version' THEN $e$''$e$
                  WHEN 'domain' THEN $e$(to_jsonb(t) - 'key_fingerprint')::text$e$
                  WHEN 'domain_key' THEN $e$(to_jsonb(t) || jsonb_build_object('scheme', coalesce(to_jsonb(t)->>'scheme', 'hmac-sha256')))::text$e$
                  WHEN 'publication' THEN $e$(to_jsonb(t) - 'disclosure')::text$e$
                  WHEN 'sdc_policy' THEN $e$(to_jsonb(t) - 'magnitude_digits' - 'cell_key_ptable' - CASE WHEN t.builtin THEN ARRAY['created_at', 'created_by'] ELSE '{}' END)::text$e$
                  ELSE CASE WHEN c.relname IN ('link_source', 'link_record_key', 'link_record', 'link_model', 'link_model_level', 'link_run', 'person_index')
                            THEN $e$(to_jsonb(t) - 'fields' - 'record_key' - CASE WHEN to_jsonb(t)->>'project' = 'default' THEN 'project' ELSE '' END)::text$e$
                            ELSE 't::text' END END AS expr) r
 WHERE c.relnamespace = 'caredata'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND c.relname NOT IN ('distributed_filter', 'sdc_policy_role', 'approval', 'sdc_ptable', 'publication_limits', 'link_project', 'code_label',
                         'patient_share', 'patient_share_use', 'patient_comparison', 'patient_comparison_row')
 ORDER BY c.relname \gexec
-- linkage projects (from 0.2.0 on) but the default one, which 0.1.0's rows became
SELECT 'SELECT ''link_project: '' || count(*) || '' rows, '' || md5(string_agg((to_jsonb(t) - ''created_at'')::text, E''\n'' ORDER BY t.project))
          FROM caredata.link_project t WHERE t.project <> ''default'' HAVING count(*) > 0'
 WHERE to_regclass('caredata.link_project') IS NOT NULL \gexec

-- protected tables and their policies, by name
SELECT 'policy ' || schemaname || '.' || tablename || ' ' || policyname || ' ' || permissive || ' ' || cmd || ' ' ||
       coalesce(qual, '') || ' ' || coalesce(with_check, '')
  FROM pg_policies ORDER BY schemaname, tablename, policyname;

-- pseudonyms: ten patients in every domain with a usable key
SELECT 'pseudonyms ' || d.name || ': ' ||
       md5(string_agg(caredata.pseudonymise(h.nhs_number, d.name)::text, ',' ORDER BY h.record_id))
  FROM caredata.domain d, (SELECT record_id, nhs_number FROM public.hes_clean ORDER BY record_id LIMIT 10) h
 WHERE d.retired_at IS NULL
 GROUP BY d.name ORDER BY d.name;

-- the objection filter, as the analyst
SET ROLE demo_analyst;
SELECT 'analyst sees ' || count(*) || ' episodes, ' || md5(string_agg(record_id::text, ',' ORDER BY record_id))
  FROM public.hes_clean;
RESET ROLE;

-- the published view and a suppressed count, as the recipient
SET ROLE demo_study;
SELECT 'recipient sees ' || count(*) || ' rows, ' || md5(string_agg(t::text, E'\n' ORDER BY t::text))
  FROM published.hes_demo_study t;
-- (the policy applied to counts given: 0.2.0's keyed version 3 of nhs_hes
-- changes what safe_count shows, by design, not what a count given shows)
SELECT 'safe counts ' || md5(string_agg(provider_code || '=' || n, ',' ORDER BY provider_code))
  FROM (SELECT provider_code, caredata.sdc_display(count(DISTINCT person::caredata.pseudonym)) AS n
          FROM published.hes_demo_study GROUP BY provider_code) s;
RESET ROLE;

-- the audit chain
SELECT 'audit chain intact: ' || caredata.audit_verify();
