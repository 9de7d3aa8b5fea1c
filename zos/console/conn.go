package console

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// maxInbound bounds what a terminal may send for one screen (an AID, the
// cursor address and the modified fields: a 27x132 screen full of typing
// is under 8 KiB), and for the telnet negotiation with its query reply.
// A read past it fails with errInboundTooLarge: go3270 would otherwise
// buffer whatever a peer sends before the end of the record.
const maxInbound = 64 << 10

// termConn is a terminal's connection as go3270 uses it. Reads are
// buffered (go3270 reads a byte at a time) and bounded by a budget that
// the connection's goroutine sets before each screen: it alone reads.
// Writes are serialized and bounded by a deadline: go3270 writes each
// datastream with one Write, so a datastream of the updater goroutine
// never lands inside one of the connection's goroutine.
type termConn struct {
	net.Conn
	br           *bufio.Reader
	left         int // bytes the current read may still take; only the reading goroutine uses it
	writeTimeout time.Duration

	wmu sync.Mutex // serializes Write and its deadline
}

func newTermConn(c net.Conn, writeTimeout time.Duration) *termConn {
	return &termConn{Conn: c, br: bufio.NewReaderSize(c, 4096), left: maxInbound, writeTimeout: writeTimeout}
}

// budget gives the next read maxInbound bytes.
func (c *termConn) budget() { c.left = maxInbound }

func (c *termConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errInboundTooLarge
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= n
	return n, err
}

func (c *termConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// The 3270 Write command and a write control character that does
// nothing: no keyboard restore, no MDT reset, no alarm.
const (
	cmdWrite = 0xF1
	wccNone  = 0x40
)

// quietConn is the connection as the updater writes to it. go3270's
// Write (NoClear) sends the WCC "keyboard restore", which would unlock a
// keyboard the operator locked by pressing a key before the console has
// read it: the operator could then type into a screen about to be
// replaced. An unsolicited write must leave the keyboard as it is, so
// quietConn replaces the WCC of a Write datastream by wccNone. go3270
// writes each datastream with one Write, command first.
type quietConn struct{ *termConn }

func (q quietConn) Write(p []byte) (int, error) {
	if len(p) < 2 || p[0] != cmdWrite {
		return q.termConn.Write(p)
	}
	ds := append([]byte(nil), p...)
	ds[1] = wccNone
	return q.termConn.Write(ds)
}
