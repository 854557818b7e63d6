-- bench/reidentify.sql: the per-call cost of committing a re-identification's
-- audit entry in a background worker before answering (issue 22, section 2).
-- Baselines measured in the same run, interleaved with it: a plain
-- caredata.audit_append() in the caller's transaction, and the same work as
-- reidentify() without the worker (caredata._reidentify_commit() in the
-- caller's transaction: limit, lookup and append, as 0.1.0 did it).
-- Each side is a batch of calls (committed after each batch: a transaction
-- that appended cannot re-identify); the ratio is the median of the rounds'.
\set ON_ERROR_STOP 1
SET caredata.reidentify_per_hour = 100000;
DROP TABLE IF EXISTS bench.reid_src;
CREATE TABLE bench.reid_src (nhs_number text);
INSERT INTO bench.reid_src VALUES ('943 476 5919');
SELECT caredata.create_domain('bench_reid_' || to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS'), 'benchmark') AS id \gset
SELECT name AS domain FROM caredata.domain WHERE id = :id \gset
SELECT caredata.refresh_pseudonyms(:'domain', 'bench.reid_src');
SELECT pseudonym::text AS p FROM caredata.pseudonym_map WHERE domain = :'domain' \gset
SELECT set_config('bench.p', :'p', false) IS NOT NULL AS noted;
SELECT caredata.register_approval('BENCH ' || to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS'), 'section_251', 'benchmark',
                                  '{research}', ARRAY[session_user::regrole], now() - interval '1 day', now() + interval '1 day') AS approval \gset
SELECT set_config('bench.approval', :'approval', false) IS NOT NULL AS noted;

DO $$
DECLARE
  calls constant int := 20;
  rounds constant int := 7;
  p text := current_setting('bench.p');
  appr text := current_setting('bench.approval');
  t0 timestamptz;
  a double precision; c double precision; r double precision;
  aa double precision[] := '{}'; cc double precision[] := '{}'; rr double precision[] := '{}';
  ra double precision[] := '{}'; rc double precision[] := '{}';
  med_a double precision; med_c double precision; med_r double precision;
BEGIN
  FOR i IN 1..rounds LOOP
    t0 := clock_timestamp();
    FOR j IN 1..calls LOOP
      PERFORM caredata.audit_append('bench.append', 'x', NULL, 'benchmark baseline, in-transaction');
    END LOOP;
    a := extract(epoch FROM clock_timestamp() - t0) * 1000 / calls;
    COMMIT;
    t0 := clock_timestamp();
    FOR j IN 1..calls LOOP
      PERFORM caredata._reidentify_commit(session_user, p::caredata.pseudonym, appr, 'research', NULL, 'benchmark, in-transaction', 100000);
    END LOOP;
    c := extract(epoch FROM clock_timestamp() - t0) * 1000 / calls;
    COMMIT;
    t0 := clock_timestamp();
    FOR j IN 1..calls LOOP
      PERFORM caredata.reidentify(p::caredata.pseudonym, appr, 'research', 'benchmark, committed by the worker');
    END LOOP;
    r := extract(epoch FROM clock_timestamp() - t0) * 1000 / calls;
    aa := aa || a; cc := cc || c; rr := rr || r; ra := ra || r / a; rc := rc || r / c;
  END LOOP;
  SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) INTO med_a FROM unnest(aa) x;
  SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) INTO med_c FROM unnest(cc) x;
  SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) INTO med_r FROM unnest(rr) x;
  PERFORM bench.record('reidentify', 'audit_append() in-transaction', med_a, NULL, NULL);
  PERFORM bench.record('reidentify', 'limit+lookup+append in-transaction', med_c, 'audit_append', med_a);
  PERFORM bench.record('reidentify', 'reidentify() via the worker', med_r, 'audit_append', med_a);
  RAISE NOTICE '%', format('reidentify         per call: median ratio to audit_append %sx, to the in-transaction work %sx (%s rounds of %s calls)',
    (SELECT to_char(percentile_disc(0.5) WITHIN GROUP (ORDER BY x), 'FM990.0') FROM unnest(ra) x),
    (SELECT to_char(percentile_disc(0.5) WITHIN GROUP (ORDER BY x), 'FM990.0') FROM unnest(rc) x), rounds, calls);
END
$$;
