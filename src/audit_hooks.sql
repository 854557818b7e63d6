-- src/audit_hooks.sql
-- The steps already built write to the audit log (src/audit.sql) through
-- triggers on the catalogs they change, in the same transaction (a step
-- that fails leaves no entry): domains and key versions, feed loads,
-- exemptions, protected tables, linkage runs.  Details are catalog
-- columns: never an NHS number, never key material.
CREATE FUNCTION caredata._audit_hook() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r jsonb := CASE WHEN TG_OP = 'DELETE' THEN to_jsonb(OLD) ELSE to_jsonb(NEW) END;
BEGIN
  PERFORM caredata.audit_append(TG_ARGV[0] || '.' || lower(TG_OP), TG_ARGV[1] || ' ' || coalesce(r->>TG_ARGV[2], ''), r, NULL);
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION caredata._audit_hook() IS
  'internal: writes an audit entry for a change to a caredata catalog (action, object and the row as detail)';

CREATE TRIGGER audit_domain AFTER INSERT OR UPDATE ON caredata.domain
  FOR EACH ROW EXECUTE FUNCTION caredata._audit_hook('domain', 'domain', 'name');
CREATE TRIGGER audit_domain_key AFTER INSERT OR UPDATE ON caredata.domain_key
  FOR EACH ROW EXECUTE FUNCTION caredata._audit_hook('domain_key', 'domain id', 'domain_id');
CREATE TRIGGER audit_feed_load AFTER INSERT ON caredata.feed_load
  FOR EACH ROW EXECUTE FUNCTION caredata._audit_hook('feed', 'feed', 'feed');
CREATE TRIGGER audit_exemption AFTER INSERT OR UPDATE ON caredata.exemption
  FOR EACH ROW EXECUTE FUNCTION caredata._audit_hook('exemption', 'exemption', 'id');
CREATE TRIGGER audit_protected_table AFTER INSERT OR DELETE ON caredata.protected_table
  FOR EACH ROW EXECUTE FUNCTION caredata._audit_hook('protection', 'table', 'relid');
CREATE TRIGGER audit_link_run AFTER INSERT OR UPDATE OF finished_at ON caredata.link_run
  FOR EACH ROW EXECUTE FUNCTION caredata._audit_hook('linkage_run', 'run', 'run_id');
REVOKE ALL ON FUNCTION caredata._audit_hook() FROM PUBLIC;
