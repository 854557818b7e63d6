/*-------------------------------------------------------------------------
 *
 * init.c
 *		Setting up the objection filter at _PG_init.
 *
 * Each layer defines what it owns: the read-ahead and the Bloom layer
 * their settings, the filter functions' OID cache and the protected
 * tables' list their invalidation callbacks.  The hooks that call into
 * the filter are src/hooks.c's.
 *
 * src/objection/init.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "permitted.h"
#include "objection.h"
#include "protection.h"
#include "nhs_set.h"
#include "qual_eval.h"
#include "scan_lookahead.h"
#include "set_cache.h"
#include "blocked_rows.h"

void
objection_init(void)
{
	scan_lookahead_init();
	qual_eval_init();
	nhs_set_init();
	blocked_set_init();
	blocked_rows_init();
	objection_filter_functions_init();
	protection_init();
}
