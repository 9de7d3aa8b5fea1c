//go:build !lean

package main

// End-to-end tests of the z/VM agent over TLS on both of its links: a
// region with a certificate (TLS on VMMON, COMMANDS and UNSOLMSG), the
// simulator serving TN3270 over TLS with a certificate of its own, and
// `zbridge vmagent --vmmon-tls --vmmon-ca … --tn3270-tls --tn3270-ca …`.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

// tlsFiles are a server certificate for 127.0.0.1 and a DNS name, its key,
// and the certificate of the CA that signed it, in PEM files.
type tlsFiles struct{ ca, cert, key string }

func newTLSFiles(t *testing.T, name string) tlsFiles {
	t.Helper()
	ca := peer.NewTLSCA(t)
	cert, key := ca.Server(t, "127.0.0.1", name)
	return tlsFiles{ca: ca.File, cert: cert, key: key}
}

// tlsZVM is a region with a certificate and a simulator serving TLS with
// another.
type tlsZVM struct {
	*zvmEnv
	r                 *testRegion
	regionTLS, simTLS tlsFiles
}

func startTLSZVM(t *testing.T) *tlsZVM {
	t.Helper()
	z := &tlsZVM{regionTLS: newTLSFiles(t, "region.test"), simTLS: newTLSFiles(t, "zvm.test")}
	dir := t.TempDir()
	z.zvmEnv = &zvmEnv{sim: peer.Addr(peer.FreePort(t)), spool: filepath.Join(dir, "spool"), pwFile: filepath.Join(dir, "pw")}
	if err := os.WriteFile(z.pwFile, []byte("zvmpass1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	peer.Start(t, peer.Command{Name: "zvmsim-tls", Path: zbridgeBin, Args: []string{"zvmsim", "--listen", z.sim,
		"--system", "VMSYS1", "--password-file", z.pwFile, "--more-delay", "2s",
		"--tls-cert", z.simTLS.cert, "--tls-key", z.simTLS.key}, Ready: peer.TCPReady(z.sim)})
	z.r = startRegion(t, "--tls-cert", z.regionTLS.cert, "--tls-key", z.regionTLS.key)
	return z
}

// startAgent starts `zbridge vmagent` with the TLS flags given.
func (z *tlsZVM) startAgent(t *testing.T, tlsArgs ...string) *peer.Process {
	t.Helper()
	args := append([]string{"vmagent", "--vmmon", z.r.vmmon, "--system", "VMSYS1", "--tn3270", z.sim,
		"--user", "OPERATOR", "--password-file", z.pwFile, "--spool", z.spool, "--log-level", "debug",
		"--names-interval", "0"}, tlsArgs...)
	return peer.Start(t, peer.Command{Name: "vmagent-tls", Path: zbridgeBin, Args: args})
}

// cmd runs `zbridge cmd` on the region's COMMANDS port over TLS.
func (z *tlsZVM) cmd(t *testing.T, args ...string) cmdResult {
	t.Helper()
	c := exec.Command(zbridgeBin, append([]string{"cmd", "--commands", z.r.commands, "--tls-ca", z.regionTLS.ca}, args...)...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := runWithin(t, c, 120*time.Second)
	res := cmdResult{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("zbridge cmd: %v", err)
	}
	return res
}

// TestVMAgentTLS: the agent speaks TLS to the region and to the TN3270
// server, each verified with its own CA; a console message reaches an
// UNSOLMSG subscriber and `zvm:` commands are answered.
func TestVMAgentTLS(t *testing.T) {
	e2e(t)
	z := startTLSZVM(t)
	agent := z.startAgent(t, "--vmmon-tls", "--vmmon-ca", z.regionTLS.ca, "--tn3270-tls", "--tn3270-ca", z.simTLS.ca)

	deadline := time.Now().Add(60 * time.Second)
	var res cmdResult
	for time.Now().Before(deadline) {
		if res = z.cmd(t, "zvm:VMSYS1", "--", "QUERY", "TIME"); res.code == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if res.code != 0 || !strings.Contains(res.stdout, "TIME IS") {
		t.Fatalf("zvm:VMSYS1 QUERY TIME over TLS: exit %d, %q %q\nagent log:\n%s", res.code, res.stdout, res.stderr, agent.Log())
	}

	tp := startTail(t, "--unsolmsg", z.r.unsolmsg, "--tls-ca", z.regionTLS.ca, "--after", "0", "--format", "json",
		"--filter", "source=zvm-console", "--timeout", "60s")
	if res := z.cmd(t, "zvm:VMSYS1", "--", "MSG", "*", "hello over TLS"); res.code != 0 {
		t.Fatalf("MSG: exit %d %q %q", res.code, res.stdout, res.stderr)
	}
	found := func() *protocol.Event {
		for _, ev := range tp.events(t) {
			if strings.Contains(ev.Text, "hello over TLS") {
				return &ev
			}
		}
		return nil
	}
	for deadline := time.Now().Add(30 * time.Second); found() == nil && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	tp.cmd.Process.Signal(syscall.SIGINT)
	tp.wait(t, 30*time.Second)
	ev := found()
	if ev == nil {
		t.Fatalf("the message did not reach UNSOLMSG:\n%s\n%s", tp.stdout.String(), tp.stderr.String())
	}
	if ev.Type != "MSG" || ev.User != "OPERATOR" || ev.Origin.System != "VMSYS1" || ev.Source != protocol.SourceZVMConsole {
		t.Errorf("MSG event: %+v", ev)
	}
	if log := agent.Log(); !strings.Contains(log, "(TLS)") {
		t.Errorf("the agent's start-up line does not say TLS:\n%s", log)
	}
}

// TestVMAgentTLSWrongCA: an agent given CAs that signed neither peer's
// certificate gets no session on either link, and says why in its log;
// the region has no agent for VMSYS1.
func TestVMAgentTLSWrongCA(t *testing.T) {
	e2e(t)
	z := startTLSZVM(t)
	wrong := newTLSFiles(t, "wrong.test")
	agent := z.startAgent(t, "--vmmon-tls", "--vmmon-ca", wrong.ca, "--tn3270-ca", wrong.ca)

	want := []string{
		"vmagent: TLS handshake with VMMON " + z.r.vmmon + ": tls: failed to verify certificate: x509: certificate signed by unknown authority",
		"tn3270: TLS handshake with " + z.sim + ": tls: failed to verify certificate: x509: certificate signed by unknown authority",
	}
	missing := func() []string {
		var m []string
		for _, w := range want {
			if !strings.Contains(agent.Log(), w) {
				m = append(m, w)
			}
		}
		return m
	}
	for deadline := time.Now().Add(60 * time.Second); len(missing()) > 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if m := missing(); len(m) > 0 {
		t.Fatalf("the agent's log does not say %q:\n%s", m, agent.Log())
	}
	if strings.Contains(agent.Log(), "VMMON session started") || strings.Contains(agent.Log(), "logged on to the z/VM console") {
		t.Errorf("a link came up with the wrong CA:\n%s", agent.Log())
	}
	if res := z.cmd(t, "zvm:VMSYS1", "--", "QUERY", "TIME"); res.code == 0 {
		t.Errorf("zvm:VMSYS1 answered with the agent's CA wrong: %q", res.stdout)
	}
}

// TestVMAgentTLSFlags: the TLS flags' errors are the operator's, found
// before anything starts.
func TestVMAgentTLSFlags(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644)
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("pw\n"), 0o600)
	base := []string{"--system", "VMSYS1", "--tn3270", "127.0.0.1:1", "--user", "OPERATOR", "--password-file", pw, "--spool", dir}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--vmmon-ca", filepath.Join(dir, "missing.pem")}, "--vmmon-ca: open "},
		{[]string{"--tn3270-ca", notPEM}, "--tn3270-ca: no PEM certificate in " + notPEM},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := runVMAgent(append(append([]string{}, base...), tt.args...), &out, &errb); code != 2 || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errb.String(), tt.want)
			}
		})
	}
	var out, errb bytes.Buffer
	if code := runZVMSim([]string{"--password-file", pw, "--tls-cert", notPEM}, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "--tls-cert and --tls-key go together") {
		t.Errorf("zvmsim --tls-cert alone: exit %d, stderr %q", code, errb.String())
	}
}
