-- Write helpers that change rows the way Aidbox does, so tests see the same WAL:
-- create inserts the main row; update copies the old row to _history, then updates the
-- main row; delete copies the old row to _history, adds a 'deleted' history row, then
-- deletes the main row. Each returns the txid of the version it wrote.
-- Two writes of one id in one transaction share a txid: the later history row wins.

-- Strips what Aidbox keeps out of `resource`: id, resourceType, meta.versionId, meta.lastUpdated.
CREATE OR REPLACE FUNCTION aidbox_strip(resource jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN r->'meta' = '{}'::jsonb THEN r - 'meta' ELSE r END
  FROM (SELECT (resource - 'id' - 'resourceType') #- '{meta,versionId}' #- '{meta,lastUpdated}'
          AS r) s
$$;

-- Table name for a type, creating the table pair on first use.
CREATE OR REPLACE FUNCTION aidbox_table(rtype text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass(format('%I', lower(rtype))) IS NULL
     OR to_regclass(format('%I', lower(rtype) || '_history')) IS NULL THEN
    PERFORM aidbox_ensure_table(rtype);
  END IF;
  RETURN lower(rtype);
END
$$;

-- Copies the current main row of (tbl, id) into tbl_history; false when there is no row.
CREATE OR REPLACE FUNCTION aidbox_copy_to_history(tbl text, rid text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  EXECUTE format(
    'INSERT INTO %I (id, txid, ts, cts, resource_type, status, resource)'
    ' SELECT id, txid, ts, cts, resource_type, status, resource FROM %I WHERE id = $1'
    ' ON CONFLICT (id, txid) DO UPDATE SET ts = EXCLUDED.ts, status = EXCLUDED.status,'
    '   resource = EXCLUDED.resource', tbl || '_history', tbl) USING rid;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n > 0;
END
$$;

-- Creates a resource; status 'recreated' when the id's newest history row is a deletion.
CREATE OR REPLACE FUNCTION aidbox_create(rtype text, rid text, resource jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  tbl text := aidbox_table(rtype);
  tx bigint := txid_current();
  last_status resource_status;
BEGIN
  EXECUTE format('SELECT status FROM %I WHERE id = $1 ORDER BY txid DESC LIMIT 1',
                 tbl || '_history') INTO last_status USING rid;
  EXECUTE format(
    'INSERT INTO %I (id, txid, ts, cts, resource_type, status, resource)'
    ' VALUES ($1, $2, now(), now(), $3, $4, $5)', tbl)
    USING rid, tx, rtype,
          CASE WHEN last_status = 'deleted' THEN 'recreated' ELSE 'created' END::resource_status,
          aidbox_strip(resource);
  RETURN tx;
END
$$;

-- Replaces a resource's content; raises when the resource does not exist.
CREATE OR REPLACE FUNCTION aidbox_update(rtype text, rid text, resource jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  tbl text := aidbox_table(rtype);
  tx bigint := txid_current();
BEGIN
  IF NOT aidbox_copy_to_history(tbl, rid) THEN
    RAISE EXCEPTION 'aidbox_update: %/% does not exist', rtype, rid;
  END IF;
  EXECUTE format(
    'UPDATE %I SET txid = $2, ts = now(), status = ''updated'', resource = $3 WHERE id = $1', tbl)
    USING rid, tx, aidbox_strip(resource);
  RETURN tx;
END
$$;

-- A new version without touching `resource` (only txid/ts/status change): in the WAL the
-- TOASTed `resource` of such an update is "unchanged" and wal2json leaves it out.
CREATE OR REPLACE FUNCTION aidbox_touch(rtype text, rid text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  tbl text := aidbox_table(rtype);
  tx bigint := txid_current();
BEGIN
  IF NOT aidbox_copy_to_history(tbl, rid) THEN
    RAISE EXCEPTION 'aidbox_touch: %/% does not exist', rtype, rid;
  END IF;
  EXECUTE format('UPDATE %I SET txid = $2, ts = now(), status = ''updated'' WHERE id = $1', tbl)
    USING rid, tx;
  RETURN tx;
END
$$;

-- Deletes a resource; raises when the resource does not exist.
CREATE OR REPLACE FUNCTION aidbox_delete(rtype text, rid text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  tbl text := aidbox_table(rtype);
  tx bigint := txid_current();
BEGIN
  IF NOT aidbox_copy_to_history(tbl, rid) THEN
    RAISE EXCEPTION 'aidbox_delete: %/% does not exist', rtype, rid;
  END IF;
  EXECUTE format(
    'INSERT INTO %I (id, txid, ts, cts, resource_type, status, resource)'
    ' SELECT id, $2, now(), cts, resource_type, ''deleted'', resource FROM %I WHERE id = $1'
    ' ON CONFLICT (id, txid) DO UPDATE SET ts = EXCLUDED.ts, status = EXCLUDED.status,'
    '   resource = EXCLUDED.resource', tbl || '_history', tbl) USING rid, tx;
  EXECUTE format('DELETE FROM %I WHERE id = $1', tbl) USING rid;
  RETURN tx;
END
$$;
