/*-------------------------------------------------------------------------
 *
 * nhs_number.h
 *		The nhs_number type as other concerns see it.
 *
 * An nhs_number Datum is an int8 holding the ten digits (check digit last),
 * always valid: every way in (text, binary, bigint) validates.
 *
 * src/nhs_number.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_NHS_NUMBER_H
#define CAREDATA_NHS_NUMBER_H

#include "fmgr.h"

#define NHS_NUMBER_DIGITS		10
#define NHS_NUMBER_TEXT_LEN		13	/* "943 476 5919" plus NUL */

#define DatumGetNhsNumber(X)		DatumGetInt64(X)
#define NhsNumberGetDatum(X)		Int64GetDatum(X)
#define PG_GETARG_NHS_NUMBER(n)		DatumGetNhsNumber(PG_GETARG_DATUM(n))
#define PG_RETURN_NHS_NUMBER(x)		return NhsNumberGetDatum(x)

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

#endif							/* CAREDATA_NHS_NUMBER_H */
