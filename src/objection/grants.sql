-- src/objection/grants.sql
-- Privileges on the objection register, its feeds and its row filters.

-- privileges: the register is the admin's; filtering is everyone's who may
-- read protected data; nothing here is open to PUBLIC
REVOKE ALL ON caredata.purpose, caredata.objection, caredata.exemption, caredata.register_version,
  caredata.subject_access, caredata.feed_load, caredata.type1_code, caredata.protected_table FROM PUBLIC;
GRANT SELECT ON caredata.purpose, caredata.type1_code TO caredata_admin, caredata_linker, caredata_analyst;
GRANT SELECT, INSERT, UPDATE ON caredata.subject_access, caredata.type1_code, caredata.purpose
  TO caredata_admin;
-- the register's who and when are the server's (column defaults), and only
-- the end of a row may be written later (the keep_history trigger: once)
GRANT SELECT ON caredata.objection, caredata.exemption TO caredata_admin;
GRANT INSERT (nhs_number, kind, purposes, study, effective_from, withdrawn_at, source),
  UPDATE (withdrawn_at) ON caredata.objection TO caredata_admin;
GRANT INSERT (dataset, purpose, objection_kind, legal_basis, reference, expires_at),
  UPDATE (revoked_at) ON caredata.exemption TO caredata_admin;
GRANT SELECT, INSERT ON caredata.feed_load TO caredata_admin;
GRANT SELECT, INSERT, DELETE ON caredata.protected_table TO caredata_admin;
GRANT SELECT ON caredata.register_version TO caredata_admin;
GRANT USAGE ON SEQUENCE caredata.objection_id_seq, caredata.exemption_id_seq, caredata.feed_load_id_seq
  TO caredata_admin;
GRANT DELETE ON caredata.subject_access TO caredata_admin;

REVOKE ALL ON FUNCTION
  caredata.permitted(caredata.nhs_number, text), caredata.permitted(caredata.nhs_number, text, timestamptz, text),
  caredata.row_permitted(caredata.nhs_number, text), caredata.row_permitted(caredata.nhs_number, text, timestamptz, text),
  caredata.my_nhs_number(),
  caredata.apply_opt_out_snapshot(regclass, name, text, timestamptz, boolean, boolean),
  caredata.apply_type1_codes(regclass, name, name, name, text, boolean),
  caredata.record_objection(caredata.nhs_number, text, text, timestamptz, text, text[]),
  caredata.withdraw_objection(bigint, timestamptz),
  caredata.grant_exemption(text, text, text, text, text, timestamptz),
  caredata.revoke_exemption(bigint),
  caredata.protect(regclass, name, text, text), caredata.unprotect(regclass),
  caredata._protect_one(regclass, name, text, text, regclass), caredata._hierarchy(regclass),
  caredata._protect_hierarchy(), caredata._forget_statistics(regclass),
  caredata._unfiltered_views(regclass), caredata._refuse_unfiltered_views(), caredata._unfiltered_views_guard()
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  caredata.permitted(caredata.nhs_number, text), caredata.permitted(caredata.nhs_number, text, timestamptz, text),
  caredata.row_permitted(caredata.nhs_number, text), caredata.row_permitted(caredata.nhs_number, text, timestamptz, text),
  caredata.my_nhs_number()
  TO caredata_admin, caredata_linker, caredata_analyst;
-- a patient needs row_permitted() to read a protected table (the filter
-- runs as the querying role); for a patient it answers only "is this my
-- own record", so it tells nothing about anyone else's objections
GRANT EXECUTE ON FUNCTION
  caredata.row_permitted(caredata.nhs_number, text), caredata.row_permitted(caredata.nhs_number, text, timestamptz, text),
  caredata.my_nhs_number()
  TO caredata_patient;
GRANT EXECUTE ON FUNCTION
  caredata.lock_register(),
  caredata._open_objections(caredata.nhs_number[], text, text[], timestamptz, text),
  caredata._opt_out_changes(regclass, name, text, text),
  caredata.apply_opt_out_snapshot(regclass, name, text, timestamptz, boolean, boolean),
  caredata.apply_type1_codes(regclass, name, name, name, text, boolean),
  caredata.record_objection(caredata.nhs_number, text, text, timestamptz, text, text[]),
  caredata.withdraw_objection(bigint, timestamptz),
  caredata.grant_exemption(text, text, text, text, text, timestamptz),
  caredata.revoke_exemption(bigint),
  caredata.protect(regclass, name, text, text), caredata.unprotect(regclass),
  caredata._protect_one(regclass, name, text, text, regclass), caredata._hierarchy(regclass),
  caredata._forget_statistics(regclass), caredata._refuse_unfiltered_views()
  TO caredata_admin;

-- the state of the filters: the register's admins', as protected_table is
REVOKE ALL ON FUNCTION caredata._protected_table_changed(), caredata._protection_guard(),
  caredata._protection_drop_guard(), caredata.filter_weakness(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION caredata.filter_weakness(regclass) TO caredata_admin;
REVOKE ALL ON caredata.protection_status FROM PUBLIC;
GRANT SELECT ON caredata.protection_status TO caredata_admin;
