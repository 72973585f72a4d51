#!/usr/bin/env bash
# The one test command of MCP: builds the workspace, starts the services the tests need,
# runs every Rust test and then the Python end-to-end suites under e2e/.
# Stops at the first failure with a message saying which step failed.
#
# Environment: PYTHON (default python3); MCP_TEST_POSTGRES_URL is exported from
# e2e/services/postgres.sh, MCP_TEST_S3_* and AWS_* from e2e/services/s3.sh, and KUBECONFIG
# from e2e/services/k8s.sh when those scripts exist.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
# One-shot builds gain nothing from incremental compilation, and its cache adds GiBs to
# target/ (a debug build of the workspace with its tests is tens of GiB).
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

step() { printf '\n==> %s\n' "$*"; }
fail() {
    printf '\nFAILED: %s\n' "$*" >&2
    exit 1
}

started=()
stop_services() {
    local s
    for s in "${started[@]}"; do
        bash "e2e/services/$s.sh" stop >/dev/null 2>&1 || true
    done
}
trap stop_services EXIT

step "build (cargo build --workspace --all-targets)"
cargo build --workspace --all-targets || fail "cargo build"

if [[ -f e2e/services/postgres.sh ]]; then
    step "start PostgreSQL (e2e/services/postgres.sh start)"
    out=$(bash e2e/services/postgres.sh start) || fail "e2e/services/postgres.sh start"
    started+=(postgres)
    printf '%s\n' "$out"
    # The script prints the URL (bare, as NAME=URL or as an export line); take the last one.
    url=$(printf '%s\n' "$out" | grep -oE "postgres(ql)?://[^[:space:]\"']+" | tail -n 1 || true)
    [[ -n "$url" ]] || fail "e2e/services/postgres.sh start printed no postgres:// URL"
    export MCP_TEST_POSTGRES_URL="$url"
    export MCP_REQUIRE_POSTGRES=1
    echo "MCP_TEST_POSTGRES_URL exported; PostgreSQL tests are required"
else
    echo "note: e2e/services/postgres.sh not present; PostgreSQL tests will not run"
fi

if [[ -f e2e/services/s3.sh ]]; then
    # moto's S3 server: the S3 blob store tests, and the e2e `postgres` storage (PostgreSQL + S3).
    step "start the S3-compatible server (e2e/services/s3.sh start)"
    out=$(bash e2e/services/s3.sh start) || fail "e2e/services/s3.sh start"
    started+=(s3)
    eval "$(printf '%s\n' "$out" | grep -E '^export (MCP_TEST_S3_[A-Z_]+|AWS_[A-Z_]+)=')"
    [[ -n "${MCP_TEST_S3_ENDPOINT:-}" ]] || fail "e2e/services/s3.sh start printed no MCP_TEST_S3_ENDPOINT"
    export MCP_REQUIRE_S3=1
    echo "MCP_TEST_S3_ENDPOINT=$MCP_TEST_S3_ENDPOINT exported; S3 tests are required"
else
    echo "note: e2e/services/s3.sh not present; S3 tests will not run"
fi

if [[ -f e2e/services/dovecot.sh ]]; then
    step "start Dovecot (e2e/services/dovecot.sh start)"
    bash e2e/services/dovecot.sh start || fail "e2e/services/dovecot.sh start"
    started+=(dovecot)
else
    echo "note: e2e/services/dovecot.sh not present; Dovecot tests will not run"
fi

if [[ -f e2e/services/k8s.sh ]]; then
    # The first build compiles etcd, kube-apiserver, kube-controller-manager and kubectl from
    # e2e/k8s/go.mod (tens of minutes on 2 cores); later runs reuse the cached binaries.
    step "build the Kubernetes control plane (e2e/services/k8s.sh build)"
    bash e2e/services/k8s.sh build || fail "e2e/services/k8s.sh build"
    step "start etcd, kube-apiserver, kube-controller-manager (e2e/services/k8s.sh start)"
    started+=(k8s) # before start: a failed start may leave etcd running
    out=$(bash e2e/services/k8s.sh start) || fail "e2e/services/k8s.sh start"
    printf '%s\n' "$out"
    kc=$(printf '%s\n' "$out" | sed -nE 's/^export KUBECONFIG=(.*)$/\1/p' | tail -n 1)
    [[ -n "$kc" ]] || fail "e2e/services/k8s.sh start printed no KUBECONFIG"
    export KUBECONFIG="$kc"
    export MCP_REQUIRE_K8S=1
    echo "KUBECONFIG exported; Kubernetes API server tests are required"
else
    echo "note: e2e/services/k8s.sh not present; Kubernetes API server tests will not run"
fi

if [[ -f e2e/services/hydra.sh ]]; then
    # ORY Hydra, a real OIDC provider for the REST facade's bearer-token tests; built once from
    # e2e/hydra/go.mod (a few minutes) and cached like the control plane.
    step "build and start ORY Hydra (e2e/services/hydra.sh start)"
    bash e2e/services/hydra.sh build || fail "e2e/services/hydra.sh build"
    started+=(hydra)
    out=$(bash e2e/services/hydra.sh start) || fail "e2e/services/hydra.sh start"
    eval "$(printf '%s\n' "$out" | grep -E '^export MCP_TEST_OIDC_[A-Z_]+=')"
    [[ -n "${MCP_TEST_OIDC_ISSUER:-}" ]] || fail "e2e/services/hydra.sh start printed no MCP_TEST_OIDC_ISSUER"
    export MCP_REQUIRE_OIDC=1
    echo "MCP_TEST_OIDC_ISSUER=$MCP_TEST_OIDC_ISSUER exported; OIDC provider tests are required"
else
    echo "note: e2e/services/hydra.sh not present; OIDC provider tests will not run"
fi

# helm for the chart tests (e2e/chart/), built once from e2e/helm/go.mod and cached;
# exported as MCP_HELM_BIN.
if [[ -f e2e/services/helm.sh ]]; then
    step "build helm (e2e/services/helm.sh build)"
    bash e2e/services/helm.sh build || fail "e2e/services/helm.sh build"
    MCP_HELM_BIN="$(bash e2e/services/helm.sh bin-dir)/helm"
    export MCP_HELM_BIN
fi

step "Rust tests (cargo test --workspace)"
cargo test --workspace || fail "cargo test --workspace"

step "Python end-to-end tests (pytest e2e/)"
"$PYTHON" -m pytest --version >/dev/null 2>&1 || fail "pytest is not installed for $PYTHON (run .ci/run)"
have_tests=$(find e2e -name 'test_*.py' -not -path '*/__pycache__/*' -print -quit)
set +e
"$PYTHON" -m pytest -q -x --durations=25 e2e
rc=$?
set -e
if [[ $rc -eq 5 && -z "$have_tests" ]]; then
    echo "no Python end-to-end tests yet (pytest collected nothing)"
elif [[ $rc -ne 0 ]]; then
    fail "pytest e2e/ (exit code $rc)"
fi

step "all tests passed"
