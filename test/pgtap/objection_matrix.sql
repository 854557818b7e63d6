-- test/pgtap/objection_matrix.sql: permitted() over every objection kind x
-- purpose x time (before, at start, during, at withdrawal, after) x
-- withdrawn or open x dataset (none, a named study, an exempted dataset),
-- against expectations written out independently of the policy SQL.
BEGIN;
SELECT plan(9);
SET LOCAL search_path = public, caredata;

-- one patient per (kind, withdrawn) pair
CREATE TEMP TABLE patient AS
SELECT k.kind, w.withdrawn, row_number() OVER (ORDER BY k.kind, w.withdrawn) AS i
FROM unnest(ARRAY['national_data_opt_out', 'type1', 'dissent']) k(kind),
     unnest(ARRAY[false, true]) w(withdrawn);
ALTER TABLE patient ADD COLUMN nhs nhs_number;
UPDATE patient p SET nhs = v.n
FROM (SELECT n, row_number() OVER (ORDER BY n) AS i
      FROM (SELECT try_nhs_number('9990001' || lpad(x::text, 2, '0') || d) AS n
            FROM generate_series(0, 99) x, generate_series(0, 9) d) s
      WHERE n IS NOT NULL) v
WHERE v.i = p.i;

SELECT record_objection(nhs, kind, 'matrix', '2025-01-01',
                        CASE WHEN kind = 'dissent' THEN 'study_a' END)
FROM patient;
SELECT withdraw_objection(o.id, '2025-09-01')
FROM objection o JOIN patient p ON p.nhs = o.nhs_number WHERE p.withdrawn;
SELECT grant_exemption('ds_exempt', 'research', k, 'cag_section_251', 'CAG 20/CAG/0001')
FROM unnest(ARRAY['national_data_opt_out', 'type1', 'dissent']) k;
-- an exemption applies from when it was granted; date these before the
-- matrix (the history trigger refuses this to everyone: set aside for the test)
ALTER TABLE exemption DISABLE TRIGGER exemption_history;
UPDATE exemption SET granted_at = '2024-01-01' WHERE dataset = 'ds_exempt';
ALTER TABLE exemption ENABLE TRIGGER exemption_history;

CREATE TEMP TABLE matrix AS
SELECT p.kind, p.withdrawn, p.nhs, pur.purpose, t.label AS time_label, t.at, ds.dataset,
       -- expectation, case by case
       NOT (
         -- in force at that time
         (t.label IN ('at_start', 'during') OR (t.label IN ('at_withdrawal', 'after') AND NOT p.withdrawn))
         -- the kind covers the purpose
         AND CASE p.kind WHEN 'dissent' THEN pur.purpose = 'research'
                         ELSE pur.purpose IN ('research', 'planning', 'commissioning') END
         -- a dissent only for its own study
         AND (p.kind <> 'dissent' OR ds.dataset IS NOT DISTINCT FROM 'study_a')
         -- the exempted dataset, for research only
         AND NOT (ds.dataset IS NOT DISTINCT FROM 'ds_exempt' AND pur.purpose = 'research')
       ) AS expected
FROM patient p,
     unnest(ARRAY['direct_care', 'research', 'planning', 'commissioning']) pur(purpose),
     (VALUES ('before', timestamptz '2024-06-01'), ('at_start', '2025-01-01'),
             ('during', '2025-06-01'), ('at_withdrawal', '2025-09-01'),
             ('after', '2025-10-01')) t(label, at),
     (VALUES (NULL::text), ('study_a'), ('ds_exempt')) ds(dataset);

SELECT is((SELECT count(*) FROM matrix), 360::bigint, 'the matrix has 360 cases');
SELECT is((SELECT count(*) FROM matrix WHERE permitted(nhs, purpose, at, dataset) IS DISTINCT FROM expected),
          0::bigint, 'permitted() agrees with the expectation in every case');
-- NDOO and Type 1: (4 open + 2 withdrawn) in-force times x (3 + 3 + 2) purposes
-- over the three datasets = 48 each; dissent: 6 in-force times x 1 = 6
SELECT is((SELECT count(*) FROM matrix WHERE NOT expected), 102::bigint,
          'the matrix blocks in 102 of 360 cases (so it tests something)');
SELECT is((SELECT count(*) FROM matrix WHERE purpose = 'direct_care' AND NOT permitted(nhs, purpose, at, dataset)),
          0::bigint, 'no objection kind ever blocks direct care');
SELECT is((SELECT count(*) FROM matrix WHERE time_label = 'before' AND NOT permitted(nhs, purpose, at, dataset)),
          0::bigint, 'nothing is blocked before an objection takes effect');
SELECT is((SELECT count(*) FROM matrix WHERE withdrawn AND time_label IN ('at_withdrawal', 'after')
             AND NOT permitted(nhs, purpose, at, dataset)),
          0::bigint, 'nothing is blocked from the moment of withdrawal');
SELECT is((SELECT count(*) FROM objection WHERE source = 'matrix'), 6::bigint,
          'withdrawal keeps the history: every objection row is still there');

-- consent to a named study lifts the other kinds for that study only
SELECT record_objection(n, 'national_data_opt_out', 'matrix', '2025-01-01'),
       record_objection(n, 'consent', 'matrix', '2025-02-01', 'study_c')
FROM (SELECT '999 000 0018'::nhs_number AS n) x;
SELECT results_eq(
  $$SELECT permitted('999 000 0018', 'research', '2025-06-01', d) FROM unnest(ARRAY['study_c', 'study_d']) d$$,
  $$VALUES (true), (false)$$,
  'consent to study C permits study C and nothing else');
SELECT is(permitted('999 000 0018', 'planning', '2025-06-01', 'study_c'), false,
          'consent covers the purposes it names (research), not planning');

SELECT * FROM finish();
ROLLBACK;
