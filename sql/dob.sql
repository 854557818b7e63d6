-- sql/dob.sql: dates of birth and age bands
CREATE EXTENSION caredata;
SET search_path = caredata, public;

-- layouts, independent of DateStyle
SET DateStyle = 'SQL, MDY';
SELECT v, standardise_dob(v, '2026-01-01')
FROM (VALUES ('1980-01-31'), ('1980/01/31'), ('19800131'), ('31/01/1980'),
             ('31-01-1980'), ('31.01.1980'), ('1/2/1980'), (' 2000-02-29 ')) t(v);
RESET DateStyle;

\i sql/include/refusal.psql
\x on
SELECT e AS expression, r.*
FROM (VALUES ('standardise_dob('''', ''2026-01-01'')'),
             ('standardise_dob(''1980-13-01'', ''2026-01-01'')'),
             ('standardise_dob(''31/02/1980'', ''2026-01-01'')'),
             ('standardise_dob(''2001-02-29'', ''2026-01-01'')'),
             ('standardise_dob(''01/01/1894'', ''2026-01-01'')'),
             ('standardise_dob(''2026-01-02'', ''2026-01-01'')'),
             ('standardise_dob(''31.01.80'', ''2026-01-01'')'),
             ('standardise_dob(''1980-01-31T00:00'', ''2026-01-01'')')) t(e),
     LATERAL pg_temp.refusal(e, substring(e from '''([^'']*)''')) r;
\x off

SELECT v, try_standardise_dob(v, '2026-01-01')
FROM (VALUES ('1980-01-31'), ('1894-12-31'), ('1895-01-01'), ('2026-01-01'),
             ('2026-01-02'), ('30/02/2000'), ('yesterday'), ('')) t(v);
-- the default reference date is today
SELECT try_standardise_dob(to_char(current_date + 1, 'YYYY-MM-DD')) IS NULL AS tomorrow_refused,
       try_standardise_dob(to_char(current_date, 'YYYY-MM-DD')) = current_date AS today_ok;

SELECT d, dob_is_valid(d, '2026-01-01')
FROM (VALUES (date '1894-12-31'), ('1895-01-01'), ('2026-01-01'), ('2026-01-02'),
             ('-infinity'), ('infinity')) t(d);
SELECT dob_is_valid(current_date + 1) AS tomorrow, dob_is_valid(current_date) AS today;

-- age bands: completed years, birthdays counted exactly
SELECT dob, at, age_band(dob, at), age_band(dob, at, 10), age_band(dob, at, 1), age_band(dob, at, 5, 85)
FROM (VALUES (date '1980-01-31', date '2026-01-30'), ('1980-01-31', '2026-01-31'),
             ('2000-02-29', '2026-02-28'), ('2000-02-29', '2026-03-01'),
             ('2026-01-01', '2026-01-01'), ('1930-06-01', '2026-01-01'),
             ('1936-01-01', '2026-01-01'), ('1941-01-02', '2026-01-01')) t(dob, at);
SELECT age_band('1980-01-01', '2026-01-01', 0);
SELECT age_band('1980-01-01', '2026-01-01', 5, 0);
SELECT age_band('2026-01-02', '2026-01-01');
SELECT age_band('infinity', '2026-01-01');
DROP EXTENSION caredata;
