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

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"

#define NHS_MISSING		0
#define NHS_DIFFERENT	1
#define NHS_CLOSE		2
#define NHS_EXACT		3

/* defines caredata.link_progress (progress.c); called by _PG_init */
extern void linkage_init(void);

/* level of two NHS numbers given as ten digits each (valid or not) */
extern int	link_nhs_level(int64 a, bool a_valid, int64 b, bool b_valid);

/*
 * The string measures, for the name comparators (names.c): a text as
 * characters (an error beyond the comparators' length limit), Jaro-Winkler
 * similarity, optimal string alignment distance, and a thresholds array
 * (one dimension, no NULL, at most 14) as Datums of elemtype.
 */
extern pg_wchar *link_text_chars(text *t, int *len);
extern double link_jaro_winkler(const pg_wchar *a, int la, const pg_wchar *b, int lb);
extern int	link_damerau_levenshtein(const pg_wchar *a, int la, const pg_wchar *b, int lb);
extern void link_thresholds_arg(ArrayType *arr, Oid elemtype, Datum **values, int *n);
/* argument argno of a comparator (an error when NULL) as n doubles */
extern void link_thresholds_float8(FunctionCallInfo fcinfo, int argno, Datum **th, int *n);

#endif							/* CAREDATA_LINKAGE_COMPARE_H */
