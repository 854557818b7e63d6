/*-------------------------------------------------------------------------
 *
 * register.c
 *		The objection register as the filter reads it: who reads it (its
 *		owner), which installation it is (its identity) and at which
 *		version.
 *
 * The bottom of the objection filter, with register_probe.c: everything
 * above reads the register through these, as its owner (register.h,
 * AS_REGISTER_OWNER), with search_path pinned.
 *
 * src/objection/register.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "executor/spi.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "register.h"

/*
 * The register is read as the owner of schema caredata (the extension's
 * owner), not as the querying role: permitted() answers yes or no for one
 * patient and must not need, or give, read access to the register itself.
 */
Oid
objection_register_owner(void)
{
	Oid			nsp = get_namespace_oid("caredata", false);
	HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for schema caredata");
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/* the version, and the table's OID (the register's identity) in *reg */
static int64
register_version_internal(Oid *reg)
{
	bool		isnull;
	int64		v;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT version, tableoid FROM caredata.register_version", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "caredata.register_version must hold one row");
	v = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*reg = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	SPI_finish();
	return v;
}


int64
register_version(Oid *reg)
{
	int64		v = 0;

	AS_REGISTER_OWNER(v = register_version_internal(reg));
	return v;
}

Oid
objection_register_identity(void)
{
	Oid			nsp = get_namespace_oid("caredata", true);

	return OidIsValid(nsp) ? get_relname_relid("register_version", nsp) : InvalidOid;
}

