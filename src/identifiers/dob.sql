-- src/identifiers/dob.sql
-- Dates of birth (src/identifiers/dob.c).  The reference date defaults to today at the
-- call site; the functions themselves are immutable in their arguments.

CREATE FUNCTION caredata.standardise_dob(text, at date DEFAULT current_date) RETURNS date
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.standardise_dob(text, date) IS
  'date of birth from YYYY-MM-DD, YYYY/MM/DD, YYYYMMDD, DD/MM/YYYY, DD-MM-YYYY or DD.MM.YYYY (independent of DateStyle), valid as HES uses it: not before 1895-01-01, not after at';
CREATE FUNCTION caredata.try_standardise_dob(text, at date DEFAULT current_date) RETURNS date
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.try_standardise_dob(text, date) IS
  'date of birth as standardise_dob, or NULL when unparsable or not valid';

CREATE FUNCTION caredata.dob_is_valid(dob date, at date DEFAULT current_date) RETURNS boolean
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.dob_is_valid(date, date) IS
  'true when a date of birth is valid as HES uses it: not before 1895-01-01 and not after at (default today)';

CREATE FUNCTION caredata.age_band(dob date, at date, width integer DEFAULT 5, top integer DEFAULT 90) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.age_band(date, date, integer, integer) IS
  'age band in completed years at date at, for publication: 40-44 for width 5, 90+ from top (default 90)';
