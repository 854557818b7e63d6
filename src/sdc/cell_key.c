/*-------------------------------------------------------------------------
 *
 * cell_key.c
 *		The cell key method (cell_key.h): the p-table, the cell key of a
 *		table of people, and the perturbed count a policy publishes.
 *
 * For a count n of distinct people whose record keys sum to K:
 *
 *		cell key	k = K mod 256
 *		published	v = n + perturbation(row(n), k); suppressed when
 *					n > 0 and n or v is at most suppress_max (a true
 *					count 1 .. suppress_max is never shown, and the
 *					threshold moves with the people, so that padding a
 *					cell with made-up people does not find it), else v
 *					rounded as the policy says; 0 people: as the p-table's row for 0 says (0
 *					in the default), NULL when the policy protects zeros
 *
 * A sum of the people's contributions is rounded at random to the policy's
 * magnitude step (sdc_magnitude_step), up with the probability of its
 * fractional part (unbiased), the draw taken from the people's record keys
 * too (all 64 bits of their sum, mixed): the same people, the same sum;
 * one person more or less, an unrelated draw.
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

#include <math.h>

#include "cell_key.h"

uint64
sdc_key_sum(const PersonTable *pt)
{
	uint64		sum = 0;

	if (pt == NULL)
		return 0;
	for (int32 i = 0; i < pt->capacity; i++)
		sum += PT_KEYS(pt)[i];	/* empty slots and key 0 add nothing */
	return sum;
}

uint32
sdc_cell_key(const PersonTable *pt)
{
	return (uint32) (sdc_key_sum(pt) % SDC_CELL_KEY_RANGE);
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
	row = t->row_of[Min(n, (int64) SDC_PTABLE_MAX_COUNT)];
	v = n + (row < 0 ? 0 : t->perturbation[row * SDC_CELL_KEY_RANGE + cell_key % SDC_CELL_KEY_RANGE]);
	if (v < 0)
		elog(ERROR, "cell key perturbation below zero");
	if (n > 0 && (n <= policy->suppress_max || v <= policy->suppress_max) && policy->suppress_max > 0)
		return false;
	*shown = sdc_round_count(policy, v);
	return true;
}

/* the draw for a sum: the people's record keys summed in full, mixed (SplitMix64's finaliser) */
static uint64
sdc_magnitude_key(uint64 key_sum)
{
	uint64		z = key_sum + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

double
sdc_publish_sum(const SdcPolicy *policy, uint64 key_sum, double sum)
{
	double		step;
	double		u;

	if (policy->ptable == NULL)
		return sdc_publish_magnitude(policy, sum);
	if (policy->magnitude_digits <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("disclosure-control policy \"%s\" perturbs counts by the cell key method but does not protect sums", policy->name),
				 errdetail("The policy sets no magnitude_digits, so a sum would be shown exactly."),
				 errhint("Ask caredata_admin for a version of the policy with magnitude_digits.")));
	step = sdc_magnitude_step(policy, sum);
	if (step <= 0.0)
		return sum;				/* 0 (or not finite) */
	u = (double) (sdc_magnitude_key(key_sum) >> 11) * (1.0 / 9007199254740992.0);	/* [0, 1) */
	return floor(sum / step + u) * step;
}
