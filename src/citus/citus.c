/*-------------------------------------------------------------------------
 *
 * citus.c
 *		caredata's own catalog reads on a Citus node (docs/scale-out.md).
 *
 * caredata.citus_setup() makes the catalogs a query reads (the register,
 * exemptions, subject access, key domains, disclosure policies, protected
 * distributed tables) Citus reference tables: one placement on every node,
 * changed on all of them in one two-phase commit.  Two things then differ
 * from one node:
 *
 *	- Inside a shard task (a worker running its part of a distributed
 *	  query) Citus refuses any query that is itself distributed unless
 *	  citus.allow_nested_distributed_execution is on.  caredata's reads of
 *	  its reference tables are such queries; they read the node's own
 *	  placement (Citus's local execution), so caredata allows nesting for
 *	  its own reads only, for their duration (citus_nested_begin/end).
 *	- In a parallel worker PostgreSQL reports every query as inside a
 *	  transaction block (TBLOCK_PARALLEL_INPROGRESS), so Citus opens a
 *	  coordinated transaction for caredata's reference-table reads there
 *	  (citus.select_opens_transaction_block), which the worker cannot
 *	  commit: "cannot use 2PC in transactions involving multiple servers"
 *	  (issue 27).  The reads are local and read-only and need none: in a
 *	  parallel worker caredata turns that setting off for them too.  The
 *	  filter reads the same rows under the same snapshot either way.
 *	- The table named caredata.objection is a shell: the rows are in its
 *	  placement, caredata.objection_<shardid>.  What caredata reads by OID
 *	  (the register probe's index scan) must open the placement:
 *	  catalog_local_relid() finds it, and refuses when this node has none
 *	  (an empty shell would block no one).
 *
 * Nothing here links to Citus: it reads Citus's catalogs by name, and on a
 * server without Citus every function is a no-op.
 *
 * src/citus/citus.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "citus.h"
#include "base/search_path.h"

#define NESTED_GUC "citus.allow_nested_distributed_execution"
#define SELECT_BLOCK_GUC "citus.select_opens_transaction_block"

/* is Citus's metadata in this database? */
static bool
citus_metadata_present(void)
{
	return OidIsValid(get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE));
}

int
citus_nested_begin(void)
{
	/* Citus is preloaded or absent for the life of the backend */
	static int	citus_loaded = -1;
	int			level;

	if (citus_loaded < 0)
		citus_loaded = GetConfigOption(NESTED_GUC, true, false) != NULL;
	if (!citus_loaded)
		return -1;
	level = NewGUCNestLevel();
	(void) set_config_option(NESTED_GUC, "on", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/* a parallel worker cannot commit a coordinated transaction (above) */
	if (IsParallelWorker())
		(void) set_config_option(SELECT_BLOCK_GUC, "off", PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

void
citus_nested_end(int level)
{
	if (level >= 0)
		AtEOXact_GUC(true, level);
}

/*
 * The shard id of caredata.<relname> when Citus distributes it (a reference
 * table), else 0.  Runs SPI: call it connected or not (it connects).
 */
static int64
catalog_shard(Oid relid)
{
	Oid			argtypes[1] = {REGCLASSOID};
	Datum		values[1];
	int64		shard = 0;
	bool		isnull;
	int			path;

	if (!citus_metadata_present())
		return 0;
	values[0] = ObjectIdGetDatum(relid);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	path = search_path_pin();
	if (SPI_execute_with_args("SELECT shardid FROM pg_catalog.pg_dist_shard "
							  "WHERE logicalrelid OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, true, 2) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_dist_shard");
	if (SPI_processed > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("caredata's catalog \"%s\" is distributed in more than one shard",
						get_rel_name(relid)),
				 errhint("caredata.citus_setup() makes caredata's catalogs reference tables; do not distribute them otherwise.")));
	if (SPI_processed == 1)
		shard = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	search_path_unpin(path);
	SPI_finish();
	return shard;
}

Oid
catalog_local_relid(const char *table, const char *relname)
{
	Oid			nsp = get_namespace_oid("caredata", false);
	Oid			relid = get_relname_relid(table, nsp);
	int64		shard;
	Oid			local;
	char		name[NAMEDATALEN * 2];

	if (!OidIsValid(relid))
		elog(ERROR, "caredata's catalog \"%s\" is missing", table);
	shard = catalog_shard(relid);
	if (shard == 0)
		return get_relname_relid(relname, nsp);
	snprintf(name, sizeof(name), "%s_" INT64_FORMAT, relname, shard);
	local = get_relname_relid(name, nsp);
	if (!OidIsValid(local))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this node holds no copy of caredata's catalog \"%s\"", table),
				 errdetail("It is a Citus reference table with no placement here."),
				 errhint("Run SELECT replicate_reference_tables('block_writes') on the coordinator, then caredata.citus_check().")));
	return local;
}

bool
catalog_is_citus(const char *table)
{
	Oid			relid = get_relname_relid(table, get_namespace_oid("caredata", false));

	return OidIsValid(relid) && catalog_shard(relid) != 0;
}
