-- src/linkage/tables.sql
-- The linkage catalog and results (docs/linkage.md): sources, standardised
-- records, models (versioned, editable), runs, links and the person index.
-- They hold real identifiers: only caredata_linker and caredata_admin may
-- read or write them; PUBLIC (analysts, recipients, patients) has nothing.

-- linkage projects: each has its own sources, models, runs, links,
-- standardised records and person index; 'default' (what calls that name
-- no project use) exists from the install.  link_record and person_index
-- are partitioned by project, one partition each (link_create_project()).
CREATE TABLE caredata.link_project (
  project      text PRIMARY KEY
               CHECK (project ~ '^[a-z][a-z0-9_]{0,62}$'),
  created_at   timestamptz NOT NULL DEFAULT now(),
  created_by   name NOT NULL DEFAULT current_user,
  description  text
);
COMMENT ON TABLE caredata.link_project IS
  'linkage projects: each holds its own sources, models, runs, links, standardised records and person index (link_create_project, link_drop_project)';
INSERT INTO caredata.link_project (project, description) VALUES ('default', 'the project of calls that name none');

CREATE TABLE caredata.link_source (
  source      text NOT NULL
              CHECK (source ~ '^[a-z][a-z0-9_]{0,62}$'),
  relation    regclass NOT NULL,
  record_id   name NOT NULL,
  nhs_number  name,
  dob         name,
  sex         name,
  postcode    name,
  added_at    timestamptz NOT NULL DEFAULT now(),
  added_by    name NOT NULL DEFAULT current_user,
  fields      jsonb NOT NULL DEFAULT '{}',
  project     text NOT NULL DEFAULT 'default' REFERENCES caredata.link_project,
  CONSTRAINT link_source_pkey PRIMARY KEY (project, source)
);
COMMENT ON TABLE caredata.link_source IS
  'linkage sources: a relation, which of its columns hold the record id (integer or text) and the NHS identifiers, and the further fields it brings ({"field": {"column": ..., "kind": name|address|postcode|identifier|text}}) (link_add_source)';

-- record ids that outlive runs: a record keeps its rid, so person ids stay put
-- The internal text keys (source names, record ids as text, postcodes and
-- sex codes) are compared bytewise (COLLATE "C"): only equality and index
-- order matter, and a linguistic collation sorted them at half the speed
-- (the person index's and the lookups' index builds at 1M people)
CREATE TABLE caredata.link_record_key (
  rid         bigint PRIMARY KEY,
  source      text COLLATE "C" NOT NULL,
  record_id   bigint,
  first_run   bigint NOT NULL,
  record_key  text COLLATE "C" NOT NULL,
  project     text NOT NULL DEFAULT 'default' REFERENCES caredata.link_project,
  UNIQUE (project, source, record_key)
);
COMMENT ON TABLE caredata.link_record_key IS
  'a stable internal id (rid) per (project, source, record_key), numbered in order of first sight across projects; never reused (record_key is the record id as text; record_id the same id when it is an integer)';

-- rebuilt by every run from the sources (standardised identifiers, value
-- frequencies for term-frequency adjustment, blocking keys); one partition
-- per project, each with its own indexes, so that a run truncates and
-- re-indexes its project's records only
CREATE TABLE caredata.link_record (
  project        text NOT NULL DEFAULT 'default',
  rid            bigint NOT NULL,
  source         text COLLATE "C" NOT NULL,
  record_id      bigint,
  nhs_digits     bigint,
  nhs_head       integer,
  nhs_tail       integer,
  dob            date,
  sex            text COLLATE "C",
  postcode       text COLLATE "C",
  sector         text COLLATE "C",
  district       text COLLATE "C",
  area           text COLLATE "C",
  yob            integer,
  tf_nhs_digits  double precision,
  tf_dob         double precision,
  tf_postcode    double precision,
  record_key     text COLLATE "C" NOT NULL,
  fields         jsonb
) PARTITION BY LIST (project);
CREATE TABLE caredata.link_record_p_default PARTITION OF caredata.link_record (PRIMARY KEY (rid)) FOR VALUES IN ('default');
COMMENT ON TABLE caredata.link_record_p_default IS 'partition of caredata.link_record holding linkage project default';
COMMENT ON TABLE caredata.link_record IS
  'standardised records of each project''s last run (a partition per project): NHS number digits (valid or not) and their first six (nhs_head) and last four (nhs_tail), date of birth, sex code, postcode (canonical when it is a UK postcode, else as text) and its UK parts, value frequencies (tf_*), the record id as text (record_key; record_id when it is an integer) and the standardised further fields with their derived codes and value frequencies (fields)';

CREATE TABLE caredata.link_model (
  model       text NOT NULL CHECK (model ~ '^[a-z][a-z0-9_]{0,62}$'),
  version     integer NOT NULL CHECK (version > 0),
  spec        jsonb NOT NULL,
  lambda      double precision CHECK (lambda > 0 AND lambda < 1),
  trained_at  timestamptz,
  trained_by  name,
  training    jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  project     text NOT NULL DEFAULT 'default' REFERENCES caredata.link_project,
  CONSTRAINT link_model_pkey PRIMARY KEY (project, model, version)
);
COMMENT ON TABLE caredata.link_model IS
  'linkage models, one row per version: the spec (comparisons, blocking rules, deterministic steps), lambda (the probability that two records drawn at random are one person) and how it was trained';

CREATE TABLE caredata.link_model_level (
  model       text NOT NULL,
  version     integer NOT NULL,
  comparison  text NOT NULL,
  position    integer NOT NULL,
  level       integer NOT NULL,
  label       text NOT NULL,
  m           double precision CHECK (m > 0 AND m <= 1),
  u           double precision CHECK (u > 0 AND u <= 1),
  project     text NOT NULL DEFAULT 'default',
  CONSTRAINT link_model_level_pkey PRIMARY KEY (project, model, version, comparison, level),
  FOREIGN KEY (project, model, version) REFERENCES caredata.link_model ON DELETE CASCADE
);
COMMENT ON TABLE caredata.link_model_level IS
  'm and u per comparison level of each model version (editable by hand; a run with train => false uses them as they are)';

CREATE TABLE caredata.link_run (
  run_id       bigint PRIMARY KEY,
  model        text NOT NULL,
  version      integer NOT NULL,
  method       text NOT NULL CHECK (method IN ('probabilistic', 'deterministic')),
  incremental  boolean NOT NULL,
  one_to_one   boolean NOT NULL,
  threshold    double precision,
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz,
  run_by       name NOT NULL DEFAULT current_user,
  stats        jsonb,
  project      text NOT NULL DEFAULT 'default',
  FOREIGN KEY (project, model, version) REFERENCES caredata.link_model
);
COMMENT ON TABLE caredata.link_run IS
  'linkage runs: the model version, method and threshold used, and counts and times per phase (stats)';

-- no primary key and no foreign key: a run writes millions of links, and
-- checking each row against link_run and a unique index took four times
-- as long as writing it.  Pairs are unique by construction (each blocking
-- rule skips the pairs of the rules before it); run_id grows with every
-- run, so a BRIN index finds one run's links for next to nothing.
CREATE TABLE caredata.link_pair (
  run_id       bigint NOT NULL,
  rid_l        bigint NOT NULL,
  rid_r        bigint NOT NULL,
  pattern      integer NOT NULL,
  weight       double precision,
  probability  double precision,
  step         smallint
);
CREATE INDEX link_pair_run_idx ON caredata.link_pair USING brin (run_id);
COMMENT ON TABLE caredata.link_pair IS
  'accepted links of each run (rid_l < rid_r, one row per pair and run): comparison pattern, match weight and probability (probabilistic) or the step that made the link (deterministic); delete old runs'' rows with DELETE ... WHERE run_id < n';

-- one partition per project; the keys are the partition's (its primary key
-- (record_key, source) is the project's (project, source, record_key); the
-- record key first, whose values tell rows apart, so that building it sorts
-- on the key's first bytes: 0.6 s against 1.45 s at a million people, the
-- source first): a run drops and builds its own partition's indexes only
CREATE TABLE caredata.person_index (
  project     text NOT NULL DEFAULT 'default',
  source      text COLLATE "C" NOT NULL,
  record_id   bigint,
  rid         bigint NOT NULL,
  person_id   bigint NOT NULL,
  run_id      bigint NOT NULL,
  record_key  text COLLATE "C" NOT NULL
) PARTITION BY LIST (project);
CREATE TABLE caredata.person_index_p_default PARTITION OF caredata.person_index
  (PRIMARY KEY (record_key, source), UNIQUE (rid)) FOR VALUES IN ('default');
CREATE INDEX person_index_p_default_person_id_idx ON caredata.person_index_p_default (person_id);
-- integer record ids, as sources join them (record_key is the key)
CREATE INDEX person_index_p_default_record_id_source_idx ON caredata.person_index_p_default (record_id, source);
COMMENT ON TABLE caredata.person_index_p_default IS 'partition of caredata.person_index holding linkage project default';
COMMENT ON TABLE caredata.person_index IS
  'the person index of each project (a partition per project): (project, source, record_key) -> person_id, stable across runs (link_run keeps ids, records merges and splits in person_event); record_key is the record id as text, record_id the same id when the source''s id is an integer (NULL for text ids)';

CREATE TABLE caredata.person_event (
  run_id           bigint NOT NULL REFERENCES caredata.link_run ON DELETE CASCADE,
  kind             text NOT NULL CHECK (kind IN ('merge', 'split')),
  person_id        bigint NOT NULL,
  other_person_id  bigint NOT NULL,
  records          bigint NOT NULL
);
COMMENT ON TABLE caredata.person_event IS
  'changes of identity between runs: merge (other_person_id''s records joined person_id, which survives) and split (records of person_id moved to the new other_person_id)';

DO $grants$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['link_source', 'link_record_key', 'link_record', 'link_model',
                           'link_model_level', 'link_run', 'link_pair', 'person_index', 'person_event',
                           'link_project', 'link_record_p_default', 'person_index_p_default']
  LOOP
    EXECUTE format('REVOKE ALL ON caredata.%I FROM PUBLIC', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON caredata.%I TO caredata_linker, caredata_admin', t);
    -- the project tables are registered last (src/linkage/projects_dump.sql)
    IF NOT t = ANY (ARRAY['link_record', 'person_index', 'link_project', 'link_record_p_default', 'person_index_p_default']) THEN
      EXECUTE format('SELECT pg_catalog.pg_extension_config_dump(%L, %L)', 'caredata.' || t, '');
    END IF;
  END LOOP;
END
$grants$;
