-- src/keys/keys.sql
-- Pseudonym domains and their key versions (src/keys/keys.c).  The catalog holds
-- names, versions and dates, never key material: keys are derived on demand
-- from the master secret in the file named by caredata.key_file.

CREATE TABLE caredata.domain (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  purpose text NOT NULL CHECK (purpose <> ''),
  current_version smallint NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by name NOT NULL DEFAULT session_user,
  retired_at timestamptz,
  key_fingerprint text CHECK (key_fingerprint ~ '^[0-9a-f]{32}$')
);
COMMENT ON TABLE caredata.domain IS
  'pseudonym domains: where pseudonyms are valid (internal linkage, one per recipient); no key material';
COMMENT ON COLUMN caredata.domain.key_fingerprint IS
  'the fingerprint of the master secret the domain was created under (caredata.key_fingerprint()); a server whose key file gives another refuses to use the domain; NULL: created before 0.2.0, not checked';

CREATE TABLE caredata.domain_key (
  domain_id integer NOT NULL REFERENCES caredata.domain (id),
  version smallint NOT NULL CHECK (version > 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz,
  PRIMARY KEY (domain_id, version),
  -- how the version computes tokens: create_domain and rotate_domain make
  -- aes256-cmac versions; the default keeps a version restored from a dump
  -- of 0.1.0 (which has no such column) at the scheme it was made under
  scheme text NOT NULL DEFAULT 'hmac-sha256' CHECK (scheme IN ('hmac-sha256', 'aes256-cmac'))
);
COMMENT ON TABLE caredata.domain_key IS
  'key versions of each domain (keys are derived with HKDF-SHA256 from the master secret; none is stored)';
COMMENT ON COLUMN caredata.domain_key.scheme IS
  'how the version computes its 128-bit tokens: aes256-cmac (AES-256-CMAC, every version made since 0.2.0) or hmac-sha256 (HMAC-SHA256 truncated, versions made before)';

-- user rows are dumped with the database, so pseudonyms stay reproducible
SELECT pg_catalog.pg_extension_config_dump('caredata.domain', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.domain_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('caredata.domain_key', '');

REVOKE ALL ON caredata.domain, caredata.domain_key FROM PUBLIC;
GRANT SELECT ON caredata.domain, caredata.domain_key TO caredata_admin, caredata_linker;

-- every change to the key catalog drops cached keyed contexts in all backends
CREATE FUNCTION caredata.keys_invalidate() RETURNS trigger
  AS 'MODULE_PATHNAME' LANGUAGE C PARALLEL UNSAFE;
COMMENT ON FUNCTION caredata.keys_invalidate() IS
  'trigger: after a change to the key catalog, every backend drops its cached domain keys';
REVOKE ALL ON FUNCTION caredata.keys_invalidate() FROM PUBLIC;
CREATE TRIGGER domain_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON caredata.domain
  FOR EACH STATEMENT EXECUTE FUNCTION caredata.keys_invalidate();
CREATE TRIGGER domain_key_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON caredata.domain_key
  FOR EACH STATEMENT EXECUTE FUNCTION caredata.keys_invalidate();

CREATE FUNCTION caredata.key_file_status() RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION caredata.key_file_status() IS
  'whether the master secret in caredata.key_file can be used: ok, not set, unreadable, group or world access, wrong owner, too short, too long (never its path or contents)';
REVOKE ALL ON FUNCTION caredata.key_file_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.key_file_status() TO caredata_admin;

CREATE FUNCTION caredata.key_fingerprint() RETURNS text
  AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION caredata.key_fingerprint() IS
  'the fingerprint of the master secret in caredata.key_file: the first 16 bytes of HMAC-SHA256 of a fixed label under it, in hex; tells key files apart without revealing them';
REVOKE ALL ON FUNCTION caredata.key_fingerprint() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.key_fingerprint() TO caredata_admin;

CREATE FUNCTION caredata.create_domain(name text, purpose text) RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  new_id integer;
BEGIN
  PERFORM caredata._catalog_write('caredata.create_domain()');
  IF name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
    RAISE EXCEPTION 'invalid pseudonym domain name'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'A domain name is a lower-case letter followed by up to 62 lower-case letters, digits or underscores.';
  END IF;
  IF EXISTS (SELECT 1 FROM caredata.domain d WHERE d.name = create_domain.name) THEN
    RAISE EXCEPTION 'pseudonym domain "%" already exists', name
      USING ERRCODE = 'duplicate_object',
            HINT = 'Domain names are never reused, even after retirement.';
  END IF;
  -- the key it is created under: a node with another key file refuses it
  INSERT INTO caredata.domain (name, purpose, key_fingerprint)
  VALUES (name, purpose, caredata.key_fingerprint()) RETURNING id INTO new_id;
  INSERT INTO caredata.domain_key (domain_id, version, scheme) VALUES (new_id, 1, 'aes256-cmac');
  PERFORM caredata.audit_append('domain.create', name, jsonb_build_object('id', new_id, 'purpose', purpose, 'version', 1));
  RETURN new_id;
END
$$;
COMMENT ON FUNCTION caredata.create_domain(text, text) IS
  'create a pseudonym domain (internal linkage or a recipient) at key version 1 (AES-256-CMAC); returns its id';

CREATE FUNCTION caredata.rotate_domain(name text) RETURNS smallint
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  d caredata.domain;
BEGIN
  PERFORM caredata._catalog_write('caredata.rotate_domain()');
  SELECT * INTO d FROM caredata.domain WHERE domain.name = rotate_domain.name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pseudonym domain "%" does not exist', name USING ERRCODE = 'undefined_object';
  END IF;
  IF d.retired_at IS NOT NULL THEN
    RAISE EXCEPTION 'pseudonym domain "%" is retired', name USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  INSERT INTO caredata.domain_key (domain_id, version, scheme) VALUES (d.id, d.current_version + 1, 'aes256-cmac');
  UPDATE caredata.domain SET current_version = d.current_version + 1 WHERE id = d.id;
  PERFORM caredata.audit_append('domain.rotate', name, jsonb_build_object('id', d.id, 'version', d.current_version + 1));
  RETURN d.current_version + 1;
END
$$;
COMMENT ON FUNCTION caredata.rotate_domain(text) IS
  'start a new key version (AES-256-CMAC) for a domain; older versions stay usable (explicitly) until retired; returns the new version';

CREATE FUNCTION caredata.retire_domain(name text, version integer DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  d caredata.domain;
BEGIN
  PERFORM caredata._catalog_write('caredata.retire_domain()');
  SELECT * INTO d FROM caredata.domain WHERE domain.name = retire_domain.name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pseudonym domain "%" does not exist', name USING ERRCODE = 'undefined_object';
  END IF;
  IF version IS NULL THEN
    UPDATE caredata.domain_key SET retired_at = now() WHERE domain_id = d.id AND retired_at IS NULL;
    UPDATE caredata.domain SET retired_at = now() WHERE id = d.id AND retired_at IS NULL;
  ELSIF version = d.current_version THEN
    RAISE EXCEPTION 'cannot retire the current key version of pseudonym domain "%"', name
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Rotate the domain first, or retire the whole domain with retire_domain(name).';
  ELSE
    UPDATE caredata.domain_key k SET retired_at = now()
    WHERE k.domain_id = d.id AND k.version = retire_domain.version AND k.retired_at IS NULL;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'pseudonym domain "%" has no active key version %', name, version
        USING ERRCODE = 'undefined_object';
    END IF;
  END IF;
  PERFORM caredata.audit_append('domain.retire', name, jsonb_build_object('id', d.id, 'version', version));
END
$$;
COMMENT ON FUNCTION caredata.retire_domain(text, integer) IS
  'retire one old key version of a domain, or (without a version) the whole domain; retired keys are never used again';

REVOKE ALL ON FUNCTION caredata.create_domain(text, text), caredata.rotate_domain(text),
  caredata.retire_domain(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.create_domain(text, text), caredata.rotate_domain(text),
  caredata.retire_domain(text, integer) TO caredata_admin;
