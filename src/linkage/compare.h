/*-------------------------------------------------------------------------
 *
 * compare.h
 *		Comparison levels other linkage concerns reuse.
 *
 * src/linkage/compare.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_LINKAGE_COMPARE_H
#define CAREDATA_LINKAGE_COMPARE_H

#define NHS_MISSING		0
#define NHS_DIFFERENT	1
#define NHS_CLOSE		2
#define NHS_EXACT		3

/* defines caredata.link_progress (progress.c); called by _PG_init */
extern void linkage_init(void);

/* level of two NHS numbers given as ten digits each (valid or not) */
extern int	link_nhs_level(int64 a, bool a_valid, int64 b, bool b_valid);

#endif							/* CAREDATA_LINKAGE_COMPARE_H */
