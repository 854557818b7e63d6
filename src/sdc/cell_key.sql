-- src/sdc/cell_key.sql
-- The cell key method (src/sdc/cell_key.c, docs/disclosure-control.md): a
-- count of people is published as the true count plus a perturbation looked
-- up in a p-table by (true count, cell key), the cell key being the sum of
-- the people's record keys modulo 256.  The p-table is data: caredata_admin
-- adds one (audited) and points a new version of a policy at it.

CREATE TABLE caredata.sdc_ptable (
  ptable        text NOT NULL CHECK (ptable ~ '^[a-z][a-z0-9_]{0,62}$'),
  count_value   integer NOT NULL CHECK (count_value BETWEEN 0 AND 1000),
  key_min       integer NOT NULL CHECK (key_min BETWEEN 0 AND 255),
  key_max       integer NOT NULL CHECK (key_max BETWEEN 0 AND 255),
  perturbation  integer NOT NULL CHECK (perturbation BETWEEN -1000 AND 1000),
  builtin       boolean NOT NULL DEFAULT false,
  PRIMARY KEY (ptable, count_value, key_min),
  CHECK (key_min <= key_max),
  CHECK (count_value + perturbation >= 0)
);
COMMENT ON TABLE caredata.sdc_ptable IS
  'p-tables of the cell key method: a true count of count_value people (and every larger count up to the next row) whose cell key lies in key_min..key_max is published as count_value plus perturbation; every count listed must cover the cell keys 0..255 exactly once';

-- 'default': zero-mean in every row; counts of 5 and more move by -2..+2
-- with probabilities 1/16, 4/16, 6/16, 4/16, 1/16 (variance 1); 1 to 4 are
-- mapped so that 1 and 2 never appear (variances 3, 2.5, 1.625, 0.75);
-- 0 stays 0
INSERT INTO caredata.sdc_ptable (ptable, count_value, key_min, key_max, perturbation, builtin) VALUES
  ('default', 0, 0, 255, 0, true),
  ('default', 1, 0, 191, -1, true), ('default', 1, 192, 255, 3, true),
  ('default', 2, 0, 95, -2, true), ('default', 2, 96, 223, 1, true), ('default', 2, 224, 255, 2, true),
  ('default', 3, 0, 31, -3, true), ('default', 3, 32, 175, 0, true), ('default', 3, 176, 239, 1, true),
  ('default', 3, 240, 255, 2, true),
  ('default', 4, 0, 79, -1, true), ('default', 4, 80, 191, 0, true), ('default', 4, 192, 239, 1, true),
  ('default', 4, 240, 255, 2, true),
  ('default', 5, 0, 15, -2, true), ('default', 5, 16, 79, -1, true), ('default', 5, 80, 175, 0, true),
  ('default', 5, 176, 239, 1, true), ('default', 5, 240, 255, 2, true);

REVOKE ALL ON caredata.sdc_ptable FROM PUBLIC;
GRANT SELECT ON caredata.sdc_ptable TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON caredata.sdc_ptable TO caredata_admin;
-- admins' own p-tables survive pg_dump (src/sdc/cell_key_dump.sql, last)

-- every write to the p-tables is audited (which p-tables, how many rows)
CREATE FUNCTION caredata._sdc_ptable_audit() RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  names text;
  n bigint;
BEGIN
  -- on Citus the p-tables are reference tables: the trigger fires on every
  -- node's placement, and the coordinator's entry is the audit (issue 27)
  IF caredata._citus_worker() THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    SELECT string_agg(DISTINCT r.ptable, ','), count(*) INTO names, n FROM new_rows r;
  ELSIF TG_OP = 'UPDATE' THEN
    SELECT string_agg(DISTINCT r.ptable, ','), count(*) INTO names, n
      FROM (SELECT o.ptable FROM old_rows o UNION ALL SELECT w.ptable FROM new_rows w) r;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT string_agg(DISTINCT r.ptable, ','), count(*) INTO names, n FROM old_rows r;
  END IF;
  IF TG_OP = 'TRUNCATE' OR n OPERATOR(pg_catalog.>) 0 THEN
    PERFORM caredata.audit_append('sdc_ptable.' OPERATOR(pg_catalog.||) pg_catalog.lower(TG_OP),
                                  coalesce(names, 'every p-table'), pg_catalog.jsonb_build_object('rows', n));
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION caredata._sdc_ptable_audit() IS
  'internal: trigger auditing every write to caredata.sdc_ptable';
REVOKE ALL ON FUNCTION caredata._sdc_ptable_audit() FROM PUBLIC;
CREATE TRIGGER sdc_ptable_audit_insert AFTER INSERT ON caredata.sdc_ptable
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION caredata._sdc_ptable_audit();
CREATE TRIGGER sdc_ptable_audit_update AFTER UPDATE ON caredata.sdc_ptable
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION caredata._sdc_ptable_audit();
CREATE TRIGGER sdc_ptable_audit_delete AFTER DELETE ON caredata.sdc_ptable
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION caredata._sdc_ptable_audit();
CREATE TRIGGER sdc_ptable_audit_truncate AFTER TRUNCATE ON caredata.sdc_ptable
  FOR EACH STATEMENT EXECUTE FUNCTION caredata._sdc_ptable_audit();

-- the built-in policy: nothing suppressed, every count of people perturbed
INSERT INTO caredata.sdc_policy (policy, suppress_max, protect_zero, rounding, rounding_base, redacted, source, builtin, cell_key_ptable) VALUES
  ('cell_key', 0, false, 'none', 1, '*',
   'The cell key method: Australian Bureau of Statistics TableBuilder (Fraser and Wooton, "A proposed method for confidentialising tabular output to protect against differencing", 2005; Thompson, Broadfoot and Elazar, "Methodology for the automatic confidentialisation of statistical outputs from remote servers at the Australian Bureau of Statistics", 2013) and the Office for National Statistics, Census 2021 outputs ("Protecting personal data in Census 2021 results"); perturbations from p-table default (zero-mean, variance 1 from 5 people on; 1 and 2 never shown)', true, 'default');

-- Version 2 of cell_key protects magnitudes: the dominance rules of the
-- other built-in policies, and sums rounded at random to 3 significant
-- figures, the draw taken from the people's record keys (issue 24).
INSERT INTO caredata.sdc_policy (policy, version, suppress_max, protect_zero, rounding, rounding_base, redacted,
                                 dominance_n, dominance_k, p_percent, magnitude_digits, source, builtin, cell_key_ptable)
SELECT policy, 2, suppress_max, protect_zero, rounding, rounding_base, redacted, 2, 85, 10, 3,
       source || '; magnitudes (issue 24): (2, 85) dominance and p% = 10 (Hundepool et al., Statistical Disclosure Control, 2012, section 4.2), sums rounded at random (unbiased) to 3 significant figures by the people''s record keys',
       true, cell_key_ptable
  FROM caredata.sdc_policy WHERE policy = 'cell_key' AND version = 1;

-- Version 3 of nhs_hes and opensafely keys their rules, so that padding a
-- query with made-up people does not find where a count steps (issue 24):
-- a count of people is perturbed by p-table default first (variance 1 from
-- 5 people on), then suppressed (1 .. 7) and rounded to 5 as before; sums
-- are rounded at random to 3 significant figures by the people's record
-- keys.  Numbers given without their people (sdc_apply, sdc_protect,
-- funnel) keep version 2's rule.  opensafely_midpoint6, which suppresses
-- nothing, stays at version 2: a perturbed 1 would show as 0.
INSERT INTO caredata.sdc_policy (policy, version, suppress_max, protect_zero, rounding, rounding_base, redacted,
                                 dominance_n, dominance_k, p_percent, magnitude_digits, source, builtin, cell_key_ptable)
SELECT policy, 3, suppress_max, protect_zero, rounding, rounding_base, redacted, dominance_n, dominance_k, p_percent, magnitude_digits,
       source || '; keyed (issue 24, version 3): counts of people perturbed by the cell key method (p-table default) before suppression and rounding, sums rounded at random by the people''s record keys, so that padding a query does not find the thresholds',
       true, 'default'
  FROM caredata.sdc_policy WHERE builtin AND version = 2 AND policy IN ('nhs_hes', 'opensafely');
