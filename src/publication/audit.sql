-- src/publication/audit.sql
-- The audit log: every privileged step (key and domain operations, feed
-- loads, exemptions, protections, linkage runs; later publications and
-- re-identifications), who, when, what and why, in an append-only table
-- (each step's function appends its entry, in the step's transaction; not
-- triggers on the catalogs, which would fire again when a dump is restored)
-- whose rows are hash-chained.  audit_verify() recomputes the chain: an
-- entry edited, inserted or deleted by hand (even by the owner, who can get
-- past the triggers that refuse UPDATE, DELETE and TRUNCATE) breaks it.
-- The triggers fire ALWAYS, so session_replication_role = replica does not
-- get past them; audit_head has its own guard (it only moves forward); and
-- every committed append writes the new head's id and hash to the server
-- log (src/publication/audit.c), a witness outside the database that
-- audit_verify(expected_id, expected_hash) checks the table against.
--
-- The hash of an entry is sha256(previous hash || its canonical text), the
-- canonical text being the JSON array [id, time (UTC, microseconds), login,
-- action, object, detail, justification].  audit_head keeps the last id
-- and hash, so that deleting the newest entries is seen too.  The chain
-- has no secret: whoever can disable the triggers, rewrite every row and
-- recompute every hash can forge it; the server log's witness catches that
-- (docs/security.md, "What a superuser can hide").  No entry holds an NHS
-- number or key material.

CREATE TABLE caredata.audit_log (
  id             bigint PRIMARY KEY,
  at             timestamptz NOT NULL,
  actor          name NOT NULL,
  action         text NOT NULL,
  object         text,
  detail         jsonb,
  justification  text,
  prev_hash      bytea NOT NULL,
  hash           bytea NOT NULL
);
COMMENT ON TABLE caredata.audit_log IS
  'append-only, hash-chained log of privileged steps: who (the login), when, what (action, object, detail) and why (justification); check it with caredata.audit_verify()';

CREATE TABLE caredata.audit_head (
  one        boolean PRIMARY KEY DEFAULT true CHECK (one),
  last_id    bigint NOT NULL,
  last_hash  bytea NOT NULL
);
COMMENT ON TABLE caredata.audit_head IS
  'the newest audit entry''s id and hash (one row), so that deleting the newest entries breaks the chain too';
-- no row until the first entry (so that a restored dump brings its own)

CREATE FUNCTION caredata._audit_text(id bigint, at timestamptz, actor name, action text, object text,
                                     detail jsonb, justification text) RETURNS bytea
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN convert_to(jsonb_build_array(id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), actor::text,
                                      action, object, detail, justification)::text, 'UTF8');
COMMENT ON FUNCTION caredata._audit_text(bigint, timestamptz, name, text, text, jsonb, text) IS
  'internal: the canonical text of an audit entry that its hash covers';

-- On a Citus cluster the audit log, the linkage models and the person
-- index are the coordinator's: a call pushed down to a worker (in a query
-- over a distributed table) would write or read that worker's own, empty
-- copies.  Such calls refuse there (docs/scale-out.md).
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

-- the witness: the new head's id and hash, written to the server log when
-- the transaction that appended it commits (src/publication/audit.c)
CREATE FUNCTION caredata._audit_witness(id bigint, hash bytea) RETURNS void
  AS 'MODULE_PATHNAME', 'caredata_audit_witness' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._audit_witness(bigint, bytea) IS
  'internal: write this audit head (id and hash, nothing else) to the server log when the transaction commits';

-- append one entry for a given login; entries are serialised by the head
-- row's lock.  Internal: audit_append() passes the session's login, the
-- re-identification worker (src/publication/reidentify.c) the caller's.
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

-- append one entry in the name of the session's login
CREATE FUNCTION caredata.audit_append(action text, object text DEFAULT NULL, detail jsonb DEFAULT NULL,
                                      justification text DEFAULT NULL) RETURNS bigint
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN caredata._audit_append_as(session_user, action, object, detail, justification);
END
$$;
COMMENT ON FUNCTION caredata.audit_append(text, text, jsonb, text) IS
  'append an entry to the audit log (the login, now, the action, its object, details and justification); returns its id';

CREATE FUNCTION caredata.audit_verify() RETURNS boolean
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e caredata.audit_log;
  prev bytea := '\x'::bytea;
  expect bigint := 1;
  h caredata.audit_head;
BEGIN
  FOR e IN SELECT * FROM caredata.audit_log ORDER BY id LOOP
    IF e.id <> expect THEN
      RAISE NOTICE 'audit entry % is missing (the next entry is %)', expect, e.id;
      RETURN false;
    END IF;
    IF e.prev_hash <> prev THEN
      RAISE NOTICE 'audit entry % does not follow entry %: an entry was changed, inserted or deleted', e.id, e.id - 1;
      RETURN false;
    END IF;
    IF e.hash <> sha256(prev || caredata._audit_text(e.id, e.at, e.actor, e.action, e.object, e.detail, e.justification)) THEN
      RAISE NOTICE 'audit entry % was changed after it was written', e.id;
      RETURN false;
    END IF;
    prev := e.hash;
    expect := e.id + 1;
  END LOOP;
  SELECT * INTO h FROM caredata.audit_head WHERE one;
  IF NOT FOUND THEN
    h.last_id := 0;
    h.last_hash := '\x'::bytea;
  END IF;
  IF h.last_id IS DISTINCT FROM expect - 1 OR h.last_hash IS DISTINCT FROM prev THEN
    RAISE NOTICE 'audit entries after % are missing (the newest written was %)', expect - 1, h.last_id;
    RETURN false;
  END IF;
  RETURN true;
END
$$;
COMMENT ON FUNCTION caredata.audit_verify() IS
  'true while the audit log''s hash chain is intact; false, with a NOTICE naming the first broken entry, once any entry was edited, inserted or deleted by hand';

-- against a witness kept outside the database (the server log's
-- "caredata audit head" lines, or a copy of audit_head): the chain is
-- intact and still holds that entry with that hash
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

-- append-only through SQL: UPDATE, DELETE and TRUNCATE are refused, and
-- the head only moves forward.  The triggers fire ALWAYS: with
-- session_replication_role = replica too (an owner or superuser who drops
-- or disables them is caught by the witness, audit_verify(id, hash))
CREATE FUNCTION caredata._audit_refuse() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'the audit log is append-only',
    HINT = 'Entries are added by caredata.audit_append() and never changed.';
END
$$;
COMMENT ON FUNCTION caredata._audit_refuse() IS 'internal: refuses changes to the audit log';
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON caredata.audit_log
  FOR EACH ROW EXECUTE FUNCTION caredata._audit_refuse();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON caredata.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION caredata._audit_refuse();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE OR DELETE ON caredata.audit_head
  FOR EACH STATEMENT EXECUTE FUNCTION caredata._audit_refuse();

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

REVOKE ALL ON caredata.audit_log, caredata.audit_head FROM PUBLIC;
GRANT SELECT ON caredata.audit_log TO caredata_admin;
REVOKE ALL ON FUNCTION caredata._coordinator_only(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata._coordinator_only(text) TO caredata_admin, caredata_linker;
REVOKE ALL ON FUNCTION caredata.audit_append(text, text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.audit_append(text, text, jsonb, text) TO caredata_admin, caredata_linker, caredata_reidentifier;
REVOKE ALL ON FUNCTION caredata.audit_verify() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.audit_verify() TO caredata_admin;
REVOKE ALL ON FUNCTION caredata.audit_verify(bigint, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.audit_verify(bigint, bytea) TO caredata_admin;
REVOKE ALL ON FUNCTION caredata._audit_witness(bigint, bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION caredata._audit_append_as(name, text, text, jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION caredata._audit_head_forward() FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('caredata.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.audit_head', '');
REVOKE ALL ON FUNCTION caredata._audit_text(bigint, timestamptz, name, text, text, jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION caredata._audit_refuse() FROM PUBLIC;
