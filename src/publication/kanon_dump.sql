-- src/publication/kanon_dump.sql
-- Limits an owner changed survive pg_dump (src/publication/kanon.sql): the
-- one row is dumped only when it differs from the defaults, and restoring
-- it over the row CREATE EXTENSION made sets that row (the table's INSERT
-- trigger), audited.  Registered last, as the update registers it.
SELECT pg_catalog.pg_extension_config_dump('caredata.publication_limits',
  'WHERE (k, max_linkable_share, max_suppressed_share) IS DISTINCT FROM (5, 0.05, 0.05)');
