/*
 * src/linkage/temp_read.h
 *
 * A C reader of one of the session's own temporary tables (the working
 * tables of a linkage run): frequency.c and persons.c.
 */
#ifndef CAREDATA_LINKAGE_TEMP_READ_H
#define CAREDATA_LINKAGE_TEMP_READ_H

#include "utils/rel.h"

extern Relation link_open_temp(Oid relid, const char *reader);
extern AttrNumber link_temp_column(Relation rel, const char *colname, Oid type);

#endif
