// Package tlsconf holds the TLS 1.2 cipher suites every zbridge program
// offers or accepts (the region's listeners, the z/VM agent, the z/VM
// simulator), in one place, and what a server logs of a failed handshake,
// importing nothing but the standard library's crypto/tls and strings, so that the lean client build can use it too.
package tlsconf

import (
	"crypto/tls"
	"strings"
)

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

// ExplainHandshake returns err, the error of a failed server handshake,
// with what the error alone hides added to its text, for the log. Under
// TLS 1.3 a client that refuses the server's certificate sends its alert
// before it has keys to encrypt it with, and crypto/tls reports that
// unencrypted record as "bad record MAC": syslog-ng 3.38 refusing a region
// certificate for another name is seen so (TestSyslogTLSTrust).
func ExplainHandshake(err error) error {
	if err == nil || !strings.HasSuffix(err.Error(), "tls: bad record MAC") {
		return err
	}
	return &explained{err}
}

type explained struct{ error }

func (e *explained) Error() string {
	return e.error.Error() + " (under TLS 1.3 this is also how a client that refused the server's certificate is seen: look in the client's log)"
}

// Unwrap gives errors.Is and errors.As the cause.
func (e *explained) Unwrap() error { return e.error }
