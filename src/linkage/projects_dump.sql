-- src/linkage/projects_dump.sql
-- The linkage project tables (src/linkage/tables.sql) survive pg_dump: the
-- catalog of projects but the 'default' row, which comes with the
-- extension, and the 'default' project's partitions.  Other projects'
-- partitions are not members of the extension: pg_dump keeps them whole.
-- Last in SQL_SRC on purpose (as src/sdc/cell_key_dump.sql): the update from
-- 0.1.0 re-makes link_record and person_index and registers these after all
-- the others, so a fresh install must too (test/release/upgrade.sh).
SELECT pg_catalog.pg_extension_config_dump('caredata.link_record', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.person_index', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.link_project', 'WHERE project <> ''default''');
SELECT pg_catalog.pg_extension_config_dump('caredata.link_record_p_default', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.person_index_p_default', '');
