#!/bin/sh
# The reports' streaming replica (docker-compose.yml's `replica`, as the postgres user).
# On an empty volume: a base backup of the primary with -R (standby.signal, and
# primary_conninfo naming the slot crm_reports in postgresql.auto.conf); then PostgreSQL
# as a hot standby. The app reads it as REPORTS_DATABASE_URL (docs/scaling.md).
set -eu
: "${REPLICATION_USER:?set REPLICATION_USER in .env}"
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD in .env}"
host=${PRIMARY_HOST:-db}
port=${PRIMARY_PORT:-5432}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_isready -q -h "$host" -p "$port"; do sleep 1; done
    PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup -h "$host" -p "$port" \
        -U "$REPLICATION_USER" -D "$PGDATA" -R -X stream -c fast -S crm_reports
    chmod 0700 "$PGDATA"
fi
# Long report queries are not cancelled by the primary's vacuum (hot_standby_feedback).
exec postgres -c hot_standby=on -c hot_standby_feedback=on
