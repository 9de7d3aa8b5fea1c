package console

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/racingmars/go3270"
)

// go3270's telnet negotiation (NegotiateTelnet) trusts what the terminal
// sends, and it runs before the logon, for anyone who can connect. Three
// inputs break it (go3270 v0.9.13, telnet.go):
//
//   - a query reply structured field whose length is under 4: a negative
//     make or an index out of range, a panic that would end the region;
//   - a Character Sets query reply whose descriptor length is 0: a loop
//     that never ends, holding a CPU and the connection's goroutine;
//   - option replies that arrive in pieces: it reads three bytes with one
//     Read, fails the negotiation, and prints "SHORT READ" on stdout for
//     each short read of its drain loop.
//
// negotiateTerminal runs NegotiateTelnet over guardConn, which reads every option
// reply whole and checks the query reply before go3270 sees it, and
// recovers a panic all the same: no input can crash or hang the region.

// errBadQueryReply ends a connection whose query reply go3270 cannot read
// safely.
var errBadQueryReply = errors.New("console: malformed query reply from the terminal")

// readPartitionQuery is the datastream go3270 writes to ask the terminal
// for its query reply: Write Structured Field, Read Partition Query, EOR.
var readPartitionQuery = []byte{0xf3, 0, 5, 0x01, 0xff, 0xff, 0x02, 0xff, 0xef}

const (
	telnetIAC = 0xff
	telnetEOR = 0xef
	telnetSE  = 0xf0
	aidQuery  = 0x88 // the AID of a query reply
)

// negotiateTerminal negotiates TN3270 with the terminal on c.
func negotiateTerminal(c *termConn) (dev go3270.DevInfo, err error) {
	defer func() {
		if p := recover(); p != nil {
			dev, err = nil, fmt.Errorf("console: telnet negotiation: %v", p)
		}
	}()
	g := &guardConn{termConn: c}
	dev, err = go3270.NegotiateTelnet(g)
	if err == nil && g.queryErr != nil {
		err = g.queryErr
	}
	return dev, err
}

// guardConn is the connection as go3270's negotiation reads it. Every
// read gets what go3270 expects whole (see whole), unless its deadline
// passes first: then what came is kept for the next read and the read
// times out. After go3270 asks for
// the query reply, the first read takes the whole record (to IAC EOR) and
// checks it: a query reply go3270 would mishandle fails the read. It reads
// from the termConn a byte at a time (the termConn is buffered), so that
// nothing after the negotiation is taken from the connection.
type guardConn struct {
	*termConn
	pending  []byte // read, not yet returned
	awaiting bool   // go3270 asked for the query reply
	queryErr error
}

func (g *guardConn) Write(p []byte) (int, error) {
	if bytes.Equal(p, readPartitionQuery) {
		g.awaiting = true
	}
	return g.termConn.Write(p)
}

func (g *guardConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if g.awaiting {
		g.awaiting = false
		if err := g.readRecord(); err != nil {
			return 0, err
		}
	}
	for !g.whole(len(p)) {
		var b [1]byte
		n, err := g.termConn.Read(b[:])
		g.pending = append(g.pending, b[:n]...)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, err // what came is kept for the next read
			}
			if len(g.pending) == 0 {
				return 0, err
			}
			break
		}
	}
	n := copy(p, g.pending)
	g.pending = g.pending[n:]
	return n, nil
}

// whole reports whether pending holds what a read of n bytes expects:
// go3270 reads an option reply (IAC WILL x) with a read of 3 bytes, and
// the terminal type (IAC SB ... IAC SE) with a read of 100.
func (g *guardConn) whole(n int) bool {
	l := len(g.pending)
	if n <= 3 || l >= n {
		return l >= n
	}
	return l >= 2 && g.pending[l-2] == telnetIAC && g.pending[l-1] == telnetSE && !escapedIAC(g.pending[:l-1])
}

// readRecord reads the terminal's answer to the Read Partition Query into
// pending, up to and including IAC EOR, and checks it when it is a query
// reply. Another answer (a terminal that does not know the query) is left
// to go3270, which reads it and goes on without.
func (g *guardConn) readRecord() error {
	for {
		var b [1]byte
		n, err := g.termConn.Read(b[:])
		g.pending = append(g.pending, b[:n]...)
		if err != nil {
			if len(g.pending) > 0 && g.pending[0] == aidQuery {
				g.queryErr = errBadQueryReply
				return fmt.Errorf("%w: cut short: %w", errBadQueryReply, err)
			}
			if len(g.pending) > 0 {
				return nil // not a query reply: go3270 reads what came
			}
			return err
		}
		if l := len(g.pending); l >= 2 && g.pending[l-2] == telnetIAC && g.pending[l-1] == telnetEOR && !escapedIAC(g.pending[:l-1]) {
			break
		}
	}
	if g.pending[0] != aidQuery {
		return nil
	}
	if err := checkQueryReply(unescapeIAC(g.pending[1 : len(g.pending)-2])); err != nil {
		g.queryErr = err
		return err
	}
	return nil
}

// escapedIAC reports whether the IAC that ends b is the second of a
// doubled IAC (data 0xff), not a telnet command.
func escapedIAC(b []byte) bool {
	n := 0
	for i := len(b) - 1; i >= 0 && b[i] == telnetIAC; i-- {
		n++
	}
	return n%2 == 0
}

// unescapeIAC undoes the doubling of 0xff in telnet data.
func unescapeIAC(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		out = append(out, b[i])
		if b[i] == telnetIAC && i+1 < len(b) && b[i+1] == telnetIAC {
			i++
		}
	}
	return out
}

// checkQueryReply checks the structured fields of a query reply (after its
// AID) as go3270 will read them: each length covers its two bytes and at
// least the two that name the reply; a Character Sets reply go3270 reads
// descriptors of names a non-zero length.
func checkQueryReply(sf []byte) error {
	for len(sf) > 0 {
		if len(sf) < 2 {
			return fmt.Errorf("%w: a structured field's length is cut", errBadQueryReply)
		}
		l := int(sf[0])<<8 | int(sf[1])
		if l < 4 || l > len(sf) {
			return fmt.Errorf("%w: a structured field of length %d in %d bytes", errBadQueryReply, l, len(sf))
		}
		f := sf[2:l]
		if f[0] == 0x81 && f[1] == 0x85 && len(f) >= 11 && f[2]&0x02 != 0 && f[10] == 0 {
			return fmt.Errorf("%w: Character Sets descriptors of length 0", errBadQueryReply)
		}
		sf = sf[l:]
	}
	return nil
}

// negotiateDeadline bounds the telnet negotiation on its own, well inside
// LogonTimeout: a terminal negotiates in milliseconds, and a connection
// that does not cannot hold a pending place for the whole logon time.
const negotiateDeadline = 10 * time.Second
