/*-------------------------------------------------------------------------
 *
 * caredata.c
 *		Module entry point: the magic block and _PG_init.
 *
 * Owns what is common to the whole library and nothing else: the magic
 * block and _PG_init, which notes whether the library was loaded at server
 * start (base/preload.h) and has each pillar define its settings and
 * callbacks; src/hooks.c installs every hook.  Each pillar (identifiers,
 * keys, objection, linkage, sdc, variation, publication, citus) lives in
 * a folder of its own under src/, C and SQL side by side.
 *
 * src/caredata.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "base/preload.h"
#include "hooks.h"
#include "identifiers/identifiers.h"
#include "keys/keys.h"
#include "linkage/compare.h"
#include "objection/objection.h"
#include "publication/publication.h"
#include "sdc/policy.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	/* a backend forked by the postmaster inherits the postmaster's answer */
	caredata_preloaded = process_shared_preload_libraries_in_progress;
	/* settings are defined by the files that own them; reserve the prefix */
	nhs_number_init();
	keys_init();
	hooks_init();
	objection_init();
	linkage_init();
	sdc_policy_init();
	reidentify_init();
	audit_init();
	MarkGUCPrefixReserved("caredata");
}
