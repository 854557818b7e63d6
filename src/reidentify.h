/*-------------------------------------------------------------------------
 *
 * reidentify.h
 *		The re-identification setting (src/reidentify.c).
 *
 * src/reidentify.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_REIDENTIFY_H
#define CAREDATA_REIDENTIFY_H

extern void reidentify_init(void);

#endif							/* CAREDATA_REIDENTIFY_H */
