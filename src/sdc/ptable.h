/*-------------------------------------------------------------------------
 *
 * ptable.h
 *		The cell key method's p-tables (src/sdc/ptable.c).
 *
 * src/sdc/ptable.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SDC_PTABLE_H
#define CAREDATA_SDC_PTABLE_H

#define SDC_CELL_KEY_RANGE	256		/* cell keys 0 .. 255 */
#define SDC_PTABLE_MAX_COUNT 1000

/* a loaded p-table: perturbation by (row, cell key) */
typedef struct SdcPTable
{
	int32		max_count;		/* the largest true count with a row */
	int32		row_of[SDC_PTABLE_MAX_COUNT + 1];	/* row used for each count, -1: none */
	int16		perturbation[FLEXIBLE_ARRAY_MEMBER];	/* [row * 256 + key] */
} SdcPTable;

/* the p-table named, read from caredata.sdc_ptable into mcxt (checked) */
extern const SdcPTable *sdc_ptable_load(const char *name, MemoryContext mcxt);

#endif							/* CAREDATA_SDC_PTABLE_H */
