//go:build !lean

package main

import (
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

// TestSyslogTLSTrust runs the README's TLS configurations
// (testdata/syslog/rsyslog-tls.conf and syslog-ng-tls.conf; TestForwarders
// sends through them to a region that takes them) where one side must
// refuse the other: a region whose certificate names another host or
// comes from a CA the daemon was not given, and a region that asks for
// client certificates (--syslog-client-ca), with the
// client certificate added as the README says and without it. It also
// pins what each daemon makes of a self-signed region certificate for
// another name given as its CA: rsyslog refuses it, syslog-ng 3.38 takes
// it (the README's "Use a CA").
func TestSyslogTLSTrust(t *testing.T) {
	e2e(t)
	// What each daemon logs when it refuses the region's certificate.
	refusal := map[string]string{
		"rsyslogd":  "peer name not authorized, not permitted to talk to",
		"syslog-ng": "Certificate subject does not match configured hostname",
	}
	for _, cfg := range peer.SyslogConfigs() {
		if !cfg.TLS {
			continue
		}
		t.Run(cfg.Name(), func(t *testing.T) {
			t.Run("region certificate for another name", func(t *testing.T) {
				// Neither the address syslog-ng connects to nor the name
				// rsyslog is given is in the certificate.
				ca := peer.NewTLSCA(t)
				cert, key := ca.Server(t, "region.example.com")
				r := startRegion(t, "--tls-cert", cert, "--tls-key", key)
				fw := peer.StartForwarderTLS(t, cfg, r.syslog, peer.ForwarderTLS{CAFile: ca.File, CertName: "region.example.org"})
				peer.RunLogger(t, fw.Input, "-t", "e2eapp", "to a region of another name")
				waitLogLine(t, fw.Process, refusal[cfg.Daemon])
				if cfg.Daemon == "syslog-ng" {
					// TLS 1.3: syslog-ng's alert comes unencrypted, which
					// crypto/tls reports as a bad record MAC; the region's
					// log says what it may be.
					waitLogLine(t, r.Process, "refused the server's certificate")
				}
				noSyslogEvents(t, r, "--tls-ca", ca.File, "--tls-server-name", "region.example.com")
			})

			t.Run("self-signed region certificate for another name", func(t *testing.T) {
				// The region's certificate made as many operators make
				// one, with openssl req -x509, and given to the daemon as
				// its CA. rsyslog still checks the name; syslog-ng 3.38
				// does not, and takes it: the README's "Use a CA" (this
				// subtest fails when a syslog-ng that checks it comes, and
				// the README should then say so).
				cert, key := selfSignedCert(t, "region.example.com")
				r := startRegion(t, "--tls-cert", cert, "--tls-key", key)
				fw := peer.StartForwarderTLS(t, cfg, r.syslog, peer.ForwarderTLS{CAFile: cert, CertName: "region.example.org"})
				if cfg.Daemon == "syslog-ng" {
					want := []string{"to a self-signed region of another name"}
					peer.RunLogger(t, fw.Input, "-t", "e2eapp", "-p", "local3.warning", want[0])
					evs := tailEvents(t, "--tls-ca", cert, "--tls-server-name", "region.example.com", "--unsolmsg", r.unsolmsg,
						"--after", "0", "--format", "json", "--count", "1", "--timeout", "60s")
					checkMessages(t, evs, want, localHost, "e2eapp", protocol.SevWarning, protocol.Facility(19))
					return
				}
				peer.RunLogger(t, fw.Input, "-t", "e2eapp", "to a self-signed region of another name")
				waitLogLine(t, fw.Process, refusal[cfg.Daemon])
				noSyslogEvents(t, r, "--tls-ca", cert, "--tls-server-name", "region.example.com")
			})

			// refused starts a region with a certificate regionCA signed
			// (and regionArgs), and the daemon verifying it with daemonCA;
			// the region must log a failed handshake and store nothing.
			refused := func(t *testing.T, regionCA, daemonCA *peer.TLSCA, text string, regionArgs ...string) {
				t.Helper()
				cert, key := regionCA.Server(t)
				r := startRegion(t, append([]string{"--tls-cert", cert, "--tls-key", key}, regionArgs...)...)
				fw := peer.StartForwarderTLS(t, cfg, r.syslog, peer.ForwarderTLS{CAFile: daemonCA.File})
				peer.RunLogger(t, fw.Input, "-t", "e2eapp", text)
				waitLogLine(t, r.Process, "TLS handshake failed")
				noSyslogEvents(t, r, "--tls-ca", regionCA.File)
			}
			t.Run("region certificate from another CA", func(t *testing.T) {
				refused(t, peer.NewTLSCA(t), peer.NewTLSCA(t), "to a region another CA vouches for")
			})
			t.Run("client certificate required and missing", func(t *testing.T) {
				ca := peer.NewTLSCA(t)
				refused(t, ca, ca, "without a client certificate", "--syslog-client-ca", ca.File)
			})

			t.Run("client certificate required and given", func(t *testing.T) {
				ca := peer.NewTLSCA(t)
				cert, key := ca.Server(t)
				clientCert, clientKey := ca.Client(t, "web1")
				r := startRegion(t, "--tls-cert", cert, "--tls-key", key, "--syslog-client-ca", ca.File)
				fw := peer.StartForwarderTLS(t, cfg, r.syslog, peer.ForwarderTLS{CAFile: ca.File,
					CertFile: clientCert, KeyFile: clientKey})
				want := []string{"with a client certificate 1", "with a client certificate 2"}
				for _, m := range want {
					peer.RunLogger(t, fw.Input, "-t", "e2eapp", "-p", "local3.warning", m)
				}
				evs := tailEvents(t, "--tls-ca", ca.File, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", "json",
					"--count", "2", "--timeout", "60s")
				checkMessages(t, evs, want, localHost, "e2eapp", protocol.SevWarning, protocol.Facility(19))
			})
		})
	}
}

// waitLogLine waits until p's log has a line containing s.
func waitLogLine(t *testing.T, p *peer.Process, s string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.Log(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %q; its log:\n%s", p.Name(), s, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noSyslogEvents fails t if the region r has stored any syslog event.
func noSyslogEvents(t *testing.T, r *testRegion, tlsArgs ...string) {
	t.Helper()
	tp := startTail(t, append(tlsArgs, "--unsolmsg", r.unsolmsg, "--after", "0", "--count", "1", "--timeout", "2s")...)
	if code := tp.wait(t, 30*time.Second); code == 0 {
		t.Fatalf("a syslog event arrived: %s", tp.stdout.String())
	}
	if !strings.Contains(tp.stderr.String(), "timeout") {
		t.Fatalf("tail did not time out waiting: %s", tp.stderr.String())
	}
}

// selfSignedCert makes a self-signed certificate for host (a DNS name or
// an IP address), and its key, with openssl req -x509, as an operator
// without a CA would.
func selfSignedCert(t *testing.T, host string) (cert, key string) {
	t.Helper()
	openssl := peer.Require(t, "openssl")
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "region.pem"), filepath.Join(dir, "region.key")
	san := "DNS:" + host
	if net.ParseIP(host) != nil {
		san = "IP:" + host
	}
	out, err := exec.Command(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN="+host, "-addext", "subjectAltName="+san).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req -x509: %v\n%s", err, out)
	}
	return cert, key
}
