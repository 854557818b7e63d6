/*-------------------------------------------------------------------------
 *
 * citus.h
 *		caredata's own catalog reads on a Citus node (src/citus/citus.c).
 *
 * src/citus/citus.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CAREDATA_CITUS_H
#define CAREDATA_CITUS_H

/* allow Citus to run caredata's catalog reads inside a shard task; -1: no Citus */
extern int	citus_nested_begin(void);
extern void citus_nested_end(int level);

/*
 * The relation holding this node's rows of caredata.<table>, or of its
 * index or other relation relname: relname itself on one node, its
 * placement relname_<shardid> when caredata.citus_setup() made the table a
 * reference table.  Runs SPI.
 */
extern Oid	catalog_local_relid(const char *table, const char *relname);

/* has caredata.citus_setup() made caredata.<table> a reference table? Runs SPI. */
extern bool catalog_is_citus(const char *table);

#endif							/* CAREDATA_CITUS_H */
