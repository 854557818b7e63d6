-- linkage_names: standardisers and comparators for names and addresses
-- (src/linkage/names.c), on realistic and hostile input, and every level
-- boundary of the comparators
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
RESET client_min_messages;
SET search_path = caredata, public;
\set SHOW_CONTEXT never

-- deliberate properties: immutable, parallel safe; standardisers strict, comparators not
SELECT p.proname, p.provolatile, p.proparallel, p.proisstrict
FROM pg_proc p WHERE p.pronamespace = 'caredata'::regnamespace
  AND p.proname IN ('standardise_name', 'name_phonetic', 'standardise_address', 'address_house_number',
                    'standardise_postcode_any', 'compare_token_overlap', 'compare_name')
ORDER BY 1;

-- ---- standardise_name ----
-- (the input's zero-width space shown as <U+200B>: psql 17 gives it a
-- width where 15 gives none)
SELECT replace(x, U&'\200B', '<U+200B>') AS x, standardise_name(x) FROM (VALUES
  ('Dr. John  SMITH Jr'),                  -- title, suffix, case, punctuation, double space
  ('O''Brien'), ('O’Brien'), ('D`Arcy'),  -- apostrophes (ASCII, typographic, grave) removed inside words
  ('Smith-Jones'),                         -- hyphen to a space
  ('  Mary-Kate   OLSEN III  '),           -- trimmed, collapsed, suffix III dropped
  ('Mrs Ms Miss Mx Prof Rev Sir Dame Lady Lord Sr II IV Ann'), -- every title and suffix
  ('Zoë Łukasz Ødegård Straße Æsir'),      -- Latin-1 and Latin Extended-A folded
  ('Sèán Ó’Súilleabháin'), ('ŒUVRE ĳssel Þór Ðaði'), -- ligatures, thorn, eth
  ('François Dvořák Şahin Nguyễn'),        -- Latin Extended-B and Additional
  ('e' || U&'\0301' || 'mile'),            -- decomposed accent (combining mark) dropped
  ('Ｊｏｈｎ　Ｓｍｉｔｈ'),                 -- full-width letters and ideographic space
  ('ΑΛΕΞΑΝΔΡΟΣ'), ('ИВАНОВ Ёлка'),         -- Greek and Cyrillic lower-cased, kept
  ('李小龍'),                              -- other scripts kept as they are
  ('Ann' || U&'\200B' || 'e'),             -- zero-width space vanishes
  ('Ann 😀 Lee'), ('J.R.R. Tolkien'), (E'Tab\tNew\nLine'), (E'ctl\001chars'),
  ('Lord'),                                -- only a title: nothing left
  ('MR.'), (''), ('  ...  '), ('''')
) v(x);
SELECT standardise_name(NULL) IS NULL AS null_in_null_out;
-- idempotent: a standardised name standardises to itself
SELECT count(*) AS not_idempotent FROM (VALUES ('Dr. John  SMITH Jr'), ('O''Brien'), ('Zoë Łukasz Ødegård'),
  ('Ｊｏｈｎ'), ('ΑΛΕΞΑΝΔΡΟΣ'), ('Smith-Jones')) v(x)
WHERE standardise_name(standardise_name(x)) IS DISTINCT FROM standardise_name(x);
-- 10 MB: by character, never longer than the input
SELECT length(standardise_name(repeat('Ab é, ', 1750000))) AS ten_mb_name;

-- ---- name_phonetic: Double Metaphone of each word, no CREATE EXTENSION fuzzystrmatch ----
SELECT count(*) AS fuzzystrmatch_extensions FROM pg_extension WHERE extname = 'fuzzystrmatch';
SELECT x, name_phonetic(x) FROM (VALUES
  ('Smith'), ('Smyth'), ('Schmidt'), ('Catherine'), ('Kathryn'), ('Dr. John SMITH Jr'),
  ('O''Brien'), ('Smith-Jones'), ('Zoë Ødegård'),
  ('ИВАНОВ'),                              -- Cyrillic: no code (not Latin-1 bytes read as Ñ)
  ('Ivanov ИВАНОВ'), ('12 34'), ('Mr'), ('')
) v(x);
SELECT length(name_phonetic(repeat('Ab é ', 2000000))) AS ten_mb_phonetic;
SELECT name_phonetic(NULL) IS NULL AS null_in_null_out;

-- ---- standardise_address and address_house_number ----
SELECT x, standardise_address(x), address_house_number(x) FROM (VALUES
  ('Flat 3, 12 High Street, London SW1A 1AA'),   -- UK postcode (two words) removed
  ('12A Saint John''s Road'), ('12 a St. Johns Rd sw1a1aa'), -- one word postcode; 12 a is 12a
  ('Apartment 5, 10-12 Crescent Avenue'), ('Apt 5 10 12 Cres Av'),
  ('4 The Gardens, Church Lane'), ('1 Mount Terrace, Park Drive'),
  ('7 Victoria Court, Grove Close, Market Place, Square Tce'),
  ('Street Farm'),                               -- street words map wherever they stand
  ('Rue de l’Église 75008 Paris'),               -- a non-UK postcode is kept (and counts as a number)
  ('Straße 5, 10115 Berlin'),
  ('No number'), (''), ('!!'), ('sw1a 1aa'), ('B2 1AA'), ('1 aa')
) v(x);
SELECT standardise_address(NULL) IS NULL AND address_house_number(NULL) IS NULL AS null_in_null_out;
SELECT count(*) AS not_idempotent FROM (VALUES ('Flat 3, 12 High Street, London SW1A 1AA'),
  ('Apartment 5, 10-12 Crescent Avenue'), ('12 a St. Johns Rd')) v(x)
WHERE standardise_address(standardise_address(x)) IS DISTINCT FROM standardise_address(x);
SELECT length(standardise_address(repeat('av 1 a, ', 1300000))) AS ten_mb_address,
       length(address_house_number(repeat('12 High St ', 1000000))) AS ten_mb_numbers,
       address_house_number(repeat('x', 10000000)) AS no_number_in_ten_mb;

-- ---- standardise_postcode_any ----
SELECT x, standardise_postcode_any(x) FROM (VALUES
  ('SW1A 1AA'), ('sw1a1aa'), (' ec1a  1bb '),  -- UK: canonical
  ('75008'), ('k1a 0b6'), ('K1A-0B6'), ('D02 X285'), ('10115 Berlin!'), ('Ü-1234'), ('1010  Wien'),
  ('--'), (''), ('  '), ('№')
) v(x);
SELECT length(standardise_postcode_any(repeat('a-', 5000000))) AS ten_mb_postcode;

-- ---- compare_postcode on postcodes of other countries ----
SELECT a, b, compare_postcode(a, b) AS level FROM (VALUES
  ('75008', '75008'),          -- equal: 5
  ('75008', '75009'),          -- different: 1
  ('k1a 0b6', 'K1A0B6'),       -- case and spaces aside: 5
  ('K1A-0B6', 'k1a 0b6'),      -- punctuation aside: 5
  ('75008', '750080'),         -- a prefix is different: 1
  ('SW1A 1AA', 'sw1a1aa'),     -- UK as before: 5
  ('SW1A 1AA', 'SW1A 2AA'),    -- UK, same district: 3
  ('SW1A 1AA', '75008'),       -- a UK postcode against one that is not: 0
  ('75008', ''), ('--', '--'), ('75008', NULL)
) v(a, b);

-- ---- compare_token_overlap: levels and boundaries (default '{0.8,0.5}') ----
SELECT a, b, compare_token_overlap(a, b) AS level FROM (VALUES
  ('john smith', 'john smith'),        -- exact: 4
  ('john smith', 'smith john'),        -- same words, other order: 3
  ('a b c d', 'a b c d e'),            -- overlap 4/5 = 0.8 exactly: 3
  ('a b c d e', 'a b c d f'),          -- 4/6: 2
  ('a b', 'a b c d'),                  -- 2/4 = 0.5 exactly: 2
  ('a', 'a b c'),                      -- 1/3: 1
  ('a b', 'c d'),                      -- nothing in common: 1
  ('a  a   b', 'b a'),                 -- sets: repeated words count once: 3
  ('x', ''), ('  ', '  '), (NULL, 'x')
) v(a, b);
SELECT compare_token_overlap('a b', 'b a', '{}') AS no_thresholds_not_exact,
       compare_token_overlap('a b', 'a b', '{}') AS no_thresholds_exact,
       compare_token_overlap('a b c', 'a b d', '{0.9,0.6,0.5,0.1}') AS four_thresholds;
SELECT compare_token_overlap(repeat('a b ', 2500000), repeat('b c ', 2500000)) AS ten_mb_overlap;
SELECT compare_token_overlap('a', 'b', NULL);
SELECT compare_token_overlap('a', 'b', '{{0.5}}');
SELECT compare_token_overlap('a', 'b', '{0.5,NULL}');

-- ---- compare_name: levels and boundaries (default '{0.92,0.8}') ----
SELECT a, b, compare_name(a, b) AS level, round(jaro_winkler(a, b)::numeric, 4) AS jw FROM (VALUES
  ('john smith', 'john smith'),        -- exact: 5
  ('jon smith', 'john smith'),         -- Jaro-Winkler >= 0.92: 4
  ('ab', 'ba'),                        -- Jaro-Winkler 0 but one transposition: 4
  ('steven', 'stephen'),               -- Jaro-Winkler >= 0.8: 3
  ('catherine', 'kathryn'),            -- same Double Metaphone: 2
  ('smith', 'schmidt'),                -- primary codes differ (SM0, XMT): 1
  ('john', 'mary'),                    -- different: 1
  ('john', ''), (NULL, 'john')         -- missing: 0
) v(a, b);
-- the boundaries are inclusive: a threshold equal to the similarity reaches its level
SELECT compare_name('steven', 'stephen', ARRAY[jaro_winkler('steven', 'stephen'), 0.5]) AS at_top,
       compare_name('steven', 'stephen', ARRAY[jaro_winkler('steven', 'stephen') + 1e-9, jaro_winkler('steven', 'stephen')]) AS at_second,
       compare_name('steven', 'stephen', ARRAY[0.99, jaro_winkler('steven', 'stephen') + 1e-9]) AS below_both,
       compare_name('john', 'mary', '{0.99}') AS one_threshold_different,
       compare_name('john', 'john', '{0.99}') AS one_threshold_exact;
SELECT compare_name(repeat('a', 10000000), repeat('a', 10000000)) AS ten_mb_equal;
SELECT compare_name(repeat('a', 10000000), repeat('b', 10000000));
SELECT compare_name('a', 'b', '{}');
SELECT compare_name('a', 'b', '{0.9,0.9,0.9,0.9,0.9,0.9,0.9,0.9,0.9,0.9,0.9,0.9,0.9}');
SELECT compare_name('a', 'b', NULL);

-- the comparators are meant for standardised values, end to end
SELECT compare_name(standardise_name('Dr. Catherine O''BRIEN'), standardise_name('Kathryn OBrien')) AS names,
       compare_token_overlap(standardise_address('Flat 3, 12 High Street, SW1A 1AA'),
                             standardise_address('12 High St Flat 3')) AS addresses,
       compare_postcode(standardise_postcode_any('k1a 0b6'), standardise_postcode_any('K1A0B6')) AS postcodes;
-- the coded form (phonetic codes as linkage keeps them) gives the same levels
SELECT count(*) AS pairs,
       count(*) FILTER (WHERE caredata.compare_name(a, b) = caredata.compare_name(a, b, caredata.name_phonetic(a), caredata.name_phonetic(b))) AS same_level,
       count(*) FILTER (WHERE caredata.compare_name(a, b) = 2) AS phonetic_level
  FROM (VALUES ('john'), ('jon'), ('jonathan'), ('smith'), ('smyth'), ('schmidt'), ('catherine'), ('kathryn'), ('zoe'), ('')) x(a),
       (VALUES ('john'), ('jon'), ('jonathan'), ('smith'), ('smyth'), ('schmidt'), ('catherine'), ('kathryn'), ('zoe'), ('')) y(b);
SELECT caredata.compare_name('catherine', 'kathryn', NULL, 'K0RN') AS no_code_no_phonetic_level;
