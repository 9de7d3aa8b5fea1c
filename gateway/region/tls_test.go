package region

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

// TestSyslogClientCertificates: with --syslog-client-ca, SYSLOG over TLS
// takes messages only from senders whose certificate that CA issued; and
// TLS 1.2 is spoken only with AEAD suites.
func TestSyslogClientCertificates(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out TLS read deadlines: in the full suite only (-short stays well under 35 s)")
	}
	ca, other := peer.NewTLSCA(t), peer.NewTLSCA(t)
	certFile, keyFile := ca.Server(t, "127.0.0.1")
	r, err := New(Config{Name: "T", SyslogTCP: "127.0.0.1:0", UnsolMsg: "127.0.0.1:0", Logger: quietLogger(),
		TLSCertFile: certFile, TLSKeyFile: keyFile, SyslogClientCA: ca.File})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	addr := r.Addr("syslog").String()
	roots := ca.Pool()

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
	wrong.Certificates = []tls.Certificate{other.ClientPair(t, "intruder")}
	if err := send(wrong, "with another CA's certificate"); err == nil {
		t.Error("a sender whose certificate another CA issued was accepted")
	}
	cbc := base()
	cbc.Certificates = []tls.Certificate{ca.ClientPair(t, "web1")}
	cbc.MaxVersion = tls.VersionTLS12
	cbc.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
	if err := send(cbc, "over a CBC suite"); err == nil {
		t.Error("TLS 1.2 with only CBC suites was accepted")
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		good := base()
		good.Certificates = []tls.Certificate{ca.ClientPair(t, "web1")}
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
