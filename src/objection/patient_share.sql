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
