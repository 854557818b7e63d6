-- test/citus/reset.sql: a clean caredata on the Citus coordinator for one
-- suite.  The suites' publications and tables go first: dropping the extension with CASCADE
-- would drop their nhs_number columns under Citus's feet, which leaves its
-- metadata cache pointing at a type that is gone.
SET client_min_messages = warning;
-- publications first: caredata refuses to drop a published source
DO $$
BEGIN
  IF to_regclass('caredata.publication') IS NOT NULL THEN
    PERFORM caredata.unpublish(name) FROM caredata.publication;
  END IF;
END $$;
DROP TABLE IF EXISTS citus_ep, citus_dist, citus_ref, citus_local, citus_later, rtest, citus_agg, citus_agg_local, citus_units, citus_units_local, at_t, citus_gp, citus_hes, citus_pub, citus_pub_local, episodes, citus_gone, "citus'q", citus_feed_patient, citus_snap1, citus_snap2, citus_gp_extract CASCADE;
DROP SCHEMA IF EXISTS synth, synth_truth CASCADE;
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['citus_analyst', 'citus_patient', 'citus_reader', 'citus_recipient', 'quick_analyst'] LOOP
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('DROP OWNED BY %I', r);
      EXECUTE format('DROP ROLE %I', r);
    END IF;
  END LOOP;
END $$;
DROP EXTENSION IF EXISTS caredata CASCADE;
CREATE EXTENSION caredata;
