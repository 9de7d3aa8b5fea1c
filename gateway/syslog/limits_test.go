package syslog

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/internal/leakcheck"
)

// waitTimeout bounds the waits for what the server should do soon; it is
// generous for a loaded machine running -race, the timeouts under test are
// configured short instead.
const waitTimeout = 20 * time.Second

// dialFrom connects to addr from the loopback address src: 127.0.0.2 is a
// second source (Linux routes all of 127/8 to lo).
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: waitTimeout}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitClosedLong waits, up to waitTimeout, for the server to close c.
func waitClosedLong(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	if n, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read from a connection the server should close: %d bytes, %v", n, err)
	}
}

// waitLog waits for the server to log s.
func waitLog(t *testing.T, ts *testServer, s string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !ts.log.contains(s) {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not log %q", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestServerPerAddr: 200 silent connections from one address (as many as
// MaxSessions) do not keep a sender at another address from being served.
func TestServerPerAddr(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, false, nil)
	for range DefaultMaxSessions {
		dialFrom(t, "127.0.0.1", ts.tcp)
	}
	deadline := time.Now().Add(waitTimeout)
	for ts.srv.Stats().Connections < DefaultMaxSessions {
		if time.Now().After(deadline) {
			t.Fatalf("the server accepted %d connections, want %d", ts.srv.Stats().Connections, DefaultMaxSessions)
		}
		time.Sleep(5 * time.Millisecond)
	}
	c := dialFrom(t, "127.0.0.2", ts.tcp)
	write(t, c, octet("<13>1 - other app - - - from another address"))
	evs := ts.rec.wait(t, 1)
	if evs[0].Text != "from another address" || evs[0].Origin.Addr != "127.0.0.2" {
		t.Errorf("stored %s from %q", texts(evs), evs[0].Origin.Addr)
	}
	st := ts.srv.Stats()
	if want := uint64(DefaultMaxSessions - DefaultMaxSessionsPerAddr); st.Refused != want || st.Active != DefaultMaxSessionsPerAddr+1 {
		t.Errorf("Stats: %d refused, %d active; want %d and %d", st.Refused, st.Active, want, DefaultMaxSessionsPerAddr+1)
	}
	if !ts.log.contains("sessions open from 127.0.0.1") {
		t.Error("the refusals were not logged")
	}
}

// TestServerTLSHandshakeTimeout: a TLS client that never sends a
// ClientHello is closed after HandshakeTimeout, not ReadTimeout.
func TestServerTLSHandshakeTimeout(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, true, func(c *Config) { c.HandshakeTimeout = 300 * time.Millisecond })
	silent := dialFrom(t, "127.0.0.1", ts.tcp)
	waitClosedLong(t, silent)
	waitLog(t, ts, "TLS handshake failed")
	ts.checkWorks(t, 1)
}

// trickle writes prefix, then one byte every 50 ms until a write fails or
// stop is closed.
func trickle(c net.Conn, prefix string, stop <-chan struct{}) error {
	if _, err := io.WriteString(c, prefix); err != nil {
		return err
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
	}
}

// TestServerFrameDeadline: a frame trickled a byte at a time, each read
// well within ReadTimeout, is cut off ReadTimeout after its first byte;
// complete frames sent more slowly than that keep their connection.
func TestServerFrameDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a read timeout twice: in the full suite only (-short stays well under 35 s)")
	}
	for _, tt := range []struct {
		name, prefix string
	}{
		{"LF", "<13>1 - vm app - - - trickle"},
		{"octet counting", "5000 <13>1 - vm app - - - trickle"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			ts := startServer(t, false, func(c *Config) { c.ReadTimeout = time.Second })
			c := dialFrom(t, "127.0.0.1", ts.tcp)
			stop := make(chan struct{})
			done := make(chan error, 1)
			go func() { done <- trickle(c, tt.prefix, stop) }()
			t.Cleanup(func() {
				close(stop)
				<-done
			})
			waitClosedLong(t, c)
			evs := ts.rec.wait(t, 1)
			if ev := evs[0]; ev.Parsed || !strings.HasPrefix(ev.Raw, "<13>1 - vm app - - - trickle") || !strings.Contains(ev.ParseError, "frame not complete 1s after its first byte") {
				t.Errorf("the trickled frame: %s", texts(evs))
			}
			waitLog(t, ts, "frame not complete in time")
		})
	}
	t.Run("slow whole frames", func(t *testing.T) {
		leakcheck.Check(t)
		ts := startServer(t, false, func(c *Config) { c.ReadTimeout = time.Second })
		c := dialFrom(t, "127.0.0.1", ts.tcp)
		const n = 3 // 1.5 s in all, past ReadTimeout, each within it of the one before
		for i := range n {
			write(t, c, "<13>1 - vm app - - - slow\n")
			ts.rec.wait(t, i+1)
			time.Sleep(500 * time.Millisecond)
		}
		write(t, c, "<13>1 - vm app - - - last\n")
		if evs := ts.rec.wait(t, n+1); evs[n].Text != "last" {
			t.Errorf("events: %s", texts(evs))
		}
		if ts.log.contains("connection closed") {
			t.Error("a connection sending whole frames in time was closed")
		}
	})
}

// faultyListener wraps a real listener; its Accept always fails with
// EMFILE (an error the accept loop retries), and it records calls made
// after the test said it stops the server.
type faultyListener struct {
	net.Listener
	calls chan int

	mu        sync.Mutex
	n         int
	stopping  bool
	lateCalls int
}

func (l *faultyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.n++
	n := l.n
	if l.stopping {
		l.lateCalls++
	}
	l.mu.Unlock()
	select {
	case l.calls <- n:
	default:
	}
	return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

// TestServerShutdownInterruptsAcceptBackoff: Shutdown ends Serve in the
// middle of an accept back-off, without another Accept (a sleep would wait
// it out and Accept once more).
func TestServerShutdownInterruptsAcceptBackoff(t *testing.T) {
	leakcheck.Check(t)
	logger := logrus.New()
	logger.Out = &logSink{t: t}
	srv, err := New(Config{Appender: newRecorder(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &faultyListener{Listener: ln, calls: make(chan int, 1)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	deadline := time.After(waitTimeout)
	for n := 0; n < 7; { // the back-off waits 320 ms after the 7th: Stop comes during it
		select {
		case n = <-l.calls:
		case <-deadline:
			t.Fatal("Accept was not retried")
		}
	}
	l.mu.Lock()
	l.stopping = true
	l.mu.Unlock()
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Serve did not return")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lateCalls != 0 {
		t.Errorf("%d Accept calls after Shutdown: the back-off was not interrupted", l.lateCalls)
	}
}
