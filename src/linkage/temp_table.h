/*
 * src/linkage/temp_table.h
 *
 * C readers and writers of the session's own temporary tables (the working
 * tables of a linkage run): frequency.c, persons.c and cluster_table.c read
 * them, block.c and cluster_table.c write them; and the batch writer that
 * they and person_index.c write with.
 */
#ifndef CAREDATA_LINKAGE_TEMP_TABLE_H
#define CAREDATA_LINKAGE_TEMP_TABLE_H

#include "access/heapam.h"
#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "utils/rel.h"

extern Relation link_open_temp(Oid relid, const char *reader);
extern Relation link_open_table(Oid relid, const char *reader);
extern AttrNumber link_temp_column(Relation rel, const char *colname, Oid type);
extern Relation link_open_temp_target(Oid relid, const char *writer);
extern void link_check_insertable(Relation rel, const char *who);
extern Relation link_open_direct_target(Oid relid, const char *who, int ncols, int nsupplied,
										const char *const *names, const Oid *types, AttrNumber *attnos);
extern void link_check_not_null(Relation rel, TupleTableSlot *slot);

/*
 * Rows written a batch at a time (table_multi_insert): take a cleared slot
 * with link_writer_next(), fill and store it, then link_writer_done().
 * What each batch's insert allocates is freed after it (as COPY does):
 * heap_multi_insert leaves its tuples in the current memory context.
 */
typedef struct LinkWriter
{
	Relation	rel;
	TupleTableSlot **slots;
	int			n;
	int			cap;
	CommandId	cid;
	BulkInsertState bistate;
	MemoryContext batch;
	/* a table with indexes: their entries made after each batch */
	EState	   *estate;
	ResultRelInfo *rri;
} LinkWriter;

extern void link_writer_begin(LinkWriter *w, Relation rel, int batch);
extern void link_writer_begin_indexed(LinkWriter *w, Relation rel, int batch);
extern TupleTableSlot *link_writer_next(LinkWriter *w);
extern void link_writer_done(LinkWriter *w);
extern void link_writer_end(LinkWriter *w);

#endif
