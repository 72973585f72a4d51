#!/usr/bin/env bash
# ORY Hydra, a real OpenID Connect provider, for the OIDC bearer-token tests of the REST facade
# (operator/api/src/auth/oidc). Built from Go modules like the control plane.
#
#   e2e/services/hydra.sh build   # build hydra once (cached outside the repo)
#   e2e/services/hydra.sh start   # build if needed, start, register the test client; prints
#                                 #   export MCP_TEST_OIDC_ISSUER=... MCP_TEST_OIDC_CLIENT=...
#   e2e/services/hydra.sh stop
#
# hydra is built from e2e/hydra/go.mod (github.com/ory/hydra/v2 at the pinned version, with
# SQLite for its in-memory database, so cgo and a C compiler are needed) into
# ${MCP_HYDRA_CACHE:-/var/cache/mcp-e2e}/hydra-<version>/. It serves on 127.0.0.1 only: the
# public port (issuer http://127.0.0.1:<port>, discovery, JWKS, token endpoint) and the admin
# port, ${MCP_HYDRA_PORT} and ${MCP_HYDRA_ADMIN_PORT} or free ones picked at start (a fixed
# port in the ephemeral range can be taken by any client socket). Its state is in memory and lives in
# ${MCP_SERVICES_DIR:-/tmp/mcp-services}/hydra (config, log, pid). Access tokens are JWTs
# (RS256) with `aud`, `sub` (the client ID) and `scp` (the granted scopes).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODDIR="$(cd "$HERE/../hydra" && pwd)"
DIR="${MCP_SERVICES_DIR:-/tmp/mcp-services}/hydra"
# The client the tests obtain tokens with (client credentials grant).
CLIENT_ID=mcp-e2e
CLIENT_SECRET=mcp-e2e-client-secret

log() { printf 'hydra.sh: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}
# shellcheck source=lib/go.sh
. "$HERE/lib/go.sh"

VERSION="$(awk '$1 == "github.com/ory/hydra/v2" && $2 ~ /^v/ { print $2; exit }' "$MODDIR/go.mod")"
[ -n "$VERSION" ] || die "cannot read the pinned github.com/ory/hydra/v2 version from $MODDIR/go.mod"
BIN="${MCP_HYDRA_CACHE:-/var/cache/mcp-e2e}/hydra-$VERSION"

build() {
    if [ -x "$BIN/hydra" ]; then
        log "hydra present in $BIN ($VERSION)"
        return 0
    fi
    local go t0
    go="$(find_go "$MODDIR/go.mod")" || die "cannot build hydra without Go"
    mkdir -p "$BIN" 2>/dev/null && [ -w "$BIN" ] ||
        die "cannot write $BIN; set MCP_HYDRA_CACHE to a writable directory"
    exec 9>"$BIN/.build.lock"
    flock 9
    if [ ! -x "$BIN/hydra" ]; then
        log "building hydra $VERSION with $("$go" env GOVERSION) (a few minutes the first time) ..."
        t0=$(date +%s)
        # go.mod and go.sum are committed and complete: -mod=readonly never rewrites them.
        (cd "$MODDIR" && CGO_ENABLED=1 GOFLAGS=-mod=readonly "$go" build -trimpath -tags sqlite \
            -ldflags="-s -w" -o "$BIN/.hydra.tmp" github.com/ory/hydra/v2)
        mv -f "$BIN/.hydra.tmp" "$BIN/hydra"
        log "built hydra in $(($(date +%s) - t0))s ($(du -h "$BIN/hydra" | cut -f1))"
    fi
    flock -u 9
}

# The pid in the pid file, if that process is alive and is our hydra.
running_pid() {
    local pid
    [ -f "$DIR/hydra.pid" ] || return 1
    pid="$(cat "$DIR/hydra.pid")"
    [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$BIN/hydra" ] || return 1
    echo "$pid"
}

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts hydra on PORT and ADMIN_PORT; returns 2 when a port was taken, 1 on other failures.
serve() {
    ISSUER="http://127.0.0.1:$PORT"
    cat >"$DIR/hydra.yml" <<YAML
serve:
  public: {host: 127.0.0.1, port: $PORT}
  admin: {host: 127.0.0.1, port: $ADMIN_PORT}
urls:
  self:
    issuer: $ISSUER
strategies:
  access_token: jwt
secrets:
  system: [mcp-e2e-system-secret-not-for-production]
log:
  level: warn
YAML
    DSN=memory setsid "$BIN/hydra" serve all --dev --sqa-opt-out --config "$DIR/hydra.yml" \
        >"$DIR/hydra.log" 2>&1 </dev/null &
    echo $! >"$DIR/hydra.pid"
    local i
    for i in $(seq 1 100); do
        curl -fsS "$ISSUER/.well-known/openid-configuration" >/dev/null 2>&1 && break
        if ! running_pid >/dev/null; then
            grep -q 'address already in use' "$DIR/hydra.log" && return 2
            return 1
        fi
        [ "$i" -lt 100 ] || die "hydra did not answer in 20 s; see $DIR/hydra.log"
        sleep 0.2
    done
    printf 'PORT=%s\nADMIN_PORT=%s\n' "$PORT" "$ADMIN_PORT" >"$DIR/ports"
    log "hydra $VERSION listening on $ISSUER (admin 127.0.0.1:$ADMIN_PORT)"
}

start() {
    build
    mkdir -p "$DIR"
    if running_pid >/dev/null && [ -f "$DIR/ports" ]; then
        # shellcheck source=/dev/null
        . "$DIR/ports"
        ISSUER="http://127.0.0.1:$PORT"
    else
        local attempt rc
        for attempt in 1 2 3; do
            PORT="${MCP_HYDRA_PORT:-$(free_port)}"
            ADMIN_PORT="${MCP_HYDRA_ADMIN_PORT:-$(free_port)}"
            [ "$PORT" != "$ADMIN_PORT" ] || ADMIN_PORT="$(free_port)"
            rc=0
            serve || rc=$?
            [ "$rc" = 0 ] && break
            [ "$rc" = 2 ] && [ -z "${MCP_HYDRA_PORT:-}${MCP_HYDRA_ADMIN_PORT:-}" ] && [ "$attempt" -lt 3 ] ||
                die "hydra exited; see $DIR/hydra.log"
            log "a port was taken meanwhile; trying others"
        done
    fi
    # The test client (409 when it already exists).
    local status
    status="$(curl -sS -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$ADMIN_PORT/admin/clients" \
        -H 'Content-Type: application/json' \
        -d "{\"client_id\":\"$CLIENT_ID\",\"client_secret\":\"$CLIENT_SECRET\",\"grant_types\":[\"client_credentials\"],\"scope\":\"mcp-admin mcp-viewer mcp-ops other\",\"audience\":[\"mcp-api\",\"someone-else\"],\"token_endpoint_auth_method\":\"client_secret_basic\",\"access_token_strategy\":\"jwt\"}")"
    case "$status" in
        201 | 409) ;;
        *) die "registering the test client: HTTP $status" ;;
    esac
    echo "export MCP_TEST_OIDC_ISSUER=$ISSUER MCP_TEST_OIDC_CLIENT=$CLIENT_ID:$CLIENT_SECRET"
}

stop() {
    local pid
    if pid="$(running_pid)"; then
        kill "$pid"
        log "stopped hydra ($pid)"
    fi
    rm -f "$DIR/hydra.pid" "$DIR/ports"
}

case "${1:-}" in
    build) build ;;
    start) start ;;
    stop) stop ;;
    *)
        echo "usage: $0 build|start|stop" >&2
        exit 2
        ;;
esac
