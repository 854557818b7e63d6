-- sql/objection_filter.sql: protect() row filters hold on every access path,
-- tried as roles without the right to see objectors' rows.
CREATE EXTENSION caredata;
SET search_path = public, caredata;
\i sql/include/refusal.psql

CREATE ROLE regress_owner NOLOGIN IN ROLE caredata_admin;
CREATE ROLE regress_other_owner NOLOGIN;
GRANT CREATE ON SCHEMA public TO regress_owner;
CREATE ROLE regress_analyst NOLOGIN IN ROLE caredata_analyst;
CREATE ROLE regress_patient NOLOGIN IN ROLE caredata_patient;
CREATE ROLE regress_nobody NOLOGIN;

-- four patients with two episodes each; two of them have opted out
CREATE TABLE episode (id int, nhs_number nhs_number, specialty text);
INSERT INTO episode
SELECT row_number() OVER (), n::nhs_number, s
FROM unnest(ARRAY['999 000 0018', '999 000 0026', '999 000 0034', '999 000 0042']) n,
     unnest(ARRAY['100', '300']) s;
ALTER TABLE episode OWNER TO regress_owner;
GRANT SELECT ON episode TO regress_analyst, regress_patient, regress_nobody;
SELECT record_objection('999 000 0026', 'national_data_opt_out', 'test', now() - interval '1 day') IS NOT NULL,
       record_objection('999 000 0034', 'type1', 'test', now() - interval '1 day') IS NOT NULL;
INSERT INTO subject_access (role, nhs_number) VALUES ('regress_patient', '999 000 0034');

-- protect() checks what it is given
SELECT state, message, hint FROM pg_temp.refusal($$caredata.protect('episode', 'specialty', 'research')$$);
SELECT state, message FROM pg_temp.refusal($$caredata.protect('episode', 'no_such_column', 'research')$$);
SELECT state, message FROM pg_temp.refusal($$caredata.protect('episode', 'nhs_number', 'marketing')$$);
-- only caredata_admin may attach a filter, and only as the table's owner
SET ROLE regress_other_owner;
SELECT state, message FROM pg_temp.refusal($$caredata.protect('episode', 'nhs_number', 'research')$$);
RESET ROLE;
SET ROLE regress_owner;
SELECT protect('episode', 'nhs_number', 'research');
RESET ROLE;
SELECT state, message FROM pg_temp.refusal($$caredata.protect('episode', 'nhs_number', 'planning')$$);
SELECT polname, polpermissive, polroles::regrole[], pg_get_expr(polqual, polrelid) AS qual
FROM pg_policy WHERE polrelid = 'episode'::regclass ORDER BY polname;

-- an analyst sees 4 of 8 rows on every path
SET ROLE regress_analyst;
SELECT count(*) AS select_rows, string_agg(DISTINCT nhs_number::text, ', ') AS patients FROM episode;
BEGIN;
DECLARE c CURSOR FOR SELECT nhs_number FROM episode ORDER BY id;
FETCH ALL FROM c;
CLOSE c;
COMMIT;
COPY episode TO STDOUT;
COPY (SELECT * FROM episode) TO STDOUT;
-- a leaky function in WHERE never sees the hidden rows
CREATE FUNCTION pg_temp.leak(n nhs_number) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS $$
BEGIN RAISE NOTICE 'saw %', n; RETURN true; END $$;
SELECT count(*) FROM episode WHERE pg_temp.leak(nhs_number);
DROP FUNCTION pg_temp.leak(nhs_number);
-- asking for a hidden patient returns nothing, whatever the plan
SELECT count(*) AS hidden FROM episode WHERE nhs_number = '999 000 0026';
-- EXPLAIN ANALYZE does not count the rows the filter hid, even for one patient
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM episode;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM episode WHERE nhs_number = '999 000 0026';
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT JSON) SELECT * FROM episode WHERE nhs_number = '999 000 0026';
-- the analyst's own filter still shows what it removed where no objection filter sits
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM (VALUES (1), (2)) v(x) WHERE x > 1;
RESET ROLE;

-- the owner is filtered too (FORCE ROW LEVEL SECURITY)
SET ROLE regress_owner;
SELECT count(*) AS owner_rows FROM episode;
-- a view over the table, owned by the owner, is filtered for its readers
CREATE VIEW episode_view AS SELECT * FROM episode;
GRANT SELECT ON episode_view TO regress_analyst, regress_patient;
RESET ROLE;
SET ROLE regress_analyst;
SELECT count(*) AS view_rows FROM episode_view;
-- the register itself is out of reach
SELECT state FROM pg_temp.refusal('count(*) FROM caredata.objection');
SELECT state FROM pg_temp.refusal($$caredata.blocked_nhs_numbers('research', NULL, now())$$);
SELECT state FROM pg_temp.refusal('count(*) FROM caredata.subject_access');
RESET ROLE;

-- a role that may not run permitted() gets an error, not the rows
SET ROLE regress_nobody;
SELECT state, message FROM pg_temp.refusal('count(*) FROM episode');
RESET ROLE;

-- subject access: a patient sees their own rows, objection or not, and no others
SET ROLE regress_patient;
SELECT id, nhs_number, specialty FROM episode ORDER BY id;
SELECT my_nhs_number();
-- ... also through a view whose owner is not a patient (its policies are
-- the owner's, but row_permitted() knows who is asking)
SELECT count(*) AS patient_view_rows, string_agg(DISTINCT nhs_number::text, ', ') AS patients FROM episode_view;
-- ... and cannot ask about anyone's objections: no permitted(), and
-- row_permitted() answers only inside the filter, for the table's rows
SELECT state FROM pg_temp.refusal($$caredata.permitted('999 000 0026', 'research')$$);
SELECT state FROM pg_temp.refusal($$caredata.row_permitted('999 000 0026', 'research')$$);
SELECT state FROM pg_temp.refusal($$caredata.row_permitted('999 000 0034', 'research')$$);
RESET ROLE;

-- EXPLAIN ANALYZE through an index on the NHS number: the index scan
-- below the filter, the heap pages a bitmap scan visited and the buffers
-- read would each say whether a hidden patient has rows; none is shown
CREATE INDEX episode_nhs ON episode (nhs_number);
ANALYZE episode;
-- the plan with buffers, without the planner's own (catalog) reads
CREATE FUNCTION pg_temp.explain_buffers(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
    EXIT WHEN line = 'Planning:';
    RETURN NEXT line;
  END LOOP;
END $$;
SET ROLE regress_analyst;
SET enable_seqscan = off;
SET enable_indexscan = off;
SELECT pg_temp.explain_buffers($$SELECT * FROM episode WHERE nhs_number = '999 000 0026'$$);
SELECT pg_temp.explain_buffers($$SELECT * FROM episode WHERE nhs_number = '999 000 0018'$$);
RESET enable_indexscan;
SET enable_bitmapscan = off;
SELECT pg_temp.explain_buffers($$SELECT * FROM episode WHERE nhs_number = '999 000 0026'$$);
RESET enable_seqscan;
RESET enable_bitmapscan;
RESET ROLE;
DROP INDEX episode_nhs;


-- unprotect() removes what protect() added, and only that
SET ROLE regress_owner;
SELECT unprotect('episode');
SELECT count(*) AS unprotected_rows FROM episode;
RESET ROLE;
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'episode'::regclass;
SELECT count(*) AS policies_left FROM pg_policy WHERE polrelid = 'episode'::regclass;

-- a filter for a named dataset: exemptions and consent for that dataset apply
CREATE TABLE study_extract AS SELECT * FROM episode;
ALTER TABLE study_extract OWNER TO regress_owner;
GRANT SELECT ON study_extract TO regress_analyst;
SET ROLE regress_owner;
SELECT protect('study_extract', 'nhs_number', 'research', dataset => 'study_x');
RESET ROLE;
SELECT pg_get_expr(polqual, polrelid) AS dataset_filter FROM pg_policy
WHERE polrelid = 'study_extract'::regclass AND polname = 'caredata_objection';
SET ROLE regress_analyst;
SELECT count(*) AS before_exemption FROM study_extract;
RESET ROLE;
SELECT grant_exemption('study_x', 'research', 'type1', 'cag_section_251', 'CAG 26/CAG/0003') IS NOT NULL AS granted;
SET ROLE regress_analyst;
-- the Type 1 objector's rows (0034) come back; the opt-out's (0026) do not
SELECT count(*) AS with_type1_exemption, string_agg(DISTINCT nhs_number::text, ', ') AS patients FROM study_extract;
RESET ROLE;
SET ROLE regress_owner;
SELECT unprotect('study_extract');
RESET ROLE;
DROP TABLE study_extract;

DROP VIEW episode_view;
DROP TABLE episode;
REVOKE CREATE ON SCHEMA public FROM regress_owner;
DROP ROLE regress_owner, regress_other_owner, regress_analyst, regress_patient, regress_nobody;
DROP EXTENSION caredata;
