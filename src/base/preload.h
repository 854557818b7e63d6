/*-------------------------------------------------------------------------
 *
 * preload.h
 *		Whether caredata was loaded at server start, for the concerns that
 *		depend on it (src/caredata.c).
 *
 * Only a library named in shared_preload_libraries has its executor hooks
 * (the objection filter's context, EXPLAIN's guard), its shared memory and
 * its superuser-only settings (caredata.key_file, the re-identification
 * limit) in place in every connection before the first query.  Loaded
 * later, by the first call of one of its functions, it would filter with
 * the hooks missing for the statement that loaded it, and leave its
 * settings, until then, placeholders any role can read or set.  So what
 * depends on it refuses at once, with a hint naming
 * shared_preload_libraries: caredata_require_preload().
 *
 * src/base/preload.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_PRELOAD_H
#define CAREDATA_PRELOAD_H

/* set by _PG_init: true when the postmaster loaded the library */
extern bool caredata_preloaded;

extern void caredata_preload_error(void) pg_attribute_noreturn();

/* cheap enough for a row filter: one test of a flag */
static inline void
caredata_require_preload(void)
{
	if (unlikely(!caredata_preloaded))
		caredata_preload_error();
}

#endif							/* CAREDATA_PRELOAD_H */
