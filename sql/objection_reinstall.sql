-- Issue 22, section 7: every cache of blocked NHS numbers answers for one
-- installation of the extension.  The register's version restarts at 1
-- when the extension is dropped and created again, so a backend connected
-- across a re-install must not take a set of the old register for the new
-- one: not its own sets, not the shared registry's (preloaded), not the
-- sets a parallel leader hands its workers.  Nor its cached domain keys,
-- by name and key version (flushed when the key catalog goes).  All in
-- one session.
CREATE EXTENSION caredata;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regress_reinstall_reader') THEN
    CREATE ROLE regress_reinstall_reader NOLOGIN IN ROLE caredata_analyst;
  END IF;
END $$;
CREATE TABLE episode (id int, nhs_number caredata.nhs_number);
INSERT INTO episode VALUES (1, '999 000 0018'), (2, '999 000 0026'), (3, '999 000 0034');
GRANT SELECT ON episode TO regress_reinstall_reader;
SELECT caredata.protect('episode', 'nhs_number', 'research');
-- the first installation: 999 000 0018 (row 1) has opted out
SELECT caredata.record_objection('999 000 0018', 'national_data_opt_out', 'test', '2025-01-01') IS NOT NULL AS recorded;
SELECT version AS first_version FROM caredata.register_version \gset
SET ROLE regress_reinstall_reader;
SELECT id FROM episode ORDER BY id;
RESET ROLE;
SELECT array_agg(id ORDER BY id) AS permitted FROM episode WHERE caredata.permitted(nhs_number, 'research');
-- the set this backend built is in the shared registry too (preloaded)
SELECT register_version = :first_version AS shared_version, purpose, numbers FROM caredata.blocked_sets();

-- drop and create the extension again; now 999 000 0026 (row 2) has opted out
DROP TABLE episode;
DROP EXTENSION caredata;
CREATE EXTENSION caredata;
CREATE TABLE episode (id int, nhs_number caredata.nhs_number);
INSERT INTO episode VALUES (1, '999 000 0018'), (2, '999 000 0026'), (3, '999 000 0034');
GRANT SELECT ON episode TO regress_reinstall_reader;
SELECT caredata.protect('episode', 'nhs_number', 'research');
SELECT caredata.record_objection('999 000 0026', 'national_data_opt_out', 'test', '2025-01-01') IS NOT NULL AS recorded;
-- the same version number as the first installation's set
SELECT version = :first_version AS same_version FROM caredata.register_version;
-- the new register's answer: rows 1 and 3, not the old set's 2 and 3
SET ROLE regress_reinstall_reader;
SELECT id FROM episode ORDER BY id;
RESET ROLE;
SELECT array_agg(id ORDER BY id) AS permitted FROM episode WHERE caredata.permitted(nhs_number, 'research');
-- the shared registry lists the new installation's set only
SELECT register_version = :first_version AS shared_version, purpose, numbers FROM caredata.blocked_sets();

-- parallel workers, within one transaction across a re-install (the
-- transaction has written, so the workers build their own sets)
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT id FROM episode WHERE caredata.permitted(nhs_number, 'research');
BEGIN;
SELECT array_agg(id ORDER BY id) AS permitted_parallel FROM episode WHERE caredata.permitted(nhs_number, 'research');
DROP TABLE episode;
DROP EXTENSION caredata;
CREATE EXTENSION caredata;
CREATE TABLE episode (id int, nhs_number caredata.nhs_number);
INSERT INTO episode VALUES (1, '999 000 0018'), (2, '999 000 0026'), (3, '999 000 0034');
SELECT caredata.protect('episode', 'nhs_number', 'research');
-- now 999 000 0034 (row 3) has opted out, at the same version again
SELECT caredata.record_objection('999 000 0034', 'national_data_opt_out', 'test', '2025-01-01') IS NOT NULL AS recorded;
SELECT version = :first_version AS same_version FROM caredata.register_version;
SELECT array_agg(id ORDER BY id) AS permitted_parallel FROM episode WHERE caredata.permitted(nhs_number, 'research');
COMMIT;
RESET parallel_leader_participation;

DROP TABLE episode;
DROP EXTENSION caredata;

-- the keyed contexts a backend caches, by domain name and key version:
-- after a re-install the domain's version 1 is the current one again
CREATE EXTENSION caredata;
SELECT caredata.create_domain('regress_reinstall', 'research') IS NOT NULL AS created;
SELECT caredata.pseudonymise('943 476 5919'::caredata.nhs_number, 'regress_reinstall')::text AS first_key \gset
SELECT caredata.rotate_domain('regress_reinstall') IS NOT NULL AS rotated;
SELECT caredata.pseudonymise('943 476 5919'::caredata.nhs_number, 'regress_reinstall')::text <> :'first_key' AS rotated_key_differs;
DROP EXTENSION caredata;
CREATE EXTENSION caredata;
SELECT caredata.create_domain('regress_reinstall', 'research') IS NOT NULL AS created;
SELECT caredata.pseudonymise('943 476 5919'::caredata.nhs_number, 'regress_reinstall')::text = :'first_key' AS first_key_again;
DROP EXTENSION caredata;
DROP ROLE regress_reinstall_reader;
