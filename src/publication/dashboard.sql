-- src/publication/dashboard.sql
-- What a BI tool needs beside the numbers (issue 26): labels for codes,
-- and publications of aggregates only.
--
-- Labels: caredata.code_label holds, per vocabulary (sex, specialty,
-- provider, or one an admin adds), each code's label.  A publication's spec
-- may ask for them ("labels": {"sex": "sex", "specialty": "specialty"}):
-- the view then carries <column>_label beside the codes, so that a
-- dashboard shows "Female", not "2".  A code without a label shows as
-- itself; 'other' (a "group" column's rare codes) stays 'other'.
--
-- Aggregate-only publications: caredata.publish_aggregates() publishes a
-- view of protected numbers by organisation, team or clinician (the
-- spec's "by" columns): people, people with the outcome, its rate, and the
-- funnel plot's row for each unit, all as the disclosure-control policy in
-- force for the reader (caredata.sdc_policy_in_force(), set by an admin
-- with caredata.assign_sdc_policy()) publishes them.  The view holds no
-- record, no pseudonym and no unit of fewer people than the policy shows;
-- objectors for the purpose are left out before anything is counted.
-- docs/publication.md, "Dashboards".

CREATE TABLE caredata.code_label (
  vocabulary  text NOT NULL CHECK (vocabulary ~ '^[a-z][a-z0-9_]{0,62}$'),
  code        text NOT NULL CHECK (length(code) BETWEEN 1 AND 64),
  label       text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
  source      text,
  builtin     boolean NOT NULL DEFAULT false,
  PRIMARY KEY (vocabulary, code)
);
COMMENT ON TABLE caredata.code_label IS
  'labels of codes, per vocabulary (sex and specialty built in, from the NHS Data Dictionary; provider and others added by caredata_admin): what a publication''s "labels" show beside its codes';
REVOKE ALL ON caredata.code_label FROM PUBLIC;
-- labels are public knowledge: any role may read them, and join them itself
GRANT SELECT ON caredata.code_label TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON caredata.code_label TO caredata_admin;
SELECT pg_catalog.pg_extension_config_dump('caredata.code_label', 'WHERE NOT builtin');

INSERT INTO caredata.code_label (vocabulary, code, label, source, builtin)
SELECT 'sex', c, l, 'NHS Data Dictionary, Person Phenotypic Sex / HES SEX (0, 1, 2, 9) and Person Stated Gender Code (X)', true
  FROM (VALUES ('0', 'Not known'), ('1', 'Male'), ('2', 'Female'), ('9', 'Not specified'), ('X', 'Not known')) v(c, l)
UNION ALL
SELECT 'specialty', c, l, 'NHS Data Dictionary, Main Specialty and Treatment Function codes', true
  FROM (VALUES ('100', 'General Surgery'), ('101', 'Urology'), ('110', 'Trauma and Orthopaedics'),
               ('120', 'Ear, Nose and Throat'), ('130', 'Ophthalmology'), ('140', 'Oral Surgery'),
               ('150', 'Neurosurgery'), ('160', 'Plastic Surgery'), ('170', 'Cardiothoracic Surgery'),
               ('180', 'Emergency Medicine'), ('300', 'General Internal Medicine'), ('301', 'Gastroenterology'),
               ('302', 'Endocrinology'), ('320', 'Cardiology'), ('330', 'Dermatology'),
               ('340', 'Respiratory Medicine'), ('400', 'Neurology'), ('410', 'Rheumatology'),
               ('420', 'Paediatrics'), ('430', 'Geriatric Medicine'), ('501', 'Obstetrics'),
               ('502', 'Gynaecology'), ('560', 'Midwifery'), ('700', 'Learning Disability'),
               ('710', 'Adult Mental Illness'), ('800', 'Clinical Oncology')) v(c, l);

-- a code's label in a vocabulary, NULL when it has none
CREATE FUNCTION caredata.label_of(vocabulary text, code text) RETURNS text
  LANGUAGE sql STABLE STRICT PARALLEL SAFE
  RETURN (SELECT l.label FROM caredata.code_label l
           WHERE l.vocabulary OPERATOR(pg_catalog.=) label_of.vocabulary AND l.code OPERATOR(pg_catalog.=) label_of.code);
COMMENT ON FUNCTION caredata.label_of(text, text) IS
  'a code''s label in a vocabulary of caredata.code_label (label_of(''sex'', ''2'') = ''Female''); NULL when it has none';

-- what a spec's "labels" may say: published columns (kept or grouped)
-- and vocabularies that have labels; checked as the role publishing
CREATE FUNCTION caredata._publication_labels_check(spec jsonb, allowed text[]) RETURNS void
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c record;
BEGIN
  IF NOT spec ? 'labels' THEN
    RETURN;
  END IF;
  IF jsonb_typeof(spec->'labels') IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication''s "labels" map its columns to vocabularies',
      HINT = 'For example {"sex": "sex", "specialty": "specialty", "provider_code": "provider"} (see caredata.code_label).';
  END IF;
  FOR c IN SELECT key, value FROM jsonb_each(spec->'labels') LOOP
    IF NOT c.key = ANY (allowed) THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('column "%s" has labels but is not published as codes', c.key),
        HINT = 'Label columns the spec publishes as "keep" or "group" (or, for publish_aggregates, its "by" columns).';
    END IF;
    IF jsonb_typeof(c.value) IS DISTINCT FROM 'string'
       OR NOT EXISTS (SELECT 1 FROM caredata.code_label l WHERE l.vocabulary = c.value #>> '{}') THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('no labels in vocabulary %s', c.value),
        HINT = 'Name a vocabulary of caredata.code_label (sex, specialty, or one an admin has filled, such as provider).';
    END IF;
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata._publication_labels_check(jsonb, text[]) IS
  'internal: checks a spec''s "labels": each a published code column (among allowed) mapped to a vocabulary of caredata.code_label that has labels';

-- a published query with its label columns added (<column>_label), its
-- columns named as the view names them
CREATE FUNCTION caredata._publication_labelled(spec jsonb, body text) RETURNS text
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  extra text;
BEGIN
  IF NOT spec ? 'labels' THEN
    RETURN body;
  END IF;
  SELECT string_agg(format(', CASE WHEN q.%1$I IS NULL THEN NULL WHEN q.%1$I::text OPERATOR(pg_catalog.=) ''other'' AND %3$s THEN ''other'' '
                           'ELSE coalesce(caredata.label_of(%2$L, q.%1$I::text), q.%1$I::text) END AS %4$I',
                           c.key, c.value, CASE WHEN spec #>> ARRAY['columns', c.key] IS NOT DISTINCT FROM 'group' THEN 'true' ELSE 'false' END, c.key || '_label'), '' ORDER BY c.key)
    INTO extra FROM jsonb_each_text(spec->'labels') c;
  RETURN format('SELECT q.*%s FROM (%s) q', extra, body);
END
$$;
COMMENT ON FUNCTION caredata._publication_labelled(jsonb, text) IS
  'internal: a publication''s query with <column>_label beside each labelled column (the code''s label, else the code; ''other'' stays)';

-- The query of an aggregate-only publication, read as the view's owner:
-- per unit (the "by" columns), people, people with the outcome and its
-- rate (safe aggregates: the reader's policy in force), and the unit's
-- funnel plot row (caredata._funnel on the true counts, showing what the
-- same policy publishes; a proportion, PR).  Objectors for the purpose are
-- left out first; the reader is checked.
CREATE FUNCTION caredata._publication_aggregate_query(p caredata.publication) RETURNS text
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  by_cols text[] := ARRAY(SELECT jsonb_array_elements_text(p.spec->'by'));
  outcome text := p.spec->>'outcome';
  rows caredata.publication := p;
  sel text;
  grp text;
  ugrp text;
  unit text;
BEGIN
  -- the records as a record-level publication of the units and the
  -- outcome would read them (stored pseudonyms, objectors left out, the
  -- reader checked: _publication_base), never shown: only counted
  rows.spec := p.spec || jsonb_build_object('columns',
    (SELECT jsonb_object_agg(c, 'keep') FROM unnest(by_cols || CASE WHEN outcome IS NULL THEN '{}'::text[] ELSE ARRAY[outcome] END) c));
  sel := (SELECT string_agg(format('b.%I::text AS %I', b, b), ', ') FROM unnest(by_cols) b);
  grp := (SELECT string_agg(format('r.%I', b), ', ') FROM unnest(by_cols) b);
  ugrp := (SELECT string_agg(format('u.%I', b), ', ') FROM unnest(by_cols) b);
  unit := (SELECT format('pg_catalog.concat_ws('' / '', %s)', string_agg(format('coalesce(r.%I, ''unknown'')', b), ', ')) FROM unnest(by_cols) b);
  RETURN format($q$
    WITH r AS MATERIALIZED (
      SELECT %1$s, b.person, %2$s AS outcome FROM (%3$s) b
    ), u AS (
      SELECT %4$s, %5$s AS unit,
             caredata.safe_count(r.person) AS persons,
             caredata.safe_count(r.person) FILTER (WHERE r.outcome) AS outcome_persons,
             caredata.safe_rate(r.outcome, r.person) AS outcome_rate,
             pg_catalog.count(DISTINCT r.person) AS _n,
             pg_catalog.count(DISTINCT r.person) FILTER (WHERE r.outcome) AS _e
        FROM r GROUP BY %4$s
    ), f AS (
      SELECT f.* FROM (SELECT pg_catalog.array_agg(u.unit) AS k, pg_catalog.array_agg(u._e::text) AS n, pg_catalog.array_agg(u._n::text) AS d FROM u) a,
             caredata._funnel(a.k, a.n, a.d, 'PR', 'tau2', 'SHMI', 0.1, 99.8, NULL) f
       WHERE %6$s
    )
    SELECT %7$s, u.unit, u.persons, %8$s
           f.numerator AS funnel_numerator, f.denominator AS funnel_denominator, f.ratio AS funnel_ratio,
           f.lower_998 AS funnel_lower_998, f.lower_95 AS funnel_lower_95, f.upper_95 AS funnel_upper_95, f.upper_998 AS funnel_upper_998,
           f.band AS funnel_band, f.outlier AS funnel_outlier, coalesce(f.suppressed, u.persons IS NULL) AS suppressed
      FROM u LEFT JOIN f ON f.unit OPERATOR(pg_catalog.=) u.unit$q$,
    sel,
    CASE WHEN outcome IS NULL THEN 'false'
         ELSE format('coalesce((b.%I)::integer OPERATOR(pg_catalog.<>) 0, false)', outcome) END,
    caredata._publication_base(rows, 0, false),
    grp, unit, CASE WHEN outcome IS NULL THEN 'false' ELSE 'true' END, ugrp,
    CASE WHEN outcome IS NULL THEN '' ELSE 'u.outcome_persons, u.outcome_rate,' END);
END
$$;
COMMENT ON FUNCTION caredata._publication_aggregate_query(caredata.publication) IS
  'internal: an aggregate-only publication''s query: per unit, people, people with the outcome and its rate, and the funnel row, as the reader''s disclosure-control policy publishes them; objectors left out';

-- what an aggregate-only spec may say (checked by _publication_check, as
-- the role publishing): one to three "by" columns of the source, none a
-- direct identifier; an "outcome" column that is boolean or a number
CREATE FUNCTION caredata._publication_aggregates_check(spec jsonb, source regclass) RETURNS void
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b text;
  why text;
  t regtype;
BEGIN
  IF jsonb_typeof(spec->'by') IS DISTINCT FROM 'array' OR jsonb_array_length(spec->'by') NOT BETWEEN 1 AND 3
     OR EXISTS (SELECT 1 FROM jsonb_array_elements(spec->'by') e WHERE jsonb_typeof(e) <> 'string') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an aggregate publication names the units it counts by',
      HINT = 'Set "by" to one to three columns: the organisation, team or clinician, for example ["provider_code"] or ["provider_code", "specialty"].';
  END IF;
  IF spec->'columns' IS DISTINCT FROM '{}'::jsonb THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an aggregate publication publishes no columns, only numbers by unit',
      HINT = 'Name the units in "by"; use caredata.publish() for a record-level view.';
  END IF;
  FOR b IN SELECT jsonb_array_elements_text(spec->'by') UNION ALL SELECT spec->>'outcome' WHERE spec ? 'outcome' LOOP
    SELECT a.atttypid::regtype INTO t FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = source AND a.attname = b AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = '42703', MESSAGE = format('column "%s" is not in %s', b, source),
        HINT = 'Name the source''s columns in "by" and "outcome".';
    END IF;
    why := caredata._direct_identifier(source, b);
    IF why IS NOT NULL OR b = spec->>'nhs_column' THEN
      RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format('column "%s" is a direct identifier (%s) and cannot be a unit or an outcome', b, coalesce(why, 'an NHS number')),
        HINT = 'Count by an organisation, team or clinician code.';
    END IF;
  END LOOP;
  IF spec ? 'outcome' AND NOT (SELECT a.atttypid::regtype FROM pg_catalog.pg_attribute a
                                WHERE a.attrelid = source AND a.attname = spec->>'outcome' AND NOT a.attisdropped)
                              = ANY (ARRAY['boolean', 'smallint', 'integer', 'bigint', 'numeric']::regtype[]) THEN
    RAISE EXCEPTION USING ERRCODE = '42804', MESSAGE = format('outcome column "%s" is neither boolean nor a number', spec->>'outcome'),
      HINT = 'The outcome is true (or non-zero) for a person''s record with the event, such as died_30d.';
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._publication_aggregates_check(jsonb, regclass) IS
  'internal: checks an aggregate-only spec: one to three "by" columns of the source, none a direct identifier, and a boolean or numeric "outcome"';

CREATE FUNCTION caredata.publish_aggregates(name text, source regclass, spec jsonb, recipient name)
  RETURNS regclass LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  full_spec jsonb := jsonb_build_object('nhs_column', 'nhs_number') || coalesce(spec, '{}')
                     || jsonb_build_object('kind', 'aggregates', 'columns', coalesce(spec->'columns', '{}'));
BEGIN
  PERFORM caredata._catalog_write('caredata.publish_aggregates()');
  IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication name is lower-case letters, digits and _',
      HINT = 'It names the view published.<name>.';
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.publication x WHERE x.name = publish_aggregates.name) THEN
    RAISE EXCEPTION USING ERRCODE = '42710', MESSAGE = format('publication "%s" already exists', name),
      HINT = 'Unpublish it first, or republish it.';
  END IF;
  IF full_spec->>'purpose' IS NULL OR NOT EXISTS (SELECT 1 FROM caredata.purpose x WHERE x.name = full_spec->>'purpose') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication needs the purpose it is for',
      HINT = 'Set "purpose" in the spec to one of caredata.purpose (research, ...): the objection filter is built for it.';
  END IF;
  -- (the objection filter reads the stored pseudonyms, as publish()'s does;
  -- the view counts people by them and shows none)
  IF NOT EXISTS (SELECT 1 FROM caredata.domain d WHERE d.name = full_spec->>'domain' AND d.retired_at IS NULL) THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = 'a publication needs the recipient''s pseudonym domain',
      HINT = 'Set "domain" in the spec to a domain made with caredata.create_domain(), and run caredata.refresh_pseudonyms() for the source.';
  END IF;
  -- the rest is checked by caredata._publication_check(), as the caller
  INSERT INTO caredata.publication (name, recipient, source, spec) VALUES (name, recipient, source, full_spec);
  PERFORM caredata._publication_view(name);
  PERFORM caredata.audit_append('publication.create', name,
    jsonb_build_object('recipient', recipient, 'source', source::text, 'spec', full_spec));
  RETURN format('published.%I', name)::regclass;
END
$$;
COMMENT ON FUNCTION caredata.publish_aggregates(text, regclass, jsonb, name) IS
  'publish only aggregates of a source to one recipient, as published.<name>, for dashboards: spec {"domain" (people are counted by its stored pseudonyms, never shown), "purpose", "dataset"?, "nhs_column"? (default nhs_number), "by": [one to three unit columns: organisation, team, clinician], "outcome"? (a boolean or 0/1 column), "labels"? {column: vocabulary}}; per unit: people, people with the outcome, its rate, and the funnel plot row (proportion, 95% and 99.8% limits, band, outlier), as the disclosure-control policy in force for the reader publishes them; objectors for the purpose left out; no record-level data; audited; unpublish() and republish() as for publish()';

REVOKE ALL ON FUNCTION caredata._publication_labels_check(jsonb, text[]), caredata._publication_labelled(jsonb, text),
  caredata._publication_aggregate_query(caredata.publication), caredata._publication_aggregates_check(jsonb, regclass),
  caredata.publish_aggregates(text, regclass, jsonb, name) FROM PUBLIC;
-- (the checks run as the role inserting a publication: an admin)
GRANT EXECUTE ON FUNCTION caredata._publication_labels_check(jsonb, text[]), caredata._publication_aggregates_check(jsonb, regclass),
  caredata.publish_aggregates(text, regclass, jsonb, name) TO caredata_admin;
