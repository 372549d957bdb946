#!/usr/bin/env bash
# Prepare the machine's PostgreSQL for bench/strategic.py:
#   * install PostGIS 3 for PostgreSQL 15 (apt) when the server does not offer the extension;
#   * create the benchmark database and the postgis + btree_gist extensions in it.
#
# Usage (as root, with PostgreSQL listening on 127.0.0.1:5432 with trust auth for user postgres):
#   bash bench/setup_postgis.sh [database]          # default database: forewarn_bench
# Environment: PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres).
set -euo pipefail

DB="${1:-forewarn_bench}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"

psql_q() { psql -X -v ON_ERROR_STOP=1 -Atq "$@"; }

if ! psql_q -d postgres -c "select 1" >/dev/null 2>&1; then
    echo "setup_postgis: cannot reach PostgreSQL at $PGHOST:$PGPORT as $PGUSER" >&2
    exit 1
fi

has_postgis() {
    [ "$(psql_q -d postgres -c "select 1 from pg_available_extensions where name='postgis'")" = "1" ]
}

if has_postgis; then
    echo "setup_postgis: PostGIS already available"
else
    major="$(psql_q -d postgres -c "show server_version_num" | cut -c1-2)"
    echo "setup_postgis: installing postgresql-${major}-postgis-3 (apt)"
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup_postgis: need root to apt-get install postgresql-${major}-postgis-3" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "postgresql-${major}-postgis-3"
    if ! has_postgis; then
        echo "setup_postgis: PostGIS still not offered by the server after install" >&2
        exit 1
    fi
fi

if [ "$(psql_q -d postgres -c "select 1 from pg_database where datname='${DB}'")" != "1" ]; then
    psql_q -d postgres -c "create database \"${DB}\""
    echo "setup_postgis: created database ${DB}"
fi
psql_q -d "$DB" -c "create extension if not exists postgis" -c "create extension if not exists btree_gist"
psql_q -d "$DB" -c "select 'setup_postgis: ' || postgis_full_version()"
