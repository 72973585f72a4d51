// Command mcp-k8s-pki writes the certificates and keys of the test control plane into a
// directory (test infrastructure only; see e2e/services/k8s.sh):
//
//	ca.crt, ca.key              self-signed CA
//	apiserver.crt, .key         serving certificate for 127.0.0.1, localhost, kubernetes.default...
//	admin.crt, admin.key        client certificate, CN=mcp-admin, O=system:masters
//	kcm.crt, kcm.key            client certificate, CN=system:kube-controller-manager
//	sa.key, sa.pub              service-account token signing key pair
//
// Files that already exist are kept, so the PKI survives restarts. ECDSA P-256 throughout.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

var dir string

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mcp-k8s-pki DIR")
		os.Exit(2)
	}
	dir = os.Args[1]
	must(os.MkdirAll(dir, 0o700))

	caKey, caCert := loadOrCreateCA()
	issue("apiserver", caKey, caCert, pkix.Name{CommonName: "kube-apiserver"},
		x509.ExtKeyUsageServerAuth,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.IPv4(10, 0, 0, 1)})
	issue("admin", caKey, caCert,
		pkix.Name{CommonName: "mcp-admin", Organization: []string{"system:masters"}},
		x509.ExtKeyUsageClientAuth, nil, nil)
	issue("kcm", caKey, caCert, pkix.Name{CommonName: "system:kube-controller-manager"},
		x509.ExtKeyUsageClientAuth, nil, nil)

	if !exists("sa.key") || !exists("sa.pub") {
		k := newKey()
		writeKey("sa.key", k)
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		must(err)
		writePEM("sa.pub", "PUBLIC KEY", der, 0o644)
	}
}

func loadOrCreateCA() (*ecdsa.PrivateKey, *x509.Certificate) {
	if exists("ca.crt") && exists("ca.key") {
		certPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
		must(err)
		keyPEM, err := os.ReadFile(filepath.Join(dir, "ca.key"))
		must(err)
		cb, _ := pem.Decode(certPEM)
		kb, _ := pem.Decode(keyPEM)
		if cb == nil || kb == nil {
			must(fmt.Errorf("%s: unreadable ca.crt/ca.key", dir))
		}
		cert, err := x509.ParseCertificate(cb.Bytes)
		must(err)
		key, err := x509.ParseECPrivateKey(kb.Bytes)
		must(err)
		return key, cert
	}
	key := newKey()
	tmpl := template(pkix.Name{CommonName: "mcp-test-ca"})
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(err)
	cert, err := x509.ParseCertificate(der)
	must(err)
	writeKey("ca.key", key)
	writePEM("ca.crt", "CERTIFICATE", der, 0o644)
	return key, cert
}

func issue(name string, caKey *ecdsa.PrivateKey, ca *x509.Certificate, subject pkix.Name,
	usage x509.ExtKeyUsage, dns []string, ips []net.IP) {
	if exists(name+".crt") && exists(name+".key") {
		return
	}
	key := newKey()
	tmpl := template(subject)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	tmpl.DNSNames = dns
	tmpl.IPAddresses = ips
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	must(err)
	writeKey(name+".key", key)
	writePEM(name+".crt", "CERTIFICATE", der, 0o644)
}

func template(subject pkix.Name) *x509.Certificate {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	must(err)
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
	}
}

func newKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	return k
}

func writeKey(name string, k *ecdsa.PrivateKey) {
	der, err := x509.MarshalECPrivateKey(k)
	must(err)
	writePEM(name, "EC PRIVATE KEY", der, 0o600)
}

// writePEM writes through a temporary file so a crash never leaves a half-written file.
func writePEM(name, typ string, der []byte, mode os.FileMode) {
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	must(os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode))
	must(os.Rename(tmp, path))
}

func exists(name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcp-k8s-pki:", err)
		os.Exit(1)
	}
}
