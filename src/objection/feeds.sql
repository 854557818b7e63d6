-- src/objection/feeds.sql
-- Objection feeds: the National Data Opt-out snapshot and Type 1 codes from
-- GP extracts, one at a time, never blocking readers, every load recorded.

-- Feeds.  Every load is recorded, with counts and never numbers.
CREATE TABLE caredata.feed_load (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  feed text NOT NULL,
  source text NOT NULL,
  loaded_at timestamptz NOT NULL DEFAULT now(),
  loaded_by name NOT NULL DEFAULT current_user,
  rows_read bigint NOT NULL,
  invalid bigint NOT NULL,
  duplicates bigint NOT NULL,
  opened bigint NOT NULL,
  withdrawn bigint NOT NULL,
  unchanged bigint NOT NULL
);
COMMENT ON TABLE caredata.feed_load IS
  'every objection feed applied: counts read, invalid, duplicate, opened, withdrawn, unchanged (no NHS numbers)';
SELECT pg_catalog.pg_extension_config_dump('caredata.feed_load', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.feed_load_id_seq', '');

-- One feed at a time, never blocking readers: SHARE ROW EXCLUSIVE on the
-- register.  Taken as the register's owner, because caredata_admin writes
-- only some of its columns and LOCK wants table-wide write rights.
CREATE FUNCTION caredata.lock_register() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  LOCK TABLE caredata.objection IN SHARE ROW EXCLUSIVE MODE;
END
$$;
COMMENT ON FUNCTION caredata.lock_register() IS
  'take the feed lock on the objection register (SHARE ROW EXCLUSIVE: one feed at a time, readers never blocked) for the rest of the transaction';
REVOKE ALL ON FUNCTION caredata.lock_register() FROM PUBLIC;

-- The insert step of a snapshot: the new objections written in bulk
-- (src/objection/feed_load.c), or NULL when the caller must INSERT them
-- instead (the register has row triggers, row security or a constraint
-- checked row by row).  Run as the caller, with an INSERT's privilege checks.
CREATE FUNCTION caredata._open_objections(numbers caredata.nhs_number[], kind text, purposes text[],
                                          effective_from timestamptz, source text)
RETURNS bigint
  AS 'MODULE_PATHNAME', 'open_objections' LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._open_objections(caredata.nhs_number[], text, text[], timestamptz, text) IS
  'internal (apply_opt_out_snapshot): open one objection per NHS number (strictly ascending) in bulk, as the caller, with its INSERT privilege; NULL when the register needs a row-by-row INSERT';
REVOKE ALL ON FUNCTION caredata._open_objections(caredata.nhs_number[], text, text[], timestamptz, text) FROM PUBLIC;

-- The merge step of a snapshot (src/objection/feed_load.c): the snapshot
-- read once as the caller and sorted, the register's open objections of the
-- kind read once in NHS number order (index only where the visibility map
-- allows), and what differs returned with the counts; NULL when the
-- register cannot be read that way (the caller then runs the SQL merge).
CREATE FUNCTION caredata._opt_out_changes(snapshot regclass, nhs_column name, kind text, source text,
  OUT rows_read bigint, OUT invalid bigint, OUT duplicates bigint, OUT distinct_valid bigint,
  OUT ids bigint[], OUT numbers caredata.nhs_number[])
  AS 'MODULE_PATHNAME', 'opt_out_changes' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata._opt_out_changes(regclass, name, text, text) IS
  'internal (apply_opt_out_snapshot): read a snapshot and the register''s open objections of a kind once each and return the counts, the ids of the source''s objections the snapshot dropped and the numbers it adds; NULL when the SQL merge must run instead';
REVOKE ALL ON FUNCTION caredata._opt_out_changes(regclass, name, text, text) FROM PUBLIC;

CREATE FUNCTION caredata.apply_opt_out_snapshot(
  snapshot regclass,
  nhs_column name DEFAULT 'nhs_number',
  source text DEFAULT 'national_data_opt_out_service',
  effective_at timestamptz DEFAULT now(),
  abort_on_invalid boolean DEFAULT false,
  allow_empty boolean DEFAULT false,
  OUT rows_read bigint, OUT invalid bigint, OUT duplicates bigint,
  OUT opened bigint, OUT withdrawn bigint, OUT unchanged bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
SET work_mem = '512MB'
SET enable_nestloop = off
SET enable_hashjoin = off
SET enable_hashagg = off
AS $$
DECLARE
  distinct_valid bigint;
  at_ timestamptz;
  ids bigint[];
  numbers caredata.nhs_number[];
  citus boolean;
BEGIN
  PERFORM caredata._catalog_write('caredata.apply_opt_out_snapshot()');
  -- one feed at a time; readers are never blocked (SHARE ROW EXCLUSIVE)
  PERFORM caredata.lock_register();
  citus := caredata._citus_table('caredata.objection');
  IF NOT citus THEN
    -- Each read once, in C: the snapshot (sorted in memory) and the
    -- register's open national opt-outs (in NHS number order), merged
    SELECT c.rows_read, c.invalid, c.duplicates, c.distinct_valid, c.ids, c.numbers
      INTO rows_read, invalid, duplicates, distinct_valid, ids, numbers
      FROM caredata._opt_out_changes(snapshot, nhs_column, 'national_data_opt_out',
                                     apply_opt_out_snapshot.source) c;
  END IF;
  IF NOT citus AND rows_read IS NULL THEN
    -- One pass (this function's settings rule out nested loops and hashing
    -- millions of numbers, whose random access cost twice as much): the
    -- snapshot parsed and grouped by number (one sort), merged in NHS number
    -- order with the register's open national opt-outs (its objection_open
    -- index), counting as it goes and keeping only the differences: the
    -- open objections of this source the snapshot no longer holds, and the
    -- numbers no open objection holds yet (in NHS number order, which
    -- caredata._open_objections requires).
    EXECUTE format($q$
      SELECT coalesce(sum(s.c), 0), coalesce(sum(s.c) FILTER (WHERE s.n IS NULL), 0),
             coalesce(sum(s.c OPERATOR(pg_catalog.-) 1) FILTER (WHERE s.n IS NOT NULL), 0),
             count(s.n),
             array_agg(r.id) FILTER (WHERE s.c IS NULL AND r.source OPERATOR(pg_catalog.=) $1),
             array_agg(s.n ORDER BY s.n) FILTER (WHERE r.id IS NULL AND s.n IS NOT NULL)
        FROM (SELECT caredata.try_nhs_number(x.%I::text) AS n, count(*) AS c FROM %s x GROUP BY 1) s
        FULL JOIN (SELECT o.id, o.nhs_number, o.source FROM caredata.objection o
                    WHERE o.kind OPERATOR(pg_catalog.=) 'national_data_opt_out' AND o.withdrawn_at IS NULL) r
          ON r.nhs_number OPERATOR(caredata.=) s.n$q$, nhs_column, snapshot)
    INTO rows_read, invalid, duplicates, distinct_valid, ids, numbers
    USING apply_opt_out_snapshot.source;
  ELSIF citus THEN
    -- On Citus the register is a reference table: the snapshot is parsed
    -- into a temporary table, and the changes worked out from it
    EXECUTE format('CREATE TEMP TABLE caredata_snapshot ON COMMIT DROP AS
                    SELECT caredata.try_nhs_number(%I::text) AS n FROM %s ORDER BY 1',
                   nhs_column, snapshot);
    ANALYZE pg_temp.caredata_snapshot;
    SELECT count(*), count(*) FILTER (WHERE n IS NULL), count(n) - count(DISTINCT n), count(DISTINCT n)
    INTO rows_read, invalid, duplicates, distinct_valid
    FROM pg_temp.caredata_snapshot;
  END IF;
  IF distinct_valid = 0 AND NOT allow_empty THEN
    RAISE EXCEPTION 'opt-out snapshot holds no valid NHS numbers'
      USING ERRCODE = 'no_data_found',
            DETAIL = format('It has %s rows, %s of them invalid or missing. Applying it would withdraw every national data opt-out from this source.',
                            rows_read, invalid),
            HINT = 'Check the delivery and the column name; pass allow_empty => true if it really is empty.';
  END IF;
  IF invalid > 0 THEN
    IF abort_on_invalid THEN
      RAISE EXCEPTION 'opt-out snapshot holds % invalid or missing NHS numbers', invalid
        USING ERRCODE = 'invalid_text_representation',
              HINT = 'Nothing was applied. Pass abort_on_invalid => false to skip them and apply the rest.';
    END IF;
    RAISE NOTICE 'opt-out snapshot: % invalid or missing NHS numbers skipped', invalid;
  END IF;
  IF duplicates > 0 THEN
    RAISE NOTICE 'opt-out snapshot: % duplicate NHS numbers counted once', duplicates;
  END IF;

  IF NOT citus THEN
    UPDATE caredata.objection o SET withdrawn_at = greatest(effective_at, o.effective_from)
     WHERE o.id OPERATOR(pg_catalog.=) ANY (coalesce(ids, '{}'));
    GET DIAGNOSTICS withdrawn = ROW_COUNT;
    -- in NHS number order (the merge's), written in bulk: a page at a time,
    -- each index in order (an index never used yet built bottom up)
    opened := caredata._open_objections(numbers, 'national_data_opt_out',
                                        caredata.default_purposes('national_data_opt_out'),
                                        effective_at, apply_opt_out_snapshot.source);
    IF opened IS NULL THEN
      -- the register needs a row-by-row INSERT (row triggers, row security)
      INSERT INTO caredata.objection (nhs_number, kind, purposes, effective_from, source)
      SELECT n, 'national_data_opt_out', caredata.default_purposes('national_data_opt_out'),
             effective_at, apply_opt_out_snapshot.source
        FROM unnest(numbers) WITH ORDINALITY AS u(n, i) ORDER BY i;
      GET DIAGNOSTICS opened = ROW_COUNT;
    END IF;
  ELSE
    -- Citus writes a reference table only from rows it can route, not from
    -- a join with this session's snapshot (docs/scale-out.md)
    withdrawn := 0;
    FOR at_, ids IN
      SELECT greatest(effective_at, o.effective_from), array_agg(o.id)
        FROM caredata.objection o
       WHERE o.kind = 'national_data_opt_out' AND o.source = apply_opt_out_snapshot.source
         AND o.withdrawn_at IS NULL
         AND NOT EXISTS (SELECT 1 FROM pg_temp.caredata_snapshot s WHERE s.n = o.nhs_number)
       GROUP BY 1 LOOP
      UPDATE caredata.objection o SET withdrawn_at = at_ WHERE o.id = ANY (ids);
      withdrawn := withdrawn + cardinality(ids);
    END LOOP;
    SELECT array_agg(s.n ORDER BY s.n) INTO numbers
      FROM (SELECT DISTINCT n FROM pg_temp.caredata_snapshot WHERE n IS NOT NULL) s
     WHERE NOT EXISTS (SELECT 1 FROM caredata.objection o
                       WHERE o.nhs_number = s.n AND o.kind = 'national_data_opt_out'
                         AND o.withdrawn_at IS NULL);
    INSERT INTO caredata.objection (nhs_number, kind, purposes, effective_from, source)
    SELECT n, 'national_data_opt_out', caredata.default_purposes('national_data_opt_out'),
           effective_at, apply_opt_out_snapshot.source
      FROM unnest(numbers) n;
    opened := coalesce(cardinality(numbers), 0);
    DROP TABLE pg_temp.caredata_snapshot;
  END IF;
  unchanged := distinct_valid - opened;

  INSERT INTO caredata.feed_load (feed, source, rows_read, invalid, duplicates, opened, withdrawn, unchanged)
  VALUES ('national_data_opt_out', source, rows_read, invalid, duplicates, opened, withdrawn, unchanged);
  PERFORM caredata.audit_append('feed.load', 'national_data_opt_out', jsonb_build_object('source', source, 'rows_read', rows_read, 'invalid', invalid, 'opened', opened, 'withdrawn', withdrawn, 'unchanged', unchanged));
END
$$;
COMMENT ON FUNCTION caredata.apply_opt_out_snapshot(regclass, name, text, timestamptz, boolean, boolean) IS
  'apply a full National Data Opt-out snapshot in one transaction: new numbers open objections, missing ones are withdrawn, the rest untouched; invalid numbers are counted and skipped';

-- Type 1 codes as they arrive in GP extracts, and what they mean.
CREATE TABLE caredata.type1_code (
  code text PRIMARY KEY,
  code_system text NOT NULL,
  meaning text NOT NULL CHECK (meaning IN ('dissent', 'withdrawn')),
  description text NOT NULL
);
COMMENT ON TABLE caredata.type1_code IS
  'clinical codes that record a Type 1 objection (dissent) or its withdrawal in GP extracts';
INSERT INTO caredata.type1_code VALUES
  ('827241000000103', 'snomed_ct', 'dissent', 'Dissent from secondary use of general practitioner patient identifiable data'),
  ('9Nu0.', 'read_v2', 'dissent', 'Dissent from secondary use of GP patient identifiable data'),
  ('9Nu0', 'read_v2', 'dissent', 'Dissent from secondary use of GP patient identifiable data (without the Read v2 padding dot)'),
  ('827261000000102', 'snomed_ct', 'withdrawn', 'Dissent withdrawn for secondary use of general practitioner patient identifiable data'),
  ('9Nu1.', 'read_v2', 'withdrawn', 'Dissent withdrawn re secondary use of GP patient identifiable data'),
  ('9Nu1', 'read_v2', 'withdrawn', 'Dissent withdrawn re secondary use of GP patient identifiable data (without the Read v2 padding dot)');
SELECT pg_catalog.pg_extension_config_dump('caredata.type1_code',
  $$WHERE code NOT IN ('827241000000103', '9Nu0.', '9Nu0', '827261000000102', '9Nu1.', '9Nu1')$$);

CREATE FUNCTION caredata.apply_type1_codes(
  gp_extract regclass,
  nhs_column name DEFAULT 'nhs_number',
  code_column name DEFAULT 'code',
  date_column name DEFAULT 'recorded_at',
  source text DEFAULT 'gp_extract',
  abort_on_invalid boolean DEFAULT false,
  OUT rows_read bigint, OUT invalid bigint, OUT unmapped bigint,
  OUT opened bigint, OUT withdrawn bigint, OUT unchanged bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, caredata, pg_temp
AS $$
DECLARE
  at_ timestamptz;
  ids bigint[];
  numbers caredata.nhs_number[];
  ats timestamptz[];
  untils timestamptz[];
BEGIN
  PERFORM caredata._catalog_write('caredata.apply_type1_codes()');
  PERFORM caredata.lock_register();
  EXECUTE format('CREATE TEMP TABLE caredata_type1 ON COMMIT DROP AS
                  SELECT caredata.try_nhs_number(x.%I::text) AS n, m.meaning, x.%I::timestamptz AS at
                  FROM %s x LEFT JOIN caredata.type1_code m ON m.code = btrim(x.%I::text)',
                 nhs_column, date_column, gp_extract, code_column);
  -- invalid: no valid NHS number, or no date (which event is latest cannot
  -- be told); unmapped: a valid, dated row whose code is not a Type 1 code
  SELECT count(*), count(*) FILTER (WHERE n IS NULL OR at IS NULL),
         count(*) FILTER (WHERE n IS NOT NULL AND at IS NOT NULL AND meaning IS NULL)
  INTO rows_read, invalid, unmapped FROM pg_temp.caredata_type1;
  IF invalid > 0 THEN
    IF abort_on_invalid THEN
      RAISE EXCEPTION 'Type 1 extract holds % rows with an invalid or missing NHS number or date', invalid
        USING ERRCODE = 'invalid_text_representation',
              HINT = 'Nothing was applied. Pass abort_on_invalid => false to skip them and apply the rest.';
    END IF;
    RAISE NOTICE 'Type 1 extract: % rows with an invalid or missing NHS number or date skipped', invalid;
  END IF;
  IF unmapped > 0 THEN
    RAISE NOTICE 'Type 1 extract: % rows with codes not in caredata.type1_code skipped', unmapped;
  END IF;

  -- each patient's coded events in time order, a repeat of the state it is
  -- already in dropped (at one instant a withdrawal sorts before a dissent,
  -- so the dissent is what stands); each dissent lasts until the next event;
  -- was_open: the register had an open Type 1 objection for the patient
  CREATE TEMP TABLE caredata_type1_events ON COMMIT DROP AS
  SELECT n, meaning, at, lead(at) OVER w AS until, row_number() OVER w AS seq,
         EXISTS (SELECT 1 FROM caredata.objection o
                 WHERE o.nhs_number = e.n AND o.kind = 'type1' AND o.withdrawn_at IS NULL) AS was_open
  FROM (SELECT n, meaning, at,
               lag(meaning) OVER (PARTITION BY n ORDER BY at, meaning = 'dissent') AS before
        FROM (SELECT DISTINCT n, meaning, at FROM pg_temp.caredata_type1
              WHERE n IS NOT NULL AND at IS NOT NULL AND meaning IS NOT NULL) d) e
  WHERE before IS DISTINCT FROM meaning
  WINDOW w AS (PARTITION BY n ORDER BY at, meaning = 'dissent');

  -- an open objection ends at the patient's first withdrawal; when the
  -- extract opens with a dissent (the one already recorded), at the
  -- withdrawal after that
  IF caredata._citus_table('caredata.objection') THEN
    -- a reference table on Citus: the changes worked out here, then written
    -- (see apply_opt_out_snapshot), one statement per withdrawal time
    withdrawn := 0;
    FOR at_, ids IN
      SELECT greatest(CASE WHEN e.meaning = 'withdrawn' THEN e.at ELSE e.until END, o.effective_from), array_agg(o.id)
        FROM caredata.objection o JOIN pg_temp.caredata_type1_events e ON o.nhs_number = e.n
       WHERE e.seq = 1 AND e.was_open AND (e.meaning = 'withdrawn' OR e.until IS NOT NULL)
         AND o.kind = 'type1' AND o.withdrawn_at IS NULL
       GROUP BY 1 LOOP
      UPDATE caredata.objection o SET withdrawn_at = at_ WHERE o.id = ANY (ids);
      withdrawn := withdrawn + cardinality(ids);
    END LOOP;
    SELECT array_agg(e.n ORDER BY e.n, e.at), array_agg(e.at ORDER BY e.n, e.at), array_agg(e.until ORDER BY e.n, e.at)
      INTO numbers, ats, untils
      FROM pg_temp.caredata_type1_events e
     WHERE e.meaning = 'dissent' AND NOT (e.seq = 1 AND e.was_open);
    INSERT INTO caredata.objection (nhs_number, kind, purposes, effective_from, withdrawn_at, source)
    SELECT u.n, 'type1', caredata.default_purposes('type1'), u.at, u.until, apply_type1_codes.source
      FROM unnest(numbers, ats, untils) u(n, at, until);
    opened := coalesce(cardinality(numbers), 0);
  ELSE
    UPDATE caredata.objection o
    SET withdrawn_at = greatest(CASE WHEN e.meaning = 'withdrawn' THEN e.at ELSE e.until END, o.effective_from)
    FROM pg_temp.caredata_type1_events e
    WHERE e.seq = 1 AND e.was_open AND (e.meaning = 'withdrawn' OR e.until IS NOT NULL)
      AND o.nhs_number = e.n AND o.kind = 'type1' AND o.withdrawn_at IS NULL;
    GET DIAGNOSTICS withdrawn = ROW_COUNT;

    -- every other dissent is recorded: open, or as history when the extract
    -- also withdraws it
    INSERT INTO caredata.objection (nhs_number, kind, purposes, effective_from, withdrawn_at, source)
    SELECT e.n, 'type1', caredata.default_purposes('type1'), e.at, e.until, apply_type1_codes.source
    FROM pg_temp.caredata_type1_events e
    WHERE e.meaning = 'dissent' AND NOT (e.seq = 1 AND e.was_open)
    ORDER BY e.n, e.at;
    GET DIAGNOSTICS opened = ROW_COUNT;
  END IF;
  -- patients the extract changed nothing for: an open dissent repeated, or
  -- a withdrawal of nothing
  unchanged := (SELECT count(*) FROM pg_temp.caredata_type1_events e
                WHERE e.seq = 1 AND e.until IS NULL
                  AND ((e.meaning = 'dissent' AND e.was_open) OR (e.meaning = 'withdrawn' AND NOT e.was_open)));

  INSERT INTO caredata.feed_load (feed, source, rows_read, invalid, duplicates, opened, withdrawn, unchanged)
  VALUES ('type1', source, rows_read, invalid,
          rows_read - invalid - unmapped - (SELECT count(*) FROM pg_temp.caredata_type1_events),
          opened, withdrawn, unchanged);
  PERFORM caredata.audit_append('feed.load', 'type1', jsonb_build_object('source', source, 'rows_read', rows_read, 'invalid', invalid, 'opened', opened, 'withdrawn', withdrawn, 'unchanged', unchanged));
  DROP TABLE pg_temp.caredata_type1, pg_temp.caredata_type1_events;
END
$$;
COMMENT ON FUNCTION caredata.apply_type1_codes(regclass, name, name, name, text, boolean) IS
  'apply Type 1 codes from a GP extract: each patient''s dissent and withdrawal codes, in time order, open, withdraw or record (as history) their Type 1 objections';
