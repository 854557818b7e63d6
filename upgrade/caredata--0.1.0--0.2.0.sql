/* caredata--0.1.0--0.2.0.sql: update caredata 0.1.0 to 0.2.0 (never edited once released) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION caredata UPDATE TO '0.2.0'" to load this file. \quit

-- 0.2.0's install script makes the schema caredata itself, as a member, so
-- that DROP EXTENSION removes it; its control file names pg_catalog as the
-- extension's schema.  0.1.0's schema was made by CREATE EXTENSION and
-- recorded as the extension's own, which ALTER EXTENSION ADD refuses
-- ("the schema contains the extension"): record pg_catalog, as a fresh
-- 0.2.0 install does (pg_catalog is pinned, so no dependency on it is
-- recorded: the extension's on the schema goes), then add the schema.
UPDATE pg_catalog.pg_extension
   SET extnamespace = 'pg_catalog'::regnamespace
 WHERE extname = 'caredata';
DELETE FROM pg_catalog.pg_depend
 WHERE classid = 'pg_catalog.pg_extension'::regclass
   AND objid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'caredata')
   AND refclassid = 'pg_catalog.pg_namespace'::regclass
   AND refobjid = 'caredata'::regnamespace;
ALTER EXTENSION caredata ADD SCHEMA caredata;

-- Scale-out on Citus (docs/scale-out.md).  A domain records the key it was
-- created under (caredata.key_fingerprint()); domains made before 0.2.0
-- record none and are not checked.
ALTER TABLE caredata.domain ADD COLUMN key_fingerprint text CHECK (key_fingerprint ~ '^[0-9a-f]{32}$');
COMMENT ON COLUMN caredata.domain.key_fingerprint IS
  'the fingerprint of the master secret the domain was created under (caredata.key_fingerprint()); a server whose key file gives another refuses to use the domain; NULL: created before 0.2.0, not checked';
CREATE FUNCTION caredata.key_fingerprint() RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION caredata.key_fingerprint() IS
  'the fingerprint of the master secret in caredata.key_file: the first 16 bytes of HMAC-SHA256 of a fixed label under it, in hex; tells key files apart without revealing them';
REVOKE ALL ON FUNCTION caredata.key_fingerprint() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.key_fingerprint() TO caredata_admin;

CREATE OR REPLACE FUNCTION caredata.create_domain(name text, purpose text) RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  new_id integer;
BEGIN
  PERFORM caredata._catalog_write('caredata.create_domain()');
  IF name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    RAISE EXCEPTION 'invalid pseudonym domain name'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'A domain name is a lower-case letter followed by up to 62 lower-case letters, digits or underscores.';
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.domain d WHERE d.name = create_domain.name) THEN
    RAISE EXCEPTION 'pseudonym domain "%" already exists', name
      USING ERRCODE = 'duplicate_object',
            HINT = 'Domain names are never reused, even after retirement.';
  END IF;
  -- the key it is created under: a node with another key file refuses it
  INSERT INTO caredata.domain (name, purpose, key_fingerprint)
  VALUES (name, purpose, caredata.key_fingerprint()) RETURNING id INTO new_id;
  INSERT INTO caredata.domain_key (domain_id, version, scheme) VALUES (new_id, 1, 'aes256-cmac');
  PERFORM caredata.audit_append('domain.create', name, jsonb_build_object('id', new_id, 'purpose', purpose, 'version', 1));
  RETURN new_id;
END
$$;
COMMENT ON FUNCTION caredata.create_domain(text, text) IS
  'create a pseudonym domain (internal linkage or a recipient) at key version 1 (AES-256-CMAC); returns its id';

-- literals, not parameters, which Citus refuses over reference tables
CREATE OR REPLACE FUNCTION caredata.blocked_interval(purpose text, dataset text, at timestamptz,
                                          OUT lo timestamptz, OUT hi timestamptz)
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- the time goes into the statements as text: written and read back in ISO
-- form and UTC, whatever the caller's DateStyle and TimeZone (a zone whose
-- abbreviation reads back as another offset would shift it)
SET search_path = pg_catalog, caredata, pg_temp
SET DateStyle = 'ISO, YMD'
SET TimeZone = 'UTC'
AS $$
DECLARE
  known boolean;
BEGIN
  -- the arguments go into the statements as literals, not parameters:
  -- Citus refuses parameters once the register is a reference table
  -- (docs/scale-out.md)
  EXECUTE format('SELECT EXISTS (SELECT 1 FROM caredata.purpose p WHERE p.name = %L)', purpose) INTO known;
  IF NOT known THEN
    RAISE EXCEPTION 'unknown purpose "%"', purpose
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Purposes are listed in caredata.purpose.';
  END IF;
  -- one pass over the register, one over the (small) exemption table
  EXECUTE format(
    'SELECT greatest(o.lo1, o.lo2, e.lo), least(o.hi1, o.hi2, e.hi)
       FROM (SELECT max(effective_from) FILTER (WHERE effective_from <= %1$L) AS lo1,
                    min(effective_from) FILTER (WHERE effective_from > %1$L) AS hi1,
                    max(withdrawn_at) FILTER (WHERE withdrawn_at <= %1$L) AS lo2,
                    min(withdrawn_at) FILTER (WHERE withdrawn_at > %1$L) AS hi2
               FROM caredata.objection) o,
            (SELECT max(t) FILTER (WHERE t <= %1$L) AS lo, min(t) FILTER (WHERE t > %1$L) AS hi
               FROM caredata.exemption, LATERAL (VALUES (granted_at), (expires_at), (revoked_at)) v(t)) e',
    at) INTO lo, hi;
END
$$;

-- the register's history trigger fires on Citus placements too
CREATE OR REPLACE FUNCTION caredata.keep_history() RETURNS trigger
LANGUAGE plpgsql PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  -- on Citus the trigger fires on a placement, objection_<shard id>
  is_objection boolean := TG_TABLE_NAME ~ '^objection(_[0-9]+)?$';
BEGIN
  IF is_objection THEN
    IF OLD.withdrawn_at IS NULL AND NEW.withdrawn_at IS NOT NULL AND
       (to_jsonb(NEW) - 'withdrawn_at') = (to_jsonb(OLD) - 'withdrawn_at') THEN
      RETURN NEW;
    END IF;
  ELSE
    IF OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL AND
       (to_jsonb(NEW) - 'revoked_at') = (to_jsonb(OLD) - 'revoked_at') THEN
      NEW.revoked_by := current_user;
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'caredata.% keeps its history', CASE WHEN is_objection THEN 'objection' ELSE 'exemption' END
    USING ERRCODE = 'object_not_in_prerequisite_state',
          DETAIL = CASE WHEN is_objection THEN 'An objection can only be withdrawn, once; nothing else about it changes.'
                   ELSE 'An exemption can only be revoked, once; nothing else about it changes.' END,
          HINT = 'Use caredata.withdraw_objection() or caredata.revoke_exemption(); record a new row for anything else.';
END
$$;

-- a Citus table's filter is one permissive policy (src/citus/citus.sql)
CREATE OR REPLACE FUNCTION caredata.protect(tab regclass, nhs_column name, purpose text, dataset text DEFAULT NULL)
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

CREATE OR REPLACE FUNCTION caredata.unprotect(tab regclass) RETURNS void
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

CREATE OR REPLACE FUNCTION caredata._unfiltered_views(tab regclass) RETURNS TABLE (view regclass, owner name)
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

-- on Citus, what only the coordinator holds refuses on a worker
CREATE FUNCTION caredata._coordinator_only(what text) RETURNS void
  LANGUAGE plpgsql STABLE PARALLEL SAFE
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  coordinator boolean;
BEGIN
  IF to_regproc('pg_catalog.citus_is_coordinator') IS NULL THEN
    RETURN;
  END IF;
  EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO coordinator;
  IF NOT coordinator THEN
    RAISE EXCEPTION '% runs on the Citus coordinator only', what
      USING ERRCODE = 'feature_not_supported',
            DETAIL = 'The audit log, the linkage models and the person index are the coordinator''s; this node holds none of them.',
            HINT = 'Gather the rows to the coordinator first: WITH r AS MATERIALIZED (SELECT ... FROM the distributed table) SELECT ... FROM r.';
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._coordinator_only(text) IS
  'internal: refuse on a Citus worker what only the coordinator holds (the audit log, linkage models, the person index)';

REVOKE ALL ON FUNCTION caredata._coordinator_only(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata._coordinator_only(text) TO caredata_admin, caredata_linker;

CREATE OR REPLACE FUNCTION caredata.audit_append(action text, object text DEFAULT NULL, detail jsonb DEFAULT NULL,
                                      justification text DEFAULT NULL) RETURNS bigint
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN caredata._audit_append_as(session_user, action, object, detail, justification);
END
$$;
COMMENT ON FUNCTION caredata.audit_append(text, text, jsonb, text) IS
  'append an entry to the audit log (the login, now, the action, its object, details and justification); returns its id';

-- (caredata._link_trained_version: replaced again below)

-- the feeds write a Citus reference table from rows worked out first
CREATE OR REPLACE FUNCTION caredata.apply_opt_out_snapshot(
  snapshot regclass,
  nhs_column name DEFAULT 'nhs_number',
  source text DEFAULT 'national_data_opt_out_service',
  effective_at timestamptz DEFAULT now(),
  abort_on_invalid boolean DEFAULT false,
  allow_empty boolean DEFAULT false,
  OUT rows_read bigint, OUT invalid bigint, OUT duplicates bigint,
  OUT opened bigint, OUT withdrawn bigint, OUT unchanged bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
SET work_mem = '512MB'
SET enable_nestloop = off
SET enable_hashjoin = off
SET enable_hashagg = off
AS $$
DECLARE
  distinct_valid bigint;
  at_ timestamptz;
  ids bigint[];
  numbers caredata.nhs_number[];
  citus boolean;
BEGIN
  PERFORM caredata._catalog_write('caredata.apply_opt_out_snapshot()');
  -- one feed at a time; readers are never blocked (SHARE ROW EXCLUSIVE)
  PERFORM caredata.lock_register();
  citus := caredata._citus_table('caredata.objection');
  IF NOT citus THEN
    -- Each read once, in C: the snapshot (sorted in memory) and the
    -- register's open national opt-outs (in NHS number order), merged
    SELECT c.rows_read, c.invalid, c.duplicates, c.distinct_valid, c.ids, c.numbers
      INTO rows_read, invalid, duplicates, distinct_valid, ids, numbers
      FROM caredata._opt_out_changes(snapshot, nhs_column, 'national_data_opt_out',
                                     apply_opt_out_snapshot.source) c;
  END IF;
  IF NOT citus AND rows_read IS NULL THEN
    -- One pass (this function's settings rule out nested loops and hashing
    -- millions of numbers, whose random access cost twice as much): the
    -- snapshot parsed and grouped by number (one sort), merged in NHS number
    -- order with the register's open national opt-outs (its objection_open
    -- index), counting as it goes and keeping only the differences: the
    -- open objections of this source the snapshot no longer holds, and the
    -- numbers no open objection holds yet (in NHS number order, which
    -- caredata._open_objections requires).
    EXECUTE format($q$
      SELECT coalesce(sum(s.c), 0), coalesce(sum(s.c) FILTER (WHERE s.n IS NULL), 0),
             coalesce(sum(s.c OPERATOR(pg_catalog.-) 1) FILTER (WHERE s.n IS NOT NULL), 0),
             count(s.n),
             array_agg(r.id) FILTER (WHERE s.c IS NULL AND r.source OPERATOR(pg_catalog.=) $1),
             array_agg(s.n ORDER BY s.n) FILTER (WHERE r.id IS NULL AND s.n IS NOT NULL)
        FROM (SELECT caredata.try_nhs_number(x.%I::text) AS n, count(*) AS c FROM %s x GROUP BY 1) s
        FULL JOIN (SELECT o.id, o.nhs_number, o.source FROM caredata.objection o
                    WHERE o.kind OPERATOR(pg_catalog.=) 'national_data_opt_out' AND o.withdrawn_at IS NULL) r
          ON r.nhs_number OPERATOR(caredata.=) s.n$q$, nhs_column, snapshot)
    INTO rows_read, invalid, duplicates, distinct_valid, ids, numbers
    USING apply_opt_out_snapshot.source;
  ELSIF citus THEN
    -- On Citus the register is a reference table: the snapshot is parsed
    -- into a temporary table, and the changes worked out from it
    EXECUTE format('CREATE TEMP TABLE caredata_snapshot ON COMMIT DROP AS
                    SELECT caredata.try_nhs_number(%I::text) AS n FROM %s ORDER BY 1',
                   nhs_column, snapshot);
    ANALYZE pg_temp.caredata_snapshot;
    SELECT count(*), count(*) FILTER (WHERE n IS NULL), count(n) - count(DISTINCT n), count(DISTINCT n)
    INTO rows_read, invalid, duplicates, distinct_valid
    FROM pg_temp.caredata_snapshot;
  END IF;
  IF distinct_valid = 0 AND NOT allow_empty THEN
    RAISE EXCEPTION 'opt-out snapshot holds no valid NHS numbers'
      USING ERRCODE = 'no_data_found',
            DETAIL = format('It has %s rows, %s of them invalid or missing. Applying it would withdraw every national data opt-out from this source.',
                            rows_read, invalid),
            HINT = 'Check the delivery and the column name; pass allow_empty => true if it really is empty.';
  END IF;
  IF invalid > 0 THEN
    IF abort_on_invalid THEN
      RAISE EXCEPTION 'opt-out snapshot holds % invalid or missing NHS numbers', invalid
        USING ERRCODE = 'invalid_text_representation',
              HINT = 'Nothing was applied. Pass abort_on_invalid => false to skip them and apply the rest.';
    END IF;
    RAISE NOTICE 'opt-out snapshot: % invalid or missing NHS numbers skipped', invalid;
  END IF;
  IF duplicates > 0 THEN
    RAISE NOTICE 'opt-out snapshot: % duplicate NHS numbers counted once', duplicates;
  END IF;

  IF NOT citus THEN
    UPDATE caredata.objection o SET withdrawn_at = greatest(effective_at, o.effective_from)
     WHERE o.id OPERATOR(pg_catalog.=) ANY (coalesce(ids, '{}'));
    GET DIAGNOSTICS withdrawn = ROW_COUNT;
    -- in NHS number order (the merge's), written in bulk: a page at a time,
    -- each index in order (an index never used yet built bottom up)
    opened := caredata._open_objections(numbers, 'national_data_opt_out',
                                        caredata.default_purposes('national_data_opt_out'),
                                        effective_at, apply_opt_out_snapshot.source);
    IF opened IS NULL THEN
      -- the register needs a row-by-row INSERT (row triggers, row security)
      INSERT INTO caredata.objection (nhs_number, kind, purposes, effective_from, source)
      SELECT n, 'national_data_opt_out', caredata.default_purposes('national_data_opt_out'),
             effective_at, apply_opt_out_snapshot.source
        FROM unnest(numbers) WITH ORDINALITY AS u(n, i) ORDER BY i;
      GET DIAGNOSTICS opened = ROW_COUNT;
    END IF;
  ELSE
    -- Citus writes a reference table only from rows it can route, not from
    -- a join with this session's snapshot (docs/scale-out.md)
    withdrawn := 0;
    FOR at_, ids IN
      SELECT greatest(effective_at, o.effective_from), array_agg(o.id)
        FROM caredata.objection o
       WHERE o.kind = 'national_data_opt_out' AND o.source = apply_opt_out_snapshot.source
         AND o.withdrawn_at IS NULL
         AND NOT EXISTS (SELECT 1 FROM pg_temp.caredata_snapshot s WHERE s.n = o.nhs_number)
       GROUP BY 1 LOOP
      UPDATE caredata.objection o SET withdrawn_at = at_ WHERE o.id = ANY (ids);
      withdrawn := withdrawn + cardinality(ids);
    END LOOP;
    SELECT array_agg(s.n ORDER BY s.n) INTO numbers
      FROM (SELECT DISTINCT n FROM pg_temp.caredata_snapshot WHERE n IS NOT NULL) s
     WHERE NOT EXISTS (SELECT 1 FROM caredata.objection o
                       WHERE o.nhs_number = s.n AND o.kind = 'national_data_opt_out'
                         AND o.withdrawn_at IS NULL);
    INSERT INTO caredata.objection (nhs_number, kind, purposes, effective_from, source)
    SELECT n, 'national_data_opt_out', caredata.default_purposes('national_data_opt_out'),
           effective_at, apply_opt_out_snapshot.source
      FROM unnest(numbers) n;
    opened := coalesce(cardinality(numbers), 0);
    DROP TABLE pg_temp.caredata_snapshot;
  END IF;
  unchanged := distinct_valid - opened;

  INSERT INTO caredata.feed_load (feed, source, rows_read, invalid, duplicates, opened, withdrawn, unchanged)
  VALUES ('national_data_opt_out', source, rows_read, invalid, duplicates, opened, withdrawn, unchanged);
  PERFORM caredata.audit_append('feed.load', 'national_data_opt_out', jsonb_build_object('source', source, 'rows_read', rows_read, 'invalid', invalid, 'opened', opened, 'withdrawn', withdrawn, 'unchanged', unchanged));
END
$$;
COMMENT ON FUNCTION caredata.apply_opt_out_snapshot(regclass, name, text, timestamptz, boolean, boolean) IS
  'apply a full National Data Opt-out snapshot in one transaction: new numbers open objections, missing ones are withdrawn, the rest untouched; invalid numbers are counted and skipped';

CREATE OR REPLACE FUNCTION caredata.apply_type1_codes(
  gp_extract regclass,
  nhs_column name DEFAULT 'nhs_number',
  code_column name DEFAULT 'code',
  date_column name DEFAULT 'recorded_at',
  source text DEFAULT 'gp_extract',
  abort_on_invalid boolean DEFAULT false,
  OUT rows_read bigint, OUT invalid bigint, OUT unmapped bigint,
  OUT opened bigint, OUT withdrawn bigint, OUT unchanged bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
DECLARE
  at_ timestamptz;
  ids bigint[];
  numbers caredata.nhs_number[];
  ats timestamptz[];
  untils timestamptz[];
BEGIN
  PERFORM caredata._catalog_write('caredata.apply_type1_codes()');
  PERFORM caredata.lock_register();
  EXECUTE format('CREATE TEMP TABLE caredata_type1 ON COMMIT DROP AS
                  SELECT caredata.try_nhs_number(x.%I::text) AS n, m.meaning, x.%I::timestamptz AS at
                  FROM %s x LEFT JOIN caredata.type1_code m ON m.code = btrim(x.%I::text)',
                 nhs_column, date_column, gp_extract, code_column);
  -- invalid: no valid NHS number, or no date (which event is latest cannot
  -- be told); unmapped: a valid, dated row whose code is not a Type 1 code
  SELECT count(*), count(*) FILTER (WHERE n IS NULL OR at IS NULL),
         count(*) FILTER (WHERE n IS NOT NULL AND at IS NOT NULL AND meaning IS NULL)
  INTO rows_read, invalid, unmapped FROM pg_temp.caredata_type1;
  IF invalid > 0 THEN
    IF abort_on_invalid THEN
      RAISE EXCEPTION 'Type 1 extract holds % rows with an invalid or missing NHS number or date', invalid
        USING ERRCODE = 'invalid_text_representation',
              HINT = 'Nothing was applied. Pass abort_on_invalid => false to skip them and apply the rest.';
    END IF;
    RAISE NOTICE 'Type 1 extract: % rows with an invalid or missing NHS number or date skipped', invalid;
  END IF;
  IF unmapped > 0 THEN
    RAISE NOTICE 'Type 1 extract: % rows with codes not in caredata.type1_code skipped', unmapped;
  END IF;

  -- each patient's coded events in time order, a repeat of the state it is
  -- already in dropped (at one instant a withdrawal sorts before a dissent,
  -- so the dissent is what stands); each dissent lasts until the next event;
  -- was_open: the register had an open Type 1 objection for the patient
  CREATE TEMP TABLE caredata_type1_events ON COMMIT DROP AS
  SELECT n, meaning, at, lead(at) OVER w AS until, row_number() OVER w AS seq,
         EXISTS (SELECT 1 FROM caredata.objection o
                 WHERE o.nhs_number = e.n AND o.kind = 'type1' AND o.withdrawn_at IS NULL) AS was_open
  FROM (SELECT n, meaning, at,
               lag(meaning) OVER (PARTITION BY n ORDER BY at, meaning = 'dissent') AS before
        FROM (SELECT DISTINCT n, meaning, at FROM pg_temp.caredata_type1
              WHERE n IS NOT NULL AND at IS NOT NULL AND meaning IS NOT NULL) d) e
  WHERE before IS DISTINCT FROM meaning
  WINDOW w AS (PARTITION BY n ORDER BY at, meaning = 'dissent');

  -- an open objection ends at the patient's first withdrawal; when the
  -- extract opens with a dissent (the one already recorded), at the
  -- withdrawal after that
  IF caredata._citus_table('caredata.objection') THEN
    -- a reference table on Citus: the changes worked out here, then written
    -- (see apply_opt_out_snapshot), one statement per withdrawal time
    withdrawn := 0;
    FOR at_, ids IN
      SELECT greatest(CASE WHEN e.meaning = 'withdrawn' THEN e.at ELSE e.until END, o.effective_from), array_agg(o.id)
        FROM caredata.objection o JOIN pg_temp.caredata_type1_events e ON o.nhs_number = e.n
       WHERE e.seq = 1 AND e.was_open AND (e.meaning = 'withdrawn' OR e.until IS NOT NULL)
         AND o.kind = 'type1' AND o.withdrawn_at IS NULL
       GROUP BY 1 LOOP
      UPDATE caredata.objection o SET withdrawn_at = at_ WHERE o.id = ANY (ids);
      withdrawn := withdrawn + cardinality(ids);
    END LOOP;
    SELECT array_agg(e.n ORDER BY e.n, e.at), array_agg(e.at ORDER BY e.n, e.at), array_agg(e.until ORDER BY e.n, e.at)
      INTO numbers, ats, untils
      FROM pg_temp.caredata_type1_events e
     WHERE e.meaning = 'dissent' AND NOT (e.seq = 1 AND e.was_open);
    INSERT INTO caredata.objection (nhs_number, kind, purposes, effective_from, withdrawn_at, source)
    SELECT u.n, 'type1', caredata.default_purposes('type1'), u.at, u.until, apply_type1_codes.source
      FROM unnest(numbers, ats, untils) u(n, at, until);
    opened := coalesce(cardinality(numbers), 0);
  ELSE
    UPDATE caredata.objection o
    SET withdrawn_at = greatest(CASE WHEN e.meaning = 'withdrawn' THEN e.at ELSE e.until END, o.effective_from)
    FROM pg_temp.caredata_type1_events e
    WHERE e.seq = 1 AND e.was_open AND (e.meaning = 'withdrawn' OR e.until IS NOT NULL)
      AND o.nhs_number = e.n AND o.kind = 'type1' AND o.withdrawn_at IS NULL;
    GET DIAGNOSTICS withdrawn = ROW_COUNT;

    -- every other dissent is recorded: open, or as history when the extract
    -- also withdraws it
    INSERT INTO caredata.objection (nhs_number, kind, purposes, effective_from, withdrawn_at, source)
    SELECT e.n, 'type1', caredata.default_purposes('type1'), e.at, e.until, apply_type1_codes.source
    FROM pg_temp.caredata_type1_events e
    WHERE e.meaning = 'dissent' AND NOT (e.seq = 1 AND e.was_open)
    ORDER BY e.n, e.at;
    GET DIAGNOSTICS opened = ROW_COUNT;
  END IF;
  -- patients the extract changed nothing for: an open dissent repeated, or
  -- a withdrawal of nothing
  unchanged := (SELECT count(*) FROM pg_temp.caredata_type1_events e
                WHERE e.seq = 1 AND e.until IS NULL
                  AND ((e.meaning = 'dissent' AND e.was_open) OR (e.meaning = 'withdrawn' AND NOT e.was_open)));

  INSERT INTO caredata.feed_load (feed, source, rows_read, invalid, duplicates, opened, withdrawn, unchanged)
  VALUES ('type1', source, rows_read, invalid,
          rows_read - invalid - unmapped - (SELECT count(*) FROM pg_temp.caredata_type1_events),
          opened, withdrawn, unchanged);
  PERFORM caredata.audit_append('feed.load', 'type1', jsonb_build_object('source', source, 'rows_read', rows_read, 'invalid', invalid, 'opened', opened, 'withdrawn', withdrawn, 'unchanged', unchanged));
  DROP TABLE pg_temp.caredata_type1, pg_temp.caredata_type1_events;
END
$$;

-- a published view over a Citus table reads through a SECURITY DEFINER function
-- (caredata._publication_view: replaced again below)

CREATE OR REPLACE FUNCTION caredata.unpublish(name text) RETURNS void
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p caredata.publication;
BEGIN
  PERFORM caredata._catalog_write('caredata.unpublish()');
  DELETE FROM caredata.publication x WHERE x.name = unpublish.name RETURNING * INTO p;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('publication "%s" does not exist', name),
      HINT = 'See caredata.publication.';
  END IF;
  EXECUTE format('DROP VIEW IF EXISTS published.%I', p.name);
  -- on Citus, what the view reads through (_publication_view)
  IF to_regprocedure(format('published.%I()', '_rows_' || substr(md5(p.name), 1, 12))) IS NOT NULL THEN
    EXECUTE format('DROP FUNCTION published.%I()', '_rows_' || substr(md5(p.name), 1, 12));
    EXECUTE format('DROP VIEW published.%I', '_query_' || substr(md5(p.name), 1, 12));
  END IF;
  PERFORM caredata.audit_append('publication.drop', name, jsonb_build_object('recipient', p.recipient));
END
$$;

-- src/citus/citus.sql, whole
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

-- ---- issue 24, section 1: the policy is the admin's, not the analyst's
-- (before citus_catalogs(), which names its table) ----
-- Which policy is in force for a role: caredata_admin decides, not the
-- analyst (issue 24).  A row for the role itself; else the one row for a
-- role it is a member of; else the row for every role ('-', OID 0); else
-- the setting caredata.sdc_policy, which only a superuser can set
-- (postgresql.conf, ALTER DATABASE or ALTER ROLE).  A non-admin's call that
-- names another policy is refused (src/sdc/policy_role.c).
CREATE TABLE caredata.sdc_policy_role (
  role       regrole PRIMARY KEY,
  policy     text NOT NULL CHECK (policy ~ '^[a-z][a-z0-9_]{0,62}$'),
  set_by     name NOT NULL DEFAULT session_user,
  set_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE caredata.sdc_policy_role IS
  'the disclosure-control policy in force for a role (role ''-'': every role without a row of its own or of a role it belongs to); set by caredata_admin with caredata.assign_sdc_policy()';
REVOKE ALL ON caredata.sdc_policy_role FROM PUBLIC;
GRANT SELECT ON caredata.sdc_policy_role TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('caredata.sdc_policy_role', '');

CREATE FUNCTION caredata.assign_sdc_policy(role regrole, policy text) RETURNS void
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM caredata._catalog_write('caredata.assign_sdc_policy()');
  IF NOT EXISTS (SELECT 1 FROM caredata.sdc_policy p WHERE p.policy = assign_sdc_policy.policy) THEN
    RAISE EXCEPTION 'disclosure-control policy "%" does not exist', policy
      USING ERRCODE = 'undefined_object',
            HINT = 'See caredata.sdc_policy for the policies.';
  END IF;
  INSERT INTO caredata.sdc_policy_role AS r (role, policy) VALUES (assign_sdc_policy.role, assign_sdc_policy.policy)
  ON CONFLICT ON CONSTRAINT sdc_policy_role_pkey
  DO UPDATE SET policy = excluded.policy, set_by = excluded.set_by, set_at = excluded.set_at;
  PERFORM caredata.audit_append('sdc_policy.assign',
                                CASE WHEN role::oid = 0 THEN 'every role' ELSE role::text END,
                                jsonb_build_object('policy', policy));
END
$$;
COMMENT ON FUNCTION caredata.assign_sdc_policy(regrole, text) IS
  'put a disclosure-control policy in force for a role (''-'': every role without one of its own); audited; caredata_admin only';
REVOKE ALL ON FUNCTION caredata.assign_sdc_policy(regrole, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.assign_sdc_policy(regrole, text) TO caredata_admin;

CREATE FUNCTION caredata.unassign_sdc_policy(role regrole) RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  gone boolean;
BEGIN
  PERFORM caredata._catalog_write('caredata.unassign_sdc_policy()');
  DELETE FROM caredata.sdc_policy_role r WHERE r.role = unassign_sdc_policy.role;
  gone := FOUND;
  IF gone THEN
    PERFORM caredata.audit_append('sdc_policy.unassign',
                                  CASE WHEN role::oid = 0 THEN 'every role' ELSE role::text END, NULL);
  END IF;
  RETURN gone;
END
$$;
COMMENT ON FUNCTION caredata.unassign_sdc_policy(regrole) IS
  'take a role''s own disclosure-control policy away (it then follows its groups'', every role''s, or the setting); audited; caredata_admin only';
REVOKE ALL ON FUNCTION caredata.unassign_sdc_policy(regrole) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.unassign_sdc_policy(regrole) TO caredata_admin;

CREATE FUNCTION caredata.sdc_policy_in_force() RETURNS text
  AS 'MODULE_PATHNAME', 'sdc_policy_in_force_sql' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.sdc_policy_in_force() IS
  'the disclosure-control policy in force for the current role: the one every safe aggregate applies, and the only one a role outside caredata_admin may name';


-- the catalogs citus_setup() makes reference tables: all that a query on a
-- worker reads (the register, exemptions, subject access, key domains,
-- disclosure policies and the roles they are in force for, distributed filters, and the stored pseudonyms a
-- published view joins on every shard); register_version stays local
-- (each node's triggers bump their own)
CREATE FUNCTION caredata.citus_catalogs() RETURNS SETOF regclass
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
  SELECT unnest(ARRAY['caredata.purpose'::regclass, 'caredata.objection'::regclass, 'caredata.exemption'::regclass,
                      'caredata.subject_access'::regclass, 'caredata.domain'::regclass, 'caredata.domain_key'::regclass,
                      'caredata.sdc_policy'::regclass, 'caredata.sdc_policy_role'::regclass,
                      'caredata.distributed_filter'::regclass,
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


-- Security (issue 22, search_path): caredata's own SQL and PL/pgSQL no
-- longer resolve names through the caller's search_path.  Functions are
-- pinned to "pg_catalog, pg_temp" (SET search_path), and SQL functions the
-- planner inlines get an SQL-standard body, parsed once, here.
ALTER FUNCTION caredata._audit_refuse() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata._funnel_add(caredata.funnel_state,double precision,double precision,text,text,double precision) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata._funnel_combine(caredata.funnel_state,caredata.funnel_state) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata._link_bad(text,text,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata._link_check_spec(jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata._link_compare_sql(text,integer,double precision[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata._link_comparisons(text,integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata._link_estimate_pairs(jsonb,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata._link_pairs_sql(text,integer,double precision[],boolean) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata._link_std_expr(regclass,name,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata._link_trained_version(text,integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata._publish_column(name,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata.k_anonymity(regclass,text[],integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata.link_add_source(text,regclass,name,name,name,name,name) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata.link_blocking_counts(text,integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata.link_create_model(text,jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata.link_explain(text,bigint,text,bigint,text,integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata.link_lookup(text,date,text,text,text,integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata.link_quality(regclass,name,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata.link_run(text,integer,text,double precision,boolean,boolean,boolean,text[]) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION caredata.link_standardise(text[],bigint) SET search_path = pg_catalog, pg_temp;
CREATE OR REPLACE FUNCTION caredata.default_purposes(kind text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE kind
    WHEN 'national_data_opt_out' THEN ARRAY['research', 'planning', 'commissioning']
    WHEN 'type1' THEN ARRAY['research', 'planning', 'commissioning']
    WHEN 'dissent' THEN ARRAY['research']
    WHEN 'consent' THEN ARRAY['research']
  END;
CREATE OR REPLACE FUNCTION caredata._funnel_add(s caredata.funnel_state, numerator double precision, denominator double precision, data_type text)
  RETURNS caredata.funnel_state LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN caredata._funnel_add(s, numerator, denominator, data_type, 'SHMI', 0.1);
CREATE OR REPLACE FUNCTION caredata._funnel_add(s caredata.funnel_state, numerator double precision, denominator double precision)
  RETURNS caredata.funnel_state LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN caredata._funnel_add(s, numerator, denominator, 'SR', 'SHMI', 0.1);
CREATE OR REPLACE FUNCTION caredata.funnel_limit(fit caredata.funnel_fit, size double precision, probability double precision,
                                      method text DEFAULT 'tau2')
  RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  -- unadjusted: FunnelPlotR's limits without over-dispersion (exact for SR,
  -- the transformed scale with tau2 = 0 for PR and RC)
  RETURN caredata.funnel_limit(fit.data_type, size, fit.target, probability,
                               CASE WHEN lower(method) <> 'unadjusted' THEN method WHEN fit.data_type = 'SR' THEN 'exact' ELSE 'tau2' END,
                               CASE WHEN fit.phi > 0 THEN fit.phi ELSE 1 END,
                               CASE WHEN lower(method) = 'unadjusted' THEN 0 ELSE fit.tau2 END, coalesce(fit.sr_method, 'SHMI'));
CREATE OR REPLACE FUNCTION caredata._funnel_z(f caredata.funnel_fit, n double precision, d double precision, method text)
  RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
  SELECT CASE
    WHEN (method IN ('exact', 'normal', 'phi') AND f.data_type IN ('PR', 'SR')) OR (method = 'unadjusted' AND f.data_type = 'SR') THEN
      (n / d - f.target) / sqrt(CASE WHEN f.data_type = 'PR' THEN f.target * (1 - f.target) ELSE f.target END / d)
      / CASE WHEN method = 'phi' THEN sqrt(f.phi) ELSE 1 END
    WHEN f.data_type = 'PR' THEN (asin(sqrt(n / d)) - asin(sqrt(f.target))) / sqrt(1 / (4 * d) + t.tau2)
    WHEN f.data_type = 'RC' THEN (ln((n + 0.5) / (d + 0.5)) - ln(f.target)) / sqrt(1 / (4 * d) + t.tau2)
    WHEN f.sr_method = 'CQC' THEN (sqrt(n / d) - 1) / sqrt(1 / (4 * d) + t.tau2)
    WHEN n = 0 THEN '-Infinity'::float8
    ELSE ln(n / d) / sqrt(1 / d + t.tau2) END
    FROM (SELECT CASE WHEN method = 'unadjusted' THEN 0 ELSE f.tau2 END AS tau2) t;
END;
CREATE OR REPLACE FUNCTION caredata._svg_text(t text) RETURNS text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN replace(replace(replace(replace(replace(t, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;');
CREATE OR REPLACE FUNCTION caredata._svg_ticks(lo double precision, hi double precision) RETURNS double precision[]
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
  WITH s AS (
    SELECT CASE WHEN raw / mag < 1.5 THEN 1 WHEN raw / mag < 3.5 THEN 2 WHEN raw / mag < 7.5 THEN 5 ELSE 10 END * mag AS step
      FROM (SELECT raw, 10 ^ floor(log(raw)) AS mag
              FROM (SELECT greatest((hi - lo) / 5, 1e-12) AS raw) r) m
  )
  SELECT array_agg(round((k * step)::numeric, 10)::float8 ORDER BY k)
    FROM s, generate_series(ceil(lo / step)::bigint, floor(hi / step)::bigint) k;
END;

-- Security (issue 22, search_path): a query the caller gives to sdc_protect(),
-- sdc_audit(), funnel() or funnel_svg() runs as the caller under the caller's
-- search_path (caredata._query_columns); the rest runs pinned.
DROP FUNCTION caredata._sdc_table(text);
CREATE FUNCTION caredata._query_columns(query text, ncols integer,
                                        OUT c1 text[], OUT c2 text[], OUT c3 text[], OUT c4 text[])
  LANGUAGE plpgsql STABLE SET extra_float_digits = 3 AS $$
BEGIN
  IF ncols OPERATOR(pg_catalog.=) 3 THEN
    EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(x.a::pg_catalog.text), pg_catalog.array_agg(x.b::pg_catalog.text), '
                              'pg_catalog.array_agg(x.c::pg_catalog.text) FROM (%s) x(a, b, c)', query)
      INTO c1, c2, c3;
  ELSE
    EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(x.a::pg_catalog.text), pg_catalog.array_agg(x.b::pg_catalog.text), '
                              'pg_catalog.array_agg(x.c::pg_catalog.text), pg_catalog.array_agg(x.d::pg_catalog.text) '
                              'FROM (%s) x(a, b, c, d)', query)
      INTO c1, c2, c3, c4;
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._query_columns(text, integer) IS
  'internal: the first 3 or 4 columns of the caller''s query, as text arrays in one row order; runs as the caller, under the caller''s search_path';
CREATE FUNCTION caredata._sdc_table(cell_rows text[], cell_cols text[], cell_ns text[])
  RETURNS TABLE (row_key text, col_key text, row_index integer, col_index integer, n bigint)
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN QUERY EXECUTE $q$
    WITH c AS (SELECT x.row_key AS r, x.col_key AS k, x.n::bigint AS n FROM unnest($1, $2, $3) x(row_key, col_key, n)),
         rk AS (SELECT r, row_number() OVER (ORDER BY r)::integer AS i FROM (SELECT DISTINCT r FROM c) d),
         ck AS (SELECT k, row_number() OVER (ORDER BY k NULLS FIRST)::integer AS j FROM (SELECT DISTINCT k FROM c) d),
         grid AS (SELECT rk.r, ck.k, rk.i, ck.j, coalesce(c.n, 0) AS n
                    FROM rk CROSS JOIN ck LEFT JOIN c ON c.r = rk.r AND c.k IS NOT DISTINCT FROM ck.k)
    SELECT r, k, i, j, n FROM grid
    UNION ALL SELECT r, NULL, i, 0, sum(n)::bigint FROM grid GROUP BY r, i
    UNION ALL SELECT NULL, k, 0, j, sum(n)::bigint FROM grid GROUP BY k, j
    UNION ALL SELECT NULL, NULL, 0, 0, coalesce(sum(n), 0)::bigint FROM grid$q$ USING cell_rows, cell_cols, cell_ns;
END
$$;
COMMENT ON FUNCTION caredata._sdc_table(text[], text[], text[]) IS
  'internal: the (row_key, col_key, n) cells of a query (caredata._query_columns) as a whole table with margins';
CREATE FUNCTION caredata._sdc_protect(cell_rows text[], cell_cols text[], cell_ns text[], policy text, min_width bigint)
  RETURNS TABLE (row_key text, col_key text, n bigint, shown text, suppression text)
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  rkeys text[];
  ckeys text[];
  rows_ integer[];
  cols_ integer[];
  vals bigint[];
  prim boolean[];
  supp boolean[];
  one_dim boolean;
  mark text;
BEGIN
  SELECT array_agg(c.row_key ORDER BY c.row_index, c.col_index), array_agg(c.col_key ORDER BY c.row_index, c.col_index),
         array_agg(c.row_index ORDER BY c.row_index, c.col_index), array_agg(c.col_index ORDER BY c.row_index, c.col_index),
         array_agg(c.n ORDER BY c.row_index, c.col_index),
         array_agg(caredata.sdc_apply(c.n, policy) IS NULL ORDER BY c.row_index, c.col_index),
         max(c.col_index) = 1 AND bool_and(c.col_key IS NULL)
    INTO rkeys, ckeys, rows_, cols_, vals, prim, one_dim FROM caredata._sdc_table(cell_rows, cell_cols, cell_ns) c;
  IF coalesce(array_length(rows_, 1), 0) <= 1 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'the table has no cells',
      HINT = 'The query returns (row_key, col_key, n) for each interior cell; col_key NULL for a one-dimensional table.';
  END IF;
  supp := caredata.sdc_table_suppress(rows_, cols_, vals, prim, min_width);
  mark := caredata.sdc_display(NULL, policy);
  RETURN QUERY
  SELECT u.rk, u.ck, u.v,
         CASE WHEN u.s THEN mark ELSE caredata.sdc_display(u.v, policy) END,
         CASE WHEN u.p THEN 'primary' WHEN u.s THEN 'secondary' ELSE 'published' END
    FROM unnest(rkeys, ckeys, rows_, cols_, vals, prim, supp) u(rk, ck, ri, ci, v, p, s)
   -- a one-dimensional table is one column: its row totals repeat its cells
   WHERE NOT (one_dim AND u.ci = 0 AND u.ri > 0) AND NOT (one_dim AND u.ri = 0 AND u.ci = 1)
   ORDER BY u.ri = 0, u.rk, u.ci = 0, u.ck;
END
$$;
COMMENT ON FUNCTION caredata._sdc_protect(text[], text[], text[], text, bigint) IS
  'internal: caredata.sdc_protect() on the cells of its query (caredata._query_columns)';
CREATE FUNCTION caredata._sdc_audit(cell_rows text[], cell_cols text[], cell_ns text[], cell_suppressed text[], min_width bigint)
  RETURNS TABLE (row_key text, col_key text, n bigint, lower bigint, upper bigint, disclosed boolean)
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  rkeys text[];
  ckeys text[];
  rows_ integer[];
  cols_ integer[];
  vals bigint[];
  supp boolean[];
  given boolean[];
BEGIN
  -- the table as published, made whole: a cell the query lacks is a
  -- published 0 (GROUP BY gives no row for an empty cell); a margin it
  -- lacks (ROLLUP gives no column totals) is the sum of its cells and
  -- unpublished; a one-dimensional table (no column keys) is one column
  -- whose row totals are its cells
  EXECUTE $q$
    WITH c AS (SELECT x.row_key AS r, x.col_key AS k, x.n::bigint AS n, coalesce(x.suppressed::boolean, false) AS s
                 FROM unnest($1, $2, $3, $4) x(row_key, col_key, n, suppressed)),
         d AS (SELECT NOT EXISTS (SELECT 1 FROM c WHERE k IS NOT NULL) AS one),
         cc AS (SELECT r, CASE WHEN d.one AND r IS NOT NULL THEN '' ELSE k END AS k, n, s FROM c, d),
         rk AS (SELECT r, row_number() OVER (ORDER BY r)::integer AS i FROM (SELECT DISTINCT r FROM cc WHERE r IS NOT NULL) x),
         ck AS (SELECT k, row_number() OVER (ORDER BY k)::integer AS j FROM (SELECT DISTINCT k FROM cc WHERE k IS NOT NULL) x),
         inner_ AS (SELECT rk.r, ck.k, rk.i, ck.j, coalesce(cc.n, 0) AS n, coalesce(cc.s, false) AS s, cc.n IS NOT NULL AS g
                      FROM rk CROSS JOIN ck
                      LEFT JOIN cc ON cc.r = rk.r AND cc.k = ck.k),
         rows_t AS (SELECT rk.r, NULL::text AS k, rk.i, 0 AS j,
                           coalesce(cc.n, (SELECT sum(x.n) FROM inner_ x WHERE x.i = rk.i))::bigint AS n,
                           CASE WHEN d.one THEN (SELECT bool_or(x.s) FROM inner_ x WHERE x.i = rk.i)
                                ELSE coalesce(cc.s, true) END AS s, cc.r IS NOT NULL AS g
                      FROM rk CROSS JOIN d LEFT JOIN cc ON cc.r = rk.r AND cc.k IS NULL),
         cols_t AS (SELECT NULL::text AS r, ck.k, 0 AS i, ck.j,
                           coalesce(cc.n, (SELECT sum(x.n) FROM inner_ x WHERE x.j = ck.j))::bigint AS n,
                           CASE WHEN d.one THEN (SELECT bool_or(g.s) FROM cc g WHERE g.r IS NULL AND g.k IS NULL)
                                ELSE coalesce(cc.s, true) END AS s, cc.k IS NOT NULL AS g
                      FROM ck CROSS JOIN d LEFT JOIN cc ON cc.r IS NULL AND cc.k = ck.k),
         grand AS (SELECT NULL::text AS r, NULL::text AS k, 0 AS i, 0 AS j,
                          coalesce((SELECT g.n FROM cc g WHERE g.r IS NULL AND g.k IS NULL), (SELECT sum(x.n) FROM inner_ x))::bigint AS n,
                          coalesce((SELECT g.s FROM cc g WHERE g.r IS NULL AND g.k IS NULL), true) AS s,
                          EXISTS (SELECT 1 FROM cc g WHERE g.r IS NULL AND g.k IS NULL) AS g),
         t AS (SELECT * FROM inner_ UNION ALL SELECT * FROM rows_t UNION ALL SELECT * FROM cols_t UNION ALL SELECT * FROM grand)
    SELECT array_agg(r ORDER BY i, j), array_agg(CASE WHEN k = '' THEN NULL ELSE k END ORDER BY i, j),
           array_agg(i ORDER BY i, j), array_agg(j ORDER BY i, j),
           array_agg(n ORDER BY i, j), array_agg(s ORDER BY i, j), array_agg(g ORDER BY i, j) FROM t$q$
    INTO rkeys, ckeys, rows_, cols_, vals, supp, given USING cell_rows, cell_cols, cell_ns, cell_suppressed;
  IF rkeys IS NULL OR array_position(vals, NULL) IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'the published table has no cells',
      HINT = 'The query returns (row_key, col_key, n, suppressed) for each cell, NULL keys for the totals.';
  END IF;
  RETURN QUERY
  SELECT rkeys[b.cell], ckeys[b.cell], vals[b.cell], b.lower, b.upper, b.upper IS NOT NULL AND b.upper - b.lower < min_width
    FROM caredata.sdc_table_bounds(rows_, cols_, vals, supp) b
   -- the cells the query gave as suppressed (not the totals it left out)
   WHERE supp[b.cell] AND given[b.cell]
   ORDER BY rows_[b.cell] = 0, rkeys[b.cell], cols_[b.cell] = 0, ckeys[b.cell];
END
$$;
COMMENT ON FUNCTION caredata._sdc_audit(text[], text[], text[], text[], bigint) IS
  'internal: caredata.sdc_audit() on the cells of its query (caredata._query_columns)';
CREATE FUNCTION caredata._funnel(unit_keys text[], unit_nums text[], unit_dens text[], data_type text, method text,
                                 sr_method text, trim_by double precision, flag_limit numeric, policy text)
  RETURNS SETOF caredata.funnel_row
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  names text[];
  nums float8[];
  dens float8[];
  f caredata.funnel_fit;
  m text := lower(method);
  lm text;
BEGIN
  IF m IS NULL OR m NOT IN ('exact', 'normal', 'phi', 'tau2', 'unadjusted') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('unknown limit method "%s"', method),
      HINT = 'Use tau2 (additive random effects, the default), phi (multiplicative), exact, normal or unadjusted.';
  END IF;
  IF flag_limit IS NULL OR flag_limit NOT IN (95, 99.8) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'flag_limit is 95 or 99.8',
      HINT = 'A unit is an outlier beyond the limits of this level.';
  END IF;
  -- the units: the query's first three columns, one row per unit
  SELECT array_agg(x.u ORDER BY x.u), array_agg(x.n::float8 ORDER BY x.u), array_agg(x.d::float8 ORDER BY x.u)
    INTO names, nums, dens FROM unnest(unit_keys, unit_nums, unit_dens) AS x(u, n, d);
  IF names IS NULL THEN
    RETURN;
  END IF;
  f := (SELECT caredata.funnel_fit(n, d, data_type, sr_method, trim_by) FROM unnest(nums, dens) v(n, d));
  -- as FunnelPlotR: no over-dispersion (phi <= 1), unadjusted limits
  lm := CASE WHEN m = 'tau2' AND f.phi <= 1 THEN 'unadjusted' ELSE m END;
  -- What is shown of a unit is what the policy publishes of its counts:
  -- the numerator, and for PR and RC the denominator (for PR the cases
  -- without the event too).  The ratio, z and the limits shown are
  -- computed from the shown counts, so that none of them gives an exact
  -- count back (a limit at size n gives n back).  The band and the flag
  -- are the true counts': the true ratio against the limits at the true
  -- size (issue 24: a rounded count must not make or unmake an outlier).
  -- What a band tells of a protected count is in docs/variation.md.  A
  -- unit the policy suppresses keeps its row, and for SR its expected
  -- count and limits (not counts), but no band and no flag: a band of a
  -- count of 1 to suppress_max can pin it to one value.
  RETURN QUERY
  WITH u AS (
    SELECT v.u, v.n, v.d,
           caredata.sdc_apply(round(v.n)::bigint, policy)::float8 AS sn,
           CASE WHEN f.data_type = 'SR' THEN v.d ELSE caredata.sdc_apply(round(v.d)::bigint, policy)::float8 END AS sd,
           f.data_type = 'PR' AND caredata.sdc_apply(round(v.d - v.n)::bigint, policy) IS NULL AS rest_hidden
      FROM unnest(names, nums, dens) v(u, n, d)
  ), h AS (
    SELECT u.*, (sn IS NULL OR sd IS NULL OR sd <= 0 OR rest_hidden) AS hidden FROM u
  ), l AS (
    SELECT h.*, CASE WHEN hidden THEN d ELSE sd END AS size, CASE WHEN hidden THEN NULL ELSE sn / sd END AS y
      FROM h
  ), p AS (
    -- the limits shown, at the shown size; the band's, at the true size
    SELECT l.*,
           caredata.funnel_limit(f, l.size, 0.001, lm) AS l998, caredata.funnel_limit(f, l.size, 0.025, lm) AS l95,
           caredata.funnel_limit(f, l.size, 0.975, lm) AS u95, caredata.funnel_limit(f, l.size, 0.999, lm) AS u998,
           caredata.funnel_limit(f, l.d, 0.001, lm) AS t_l998, caredata.funnel_limit(f, l.d, 0.025, lm) AS t_l95,
           caredata.funnel_limit(f, l.d, 0.975, lm) AS t_u95, caredata.funnel_limit(f, l.d, 0.999, lm) AS t_u998
      FROM l
  ), q AS (
    SELECT p.*,
           CASE WHEN hidden THEN NULL
                WHEN n / d > t_u998 THEN 'above 99.8%' WHEN n / d > t_u95 THEN 'above 95%'
                WHEN n / d < t_l998 THEN 'below 99.8%' WHEN n / d < t_l95 THEN 'below 95%'
                ELSE 'within' END AS pos,
           -- what may be shown when the unit is suppressed: SR's expected count and limits (not counts)
           NOT hidden OR f.data_type = 'SR' AS show_size
      FROM p
  )
  SELECT q.u,
         CASE WHEN q.hidden THEN NULL ELSE q.sn END,
         CASE WHEN q.show_size THEN q.size END,
         q.y,
         CASE WHEN q.hidden THEN NULL ELSE caredata._funnel_z(f, q.sn, q.sd, lm) END,
         CASE WHEN q.show_size THEN q.l998 END, CASE WHEN q.show_size THEN q.l95 END,
         CASE WHEN q.show_size THEN q.u95 END, CASE WHEN q.show_size THEN q.u998 END,
         q.pos,
         CASE WHEN flag_limit = 95 THEN q.pos <> 'within' ELSE q.pos IN ('above 99.8%', 'below 99.8%') END,
         q.hidden, lm, f
    FROM q ORDER BY q.u;
END
$$;
COMMENT ON FUNCTION caredata._funnel(text[], text[], text[], text, text, text, double precision, numeric, text) IS
  'internal: caredata.funnel() on the units of its query (caredata._query_columns)';
CREATE FUNCTION caredata._funnel_svg(unit_keys text[], unit_nums text[], unit_dens text[], title text, data_type text,
                                     method text, sr_method text, trim_by double precision, flag_limit numeric,
                                     policy text, x_label text, y_label text)
  RETURNS text LANGUAGE plpgsql STABLE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  -- the canvas and the plot area, in pixels
  w constant int := 900;
  h constant int := 620;
  x0 constant float8 := 80;
  x1 constant float8 := 640;
  y0 constant float8 := 70;
  y1 constant float8 := 520;
  f caredata.funnel_fit;
  rs caredata.funnel_row[];
  lm text;
  xmax float8;
  xmin float8 := 0;
  ymin float8;
  ymax float8;
  xlo float8;
  svg text;
  curves text := '';
  pts text := '';
  labels text := '';
  axes text := '';
  hidden text;
  t float8;
  c record;
  line_pts text;
  colour text;
  style text;
BEGIN
  rs := ARRAY(SELECT r FROM caredata._funnel(unit_keys, unit_nums, unit_dens, data_type, method, sr_method, trim_by, flag_limit, policy) r);
  SELECT (r.fit).* INTO f FROM unnest(rs) r LIMIT 1;
  IF f.data_type IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'no units to plot',
      HINT = 'The query gives one row per unit: unit, numerator, denominator.';
  END IF;
  SELECT r.limits INTO lm FROM unnest(rs) r LIMIT 1;

  -- ranges: x from 0 to past the largest unit, y around the target and the points (FunnelPlotR's)
  SELECT max(denominator) * 1.05, least(0.7 * f.target, 0.9 * min(ratio)), greatest(1.3 * f.target, 1.1 * max(ratio))
    INTO xmax, ymin, ymax FROM unnest(rs);
  IF ymin IS NULL THEN ymin := 0.7 * f.target; ymax := 1.3 * f.target; END IF;
  IF f.data_type = 'PR' THEN ymin := greatest(0, ymin); ymax := least(1, ymax); END IF;
  IF f.data_type = 'PR' AND ymax <= ymin THEN ymax := ymin + 0.1; END IF;
  xlo := greatest(xmax / 2000, CASE WHEN f.data_type = 'PR' THEN 1 ELSE 0.1 END);

  -- the limit curves, on 240 sizes spaced evenly in sqrt(size) (the funnel narrows as 1/sqrt)
  FOR c IN SELECT * FROM (VALUES ('lower_998', 0.001, 'solid'), ('lower_95', 0.025, 'dashed'),
                                 ('upper_95', 0.975, 'dashed'), ('upper_998', 0.999, 'solid')) v(name, p, kind) LOOP
    SELECT string_agg(format('%s,%s', round((x0 + (sz - xmin) / (xmax - xmin) * (x1 - x0))::numeric, 2),
                                      round((y1 - (caredata.funnel_limit(f, sz, c.p, lm) - ymin) / (ymax - ymin) * (y1 - y0))::numeric, 2)),
                      ' ' ORDER BY sz)
      INTO line_pts
      FROM (SELECT DISTINCT CASE WHEN f.data_type = 'PR' THEN round(s)::float8 ELSE s END AS sz
              FROM (SELECT (sqrt(xlo) + k / 239.0 * (sqrt(xmax) - sqrt(xlo))) ^ 2 AS s FROM generate_series(0, 239) k) g) q;
    colour := CASE WHEN c.kind = 'solid' THEN '#5B3A8E' ELSE '#1F77B4' END;
    style := CASE WHEN c.kind = 'dashed' THEN ' stroke-dasharray="6 4"' ELSE '' END;
    curves := curves || format('<polyline class="limit" data-limit="%s" data-probability="%s" fill="none" stroke="%s" stroke-width="1.6"%s points="%s"/>',
                               c.name, c.p, colour, style, line_pts) || E'\n';
  END LOOP;

  -- axes: ticks, grid, labels
  FOREACH t IN ARRAY caredata._svg_ticks(xmin, xmax) LOOP
    axes := axes || format('<line x1="%1$s" y1="%2$s" x2="%1$s" y2="%3$s" stroke="#E5E5E5"/><text x="%1$s" y="%4$s" text-anchor="middle">%5$s</text>',
                           round((x0 + (t - xmin) / (xmax - xmin) * (x1 - x0))::numeric, 2), y0, y1, y1 + 18, t) || E'\n';
  END LOOP;
  FOREACH t IN ARRAY caredata._svg_ticks(ymin, ymax) LOOP
    axes := axes || format('<line x1="%2$s" y1="%1$s" x2="%3$s" y2="%1$s" stroke="#E5E5E5"/><text x="%4$s" y="%5$s" text-anchor="end">%6$s</text>',
                           round((y1 - (t - ymin) / (ymax - ymin) * (y1 - y0))::numeric, 2), x0, x1, x0 - 8,
                           round((y1 - (t - ymin) / (ymax - ymin) * (y1 - y0))::numeric + 4, 2), t) || E'\n';
  END LOOP;

  -- the units: points, outliers labelled
  FOR c IN SELECT * FROM unnest(rs) r WHERE NOT r.suppressed ORDER BY r.outlier, r.unit LOOP
    pts := pts || format('<circle class="unit%s" data-unit="%s" cx="%s" cy="%s" r="4.5" fill="%s" stroke="#333" stroke-width="0.6"><title>%s: %s %s (%s / %s), %s</title></circle>',
                         CASE WHEN c.outlier THEN ' outlier' ELSE '' END, caredata._svg_text(c.unit),
                         round((x0 + (c.denominator - xmin) / (xmax - xmin) * (x1 - x0))::numeric, 2),
                         round((y1 - (least(greatest(c.ratio, ymin), ymax) - ymin) / (ymax - ymin) * (y1 - y0))::numeric, 2),
                         CASE WHEN c.outlier THEN '#FF7F0E' ELSE '#9A9A9A' END,
                         caredata._svg_text(c.unit), CASE WHEN f.data_type = 'PR' THEN 'proportion' ELSE 'ratio' END,
                         round(c.ratio::numeric, 3), c.numerator, round(c.denominator::numeric, 1), c.band) || E'\n';
    IF c.outlier THEN
      labels := labels || format('<text class="label" x="%s" y="%s" font-weight="bold">%s</text>',
                                 round((x0 + (c.denominator - xmin) / (xmax - xmin) * (x1 - x0))::numeric + 7, 2),
                                 round((y1 - (least(greatest(c.ratio, ymin), ymax) - ymin) / (ymax - ymin) * (y1 - y0))::numeric - 7, 2),
                                 caredata._svg_text(c.unit)) || E'\n';
    END IF;
  END LOOP;
  SELECT string_agg(caredata._svg_text(r.unit), ', ' ORDER BY r.unit) INTO hidden FROM unnest(rs) r WHERE r.suppressed;

  svg := format('<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %1$s %2$s" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">', w, h) || E'\n'
    || format('<title>%s</title>', caredata._svg_text(title)) || E'\n'
    || format('<rect width="%s" height="%s" fill="#FFFFFF"/>', w, h) || E'\n'
    || format('<text x="%s" y="36" font-size="18" font-weight="bold">%s</text>', x0, caredata._svg_text(title)) || E'\n'
    || format('<defs><clipPath id="plot-area"><rect x="%s" y="%s" width="%s" height="%s"/></clipPath></defs>', x0, y0, x1 - x0, y1 - y0) || E'\n'
    || format('<g id="plot" data-x-min="%s" data-x-max="%s" data-y-min="%s" data-y-max="%s" data-px-left="%s" data-px-right="%s" data-px-top="%s" data-px-bottom="%s" data-method="%s" data-target="%s" data-phi="%s" data-tau2="%s">',
              xmin, xmax, ymin, ymax, x0, x1, y0, y1, lm, f.target, f.phi, f.tau2) || E'\n'
    || axes
    || format('<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#333"/>', x0, y0, x1 - x0, y1 - y0) || E'\n'
    || '<g clip-path="url(#plot-area)">' || E'\n'
    || format('<line class="target" x1="%s" y1="%s" x2="%s" y2="%2$s" stroke="#333" stroke-width="1.2"/>', x0,
              round((y1 - (f.target - ymin) / (ymax - ymin) * (y1 - y0))::numeric, 2), x1) || E'\n'
    || curves || '</g>' || E'\n' || pts || labels || '</g>' || E'\n'
    || format('<text x="%s" y="%s" text-anchor="middle" font-size="13">%s</text>', (x0 + x1) / 2, y1 + 42,
              caredata._svg_text(coalesce(x_label, CASE WHEN f.data_type = 'SR' THEN 'Expected events' ELSE 'Cases (denominator)' END))) || E'\n'
    || format('<text x="22" y="%s" text-anchor="middle" font-size="13" transform="rotate(-90 22 %1$s)">%s</text>', (y0 + y1) / 2,
              caredata._svg_text(coalesce(y_label, CASE f.data_type WHEN 'SR' THEN 'Standardised ratio (observed / expected)'
                                                                 WHEN 'PR' THEN 'Proportion' ELSE 'Ratio' END))) || E'\n'
    -- the legend
    || format('<g id="legend" transform="translate(%s %s)">', x1 + 24, y0 + 10) || E'\n'
    || '<line x1="0" y1="0" x2="28" y2="0" stroke="#333" stroke-width="1.2"/><text x="36" y="4">target</text>' || E'\n'
    || '<line x1="0" y1="22" x2="28" y2="22" stroke="#1F77B4" stroke-width="1.6" stroke-dasharray="6 4"/><text x="36" y="26">95% limits</text>' || E'\n'
    || '<line x1="0" y1="44" x2="28" y2="44" stroke="#5B3A8E" stroke-width="1.6"/><text x="36" y="48">99.8% limits</text>' || E'\n'
    || '<circle cx="14" cy="66" r="4.5" fill="#9A9A9A" stroke="#333" stroke-width="0.6"/><text x="36" y="70">unit</text>' || E'\n'
    || format('<circle cx="14" cy="88" r="4.5" fill="#FF7F0E" stroke="#333" stroke-width="0.6"/><text x="36" y="92">outlier (beyond %s%%)</text>', flag_limit) || E'\n'
    -- (the notes, wrapped to the legend's width: the canvas ends 236 px to its right)
    || (SELECT string_agg(format('<text class="legend-note" x="0" y="%s">%s</text>', 104 + 18 * n, caredata._svg_text(l)), E'\n' ORDER BY n)
          FROM unnest(caredata._svg_lines(format('%s units; target %s', (SELECT count(*) FROM unnest(rs)), round(f.target::numeric, 4)), 28)
                      || caredata._svg_lines(CASE lm WHEN 'tau2' THEN format('over-dispersed: tau2 = %s', round(f.tau2::numeric, 5))
                                                     WHEN 'phi' THEN format('over-dispersed: phi = %s', round(f.phi::numeric, 3))
                                                     WHEN 'exact' THEN 'exact limits'
                                                     WHEN 'unadjusted' THEN format('unadjusted limits (phi = %s: no over-dispersion)', round(f.phi::numeric, 3))
                                                     ELSE 'normal approximation' END, 28)) WITH ORDINALITY x(l, n)) || E'\n'
    || '</g>' || E'\n'
    || format('<text x="%s" y="%s" font-size="11" fill="#444">%s</text>', x0, y1 + 70,
              caredata._svg_text(CASE WHEN hidden IS NULL THEN 'Every unit is shown.'
                                      ELSE 'Not shown (small numbers, disclosure control): ' || hidden END)) || E'\n'
    -- the points are the published counts, the flags the true counts'
    || format('<text class="flag-note" x="%s" y="%s" font-size="11" fill="#444">%s</text>', x0, y1 + 86,
              'Points show the published counts; outliers are flagged on the true counts, so a point near a limit may sit on its other side.') || E'\n'
    || '</svg>' || E'\n';
  RETURN svg;
END
$$;
COMMENT ON FUNCTION caredata._funnel_svg(text[], text[], text[], text, text, text, text, double precision, numeric, text, text, text) IS
  'internal: caredata.funnel_svg() on the units of its query (caredata._query_columns)';
CREATE OR REPLACE FUNCTION caredata.sdc_protect(cells text, policy text DEFAULT NULL, min_width bigint DEFAULT 1)
  RETURNS TABLE (row_key text, col_key text, n bigint, shown text, suppression text)
  LANGUAGE sql STABLE
BEGIN ATOMIC
  SELECT p.* FROM caredata._query_columns(cells, 3) q,
                  caredata._sdc_protect(q.c1, q.c2, q.c3, sdc_protect.policy, sdc_protect.min_width) p;
END;
CREATE OR REPLACE FUNCTION caredata.sdc_audit(cells text, min_width bigint DEFAULT 1)
  RETURNS TABLE (row_key text, col_key text, n bigint, lower bigint, upper bigint, disclosed boolean)
  LANGUAGE sql STABLE
BEGIN ATOMIC
  SELECT a.* FROM caredata._query_columns(cells, 4) q,
                  caredata._sdc_audit(q.c1, q.c2, q.c3, q.c4, sdc_audit.min_width) a;
END;
CREATE OR REPLACE FUNCTION caredata.funnel(units text, data_type text DEFAULT 'SR', method text DEFAULT 'tau2',
                                sr_method text DEFAULT 'SHMI', trim_by double precision DEFAULT 0.1,
                                flag_limit numeric DEFAULT 99.8, policy text DEFAULT NULL)
  RETURNS SETOF caredata.funnel_row
  LANGUAGE sql STABLE PARALLEL UNSAFE
BEGIN ATOMIC
  SELECT f.* FROM caredata._query_columns(units, 3) q,
                  caredata._funnel(q.c1, q.c2, q.c3, funnel.data_type, funnel.method, funnel.sr_method,
                                   funnel.trim_by, funnel.flag_limit, funnel.policy) f;
END;
CREATE OR REPLACE FUNCTION caredata.funnel_svg(units text, title text DEFAULT 'Funnel plot', data_type text DEFAULT 'SR',
                                    method text DEFAULT 'tau2', sr_method text DEFAULT 'SHMI',
                                    trim_by double precision DEFAULT 0.1, flag_limit numeric DEFAULT 99.8,
                                    policy text DEFAULT NULL, x_label text DEFAULT NULL, y_label text DEFAULT NULL)
  RETURNS text LANGUAGE sql STABLE PARALLEL UNSAFE
BEGIN ATOMIC
  SELECT caredata._funnel_svg(q.c1, q.c2, q.c3, funnel_svg.title, funnel_svg.data_type, funnel_svg.method,
                              funnel_svg.sr_method, funnel_svg.trim_by, funnel_svg.flag_limit, funnel_svg.policy,
                              funnel_svg.x_label, funnel_svg.y_label)
    FROM caredata._query_columns(units, 3) q;
END;

-- ---------------------------------------------------------------------------
-- issue 22, section 9: one patient, one pseudonym (src/keys/pseudonym.c, .sql).
-- pseudonymise(text, ...) and pseudonymise(bigint, ...) are now the NHS-number
-- path: the text (any layout nhs_number_in accepts) or the bigint is read as
-- an NHS number, refused if invalid, and gives the nhs_number's token.
-- Arbitrary identifiers take the new pseudonymise_identifier().
-- What changes for stored pseudonyms:
--   * made from nhs_number (pseudonym_map, refresh_pseudonyms, published
--     views, linkage, the demo): nothing; the same tokens.
--   * made by 0.1.0's pseudonymise(text, ...) or pseudonymise(bigint, ...):
--     still valid pseudonyms, and pseudonymise_identifier(text, ...) and
--     pseudonymise_identifier(bigint, ...) give exactly these tokens again
--     (the same 'T' and 'B' messages); pseudonymise(text|bigint, ...) now
--     gives the NHS number's token instead, and refuses an invalid number.
--     Nothing of caredata's own stores such tokens, so nothing is rewritten.
-- The C functions behind the existing signatures change with the library;
-- the catalog changes are the comments and the new functions.
COMMENT ON FUNCTION caredata.pseudonymise(bigint, text) IS
  'keyed pseudonym of an NHS number given as bigint (refused if invalid; the same token as the nhs_number), at the current key version';
COMMENT ON FUNCTION caredata.pseudonymise(bigint, text, integer) IS
  'keyed pseudonym of an NHS number given as bigint (refused if invalid; the same token as the nhs_number), at a given key version';
COMMENT ON FUNCTION caredata.pseudonymise(text, text) IS
  'keyed pseudonym of an NHS number given as text in any accepted layout (refused if invalid; the same token as the nhs_number), at the current key version';
COMMENT ON FUNCTION caredata.pseudonymise(text, text, integer) IS
  'keyed pseudonym of an NHS number given as text in any accepted layout (refused if invalid; the same token as the nhs_number), at a given key version';
CREATE FUNCTION caredata.pseudonymise_identifier(value bigint, domain text) RETURNS caredata.pseudonym
  AS 'MODULE_PATHNAME', 'pseudonymise_identifier_int8' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.pseudonymise_identifier(value bigint, domain text, version integer) RETURNS caredata.pseudonym
  AS 'MODULE_PATHNAME', 'pseudonymise_identifier_int8' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.pseudonymise_identifier(value text, domain text) RETURNS caredata.pseudonym
  AS 'MODULE_PATHNAME', 'pseudonymise_identifier_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION caredata.pseudonymise_identifier(value text, domain text, version integer) RETURNS caredata.pseudonym
  AS 'MODULE_PATHNAME', 'pseudonymise_identifier_text' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.pseudonymise_identifier(bigint, text) IS
  'keyed pseudonym of a bigint identifier (not an NHS number: never its token) in a domain, at its current key version';
COMMENT ON FUNCTION caredata.pseudonymise_identifier(bigint, text, integer) IS
  'keyed pseudonym of a bigint identifier (not an NHS number: never its token) in a domain at a given (not retired) key version';
COMMENT ON FUNCTION caredata.pseudonymise_identifier(text, text) IS
  'keyed pseudonym of a text identifier, its bytes exactly (not an NHS number: never its token), in a domain at its current key version';
COMMENT ON FUNCTION caredata.pseudonymise_identifier(text, text, integer) IS
  'keyed pseudonym of a text identifier, its bytes exactly (not an NHS number: never its token), in a domain at a given (not retired) key version';
REVOKE ALL ON FUNCTION
  caredata.pseudonymise_identifier(bigint, text), caredata.pseudonymise_identifier(bigint, text, integer),
  caredata.pseudonymise_identifier(text, text), caredata.pseudonymise_identifier(text, text, integer)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  caredata.pseudonymise_identifier(bigint, text), caredata.pseudonymise_identifier(bigint, text, integer),
  caredata.pseudonymise_identifier(text, text), caredata.pseudonymise_identifier(text, text, integer)
  TO caredata_linker, caredata_admin;

-- ---------------------------------------------------------------------------
-- issue 22, section 8: a server that did not preload caredata refuses at
-- once (src/base/preload.h, src/caredata.sql).  permitted(), row_permitted() and
-- my_nhs_number() refuse in C; writes to the register and protect() refuse
-- through the statement triggers below; the update, like CREATE EXTENSION,
-- warns.  No data changes.
CREATE FUNCTION caredata.preloaded() RETURNS boolean
  AS 'MODULE_PATHNAME', 'caredata_is_preloaded' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.preloaded() IS
  'true when this server loaded caredata at start (shared_preload_libraries), as the objection filter, the register and the keyed functions require';
CREATE FUNCTION caredata.require_preload() RETURNS void
  AS 'MODULE_PATHNAME', 'caredata_require_preload_sql' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.require_preload() IS
  'raises an error (55000, with a hint naming shared_preload_libraries) unless this server loaded caredata at start';
CREATE FUNCTION caredata._require_preload_trigger() RETURNS trigger
  AS 'MODULE_PATHNAME', 'caredata_require_preload_trigger' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._require_preload_trigger() IS
  'trigger: refuses writes to the objection register and protected_table unless caredata was loaded at server start';
REVOKE ALL ON FUNCTION caredata._require_preload_trigger() FROM PUBLIC;
CREATE TRIGGER objection_requires_preload BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON caredata.objection
  FOR EACH STATEMENT EXECUTE FUNCTION caredata._require_preload_trigger();
CREATE TRIGGER exemption_requires_preload BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON caredata.exemption
  FOR EACH STATEMENT EXECUTE FUNCTION caredata._require_preload_trigger();
COMMENT ON TRIGGER objection_requires_preload ON caredata.objection IS
  'objections are recorded only where caredata was loaded at server start (the filter that honours them needs it)';
COMMENT ON TRIGGER exemption_requires_preload ON caredata.exemption IS
  'exemptions are recorded only where caredata was loaded at server start (the filter that honours them needs it)';
CREATE TRIGGER protected_table_requires_preload BEFORE INSERT ON caredata.protected_table
  FOR EACH STATEMENT EXECUTE FUNCTION caredata._require_preload_trigger();
COMMENT ON TRIGGER protected_table_requires_preload ON caredata.protected_table IS
  'tables are protected only where caredata was loaded at server start (the filter needs it)';
DO $$
BEGIN
  IF NOT caredata.preloaded() THEN
    RAISE WARNING 'caredata was not loaded at server start'
      USING DETAIL = 'The objection filter, the objection register and the keyed functions refuse to run until it is.',
            HINT = 'Add caredata to shared_preload_libraries in postgresql.conf and restart the server.';
  END IF;
END
$$;


-- ---- issue 22, sections 2 and 3: re-identification committed before it
-- answers (a background worker, src/publication/reidentify.c), the audit head's own
-- forward-only guard, triggers that fire ALWAYS (session_replication_role
-- = replica no longer gets past them), and the witness in the server log
-- (src/publication/audit.c) with audit_verify(expected_id, expected_hash) ----
CREATE FUNCTION caredata._audit_witness(id bigint, hash bytea) RETURNS void
  AS 'MODULE_PATHNAME', 'caredata_audit_witness' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._audit_witness(bigint, bytea) IS
  'internal: write this audit head (id and hash, nothing else) to the server log when the transaction commits';
CREATE FUNCTION caredata._audit_append_as(actor name, action text, object text, detail jsonb,
                                          justification text) RETURNS bigint
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  h caredata.audit_head;
  v_id bigint;
  v_at timestamptz := pg_catalog.clock_timestamp();
  v_hash bytea;
BEGIN
  PERFORM caredata._coordinator_only('caredata.audit_append()');
  IF action IS NULL OR action OPERATOR(pg_catalog.!~) '^[a-z][a-z_.]{0,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an audit action is lower-case words joined by . or _',
      HINT = 'For example domain.create or linkage.run.';
  END IF;
  IF actor IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'an audit entry needs its login';
  END IF;
  INSERT INTO caredata.audit_head VALUES (true, 0, '\x'::bytea) ON CONFLICT DO NOTHING;
  SELECT * INTO h FROM caredata.audit_head WHERE one FOR UPDATE;
  v_id := h.last_id OPERATOR(pg_catalog.+) 1;
  v_hash := pg_catalog.sha256(h.last_hash OPERATOR(pg_catalog.||)
                              caredata._audit_text(v_id, v_at, actor, action, object, detail, justification));
  INSERT INTO caredata.audit_log (id, at, actor, action, object, detail, justification, prev_hash, hash)
  VALUES (v_id, v_at, actor, action, object, detail, justification, h.last_hash, v_hash);
  UPDATE caredata.audit_head SET last_id = v_id, last_hash = v_hash WHERE one;
  PERFORM caredata._audit_witness(v_id, v_hash);
  RETURN v_id;
END
$$;
COMMENT ON FUNCTION caredata._audit_append_as(name, text, text, jsonb, text) IS
  'internal: append an audit entry in the name of the given login (audit_append and the re-identification worker); returns its id';
CREATE FUNCTION caredata.audit_verify(expected_id bigint, expected_hash bytea) RETURNS boolean
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  found_hash bytea;
BEGIN
  IF expected_id IS NULL OR expected_hash IS NULL OR expected_id OPERATOR(pg_catalog.<) 1 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a witness is an audit entry id (1 or more) and its hash',
      HINT = 'Take both from a "caredata audit head" line of the server log, or from a copy of caredata.audit_head.';
  END IF;
  IF NOT caredata.audit_verify() THEN
    RETURN false;
  END IF;
  SELECT a.hash INTO found_hash FROM caredata.audit_log a WHERE a.id OPERATOR(pg_catalog.=) expected_id;
  IF NOT FOUND THEN
    RAISE NOTICE 'audit entry % named by the witness is missing: the log was cut back', expected_id;
    RETURN false;
  END IF;
  IF found_hash OPERATOR(pg_catalog.<>) expected_hash THEN
    RAISE NOTICE 'audit entry % is not the one the witness names: the log was rewritten', expected_id;
    RETURN false;
  END IF;
  RETURN true;
END
$$;
COMMENT ON FUNCTION caredata.audit_verify(bigint, bytea) IS
  'true while the audit log''s hash chain is intact and still holds the entry a witness kept outside the database names (its id and hash, from the server log''s "caredata audit head" lines); false, with a NOTICE, when the log was cut back or rewritten';
CREATE FUNCTION caredata._audit_head_forward() RETURNS trigger
  LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.last_id OPERATOR(pg_catalog.<=) OLD.last_id THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'the audit head only moves forward',
      HINT = 'Entries are added by caredata.audit_append() and never removed.';
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION caredata._audit_head_forward() IS 'internal: refuses moving the audit head back';
CREATE TRIGGER audit_head_forward BEFORE UPDATE ON caredata.audit_head
  FOR EACH ROW EXECUTE FUNCTION caredata._audit_head_forward();
ALTER TABLE caredata.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE caredata.audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;
ALTER TABLE caredata.audit_head ENABLE ALWAYS TRIGGER audit_head_no_truncate;
ALTER TABLE caredata.audit_head ENABLE ALWAYS TRIGGER audit_head_forward;
REVOKE ALL ON FUNCTION caredata.audit_verify(bigint, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.audit_verify(bigint, bytea) TO caredata_admin;
REVOKE ALL ON FUNCTION caredata._audit_witness(bigint, bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION caredata._audit_append_as(name, text, text, jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION caredata._audit_head_forward() FROM PUBLIC;
CREATE FUNCTION caredata._reidentify_commit(actor name, pseudonym caredata.pseudonym, justification text,
                                            per_hour integer)
  RETURNS TABLE (entry_id bigint, nhs_number caredata.nhs_number)
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  used bigint;
  v_nhs caredata.nhs_number;
  dom text;
BEGIN
  INSERT INTO caredata.audit_head VALUES (true, 0, '\x'::bytea) ON CONFLICT DO NOTHING;
  PERFORM 1 FROM caredata.audit_head h WHERE h.one FOR UPDATE;
  SELECT pg_catalog.count(*) INTO used FROM caredata.audit_log a
   WHERE a.action OPERATOR(pg_catalog.=) 'reidentify' AND a.actor OPERATOR(pg_catalog.=) actor
     AND a.at OPERATOR(pg_catalog.>) (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) interval '1 hour');
  IF used OPERATOR(pg_catalog.>=) per_hour THEN
    RAISE EXCEPTION USING ERRCODE = '54000',
      MESSAGE = pg_catalog.format('re-identification limit reached: %s in the last hour', used),
      HINT = 'caredata.reidentify_per_hour sets the limit per login (superuser-only).';
  END IF;
  SELECT m.nhs_number, m.domain INTO v_nhs, dom FROM caredata.pseudonym_map m
   WHERE m.pseudonym OPERATOR(caredata.=) pseudonym;
  -- audited, found or not (the entry names the pseudonym, never the NHS number)
  entry_id := caredata._audit_append_as(actor, 'reidentify', pseudonym::text,
    pg_catalog.jsonb_build_object('domain', dom, 'found', v_nhs IS NOT NULL), justification);
  nhs_number := v_nhs;
  RETURN NEXT;
END
$$;
COMMENT ON FUNCTION caredata._reidentify_commit(name, caredata.pseudonym, text, integer) IS
  'internal: run by the re-identification worker in a transaction of its own: checks the login''s hourly limit, looks the pseudonym up and appends the audit entry';

-- in the caller's backend: starts the worker, waits for it, and answers only
-- if it committed (the caller's login is the actor; the worker connects as
-- the current user, which inside reidentify() is the extension's owner)
CREATE FUNCTION caredata._reidentify_committed(pseudonym caredata.pseudonym, justification text)
  RETURNS text
  AS 'MODULE_PATHNAME', 'caredata_reidentify_committed' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._reidentify_committed(caredata.pseudonym, text) IS
  'internal: re-identify through the worker that commits the audit entry first; NULL when the pseudonym is unknown, an error (and no answer) when the entry could not be committed';
CREATE OR REPLACE FUNCTION caredata.reidentify(pseudonym caredata.pseudonym, justification text)
  RETURNS caredata.nhs_number
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF pg_catalog.length(pg_catalog.btrim(coalesce(justification, ''))) OPERATOR(pg_catalog.<) 20 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a re-identification needs a justification',
      HINT = 'Say why, in at least 20 characters (the legal basis and the case reference); it is kept in the audit log.';
  END IF;
  PERFORM caredata._coordinator_only('caredata.reidentify()');
  RETURN caredata._reidentify_committed(pseudonym, justification)::caredata.nhs_number;
END
$$;
COMMENT ON FUNCTION caredata.reidentify(caredata.pseudonym, text) IS
  'the NHS number behind a published pseudonym (NULL when there is none), for caredata_reidentifier only: needs a justification of 20 characters or more; its audit entry is committed (by a background worker, in a transaction of its own) before it answers, whatever the caller''s transaction does next; at most caredata.reidentify_per_hour times an hour per login';
REVOKE ALL ON FUNCTION caredata.reidentify(caredata.pseudonym, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.reidentify(caredata.pseudonym, text) TO caredata_reidentifier;
REVOKE ALL ON FUNCTION caredata._reidentify_commit(name, caredata.pseudonym, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION caredata._reidentify_committed(caredata.pseudonym, text) FROM PUBLIC;

-- ---------------------------------------------------------------------
-- issue 22, section 5: a table's owner cannot weaken its filter
-- (src/objection/protection.c, src/objection/protect.sql).  unprotect() takes the
-- tables off the list before its DDL and copes with a weakened filter; the
-- DDL guards, the list's trigger, filter_weakness() and protection_status.
-- ---------------------------------------------------------------------
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

-- the state of the filters: the register's admins', as protected_table is
REVOKE ALL ON FUNCTION caredata._protected_table_changed(), caredata._protection_guard(),
  caredata._protection_drop_guard(), caredata.filter_weakness(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.filter_weakness(regclass) TO caredata_admin;
REVOKE ALL ON caredata.protection_status FROM PUBLIC;
GRANT SELECT ON caredata.protection_status TO caredata_admin;


-- ---------------------------------------------------------------------
-- issue 22, section 10: publish() and its recipients (docs/publication.md).
-- A spec releases no direct identifier; a recipient is no member, however
-- indirect, of a role that holds identifiers, nor a superuser or BYPASSRLS
-- role, and is checked again when it reads; publish() no longer sets the
-- recipient's search_path; security_invoker is read in every spelling; a
-- published view's definition and comment name no recipient, domain or
-- dataset.  Publications made by 0.1.0 that break the new rules stop the
-- update (unpublish them first); their views keep their definition until
-- caredata.republish(), but lose the comment naming their recipient, and
-- the search_path 0.1.0 set for every database moves to this one, with
-- caredata ahead of public.
-- ---------------------------------------------------------------------
-- What a published view may read.  It is owned by the extension's owner,
-- which reads past every privilege, so its source must read with its own
-- owner's rights: a table, a partitioned table, a materialized view or a
-- plain view, not a security_invoker view (which would read as the
-- superuser) nor a foreign table (whose user mapping would be the
-- superuser's).  NULL when the source is fine, else the reason.
-- security_invoker is read as PostgreSQL reads it (parse_bool: any case,
-- any prefix of true/yes, on, 1): a view counts as security_invoker unless
-- its option spells false (a prefix of false or no, of, off, 0), so a
-- spelling this list misses fails closed.
CREATE OR REPLACE FUNCTION caredata._publication_source_problem(source regclass) RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE
    WHEN c.oid IS NULL THEN 'it no longer exists'
    WHEN c.relkind OPERATOR(pg_catalog.<>) ALL (ARRAY['r', 'p', 'm', 'v']::"char"[]) THEN 'it is not a table, a materialized view or a view'
    WHEN c.relkind OPERATOR(pg_catalog.=) 'v' AND EXISTS (
           SELECT 1 FROM pg_catalog.pg_options_to_table(c.reloptions) o
            WHERE pg_catalog.lower(o.option_name) OPERATOR(pg_catalog.=) 'security_invoker'
              AND NOT pg_catalog.lower(pg_catalog.btrim(o.option_value)) OPERATOR(pg_catalog.=)
                      ANY (ARRAY['f', 'fa', 'fal', 'fals', 'false', 'n', 'no', 'of', 'off', '0']))
      THEN 'it is a security_invoker view'
  END
  FROM (SELECT source::oid AS oid) x LEFT JOIN pg_catalog.pg_class c USING (oid)
$$;
COMMENT ON FUNCTION caredata._publication_source_problem(regclass) IS
  'internal: why a relation cannot be a publication''s source (NULL when it can): not a table, materialized view or plain view, or a security_invoker view (in any spelling PostgreSQL accepts)';

-- Who may never be a recipient: a role that can read identifiers or the
-- register by other means, so that it could join a published view back to
-- NHS numbers.  Membership counts however it is held, directly or through
-- other roles, with or without INHERIT (pg_has_role ... MEMBER); superusers
-- and BYPASSRLS roles read past every filter.  NULL when the role may be a
-- recipient, else why not.
CREATE FUNCTION caredata._recipient_problem(recipient name) RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE
    WHEN r.oid IS NULL THEN 'does not exist'
    WHEN r.rolsuper THEN 'is a superuser'
    WHEN r.rolbypassrls THEN 'bypasses row-level security'
    ELSE (SELECT pg_catalog.format('is a member of %s', g.name)
            FROM pg_catalog.unnest(ARRAY['caredata_admin', 'caredata_linker', 'caredata_reidentifier', 'caredata_patient',
                                         'pg_read_all_data', 'pg_write_all_data']) WITH ORDINALITY g(name, n)
           WHERE pg_catalog.to_regrole(g.name) IS NOT NULL
             AND pg_catalog.pg_has_role(r.oid, pg_catalog.to_regrole(g.name)::oid, 'MEMBER')
           ORDER BY g.n LIMIT 1)
  END
  FROM (SELECT recipient) x LEFT JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) x.recipient
$$;
COMMENT ON FUNCTION caredata._recipient_problem(name) IS
  'internal: why a role cannot be a publication''s recipient (NULL when it can): a superuser, BYPASSRLS, or a member, however indirect, of caredata_admin, caredata_linker, caredata_reidentifier, caredata_patient, pg_read_all_data or pg_write_all_data';

-- and checked again each time a published view is read (one InitPlan per
-- query): a recipient, or a login in the recipient's role, that has since
-- joined one of those roles is refused, never shown the rows.  Superusers
-- read everything anyway.  It answers about the reader alone.
CREATE FUNCTION caredata._published_reader() RETURNS boolean
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  why text;
BEGIN
  IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
    RETURN true;
  END IF;
  why := caredata._recipient_problem(current_user);
  IF why IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = pg_catalog.format('role "%s" cannot read a published view', current_user),
      DETAIL = pg_catalog.format('Role "%s" %s, and could join the view to identifiers.', current_user, why),
      HINT = 'Read published views as a role that holds no identifiers; see docs/publication.md.';
  END IF;
  RETURN true;
END
$$;
COMMENT ON FUNCTION caredata._published_reader() IS
  'internal: true when the current role may read a published view; refuses (42501) a role that is, or has become, unfit to be a recipient (see _recipient_problem)';

-- Direct identifiers, which a publication never releases: the NHS number,
-- a full date of birth, a full postcode, names, addresses, telephone
-- numbers and e-mail addresses.  A column is taken for one by its type
-- (caredata.nhs_number), by what caredata.link_add_source() declared it, or
-- by its name; _publication_view() also looks at its values
-- (_direct_identifier_values).  Releasing one needs an approved release
-- (an approval register, to come), never a spec.  NULL when the column is
-- not one, else what it is.
CREATE FUNCTION caredata._direct_identifier(source regclass, col name) RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE
    WHEN a.atttypid OPERATOR(pg_catalog.=) 'caredata.nhs_number'::regtype::oid
      OR EXISTS (SELECT 1 FROM caredata.link_source l WHERE l.relation OPERATOR(pg_catalog.=) _direct_identifier.source AND l.nhs_number OPERATOR(pg_catalog.=) col)
      OR n.s OPERATOR(pg_catalog.~) '(^|_)nhs_?(no|num|number)s?(_|$)'
      THEN 'an NHS number'
    WHEN EXISTS (SELECT 1 FROM caredata.link_source l WHERE l.relation OPERATOR(pg_catalog.=) _direct_identifier.source AND l.dob OPERATOR(pg_catalog.=) col)
      OR n.s OPERATOR(pg_catalog.~) '(^|_)dob(_|$)'
      OR pg_catalog.replace(n.s, '_', '') OPERATOR(pg_catalog.~) '(dateofbirth|birthdate|birthdt|dtofbirth|birthday)'
      THEN 'a full date of birth'
    WHEN EXISTS (SELECT 1 FROM caredata.link_source l WHERE l.relation OPERATOR(pg_catalog.=) _direct_identifier.source AND l.postcode OPERATOR(pg_catalog.=) col)
      OR (pg_catalog.replace(n.s, '_', '') OPERATOR(pg_catalog.~) '(postcode|zipcode|^zip$|^pcode$)'
          AND NOT n.s OPERATOR(pg_catalog.~) '(area|district|sector|outward|outcode|prefix|region)')
      THEN 'a full postcode'
    WHEN n.s OPERATOR(pg_catalog.~) '^(names?|forenames?|surnames?|firstnames?|lastnames?|givennames?|familynames?|fullnames?|middlenames?|maidennames?|initials)$'
      OR n.s OPERATOR(pg_catalog.~) '(^|_)(forenames?|surnames?|firstnames?|lastnames?|givennames?|familynames?|fullnames?|middlenames?|maidennames?)(_|$)'
      OR n.s OPERATOR(pg_catalog.~) '(^|_)(first|last|given|family|full|middle|maiden|patient|person|preferred|birth)_names?(_|$)'
      THEN 'a name'
    WHEN n.s OPERATOR(pg_catalog.~) '(^|_)(addr|address|addresses|addressline\d*|addr\d+|address\d+|street|streetname|houseno|housenumber|housename)(_|$)'
      THEN 'an address'
    WHEN n.s OPERATOR(pg_catalog.~) '(^|_)(email|e_mail|phone|phoneno|telephone|tel|telno|mobileno)(_|$)'
      OR pg_catalog.replace(n.s, '_', '') OPERATOR(pg_catalog.~) '(emailaddress|phonenumber|telephonenumber|mobilenumber)'
      THEN 'a telephone number or e-mail address'
  END
  FROM (SELECT pg_catalog.lower(pg_catalog.regexp_replace(col, '[^A-Za-z0-9]+', '_', 'g')) AS s) n
  LEFT JOIN pg_catalog.pg_attribute a
    ON a.attrelid OPERATOR(pg_catalog.=) _direct_identifier.source AND a.attname OPERATOR(pg_catalog.=) col AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION caredata._direct_identifier(regclass, name) IS
  'internal: what direct identifier a source column is (an NHS number, a full date of birth, a full postcode, a name, an address, a telephone number or e-mail address), by its type, its linkage declaration or its name; NULL when none';

-- and by its values: a column most of whose first values are valid NHS
-- numbers or full postcodes is one, whatever its name (run only by
-- _publication_view(), hence PARALLEL UNSAFE like it)
CREATE FUNCTION caredata._direct_identifier_values(source regclass, col name) RETURNS text
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n bigint;
  nhs bigint;
  pc bigint;
BEGIN
  EXECUTE pg_catalog.format($q$
    SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE caredata.try_nhs_number(v) IS NOT NULL),
           pg_catalog.count(*) FILTER (WHERE caredata.try_normalise_postcode(v) IS NOT NULL)
      FROM (SELECT s.%I::text AS v FROM %s s WHERE s.%I IS NOT NULL LIMIT 200) x$q$, col, source, col)
    INTO n, nhs, pc;
  RETURN CASE
    WHEN n OPERATOR(pg_catalog.=) 0 THEN NULL
    WHEN nhs OPERATOR(pg_catalog.*) 2 OPERATOR(pg_catalog.>) n THEN 'an NHS number'
    WHEN pc OPERATOR(pg_catalog.*) 2 OPERATOR(pg_catalog.>) n THEN 'a full postcode'
  END;
END
$$;
COMMENT ON FUNCTION caredata._direct_identifier_values(regclass, name) IS
  'internal: ''an NHS number'' or ''a full postcode'' when most of a column''s first 200 values are one, else NULL';

-- the treatments that generalise a direct identifier enough to publish
CREATE FUNCTION caredata._identifier_treatment_ok(what text, how text) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE what
    WHEN 'a full date of birth' THEN how OPERATOR(pg_catalog.=) ANY (ARRAY['month', 'quarter', 'year', 'year_of_birth', 'age_band'])
    WHEN 'a full postcode' THEN how OPERATOR(pg_catalog.=) ANY (ARRAY['district', 'sector', 'area'])
    ELSE false
  END
$$;
COMMENT ON FUNCTION caredata._identifier_treatment_ok(text, text) IS
  'internal: whether a treatment publishes a direct identifier generalised (a date of birth as month, year or age band; a postcode as district or sector)';

-- (caredata._publication_check: replaced again below)
-- (caredata._publication_view: replaced again below)

REVOKE ALL ON FUNCTION caredata._direct_identifier(regclass, name), caredata._direct_identifier_values(regclass, name),
  caredata._identifier_treatment_ok(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata._direct_identifier(regclass, name), caredata._identifier_treatment_ok(text, text) TO caredata_admin;
-- the reader check runs as each reader of a published view: _publication_view()
-- grants it to the view's recipient (it answers about the caller alone)
REVOKE ALL ON FUNCTION caredata._recipient_problem(name), caredata._published_reader() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata._recipient_problem(name), caredata._published_reader() TO caredata_admin;

COMMENT ON FUNCTION caredata.publish(text, regclass, jsonb, name) IS
  'publish a source to one recipient as published.<name>: spec {"domain", "purpose", "dataset"?, "nhs_column"? (default nhs_number), "columns": {column: keep|month|year|year_of_birth|age_band|district|sector}}; the NHS number becomes the recipient''s stored pseudonym, other columns are dropped, objectors for the purpose are filtered out; direct identifiers and recipients that hold identifiers are refused; audited';

DO $publish_22$
DECLARE
  p record;
  c record;
  bad text := '';
  old_path text := 'search_path="$user", public, published, caredata';
BEGIN
  FOR p IN SELECT x.name, x.recipient, x.source, x.spec FROM caredata.publication x ORDER BY x.name LOOP
    IF caredata._recipient_problem(p.recipient) IS NOT NULL THEN
      bad := bad || pg_catalog.format(' %s (its recipient %s);', p.name, caredata._recipient_problem(p.recipient));
    END IF;
    FOR c IN SELECT key, value FROM pg_catalog.jsonb_each_text(p.spec OPERATOR(pg_catalog.->) 'columns') LOOP
      IF caredata._direct_identifier(p.source, c.key) IS NOT NULL
         AND NOT caredata._identifier_treatment_ok(caredata._direct_identifier(p.source, c.key), c.value) THEN
        bad := bad || pg_catalog.format(' %s (column %s is %s);', p.name, c.key, caredata._direct_identifier(p.source, c.key));
      END IF;
    END LOOP;
  END LOOP;
  IF bad OPERATOR(pg_catalog.<>) '' THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'publications release direct identifiers or go to privileged recipients',
      DETAIL = 'Publications:' || bad,
      HINT = 'Unpublish them (caredata.unpublish(name)) before updating, and publish them again generalised or to another role; an identifiable release needs an approved release (to come).';
  END IF;
  FOR p IN SELECT DISTINCT x.recipient FROM caredata.publication x LOOP
    -- 0.1.0's search_path, set for every database, public ahead of caredata
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_db_role_setting s
                WHERE s.setrole OPERATOR(pg_catalog.=) (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) p.recipient)
                  AND s.setdatabase OPERATOR(pg_catalog.=) 0 AND old_path OPERATOR(pg_catalog.=) ANY (s.setconfig)) THEN
      EXECUTE pg_catalog.format('ALTER ROLE %I RESET search_path', p.recipient);
      EXECUTE pg_catalog.format('ALTER ROLE %I IN DATABASE %I SET search_path = "$user", caredata, published, public',
                                p.recipient, pg_catalog.current_database());
    END IF;
  END LOOP;
  FOR p IN SELECT x.name FROM caredata.publication x LOOP
    IF pg_catalog.to_regclass(pg_catalog.format('published.%I', p.name)) IS NOT NULL THEN
      EXECUTE pg_catalog.format('COMMENT ON VIEW published.%I IS %L', p.name,
                                'caredata publication: a de-identified, objection-filtered view for its recipient alone');
    END IF;
    IF pg_catalog.to_regclass(pg_catalog.format('published.%I', '_query_' || pg_catalog.substr(pg_catalog.md5(p.name), 1, 12))) IS NOT NULL THEN
      EXECUTE pg_catalog.format('COMMENT ON VIEW published.%I IS %L', '_query_' || pg_catalog.substr(pg_catalog.md5(p.name), 1, 12),
                                'caredata publication on Citus: its query, read only through its function');
      EXECUTE pg_catalog.format('COMMENT ON FUNCTION published.%I() IS %L', '_rows_' || pg_catalog.substr(pg_catalog.md5(p.name), 1, 12),
                                'caredata publication on Citus: the rows of its view, as its owner');
    END IF;
  END LOOP;
END
$publish_22$;

-- ---- issue 24, section 3: magnitudes protected by default ----
ALTER TABLE caredata.sdc_policy ADD COLUMN magnitude_digits integer CHECK (magnitude_digits BETWEEN 1 AND 15);
COMMENT ON COLUMN caredata.sdc_policy.magnitude_digits IS 'sums are published rounded to this many significant figures, never finer than rounding_base, and means are the published sum over the published row count (NULL: sums exact, as version 1 of the built-in policies)';
INSERT INTO caredata.sdc_policy (policy, version, suppress_max, protect_zero, rounding, rounding_base, redacted,
                                 dominance_n, dominance_k, p_percent, magnitude_digits, source, builtin)
SELECT policy, 2, suppress_max, protect_zero, rounding, rounding_base, redacted, 2, 85, 10, 3,
       source || '; magnitudes (issue 24): (2, 85) dominance and p% = 10 (Hundepool et al., Statistical Disclosure Control, 2012, section 4.2), sums rounded to 3 significant figures, means from the published sum and row count',
       true
  FROM caredata.sdc_policy WHERE builtin AND version = 1;


-- ---- issue 24, section 6: identifiable data only "where the law allows it":
-- the approval register (src/publication/approval.sql); reidentify() names
-- the approval, purpose and (optionally) dataset it is made under
-- (src/publication/reidentify.sql: the old two-argument call is gone);
-- publish() keeps a direct identifier only under an approval
-- (src/publication/publication.sql) ----
CREATE TABLE caredata.approval (
  reference          text PRIMARY KEY CHECK (reference ~ '^[A-Za-z0-9][A-Za-z0-9 ./_:()-]{0,62}$'),
  legal_basis        text NOT NULL
                     CHECK (legal_basis IN ('section_251', 'civil_emergency', 'court_order', 'consent', 'statutory')),
  basis_reference    text NOT NULL CHECK (btrim(basis_reference) <> ''),
  purposes           text[] NOT NULL CHECK (cardinality(purposes) > 0),
  datasets           text[] CHECK (datasets IS NULL OR cardinality(datasets) > 0),
  roles              regrole[] NOT NULL CHECK (cardinality(roles) > 0),
  valid_from         timestamptz NOT NULL,
  valid_until        timestamptz NOT NULL,
  opt_out_applies    boolean NOT NULL DEFAULT true,
  opt_out_exemption  text,
  registered_at      timestamptz NOT NULL DEFAULT now(),
  registered_by      name NOT NULL DEFAULT session_user,
  revoked_at         timestamptz,
  revoked_by         name,
  revoke_reason      text,
  CONSTRAINT approval_dates CHECK (valid_until > valid_from),
  CONSTRAINT approval_section_251_opt_out
    CHECK (legal_basis <> 'section_251' OR opt_out_applies OR opt_out_exemption IS NOT NULL),
  CONSTRAINT approval_opt_out_exemption_only_when_set_aside CHECK (opt_out_exemption IS NULL OR NOT opt_out_applies),
  CONSTRAINT approval_revoked_with_reason
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL) AND (revoked_at IS NULL) = (revoke_reason IS NULL))
);
COMMENT ON TABLE caredata.approval IS
  'the approval register: the legal bases (section 251 support, a COPI notice in a civil emergency, a court order, consent, a statutory duty) under which identifiable data may be disclosed, each with the purposes, datasets and roles it covers, its dates and whether the national data opt-out applies; written by register_approval() and revoke_approval() only, audited, never edited or deleted';
SELECT pg_catalog.pg_extension_config_dump('caredata.approval', '');

-- History that cannot be rewritten: the only change is a revocation, once
CREATE FUNCTION caredata._approval_keep_history() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
    IF OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
       AND (pg_catalog.to_jsonb(NEW) OPERATOR(pg_catalog.-) ARRAY['revoked_at', 'revoked_by', 'revoke_reason'])
           OPERATOR(pg_catalog.=) (pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.-) ARRAY['revoked_at', 'revoked_by', 'revoke_reason']) THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION USING ERRCODE = '55000', MESSAGE = 'caredata.approval keeps its history',
    DETAIL = 'An approval can only be revoked, once; nothing else about it changes, and it is never deleted.',
    HINT = 'Use caredata.revoke_approval(); register a new approval for anything else.';
END
$$;
COMMENT ON FUNCTION caredata._approval_keep_history() IS
  'internal: trigger: an approval only ever changes by being revoked, once; never deleted';
CREATE TRIGGER approval_history BEFORE UPDATE OR DELETE ON caredata.approval
  FOR EACH ROW EXECUTE FUNCTION caredata._approval_keep_history();
CREATE TRIGGER approval_no_truncate BEFORE TRUNCATE ON caredata.approval
  FOR EACH STATEMENT EXECUTE FUNCTION caredata._approval_keep_history();

-- Why an approval does not cover a disclosure to (or by) a role, for a
-- purpose and dataset, at a time: NULL when it does.  Membership counts
-- however it is held (pg_has_role ... MEMBER).  An approval naming datasets
-- covers only a disclosure that names one of them.
CREATE FUNCTION caredata._approval_problem(reference text, role name, purpose text, dataset text, at timestamptz)
  RETURNS text LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE
    WHEN a.reference IS NULL THEN 'is not in the approval register'
    WHEN a.revoked_at IS NOT NULL AND a.revoked_at OPERATOR(pg_catalog.<=) x.at THEN 'was revoked'
    WHEN x.at OPERATOR(pg_catalog.<) a.valid_from THEN 'is not valid yet'
    WHEN x.at OPERATOR(pg_catalog.>=) a.valid_until THEN 'has expired'
    WHEN x.purpose IS NULL OR NOT x.purpose OPERATOR(pg_catalog.=) ANY (a.purposes)
      THEN pg_catalog.format('does not cover the purpose %s', coalesce(x.purpose, '(none)'))
    WHEN a.datasets IS NOT NULL AND (x.dataset IS NULL OR NOT x.dataset OPERATOR(pg_catalog.=) ANY (a.datasets))
      THEN pg_catalog.format('does not cover the dataset %s', coalesce(x.dataset, '(none)'))
    WHEN x.role IS NULL OR NOT EXISTS (
           SELECT 1 FROM pg_catalog.unnest(a.roles) g(r)
             JOIN pg_catalog.pg_roles rr ON rr.oid OPERATOR(pg_catalog.=) g.r::oid
             JOIN pg_catalog.pg_roles me ON me.rolname OPERATOR(pg_catalog.=) x.role
            WHERE pg_catalog.pg_has_role(me.oid, rr.oid, 'MEMBER'))
      THEN pg_catalog.format('does not name role "%s" or a role it is a member of', x.role)
  END
  FROM (SELECT reference, role, purpose, dataset, at) x
  LEFT JOIN caredata.approval a ON a.reference OPERATOR(pg_catalog.=) x.reference
$$;
COMMENT ON FUNCTION caredata._approval_problem(text, name, text, text, timestamptz) IS
  'internal: why an approval does not cover a role, purpose and dataset at a time (not registered, revoked, not valid yet, expired, another purpose, dataset or role); NULL when it does';

-- The same, refusing (42501) what the approval does not cover; returns
-- whether the national data opt-out applies to it.  what names the
-- disclosure in the message.
CREATE FUNCTION caredata._approval_require(reference text, role name, purpose text, dataset text, what text)
  RETURNS boolean LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  why text := caredata._approval_problem(reference, role, purpose, dataset, pg_catalog.now());
  applies boolean;
BEGIN
  IF reference IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format('a %s needs an approval', what),
      DETAIL = 'Identifiable data is disclosed only where the law allows it, under an approval in the register.',
      HINT = 'Name the approval it is made under (its reference in caredata.approval, or caredata.my_approval).';
  END IF;
  IF why IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format('approval "%s" %s', reference, why),
      DETAIL = pg_catalog.format('A %s is made only under an approval in force that covers its role, purpose and dataset.', what),
      HINT = 'See caredata.my_approval (caredata.approval for admins); caredata_admin registers approvals with caredata.register_approval().';
  END IF;
  SELECT a.opt_out_applies INTO applies FROM caredata.approval a WHERE a.reference OPERATOR(pg_catalog.=) _approval_require.reference;
  RETURN applies;
END
$$;
COMMENT ON FUNCTION caredata._approval_require(text, name, text, text, text) IS
  'internal: refuse (42501, with the reason) a disclosure an approval does not cover now; returns whether the national data opt-out applies under it';

CREATE FUNCTION caredata.register_approval(reference text, legal_basis text, basis_reference text, purposes text[],
                                           roles regrole[], valid_from timestamptz, valid_until timestamptz,
                                           datasets text[] DEFAULT NULL, opt_out_applies boolean DEFAULT true,
                                           opt_out_exemption text DEFAULT NULL)
  RETURNS text LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM caredata._catalog_write('caredata.register_approval()');
  IF reference IS NULL OR reference OPERATOR(pg_catalog.!~) '^[A-Za-z0-9][A-Za-z0-9 ./_:()-]{0,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an approval reference is letters, digits, spaces and ./_:()- (at most 63)',
      HINT = 'Use the approval''s own reference, for example CAG 1-23 or COPI 2020-03.';
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.approval a WHERE a.reference OPERATOR(pg_catalog.=) register_approval.reference) THEN
    RAISE EXCEPTION USING ERRCODE = '42710', MESSAGE = pg_catalog.format('approval "%s" is already registered', reference),
      HINT = 'An approval is never changed: revoke it (caredata.revoke_approval()) and register the new one under its own reference.';
  END IF;
  IF legal_basis IS NULL OR NOT legal_basis OPERATOR(pg_catalog.=) ANY (ARRAY['section_251', 'civil_emergency', 'court_order', 'consent', 'statutory']) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('unknown legal basis "%s"', legal_basis),
      HINT = 'Legal bases: section_251 (research support under the NHS Act 2006), civil_emergency (a COPI notice), court_order, consent, statutory.';
  END IF;
  IF basis_reference IS NULL OR pg_catalog.btrim(basis_reference) OPERATOR(pg_catalog.=) '' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an approval needs the reference of its legal basis',
      HINT = 'The CAG approval number for section_251, the notice for civil_emergency, the order, the consent record or the statute.';
  END IF;
  IF coalesce(pg_catalog.cardinality(purposes), 0) OPERATOR(pg_catalog.=) 0
     OR EXISTS (SELECT 1 FROM pg_catalog.unnest(purposes) p
                 WHERE p IS NULL OR NOT EXISTS (SELECT 1 FROM caredata.purpose x WHERE x.name OPERATOR(pg_catalog.=) p)) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an approval covers known purposes',
      HINT = 'Purposes are listed in caredata.purpose.';
  END IF;
  IF datasets IS NOT NULL AND (pg_catalog.cardinality(datasets) OPERATOR(pg_catalog.=) 0
     OR EXISTS (SELECT 1 FROM pg_catalog.unnest(datasets) d WHERE d IS NULL OR pg_catalog.btrim(d) OPERATOR(pg_catalog.=) '')) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an approval''s datasets are named',
      HINT = 'Name the datasets (studies or publications) it covers, or pass NULL for an approval not limited to named datasets.';
  END IF;
  IF coalesce(pg_catalog.cardinality(roles), 0) OPERATOR(pg_catalog.=) 0
     OR EXISTS (SELECT 1 FROM pg_catalog.unnest(roles) r
                 WHERE r IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles x WHERE x.oid OPERATOR(pg_catalog.=) r::oid)) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an approval names the roles it allows',
      HINT = 'Name existing roles (not PUBLIC): the re-identifier logins or the recipient roles it covers.';
  END IF;
  IF valid_from IS NULL OR valid_until IS NULL OR valid_until OPERATOR(pg_catalog.<=) valid_from
     OR pg_catalog.isfinite(valid_until) IS NOT TRUE THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an approval is valid between two times',
      HINT = 'valid_from before valid_until; an approval always ends (CAG support is reviewed, a COPI notice lapses).';
  END IF;
  IF opt_out_applies IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'say whether the national data opt-out applies to the approval',
      HINT = 'true unless the approval sets it aside.';
  END IF;
  IF NOT opt_out_applies AND legal_basis OPERATOR(pg_catalog.=) 'section_251'
     AND (opt_out_exemption IS NULL OR pg_catalog.btrim(opt_out_exemption) OPERATOR(pg_catalog.=) '') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'section 251 support is subject to the national data opt-out unless it records an exemption',
      HINT = 'Pass opt_out_exemption: the reference of the exemption the Confidentiality Advisory Group recorded; otherwise leave opt_out_applies true.';
  END IF;
  IF opt_out_applies AND opt_out_exemption IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an opt-out exemption is recorded only when the approval sets the opt-out aside',
      HINT = 'Pass opt_out_applies => false with it, or leave it out.';
  END IF;
  INSERT INTO caredata.approval (reference, legal_basis, basis_reference, purposes, datasets, roles, valid_from, valid_until,
                                 opt_out_applies, opt_out_exemption)
  VALUES (reference, legal_basis, basis_reference, purposes, datasets, roles, valid_from, valid_until,
          opt_out_applies, opt_out_exemption);
  PERFORM caredata.audit_append('approval.register', reference,
    pg_catalog.jsonb_build_object('legal_basis', legal_basis, 'basis_reference', basis_reference, 'purposes', purposes,
      'datasets', datasets, 'roles', (SELECT pg_catalog.array_agg(r::text) FROM pg_catalog.unnest(roles) r),
      'valid_from', valid_from, 'valid_until', valid_until,
      'opt_out_applies', opt_out_applies, 'opt_out_exemption', opt_out_exemption));
  RETURN reference;
END
$$;
COMMENT ON FUNCTION caredata.register_approval(text, text, text, text[], regrole[], timestamptz, timestamptz, text[], boolean, text) IS
  'register an approval (caredata_admin): its reference, legal basis (section_251, civil_emergency, court_order, consent, statutory) and that basis''s reference, the purposes, roles and (optionally) datasets it covers, the dates it is valid between, and whether the national data opt-out applies (section 251 support sets it aside only with a recorded exemption); audited; returns the reference';

CREATE FUNCTION caredata.revoke_approval(reference text, reason text) RETURNS void
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM caredata._catalog_write('caredata.revoke_approval()');
  IF reason IS NULL OR pg_catalog.length(pg_catalog.btrim(reason)) OPERATOR(pg_catalog.<) 10 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a revocation needs its reason',
      HINT = 'Say why, in at least 10 characters; it is kept in the register and the audit log.';
  END IF;
  UPDATE caredata.approval a SET revoked_at = pg_catalog.now(), revoked_by = session_user, revoke_reason = reason
   WHERE a.reference OPERATOR(pg_catalog.=) revoke_approval.reference AND a.revoked_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'P0002', MESSAGE = pg_catalog.format('no approval "%s" in force to revoke', reference),
      HINT = 'Approvals not yet revoked are those in caredata.approval with revoked_at NULL.';
  END IF;
  PERFORM caredata.audit_append('approval.revoke', reference, NULL, reason);
END
$$;
COMMENT ON FUNCTION caredata.revoke_approval(text, text) IS
  'revoke an approval from now on, with the reason (caredata_admin); nothing is disclosed under it afterwards, published views made under it refuse to be read; the row is kept; audited';

-- what a re-identifier may use: the approvals naming a role its login is a
-- member of (the check reidentify() makes), in force or not
CREATE VIEW caredata.my_approval WITH (security_barrier) AS
  SELECT a.reference, a.legal_basis, a.basis_reference, a.purposes, a.datasets, a.valid_from, a.valid_until,
         a.opt_out_applies, a.opt_out_exemption, a.revoked_at, a.revoke_reason,
         (a.revoked_at IS NULL AND pg_catalog.now() >= a.valid_from AND pg_catalog.now() < a.valid_until) AS in_force
    FROM caredata.approval a
   WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(a.roles) g(r)
                   JOIN pg_catalog.pg_roles rr ON rr.oid = g.r::oid
                  WHERE pg_catalog.pg_has_role(session_user, rr.oid, 'MEMBER'));
COMMENT ON VIEW caredata.my_approval IS
  'the approvals the current login may re-identify under (those naming a role it is a member of), with their scope and whether each is in force';

REVOKE ALL ON caredata.approval, caredata.my_approval FROM PUBLIC;
GRANT SELECT ON caredata.approval TO caredata_admin;
GRANT SELECT ON caredata.my_approval TO caredata_admin, caredata_reidentifier;
REVOKE ALL ON FUNCTION caredata._approval_keep_history(), caredata._approval_problem(text, name, text, text, timestamptz),
  caredata._approval_require(text, name, text, text, text),
  caredata.register_approval(text, text, text, text[], regrole[], timestamptz, timestamptz, text[], boolean, text),
  caredata.revoke_approval(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata._approval_problem(text, name, text, text, timestamptz),
  caredata._approval_require(text, name, text, text, text),
  caredata.register_approval(text, text, text, text[], regrole[], timestamptz, timestamptz, text[], boolean, text),
  caredata.revoke_approval(text, text) TO caredata_admin;

DROP FUNCTION caredata.reidentify(caredata.pseudonym, text);
DROP FUNCTION caredata._reidentify_committed(caredata.pseudonym, text);
DROP FUNCTION caredata._reidentify_commit(name, caredata.pseudonym, text, integer);
-- run by the worker, as the extension's owner, in its own transaction: the
-- head row's lock serialises every login's calls, so two at once cannot both
-- pass the limit
CREATE FUNCTION caredata._reidentify_commit(actor name, pseudonym caredata.pseudonym, approval text, purpose text,
                                            dataset text, justification text, per_hour integer)
  RETURNS TABLE (entry_id bigint, nhs_number caredata.nhs_number, refusal text)
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  used bigint;
  v_nhs caredata.nhs_number;
  dom text;
  opt_out boolean;
  refused text;
BEGIN
  INSERT INTO caredata.audit_head VALUES (true, 0, '\x'::bytea) ON CONFLICT DO NOTHING;
  PERFORM 1 FROM caredata.audit_head h WHERE h.one FOR UPDATE;
  SELECT pg_catalog.count(*) INTO used FROM caredata.audit_log a
   WHERE a.action OPERATOR(pg_catalog.=) 'reidentify' AND a.actor OPERATOR(pg_catalog.=) actor
     AND a.at OPERATOR(pg_catalog.>) (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) interval '1 hour');
  IF used OPERATOR(pg_catalog.>=) per_hour THEN
    RAISE EXCEPTION USING ERRCODE = '54000',
      MESSAGE = pg_catalog.format('re-identification limit reached: %s in the last hour', used),
      HINT = 'caredata.reidentify_per_hour sets the limit per login (superuser-only).';
  END IF;
  -- the approval again, under the head's lock, in the entry's transaction
  opt_out := caredata._approval_require(approval, actor, purpose, dataset, 're-identification');
  SELECT m.nhs_number, m.domain INTO v_nhs, dom FROM caredata.pseudonym_map m
   WHERE m.pseudonym OPERATOR(caredata.=) pseudonym;
  IF v_nhs IS NOT NULL AND opt_out AND NOT caredata.permitted(v_nhs, purpose, pg_catalog.now(), dataset) THEN
    refused := 'objection';
  END IF;
  -- audited, found, refused or not (the entry names the pseudonym and the
  -- approval, never the NHS number)
  entry_id := caredata._audit_append_as(actor, 'reidentify', pseudonym::text,
    pg_catalog.jsonb_build_object('domain', dom, 'found', v_nhs IS NOT NULL, 'approval', approval, 'purpose', purpose,
                                  'dataset', dataset, 'opt_out_applies', opt_out)
    OPERATOR(pg_catalog.||) CASE WHEN refused IS NULL THEN '{}'::jsonb
                                 ELSE pg_catalog.jsonb_build_object('refused', refused) END,
    justification);
  nhs_number := CASE WHEN refused IS NULL THEN v_nhs END;
  refusal := refused;
  RETURN NEXT;
END
$$;
COMMENT ON FUNCTION caredata._reidentify_commit(name, caredata.pseudonym, text, text, text, text, integer) IS
  'internal: run by the re-identification worker in a transaction of its own: checks the login''s hourly limit and the approval, looks the pseudonym up, applies the objection register when the approval is subject to the national data opt-out, and appends the audit entry';

-- in the caller's backend: starts the worker, waits for it, and answers only
-- if it committed (the caller's login is the actor; the worker connects as
-- the current user, which inside reidentify() is the extension's owner)
CREATE FUNCTION caredata._reidentify_committed(pseudonym caredata.pseudonym, approval text, purpose text, dataset text,
                                               justification text)
  RETURNS text
  AS 'MODULE_PATHNAME', 'caredata_reidentify_committed' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._reidentify_committed(caredata.pseudonym, text, text, text, text) IS
  'internal: re-identify through the worker that commits the audit entry first; NULL when the pseudonym is unknown, an error (and no answer) when the entry could not be committed or the objection register refused';

CREATE FUNCTION caredata.reidentify(pseudonym caredata.pseudonym, approval text, purpose text, justification text,
                                    dataset text DEFAULT NULL)
  RETURNS caredata.nhs_number
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF pg_catalog.length(pg_catalog.btrim(coalesce(justification, ''))) OPERATOR(pg_catalog.<) 20 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a re-identification needs a justification',
      HINT = 'Say why, in at least 20 characters (the case reference); it is kept in the audit log.';
  END IF;
  IF pseudonym IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'a re-identification needs the pseudonym';
  END IF;
  IF purpose IS NULL OR NOT EXISTS (SELECT 1 FROM caredata.purpose p WHERE p.name OPERATOR(pg_catalog.=) reidentify.purpose) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a re-identification needs the purpose it is for',
      HINT = 'Purposes are listed in caredata.purpose; the approval must cover it.';
  END IF;
  -- refused here, before any worker starts: nothing looked up, nothing audited
  PERFORM caredata._approval_require(approval, session_user, purpose, dataset, 're-identification');
  PERFORM caredata._coordinator_only('caredata.reidentify()');
  RETURN caredata._reidentify_committed(pseudonym, approval, purpose, dataset, justification)::caredata.nhs_number;
END
$$;
COMMENT ON FUNCTION caredata.reidentify(caredata.pseudonym, text, text, text, text) IS
  'the NHS number behind a published pseudonym (NULL when there is none), for caredata_reidentifier only, under a registered approval in force that covers the purpose (and dataset) and a role the login is a member of (else 42501); refused (42501) when the national data opt-out applies to the approval and the person objected for the purpose; needs a justification of 20 characters or more; its audit entry, naming the approval, is committed (by a background worker, in a transaction of its own) before it answers, whatever the caller''s transaction does next; at most caredata.reidentify_per_hour times an hour per login';
REVOKE ALL ON FUNCTION caredata.reidentify(caredata.pseudonym, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.reidentify(caredata.pseudonym, text, text, text, text) TO caredata_reidentifier;
REVOKE ALL ON FUNCTION caredata._reidentify_commit(name, caredata.pseudonym, text, text, text, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION caredata._reidentify_committed(caredata.pseudonym, text, text, text, text) FROM PUBLIC;

CREATE FUNCTION caredata._published_approval(publication text) RETURNS boolean
  LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p caredata.publication;
BEGIN
  SELECT * INTO p FROM caredata.publication x WHERE x.name OPERATOR(pg_catalog.=) publication;
  IF NOT FOUND OR NOT p.spec OPERATOR(pg_catalog.?) 'approval' THEN
    RETURN true;
  END IF;
  PERFORM caredata._approval_require(p.spec OPERATOR(pg_catalog.->>) 'approval', p.recipient,
                                     p.spec OPERATOR(pg_catalog.->>) 'purpose', p.spec OPERATOR(pg_catalog.->>) 'dataset',
                                     'read of an identifiable publication');
  RETURN true;
END
$$;
COMMENT ON FUNCTION caredata._published_approval(text) IS
  'internal: true when a publication names no approval or its approval still covers its recipient, purpose and dataset; refuses (42501) once the approval is revoked, expired or no longer covers them';


-- (caredata._publication_check: replaced again below)


-- (caredata._publication_view: replaced again below)


-- (caredata.publish: replaced again below)

REVOKE ALL ON FUNCTION caredata._published_approval(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata._published_approval(text) TO caredata_admin;

-- ---- issue 24, section 7: funnel plots' bands and flags from the true counts ----
-- caredata._funnel: the band and the outlier flag compare the true ratio with
-- the limits at the true size; what is shown stays as the policy publishes it;
-- a suppressed unit has no band or flag.  caredata._funnel_svg: a footnote
-- says points are the published counts and flags the true ones.
COMMENT ON TYPE caredata.funnel_row IS
  'a unit in a funnel plot (caredata.funnel()): numerator, denominator, ratio, z-score, limits at its size (as the disclosure-control policy publishes them), band (above/below 95%/99.8% or within) and outlier flag (from the true counts; NULL when suppressed), suppressed, the limits'' method, and the fit';
COMMENT ON FUNCTION caredata.funnel(text, text, text, text, double precision, numeric, text) IS
  'per unit of a query (unit, numerator, denominator): ratio, z-score, 95% and 99.8% limits at its size, band, outlier flag (beyond flag_limit, from the true counts); counts, ratios and limits as a disclosure-control policy publishes them; a suppressed unit has no band or flag';
-- (caredata._funnel_svg: replaced again below)

-- ---- issue 24, sections 4 and 2: record keys in the states; the cell key method
-- (src/sdc/policy.sql, src/sdc/cell_key.sql, src/citus/citus.sql)
ALTER TABLE caredata.sdc_policy ADD COLUMN cell_key_ptable text CHECK (cell_key_ptable ~ '^[a-z][a-z0-9_]{0,62}$');
COMMENT ON COLUMN caredata.sdc_policy.cell_key_ptable IS 'the cell key method: counts of people are published as the true count plus the perturbation this p-table (caredata.sdc_ptable) gives for the count and the cell key; NULL: no perturbation';
CREATE TABLE caredata.sdc_ptable (
  ptable        text NOT NULL CHECK (ptable ~ '^[a-z][a-z0-9_]{0,62}$'),
  count_value   integer NOT NULL CHECK (count_value BETWEEN 0 AND 1000),
  key_min       integer NOT NULL CHECK (key_min BETWEEN 0 AND 255),
  key_max       integer NOT NULL CHECK (key_max BETWEEN 0 AND 255),
  perturbation  integer NOT NULL CHECK (perturbation BETWEEN -1000 AND 1000),
  builtin       boolean NOT NULL DEFAULT false,
  PRIMARY KEY (ptable, count_value, key_min),
  CHECK (key_min <= key_max),
  CHECK (count_value + perturbation >= 0)
);
COMMENT ON TABLE caredata.sdc_ptable IS
  'p-tables of the cell key method: a true count of count_value people (and every larger count up to the next row) whose cell key lies in key_min..key_max is published as count_value plus perturbation; every count listed must cover the cell keys 0..255 exactly once';

-- 'default': zero-mean in every row; counts of 5 and more move by -2..+2
-- with probabilities 1/16, 4/16, 6/16, 4/16, 1/16 (variance 1); 1 to 4 are
-- mapped so that 1 and 2 never appear (variances 3, 2.5, 1.625, 0.75);
-- 0 stays 0
INSERT INTO caredata.sdc_ptable (ptable, count_value, key_min, key_max, perturbation, builtin) VALUES
  ('default', 0, 0, 255, 0, true),
  ('default', 1, 0, 191, -1, true), ('default', 1, 192, 255, 3, true),
  ('default', 2, 0, 95, -2, true), ('default', 2, 96, 223, 1, true), ('default', 2, 224, 255, 2, true),
  ('default', 3, 0, 31, -3, true), ('default', 3, 32, 175, 0, true), ('default', 3, 176, 239, 1, true),
  ('default', 3, 240, 255, 2, true),
  ('default', 4, 0, 79, -1, true), ('default', 4, 80, 191, 0, true), ('default', 4, 192, 239, 1, true),
  ('default', 4, 240, 255, 2, true),
  ('default', 5, 0, 15, -2, true), ('default', 5, 16, 79, -1, true), ('default', 5, 80, 175, 0, true),
  ('default', 5, 176, 239, 1, true), ('default', 5, 240, 255, 2, true);

REVOKE ALL ON caredata.sdc_ptable FROM PUBLIC;
GRANT SELECT ON caredata.sdc_ptable TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON caredata.sdc_ptable TO caredata_admin;
-- admins' own p-tables survive pg_dump; the built-in one comes with the extension
SELECT pg_catalog.pg_extension_config_dump('caredata.sdc_ptable', 'WHERE NOT builtin');

-- every write to the p-tables is audited (which p-tables, how many rows)
CREATE FUNCTION caredata._sdc_ptable_audit() RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  names text;
  n bigint;
BEGIN
  -- on Citus the p-tables are reference tables: the trigger fires on every
  -- node's placement, and the coordinator's entry is the audit (issue 27)
  IF caredata._citus_worker() THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    SELECT string_agg(DISTINCT r.ptable, ','), count(*) INTO names, n FROM new_rows r;
  ELSIF TG_OP = 'UPDATE' THEN
    SELECT string_agg(DISTINCT r.ptable, ','), count(*) INTO names, n
      FROM (SELECT o.ptable FROM old_rows o UNION ALL SELECT w.ptable FROM new_rows w) r;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT string_agg(DISTINCT r.ptable, ','), count(*) INTO names, n FROM old_rows r;
  END IF;
  IF TG_OP = 'TRUNCATE' OR n OPERATOR(pg_catalog.>) 0 THEN
    PERFORM caredata.audit_append('sdc_ptable.' OPERATOR(pg_catalog.||) pg_catalog.lower(TG_OP),
                                  coalesce(names, 'every p-table'), pg_catalog.jsonb_build_object('rows', n));
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION caredata._sdc_ptable_audit() IS
  'internal: trigger auditing every write to caredata.sdc_ptable';
REVOKE ALL ON FUNCTION caredata._sdc_ptable_audit() FROM PUBLIC;
CREATE TRIGGER sdc_ptable_audit_insert AFTER INSERT ON caredata.sdc_ptable
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION caredata._sdc_ptable_audit();
CREATE TRIGGER sdc_ptable_audit_update AFTER UPDATE ON caredata.sdc_ptable
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION caredata._sdc_ptable_audit();
CREATE TRIGGER sdc_ptable_audit_delete AFTER DELETE ON caredata.sdc_ptable
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION caredata._sdc_ptable_audit();
CREATE TRIGGER sdc_ptable_audit_truncate AFTER TRUNCATE ON caredata.sdc_ptable
  FOR EACH STATEMENT EXECUTE FUNCTION caredata._sdc_ptable_audit();

-- the built-in policy: nothing suppressed, every count of people perturbed
INSERT INTO caredata.sdc_policy (policy, suppress_max, protect_zero, rounding, rounding_base, redacted, source, builtin, cell_key_ptable) VALUES
  ('cell_key', 0, false, 'none', 1, '*',
   'The cell key method: Australian Bureau of Statistics TableBuilder (Fraser and Wooton, "A proposed method for confidentialising tabular output to protect against differencing", 2005; Thompson, Broadfoot and Elazar, "Methodology for the automatic confidentialisation of statistical outputs from remote servers at the Australian Bureau of Statistics", 2013) and the Office for National Statistics, Census 2021 outputs ("Protecting personal data in Census 2021 results"); perturbations from p-table default (zero-mean, variance 1 from 5 people on; 1 and 2 never shown)', true, 'default');

-- the catalogs citus_setup() makes reference tables: all that a query on a
-- worker reads (the register, exemptions, subject access, key domains,
-- disclosure policies, the roles they are in force for and their p-tables, distributed filters, and the stored pseudonyms a
-- published view joins on every shard); register_version stays local
-- (each node's triggers bump their own)
CREATE OR REPLACE FUNCTION caredata.citus_catalogs() RETURNS SETOF regclass
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
  SELECT unnest(ARRAY['caredata.purpose'::regclass, 'caredata.objection'::regclass, 'caredata.exemption'::regclass,
                      'caredata.subject_access'::regclass, 'caredata.domain'::regclass, 'caredata.domain_key'::regclass,
                      'caredata.sdc_policy'::regclass, 'caredata.sdc_policy_role'::regclass,
                      'caredata.sdc_ptable'::regclass, 'caredata.distributed_filter'::regclass,
                      'caredata.pseudonym_map'::regclass]);
END;

-- ---- issue 24, section 5: publish() enforces k-anonymity and measures linkability ----
-- (src/publication/kanon.sql; docs/disclosure-control.md).  Views made
-- before keep their definition until republish().
ALTER TABLE caredata.publication ADD COLUMN disclosure jsonb;
-- k-anonymity and linkability of a publication (issue 24, section 5).
--
-- A publication names its quasi-identifiers and a k in its spec.  Its view
-- keeps only the rows whose equivalence class (the rows with the same
-- values of every quasi-identifier) holds at least k persons, counted as
-- the view is read, so rows added to the source later are covered too;
-- codes of a "group" column that fewer than k persons hold become 'other',
-- also as the view is read.  How coarse the generalised columns are is
-- chosen by publish() and republish() on a fixed ladder (level 0 is the
-- spec as written, each level coarser, level 3 withholds the column): the
-- lowest level at which at most max_suppressed_share of the rows fall in
-- classes below k and at most max_linkable_share of the persons can be
-- linked across recipients (their set of published records is unique).
-- What was done is stored in caredata.publication.disclosure and shown by
-- caredata.publication_disclosure.  docs/disclosure-control.md.

CREATE TABLE caredata.publication_limits (
  one                   boolean PRIMARY KEY DEFAULT true CHECK (one),
  k                     integer NOT NULL DEFAULT 5 CHECK (k >= 2),
  max_linkable_share    numeric NOT NULL DEFAULT 0.05 CHECK (max_linkable_share BETWEEN 0 AND 1),
  max_suppressed_share  numeric NOT NULL DEFAULT 0.05 CHECK (max_suppressed_share BETWEEN 0 AND 1)
);
COMMENT ON TABLE caredata.publication_limits IS
  'publication limits (one row): the default k, the largest share of persons a publication may leave linkable across recipients (above it publish() refuses, unless caredata_admin overrides with an audited reason), the share of rows the generalisation ladder may suppress before it climbs; changed by the extension''s owner only, audited';
INSERT INTO caredata.publication_limits DEFAULT VALUES;
REVOKE ALL ON caredata.publication_limits FROM PUBLIC;
GRANT SELECT ON caredata.publication_limits TO caredata_admin;

CREATE FUNCTION caredata._publication_limits_audit() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM caredata.audit_append('publication.limits', NULL,
    pg_catalog.jsonb_build_object('old', pg_catalog.to_jsonb(OLD), 'new', pg_catalog.to_jsonb(NEW)));
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION caredata._publication_limits_audit() IS
  'internal: audits a change of caredata.publication_limits';
CREATE TRIGGER publication_limits_audit AFTER UPDATE ON caredata.publication_limits
  FOR EACH ROW EXECUTE FUNCTION caredata._publication_limits_audit();
CREATE FUNCTION caredata._publication_limits_refuse() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  -- an INSERT (a restore of changed limits: src/publication/kanon_dump.sql)
  -- sets the one row, as an audited UPDATE
  IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM caredata.publication_limits) THEN
    UPDATE caredata.publication_limits
       SET k = NEW.k, max_linkable_share = NEW.max_linkable_share, max_suppressed_share = NEW.max_suppressed_share;
    RETURN NULL;
  ELSIF TG_OP = 'INSERT' THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION USING ERRCODE = '55000', MESSAGE = 'caredata.publication_limits has exactly one row',
    HINT = 'UPDATE it (as the extension''s owner).';
END
$$;
COMMENT ON FUNCTION caredata._publication_limits_refuse() IS
  'internal: keeps caredata.publication_limits at one row (an INSERT sets it, a DELETE is refused)';
CREATE TRIGGER publication_limits_one BEFORE INSERT OR DELETE ON caredata.publication_limits
  FOR EACH ROW EXECUTE FUNCTION caredata._publication_limits_refuse();

-- a band of width w holding x, as '[lo,hi)'
CREATE FUNCTION caredata.band(x numeric, width numeric) RETURNS text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN '[' OPERATOR(pg_catalog.||) pg_catalog.trim_scale(pg_catalog.floor(x OPERATOR(pg_catalog./) width) OPERATOR(pg_catalog.*) width)::text
         OPERATOR(pg_catalog.||) ',' OPERATOR(pg_catalog.||)
         pg_catalog.trim_scale((pg_catalog.floor(x OPERATOR(pg_catalog./) width) OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog.*) width)::text
         OPERATOR(pg_catalog.||) ')';
COMMENT ON FUNCTION caredata.band(numeric, numeric) IS
  'the band of the given width holding a number, as text ''[lo,hi)'' (lo a multiple of width): band(1234, 1000) = ''[1000,2000)''';

-- The ladder: what a treatment publishes at each level (0 = as the spec
-- says; 3 = withheld, NULL).  A treatment without a ladder (keep, group)
-- is the same at every level.
CREATE FUNCTION caredata._publish_step(how text, level integer) RETURNS text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN CASE
    WHEN how OPERATOR(pg_catalog.=) ANY (ARRAY['keep', 'group']) THEN how
    WHEN level OPERATOR(pg_catalog.>=) 3 THEN 'withheld'
    WHEN how OPERATOR(pg_catalog.=) 'month' THEN (ARRAY['month', 'quarter', 'year'])[level OPERATOR(pg_catalog.+) 1]
    WHEN how OPERATOR(pg_catalog.=) 'quarter' THEN (ARRAY['quarter', 'year', 'withheld'])[level OPERATOR(pg_catalog.+) 1]
    WHEN how OPERATOR(pg_catalog.=) 'year' THEN (ARRAY['year', 'year:5', 'year:10'])[level OPERATOR(pg_catalog.+) 1]
    WHEN how OPERATOR(pg_catalog.=) 'year_of_birth' THEN (ARRAY['year_of_birth', 'year_of_birth:5', 'year_of_birth:10'])[level OPERATOR(pg_catalog.+) 1]
    WHEN how OPERATOR(pg_catalog.=) 'age_band' THEN (ARRAY['age_band:5', 'age_band:10', 'age_band:20'])[level OPERATOR(pg_catalog.+) 1]
    WHEN how OPERATOR(pg_catalog.=) 'sector' THEN (ARRAY['sector', 'district', 'area'])[level OPERATOR(pg_catalog.+) 1]
    WHEN how OPERATOR(pg_catalog.=) 'district' THEN (ARRAY['district', 'area', 'area'])[level OPERATOR(pg_catalog.+) 1]
    WHEN how OPERATOR(pg_catalog.=) 'area' THEN 'area'
    WHEN how OPERATOR(pg_catalog.~) '^band:[0-9]+(\.[0-9]+)?$' AND pg_catalog.substr(how, 6)::numeric OPERATOR(pg_catalog.>) 0
      THEN 'band:' OPERATOR(pg_catalog.||) pg_catalog.trim_scale(pg_catalog.substr(how, 6)::numeric
                                             OPERATOR(pg_catalog.*) (ARRAY[1, 2, 4])[level OPERATOR(pg_catalog.+) 1])::text
  END;
COMMENT ON FUNCTION caredata._publish_step(text, integer) IS
  'internal: the generalisation step a column treatment takes at a ladder level (0: as the spec says; 1 and 2 coarser; 3: withheld); NULL for an unknown treatment';

-- the name a treated column has in the view
CREATE FUNCTION caredata._publish_name(col name, how text) RETURNS text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN CASE
    WHEN how OPERATOR(pg_catalog.=) ANY (ARRAY['keep', 'group']) THEN col::text
    WHEN how OPERATOR(pg_catalog.=) 'year_of_birth' THEN col::text OPERATOR(pg_catalog.||) '_year'
    WHEN how OPERATOR(pg_catalog.~) '^band:' THEN col::text OPERATOR(pg_catalog.||) '_band'
    ELSE col::text OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) how
  END;
COMMENT ON FUNCTION caredata._publish_name(name, text) IS
  'internal: the name of a published column in its view (dob as age_band is dob_age_band, cost as band:1000 is cost_band)';

-- the select-list expression publishing a column at a ladder level
CREATE FUNCTION caredata._publish_column_at(col name, how text, level integer) RETURNS text
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  step text := caredata._publish_step(how, level);
  out text := caredata._publish_name(col, how);
  dob text := format('caredata.try_standardise_dob(s.%I::text)', col);
BEGIN
  IF step IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN format('%s AS %I', CASE
    WHEN step = 'keep' THEN format('s.%I', col)
    WHEN step = 'group' THEN format('s.%I::text', col)
    WHEN step = 'withheld' THEN format('NULL::%s', CASE
      WHEN how IN ('month', 'quarter') THEN 'date'
      WHEN how IN ('year', 'year_of_birth') THEN 'integer'
      ELSE 'text' END)
      -- (an age band's lower bound, beside it: withheld too)
      || CASE WHEN how = 'age_band' THEN format(' AS %I, NULL::integer', out) ELSE '' END
    WHEN step IN ('month', 'quarter', 'year') AND how IN ('month', 'quarter')
      THEN format('pg_catalog.date_trunc(%L, s.%I::timestamp)::date', step, col)
    WHEN step = 'year' THEN format('pg_catalog.date_part(''year'', s.%I::timestamp)::integer', col)
    WHEN step ~ '^year:' THEN format('(pg_catalog.date_part(''year'', s.%I::timestamp)::integer OPERATOR(pg_catalog./) %s OPERATOR(pg_catalog.*) %2$s)',
                                     col, substr(step, 6))
    WHEN step = 'year_of_birth' THEN format('pg_catalog.date_part(''year'', %s)::integer', dob)
    WHEN step ~ '^year_of_birth:' THEN format('(pg_catalog.date_part(''year'', %s)::integer OPERATOR(pg_catalog./) %s OPERATOR(pg_catalog.*) %2$s)',
                                              dob, substr(step, 15))
    WHEN step ~ '^age_band:' THEN format('caredata.age_band_label(%1$s, CURRENT_DATE, %2$s, %3$s) AS %4$I, '
                                         'caredata.age_band_from(%1$s, CURRENT_DATE, %2$s, %3$s)', dob, substr(step, 10),
                                         CASE WHEN step = 'age_band:20' THEN 80 ELSE 90 END, out)
    WHEN step IN ('sector', 'district', 'area') THEN format('caredata.try_postcode_%s(s.%I::text)', step, col)
    WHEN step ~ '^band:' THEN format('caredata.band(s.%I::numeric, %s)', col, substr(step, 6))
  END, CASE WHEN how = 'age_band' THEN col || '_age_from' ELSE out END);
END
$$;
COMMENT ON FUNCTION caredata._publish_column_at(name, text, integer) IS
  'internal: the select-list expression publishing a column with a treatment at a ladder level (see _publish_step); NULL for an unknown treatment';

-- the spec's quasi-identifiers, as the view names them: the spec's
-- "quasi_identifiers" (source columns), else every column published as a
-- date, an age or a place, and a kept sex or gender
CREATE FUNCTION caredata._publication_qi(spec jsonb) RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(pg_catalog.array_agg(caredata._publish_name(c.key, c.value) ORDER BY c.key), '{}')
    FROM pg_catalog.jsonb_each_text(spec OPERATOR(pg_catalog.->) 'columns') c
   WHERE CASE WHEN spec OPERATOR(pg_catalog.?) 'quasi_identifiers'
              THEN c.key OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT pg_catalog.jsonb_array_elements_text(spec OPERATOR(pg_catalog.->) 'quasi_identifiers')))
              ELSE c.value OPERATOR(pg_catalog.=) ANY (ARRAY['age_band', 'year_of_birth', 'sector', 'district', 'area', 'month', 'quarter', 'year'])
                OR pg_catalog.lower(c.key) OPERATOR(pg_catalog.~) '^(sex|gender)(_|$)' END
$$;
COMMENT ON FUNCTION caredata._publication_qi(jsonb) IS
  'internal: a publication''s quasi-identifiers as its view names them (the spec''s "quasi_identifiers", else its dates, ages, places and sex)';

-- its k: the spec's, else the limits' default
CREATE FUNCTION caredata._publication_k(spec jsonb) RETURNS integer
  LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  -- an identifiable release under a registered approval: no k (the
  -- approval, not generalisation, is its basis)
  SELECT CASE WHEN spec OPERATOR(pg_catalog.?) 'approval' THEN 1
              ELSE coalesce((spec OPERATOR(pg_catalog.->>) 'k')::integer, (SELECT l.k FROM caredata.publication_limits l)) END
$$;
COMMENT ON FUNCTION caredata._publication_k(jsonb) IS
  'internal: a publication''s k (its spec''s "k", else caredata.publication_limits.k)';

-- what a spec may say about k, its quasi-identifiers and an override
-- (checked by _publication_check as the role publishing)
CREATE FUNCTION caredata._publication_kanon_check(spec jsonb) RETURNS void
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q text;
BEGIN
  IF spec ? 'k' AND (jsonb_typeof(spec->'k') IS DISTINCT FROM 'number' OR (spec->>'k') !~ '^[0-9]{1,9}$' OR (spec->>'k')::integer < 2) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication''s k is an integer of at least 2',
      HINT = 'Leave "k" out for the default (caredata.publication_limits, 5).';
  END IF;
  IF spec ? 'quasi_identifiers' THEN
    IF jsonb_typeof(spec->'quasi_identifiers') IS DISTINCT FROM 'array' THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication''s quasi_identifiers are a list of its columns',
        HINT = 'For example ["dob", "sex", "postcode"], the source''s names as in "columns".';
    END IF;
    FOR q IN SELECT jsonb_array_elements_text(spec->'quasi_identifiers') LOOP
      IF NOT (spec->'columns') ? q THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('quasi-identifier "%s" is not a published column', q),
          HINT = 'Name quasi-identifiers as the spec''s "columns" names them.';
      END IF;
    END LOOP;
  END IF;
  IF spec ? 'linkability_override' THEN
    IF jsonb_typeof(spec->'linkability_override') IS DISTINCT FROM 'string' OR length(btrim(spec->>'linkability_override')) < 10 THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a linkability override needs its reason',
        HINT = 'Set "linkability_override" to why this recipient may receive linkable records (an approval, its reference); it is audited.';
    END IF;
    IF NOT pg_has_role(current_user, 'caredata_admin', 'MEMBER') THEN
      RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'only caredata_admin may override the linkability limit',
        HINT = 'Ask an admin; the override is audited.';
    END IF;
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._publication_kanon_check(jsonb) IS
  'internal: checks a spec''s "k", "quasi_identifiers" and "linkability_override" (a reason, caredata_admin only)';

-- A publication's query at a ladder level, k enforced: base yields person
-- and the published columns; "group" columns' rare codes become 'other';
-- rows in classes of fewer than k persons are left out.  With measure, the
-- rows of small classes stay, with their class size in _class (for
-- _publication_measure).
CREATE FUNCTION caredata._publication_kanon_query(spec jsonb, base text, measure boolean DEFAULT false) RETURNS text
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  k integer := caredata._publication_k(spec);
  qi text[] := caredata._publication_qi(spec);
  c record;
  cols text := '';
  flags text := '';
  grouped text := '';
  q text := base;
  part text;
BEGIN
  FOR c IN SELECT key, value, caredata._publish_name(key, value) AS out FROM jsonb_each_text(spec->'columns') ORDER BY key LOOP
    cols := cols || format(', b.%I', c.out);
    IF c.value = 'group' THEN
      flags := flags || format(', pg_catalog.row_number() OVER (PARTITION BY b.%1$I, b.person) AS %2$I', c.out, '_f_' || c.out);
      grouped := grouped || format(', CASE WHEN pg_catalog.count(*) FILTER (WHERE b.%2$I OPERATOR(pg_catalog.=) 1) OVER (PARTITION BY b.%1$I) '
                                   'OPERATOR(pg_catalog.<) %3$s AND b.%1$I IS NOT NULL THEN ''other'' ELSE b.%1$I END AS %1$I',
                                   c.out, '_f_' || c.out, k);
    ELSE
      grouped := grouped || format(', b.%I', c.out);
    END IF;
    -- an age band's lower bound, beside it (a function of the band: no quasi-identifier of its own)
    IF c.value = 'age_band' THEN
      cols := cols || format(', b.%I', c.key || '_age_from');
      grouped := grouped || format(', b.%I', c.key || '_age_from');
    END IF;
  END LOOP;
  IF flags <> '' THEN
    q := format('SELECT b.person%s FROM (SELECT b.*%s FROM (%s) b) b', grouped, flags, q);
  END IF;
  part := (SELECT string_agg(format('b.%I', x), ', ') FROM unnest(qi) x);
  q := format('SELECT b.*, pg_catalog.count(*) FILTER (WHERE b._first OPERATOR(pg_catalog.=) 1) OVER (%s) AS _class '
              'FROM (SELECT b.*, pg_catalog.row_number() OVER (PARTITION BY %sb.person) AS _first FROM (%s) b) b',
              CASE WHEN part IS NULL THEN '' ELSE 'PARTITION BY ' || part END,
              CASE WHEN part IS NULL THEN '' ELSE part || ', ' END, q);
  IF measure THEN
    RETURN q;
  END IF;
  RETURN format('SELECT b.person%s FROM (%s) b WHERE b._class OPERATOR(pg_catalog.>=) %s', cols, q, k);
END
$$;
COMMENT ON FUNCTION caredata._publication_kanon_query(jsonb, text, boolean) IS
  'internal: wraps a publication''s query so that rare codes of "group" columns become ''other'' and rows in classes of fewer than k persons are left out (with measure: kept, with their class size)';

-- What a publication's query at a level releases: rows, rows left out,
-- classes, the smallest class published, persons, and the persons whose
-- set of published records no other person shares (whom a second
-- recipient of the same columns links 1:1).  Run as the view's owner.
CREATE FUNCTION caredata._publication_measure(spec jsonb, base text) RETURNS jsonb
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  k integer := caredata._publication_k(spec);
  rowtext text;
  r jsonb;
BEGIN
  rowtext := (SELECT format('ROW(%s)::text', string_agg(format('v.%I', caredata._publish_name(key, value)), ', ' ORDER BY key))
                FROM jsonb_each_text(spec->'columns'));
  EXECUTE format($q$
    WITH v AS MATERIALIZED (%1$s),
    per AS (SELECT v.person, pg_catalog.md5(pg_catalog.string_agg(%2$s, pg_catalog.chr(30) ORDER BY %2$s)) AS sig
              FROM v WHERE v._class OPERATOR(pg_catalog.>=) $1 GROUP BY v.person),
    sig AS (SELECT per.sig, pg_catalog.count(*) AS n FROM per GROUP BY per.sig)
    SELECT pg_catalog.jsonb_build_object(
      'rows', (SELECT pg_catalog.count(*) FROM v),
      'rows_suppressed', (SELECT pg_catalog.count(*) FROM v WHERE v._class OPERATOR(pg_catalog.<) $1),
      'smallest_class', (SELECT pg_catalog.min(v._class) FROM v WHERE v._class OPERATOR(pg_catalog.>=) $1),
      'persons', (SELECT pg_catalog.count(*) FROM per),
      'linkable_persons', (SELECT coalesce(pg_catalog.sum(sig.n), 0) FROM sig WHERE sig.n OPERATOR(pg_catalog.=) 1))$q$,
    caredata._publication_kanon_query(spec, base, true), rowtext)
    INTO r USING k;
  RETURN r || jsonb_build_object(
    'suppressed_share', round(coalesce((r->>'rows_suppressed')::numeric / nullif((r->>'rows')::numeric, 0), 0), 4),
    'linkable_share', round(coalesce((r->>'linkable_persons')::numeric / nullif((r->>'persons')::numeric, 0), 0), 4));
END
$$;
COMMENT ON FUNCTION caredata._publication_measure(jsonb, text) IS
  'internal: what a publication''s query releases: rows, rows suppressed (classes below k), smallest class, persons, persons whose set of published records is unique (linkable across recipients), and their shares';

-- a publication's query before k: person and its columns at a ladder
-- level, from the source joined to the stored pseudonyms, objectors left
-- out; the reader is checked by the query (by the outer view on Citus)
CREATE FUNCTION caredata._publication_base(p caredata.publication, level integer, citus boolean) RETURNS text
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  cols text;
BEGIN
  cols := (SELECT coalesce(string_agg(', ' || caredata._publish_column_at(c.key, c.value, level), '' ORDER BY c.key), '')
             FROM jsonb_each_text(p.spec->'columns') c);
  IF citus THEN
    -- (on Citus the query names its domain and dataset: the coordinator's
    -- catalog is not read on the workers)
    RETURN format($v$
    SELECT m.pseudonym::text AS person%1$s
      FROM %2$s s
      JOIN caredata.pseudonym_map m ON m.domain = %3$L AND m.nhs_number OPERATOR(caredata.=) caredata.try_nhs_number(s.%4$I::text)
     WHERE caredata.permitted(m.nhs_number, %5$L, now(), %6$L)$v$,
      cols, p.source, p.spec->>'domain', p.spec->>'nhs_column', p.spec->>'purpose', p.spec->>'dataset');
  END IF;
  -- Every role reads every view's definition (pg_views, pg_get_viewdef):
  -- the recipient's domain and dataset are read from the catalog row by
  -- the view (once a query, as its owner), so that the definition names
  -- only what pg_class and pg_attribute show anyway (docs/publication.md)
  RETURN format($v$
    SELECT m.pseudonym::text AS person%1$s
      FROM %2$s s
      JOIN caredata.pseudonym_map m
        ON m.domain OPERATOR(pg_catalog.=) (SELECT p.spec OPERATOR(pg_catalog.->>) 'domain' FROM caredata.publication p WHERE p.name OPERATOR(pg_catalog.=) %3$L)
       AND m.nhs_number OPERATOR(caredata.=) caredata.try_nhs_number(s.%4$I::text)
     WHERE caredata.permitted(m.nhs_number, %5$L, pg_catalog.now(), %6$s) AND (SELECT caredata._published_reader())$v$,
    cols, p.source, p.name, p.spec->>'nhs_column', p.spec->>'purpose',
    -- (no dataset: a constant NULL, which keeps permitted()'s constant-argument path)
    CASE WHEN p.spec->>'dataset' IS NULL THEN 'NULL::text'
         ELSE format('(SELECT p.spec OPERATOR(pg_catalog.->>) ''dataset'' FROM caredata.publication p WHERE p.name OPERATOR(pg_catalog.=) %L)', p.name) END);
END
$$;
COMMENT ON FUNCTION caredata._publication_base(caredata.publication, integer, boolean) IS
  'internal: a publication''s query before k is enforced: person (the stored pseudonym) and its columns at a ladder level, objectors left out';

-- The ladder climbed (publish() and republish(), as the view's owner): the
-- lowest level at which at most max_suppressed_share of the rows fall in
-- classes below k and at most max_linkable_share of the persons are
-- linkable.  Else the lowest level within the suppression limit (or, when
-- none is, the level suppressing least), if its persons are not linkable;
-- else a refusal, unless the spec carries an admin's "linkability_override"
-- (audited; that level is then published).  What was done goes to
-- caredata.publication.disclosure.
CREATE FUNCTION caredata._publication_disclose(p caredata.publication, citus boolean) RETURNS integer
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  lim caredata.publication_limits;
  m jsonb;
  chosen jsonb;
  cand jsonb;
  least_supp jsonb;
  best jsonb;
  steps jsonb;
  prev_steps jsonb;
  lvl integer;
  overridden boolean := false;
BEGIN
  SELECT * INTO lim FROM caredata.publication_limits;
  -- an identifiable release under a registered approval (the approval
  -- register, src/publication/approval.sql) is published as the approval
  -- allows: not generalised, no class left out, nothing refused for
  -- linkability; what it discloses is still measured and recorded
  IF p.spec ? 'approval' THEN
    m := caredata._publication_measure(p.spec, caredata._publication_base(p, 0, citus))
         || jsonb_build_object('level', 0, 'steps', '{}'::jsonb);
    UPDATE caredata.publication x
       SET disclosure = m || jsonb_build_object(
             'k', 1, 'quasi_identifiers', '[]'::jsonb, 'approval', p.spec->>'approval',
             'max_linkable_share', lim.max_linkable_share, 'max_suppressed_share', lim.max_suppressed_share,
             'overridden', false, 'measured_at', now())
     WHERE x.name = p.name;
    RETURN 0;
  END IF;
  FOR lvl IN 0..3 LOOP
    steps := (SELECT coalesce(jsonb_object_agg(c.key, caredata._publish_step(c.value, lvl)), '{}')
                FROM jsonb_each_text(p.spec->'columns') c);
    IF steps = prev_steps THEN
      EXIT;  -- nothing coarser to try
    END IF;
    prev_steps := steps;
    m := caredata._publication_measure(p.spec, caredata._publication_base(p, lvl, citus))
         || jsonb_build_object('level', lvl, 'steps', steps);
    IF best IS NULL OR (m->>'linkable_share')::numeric < (best->>'linkable_share')::numeric THEN
      best := m;
    END IF;
    IF (m->>'suppressed_share')::numeric <= lim.max_suppressed_share THEN
      IF (m->>'linkable_share')::numeric <= lim.max_linkable_share THEN
        chosen := m;
        EXIT;
      END IF;
      -- the lowest level within the suppression limit
      cand := coalesce(cand, m);
    ELSIF least_supp IS NULL OR (m->>'rows_suppressed')::bigint < (least_supp->>'rows_suppressed')::bigint THEN
      least_supp := m;
    END IF;
  END LOOP;
  -- else the lowest level within the suppression limit, else the level
  -- that suppresses least; published if its persons are not linkable
  cand := coalesce(chosen, cand, least_supp);
  IF chosen IS NULL AND (cand->>'linkable_share')::numeric <= lim.max_linkable_share THEN
    chosen := cand;
  END IF;
  IF chosen IS NULL THEN
    IF p.spec->>'linkability_override' IS NULL THEN
      RAISE EXCEPTION USING ERRCODE = '42501',
        MESSAGE = format('publication "%s" would leave %s%% of its persons linkable across recipients', p.name,
                         round(100 * (cand->>'linkable_share')::numeric, 1)),
        DETAIL = format('%s of %s persons have a set of published records that no other person has (generalisation level %s of 3; the least at any level: %s%% at level %s); the limit is %s%%.',
                        cand->>'linkable_persons', cand->>'persons', cand->>'level',
                        round(100 * (best->>'linkable_share')::numeric, 1), best->>'level', round(100 * lim.max_linkable_share, 1)),
        HINT = 'Publish fewer or coarser columns (numbers as "band:N", codes as "group"), or, as caredata_admin, set "linkability_override" in the spec to the reason (audited).';
    END IF;
    chosen := cand;
    overridden := true;
    PERFORM caredata.audit_append('publication.linkability_override', p.name,
      jsonb_build_object('recipient', p.recipient, 'linkable_share', chosen->'linkable_share',
                         'max_linkable_share', lim.max_linkable_share, 'level', chosen->'level'),
      p.spec->>'linkability_override');
  END IF;
  UPDATE caredata.publication x
     SET disclosure = chosen || jsonb_build_object(
           'k', caredata._publication_k(p.spec), 'quasi_identifiers', to_jsonb(caredata._publication_qi(p.spec)),
           'max_linkable_share', lim.max_linkable_share, 'max_suppressed_share', lim.max_suppressed_share,
           'overridden', overridden, 'measured_at', now())
   WHERE x.name = p.name;
  RETURN (chosen->>'level')::integer;
END
$$;
COMMENT ON FUNCTION caredata._publication_disclose(caredata.publication, boolean) IS
  'internal: climbs the generalisation ladder for a publication (k, suppression and linkability limits), refuses it when its persons stay linkable unless overridden (audited), records what was done in caredata.publication.disclosure; returns the level';

CREATE VIEW caredata.publication_disclosure AS
  SELECT p.name, p.recipient,
         (p.disclosure->>'k')::integer AS k,
         ARRAY(SELECT jsonb_array_elements_text(p.disclosure->'quasi_identifiers')) AS quasi_identifiers,
         (p.disclosure->>'level')::integer AS level,
         p.disclosure->'steps' AS steps,
         (p.disclosure->>'rows')::bigint - (p.disclosure->>'rows_suppressed')::bigint AS rows_published,
         (p.disclosure->>'rows_suppressed')::bigint AS rows_suppressed,
         (p.disclosure->>'smallest_class')::bigint AS smallest_class,
         (p.disclosure->>'persons')::bigint AS persons,
         (p.disclosure->>'linkable_share')::numeric AS linkable_share,
         (p.disclosure->>'max_linkable_share')::numeric AS max_linkable_share,
         (p.disclosure->>'overridden')::boolean AS overridden,
         (p.disclosure->>'measured_at')::timestamptz AS measured_at
    FROM caredata.publication p;
COMMENT ON VIEW caredata.publication_disclosure IS
  'what publish() or republish() did to each publication, as measured then: k, quasi-identifiers, ladder level and each column''s step, rows published and suppressed (classes below k), the smallest class, persons, the share of persons linkable across recipients, the limit, and whether an admin overrode it';
REVOKE ALL ON caredata.publication_disclosure FROM PUBLIC;
GRANT SELECT ON caredata.publication_disclosure TO caredata_admin;

REVOKE ALL ON FUNCTION caredata._publication_limits_audit(), caredata._publication_limits_refuse(),
  caredata._publish_step(text, integer), caredata._publish_name(name, text), caredata._publish_column_at(name, text, integer),
  caredata._publication_qi(jsonb), caredata._publication_k(jsonb), caredata._publication_kanon_check(jsonb),
  caredata._publication_kanon_query(jsonb, text, boolean), caredata._publication_measure(jsonb, text),
  caredata._publication_base(caredata.publication, integer, boolean),
  caredata._publication_disclose(caredata.publication, boolean) FROM PUBLIC;
-- (the check runs as the role inserting a publication: an admin)
GRANT EXECUTE ON FUNCTION caredata._publish_step(text, integer), caredata._publish_name(name, text),
  caredata._publish_column_at(name, text, integer), caredata._publication_qi(jsonb), caredata._publication_k(jsonb),
  caredata._publication_kanon_check(jsonb) TO caredata_admin;

-- (caredata._publish_column: replaced again below)

-- (caredata._identifier_treatment_ok: replaced again below)

-- (caredata._publication_check: replaced again below)

-- (caredata._publication_view: replaced again below)

-- (caredata.publish: replaced again below)

-- ---- issue 24, sections 5 and 6 together: the functions both changed, as
-- src/publication/publication.sql has them (k-anonymity and approvals) ----

CREATE OR REPLACE FUNCTION caredata._publish_column(col name, how text) RETURNS text
  LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  -- level 0 of the generalisation ladder (src/publication/kanon.sql)
  RETURN caredata._publish_column_at(col, how, 0);
END
$$;
COMMENT ON FUNCTION caredata._publish_column(name, text) IS
  'internal: the select-list expression publishing a column: keep, group, month, quarter, year, year_of_birth, age_band, sector, district, area or band:N';


-- (caredata._publication_check: replaced again below)

-- (caredata._publication_view: replaced again below)

CREATE OR REPLACE FUNCTION caredata.publish(name text, source regclass, spec jsonb, recipient name)
  RETURNS regclass LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  full_spec jsonb := jsonb_build_object('nhs_column', 'nhs_number') || coalesce(spec, '{}');
BEGIN
  PERFORM caredata._catalog_write('caredata.publish()');
  IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication name is lower-case letters, digits and _',
      HINT = 'It names the view published.<name>.';
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.publication x WHERE x.name = publish.name) THEN
    RAISE EXCEPTION USING ERRCODE = '42710', MESSAGE = format('publication "%s" already exists', name),
      HINT = 'Unpublish it first, or republish it.';
  END IF;
  IF full_spec->>'purpose' IS NULL OR NOT EXISTS (SELECT 1 FROM caredata.purpose x WHERE x.name = full_spec->>'purpose') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication needs the purpose it is for',
      HINT = 'Set "purpose" in the spec to one of caredata.purpose (research, ...): the objection filter is built for it.';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM caredata.domain d WHERE d.name = full_spec->>'domain' AND d.retired_at IS NULL) THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = 'a publication needs the recipient''s pseudonym domain',
      HINT = 'Set "domain" in the spec to a domain made with caredata.create_domain(), and run caredata.refresh_pseudonyms() for the source.';
  END IF;
  -- the rest is checked by caredata._publication_check(), as the caller
  INSERT INTO caredata.publication (name, recipient, source, spec) VALUES (name, recipient, source, full_spec);
  PERFORM caredata._publication_view(name);
  PERFORM caredata.audit_append('publication.create', name,
    jsonb_build_object('recipient', recipient, 'source', source::text, 'spec', full_spec,
                       'disclosure', (SELECT x.disclosure - 'measured_at' FROM caredata.publication x WHERE x.name = publish.name)));
  RETURN format('published.%I', name)::regclass;
END
$$;
COMMENT ON FUNCTION caredata.publish(text, regclass, jsonb, name) IS
  'publish a source to one recipient as published.<name>: spec {"domain", "purpose", "dataset"?, "approval"?, "nhs_column"? (default nhs_number), "columns": {column: keep|group|month|quarter|year|year_of_birth|age_band|sector|district|area|band:N}, "quasi_identifiers"?, "k"? (default 5), "linkability_override"? (a reason, admin only)}; the NHS number becomes the recipient''s stored pseudonym, other columns are dropped, objectors for the purpose are filtered out; rows in classes of fewer than k persons are left out, columns generalised up a fixed ladder, and a publication whose persons stay linkable across recipients is refused (caredata.publication_disclosure); direct identifiers are refused unless "approval" names an approval in the register covering the recipient, purpose and dataset (then the view checks it on every read); recipients that hold identifiers are refused; audited';

-- an identifiable release under an approval is not generalised (sections 5 and 6)



-- ---- issue 25, section 7: link_run() reports each phase as it finishes ----
-- (src/linkage/run.sql, src/linkage/progress.c): counts, seconds and rate
-- at the level of the new setting caredata.link_progress (off, notice,
-- info); caredata._link_progress() prints a line, link_run() calls it.
-- one progress line: "link_run: <what> <n> <unit> in <s> s (<rate> <unit>/s)<tail>"
CREATE FUNCTION caredata._link_progress(what text, n bigint, unit text, started timestamptz, tail text DEFAULT NULL)
  RETURNS void
  AS 'MODULE_PATHNAME', 'link_progress_report' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION caredata._link_progress(text, bigint, text, timestamptz, text) IS
  'internal: report one phase of link_run() (counts, seconds and rate, never an identifier) as a NOTICE, an INFO or not at all, as caredata.link_progress says';
REVOKE EXECUTE ON FUNCTION caredata._link_progress(text, bigint, text, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata._link_progress(text, bigint, text, timestamptz, text) TO caredata_linker, caredata_admin;

-- (caredata.link_run: replaced again below)


-- ---- issue 25, section 6: link_quality() in one pass over the records ----
-- Same signature, columns and values; privileges, the pinned search_path and
-- the COMMENT are kept (CREATE OR REPLACE keeps the grants and the comment).
-- (caredata.link_quality: replaced again below)

-- ---- issue 25, section 3: twins kept apart without names ("nhs_confirm": "details") ----
-- link_components() reads an optional third, boolean column of its NHS query
-- (in C); the default spec, its check and link_run() learn "nhs_confirm"
-- (caredata.link_default_spec: replaced again below)

-- (caredata._link_check_spec: replaced again below)

-- (caredata.link_run: replaced again below)
COMMENT ON FUNCTION caredata.link_components(text, boolean, text) IS
  'union-find over the (bigint, bigint) links a query returns, in its order: each record in a link, its cluster (the smallest record id in it) and whether a link of it was refused; one_to_one accepts a link only if neither record is linked yet; nhs_query (record id, NHS digits[, confirmed boolean]) keeps apart clusters holding confirmed valid NHS numbers that differ by more than one typing error (confirmed by a link between two records carrying the number, or from the start when the third column is true)';

-- ---- issue 25, any column in a source: fields, text record ids ----
ALTER TABLE caredata.link_source ADD COLUMN fields jsonb;
UPDATE caredata.link_source SET fields = '{}';
ALTER TABLE caredata.link_source ALTER COLUMN fields SET DEFAULT '{}', ALTER COLUMN fields SET NOT NULL;
COMMENT ON TABLE caredata.link_source IS
  'linkage sources: a relation, which of its columns hold the record id (integer or text) and the NHS identifiers, and the further fields it brings ({"field": {"column": ..., "kind": name|address|postcode|identifier|text}}) (link_add_source)';
ALTER TABLE caredata.link_record_key ALTER COLUMN record_id DROP NOT NULL, ADD COLUMN record_key text;
UPDATE caredata.link_record_key SET record_key = record_id::text;
ALTER TABLE caredata.link_record_key ALTER COLUMN record_key SET NOT NULL,
  DROP CONSTRAINT link_record_key_source_record_id_key, ADD CONSTRAINT link_record_key_source_record_key_key UNIQUE (source, record_key);
COMMENT ON TABLE caredata.link_record_key IS
  'a stable internal id (rid) per (source, record_key), numbered in order of first sight; never reused (record_key is the record id as text; record_id the same id when it is an integer)';
ALTER TABLE caredata.link_record ALTER COLUMN record_id DROP NOT NULL, ADD COLUMN record_key text, ADD COLUMN fields jsonb;
UPDATE caredata.link_record SET record_key = record_id::text;
ALTER TABLE caredata.link_record ALTER COLUMN record_key SET NOT NULL;
COMMENT ON TABLE caredata.link_record IS
  'standardised records of the last run: NHS number digits (valid or not) and their first six (nhs_head) and last four (nhs_tail), date of birth, sex code, postcode (canonical when it is a UK postcode, else as text) and its UK parts, value frequencies (tf_*), the record id as text (record_key; record_id when it is an integer) and the standardised further fields with their derived codes and value frequencies (fields)';
ALTER TABLE caredata.person_index DROP CONSTRAINT person_index_pkey;
ALTER TABLE caredata.person_index ALTER COLUMN record_id DROP NOT NULL, ADD COLUMN record_key text;
UPDATE caredata.person_index SET record_key = record_id::text;
ALTER TABLE caredata.person_index ALTER COLUMN record_key SET NOT NULL, ADD CONSTRAINT person_index_pkey PRIMARY KEY (source, record_key);
COMMENT ON TABLE caredata.person_index IS
  'the person index: (source, record_key) -> person_id, stable across runs (link_run keeps ids, records merges and splits in person_event); record_key is the record id as text, record_id the same id when the source''s id is an integer (NULL for text ids)';
DROP FUNCTION caredata.link_add_source(text, regclass, name, name, name, name, name);
DROP FUNCTION caredata.link_lookup(text, date, text, text, text, integer);

-- (caredata._link_record_columns: replaced again below)

-- (caredata._link_fields: replaced again below)

-- (caredata._link_field_columns: replaced again below)

-- (caredata._link_record_sql: replaced again below)

-- (caredata._link_maintain: replaced again below)

-- (caredata._link_check_expression: replaced again below)

-- (caredata._link_check_spec: replaced again below)

-- (caredata.link_add_source: replaced again below)

-- (caredata._link_std_kind: replaced again below)

-- (caredata._link_std_expr: replaced again below)

-- (caredata.link_standardise: replaced again below)

-- (caredata._link_estimate_pairs: replaced again below)

-- (caredata.link_blocking_counts: replaced again below)

-- (caredata._link_pairs_sql: replaced again below)

-- (caredata.link_run: replaced again below)

-- (caredata.link_quality: replaced again below)

-- (caredata.link_explain: replaced again below)

-- (caredata.link_explain: replaced again below)

-- (caredata.link_lookup: replaced again below)


-- ---- issue 25, names: standardisers and comparators for names and addresses (src/linkage/names.sql) ----
-- compare_postcode (same C symbol) now levels two postcodes of other countries: 5 equal, 1 different
COMMENT ON FUNCTION caredata.compare_postcode(text, text) IS
  'postcode comparison level: two UK postcodes 5 same unit, 4 same sector, 3 same district, 2 same area, 1 different; two postcodes of other countries 5 same letters and digits, 1 different; 0 missing, empty, or a UK postcode against one that is not';
CREATE FUNCTION caredata.standardise_name(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.standardise_name(text) IS
  'a name standardised for linkage: lower case, Latin letters folded to ASCII (é e, ß ss, ø o, æ ae, ł l), apostrophes removed, other punctuation and hyphens to spaces, titles and suffixes (mr mrs ms miss mx dr prof rev sir dame lady lord jr sr ii iii iv) dropped, one space between words; NULL when nothing is left';

CREATE FUNCTION caredata.name_phonetic(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.name_phonetic(text) IS
  'Double Metaphone primary code of each word of the standardised name, one space apart (PostgreSQL''s fuzzystrmatch library, loaded at first use; CREATE EXTENSION fuzzystrmatch is not needed, the postgresql-contrib files are); NULL when no word has a code';

CREATE FUNCTION caredata.standardise_address(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.standardise_address(text) IS
  'an address standardised for linkage: folded as standardise_name (no titles dropped), street words to one spelling (road rd, street st, saint st, avenue ave, lane ln, drive dr, close cl, court ct, crescent cres, place pl, gardens gdns, terrace terr, square sq, grove gr, park pk, mount mt, apartment/apt flat), "12 a" joined to "12a", a UK postcode removed; NULL when nothing is left';

CREATE FUNCTION caredata.address_house_number(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.address_house_number(text) IS
  'the house and flat numbers of an address: the words of standardise_address that start with a digit, in order, one space apart ("Flat 3, 12 High St" gives "3 12"); NULL when there is none';

CREATE FUNCTION caredata.standardise_postcode_any(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.standardise_postcode_any(text) IS
  'a postcode of any country: the canonical form of a UK postcode (SW1A 1AA), else upper case keeping letters (accents folded), digits, hyphens and single spaces (75008, K1A 0B6); NULL when no letter or digit is left';

CREATE FUNCTION caredata.compare_token_overlap(text, text, thresholds double precision[] DEFAULT '{0.8,0.5}') RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_token_overlap(text, text, double precision[]) IS
  'comparison level by the Jaccard overlap of the two word sets (split on white space), thresholds strictest first: exact n+2, overlap >= thresholds[i] n+2-i, else 1; 0 missing or no word';

CREATE FUNCTION caredata.compare_name(text, text, thresholds double precision[] DEFAULT '{0.92,0.8}') RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_name(text, text, double precision[]) IS
  'comparison level of two standardised names (standardise_name): 5 exact, 4 Jaro-Winkler >= thresholds[1] or one edit (Damerau-Levenshtein), 3 Jaro-Winkler >= thresholds[2], 2 same phonetic code (name_phonetic), 1 different, 0 missing or empty; with n thresholds exact is n+3';

-- (caredata.link_names_spec: replaced again below)

-- (caredata.link_standardise: replaced again below)

-- (caredata.link_lookup: replaced again below)

CREATE OR REPLACE FUNCTION caredata.compare_name(text, text, thresholds double precision[] DEFAULT '{0.92,0.8}') RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_name(text, text, double precision[]) IS
  'comparison level of two standardised names (standardise_name): 5 exact, 4 Jaro-Winkler >= thresholds[1] or one edit (Damerau-Levenshtein), 3 Jaro-Winkler >= thresholds[2], 2 same phonetic code (name_phonetic), 1 different, 0 missing or empty; with n thresholds exact is n+3';

CREATE OR REPLACE FUNCTION caredata.compare_name(text, text, l_phonetic text, r_phonetic text, thresholds double precision[] DEFAULT '{0.92,0.8}') RETURNS integer
  AS 'MODULE_PATHNAME', 'compare_name_coded' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_name(text, text, text, text, double precision[]) IS
  'name comparison level as compare_name(text, text), with the two names'' phonetic codes given (name_phonetic, as linkage keeps them in <field>_ph) instead of computed per pair';

-- (caredata.link_names_spec: replaced again below)

-- ---- issue 25, section 4: linkage projects ----
-- (src/linkage/tables.sql, model.sql, run.sql, inspect.sql) A database holds
-- several named linkage projects; the catalog caredata.link_project, a
-- project column on the linkage tables (what 0.1.0 held goes to project
-- 'default'), link_record and person_index re-made LIST-partitioned by
-- project with one partition per project, and every linkage function that
-- reads or writes them with a last parameter project (DEFAULT 'default').
CREATE TABLE caredata.link_project (
  project      text PRIMARY KEY
               CHECK (project ~ '^[a-z][a-z0-9_]{0,62}$'),
  created_at   timestamptz NOT NULL DEFAULT now(),
  created_by   name NOT NULL DEFAULT current_user,
  description  text
);
COMMENT ON TABLE caredata.link_project IS
  'linkage projects: each holds its own sources, models, runs, links, standardised records and person index (link_create_project, link_drop_project)';
INSERT INTO caredata.link_project (project, description) VALUES ('default', 'the project of calls that name none');

-- the column project, filled, then its default (a default given to ADD
-- COLUMN would stay behind as the column's "missing value", which a fresh
-- install does not have)
DO $project_column$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['link_source', 'link_record_key', 'link_model', 'link_model_level', 'link_run'] LOOP
    EXECUTE format('ALTER TABLE caredata.%I ADD COLUMN project text', t);
    EXECUTE format('UPDATE caredata.%I SET project = ''default''', t);
    EXECUTE format('ALTER TABLE caredata.%I ALTER COLUMN project SET DEFAULT ''default'', ALTER COLUMN project SET NOT NULL', t);
  END LOOP;
END
$project_column$;
ALTER TABLE caredata.link_source DROP CONSTRAINT link_source_pkey,
  ADD CONSTRAINT link_source_project_fkey FOREIGN KEY (project) REFERENCES caredata.link_project,
  ADD CONSTRAINT link_source_pkey PRIMARY KEY (project, source);
ALTER TABLE caredata.link_record_key DROP CONSTRAINT link_record_key_source_record_key_key,
  ADD CONSTRAINT link_record_key_project_fkey FOREIGN KEY (project) REFERENCES caredata.link_project,
  ADD CONSTRAINT link_record_key_project_source_record_key_key UNIQUE (project, source, record_key);
COMMENT ON TABLE caredata.link_record_key IS
  'a stable internal id (rid) per (project, source, record_key), numbered in order of first sight across projects; never reused (record_key is the record id as text; record_id the same id when it is an integer)';
ALTER TABLE caredata.link_model_level DROP CONSTRAINT link_model_level_model_version_fkey;
ALTER TABLE caredata.link_run DROP CONSTRAINT link_run_model_version_fkey;
ALTER TABLE caredata.link_model DROP CONSTRAINT link_model_pkey,
  ADD CONSTRAINT link_model_project_fkey FOREIGN KEY (project) REFERENCES caredata.link_project,
  ADD CONSTRAINT link_model_pkey PRIMARY KEY (project, model, version);
ALTER TABLE caredata.link_model_level DROP CONSTRAINT link_model_level_pkey,
  ADD CONSTRAINT link_model_level_pkey PRIMARY KEY (project, model, version, comparison, level),
  ADD CONSTRAINT link_model_level_project_model_version_fkey FOREIGN KEY (project, model, version) REFERENCES caredata.link_model ON DELETE CASCADE;
ALTER TABLE caredata.link_run
  ADD CONSTRAINT link_run_project_model_version_fkey FOREIGN KEY (project, model, version) REFERENCES caredata.link_model;

-- link_record and person_index: re-made partitioned (a table cannot become
-- one), their rows moved to project 'default', the lookup indexes runs had
-- made rebuilt on its partition
ALTER TABLE caredata.link_record RENAME TO link_record_0_1;
CREATE TABLE caredata.link_record (project text NOT NULL DEFAULT 'default', LIKE caredata.link_record_0_1 INCLUDING DEFAULTS)
  PARTITION BY LIST (project);
CREATE TABLE caredata.link_record_p_default PARTITION OF caredata.link_record (PRIMARY KEY (rid)) FOR VALUES IN ('default');
INSERT INTO caredata.link_record SELECT 'default', * FROM caredata.link_record_0_1;
DO $convert$
DECLARE
  col name;
BEGIN
  FOR col IN SELECT DISTINCT a.attname FROM pg_catalog.pg_index i
               JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
              WHERE i.indrelid = 'caredata.link_record_0_1'::regclass AND NOT i.indisprimary AND i.indnatts = 1 LOOP
    EXECUTE format('CREATE INDEX ON caredata.link_record_p_default (%I)', col);
  END LOOP;
END
$convert$;
ALTER EXTENSION caredata DROP TABLE caredata.link_record_0_1;   -- and from the dumped catalogs
DROP TABLE caredata.link_record_0_1;
COMMENT ON TABLE caredata.link_record IS
  'standardised records of each project''s last run (a partition per project): NHS number digits (valid or not) and their first six (nhs_head) and last four (nhs_tail), date of birth, sex code, postcode (canonical when it is a UK postcode, else as text) and its UK parts, value frequencies (tf_*), the record id as text (record_key; record_id when it is an integer) and the standardised further fields with their derived codes and value frequencies (fields)';
COMMENT ON TABLE caredata.link_record_p_default IS 'partition of caredata.link_record holding linkage project default';

ALTER TABLE caredata.person_index RENAME TO person_index_0_1;
CREATE TABLE caredata.person_index (project text NOT NULL DEFAULT 'default', LIKE caredata.person_index_0_1 INCLUDING DEFAULTS)
  PARTITION BY LIST (project);
CREATE TABLE caredata.person_index_p_default PARTITION OF caredata.person_index
  (PRIMARY KEY (record_key, source), UNIQUE (rid)) FOR VALUES IN ('default');
CREATE INDEX person_index_p_default_person_id_idx ON caredata.person_index_p_default (person_id);
CREATE INDEX person_index_p_default_record_id_source_idx ON caredata.person_index_p_default (record_id, source);
INSERT INTO caredata.person_index SELECT 'default', * FROM caredata.person_index_0_1;
ALTER EXTENSION caredata DROP TABLE caredata.person_index_0_1;
DROP TABLE caredata.person_index_0_1;
ANALYZE caredata.link_record_p_default;
ANALYZE caredata.person_index_p_default;
COMMENT ON TABLE caredata.person_index IS
  'the person index of each project (a partition per project): (project, source, record_key) -> person_id, stable across runs (link_run keeps ids, records merges and splits in person_event); record_key is the record id as text, record_id the same id when the source''s id is an integer (NULL for text ids)';
COMMENT ON TABLE caredata.person_index_p_default IS 'partition of caredata.person_index holding linkage project default';

DO $grants$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['link_record', 'person_index', 'link_project', 'link_record_p_default', 'person_index_p_default']
  LOOP
    EXECUTE format('REVOKE ALL ON caredata.%I FROM PUBLIC', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON caredata.%I TO caredata_linker, caredata_admin', t);
    EXECUTE format('SELECT pg_catalog.pg_extension_config_dump(%L, %L)', 'caredata.' || t,
                   CASE t WHEN 'link_project' THEN 'WHERE project <> ''default''' ELSE '' END);
  END LOOP;
END
$grants$;

-- the linkage functions whose signatures changed (projects; fields): the
-- old ones dropped, the final ones below
DROP FUNCTION IF EXISTS caredata._link_maintain(text, jsonb);
DROP FUNCTION IF EXISTS caredata.link_add_source(text, regclass, name, name, name, name, name, jsonb);
DROP FUNCTION IF EXISTS caredata.link_standardise(text[], bigint);
DROP FUNCTION IF EXISTS caredata.link_create_model(text, jsonb);
DROP FUNCTION IF EXISTS caredata._link_comparisons(text, integer);
DROP FUNCTION IF EXISTS caredata._link_compare_sql(text, integer, double precision[]);
DROP FUNCTION IF EXISTS caredata._link_estimate_pairs(jsonb, text);
DROP FUNCTION IF EXISTS caredata.link_blocking_counts(text, integer);
DROP FUNCTION IF EXISTS caredata._link_pairs_sql(text, integer, double precision[], boolean);
DROP FUNCTION IF EXISTS caredata.link_run(text, integer, text, double precision, boolean, boolean, boolean, text[]);
DROP FUNCTION IF EXISTS caredata.link_quality(regclass, name, text);
DROP FUNCTION IF EXISTS caredata._link_trained_version(text, integer);
DROP FUNCTION IF EXISTS caredata.link_explain(text, bigint, text, bigint, text, integer);
DROP FUNCTION IF EXISTS caredata.link_explain(text, text, text, text, text, integer);
DROP FUNCTION IF EXISTS caredata.link_lookup(text, date, text, text, text, integer, jsonb);
DROP FUNCTION IF EXISTS caredata._link_check_spec(jsonb);
DROP FUNCTION IF EXISTS caredata._link_fields();
DROP FUNCTION IF EXISTS caredata._link_field_columns();
DROP FUNCTION IF EXISTS caredata._link_record_sql();


CREATE OR REPLACE FUNCTION caredata._link_check_project(project text) RETURNS text
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  -- the projects, models and person index are the coordinator's (issue 27)
  PERFORM caredata._coordinator_only('caredata linkage');
  IF project IS NULL OR project !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    PERFORM caredata._link_bad('a linkage project name is lower-case letters, digits and _', 'For example ''default'' or ''gp_hes''.');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM caredata.link_project p WHERE p.project = _link_check_project.project) THEN
    PERFORM caredata._link_bad(format('linkage project "%s" does not exist', project),
                               'Create it with caredata.link_create_project(), or see caredata.link_project.', '42704');
  END IF;
  RETURN project;
END
$$;
COMMENT ON FUNCTION caredata._link_check_project(text) IS
  'internal: the linkage project a caller names, refused with a hint when its name is malformed (22023) or it does not exist (42704)';

CREATE OR REPLACE FUNCTION caredata._link_partition(parent regclass, project text) RETURNS regclass
  LANGUAGE sql STABLE PARALLEL SAFE
  BEGIN ATOMIC
    SELECT c.oid::pg_catalog.regclass
      FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
     WHERE i.inhparent OPERATOR(pg_catalog.=) parent
       AND pg_catalog.pg_get_expr(c.relpartbound, c.oid) OPERATOR(pg_catalog.=)
           ('FOR VALUES IN (' OPERATOR(pg_catalog.||) pg_catalog.quote_literal(project) OPERATOR(pg_catalog.||) ')');
  END;
COMMENT ON FUNCTION caredata._link_partition(regclass, text) IS
  'internal: the partition of caredata.link_record or caredata.person_index holding one linkage project''s rows (NULL if none)';

CREATE OR REPLACE FUNCTION caredata._link_record_columns() RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN ARRAY['rid', 'source', 'record_id', 'nhs_digits', 'nhs_head', 'nhs_tail', 'dob', 'sex', 'postcode', 'sector',
               'district', 'area', 'yob', 'tf_nhs_digits', 'tf_dob', 'tf_postcode', 'record_key', 'fields',
               'pattern', 'weight', 'l', 'r', 'rid_l', 'rid_r', 'tf_adj'];
COMMENT ON FUNCTION caredata._link_record_columns() IS
  'internal: the names a linkage field may not take (the columns of caredata.link_record and of the pair queries)';

CREATE OR REPLACE FUNCTION caredata._link_fields(project text)
  RETURNS TABLE (field text, kind text, columns text[])
  -- PL/pgSQL, not SQL: its plan is kept for the session (a SQL function
  -- with SET is planned again at every call, and a lookup calls this and
  -- the functions below several times)
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT f.key, min(f.value->>'kind'),
         ARRAY[f.key] || CASE min(f.value->>'kind') WHEN 'name' THEN ARRAY[f.key || '_ph']
                                                    WHEN 'address' THEN ARRAY[f.key || '_num'] ELSE '{}'::text[] END
    FROM caredata.link_source ls, jsonb_each(ls.fields) f
   WHERE ls.project = _link_fields.project
   GROUP BY f.key ORDER BY f.key;
END
$$;
COMMENT ON FUNCTION caredata._link_fields(text) IS
  'internal: the further fields a linkage project''s sources declare, their kind and the record columns each gives';

CREATE OR REPLACE FUNCTION caredata._link_field_columns(project text) RETURNS text[]
  LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(array_agg(c ORDER BY c), '{}') FROM caredata._link_fields(project) f, unnest(f.columns) c
$$;
COMMENT ON FUNCTION caredata._link_field_columns(text) IS
  'internal: the record columns the declared linkage fields give (each field, name_ph, address_num), which comparisons and blocking rules may name';

CREATE OR REPLACE FUNCTION caredata._link_record_sql(project text) RETURNS text
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result text;
BEGIN
  SELECT CASE WHEN count(*) = 0 THEN caredata._link_partition('caredata.link_record', _link_record_sql.project)::text
              ELSE '(SELECT x.*' ||
                   (SELECT string_agg(format(', (x.fields OPERATOR(pg_catalog.->>) %1$L) AS %1$I', c), '' ORDER BY c)
                      FROM caredata._link_fields(_link_record_sql.project) g, unnest(g.columns) c) ||
                   string_agg(format(', (x.fields OPERATOR(pg_catalog.->>) %1$L)::double precision AS %1$I', 'tf_' || f.field), '' ORDER BY f.field) ||
                   ' FROM ' || caredata._link_partition('caredata.link_record', _link_record_sql.project)::text || ' x)' END
    INTO result
    FROM caredata._link_fields(_link_record_sql.project) f;
  RETURN result;
END
$$;
COMMENT ON FUNCTION caredata._link_record_sql(text) IS
  'internal: a project''s standardised records with one column per declared field (and tf_<field>), for comparisons and blocking rules to name';

-- (caredata._link_maintain: replaced again below)

-- (caredata._link_check_expression: replaced again below)

-- (caredata._link_check_spec: replaced again below)

CREATE OR REPLACE FUNCTION caredata.link_create_project(project text, description text DEFAULT NULL) RETURNS void
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_project text := project;
BEGIN
  PERFORM caredata._coordinator_only('caredata linkage');
  IF p_project IS NULL OR p_project !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    PERFORM caredata._link_bad('a linkage project name is lower-case letters, digits and _', 'For example ''gp_hes'' or ''birth_cohort''.');
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.link_project x WHERE x.project = p_project) THEN
    PERFORM caredata._link_bad(format('linkage project "%s" already exists', p_project),
                               'Choose another name, or drop it first with caredata.link_drop_project().', '42710');
  END IF;
  INSERT INTO caredata.link_project (project, description) VALUES (p_project, link_create_project.description);
  PERFORM caredata._link_maintain('create_partitions', project => p_project);
  PERFORM caredata.audit_append('linkage.create_project', p_project, jsonb_build_object('description', link_create_project.description));
END
$$;
COMMENT ON FUNCTION caredata.link_create_project(text, text) IS
  'create a linkage project: a name under which sources, models, runs, links, standardised records and a person index live apart from every other project''s';

CREATE OR REPLACE FUNCTION caredata.link_drop_project(project text) RETURNS void
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_project text := caredata._link_check_project(project);
  counts jsonb;
BEGIN
  IF p_project = 'default' THEN
    PERFORM caredata._link_bad('the default linkage project cannot be dropped',
                               'Calls that name no project use it; empty it instead (delete its sources, models and runs).', '0A000');
  END IF;
  -- one run at a time (as link_run() takes it)
  LOCK TABLE caredata.link_record_key IN EXCLUSIVE MODE;
  counts := jsonb_build_object(
    'sources', (SELECT count(*) FROM caredata.link_source x WHERE x.project = p_project),
    'models', (SELECT count(*) FROM caredata.link_model x WHERE x.project = p_project),
    'runs', (SELECT count(*) FROM caredata.link_run x WHERE x.project = p_project),
    'records', (SELECT count(*) FROM caredata.link_record_key x WHERE x.project = p_project));
  DELETE FROM caredata.link_pair x WHERE x.run_id IN (SELECT r.run_id FROM caredata.link_run r WHERE r.project = p_project);
  DELETE FROM caredata.link_run x WHERE x.project = p_project;   -- and person_event, by its foreign key
  DELETE FROM caredata.link_model x WHERE x.project = p_project; -- and link_model_level
  DELETE FROM caredata.link_record_key x WHERE x.project = p_project;
  DELETE FROM caredata.link_source x WHERE x.project = p_project;
  DELETE FROM caredata.link_project x WHERE x.project = p_project;
  PERFORM caredata._link_maintain('drop_partitions', project => p_project);
  PERFORM caredata.audit_append('linkage.drop_project', p_project, counts);
END
$$;
COMMENT ON FUNCTION caredata.link_drop_project(text) IS
  'drop a linkage project and everything of it (sources, models, runs, links, person events, standardised records, person index); audited; the default project cannot be dropped';

-- (caredata.link_add_source: replaced again below)

CREATE OR REPLACE FUNCTION caredata._link_std_kind(kind text, arg text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN CASE kind
    WHEN 'name' THEN format('caredata.standardise_name(%s)', arg)
    WHEN 'name_ph' THEN format('caredata.name_phonetic(caredata.standardise_name(%s))', arg)
    WHEN 'address' THEN format('caredata.standardise_address(%s)', arg)
    WHEN 'address_num' THEN format('caredata.address_house_number(%s)', arg)
    WHEN 'postcode' THEN format('caredata.standardise_postcode_any(%s)', arg)
    WHEN 'identifier' THEN format('nullif(upper(regexp_replace(%s, ''[^[:alnum:]]'', '''', ''g'')), '''')', arg)
    WHEN 'text' THEN format('nullif(lower(btrim(regexp_replace(%s, ''\s+'', '' '', ''g''))), '''')', arg) END;
COMMENT ON FUNCTION caredata._link_std_kind(text, text) IS
  'internal: the standardising SQL expression for a value of one field kind (name, its phonetic code, address, its house number, postcode of any country, identifier, text)';

-- (caredata._link_std_expr: replaced again below)

-- how many rows of a temporary table hold a value (src/linkage/frequency.c):
-- each call site counts its column once, in memory
CREATE FUNCTION caredata._link_value_count(stage regclass, col name, row_tid tid, value anyelement)
  RETURNS bigint AS 'MODULE_PATHNAME', 'link_value_count' LANGUAGE C STABLE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._link_value_count(regclass, name, tid, anyelement) IS
  'internal: the number of rows of a temporary table of this session whose column holds the value (the type''s hash equality; NULL for NULL), counted in memory once per call site (at most maintenance_work_mem), read by the row''s TID when given and the row holds the value; serves link_standardise()';

-- rebuild link_record from the sources; returns the number of records
CREATE OR REPLACE FUNCTION caredata.link_standardise(sources text[] DEFAULT NULL, run_id bigint DEFAULT 0, project text DEFAULT 'default')
  RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_project text := caredata._link_check_project(project);
  s record;
  f record;
  n bigint;
  total bigint;
  parts text[] := '{}';
  work_table text;
  f_cols text;
  f_json text := '';
  f_join text := '';
  i integer := 0;
  saved_tuple_cost text;
  saved_work_mem text;
  in_memory boolean := current_setting('caredata.link_compare_engine')::boolean;
  freq_nhs text;
  freq_dob text;
  freq_postcode text;
  -- a staged column's frequency counted in C (frequency.c): NULL for a
  -- value held once, which coalesce() makes 1 / records as the SQL does
  freq_c constant text := 'nullif(caredata._link_value_count(''pg_temp.link_stage''::regclass, %1$L, t.ctid, t.%1$I), 1)::double precision / %2$s';
  src_counts jsonb := '{}';
BEGIN
  IF NOT EXISTS (SELECT 1 FROM caredata.link_source ls WHERE ls.project = p_project AND (sources IS NULL OR ls.source = ANY (sources))) THEN
    PERFORM caredata._link_bad('no linkage sources to link', 'Register sources with caredata.link_add_source().', '42704');
  END IF;
  IF sources IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(sources) x WHERE x NOT IN (SELECT ls.source FROM caredata.link_source ls WHERE ls.project = p_project)) THEN
    PERFORM caredata._link_bad('a named linkage source does not exist', 'See caredata.link_source for the registered sources.', '42704');
  END IF;
  -- the standardised records, each with its stable rid if it has one; the
  -- declared fields as columns f_<field> (NULL where a source lacks one)
  FOR s IN SELECT * FROM caredata.link_source ls WHERE ls.project = p_project AND (sources IS NULL OR ls.source = ANY (sources)) ORDER BY ls.source LOOP
    f_cols := '';
    FOR f IN SELECT * FROM caredata._link_fields(p_project) LOOP
      f_cols := f_cols || format(', %s AS %I', caredata._link_std_expr(s.relation, (s.fields->f.field->>'column')::name, f.kind), 'f_' || f.field);
      IF f.kind = 'address' THEN
        f_cols := f_cols || format(', %s AS %I', caredata._link_std_expr(s.relation, (s.fields->f.field->>'column')::name, 'address_num'), 'f_' || f.field || '_num');
      END IF;
    END LOOP;
    parts := parts || format('SELECT k.rid, %L::text AS source, %s AS record_id, %s AS record_key, %s AS nhs_digits, %s AS dob, %s AS sex, %s AS postcode%s
                                FROM %s s LEFT JOIN caredata.link_record_key k ON k.project = %L AND k.source = %1$L AND k.record_key = %3$s',
      s.source, caredata._link_std_expr(s.relation, s.record_id, 'record_id'),
      caredata._link_std_expr(s.relation, s.record_id, 'record_key'),
      caredata._link_std_expr(s.relation, s.nhs_number, 'nhs_number'),
      caredata._link_std_expr(s.relation, s.dob, 'dob'),
      caredata._link_std_expr(s.relation, s.sex, 'sex'),
      caredata._link_std_expr(s.relation, s.postcode, 'postcode'), f_cols, s.relation, p_project);
  END LOOP;
  FOREACH work_table IN ARRAY ARRAY['link_stage', 'link_new_key'] LOOP
    IF to_regclass('pg_temp.' || work_table) IS NOT NULL THEN
      EXECUTE format('DROP TABLE pg_temp.%I', work_table);
    END IF;
  END LOOP;
  -- read and standardised by parallel workers where the server allows them
  -- (the sources and the keys are ordinary tables; the leader writes the
  -- temporary table): a planner that counts the functions at cost 1 would
  -- otherwise keep it serial, for the cost of sending each row to the
  -- leader (measured at 1M people: 4.9 s serial, 2.4 s with 2 workers)
  saved_tuple_cost := current_setting('parallel_tuple_cost');
  PERFORM set_config('parallel_tuple_cost', '0.001', true);
  EXECUTE 'CREATE TEMP TABLE link_stage ON COMMIT DROP AS ' || array_to_string(parts, ' UNION ALL ');
  PERFORM set_config('parallel_tuple_cost', saved_tuple_cost, true);
  -- the value frequencies below hash millions of values: in memory, not
  -- in batches on disk, unless the server allows more already
  saved_work_mem := current_setting('work_mem');
  IF pg_size_bytes(saved_work_mem) < pg_size_bytes('256MB') THEN
    PERFORM set_config('work_mem', '256MB', true);
  END IF;
  total := 0;
  -- counted per source first (a hash aggregate of a few groups; joined
  -- before grouping, the records were sorted by source, spilling to disk)
  FOR s IN SELECT ls.source, coalesce(t.n, 0) AS n, coalesce(t.no_id, 0) AS no_id
             FROM caredata.link_source ls
             LEFT JOIN (SELECT x.source, count(*) AS n, count(*) FILTER (WHERE x.record_key IS NULL) AS no_id
                          FROM pg_temp.link_stage x GROUP BY x.source) t ON t.source = ls.source
            WHERE ls.project = p_project AND (sources IS NULL OR ls.source = ANY (sources)) ORDER BY ls.source LOOP
    IF s.n = 0 THEN
      PERFORM caredata._link_bad(format('linkage source "%s" has no records', s.source),
                                 'Load the source, or leave it out with the sources argument.', '22023');
    END IF;
    IF s.no_id > 0 THEN
      PERFORM caredata._link_bad(format('linkage source "%s" has records without a record id', s.source),
                                 'Every record needs a record id: fix the source or filter it through a view.', '23502');
    END IF;
    total := total + s.n;
    src_counts := src_counts || jsonb_build_object(s.source, s.n);
  END LOOP;
  -- a run's records per source, in its statistics (link_run() reads them
  -- for EM's count of all pairs, instead of counting link_record again)
  IF link_standardise.run_id > 0 THEN
    UPDATE caredata.link_run x SET stats = coalesce(x.stats, '{}') || jsonb_build_object('source_records', src_counts)
     WHERE x.run_id = link_standardise.run_id;
  END IF;

  -- stable rids: new records numbered after the highest of any project, in (source,
  -- record id) order (integer ids by value).  A record id twice in a
  -- source breaks a unique index, here (a new one) or on link_record
  -- below (one seen before).
  CREATE TEMP TABLE link_new_key ON COMMIT DROP AS
  SELECT coalesce((SELECT max(k.rid) FROM caredata.link_record_key k), 0)
           + row_number() OVER (ORDER BY t.source, t.record_id, t.record_key) AS rid,
         t.source, t.record_id, t.record_key
    FROM pg_temp.link_stage t WHERE t.rid IS NULL;
  ANALYZE pg_temp.link_new_key;

  PERFORM caredata._link_maintain('truncate_records', project => p_project);
  PERFORM caredata._link_maintain('drop_indexes', project => p_project);
  -- value frequencies (only a value held by two records or more can ever
  -- agree exactly with another): counted in memory in C, each column's
  -- values once (frequency.c), unless switched off or past
  -- maintenance_work_mem; then grouped and joined back in SQL
  <<attempt>>
  LOOP
    i := 0;
    f_json := '';
    f_join := '';
    IF in_memory THEN
      freq_nhs := format(freq_c, 'nhs_digits', total);
      freq_dob := format(freq_c, 'dob', total);
      freq_postcode := format(freq_c, 'postcode', total);
    ELSE
      freq_nhs := 'fn.f';
      freq_dob := 'fd.f';
      freq_postcode := 'fp.f';
      f_join := format($q$
      LEFT JOIN (SELECT nhs_digits, count(*)::double precision / %1$s AS f FROM pg_temp.link_stage GROUP BY 1 HAVING count(*) > 1) fn USING (nhs_digits)
      LEFT JOIN (SELECT dob, count(*)::double precision / %1$s AS f FROM pg_temp.link_stage GROUP BY 1 HAVING count(*) > 1) fd USING (dob)
      LEFT JOIN (SELECT postcode, count(*)::double precision / %1$s AS f FROM pg_temp.link_stage GROUP BY 1 HAVING count(*) > 1) fp USING (postcode)$q$, total);
    END IF;
    -- each field in the record's jsonb: its value, its derived code and its
    -- value frequency
    FOR f IN SELECT * FROM caredata._link_fields(p_project) LOOP
      i := i + 1;
      f_json := f_json || format(' || jsonb_build_object(%1$L, t.%2$I%3$s, %4$L, CASE WHEN t.%2$I IS NOT NULL THEN coalesce(%5$s, 1.0 / %6$s) END)',
        f.field, 'f_' || f.field,
        CASE f.kind WHEN 'name' THEN format(', %L, caredata.name_phonetic(t.%I)', f.field || '_ph', 'f_' || f.field)
                    WHEN 'address' THEN format(', %L, t.%I', f.field || '_num', 'f_' || f.field || '_num') ELSE '' END,
        'tf_' || f.field,
        CASE WHEN in_memory
             THEN format(freq_c, 'f_' || f.field, total)
             ELSE format('q%s.f', i) END,
        total);
      IF NOT in_memory THEN
        f_join := f_join || format(' LEFT JOIN (SELECT %1$I AS v, count(*)::double precision / %2$s AS f FROM pg_temp.link_stage WHERE %1$I IS NOT NULL GROUP BY 1 HAVING count(*) > 1) q%3$s ON q%3$s.v = t.%1$I',
          'f_' || f.field, total, i);
      END IF;
    END LOOP;
    BEGIN
      INSERT INTO caredata.link_record_key (rid, source, record_id, first_run, record_key, project)
      SELECT k.rid, k.source, k.record_id, link_standardise.run_id, k.record_key, p_project FROM pg_temp.link_new_key k;
      EXECUTE format($q$
      INSERT INTO caredata.link_record
      SELECT %4$L, coalesce(t.rid, k.rid), t.source, t.record_id, t.nhs_digits, (t.nhs_digits / 10000)::integer, (t.nhs_digits %% 10000)::integer,
             t.dob, t.sex, t.postcode,
             caredata.try_postcode_sector(t.postcode), caredata.try_postcode_district(t.postcode), caredata.try_postcode_area(t.postcode),
             extract(year FROM t.dob)::integer,
             CASE WHEN t.nhs_digits IS NOT NULL THEN coalesce(%5$s, 1.0 / %1$s) END,
             CASE WHEN t.dob IS NOT NULL THEN coalesce(%6$s, 1.0 / %1$s) END,
             CASE WHEN t.postcode IS NOT NULL THEN coalesce(%7$s, 1.0 / %1$s) END,
             t.record_key, %2$s
        FROM pg_temp.link_stage t
        LEFT JOIN pg_temp.link_new_key k ON t.rid IS NULL AND k.source = t.source AND k.record_key = t.record_key%3$s$q$,
        total, CASE WHEN f_json = '' THEN 'NULL::jsonb' ELSE 'jsonb_strip_nulls(''{}''::jsonb' || f_json || ')' END, f_join, p_project,
        freq_nhs, freq_dob, freq_postcode);
      GET DIAGNOSTICS n = ROW_COUNT;
      PERFORM caredata._link_maintain('add_record_key', project => p_project);
      EXIT attempt;
    EXCEPTION
      WHEN unique_violation THEN
        PERFORM caredata._link_bad('a linkage source has duplicate record ids', 'Record ids must be unique within a source.', '23505');
      WHEN program_limit_exceeded THEN
        -- the counts did not fit maintenance_work_mem: again, in SQL
        IF NOT in_memory THEN
          RAISE;
        END IF;
        in_memory := false;
    END;
  END LOOP;
  PERFORM set_config('work_mem', saved_work_mem, true);
  DROP TABLE pg_temp.link_stage;
  DROP TABLE pg_temp.link_new_key;
  PERFORM caredata._link_maintain('analyze_records', project => p_project);
  RETURN n;
END
$$;
COMMENT ON FUNCTION caredata.link_standardise(text[], bigint, text) IS
  'rebuild a project''s caredata.link_record from its registered sources (all, or those named): standardised identifiers, postcode parts, the declared fields with their phonetic codes and house numbers, value frequencies; returns the number of records';

CREATE OR REPLACE FUNCTION caredata.link_create_model(model text, spec jsonb DEFAULT '{}', project text DEFAULT 'default') RETURNS integer
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_project text := caredata._link_check_project(project);
  p_model text := model;
  full_spec jsonb := caredata.link_default_spec() || coalesce(spec, '{}');
  v integer;
BEGIN
  IF p_model IS NULL OR p_model !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    PERFORM caredata._link_bad('a linkage model name is lower-case letters, digits and _', 'For example ''default''.');
  END IF;
  PERFORM caredata._link_check_spec(full_spec, p_project);
  SELECT coalesce(max(lm.version), 0) + 1 INTO v FROM caredata.link_model lm WHERE lm.project = p_project AND lm.model = p_model;
  INSERT INTO caredata.link_model (project, model, version, spec) VALUES (p_project, p_model, v, full_spec);
  INSERT INTO caredata.link_model_level (project, model, version, comparison, position, level, label)
  SELECT p_project, p_model, v, c.value->>'name', c.ordinality - 1, l.ordinality - 1, l.value
    FROM jsonb_array_elements(full_spec->'comparisons') WITH ORDINALITY c
   CROSS JOIN LATERAL jsonb_array_elements_text(c.value->'levels') WITH ORDINALITY l;
  RETURN v;
END
$$;
COMMENT ON FUNCTION caredata.link_create_model(text, jsonb, text) IS
  'create a linkage model of a project (or its next version) from a spec; keys not given are taken from link_default_spec(); returns the version (untrained until a run trains it)';

CREATE OR REPLACE FUNCTION caredata._link_comparisons(model text, version integer, project text)
  RETURNS TABLE (pos integer, name text, expression text, nlevels integer, tf text, m_start double precision[],
                 m double precision[], u double precision[], labels text[])
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  SELECT (c.ordinality - 1)::integer, c.value->>'name', c.value->>'expression',
         jsonb_array_length(c.value->'levels'), c.value->>'tf',
         CASE WHEN c.value ? 'm' THEN ARRAY(SELECT x::double precision FROM jsonb_array_elements_text(c.value->'m') x) END,
         ARRAY(SELECT ml.m FROM caredata.link_model_level ml
                WHERE ml.project = lm.project AND ml.model = lm.model AND ml.version = lm.version AND ml.comparison = c.value->>'name' ORDER BY ml.level),
         ARRAY(SELECT ml.u FROM caredata.link_model_level ml
                WHERE ml.project = lm.project AND ml.model = lm.model AND ml.version = lm.version AND ml.comparison = c.value->>'name' ORDER BY ml.level),
         ARRAY(SELECT jsonb_array_elements_text(c.value->'levels'))
    FROM caredata.link_model lm
   CROSS JOIN LATERAL jsonb_array_elements(lm.spec->'comparisons') WITH ORDINALITY c
   WHERE lm.project = _link_comparisons.project AND lm.model = _link_comparisons.model AND lm.version = _link_comparisons.version
   ORDER BY c.ordinality;
END
$$;
COMMENT ON FUNCTION caredata._link_comparisons(text, integer, text) IS
  'internal: the comparisons of a model version with their levels, m and u';

-- (caredata._link_compare_sql: replaced again below)

CREATE OR REPLACE FUNCTION caredata._link_estimate_pairs(rule jsonb, link_type text, project text) RETURNS double precision
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  plan jsonb;
BEGIN
  -- the project's partition itself: the parent has no statistics
  EXECUTE format('EXPLAIN (FORMAT JSON) SELECT 1 FROM %s l JOIN %1$s r ON %s WHERE %s',
                 caredata._link_record_sql(project),
                 caredata._link_rule_condition(rule), caredata._link_pair_condition(link_type)) INTO plan;
  RETURN (plan->0->'Plan'->>'Plan Rows')::double precision;
END
$$;
COMMENT ON FUNCTION caredata._link_estimate_pairs(jsonb, text, text) IS
  'internal: the planner''s estimate of the candidate pairs a blocking rule generates over a project''s records';

CREATE OR REPLACE FUNCTION caredata.link_blocking_counts(model text DEFAULT 'default', version integer DEFAULT NULL, project text DEFAULT 'default')
  RETURNS TABLE (rule integer, columns text[], pairs bigint)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_project text := caredata._link_check_project(project);
  p_model text := model;
  spec jsonb;
  r record;
  cols text;
  n bigint;
BEGIN
  SELECT lm.spec INTO spec FROM caredata.link_model lm
   WHERE lm.project = p_project AND lm.model = p_model AND (link_blocking_counts.version IS NULL OR lm.version = link_blocking_counts.version)
   ORDER BY lm.version DESC LIMIT 1;
  IF spec IS NULL THEN
    PERFORM caredata._link_bad(format('linkage model "%s" does not exist', p_model), 'Create it with caredata.link_create_model().', '42704');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM caredata.link_record x WHERE x.project = p_project) THEN
    PERFORM caredata.link_standardise(project => p_project);
  END IF;
  FOR r IN SELECT b.value, b.ordinality FROM jsonb_array_elements(spec->'blocking') WITH ORDINALITY b LOOP
    cols := (SELECT string_agg(quote_ident(c), ', ') FROM jsonb_array_elements_text(r.value) c);
    EXECUTE format($q$
      SELECT coalesce(sum(CASE %1$L WHEN 'link_only' THEN (nn * nn - sq) / 2
                                       WHEN 'dedupe_only' THEN (sq - nn) / 2
                                       ELSE nn * (nn - 1) / 2 END), 0)::bigint
        FROM (SELECT sum(ns) AS nn, sum(ns * ns) AS sq
                FROM (SELECT %2$s, source, count(*)::numeric AS ns FROM %4$s x
                       WHERE %3$s GROUP BY %2$s, source) s
               GROUP BY %2$s) b$q$,
      spec->>'link_type', cols,
      (SELECT string_agg(format('%I IS NOT NULL', c), ' AND ') FROM jsonb_array_elements_text(r.value) c),
      caredata._link_record_sql(p_project))
      INTO n;
    rule := r.ordinality;
    columns := ARRAY(SELECT jsonb_array_elements_text(r.value));
    pairs := n;
    RETURN NEXT;
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata.link_blocking_counts(text, integer, text) IS
  'how many candidate pairs each blocking rule of a project''s model generates over its standardised records, before de-duplication across rules (standardises the sources first if nothing is standardised)';

CREATE OR REPLACE FUNCTION caredata._link_pairs_sql(model text, version integer, u_top double precision[], only_new boolean, project text)
  RETURNS text LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  spec jsonb;
  cmp record;
  earlier text[] := '{}';
  rule jsonb;
  pair_cond text;
  body text := '';
  rec text;
BEGIN
  SELECT lm.spec INTO spec FROM caredata.link_model lm
   WHERE lm.project = _link_pairs_sql.project AND lm.model = _link_pairs_sql.model AND lm.version = _link_pairs_sql.version;
  SELECT * INTO cmp FROM caredata._link_compare_sql(model, version, u_top, project);
  rec := caredata._link_record_sql(project);
  pair_cond := caredata._link_pair_condition(spec->>'link_type');
  IF only_new THEN
    -- incremental: pairs with at least one record the person index lacks
    pair_cond := pair_cond || ' AND (l.rid IN (SELECT n.rid FROM pg_temp.link_new n) OR r.rid IN (SELECT n.rid FROM pg_temp.link_new n))';
  END IF;
  FOR rule IN SELECT * FROM jsonb_array_elements(spec->'blocking') LOOP
    body := body || CASE WHEN body = '' THEN '' ELSE ' UNION ALL ' END ||
      format('SELECT l.rid AS rid_l, r.rid AS rid_r%s FROM %s l JOIN %2$s r ON %s WHERE %s%s',
             cmp.levels, rec, caredata._link_rule_condition(rule), pair_cond,
             (SELECT coalesce(string_agg(format(' AND NOT coalesce(%s, false)', e), ''), '') FROM unnest(earlier) e));
    earlier := earlier || caredata._link_rule_condition(rule);
  END LOOP;
  RETURN format('SELECT rid_l, rid_r%s, %s AS pattern, %s AS tf_adj FROM (%s) p',
                cmp.cols, cmp.pattern, cmp.tf, body);
END
$$;
COMMENT ON FUNCTION caredata._link_pairs_sql(text, integer, double precision[], boolean, text) IS
  'internal: the candidate-pair query of a project''s model version (blocking rules unioned without duplicates, comparison levels, pattern, term-frequency adjustment)';

-- (caredata.link_run: replaced again below)

CREATE OR REPLACE FUNCTION caredata.link_quality(truth regclass, true_id name DEFAULT 'person_id', scope text DEFAULT 'all',
    project text DEFAULT 'default')
  RETURNS TABLE ("precision" double precision, recall double precision, f1 double precision,
                 true_pairs bigint, linked_pairs bigint, correct_pairs bigint,
                 persons_split bigint, persons_merged bigint)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_project text := caredata._link_check_project(project);
  f text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = truth AND a.attname = true_id AND a.attnum > 0 AND NOT a.attisdropped)
     OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = truth AND a.attname = 'source' AND NOT a.attisdropped)
     OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = truth AND a.attname = 'record_id' AND NOT a.attisdropped) THEN
    PERFORM caredata._link_bad(format('the truth table needs columns source, record_id and %s', true_id),
                               'Pass the name of the true-id column as true_id.', '42703');
  END IF;
  -- One pass over the records, each step aggregating the one before it (no
  -- step reads the records again).  A group of n records holds n(n-1)/2
  -- pairs; pairs across sources are all pairs less those within a source;
  -- pairs within the scope's source are those of its records alone.  Linked
  -- pairs share a cluster c, true pairs a true person t, correct pairs both:
  --   g    per (c, t, source): k records
  --   gs   per (c, t): n records, pairs within a source, within the scope's
  --        source; per (c, source) and (t, source): n records
  --   per  per c and per t: n records and the pairs within a source (from
  --        the (c, source) or (t, source) rows); correct pairs (from the
  --        (c, t) rows, summed under c only); how many true persons the
  --        cluster holds and how many clusters the true person is in
  -- Persons split and merged count every record, whatever the scope.
  f := CASE scope WHEN 'all' THEN 'X_all' WHEN 'cross' THEN 'X_all - X_within' ELSE 'X_source' END;
  RETURN QUERY EXECUTE format($q$
    WITH g AS (SELECT p.person_id AS c, t.%1$I AS t, p.source, count(*) AS k
                 FROM %7$s p JOIN %2$s t ON t.source::text = p.source AND %8$s
                GROUP BY 1, 2, 3),
         gs AS (SELECT GROUPING(c, t, source) AS set, c, t, source, sum(k)::bigint AS n,
                       sum(k * (k - 1) / 2)::bigint AS within, sum(k * (k - 1) / 2) FILTER (WHERE source = %3$L)::bigint AS in_source
                  FROM g GROUP BY GROUPING SETS ((c, t), (c, source), (t, source))),
         per AS (SELECT GROUPING(has_c, c) = 0 AS by_c, has_c, has_t,
                        sum(n) FILTER (WHERE set = 1)::bigint AS n,
                        sum(n * (n - 1) / 2) FILTER (WHERE set <> 1) AS within,
                        sum(n * (n - 1) / 2) FILTER (WHERE set <> 1 AND source = %3$L) AS in_source,
                        sum(n * (n - 1) / 2) FILTER (WHERE set = 1) AS tp_all,
                        sum(within) FILTER (WHERE set = 1) AS tp_within,
                        sum(in_source) FILTER (WHERE set = 1) AS tp_source,
                        count(t) FILTER (WHERE set = 1) AS persons,
                        count(c) FILTER (WHERE set = 1) AS clusters
                   FROM (SELECT *, set IN (1, 2) AS has_c, set IN (1, 4) AS has_t FROM gs) x
                  GROUP BY GROUPING SETS ((has_c, c), (has_t, t))),
         a AS (SELECT coalesce(sum(n * (n - 1) / 2) FILTER (WHERE by_c), 0) AS lp_all,
                      coalesce(sum(within) FILTER (WHERE by_c), 0) AS lp_within,
                      coalesce(sum(in_source) FILTER (WHERE by_c), 0) AS lp_source,
                      coalesce(sum(n * (n - 1) / 2) FILTER (WHERE NOT by_c), 0) AS ap_all,
                      coalesce(sum(within) FILTER (WHERE NOT by_c), 0) AS ap_within,
                      coalesce(sum(in_source) FILTER (WHERE NOT by_c), 0) AS ap_source,
                      coalesce(sum(tp_all) FILTER (WHERE by_c), 0) AS tp_all,
                      coalesce(sum(tp_within) FILTER (WHERE by_c), 0) AS tp_within,
                      coalesce(sum(tp_source) FILTER (WHERE by_c), 0) AS tp_source,
                      count(*) FILTER (WHERE NOT by_c AND clusters > 1) AS split,
                      count(*) FILTER (WHERE by_c AND persons > 1) AS merged
                 FROM per WHERE CASE WHEN by_c THEN has_c ELSE has_t END),
         s AS MATERIALIZED (SELECT %4$s AS tp, %5$s AS lp, %6$s AS ap, split, merged FROM a)
    SELECT CASE WHEN lp > 0 THEN (tp / lp)::double precision END,
           CASE WHEN ap > 0 THEN (tp / ap)::double precision END,
           CASE WHEN lp + ap > 0 THEN (2 * tp / (lp + ap))::double precision END,
           ap::bigint, lp::bigint, tp::bigint, split, merged
      FROM s$q$, true_id, truth, scope, replace(f, 'X', 'tp'), replace(f, 'X', 'lp'), replace(f, 'X', 'ap'),
      caredata._link_partition('caredata.person_index', p_project),
      -- integer record ids join as integers, others as text
      CASE WHEN (SELECT a.atttypid FROM pg_catalog.pg_attribute a WHERE a.attrelid = truth AND a.attname = 'record_id' AND NOT a.attisdropped)
                IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype)
           THEN 't.record_id = p.record_id' ELSE 't.record_id::text = p.record_key' END);
END
$$;
COMMENT ON FUNCTION caredata.link_quality(regclass, name, text, text) IS
  'pairwise precision, recall and F1 of a project''s person index against a truth table (source, record_id, true id), over all pairs, cross-source pairs (scope cross) or pairs within one source (scope = its name); persons split (one true person in several clusters) and merged (several in one)';

CREATE OR REPLACE FUNCTION caredata._link_trained_version(model text, version integer, project text) RETURNS integer
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v integer;
BEGIN
  PERFORM caredata._coordinator_only('linkage');
  PERFORM caredata._link_check_project(project);
  SELECT lm.version INTO v FROM caredata.link_model lm
   WHERE lm.project = _link_trained_version.project AND lm.model = _link_trained_version.model AND lm.lambda IS NOT NULL
     AND (_link_trained_version.version IS NULL OR lm.version = _link_trained_version.version)
   ORDER BY lm.version DESC LIMIT 1;
  IF v IS NULL THEN
    PERFORM caredata._link_bad(format('linkage model "%s" has no trained version%s', model,
                                      CASE WHEN version IS NOT NULL THEN ' ' || version ELSE '' END),
                               'Train it with caredata.link_run(), or see caredata.link_model.', '42704');
  END IF;
  RETURN v;
END
$$;
COMMENT ON FUNCTION caredata._link_trained_version(text, integer, text) IS
  'internal: the trained model version of a project a read uses (the one named, else the latest)';

-- (caredata.link_explain: replaced again below)

-- (caredata.link_explain: replaced again below)

CREATE OR REPLACE FUNCTION caredata.link_lookup(nhs_number text, dob date, sex text, postcode text,
    model text DEFAULT 'default', version integer DEFAULT NULL, fields jsonb DEFAULT NULL, project text DEFAULT 'default')
  RETURNS TABLE (person_id bigint, probability double precision, match_weight double precision)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  v integer := caredata._link_trained_version(model, version, project);
  p_project text := project;
  p_model text := model;
  persons regclass := caredata._link_partition('caredata.person_index', project);
  spec jsonb;
  lam double precision;
  nlevels integer[];
  mm double precision[];
  uu double precision[];
  u_top double precision[];
  cmp record;
  cand text := '';
  rule jsonb;
  rec text := caredata._link_record_sql(project);
  f_cols text := '';
  f record;
BEGIN
  IF fields IS NOT NULL AND jsonb_typeof(fields) <> 'object' THEN
    PERFORM caredata._link_bad('fields must be a JSON object of field values', 'For example {"given_name": "Ann", "family_name": "Smith"}.');
  END IF;
  SELECT x.spec, x.lambda INTO spec, lam FROM caredata.link_model x WHERE x.project = p_project AND x.model = p_model AND x.version = v;
  -- the model's levels, m and u read once (a lookup's fixed cost)
  WITH z AS MATERIALIZED (SELECT * FROM caredata._link_comparisons(p_model, v, p_project))
  SELECT (SELECT array_agg(z.nlevels ORDER BY z.pos) FROM z),
         (SELECT array_agg(x ORDER BY z.pos, o) FROM z, unnest(z.m) WITH ORDINALITY AS q(x, o)),
         (SELECT array_agg(x ORDER BY z.pos, o) FROM z, unnest(z.u) WITH ORDINALITY AS q(x, o)),
         (SELECT array_agg(z.u[z.nlevels] ORDER BY z.pos) FROM z)
    INTO nlevels, mm, uu, u_top;
  SELECT * INTO cmp FROM caredata._link_compare_sql(p_model, v, u_top, p_project);
  -- the declared fields of the record, standardised as the sources' are
  FOR f IN SELECT * FROM caredata._link_fields(p_project) LOOP
    f_cols := f_cols || format(', %s AS %I', caredata._link_std_kind(f.kind, format('($9 OPERATOR(pg_catalog.->>) %L)', f.field)), f.field);
    IF f.kind = 'name' THEN
      f_cols := f_cols || format(', %s AS %I', caredata._link_std_kind('name_ph', format('($9 OPERATOR(pg_catalog.->>) %L)', f.field)), f.field || '_ph');
    ELSIF f.kind = 'address' THEN
      f_cols := f_cols || format(', %s AS %I', caredata._link_std_kind('address_num', format('($9 OPERATOR(pg_catalog.->>) %L)', f.field)), f.field || '_num');
    END IF;
    f_cols := f_cols || format(', NULL::double precision AS %I', 'tf_' || f.field);
  END LOOP;
  FOR rule IN SELECT * FROM jsonb_array_elements(spec->'blocking') LOOP
    cand := cand || CASE WHEN cand = '' THEN '' ELSE ' UNION ' END ||
            format('SELECT r.rid FROM %s r, l WHERE %s', rec, caredata._link_rule_condition(rule));
  END LOOP;
  RETURN QUERY EXECUTE format($q$
    WITH l AS MATERIALIZED (
           SELECT 0::bigint AS rid, ''::text AS source, 0::bigint AS record_id, d AS nhs_digits,
                  (d / 10000)::integer AS nhs_head, (d %% 10000)::integer AS nhs_tail, b AS dob, sx AS sex,
                  pc AS postcode, caredata.try_postcode_sector(pc) AS sector, caredata.try_postcode_district(pc) AS district,
                  caredata.try_postcode_area(pc) AS area, extract(year FROM b)::integer AS yob,
                  NULL::double precision AS tf_nhs_digits, NULL::double precision AS tf_dob, NULL::double precision AS tf_postcode,
                  ''::text AS record_key, NULL::jsonb AS fields%5$s
             FROM (SELECT caredata.nhs_number_digits($1) AS d, CASE WHEN caredata.dob_is_valid($2) THEN $2 END AS b,
                          caredata.try_standardise_sex($3) AS sx, caredata.standardise_postcode_any($4) AS pc) s),
         cand AS (%1$s),
         cmp AS (SELECT r.rid%2$s FROM cand JOIN %6$s r USING (rid), l),
         scored AS (SELECT cmp.rid, (caredata.link_pattern_weights(ARRAY[%3$s], $5, $6, $7, $8))[1] + %4$s AS w FROM cmp)
    SELECT p.person_id, caredata.link_probability(max(s.w)), max(s.w)
      FROM scored s JOIN %7$s p USING (rid)
     GROUP BY p.person_id
     ORDER BY max(s.w) DESC, p.person_id
     LIMIT 1$q$, cand, cmp.levels, cmp.pattern, cmp.tf, f_cols, rec, persons)
  USING nhs_number, dob, sex, postcode, nlevels, mm, uu, lam, fields;
END
$$;
COMMENT ON FUNCTION caredata.link_lookup(text, date, text, text, text, integer, jsonb, text) IS
  'match one record (NHS number, date of birth, sex, postcode as they arrive, and the declared fields as {"field": value}) against a project''s person index through the blocking rules'' indexes: the best person, its match probability and weight; no row when no candidate';

CREATE OR REPLACE FUNCTION caredata.link_names_spec() RETURNS jsonb
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN caredata.link_default_spec() || $spec$
{
  "comparisons": [
    {"name": "nhs", "expression": "caredata.compare_nhs_number(l.nhs_digits, r.nhs_digits)",
     "levels": ["missing or invalid", "different", "one digit different or transposed", "exact"],
     "tf": "nhs_digits"},
    {"name": "dob", "expression": "caredata.compare_date(l.dob, r.dob, 365)",
     "levels": ["missing", "different", "within a year", "two of year, month, day", "day and month transposed", "exact"],
     "tf": "dob"},
    {"name": "sex", "expression": "caredata.compare_sex(l.sex, r.sex)",
     "levels": ["missing or not known", "different", "same"]},
    {"name": "postcode", "expression": "caredata.compare_postcode(l.postcode, r.postcode)",
     "levels": ["missing", "different", "same area", "same district", "same sector", "exact"],
     "tf": "postcode"},
    {"name": "given_name", "expression": "caredata.compare_name(l.given_name, r.given_name, l.given_name_ph, r.given_name_ph)",
     "levels": ["missing", "different", "sounds alike", "similar", "very similar", "exact"],
     "tf": "given_name"},
    {"name": "family_name", "expression": "caredata.compare_name(l.family_name, r.family_name, l.family_name_ph, r.family_name_ph)",
     "levels": ["missing", "different", "sounds alike", "similar", "very similar", "exact"],
     "tf": "family_name"},
    {"name": "address", "expression": "caredata.compare_token_overlap(l.address, r.address)",
     "levels": ["missing", "different", "half the words", "most words", "exact"]}
  ],
  "blocking": [["nhs_digits"], ["dob", "area"], ["postcode", "yob"], ["dob", "nhs_head"], ["dob", "nhs_tail"],
               ["family_name", "dob"], ["given_name", "family_name", "district"]]
}
$spec$::jsonb;
COMMENT ON FUNCTION caredata.link_names_spec() IS
  'the default linkage model with names and an address: adds given_name and family_name (compare_name, term-frequency adjusted) and address (compare_token_overlap) comparisons and two blocking rules over names; needs sources declaring the fields given_name, family_name (kind name) and address (kind address)';


-- (caredata._link_check_expression: replaced again below)

-- ---- issue 25, section 5: incremental runs merge two existing persons only on direct evidence ----
-- src/linkage/merge.sql (new): the merge threshold ("merge_threshold" in the
-- model spec), its check, and _link_incremental_merge(), which link_run
-- calls in an incremental run; link_default_spec() gains "merge_threshold",
-- _link_check_spec() checks it, link_run() calls the new step (and no
-- longer looks for this run's pairs among the previous run's links).
-- the merge threshold of a model spec: what a pair of two existing
-- persons' records must reach for them to merge in an incremental run
-- (the functions follow, at their last definition)


CREATE OR REPLACE FUNCTION caredata._link_merge_threshold(spec jsonb) RETURNS double precision
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN coalesce((spec->>'merge_threshold')::double precision, 0.999999);
COMMENT ON FUNCTION caredata._link_merge_threshold(jsonb) IS
  'internal: the "merge_threshold" of a linkage model spec (default 0.999999): the match probability a pair of records of two existing persons must reach for an incremental run to merge them';

CREATE OR REPLACE FUNCTION caredata._link_check_merge_spec(spec jsonb) RETURNS void
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF spec ? 'merge_threshold' AND (jsonb_typeof(spec->'merge_threshold') IS DISTINCT FROM 'number'
                                   OR NOT ((spec->>'merge_threshold')::double precision > 0
                                           AND (spec->>'merge_threshold')::double precision < 1)) THEN
    PERFORM caredata._link_bad('merge_threshold is a match probability strictly between 0 and 1',
                               'Leave it out for the default (0.999999).');
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._link_check_merge_spec(jsonb) IS
  'internal: refuse a linkage model spec whose "merge_threshold" is not a probability strictly between 0 and 1';

CREATE OR REPLACE FUNCTION caredata._link_incremental_merge(run bigint, model text, version integer, method text,
    link_threshold double precision, project text)
  RETURNS jsonb LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  spec jsonb;
  lam double precision;
  v_keep_apart boolean;
  v_merge double precision;
  cmp record;
  nlevels integer[];
  v_m double precision[];
  v_u double precision[];
  v_w double precision[];
  k integer := 1;
  steps text := '';
  step text;
  i integer := 0;
  n_cand bigint;
  n_merge bigint;
  n_bridged bigint;
  n_dropped bigint := 0;
  n_added bigint := 0;
  n bigint;
  work_table text;
  t0 timestamptz := clock_timestamp();
BEGIN
  SELECT lm.spec, lm.lambda INTO spec, lam FROM caredata.link_model lm
   WHERE lm.project = _link_incremental_merge.project AND lm.model = _link_incremental_merge.model
     AND lm.version = _link_incremental_merge.version;
  v_keep_apart := coalesce((spec->>'keep_nhs_apart')::boolean, true);
  v_merge := greatest(caredata._link_merge_threshold(spec), coalesce(link_threshold, 0));

  -- each existing person's home: its smallest record id, the name of its
  -- cluster from here on (new records have larger ids: rids grow)
  CREATE TEMP TABLE link_merge_person ON COMMIT DROP AS
  SELECT c.old_person AS person_id, min(c.rid) AS home
    FROM pg_temp.link_cluster c WHERE c.old_person IS NOT NULL GROUP BY c.old_person;
  ALTER TABLE pg_temp.link_merge_person ADD PRIMARY KEY (person_id);
  -- the existing persons of each cluster that holds a new record
  CREATE TEMP TABLE link_merge_touch ON COMMIT DROP AS
  SELECT DISTINCT c.cluster, c.old_person AS person_id
    FROM pg_temp.link_cluster c
   WHERE c.old_person IS NOT NULL
     AND c.cluster IN (SELECT x.cluster FROM pg_temp.link_cluster x WHERE x.old_person IS NULL);
  -- pairs of existing persons a new record's cluster joins
  CREATE TEMP TABLE link_merge_cand ON COMMIT DROP AS
  SELECT DISTINCT a.person_id AS person_a, b.person_id AS person_b
    FROM pg_temp.link_merge_touch a JOIN pg_temp.link_merge_touch b ON b.cluster = a.cluster AND b.person_id > a.person_id;
  GET DIAGNOSTICS n_cand = ROW_COUNT;
  -- their records
  CREATE TEMP TABLE link_merge_rec ON COMMIT DROP AS
  SELECT c.rid, c.old_person AS person_id
    FROM pg_temp.link_cluster c
   WHERE c.old_person IN (SELECT x.person_a FROM pg_temp.link_merge_cand x UNION SELECT x.person_b FROM pg_temp.link_merge_cand x);

  -- direct evidence: every pair of the two persons' records, compared and
  -- scored as the run does; the best pair of each two persons
  IF method = 'probabilistic' THEN
    SELECT array_agg(z.nlevels ORDER BY z.pos) INTO nlevels FROM caredata._link_comparisons(model, version, project) z;
    SELECT array_agg(x ORDER BY z.pos, o) INTO v_m FROM caredata._link_comparisons(model, version, project) z, unnest(z.m) WITH ORDINALITY AS q(x, o);
    SELECT array_agg(x ORDER BY z.pos, o) INTO v_u FROM caredata._link_comparisons(model, version, project) z, unnest(z.u) WITH ORDINALITY AS q(x, o);
    FOR i IN 1 .. cardinality(nlevels) LOOP
      k := k * nlevels[i];
    END LOOP;
    SELECT caredata.link_pattern_weights(array_agg(p ORDER BY p), nlevels, v_m, v_u, lam) INTO v_w
      FROM generate_series(0, k - 1) p;
    SELECT * INTO cmp FROM caredata._link_compare_sql(model, version,
      (SELECT array_agg(z.u[z.nlevels] ORDER BY z.pos) FROM caredata._link_comparisons(model, version, project) z), project);
  ELSE
    SELECT * INTO cmp FROM caredata._link_compare_sql(model, version, NULL, project);
    i := 0;
    FOR step IN SELECT * FROM jsonb_array_elements_text(spec->'steps') LOOP
      i := i + 1;
      steps := steps || format(' WHEN %s THEN %s', step, i);
    END LOOP;
  END IF;
  EXECUTE format($q$
    CREATE TEMP TABLE link_merge_pair ON COMMIT DROP AS
    SELECT s.person_a, s.person_b, s.rid_l, s.rid_r, s.nhs_level, s.pattern, %1$s AS weight, %2$s AS step
      FROM (SELECT q.*, %3$s AS pattern, %4$s AS tf_adj
              FROM (SELECT k.person_a, k.person_b, l.rid AS rid_l, r.rid AS rid_r,
                           caredata.compare_nhs_number(l.nhs_digits, r.nhs_digits) AS nhs_level%5$s
                      FROM pg_temp.link_merge_cand k
                      JOIN pg_temp.link_merge_rec ra ON ra.person_id = k.person_a
                      JOIN pg_temp.link_merge_rec rb ON rb.person_id = k.person_b
                      JOIN %7$s l ON l.rid = least(ra.rid, rb.rid)
                      JOIN %7$s r ON r.rid = greatest(ra.rid, rb.rid)
                     WHERE %6$s) q) s$q$,
    CASE WHEN method = 'probabilistic' THEN 'caredata.link_weight(s.pattern, s.tf_adj, $1)' ELSE 'NULL::double precision' END,
    CASE WHEN method = 'probabilistic' OR i = 0 THEN 'NULL::smallint' ELSE format('(CASE%s END)::smallint', steps) END,
    cmp.pattern, cmp.tf, cmp.levels, caredata._link_pair_condition(spec->>'link_type'), caredata._link_record_sql(project))
    USING v_w;
  -- the best pair of each two persons, and whether two of their valid NHS
  -- numbers differ (then they stay apart, whatever else agrees)
  CREATE TEMP TABLE link_merge_edge ON COMMIT DROP AS
  SELECT b.*, caredata.link_probability(b.weight) AS probability
    FROM (SELECT DISTINCT ON (x.person_a, x.person_b) x.*
            FROM pg_temp.link_merge_pair x
           ORDER BY x.person_a, x.person_b, x.weight DESC NULLS LAST, x.step NULLS LAST, x.rid_l, x.rid_r) b
   WHERE CASE WHEN method = 'probabilistic' THEN caredata.link_probability(b.weight) >= v_merge ELSE b.step IS NOT NULL END
     AND NOT (v_keep_apart AND EXISTS (SELECT 1 FROM pg_temp.link_merge_pair y
                                        WHERE y.person_a = b.person_a AND y.person_b = b.person_b AND y.nhs_level = 1));
  GET DIAGNOSTICS n_merge = ROW_COUNT;

  -- merged persons: each person's final cluster (the smallest home of its group)
  CREATE TEMP TABLE link_merge_group ON COMMIT DROP AS
  SELECT p.person_id, coalesce(g.cluster, p.home) AS final
    FROM pg_temp.link_merge_person p
    LEFT JOIN caredata.link_components(
           'SELECT pa.home, pb.home FROM pg_temp.link_merge_edge e
              JOIN pg_temp.link_merge_person pa ON pa.person_id = e.person_a
              JOIN pg_temp.link_merge_person pb ON pb.person_id = e.person_b', false) g ON g.rid = p.home;
  ALTER TABLE pg_temp.link_merge_group ADD PRIMARY KEY (person_id);

  -- new records: the final clusters their cluster holds; one (or none: a
  -- new person) decides; with several, the record is placed below
  CREATE TEMP TABLE link_merge_place ON COMMIT DROP AS
  SELECT c.rid, c.cluster,
         CASE WHEN t.finals IS NULL THEN c.cluster WHEN cardinality(t.finals) = 1 THEN t.finals[1] END AS final
    FROM pg_temp.link_cluster c
    LEFT JOIN (SELECT x.cluster, array_agg(DISTINCT g.final) AS finals
                 FROM pg_temp.link_merge_touch x JOIN pg_temp.link_merge_group g USING (person_id)
                GROUP BY x.cluster) t ON t.cluster = c.cluster
   WHERE c.old_person IS NULL;
  ALTER TABLE pg_temp.link_merge_place ADD PRIMARY KEY (rid);
  SELECT count(*) INTO n_bridged FROM pg_temp.link_merge_place x WHERE x.final IS NULL;
  IF n_bridged > 0 THEN
    -- the links of the records to place, both ways, and where each record of
    -- their clusters is (old ones: their person's final cluster)
    CREATE TEMP TABLE link_merge_adj ON COMMIT DROP AS
    SELECT x.rid_l AS rid, x.rid_r AS other, x.weight, x.step FROM caredata.link_pair x
     WHERE x.run_id = run AND x.rid_l IN (SELECT p.rid FROM pg_temp.link_merge_place p WHERE p.final IS NULL)
    UNION ALL
    SELECT x.rid_r, x.rid_l, x.weight, x.step FROM caredata.link_pair x
     WHERE x.run_id = run AND x.rid_r IN (SELECT p.rid FROM pg_temp.link_merge_place p WHERE p.final IS NULL);
    CREATE TEMP TABLE link_merge_at ON COMMIT DROP AS
    SELECT c.rid, c.cluster, coalesce(g.final, p.final) AS final
      FROM pg_temp.link_cluster c
      LEFT JOIN pg_temp.link_merge_group g ON g.person_id = c.old_person
      LEFT JOIN pg_temp.link_merge_place p ON p.rid = c.rid
     WHERE c.cluster IN (SELECT p.cluster FROM pg_temp.link_merge_place p WHERE p.final IS NULL);
    ALTER TABLE pg_temp.link_merge_at ADD PRIMARY KEY (rid);
    -- one record a cluster at a time, the strongest link from a placed record first
    LOOP
      UPDATE pg_temp.link_merge_at a SET final = b.final
        FROM (SELECT DISTINCT ON (u.cluster) u.rid, o.final
                FROM pg_temp.link_merge_at u
                JOIN pg_temp.link_merge_adj j ON j.rid = u.rid
                JOIN pg_temp.link_merge_at o ON o.rid = j.other AND o.final IS NOT NULL
               WHERE u.final IS NULL
               ORDER BY u.cluster, j.weight DESC NULLS LAST, j.step NULLS LAST, o.final, u.rid) b
       WHERE a.rid = b.rid;
      EXIT WHEN NOT FOUND;
    END LOOP;
    UPDATE pg_temp.link_merge_place p SET final = coalesce(a.final, p.rid)
      FROM pg_temp.link_merge_at a WHERE a.rid = p.rid AND p.final IS NULL;
  END IF;

  -- the clusters link_run writes: existing persons whole (merged or not),
  -- new records where they were placed
  UPDATE pg_temp.link_cluster c SET cluster = g.final
    FROM pg_temp.link_merge_group g WHERE g.person_id = c.old_person AND c.cluster <> g.final;
  UPDATE pg_temp.link_cluster c SET cluster = p.final
    FROM pg_temp.link_merge_place p WHERE p.rid = c.rid AND c.cluster <> p.final;

  -- the run's links agree with its clusters: links of placed records to
  -- persons they were not placed on go; the evidence of each merge comes
  IF n_bridged > 0 THEN
    DELETE FROM caredata.link_pair x USING pg_temp.link_cluster a, pg_temp.link_cluster b
     WHERE x.run_id = run AND a.rid = x.rid_l AND b.rid = x.rid_r AND a.cluster <> b.cluster
       AND (x.rid_l IN (SELECT j.rid FROM pg_temp.link_merge_adj j) OR x.rid_r IN (SELECT j.rid FROM pg_temp.link_merge_adj j));
    GET DIAGNOSTICS n_dropped = ROW_COUNT;
  END IF;
  INSERT INTO caredata.link_pair (run_id, rid_l, rid_r, pattern, weight, probability, step)
  SELECT run, e.rid_l, e.rid_r, e.pattern, e.weight, e.probability, e.step FROM pg_temp.link_merge_edge e;
  GET DIAGNOSTICS n_added = ROW_COUNT;
  -- and links of the previous run that clustering refused within an
  -- existing person (which stays whole) come back
  IF EXISTS (SELECT 1 FROM pg_temp.link_cluster c WHERE c.refused AND c.old_person IS NOT NULL) THEN
    INSERT INTO caredata.link_pair (run_id, rid_l, rid_r, pattern, weight, probability, step)
    SELECT run, x.rid_l, x.rid_r, x.pattern, x.weight, x.probability, x.step
      FROM caredata.link_pair x
      JOIN pg_temp.link_cluster a ON a.rid = x.rid_l
      JOIN pg_temp.link_cluster b ON b.rid = x.rid_r
     WHERE x.run_id = (SELECT max(p.run_id) FROM caredata.person_index p WHERE p.project = _link_incremental_merge.project)
       AND a.old_person = b.old_person AND (a.refused OR b.refused)
       AND NOT EXISTS (SELECT 1 FROM caredata.link_pair y WHERE y.run_id = run AND y.rid_l = x.rid_l AND y.rid_r = x.rid_r);
    GET DIAGNOSTICS n = ROW_COUNT;
    n_added := n_added + n;
  END IF;

  FOREACH work_table IN ARRAY ARRAY['link_merge_person', 'link_merge_touch', 'link_merge_cand', 'link_merge_rec', 'link_merge_pair',
                                    'link_merge_edge', 'link_merge_group', 'link_merge_place', 'link_merge_adj', 'link_merge_at'] LOOP
    IF to_regclass('pg_temp.' || work_table) IS NOT NULL THEN
      EXECUTE format('DROP TABLE pg_temp.%I', work_table);
    END IF;
  END LOOP;
  RETURN jsonb_build_object('merge_threshold', v_merge, 'persons_bridged', n_cand, 'merges_on_evidence', n_merge,
                            'records_placed_best', n_bridged, 'links_dropped', n_dropped, 'links_added', n_added,
                            'merge_s', round(extract(epoch FROM clock_timestamp() - t0)::numeric, 3));
END
$$;
COMMENT ON FUNCTION caredata._link_incremental_merge(bigint, text, integer, text, double precision, text) IS
  'internal: in an incremental link_run, keep existing persons whole, merge two only on a direct pair of their records at or above the model''s merge_threshold (NHS numbers not differing), place each new record on the existing person it links to best, and make the run''s links agree (over link_run''s pg_temp.link_cluster)';

CREATE OR REPLACE FUNCTION caredata.link_default_spec() RETURNS jsonb
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN $spec$
{
  "link_type": "link_and_dedupe",
  "comparisons": [
    {"name": "nhs", "expression": "caredata.compare_nhs_number(l.nhs_digits, r.nhs_digits)",
     "levels": ["missing or invalid", "different", "one digit different or transposed", "exact"],
     "tf": "nhs_digits"},
    {"name": "dob", "expression": "caredata.compare_date(l.dob, r.dob, 365)",
     "levels": ["missing", "different", "within a year", "two of year, month, day", "day and month transposed", "exact"],
     "tf": "dob"},
    {"name": "sex", "expression": "caredata.compare_sex(l.sex, r.sex)",
     "levels": ["missing or not known", "different", "same"]},
    {"name": "postcode", "expression": "caredata.compare_postcode(l.postcode, r.postcode)",
     "levels": ["missing", "different", "same area", "same district", "same sector", "exact"],
     "tf": "postcode"}
  ],
  "blocking": [["nhs_digits"], ["dob", "area"], ["postcode", "yob"], ["dob", "nhs_head"], ["dob", "nhs_tail"]],
  "steps": [
    "nhs = 3 AND dob = 5 AND sex = 2",
    "nhs = 3 AND dob IN (3, 4) AND postcode >= 3",
    "dob = 5 AND sex = 2 AND postcode = 5 AND nhs <> 1",
    "nhs = 2 AND dob = 5 AND postcode >= 3"
  ],
  "u_sample_pairs": 1000000,
  "seed": 42,
  "max_pairs": 200000000,
  "em_max_iterations": 100,
  "em_tolerance": 1e-6,
  "keep_nhs_apart": true,
  "nhs_confirm": "details",
  "merge_threshold": 0.999999
}
$spec$::jsonb;
COMMENT ON FUNCTION caredata.link_default_spec() IS
  'the default linkage model: NHS number, date of birth, sex and postcode comparisons, five blocking rules, four HESID-style deterministic steps';

-- (caredata._link_check_spec: replaced again below)

-- (caredata.link_run: replaced again below)


CREATE OR REPLACE FUNCTION caredata.link_add_source(source text, relation regclass, record_id name,
    nhs_number name DEFAULT NULL, dob name DEFAULT NULL, sex name DEFAULT NULL, postcode name DEFAULT NULL,
    fields jsonb DEFAULT NULL, project text DEFAULT 'default')
  RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p_project text := caredata._link_check_project(project);
  p_source text := source;
  c record;
  typ regtype;
  allowed regtype[];
  v_fields jsonb := '{}';
  f record;
  f_col text;
  f_kind text;
BEGIN
  IF p_source IS NULL OR p_source !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    PERFORM caredata._link_bad('a linkage source name is lower-case letters, digits and _', 'For example ''gp'' or ''hes''.');
  END IF;
  -- further fields: {"field": "column"} (kind text) or {"field": {"column": ..., "kind": ...}}
  IF fields IS NOT NULL AND jsonb_typeof(fields) <> 'object' THEN
    PERFORM caredata._link_bad('fields must be a JSON object of field names',
                               'For example {"given_name": {"column": "forename", "kind": "name"}, "address": {"column": "address_line_1", "kind": "address"}}.');
  END IF;
  FOR f IN SELECT * FROM jsonb_each(coalesce(fields, '{}')) ORDER BY 1 LOOP
    IF f.key !~ '^[a-z][a-z0-9_]{0,30}$' OR f.key LIKE 'tf\_%' OR f.key ~ '_(ph|num)$'
       OR f.key = ANY (caredata._link_record_columns()) THEN
      PERFORM caredata._link_bad(format('"%s" cannot be a field name', left(f.key, 40)),
                                 'A field name is lower-case letters, digits and _ (up to 31), does not start with tf_ or end in _ph or _num, and is not a column of caredata.link_record.');
    END IF;
    IF jsonb_typeof(f.value) = 'string' THEN
      f_col := f.value #>> '{}'; f_kind := 'text';
    ELSIF jsonb_typeof(f.value) = 'object' AND jsonb_typeof(f.value->'column') = 'string'
          AND (NOT f.value ? 'kind' OR jsonb_typeof(f.value->'kind') = 'string') THEN
      f_col := f.value->>'column'; f_kind := coalesce(f.value->>'kind', 'text');
    ELSE
      PERFORM caredata._link_bad(format('field "%s" must name its column', f.key), 'Give {"column": "...", "kind": "name"} or just the column name.');
    END IF;
    IF f_kind NOT IN ('name', 'address', 'postcode', 'identifier', 'text') THEN
      PERFORM caredata._link_bad(format('field "%s": kind must be name, address, postcode, identifier or text', f.key),
                                 'name: case, accents, punctuation, titles, plus a phonetic code (field_ph); address: tokens, plus the house number (field_num); postcode: UK canonical or any country''s as text; identifier: letters and digits only; text: case and spaces.');
    END IF;
    IF EXISTS (SELECT 1 FROM caredata.link_source ls WHERE ls.project = p_project AND ls.source <> p_source AND ls.fields ? f.key AND ls.fields->f.key->>'kind' <> f_kind) THEN
      PERFORM caredata._link_bad(format('field "%s" has another kind in another source', f.key),
                                 'A field is compared across sources: give it the same kind everywhere.');
    END IF;
    v_fields := v_fields || jsonb_build_object(f.key, jsonb_build_object('column', f_col, 'kind', f_kind));
  END LOOP;
  FOR c IN SELECT * FROM (VALUES
      ('record_id', record_id, ARRAY['smallint', 'integer', 'bigint', 'text', 'character varying', 'character', 'uuid']::regtype[]),
      ('nhs_number', nhs_number, ARRAY['text', 'character varying', 'character', 'bigint', 'caredata.nhs_number']::regtype[]),
      ('dob', dob, ARRAY['date', 'timestamp without time zone', 'timestamp with time zone', 'text', 'character varying', 'character']::regtype[]),
      ('sex', sex, ARRAY['text', 'character varying', 'character', 'smallint', 'integer']::regtype[]),
      ('postcode', postcode, ARRAY['text', 'character varying', 'character']::regtype[])) v(what, col, types)
    UNION ALL
    SELECT 'field ' || e.key, (e.value->>'column')::name,
           CASE WHEN e.value->>'kind' IN ('identifier', 'text')
                THEN ARRAY['text', 'character varying', 'character', 'smallint', 'integer', 'bigint', 'numeric', 'uuid']::regtype[]
                ELSE ARRAY['text', 'character varying', 'character']::regtype[] END
      FROM jsonb_each(v_fields) e
  LOOP
    IF c.col IS NULL THEN
      IF c.what = 'record_id' THEN
        PERFORM caredata._link_bad('a linkage source needs its record id column', 'Name an integer or text column that identifies each record.');
      END IF;
      CONTINUE;
    END IF;
    SELECT a.atttypid::regtype INTO typ FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = relation AND a.attname = c.col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'undefined_column',
        MESSAGE = format('column "%s" of relation %s does not exist', c.col, relation),
        HINT = format('Name the %s column of %s as it is spelled there.', c.what, relation);
    END IF;
    IF NOT typ = ANY (c.types) THEN
      RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
        MESSAGE = format('column "%s" of relation %s has type %s, which cannot be used as %s', c.col, relation, typ, c.what),
        HINT = format('Accepted types for %s: %s.', c.what, array_to_string(c.types::text[], ', '));
    END IF;
  END LOOP;
  INSERT INTO caredata.link_source AS s (project, source, relation, record_id, nhs_number, dob, sex, postcode, fields)
  VALUES (p_project, p_source, relation, record_id, nhs_number, dob, sex, postcode, v_fields)
  ON CONFLICT ON CONSTRAINT link_source_pkey DO UPDATE
    SET relation = excluded.relation, record_id = excluded.record_id, nhs_number = excluded.nhs_number,
        dob = excluded.dob, sex = excluded.sex, postcode = excluded.postcode, fields = excluded.fields,
        added_at = now(), added_by = current_user;
  -- statistics on each field, so that the planner estimates blocking on it
  PERFORM caredata._link_maintain('field_statistics', project => p_project);
  -- what was registered, in words (column names only, never a value)
  RETURN format('source %s of project %s: %s, record id %s; %s%s', p_source, p_project, relation, record_id,
                coalesce(nullif(concat_ws(', ', 'NHS number ' || nhs_number, 'date of birth ' || dob, 'sex ' || sex, 'postcode ' || postcode), ''),
                         'no NHS identifiers'),
                coalesce('; fields ' || (SELECT string_agg(format('%s (%s of %s)', e.key, e.value->>'kind', e.value->>'column'), ', ' ORDER BY e.key)
                                           FROM jsonb_each(v_fields) e), ''));
END
$$;
COMMENT ON FUNCTION caredata.link_add_source(text, regclass, name, name, name, name, name, jsonb, text) IS
  'register (or re-register) a linkage source of a project: a relation, its record id column (integer or text), its NHS identifier columns (any may be NULL) and further fields to standardise and compare ({"field": {"column": ..., "kind": name|address|postcode|identifier|text}}); returns what was registered, in words';


-- ---- issue 26, BI values ----
-- (src/variation/svg.sql) the funnel SVG's legend notes wrapped to the canvas
CREATE FUNCTION caredata._svg_lines(t text, max_chars integer) RETURNS text[]
  LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  word text;
  line text := '';
  lines text[] := '{}';
BEGIN
  FOREACH word IN ARRAY regexp_split_to_array(btrim(t), '\s+') LOOP
    IF line <> '' AND length(line) + 1 + length(word) > max_chars THEN
      lines := lines || line;
      line := word;
    ELSE
      line := CASE WHEN line = '' THEN word ELSE line || ' ' || word END;
    END IF;
  END LOOP;
  RETURN CASE WHEN line = '' THEN lines ELSE lines || line END;
END
$$;
COMMENT ON FUNCTION caredata._svg_lines(text, integer) IS 'internal: text broken at spaces into lines of at most max_chars characters (a longer word alone on its line)';



-- (src/sdc/person_set.sql, person_values.sql) the safe aggregates take a
-- pseudonym as published views show it (text), keyed as the pseudonym
CREATE FUNCTION caredata._person_set_add(caredata.person_set, text) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_set_add_text' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION caredata._person_set_add(caredata.person_set, text, text) RETURNS caredata.person_set
  AS 'MODULE_PATHNAME', 'person_set_add_text' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata._person_set_add(caredata.person_set, text) IS 'internal: transition function of the safe counting aggregates (a pseudonym''s text form)';
COMMENT ON FUNCTION caredata._person_set_add(caredata.person_set, text, text) IS 'internal: transition function of the safe counting aggregates (a pseudonym''s text form, policy named)';
CREATE AGGREGATE caredata.safe_count(person text) (
  SFUNC = caredata._person_set_add, STYPE = caredata.person_set, SSPACE = 1000000000,
  COMBINEFUNC = caredata._person_set_union, FINALFUNC = caredata._person_set_safe_count, PARALLEL = SAFE);
CREATE AGGREGATE caredata.safe_count(person text, policy text) (
  SFUNC = caredata._person_set_add, STYPE = caredata.person_set, SSPACE = 1000000000,
  COMBINEFUNC = caredata._person_set_union, FINALFUNC = caredata._person_set_safe_count, PARALLEL = SAFE);
CREATE AGGREGATE caredata.safe_count_text(person text) (
  SFUNC = caredata._person_set_add, STYPE = caredata.person_set, SSPACE = 1000000000,
  COMBINEFUNC = caredata._person_set_union, FINALFUNC = caredata._person_set_safe_text, PARALLEL = SAFE);
CREATE AGGREGATE caredata.safe_count_text(person text, policy text) (
  SFUNC = caredata._person_set_add, STYPE = caredata.person_set, SSPACE = 1000000000,
  COMBINEFUNC = caredata._person_set_union, FINALFUNC = caredata._person_set_safe_text, PARALLEL = SAFE);
CREATE AGGREGATE caredata.person_set_agg(person text) (
  SFUNC = caredata._person_set_add, STYPE = caredata.person_set, SSPACE = 1000000000,
  COMBINEFUNC = caredata._person_set_union, PARALLEL = SAFE);
COMMENT ON AGGREGATE caredata.safe_count(text) IS
  'distinct people, published as the caredata.sdc_policy setting allows: NULL when suppressed, else rounded';
COMMENT ON AGGREGATE caredata.safe_count(text, text) IS
  'distinct people, published as the named disclosure-control policy allows: NULL when suppressed, else rounded';
COMMENT ON AGGREGATE caredata.safe_count_text(text) IS
  'distinct people for display, as the caredata.sdc_policy setting allows: the number, or the policy''s mark (* or [REDACTED])';
COMMENT ON AGGREGATE caredata.safe_count_text(text, text) IS
  'distinct people for display, as the named policy allows: the number, or the policy''s mark (* or [REDACTED])';
COMMENT ON AGGREGATE caredata.person_set_agg(text) IS
  'the set of distinct people (a partial state of safe_count, to combine later with safe_count(person_set))';
DO $aggs$
DECLARE
  kind text;
BEGIN
  FOREACH kind IN ARRAY ARRAY['', ', text'] LOOP
    EXECUTE format($f$
      CREATE FUNCTION caredata._person_values_add(caredata.person_values, double precision, text%1$s) RETURNS caredata.person_values
        AS 'MODULE_PATHNAME', 'person_values_add_text' LANGUAGE C IMMUTABLE PARALLEL SAFE;
      CREATE FUNCTION caredata._person_values_any(caredata.person_values, boolean, text%1$s) RETURNS caredata.person_values
        AS 'MODULE_PATHNAME', 'person_values_any_text' LANGUAGE C IMMUTABLE PARALLEL SAFE;
      COMMENT ON FUNCTION caredata._person_values_add(caredata.person_values, double precision, text%1$s) IS
        'internal: transition function of safe_sum and safe_avg';
      COMMENT ON FUNCTION caredata._person_values_any(caredata.person_values, boolean, text%1$s) IS
        'internal: transition function of safe_rate';
      CREATE AGGREGATE caredata.safe_sum(value double precision, person text%1$s) (
        SFUNC = caredata._person_values_add, STYPE = caredata.person_values, SSPACE = 1000000000,
        COMBINEFUNC = caredata._person_values_combine, FINALFUNC = caredata._person_values_safe_sum, PARALLEL = SAFE);
      CREATE AGGREGATE caredata.safe_avg(value double precision, person text%1$s) (
        SFUNC = caredata._person_values_add, STYPE = caredata.person_values, SSPACE = 1000000000,
        COMBINEFUNC = caredata._person_values_combine, FINALFUNC = caredata._person_values_safe_avg, PARALLEL = SAFE);
      CREATE AGGREGATE caredata.safe_rate(condition boolean, person text%1$s) (
        SFUNC = caredata._person_values_any, STYPE = caredata.person_values, SSPACE = 1000000000,
        COMBINEFUNC = caredata._person_values_combine, FINALFUNC = caredata._person_values_safe_rate, PARALLEL = SAFE);
      COMMENT ON AGGREGATE caredata.safe_sum(double precision, text%1$s) IS
        'sum of value, NULL unless more people than the policy''s suppress_max contribute and no one dominates (its (n, k) and p%% rules)';
      COMMENT ON AGGREGATE caredata.safe_avg(double precision, text%1$s) IS
        'mean of value over rows, NULL unless more people than the policy''s suppress_max contribute and no one dominates';
      COMMENT ON AGGREGATE caredata.safe_rate(boolean, text%1$s) IS
        'share of distinct people with the condition on any of their rows, from the two counts as the policy publishes them (rounded); NULL when either would be suppressed';
      $f$, kind);
  END LOOP;
END
$aggs$;

-- (src/publication/kanon.sql) age bands that sort by age, with their lower bound; unknown dates of birth say so
CREATE FUNCTION caredata.age_band_from(dob date, at date, width integer DEFAULT 5, top integer DEFAULT 90) RETURNS integer
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN LEAST(pg_catalog.date_part('year', pg_catalog.age(at::timestamp, dob::timestamp))::integer
                            OPERATOR(pg_catalog./) width OPERATOR(pg_catalog.*) width, top);
COMMENT ON FUNCTION caredata.age_band_from(date, date, integer, integer) IS
  'the lower bound, in completed years at date at, of a date of birth''s age band (width years, the top band from top): 40 for 40-44, 90 for 90+';

CREATE FUNCTION caredata.age_band_label(dob date, at date, width integer DEFAULT 5, top integer DEFAULT 90) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN CASE
    WHEN dob IS NULL OR at IS NULL OR width IS NULL OR top IS NULL THEN 'unknown'
    WHEN caredata.age_band(dob, at, width, top) OPERATOR(pg_catalog.~) '\+$' THEN top::text OPERATOR(pg_catalog.||) '+'
    ELSE (SELECT CASE WHEN b.lo OPERATOR(pg_catalog.=) b.hi THEN pg_catalog.lpad(b.lo::text, b.digits, '0')
                      ELSE pg_catalog.lpad(b.lo::text, b.digits, '0') OPERATOR(pg_catalog.||) '-'
                           OPERATOR(pg_catalog.||) pg_catalog.lpad(b.hi::text, b.digits, '0') END
            FROM (SELECT a.lo, LEAST(a.lo OPERATOR(pg_catalog.+) width OPERATOR(pg_catalog.-) 1, top OPERATOR(pg_catalog.-) 1) AS hi,
                         pg_catalog.length(top::text) AS digits
                    FROM (SELECT caredata.age_band_from(dob, at, width, top) AS lo) a) b)
  END;
COMMENT ON FUNCTION caredata.age_band_label(date, date, integer, integer) IS
  'an age band as publications show it, sorting by age as text: bounds zero-padded to the top band''s digits (''05-09'', ''40-44'', ''90+''); ''unknown'' when the date of birth is (NULL), after every age';




-- (src/publication/dashboard.sql) code labels and aggregate-only publications
CREATE TABLE caredata.code_label (
  vocabulary  text NOT NULL CHECK (vocabulary ~ '^[a-z][a-z0-9_]{0,62}$'),
  code        text NOT NULL CHECK (length(code) BETWEEN 1 AND 64),
  label       text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
  source      text,
  builtin     boolean NOT NULL DEFAULT false,
  PRIMARY KEY (vocabulary, code)
);
COMMENT ON TABLE caredata.code_label IS
  'labels of codes, per vocabulary (sex and specialty built in, from the NHS Data Dictionary; provider and others added by caredata_admin): what a publication''s "labels" show beside its codes';
REVOKE ALL ON caredata.code_label FROM PUBLIC;
-- labels are public knowledge: any role may read them, and join them itself
GRANT SELECT ON caredata.code_label TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON caredata.code_label TO caredata_admin;
SELECT pg_catalog.pg_extension_config_dump('caredata.code_label', 'WHERE NOT builtin');

INSERT INTO caredata.code_label (vocabulary, code, label, source, builtin)
SELECT 'sex', c, l, 'NHS Data Dictionary, Person Phenotypic Sex / HES SEX (0, 1, 2, 9) and Person Stated Gender Code (X)', true
  FROM (VALUES ('0', 'Not known'), ('1', 'Male'), ('2', 'Female'), ('9', 'Not specified'), ('X', 'Not known')) v(c, l)
UNION ALL
SELECT 'specialty', c, l, 'NHS Data Dictionary, Main Specialty and Treatment Function codes', true
  FROM (VALUES ('100', 'General Surgery'), ('101', 'Urology'), ('110', 'Trauma and Orthopaedics'),
               ('120', 'Ear, Nose and Throat'), ('130', 'Ophthalmology'), ('140', 'Oral Surgery'),
               ('150', 'Neurosurgery'), ('160', 'Plastic Surgery'), ('170', 'Cardiothoracic Surgery'),
               ('180', 'Emergency Medicine'), ('300', 'General Internal Medicine'), ('301', 'Gastroenterology'),
               ('302', 'Endocrinology'), ('320', 'Cardiology'), ('330', 'Dermatology'),
               ('340', 'Respiratory Medicine'), ('400', 'Neurology'), ('410', 'Rheumatology'),
               ('420', 'Paediatrics'), ('430', 'Geriatric Medicine'), ('501', 'Obstetrics'),
               ('502', 'Gynaecology'), ('560', 'Midwifery'), ('700', 'Learning Disability'),
               ('710', 'Adult Mental Illness'), ('800', 'Clinical Oncology')) v(c, l);

-- a code's label in a vocabulary, NULL when it has none
CREATE FUNCTION caredata.label_of(vocabulary text, code text) RETURNS text
  LANGUAGE sql STABLE STRICT PARALLEL SAFE
  RETURN (SELECT l.label FROM caredata.code_label l
           WHERE l.vocabulary OPERATOR(pg_catalog.=) label_of.vocabulary AND l.code OPERATOR(pg_catalog.=) label_of.code);
COMMENT ON FUNCTION caredata.label_of(text, text) IS
  'a code''s label in a vocabulary of caredata.code_label (label_of(''sex'', ''2'') = ''Female''); NULL when it has none';

-- what a spec's "labels" may say: published columns (kept or grouped)
-- and vocabularies that have labels; checked as the role publishing
CREATE FUNCTION caredata._publication_labels_check(spec jsonb, allowed text[]) RETURNS void
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c record;
BEGIN
  IF NOT spec ? 'labels' THEN
    RETURN;
  END IF;
  IF jsonb_typeof(spec->'labels') IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication''s "labels" map its columns to vocabularies',
      HINT = 'For example {"sex": "sex", "specialty": "specialty", "provider_code": "provider"} (see caredata.code_label).';
  END IF;
  FOR c IN SELECT key, value FROM jsonb_each(spec->'labels') LOOP
    IF NOT c.key = ANY (allowed) THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('column "%s" has labels but is not published as codes', c.key),
        HINT = 'Label columns the spec publishes as "keep" or "group" (or, for publish_aggregates, its "by" columns).';
    END IF;
    IF jsonb_typeof(c.value) IS DISTINCT FROM 'string'
       OR NOT EXISTS (SELECT 1 FROM caredata.code_label l WHERE l.vocabulary = c.value #>> '{}') THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('no labels in vocabulary %s', c.value),
        HINT = 'Name a vocabulary of caredata.code_label (sex, specialty, or one an admin has filled, such as provider).';
    END IF;
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata._publication_labels_check(jsonb, text[]) IS
  'internal: checks a spec''s "labels": each a published code column (among allowed) mapped to a vocabulary of caredata.code_label that has labels';

-- a published query with its label columns added (<column>_label), its
-- columns named as the view names them
CREATE FUNCTION caredata._publication_labelled(spec jsonb, body text) RETURNS text
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  extra text;
BEGIN
  IF NOT spec ? 'labels' THEN
    RETURN body;
  END IF;
  SELECT string_agg(format(', CASE WHEN q.%1$I IS NULL THEN NULL WHEN q.%1$I::text OPERATOR(pg_catalog.=) ''other'' AND %3$s THEN ''other'' '
                           'ELSE coalesce(caredata.label_of(%2$L, q.%1$I::text), q.%1$I::text) END AS %4$I',
                           c.key, c.value, CASE WHEN spec #>> ARRAY['columns', c.key] IS NOT DISTINCT FROM 'group' THEN 'true' ELSE 'false' END, c.key || '_label'), '' ORDER BY c.key)
    INTO extra FROM jsonb_each_text(spec->'labels') c;
  RETURN format('SELECT q.*%s FROM (%s) q', extra, body);
END
$$;
COMMENT ON FUNCTION caredata._publication_labelled(jsonb, text) IS
  'internal: a publication''s query with <column>_label beside each labelled column (the code''s label, else the code; ''other'' stays)';

-- The query of an aggregate-only publication, read as the view's owner:
-- per unit (the "by" columns), people, people with the outcome and its
-- rate (safe aggregates: the reader's policy in force), and the unit's
-- funnel plot row (caredata._funnel on the true counts, showing what the
-- same policy publishes; a proportion, PR).  Objectors for the purpose are
-- left out first; the reader is checked.
CREATE FUNCTION caredata._publication_aggregate_query(p caredata.publication) RETURNS text
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  by_cols text[] := ARRAY(SELECT jsonb_array_elements_text(p.spec->'by'));
  outcome text := p.spec->>'outcome';
  rows caredata.publication := p;
  sel text;
  grp text;
  ugrp text;
  unit text;
BEGIN
  -- the records as a record-level publication of the units and the
  -- outcome would read them (stored pseudonyms, objectors left out, the
  -- reader checked: _publication_base), never shown: only counted
  rows.spec := p.spec || jsonb_build_object('columns',
    (SELECT jsonb_object_agg(c, 'keep') FROM unnest(by_cols || CASE WHEN outcome IS NULL THEN '{}'::text[] ELSE ARRAY[outcome] END) c));
  sel := (SELECT string_agg(format('b.%I::text AS %I', b, b), ', ') FROM unnest(by_cols) b);
  grp := (SELECT string_agg(format('r.%I', b), ', ') FROM unnest(by_cols) b);
  ugrp := (SELECT string_agg(format('u.%I', b), ', ') FROM unnest(by_cols) b);
  unit := (SELECT format('pg_catalog.concat_ws('' / '', %s)', string_agg(format('coalesce(r.%I, ''unknown'')', b), ', ')) FROM unnest(by_cols) b);
  RETURN format($q$
    WITH r AS MATERIALIZED (
      SELECT %1$s, b.person, %2$s AS outcome FROM (%3$s) b
    ), u AS (
      SELECT %4$s, %5$s AS unit,
             caredata.safe_count(r.person) AS persons,
             caredata.safe_count(r.person) FILTER (WHERE r.outcome) AS outcome_persons,
             caredata.safe_rate(r.outcome, r.person) AS outcome_rate,
             pg_catalog.count(DISTINCT r.person) AS _n,
             pg_catalog.count(DISTINCT r.person) FILTER (WHERE r.outcome) AS _e
        FROM r GROUP BY %4$s
    ), f AS (
      SELECT f.* FROM (SELECT pg_catalog.array_agg(u.unit) AS k, pg_catalog.array_agg(u._e::text) AS n, pg_catalog.array_agg(u._n::text) AS d FROM u) a,
             caredata._funnel(a.k, a.n, a.d, 'PR', 'tau2', 'SHMI', 0.1, 99.8, NULL) f
       WHERE %6$s
    )
    SELECT %7$s, u.unit, u.persons, %8$s
           f.numerator AS funnel_numerator, f.denominator AS funnel_denominator, f.ratio AS funnel_ratio,
           f.lower_998 AS funnel_lower_998, f.lower_95 AS funnel_lower_95, f.upper_95 AS funnel_upper_95, f.upper_998 AS funnel_upper_998,
           f.band AS funnel_band, f.outlier AS funnel_outlier, coalesce(f.suppressed, u.persons IS NULL) AS suppressed
      FROM u LEFT JOIN f ON f.unit OPERATOR(pg_catalog.=) u.unit$q$,
    sel,
    CASE WHEN outcome IS NULL THEN 'false'
         ELSE format('coalesce((b.%I)::integer OPERATOR(pg_catalog.<>) 0, false)', outcome) END,
    caredata._publication_base(rows, 0, false),
    grp, unit, CASE WHEN outcome IS NULL THEN 'false' ELSE 'true' END, ugrp,
    CASE WHEN outcome IS NULL THEN '' ELSE 'u.outcome_persons, u.outcome_rate,' END);
END
$$;
COMMENT ON FUNCTION caredata._publication_aggregate_query(caredata.publication) IS
  'internal: an aggregate-only publication''s query: per unit, people, people with the outcome and its rate, and the funnel row, as the reader''s disclosure-control policy publishes them; objectors left out';

-- what an aggregate-only spec may say (checked by _publication_check, as
-- the role publishing): one to three "by" columns of the source, none a
-- direct identifier; an "outcome" column that is boolean or a number
CREATE FUNCTION caredata._publication_aggregates_check(spec jsonb, source regclass) RETURNS void
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b text;
  why text;
  t regtype;
BEGIN
  IF jsonb_typeof(spec->'by') IS DISTINCT FROM 'array' OR jsonb_array_length(spec->'by') NOT BETWEEN 1 AND 3
     OR EXISTS (SELECT 1 FROM jsonb_array_elements(spec->'by') e WHERE jsonb_typeof(e) <> 'string') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an aggregate publication names the units it counts by',
      HINT = 'Set "by" to one to three columns: the organisation, team or clinician, for example ["provider_code"] or ["provider_code", "specialty"].';
  END IF;
  IF spec->'columns' IS DISTINCT FROM '{}'::jsonb THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an aggregate publication publishes no columns, only numbers by unit',
      HINT = 'Name the units in "by"; use caredata.publish() for a record-level view.';
  END IF;
  FOR b IN SELECT jsonb_array_elements_text(spec->'by') UNION ALL SELECT spec->>'outcome' WHERE spec ? 'outcome' LOOP
    SELECT a.atttypid::regtype INTO t FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = source AND a.attname = b AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = '42703', MESSAGE = format('column "%s" is not in %s', b, source),
        HINT = 'Name the source''s columns in "by" and "outcome".';
    END IF;
    why := caredata._direct_identifier(source, b);
    IF why IS NOT NULL OR b = spec->>'nhs_column' THEN
      RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format('column "%s" is a direct identifier (%s) and cannot be a unit or an outcome', b, coalesce(why, 'an NHS number')),
        HINT = 'Count by an organisation, team or clinician code.';
    END IF;
  END LOOP;
  IF spec ? 'outcome' AND NOT (SELECT a.atttypid::regtype FROM pg_catalog.pg_attribute a
                                WHERE a.attrelid = source AND a.attname = spec->>'outcome' AND NOT a.attisdropped)
                              = ANY (ARRAY['boolean', 'smallint', 'integer', 'bigint', 'numeric']::regtype[]) THEN
    RAISE EXCEPTION USING ERRCODE = '42804', MESSAGE = format('outcome column "%s" is neither boolean nor a number', spec->>'outcome'),
      HINT = 'The outcome is true (or non-zero) for a person''s record with the event, such as died_30d.';
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._publication_aggregates_check(jsonb, regclass) IS
  'internal: checks an aggregate-only spec: one to three "by" columns of the source, none a direct identifier, and a boolean or numeric "outcome"';

CREATE FUNCTION caredata.publish_aggregates(name text, source regclass, spec jsonb, recipient name)
  RETURNS regclass LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  full_spec jsonb := jsonb_build_object('nhs_column', 'nhs_number') || coalesce(spec, '{}')
                     || jsonb_build_object('kind', 'aggregates', 'columns', coalesce(spec->'columns', '{}'));
BEGIN
  PERFORM caredata._catalog_write('caredata.publish_aggregates()');
  IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication name is lower-case letters, digits and _',
      HINT = 'It names the view published.<name>.';
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.publication x WHERE x.name = publish_aggregates.name) THEN
    RAISE EXCEPTION USING ERRCODE = '42710', MESSAGE = format('publication "%s" already exists', name),
      HINT = 'Unpublish it first, or republish it.';
  END IF;
  IF full_spec->>'purpose' IS NULL OR NOT EXISTS (SELECT 1 FROM caredata.purpose x WHERE x.name = full_spec->>'purpose') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication needs the purpose it is for',
      HINT = 'Set "purpose" in the spec to one of caredata.purpose (research, ...): the objection filter is built for it.';
  END IF;
  -- (the objection filter reads the stored pseudonyms, as publish()'s does;
  -- the view counts people by them and shows none)
  IF NOT EXISTS (SELECT 1 FROM caredata.domain d WHERE d.name = full_spec->>'domain' AND d.retired_at IS NULL) THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = 'a publication needs the recipient''s pseudonym domain',
      HINT = 'Set "domain" in the spec to a domain made with caredata.create_domain(), and run caredata.refresh_pseudonyms() for the source.';
  END IF;
  -- the rest is checked by caredata._publication_check(), as the caller
  INSERT INTO caredata.publication (name, recipient, source, spec) VALUES (name, recipient, source, full_spec);
  PERFORM caredata._publication_view(name);
  PERFORM caredata.audit_append('publication.create', name,
    jsonb_build_object('recipient', recipient, 'source', source::text, 'spec', full_spec));
  RETURN format('published.%I', name)::regclass;
END
$$;
COMMENT ON FUNCTION caredata.publish_aggregates(text, regclass, jsonb, name) IS
  'publish only aggregates of a source to one recipient, as published.<name>, for dashboards: spec {"domain" (people are counted by its stored pseudonyms, never shown), "purpose", "dataset"?, "nhs_column"? (default nhs_number), "by": [one to three unit columns: organisation, team, clinician], "outcome"? (a boolean or 0/1 column), "labels"? {column: vocabulary}}; per unit: people, people with the outcome, its rate, and the funnel plot row (proportion, 95% and 99.8% limits, band, outlier), as the disclosure-control policy in force for the reader publishes them; objectors for the purpose left out; no record-level data; audited; unpublish() and republish() as for publish()';

REVOKE ALL ON FUNCTION caredata._publication_labels_check(jsonb, text[]), caredata._publication_labelled(jsonb, text),
  caredata._publication_aggregate_query(caredata.publication), caredata._publication_aggregates_check(jsonb, regclass),
  caredata.publish_aggregates(text, regclass, jsonb, name) FROM PUBLIC;
-- (the checks run as the role inserting a publication: an admin)
GRANT EXECUTE ON FUNCTION caredata._publication_labels_check(jsonb, text[]), caredata._publication_aggregates_check(jsonb, regclass),
  caredata.publish_aggregates(text, regclass, jsonb, name) TO caredata_admin;

-- (src/publication/publication.sql) publications check and show labels, and may be aggregate-only
CREATE OR REPLACE FUNCTION caredata._publication_check() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c record;
  why text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = NEW.recipient) THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('role "%s" does not exist', NEW.recipient),
      HINT = 'Create the recipient''s role first (CREATE ROLE ... NOLOGIN, or a login).';
  END IF;
  why := caredata._recipient_problem(NEW.recipient);
  IF why IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('role "%s" cannot be a recipient', NEW.recipient),
      DETAIL = format('Role "%s" %s.', NEW.recipient, why),
      HINT = 'Publish to a role of its own (a team or a BI login), or to caredata_analyst; not to a superuser, a BYPASSRLS role, or a member of a role that holds identifiers.';
  END IF;
  -- the approval's scope is checked by _publication_view() (when the view
  -- is made) and by the view (each time it is read), not here, so that a
  -- restored dump's rows pass again once the approval has lapsed
  IF NEW.spec ? 'approval' AND (jsonb_typeof(NEW.spec->'approval') IS DISTINCT FROM 'string' OR btrim(NEW.spec->>'approval') = '') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication''s "approval" is the reference of an approval',
      HINT = 'Set "approval" to the reference of an approval in caredata.approval, or leave it out.';
  END IF;
  IF jsonb_typeof(NEW.spec->'columns') IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication names the columns it publishes',
      HINT = 'Set "columns" to {"column": "keep" | "group" | "month" | "quarter" | "year" | "year_of_birth" | "age_band" | "sector" | "district" | "area" | "band:N"}; others are dropped.';
  END IF;
  PERFORM caredata._publication_kanon_check(NEW.spec);
  IF caredata._publication_source_problem(NEW.source) IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42809', MESSAGE = format('%s cannot be published: %s', NEW.source, caredata._publication_source_problem(NEW.source)),
      HINT = 'Publish a table, a materialized view or a plain view: a published view reads its source with the source owner''s rights.';
  END IF;
  IF NOT has_table_privilege(NEW.source, 'SELECT') THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format('permission denied to publish %s', NEW.source),
      HINT = 'Publish only what you may read yourself.';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = NEW.source AND a.attname = NEW.spec->>'nhs_column'
                    AND a.attnum > 0 AND NOT a.attisdropped) THEN
    RAISE EXCEPTION USING ERRCODE = '42703', MESSAGE = format('NHS number column "%s" is not in %s', NEW.spec->>'nhs_column', NEW.source),
      HINT = 'Set "nhs_column" in the spec (default nhs_number).';
  END IF;
  FOR c IN SELECT key, value FROM jsonb_each_text(NEW.spec->'columns') LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = NEW.source AND a.attname = c.key AND a.attnum > 0 AND NOT a.attisdropped) THEN
      RAISE EXCEPTION USING ERRCODE = '42703', MESSAGE = format('column "%s" is not in %s', c.key, NEW.source),
        HINT = 'Name the source''s columns in the spec''s "columns".';
    END IF;
    IF c.key = NEW.spec->>'nhs_column' AND (c.value <> 'keep' OR NOT NEW.spec ? 'approval') THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'the NHS number column cannot be published',
        HINT = 'It is replaced by the recipient''s pseudonym, in the column "person"; only a spec naming an approval in the register may keep it.';
    END IF;
    IF caredata._publish_column(c.key, c.value) IS NULL THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('column "%s": unknown treatment "%s"', c.key, c.value),
        HINT = 'Use keep, group, month, quarter, year, year_of_birth, age_band, sector, district, area or band:N.';
    END IF;
    why := caredata._direct_identifier(NEW.source, c.key);
    IF why IS NOT NULL AND NOT caredata._identifier_treatment_ok(why, c.value) AND NOT NEW.spec ? 'approval' THEN
      RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format('column "%s" is a direct identifier (%s) and cannot be published as "%s"', c.key, why, c.value),
        DETAIL = 'A publication releases no NHS number, full date of birth, full postcode, name, address, telephone number or e-mail address.',
        HINT = 'Generalise it (a date of birth as year_of_birth or age_band, a postcode as district or sector) or leave it out; an identifiable release names an approval in the register ("approval" in the spec) that covers the recipient, purpose and dataset.';
    END IF;
  END LOOP;
  -- an aggregate-only publication's units and outcome; labels of codes (src/publication/dashboard.sql)
  IF NEW.spec->>'kind' = 'aggregates' THEN
    PERFORM caredata._publication_aggregates_check(NEW.spec, NEW.source);
    PERFORM caredata._publication_labels_check(NEW.spec, ARRAY(SELECT jsonb_array_elements_text(NEW.spec->'by')));
  ELSIF NEW.spec ? 'kind' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('unknown publication kind "%s"', NEW.spec->>'kind'),
      HINT = 'caredata.publish() makes record-level views, caredata.publish_aggregates() aggregate-only ones.';
  ELSE
    PERFORM caredata._publication_labels_check(NEW.spec,
      ARRAY(SELECT x.key FROM jsonb_each_text(NEW.spec->'columns') x WHERE x.value IN ('keep', 'group')));
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION caredata._publication_check() IS
  'internal: checks a new publication as the role publishing it (rights on the source, the recipient, the columns)';

CREATE OR REPLACE FUNCTION caredata._publication_view(name text) RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p caredata.publication;
  c record;
  why text;
  body text;
  approved text := '';
  citus boolean;
  rows_name text := '_rows_' || substr(md5(name), 1, 12);
  inner_name text := '_query_' || substr(md5(name), 1, 12);
  mode text;
BEGIN
  SELECT * INTO p FROM caredata.publication x WHERE x.name = _publication_view.name;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('publication "%s" does not exist', name),
      HINT = 'See caredata.publication.';
  END IF;
  citus := caredata._citus_table(p.source) OR caredata._citus_table('caredata.pseudonym_map');
  IF citus THEN
    -- Citus creates the function below on every node over one connection
    -- per node, and refuses once this transaction has read a distributed
    -- table in parallel: the reads of the source use one connection too
    -- (issue 27), until the function is made
    mode := current_setting('citus.multi_shard_modify_mode');
    PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
  END IF;
  -- the recipient again (it may have joined a privileged role since), and
  -- the kept columns by their values (an identifier under another name)
  why := caredata._recipient_problem(p.recipient);
  IF why IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('role "%s" cannot be a recipient', p.recipient),
      DETAIL = format('Role "%s" %s.', p.recipient, why),
      HINT = 'Unpublish the publication (caredata.unpublish()), or revoke the membership first.';
  END IF;
  -- an approval the spec names covers the recipient, purpose and dataset
  -- now (42501 otherwise), and the view checks it again each time it is read
  IF p.spec ? 'approval' THEN
    PERFORM caredata._approval_require(p.spec->>'approval', p.recipient, p.spec->>'purpose', p.spec->>'dataset', 'publication');
    approved := format(' AND (SELECT caredata._published_approval(%L))', p.name);
  END IF;
  FOR c IN SELECT key, value FROM jsonb_each_text(p.spec->'columns') ORDER BY key LOOP
    why := coalesce(caredata._direct_identifier(p.source, c.key),
                    CASE WHEN c.value = 'keep' THEN caredata._direct_identifier_values(p.source, c.key) END);
    IF why IS NOT NULL AND NOT caredata._identifier_treatment_ok(why, c.value) AND NOT p.spec ? 'approval' THEN
      RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format('column "%s" is a direct identifier (%s) and cannot be published as "%s"', c.key, why, c.value),
        DETAIL = 'A publication releases no NHS number, full date of birth, full postcode, name, address, telephone number or e-mail address.',
        HINT = 'Generalise it (a date of birth as year_of_birth or age_band, a postcode as district or sector) or leave it out; an identifiable release names an approval in the register ("approval" in the spec) that covers the recipient, purpose and dataset.';
    END IF;
  END LOOP;
  EXECUTE format('DROP VIEW IF EXISTS published.%I', p.name);
  IF to_regprocedure(format('published.%I()', rows_name)) IS NOT NULL THEN
    EXECUTE format('DROP FUNCTION published.%I()', rows_name);
  END IF;
  IF to_regclass(format('published.%I', inner_name)) IS NOT NULL THEN
    EXECUTE format('DROP VIEW published.%I', inner_name);
  END IF;
  -- the generalisation level for k and linkability, measured as the view's
  -- owner; the query with k enforced as it is read (src/publication/kanon.sql)
  body := CASE WHEN p.spec->>'kind' = 'aggregates' THEN caredata._publication_aggregate_query(p) ELSE caredata._publication_kanon_query(p.spec,
            caredata._publication_base(p, caredata._publication_disclose(p, citus), citus)) END;
  -- (aggregates only, src/publication/dashboard.sql: no records, so no k to enforce)
  IF p.spec->>'kind' = 'aggregates' AND citus THEN
    RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = 'aggregate-only publications of distributed tables are not supported',
      HINT = 'Publish a local table or materialized view of the distributed one.';
  END IF;
  -- codes' labels beside them, when the spec asks (src/publication/dashboard.sql)
  body := caredata._publication_labelled(p.spec, body);
  IF citus THEN
    -- Citus runs a view's query on the nodes as its reader, who may read
    -- the view but not its source: the query runs instead in a SECURITY
    -- DEFINER function, as the view's owner, as a view's would
    -- (docs/scale-out.md)
    EXECUTE format('CREATE VIEW published.%I WITH (security_barrier) AS %s', inner_name, body);
    EXECUTE format('REVOKE ALL ON published.%I FROM PUBLIC', inner_name);
    EXECUTE format('COMMENT ON VIEW published.%I IS %L', inner_name,
                   'caredata publication on Citus: its query, read only through its function');
    EXECUTE format('CREATE FUNCTION published.%I() RETURNS SETOF published.%I LANGUAGE plpgsql STABLE SECURITY DEFINER '
                   'SET search_path = pg_catalog, pg_temp AS %L',
                   rows_name, inner_name, format('BEGIN RETURN QUERY SELECT * FROM published.%I; END', inner_name));
    EXECUTE format('REVOKE ALL ON FUNCTION published.%I() FROM PUBLIC', rows_name);
    EXECUTE format('GRANT EXECUTE ON FUNCTION published.%I() TO %I', rows_name, p.recipient);
    EXECUTE format('COMMENT ON FUNCTION published.%I() IS %L', rows_name,
                   'caredata publication on Citus: the rows of its view, as its owner');
    PERFORM set_config('citus.multi_shard_modify_mode', mode, true);
    body := format('SELECT * FROM published.%I() q', rows_name);
    -- the reader check below, in the outer view: the inner query runs as the owner
    EXECUTE format('CREATE VIEW published.%I WITH (security_barrier) AS %s WHERE (SELECT caredata._published_reader())%s', p.name, body, approved);
  ELSE
    -- (the reader is checked inside, by _publication_base's query; an
    -- approval, when the spec names one, outside it)
    IF approved <> '' THEN
      body := format('SELECT * FROM (%s) q WHERE true%s', body, approved);
    END IF;
    EXECUTE format('CREATE VIEW published.%I WITH (security_barrier) AS %s', p.name, body);
  END IF;
  -- every role reads every comment (obj_description): it names no
  -- recipient, domain, source or purpose
  EXECUTE format('COMMENT ON VIEW published.%I IS %L', p.name,
                 'caredata publication: a de-identified, objection-filtered view for its recipient alone');
  EXECUTE format('REVOKE ALL ON published.%I FROM PUBLIC', p.name);
  EXECUTE format('GRANT SELECT ON published.%I TO %I', p.name, p.recipient);
  EXECUTE format('GRANT USAGE ON SCHEMA published TO %I', p.recipient);
  -- a view's functions run with its reader's EXECUTE rights: the filter's
  -- (answered as for an analyst, who may already call it)
  EXECUTE format('GRANT EXECUTE ON FUNCTION caredata.permitted(caredata.nhs_number, text, timestamptz, text) TO %I', p.recipient);
  EXECUTE format('GRANT EXECUTE ON FUNCTION caredata._published_reader(), caredata._recipient_problem(name) TO %I', p.recipient);
  IF p.spec ? 'approval' THEN
    EXECUTE format('GRANT EXECUTE ON FUNCTION caredata._published_approval(text) TO %I', p.recipient);
  END IF;
  -- (the recipient's search_path is left alone: the view qualifies all it
  -- names, and the recipient sets its own; docs/publication.md)
END
$$;
COMMENT ON FUNCTION caredata._publication_view(text) IS
  'internal: (re)create a publication''s view from its catalog row (checking its recipient and its columns again) and grant it to its recipient alone';


-- ---- issue 26, messages ----
-- nhs_number_invalid_reason(): 'missing' for NULL and for blank text (was
-- 'empty' for blank, NULL for NULL), so its codes are disjoint and cover
-- every value
ALTER FUNCTION caredata.nhs_number_invalid_reason(text) CALLED ON NULL INPUT;
COMMENT ON FUNCTION caredata.nhs_number_invalid_reason(text) IS
  'why a text is not a valid NHS number (missing: NULL or only white space; non_digit, grouping, length, check_digit_10, check_digit, repeated_digit), NULL when valid; never shows the value';

CREATE OR REPLACE FUNCTION caredata._link_maintain(what text, rules jsonb DEFAULT '[]', project text DEFAULT 'default') RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  col text;
  parent text;
  part regclass;
  records regclass;
  persons regclass;
  pname text;
BEGIN
  IF project IS NULL OR project OPERATOR(pg_catalog.!~) '^[a-z][a-z0-9_]{0,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a linkage project name is lower-case letters, digits and _';
  END IF;
  IF what OPERATOR(pg_catalog.=) 'create_partitions' THEN
    -- link_create_project() has inserted the project's row
    IF NOT EXISTS (SELECT 1 FROM caredata.link_project p WHERE p.project OPERATOR(pg_catalog.=) _link_maintain.project) THEN
      RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = pg_catalog.format('linkage project "%s" does not exist', project),
        HINT = 'Create projects with caredata.link_create_project().';
    END IF;
    FOREACH parent IN ARRAY ARRAY['link_record', 'person_index'] LOOP
      IF caredata._link_partition(('caredata.' OPERATOR(pg_catalog.||) parent)::pg_catalog.regclass, project) IS NOT NULL THEN
        CONTINUE;
      END IF;
      -- <table>_p_<project>, or a digest where that is too long or taken
      pname := parent OPERATOR(pg_catalog.||) '_p_' OPERATOR(pg_catalog.||) project;
      IF pg_catalog.length(pname) OPERATOR(pg_catalog.>) 63
         OR pg_catalog.to_regclass('caredata.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(pname)) IS NOT NULL THEN
        pname := parent OPERATOR(pg_catalog.||) '_p_' OPERATOR(pg_catalog.||) pg_catalog.md5(project);
      END IF;
      IF parent OPERATOR(pg_catalog.=) 'link_record' THEN
        EXECUTE pg_catalog.format('CREATE TABLE caredata.%I PARTITION OF caredata.link_record (PRIMARY KEY (rid)) FOR VALUES IN (%L)',
                                  pname, project);
      ELSE
        EXECUTE pg_catalog.format('CREATE TABLE caredata.%I PARTITION OF caredata.person_index (PRIMARY KEY (record_key, source), UNIQUE (rid)) FOR VALUES IN (%L)',
                                  pname, project);
        EXECUTE pg_catalog.format('CREATE INDEX ON caredata.%I (person_id)', pname);
        -- integer record ids, as sources join them (record_key is the key)
        EXECUTE pg_catalog.format('CREATE INDEX ON caredata.%I (record_id, source)', pname);
      END IF;
      EXECUTE pg_catalog.format('REVOKE ALL ON caredata.%I FROM PUBLIC', pname);
      EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON caredata.%I TO caredata_linker, caredata_admin', pname);
      EXECUTE pg_catalog.format('COMMENT ON TABLE caredata.%I IS %L', pname,
                                pg_catalog.format('partition of caredata.%s holding linkage project %s', parent, project));
    END LOOP;
    RETURN;
  ELSIF what OPERATOR(pg_catalog.=) 'drop_partitions' THEN
    -- link_drop_project() has deleted the project's row
    IF EXISTS (SELECT 1 FROM caredata.link_project p WHERE p.project OPERATOR(pg_catalog.=) _link_maintain.project) THEN
      RAISE EXCEPTION USING ERRCODE = '55000', MESSAGE = 'a linkage project''s partitions go only with the project',
        HINT = 'Drop the project with caredata.link_drop_project().';
    END IF;
    FOREACH parent IN ARRAY ARRAY['link_record', 'person_index'] LOOP
      part := caredata._link_partition(('caredata.' OPERATOR(pg_catalog.||) parent)::pg_catalog.regclass, project);
      IF part IS NOT NULL THEN
        EXECUTE pg_catalog.format('DROP TABLE %s', part);
      END IF;
    END LOOP;
    RETURN;
  END IF;

  records := caredata._link_partition('caredata.link_record'::pg_catalog.regclass, project);
  persons := caredata._link_partition('caredata.person_index'::pg_catalog.regclass, project);
  IF records IS NULL OR persons IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = pg_catalog.format('linkage project "%s" does not exist', project),
      HINT = 'Create it with caredata.link_create_project(), or see caredata.link_project.';
  END IF;
  IF what OPERATOR(pg_catalog.=) 'analyze_records' THEN
    EXECUTE pg_catalog.format('ANALYZE %s', records);
  ELSIF what OPERATOR(pg_catalog.=) 'truncate_records' THEN
    EXECUTE pg_catalog.format('TRUNCATE %s', records);
  ELSIF what OPERATOR(pg_catalog.=) 'index_rules' THEN
    -- one single-column index per distinct leading column of the rules: a
    -- lookup finds a handful of rows by it and filters on the rest
    FOR col IN SELECT DISTINCT b.value OPERATOR(pg_catalog.->>) 0 FROM pg_catalog.jsonb_array_elements(rules) b LOOP
      IF col OPERATOR(pg_catalog.=) ANY (caredata._link_field_columns(project)) THEN
        -- a field: an index on the expression the record relation names it by
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                        WHERE i.indrelid OPERATOR(pg_catalog.=) records
                          AND pg_catalog.pg_get_indexdef(i.indexrelid) OPERATOR(pg_catalog.~~)
                              ('%((fields ->> ' OPERATOR(pg_catalog.||) pg_catalog.quote_literal(col) OPERATOR(pg_catalog.||) '))%')) THEN
          EXECUTE pg_catalog.format('CREATE INDEX ON %s ((fields OPERATOR(pg_catalog.->>) %L))', records, col);
        END IF;
        CONTINUE;
      END IF;
      IF NOT col OPERATOR(pg_catalog.=) ANY (caredata._link_key_columns()) THEN
        RAISE EXCEPTION USING ERRCODE = '42703', MESSAGE = 'blocking rules name only standardised record columns and declared fields';
      END IF;
      IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a
                                 ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0]
                      WHERE i.indrelid OPERATOR(pg_catalog.=) records AND i.indnatts OPERATOR(pg_catalog.=) 1
                        AND a.attname OPERATOR(pg_catalog.=) col) THEN
        EXECUTE pg_catalog.format('CREATE INDEX ON %s (%I)', records, col);
      END IF;
    END LOOP;
  ELSIF what OPERATOR(pg_catalog.=) 'field_statistics' THEN
    -- statistics on each field's expression in the project's partition,
    -- which ANALYZE fills and the planner reads to estimate a blocking
    -- rule on the field (named by a digest of partition and field)
    FOR col IN SELECT c FROM pg_catalog.unnest(caredata._link_field_columns(project)) c LOOP
      pname := 'link_record_f_' OPERATOR(pg_catalog.||) pg_catalog.left(pg_catalog.md5(records::text OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) col), 16);
      IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_statistic_ext e
                      WHERE e.stxnamespace OPERATOR(pg_catalog.=) 'caredata'::pg_catalog.regnamespace
                        AND e.stxname OPERATOR(pg_catalog.=) pname) THEN
        EXECUTE pg_catalog.format('CREATE STATISTICS caredata.%I ON ((fields OPERATOR(pg_catalog.->>) %L)) FROM %s', pname, col, records);
      END IF;
    END LOOP;
  ELSIF what OPERATOR(pg_catalog.=) 'drop_indexes' THEN
    -- before link_record is rebuilt: building them afresh is cheaper than
    -- maintaining them row by row (the primary key too, whose rids arrive
    -- in no order: 5.0 s to insert 2.5M records with it, 2.0 s without,
    -- and 0.5 s to build it after; 'add_record_key' puts it back)
    FOR col IN SELECT c.conname FROM pg_catalog.pg_constraint c
                WHERE c.conrelid OPERATOR(pg_catalog.=) records AND c.contype OPERATOR(pg_catalog.=) 'p' LOOP
      EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', records, col);
    END LOOP;
    FOR col IN SELECT i.indexrelid::pg_catalog.regclass::text FROM pg_catalog.pg_index i
                WHERE i.indrelid OPERATOR(pg_catalog.=) records AND NOT i.indisprimary LOOP
      EXECUTE pg_catalog.format('DROP INDEX %s', col);
    END LOOP;
  ELSIF what OPERATOR(pg_catalog.=) 'add_record_key' THEN
    -- after link_record is rebuilt: a record id twice in a source fails here
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c
                    WHERE c.conrelid OPERATOR(pg_catalog.=) records AND c.contype OPERATOR(pg_catalog.=) 'p') THEN
      EXECUTE pg_catalog.format('ALTER TABLE %s ADD PRIMARY KEY (rid)', records);
    END IF;
  ELSIF what OPERATOR(pg_catalog.=) 'truncate_persons' THEN
    EXECUTE pg_catalog.format('TRUNCATE %s', persons);
  ELSIF what OPERATOR(pg_catalog.=) 'drop_person_indexes' THEN
    -- before the person index is rewritten (link_run holds the lock that
    -- lookups wait for, so nobody sees it without them)
    FOR col IN SELECT c.conname FROM pg_catalog.pg_constraint c
                WHERE c.conrelid OPERATOR(pg_catalog.=) persons AND c.contype OPERATOR(pg_catalog.=) ANY ('{p,u}'::"char"[]) LOOP
      EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', persons, col);
    END LOOP;
    FOR col IN SELECT i.indexrelid::pg_catalog.regclass::text FROM pg_catalog.pg_index i
                WHERE i.indrelid OPERATOR(pg_catalog.=) persons LOOP
      EXECUTE pg_catalog.format('DROP INDEX %s', col);
    END LOOP;
  ELSIF what OPERATOR(pg_catalog.=) 'build_person_indexes' THEN
    EXECUTE pg_catalog.format('ALTER TABLE %s ADD PRIMARY KEY (record_key, source), ADD UNIQUE (rid)', persons);
    EXECUTE pg_catalog.format('CREATE INDEX ON %s (person_id)', persons);
    EXECUTE pg_catalog.format('CREATE INDEX ON %s (record_id, source)', persons);
    EXECUTE pg_catalog.format('ANALYZE %s', persons);
  ELSE
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'unknown linkage maintenance step';
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._link_maintain(text, jsonb, text) IS
  'internal: as the extension owner, for one linkage project: create or drop its partitions of link_record and person_index, truncate them, ANALYZE the standardised records, create statistics on its fields, drop or create the blocking rules'' lookup indexes and the records'' primary key, and drop or build the person index''s indexes around its rewrite';


-- ---- issue 25, review: comparison expressions and deterministic steps read only their input ----
-- (nested calls, query-running and setting-reading built-ins, other schemas'
-- types and casts, subqueries in steps; checked again where runs, explanations
-- and lookups build SQL from a spec the linker may have written directly)
-- (caredata._link_check_plan: replaced again below)

-- (caredata._link_check_expression: replaced again below)

-- (caredata._link_check_step: replaced again below)

-- (caredata._link_check_spec: replaced again below)

-- (caredata._link_compare_sql: replaced again below)

-- (caredata.link_run: replaced again below)

-- (caredata.link_explain: replaced again below)


CREATE OR REPLACE FUNCTION caredata._link_check_plan(plan jsonb, what text, records boolean) RETURNS void
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  txt text := plan::text;
  bad text;
BEGIN
  IF txt ~ '"(Subplan Name|Parent Relationship)": "(InitPlan|SubPlan|Subquery)' OR txt LIKE '%"Subplan Name"%'
     OR EXISTS (SELECT 1 FROM jsonb_path_query(plan, 'strict $.**."Relation Name"') n
                 WHERE NOT records
                    OR n #>> '{}' <> 'link_record'
                   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
                                    WHERE i.inhparent = 'caredata.link_record'::regclass AND c.relname = n #>> '{}')) THEN
    PERFORM caredata._link_bad(format('%s reads something other than %s', what,
                                      CASE WHEN records THEN 'the two records it compares' ELSE 'the comparison levels' END),
                               CASE WHEN records THEN 'A comparison expression is a function of the columns of l and r only: no subquery and no other table.'
                                    ELSE 'A step is a boolean over the comparison levels by name: no subquery and no table.' END, '42501');
  END IF;
  -- schema.function(, OPERATOR(schema., ::schema.type (the lookbehind and
  -- lookahead consume nothing, so that a call nested in another is seen)
  SELECT m[1] INTO bad
    FROM jsonb_path_query(plan, 'strict $.**."Output"[*]') o,
         regexp_matches(o #>> '{}', '(?:(?<![a-z0-9_."$])("?[a-z_][a-z0-9_$]*"?)\.(?:"?[a-z_][a-z0-9_$]*"?)(?=\()|OPERATOR\(("?[a-z_][a-z0-9_$]*"?)\.|::("?[a-z_][a-z0-9_$]*"?)\.)', 'gi') x,
         LATERAL (SELECT ARRAY[coalesce(x[1], x[2], x[3])]) AS y(m)
   WHERE m[1] NOT IN ('caredata', 'pg_catalog')
   LIMIT 1;
  IF bad IS NOT NULL THEN
    PERFORM caredata._link_bad(format('%s calls a function outside caredata and pg_catalog', what),
                               'Use caredata''s comparators and built-in functions; a function, operator or type of another schema could read other tables.', '42501');
  END IF;
  -- every function called: one with an immutable form (an unqualified name
  -- that no function has is SQL syntax, such as COALESCE or TRIM)
  SELECT x[1] || '.' || x[2] INTO bad
    FROM jsonb_path_query(plan, 'strict $.**."Output"[*]') o,
         regexp_matches(o #>> '{}', '(?<![a-z0-9_."$])(?:("?[a-z_][a-z0-9_$]*"?)\.)?("?[a-z_][a-z0-9_$]*"?)(?=\()', 'gi') m,
         LATERAL (SELECT ARRAY[coalesce(btrim(m[1], '"'), 'pg_catalog'),
                               CASE WHEN m[2] LIKE '"%' THEN btrim(m[2], '"') ELSE lower(m[2]) END]) AS y(x)
   WHERE x[1] IN ('caredata', 'pg_catalog')
     AND (x[2] = 'ts_rewrite'
          OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.pronamespace = x[1]::regnamespace AND p.proname = x[2])
             AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.pronamespace = x[1]::regnamespace AND p.proname = x[2]
                                AND p.provolatile = 'i' AND p.prokind = 'f')
          OR x[1] = 'caredata' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.pronamespace = x[1]::regnamespace AND p.proname = x[2]))
   LIMIT 1;
  IF bad IS NOT NULL THEN
    PERFORM caredata._link_bad(format('%s calls a function that is not immutable', what),
                               'A comparison or step is a pure function of what it is given: functions that read settings, files, sequences or other tables are refused.', '42501');
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._link_check_plan(jsonb, text, boolean) IS
  'internal: refuse the verbose plan of a comparison expression or deterministic step that reads anything but its input (subqueries, other tables, functions, operators or types outside caredata and pg_catalog, functions with no immutable form, ts_rewrite)';

CREATE OR REPLACE FUNCTION caredata._link_check_expression(name text, expression text, rec text) RETURNS void
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  plan jsonb;
BEGIN
  EXECUTE format('EXPLAIN (VERBOSE, FORMAT JSON) SELECT (%s)::integer FROM %s l, %2$s r', expression, rec) INTO plan;
  PERFORM caredata._link_check_plan(plan, format('comparison "%s"', name), true);
END
$$;
COMMENT ON FUNCTION caredata._link_check_expression(text, text, text) IS
  'internal: refuse a comparison expression that reads anything but the two standardised records (subqueries, other tables, functions, operators or types outside caredata and pg_catalog, functions that are not immutable)';

CREATE OR REPLACE FUNCTION caredata._link_check_step(step text, names text[]) RETURNS void
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  plan jsonb;
BEGIN
  -- over two rows of values, which the planner cannot fold away
  EXECUTE format('EXPLAIN (VERBOSE, FORMAT JSON) SELECT CASE WHEN (%s) THEN 1 END FROM (VALUES (%s), (%2$s)) p(%s)', step,
                 (SELECT string_agg('0::smallint', ', ') FROM unnest(names) n),
                 (SELECT string_agg(quote_ident(n), ', ') FROM unnest(names) n)) INTO plan;
  PERFORM caredata._link_check_plan(plan, 'a deterministic step', false);
END
$$;
COMMENT ON FUNCTION caredata._link_check_step(text, text[]) IS
  'internal: refuse a deterministic step that reads anything but the comparison levels (subqueries, tables, functions that are not immutable or outside caredata and pg_catalog)';

CREATE OR REPLACE FUNCTION caredata._link_check_spec(spec jsonb, project text DEFAULT 'default') RETURNS void
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c jsonb;
  names text[] := '{}';
  rule jsonb;
  col text;
  step text;
  probe text;
  nl integer;
  rec text := caredata._link_record_sql(project);
BEGIN
  IF jsonb_typeof(spec) IS DISTINCT FROM 'object' THEN
    PERFORM caredata._link_bad('a linkage model spec must be a JSON object', 'Start from caredata.link_default_spec().');
  END IF;
  IF spec->>'link_type' IS NULL OR spec->>'link_type' NOT IN ('link_and_dedupe', 'link_only', 'dedupe_only') THEN
    PERFORM caredata._link_bad('link_type must be link_and_dedupe, link_only or dedupe_only', 'Set "link_type" in the spec.');
  END IF;
  IF jsonb_typeof(spec->'comparisons') IS DISTINCT FROM 'array' OR jsonb_array_length(spec->'comparisons') = 0 THEN
    PERFORM caredata._link_bad('a linkage model needs at least one comparison', 'Set "comparisons" to an array of {name, expression, levels}.');
  END IF;
  FOR c IN SELECT * FROM jsonb_array_elements(spec->'comparisons') LOOP
    IF coalesce(c->>'name', '') !~ '^[a-z][a-z0-9_]{0,30}$' OR c->>'name' IN ('rid_l', 'rid_r', 'pattern', 'tf_adj', 'weight', 'l', 'r') THEN
      PERFORM caredata._link_bad('a comparison needs a name: lower-case letters, digits and _, not rid_l, rid_r, pattern, tf_adj, weight, l or r',
                                 'Name comparisons like "nhs" or "dob".');
    END IF;
    IF c->>'name' = ANY (names) THEN
      PERFORM caredata._link_bad(format('comparison "%s" is named twice', c->>'name'), 'Give each comparison its own name.');
    END IF;
    names := names || (c->>'name');
    IF jsonb_typeof(c->'levels') IS DISTINCT FROM 'array' THEN
      PERFORM caredata._link_bad(format('comparison "%s" has no levels', c->>'name'), 'Set "levels" to the labels of levels 0 (missing), 1 (different), ... up to exact.');
    END IF;
    nl := jsonb_array_length(c->'levels');
    IF nl < 2 OR nl > 16 THEN
      PERFORM caredata._link_bad(format('comparison "%s" must have between 2 and 16 levels', c->>'name'), 'Level 0 is missing, 1 different, the last exact.');
    END IF;
    IF c ? 'tf' AND c->>'tf' NOT IN ('nhs_digits', 'dob', 'postcode') AND NOT c->>'tf' IN (SELECT f.field FROM caredata._link_fields(project) f) THEN
      PERFORM caredata._link_bad(format('comparison "%s": term-frequency adjustment is available for nhs_digits, dob, postcode and the declared fields only', c->>'name'),
                                 'Remove "tf" or set it to one of those columns (fields are declared by caredata.link_add_source(fields => ...)).');
    END IF;
    IF c ? 'm' AND (jsonb_typeof(c->'m') IS DISTINCT FROM 'array' OR jsonb_array_length(c->'m') <> nl) THEN
      PERFORM caredata._link_bad(format('comparison "%s": starting m must have one probability per level', c->>'name'), 'Remove "m" to use the default start.');
    END IF;
    IF c->>'expression' IS NULL THEN
      PERFORM caredata._link_bad(format('comparison "%s" has no expression', c->>'name'),
                                 'Set "expression" to SQL over the record aliases l and r, e.g. caredata.compare_sex(l.sex, r.sex).');
    END IF;
    BEGIN
      EXECUTE format('SELECT (%s)::integer FROM %s l, %2$s r WHERE false', c->>'expression', rec);
    EXCEPTION WHEN OTHERS THEN
      PERFORM caredata._link_bad(format('comparison "%s": its expression is not valid over the standardised records: %s', c->>'name', SQLERRM),
                                 'Use the columns of caredata.link_record and the declared fields through the aliases l and r, and a comparator returning an integer level.', '42804');
    END;
    PERFORM caredata._link_check_expression(c->>'name', c->>'expression', rec);
  END LOOP;

  -- a pattern packs one level per comparison; runs keep one weight per
  -- possible pattern in memory
  IF (SELECT sum(ln(jsonb_array_length(x->'levels'))) FROM jsonb_array_elements(spec->'comparisons') x) > ln(1048576) + 1e-9 THEN
    PERFORM caredata._link_bad('the comparisons have more than 1048576 combinations of levels',
                               'Use fewer comparisons or fewer levels per comparison.', '54000');
  END IF;

  IF jsonb_typeof(spec->'keep_nhs_apart') IS DISTINCT FROM 'boolean' THEN
    PERFORM caredata._link_bad('keep_nhs_apart must be true or false', 'Leave it out for the default (true).');
  END IF;
  IF spec->>'nhs_confirm' IS NULL OR jsonb_typeof(spec->'nhs_confirm') <> 'string' OR spec->>'nhs_confirm' NOT IN ('link', 'details') THEN
    PERFORM caredata._link_bad('nhs_confirm must be "link" or "details"', 'Leave it out for the default ("details").');
  END IF;
  PERFORM caredata._link_check_merge_spec(spec);
  IF jsonb_typeof(spec->'blocking') IS DISTINCT FROM 'array' OR jsonb_array_length(spec->'blocking') = 0 THEN
    PERFORM caredata._link_bad('a linkage model needs at least one blocking rule', 'Set "blocking" to an array of column lists, e.g. [["nhs_digits"], ["dob", "area"]].');
  END IF;
  FOR rule IN SELECT * FROM jsonb_array_elements(spec->'blocking') LOOP
    IF jsonb_typeof(rule) IS DISTINCT FROM 'array' OR jsonb_array_length(rule) = 0 THEN
      PERFORM caredata._link_bad('a blocking rule is a non-empty list of columns', 'For example ["dob", "area"].');
    END IF;
    FOR col IN SELECT * FROM jsonb_array_elements_text(rule) LOOP
      IF NOT (col = ANY (caredata._link_key_columns()) OR col = ANY (caredata._link_field_columns(project))) OR col = 'source' AND jsonb_array_length(rule) = 1 THEN
        PERFORM caredata._link_bad(format('blocking rules cannot use column "%s"', col),
                                   'Blocking columns: ' || array_to_string(caredata._link_key_columns() || caredata._link_field_columns(project), ', ') || ' (source only with another column).', '42703');
      END IF;
    END LOOP;
  END LOOP;

  probe := (SELECT string_agg(format('0 AS %I', n), ', ') FROM unnest(names) n);
  IF spec ? 'steps' THEN
    FOR step IN SELECT * FROM jsonb_array_elements_text(spec->'steps') LOOP
      BEGIN
        EXECUTE format('SELECT (%s)::boolean FROM (SELECT %s) p WHERE false', step, probe);
      EXCEPTION WHEN OTHERS THEN
        PERFORM caredata._link_bad(format('deterministic step is not valid: %s', SQLERRM),
                                   'A step is a boolean over the comparison levels by name, e.g. nhs = 3 AND dob = 5.', '42804');
      END;
      PERFORM caredata._link_check_step(step, names);
    END LOOP;
  END IF;
  IF coalesce((spec->>'u_sample_pairs')::bigint, 0) < 100 OR coalesce((spec->>'max_pairs')::bigint, 0) < 1 THEN
    PERFORM caredata._link_bad('u_sample_pairs must be at least 100 and max_pairs at least 1', 'See caredata.link_default_spec() for the defaults.');
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._link_check_spec(jsonb, text) IS
  'internal: refuse a linkage model spec with a clear error and hint (its expressions and blocking rules checked against the project''s records and fields)';

CREATE OR REPLACE FUNCTION caredata._link_compare_sql(model text, version integer, u_top double precision[], project text)
  RETURNS TABLE (levels text, cols text, pattern text, tf text)
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c record;
  stride bigint := 1;
  rec text := caredata._link_record_sql(project);
  checks text[] := '{}';
  digest text;
BEGIN
  levels := ''; cols := ''; pattern := ''; tf := '0::double precision';
  FOR c IN SELECT * FROM caredata._link_comparisons(model, version, project) ORDER BY pos LOOP
    levels := levels || format(', (%s)::smallint AS %I', c.expression, c.name);
    checks := checks || ARRAY[c.name, c.expression];
    cols := cols || format(', %I', c.name);
    pattern := pattern || CASE WHEN stride = 1 THEN '' ELSE ' + ' END || format('%I * %s', c.name, stride);
    stride := stride * c.nlevels;
    IF c.tf IS NOT NULL AND u_top[c.pos + 1] IS NOT NULL THEN
      levels := levels || format(', r.%I AS %I', 'tf_' || c.tf, 'tf_' || c.name);
      tf := tf || format(' + CASE WHEN %I = %s AND %I > 0 THEN ln(%s / %I) * 1.4426950408889634 ELSE 0 END',
                         c.name, c.nlevels - 1, 'tf_' || c.name, u_top[c.pos + 1], 'tf_' || c.name);
    END IF;
  END LOOP;
  pattern := '(' || pattern || ')::integer';
  -- the expressions are checked again as built (the spec is a row the
  -- linker may have written directly), once a session for the same SQL:
  -- a lookup pays the check (about 1 ms a comparison) only when its model
  -- or the records' columns change
  digest := md5(concat_ws(chr(1), current_user, rec, levels));
  IF current_setting('caredata_link.checked_sql', true) IS DISTINCT FROM digest THEN
    FOR i IN 1 .. cardinality(checks) / 2 LOOP
      PERFORM caredata._link_check_expression(checks[2 * i - 1], checks[2 * i], rec);
    END LOOP;
    PERFORM set_config('caredata_link.checked_sql', digest, false);
  END IF;
  RETURN NEXT;
END
$$;
COMMENT ON FUNCTION caredata._link_compare_sql(text, integer, double precision[], text) IS
  'internal: the comparison-level columns, pattern and term-frequency adjustment SQL of a model version, shared by runs and lookups';

-- (caredata.link_run: replaced again below)

CREATE OR REPLACE FUNCTION caredata.link_explain(source_a text, record_a text, source_b text, record_b text,
    model text DEFAULT 'default', version integer DEFAULT NULL, project text DEFAULT 'default')
  RETURNS TABLE (term text, level integer, label text, m double precision, u double precision, weight double precision)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  v integer := caredata._link_trained_version(model, version, project);
  p_project text := project;
  p_model text := model;
  lam double precision;
  c record;
  lv integer;
  tf double precision;
  rid_a bigint;
  rid_b bigint;
  swap bigint;
  rec text := caredata._link_record_sql(project);
BEGIN
  SELECT x.rid INTO rid_a FROM caredata.link_record x WHERE x.project = p_project AND x.source = source_a AND x.record_key = record_a;
  SELECT x.rid INTO rid_b FROM caredata.link_record x WHERE x.project = p_project AND x.source = source_b AND x.record_key = record_b;
  IF rid_a IS NULL OR rid_b IS NULL THEN
    PERFORM caredata._link_bad('a record to explain is not among the standardised records', 'Name records by source and record id as in caredata.person_index.', '42704');
  END IF;
  -- the pair in the order runs compare it
  IF rid_a > rid_b THEN
    swap := rid_a; rid_a := rid_b; rid_b := swap;
  END IF;
  SELECT x.lambda INTO lam FROM caredata.link_model x WHERE x.project = p_project AND x.model = p_model AND x.version = v;
  term := 'prior'; level := NULL; label := 'lambda = ' || lam; m := NULL; u := NULL;
  weight := ln(lam / (1 - lam)) / ln(2);
  RETURN NEXT;
  FOR c IN SELECT * FROM caredata._link_comparisons(p_model, v, p_project) ORDER BY pos LOOP
    -- checked again as built: the spec is a row the linker may have written directly
    PERFORM caredata._link_check_expression(c.name, c.expression, rec);
    EXECUTE format('SELECT (%s)::integer FROM (SELECT * FROM %s x WHERE x.rid = $1) l, (SELECT * FROM %2$s x WHERE x.rid = $2) r',
                   c.expression, rec) INTO lv USING rid_a, rid_b;
    term := c.name; level := lv; label := c.labels[lv + 1]; m := c.m[lv + 1]; u := c.u[lv + 1];
    weight := CASE WHEN lv = 0 THEN 0 ELSE ln(m / u) / ln(2) END;
    RETURN NEXT;
    IF c.tf IS NOT NULL AND lv = c.nlevels - 1 THEN
      EXECUTE format('SELECT x.%I FROM %s x WHERE x.rid = $1', 'tf_' || c.tf, rec) INTO tf USING rid_b;
      IF tf > 0 THEN
        term := 'tf ' || c.name; label := 'value frequency ' || round(tf::numeric, 8); m := NULL; u := tf;
        weight := ln(c.u[lv + 1] / tf) * 1.4426950408889634;
        RETURN NEXT;
      END IF;
    END IF;
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata.link_explain(text, text, text, text, text, integer, text) IS
  'the match weight of one pair of a project''s records (records named by source and record id, as text), term by term: the prior, each comparison''s level with m, u and log2(m/u), and term-frequency adjustments; the weights sum to the pair''s match weight';

CREATE OR REPLACE FUNCTION caredata.link_explain(source_a text, record_a bigint, source_b text, record_b bigint,
    model text DEFAULT 'default', version integer DEFAULT NULL, project text DEFAULT 'default')
  RETURNS TABLE (term text, level integer, label text, m double precision, u double precision, weight double precision)
  LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  SELECT * FROM caredata.link_explain(source_a, record_a::text, source_b, record_b::text, model, version, project)
$$;
COMMENT ON FUNCTION caredata.link_explain(text, bigint, text, bigint, text, integer, text) IS
  'the match weight of one pair of a project''s records (records named by source and integer record id), term by term: the prior, each comparison''s level with m, u and log2(m/u), and term-frequency adjustments; the weights sum to the pair''s match weight';


-- (caredata.link_run: replaced again below)


-- ---- issue 28: blocking and comparing in memory (src/linkage/block.c) ----
-- the same candidate pairs from the C engine (block.c): NULL when
-- caredata.link_compare_engine is off.  The comparisons are checked as
-- _link_compare_sql() checks them, before the engine runs them.
CREATE FUNCTION caredata._link_engine_sql(model text, version integer, u_top double precision[], only_new boolean, project text,
    into_table text DEFAULT NULL)
  RETURNS text LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  spec jsonb;
  cmp record;
  rules record;
  comps record;
BEGIN
  IF NOT current_setting('caredata.link_compare_engine')::boolean THEN
    RETURN NULL;
  END IF;
  SELECT lm.spec INTO spec FROM caredata.link_model lm
   WHERE lm.project = _link_engine_sql.project AND lm.model = _link_engine_sql.model AND lm.version = _link_engine_sql.version;
  SELECT * INTO cmp FROM caredata._link_compare_sql(model, version, u_top, project);
  -- the rules' columns in order, each with its rule's number
  SELECT array_agg(x.c ORDER BY b.ordinality, x.ordinality) AS cols, array_agg(b.ordinality ORDER BY b.ordinality, x.ordinality) AS rule_of
    INTO rules
    FROM jsonb_array_elements(spec->'blocking') WITH ORDINALITY b, jsonb_array_elements_text(b.value) WITH ORDINALITY x(c, ordinality);
  SELECT array_agg(c.expression ORDER BY c.pos) AS expressions,
         array_agg(CASE WHEN c.tf IS NOT NULL THEN 'tf_' || c.tf END ORDER BY c.pos) AS tf_cols,
         array_agg(c.nlevels ORDER BY c.pos) AS nlevels,
         string_agg(format(', %I smallint', c.name), '' ORDER BY c.pos) AS coldefs
    INTO comps
    FROM caredata._link_comparisons(model, version, project) c;
  IF into_table IS NOT NULL THEN
    -- written straight into the table (with the columns of the result below)
    RETURN format('SELECT * FROM caredata._link_block_compare_into(%L::regclass, %L, %L::text[], %L::integer[], %L::text[], %L::text[], %L::integer[], %L::double precision[], %L, %L)',
      into_table, caredata._link_record_sql(project), rules.cols, rules.rule_of,
      comps.expressions, comps.tf_cols, comps.nlevels, u_top, spec->>'link_type', only_new);
  END IF;
  RETURN format('SELECT rid_l, rid_r%s, pattern, tf_adj FROM caredata._link_block_compare(%L, %L::text[], %L::integer[], %L::text[], %L::text[], %L::integer[], %L::double precision[], %L, %L) AS p(rid_l bigint, rid_r bigint%s, pattern integer, tf_adj double precision)',
    cmp.cols, caredata._link_record_sql(project), rules.cols, rules.rule_of,
    comps.expressions, comps.tf_cols, comps.nlevels, u_top, spec->>'link_type', only_new, comps.coldefs);
END
$$;
COMMENT ON FUNCTION caredata._link_engine_sql(text, integer, double precision[], boolean, text, text) IS
  'internal: the candidate-pair query of a model version through the C engine (_link_block_compare), the same rows as _link_pairs_sql(), or with into_table the statement writing them straight into that temporary table (_link_block_compare_into, returning how many and the pattern histogram); NULL when caredata.link_compare_engine is off';

-- blocking and comparing in memory (src/linkage/block.c)
CREATE FUNCTION caredata._link_block_compare(rec text, rule_cols text[], rule_of integer[], levels text[], tf_cols text[],
    nlevels integer[], u_top double precision[], link_type text, only_new boolean)
  RETURNS SETOF record AS 'MODULE_PATHNAME', 'link_block_compare' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION caredata._link_block_compare(text, text[], integer[], text[], text[], integer[], double precision[], text, boolean) IS
  'internal: the candidate pairs of blocking rules over a record relation, each once under its first rule, with comparison levels, pattern and term-frequency adjustment, computed in memory (at most maintenance_work_mem)';
CREATE FUNCTION caredata._link_block_compare_into(into_table regclass, rec text, rule_cols text[], rule_of integer[], levels text[], tf_cols text[],
    nlevels integer[], u_top double precision[], link_type text, only_new boolean,
    OUT pairs bigint, OUT patterns integer[], OUT counts double precision[])
  AS 'MODULE_PATHNAME', 'link_block_compare_into' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._link_block_compare_into(regclass, text, text[], integer[], text[], text[], integer[], double precision[], text, boolean) IS
  'internal: the rows of _link_block_compare() written straight into a temporary table of this session (its columns: rid_l, rid_r, a smallint a comparison, pattern, tf_adj; no trigger, index, rule, constraint or default); returns how many, and how many had each pattern (NULL arrays past 2^22 possible patterns or when a level lies beyond its labels)';

-- each cluster's person id, with the merges and splits, in SQL: the rules
-- persons.c (caredata._link_person_plan) follows in memory, and what
-- link_run() uses when that is switched off or does not fit.  An old person
-- goes to the cluster with most of its records (ties: the smallest
-- cluster); a cluster keeps the smallest old id it won, the other ids it
-- won merge into it; clusters with no id get new ones in cluster order.
-- Reads pg_temp.link_cluster (cluster, old_person, rid).
CREATE FUNCTION caredata._link_person_plan_sql(max_person bigint, incremental boolean)
  RETURNS TABLE (kind "char", cluster bigint, person_id bigint, other_person_id bigint, records bigint)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  CREATE TEMP TABLE link_overlap ON COMMIT DROP AS
  SELECT c.cluster, c.old_person AS person_id, count(*) AS n
    FROM pg_temp.link_cluster c WHERE c.old_person IS NOT NULL GROUP BY 1, 2;
  ANALYZE pg_temp.link_overlap;
  CREATE TEMP TABLE link_winner ON COMMIT DROP AS
  SELECT DISTINCT ON (w.person_id) w.person_id, w.cluster, w.n FROM pg_temp.link_overlap w ORDER BY w.person_id, w.n DESC, w.cluster;
  ANALYZE pg_temp.link_winner;
  CREATE TEMP TABLE link_assign ON COMMIT DROP AS
  SELECT DISTINCT ON (w.cluster) w.cluster, w.person_id FROM pg_temp.link_winner w ORDER BY w.cluster, w.person_id;
  ANALYZE pg_temp.link_assign;
  IF incremental THEN
    INSERT INTO pg_temp.link_assign
    SELECT c.cluster, max_person + row_number() OVER (ORDER BY c.cluster)
      FROM (SELECT DISTINCT x.cluster FROM pg_temp.link_cluster x) c
     WHERE NOT EXISTS (SELECT 1 FROM pg_temp.link_assign a WHERE a.cluster = c.cluster);
  ELSE
    -- each cluster once without grouping: by the record naming it
    INSERT INTO pg_temp.link_assign
    SELECT c.cluster, max_person + row_number() OVER (ORDER BY c.cluster)
      FROM pg_temp.link_cluster c
     WHERE c.cluster = c.rid AND NOT EXISTS (SELECT 1 FROM pg_temp.link_assign a WHERE a.cluster = c.cluster);
  END IF;
  ANALYZE pg_temp.link_assign;
  RETURN QUERY
  SELECT 'a'::"char", a.cluster, a.person_id, NULL::bigint, NULL::bigint FROM pg_temp.link_assign a
  UNION ALL
  SELECT 'm'::"char", w.cluster, a.person_id, w.person_id, w.n
    FROM pg_temp.link_winner w JOIN pg_temp.link_assign a USING (cluster)
   WHERE w.person_id <> a.person_id
  UNION ALL
  SELECT 's'::"char", o.cluster, o.person_id, a.person_id, o.n
    FROM pg_temp.link_overlap o
    JOIN pg_temp.link_winner w ON w.person_id = o.person_id AND w.cluster <> o.cluster
    JOIN pg_temp.link_assign a ON a.cluster = o.cluster
   WHERE a.person_id > max_person;
  DROP TABLE pg_temp.link_overlap;
  DROP TABLE pg_temp.link_winner;
  DROP TABLE pg_temp.link_assign;
END
$$;
COMMENT ON FUNCTION caredata._link_person_plan_sql(bigint, boolean) IS
  'internal: each cluster''s stable person id (a), with the merges (m) and splits (s) of person ids, from pg_temp.link_cluster, in SQL; the rules caredata._link_person_plan() follows in memory';

-- a run's rows of the person index written in C (src/linkage/person_index.c):
-- each record of the run's cluster table with its cluster's person id in
-- the plan, straight into the project's partition (its indexes dropped)
CREATE FUNCTION caredata._link_person_index_into(persons regclass, project text, clusters regclass, plan regclass, run_id bigint)
  RETURNS bigint
  AS 'MODULE_PATHNAME', 'link_person_index_into' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._link_person_index_into(regclass, text, regclass, regclass, bigint) IS
  'internal: writes into a partition of caredata.person_index (with the caller''s INSERT right, no row security, trigger or rule on it or on caredata.person_index, no index or CHECK constraint, never in a read-only transaction; its bound and NOT NULL columns checked) a row (project, source, record_id, rid, person_id, run_id, record_key) for each record of a temporary cluster table whose cluster the temporary plan (kind ''a'') gives a person id; returns how many rows; at most maintenance_work_mem';

-- a probabilistic run's links written in C (src/linkage/pair_rows.c): the
-- candidate pairs at or above the threshold, with their weight and match
-- probability, straight into caredata.link_pair
CREATE FUNCTION caredata._link_pairs_into(cand regclass, run_id bigint, weights double precision[], threshold double precision)
  RETURNS bigint
  AS 'MODULE_PATHNAME', 'link_pairs_into' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._link_pairs_into(regclass, bigint, double precision[], double precision) IS
  'internal: writes into caredata.link_pair (with the caller''s INSERT right, no row security, trigger, rule or CHECK constraint, never in a read-only transaction; its indexes kept, NOT NULL checked) a row (run_id, rid_l, rid_r, pattern, weight, probability) for each candidate pair of a temporary table (rid_l, rid_r, pattern, tf_adj) whose weight link_weight(pattern, tf_adj, weights) is at least the threshold, in the table''s order; returns how many';

-- a run's cluster table in memory (src/linkage/cluster_table.c): each
-- record of a project's partition of link_record with its cluster and
-- refusal (link_components) and its person id in the partition of
-- person_index, written straight into a temporary table of the session
CREATE FUNCTION caredata._link_cluster_into(into_table regclass, records regclass, persons regclass,
    links_query text, one_to_one boolean, nhs_query text, OUT records bigint, OUT clusters bigint, OUT refused bigint)
  AS 'MODULE_PATHNAME', 'link_cluster_into' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._link_cluster_into(regclass, regclass, regclass, text, boolean, text) IS
  'internal: writes into a temporary table of this session (rid, source, record_id, record_key, cluster, refused, old_person) for every record of records: its cluster and refusal as link_components(links_query, one_to_one, nhs_query) gives them (its own rid and false outside any link) and its person id in persons; returns how many rows, in how many clusters (rows whose cluster is their own rid) and how many refused; at most maintenance_work_mem';

-- the same rows in memory (src/linkage/persons.c)
CREATE FUNCTION caredata._link_person_plan(clusters regclass, max_person bigint)
  RETURNS TABLE (kind "char", cluster bigint, person_id bigint, other_person_id bigint, records bigint)
  AS 'MODULE_PATHNAME', 'link_person_plan' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._link_person_plan(regclass, bigint) IS
  'internal: each cluster''s stable person id (a), with the merges (m) and splits (s) of person ids, from a run''s temporary cluster table (cluster, old_person), computed in memory (at most maintenance_work_mem); the same rows as caredata._link_person_plan_sql()';

CREATE OR REPLACE FUNCTION caredata.link_run(model text DEFAULT 'default', version integer DEFAULT NULL,
    method text DEFAULT 'probabilistic', threshold double precision DEFAULT NULL,
    train boolean DEFAULT NULL, incremental boolean DEFAULT false, one_to_one boolean DEFAULT false,
    sources text[] DEFAULT NULL, project text DEFAULT 'default')
  RETURNS TABLE (run_id bigint, model_version integer, records bigint, candidate_pairs bigint,
                 links bigint, persons bigint, match_threshold double precision, seconds numeric)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  p_model text := model;
  p_version integer := version;
  p_method text := method;
  p_threshold double precision := threshold;
  p_train boolean := train;
  p_incremental boolean := incremental;
  p_one_to_one boolean := one_to_one;
  p_sources text[] := sources;
  p_project text := caredata._link_check_project(project);
  t0 timestamptz := clock_timestamp();
  t timestamptz;
  lm record;
  spec jsonb;
  v_run bigint;
  v_prev_run bigint;
  v_records bigint;
  v_pairs bigint;
  v_links bigint;
  v_persons bigint;
  v_trained boolean;
  v_do_train boolean;
  nlevels integer[];
  v_u double precision[] := '{}';
  v_u_top double precision[] := '{}';
  v_m double precision[] := '{}';
  comps record;
  k integer;
  sample_n bigint;
  counts bigint[];
  all_counts bigint[];
  total_pairs double precision;
  hist_p integer[];
  hist_n double precision[];
  em record;
  v_lambda double precision;
  w_threshold double precision;
  steps text := '';
  step text;
  work_table text;
  i integer;
  v_stats jsonb := '{}';
  max_person bigint;
  v_plan_in_memory boolean := current_setting('caredata.link_compare_engine')::boolean;
  v_cluster_in_memory boolean := current_setting('caredata.link_compare_engine')::boolean;
  v_rows_in_memory boolean := current_setting('caredata.link_compare_engine')::boolean;
  v_links_query text;
  v_sample_from text;
  v_clusters bigint;
  v_refused bigint;
  v_cluster_analyzed boolean := false;
  v_error text;
  v_cut bigint;
  v_pool_ok boolean;
  v_nhs_query text;
  rule_pairs record;
  blocked numeric := 0;
  saved_mergejoin text;
  saved_hashjoin text;
  v_w double precision[];
  v_keep_apart boolean;
  v_nhs_confirm text;
  engine_sql text;
BEGIN
  IF p_method IS NULL OR p_method NOT IN ('probabilistic', 'deterministic') THEN
    PERFORM caredata._link_bad('method must be probabilistic or deterministic', 'Leave it out for probabilistic linkage.');
  END IF;
  IF p_threshold IS NOT NULL AND NOT (p_threshold > 0 AND p_threshold < 1) THEN
    PERFORM caredata._link_bad('threshold is a match probability strictly between 0 and 1', 'Leave it NULL to choose it from the model (label-free).');
  END IF;
  -- one run at a time; lookups wait for the run to finish
  LOCK TABLE caredata.link_record_key IN EXCLUSIVE MODE;

  SELECT * INTO lm FROM caredata.link_model x
   WHERE x.project = p_project AND x.model = p_model AND (p_version IS NULL OR x.version = p_version)
   ORDER BY x.version DESC LIMIT 1;
  IF NOT FOUND THEN
    PERFORM caredata._link_bad(CASE WHEN p_version IS NULL THEN format('linkage model "%s" does not exist', p_model)
                                    ELSE format('linkage model "%s" version %s does not exist', p_model, p_version) END,
                               'See caredata.link_model, or create one with caredata.link_create_model().', '42704');
  END IF;
  spec := lm.spec;
  -- models made before the key existed keep NHS numbers apart too
  v_keep_apart := coalesce((spec->>'keep_nhs_apart')::boolean, true);
  -- and confirm a number only through a link (the rule before "nhs_confirm")
  v_nhs_confirm := coalesce(spec->>'nhs_confirm', 'link');
  v_trained := lm.lambda IS NOT NULL;
  v_do_train := p_method = 'probabilistic' AND coalesce(p_train, NOT v_trained);
  IF p_method = 'probabilistic' AND NOT v_do_train AND NOT v_trained THEN
    PERFORM caredata._link_bad(format('linkage model "%s" version %s is not trained', p_model, lm.version),
                               'Run with train => true, or name a trained version.', '55000');
  END IF;
  IF p_method = 'probabilistic' AND NOT v_do_train AND
     EXISTS (SELECT 1 FROM caredata.link_model_level x WHERE x.project = p_project AND x.model = lm.model AND x.version = lm.version AND (x.m IS NULL OR x.u IS NULL)) THEN
    PERFORM caredata._link_bad(format('linkage model "%s" version %s has levels without m or u', p_model, lm.version),
                               'Set every level''s m and u in caredata.link_model_level, or train the model.', '55000');
  END IF;
  IF p_one_to_one AND spec->>'link_type' <> 'link_only' THEN
    PERFORM caredata._link_bad('one_to_one needs a model whose link_type is link_only', 'Create a model with {"link_type": "link_only"} to link two sources one to one.');
  END IF;

  SELECT coalesce(max(x.run_id), 0) + 1 INTO v_run FROM caredata.link_run x;
  -- the run that wrote the person index, which an incremental run keeps
  -- the links of (a scan of the index: only for such a run)
  IF p_incremental THEN
    SELECT max(x.run_id) INTO v_prev_run FROM caredata.person_index x WHERE x.project = p_project;
  END IF;
  IF p_incremental AND v_prev_run IS NULL THEN
    RAISE NOTICE 'link: no person index yet, so this incremental run links everything';
    p_incremental := false;
  END IF;
  INSERT INTO caredata.link_run (run_id, model, version, method, incremental, one_to_one, started_at, project)
  VALUES (v_run, lm.model, lm.version, p_method, p_incremental, p_one_to_one, t0, p_project);

  -- 1. standardise
  t := clock_timestamp();
  v_records := caredata.link_standardise(p_sources, v_run, p_project);
  v_stats := v_stats || jsonb_build_object('records', v_records, 'standardise_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3))
                     || (SELECT jsonb_build_object('source_records', x.stats->'source_records') FROM caredata.link_run x WHERE x.run_id = v_run);
  PERFORM caredata._link_progress('standardised', v_records, 'records', t,
    format(' from %s source%s', (SELECT count(*) FROM caredata.link_source ls WHERE ls.project = p_project AND (p_sources IS NULL OR ls.source = ANY (p_sources))),
           CASE WHEN (SELECT count(*) FROM caredata.link_source ls WHERE ls.project = p_project AND (p_sources IS NULL OR ls.source = ANY (p_sources))) = 1 THEN '' ELSE 's' END));
  IF p_incremental THEN
    CREATE TEMP TABLE link_new ON COMMIT DROP AS
    SELECT r.rid FROM caredata.link_record r
     WHERE r.project = p_project AND NOT EXISTS (SELECT 1 FROM caredata.person_index p WHERE p.project = p_project AND p.rid = r.rid);
    ALTER TABLE pg_temp.link_new ADD PRIMARY KEY (rid);
    ANALYZE pg_temp.link_new;
    v_stats := v_stats || jsonb_build_object('new_records', (SELECT count(*) FROM pg_temp.link_new));
    PERFORM caredata._link_progress(NULL, (v_stats->>'new_records')::bigint, 'records new since the last run', NULL);
  END IF;

  -- refuse a blocking rule (or all together) past max_pairs before
  -- comparing anything, by the planner's estimate (statistics are fresh)
  FOR rule_pairs IN SELECT b.ordinality AS rule, b.value AS columns,
                           caredata._link_estimate_pairs(b.value, spec->>'link_type', p_project) AS pairs
                      FROM jsonb_array_elements(spec->'blocking') WITH ORDINALITY b LOOP
    blocked := blocked + rule_pairs.pairs;
    IF rule_pairs.pairs > (spec->>'max_pairs')::numeric THEN
      PERFORM caredata._link_bad(format('blocking rule %s (%s) would generate about %s pairs, more than max_pairs (%s)',
                                        rule_pairs.rule, (SELECT string_agg(c, ', ') FROM jsonb_array_elements_text(rule_pairs.columns) c),
                                        round(rule_pairs.pairs), spec->>'max_pairs'),
                                 'Make the rule stricter (add a column), or raise "max_pairs" in a new model version; caredata.link_blocking_counts() gives exact counts.', '54000');
    END IF;
  END LOOP;
  IF blocked > (spec->>'max_pairs')::numeric * 2 THEN
    PERFORM caredata._link_bad(format('the blocking rules together would generate about %s pairs, more than twice max_pairs (%s)', round(blocked), spec->>'max_pairs'),
                               'Make the rules stricter, or raise "max_pairs" in a new model version.', '54000');
  END IF;

  SELECT array_agg(c.nlevels ORDER BY c.pos) INTO nlevels FROM caredata._link_comparisons(lm.model, lm.version, p_project) c;
  -- the longest phase is announced before it starts
  PERFORM caredata._link_progress('blocking rules give about', round(blocked)::bigint, 'candidate pairs', NULL,
    format(' (the planner''s estimate over %s rule%s)', jsonb_array_length(spec->'blocking'),
           CASE WHEN jsonb_array_length(spec->'blocking') = 1 THEN '' ELSE 's' END));

  -- 2. u: level frequencies over a seeded random sample of pairs
  IF v_do_train THEN
    t := clock_timestamp();
    k := ceil(sqrt((spec->>'u_sample_pairs')::double precision))::integer;
    -- each side of the sample is the k records with the lowest seeded hash
    -- of their rid.  Both sides' candidates come from one pass: the records
    -- whose hash falls in the lowest 3k/records of its range for either
    -- seed (about 3k a side); each side's k lowest among them are the k
    -- lowest of all whenever at least k of them fall there for its seed,
    -- and otherwise (never in practice) the records are read whole.  Two
    -- sorted passes over 2.5M records took 0.56 s, this one 0.1 s
    v_sample_from := caredata._link_record_sql(p_project);
    IF 3.0 * k < v_records THEN
      v_cut := (-9223372036854775808::numeric + floor(3.0 * k / v_records * 18446744073709551616::numeric))::bigint;
      EXECUTE format($q$
        CREATE TEMP TABLE link_upool ON COMMIT DROP AS
        SELECT * FROM %1$s x WHERE hashint8extended(x.rid, %2$s) < %3$s OR hashint8extended(x.rid, %2$s + 1) < %3$s$q$,
        v_sample_from, (spec->>'seed')::bigint, v_cut);
      EXECUTE format('SELECT count(*) FILTER (WHERE hashint8extended(x.rid, %1$s) < %2$s) >= %3$s
                         AND count(*) FILTER (WHERE hashint8extended(x.rid, %1$s + 1) < %2$s) >= %3$s FROM pg_temp.link_upool x',
                     (spec->>'seed')::bigint, v_cut, k) INTO v_pool_ok;
      IF v_pool_ok THEN
        v_sample_from := 'pg_temp.link_upool';
      END IF;
    END IF;
    EXECUTE format($q$
      CREATE TEMP TABLE link_usample ON COMMIT DROP AS
      SELECT %s
        FROM (SELECT * FROM %5$s x ORDER BY hashint8extended(rid, %2$s), rid LIMIT %3$s) l
       CROSS JOIN (SELECT * FROM %5$s x ORDER BY hashint8extended(rid, %2$s + 1), rid LIMIT %3$s) r
       WHERE l.rid <> r.rid%4$s$q$,
      (SELECT string_agg(format('(%s)::smallint AS %I', c.expression, c.name), ', ' ORDER BY c.pos)
         FROM caredata._link_comparisons(lm.model, lm.version, p_project) c,
              -- checked again as built: the spec is a row the linker may have written directly
              LATERAL caredata._link_check_expression(c.name, c.expression, caredata._link_record_sql(p_project)) ok),
      (spec->>'seed')::bigint, k,
      CASE spec->>'link_type' WHEN 'link_only' THEN ' AND l.source <> r.source'
                              WHEN 'dedupe_only' THEN ' AND l.source = r.source' ELSE '' END,
      v_sample_from);
    GET DIAGNOSTICS sample_n = ROW_COUNT;
    IF to_regclass('pg_temp.link_upool') IS NOT NULL THEN
      DROP TABLE pg_temp.link_upool;
    END IF;
    IF sample_n = 0 THEN
      PERFORM caredata._link_bad('no pairs to estimate u from', 'Link at least two records (two sources for link_only).', '22023');
    END IF;
    -- every comparison's level counts in one pass over the sample (one
    -- grouping a comparison read it once each: 0.7 s at a million people)
    EXECUTE 'SELECT ARRAY[' ||
            (SELECT string_agg(format('count(*) FILTER (WHERE %I = %s)', c.name, lv), ', ' ORDER BY c.pos, lv)
               FROM caredata._link_comparisons(lm.model, lm.version, p_project) c, generate_series(0, c.nlevels - 1) lv) ||
            ']::bigint[] FROM pg_temp.link_usample'
      INTO all_counts;
    i := 0;
    FOR comps IN SELECT * FROM caredata._link_comparisons(lm.model, lm.version, p_project) ORDER BY pos LOOP
      counts := all_counts[i + 1 : i + comps.nlevels];
      i := i + comps.nlevels;
      -- a level never seen in the sample gets 1/sample (not 0: weights stay finite)
      v_u := v_u || ARRAY(SELECT greatest(c, 1)::double precision / sample_n FROM unnest(counts) c);
      v_u_top := v_u_top || (greatest(counts[comps.nlevels], 1)::double precision / sample_n);
      v_m := v_m || coalesce(comps.m_start,
                         ARRAY(SELECT CASE WHEN lv = comps.nlevels - 1 THEN 0.85 WHEN lv = 0 THEN 0.05 ELSE 0.10 / (comps.nlevels - 2) END
                                 FROM generate_series(0, comps.nlevels - 1) lv));
    END LOOP;
    DROP TABLE pg_temp.link_usample;
    v_stats := v_stats || jsonb_build_object('u_sample_pairs', sample_n, 'u_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
    PERFORM caredata._link_progress('estimated u from', sample_n, 'random pairs', t);
  ELSIF p_method = 'probabilistic' THEN
    SELECT array_agg(x ORDER BY c.pos, o) INTO v_u
      FROM caredata._link_comparisons(lm.model, lm.version, p_project) c, unnest(c.u) WITH ORDINALITY AS z(x, o);
    SELECT array_agg(c.u[c.nlevels] ORDER BY c.pos) INTO v_u_top FROM caredata._link_comparisons(lm.model, lm.version, p_project) c;
  END IF;

  -- 3. block and compare.  Each rule is a self-join on equal keys: a hash
  -- join (bounded by work_mem x hash_mem_multiplier, in batches past it)
  -- builds one side once, where a merge join sorts both sides of the same
  -- table (measured at 1M people: 7.3 s against 11.3 s)
  t := clock_timestamp();
  -- in C in memory (block.c), unless switched off or the records' compared
  -- columns do not fit maintenance_work_mem: then as SQL joins
  engine_sql := caredata._link_engine_sql(lm.model, lm.version, CASE WHEN p_method = 'probabilistic' THEN v_u_top END, p_incremental, p_project,
                                          'pg_temp.link_cand');
  -- about 210 bytes a record at the engine's peak (the default model's
  -- columns): not even tried when that is past maintenance_work_mem
  IF engine_sql IS NOT NULL AND v_records * 210 > pg_size_bytes(current_setting('maintenance_work_mem')) THEN
    engine_sql := NULL;
    v_stats := v_stats || jsonb_build_object('compare_engine', 'sql: maintenance_work_mem');
  END IF;
  IF engine_sql IS NOT NULL THEN
    BEGIN
      -- the pairs written straight into their table (no tuplestore between)
      EXECUTE format('CREATE TEMP TABLE link_cand (rid_l bigint, rid_r bigint%s, pattern integer, tf_adj double precision) ON COMMIT DROP',
                     (SELECT string_agg(format(', %I smallint', c.name), '' ORDER BY c.pos)
                        FROM caredata._link_comparisons(lm.model, lm.version, p_project) c));
      EXECUTE engine_sql INTO v_pairs, hist_p, hist_n;
      v_stats := v_stats || jsonb_build_object('compare_engine', 'c');
    EXCEPTION WHEN program_limit_exceeded THEN
      engine_sql := NULL;
      v_stats := v_stats || jsonb_build_object('compare_engine', 'sql: maintenance_work_mem');
    END;
  END IF;
  IF engine_sql IS NULL THEN
    saved_mergejoin := current_setting('enable_mergejoin');
    PERFORM set_config('enable_mergejoin', 'off', true);
    EXECUTE 'CREATE TEMP TABLE link_cand ON COMMIT DROP AS ' ||
            caredata._link_pairs_sql(lm.model, lm.version, CASE WHEN p_method = 'probabilistic' THEN v_u_top END, p_incremental, p_project);
    GET DIAGNOSTICS v_pairs = ROW_COUNT;
    PERFORM set_config('enable_mergejoin', saved_mergejoin, true);
    IF NOT v_stats ? 'compare_engine' THEN
      v_stats := v_stats || jsonb_build_object('compare_engine', 'sql');
    END IF;
  END IF;
  ANALYZE pg_temp.link_cand;
  v_stats := v_stats || jsonb_build_object('candidate_pairs', v_pairs, 'compare_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
  PERFORM caredata._link_progress('compared', v_pairs, 'candidate pairs', t);

  IF p_method = 'probabilistic' THEN
    -- the pattern histogram: counted by the engine as it wrote the pairs,
    -- else read from them
    IF hist_p IS NULL THEN
      SELECT array_agg(pattern ORDER BY pattern), array_agg(n::double precision ORDER BY pattern)
        INTO hist_p, hist_n
        FROM (SELECT pattern, count(*) AS n FROM pg_temp.link_cand GROUP BY pattern) h;
    END IF;
    hist_p := coalesce(hist_p, '{}'); hist_n := coalesce(hist_n, '{}');
    -- 4. train: EM on the pattern histogram, u fixed
    IF v_do_train THEN
      t := clock_timestamp();
      IF v_pairs = 0 THEN
        PERFORM caredata._link_bad('the blocking rules produced no candidate pairs to train on', 'Check the sources and the blocking rules (caredata.link_blocking_counts()).', '22023');
      END IF;
      SELECT CASE spec->>'link_type'
               WHEN 'link_only' THEN (sum(n)^2 - sum(n^2)) / 2
               WHEN 'dedupe_only' THEN (sum(n^2) - sum(n)) / 2
               ELSE sum(n) * (sum(n) - 1) / 2 END
        INTO total_pairs
        FROM (SELECT c.value::double precision AS n FROM jsonb_each_text(v_stats->'source_records') c) s;
      SELECT * INTO em FROM caredata.link_em(hist_p, hist_n, nlevels, v_u, v_m, greatest(total_pairs, 1),
                                              (spec->>'em_max_iterations')::integer, (spec->>'em_tolerance')::double precision);
      v_m := em.m;
      v_lambda := em.lambda;
      -- the trained model is a new version
      INSERT INTO caredata.link_model (project, model, version, spec, lambda, trained_at, trained_by, training)
      SELECT p_project, lm.model, max(x.version) + 1, lm.spec, v_lambda, clock_timestamp(), current_user,
             jsonb_build_object('run_id', v_run, 'from_version', lm.version, 'iterations', em.iterations, 'converged', em.converged,
                                'candidate_pairs', v_pairs, 'patterns', cardinality(hist_p), 'u_sample_pairs', sample_n,
                                'total_pairs', total_pairs)
        FROM caredata.link_model x WHERE x.project = p_project AND x.model = lm.model
      RETURNING * INTO lm;
      INSERT INTO caredata.link_model_level (project, model, version, comparison, position, level, label, m, u)
      SELECT p_project, lm.model, lm.version, c.name, c.pos, lv, c.labels[lv + 1], v_m[c.offs + lv + 1], v_u[c.offs + lv + 1]
        FROM (SELECT *, sum(nlevels) OVER (ORDER BY pos) - nlevels AS offs
                FROM caredata._link_comparisons(lm.model, lm.version, p_project)) c,
             generate_series(0, c.nlevels - 1) lv;
      UPDATE caredata.link_run x SET version = lm.version WHERE x.run_id = v_run;
      v_stats := v_stats || jsonb_build_object('em_iterations', em.iterations, 'em_converged', em.converged, 'lambda', v_lambda,
                                           'train_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
      PERFORM caredata._link_progress('trained by EM over', cardinality(hist_p), 'patterns', t,
        format(': version %s, %s iterations%s', lm.version, em.iterations, CASE WHEN em.converged THEN '' ELSE ', not converged' END));
    ELSE
      v_lambda := lm.lambda;
      SELECT array_agg(x ORDER BY c.pos, o) INTO v_m
        FROM caredata._link_comparisons(lm.model, lm.version, p_project) c, unnest(c.m) WITH ORDINALITY AS z(x, o);
    END IF;

    -- 5. score: each pair's weight is its pattern's weight (a dense array
    -- indexed by pattern, read by link_weight() in C) plus its
    -- term-frequency adjustment, computed where it is read, never stored.
    -- The threshold comes from the model's own expected precision and
    -- recall (link_threshold(), in C: the cut with the highest expected F1).
    t := clock_timestamp();
    k := 1;
    FOR i IN 1 .. cardinality(nlevels) LOOP
      k := k * nlevels[i];
    END LOOP;
    SELECT caredata.link_pattern_weights(array_agg(p ORDER BY p), nlevels, v_m, v_u, v_lambda) INTO v_w
      FROM generate_series(0, k - 1) p;
    IF p_threshold IS NULL THEN
      EXECUTE 'SELECT caredata.link_threshold(caredata.link_weight(pattern, tf_adj, $1)) FROM pg_temp.link_cand'
        INTO w_threshold USING v_w;
      w_threshold := coalesce(w_threshold, 0);
      p_threshold := caredata.link_probability(w_threshold);
    ELSE
      w_threshold := ln(p_threshold / (1 - p_threshold)) / ln(2);
    END IF;
    v_stats := v_stats || jsonb_build_object('threshold_weight', w_threshold, 'threshold_probability', p_threshold,
                                         'score_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
    PERFORM caredata._link_progress('scored', v_pairs, 'pairs', t,
      format(': threshold match weight %s (probability %s)', round(w_threshold::numeric, 2), round(p_threshold::numeric, 4)));
    -- 6. write the links
    t := clock_timestamp();
    IF current_setting('caredata.link_compare_engine')::boolean THEN
      -- in C (pair_rows.c: the same rows in the same order, written in
      -- batches with the BRIN index kept after each; 3.0 s in SQL at 1M
      -- people, of which the executor and a heap insert a row about a third)
      v_links := caredata._link_pairs_into('pg_temp.link_cand'::regclass, v_run, v_w, w_threshold);
    ELSE
      EXECUTE $q$
        INSERT INTO caredata.link_pair (run_id, rid_l, rid_r, pattern, weight, probability)
        SELECT $1, s.rid_l, s.rid_r, s.pattern, s.weight, caredata.link_probability(s.weight)
          FROM (SELECT c.rid_l, c.rid_r, c.pattern, caredata.link_weight(c.pattern, c.tf_adj, $2) AS weight
                  FROM pg_temp.link_cand c) s
         WHERE s.weight >= $3$q$
        USING v_run, v_w, w_threshold;
      GET DIAGNOSTICS v_links = ROW_COUNT;
    END IF;
    v_stats := v_stats || jsonb_build_object('write_links_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
    PERFORM caredata._link_progress('wrote', v_links, 'links', t);
  ELSE
    -- deterministic: the first step a pair meets makes the link
    t := clock_timestamp();
    i := 0;
    FOR step IN SELECT * FROM jsonb_array_elements_text(spec->'steps') LOOP
      i := i + 1;
      -- as checked (the spec may have been written directly): parenthesised,
      -- over the levels only
      PERFORM caredata._link_check_step(step, ARRAY(SELECT c.name FROM caredata._link_comparisons(lm.model, lm.version, p_project) c));
      steps := steps || format(' WHEN (%s) THEN %s', step, i);
    END LOOP;
    IF i = 0 THEN
      PERFORM caredata._link_bad('the model has no deterministic steps', 'Set "steps" in the model spec.', '55000');
    END IF;
    EXECUTE format('INSERT INTO caredata.link_pair (run_id, rid_l, rid_r, pattern, step)
                    SELECT %s, rid_l, rid_r, pattern, step FROM (SELECT rid_l, rid_r, pattern, CASE%s END AS step FROM pg_temp.link_cand) c
                     WHERE step IS NOT NULL', v_run, steps);
    GET DIAGNOSTICS v_links = ROW_COUNT;
    p_threshold := NULL;
    v_stats := v_stats || jsonb_build_object('steps', (SELECT jsonb_object_agg(s, n) FROM (SELECT step AS s, count(*) AS n FROM caredata.link_pair x WHERE x.run_id = v_run GROUP BY step) z),
                                         'score_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
    PERFORM caredata._link_progress('applied ' || i || ' deterministic steps to', v_pairs, 'pairs', t,
      format(': %s links', to_char(v_links, 'FM999,999,999,999,990')));
  END IF;

  -- an incremental run keeps the previous run's links between records still
  -- present (none is among this run's: each of those has a new record)
  IF p_incremental THEN
    INSERT INTO caredata.link_pair (run_id, rid_l, rid_r, pattern, weight, probability, step)
    SELECT v_run, x.rid_l, x.rid_r, x.pattern, x.weight, x.probability, x.step
      FROM caredata.link_pair x
     WHERE x.run_id = v_prev_run
       AND EXISTS (SELECT 1 FROM caredata.link_record a WHERE a.project = p_project AND a.rid = x.rid_l)
       AND EXISTS (SELECT 1 FROM caredata.link_record b WHERE b.project = p_project AND b.rid = x.rid_r);
  END IF;

  -- 7. cluster
  t := clock_timestamp();
  -- the run's links in weight order (weight descending, step, record ids:
  -- link_components sorts links that carry their weight and step in
  -- memory, where an ORDER BY here spilled 3.6 M links to disk)
  v_links_query := format('SELECT rid_l, rid_r%s FROM caredata.link_pair WHERE run_id = %s',
                          CASE WHEN p_one_to_one OR v_keep_apart THEN ', weight, step' ELSE '' END, v_run);
  v_nhs_query := CASE WHEN v_keep_apart AND v_nhs_confirm = 'details' THEN
                   -- a number is confirmed on its own unless two records carrying
                   -- it disagree on the date of birth or on a known sex (a
                   -- household member's number on someone else's record):
                   -- link_components groups the records by number itself (a
                   -- grouping here spilled to disk and was joined back)
                   format('SELECT rid, nhs_digits, dob, CASE WHEN caredata.compare_sex(sex, sex) = 2 THEN sex END
                      FROM %s WHERE nhs_digits IS NOT NULL', caredata._link_partition('caredata.link_record', p_project))
                 WHEN v_keep_apart THEN format('SELECT rid, nhs_digits FROM %s WHERE nhs_digits IS NOT NULL',
                                               caredata._link_partition('caredata.link_record', p_project)) END;
  -- each record with its cluster and its person id in the index so far
  -- (the project's partitions): written in C (cluster_table.c: the person
  -- index read into memory once, the records once in heap order, the rows
  -- written in batches; 5.3 s in SQL at 1M people, of which the joins and
  -- the components' sort 2-3 s), unless switched off or past
  -- maintenance_work_mem
  IF v_cluster_in_memory THEN
    BEGIN
      CREATE TEMP TABLE link_cluster (rid bigint, source text COLLATE "C", record_id bigint, record_key text COLLATE "C",
                                      cluster bigint, refused boolean, old_person bigint) ON COMMIT DROP;
      SELECT x.clusters, x.refused INTO v_clusters, v_refused
        FROM caredata._link_cluster_into('pg_temp.link_cluster'::regclass,
                                         caredata._link_partition('caredata.link_record', p_project)::regclass,
                                         caredata._link_partition('caredata.person_index', p_project)::regclass,
                                         v_links_query, p_one_to_one, v_nhs_query) x;
    EXCEPTION WHEN program_limit_exceeded THEN
      -- only the person index past the memory: clustering past it fails
      -- the same way in SQL (link_components), so that error stands
      GET STACKED DIAGNOSTICS v_error = MESSAGE_TEXT;
      IF v_error NOT LIKE 'reading the person index into memory %' THEN
        RAISE;
      END IF;
      v_cluster_in_memory := false;
    END;
  END IF;
  IF NOT v_cluster_in_memory THEN
    -- in SQL: the project's partitions, not the parents (a partitioned
    -- parent has no statistics, and the planner then probes the person
    -- index once per record instead of hashing it).  Merge joins in rid
    -- order, both tables by their rid index and the components sorted: the
    -- planner's other choice, hashing the person index (in two batches at
    -- 1M people), took 5.6-5.9 s against 5.1-5.3 s, and it switched between
    -- the two as the statistics of the index changed from run to run
    saved_hashjoin := current_setting('enable_hashjoin');
    PERFORM set_config('enable_hashjoin', 'off', true);
    EXECUTE format($q$
      CREATE TEMP TABLE link_cluster ON COMMIT DROP AS
      SELECT r.rid, r.source, r.record_id, r.record_key, coalesce(c.cluster, r.rid) AS cluster, coalesce(c.refused, false) AS refused,
             p.person_id AS old_person
        FROM %s r
        LEFT JOIN %s p ON p.rid = r.rid
        LEFT JOIN caredata.link_components($1, $2, $3) c ON c.rid = r.rid$q$,
      caredata._link_partition('caredata.link_record', p_project), caredata._link_partition('caredata.person_index', p_project))
    USING v_links_query, p_one_to_one, v_nhs_query;
    PERFORM set_config('enable_hashjoin', saved_hashjoin, true);
  END IF;
  -- keep only the links clustering accepted (one to one; NHS numbers kept
  -- apart): both records of a refused link are marked, a few thousand at
  -- 1M people, so the run's links are hashed against those alone (joined
  -- to the whole unanalysed cluster table, the planner sorted it: 4.4 s)
  k := 0;
  IF v_refused IS NULL OR v_refused > 0 THEN
    CREATE TEMP TABLE link_refused ON COMMIT DROP AS
    SELECT x.rid, x.cluster FROM pg_temp.link_cluster x WHERE x.refused;
    GET DIAGNOSTICS k = ROW_COUNT;
  END IF;
  IF k > 0 THEN
    ANALYZE pg_temp.link_refused;
    IF k <= 50000 THEN
      -- both ends tested against the refused records as the links are
      -- read (hashed subplans, within work_mem at this size: NOT NOT IN is
      -- never made a join), whatever the plan: sure of a handful of this
      -- run's links (the BRIN index's estimate), the planner hashed all
      -- 3.6M of them to join them (1.0 s against 0.3 s)
      DELETE FROM caredata.link_pair x USING pg_temp.link_refused a, pg_temp.link_refused b
       WHERE x.run_id = v_run
         AND NOT (x.rid_l NOT IN (SELECT r.rid FROM pg_temp.link_refused r))
         AND NOT (x.rid_r NOT IN (SELECT r.rid FROM pg_temp.link_refused r))
         AND a.rid = x.rid_l AND b.rid = x.rid_r AND a.cluster <> b.cluster;
    ELSE
      DELETE FROM caredata.link_pair x USING pg_temp.link_refused a, pg_temp.link_refused b
       WHERE x.run_id = v_run AND a.rid = x.rid_l AND b.rid = x.rid_r AND a.cluster <> b.cluster;
    END IF;
    GET DIAGNOSTICS k = ROW_COUNT;
    v_links := v_links - k;
    v_stats := v_stats || jsonb_build_object('links_refused', k);
  END IF;
  -- incremental: new records go to the existing person they link to best;
  -- two existing persons merge only on direct evidence (merge.sql)
  IF p_incremental THEN
    v_stats := v_stats || caredata._link_incremental_merge(v_run, lm.model, lm.version, p_method, p_threshold, p_project);
    v_links := v_links + (v_stats->>'links_added')::bigint - (v_stats->>'links_dropped')::bigint;
  END IF;
  -- its statistics, so that SQL's groupings and joins of it (the person
  -- plan and rows, where not in C) are planned for millions of rows (hash
  -- joins, not sorts of both sides spilled to disk); not before the
  -- deletion of refused links above, which the planner, then sure of a
  -- handful of this run's links (the BRIN index's estimate), would join to
  -- it by a nested loop
  IF p_incremental OR NOT v_cluster_in_memory OR NOT v_plan_in_memory OR NOT v_rows_in_memory THEN
    ANALYZE pg_temp.link_cluster;
    v_cluster_analyzed := true;
  END IF;
  IF p_incremental THEN
    SELECT count(DISTINCT cluster) INTO v_persons FROM pg_temp.link_cluster;
  ELSIF v_clusters IS NOT NULL THEN
    -- counted as the cluster table was written
    v_persons := v_clusters;
  ELSE
    -- a cluster is named by its smallest record id, one of its own records
    SELECT count(*) INTO v_persons FROM pg_temp.link_cluster c WHERE c.cluster = c.rid;
  END IF;
  v_stats := v_stats || jsonb_build_object('cluster_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3));
  PERFORM caredata._link_progress('clustered', v_records, 'records', t,
    format(' into %s persons%s', to_char(v_persons, 'FM999,999,999,999,990'),
           CASE WHEN v_stats ? 'links_refused' THEN format(' (%s links refused)', to_char((v_stats->>'links_refused')::bigint, 'FM999,999,999,999,990')) ELSE '' END));

  -- 8. person index with stable ids: an old person goes to the cluster with
  -- most of its records; a cluster keeps the smallest old id it won, the
  -- other ids it won merge into it; clusters with no id get new ones
  t := clock_timestamp();
  SELECT greatest(coalesce(max((x.stats->>'max_person_id')::bigint), 0),
                  coalesce((SELECT max(p.person_id) FROM caredata.person_index p WHERE p.project = p_project), 0))
    INTO max_person FROM caredata.link_run x WHERE x.project = p_project;
  -- each cluster's person id, and the merges and splits: in memory in C
  -- (persons.c), unless switched off or past maintenance_work_mem
  IF v_plan_in_memory THEN
    BEGIN
      CREATE TEMP TABLE link_plan ON COMMIT DROP AS
      SELECT * FROM caredata._link_person_plan('pg_temp.link_cluster'::regclass, max_person);
    EXCEPTION WHEN program_limit_exceeded THEN
      v_plan_in_memory := false;
    END;
  END IF;
  IF NOT v_plan_in_memory THEN
    IF NOT v_cluster_analyzed THEN
      ANALYZE pg_temp.link_cluster;
      v_cluster_analyzed := true;
    END IF;
    CREATE TEMP TABLE link_plan ON COMMIT DROP AS
    SELECT * FROM caredata._link_person_plan_sql(max_person, p_incremental);
  END IF;
  ANALYZE pg_temp.link_plan;
  INSERT INTO caredata.person_event (run_id, kind, person_id, other_person_id, records)
  SELECT v_run, CASE p.kind WHEN 'm' THEN 'merge' ELSE 'split' END, p.person_id, p.other_person_id, p.records
    FROM pg_temp.link_plan p WHERE p.kind <> 'a' ORDER BY p.kind, p.person_id, p.other_person_id, p.cluster;
  -- rewritten whole, its indexes built after the rows (a third of the time
  -- of maintaining them row by row)
  PERFORM caredata._link_maintain('truncate_persons', project => p_project);
  PERFORM caredata._link_maintain('drop_person_indexes', project => p_project);
  -- written in C (person_index.c: the clusters' person ids held in a
  -- sorted array, the rows written in batches; where the INSERT below spent
  -- half its 3.3 s at 1M people hashing the records to the clusters),
  -- unless switched off or past maintenance_work_mem
  IF v_rows_in_memory THEN
    BEGIN
      PERFORM caredata._link_person_index_into(caredata._link_partition('caredata.person_index', p_project)::regclass, p_project,
                                               'pg_temp.link_cluster'::regclass, 'pg_temp.link_plan'::regclass, v_run);
    EXCEPTION WHEN program_limit_exceeded THEN
      v_rows_in_memory := false;
    END;
  END IF;
  IF NOT v_rows_in_memory THEN
    IF NOT v_cluster_analyzed THEN
      ANALYZE pg_temp.link_cluster;
    END IF;
    INSERT INTO caredata.person_index (project, source, record_id, rid, person_id, run_id, record_key)
    SELECT p_project, c.source, c.record_id, c.rid, a.person_id, v_run, c.record_key
      FROM pg_temp.link_cluster c JOIN pg_temp.link_plan a ON a.kind = 'a' AND a.cluster = c.cluster;
  END IF;
  PERFORM caredata._link_maintain('build_person_indexes', project => p_project);
  SELECT greatest(max_person, coalesce(max(a.person_id), 0)) INTO max_person FROM pg_temp.link_plan a WHERE a.kind = 'a';

  -- indexes for one-record lookups, one per blocking rule
  PERFORM caredata._link_maintain('index_rules', spec->'blocking', p_project);
  v_stats := v_stats || jsonb_build_object('index_s', round(extract(epoch FROM clock_timestamp() - t)::numeric, 3),
                                       'links', v_links, 'persons', v_persons, 'max_person_id', max_person,
                                       'merges', (SELECT count(*) FROM caredata.person_event e WHERE e.run_id = v_run AND e.kind = 'merge'),
                                       'splits', (SELECT count(*) FROM caredata.person_event e WHERE e.run_id = v_run AND e.kind = 'split'));
  PERFORM caredata._link_progress('wrote the person index:', v_records, 'records', t);

  -- the working tables go now, so that a second run in the same transaction starts clean
  FOREACH work_table IN ARRAY ARRAY['link_new', 'link_cand', 'link_cluster', 'link_refused', 'link_plan'] LOOP
    IF to_regclass('pg_temp.' || work_table) IS NOT NULL THEN
      EXECUTE format('DROP TABLE pg_temp.%I', work_table);
    END IF;
  END LOOP;
  UPDATE caredata.link_run x SET finished_at = clock_timestamp(), threshold = p_threshold, stats = v_stats
   WHERE x.run_id = v_run;
  PERFORM caredata.audit_append('linkage.run', lm.model || ' version ' || lm.version,
    jsonb_build_object('project', p_project, 'run_id', v_run, 'method', p_method, 'incremental', p_incremental, 'records', v_records,
                       'links', v_links, 'persons', v_persons, 'threshold', p_threshold));
  run_id := v_run;
  model_version := lm.version;
  records := v_records;
  candidate_pairs := v_pairs;
  links := v_links;
  persons := v_persons;
  match_threshold := p_threshold;
  seconds := round(extract(epoch FROM clock_timestamp() - t0)::numeric, 2);
  PERFORM caredata._link_progress(format('run %s finished:', v_run), v_records, 'records', t0,
    format(', %s links, %s persons', to_char(v_links, 'FM999,999,999,999,990'), to_char(v_persons, 'FM999,999,999,999,990')));
  RETURN NEXT;
END
$$;
COMMENT ON FUNCTION caredata.link_run(text, integer, text, double precision, boolean, boolean, boolean, text[], text) IS
  'run linkage in a project (never touching another project''s rows): standardise the sources, block, compare, train (EM) or apply a trained model version, choose the threshold without labels (or use the match probability given), cluster, and write the person index with stable person ids; all or nothing';


-- (caredata._link_std_expr: replaced again below)


CREATE OR REPLACE FUNCTION caredata._link_std_expr(relation regclass, col name, what text) RETURNS text
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  typ regtype;
BEGIN
  IF col IS NULL THEN
    -- typed, so that a run over one source without the column works
    RETURN CASE what WHEN 'dob' THEN 'NULL::date' WHEN 'record_id' THEN 'NULL::bigint'
                     WHEN 'nhs_number' THEN 'NULL::bigint' ELSE 'NULL::text' END;
  END IF;
  SELECT a.atttypid::regtype INTO typ FROM pg_catalog.pg_attribute a
   WHERE a.attrelid = relation AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'undefined_column',
      MESSAGE = format('column "%s" of relation %s no longer exists', col, relation),
      HINT = 'Register the source again with caredata.link_add_source().';
  END IF;
  -- further fields by kind, and the postcode (of any country)
  IF what IN ('name', 'address', 'address_num', 'identifier', 'text', 'postcode') THEN
    RETURN caredata._link_std_kind(what, format('s.%I::text', col));
  END IF;
  RETURN CASE what
    -- the record id as an integer when it is one, and always as text
    WHEN 'record_id' THEN CASE WHEN typ IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype)
                               THEN format('s.%I::bigint', col) ELSE 'NULL::bigint' END
    WHEN 'record_key' THEN format('s.%I::text', col)
    WHEN 'nhs_number' THEN CASE WHEN typ IN ('bigint'::regtype, 'caredata.nhs_number'::regtype)
                                THEN format('s.%I::bigint', col)
                                ELSE format('caredata.nhs_number_digits(s.%I::text)', col) END
    WHEN 'dob' THEN CASE WHEN typ IN ('text'::regtype, 'character varying'::regtype, 'character'::regtype)
                         THEN format('caredata.try_standardise_dob(s.%I::text)', col)
                         ELSE format('(SELECT d FROM (SELECT s.%I::date AS d) x WHERE caredata.dob_is_valid(d))', col) END
    WHEN 'sex' THEN format('caredata.try_standardise_sex(s.%I::text)', col)
  END;
END
$$;
COMMENT ON FUNCTION caredata._link_std_expr(regclass, name, text) IS
  'internal: the standardising expression for one identifier column of a linkage source';

-- linkage functions (new or re-made above): the linker and the admin only
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

-- ---- issue 24: keyed versions of the built-in policies (padding), sums under the cell key method ----
-- Version 2 of cell_key protects magnitudes: the dominance rules of the
-- other built-in policies, and sums rounded at random to 3 significant
-- figures, the draw taken from the people's record keys (issue 24).
INSERT INTO caredata.sdc_policy (policy, version, suppress_max, protect_zero, rounding, rounding_base, redacted,
                                 dominance_n, dominance_k, p_percent, magnitude_digits, source, builtin, cell_key_ptable)
SELECT policy, 2, suppress_max, protect_zero, rounding, rounding_base, redacted, 2, 85, 10, 3,
       source || '; magnitudes (issue 24): (2, 85) dominance and p% = 10 (Hundepool et al., Statistical Disclosure Control, 2012, section 4.2), sums rounded at random (unbiased) to 3 significant figures by the people''s record keys',
       true, cell_key_ptable
  FROM caredata.sdc_policy WHERE policy = 'cell_key' AND version = 1;

-- Version 3 of nhs_hes and opensafely keys their rules, so that padding a
-- query with made-up people does not find where a count steps (issue 24):
-- a count of people is perturbed by p-table default first (variance 1 from
-- 5 people on), then suppressed (1 .. 7) and rounded to 5 as before; sums
-- are rounded at random to 3 significant figures by the people's record
-- keys.  Numbers given without their people (sdc_apply, sdc_protect,
-- funnel) keep version 2's rule.  opensafely_midpoint6, which suppresses
-- nothing, stays at version 2: a perturbed 1 would show as 0.
INSERT INTO caredata.sdc_policy (policy, version, suppress_max, protect_zero, rounding, rounding_base, redacted,
                                 dominance_n, dominance_k, p_percent, magnitude_digits, source, builtin, cell_key_ptable)
SELECT policy, 3, suppress_max, protect_zero, rounding, rounding_base, redacted, dominance_n, dominance_k, p_percent, magnitude_digits,
       source || '; keyed (issue 24, version 3): counts of people perturbed by the cell key method (p-table default) before suppression and rounding, sums rounded at random by the people''s record keys, so that padding a query does not find the thresholds',
       true, 'default'
  FROM caredata.sdc_policy WHERE builtin AND version = 2 AND policy IN ('nhs_hes', 'opensafely');

-- ---- issue 24: publication limits an owner changed survive pg_dump ----
SELECT pg_catalog.pg_extension_config_dump('caredata.publication_limits',
  'WHERE (k, max_linkable_share, max_suppressed_share) IS DISTINCT FROM (5, 0.05, 0.05)');

-- ---- issue 28: the keep_history trigger in C (17 us a row in PL/pgSQL) ----
CREATE OR REPLACE FUNCTION caredata.keep_history() RETURNS trigger
  AS 'MODULE_PATHNAME', 'keep_history' LANGUAGE C PARALLEL UNSAFE;

-- ---- issue 28: the opt-out snapshot applied in one pass ----
-- ---- issue 29, patients: view, share, understand, object ----
-- the role patients share with (src/roles.sql), then src/objection/patient_share.sql,
-- src/objection/patient_self.sql, src/variation/patient_comparison.sql and
-- src/objection/patient_dump.sql as they are
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'caredata_grantee') THEN
    CREATE ROLE caredata_grantee NOLOGIN;
    COMMENT ON ROLE caredata_grantee IS 'caredata: logins patients share their records with (carers, clinicians, researchers): see only the rows a patient shares with them';
  END IF;
END
$roles$;

-- (src/objection/patient_share.sql)
-- src/objection/patient_share.sql
-- Patients share their own records (issue 29): a patient login grants
-- another login read access to their own rows of chosen protected tables
-- or datasets, for a reason, until a date, revocable at any moment.  The
-- grant is enforced inside the objection row filter (row_permitted(),
-- src/objection/permitted.c): at each statement's start it reads the grants
-- to the querying role that are in force then and lets the granting
-- patient's rows through, and only theirs.  A grantee's reads are audited
-- per session: the filter honours a grant only once the grantee has
-- opened it in this session (open_shared_records()), whose audit entry
-- was committed by an earlier transaction (docs/security.md, "Patients
-- share their records").  No function here takes an NHS number: the
-- patient is always the calling login's own subject_access row.

CREATE TABLE caredata.patient_share (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  grantor regrole NOT NULL,              -- the patient's login (by OID)
  nhs_number caredata.nhs_number NOT NULL,   -- its subject_access number when granted
  grantee regrole NOT NULL,
  tables regclass[] NOT NULL DEFAULT '{}',   -- protected tables (the ones protect() was called on)
  datasets text[] NOT NULL DEFAULT '{}',     -- datasets of protected tables
  reason text NOT NULL CHECK (btrim(reason) <> ''),
  granted_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  CONSTRAINT patient_share_expires_after_grant CHECK (expires_at > granted_at),
  CONSTRAINT patient_share_names_something CHECK (cardinality(tables) + cardinality(datasets) > 0),
  CONSTRAINT patient_share_revoked_after_grant CHECK (revoked_at IS NULL OR revoked_at >= granted_at)
);
COMMENT ON TABLE caredata.patient_share IS
  'grants by patients of read access to their own rows of protected tables or datasets, to one login each, for a reason, until expires_at unless revoked; kept after revocation';
CREATE INDEX patient_share_grantee ON caredata.patient_share (grantee);
CREATE INDEX patient_share_grantor ON caredata.patient_share (grantor);

-- Each session in which a grantee opened a grant (the parallel leader's
-- process and its start time): the row filter honours a grant in a
-- session only when this row was committed by another transaction, after
-- its audit entry.
CREATE TABLE caredata.patient_share_use (
  share_id bigint NOT NULL REFERENCES caredata.patient_share (id),
  backend_pid integer NOT NULL,
  backend_start timestamptz NOT NULL,
  opened_at timestamptz NOT NULL DEFAULT now(),
  audit_id bigint NOT NULL,
  PRIMARY KEY (share_id, backend_pid, backend_start)
);
COMMENT ON TABLE caredata.patient_share_use IS
  'the sessions in which a grantee opened a patient''s grant (audited); the row filter honours a grant only in a session that opened it in a committed transaction';

-- History that cannot be rewritten: a grant changes only by being revoked, once.
CREATE FUNCTION caredata._patient_share_history() RETURNS trigger
LANGUAGE plpgsql PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL AND
     (pg_catalog.to_jsonb(NEW) OPERATOR(pg_catalog.-) 'revoked_at') OPERATOR(pg_catalog.=)
     (pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.-) 'revoked_at') THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'caredata.patient_share keeps its history'
    USING ERRCODE = 'object_not_in_prerequisite_state',
          DETAIL = 'A grant can only be revoked, once; nothing else about it changes.',
          HINT = 'Use caredata.revoke_my_share(); make a new grant for anything else.';
END
$$;
COMMENT ON FUNCTION caredata._patient_share_history() IS
  'internal: trigger keeping caredata.patient_share''s history (a grant changes only by being revoked, once, and is never deleted)';
REVOKE ALL ON FUNCTION caredata._patient_share_history() FROM PUBLIC;
CREATE TRIGGER patient_share_history BEFORE UPDATE OR DELETE ON caredata.patient_share
  FOR EACH ROW EXECUTE FUNCTION caredata._patient_share_history();
COMMENT ON TRIGGER patient_share_history ON caredata.patient_share IS
  'history is kept: a grant changes only by being revoked, once';

-- The login acting: the role set by SET ROLE, else the session's login.
-- Inside a SECURITY DEFINER function current_user is the owner; the
-- setting "role" is not changed by the switch, and SET ROLE checks
-- membership, so it cannot be forged by the caller.
CREATE FUNCTION caredata._acting_role() RETURNS regrole
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
  SELECT r.oid::pg_catalog.regrole FROM pg_catalog.pg_roles r
   WHERE r.rolname OPERATOR(pg_catalog.=)
         CASE WHEN pg_catalog.current_setting('role') OPERATOR(pg_catalog.=) 'none'
              THEN SESSION_USER::pg_catalog.text ELSE pg_catalog.current_setting('role') END;
END;
COMMENT ON FUNCTION caredata._acting_role() IS
  'internal: the role acting outside SECURITY DEFINER functions (the one SET ROLE chose, else the session''s login)';
REVOKE ALL ON FUNCTION caredata._acting_role() FROM PUBLIC;

-- the acting login's subject_access row, or an error: the patient path's door
CREATE FUNCTION caredata._acting_patient(what text, OUT role regrole, OUT nhs_number caredata.nhs_number)
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  role := caredata._acting_role();
  SELECT s.nhs_number INTO nhs_number FROM caredata.subject_access s
   WHERE s.role::pg_catalog.oid OPERATOR(pg_catalog.=) _acting_patient.role::pg_catalog.oid;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'only a patient login may %', what
      USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'The acting role has no caredata.subject_access row.',
            HINT = 'A patient acts through their own login (or SET ROLE to it): docs/objections.md, "How patients reach it".';
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._acting_patient(text) IS
  'internal: the acting role and its NHS number from caredata.subject_access; insufficient_privilege when it is not a patient';
REVOKE ALL ON FUNCTION caredata._acting_patient(text) FROM PUBLIC;

CREATE FUNCTION caredata.share_my_records(grantee regrole, reason text, expires_at timestamptz,
                                          tables regclass[] DEFAULT NULL, datasets text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  me record;
  t regclass;
  d text;
  new_id bigint;
  patients oid := (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) 'caredata_patient');
BEGIN
  PERFORM caredata._catalog_write('caredata.share_my_records()');
  SELECT * INTO me FROM caredata._acting_patient('share their records');
  tables := COALESCE(tables, '{}');
  datasets := COALESCE(datasets, '{}');
  IF grantee IS NULL OR reason IS NULL OR pg_catalog.btrim(reason) OPERATOR(pg_catalog.=) '' OR expires_at IS NULL THEN
    RAISE EXCEPTION 'a grant needs a grantee, a reason and an expiry'
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN
    RAISE EXCEPTION 'a grant must expire in the future' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF pg_catalog.cardinality(tables) OPERATOR(pg_catalog.+) pg_catalog.cardinality(datasets) OPERATOR(pg_catalog.=) 0 THEN
    RAISE EXCEPTION 'a grant names the tables or datasets it shares'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass tables => ARRAY[...]::regclass[] or datasets => ARRAY[...].';
  END IF;
  IF grantee::pg_catalog.oid OPERATOR(pg_catalog.=) me.role::pg_catalog.oid THEN
    RAISE EXCEPTION 'a patient cannot share with themselves' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- a grant that would change nothing (row security does not filter the
  -- grantee, or the subject-access policy hides everything but its own rows)
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) grantee::pg_catalog.oid
                AND (r.rolsuper OR r.rolbypassrls))
     OR (patients IS NOT NULL AND pg_catalog.pg_has_role(grantee::pg_catalog.oid, patients, 'MEMBER'))
     OR EXISTS (SELECT 1 FROM caredata.subject_access s WHERE s.role::pg_catalog.oid OPERATOR(pg_catalog.=) grantee::pg_catalog.oid) THEN
    RAISE EXCEPTION 'role % cannot be a grantee', grantee
      USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Row security does not filter it, or it is a patient login, which sees only its own rows.',
            HINT = 'Share with a login that is a member of caredata_grantee (or another role the objection filter applies to).';
  END IF;
  -- a patient cannot share what they cannot see themselves
  FOREACH t IN ARRAY tables LOOP
    IF t IS NULL OR NOT EXISTS (SELECT 1 FROM caredata.protected_table p
                                 WHERE p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) t::pg_catalog.oid
                                   AND p.root::pg_catalog.oid OPERATOR(pg_catalog.=) t::pg_catalog.oid)
       OR NOT pg_catalog.has_table_privilege(me.role::pg_catalog.oid, t::pg_catalog.oid, 'SELECT') THEN
      RAISE EXCEPTION 'cannot share table %', t
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'A patient shares only protected tables they may read themselves.';
    END IF;
  END LOOP;
  FOREACH d IN ARRAY datasets LOOP
    IF d IS NULL OR NOT EXISTS (SELECT 1 FROM caredata.protected_table p
                                 WHERE p.dataset OPERATOR(pg_catalog.=) d
                                   AND p.root::pg_catalog.oid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid
                                   AND pg_catalog.has_table_privilege(me.role::pg_catalog.oid, p.relid::pg_catalog.oid, 'SELECT')) THEN
      RAISE EXCEPTION 'cannot share dataset "%"', d
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'A patient shares only datasets of protected tables they may read themselves.';
    END IF;
  END LOOP;
  INSERT INTO caredata.patient_share (grantor, nhs_number, grantee, tables, datasets, reason, expires_at)
  VALUES (me.role, me.nhs_number, grantee, tables, datasets, reason, expires_at)
  RETURNING id INTO new_id;
  PERFORM caredata.audit_append('share.grant', new_id::pg_catalog.text,
    pg_catalog.jsonb_build_object('grantor', me.role::pg_catalog.text, 'grantee', grantee::pg_catalog.text,
      'tables', (SELECT pg_catalog.array_agg(x::pg_catalog.text) FROM pg_catalog.unnest(tables) x),
      'datasets', datasets, 'expires_at', expires_at),
    reason);
  RETURN new_id;
END
$$;
COMMENT ON FUNCTION caredata.share_my_records(regrole, text, timestamptz, regclass[], text[]) IS
  'as a patient login: let another login read your own rows of these protected tables or datasets (ones you may read yourself), for a reason, until expires_at or revoke_my_share(); audited; returns the grant''s id';

CREATE FUNCTION caredata.revoke_my_share(id bigint) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  me record;
BEGIN
  PERFORM caredata._catalog_write('caredata.revoke_my_share()');
  SELECT * INTO me FROM caredata._acting_patient('revoke their grants');
  UPDATE caredata.patient_share g SET revoked_at = pg_catalog.now()
   WHERE g.id OPERATOR(pg_catalog.=) revoke_my_share.id
     AND g.grantor::pg_catalog.oid OPERATOR(pg_catalog.=) me.role::pg_catalog.oid
     AND g.revoked_at IS NULL;
  IF NOT FOUND THEN
    -- the same answer for someone else's grant as for none
    RAISE EXCEPTION 'no grant % of yours to revoke', id
      USING ERRCODE = 'no_data_found',
            HINT = 'Your grants are listed by caredata.my_shares().';
  END IF;
  PERFORM caredata.audit_append('share.revoke', id::pg_catalog.text,
    pg_catalog.jsonb_build_object('grantor', me.role::pg_catalog.text));
END
$$;
COMMENT ON FUNCTION caredata.revoke_my_share(bigint) IS
  'as a patient login: end one of your grants now (its grantee sees nothing of yours from its next statement); audited';

CREATE FUNCTION caredata.my_shares()
RETURNS TABLE (id bigint, grantee regrole, tables regclass[], datasets text[], reason text,
               granted_at timestamptz, expires_at timestamptz, revoked_at timestamptz, in_force boolean,
               sessions bigint, last_opened timestamptz)
LANGUAGE plpgsql STABLE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  me record;
BEGIN
  SELECT * INTO me FROM caredata._acting_patient('list their grants');
  RETURN QUERY
  SELECT g.id, g.grantee, g.tables, g.datasets, g.reason, g.granted_at, g.expires_at, g.revoked_at,
         g.revoked_at IS NULL AND g.expires_at OPERATOR(pg_catalog.>) pg_catalog.now(),
         (SELECT pg_catalog.count(*) FROM caredata.audit_log a
           WHERE a.action OPERATOR(pg_catalog.=) 'share.read' AND a.object OPERATOR(pg_catalog.=) g.id::pg_catalog.text),
         (SELECT pg_catalog.max(a.at) FROM caredata.audit_log a
           WHERE a.action OPERATOR(pg_catalog.=) 'share.read' AND a.object OPERATOR(pg_catalog.=) g.id::pg_catalog.text)
    FROM caredata.patient_share g
   WHERE g.grantor::pg_catalog.oid OPERATOR(pg_catalog.=) me.role::pg_catalog.oid
   ORDER BY g.id;
END
$$;
COMMENT ON FUNCTION caredata.my_shares() IS
  'as a patient login: your grants, whether each is in force, and how many sessions opened it and when last (from the audit log)';

CREATE FUNCTION caredata.my_share_audit()
RETURNS TABLE (at timestamptz, actor name, action text, share_id bigint, detail jsonb)
LANGUAGE plpgsql STABLE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  me record;
BEGIN
  SELECT * INTO me FROM caredata._acting_patient('read the audit of their grants');
  RETURN QUERY
  SELECT a.at, a.actor, a.action, a.object::pg_catalog.int8, a.detail
    FROM caredata.audit_log a
   WHERE a.action OPERATOR(pg_catalog.=) ANY (ARRAY['share.grant', 'share.revoke', 'share.read'])
     AND a.object OPERATOR(pg_catalog.=) ANY (SELECT g.id::pg_catalog.text FROM caredata.patient_share g
                                             WHERE g.grantor::pg_catalog.oid OPERATOR(pg_catalog.=) me.role::pg_catalog.oid)
   ORDER BY a.id;
END
$$;
COMMENT ON FUNCTION caredata.my_share_audit() IS
  'as a patient login: the audit log''s entries about your grants (made, revoked, opened by whom and when), and no one else''s';

CREATE FUNCTION caredata.open_shared_records()
RETURNS TABLE (share_id bigint, tables regclass[], datasets text[], expires_at timestamptz)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  me regrole := caredata._acting_role();
  started timestamptz := (SELECT a.backend_start FROM pg_catalog.pg_stat_get_activity(pg_catalog.pg_backend_pid()) a);
  g record;
  entry bigint;
BEGIN
  PERFORM caredata._catalog_write('caredata.open_shared_records()');
  FOR g IN SELECT s.* FROM caredata.patient_share s
            WHERE s.grantee::pg_catalog.oid OPERATOR(pg_catalog.=) me::pg_catalog.oid
              AND s.revoked_at IS NULL AND s.expires_at OPERATOR(pg_catalog.>) pg_catalog.now()
            ORDER BY s.id LOOP
    IF NOT EXISTS (SELECT 1 FROM caredata.patient_share_use u
                    WHERE u.share_id OPERATOR(pg_catalog.=) g.id
                      AND u.backend_pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()
                      AND u.backend_start OPERATOR(pg_catalog.=) started) THEN
      entry := caredata.audit_append('share.read', g.id::pg_catalog.text,
        pg_catalog.jsonb_build_object('grantee', me::pg_catalog.text, 'backend_pid', pg_catalog.pg_backend_pid(),
          'backend_start', started,
          'tables', (SELECT pg_catalog.array_agg(x::pg_catalog.text) FROM pg_catalog.unnest(g.tables) x),
          'datasets', g.datasets));
      INSERT INTO caredata.patient_share_use (share_id, backend_pid, backend_start, audit_id)
      VALUES (g.id, pg_catalog.pg_backend_pid(), started, entry);
    END IF;
    share_id := g.id;
    tables := g.tables;
    datasets := g.datasets;
    expires_at := g.expires_at;
    RETURN NEXT;
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata.open_shared_records() IS
  'as a grantee: open, for this session, the grants in force to the acting role, each audited (share.read); the row filter lets a grant''s rows through from the next transaction, once this one has committed';

REVOKE ALL ON caredata.patient_share, caredata.patient_share_use FROM PUBLIC;
GRANT SELECT ON caredata.patient_share, caredata.patient_share_use TO caredata_admin;
REVOKE ALL ON FUNCTION caredata.share_my_records(regrole, text, timestamptz, regclass[], text[]),
  caredata.revoke_my_share(bigint), caredata.my_shares(), caredata.my_share_audit(),
  caredata.open_shared_records() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.share_my_records(regrole, text, timestamptz, regclass[], text[]),
  caredata.revoke_my_share(bigint), caredata.my_shares(), caredata.my_share_audit()
  TO caredata_patient;
GRANT EXECUTE ON FUNCTION caredata.open_shared_records()
  TO caredata_grantee, caredata_analyst, caredata_linker, caredata_admin;
-- a grantee reads protected tables through the row filter, which runs as
-- the querying role; for a grantee it answers only "is this row shared
-- with me", so it tells nothing of anyone's objections
GRANT EXECUTE ON FUNCTION
  caredata.row_permitted(caredata.nhs_number, text), caredata.row_permitted(caredata.nhs_number, text, timestamptz, text),
  caredata.my_nhs_number()
  TO caredata_grantee;

-- (src/objection/patient_self.sql)
-- src/objection/patient_self.sql
-- Patients object and withdraw themselves (issue 29): a patient login
-- records an objection for their own NHS number (never a number of their
-- choosing: it is the login's subject_access row), effective from now,
-- with the source 'patient'; withdraws only what they recorded this way;
-- and reads their own history.  The GP feed (Type 1) and the national
-- opt-out snapshots stay authoritative: a patient cannot withdraw what
-- they recorded, and cannot record consent (which would lift them for a
-- study).  Any objection in force blocks, whoever recorded it, so a
-- patient's own record can only add to them (docs/objections.md, "Who can
-- change what").

CREATE FUNCTION caredata.record_my_objection(kind text, purposes text[] DEFAULT NULL, study text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  me record;
  new_id bigint;
BEGIN
  PERFORM caredata._catalog_write('caredata.record_my_objection()');
  SELECT * INTO me FROM caredata._acting_patient('record their own objection');
  IF kind IS NULL OR kind OPERATOR(pg_catalog.<>) ALL (ARRAY['national_data_opt_out', 'type1', 'dissent']) THEN
    RAISE EXCEPTION 'a patient records a national_data_opt_out, type1 or dissent objection here'
      USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Consent to a study lifts the other objections for it; it is recorded by the study, with its consent form.',
            HINT = 'Kinds: national_data_opt_out, type1, dissent (which names a study).';
  END IF;
  IF 'direct_care' OPERATOR(pg_catalog.=) ANY (purposes) THEN
    RAISE EXCEPTION 'an objection does not cover direct care'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Object for research, planning or commissioning; talk to your GP practice about your own care.';
  END IF;
  new_id := caredata.record_objection(me.nhs_number, kind, 'patient', pg_catalog.now(), study, purposes);
  PERFORM caredata.audit_append('objection.patient_record', new_id::pg_catalog.text,
    pg_catalog.jsonb_build_object('patient', me.role::pg_catalog.text, 'kind', kind, 'study', study,
      'purposes', (SELECT o.purposes FROM caredata.objection o WHERE o.id OPERATOR(pg_catalog.=) new_id)));
  RETURN new_id;
END
$$;
COMMENT ON FUNCTION caredata.record_my_objection(text, text[], text) IS
  'as a patient login: record your own objection (national_data_opt_out, type1, or dissent from a study), effective now, source patient; purposes default by kind; audited; returns its id';

CREATE FUNCTION caredata.withdraw_my_objection(id bigint) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  me record;
  o record;
BEGIN
  PERFORM caredata._catalog_write('caredata.withdraw_my_objection()');
  SELECT * INTO me FROM caredata._acting_patient('withdraw their own objection');
  SELECT x.source, x.withdrawn_at INTO o FROM caredata.objection x
   WHERE x.id OPERATOR(pg_catalog.=) withdraw_my_objection.id
     AND x.nhs_number::pg_catalog.int8 OPERATOR(pg_catalog.=) me.nhs_number::pg_catalog.int8;
  IF NOT FOUND OR o.withdrawn_at IS NOT NULL THEN
    -- the same answer for someone else's objection as for none
    RAISE EXCEPTION 'no objection % of yours in force to withdraw', id
      USING ERRCODE = 'no_data_found',
            HINT = 'Your objections are listed by caredata.my_objections().';
  END IF;
  IF o.source OPERATOR(pg_catalog.<>) 'patient' THEN
    RAISE EXCEPTION 'objection % was not recorded by you', id
      USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Objections from your GP practice (Type 1) and the national data opt-out service stay as their source recorded them.',
            HINT = 'Ask your GP practice to withdraw a Type 1 objection; change a national data opt-out through the national service.';
  END IF;
  PERFORM caredata.withdraw_objection(id, pg_catalog.now());
  PERFORM caredata.audit_append('objection.patient_withdraw', id::pg_catalog.text,
    pg_catalog.jsonb_build_object('patient', me.role::pg_catalog.text));
END
$$;
COMMENT ON FUNCTION caredata.withdraw_my_objection(bigint) IS
  'as a patient login: withdraw, from now, an objection you recorded yourself (not one from your GP practice or the national opt-out service); audited';

CREATE FUNCTION caredata.my_objections()
RETURNS TABLE (id bigint, kind text, purposes text[], study text, effective_from timestamptz,
               withdrawn_at timestamptz, source text, in_force boolean, you_may_withdraw boolean)
LANGUAGE plpgsql STABLE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  me record;
BEGIN
  SELECT * INTO me FROM caredata._acting_patient('read their own objections');
  RETURN QUERY
  SELECT o.id, o.kind, o.purposes, o.study, o.effective_from, o.withdrawn_at, o.source,
         o.effective_from OPERATOR(pg_catalog.<=) pg_catalog.now()
           AND (o.withdrawn_at IS NULL OR o.withdrawn_at OPERATOR(pg_catalog.>) pg_catalog.now()),
         o.source OPERATOR(pg_catalog.=) 'patient' AND o.withdrawn_at IS NULL
    FROM caredata.objection o
   WHERE o.nhs_number::pg_catalog.int8 OPERATOR(pg_catalog.=) me.nhs_number::pg_catalog.int8
   ORDER BY o.effective_from, o.id;
END
$$;
COMMENT ON FUNCTION caredata.my_objections() IS
  'as a patient login: the history of your objections (every source), whether each is in force now and whether you may withdraw it yourself';

REVOKE ALL ON FUNCTION caredata.record_my_objection(text, text[], text), caredata.withdraw_my_objection(bigint),
  caredata.my_objections() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.record_my_objection(text, text[], text), caredata.withdraw_my_objection(bigint),
  caredata.my_objections() TO caredata_patient;

-- (src/variation/patient_comparison.sql)
-- src/variation/patient_comparison.sql
-- Patients understand their own care (issue 29): where the providers,
-- teams and clinicians in a patient's own records stand in a published
-- comparison (a funnel plot, caredata.funnel(), computed once by the
-- admin under the disclosure-control policy for patients and stored), and
-- a patient's own summary in one call.  A patient passes no argument: the
-- rows read are the login's own (subject_access), and of everyone else a
-- patient learns only the published comparison's rows.

CREATE TABLE caredata.patient_comparison (
  name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  title text NOT NULL,
  source regclass NOT NULL,          -- a protected table: the patients' own rows
  unit_kind text NOT NULL CHECK (unit_kind IN ('provider', 'team', 'clinician')),
  unit_column name NOT NULL,
  date_column name,
  data_type text NOT NULL,
  policy text,
  published_at timestamptz NOT NULL DEFAULT now(),
  published_by name NOT NULL DEFAULT current_user
);
COMMENT ON TABLE caredata.patient_comparison IS
  'comparisons published for patients: a funnel plot of units (providers, teams or clinicians) of a protected table, under the disclosure-control policy for patients';

CREATE TABLE caredata.patient_comparison_row (
  comparison text NOT NULL REFERENCES caredata.patient_comparison (name) ON DELETE CASCADE,
  unit text NOT NULL,
  numerator double precision,
  denominator double precision,
  ratio double precision,
  lower_998 double precision,
  lower_95 double precision,
  upper_95 double precision,
  upper_998 double precision,
  band text,
  suppressed boolean NOT NULL,
  PRIMARY KEY (comparison, unit)
);
COMMENT ON TABLE caredata.patient_comparison_row IS
  'the published rows of each patient comparison (caredata.funnel() as the policy for patients publishes them: a suppressed unit has no counts, ratio or band)';

-- the policy for patients: the one named, else the one assigned to
-- caredata_patient, else the one in force for the caller
CREATE FUNCTION caredata._patient_policy(policy text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  pol text := policy;
BEGIN
  IF pol IS NULL THEN
    SELECT r.policy INTO pol FROM caredata.sdc_policy_role r
     WHERE r.role::pg_catalog.oid OPERATOR(pg_catalog.=)
           (SELECT o.oid FROM pg_catalog.pg_roles o WHERE o.rolname OPERATOR(pg_catalog.=) 'caredata_patient');
  END IF;
  RETURN COALESCE(pol, caredata.sdc_policy_in_force());
END
$$;
COMMENT ON FUNCTION caredata._patient_policy(text) IS
  'internal: the disclosure-control policy a patient comparison is published under (the one named, else caredata_patient''s, else the caller''s)';

CREATE FUNCTION caredata._publish_patient_comparison(name text, title text, source regclass, unit_kind text,
                                                     unit_column name, data_type text, date_column name,
                                                     policy text, units caredata.funnel_row[])
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  n bigint;
BEGIN
  PERFORM caredata._catalog_write('caredata.publish_patient_comparison()');
  IF NOT EXISTS (SELECT 1 FROM caredata.protected_table p
                  WHERE p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) source::pg_catalog.oid
                    AND p.root::pg_catalog.oid OPERATOR(pg_catalog.=) source::pg_catalog.oid) THEN
    RAISE EXCEPTION '% is not a protected table', source
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'A patient comparison names the protected table whose rows are the patients'' own (caredata.protect()).';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid OPERATOR(pg_catalog.=) source::pg_catalog.oid
                    AND a.attname OPERATOR(pg_catalog.=) unit_column AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)
     OR (date_column IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM pg_catalog.pg_attribute a
            WHERE a.attrelid OPERATOR(pg_catalog.=) source::pg_catalog.oid
              AND a.attname OPERATOR(pg_catalog.=) date_column AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)) THEN
    RAISE EXCEPTION 'a column named is not a column of %', source USING ERRCODE = 'undefined_column';
  END IF;
  DELETE FROM caredata.patient_comparison c WHERE c.name OPERATOR(pg_catalog.=) _publish_patient_comparison.name;
  INSERT INTO caredata.patient_comparison (name, title, source, unit_kind, unit_column, date_column, data_type, policy)
  VALUES (name, title, source, unit_kind, unit_column, date_column, data_type, policy);
  INSERT INTO caredata.patient_comparison_row
  SELECT _publish_patient_comparison.name, f.unit, f.numerator, f.denominator, f.ratio,
         f.lower_998, f.lower_95, f.upper_95, f.upper_998, f.band, f.suppressed
    FROM pg_catalog.unnest(units) f;
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM caredata.audit_append('comparison.publish', name,
    pg_catalog.jsonb_build_object('source', source::pg_catalog.text, 'unit_kind', unit_kind, 'units', n, 'policy', policy));
  RETURN n;
END
$$;
COMMENT ON FUNCTION caredata._publish_patient_comparison(text, text, regclass, text, name, text, name, text, caredata.funnel_row[]) IS
  'internal: check and store a patient comparison''s funnel rows; audited';

-- an SQL-standard body: the units query is the admin's own, read with
-- their search_path (as caredata.funnel() reads it); every name added is
-- qualified
CREATE FUNCTION caredata.publish_patient_comparison(name text, title text, source regclass, unit_kind text,
                                                    unit_column name, units text, data_type text DEFAULT 'SR',
                                                    date_column name DEFAULT NULL, policy text DEFAULT NULL)
RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
  SELECT caredata._publish_patient_comparison(publish_patient_comparison.name, publish_patient_comparison.title,
           publish_patient_comparison.source, publish_patient_comparison.unit_kind,
           publish_patient_comparison.unit_column, publish_patient_comparison.data_type,
           publish_patient_comparison.date_column, caredata._patient_policy(publish_patient_comparison.policy),
           ARRAY(SELECT f FROM caredata.funnel(publish_patient_comparison.units, publish_patient_comparison.data_type,
                                               policy => caredata._patient_policy(publish_patient_comparison.policy)) f));
END;
COMMENT ON FUNCTION caredata.publish_patient_comparison(text, text, regclass, text, name, text, text, name, text) IS
  'publish (or replace) a comparison for patients: caredata.funnel(units, data_type) under the policy for patients (the one assigned to caredata_patient unless named), with the protected table and column whose values are the units in a patient''s own rows; audited; returns the number of units';

-- the units of one comparison in the patient's own rows, and how many of
-- their rows each (read as the owner, for the patient's own number only)
CREATE FUNCTION caredata._my_units(c caredata.patient_comparison, nhs_number caredata.nhs_number)
RETURNS TABLE (unit text, episodes bigint, first_date text, last_date text)
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
SET DateStyle = 'ISO, YMD'   -- dates as text, whatever the caller's style
AS $$
DECLARE
  col name := (SELECT p.nhs_column FROM caredata.protected_table p
                WHERE p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) c.source::pg_catalog.oid);
BEGIN
  IF col IS NULL THEN
    RETURN;   -- unprotected since: nothing
  END IF;
  RETURN QUERY EXECUTE pg_catalog.format(
    'SELECT %1$I::pg_catalog.text, pg_catalog.count(*), %2$s, %3$s FROM %4$s '
    'WHERE %5$I::pg_catalog.int8 OPERATOR(pg_catalog.=) $1 AND %1$I IS NOT NULL GROUP BY 1 ORDER BY 1',
    c.unit_column,
    CASE WHEN c.date_column IS NULL THEN 'NULL::pg_catalog.text' ELSE pg_catalog.format('pg_catalog.min(%I)::pg_catalog.text', c.date_column) END,
    CASE WHEN c.date_column IS NULL THEN 'NULL::pg_catalog.text' ELSE pg_catalog.format('pg_catalog.max(%I)::pg_catalog.text', c.date_column) END,
    c.source, col)
  USING nhs_number::pg_catalog.int8;
END
$$;
COMMENT ON FUNCTION caredata._my_units(caredata.patient_comparison, caredata.nhs_number) IS
  'internal: the units of a patient comparison in one patient''s rows, with their count and dates';
REVOKE ALL ON FUNCTION caredata._my_units(caredata.patient_comparison, caredata.nhs_number) FROM PUBLIC;

CREATE FUNCTION caredata.my_comparison()
RETURNS TABLE (comparison text, title text, unit_kind text, unit text, your_episodes bigint,
               numerator double precision, denominator double precision, ratio double precision,
               lower_95 double precision, upper_95 double precision, lower_998 double precision,
               upper_998 double precision, band text, suppressed boolean)
LANGUAGE plpgsql STABLE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  me record;
BEGIN
  SELECT * INTO me FROM caredata._acting_patient('see where the organisations that treated them stand');
  RETURN QUERY
  SELECT c.name, c.title, c.unit_kind, u.unit, u.episodes,
         r.numerator, r.denominator, r.ratio, r.lower_95, r.upper_95, r.lower_998, r.upper_998,
         r.band, COALESCE(r.suppressed, true)
    FROM caredata.patient_comparison c
   CROSS JOIN LATERAL caredata._my_units(c, me.nhs_number) u
    LEFT JOIN caredata.patient_comparison_row r
      ON r.comparison OPERATOR(pg_catalog.=) c.name AND r.unit OPERATOR(pg_catalog.=) u.unit
   WHERE pg_catalog.has_table_privilege(me.role::pg_catalog.oid, c.source::pg_catalog.oid, 'SELECT')
   ORDER BY c.name, u.unit;
END
$$;
COMMENT ON FUNCTION caredata.my_comparison() IS
  'as a patient login: for each provider, team or clinician in your own records, its row of each published patient comparison (ratio, limits, band as the policy for patients publishes them; a unit not published shows as suppressed)';

CREATE FUNCTION caredata.my_summary() RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  me record;
  records jsonb := '[]';
  t record;
  n bigint;
BEGIN
  SELECT * INTO me FROM caredata._acting_patient('read their own summary');
  -- the protected tables the patient may read, and their own rows of each
  FOR t IN SELECT p.relid, p.nhs_column, p.dataset FROM caredata.protected_table p
            WHERE p.relid::pg_catalog.oid OPERATOR(pg_catalog.=) p.root::pg_catalog.oid
              AND pg_catalog.has_table_privilege(me.role::pg_catalog.oid, p.relid::pg_catalog.oid, 'SELECT')
            ORDER BY p.relid::pg_catalog.text LOOP
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s WHERE %I::pg_catalog.int8 OPERATOR(pg_catalog.=) $1',
                              t.relid, t.nhs_column)
      INTO n USING me.nhs_number::pg_catalog.int8;
    records := records OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
      'table', t.relid::pg_catalog.text, 'dataset', t.dataset, 'rows', n));
  END LOOP;
  RETURN pg_catalog.jsonb_build_object(
    'patient', me.role::pg_catalog.text,
    'records', records,
    'organisations', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
        'comparison', c.comparison, 'kind', c.unit_kind, 'unit', c.unit, 'episodes', c.your_episodes,
        'band', c.band, 'suppressed', c.suppressed) ORDER BY c.comparison, c.unit)
      FROM caredata.my_comparison() c), '[]'),
    'dates', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
        'comparison', c.name, 'first', d.first_date, 'last', d.last_date) ORDER BY c.name)
      FROM caredata.patient_comparison c,
           LATERAL (SELECT pg_catalog.min(u.first_date) AS first_date, pg_catalog.max(u.last_date) AS last_date
                      FROM caredata._my_units(c, me.nhs_number) u) d
     WHERE c.date_column IS NOT NULL AND d.first_date IS NOT NULL
       AND pg_catalog.has_table_privilege(me.role::pg_catalog.oid, c.source::pg_catalog.oid, 'SELECT')), '[]'),
    'shares', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
        'id', s.id, 'grantee', s.grantee::pg_catalog.text, 'reason', s.reason, 'expires_at', s.expires_at,
        'in_force', s.in_force, 'sessions', s.sessions, 'last_opened', s.last_opened) ORDER BY s.id)
      FROM caredata.my_shares() s), '[]'),
    'objections_in_force', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
        'id', o.id, 'kind', o.kind, 'purposes', o.purposes, 'study', o.study, 'source', o.source,
        'you_may_withdraw', o.you_may_withdraw) ORDER BY o.id)
      FROM caredata.my_objections() o WHERE o.in_force), '[]'));
END
$$;
COMMENT ON FUNCTION caredata.my_summary() IS
  'as a patient login: your own summary in one document: your rows of each protected table you may read, the organisations in them and where they stand, your dates, what you shared with whom, and the objections in force for which purposes';

REVOKE ALL ON caredata.patient_comparison, caredata.patient_comparison_row FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON caredata.patient_comparison, caredata.patient_comparison_row TO caredata_admin;
REVOKE ALL ON FUNCTION caredata.publish_patient_comparison(text, text, regclass, text, name, text, text, name, text),
  caredata._publish_patient_comparison(text, text, regclass, text, name, text, name, text, caredata.funnel_row[]),
  caredata._patient_policy(text), caredata.my_comparison(), caredata.my_summary() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.publish_patient_comparison(text, text, regclass, text, name, text, text, name, text),
  caredata._publish_patient_comparison(text, text, regclass, text, name, text, name, text, caredata.funnel_row[]),
  caredata._patient_policy(text)
  TO caredata_admin;
GRANT EXECUTE ON FUNCTION caredata.my_comparison(), caredata.my_summary() TO caredata_patient;

-- (src/objection/patient_dump.sql)
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

-- ---- issue 27, Citus follow-ups ----
-- Catalog writes refuse on a Citus worker (caredata._catalog_write, first
-- in every writer; linkage as a whole through _link_check_project and
-- link_create_project); the p-tables' audit trigger is the coordinator's
-- alone; publishing a distributed table reads it over one connection per
-- node; safe_count_text's comments give the COLLATE workaround for Citus's
-- combine.
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
COMMENT ON FUNCTION caredata._citus_worker() IS
  'internal: whether this node is a Citus worker (false without Citus and on the coordinator)';
COMMENT ON FUNCTION caredata._catalog_write(text) IS
  'internal: refuse on a Citus worker a function that writes caredata''s catalogs (run it on the coordinator)';
REVOKE ALL ON FUNCTION caredata._catalog_write(text), caredata._citus_worker() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata._catalog_write(text), caredata._citus_worker() TO caredata_admin, caredata_linker;

CREATE OR REPLACE FUNCTION caredata.record_objection(nhs_number caredata.nhs_number, kind text,
  source text, effective_from timestamptz DEFAULT now(), study text DEFAULT NULL,
  purposes text[] DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
DECLARE
  covers text[] := coalesce(purposes, caredata.default_purposes(kind));
  new_id bigint;
BEGIN
  PERFORM caredata._catalog_write('caredata.record_objection()');
  -- checked here, so that no constraint's error shows the row (and with it
  -- the NHS number)
  IF nhs_number IS NULL OR source IS NULL OR effective_from IS NULL THEN
    RAISE EXCEPTION 'an objection needs an NHS number, a source and an effective time'
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF kind IS NULL OR kind NOT IN ('national_data_opt_out', 'type1', 'dissent', 'consent') THEN
    RAISE EXCEPTION 'unknown objection kind "%"', kind
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Kinds: national_data_opt_out, type1, dissent, consent.';
  END IF;
  IF (kind IN ('dissent', 'consent')) <> (study IS NOT NULL) THEN
    RAISE EXCEPTION 'a % objection % a study', kind,
      CASE WHEN study IS NULL THEN 'needs' ELSE 'cannot name' END
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Dissent and consent name the study (the dataset) they are about; the other kinds do not.';
  END IF;
  IF cardinality(covers) IS NULL OR cardinality(covers) = 0 OR
     EXISTS (SELECT 1 FROM unnest(covers) p WHERE p IS NULL OR p NOT IN (SELECT name FROM caredata.purpose)) THEN
    RAISE EXCEPTION 'an objection must cover known purposes'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Purposes are listed in caredata.purpose.';
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.objection o
             WHERE o.nhs_number = record_objection.nhs_number AND o.kind = record_objection.kind
               AND o.study IS NOT DISTINCT FROM record_objection.study AND o.withdrawn_at IS NULL) THEN
    RAISE EXCEPTION 'this patient already has a % objection in force%', kind,
      CASE WHEN study IS NULL THEN '' ELSE ' for this study' END
      USING ERRCODE = 'unique_violation',
            HINT = 'Withdraw it first (caredata.withdraw_objection) to record a new one.';
  END IF;
  INSERT INTO caredata.objection (nhs_number, kind, purposes, study, effective_from, source)
  VALUES (nhs_number, kind, covers, study, effective_from, source)
  RETURNING id INTO new_id;
  RETURN new_id;
END
$$;

CREATE OR REPLACE FUNCTION caredata.withdraw_objection(id bigint, at timestamptz DEFAULT now()) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
BEGIN
  PERFORM caredata._catalog_write('caredata.withdraw_objection()');
  IF at IS NULL THEN
    RAISE EXCEPTION 'a withdrawal needs a time' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  -- checked here, so that the constraint's error never shows the row
  IF EXISTS (SELECT 1 FROM caredata.objection o
             WHERE o.id = withdraw_objection.id AND o.withdrawn_at IS NULL AND o.effective_from > at) THEN
    RAISE EXCEPTION 'objection % cannot be withdrawn before it took effect', id
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Withdraw it at or after its effective_from.';
  END IF;
  UPDATE caredata.objection o SET withdrawn_at = at
  WHERE o.id = withdraw_objection.id AND o.withdrawn_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no objection % in force to withdraw', id
      USING ERRCODE = 'no_data_found',
            HINT = 'Open objections are those in caredata.objection with withdrawn_at IS NULL.';
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION caredata.grant_exemption(dataset text, purpose text, objection_kind text,
  legal_basis text, reference text, expires_at timestamptz DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
DECLARE
  new_id bigint;
BEGIN
  PERFORM caredata._catalog_write('caredata.grant_exemption()');
  INSERT INTO caredata.exemption (dataset, purpose, objection_kind, legal_basis, reference, expires_at)
  VALUES (dataset, purpose, objection_kind, legal_basis, reference, expires_at)
  RETURNING id INTO new_id;
  RAISE NOTICE 'exemption % granted: dataset %, purpose %, % not applied (legal basis %, reference %)',
    new_id, dataset, purpose, objection_kind, legal_basis, reference;
  PERFORM caredata.audit_append('exemption.grant', new_id::text,
    jsonb_build_object('dataset', dataset, 'purpose', purpose, 'objection_kind', objection_kind,
                       'legal_basis', legal_basis, 'reference', reference, 'expires_at', expires_at));
  RETURN new_id;
END
$$;

CREATE OR REPLACE FUNCTION caredata.revoke_exemption(id bigint) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
BEGIN
  PERFORM caredata._catalog_write('caredata.revoke_exemption()');
  UPDATE caredata.exemption e SET revoked_at = now()   -- revoked_by: the keep_history trigger
  WHERE e.id = revoke_exemption.id AND e.revoked_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no exemption % in force to revoke', id USING ERRCODE = 'no_data_found';
  END IF;
  PERFORM caredata.audit_append('exemption.revoke', id::text);
END
$$;






CREATE OR REPLACE FUNCTION caredata.rotate_domain(name text) RETURNS smallint
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  d caredata.domain;
BEGIN
  PERFORM caredata._catalog_write('caredata.rotate_domain()');
  SELECT * INTO d FROM caredata.domain WHERE domain.name = rotate_domain.name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pseudonym domain "%" does not exist', name USING ERRCODE = 'undefined_object';
  END IF;
  IF d.retired_at IS NOT NULL THEN
    RAISE EXCEPTION 'pseudonym domain "%" is retired', name USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  INSERT INTO caredata.domain_key (domain_id, version, scheme) VALUES (d.id, d.current_version + 1, 'aes256-cmac');
  UPDATE caredata.domain SET current_version = d.current_version + 1 WHERE id = d.id;
  PERFORM caredata.audit_append('domain.rotate', name, jsonb_build_object('id', d.id, 'version', d.current_version + 1));
  RETURN d.current_version + 1;
END
$$;
COMMENT ON FUNCTION caredata.rotate_domain(text) IS
  'start a new key version (AES-256-CMAC) for a domain; older versions stay usable (explicitly) until retired; returns the new version';

CREATE OR REPLACE FUNCTION caredata.retire_domain(name text, version integer DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  d caredata.domain;
BEGIN
  PERFORM caredata._catalog_write('caredata.retire_domain()');
  SELECT * INTO d FROM caredata.domain WHERE domain.name = retire_domain.name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pseudonym domain "%" does not exist', name USING ERRCODE = 'undefined_object';
  END IF;
  IF version IS NULL THEN
    UPDATE caredata.domain_key SET retired_at = now() WHERE domain_id = d.id AND retired_at IS NULL;
    UPDATE caredata.domain SET retired_at = now() WHERE id = d.id AND retired_at IS NULL;
  ELSIF version = d.current_version THEN
    RAISE EXCEPTION 'cannot retire the current key version of pseudonym domain "%"', name
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Rotate the domain first, or retire the whole domain with retire_domain(name).';
  ELSE
    UPDATE caredata.domain_key k SET retired_at = now()
    WHERE k.domain_id = d.id AND k.version = retire_domain.version AND k.retired_at IS NULL;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'pseudonym domain "%" has no active key version %', name, version
        USING ERRCODE = 'undefined_object';
    END IF;
  END IF;
  PERFORM caredata.audit_append('domain.retire', name, jsonb_build_object('id', d.id, 'version', version));
END
$$;





CREATE OR REPLACE FUNCTION caredata.republish(name text) RETURNS regclass
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p caredata.publication;
BEGIN
  PERFORM caredata._catalog_write('caredata.republish()');
  UPDATE caredata.publication x SET republished_at = now() WHERE x.name = republish.name RETURNING * INTO p;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('publication "%s" does not exist', name),
      HINT = 'See caredata.publication.';
  END IF;
  -- after a key rotation: the stored pseudonyms move to the current version
  PERFORM caredata.refresh_pseudonyms(p.spec->>'domain', p.source, (p.spec->>'nhs_column')::name);
  PERFORM caredata._publication_view(name);
  PERFORM caredata.audit_append('publication.republish', name, jsonb_build_object('recipient', p.recipient));
  RETURN format('published.%I', name)::regclass;
END
$$;


CREATE OR REPLACE FUNCTION caredata.refresh_pseudonyms(domain text, source regclass, nhs_column name DEFAULT 'nhs_number')
  RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v integer;
  n bigint;
BEGIN
  PERFORM caredata._catalog_write('caredata.refresh_pseudonyms()');
  SELECT d.current_version INTO v FROM caredata.domain d WHERE d.name = refresh_pseudonyms.domain AND d.retired_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('pseudonym domain "%s" does not exist or is retired', domain),
      HINT = 'Create it with caredata.create_domain(name, purpose).';
  END IF;
  DELETE FROM caredata.pseudonym_map m WHERE m.domain = refresh_pseudonyms.domain AND m.version <> v;
  EXECUTE format($q$
    INSERT INTO caredata.pseudonym_map (domain, nhs_number, version, pseudonym)
    SELECT $1, x.n, $2, caredata.pseudonymise(x.n, $1)
      FROM (SELECT DISTINCT caredata.try_nhs_number(s.%I::text) AS n FROM %s s) x
     WHERE x.n IS NOT NULL
    ON CONFLICT (domain, nhs_number) DO NOTHING$q$, nhs_column, source)
    USING domain, v;
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM caredata.audit_append('pseudonyms.refresh', domain, jsonb_build_object('source', source::text, 'version', v, 'added', n));
  RETURN n;
END
$$;







DO $issue27$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['bigint', 'caredata.nhs_number', 'caredata.pseudonym', 'text'] LOOP
    EXECUTE format($a$
      COMMENT ON AGGREGATE caredata.safe_count_text(%1$s) IS
        'distinct people for display, as the caredata.sdc_policy setting allows: the number, or the policy''s mark (* or [REDACTED]); over a Citus distributed table write safe_count_text(...) COLLATE "C" to sort or store it (Citus''s combine drops the collation: docs/scale-out.md)';
      COMMENT ON AGGREGATE caredata.safe_count_text(%1$s, text) IS
        'distinct people for display, as the named policy allows: the number, or the policy''s mark (* or [REDACTED]); over a Citus distributed table write safe_count_text(...) COLLATE "C" to sort or store it (Citus''s combine drops the collation: docs/scale-out.md)';
      $a$, t);
  END LOOP;
END
$issue27$;
COMMENT ON AGGREGATE caredata.safe_count_text(caredata.person_set) IS
  'the union of partial states for display; over a Citus distributed table write safe_count_text(...) COLLATE "C" to sort or store it (Citus''s combine drops the collation: docs/scale-out.md)';

-- ---- issue 28 after issue 27: the opt-out snapshot in one pass, with the worker guard ----

-- ---- issue 27 for issue 29: the patients' writers refuse on a Citus worker ----






-- ---- issue 28, pseudonyms at AES speed ----
-- Key versions carry a scheme.  Every version that exists when a database is
-- updated was made under HMAC-SHA256 and keeps it ('hmac-sha256', also the
-- column's default, so that a 0.1.0 dump restored later keeps its versions'
-- scheme): their pseudonyms stay valid and reproducible until the domain is
-- rotated.  create_domain() and rotate_domain() make AES-256-CMAC versions
-- ('aes256-cmac'): src/keys/keys.c, docs/key-management.md.
-- (added empty and filled, not with a default: a fresh install has no
-- "missing value" recorded for the column, and neither may an updated one)
ALTER TABLE caredata.domain_key ADD COLUMN scheme text;
UPDATE caredata.domain_key SET scheme = 'hmac-sha256';
ALTER TABLE caredata.domain_key ALTER COLUMN scheme SET DEFAULT 'hmac-sha256',
  ALTER COLUMN scheme SET NOT NULL,
  ADD CONSTRAINT domain_key_scheme_check CHECK (scheme IN ('hmac-sha256', 'aes256-cmac'));
COMMENT ON COLUMN caredata.domain_key.scheme IS
  'how the version computes its 128-bit tokens: aes256-cmac (AES-256-CMAC, every version made since 0.2.0) or hmac-sha256 (HMAC-SHA256 truncated, versions made before)';
COMMENT ON TYPE caredata.pseudonym IS
  'keyed pseudonym: 128-bit keyed token (AES-256-CMAC; HMAC-SHA256 for key versions made before 0.2.0) with its domain and key version; text form <domain id>.<version>.<token>';



-- ---- issue 28 after issue 27: create_domain and rotate_domain make AES versions, and refuse on a Citus worker ----



-- ---- issue 25, linkage speed: clustering sorts weighted links and confirms NHS numbers by their details in C ----
-- (link_components reads links with their weight and step and sorts them
-- itself, and an NHS numbers query with date of birth and sex; link_run
-- passes both, analyses its working tables and counts clusters by the
-- record naming them; link_standardise counts records per source first)
COMMENT ON FUNCTION caredata.link_components(text, boolean, text) IS
  'union-find over the (bigint, bigint) links a query returns, in its order, or, when it adds a weight (double precision) and optionally a step (smallint), in weight order (weight descending, step, record ids, NULLs last; sorted in memory): each record in a link, its cluster (the smallest record id in it) and whether a link of it was refused; one_to_one accepts a link only if neither record is linked yet; nhs_query (record id, NHS digits[, confirmed boolean | , date of birth date, sex text]) keeps apart clusters holding confirmed valid NHS numbers that differ by more than one typing error (confirmed by a link between two records carrying the number, or from the start when the third column is true, or when no two of the query''s records carrying it differ in date of birth or sex, NULLs ignored)';



-- ---- issue 27: protect() creates its policies with caredata off the search_path (deparsed qualified for the shards) ----
CREATE OR REPLACE FUNCTION caredata._protect_one(tab regclass, nhs_column name, purpose text, dataset text, root regclass)
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



-- ---- issue 25, linkage at 1M people: internal text keys compared bytewise, standardising in parallel ----
ALTER TABLE caredata.link_record_key ALTER COLUMN source TYPE text COLLATE "C", ALTER COLUMN record_key TYPE text COLLATE "C";
ALTER TABLE caredata.link_record ALTER COLUMN source TYPE text COLLATE "C", ALTER COLUMN sex TYPE text COLLATE "C",
  ALTER COLUMN postcode TYPE text COLLATE "C", ALTER COLUMN sector TYPE text COLLATE "C",
  ALTER COLUMN district TYPE text COLLATE "C", ALTER COLUMN area TYPE text COLLATE "C",
  ALTER COLUMN record_key TYPE text COLLATE "C";
ALTER TABLE caredata.person_index ALTER COLUMN source TYPE text COLLATE "C", ALTER COLUMN record_key TYPE text COLLATE "C";

-- ---- issue 28, 3M-number opt-out snapshot: the merge and the writes in C (src/objection/feed_load.c) ----
-- The insert step of a snapshot: the new objections written in bulk
-- (src/objection/feed_load.c), or NULL when the caller must INSERT them
-- instead (the register has row triggers, row security or a constraint
-- checked row by row).  Run as the caller, with an INSERT's privilege checks.
CREATE FUNCTION caredata._open_objections(numbers caredata.nhs_number[], kind text, purposes text[],
                                          effective_from timestamptz, source text)
RETURNS bigint
  AS 'MODULE_PATHNAME', 'open_objections' LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._open_objections(caredata.nhs_number[], text, text[], timestamptz, text) IS
  'internal (apply_opt_out_snapshot): open one objection per NHS number (strictly ascending) in bulk, as the caller, with its INSERT privilege; NULL when the register needs a row-by-row INSERT';
REVOKE ALL ON FUNCTION caredata._open_objections(caredata.nhs_number[], text, text[], timestamptz, text) FROM PUBLIC;

-- The merge step of a snapshot (src/objection/feed_load.c): the snapshot
-- read once as the caller and sorted, the register's open objections of the
-- kind read once in NHS number order (index only where the visibility map
-- allows), and what differs returned with the counts; NULL when the
-- register cannot be read that way (the caller then runs the SQL merge).
CREATE FUNCTION caredata._opt_out_changes(snapshot regclass, nhs_column name, kind text, source text,
  OUT rows_read bigint, OUT invalid bigint, OUT duplicates bigint, OUT distinct_valid bigint,
  OUT ids bigint[], OUT numbers caredata.nhs_number[])
  AS 'MODULE_PATHNAME', 'opt_out_changes' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._opt_out_changes(regclass, name, text, text) IS
  'internal (apply_opt_out_snapshot): read a snapshot and the register''s open objections of a kind once each and return the counts, the ids of the source''s objections the snapshot dropped and the numbers it adds; NULL when the SQL merge must run instead';
REVOKE ALL ON FUNCTION caredata._opt_out_changes(regclass, name, text, text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
  caredata._open_objections(caredata.nhs_number[], text, text[], timestamptz, text),
  caredata._opt_out_changes(regclass, name, text, text)
  TO caredata_admin;


-- ---- issue 25, lookups at 1M people: the model and field look-ups in PL/pgSQL (plans kept for the session) ----
