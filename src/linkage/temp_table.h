/*
 * src/linkage/temp_table.h
 *
 * C readers and writers of the session's own temporary tables (the working
 * tables of a linkage run): frequency.c and persons.c read them, block.c
 * writes the candidate pairs into one.
 */
#ifndef CAREDATA_LINKAGE_TEMP_TABLE_H
#define CAREDATA_LINKAGE_TEMP_TABLE_H

#include "utils/rel.h"

extern Relation link_open_temp(Oid relid, const char *reader);
extern Relation link_open_table(Oid relid, const char *reader);
extern AttrNumber link_temp_column(Relation rel, const char *colname, Oid type);
extern Relation link_open_temp_target(Oid relid, const char *writer);

#endif
