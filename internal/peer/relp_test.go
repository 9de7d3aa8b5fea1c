package peer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRelpConfig(t *testing.T) {
	text, err := RelpConfig(RelpOptions{Target: "127.0.0.1:2514", WindowSize: 512,
		TLS: &RelpTLS{CACert: "/ca.pem", AuthMode: "name", PermittedPeer: "region"}}, 10514, "/work")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "relp.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	snippet, err := Snippet(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`module(load="omrelp" tls.tlslib="openssl")`, `target="127.0.0.1"`, `port="2514"`,
		`windowSize="512"`, `tls="on"`, `tls.cacert="/ca.pem"`, `tls.permittedPeer="region"`, `action.resumeRetryCount="-1"`} {
		if !strings.Contains(snippet, want) {
			t.Errorf("snippet lacks %s:\n%s", want, snippet)
		}
	}
	if strings.Contains(snippet, "imtcp") || !strings.Contains(text, `port="10514"`) {
		t.Errorf("test plumbing in the snippet, or missing outside it:\n%s", text)
	}
	if _, err := RelpConfig(RelpOptions{Target: "nohost"}, 1, "/w"); err == nil {
		t.Error("a target without a port was accepted")
	}
}

// TestRelpConfigAccepted has rsyslogd check the configuration (-N1) with
// the rsyslog-relp modules.
func TestRelpConfigAccepted(t *testing.T) {
	path, modDir := RequireRelp(t)
	for _, opts := range []RelpOptions{
		{Target: "127.0.0.1:2514"},
		{Target: "127.0.0.1:2514", WindowSize: 1024, Timeout: 10, TLS: &RelpTLS{CACert: "/dev/null", AuthMode: "certvalid"}},
	} {
		text, err := RelpConfig(opts, FreePort(t), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(t.TempDir(), "relp.conf")
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		checkConfig(t, path, "-N1", "-f", conf, "-M", modDir)
	}
}
