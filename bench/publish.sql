-- bench/publish.sql: publish() with k-anonymity enforced and linkability
-- measured, on a 1,000,000-person synthetic population (issue 24,
-- section 5).  Generates its own data with a fixed seed.  Baseline,
-- measured in the same run: a plain CREATE TABLE AS of the same published
-- columns (level 0 of the ladder: pseudonym, objection filter, no k, no
-- measurement).  publish() here climbs the whole ladder (the spec is
-- linkable at every level, published under an override), its worst case:
-- four measurements of linkability and k.
\set ON_ERROR_STOP 1
\set persons 1000000
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench.pub_src, bench.pub_ctas;
SELECT clock_timestamp() AS t0 \gset
CREATE TABLE bench.pub_src AS
SELECT row_number() OVER () AS record_id, p.nhs::text AS nhs_number,
       date '1930-01-01' + (abs(hashint8extended(p.i, 1)) % 32000)::int AS dob,
       CASE WHEN hashint8extended(p.i, 2) % 2 = 0 THEN '1' ELSE '2' END AS sex,
       (ARRAY['LS', 'M', 'B', 'S', 'NE', 'BS', 'CF', 'EX', 'PL', 'YO'])[1 + abs(hashint8extended(p.i, 3)) % 10]
         || (1 + abs(hashint8extended(p.i, 4)) % 20)::text || ' ' || (abs(hashint8extended(p.i, 5)) % 10)::text
         || substr('ABDEFGHJLNPQRSTUWXYZ', 1 + (abs(hashint8extended(p.i, 6)) % 20)::int, 1)
         || substr('ABDEFGHJLNPQRSTUWXYZ', 1 + (abs(hashint8extended(p.i, 7)) % 20)::int, 1) AS postcode,
       date '2019-01-01' + (abs(hashint8extended(p.i * 8 + e, 8)) % 2555)::int AS admission_date,
       round((200 + abs(hashint8extended(p.i * 8 + e, 9)) % 20000)::numeric, 2) AS cost,
       'D' || lpad((abs(hashint8extended(p.i * 8 + e, 10)) % 400)::text, 3, '0') AS diagnosis,
       'W' || (abs(hashint8extended(p.i * 8 + e, 11)) % 60)::text AS ward
  FROM bench.nhs_numbers(:persons, 24) p
  CROSS JOIN LATERAL generate_series(1, 1 + (abs(hashint8extended(p.i, 12)) % 4 = 0)::int + (abs(hashint8extended(p.i, 13)) % 8 = 0)::int) e;
ANALYZE bench.pub_src;
SELECT count(*) AS records, count(DISTINCT nhs_number) AS persons,
       round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 1) AS generated_s FROM bench.pub_src;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_recipient') THEN CREATE ROLE bench_recipient NOLOGIN; END IF;
END $$;
SELECT caredata.create_domain('bench_pub_' || to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS'), 'benchmark') AS id \gset
SELECT name AS domain FROM caredata.domain WHERE id = :id \gset
SELECT clock_timestamp() AS t0 \gset
SELECT caredata.refresh_pseudonyms(:'domain', 'bench.pub_src') AS pseudonyms_stored,
       round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 1) AS refresh_s;
SELECT caredata.unpublish(name) FROM caredata.publication WHERE name = 'bench_pub';

SELECT format('{"domain": %s, "purpose": "research", "linkability_override": "benchmark: the worst case climbs the whole ladder",
  "columns": {"admission_date": "month", "dob": "age_band", "sex": "keep", "postcode": "district",
              "cost": "band:1000", "diagnosis": "group", "ward": "group"}}', to_jsonb(:'domain'::text)) AS spec \gset

SELECT clock_timestamp() AS t0 \gset
SELECT caredata.publish('bench_pub', 'bench.pub_src', :'spec', 'bench_recipient') AS published;
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000 AS publish_ms \gset

SELECT caredata._publication_base(p, 0, false) AS base FROM caredata.publication p WHERE p.name = 'bench_pub' \gset
SELECT clock_timestamp() AS t0 \gset
CREATE TABLE bench.pub_ctas AS :base;
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000 AS ctas_ms \gset

SELECT clock_timestamp() AS t0 \gset
SELECT count(*) AS rows_read FROM published.bench_pub;
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000 AS read_ms \gset

SELECT level, steps, rows_published, rows_suppressed, smallest_class, persons, linkable_share FROM caredata.publication_disclosure WHERE name = 'bench_pub';
SELECT format('publish() (k = 5, ladder levels 0-3 measured, 1M persons): %s s; plain CREATE TABLE AS of the same columns: %s s; ratio %s',
              round(:publish_ms / 1000.0, 1), round(:ctas_ms / 1000.0, 1), round(:publish_ms / :ctas_ms, 1)) AS result;
SELECT format('reading the published view (k enforced as it is read): %s s; ratio to the CREATE TABLE AS %s',
              round(:read_ms / 1000.0, 1), round(:read_ms / :ctas_ms, 1)) AS result;
SELECT caredata.unpublish('bench_pub');
DROP TABLE bench.pub_src, bench.pub_ctas;
