/*-------------------------------------------------------------------------
 *
 * identifiers.h
 *		The identifier types as other concerns (keys, the objection
 *		filter, linkage) see them: nhs_number, postcode, sex.
 *
 * An nhs_number Datum is an int8 holding the ten digits (check digit last),
 * always valid: every way in (text, binary, bigint) validates.
 *
 * src/identifiers/identifiers.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_IDENTIFIERS_H
#define CAREDATA_IDENTIFIERS_H

#include "fmgr.h"

#define NHS_NUMBER_DIGITS		10
#define NHS_NUMBER_TEXT_LEN		13	/* "943 476 5919" plus NUL */

#define DatumGetNhsNumber(X)		DatumGetInt64(X)
#define NhsNumberGetDatum(X)		Int64GetDatum(X)
#define PG_GETARG_NHS_NUMBER(n)		DatumGetNhsNumber(PG_GETARG_DATUM(n))
#define PG_RETURN_NHS_NUMBER(x)		return NhsNumberGetDatum(x)

/* fills the Modulus 11 check's tables: _PG_init, once */
extern void nhs_number_init(void);
/* parse text (any accepted layout); false if it is not a valid NHS number */
extern bool nhs_number_parse_text(text *t, int64 *result);

/* ten digits in an accepted layout, valid or not (for linkage) */
extern bool nhs_number_digits(const char *str, int len, int64 *digits, bool *valid);

/* Modulus 11 and the other validity rules on ten digits held as an integer */
extern bool nhs_number_value_is_valid(int64 value);

/*
 * The checks of the nhs_number type's ways in, raising its errors (which
 * never show the value): text as nhs_number_in reads it, a bigint as the
 * bigint -> nhs_number cast checks it.
 */
extern int64 nhs_number_from_text_or_error(text *t);
extern int64 nhs_number_from_int8_or_error(int64 value);

/* postcodes: outward (<= 4) + space + inward (3) + NUL */
#define POSTCODE_MAX_LEN	9

/*
 * Canonical form ("SW1A 1AA") of str into out (POSTCODE_MAX_LEN bytes);
 * *outward_len receives the outward code's length.  False when str cannot
 * be a UK postcode.
 */
extern bool postcode_canonical(const char *str, int len, char *out, int *outward_len);

/* stated gender: "1", "2", "9" or "X" for a recognised spelling; NULL otherwise */
extern const char *sex_lookup(text *t);

#endif							/* CAREDATA_IDENTIFIERS_H */
