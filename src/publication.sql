-- src/publication.sql
-- Publication: a de-identified view of a source for one recipient.
--
-- The pseudonyms a view shows are stored values (caredata.pseudonym_map),
-- computed by the linker or an admin with caredata.refresh_pseudonyms();
-- a recipient never drives a keyed function.  publish() creates
-- published.<name>: the NHS number replaced by the recipient's pseudonym,
-- the columns the spec names kept or generalised, every other column
-- dropped, the objection filter for the declared purpose built in, as a
-- security_barrier view that only the recipient may read.  Every
-- publication is recorded (caredata.publication) and audited.

CREATE SCHEMA published;
COMMENT ON SCHEMA published IS 'caredata: de-identified views, one per publication (caredata.publish())';
REVOKE ALL ON SCHEMA published FROM PUBLIC;

CREATE TABLE caredata.pseudonym_map (
  domain       text NOT NULL,
  nhs_number   caredata.nhs_number NOT NULL,
  version      integer NOT NULL,
  pseudonym    caredata.pseudonym NOT NULL,
  PRIMARY KEY (domain, nhs_number)
);
COMMENT ON TABLE caredata.pseudonym_map IS
  'stored pseudonyms per recipient domain, computed by caredata.refresh_pseudonyms(); published views read them, recipients never compute them';
REVOKE ALL ON caredata.pseudonym_map FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON caredata.pseudonym_map TO caredata_admin, caredata_linker;
SELECT pg_catalog.pg_extension_config_dump('caredata.pseudonym_map', '');

CREATE TABLE caredata.publication (
  name            text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  recipient       name NOT NULL,
  source          regclass NOT NULL,
  spec            jsonb NOT NULL,
  published_at    timestamptz NOT NULL DEFAULT now(),
  published_by    name NOT NULL DEFAULT session_user,
  republished_at  timestamptz
);
COMMENT ON TABLE caredata.publication IS
  'what each recipient can see and since when: one row per published view (published.<name>), with its source and spec';
REVOKE ALL ON caredata.publication FROM PUBLIC;
GRANT SELECT ON caredata.publication TO caredata_admin;
SELECT pg_catalog.pg_extension_config_dump('caredata.publication', '');

-- stored pseudonyms for every valid NHS number of a source column, at the
-- domain's current key version (a rotation recomputes them all)
CREATE FUNCTION caredata.refresh_pseudonyms(domain text, source regclass, nhs_column name DEFAULT 'nhs_number')
  RETURNS bigint LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v integer;
  n bigint;
BEGIN
  SELECT d.current_version INTO v FROM caredata.domain d WHERE d.name = refresh_pseudonyms.domain AND d.retired_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('pseudonym domain "%s" does not exist or is retired', domain),
      HINT = 'Create it with caredata.create_domain(name, purpose).';
  END IF;
  DELETE FROM caredata.pseudonym_map m WHERE m.domain = refresh_pseudonyms.domain AND m.version <> v;
  EXECUTE format($q$
    INSERT INTO caredata.pseudonym_map (domain, nhs_number, version, pseudonym)
    SELECT $1, x.n, $2, caredata.pseudonymise(x.n, $1)
      FROM (SELECT DISTINCT caredata.try_nhs_number(s.%I::text) AS n FROM %s s) x
     WHERE x.n IS NOT NULL
    ON CONFLICT (domain, nhs_number) DO NOTHING$q$, nhs_column, source)
    USING domain, v;
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM caredata.audit_append('pseudonyms.refresh', domain, jsonb_build_object('source', source::text, 'version', v, 'added', n));
  RETURN n;
END
$$;
COMMENT ON FUNCTION caredata.refresh_pseudonyms(text, regclass, name) IS
  'store the domain''s pseudonym of every valid NHS number in a source column (current key version; older versions'' are replaced); returns how many were added';

-- the expression publishing one column as the spec says
CREATE FUNCTION caredata._publish_column(col name, how text) RETURNS text
  LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN CASE how
    WHEN 'keep' THEN format('s.%1$I AS %1$I', col)
    WHEN 'month' THEN format('date_trunc(''month'', s.%1$I::timestamp)::date AS %2$I', col, col || '_month')
    WHEN 'year' THEN format('extract(year FROM s.%1$I::timestamp)::integer AS %2$I', col, col || '_year')
    WHEN 'year_of_birth' THEN format('extract(year FROM caredata.try_standardise_dob(s.%1$I::text))::integer AS %2$I', col, col || '_year')
    WHEN 'age_band' THEN format('caredata.age_band(caredata.try_standardise_dob(s.%1$I::text), current_date) AS %2$I', col, col || '_age_band')
    WHEN 'district' THEN format('caredata.try_postcode_district(s.%1$I::text) AS %2$I', col, col || '_district')
    WHEN 'sector' THEN format('caredata.try_postcode_sector(s.%1$I::text) AS %2$I', col, col || '_sector')
    ELSE NULL END;
END
$$;
COMMENT ON FUNCTION caredata._publish_column(name, text) IS
  'internal: the select-list expression publishing a column: keep, month, year, year_of_birth, age_band, district or sector';

CREATE FUNCTION caredata._publication_view(p caredata.publication) RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  cols text := '';
  c record;
  expr text;
BEGIN
  FOR c IN SELECT key, value FROM jsonb_each_text(p.spec->'columns') ORDER BY key LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = p.source AND a.attname = c.key AND a.attnum > 0 AND NOT a.attisdropped) THEN
      RAISE EXCEPTION USING ERRCODE = '42703', MESSAGE = format('column "%s" is not in %s', c.key, p.source),
        HINT = 'Name the source''s columns in the spec''s "columns".';
    END IF;
    IF c.key = p.spec->>'nhs_column' THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'the NHS number column cannot be published',
        HINT = 'It is replaced by the recipient''s pseudonym, in the column "person".';
    END IF;
    expr := caredata._publish_column(c.key, c.value);
    IF expr IS NULL THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('column "%s": unknown treatment "%s"', c.key, c.value),
        HINT = 'Use keep, month, year, year_of_birth, age_band, district or sector.';
    END IF;
    cols := cols || ', ' || expr;
  END LOOP;
  EXECUTE format('DROP VIEW IF EXISTS published.%I', p.name);
  EXECUTE format($v$
    CREATE VIEW published.%1$I WITH (security_barrier) AS
    SELECT m.pseudonym::text AS person%2$s
      FROM %3$s s
      JOIN caredata.pseudonym_map m ON m.domain = %4$L AND m.nhs_number OPERATOR(caredata.=) caredata.try_nhs_number(s.%5$I::text)
     WHERE caredata.permitted(m.nhs_number, %6$L, now(), %7$L)$v$,
    p.name, cols, p.source, p.spec->>'domain', p.spec->>'nhs_column', p.spec->>'purpose', p.spec->>'dataset');
  EXECUTE format('COMMENT ON VIEW published.%I IS %L', p.name,
                 format('caredata publication %s for %s: %s pseudonymised (domain %s), objection filter for %s', p.name, p.recipient,
                        p.source, p.spec->>'domain', p.spec->>'purpose'));
  EXECUTE format('REVOKE ALL ON published.%I FROM PUBLIC', p.name);
  EXECUTE format('GRANT SELECT ON published.%I TO %I', p.name, p.recipient);
  EXECUTE format('GRANT USAGE ON SCHEMA published TO %I', p.recipient);
  -- a view's functions run with its reader's EXECUTE rights: the filter's
  -- (answered as for an analyst, who may already call it)
  EXECUTE format('GRANT EXECUTE ON FUNCTION caredata.permitted(caredata.nhs_number, text, timestamptz, text) TO %I', p.recipient);
  -- the recipient's operators on pseudonym and nhs_number without OPERATOR(caredata.=)
  EXECUTE format('ALTER ROLE %I SET search_path = "$user", public, published, caredata', p.recipient);
END
$$;
COMMENT ON FUNCTION caredata._publication_view(caredata.publication) IS
  'internal: (re)create a publication''s view, grant it to its recipient alone, and set the recipient''s search_path';

CREATE FUNCTION caredata.publish(name text, source regclass, spec jsonb, recipient name)
  RETURNS regclass LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p caredata.publication;
  full_spec jsonb := jsonb_build_object('nhs_column', 'nhs_number') || coalesce(spec, '{}');
BEGIN
  IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication name is lower-case letters, digits and _',
      HINT = 'It names the view published.<name>.';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = recipient) THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('role "%s" does not exist', recipient),
      HINT = 'Create the recipient''s role first (CREATE ROLE ... NOLOGIN, or a login).';
  END IF;
  IF full_spec->>'purpose' IS NULL OR NOT EXISTS (SELECT 1 FROM caredata.purpose x WHERE x.name = full_spec->>'purpose') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication needs the purpose it is for',
      HINT = 'Set "purpose" in the spec to one of caredata.purpose (research, ...): the objection filter is built for it.';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM caredata.domain d WHERE d.name = full_spec->>'domain' AND d.retired_at IS NULL) THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = 'a publication needs the recipient''s pseudonym domain',
      HINT = 'Set "domain" in the spec to a domain made with caredata.create_domain(), and run caredata.refresh_pseudonyms() for the source.';
  END IF;
  IF jsonb_typeof(full_spec->'columns') IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication names the columns it publishes',
      HINT = 'Set "columns" to {"column": "keep" | "month" | "year" | "year_of_birth" | "age_band" | "district" | "sector"}; others are dropped.';
  END IF;
  IF NOT has_table_privilege(source, 'SELECT') THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format('permission denied to publish %s', source),
      HINT = 'Publish only what you may read yourself.';
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.publication x WHERE x.name = publish.name) THEN
    RAISE EXCEPTION USING ERRCODE = '42710', MESSAGE = format('publication "%s" already exists', name),
      HINT = 'Unpublish it first, or republish it.';
  END IF;
  INSERT INTO caredata.publication (name, recipient, source, spec) VALUES (name, recipient, source, full_spec) RETURNING * INTO p;
  PERFORM caredata._publication_view(p);
  PERFORM caredata.audit_append('publication.create', name,
    jsonb_build_object('recipient', recipient, 'source', source::text, 'spec', full_spec));
  RETURN format('published.%I', name)::regclass;
END
$$;
COMMENT ON FUNCTION caredata.publish(text, regclass, jsonb, name) IS
  'publish a source to one recipient as published.<name>: spec {"domain", "purpose", "dataset"?, "nhs_column"? (default nhs_number), "columns": {column: keep|month|year|year_of_birth|age_band|district|sector}}; the NHS number becomes the recipient''s stored pseudonym, other columns are dropped, objectors for the purpose are filtered out; audited';

CREATE FUNCTION caredata.republish(name text) RETURNS regclass
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p caredata.publication;
BEGIN
  UPDATE caredata.publication x SET republished_at = now() WHERE x.name = republish.name RETURNING * INTO p;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('publication "%s" does not exist', name),
      HINT = 'See caredata.publication.';
  END IF;
  -- after a key rotation: the stored pseudonyms move to the current version
  PERFORM caredata.refresh_pseudonyms(p.spec->>'domain', p.source, (p.spec->>'nhs_column')::name);
  PERFORM caredata._publication_view(p);
  PERFORM caredata.audit_append('publication.republish', name, jsonb_build_object('recipient', p.recipient));
  RETURN format('published.%I', name)::regclass;
END
$$;
COMMENT ON FUNCTION caredata.republish(text) IS
  'refresh a publication after a key rotation or a new opt-out snapshot: its pseudonyms at the domain''s current key version, its view re-created; audited';

CREATE FUNCTION caredata.unpublish(name text) RETURNS void
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p caredata.publication;
BEGIN
  DELETE FROM caredata.publication x WHERE x.name = unpublish.name RETURNING * INTO p;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('publication "%s" does not exist', name),
      HINT = 'See caredata.publication.';
  END IF;
  EXECUTE format('DROP VIEW IF EXISTS published.%I', p.name);
  PERFORM caredata.audit_append('publication.drop', name, jsonb_build_object('recipient', p.recipient));
END
$$;
COMMENT ON FUNCTION caredata.unpublish(text) IS 'drop a publication''s view and its record; audited';

-- equivalence classes of a published view's quasi-identifiers smaller than k
CREATE FUNCTION caredata.k_anonymity(view regclass, quasi_identifiers text[], k integer DEFAULT 5)
  RETURNS TABLE (rows bigint, classes bigint, classes_below_k bigint, rows_below_k bigint, share_below_k numeric)
  LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF k IS NULL OR k < 2 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'k is at least 2', HINT = 'k = 5 is a common choice.';
  END IF;
  IF coalesce(cardinality(quasi_identifiers), 0) = 0 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'name the quasi-identifiers',
      HINT = 'For example ARRAY[''dob_age_band'', ''sex'', ''postcode_district''].';
  END IF;
  RETURN QUERY EXECUTE format($q$
    SELECT coalesce(sum(n), 0)::bigint, count(*), count(*) FILTER (WHERE n < $1),
           coalesce(sum(n) FILTER (WHERE n < $1), 0)::bigint,
           round(coalesce(sum(n) FILTER (WHERE n < $1), 0) / nullif(sum(n), 0), 4)
      FROM (SELECT count(*) AS n FROM %s GROUP BY %s) c$q$,
    view, (SELECT string_agg(quote_ident(q), ', ') FROM unnest(quasi_identifiers) q))
    USING k;
END
$$;
COMMENT ON FUNCTION caredata.k_anonymity(regclass, text[], integer) IS
  'k-anonymity of a view over its quasi-identifiers: rows, equivalence classes, classes smaller than k and the share of rows in them';

REVOKE ALL ON FUNCTION caredata.refresh_pseudonyms(text, regclass, name), caredata._publish_column(name, text),
  caredata._publication_view(caredata.publication), caredata.publish(text, regclass, jsonb, name),
  caredata.republish(text), caredata.unpublish(text), caredata.k_anonymity(regclass, text[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.refresh_pseudonyms(text, regclass, name) TO caredata_admin, caredata_linker;
GRANT EXECUTE ON FUNCTION caredata._publication_view(caredata.publication), caredata.publish(text, regclass, jsonb, name),
  caredata.republish(text), caredata.unpublish(text), caredata.k_anonymity(regclass, text[], integer) TO caredata_admin;
