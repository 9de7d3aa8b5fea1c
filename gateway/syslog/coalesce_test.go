package syslog

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/leakcheck"
)

// TestServerCoalesces: a sender that sends one message at a time, more
// often than Config.Coalesce, has its messages read in batches of what
// came in each hold, over TCP and over TLS, where each message is a TLS
// record of its own: the hold is on the connection's bytes, beneath TLS,
// not on its records. Read as they came, each message would be a read of
// its own (Stats.Reads).
func TestServerCoalesces(t *testing.T) {
	leakcheck.Check(t)
	const (
		hold = MaxCoalesce
		n    = 20
		gap  = 2 * time.Millisecond
	)
	for _, tlsOn := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[tlsOn], func(t *testing.T) {
			ts := startServer(t, tlsOn, func(c *Config) { c.Coalesce = hold })
			c := ts.dial(t)
			// Once a first message is in, the handshake's reads are done.
			write(t, c, octet("<13>1 - vm app - - - first"))
			ts.rec.wait(t, 1)
			before := ts.srv.Stats().Reads
			start := time.Now()
			for i := range n {
				write(t, c, octet(fmt.Sprintf("<13>1 - vm app - - - message %d", i)))
				time.Sleep(gap)
			}
			span := time.Since(start)
			evs := ts.rec.wait(t, n+1)
			for i, ev := range evs[1:] {
				if want := fmt.Sprintf("message %d", i); ev.Text != want {
					t.Fatalf("event %d is %q, want %q", i+1, ev.Text, want)
				}
			}
			// Reads at least hold apart over the span of the sending
			// (longer than n*gap on a loaded machine), the first of them
			// perhaps at once.
			reads := ts.srv.Stats().Reads - before
			if most := 2 + uint64(span/hold); reads > most {
				t.Errorf("%d messages sent over %v in %d reads, want at most %d: reads not held %v apart",
					n, span, reads, most, hold)
			}
			t.Logf("%d messages sent over %v in %d reads", n, span, reads)
		})
	}
}

// readSizes is a connection whose reads return the given numbers of bytes
// in turn.
type readSizes struct {
	net.Conn
	sizes []int
}

func (r *readSizes) Read(p []byte) (int, error) {
	n := min(r.sizes[0], len(p))
	r.sizes = r.sizes[1:]
	return n, nil
}

// TestCoalescingHolds: which reads are held. A read that found less than
// half its room, or less than caughtUpBytes, is followed by a held one;
// a read that filled half its room and caughtUpBytes is not, however
// large the room (the scanner's grows with the frames, up to MaxFrame:
// measured by its room alone, a fast sender would be held at every read).
// No read is held when the hold is zero (during a TLS handshake, and once
// Shutdown drains).
func TestCoalescingHolds(t *testing.T) {
	const hold = 20 * time.Millisecond
	for _, tc := range []struct {
		name      string
		hold      time.Duration
		room      int
		sizes     []int
		wantHolds int // of the reads after the first
	}{
		{"small reads", hold, 64 << 10, []int{1 << 10, 1 << 10, 1 << 10}, 2},
		{"half the room", hold, 64 << 10, []int{40 << 10, 40 << 10, 1 << 10}, 0},
		{"a room of 1 MiB, reads of 40 KiB", hold, 1 << 20, []int{40 << 10, 40 << 10, 40 << 10}, 0},
		{"a room of 1 MiB, a read of 10 KiB", hold, 1 << 20, []int{40 << 10, 10 << 10, 40 << 10}, 1},
		{"no hold", 0, 64 << 10, []int{1, 1, 1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var holds []time.Duration
			var reads atomic.Uint64
			c := &coalescing{Conn: &readSizes{sizes: tc.sizes}, hold: tc.hold, reads: &reads,
				sleep: func(d time.Duration) { holds = append(holds, d) }}
			buf := make([]byte, tc.room)
			for range tc.sizes {
				c.Read(buf)
			}
			if len(holds) != tc.wantHolds {
				t.Errorf("reads of %v with room %d: %d held %v, want %d", tc.sizes, tc.room, len(holds), holds, tc.wantHolds)
			}
			for _, d := range holds {
				if d <= 0 || d > tc.hold {
					t.Errorf("held %v, want (0, %v]", d, tc.hold)
				}
			}
			if reads.Load() != uint64(len(tc.sizes)) {
				t.Errorf("%d reads counted, want %d", reads.Load(), len(tc.sizes))
			}
		})
	}
}

// tlsPair returns a TLS server connection as the server makes one (over a
// coalescing connection, not held) and a client whose records go to the
// socket only when its writer is flushed.
func tlsPair(t *testing.T) (*conn, *tls.Conn, *bufferedConn) {
	t.Helper()
	serverTLS, clientTLS := testTLS(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- nc
	}()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw := &bufferedConn{Conn: nc, w: bufio.NewWriterSize(nc, 1<<20)}
	client := tls.Client(raw, clientTLS)
	t.Cleanup(func() { client.Close() })
	sc := <-accepted
	if sc == nil {
		t.FailNow()
	}
	c := &conn{raw: &coalescing{Conn: sc, reads: new(atomic.Uint64)}, tls: true}
	c.nc = tls.Server(c.raw, serverTLS)
	t.Cleanup(func() { c.nc.Close() })
	handshake := make(chan error, 1)
	go func() { handshake <- c.nc.(*tls.Conn).Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-handshake; err != nil {
		t.Fatal(err)
	}
	raw.buffered = true
	return c, client, raw
}

// TestTLSReadGathersRecords: a read of a TLS connection returns the
// records that have come, up to tlsGather, not the first alone (which is
// what crypto/tls's Read returns), without waiting for more.
func TestTLSReadGathersRecords(t *testing.T) {
	c, client, raw := tlsPair(t)
	const n = 60
	record := func(i int) string { return fmt.Sprintf("%03d %s\n", i, strings.Repeat("r", 100)) }
	var want strings.Builder
	for i := range n {
		want.WriteString(record(i))
		if _, err := client.Write([]byte(record(i))); err != nil { // a record each
			t.Fatal(err)
		}
	}
	if err := raw.w.Flush(); err != nil { // all of them in one write
		t.Fatal(err)
	}
	r := &connReader{c: c, timeout: time.Minute, bytes: new(atomic.Uint64)}
	var got []byte
	buf := make([]byte, 64<<10)
	reads := 0
	for len(got) < want.Len() {
		m, err := r.Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:m]...)
		reads++
	}
	if string(got) != want.String() {
		t.Fatalf("read %q, want %q", got, want.String())
	}
	// All of it came in one write and fits in tlsGather: read as it came,
	// a record at a time, it would take n reads.
	if reads > n/4 {
		t.Errorf("%d records in %d reads, want them gathered", n, reads)
	}
	t.Logf("%d records in %d reads", n, reads)

	// With nothing more sent, a read waits for it (readBuffered does not
	// stop it), and gets what comes.
	done := make(chan []byte, 1)
	go func() {
		m, err := r.Read(buf)
		if err != nil {
			t.Error(err)
		}
		done <- buf[:m]
	}()
	if _, err := client.Write([]byte("late\n")); err != nil {
		t.Fatal(err)
	}
	raw.w.Flush()
	if got := <-done; string(got) != "late\n" {
		t.Errorf("read %q, want the late record", got)
	}
}

// TestServerTLSRecordPerMessage: a sender that writes every message as a
// TLS record of its own, the records of many messages to the socket at
// once and some cut between two writes, has every message taken, whole
// and in order.
func TestServerTLSRecordPerMessage(t *testing.T) {
	leakcheck.Check(t)
	ts := startServer(t, true, nil)
	nc, err := net.Dial("tcp", ts.tcp)
	if err != nil {
		t.Fatal(err)
	}
	raw := &bufferedConn{Conn: nc, w: bufio.NewWriterSize(nc, 4096)} // flushes cut records in two
	c := tls.Client(raw, ts.client)
	defer c.Close()
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	raw.buffered = true
	const n = 3000
	for i := range n {
		if _, err := c.Write([]byte(octet(fmt.Sprintf("<13>1 - vm app - - - message %d", i)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.w.Flush(); err != nil {
		t.Fatal(err)
	}
	evs := ts.rec.wait(t, n)
	for i, ev := range evs {
		if want := fmt.Sprintf("message %d", i); ev.Text != want || !ev.Parsed {
			t.Fatalf("event %d is %q (parsed %v), want %q", i, ev.Text, ev.Parsed, want)
		}
	}
}
