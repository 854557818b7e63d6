/*-------------------------------------------------------------------------
 *
 * sex.h
 *		Stated gender codes as other concerns (linkage) see them.
 *
 * src/sex.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SEX_H
#define CAREDATA_SEX_H

#include "fmgr.h"

/* "1", "2", "9" or "X" for a recognised spelling; NULL otherwise */
extern const char *sex_lookup(text *t);

#endif							/* CAREDATA_SEX_H */
