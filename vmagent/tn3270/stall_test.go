package tn3270

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/racingmars/go3270"
)

// stalledHost serves a screen with the keyboard restored over one end of
// a synchronous pipe, then asks for Read Buffer and never reads: the
// client's goroutine blocks writing its answer. It returns the client's
// end; the host's goroutine ends when the test does.
func stalledHost(t *testing.T) net.Conn {
	t.Helper()
	client, host := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		screen := cat([]byte{cmdEW, 0xC3}, sba(0, 0), ebc("HELLO"))
		for _, rec := range [][]byte{screen, {cmdRB}, {cmdRB}} {
			if _, err := host.Write(appendRecord(nil, rec)); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		host.Close()
		<-done
	})
	return client
}

// waitReaderBlocked waits until the client's goroutine is blocked writing
// to the pipe.
func waitReaderBlocked(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, g := range goroutineStacks() {
			if strings.Contains(g, "(*Client).readLoop") && strings.Contains(g, "net.(*pipe).write") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the client's goroutine never blocked writing to the host")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSendAIDStalledHost: while the client's goroutine is stuck writing to
// a host that stopped reading, SendAID returns when its context ends,
// without pressing the key, and Close ends the session.
func TestSendAIDStalledHost(t *testing.T) {
	c, err := New(stalledHost(t), Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wctx, wcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer wcancel()
	if _, err := c.WaitFor(wctx, func(s Screen) bool { return !s.KeyboardLocked }); err != nil {
		t.Fatal(err)
	}
	waitReaderBlocked(t)

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	res := make(chan error, 1)
	go func() { res <- c.SendAID(ctx, go3270.AIDEnter) }()
	select {
	case err := <-res:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("SendAID = %v, want its context's error", err)
		}
	case <-time.After(20 * time.Second):
		c.Close() // lets SendAID return
		<-res
		t.Fatal("SendAID still blocked 20 s after its context ended")
	}
	if c.Screen().KeyboardLocked || c.Err() != nil {
		t.Errorf("after SendAID gave up: keyboard locked %v, session error %v; want neither", c.Screen().KeyboardLocked, c.Err())
	}
	c.Close()
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err() after Close = %v", c.Err())
	}
}

// TestWriteTimeoutEndsSession: the client's own answer to a host that
// stopped reading ends the session after Config.WriteTimeout, and a
// SendAID waiting behind it returns.
func TestWriteTimeoutEndsSession(t *testing.T) {
	c, err := New(stalledHost(t), Config{Logger: testLogger(t), WriteTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the session still runs 20 s after a write that could not complete")
	}
	if err := c.Err(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Err() = %v, want a write deadline", err)
	}
	if err := c.SendAID(t.Context(), go3270.AIDEnter); !errors.Is(err, ErrClosed) {
		t.Errorf("SendAID after the session ended: %v", err)
	}
	if _, err := New(nil, Config{WriteTimeout: -1}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("a negative WriteTimeout: %v", err)
	}
}
