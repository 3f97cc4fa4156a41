#!/bin/sh
# PgBouncer's configuration from the app's own settings (.env), then PgBouncer itself.
#
# Pools for the app role (DATABASE_URL's user) and the platform role
# (DATABASE_PLATFORM_URL's, else crm_platform with DATABASE_URL's password: crm/dbroles.py),
# every database of POSTGRES_HOST:POSTGRES_PORT (db:5432), pool_mode = transaction,
# PGBOUNCER_POOL_SIZE (20) server connections a pool. The passwords are read as written in
# the URLs: keep them free of URL escapes (%xx), or write the auth file yourself.
set -eu

credentials() { # postgres://user:password@host:port/db -> "user" "password"
    rest=${1#*://}
    login=${rest%%@*}
    printf '"%s" "%s"\n' "${login%%:*}" "${login#*:}"
}

: "${DATABASE_URL:?DATABASE_URL is needed (the app role's URL, through this PgBouncer)}"
dir=/tmp/pgbouncer
mkdir -p "$dir"
{
    credentials "$DATABASE_URL"
    if [ -n "${DATABASE_PLATFORM_URL:-}" ]; then
        credentials "$DATABASE_PLATFORM_URL"
    else
        app=$(credentials "$DATABASE_URL")
        printf '"crm_platform" %s\n' "${app#* }"
    fi
} > "$dir/userlist.txt"

cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=${POSTGRES_HOST:-db} port=${POSTGRES_PORT:-5432}

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 6432
unix_socket_dir =
auth_type = plain
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = ${PGBOUNCER_POOL_SIZE:-20}
max_client_conn = ${PGBOUNCER_MAX_CLIENTS:-1000}
ignore_startup_parameters = extra_float_digits,options
INI

exec pgbouncer "$dir/pgbouncer.ini"
