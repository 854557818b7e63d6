/*-------------------------------------------------------------------------
 *
 * qual_eval.h
 *		A sequential scan's objection filter answered without a function
 *		call (src/objection/qual_eval.c).
 *
 * src/objection/qual_eval.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_QUAL_EVAL_H
#define CAREDATA_QUAL_EVAL_H

#include "executor/execExpr.h"
#include "nodes/execnodes.h"

#include "scan_lookahead.h"

extern void qual_eval_init(void);
extern void qual_eval_attach(ScanState *ss, ExprState *qual, ExprEvalStep *op,
							 const ScanLookahead *la);

#endif							/* CAREDATA_QUAL_EVAL_H */
