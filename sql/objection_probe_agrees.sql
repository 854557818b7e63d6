-- sql/objection_probe_agrees.sql: the objection policy is written twice, in
-- SQL (caredata.blocked_nhs_numbers, src/objection/register.sql) and in C
-- (src/register_probe.c, which answers permitted(n, purpose, at, dataset)
-- when at is a column).  On random registers (fixed seeds) this checks, for
-- every (number, purpose, dataset, time) asked about, that four answers are
-- the same:
--   reference      n in blocked_nhs_numbers(purpose, dataset, at)
--   constant       permitted() with a constant time: the blocked set
--                  (src/blocked_set.c), reused across queries by interval
--   probe          permitted(u.n, u.p, u.t, u.d), every argument a column:
--                  register_probe.c, its set-up redone as purpose and
--                  dataset change from row to row
--   probe_literal  permitted(u.n, 'research', u.t, 'study_a'), the form a
--                  query over admissions takes: register_probe.c
-- Each round prints the number of tuples, of disagreements (0), and whether
-- its register covered what it must; a disagreement is listed in WARNINGs
-- (the numbers are synthetic).  The SQL is the reference.
CREATE EXTENSION caredata;
SET search_path = public, caredata;
\i sql/include/test_pool.psql

-- permitted() answers for numbers of the caller's choosing only to
-- superusers and caredata_admin: one round runs as a member of caredata_admin
CREATE ROLE regress_probe_admin NOLOGIN IN ROLE caredata_admin;

-- The times a register uses: effective, withdrawal, grant, expiry and
-- revocation times are drawn from these (or are -infinity / infinity /
-- NULL).  Two are a microsecond apart, some have fractions of a second, two
-- fall on the hour clocks change in Europe/London.
CREATE TEMP TABLE grid (g timestamptz PRIMARY KEY);
INSERT INTO grid VALUES
  ('2023-12-31 23:59:59.999999+00'), ('2024-01-01 00:00:00+00'),
  ('2024-03-31 01:00:00+00'), ('2024-03-31 01:00:00.000001+00'),
  ('2024-06-15 08:30:00+05:30'), ('2024-10-27 01:30:00+00'),
  ('2025-01-01 00:00:00+00'), ('2025-07-01 00:00:00.5+00'),
  ('2026-01-01 00:00:00+00'), ('2030-01-01 00:00:00+00');
-- the numbers asked about: 150 (some get no register rows at all)
CREATE TEMP TABLE num AS SELECT n FROM pool WHERE i <= 150;
-- the times asked about: every register time exactly, a microsecond before
-- each, and both infinities
CREATE TEMP TABLE point AS
SELECT p, d, t
  FROM unnest(ARRAY['direct_care', 'research', 'planning', 'commissioning']) p,
       unnest(ARRAY[NULL, 'study_a', 'study_b', 'other']) d,
       (SELECT g AS t FROM grid
        UNION SELECT g - interval '1 microsecond' FROM grid
        UNION VALUES ('-infinity'::timestamptz), ('infinity')) t;
-- every number at every point, in (purpose, dataset) order: the probe's
-- set-up (the exemptions) is redone when they change from one row to the next
CREATE TEMP TABLE tuple AS
SELECT pt.p, pt.d, pt.t, u.n FROM point pt, num u ORDER BY pt.p, pt.d NULLS FIRST, u.n, pt.t;
-- what each path said is blocked
CREATE TEMP TABLE blocked (path text, p text, d text, t timestamptz, n nhs_number);
GRANT ALL ON grid, num, point, tuple, blocked TO regress_probe_admin;
SELECT (SELECT count(*) FROM point) AS points, (SELECT count(*) FROM tuple) AS tuples_per_round;

-- A random register, and the reference answers (as superuser: only the
-- register's owner may run blocked_nhs_numbers).
CREATE FUNCTION pg_temp.make_register(seed float8) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_grid timestamptz[] := ARRAY(SELECT g FROM pg_temp.grid ORDER BY g);
  ng int := cardinality(v_grid);
  all_purposes text[] := ARRAY['direct_care', 'research', 'planning', 'commissioning'];
  u record;
  v_kind text;
  v_study text;
  v_covers text[];
  v_from timestamptz;
  v_to timestamptz;
  i int;
  r float8;
  open_keys text[];
BEGIN
  PERFORM setseed(seed);
  TRUNCATE caredata.objection, caredata.exemption, pg_temp.blocked;
  FOR u IN SELECT n FROM pg_temp.num ORDER BY n LOOP
    open_keys := '{}';
    FOR k IN 1 .. floor(random() * 5)::int LOOP     -- 0 to 4 rows a patient
      v_kind := (ARRAY['national_data_opt_out', 'type1', 'dissent', 'consent'])[1 + floor(random() * 4)::int];
      v_study := CASE WHEN v_kind IN ('dissent', 'consent')
                      THEN (ARRAY['study_a', 'study_b'])[1 + floor(random() * 2)::int] END;
      -- the kind's default purposes, or any others (direct_care included),
      -- now and then with a NULL element
      IF random() < 0.6 THEN
        v_covers := caredata.default_purposes(v_kind);
      ELSE
        v_covers := ARRAY(SELECT x FROM unnest(all_purposes) x WHERE random() < 0.5);
        IF cardinality(v_covers) = 0 THEN
          v_covers := ARRAY[all_purposes[1 + floor(random() * 4)::int]];
        END IF;
      END IF;
      IF random() < 0.05 THEN
        v_covers := v_covers || NULL::text;
      END IF;
      i := 1 + floor(random() * ng)::int;
      v_from := CASE WHEN random() < 0.1 THEN '-infinity' ELSE v_grid[i] END;
      r := random();
      v_to := CASE WHEN r < 0.3 THEN NULL                 -- open
                   WHEN r < 0.4 THEN 'infinity'           -- withdrawn "at infinity"
                   WHEN r < 0.5 THEN v_from               -- never in force
                   ELSE v_grid[i + floor(random() * (ng - i + 1))::int] END;
      -- one open objection per patient, kind and study (objection_open)
      IF v_to IS NULL AND v_kind || '/' || coalesce(v_study, '') = ANY (open_keys) THEN
        v_to := v_grid[ng];
      END IF;
      IF v_to IS NULL THEN
        open_keys := open_keys || (v_kind || '/' || coalesce(v_study, ''));
      END IF;
      INSERT INTO caredata.objection (nhs_number, kind, purposes, study, effective_from, withdrawn_at, source)
      VALUES (u.n, v_kind, v_covers, v_study, v_from, v_to, 'regress');
    END LOOP;
  END LOOP;
  -- exemptions for some (dataset, purpose, kind), a few twice; open or
  -- ending by expiry or revocation, at a grid time or at infinity
  INSERT INTO caredata.exemption (dataset, purpose, objection_kind, legal_basis, reference, granted_at, expires_at, revoked_at)
  SELECT e.ds, e.pu, e.ki, 'cag_section_251', 'CAG regress',
         CASE WHEN random() < 0.15 THEN '-infinity'::timestamptz ELSE v_grid[1 + floor(random() * ng)::int] END,
         CASE WHEN e.r1 < 0.5 THEN NULL WHEN e.r1 < 0.6 THEN 'infinity'::timestamptz
              ELSE v_grid[1 + floor(random() * ng)::int] END,
         CASE WHEN e.r2 < 0.6 THEN NULL WHEN e.r2 < 0.7 THEN 'infinity'::timestamptz
              ELSE v_grid[1 + floor(random() * ng)::int] END
    FROM (SELECT ds, pu, ki, c, random() AS keep, random() AS r1, random() AS r2
            FROM unnest(ARRAY['study_a', 'study_b', 'other']) ds,
                 unnest(all_purposes) pu,
                 unnest(ARRAY['national_data_opt_out', 'type1', 'dissent']) ki,
                 generate_series(1, 2) c
           ORDER BY ds, pu, ki, c) e
   WHERE e.keep < 0.25;
  -- the reference
  INSERT INTO pg_temp.blocked
  SELECT DISTINCT 'reference'::text, pt.p, pt.d, pt.t, b.nhs_number
    FROM pg_temp.point pt, LATERAL caredata.blocked_nhs_numbers(pt.p, pt.d, pt.t) b
   WHERE b.nhs_number IN (SELECT n FROM pg_temp.num);
END $$;

-- A time as a literal that reads back the same whatever DateStyle and
-- TimeZone say: ISO 8601, UTC, microseconds.
CREATE FUNCTION pg_temp.literal(t timestamptz) RETURNS text LANGUAGE sql STABLE
RETURN CASE WHEN NOT isfinite(t) THEN t::text
            ELSE to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' END;

-- The constant-time path: one query per (purpose, dataset, time), all three
-- literals, in time order within a purpose and dataset, so that a set is
-- reused across queries while the time stays in its interval, and rebuilt
-- when it leaves it.
CREATE FUNCTION pg_temp.constant_blocked() RETURNS TABLE (cp text, cd text, ct timestamptz, cn nhs_number)
LANGUAGE plpgsql AS $$
DECLARE
  q record;
BEGIN
  FOR q IN SELECT pt.p, pt.d, pt.t FROM pg_temp.point pt ORDER BY pt.p, pt.d NULLS FIRST, pt.t LOOP
    RETURN QUERY EXECUTE format(
      'SELECT $1, $2, $3, u.n FROM pg_temp.num u
        WHERE NOT caredata.permitted(u.n, %L, %L::timestamptz, %L::text)',
      q.p, pg_temp.literal(q.t), q.d) USING q.p, q.d, q.t;
  END LOOP;
END $$;

-- The three permitted() answers, as whoever runs it.
CREATE FUNCTION pg_temp.answer() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  q record;
BEGIN
  -- first, before this transaction writes, so that the sets it builds are
  -- offered to other backends as they would be in production
  INSERT INTO pg_temp.blocked SELECT 'constant'::text, c.* FROM pg_temp.constant_blocked() c;
  -- the time, purpose and dataset all columns
  INSERT INTO pg_temp.blocked
  SELECT 'probe'::text, u.p, u.d, u.t, u.n FROM pg_temp.tuple u
   WHERE NOT caredata.permitted(u.n, u.p, u.t, u.d);
  -- the time a column, purpose and dataset literals
  FOR q IN SELECT DISTINCT pt.p, pt.d FROM pg_temp.point pt LOOP
    EXECUTE format(
      'INSERT INTO pg_temp.blocked
       SELECT ''probe_literal'', u.p, u.d, u.t, u.n
         FROM (SELECT * FROM pg_temp.tuple v
                WHERE v.p = %1$L AND v.d IS NOT DISTINCT FROM %2$L::text OFFSET 0) u
        WHERE NOT caredata.permitted(u.n, %1$L, u.t, %2$L::text)', q.p, q.d);
  END LOOP;
END $$;

-- How many tuples, how many on which the four answers differ (listing the
-- first few), and whether the register had what the round must cover.
CREATE FUNCTION pg_temp.agreement(OUT tuples bigint, OUT disagreements bigint, OUT covered boolean)
LANGUAGE plpgsql AS $$
DECLARE
  x record;
  missing text[] := '{}';
BEGIN
  SELECT count(*) INTO tuples FROM pg_temp.tuple;
  SELECT count(*) INTO disagreements FROM (
    SELECT 1 FROM pg_temp.blocked b GROUP BY b.p, b.d, b.t, b.n
    HAVING count(DISTINCT b.path) <> 4) z;
  FOR x IN
    SELECT b.n, b.p, b.d, pg_temp.literal(b.t) AS at,
           string_agg(b.path, ', ' ORDER BY b.path) AS blocked_by,
           (SELECT string_agg(format('%s %s %s [%s, %s)', o.kind, o.purposes, o.study,
                                     pg_temp.literal(o.effective_from), pg_temp.literal(o.withdrawn_at)), '; ' ORDER BY o.id)
              FROM caredata.objection o WHERE o.nhs_number = b.n) AS register
      FROM pg_temp.blocked b GROUP BY b.p, b.d, b.t, b.n
     HAVING count(DISTINCT b.path) <> 4
     ORDER BY b.n, b.p, b.d, b.t LIMIT 5
  LOOP
    RAISE WARNING 'disagreement: % for %, dataset %, at %: blocked by % only; register: %',
      x.n, x.p, coalesce(x.d, 'NULL'), x.at, x.blocked_by, x.register;
  END LOOP;
  -- coverage: answers both ways, every kind, every shape of span, asked
  -- at exact boundaries, exemptions and consents that lift an objection
  IF NOT EXISTS (SELECT 1 FROM pg_temp.blocked WHERE path = 'reference') THEN
    missing := missing || 'nothing blocked'::text;
  END IF;
  IF (SELECT count(*) FROM pg_temp.blocked WHERE path = 'reference') >= tuples THEN
    missing := missing || 'everything blocked'::text;
  END IF;
  IF (SELECT count(DISTINCT kind) FROM caredata.objection) <> 4 THEN
    missing := missing || 'a kind'::text;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM caredata.objection WHERE withdrawn_at IS NULL)
     OR NOT EXISTS (SELECT 1 FROM caredata.objection WHERE withdrawn_at = 'infinity')
     OR NOT EXISTS (SELECT 1 FROM caredata.objection WHERE withdrawn_at = effective_from)
     OR NOT EXISTS (SELECT 1 FROM caredata.objection WHERE effective_from = '-infinity')
     OR NOT EXISTS (SELECT 1 FROM caredata.objection WHERE withdrawn_at > effective_from AND isfinite(withdrawn_at))
     OR NOT EXISTS (SELECT 1 FROM caredata.objection WHERE array_position(purposes, NULL) IS NOT NULL) THEN
    missing := missing || 'a shape of objection'::text;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM caredata.exemption WHERE expires_at IS NULL AND revoked_at IS NULL)
     OR NOT EXISTS (SELECT 1 FROM caredata.exemption WHERE expires_at = 'infinity' OR revoked_at = 'infinity')
     OR NOT EXISTS (SELECT 1 FROM caredata.exemption WHERE isfinite(expires_at))
     OR NOT EXISTS (SELECT 1 FROM caredata.exemption WHERE isfinite(revoked_at)) THEN
    missing := missing || 'a shape of exemption'::text;
  END IF;
  -- blocked at an objection's effective time, not blocked at its withdrawal
  IF NOT EXISTS (SELECT 1 FROM pg_temp.blocked b JOIN caredata.objection o
                   ON o.nhs_number = b.n AND o.effective_from = b.t AND o.kind <> 'consent'
                  WHERE b.path = 'reference') THEN
    missing := missing || 'blocked from the effective time'::text;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM caredata.objection o JOIN pg_temp.point pt
                   ON pt.t = o.withdrawn_at AND pt.p = ANY (o.purposes) AND o.kind = 'national_data_opt_out'
                  WHERE o.withdrawn_at > o.effective_from
                    AND NOT EXISTS (SELECT 1 FROM pg_temp.blocked b
                                     WHERE b.path = 'reference' AND b.n = o.nhs_number AND b.p = pt.p
                                       AND b.d IS NOT DISTINCT FROM pt.d AND b.t = pt.t)) THEN
    missing := missing || 'permitted from the withdrawal time'::text;
  END IF;
  -- an objection in force that an exemption (or a consent) lifts
  IF NOT EXISTS (SELECT 1 FROM pg_temp.point pt
                   JOIN caredata.objection o
                     ON o.kind <> 'consent' AND pt.p = ANY (o.purposes)
                    AND o.effective_from <= pt.t AND (o.withdrawn_at IS NULL OR o.withdrawn_at > pt.t)
                    AND (o.kind <> 'dissent' OR o.study = pt.d)
                   JOIN caredata.exemption e
                     ON e.dataset = pt.d AND e.purpose = pt.p AND e.objection_kind = o.kind
                    AND e.granted_at <= pt.t AND (e.expires_at IS NULL OR e.expires_at > pt.t)
                    AND (e.revoked_at IS NULL OR e.revoked_at > pt.t)) THEN
    missing := missing || 'an exemption in force'::text;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_temp.point pt
                   JOIN caredata.objection o
                     ON o.kind <> 'consent' AND pt.p = ANY (o.purposes)
                    AND o.effective_from <= pt.t AND (o.withdrawn_at IS NULL OR o.withdrawn_at > pt.t)
                    AND (o.kind <> 'dissent' OR o.study = pt.d)
                   JOIN caredata.objection c
                     ON c.nhs_number = o.nhs_number AND c.kind = 'consent' AND c.study = pt.d
                    AND pt.p = ANY (c.purposes)
                    AND c.effective_from <= pt.t AND (c.withdrawn_at IS NULL OR c.withdrawn_at > pt.t)) THEN
    missing := missing || 'a consent in force'::text;
  END IF;
  covered := cardinality(missing) = 0;
  IF NOT covered THEN
    RAISE WARNING 'this round''s register lacks: %', array_to_string(missing, ', ');
  END IF;
END $$;

-- round 1
SELECT pg_temp.make_register(0.11);
SELECT pg_temp.answer();
SELECT * FROM pg_temp.agreement();

-- round 2, as a member of caredata_admin
SELECT pg_temp.make_register(0.47);
SET ROLE regress_probe_admin;
SELECT pg_temp.answer();
RESET ROLE;
SELECT * FROM pg_temp.agreement();

-- round 3, in a zone with a 45-minute offset and a day-first DateStyle:
-- the set is built from the time written out and read back (blocked_set.c)
SET TimeZone = 'Asia/Kathmandu';
SET DateStyle = 'SQL, DMY';
SELECT pg_temp.make_register(-0.35);
SELECT pg_temp.answer();
SELECT * FROM pg_temp.agreement();
RESET TimeZone;
RESET DateStyle;

-- round 4
SELECT pg_temp.make_register(0.83);
SELECT pg_temp.answer();
SELECT * FROM pg_temp.agreement();

DISCARD TEMP;
DROP TABLE pool;
DROP EXTENSION caredata;
DROP ROLE regress_probe_admin;
