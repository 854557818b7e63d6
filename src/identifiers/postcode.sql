-- src/identifiers/postcode.sql
-- UK postcode standardisers (src/identifiers/postcode.c).  Each raises 22P02 on text no
-- UK postcode can be; the try_ variant returns NULL instead.

CREATE FUNCTION caredata.normalise_postcode(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.normalise_postcode(text) IS
  'UK postcode in canonical form (sw1a1aa -> SW1A 1AA); raises 22P02 for text no UK postcode can be';
CREATE FUNCTION caredata.try_normalise_postcode(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.try_normalise_postcode(text) IS
  'UK postcode in canonical form, or NULL when the text cannot be a UK postcode';

CREATE FUNCTION caredata.postcode_area(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.postcode_area(text) IS
  'postcode area, the leading letters (SW1A 1AA -> SW)';
CREATE FUNCTION caredata.try_postcode_area(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.try_postcode_area(text) IS
  'postcode area, or NULL when the text cannot be a UK postcode';

CREATE FUNCTION caredata.postcode_district(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.postcode_district(text) IS
  'postcode district, the outward code (SW1A 1AA -> SW1A)';
CREATE FUNCTION caredata.try_postcode_district(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.try_postcode_district(text) IS
  'postcode district, or NULL when the text cannot be a UK postcode';

CREATE FUNCTION caredata.postcode_sector(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.postcode_sector(text) IS
  'postcode sector, the outward code and the inward digit (SW1A 1AA -> SW1A 1)';
CREATE FUNCTION caredata.try_postcode_sector(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.try_postcode_sector(text) IS
  'postcode sector, or NULL when the text cannot be a UK postcode';
