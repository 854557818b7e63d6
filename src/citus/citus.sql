-- src/citus/citus.sql
-- Scale-out on Citus (docs/scale-out.md): the catalogs a query reads made
-- Citus reference tables on every node (citus_setup), the objection filter
-- of a distributed table (protect() calls _protect_citus), and a check of
-- every node and shard (citus_check).  On a server without Citus only
-- distributed_filter exists, empty, and citus_setup() refuses.

-- Tables protect() filtered as Citus tables, by name: OIDs differ from node
-- to node, and this is a reference table, on every node.  A worker binds a
-- filter call on a shard to its distributed table through it.
CREATE TABLE caredata.distributed_filter (
  relation text PRIMARY KEY,    -- schema-qualified, as format('%I.%I', schema, table)
  nhs_column name NOT NULL,
  purpose text NOT NULL,
  dataset text,
  protected_at timestamptz NOT NULL DEFAULT now(),
  protected_by name NOT NULL DEFAULT current_user
);
COMMENT ON TABLE caredata.distributed_filter IS
  'Citus tables with an objection filter (caredata_filter), by schema-qualified name, on every node: what a worker binds a filter call on a shard to';
REVOKE ALL ON caredata.distributed_filter FROM PUBLIC;
-- protect() and unprotect() run as the table's owner, a member of caredata_admin
GRANT SELECT, INSERT, DELETE ON caredata.distributed_filter TO caredata_admin;
SELECT pg_catalog.pg_extension_config_dump('caredata.distributed_filter', '');

-- Is this node a Citus worker?  False without Citus and on the
-- coordinator (Citus's group 0).
CREATE FUNCTION caredata._citus_worker() RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  coordinator boolean;
BEGIN
  IF to_regproc('pg_catalog.citus_is_coordinator') IS NULL THEN
    RETURN false;
  END IF;
  EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO coordinator;
  RETURN NOT coordinator;
END
$$;
COMMENT ON FUNCTION caredata._citus_worker() IS
  'internal: whether this node is a Citus worker (false without Citus and on the coordinator)';

-- Every function that writes caredata's catalogs calls this first (issue
-- 27): on a worker a write to a reference table takes its ids from the
-- worker's own sequences, which collide with the coordinator's, and a
-- write to a coordinator-only catalog lands in the worker's empty copy.
CREATE FUNCTION caredata._catalog_write(what text) RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF caredata._citus_worker() THEN
    RAISE EXCEPTION '% writes caredata''s catalogs and runs on the Citus coordinator only', what
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'On a worker it would take ids from the worker''s own sequences, which collide with the coordinator''s.',
            HINT = 'Run it on the coordinator; docs/scale-out.md lists which functions run where.';
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._catalog_write(text) IS
  'internal: refuse on a Citus worker a function that writes caredata''s catalogs (run it on the coordinator)';
-- the writers are the admin's and the linker's (superusers pass anyway)
REVOKE ALL ON FUNCTION caredata._catalog_write(text), caredata._citus_worker() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata._catalog_write(text), caredata._citus_worker() TO caredata_admin, caredata_linker;

-- the catalogs citus_setup() makes reference tables: all that a query on a
-- worker reads (the register, exemptions, subject access, key domains,
-- disclosure policies, the roles they are in force for and their p-tables, distributed filters, and the stored pseudonyms a
-- published view joins on every shard); register_version stays local
-- (each node's triggers bump their own)
CREATE FUNCTION caredata.citus_catalogs() RETURNS SETOF regclass
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
  SELECT unnest(ARRAY['caredata.purpose'::regclass, 'caredata.objection'::regclass, 'caredata.exemption'::regclass,
                      'caredata.subject_access'::regclass, 'caredata.domain'::regclass, 'caredata.domain_key'::regclass,
                      'caredata.sdc_policy'::regclass, 'caredata.sdc_policy_role'::regclass,
                      'caredata.sdc_ptable'::regclass, 'caredata.distributed_filter'::regclass,
                      'caredata.pseudonym_map'::regclass]);
END;
COMMENT ON FUNCTION caredata.citus_catalogs() IS
  'the catalogs caredata.citus_setup() makes Citus reference tables: every one a query may read on a worker';

-- is tab a Citus table (distributed, reference or Citus local)?
CREATE FUNCTION caredata._citus_table(tab regclass) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  found boolean;
BEGIN
  IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
    RETURN false;
  END IF;
  EXECUTE 'SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1)' INTO found USING tab;
  RETURN found;
END
$$;
COMMENT ON FUNCTION caredata._citus_table(regclass) IS
  'internal: whether a table is in Citus''s metadata (false without Citus)';

-- the schema-qualified name of a relation, or for a Citus shard, of its
-- distributed table
CREATE FUNCTION caredata._logical_relation(rel regclass) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  sch text;
  nm text;
  shard bigint;
  logical regclass;
  shard_name text;
  logical_sch text;
  logical_nm text;
BEGIN
  -- names from the catalog caches: Citus hides shards from queries on
  -- pg_class (citus.show_shards_for_app_name_prefixes)
  SELECT i.schema, i.name INTO sch, nm FROM pg_identify_object('pg_class'::regclass, rel, 0) i;
  shard := substring(nm FROM '_([0-9]{1,18})$')::bigint;
  IF shard IS NOT NULL AND to_regclass('pg_catalog.pg_dist_shard') IS NOT NULL THEN
    -- a shard placed on this node: a table someone made under a shard's
    -- name where the shard is not (the coordinator, say) is not one
    EXECUTE 'SELECT s.logicalrelid FROM pg_catalog.pg_dist_shard s
              WHERE s.shardid = $1
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_dist_placement p
                             WHERE p.shardid = s.shardid
                               AND p.groupid = (SELECT groupid FROM pg_catalog.pg_dist_local_group))'
      INTO logical USING shard;
    IF logical IS NOT NULL THEN
      -- the shard's own name, as Citus makes it (shard_name() leaves out
      -- the schema public): same schema as the table, and that name
      EXECUTE 'SELECT (pg_catalog.parse_ident(pg_catalog.shard_name($1, $2)))[cardinality(pg_catalog.parse_ident(pg_catalog.shard_name($1, $2)))]'
        INTO shard_name USING logical, shard;
      SELECT i.schema, i.name INTO logical_sch, logical_nm FROM pg_identify_object('pg_class'::regclass, logical, 0) i;
      IF logical_sch = sch AND shard_name = nm THEN
        sch := logical_sch;
        nm := logical_nm;
      END IF;
    END IF;
  END IF;
  RETURN CASE WHEN nm IS NOT NULL THEN format('%I.%I', sch, nm) END;
END
$$;
COMMENT ON FUNCTION caredata._logical_relation(regclass) IS
  'internal: the schema-qualified name of a relation, or of the Citus table a shard belongs to';

-- caredata.blocked_nhs_numbers() where the register is a Citus reference
-- table.  Citus refuses the SQL function there: inlined or not, it reaches
-- the register through parameters, which Citus does not plan for SQL
-- functions.  The same policy with its arguments as literals, which Citus
-- routes to the node's own placement.  It is the SQL function's body, word
-- for word but for the literals; sql/objection_hardening.sql checks the two
-- agree for every kind, withdrawal, exemption, consent, dataset and time.
CREATE FUNCTION caredata._blocked_nhs_numbers_citus(purpose text, dataset text, at timestamptz)
RETURNS TABLE (nhs_number caredata.nhs_number)
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- the time as text in ISO form and UTC, whatever the caller's settings
SET search_path = pg_catalog, pg_temp
SET DateStyle = 'ISO, YMD'
SET TimeZone = 'UTC'
AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'SELECT o.nhs_number
       FROM caredata.objection o
      WHERE o.kind <> ''consent''
        AND o.effective_from <= %3$L::timestamptz
        AND (o.withdrawn_at IS NULL OR o.withdrawn_at > %3$L::timestamptz)
        AND %1$L = ANY (o.purposes)
        AND (o.kind <> ''dissent'' OR o.study = %2$L)
        AND NOT EXISTS (
          SELECT 1 FROM caredata.exemption e
          WHERE e.dataset = %2$L
            AND e.purpose = %1$L
            AND e.objection_kind = o.kind
            AND e.granted_at <= %3$L::timestamptz
            AND (e.expires_at IS NULL OR e.expires_at > %3$L::timestamptz)
            AND (e.revoked_at IS NULL OR e.revoked_at > %3$L::timestamptz))
        AND NOT EXISTS (
          SELECT 1 FROM caredata.objection c
          WHERE c.nhs_number OPERATOR(caredata.=) o.nhs_number AND c.kind = ''consent''
            AND c.study = %2$L
            AND %1$L = ANY (c.purposes)
            AND c.effective_from <= %3$L::timestamptz
            AND (c.withdrawn_at IS NULL OR c.withdrawn_at > %3$L::timestamptz))',
    purpose, dataset, at);
END
$$;
COMMENT ON FUNCTION caredata._blocked_nhs_numbers_citus(text, text, timestamptz) IS
  'internal: caredata.blocked_nhs_numbers() with its arguments as literals, for a register that is a Citus reference table';

-- Make the catalogs reference tables (superuser, on the coordinator, once;
-- run again it repairs subject access on nodes added since).
CREATE FUNCTION caredata.citus_setup() RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t regclass;
  n integer := 0;
  coordinator boolean;
BEGIN
  IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
    RAISE EXCEPTION 'Citus is not installed in this database'
      USING ERRCODE = 'feature_not_supported',
            HINT = 'caredata.citus_setup() prepares caredata for a Citus cluster: CREATE EXTENSION citus first (docs/scale-out.md).';
  END IF;
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RAISE EXCEPTION 'caredata.citus_setup() must be run by a superuser' USING ERRCODE = 'insufficient_privilege';
  END IF;
  EXECUTE 'SELECT citus_is_coordinator()' INTO coordinator;
  IF NOT coordinator THEN
    RAISE EXCEPTION 'caredata.citus_setup() runs on the Citus coordinator' USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  -- the register's and the key catalog's triggers fire on every placement
  PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
  -- Citus converts a reference table's neighbours by foreign key one by one,
  -- which fails on their identity columns: drop the keys between catalogs,
  -- convert, and add them again between reference tables.  protected_table
  -- stays on the coordinator (it holds OIDs): protect() checks its purpose.
  -- On the workers too (CREATE EXTENSION made the catalogs there), each
  -- in its own transaction: run again, this finds them dropped.
  ALTER TABLE caredata.protected_table DROP CONSTRAINT IF EXISTS protected_table_purpose_fkey;
  IF NOT caredata._citus_table('caredata.purpose') THEN
    PERFORM run_command_on_workers(
      'ALTER TABLE caredata.exemption DROP CONSTRAINT IF EXISTS exemption_purpose_fkey; '
      'ALTER TABLE caredata.domain_key DROP CONSTRAINT IF EXISTS domain_key_domain_id_fkey; '
      'ALTER TABLE caredata.protected_table DROP CONSTRAINT IF EXISTS protected_table_purpose_fkey');
    ALTER TABLE caredata.exemption DROP CONSTRAINT IF EXISTS exemption_purpose_fkey;
    ALTER TABLE caredata.domain_key DROP CONSTRAINT IF EXISTS domain_key_domain_id_fkey;
  END IF;
  n := 0;
  FOR t IN SELECT c FROM caredata.citus_catalogs() c LOOP
    CONTINUE WHEN caredata._citus_table(t);
    IF t = 'caredata.subject_access'::regclass THEN
      -- roles by OID, which differ from node to node: Citus copies a new
      -- reference table's rows as they are (binary), but deparses an
      -- INSERT's by name, so rows are inserted again after conversion
      CREATE TEMPORARY TABLE caredata_subject_access_copy ON COMMIT DROP AS
        SELECT role::text AS role, nhs_number, granted_at, granted_by FROM caredata.subject_access;
      DELETE FROM caredata.subject_access;
      PERFORM create_reference_table(t);
      INSERT INTO caredata.subject_access (role, nhs_number, granted_at, granted_by)
        SELECT role::regrole, nhs_number, granted_at, granted_by FROM caredata_subject_access_copy;
      DROP TABLE caredata_subject_access_copy;
    ELSE
      PERFORM create_reference_table(t);
      -- the rows now live in the placements: none left in the shell
      PERFORM truncate_local_data_after_distributing_table(t);
    END IF;
    n := n + 1;
  END LOOP;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'exemption_purpose_fkey' AND conrelid = 'caredata.exemption'::regclass) THEN
    ALTER TABLE caredata.exemption ADD CONSTRAINT exemption_purpose_fkey FOREIGN KEY (purpose) REFERENCES caredata.purpose (name);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'domain_key_domain_id_fkey' AND conrelid = 'caredata.domain_key'::regclass) THEN
    ALTER TABLE caredata.domain_key ADD CONSTRAINT domain_key_domain_id_fkey FOREIGN KEY (domain_id) REFERENCES caredata.domain (id);
  END IF;
  -- domains made before 0.2.0 record no key: the coordinator's is the one
  IF EXISTS (SELECT 1 FROM caredata.domain WHERE key_fingerprint IS NULL) THEN
    UPDATE caredata.domain SET key_fingerprint = caredata.key_fingerprint() WHERE key_fingerprint IS NULL;
  END IF;
  PERFORM caredata.audit_append('citus.setup', NULL, jsonb_build_object('converted', n));
END
$$;
COMMENT ON FUNCTION caredata.citus_setup() IS
  'on a Citus coordinator (superuser): make caredata''s catalogs reference tables, present and changed atomically on every node (docs/scale-out.md)';
REVOKE ALL ON FUNCTION caredata.citus_setup() FROM PUBLIC;

-- the objection filter of a Citus table: one permissive policy, the only one
CREATE FUNCTION caredata._protect_citus(tab regclass, nhs_column name, purpose text, dataset text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp   -- caredata off the path: the policy is deparsed (Citus copies it to shards) with caredata. qualified
AS $$
DECLARE
  had_rls boolean;
  coordinator boolean;
BEGIN
  IF NOT caredata._citus_table('caredata.objection') THEN
    RAISE EXCEPTION '% is a Citus table, and caredata''s catalogs are on this node only', tab
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'A worker filtering its shards would find an empty register and block no one.',
            HINT = 'Run SELECT caredata.citus_setup() on the coordinator as a superuser first (docs/scale-out.md).';
  END IF;
  EXECUTE 'SELECT citus_is_coordinator()' INTO coordinator;
  IF NOT coordinator THEN
    RAISE EXCEPTION 'protect() on a Citus table runs on the coordinator' USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  -- Citus writes shard names into per-shard commands unescaped (%s)
  IF caredata._logical_relation(tab) ~ '[''%\\]' OR nhs_column ~ '[''%\\]' THEN
    RAISE EXCEPTION '% cannot be protected on Citus: its name or the column''s holds a quote, %% or \', tab
      USING ERRCODE = 'invalid_name', HINT = 'Rename it (on the coordinator), then protect it.';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = tab AND c.relkind = 'p')
     OR EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = tab) THEN
    RAISE EXCEPTION '% is a partitioned Citus table', tab
      USING ERRCODE = 'feature_not_supported',
            HINT = 'caredata protects distributed tables that are not partitioned (docs/scale-out.md).';
  END IF;
  -- Citus re-creates restrictive policies as permissive on shards (docs/
  -- scale-out.md, cause A), and a permissive one is ORed with the filter:
  -- the filter must be the table's only policy
  IF EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = tab) THEN
    RAISE EXCEPTION '% has row security policies of its own', tab
      USING ERRCODE = 'feature_not_supported',
            DETAIL = 'On a Citus table caredata''s filter must be the only policy: Citus makes restrictive policies permissive on shards, where any other policy is ORed with the filter.',
            HINT = 'Drop the table''s policies, or keep the table on one node.';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_statistic_ext e JOIN pg_attribute a ON a.attrelid = e.stxrelid AND a.attname = nhs_column
              WHERE e.stxrelid = tab AND a.attnum = ANY (e.stxkeys)) THEN
    RAISE EXCEPTION 'extended statistics on %.% would give its values to the planner', tab, nhs_column
      USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'DROP STATISTICS on that column first.';
  END IF;
  -- no statistics on the NHS number column, on any shard, before the
  -- filter is attached
  PERFORM caredata._citus_statistics_target(tab, nhs_column, 0);
  SELECT c.relrowsecurity INTO had_rls FROM pg_class c WHERE c.oid = tab;
  INSERT INTO caredata.protected_table (relid, nhs_column, purpose, dataset, added_base_policy, enabled_rls, root)
  VALUES (tab, nhs_column, purpose, dataset, false, NOT had_rls, tab);
  INSERT INTO caredata.distributed_filter (relation, nhs_column, purpose, dataset)
  VALUES (caredata._logical_relation(tab), nhs_column, purpose, dataset);
  -- one permissive policy holding the whole filter (row_permitted() gives a
  -- patient their own rows only): what Citus copies to every shard, now and
  -- when it makes new ones, means the same there
  EXECUTE format('CREATE POLICY caredata_filter ON %s AS PERMISSIVE FOR ALL USING '
                 '(caredata.row_permitted(%I, %L%s)) WITH CHECK (true)',
                 tab, nhs_column, purpose,
                 CASE WHEN dataset IS NULL THEN '' ELSE format(', now(), %L', dataset) END);
  EXECUTE format('COMMENT ON POLICY caredata_filter ON %s IS %L', tab,
                 format('caredata objection filter of a Citus table: rows permitted for %s%s, a patient''s own rows (caredata.protect)', purpose,
                        CASE WHEN dataset IS NULL THEN '' ELSE ', dataset ' || dataset END));
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', tab);
  PERFORM caredata._forget_statistics(tab);
END
$$;
COMMENT ON FUNCTION caredata._protect_citus(regclass, name, text, text) IS
  'internal: attach the objection filter to a Citus table as its one permissive policy, caredata_filter';

-- A Citus table's statistics target for its NHS number column, on the
-- table and every shard, and with 0 what ANALYZE stored on the shards
-- removed (see _forget_statistics).  Citus does not propagate SET
-- STATISTICS, but copies the table's target into every shard it makes
-- later (moves, splits): so the table gets it without propagation, and the
-- shards that exist each in their own transaction on their node.
CREATE FUNCTION caredata._citus_statistics_target(tab regclass, nhs_column name, target integer) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  propagate text := current_setting('citus.enable_ddl_propagation', true);
  failure text;
BEGIN
  IF NOT caredata._citus_table(tab) THEN
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS %s', tab, nhs_column, target);
    RETURN;
  END IF;
  PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
  EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS %s', tab, nhs_column, target);
  PERFORM set_config('citus.enable_ddl_propagation', propagate, true);
  FOR failure IN EXECUTE format('SELECT result FROM run_command_on_placements(%L, %L) WHERE NOT success',
                                -- a shard this transaction has locked already would
                                -- wait for it forever: give up instead
                                tab, format('SET lock_timeout = ''10s''; ALTER TABLE %%1$s ALTER COLUMN %I SET STATISTICS %s', nhs_column, target)
                                     || CASE WHEN target = 0 THEN format('; SELECT caredata._forget_shard_statistics(''%%1$s'', %L)', nhs_column)
                                        ELSE '' END) LOOP
    RAISE EXCEPTION 'could not set the statistics of a shard of %', tab
      USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = failure;
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata._citus_statistics_target(regclass, name, integer) IS
  'internal: set a Citus table''s statistics target for its NHS number column on the table and every shard (0 also removes what the shards stored)';

-- distributed_filter names tables: a name left behind by a DROP or a
-- rename would bind whatever table takes it next.  A drop removes the
-- table's row; a rename (of the table or its schema) of a filtered table is
-- refused (unprotect, rename, protect again).  On the coordinator, where
-- protect() runs and the DDL starts.
CREATE FUNCTION caredata._distributed_filter_names() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  coordinator boolean := true;
  stale text;
  dropped text[];
BEGIN
  IF to_regproc('pg_catalog.citus_is_coordinator') IS NOT NULL THEN
    EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO coordinator;
  END IF;
  -- (on a worker it may fire inside Citus's own commands, where no
  -- distributed query may run: return before reading anything)
  IF NOT coordinator THEN
    RETURN;
  END IF;
  -- only DDL that can touch a filtered table reads the catalog (a
  -- transaction's reads of a reference table bind it to local execution,
  -- which Citus may have ruled out there)
  IF tg_event = 'sql_drop' THEN
    SELECT array_agg(format('%I.%I', d.schema_name, d.object_name)) INTO dropped
      FROM pg_event_trigger_dropped_objects() d WHERE d.object_type = 'table' AND NOT d.is_temporary;
    IF dropped IS NOT NULL AND EXISTS (SELECT 1 FROM caredata.distributed_filter) THEN
      -- the names as literals: Citus refuses a reference table write that
      -- joins a function's rows
      EXECUTE format('DELETE FROM caredata.distributed_filter WHERE relation = ANY (%L::text[])', dropped);
    END IF;
    RETURN;
  END IF;
  IF tg_tag = 'ALTER TABLE' AND NOT EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() c
                                             WHERE c.object_type = 'table' AND caredata._citus_table(c.objid::regclass)) THEN
    RETURN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM caredata.distributed_filter) THEN
    RETURN;
  END IF;
  SELECT f.relation INTO stale FROM caredata.distributed_filter f
   WHERE NOT EXISTS (SELECT 1 FROM caredata.protected_table t
                      WHERE caredata._logical_relation(t.relid) = f.relation)
   LIMIT 1;
  IF stale IS NOT NULL THEN
    RAISE EXCEPTION 'the Citus table % has an objection filter and cannot be renamed', stale
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'Workers bind the filter to the table by name.',
            HINT = 'Unprotect it, rename it, then protect it again.';
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._distributed_filter_names() IS
  'internal: event trigger keeping caredata.distributed_filter''s names true: a dropped table''s row goes, a filtered Citus table is not renamed';
CREATE EVENT TRIGGER caredata_distributed_filter_drop ON sql_drop
  EXECUTE FUNCTION caredata._distributed_filter_names();
CREATE EVENT TRIGGER caredata_distributed_filter_rename ON ddl_command_end
  WHEN TAG IN ('ALTER TABLE', 'ALTER SCHEMA')
  EXECUTE FUNCTION caredata._distributed_filter_names();

-- The stored statistics of a shard's NHS number column (run on its node
-- by _protect_citus): removing pg_statistic rows needs the superuser, so
-- SECURITY DEFINER, for the shard's owner only.
CREATE FUNCTION caredata._forget_shard_statistics(shard regclass, nhs_column name) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = shard AND c.relkind = 'r'
                   AND pg_has_role(session_user, c.relowner, 'MEMBER')) THEN
    RAISE EXCEPTION 'must be the owner of %', shard USING ERRCODE = 'insufficient_privilege';
  END IF;
  DELETE FROM pg_statistic s
   USING pg_attribute a
   WHERE s.starelid = shard AND a.attrelid = shard AND a.attname = nhs_column AND s.staattnum = a.attnum;
END
$$;
COMMENT ON FUNCTION caredata._forget_shard_statistics(regclass, name) IS
  'internal: remove the stored planner statistics of a Citus shard''s NHS number column (its owner only)';

-- Every node and shard as the filter and the keys need them.
CREATE FUNCTION caredata.citus_check()
RETURNS TABLE (node text, item text, ok boolean, detail text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- as the caller (it reaches the nodes as the caller too)
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t regclass;
  f caredata.distributed_filter;
  expected text;
  fp text;
  r record;
BEGIN
  IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
    RAISE EXCEPTION 'Citus is not installed in this database' USING ERRCODE = 'feature_not_supported';
  END IF;
  -- 1. the catalogs: reference tables with a placement on every node
  FOR t IN SELECT c FROM caredata.citus_catalogs() c LOOP
    IF NOT caredata._citus_table(t) THEN
      node := 'coordinator'; item := t::text; ok := false;
      detail := 'not a reference table: run caredata.citus_setup()';
      RETURN NEXT;
      CONTINUE;
    END IF;
    FOR r IN EXECUTE
      'SELECT n.nodename || '':'' || n.nodeport AS node,
              EXISTS (SELECT 1 FROM pg_catalog.pg_dist_placement p JOIN pg_catalog.pg_dist_shard s USING (shardid)
                       WHERE s.logicalrelid = $1 AND p.groupid = n.groupid) AS placed
         FROM pg_catalog.pg_dist_node n WHERE n.isactive AND n.noderole = ''primary'' ORDER BY n.groupid' USING t LOOP
      node := r.node; item := t::text; ok := r.placed;
      detail := CASE WHEN r.placed THEN 'reference table placement' ELSE 'no placement: run SELECT replicate_reference_tables(''block_writes'')' END;
      RETURN NEXT;
    END LOOP;
  END LOOP;
  -- 2. the key: every node's fingerprint equals the coordinator's and the domains'
  fp := caredata.key_fingerprint();
  FOR r IN EXECUTE
    'SELECT n.nodename || '':'' || n.nodeport AS node, x.success, x.result
       FROM run_command_on_all_nodes(''SELECT caredata.key_fingerprint()'') x
       JOIN pg_catalog.pg_dist_node n USING (nodeid) ORDER BY n.groupid' LOOP
    node := r.node; item := 'key file'; ok := r.success AND r.result = fp;
    detail := CASE WHEN NOT r.success THEN 'keyed functions refuse here: ' || r.result
                   WHEN r.result = fp THEN 'same master secret as this node'
                   ELSE 'another master secret: keyed functions refuse here' END;
    RETURN NEXT;
  END LOOP;
  IF EXISTS (SELECT 1 FROM caredata.domain d WHERE d.key_fingerprint IS DISTINCT FROM fp) THEN
    node := 'coordinator'; item := 'key file'; ok := false;
    detail := (SELECT count(*) FROM caredata.domain d WHERE d.key_fingerprint IS DISTINCT FROM fp)
              || ' pseudonym domain(s) record another master secret (or none)';
    RETURN NEXT;
  END IF;
  -- 3. every shard of every filtered table: row security on, forced, and
  -- exactly the coordinator's one permissive policy
  FOR f IN SELECT * FROM caredata.distributed_filter ORDER BY relation LOOP
    t := to_regclass(f.relation);
    -- Citus writes a shard's name into the command below as %s, unescaped
    IF f.relation ~ '[''%\\]' THEN
      node := 'coordinator'; item := f.relation; ok := false; detail := 'a name with a quote, % or \ cannot be checked';
      RETURN NEXT;
      CONTINUE;
    END IF;
    IF t IS NULL THEN
      node := 'coordinator'; item := f.relation; ok := false; detail := 'table not found (renamed or dropped?)';
      RETURN NEXT;
      CONTINUE;
    END IF;
    expected := caredata._policy_signature(t);
    FOR r IN EXECUTE format('SELECT shardid, success, result FROM run_command_on_placements(%L, %L) ORDER BY shardid',
                            t, 'SELECT caredata._policy_signature(''%s''::regclass)') LOOP
      node := 'shard ' || r.shardid; item := f.relation;
      ok := r.success AND r.result = expected;
      detail := CASE WHEN ok THEN 'filter as on the coordinator'
                     WHEN NOT r.success THEN 'could not check: ' || r.result
                     ELSE 'policies differ from the coordinator''s: ' || coalesce(r.result, 'none') END;
      RETURN NEXT;
    END LOOP;
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata.citus_check() IS
  'on a Citus coordinator: one row per node and check (catalog placements, key fingerprint) and per shard of every filtered table (policies as on the coordinator); ok false says what to fix';
REVOKE ALL ON FUNCTION caredata.citus_check() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.citus_check() TO caredata_admin;

-- a table's row security as text, to compare a shard with its table: on,
-- forced, and each policy (name, permissive, commands, roles, USING, CHECK)
CREATE FUNCTION caredata._policy_signature(tab regclass) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
  SELECT concat_ws(' | ', 'rls=' || c.relrowsecurity || ',' || c.relforcerowsecurity,
                   (SELECT string_agg(format('%s %s %s %s using(%s) check(%s)', p.polname,
                                             CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END,
                                             p.polcmd, p.polroles::regrole[]::text,
                                             pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)),
                                      '; ' ORDER BY p.polname)
                      FROM pg_policy p WHERE p.polrelid = c.oid))
  FROM pg_class c WHERE c.oid = tab;
END;
COMMENT ON FUNCTION caredata._policy_signature(regclass) IS
  'internal: a table''s row security and policies as text, for comparing a shard with its table (caredata.citus_check)';

REVOKE ALL ON FUNCTION caredata._blocked_nhs_numbers_citus(text, text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION caredata._distributed_filter_names() FROM PUBLIC;
REVOKE ALL ON FUNCTION caredata._forget_shard_statistics(regclass, name),
  caredata._citus_statistics_target(regclass, name, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata._citus_statistics_target(regclass, name, integer) TO caredata_admin;
GRANT EXECUTE ON FUNCTION caredata._forget_shard_statistics(regclass, name) TO caredata_admin;
REVOKE ALL ON FUNCTION caredata.citus_catalogs(), caredata._citus_table(regclass), caredata._logical_relation(regclass),
  caredata._protect_citus(regclass, name, text, text), caredata._policy_signature(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.citus_catalogs(), caredata._citus_table(regclass), caredata._logical_relation(regclass),
  caredata._protect_citus(regclass, name, text, text), caredata._policy_signature(regclass) TO caredata_admin;
