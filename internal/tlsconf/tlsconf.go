// Package tlsconf holds the TLS 1.2 cipher suites every zbridge program
// offers or accepts (the region's listeners, the z/VM agent, the z/VM
// simulator), in one place, importing nothing but crypto/tls, so that the
// lean client build can use it too.
package tlsconf

import "crypto/tls"

// AEADSuites returns the TLS 1.2 cipher suites zbridge uses: ECDHE key
// exchange with an AEAD cipher only (no CBC, no RSA key exchange), as RFC
// 7525 §4.2 and Mozilla's "intermediate" profile recommend. TLS 1.3 suites
// are all AEAD and are not configurable in Go. A new slice each call:
// a tls.Config may be changed by whoever holds it.
func AEADSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}
