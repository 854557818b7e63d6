/*-------------------------------------------------------------------------
 *
 * reidentify.c
 *		Re-identification: the rate limit setting, and the background
 *		worker that commits the audit entry before the answer leaves.
 *
 * caredata.reidentify(pseudonym, approval, purpose, justification, dataset)
 * (src/publication/reidentify.sql) must
 * not hand out an NHS number whose audit entry could still be rolled back:
 * a caller that answers inside BEGIN ... ROLLBACK, a savepoint rolled back,
 * a DO block that raises afterwards, or a backend killed after the answer
 * would otherwise keep the number and lose the entry, and the hourly limit
 * (which counts entries) would count nothing.
 *
 * PostgreSQL has no autonomous transactions, so the work is done by a
 * dynamic background worker: the caller's backend puts the request (its
 * database, the role to connect as, its login, the pseudonym, the approval,
 * purpose and dataset, the justification, the limit) in a dynamic shared
 * memory segment, starts the
 * worker and waits for it to exit.  The worker connects to the caller's
 * database as the current user of the caller (inside the SECURITY DEFINER
 * reidentify(), the extension's owner), pins search_path and
 * synchronous_commit, runs caredata._reidentify_commit() (limit, approval,
 * lookup, objection check, audit entry) in a transaction of its own,
 * commits it, and only then marks the reply committed.  The caller answers
 * only from a committed reply that was not refused; anything else (no
 * worker slot, the worker failed or was killed, the postmaster died, the
 * approval or the objection register refused) is an error and no answer.
 *
 * The setting caredata.reidentify_per_hour is superuser-only, so that a
 * re-identifier cannot raise its own limit; a DBA sets it per role with
 * ALTER ROLE ... SET.  It is read in the caller's session and handed to the
 * worker.
 *
 * src/publication/reidentify.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "base/pg_compat.h"
#include "publication.h"

static int	reidentify_per_hour = 20;

/* the request's strings, in this order, in data[] */
#define REID_PSEUDONYM		0
#define REID_APPROVAL		1
#define REID_PURPOSE		2
#define REID_DATASET		3	/* the only one that may be NULL */
#define REID_JUSTIFICATION	4
#define REID_NARGS			5

/* the request and the reply, in one dynamic shared memory segment */
typedef struct ReidentifyShared
{
	/* request, written by the caller before the worker starts */
	Oid			database;
	Oid			role;
	int			per_hour;
	NameData	actor;
	bool		arg_null[REID_NARGS];
	Size		arg_len[REID_NARGS];	/* each string in data[], then a NUL */
	/* reply, written by the worker, read by the caller once it exited */
	bool		committed;
	bool		found;
	bool		refused;		/* committed, but no answer: the objection
								 * register refused */
	int64		entry_id;
	int			sqlerrcode;
	char		nhs_number[16];
	char		message[256];
	char		detail[256];
	char		hint[256];
	char		data[FLEXIBLE_ARRAY_MEMBER];
} ReidentifyShared;

/* where each of the request's strings starts in data[] */
static const char *
reidentify_arg(ReidentifyShared *req, int i)
{
	Size		off = 0;

	for (int j = 0; j < i; j++)
		off += req->arg_len[j] + 1;
	return req->arg_null[i] ? NULL : req->data + off;
}

void
reidentify_init(void)
{
	DefineCustomIntVariable("caredata.reidentify_per_hour",
							"How many re-identifications each login may make in an hour.",
							"0 refuses every re-identification.",
							&reidentify_per_hour,
							20, 0, 100000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
}

/*
 * The worker: connect, run caredata._reidentify_commit() in a transaction
 * of its own, commit, then say so.  Any error leaves committed false (the
 * caller then answers nothing) and exits the worker, which aborts its
 * transaction.
 */
void
caredata_reidentify_worker_main(Datum main_arg)
{
	dsm_segment *seg;
	ReidentifyShared *req;
	Oid			argtypes[REID_NARGS + 2] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID};
	Datum		args[REID_NARGS + 2];
	char		nulls[REID_NARGS + 2];
	MemoryContext ctx = CurrentMemoryContext;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	CurrentResourceOwner = ResourceOwnerCreate(NULL, "caredata reidentify worker");
	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("re-identification worker: the request is gone"),
				 errdetail("The calling session stopped waiting before the worker started.")));
	req = (ReidentifyShared *) dsm_segment_address(seg);

	BackgroundWorkerInitializeConnectionByOid(req->database, req->role, 0);

	/*
	 * Pinned for the worker's whole life: no role's or database's settings
	 * decide which functions and operators its SQL reaches, the commit is
	 * flushed before the caller is told, and a wait for the audit head's
	 * lock (held by another session's open transaction) is bounded.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "60s", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("application_name", "caredata reidentify", PGC_SUSET, PGC_S_OVERRIDE);

	PG_TRY();
	{
		int			ret;

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "caredata reidentify");

		memset(nulls, ' ', sizeof(nulls));
		args[0] = CStringGetTextDatum(NameStr(req->actor));
		for (int i = 0; i < REID_NARGS; i++)
		{
			const char *arg = reidentify_arg(req, i);

			if (arg == NULL)
			{
				args[i + 1] = (Datum) 0;
				nulls[i + 1] = 'n';
			}
			else
				args[i + 1] = CStringGetTextDatum(arg);
		}
		args[REID_NARGS + 1] = Int32GetDatum(req->per_hour);
		ret = SPI_execute_with_args("SELECT r.entry_id, r.nhs_number::pg_catalog.text, r.refusal"
									"  FROM caredata._reidentify_commit($1::pg_catalog.name,"
									" $2::caredata.pseudonym, $3, $4, $5, $6, $7) r",
									REID_NARGS + 2, argtypes, args, nulls, false, 1);
		if (ret != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "caredata._reidentify_commit returned no row");
		{
			bool		isnull;
			Datum		id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			char	   *nhs;

			if (isnull)
				elog(ERROR, "caredata._reidentify_commit returned no entry id");
			req->entry_id = DatumGetInt64(id);
			nhs = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
			req->found = (nhs != NULL);
			if (nhs != NULL)
				strlcpy(req->nhs_number, nhs, sizeof(req->nhs_number));
			req->refused = (SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3) != NULL);
			if (req->refused)
			{
				/* never both: _reidentify_commit() withholds the number */
				req->found = false;
				memset(req->nhs_number, 0, sizeof(req->nhs_number));
			}
		}
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		req->sqlerrcode = edata->sqlerrcode;
		strlcpy(req->message, edata->message ? edata->message : "", sizeof(req->message));
		strlcpy(req->detail, edata->detail ? edata->detail : "", sizeof(req->detail));
		strlcpy(req->hint, edata->hint ? edata->hint : "", sizeof(req->hint));
		/* never the answer without a committed entry */
		req->found = false;
		memset(req->nhs_number, 0, sizeof(req->nhs_number));
		PG_RE_THROW();
	}
	PG_END_TRY();

	/* committed: only now may the caller answer */
	pg_write_barrier();
	req->committed = true;
	dsm_detach(seg);
	proc_exit(0);
}

PG_FUNCTION_INFO_V1(caredata_reidentify_committed);

/*
 * caredata._reidentify_committed(pseudonym, approval, purpose, dataset,
 * justification) RETURNS text: the NHS number (NULL when the pseudonym is
 * unknown) once the worker has committed the audit entry; an error, and no
 * answer, otherwise.  Only the dataset may be NULL.
 */
Datum
caredata_reidentify_committed(PG_FUNCTION_ARGS)
{
	Oid			argtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	Oid			outfunc;
	bool		varlena;
	char	   *arg[REID_NARGS];
	Size		total = 0;
	Size		size;
	char	   *dst;
	dsm_segment *seg;
	ReidentifyShared *req;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	pid_t		pid;
	char	   *actor;

	for (int i = 0; i < REID_NARGS; i++)
	{
		if (PG_ARGISNULL(i))
		{
			if (i != REID_DATASET)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("a re-identification needs its pseudonym, approval, purpose and justification")));
			arg[i] = NULL;
			continue;
		}
		if (i == REID_PSEUDONYM)
		{
			if (!OidIsValid(argtype))
				elog(ERROR, "could not determine the pseudonym's type");
			getTypeOutputInfo(argtype, &outfunc, &varlena);
			arg[i] = OidOutputFunctionCall(outfunc, PG_GETARG_DATUM(i));
		}
		else
			arg[i] = text_to_cstring(PG_GETARG_TEXT_PP(i));
		total = add_size(total, strlen(arg[i]));
	}
	size = add_size(offsetof(ReidentifyShared, data), add_size(total, REID_NARGS));
	if (size > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a re-identification's justification is too long")));
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("re-identification needs a server that can write its audit entry"),
				 errdetail("This server is a standby: the entry could not be committed, so there is no answer."),
				 errhint("Re-identify on the primary.")));

	/*
	 * The worker waits for the audit head's row lock; if this transaction
	 * holds it (it appended an entry), the worker would wait for us while
	 * we wait for it.
	 */
	if (audit_appended_in_transaction())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot re-identify in a transaction that has written to the audit log"),
				 errdetail("The re-identification's entry is committed in a transaction of its own, which would wait for this one."),
				 errhint("Commit first, then re-identify.")));

	seg = dsm_create(size, 0);
	req = (ReidentifyShared *) dsm_segment_address(seg);
	memset(req, 0, offsetof(ReidentifyShared, data));
	req->database = MyDatabaseId;
	req->role = GetUserId();
	req->per_hour = reidentify_per_hour;
	actor = GetUserNameFromId(GetSessionUserId(), false);
	namestrcpy(&req->actor, actor);
	dst = req->data;
	for (int i = 0; i < REID_NARGS; i++)
	{
		req->arg_null[i] = (arg[i] == NULL);
		req->arg_len[i] = arg[i] ? strlen(arg[i]) : 0;
		if (arg[i])
			memcpy(dst, arg[i], req->arg_len[i]);
		dst[req->arg_len[i]] = '\0';
		dst += req->arg_len[i] + 1;
	}

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "caredata");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "caredata_reidentify_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "caredata reidentify for pid %d", MyProcPid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "caredata reidentify");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("no background worker slot is free to commit the re-identification's audit entry"),
				 errdetail("The entry is committed by a background worker before the answer; without one there is no answer."),
				 errhint("Try again, or raise max_worker_processes.")));
	status = WaitForBackgroundWorkerStartup(handle, &pid);
	if (status == BGWH_POSTMASTER_DIED)
		ereport(FATAL,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("the postmaster died while re-identifying")));
	if (status == BGWH_STARTED)
		status = WaitForBackgroundWorkerShutdown(handle);
	if (status == BGWH_POSTMASTER_DIED)
		ereport(FATAL,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("the postmaster died while re-identifying")));

	pg_read_barrier();
	if (!req->committed)
	{
		/*
		 * the worker's own refusals (the hourly limit, the approval) as it
		 * gave them
		 */
		if (req->sqlerrcode == ERRCODE_PROGRAM_LIMIT_EXCEEDED ||
			req->sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE)
			ereport(ERROR,
					(errcode(req->sqlerrcode),
					 errmsg_internal("%s", req->message),
					 req->detail[0] ? errdetail_internal("%s", req->detail) : 0,
					 req->hint[0] ? errhint("%s", req->hint) : 0));
		ereport(ERROR,
				(errcode(req->sqlerrcode ? req->sqlerrcode : ERRCODE_INTERNAL_ERROR),
				 errmsg("the re-identification's audit entry could not be committed, so there is no answer"),
				 req->message[0] ? errdetail("The worker reported: %s.", req->message) :
				 errdetail("The worker stopped before it committed."),
				 errhint("Try again; the server log says more.")));
	}

	if (req->refused)
	{
		dsm_detach(seg);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("re-identification refused: the person has an objection in force for this purpose"),
				 errdetail("The national data opt-out applies to the approval, so the objection register is honoured; the refusal is in the audit log."),
				 errhint("Only an approval that sets the opt-out aside (a COPI notice, a section 251 approval recording an exemption), or an exemption for the dataset, permits it.")));
	}
	if (!req->found)
	{
		dsm_detach(seg);
		PG_RETURN_NULL();
	}
	{
		text	   *answer = cstring_to_text(req->nhs_number);

		dsm_detach(seg);
		PG_RETURN_TEXT_P(answer);
	}
}
