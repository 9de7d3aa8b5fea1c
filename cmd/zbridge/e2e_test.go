//go:build !lean

package main

// End-to-end tests: the zbridge binary as users run it, with real syslog
// senders (rsyslog, syslog-ng, logger) and real subscribers (zbridge tail,
// the README's Python client).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

var zbridgeBin string

// clusterKeyFile is the cluster key every test region on Redis shares.
var clusterKeyFile string

// e2e skips an end-to-end test under -short (the quick pass before a
// commit); CI and `go test ./...` run them all.
func e2e(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: not run with -short")
	}
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "zbridge-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	zbridgeBin = filepath.Join(dir, "zbridge")
	clusterKeyFile = filepath.Join(dir, "cluster.key")
	if err := os.WriteFile(clusterKeyFile, []byte("e2e-test-cluster-key-0123456789abcdef\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := peer.GoBuild(nil, "-o", zbridgeBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building zbridge: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testRegion is a `zbridge region` process on loopback ports of its own.
type testRegion struct {
	*peer.Process
	syslog, unsolmsg, commands, vmmon, http string
}

func startRegion(t *testing.T, extra ...string) *testRegion {
	t.Helper()
	port := peer.FreePort(t) // free for TCP; the UDP port of the same number is checked by the region
	r := &testRegion{
		syslog:   peer.Addr(port),
		unsolmsg: peer.Addr(peer.FreePort(t)),
		commands: peer.Addr(peer.FreePort(t)),
		vmmon:    peer.Addr(peer.FreePort(t)),
		http:     peer.Addr(peer.FreePort(t)),
	}
	if slices.Contains(extra, "--redis") && !slices.Contains(extra, "--cluster-key-file") {
		extra = append(extra, "--cluster-key-file", clusterKeyFile)
	}
	if !slices.Contains(extra, "--data-dir") && !slices.Contains(extra, "--redis") {
		extra = append(extra, "--data-dir", t.TempDir()) // never the user's own state directory
	}
	args := append([]string{"region", "--name", "TEST1", "--syslog", r.syslog, "--syslog-udp", r.syslog,
		"--unsolmsg", r.unsolmsg, "--commands", r.commands, "--vmmon", r.vmmon, "--http", r.http, "--log-level", "debug"}, extra...)
	healthz := "http://" + r.http + "/healthz"
	if slices.Contains(extra, "--tls-cert") {
		healthz = "https://" + r.http + "/healthz"
	}
	r.Process = peer.Start(t, peer.Command{Name: "zbridge-region", Path: zbridgeBin, Args: args,
		Ready: func(ctx context.Context) error {
			for _, a := range []string{r.syslog, r.unsolmsg, r.commands, r.http} {
				if err := peer.TCPReady(a)(ctx); err != nil {
					return err
				}
			}
			return regionStarted(ctx, healthz)
		}})
	return r
}

// regionStarted waits until /healthz no longer says "starting": the region
// has issued its ZBR001I, so a test's own events come after it. The
// certificate is not checked: this only asks whether a loopback process the
// test started is up, and the tests that check certificates do so apart.
func regionStarted(ctx context.Context, url string) error {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer c.CloseIdleConnections()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err == nil {
			var h struct{ Status string }
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if err == nil && h.Status != "starting" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: still starting: %w (last: %v)", url, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// tailProc runs `zbridge tail` in the background and collects its output.
type tailProc struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan error
}

// syncBuffer is a bytes.Buffer a test may read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

// startTail runs `zbridge tail` with args. Without a --filter of its own
// it gets --filter source=syslog: the tests that count what their senders
// sent must not count the region's own messages (ZBR001I at start).
func startTail(t *testing.T, args ...string) *tailProc {
	t.Helper()
	if !slices.Contains(args, "--filter") {
		args = append(args[:len(args):len(args)], "--filter", "source=syslog")
	}
	tp := &tailProc{done: make(chan error, 1)}
	tp.cmd = exec.Command(zbridgeBin, append([]string{"tail"}, args...)...)
	tp.cmd.Stdout, tp.cmd.Stderr = &tp.stdout, &tp.stderr
	if err := tp.cmd.Start(); err != nil {
		t.Fatalf("starting tail: %v", err)
	}
	go func() { tp.done <- tp.cmd.Wait() }()
	t.Cleanup(func() {
		tp.cmd.Process.Kill()
		<-tp.done
	})
	return tp
}

// wait waits for tail to exit and returns its exit code.
func (tp *tailProc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case err := <-tp.done:
		tp.done <- err
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatalf("tail: %v", err)
	case <-time.After(within):
		tp.cmd.Process.Kill()
		t.Fatalf("tail did not finish within %v; stderr:\n%s", within, tp.stderr.String())
	}
	return -1
}

// events parses tail's JSON output so far (complete lines only).
func (tp *tailProc) events(t *testing.T) []protocol.Event {
	t.Helper()
	var out []protocol.Event
	text := tp.stdout.String()
	text = text[:strings.LastIndexByte(text, '\n')+1]
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e protocol.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("tail printed a line that is not an event: %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// tailEvents runs tail to completion and returns its events, failing the test
// unless it exits 0.
func tailEvents(t *testing.T, args ...string) []protocol.Event {
	t.Helper()
	tp := startTail(t, args...)
	if code := tp.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("tail %v exited %d; stderr:\n%s", args, code, tp.stderr.String())
	}
	return tp.events(t)
}

func TestForwarders(t *testing.T) {
	e2e(t)
	const n = 200
	for _, cfg := range peer.SyslogConfigs() {
		t.Run(cfg.Name(), func(t *testing.T) {
			r, fw, tlsArgs := startForwarding(t, cfg)
			// One logger run sends every line of its standard input as
			// one message, in order, to the daemon's loopback input.
			var in strings.Builder
			want := make([]string, n)
			for i := range want {
				want[i] = fmt.Sprintf("%s message %d of %d: ü \"quoted\" \\ end", cfg.Name(), i, n)
				in.WriteString(want[i] + "\n")
			}
			host, port, _ := net.SplitHostPort(fw.Input)
			logger := exec.Command(peer.Require(t, "logger"), "--server", host, "--port", port, "--tcp",
				"--octet-count", "--rfc5424", "--socket-errors=on", "-t", "e2eapp", "-p", "local3.warning")
			logger.Stdin = strings.NewReader(in.String())
			if out, err := logger.CombinedOutput(); err != nil {
				t.Fatalf("logger: %v: %s", err, out)
			}
			evs := tailEvents(t, append(tlsArgs, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", "json",
				"--count", fmt.Sprint(n), "--timeout", "60s")...)
			checkMessages(t, evs, want, localHost, "e2eapp", protocol.SevWarning, protocol.Facility(19))
			// Nothing more arrives: no duplicates.
			last := evs[len(evs)-1].ID.String()
			tp := startTail(t, append(tlsArgs, "--unsolmsg", r.unsolmsg, "--after", last, "--count", "1", "--timeout", "2s")...)
			if code := tp.wait(t, 30*time.Second); code == 0 {
				t.Fatalf("an event arrived after the last expected one: %s", tp.stdout.String())
			}
		})
	}
}

// startForwarding starts a region and cfg's daemon forwarding to it. For a
// configuration with TLS the region serves a certificate for 127.0.0.1
// signed by a CA of the test's, which the daemon verifies it with;
// tlsArgs are then what a client of the region's other ports needs.
func startForwarding(t *testing.T, cfg peer.SyslogConfig) (r *testRegion, fw *peer.Forwarder, tlsArgs []string) {
	t.Helper()
	if !cfg.TLS {
		r = startRegion(t)
		return r, peer.StartForwarder(t, cfg, r.syslog), nil
	}
	ca := peer.NewTLSCA(t)
	cert, key := ca.Server(t)
	r = startRegion(t, "--tls-cert", cert, "--tls-key", key)
	return r, peer.StartForwarderTLS(t, cfg, r.syslog, peer.ForwarderTLS{CAFile: ca.File}), []string{"--tls-ca", ca.File}
}

// localHost stands for this machine's host name in checkMessages: logger
// (util-linux 2.38) cannot set another.
const localHost = "(this host)"

func isLocalHost(h string) bool {
	name, err := os.Hostname()
	return err == nil && (h == name || strings.HasPrefix(h, name+"."))
}

// checkMessages checks that evs are exactly want, in order, with the
// given origin, app, severity and facility.
func checkMessages(t *testing.T, evs []protocol.Event, want []string, host, app string, sev protocol.Severity, fac protocol.Facility) {
	t.Helper()
	if len(evs) != len(want) {
		t.Fatalf("got %d events, want %d", len(evs), len(want))
	}
	for i, e := range evs {
		if e.Text != want[i] {
			t.Fatalf("event %d: text %q, want %q", i, e.Text, want[i])
		}
		hostOK := e.Origin.Host == host || host == localHost && isLocalHost(e.Origin.Host)
		if !hostOK || e.App != app || e.Severity != sev || e.Facility != fac || !e.Parsed ||
			e.Source != protocol.SourceSyslog {
			t.Fatalf("event %d: host %q app %q severity %v facility %v parsed %v source %v; want %q %q %v %v true syslog",
				i, e.Origin.Host, e.App, e.Severity, e.Facility, e.Parsed, e.Source, host, app, sev, fac)
		}
		if i > 0 && !evs[i-1].ID.Less(e.ID) {
			t.Fatalf("event IDs out of order: %v then %v", evs[i-1].ID, e.ID)
		}
	}
}

func TestLogger(t *testing.T) {
	e2e(t)
	tests := []struct {
		name string
		args []string
	}{
		{"RFC5424-TCP", []string{"--tcp", "--octet-count", "--rfc5424"}},
		{"RFC5424-UDP", []string{"--udp", "--rfc5424"}},
		{"RFC3164-TCP", []string{"--tcp", "--rfc3164"}},
		{"RFC3164-UDP", []string{"--udp", "--rfc3164"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := startRegion(t)
			host, port, _ := net.SplitHostPort(r.syslog)
			// One logger run is one sender: it sends each line of its
			// standard input as a message, in order (separate runs are
			// separate senders, whose messages have no order between them).
			want := []string{tc.name + " first", tc.name + " second", tc.name + " third"}
			args := append([]string{"--server", host, "--port", port, "-t", "loggerapp", "-p", "daemon.err"}, tc.args...)
			lg := exec.Command(peer.Require(t, "logger"), args...)
			lg.Stdin = strings.NewReader(strings.Join(want, "\n") + "\n")
			if out, err := lg.CombinedOutput(); err != nil {
				t.Fatalf("logger: %v: %s", err, out)
			}
			evs := tailEvents(t, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", "json",
				"--count", "3", "--timeout", "30s")
			checkMessages(t, evs, want, localHost, "loggerapp", protocol.SevErr, protocol.FacDaemon)
			if strings.Contains(tc.name, "3164") && evs[0].TimeFilled == "" {
				t.Errorf("RFC 3164 event does not say its year/zone were filled: %+v", evs[0])
			}
		})
	}
	t.Run("NewlineSurvivesOctetCounting", func(t *testing.T) {
		r := startRegion(t)
		host, port, _ := net.SplitHostPort(r.syslog)
		msg := "first line\nsecond line"
		out, err := exec.Command(peer.Require(t, "logger"), "--server", host, "--port", port, "--tcp",
			"--octet-count", "--rfc5424", "-t", "nl", msg).CombinedOutput()
		if err != nil {
			t.Fatalf("logger: %v: %s", err, out)
		}
		evs := tailEvents(t, "--unsolmsg", r.unsolmsg, "--after", "0", "--format", "json",
			"--count", "1", "--timeout", "30s")
		if evs[0].Text != msg {
			t.Fatalf("text = %q, want %q", evs[0].Text, msg)
		}
	})
}
