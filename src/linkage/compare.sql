-- src/linkage/compare.sql
-- Linkage comparators (src/linkage/compare.c).  Each returns a comparison
-- level: 0 missing/unusable, 1 different, higher = closer, top = exact.
-- Not strict (NULL is the missing level); immutable; parallel safe.  They
-- hold no secret, so every role may call them.

CREATE FUNCTION caredata.compare_nhs_number(text, text) RETURNS integer
  AS 'MODULE_PATHNAME', 'compare_nhs_number_text' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_nhs_number(text, text) IS
  'NHS number comparison level: 3 exact (valid), 2 one digit different or two adjacent digits transposed, 1 different (both valid), 0 missing or invalid';
CREATE FUNCTION caredata.compare_nhs_number(bigint, bigint) RETURNS integer
  AS 'MODULE_PATHNAME', 'compare_nhs_number_int8' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_nhs_number(bigint, bigint) IS
  'NHS number comparison level on ten digits held as bigint (valid or not): 3 exact, 2 one digit or transposition, 1 different, 0 missing or invalid';
CREATE FUNCTION caredata.compare_nhs_number(caredata.nhs_number, caredata.nhs_number) RETURNS integer
  AS 'MODULE_PATHNAME', 'compare_nhs_number_int8' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_nhs_number(caredata.nhs_number, caredata.nhs_number) IS
  'NHS number comparison level: 3 exact, 1 different, 0 missing (two valid numbers are never one digit apart)';

CREATE FUNCTION caredata.nhs_number_digits(text) RETURNS bigint
  AS 'MODULE_PATHNAME', 'nhs_number_digits_text' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.nhs_number_digits(text) IS
  'the ten digits of an NHS number as sent, whether or not the check digit holds (for linkage); NULL unless ten digits in an accepted layout';

CREATE FUNCTION caredata.compare_date(date, date, within_days integer DEFAULT 30) RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_date(date, date, integer) IS
  'date comparison level: 5 exact, 4 day and month transposed, 3 two of year/month/day equal, 2 within within_days days, 1 different, 0 missing';

CREATE FUNCTION caredata.compare_postcode(text, text) RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_postcode(text, text) IS
  'postcode comparison level: two UK postcodes 5 same unit, 4 same sector, 3 same district, 2 same area, 1 different; two postcodes of other countries 5 same letters and digits, 1 different; 0 missing, empty, or a UK postcode against one that is not';

CREATE FUNCTION caredata.compare_sex(text, text) RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_sex(text, text) IS
  'sex comparison level on any coding standardise_sex accepts: 2 same, 1 different, 0 missing, not known or unrecognised';

CREATE FUNCTION caredata.compare_exact(anyelement, anyelement) RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS 'SELECT CASE WHEN $1 IS NULL OR $2 IS NULL THEN 0 WHEN $1 = $2 THEN 2 ELSE 1 END';
COMMENT ON FUNCTION caredata.compare_exact(anyelement, anyelement) IS
  'exact comparison level on any column: 2 equal, 1 different, 0 missing (inlined by the planner)';

CREATE FUNCTION caredata.jaro_winkler(text, text) RETURNS double precision
  AS 'MODULE_PATHNAME', 'jaro_winkler_similarity' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.jaro_winkler(text, text) IS
  'Jaro-Winkler similarity of two strings, 0 to 1 (prefix scale 0.1, up to 4 characters), by character';
CREATE FUNCTION caredata.damerau_levenshtein(text, text) RETURNS integer
  AS 'MODULE_PATHNAME', 'damerau_levenshtein_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.damerau_levenshtein(text, text) IS
  'Damerau-Levenshtein distance (optimal string alignment: insertions, deletions, substitutions, adjacent transpositions), by character';
CREATE FUNCTION caredata.compare_jaro_winkler(text, text, thresholds double precision[] DEFAULT '{0.92,0.8}') RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_jaro_winkler(text, text, double precision[]) IS
  'string comparison level by Jaro-Winkler similarity, thresholds strictest first: exact n+2, similarity >= thresholds[i] n+2-i, else 1; 0 missing';
CREATE FUNCTION caredata.compare_damerau_levenshtein(text, text, thresholds integer[] DEFAULT '{1,2}') RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_damerau_levenshtein(text, text, integer[]) IS
  'string comparison level by Damerau-Levenshtein distance, thresholds strictest first: exact n+2, distance <= thresholds[i] n+2-i, else 1; 0 missing';
