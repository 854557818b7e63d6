/*-------------------------------------------------------------------------
 *
 * progress.c
 *		What a linkage run tells its user while it runs: the setting
 *		caredata.link_progress and the one function that prints a phase's
 *		progress line.
 *
 * link_run() (src/linkage/run.sql) calls caredata._link_progress() as each
 * long phase finishes (and before the comparison, with the planner's
 * estimate of the pairs to come).  A line reads
 *
 *		link_run: compared 15,200,000 candidate pairs in 10.1 s (1.5 M pairs/s)
 *
 * The setting chooses where it goes: off (nowhere), notice (the default: a
 * NOTICE, which the client sees unless client_min_messages hides it) or
 * info (an INFO, which the client is always sent, whatever
 * client_min_messages says: for scripts that hide notices but want the
 * progress, such as scripts/demo.sql).  Lines carry counts and times only,
 * never an identifier: the callers pass numbers and fixed words.
 *
 * src/linkage/progress.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "compare.h"

typedef enum LinkProgress
{
	LINK_PROGRESS_OFF,
	LINK_PROGRESS_NOTICE,
	LINK_PROGRESS_INFO
}			LinkProgress;

static const struct config_enum_entry link_progress_options[] = {
	{"off", LINK_PROGRESS_OFF, false},
	{"notice", LINK_PROGRESS_NOTICE, false},
	{"info", LINK_PROGRESS_INFO, false},
	/* the boolean spellings, so that "on" and "off" work as expected */
	{"on", LINK_PROGRESS_NOTICE, true},
	{"true", LINK_PROGRESS_NOTICE, true},
	{"yes", LINK_PROGRESS_NOTICE, true},
	{"1", LINK_PROGRESS_NOTICE, true},
	{"false", LINK_PROGRESS_OFF, true},
	{"no", LINK_PROGRESS_OFF, true},
	{"0", LINK_PROGRESS_OFF, true},
	{NULL, 0, false}
};

static int	link_progress = LINK_PROGRESS_NOTICE;
static bool link_compare_engine = true;

void
linkage_init(void)
{
	DefineCustomEnumVariable("caredata.link_progress",
							 "Where caredata.link_run() reports each phase as it finishes: off, notice or info.",
							 "notice sends a NOTICE (hidden when client_min_messages is above notice); info sends an INFO, which the client always receives.",
							 &link_progress,
							 LINK_PROGRESS_NOTICE,
							 link_progress_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	/* read by run.sql and model.sql: block.c and frequency.c are what it switches on */
	DefineCustomBoolVariable("caredata.link_compare_engine",
							 "Count value frequencies, block and compare a linkage run's records in memory in C (on) or with SQL groupings and joins (off).",
							 "The same records and candidate pairs either way; on needs the records' compared columns (and each counted column's values) to fit maintenance_work_mem, and a run falls back to SQL when they do not.",
							 &link_compare_engine,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}

/* n with a comma between thousands: 15,200,000 */
static void
append_count(StringInfo buf, int64 n)
{
	char		digits[32];
	int			len;
	int			i;

	if (n < 0)
	{
		appendStringInfoChar(buf, '-');
		/* -INT64_MIN does not fit: print it digit by digit from unsigned */
		snprintf(digits, sizeof(digits), UINT64_FORMAT, (uint64) 0 - (uint64) n);
	}
	else
		snprintf(digits, sizeof(digits), INT64_FORMAT, n);
	len = strlen(digits);
	for (i = 0; i < len; i++)
	{
		if (i > 0 && (len - i) % 3 == 0)
			appendStringInfoChar(buf, ',');
		appendStringInfoChar(buf, digits[i]);
	}
}

/* a rate with three significant figures at most: 950, 312 k, 15.2 M */
static void
append_rate(StringInfo buf, double rate)
{
	const char *prefix = "";

	if (rate >= 1e9)
	{
		rate /= 1e9;
		prefix = " G";
	}
	else if (rate >= 1e6)
	{
		rate /= 1e6;
		prefix = " M";
	}
	else if (rate >= 1e3)
	{
		rate /= 1e3;
		prefix = " k";
	}
	if (rate < 10 && *prefix)
		appendStringInfo(buf, "%.2f%s", rate, prefix);
	else if (rate < 100 && *prefix)
		appendStringInfo(buf, "%.1f%s", rate, prefix);
	else
		appendStringInfo(buf, "%.0f%s", rate, prefix);
}

/*
 * _link_progress(what text, n bigint, unit text, started timestamptz,
 *				  tail text) returns void
 *
 * Reports "link_run: <what> <n> <unit> in <s> s (<rate> <word>/s)<tail>"
 * at the level caredata.link_progress chooses, <word> being the unit's last
 * word.  n NULL leaves out the count and the rate; started NULL leaves out
 * the time and the rate (so does an infinite start); n = 0 leaves out the
 * rate.
 */
PG_FUNCTION_INFO_V1(link_progress_report);
Datum
link_progress_report(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	int			level;
	char	   *unit = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));

	if (link_progress == LINK_PROGRESS_OFF)
		PG_RETURN_VOID();
	level = link_progress == LINK_PROGRESS_INFO ? INFO : NOTICE;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "link_run:");
	if (!PG_ARGISNULL(0))
		appendStringInfo(&buf, " %s", text_to_cstring(PG_GETARG_TEXT_PP(0)));
	if (!PG_ARGISNULL(1))
	{
		appendStringInfoChar(&buf, ' ');
		append_count(&buf, PG_GETARG_INT64(1));
	}
	if (unit)
		appendStringInfo(&buf, " %s", unit);
	/* an infinite start has no elapsed time to report */
	if (!PG_ARGISNULL(3) && !TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(3)))
	{
		TimestampTz started = PG_GETARG_TIMESTAMPTZ(3);
		double		seconds;

		seconds = (double) (GetCurrentTimestamp() - started) / USECS_PER_SEC;
		if (seconds < 0)
			seconds = 0;
		appendStringInfo(&buf, " in %.*f s", seconds < 10 ? 2 : 1, seconds);
		if (!PG_ARGISNULL(1) && PG_GETARG_INT64(1) > 0)
		{
			appendStringInfoString(&buf, " (");
			/* a phase under a millisecond is rated as if it took one */
			append_rate(&buf, (double) PG_GETARG_INT64(1) / Max(seconds, 0.001));
			/* per second of the unit's last word: "candidate pairs" gives pairs/s */
			appendStringInfo(&buf, " %s/s)",
							 unit == NULL ? "rows" : strrchr(unit, ' ') ? strrchr(unit, ' ') + 1 : unit);
		}
	}
	if (!PG_ARGISNULL(4))
		appendStringInfoString(&buf, text_to_cstring(PG_GETARG_TEXT_PP(4)));

	/* the PL/pgSQL stack of link_run() says nothing a user needs here */
	ereport(level,
			(errmsg_internal("%s", buf.data),
			 errhidecontext(true)));
	pfree(buf.data);
	PG_RETURN_VOID();
}
