/*-------------------------------------------------------------------------
 *
 * ptable.c
 *		The cell key method's p-tables (caredata.sdc_ptable), read and
 *		checked for a policy that names one (policy.c loads it with the
 *		policy; cell_key.c applies it).
 *
 * A p-table is loaded once per query and checked: every row covers the
 * cell keys 0..255 exactly once, and no perturbation takes a count below 0.
 *
 * src/sdc/ptable.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "base/search_path.h"
#include "citus/citus.h"
#include "ptable.h"

static void
bad_ptable(const char *name, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("p-table \"%s\" of the cell key method is not usable", name),
			 errdetail("%s", detail),
			 errhint("caredata_admin must give every listed count one perturbation for each cell key 0 to 255 in caredata.sdc_ptable.")));
}

const SdcPTable *
sdc_ptable_load(const char *name, MemoryContext mcxt)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	int			ret;
	int			nested;
	int			path;
	int32		counts[SDC_PTABLE_MAX_COUNT + 1];
	int			nrows = 0;
	int			max_count = -1;
	SdcPTable  *pt;
	bool	   *filled;

	args[0] = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* on Citus the catalog is a reference table, read in a shard task too */
	path = search_path_pin();
	nested = citus_nested_begin();
	ret = SPI_execute_with_args("SELECT count_value, key_min, key_max, perturbation FROM caredata.sdc_ptable "
								"WHERE ptable OPERATOR(pg_catalog.=) $1 ORDER BY count_value, key_min",
								1, argtypes, args, NULL, true, 0);
	citus_nested_end(nested);
	search_path_unpin(path);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read caredata.sdc_ptable: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("p-table \"%s\" of the cell key method does not exist", name),
				 errhint("See caredata.sdc_ptable for the p-tables.")));

	/* the distinct counts, in order: one row each */
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int32		c = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

		if (isnull || c < 0 || c > SDC_PTABLE_MAX_COUNT)
			bad_ptable(name, "A count is outside 0 to 1000.");
		if (c != max_count)
		{
			counts[nrows++] = c;
			max_count = c;
		}
	}
	pt = MemoryContextAllocZero(mcxt, offsetof(SdcPTable, perturbation) + sizeof(int16) * SDC_CELL_KEY_RANGE * nrows);
	filled = palloc0(sizeof(bool) * SDC_CELL_KEY_RANGE * nrows);
	pt->max_count = max_count;
	for (uint64 i = 0, row = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		n1,
					n2,
					n3;
		int32		c = DatumGetInt32(SPI_getbinval(tup, desc, 1, &n1));
		int32		lo = DatumGetInt32(SPI_getbinval(tup, desc, 2, &n1));
		int32		hi = DatumGetInt32(SPI_getbinval(tup, desc, 3, &n2));
		int32		d = DatumGetInt32(SPI_getbinval(tup, desc, 4, &n3));

		while (counts[row] != c)
			row++;
		if (n1 || n2 || n3 || lo < 0 || hi >= SDC_CELL_KEY_RANGE || lo > hi || d < -c || d > PG_INT16_MAX)
			bad_ptable(name, psprintf("The row for count %d has a key range outside 0 to 255 or takes the count below 0.", c));
		for (int32 k = lo; k <= hi; k++)
		{
			if (filled[row * SDC_CELL_KEY_RANGE + k])
				bad_ptable(name, psprintf("Count %d gives cell key %d two perturbations.", c, k));
			filled[row * SDC_CELL_KEY_RANGE + k] = true;
			pt->perturbation[row * SDC_CELL_KEY_RANGE + k] = (int16) d;
		}
	}
	for (int row = 0; row < nrows; row++)
		for (int k = 0; k < SDC_CELL_KEY_RANGE; k++)
			if (!filled[row * SDC_CELL_KEY_RANGE + k])
				bad_ptable(name, psprintf("Count %d gives cell key %d no perturbation.", counts[row], k));
	for (int32 c = 0, row = -1; c <= SDC_PTABLE_MAX_COUNT; c++)
	{
		if (row + 1 < nrows && counts[row + 1] == c)
			row++;
		pt->row_of[c] = row;
	}
	pfree(filled);
	SPI_finish();
	return pt;
}

/* the sum of the record keys modulo the key range: empty cells have key 0 */
