-- sql/postcode.sql: UK postcode standardisers
CREATE EXTENSION caredata;
SET search_path = caredata, public;

-- every outward format, any case and spacing, to the canonical form
SELECT v, normalise_postcode(v), postcode_area(v), postcode_district(v), postcode_sector(v)
FROM (VALUES ('sw1a1aa'), (' SW1A 1AA '), ('M1 1AE'), ('m11ae'), ('B33 8TH'),
             ('CR2 6XH'), ('DN55 1PT'), ('W1A 0AX'), ('EC1A 1BB'), ('ls1  4ap'),
             ('GIR 0AA'), (E'ne1\t4st')) t(v);

-- what no UK postcode can be: 22P02, a reason, and not the value
\i sql/include/refusal.psql
\x on
SELECT e AS expression, r.*
FROM (VALUES ('normalise_postcode('''')'),
             ('normalise_postcode(''SW1A-1AA'')'),
             ('normalise_postcode(''LS1'')'),
             ('normalise_postcode(''SW1A1AAA'')'),
             ('normalise_postcode(''SW1A 1CA'')'),
             ('normalise_postcode(''QA1 1AA'')'),
             ('normalise_postcode(''AZ1 1AA'')'),
             ('normalise_postcode(''A1Z 1AA'')'),
             ('normalise_postcode(''AA1C 1AA'')'),
             ('normalise_postcode(''1A1 1AA'')'),
             ('postcode_district(''not a postcode'')')) t(e),
     LATERAL pg_temp.refusal(e, substring(e from '''([^'']*)''')) r;
\x off

-- try_ variants return NULL for the same inputs
SELECT v, try_normalise_postcode(v), try_postcode_area(v), try_postcode_district(v), try_postcode_sector(v)
FROM (VALUES ('sw1a1aa'), (''), ('SW1A-1AA'), ('LS1'), ('QA1 1AA'), ('AA1C 1AA'), ('12345')) t(v);
SELECT try_normalise_postcode(NULL) IS NULL AS strict;

-- idempotent: the canonical form normalises to itself
SELECT count(*) FILTER (WHERE normalise_postcode(normalise_postcode(v)) <> normalise_postcode(v)) AS unstable
FROM (VALUES ('sw1a1aa'), ('M1 1AE'), ('b338th'), ('CR26XH')) t(v);

-- usable in parallel plans (PARALLEL SAFE) and as an index expression (IMMUTABLE)
CREATE TABLE pc AS SELECT 'LS' || (i % 20 + 1) || ' ' || (i % 10) || 'AB' AS raw
  FROM generate_series(1, 1000) i;
CREATE INDEX pc_norm ON pc (normalise_postcode(raw));
SELECT count(DISTINCT postcode_district(raw)) AS districts,
       count(DISTINCT postcode_sector(raw)) AS sectors FROM pc;
DROP TABLE pc;
DROP EXTENSION caredata;
