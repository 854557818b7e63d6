-- src/objection/patient_dump.sql
-- The patients' grants and comparisons (src/objection/patient_share.sql,
-- src/variation/patient_comparison.sql) are dumped with the database.
-- Registered last, so that a fresh install lists the extension's
-- configuration tables in the order an update from 0.1.0 leaves them.
SELECT pg_catalog.pg_extension_config_dump('caredata.patient_share', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.patient_share_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.patient_share_use', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.patient_comparison', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.patient_comparison_row', '');
