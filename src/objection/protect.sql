-- src/objection/protect.sql
-- Row filters: protect() and unprotect(), partitions and inheritance
-- (event trigger), no planner statistics on protected columns, and views
-- that would read a protected table past its filter.

-- Row filters.
CREATE TABLE caredata.protected_table (
  relid regclass PRIMARY KEY,
  nhs_column name NOT NULL,
  purpose text NOT NULL REFERENCES caredata.purpose (name),
  dataset text,
  added_base_policy boolean NOT NULL,
  enabled_rls boolean NOT NULL,
  protected_at timestamptz NOT NULL DEFAULT now(),
  protected_by name NOT NULL DEFAULT current_user,
  root regclass NOT NULL
);
COMMENT ON TABLE caredata.protected_table IS
  'tables with an objection row filter: the NHS number column, purpose and dataset, what protect() changed, and the table protect() was called on (root: a partitioned or inheritance parent protects its whole hierarchy)';
SELECT pg_catalog.pg_extension_config_dump('caredata.protected_table', '');

-- the policies on one table of a hierarchy (or a lone table)
CREATE FUNCTION caredata._protect_one(tab regclass, nhs_column name, purpose text, dataset text, root regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp   -- caredata off the path: the policy is deparsed (Citus copies it to shards) with caredata. qualified
AS $$
DECLARE
  has_permissive boolean;
  had_rls boolean;
BEGIN
  -- done already (the event trigger below runs inside protect()'s own DDL)
  IF EXISTS (SELECT 1 FROM caredata.protected_table t WHERE t.relid = tab) THEN
    RETURN;
  END IF;
  SELECT c.relrowsecurity INTO had_rls FROM pg_class c WHERE c.oid = tab;
  SELECT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = tab AND p.polpermissive)
  INTO has_permissive;
  -- recorded first: the DDL below fires the event trigger, which then
  -- finds this table done
  INSERT INTO caredata.protected_table (relid, nhs_column, purpose, dataset, added_base_policy, enabled_rls, root)
  VALUES (tab, nhs_column, purpose, dataset, NOT has_permissive, NOT had_rls, root);
  -- row security needs a permissive policy; never widen one the owner wrote
  IF NOT has_permissive THEN
    EXECUTE format('CREATE POLICY caredata_base ON %s AS PERMISSIVE FOR ALL USING (true) WITH CHECK (true)', tab);
    EXECUTE format('COMMENT ON POLICY caredata_base ON %s IS %L', tab,
                   'caredata: the permissive policy row security needs, added by caredata.protect because the table had none');
  END IF;
  -- FOR ALL: rows the filter hides can be neither read nor updated nor
  -- deleted; WITH CHECK (true): loading new rows is not filtered
  EXECUTE format('CREATE POLICY caredata_objection ON %s AS RESTRICTIVE FOR ALL USING '
                 '(caredata.row_permitted(%I, %L%s)) WITH CHECK (true)',
                 tab, nhs_column, purpose,
                 CASE WHEN dataset IS NULL THEN '' ELSE format(', now(), %L', dataset) END);
  EXECUTE format('CREATE POLICY caredata_subject ON %s AS RESTRICTIVE FOR ALL TO caredata_patient USING '
                 '(%I OPERATOR(caredata.=) caredata.my_nhs_number()) WITH CHECK (true)', tab, nhs_column);
  EXECUTE format('COMMENT ON POLICY caredata_objection ON %s IS %L', tab,
                 format('caredata objection filter: rows permitted for %s%s (caredata.protect)', purpose,
                        CASE WHEN dataset IS NULL THEN '' ELSE ', dataset ' || dataset END));
  EXECUTE format('COMMENT ON POLICY caredata_subject ON %s IS %L', tab,
                 'caredata subject access: a patient sees only their own rows (caredata.protect)');
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', tab);
  -- no statistics on the protected column (see _forget_statistics)
  IF EXISTS (SELECT 1 FROM pg_statistic_ext e JOIN pg_attribute a ON a.attrelid = e.stxrelid AND a.attname = nhs_column
              WHERE e.stxrelid = tab AND a.attnum = ANY (e.stxkeys)) THEN
    RAISE EXCEPTION 'extended statistics on %.% would give its values to the planner', tab, nhs_column
      USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'DROP STATISTICS on that column first.';
  END IF;
  EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS 0', tab, nhs_column);
  PERFORM caredata._forget_statistics(tab);
END
$$;
COMMENT ON FUNCTION caredata._protect_one(regclass, name, text, text, regclass) IS
  'internal: attach the objection and subject-access policies to one table of a protected hierarchy';

-- a table and every partition or inheritance child below it, the table first
CREATE FUNCTION caredata._hierarchy(tab regclass) RETURNS SETOF regclass
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  WITH RECURSIVE h(rel, depth) AS (
    SELECT tab::oid, 0
    UNION ALL
    SELECT i.inhrelid, h.depth + 1 FROM pg_inherits i JOIN h ON i.inhparent = h.rel
  )
  SELECT rel::regclass FROM h GROUP BY rel ORDER BY min(depth), rel
$$;
COMMENT ON FUNCTION caredata._hierarchy(regclass) IS
  'internal: a table and all its partitions and inheritance children, the table first';

-- The planner reads a column's statistics (most common values, histogram)
-- for everyone, filtered or not, and EXPLAIN prints its estimates: a
-- bisection over nhs_number::bigint < X would recover the stored values,
-- hidden objectors' among them.  So a protected column keeps none: its
-- statistics target is 0 (ANALYZE skips it), and what ANALYZE stored before
-- is removed, for the column and for expression indexes on the table.
-- Estimates fall back to PostgreSQL's defaults (or 1 row per value under a
-- unique index).  Removing pg_statistic rows needs the superuser, hence
-- SECURITY DEFINER; it touches only tables that are protected.
CREATE FUNCTION caredata._forget_statistics(tab regclass) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  x record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM caredata.protected_table t WHERE t.relid = tab) THEN
    RETURN;
  END IF;
  -- expression indexes keep statistics of their own: none either
  FOR x IN SELECT i.indexrelid::regclass AS idx, k.n
             FROM pg_catalog.pg_index i, LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n)
            WHERE i.indrelid = tab AND k.attnum = 0 LOOP
    EXECUTE format('ALTER INDEX %s ALTER COLUMN %s SET STATISTICS 0', x.idx, x.n);
  END LOOP;
  DELETE FROM pg_catalog.pg_statistic s
   USING caredata.protected_table t, pg_catalog.pg_attribute a
   WHERE t.relid = tab AND s.starelid = t.relid AND a.attrelid = t.relid AND a.attname = t.nhs_column
     AND s.staattnum = a.attnum;
  DELETE FROM pg_catalog.pg_statistic s
   USING pg_catalog.pg_index i
   WHERE i.indrelid = tab AND i.indexprs IS NOT NULL AND s.starelid = i.indexrelid
     AND EXISTS (SELECT 1 FROM caredata.protected_table t WHERE t.relid = tab);
END
$$;
COMMENT ON FUNCTION caredata._forget_statistics(regclass) IS
  'internal: remove the stored planner statistics of a protected table''s NHS number column and of its expression indexes';

CREATE FUNCTION caredata.protect(tab regclass, nhs_column name, purpose text, dataset text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
DECLARE
  coltype regtype;
  parent regclass;
  r regclass;
BEGIN
  PERFORM caredata._catalog_write('caredata.protect()');
  SELECT a.atttypid::regtype INTO coltype FROM pg_attribute a
  WHERE a.attrelid = tab AND a.attname = nhs_column AND a.attnum > 0 AND NOT a.attisdropped;
  IF coltype IS NULL THEN
    RAISE EXCEPTION 'column "%" of % does not exist', nhs_column, tab USING ERRCODE = 'undefined_column';
  END IF;
  IF coltype <> 'caredata.nhs_number'::regtype THEN
    RAISE EXCEPTION 'column "%" of % is %, not caredata.nhs_number', nhs_column, tab, coltype
      USING ERRCODE = 'datatype_mismatch',
            HINT = 'Standardise it first: caredata.try_nhs_number(column).';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM caredata.purpose p WHERE p.name = protect.purpose) THEN
    RAISE EXCEPTION 'unknown purpose "%"', purpose
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Purposes are listed in caredata.purpose.';
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.protected_table t WHERE t.relid = tab) THEN
    RAISE EXCEPTION '% is already protected', tab
      USING ERRCODE = 'duplicate_object', HINT = 'Run caredata.unprotect() first to change its purpose.';
  END IF;
  -- a partition or child alone would leave its parent's path open
  SELECT i.inhparent::regclass INTO parent FROM pg_inherits i WHERE i.inhrelid = tab LIMIT 1;
  IF parent IS NOT NULL THEN
    RAISE EXCEPTION '% is a partition or inheritance child of %', tab, parent
      USING ERRCODE = 'wrong_object_type',
            HINT = format('Protect %s instead: protecting a table protects all its partitions and children.', parent);
  END IF;
  -- a Citus table: its filter is one permissive policy, on every shard
  -- (src/citus/citus.sql; Citus re-creates restrictive policies as permissive)
  IF caredata._citus_table(tab) THEN
    PERFORM caredata._protect_citus(tab, nhs_column, purpose, dataset);
    PERFORM caredata._refuse_unfiltered_views();
    PERFORM caredata.audit_append('table.protect', tab::text, jsonb_build_object('nhs_column', nhs_column, 'purpose', purpose,
      'dataset', dataset, 'citus', true));
    RETURN;
  END IF;
  -- the whole hierarchy below it, now and (by the event trigger
  -- caredata_protect_hierarchy) whatever is attached later
  FOR r IN SELECT h FROM caredata._hierarchy(tab) h LOOP
    PERFORM caredata._protect_one(r, nhs_column, purpose, dataset, tab);
  END LOOP;
  -- views already reading it past the filter are refused too
  PERFORM caredata._refuse_unfiltered_views();
  PERFORM caredata.audit_append('table.protect', tab::text, jsonb_build_object('nhs_column', nhs_column, 'purpose', purpose, 'dataset', dataset,
    'hierarchy', (SELECT count(*) FROM caredata._hierarchy(tab))));
END
$$;
COMMENT ON FUNCTION caredata.protect(regclass, name, text, text) IS
  'attach an objection row filter for a purpose (and dataset) to a table and all its partitions and inheritance children (those attached later too): forced row-level security that every role but superusers and BYPASSRLS roles obeys; run as the table owner';

CREATE FUNCTION caredata.unprotect(tab regclass) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
DECLARE
  t caredata.protected_table;
  hierarchy caredata.protected_table[];
  citus boolean;
BEGIN
  PERFORM caredata._catalog_write('caredata.unprotect()');
  SELECT * INTO t FROM caredata.protected_table p WHERE p.relid = tab;
  IF NOT FOUND THEN
    RAISE EXCEPTION '% is not protected', tab USING ERRCODE = 'undefined_object';
  END IF;
  IF t.root <> tab THEN
    RAISE EXCEPTION '% is protected as part of %', tab, t.root
      USING ERRCODE = 'wrong_object_type', HINT = format('Unprotect %s, which unprotects its whole hierarchy.', t.root);
  END IF;
  -- off the list first: the DDL guard (caredata_protection_guard) refuses
  -- the DDL below on a table it lists
  hierarchy := ARRAY(SELECT p FROM caredata.protected_table p WHERE p.root = tab ORDER BY p.relid = tab DESC);
  DELETE FROM caredata.protected_table p WHERE p.root = tab;
  FOREACH t IN ARRAY hierarchy LOOP
    CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.relid);
    citus := EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = t.relid AND p.polname = 'caredata_filter');
    IF citus THEN
      -- a Citus table (src/citus/citus.sql): the shards' statistics target first,
      -- each in its own transaction, before this one locks them
      IF EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attname = t.nhs_column AND NOT a.attisdropped) THEN
        PERFORM caredata._citus_statistics_target(t.relid, t.nhs_column, -1);
      END IF;
      EXECUTE format('DROP POLICY IF EXISTS caredata_filter ON %s', t.relid);
      DELETE FROM caredata.distributed_filter f WHERE f.relation = caredata._logical_relation(t.relid);
    ELSE
      -- IF EXISTS: a table found weakened is unprotected to be repaired
      EXECUTE format('DROP POLICY IF EXISTS caredata_objection ON %s', t.relid);
      EXECUTE format('DROP POLICY IF EXISTS caredata_subject ON %s', t.relid);
    END IF;
    IF t.added_base_policy THEN
      EXECUTE format('DROP POLICY IF EXISTS caredata_base ON %s', t.relid);
    END IF;
    IF t.enabled_rls THEN
      EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY', t.relid);
    END IF;
    -- statistics again at the default target, from the next ANALYZE
    IF NOT citus AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attname = t.nhs_column AND NOT a.attisdropped) THEN
      EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS -1', t.relid, t.nhs_column);
    END IF;
  END LOOP;
  PERFORM caredata.audit_append('table.unprotect', tab::text);
END
$$;
COMMENT ON FUNCTION caredata.unprotect(regclass) IS
  'remove the objection row filter protect() attached to a table and its hierarchy, and what it enabled';

-- Partitions and children attached to a protected table later (CREATE
-- TABLE ... PARTITION OF, ALTER TABLE ... ATTACH PARTITION, ... INHERIT)
-- get the same filter at once, in the same transaction: no path to their
-- rows is ever open.  As the extension owner, so that whoever may attach a
-- partition may attach it to a protected table.
CREATE FUNCTION caredata._protect_hierarchy() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  t caredata.protected_table;
  r regclass;
BEGIN
  FOR t IN SELECT * FROM caredata.protected_table p WHERE p.relid = p.root
              AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p.relid) LOOP
    FOR r IN SELECT h FROM caredata._hierarchy(t.relid) h
              WHERE NOT EXISTS (SELECT 1 FROM caredata.protected_table q WHERE q.relid = h) LOOP
      PERFORM caredata._protect_one(r, t.nhs_column, t.purpose, t.dataset, t.relid);
      PERFORM caredata.audit_append('table.protect', r::text, jsonb_build_object('nhs_column', t.nhs_column, 'purpose', t.purpose,
        'dataset', t.dataset, 'part_of', t.relid::text));
    END LOOP;
  END LOOP;
  -- an expression index just made on a protected table keeps no statistics
  IF tg_tag = 'CREATE INDEX' THEN
    PERFORM caredata._forget_statistics(p.relid)
       FROM caredata.protected_table p
      WHERE p.relid IN (SELECT i.indrelid FROM pg_catalog.pg_event_trigger_ddl_commands() d
                          JOIN pg_catalog.pg_index i ON i.indexrelid = d.objid);
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._protect_hierarchy() IS
  'internal: event trigger giving partitions and children attached to a protected table its objection filter';
CREATE EVENT TRIGGER caredata_protect_hierarchy ON ddl_command_end
  WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'CREATE INDEX')
  EXECUTE FUNCTION caredata._protect_hierarchy();

-- Views that read a protected table past its filter.  PostgreSQL checks a
-- view's row security as the view's owner, and superusers and BYPASSRLS
-- roles skip it: a view they own (not security_invoker) over a protected
-- table, directly or through other views, shows every row to whoever may
-- read it; a materialized view they own stores every row.  Published views
-- are the exception: caredata made them, with the filter inside.
CREATE FUNCTION caredata._unfiltered_views(tab regclass) RETURNS TABLE (view regclass, owner name)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  -- (plpgsql: caredata.publication is made later in the install script)
  RETURN QUERY
  WITH RECURSIVE v(oid) AS (
    SELECT r.ev_class FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
     WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
       AND d.refobjid = tab AND r.ev_class <> tab
    UNION
    SELECT r.ev_class FROM v JOIN pg_depend d ON d.refobjid = v.oid AND d.refclassid = 'pg_class'::regclass
                                               AND d.classid = 'pg_rewrite'::regclass
      JOIN pg_rewrite r ON r.oid = d.objid
     WHERE r.ev_class <> v.oid
  )
  SELECT c.oid::regclass, o.rolname
    FROM v JOIN pg_class c ON c.oid = v.oid JOIN pg_roles o ON o.oid = c.relowner
   WHERE (o.rolsuper OR o.rolbypassrls)
     AND NOT (c.relkind = 'v' AND coalesce(c.reloptions, '{}') && ARRAY['security_invoker=true', 'security_invoker=on', 'security_invoker=1'])
     -- a publication's view, and on Citus the query it reads through
     AND NOT EXISTS (SELECT 1 FROM caredata.publication p
                      WHERE c.relnamespace = 'published'::regnamespace
                        AND c.relname IN (p.name, '_query_' || substr(md5(p.name), 1, 12)));
END
$$;
COMMENT ON FUNCTION caredata._unfiltered_views(regclass) IS
  'internal: views and materialized views that read a protected table as a superuser or BYPASSRLS owner, so past its filter';

-- refuse them: when a table is protected, and after any DDL that could make one
CREATE FUNCTION caredata._refuse_unfiltered_views() RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  x record;
BEGIN
  FOR x IN SELECT t.relid, u.view, u.owner FROM caredata.protected_table t, caredata._unfiltered_views(t.relid) u
            WHERE EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.relid) LIMIT 1 LOOP
    RAISE EXCEPTION 'view % reads the protected table % as %, whom row security does not filter', x.view, x.relid, x.owner
      USING ERRCODE = 'insufficient_privilege',
            HINT = format('Make it security_invoker (ALTER VIEW %s SET (security_invoker = true)), or give it to a role that is filtered (ALTER ... OWNER TO); publish de-identified data with caredata.publish().', x.view);
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata._refuse_unfiltered_views() IS
  'internal: refuse a view or materialized view that reads a protected table past its filter (see _unfiltered_views)';

CREATE FUNCTION caredata._unfiltered_views_guard() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM caredata._refuse_unfiltered_views();
END
$$;
COMMENT ON FUNCTION caredata._unfiltered_views_guard() IS
  'internal: event trigger refusing DDL that leaves a view reading a protected table past its filter';
CREATE EVENT TRIGGER caredata_unfiltered_views ON ddl_command_end
  WHEN TAG IN ('CREATE VIEW', 'ALTER VIEW', 'CREATE MATERIALIZED VIEW', 'ALTER MATERIALIZED VIEW',
               'ALTER TABLE', 'CREATE RULE', 'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
  EXECUTE FUNCTION caredata._unfiltered_views_guard();


-- protect() refuses at once where caredata was not loaded at server start
-- (src/base/preload.h): the filter it attaches could not run there
CREATE TRIGGER protected_table_requires_preload BEFORE INSERT ON caredata.protected_table
  FOR EACH STATEMENT EXECUTE FUNCTION caredata._require_preload_trigger();
COMMENT ON TRIGGER protected_table_requires_preload ON caredata.protected_table IS
  'tables are protected only where caredata was loaded at server start (the filter needs it)';
-- What protect() promised, held (src/objection/protection.c): DDL that would weaken
-- a protected table's filter is refused, for every role; a table found
-- weakened anyway (event triggers do not fire under session_replication_role
-- = replica) fails closed; and the state is reported as it is.

-- every change to the list makes every backend read it again
CREATE FUNCTION caredata._protected_table_changed() RETURNS trigger
  AS 'MODULE_PATHNAME', 'protected_table_changed' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._protected_table_changed() IS
  'internal: trigger on caredata.protected_table making every backend read the list of protected tables again';
CREATE TRIGGER caredata_protected_table_changed
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON caredata.protected_table
  FOR EACH STATEMENT EXECUTE FUNCTION caredata._protected_table_changed();
-- in replica mode too
ALTER TABLE caredata.protected_table ENABLE ALWAYS TRIGGER caredata_protected_table_changed;

-- ALTER TABLE (DISABLE or NO FORCE ROW LEVEL SECURITY, SET STATISTICS,
-- TYPE or DROP of the NHS number column, OWNER TO a role row security does
-- not filter), ALTER INDEX ... SET STATISTICS, ALTER POLICY, renaming a
-- caredata policy or the NHS number column, CREATE STATISTICS on it, and
-- CREATE POLICY beside a Citus table's filter, on a protected table
CREATE FUNCTION caredata._protection_guard() RETURNS event_trigger
  AS 'MODULE_PATHNAME', 'protection_guard' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._protection_guard() IS
  'internal: event trigger refusing DDL that would weaken a protected table''s objection filter';
CREATE EVENT TRIGGER caredata_protection_guard ON ddl_command_start
  WHEN TAG IN ('ALTER TABLE', 'ALTER INDEX', 'ALTER POLICY', 'CREATE POLICY', 'CREATE STATISTICS')
  EXECUTE FUNCTION caredata._protection_guard();
-- under session_replication_role = replica too
ALTER EVENT TRIGGER caredata_protection_guard ENABLE ALWAYS;

-- DROP POLICY, and every other way a policy of protect()'s goes (DROP ...
-- CASCADE, DROP OWNED BY caredata_patient): caught when dropped, as the
-- extension owner (the dropping role may not read protected_table)
CREATE FUNCTION caredata._protection_drop_guard() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  x record;
BEGIN
  -- (DROP EXTENSION caredata drops the list too)
  IF pg_catalog.to_regclass('caredata.protected_table') IS NULL THEN
    RETURN;
  END IF;
  FOR x IN SELECT d.address_names[3] AS policy, c.relname
             FROM pg_catalog.pg_event_trigger_dropped_objects() d
             JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) d.address_names[1]
             JOIN pg_catalog.pg_class c ON c.relnamespace OPERATOR(pg_catalog.=) n.oid
                                       AND c.relname OPERATOR(pg_catalog.=) d.address_names[2]
            WHERE d.object_type OPERATOR(pg_catalog.=) 'policy'
              AND d.address_names[3] OPERATOR(pg_catalog.=) ANY
                  (ARRAY['caredata_objection', 'caredata_subject', 'caredata_base', 'caredata_filter'])
              AND EXISTS (SELECT 1 FROM caredata.protected_table t WHERE t.relid OPERATOR(pg_catalog.=) c.oid)
            LIMIT 1 LOOP
    RAISE EXCEPTION 'dropping policy % would weaken the objection filter on protected table "%"', x.policy, x.relname
      USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'The policies caredata.protect() attaches are the filter.',
            HINT = 'To change how the table is filtered, caredata.unprotect() it (an audited step), then caredata.protect() it again.';
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata._protection_drop_guard() IS
  'internal: event trigger refusing the drop of a policy caredata.protect() attached to a table it still lists';
CREATE EVENT TRIGGER caredata_protection_drop_guard ON sql_drop
  EXECUTE FUNCTION caredata._protection_drop_guard();
ALTER EVENT TRIGGER caredata_protection_drop_guard ENABLE ALWAYS;

CREATE FUNCTION caredata.filter_weakness(tab regclass) RETURNS text
  AS 'MODULE_PATHNAME', 'filter_weakness' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.filter_weakness(regclass) IS
  'NULL when the table is protected and its objection filter is in force (row security enabled and forced, protect()''s policies as protect() made them, the NHS number column unchanged and without statistics); otherwise why not';

CREATE VIEW caredata.protection_status AS
  SELECT t.relid, t.nhs_column, t.purpose, t.dataset, t.root,
         w.weakness IS NULL AS in_force, w.weakness
    FROM caredata.protected_table t
    CROSS JOIN LATERAL (SELECT caredata.filter_weakness(t.relid) AS weakness) w;
COMMENT ON VIEW caredata.protection_status IS
  'each protected table and whether its objection filter is in force, as it is now (not as protect() left it); weakness says what is wrong';
