/*
 * src/linkage/id_map.h
 *
 * A map of bigint ids to bigint values in memory, filled once and then
 * read (id_map.c): the person ids of a run's records (cluster_table.c) and
 * of its clusters (person_index.c).  Held as an array indexed by id where
 * the ids lie close together (at most four slots an id; 9 bytes a slot),
 * else as (id, value) pairs sorted by id and searched, the search starting
 * just after the last id found (ids read in about their order are found at
 * once).  At most maintenance_work_mem.
 */
#ifndef CAREDATA_LINKAGE_ID_MAP_H
#define CAREDATA_LINKAGE_ID_MAP_H

typedef struct IdPair
{
	int64		id;
	int64		value;
} IdPair;

typedef struct IdMap
{
	/* while filling, and the sorted form */
	IdPair	   *pairs;
	int64		n;
	int64		cap;
	bool		sorted;
	int64		lo;
	int64		hi;
	int64		cursor;
	/* the dense form: value[id - lo] where has[id - lo] */
	int64	   *value;
	bool	   *has;
	/* the error past maintenance_work_mem, with its hint */
	const char *what;
	const char *hint;
} IdMap;

/* what: "reading ... into memory" for the error past the memory limit */
extern void id_map_init(IdMap *m, const char *what, const char *hint);
extern void id_map_add(IdMap *m, int64 id, int64 value);

/* filled: an id given twice is an error with the message given */
extern void id_map_finish(IdMap *m, const char *twice);
extern bool id_map_get(IdMap *m, int64 id, int64 *value);

#endif
