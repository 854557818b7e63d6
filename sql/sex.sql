-- sql/sex.sql: sex / stated gender standardiser
CREATE EXTENSION caredata;
SET search_path = caredata, public;

SELECT v, standardise_sex(v)
FROM (VALUES ('1'), ('2'), ('9'), ('0'), ('X'), ('x'), ('M'), ('m'), ('F'), ('f'),
             ('U'), ('I'), ('Male'), ('FEMALE'), (' woman '), ('Boy'), ('girl'),
             ('man'), ('Indeterminate'), ('unknown'), ('Not Known'), ('NK'),
             ('not stated'), ('not specified'), ('not recorded'), ('')) t(v);

\i sql/include/refusal.psql
\x on
SELECT e AS expression, r.*
FROM (VALUES ('standardise_sex(''3'')'),
             ('standardise_sex(''mail'')')) t(e),
     LATERAL pg_temp.refusal(e, substring(e from '''([^'']*)''')) r;
\x off
SELECT v, try_standardise_sex(v)
FROM (VALUES ('3'), ('mail'), ('a very long text that is not a sex code'), ('F')) t(v);
SELECT try_standardise_sex(NULL) IS NULL AS strict;
DROP EXTENSION caredata;
