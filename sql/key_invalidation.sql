-- sql/key_invalidation.sql: rotating or retiring a domain reaches every
-- backend's cached keys without a restart.  A second backend (dblink) caches
-- a domain key, this one rotates and retires the domain, the other sees it.
CREATE EXTENSION caredata;
CREATE EXTENSION dblink;
SELECT caredata.create_domain('shared', 'seen by two backends') IS NOT NULL AS created;
SELECT dblink_connect('other', format('host=127.0.0.1 port=%s dbname=%s user=%s',
                      current_setting('port'), current_database(), current_user));
CREATE FUNCTION pg_temp.other_version() RETURNS text LANGUAGE sql AS $$
  SELECT v FROM dblink('other',
    $q$SELECT caredata.pseudonym_key_version(caredata.pseudonymise(9434765919, 'shared'))::text$q$)
  AS t(v text)
$$;
SELECT pg_temp.other_version() AS before_rotation;
SELECT pg_temp.other_version() AS cached;
SELECT caredata.rotate_domain('shared');
SELECT pg_temp.other_version() AS after_rotation;
SELECT caredata.rotate_domain('shared');
SELECT pg_temp.other_version() AS after_second_rotation;
SELECT caredata.retire_domain('shared');
SELECT v FROM dblink('other', $q$SELECT caredata.pseudonymise(9434765919, 'shared')::text$q$, false) AS t(v text);
SELECT dblink_error_message('other') <> 'OK' AS other_backend_refused;
SELECT dblink_disconnect('other');
DROP EXTENSION dblink;
DROP EXTENSION caredata;
