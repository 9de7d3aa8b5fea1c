package linuxagent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/internal/peer"
)

// floodAgentEnv, set in its environment, makes this test binary the agent
// process of TestPreauthFlood: it names the directory of the agent's files,
// floodPortEnv its port and floodPendingEnv its MaxPending and
// MaxPendingPerAddr (0: the defaults).
const (
	floodAgentEnv   = "ZBRIDGE_TEST_FLOOD_AGENT_DIR"
	floodPortEnv    = "ZBRIDGE_TEST_FLOOD_AGENT_PORT"
	floodPendingEnv = "ZBRIDGE_TEST_FLOOD_AGENT_PENDING"
)

// floodDescriptors is the flooded agent's descriptor limit, and
// floodConns the connections of each flood: more than the agent has
// descriptors.
const (
	floodDescriptors = 512
	floodConns       = 600
)

// TestPreauthFlood floods an agent whose descriptor limit is 512 with 600
// connections that send an SSH banner and then nothing, as an attacker
// who has no key can, from the region's own address and from a hundred
// others. The region's connection made before the flood must go on
// running commands (a command's pipes must not be the first thing to run
// out of descriptors), a new connection of the region's must get in and
// authenticate while the flood is held, and the agent must hold no more
// unauthenticated connections than its limits allow: MaxPendingPerAddr
// from one address, MaxPending from many, and with those raised past its
// descriptors, no more than its descriptor budget leaves them (then the
// region's new connection may be refused, but its commands still run).
// The agent runs in a process of its own (this test binary again), so
// that its descriptor limit is not every test's.
func TestPreauthFlood(t *testing.T) {
	if dir := os.Getenv(floodAgentEnv); dir != "" {
		serveFloodAgent(t, dir)
		return
	}
	many := make([]string, 100)
	for i := range many {
		many[i] = "127.0.0." + strconv.Itoa(2+i)
	}
	for _, tc := range []struct {
		name    string
		sources []string // the flood's source addresses
		pending int      // the agent's MaxPending and MaxPendingPerAddr; 0: the defaults
		held    int      // the most flood connections the agent may hold
	}{
		// The attacker shares the region's address (its host, a NAT).
		{"region's address", []string{"127.0.0.1"}, 0, DefaultMaxPendingPerAddr},
		{"a hundred other addresses", many, 0, DefaultMaxPending},
		{"limits past the descriptors", many, 1000, descriptorReserve(DefaultMaxSessions, floodDescriptors)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, src := range tc.sources {
				if l, err := net.Listen("tcp", net.JoinHostPort(src, "0")); err != nil {
					t.Skipf("cannot use %s as a source address: %v", src, err)
				} else {
					l.Close()
				}
			}
			a := startFloodAgent(t, tc.pending)
			c := a.dial(t, a.client.signer)
			if r := runCommand(t, c, "true", nil); r.exitStatus != 0 {
				t.Fatalf("before the flood: exit status %d, stderr %q", r.exitStatus, r.stderr)
			}

			f := startFlood(t, a.addr, tc.sources, floodConns)
			// While the agent takes the flood in, and once it has.
			if r := runCommand(t, c, "true", nil); r.exitStatus != 0 {
				t.Errorf("the region's command during the flood: exit status %d, stderr %q", r.exitStatus, r.stderr)
			}
			waitFor(t, "the agent to answer or close every connection of the flood", func() bool {
				return f.answered.Load() == floodConns
			})
			// The agent's handshake timeout is an hour: only its limits
			// close the flood's connections.
			waitFor(t, fmt.Sprintf("the agent to hold at most %d of the flood's connections", tc.held), func() bool {
				return f.open.Load() <= int64(tc.held)
			})
			if r := runCommand(t, c, "true", nil); r.exitStatus != 0 {
				t.Errorf("the region's command with the flood held: exit status %d, stderr %q", r.exitStatus, r.stderr)
			}
			t.Logf("flood of %d from %d addresses: %d held by the agent", floodConns, len(tc.sources), f.open.Load())
			if tc.pending != 0 {
				return
			}
			c2, err := a.tryDial(a.client.signer)
			if err != nil {
				t.Fatalf("the region's new connection with the flood held: %v", err)
			}
			defer c2.Close()
			if r := runCommand(t, c2, "true", nil); r.exitStatus != 0 {
				t.Errorf("a command over the new connection: exit status %d, stderr %q", r.exitStatus, r.stderr)
			}
		})
	}
}

// startFloodAgent runs this test binary as an agent process whose
// descriptor limit is floodDescriptors (see serveFloodAgent).
func startFloodAgent(t *testing.T, pending int) *testAgent {
	t.Helper()
	f := newAgentFiles(t)
	port := peer.FreePort(t)
	peer.Start(t, peer.Command{
		Name: "flooded-agent",
		Path: os.Args[0],
		Args: []string{"-test.run=^TestPreauthFlood$"},
		Env: []string{floodAgentEnv + "=" + f.dir, floodPortEnv + "=" + strconv.Itoa(port),
			floodPendingEnv + "=" + strconv.Itoa(pending)},
		Ready: peer.TCPReady(peer.Addr(port)),
	})
	return processAgent(t, f, port)
}

// serveFloodAgent is the agent process of TestPreauthFlood: it lowers its
// descriptor limit and serves an agent with the files in dir until SIGTERM,
// with a handshake timeout of an hour, so that the flood is held for as
// long as the test runs.
func serveFloodAgent(t *testing.T, dir string) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	rl.Cur = floodDescriptors
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(os.Stderr)
	pending := mustAtoi(t, os.Getenv(floodPendingEnv))
	srv, err := New(Config{HostKeyFile: filepath.Join(dir, "host_key"), AuthorizedKeys: filepath.Join(dir, "authorized_keys"),
		Name: "flooded", Logger: log, MaxPending: pending, MaxPendingPerAddr: pending, HandshakeTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", peer.Addr(mustAtoi(t, os.Getenv(floodPortEnv))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
	case err := <-served:
		t.Fatal(err)
	}
	srv.Close()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatal(err)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// flood is an attacker's connections: each sent an SSH banner and nothing
// more.
type flood struct {
	answered atomic.Int64 // connections the agent sent something on, or closed
	open     atomic.Int64 // connections the agent has not closed
}

// startFlood opens n connections to addr, from each of sources in turn,
// sends an SSH banner on each and reads what the agent sends, until it
// closes them or the test ends.
func startFlood(t *testing.T, addr string, sources []string, n int) *flood {
	t.Helper()
	f := &flood{}
	var wg sync.WaitGroup
	var mu sync.Mutex // guards conns
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	for i := range n {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(sources[i%len(sources)])}, Timeout: waitTimeout}
		nc, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		mu.Lock()
		conns = append(conns, nc)
		mu.Unlock()
		f.open.Add(1)
		nc.Write([]byte("SSH-2.0-flood\r\n")) // an error: the agent closed it already
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			answered := false
			for {
				k, err := nc.Read(buf)
				if !answered && (k > 0 || err != nil) {
					answered = true
					f.answered.Add(1)
				}
				if err != nil {
					f.open.Add(-1)
					return
				}
			}
		}()
	}
	return f
}

// TestPendingMakesRoom checks which connection waiting to authenticate is
// closed to make room for a new one: past MaxPendingPerAddr the oldest of
// the new one's address, past MaxPending the oldest of the address with
// the most waiting (the oldest of all when every address has as many); and
// that a connection gives its place up once it has authenticated.
func TestPendingMakesRoom(t *testing.T) {
	for _, src := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		if l, err := net.Listen("tcp", net.JoinHostPort(src, "0")); err != nil {
			t.Skipf("cannot use %s as a source address: %v", src, err)
		} else {
			l.Close()
		}
	}
	a := startAgent(t, func(c *Config) { c.MaxPending, c.MaxPendingPerAddr = 4, 2 })
	// waiting returns the source addresses and ports of the connections
	// waiting to authenticate, oldest first.
	waiting := func() []string {
		a.srv.mu.Lock()
		defer a.srv.mu.Unlock()
		var w []string
		for e := a.srv.pending.Front(); e != nil; e = e.Value.(*conn).waiting.Next() {
			w = append(w, e.Value.(*conn).nc.RemoteAddr().String())
		}
		return w
	}
	// connect opens a connection from src that sends a banner, and
	// returns once the agent has answered it (it waits then).
	connect := func(src string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: waitTimeout}
		nc, err := d.Dial("tcp", a.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.Write([]byte("SSH-2.0-waiting\r\n"))
		nc.SetReadDeadline(time.Now().Add(waitTimeout))
		if _, err := nc.Read(make([]byte, 1)); err != nil {
			t.Fatalf("connection from %s: no banner: %v", src, err)
		}
		nc.SetReadDeadline(time.Time{})
		return nc
	}
	// closed waits until the agent has closed nc.
	closed := func(nc net.Conn, what string) {
		t.Helper()
		nc.SetReadDeadline(time.Now().Add(waitTimeout))
		buf := make([]byte, 4096)
		for {
			if _, err := nc.Read(buf); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("%s: not closed by the agent", what)
				}
				return
			}
		}
	}
	// check waits until the connections waiting are want (the agent
	// takes an authenticated one off after its client has heard so).
	check := func(when string, want ...net.Conn) {
		t.Helper()
		var w []string
		for _, nc := range want {
			w = append(w, nc.LocalAddr().String())
		}
		deadline := time.Now().Add(waitTimeout)
		for got := waiting(); !slices.Equal(got, w); got = waiting() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: waiting %v, want %v", when, got, w)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	b1, b2 := connect("127.0.0.2"), connect("127.0.0.2")
	c1, d1 := connect("127.0.0.3"), connect("127.0.0.4")
	check("four waiting", b1, b2, c1, d1)

	b3 := connect("127.0.0.2") // a third from 127.0.0.2 closes its oldest
	closed(b1, "the oldest from the address past MaxPendingPerAddr")
	check("a third from one address", b2, c1, d1, b3)
	if n := a.srv.loop.Count(netip.MustParseAddr("127.0.0.2")); n != 2 {
		t.Errorf("127.0.0.2 counts %d connections; want 2", n)
	}

	e1 := connect("127.0.0.5") // past MaxPending: 127.0.0.2 has the most
	closed(b2, "the oldest from the address with the most waiting")
	check("one more past MaxPending", c1, d1, b3, e1)

	// The region's connection: every address has one waiting, so the
	// oldest of all makes room; once authenticated it waits no more.
	c := a.dial(t, a.client.signer)
	closed(c1, "the oldest of all")
	check("the region authenticated", d1, b3, e1)
	if n := a.srv.loop.Count(netip.MustParseAddr("127.0.0.1")); n != 0 { // given back with its place
		t.Errorf("127.0.0.1 counts %d connections after authenticating; want 0", n)
	}
	if r := runCommand(t, c, "true", nil); r.exitStatus != 0 {
		t.Errorf("command: exit status %d, stderr %q", r.exitStatus, r.stderr)
	}
}
