/*-------------------------------------------------------------------------
 *
 * admin.h
 *		Whether the current role acts as caredata's administrator: a
 *		superuser, or a role with the privileges of caredata_admin.
 *
 * The objection filter answers such a role about any NHS number
 * (objection/permitted.c); disclosure control lets it name any policy
 * (sdc/policy_role.c).
 *
 * src/base/admin.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_ADMIN_H
#define CAREDATA_ADMIN_H

#include "miscadmin.h"
#include "utils/acl.h"

static inline bool
caredata_acting_as_admin(void)
{
	Oid			admin = get_role_oid("caredata_admin", true);

	return superuser() || (OidIsValid(admin) && has_privs_of_role(GetUserId(), admin));
}

#endif							/* CAREDATA_ADMIN_H */
