-- test/synthetic/generate.sql
-- A seeded, reproducible synthetic population with ground truth, for the
-- demo, the tests and the benchmarks.  Plain SQL on core PostgreSQL: it does
-- not need the caredata extension, and it is not part of it.
--
--   \i test/synthetic/generate.sql
--   SELECT * FROM synth.generate(100000, 42);
--
-- Every random number is a hash of (row id, stream, seed) (synth.u), never
-- random(): the same n and seed give the same tables whatever the plan.
-- Sources (schema synth) carry identifiers as they arrive, as text, with
-- realistic errors; the truth (schema synth_truth) is kept apart.
-- See test/synthetic/README.md.

CREATE SCHEMA IF NOT EXISTS synth;
CREATE SCHEMA IF NOT EXISTS synth_truth;

-- uniform [0, 1) from (id, stream, seed)
CREATE OR REPLACE FUNCTION synth.u(id bigint, stream int, seed bigint)
RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT (hashint8extended(id * 131 + stream, seed) & 4503599627370495)::double precision
         / 4503599627370496.0
$$;

-- Modulus 11 check digit of a 9-digit base; -1 when it would be 10 (never issued)
CREATE OR REPLACE FUNCTION synth.check_digit(base bigint)
RETURNS int LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE c WHEN 11 THEN 0 WHEN 10 THEN -1 ELSE c END
  FROM (SELECT (11 - ((base / 100000000 % 10) * 10 + (base / 10000000 % 10) * 9 +
                      (base / 1000000 % 10) * 8 + (base / 100000 % 10) * 7 +
                      (base / 10000 % 10) * 6 + (base / 1000 % 10) * 5 +
                      (base / 100 % 10) * 4 + (base / 10 % 10) * 3 +
                      (base % 10) * 2) % 11)::int AS c) x
$$;

-- postcode areas (real ones), the trust that serves each, GP practice letter
CREATE OR REPLACE FUNCTION synth.areas() RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ARRAY['LS','M','B','SW','NE','BS','L','S','NG','LE','CV','SO','PO','BN','CF',
               'EX','PL','TR','YO','HU','DN','WF','BD','HX','OL','BL','WN','PR','BB','LA',
               'CA','DH','SR','TS','DL','HG','CB','NR','IP','OX']
$$;
CREATE OR REPLACE FUNCTION synth.providers() RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ARRAY['RR8','RW3','RQ3','RJ7','RTD','RA7','REM','RHQ','RX1','RWE','RKB','RHM','RHU','RXH','RWM',
               'RH8','RK9','REF','RCB','RWA','RP5','RXF','RAE','RWY','RM3','RMC','RRF','RXN','RXL','RTX']
$$;

-- a postcode: area, then district/sector/unit from a hash of code index k
CREATE OR REPLACE FUNCTION synth.postcode(area text, k bigint, seed bigint)
RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT area || (1 + floor(synth.u(k, 1, seed) * 20))::int || ' ' ||
         floor(synth.u(k, 2, seed) * 10)::int ||
         substr('ABDEFGHJLNPQRSTUWXYZ', 1 + floor(synth.u(k, 3, seed) * 20)::int, 1) ||
         substr('ABDEFGHJLNPQRSTUWXYZ', 1 + floor(synth.u(k, 4, seed) * 20)::int, 1)
$$;

-- the injected NHS number errors
CREATE OR REPLACE FUNCTION synth.mistype(nhs text, id bigint, seed bigint)
RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  -- swap two adjacent different digits, or change one digit to another
  SELECT CASE
    WHEN synth.u(id, 71, seed) < 0.5 AND substr(nhs, p, 1) <> substr(nhs, p + 1, 1)
      THEN overlay(nhs placing substr(nhs, p + 1, 1) || substr(nhs, p, 1) from p for 2)
    ELSE overlay(nhs placing ((substr(nhs, q, 1)::int + 1 + floor(synth.u(id, 72, seed) * 9)::int) % 10)::text
                 from q for 1)
  END
  FROM (SELECT 1 + floor(synth.u(id, 73, seed) * 9)::int AS p,
               1 + floor(synth.u(id, 74, seed) * 10)::int AS q) x
$$;

-- a wrong date of birth: day and month swapped where that makes another
-- date, else one field wrong; always a valid date different from the truth
CREATE OR REPLACE FUNCTION synth.wrong_dob(dob date, id bigint, seed bigint)
RETURNS date LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE
    WHEN synth.u(id, 81, seed) < 0.5 AND extract(day FROM dob) <= 12
         AND extract(day FROM dob) <> extract(month FROM dob)
      THEN make_date(extract(year FROM dob)::int, extract(day FROM dob)::int, extract(month FROM dob)::int)
    WHEN synth.u(id, 82, seed) < 0.4
      THEN (dob + (CASE WHEN synth.u(id, 83, seed) < 0.7 THEN 1 ELSE 10 END
                   * CASE WHEN synth.u(id, 84, seed) < 0.5 THEN -1 ELSE 1 END) * interval '1 year')::date
    WHEN synth.u(id, 82, seed) < 0.7
      THEN dob + (1 + floor(synth.u(id, 85, seed) * 3)::int) * CASE WHEN synth.u(id, 86, seed) < 0.5 THEN -1 ELSE 1 END
    ELSE (dob + (1 + floor(synth.u(id, 87, seed) * 11)::int) * interval '1 month')::date
  END
$$;

-- the errors a source record gets, each drawn from its own stream (50 to
-- 55) of the record's id: its NHS number missing (3%), another person's
-- (0.1%) or mistyped (1%), its date of birth wrong (1%), its postcode an
-- earlier one (10%), its sex unknown (0.5%)
CREATE OR REPLACE FUNCTION synth.record_errors(id bigint, seed bigint)
RETURNS TABLE (nhs_missing boolean, nhs_other boolean, nhs_typo boolean,
               dob_wrong boolean, moved boolean, sex_unknown boolean)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$   -- not STRICT: inlined into the query
  SELECT synth.u(id, 50, seed) < 0.03, synth.u(id, 52, seed) < 0.001, synth.u(id, 51, seed) < 0.01,
         synth.u(id, 53, seed) < 0.01, synth.u(id, 54, seed) < 0.10, synth.u(id, 55, seed) < 0.005
$$;

-- the NHS number of person id's household neighbour (the other of the pair
-- id - 1, id or id, id + 1): plpgsql, as synth_truth.person does not exist
-- yet when this file is read; PARALLEL RESTRICTED, as the correlated
-- subquery it replaced was, so the sources stay written by one process in
-- one order
CREATE OR REPLACE FUNCTION synth.neighbour_nhs(id bigint, n_people int)
RETURNS text LANGUAGE plpgsql STABLE STRICT PARALLEL RESTRICTED AS $$
BEGIN
  RETURN (SELECT o.nhs_number FROM synth_truth.person o
          WHERE o.person_id = CASE WHEN id % 2 = 1 AND id < n_people THEN id + 1 ELSE id - 1 END);
END
$$;

-- a record's NHS number as it arrives, given its errors (a missing number
-- wins over the others, another person's over a typo)
CREATE OR REPLACE FUNCTION synth.nhs_as_recorded(nhs text, person_id bigint, n_people int, id bigint, seed bigint,
                                                 nhs_missing boolean, nhs_other boolean, nhs_typo boolean)
RETURNS text LANGUAGE sql STABLE PARALLEL RESTRICTED AS $$
  SELECT CASE WHEN nhs_missing THEN NULL
              WHEN nhs_other THEN synth.neighbour_nhs(person_id, n_people)
              WHEN nhs_typo THEN synth.mistype(nhs, id, seed)
              ELSE nhs END
$$;

-- the truth table's names for a record's errors, as nhs_as_recorded()
-- applies them
CREATE OR REPLACE FUNCTION synth.error_kinds(nhs_missing boolean, nhs_other boolean, nhs_typo boolean,
                                             dob_wrong boolean, moved boolean, sex_unknown boolean)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_remove(ARRAY[
           CASE WHEN nhs_missing THEN 'nhs_missing' END,
           CASE WHEN NOT nhs_missing AND nhs_other THEN 'nhs_other_person' END,
           CASE WHEN NOT nhs_missing AND NOT nhs_other AND nhs_typo THEN 'nhs_mistyped' END,
           CASE WHEN dob_wrong THEN 'dob_wrong' END,
           CASE WHEN moved THEN 'postcode_moved' END,
           CASE WHEN sex_unknown THEN 'sex_unknown' END], NULL)
$$;

CREATE OR REPLACE FUNCTION synth.generate(n_people int, seed bigint DEFAULT 42)
RETURNS TABLE (item text, value bigint)
LANGUAGE plpgsql AS $gen$
DECLARE
  ref constant date := '2026-01-01';
  blocks int := ceil(n_people / 900000.0)::int;
  pool_per_area bigint := greatest(1, n_people / 30 / 40);
  practices_per_area int := greatest(1, n_people / 8000 / 40);
BEGIN
  IF n_people < 1 THEN
    RAISE EXCEPTION 'n_people must be positive';
  END IF;
  DROP TABLE IF EXISTS synth.gp_registration, synth.hospital_episode, synth.objection_sample,
                       synth_truth.person, synth_truth.record;

  -- people: NHS numbers from 999 xxx xxxx (then 998, 997...: unallocated),
  -- scrambled, unique; households of about two share a postcode and practice
  CREATE TABLE synth_truth.person AS
  WITH cand AS (
    -- walk each block of a million bases in a scrambled order
    -- (i -> 100003 i + offset mod 10^6 is a bijection), only as far as needed
    SELECT i, (999 - i / 1000000) * 1000000::bigint
              + (100003 * (i % 1000000) + abs(seed) % 1000000) % 1000000 AS base
    FROM generate_series(0, least(blocks * 1000000::bigint, ceil(n_people * 1.15)::bigint + 1000) - 1) i
  ), valid AS (
    SELECT base * 10 + synth.check_digit(base) AS nhs,
           row_number() OVER (ORDER BY i) AS person_id
    FROM cand
    WHERE synth.check_digit(base) >= 0 AND base * 10 + synth.check_digit(base) <> 9999999999
  ), p AS (
    SELECT person_id, nhs::text AS nhs_number, (person_id - 1) / 2 AS household,
           synth.u(person_id, 10, seed) AS ua, synth.u(person_id, 11, seed) AS ub,
           synth.u(person_id, 12, seed) AS us
    FROM valid WHERE person_id <= n_people
  ), h AS (
    SELECT p.*, 1 + floor(synth.u(household, 20, seed) * 40)::int AS area_idx,
           floor(synth.u(household, 21, seed) * pool_per_area)::bigint AS code_idx,
           -- ages: 0-64 evenly (78%), then thinning to 100
           CASE WHEN ua < 0.78 THEN ub * 65 ELSE 65 + 35 * (1 - sqrt(1 - ub)) END AS age
    FROM p
  )
  SELECT person_id, nhs_number,
         greatest(date '1895-01-01',
                  ref - (age * 365.25)::int - floor(synth.u(person_id, 13, seed) * 365)::int) AS dob,
         CASE WHEN us < 0.0005 THEN '9' WHEN us < 0.4945 THEN '1' ELSE '2' END AS sex,
         synth.postcode((synth.areas())[area_idx], area_idx * 1000000 + code_idx, seed) AS postcode,
         synth.postcode(CASE WHEN synth.u(person_id, 14, seed) < 0.7 THEN (synth.areas())[area_idx]
                             ELSE (synth.areas())[1 + floor(synth.u(person_id, 15, seed) * 40)::int] END,
                        50000000 + person_id, seed) AS prev_postcode,
         chr(65 + area_idx % 26) || lpad((area_idx * 100 + floor(synth.u(household, 22, seed)
                                          * practices_per_area)::int)::text, 5, '0') AS gp_practice,
         area_idx
  FROM h;
  IF (SELECT count(*) FROM synth_truth.person) < n_people THEN
    RAISE EXCEPTION 'could not draw % valid NHS numbers', n_people;  -- cannot happen: 90.9%% of bases are valid
  END IF;
  ALTER TABLE synth_truth.person ADD PRIMARY KEY (person_id);

  -- GP registrations: one per person, and an earlier one for 4% (a move)
  CREATE TABLE synth_truth.gp_raw AS
  SELECT row_number() OVER (ORDER BY p.person_id, r.k) AS record_id, p.*, r.k
  FROM synth_truth.person p
  CROSS JOIN LATERAL (SELECT 1 AS k UNION ALL SELECT 2 WHERE synth.u(p.person_id, 30, seed) < 0.04) r;

  -- hospital episodes: more for infants and the old
  CREATE TABLE synth_truth.hes_raw AS
  WITH e AS (
    SELECT p.*, (ref - p.dob) / 365.25 AS age,
           round(-CASE WHEN (ref - p.dob) / 365.25 < 1 THEN 2.0
                       WHEN (ref - p.dob) / 365.25 < 60 THEN 1.2
                       ELSE 1.2 + ((ref - p.dob) / 365.25 - 60) * 0.08 END
                 * ln(1 - synth.u(p.person_id, 40, seed)))::int AS n_episodes
    FROM synth_truth.person p
  )
  SELECT row_number() OVER (ORDER BY e.person_id, j) AS record_id, e.*, j
  FROM e, generate_series(1, e.n_episodes) j;

  -- sources with their errors; error kinds kept for the truth table
  CREATE TABLE synth_truth.record (source text, record_id bigint, person_id bigint, error_kinds text[],
                                   PRIMARY KEY (source, record_id));

  CREATE TABLE synth.gp_registration AS
  WITH r AS (
    SELECT g.*, g.record_id * 2 AS rid, e.*   -- even ids for GP, odd for HES: independent draws
    FROM synth_truth.gp_raw g, synth.record_errors(g.record_id * 2, seed) e
  ), x AS (
    SELECT r.*,
           synth.nhs_as_recorded(r.nhs_number, r.person_id, n_people, rid, seed, nhs_missing, nhs_other, nhs_typo) AS nhs_out,
           CASE WHEN dob_wrong THEN synth.wrong_dob(r.dob, rid, seed) ELSE r.dob END AS dob_out,
           CASE WHEN moved OR k = 2 THEN r.prev_postcode ELSE r.postcode END AS pc_out
    FROM r
  )
  SELECT record_id,
         CASE WHEN k = 2   -- the practice before the move
              THEN chr(65 + floor(synth.u(rid, 88, seed) * 26)::int) || lpad(floor(synth.u(rid, 89, seed) * 99999)::int::text, 5, '0')
              ELSE gp_practice END AS practice_code,
         (ref - 30 - floor(synth.u(rid, 56, seed) * 3650)::int - CASE WHEN k = 2 THEN 3650 ELSE 0 END) AS registered_on,
         CASE WHEN nhs_out IS NULL THEN CASE WHEN synth.u(rid, 57, seed) < 0.8 THEN NULL
                                             WHEN synth.u(rid, 57, seed) < 0.9 THEN '' ELSE '   ' END
              WHEN synth.u(rid, 58, seed) < 0.15 THEN substr(nhs_out, 1, 3) || ' ' || substr(nhs_out, 4, 3) || ' ' || substr(nhs_out, 7)
              ELSE nhs_out END AS nhs_number,
         to_char(dob_out, 'DD/MM/YYYY') AS dob,
         CASE WHEN sex_unknown THEN 'U'
              WHEN sex = '9' THEN 'I'
              WHEN synth.u(rid, 59, seed) < 0.03 THEN CASE sex WHEN '1' THEN 'Male' ELSE 'Female' END
              ELSE CASE sex WHEN '1' THEN 'M' ELSE 'F' END END AS sex,
         CASE WHEN synth.u(rid, 60, seed) < 0.4 THEN lower(replace(pc_out, ' ', ''))
              WHEN synth.u(rid, 60, seed) < 0.7 THEN replace(pc_out, ' ', '')
              ELSE pc_out END AS postcode,
         person_id,
         synth.error_kinds(nhs_missing, nhs_other, nhs_typo, dob_wrong, moved OR k = 2, sex_unknown) AS error_kinds
  FROM x;

  INSERT INTO synth_truth.record
  SELECT 'gp', record_id, person_id, error_kinds FROM synth.gp_registration;
  ALTER TABLE synth.gp_registration DROP COLUMN person_id, DROP COLUMN error_kinds;
  ALTER TABLE synth.gp_registration ADD PRIMARY KEY (record_id);

  CREATE TABLE synth.hospital_episode AS
  WITH r AS (
    SELECT h.*, h.record_id * 2 + 1 AS rid, e.*,
           greatest(date '2019-01-01', h.dob) + floor(synth.u(h.record_id * 2 + 1, 61, seed)
             * (ref - greatest(date '2019-01-01', h.dob)))::int AS admitted
    FROM synth_truth.hes_raw h, synth.record_errors(h.record_id * 2 + 1, seed) e
  ), x AS (
    SELECT r.*,
           synth.nhs_as_recorded(r.nhs_number, r.person_id, n_people, rid, seed, nhs_missing, nhs_other, nhs_typo) AS nhs_out,
           CASE WHEN dob_wrong THEN synth.wrong_dob(r.dob, rid, seed) ELSE r.dob END AS dob_out,
           CASE WHEN moved THEN r.prev_postcode ELSE r.postcode END AS pc_out,
           (admitted - r.dob) / 365.25 AS age_then,
           synth.u(rid, 62, seed) AS us,
           CASE WHEN synth.u(rid, 63, seed) < 0.85 THEN (synth.providers())[1 + (area_idx - 1) % 30]
                ELSE (synth.providers())[1 + floor(synth.u(rid, 64, seed) * 30)::int] END AS provider
    FROM r
  )
  SELECT record_id,
         provider AS provider_code,
         admitted AS admission_date,
         CASE WHEN age_then < 16 AND us < 0.6 THEN '420'
              WHEN sex = '2' AND age_then BETWEEN 16 AND 50 AND us < 0.25 THEN (ARRAY['501', '502'])[1 + floor(synth.u(rid, 65, seed) * 2)::int]
              ELSE (ARRAY['100','101','110','120','130','150','300','301','320','330','340','400','430','800'])
                   [1 + floor(synth.u(rid, 66, seed) * 14)::int] END AS specialty,
         CASE WHEN synth.u(rid, 67, seed) < 0.4 THEN 0
              ELSE least(120, 1 + floor(-4 * ln(1 - synth.u(rid, 68, seed)) * (1 + age_then / 50)))::int END AS length_of_stay,
         -- two planted outliers for the funnel plots: RXN and RK9 have twice the 30-day mortality
         synth.u(rid, 69, seed) < (0.003 + 0.12 * power(greatest(0, age_then - 50) / 50, 2))
                                  * CASE WHEN provider IN ('RXN', 'RK9') THEN 2 ELSE 1 END AS died_30d,
         synth.u(rid, 70, seed) < CASE WHEN age_then >= 65 THEN 0.13 ELSE 0.08 END AS readmitted_30d,
         CASE WHEN nhs_out IS NULL THEN CASE WHEN synth.u(rid, 57, seed) < 0.9 THEN NULL ELSE '' END
              ELSE nhs_out END AS nhs_number,
         to_char(dob_out, 'YYYY-MM-DD') AS dob,
         CASE WHEN sex_unknown THEN '0' ELSE sex END AS sex,
         CASE WHEN synth.u(rid, 60, seed) < 0.15 THEN replace(pc_out, ' ', '') ELSE pc_out END AS postcode,
         person_id,
         synth.error_kinds(nhs_missing, nhs_other, nhs_typo, dob_wrong, moved, sex_unknown) AS error_kinds
  FROM x;

  INSERT INTO synth_truth.record
  SELECT 'hes', record_id, person_id, error_kinds FROM synth.hospital_episode;
  ALTER TABLE synth.hospital_episode DROP COLUMN person_id, DROP COLUMN error_kinds;
  ALTER TABLE synth.hospital_episode ADD PRIMARY KEY (record_id);
  DROP TABLE synth_truth.gp_raw, synth_truth.hes_raw;
  ALTER TABLE synth_truth.person DROP COLUMN area_idx;

  -- objections: ~5% National Data Opt-out, ~3% Type 1, independently
  CREATE TABLE synth.objection_sample AS
  SELECT nhs_number, kind,
         timestamptz '2018-05-25' + synth.u(person_id, s, seed) * (timestamptz '2025-12-31' - timestamptz '2018-05-25') AS recorded_at
  FROM synth_truth.person,
       (VALUES ('national_data_opt_out', 90, 0.05), ('type1', 91, 0.03)) k(kind, s, rate)
  WHERE synth.u(person_id, s + 10, seed) < rate;

  ANALYZE synth_truth.person; ANALYZE synth_truth.record;
  ANALYZE synth.gp_registration; ANALYZE synth.hospital_episode; ANALYZE synth.objection_sample;

  RETURN QUERY
  SELECT 'people', count(*) FROM synth_truth.person
  UNION ALL SELECT 'gp_registration records', count(*) FROM synth.gp_registration
  UNION ALL SELECT 'hospital_episode records', count(*) FROM synth.hospital_episode
  UNION ALL SELECT 'objection_sample rows', count(*) FROM synth.objection_sample
  UNION ALL SELECT 'error: ' || k, count(*) FROM synth_truth.record, unnest(error_kinds) k GROUP BY k;
END
$gen$;
