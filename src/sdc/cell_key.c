/*-------------------------------------------------------------------------
 *
 * cell_key.c
 *		The cell key method (cell_key.h): the p-table, the cell key of a
 *		table of people, and the perturbed count a policy publishes.
 *
 * For a count n of distinct people whose record keys sum to K:
 *
 *		cell key	k = K mod 256
 *		published	n + perturbation(row(n), k), then rounded as the
 *					policy says; 0 people: as the p-table's row for 0
 *					says (0 in the default), NULL when the policy
 *					protects zeros; 1 .. suppress_max: suppressed
 *
 * row(n) is the p-table's row for the largest count <= n that has one (a
 * count below every row is not perturbed).  The p-table is loaded with the
 * policy (ptable.c, once per query, checked).
 *
 * src/sdc/cell_key.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cell_key.h"

uint32
sdc_cell_key(const PersonTable *pt)
{
	uint64		sum = 0;

	if (pt == NULL)
		return 0;
	for (int32 i = 0; i < pt->capacity; i++)
		sum += PT_KEYS(pt)[i];	/* empty slots and key 0 add nothing */
	return (uint32) (sum % SDC_CELL_KEY_RANGE);
}

bool
sdc_publish_people(const SdcPolicy *policy, const PersonTable *pt, int64 n, int64 *shown)
{
	return sdc_publish_keyed(policy, n, sdc_cell_key(pt), shown);
}

bool
sdc_publish_keyed(const SdcPolicy *policy, int64 n, uint32 cell_key, int64 *shown)
{
	const SdcPTable *t = policy->ptable;
	int32		row;
	int64		v;

	if (t == NULL)
		return sdc_publish_count(policy, n, shown);
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a count of people cannot be negative")));
	if (n == 0 && policy->protect_zero)
		return false;
	if (n > 0 && n <= policy->suppress_max)
		return false;
	row = t->row_of[Min(n, (int64) SDC_PTABLE_MAX_COUNT)];
	v = n + (row < 0 ? 0 : t->perturbation[row * SDC_CELL_KEY_RANGE + cell_key % SDC_CELL_KEY_RANGE]);
	if (v < 0)
		elog(ERROR, "cell key perturbation below zero");
	*shown = sdc_round_count(policy, v);
	return true;
}
