//go:build tools

// Package tools records the main package that e2e/services/helm.sh builds, so that
// `go mod tidy` keeps its dependencies in go.mod/go.sum. Never compiled.
package tools

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
