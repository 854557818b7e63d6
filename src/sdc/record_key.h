/*-------------------------------------------------------------------------
 *
 * record_key.h
 *		A person's record key: what the disclosure-control states hold
 *		instead of the person's value.
 *
 * The record key of a person is SipHash-2-4 of the person's bytes (a bigint
 * or nhs_number: its 8 bytes, little-endian; a pseudonym: its 24 bytes)
 * under the internal key "sdc_record_key", derived from the master secret
 * outside the database (src/keys/keys.h).  No SQL function computes it and
 * no role chooses its key, so the text of a state (person_set,
 * person_values) says nothing about who is in it.  Distinct people keep
 * distinct keys except with probability about n^2 / 2^65 for n people.
 *
 * src/sdc/record_key.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_SDC_RECORD_KEY_H
#define CAREDATA_SDC_RECORD_KEY_H

#define SDC_RECORD_KEY_LABEL	"sdc_record_key"

extern uint64 record_key_int8(int64 person);
extern uint64 record_key_bytes(const void *person, size_t len);

#endif							/* CAREDATA_SDC_RECORD_KEY_H */
