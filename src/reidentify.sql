-- src/reidentify.sql
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
CREATE FUNCTION caredata.reidentify(pseudonym caredata.pseudonym, justification text)
  RETURNS caredata.nhs_number
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  per_hour integer;
  used bigint;
  v_nhs caredata.nhs_number;
  dom text;
BEGIN
  IF length(btrim(coalesce(justification, ''))) < 20 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a re-identification needs a justification',
      HINT = 'Say why, in at least 20 characters (the legal basis and the case reference); it is kept in the audit log.';
  END IF;
  -- the setting is defined by caredata's library: load it first
  PERFORM '9434765919'::caredata.nhs_number;
  per_hour := coalesce(current_setting('caredata.reidentify_per_hour', true), '20')::integer;
  SELECT count(*) INTO used FROM caredata.audit_log a
   WHERE a.action = 'reidentify' AND a.actor = session_user AND a.at > clock_timestamp() - interval '1 hour';
  IF used >= per_hour THEN
    RAISE EXCEPTION USING ERRCODE = '54000',
      MESSAGE = format('re-identification limit reached: %s in the last hour', used),
      HINT = 'caredata.reidentify_per_hour sets the limit per login (superuser-only).';
  END IF;
  SELECT m.nhs_number, m.domain INTO v_nhs, dom FROM caredata.pseudonym_map m
   WHERE m.pseudonym OPERATOR(caredata.=) reidentify.pseudonym;
  -- audited before it answers, found or not (the entry names the pseudonym, never the NHS number)
  PERFORM caredata.audit_append('reidentify', pseudonym::text,
    jsonb_build_object('domain', dom, 'found', v_nhs IS NOT NULL), justification);
  RETURN v_nhs;
END
$$;
COMMENT ON FUNCTION caredata.reidentify(caredata.pseudonym, text) IS
  'the NHS number behind a published pseudonym (NULL when there is none), for caredata_reidentifier only: needs a justification of 20 characters or more, is audited before it answers, at most caredata.reidentify_per_hour times an hour per login';
REVOKE ALL ON FUNCTION caredata.reidentify(caredata.pseudonym, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.reidentify(caredata.pseudonym, text) TO caredata_reidentifier;
