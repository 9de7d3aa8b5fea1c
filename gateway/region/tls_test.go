package region

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zbridge/zbridge/protocol"
)

// testCA is a certificate authority for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a certificate for name (a server's, with 127.0.0.1 as its
// address, or a client's).
func (ca *testCA) issue(t *testing.T, name string, client bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writeCertFiles(t *testing.T, dir, name string, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	kb, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// TestSyslogClientCertificates: with --syslog-client-ca, SYSLOG over TLS
// takes messages only from senders whose certificate that CA issued; and
// TLS 1.2 is spoken only with AEAD suites.
func TestSyslogClientCertificates(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out TLS read deadlines: in the full suite only (-short stays well under 35 s)")
	}
	dir := t.TempDir()
	ca, other := newTestCA(t, "zbridge test CA"), newTestCA(t, "someone else's CA")
	certFile, keyFile := writeCertFiles(t, dir, "region", ca.issue(t, "region", false))
	caFile := filepath.Join(dir, "clients-ca.pem")
	os.WriteFile(caFile, ca.pem, 0o600)
	r, err := New(Config{Name: "T", SyslogTCP: "127.0.0.1:0", UnsolMsg: "127.0.0.1:0", Logger: quietLogger(),
		TLSCertFile: certFile, TLSKeyFile: keyFile, SyslogClientCA: caFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	addr := r.Addr("syslog").String()
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

	send := func(cfg *tls.Config, text string) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		msg := fmt.Sprintf("<13>1 2026-01-01T00:00:00Z host app - - - %s", text)
		if _, err := fmt.Fprintf(c, "%d %s", len(msg), msg); err != nil {
			return err
		}
		// A refused client certificate is reported by the server after
		// the client's handshake finished (TLS 1.3): read to see it.
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return nil // still open: accepted
			}
			return err
		}
		return nil
	}
	base := func() *tls.Config {
		return &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}

	noCert := base()
	if err := send(noCert, "without a certificate"); err == nil {
		t.Error("a sender without a client certificate was accepted")
	}
	wrong := base()
	wrong.Certificates = []tls.Certificate{other.issue(t, "intruder", true)}
	if err := send(wrong, "with another CA's certificate"); err == nil {
		t.Error("a sender whose certificate another CA issued was accepted")
	}
	cbc := base()
	cbc.Certificates = []tls.Certificate{ca.issue(t, "web1", true)}
	cbc.MaxVersion = tls.VersionTLS12
	cbc.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
	if err := send(cbc, "over a CBC suite"); err == nil {
		t.Error("TLS 1.2 with only CBC suites was accepted")
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		good := base()
		good.Certificates = []tls.Certificate{ca.issue(t, "web1", true)}
		good.MaxVersion = v
		if err := send(good, fmt.Sprintf("certified %x", v)); err != nil {
			t.Fatalf("a certified sender (version %x) was refused: %v", v, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var texts []string
	for ctx.Err() == nil && len(texts) < 2 {
		evs, _, err := r.Store().Read(ctx, protocol.ID{}, 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		texts = texts[:0]
		for _, e := range evs {
			if e.Source == protocol.SourceSyslog {
				texts = append(texts, e.Text)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(texts) != 2 || texts[0] != "certified 303" || texts[1] != "certified 304" {
		t.Errorf("stored %q, want only the two certified senders' messages", texts)
	}
}
