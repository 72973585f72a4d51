# shellcheck shell=bash
# Sourced by e2e/services/k8s.sh and e2e/services/helm.sh: finds a Go toolchain new enough to
# build a module under e2e/. The minimum is the module's own `go 1.N` line, so a toolchain that
# would otherwise try to download a newer one (GOTOOLCHAIN=auto) is refused with a clear message.
# The caller defines log().

# go_min_minor GOMOD: prints N of the module's `go 1.N[.P]` directive.
go_min_minor() { sed -nE 's/^go 1\.([0-9]+)(\.[0-9]+)?[[:space:]]*$/\1/p' "$1" | head -n 1; }

# find_go GOMOD: prints the first Go toolchain (GO, PATH, /usr/local/go, Debian's) that is at
# least the module's version; fails if there is none.
find_go() {
    local min g v minor
    min="$(go_min_minor "$1")"
    [ -n "$min" ] || {
        log "no 'go 1.N' line in $1"
        return 1
    }
    for g in "${GO:-}" "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go /usr/lib/go/bin/go; do
        [ -n "$g" ] && [ -x "$g" ] || continue
        v="$("$g" env GOVERSION 2>/dev/null || true)" # go1.26.8
        minor="$(printf '%s' "$v" | sed -nE 's/^go1\.([0-9]+).*/\1/p')"
        if [ -n "$minor" ] && [ "$minor" -ge "$min" ]; then
            printf '%s\n' "$g"
            return 0
        fi
        log "ignoring $g ($v): $1 needs go1.$min or newer"
    done
    log "no Go toolchain >= 1.$min found (install Go, or set GO=/path/to/go)"
    return 1
}
