package peer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLSCA is a certificate authority for a test: it signs server and client
// certificates that live in the test's temporary directory, as an
// operator's CA signs a region's. A daemon that checks the name in a
// server certificate (syslog-ng does, for a certificate a CA signed) needs
// one apart from the server's own.
type TLSCA struct {
	// File is the CA's certificate, PEM.
	File string

	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
	n    int64
}

// NewTLSCA makes a CA valid for the next day.
func NewTLSCA(t testing.TB) *TLSCA {
	t.Helper()
	key := newTLSKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "zbridge test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("peer.NewTLSCA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("peer.NewTLSCA: %v", err)
	}
	ca := &TLSCA{cert: cert, key: key, dir: t.TempDir(), n: 1}
	ca.File = ca.write(t, "ca.pem", "CERTIFICATE", der, 0o644)
	return ca
}

// Server returns the files of a server certificate the CA signed, and its
// key, for hosts: IP addresses and DNS names (127.0.0.1 and localhost when
// none are given).
func (ca *TLSCA) Server(t testing.TB, hosts ...string) (cert, key string) {
	t.Helper()
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "localhost"}
	}
	tmpl := ca.template(hosts[0], x509.ExtKeyUsageServerAuth)
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.sign(t, tmpl)
}

// Client returns the files of a client certificate the CA signed for the
// common name name, and its key.
func (ca *TLSCA) Client(t testing.TB, name string) (cert, key string) {
	t.Helper()
	return ca.sign(t, ca.template(name, x509.ExtKeyUsageClientAuth))
}

// ServerPair is Server's certificate and key, loaded.
func (ca *TLSCA) ServerPair(t testing.TB, hosts ...string) tls.Certificate {
	t.Helper()
	cert, key := ca.Server(t, hosts...)
	return loadPair(t, cert, key)
}

// ClientPair is Client's certificate and key, loaded.
func (ca *TLSCA) ClientPair(t testing.TB, name string) tls.Certificate {
	t.Helper()
	cert, key := ca.Client(t, name)
	return loadPair(t, cert, key)
}

// ServerConfig returns a TLS configuration serving a certificate the CA
// signed for 127.0.0.1 and localhost.
func (ca *TLSCA) ServerConfig(t testing.TB) *tls.Config {
	t.Helper()
	return &tls.Config{Certificates: []tls.Certificate{ca.ServerPair(t)}, MinVersion: tls.VersionTLS12}
}

// Pool returns a certificate pool holding the CA: a client's RootCAs, a
// server's ClientCAs.
func (ca *TLSCA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func loadPair(t testing.TB, cert, key string) tls.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatalf("peer.TLSCA: %v", err)
	}
	return pair
}

func (ca *TLSCA) template(cn string, usage x509.ExtKeyUsage) *x509.Certificate {
	ca.n++
	return &x509.Certificate{
		SerialNumber: big.NewInt(ca.n), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
}

func (ca *TLSCA) sign(t testing.TB, tmpl *x509.Certificate) (cert, key string) {
	t.Helper()
	k := newTLSKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("peer.TLSCA: %v", err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatalf("peer.TLSCA: %v", err)
	}
	name := tmpl.SerialNumber.String()
	return ca.write(t, name+".pem", "CERTIFICATE", der, 0o644), ca.write(t, name+".key", "EC PRIVATE KEY", kb, 0o600)
}

func (ca *TLSCA) write(t testing.TB, name, typ string, der []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(ca.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatalf("peer.TLSCA: %v", err)
	}
	return path
}

func newTLSKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("peer: %v", err)
	}
	return k
}
