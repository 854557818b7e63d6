-- src/publication/publication.sql
-- Publication: a de-identified view of a source for one recipient.
--
-- The pseudonyms a view shows are stored values (caredata.pseudonym_map),
-- computed by the linker or an admin with caredata.refresh_pseudonyms();
-- a recipient never drives a keyed function.  publish() creates
-- published.<name>: the NHS number replaced by the recipient's pseudonym,
-- the columns the spec names kept or generalised, every other column
-- dropped, the objection filter for the declared purpose built in, as a
-- security_barrier view that only the recipient may read.  Every
-- publication is recorded (caredata.publication) and audited.  A direct
-- identifier (the NHS number itself, a full date of birth or postcode, a
-- name ...) is published only under an approval in the register
-- (src/publication/approval.sql) that covers the recipient, the purpose and
-- the dataset, checked when the view is made and each time it is read.

CREATE SCHEMA published;
COMMENT ON SCHEMA published IS 'caredata: de-identified views, one per publication (caredata.publish())';
REVOKE ALL ON SCHEMA published FROM PUBLIC;
-- admins see the views' names (they read none: each is granted to its recipient)
GRANT USAGE ON SCHEMA published TO caredata_admin;

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
  republished_at  timestamptz,
  -- what publish() or republish() did for k and linkability (src/publication/kanon.sql)
  disclosure      jsonb
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
  PERFORM caredata._catalog_write('caredata.refresh_pseudonyms()');
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
  LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  -- level 0 of the generalisation ladder (src/publication/kanon.sql)
  RETURN caredata._publish_column_at(col, how, 0);
END
$$;
COMMENT ON FUNCTION caredata._publish_column(name, text) IS
  'internal: the select-list expression publishing a column: keep, group, month, quarter, year, year_of_birth, age_band, sector, district, area or band:N';

-- What a published view may read.  It is owned by the extension's owner,
-- which reads past every privilege, so its source must read with its own
-- owner's rights: a table, a partitioned table, a materialized view or a
-- plain view, not a security_invoker view (which would read as the
-- superuser) nor a foreign table (whose user mapping would be the
-- superuser's).  NULL when the source is fine, else the reason.
-- security_invoker is read as PostgreSQL reads it (parse_bool: any case,
-- any prefix of true/yes, on, 1): a view counts as security_invoker unless
-- its option spells false (a prefix of false or no, of, off, 0), so a
-- spelling this list misses fails closed.
CREATE FUNCTION caredata._publication_source_problem(source regclass) RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE
    WHEN c.oid IS NULL THEN 'it no longer exists'
    WHEN c.relkind OPERATOR(pg_catalog.<>) ALL (ARRAY['r', 'p', 'm', 'v']::"char"[]) THEN 'it is not a table, a materialized view or a view'
    WHEN c.relkind OPERATOR(pg_catalog.=) 'v' AND EXISTS (
           SELECT 1 FROM pg_catalog.pg_options_to_table(c.reloptions) o
            WHERE pg_catalog.lower(o.option_name) OPERATOR(pg_catalog.=) 'security_invoker'
              AND NOT pg_catalog.lower(pg_catalog.btrim(o.option_value)) OPERATOR(pg_catalog.=)
                      ANY (ARRAY['f', 'fa', 'fal', 'fals', 'false', 'n', 'no', 'of', 'off', '0']))
      THEN 'it is a security_invoker view'
  END
  FROM (SELECT source::oid AS oid) x LEFT JOIN pg_catalog.pg_class c USING (oid)
$$;
COMMENT ON FUNCTION caredata._publication_source_problem(regclass) IS
  'internal: why a relation cannot be a publication''s source (NULL when it can): not a table, materialized view or plain view, or a security_invoker view (in any spelling PostgreSQL accepts)';

-- Who may never be a recipient: a role that can read identifiers or the
-- register by other means, so that it could join a published view back to
-- NHS numbers.  Membership counts however it is held, directly or through
-- other roles, with or without INHERIT (pg_has_role ... MEMBER); superusers
-- and BYPASSRLS roles read past every filter.  NULL when the role may be a
-- recipient, else why not.
CREATE FUNCTION caredata._recipient_problem(recipient name) RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE
    WHEN r.oid IS NULL THEN 'does not exist'
    WHEN r.rolsuper THEN 'is a superuser'
    WHEN r.rolbypassrls THEN 'bypasses row-level security'
    ELSE (SELECT pg_catalog.format('is a member of %s', g.name)
            FROM pg_catalog.unnest(ARRAY['caredata_admin', 'caredata_linker', 'caredata_reidentifier', 'caredata_patient',
                                         'pg_read_all_data', 'pg_write_all_data']) WITH ORDINALITY g(name, n)
           WHERE pg_catalog.to_regrole(g.name) IS NOT NULL
             AND pg_catalog.pg_has_role(r.oid, pg_catalog.to_regrole(g.name)::oid, 'MEMBER')
           ORDER BY g.n LIMIT 1)
  END
  FROM (SELECT recipient) x LEFT JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) x.recipient
$$;
COMMENT ON FUNCTION caredata._recipient_problem(name) IS
  'internal: why a role cannot be a publication''s recipient (NULL when it can): a superuser, BYPASSRLS, or a member, however indirect, of caredata_admin, caredata_linker, caredata_reidentifier, caredata_patient, pg_read_all_data or pg_write_all_data';

-- and checked again each time a published view is read (one InitPlan per
-- query): a recipient, or a login in the recipient's role, that has since
-- joined one of those roles is refused, never shown the rows.  Superusers
-- read everything anyway.  It answers about the reader alone.
CREATE FUNCTION caredata._published_reader() RETURNS boolean
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  why text;
BEGIN
  IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
    RETURN true;
  END IF;
  why := caredata._recipient_problem(current_user);
  IF why IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = pg_catalog.format('role "%s" cannot read a published view', current_user),
      DETAIL = pg_catalog.format('Role "%s" %s, and could join the view to identifiers.', current_user, why),
      HINT = 'Read published views as a role that holds no identifiers; see docs/publication.md.';
  END IF;
  RETURN true;
END
$$;
COMMENT ON FUNCTION caredata._published_reader() IS
  'internal: true when the current role may read a published view; refuses (42501) a role that is, or has become, unfit to be a recipient (see _recipient_problem)';

-- and, for a view that releases identifiers under an approval, checked
-- each time it is read too (one InitPlan per query): the approval still
-- in force, still covering the recipient, purpose and dataset.  It reads
-- the register as its owner and answers about one publication alone.
CREATE FUNCTION caredata._published_approval(publication text) RETURNS boolean
  LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p caredata.publication;
BEGIN
  SELECT * INTO p FROM caredata.publication x WHERE x.name OPERATOR(pg_catalog.=) publication;
  IF NOT FOUND OR NOT p.spec OPERATOR(pg_catalog.?) 'approval' THEN
    RETURN true;
  END IF;
  PERFORM caredata._approval_require(p.spec OPERATOR(pg_catalog.->>) 'approval', p.recipient,
                                     p.spec OPERATOR(pg_catalog.->>) 'purpose', p.spec OPERATOR(pg_catalog.->>) 'dataset',
                                     'read of an identifiable publication');
  RETURN true;
END
$$;
COMMENT ON FUNCTION caredata._published_approval(text) IS
  'internal: true when a publication names no approval or its approval still covers its recipient, purpose and dataset; refuses (42501) once the approval is revoked, expired or no longer covers them';

-- Direct identifiers, which a publication never releases: the NHS number,
-- a full date of birth, a full postcode, names, addresses, telephone
-- numbers and e-mail addresses.  A column is taken for one by its type
-- (caredata.nhs_number), by what caredata.link_add_source() declared it, or
-- by its name; _publication_view() also looks at its values
-- (_direct_identifier_values).  Releasing one needs an approval in the
-- register (caredata.approval) that the spec names, never a spec alone.
-- NULL when the column is not one, else what it is.
CREATE FUNCTION caredata._direct_identifier(source regclass, col name) RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE
    WHEN a.atttypid OPERATOR(pg_catalog.=) 'caredata.nhs_number'::regtype::oid
      OR EXISTS (SELECT 1 FROM caredata.link_source l WHERE l.relation OPERATOR(pg_catalog.=) _direct_identifier.source AND l.nhs_number OPERATOR(pg_catalog.=) col)
      OR n.s OPERATOR(pg_catalog.~) '(^|_)nhs_?(no|num|number)s?(_|$)'
      THEN 'an NHS number'
    WHEN EXISTS (SELECT 1 FROM caredata.link_source l WHERE l.relation OPERATOR(pg_catalog.=) _direct_identifier.source AND l.dob OPERATOR(pg_catalog.=) col)
      OR n.s OPERATOR(pg_catalog.~) '(^|_)dob(_|$)'
      OR pg_catalog.replace(n.s, '_', '') OPERATOR(pg_catalog.~) '(dateofbirth|birthdate|birthdt|dtofbirth|birthday)'
      THEN 'a full date of birth'
    WHEN EXISTS (SELECT 1 FROM caredata.link_source l WHERE l.relation OPERATOR(pg_catalog.=) _direct_identifier.source AND l.postcode OPERATOR(pg_catalog.=) col)
      OR (pg_catalog.replace(n.s, '_', '') OPERATOR(pg_catalog.~) '(postcode|zipcode|^zip$|^pcode$)'
          AND NOT n.s OPERATOR(pg_catalog.~) '(area|district|sector|outward|outcode|prefix|region)')
      THEN 'a full postcode'
    WHEN n.s OPERATOR(pg_catalog.~) '^(names?|forenames?|surnames?|firstnames?|lastnames?|givennames?|familynames?|fullnames?|middlenames?|maidennames?|initials)$'
      OR n.s OPERATOR(pg_catalog.~) '(^|_)(forenames?|surnames?|firstnames?|lastnames?|givennames?|familynames?|fullnames?|middlenames?|maidennames?)(_|$)'
      OR n.s OPERATOR(pg_catalog.~) '(^|_)(first|last|given|family|full|middle|maiden|patient|person|preferred|birth)_names?(_|$)'
      THEN 'a name'
    WHEN n.s OPERATOR(pg_catalog.~) '(^|_)(addr|address|addresses|addressline\d*|addr\d+|address\d+|street|streetname|houseno|housenumber|housename)(_|$)'
      THEN 'an address'
    WHEN n.s OPERATOR(pg_catalog.~) '(^|_)(email|e_mail|phone|phoneno|telephone|tel|telno|mobileno)(_|$)'
      OR pg_catalog.replace(n.s, '_', '') OPERATOR(pg_catalog.~) '(emailaddress|phonenumber|telephonenumber|mobilenumber)'
      THEN 'a telephone number or e-mail address'
  END
  FROM (SELECT pg_catalog.lower(pg_catalog.regexp_replace(col, '[^A-Za-z0-9]+', '_', 'g')) AS s) n
  LEFT JOIN pg_catalog.pg_attribute a
    ON a.attrelid OPERATOR(pg_catalog.=) _direct_identifier.source AND a.attname OPERATOR(pg_catalog.=) col AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION caredata._direct_identifier(regclass, name) IS
  'internal: what direct identifier a source column is (an NHS number, a full date of birth, a full postcode, a name, an address, a telephone number or e-mail address), by its type, its linkage declaration or its name; NULL when none';

-- and by its values: a column most of whose first values are valid NHS
-- numbers or full postcodes is one, whatever its name (run only by
-- _publication_view(), hence PARALLEL UNSAFE like it)
CREATE FUNCTION caredata._direct_identifier_values(source regclass, col name) RETURNS text
  LANGUAGE plpgsql STABLE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n bigint;
  nhs bigint;
  pc bigint;
BEGIN
  EXECUTE pg_catalog.format($q$
    SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE caredata.try_nhs_number(v) IS NOT NULL),
           pg_catalog.count(*) FILTER (WHERE caredata.try_normalise_postcode(v) IS NOT NULL)
      FROM (SELECT s.%I::text AS v FROM %s s WHERE s.%I IS NOT NULL LIMIT 200) x$q$, col, source, col)
    INTO n, nhs, pc;
  RETURN CASE
    WHEN n OPERATOR(pg_catalog.=) 0 THEN NULL
    WHEN nhs OPERATOR(pg_catalog.*) 2 OPERATOR(pg_catalog.>) n THEN 'an NHS number'
    WHEN pc OPERATOR(pg_catalog.*) 2 OPERATOR(pg_catalog.>) n THEN 'a full postcode'
  END;
END
$$;
COMMENT ON FUNCTION caredata._direct_identifier_values(regclass, name) IS
  'internal: ''an NHS number'' or ''a full postcode'' when most of a column''s first 200 values are one, else NULL';

-- the treatments that generalise a direct identifier enough to publish
CREATE FUNCTION caredata._identifier_treatment_ok(what text, how text) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE what
    WHEN 'a full date of birth' THEN how OPERATOR(pg_catalog.=) ANY (ARRAY['month', 'quarter', 'year', 'year_of_birth', 'age_band'])
    WHEN 'a full postcode' THEN how OPERATOR(pg_catalog.=) ANY (ARRAY['district', 'sector', 'area'])
    ELSE false
  END
$$;
COMMENT ON FUNCTION caredata._identifier_treatment_ok(text, text) IS
  'internal: whether a treatment publishes a direct identifier generalised (a date of birth as month, year or age band; a postcode as district or sector)';

-- and stays so: after any DDL, every published source is checked again, so
-- that no one turns a published table into a view (CREATE RULE) or a
-- published view into a security_invoker one
CREATE FUNCTION caredata._publication_guard() RETURNS event_trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p record;
BEGIN
  FOR p IN SELECT x.name, x.source, caredata._publication_source_problem(x.source) AS problem
             FROM caredata.publication x WHERE caredata._publication_source_problem(x.source) IS NOT NULL LOOP
    RAISE EXCEPTION USING ERRCODE = '42809', MESSAGE = format('publication "%s" reads %s, and %s', p.name, p.source, p.problem),
      HINT = 'A published source must read with its own owner''s rights; unpublish it first (caredata.unpublish()).';
  END LOOP;
END
$$;
COMMENT ON FUNCTION caredata._publication_guard() IS
  'internal: event trigger refusing DDL that leaves a published source unfit (see _publication_source_problem)';
CREATE EVENT TRIGGER caredata_publication_guard ON ddl_command_end
  EXECUTE FUNCTION caredata._publication_guard();

-- A catalog row is the publisher's word: the trigger below checks it as the
-- role inserting it (its rights on the source, a recipient that is not
-- privileged, the columns), so the view made from it as the extension owner
-- shows nothing the publisher could not read.  caredata_admin may insert
-- rows (who and when are defaults) and stamp republished_at, nothing else.
-- The checks need only the source's definition, so a restored dump's rows
-- pass them again.
CREATE FUNCTION caredata._publication_check() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c record;
  why text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = NEW.recipient) THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('role "%s" does not exist', NEW.recipient),
      HINT = 'Create the recipient''s role first (CREATE ROLE ... NOLOGIN, or a login).';
  END IF;
  why := caredata._recipient_problem(NEW.recipient);
  IF why IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('role "%s" cannot be a recipient', NEW.recipient),
      DETAIL = format('Role "%s" %s.', NEW.recipient, why),
      HINT = 'Publish to a role of its own (a team or a BI login), or to caredata_analyst; not to a superuser, a BYPASSRLS role, or a member of a role that holds identifiers.';
  END IF;
  -- the approval's scope is checked by _publication_view() (when the view
  -- is made) and by the view (each time it is read), not here, so that a
  -- restored dump's rows pass again once the approval has lapsed
  IF NEW.spec ? 'approval' AND (jsonb_typeof(NEW.spec->'approval') IS DISTINCT FROM 'string' OR btrim(NEW.spec->>'approval') = '') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication''s "approval" is the reference of an approval',
      HINT = 'Set "approval" to the reference of an approval in caredata.approval, or leave it out.';
  END IF;
  IF jsonb_typeof(NEW.spec->'columns') IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication names the columns it publishes',
      HINT = 'Set "columns" to {"column": "keep" | "group" | "month" | "quarter" | "year" | "year_of_birth" | "age_band" | "sector" | "district" | "area" | "band:N"}; others are dropped.';
  END IF;
  PERFORM caredata._publication_kanon_check(NEW.spec);
  IF caredata._publication_source_problem(NEW.source) IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42809', MESSAGE = format('%s cannot be published: %s', NEW.source, caredata._publication_source_problem(NEW.source)),
      HINT = 'Publish a table, a materialized view or a plain view: a published view reads its source with the source owner''s rights.';
  END IF;
  IF NOT has_table_privilege(NEW.source, 'SELECT') THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format('permission denied to publish %s', NEW.source),
      HINT = 'Publish only what you may read yourself.';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = NEW.source AND a.attname = NEW.spec->>'nhs_column'
                    AND a.attnum > 0 AND NOT a.attisdropped) THEN
    RAISE EXCEPTION USING ERRCODE = '42703', MESSAGE = format('NHS number column "%s" is not in %s', NEW.spec->>'nhs_column', NEW.source),
      HINT = 'Set "nhs_column" in the spec (default nhs_number).';
  END IF;
  FOR c IN SELECT key, value FROM jsonb_each_text(NEW.spec->'columns') LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = NEW.source AND a.attname = c.key AND a.attnum > 0 AND NOT a.attisdropped) THEN
      RAISE EXCEPTION USING ERRCODE = '42703', MESSAGE = format('column "%s" is not in %s', c.key, NEW.source),
        HINT = 'Name the source''s columns in the spec''s "columns".';
    END IF;
    IF c.key = NEW.spec->>'nhs_column' AND (c.value <> 'keep' OR NOT NEW.spec ? 'approval') THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'the NHS number column cannot be published',
        HINT = 'It is replaced by the recipient''s pseudonym, in the column "person"; only a spec naming an approval in the register may keep it.';
    END IF;
    IF caredata._publish_column(c.key, c.value) IS NULL THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('column "%s": unknown treatment "%s"', c.key, c.value),
        HINT = 'Use keep, group, month, quarter, year, year_of_birth, age_band, sector, district, area or band:N.';
    END IF;
    why := caredata._direct_identifier(NEW.source, c.key);
    IF why IS NOT NULL AND NOT caredata._identifier_treatment_ok(why, c.value) AND NOT NEW.spec ? 'approval' THEN
      RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format('column "%s" is a direct identifier (%s) and cannot be published as "%s"', c.key, why, c.value),
        DETAIL = 'A publication releases no NHS number, full date of birth, full postcode, name, address, telephone number or e-mail address.',
        HINT = 'Generalise it (a date of birth as year_of_birth or age_band, a postcode as district or sector) or leave it out; an identifiable release names an approval in the register ("approval" in the spec) that covers the recipient, purpose and dataset.';
    END IF;
  END LOOP;
  -- an aggregate-only publication's units and outcome; labels of codes (src/publication/dashboard.sql)
  IF NEW.spec->>'kind' = 'aggregates' THEN
    PERFORM caredata._publication_aggregates_check(NEW.spec, NEW.source);
    PERFORM caredata._publication_labels_check(NEW.spec, ARRAY(SELECT jsonb_array_elements_text(NEW.spec->'by')));
  ELSIF NEW.spec ? 'kind' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('unknown publication kind "%s"', NEW.spec->>'kind'),
      HINT = 'caredata.publish() makes record-level views, caredata.publish_aggregates() aggregate-only ones.';
  ELSE
    PERFORM caredata._publication_labels_check(NEW.spec,
      ARRAY(SELECT x.key FROM jsonb_each_text(NEW.spec->'columns') x WHERE x.value IN ('keep', 'group')));
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION caredata._publication_check() IS
  'internal: checks a new publication as the role publishing it (rights on the source, the recipient, the columns)';
CREATE TRIGGER publication_check BEFORE INSERT ON caredata.publication
  FOR EACH ROW EXECUTE FUNCTION caredata._publication_check();
GRANT INSERT (name, recipient, source, spec), UPDATE (republished_at) ON caredata.publication TO caredata_admin;

-- (re)create a publication's view, as its catalog row says
CREATE FUNCTION caredata._publication_view(name text) RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p caredata.publication;
  c record;
  why text;
  body text;
  approved text := '';
  citus boolean;
  rows_name text := '_rows_' || substr(md5(name), 1, 12);
  inner_name text := '_query_' || substr(md5(name), 1, 12);
  mode text;
BEGIN
  SELECT * INTO p FROM caredata.publication x WHERE x.name = _publication_view.name;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('publication "%s" does not exist', name),
      HINT = 'See caredata.publication.';
  END IF;
  citus := caredata._citus_table(p.source) OR caredata._citus_table('caredata.pseudonym_map');
  IF citus THEN
    -- Citus creates the function below on every node over one connection
    -- per node, and refuses once this transaction has read a distributed
    -- table in parallel: the reads of the source use one connection too
    -- (issue 27), until the function is made
    mode := current_setting('citus.multi_shard_modify_mode');
    PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
  END IF;
  -- the recipient again (it may have joined a privileged role since), and
  -- the kept columns by their values (an identifier under another name)
  why := caredata._recipient_problem(p.recipient);
  IF why IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('role "%s" cannot be a recipient', p.recipient),
      DETAIL = format('Role "%s" %s.', p.recipient, why),
      HINT = 'Unpublish the publication (caredata.unpublish()), or revoke the membership first.';
  END IF;
  -- an approval the spec names covers the recipient, purpose and dataset
  -- now (42501 otherwise), and the view checks it again each time it is read
  IF p.spec ? 'approval' THEN
    PERFORM caredata._approval_require(p.spec->>'approval', p.recipient, p.spec->>'purpose', p.spec->>'dataset', 'publication');
    approved := format(' AND (SELECT caredata._published_approval(%L))', p.name);
  END IF;
  FOR c IN SELECT key, value FROM jsonb_each_text(p.spec->'columns') ORDER BY key LOOP
    why := coalesce(caredata._direct_identifier(p.source, c.key),
                    CASE WHEN c.value = 'keep' THEN caredata._direct_identifier_values(p.source, c.key) END);
    IF why IS NOT NULL AND NOT caredata._identifier_treatment_ok(why, c.value) AND NOT p.spec ? 'approval' THEN
      RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format('column "%s" is a direct identifier (%s) and cannot be published as "%s"', c.key, why, c.value),
        DETAIL = 'A publication releases no NHS number, full date of birth, full postcode, name, address, telephone number or e-mail address.',
        HINT = 'Generalise it (a date of birth as year_of_birth or age_band, a postcode as district or sector) or leave it out; an identifiable release names an approval in the register ("approval" in the spec) that covers the recipient, purpose and dataset.';
    END IF;
  END LOOP;
  EXECUTE format('DROP VIEW IF EXISTS published.%I', p.name);
  IF to_regprocedure(format('published.%I()', rows_name)) IS NOT NULL THEN
    EXECUTE format('DROP FUNCTION published.%I()', rows_name);
  END IF;
  IF to_regclass(format('published.%I', inner_name)) IS NOT NULL THEN
    EXECUTE format('DROP VIEW published.%I', inner_name);
  END IF;
  -- the generalisation level for k and linkability, measured as the view's
  -- owner; the query with k enforced as it is read (src/publication/kanon.sql)
  body := CASE WHEN p.spec->>'kind' = 'aggregates' THEN caredata._publication_aggregate_query(p) ELSE caredata._publication_kanon_query(p.spec,
            caredata._publication_base(p, caredata._publication_disclose(p, citus), citus)) END;
  -- (aggregates only, src/publication/dashboard.sql: no records, so no k to enforce)
  IF p.spec->>'kind' = 'aggregates' AND citus THEN
    RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = 'aggregate-only publications of distributed tables are not supported',
      HINT = 'Publish a local table or materialized view of the distributed one.';
  END IF;
  -- codes' labels beside them, when the spec asks (src/publication/dashboard.sql)
  body := caredata._publication_labelled(p.spec, body);
  IF citus THEN
    -- Citus runs a view's query on the nodes as its reader, who may read
    -- the view but not its source: the query runs instead in a SECURITY
    -- DEFINER function, as the view's owner, as a view's would
    -- (docs/scale-out.md)
    EXECUTE format('CREATE VIEW published.%I WITH (security_barrier) AS %s', inner_name, body);
    EXECUTE format('REVOKE ALL ON published.%I FROM PUBLIC', inner_name);
    EXECUTE format('COMMENT ON VIEW published.%I IS %L', inner_name,
                   'caredata publication on Citus: its query, read only through its function');
    EXECUTE format('CREATE FUNCTION published.%I() RETURNS SETOF published.%I LANGUAGE plpgsql STABLE SECURITY DEFINER '
                   'SET search_path = pg_catalog, pg_temp AS %L',
                   rows_name, inner_name, format('BEGIN RETURN QUERY SELECT * FROM published.%I; END', inner_name));
    EXECUTE format('REVOKE ALL ON FUNCTION published.%I() FROM PUBLIC', rows_name);
    EXECUTE format('GRANT EXECUTE ON FUNCTION published.%I() TO %I', rows_name, p.recipient);
    EXECUTE format('COMMENT ON FUNCTION published.%I() IS %L', rows_name,
                   'caredata publication on Citus: the rows of its view, as its owner');
    PERFORM set_config('citus.multi_shard_modify_mode', mode, true);
    body := format('SELECT * FROM published.%I() q', rows_name);
    -- the reader check below, in the outer view: the inner query runs as the owner
    EXECUTE format('CREATE VIEW published.%I WITH (security_barrier) AS %s WHERE (SELECT caredata._published_reader())%s', p.name, body, approved);
  ELSE
    -- (the reader is checked inside, by _publication_base's query; an
    -- approval, when the spec names one, outside it)
    IF approved <> '' THEN
      body := format('SELECT * FROM (%s) q WHERE true%s', body, approved);
    END IF;
    EXECUTE format('CREATE VIEW published.%I WITH (security_barrier) AS %s', p.name, body);
  END IF;
  -- every role reads every comment (obj_description): it names no
  -- recipient, domain, source or purpose
  EXECUTE format('COMMENT ON VIEW published.%I IS %L', p.name,
                 'caredata publication: a de-identified, objection-filtered view for its recipient alone');
  EXECUTE format('REVOKE ALL ON published.%I FROM PUBLIC', p.name);
  EXECUTE format('GRANT SELECT ON published.%I TO %I', p.name, p.recipient);
  EXECUTE format('GRANT USAGE ON SCHEMA published TO %I', p.recipient);
  -- a view's functions run with its reader's EXECUTE rights: the filter's
  -- (answered as for an analyst, who may already call it)
  EXECUTE format('GRANT EXECUTE ON FUNCTION caredata.permitted(caredata.nhs_number, text, timestamptz, text) TO %I', p.recipient);
  EXECUTE format('GRANT EXECUTE ON FUNCTION caredata._published_reader(), caredata._recipient_problem(name) TO %I', p.recipient);
  IF p.spec ? 'approval' THEN
    EXECUTE format('GRANT EXECUTE ON FUNCTION caredata._published_approval(text) TO %I', p.recipient);
  END IF;
  -- (the recipient's search_path is left alone: the view qualifies all it
  -- names, and the recipient sets its own; docs/publication.md)
END
$$;
COMMENT ON FUNCTION caredata._publication_view(text) IS
  'internal: (re)create a publication''s view from its catalog row (checking its recipient and its columns again) and grant it to its recipient alone';

CREATE FUNCTION caredata.publish(name text, source regclass, spec jsonb, recipient name)
  RETURNS regclass LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  full_spec jsonb := jsonb_build_object('nhs_column', 'nhs_number') || coalesce(spec, '{}');
BEGIN
  PERFORM caredata._catalog_write('caredata.publish()');
  IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication name is lower-case letters, digits and _',
      HINT = 'It names the view published.<name>.';
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.publication x WHERE x.name = publish.name) THEN
    RAISE EXCEPTION USING ERRCODE = '42710', MESSAGE = format('publication "%s" already exists', name),
      HINT = 'Unpublish it first, or republish it.';
  END IF;
  IF full_spec->>'purpose' IS NULL OR NOT EXISTS (SELECT 1 FROM caredata.purpose x WHERE x.name = full_spec->>'purpose') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication needs the purpose it is for',
      HINT = 'Set "purpose" in the spec to one of caredata.purpose (research, ...): the objection filter is built for it.';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM caredata.domain d WHERE d.name = full_spec->>'domain' AND d.retired_at IS NULL) THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = 'a publication needs the recipient''s pseudonym domain',
      HINT = 'Set "domain" in the spec to a domain made with caredata.create_domain(), and run caredata.refresh_pseudonyms() for the source.';
  END IF;
  -- the rest is checked by caredata._publication_check(), as the caller
  INSERT INTO caredata.publication (name, recipient, source, spec) VALUES (name, recipient, source, full_spec);
  PERFORM caredata._publication_view(name);
  PERFORM caredata.audit_append('publication.create', name,
    jsonb_build_object('recipient', recipient, 'source', source::text, 'spec', full_spec,
                       'disclosure', (SELECT x.disclosure - 'measured_at' FROM caredata.publication x WHERE x.name = publish.name)));
  RETURN format('published.%I', name)::regclass;
END
$$;
COMMENT ON FUNCTION caredata.publish(text, regclass, jsonb, name) IS
  'publish a source to one recipient as published.<name>: spec {"domain", "purpose", "dataset"?, "approval"?, "nhs_column"? (default nhs_number), "columns": {column: keep|group|month|quarter|year|year_of_birth|age_band|sector|district|area|band:N}, "quasi_identifiers"?, "k"? (default 5), "linkability_override"? (a reason, admin only)}; the NHS number becomes the recipient''s stored pseudonym, other columns are dropped, objectors for the purpose are filtered out; rows in classes of fewer than k persons are left out, columns generalised up a fixed ladder, and a publication whose persons stay linkable across recipients is refused (caredata.publication_disclosure); direct identifiers are refused unless "approval" names an approval in the register covering the recipient, purpose and dataset (then the view checks it on every read); recipients that hold identifiers are refused; audited';

CREATE FUNCTION caredata.republish(name text) RETURNS regclass
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p caredata.publication;
BEGIN
  PERFORM caredata._catalog_write('caredata.republish()');
  UPDATE caredata.publication x SET republished_at = now() WHERE x.name = republish.name RETURNING * INTO p;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('publication "%s" does not exist', name),
      HINT = 'See caredata.publication.';
  END IF;
  -- after a key rotation: the stored pseudonyms move to the current version
  PERFORM caredata.refresh_pseudonyms(p.spec->>'domain', p.source, (p.spec->>'nhs_column')::name);
  PERFORM caredata._publication_view(name);
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
  PERFORM caredata._catalog_write('caredata.unpublish()');
  DELETE FROM caredata.publication x WHERE x.name = unpublish.name RETURNING * INTO p;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('publication "%s" does not exist', name),
      HINT = 'See caredata.publication.';
  END IF;
  EXECUTE format('DROP VIEW IF EXISTS published.%I', p.name);
  -- on Citus, what the view reads through (_publication_view)
  IF to_regprocedure(format('published.%I()', '_rows_' || substr(md5(p.name), 1, 12))) IS NOT NULL THEN
    EXECUTE format('DROP FUNCTION published.%I()', '_rows_' || substr(md5(p.name), 1, 12));
    EXECUTE format('DROP VIEW published.%I', '_query_' || substr(md5(p.name), 1, 12));
  END IF;
  PERFORM caredata.audit_append('publication.drop', name, jsonb_build_object('recipient', p.recipient));
END
$$;
COMMENT ON FUNCTION caredata.unpublish(text) IS 'drop a publication''s view and its record; audited';

-- equivalence classes of a published view's quasi-identifiers smaller than k
CREATE FUNCTION caredata.k_anonymity(view regclass, quasi_identifiers text[], k integer DEFAULT 5)
  RETURNS TABLE (rows bigint, classes bigint, classes_below_k bigint, rows_below_k bigint, share_below_k numeric)
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

REVOKE ALL ON FUNCTION caredata.refresh_pseudonyms(text, regclass, name), caredata._publish_column(name, text), caredata._publication_check(),
  caredata._publication_source_problem(regclass), caredata._publication_guard(),
  caredata._publication_view(text), caredata.publish(text, regclass, jsonb, name),
  caredata.republish(text), caredata.unpublish(text), caredata.k_anonymity(regclass, text[], integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION caredata._direct_identifier(regclass, name), caredata._direct_identifier_values(regclass, name),
  caredata._identifier_treatment_ok(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata._direct_identifier(regclass, name), caredata._identifier_treatment_ok(text, text) TO caredata_admin;
-- the reader check runs as each reader of a published view: _publication_view()
-- grants it to the view's recipient (it answers about the caller alone)
REVOKE ALL ON FUNCTION caredata._recipient_problem(name), caredata._published_reader() FROM PUBLIC;
REVOKE ALL ON FUNCTION caredata._published_approval(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata._published_approval(text) TO caredata_admin;
GRANT EXECUTE ON FUNCTION caredata._recipient_problem(name), caredata._published_reader() TO caredata_admin;
GRANT EXECUTE ON FUNCTION caredata.refresh_pseudonyms(text, regclass, name) TO caredata_admin, caredata_linker;
GRANT EXECUTE ON FUNCTION caredata._publish_column(name, text), caredata._publication_source_problem(regclass), caredata._publication_view(text), caredata.publish(text, regclass, jsonb, name),
  caredata.republish(text), caredata.unpublish(text), caredata.k_anonymity(regclass, text[], integer) TO caredata_admin;
