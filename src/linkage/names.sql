-- src/linkage/names.sql
-- Standardisers and comparators for names and addresses (src/linkage/names.c),
-- for linkage on any column of a source.  Immutable and parallel safe; the
-- standardisers are strict (NULL in, NULL out; NULL too when nothing is
-- left), the comparators are not (NULL is the missing level 0).  They hold no
-- secret, so every role may call them.  They work by character in any
-- server encoding.

CREATE FUNCTION caredata.standardise_name(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.standardise_name(text) IS
  'a name standardised for linkage: lower case, Latin letters folded to ASCII (é e, ß ss, ø o, æ ae, ł l), apostrophes removed, other punctuation and hyphens to spaces, titles and suffixes (mr mrs ms miss mx dr prof rev sir dame lady lord jr sr ii iii iv) dropped, one space between words; NULL when nothing is left';

CREATE FUNCTION caredata.name_phonetic(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.name_phonetic(text) IS
  'Double Metaphone primary code of each word of the standardised name, one space apart (PostgreSQL''s fuzzystrmatch library, loaded at first use; CREATE EXTENSION fuzzystrmatch is not needed, the postgresql-contrib files are); NULL when no word has a code';

CREATE FUNCTION caredata.standardise_address(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.standardise_address(text) IS
  'an address standardised for linkage: folded as standardise_name (no titles dropped), street words to one spelling (road rd, street st, saint st, avenue ave, lane ln, drive dr, close cl, court ct, crescent cres, place pl, gardens gdns, terrace terr, square sq, grove gr, park pk, mount mt, apartment/apt flat), "12 a" joined to "12a", a UK postcode removed; NULL when nothing is left';

CREATE FUNCTION caredata.address_house_number(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.address_house_number(text) IS
  'the house and flat numbers of an address: the words of standardise_address that start with a digit, in order, one space apart ("Flat 3, 12 High St" gives "3 12"); NULL when there is none';

CREATE FUNCTION caredata.standardise_postcode_any(text) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION caredata.standardise_postcode_any(text) IS
  'a postcode of any country: the canonical form of a UK postcode (SW1A 1AA), else upper case keeping letters (accents folded), digits, hyphens and single spaces (75008, K1A 0B6); NULL when no letter or digit is left';

CREATE FUNCTION caredata.compare_token_overlap(text, text, thresholds double precision[] DEFAULT '{0.8,0.5}') RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_token_overlap(text, text, double precision[]) IS
  'comparison level by the Jaccard overlap of the two word sets (split on white space), thresholds strictest first: exact n+2, overlap >= thresholds[i] n+2-i, else 1; 0 missing or no word';

CREATE FUNCTION caredata.compare_name(text, text, thresholds double precision[] DEFAULT '{0.92,0.8}') RETURNS integer
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_name(text, text, double precision[]) IS
  'comparison level of two standardised names (standardise_name): 5 exact, 4 Jaro-Winkler >= thresholds[1] or one edit (Damerau-Levenshtein), 3 Jaro-Winkler >= thresholds[2], 2 same phonetic code (name_phonetic), 1 different, 0 missing or empty; with n thresholds exact is n+3';

CREATE FUNCTION caredata.compare_name(text, text, l_phonetic text, r_phonetic text, thresholds double precision[] DEFAULT '{0.92,0.8}') RETURNS integer
  AS 'MODULE_PATHNAME', 'compare_name_coded' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.compare_name(text, text, text, text, double precision[]) IS
  'name comparison level as compare_name(text, text), with the two names'' phonetic codes given (name_phonetic, as linkage keeps them in <field>_ph) instead of computed per pair';