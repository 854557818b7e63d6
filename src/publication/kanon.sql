-- src/publication/kanon.sql
-- k-anonymity and linkability of a publication (issue 24, section 5).
--
-- A publication names its quasi-identifiers and a k in its spec.  Its view
-- keeps only the rows whose equivalence class (the rows with the same
-- values of every quasi-identifier) holds at least k persons, counted as
-- the view is read, so rows added to the source later are covered too;
-- codes of a "group" column that fewer than k persons hold become 'other',
-- also as the view is read.  How coarse the generalised columns are is
-- chosen by publish() and republish() on a fixed ladder (level 0 is the
-- spec as written, each level coarser, level 3 withholds the column): the
-- lowest level at which at most max_suppressed_share of the rows fall in
-- classes below k and at most max_linkable_share of the persons can be
-- linked across recipients (their set of published records is unique).
-- What was done is stored in caredata.publication.disclosure and shown by
-- caredata.publication_disclosure.  docs/disclosure-control.md.

CREATE TABLE caredata.publication_limits (
  one                   boolean PRIMARY KEY DEFAULT true CHECK (one),
  k                     integer NOT NULL DEFAULT 5 CHECK (k >= 2),
  max_linkable_share    numeric NOT NULL DEFAULT 0.05 CHECK (max_linkable_share BETWEEN 0 AND 1),
  max_suppressed_share  numeric NOT NULL DEFAULT 0.05 CHECK (max_suppressed_share BETWEEN 0 AND 1)
);
COMMENT ON TABLE caredata.publication_limits IS
  'publication limits (one row): the default k, the largest share of persons a publication may leave linkable across recipients (above it publish() refuses, unless caredata_admin overrides with an audited reason), the share of rows the generalisation ladder may suppress before it climbs; changed by the extension''s owner only, audited';
INSERT INTO caredata.publication_limits DEFAULT VALUES;
REVOKE ALL ON caredata.publication_limits FROM PUBLIC;
GRANT SELECT ON caredata.publication_limits TO caredata_admin;

CREATE FUNCTION caredata._publication_limits_audit() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM caredata.audit_append('publication.limits', NULL,
    pg_catalog.jsonb_build_object('old', pg_catalog.to_jsonb(OLD), 'new', pg_catalog.to_jsonb(NEW)));
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION caredata._publication_limits_audit() IS
  'internal: audits a change of caredata.publication_limits';
CREATE TRIGGER publication_limits_audit AFTER UPDATE ON caredata.publication_limits
  FOR EACH ROW EXECUTE FUNCTION caredata._publication_limits_audit();
CREATE FUNCTION caredata._publication_limits_refuse() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  -- an INSERT (a restore of changed limits: src/publication/kanon_dump.sql)
  -- sets the one row, as an audited UPDATE
  IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM caredata.publication_limits) THEN
    UPDATE caredata.publication_limits
       SET k = NEW.k, max_linkable_share = NEW.max_linkable_share, max_suppressed_share = NEW.max_suppressed_share;
    RETURN NULL;
  ELSIF TG_OP = 'INSERT' THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION USING ERRCODE = '55000', MESSAGE = 'caredata.publication_limits has exactly one row',
    HINT = 'UPDATE it (as the extension''s owner).';
END
$$;
COMMENT ON FUNCTION caredata._publication_limits_refuse() IS
  'internal: keeps caredata.publication_limits at one row (an INSERT sets it, a DELETE is refused)';
CREATE TRIGGER publication_limits_one BEFORE INSERT OR DELETE ON caredata.publication_limits
  FOR EACH ROW EXECUTE FUNCTION caredata._publication_limits_refuse();

-- a band of width w holding x, as '[lo,hi)'
CREATE FUNCTION caredata.band(x numeric, width numeric) RETURNS text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN '[' OPERATOR(pg_catalog.||) pg_catalog.trim_scale(pg_catalog.floor(x OPERATOR(pg_catalog./) width) OPERATOR(pg_catalog.*) width)::text
         OPERATOR(pg_catalog.||) ',' OPERATOR(pg_catalog.||)
         pg_catalog.trim_scale((pg_catalog.floor(x OPERATOR(pg_catalog./) width) OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog.*) width)::text
         OPERATOR(pg_catalog.||) ')';
COMMENT ON FUNCTION caredata.band(numeric, numeric) IS
  'the band of the given width holding a number, as text ''[lo,hi)'' (lo a multiple of width): band(1234, 1000) = ''[1000,2000)''';

-- Age bands as published (issue 26): the band's label sorts by age in
-- ORDER BY, as text, because its bounds are zero-padded to the digits of
-- the top band ('00-04', '05-09', '10-14', ..., '90+'), and the band's lower
-- bound is published beside it as a number (<column>_age_from).  A person
-- whose date of birth is unknown (missing or not a valid date) is in the
-- band 'unknown', which sorts after every age; <column>_age_from is NULL.
CREATE FUNCTION caredata.age_band_from(dob date, at date, width integer DEFAULT 5, top integer DEFAULT 90) RETURNS integer
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN LEAST(pg_catalog.date_part('year', pg_catalog.age(at::timestamp, dob::timestamp))::integer
                            OPERATOR(pg_catalog./) width OPERATOR(pg_catalog.*) width, top);
COMMENT ON FUNCTION caredata.age_band_from(date, date, integer, integer) IS
  'the lower bound, in completed years at date at, of a date of birth''s age band (width years, the top band from top): 40 for 40-44, 90 for 90+';
CREATE FUNCTION caredata.age_band_label(dob date, at date, width integer DEFAULT 5, top integer DEFAULT 90) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN CASE
    WHEN dob IS NULL OR at IS NULL OR width IS NULL OR top IS NULL THEN 'unknown'
    WHEN caredata.age_band(dob, at, width, top) OPERATOR(pg_catalog.~) '\+$' THEN top::text OPERATOR(pg_catalog.||) '+'
    ELSE (SELECT CASE WHEN b.lo OPERATOR(pg_catalog.=) b.hi THEN pg_catalog.lpad(b.lo::text, b.digits, '0')
                      ELSE pg_catalog.lpad(b.lo::text, b.digits, '0') OPERATOR(pg_catalog.||) '-'
                           OPERATOR(pg_catalog.||) pg_catalog.lpad(b.hi::text, b.digits, '0') END
            FROM (SELECT a.lo, LEAST(a.lo OPERATOR(pg_catalog.+) width OPERATOR(pg_catalog.-) 1, top OPERATOR(pg_catalog.-) 1) AS hi,
                         pg_catalog.length(top::text) AS digits
                    FROM (SELECT caredata.age_band_from(dob, at, width, top) AS lo) a) b)
  END;
COMMENT ON FUNCTION caredata.age_band_label(date, date, integer, integer) IS
  'an age band as publications show it, sorting by age as text: bounds zero-padded to the top band''s digits (''05-09'', ''40-44'', ''90+''); ''unknown'' when the date of birth is (NULL), after every age';

-- The ladder: what a treatment publishes at each level (0 = as the spec
-- says; 3 = withheld, NULL).  A treatment without a ladder (keep, group)
-- is the same at every level.
CREATE FUNCTION caredata._publish_step(how text, level integer) RETURNS text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN CASE
    WHEN how OPERATOR(pg_catalog.=) ANY (ARRAY['keep', 'group']) THEN how
    WHEN level OPERATOR(pg_catalog.>=) 3 THEN 'withheld'
    WHEN how OPERATOR(pg_catalog.=) 'month' THEN (ARRAY['month', 'quarter', 'year'])[level OPERATOR(pg_catalog.+) 1]
    WHEN how OPERATOR(pg_catalog.=) 'quarter' THEN (ARRAY['quarter', 'year', 'withheld'])[level OPERATOR(pg_catalog.+) 1]
    WHEN how OPERATOR(pg_catalog.=) 'year' THEN (ARRAY['year', 'year:5', 'year:10'])[level OPERATOR(pg_catalog.+) 1]
    WHEN how OPERATOR(pg_catalog.=) 'year_of_birth' THEN (ARRAY['year_of_birth', 'year_of_birth:5', 'year_of_birth:10'])[level OPERATOR(pg_catalog.+) 1]
    WHEN how OPERATOR(pg_catalog.=) 'age_band' THEN (ARRAY['age_band:5', 'age_band:10', 'age_band:20'])[level OPERATOR(pg_catalog.+) 1]
    WHEN how OPERATOR(pg_catalog.=) 'sector' THEN (ARRAY['sector', 'district', 'area'])[level OPERATOR(pg_catalog.+) 1]
    WHEN how OPERATOR(pg_catalog.=) 'district' THEN (ARRAY['district', 'area', 'area'])[level OPERATOR(pg_catalog.+) 1]
    WHEN how OPERATOR(pg_catalog.=) 'area' THEN 'area'
    WHEN how OPERATOR(pg_catalog.~) '^band:[0-9]+(\.[0-9]+)?$' AND pg_catalog.substr(how, 6)::numeric OPERATOR(pg_catalog.>) 0
      THEN 'band:' OPERATOR(pg_catalog.||) pg_catalog.trim_scale(pg_catalog.substr(how, 6)::numeric
                                             OPERATOR(pg_catalog.*) (ARRAY[1, 2, 4])[level OPERATOR(pg_catalog.+) 1])::text
  END;
COMMENT ON FUNCTION caredata._publish_step(text, integer) IS
  'internal: the generalisation step a column treatment takes at a ladder level (0: as the spec says; 1 and 2 coarser; 3: withheld); NULL for an unknown treatment';

-- the name a treated column has in the view
CREATE FUNCTION caredata._publish_name(col name, how text) RETURNS text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN CASE
    WHEN how OPERATOR(pg_catalog.=) ANY (ARRAY['keep', 'group']) THEN col::text
    WHEN how OPERATOR(pg_catalog.=) 'year_of_birth' THEN col::text OPERATOR(pg_catalog.||) '_year'
    WHEN how OPERATOR(pg_catalog.~) '^band:' THEN col::text OPERATOR(pg_catalog.||) '_band'
    ELSE col::text OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) how
  END;
COMMENT ON FUNCTION caredata._publish_name(name, text) IS
  'internal: the name of a published column in its view (dob as age_band is dob_age_band, cost as band:1000 is cost_band)';

-- the select-list expression publishing a column at a ladder level
CREATE FUNCTION caredata._publish_column_at(col name, how text, level integer) RETURNS text
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  step text := caredata._publish_step(how, level);
  out text := caredata._publish_name(col, how);
  dob text := format('caredata.try_standardise_dob(s.%I::text)', col);
BEGIN
  IF step IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN format('%s AS %I', CASE
    WHEN step = 'keep' THEN format('s.%I', col)
    WHEN step = 'group' THEN format('s.%I::text', col)
    WHEN step = 'withheld' THEN format('NULL::%s', CASE
      WHEN how IN ('month', 'quarter') THEN 'date'
      WHEN how IN ('year', 'year_of_birth') THEN 'integer'
      ELSE 'text' END)
      -- (an age band's lower bound, beside it: withheld too)
      || CASE WHEN how = 'age_band' THEN format(' AS %I, NULL::integer', out) ELSE '' END
    WHEN step IN ('month', 'quarter', 'year') AND how IN ('month', 'quarter')
      THEN format('pg_catalog.date_trunc(%L, s.%I::timestamp)::date', step, col)
    WHEN step = 'year' THEN format('pg_catalog.date_part(''year'', s.%I::timestamp)::integer', col)
    WHEN step ~ '^year:' THEN format('(pg_catalog.date_part(''year'', s.%I::timestamp)::integer OPERATOR(pg_catalog./) %s OPERATOR(pg_catalog.*) %2$s)',
                                     col, substr(step, 6))
    WHEN step = 'year_of_birth' THEN format('pg_catalog.date_part(''year'', %s)::integer', dob)
    WHEN step ~ '^year_of_birth:' THEN format('(pg_catalog.date_part(''year'', %s)::integer OPERATOR(pg_catalog./) %s OPERATOR(pg_catalog.*) %2$s)',
                                              dob, substr(step, 15))
    WHEN step ~ '^age_band:' THEN format('caredata.age_band_label(%1$s, CURRENT_DATE, %2$s, %3$s) AS %4$I, '
                                         'caredata.age_band_from(%1$s, CURRENT_DATE, %2$s, %3$s)', dob, substr(step, 10),
                                         CASE WHEN step = 'age_band:20' THEN 80 ELSE 90 END, out)
    WHEN step IN ('sector', 'district', 'area') THEN format('caredata.try_postcode_%s(s.%I::text)', step, col)
    WHEN step ~ '^band:' THEN format('caredata.band(s.%I::numeric, %s)', col, substr(step, 6))
  END, CASE WHEN how = 'age_band' THEN col || '_age_from' ELSE out END);
END
$$;
COMMENT ON FUNCTION caredata._publish_column_at(name, text, integer) IS
  'internal: the select-list expression publishing a column with a treatment at a ladder level (see _publish_step); NULL for an unknown treatment';

-- the spec's quasi-identifiers, as the view names them: the spec's
-- "quasi_identifiers" (source columns), else every column published as a
-- date, an age or a place, and a kept sex or gender
CREATE FUNCTION caredata._publication_qi(spec jsonb) RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(pg_catalog.array_agg(caredata._publish_name(c.key, c.value) ORDER BY c.key), '{}')
    FROM pg_catalog.jsonb_each_text(spec OPERATOR(pg_catalog.->) 'columns') c
   WHERE CASE WHEN spec OPERATOR(pg_catalog.?) 'quasi_identifiers'
              THEN c.key OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT pg_catalog.jsonb_array_elements_text(spec OPERATOR(pg_catalog.->) 'quasi_identifiers')))
              ELSE c.value OPERATOR(pg_catalog.=) ANY (ARRAY['age_band', 'year_of_birth', 'sector', 'district', 'area', 'month', 'quarter', 'year'])
                OR pg_catalog.lower(c.key) OPERATOR(pg_catalog.~) '^(sex|gender)(_|$)' END
$$;
COMMENT ON FUNCTION caredata._publication_qi(jsonb) IS
  'internal: a publication''s quasi-identifiers as its view names them (the spec''s "quasi_identifiers", else its dates, ages, places and sex)';

-- its k: the spec's, else the limits' default
CREATE FUNCTION caredata._publication_k(spec jsonb) RETURNS integer
  LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  -- an identifiable release under a registered approval: no k (the
  -- approval, not generalisation, is its basis)
  SELECT CASE WHEN spec OPERATOR(pg_catalog.?) 'approval' THEN 1
              ELSE coalesce((spec OPERATOR(pg_catalog.->>) 'k')::integer, (SELECT l.k FROM caredata.publication_limits l)) END
$$;
COMMENT ON FUNCTION caredata._publication_k(jsonb) IS
  'internal: a publication''s k (its spec''s "k", else caredata.publication_limits.k)';

-- what a spec may say about k, its quasi-identifiers and an override
-- (checked by _publication_check as the role publishing)
CREATE FUNCTION caredata._publication_kanon_check(spec jsonb) RETURNS void
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q text;
BEGIN
  IF spec ? 'k' AND (jsonb_typeof(spec->'k') IS DISTINCT FROM 'number' OR (spec->>'k') !~ '^[0-9]{1,9}$' OR (spec->>'k')::integer < 2) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication''s k is an integer of at least 2',
      HINT = 'Leave "k" out for the default (caredata.publication_limits, 5).';
  END IF;
  IF spec ? 'quasi_identifiers' THEN
    IF jsonb_typeof(spec->'quasi_identifiers') IS DISTINCT FROM 'array' THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a publication''s quasi_identifiers are a list of its columns',
        HINT = 'For example ["dob", "sex", "postcode"], the source''s names as in "columns".';
    END IF;
    FOR q IN SELECT jsonb_array_elements_text(spec->'quasi_identifiers') LOOP
      IF NOT (spec->'columns') ? q THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('quasi-identifier "%s" is not a published column', q),
          HINT = 'Name quasi-identifiers as the spec''s "columns" names them.';
      END IF;
    END LOOP;
  END IF;
  IF spec ? 'linkability_override' THEN
    IF jsonb_typeof(spec->'linkability_override') IS DISTINCT FROM 'string' OR length(btrim(spec->>'linkability_override')) < 10 THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a linkability override needs its reason',
        HINT = 'Set "linkability_override" to why this recipient may receive linkable records (an approval, its reference); it is audited.';
    END IF;
    IF NOT pg_has_role(current_user, 'caredata_admin', 'MEMBER') THEN
      RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'only caredata_admin may override the linkability limit',
        HINT = 'Ask an admin; the override is audited.';
    END IF;
  END IF;
END
$$;
COMMENT ON FUNCTION caredata._publication_kanon_check(jsonb) IS
  'internal: checks a spec''s "k", "quasi_identifiers" and "linkability_override" (a reason, caredata_admin only)';

-- A publication's query at a ladder level, k enforced: base yields person
-- and the published columns; "group" columns' rare codes become 'other';
-- rows in classes of fewer than k persons are left out.  With measure, the
-- rows of small classes stay, with their class size in _class (for
-- _publication_measure).
CREATE FUNCTION caredata._publication_kanon_query(spec jsonb, base text, measure boolean DEFAULT false) RETURNS text
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  k integer := caredata._publication_k(spec);
  qi text[] := caredata._publication_qi(spec);
  c record;
  cols text := '';
  flags text := '';
  grouped text := '';
  q text := base;
  part text;
BEGIN
  FOR c IN SELECT key, value, caredata._publish_name(key, value) AS out FROM jsonb_each_text(spec->'columns') ORDER BY key LOOP
    cols := cols || format(', b.%I', c.out);
    IF c.value = 'group' THEN
      flags := flags || format(', pg_catalog.row_number() OVER (PARTITION BY b.%1$I, b.person) AS %2$I', c.out, '_f_' || c.out);
      grouped := grouped || format(', CASE WHEN pg_catalog.count(*) FILTER (WHERE b.%2$I OPERATOR(pg_catalog.=) 1) OVER (PARTITION BY b.%1$I) '
                                   'OPERATOR(pg_catalog.<) %3$s AND b.%1$I IS NOT NULL THEN ''other'' ELSE b.%1$I END AS %1$I',
                                   c.out, '_f_' || c.out, k);
    ELSE
      grouped := grouped || format(', b.%I', c.out);
    END IF;
    -- an age band's lower bound, beside it (a function of the band: no quasi-identifier of its own)
    IF c.value = 'age_band' THEN
      cols := cols || format(', b.%I', c.key || '_age_from');
      grouped := grouped || format(', b.%I', c.key || '_age_from');
    END IF;
  END LOOP;
  IF flags <> '' THEN
    q := format('SELECT b.person%s FROM (SELECT b.*%s FROM (%s) b) b', grouped, flags, q);
  END IF;
  part := (SELECT string_agg(format('b.%I', x), ', ') FROM unnest(qi) x);
  q := format('SELECT b.*, pg_catalog.count(*) FILTER (WHERE b._first OPERATOR(pg_catalog.=) 1) OVER (%s) AS _class '
              'FROM (SELECT b.*, pg_catalog.row_number() OVER (PARTITION BY %sb.person) AS _first FROM (%s) b) b',
              CASE WHEN part IS NULL THEN '' ELSE 'PARTITION BY ' || part END,
              CASE WHEN part IS NULL THEN '' ELSE part || ', ' END, q);
  IF measure THEN
    RETURN q;
  END IF;
  RETURN format('SELECT b.person%s FROM (%s) b WHERE b._class OPERATOR(pg_catalog.>=) %s', cols, q, k);
END
$$;
COMMENT ON FUNCTION caredata._publication_kanon_query(jsonb, text, boolean) IS
  'internal: wraps a publication''s query so that rare codes of "group" columns become ''other'' and rows in classes of fewer than k persons are left out (with measure: kept, with their class size)';

-- What a publication's query at a level releases: rows, rows left out,
-- classes, the smallest class published, persons, and the persons whose
-- set of published records no other person shares (whom a second
-- recipient of the same columns links 1:1).  Run as the view's owner.
CREATE FUNCTION caredata._publication_measure(spec jsonb, base text) RETURNS jsonb
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  k integer := caredata._publication_k(spec);
  rowtext text;
  r jsonb;
BEGIN
  rowtext := (SELECT format('ROW(%s)::text', string_agg(format('v.%I', caredata._publish_name(key, value)), ', ' ORDER BY key))
                FROM jsonb_each_text(spec->'columns'));
  EXECUTE format($q$
    WITH v AS MATERIALIZED (%1$s),
    per AS (SELECT v.person, pg_catalog.md5(pg_catalog.string_agg(%2$s, pg_catalog.chr(30) ORDER BY %2$s)) AS sig
              FROM v WHERE v._class OPERATOR(pg_catalog.>=) $1 GROUP BY v.person),
    sig AS (SELECT per.sig, pg_catalog.count(*) AS n FROM per GROUP BY per.sig)
    SELECT pg_catalog.jsonb_build_object(
      'rows', (SELECT pg_catalog.count(*) FROM v),
      'rows_suppressed', (SELECT pg_catalog.count(*) FROM v WHERE v._class OPERATOR(pg_catalog.<) $1),
      'smallest_class', (SELECT pg_catalog.min(v._class) FROM v WHERE v._class OPERATOR(pg_catalog.>=) $1),
      'persons', (SELECT pg_catalog.count(*) FROM per),
      'linkable_persons', (SELECT coalesce(pg_catalog.sum(sig.n), 0) FROM sig WHERE sig.n OPERATOR(pg_catalog.=) 1))$q$,
    caredata._publication_kanon_query(spec, base, true), rowtext)
    INTO r USING k;
  RETURN r || jsonb_build_object(
    'suppressed_share', round(coalesce((r->>'rows_suppressed')::numeric / nullif((r->>'rows')::numeric, 0), 0), 4),
    'linkable_share', round(coalesce((r->>'linkable_persons')::numeric / nullif((r->>'persons')::numeric, 0), 0), 4));
END
$$;
COMMENT ON FUNCTION caredata._publication_measure(jsonb, text) IS
  'internal: what a publication''s query releases: rows, rows suppressed (classes below k), smallest class, persons, persons whose set of published records is unique (linkable across recipients), and their shares';

-- a publication's query before k: person and its columns at a ladder
-- level, from the source joined to the stored pseudonyms, objectors left
-- out; the reader is checked by the query (by the outer view on Citus)
CREATE FUNCTION caredata._publication_base(p caredata.publication, level integer, citus boolean) RETURNS text
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  cols text;
BEGIN
  cols := (SELECT coalesce(string_agg(', ' || caredata._publish_column_at(c.key, c.value, level), '' ORDER BY c.key), '')
             FROM jsonb_each_text(p.spec->'columns') c);
  IF citus THEN
    -- (on Citus the query names its domain and dataset: the coordinator's
    -- catalog is not read on the workers)
    RETURN format($v$
    SELECT m.pseudonym::text AS person%1$s
      FROM %2$s s
      JOIN caredata.pseudonym_map m ON m.domain = %3$L AND m.nhs_number OPERATOR(caredata.=) caredata.try_nhs_number(s.%4$I::text)
     WHERE caredata.permitted(m.nhs_number, %5$L, now(), %6$L)$v$,
      cols, p.source, p.spec->>'domain', p.spec->>'nhs_column', p.spec->>'purpose', p.spec->>'dataset');
  END IF;
  -- Every role reads every view's definition (pg_views, pg_get_viewdef):
  -- the recipient's domain and dataset are read from the catalog row by
  -- the view (once a query, as its owner), so that the definition names
  -- only what pg_class and pg_attribute show anyway (docs/publication.md)
  RETURN format($v$
    SELECT m.pseudonym::text AS person%1$s
      FROM %2$s s
      JOIN caredata.pseudonym_map m
        ON m.domain OPERATOR(pg_catalog.=) (SELECT p.spec OPERATOR(pg_catalog.->>) 'domain' FROM caredata.publication p WHERE p.name OPERATOR(pg_catalog.=) %3$L)
       AND m.nhs_number OPERATOR(caredata.=) caredata.try_nhs_number(s.%4$I::text)
     WHERE caredata.permitted(m.nhs_number, %5$L, pg_catalog.now(), %6$s) AND (SELECT caredata._published_reader())$v$,
    cols, p.source, p.name, p.spec->>'nhs_column', p.spec->>'purpose',
    -- (no dataset: a constant NULL, which keeps permitted()'s constant-argument path)
    CASE WHEN p.spec->>'dataset' IS NULL THEN 'NULL::text'
         ELSE format('(SELECT p.spec OPERATOR(pg_catalog.->>) ''dataset'' FROM caredata.publication p WHERE p.name OPERATOR(pg_catalog.=) %L)', p.name) END);
END
$$;
COMMENT ON FUNCTION caredata._publication_base(caredata.publication, integer, boolean) IS
  'internal: a publication''s query before k is enforced: person (the stored pseudonym) and its columns at a ladder level, objectors left out';

-- The ladder climbed (publish() and republish(), as the view's owner): the
-- lowest level at which at most max_suppressed_share of the rows fall in
-- classes below k and at most max_linkable_share of the persons are
-- linkable.  Else the lowest level within the suppression limit (or, when
-- none is, the level suppressing least), if its persons are not linkable;
-- else a refusal, unless the spec carries an admin's "linkability_override"
-- (audited; that level is then published).  What was done goes to
-- caredata.publication.disclosure.
CREATE FUNCTION caredata._publication_disclose(p caredata.publication, citus boolean) RETURNS integer
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  lim caredata.publication_limits;
  m jsonb;
  chosen jsonb;
  cand jsonb;
  least_supp jsonb;
  best jsonb;
  steps jsonb;
  prev_steps jsonb;
  lvl integer;
  overridden boolean := false;
BEGIN
  SELECT * INTO lim FROM caredata.publication_limits;
  -- an identifiable release under a registered approval (the approval
  -- register, src/publication/approval.sql) is published as the approval
  -- allows: not generalised, no class left out, nothing refused for
  -- linkability; what it discloses is still measured and recorded
  IF p.spec ? 'approval' THEN
    m := caredata._publication_measure(p.spec, caredata._publication_base(p, 0, citus))
         || jsonb_build_object('level', 0, 'steps', '{}'::jsonb);
    UPDATE caredata.publication x
       SET disclosure = m || jsonb_build_object(
             'k', 1, 'quasi_identifiers', '[]'::jsonb, 'approval', p.spec->>'approval',
             'max_linkable_share', lim.max_linkable_share, 'max_suppressed_share', lim.max_suppressed_share,
             'overridden', false, 'measured_at', now())
     WHERE x.name = p.name;
    RETURN 0;
  END IF;
  FOR lvl IN 0..3 LOOP
    steps := (SELECT coalesce(jsonb_object_agg(c.key, caredata._publish_step(c.value, lvl)), '{}')
                FROM jsonb_each_text(p.spec->'columns') c);
    IF steps = prev_steps THEN
      EXIT;  -- nothing coarser to try
    END IF;
    prev_steps := steps;
    m := caredata._publication_measure(p.spec, caredata._publication_base(p, lvl, citus))
         || jsonb_build_object('level', lvl, 'steps', steps);
    IF best IS NULL OR (m->>'linkable_share')::numeric < (best->>'linkable_share')::numeric THEN
      best := m;
    END IF;
    IF (m->>'suppressed_share')::numeric <= lim.max_suppressed_share THEN
      IF (m->>'linkable_share')::numeric <= lim.max_linkable_share THEN
        chosen := m;
        EXIT;
      END IF;
      -- the lowest level within the suppression limit
      cand := coalesce(cand, m);
    ELSIF least_supp IS NULL OR (m->>'rows_suppressed')::bigint < (least_supp->>'rows_suppressed')::bigint THEN
      least_supp := m;
    END IF;
  END LOOP;
  -- else the lowest level within the suppression limit, else the level
  -- that suppresses least; published if its persons are not linkable
  cand := coalesce(chosen, cand, least_supp);
  IF chosen IS NULL AND (cand->>'linkable_share')::numeric <= lim.max_linkable_share THEN
    chosen := cand;
  END IF;
  IF chosen IS NULL THEN
    IF p.spec->>'linkability_override' IS NULL THEN
      RAISE EXCEPTION USING ERRCODE = '42501',
        MESSAGE = format('publication "%s" would leave %s%% of its persons linkable across recipients', p.name,
                         round(100 * (cand->>'linkable_share')::numeric, 1)),
        DETAIL = format('%s of %s persons have a set of published records that no other person has (generalisation level %s of 3; the least at any level: %s%% at level %s); the limit is %s%%.',
                        cand->>'linkable_persons', cand->>'persons', cand->>'level',
                        round(100 * (best->>'linkable_share')::numeric, 1), best->>'level', round(100 * lim.max_linkable_share, 1)),
        HINT = 'Publish fewer or coarser columns (numbers as "band:N", codes as "group"), or, as caredata_admin, set "linkability_override" in the spec to the reason (audited).';
    END IF;
    chosen := cand;
    overridden := true;
    PERFORM caredata.audit_append('publication.linkability_override', p.name,
      jsonb_build_object('recipient', p.recipient, 'linkable_share', chosen->'linkable_share',
                         'max_linkable_share', lim.max_linkable_share, 'level', chosen->'level'),
      p.spec->>'linkability_override');
  END IF;
  UPDATE caredata.publication x
     SET disclosure = chosen || jsonb_build_object(
           'k', caredata._publication_k(p.spec), 'quasi_identifiers', to_jsonb(caredata._publication_qi(p.spec)),
           'max_linkable_share', lim.max_linkable_share, 'max_suppressed_share', lim.max_suppressed_share,
           'overridden', overridden, 'measured_at', now())
   WHERE x.name = p.name;
  RETURN (chosen->>'level')::integer;
END
$$;
COMMENT ON FUNCTION caredata._publication_disclose(caredata.publication, boolean) IS
  'internal: climbs the generalisation ladder for a publication (k, suppression and linkability limits), refuses it when its persons stay linkable unless overridden (audited), records what was done in caredata.publication.disclosure; returns the level';

CREATE VIEW caredata.publication_disclosure AS
  SELECT p.name, p.recipient,
         (p.disclosure->>'k')::integer AS k,
         ARRAY(SELECT jsonb_array_elements_text(p.disclosure->'quasi_identifiers')) AS quasi_identifiers,
         (p.disclosure->>'level')::integer AS level,
         p.disclosure->'steps' AS steps,
         (p.disclosure->>'rows')::bigint - (p.disclosure->>'rows_suppressed')::bigint AS rows_published,
         (p.disclosure->>'rows_suppressed')::bigint AS rows_suppressed,
         (p.disclosure->>'smallest_class')::bigint AS smallest_class,
         (p.disclosure->>'persons')::bigint AS persons,
         (p.disclosure->>'linkable_share')::numeric AS linkable_share,
         (p.disclosure->>'max_linkable_share')::numeric AS max_linkable_share,
         (p.disclosure->>'overridden')::boolean AS overridden,
         (p.disclosure->>'measured_at')::timestamptz AS measured_at
    FROM caredata.publication p;
COMMENT ON VIEW caredata.publication_disclosure IS
  'what publish() or republish() did to each publication, as measured then: k, quasi-identifiers, ladder level and each column''s step, rows published and suppressed (classes below k), the smallest class, persons, the share of persons linkable across recipients, the limit, and whether an admin overrode it';
REVOKE ALL ON caredata.publication_disclosure FROM PUBLIC;
GRANT SELECT ON caredata.publication_disclosure TO caredata_admin;

REVOKE ALL ON FUNCTION caredata._publication_limits_audit(), caredata._publication_limits_refuse(),
  caredata._publish_step(text, integer), caredata._publish_name(name, text), caredata._publish_column_at(name, text, integer),
  caredata._publication_qi(jsonb), caredata._publication_k(jsonb), caredata._publication_kanon_check(jsonb),
  caredata._publication_kanon_query(jsonb, text, boolean), caredata._publication_measure(jsonb, text),
  caredata._publication_base(caredata.publication, integer, boolean),
  caredata._publication_disclose(caredata.publication, boolean) FROM PUBLIC;
-- (the check runs as the role inserting a publication: an admin)
GRANT EXECUTE ON FUNCTION caredata._publish_step(text, integer), caredata._publish_name(name, text),
  caredata._publish_column_at(name, text, integer), caredata._publication_qi(jsonb), caredata._publication_k(jsonb),
  caredata._publication_kanon_check(jsonb) TO caredata_admin;
