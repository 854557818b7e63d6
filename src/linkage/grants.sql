-- src/linkage/grants.sql
-- Who may run linkage (docs/sql-reference.md "Roles"): caredata_linker and
-- caredata_admin.  The driver functions read sources and write the person
-- index with the caller's rights; revoking EXECUTE from PUBLIC keeps
-- analysts, recipients and patients away from them as well as from the
-- tables (src/linkage/tables.sql).  The comparators hold no secret and stay
-- callable by everyone.
DO $grants$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = 'caredata'::regnamespace
       AND (p.proname LIKE 'link\_%' OR p.proname LIKE '\_link\_%')
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO caredata_linker, caredata_admin', f);
  END LOOP;
END
$grants$;
