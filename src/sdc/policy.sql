-- src/sdc/policy.sql
-- Disclosure-control policies (docs/disclosure-control.md): a catalog of
-- named, versioned rule sets an admin can extend, the setting
-- caredata.sdc_policy (defined in src/sdc/policy.c) naming the one used when
-- a call names none, and the rule applied to one count.

CREATE TABLE caredata.sdc_policy (
  policy         text NOT NULL CHECK (policy ~ '^[a-z][a-z0-9_]{0,62}$'),
  version        integer NOT NULL DEFAULT 1 CHECK (version > 0),
  suppress_max   bigint NOT NULL CHECK (suppress_max >= 0),
  protect_zero   boolean NOT NULL DEFAULT false,
  rounding       text NOT NULL DEFAULT 'none' CHECK (rounding IN ('none', 'nearest', 'midpoint')),
  rounding_base  integer NOT NULL DEFAULT 1 CHECK (rounding_base BETWEEN 1 AND 1000000),
  redacted       text NOT NULL DEFAULT '*' CHECK (length(redacted) BETWEEN 1 AND 63),
  dominance_n    integer CHECK (dominance_n > 0),
  dominance_k    double precision CHECK (dominance_k > 0 AND dominance_k <= 100),
  p_percent      double precision CHECK (p_percent > 0 AND p_percent <= 100),
  source         text NOT NULL,
  builtin        boolean NOT NULL DEFAULT false,
  created_at     timestamptz NOT NULL DEFAULT now(),
  created_by     name NOT NULL DEFAULT current_user,
  magnitude_digits integer CHECK (magnitude_digits BETWEEN 1 AND 15),
  cell_key_ptable text CHECK (cell_key_ptable ~ '^[a-z][a-z0-9_]{0,62}$'),
  PRIMARY KEY (policy, version),
  CHECK (rounding <> 'midpoint' OR rounding_base % 2 = 0),
  CHECK ((dominance_n IS NULL) = (dominance_k IS NULL))
);
COMMENT ON TABLE caredata.sdc_policy IS
  'disclosure-control policies: counts of 1..suppress_max people suppressed (and 0 when protect_zero), others rounded (nearest multiple of rounding_base, or midpoint: ceil(n/base)*base - base/2); the latest version of a name applies; redacted is how a suppressed value displays';
COMMENT ON COLUMN caredata.sdc_policy.source IS 'the published rule this policy implements';
COMMENT ON COLUMN caredata.sdc_policy.dominance_n IS '(n, k) dominance rule for sums and means: suppressed when the n largest contributors hold more than dominance_k percent of the total';
COMMENT ON COLUMN caredata.sdc_policy.cell_key_ptable IS 'the cell key method: counts of people are published as the true count plus the perturbation this p-table (caredata.sdc_ptable) gives for the count and the cell key; NULL: no perturbation';
COMMENT ON COLUMN caredata.sdc_policy.p_percent IS 'p% rule for sums and means: suppressed when the total less the two largest contributions is under p percent of the largest';
COMMENT ON COLUMN caredata.sdc_policy.magnitude_digits IS 'sums are published rounded to this many significant figures, never finer than rounding_base, and means are the published sum over the published row count (NULL: sums exact, as version 1 of the built-in policies)';

INSERT INTO caredata.sdc_policy (policy, suppress_max, protect_zero, rounding, rounding_base, redacted, source, builtin) VALUES
  ('nhs_hes', 7, false, 'nearest', 5, '*',
   'NHS England, Hospital Episode Statistics (HES) and Emergency Care Data Set (ECDS) sub-national statistics: 0 stays 0, 1 to 7 suppressed, every other count rounded to the nearest 5 (HES Analysis Guide, "Suppression of small numbers"; NHS Digital disclosure control method for HES/ECDS)', true),
  ('opensafely', 7, true, 'nearest', 5, '[REDACTED]',
   'OpenSAFELY output checking: counts of 7 or fewer redacted, others rounded to the nearest 5 (docs.opensafely.org, "Statistical disclosure control" / output checking rules); zero is a count of 7 or fewer and is redacted', true),
  ('opensafely_midpoint6', 0, false, 'midpoint', 6, '[REDACTED]',
   'OpenSAFELY midpoint-6 rounding: ceil(x/6)*6 - 3 for x > 0, 0 stays 0 (docs.opensafely.org, "Rounding" in the disclosure control guidance)', true);

-- Version 2 of each built-in policy protects magnitudes by default (issue
-- 24): the (n, k) dominance rule with (2, 85) and the p% rule with p = 10,
-- the values Hundepool et al., Statistical Disclosure Control (Wiley,
-- 2012), section 4.2, give as those statistical offices use; and sums
-- rounded to 3 significant figures (never finer than the count rounding),
-- so that two published sums do not difference to one person's exact value.
INSERT INTO caredata.sdc_policy (policy, version, suppress_max, protect_zero, rounding, rounding_base, redacted,
                                 dominance_n, dominance_k, p_percent, magnitude_digits, source, builtin)
SELECT policy, 2, suppress_max, protect_zero, rounding, rounding_base, redacted, 2, 85, 10, 3,
       source || '; magnitudes (issue 24): (2, 85) dominance and p% = 10 (Hundepool et al., Statistical Disclosure Control, 2012, section 4.2), sums rounded to 3 significant figures, means from the published sum and row count',
       true
  FROM caredata.sdc_policy WHERE builtin AND version = 1;

REVOKE ALL ON caredata.sdc_policy FROM PUBLIC;
GRANT SELECT ON caredata.sdc_policy TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON caredata.sdc_policy TO caredata_admin;
-- admins' own policies survive pg_dump; the built-in ones come with the extension
SELECT pg_catalog.pg_extension_config_dump('caredata.sdc_policy', 'WHERE NOT builtin');

CREATE FUNCTION caredata.sdc_apply(n bigint, policy text DEFAULT NULL) RETURNS bigint
  AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.sdc_apply(bigint, text) IS
  'a count of people as a disclosure-control policy publishes it (NULL policy: the caredata.sdc_policy setting): NULL when suppressed, else rounded';
CREATE FUNCTION caredata.sdc_display(n bigint, policy text DEFAULT NULL) RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.sdc_display(bigint, text) IS
  'a count of people for display: the published number, or the policy''s mark (such as * or [REDACTED]) when suppressed or NULL';

-- Which policy is in force for a role: caredata_admin decides, not the
-- analyst (issue 24).  A row for the role itself; else the one row for a
-- role it is a member of; else the row for every role ('-', OID 0); else
-- the setting caredata.sdc_policy, which only a superuser can set
-- (postgresql.conf, ALTER DATABASE or ALTER ROLE).  A non-admin's call that
-- names another policy is refused (src/sdc/policy_role.c).
CREATE TABLE caredata.sdc_policy_role (
  role       regrole PRIMARY KEY,
  policy     text NOT NULL CHECK (policy ~ '^[a-z][a-z0-9_]{0,62}$'),
  set_by     name NOT NULL DEFAULT session_user,
  set_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE caredata.sdc_policy_role IS
  'the disclosure-control policy in force for a role (role ''-'': every role without a row of its own or of a role it belongs to); set by caredata_admin with caredata.assign_sdc_policy()';
REVOKE ALL ON caredata.sdc_policy_role FROM PUBLIC;
GRANT SELECT ON caredata.sdc_policy_role TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('caredata.sdc_policy_role', '');

CREATE FUNCTION caredata.assign_sdc_policy(role regrole, policy text) RETURNS void
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM caredata._catalog_write('caredata.assign_sdc_policy()');
  IF NOT EXISTS (SELECT 1 FROM caredata.sdc_policy p WHERE p.policy = assign_sdc_policy.policy) THEN
    RAISE EXCEPTION 'disclosure-control policy "%" does not exist', policy
      USING ERRCODE = 'undefined_object',
            HINT = 'See caredata.sdc_policy for the policies.';
  END IF;
  INSERT INTO caredata.sdc_policy_role AS r (role, policy) VALUES (assign_sdc_policy.role, assign_sdc_policy.policy)
  ON CONFLICT ON CONSTRAINT sdc_policy_role_pkey
  DO UPDATE SET policy = excluded.policy, set_by = excluded.set_by, set_at = excluded.set_at;
  PERFORM caredata.audit_append('sdc_policy.assign',
                                CASE WHEN role::oid = 0 THEN 'every role' ELSE role::text END,
                                jsonb_build_object('policy', policy));
END
$$;
COMMENT ON FUNCTION caredata.assign_sdc_policy(regrole, text) IS
  'put a disclosure-control policy in force for a role (''-'': every role without one of its own); audited; caredata_admin only';
REVOKE ALL ON FUNCTION caredata.assign_sdc_policy(regrole, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.assign_sdc_policy(regrole, text) TO caredata_admin;

CREATE FUNCTION caredata.unassign_sdc_policy(role regrole) RETURNS boolean
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  gone boolean;
BEGIN
  PERFORM caredata._catalog_write('caredata.unassign_sdc_policy()');
  DELETE FROM caredata.sdc_policy_role r WHERE r.role = unassign_sdc_policy.role;
  gone := FOUND;
  IF gone THEN
    PERFORM caredata.audit_append('sdc_policy.unassign',
                                  CASE WHEN role::oid = 0 THEN 'every role' ELSE role::text END, NULL);
  END IF;
  RETURN gone;
END
$$;
COMMENT ON FUNCTION caredata.unassign_sdc_policy(regrole) IS
  'take a role''s own disclosure-control policy away (it then follows its groups'', every role''s, or the setting); audited; caredata_admin only';
REVOKE ALL ON FUNCTION caredata.unassign_sdc_policy(regrole) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.unassign_sdc_policy(regrole) TO caredata_admin;

CREATE FUNCTION caredata.sdc_policy_in_force() RETURNS text
  AS 'MODULE_PATHNAME', 'sdc_policy_in_force_sql' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION caredata.sdc_policy_in_force() IS
  'the disclosure-control policy in force for the current role: the one every safe aggregate applies, and the only one a role outside caredata_admin may name';
