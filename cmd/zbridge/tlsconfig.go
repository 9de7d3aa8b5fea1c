package main

import (
	"crypto/tls"

	"github.com/zbridge/zbridge/internal/tlsconf"
)

// clientTLSConfig is the agent's TLS: version 1.2 or 1.3 and, for 1.2,
// only ECDHE key exchange with AEAD ciphers (1.3 has only those). It
// verifies the server against the system's CAs unless RootCAs is set.
func clientTLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: tlsconf.AEADSuites()}
}
