package relp

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/zbridge/zbridge/internal/leakcheck"
	"github.com/zbridge/zbridge/internal/peer"
)

// TestTLSKeyUpdateNotRead: a TLS 1.3 client that keeps requesting key
// updates and never reads makes crypto/tls's answer, written from inside
// the session's read, wait for room in the socket's buffers. That write
// must end with the read: at IdleTimeout (before the session's first
// answer too, when no answer has set a write deadline yet), when Shutdown
// stops the session, and at once on Close; else it holds the session
// (and MaxSessions' slot) forever, and Shutdown until its ctx ends.
func TestTLSKeyUpdateNotRead(t *testing.T) {
	if testing.Short() {
		t.Skip("stalls TLS sessions for seconds: not in -short")
	}
	for _, tt := range peer.StallEnds() {
		idle := time.Minute
		if tt.Deadline {
			idle = time.Second
		}
		t.Run(tt.Name, func(t *testing.T) {
			leakcheck.Check(t)
			ca := newTestCA(t, "zbridge-region")
			l := peer.ListenSmallBuffers(t)
			ts := serveOn(t, l, func(c *Config) {
				c.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.server}}
				c.IdleTimeout = idle
			})
			k := peer.DialKeyUpdater(t, ts.addr, &tls.Config{RootCAs: ca.pool, ServerName: "zbridge-region"})
			// An open frame that never ends, a byte after each batch.
			data := []byte("1 open 100000 ")
			k.Stall(t, func() []byte {
				d := data
				data = []byte("x")
				return d
			})
			tt.Stop(t, ts.srv, k)
			// Without the fix the stalled write holds the session for good:
			// a minute is far past any deadline here.
			for deadline := time.Now().Add(time.Minute); ts.srv.Stats().Active != 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the session the stalled sender holds did not end within a minute")
				}
			}
		})
	}
}
