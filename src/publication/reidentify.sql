-- src/publication/reidentify.sql
-- Re-identification: from a recipient's pseudonym back to the NHS number,
-- for caredata_reidentifier only, with a justification, audited before it
-- answers, at most caredata.reidentify_per_hour times an hour per login.
--
-- HMAC pseudonyms are one-way by design, so the way back is the protected
-- map the publisher already keeps (caredata.pseudonym_map, readable by the
-- linker and admin roles only).  Its risk is the risk of that table: whoever
-- reads it can re-identify every published row of its domains; it holds
-- only domains that were published, at their current key version.  The
-- alternative, reversible deterministic encryption, would make every
-- pseudonym reversible by whoever gets the key, and was not chosen.
--
-- The answer leaves only after its audit entry, and the count the hourly
-- limit reads, are committed: a background worker (src/publication/reidentify.c) counts,
-- looks up, appends and commits in a transaction of its own, whatever the
-- caller's transaction does afterwards (ROLLBACK, a failed savepoint, an
-- exception, a killed backend); if the worker cannot commit, no answer.

-- run by the worker, as the extension's owner, in its own transaction: the
-- head row's lock serialises every login's calls, so two at once cannot both
-- pass the limit
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

CREATE FUNCTION caredata.reidentify(pseudonym caredata.pseudonym, justification text)
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
