package main

import "crypto/tls"

// clientTLSConfig is the agent's TLS: version 1.2 or 1.3 and, for 1.2,
// only ECDHE key exchange with AEAD ciphers (1.3 has only those). It
// verifies the server against the system's CAs unless RootCAs is set.
func clientTLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: tls12AEADSuites()}
}

// tls12AEADSuites are the TLS 1.2 cipher suites zbridge's agent and
// simulator offer: forward secret (ECDHE) and authenticated (AES-GCM,
// ChaCha20-Poly1305).
func tls12AEADSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}
