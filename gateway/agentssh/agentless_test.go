package agentssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/internal/tcpalive"
)

// TestAgentless runs commands on a real OpenSSH sshd, started as the test's
// own process with a private configuration, logging in as the user running
// the test.
func TestAgentless(t *testing.T) {
	checkLeaks(t)
	f := newFixture(t)
	port := peer.FreePort(t)
	addr := peer.Addr(port)
	hostKey := filepath.Join(f.dir, "host_ed25519")
	hostPub := f.genKey("ed25519", hostKey, "")
	sshd := f.startSSHD(port, hostKey, "AcceptEnv ZBRIDGE_*")
	signalsRefused := 0 // sshd's complaints about signal requests so far
	f.pin(addr, hostPub)
	// Keepalives often enough for the host info subtest to see one, not so
	// often that one stall of a loaded machine drops the connection.
	p := f.newPool(func(c *Config) { c.KeepAlive = 2 * time.Second })
	p.Add("lx1", addr)
	waitConnected(t, p, "lx1")

	run := func(t *testing.T, cmd Command) (Result, *capture, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		var c capture
		res, err := p.Run(ctx, "lx1", cmd, c.add)
		return res, &c, err
	}
	mustRun := func(t *testing.T, line string) (Result, *capture) {
		t.Helper()
		res, c, err := run(t, Command{ID: t.Name(), Line: line})
		if err != nil {
			t.Fatalf("Run(%q): %v", line, err)
		}
		return res, c
	}

	t.Run("echo", func(t *testing.T) {
		res, c := mustRun(t, "echo hello")
		if res.ExitStatus != 0 || res.Signal != "" || res.Truncated || res.TimedOut {
			t.Errorf("result %+v", res)
		}
		want := []Output{{Stream: 1, Data: []byte("hello"), EOL: true}}
		if !outputsEqual(c.outs, want) {
			t.Errorf("output %+v, want %+v", c.outs, want)
		}
		if res.Duration <= 0 {
			t.Errorf("duration %v", res.Duration)
		}
	})

	t.Run("streams and exit status", func(t *testing.T) {
		res, c := mustRun(t, "sh -c 'echo out; echo err >&2; exit 3'")
		if res.ExitStatus != 3 {
			t.Errorf("exit status %d, want 3", res.ExitStatus)
		}
		if got := c.lines(1); !slices.Equal(got, []string{"out"}) {
			t.Errorf("stdout %q", got)
		}
		if got := c.lines(2); !slices.Equal(got, []string{"err"}) {
			t.Errorf("stderr %q", got)
		}
	})

	t.Run("lines in order", func(t *testing.T) {
		_, c := mustRun(t, "i=0; while [ $i -lt 2000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done; printf 'a\\n\\nlast'")
		var wantOut, wantErr []string
		for i := range 2000 {
			wantOut = append(wantOut, fmt.Sprintf("out%d", i))
			wantErr = append(wantErr, fmt.Sprintf("err%d", i))
		}
		wantOut = append(wantOut, "a", "", "last")
		if got := c.lines(1); !slices.Equal(got, wantOut) {
			t.Errorf("stdout: %d lines, want %d; first difference at %d", len(got), len(wantOut), firstDiff(got, wantOut))
		}
		if got := c.lines(2); !slices.Equal(got, wantErr) {
			t.Errorf("stderr: %d lines, want %d; first difference at %d", len(got), len(wantErr), firstDiff(got, wantErr))
		}
		var last Output
		for _, o := range c.outs {
			if o.Stream == 1 {
				last = o
			}
		}
		if string(last.Data) != "last" || last.EOL {
			t.Errorf("last output of stdout %+v, want unterminated \"last\"", last)
		}
	})

	t.Run("binary", func(t *testing.T) {
		var data []byte
		for range 3 {
			for b := range 256 {
				data = append(data, byte(b))
			}
		}
		data = append(data, 0, 0xff, '\r') // ends without a newline
		path := filepath.Join(f.dir, "bytes.bin")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, c := mustRun(t, "cat "+path+"; cat "+path+" >&2")
		if got := c.stream(1); !bytes.Equal(got, data) {
			t.Errorf("stdout differs: got %d bytes, want %d", len(got), len(data))
		}
		if got := c.stream(2); !bytes.Equal(got, data) {
			t.Errorf("stderr differs: got %d bytes, want %d", len(got), len(data))
		}
	})

	t.Run("long line", func(t *testing.T) {
		_, c := mustRun(t, "head -c 200000 /dev/zero | tr '\\0' x; echo")
		var lens []int
		var eols []bool
		for _, o := range c.outs {
			lens = append(lens, len(o.Data))
			eols = append(eols, o.EOL)
		}
		wantLens := []int{MaxLine, MaxLine, MaxLine, 200000 - 3*MaxLine}
		if !slices.Equal(lens, wantLens) || !slices.Equal(eols, []bool{false, false, false, true}) {
			t.Errorf("pieces %v EOL %v, want %v EOL [false false false true]", lens, eols, wantLens)
		}
	})

	t.Run("empty stdin", func(t *testing.T) {
		res, c := mustRun(t, "cat; echo done")
		if res.ExitStatus != 0 || !slices.Equal(c.lines(1), []string{"done"}) {
			t.Errorf("result %+v, output %q", res, c.lines(1))
		}
	})

	t.Run("env", func(t *testing.T) {
		res, c, err := run(t, Command{ID: "cmd-42", Line: `echo "$ZBRIDGE_COMMAND_ID $ZBRIDGE_TIMEOUT"`, Timeout: 29500 * time.Millisecond})
		if err != nil || res.ExitStatus != 0 {
			t.Fatalf("Run: %+v, %v", res, err)
		}
		if got := c.lines(1); !slices.Equal(got, []string{"cmd-42 30"}) {
			t.Errorf("environment %q, want [\"cmd-42 30\"]", got)
		}
	})

	t.Run("signal", func(t *testing.T) {
		res, _ := mustRun(t, "kill -TERM $$")
		if res.Signal != "TERM" || res.ExitStatus != -1 {
			t.Errorf("result %+v, want signal TERM and exit status -1", res)
		}
	})

	t.Run("output cap", func(t *testing.T) {
		res, c := mustRun(t, "head -c 10000000 /dev/zero")
		kept := len(c.stream(1)) + len(c.stream(2))
		if !res.Truncated || kept != DefaultOutputCap {
			t.Errorf("truncated %v, kept %d bytes; want truncated with %d", res.Truncated, kept, DefaultOutputCap)
		}
		for _, o := range c.outs {
			if len(o.Data) > MaxLine {
				t.Fatalf("output of %d bytes", len(o.Data))
			}
		}
	})

	// The commands stopped below first say that they started, so that
	// checking they are gone means something.
	startedSleep := func() (line, cmdline string, started chan struct{}, out func(Output)) {
		secs := fmt.Sprintf("30.%06d", rand.IntN(1e6))
		started = make(chan struct{})
		var once sync.Once
		out = func(o Output) {
			if string(o.Data) == "started" {
				once.Do(func() { close(started) })
			}
		}
		return "echo started; exec sleep " + secs, "sleep\x00" + secs, started, out
	}
	// checkStopped checks that the command was stopped on the host: by
	// signal KILL, which OpenSSH's sshd honours for sessions of ordinary
	// users only (a root session runs without privilege separation, and
	// sshd refuses "signal" requests there; a plain sshd has no other way
	// to stop a command without a terminal).
	checkStopped := func(t *testing.T, cmdline string, started chan struct{}) {
		t.Helper()
		select {
		case <-started:
		default:
			t.Logf("the command had not started yet")
			return
		}
		if os.Geteuid() != 0 {
			if !processGone(cmdline, 5*time.Second) {
				t.Errorf("%q still runs on the host", cmdline)
			}
			return
		}
		const refused = "session_signal_req: session signalling requires privilege separation"
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(sshd.Log(), refused) <= signalsRefused {
			if time.Now().After(deadline) {
				t.Errorf("sshd did not log that it refused the signal request (%q)", refused)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		signalsRefused = strings.Count(sshd.Log(), refused)
		t.Logf("running as root: sshd refused signal KILL, as it does for root sessions; killing %q here", cmdline)
		killProcess(cmdline)
	}

	t.Run("deadline", func(t *testing.T) {
		line, cmdline, started, out := startedSleep()
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		res, err := p.Run(ctx, "lx1", Command{Line: line}, out)
		d := time.Since(start)
		errorIs(t, err, ErrTimeout, context.DeadlineExceeded)
		if !res.TimedOut || d > time.Second {
			t.Errorf("timed out %v after %v", res.TimedOut, d)
		}
		checkStopped(t, cmdline, started)
	})

	t.Run("command timeout", func(t *testing.T) {
		line, cmdline, started, out := startedSleep()
		start := time.Now()
		res, err := p.Run(t.Context(), "lx1", Command{Line: line, Timeout: 500 * time.Millisecond}, out)
		d := time.Since(start)
		if err != nil {
			t.Fatalf("Run: %v; a command stopped for its Timeout is no error", err)
		}
		if !res.TimedOut || res.ExitStatus != -1 || d > time.Second || d < 500*time.Millisecond {
			t.Errorf("result %+v after %v", res, d)
		}
		checkStopped(t, cmdline, started)
	})

	t.Run("cancel", func(t *testing.T) {
		line, cmdline, started, out := startedSleep()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() {
			select {
			case <-started:
				time.Sleep(100 * time.Millisecond)
			case <-time.After(3 * time.Second):
			}
			cancel()
		}()
		res, err := p.Run(ctx, "lx1", Command{Line: line}, out)
		errorIs(t, err, ErrCancelled, context.Canceled)
		if res.TimedOut {
			t.Errorf("result %+v", res)
		}
		checkStopped(t, cmdline, started)
		// The connection still serves commands.
		mustRun(t, "true")
	})

	t.Run("busy", func(t *testing.T) {
		p2 := f.newPool(func(c *Config) { c.MaxSessionsPerHost = 2 })
		defer p2.Close()
		p2.Add("lx1", addr)
		waitConnected(t, p2, "lx1")
		var wg sync.WaitGroup
		errs := make([]error, 3)
		// Whether any command had ended when each Run returned: ErrBusy
		// comes at once, not once a place is free.
		var ended atomic.Int32
		endedBefore := make([]bool, 3)
		for i := range 3 {
			wg.Go(func() {
				var res Result
				res, errs[i] = p2.Run(t.Context(), "lx1", Command{Line: "sleep 2"}, nil)
				endedBefore[i] = ended.Load() > 0
				if errs[i] == nil {
					ended.Add(1)
					if res.ExitStatus != 0 {
						errs[i] = fmt.Errorf("exit status %d", res.ExitStatus)
					}
				}
			})
			time.Sleep(50 * time.Millisecond)
		}
		wg.Wait()
		busy := 0
		for i, err := range errs {
			switch {
			case errors.Is(err, ErrBusy):
				busy++
				if endedBefore[i] {
					t.Errorf("ErrBusy only once a command had ended: Run waited for a place")
				}
			case err != nil:
				t.Errorf("Run %d: %v", i, err)
			}
		}
		if busy != 1 {
			t.Errorf("%d ErrBusy, want 1: %v", busy, errs)
		}
	})

	t.Run("unknown host", func(t *testing.T) {
		_, _, err := run(t, Command{Line: "true"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Run(t.Context(), "nosuch", Command{Line: "true"}, nil)
		errorIs(t, err, ErrUnknownHost)
	})

	t.Run("bad command", func(t *testing.T) {
		_, _, err := run(t, Command{})
		errorIs(t, err, ErrBadCommand)
	})

	t.Run("host info", func(t *testing.T) {
		info := waitHost(t, p, "lx1", 20*time.Second, "answering keepalives", func(hi HostInfo) bool {
			return !hi.LastKeepAlive.IsZero()
		})
		if info.Addr != addr || info.State != StateConnected || info.LastError != nil || info.Sessions != 0 {
			t.Errorf("info %+v", info)
		}
		if want := ssh.FingerprintSHA256(hostPub); info.HostKeyFingerprint != want {
			t.Errorf("fingerprint %s, want %s", info.HostKeyFingerprint, want)
		}
		if !strings.HasPrefix(info.ServerVersion, "SSH-2.0-OpenSSH") || info.Agent {
			t.Errorf("server version %q, agent %v", info.ServerVersion, info.Agent)
		}
	})

	t.Run("no key material logged", func(t *testing.T) {
		key, err := os.ReadFile(f.keyPath)
		if err != nil {
			t.Fatal(err)
		}
		logs := f.logs.String()
		if !strings.Contains(logs, "component=agentssh") || !strings.Contains(logs, "host=lx1") {
			t.Errorf("log lacks component or host fields:\n%s", logs)
		}
		for _, line := range strings.Split(string(key), "\n") {
			if len(line) > 16 && !strings.HasPrefix(line, "-----") && strings.Contains(logs, line) {
				t.Errorf("log contains the private key line %q", line)
			}
		}
	})
}

// TestReconnect has a host whose sshd is not there yet, then crashes, then
// comes back.
func TestReconnect(t *testing.T) {
	checkLeaks(t)
	f := newFixture(t)
	port := peer.FreePort(t)
	addr := peer.Addr(port)
	hostKey := filepath.Join(f.dir, "host_ed25519")
	f.pin(addr, f.genKey("ed25519", hostKey, ""))
	p := f.newPool(func(c *Config) { c.ReconnectMax = time.Second })
	p.Add("lx1", addr)

	_, err := p.Run(t.Context(), "lx1", Command{Line: "true"}, nil)
	errorIs(t, err, ErrNotConnected, syscall.ECONNREFUSED)
	info := waitHost(t, p, "lx1", time.Second, "down", func(hi HostInfo) bool { return hi.State == StateDown })
	if !errors.Is(info.LastError, syscall.ECONNREFUSED) {
		t.Errorf("last error %v", info.LastError)
	}

	sshd := f.startSSHD(port, hostKey)
	eventually := func(what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			res, err := p.Run(t.Context(), "lx1", Command{Line: "echo back"}, nil)
			if err == nil && res.ExitStatus == 0 {
				return
			}
			if !errors.Is(err, ErrNotConnected) {
				t.Fatalf("%s: Run: %v", what, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still not connected after 5s: %v", what, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	eventually("after sshd started")

	// A crash of the host: sshd and the processes serving its connections.
	conns := sshd.Descendants()
	if len(conns) == 0 {
		t.Fatal("sshd has no connection processes")
	}
	sshd.Kill()
	peer.SignalAll(t, conns, syscall.SIGKILL)
	_, err = p.Run(t.Context(), "lx1", Command{Line: "true"}, nil)
	errorIs(t, err, ErrNotConnected)
	waitHost(t, p, "lx1", 2*time.Second, "down", func(hi HostInfo) bool { return hi.State != StateConnected })

	start := time.Now()
	sshd.Restart()
	eventually("after sshd restarted")
	t.Logf("reconnected %v after the restart", time.Since(start))
}

// TestKeepAlive stops the sshd process serving the connection (SIGSTOP) so
// that keepalives go unanswered: the connection must be declared dead, and
// a new one made (sshd's listener still runs).
func TestKeepAlive(t *testing.T) {
	checkLeaks(t)
	f := newFixture(t)
	addr, sshd := f.pinnedSSHD()
	p := f.newPool(func(c *Config) { c.KeepAlive = 200 * time.Millisecond })
	p.Add("lx1", addr)
	waitConnected(t, p, "lx1")
	waitHost(t, p, "lx1", 2*time.Second, "answering keepalives", func(hi HostInfo) bool { return !hi.LastKeepAlive.IsZero() })

	// sshd's connection processes are in sessions of their own.
	conns := sshd.Descendants()
	if len(conns) == 0 {
		t.Fatal("sshd has no connection processes")
	}
	peer.SignalAll(t, conns, syscall.SIGSTOP)
	t.Cleanup(func() { peer.SignalAll(t, conns, syscall.SIGCONT) })
	stopped := time.Now()
	info := waitHost(t, p, "lx1", 3*time.Second, "dead", func(hi HostInfo) bool { return hi.State != StateConnected })
	t.Logf("connection declared dead %v after sshd stopped: %v", time.Since(stopped), info.LastError)
	if info.LastError == nil || !errors.Is(info.LastError, errKeepAlive) {
		t.Errorf("last error %v, want a keepalive failure", info.LastError)
	}
	peer.SignalAll(t, conns, syscall.SIGCONT)
	waitConnected(t, p, "lx1")
	if _, err := p.Run(t.Context(), "lx1", Command{Line: "true"}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestAddRemoveClose checks the pool's bookkeeping.
func TestAddRemoveClose(t *testing.T) {
	checkLeaks(t)
	f := newFixture(t)
	addr, _ := f.pinnedSSHD()
	p := f.newPool(nil)

	p.Add("a", addr)
	first := waitConnected(t, p, "a")
	p.Add("a", addr) // idempotent: the connection stays
	if hosts := p.Hosts(); len(hosts) != 1 || hosts[0].State != StateConnected || !hosts[0].Since.Equal(first.Since) {
		t.Fatalf("after Add again: %+v", hosts)
	}

	p.Add("b", "127.0.0.1") // the default port
	p.Add("a", peer.Addr(peer.FreePort(t)))
	hosts := p.Hosts()
	if len(hosts) != 2 || hosts[0].Name != "a" || hosts[0].Addr == addr || hosts[1].Addr != "127.0.0.1:"+DefaultPort {
		t.Fatalf("hosts %+v", hosts)
	}
	_, err := p.Run(t.Context(), "a", Command{Line: "true"}, nil)
	errorIs(t, err, ErrNotConnected)
	p.Add("a", addr)
	waitConnected(t, p, "a")
	if _, err := p.Run(t.Context(), "a", Command{Line: "true"}, nil); err != nil {
		t.Fatal(err)
	}

	// A command running on a removed host ends at once.
	done := make(chan error, 1)
	go func() {
		_, err := p.Run(t.Context(), "a", Command{Line: "sleep 10"}, nil)
		done <- err
	}()
	waitHost(t, p, "a", 5*time.Second, "running a command", func(hi HostInfo) bool { return hi.Sessions == 1 })
	time.Sleep(100 * time.Millisecond)
	p.Remove("a")
	select {
	case err := <-done:
		errorIs(t, err, ErrConnLost)
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not end after Remove")
	}
	_, err = p.Run(t.Context(), "a", Command{Line: "true"}, nil)
	errorIs(t, err, ErrUnknownHost)
	p.Remove("a")

	p.Close()
	p.Close()
	_, err = p.Run(t.Context(), "b", Command{Line: "true"}, nil)
	errorIs(t, err, ErrClosed)
	if hosts := p.Hosts(); len(hosts) != 0 {
		t.Errorf("hosts after Close: %+v", hosts)
	}
	p.Add("c", addr)
	if hosts := p.Hosts(); len(hosts) != 0 {
		t.Errorf("Add after Close added %+v", hosts)
	}
}

func outputsEqual(a, b []Output) bool {
	return slices.EqualFunc(a, b, func(x, y Output) bool {
		return x.Stream == y.Stream && x.EOL == y.EOL && bytes.Equal(x.Data, y.Data)
	})
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestRefused has sshd refuse a session (its MaxSessions is below the
// pool's MaxSessionsPerHost): Run says ErrRefused, and the connection stays.
func TestRefused(t *testing.T) {
	checkLeaks(t)
	f := newFixture(t)
	addr, _ := f.pinnedSSHD("MaxSessions 1")
	p := f.newPool(nil)
	p.Add("lx1", addr)
	waitConnected(t, p, "lx1")

	done := make(chan error, 1)
	go func() {
		_, err := p.Run(t.Context(), "lx1", Command{Line: "sleep 1"}, nil)
		done <- err
	}()
	waitHost(t, p, "lx1", 5*time.Second, "running a command", func(hi HostInfo) bool { return hi.Sessions == 1 })
	time.Sleep(200 * time.Millisecond) // the session is open by now
	_, err := p.Run(t.Context(), "lx1", Command{Line: "true"}, nil)
	errorIs(t, err, ErrRefused)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// sshd frees the session slot a moment after the session ended.
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, err := p.Run(t.Context(), "lx1", Command{Line: "true"}, nil)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrRefused) || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTCPKeepAlive: the pool's connections carry the kernel's keepalive
// and user timeout from Config.TCPKeepAlive (an idle time from 60 s to
// twice that by default), which find a dead host or path with no
// keepalive request of the region's.
func TestTCPKeepAlive(t *testing.T) {
	checkLeaks(t)
	f := newFixture(t)
	addr, _ := f.pinnedSSHD()
	for _, tc := range []struct {
		name      string
		set, want time.Duration
	}{
		{"lx-default", 0, DefaultTCPKeepAlive},
		{"lx-12s", 12 * time.Second, 12 * time.Second},
		{"lx-off", -1, -1},
	} {
		p := f.newPool(func(c *Config) { c.TCPKeepAlive = tc.set })
		p.Add(tc.name, addr)
		waitConnected(t, p, tc.name)
		p.mu.Lock()
		h := p.hosts[tc.name]
		p.mu.Unlock()
		h.mu.Lock()
		c := h.conn
		h.mu.Unlock()
		if c == nil {
			t.Fatalf("%s: no connection", tc.name)
		}
		got, err := tcpalive.Get(c.heard.Conn)
		if err != nil {
			t.Fatal(err)
		}
		if msg := tcpalive.Check(got, tc.want); msg != "" {
			t.Errorf("%s: %s (the kernel has %+v)", tc.name, msg, got)
		}
		p.Close()
	}
}

// TestKeepAliveSpread: of connections made together, about half are sent
// a keepalive at their first check, so that idle connections, each asked
// at every other check, are not all asked in the same intervals (ten
// thousand agents of a region that started at once would otherwise all
// be asked in one five minutes of every ten, and none in the next).
// Before any connection can reach its second check (one interval after
// it connected), only those drawn to be asked early have been: about
// half, each of 48 drawn at even odds (fewer than 1 or more than 36 of
// them: a chance under 1 in 5,000); all of them asked at their first
// check would be ~45 (a few first checks fall after the sample).
func TestKeepAliveSpread(t *testing.T) {
	checkLeaks(t)
	f := newFixture(t)
	addr, _ := f.pinnedSSHD("MaxStartups 200") // 48 connections at once
	const n, interval = 48, 10 * time.Second
	p := f.newPool(func(c *Config) { c.KeepAlive = interval })
	for i := range n {
		p.Add(fmt.Sprintf("lx%02d", i), addr)
	}
	var first time.Time
	for i := range n {
		hi := waitConnected(t, p, fmt.Sprintf("lx%02d", i))
		if first.IsZero() || hi.Since.Before(first) {
			first = hi.Since
		}
	}
	sample := first.Add(interval - 500*time.Millisecond) // before any second check
	if time.Now().After(sample) {
		t.Fatalf("connecting %d hosts took %v, past the keepalive interval of %v: the first checks cannot be told from the second", n, time.Since(first), interval)
	}
	time.Sleep(time.Until(sample))
	early := p.Stats().KeepAlives
	t.Logf("%d of %d connections sent a keepalive at their first check", early, n)
	if early == 0 || early > 3*n/4 {
		t.Errorf("%d of %d connections asked at their first check: want about half", early, n)
	}
}
