-- A least-privilege role for topicbridge: LOGIN REPLICATION (a logical slot and its
-- stream), SELECT on the resource tables its topics name (and their _history tables, for
-- resolve() and stored topics), and nothing else: no write on any table, no superuser,
-- no SELECT on Aidbox's other tables (users, clients, sessions hold secrets).
--
-- Run as a superuser (or the database owner) in the Aidbox database, naming the resource
-- tables topicbridge may read (lowercase type names, comma-separated; default: patient):
--
--   psql "$ADMIN_DSN" -v ON_ERROR_STOP=1 \
--     -c "SET topicbridge.tables = 'patient,encounter,observation'" \
--     -f sql/003_least_privilege_role.sql
--   psql "$ADMIN_DSN" -c "ALTER ROLE topicbridge PASSWORD '...'"   # or \password topicbridge
--
-- Safe to run again (e.g. after adding a topic on another resource type). The
-- aidboxsubscriptiontopic and aidboxtopicdestination tables are granted when they exist
-- (needed only with aidbox.topics_from_database). pg_replication_slots and
-- pg_current_wal_lsn(), used for the slot-lag metric, are readable by every role.
-- topicbridge's DSN then names this role: "host=... dbname=aidbox user=topicbridge".
-- pg_hba.conf must allow it both for the database and for `replication` connections
-- (the logical stream connects with replication=database, which matches the database line).

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'topicbridge') THEN
    CREATE ROLE topicbridge LOGIN REPLICATION;
  ELSE
    ALTER ROLE topicbridge LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE;
  END IF;
END
$$;

DO $$
DECLARE
  wanted text := coalesce(nullif(current_setting('topicbridge.tables', true), ''), 'patient');
  tbl text;
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO topicbridge', current_database());
  EXECUTE 'GRANT USAGE ON SCHEMA public TO topicbridge';
  FOREACH tbl IN ARRAY string_to_array(replace(wanted, ' ', ''), ',') ||
                 ARRAY['aidboxsubscriptiontopic', 'aidboxtopicdestination'] LOOP
    IF to_regclass(format('public.%I', tbl)) IS NOT NULL THEN
      EXECUTE format('GRANT SELECT ON public.%I TO topicbridge', tbl);
    END IF;
    IF to_regclass(format('public.%I', tbl || '_history')) IS NOT NULL THEN
      EXECUTE format('GRANT SELECT ON public.%I TO topicbridge', tbl || '_history');
    END IF;
  END LOOP;
END
$$;
