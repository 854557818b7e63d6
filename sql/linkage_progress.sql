-- linkage_progress: link_run() reports each phase as it finishes (counts,
-- seconds, rate) at the level caredata.link_progress sets, and never an
-- identifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS caredata;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- ---- the setting ----
SHOW caredata.link_progress;                        -- notice by default
SET caredata.link_progress = on;                    -- on and off work too
SHOW caredata.link_progress;
SET caredata.link_progress = loud;
RESET caredata.link_progress;

-- ---- one line: count with thousands, seconds, rate per second ----
-- (phases that started long ago, so that the rate has three figures
-- whatever this machine's load: 15.2 M, 152 k, 950 per second)
SELECT caredata._link_progress('scored', 15200000000, 'candidate pairs', clock_timestamp() - interval '1000 s', ': the tail');
SELECT caredata._link_progress('scored', 15200000, 'pairs', clock_timestamp() - interval '100 s');
SELECT caredata._link_progress('wrote', 95000, 'links', clock_timestamp() - interval '100 s');
SELECT caredata._link_progress('wrote', 0, 'links', clock_timestamp() - interval '200 s');   -- no rate for nothing
SELECT caredata._link_progress(NULL, 1234, 'records new since the last run', NULL);     -- no time
-- the level: a NOTICE obeys client_min_messages, an INFO reaches the client anyway
SET client_min_messages = warning;
SELECT caredata._link_progress('hidden', 1, 'record', NULL);
SET caredata.link_progress = info;
SELECT caredata._link_progress('shown', 1, 'record', NULL);
SET caredata.link_progress = off;
RESET client_min_messages;
SELECT caredata._link_progress('never shown', 1, 'record', NULL);
RESET caredata.link_progress;

-- ---- a run reports every phase, with plausible counts ----
-- (in a psql of its own, so that its notices can be filtered: the times,
-- rates, the planner's estimate of the pairs and the run id vary from run
-- to run and with the suites before this one)
\setenv PGDATABASE :DBNAME
\! psql -X -q -f sql/include/linkage_progress_run.psql 2>&1 >/dev/null | sed -E -e 's/ in [0-9]+\.[0-9]+ s/ in # s/' -e 's/\([0-9.]+( [kMG])? ([a-z]+)\/s\)/(# \2\/s)/' -e 's/about [0-9,]+ /about # /' -e 's/run [0-9]+ finished/run # finished/'
-- no NHS number (ten digits) in any line
\! psql -X -q -f sql/include/linkage_progress_run.psql 2>&1 >/dev/null | grep -cE '[0-9]{10}|[0-9]{3} [0-9]{3} [0-9]{4}'
-- the run left nothing behind
SELECT count(*) AS progress_sources_left FROM caredata.link_source WHERE source LIKE 'progress\_%';
SELECT to_regclass('public.progress_people') AS progress_tables_left;
