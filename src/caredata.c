/*-------------------------------------------------------------------------
 *
 * caredata.c
 *		Module entry point: the magic block and _PG_init.
 *
 * Owns what is common to the whole library and nothing else.  Each concern
 * (identifiers, keys, pseudonyms, objections, ...) lives in its own file
 * under src/, with the SQL that declares it beside it.
 *
 * src/caredata.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "executor_hooks.h"
#include "keys.h"
#include "parallel_set.h"
#include "protection.h"
#include "scan_lookahead.h"
#include "shared_set.h"
#include "reidentify.h"
#include "sdc/policy.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	/* settings are defined by the files that own them; reserve the prefix */
	keys_init();
	executor_hooks_init();
	protection_init();
	scan_lookahead_init();
	parallel_set_init();
	shared_set_init();
	sdc_policy_init();
	reidentify_init();
	MarkGUCPrefixReserved("caredata");
}
