/*-------------------------------------------------------------------------
 *
 * audit.c
 *		The audit log's witness outside the database.
 *
 * Every append to caredata.audit_log (src/publication/audit.sql) calls
 * caredata._audit_witness(id, hash) with the new head.  When, and only
 * when, the transaction that appended commits, the newest head it wrote
 * goes to the server log as one line:
 *
 *	  LOG:  caredata audit head: database d, entry 42, hash 3fa9...
 *
 * The line names the database, the entry id and its hash: no login, no
 * action, no object, nothing about a patient.  A copy of these lines kept
 * outside the database (log shipping, syslog) is a witness that
 * caredata.audit_verify(expected_id, expected_hash) checks the table
 * against, so that cutting the newest entries (or truncating both tables)
 * is seen even by someone who got past the triggers.
 *
 * A rolled-back append (or one in a rolled-back savepoint) writes no line,
 * so the newest line always names a committed entry.  A transaction that
 * appended cannot be prepared (PREPARE TRANSACTION): its line would have
 * to be written at COMMIT PREPARED, in another session, which cannot see
 * it; it is refused instead.
 *
 * src/publication/audit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "base/pg_compat.h"
#include "publication.h"

/* one head appended in this transaction, at a subtransaction level */
typedef struct PendingHead
{
	int			level;			/* subtransaction nesting level */
	char	   *line;			/* the log line, formatted when appended */
} PendingHead;

/* in TopTransactionContext; NIL between transactions */
static List *pending_heads = NIL;

static void
audit_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (pending_heads != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("a transaction that appended to the audit log cannot be prepared"),
						 errdetail("The audit head is written to the server log when the transaction commits, which a prepared transaction does elsewhere."),
						 errhint("Commit it instead of PREPARE TRANSACTION.")));
			break;
		case XACT_EVENT_COMMIT:
			if (pending_heads != NIL)
			{
				PendingHead *head = (PendingHead *) llast(pending_heads);

				ereport(LOG,
						(errmsg_internal("%s", head->line),
						 errhidestmt(true),
						 errhidecontext(true)));
			}
			pending_heads = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
			pending_heads = NIL;
			break;
		default:
			break;
	}
}

static void
audit_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	int			level;
	ListCell   *lc;

	if (pending_heads == NIL)
		return;
	/* the subtransaction that ends is still the current one here */
	level = GetCurrentTransactionNestLevel();
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		int			keep = 0;

		foreach(lc, pending_heads)
		{
			if (((PendingHead *) lfirst(lc))->level >= level)
				break;
			keep++;
		}
		pending_heads = list_truncate(pending_heads, keep);
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, pending_heads)
		{
			PendingHead *head = (PendingHead *) lfirst(lc);

			if (head->level >= level)
				head->level = level - 1;
		}
	}
}

void
audit_init(void)
{
	RegisterXactCallback(audit_xact_callback, NULL);
	RegisterSubXactCallback(audit_subxact_callback, NULL);
}

bool
audit_appended_in_transaction(void)
{
	return pending_heads != NIL;
}

PG_FUNCTION_INFO_V1(caredata_audit_witness);

/*
 * caredata._audit_witness(id bigint, hash bytea): remember this head, to be
 * written to the server log if the transaction commits
 */
Datum
caredata_audit_witness(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	bytea	   *hash = PG_GETARG_BYTEA_PP(1);
	Size		len = VARSIZE_ANY_EXHDR(hash);
	MemoryContext old;
	PendingHead *head;
	char	   *hex;
	char	   *dbname;

	if (len == 0 || len > 64)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an audit hash is 1 to 64 bytes")));
	dbname = get_database_name(MyDatabaseId);

	old = MemoryContextSwitchTo(TopTransactionContext);
	hex = palloc(len * 2 + 1);
	hex[hex_encode(VARDATA_ANY(hash), len, hex)] = '\0';
	head = palloc(sizeof(PendingHead));
	head->level = GetCurrentTransactionNestLevel();
	head->line = psprintf("caredata audit head: database %s, entry " INT64_FORMAT ", hash %s",
						  dbname ? dbname : "?", id, hex);
	pending_heads = lappend(pending_heads, head);
	MemoryContextSwitchTo(old);

	PG_RETURN_VOID();
}
