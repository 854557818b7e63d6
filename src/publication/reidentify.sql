-- src/publication/reidentify.sql
-- Re-identification: from a recipient's pseudonym back to the NHS number,
-- for caredata_reidentifier only, under a registered approval, with a
-- justification, audited before it answers, at most
-- caredata.reidentify_per_hour times an hour per login.
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

-- Every re-identification names the approval it is made under
-- (caredata.approval, src/publication/approval.sql) and the purpose it is for:
-- the approval must be registered, not revoked, within its dates, cover the
-- purpose (and the dataset, when it names datasets) and name a role the
-- login is a member of.  reidentify() checks that before it starts the
-- worker (a clear refusal, nothing disclosed, nothing audited), and the
-- worker checks it again in the transaction that commits the entry, so a
-- revocation racing the call cannot slip between the two.  When the
-- national data opt-out applies to the approval and the person has an
-- objection in force for the purpose (caredata.permitted(), the register's
-- policy, exemptions included), the call is refused after the lookup; that
-- refusal is committed to the audit log like an answer (it counts towards
-- the hourly limit) and the NHS number never leaves the worker.

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
