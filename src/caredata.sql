-- src/caredata.sql
-- The schema comment; every concern's objects follow in their own files.
-- CREATE EXTENSION creates the schema named in caredata.control when it does
-- not exist; PostgreSQL does not make it a member of the extension, so an
-- empty schema caredata remains after DROP EXTENSION (docs/install.md).

COMMENT ON SCHEMA caredata IS
  'caredata: health-data linkage and de-identification (identifiers, pseudonyms, objections, disclosure control)';

-- Every role may use the schema: its types (nhs_number, later pseudonym) appear
-- in published views, and the identifier standardisers hold no secret.
-- Keyed and privileged functions revoke EXECUTE from PUBLIC one by one
-- (see DESIGN.md "Roles").
GRANT USAGE ON SCHEMA caredata TO PUBLIC;
