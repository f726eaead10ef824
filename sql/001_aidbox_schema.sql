-- Aidbox-shaped storage for local runs and integration tests (DESIGN.md "Aidbox storage"):
-- one table per resource type named as the lowercase type, plus <table>_history with the
-- same columns. Idempotent: loading this file twice leaves the database unchanged.

DO $$
BEGIN
  CREATE TYPE resource_status AS ENUM ('created', 'updated', 'deleted', 'recreated');
EXCEPTION
  WHEN duplicate_object THEN NULL;
END
$$;

-- Creates <lower(rtype)> and <lower(rtype)>_history if missing; returns the main table name.
CREATE OR REPLACE FUNCTION aidbox_ensure_table(rtype text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  tbl text := lower(rtype);
BEGIN
  IF rtype !~ '^[A-Za-z][A-Za-z0-9]*$' THEN
    RAISE EXCEPTION 'aidbox_ensure_table: invalid resource type %', quote_literal(rtype);
  END IF;
  IF to_regclass(format('%I', tbl)) IS NULL THEN
    EXECUTE format(
      'CREATE TABLE IF NOT EXISTS %I ('
      '  id text NOT NULL PRIMARY KEY,'
      '  txid bigint NOT NULL,'
      '  ts timestamptz NOT NULL DEFAULT now(),'
      '  cts timestamptz NOT NULL DEFAULT now(),'
      '  resource_type text NOT NULL DEFAULT %L,'
      '  status resource_status NOT NULL,'
      '  resource jsonb NOT NULL)', tbl, rtype);
  END IF;
  IF to_regclass(format('%I', tbl || '_history')) IS NULL THEN
    EXECUTE format(
      'CREATE TABLE IF NOT EXISTS %I ('
      '  id text NOT NULL,'
      '  txid bigint NOT NULL,'
      '  ts timestamptz NOT NULL DEFAULT now(),'
      '  cts timestamptz NOT NULL DEFAULT now(),'
      '  resource_type text NOT NULL DEFAULT %L,'
      '  status resource_status NOT NULL,'
      '  resource jsonb NOT NULL,'
      '  PRIMARY KEY (id, txid))', tbl || '_history', rtype);
  END IF;
  RETURN tbl;
END
$$;

SELECT aidbox_ensure_table(t)
FROM unnest(ARRAY[
  'Patient', 'Observation', 'Encounter', 'QuestionnaireResponse', 'Practitioner',
  'Organization', 'DiagnosticReport', 'Condition', 'MedicationRequest', 'Appointment',
  'AidboxSubscriptionTopic', 'AidboxTopicDestination'
]) AS t;
