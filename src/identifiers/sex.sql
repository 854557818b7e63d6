-- src/identifiers/sex.sql
-- Sex / stated gender standardiser (src/identifiers/sex.c).

CREATE FUNCTION caredata.standardise_sex(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.standardise_sex(text) IS
  'NHS Data Dictionary stated gender code from common codings: 1 male, 2 female, 9 indeterminate, X not known; raises 22P02 if unrecognised';
CREATE FUNCTION caredata.try_standardise_sex(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.try_standardise_sex(text) IS
  'stated gender code (1, 2, 9, X), or NULL when the coding is not recognised';
