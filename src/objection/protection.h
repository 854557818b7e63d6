/*-------------------------------------------------------------------------
 *
 * protection.h
 *		The list of protected tables and their state (protection.c), for
 *		the DDL guard (protection_ddl.c).
 *
 * src/objection/protection.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_PROTECTION_H
#define CAREDATA_PROTECTION_H

/* one table of caredata.protected_table, and its state once worked out */
typedef struct ProtectedEntry
{
	Oid			relid;			/* hash key */
	NameData	nhs_column;
	char	   *purpose;
	char	   *dataset;		/* NULL: no dataset */
	bool		state_known;
	const char *weakness;		/* NULL: in force (when state_known) */
} ProtectedEntry;

extern void protection_init(void);
extern ProtectedEntry *protection_listed(Oid relid, bool *none);
extern bool is_caredata_policy(const char *name);
extern bool row_security_applies(Oid role);

#endif							/* CAREDATA_PROTECTION_H */
