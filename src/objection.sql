-- src/objection.sql
-- The objection register, purposes, exemptions, feed loading, row filters
-- and subject access.  Policy lives here, in SQL a DBA can read; the per-row
-- fast path, caredata.permitted(), is src/objection.c.

CREATE TABLE caredata.purpose (
  name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  description text NOT NULL
);
COMMENT ON TABLE caredata.purpose IS
  'purposes data may be used for; objections and exemptions name them';
INSERT INTO caredata.purpose VALUES
  ('direct_care', 'the individual care of the patient; no objection kind covers it'),
  ('research', 'research, including studies named as datasets'),
  ('planning', 'planning and improving services, including national statistics'),
  ('commissioning', 'commissioning and paying for services');
SELECT pg_catalog.pg_extension_config_dump('caredata.purpose',
  $$WHERE name NOT IN ('direct_care', 'research', 'planning', 'commissioning')$$);

-- The register.  History is kept: a withdrawal ends an objection, it never
-- deletes it.  kind:
--   national_data_opt_out  the National Data Opt-out (research, planning, commissioning)
--   type1                  Type 1: GP data not to leave the practice except for direct care
--   dissent                explicit dissent from a named study (study = the dataset)
--   consent                explicit consent to a named study: lifts the other kinds for it
CREATE TABLE caredata.objection (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  nhs_number caredata.nhs_number NOT NULL,
  kind text NOT NULL CHECK (kind IN ('national_data_opt_out', 'type1', 'dissent', 'consent')),
  purposes text[] NOT NULL,
  study text,
  effective_from timestamptz NOT NULL,
  withdrawn_at timestamptz,
  source text NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  recorded_by name NOT NULL DEFAULT current_user,
  CONSTRAINT objection_withdrawn_after_effective CHECK (withdrawn_at IS NULL OR withdrawn_at >= effective_from),
  CONSTRAINT objection_study_only_for_dissent_or_consent CHECK ((kind IN ('dissent', 'consent')) = (study IS NOT NULL)),
  CONSTRAINT objection_covers_a_purpose CHECK (cardinality(purposes) > 0)
);
COMMENT ON TABLE caredata.objection IS
  'objection register: National Data Opt-out, Type 1, dissent from and consent to named studies, with effective and withdrawal times; history is never deleted';
CREATE UNIQUE INDEX objection_open ON caredata.objection (nhs_number, kind, study) NULLS NOT DISTINCT
  WHERE withdrawn_at IS NULL;
CREATE INDEX objection_nhs_number ON caredata.objection (nhs_number);
SELECT pg_catalog.pg_extension_config_dump('caredata.objection', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.objection_id_seq', '');

-- the purposes each kind covers unless a row says otherwise
CREATE FUNCTION caredata.default_purposes(kind text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
  SELECT CASE kind
    WHEN 'national_data_opt_out' THEN ARRAY['research', 'planning', 'commissioning']
    WHEN 'type1' THEN ARRAY['research', 'planning', 'commissioning']
    WHEN 'dissent' THEN ARRAY['research']
    WHEN 'consent' THEN ARRAY['research']
  END
$$;
COMMENT ON FUNCTION caredata.default_purposes(text) IS
  'the purposes an objection kind covers by default (no kind covers direct_care)';

-- Exemptions: explicit, per dataset (or publication) and purpose, for one
-- objection kind, with their legal basis.  Never a default.
CREATE TABLE caredata.exemption (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  dataset text NOT NULL,
  purpose text NOT NULL REFERENCES caredata.purpose (name),
  objection_kind text NOT NULL CHECK (objection_kind IN ('national_data_opt_out', 'type1', 'dissent')),
  legal_basis text NOT NULL CHECK (legal_basis IN ('consent', 'legal_requirement', 'cag_section_251', 'anonymised_aggregate')),
  reference text NOT NULL CHECK (reference <> ''),
  granted_by name NOT NULL DEFAULT current_user,
  granted_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  revoked_by name
);
COMMENT ON TABLE caredata.exemption IS
  'explicit exemptions from an objection kind for one dataset and purpose, with legal basis and reference; kept after revocation';
SELECT pg_catalog.pg_extension_config_dump('caredata.exemption', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.exemption_id_seq', '');

-- Every change to objections or exemptions takes a new register version.
-- Versions come from a sequence, so a rolled-back change never shares its
-- number with a committed one; permitted() caches by version.
CREATE SEQUENCE caredata.register_version_seq;
CREATE TABLE caredata.register_version (
  version bigint NOT NULL,
  changed_at timestamptz NOT NULL
);
COMMENT ON TABLE caredata.register_version IS
  'one row: the version of the objection register, new with every change to objections or exemptions';
INSERT INTO caredata.register_version VALUES (nextval('caredata.register_version_seq'), now());
CREATE UNIQUE INDEX register_version_one_row ON caredata.register_version ((true));

CREATE FUNCTION caredata.register_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE caredata.register_version
  SET version = nextval('caredata.register_version_seq'), changed_at = now();
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION caredata.register_changed() IS
  'trigger: a change to objections or exemptions takes a new register version';
REVOKE ALL ON FUNCTION caredata.register_changed() FROM PUBLIC;
CREATE TRIGGER objection_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON caredata.objection
  FOR EACH STATEMENT EXECUTE FUNCTION caredata.register_changed();
CREATE TRIGGER exemption_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON caredata.exemption
  FOR EACH STATEMENT EXECUTE FUNCTION caredata.register_changed();
COMMENT ON TRIGGER objection_changed ON caredata.objection IS
  'a change to objections takes a new register version (permitted() caches by version)';
COMMENT ON TRIGGER exemption_changed ON caredata.exemption IS
  'a change to exemptions takes a new register version (permitted() caches by version)';
COMMENT ON SEQUENCE caredata.register_version_seq IS
  'register versions: a rolled-back change never shares its number with a committed one';

-- History that cannot be rewritten.  Who recorded an objection or granted
-- an exemption, and when, are column defaults the writer cannot override
-- (caredata_admin may insert only the other columns: see the grants below);
-- after that the only change is ending it (a withdrawal, a revocation), once.
CREATE FUNCTION caredata.keep_history() RETURNS trigger
LANGUAGE plpgsql PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF TG_TABLE_NAME = 'objection' THEN
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
  RAISE EXCEPTION 'caredata.% keeps its history', TG_TABLE_NAME
    USING ERRCODE = 'object_not_in_prerequisite_state',
          DETAIL = CASE TG_TABLE_NAME WHEN 'objection' THEN 'An objection can only be withdrawn, once; nothing else about it changes.'
                   ELSE 'An exemption can only be revoked, once; nothing else about it changes.' END,
          HINT = 'Use caredata.withdraw_objection() or caredata.revoke_exemption(); record a new row for anything else.';
END
$$;
COMMENT ON FUNCTION caredata.keep_history() IS
  'trigger: an objection or exemption only ever changes by being withdrawn or revoked, once (revoked_by set by the server)';
REVOKE ALL ON FUNCTION caredata.keep_history() FROM PUBLIC;
CREATE TRIGGER objection_history BEFORE UPDATE ON caredata.objection
  FOR EACH ROW EXECUTE FUNCTION caredata.keep_history();
CREATE TRIGGER exemption_history BEFORE UPDATE ON caredata.exemption
  FOR EACH ROW EXECUTE FUNCTION caredata.keep_history();
COMMENT ON TRIGGER objection_history ON caredata.objection IS
  'history is kept: an objection changes only by being withdrawn, once';
COMMENT ON TRIGGER exemption_history ON caredata.exemption IS
  'history is kept: an exemption changes only by being revoked, once';

-- What is blocked: the policy, in one place.  A patient's data is blocked for
-- a purpose and dataset at a time when an objection covering the purpose is
-- in force then (a dissent only for its own study), no exemption for that
-- dataset, purpose and kind is in force, and no consent to that study is.
CREATE FUNCTION caredata.blocked_nhs_numbers(purpose text, dataset text, at timestamptz)
RETURNS TABLE (nhs_number caredata.nhs_number)
LANGUAGE sql STABLE PARALLEL SAFE
-- a standard SQL body: parsed once, here, so no caller's search_path can
-- change what it means; and with no SET clauses the planner inlines it, so
-- permitted() streams the numbers instead of materialising millions of rows
BEGIN ATOMIC
  SELECT o.nhs_number   -- a number blocked by two objections appears twice
  FROM caredata.objection o
  WHERE o.kind <> 'consent'
    AND o.effective_from <= blocked_nhs_numbers.at
    AND (o.withdrawn_at IS NULL OR o.withdrawn_at > blocked_nhs_numbers.at)
    AND blocked_nhs_numbers.purpose = ANY (o.purposes)
    AND (o.kind <> 'dissent' OR o.study = blocked_nhs_numbers.dataset)
    AND NOT EXISTS (
      SELECT 1 FROM caredata.exemption e
      WHERE e.dataset = blocked_nhs_numbers.dataset
        AND e.purpose = blocked_nhs_numbers.purpose
        AND e.objection_kind = o.kind
        AND e.granted_at <= blocked_nhs_numbers.at
        AND (e.expires_at IS NULL OR e.expires_at > blocked_nhs_numbers.at)
        AND (e.revoked_at IS NULL OR e.revoked_at > blocked_nhs_numbers.at))
    AND NOT EXISTS (
      SELECT 1 FROM caredata.objection c
      WHERE c.nhs_number = o.nhs_number AND c.kind = 'consent'
        AND c.study = blocked_nhs_numbers.dataset
        AND blocked_nhs_numbers.purpose = ANY (c.purposes)
        AND c.effective_from <= blocked_nhs_numbers.at
        AND (c.withdrawn_at IS NULL OR c.withdrawn_at > blocked_nhs_numbers.at));
END;
COMMENT ON FUNCTION caredata.blocked_nhs_numbers(text, text, timestamptz) IS
  'the NHS numbers whose data may not be used for a purpose and dataset at a time (a number may appear more than once): the objection policy in one query';

-- the blocked sets every backend shares (src/shared_set.c; with preloading)
CREATE FUNCTION caredata.blocked_sets()
RETURNS TABLE (register_version bigint, purpose text, dataset text, valid_from timestamptz, valid_until timestamptz,
               numbers bigint, bytes bigint, built_at timestamptz, shared_uses bigint)
  AS 'MODULE_PATHNAME', 'blocked_sets' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION caredata.blocked_sets() IS
  'the blocked NHS number sets in shared memory: register version, purpose, dataset, the times each answers for, size, when built, how many backends mapped it instead of building (never a number)';
REVOKE ALL ON FUNCTION caredata.blocked_sets() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.blocked_sets() TO caredata_admin;

-- The interval around at over which that answer cannot change: from the
-- latest register time at or before at to the earliest one after it.
CREATE FUNCTION caredata.blocked_interval(purpose text, dataset text, at timestamptz,
                                          OUT lo timestamptz, OUT hi timestamptz)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM caredata.purpose p WHERE p.name = blocked_interval.purpose) THEN
    RAISE EXCEPTION 'unknown purpose "%"', purpose
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Purposes are listed in caredata.purpose.';
  END IF;
  -- one pass over the register, one over the (small) exemption table
  SELECT greatest(o.lo1, o.lo2, e.lo), least(o.hi1, o.hi2, e.hi)
  FROM (SELECT max(effective_from) FILTER (WHERE effective_from <= at) AS lo1,
               min(effective_from) FILTER (WHERE effective_from > at) AS hi1,
               max(withdrawn_at) FILTER (WHERE withdrawn_at <= at) AS lo2,
               min(withdrawn_at) FILTER (WHERE withdrawn_at > at) AS hi2
        FROM caredata.objection) o,
       (SELECT max(t) FILTER (WHERE t <= at) AS lo, min(t) FILTER (WHERE t > at) AS hi
        FROM caredata.exemption, LATERAL (VALUES (granted_at), (expires_at), (revoked_at)) v(t)) e
  INTO lo, hi;
END
$$;
COMMENT ON FUNCTION caredata.blocked_interval(text, text, timestamptz) IS
  'the times around at between which blocked_nhs_numbers gives the same answer (NULL: unbounded)';
REVOKE ALL ON FUNCTION caredata.blocked_nhs_numbers(text, text, timestamptz),
  caredata.blocked_interval(text, text, timestamptz) FROM PUBLIC;

CREATE FUNCTION caredata.permitted(nhs_number caredata.nhs_number, purpose text)
RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.permitted(caredata.nhs_number, text) IS
  'true when no objection covering the purpose is in force now (the transaction start); answered from a per-backend in-memory copy of the register';
CREATE FUNCTION caredata.permitted(nhs_number caredata.nhs_number, purpose text,
                                   at timestamptz, dataset text DEFAULT NULL)
RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.permitted(caredata.nhs_number, text, timestamptz, text) IS
  'true when no objection covering the purpose (and dataset: a named study, exemptions) is in force at the time';

-- The row filter protect() attaches: permitted(), or the querying patient's
-- own record (subject access), in one call per row.
CREATE FUNCTION caredata.row_permitted(nhs_number caredata.nhs_number, purpose text)
RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.row_permitted(caredata.nhs_number, text) IS
  'the objection row filter of protect(): for a patient (caredata_patient, caredata.subject_access), true only for their own NHS number; for anyone else, permitted(nhs_number, purpose)';
CREATE FUNCTION caredata.row_permitted(nhs_number caredata.nhs_number, purpose text,
                                       at timestamptz, dataset text DEFAULT NULL)
RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.row_permitted(caredata.nhs_number, text, timestamptz, text) IS
  'the objection row filter of protect() for a dataset: for a patient, true only for their own NHS number; for anyone else, permitted(nhs_number, purpose, at, dataset)';

-- Subject access: which NHS number a patient-facing login role is.
CREATE TABLE caredata.subject_access (
  role regrole PRIMARY KEY,      -- the role itself (its OID), not its name: a role
                                 -- created later under a dropped role's name is not it
  nhs_number caredata.nhs_number NOT NULL,
  granted_at timestamptz NOT NULL DEFAULT now(),
  granted_by name NOT NULL DEFAULT current_user
);
COMMENT ON TABLE caredata.subject_access IS
  'patient-facing login roles (by OID) and the NHS number of the patient each one is (subject access)';
SELECT pg_catalog.pg_extension_config_dump('caredata.subject_access', '');

CREATE FUNCTION caredata.my_nhs_number() RETURNS caredata.nhs_number
  AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.my_nhs_number() IS
  'the NHS number of the current role in caredata.subject_access, NULL if it has none';

-- Feeds.  Every load is recorded, with counts and never numbers.
CREATE TABLE caredata.feed_load (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  feed text NOT NULL,
  source text NOT NULL,
  loaded_at timestamptz NOT NULL DEFAULT now(),
  loaded_by name NOT NULL DEFAULT current_user,
  rows_read bigint NOT NULL,
  invalid bigint NOT NULL,
  duplicates bigint NOT NULL,
  opened bigint NOT NULL,
  withdrawn bigint NOT NULL,
  unchanged bigint NOT NULL
);
COMMENT ON TABLE caredata.feed_load IS
  'every objection feed applied: counts read, invalid, duplicate, opened, withdrawn, unchanged (no NHS numbers)';
SELECT pg_catalog.pg_extension_config_dump('caredata.feed_load', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.feed_load_id_seq', '');

-- One feed at a time, never blocking readers: SHARE ROW EXCLUSIVE on the
-- register.  Taken as the register's owner, because caredata_admin writes
-- only some of its columns and LOCK wants table-wide write rights.
CREATE FUNCTION caredata.lock_register() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  LOCK TABLE caredata.objection IN SHARE ROW EXCLUSIVE MODE;
END
$$;
COMMENT ON FUNCTION caredata.lock_register() IS
  'take the feed lock on the objection register (SHARE ROW EXCLUSIVE: one feed at a time, readers never blocked) for the rest of the transaction';
REVOKE ALL ON FUNCTION caredata.lock_register() FROM PUBLIC;

CREATE FUNCTION caredata.apply_opt_out_snapshot(
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
  unchanged := distinct_valid - opened;
  DROP TABLE pg_temp.caredata_snapshot;

  INSERT INTO caredata.feed_load (feed, source, rows_read, invalid, duplicates, opened, withdrawn, unchanged)
  VALUES ('national_data_opt_out', source, rows_read, invalid, duplicates, opened, withdrawn, unchanged);
  PERFORM caredata.audit_append('feed.load', 'national_data_opt_out', jsonb_build_object('source', source, 'rows_read', rows_read, 'invalid', invalid, 'opened', opened, 'withdrawn', withdrawn, 'unchanged', unchanged));
END
$$;
COMMENT ON FUNCTION caredata.apply_opt_out_snapshot(regclass, name, text, timestamptz, boolean, boolean) IS
  'apply a full National Data Opt-out snapshot in one transaction: new numbers open objections, missing ones are withdrawn, the rest untouched; invalid numbers are counted and skipped';

-- Type 1 codes as they arrive in GP extracts, and what they mean.
CREATE TABLE caredata.type1_code (
  code text PRIMARY KEY,
  code_system text NOT NULL,
  meaning text NOT NULL CHECK (meaning IN ('dissent', 'withdrawn')),
  description text NOT NULL
);
COMMENT ON TABLE caredata.type1_code IS
  'clinical codes that record a Type 1 objection (dissent) or its withdrawal in GP extracts';
INSERT INTO caredata.type1_code VALUES
  ('827241000000103', 'snomed_ct', 'dissent', 'Dissent from secondary use of general practitioner patient identifiable data'),
  ('9Nu0.', 'read_v2', 'dissent', 'Dissent from secondary use of GP patient identifiable data'),
  ('9Nu0', 'read_v2', 'dissent', 'Dissent from secondary use of GP patient identifiable data (without the Read v2 padding dot)'),
  ('827261000000102', 'snomed_ct', 'withdrawn', 'Dissent withdrawn for secondary use of general practitioner patient identifiable data'),
  ('9Nu1.', 'read_v2', 'withdrawn', 'Dissent withdrawn re secondary use of GP patient identifiable data'),
  ('9Nu1', 'read_v2', 'withdrawn', 'Dissent withdrawn re secondary use of GP patient identifiable data (without the Read v2 padding dot)');
SELECT pg_catalog.pg_extension_config_dump('caredata.type1_code',
  $$WHERE code NOT IN ('827241000000103', '9Nu0.', '9Nu0', '827261000000102', '9Nu1.', '9Nu1')$$);

CREATE FUNCTION caredata.apply_type1_codes(
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
COMMENT ON FUNCTION caredata.apply_type1_codes(regclass, name, name, name, text, boolean) IS
  'apply Type 1 codes from a GP extract: each patient''s dissent and withdrawal codes, in time order, open, withdraw or record (as history) their Type 1 objections';

CREATE FUNCTION caredata.record_objection(nhs_number caredata.nhs_number, kind text,
  source text, effective_from timestamptz DEFAULT now(), study text DEFAULT NULL,
  purposes text[] DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
DECLARE
  covers text[] := coalesce(purposes, caredata.default_purposes(kind));
  new_id bigint;
BEGIN
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
COMMENT ON FUNCTION caredata.record_objection(caredata.nhs_number, text, text, timestamptz, text, text[]) IS
  'record one objection (or consent to a named study) as of a time; purposes default by kind';

CREATE FUNCTION caredata.withdraw_objection(id bigint, at timestamptz DEFAULT now()) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
BEGIN
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
COMMENT ON FUNCTION caredata.withdraw_objection(bigint, timestamptz) IS
  'end an objection at a time; the row is kept as history';

CREATE FUNCTION caredata.grant_exemption(dataset text, purpose text, objection_kind text,
  legal_basis text, reference text, expires_at timestamptz DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
DECLARE
  new_id bigint;
BEGIN
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
COMMENT ON FUNCTION caredata.grant_exemption(text, text, text, text, text, timestamptz) IS
  'exempt one dataset and purpose from one objection kind, with its legal basis and reference; recorded with who and when';

CREATE FUNCTION caredata.revoke_exemption(id bigint) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
BEGIN
  UPDATE caredata.exemption e SET revoked_at = now()   -- revoked_by: the keep_history trigger
  WHERE e.id = revoke_exemption.id AND e.revoked_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no exemption % in force to revoke', id USING ERRCODE = 'no_data_found';
  END IF;
  PERFORM caredata.audit_append('exemption.revoke', id::text);
END
$$;
COMMENT ON FUNCTION caredata.revoke_exemption(bigint) IS
  'revoke an exemption from now on; the row is kept as history';

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
SET search_path = pg_catalog, caredata, pg_temp
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
    EXECUTE format('DROP POLICY caredata_objection ON %s', t.relid);
    EXECUTE format('DROP POLICY caredata_subject ON %s', t.relid);
    IF t.added_base_policy THEN
      EXECUTE format('DROP POLICY caredata_base ON %s', t.relid);
    END IF;
    IF t.enabled_rls THEN
      EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY', t.relid);
    END IF;
    -- statistics again at the default target, from the next ANALYZE
    IF EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = t.relid AND a.attname = t.nhs_column AND NOT a.attisdropped) THEN
      EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS -1', t.relid, t.nhs_column);
    END IF;
  END LOOP;
  DELETE FROM caredata.protected_table p WHERE p.root = tab;
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
  -- an expression index made on a protected table keeps no statistics
  IF tg_tag = 'CREATE INDEX' THEN
    PERFORM caredata._forget_statistics(p.relid) FROM caredata.protected_table p
      WHERE EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p.relid);
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
     AND NOT EXISTS (SELECT 1 FROM caredata.publication p
                      WHERE c.relnamespace = 'published'::regnamespace AND c.relname = p.name);
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

-- privileges: the register is the admin's; filtering is everyone's who may
-- read protected data; nothing here is open to PUBLIC
REVOKE ALL ON caredata.purpose, caredata.objection, caredata.exemption, caredata.register_version,
  caredata.subject_access, caredata.feed_load, caredata.type1_code, caredata.protected_table FROM PUBLIC;
GRANT SELECT ON caredata.purpose, caredata.type1_code TO caredata_admin, caredata_linker, caredata_analyst;
GRANT SELECT, INSERT, UPDATE ON caredata.subject_access, caredata.type1_code, caredata.purpose
  TO caredata_admin;
-- the register's who and when are the server's (column defaults), and only
-- the end of a row may be written later (the keep_history trigger: once)
GRANT SELECT ON caredata.objection, caredata.exemption TO caredata_admin;
GRANT INSERT (nhs_number, kind, purposes, study, effective_from, withdrawn_at, source),
  UPDATE (withdrawn_at) ON caredata.objection TO caredata_admin;
GRANT INSERT (dataset, purpose, objection_kind, legal_basis, reference, expires_at),
  UPDATE (revoked_at) ON caredata.exemption TO caredata_admin;
GRANT SELECT, INSERT ON caredata.feed_load TO caredata_admin;
GRANT SELECT, INSERT, DELETE ON caredata.protected_table TO caredata_admin;
GRANT SELECT ON caredata.register_version TO caredata_admin;
GRANT USAGE ON SEQUENCE caredata.objection_id_seq, caredata.exemption_id_seq, caredata.feed_load_id_seq
  TO caredata_admin;
GRANT DELETE ON caredata.subject_access TO caredata_admin;

REVOKE ALL ON FUNCTION
  caredata.permitted(caredata.nhs_number, text), caredata.permitted(caredata.nhs_number, text, timestamptz, text),
  caredata.row_permitted(caredata.nhs_number, text), caredata.row_permitted(caredata.nhs_number, text, timestamptz, text),
  caredata.my_nhs_number(),
  caredata.apply_opt_out_snapshot(regclass, name, text, timestamptz, boolean, boolean),
  caredata.apply_type1_codes(regclass, name, name, name, text, boolean),
  caredata.record_objection(caredata.nhs_number, text, text, timestamptz, text, text[]),
  caredata.withdraw_objection(bigint, timestamptz),
  caredata.grant_exemption(text, text, text, text, text, timestamptz),
  caredata.revoke_exemption(bigint),
  caredata.protect(regclass, name, text, text), caredata.unprotect(regclass),
  caredata._protect_one(regclass, name, text, text, regclass), caredata._hierarchy(regclass),
  caredata._protect_hierarchy(), caredata._forget_statistics(regclass),
  caredata._unfiltered_views(regclass), caredata._refuse_unfiltered_views(), caredata._unfiltered_views_guard()
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  caredata.permitted(caredata.nhs_number, text), caredata.permitted(caredata.nhs_number, text, timestamptz, text),
  caredata.row_permitted(caredata.nhs_number, text), caredata.row_permitted(caredata.nhs_number, text, timestamptz, text),
  caredata.my_nhs_number()
  TO caredata_admin, caredata_linker, caredata_analyst;
-- a patient needs row_permitted() to read a protected table (the filter
-- runs as the querying role); for a patient it answers only "is this my
-- own record", so it tells nothing about anyone else's objections
GRANT EXECUTE ON FUNCTION
  caredata.row_permitted(caredata.nhs_number, text), caredata.row_permitted(caredata.nhs_number, text, timestamptz, text),
  caredata.my_nhs_number()
  TO caredata_patient;
GRANT EXECUTE ON FUNCTION
  caredata.lock_register(),
  caredata.apply_opt_out_snapshot(regclass, name, text, timestamptz, boolean, boolean),
  caredata.apply_type1_codes(regclass, name, name, name, text, boolean),
  caredata.record_objection(caredata.nhs_number, text, text, timestamptz, text, text[]),
  caredata.withdraw_objection(bigint, timestamptz),
  caredata.grant_exemption(text, text, text, text, text, timestamptz),
  caredata.revoke_exemption(bigint),
  caredata.protect(regclass, name, text, text), caredata.unprotect(regclass),
  caredata._protect_one(regclass, name, text, text, regclass), caredata._hierarchy(regclass),
  caredata._forget_statistics(regclass), caredata._refuse_unfiltered_views()
  TO caredata_admin;
