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
