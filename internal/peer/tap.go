package peer

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// A Tap is a TCP proxy on a loopback port of its own. It forwards each
// connection it accepts to a target address and keeps a copy of what it
// forwarded toward the target, in the order written, so that a test can
// compare what a sender put on the wire with what the receiver made of
// it. When either side of a connection ends, the tap closes both: a
// receiver that dies is seen by the sender as a broken connection, as
// without the tap, and a connection the target refuses is closed at once.
// While the target refuses connections, so does the tap (it stops
// listening once a dial to the target fails, and listens again on the same
// address when the target is back), so that a sender is not told its
// connection is up when it cannot be. The copy is kept in memory: for a
// test's volumes.
//
// Goroutines: one accepting, two per connection; Close (run at the test's
// cleanup) ends and waits for them all.
type Tap struct {
	// Addr is the address senders connect to.
	Addr string

	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu     sync.Mutex // guards the following fields
	conns  map[net.Conn]struct{}
	chunks []TapChunk
	seq    int
	closed bool
}

// A TapChunk is what one write toward the target carried.
type TapChunk struct {
	Conn int // the connection's number, from 1, in the order accepted
	Data []byte
}

// StartTap starts a tap forwarding to target; the test's cleanup closes it.
func StartTap(tb testing.TB, target string) *Tap {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	t := &Tap{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	t.wg.Add(1)
	go t.accept()
	tb.Cleanup(t.Close)
	return t
}

// Chunks returns what the tap has forwarded toward the target so far, in
// the order written.
func (t *Tap) Chunks() []TapChunk {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]TapChunk(nil), t.chunks...)
}

// Conns returns how many connections the tap has accepted.
func (t *Tap) Conns() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seq
}

// Close stops accepting, closes every connection and waits for the
// goroutines. Closing a closed tap does nothing.
func (t *Tap) Close() {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		t.ln.Close() // also ends an awaitTarget's wait, at its next poll
		for c := range t.conns {
			c.Close()
		}
	}
	t.mu.Unlock()
	t.wg.Wait()
}

// track adds c to the connections Close closes; it reports false (and
// closes c) once the tap is closed.
func (t *Tap) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *Tap) untrack(cs ...net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range cs {
		delete(t.conns, c)
		c.Close()
	}
}

func (t *Tap) accept() {
	defer t.wg.Done()
	for {
		t.mu.Lock()
		ln := t.ln
		t.mu.Unlock()
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			if !t.relisten() {
				return
			}
			continue
		} else if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !t.track(c) {
			return
		}
		up, err := net.DialTimeout("tcp", t.target, 5*time.Second)
		if err != nil || !t.track(up) {
			if up != nil {
				t.untrack(up)
			}
			// Refusing first: a sender told its connection is reset can
			// only find the port closed.
			ln.Close()
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // reset, as a closed port would answer
			}
			t.untrack(c)
			t.awaitTarget()
			continue
		}
		t.mu.Lock()
		t.seq++
		n := t.seq
		t.mu.Unlock()
		t.wg.Add(1)
		go t.serve(n, c, up)
	}
}

// awaitTarget waits, the tap's listener closed so that senders are
// refused while the target refuses, until the target accepts again or
// the tap is closed; the accept loop then listens again on the same
// address.
func (t *Tap) awaitTarget() {
	for {
		t.mu.Lock()
		closed := t.closed
		t.mu.Unlock()
		if closed {
			return
		}
		if c, err := net.DialTimeout("tcp", t.target, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// relisten listens again on the tap's address after awaitTarget; it
// reports false once the tap is closed.
func (t *Tap) relisten() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	for {
		ln, err := net.Listen("tcp", t.Addr)
		if err == nil {
			t.ln = ln
			return true
		}
		// The port, just closed, is taken meanwhile only by a rare other
		// test: wait for it rather than move.
		t.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		t.mu.Lock()
		if t.closed {
			return false
		}
	}
}

// serve forwards one connection; it returns when both directions are done.
func (t *Tap) serve(n int, c, up net.Conn) {
	defer t.wg.Done()
	var both sync.WaitGroup
	both.Add(1)
	go func() { // owned here: waited for below
		defer both.Done()
		buf := make([]byte, 32<<10)
		for {
			k, err := up.Read(buf)
			if k > 0 {
				if _, werr := c.Write(buf[:k]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		t.untrack(c, up)
	}()
	buf := make([]byte, 32<<10)
	for {
		k, err := c.Read(buf)
		if k > 0 {
			w, werr := up.Write(buf[:k])
			if w > 0 {
				t.mu.Lock()
				t.chunks = append(t.chunks, TapChunk{Conn: n, Data: append([]byte(nil), buf[:w]...)})
				t.mu.Unlock()
			}
			if werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	t.untrack(c, up)
	both.Wait()
}
