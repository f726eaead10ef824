#!/bin/sh
# Runs once, when the data directory is created: a login role for topicbridge
# with REPLICATION (to stream the slot) and read access to the tables Aidbox
# will create (to read a row a TOASTed update left out, and for slot lag).
# Aidbox creates its tables after this script, as $POSTGRES_USER: the default
# privileges below cover them.
set -eu
: "${TOPICBRIDGE_DB_PASSWORD:?set TOPICBRIDGE_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v tbpass="$TOPICBRIDGE_DB_PASSWORD" <<'SQL'
CREATE ROLE topicbridge WITH LOGIN REPLICATION PASSWORD :'tbpass';
GRANT CONNECT ON DATABASE :"DBNAME" TO topicbridge;
GRANT USAGE ON SCHEMA public TO topicbridge;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO topicbridge;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO topicbridge;
SQL
