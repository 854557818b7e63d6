-- test/pgtap/identifiers.sql: behaviour matrices for the identifier
-- standardisers, checked against independent reference implementations
-- written in plain SQL, plus parallel safety and privileges.
BEGIN;
SELECT plan(16);
SET LOCAL search_path = caredata, public;

-- reference Modulus 11 in plain SQL, independent of the C code
CREATE FUNCTION pg_temp.ref_valid(s text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT s ~ '^[0-9]{10}$'
     AND s !~ '^(.)\1{9}$'
     AND (SELECT CASE 11 - sum(substr(s, i, 1)::int * (11 - i)) % 11
                   WHEN 11 THEN 0 WHEN 10 THEN -1
                   ELSE 11 - sum(substr(s, i, 1)::int * (11 - i)) % 11 END
          FROM generate_series(1, 9) i) = substr(s, 10, 1)::int
$$;

-- 40,000 pseudo-random 10-digit strings, a tenth of them made valid
CREATE TEMP TABLE cand AS
SELECT lpad((abs(hashint8extended(i, 7)) % 10000000000)::text, 10, '0') AS s
FROM generate_series(1, 40000) i;
INSERT INTO cand
SELECT left(s, 9) || d FROM cand, generate_series(0, 9) d WHERE s LIKE '%7';

SELECT is(
  (SELECT count(*) FROM cand WHERE nhs_number_is_valid(s) IS DISTINCT FROM pg_temp.ref_valid(s)),
  0::bigint, 'C validation agrees with a reference SQL Modulus 11 on every candidate');
SELECT cmp_ok(
  (SELECT count(*) FROM cand WHERE pg_temp.ref_valid(s)), '>', 2000::bigint,
  'the candidate set holds many valid numbers');
SELECT is(
  (SELECT count(*) FROM cand WHERE pg_temp.ref_valid(s)
     AND try_nhs_number(s)::text <> substr(s,1,3) || ' ' || substr(s,4,3) || ' ' || substr(s,7,4)),
  0::bigint, 'every valid number displays grouped 3-3-4');
SELECT is(
  (SELECT count(*) FROM cand WHERE pg_temp.ref_valid(s)
     AND try_nhs_number(s)::bigint <> s::bigint),
  0::bigint, 'the stored value is the digits as a bigint');
SELECT is(
  (SELECT count(*) FROM cand WHERE pg_temp.ref_valid(s)
     AND (try_nhs_number(substr(s,1,3) || '-' || substr(s,4,3) || '-' || substr(s,7,4)) IS NULL
       OR try_nhs_number('  ' || s || ' ') IS NULL)),
  0::bigint, 'hyphen-grouped and padded layouts are accepted');
SELECT is(
  (SELECT count(*) FROM cand WHERE (try_nhs_number(s) IS NULL) = nhs_number_is_valid(s)),
  0::bigint, 'try_nhs_number is NULL exactly when nhs_number_is_valid is false');
SELECT is(
  (SELECT count(*) FROM cand WHERE (nhs_number_invalid_reason(s) IS NULL) <> nhs_number_is_valid(s)),
  0::bigint, 'nhs_number_invalid_reason is NULL exactly for valid numbers');
SELECT throws_ok($$SELECT '9434765918'::caredata.nhs_number$$, '22P02', 'invalid NHS number',
  'a wrong check digit raises 22P02');
SELECT throws_ok($$SELECT '1111111111'::caredata.nhs_number$$, '22P02', 'invalid NHS number',
  'ten equal digits raise 22P02 although they pass the checksum');

-- postcode: canonical forms round-trip, sectors and districts nest
CREATE TEMP TABLE pcs AS
SELECT area || dist || ' ' || sec || substr('ABDEFGHJLNPQRSTUWXYZ', 1 + (i % 20), 1)
       || substr('ABDEFGHJLNPQRSTUWXYZ', 1 + ((i / 20) % 20), 1) AS pc
FROM unnest(ARRAY['LS','M','B','SW','NE','BS','EC']) area,
     generate_series(1, 20) dist, generate_series(0, 9) sec, generate_series(1, 3) i;
SELECT is((SELECT count(*) FROM pcs WHERE normalise_postcode(lower(replace(pc, ' ', ''))) <> pc),
  0::bigint, 'lower-case, unspaced postcodes normalise to their canonical form');
SELECT is((SELECT count(*) FROM pcs WHERE postcode_sector(pc) <> postcode_district(pc) || ' ' || substr(split_part(pc, ' ', 2), 1, 1)),
  0::bigint, 'a sector is its district plus the inward digit');
SELECT is((SELECT count(*) FROM pcs WHERE left(pc, length(postcode_area(pc))) <> postcode_area(pc)
             OR postcode_area(pc) ~ '[0-9]'),
  0::bigint, 'an area is the leading letters of the postcode');

-- parallel plans: the standardisers are parallel safe
\i test/pgtap/include/plan_text.psql
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
-- temp tables are never scanned in parallel: use a real one
CREATE TABLE public.tap_big AS SELECT s FROM cand;
ANALYZE public.tap_big;
SELECT ok(
  pg_temp.plan_text('SELECT count(try_nhs_number(s)), count(try_normalise_postcode(s)), count(try_standardise_sex(s)), count(try_standardise_dob(s)) FROM public.tap_big')
  ~ 'Partial Aggregate.*Parallel Seq Scan',
  'cleaning a table plans a parallel scan with partial aggregates');
SELECT is(
  (SELECT count(try_nhs_number(s)) FROM public.tap_big),
  (SELECT count(*) FROM cand WHERE pg_temp.ref_valid(s)),
  'the parallel count of valid numbers is right');

-- privileges: identifier functions are not keyed and are open to every role
CREATE ROLE tap_plain_role NOLOGIN;
SET LOCAL ROLE tap_plain_role;
SELECT is(caredata.try_nhs_number('943 476 5919')::text, '943 476 5919',
  'an unprivileged role can validate NHS numbers');
SELECT is(caredata.normalise_postcode('sw1a1aa'), 'SW1A 1AA',
  'an unprivileged role can normalise postcodes');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
