-- sql/sdc_policy_role.sql: the disclosure-control policy is caredata_admin's
-- choice, not the analyst's (issue 24, section 1).  Found: the same cell
-- under nhs_hes (* for 1-7) and opensafely_midpoint6 (9 for 7-12) is
-- exactly 7.  Every way a role outside caredata_admin could pick another
-- policy is tried: the setting, the policy argument of every safe
-- aggregate and of sdc_apply()/sdc_display(), a state carrying a policy,
-- funnel()'s policy argument, and writing the assignment catalog.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
RESET client_min_messages;
SET search_path = caredata, public;

CREATE ROLE regress_pr_admin NOLOGIN IN ROLE caredata_admin;
CREATE ROLE regress_pr_team NOLOGIN;
CREATE ROLE regress_pr_other_team NOLOGIN;
CREATE ROLE regress_pr_analyst NOLOGIN IN ROLE caredata_analyst, regress_pr_team;
CREATE ROLE regress_pr_linker NOLOGIN IN ROLE caredata_linker;
CREATE ROLE regress_pr_patient NOLOGIN IN ROLE caredata_patient;
CREATE TABLE pr_cell AS SELECT g AS person FROM generate_series(1, 7) g;
GRANT SELECT ON pr_cell TO PUBLIC;

-- with no assignment, the superuser-only setting applies (nhs_hes)
SET ROLE regress_pr_analyst;
SELECT sdc_policy_in_force() AS in_force, safe_count(person) AS shown, safe_count_text(person) AS shown_text FROM pr_cell;
-- the attack: the same cell under another policy
SELECT safe_count(person, 'opensafely_midpoint6') FROM pr_cell;
SELECT safe_count_text(person, 'opensafely_midpoint6') FROM pr_cell;
SELECT sdc_apply(7, 'opensafely_midpoint6');
SELECT sdc_display(7, 'opensafely_midpoint6');
SELECT safe_sum(person::float8, person, 'opensafely_midpoint6') FROM pr_cell;
\set VERBOSITY terse
SELECT count(*) FROM funnel($$SELECT 'unit ' || person, 7, 100 FROM pr_cell$$, 'PR', policy => 'opensafely_midpoint6');
\set VERBOSITY default
-- ... by the setting: superuser-only
SET caredata.sdc_policy = 'opensafely_midpoint6';
SELECT set_config('caredata.sdc_policy', 'opensafely_midpoint6', true);
-- ... by a state that carries the policy (text form, then finalised)
SELECT _person_set_safe_count('opensafely_midpoint6:1,2,3,4,5,6,7'::person_set);
-- naming the policy in force is allowed
SELECT safe_count(person, 'nhs_hes') AS named_in_force FROM pr_cell;
-- ... by writing the catalog, or calling the admin's functions
INSERT INTO sdc_policy_role (role, policy) VALUES ('regress_pr_analyst', 'opensafely_midpoint6');
UPDATE sdc_policy_role SET policy = 'opensafely_midpoint6';
SELECT assign_sdc_policy('regress_pr_analyst', 'opensafely_midpoint6');
RESET ROLE;
-- every other non-admin role is refused the same
SET ROLE regress_pr_linker;
SELECT sdc_apply(7, 'opensafely_midpoint6');
SELECT assign_sdc_policy('regress_pr_linker', 'opensafely_midpoint6');
RESET ROLE;
SET ROLE regress_pr_patient;
SELECT sdc_apply(7, 'opensafely_midpoint6');
RESET ROLE;

-- caredata_admin assigns: to every role, to a group, to one role
SET ROLE regress_pr_admin;
SELECT sdc_apply(7, 'opensafely_midpoint6') AS admin_may_choose;
SELECT assign_sdc_policy('-', 'opensafely');
SELECT assign_sdc_policy('regress_pr_team', 'opensafely_midpoint6');
SELECT assign_sdc_policy('regress_pr_analyst', 'no_such_policy');
RESET ROLE;
SELECT role, policy, set_by = 'regress_pr_admin' OR set_by = session_user AS by_admin FROM sdc_policy_role ORDER BY role::text;
-- the group's policy for its member; every role's for the rest
SET ROLE regress_pr_analyst;
SELECT sdc_policy_in_force() AS analyst_in_force, safe_count(person) AS analyst_sees FROM pr_cell;
SELECT safe_count(person, 'nhs_hes') FROM pr_cell;
RESET ROLE;
SET ROLE regress_pr_linker;
SELECT sdc_policy_in_force() AS linker_in_force, sdc_display(7) AS linker_sees;
RESET ROLE;
-- two groups with different policies: an error, never a choice
GRANT regress_pr_other_team TO regress_pr_analyst;
SET ROLE regress_pr_admin;
SELECT assign_sdc_policy('regress_pr_other_team', 'nhs_hes');
RESET ROLE;
SET ROLE regress_pr_analyst;
SELECT safe_count(person) FROM pr_cell;
RESET ROLE;
-- a role's own row settles it
SET ROLE regress_pr_admin;
SELECT assign_sdc_policy('regress_pr_analyst', 'nhs_hes');
RESET ROLE;
SET ROLE regress_pr_analyst;
SELECT sdc_policy_in_force() AS own_row, safe_count(person) AS analyst_sees FROM pr_cell;
RESET ROLE;
SET ROLE regress_pr_admin;
SELECT unassign_sdc_policy('regress_pr_analyst') AS unassigned, unassign_sdc_policy('regress_pr_analyst') AS again;
RESET ROLE;
-- every change is in the audit log, with who made it
SELECT action, object, detail->>'policy' AS policy FROM audit_log
 WHERE action LIKE 'sdc_policy.%' ORDER BY id;

-- clean up
SET ROLE regress_pr_admin;
SELECT unassign_sdc_policy('-'), unassign_sdc_policy('regress_pr_team'), unassign_sdc_policy('regress_pr_other_team');
RESET ROLE;
DROP TABLE pr_cell;
DROP ROLE regress_pr_admin, regress_pr_analyst, regress_pr_linker, regress_pr_patient, regress_pr_team, regress_pr_other_team;
