/*
 * src/linkage/score.h
 *
 * Pattern weights held as a dense table (score.c): link_weight() and the
 * run's links written in C (pair_rows.c) read a pair's weight from it.
 */
#ifndef CAREDATA_LINKAGE_SCORE_H
#define CAREDATA_LINKAGE_SCORE_H

#include "utils/array.h"

typedef struct WeightTable
{
	int			n;
	double		w[FLEXIBLE_ARRAY_MEMBER];
} WeightTable;

extern WeightTable *link_weight_table(ArrayType *a, MemoryContext mcxt);

/* weights[pattern + 1] + tf_adj, as link_weight() gives it */
extern double link_pattern_weight(const WeightTable *t, int32 pattern, double tf_adj);

#endif
