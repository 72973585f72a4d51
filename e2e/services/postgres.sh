#!/usr/bin/env bash
# Throwaway PostgreSQL 15 cluster for tests.
#
#   e2e/services/postgres.sh start   # init (once) + start; prints `export MCP_TEST_POSTGRES_URL=...`
#   e2e/services/postgres.sh stop    # stop it (the data directory is kept)
#   e2e/services/postgres.sh url     # print the export line only
#
# Data lives in ${MCP_SERVICES_DIR:-/tmp/mcp-services}/postgres; the server listens only on
# 127.0.0.1:${MCP_PG_PORT:-55432} with trust auth for loopback. Idempotent. When run as root,
# initdb/pg_ctl run as the `postgres` user.
set -euo pipefail

PG_BIN="${MCP_PG_BIN:-/usr/lib/postgresql/15/bin}"
BASE="${MCP_SERVICES_DIR:-/tmp/mcp-services}"
DATA="$BASE/postgres"
PORT="${MCP_PG_PORT:-55432}"
LOG="$BASE/postgres.log"
URL="postgres://postgres@127.0.0.1:${PORT}/postgres"

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() {
    [ -f "$DATA/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

start() {
    if [ ! -x "$PG_BIN/initdb" ]; then
        echo "postgres.sh: $PG_BIN/initdb not found (apt-get install postgresql-15)" >&2
        exit 1
    fi
    mkdir -p "$BASE"
    if [ "$(id -u)" = 0 ]; then chown postgres "$BASE" 2>/dev/null || true; fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
        mkdir -p "$DATA"
        if [ "$(id -u)" = 0 ]; then chown postgres "$DATA"; fi
        chmod 700 "$DATA"
        as_pg "$PG_BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 \
            --locale=C.UTF-8 >/dev/null
        {
            echo "listen_addresses = '127.0.0.1'"
            echo "port = $PORT"
            echo "unix_socket_directories = ''"
            echo "max_connections = 300"
            echo "fsync = on"
        } >>"$DATA/postgresql.conf"
        cat >"$DATA/pg_hba.conf" <<HBA
host all all 127.0.0.1/32 trust
HBA
    fi
    if ! running; then
        touch "$LOG"
        if [ "$(id -u)" = 0 ]; then chown postgres "$LOG"; fi
        as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null
    fi
    echo "export MCP_TEST_POSTGRES_URL=$URL"
}

stop() {
    if running; then
        as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
    fi
    echo "postgres stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) echo "export MCP_TEST_POSTGRES_URL=$URL" ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
