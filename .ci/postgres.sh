#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages if missing, starts it listening on loopback only, creates the
# test role and database, and prints the URL the multi-worker tests use (PORTABLE_DEBLUR_TEST_POSTGRES).
# Needs root (apt-get, su postgres). Safe to run again.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version main"; then
    pg_createcluster "$version" main >&2
fi
pg_conftool "$version" main set listen_addresses localhost >&2  # loopback only (Debian's default)
if ! pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -qx online; then
    pg_ctlcluster "$version" main start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
sql() { su postgres -c "psql -p $port -qtAc \"$1\""; }
[ "$(sql "SELECT 1 FROM pg_roles WHERE rolname='portable_deblur'")" = 1 ] ||
    sql "CREATE ROLE portable_deblur LOGIN PASSWORD 'portable_deblur'" >&2
[ "$(sql "SELECT 1 FROM pg_database WHERE datname='portable_deblur_test'")" = 1 ] ||
    su postgres -c "createdb -p $port -O portable_deblur portable_deblur_test" >&2
echo "postgresql://portable_deblur:portable_deblur@127.0.0.1:$port/portable_deblur_test"
