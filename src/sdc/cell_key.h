/*-------------------------------------------------------------------------
 *
 * cell_key.h
 *		The cell key method: counts of people perturbed by a p-table looked
 *		up by (true count, cell key).
 *
 * A cell's key is the sum of its distinct people's record keys
 * (record_key.h) modulo SDC_CELL_KEY_RANGE; a policy whose cell_key_ptable
 * names a p-table (caredata.sdc_ptable) publishes n + perturbation(n, key).
 * The same people always give the same answer; people sets that differ by
 * one person get unrelated cell keys.  Method: Australian Bureau of
 * Statistics, TableBuilder (Fraser and Wooton 2005; Thompson, Broadfoot and
 * Elazar 2013); ONS, Census 2021 outputs.
 *
 * src/sdc/cell_key.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SDC_CELL_KEY_H
#define CAREDATA_SDC_CELL_KEY_H

#include "person_table.h"
#include "policy.h"
#include "ptable.h"

/* the sum of a table's record keys, modulo 2^64 (NULL: nobody, 0) */
extern uint64 sdc_key_sum(const PersonTable *pt);

/* the cell key of a table of people (NULL: nobody): its key sum modulo the range */
extern uint32 sdc_cell_key(const PersonTable *pt);

/*
 * what the policy publishes of a count of the people in pt (n of them;
 * pt NULL when there are none): the cell key method when the policy names
 * a p-table, else sdc_publish_count
 */
extern bool sdc_publish_people(const SdcPolicy *policy, const PersonTable *pt, int64 n, int64 *shown);

/* the same for a count of n people whose cell key is known (a subset's) */
extern bool sdc_publish_keyed(const SdcPolicy *policy, int64 n, uint32 cell_key, int64 *shown);

/*
 * what the policy publishes of a sum of the people's contributions (one
 * that may be published): under the cell key method rounded at random to
 * the magnitude step, the draw taken from the people's record keys; else
 * sdc_publish_magnitude.  Refused (0A000) under a cell key policy that
 * does not round sums.  key_sum: sdc_key_sum() of the people.
 */
extern double sdc_publish_sum(const SdcPolicy *policy, uint64 key_sum, double sum);

#endif							/* CAREDATA_SDC_CELL_KEY_H */
