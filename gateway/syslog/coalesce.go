package syslog

import (
	"net"
	"sync/atomic"
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
}

func (c *coalescing) Read(p []byte) (int, error) {
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
