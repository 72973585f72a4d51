//go:build tools

// Package tools records the main packages that e2e/services/k8s.sh builds, so that
// `go mod tidy` keeps their dependencies in go.mod/go.sum. Never compiled.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
