package syslog

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// caughtUpBytes: a read that returns less has caught up with the sender,
// whatever its room. A sender fast enough to be held at every read would
// fill the receive window (64 KiB or more on Linux) in a hold, and a read
// of that is not held after.
const caughtUpBytes = 32 << 10

// coalescing is an accepted connection whose reads are held apart once the
// reader has caught up with the sender (Config.Coalesce): a read that
// found less waiting than half the room it had and than caughtUpBytes is
// followed by the next only hold after it. (The room alone would not do:
// the scanner's grows to the largest frame seen, up to MaxFrame, and a
// room larger than twice the socket's receive window is never half
// filled, so a fast sender would be held at every read.)
//
// Everything after a read (parsing, the Append, the journal's write,
// waking and writing to the subscribers) costs about as much for one
// message as for a hundred, so a sender that sends a few messages at a
// time, often, costs much less read in batches of what came in hold than
// read at each arrival. A sender that fills the reads is not held: it is
// never caught up with. It sits beneath TLS, so that the hold is on the
// connection's bytes and a sender's small records are read together.
//
// Its Read is called by one goroutine at a time (the TLS handshake's, then
// the reading goroutine's), as net.Conn's reads are, and only that
// goroutine touches its fields once reading starts; the other methods are
// the connection's.
type coalescing struct {
	net.Conn
	hold  time.Duration       // zero: reads are not held (set before reading starts)
	reads *atomic.Uint64      // counts the reads that return bytes (Stats.Reads)
	sleep func(time.Duration) // time.Sleep if nil; tests count the holds

	last     time.Time // when the last read returned
	caughtUp bool      // the last read found less than half its room and than caughtUpBytes

	// bufferedOnly: Read returns what the socket holds without waiting for
	// more, and errWouldWait when it holds nothing, so that a read of the
	// TLS connection above takes only the records that have come
	// (connReader.readBuffered).
	bufferedOnly bool

	// writeTimedOut: a write (crypto/tls's: the handshake, its answers to
	// key updates, alerts) ran into the connection's deadline, so the
	// sender is not reading; serveConn then closes the connection without
	// a close_notify.
	writeTimedOut atomic.Bool
}

// errWouldWait is what Read returns while bufferedOnly is set and the
// socket holds nothing. It is a timeout, as a read deadline's is:
// crypto/tls keeps what it has read of a record and reads on after one.
var errWouldWait error = wouldWait{}

type wouldWait struct{}

func (wouldWait) Error() string   { return "syslog: reading on would wait" }
func (wouldWait) Timeout() bool   { return true }
func (wouldWait) Temporary() bool { return true }

func (c *coalescing) Read(p []byte) (int, error) {
	if c.bufferedOnly {
		return c.readNow(p)
	}
	if c.caughtUp && c.hold > 0 {
		if d := c.hold - time.Since(c.last); d > 0 {
			if c.sleep != nil {
				c.sleep(d)
			} else {
				time.Sleep(d)
			}
		}
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.reads.Add(1)
	}
	c.last = time.Now()
	c.caughtUp = n < min(len(p)/2, caughtUpBytes)
	return n, err
}

// Write writes p, noting a write that timed out.
func (c *coalescing) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.writeTimedOut.Store(true)
	}
	return n, err
}

// readNow reads what the socket holds, without waiting: errWouldWait when
// it holds nothing (or is not a socket).
func (c *coalescing) readNow(p []byte) (int, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return 0, errWouldWait
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, errWouldWait
	}
	var n int
	var rerr error
	// A function that reports true is not called again: the runtime does
	// not wait for the socket to become readable.
	if err := raw.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), p)
		return true
	}); err != nil {
		return 0, err
	}
	switch {
	case rerr == syscall.EAGAIN || rerr == syscall.EINTR:
		return 0, errWouldWait
	case rerr != nil:
		return 0, rerr
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	if n > 0 {
		c.reads.Add(1)
	}
	return n, nil
}
