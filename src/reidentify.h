/*-------------------------------------------------------------------------
 *
 * reidentify.h
 *		Re-identification: its setting and the worker that commits its
 *		audit entry before the answer (src/reidentify.c).
 *
 * src/reidentify.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_REIDENTIFY_H
#define CAREDATA_REIDENTIFY_H

#include "postgres.h"

extern void reidentify_init(void);

/* the background worker's entry point (bgw_function_name) */
extern PGDLLEXPORT void caredata_reidentify_worker_main(Datum main_arg);

#endif							/* CAREDATA_REIDENTIFY_H */
