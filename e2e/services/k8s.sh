#!/usr/bin/env bash
# Throwaway Kubernetes control plane for tests: etcd + kube-apiserver + kube-controller-manager
# (garbage collector and namespace controllers). No kubelet, no scheduler: pods never run.
#
#   e2e/services/k8s.sh build        # build the binaries once (cached outside the repo)
#   e2e/services/k8s.sh start        # build if needed, start; prints `export KUBECONFIG=...`
#   e2e/services/k8s.sh stop         # stop all three (state is kept; `start` reuses it)
#   e2e/services/k8s.sh kubeconfig   # print the export line only
#   e2e/services/k8s.sh bin-dir      # print the directory holding the binaries (and kubectl)
#
# The binaries are built from e2e/k8s/go.mod (k8s.io/kubernetes and go.etcd.io/etcd/server/v3
# at the pinned versions) into ${MCP_K8S_CACHE:-/var/cache/mcp-e2e}/k8s-<k8s>-etcd-<etcd>/,
# so they are rebuilt only when a pinned version changes. State (etcd data, PKI, logs,
# kubeconfig) lives in ${MCP_SERVICES_DIR:-/tmp/mcp-services}/k8s. Everything listens on
# 127.0.0.1 only: etcd on ${MCP_ETCD_PORT:-52379} (peer ${MCP_ETCD_PEER_PORT:-52380}), the API
# server on ${MCP_KUBE_PORT:-56443}, the controller manager's health port on
# ${MCP_KCM_PORT:-56257}. The admin identity is a client certificate in group system:masters.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODDIR="$(cd "$HERE/../k8s" && pwd)"
BASE="${MCP_SERVICES_DIR:-/tmp/mcp-services}"
DIR="$BASE/k8s"
PKI="$DIR/pki"
ETCD_PORT="${MCP_ETCD_PORT:-52379}"
ETCD_PEER_PORT="${MCP_ETCD_PEER_PORT:-52380}"
KUBE_PORT="${MCP_KUBE_PORT:-56443}"
KCM_PORT="${MCP_KCM_PORT:-56257}"
KUBECONFIG_PATH="$DIR/kubeconfig"
START_TIMEOUT="${MCP_K8S_START_TIMEOUT:-120}"
# Garbage collection and namespace deletion are what the tests rely on; the others keep the
# objects a real cluster has (default ServiceAccount, kube-root-ca.crt, aggregated ClusterRoles).
# Like kubeadm, each controller uses its own ServiceAccount's credentials and RBAC role.
KCM_CONTROLLERS=garbage-collector-controller,namespace-controller,serviceaccount-controller,root-ca-certificate-publisher-controller,clusterrole-aggregation-controller

log() { printf 'k8s.sh: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}
# find_go: a Go toolchain at least as new as the module's `go` line.
# shellcheck source=lib/go.sh
. "$HERE/lib/go.sh"

# Pinned versions, read from the module's go.mod so there is one source of truth.
mod_version() { awk -v m="$1" '$1 == m && $2 ~ /^v/ && $3 != "=>" { print $2; exit }' "$MODDIR/go.mod"; }
K8S_VERSION="$(mod_version k8s.io/kubernetes)"
ETCD_VERSION="$(mod_version go.etcd.io/etcd/server/v3)"
[ -n "$K8S_VERSION" ] && [ -n "$ETCD_VERSION" ] || die "cannot read pinned versions from $MODDIR/go.mod"
BIN="${MCP_K8S_CACHE:-/var/cache/mcp-e2e}/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"

# Our own PKI tool is keyed by its source, so editing it rebuilds it under the same pins.
PKI_TOOL="mcp-k8s-pki-$(cat "$MODDIR/cmd/mcp-k8s-pki/"*.go | sha256sum | cut -c1-12)"

# name:package pairs, built in this order.
TARGETS=(
    "etcd:go.etcd.io/etcd/server/v3"
    "kube-apiserver:k8s.io/kubernetes/cmd/kube-apiserver"
    "kube-controller-manager:k8s.io/kubernetes/cmd/kube-controller-manager"
    "kubectl:k8s.io/kubernetes/cmd/kubectl"
    "$PKI_TOOL:mcp.test/e2e/k8s/cmd/mcp-k8s-pki"
)

# What `make` would stamp into the binaries (hack/lib/version.sh, etcd's ./build), so that
# /version reports v1.35.x like a released API server rather than v0.0.0-master.
version_ldflags() {
    case "$1" in
        kube-*|kubectl)
            local minor date p f
            minor="$(printf '%s' "$K8S_VERSION" | cut -d. -f2)"
            date="$(cd "$MODDIR" && "$go" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes 2>/dev/null || echo 1970-01-01T00:00:00Z)"
            for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
                for f in "gitVersion=$K8S_VERSION" gitMajor=1 "gitMinor=$minor" gitTreeState=clean "buildDate=$date"; do
                    printf -- '-X %s.%s ' "$p" "$f"
                done
            done
            ;;
        etcd) printf -- '-X go.etcd.io/etcd/api/v3/version.GitSHA=%s' "module-$ETCD_VERSION" ;;
    esac
}

built() {
    local t
    for t in "${TARGETS[@]}"; do
        [ -x "$BIN/${t%%:*}" ] || return 1
    done
}

build() {
    if built; then
        log "binaries present in $BIN (k8s $K8S_VERSION, etcd $ETCD_VERSION)"
        return 0
    fi
    local go
    go="$(find_go "$MODDIR/go.mod")" || die "cannot build the control plane without Go"
    mkdir -p "$BIN" 2>/dev/null && [ -w "$BIN" ] ||
        die "cannot write $BIN; set MCP_K8S_CACHE to a writable directory"
    # One builder at a time (two test runs starting together share the cache).
    exec 9>"$BIN/.build.lock"
    flock 9
    local t name pkg t0 t1 all0
    all0=$(date +%s)
    for t in "${TARGETS[@]}"; do
        name="${t%%:*}"
        pkg="${t#*:}"
        [ -x "$BIN/$name" ] && continue
        log "building $name ($pkg) with $("$go" env GOVERSION) ..."
        t0=$(date +%s)
        # go.mod and go.sum are committed and complete: -mod=readonly never rewrites them.
        (cd "$MODDIR" && CGO_ENABLED=0 GOFLAGS=-mod=readonly "$go" build -trimpath \
            -ldflags="-s -w $(version_ldflags "$name")" -o "$BIN/.$name.tmp" "$pkg")
        mv -f "$BIN/.$name.tmp" "$BIN/$name"
        t1=$(date +%s)
        log "built $name in $((t1 - t0))s ($(du -h "$BIN/$name" | cut -f1))"
    done
    log "build done in $(($(date +%s) - all0))s; $BIN is $(du -sh "$BIN" | cut -f1)"
    flock -u 9
}

# --- running ---------------------------------------------------------------------------------

# A pid file counts only while its process is alive and still runs one of our binaries
# (a stale pid reused by an unrelated process is never signalled).
pid_alive() {
    local pid
    [ -f "$DIR/$1.pid" ] || return 1
    pid="$(cat "$DIR/$1.pid")"
    kill -0 "$pid" 2>/dev/null || return 1
    case "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" in
        */"$1") return 0 ;;
        *) return 1 ;;
    esac
}

stop_one() {
    local name=$1 pid i
    if pid_alive "$name"; then
        pid="$(cat "$DIR/$name.pid")"
        kill "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/$name.pid"
}

# curl against the API server as the admin.
kcurl() {
    curl -sS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
        "https://127.0.0.1:$KUBE_PORT$1"
}

wait_for() { # process name, timeout seconds, check command...; fails early if it exits
    local name=$1 timeout=$2 deadline
    shift 2
    deadline=$(($(date +%s) + timeout))
    until "$@" >/dev/null 2>&1; do
        # (kill -0, not pid_alive: just after `&` the child may not have exec'd yet.)
        kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null || die "$name exited; see $DIR/$name.log"
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

apiserver_ready() { [ "$(kcurl /readyz)" = ok ]; }
etcd_healthy() { curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
kcm_healthy() { [ "$(curl -sk --max-time 2 "https://127.0.0.1:$KCM_PORT/healthz")" = ok ]; }

# Kubeconfig in JSON (valid YAML, so kubectl and kube-rs read it; Python reads it with json).
write_kubeconfig() { # path cert key user
    cat >"$1.tmp" <<EOF
{
  "apiVersion": "v1",
  "kind": "Config",
  "clusters": [{"name": "mcp-test", "cluster": {
    "server": "https://127.0.0.1:$KUBE_PORT",
    "certificate-authority": "$PKI/ca.crt"}}],
  "users": [{"name": "$4", "user": {
    "client-certificate": "$2",
    "client-key": "$3"}}],
  "contexts": [{"name": "mcp-test", "context": {"cluster": "mcp-test", "user": "$4"}}],
  "current-context": "mcp-test"
}
EOF
    chmod 600 "$1.tmp"
    mv -f "$1.tmp" "$1"
}

start_etcd() {
    pid_alive etcd && return 0
    mkdir -p "$DIR/etcd"
    chmod 700 "$DIR/etcd"
    "$BIN/etcd" --name mcp-test --data-dir "$DIR/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "mcp-test=http://127.0.0.1:$ETCD_PEER_PORT" \
        --unsafe-no-fsync --quota-backend-bytes 2147483648 \
        --log-level warn >"$DIR/etcd.log" 2>&1 </dev/null &
    echo $! >"$DIR/etcd.pid"
    wait_for etcd 30 etcd_healthy || die "etcd not healthy after 30s; see $DIR/etcd.log"
}

start_apiserver() {
    pid_alive kube-apiserver && return 0
    "$BIN/kube-apiserver" \
        --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$KUBE_PORT" \
        --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
        --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
        --client-ca-file="$PKI/ca.crt" \
        --authorization-mode=RBAC --anonymous-auth=false \
        --service-account-issuer="https://127.0.0.1:$KUBE_PORT" \
        --service-account-key-file="$PKI/sa.pub" \
        --service-account-signing-key-file="$PKI/sa.key" \
        --service-cluster-ip-range=10.0.0.0/24 \
        --endpoint-reconciler-type=none \
        --allow-privileged=true \
        --profiling=false \
        --v=1 >"$DIR/kube-apiserver.log" 2>&1 </dev/null &
    echo $! >"$DIR/kube-apiserver.pid"
}

start_controller_manager() {
    pid_alive kube-controller-manager && return 0
    "$BIN/kube-controller-manager" \
        --kubeconfig="$DIR/kcm.kubeconfig" \
        --authentication-kubeconfig="$DIR/kcm.kubeconfig" \
        --authorization-kubeconfig="$DIR/kcm.kubeconfig" \
        --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
        --cert-dir="$DIR/kcm-certs" \
        --leader-elect=false \
        --controllers="$KCM_CONTROLLERS" \
        --root-ca-file="$PKI/ca.crt" \
        --service-account-private-key-file="$PKI/sa.key" \
        --use-service-account-credentials=true \
        --concurrent-gc-syncs=5 \
        --profiling=false \
        --v=1 >"$DIR/kube-controller-manager.log" 2>&1 </dev/null &
    echo $! >"$DIR/kube-controller-manager.pid"
}

start() {
    build
    mkdir -p "$DIR"
    chmod 700 "$DIR"
    local t0
    t0=$(date +%s%N)
    # CA, serving certificate for 127.0.0.1/localhost, admin and controller-manager client
    # certificates, service-account key pair. Generated once; kept across restarts.
    "$BIN/$PKI_TOOL" "$PKI"
    write_kubeconfig "$KUBECONFIG_PATH" "$PKI/admin.crt" "$PKI/admin.key" admin
    write_kubeconfig "$DIR/kcm.kubeconfig" "$PKI/kcm.crt" "$PKI/kcm.key" kube-controller-manager
    start_etcd
    start_apiserver
    wait_for kube-apiserver "$START_TIMEOUT" apiserver_ready ||
        die "kube-apiserver not ready after ${START_TIMEOUT}s: $(kcurl '/readyz?verbose' | grep -v '\] ok' || true)"
    start_controller_manager
    wait_for kube-controller-manager 60 kcm_healthy ||
        die "kube-controller-manager not healthy after 60s; see $DIR/kube-controller-manager.log"
    log "ready in $((($(date +%s%N) - t0) / 1000000)) ms (API server on https://127.0.0.1:$KUBE_PORT)"
    echo "export KUBECONFIG=$KUBECONFIG_PATH"
}

stop() {
    stop_one kube-controller-manager
    stop_one kube-apiserver
    stop_one etcd
    echo "k8s stopped"
}

case "${1:-}" in
    build) build ;;
    start) start ;;
    stop) stop ;;
    kubeconfig) echo "export KUBECONFIG=$KUBECONFIG_PATH" ;;
    bin-dir) echo "$BIN" ;;
    *)
        echo "usage: $0 build|start|stop|kubeconfig|bin-dir" >&2
        exit 2
        ;;
esac
