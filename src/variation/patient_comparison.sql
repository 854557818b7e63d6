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
