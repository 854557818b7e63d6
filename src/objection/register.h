/*-------------------------------------------------------------------------
 *
 * register.h
 *		The objection register as the filter reads it
 *		(src/objection/register.c).
 *
 * src/objection/register.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_REGISTER_H
#define CAREDATA_REGISTER_H

#include "miscadmin.h"

#include "citus/citus.h"
#include "base/search_path.h"

/* the longest purpose name, and one more */
#define PURPOSE_MAX			64

/*
 * Which register a set answers for.  The register's version counts from 1
 * again when the extension is dropped and created again, so every cache of
 * sets (this backend's and the shared registry)
 * keys a set by the register's identity as well: the OID of the
 * installation's caredata.register_version table.  A re-installed
 * extension's table has another OID (an OID comes back only after the
 * server's OID counter wraps around, 2^32 OIDs later, and then the version
 * must match too).
 */

/*
 * The register's version, and its identity in *reg, as its owner reads
 * them under the active snapshot
 */
extern int64 register_version(Oid *reg);

/* the register's identity, from the catalogs (InvalidOid: not installed) */
extern Oid	objection_register_identity(void);

/* the role the register is read as: the owner of schema caredata */
extern Oid	objection_register_owner(void);

/*
 * Run stmt as the register's owner.  On error, transaction (or
 * subtransaction) abort restores the caller's identity, as for the
 * referential-integrity triggers (ri_triggers.c), so no PG_TRY is needed
 * (nor for the settings below).  AS_REGISTER_OWNER pins search_path for
 * stmt's SQL (search_path.h: the caller's schemas are never searched while
 * it runs as the owner) and lets Citus run that SQL inside a shard task
 * (src/citus/citus.c); AS_REGISTER_OWNER_SCAN is for a statement that runs
 * no SQL and resolves no name (an index probe by OID, row by row), where a
 * GUC nest level per row would cost more than the probe; it takes the
 * owner, looked up once (objection_register_owner() per row was two
 * catalog cache lookups).
 */
#define AS_REGISTER_OWNER_SCAN(owner, stmt) \
	do { \
		Oid			save_userid; \
		int			save_sec; \
		GetUserIdAndSecContext(&save_userid, &save_sec); \
		SetUserIdAndSecContext((owner), save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION); \
		stmt; \
		SetUserIdAndSecContext(save_userid, save_sec); \
	} while (0)

#define AS_REGISTER_OWNER(stmt) \
	do { \
		Oid			save_userid; \
		int			save_sec; \
		int			save_nested; \
		int			save_path; \
		GetUserIdAndSecContext(&save_userid, &save_sec); \
		SetUserIdAndSecContext(objection_register_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION); \
		save_path = search_path_pin(); \
		save_nested = citus_nested_begin(); \
		stmt; \
		citus_nested_end(save_nested); \
		search_path_unpin(save_path); \
		SetUserIdAndSecContext(save_userid, save_sec); \
	} while (0)

#endif							/* CAREDATA_REGISTER_H */
