/*
 * src/linkage/keys.h
 *
 * Keys compared as bytes: shared by the blocking engine (block.c) and the
 * value counts (frequency.c).
 */
#ifndef CAREDATA_LINKAGE_KEYS_H
#define CAREDATA_LINKAGE_KEYS_H

extern bool link_bytewise_type(Oid type, Oid coll);

#endif
