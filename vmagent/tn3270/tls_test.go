package tn3270

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/vmagent/zvmsim"
)

// testCert is a server certificate for "zvm.test" and 127.0.0.1 that a
// fresh CA signed, and the CA as a pool and as a PEM file.
type testCert struct {
	cert   tls.Certificate
	pool   *x509.CertPool
	caFile string
}

func newTestCert(t *testing.T) *testCert {
	t.Helper()
	ca := peer.NewTLSCA(t)
	return &testCert{cert: ca.ServerPair(t, "zvm.test", "127.0.0.1"), pool: ca.Pool(), caFile: ca.File}
}

// startTLSSim starts a z/VM console simulator serving TLS with cert (or
// plain TN3270 with nil) on a loopback port, closed at the end of the test.
func startTLSSim(t *testing.T, cert *testCert) string {
	t.Helper()
	sim, err := zvmsim.New(zvmsim.Config{System: judgeSystem, Password: judgePassword, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if cert != nil {
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert.cert}, MinVersion: tls.VersionTLS12})
	}
	served := make(chan error, 1)
	go func() { served <- sim.Serve(l) }()
	t.Cleanup(func() {
		sim.Close()
		if err := <-served; err != zvmsim.ErrServerClosed {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return addr
}

// isLogo reports whether s is the simulator's logon screen, ready for input.
func isLogo(s Screen) bool {
	return !s.KeyboardLocked && strings.Contains(s.String(), "USERID")
}

// TestDialTLS: with Config.TLS, Dial speaks TLS from the first byte and
// verifies the server: the logon screen comes through a TLS listener, and
// a wrong CA, a wrong name or a server that does not speak TLS fail the
// dial with an error that says TLS. (A plain client of a TLS server waits
// for the server's telnet negotiation as the server waits for its
// ClientHello: Dial's ctx and the scraper's LogonTimeout bound that.)
func TestDialTLS(t *testing.T) {
	cert, other := newTestCert(t), newTestCert(t)
	tlsAddr := startTLSSim(t, cert)
	plainAddr := startTLSSim(t, nil)

	t.Run("Session", func(t *testing.T) {
		for _, name := range []string{"", "127.0.0.1", "zvm.test"} {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cfg := &tls.Config{RootCAs: cert.pool, ServerName: name}
			c, err := Dial(ctx, tlsAddr, Config{Logger: testLogger(t), TLS: cfg})
			if err != nil {
				t.Fatalf("ServerName %q: %v", name, err)
			}
			if _, err := c.WaitFor(ctx, isLogo); err != nil {
				t.Fatalf("ServerName %q: no logon screen: %v", name, err)
			}
			if cfg.ServerName != name {
				t.Errorf("Dial changed the caller's tls.Config: ServerName %q", cfg.ServerName)
			}
			c.Close()
		}
	})

	tests := []struct {
		name string
		addr string
		cfg  *tls.Config
		is   func(error) bool
	}{
		{"WrongCA", tlsAddr, &tls.Config{RootCAs: other.pool}, func(err error) bool {
			var ua x509.UnknownAuthorityError
			return errors.As(err, &ua)
		}},
		{"SystemCAs", tlsAddr, &tls.Config{}, func(err error) bool {
			var ua x509.UnknownAuthorityError
			return errors.As(err, &ua)
		}},
		{"WrongName", tlsAddr, &tls.Config{RootCAs: cert.pool, ServerName: "other.test"}, func(err error) bool {
			var he x509.HostnameError
			return errors.As(err, &he)
		}},
		// The server's telnet negotiation or its reset, whichever the
		// handshake meets first.
		{"PlainServer", plainAddr, &tls.Config{RootCAs: cert.pool}, func(err error) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			c, err := Dial(ctx, tt.addr, Config{Logger: testLogger(t), TLS: tt.cfg})
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if !tt.is(err) || !strings.Contains(err.Error(), "tn3270: TLS handshake with "+tt.addr) {
				t.Errorf("Dial: %v (%T)", err, errors.Unwrap(errors.Unwrap(err)))
			}
		})
	}

}

// TestTLSSimWithS3270 has s3270 (OpenSSL) log on to the simulator behind
// tls.NewListener with "L:", x3270's prefix for TLS from the first byte:
// the framing Dial speaks is the one real emulators speak.
func TestTLSSimWithS3270(t *testing.T) {
	path := peer.Require(t, "s3270")
	cert := newTestCert(t)
	addr := startTLSSim(t, cert)
	p := peer.Start(t, peer.Command{Name: "s3270", Path: path,
		// s3270 4.1 checks a certificate for a DNS name only, not for an
		// IP address: it is told the certificate's name.
		Args:          []string{"-model", "3278-2", "-codepage", "cp037", "-cafile", cert.caFile, "-accepthostname", "zvm.test"},
		Env:           []string{"LANG=C.UTF-8", "LC_ALL=C.UTF-8"},
		KeepStdinOpen: true, StopTimeout: 3 * time.Second})
	s := &s3270{t: t, p: p}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for _, action := range []string{"Connect(L:" + addr + ")", "Wait(20,InputField)"} {
		if _, err := s.do(ctx, action); err != nil {
			t.Fatalf("%v\n%s", err, p.Log())
		}
	}
	r, err := s.do(ctx, "Ascii()")
	if err != nil {
		t.Fatal(err)
	}
	if screen := strings.Join(r.data, "\n"); !strings.Contains(screen, "USERID") {
		t.Fatalf("s3270 over TLS shows no logon screen:\n%s", screen)
	}
	if _, err := s.do(ctx, "Disconnect()"); err != nil {
		t.Fatal(err)
	}
}
