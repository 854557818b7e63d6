-- sql/objection_concurrency.sql: objections registered after a query starts
-- do not change its answer, and a feed applied while queries run neither
-- waits for them nor loses anything.  A second backend reads through dblink.
CREATE EXTENSION caredata;
CREATE EXTENSION dblink;
SET search_path = public, caredata;
CREATE ROLE regress_reader LOGIN IN ROLE caredata_analyst;
CREATE TABLE episode (id int, nhs_number nhs_number);
INSERT INTO episode SELECT i, n::nhs_number
FROM unnest(ARRAY['999 000 0018', '999 000 0026', '999 000 0034', '999 000 0042']) WITH ORDINALITY AS t(n, i);
GRANT SELECT ON episode TO regress_reader;
SELECT protect('episode', 'nhs_number', 'research');
SELECT dblink_connect('reader', format('host=127.0.0.1 port=%s dbname=%s user=regress_reader',
                      current_setting('port'), current_database()));

-- a cursor opened before an objection is registered keeps its answer
SELECT dblink_exec('reader', 'BEGIN');
SELECT dblink_exec('reader', 'DECLARE c CURSOR FOR SELECT id FROM episode ORDER BY id');
SELECT * FROM dblink('reader', 'FETCH 2 FROM c') AS t(id int);
CREATE TABLE feed (nhs_number text);
INSERT INTO feed VALUES ('9990000042');
SELECT opened, withdrawn FROM apply_opt_out_snapshot('feed', 'nhs_number', 'ndop', now() - interval '1 minute');
SELECT * FROM dblink('reader', 'FETCH ALL FROM c') AS t(id int);
SELECT dblink_exec('reader', 'COMMIT');
-- the next query sees the new objection
SELECT * FROM dblink('reader', 'SELECT id FROM episode ORDER BY id') AS t(id int);

-- a feed applied during a long query does not wait for it
SELECT dblink_send_query('reader', 'SELECT count(*) FROM episode, pg_sleep(2)');
INSERT INTO feed VALUES ('9990000018');
SELECT opened, withdrawn FROM apply_opt_out_snapshot('feed', 'nhs_number', 'ndop', now() - interval '1 minute');
SELECT dblink_is_busy('reader') AS long_query_still_running;
SELECT * FROM dblink_get_result('reader') AS t(n bigint);
SELECT * FROM dblink_get_result('reader') AS t(n bigint);
SELECT * FROM dblink('reader', 'SELECT id FROM episode ORDER BY id') AS t(id int);
-- nothing was lost: both objections are open, each feed recorded
SELECT nhs_number, withdrawn_at IS NULL AS open FROM objection ORDER BY nhs_number;
SELECT rows_read, opened, withdrawn, unchanged FROM feed_load ORDER BY id;

SELECT dblink_disconnect('reader');
DROP TABLE episode, feed;
DROP ROLE regress_reader;
DROP EXTENSION dblink;
DROP EXTENSION caredata;
