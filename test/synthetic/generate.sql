-- test/synthetic/generate.sql
-- A seeded, reproducible synthetic population with ground truth, for the
-- demo, the tests and the benchmarks.  Plain SQL on core PostgreSQL: it does
-- not need the caredata extension, and it is not part of it.
--
--   \i test/synthetic/generate.sql
--   SELECT * FROM synth.generate(100000, 42);
--
-- Every random number is a hash of (row id, stream, seed) (synth.u), never
-- random(): the same n and seed give the same tables whatever the plan.
-- Sources (schema synth) carry identifiers as they arrive, as text, with
-- realistic errors; the truth (schema synth_truth) is kept apart.
-- See test/synthetic/README.md.

CREATE SCHEMA IF NOT EXISTS synth;
CREATE SCHEMA IF NOT EXISTS synth_truth;

-- uniform [0, 1) from (id, stream, seed)
CREATE OR REPLACE FUNCTION synth.u(id bigint, stream int, seed bigint)
RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT (hashint8extended(id * 131 + stream, seed) & 4503599627370495)::double precision
         / 4503599627370496.0
$$;

-- Modulus 11 check digit of a 9-digit base; -1 when it would be 10 (never issued)
CREATE OR REPLACE FUNCTION synth.check_digit(base bigint)
RETURNS int LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE c WHEN 11 THEN 0 WHEN 10 THEN -1 ELSE c END
  FROM (SELECT (11 - ((base / 100000000 % 10) * 10 + (base / 10000000 % 10) * 9 +
                      (base / 1000000 % 10) * 8 + (base / 100000 % 10) * 7 +
                      (base / 10000 % 10) * 6 + (base / 1000 % 10) * 5 +
                      (base / 100 % 10) * 4 + (base / 10 % 10) * 3 +
                      (base % 10) * 2) % 11)::int AS c) x
$$;

-- postcode areas (real ones), the trust that serves each, GP practice letter
CREATE OR REPLACE FUNCTION synth.areas() RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ARRAY['LS','M','B','SW','NE','BS','L','S','NG','LE','CV','SO','PO','BN','CF',
               'EX','PL','TR','YO','HU','DN','WF','BD','HX','OL','BL','WN','PR','BB','LA',
               'CA','DH','SR','TS','DL','HG','CB','NR','IP','OX']
$$;
CREATE OR REPLACE FUNCTION synth.providers() RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ARRAY['RR8','RW3','RQ3','RJ7','RTD','RA7','REM','RHQ','RX1','RWE','RKB','RHM','RHU','RXH','RWM',
               'RH8','RK9','REF','RCB','RWA','RP5','RXF','RAE','RWY','RM3','RMC','RRF','RXN','RXL','RTX']
$$;

-- a postcode: area, then district/sector/unit from a hash of code index k
CREATE OR REPLACE FUNCTION synth.postcode(area text, k bigint, seed bigint)
RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT area || (1 + floor(synth.u(k, 1, seed) * 20))::int || ' ' ||
         floor(synth.u(k, 2, seed) * 10)::int ||
         substr('ABDEFGHJLNPQRSTUWXYZ', 1 + floor(synth.u(k, 3, seed) * 20)::int, 1) ||
         substr('ABDEFGHJLNPQRSTUWXYZ', 1 + floor(synth.u(k, 4, seed) * 20)::int, 1)
$$;

-- the injected NHS number errors
CREATE OR REPLACE FUNCTION synth.mistype(nhs text, id bigint, seed bigint)
RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  -- swap two adjacent different digits, or change one digit to another
  SELECT CASE
    WHEN synth.u(id, 71, seed) < 0.5 AND substr(nhs, p, 1) <> substr(nhs, p + 1, 1)
      THEN overlay(nhs placing substr(nhs, p + 1, 1) || substr(nhs, p, 1) from p for 2)
    ELSE overlay(nhs placing ((substr(nhs, q, 1)::int + 1 + floor(synth.u(id, 72, seed) * 9)::int) % 10)::text
                 from q for 1)
  END
  FROM (SELECT 1 + floor(synth.u(id, 73, seed) * 9)::int AS p,
               1 + floor(synth.u(id, 74, seed) * 10)::int AS q) x
$$;

-- a wrong date of birth: day and month swapped where that makes another
-- date, else one field wrong; always a valid date different from the truth
CREATE OR REPLACE FUNCTION synth.wrong_dob(dob date, id bigint, seed bigint)
RETURNS date LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE
    WHEN synth.u(id, 81, seed) < 0.5 AND extract(day FROM dob) <= 12
         AND extract(day FROM dob) <> extract(month FROM dob)
      THEN make_date(extract(year FROM dob)::int, extract(day FROM dob)::int, extract(month FROM dob)::int)
    WHEN synth.u(id, 82, seed) < 0.4
      THEN (dob + (CASE WHEN synth.u(id, 83, seed) < 0.7 THEN 1 ELSE 10 END
                   * CASE WHEN synth.u(id, 84, seed) < 0.5 THEN -1 ELSE 1 END) * interval '1 year')::date
    WHEN synth.u(id, 82, seed) < 0.7
      THEN dob + (1 + floor(synth.u(id, 85, seed) * 3)::int) * CASE WHEN synth.u(id, 86, seed) < 0.5 THEN -1 ELSE 1 END
    ELSE (dob + (1 + floor(synth.u(id, 87, seed) * 11)::int) * interval '1 month')::date
  END
$$;

-- the errors a source record gets, each drawn from its own stream (50 to
-- 55) of the record's id: its NHS number missing (3%), another person's
-- (0.1%) or mistyped (1%), its date of birth wrong (1%), its postcode an
-- earlier one (10%), its sex unknown (0.5%)
CREATE OR REPLACE FUNCTION synth.record_errors(id bigint, seed bigint)
RETURNS TABLE (nhs_missing boolean, nhs_other boolean, nhs_typo boolean,
               dob_wrong boolean, moved boolean, sex_unknown boolean)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$   -- not STRICT: inlined into the query
  SELECT synth.u(id, 50, seed) < 0.03, synth.u(id, 52, seed) < 0.001, synth.u(id, 51, seed) < 0.01,
         synth.u(id, 53, seed) < 0.01, synth.u(id, 54, seed) < 0.10, synth.u(id, 55, seed) < 0.005
$$;

-- the NHS number of person id's household neighbour (the other of the pair
-- id - 1, id or id, id + 1): plpgsql, as synth_truth.person does not exist
-- yet when this file is read; PARALLEL RESTRICTED, as the correlated
-- subquery it replaced was, so the sources stay written by one process in
-- one order
CREATE OR REPLACE FUNCTION synth.neighbour_nhs(id bigint, n_people int)
RETURNS text LANGUAGE plpgsql STABLE STRICT PARALLEL RESTRICTED AS $$
BEGIN
  RETURN (SELECT o.nhs_number FROM synth_truth.person o
          WHERE o.person_id = CASE WHEN id % 2 = 1 AND id < n_people THEN id + 1 ELSE id - 1 END);
END
$$;

-- a record's NHS number as it arrives, given its errors (a missing number
-- wins over the others, another person's over a typo)
CREATE OR REPLACE FUNCTION synth.nhs_as_recorded(nhs text, person_id bigint, n_people int, id bigint, seed bigint,
                                                 nhs_missing boolean, nhs_other boolean, nhs_typo boolean)
RETURNS text LANGUAGE sql STABLE PARALLEL RESTRICTED AS $$
  SELECT CASE WHEN nhs_missing THEN NULL
              WHEN nhs_other THEN synth.neighbour_nhs(person_id, n_people)
              WHEN nhs_typo THEN synth.mistype(nhs, id, seed)
              ELSE nhs END
$$;

-- the truth table's names for a record's errors, as nhs_as_recorded()
-- applies them
CREATE OR REPLACE FUNCTION synth.error_kinds(nhs_missing boolean, nhs_other boolean, nhs_typo boolean,
                                             dob_wrong boolean, moved boolean, sex_unknown boolean)
RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_remove(ARRAY[
           CASE WHEN nhs_missing THEN 'nhs_missing' END,
           CASE WHEN NOT nhs_missing AND nhs_other THEN 'nhs_other_person' END,
           CASE WHEN NOT nhs_missing AND NOT nhs_other AND nhs_typo THEN 'nhs_mistyped' END,
           CASE WHEN dob_wrong THEN 'dob_wrong' END,
           CASE WHEN moved THEN 'postcode_moved' END,
           CASE WHEN sex_unknown THEN 'sex_unknown' END], NULL)
$$;

-- ---- names and addresses (issue 25) ----------------------------------------
-- Every value below is drawn from synth.v(key, purpose, seed): a hash of the
-- key (a person, household or record id), a purpose named in words and the
-- seed, independent of synth.u's streams, so adding these columns left every
-- earlier column of the default call unchanged row for row.

-- (the helpers below are not STRICT where their body has a CASE, least()
-- or a subquery: PostgreSQL inlines a STRICT SQL function only when its
-- body is strict, and a call that is not inlined costs 30 times more)

-- uniform [0, 1) from (id, purpose, seed)
CREATE OR REPLACE FUNCTION synth.v(id bigint, purpose text, seed bigint)
RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT (hashint8extended(id, seed # hashtextextended(purpose, 25)) & 4503599627370495)::double precision
         / 4503599627370496.0
$$;

-- the same from a text key (a postcode)
CREATE OR REPLACE FUNCTION synth.vt(key text, purpose text, seed bigint)
RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT (hashtextextended(purpose || ':' || key, seed) & 4503599627370495)::double precision
         / 4503599627370496.0
$$;

-- a skewed pick from a list ordered by frequency: rank r (1..n) with
-- probability about 1 / (r + c), by inverting the continuous distribution
-- (u shrunk a little so that rounding never reaches n + 1; n used once, so
-- that an argument costly to compute does not stop inlining)
CREATE OR REPLACE FUNCTION synth.zipf(u double precision, n int, c double precision)
RETURNS int LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT 1 + floor(c * power((n + c) / c, u * 0.999999) - c)::int
$$;

-- given names, most frequent first: 1 men born before 1975, 2 men born
-- since, 3 women born before 1975, 4 women born since (men's and women's
-- lists share no name)
CREATE OR REPLACE FUNCTION synth.given_names(list int) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE list
  WHEN 1 THEN ARRAY['John','David','Michael','Peter','Robert','Paul','James','William','Richard','Stephen',
    'Christopher','Andrew','Mark','Anthony','Brian','Alan','Kenneth','George','Thomas','Ian','Keith','Colin',
    'Graham','Philip','Gary','Steven','Kevin','Martin','Trevor','Raymond','Roger','Derek','Barry','Terence',
    'Dennis','Ronald','Frank','Edward','Geoffrey','Malcolm','Charles','Patrick','Gordon','Arthur','Leslie',
    'Stuart','Neil','Nigel','Simon','Timothy','Jeffrey','Roy','Harold','Norman','Donald','Douglas','Eric',
    'Albert','Frederick','Ernest','Walter','Stanley','Gerald','Clive','Adrian','Jonathan','Nicholas','Russell',
    'Dean','Wayne','Lee','Darren','Jason','Shaun','Carl','Glen','Craig','Henry','Samuel','Joseph','Daniel',
    'Matthew','Alexander','Hugh','Victor','Leonard','Sidney','Cyril','Bernard','Reginald','Howard','Vincent',
    'Lawrence','Dominic','Duncan','Francis','Gavin','Julian','Lionel','Mohammed']
  WHEN 2 THEN ARRAY['Oliver','Jack','Harry','James','Thomas','William','George','Daniel','Joshua','Samuel',
    'Charlie','Matthew','Jacob','Alfie','Noah','Oscar','Leo','Freddie','Archie','Henry','Joseph','Lewis',
    'Ethan','Max','Isaac','Logan','Lucas','Mohammed','Muhammad','Adam','Dylan','Ryan','Luke','Benjamin',
    'Alexander','Callum','Liam','Connor','Jake','Jordan','Kyle','Nathan','Michael','Christopher','Andrew',
    'David','Jamie','Ben','Aaron','Reece','Bradley','Scott','Lee','Craig','Dean','Ashley','Ricky','Danny',
    'Tom','Sam','Edward','Finley','Theo','Arthur','Jude','Reuben','Sebastian','Toby','Harrison','Zachary',
    'Elliot','Tyler','Owen','Rhys','Cameron','Kieran','Aiden','Louis','Harvey','Rory','Albie','Teddy','Hugo',
    'Elijah','Ibrahim','Yusuf','Ali','Omar','Hamza','Ayaan','Stanley','Dexter','Frankie','Ronnie','Tommy',
    'Mason','Riley','Jayden','Kai','Mark','Paul']
  WHEN 3 THEN ARRAY['Margaret','Susan','Patricia','Christine','Mary','Elizabeth','Linda','Janet','Jean',
    'Barbara','Carol','Sandra','Ann','Anne','Pauline','Julie','Jacqueline','Valerie','Joan','Dorothy','Karen',
    'Gillian','Kathleen','Sheila','Elaine','Brenda','Maureen','Irene','Doreen','Jennifer','Angela','Helen',
    'Jane','Catherine','Deborah','Tracey','Alison','Joyce','Betty','Eileen','Marion','June','Shirley','Rita',
    'Hilda','Edna','Ethel','Gladys','Doris','Vera','Lilian','Winifred','Marjorie','Evelyn','Audrey','Beryl',
    'Wendy','Diane','Lesley','Lorraine','Denise','Beverley','Dawn','Yvonne','Judith','Rosemary','Veronica',
    'Frances','Hazel','Ruth','Teresa','Caroline','Sarah','Nicola','Amanda','Michelle','Kim','Sharon','Joanne',
    'Lynn','Heather','Marilyn','Glenys','Rosalind','Josephine','Theresa','Ellen','Alice','Florence','Elsie',
    'Mavis','Sylvia','Phyllis','Muriel','Annie','Nasreen']
  ELSE ARRAY['Olivia','Amelia','Isla','Ava','Emily','Sophie','Jessica','Grace','Lily','Mia','Ella',
    'Charlotte','Chloe','Lucy','Emma','Hannah','Sophia','Poppy','Isabella','Evie','Freya','Florence','Daisy',
    'Alice','Sienna','Ruby','Phoebe','Evelyn','Matilda','Rosie','Holly','Megan','Lauren','Rebecca','Laura',
    'Amy','Sarah','Rachel','Natalie','Katie','Gemma','Stephanie','Samantha','Kelly','Claire','Nicola',
    'Jennifer','Victoria','Danielle','Hayley','Zoe','Leah','Abigail','Bethany','Georgia','Eleanor',
    'Elizabeth','Katherine','Harriet','Imogen','Amber','Jade','Kirsty','Maisie','Millie','Willow','Ivy',
    'Aria','Layla','Maryam','Aisha','Fatima','Zara','Nancy','Elsie','Rose','Martha','Esme','Eva','Harper',
    'Scarlett','Georgina','Naomi','Kayleigh','Chelsea','Shannon','Louise','Joanne','Michelle','Lisa','Kerry',
    'Donna','Anna','Maya','Violet','Catherine','Amira']
  END
$$;

-- the short forms a given name is also recorded under (NULL: none); a
-- jsonb look-up, which costs a tenth of a CASE with 90 branches
CREATE OR REPLACE FUNCTION synth.nicknames(given text) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT string_to_array('{
    "William": "Bill,Will,Billy", "Robert": "Bob,Rob,Bobby", "Richard": "Dick,Rich,Richie",
    "James": "Jim,Jimmy,Jamie", "John": "Jack,Johnny", "Michael": "Mike,Mick", "David": "Dave",
    "Peter": "Pete", "Thomas": "Tom,Tommy", "Christopher": "Chris", "Anthony": "Tony", "Stephen": "Steve",
    "Steven": "Steve", "Andrew": "Andy,Drew", "Edward": "Ed,Eddie,Ted", "Charles": "Charlie,Chas",
    "Joseph": "Joe", "Daniel": "Dan,Danny", "Matthew": "Matt", "Samuel": "Sam", "Benjamin": "Ben",
    "Alexander": "Alex,Sandy", "Jonathan": "Jon", "Nicholas": "Nick", "Timothy": "Tim",
    "Kenneth": "Ken,Kenny", "Ronald": "Ron,Ronnie", "Donald": "Don", "Gerald": "Gerry",
    "Frederick": "Fred,Freddie", "Albert": "Bert,Bertie", "Henry": "Harry,Hal", "Terence": "Terry",
    "Raymond": "Ray", "Leonard": "Len,Lenny", "Lawrence": "Laurie,Larry", "Patrick": "Pat,Paddy",
    "Philip": "Phil", "Francis": "Frank", "Geoffrey": "Geoff", "Douglas": "Doug", "Joshua": "Josh",
    "Zachary": "Zach", "Oliver": "Ollie", "Sebastian": "Seb", "Callum": "Cal",
    "Elizabeth": "Liz,Beth,Betty,Lizzie", "Margaret": "Maggie,Peggy,Meg", "Catherine": "Cathy,Kate",
    "Katherine": "Kate,Kathy", "Susan": "Sue,Susie", "Patricia": "Pat,Trish", "Christine": "Chris,Chrissie",
    "Jennifer": "Jenny,Jen", "Deborah": "Debbie,Deb", "Barbara": "Babs", "Dorothy": "Dot,Dolly",
    "Kathleen": "Kath", "Jacqueline": "Jackie", "Valerie": "Val", "Gillian": "Gill",
    "Rebecca": "Becky,Becca", "Samantha": "Sam", "Victoria": "Vicky,Tori", "Stephanie": "Steph",
    "Abigail": "Abby", "Josephine": "Jo,Josie", "Eleanor": "Ellie,Nell", "Amanda": "Mandy",
    "Nicola": "Nicky", "Joanne": "Jo", "Frances": "Fran", "Theresa": "Tess", "Teresa": "Tess",
    "Rosemary": "Rosie", "Florence": "Flo", "Isabella": "Bella,Izzy", "Olivia": "Liv",
    "Charlotte": "Lottie,Charlie", "Matilda": "Tilly", "Caroline": "Carrie", "Sandra": "Sandy",
    "Beverley": "Bev", "Winifred": "Win,Winnie", "Georgina": "Gina,Georgie", "Harriet": "Hattie",
    "Natalie": "Nat", "Danielle": "Dani", "Amelia": "Millie", "Louise": "Lou", "Imogen": "Immy"
  }'::jsonb ->> given, ',')
$$;

-- family names, most frequent first (Smith about 1.5%)
CREATE OR REPLACE FUNCTION synth.family_names() RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ARRAY['Smith','Jones','Williams','Taylor','Brown','Davies','Evans','Wilson','Thomas','Johnson',
    'Roberts','Robinson','Thompson','Wright','Walker','White','Edwards','Hughes','Green','Hall','Lewis',
    'Harris','Clarke','Patel','Jackson','Wood','Turner','Martin','Cooper','Hill','Ward','Morris','Moore',
    'Clark','Lee','King','Baker','Harrison','Morgan','Allen','James','Scott','Phillips','Watson','Davis',
    'Parker','Price','Bennett','Young','Griffiths','Mitchell','Kelly','Cook','Carter','Richardson','Bailey',
    'Collins','Bell','Shaw','Murphy','Miller','Cox','Richards','Khan','Marshall','Anderson','Simpson','Ellis',
    'Adams','Singh','Begum','Wilkinson','Foster','Chapman','Powell','Webb','Rogers','Gray','Mason','Ali',
    'Hunt','Hussain','Campbell','Matthews','Owen','Palmer','Holmes','Mills','Barnes','Knight','Lloyd',
    'Butler','Russell','Barker','Fisher','Stevens','Jenkins','Murray','Dixon','Harvey','Graham','Pearson',
    'Ahmed','Fletcher','Walsh','Kaur','Gibson','Howard','Andrews','Stewart','Elliott','Reynolds','Saunders',
    'Payne','Fox','Ford','Pearce','Day','Brooks','West','Lawrence','Cole','Atkinson','Bradley','Spencer',
    'Gill','Dawson','Ball','Burton','O''Brien','Watts','Rose','Booth','Perry','Ryan','Grant','Wells',
    'Armstrong','Francis','Rees','Hayes','Hart','Hudson','Newman','Barrett','Webster','Hunter','Gregory',
    'Carr','Lowe','Page','Marsh','Riley','Dunn','Woods','Parsons','Berry','Stone','Reid','Holland','Hawkins',
    'Harding','Porter','Robertson','Newton','Oliver','Reed','Kennedy','Williamson','Bird','Gardner','Shah',
    'Dean','Lane','Cooke','Bates','Henderson','Parry','Burgess','Bishop','Walton','Burns','Nicholson',
    'Shepherd','Ross','Cross','Long','Freeman','Warren','Nicholls','Hamilton','Byrne','Sutton','McDonald',
    'Yates','Hodgson','Robson','Curtis','Hopkins','O''Connor','Harper','Coleman','Watkins','Moss','McCarthy',
    'Chambers','O''Neill','Griffin','Sharp','Hardy','Wheeler','Potter','Osborne','Johnston','Gordon','Doyle',
    'Wallace','George','Jordan','Hutchinson','Rowe','Burke','May','Pritchard','Gilbert','Willis','Higgins',
    'Read','Miles','Stevenson','Stephenson','Hammond','Arnold','Buckley','Walters','Hewitt','Barber',
    'Nelson','Slater','Austin','Sullivan','Whitehead','Mann','Frost','Lambert','Stephens','Blake','Akhtar',
    'Lynch','Goodwin','Barton','Woodward','Thomson','Cunningham','Quinn','Barnett','Baxter','Bibi','Clayton',
    'Nash','Greenwood','Jennings','Holt','Kemp','Poole','Gallagher','Bond','Stokes','Tucker','Davidson',
    'Fowler','Heath','Norman','Middleton','Lawson','Banks','French','Stanley','Jarvis','Gibbs','Ferguson',
    'Hayward','Carroll','Douglas','Dickinson','Todd','Barlow','Peters','Lucas','Knowles','Hartley','Miah',
    'Simmons','Morton','Alexander','Field','Morrison','Norris','Townsend','Preston','Hancock','Thornton',
    'Baldwin','Burrows','Briggs','Storey','Pugh','Nguyen','Wang','Chen','Kowalski','Nowak','Mensah','Okafor',
    'Smith-Jones','Ap Rhys','De Souza','MacLeod']
$$;

-- the town of each postcode area of synth.areas(), in the same order
CREATE OR REPLACE FUNCTION synth.towns() RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ARRAY['Leeds','Manchester','Birmingham','London','Newcastle upon Tyne','Bristol','Liverpool',
               'Sheffield','Nottingham','Leicester','Coventry','Southampton','Portsmouth','Brighton','Cardiff',
               'Exeter','Plymouth','Truro','York','Hull','Doncaster','Wakefield','Bradford','Halifax','Oldham',
               'Bolton','Wigan','Preston','Blackburn','Lancaster','Carlisle','Durham','Sunderland',
               'Middlesbrough','Darlington','Harrogate','Cambridge','Norwich','Ipswich','Oxford']
$$;

CREATE OR REPLACE FUNCTION synth.town(postcode text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (synth.towns())[array_position(synth.areas(), substring(postcode FROM '^[A-Z]+'))]
$$;

-- street names and kinds, most frequent first
CREATE OR REPLACE FUNCTION synth.street_names() RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ARRAY['Church','Station','Victoria','Park','Mill','High','Green','Manor','Kings','Queens','New',
               'York','Albert','Chapel','School','Grange','Windsor','Orchard','Springfield','Highfield',
               'Meadow','Elm','Oak','Beech','Ash','Willow','Cedar','Hawthorn','Birch','Mount','Hill',
               'North','South','West','East','Market','Bridge','London','Westfield','Richmond','Stanley',
               'Albion','Alexandra','Nelson','Cromwell','Jubilee','Woodland','Broad','Main','Castle',
               'Fairfield','Brook','Moor','Sandy','Farm','Lime','Holly','Poplar','Rectory','Vicarage',
               'Princes','Clarence','Salisbury','Wellington','Marlborough','Carlton','Grosvenor','Belmont']
$$;
CREATE OR REPLACE FUNCTION synth.street_kinds() RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ARRAY['Road','Street','Lane','Avenue','Close','Drive','Crescent','Gardens','Way','Terrace','Grove','Place']
$$;

-- the street of a postcode (every address in a postcode is on one street);
-- one expression, so that it is inlined
CREATE OR REPLACE FUNCTION synth.street(postcode text, seed bigint) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (synth.street_names())[synth.zipf(synth.vt(postcode, 'street name', seed), 68, 20)] || ' ' ||
         CASE WHEN synth.zipf(synth.vt(postcode, 'street name', seed), 68, 20) = 6 THEN 'Street'   -- High Street
              ELSE (synth.street_kinds())[synth.zipf(synth.vt(postcode, 'street kind', seed), 12, 2)] END
$$;

-- an address line: house number (low numbers commoner), 12% flats (int
-- to text by a cast: int || text is only STABLE, and would stop inlining)
CREATE OR REPLACE FUNCTION synth.address_line(postcode text, key bigint, seed bigint)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN synth.v(key, 'flat', seed) < 0.12
              THEN 'Flat ' || (1 + floor(synth.v(key, 'flat number', seed) * 12))::int::text || ', ' ELSE '' END
         || (1 + floor(power(synth.v(key, 'house number', seed), 2) * 180))::int::text || ' '
         || synth.street(postcode, seed)
$$;

-- the usual abbreviations of a street kind (a layout, not an error); one
-- expression, so that it is inlined
CREATE OR REPLACE FUNCTION synth.abbreviate(line text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(left(line, length(line) - length(substring(line FROM ' ([A-Za-z]+)$')))
                  || ('{"Road": "Rd", "Street": "St", "Avenue": "Ave", "Lane": "Ln", "Close": "Cl", "Drive": "Dr",
                        "Crescent": "Cres", "Gardens": "Gdns", "Terrace": "Ter", "Grove": "Gr", "Place": "Pl"}'::jsonb
                      ->> substring(line FROM ' ([A-Za-z]+)$')), line)
$$;

-- an address line reduced to compare layouts: upper case, street kinds spelt out
CREATE OR REPLACE FUNCTION synth.address_key(line text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce((SELECT left(u, length(u) - length(a.short)) || a.long
                   FROM (VALUES ('ROAD', 'RD'), ('STREET', 'ST'), ('AVENUE', 'AVE'), ('LANE', 'LN'),
                                ('CLOSE', 'CL'), ('DRIVE', 'DR'), ('CRESCENT', 'CRES'), ('GARDENS', 'GDNS'),
                                ('TERRACE', 'TER'), ('GROVE', 'GR'), ('PLACE', 'PL')) a(long, short)
                   WHERE u LIKE '% ' || a.short), u)
  FROM (SELECT upper(line) AS u) x
$$;

-- a typing error at or after position lo: a letter replaced (35%), a
-- character dropped (25%), two adjacent characters swapped (25%) or a
-- letter doubled (15%); always different from s, ignoring case
CREATE OR REPLACE FUNCTION synth.typo(s text, lo int, id bigint, purpose text, seed bigint)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN k < 0.35 AND c ~ '[A-Za-z]'
      THEN overlay(s PLACING CASE WHEN c = upper(c) THEN upper(r) ELSE r END FROM p FOR 1)
    WHEN k >= 0.60 AND k < 0.85 AND p < length(s) AND lower(c) <> lower(substr(s, p + 1, 1))
      THEN overlay(s PLACING substr(s, p + 1, 1) || c FROM p FOR 2)
    WHEN k >= 0.85
      THEN overlay(s PLACING c || c FROM p FOR 1)
    ELSE overlay(s PLACING '' FROM p FOR 1)
  END
  FROM (SELECT k, p, substr(s, p, 1) AS c,
               chr(97 + (ascii(lower(substr(s, p, 1))) - 97 + 1 + floor(synth.v(id, purpose || ' letter', seed) * 25)::int) % 26) AS r
        FROM (SELECT synth.v(id, purpose || ' kind', seed) AS k,
                     least(length(s), lo + floor(synth.v(id, purpose || ' place', seed)
                                                 * greatest(1, length(s) - lo + 1))::int) AS p) y) x
$$;

-- a record's names and address as written, given the person's and the
-- record's draws: the errors (each labelled), before the source's layout
-- (OFFSET 0: each level computed once, not copied into the next)
CREATE OR REPLACE FUNCTION synth.record_names(given text, family text, birth_family text,
                                              true_address text, prev_address text, true_town text, prev_town text,
                                              moved boolean, old_registration boolean, rid bigint, seed bigint)
RETURNS TABLE (given_name text, family_name text, address_line text, town text, name_error_kinds text[])
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$   -- not STRICT: inlined into the query
  SELECT CASE WHEN swap THEN f2 ELSE g2 END, CASE WHEN swap THEN g2 ELSE f2 END, a2, t,
         array_remove(ARRAY[
           CASE WHEN nick THEN 'given_name_nickname' END,
           CASE WHEN gtypo THEN 'given_name_mistyped' END,
           CASE WHEN prev_family THEN 'family_name_previous' END,
           CASE WHEN ftypo THEN 'family_name_mistyped' END,
           CASE WHEN swap THEN 'names_swapped' END,
           CASE WHEN moved THEN 'address_moved' END,
           CASE WHEN atypo THEN 'address_mistyped' END], NULL)
  FROM (SELECT d.*, CASE WHEN gtypo THEN synth.typo(g1, 2, rid, 'given typo', seed) ELSE g1 END AS g2,
               CASE WHEN ftypo THEN synth.typo(f1, 2, rid, 'family typo', seed) ELSE f1 END AS f2,
               CASE WHEN atypo THEN synth.typo(a1, length(substring(a1 FROM '^[^A-Za-z]*(?:Flat [0-9]+, [0-9]+ )?')) + 2,
                                               rid, 'address typo', seed) ELSE a1 END AS a2
        FROM (SELECT c.*,
                     CASE WHEN nick THEN nicks[1 + floor(synth.v(rid, 'nickname pick', seed) * cardinality(nicks))::int]
                          ELSE given END AS g1,
                     CASE WHEN prev_family THEN birth_family ELSE family END AS f1,
                     CASE WHEN moved THEN prev_address ELSE true_address END AS a1,
                     CASE WHEN moved THEN prev_town ELSE true_town END AS t,
                     swap0 AND upper(given) <> upper(family) AS swap
              FROM (SELECT b.*, nicks IS NOT NULL AND synth.v(rid, 'nickname', seed) < 0.10 AS nick
                    FROM (SELECT synth.nicknames(given) AS nicks,
                           family <> birth_family
                             AND synth.v(rid, 'previous family name', seed) < CASE WHEN old_registration THEN 0.6 ELSE 0.25 END AS prev_family,
                           synth.v(rid, 'given typo', seed) < 0.01 AS gtypo,
                           synth.v(rid, 'family typo', seed) < 0.015 AS ftypo,
                           synth.v(rid, 'swap', seed) < 0.005 AS swap0,
                           synth.v(rid, 'address typo', seed) < 0.01 AS atypo OFFSET 0) b) c OFFSET 0) d OFFSET 0) e
$$;

-- (before issue 25, generate took (n_people, seed) only: drop that one, or a
-- call with two arguments would be ambiguous)
DROP FUNCTION IF EXISTS synth.generate(int, bigint);

-- n people and their records; optionally a share twins of the households
-- of two made twin pairs and a share households made same-household pairs
-- (see README.md); twins = households = 0 gives the population of before
CREATE OR REPLACE FUNCTION synth.generate(n_people int, seed bigint DEFAULT 42,
                                          twins double precision DEFAULT 0,
                                          households double precision DEFAULT 0)
RETURNS TABLE (item text, value bigint)
LANGUAGE plpgsql AS $gen$
DECLARE
  ref constant date := '2026-01-01';
  blocks int := ceil(n_people / 900000.0)::int;
  pool_per_area bigint := greatest(1, n_people / 30 / 40);
  practices_per_area int := greatest(1, n_people / 8000 / 40);
BEGIN
  IF n_people < 1 THEN
    RAISE EXCEPTION 'n_people must be positive';
  END IF;
  IF twins IS NULL OR households IS NULL OR twins < 0 OR households < 0 OR twins + households > 1 THEN
    RAISE EXCEPTION 'twins and households must be shares of households, together at most 1';
  END IF;
  DROP TABLE IF EXISTS synth.gp_registration, synth.hospital_episode, synth.objection_sample,
                       synth_truth.person, synth_truth.record, synth_truth.twin, synth_truth.same_household;

  -- people: NHS numbers from 999 xxx xxxx (then 998, 997...: unallocated),
  -- scrambled, unique; households of about two share a postcode and practice
  CREATE TABLE synth_truth.person AS
  WITH cand AS (
    -- walk each block of a million bases in a scrambled order
    -- (i -> 100003 i + offset mod 10^6 is a bijection), only as far as needed
    SELECT i, (999 - i / 1000000) * 1000000::bigint
              + (100003 * (i % 1000000) + abs(seed) % 1000000) % 1000000 AS base
    FROM generate_series(0, least(blocks * 1000000::bigint, ceil(n_people * 1.15)::bigint + 1000) - 1) i
  ), valid AS (
    SELECT base * 10 + synth.check_digit(base) AS nhs,
           row_number() OVER (ORDER BY i) AS person_id
    FROM cand
    WHERE synth.check_digit(base) >= 0 AND base * 10 + synth.check_digit(base) <> 9999999999
  ), p AS (
    SELECT person_id, nhs::text AS nhs_number, (person_id - 1) / 2 AS household,
           synth.u(person_id, 10, seed) AS ua, synth.u(person_id, 11, seed) AS ub,
           synth.u(person_id, 12, seed) AS us
    FROM valid WHERE person_id <= n_people
  ), h AS (
    SELECT p.*, 1 + floor(synth.u(household, 20, seed) * 40)::int AS area_idx,
           floor(synth.u(household, 21, seed) * pool_per_area)::bigint AS code_idx,
           -- ages: 0-64 evenly (78%), then thinning to 100
           CASE WHEN ua < 0.78 THEN ub * 65 ELSE 65 + 35 * (1 - sqrt(1 - ub)) END AS age
    FROM p
  )
  SELECT person_id, nhs_number,
         greatest(date '1895-01-01',
                  ref - (age * 365.25)::int - floor(synth.u(person_id, 13, seed) * 365)::int) AS dob,
         CASE WHEN us < 0.0005 THEN '9' WHEN us < 0.4945 THEN '1' ELSE '2' END AS sex,
         synth.postcode((synth.areas())[area_idx], area_idx * 1000000 + code_idx, seed) AS postcode,
         synth.postcode(CASE WHEN synth.u(person_id, 14, seed) < 0.7 THEN (synth.areas())[area_idx]
                             ELSE (synth.areas())[1 + floor(synth.u(person_id, 15, seed) * 40)::int] END,
                        50000000 + person_id, seed) AS prev_postcode,
         chr(65 + area_idx % 26) || lpad((area_idx * 100 + floor(synth.u(household, 22, seed)
                                          * practices_per_area)::int)::text, 5, '0') AS gp_practice,
         area_idx
  FROM h;
  IF (SELECT count(*) FROM synth_truth.person) < n_people THEN
    RAISE EXCEPTION 'could not draw % valid NHS numbers', n_people;  -- cannot happen: 90.9%% of bases are valid
  END IF;

  -- twins and same-household pairs, only when asked for: one draw per
  -- household of two (persons 2h + 1 and 2h + 2) decides.  A twin is born
  -- the same day as the other and moved with them; both have the
  -- household's family name.  A same-household pair shares the family
  -- name, not the date of birth.
  CREATE TABLE synth_truth.twin (person_a bigint PRIMARY KEY, person_b bigint NOT NULL UNIQUE);
  CREATE TABLE synth_truth.same_household (person_a bigint PRIMARY KEY, person_b bigint NOT NULL UNIQUE);
  IF twins > 0 OR households > 0 THEN
    INSERT INTO synth_truth.twin
    SELECT person_id, person_id + 1 FROM synth_truth.person
    WHERE person_id % 2 = 1 AND person_id < n_people AND synth.v((person_id - 1) / 2, 'pair', seed) < twins;
    UPDATE synth_truth.person b SET dob = a.dob, prev_postcode = a.prev_postcode
    FROM synth_truth.twin t JOIN synth_truth.person a ON a.person_id = t.person_a
    WHERE b.person_id = t.person_b;
    INSERT INTO synth_truth.same_household
    SELECT a.person_id, b.person_id
    FROM synth_truth.person a JOIN synth_truth.person b ON b.person_id = a.person_id + 1
    WHERE a.person_id % 2 = 1 AND a.dob <> b.dob
      AND synth.v((a.person_id - 1) / 2, 'pair', seed) >= twins
      AND synth.v((a.person_id - 1) / 2, 'pair', seed) < twins + households;
  END IF;

  -- names and addresses (new columns, after the others).  Given names by
  -- sex and birth cohort (15% from the other cohort's list, twins alike;
  -- twins never share a given name); 45% of women
  -- of 20 or more took another family name (married), 60% in a
  -- same-household pair, where the others were born with the household's
  -- name; households of two share the address; the address before the last
  -- move is on prev_postcode's street
  CREATE TABLE synth_truth.person_named AS
  WITH p AS (
    SELECT p.*, (p.person_id - 1) / 2 AS household,
           CASE WHEN t.person_a IS NOT NULL THEN 'twin' WHEN s.person_a IS NOT NULL THEN 'household' END AS pair,
           CASE WHEN p.sex = '1' OR (p.sex = '9' AND synth.v(p.person_id, 'name sex', seed) < 0.5) THEN 0 ELSE 2 END
           + CASE WHEN (p.dob < date '1975-01-01')   -- twins share the draw
                       <> (synth.v(CASE WHEN t.person_a IS NOT NULL THEN -1 - (p.person_id - 1) / 2 ELSE p.person_id END,
                                   'name cohort', seed) < 0.15)
                  THEN 1 ELSE 2 END AS list
    FROM synth_truth.person p
    LEFT JOIN synth_truth.twin t ON t.person_a = (p.person_id - 1) / 2 * 2 + 1
    LEFT JOIN synth_truth.same_household s ON s.person_a = (p.person_id - 1) / 2 * 2 + 1
  ), q AS MATERIALIZED (   -- (plain columns as arguments, so that the helpers are inlined)
    SELECT p.*, cardinality(synth.given_names(list)) AS n_given,
           n_people + CASE WHEN pair = 'twin' THEN household * 2 + 1 ELSE person_id END AS prev_key
    FROM p
  ), g AS (
    SELECT q.*, synth.zipf(synth.v(person_id, 'given name', seed), n_given, 8) AS gi,
           (synth.family_names())[synth.zipf(synth.v(person_id, 'family name', seed), cardinality(synth.family_names()), 25)] AS own_family,
           (synth.family_names())[synth.zipf(synth.v(household, 'household family name', seed), cardinality(synth.family_names()), 25)] AS household_family,
           (synth.family_names())[synth.zipf(synth.v(person_id, 'married family name', seed), cardinality(synth.family_names()), 25)] AS married_family,
           sex = '2' AND dob <= ref - interval '20 years' AND coalesce(pair, '') <> 'twin'
             AND synth.v(person_id, 'married', seed) < CASE WHEN pair = 'household' THEN 0.6 ELSE 0.45 END AS married
    FROM q
  ), g2 AS (   -- (the name, not the list, through the sort)
    SELECT g.*, (synth.given_names(list))[gi] AS given0,
           lag((synth.given_names(list))[gi]) OVER (ORDER BY person_id) AS prev_given
    FROM g
  )
  SELECT person_id, nhs_number, dob, sex, postcode, prev_postcode, gp_practice, area_idx,
         CASE WHEN pair = 'twin' AND person_id % 2 = 0 AND given0 = prev_given   -- twins differ
              THEN (synth.given_names(list))[1 + (gi + floor(synth.v(person_id, 'twin given name', seed) * (n_given - 1))::int)
                                             % n_given]
              ELSE given0 END AS given_name,
         CASE WHEN pair IS NOT NULL THEN household_family WHEN married THEN married_family ELSE own_family END AS family_name,
         CASE WHEN pair = 'household' AND married THEN own_family WHEN pair IS NOT NULL THEN household_family
              ELSE own_family END AS birth_family_name,
         synth.address_line(postcode, household, seed) AS address_line,
         synth.town(postcode) AS town,
         synth.address_line(prev_postcode, prev_key, seed) AS prev_address_line,
         synth.town(prev_postcode) AS prev_town
  FROM g2;
  DROP TABLE synth_truth.person;
  ALTER TABLE synth_truth.person_named RENAME TO person;
  ALTER TABLE synth_truth.person ADD PRIMARY KEY (person_id);

  -- GP registrations: one per person, and an earlier one for 4% (a move)
  CREATE TABLE synth_truth.gp_raw AS
  SELECT row_number() OVER (ORDER BY p.person_id, r.k) AS record_id, p.*, r.k
  FROM synth_truth.person p
  CROSS JOIN LATERAL (SELECT 1 AS k UNION ALL SELECT 2 WHERE synth.u(p.person_id, 30, seed) < 0.04) r;

  -- hospital episodes: more for infants and the old
  CREATE TABLE synth_truth.hes_raw AS
  WITH e AS (
    SELECT p.*, (ref - p.dob) / 365.25 AS age,
           round(-CASE WHEN (ref - p.dob) / 365.25 < 1 THEN 2.0
                       WHEN (ref - p.dob) / 365.25 < 60 THEN 1.2
                       ELSE 1.2 + ((ref - p.dob) / 365.25 - 60) * 0.08 END
                 * ln(1 - synth.u(p.person_id, 40, seed)))::int AS n_episodes
    FROM synth_truth.person p
  )
  SELECT row_number() OVER (ORDER BY e.person_id, j) AS record_id, e.*, j
  FROM e, generate_series(1, e.n_episodes) j;

  -- sources with their errors; error kinds kept for the truth table
  CREATE TABLE synth_truth.record (source text, record_id bigint, person_id bigint, error_kinds text[],
                                   name_error_kinds text[], PRIMARY KEY (source, record_id));

  CREATE TABLE synth.gp_registration AS
  WITH r AS (
    SELECT g.*, g.record_id * 2 AS rid, e.*   -- even ids for GP, odd for HES: independent draws
    FROM synth_truth.gp_raw g, synth.record_errors(g.record_id * 2, seed) e
  ), x AS (
    SELECT r.*,
           synth.nhs_as_recorded(r.nhs_number, r.person_id, n_people, rid, seed, nhs_missing, nhs_other, nhs_typo) AS nhs_out,
           CASE WHEN dob_wrong THEN synth.wrong_dob(r.dob, rid, seed) ELSE r.dob END AS dob_out,
           CASE WHEN moved OR k = 2 THEN r.prev_postcode ELSE r.postcode END AS pc_out,
           nm.given_name AS given_out, nm.family_name AS family_out, nm.address_line AS address_out,
           nm.town AS town_out, nm.name_error_kinds
    FROM r, synth.record_names(r.given_name, r.family_name, r.birth_family_name, r.address_line, r.prev_address_line,
                               r.town, r.prev_town, moved OR k = 2, k = 2, rid, seed) nm
  )
  SELECT record_id,
         CASE WHEN k = 2   -- the practice before the move
              THEN chr(65 + floor(synth.u(rid, 88, seed) * 26)::int) || lpad(floor(synth.u(rid, 89, seed) * 99999)::int::text, 5, '0')
              ELSE gp_practice END AS practice_code,
         (ref - 30 - floor(synth.u(rid, 56, seed) * 3650)::int - CASE WHEN k = 2 THEN 3650 ELSE 0 END) AS registered_on,
         CASE WHEN nhs_out IS NULL THEN CASE WHEN synth.u(rid, 57, seed) < 0.8 THEN NULL
                                             WHEN synth.u(rid, 57, seed) < 0.9 THEN '' ELSE '   ' END
              WHEN synth.u(rid, 58, seed) < 0.15 THEN substr(nhs_out, 1, 3) || ' ' || substr(nhs_out, 4, 3) || ' ' || substr(nhs_out, 7)
              ELSE nhs_out END AS nhs_number,
         to_char(dob_out, 'DD/MM/YYYY') AS dob,
         CASE WHEN sex_unknown THEN 'U'
              WHEN sex = '9' THEN 'I'
              WHEN synth.u(rid, 59, seed) < 0.03 THEN CASE sex WHEN '1' THEN 'Male' ELSE 'Female' END
              ELSE CASE sex WHEN '1' THEN 'M' ELSE 'F' END END AS sex,
         CASE WHEN synth.u(rid, 60, seed) < 0.4 THEN lower(replace(pc_out, ' ', ''))
              WHEN synth.u(rid, 60, seed) < 0.7 THEN replace(pc_out, ' ', '')
              ELSE pc_out END AS postcode,
         -- names in title case, 10% in capitals; addresses 25% abbreviated, 10% in capitals
         CASE WHEN synth.v(rid, 'gp name case', seed) < 0.1 THEN upper(given_out) ELSE given_out END AS given_name,
         CASE WHEN synth.v(rid, 'gp name case', seed) < 0.1 THEN upper(family_out) ELSE family_out END AS family_name,
         CASE WHEN synth.v(rid, 'gp address case', seed) < 0.1 THEN upper(a) ELSE a END AS address_line,
         CASE WHEN synth.v(rid, 'gp address case', seed) < 0.1 THEN upper(town_out) ELSE town_out END AS town,
         person_id,
         synth.error_kinds(nhs_missing, nhs_other, nhs_typo, dob_wrong, moved OR k = 2, sex_unknown) AS error_kinds,
         name_error_kinds
  FROM x, LATERAL (SELECT CASE WHEN synth.v(rid, 'gp address abbreviation', seed) < 0.25
                               THEN synth.abbreviate(address_out) ELSE address_out END AS a) ab;

  INSERT INTO synth_truth.record
  SELECT 'gp', record_id, person_id, error_kinds, name_error_kinds FROM synth.gp_registration;
  ALTER TABLE synth.gp_registration DROP COLUMN person_id, DROP COLUMN error_kinds, DROP COLUMN name_error_kinds;
  ALTER TABLE synth.gp_registration ADD PRIMARY KEY (record_id);

  CREATE TABLE synth.hospital_episode AS
  WITH r AS (
    SELECT h.*, h.record_id * 2 + 1 AS rid, e.*,
           greatest(date '2019-01-01', h.dob) + floor(synth.u(h.record_id * 2 + 1, 61, seed)
             * (ref - greatest(date '2019-01-01', h.dob)))::int AS admitted
    FROM synth_truth.hes_raw h, synth.record_errors(h.record_id * 2 + 1, seed) e
  ), x AS (
    SELECT r.*,
           synth.nhs_as_recorded(r.nhs_number, r.person_id, n_people, rid, seed, nhs_missing, nhs_other, nhs_typo) AS nhs_out,
           CASE WHEN dob_wrong THEN synth.wrong_dob(r.dob, rid, seed) ELSE r.dob END AS dob_out,
           CASE WHEN moved THEN r.prev_postcode ELSE r.postcode END AS pc_out,
           (admitted - r.dob) / 365.25 AS age_then,
           synth.u(rid, 62, seed) AS us,
           CASE WHEN synth.u(rid, 63, seed) < 0.85 THEN (synth.providers())[1 + (area_idx - 1) % 30]
                ELSE (synth.providers())[1 + floor(synth.u(rid, 64, seed) * 30)::int] END AS provider,
           nm.given_name AS given_out, nm.family_name AS family_out, nm.address_line AS address_out,
           nm.town AS town_out, nm.name_error_kinds
    FROM r, synth.record_names(r.given_name, r.family_name, r.birth_family_name, r.address_line, r.prev_address_line,
                               r.town, r.prev_town, moved, false, rid, seed) nm
  )
  SELECT record_id,
         provider AS provider_code,
         admitted AS admission_date,
         CASE WHEN age_then < 16 AND us < 0.6 THEN '420'
              WHEN sex = '2' AND age_then BETWEEN 16 AND 50 AND us < 0.25 THEN (ARRAY['501', '502'])[1 + floor(synth.u(rid, 65, seed) * 2)::int]
              ELSE (ARRAY['100','101','110','120','130','150','300','301','320','330','340','400','430','800'])
                   [1 + floor(synth.u(rid, 66, seed) * 14)::int] END AS specialty,
         CASE WHEN synth.u(rid, 67, seed) < 0.4 THEN 0
              ELSE least(120, 1 + floor(-4 * ln(1 - synth.u(rid, 68, seed)) * (1 + age_then / 50)))::int END AS length_of_stay,
         -- two planted outliers for the funnel plots: RXN and RK9 have twice the 30-day mortality
         synth.u(rid, 69, seed) < (0.003 + 0.12 * power(greatest(0, age_then - 50) / 50, 2))
                                  * CASE WHEN provider IN ('RXN', 'RK9') THEN 2 ELSE 1 END AS died_30d,
         synth.u(rid, 70, seed) < CASE WHEN age_then >= 65 THEN 0.13 ELSE 0.08 END AS readmitted_30d,
         CASE WHEN nhs_out IS NULL THEN CASE WHEN synth.u(rid, 57, seed) < 0.9 THEN NULL ELSE '' END
              ELSE nhs_out END AS nhs_number,
         to_char(dob_out, 'YYYY-MM-DD') AS dob,
         CASE WHEN sex_unknown THEN '0' ELSE sex END AS sex,
         CASE WHEN synth.u(rid, 60, seed) < 0.15 THEN replace(pc_out, ' ', '') ELSE pc_out END AS postcode,
         -- names 70% in capitals; addresses 10% abbreviated, 70% in capitals
         CASE WHEN synth.v(rid, 'hes name case', seed) < 0.7 THEN upper(given_out) ELSE given_out END AS given_name,
         CASE WHEN synth.v(rid, 'hes name case', seed) < 0.7 THEN upper(family_out) ELSE family_out END AS family_name,
         CASE WHEN synth.v(rid, 'hes address case', seed) < 0.7 THEN upper(a) ELSE a END AS address_line,
         CASE WHEN synth.v(rid, 'hes address case', seed) < 0.7 THEN upper(town_out) ELSE town_out END AS town,
         person_id,
         synth.error_kinds(nhs_missing, nhs_other, nhs_typo, dob_wrong, moved, sex_unknown) AS error_kinds,
         name_error_kinds
  FROM x, LATERAL (SELECT CASE WHEN synth.v(rid, 'hes address abbreviation', seed) < 0.1
                               THEN synth.abbreviate(address_out) ELSE address_out END AS a) ab;

  INSERT INTO synth_truth.record
  SELECT 'hes', record_id, person_id, error_kinds, name_error_kinds FROM synth.hospital_episode;
  ALTER TABLE synth.hospital_episode DROP COLUMN person_id, DROP COLUMN error_kinds, DROP COLUMN name_error_kinds;
  ALTER TABLE synth.hospital_episode ADD PRIMARY KEY (record_id);
  DROP TABLE synth_truth.gp_raw, synth_truth.hes_raw;
  ALTER TABLE synth_truth.person DROP COLUMN area_idx;

  -- objections: ~5% National Data Opt-out, ~3% Type 1, independently
  CREATE TABLE synth.objection_sample AS
  SELECT nhs_number, kind,
         timestamptz '2018-05-25' + synth.u(person_id, s, seed) * (timestamptz '2025-12-31' - timestamptz '2018-05-25') AS recorded_at
  FROM synth_truth.person,
       (VALUES ('national_data_opt_out', 90, 0.05), ('type1', 91, 0.03)) k(kind, s, rate)
  WHERE synth.u(person_id, s + 10, seed) < rate;

  ANALYZE synth_truth.person; ANALYZE synth_truth.record; ANALYZE synth_truth.twin; ANALYZE synth_truth.same_household;
  ANALYZE synth.gp_registration; ANALYZE synth.hospital_episode; ANALYZE synth.objection_sample;

  RETURN QUERY
  SELECT 'people', count(*) FROM synth_truth.person
  UNION ALL SELECT 'gp_registration records', count(*) FROM synth.gp_registration
  UNION ALL SELECT 'hospital_episode records', count(*) FROM synth.hospital_episode
  UNION ALL SELECT 'objection_sample rows', count(*) FROM synth.objection_sample
  UNION ALL SELECT 'error: ' || k, count(*) FROM synth_truth.record, unnest(error_kinds) k GROUP BY k
  UNION ALL SELECT 'name or address error: ' || k, count(*) FROM synth_truth.record, unnest(name_error_kinds) k GROUP BY k
  UNION ALL SELECT 'twin pairs', count(*) FROM synth_truth.twin HAVING twins > 0
  UNION ALL SELECT 'same-household pairs', count(*) FROM synth_truth.same_household HAVING households > 0;
END
$gen$;
