/*-------------------------------------------------------------------------
 *
 * postcode.h
 *		UK postcodes as other concerns (linkage) see them.
 *
 * src/postcode.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_POSTCODE_H
#define CAREDATA_POSTCODE_H

/* outward (<= 4) + space + inward (3) + NUL */
#define POSTCODE_MAX_LEN	9

/*
 * Canonical form ("SW1A 1AA") of str into out (POSTCODE_MAX_LEN bytes);
 * *outward_len receives the outward code's length.  False when str cannot
 * be a UK postcode.
 */
extern bool postcode_canonical(const char *str, int len, char *out, int *outward_len);

#endif							/* CAREDATA_POSTCODE_H */
