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
  INSERT INTO caredata.domain_key (domain_id, version) VALUES (new_id, 1);
  PERFORM caredata.audit_append('domain.create', name, jsonb_build_object('id', new_id, 'purpose', purpose, 'version', 1));
  RETURN new_id;
END
$$;

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

-- a Citus table's filter is one permissive policy (src/citus.sql)
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
  -- (src/citus.sql; Citus re-creates restrictive policies as permissive)
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
  citus boolean;
BEGIN
  SELECT * INTO t FROM caredata.protected_table p WHERE p.relid = tab;
  IF NOT FOUND THEN
    RAISE EXCEPTION '% is not protected', tab USING ERRCODE = 'undefined_object';
  END IF;
  IF t.root <> tab THEN
    RAISE EXCEPTION '% is protected as part of %', tab, t.root
      USING ERRCODE = 'wrong_object_type', HINT = format('Unprotect %s, which unprotects its whole hierarchy.', t.root);
  END IF;
  FOR t IN SELECT * FROM caredata.protected_table p WHERE p.root = tab ORDER BY p.relid = tab DESC LOOP
    CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.relid);
    citus := EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = t.relid AND p.polname = 'caredata_filter');
    IF citus THEN
      -- a Citus table (src/citus.sql): the shards' statistics target first,
      -- each in its own transaction, before this one locks them
      IF EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attname = t.nhs_column AND NOT a.attisdropped) THEN
        PERFORM caredata._citus_statistics_target(t.relid, t.nhs_column, -1);
      END IF;
      EXECUTE format('DROP POLICY caredata_filter ON %s', t.relid);
      DELETE FROM caredata.distributed_filter f WHERE f.relation = caredata._logical_relation(t.relid);
    ELSE
      EXECUTE format('DROP POLICY caredata_objection ON %s', t.relid);
      EXECUTE format('DROP POLICY caredata_subject ON %s', t.relid);
    END IF;
    IF t.added_base_policy THEN
      EXECUTE format('DROP POLICY caredata_base ON %s', t.relid);
    END IF;
    IF t.enabled_rls THEN
      EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY', t.relid);
    END IF;
    -- statistics again at the default target, from the next ANALYZE
    IF NOT citus AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attname = t.nhs_column AND NOT a.attisdropped) THEN
      EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS -1', t.relid, t.nhs_column);
    END IF;
  END LOOP;
  DELETE FROM caredata.protected_table p WHERE p.root = tab;
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
DECLARE
  h caredata.audit_head;
  v_id bigint;
  v_at timestamptz := clock_timestamp();
  v_hash bytea;
BEGIN
  PERFORM caredata._coordinator_only('caredata.audit_append()');
  IF action IS NULL OR action !~ '^[a-z][a-z_.]{0,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an audit action is lower-case words joined by . or _',
      HINT = 'For example domain.create or linkage.run.';
  END IF;
  INSERT INTO caredata.audit_head VALUES (true, 0, '\x'::bytea) ON CONFLICT DO NOTHING;
  SELECT * INTO h FROM caredata.audit_head WHERE one FOR UPDATE;
  v_id := h.last_id + 1;
  v_hash := sha256(h.last_hash || caredata._audit_text(v_id, v_at, session_user, action, object, detail, justification));
  INSERT INTO caredata.audit_log (id, at, actor, action, object, detail, justification, prev_hash, hash)
  VALUES (v_id, v_at, session_user, action, object, detail, justification, h.last_hash, v_hash);
  UPDATE caredata.audit_head SET last_id = v_id, last_hash = v_hash WHERE one;
  RETURN v_id;
END
$$;

CREATE OR REPLACE FUNCTION caredata._link_trained_version(model text, version integer) RETURNS integer
  LANGUAGE plpgsql STABLE AS $$
DECLARE
  v integer;
BEGIN
  PERFORM caredata._coordinator_only('linkage');
  SELECT lm.version INTO v FROM caredata.link_model lm
   WHERE lm.model = _link_trained_version.model AND lm.lambda IS NOT NULL
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
BEGIN
  -- one feed at a time; readers are never blocked (SHARE ROW EXCLUSIVE)
  PERFORM caredata.lock_register();
  -- parse once, in NHS number order: every step after is a merge against
  -- the register's NHS number index, in that order (this function's
  -- settings rule out nested loops and hashing millions of numbers, whose
  -- random access cost twice as much)
  EXECUTE format('CREATE TEMP TABLE caredata_snapshot ON COMMIT DROP AS
                  SELECT caredata.try_nhs_number(%I::text) AS n FROM %s ORDER BY 1',
                 nhs_column, snapshot);
  ANALYZE pg_temp.caredata_snapshot;
  SELECT count(*), count(*) FILTER (WHERE n IS NULL), count(n) - count(DISTINCT n), count(DISTINCT n)
  INTO rows_read, invalid, duplicates, distinct_valid
  FROM pg_temp.caredata_snapshot;
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

  IF caredata._citus_table('caredata.objection') THEN
    -- On Citus the register is a reference table, which Citus writes only
    -- from rows it can route, not from a join with this session's snapshot:
    -- the changes are worked out here, then written (docs/scale-out.md)
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
  ELSE
    UPDATE caredata.objection o SET withdrawn_at = greatest(effective_at, o.effective_from)
    WHERE o.kind = 'national_data_opt_out' AND o.source = apply_opt_out_snapshot.source
      AND o.withdrawn_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM pg_temp.caredata_snapshot s WHERE s.n = o.nhs_number);
    GET DIAGNOSTICS withdrawn = ROW_COUNT;

    INSERT INTO caredata.objection (nhs_number, kind, purposes, effective_from, source)
    SELECT s.n, 'national_data_opt_out', caredata.default_purposes('national_data_opt_out'),
           effective_at, apply_opt_out_snapshot.source
    FROM (SELECT DISTINCT n FROM pg_temp.caredata_snapshot WHERE n IS NOT NULL) s
    WHERE NOT EXISTS (SELECT 1 FROM caredata.objection o
                      WHERE o.nhs_number = s.n AND o.kind = 'national_data_opt_out'
                        AND o.withdrawn_at IS NULL)
    -- in NHS number order, so the inserts walk the register's NHS number
    -- indexes once in order instead of landing at random (halves a 3M load)
    ORDER BY s.n;
    GET DIAGNOSTICS opened = ROW_COUNT;
  END IF;
  unchanged := distinct_valid - opened;
  DROP TABLE pg_temp.caredata_snapshot;

  INSERT INTO caredata.feed_load (feed, source, rows_read, invalid, duplicates, opened, withdrawn, unchanged)
  VALUES ('national_data_opt_out', source, rows_read, invalid, duplicates, opened, withdrawn, unchanged);
  PERFORM caredata.audit_append('feed.load', 'national_data_opt_out', jsonb_build_object('source', source, 'rows_read', rows_read, 'invalid', invalid, 'opened', opened, 'withdrawn', withdrawn, 'unchanged', unchanged));
END
$$;

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
CREATE OR REPLACE FUNCTION caredata._publication_view(name text) RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p caredata.publication;
  cols text := '';
  c record;
  body text;
  rows_name text := '_rows_' || substr(md5(name), 1, 12);
  inner_name text := '_query_' || substr(md5(name), 1, 12);
BEGIN
  SELECT * INTO p FROM caredata.publication x WHERE x.name = _publication_view.name;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('publication "%s" does not exist', name),
      HINT = 'See caredata.publication.';
  END IF;
  FOR c IN SELECT key, value FROM jsonb_each_text(p.spec->'columns') ORDER BY key LOOP
    cols := cols || ', ' || caredata._publish_column(c.key, c.value);
  END LOOP;
  EXECUTE format('DROP VIEW IF EXISTS published.%I', p.name);
  IF to_regprocedure(format('published.%I()', rows_name)) IS NOT NULL THEN
    EXECUTE format('DROP FUNCTION published.%I()', rows_name);
  END IF;
  IF to_regclass(format('published.%I', inner_name)) IS NOT NULL THEN
    EXECUTE format('DROP VIEW published.%I', inner_name);
  END IF;
  body := format($v$
    SELECT m.pseudonym::text AS person%1$s
      FROM %2$s s
      JOIN caredata.pseudonym_map m ON m.domain = %3$L AND m.nhs_number OPERATOR(caredata.=) caredata.try_nhs_number(s.%4$I::text)
     WHERE caredata.permitted(m.nhs_number, %5$L, now(), %6$L)$v$,
    cols, p.source, p.spec->>'domain', p.spec->>'nhs_column', p.spec->>'purpose', p.spec->>'dataset');
  IF caredata._citus_table(p.source) OR caredata._citus_table('caredata.pseudonym_map') THEN
    -- Citus runs a view's query on the nodes as its reader, who may read
    -- the view but not its source: the query runs instead in a SECURITY
    -- DEFINER function, as the view's owner, as a view's would
    -- (docs/scale-out.md)
    EXECUTE format('CREATE VIEW published.%I WITH (security_barrier) AS %s', inner_name, body);
    EXECUTE format('REVOKE ALL ON published.%I FROM PUBLIC', inner_name);
    EXECUTE format('COMMENT ON VIEW published.%I IS %L', inner_name,
                   format('caredata publication %s on Citus: its query, read only through published.%s()', p.name, rows_name));
    EXECUTE format('CREATE FUNCTION published.%I() RETURNS SETOF published.%I LANGUAGE plpgsql STABLE SECURITY DEFINER '
                   'SET search_path = pg_catalog, pg_temp AS %L',
                   rows_name, inner_name, format('BEGIN RETURN QUERY SELECT * FROM published.%I; END', inner_name));
    EXECUTE format('REVOKE ALL ON FUNCTION published.%I() FROM PUBLIC', rows_name);
    EXECUTE format('GRANT EXECUTE ON FUNCTION published.%I() TO %I', rows_name, p.recipient);
    EXECUTE format('COMMENT ON FUNCTION published.%I() IS %L', rows_name,
                   format('caredata publication %s on Citus: the rows of published.%s, as its owner', p.name, p.name));
    body := format('SELECT * FROM published.%I()', rows_name);
  END IF;
  EXECUTE format('CREATE VIEW published.%I WITH (security_barrier) AS %s', p.name, body);
  EXECUTE format('COMMENT ON VIEW published.%I IS %L', p.name,
                 format('caredata publication %s for %s: %s pseudonymised (domain %s), objection filter for %s', p.name, p.recipient,
                        p.source, p.spec->>'domain', p.spec->>'purpose'));
  EXECUTE format('REVOKE ALL ON published.%I FROM PUBLIC', p.name);
  EXECUTE format('GRANT SELECT ON published.%I TO %I', p.name, p.recipient);
  EXECUTE format('GRANT USAGE ON SCHEMA published TO %I', p.recipient);
  -- a view's functions run with its reader's EXECUTE rights: the filter's
  -- (answered as for an analyst, who may already call it)
  EXECUTE format('GRANT EXECUTE ON FUNCTION caredata.permitted(caredata.nhs_number, text, timestamptz, text) TO %I', p.recipient);
  -- the recipient's operators on pseudonym and nhs_number without OPERATOR(caredata.=)
  EXECUTE format('ALTER ROLE %I SET search_path = "$user", public, published, caredata', p.recipient);
END
$$;

CREATE OR REPLACE FUNCTION caredata.unpublish(name text) RETURNS void
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p caredata.publication;
BEGIN
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

-- src/citus.sql, whole
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

-- the catalogs citus_setup() makes reference tables: all that a query on a
-- worker reads (the register, exemptions, subject access, key domains,
-- disclosure policies, distributed filters, and the stored pseudonyms a
-- published view joins on every shard); register_version stays local
-- (each node's triggers bump their own)
CREATE FUNCTION caredata.citus_catalogs() RETURNS SETOF regclass
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
  SELECT unnest(ARRAY['caredata.purpose'::regclass, 'caredata.objection'::regclass, 'caredata.exemption'::regclass,
                      'caredata.subject_access'::regclass, 'caredata.domain'::regclass, 'caredata.domain_key'::regclass,
                      'caredata.sdc_policy'::regclass, 'caredata.distributed_filter'::regclass,
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
SET search_path = pg_catalog, caredata, pg_temp
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

-- ---------------------------------------------------------------------
-- issue 22, section 5: a table's owner cannot weaken its filter
-- (src/protection.c, src/objection/protect.sql).  unprotect() takes the
-- tables off the list before its DDL and copes with a weakened filter; the
-- DDL guards, the list's trigger, filter_weakness() and protection_status.
-- ---------------------------------------------------------------------
CREATE OR REPLACE FUNCTION caredata.unprotect(tab regclass) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
DECLARE
  t caredata.protected_table;
  hierarchy caredata.protected_table[];
  citus boolean;
BEGIN
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
      -- a Citus table (src/citus.sql): the shards' statistics target first,
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
-- What protect() promised, held (src/protection.c): DDL that would weaken
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
