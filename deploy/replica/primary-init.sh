#!/bin/sh
# Run by the postgres image on the first start of `db` only (an empty volume), from
# /docker-entrypoint-initdb.d/: the role the reports' replica streams as, its slot (the
# primary keeps the WAL the replica has not received yet), and the pg_hba.conf line that
# lets it connect for replication over the compose network. docs/scaling.md.
set -eu
: "${REPLICATION_USER:?set REPLICATION_USER in .env}"
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD in .env}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v user="$REPLICATION_USER" -v password="$REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE :"user" WITH REPLICATION LOGIN PASSWORD :'password';
SELECT pg_create_physical_replication_slot('crm_reports');
SQL
echo "host replication $REPLICATION_USER all scram-sha-256" >> "$PGDATA/pg_hba.conf"
