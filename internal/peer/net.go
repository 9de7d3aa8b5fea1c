package peer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Loopback is the only address the tests' peers listen on.
const Loopback = "127.0.0.1"

// FreePort returns a port on which both a TCP listener and a UDP socket could
// be bound on 127.0.0.1 just now, for a peer that must be told its port in
// advance. It picks at random below the kernel's ephemeral range, so that
// the port is not handed to another test's outgoing connection meanwhile,
// and never the same port twice in one test process: a test that asks
// for several ports before it binds any (a region's five servers) would
// otherwise get the same one twice now and then (once in about 2,000
// regions started, with 22,000 ports to pick from).
func FreePort(t testing.TB) int {
	t.Helper()
	lo, hi := 10000, ephemeralLow()
	for range 200 {
		port := 0 // let the kernel choose when there is no room below
		if hi-lo >= 1000 {
			port = lo + rand.IntN(hi-lo)
		}
		if p, ok := bindBoth(port); ok && handOut(p) {
			return p
		}
	}
	t.Fatal("peer.FreePort: no port free for both TCP and UDP on " + Loopback)
	return 0
}

// Addr returns "127.0.0.1:port".
func Addr(port int) string { return net.JoinHostPort(Loopback, strconv.Itoa(port)) }

// bindBoth binds port (0: any) for TCP and UDP on the loopback address and
// releases both, reporting the port bound.
func bindBoth(port int) (int, bool) {
	l, err := net.Listen("tcp", Addr(port))
	if err != nil {
		return 0, false
	}
	defer l.Close()
	port = l.Addr().(*net.TCPAddr).Port
	c, err := net.ListenPacket("udp", Addr(port))
	if err != nil {
		return 0, false
	}
	c.Close()
	return port, true
}

// ephemeralLow returns the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(data), &lo, &hi); err != nil {
		return 32768
	}
	return lo
}

// TCPReady returns a [ReadyFunc] that succeeds once addr accepts a TCP
// connection (which it closes at once).
func TCPReady(addr string) ReadyFunc {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// WaitTCP waits until addr accepts a TCP connection, failing the test after
// timeout. Prefer Command.Ready for a program the test started: that wait
// also ends as soon as the program exits.
func WaitTCP(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	ready := TCPReady(addr)
	for {
		probe, cancelProbe := context.WithTimeout(ctx, time.Second)
		err := ready(probe)
		cancelProbe()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("peer.WaitTCP: %s not accepting connections after %v: %v", addr, timeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// handedOut holds the ports FreePort has returned in this process.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// handOut records port as returned, reporting false if it was already.
func handOut(port int) bool {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports[port] {
		return false
	}
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	handedOut.ports[port] = true
	return true
}
