/*-------------------------------------------------------------------------
 *
 * search_path.h
 *		Pin search_path while caredata's C code runs SQL.
 *
 * SQL that C code runs through SPI is parsed under the session's
 * search_path, which is the caller's to set: a role that owns a schema
 * can put operators, functions and types there that shadow pg_catalog's
 * (an exact argument-type match wins over pg_catalog's implicit
 * coercion), and run them with whatever rights the statement runs with.
 * Code that runs SQL as another role (the register's owner:
 * AS_REGISTER_OWNER in objection/register.h) therefore pins search_path to
 * "pg_catalog, pg_temp" for its duration, as PostgreSQL 17's maintenance
 * commands do with RestrictSearchPath(), and the SQL itself names every
 * relation, function, type and operator with its schema
 * (test/security/search_path_lint.sh checks the strings).  pg_temp, last,
 * is never searched for functions or operators.
 *
 * The setting is pushed in its own GUC nest level: search_path_unpin()
 * pops it, and an error pops it with the (sub)transaction, as
 * fmgr_security_definer() relies on for a function's SET clause.
 *
 * src/base/search_path.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SEARCH_PATH_H
#define CAREDATA_SEARCH_PATH_H

#include "utils/guc.h"

#define CAREDATA_PINNED_SEARCH_PATH "pg_catalog, pg_temp"

/* push a GUC nest level holding the pinned search_path; returns the level */
static inline int
search_path_pin(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("search_path", CAREDATA_PINNED_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

/* pop what search_path_pin() pushed (and any level pushed after it) */
static inline void
search_path_unpin(int level)
{
	AtEOXact_GUC(true, level);
}

#endif							/* CAREDATA_SEARCH_PATH_H */
