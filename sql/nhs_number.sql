-- sql/nhs_number.sql: the nhs_number type
CREATE EXTENSION caredata;
SET search_path = caredata, public;

-- accepted layouts, one display form
SELECT '9434765919'::nhs_number, '943 476 5919'::nhs_number,
       '943-476-5919'::nhs_number, E' \t943 476 5919\n'::nhs_number;
-- 11 - (sum mod 11) = 11 gives check digit 0
SELECT '9990000050'::nhs_number AS check_digit_zero;

-- errors: 22P02 with a detail and a hint, and never the digits
\i sql/include/refusal.psql
\x on
SELECT v, r.*
FROM (VALUES (''), ('943476591'), ('94347659190'), ('943 476 591x'), ('9434 76 5919'),
             ('943 476-5919'), ('943 4765919'), ('9434765918'), ('9434765910'),
             ('4444444444'), ('9990000000'), ('-943476591')) t(v),
     LATERAL pg_temp.refusal(format('%L::caredata.nhs_number', v),
                             regexp_replace(v, '[^0-9]', '', 'g')) r;
\x off
SELECT nhs_number_invalid_reason(s) AS reason, count(*)
FROM (SELECT lpad(i::text, 9, '0') || d AS s
      FROM generate_series(1, 200) i, generate_series(0, 9) d) t
GROUP BY 1 ORDER BY 1;

-- every single-digit change and adjacent swap of a valid number is caught
WITH base AS (SELECT '9434765919'::text AS s),
changed AS (
  SELECT overlay(s placing d::text from p for 1) AS v
  FROM base, generate_series(1, 10) p, generate_series(0, 9) d
  WHERE substr(s, p, 1) <> d::text
),
swapped AS (
  SELECT substr(s, 1, p - 1) || substr(s, p + 1, 1) || substr(s, p, 1) || substr(s, p + 2) AS v
  FROM base, generate_series(1, 9) p
  WHERE substr(s, p, 1) <> substr(s, p + 1, 1)
)
SELECT count(*) AS variants, count(*) FILTER (WHERE nhs_number_is_valid(v)) AS accepted
FROM (SELECT v FROM changed UNION ALL SELECT v FROM swapped) x;

-- try_ and classification
SELECT try_nhs_number('943 476 5919'), try_nhs_number('943 476 5918'),
       try_nhs_number(''), try_nhs_number(NULL);
SELECT v, nhs_number_is_valid(v), nhs_number_invalid_reason(v)
FROM (VALUES ('9434765919'), ('943 476 5919'), ('12345'), ('abcdefghij'),
             ('0000000000'), ('9434765918'), ('   '), (''), (NULL)) t(v);
-- the codes are disjoint: nothing recorded (NULL or blank) is 'missing' alone
SELECT coalesce(nhs_number_invalid_reason(v), 'valid') AS category, count(*)
FROM (VALUES (NULL), (''), ('  '), ('943 476 5919'), ('943 476 5918')) t(v) GROUP BY 1 ORDER BY 1;
SELECT nhs_number_is_test('999 000 0018'), nhs_number_is_test('943 476 5919');

-- bigint casts (explicit where they can fail)
SELECT 9434765919::nhs_number, '943 476 5919'::nhs_number::bigint;
\x on
SELECT v, r.*
FROM (VALUES ('9434765918'), ('(-1)'), ('99999999999')) t(v),
     LATERAL pg_temp.refusal(format('%s::bigint::caredata.nhs_number', v), v) r;
\x off
SELECT '943 476 5919'::nhs_number::text;
CREATE TABLE t_assign (b bigint, t text);
INSERT INTO t_assign VALUES ('943 476 5919'::nhs_number, '943 476 5919'::nhs_number);
SELECT * FROM t_assign;
DROP TABLE t_assign;

-- operators, ordering, leading zeros kept
SELECT '010 000 0010'::nhs_number < '943 476 5919'::nhs_number AS lt,
       '943 476 5919'::nhs_number = '9434765919'::nhs_number AS eq,
       '943 476 5919'::nhs_number <> '9434765919'::nhs_number AS ne;
SELECT '0100000010'::nhs_number;

-- opclasses are complete
SELECT amname, opcname, amvalidate(opc.oid)
FROM pg_opclass opc JOIN pg_am am ON am.oid = opcmethod
WHERE opcnamespace = 'caredata'::regnamespace AND opcname = 'nhs_number_ops' ORDER BY 1;

-- B-tree deduplication: clinical tables hold many rows per patient, and an
-- index on nhs_number (or pseudonym) is as compact as one on bigint
SELECT opf.opfname, amp.amprocnum, amp.amproc::regproc
  FROM pg_amproc amp JOIN pg_opfamily opf ON opf.oid = amp.amprocfamily
 WHERE opf.opfnamespace = 'caredata'::regnamespace AND opf.opfmethod = (SELECT oid FROM pg_am WHERE amname = 'btree') AND amp.amprocnum = 4
 ORDER BY 1;
CREATE TABLE dedup (n nhs_number, b bigint);
INSERT INTO dedup SELECT x::nhs_number, x::bigint
  FROM (SELECT try_nhs_number((9990000000 + (i % 1000) * 11)::text) AS x FROM generate_series(1, 200000) i) s WHERE x IS NOT NULL;
CREATE INDEX dedup_n ON dedup (n);
CREATE INDEX dedup_b ON dedup (b);
SELECT pg_relation_size('dedup_n') <= 1.1 * pg_relation_size('dedup_b') AS as_compact_as_bigint,
       pg_relation_size('dedup_n') < 2000 * 1024 AS deduplicated;
DROP TABLE dedup;

-- hashes agree with bigint's (Citus distributes by the same hash)
SELECT nhs_number_hash('9434765919') = hashint8(9434765919) AS same_hash,
       nhs_number_hash_extended('9434765919', 42) = hashint8extended(9434765919, 42) AS same_ext;

-- indexes, hash joins, merge joins
CREATE TABLE a (n nhs_number);
CREATE TABLE b (n nhs_number);
INSERT INTO a SELECT try_nhs_number('999' || lpad(i::text, 6, '0') || d)
  FROM generate_series(0, 3000) i, generate_series(0, 9) d
  WHERE nhs_number_is_valid('999' || lpad(i::text, 6, '0') || d);
INSERT INTO b SELECT n FROM a WHERE (n::bigint % 3) = 0;
CREATE INDEX a_n_btree ON a (n);
CREATE INDEX b_n_hash ON b USING hash (n);
ANALYZE a; ANALYZE b;
SELECT count(*) FROM a;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM a WHERE n = '999 000 0018';
SELECT * FROM a WHERE n = '999 000 0018';
EXPLAIN (COSTS OFF) SELECT * FROM b WHERE n = '999 000 0018';
RESET enable_seqscan;
SET enable_mergejoin = off; SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM a JOIN b USING (n);
SELECT count(*) FROM a JOIN b USING (n);
RESET enable_mergejoin; SET enable_hashjoin = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM a JOIN b USING (n);
SELECT count(*) FROM a JOIN b USING (n);
RESET enable_hashjoin; RESET enable_nestloop;
SELECT n FROM a ORDER BY n DESC LIMIT 3;
SELECT count(DISTINCT n) FROM a;

-- binary COPY round trip
CREATE TABLE c (n nhs_number);
\copy a TO 'results/caredata_regress_nhs.bin' WITH (FORMAT binary)
\copy c FROM 'results/caredata_regress_nhs.bin' WITH (FORMAT binary)
SELECT (SELECT count(*) FROM c) AS copied,
       (SELECT count(*) FROM a JOIN c USING (n)) AS matched;
-- recv re-validates: a bigint file with an invalid number is refused
CREATE TABLE raw (v bigint);
INSERT INTO raw VALUES (9434765918);
\copy raw TO 'results/caredata_regress_bad.bin' WITH (FORMAT binary)
\copy c FROM 'results/caredata_regress_bad.bin' WITH (FORMAT binary)
-- with binary input's SQLSTATE, 22P03 (text input's is 22P02)
\set VERBOSITY sqlstate
\copy c FROM 'results/caredata_regress_bad.bin' WITH (FORMAT binary)
SELECT 'x'::nhs_number;
\set VERBOSITY default
-- text COPY round trip
\copy a TO 'results/caredata_regress_nhs.txt'
TRUNCATE c;
\copy c FROM 'results/caredata_regress_nhs.txt'
SELECT count(*) FROM a JOIN c USING (n);
SELECT nhs_number_send('943 476 5919') AS wire;
DROP TABLE a, b, c, raw;

-- the Modulus 11 check against a reference written out in SQL, digit by
-- digit: 100,000 values spread over the whole range, every repeated-digit
-- value, and the bigint cast (which checks the same way) on the same values
CREATE TEMP TABLE m11 AS
SELECT n, lpad(n::text, 10, '0') AS s
  FROM (SELECT (i::numeric * 7919 * 1000003 % 10000000000)::bigint AS n
          FROM generate_series(1, 100000) i
        UNION ALL SELECT d * 1111111111::bigint FROM generate_series(0, 9) d) v;
CREATE TEMP TABLE m11_ref AS
SELECT n, s, CASE WHEN c = 10 THEN 'check_digit_10'
                  WHEN c <> right(s, 1)::int THEN 'check_digit'
                  WHEN s = repeat(left(s, 1), 10) THEN 'repeated_digit' END AS reason
  FROM (SELECT n, s, (11 - (SELECT sum(substr(s, k, 1)::int * (11 - k))
                               FROM generate_series(1, 9) k)::int % 11) % 11 AS c
          FROM m11) w;
SELECT count(*) AS values_checked,
       count(*) FILTER (WHERE reason IS NULL) > 8000 AS some_valid,
       count(DISTINCT reason) AS reasons_seen,
       count(*) FILTER (WHERE nhs_number_invalid_reason(s) IS DISTINCT FROM reason) AS text_disagrees
  FROM m11_ref;
CREATE FUNCTION pg_temp.cast_ok(v bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM v::caredata.nhs_number;
  RETURN true;
EXCEPTION WHEN invalid_text_representation THEN
  RETURN false;
END $$;
SELECT count(*) FILTER (WHERE pg_temp.cast_ok(n) <> (reason IS NULL)) AS bigint_disagrees
  FROM m11_ref WHERE n % 7 = 0 OR reason IS NULL OR reason = 'repeated_digit';
DROP TABLE m11, m11_ref;


DROP EXTENSION caredata;
