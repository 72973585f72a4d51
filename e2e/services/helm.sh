#!/usr/bin/env bash
# The helm CLI for the chart tests (e2e/chart/), built from Go modules like the control plane.
#
#   e2e/services/helm.sh build     # build helm once (cached outside the repo)
#   e2e/services/helm.sh bin-dir   # print the directory holding `helm`
#
# helm is built from e2e/helm/go.mod (helm.sh/helm/vN at the pinned version; a module of its
# own because helm needs newer k8s.io/* modules than e2e/k8s pins) into
# ${MCP_HELM_CACHE:-/var/cache/mcp-e2e}/helm-<version>/, so it is rebuilt only when the pin
# changes. Changing how it is built without changing the pin needs `rm -r` of that directory.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODDIR="$(cd "$HERE/../helm" && pwd)"

log() { printf 'helm.sh: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}
# shellcheck source=lib/go.sh
. "$HERE/lib/go.sh"

# The pinned module (helm.sh/helm/v4) and version, read from go.mod: one source of truth.
# (Either form: `require helm.sh/helm/v4 v4.3.1` or a line inside a require block.)
read -r MODULE VERSION < <(awk '{ if ($1 == "require") { $1 = ""; $0 = $0 } }
    $1 ~ /^helm\.sh\/helm\/v[0-9]+$/ && $2 ~ /^v[0-9]/ { print $1, $2; exit }' "$MODDIR/go.mod") ||
    die "cannot read the pinned helm.sh/helm/vN version from $MODDIR/go.mod"
BIN="${MCP_HELM_CACHE:-/var/cache/mcp-e2e}/helm-$VERSION"

build() {
    if [ -x "$BIN/helm" ]; then
        log "helm present in $BIN ($MODULE $VERSION)"
        return 0
    fi
    local go t0
    go="$(find_go "$MODDIR/go.mod")" || die "cannot build helm without Go"
    mkdir -p "$BIN" 2>/dev/null && [ -w "$BIN" ] ||
        die "cannot write $BIN; set MCP_HELM_CACHE to a writable directory"
    # One builder at a time; a concurrent run may have finished while we waited.
    exec 9>"$BIN/.build.lock"
    flock 9
    if [ ! -x "$BIN/helm" ]; then
        log "building helm ($MODULE/cmd/helm $VERSION) with $("$go" env GOVERSION) ..."
        t0=$(date +%s)
        # What helm's Makefile stamps for a release tag, so `helm version` reports the pin.
        # go.mod and go.sum are committed and complete: -mod=readonly never rewrites them.
        (cd "$MODDIR" && CGO_ENABLED=0 GOFLAGS=-mod=readonly "$go" build -trimpath \
            -ldflags="-s -w -X $MODULE/internal/version.version=$VERSION -X $MODULE/internal/version.metadata= -X $MODULE/internal/version.gitTreeState=clean" \
            -o "$BIN/.helm.tmp" "$MODULE/cmd/helm")
        [ "$("$BIN/.helm.tmp" version --template '{{.Version}}')" = "$VERSION" ] ||
            die "the built helm does not report $VERSION"
        mv -f "$BIN/.helm.tmp" "$BIN/helm"
        log "built helm in $(($(date +%s) - t0))s ($(du -h "$BIN/helm" | cut -f1))"
    fi
    flock -u 9
}

case "${1:-}" in
    build) build ;;
    bin-dir) echo "$BIN" ;;
    *)
        echo "usage: $0 build|bin-dir" >&2
        exit 2
        ;;
esac
