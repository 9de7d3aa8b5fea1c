package syslog

import (
	"fmt"
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
		hold = 100 * time.Millisecond
		n    = 10
		gap  = 5 * time.Millisecond
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
