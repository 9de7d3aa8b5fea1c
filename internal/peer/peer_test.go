package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sink is a plain TCP or UDP listener on 127.0.0.1 that keeps what arrives:
// the byte stream of each TCP connection, or each UDP datagram.
type sink struct {
	network string
	addr    string
	closers []func() error
	wg      sync.WaitGroup // the accept and read goroutines

	mu     sync.Mutex // guards the following fields
	chunks [][]byte   // one per TCP connection or UDP datagram
	conns  []net.Conn
	closed bool
}

// newSink listens on addr, or on a free port if addr is "".
func newSink(t *testing.T, network, addr string) *sink {
	return newSinkTLS(t, network, addr, nil)
}

// newSinkTLS is newSink serving TLS with tc over TCP, when tc is not nil.
func newSinkTLS(t *testing.T, network, addr string, tc *tls.Config) *sink {
	t.Helper()
	if addr == "" {
		addr = Addr(0)
	}
	s := &sink{network: network}
	switch network {
	case "tcp":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		s.addr = l.Addr().String()
		s.closers = append(s.closers, l.Close)
		if tc != nil {
			l = tls.NewListener(l, tc)
		}
		s.wg.Add(1)
		go s.accept(l)
	case "udp":
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		s.addr = c.LocalAddr().String()
		s.closers = append(s.closers, c.Close)
		s.wg.Add(1)
		go s.readDatagrams(c)
	default:
		t.Fatalf("sink: network %q", network)
	}
	t.Cleanup(s.close)
	return s
}

func (s *sink) accept(l net.Listener) {
	defer s.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		i := len(s.chunks)
		s.chunks = append(s.chunks, nil)
		s.conns = append(s.conns, c)
		s.wg.Add(1)
		s.mu.Unlock()
		go s.readStream(c, i)
	}
}

func (s *sink) readStream(c net.Conn, i int) {
	defer s.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		s.mu.Lock()
		s.chunks[i] = append(s.chunks[i], buf[:n]...)
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (s *sink) readDatagrams(c net.PacketConn) {
	defer s.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.chunks = append(s.chunks, bytes.Clone(buf[:n]))
		s.mu.Unlock()
	}
}

func (s *sink) close() {
	s.mu.Lock()
	s.closed = true
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	for _, c := range s.closers {
		c()
	}
	s.wg.Wait()
}

// received returns a copy of what has arrived so far.
func (s *sink) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.chunks))
	for i, c := range s.chunks {
		out[i] = bytes.Clone(c)
	}
	return out
}

// splitFrames splits what a sink received into syslog messages as framing
// says, or returns an error where the bytes do not follow that framing. A
// frame still arriving at the end of a stream is left out.
func splitFrames(framing Framing, chunks [][]byte) ([]string, error) {
	var msgs []string
	for _, chunk := range chunks {
		switch framing {
		case FramingDatagram:
			msgs = append(msgs, string(chunk))
		case FramingLF:
			for len(chunk) > 0 {
				i := bytes.IndexByte(chunk, '\n')
				if i < 0 {
					break // incomplete
				}
				msgs = append(msgs, string(chunk[:i]))
				chunk = chunk[i+1:]
			}
		case FramingOctetCounted:
			for len(chunk) > 0 {
				sp := bytes.IndexByte(chunk, ' ')
				if sp < 0 {
					break // incomplete
				}
				n, err := strconv.Atoi(string(chunk[:sp]))
				if err != nil || n <= 0 || chunk[0] == '0' {
					return nil, fmt.Errorf("octet-counted frame does not start with a length: %q", trunc(chunk))
				}
				if len(chunk) < sp+1+n {
					break // incomplete
				}
				msgs = append(msgs, string(chunk[sp+1:sp+1+n]))
				chunk = chunk[sp+1+n:]
			}
		default:
			return nil, fmt.Errorf("framing %q", framing)
		}
	}
	return msgs, nil
}

func trunc(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// rfc5424RE matches the head of an RFC 5424 message: <PRI>1 TIMESTAMP.
var rfc5424RE = regexp.MustCompile(`^<\d{1,3}>1 \d{4}-\d\d-\d\dT`)

// assertGone checks that the process pid no longer runs: it does not exist,
// or is a zombie waiting for a parent that is not us (an orphan whose reaper
// is slow).
func assertGone(t *testing.T, name string, pid int) {
	t.Helper()
	if pid <= 0 {
		t.Fatalf("%s: no pid recorded", name)
	}
	err := syscall.Kill(pid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return
	}
	stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	// pid (comm) state ...; comm may hold spaces, so look after the last ')'.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && bytes.HasPrefix(stat[i:], []byte(") Z")) {
		return
	}
	t.Errorf("%s (pid %d) still exists after cleanup (kill 0: %v; stat %q)", name, pid, err, stat)
}

// TestForwarders starts each syslog daemon configuration pointed at a sink,
// sends messages into it with the real logger, and checks what the sink gets.
func TestForwarders(t *testing.T) {
	for _, cfg := range SyslogConfigs() {
		var pid int
		t.Run(cfg.Name(), func(t *testing.T) {
			sk, fw := forwardToSink(t, cfg, "")
			pid = fw.Pid()

			tag := "zbtest"
			var want []string
			for i := range 3 {
				msg := fmt.Sprintf("peer test %s message %d", cfg.Name(), i)
				want = append(want, msg)
				RunLogger(t, fw.Input, "-t", tag, msg)
			}

			got := waitMessages(t, sk, cfg, want)
			for _, m := range got {
				if !rfc5424RE.MatchString(m) {
					t.Errorf("not an RFC 5424 message: %q", m)
				}
				if strings.Contains(m, tag) && !strings.Contains(m, " "+tag+" ") {
					t.Errorf("APP-NAME %q not in its field: %q", tag, m)
				}
			}
			// The order logger sent them in survives the daemon.
			var order []string
			for _, m := range got {
				for _, w := range want {
					if strings.HasSuffix(strings.TrimRight(m, "\n"), w) {
						order = append(order, w)
					}
				}
			}
			if strings.Join(order, "|") != strings.Join(want, "|") {
				t.Errorf("messages arrived as %q, want %q", order, want)
			}
		})
		if pid != 0 { // 0: the subtest skipped (-short, a missing peer, -run) before starting anything
			assertGone(t, cfg.Daemon, pid)
		}
	}
}

// forwardToSink starts a sink at addr ("" for any port) and cfg's daemon
// forwarding to it: over TLS for a configuration with TLS, the sink's
// certificate signed by a CA of the test's that the daemon is given.
func forwardToSink(t *testing.T, cfg SyslogConfig, addr string) (*sink, *Forwarder) {
	t.Helper()
	if !cfg.TLS {
		sk := newSink(t, cfg.Network, addr)
		return sk, StartForwarder(t, cfg, sk.addr)
	}
	ca := NewTLSCA(t)
	sk := newSinkTLS(t, cfg.Network, addr, ca.ServerConfig(t))
	return sk, StartForwarderTLS(t, cfg, sk.addr, ForwarderTLS{CAFile: ca.File})
}

// waitMessages waits until the sink has received messages containing each
// of want, checks the framing of all it got, and returns the messages.
func waitMessages(t *testing.T, sk *sink, cfg SyslogConfig, want []string) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		chunks := sk.received()
		got, err := splitFrames(cfg.Framing, chunks)
		if err != nil {
			t.Fatalf("%s framing: %v", cfg.Framing, err)
		}
		if countContaining(got, want) == len(want) {
			checkFraming(t, cfg, chunks)
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s the sink has %d messages, want ones containing %q:\n%q", len(got), want, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestForwardersQueue checks the promise of the TCP snippets: messages sent
// while the region is not listening wait in the daemon's queue and arrive
// once it is.
func TestForwardersQueue(t *testing.T) {
	for _, cfg := range SyslogConfigs() {
		if cfg.Network != "tcp" {
			continue // UDP makes no such promise
		}
		t.Run(cfg.Name(), func(t *testing.T) {
			t.Parallel()
			region := Addr(FreePort(t))
			var ca *TLSCA
			var fw *Forwarder
			if cfg.TLS {
				ca = NewTLSCA(t)
				fw = StartForwarderTLS(t, cfg, region, ForwarderTLS{CAFile: ca.File})
			} else {
				fw = StartForwarder(t, cfg, region)
			}
			var want []string
			for i := range 3 {
				msg := fmt.Sprintf("queued %s message %d", cfg.Name(), i)
				want = append(want, msg)
				RunLogger(t, fw.Input, "-t", "zbtest", msg)
			}
			// Let the daemon fail to connect at least once.
			time.Sleep(1500 * time.Millisecond)
			var tc *tls.Config
			if cfg.TLS {
				tc = ca.ServerConfig(t)
			}
			sk := newSinkTLS(t, cfg.Network, region, tc)
			waitMessages(t, sk, cfg, want)
		})
	}
}

func countContaining(got, want []string) int {
	n := 0
	for _, w := range want {
		for _, g := range got {
			if strings.Contains(g, w) {
				n++
				break
			}
		}
	}
	return n
}

// checkFraming checks the raw bytes beyond what splitFrames accepts.
func checkFraming(t *testing.T, cfg SyslogConfig, chunks [][]byte) {
	t.Helper()
	octetRE := regexp.MustCompile(`^[1-9][0-9]* <`)
	for _, c := range chunks {
		switch cfg.Framing {
		case FramingOctetCounted:
			if !octetRE.Match(c) {
				t.Errorf("stream does not start with a length and a space: %q", trunc(c))
			}
			// Both daemons count a trailing LF into each frame (see
			// FramingOctetCounted): pinned here for the region's parser.
			msgs, _ := splitFrames(cfg.Framing, [][]byte{c})
			for _, m := range msgs {
				if !strings.HasSuffix(m, "\n") {
					t.Errorf("octet-counted frame without its trailing LF: %q", m)
				}
			}
		case FramingLF:
			if !bytes.HasPrefix(c, []byte("<")) || !bytes.HasSuffix(c, []byte("\n")) {
				t.Errorf("LF-framed stream does not start with '<' and end with a newline: %q", c)
			}
		case FramingDatagram:
			if !bytes.HasPrefix(c, []byte("<")) || bytes.Count(c, []byte("<13>1 ")) != 1 {
				t.Errorf("datagram is not one message: %q", c)
			}
		}
	}
}

// TestSnippets checks that each configuration has a forwarding part for
// users that needs only the region's address and holds none of the test's
// plumbing.
func TestSnippets(t *testing.T) {
	for _, cfg := range SyslogConfigs() {
		t.Run(cfg.Name(), func(t *testing.T) {
			s, err := Snippet(cfg.Path(t))
			if err != nil {
				t.Fatal(err)
			}
			required := []string{"@" + VarRegionHost + "@", "@" + VarRegionPort + "@"}
			var optional []string
			if cfg.TLS {
				required = append(required, "@"+VarRegionCAFile+"@")
				optional = []string{"@" + VarRegionCertName + "@"} // for a daemon told the name
			}
			allowed := append(slices.Clone(required), optional...)
			for _, want := range required {
				if !strings.Contains(s, want) {
					t.Errorf("snippet lacks %s:\n%s", want, s)
				}
			}
			for _, p := range placeholderRE.FindAllString(s, -1) {
				if !slices.Contains(allowed, p) {
					t.Errorf("snippet holds test plumbing %s:\n%s", p, s)
				}
			}
			if !strings.HasPrefix(s, "# ") {
				t.Errorf("snippet does not open with a comment:\n%s", s)
			}
		})
	}
}

func TestSnippetMarkers(t *testing.T) {
	b, e := SnippetBegin+"\n", SnippetEnd+"\n"
	tests := []struct {
		name string
		file string
		want string // "" for an error
	}{
		{"ok", "head\n" + b + "a\n\nb\n" + e + "tail\n", "a\n\nb\n"},
		{"indented markers", "  " + b + "x\n  " + e, "x\n"},
		{"no markers", "a\nb\n", ""},
		{"no end", b + "a\n", ""},
		{"end first", e + "a\n" + b, ""},
		{"two begins", b + b + "a\n" + e, ""},
		{"two snippets", b + "a\n" + e + b + "b\n" + e, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.conf")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := Snippet(path)
			if tc.want == "" {
				if !errors.Is(err, ErrNoSnippet) {
					t.Errorf("Snippet = %q, %v; want ErrNoSnippet", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Snippet = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestRenderConfig(t *testing.T) {
	src := filepath.Join(t.TempDir(), "in.conf")
	if err := os.WriteFile(src, []byte("@version: 3.38\nport(@REGION_PORT@) @REGION_PORT@ x@WORKDIR@\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := RenderConfig(t, src, map[string]string{VarRegionPort: "6514", VarWorkDir: "/w"})
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "@version: 3.38\nport(6514) 6514 x/w\n"; string(data) != want {
		t.Errorf("rendered %q, want %q", data, want)
	}
	if filepath.Base(out) != "in.conf" || out == src {
		t.Errorf("rendered to %s", out)
	}
}

func TestRedis(t *testing.T) {
	var pids []int
	t.Run("stop and restart", func(t *testing.T) {
		addr, p := StartRedis(t)
		ctx := t.Context()
		ping := func(wantUp bool) {
			t.Helper()
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			err := RedisPing(ctx, addr)
			if wantUp && err != nil {
				t.Fatalf("PING %s: %v", addr, err)
			}
			if !wantUp && err == nil {
				t.Fatalf("PING %s answered while redis is stopped", addr)
			}
		}
		ping(true)
		pids = append(pids, p.Pid())

		p.Stop()
		if p.Running() {
			t.Fatal("Running after Stop")
		}
		ping(false)
		p.Restart()
		ping(true)
		pids = append(pids, p.Pid())

		p.Kill()
		if err := p.Wait(); err == nil {
			t.Error("Wait after Kill = nil, want the signal")
		}
		ping(false)
		p.Restart()
		ping(true)
		pids = append(pids, p.Pid())
		if pids[0] == pids[1] || pids[1] == pids[2] {
			t.Errorf("Restart kept the pid: %v", pids)
		}
		if log := p.Log(); !strings.Contains(log, "--- peer: restart 2") || !strings.Contains(log, "Ready to accept connections") {
			t.Errorf("log lacks the restarts:\n%s", log)
		}
	})
	for _, pid := range pids {
		assertGone(t, "redis-server", pid)
	}
}

// TestProcessGroup checks that stopping a Process also ends what it forked.
func TestProcessGroup(t *testing.T) {
	sh := Require(t, "sh")
	var pid, child int
	t.Run("start", func(t *testing.T) {
		p := Start(t, Command{
			Path: sh,
			// A child that ignores SIGTERM, so that only the group's
			// SIGKILL after StopTimeout ends it.
			Args:        []string{"-c", `(trap '' TERM; exec sleep 1000) & echo "child $!"; wait`},
			StopTimeout: 500 * time.Millisecond,
			Ready: func(context.Context) error {
				return nil
			},
		})
		pid = p.Pid()
		deadline := time.Now().Add(10 * time.Second)
		for child == 0 && time.Now().Before(deadline) {
			fmt.Sscanf(p.Log(), "child %d", &child)
			time.Sleep(10 * time.Millisecond)
		}
		if child == 0 {
			t.Fatalf("no child pid in log %q", p.Log())
		}
		if !p.Running() {
			t.Fatal("not running")
		}
	})
	assertGone(t, "sh", pid)
	// SIGKILL is delivered asynchronously: give the orphan a moment to die.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child)); len(st) == 0 || bytes.Contains(st, []byte(") Z")) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	assertGone(t, "sleep", child)
}

func TestFreePort(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		port := FreePort(t)
		if port <= 0 || port > 65535 {
			t.Fatalf("FreePort = %d", port)
		}
		seen[port] = true
		l, err := net.Listen("tcp", Addr(port))
		if err != nil {
			t.Fatalf("TCP %d: %v", port, err)
		}
		c, err := net.ListenPacket("udp", Addr(port))
		if err != nil {
			l.Close()
			t.Fatalf("UDP %d: %v", port, err)
		}
		l.Close()
		c.Close()
	}
	if len(seen) < 15 {
		t.Errorf("FreePort gave only %d distinct ports in 20 calls", len(seen))
	}
}

func TestLookup(t *testing.T) {
	if _, err := Lookup("zbridge-no-such-program"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup(missing) error = %v, want ErrNotFound", err)
	}
	path, err := Lookup("sh")
	if err != nil || !filepath.IsAbs(path) {
		t.Errorf("Lookup(sh) = %q, %v", path, err)
	}
}

// TestKeepStdinOpen checks that a program given KeepStdinOpen reads what the
// test writes and does not see end of file until it is stopped.
func TestKeepStdinOpen(t *testing.T) {
	p := Start(t, Command{Path: Require(t, "cat"), KeepStdinOpen: true})
	if _, err := io.WriteString(p.Stdin(), "hello stdin\n"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Log(), "hello stdin") {
		if time.Now().After(deadline) {
			t.Fatalf("cat did not echo; log %q", p.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !p.Running() {
		t.Fatal("cat exited while its stdin is open")
	}
	p.Stop()
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
}
