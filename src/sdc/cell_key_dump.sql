-- src/sdc/cell_key_dump.sql
-- Admins' own p-tables (src/sdc/cell_key.sql) survive pg_dump; the built-in
-- one comes with the extension.  Last in SQL_SRC on purpose: the extension's
-- list of dumped catalogs keeps the order of these calls, and the update from
-- 0.1.0 adds this one after all the others, so a fresh install must too
-- (test/release/upgrade.sh compares them).
SELECT pg_catalog.pg_extension_config_dump('caredata.sdc_ptable', 'WHERE NOT builtin');
