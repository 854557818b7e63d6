/*-------------------------------------------------------------------------
 *
 * reidentify.c
 *		The re-identification rate limit setting.
 *
 * caredata.reidentify(pseudonym, justification) (src/reidentify.sql) answers
 * at most caredata.reidentify_per_hour times an hour for each login.  The
 * setting is superuser-only, so that a re-identifier cannot raise its own
 * limit; a DBA sets it per role with ALTER ROLE ... SET.
 *
 * src/reidentify.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "reidentify.h"

static int	reidentify_per_hour = 20;

void
reidentify_init(void)
{
	DefineCustomIntVariable("caredata.reidentify_per_hour",
							"How many re-identifications each login may make in an hour.",
							"0 refuses every re-identification.",
							&reidentify_per_hour,
							20, 0, 100000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
}
