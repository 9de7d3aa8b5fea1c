package region

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/zbridge/zbridge/internal/tlsconf"
)

// serverTLS is the TLS configuration of every listener: TLS 1.2 with AEAD
// suites, or TLS 1.3.
func serverTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, CipherSuites: tlsconf.AEADSuites()}
}

// requireClientCerts returns a copy of base that asks every client for a
// certificate issued by a CA in the PEM file caFile (SYSLOG over TLS with
// client authentication, RFC 5425 §5.2).
func requireClientCerts(base *tls.Config, caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("region: syslog client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("region: syslog client CA %s: no PEM certificate in it", caFile)
	}
	c := base.Clone()
	c.ClientCAs = pool
	c.ClientAuth = tls.RequireAndVerifyClientCert
	return c, nil
}
