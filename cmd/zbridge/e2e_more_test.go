//go:build !lean

package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
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

// sendSyslog writes raw bytes to the region's SYSLOG TCP port and closes.
func sendSyslog(t *testing.T, addr string, data string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, data); err != nil {
		t.Fatal(err)
	}
}

func octet(msg string) string { return fmt.Sprintf("%d %s", len(msg), msg) }

func msg5424(host, text string) string {
	return fmt.Sprintf("<14>1 2026-11-22T10:00:00.123Z %s app 1 - - %s", host, text)
}

func TestResume(t *testing.T) {
	e2e(t)
	r := startRegion(t)
	var batch1, batch2 []string
	var data strings.Builder
	for i := 0; i < 10; i++ {
		batch1 = append(batch1, fmt.Sprintf("before %d", i))
		data.WriteString(octet(msg5424("lnxres", batch1[i])))
	}
	sendSyslog(t, r.syslog, data.String())
	first := tailEvents(t, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", "json", "--count", "4", "--timeout", "30s")
	seenID := first[3].ID.String()
	// While the subscriber is away, more arrive.
	data.Reset()
	for i := 0; i < 10; i++ {
		batch2 = append(batch2, fmt.Sprintf("while away %d", i))
		data.WriteString(octet(msg5424("lnxres", batch2[i])))
	}
	sendSyslog(t, r.syslog, data.String())
	rest := tailEvents(t, "--unsolmsg", r.unsolmsg, "--after", seenID, "--format", "json", "--count", "16", "--timeout", "30s")
	want := append(append([]string{}, batch1[4:]...), batch2...)
	checkMessages(t, rest, want, "lnxres", "app", protocol.SevInfo, protocol.FacUser)
	tp := startTail(t, "--unsolmsg", r.unsolmsg, "--after", rest[len(rest)-1].ID.String(), "--count", "1", "--timeout", "2s")
	if code := tp.wait(t, 30*time.Second); code == 0 {
		t.Fatalf("a duplicate or extra event arrived: %s", tp.stdout.String())
	}
	if !strings.Contains(tp.stderr.String(), "timeout") {
		t.Errorf("tail timing out should say so on stderr; got %q", tp.stderr.String())
	}
}

// readmePython returns the Python client from the README.
func readmePython(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "```python\n")
	if i < 0 {
		t.Fatal("README has no ```python block")
	}
	s = s[i+len("```python\n"):]
	j := strings.Index(s, "```")
	return s[:j]
}

func TestReadmePythonClient(t *testing.T) {
	e2e(t)
	py := peer.Require(t, "python3")
	r := startRegion(t)
	var data strings.Builder
	for i := 0; i < 5; i++ {
		data.WriteString(octet(msg5424("lnxpy", fmt.Sprintf("for python %d", i))))
	}
	sendSyslog(t, r.syslog, data.String())
	script := filepath.Join(t.TempDir(), "client.py")
	if err := os.WriteFile(script, []byte(readmePython(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(r.unsolmsg)
	cmd := exec.Command(py, script, "6") // the region's ZBR001I, then the five
	cmd.Env = append(os.Environ(), "ZBRIDGE_PORT="+port, "ZBRIDGE_AFTER=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan struct{})
	timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.Output()
	close(done)
	if err != nil {
		t.Fatalf("python client: %v\nstderr: %s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 0 && strings.Contains(lines[0], " - info ZBR001I REGION TEST1 STARTED: ") {
		lines = lines[1:]
	}
	if len(lines) != 5 {
		t.Fatalf("python client printed %d lines, want 5:\n%s", len(lines), out)
	}
	for i, l := range lines {
		f := strings.SplitN(l, " ", 4)
		if len(f) != 4 || f[1] != "lnxpy" || f[2] != "info" || f[3] != fmt.Sprintf("for python %d", i) {
			t.Errorf("line %d = %q", i, l)
		}
		if _, err := protocol.ParseID(f[0]); err != nil {
			t.Errorf("line %d: bad ID: %v", i, err)
		}
	}
}

func TestProtectedMode(t *testing.T) {
	e2e(t)
	for _, tc := range []struct{ name, flag, addr, want string }{
		{"UnsolMsg", "--unsolmsg", "0.0.0.0:%d", "--clients"},
		{"Commands", "--commands", "0.0.0.0:%d", "--clients"},
		{"VMMon", "--vmmon", "0.0.0.0:%d", "--clients"},
		{"Syslog", "--syslog", "0.0.0.0:%d", "--allow"},
		{"HTTP", "--http", "[::]:%d", "--allow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"region", "--data-dir", "", "--syslog", peer.Addr(peer.FreePort(t)), "--syslog-udp", "",
				"--unsolmsg", peer.Addr(peer.FreePort(t)), "--commands", peer.Addr(peer.FreePort(t)),
				"--vmmon", peer.Addr(peer.FreePort(t)), "--http", peer.Addr(peer.FreePort(t))}
			args = append(args, tc.flag, fmt.Sprintf(tc.addr, peer.FreePort(t)))
			cmd := exec.Command(zbridgeBin, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := runWithin(t, cmd, 30*time.Second)
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 {
				t.Fatalf("region started or failed oddly (%v); stderr:\n%s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "protected mode") || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr does not explain protected mode and %s:\n%s", tc.want, stderr.String())
			}
		})
	}
}

func runWithin(t *testing.T, cmd *exec.Cmd, d time.Duration) error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(d, func() { cmd.Process.Kill() })
	defer timer.Stop()
	return cmd.Wait()
}

func TestSIGTERMDrains(t *testing.T) {
	e2e(t)
	// 2000 messages at once from one host pass the default flood
	// limits' burst: flood control is off, every message must arrive.
	r := startRegion(t, "--flood-rate", "0", "--flood-msgid-rate", "0")
	// A live subscriber; then a burst of messages; then SIGTERM at once.
	tp := startTail(t, "--unsolmsg", r.unsolmsg, "--format", "json", "--timeout", "60s")
	waitSessions(t, r.http, 1)
	if !waitUntil(30*time.Second, func() bool { return strings.Contains(r.Log(), "subscribed") }) {
		t.Fatalf("the tail did not subscribe:\n%s", r.Log())
	}
	var data strings.Builder
	const n = 2000
	for i := 0; i < n; i++ {
		data.WriteString(octet(msg5424("lnxterm", fmt.Sprintf("burst %d", i))))
	}
	sendSyslog(t, r.syslog, data.String())
	// SIGTERM once the region has the connection (not while it waits in
	// the listen backlog: that one is the kernel's, refused at shutdown).
	if !waitUntil(30*time.Second, func() bool {
		v, ok := metric(t, r.http, "zbridge_syslog_connections_total")
		return ok && v >= 1
	}) {
		t.Fatal("the region did not accept the syslog connection")
	}
	if err := r.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("region did not exit within 30s of SIGTERM")
	}
	if err := r.Wait(); err != nil {
		t.Fatalf("region exit after SIGTERM: %v (want 0)\n%s", err, r.Log())
	}
	code := tp.wait(t, 30*time.Second)
	if code == 0 || !strings.Contains(tp.stderr.String(), "shutdown") {
		t.Errorf("tail should end with the region's bye shutdown; exit %d, stderr %q", code, tp.stderr.String())
	}
	evs := tp.events(t)
	if len(evs) != n {
		t.Fatalf("subscriber got %d of the %d messages sent before SIGTERM", len(evs), n)
	}
}

// waitSessions waits until the region's /healthz reports n UNSOLMSG sessions.
func waitSessions(t *testing.T, httpAddr string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), fmt.Sprintf(`"unsolmsg_sessions":%d`, n)) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("region never reported %d UNSOLMSG sessions", n)
}

func TestBadInput(t *testing.T) {
	e2e(t)
	r := startRegion(t, "--syslog-max-frame", "3000", "--syslog-read-timeout", "2s", "--write-timeout", "2s")
	good := startTail(t, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", "json",
		"--filter", "origin=lnxgood", "--count", "3", "--timeout", "60s")

	sendSyslog(t, r.syslog, octet(msg5424("lnxgood", "good before")))
	// Malformed syslog: relayed as a raw event, flagged.
	sendSyslog(t, r.syslog, "this is not syslog at all\n")
	// An oversized frame: that connection ends; others carry on.
	sendSyslog(t, r.syslog, octet(msg5424("lnxbig", strings.Repeat("x", 5000))))
	// A sender that stops mid-frame: what it sent is still an event.
	sendSyslog(t, r.syslog, "120 <14>1 2026-11-22T10:00:00Z lnxcut app - - - cut off")
	// A silent sender is disconnected by the read timeout.
	silent, err := net.Dial("tcp", r.syslog)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// Garbage where a LOGON belongs: refused with bad-request.
	uc, err := net.Dial("tcp", r.unsolmsg)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(uc, "GET / HTTP/1.0\r\n\r\n")
	uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(uc)
	uc.Close()
	if !strings.Contains(string(b), `"type":"refuse"`) || !strings.Contains(string(b), `"reason":"bad-request"`) {
		t.Errorf("garbage logon answered %q, want a refuse bad-request", b)
	}
	// A client that subscribes and never reads, under enough traffic to
	// fill its socket: the region ends it and keeps serving everyone else.
	nr, err := net.Dial("tcp", r.unsolmsg)
	if err != nil {
		t.Fatal(err)
	}
	defer nr.Close()
	nr.(*net.TCPConn).SetReadBuffer(4096)
	io.WriteString(nr, `{"type":"logon","req":1,"client":"lazy","version":1}`+"\n"+`{"type":"subscribe","req":2,"after":"0"}`+"\n")
	var flood strings.Builder
	for i := 0; i < 4000; i++ { // about 20 MB of event frames
		flood.WriteString(octet(msg5424("lnxflood", fmt.Sprintf("flood %d %s", i, strings.Repeat("f", 2000)))))
	}
	sendSyslog(t, r.syslog, flood.String())

	sendSyslog(t, r.syslog, octet(msg5424("lnxgood", "good after")))
	silent.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Error("silent sender got data instead of being disconnected")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("silent sender was not disconnected by the read timeout")
	}
	sendSyslog(t, r.syslog, octet(msg5424("lnxgood", "good last")))
	if code := good.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("well-behaved subscriber failed (exit %d): %s", code, good.stderr.String())
	}
	checkMessages(t, good.events(t), []string{"good before", "good after", "good last"}, "lnxgood", "app",
		protocol.SevInfo, protocol.FacUser)

	all := tailEvents(t, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", "json", "--filter", "origin=127.0.0.1",
		"--count", "1", "--timeout", "30s")
	if all[0].Parsed || all[0].ParseError == "" || !strings.Contains(all[0].Raw, "this is not syslog") {
		t.Errorf("malformed line: want a raw, flagged event; got %+v", all[0])
	}
	cut := tailEvents(t, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", "json", "--filter", "origin=lnxcut",
		"--count", "1", "--timeout", "30s")
	if !strings.Contains(cut[0].Raw, "cut off") {
		t.Errorf("partial frame: want an event with what was received; got %+v", cut[0])
	}
	// The oversized frame: what was received of it (up to the limit) is an
	// event flagged with the error.
	big := tailEvents(t, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", "json", "--filter", "origin=lnxbig",
		"--count", "1", "--timeout", "30s")
	if big[0].Parsed || !strings.Contains(big[0].ParseError, "too large") || len(big[0].Raw) > 3000 {
		t.Errorf("oversized frame: want a flagged event of at most the frame limit; got parsed=%v error=%q raw %d bytes",
			big[0].Parsed, big[0].ParseError, len(big[0].Raw))
	}
	// The subscriber that never read was ended for it, and counted.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + r.http + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), `zbridge_sessions_ended_total{reason="behind",server="unsolmsg"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the subscriber that never reads was not ended as behind:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	e2e(t)
	r := startRegion(t)
	sendSyslog(t, r.syslog, octet(msg5424("lnxm", "count me")))
	tailEvents(t, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", "json", "--count", "1", "--timeout", "30s")
	resp, err := http.Get("http://" + r.http + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"status":"ok"`) {
		t.Fatalf("/healthz = %d %s", resp.StatusCode, b)
	}
	resp, err = http.Get("http://" + r.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"zbridge_events_appended_total 2", "zbridge_unsolmsg_events_sent_total 1", // ZBR001I and the message
		"# TYPE zbridge_sessions gauge"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, b)
		}
	}
}

func TestTLSAndAuth(t *testing.T) {
	e2e(t)
	dir := t.TempDir()
	cert, key := selfSignedCert(t, "127.0.0.1") // as an operator without a CA makes one
	// A clients file made with `zbridge passwd`.
	secretFile := filepath.Join(dir, "secret")
	os.WriteFile(secretFile, []byte("correct horse battery\n"), 0o600)
	cmd := exec.Command(zbridgeBin, "passwd", "ops")
	cmd.Stdin, _ = os.Open(secretFile)
	line, err := cmd.Output()
	if err != nil {
		t.Fatalf("zbridge passwd: %v", err)
	}
	if strings.Contains(string(line), "correct horse") {
		t.Fatal("passwd printed the secret")
	}
	clients := filepath.Join(dir, "clients")
	os.WriteFile(clients, line, 0o600)
	// The clients file holds the secret; the config file the role.
	config := filepath.Join(dir, "zbridge.toml")
	os.WriteFile(config, []byte("[[client]]\nname = \"ops\"\nroles = [\"reader\"]\n"+
		"[[role]]\nname = \"reader\"\nports = [\"unsolmsg\"]\nevents = [\"source=syslog\"]\n"), 0o600)
	r := startRegion(t, "--tls-cert", cert, "--tls-key", key, "--clients", clients, "--config", config)

	// Syslog over TLS (RFC 5425: octet counting inside TLS).
	pem, _ := os.ReadFile(cert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tc, err := tls.Dial("tcp", r.syslog, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("syslog TLS: %v", err)
	}
	io.WriteString(tc, octet(msg5424("lnxtls", "over tls")))
	tc.Close()

	evs := tailEvents(t, "--unsolmsg", r.unsolmsg, "--tls-ca", cert, "--client", "ops", "--secret-file", secretFile,
		"--after", "0", "--format", "json", "--count", "1", "--timeout", "30s")
	checkMessages(t, evs, []string{"over tls"}, "lnxtls", "app", protocol.SevInfo, protocol.FacUser)

	wrong := filepath.Join(dir, "wrong")
	os.WriteFile(wrong, []byte("incorrect\n"), 0o600)
	tp := startTail(t, "--unsolmsg", r.unsolmsg, "--tls-ca", cert, "--client", "ops", "--secret-file", wrong,
		"--count", "1", "--timeout", "30s")
	if code := tp.wait(t, 30*time.Second); code == 0 || !strings.Contains(tp.stderr.String(), "refused (auth)") {
		t.Errorf("wrong secret: exit %d, stderr %q; want a refusal for auth", code, tp.stderr.String())
	}
	// Plain TCP to a TLS listener gets nowhere.
	tp = startTail(t, "--unsolmsg", r.unsolmsg, "--client", "ops", "--secret-file", secretFile, "--count", "1", "--timeout", "5s")
	if code := tp.wait(t, 30*time.Second); code == 0 {
		t.Error("plain-text client logged on to a TLS listener")
	}
	if strings.Contains(r.Log(), "correct horse") {
		t.Error("the region logged a secret")
	}
}

func TestTailCannotConnect(t *testing.T) {
	e2e(t)
	tp := startTail(t, "--unsolmsg", peer.Addr(peer.FreePort(t)), "--count", "1", "--timeout", "5s")
	if code := tp.wait(t, 30*time.Second); code == 0 || tp.stderr.Len() == 0 {
		t.Fatalf("tail to a closed port: exit %d, stderr %q; want non-zero with a message", code, tp.stderr.String())
	}
}

func TestReadmeSnippets(t *testing.T) {
	e2e(t)
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range peer.SyslogConfigs() {
		s, err := peer.Snippet(cfg.Path(t))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), s) {
			t.Errorf("README does not quote the forwarding part of %s exactly:\n%s", cfg.File, s)
		}
	}
	// The RELP configuration the tests run, with the README's placeholders.
	text, err := peer.RelpConfig(peer.RelpOptions{Target: "@" + peer.VarRegionHost + "@:@" + peer.VarRegionPort + "@"}, 1, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "relp.conf")
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := peer.Snippet(conf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), s) {
		t.Errorf("README does not quote the RELP forwarding part exactly:\n%s", s)
	}
}
