/*-------------------------------------------------------------------------
 *
 * policy_role.h
 *		Which disclosure-control policy is in force for a role, and who
 *		may name another (src/sdc/policy_role.c).
 *
 * src/sdc/policy_role.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SDC_POLICY_ROLE_H
#define CAREDATA_SDC_POLICY_ROLE_H

/* the policy in force for the current role into name (NAMEDATALEN bytes) */
extern void sdc_policy_in_force(char *name, const char *fallback);

/* the policy a call may use: requested (NULL: in_force), or an error */
extern const char *sdc_policy_allowed(const char *requested, const char *in_force);

#endif							/* CAREDATA_SDC_POLICY_ROLE_H */
