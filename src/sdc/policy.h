/*-------------------------------------------------------------------------
 *
 * policy.h
 *		Disclosure-control policies as the aggregates see them.
 *
 * What may be shown (src/sdc/policy.c, the caredata.sdc_policy catalog and
 * the caredata.sdc_policy setting) is kept apart from what is computed
 * (src/sdc/person_set.c): an aggregate counts, then asks the policy what of
 * the count it may publish.
 *
 * src/sdc/policy.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SDC_POLICY_H
#define CAREDATA_SDC_POLICY_H

#include "fmgr.h"

typedef enum SdcRounding
{
	SDC_ROUND_NONE,
	SDC_ROUND_NEAREST,			/* to the nearest multiple of base, halves up */
	SDC_ROUND_MIDPOINT			/* ceil(x / base) * base - base / 2 */
} SdcRounding;

typedef struct SdcPolicy
{
	char		name[NAMEDATALEN];
	int32		version;
	int64		suppress_max;	/* counts 1 .. suppress_max are suppressed */
	bool		protect_zero;	/* 0 is suppressed too */
	SdcRounding rounding;
	int32		base;
	char		redacted[NAMEDATALEN];	/* how a suppressed value displays */
	int32		dominance_n;	/* (n, k) rule: the n largest contributors */
	double		dominance_k;	/* ... may not hold more than k % (0: off) */
	double		p_percent;		/* p % rule (0: off) */
	int32		magnitude_digits;	/* sums to this many significant figures (0: exact) */
	/* the cell key method (cell_key.h): the p-table named, "" for none */
	char		cell_key_ptable[NAMEDATALEN];
	const struct SdcPTable *ptable; /* loaded with the policy */
} SdcPolicy;

/*
 * The policy named (NULL: the caredata.sdc_policy setting), cached in
 * flinfo->fn_extra for the rest of the query.
 */
extern const SdcPolicy *sdc_policy_get(FmgrInfo *flinfo, const char *name);

/* what a policy publishes of a count of people: false when suppressed */
extern bool sdc_publish_count(const SdcPolicy *policy, int64 n, int64 *shown);

/* a count rounded as the policy rounds counts (0 stays 0) */
extern int64 sdc_round_count(const SdcPolicy *policy, int64 n);

/*
 * whether a policy publishes a statistic (a sum, a mean) of people's
 * contributions: people contributed, largest their absolute contributions
 * (largest first, at least two entries, zero-padded), total the sum of all
 * absolute contributions
 */
extern bool sdc_publish_contributions(const SdcPolicy *policy, int64 people,
									  const double *largest, int nlargest, double total);

/*
 * what a policy publishes of a sum of contributions that may be published
 * (sdc_publish_contributions): rounded to magnitude_digits significant
 * figures, never finer than the count rounding base
 */
extern double sdc_publish_magnitude(const SdcPolicy *policy, double sum);

/* the unit sums are rounded to (0: published exactly) */
extern double sdc_magnitude_step(const SdcPolicy *policy, double sum);

/* a policy name: a lower-case letter, then lower-case letters, digits and _ */
extern bool sdc_policy_name_ok(const char *name);

extern void sdc_policy_init(void);


#endif							/* CAREDATA_SDC_POLICY_H */
