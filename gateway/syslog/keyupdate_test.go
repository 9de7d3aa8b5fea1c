package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/zbridge/zbridge/internal/leakcheck"
	"github.com/zbridge/zbridge/internal/peer"
	"github.com/zbridge/zbridge/protocol"
)

type countingEvents struct{ n atomic.Int64 }

func (c *countingEvents) Append(_ context.Context, evs []*protocol.Event) error {
	c.n.Add(int64(len(evs)))
	return nil
}

// TestServerTLSKeyUpdateNotRead: a TLS 1.3 sender that keeps requesting key
// updates and never reads makes crypto/tls's answer, written from inside
// the server's Read, wait for room in the socket's buffers. That write
// must end with the read: at ReadTimeout, when Shutdown drains, and at
// once on Close; else it holds the connection (and MaxSessions' slot)
// forever, and Shutdown until its ctx ends.
func TestServerTLSKeyUpdateNotRead(t *testing.T) {
	if testing.Short() {
		t.Skip("stalls TLS connections for seconds: not in -short")
	}
	for _, tt := range peer.StallEnds() {
		readTimeout := time.Minute
		if tt.Deadline {
			readTimeout = time.Second
		}
		t.Run(tt.Name, func(t *testing.T) {
			leakcheck.Check(t)
			ca := peer.NewTLSCA(t)
			log := logrus.New()
			log.Out = &logSink{t: t}
			log.Level = logrus.DebugLevel
			srv, err := New(Config{Appender: new(countingEvents), Logger: log, ReadTimeout: readTimeout,
				TLSConfig: &tls.Config{Certificates: []tls.Certificate{ca.ServerPair(t, "127.0.0.1")}}})
			if err != nil {
				t.Fatal(err)
			}
			l := peer.ListenSmallBuffers(t)
			served := make(chan error, 1)
			go func() { served <- srv.Serve(l) }()
			var k *peer.KeyUpdater
			t.Cleanup(func() {
				if k != nil {
					k.Close() // before Close, which a stuck write would hold
				}
				srv.Close()
				if err := <-served; !errors.Is(err, ErrServerClosed) {
					t.Errorf("Serve returned %v, want ErrServerClosed", err)
				}
			})

			k = peer.DialKeyUpdater(t, l.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
			k.Stall(t, func() []byte { return []byte("<13>x\n") }) // a whole frame after each batch
			tt.Stop(t, srv, k)
			// Without the fix the stalled write holds the connection for good:
			// a minute is far past any deadline here.
			for deadline := time.Now().Add(time.Minute); srv.Stats().Active != 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the connection the stalled sender holds did not end within a minute")
				}
			}
		})
	}
}
