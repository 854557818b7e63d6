/*-------------------------------------------------------------------------
 *
 * publication.h
 *		The publication pillar as the rest of the library sees it: the
 *		audit log's witness (audit.c) and re-identification's worker
 *		(reidentify.c).  publish() itself is SQL (publication.sql).
 *
 * src/publication/publication.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_PUBLICATION_H
#define CAREDATA_PUBLICATION_H

#include "postgres.h"

extern void audit_init(void);

/* whether this transaction appended an entry still to be committed */
extern bool audit_appended_in_transaction(void);

extern void reidentify_init(void);

/* the background worker's entry point (bgw_function_name) */
extern PGDLLEXPORT void caredata_reidentify_worker_main(Datum main_arg);

#endif							/* CAREDATA_PUBLICATION_H */
