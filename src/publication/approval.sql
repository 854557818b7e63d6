-- src/publication/approval.sql
-- The approval register: identifiable data leaves only "where the law
-- allows it" (the care.data programme), so every identifiable disclosure,
-- a re-identification (caredata.reidentify(), src/publication/reidentify.sql) or
-- a publication that keeps a direct identifier (caredata.publish(),
-- src/publication/publication.sql), names a registered approval whose
-- scope covers it: its legal basis, the purposes, datasets and roles it
-- covers, the dates it is valid between, and whether the national data
-- opt-out applies to it (docs/security.md, "Approvals").
--
-- The register is caredata_admin's, written only through
-- register_approval() and revoke_approval(), each audited; an approval is
-- never edited or deleted, only revoked, once.  Admins read the whole
-- register (caredata.approval); a re-identifier reads the approvals that
-- name a role its login belongs to (caredata.my_approval), which are the
-- only ones it can use.

CREATE TABLE caredata.approval (
  reference          text PRIMARY KEY CHECK (reference ~ '^[A-Za-z0-9][A-Za-z0-9 ./_:()-]{0,62}$'),
  legal_basis        text NOT NULL
                     CHECK (legal_basis IN ('section_251', 'civil_emergency', 'court_order', 'consent', 'statutory')),
  basis_reference    text NOT NULL CHECK (btrim(basis_reference) <> ''),
  purposes           text[] NOT NULL CHECK (cardinality(purposes) > 0),
  datasets           text[] CHECK (datasets IS NULL OR cardinality(datasets) > 0),
  roles              regrole[] NOT NULL CHECK (cardinality(roles) > 0),
  valid_from         timestamptz NOT NULL,
  valid_until        timestamptz NOT NULL,
  opt_out_applies    boolean NOT NULL DEFAULT true,
  opt_out_exemption  text,
  registered_at      timestamptz NOT NULL DEFAULT now(),
  registered_by      name NOT NULL DEFAULT session_user,
  revoked_at         timestamptz,
  revoked_by         name,
  revoke_reason      text,
  CONSTRAINT approval_dates CHECK (valid_until > valid_from),
  CONSTRAINT approval_section_251_opt_out
    CHECK (legal_basis <> 'section_251' OR opt_out_applies OR opt_out_exemption IS NOT NULL),
  CONSTRAINT approval_opt_out_exemption_only_when_set_aside CHECK (opt_out_exemption IS NULL OR NOT opt_out_applies),
  CONSTRAINT approval_revoked_with_reason
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL) AND (revoked_at IS NULL) = (revoke_reason IS NULL))
);
COMMENT ON TABLE caredata.approval IS
  'the approval register: the legal bases (section 251 support, a COPI notice in a civil emergency, a court order, consent, a statutory duty) under which identifiable data may be disclosed, each with the purposes, datasets and roles it covers, its dates and whether the national data opt-out applies; written by register_approval() and revoke_approval() only, audited, never edited or deleted';
SELECT pg_catalog.pg_extension_config_dump('caredata.approval', '');

-- History that cannot be rewritten: the only change is a revocation, once
CREATE FUNCTION caredata._approval_keep_history() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' THEN
    IF OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
       AND (pg_catalog.to_jsonb(NEW) OPERATOR(pg_catalog.-) ARRAY['revoked_at', 'revoked_by', 'revoke_reason'])
           OPERATOR(pg_catalog.=) (pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.-) ARRAY['revoked_at', 'revoked_by', 'revoke_reason']) THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION USING ERRCODE = '55000', MESSAGE = 'caredata.approval keeps its history',
    DETAIL = 'An approval can only be revoked, once; nothing else about it changes, and it is never deleted.',
    HINT = 'Use caredata.revoke_approval(); register a new approval for anything else.';
END
$$;
COMMENT ON FUNCTION caredata._approval_keep_history() IS
  'internal: trigger: an approval only ever changes by being revoked, once; never deleted';
CREATE TRIGGER approval_history BEFORE UPDATE OR DELETE ON caredata.approval
  FOR EACH ROW EXECUTE FUNCTION caredata._approval_keep_history();
CREATE TRIGGER approval_no_truncate BEFORE TRUNCATE ON caredata.approval
  FOR EACH STATEMENT EXECUTE FUNCTION caredata._approval_keep_history();

-- Why an approval does not cover a disclosure to (or by) a role, for a
-- purpose and dataset, at a time: NULL when it does.  Membership counts
-- however it is held (pg_has_role ... MEMBER).  An approval naming datasets
-- covers only a disclosure that names one of them.
CREATE FUNCTION caredata._approval_problem(reference text, role name, purpose text, dataset text, at timestamptz)
  RETURNS text LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE
    WHEN a.reference IS NULL THEN 'is not in the approval register'
    WHEN a.revoked_at IS NOT NULL AND a.revoked_at OPERATOR(pg_catalog.<=) x.at THEN 'was revoked'
    WHEN x.at OPERATOR(pg_catalog.<) a.valid_from THEN 'is not valid yet'
    WHEN x.at OPERATOR(pg_catalog.>=) a.valid_until THEN 'has expired'
    WHEN x.purpose IS NULL OR NOT x.purpose OPERATOR(pg_catalog.=) ANY (a.purposes)
      THEN pg_catalog.format('does not cover the purpose %s', coalesce(x.purpose, '(none)'))
    WHEN a.datasets IS NOT NULL AND (x.dataset IS NULL OR NOT x.dataset OPERATOR(pg_catalog.=) ANY (a.datasets))
      THEN pg_catalog.format('does not cover the dataset %s', coalesce(x.dataset, '(none)'))
    WHEN x.role IS NULL OR NOT EXISTS (
           SELECT 1 FROM pg_catalog.unnest(a.roles) g(r)
             JOIN pg_catalog.pg_roles rr ON rr.oid OPERATOR(pg_catalog.=) g.r::oid
             JOIN pg_catalog.pg_roles me ON me.rolname OPERATOR(pg_catalog.=) x.role
            WHERE pg_catalog.pg_has_role(me.oid, rr.oid, 'MEMBER'))
      THEN pg_catalog.format('does not name role "%s" or a role it is a member of', x.role)
  END
  FROM (SELECT reference, role, purpose, dataset, at) x
  LEFT JOIN caredata.approval a ON a.reference OPERATOR(pg_catalog.=) x.reference
$$;
COMMENT ON FUNCTION caredata._approval_problem(text, name, text, text, timestamptz) IS
  'internal: why an approval does not cover a role, purpose and dataset at a time (not registered, revoked, not valid yet, expired, another purpose, dataset or role); NULL when it does';

-- The same, refusing (42501) what the approval does not cover; returns
-- whether the national data opt-out applies to it.  what names the
-- disclosure in the message.
CREATE FUNCTION caredata._approval_require(reference text, role name, purpose text, dataset text, what text)
  RETURNS boolean LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  why text := caredata._approval_problem(reference, role, purpose, dataset, pg_catalog.now());
  applies boolean;
BEGIN
  IF reference IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format('a %s needs an approval', what),
      DETAIL = 'Identifiable data is disclosed only where the law allows it, under an approval in the register.',
      HINT = 'Name the approval it is made under (its reference in caredata.approval, or caredata.my_approval).';
  END IF;
  IF why IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = pg_catalog.format('approval "%s" %s', reference, why),
      DETAIL = pg_catalog.format('A %s is made only under an approval in force that covers its role, purpose and dataset.', what),
      HINT = 'See caredata.my_approval (caredata.approval for admins); caredata_admin registers approvals with caredata.register_approval().';
  END IF;
  SELECT a.opt_out_applies INTO applies FROM caredata.approval a WHERE a.reference OPERATOR(pg_catalog.=) _approval_require.reference;
  RETURN applies;
END
$$;
COMMENT ON FUNCTION caredata._approval_require(text, name, text, text, text) IS
  'internal: refuse (42501, with the reason) a disclosure an approval does not cover now; returns whether the national data opt-out applies under it';

CREATE FUNCTION caredata.register_approval(reference text, legal_basis text, basis_reference text, purposes text[],
                                           roles regrole[], valid_from timestamptz, valid_until timestamptz,
                                           datasets text[] DEFAULT NULL, opt_out_applies boolean DEFAULT true,
                                           opt_out_exemption text DEFAULT NULL)
  RETURNS text LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM caredata._catalog_write('caredata.register_approval()');
  IF reference IS NULL OR reference OPERATOR(pg_catalog.!~) '^[A-Za-z0-9][A-Za-z0-9 ./_:()-]{0,62}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an approval reference is letters, digits, spaces and ./_:()- (at most 63)',
      HINT = 'Use the approval''s own reference, for example CAG 1-23 or COPI 2020-03.';
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.approval a WHERE a.reference OPERATOR(pg_catalog.=) register_approval.reference) THEN
    RAISE EXCEPTION USING ERRCODE = '42710', MESSAGE = pg_catalog.format('approval "%s" is already registered', reference),
      HINT = 'An approval is never changed: revoke it (caredata.revoke_approval()) and register the new one under its own reference.';
  END IF;
  IF legal_basis IS NULL OR NOT legal_basis OPERATOR(pg_catalog.=) ANY (ARRAY['section_251', 'civil_emergency', 'court_order', 'consent', 'statutory']) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = pg_catalog.format('unknown legal basis "%s"', legal_basis),
      HINT = 'Legal bases: section_251 (research support under the NHS Act 2006), civil_emergency (a COPI notice), court_order, consent, statutory.';
  END IF;
  IF basis_reference IS NULL OR pg_catalog.btrim(basis_reference) OPERATOR(pg_catalog.=) '' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an approval needs the reference of its legal basis',
      HINT = 'The CAG approval number for section_251, the notice for civil_emergency, the order, the consent record or the statute.';
  END IF;
  IF coalesce(pg_catalog.cardinality(purposes), 0) OPERATOR(pg_catalog.=) 0
     OR EXISTS (SELECT 1 FROM pg_catalog.unnest(purposes) p
                 WHERE p IS NULL OR NOT EXISTS (SELECT 1 FROM caredata.purpose x WHERE x.name OPERATOR(pg_catalog.=) p)) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an approval covers known purposes',
      HINT = 'Purposes are listed in caredata.purpose.';
  END IF;
  IF datasets IS NOT NULL AND (pg_catalog.cardinality(datasets) OPERATOR(pg_catalog.=) 0
     OR EXISTS (SELECT 1 FROM pg_catalog.unnest(datasets) d WHERE d IS NULL OR pg_catalog.btrim(d) OPERATOR(pg_catalog.=) '')) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an approval''s datasets are named',
      HINT = 'Name the datasets (studies or publications) it covers, or pass NULL for an approval not limited to named datasets.';
  END IF;
  IF coalesce(pg_catalog.cardinality(roles), 0) OPERATOR(pg_catalog.=) 0
     OR EXISTS (SELECT 1 FROM pg_catalog.unnest(roles) r
                 WHERE r IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles x WHERE x.oid OPERATOR(pg_catalog.=) r::oid)) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an approval names the roles it allows',
      HINT = 'Name existing roles (not PUBLIC): the re-identifier logins or the recipient roles it covers.';
  END IF;
  IF valid_from IS NULL OR valid_until IS NULL OR valid_until OPERATOR(pg_catalog.<=) valid_from
     OR pg_catalog.isfinite(valid_until) IS NOT TRUE THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an approval is valid between two times',
      HINT = 'valid_from before valid_until; an approval always ends (CAG support is reviewed, a COPI notice lapses).';
  END IF;
  IF opt_out_applies IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'say whether the national data opt-out applies to the approval',
      HINT = 'true unless the approval sets it aside.';
  END IF;
  IF NOT opt_out_applies AND legal_basis OPERATOR(pg_catalog.=) 'section_251'
     AND (opt_out_exemption IS NULL OR pg_catalog.btrim(opt_out_exemption) OPERATOR(pg_catalog.=) '') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'section 251 support is subject to the national data opt-out unless it records an exemption',
      HINT = 'Pass opt_out_exemption: the reference of the exemption the Confidentiality Advisory Group recorded; otherwise leave opt_out_applies true.';
  END IF;
  IF opt_out_applies AND opt_out_exemption IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'an opt-out exemption is recorded only when the approval sets the opt-out aside',
      HINT = 'Pass opt_out_applies => false with it, or leave it out.';
  END IF;
  INSERT INTO caredata.approval (reference, legal_basis, basis_reference, purposes, datasets, roles, valid_from, valid_until,
                                 opt_out_applies, opt_out_exemption)
  VALUES (reference, legal_basis, basis_reference, purposes, datasets, roles, valid_from, valid_until,
          opt_out_applies, opt_out_exemption);
  PERFORM caredata.audit_append('approval.register', reference,
    pg_catalog.jsonb_build_object('legal_basis', legal_basis, 'basis_reference', basis_reference, 'purposes', purposes,
      'datasets', datasets, 'roles', (SELECT pg_catalog.array_agg(r::text) FROM pg_catalog.unnest(roles) r),
      'valid_from', valid_from, 'valid_until', valid_until,
      'opt_out_applies', opt_out_applies, 'opt_out_exemption', opt_out_exemption));
  RETURN reference;
END
$$;
COMMENT ON FUNCTION caredata.register_approval(text, text, text, text[], regrole[], timestamptz, timestamptz, text[], boolean, text) IS
  'register an approval (caredata_admin): its reference, legal basis (section_251, civil_emergency, court_order, consent, statutory) and that basis''s reference, the purposes, roles and (optionally) datasets it covers, the dates it is valid between, and whether the national data opt-out applies (section 251 support sets it aside only with a recorded exemption); audited; returns the reference';

CREATE FUNCTION caredata.revoke_approval(reference text, reason text) RETURNS void
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM caredata._catalog_write('caredata.revoke_approval()');
  IF reason IS NULL OR pg_catalog.length(pg_catalog.btrim(reason)) OPERATOR(pg_catalog.<) 10 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a revocation needs its reason',
      HINT = 'Say why, in at least 10 characters; it is kept in the register and the audit log.';
  END IF;
  UPDATE caredata.approval a SET revoked_at = pg_catalog.now(), revoked_by = session_user, revoke_reason = reason
   WHERE a.reference OPERATOR(pg_catalog.=) revoke_approval.reference AND a.revoked_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'P0002', MESSAGE = pg_catalog.format('no approval "%s" in force to revoke', reference),
      HINT = 'Approvals not yet revoked are those in caredata.approval with revoked_at NULL.';
  END IF;
  PERFORM caredata.audit_append('approval.revoke', reference, NULL, reason);
END
$$;
COMMENT ON FUNCTION caredata.revoke_approval(text, text) IS
  'revoke an approval from now on, with the reason (caredata_admin); nothing is disclosed under it afterwards, published views made under it refuse to be read; the row is kept; audited';

-- what a re-identifier may use: the approvals naming a role its login is a
-- member of (the check reidentify() makes), in force or not
CREATE VIEW caredata.my_approval WITH (security_barrier) AS
  SELECT a.reference, a.legal_basis, a.basis_reference, a.purposes, a.datasets, a.valid_from, a.valid_until,
         a.opt_out_applies, a.opt_out_exemption, a.revoked_at, a.revoke_reason,
         (a.revoked_at IS NULL AND pg_catalog.now() >= a.valid_from AND pg_catalog.now() < a.valid_until) AS in_force
    FROM caredata.approval a
   WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(a.roles) g(r)
                   JOIN pg_catalog.pg_roles rr ON rr.oid = g.r::oid
                  WHERE pg_catalog.pg_has_role(session_user, rr.oid, 'MEMBER'));
COMMENT ON VIEW caredata.my_approval IS
  'the approvals the current login may re-identify under (those naming a role it is a member of), with their scope and whether each is in force';

REVOKE ALL ON caredata.approval, caredata.my_approval FROM PUBLIC;
GRANT SELECT ON caredata.approval TO caredata_admin;
GRANT SELECT ON caredata.my_approval TO caredata_admin, caredata_reidentifier;
REVOKE ALL ON FUNCTION caredata._approval_keep_history(), caredata._approval_problem(text, name, text, text, timestamptz),
  caredata._approval_require(text, name, text, text, text),
  caredata.register_approval(text, text, text, text[], regrole[], timestamptz, timestamptz, text[], boolean, text),
  caredata.revoke_approval(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata._approval_problem(text, name, text, text, timestamptz),
  caredata._approval_require(text, name, text, text, text),
  caredata.register_approval(text, text, text, text[], regrole[], timestamptz, timestamptz, text[], boolean, text),
  caredata.revoke_approval(text, text) TO caredata_admin;
