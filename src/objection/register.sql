-- src/objection/register.sql
-- The objection register: purposes, objections and their history,
-- exemptions, the register version, the blocking policy in SQL a DBA can
-- read (caredata.blocked_nhs_numbers), the filter functions (the per-row
-- fast path is src/objection/permitted.c), subject access, and the admin's calls
-- that record objections and exemptions.

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
RETURN CASE kind
    WHEN 'national_data_opt_out' THEN ARRAY['research', 'planning', 'commissioning']
    WHEN 'type1' THEN ARRAY['research', 'planning', 'commissioning']
    WHEN 'dissent' THEN ARRAY['research']
    WHEN 'consent' THEN ARRAY['research']
  END;
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
  AS 'MODULE_PATHNAME', 'keep_history' LANGUAGE C PARALLEL UNSAFE;
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

-- the blocked sets every backend shares (src/objection/set_shared.c; with preloading)
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
COMMENT ON FUNCTION caredata.record_objection(caredata.nhs_number, text, text, timestamptz, text, text[]) IS
  'record one objection (or consent to a named study) as of a time; purposes default by kind';

CREATE FUNCTION caredata.withdraw_objection(id bigint, at timestamptz DEFAULT now()) RETURNS void
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
COMMENT ON FUNCTION caredata.grant_exemption(text, text, text, text, text, timestamptz) IS
  'exempt one dataset and purpose from one objection kind, with its legal basis and reference; recorded with who and when';

CREATE FUNCTION caredata.revoke_exemption(id bigint) RETURNS void
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
COMMENT ON FUNCTION caredata.revoke_exemption(bigint) IS
  'revoke an exemption from now on; the row is kept as history';


-- Without the preloaded filter (src/base/preload.h) the register protects no one:
-- every way of writing it (record_objection, the feeds, exemptions, plain
-- DML) refuses at once, with a hint naming shared_preload_libraries.
CREATE TRIGGER objection_requires_preload BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON caredata.objection
  FOR EACH STATEMENT EXECUTE FUNCTION caredata._require_preload_trigger();
CREATE TRIGGER exemption_requires_preload BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON caredata.exemption
  FOR EACH STATEMENT EXECUTE FUNCTION caredata._require_preload_trigger();
COMMENT ON TRIGGER objection_requires_preload ON caredata.objection IS
  'objections are recorded only where caredata was loaded at server start (the filter that honours them needs it)';
COMMENT ON TRIGGER exemption_requires_preload ON caredata.exemption IS
  'exemptions are recorded only where caredata was loaded at server start (the filter that honours them needs it)';
